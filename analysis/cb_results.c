/*
 * cb_results.c: the results database writer (see cb_results.h; schema in docs/results.md).
 *
 * Opening runs the migration steps of results_migrations[] from the file's PRAGMA
 * user_version up to CB_RESULTS_SCHEMA_VERSION inside one transaction. Request rows go 16 at
 * a time through one prepared multi-row INSERT, events through their own, inside a
 * transaction committed every CB_RESULTS_BATCH_ROWS rows. The run being written is summarized
 * as its rows are added (results_acc), so ending it does not read them back. Summaries
 * (run_summary) are computed here, in C, because percentiles need the sorted latencies and SQLite
 * has no percentile function.
 */
#include "cb_results.h"

#include "cb_sort.h"

#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CB_VERSION
#define CB_VERSION "unknown"
#endif

/* How long a writer waits for another process's transaction before giving up. */
#define RESULTS_BUSY_TIMEOUT_MS 60000

#define RESULTS_ERRMSG_BYTES 512

/*
 * Request rows per INSERT statement: one statement inserting 16 rows costs about a third less
 * per row than 16 one-row statements (fewer steps, resets and B-tree descents). Rows are
 * bound into the statement as they are added and sent when it is full or before a commit.
 */
#define RESULTS_INSERT_ROWS  16
#define RESULTS_REQUEST_COLS 16

/* Text a queued row's bindings point into (SQLITE_STATIC): copies of the caller's strings. */
typedef struct results_slot {
    char key[4 + 2 * CB_RESULTS_KEY_BYTES_MAX + 1];
    char op[32];
    char outcome[32];
} results_slot;

/*
 * A run's totals (docs/results.md "run_summary"): from one aggregate query over its requests,
 * or counted as its rows are added.
 */
typedef struct results_totals {
    int64_t requests;
    int64_t completed; /* outcome known and not 'timeout': these have a latency */
    int64_t hits;      /* GETs answered 'hit' */
    int64_t misses;    /* GETs answered 'miss' */
    int64_t errors;
    int64_t timeouts;
    int64_t bytes;   /* bytes_sent + bytes_received */
    int64_t retries; /* sum of attempts - 1 */
    int has_span;    /* first_issue_ns/last_complete_ns are set */
    int64_t first_issue_ns;
    int64_t last_complete_ns;
} results_totals;

/*
 * The run being written, summarized as its rows are added so that ending it needs no second
 * pass over its rows: the totals and the latency (ns) of every completed request. Valid only
 * while it covers every row of run_id (this handle wrote them all, none rolled back); else
 * run_id is 0 and the summary is read back from the table (cb_results_summarize's path).
 */
typedef struct results_acc {
    int64_t run_id;
    results_totals t;
    uint64_t *lat_ns; /* t.completed of them, in insertion order */
    size_t cap;
} results_acc;

struct cb_results {
    sqlite3 *db;
    sqlite3_stmt *insert_requests; /* RESULTS_INSERT_ROWS rows, then LIMIT: how many */
    sqlite3_stmt *insert_event;
    int in_txn;          /* a BEGIN is open */
    size_t pending_rows; /* rows written in the open transaction */
    int64_t seq_run_id;  /* the run rows go to, checked 'running'; 0: none yet */
    int64_t next_seq;    /* requests.seq of the next row of seq_run_id */
    results_acc acc;     /* the summary of the run being written */
    size_t queued;       /* request rows bound in insert_requests, not yet sent */
    results_slot slots[RESULTS_INSERT_ROWS];
    char errmsg[RESULTS_ERRMSG_BYTES];
};

/* ---- schema ---------------------------------------------------------------------------- */

/* Version 1: the first schema (docs/results.md documents every column). */
static const char results_schema_v1[] =
    "CREATE TABLE runs ("
    " id INTEGER PRIMARY KEY,"
    " scenario_name TEXT NOT NULL,"
    " scenario_text TEXT,"
    " varied_params TEXT NOT NULL DEFAULT '{}'"
    "  CHECK (json_valid(varied_params) AND json_type(varied_params) = 'object'),"
    " mode TEXT NOT NULL CHECK (mode IN ('sim', 'real', 'memnet')),"
    " transport TEXT,"
    " placement TEXT,"
    " seed INTEGER,"
    " started_at TEXT NOT NULL,"
    " wall_seconds REAL,"
    " sim_seconds REAL,"
    " software_version TEXT NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'running'"
    "  CHECK (status IN ('running', 'complete', 'incomplete', 'failed')),"
    " requests_planned INTEGER);"
    "CREATE TABLE requests ("
    " run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL,"
    " client INTEGER NOT NULL,"
    " server INTEGER NOT NULL,"
    " op TEXT NOT NULL,"
    " key TEXT,"
    " value_bytes INTEGER NOT NULL,"
    " issue_ns INTEGER NOT NULL,"
    " complete_ns INTEGER,"
    " latency_ns INTEGER GENERATED ALWAYS AS (complete_ns - issue_ns) VIRTUAL,"
    " outcome TEXT,"
    " status INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " bytes_sent INTEGER NOT NULL,"
    " bytes_received INTEGER NOT NULL,"
    " PRIMARY KEY (run_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    " time_ns INTEGER NOT NULL,"
    " node TEXT,"
    " kind TEXT NOT NULL,"
    " detail TEXT);"
    "CREATE INDEX events_run_time ON events (run_id, time_ns);"
    "CREATE TABLE run_summary ("
    " run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,"
    " requests INTEGER NOT NULL,"
    " completed INTEGER NOT NULL,"
    " duration_s REAL,"
    " throughput_rps REAL,"
    " p50_us REAL, p90_us REAL, p99_us REAL, p999_us REAL, mean_us REAL,"
    " hit_ratio REAL,"
    " error_rate REAL,"
    " timeout_rate REAL,"
    " bytes_per_request REAL,"
    " retries INTEGER NOT NULL,"
    " stale_reads INTEGER NOT NULL);";

/*
 * Version 2: `cachebed bench placement` figures (docs/results.md "placement_runs"). A bench
 * run is not a `runs` row (no scenario, no requests), so it has its own table.
 */
