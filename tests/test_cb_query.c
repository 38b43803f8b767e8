/*
 * test_cb_query.c: `cachebed query` output — the aligned table, RFC 4180 CSV and JSON, on a
 * small table with NULLs, quotes, commas, Unicode and newlines; and its errors.
 */
#include "cb_query.h"
#include "cb_test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char query_fixture_sql[] =
    "CREATE TABLE t (id INTEGER, name TEXT, score REAL, note TEXT);"
    "INSERT INTO t VALUES (1, 'plain', 2.5, NULL);"
    "INSERT INTO t VALUES (22, 'a,b', NULL, 'say \"hi\"');"
    "INSERT INTO t VALUES (-3, 'héllo ✓', 0.1, 'two' || char(10) || 'lines');";

static sqlite3 *query_fixture(void)
{
    sqlite3 *db = NULL;
    CU_ASSERT_FATAL(sqlite3_open(":memory:", &db) == SQLITE_OK);
    CU_ASSERT_FATAL(sqlite3_exec(db, query_fixture_sql, NULL, NULL, NULL) == SQLITE_OK);
    return db;
}

/* Run sql in format; the output (malloc'd, caller frees) and the return code. */
static char *query_capture(sqlite3 *db, const char *sql, cb_query_format format, int *rc, char *err,
                           size_t errcap)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CU_ASSERT_FATAL(out != NULL);
    err[0] = '\0';
    *rc = cb_query_run(db, sql, format, out, err, errcap);
    fclose(out);
    return text;
}

/* One case: a query, a format and the exact expected output. */
typedef struct query_case {
    const char *name;
    const char *sql;
    cb_query_format format;
    const char *expect;
} query_case;

static const query_case query_cases[] = {
    {"table", "SELECT * FROM t ORDER BY rowid", CB_QUERY_TABLE,
     "id | name    | score | note\n"
     "---+---------+-------+-----------\n"
     " 1 | plain   |   2.5 | NULL\n"
     "22 | a,b     |  NULL | say \"hi\"\n"
     "-3 | héllo ✓ |   0.1 | two\\nlines\n"
     "(3 rows)\n"},
    {"table_one_row", "SELECT 'x' AS a, 1.0 / 3 AS b", CB_QUERY_TABLE,
     "a |                 b\n"
     "--+------------------\n"
     "x | 0.333333333333333\n"
     "(1 row)\n"},
    {"table_no_rows", "SELECT id FROM t WHERE 0", CB_QUERY_TABLE,
     "id\n"
     "--\n"
     "(0 rows)\n"},
    {"csv", "SELECT * FROM t ORDER BY rowid", CB_QUERY_CSV,
     "id,name,score,note\r\n"
     "1,plain,2.5,\r\n"
     "22,\"a,b\",,\"say \"\"hi\"\"\"\r\n"
     "-3,héllo ✓,0.1,\"two\nlines\"\r\n"},
    {"csv_quoted_header", "SELECT 1 AS \"a,b\", x'00ff' AS blob", CB_QUERY_CSV,
     "\"a,b\",blob\r\n"
     "1,X'00FF'\r\n"},
    {"json", "SELECT * FROM t ORDER BY rowid", CB_QUERY_JSON,
     "[\n"
     "{\"id\":1,\"name\":\"plain\",\"score\":2.5,\"note\":null},\n"
     "{\"id\":22,\"name\":\"a,b\",\"score\":null,\"note\":\"say \\\"hi\\\"\"},\n"
     "{\"id\":-3,\"name\":\"héllo ✓\",\"score\":0.1,\"note\":\"two\\nlines\"}\n"
     "]\n"},
    {"json_empty", "SELECT * FROM t WHERE 0", CB_QUERY_JSON, "[]\n"},
    {"json_escapes",
     "SELECT char(9, 1, 92) AS \"k\"\"q\", 1e300 * 1e300 AS inf,"
     " CAST(x'ff41' AS TEXT) AS bad, 9223372036854775807 AS big",
     CB_QUERY_JSON,
     "[\n"
     "{\"k\\\"q\":\"\\t\\u0001\\\\\",\"inf\":null,\"bad\":\"\\ufffdA\","
     "\"big\":9223372036854775807}\n"
     "]\n"},
    {"real_round_trip", "SELECT 0.1 + 0.2 AS x", CB_QUERY_CSV, "x\r\n0.30000000000000004\r\n"},
    {"no_columns", "CREATE TEMP TABLE scratch (a)", CB_QUERY_TABLE, ""},
    {"trailing_semicolons_and_comment", "SELECT 7 AS n; ; -- done", CB_QUERY_CSV, "n\r\n7\r\n"},
};

