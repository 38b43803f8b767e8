/*
 * test_cb_results.c: the results database writer — schema and versioning, bad files, rows,
 * status transitions, and run summaries checked against values computed here independently.
 */
#include "cb_results.h"
#include "cb_rng.h"
#include "cb_sort.h"
#include "cb_test.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <sqlite3.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------------------- */

#define TEST_PATH_MAX 512

static char test_dir[64];

/* A fresh path in this suite's temporary directory. */
static const char *test_path(const char *name)
{
    static char path[TEST_PATH_MAX];
    if (test_dir[0] == '\0') {
        snprintf(test_dir, sizeof test_dir, "/tmp/cb_results_XXXXXX");
        CU_ASSERT_FATAL(mkdtemp(test_dir) != NULL);
    }
    snprintf(path, sizeof path, "%s/%s", test_dir, name);
    return path;
}

static void test_remove_db(const char *path)
{
    char side[TEST_PATH_MAX + 8];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

static cb_results *test_open(const char *name)
{
    const char *path = test_path(name);
    test_remove_db(path);
    char err[256] = "";
    cb_results *db = NULL;
    int rc = cb_results_open(path, &db, err, sizeof err);
    if (rc != CB_RESULTS_OK) {
        printf("open %s: %s\n", path, err);
    }
    CU_ASSERT_FATAL(rc == CB_RESULTS_OK && db != NULL);
    return db;
}

/* A second, independent connection to read what the writer committed. */
static sqlite3 *test_reader(const char *name)
{
    sqlite3 *db = NULL;
    CU_ASSERT_FATAL(sqlite3_open_v2(test_path(name), &db, SQLITE_OPEN_READWRITE, NULL) ==
                    SQLITE_OK);
    return db;
}

/* The first column of the first row of `sql` as an integer (-999 when there is no row). */
static int64_t test_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -999;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        printf("%s: %s\n", sql, sqlite3_errmsg(db));
    }
    CU_ASSERT_FATAL(rc == SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

static double test_real(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    double v = NAN;
    CU_ASSERT_FATAL(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        v = sqlite3_column_double(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

/* The first column of the first row as text into out ("(null)" for NULL, "" for no row). */
static const char *test_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    CU_ASSERT_FATAL(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, cap, "%s", t != NULL ? (const char *)t : "(null)");
    }
    sqlite3_finalize(st);
    return out;
}

static const cb_run_info test_run_info = {
    .scenario_name = "unit",
    .scenario_text = "[workload]\nrequests = 10\n",
    .varied_params = "{\"transport\":\"tcp\"}",
    .mode = "memnet",
    .transport = "tcp",
    .placement = "ring",
    .seed = 42,
    .requests_planned = 1000,
};

static int64_t test_begin(cb_results *db)
{
    int64_t run_id = 0;
    int rc = cb_results_begin_run(db, &test_run_info, &run_id);
    if (rc != CB_RESULTS_OK) {
        printf("begin_run: %s\n", cb_results_errmsg(db));
    }
    CU_ASSERT_FATAL(rc == CB_RESULTS_OK && run_id > 0);
    return run_id;
}

static cb_result_request test_request(uint64_t issue_ns, uint64_t latency_ns, const char *outcome)
{
    static const uint8_t key[] = "user:42";
    cb_result_request r = {
        .client = 1,
        .server = 2,
        .op = "get",
        .key = key,
        .key_len = sizeof key - 1,
        .value_bytes = 100,
        .issue_ns = issue_ns,
        .complete_ns = issue_ns + latency_ns,
        .outcome = outcome,
        .status = 0,
        .attempts = 1,
        .bytes_sent = 40,
        .bytes_received = 140,
    };
    return r;
}

/* ---- schema and versioning ------------------------------------------------------------------ */

static int test_has_column(sqlite3 *db, const char *table, const char *column)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pragma_table_xinfo('%s') WHERE name = '%s'",
             table, column);
    return test_int(db, sql) == 1;
}

static void test_schema_created(void)
{
    static const char *const columns[][18] = {
        {"placement_runs", "id", "started_at", "keys", "seed", "maglev_table_size",
         "software_version", "notes", NULL},
        {"placement_results", "placement_run_id", "strategy", "nodes", "max_over_mean", "cv",
         "moved_add_ratio", "moved_remove_ratio", "moved_remove_last_ratio", "lookup_ns_r1",
         "lookup_ns_r3", NULL},
        {"placement_load", "placement_run_id", "strategy", "nodes", "node", "keys", NULL},
        {"runs", "id", "scenario_name", "scenario_text", "varied_params", "mode", "transport",
         "placement", "seed", "started_at", "wall_seconds", "sim_seconds", "software_version",
         "status", "requests_planned", NULL},
        {"requests", "run_id", "seq", "client", "server", "op", "key", "value_bytes", "issue_ns",
         "complete_ns", "latency_ns", "outcome", "status", "attempts", "bytes_sent",
         "bytes_received", "version", "value_digest"},
        {"events", "id", "run_id", "time_ns", "node", "kind", "detail", NULL},
        {"run_summary", "run_id", "requests", "completed", "duration_s", "throughput_rps", "p50_us",
         "p90_us", "p99_us", "p999_us", "mean_us", "hit_ratio", "error_rate", "timeout_rate",
         "bytes_per_request", "retries", "stale_reads"},
    };
    cb_results *w = test_open("schema.db");
    sqlite3 *db = test_reader("schema.db");
    char text[64];
    CU_ASSERT_EQUAL(test_int(db, "PRAGMA user_version"), CB_RESULTS_SCHEMA_VERSION);
    CU_ASSERT_EQUAL(test_int(db, "PRAGMA user_version"), 3);
    CU_ASSERT_STRING_EQUAL(test_text(db, "PRAGMA journal_mode", text, sizeof text), "wal");
    for (size_t t = 0; t < sizeof columns / sizeof columns[0]; t++) {
        for (size_t c = 1; c < 18 && columns[t][c] != NULL; c++) {
            if (!test_has_column(db, columns[t][0], columns[t][c])) {
                printf("missing column %s.%s\n", columns[t][0], columns[t][c]);
                CU_FAIL("missing column");
            }
        }
    }
    /* requests is clustered by (run_id, seq): its primary key is the per-run index. */
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM pragma_index_list('requests')"
                                 " WHERE origin = 'pk'"),
                    1);
    sqlite3_close(db);
    CU_ASSERT_EQUAL(cb_results_close(w), CB_RESULTS_OK);
}