static const char results_schema_v2[] =
    "CREATE TABLE placement_runs ("
    " id INTEGER PRIMARY KEY,"
    " started_at TEXT NOT NULL,"
    " keys INTEGER NOT NULL,"
    " seed INTEGER NOT NULL,"
    " maglev_table_size INTEGER,"
    " software_version TEXT NOT NULL,"
    " notes TEXT);"
    "CREATE TABLE placement_results ("
    " placement_run_id INTEGER NOT NULL REFERENCES placement_runs(id) ON DELETE CASCADE,"
    " strategy TEXT NOT NULL,"
    " nodes INTEGER NOT NULL,"
    " max_over_mean REAL,"
    " cv REAL,"
    " moved_add_ratio REAL,"
    " moved_remove_ratio REAL,"
    " moved_remove_last_ratio REAL,"
    " lookup_ns_r1 REAL,"
    " lookup_ns_r3 REAL,"
    " PRIMARY KEY (placement_run_id, nodes, strategy));"
    "CREATE TABLE placement_load ("
    " placement_run_id INTEGER NOT NULL REFERENCES placement_runs(id) ON DELETE CASCADE,"
    " strategy TEXT NOT NULL,"
    " nodes INTEGER NOT NULL,"
    " node INTEGER NOT NULL,"
    " keys INTEGER NOT NULL,"
    " PRIMARY KEY (placement_run_id, nodes, strategy, node)) WITHOUT ROWID;";

/*
 * Migration steps, applied in order: step i takes a file from version to_version - 1 to
 * to_version. A new schema version appends one step (ALTER TABLE ..., CREATE ...) and bumps
 * CB_RESULTS_SCHEMA_VERSION; steps are never edited once released.
 */
typedef struct results_migration {
    int to_version;
    const char *sql;
} results_migration;

/*
 * Version 3: which value each request wrote or read (docs/results.md "requests"), so that the
 * checker (analysis/cb_check) can match every read to the write it returned. Older rows get
 * NULL: unknown.
 */
static const char results_schema_v3[] = "ALTER TABLE requests ADD COLUMN version INTEGER;"
                                        "ALTER TABLE requests ADD COLUMN value_digest INTEGER;";

static const results_migration results_migrations[] = {
    {1, results_schema_v1},
    {2, results_schema_v2},
    {3, results_schema_v3},
};

#define RESULTS_MIGRATION_COUNT (sizeof results_migrations / sizeof results_migrations[0])
_Static_assert(RESULTS_MIGRATION_COUNT == CB_RESULTS_SCHEMA_VERSION,
               "one migration step per schema version");

/* The request insert: VALUES of RESULTS_INSERT_ROWS rows, of which LIMIT ? are inserted. */
static const char results_insert_requests_head[] =
    "INSERT INTO requests (run_id, seq, client, server, op, key, value_bytes, issue_ns,"
    " complete_ns, outcome, status, attempts, bytes_sent, bytes_received, version,"
    " value_digest) SELECT * FROM (VALUES ";
static const char results_insert_requests_row[] = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
static const char results_insert_requests_tail[] = ") LIMIT ?";

static const char results_insert_event_sql[] =
    "INSERT INTO events (run_id, time_ns, node, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)";

/* ---- errors and small helpers ------------------------------------------------------------ */

static void results_vformat(char *buf, size_t cap, const char *fmt, va_list ap)
{
    if (cap == 0) {
        return;
    }
    int n = vsnprintf(buf, cap, fmt, ap);
    if (n < 0) {
        buf[0] = '\0';
    }
}

static void results_format(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    results_vformat(buf, cap, fmt, ap);
    va_end(ap);
}

/* Record an error message on the handle; returns CB_RESULTS_ERROR for `return results_fail()`. */
static int results_fail(cb_results *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    results_vformat(db->errmsg, sizeof db->errmsg, fmt, ap);
    va_end(ap);
    return CB_RESULTS_ERROR;
}

/* As results_fail(), with SQLite's message for the last failed call appended. */
static int results_fail_sqlite(cb_results *db, const char *what)
{
    return results_fail(db, "%s: %s", what, sqlite3_errmsg(db->db));
}

