/*
 * cb_check.c: the invariants of docs/check.md over one run's rows, mostly as SQL.
 *
 * Each invariant is one function that runs a query and reports the rows that break it. The
 * fault windows of the lost-write rule come from the run's own `events` rows (crash,
 * recover, partition, heal, link_change), so a database checked later gives the same
 * verdict as the sweep that wrote it. Violations come out in seq order: deterministic.
 */
#include "cb_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const check_names[CB_CHECK_NUM] = {"one-outcome", "phantom-read", "lost-write",
                                                      "stale-read", "stale-count"};

const char *cb_check_name(cb_check_invariant inv)
{
    return (unsigned)inv < CB_CHECK_NUM ? check_names[inv] : "?";
}

/* A window in which a server (or, with server -1, every server) is disturbed. */
typedef struct check_window {
    uint64_t start_ns;
    uint64_t end_ns; /* UINT64_MAX: until the end of the run */
    int32_t server;
} check_window;

typedef struct check_ctx {
    sqlite3 *db;
    int64_t run_id;
    const cb_check_config *cfg;
    uint32_t report_max;
    cb_check_report_fn report;
    void *user;
    cb_check_result *out;
    char *err;
    size_t err_cap;
    check_window *windows;
    size_t window_count;
    size_t window_cap;
} check_ctx;

__attribute__((format(printf, 3, 4))) static void
check_violation(check_ctx *x, cb_check_invariant inv, const char *fmt, ...)
{
    char details[512];
    va_list ap;
    x->out->violations++;
    if (x->out->by_invariant[inv]++ >= x->report_max || x->report == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(details, sizeof details, fmt, ap);
    va_end(ap);
    x->report(x->user, inv, details);
}

static int check_fail(check_ctx *x, const char *what)
{
    snprintf(x->err, x->err_cap, "check run %lld: %s: %s", (long long)x->run_id, what,
             sqlite3_errmsg(x->db));
    return -1;
}

static int check_prepare(check_ctx *x, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(x->db, sql, -1, st, NULL) != SQLITE_OK) {
        return check_fail(x, "prepare");
    }
    if (sqlite3_bind_parameter_count(*st) >= 1 &&
        sqlite3_bind_int64(*st, 1, (sqlite3_int64)x->run_id) != SQLITE_OK) {
        sqlite3_finalize(*st);
        return check_fail(x, "bind");
    }
    return 0;
}

static const char *check_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t != NULL ? (const char *)t : "NULL";
}

static uint64_t check_u64(sqlite3_stmt *st, int col)
{
    sqlite3_int64 v = sqlite3_column_int64(st, col);
    return v > 0 ? (uint64_t)v : 0;
}

/* One integer from a query with ?1 = run id; -1 on error. */
static int check_scalar(check_ctx *x, const char *sql, int64_t *value)
{
    sqlite3_stmt *st = NULL;
    if (check_prepare(x, sql, &st) != 0) {
        return -1;
    }
    int rc = sqlite3_step(st);
    *value = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : check_fail(x, "step");
}

/* ---- one outcome ---------------------------------------------------------------------- */

/* Rows whose outcome is missing, impossible for its op, or whose times disagree with it. */
static const char check_bad_outcome_sql[] =
    "SELECT seq, op, ifnull(key, 'NULL'), outcome, complete_ns IS NULL, complete_ns < issue_ns"
    " FROM requests WHERE run_id = ?1 AND (outcome IS NULL OR complete_ns IS NULL"
    "  OR complete_ns < issue_ns"
    "  OR outcome NOT IN ('hit', 'miss', 'stored', 'not_stored', 'exists', 'deleted',"
    "   'not_found', 'ok', 'timeout', 'error')"
    "  OR (op = 'get' AND outcome NOT IN ('hit', 'miss', 'timeout', 'error'))"
    "  OR (op = 'set' AND outcome NOT IN ('stored', 'not_stored', 'exists', 'timeout', 'error'))"
    "  OR (op <> 'get' AND outcome IN ('hit', 'miss')))"
    " ORDER BY seq";

