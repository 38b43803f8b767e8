/*
 * cb_results.h: the results database writer — one SQLite file that every run, simulated or
 * real, is logged to (DESIGN.md "Results database"; the schema is docs/results.md).
 *
 * A driver opens the file, begins a run, appends one row per completed request and one per
 * event, and ends the run, which computes the run's summary (throughput, latency percentiles,
 * hit ratio, ...) into `run_summary`. Rows are written through prepared statements inside
 * transactions that are committed every CB_RESULTS_BATCH_ROWS rows and at the end of a run,
 * so logging stays a small part of a run's cost.
 *
 * analysis/ knows nothing of protocols/: operations and outcomes arrive as their logged names
 * ("get", "hit"), which drivers take from cb_op_name() and cb_outcome_name().
 *
 * Errors: every function returns CB_RESULTS_OK (0) or CB_RESULTS_ERROR (-1); the message
 * (SQLite's, prefixed with what was being done) is then in cb_results_errmsg(). Nothing here
 * aborts on bad input or a bad file.
 *
 * Not thread-safe: one handle per thread. Several processes may write one file at once (WAL
 * mode, a busy timeout, BEGIN IMMEDIATE); each waits for the others' transactions.
 */
#ifndef CB_RESULTS_H
#define CB_RESULTS_H

#include <stddef.h>
#include <stdint.h>

/* The schema version this code writes (PRAGMA user_version; docs/results.md "Versioning"). */
#define CB_RESULTS_SCHEMA_VERSION 3

/* Rows (requests and events) per write transaction. */
#define CB_RESULTS_BATCH_ROWS 100000u

/*
 * Longest key logged. Keys are at most 250 bytes on the wire (CB_KEY_BYTES_MAX in
 * protocols/cb_limits.h); a non-printable key is stored as hex, twice that plus a marker.
 */
#define CB_RESULTS_KEY_BYTES_MAX 250u

enum {
    CB_RESULTS_OK = 0,
    CB_RESULTS_ERROR = -1,
};

typedef enum {
    CB_RUN_RUNNING = 0, /* begun, not ended: the process is running or died */
    CB_RUN_COMPLETE,    /* ran to the end of its workload */
    CB_RUN_INCOMPLETE,  /* stopped early on purpose (signal, time limit) */
    CB_RUN_FAILED,      /* stopped by an error */
} cb_run_status;

/* The status as stored in runs.status ("running", ...); "unknown" for other values. */
const char *cb_run_status_name(int status);

typedef struct cb_results cb_results;

/* What describes a run; strings are copied. NULL strings are stored as NULL unless noted. */
typedef struct cb_run_info {
    const char *scenario_name;    /* required */
    const char *scenario_text;    /* the scenario file as run (after --set overrides) */
    const char *varied_params;    /* a JSON object, e.g. {"transport":"udp"}; NULL: "{}" */
    const char *mode;             /* required: "sim", "real" or "memnet" */
    const char *transport;        /* "tcp", "udp", "queue" */
    const char *placement;        /* "modulo", "ring", "rendezvous", "jump" */
    uint64_t seed;                /* at most INT64_MAX (SQLite integers are signed) */
    const char *started_at;       /* ISO-8601 UTC; NULL: now, e.g. 2026-01-31T12:00:00.000Z */
    const char *software_version; /* NULL: this build's CB_VERSION */
    uint64_t requests_planned;    /* how many requests the workload will issue */
} cb_run_info;