static int results_exec(cb_results *db, const char *sql, const char *what)
{
    if (sqlite3_exec(db->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        return results_fail_sqlite(db, what);
    }
    return CB_RESULTS_OK;
}

const char *cb_run_status_name(int status)
{
    switch (status) {
    case CB_RUN_RUNNING:
        return "running";
    case CB_RUN_COMPLETE:
        return "complete";
    case CB_RUN_INCOMPLETE:
        return "incomplete";
    case CB_RUN_FAILED:
        return "failed";
    default:
        return "unknown";
    }
}

const char *cb_results_errmsg(const cb_results *db)
{
    return db == NULL ? "no results database" : db->errmsg;
}

/* ---- the running summary ------------------------------------------------------------------ */

static void results_acc_drop(results_acc *a)
{
    free(a->lat_ns);
    memset(a, 0, sizeof *a);
}

/* Start summarizing run_id, which has no rows yet. */
static void results_acc_start(results_acc *a, int64_t run_id)
{
    results_acc_drop(a);
    a->run_id = run_id;
}

/* One more completed latency; out of memory drops the summary (end_run reads the table). */
static void results_acc_push(results_acc *a, uint64_t latency_ns)
{
    size_t n = (size_t)a->t.completed;
    if (n == a->cap) {
        size_t cap = a->cap > 0 ? 2 * a->cap : 4096;
        uint64_t *grown = realloc(a->lat_ns, cap * sizeof *grown);
        if (grown == NULL) {
            results_acc_drop(a);
            return;
        }
        a->lat_ns = grown;
        a->cap = cap;
    }
    a->lat_ns[n] = latency_ns;
    a->t.completed++;
}

static int results_name_is(const char *name, const char *want)
{
    return name != NULL && strcmp(name, want) == 0;
}

/* Count one checked row of run a->run_id: results_totals_sql, row by row. */
static void results_acc_add(results_acc *a, const cb_result_request *r)
{
    results_totals *t = &a->t;
    int done = r->complete_ns != UINT64_MAX;
    int timeout = results_name_is(r->outcome, "timeout");
    int get = results_name_is(r->op, "get");
    t->requests++;
    t->hits += get && results_name_is(r->outcome, "hit");
    t->misses += get && results_name_is(r->outcome, "miss");
    t->errors += results_name_is(r->outcome, "error");
    t->timeouts += timeout;
    t->bytes = (int64_t)((uint64_t)t->bytes + r->bytes_sent + r->bytes_received);
    t->retries += r->attempts > 1 ? r->attempts - 1 : 0;
    if (done) {
        int64_t issue = (int64_t)r->issue_ns;
        int64_t complete = (int64_t)r->complete_ns;
        t->first_issue_ns = !t->has_span || issue < t->first_issue_ns ? issue : t->first_issue_ns;
        t->last_complete_ns =
            !t->has_span || complete > t->last_complete_ns ? complete : t->last_complete_ns;
        t->has_span = 1;
    }
    if (done && !timeout) {
        results_acc_push(a, r->complete_ns - r->issue_ns);
    }
}

/*
 * The summarized run's latencies in µs, sorted ascending: the same doubles, in the same
 * order, as results_read_latencies() gives from the table (ns / 1000 is monotonic). NULL when
 * out of memory. The caller frees the array.
 */
static double *results_acc_sorted_us(results_acc *a)
{
    size_t n = (size_t)a->t.completed;
    double *us = malloc((n > 0 ? n : 1) * sizeof *us);
    if (us == NULL) {
        return NULL;
    }
    /* us is the sort's scratch space first: both hold 8-byte values. */
    _Static_assert(sizeof(double) == sizeof(uint64_t), "8-byte doubles");
    cb_sort_u64(a->lat_ns, (uint64_t *)(void *)us, n);
    for (size_t i = 0; i < n; i++) {
        us[i] = (double)a->lat_ns[i] / 1000.0;
    }
    return us;
}

/* Step a bound insert statement and reset it; the statement's SQLite error on failure. */
static int results_step_insert(cb_results *db, sqlite3_stmt *st, int bind_rc, const char *what)
{
    int rc = bind_rc == SQLITE_OK ? sqlite3_step(st) : bind_rc;
    if (rc != SQLITE_DONE) {
        results_fail(db, "%s: %s", what, sqlite3_errmsg(db->db));
    }
    /* reset returns the step's error again: already reported above. */
    (void)sqlite3_reset(st);
    /*
     * Bindings are not cleared (that costs per row): text bindings point into the handle's
     * slots (SQLITE_STATIC), which outlive the statement, every parameter of a row is bound
     * again before the row is inserted, and rows past insert_requests' LIMIT are never read.
     */
    return rc == SQLITE_DONE ? CB_RESULTS_OK : CB_RESULTS_ERROR;
}

/*
 * Insert the queued request rows. On failure they are lost (the next row takes their seq
 * numbers again) and the running summary, which counted them, is dropped.
 */
static int results_send_requests(cb_results *db)
{
    if (db->queued == 0) {
        return CB_RESULTS_OK;
    }
    sqlite3_stmt *st = db->insert_requests;
    int rc = sqlite3_bind_int64(st, RESULTS_INSERT_ROWS * RESULTS_REQUEST_COLS + 1,
                                (sqlite3_int64)db->queued);
    db->queued = 0;
    if (results_step_insert(db, st, rc, "add request") != CB_RESULTS_OK) {
        db->seq_run_id = 0;
        results_acc_drop(&db->acc);
        return CB_RESULTS_ERROR;
    }
    return CB_RESULTS_OK;
}

/* ---- transactions ------------------------------------------------------------------------ */

/* IMMEDIATE: take the write lock now, so two writing processes never deadlock on upgrade. */
static int results_txn_begin(cb_results *db)
{
    if (db->in_txn) {
        return CB_RESULTS_OK;
    }
    if (results_exec(db, "BEGIN IMMEDIATE", "begin transaction") != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    db->in_txn = 1;
    db->pending_rows = 0;
    return CB_RESULTS_OK;
}

static int results_txn_commit(cb_results *db)
{
    if (!db->in_txn) {
        return CB_RESULTS_OK;
    }
    if (results_send_requests(db) != CB_RESULTS_OK ||
        results_exec(db, "COMMIT", "commit") != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    db->in_txn = 0;
    db->pending_rows = 0;
    return CB_RESULTS_OK;
}

/* Undo the open transaction after a failure; the original error message is kept. */
static void results_txn_rollback(cb_results *db)
{
    if (db->in_txn && sqlite3_get_autocommit(db->db) == 0) {
        /* A failed ROLLBACK leaves nothing more to undo: SQLite then rolled back itself. */
        (void)sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
    }
    db->in_txn = 0;
    db->pending_rows = 0;
    db->queued = 0;
    db->seq_run_id = 0;         /* the rolled-back rows' seq numbers are free again */
    results_acc_drop(&db->acc); /* it counted rolled-back rows */
}

/* One more row in the open transaction: commit when the batch is full. */
static int results_row_added(cb_results *db)
{
    db->pending_rows++;
    if (db->pending_rows >= CB_RESULTS_BATCH_ROWS) {
        return results_txn_commit(db);
    }
    return CB_RESULTS_OK;
}

int cb_results_flush(cb_results *db)
{
    return results_txn_commit(db);
}

/* ---- open, migrate, close ------------------------------------------------------------------ */

static int results_read_int(cb_results *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return results_fail_sqlite(db, "read schema");
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        return results_fail_sqlite(db, "read schema");
    }
    return CB_RESULTS_OK;
}

/* Apply the steps after `from`, inside the caller's transaction. */
static int results_apply_migrations(cb_results *db, int64_t from)
{
    for (size_t i = 0; i < RESULTS_MIGRATION_COUNT; i++) {
        const results_migration *m = &results_migrations[i];
        if (m->to_version <= from) {
            continue;
        }
        char what[64];
        char pragma[64];
        results_format(what, sizeof what, "migrate schema to version %d", m->to_version);
        results_format(pragma, sizeof pragma, "PRAGMA user_version = %d", m->to_version);
        if (results_exec(db, m->sql, what) != CB_RESULTS_OK ||
            results_exec(db, pragma, what) != CB_RESULTS_OK) {
            return CB_RESULTS_ERROR;
        }
    }
    return CB_RESULTS_OK;
}

/* Check the file's version and migrate it, inside the caller's transaction. */
static int results_check_version(cb_results *db)
{
    int64_t version = 0;
    int64_t tables = 0;
    if (results_read_int(db, "PRAGMA user_version", &version) != CB_RESULTS_OK ||
        results_read_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'", &tables) !=
            CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    if (version > CB_RESULTS_SCHEMA_VERSION) {
        return results_fail(db,
                            "schema version %lld is newer than this cachebed (%s) supports "
                            "(%d): use a newer cachebed",
                            (long long)version, CB_VERSION, CB_RESULTS_SCHEMA_VERSION);
    }
    if (version < 0 || (version == 0 && tables > 0)) {
        return results_fail(db, "not a cachebed results database (it has tables but schema "
                                "version 0): give a new file name");
    }
    return results_apply_migrations(db, version);
}

/*
 * The version is read inside a write transaction so that two processes creating the same
 * new file one after the other do not both run the migrations; a failed step leaves the
 * file as it was.
 */
static int results_migrate(cb_results *db)
{
    if (results_txn_begin(db) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    if (results_check_version(db) != CB_RESULTS_OK || results_txn_commit(db) != CB_RESULTS_OK) {
        results_txn_rollback(db);
        return CB_RESULTS_ERROR;
    }
    return CB_RESULTS_OK;
}

/*
 * Connection settings: WAL (readers never block the writer), NORMAL sync (with WAL, a power
 * loss may lose the last commits but never corrupts the file). The handle is opened
 * NOMUTEX: it is used by one thread (cb_results.h), and SQLite's serialized mode would take
 * a mutex in every bind call.
 */
static int results_configure(cb_results *db)
{
    if (sqlite3_busy_timeout(db->db, RESULTS_BUSY_TIMEOUT_MS) != SQLITE_OK) {
        return results_fail_sqlite(db, "set busy timeout");
    }
    if (sqlite3_db_readonly(db->db, "main") == 1) {
        return results_fail(db, "cannot write: the file or its directory is read-only");
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK) {
        return results_fail_sqlite(db, "set WAL mode");
    }
    int rc = sqlite3_step(st);
    int wal = rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        return results_fail_sqlite(db, "set WAL mode");
    }
    if (!wal) {
        return results_fail(db, "set WAL mode: refused (is the file on a network filesystem?)");
    }
    /*
     * Foreign keys stay declared (a user who enables them gets ON DELETE CASCADE) but are
     * not enforced here: the check costs about 10% per row, and results_use_run() checks
     * the run once instead.
     */
    return results_exec(db, "PRAGMA synchronous = NORMAL", "configure connection");
}

static int results_prepare(cb_results *db)
{
    char sql[sizeof results_insert_requests_head + sizeof results_insert_requests_tail +
             RESULTS_INSERT_ROWS * sizeof results_insert_requests_row];
    size_t len = 0;
    memcpy(sql, results_insert_requests_head, sizeof results_insert_requests_head - 1);
    len += sizeof results_insert_requests_head - 1;
    for (int i = 0; i < RESULTS_INSERT_ROWS; i++) {
        if (i > 0) {
            sql[len++] = ',';
        }
        memcpy(sql + len, results_insert_requests_row, sizeof results_insert_requests_row - 1);
        len += sizeof results_insert_requests_row - 1;
    }
    memcpy(sql + len, results_insert_requests_tail, sizeof results_insert_requests_tail);
    if (sqlite3_prepare_v3(db->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &db->insert_requests,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db->db, results_insert_event_sql, -1, SQLITE_PREPARE_PERSISTENT,
                           &db->insert_event, NULL) != SQLITE_OK) {
        return results_fail_sqlite(db, "prepare statements");
    }
    return CB_RESULTS_OK;
}

static void results_release(cb_results *db)
{
    sqlite3_finalize(db->insert_requests);
    sqlite3_finalize(db->insert_event);
    results_acc_drop(&db->acc);
    /* sqlite3_close_v2 defers the close until statements are gone; all are finalized. */
    (void)sqlite3_close_v2(db->db);
    free(db);
}

int cb_results_open(const char *path, cb_results **out, char *errbuf, size_t errcap)
{
    *out = NULL;
    cb_results *db = calloc(1, sizeof *db);
    if (db == NULL) {
        results_format(errbuf, errcap, "%s: out of memory", path);
        return CB_RESULTS_ERROR;
    }
    int rc = sqlite3_open_v2(
        path, &db->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        results_format(db->errmsg, sizeof db->errmsg, "%s",
                       db->db != NULL ? sqlite3_errmsg(db->db) : sqlite3_errstr(rc));
    } else if (results_configure(db) == CB_RESULTS_OK && results_migrate(db) == CB_RESULTS_OK &&
               results_prepare(db) == CB_RESULTS_OK) {
        *out = db;
        return CB_RESULTS_OK;
    }
    results_format(errbuf, errcap, "%s: %s", path, db->errmsg);
    results_release(db);
    return CB_RESULTS_ERROR;
}

int cb_results_close(cb_results *db)
{
    if (db == NULL) {
        return CB_RESULTS_OK;
    }
    int rc = results_txn_commit(db);
    if (rc != CB_RESULTS_OK) {
        results_txn_rollback(db);
    }
    results_release(db);
    return rc;
}

/* ---- runs -------------------------------------------------------------------------------- */

static int results_bind_text(sqlite3_stmt *st, int idx, const char *text)
{
    if (text == NULL) {
        return sqlite3_bind_null(st, idx);
    }
    return sqlite3_bind_text(st, idx, text, -1, SQLITE_TRANSIENT);
}

static int results_check_run_info(cb_results *db, const cb_run_info *info)
{
    if (info->scenario_name == NULL) {
        return results_fail(db, "begin run: no scenario name");
    }
    if (info->mode == NULL || (strcmp(info->mode, "sim") != 0 && strcmp(info->mode, "real") != 0 &&
                               strcmp(info->mode, "memnet") != 0)) {
        return results_fail(db, "begin run: mode '%s' is not sim, real or memnet",
                            info->mode != NULL ? info->mode : "(none)");
    }
    if (info->seed > (uint64_t)INT64_MAX || info->requests_planned > (uint64_t)INT64_MAX) {
        return results_fail(db, "begin run: seed or requests_planned over 2^63-1");
    }
    return CB_RESULTS_OK;
}

static int results_bind_run(sqlite3_stmt *st, const cb_run_info *info)
{
    const char *params = info->varied_params != NULL ? info->varied_params : "{}";
    const char *version = info->software_version != NULL ? info->software_version : CB_VERSION;
    int rc = results_bind_text(st, 1, info->scenario_name);
    rc = rc != SQLITE_OK ? rc : results_bind_text(st, 2, info->scenario_text);
    rc = rc != SQLITE_OK ? rc : results_bind_text(st, 3, params);
    rc = rc != SQLITE_OK ? rc : results_bind_text(st, 4, info->mode);
    rc = rc != SQLITE_OK ? rc : results_bind_text(st, 5, info->transport);
    rc = rc != SQLITE_OK ? rc : results_bind_text(st, 6, info->placement);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 7, (sqlite3_int64)info->seed);
    rc = rc != SQLITE_OK ? rc : results_bind_text(st, 8, info->started_at);
    rc = rc != SQLITE_OK ? rc : results_bind_text(st, 9, version);
    return rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 10, (sqlite3_int64)info->requests_planned);
}

int cb_results_begin_run(cb_results *db, const cb_run_info *info, int64_t *run_id)
{
    static const char sql[] =
        "INSERT INTO runs (scenario_name, scenario_text, varied_params, mode, transport,"
        " placement, seed, started_at, software_version, requests_planned, status)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
        " coalesce(?8, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), ?9, ?10, 'running')";
    if (results_check_run_info(db, info) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    /* The run row is committed at once so that other readers see the run 'running'. */
    if (results_txn_commit(db) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return results_fail_sqlite(db, "begin run");
    }
    int rc = results_bind_run(st, info);
    rc = rc != SQLITE_OK ? rc : sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_CONSTRAINT) {
            return results_fail(db, "begin run: varied_params is not a JSON object: %s",
                                info->varied_params);
        }
        return results_fail_sqlite(db, "begin run");
    }
    *run_id = sqlite3_last_insert_rowid(db->db);
    return CB_RESULTS_OK;
}

