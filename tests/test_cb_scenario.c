/*
 * test_cb_scenario.c: the scenario loader — every key, every validation message (exact, with
 * file:line), several problems at once, the line reader's guards, the fault timeline,
 * --explain round trips, and the schema against docs/scenarios.md.
 */
#include <stdlib.h>
#include <string.h>

#include <dirent.h>

#include "cb_err.h"
#include "cb_scenario.h"
#include "cb_scenario_int.h"
#include "cb_trace.h"
#include "cb_test.h"

#define HEAD "[scenario]\nname = t\nrequests = 100\n"

static int load(const char *text, cb_plan *plan, cb_diag *diag)
{
    return cb_scenario_load_string("t.ini", text, strlen(text), plan, diag);
}

static void print_diag(const char *name, const cb_diag *diag)
{
    printf("\n  case %s:\n", name);
    for (size_t i = 0; i < diag->count; i++) {
        printf("    %s\n", diag->messages[i].text);
    }
}

/* ---- every key ---- */

typedef struct key_case {
    const char *section;
    const char *key;
    const char *value;
    const char *context; /* extra lines in the same section, or "" */
    const char *expect;  /* the value as the plan formats it */
} key_case;

static const key_case key_cases[] = {
    {"scenario", "name", "run-1.a_b", "", "run-1.a_b"},
    {"scenario", "seed", "18446744073709551615", "", "18446744073709551615"},
    {"scenario", "requests", "1000000", "", "1000000"},
    {"scenario", "duration", "1.5m", "", "90s"},
    {"scenario", "warmup", "500ms", "duration = 10s\n", "500ms"},
    {"network", "latency", "0.25ms", "", "250us"},
    {"network", "jitter", "1ms", "", "1ms"},
    {"network", "bandwidth", "100MBps", "", "800Mbps"},
    {"network", "loss", "0.02", "", "2%"},
    {"network", "mtu", "9000", "", "9KB"},
    {"network", "platform", "plat/small.xml", "", "plat/small.xml"},
    {"servers", "count", "4", "", "4"},
    {"servers", "memory", "1GiB", "", "1GiB"},
    {"servers", "value_max", "512KiB", "", "512KiB"},
    {"servers", "dedup_window", "64", "", "64"},
    {"clients", "count", "10", "", "10"},
    {"clients", "connections", "2", "", "2"},
    {"clients", "outstanding", "16", "", "16"},
    {"placement", "strategy", "maglev", "", "maglev"},
    {"placement", "vnodes", "100", "", "100"},
    {"placement", "replicas", "1", "", "1"},
    {"placement", "read_policy", "quorum", "", "quorum"},
    {"placement", "write_policy", "primary_async", "", "primary_async"},
    {"placement", "resync", "warm", "", "warm"},
    {"placement", "eject_after", "3", "", "3"},
    {"placement", "eject_for", "10s", "eject_after = 2\n", "10s"},
    {"placement", "tombstone_ttl", "5s", "", "5s"},
    {"transport", "kind", "udp", "", "udp"},
    {"transport", "timeout", "50ms", "", "50ms"},
    {"transport", "timeout_max", "2s", "", "2s"},
    {"transport", "attempts", "5", "", "5"},
    {"transport", "jitter", "25%", "", "25%"},
    {"transport", "rto_min", "1ms", "", "1ms"},
    {"transport", "compression", "zstd", "", "zstd"},
    {"transport", "compression_level", "19", "compression = zstd\n", "19"},
    {"transport", "compression_min", "1KiB", "compression = lz4\n", "1KiB"},
    {"transport", "encryption_key_file", "/etc/cb.key", "", "/etc/cb.key"},
    {"workload", "keys", "1000000", "", "1000000"},
    {"workload", "key_size", "32", "", "32B"},
    {"workload", "key_dist", "uniform", "", "uniform"},
    {"workload", "zipf_alpha", "1.2", "", "1.2"},
    {"workload", "hot_fraction_requests", "0.8", "key_dist = hotspot\n", "80%"},
    {"workload", "hot_fraction_keys", "5%", "key_dist = hotspot\n", "5%"},
    {"workload", "churn_interval", "30s", "", "30s"},
    {"workload", "churn_fraction", "1%", "churn_interval = 1s\n", "1%"},
    {"workload", "value_dist", "lognormal", "", "lognormal"},
    {"workload", "value_size", "4KiB", "", "4KiB"},
    {"workload", "value_size_min", "10", "value_dist = uniform\n", "10B"},
    {"workload", "value_size_max", "2KB", "value_dist = uniform\n", "2KB"},
    {"workload", "lognormal_mu", "7.5", "value_dist = lognormal\n", "7.5"},
    {"workload", "lognormal_sigma", "0.5", "value_dist = lognormal\n", "0.5"},
    {"workload", "pareto_location", "10", "value_dist = gpareto\n", "10"},
    {"workload", "pareto_scale", "100.5", "value_dist = gpareto\n", "100.5"},
    {"workload", "pareto_shape", "-0.25", "value_dist = gpareto\n", "-0.25"},
    {"workload", "gev_location", "-3", "value_dist = gev\n", "-3"},
    {"workload", "gev_scale", "2", "value_dist = gev\n", "2"},
    {"workload", "gev_shape", "0.1", "value_dist = gev\n", "0.1"},
    {"workload", "value_cap", "64KiB", "value_dist = gev\n", "64KiB"},
    {"broker", "service_time", "50us", "", "50us"},
    {"broker", "queue_limit", "64000", "", "64000"},
    {"broker", "ack_timeout", "250ms", "", "250ms"},
    {"broker", "delivery_max", "5", "", "5"},
    {"workload", "mix", "get=90% set=0.05 delete=0.04 incr=0.01", "",
     "get=0.9 set=0.05 delete=0.04 incr=0.01"},
    {"workload", "rmw", "10%", "", "10%"},
    {"workload", "arrival", "open", "rate = 1k/s\n", "open"},
    {"workload", "think_time", "1ms", "", "1ms"},
    {"workload", "rate", "50k/s", "arrival = open\n", "50000/s"},
    {"workload", "trace", "t.csv", "trace_format = twitter\n", "t.csv"},
    {"workload", "trace_format", "oracle_general", "trace = t.bin\n", "oracle_general"},
    {"workload", "trace_speed", "2.5", "trace = t.csv\ntrace_format = twitter\narrival = open\n",
     "2.5"},
};

