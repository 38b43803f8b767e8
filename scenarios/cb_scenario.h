/*
 * cb_scenario.h: load a scenario file (INI) into a validated plan.
 *
 * A scenario file says what to run: [scenario], [network], [servers] (and per-server
 * [server.N] overrides), [clients], [placement], [transport], [workload] and a [faults]
 * timeline. docs/scenarios.md is the reference for every key; one schema table in
 * cb_scenario_schema.c drives parsing, defaults, range checks, --explain output and the
 * reference rows of that document (cb_scenario_reference_print).
 *
 * Loading reads the whole file, reports every problem at once into a cb_diag, each message
 * as `file:line: [section] key: problem`, and fills a cb_plan only when there was none: on
 * success every field of the plan holds a value (defaults applied), so the simulator and
 * the real-socket replay read the same numbers. Nothing is defaulted silently:
 * cb_plan_explain prints the whole plan, defaults marked, as a scenario file that loads
 * back into an identical plan.
 *
 * Input is hostile (DESIGN.md "Bad input"): lines over 199 characters, control characters,
 * continuation lines, repeated keys and sections, unknown names, bad units, values out of
 * range and contradictions are all errors; none is ever silently cut, joined or dropped.
 *
 * No global state. Functions that take a cb_plan* do not keep it.
 */
#ifndef CB_SCENARIO_H
#define CB_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cb_placement.h"

/* Longest line of a scenario file, without its newline: libinih r55's buffer (PITFALLS). */
#define CB_SCENARIO_LINE_BYTES_MAX 199u
/* Largest [servers] count and [clients] count: DESIGN.md's 10^4 hosts per simulation. */
#define CB_SCENARIO_SERVERS_MAX 10000u
#define CB_SCENARIO_CLIENTS_MAX 10000u
/* Most fault events in a timeline; each is a fixed-size cb_fault. */
#define CB_SCENARIO_FAULTS_MAX 4096u
/* Longest [scenario] name, and longest path value (so that --explain output, "key = path",
 * still fits on one line). */
#define CB_PLAN_NAME_BYTES_MAX 64u
#define CB_PLAN_PATH_BYTES_MAX 160u

/* ---- diagnostics ---- */

#define CB_DIAG_MESSAGES_MAX  64u
#define CB_DIAG_MESSAGE_BYTES 320u

typedef struct cb_diag_message {
    uint32_t line; /* 1-based; 0 when the problem is not on one line */
    char text[CB_DIAG_MESSAGE_BYTES];
} cb_diag_message;

/*
 * The problems one load found, in line order (problems without a line first). Messages
 * beyond CB_DIAG_MESSAGES_MAX are counted in `omitted`. A plain struct (about 20 KiB) the
 * caller embeds; cb_scenario_load* reset it first.
 */
typedef struct cb_diag {
    size_t count;
    size_t omitted;
    cb_diag_message messages[CB_DIAG_MESSAGES_MAX];
} cb_diag;

void cb_diag_init(cb_diag *diag);
/* Print each message on its own line, then "N more problem(s) not shown" if any. */
void cb_diag_print(const cb_diag *diag, FILE *out);

/* ---- the plan ---- */

/* [placement] strategy is protocols/cb_placement.h's cb_placement_strategy: the scenario's
 * "ring" is CB_PLACEMENT_KETAMA (the libmemcached-compatible ketama ring). */