/* ---- requests and events ------------------------------------------------------------------- */

/*
 * The key as stored (cb_results.h, cb_results_add_request): as is when printable and not
 * starting with the marker, else "hex:" + lower-case hex. Writes it into out (cap >= 4 + 2 *
 * CB_RESULTS_KEY_BYTES_MAX), not NUL-terminated; returns its length.
 */
static int results_key_text(const uint8_t *key, size_t key_len, char *out)
{
    static const char marker[] = "hex:";
    static const char digits[] = "0123456789abcdef";
    int printable = !(key_len >= 4 && memcmp(key, marker, 4) == 0);
    for (size_t i = 0; i < key_len && printable; i++) {
        printable = key[i] >= 0x21 && key[i] <= 0x7e;
    }
    if (printable) {
        memcpy(out, key, key_len);
        return (int)key_len;
    }
    memcpy(out, marker, 4);
    for (size_t i = 0; i < key_len; i++) {
        out[4 + 2 * i] = digits[key[i] >> 4];
        out[4 + 2 * i + 1] = digits[key[i] & 0xf];
    }
    return (int)(4 + 2 * key_len);
}

static int results_check_request(cb_results *db, const cb_result_request *r)
{
    const uint64_t max = (uint64_t)INT64_MAX;
    if (r->op == NULL) {
        return results_fail(db, "add request: no op");
    }
    if (r->key == NULL && r->key_len != 0) {
        return results_fail(db, "add request: key_len %zu with no key", r->key_len);
    }
    if (r->key_len > CB_RESULTS_KEY_BYTES_MAX) {
        return results_fail(db, "add request: key of %zu bytes is over %u", r->key_len,
                            CB_RESULTS_KEY_BYTES_MAX);
    }
    if (r->issue_ns > max || (r->complete_ns != UINT64_MAX && r->complete_ns > max) ||
        r->value_bytes > max || r->bytes_sent > max || r->bytes_received > max ||
        (r->has_version && r->version > max)) {
        return results_fail(db, "add request: a time, byte count or version is over 2^63-1");
    }
    if (r->complete_ns != UINT64_MAX && r->complete_ns < r->issue_ns) {
        return results_fail(db, "add request: completed at %llu ns, before issue at %llu ns",
                            (unsigned long long)r->complete_ns, (unsigned long long)r->issue_ns);
    }
    return CB_RESULTS_OK;
}