static void test_scenario_every_key(void)
{
    char text[1024], got[256];
    for (size_t i = 0; i < sizeof key_cases / sizeof key_cases[0]; i++) {
        const key_case *c = &key_cases[i];
        if (strcmp(c->section, "scenario") == 0) {
            (void)snprintf(text, sizeof text, "[scenario]\n%s%s%s%s = %s\n",
                           strcmp(c->key, "name") == 0 ? "" : "name = t\n",
                           strcmp(c->key, "requests") == 0 ? "" : "requests = 100\n", c->context,
                           c->key, c->value);
        } else {
            /* [broker] keys apply only with the queue transport. */
            const char *pre =
                strcmp(c->section, "broker") == 0 ? "[transport]\nkind = queue\n" : "";
            (void)snprintf(text, sizeof text, HEAD "%s[%s]\n%s%s = %s\n", pre, c->section,
                           c->context, c->key, c->value);
        }
        cb_plan plan;
        cb_diag diag;
        if (load(text, &plan, &diag) != CB_ERR_OK) {
            print_diag(c->key, &diag);
            CU_FAIL("key case does not load");
            continue;
        }
        const scen_key *k = NULL;
        for (size_t s = 0; s < SCEN_SEC_COUNT; s++) {
            if (strcmp(scen_section_names[s], c->section) == 0) {
                k = scen_key_find((scen_section)s, c->key);
            }
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(k);
        scen_value_format(k, &plan, NULL, got, sizeof got);
        if (strcmp(got, c->expect) != 0) {
            printf("\n  key %s: got '%s', want '%s'\n", c->key, got, c->expect);
            CU_FAIL("key value");
        }
        cb_plan_free(&plan);
    }
}

/* The table above covers every key of the schema (except [faults] at, tested below). */
static void test_scenario_every_key_covered(void)
{
    const scen_key *keys = scen_keys();
    for (size_t i = 0; i < scen_key_count(); i++) {
        bool found = keys[i].type == SCEN_T_FAULT;
        for (size_t j = 0; !found && j < sizeof key_cases / sizeof key_cases[0]; j++) {
            found = strcmp(key_cases[j].key, keys[i].name) == 0 &&
                    strcmp(key_cases[j].section, scen_section_names[keys[i].section]) == 0;
        }
        if (!found) {
            printf("\n  key %s has no test case\n", keys[i].name);
        }
        CU_ASSERT_TRUE(found);
    }
}

/* The schema's own invariants: defaults parse and sit in range (except "not set" ones),
 * 4-byte fields have a max below 2^32, docs fit a comment line. */
static void test_scenario_schema_sane(void)
{
    const scen_key *keys = scen_keys();
    CU_ASSERT_TRUE(scen_key_count() <= SCEN_KEYS_MAX);
    for (size_t i = 0; i < scen_key_count(); i++) {
        const scen_key *k = &keys[i];
        char err[SCEN_ERR_BYTES];
        scen_value v;
        if (k->def != NULL && k->type != SCEN_T_FAULT &&
            scen_value_parse(k, k->def, &v, err, sizeof err) != CB_ERR_OK) {
            printf("\n  default of %s: %s\n", k->name, err);
            CU_FAIL("default does not parse");
        }
        if (k->width == 4 && k->type != SCEN_T_ENUM) {
            CU_ASSERT_TRUE(k->max <= UINT32_MAX);
        }
        CU_ASSERT_TRUE(strlen(k->doc) < 150);
        CU_ASSERT_PTR_NULL(strchr(k->doc, '|'));
    }
}

/* ---- every message ---- */

typedef struct diag_case {
    const char *name;
    const char *text;
    const char *msgs[4]; /* the whole diag, in order */
} diag_case;

static const diag_case diag_cases[] = {
    {"unknown_section",
     HEAD "[netwrok]\nlatency = 5ms\n",
     {"t.ini:4: [netwrok]: unknown section (did you mean [network]?)"}},
    {"unknown_key",
     HEAD "[network]\nlatnecy = 5ms\n",
     {"t.ini:5: [network] latnecy: unknown key (did you mean 'latency'?)"}},
    {"key_elsewhere",
     HEAD "[transport]\nloss = 1%\n",
     {"t.ini:5: [transport] loss: unknown key ('loss' is a [network] key)"}},
    {"key_unknown_far",
     HEAD "[network]\nfrobnicate = 1\n",
     {"t.ini:5: [network] frobnicate: unknown key (docs/scenarios.md lists every key)"}},
    {"bad_unit",
     HEAD "[network]\nlatency = 5\n",
     {"t.ini:5: [network] latency: bad value '5': no unit: expected a duration like 5ms or "
      "1.5s (units: ns us ms s m h)"}},
    {"bad_size",
     HEAD "[servers]\nmemory = 64mb\n",
     {"t.ini:5: [servers] memory: bad value '64mb': unknown unit 'mb': expected a size like "
      "64KiB or 1.5MB (units: B KB MB GB TB KiB MiB GiB TiB)"}},
    {"out_of_range",
     HEAD "[network]\nlatency = 20s\n",
     {"t.ini:5: [network] latency: out of range: 20s is above the maximum 10s"}},
    {"below_range",
     HEAD "[servers]\ncount = 0\n",
     {"t.ini:5: [servers] count: out of range: 0 is below the minimum 1"}},
    {"pow2",
     HEAD "[servers]\ndedup_window = 48\n",
     {"t.ini:5: [servers] dedup_window: 48 is not 0 or a power of two (1, 2, 4, ...)"}},
    {"bad_enum",
     HEAD "[transport]\nkind = tpc\n",
     {"t.ini:5: [transport] kind: bad value 'tpc': unknown choice 'tpc' (did you mean 'tcp'?): "
      "expected one of tcp, udp, queue"}},
    {"bad_name",
     "[scenario]\nname = my run\nrequests = 1\n",
     {"t.ini:2: [scenario] name: bad value 'my run': expected a name of 1 to 64 letters, "
      "digits, '_', '.' or '-'"}},
    {"missing_name",
     "[scenario]\nrequests = 1\n",
     {"t.ini:1: [scenario] name: required key is missing"}},
    {"missing_everything",
     "",
     {"t.ini: [scenario] name: required key is missing",
      "t.ini: [scenario]: set requests, duration or both (both are 0: the run would never end)"}},
    {"no_end",
     "[scenario]\nname = t\n",
     {"t.ini:1: [scenario]: set requests, duration or both (both are 0: the run would never "
      "end)"}},
    {"repeated_key",
     HEAD "seed = 1\nseed = 2\n",
     {"t.ini:5: [scenario] seed: repeated key (first set at line 4); only [faults] at may "
      "repeat"}},
    {"repeated_section",
     HEAD "[network]\nloss = 1%\n[network]\njitter = 1ms\n",
     {"t.ini:6: [network]: section repeated (first at line 4); merge the two"}},
    {"long_line",
     HEAD "; 200 chars: "
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxxxxxxxxxxxxx\nseed = 2\n",
     {"t.ini:4: line is 200 characters long; the limit is 199 (the line was not read)"}},
    {"continuation",
     HEAD "seed = 1\n  2\n",
     {"t.ini:5: [scenario]: indented line would continue 'seed' from line 4; continuation "
      "lines are not supported: remove the indentation"}},
    {"control_char",
     HEAD "seed = 1\x01\n",
     {"t.ini:4: control character 0x01 in column 9 (the line was not read)"}},
    {"nul_byte",
     HEAD "seed\0 = 1\n",
     {"t.ini:4: control character 0x00 in column 5 (the line "
      "was not read)"}},
    {"no_equals",
     HEAD "seed 1\n",
     {"t.ini:4: [scenario]: expected 'key = value', a [section] or a ; comment"}},
    {"before_section",
     "seed = 1\n" HEAD,
     {"t.ini:1: a key before any [section]: start with a section such as [scenario]"}},
    {"open_header",
     HEAD "[network\nloss = 1%\n",
     {"t.ini:4: section header without ']': expected [section]"}},
    {"header_junk",
     HEAD "[network] x\nloss = 1%\n",
     {"t.ini:4: text after ']': expected [section] alone on its line"}},
    {"empty_key", HEAD "= 5\n", {"t.ini:4: [scenario]: a value without a key name"}},
    {"replicas",
     HEAD "[servers]\ncount = 2\n[placement]\nreplicas = 3\n",
     {"t.ini:7: [placement] replicas: 3 replicas but [servers] count = 2: at most one replica "
      "per server"}},
    {"zipf_without_zipf",
     HEAD "[workload]\nkey_dist = uniform\nzipf_alpha = 1.1\n",
     {"t.ini:6: [workload] zipf_alpha: applies only with key_dist = zipf; remove it"}},
    {"latency_with_platform",
     HEAD "[network]\nplatform = p.xml\nlatency = 1ms\n",
     {"t.ini:6: [network] latency: does not apply when platform is set; remove it"}},
    {"open_without_rate",
     HEAD "[workload]\narrival = open\n",
     {"t.ini:4: [workload] rate: missing: arrival = open needs a rate, like rate = 20000/s"}},
    {"trace_without_format",
     HEAD "[workload]\ntrace = x.csv\n",
     {"t.ini:4: [workload] trace_format: missing: trace is set, so give its format (twitter, "
      "libcachesim_csv or oracle_general)"}},
    {"trace_with_key_dist",
     HEAD "[workload]\ntrace = x.csv\ntrace_format = twitter\n"
          "key_dist = uniform\n",
     {"t.ini:7: [workload] key_dist: does not apply when trace is set; remove it"}},
    {"warmup",
     "[scenario]\nname = t\nduration = 10s\nwarmup = 10s\n",
     {"t.ini:4: [scenario] warmup: 10s leaves nothing to measure: it must be below duration "
      "= 10s"}},
    {"timeout_max",
     HEAD "[transport]\ntimeout = 2s\ntimeout_max = 1s\n",
     {"t.ini:6: [transport] timeout_max: 1s is below timeout = 2s"}},
    {"lz4_level",
     HEAD "[transport]\ncompression = lz4\ncompression_level = 13\n",
     {"t.ini:6: [transport] compression_level: 13 is above lz4's highest level, 12"}},
    {"uniform_sizes",
     HEAD "[workload]\nvalue_dist = uniform\nvalue_size_min = 2KiB\n"
          "value_size_max = 1KiB\n",
     {"t.ini:7: [workload] value_size_max: 1KiB is below value_size_min = 2KiB"}},
    {"hot_keys",
     HEAD "[workload]\nkeys = 10\nkey_dist = hotspot\nhot_fraction_keys = 1%\n",
     {"t.ini:7: [workload] hot_fraction_keys: 1% of 10 keys is not even one key"}},
    {"mix_sum",
     HEAD "[workload]\nmix = get=0.9 set=0.05\n",
     {"t.ini:5: [workload] mix: bad value 'get=0.9 set=0.05': shares add up to 0.95, not 1: "
      "expected operation shares like 'get=0.9 set=0.08 delete=0.02' (get, set, delete, incr; "
      "ratios or percentages adding up to 1)"}},
    {"mix_twice",
     HEAD "[workload]\nmix = get=0.5 get=0.5\n",
     {"t.ini:5: [workload] mix: bad value 'get=0.5 get=0.5': 'get' given twice: expected "
      "operation shares like 'get=0.9 set=0.08 delete=0.02' (get, set, delete, incr; ratios or "
      "percentages adding up to 1)"}},
    {"server_beyond",
     HEAD "[servers]\ncount = 2\n[server.2]\nmemory = 8MiB\n",
     {"t.ini:6: [server.2]: no such server: [servers] count = 2 (server.0 .. server.1)"}},
    {"server_key",
     HEAD "[server.0]\ncount = 2\n",
     {"t.ini:5: [server.0] count: unknown key (a [server.N] section may set memory, value_max "
      "and dedup_window)"}},
    {"server_repeat",
     HEAD "[server.0]\nmemory = 8MiB\n[server.0]\n",
     {"t.ini:6: [server.0]: section repeated (first at line 4); merge the two"}},
    {"server_leading_zero",
     HEAD "[server.01]\n",
     {"t.ini:4: [server.01]: unknown section (per-server overrides are [server.N], N from 0)"}},
    {"fault_key",
     HEAD "[faults]\nwhen = 5s heal\n",
     {"t.ini:5: [faults] when: unknown key (events are 'at = TIME EVENT', one per line)"}},
    {"fault_node",
     HEAD "[faults]\nat = 5s crash server1\n",
     {"t.ini:5: [faults] at: no node matches 'server1' (nodes are server0..server0, "
      "client0..client0; broker exists only with [transport] kind = queue)"}},
    {"fault_glob_node",
     HEAD "[faults]\nat = 5s crash server1*\n",
     {"t.ini:5: [faults] at: no node matches 'server1*' (nodes are server0..server0, "
      "client0..client0; broker exists only with [transport] kind = queue)"}},
    {"fault_bad_name",
     HEAD "[faults]\nat = 5s crash srv1\n",
     {"t.ini:5: [faults] at: bad node name 'srv1': expected server<i>, client<i>, broker, or a "
      "prefix ending in * like client*"}},
    {"fault_mid_glob",
     HEAD "[faults]\nat = 5s crash s*1\n",
     {"t.ini:5: [faults] at: bad node name 's*1': expected server<i>, client<i>, broker, or a "
      "prefix ending in * like client*"}},
    {"fault_zero_pad",
     HEAD "[faults]\nat = 5s crash server01\n",
     {"t.ini:5: [faults] at: bad node name 'server01': expected server<i>, client<i>, broker, "
      "or a prefix ending in * like client*"}},
    {"fault_event",
     HEAD "[faults]\nat = 5s crahs server0\n",
     {"t.ini:5: [faults] at: unknown event 'crahs' (did you mean 'crash'?): expected crash, "
      "recover, partition, heal or link"}},
    {"fault_time",
     HEAD "[faults]\nat = 5 crash server0\n",
     {"t.ini:5: [faults] at: bad time '5': expected 'TIME EVENT' like '5s crash server2'"}},
    {"fault_overlap",
     HEAD "[clients]\ncount = 3\n[faults]\nat = 1s partition {client*} | "
          "{client1, server0}\n",
     {"t.ini:7: [faults] at: 'client*' and 'client1' overlap: a node cannot be in two groups"}},
    {"fault_one_group",
     HEAD "[faults]\nat = 1s partition {client0, server0}\n",
     {"t.ini:5: [faults] at: a partition needs two groups or more: expected groups like "
      "'partition {client*, server0} | {server1, server2}'"}},
    {"fault_after_end",
     "[scenario]\nname = t\nduration = 10s\n[faults]\nat = 11s heal\n",
     {"t.ini:5: [faults] at: at 11s is after the end of the run ([scenario] duration = 10s)"}},
    {"fault_link_empty",
     HEAD "[faults]\nat = 1s link server0\n",
     {"t.ini:5: [faults] at: 'link server0' changes nothing: expected link settings like "
      "latency=5ms jitter=1ms bandwidth=1Gbps loss=2%"}},
    {"fault_link_bad",
     HEAD "[faults]\nat = 1s link server0 loss=200%\n",
     {"t.ini:5: [faults] at: bad link loss '200%': loss is at most 100%"}},
    {"fault_link_unit",
     HEAD "[faults]\nat = 1s link server0 latency=5\n",
     {"t.ini:5: [faults] at: bad link latency '5': no unit: expected a duration like 5ms or "
      "1.5s (units: ns us ms s m h)"}},
    {"fault_heal_junk",
     HEAD "[faults]\nat = 1s heal now\n",
     {"t.ini:5: [faults] at: unexpected 'now' after 'heal'"}},
    {"fault_crash_two",
     HEAD "[faults]\nat = 1s crash server0 client0\n",
     {"t.ini:5: [faults] at: unexpected 'client0' after 'crash server0'"}},
};

static void test_scenario_messages(void)
{
    for (size_t i = 0; i < sizeof diag_cases / sizeof diag_cases[0]; i++) {
        const diag_case *c = &diag_cases[i];
        cb_plan plan;
        cb_diag diag;
        size_t len = strlen(c->text);
        if (strcmp(c->name, "nul_byte") == 0) {
            len = sizeof HEAD "seed\0 = 1\n" - 1;
        }
        int rc = cb_scenario_load_string("t.ini", c->text, len, &plan, &diag);
        size_t want = 0;
        while (want < 4 && c->msgs[want] != NULL) {
            want++;
        }
        bool ok = rc == CB_ERR_INVALID && diag.count == want;
        for (size_t j = 0; ok && j < want; j++) {
            ok = strcmp(diag.messages[j].text, c->msgs[j]) == 0;
        }
        if (!ok) {
            print_diag(c->name, &diag);
            CU_FAIL("messages differ");
        }
        CU_ASSERT_PTR_NULL(plan.faults);
        CU_ASSERT_PTR_NULL(plan.servers.each);
    }
}

/* Many problems in one file: all reported, in line order, in one load. */
static void test_scenario_all_at_once(void)
{
    static const char text[] = "[scenario]\n"             /* 1 */
                               "requests = 10k\n"         /* 2 */
                               "[netwrok]\n"              /* 3 */
                               "[network]\n"              /* 4 */
                               "latency = 5 parsecs\n"    /* 5 */
                               "  jitter = 1ms\n"         /* 6 */
                               "[placement]\n"            /* 7 */
                               "replicas = 2\n"           /* 8 */
                               "[faults]\n"               /* 9 */
                               "at = 5s crash server7\n"; /* 10 */
    cb_plan plan;
    cb_diag diag;
    CU_ASSERT_EQUAL(load(text, &plan, &diag), CB_ERR_INVALID);
    static const uint32_t lines[] = {1, 1, 2, 3, 5, 6, 8, 10};
    CU_ASSERT_EQUAL_FATAL(diag.count, sizeof lines / sizeof lines[0]);
    for (size_t i = 0; i < diag.count; i++) {
        CU_ASSERT_EQUAL(diag.messages[i].line, lines[i]);
    }
    CU_ASSERT_EQUAL(diag.omitted, 0);
}

/* More problems than the list holds: the rest are counted. */
static void test_scenario_omitted(void)
{
    char text[8192] = "[scenario]\nname = t\nrequests = 1\n";
    for (int i = 0; i < 100; i++) {
        strcat(text, "bogus = 1\n");
    }
    cb_plan plan;
    cb_diag diag;
    CU_ASSERT_EQUAL(load(text, &plan, &diag), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(diag.count, CB_DIAG_MESSAGES_MAX);
    CU_ASSERT_EQUAL(diag.omitted, 100 - CB_DIAG_MESSAGES_MAX);
}

/* ---- lines libinih would misread ---- */

static void test_scenario_line_guards(void)
{
    cb_plan plan;
    cb_diag diag;
    /* 199 characters is fine; CRLF, a BOM, comments, blank and indented-after-header lines
     * too; inline comments are cut. */
    char text[1024] = "\xEF\xBB\xBF[scenario]\r\n  name = t ; inline\r\n; comment\n# also\n\n";
    strcat(text, "requests = 5 ;");
    while (strlen(text) - strlen("\xEF\xBB\xBF[scenario]\r\n  name = t ; inline\r\n; comment\n"
                                 "# also\n\n") <
           199) {
        strcat(text, "x");
    }
    strcat(text, "\n[network]\nplatform = ; empty\n");
    CU_ASSERT_EQUAL_FATAL(load(text, &plan, &diag), CB_ERR_OK);
    CU_ASSERT_STRING_EQUAL(plan.scenario.name, "t");
    CU_ASSERT_EQUAL(plan.scenario.requests, 5);
    CU_ASSERT_STRING_EQUAL(plan.network.platform, "");
    cb_plan_free(&plan);
    /* No final newline, and ':' as separator (libinih's). */
    CU_ASSERT_EQUAL(load("[scenario]\nname: t\nrequests = 5", &plan, &diag), CB_ERR_OK);
    cb_plan_free(&plan);
    /* An over-long line is never cut into a value, and later line numbers stay right. */
    char long_value[512] = HEAD "seed = 1";
    while (strlen(long_value) < 300) {
        strcat(long_value, "0");
    }
    strcat(long_value, "\nbogus = 1\n");
    CU_ASSERT_EQUAL(load(long_value, &plan, &diag), CB_ERR_INVALID);
    CU_ASSERT_EQUAL_FATAL(diag.count, 2);
    CU_ASSERT_EQUAL(diag.messages[0].line, 4);
    CU_ASSERT_EQUAL(diag.messages[1].line, 5);
    /* A file over 1 MiB is refused whole. */
    size_t big = (1u << 20) + 1;
    char *huge = malloc(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(huge);
    memset(huge, '\n', big);
    CU_ASSERT_EQUAL(cb_scenario_load_string("big.ini", huge, big, &plan, &diag), CB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(diag.messages[0].text,
                           "big.ini: file is 1048577 bytes; a scenario is at most 1048576");
    free(huge);
}

/* ---- a full plan ---- */

static const char full_text[] = "[scenario]\n"
                                "name = full\n"
                                "duration = 30s\n"
                                "warmup = 2s\n"
                                "seed = 42\n"
                                "[servers]\n"
                                "count = 3\n"
                                "memory = 128MiB\n"
                                "[server.1]\n"
                                "memory = 32MiB\n"
                                "dedup_window = 16\n"
                                "[clients]\n"
                                "count = 4\n"
                                "[placement]\n"
                                "strategy = jump\n"
                                "replicas = 2\n"
                                "[transport]\n"
                                "kind = queue\n"
                                "compression = lz4\n"
                                "[workload]\n"
                                "value_dist = gpareto\n"
                                "arrival = open\n"
                                "rate = 20k/s\n"
                                "[faults]\n"
                                "at = 20s link server1 latency=5ms loss=2% bandwidth=1Gbps "
                                "jitter=1ms\n"
                                "at = 15s heal\n"
                                "at = 5s crash server2\n"
                                "at = 12s partition {client*, server0} | {server1, server2} | "
                                "{broker}\n"
                                "at = 9s recover server2\n"
                                "at = 5s crash server*\n";

static void test_scenario_full_plan(void)
{
    cb_plan plan;
    cb_diag diag;
    if (load(full_text, &plan, &diag) != CB_ERR_OK) {
        print_diag("full", &diag);
        CU_FAIL_FATAL("full plan does not load");
    }
    CU_ASSERT_EQUAL(plan.scenario.seed, 42);
    CU_ASSERT_EQUAL(plan.scenario.duration_ns, 30000000000ull);
    CU_ASSERT_EQUAL(plan.servers.count, 3);
    CU_ASSERT_EQUAL(plan.servers.each[0].memory_bytes, 128u << 20);
    CU_ASSERT_EQUAL(plan.servers.each[1].memory_bytes, 32u << 20);
    CU_ASSERT_EQUAL(plan.servers.each[1].dedup_window, 16);
    CU_ASSERT_EQUAL(plan.servers.each[1].value_bytes_max, 1u << 20);
    CU_ASSERT_EQUAL(plan.servers.each[1].overridden,
                    CB_PLAN_SERVER_MEMORY | CB_PLAN_SERVER_DEDUP_WINDOW);
    CU_ASSERT_EQUAL(plan.servers.each[2].overridden, 0);
    CU_ASSERT_EQUAL(plan.placement.strategy, CB_PLACEMENT_JUMP);
    CU_ASSERT_EQUAL(plan.transport.kind, CB_TRANSPORT_QUEUE);
    CU_ASSERT_EQUAL(plan.transport.compression, CB_COMPRESSION_LZ4);
    CU_ASSERT_EQUAL(plan.workload.value_dist, CB_VALUE_DIST_GPARETO);
    CU_ASSERT_EQUAL(plan.workload.pareto_scale_micro, 214476000);
    CU_ASSERT_EQUAL(plan.workload.rate_per_s, 20000);
    CU_ASSERT_EQUAL(plan.workload.mix.get_ppm, 900000);
    /* Defaults: */
    CU_ASSERT_EQUAL(plan.network.latency_ns, 100000);
    CU_ASSERT_EQUAL(plan.transport.timeout_ns, 100000000);
    CU_ASSERT_EQUAL(plan.transport.jitter_ppm, 100000);
    CU_ASSERT_EQUAL(plan.workload.zipf_alpha_micro, 990000);
    /* Faults: sorted by time, file order kept among equal times. */
    static const struct {
        uint64_t at_s;
        cb_fault_kind kind;
        const char *first;
    } want[] = {
        {5, CB_FAULT_CRASH, "server2"},   {5, CB_FAULT_CRASH, "server*"},
        {9, CB_FAULT_RECOVER, "server2"}, {12, CB_FAULT_PARTITION, "client*"},
        {15, CB_FAULT_HEAL, ""},          {20, CB_FAULT_LINK, "server1"},
    };
    CU_ASSERT_EQUAL_FATAL(plan.fault_count, 6);
    for (size_t i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(plan.faults[i].at_ns, want[i].at_s * 1000000000ull);
        CU_ASSERT_EQUAL(plan.faults[i].kind, want[i].kind);
        CU_ASSERT_STRING_EQUAL(plan.faults[i].patterns[0], want[i].first);
    }
    const cb_fault *part = &plan.faults[3];
    CU_ASSERT_EQUAL(part->pattern_count, 5);
    CU_ASSERT_EQUAL(part->group_count, 3);
    CU_ASSERT_STRING_EQUAL(part->patterns[4], "broker");
    CU_ASSERT_EQUAL(part->group[0], 0);
    CU_ASSERT_EQUAL(part->group[1], 0);
    CU_ASSERT_EQUAL(part->group[2], 1);
    CU_ASSERT_EQUAL(part->group[4], 2);
    const cb_fault *link = &plan.faults[5];
    CU_ASSERT_EQUAL(link->link_set, CB_FAULT_LINK_LATENCY | CB_FAULT_LINK_JITTER |
                                        CB_FAULT_LINK_BANDWIDTH | CB_FAULT_LINK_LOSS);
    CU_ASSERT_EQUAL(link->latency_ns, 5000000);
    CU_ASSERT_EQUAL(link->jitter_ns, 1000000);
    CU_ASSERT_EQUAL(link->bandwidth_bps, 1000000000);
    CU_ASSERT_EQUAL(link->loss_ppm, 20000);
    cb_plan_free(&plan);
    cb_plan_free(&plan); /* a freed plan is zeroed: freeing again is a no-op */
    cb_plan_free(NULL);
}

static void test_scenario_node_matches(void)
{
    CU_ASSERT_TRUE(cb_plan_node_matches("client*", CB_NODE_CLIENT, 7));
    CU_ASSERT_FALSE(cb_plan_node_matches("client*", CB_NODE_SERVER, 7));
    CU_ASSERT_TRUE(cb_plan_node_matches("server1*", CB_NODE_SERVER, 1));
    CU_ASSERT_TRUE(cb_plan_node_matches("server1*", CB_NODE_SERVER, 12));
    CU_ASSERT_FALSE(cb_plan_node_matches("server1*", CB_NODE_SERVER, 2));
    CU_ASSERT_TRUE(cb_plan_node_matches("*", CB_NODE_BROKER, 0));
    CU_ASSERT_TRUE(cb_plan_node_matches("broker", CB_NODE_BROKER, 0));
    CU_ASSERT_TRUE(cb_plan_node_matches("server2", CB_NODE_SERVER, 2));
    CU_ASSERT_FALSE(cb_plan_node_matches("server2", CB_NODE_SERVER, 20));
    /* A glob that matches some node of a large cluster loads; prefixes are exact. */
    cb_plan plan;
    cb_diag diag;
    CU_ASSERT_EQUAL(load(HEAD "[servers]\ncount = 13\n[faults]\nat = 1s crash server12*\n"
                              "at = 1s crash s*\nat = 1s crash *\n",
                         &plan, &diag),
                    CB_ERR_OK);
    cb_plan_free(&plan);
    CU_ASSERT_EQUAL(
        load(HEAD "[servers]\ncount = 12\n[faults]\nat = 1s crash server12*\n", &plan, &diag),
        CB_ERR_INVALID);
}

/* ---- explain ---- */

static char *explain_to_string(const cb_plan *plan, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(cb_plan_explain(plan, f), 0);
    fclose(f);
    return buf;
}

static void round_trip(const char *name, const char *text)
{
    cb_plan plan, again;
    cb_diag diag;
    if (load(text, &plan, &diag) != CB_ERR_OK) {
        print_diag(name, &diag);
        CU_FAIL_FATAL("round-trip input does not load");
    }
    size_t len;
    char *out = explain_to_string(&plan, &len);
    if (cb_scenario_load_string("explain.ini", out, len, &again, &diag) != CB_ERR_OK) {
        print_diag(name, &diag);
        printf("%s\n", out);
        CU_FAIL("explain output does not load");
    } else {
        CU_ASSERT_TRUE(cb_plan_equal(&plan, &again));
        /* And explaining again gives the same text. */
        size_t len2;
        char *out2 = explain_to_string(&again, &len2);
        CU_ASSERT_STRING_EQUAL(out, out2);
        free(out2);
        cb_plan_free(&again);
    }
    free(out);
    cb_plan_free(&plan);
}

static void test_scenario_explain_round_trip(void)
{
    round_trip("minimal", HEAD);
    round_trip("full", full_text);
    for (size_t i = 0; i < sizeof key_cases / sizeof key_cases[0]; i++) {
        char text[512];
        const key_case *c = &key_cases[i];
        if (strcmp(c->section, "scenario") == 0) {
            continue;
        }
        /* [broker] keys apply only with the queue transport. */
        const char *pre = strcmp(c->section, "broker") == 0 ? "[transport]\nkind = queue\n" : "";
        (void)snprintf(text, sizeof text, HEAD "%s[%s]\n%s%s = %s\n", pre, c->section, c->context,
                       c->key, c->value);
        round_trip(c->key, text);
    }
}

static void test_scenario_explain_marks_defaults(void)
{
    cb_plan plan;
    cb_diag diag;
    CU_ASSERT_EQUAL_FATAL(load(HEAD "[network]\nlatency = 1ms\n", &plan, &diag), CB_ERR_OK);
    size_t len;
    char *out = explain_to_string(&plan, &len);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nlatency = 1ms\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\njitter = 0s ; default\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nplatform = ; default\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, "\n; zipf_alpha = 0.99 ; not used") == NULL ? "" : NULL); /* zipf is on */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nzipf_alpha = 0.99 ; default\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, "\n; rate = 0/s ; not used: applies only with arrival = open\n"));
    free(out);
    cb_plan_free(&plan);
}

