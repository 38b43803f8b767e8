/*
 * cli_run.c: `cachebed run SCENARIO` — load and validate a scenario, run it, log it, summarise.
 *
 * Runs execute inside SimGrid (sim/cb_sgworld: CM02 model, a star of split-duplex links,
 * latency, bandwidth, jitter and loss from the scenario; docs/simulator.md), or with
 * --world memnet on the in-memory network (sim/cb_memworld: latency, jitter and loss, no
 * bandwidth). Both run the same protocol machines, workload and results database. A
 * [workload] trace is replayed (cb_trace, through the runner's demultiplexer). The [faults]
 * timeline runs in SimGrid (sim/cb_sgfaults); --world memnet applies its server crashes and
 * recoveries, partitions and heals, and refuses the rest. [placement] replicas > 1 makes every
 * client a cb_router (docs/replication.md); [transport] compression and encryption_key_file
 * set the machines' codec (docs/protocol.md §5-§6). [transport] kind = queue adds the
 * broker node with its [broker] settings (SimGrid only; docs/simulator.md "Queue
 * transport"); with [placement] resync = warm the resyncer is one more node after it,
 * reaching the servers through the broker like a client. A [network] platform file
 * replaces the star in SimGrid. Features a run cannot honour (the queue transport,
 * platform files and some faults on the in-memory network) are refused, never silently
 * ignored.
 */
#include "cb_cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cb_err.h"
#include "cb_memworld.h"
#include "cb_query.h"
#include "cb_runner.h"
#include "cb_scenario.h"
#include "cb_sgfaults.h"
#include "cb_sgworld.h"
#include "cb_compress.h"
#include "cb_seal.h"
#include "cb_trace.h"

#define CLI_RUN_SETS_MAX 64

const char cb_cli_run_help[] =
    "usage: cachebed run SCENARIO [-o RESULTS.db] [--seed N] [--set SECTION.KEY=VALUE ...]\n"
    "                    [--world sim|memnet] [--explain] [--quiet]\n"
    "\n"
    "Loads SCENARIO (an .ini file, reference in docs/scenarios.md), validates it — every\n"
    "problem is reported at once, with file:line — and runs it: the scenario's clients send\n"
    "its seeded workload to its servers, and every request, event and the run's summary go\n"
    "to the results database (default results.db; schema in docs/results.md). Ends with a\n"
    "summary table: throughput, latency percentiles, hit ratio, timeouts, errors.\n"
    "\n"
    "  -o PATH        results database (created if missing; runs are appended)\n"
    "  --seed N       same as --set scenario.seed=N\n"
    "  --set S.K=V    override one key of the file (repeatable)\n"
    "  --world W      sim (default): SimGrid, with the scenario's bandwidth; memnet: the\n"
    "                 in-memory network (no bandwidth model; much faster for big runs)\n"
    "  --explain      print the validated plan, every default filled in, and exit\n"
    "  --quiet        no progress line\n"
    "\n"
    "In both worlds tcp is an ordered stream that pays a retransmission timeout (rto_min)\n"
    "per lost packet, and udp drops datagrams (the client retries); in SimGrid a tcp\n"
    "connection's set-up also costs a round trip. The [faults] timeline (crash, recover,\n"
    "partition, heal, link changes; docs/simulator.md) runs in SimGrid; --world memnet\n"
    "applies server crash/recover, partition and heal and refuses the rest (exit 3).\n"
    "replicas > 1 runs a replication router in every client (read_policy, write_policy,\n"
    "eject_after, eject_for); compression and encryption_key_file (path relative to\n"
    "SCENARIO, made by 'cachebed keygen') apply to every client and server. kind = queue\n"
    "routes every request and reply through a broker node ([broker] settings; --world sim\n"
    "only); resync = warm's resyncer then goes through the broker too. A [network]\n"
    "platform (SimGrid XML, path relative to SCENARIO) replaces the star: nodes map onto\n"
    "its hosts by name (server0.., client0.., broker, resync) or in host-name order\n"
    "(docs/scenarios.md). A\n"
    "[workload] trace (path relative to\n"
    "SCENARIO) is replayed: open loop at its timestamps / trace_speed, or closed loop; the\n"
    "run ends at the trace's end.\n"
    "\n"
    "Exit status: 0 ok, 1 the scenario is invalid or the run failed, 2 bad usage,\n"
    "3 the scenario needs something not built yet.\n";

typedef struct cli_run_args {
    const char *scenario;
    const char *db_path;
    const char *sets[CLI_RUN_SETS_MAX + 1];
    size_t set_count;
    char seed_set[48];
    int explain;
    int quiet;
    int memnet;                  /* --world memnet */
    const cb_cli_world_ops *ops; /* another verb's world (replay), or NULL */
} cli_run_args;

/* The verb the user typed: `run`, or the verb whose world this is (`replay`). */
static const char *cli_run_verb(const cli_run_args *a)
{
    return a->ops != NULL ? a->ops->verb : "run";
}