static int results_run_status(cb_results *db, int64_t run_id, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->db, "SELECT status FROM runs WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        return results_fail_sqlite(db, "read run");
    }
    int rc = sqlite3_bind_int64(st, 1, run_id);
    rc = rc != SQLITE_OK ? rc : sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        results_format(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) {
        return results_fail(db, "no run with id %lld", (long long)run_id);
    }
    if (rc != SQLITE_ROW) {
        return results_fail_sqlite(db, "read run");
    }
    return CB_RESULTS_OK;
}

/*
 * Check, once per run, that run_id exists and is 'running', and find the seq its next
 * request row gets: rows continue after the run's last committed row (after a reopen).
 */
static int results_use_run(cb_results *db, int64_t run_id)
{
    if (db->seq_run_id == run_id) {
        return CB_RESULTS_OK;
    }
    char status[16];
    char sql[128];
    int64_t last = 0;
    /* Queued rows first, so that max(seq) below counts them. */
    if (results_send_requests(db) != CB_RESULTS_OK ||
        results_run_status(db, run_id, status, sizeof status) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    if (strcmp(status, "running") != 0) {
        return results_fail(db, "run %lld is %s, not running: it takes no more rows",
                            (long long)run_id, status);
    }
    results_format(sql, sizeof sql,
                   "SELECT coalesce(max(seq), 0) FROM requests WHERE run_id = %lld",
                   (long long)run_id);
    if (results_read_int(db, sql, &last) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    db->seq_run_id = run_id;
    db->next_seq = last + 1;
    if (last == 0) {
        results_acc_start(&db->acc, run_id);
    } else if (db->acc.run_id != run_id || db->acc.t.requests != last) {
        results_acc_drop(&db->acc); /* rows this handle did not count: read them back */
    }
    return CB_RESULTS_OK;
}

/* Bind an op or outcome name, copied into buf when it fits (else SQLite copies it). */
static int results_bind_name(sqlite3_stmt *st, int idx, const char *name, char *buf, size_t cap)
{
    if (name == NULL) {
        return sqlite3_bind_null(st, idx);
    }
    size_t len = strlen(name);
    if (len >= cap) {
        return sqlite3_bind_text(st, idx, name, (int)len, SQLITE_TRANSIENT);
    }
    memcpy(buf, name, len);
    return sqlite3_bind_text(st, idx, buf, (int)len, SQLITE_STATIC);
}

/* Bind r as the statement's row number `row` (from 0), its text copied into slot. */
static int results_bind_request(sqlite3_stmt *st, int row, int64_t run_id, int64_t seq,
                                const cb_result_request *r, results_slot *slot)
{
    int c = row * RESULTS_REQUEST_COLS; /* parameter c + i is the row's column i */
    int rc = sqlite3_bind_int64(st, c + 1, run_id);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, c + 2, seq);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, c + 3, r->client);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, c + 4, r->server);
    rc = rc != SQLITE_OK ? rc : results_bind_name(st, c + 5, r->op, slot->op, sizeof slot->op);
    if (rc == SQLITE_OK && r->key != NULL) {
        int key_len = results_key_text(r->key, r->key_len, slot->key);
        rc = sqlite3_bind_text(st, c + 6, slot->key, key_len, SQLITE_STATIC);
    } else if (rc == SQLITE_OK) {
        rc = sqlite3_bind_null(st, c + 6);
    }
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, c + 7, (sqlite3_int64)r->value_bytes);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, c + 8, (sqlite3_int64)r->issue_ns);
    if (rc == SQLITE_OK && r->complete_ns != UINT64_MAX) {
        rc = sqlite3_bind_int64(st, c + 9, (sqlite3_int64)r->complete_ns);
    } else if (rc == SQLITE_OK) {
        rc = sqlite3_bind_null(st, c + 9);
    }
    rc = rc != SQLITE_OK
             ? rc
             : results_bind_name(st, c + 10, r->outcome, slot->outcome, sizeof slot->outcome);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, c + 11, r->status);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, c + 12, r->attempts);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, c + 13, (sqlite3_int64)r->bytes_sent);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, c + 14, (sqlite3_int64)r->bytes_received);
    if (rc == SQLITE_OK) {
        rc = r->has_version ? sqlite3_bind_int64(st, c + 15, (sqlite3_int64)r->version)
                            : sqlite3_bind_null(st, c + 15);
    }
    if (rc == SQLITE_OK) {
        /* The digest's bits as a signed integer: SQLite has no unsigned 64-bit type. */
        rc = r->has_value_digest ? sqlite3_bind_int64(st, c + 16, (sqlite3_int64)r->value_digest)
                                 : sqlite3_bind_null(st, c + 16);
    }
    return rc;
}

