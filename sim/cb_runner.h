/*
 * cb_runner.h: turns a workload into the operations of a run, and its outcomes into results.
 *
 * The runner is what every world (the in-memory network, SimGrid, later real sockets) drives
 * through its hooks: it asks each client's workload stream for the next operation, names its
 * key, fills its value, routes it to the primary of the key's preference list (placement),
 * paces it (think time, open-loop arrivals, the run's request budget and duration), follows a
 * read-modify-write GET with its SET, and records each completion and event in the results
 * database. It keeps running totals for progress lines and the end-of-run summary.
 *
 * Request budget: client i issues requests / clients requests (the first requests % clients
 * clients one more), so each client's sequence is the prefix of its own stream whatever the
 * number of clients. Requests issued before warmup_ns run but are not recorded.
 *
 * Trace replay: with cfg.trace set, operations come from the trace instead of the streams.
 * A cb_tracedemux reads it once and deals record r to client r.client_id % client_count, with
 * at most CB_RUNNER_TRACE_BUFFERED records buffered; a client whose next record is beyond a
 * full buffer asks again CB_RUNNER_TRACE_POLL_NS later. Timed replay issues each record at
 * its scaled timestamp (open loop: a late issue is timed from that instant); untimed replay
 * is a closed loop with the workload's think time as a fixed pause. The budget is the first
 * `requests` records of the trace (not split by client); the run ends at the trace's end.
 * Keys: a trace's key string as is, a numeric id named by cb_workload_key_name; values are
 * capped at the workload's value_cap; a record with fill_on_miss is a GET followed, when it
 * misses, by a SET of the record's size (libCacheSim's look-aside semantics).
 */
#ifndef CB_RUNNER_H
#define CB_RUNNER_H

#include <signal.h>
#include <stdint.h>

#include "cb_client.h"
#include "cb_placement.h"
#include "cb_results.h"
#include "cb_trace.h"
#include "cb_workload.h"

/* Trace replay: records buffered for clients that have not asked yet (about 300 B each). */
#define CB_RUNNER_TRACE_BUFFERED 16384u
/* Trace replay: how long a client blocked by a full buffer waits before asking again. */
#define CB_RUNNER_TRACE_POLL_NS 100000u

typedef struct cb_runner cb_runner;

typedef struct cb_runner_config {
    uint32_t client_count;
    uint32_t server_count;         /* world node ids 0..server_count-1 are servers */
    uint32_t outstanding_max;      /* the clients' cb_client_config.outstanding_max */
    uint64_t requests;             /* total budget; 0: unlimited (duration must be set) */
    uint64_t duration_ns;          /* stop issuing at this time; 0: no limit */
    uint64_t warmup_ns;            /* don't record requests issued before this */
    const cb_workload *workload;   /* names keys and caps values, also in trace replay */
    const cb_placement *placement; /* node ids are server indexes */
    cb_trace *trace;               /* NULL: the workload's streams; else replay it (not owned) */
    int trace_timed;               /* 1: records issue at their timestamps; 0: closed loop */
    cb_results *db;                /* NULL: record nothing */
    int64_t run_id;
    /* Called about every 1% of the budget (or every simulated second without a budget). */
    void (*progress)(void *user, const cb_runner *r, uint64_t now_ns);
    void *progress_user;
    /* When it becomes non-zero (a signal handler sets it), no new request is issued; those in
     * flight still complete, so the run ends cleanly and can be marked incomplete. */
    volatile sig_atomic_t *stop;
    /* The names events give the world's extra nodes S+C and S+C+1: {"broker", "resync"}
     * with the queue transport and warm resync, {"broker"} with the queue transport alone;
     * a NULL entry: "resync" (the resyncer of resync = warm). */
    const char *extra_node[2];
} cb_runner_config;

typedef struct cb_runner_totals {
    uint64_t issued;
    uint64_t completed;
    uint64_t recorded;
    uint64_t hits, misses, timeouts, errors;
    uint64_t retries; /* attempts beyond the first */
    uint64_t bytes_sent, bytes_received;
    uint64_t events;
    uint64_t stale_reads; /* stale_read events (replication routers' quorum reads) */
    uint64_t last_complete_ns;
} cb_runner_totals;

/* Returns 0, or -1 (out of memory, or a config without budget and duration). */
int cb_runner_new(const cb_runner_config *cfg, cb_runner **out);
void cb_runner_del(cb_runner *r);

/* The world hooks (see cb_world_hooks): `user` is the cb_runner. */
int cb_runner_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op, uint32_t *server,
                   uint64_t *wake_ns);
void cb_runner_complete(void *user, uint32_t client, const cb_completion *c);
void cb_runner_event(void *user, uint32_t node, const cb_event *e, uint64_t now_ns);

const cb_runner_totals *cb_runner_get_totals(const cb_runner *r);
uint64_t cb_runner_budget(const cb_runner *r);

/* First database error met while recording (the run goes on), or NULL. */
const char *cb_runner_db_error(const cb_runner *r);

/* Trace replay: the trace's error that ended the replay early (file:line: problem), or NULL. */
const char *cb_runner_trace_error(const cb_runner *r);

#endif
