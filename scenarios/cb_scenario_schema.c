/*
 * cb_scenario_schema.c: the one table of every scenario section and key — type, unit,
 * default, range, when it applies, one line of documentation — and what is generic over it:
 * parsing and range-checking a value, storing it into the plan, formatting it back, the
 * defaults, plan equality, --explain output and the reference rows of docs/scenarios.md.
 *
 * A default is written in file syntax and parsed by the same code as the user's text, so
 * the table, the plan and the documentation cannot disagree.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cb_err.h"
#include "cb_limits.h"
#include "cb_scenario_int.h"
#include "cb_units.h"

const char *const scen_section_names[SCEN_SEC_COUNT] = {
    "scenario",  "network", "servers",  "clients", "placement",
    "transport", "broker",  "workload", "faults",
};

static const char *const scen_strategies[] = {"modulo", "ring",   "rendezvous",
                                              "jump",   "maglev", NULL};
/* The names are indexed by protocols/cb_placement.h's enum ("ring" is ketama). */
_Static_assert(CB_PLACEMENT_MODULO == 0 && CB_PLACEMENT_KETAMA == 1 &&
                   CB_PLACEMENT_RENDEZVOUS == 2 && CB_PLACEMENT_JUMP == 3 &&
                   CB_PLACEMENT_MAGLEV == 4 && CB_PLACEMENT_STRATEGY_COUNT == 5,
               "scen_strategies follows cb_placement_strategy");
static const char *const scen_read_policies[] = {"primary", "any", "quorum", NULL};
static const char *const scen_write_policies[] = {"all", "quorum", "primary_async", NULL};
static const char *const scen_resyncs[] = {"lazy", "warm", NULL};
static const char *const scen_transports[] = {"tcp", "udp", "queue", NULL};
static const char *const scen_compressions[] = {"none", "lz4", "zstd", NULL};
static const char *const scen_key_dists[] = {"uniform", "zipf", "hotspot", NULL};
static const char *const scen_value_dists[] = {"fixed",   "uniform", "lognormal",
                                               "gpareto", "gev",     NULL};
static const char *const scen_arrivals[] = {"closed", "open", NULL};
static const char *const scen_trace_formats[] = {"twitter", "libcachesim_csv", "oracle_general",
                                                 NULL};

/* ---- when a key applies ---- */

static const char *na_platform(const cb_plan *p)
{
    return p->network.platform[0] != '\0' ? "does not apply when platform is set" : NULL;
}

static const char *na_ring(const cb_plan *p)
{
    return p->placement.strategy != CB_PLACEMENT_KETAMA ? "applies only with strategy = ring"
                                                        : NULL;
}

static const char *na_eject(const cb_plan *p)
{
    return p->placement.eject_after == 0 ? "applies only when eject_after > 0" : NULL;
}

static const char *na_udp(const cb_plan *p)
{
    return p->transport.kind == CB_TRANSPORT_UDP ? "does not apply with kind = udp" : NULL;
}

static const char *na_queue(const cb_plan *p)
{
    return p->transport.kind != CB_TRANSPORT_QUEUE ? "applies only with [transport] kind = queue"
                                                   : NULL;
}

static const char *na_compression(const cb_plan *p)
{
    return p->transport.compression == CB_COMPRESSION_NONE
               ? "applies only with compression = lz4 or zstd"
               : NULL;
}

static const char *na_synthetic(const cb_plan *p)
{
    return p->workload.trace[0] != '\0' ? "does not apply when trace is set" : NULL;
}

static const char *na_key_dist(const cb_plan *p, cb_key_dist want, const char *why)
{
    const char *na = na_synthetic(p);
    return na != NULL ? na : p->workload.key_dist != want ? why : NULL;
}

static const char *na_zipf(const cb_plan *p)
{
    return na_key_dist(p, CB_KEY_DIST_ZIPF, "applies only with key_dist = zipf");
}

static const char *na_hotspot(const cb_plan *p)
{
    return na_key_dist(p, CB_KEY_DIST_HOTSPOT, "applies only with key_dist = hotspot");
}

static const char *na_churn(const cb_plan *p)
{
    const char *na = na_synthetic(p);
    return na != NULL                           ? na
           : p->workload.churn_interval_ns == 0 ? "applies only when churn_interval > 0s"
                                                : NULL;
}

static const char *na_value_dist(const cb_plan *p, cb_value_dist want, const char *why)
{
    const char *na = na_synthetic(p);
    return na != NULL ? na : p->workload.value_dist != want ? why : NULL;
}

static const char *na_fixed(const cb_plan *p)
{
    return na_value_dist(p, CB_VALUE_DIST_FIXED, "applies only with value_dist = fixed");
}

static const char *na_uniform(const cb_plan *p)
{
    return na_value_dist(p, CB_VALUE_DIST_UNIFORM, "applies only with value_dist = uniform");
}

static const char *na_lognormal(const cb_plan *p)
{
    return na_value_dist(p, CB_VALUE_DIST_LOGNORMAL, "applies only with value_dist = lognormal");
}

static const char *na_gpareto(const cb_plan *p)
{
    return na_value_dist(p, CB_VALUE_DIST_GPARETO, "applies only with value_dist = gpareto");
}

static const char *na_gev(const cb_plan *p)
{
    return na_value_dist(p, CB_VALUE_DIST_GEV, "applies only with value_dist = gev");
}

static const char *na_value_cap(const cb_plan *p)
{
    if (p->workload.trace[0] != '\0') {
        return NULL; /* it caps the trace's value sizes */
    }
    return p->workload.value_dist == CB_VALUE_DIST_FIXED ? "does not apply with value_dist = fixed"
                                                         : NULL;
}

static const char *na_closed(const cb_plan *p)
{
    return p->workload.arrival != CB_ARRIVAL_CLOSED ? "applies only with arrival = closed" : NULL;
}