uint64_t cb_results_value_digest(const uint8_t *value, size_t value_len)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64: offset basis, then xor and multiply */
    for (size_t i = 0; i < value_len; i++) {
        h = (h ^ value[i]) * 0x100000001b3ull;
    }
    return h;
}

int cb_results_add_request(cb_results *db, int64_t run_id, const cb_result_request *r)
{
    if (results_check_request(db, r) != CB_RESULTS_OK || results_txn_begin(db) != CB_RESULTS_OK ||
        results_use_run(db, run_id) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    size_t row = db->queued;
    if (results_bind_request(db->insert_requests, (int)row, run_id, db->next_seq, r,
                             &db->slots[row]) != SQLITE_OK) {
        return results_fail_sqlite(db, "add request");
    }
    db->queued++;
    db->next_seq++;
    if (db->acc.run_id == run_id) {
        results_acc_add(&db->acc, r);
    }
    if (db->queued == RESULTS_INSERT_ROWS && results_send_requests(db) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    return results_row_added(db);
}

int cb_results_add_event(cb_results *db, int64_t run_id, uint64_t time_ns, const char *node,
                         const char *kind, const char *detail)
{
    if (kind == NULL) {
        return results_fail(db, "add event: no kind");
    }
    if (time_ns > (uint64_t)INT64_MAX) {
        return results_fail(db, "add event: time over 2^63-1 ns");
    }
    if (results_txn_begin(db) != CB_RESULTS_OK || results_use_run(db, run_id) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    sqlite3_stmt *st = db->insert_event;
    int rc = sqlite3_bind_int64(st, 1, run_id);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 2, (sqlite3_int64)time_ns);
    rc = rc != SQLITE_OK ? rc : results_bind_text(st, 3, node);
    rc = rc != SQLITE_OK ? rc : results_bind_text(st, 4, kind);
    rc = rc != SQLITE_OK ? rc : results_bind_text(st, 5, detail);
    if (results_step_insert(db, st, rc, "add event") != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    return results_row_added(db);
}

/* ---- summaries ----------------------------------------------------------------------------- */

static const char results_totals_sql[] =
    "SELECT count(*),"
    " coalesce(sum(latency_ns IS NOT NULL AND outcome IS NOT 'timeout'), 0),"
    " coalesce(sum(op = 'get' AND outcome = 'hit'), 0),"
    " coalesce(sum(op = 'get' AND outcome = 'miss'), 0),"
    " coalesce(sum(outcome = 'error'), 0),"
    " coalesce(sum(outcome = 'timeout'), 0),"
    " coalesce(sum(bytes_sent + bytes_received), 0),"
    " coalesce(sum(max(attempts - 1, 0)), 0),"
    " min(issue_ns) FILTER (WHERE complete_ns IS NOT NULL), max(complete_ns)"
    " FROM requests WHERE run_id = ?1";

static int results_read_totals(cb_results *db, int64_t run_id, results_totals *t)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->db, results_totals_sql, -1, &st, NULL) != SQLITE_OK) {
        return results_fail_sqlite(db, "summarize");
    }
    int rc = sqlite3_bind_int64(st, 1, run_id);
    rc = rc != SQLITE_OK ? rc : sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t *fields[] = {&t->requests, &t->completed, &t->hits,  &t->misses,
                             &t->errors,   &t->timeouts,  &t->bytes, &t->retries};
        for (int i = 0; i < (int)(sizeof fields / sizeof fields[0]); i++) {
            *fields[i] = sqlite3_column_int64(st, i);
        }
        t->has_span = sqlite3_column_type(st, 8) != SQLITE_NULL;
        t->first_issue_ns = sqlite3_column_int64(st, 8);
        t->last_complete_ns = sqlite3_column_int64(st, 9);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        return results_fail_sqlite(db, "summarize");
    }
    return CB_RESULTS_OK;
}

/* The latencies (µs) of the run's completed requests, `count` of them, sorted ascending. */
static int results_read_latencies(cb_results *db, int64_t run_id, double *lat_us, size_t count)
{
    static const char sql[] = "SELECT latency_ns FROM requests WHERE run_id = ?1"
                              " AND latency_ns IS NOT NULL AND outcome IS NOT 'timeout'";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return results_fail_sqlite(db, "summarize");
    }
    int rc = sqlite3_bind_int64(st, 1, run_id);
    size_t n = 0;
    while (rc == SQLITE_OK && n < count && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        lat_us[n++] = (double)sqlite3_column_int64(st, 0) / 1000.0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (n != count) {
        return results_fail(db, "summarize: read %zu latencies, expected %zu", n, count);
    }
    gsl_sort(lat_us, 1, count);
    return CB_RESULTS_OK;
}

static int results_bind_ratio(sqlite3_stmt *st, int idx, int64_t num, int64_t den)
{
    if (den <= 0) {
        return sqlite3_bind_null(st, idx);
    }
    return sqlite3_bind_double(st, idx, (double)num / (double)den);
}

/* Bind the latency columns ?5..?9: p50, p90, p99, p99.9, mean (µs); NULL with no data. */
static int results_bind_latency(sqlite3_stmt *st, const double *lat_us, size_t n)
{
    static const double fractions[] = {0.50, 0.90, 0.99, 0.999};
    int rc = SQLITE_OK;
    for (int i = 0; i < 4 && rc == SQLITE_OK; i++) {
        rc = n == 0
                 ? sqlite3_bind_null(st, 5 + i)
                 : sqlite3_bind_double(
                       st, 5 + i, gsl_stats_quantile_from_sorted_data(lat_us, 1, n, fractions[i]));
    }
    if (rc != SQLITE_OK) {
        return rc;
    }
    return n == 0 ? sqlite3_bind_null(st, 9)
                  : sqlite3_bind_double(st, 9, gsl_stats_mean(lat_us, 1, n));
}