static void test_reopen_existing(void)
{
    cb_results *w = test_open("reopen.db");
    int64_t run_id = test_begin(w);
    cb_result_request r = test_request(1000, 2000, "hit");
    CU_ASSERT_EQUAL(cb_results_add_request(w, run_id, &r), CB_RESULTS_OK);
    CU_ASSERT_EQUAL(cb_results_close(w), CB_RESULTS_OK);

    char err[256] = "";
    cb_results *again = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_results_open(test_path("reopen.db"), &again, err, sizeof err),
                          CB_RESULTS_OK);
    /* Rows continue the run's seq after a reopen. */
    CU_ASSERT_EQUAL(cb_results_add_request(again, run_id, &r), CB_RESULTS_OK);
    CU_ASSERT_EQUAL(cb_results_close(again), CB_RESULTS_OK);
    sqlite3 *db = test_reader("reopen.db");
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM runs"), 1);
    CU_ASSERT_EQUAL(test_int(db, "SELECT max(seq) FROM requests"), 2);
    CU_ASSERT_EQUAL(test_int(db, "PRAGMA user_version"), 3);
    sqlite3_close(db);
    CU_ASSERT_EQUAL(cb_results_close(NULL), CB_RESULTS_OK);
}

static void test_refuses_newer_version(void)
{
    CU_ASSERT_EQUAL(cb_results_close(test_open("newer.db")), CB_RESULTS_OK);
    sqlite3 *db = test_reader("newer.db");
    CU_ASSERT_EQUAL(sqlite3_exec(db, "PRAGMA user_version = 4", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[256] = "";
    cb_results *w = (cb_results *)&err; /* must be reset to NULL */
    CU_ASSERT_EQUAL(cb_results_open(test_path("newer.db"), &w, err, sizeof err), CB_RESULTS_ERROR);
    CU_ASSERT_PTR_NULL(w);
    printf("  newer: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "schema version 4 is newer"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "newer.db"));
}

/*
 * Schema version 1 exactly as released (cb_results.c results_schema_v1): a fixture, never
 * edited, so that the migration from a real version-1 file stays tested.
 */
static const char test_schema_v1[] =
    "CREATE TABLE runs (id INTEGER PRIMARY KEY, scenario_name TEXT NOT NULL,"
    " scenario_text TEXT, varied_params TEXT NOT NULL DEFAULT '{}'"
    "  CHECK (json_valid(varied_params) AND json_type(varied_params) = 'object'),"
    " mode TEXT NOT NULL CHECK (mode IN ('sim', 'real', 'memnet')), transport TEXT,"
    " placement TEXT, seed INTEGER, started_at TEXT NOT NULL, wall_seconds REAL,"
    " sim_seconds REAL, software_version TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'running'"
    "  CHECK (status IN ('running', 'complete', 'incomplete', 'failed')),"
    " requests_planned INTEGER);"
    "CREATE TABLE requests (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL, client INTEGER NOT NULL, server INTEGER NOT NULL,"
    " op TEXT NOT NULL, key TEXT, value_bytes INTEGER NOT NULL, issue_ns INTEGER NOT NULL,"
    " complete_ns INTEGER,"
    " latency_ns INTEGER GENERATED ALWAYS AS (complete_ns - issue_ns) VIRTUAL,"
    " outcome TEXT, status INTEGER NOT NULL, attempts INTEGER NOT NULL,"
    " bytes_sent INTEGER NOT NULL, bytes_received INTEGER NOT NULL,"
    " PRIMARY KEY (run_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE events (id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    " time_ns INTEGER NOT NULL, node TEXT, kind TEXT NOT NULL, detail TEXT);"
    "CREATE INDEX events_run_time ON events (run_id, time_ns);"
    "CREATE TABLE run_summary (run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,"
    " requests INTEGER NOT NULL, completed INTEGER NOT NULL, duration_s REAL,"
    " throughput_rps REAL, p50_us REAL, p90_us REAL, p99_us REAL, p999_us REAL, mean_us REAL,"
    " hit_ratio REAL, error_rate REAL, timeout_rate REAL, bytes_per_request REAL,"
    " retries INTEGER NOT NULL, stale_reads INTEGER NOT NULL);"
    "PRAGMA user_version = 1;";

/* A version-1 file with one ended run, built by hand from the fixture. */
static const char test_v1_rows[] =
    "INSERT INTO runs (id, scenario_name, mode, started_at, software_version, status)"
    " VALUES (7, 'old', 'sim', '2026-01-01T00:00:00.000Z', '0.0.9', 'complete');"
    "INSERT INTO requests (run_id, seq, client, server, op, key, value_bytes, issue_ns,"
    " complete_ns, outcome, status, attempts, bytes_sent, bytes_received)"
    " VALUES (7, 1, 0, 1, 'get', 'k1', 0, 100, 350, 'hit', 0, 1, 30, 40);"
    "INSERT INTO events (run_id, time_ns, node, kind) VALUES (7, 200, 'server1', 'crash');"
    "INSERT INTO run_summary (run_id, requests, completed, p50_us, retries, stale_reads)"
    " VALUES (7, 1, 1, 0.25, 0, 0);";

static void test_migrates_v1(void)
{
    const char *path = test_path("v1.db");
    test_remove_db(path);
    sqlite3 *raw = NULL;
    CU_ASSERT_FATAL(sqlite3_open(path, &raw) == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_exec(raw, test_schema_v1, NULL, NULL, NULL) == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_exec(raw, test_v1_rows, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(raw);
    char err[256] = "";
    cb_results *w = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_results_open(path, &w, err, sizeof err), CB_RESULTS_OK);
    CU_ASSERT_EQUAL(cb_results_close(w), CB_RESULTS_OK);
    sqlite3 *db = test_reader("v1.db");
    char text[64];
    CU_ASSERT_EQUAL(test_int(db, "PRAGMA user_version"), CB_RESULTS_SCHEMA_VERSION);
    CU_ASSERT_STRING_EQUAL(
        test_text(db, "SELECT scenario_name || status FROM runs WHERE id = 7", text, sizeof text),
        "oldcomplete");
    CU_ASSERT_EQUAL(test_int(db, "SELECT latency_ns FROM requests WHERE run_id = 7"), 250);
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM events WHERE kind = 'crash'"), 1);
    CU_ASSERT_DOUBLE_EQUAL(test_real(db, "SELECT p50_us FROM run_summary"), 0.25, 1e-12);
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM placement_runs"), 0);
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM placement_load"), 0);
    sqlite3_close(db);
    /* The migrated file takes new runs and placement rows. */
    CU_ASSERT_EQUAL_FATAL(cb_results_open(path, &w, err, sizeof err), CB_RESULTS_OK);
    cb_placement_run_info info = {NULL, 10, 1, 0, NULL, NULL};
    cb_placement_result r = {"jump", 2, 1, 0, 1, 1, 1, 5, 6, NULL};
    CU_ASSERT_EQUAL(cb_results_add_placement(w, &info, &r, 1, NULL), CB_RESULTS_OK);
    CU_ASSERT_EQUAL(cb_results_close(w), CB_RESULTS_OK);
}

/*
 * Schema version 2 exactly as released: version 1 plus the placement tables (cb_results.c
 * results_schema_v2), a fixture never edited.
 */
static const char test_schema_v2_step[] =
    "CREATE TABLE placement_runs (id INTEGER PRIMARY KEY, started_at TEXT NOT NULL,"
    " keys INTEGER NOT NULL, seed INTEGER NOT NULL, maglev_table_size INTEGER,"
    " software_version TEXT NOT NULL, notes TEXT);"
    "CREATE TABLE placement_results ("
    " placement_run_id INTEGER NOT NULL REFERENCES placement_runs(id) ON DELETE CASCADE,"
    " strategy TEXT NOT NULL, nodes INTEGER NOT NULL, max_over_mean REAL, cv REAL,"
    " moved_add_ratio REAL, moved_remove_ratio REAL, moved_remove_last_ratio REAL,"
    " lookup_ns_r1 REAL, lookup_ns_r3 REAL, PRIMARY KEY (placement_run_id, nodes, strategy));"
    "CREATE TABLE placement_load ("
    " placement_run_id INTEGER NOT NULL REFERENCES placement_runs(id) ON DELETE CASCADE,"
    " strategy TEXT NOT NULL, nodes INTEGER NOT NULL, node INTEGER NOT NULL,"
    " keys INTEGER NOT NULL, PRIMARY KEY (placement_run_id, nodes, strategy, node))"
    " WITHOUT ROWID;"
    "PRAGMA user_version = 2;";

/* A version-2 file: its request rows get NULL versions and digests, and new rows get both. */
static void test_migrates_v2(void)
{
    const char *path = test_path("v2.db");
    test_remove_db(path);
    sqlite3 *raw = NULL;
    CU_ASSERT_FATAL(sqlite3_open(path, &raw) == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_exec(raw, test_schema_v1, NULL, NULL, NULL) == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_exec(raw, test_schema_v2_step, NULL, NULL, NULL) == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_exec(raw, test_v1_rows, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(raw);
    char err[256] = "";
    cb_results *w = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_results_open(path, &w, err, sizeof err), CB_RESULTS_OK);
    int64_t run_id = test_begin(w);
    cb_result_request r = test_request(1000, 2000, "hit");
    r.has_version = 1;
    r.version = 42;
    r.has_value_digest = 1;
    r.value_digest = cb_results_value_digest((const uint8_t *)"abc", 3);
    CU_ASSERT_EQUAL(cb_results_add_request(w, run_id, &r), CB_RESULTS_OK);
    CU_ASSERT_EQUAL(cb_results_close(w), CB_RESULTS_OK);
    sqlite3 *db = test_reader("v2.db");
    CU_ASSERT_EQUAL(test_int(db, "PRAGMA user_version"), 3);
    CU_ASSERT_EQUAL(test_int(db, "SELECT latency_ns FROM requests WHERE run_id = 7"), 250);
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM requests WHERE run_id = 7"
                                 " AND version IS NULL AND value_digest IS NULL"),
                    1);
    CU_ASSERT_EQUAL(test_int(db, "SELECT version FROM requests WHERE run_id <> 7"), 42);
    /* FNV-1a 64 of "abc" is 0xe71fa2190541574b, stored as the signed integer of its bits. */
    CU_ASSERT_EQUAL(test_int(db, "SELECT value_digest = (0xe71fa2190541574b)"
                                 " FROM requests WHERE run_id <> 7"),
                    1);
    sqlite3_close(db);
}

static void test_placement_rows(void)
{
    cb_results *w = test_open("placement.db");
    static const uint64_t load[3] = {30, 40, 30};
    cb_placement_run_info info = {"2026-02-03T04:05:06.000Z", 100, 42, 65537, "9.9", "n"};
    cb_placement_result rows[] = {
        {"uniform", 3, 1.2, 0.1, NAN, NAN, NAN, NAN, NAN, load},
        {"jump", 3, 1.1, 0.05, 1.0, 1.01, 0.99, 20.5, 40.25, load},
        {"jump", 50, 1.3, 0.2, 1.0, 1.0, 1.0, 21, 41, NULL},
    };
    int64_t id = 0;
    CU_ASSERT_EQUAL_FATAL(cb_results_add_placement(w, &info, rows, 3, &id), CB_RESULTS_OK);
    CU_ASSERT_EQUAL(id, 1);
    /* A repeated (strategy, N) fails and writes nothing: one transaction. */
    rows[2].nodes = 3;
    CU_ASSERT_EQUAL(cb_results_add_placement(w, &info, rows, 3, &id), CB_RESULTS_ERROR);
    printf("  repeated: %s\n", cb_results_errmsg(w));
    rows[0].strategy = NULL;
    CU_ASSERT_EQUAL(cb_results_add_placement(w, &info, rows, 1, &id), CB_RESULTS_ERROR);
    CU_ASSERT_EQUAL(cb_results_close(w), CB_RESULTS_OK);
    sqlite3 *db = test_reader("placement.db");
    char text[64];
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM placement_runs"), 1);
    CU_ASSERT_STRING_EQUAL(
        test_text(db,
                  "SELECT started_at || keys || seed || maglev_table_size || software_version"
                  " || notes FROM placement_runs",
                  text, sizeof text),
        "2026-02-03T04:05:06.000Z10042655379.9n");
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM placement_results"), 3);
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM placement_results WHERE strategy ="
                                 " 'uniform' AND moved_add_ratio IS NULL AND lookup_ns_r1 IS NULL"),
                    1);
    CU_ASSERT_DOUBLE_EQUAL(test_real(db, "SELECT lookup_ns_r3 FROM placement_results"
                                         " WHERE strategy = 'jump' AND nodes = 3"),
                           40.25, 1e-12);
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM placement_load"), 6);
    CU_ASSERT_EQUAL(test_int(db, "SELECT keys FROM placement_load WHERE strategy = 'jump'"
                                 " AND node = 2"),
                    40);
    sqlite3_close(db);
}