static const char *na_rate(const cb_plan *p)
{
    const char *na = na_synthetic(p);
    return na != NULL                               ? na
           : p->workload.arrival != CB_ARRIVAL_OPEN ? "applies only with arrival = open"
                                                    : NULL;
}

static const char *na_trace(const cb_plan *p)
{
    return p->workload.trace[0] == '\0' ? "applies only when trace is set" : NULL;
}

static const char *na_trace_speed(const cb_plan *p)
{
    const char *na = na_trace(p);
    return na != NULL                               ? na
           : p->workload.arrival != CB_ARRIVAL_OPEN ? "applies only with arrival = open"
                                                    : NULL;
}

/* ---- the table ---- */

#define FIELD(member) offsetof(cb_plan, member), sizeof(((cb_plan *)0)->member)
#define SRV(member)   offsetof(cb_plan_server, member)
#define NS_S          1000000000ull
#define DAYS_30       (30ull * 24u * 3600u * NS_S)
#define MIB           (1ull << 20)
#define MICRO         1000000ll

/* Unsigned key: section, name, type, field, default, min, max, flags, applies, doc. */
#define KU(sec, nm, ty, fld, def, lo, hi, fl, na, doc)                                             \
    {                                                                                              \
        SCEN_SEC_##sec, nm, SCEN_T_##ty, FIELD(fld), def, lo, hi, 0, 0, NULL, fl, na, 0, 0, doc    \
    }
/* Signed decimal key, range in millionths. */
#define KD(sec, nm, fld, def, lo, hi, na, doc)                                                     \
    {                                                                                              \
        SCEN_SEC_##sec, nm, SCEN_T_DECIMAL, FIELD(fld), def, 0, 0, lo, hi, NULL, 0, na, 0, 0, doc  \
    }
/* Enum key. */
#define KE(sec, nm, fld, def, choices, fl, na, doc)                                                \
    {                                                                                              \
        SCEN_SEC_##sec, nm, SCEN_T_ENUM, FIELD(fld), def, 0, 0, 0, 0, choices, fl, na, 0, 0, doc   \
    }
/* A [servers] key that a [server.N] section may override. */
#define KS(nm, ty, mem, def, lo, hi, fl, bit, doc)                                                 \
    {                                                                                              \
        SCEN_SEC_SERVERS, nm, SCEN_T_##ty, FIELD(servers.defaults.mem), def, lo, hi, 0, 0, NULL,   \
            fl, NULL, bit, SRV(mem), doc                                                           \
    }