static int results_bind_summary(sqlite3_stmt *st, int64_t run_id, const results_totals *t,
                                const double *lat_us)
{
    int rc = sqlite3_bind_int64(st, 1, run_id);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 2, t->requests);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 3, t->completed);
    if (rc == SQLITE_OK && t->has_span) {
        double duration_s = (double)(t->last_complete_ns - t->first_issue_ns) / 1e9;
        rc = sqlite3_bind_double(st, 4, duration_s);
        if (rc == SQLITE_OK && duration_s > 0) {
            rc = sqlite3_bind_double(st, 15, (double)t->completed / duration_s);
        }
    }
    rc = rc != SQLITE_OK ? rc : results_bind_latency(st, lat_us, (size_t)t->completed);
    rc = rc != SQLITE_OK ? rc : results_bind_ratio(st, 10, t->hits, t->hits + t->misses);
    rc = rc != SQLITE_OK ? rc : results_bind_ratio(st, 11, t->errors, t->requests);
    rc = rc != SQLITE_OK ? rc : results_bind_ratio(st, 12, t->timeouts, t->requests);
    rc = rc != SQLITE_OK ? rc : results_bind_ratio(st, 13, t->bytes, t->requests);
    return rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 14, t->retries);
}

static int results_write_summary(cb_results *db, int64_t run_id, const results_totals *t,
                                 const double *lat_us)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO run_summary (run_id, requests, completed, duration_s,"
        " throughput_rps, p50_us, p90_us, p99_us, p999_us, mean_us, hit_ratio, error_rate,"
        " timeout_rate, bytes_per_request, retries, stale_reads)"
        " VALUES (?1, ?2, ?3, ?4, ?15, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
        " (SELECT count(*) FROM events WHERE run_id = ?1 AND kind = 'stale_read'))";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return results_fail_sqlite(db, "summarize");
    }
    int rc = results_bind_summary(st, run_id, t, lat_us);
    rc = rc != SQLITE_OK ? rc : sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return results_fail_sqlite(db, "summarize");
    }
    return CB_RESULTS_OK;
}

/* The summary from the rows as they were added (results_acc); *done = 0 when out of memory. */
static int results_summarize_acc(cb_results *db, int64_t run_id, int *done)
{
    results_totals t = db->acc.t;
    double *lat_us = results_acc_sorted_us(&db->acc);
    results_acc_drop(&db->acc);
    *done = lat_us != NULL;
    if (lat_us == NULL) {
        return CB_RESULTS_OK; /* read the table instead */
    }
    int rc = results_write_summary(db, run_id, &t, lat_us);
    free(lat_us);
    return rc;
}

/*
 * Compute and write the summary inside the caller's transaction: from the running summary
 * when `from_acc` and it covers the run, else from the run's rows in the table.
 */
static int results_summarize_in_txn(cb_results *db, int64_t run_id, int from_acc)
{
    char status[16];
    results_totals t = {0};
    if (results_run_status(db, run_id, status, sizeof status) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    if (from_acc && db->acc.run_id == run_id) {
        int done = 0;
        int rc = results_summarize_acc(db, run_id, &done);
        if (rc != CB_RESULTS_OK || done) {
            return rc;
        }
    }
    if (results_read_totals(db, run_id, &t) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    size_t n = (size_t)t.completed;
    double *lat_us = malloc((n > 0 ? n : 1) * sizeof *lat_us);
    if (lat_us == NULL) {
        return results_fail(db, "summarize: out of memory for %zu latencies", n);
    }
    int rc = results_read_latencies(db, run_id, lat_us, n);
    rc = rc != CB_RESULTS_OK ? rc : results_write_summary(db, run_id, &t, lat_us);
    free(lat_us);
    return rc;
}

int cb_results_summarize(cb_results *db, int64_t run_id)
{
    if (results_txn_commit(db) != CB_RESULTS_OK || results_txn_begin(db) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    if (results_summarize_in_txn(db, run_id, 0) != CB_RESULTS_OK ||
        results_txn_commit(db) != CB_RESULTS_OK) {
        results_txn_rollback(db);
        return CB_RESULTS_ERROR;
    }
    return CB_RESULTS_OK;
}

/* ---- ending runs ----------------------------------------------------------------------------- */

static int results_bind_seconds(sqlite3_stmt *st, int idx, double s)
{
    if (!(s >= 0) || !isfinite(s)) {
        return sqlite3_bind_null(st, idx);
    }
    return sqlite3_bind_double(st, idx, s);
}

/* Set the status (and times, when given) of a run that must still be 'running'. */
static int results_set_status(cb_results *db, int64_t run_id, cb_run_status status, int set_times,
                              double wall_s, double sim_s)
{
    static const char sql[] = "UPDATE runs SET status = ?2,"
                              " wall_seconds = CASE WHEN ?5 THEN ?3 ELSE wall_seconds END,"
                              " sim_seconds = CASE WHEN ?5 THEN ?4 ELSE sim_seconds END"
                              " WHERE id = ?1 AND status = 'running'";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return results_fail_sqlite(db, "end run");
    }
    int rc = sqlite3_bind_int64(st, 1, run_id);
    rc = rc != SQLITE_OK ? rc : results_bind_text(st, 2, cb_run_status_name(status));
    rc = rc != SQLITE_OK ? rc : results_bind_seconds(st, 3, wall_s);
    rc = rc != SQLITE_OK ? rc : results_bind_seconds(st, 4, sim_s);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int(st, 5, set_times);
    rc = rc != SQLITE_OK ? rc : sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return results_fail_sqlite(db, "end run");
    }
    if (sqlite3_changes(db->db) != 1) {
        return results_fail(db, "end run: run %lld is not running", (long long)run_id);
    }
    return CB_RESULTS_OK;
}

static int results_finish(cb_results *db, int64_t run_id, cb_run_status status, int set_times,
                          double wall_s, double sim_s)
{
    if (status != CB_RUN_COMPLETE && status != CB_RUN_INCOMPLETE && status != CB_RUN_FAILED) {
        return results_fail(db, "end run: status %d is not complete, incomplete or failed",
                            (int)status);
    }
    if (results_txn_commit(db) != CB_RESULTS_OK || results_txn_begin(db) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    db->seq_run_id = 0; /* an ended run takes no more rows: check again on the next add */
    if (results_set_status(db, run_id, status, set_times, wall_s, sim_s) != CB_RESULTS_OK ||
        results_summarize_in_txn(db, run_id, 1) != CB_RESULTS_OK ||
        results_txn_commit(db) != CB_RESULTS_OK) {
        results_txn_rollback(db);
        return CB_RESULTS_ERROR;
    }
    return CB_RESULTS_OK;
}

int cb_results_end_run(cb_results *db, int64_t run_id, cb_run_status status, double wall_s,
                       double sim_s)
{
    return results_finish(db, run_id, status, 1, wall_s, sim_s);
}

int cb_results_mark_incomplete(cb_results *db, int64_t run_id)
{
    return results_finish(db, run_id, CB_RUN_INCOMPLETE, 0, -1.0, -1.0);
}

/* ---- placement measurements ------------------------------------------------------------------ */

static int results_bind_real(sqlite3_stmt *st, int idx, double v)
{
    return isfinite(v) ? sqlite3_bind_double(st, idx, v) : sqlite3_bind_null(st, idx);
}

static int results_check_placement(cb_results *db, const cb_placement_run_info *info,
                                   const cb_placement_result *rows, size_t count)
{
    if (info->keys > (uint64_t)INT64_MAX || info->seed > (uint64_t)INT64_MAX ||
        info->maglev_table_size > (uint64_t)INT64_MAX) {
        return results_fail(db, "add placement: keys, seed or table size over 2^63-1");
    }
    for (size_t i = 0; i < count; i++) {
        const cb_placement_result *r = &rows[i];
        if (r->strategy == NULL || r->nodes == 0) {
            return results_fail(db, "add placement: row %zu has no strategy or no nodes", i);
        }
        if (r->load != NULL && r->nodes > CB_RESULTS_PLACEMENT_LOAD_NODES_MAX) {
            return results_fail(db, "add placement: load of %u nodes is over %u", r->nodes,
                                CB_RESULTS_PLACEMENT_LOAD_NODES_MAX);
        }
        for (uint32_t n = 0; r->load != NULL && n < r->nodes; n++) {
            if (r->load[n] > (uint64_t)INT64_MAX) {
                return results_fail(db, "add placement: a load count over 2^63-1");
            }
        }
    }
    return CB_RESULTS_OK;
}

static int results_insert_placement_run(cb_results *db, const cb_placement_run_info *info,
                                        int64_t *id)
{
    static const char sql[] =
        "INSERT INTO placement_runs (started_at, keys, seed, maglev_table_size,"
        " software_version, notes) VALUES (coalesce(?1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),"
        " ?2, ?3, nullif(?4, 0), ?5, ?6)";
    const char *version = info->software_version != NULL ? info->software_version : CB_VERSION;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return results_fail_sqlite(db, "add placement");
    }
    int rc = results_bind_text(st, 1, info->started_at);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 2, (sqlite3_int64)info->keys);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 3, (sqlite3_int64)info->seed);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 4, (sqlite3_int64)info->maglev_table_size);
    rc = rc != SQLITE_OK ? rc : results_bind_text(st, 5, version);
    rc = rc != SQLITE_OK ? rc : results_bind_text(st, 6, info->notes);
    rc = rc != SQLITE_OK ? rc : sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return results_fail_sqlite(db, "add placement");
    }
    *id = sqlite3_last_insert_rowid(db->db);
    return CB_RESULTS_OK;
}