/* Files that are not results databases are refused with a message, never a crash. */
static void test_refuses_bad_files(void)
{
    const char *path = test_path("foreign.db");
    sqlite3 *db = NULL;
    test_remove_db(path);
    CU_ASSERT_FATAL(sqlite3_open(path, &db) == SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "CREATE TABLE mine (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    FILE *f = fopen(test_path("text.db"), "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("this is not an SQLite database, but it is long enough to have a header ...\n", f);
    fclose(f);

    char foreign[TEST_PATH_MAX];
    char text[TEST_PATH_MAX];
    snprintf(foreign, sizeof foreign, "%s", test_path("foreign.db"));
    snprintf(text, sizeof text, "%s", test_path("text.db"));
    struct {
        const char *path;
        const char *expect;
    } cases[] = {
        {foreign, "not a cachebed results database"},      {text, "not a database"},
        {"/nonexistent-dir/results.db", "unable to open"}, {test_dir, "unable to open"},
        {"/proc/cachebed-results.db", "unable to open"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path_copy[TEST_PATH_MAX];
        snprintf(path_copy, sizeof path_copy, "%s", cases[i].path);
        char err[256] = "";
        cb_results *w = NULL;
        CU_ASSERT_EQUAL(cb_results_open(path_copy, &w, err, sizeof err), CB_RESULTS_ERROR);
        CU_ASSERT_PTR_NULL(w);
        printf("  %s: %s\n", path_copy, err);
        if (strstr(err, cases[i].expect) == NULL || strstr(err, path_copy) == NULL) {
            CU_FAIL("error message does not name the path and the problem");
        }
    }
}

/* ---- runs, rows, status ---------------------------------------------------------------------- */

static void test_begin_run_validates(void)
{
    cb_results *w = test_open("validate.db");
    int64_t run_id = 0;
    cb_run_info info = test_run_info;
    info.mode = "cloud";
    CU_ASSERT_EQUAL(cb_results_begin_run(w, &info, &run_id), CB_RESULTS_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(cb_results_errmsg(w), "cloud"));
    info = test_run_info;
    info.varied_params = "[1, 2]";
    CU_ASSERT_EQUAL(cb_results_begin_run(w, &info, &run_id), CB_RESULTS_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(cb_results_errmsg(w), "JSON object"));
    info = test_run_info;
    info.seed = UINT64_MAX;
    CU_ASSERT_EQUAL(cb_results_begin_run(w, &info, &run_id), CB_RESULTS_ERROR);
    info = test_run_info;
    info.scenario_name = NULL;
    CU_ASSERT_EQUAL(cb_results_begin_run(w, &info, &run_id), CB_RESULTS_ERROR);

    info = test_run_info;
    info.varied_params = NULL;
    info.started_at = "2026-01-31T12:00:00Z";
    CU_ASSERT_EQUAL_FATAL(cb_results_begin_run(w, &info, &run_id), CB_RESULTS_OK);
    sqlite3 *db = test_reader("validate.db");
    char text[128];
    CU_ASSERT_STRING_EQUAL(test_text(db, "SELECT varied_params FROM runs", text, sizeof text),
                           "{}");
    CU_ASSERT_STRING_EQUAL(test_text(db, "SELECT started_at FROM runs", text, sizeof text),
                           "2026-01-31T12:00:00Z");
    CU_ASSERT_STRING_EQUAL(test_text(db, "SELECT software_version FROM runs", text, sizeof text),
                           CB_VERSION);
    CU_ASSERT_EQUAL(test_int(db, "SELECT seed FROM runs"), 42);
    sqlite3_close(db);
    cb_results_close(w);
}

/* The default started_at is now, in ISO-8601 UTC with milliseconds. */
static void test_started_at_default(void)
{
    cb_results *w = test_open("started.db");
    test_begin(w);
    sqlite3 *db = test_reader("started.db");
    char text[64];
    test_text(db, "SELECT started_at FROM runs", text, sizeof text);
    CU_ASSERT_EQUAL(strlen(text), strlen("2026-01-31T12:00:00.000Z"));
    CU_ASSERT_EQUAL(text[10], 'T');
    CU_ASSERT_EQUAL(text[23], 'Z');
    CU_ASSERT_EQUAL(
        test_int(db, "SELECT julianday(started_at) > julianday('2024-01-01') FROM runs"), 1);
    sqlite3_close(db);
    cb_results_close(w);
}

static void test_keys_and_request_checks(void)
{
    cb_results *w = test_open("keys.db");
    int64_t run_id = test_begin(w);
    static const uint8_t binary[] = {0x00, 0xff, 'a', ' '};
    static const uint8_t marker[] = "hex:41";
    struct {
        const uint8_t *key;
        size_t len;
        const char *stored;
    } cases[] = {
        {(const uint8_t *)"user:1", 6, "user:1"},
        {binary, sizeof binary, "hex:00ff6120"},
        {marker, sizeof marker - 1, "hex:6865783a3431"},
        {(const uint8_t *)"", 0, ""},
        {NULL, 0, "(null)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cb_result_request r = test_request(i, 10, "hit");
        r.key = cases[i].key;
        r.key_len = cases[i].len;
        CU_ASSERT_EQUAL(cb_results_add_request(w, run_id, &r), CB_RESULTS_OK);
    }
    uint8_t long_key[CB_RESULTS_KEY_BYTES_MAX + 1];
    memset(long_key, 0x01, sizeof long_key);
    cb_result_request r = test_request(0, 10, "hit");
    r.key = long_key;
    r.key_len = CB_RESULTS_KEY_BYTES_MAX; /* the longest, all hex */
    CU_ASSERT_EQUAL(cb_results_add_request(w, run_id, &r), CB_RESULTS_OK);
    r.key_len = sizeof long_key;
    CU_ASSERT_EQUAL(cb_results_add_request(w, run_id, &r), CB_RESULTS_ERROR);
    r = test_request(100, 0, "hit");
    r.complete_ns = 99;
    CU_ASSERT_EQUAL(cb_results_add_request(w, run_id, &r), CB_RESULTS_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(cb_results_errmsg(w), "before issue"));
    r = test_request(0, 1, "hit");
    r.op = NULL;
    CU_ASSERT_EQUAL(cb_results_add_request(w, run_id, &r), CB_RESULTS_ERROR);
    r = test_request(0, 1, "hit");
    CU_ASSERT_EQUAL(cb_results_add_request(w, run_id + 100, &r), CB_RESULTS_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(cb_results_errmsg(w), "no run with id"));
    CU_ASSERT_EQUAL(cb_results_flush(w), CB_RESULTS_OK);

    sqlite3 *db = test_reader("keys.db");
    char sql[96];
    char text[600];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(sql, sizeof sql, "SELECT key FROM requests WHERE seq = %zu", i + 1);
        CU_ASSERT_STRING_EQUAL(test_text(db, sql, text, sizeof text), cases[i].stored);
    }
    CU_ASSERT_EQUAL(test_int(db, "SELECT length(key) FROM requests WHERE seq = 6"),
                    4 + 2 * CB_RESULTS_KEY_BYTES_MAX);
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM requests"), 6);
    CU_ASSERT_EQUAL(test_int(db, "SELECT latency_ns FROM requests WHERE seq = 1"), 10);
    sqlite3_close(db);
    cb_results_close(w);
}

static void test_events_stored(void)
{
    cb_results *w = test_open("events.db");
    int64_t run_id = test_begin(w);
    CU_ASSERT_EQUAL(cb_results_add_event(w, run_id, 5000000000ull, "server2", "crash", NULL),
                    CB_RESULTS_OK);
    CU_ASSERT_EQUAL(
        cb_results_add_event(w, run_id, 7000000000ull, "server2", "recover", "comes back empty"),
        CB_RESULTS_OK);
    CU_ASSERT_EQUAL(cb_results_add_event(w, run_id, 1, NULL, NULL, NULL), CB_RESULTS_ERROR);
    CU_ASSERT_EQUAL(cb_results_add_event(w, run_id, UINT64_MAX, "x", "y", NULL), CB_RESULTS_ERROR);
    CU_ASSERT_EQUAL(cb_results_end_run(w, run_id, CB_RUN_COMPLETE, 1.0, 10.0), CB_RESULTS_OK);
    sqlite3 *db = test_reader("events.db");
    char text[64];
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM events"), 2);
    CU_ASSERT_STRING_EQUAL(test_text(db,
                                     "SELECT group_concat(kind, ',') FROM events ORDER BY time_ns",
                                     text, sizeof text),
                           "crash,recover");
    CU_ASSERT_STRING_EQUAL(
        test_text(db, "SELECT detail FROM events WHERE kind = 'crash'", text, sizeof text),
        "(null)");
    CU_ASSERT_STRING_EQUAL(
        test_text(db, "SELECT node || '@' || time_ns FROM events WHERE kind = 'recover'", text,
                  sizeof text),
        "server2@7000000000");
    sqlite3_close(db);
    cb_results_close(w);
}

static void test_status_transitions(void)
{
    cb_results *w = test_open("status.db");
    sqlite3 *db = test_reader("status.db");
    char text[64];
    int64_t a = test_begin(w);
    CU_ASSERT_STRING_EQUAL(test_text(db, "SELECT status FROM runs", text, sizeof text), "running");
    CU_ASSERT_EQUAL(cb_results_end_run(w, a, CB_RUN_RUNNING, 1, 1), CB_RESULTS_ERROR);
    CU_ASSERT_EQUAL(cb_results_end_run(w, a, (cb_run_status)99, 1, 1), CB_RESULTS_ERROR);
    CU_ASSERT_EQUAL(cb_results_end_run(w, a, CB_RUN_COMPLETE, 2.5, -1.0), CB_RESULTS_OK);
    CU_ASSERT_STRING_EQUAL(test_text(db, "SELECT status FROM runs", text, sizeof text), "complete");
    CU_ASSERT_DOUBLE_EQUAL(test_real(db, "SELECT wall_seconds FROM runs"), 2.5, 1e-12);
    CU_ASSERT_EQUAL(test_int(db, "SELECT sim_seconds FROM runs"), -1); /* NULL */
    /* An ended run cannot be ended again, nor marked incomplete. */
    CU_ASSERT_EQUAL(cb_results_end_run(w, a, CB_RUN_FAILED, 1, 1), CB_RESULTS_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(cb_results_errmsg(w), "not running"));
    CU_ASSERT_EQUAL(cb_results_mark_incomplete(w, a), CB_RESULTS_ERROR);
    CU_ASSERT_EQUAL(cb_results_end_run(w, 12345, CB_RUN_COMPLETE, 1, 1), CB_RESULTS_ERROR);
    /* An ended run takes no more rows. */
    cb_result_request late = test_request(0, 1, "hit");
    CU_ASSERT_EQUAL(cb_results_add_request(w, a, &late), CB_RESULTS_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(cb_results_errmsg(w), "is complete, not running"));
    CU_ASSERT_EQUAL(cb_results_add_event(w, a, 1, "server0", "crash", NULL), CB_RESULTS_ERROR);

    /* Interrupted: rows committed, summary written, status 'incomplete'. */
    int64_t b = test_begin(w);
    cb_result_request r = test_request(0, 3000, "miss");
    CU_ASSERT_EQUAL(cb_results_add_request(w, b, &r), CB_RESULTS_OK);
    CU_ASSERT_EQUAL(cb_results_mark_incomplete(w, b), CB_RESULTS_OK);
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM runs WHERE status = 'incomplete'"), 1);
    CU_ASSERT_EQUAL(test_int(db, "SELECT requests FROM run_summary WHERE run_id = 2"), 1);
    CU_ASSERT_DOUBLE_EQUAL(test_real(db, "SELECT p50_us FROM run_summary WHERE run_id = 2"), 3.0,
                           1e-12);

    /* Failed keeps its times. */
    int64_t c = test_begin(w);
    CU_ASSERT_EQUAL(cb_results_end_run(w, c, CB_RUN_FAILED, 0.5, 3.0), CB_RESULTS_OK);
    CU_ASSERT_STRING_EQUAL(test_text(db,
                                     "SELECT status || ' ' || sim_seconds FROM runs WHERE id = 3",
                                     text, sizeof text),
                           "failed 3.0");
    CU_ASSERT_STRING_EQUAL(cb_run_status_name(42), "unknown");
    sqlite3_close(db);
    cb_results_close(w);
}

/* A process that dies without ending its run: committed rows stay, the run stays 'running'. */
static void test_interrupted_run(void)
{
    cb_results *w = test_open("interrupted.db");
    sqlite3 *db = test_reader("interrupted.db");
    int64_t run_id = test_begin(w);
    for (uint64_t i = 0; i < 10; i++) {
        cb_result_request r = test_request(i, 10, "hit");
        CU_ASSERT_EQUAL(cb_results_add_request(w, run_id, &r), CB_RESULTS_OK);
    }
    /* Still in the open transaction: not visible to other connections. */
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM requests"), 0);
    CU_ASSERT_EQUAL(cb_results_flush(w), CB_RESULTS_OK);
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM requests"), 10);
    CU_ASSERT_EQUAL(cb_results_close(w), CB_RESULTS_OK);
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM runs WHERE status = 'running'"), 1);
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM run_summary"), 0);
    char text[16];
    CU_ASSERT_STRING_EQUAL(test_text(db, "PRAGMA integrity_check", text, sizeof text), "ok");
    sqlite3_close(db);
}

/* ---- summaries --------------------------------------------------------------------------- */

/*
 * Reference quantile, written independently of GSL: linear interpolation between the order
 * statistics x[floor(h)] and x[floor(h) + 1] at h = (n - 1) * f (Hyndman and Fan's type 7, the
 * default of R and NumPy), on ascending x.
 */
static double ref_quantile(const double *x, size_t n, double f)
{
    double h = (double)(n - 1) * f;
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n) {
        return x[n - 1];
    }
    return x[lo] + (h - (double)lo) * (x[lo + 1] - x[lo]);
}

enum { SUMMARY_N = 1000, SUMMARY_TIMEOUTS = 20, SUMMARY_UNFINISHED = 5 };

typedef struct summary_expect {
    int64_t requests, completed, hits, misses, errors, timeouts, bytes, retries;
    uint64_t first_issue_ns, last_complete_ns;
} summary_expect;

/* Request i of the known-latency run: latency i µs; a mix of ops and outcomes. */
static cb_result_request summary_request(uint64_t i, summary_expect *e)
{
    cb_result_request r = test_request(i * 1000000ull, i * 1000ull, "hit");
    r.attempts = (uint32_t)(1 + i % 3);
    r.bytes_received = 50 + i % 7;
    if (i % 4 == 0) {
        r.op = "set";
        r.outcome = i % 40 == 0 ? "error" : "stored";
        e->errors += i % 40 == 0;
    } else if (i % 3 == 0) {
        r.outcome = "miss";
        e->misses++;
    } else {
        e->hits++;
    }
    return r;
}

static void summary_count(const cb_result_request *r, summary_expect *e)
{
    e->requests++;
    e->bytes += (int64_t)(r->bytes_sent + r->bytes_received);
    e->retries += r->attempts - 1;
    if (r->complete_ns != UINT64_MAX) {
        e->first_issue_ns = r->issue_ns < e->first_issue_ns ? r->issue_ns : e->first_issue_ns;
        e->last_complete_ns =
            r->complete_ns > e->last_complete_ns ? r->complete_ns : e->last_complete_ns;
    }
}

/* Insert the run in a seeded random order; returns what the summary must say. */
static summary_expect summary_fill(cb_results *w, int64_t run_id)
{
    summary_expect e = {.first_issue_ns = UINT64_MAX};
    cb_result_request rows[SUMMARY_N + SUMMARY_TIMEOUTS + SUMMARY_UNFINISHED];
    size_t n = 0;
    for (uint64_t i = 1; i <= SUMMARY_N; i++) {
        rows[n++] = summary_request(i, &e);
    }
    for (uint64_t i = 0; i < SUMMARY_TIMEOUTS; i++) {
        rows[n] = test_request(500000000ull + i, 2000000000ull, "timeout");
        rows[n++].attempts = 3;
        e.timeouts++;
    }
    for (uint64_t i = 0; i < SUMMARY_UNFINISHED; i++) {
        rows[n] = test_request(600000000ull + i, 0, NULL);
        rows[n++].complete_ns = UINT64_MAX;
    }
    cb_rng rng;
    cb_rng_init(&rng, cb_test_seed());
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)cb_rng_below(&rng, i + 1);
        cb_result_request tmp = rows[i];
        rows[i] = rows[j];
        rows[j] = tmp;
    }
    for (size_t i = 0; i < n; i++) {
        summary_count(&rows[i], &e);
        CU_ASSERT_EQUAL_FATAL(cb_results_add_request(w, run_id, &rows[i]), CB_RESULTS_OK);
    }
    e.completed = SUMMARY_N;
    return e;
}