static const scen_key scen_table[] = {
    KU(SCENARIO, "name", NAME, scenario.name, NULL, 0, 0, SCEN_F_REQUIRED, NULL,
       "run name in the results database: letters, digits, _ . -"),
    KU(SCENARIO, "seed", UINT, scenario.seed, "1", 0, UINT64_MAX, 0, NULL,
       "root seed: same seed and file, same run"),
    KU(SCENARIO, "requests", UINT, scenario.requests, "0", 0, 1000000000000ull, 0, NULL,
       "requests to issue in all; 0 = no limit (set requests, duration or both)"),
    KU(SCENARIO, "duration", DURATION, scenario.duration_ns, "0s", 0, DAYS_30, 0, NULL,
       "simulated run time; 0s = no limit (set requests, duration or both)"),
    KU(SCENARIO, "warmup", DURATION, scenario.warmup_ns, "0s", 0, DAYS_30, 0, NULL,
       "leading time whose requests are not measured; below duration"),

    KU(NETWORK, "latency", DURATION, network.latency_ns, "100us", 0, 10 * NS_S, 0, na_platform,
       "one-way delay of every link"),
    KU(NETWORK, "jitter", DURATION, network.jitter_ns, "0s", 0, 10 * NS_S, 0, na_platform,
       "extra delay per message, uniform in [0, jitter]"),
    KU(NETWORK, "bandwidth", BANDWIDTH, network.bandwidth_bps, "10Gbps", 1000ull, 1000000000000ull,
       0, na_platform, "capacity of every link"),
    KU(NETWORK, "loss", FRACTION, network.loss_ppm, "0%", 0, 1000000, 0, na_platform,
       "probability that a packet is lost"),
    KU(NETWORK, "mtu", SIZE, network.mtu_bytes, "1500B", 576, 65535, SCEN_F_BARE_OK, NULL,
       "largest packet; bigger messages are split (bare number = bytes)"),
    KU(NETWORK, "platform", PATH, network.platform, "", 0, 0, 0, NULL,
       "SimGrid platform XML replacing latency/jitter/bandwidth/loss; empty = none"),

    KU(SERVERS, "count", UINT, servers.count, "1", 1, CB_SCENARIO_SERVERS_MAX, 0, NULL,
       "cache servers, named server0..server<count-1>"),
    KS("memory", SIZE, memory_bytes, "64MiB", MIB, 1ull << 40, 0, CB_PLAN_SERVER_MEMORY,
       "memory cap of each server's store"),
    KS("value_max", SIZE, value_bytes_max, "1MiB", 20, 128 * MIB, 0, CB_PLAN_SERVER_VALUE_MAX,
       "largest value a server accepts"),
    KS("dedup_window", UINT, dedup_window, "0", 0, 65536, SCEN_F_POW2, CB_PLAN_SERVER_DEDUP_WINDOW,
       "at-most-once window per connection: 0 or a power of two"),

    KU(CLIENTS, "count", UINT, clients.count, "1", 1, CB_SCENARIO_CLIENTS_MAX, 0, NULL,
       "clients, named client0..client<count-1>"),
    KU(CLIENTS, "connections", UINT, clients.connections, "1", 1, 64, 0, NULL,
       "connections from each client to each server"),
    KU(CLIENTS, "outstanding", UINT, clients.outstanding, "1", 1, 65536, 0, NULL,
       "requests each client keeps in flight"),

    KE(PLACEMENT, "strategy", placement.strategy, "ring", scen_strategies, 0, NULL,
       "how keys map to servers"),
    KU(PLACEMENT, "vnodes", UINT, placement.vnodes, "160", 1, 1024, 0, na_ring,
       "points per server on the ring"),
    KU(PLACEMENT, "replicas", UINT, placement.replicas, "1", 1, 16, 0, NULL,
       "servers holding each key; at most [servers] count"),
    KE(PLACEMENT, "read_policy", placement.read_policy, "primary", scen_read_policies, 0, NULL,
       "which replicas a get asks"),
    KE(PLACEMENT, "write_policy", placement.write_policy, "all", scen_write_policies, 0, NULL,
       "which replicas must acknowledge a write"),
    KE(PLACEMENT, "resync", placement.resync, "lazy", scen_resyncs, 0, NULL,
       "how a recovered server gets its keys back: read repair, or a warm-up scan"),
    KU(PLACEMENT, "eject_after", UINT, placement.eject_after, "0", 0, 1000, 0, NULL,
       "consecutive failures before a client ejects a server; 0 = never"),
    KU(PLACEMENT, "eject_for", DURATION, placement.eject_for_ns, "30s", 1000000ull, 3600 * NS_S, 0,
       na_eject, "how long an ejected server stays out"),
    KU(PLACEMENT, "tombstone_ttl", DURATION, placement.tombstone_ttl_ns, "60s", 1000000ull, DAYS_30,
       0, NULL, "how long a replicated delete's tombstone blocks older writes"),

    KE(TRANSPORT, "kind", transport.kind, "tcp", scen_transports, 0, NULL,
       "tcp, udp, or queue (through a broker node)"),
    KU(TRANSPORT, "timeout", DURATION, transport.timeout_ns, "100ms", 1000ull, 3600 * NS_S, 0, NULL,
       "first attempt's wait for a reply"),
    KU(TRANSPORT, "timeout_max", DURATION, transport.timeout_max_ns, "1s", 1000ull, 3600 * NS_S, 0,
       NULL, "cap of the doubling backoff; at least timeout"),
    KU(TRANSPORT, "attempts", UINT, transport.attempts, "3", 1, 64, 0, NULL,
       "sends per request before it times out"),
    KU(TRANSPORT, "jitter", FRACTION, transport.jitter_ppm, "10%", 0, 1000000, 0, NULL,
       "random extra wait, as a share of the wait"),
    KU(TRANSPORT, "rto_min", DURATION, transport.rto_min_ns, "200ms", 1000000ull, 10 * NS_S, 0,
       na_udp, "TCP minimum retransmission timeout (Linux: 200ms)"),
    KE(TRANSPORT, "compression", transport.compression, "none", scen_compressions, 0, NULL,
       "value compression"),
    KU(TRANSPORT, "compression_level", UINT, transport.compression_level, "3", 1, 22, 0,
       na_compression, "lz4: 1..12, zstd: 1..22"),
    KU(TRANSPORT, "compression_min", SIZE, transport.compression_min_bytes, "128B", 0, 128 * MIB,
       SCEN_F_BARE_OK, na_compression, "values smaller than this are sent as they are"),
    KU(TRANSPORT, "encryption_key_file", PATH, transport.key_file, "", 0, 0, 0, NULL,
       "file with the 32-byte key that encrypts every message; empty = no encryption"),

    KU(BROKER, "service_time", DURATION, broker.service_ns, "10us", 0, 10 * NS_S, 0, na_queue,
       "broker time per delivery (one server): at most 1/service_time messages/s; 0s = none"),
    KU(BROKER, "queue_limit", UINT, broker.queue_limit, "10000", 1, 1u << 24, 0, na_queue,
       "messages the broker holds at once; a publish beyond it is refused (NACK)"),
    KU(BROKER, "ack_timeout", DURATION, broker.ack_timeout_ns, "1s", 1000ull, 3600 * NS_S, 0,
       na_queue, "redeliver a message not acknowledged within this"),
    KU(BROKER, "delivery_max", UINT, broker.delivery_max, "0", 0, 65535, 0, na_queue,
       "deliveries of one message before it is dropped; 0 = no limit"),

    KU(WORKLOAD, "keys", UINT, workload.keys, "10000", 1, 10000000000ull, 0, na_synthetic,
       "distinct keys"),
    KU(WORKLOAD, "key_size", SIZE, workload.key_bytes, "16B", 1, CB_KEY_BYTES_MAX, SCEN_F_BARE_OK,
       na_synthetic, "bytes per key (bare number = bytes)"),
    KE(WORKLOAD, "key_dist", workload.key_dist, "zipf", scen_key_dists, 0, na_synthetic,
       "key popularity"),
    KD(WORKLOAD, "zipf_alpha", workload.zipf_alpha_micro, "0.99", 10000, 4 * MICRO, na_zipf,
       "Zipf exponent (YCSB: 0.99)"),
    KU(WORKLOAD, "hot_fraction_requests", FRACTION, workload.hot_requests_ppm, "90%", 0, 1000000, 0,
       na_hotspot, "share of requests that go to the hot keys"),
    KU(WORKLOAD, "hot_fraction_keys", FRACTION, workload.hot_keys_ppm, "10%", 1, 1000000, 0,
       na_hotspot, "share of the keys that are hot"),
    KU(WORKLOAD, "churn_interval", DURATION, workload.churn_interval_ns, "0s", 0, DAYS_30, 0,
       na_synthetic, "how often the key space shifts; 0s = never"),
    KU(WORKLOAD, "churn_fraction", FRACTION, workload.churn_ppm, "10%", 1, 1000000, 0, na_churn,
       "share of the keys replaced by new ones at each shift"),
    KE(WORKLOAD, "value_dist", workload.value_dist, "fixed", scen_value_dists, 0, na_synthetic,
       "value size distribution"),
    KU(WORKLOAD, "value_size", SIZE, workload.value_bytes, "100B", 0, 128 * MIB, SCEN_F_BARE_OK,
       na_fixed, "bytes per value"),
    KU(WORKLOAD, "value_size_min", SIZE, workload.value_bytes_min, "1B", 0, 128 * MIB,
       SCEN_F_BARE_OK, na_uniform, "smallest value"),
    KU(WORKLOAD, "value_size_max", SIZE, workload.value_bytes_max, "1KiB", 0, 128 * MIB,
       SCEN_F_BARE_OK, na_uniform, "largest value; at least value_size_min"),
    KD(WORKLOAD, "lognormal_mu", workload.lognormal_mu_micro, "6", 0, 20 * MICRO, na_lognormal,
       "mean of ln(bytes)"),
    KD(WORKLOAD, "lognormal_sigma", workload.lognormal_sigma_micro, "1", 1, 10 * MICRO,
       na_lognormal, "standard deviation of ln(bytes)"),
    KD(WORKLOAD, "pareto_location", workload.pareto_location_micro, "0", 0, 1000000000 * MICRO,
       na_gpareto, "generalized Pareto location, bytes (Facebook ETC: 0)"),
    KD(WORKLOAD, "pareto_scale", workload.pareto_scale_micro, "214.476", 1, 1000000000 * MICRO,
       na_gpareto, "generalized Pareto scale, bytes (ETC: 214.476)"),
    KD(WORKLOAD, "pareto_shape", workload.pareto_shape_micro, "0.348238", -10 * MICRO, 10 * MICRO,
       na_gpareto, "generalized Pareto shape (ETC: 0.348238)"),
    KD(WORKLOAD, "gev_location", workload.gev_location_micro, "30.7984", -1000000000 * MICRO,
       1000000000 * MICRO, na_gev, "GEV location, bytes (ETC key sizes: 30.7984)"),
    KD(WORKLOAD, "gev_scale", workload.gev_scale_micro, "8.20449", 1, 1000000000 * MICRO, na_gev,
       "GEV scale, bytes (ETC key sizes: 8.20449)"),
    KD(WORKLOAD, "gev_shape", workload.gev_shape_micro, "0.078688", -10 * MICRO, 10 * MICRO, na_gev,
       "GEV shape (ETC key sizes: 0.078688)"),
    KU(WORKLOAD, "value_cap", SIZE, workload.value_cap_bytes, "1MiB", 1, 128 * MIB, SCEN_F_BARE_OK,
       na_value_cap, "drawn or traced value sizes above this are cut to it"),
    KU(WORKLOAD, "mix", MIX, workload.mix, "get=0.9 set=0.1", 0, 0, 0, na_synthetic,
       "operation shares: get= set= delete= incr=, adding up to 1"),
    KU(WORKLOAD, "rmw", FRACTION, workload.rmw_ppm, "0%", 0, 1000000, 0, na_synthetic,
       "share of sets issued as read-modify-write (get, then set)"),
    KE(WORKLOAD, "arrival", workload.arrival, "closed", scen_arrivals, 0, NULL,
       "closed: outstanding requests per client; open: Poisson arrivals"),
    KU(WORKLOAD, "think_time", DURATION, workload.think_ns, "0s", 0, 3600 * NS_S, 0, na_closed,
       "pause between a reply and the next request"),
    KU(WORKLOAD, "rate", RATE, workload.rate_per_s, NULL, 1, 1000000000, SCEN_F_REQUIRED_IF_APPLIES,
       na_rate, "requests per second of all clients together"),
    KU(WORKLOAD, "trace", PATH, workload.trace, "", 0, 0, 0, NULL,
       "cache trace to replay instead of a synthetic workload; empty = none"),
    KE(WORKLOAD, "trace_format", workload.trace_format, NULL, scen_trace_formats,
       SCEN_F_REQUIRED_IF_APPLIES, na_trace, "format of the trace file (plain or zstd)"),
    KD(WORKLOAD, "trace_speed", workload.trace_speed_micro, "1", 1000, 1000 * MICRO, na_trace_speed,
       "trace time is divided by this (2 = twice as fast)"),

    {SCEN_SEC_FAULTS, "at", SCEN_T_FAULT, 0, 0, NULL, 0, 0, 0, 0, NULL, 0, NULL, 0, 0,
     "a timed event; repeat the key for a timeline (see Faults)"},
};