/* An error line on stderr, prefixed "cachebed VERB: " with that verb. */
__attribute__((format(printf, 2, 3))) static void cli_run_err(const cli_run_args *a,
                                                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cachebed %s: ", cli_run_verb(a));
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

static int cli_run_add_set(cli_run_args *a, const char *s)
{
    if (a->set_count == CLI_RUN_SETS_MAX) {
        cli_run_err(a, "at most %d --set options\n", CLI_RUN_SETS_MAX);
        return CB_CLI_EXIT_USAGE;
    }
    a->sets[a->set_count++] = s;
    return CB_CLI_EXIT_OK;
}

/* The value after option argv[*i], or NULL (with a message) when it is missing. */
static const char *cli_run_value(const cli_run_args *a, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        cli_run_err(a, "option '%s' needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int cli_run_parse(int argc, char **argv, cli_run_args *a, const cb_cli_world_ops *ops)
{
    memset(a, 0, sizeof *a);
    a->ops = ops;
    a->db_path = "results.db";
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *v = NULL;
        int rc = CB_CLI_EXIT_OK;
        if (ops != NULL && strcmp(arg, "--world") == 0) {
            fprintf(stderr, "cachebed %s: --world is for 'cachebed run'\n", ops->verb);
            return CB_CLI_EXIT_USAGE;
        }
        if (strcmp(arg, "-o") == 0 || strcmp(arg, "--seed") == 0 || strcmp(arg, "--set") == 0 ||
            strcmp(arg, "--world") == 0) {
            if ((v = cli_run_value(a, argc, argv, &i)) == NULL) {
                return CB_CLI_EXIT_USAGE;
            }
        }
        if (strcmp(arg, "-o") == 0) {
            a->db_path = v;
        } else if (strcmp(arg, "--set") == 0) {
            rc = cli_run_add_set(a, v);
        } else if (strcmp(arg, "--seed") == 0) {
            snprintf(a->seed_set, sizeof a->seed_set, "scenario.seed=%s", v);
            rc = cli_run_add_set(a, a->seed_set);
        } else if (strcmp(arg, "--world") == 0) {
            if (strcmp(v, "sim") != 0 && strcmp(v, "memnet") != 0) {
                cli_run_err(a, "--world is sim or memnet, not '%s'\n", v);
                return CB_CLI_EXIT_USAGE;
            }
            a->memnet = strcmp(v, "memnet") == 0;
        } else if (strcmp(arg, "--explain") == 0) {
            a->explain = 1;
        } else if (strcmp(arg, "--quiet") == 0) {
            a->quiet = 1;
        } else if (arg[0] == '-') {
            cli_run_err(a, "unknown option '%s' (try 'cachebed %s --help')\n", arg,
                        cli_run_verb(a));
            return CB_CLI_EXIT_USAGE;
        } else if (a->scenario == NULL) {
            a->scenario = arg;
        } else {
            cli_run_err(a, "one scenario at a time ('%s' is extra)\n", arg);
            return CB_CLI_EXIT_USAGE;
        }
        if (rc != CB_CLI_EXIT_OK) {
            return rc;
        }
    }
    if (a->scenario == NULL) {
        fprintf(stderr, "usage: cachebed %s SCENARIO [options] (try 'cachebed %s --help')\n",
                cli_run_verb(a), cli_run_verb(a));
        return CB_CLI_EXIT_USAGE;
    }
    return CB_CLI_EXIT_OK;
}

/* Why this plan cannot run yet, or NULL. */
static const char *cli_run_unsupported(const cb_plan *p, const cli_run_args *a)
{
    const char *why = a->ops != NULL ? a->ops->unsupported(a->ops->user, p) : NULL;
    if (why != NULL) {
        return why;
    }
    for (size_t i = 0; a->memnet && i < p->fault_count; i++) {
        const cb_fault *f = &p->faults[i];
        if (f->kind == CB_FAULT_LINK) {
            return "[faults] link changes on --world memnet (it applies server crash and "
                   "recover, partition and heal; the rest needs --world sim)";
        }
        for (uint32_t c = 0; (f->kind == CB_FAULT_CRASH || f->kind == CB_FAULT_RECOVER) &&
                             c < p->clients.count;
             c++) {
            if (cb_plan_node_matches(f->patterns[0], CB_NODE_CLIENT, c)) {
                return "[faults] crash or recover of a client on --world memnet (it applies "
                       "server crash and recover, partition and heal; the rest needs "
                       "--world sim)";
            }
        }
    }
    if (p->transport.kind == CB_TRANSPORT_QUEUE && a->memnet) {
        return "transport kind = queue needs --world sim (the in-memory network has no broker)";
    }
    if (p->network.platform[0] != '\0' && a->memnet) {
        return "a SimGrid platform file needs --world sim";
    }
    for (size_t i = 0; p->network.platform[0] != '\0' && i < p->fault_count; i++) {
        if (p->faults[i].kind == CB_FAULT_LINK &&
            (p->faults[i].link_set & (CB_FAULT_LINK_LATENCY | CB_FAULT_LINK_BANDWIDTH))) {
            return "[faults] link latency or bandwidth changes with a platform file "
                   "(its links are the file's; loss and jitter changes work)";
        }
    }
    return NULL;
}

static double cli_run_micro(int64_t micro)
{
    return (double)micro / 1e6;
}

static void cli_run_values(const cb_plan_workload *w, cb_workload_config *c)
{
    switch (w->value_dist) {
    case CB_VALUE_DIST_UNIFORM:
        c->value_dist = CB_WL_VALUES_UNIFORM;
        c->value_a = (double)w->value_bytes_min;
        c->value_b = (double)w->value_bytes_max;
        break;
    case CB_VALUE_DIST_LOGNORMAL:
        c->value_dist = CB_WL_VALUES_LOGNORMAL;
        c->value_a = cli_run_micro(w->lognormal_mu_micro);
        c->value_b = cli_run_micro(w->lognormal_sigma_micro);
        break;
    case CB_VALUE_DIST_GPARETO:
        c->value_dist = CB_WL_VALUES_GPARETO;
        c->value_a = cli_run_micro(w->pareto_location_micro);
        c->value_b = cli_run_micro(w->pareto_scale_micro);
        c->value_c = cli_run_micro(w->pareto_shape_micro);
        break;
    case CB_VALUE_DIST_GEV:
        c->value_dist = CB_WL_VALUES_GEV;
        c->value_a = cli_run_micro(w->gev_location_micro);
        c->value_b = cli_run_micro(w->gev_scale_micro);
        c->value_c = cli_run_micro(w->gev_shape_micro);
        break;
    default:
        c->value_dist = CB_WL_VALUES_FIXED;
        c->value_a = (double)w->value_bytes;
        break;
    }
}

static void cli_run_workload_config(const cb_plan *p, cb_workload_config *c)
{
    const cb_plan_workload *w = &p->workload;
    cb_workload_config_default(c);
    c->keys = w->keys;
    c->key_bytes = (uint32_t)w->key_bytes;
    c->key_dist = w->key_dist == CB_KEY_DIST_ZIPF      ? CB_WL_KEYS_ZIPF
                  : w->key_dist == CB_KEY_DIST_HOTSPOT ? CB_WL_KEYS_HOTSPOT
                                                       : CB_WL_KEYS_UNIFORM;
    c->zipf_alpha = cli_run_micro(w->zipf_alpha_micro);
    c->hot_requests = (double)w->hot_requests_ppm / 1e6;
    c->hot_keys = (double)w->hot_keys_ppm / 1e6;
    c->churn_interval_ns = w->churn_interval_ns;
    c->churn_fraction = (double)w->churn_ppm / 1e6;
    cli_run_values(w, c);
    c->value_cap = (uint32_t)w->value_cap_bytes;
    c->mix_get = (double)w->mix.get_ppm;
    c->mix_set = (double)w->mix.set_ppm;
    c->mix_delete = (double)w->mix.delete_ppm;
    c->mix_incr = (double)w->mix.incr_ppm;
    c->rmw_fraction = (double)w->rmw_ppm / 1e6;
    c->arrival = w->arrival == CB_ARRIVAL_OPEN ? CB_WL_ARRIVAL_OPEN : CB_WL_ARRIVAL_CLOSED;
    c->think_ns = w->think_ns;
    /* The scenario's rate is for all clients together; each stream gets its share. */
    c->rate_per_s = (double)w->rate_per_s / (double)p->clients.count;
    c->seed = cb_rng_mix64(p->scenario.seed ^ 0x776f726b6c6f6164ull); /* "workload" */
    if (w->trace[0] != '\0') {
        /* The trace brings its own keys, sizes and times: the workload only names numeric
         * keys (unique for every 64-bit id) and caps values; its streams go unused. */
        c->key_bytes = CB_TRACE_ID_KEY_BYTES;
        c->value_dist = CB_WL_VALUES_FIXED;
        c->value_a = 0;
        c->arrival = CB_WL_ARRIVAL_CLOSED;
    }
}

/*
 * The machines' codec (docs/protocol.md §5-§6): the plan's compression and, with a key,
 * sealing (stream framing over tcp, datagrams over udp and queue). The codec's zstd stops at level
 * 19 and its lz4 is the fast one (no HC levels), so a zstd level above 19 is 19 and an lz4 level is
 * ignored. compression_min = 0 compresses every value (the codec's 0 means 128). The world gives
 * each machine its own seal seed.
 */
static cb_codec_config cli_run_codec(const cb_plan *p, const cb_seal_key *key)
{
    const cb_plan_transport *t = &p->transport;
    cb_codec_config c;
    memset(&c, 0, sizeof c);
    if (t->compression != CB_COMPRESSION_NONE) {
        c.compress_alg = t->compression == CB_COMPRESSION_LZ4 ? CB_COMPRESS_LZ4 : CB_COMPRESS_ZSTD;
        uint32_t level = t->compression_level < CB_COMPRESS_ZSTD_LEVEL_MAX
                             ? t->compression_level
                             : CB_COMPRESS_ZSTD_LEVEL_MAX;
        c.compress_level = c.compress_alg == CB_COMPRESS_ZSTD ? (int32_t)level : 0;
        /* The loader caps compression_min at 128 MiB. */
        c.compress_threshold_bytes =
            t->compression_min_bytes > 0 ? (uint32_t)t->compression_min_bytes : 1u;
    }
    /* UDP and the queue have no connections: no HELLO, both ends configured alike. */
    c.connectionless = t->kind != CB_TRANSPORT_TCP;
    if (key != NULL) {
        c.seal_key = key;
        /* Queue messages may be redelivered: sealed as datagrams, a duplicate is dropped. */
        c.seal_mode = t->kind == CB_TRANSPORT_TCP ? CB_SEAL_STREAM : CB_SEAL_DATAGRAM;
    }
    return c;
}

/* Replication (replicas > 1): the router of every client. */
static void cli_run_router_config(const cb_plan *p, cb_router_config *rc)
{
    const cb_plan_placement *pl = &p->placement;
    *rc = cb_router_config_default();
    rc->replicas = pl->replicas;
    /* Failover candidates beyond R: at most 2, and only servers that exist. */
    uint32_t beyond = p->servers.count - pl->replicas;
    rc->spares = beyond < 2 ? beyond : 2;
    rc->read_policy = pl->read_policy == CB_READ_PRIMARY ? CB_ROUTER_READ_PRIMARY
                      : pl->read_policy == CB_READ_ANY   ? CB_ROUTER_READ_ANY
                                                         : CB_ROUTER_READ_QUORUM;
    rc->write_policy = pl->write_policy == CB_WRITE_ALL      ? CB_ROUTER_WRITE_ALL
                       : pl->write_policy == CB_WRITE_QUORUM ? CB_ROUTER_WRITE_QUORUM
                                                             : CB_ROUTER_WRITE_PRIMARY_ASYNC;
    rc->eject_after = pl->eject_after;
    rc->eject_for_ns = pl->eject_for_ns;
    rc->ops_max = p->clients.outstanding;
}

/* The world: servers as the plan says, clients with the transport's timeouts. */
static int cli_run_world_config(const cb_plan *p, cb_memworld_config *c, cb_server_config *each,
                                const cb_seal_key *key)
{
    cb_codec_config codec = cli_run_codec(p, key);
    uint32_t value_max = 0;
    memset(c, 0, sizeof *c);
    c->server_count = p->servers.count;
    c->client_count = p->clients.count;
    for (uint32_t s = 0; s < p->servers.count; s++) {
        const cb_plan_server *ps = &p->servers.each[s];
        each[s] = cb_server_config_default();
        each[s].store.memory_bytes_max = ps->memory_bytes;
        each[s].store.value_bytes_max = (uint32_t)ps->value_bytes_max;
        each[s].store.hash_seed = cb_rng_mix64(p->scenario.seed + s);
        each[s].store.tombstone_ttl_ns = p->placement.tombstone_ttl_ns;
        each[s].dedup_window = ps->dedup_window;
        each[s].codec = codec;
        value_max = ps->value_bytes_max > value_max ? (uint32_t)ps->value_bytes_max : value_max;
    }
    c->server_each = each;
    c->client = cb_client_config_default();
    c->client.outstanding_max = p->clients.outstanding;
    c->client.timeout_ns = p->transport.timeout_ns;
    c->client.timeout_max_ns = p->transport.timeout_max_ns;
    c->client.attempts_max = p->transport.attempts;
    c->client.jitter_ppm = p->transport.jitter_ppm;
    c->client.value_bytes_max = value_max;
    c->client.codec = codec;
    c->net.latency_ns = p->network.latency_ns;
    c->net.jitter_ns = p->network.jitter_ns;
    c->net.loss_ppm = p->network.loss_ppm;
    c->net.queue_max = p->clients.count * p->clients.outstanding * 4u + 1024u;
    c->net.bytes_max = (size_t)1 << 30;
    if (p->transport.kind == CB_TRANSPORT_TCP) {
        c->net.node_count = p->servers.count + p->clients.count;
        c->net.retransmit_ns = p->transport.rto_min_ns;
    }
    c->seed = p->scenario.seed;
    return 0;
}

/* The SimGrid world: the same machines as the in-memory one, plus bandwidth and packets. */
static void cli_run_sg_config(const cb_plan *p, const cb_memworld_config *mc, cb_sgworld_config *c)
{
    *c = cb_sgworld_config_default();
    c->server_count = mc->server_count;
    c->client_count = mc->client_count;
    c->server_each = mc->server_each;
    c->client = mc->client;
    c->latency_ns = p->network.latency_ns;
    c->jitter_ns = p->network.jitter_ns;
    c->bandwidth_bps = p->network.bandwidth_bps;
    c->loss_ppm = p->network.loss_ppm;
    c->transport = p->transport.kind == CB_TRANSPORT_UDP     ? CB_SGWORLD_UDP
                   : p->transport.kind == CB_TRANSPORT_QUEUE ? CB_SGWORLD_QUEUE
                                                             : CB_SGWORLD_TCP;
    c->rto_ns = p->transport.rto_min_ns;
    /* The broker (docs/scenarios.md [broker]). Its payload limit is the largest frame: the
     * largest value, a full key, the header, and the seal's overhead when sealing (a value is
     * only sent compressed when that makes it smaller). */
    c->broker = cb_broker_config_default();
    c->broker.service_ns = p->broker.service_ns;
    c->broker.queue_limit = (uint32_t)p->broker.queue_limit;
    c->broker.ack_timeout_ns = p->broker.ack_timeout_ns;
    c->broker.delivery_max = (uint32_t)p->broker.delivery_max;
    c->broker.payload_bytes_max = CB_FRAME_HEADER_BYTES + CB_KEY_BYTES_MAX +
                                  mc->client.value_bytes_max + CB_SEAL_OVERHEAD_MAX;
    /* Frame bytes per packet: the MTU less IP and TCP headers, or IP, UDP and memcached's
     * 8-byte UDP frame header. */
    uint64_t headers = c->transport == CB_SGWORLD_UDP ? 20u + 8u + 8u : 20u + 20u;
    c->packet_payload_bytes =
        p->network.mtu_bytes > headers ? (uint32_t)(p->network.mtu_bytes - headers) : 0;
    c->seed = p->scenario.seed;
    c->router = mc->router;
    c->placement = mc->placement;
    c->resync = mc->resync;
}

static int cli_run_placement(const cb_plan *p, cb_placement **out)
{
    cb_placement_node *nodes = calloc(p->servers.count, sizeof nodes[0]);
    char(*names)[32] = calloc(p->servers.count, sizeof names[0]);
    int rc = CB_ERR_NOMEM;
    if (nodes != NULL && names != NULL) {
        for (uint32_t s = 0; s < p->servers.count; s++) {
            snprintf(names[s], sizeof names[s], "server%u", s);
            nodes[s] = (cb_placement_node){s, 1, names[s]};
        }
        cb_placement_config pc;
        cb_placement_config_default(&pc);
        pc.seed = p->scenario.seed;
        pc.ketama_points = p->placement.vnodes;
        rc = cb_placement_new(p->placement.strategy, &pc, nodes, p->servers.count, NULL, out);
    }
    free(names);
    free(nodes);
    return rc;
}

/* Everything one run holds; freed by cli_run_close. */
typedef struct cli_run {
    const cli_run_args *args;
    cb_plan plan;
    cb_workload *workload;
    cb_placement *placement;
    cb_results *db;
    int64_t run_id;
    cb_runner *runner;
    cb_trace *trace;      /* [workload] trace, or NULL */
    cb_memworld *world;   /* --world memnet */
    cb_sgworld_config sg; /* --world sim */
    cb_sgfaults faults;   /* the timeline, as sg's (memnet's is converted from it) */
    cb_memworld_fault *mem_faults; /* --world memnet: the timeline */
    char platform[4096];  /* [network] platform, resolved against the scenario's directory */
    uint64_t sim_ns;      /* simulated time at the end */
    cb_server_config *server_each;
    cb_router_config router; /* replicas > 1 */
    cb_seal_key key;         /* encryption_key_file */
    int has_key;
    char key_path[4096]; /* that file, resolved relative to the scenario */
    char *scenario_text;
    char *varied;
    double wall_start;
    int progress_shown;
} cli_run;

static volatile sig_atomic_t cli_run_stop;

static void cli_run_on_signal(int sig)
{
    (void)sig;
    cli_run_stop = 1;
}

static double cli_run_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void cli_run_progress(void *user, const cb_runner *r, uint64_t now_ns)
{
    cli_run *run = user;
    const cb_runner_totals *t = cb_runner_get_totals(r);
    double wall = cli_run_wall() - run->wall_start;
    uint64_t budget = cb_runner_budget(r);
    fprintf(stderr, "\r  %3.0f%%  %llu/%llu requests  simulated %.3f s  wall %.1f s  %.0f req/s ",
            budget > 0 ? 100.0 * (double)t->completed / (double)budget : 0.0,
            (unsigned long long)t->completed, (unsigned long long)budget, (double)now_ns / 1e9,
            wall, wall > 0 ? (double)t->completed / wall : 0.0);
    run->progress_shown = 1;
}

/* The scenario file's text (for the runs table), or NULL. */
static char *cli_run_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap + 1);
    while (buf != NULL && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            break; /* scenarios are far smaller; the loader refuses 1 MiB */
        }
    }
    fclose(f);
    if (buf != NULL) {
        buf[len] = '\0';
    }
    return buf;
}

