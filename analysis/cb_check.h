/*
 * cb_check.h: the invariant checker of `cachebed check` — reads one run's `requests` and
 * `events` rows from a results database and reports every broken invariant (docs/check.md).
 *
 * The checker knows nothing of scenarios: the caller states the replication policy and what
 * the run recorded in a cb_check_config (cli/cli_check.c fills it from the run's
 * scenario_text). It only reads the database, plus TEMP tables of its own connection.
 */
#ifndef CB_CHECK_H
#define CB_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* The invariants, in the order they are checked; names as printed. */
typedef enum {
    CB_CHECK_ONE_OUTCOME,  /* "one-outcome": every request has exactly one outcome */
    CB_CHECK_PHANTOM_READ, /* "phantom-read": no hit on a value never written */
    CB_CHECK_LOST_WRITE,   /* "lost-write": no acknowledged write lost where promised */
    CB_CHECK_STALE_READ,   /* "stale-read": no hit older than an acknowledged write, unless
                            * the policy allows it (then counted) */
    CB_CHECK_STALE_COUNT,  /* "stale-count": stale reads where allowed, counted exactly */
    CB_CHECK_NUM,
} cb_check_invariant;

const char *cb_check_name(cb_check_invariant inv);

typedef struct cb_check_config {
    uint32_t servers;      /* server count: nodes server0 .. server<servers-1> */
    uint32_t clients;      /* client count: nodes client0 .. */
    uint32_t replicas;     /* R */
    uint32_t write_acks;   /* W: acknowledgements a write waits for */
    uint32_t read_answers; /* Q: answers a read waits for */
    int quorum_reads;      /* the router compares answers (stale_read events possible) */
    int all_recorded;      /* no warmup: every request of the run is in `requests` */
    int no_eviction;       /* every key fits in every server: a miss is never an eviction */
    uint64_t margin_ns;    /* a server stays disturbed this long after its fault ends */
} cb_check_config;

typedef struct cb_check_result {
    uint64_t requests;      /* rows of the run */
    uint64_t faults;        /* fault events (crash .. link_change) of the run */
    uint64_t stale_allowed; /* misses after an acknowledged write that the policy allows */
    uint64_t stale_events;  /* stale_read events */
    uint64_t stale_hits;    /* hits that returned an older value than an acknowledged write
                             * completed before the read began, allowed by the policy */
    uint64_t digests;       /* hits checked against the written values (value_digest set) */
    uint64_t violations;    /* all invariants */
    uint64_t by_invariant[CB_CHECK_NUM];
    uint32_t skipped; /* bit i: invariant i was not checked (config says it cannot be) */
} cb_check_result;

/* Called once per violation (at most `report_max` per invariant; all are counted). */
typedef void (*cb_check_report_fn)(void *user, cb_check_invariant inv, const char *details);

/*
 * Check run `run_id` of `db` (opened by the caller, read-only is enough). Fills *out and
 * calls `report` (may be NULL) for each violation found, up to `report_max` per invariant.
 * Returns 0, or -1 on an SQLite error or an unknown run (message in `err`, `err_cap` bytes).
 */
int cb_check_run(sqlite3 *db, int64_t run_id, const cb_check_config *cfg, uint32_t report_max,
                 cb_check_report_fn report, void *user, cb_check_result *out, char *err,
                 size_t err_cap);

#endif