const scen_key *scen_keys(void)
{
    return scen_table;
}

size_t scen_key_count(void)
{
    return sizeof scen_table / sizeof scen_table[0];
}

const scen_key *scen_key_find(scen_section section, const char *name)
{
    for (size_t i = 0; i < scen_key_count(); i++) {
        if (scen_table[i].section == section && strcmp(scen_table[i].name, name) == 0) {
            return &scen_table[i];
        }
    }
    return NULL;
}

/* ---- parsing one value ---- */

static bool scen_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

static int scen_parse_name(const char *text, scen_value *v, char *err, size_t err_cap)
{
    size_t len = strnlen(text, CB_PLAN_NAME_BYTES_MAX + 1);
    bool ok = len > 0 && len <= CB_PLAN_NAME_BYTES_MAX;
    for (size_t i = 0; ok && i < len; i++) {
        ok = scen_name_char(text[i]);
    }
    if (!ok) {
        (void)snprintf(err, err_cap, "expected a name of 1 to %u letters, digits, '_', '.' or '-'",
                       CB_PLAN_NAME_BYTES_MAX);
        return CB_ERR_INVALID;
    }
    v->text = text;
    return CB_ERR_OK;
}

static int scen_parse_path(const char *text, scen_value *v, char *err, size_t err_cap)
{
    if (strnlen(text, CB_PLAN_PATH_BYTES_MAX + 1) > CB_PLAN_PATH_BYTES_MAX) {
        (void)snprintf(err, err_cap, "path too long: at most %u characters",
                       CB_PLAN_PATH_BYTES_MAX);
        return CB_ERR_TOO_LARGE;
    }
    v->text = text;
    return CB_ERR_OK;
}