/* The --set options as a JSON object {"section.key": "value", ...}. */
static char *cli_run_varied_json(const cli_run_args *a)
{
    size_t cap = 16;
    for (size_t i = 0; i < a->set_count; i++) {
        cap += 2 * strlen(a->sets[i]) + 8;
    }
    char *out = malloc(cap), *p = out;
    if (out == NULL) {
        return NULL;
    }
    *p++ = '{';
    for (size_t i = 0; i < a->set_count; i++) {
        int key_done = 0;
        if (a->sets[i] == a->seed_set) {
            continue; /* the seed has its own column: runs that differ only by seed group */
        }
        p += sprintf(p, "%s\"", p > out + 1 ? ", " : "");
        for (const char *s = a->sets[i]; *s != '\0'; s++) {
            if (*s == '=' && !key_done) { /* the first '=' ends the key */
                p += sprintf(p, "\": \"");
                key_done = 1;
                continue;
            }
            if (*s == '"' || *s == '\\') {
                *p++ = '\\';
            }
            *p++ = (unsigned char)*s < 0x20 ? ' ' : *s;
        }
        *p++ = '"';
    }
    strcpy(p, "}");
    return out;
}

static void cli_run_close(cli_run *run)
{
    if (run->args->ops != NULL) {
        run->args->ops->close(run->args->ops->user);
    }
    cb_memworld_del(run->world);
    cb_runner_del(run->runner);
    cb_trace_close(run->trace);
    if (run->db != NULL) {
        cb_results_close(run->db);
    }
    cb_placement_del(run->placement);
    cb_workload_del(run->workload);
    cb_plan_free(&run->plan);
    cb_sgfaults_free(&run->faults);
    free(run->mem_faults);
    free(run->server_each);
    free(run->scenario_text);
    free(run->varied);
    sodium_memzero(&run->key, sizeof run->key);
}