static void summary_check_latency(sqlite3 *db)
{
    static const struct {
        const char *column;
        double f;
        double known; /* type 7 on 1..1000: 1 + 999 f */
    } q[] = {
        {"p50_us", 0.5, 500.5},
        {"p90_us", 0.9, 900.1},
        {"p99_us", 0.99, 990.01},
        {"p999_us", 0.999, 999.001},
    };
    double sorted[SUMMARY_N];
    for (int i = 0; i < SUMMARY_N; i++) {
        sorted[i] = (double)(i + 1); /* completed non-timeout latencies, µs */
    }
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT %s FROM run_summary", q[i].column);
        double got = test_real(db, sql);
        double ref = ref_quantile(sorted, SUMMARY_N, q[i].f);
        printf("  %s = %.6f (reference %.6f, known %.6f)\n", q[i].column, got, ref, q[i].known);
        CU_ASSERT_DOUBLE_EQUAL(got, ref, 1e-9);
        CU_ASSERT_DOUBLE_EQUAL(got, q[i].known, 1e-9);
    }
    CU_ASSERT_DOUBLE_EQUAL(test_real(db, "SELECT mean_us FROM run_summary"), 500.5, 1e-9);
}

static void test_summary_known_latencies(void)
{
    cb_results *w = test_open("summary.db");
    int64_t run_id = test_begin(w);
    summary_expect e = summary_fill(w, run_id);
    CU_ASSERT_EQUAL_FATAL(cb_results_end_run(w, run_id, CB_RUN_COMPLETE, 1.0, 2.0), CB_RESULTS_OK);
    sqlite3 *db = test_reader("summary.db");
    summary_check_latency(db);
    double duration_s = (double)(e.last_complete_ns - e.first_issue_ns) / 1e9;
    CU_ASSERT_EQUAL(test_int(db, "SELECT requests FROM run_summary"), e.requests);
    CU_ASSERT_EQUAL(e.requests, SUMMARY_N + SUMMARY_TIMEOUTS + SUMMARY_UNFINISHED);
    CU_ASSERT_EQUAL(test_int(db, "SELECT completed FROM run_summary"), e.completed);
    CU_ASSERT_DOUBLE_EQUAL(test_real(db, "SELECT duration_s FROM run_summary"), duration_s, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(test_real(db, "SELECT throughput_rps FROM run_summary"),
                           (double)e.completed / duration_s, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(test_real(db, "SELECT hit_ratio FROM run_summary"),
                           (double)e.hits / (double)(e.hits + e.misses), 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(test_real(db, "SELECT error_rate FROM run_summary"),
                           (double)e.errors / (double)e.requests, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(test_real(db, "SELECT timeout_rate FROM run_summary"),
                           (double)e.timeouts / (double)e.requests, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(test_real(db, "SELECT bytes_per_request FROM run_summary"),
                           (double)e.bytes / (double)e.requests, 1e-9);
    CU_ASSERT_EQUAL(test_int(db, "SELECT retries FROM run_summary"), e.retries);
    CU_ASSERT_EQUAL(test_int(db, "SELECT stale_reads FROM run_summary"), 0);
    /* Hand-made counts, to catch a mistake shared by the test and the code: 25 errors
     * (i % 40 == 0), GETs are the 750 i % 4 != 0, of which 250 are i % 3 == 0 misses. */
    CU_ASSERT_EQUAL(e.errors, 25);
    CU_ASSERT_EQUAL(e.hits + e.misses, 750);
    CU_ASSERT_EQUAL(e.misses, 250);
    CU_ASSERT_EQUAL(e.timeouts, 20);
    sqlite3_close(db);
    cb_results_close(w);
}

/* The summary is a table: recomputing it after editing requests keeps it consistent. */
static void test_summary_recompute_and_empty(void)
{
    cb_results *w = test_open("recompute.db");
    int64_t run_id = test_begin(w);
    CU_ASSERT_EQUAL(cb_results_end_run(w, run_id, CB_RUN_COMPLETE, 1.0, 1.0), CB_RESULTS_OK);
    sqlite3 *db = test_reader("recompute.db");
    CU_ASSERT_EQUAL(test_int(db, "SELECT requests FROM run_summary"), 0);
    CU_ASSERT_EQUAL(test_int(db, "SELECT p50_us IS NULL AND hit_ratio IS NULL AND duration_s"
                                 " IS NULL AND error_rate IS NULL FROM run_summary"),
                    1);
    int64_t second = test_begin(w);
    for (uint64_t i = 1; i <= 3; i++) {
        cb_result_request r = test_request(0, i * 1000, "hit");
        CU_ASSERT_EQUAL(cb_results_add_request(w, second, &r), CB_RESULTS_OK);
    }
    CU_ASSERT_EQUAL(cb_results_end_run(w, second, CB_RUN_COMPLETE, 1.0, 1.0), CB_RESULTS_OK);
    CU_ASSERT_DOUBLE_EQUAL(test_real(db, "SELECT p50_us FROM run_summary WHERE run_id = 2"), 2.0,
                           1e-12);
    CU_ASSERT_DOUBLE_EQUAL(test_real(db, "SELECT throughput_rps FROM run_summary WHERE run_id = 2"),
                           1e6, 1e-6);
    /* A user drops a request by hand, then recomputes. */
    CU_ASSERT_EQUAL(
        sqlite3_exec(db, "DELETE FROM requests WHERE latency_ns = 3000", NULL, NULL, NULL),
        SQLITE_OK);
    CU_ASSERT_EQUAL(cb_results_summarize(w, second), CB_RESULTS_OK);
    CU_ASSERT_DOUBLE_EQUAL(test_real(db, "SELECT p50_us FROM run_summary WHERE run_id = 2"), 1.5,
                           1e-12);
    CU_ASSERT_EQUAL(test_int(db, "SELECT requests FROM run_summary WHERE run_id = 2"), 2);
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM run_summary"), 2);
    CU_ASSERT_EQUAL(cb_results_summarize(w, 999), CB_RESULTS_ERROR);
    sqlite3_close(db);
    cb_results_close(w);
}

/* Rows go 16 per statement: a partial last group, and two runs written in turns, keep every
 * row and number each run's rows 1, 2, ... without gaps. */
static void test_rows_in_groups(void)
{
    cb_results *w = test_open("groups.db");
    int64_t a = test_begin(w);
    int64_t b = test_begin(w);
    static const struct {
        int run; /* 0: a, 1: b */
        int rows;
    } turns[] = {{0, 5}, {1, 3}, {0, 40}, {1, 17}, {0, 2}};
    for (size_t t = 0; t < sizeof turns / sizeof turns[0]; t++) {
        for (int i = 0; i < turns[t].rows; i++) {
            cb_result_request r = test_request(0, 1000, "hit");
            CU_ASSERT_EQUAL(cb_results_add_request(w, turns[t].run ? b : a, &r), CB_RESULTS_OK);
        }
    }
    CU_ASSERT_EQUAL(cb_results_end_run(w, a, CB_RUN_COMPLETE, 1, 1), CB_RESULTS_OK);
    CU_ASSERT_EQUAL(cb_results_end_run(w, b, CB_RUN_COMPLETE, 1, 1), CB_RESULTS_OK);
    sqlite3 *db = test_reader("groups.db");
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) || max(seq) FROM requests WHERE run_id = 1"),
                    4747);
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) || max(seq) FROM requests WHERE run_id = 2"),
                    2020);
    CU_ASSERT_EQUAL(test_int(db, "SELECT requests * 100 + completed FROM run_summary"
                                 " WHERE run_id = 1"),
                    4747);
    CU_ASSERT_EQUAL(test_int(db, "SELECT requests FROM run_summary WHERE run_id = 2"), 20);
    sqlite3_close(db);
    cb_results_close(w);
}

/* ---- the two summary paths -------------------------------------------------------------- */

static int test_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The radix sort agrees with qsort on sizes 0..3 and random data of narrow and wide range. */
static void test_sort_u64(void)
{
    enum { MAX_N = 5000 };
    static uint64_t v[MAX_N], ref[MAX_N], tmp[MAX_N];
    static const unsigned bits[] = {1, 8, 20, 41, 64};
    cb_rng rng;
    cb_rng_init(&rng, cb_test_seed());
    for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++) {
        for (size_t n = 0; n <= MAX_N; n = n < 3 ? n + 1 : n * 7 + 11) {
            for (size_t i = 0; i < n; i++) {
                uint64_t x = cb_rng_next(&rng);
                v[i] = ref[i] = bits[b] == 64 ? x : x & ((1ull << bits[b]) - 1);
            }
            cb_sort_u64(v, tmp, n);
            qsort(ref, n, sizeof *ref, test_cmp_u64);
            CU_ASSERT_EQUAL(n > 0 ? memcmp(v, ref, n * sizeof *v) : 0, 0);
        }
    }
}