/* "modulo, ring, rendezvous, jump, maglev" */
static void scen_choices_join(const char *const *choices, char *out, size_t out_cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; choices[i] != NULL && used < out_cap; i++) {
        int n = snprintf(out + used, out_cap - used, "%s%s", i > 0 ? ", " : "", choices[i]);
        used += n > 0 ? (size_t)n : 0;
    }
}

static int scen_parse_enum(const scen_key *k, const char *text, scen_value *v, char *err,
                           size_t err_cap)
{
    size_t best = SIZE_MAX, best_dist = 3;
    for (size_t i = 0; k->choices[i] != NULL; i++) {
        if (strcmp(k->choices[i], text) == 0) {
            v->u = i;
            return CB_ERR_OK;
        }
        size_t d = scen_edit_distance(text, k->choices[i], 2);
        if (d < best_dist) {
            best = i;
            best_dist = d;
        }
    }
    /* The list is joined straight into err after the prefix, cut at err_cap. */
    int n =
        best != SIZE_MAX
            ? snprintf(err, err_cap, "unknown choice '%s' (did you mean '%s'?): expected one of ",
                       text, k->choices[best])
            : snprintf(err, err_cap, "unknown choice '%s': expected one of ", text);
    if (n > 0 && (size_t)n < err_cap) {
        scen_choices_join(k->choices, err + n, err_cap - (size_t)n);
    }
    return CB_ERR_INVALID;
}

static const char scen_mix_expect[] =
    "expected operation shares like 'get=0.9 set=0.08 delete=0.02' (get, set, delete, incr; "
    "ratios or percentages adding up to 1)";

/* One `op=share` token into the mix; `seen` guards against repeats. */
static int scen_mix_token(const char *tok, cb_plan_mix *mix, unsigned *seen, char *err,
                          size_t err_cap)
{
    static const char *const ops[] = {"get", "set", "delete", "incr"};
    uint32_t *slots[] = {&mix->get_ppm, &mix->set_ppm, &mix->delete_ppm, &mix->incr_ppm};
    const char *eq = strchr(tok, '=');
    char unit_err[SCEN_ERR_BYTES];
    for (size_t i = 0; eq != NULL && i < 4; i++) {
        size_t len = strlen(ops[i]);
        if ((size_t)(eq - tok) != len || strncmp(tok, ops[i], len) != 0) {
            continue;
        }
        if (*seen & (1u << i)) {
            (void)snprintf(err, err_cap, "'%s' given twice: %s", ops[i], scen_mix_expect);
            return CB_ERR_INVALID;
        }
        *seen |= 1u << i;
        if (cb_units_parse_fraction(eq + 1, slots[i], unit_err, sizeof unit_err) != CB_ERR_OK ||
            *slots[i] > 1000000u) {
            (void)snprintf(err, err_cap, "bad share '%s': %s", tok, scen_mix_expect);
            return CB_ERR_INVALID;
        }
        return CB_ERR_OK;
    }
    (void)snprintf(err, err_cap, "bad item '%.40s': %s", tok, scen_mix_expect);
    return CB_ERR_INVALID;
}

static int scen_parse_mix(const char *text, scen_value *v, char *err, size_t err_cap)
{
    char tok[48];
    unsigned seen = 0;
    memset(&v->mix, 0, sizeof v->mix);
    for (const char *p = text; *p != '\0';) {
        size_t len = strcspn(p, " \t");
        if (len >= sizeof tok) {
            (void)snprintf(err, err_cap, "bad item '%.40s...': %s", p, scen_mix_expect);
            return CB_ERR_INVALID;
        }
        memcpy(tok, p, len);
        tok[len] = '\0';
        if (len > 0 && scen_mix_token(tok, &v->mix, &seen, err, err_cap) != CB_ERR_OK) {
            return CB_ERR_INVALID;
        }
        p += len;
        p += strspn(p, " \t");
    }
    uint64_t sum = (uint64_t)v->mix.get_ppm + v->mix.set_ppm + v->mix.delete_ppm + v->mix.incr_ppm;
    if (sum != 1000000u) {
        char total[CB_UNITS_FORMAT_BYTES];
        (void)cb_units_format_ratio(sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum, total,
                                    sizeof total);
        (void)snprintf(err, err_cap, "shares add up to %s, not 1: %s", total, scen_mix_expect);
        return CB_ERR_INVALID;
    }
    return CB_ERR_OK;
}

static int scen_parse_raw(const scen_key *k, const char *text, scen_value *v, char *err,
                          size_t err_cap)
{
    unsigned bare = (k->flags & SCEN_F_BARE_OK) ? CB_UNITS_BARE_OK : 0;
    uint32_t ppm = 0;
    int rc;
    switch (k->type) {
    case SCEN_T_NAME:
        return scen_parse_name(text, v, err, err_cap);
    case SCEN_T_PATH:
        return scen_parse_path(text, v, err, err_cap);
    case SCEN_T_UINT:
        return cb_units_parse_uint(text, &v->u, err, err_cap);
    case SCEN_T_DURATION:
        return cb_units_parse_duration(text, bare, &v->u, err, err_cap);
    case SCEN_T_SIZE:
        return cb_units_parse_size(text, bare, &v->u, err, err_cap);
    case SCEN_T_BANDWIDTH:
        return cb_units_parse_bandwidth(text, &v->u, err, err_cap);
    case SCEN_T_FRACTION:
        rc = cb_units_parse_fraction(text, &ppm, err, err_cap);
        v->u = ppm;
        return rc;
    case SCEN_T_DECIMAL:
        return cb_units_parse_decimal(text, &v->s, err, err_cap);
    case SCEN_T_ENUM:
        return scen_parse_enum(k, text, v, err, err_cap);
    case SCEN_T_RATE:
        return cb_units_parse_rate(text, &v->u, err, err_cap);
    case SCEN_T_MIX:
        return scen_parse_mix(text, v, err, err_cap);
    case SCEN_T_FAULT:
        break;
    }
    (void)snprintf(err, err_cap, "not a plain value");
    return CB_ERR_INVALID;
}