/* One request, logged when its outcome is known (a cb_completion, in a driver's terms). */
typedef struct cb_result_request {
    uint32_t client;         /* client node index */
    uint32_t server;         /* server node the request was last sent to */
    const char *op;          /* required: cb_op_name(), e.g. "get" */
    const uint8_t *key;      /* key_len bytes; NULL: no key (flush, stats, noop) */
    size_t key_len;          /* at most CB_RESULTS_KEY_BYTES_MAX */
    uint64_t value_bytes;    /* value size sent (stores) or received (GET hit) */
    uint64_t issue_ns;       /* when the application submitted it, ns since run start */
    uint64_t complete_ns;    /* when the outcome was known; UINT64_MAX: never (NULL) */
    const char *outcome;     /* cb_outcome_name(), e.g. "hit"; NULL with complete_ns none */
    uint32_t status;         /* reply status code; 0 when there was no reply */
    uint32_t attempts;       /* sends, 1 = no retry */
    uint64_t bytes_sent;     /* request bytes on the wire over all attempts */
    uint64_t bytes_received; /* reply bytes on the wire */
    /* Schema version 3: what a checker needs to tell which value a read returned. */
    uint8_t has_version;      /* 0: version unknown (stored NULL) */
    uint8_t has_value_digest; /* 0: no value (stored NULL) */
    uint64_t version;         /* the item version a write produced or a read returned; 0: an
                               * unversioned item; at most INT64_MAX */
    uint64_t value_digest;    /* cb_results_value_digest() of the value sent (stores) or
                               * received (GET hit) */
} cb_result_request;

/*
 * The value digest logged in requests.value_digest: 64-bit FNV-1a of the value's bytes (the
 * offset basis for an empty value). Stored as the signed 64-bit integer of the same bits.
 */
uint64_t cb_results_value_digest(const uint8_t *value, size_t value_len);

/*
 * Open (creating it if absent) the results database at `path`, switch it to WAL mode and
 * bring its schema to CB_RESULTS_SCHEMA_VERSION, applying each migration step in order from
 * the file's version. On success *out is a handle for cb_results_close().
 *
 * Errors (CB_RESULTS_ERROR, *out = NULL, a message naming `path` in errbuf): the file cannot
 * be opened or created, is read-only, is not an SQLite database, is an SQLite database that is
 * not a results database (tables but no schema version), or has a schema version newer than
 * this build knows.
 */
int cb_results_open(const char *path, cb_results **out, char *errbuf, size_t errcap);

/*
 * Commit pending rows and close. Returns CB_RESULTS_ERROR if that commit failed (the handle
 * is released anyway; its message is lost). Closing NULL is a no-op.
 */
int cb_results_close(cb_results *db);

/* The last error's message; "" when none. Valid until the next call on `db`. */
const char *cb_results_errmsg(const cb_results *db);

/*
 * Insert a `runs` row with status 'running' and commit it at once. *run_id receives its id.
 * Errors: a required field missing, seed over INT64_MAX, mode not one of the three,
 * varied_params not a JSON object, SQLite errors.
 */
int cb_results_begin_run(cb_results *db, const cb_run_info *info, int64_t *run_id);

/*
 * Append one request row to run `run_id` (buffered in the open transaction). The row's
 * latency is complete_ns - issue_ns. The key is stored as TEXT: as is when every byte is
 * printable ASCII (0x21..0x7e) and it does not start with "hex:", else as "hex:" followed by
 * the bytes in lower-case hex. Errors: no op, complete_ns before issue_ns, a time or count
 * over INT64_MAX, key_len over CB_RESULTS_KEY_BYTES_MAX, the run does not exist or is not
 * 'running' (checked on the first row of each run), SQLite errors.
 *
 * Rows reach SQLite 16 at a time (one multi-row INSERT) and at every commit, so an SQLite
 * error (disk full, I/O) may be reported by a later add_request, flush, end_run or close;
 * the rows sent with it (at most 16) are then not stored. Checks of the row itself are
 * reported by the call that adds it.
 */
int cb_results_add_request(cb_results *db, int64_t run_id, const cb_result_request *r);

/*
 * Append one event row (a fault, reconnect, failover, drop...). `node` names where it
 * happened ("server2", "link:c0-s1"); `kind` is required ("crash", "retry"); `detail` is
 * free text or NULL. Errors: kind NULL, time_ns over INT64_MAX, the run does not exist or is
 * not 'running', SQLite errors.
 */