/* ---- files ---- */

static void test_scenario_load_file(void)
{
    cb_plan plan;
    cb_diag diag;
    CU_ASSERT_EQUAL(cb_scenario_load("/nonexistent/x.ini", &plan, &diag), CB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(diag.messages[0].text,
                           "/nonexistent/x.ini: cannot open: No such file or directory");
    int rc = cb_scenario_load(CB_SOURCE_DIR "/scenarios/quickstart.ini", &plan, &diag);
    if (rc != CB_ERR_OK) {
        print_diag("quickstart", &diag);
    }
    CU_ASSERT_EQUAL(rc, CB_ERR_OK);
    cb_plan_free(&plan);
}

/* The catalogue's names: every .ini in scenarios/ is one of them, and each is shipped. */
static const char *const catalogue[] = {
    "quickstart.ini",
    "tcp_vs_udp.ini",
    "queue_broker.ini",
    "placement_ring_vs_jump.ini",
    "replication_failover.ini",
    "partition_heal.ini",
    "hot_key.ini",
    "large_values_compression.ini",
    "trace_replay.ini",
    "two_racks.ini",
};

/* The scenario's trace, if any, reads to its end without a problem. */
static void catalogue_check_trace(const char *path, const cb_plan *plan)
{
    char trace_path[512], err[256];
    cb_trace *t = NULL;
    cb_trace_record rec;
    uint64_t n = 0;
    if (plan->workload.trace[0] == '\0') {
        return;
    }
    CU_ASSERT_FATAL(
        cb_scenario_resolve_path(path, plan->workload.trace, trace_path, sizeof trace_path) > 0);
    CU_ASSERT_EQUAL_FATAL(cb_trace_open(trace_path, plan->workload.trace_format,
                                        (uint64_t)plan->workload.trace_speed_micro, &t, err,
                                        sizeof err),
                          CB_ERR_OK);
    int rc;
    while ((rc = cb_trace_next(t, &rec)) == 1) {
        n++;
    }
    if (rc != 0) {
        printf("\n  %s\n", cb_trace_error(t));
    }
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(n >= plan->scenario.requests); /* the budget replays records that exist */
    cb_trace_close(t);
}

/* Every shipped scenario loads, states its question at the top, and explains itself. */
static void test_scenario_catalogue(void)
{
    size_t found = 0;
    DIR *d = opendir(CB_SOURCE_DIR "/scenarios");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".ini") != 0) {
            continue;
        }
        int known = 0;
        for (size_t i = 0; i < sizeof catalogue / sizeof catalogue[0]; i++) {
            known |= strcmp(e->d_name, catalogue[i]) == 0;
        }
        CU_ASSERT(known);
        found += (size_t)known;
        char path[512], head[2048];
        snprintf(path, sizeof path, "%s/scenarios/%s", CB_SOURCE_DIR, e->d_name);
        FILE *f = fopen(path, "rb");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        size_t n = fread(head, 1, sizeof head - 1, f);
        fclose(f);
        head[n] = '\0';
        CU_ASSERT_PTR_NOT_NULL(strstr(head, "Question:")); /* the header states its question */
        cb_plan plan;
        static cb_diag diag;
        int rc = cb_scenario_load(path, &plan, &diag);
        if (rc != CB_ERR_OK) {
            print_diag(e->d_name, &diag);
        }
        CU_ASSERT_EQUAL_FATAL(rc, CB_ERR_OK);
        FILE *null = fopen("/dev/null", "w");
        CU_ASSERT_EQUAL(cb_plan_explain(&plan, null), 0);
        fclose(null);
        catalogue_check_trace(path, &plan);
        cb_plan_free(&plan);
    }
    closedir(d);
    CU_ASSERT_EQUAL(found, sizeof catalogue / sizeof catalogue[0]);
}