/* Open the plan's trace, if any, relative to the scenario file; 0, or -1 with a message. */
static int cli_run_open_trace(cli_run *run)
{
    const cb_plan_workload *w = &run->plan.workload;
    char path[4096], err[512];
    if (w->trace[0] == '\0') {
        return 0;
    }
    if (cb_scenario_resolve_path(run->args->scenario, w->trace, path, sizeof path) < 0) {
        cli_run_err(run->args, "%s: trace path too long\n", run->args->scenario);
        return -1;
    }
    /* The loader keeps trace_speed in 0.001 .. 1000: positive, within the reader's range. */
    if (cb_trace_open(path, w->trace_format, (uint64_t)w->trace_speed_micro, &run->trace, err,
                      sizeof err) != CB_ERR_OK) {
        cli_run_err(run->args, "%s: trace: %s\n", run->args->scenario, err);
        return -1;
    }
    return 0;
}

/* Load the plan's key file, if any, relative to the scenario file; 0, or -1 with a message
 * (cb_cli_load_key says what is wrong; a key others can read loads with a warning). */
static int cli_run_load_key(cli_run *run)
{
    const char *file = run->plan.transport.key_file;
    char *path = run->key_path;
    if (file[0] == '\0') {
        return 0;
    }
    if (cb_scenario_resolve_path(run->args->scenario, file, path, sizeof run->key_path) < 0) {
        cli_run_err(run->args, "%s: key file path too long\n", run->args->scenario);
        return -1;
    }
    if (cb_cli_load_key(path, &run->key, stderr) != 0) {
        cli_run_err(run->args, "%s: not run: no usable encryption key\n", run->args->scenario);
        return -1;
    }
    run->has_key = 1;
    return 0;
}