int cb_results_add_event(cb_results *db, int64_t run_id, uint64_t time_ns, const char *node,
                         const char *kind, const char *detail);

/* Commit the rows buffered so far (a durability point; end_run and close do it too). */
int cb_results_flush(cb_results *db);

/*
 * End run `run_id`: commit its rows, compute its run_summary row and set its status
 * (COMPLETE, INCOMPLETE or FAILED), wall seconds and simulated seconds (negative: unknown,
 * stored as NULL), all in one transaction. Errors: the run does not exist or is not
 * 'running', status is RUNNING or unknown, SQLite errors.
 */
int cb_results_end_run(cb_results *db, int64_t run_id, cb_run_status status, double wall_s,
                       double sim_s);

/*
 * Mark a still-running run 'incomplete' after committing its rows and computing its summary
 * from them. For a driver's clean shutdown after SIGINT/SIGTERM: the handler sets a flag and
 * the driver's loop calls this (it is not async-signal-safe). A run whose process died
 * without either call stays 'running' and loses the rows of its open transaction.
 * Errors: as cb_results_end_run().
 */
int cb_results_mark_incomplete(cb_results *db, int64_t run_id);

/*
 * Recompute run `run_id`'s run_summary row from its `requests` rows (committing pending rows
 * first). end_run does this; call it after changing a run's requests by hand.
 * Errors: the run does not exist, out of memory, SQLite errors.
 */
int cb_results_summarize(cb_results *db, int64_t run_id);

/* ---- placement measurements (`cachebed bench placement`; schema version 2) ------------ */

/* Most nodes a placement row may carry load counts for (CB_PLACEMENT_NODES_MAX). */
#define CB_RESULTS_PLACEMENT_LOAD_NODES_MAX 100000u

/* One bench invocation: a placement_runs row. Strings are copied. */
typedef struct cb_placement_run_info {
    const char *started_at;       /* ISO-8601 UTC; NULL: now */
    uint64_t keys;                /* keys placed; at most INT64_MAX */
    uint64_t seed;                /* at most INT64_MAX */
    uint64_t maglev_table_size;   /* 0: not recorded (NULL) */
    const char *software_version; /* NULL: this build's CB_VERSION */
    const char *notes;            /* free text or NULL */
} cb_placement_run_info;

/*
 * One strategy over one node count: a placement_results row and, when `load` is not NULL,
 * `nodes` placement_load rows (load[i] = keys whose primary is node i + 1). Ratios and times
 * that are NaN (not measured) are stored as NULL.
 */
typedef struct cb_placement_result {
    const char *strategy;           /* required, e.g. "ketama" */
    uint32_t nodes;                 /* N >= 1 */
    double max_over_mean;           /* keys per node: max / mean */
    double cv;                      /* keys per node: coefficient of variation */
    double moved_add_ratio;         /* keys moved adding node N+1, over 1/(N+1) */
    double moved_remove_ratio;      /* keys moved removing a middle node, over 1/N */
    double moved_remove_last_ratio; /* keys moved removing node N, over 1/N */
    double lookup_ns_r1;            /* ns per lookup, R = 1 */
    double lookup_ns_r3;            /* ns per lookup, R = 3 */
    const uint64_t *load;           /* nodes counts, or NULL: no placement_load rows */
} cb_placement_result;

/*
 * Write one placement_runs row and its `count` results (and their load rows) in one
 * transaction, through prepared statements; *placement_run_id (may be NULL) receives its id.
 * Nothing is written on error. Errors: no strategy, nodes 0 or load with nodes over
 * CB_RESULTS_PLACEMENT_LOAD_NODES_MAX, keys/seed/load over INT64_MAX, a strategy repeated
 * for one node count, SQLite errors.
 */
int cb_results_add_placement(cb_results *db, const cb_placement_run_info *info,
                             const cb_placement_result *rows, size_t count,
                             int64_t *placement_run_id);

#endif