typedef enum { CB_READ_PRIMARY, CB_READ_ANY, CB_READ_QUORUM } cb_read_policy;
typedef enum { CB_WRITE_ALL, CB_WRITE_QUORUM, CB_WRITE_PRIMARY_ASYNC } cb_write_policy;
/* docs/replication.md §6: lazy read repair, or a warm-up scan from the replicas. */
typedef enum { CB_PLAN_RESYNC_LAZY, CB_PLAN_RESYNC_WARM } cb_plan_resync;
typedef enum { CB_TRANSPORT_TCP, CB_TRANSPORT_UDP, CB_TRANSPORT_QUEUE } cb_transport_kind;
typedef enum { CB_COMPRESSION_NONE, CB_COMPRESSION_LZ4, CB_COMPRESSION_ZSTD } cb_compression;
typedef enum { CB_KEY_DIST_UNIFORM, CB_KEY_DIST_ZIPF, CB_KEY_DIST_HOTSPOT } cb_key_dist;
typedef enum {
    CB_VALUE_DIST_FIXED,
    CB_VALUE_DIST_UNIFORM,
    CB_VALUE_DIST_LOGNORMAL,
    CB_VALUE_DIST_GPARETO,
    CB_VALUE_DIST_GEV,
} cb_value_dist;
typedef enum { CB_ARRIVAL_CLOSED, CB_ARRIVAL_OPEN } cb_arrival;
typedef enum {
    CB_TRACE_TWITTER,
    CB_TRACE_LIBCACHESIM_CSV,
    CB_TRACE_ORACLE_GENERAL,
} cb_trace_format;

typedef struct cb_plan_scenario {
    char name[CB_PLAN_NAME_BYTES_MAX + 1];
    uint64_t seed;
    uint64_t requests;    /* requests to issue in all; 0 = no limit (duration decides) */
    uint64_t duration_ns; /* simulated run time; 0 = no limit (requests decides) */
    uint64_t warmup_ns;   /* leading time whose requests are not measured */
} cb_plan_scenario;

typedef struct cb_plan_network {
    uint64_t latency_ns; /* one-way, per link */
    uint64_t jitter_ns;  /* extra delay, uniform in [0, jitter_ns] */
    uint64_t bandwidth_bps;
    uint32_t loss_ppm;
    uint64_t mtu_bytes;
    char platform[CB_PLAN_PATH_BYTES_MAX + 1]; /* SimGrid XML; "" = use the numbers above */
} cb_plan_network;

typedef struct cb_plan_server {
    uint64_t memory_bytes;
    uint64_t value_bytes_max;
    uint32_t dedup_window; /* 0, or a power of two up to 65536 (cb_server_config) */
    uint32_t overridden;   /* CB_PLAN_SERVER_* bits: set by a [server.N] section */
} cb_plan_server;

enum {
    CB_PLAN_SERVER_MEMORY = 1u << 0,
    CB_PLAN_SERVER_VALUE_MAX = 1u << 1,
    CB_PLAN_SERVER_DEDUP_WINDOW = 1u << 2,
};

typedef struct cb_plan_servers {
    uint32_t count;
    cb_plan_server defaults; /* the [servers] values; defaults.overridden is 0 */
    cb_plan_server *each;    /* count entries, overrides applied; owned by the plan */
} cb_plan_servers;

typedef struct cb_plan_clients {
    uint32_t count;
    uint32_t connections; /* per client, per server */
    uint32_t outstanding; /* requests in flight per client */
} cb_plan_clients;

typedef struct cb_plan_placement {
    cb_placement_strategy strategy;
    uint32_t vnodes; /* ring only */
    uint32_t replicas;
    cb_read_policy read_policy;
    cb_write_policy write_policy;
    cb_plan_resync resync;
    uint32_t eject_after; /* consecutive failures before ejecting a server; 0 = never */
    uint64_t eject_for_ns;
    uint64_t tombstone_ttl_ns; /* lifetime of a versioned delete's tombstone on a server */
} cb_plan_placement;

/* [broker]: the queue transport's broker node (docs/protocol.md §10.2). */
typedef struct cb_plan_broker {
    uint64_t service_ns;     /* time per delivery; 0 = no pacing */
    uint64_t queue_limit;    /* messages held at once (queued + awaiting an ACK) */
    uint64_t ack_timeout_ns; /* redelivery after this without an ACK */
    uint64_t delivery_max;   /* deliveries of one message before it is dropped; 0 = no limit */
} cb_plan_broker;

