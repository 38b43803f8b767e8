/*
 * cb_workload.h: the operations each simulated or real client issues, generated from a seed.
 *
 * A cb_workload holds what all clients share and never changes after cb_workload_new: the
 * configuration and, for Zipf keys, the sampling table. Each client draws from its own
 * cb_workload_stream, seeded from (workload seed, client index) alone, so the sequence a
 * client issues depends neither on the driver, nor on scheduling, nor on how many other
 * clients there are. Each stream keeps three independent generators — keys and operations,
 * value sizes, and timing — so changing the value-size distribution or the arrival process
 * leaves the key sequence unchanged.
 *
 * Distributions (GSL, driven by xoshiro256** exposed as a gsl_rng type):
 *  - keys: uniform; Zipf(alpha) by rank (Walker alias table up to CB_WORKLOAD_ALIAS_KEYS_MAX
 *    keys, Hörmann-Derflinger rejection-inversion beyond); hot-spot (a fraction of requests
 *    on a fraction of keys); churn shifts which key holds each rank every interval.
 *  - value sizes: fixed, uniform, log-normal, generalized Pareto, GEV (the shapes Atikoglu
 *    et al. measured at Facebook, SIGMETRICS 2012), rounded and clamped to [0, value_cap].
 *  - operations: get/set/delete/incr ratios; a fraction of SETs are read-modify-write (the
 *    driver reads the key, then writes it).
 *  - arrivals: closed loop with exponential think time, or open loop with Poisson arrivals.
 */
#ifndef CB_WORKLOAD_H
#define CB_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

/* Zipf key spaces up to this size use an alias table (8 B + 8 B per key, built once). */
#define CB_WORKLOAD_ALIAS_KEYS_MAX (1u << 22)

typedef enum { CB_WL_KEYS_UNIFORM, CB_WL_KEYS_ZIPF, CB_WL_KEYS_HOTSPOT } cb_wl_keys;
typedef enum {
    CB_WL_VALUES_FIXED,
    CB_WL_VALUES_UNIFORM,
    CB_WL_VALUES_LOGNORMAL,
    CB_WL_VALUES_GPARETO,
    CB_WL_VALUES_GEV
} cb_wl_values;
typedef enum { CB_WL_ARRIVAL_CLOSED, CB_WL_ARRIVAL_OPEN } cb_wl_arrival;

typedef struct cb_workload_config {
    uint64_t keys;              /* key space, >= 1 */
    uint32_t key_bytes;         /* length of every key name, 8..CB_KEY_BYTES_MAX */
    uint8_t key_dist;           /* cb_wl_keys */
    double zipf_alpha;          /* Zipf exponent, > 0 (YCSB: 0.99) */
    double hot_requests;        /* hot-spot: fraction of requests on hot keys, in (0, 1) */
    double hot_keys;            /* hot-spot: fraction of keys that are hot, in (0, 1) */
    uint64_t churn_interval_ns; /* 0: no churn */
    double churn_fraction;      /* fraction of the key space the ranks shift by, in (0, 1] */
    uint8_t value_dist;         /* cb_wl_values */
    /* Parameters by distribution: fixed a = bytes; uniform a = min, b = max; lognormal
     * a = mu, b = sigma (of ln bytes); gpareto a = location, b = scale, c = shape;
     * gev a = location, b = scale, c = shape. */
    double value_a, value_b, value_c;
    uint32_t value_cap;                            /* sizes are clamped to [0, value_cap] */
    double mix_get, mix_set, mix_delete, mix_incr; /* weights, >= 0, not all 0 */
    double rmw_fraction;                           /* of SETs, in [0, 1] */
    uint8_t arrival;                               /* cb_wl_arrival */
    uint64_t think_ns; /* closed loop: mean think time (exponential); 0: none */
    double rate_per_s; /* open loop: this client's mean arrival rate, > 0 */
    uint64_t seed;
} cb_workload_config;

/* One operation. */
typedef struct cb_workload_op {
    uint64_t seq;         /* 0, 1, 2... within the stream */
    uint8_t op;           /* CB_OP_GET, CB_OP_SET, CB_OP_DELETE or CB_OP_INCR */
    uint8_t rmw;          /* read-modify-write: a GET the driver follows with a SET */
    uint64_t key_id;      /* 0..keys-1 */
    uint32_t value_bytes; /* SET, and the SET that follows a read-modify-write GET */
    /* Open loop: the arrival time, ns since the run began. Closed loop: the think time to
     * wait after the previous operation completed. */
    uint64_t at_ns;
} cb_workload_op;

typedef struct cb_workload cb_workload;
typedef struct cb_workload_stream cb_workload_stream;

/* Fill `cfg` with defaults: 10^4 uniform keys of 16 bytes, 100-byte values, 90% GET / 10%
 * SET, closed loop without think time. */
void cb_workload_config_default(cb_workload_config *cfg);

/*
 * Validate `cfg` and build the shared tables. Returns 0 with *out set, or -1 with a message
 * naming the offending field in err[0..err_cap) (*out NULL). Out of memory is -1 too.
 */
int cb_workload_new(const cb_workload_config *cfg, cb_workload **out, char *err, size_t err_cap);
void cb_workload_del(cb_workload *wl);

/* The stream of client `client`. Returns 0, or -1 when out of memory. The workload must
 * outlive its streams. */
int cb_workload_stream_new(const cb_workload *wl, uint32_t client, cb_workload_stream **out);
void cb_workload_stream_del(cb_workload_stream *s);

/*
 * The stream's next operation. `now_ns` only matters with churn in a closed loop: it says
 * which churn epoch the key falls in (open-loop streams use their own arrival times).
 */
void cb_workload_next(cb_workload_stream *s, uint64_t now_ns, cb_workload_op *op);

/* Write key `key_id`'s name (key_bytes bytes, no NUL needed) into out; returns its length,
 * or 0 if out_cap < key_bytes. Names are unique per id. */
size_t cb_workload_key_name(const cb_workload *wl, uint64_t key_id, uint8_t *out, size_t out_cap);

/* Fill a value deterministically from (key_id, seq): the same write always has the same bytes. */
void cb_workload_fill_value(uint64_t key_id, uint64_t seq, uint8_t *out, size_t len);

const cb_workload_config *cb_workload_get_config(const cb_workload *wl);

#endif