/* Format an unsigned value of a numeric type in its unit. */
static void scen_format_u(scen_type type, uint64_t u, char *out, size_t out_cap)
{
    switch (type) {
    case SCEN_T_DURATION:
        (void)cb_units_format_duration(u, out, out_cap);
        return;
    case SCEN_T_SIZE:
        (void)cb_units_format_size(u, out, out_cap);
        return;
    case SCEN_T_BANDWIDTH:
        (void)cb_units_format_bandwidth(u, out, out_cap);
        return;
    case SCEN_T_FRACTION:
        (void)cb_units_format_percent(u > UINT32_MAX ? UINT32_MAX : (uint32_t)u, out, out_cap);
        return;
    case SCEN_T_RATE:
        (void)cb_units_format_rate(u, out, out_cap);
        return;
    default:
        (void)cb_units_format_uint(u, out, out_cap);
        return;
    }
}

static bool scen_is_unsigned(scen_type type)
{
    return type == SCEN_T_UINT || type == SCEN_T_DURATION || type == SCEN_T_SIZE ||
           type == SCEN_T_BANDWIDTH || type == SCEN_T_FRACTION || type == SCEN_T_RATE;
}

static int scen_check_range(const scen_key *k, const scen_value *v, char *err, size_t err_cap)
{
    char val[CB_UNITS_FORMAT_BYTES], lim[CB_UNITS_FORMAT_BYTES];
    if (scen_is_unsigned(k->type) && (v->u < k->min || v->u > k->max)) {
        scen_format_u(k->type, v->u, val, sizeof val);
        scen_format_u(k->type, v->u < k->min ? k->min : k->max, lim, sizeof lim);
        (void)snprintf(err, err_cap, "out of range: %s is %s %s", val,
                       v->u < k->min ? "below the minimum" : "above the maximum", lim);
        return CB_ERR_INVALID;
    }
    if (k->type == SCEN_T_DECIMAL && (v->s < k->smin || v->s > k->smax)) {
        (void)cb_units_format_decimal(v->s, val, sizeof val);
        (void)cb_units_format_decimal(v->s < k->smin ? k->smin : k->smax, lim, sizeof lim);
        (void)snprintf(err, err_cap, "out of range: %s is %s %s", val,
                       v->s < k->smin ? "below the minimum" : "above the maximum", lim);
        return CB_ERR_INVALID;
    }
    if ((k->flags & SCEN_F_POW2) && (v->u & (v->u - 1u)) != 0) {
        (void)snprintf(err, err_cap, "%" PRIu64 " is not 0 or a power of two (1, 2, 4, ...)", v->u);
        return CB_ERR_INVALID;
    }
    return CB_ERR_OK;
}

int scen_value_parse(const scen_key *k, const char *text, scen_value *v, char *err, size_t err_cap)
{
    char why[SCEN_ERR_BYTES];
    memset(v, 0, sizeof *v);
    int rc = scen_parse_raw(k, text, v, why, sizeof why);
    if (rc != CB_ERR_OK) {
        (void)snprintf(err, err_cap, "bad value '%.60s': %s", text, why);
        return rc;
    }
    return scen_check_range(k, v, err, err_cap);
}

/* ---- storing and reading plan fields ---- */

static void scen_field_put_u(void *field, size_t width, uint64_t u)
{
    if (width == sizeof(uint32_t)) {
        uint32_t narrow = (uint32_t)u; /* the table's max keeps 4-byte fields below 2^32 */
        memcpy(field, &narrow, sizeof narrow);
    } else {
        memcpy(field, &u, sizeof u);
    }
}

static uint64_t scen_field_get_u(const void *field, size_t width)
{
    if (width == sizeof(uint32_t)) {
        uint32_t narrow;
        memcpy(&narrow, field, sizeof narrow);
        return narrow;
    }
    uint64_t u;
    memcpy(&u, field, sizeof u);
    return u;
}

/* The field of `k` in the plan, or in a per-server struct. */
static size_t scen_field_offset(const scen_key *k, bool per_server)
{
    return per_server ? k->server_offset : k->offset;
}

void scen_value_store(const scen_key *k, const scen_value *v, void *base, bool per_server)
{
    char *field = (char *)base + scen_field_offset(k, per_server);
    switch (k->type) {
    case SCEN_T_NAME:
    case SCEN_T_PATH:
        memset(field, 0, k->width);
        memcpy(field, v->text, strnlen(v->text, k->width - 1));
        return;
    case SCEN_T_DECIMAL:
        memcpy(field, &v->s, sizeof v->s);
        return;
    case SCEN_T_MIX:
        memcpy(field, &v->mix, sizeof v->mix);
        return;
    case SCEN_T_FAULT:
        return;
    default:
        scen_field_put_u(field, k->width, v->u);
        return;
    }
}

static void scen_format_mix(const cb_plan_mix *mix, char *out, size_t out_cap)
{
    static const char *const ops[] = {"get", "set", "delete", "incr"};
    const uint32_t shares[] = {mix->get_ppm, mix->set_ppm, mix->delete_ppm, mix->incr_ppm};
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < 4 && used < out_cap; i++) {
        char ratio[CB_UNITS_FORMAT_BYTES];
        if (shares[i] == 0) {
            continue;
        }
        (void)cb_units_format_ratio(shares[i], ratio, sizeof ratio);
        int n = snprintf(out + used, out_cap - used, "%s%s=%s", used > 0 ? " " : "", ops[i], ratio);
        used += n > 0 ? (size_t)n : 0;
    }
}