/* The world config both worlds start from: machines, codec, replication. */
static void cli_run_machines(cli_run *run, cb_memworld_config *mc)
{
    const cb_plan *p = &run->plan;
    cli_run_world_config(p, mc, run->server_each, run->has_key ? &run->key : NULL);
    if (p->placement.replicas > 1) {
        cli_run_router_config(p, &run->router);
        mc->router = &run->router;
        mc->placement = run->placement;
        mc->resync = p->placement.resync == CB_PLAN_RESYNC_WARM ? CB_RESYNC_WARM : CB_RESYNC_LAZY;
    }
}

/* Build the workload (and trace), placement and world; 0, or -1 with a message printed. */
static int cli_run_build(cli_run *run)
{
    const cb_plan *p = &run->plan;
    char err[256];
    cb_workload_config wc;
    cli_run_workload_config(p, &wc);
    if (cb_workload_new(&wc, &run->workload, err, sizeof err) != 0) {
        cli_run_err(run->args, "%s: workload: %s\n", run->args->scenario, err);
        return -1;
    }
    if (cli_run_open_trace(run) != 0) {
        return -1;
    }
    int rc = cli_run_placement(p, &run->placement);
    if (rc != CB_ERR_OK) {
        cli_run_err(run->args, "placement: %s\n", cb_strerror(rc));
        return -1;
    }
    run->server_each = calloc(p->servers.count, sizeof run->server_each[0]);
    if (run->server_each == NULL) {
        cli_run_err(run->args, "out of memory\n");
        return -1;
    }
    if (cli_run_load_key(run) != 0) {
        return -1;
    }
    cb_memworld_config mc;
    cli_run_machines(run, &mc);
    if (run->args->ops != NULL) {
        return run->args->ops->build(run->args->ops->user, p, &mc,
                                     run->has_key ? run->key_path : NULL);
    }
    if (!run->args->memnet) {
        cli_run_sg_config(p, &mc, &run->sg);
        if (p->network.platform[0] != '\0') {
            if (cb_scenario_resolve_path(run->args->scenario, p->network.platform, run->platform,
                                         sizeof run->platform) < 0) {
                cli_run_err(run->args, "%s: platform path too long\n", run->args->scenario);
                return -1;
            }
            run->sg.platform = run->platform;
        }
        if (cb_sgfaults_from_plan(p, &run->faults) != CB_ERR_OK) {
            cli_run_err(run->args, "out of memory\n");
            return -1;
        }
        run->sg.faults = run->faults.items;
        run->sg.fault_count = run->faults.count;
        return 0;
    }
    /* memnet: server crashes and recoveries, partitions and heals (cli_run_unsupported
     * refused the rest), from the timeline SimGrid would get. */
    if (cb_sgfaults_from_plan(p, &run->faults) != CB_ERR_OK ||
        (run->faults.count > 0 &&
         (run->mem_faults = calloc(run->faults.count, sizeof run->mem_faults[0])) == NULL)) {
        cli_run_err(run->args, "out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < run->faults.count; i++) {
        const cb_sgworld_fault *f = &run->faults.items[i];
        static const uint32_t kinds[] = {0, CB_MEMWORLD_CRASH, CB_MEMWORLD_RECOVER, 0,
                                         CB_MEMWORLD_PARTITION, CB_MEMWORLD_HEAL};
        run->mem_faults[i] = (cb_memworld_fault){f->at_ns, f->node, kinds[f->kind], f->groups,
                                                 f->label};
    }
    mc.faults = run->mem_faults;
    mc.fault_count = run->faults.count;
    rc = cb_memworld_new(&mc, NULL, &run->world);
    if (rc != CB_ERR_OK) {
        cli_run_err(run->args, "cannot build the world: %s\n", cb_strerror(rc));
        return -1;
    }
    return 0;
}

/* Open the database and record the run's description; 0, or -1 with a message. */
static int cli_run_begin(cli_run *run)
{
    const cb_plan *p = &run->plan;
    char err[512];
    static const char *const transports[] = {"tcp", "udp", "queue"};
    if (cb_results_open(run->args->db_path, &run->db, err, sizeof err) != CB_RESULTS_OK) {
        cli_run_err(run->args, "%s\n", err);
        return -1;
    }
    run->scenario_text = cli_run_read_file(run->args->scenario);
    run->varied = cli_run_varied_json(run->args);
    cb_run_info info = {
        .scenario_name = p->scenario.name,
        .scenario_text = run->scenario_text,
        .varied_params = run->varied,
        .mode = run->args->ops != NULL ? run->args->ops->mode
                : run->args->memnet    ? "memnet"
                                       : "sim",
        .transport = transports[p->transport.kind],
        .placement = p->placement.strategy == CB_PLACEMENT_KETAMA
                         ? "ring"
                         : cb_placement_strategy_name(p->placement.strategy),
        .seed = p->scenario.seed,
        .requests_planned = p->scenario.requests,
    };
    if (cb_results_begin_run(run->db, &info, &run->run_id) != CB_RESULTS_OK) {
        cli_run_err(run->args, "%s: %s\n", run->args->db_path, cb_results_errmsg(run->db));
        return -1;
    }
    const cb_cli_world_ops *ops = run->args->ops;
    return ops != NULL ? ops->note(ops->user, run->db, run->run_id) : 0;
}

static int cli_run_execute(cli_run *run)
{
    const cb_plan *p = &run->plan;
    cb_runner_config rc = {
        .client_count = p->clients.count,
        .server_count = p->servers.count,
        .outstanding_max = p->clients.outstanding,
        .requests = p->scenario.requests,
        .duration_ns = p->scenario.duration_ns,
        .warmup_ns = p->scenario.warmup_ns,
        .workload = run->workload,
        .placement = run->placement,
        .trace = run->trace,
        .trace_timed = p->workload.arrival == CB_ARRIVAL_OPEN,
        .db = run->db,
        .run_id = run->run_id,
        .progress = run->args->quiet || !isatty(STDERR_FILENO) ? NULL : cli_run_progress,
        .progress_user = run,
        .stop = &cli_run_stop,
        /* The world's extra nodes: the broker, then the resyncer (cb_sgworld.h). */
        .extra_node = {p->transport.kind == CB_TRANSPORT_QUEUE ? "broker" : "resync", "resync"},
    };
    if (cb_runner_new(&rc, &run->runner) != 0) {
        cli_run_err(run->args, "out of memory\n");
        return -1;
    }
    int err;
    if (run->args->ops != NULL) {
        cb_world_hooks hooks = {run->runner, cb_runner_next, cb_runner_complete, cb_runner_event,
                                NULL};
        err = run->args->ops->run(run->args->ops->user, &hooks, &cli_run_stop, &run->sim_ns);
    } else if (run->args->memnet) {
        cb_world_hooks hooks = {run->runner, cb_runner_next, cb_runner_complete, cb_runner_event,
                                NULL};
        err = cb_memworld_run(run->world, &hooks, UINT64_MAX);
        run->sim_ns = cb_memworld_now_ns(run->world);
    } else {
        cb_world_hooks hooks = {run->runner, cb_runner_next, cb_runner_complete, cb_runner_event,
                                NULL};
        cb_sgworld_stats stats;
        err = cb_sgworld_run(&run->sg, &hooks, UINT64_MAX, &stats);
        run->sim_ns = stats.end_ns;
    }
    if (run->progress_shown) {
        fputc('\n', stderr);
    }
    if (err != CB_ERR_OK) {
        cli_run_err(run->args, "the run failed: %s\n", cb_strerror(err));
        return -1;
    }
    if (cb_runner_trace_error(run->runner) != NULL) {
        cli_run_err(run->args, "trace: %s (the run stopped there)\n",
                    cb_runner_trace_error(run->runner));
        return -1;
    }
    if (cb_runner_db_error(run->runner) != NULL) {
        cli_run_err(run->args, "%s: %s\n", run->args->db_path, cb_runner_db_error(run->runner));
        return -1;
    }
    return 0;
}

/* Print the run's summary row as a table (from the database, as a researcher would query it). */
static int cli_run_print_summary(const cli_run *run, double wall_s, uint64_t sim_ns)
{
    char sql[1024], err[512];
    sqlite3 *db = NULL;
    const cb_plan *p = &run->plan;
    const cb_runner_totals *t = cb_runner_get_totals(run->runner);
    const cb_cli_world_ops *ops = run->args->ops;
    printf("cachebed %s: %s, seed %llu, %u server(s), %u client(s), %s, %s: "
           "%.3f s %s, %.2f s wall\n",
           ops != NULL ? ops->verb : "run", p->scenario.name, (unsigned long long)p->scenario.seed,
           p->servers.count, p->clients.count,
           p->transport.kind == CB_TRANSPORT_TCP   ? "tcp"
           : p->transport.kind == CB_TRANSPORT_UDP ? "udp"
                                                   : "queue",
           ops != NULL         ? "real sockets"
           : run->args->memnet ? "in-memory network"
                               : "SimGrid",
           (double)sim_ns / 1e9, ops != NULL ? ops->clock : "simulated", wall_s);
    printf("%llu requests issued, %llu measured (%llu in the warm-up)%s\n",
           (unsigned long long)t->issued, (unsigned long long)t->recorded,
           (unsigned long long)(t->completed - t->recorded),
           cli_run_stop ? "; interrupted: the run is marked incomplete" : "");
    if (t->recorded == 0 && t->completed > 0) {
        cli_run_err(run->args, "warning: every request fell in the warm-up ([scenario] warmup); "
                               "nothing was measured: lower warmup or raise requests\n");
    }
    snprintf(sql, sizeof sql,
             "SELECT requests, round(throughput_rps) AS \"req/s\", round(p50_us, 1) AS "
             "\"p50 us\", round(p90_us, 1) AS \"p90 us\", round(p99_us, 1) AS \"p99 us\", "
             "round(p999_us, 1) AS \"p99.9 us\", round(hit_ratio, 3) AS \"hit ratio\", "
             "round(100 * timeout_rate, 2) AS \"timeout %%\", "
             "round(100 * error_rate, 2) AS \"error %%\", "
             "round(bytes_per_request) AS \"bytes/req\", retries, "
             "stale_reads AS \"stale reads\" FROM run_summary WHERE run_id = %lld",
             (long long)run->run_id);
    if (cb_query_open(run->args->db_path, &db, err, sizeof err) != CB_QUERY_OK ||
        cb_query_run(db, sql, CB_QUERY_TABLE, stdout, err, sizeof err) != CB_QUERY_OK) {
        cli_run_err(run->args, "summary: %s\n", err);
        sqlite3_close(db);
        return -1;
    }
    sqlite3_close(db);
    printf("results: %s, run %lld (cachebed query %s \"SELECT * FROM requests WHERE run_id = "
           "%lld LIMIT 10\")\n",
           run->args->db_path, (long long)run->run_id, run->args->db_path, (long long)run->run_id);
    return 0;
}

/* Load and validate; prints the problems. Returns an exit status. */
static int cli_run_load(cli_run *run)
{
    static cb_diag diag; /* about 20 KiB: keep it off the stack */
    const cli_run_args *a = run->args;
    int rc = cb_scenario_load_with(a->scenario, a->sets, a->set_count, &run->plan, &diag);
    if (rc != CB_ERR_OK) {
        cb_diag_print(&diag, stderr);
        cli_run_err(run->args, "%s: %s\n", a->scenario,
                    rc == CB_ERR_NOMEM ? "out of memory" : "not run: fix the problems above");
        return CB_CLI_EXIT_FAILED;
    }
    return CB_CLI_EXIT_OK;
}

int cb_cli_run(const cb_cli_verb *verb, int argc, char **argv)
{
    (void)verb;
    return cb_cli_run_world(argc, argv, NULL);
}

int cb_cli_run_world(int argc, char **argv, const cb_cli_world_ops *ops)
{
    cli_run_args a;
    int status = cli_run_parse(argc, argv, &a, ops);
    if (status != CB_CLI_EXIT_OK) {
        return status;
    }
    cli_run run;
    memset(&run, 0, sizeof run);
    run.args = &a;
    status = cli_run_load(&run);
    if (status != CB_CLI_EXIT_OK) {
        return status;
    }
    if (a.explain) {
        status = cb_plan_explain(&run.plan, stdout) == 0 ? CB_CLI_EXIT_OK : CB_CLI_EXIT_FAILED;
        cli_run_close(&run);
        return status;
    }
    const char *why = cli_run_unsupported(&run.plan, &a);
    if (why != NULL) {
        cli_run_err(&a, "%s: not built yet: %s\n", a.scenario, why);
        cli_run_close(&run);
        return CB_CLI_EXIT_NOT_BUILT;
    }
    signal(SIGINT, cli_run_on_signal);
    signal(SIGTERM, cli_run_on_signal);
    run.wall_start = cli_run_wall();
    status = CB_CLI_EXIT_FAILED;
    if (cli_run_build(&run) == 0 && cli_run_begin(&run) == 0) {
        int ok = cli_run_execute(&run) == 0;
        double wall = cli_run_wall() - run.wall_start;
        uint64_t sim_ns = run.sim_ns;
        cb_run_status st = !ok ? CB_RUN_FAILED : cli_run_stop ? CB_RUN_INCOMPLETE : CB_RUN_COMPLETE;
        if (cb_results_end_run(run.db, run.run_id, st, wall, (double)sim_ns / 1e9) !=
            CB_RESULTS_OK) {
            cli_run_err(&a, "%s: %s\n", a.db_path, cb_results_errmsg(run.db));
            ok = 0;
        }
        cb_results_close(run.db);
        run.db = NULL;
        if (ok && cli_run_print_summary(&run, wall, sim_ns) == 0) {
            status = cli_run_stop ? CB_CLI_EXIT_FAILED : CB_CLI_EXIT_OK;
        }
    }
    cli_run_close(&run);
    return status;
}