static void test_scenario_resolve_path(void)
{
    char out[64];
    CU_ASSERT_EQUAL(cb_scenario_resolve_path("a/b/s.ini", "t.csv", out, sizeof out), 9);
    CU_ASSERT_STRING_EQUAL(out, "a/b/t.csv");
    (void)cb_scenario_resolve_path("a/s.ini", "/abs/t.csv", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "/abs/t.csv");
    (void)cb_scenario_resolve_path("s.ini", "t.csv", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "t.csv");
    CU_ASSERT_EQUAL(cb_scenario_resolve_path("a/s.ini", "t.csv", out, 4), -1);
}

/* Every reference row the schema generates is in docs/scenarios.md, verbatim. */
static void test_scenario_docs_complete(void)
{
    FILE *f = fopen(CB_SOURCE_DIR "/docs/scenarios.md", "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static char docs[1 << 17];
    size_t n = fread(docs, 1, sizeof docs - 1, f);
    docs[n] = '\0';
    fclose(f);
    char *ref = NULL;
    size_t ref_len = 0;
    FILE *m = open_memstream(&ref, &ref_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(cb_scenario_reference_print(m), 0);
    fclose(m);
    for (char *line = strtok(ref, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strstr(docs, line) == NULL) {
            printf("\n  docs/scenarios.md lacks: %s\n", line);
            CU_FAIL("docs out of date (cachebed's reference rows changed)");
        }
    }
    free(ref);
}

static void test_scenario_set_overrides(void)
{
    static const char text[] = "[scenario]\nname = s\nseed = 1\nrequests = 100\n"
                               "[clients]\ncount = 2\n";
    const char *sets[] = {"scenario.seed=42", "clients.count = 7", "network.loss=2%"};
    cb_plan plan;
    cb_diag diag;
    int rc = cb_scenario_load_string_with("s.ini", text, strlen(text), sets, 3, &plan, &diag);
    print_diag("set", &diag);
    CU_ASSERT_EQUAL_FATAL(rc, CB_ERR_OK);
    CU_ASSERT_EQUAL(plan.scenario.seed, 42);
    CU_ASSERT_EQUAL(plan.clients.count, 7);
    CU_ASSERT_EQUAL(plan.network.loss_ppm, 20000);
    CU_ASSERT_EQUAL(plan.scenario.requests, 100);
    cb_plan_free(&plan);
    /* Every bad override is reported, each naming its position. */
    const char *bad[] = {"scenario.seed", "clients.cuont=3", "nosuch.key=1", "network.loss=2"};
    rc = cb_scenario_load_string_with("s.ini", text, strlen(text), bad, 4, &plan, &diag);
    CU_ASSERT_EQUAL(rc, CB_ERR_INVALID);
    CU_ASSERT_EQUAL(diag.count, 4);
    const char *want[] = {"--set:1: expected SECTION.KEY=VALUE, got 'scenario.seed'",
                          "--set:2: [clients] cuont: unknown key", "--set:3: [nosuch]: unknown",
                          "--set:4: [network] loss:"};
    for (size_t i = 0; i < 4 && i < diag.count; i++) {
        if (strstr(diag.messages[i].text, want[i]) == NULL) {
            printf("\n  got '%s', want '%s'\n", diag.messages[i].text, want[i]);
            CU_FAIL("override message");
        }
    }
}

static const cb_test_case cases[] = {
    {"catalogue", test_scenario_catalogue},
    {"set_overrides", test_scenario_set_overrides},
    {"every_key", test_scenario_every_key},
    {"every_key_covered", test_scenario_every_key_covered},
    {"schema_sane", test_scenario_schema_sane},
    {"messages", test_scenario_messages},
    {"all_at_once", test_scenario_all_at_once},
    {"omitted", test_scenario_omitted},
    {"line_guards", test_scenario_line_guards},
    {"full_plan", test_scenario_full_plan},
    {"node_matches", test_scenario_node_matches},
    {"explain_round_trip", test_scenario_explain_round_trip},
    {"explain_marks_defaults", test_scenario_explain_marks_defaults},
    {"load_file", test_scenario_load_file},
    {"resolve_path", test_scenario_resolve_path},
    {"docs_complete", test_scenario_docs_complete},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_scenario", cases)