typedef struct cb_plan_transport {
    cb_transport_kind kind;
    uint64_t timeout_ns;
    uint64_t timeout_max_ns;
    uint32_t attempts;
    uint32_t jitter_ppm;
    uint64_t rto_min_ns;
    cb_compression compression;
    uint32_t compression_level;
    uint64_t compression_min_bytes;
    char key_file[CB_PLAN_PATH_BYTES_MAX + 1]; /* "" = no encryption */
} cb_plan_transport;

/* Operation mix, in parts per million; the four add up to exactly 10^6. */
typedef struct cb_plan_mix {
    uint32_t get_ppm;
    uint32_t set_ppm;
    uint32_t delete_ppm;
    uint32_t incr_ppm;
} cb_plan_mix;

typedef struct cb_plan_workload {
    uint64_t keys;
    uint64_t key_bytes;
    cb_key_dist key_dist;
    int64_t zipf_alpha_micro; /* millionths: 990000 = 0.99 */
    uint32_t hot_requests_ppm;
    uint32_t hot_keys_ppm;
    uint64_t churn_interval_ns; /* 0 = the key space never shifts */
    uint32_t churn_ppm;         /* share of the key space replaced each interval */
    cb_value_dist value_dist;
    uint64_t value_bytes;     /* fixed */
    uint64_t value_bytes_min; /* uniform */
    uint64_t value_bytes_max; /* uniform */
    int64_t lognormal_mu_micro;
    int64_t lognormal_sigma_micro;
    int64_t pareto_location_micro;
    int64_t pareto_scale_micro;
    int64_t pareto_shape_micro;
    int64_t gev_location_micro;
    int64_t gev_scale_micro;
    int64_t gev_shape_micro;
    uint64_t value_cap_bytes;
    cb_plan_mix mix;
    uint32_t rmw_ppm; /* share of sets issued as read-modify-write */
    cb_arrival arrival;
    uint64_t think_ns;
    uint64_t rate_per_s;                    /* open loop, all clients together; 0 = not set */
    char trace[CB_PLAN_PATH_BYTES_MAX + 1]; /* "" = synthetic workload */
    cb_trace_format trace_format;
    int64_t trace_speed_micro;
} cb_plan_workload;

/* ---- faults ---- */

/* A node pattern: server<i>, client<i>, broker, or a prefix of such a name ending in `*`. */
#define CB_NODE_PATTERN_BYTES 16u
/* Most patterns in one fault (all the groups of a partition together). */
#define CB_FAULT_PATTERNS_MAX 16u

typedef enum {
    CB_FAULT_CRASH,
    CB_FAULT_RECOVER,
    CB_FAULT_PARTITION,
    CB_FAULT_HEAL,
    CB_FAULT_LINK,
} cb_fault_kind;

typedef enum { CB_NODE_SERVER, CB_NODE_CLIENT, CB_NODE_BROKER } cb_node_kind;

enum {
    CB_FAULT_LINK_LATENCY = 1u << 0,
    CB_FAULT_LINK_JITTER = 1u << 1,
    CB_FAULT_LINK_BANDWIDTH = 1u << 2,
    CB_FAULT_LINK_LOSS = 1u << 3,
};

typedef struct cb_fault {
    uint64_t at_ns;
    cb_fault_kind kind;
    /* crash, recover, link: 1 pattern; partition: 2 or more, in groups; heal: none. */
    uint32_t pattern_count;
    char patterns[CB_FAULT_PATTERNS_MAX][CB_NODE_PATTERN_BYTES];
    uint8_t group[CB_FAULT_PATTERNS_MAX]; /* partition: pattern i belongs to group[i] */
    uint32_t group_count;                 /* partition: 2 or more */
    uint32_t link_set;                    /* link: CB_FAULT_LINK_* bits given */
    uint64_t latency_ns;
    uint64_t jitter_ns;
    uint64_t bandwidth_bps;
    uint32_t loss_ppm;
} cb_fault;