void scen_value_format(const scen_key *k, const cb_plan *plan, const cb_plan_server *server,
                       char *out, size_t out_cap)
{
    const char *base = server != NULL ? (const char *)server : (const char *)plan;
    const char *field = base + scen_field_offset(k, server != NULL);
    int64_t s;
    cb_plan_mix mix;
    switch (k->type) {
    case SCEN_T_NAME:
    case SCEN_T_PATH:
        (void)snprintf(out, out_cap, "%.*s", (int)(k->width - 1), field);
        return;
    case SCEN_T_DECIMAL:
        memcpy(&s, field, sizeof s);
        (void)cb_units_format_decimal(s, out, out_cap);
        return;
    case SCEN_T_ENUM: {
        uint64_t i = scen_field_get_u(field, k->width);
        (void)snprintf(out, out_cap, "%s", k->choices[i]);
        return;
    }
    case SCEN_T_MIX:
        memcpy(&mix, field, sizeof mix);
        scen_format_mix(&mix, out, out_cap);
        return;
    case SCEN_T_FAULT:
        out[0] = '\0';
        return;
    default:
        scen_format_u(k->type, scen_field_get_u(field, k->width), out, out_cap);
        return;
    }
}

void scen_plan_defaults(cb_plan *plan)
{
    for (size_t i = 0; i < scen_key_count(); i++) {
        const scen_key *k = &scen_table[i];
        scen_value v;
        char err[SCEN_ERR_BYTES];
        if (k->def == NULL || k->type == SCEN_T_FAULT) {
            continue;
        }
        /* The table's defaults parse (a test checks each); the range is not checked here
         * because "not set" defaults such as rate may sit outside it. */
        memset(&v, 0, sizeof v);
        if (scen_parse_raw(k, k->def, &v, err, sizeof err) == CB_ERR_OK) {
            scen_value_store(k, &v, plan, false);
        }
    }
}