/* A random row: any op and outcome, timeouts, unfinished requests, retries. */
static cb_result_request test_random_request(cb_rng *rng, uint64_t i)
{
    static const char *const ops[] = {"get", "set", "delete", "get", "get"};
    static const char *const outcomes[] = {"hit", "miss", "stored", "error", "timeout", NULL};
    uint64_t latency =
        cb_rng_below(rng, 4) == 0 ? cb_rng_below(rng, 1ull << 42) : cb_rng_below(rng, 5000000);
    cb_result_request r = test_request(1000 * i + cb_rng_below(rng, 1000000), latency,
                                       outcomes[cb_rng_below(rng, 6)]);
    r.op = ops[cb_rng_below(rng, 5)];
    r.attempts = (uint32_t)cb_rng_below(rng, 4);
    r.bytes_sent = cb_rng_below(rng, 2000);
    if (cb_rng_below(rng, 50) == 0) {
        r.complete_ns = UINT64_MAX;
    }
    return r;
}

/* end_run (summary counted as rows are added) and cb_results_summarize (from the table) agree
 * to the last bit on random runs, empty and single-row runs included. */
static void test_summary_paths_equal(void)
{
    static const size_t sizes[] = {0, 1, 2, 17, 1000, 20000};
    cb_results *w = test_open("paths.db");
    sqlite3 *db = test_reader("paths.db");
    cb_rng rng;
    cb_rng_init(&rng, cb_test_seed());
    CU_ASSERT_EQUAL_FATAL(
        sqlite3_exec(db, "CREATE TABLE saved AS SELECT * FROM run_summary", NULL, NULL, NULL),
        SQLITE_OK);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int64_t run_id = test_begin(w);
        for (uint64_t i = 0; i < sizes[k]; i++) {
            cb_result_request r = test_random_request(&rng, i);
            CU_ASSERT_EQUAL_FATAL(cb_results_add_request(w, run_id, &r), CB_RESULTS_OK);
        }
        CU_ASSERT_EQUAL_FATAL(cb_results_end_run(w, run_id, CB_RUN_COMPLETE, 1, 1), CB_RESULTS_OK);
    }
    CU_ASSERT_EQUAL(
        sqlite3_exec(db, "INSERT INTO saved SELECT * FROM run_summary", NULL, NULL, NULL),
        SQLITE_OK);
    for (int64_t run_id = 1; run_id <= (int64_t)(sizeof sizes / sizeof sizes[0]); run_id++) {
        CU_ASSERT_EQUAL(cb_results_summarize(w, run_id), CB_RESULTS_OK);
    }
    static const char same[] =
        "SELECT count(*) FROM run_summary s JOIN saved v USING (run_id) WHERE"
        " s.requests IS v.requests AND s.completed IS v.completed"
        " AND s.duration_s IS v.duration_s AND s.throughput_rps IS v.throughput_rps"
        " AND s.p50_us IS v.p50_us AND s.p90_us IS v.p90_us AND s.p99_us IS v.p99_us"
        " AND s.p999_us IS v.p999_us AND s.mean_us IS v.mean_us AND s.hit_ratio IS v.hit_ratio"
        " AND s.error_rate IS v.error_rate AND s.timeout_rate IS v.timeout_rate"
        " AND s.bytes_per_request IS v.bytes_per_request AND s.retries IS v.retries"
        " AND s.stale_reads IS v.stale_reads";
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM saved"), 6);
    CU_ASSERT_EQUAL(test_int(db, same), 6);
    CU_ASSERT(test_int(db, "SELECT count(*) FROM run_summary WHERE p999_us > 1e6") >= 2);
    /* end_run does use the rows as added: a row deleted behind its back still counts. */
    int64_t run_id = test_begin(w);
    for (uint64_t i = 1; i <= 3; i++) {
        cb_result_request r = test_request(0, i * 1000, "hit");
        CU_ASSERT_EQUAL(cb_results_add_request(w, run_id, &r), CB_RESULTS_OK);
    }
    CU_ASSERT_EQUAL(cb_results_flush(w), CB_RESULTS_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "DELETE FROM requests WHERE seq = 3", NULL, NULL, NULL),
                    SQLITE_OK);
    CU_ASSERT_EQUAL(cb_results_end_run(w, run_id, CB_RUN_COMPLETE, 1, 1), CB_RESULTS_OK);
    CU_ASSERT_EQUAL(test_int(db, "SELECT requests FROM run_summary WHERE run_id = 7"), 3);
    CU_ASSERT_EQUAL(cb_results_summarize(w, run_id), CB_RESULTS_OK);
    CU_ASSERT_EQUAL(test_int(db, "SELECT requests FROM run_summary WHERE run_id = 7"), 2);
    sqlite3_close(db);
    cb_results_close(w);
}