static int check_one_outcome(check_ctx *x)
{
    int64_t count = 0, distinct = 0, max_seq = 0, min_seq = 0;
    if (check_scalar(x, "SELECT count(*) FROM requests WHERE run_id = ?1", &count) != 0 ||
        check_scalar(x, "SELECT count(DISTINCT seq) FROM requests WHERE run_id = ?1", &distinct) !=
            0 ||
        check_scalar(x, "SELECT ifnull(max(seq), 0) FROM requests WHERE run_id = ?1", &max_seq) !=
            0 ||
        check_scalar(x, "SELECT ifnull(min(seq), 0) FROM requests WHERE run_id = ?1", &min_seq) !=
            0) {
        return -1;
    }
    x->out->requests = count > 0 ? (uint64_t)count : 0;
    if (distinct != count) {
        check_violation(x, CB_CHECK_ONE_OUTCOME,
                        "%lld rows but %lld distinct seq: a request "
                        "logged twice",
                        (long long)count, (long long)distinct);
    }
    if (count > 0 && (min_seq != 1 || max_seq != distinct)) {
        check_violation(x, CB_CHECK_ONE_OUTCOME,
                        "seq runs %lld..%lld over %lld rows: %lld "
                        "request(s) without a row",
                        (long long)min_seq, (long long)max_seq, (long long)distinct,
                        (long long)(max_seq - distinct));
    }
    sqlite3_stmt *st = NULL;
    if (check_prepare(x, check_bad_outcome_sql, &st) != 0) {
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        check_violation(x, CB_CHECK_ONE_OUTCOME, "seq %lld %s %s: outcome %s%s%s",
                        (long long)sqlite3_column_int64(st, 0), check_text(st, 1),
                        check_text(st, 2), check_text(st, 3),
                        sqlite3_column_int(st, 4) ? ", no completion time" : "",
                        sqlite3_column_int(st, 5) ? ", completed before it was issued" : "");
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : check_fail(x, "outcomes");
}

/* ---- phantom reads -------------------------------------------------------------------- */

/* The run's writes, indexed by key: both read rules look them up per read. */
/* `ack`: a server acknowledged the write (a delete that found nothing also took effect).
 * version and value_digest are NULL in files of schema version < 3. */
static const char check_writes_sql[] =
    "CREATE TEMP TABLE check_writes AS SELECT key, op, outcome, issue_ns, complete_ns,"
    " value_bytes, version, value_digest,"
    " outcome IN ('stored', 'deleted', 'not_found') AS ack"
    " FROM requests WHERE run_id = ?1 AND key IS NOT NULL"
    " AND op NOT IN ('get', 'touch', 'stats', 'noop', 'flush')";

static int check_load_writes(check_ctx *x)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_exec(x->db, "DROP TABLE IF EXISTS temp.check_writes", NULL, NULL, NULL) !=
            SQLITE_OK ||
        check_prepare(x, check_writes_sql, &st) != 0) {
        return check_fail(x, "writes");
    }
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE ||
        sqlite3_exec(x->db, "CREATE INDEX temp.check_writes_key ON check_writes(key, issue_ns)",
                     NULL, NULL, NULL) != SQLITE_OK) {
        return check_fail(x, "index writes");
    }
    return 0;
}

/*
 * A hit is explained by a write of its key issued before the hit completed: append,
 * prepend, incr and decr (they change a value into one nobody sent), or a store of the value
 * read: the same digest and, when both are versioned, the same version. Rows without a
 * digest (schema version < 3) fall back to the same size.
 */