size_t scen_edit_distance(const char *a, const char *b, size_t cap)
{
    /* Two rows of the Levenshtein table; names longer than 63 characters are "far". */
    size_t row[64], next[64];
    size_t la = strnlen(a, 64), lb = strnlen(b, 64);
    if (la >= 64 || lb >= 64) {
        return cap + 1;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        next[0] = i;
        size_t low = next[0];
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = row[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = row[j] + 1, ins = next[j - 1] + 1;
            next[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            low = next[j] < low ? next[j] : low;
        }
        if (low > cap) {
            return cap + 1;
        }
        memcpy(row, next, (lb + 1) * sizeof row[0]);
    }
    return row[lb] > cap ? cap + 1 : row[lb];
}

/* ---- equality ---- */

static bool scen_field_equal(const scen_key *k, const cb_plan *a, const cb_plan *b)
{
    const char *fa = (const char *)a + k->offset;
    const char *fb = (const char *)b + k->offset;
    if (k->type == SCEN_T_FAULT) {
        return true;
    }
    if (k->type == SCEN_T_NAME || k->type == SCEN_T_PATH) {
        return strncmp(fa, fb, k->width) == 0;
    }
    return memcmp(fa, fb, k->width) == 0; /* integers and cb_plan_mix have no padding */
}

static bool scen_server_equal(const cb_plan_server *a, const cb_plan_server *b)
{
    return a->memory_bytes == b->memory_bytes && a->value_bytes_max == b->value_bytes_max &&
           a->dedup_window == b->dedup_window && a->overridden == b->overridden;
}

static bool scen_fault_equal(const cb_fault *a, const cb_fault *b)
{
    if (a->at_ns != b->at_ns || a->kind != b->kind || a->pattern_count != b->pattern_count ||
        a->group_count != b->group_count || a->link_set != b->link_set ||
        a->latency_ns != b->latency_ns || a->jitter_ns != b->jitter_ns ||
        a->bandwidth_bps != b->bandwidth_bps || a->loss_ppm != b->loss_ppm) {
        return false;
    }
    for (uint32_t i = 0; i < a->pattern_count && i < CB_FAULT_PATTERNS_MAX; i++) {
        if (strncmp(a->patterns[i], b->patterns[i], CB_NODE_PATTERN_BYTES) != 0 ||
            a->group[i] != b->group[i]) {
            return false;
        }
    }
    return true;
}

bool cb_plan_equal(const cb_plan *a, const cb_plan *b)
{
    for (size_t i = 0; i < scen_key_count(); i++) {
        if (!scen_field_equal(&scen_table[i], a, b)) {
            return false;
        }
    }
    if (a->servers.count != b->servers.count || a->fault_count != b->fault_count ||
        (a->servers.each == NULL) != (b->servers.each == NULL)) {
        return false;
    }
    for (uint32_t i = 0; a->servers.each != NULL && i < a->servers.count; i++) {
        if (!scen_server_equal(&a->servers.each[i], &b->servers.each[i])) {
            return false;
        }
    }
    for (size_t i = 0; i < a->fault_count; i++) {
        if (!scen_fault_equal(&a->faults[i], &b->faults[i])) {
            return false;
        }
    }
    return true;
}

/* ---- explain ---- */

static void scen_explain_key(const scen_key *k, const cb_plan *plan, const cb_plan *defaults,
                             FILE *out)
{
    char val[CB_SCENARIO_LINE_BYTES_MAX + 1], def[CB_SCENARIO_LINE_BYTES_MAX + 1];
    const char *na = k->not_applicable != NULL ? k->not_applicable(plan) : NULL;
    scen_value_format(k, plan, NULL, val, sizeof val);
    scen_value_format(k, defaults, NULL, def, sizeof def);
    bool is_default = k->def != NULL && strcmp(val, def) == 0;
    fprintf(out, "; %s\n", k->doc);
    if (na != NULL) {
        fprintf(out, "; %s = %s ; not used: %s\n", k->name, val, na);
    } else if (is_default) {
        fprintf(out, "%s =%s%s ; default\n", k->name, val[0] != '\0' ? " " : "", val);
    } else {
        fprintf(out, "%s = %s\n", k->name, val);
    }
}

static void scen_explain_overrides(const cb_plan *plan, FILE *out)
{
    for (uint32_t i = 0; plan->servers.each != NULL && i < plan->servers.count; i++) {
        const cb_plan_server *srv = &plan->servers.each[i];
        if (srv->overridden == 0) {
            continue;
        }
        fprintf(out, "\n[server.%" PRIu32 "]\n", i);
        for (size_t j = 0; j < scen_key_count(); j++) {
            const scen_key *k = &scen_table[j];
            char val[CB_UNITS_FORMAT_BYTES];
            if (k->server_bit == 0 || !(srv->overridden & k->server_bit)) {
                continue;
            }
            scen_value_format(k, plan, srv, val, sizeof val);
            fprintf(out, "%s = %s\n", k->name, val);
        }
    }
}

static void scen_explain_faults(const cb_plan *plan, FILE *out)
{
    fprintf(out, "\n[faults]\n; %zu event(s), in time order\n", plan->fault_count);
    for (size_t i = 0; i < plan->fault_count; i++) {
        char text[CB_SCENARIO_LINE_BYTES_MAX + 1];
        scen_fault_format(&plan->faults[i], text, sizeof text);
        fprintf(out, "at = %s\n", text);
    }
}

int cb_plan_explain(const cb_plan *plan, FILE *out)
{
    cb_plan defaults;
    memset(&defaults, 0, sizeof defaults);
    scen_plan_defaults(&defaults);
    fprintf(out,
            "; The full plan of scenario '%s': every key, defaults marked.\n"
            "; Keys that do not apply are commented out, with the reason.\n",
            plan->scenario.name);
    for (int s = 0; s < SCEN_SEC_FAULTS; s++) {
        fprintf(out, "\n[%s]\n", scen_section_names[s]);
        for (size_t i = 0; i < scen_key_count(); i++) {
            if (scen_table[i].section == (scen_section)s) {
                scen_explain_key(&scen_table[i], plan, &defaults, out);
            }
        }
        if (s == SCEN_SEC_SERVERS) {
            scen_explain_overrides(plan, out);
        }
    }
    scen_explain_faults(plan, out);
    return ferror(out) ? -1 : 0;
}

/* ---- reference rows for docs/scenarios.md ---- */

static const char *scen_type_doc(scen_type type)
{
    static const char *const names[] = {
        "name",     "path",   "integer", "duration", "size", "bandwidth",
        "fraction", "number", "choice",  "rate",     "mix",  "fault",
    };
    return names[type];
}

static void scen_range_doc(const scen_key *k, char *out, size_t out_cap)
{
    char lo[CB_UNITS_FORMAT_BYTES], hi[CB_UNITS_FORMAT_BYTES];
    if (scen_is_unsigned(k->type)) {
        scen_format_u(k->type, k->min, lo, sizeof lo);
        scen_format_u(k->type, k->max, hi, sizeof hi);
        (void)snprintf(out, out_cap, "%s .. %s%s", lo, hi,
                       (k->flags & SCEN_F_POW2) ? ", 0 or a power of two" : "");
    } else if (k->type == SCEN_T_DECIMAL) {
        (void)cb_units_format_decimal(k->smin, lo, sizeof lo);
        (void)cb_units_format_decimal(k->smax, hi, sizeof hi);
        (void)snprintf(out, out_cap, "%s .. %s", lo, hi);
    } else if (k->type == SCEN_T_ENUM) {
        scen_choices_join(k->choices, out, out_cap);
    } else if (k->type == SCEN_T_NAME) {
        (void)snprintf(out, out_cap, "1 .. %u characters", CB_PLAN_NAME_BYTES_MAX);
    } else if (k->type == SCEN_T_PATH) {
        (void)snprintf(out, out_cap, "0 .. %u characters", CB_PLAN_PATH_BYTES_MAX);
    } else if (k->type == SCEN_T_MIX) {
        (void)snprintf(out, out_cap, "each 0 .. 1, adding up to 1");
    } else {
        (void)snprintf(out, out_cap, "see Faults");
    }
}

static void scen_default_doc(const scen_key *k, char *out, size_t out_cap)
{
    if (k->flags & SCEN_F_REQUIRED) {
        (void)snprintf(out, out_cap, "required");
    } else if (k->flags & SCEN_F_REQUIRED_IF_APPLIES) {
        (void)snprintf(out, out_cap, "required when it applies");
    } else if (k->def == NULL) {
        (void)snprintf(out, out_cap, "none");
    } else if (k->def[0] == '\0') {
        (void)snprintf(out, out_cap, "empty");
    } else {
        (void)snprintf(out, out_cap, "`%s`", k->def);
    }
}

int cb_scenario_reference_print(FILE *out)
{
    for (int s = 0; s < SCEN_SEC_COUNT; s++) {
        fprintf(out,
                "### [%s]\n\n| key | unit | default | range | meaning |\n"
                "| --- | --- | --- | --- | --- |\n",
                scen_section_names[s]);
        for (size_t i = 0; i < scen_key_count(); i++) {
            const scen_key *k = &scen_table[i];
            char range[200], def[80];
            if (k->section != (scen_section)s) {
                continue;
            }
            scen_range_doc(k, range, sizeof range);
            scen_default_doc(k, def, sizeof def);
            fprintf(out, "| `%s` | %s | %s | %s | %s |\n", k->name, scen_type_doc(k->type), def,
                    range, k->doc);
        }
        fprintf(out, "\n");
    }
    return ferror(out) ? -1 : 0;
}