static void test_query_formats(void)
{
    sqlite3 *db = query_fixture();
    for (size_t i = 0; i < sizeof query_cases / sizeof query_cases[0]; i++) {
        const query_case *c = &query_cases[i];
        char err[256];
        int rc = 0;
        char *got = query_capture(db, c->sql, c->format, &rc, err, sizeof err);
        if (rc != CB_QUERY_OK || strcmp(got, c->expect) != 0) {
            printf("case %s: rc %d (%s)\n--- got:\n%s--- want:\n%s---\n", c->name, rc, err, got,
                   c->expect);
            CU_FAIL("output differs");
        }
        free(got);
    }
    sqlite3_close(db);
}

/* One case of a query that must fail, and a fragment of its message. */
typedef struct query_error_case {
    const char *name;
    const char *sql;
    const char *expect;
} query_error_case;

static const query_error_case query_error_cases[] = {
    {"syntax", "SELEC * FROM t", "syntax error"},
    {"no_table", "SELECT * FROM nope", "no such table: nope"},
    {"two_statements", "SELECT 1; SELECT 2", "more than one SQL statement"},
    {"empty", "  -- nothing", "no SQL statement"},
    {"runtime", "SELECT abs(-9223372036854775807 - 1)", "integer overflow"},
};

static void test_query_errors(void)
{
    sqlite3 *db = query_fixture();
    for (size_t i = 0; i < sizeof query_error_cases / sizeof query_error_cases[0]; i++) {
        const query_error_case *c = &query_error_cases[i];
        for (int format = CB_QUERY_TABLE; format <= CB_QUERY_JSON; format++) {
            char err[256];
            int rc = 0;
            free(query_capture(db, c->sql, (cb_query_format)format, &rc, err, sizeof err));
            if (rc != CB_QUERY_ERROR || strstr(err, c->expect) == NULL) {
                printf("case %s format %d: rc %d, message '%s'\n", c->name, format, rc, err);
                CU_FAIL("expected an error");
            }
        }
    }
    sqlite3_close(db);
}

/* A missing file is an error and is not created; a text file is not a database. */
static void test_query_open(void)
{
    char path[] = "/tmp/cb_query_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    unlink(path);
    char err[256] = "";
    sqlite3 *db = (sqlite3 *)err; /* must be reset to NULL */
    CU_ASSERT_EQUAL(cb_query_open(path, &db, err, sizeof err), CB_QUERY_ERROR);
    CU_ASSERT_PTR_NULL(db);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "No such file"));
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);

    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("not a database, but long enough to have been given a header by SQLite...\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(cb_query_open(path, &db, err, sizeof err), CB_QUERY_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a database"));
    unlink(path);

    CU_ASSERT_EQUAL(cb_query_open("/tmp", &db, err, sizeof err), CB_QUERY_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a regular file"));

    /* A real database opens read-only: writes are refused. */
    CU_ASSERT_FATAL(sqlite3_open(path, &db) == SQLITE_OK);
    CU_ASSERT(sqlite3_exec(db, "CREATE TABLE t (a)", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CU_ASSERT_EQUAL_FATAL(cb_query_open(path, &db, err, sizeof err), CB_QUERY_OK);
    int rc = 0;
    free(query_capture(db, "INSERT INTO t VALUES (1)", CB_QUERY_TABLE, &rc, err, sizeof err));
    CU_ASSERT_EQUAL(rc, CB_QUERY_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "readonly"));
    sqlite3_close(db);
    unlink(path);
}

static const cb_test_case cases[] = {
    {"formats", test_query_formats},
    {"errors", test_query_errors},
    {"open", test_query_open},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_query", cases)