#define CHECK_MATCH_SQL                                                                            \
    "w.key = g.key AND w.issue_ns <= g.complete_ns AND w.op IN ('set', 'add', 'replace', 'cas')"   \
    " AND (CASE WHEN g.value_digest IS NULL THEN w.value_bytes = g.value_bytes"                    \
    "  ELSE w.value_digest = g.value_digest AND (ifnull(g.version, 0) = 0"                         \
    "   OR ifnull(w.version, 0) = 0 OR w.version = g.version) END)"
#define CHECK_TRANSFORMED_SQL                                                                      \
    "SELECT 1 FROM check_writes t WHERE t.key = g.key AND t.issue_ns <= g.complete_ns"             \
    " AND t.op IN ('append', 'prepend', 'incr', 'decr')"

static const char check_phantom_sql[] =
    "SELECT g.seq, g.key, g.complete_ns, g.value_bytes, g.value_digest IS NOT NULL,"
    " ifnull(g.version, 0) FROM requests g"
    " WHERE g.run_id = ?1 AND g.op = 'get' AND g.outcome = 'hit'"
    " AND NOT EXISTS (" CHECK_TRANSFORMED_SQL ")"
    " AND NOT EXISTS (SELECT 1 FROM check_writes w WHERE " CHECK_MATCH_SQL ")"
    " ORDER BY g.seq";