static int results_insert_placement_row(cb_results *db, sqlite3_stmt *st, int64_t id,
                                        const cb_placement_result *r)
{
    const double v[] = {
        r->max_over_mean,           r->cv,           r->moved_add_ratio, r->moved_remove_ratio,
        r->moved_remove_last_ratio, r->lookup_ns_r1, r->lookup_ns_r3};
    int rc = sqlite3_bind_int64(st, 1, id);
    rc = rc != SQLITE_OK ? rc : results_bind_text(st, 2, r->strategy);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 3, r->nodes);
    for (int i = 0; i < (int)(sizeof v / sizeof v[0]) && rc == SQLITE_OK; i++) {
        rc = results_bind_real(st, 4 + i, v[i]);
    }
    return results_step_insert(db, st, rc, "add placement result");
}

static int results_insert_placement_load(cb_results *db, sqlite3_stmt *st, int64_t id,
                                         const cb_placement_result *r)
{
    for (uint32_t n = 0; r->load != NULL && n < r->nodes; n++) {
        int rc = sqlite3_bind_int64(st, 1, id);
        rc = rc != SQLITE_OK ? rc : results_bind_text(st, 2, r->strategy);
        rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 3, r->nodes);
        rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 4, (sqlite3_int64)n + 1);
        rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 5, (sqlite3_int64)r->load[n]);
        if (results_step_insert(db, st, rc, "add placement load") != CB_RESULTS_OK) {
            return CB_RESULTS_ERROR;
        }
    }
    return CB_RESULTS_OK;
}

/* Every row of the run, inside the caller's transaction. */
static int results_write_placement(cb_results *db, const cb_placement_run_info *info,
                                   const cb_placement_result *rows, size_t count, int64_t *id)
{
    static const char result_sql[] =
        "INSERT INTO placement_results (placement_run_id, strategy, nodes, max_over_mean, cv,"
        " moved_add_ratio, moved_remove_ratio, moved_remove_last_ratio, lookup_ns_r1,"
        " lookup_ns_r3) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
    static const char load_sql[] = "INSERT INTO placement_load (placement_run_id, strategy,"
                                   " nodes, node, keys) VALUES (?1, ?2, ?3, ?4, ?5)";
    sqlite3_stmt *result_st = NULL;
    sqlite3_stmt *load_st = NULL;
    if (results_insert_placement_run(db, info, id) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    int rc = CB_RESULTS_OK;
    if (sqlite3_prepare_v2(db->db, result_sql, -1, &result_st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db->db, load_sql, -1, &load_st, NULL) != SQLITE_OK) {
        rc = results_fail_sqlite(db, "add placement");
    }
    for (size_t i = 0; i < count && rc == CB_RESULTS_OK; i++) {
        rc = results_insert_placement_row(db, result_st, *id, &rows[i]);
        rc = rc != CB_RESULTS_OK ? rc : results_insert_placement_load(db, load_st, *id, &rows[i]);
    }
    sqlite3_finalize(result_st);
    sqlite3_finalize(load_st);
    return rc;
}

int cb_results_add_placement(cb_results *db, const cb_placement_run_info *info,
                             const cb_placement_result *rows, size_t count,
                             int64_t *placement_run_id)
{
    int64_t id = 0;
    if (results_check_placement(db, info, rows, count) != CB_RESULTS_OK ||
        results_txn_commit(db) != CB_RESULTS_OK || results_txn_begin(db) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    if (results_write_placement(db, info, rows, count, &id) != CB_RESULTS_OK ||
        results_txn_commit(db) != CB_RESULTS_OK) {
        results_txn_rollback(db);
        return CB_RESULTS_ERROR;
    }
    if (placement_run_id != NULL) {
        *placement_run_id = id;
    }
    return CB_RESULTS_OK;
}