/* ---- volume ---------------------------------------------------------------------------- */

static double test_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 10^5 rows: checks the batching path; prints the rate (timing is never asserted). */
static void test_bulk_insert(void)
{
    enum { ROWS = 100000 };
    cb_results *w = test_open("bulk.db");
    int64_t run_id = test_begin(w);
    char key[32];
    double t0 = test_now_s();
    for (uint64_t i = 0; i < ROWS; i++) {
        cb_result_request r = test_request(i * 1000, 50000 + i % 1000, i % 5 ? "hit" : "miss");
        int n = snprintf(key, sizeof key, "key:%llu", (unsigned long long)(i % 10000));
        r.key = (const uint8_t *)key;
        r.key_len = (size_t)n;
        if (cb_results_add_request(w, run_id, &r) != CB_RESULTS_OK) {
            CU_FAIL_FATAL("add_request");
        }
    }
    double t1 = test_now_s();
    CU_ASSERT_EQUAL(cb_results_end_run(w, run_id, CB_RUN_COMPLETE, t1 - t0, 0.1), CB_RESULTS_OK);
    double t2 = test_now_s();
    printf("  %d rows in %.3f s: %.0f rows/s; end_run (summary) %.3f s\n", ROWS, t1 - t0,
           ROWS / (t1 - t0), t2 - t1);
    sqlite3 *db = test_reader("bulk.db");
    CU_ASSERT_EQUAL(test_int(db, "SELECT count(*) FROM requests"), ROWS);
    CU_ASSERT_EQUAL(test_int(db, "SELECT completed FROM run_summary"), ROWS);
    CU_ASSERT_DOUBLE_EQUAL(test_real(db, "SELECT hit_ratio FROM run_summary"), 0.8, 1e-12);
    sqlite3_close(db);
    cb_results_close(w);
}