static int check_phantom_reads(check_ctx *x)
{
    sqlite3_stmt *st = NULL;
    if (check_prepare(x, check_phantom_sql, &st) != 0) {
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        check_violation(x, CB_CHECK_PHANTOM_READ,
                        "seq %lld get %s hit %llu bytes (version %llu) at %.6f s: no write of "
                        "that key and %s was issued before",
                        (long long)sqlite3_column_int64(st, 0), check_text(st, 1),
                        (unsigned long long)check_u64(st, 3), (unsigned long long)check_u64(st, 5),
                        (double)check_u64(st, 2) / 1e9,
                        sqlite3_column_int(st, 4) ? "value (digest and version)" : "size");
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : check_fail(x, "phantom reads");
}

/* ---- fault windows -------------------------------------------------------------------- */

static int check_add_window(check_ctx *x, uint64_t start_ns, uint64_t end_ns, int32_t server)
{
    if (x->window_count == x->window_cap) {
        size_t cap = x->window_cap == 0 ? 16 : 2 * x->window_cap;
        check_window *w = realloc(x->windows, cap * sizeof w[0]);
        if (w == NULL) {
            snprintf(x->err, x->err_cap, "check run %lld: out of memory", (long long)x->run_id);
            return -1;
        }
        x->windows = w;
        x->window_cap = cap;
    }
    x->windows[x->window_count++] = (check_window){start_ns, end_ns, server};
    return 0;
}

/* The state slot of an event's node: servers first, then clients, then the partition. */
static uint32_t check_slot(const cb_check_config *cfg, const char *node)
{
    unsigned long n = 0;
    char tail = 0;
    if (node != NULL && sscanf(node, "server%lu%c", &n, &tail) == 1 && n < cfg->servers) {
        return (uint32_t)n;
    }
    if (node != NULL && sscanf(node, "client%lu%c", &n, &tail) == 1 && n < cfg->clients) {
        return cfg->servers + (uint32_t)n;
    }
    return cfg->servers + cfg->clients;
}

/* Open or close a slot's window as the event says (link changes toggle: a burst and its
 * end are two changes). */
static int check_apply_event(check_ctx *x, uint64_t *open_ns, const char *kind, const char *node,
                             uint64_t t_ns)
{
    uint32_t slot = check_slot(x->cfg, node);
    int opens = strcmp(kind, "crash") == 0 || strcmp(kind, "partition") == 0 ||
                (strcmp(kind, "link_change") == 0 && open_ns[slot] == UINT64_MAX);
    if (opens) {
        open_ns[slot] = open_ns[slot] == UINT64_MAX ? t_ns : open_ns[slot];
        return 0;
    }
    if (open_ns[slot] == UINT64_MAX) {
        return 0; /* a recover or heal with nothing open: nothing to close */
    }
    int32_t server = slot < x->cfg->servers ? (int32_t)slot : -1;
    uint64_t end = t_ns > UINT64_MAX - x->cfg->margin_ns ? UINT64_MAX : t_ns + x->cfg->margin_ns;
    int rc = check_add_window(x, open_ns[slot], end, server);
    open_ns[slot] = UINT64_MAX;
    return rc;
}

static int check_load_windows(check_ctx *x)
{
    uint32_t slots = x->cfg->servers + x->cfg->clients + 1;
    uint64_t *open_ns = malloc(slots * sizeof open_ns[0]);
    sqlite3_stmt *st = NULL;
    if (open_ns == NULL) {
        snprintf(x->err, x->err_cap, "check run %lld: out of memory", (long long)x->run_id);
        return -1;
    }
    for (uint32_t i = 0; i < slots; i++) {
        open_ns[i] = UINT64_MAX;
    }
    int rc = check_prepare(x,
                           "SELECT time_ns, node, kind FROM events WHERE run_id = ?1 AND kind IN"
                           " ('crash', 'recover', 'partition', 'heal', 'link_change')"
                           " ORDER BY time_ns, id",
                           &st);
    while (rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        x->out->faults++;
        const char *node = (const char *)sqlite3_column_text(st, 1);
        rc = check_apply_event(x, open_ns, check_text(st, 2), node, check_u64(st, 0));
    }
    rc = rc == SQLITE_DONE ? 0 : rc == 0 ? 0 : rc == -1 ? -1 : check_fail(x, "events");
    for (uint32_t i = 0; rc == 0 && i < slots; i++) {
        if (open_ns[i] != UINT64_MAX) {
            rc = check_add_window(x, open_ns[i], UINT64_MAX, i < x->cfg->servers ? (int32_t)i : -1);
        }
    }
    sqlite3_finalize(st);
    free(open_ns);
    return rc;
}

/* How many servers were disturbed at some time in [a_ns, b_ns]. */
static uint32_t check_disturbed(const check_ctx *x, uint64_t a_ns, uint64_t b_ns)
{
    uint32_t count = 0;
    for (uint32_t s = 0; s < x->cfg->servers; s++) {
        for (size_t i = 0; i < x->window_count; i++) {
            const check_window *w = &x->windows[i];
            if ((w->server < 0 || (uint32_t)w->server == s) && w->start_ns <= b_ns &&
                w->end_ns >= a_ns) {
                count++;
                break;
            }
        }
    }
    return count;
}

/* ---- lost writes ---------------------------------------------------------------------- */

/* Each miss, with the issue time of the latest SET of its key acknowledged (`stored`)
 * before the miss was issued, and how many non-SET writes (delete, add, incr, ...) of the
 * key were issued before the miss completed: any of them may explain it. */
static const char check_misses_sql[] =
    "SELECT g.seq, g.key, g.issue_ns, g.complete_ns,"
    " (SELECT max(w.issue_ns) FROM check_writes w WHERE w.key = g.key AND w.op = 'set'"
    "   AND w.outcome = 'stored' AND w.complete_ns < g.issue_ns),"
    " (SELECT count(*) FROM check_writes d WHERE d.key = g.key AND d.op <> 'set'"
    "   AND d.issue_ns <= g.complete_ns)"
    " FROM requests g WHERE g.run_id = ?1 AND g.op = 'get' AND g.outcome = 'miss'"
    " ORDER BY g.seq";

static void check_one_miss(check_ctx *x, sqlite3_stmt *st, uint32_t need)
{
    if (sqlite3_column_type(st, 4) == SQLITE_NULL || sqlite3_column_int64(st, 5) != 0) {
        return; /* never acknowledged, or a delete/add/... may explain the miss */
    }
    uint64_t write_ns = check_u64(st, 4), end_ns = check_u64(st, 3);
    uint32_t disturbed = check_disturbed(x, write_ns, end_ns);
    if (need == 0 || disturbed >= need) {
        x->out->stale_allowed++;
        return;
    }
    check_violation(x, CB_CHECK_LOST_WRITE,
                    "seq %lld get %s missed at %.6f s; a set issued at %.6f s was "
                    "acknowledged before the get, and %u server(s) were disturbed in between "
                    "(W+Q-R = %u needed to lose it)",
                    (long long)sqlite3_column_int64(st, 0), check_text(st, 1), (double)end_ns / 1e9,
                    (double)write_ns / 1e9, disturbed, need);
}

/* Reads and writes must overlap in a replica unless W + Q - R replicas were disturbed;
 * W + Q <= R promises nothing (0), so every stale read is then allowed. */
static uint32_t check_need(const cb_check_config *c)
{
    return c->write_acks + c->read_answers > c->replicas
               ? c->write_acks + c->read_answers - c->replicas
               : 0;
}

static int check_lost_writes(check_ctx *x)
{
    uint32_t need = check_need(x->cfg);
    sqlite3_stmt *st = NULL;
    if (check_prepare(x, check_misses_sql, &st) != 0) {
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        check_one_miss(x, st, need);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : check_fail(x, "lost writes");
}

/* ---- stale hits --------------------------------------------------------------------- */

/*
 * Each hit with a digest whose key no append/prepend/incr/decr touched, with
 *   4: its version (0: unversioned);
 *   5: versioned hits: the latest issue time of the acknowledged writes (stores or deletes)
 *      of a newer version that completed before the hit was issued (NULL: none);
 *   6, 7: unversioned hits: how many stores could have written the value read, and how many
 *      of those were acknowledged and then overtaken by an acknowledged write issued after
 *      they completed and completed before the hit was issued (real-time order);
 *   8: the latest issue time of the acknowledged writes completed before the hit was issued.
 * The hit is stale when 5 is not NULL, or when 6 > 0 and 7 = 6 (every write it may have
 * read was overtaken).
 */
static const char check_stale_sql[] =
    "SELECT g.seq, g.key, g.issue_ns, g.complete_ns, ifnull(g.version, 0),"
    " (SELECT max(a.issue_ns) FROM check_writes a WHERE a.key = g.key AND a.ack"
    "   AND a.complete_ns < g.issue_ns AND a.version > g.version AND g.version > 0),"
    " CASE WHEN ifnull(g.version, 0) = 0 THEN"
    "  (SELECT count(*) FROM check_writes w WHERE " CHECK_MATCH_SQL ") END,"
    " CASE WHEN ifnull(g.version, 0) = 0 THEN"
    "  (SELECT count(*) FROM check_writes w WHERE " CHECK_MATCH_SQL " AND w.ack AND EXISTS ("
    "   SELECT 1 FROM check_writes a WHERE a.key = g.key AND a.ack"
    "   AND a.complete_ns < g.issue_ns AND a.issue_ns > w.complete_ns)) END,"
    " (SELECT max(a.issue_ns) FROM check_writes a WHERE a.key = g.key AND a.ack"
    "   AND a.complete_ns < g.issue_ns)"
    " FROM requests g WHERE g.run_id = ?1 AND g.op = 'get' AND g.outcome = 'hit'"
    " AND g.value_digest IS NOT NULL AND NOT EXISTS (" CHECK_TRANSFORMED_SQL ")"
    " ORDER BY g.seq";

static void check_one_hit(check_ctx *x, sqlite3_stmt *st, uint32_t need)
{
    x->out->digests++;
    int versioned = sqlite3_column_type(st, 5) != SQLITE_NULL;
    int64_t candidates = sqlite3_column_int64(st, 6);
    int overtaken = candidates > 0 && sqlite3_column_int64(st, 7) == candidates;
    if (!versioned && !overtaken) {
        return;
    }
    uint64_t write_ns = check_u64(st, versioned ? 5 : 8), end_ns = check_u64(st, 3);
    uint32_t disturbed = check_disturbed(x, write_ns, end_ns);
    if (need == 0 || disturbed >= need || !x->cfg->no_eviction) {
        x->out->stale_hits++;
        return;
    }
    check_violation(x, CB_CHECK_STALE_READ,
                    "seq %lld get %s hit version %llu at %.6f s: a %s write issued at %.6f s "
                    "was acknowledged before the get, and %u server(s) were disturbed in "
                    "between (W+Q-R = %u needed to miss it)",
                    (long long)sqlite3_column_int64(st, 0), check_text(st, 1),
                    (unsigned long long)check_u64(st, 4), (double)end_ns / 1e9,
                    versioned ? "newer-version" : "later", (double)write_ns / 1e9, disturbed, need);
}

static int check_stale_reads(check_ctx *x)
{
    sqlite3_stmt *st = NULL;
    if (check_prepare(x, check_stale_sql, &st) != 0) {
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        check_one_hit(x, st, check_need(x->cfg));
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : check_fail(x, "stale reads");
}

/* ---- stale reads counted -------------------------------------------------------------- */

static int check_stale_count(check_ctx *x)
{
    int64_t events = 0, summary = -1;
    if (check_scalar(x, "SELECT count(*) FROM events WHERE run_id = ?1 AND kind = 'stale_read'",
                     &events) != 0 ||
        check_scalar(x,
                     "SELECT ifnull((SELECT stale_reads FROM run_summary WHERE run_id = ?1),"
                     " -1)",
                     &summary) != 0) {
        return -1;
    }
    x->out->stale_events = events > 0 ? (uint64_t)events : 0;
    if (summary >= 0 && summary != events) {
        check_violation(x, CB_CHECK_STALE_COUNT,
                        "run_summary.stale_reads = %lld but the run has %lld stale_read events",
                        (long long)summary, (long long)events);
    }
    if (!x->cfg->quorum_reads && events > 0) {
        check_violation(x, CB_CHECK_STALE_COUNT,
                        "%lld stale_read events without quorum reads (only a quorum read "
                        "compares replicas)",
                        (long long)events);
    }
    return 0;
}

/* ---- the run -------------------------------------------------------------------------- */

int cb_check_run(sqlite3 *db, int64_t run_id, const cb_check_config *cfg, uint32_t report_max,
                 cb_check_report_fn report, void *user, cb_check_result *out, char *err,
                 size_t err_cap)
{
    check_ctx x = {db, run_id, cfg, report_max, report, user, out, err, err_cap, NULL, 0, 0};
    int64_t exists = 0;
    memset(out, 0, sizeof *out);
    if (check_scalar(&x, "SELECT count(*) FROM runs WHERE id = ?1", &exists) != 0) {
        return -1;
    }
    if (exists == 0) {
        snprintf(err, err_cap, "no run %lld in the database", (long long)run_id);
        return -1;
    }
    int rc = check_one_outcome(&x);
    if (rc == 0 && cfg->all_recorded) {
        rc = check_load_writes(&x);
        rc = rc == 0 ? check_phantom_reads(&x) : rc;
    } else {
        out->skipped |= 1u << CB_CHECK_PHANTOM_READ;
    }
    rc = rc == 0 ? check_load_windows(&x) : rc;
    if (rc == 0 && cfg->all_recorded && cfg->no_eviction) {
        rc = check_lost_writes(&x);
    } else {
        out->skipped |= 1u << CB_CHECK_LOST_WRITE;
    }
    if (rc == 0 && cfg->all_recorded) {
        rc = check_stale_reads(&x);
    } else {
        out->skipped |= 1u << CB_CHECK_STALE_READ;
    }
    rc = rc == 0 ? check_stale_count(&x) : rc;
    free(x.windows);
    (void)sqlite3_exec(db, "DROP TABLE IF EXISTS temp.check_writes", NULL, NULL,
                       NULL); /* a temp table dies with the connection anyway */
    return rc;
}