typedef struct cb_plan {
    cb_plan_scenario scenario;
    cb_plan_network network;
    cb_plan_servers servers;
    cb_plan_clients clients;
    cb_plan_placement placement;
    cb_plan_transport transport;
    cb_plan_broker broker;
    cb_plan_workload workload;
    size_t fault_count;
    cb_fault *faults; /* sorted by at_ns, file order among equal times; owned by the plan */
} cb_plan;

/* ---- loading ---- */

/*
 * Load the scenario file at `path` into *plan (which need not be initialised; it is
 * overwritten). `diag` is reset and receives every problem found, each as
 * `path:line: [section] key: problem`.
 * Returns CB_ERR_OK (plan filled, diag empty; release with cb_plan_free),
 * CB_ERR_INVALID (the file cannot be read or has problems: all are in diag; *plan is left
 * zeroed and owns nothing) or CB_ERR_NOMEM (likewise, with a message in diag).
 */
int cb_scenario_load(const char *path, cb_plan *plan, cb_diag *diag);

/*
 * Same as cb_scenario_load, from `text_len` bytes at `text` (need not be NUL-terminated, may
 * hold any bytes); `name` is the file name messages show. The text is only read.
 */
int cb_scenario_load_string(const char *name, const char *text, size_t text_len, cb_plan *plan,
                            cb_diag *diag);

/* Release what the plan owns and zero it. NULL and a zeroed plan are no-ops. */
/*
 * As cb_scenario_load / _load_string, then apply `set_count` overrides "SECTION.KEY=VALUE"
 * (the --set option of `cachebed run`) on top of the file, each parsed and validated like
 * the file's own keys; a key the file also sets takes the override's value. Overrides cannot
 * set [server.N] or [faults]. Their problems read "--set:N: [section] key: ...", N counting
 * from 1. Validation across keys runs after all overrides.
 */
int cb_scenario_load_with(const char *path, const char *const *sets, size_t set_count,
                          cb_plan *plan, cb_diag *diag);
int cb_scenario_load_string_with(const char *name, const char *text, size_t text_len,
                                 const char *const *sets, size_t set_count, cb_plan *plan,
                                 cb_diag *diag);

void cb_plan_free(cb_plan *plan);

/* ---- using a plan ---- */

/*
 * Print the plan as a scenario file: every section and key, defaults filled in and marked
 * `; default`, keys that do not apply commented out with the reason, per-server overrides
 * and the fault timeline. Loading the output gives a plan for which cb_plan_equal is true.
 * Returns 0, or -1 if writing to `out` failed.
 */
int cb_plan_explain(const cb_plan *plan, FILE *out);

/* True when every field of the two plans is equal (strings by content, arrays by value). */
bool cb_plan_equal(const cb_plan *a, const cb_plan *b);

/* Write `fault` as the text of its `at = ` value ("5s crash server2"), NUL-terminated and
 * cut to out_cap; 256 bytes always suffice. */
void cb_fault_format(const cb_fault *fault, char *out, size_t out_cap);

/* True when node `kind` number `index` (index ignored for the broker) matches `pattern`. */
bool cb_plan_node_matches(const char *pattern, cb_node_kind kind, uint32_t index);

/*
 * Resolve `value` (a path from the plan: platform, key_file, trace) the way users expect: an
 * absolute path as is, a relative one against the directory of `scenario_path`. Writes a
 * NUL-terminated path; returns its length, or -1 if out_cap is too small.
 */
int cb_scenario_resolve_path(const char *scenario_path, const char *value, char *out,
                             size_t out_cap);

/* Print the reference table rows of every section and key (Markdown), as docs/scenarios.md
 * holds them: `| key | unit | default | range | meaning |`. Returns 0 or -1 on write error. */
int cb_scenario_reference_print(FILE *out);

#endif