/* Last case: remove this suite's temporary directory. */
static void test_cleanup(void)
{
    DIR *dir = opendir(test_dir);
    CU_ASSERT_FATAL(dir != NULL);
    struct dirent *ent;
    while ((ent = readdir(dir)) != NULL) {
        if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0) {
            unlink(test_path(ent->d_name));
        }
    }
    closedir(dir);
    CU_ASSERT_EQUAL(rmdir(test_dir), 0);
}

static const cb_test_case cases[] = {
    {"schema_created", test_schema_created},
    {"reopen_existing", test_reopen_existing},
    {"refuses_newer_version", test_refuses_newer_version},
    {"migrates_v1", test_migrates_v1},
    {"migrates_v2", test_migrates_v2},
    {"placement_rows", test_placement_rows},
    {"refuses_bad_files", test_refuses_bad_files},
    {"begin_run_validates", test_begin_run_validates},
    {"started_at_default", test_started_at_default},
    {"keys_and_request_checks", test_keys_and_request_checks},
    {"events_stored", test_events_stored},
    {"status_transitions", test_status_transitions},
    {"interrupted_run", test_interrupted_run},
    {"summary_known_latencies", test_summary_known_latencies},
    {"summary_recompute_and_empty", test_summary_recompute_and_empty},
    {"rows_in_groups", test_rows_in_groups},
    {"sort_u64", test_sort_u64},
    {"summary_paths_equal", test_summary_paths_equal},
    {"bulk_insert", test_bulk_insert},
    {"cleanup", test_cleanup},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_results", cases)
