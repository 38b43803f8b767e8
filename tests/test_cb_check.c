/*
 * test_cb_check.c: the checker of `cachebed check` (analysis/cb_check) on hand-made runs.
 *
 * Each case writes a tiny run through the results writer (so the rows are exactly what a
 * driver would log, with versions and value digests) and checks it. The runs plant the bugs
 * the checker exists to catch: a hit whose value was never written (a server that answers
 * a value of its own, or a tampered digest), a hit of an old version after a newer write was
 * acknowledged (a server that acknowledges before storing), and the same under a policy that
 * allows stale reads, where they must be counted, not flagged.
 */
#include "cb_test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cb_check.h"
#include "cb_results.h"

static char test_dir[64];

static const char *test_path(const char *name)
{
    static char path[128];
    if (test_dir[0] == '\0') {
        snprintf(test_dir, sizeof test_dir, "/tmp/cb_check_XXXXXX");
        CU_ASSERT_FATAL(mkdtemp(test_dir) != NULL);
    }
    snprintf(path, sizeof path, "%s/%s", test_dir, name);
    return path;
}

static void test_remove(const char *path)
{
    char side[160];
    (void)unlink(path); /* absent is fine */
    snprintf(side, sizeof side, "%s-wal", path);
    (void)unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    (void)unlink(side);
}

/* One request of a planted run: version -1 means none, value NULL means no digest. */
typedef struct test_row {
    const char *op;
    const char *key;
    uint64_t issue_us, complete_us;
    const char *outcome;
    int64_t version;
    const char *value;
} test_row;

/* Write `rows` as run 1 of a new file `name` and return its path. */
static const char *test_write_run(const char *name, const test_row *rows, size_t n)
{
    const char *path = test_path(name);
    test_remove(path);
    char err[256] = "";
    cb_results *w = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_results_open(path, &w, err, sizeof err), CB_RESULTS_OK);
    cb_run_info info = {.scenario_name = "planted", .mode = "memnet", .seed = 1};
    int64_t run_id = 0;
    CU_ASSERT_EQUAL_FATAL(cb_results_begin_run(w, &info, &run_id), CB_RESULTS_OK);
    for (size_t i = 0; i < n; i++) {
        const test_row *t = &rows[i];
        cb_result_request r = {.client = 0,
                               .server = 0,
                               .op = t->op,
                               .key = (const uint8_t *)t->key,
                               .key_len = strlen(t->key),
                               .issue_ns = t->issue_us * 1000,
                               .complete_ns = t->complete_us * 1000,
                               .outcome = t->outcome,
                               .attempts = 1};
        if (t->value != NULL) {
            r.value_bytes = strlen(t->value);
            r.has_value_digest = 1;
            r.value_digest = cb_results_value_digest((const uint8_t *)t->value, r.value_bytes);
        }
        r.has_version = t->version >= 0;
        r.version = t->version >= 0 ? (uint64_t)t->version : 0;
        CU_ASSERT_EQUAL_FATAL(cb_results_add_request(w, run_id, &r), CB_RESULTS_OK);
    }
    CU_ASSERT_EQUAL_FATAL(cb_results_end_run(w, run_id, CB_RUN_COMPLETE, 1.0, 1.0), CB_RESULTS_OK);
    CU_ASSERT_EQUAL(cb_results_close(w), CB_RESULTS_OK);
    return path;
}

static void test_print(void *user, cb_check_invariant inv, const char *details)
{
    (void)user;
    printf("    %s: %s\n", cb_check_name(inv), details);
}

/* R = 2, write all, read any: W + Q - R = 1, so a stale hit needs a disturbed server. */
static cb_check_config test_config(uint32_t write_acks)
{
    cb_check_config c = {.servers = 2,
                         .clients = 1,
                         .replicas = 2,
                         .write_acks = write_acks,
                         .read_answers = 1,
                         .all_recorded = 1,
                         .no_eviction = 1};
    return c;
}

static cb_check_result test_check(const char *path, const cb_check_config *cfg)
{
    sqlite3 *db = NULL;
    cb_check_result out;
    char err[256] = "";
    memset(&out, 0, sizeof out);
    CU_ASSERT_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CU_ASSERT_EQUAL(cb_check_run(db, 1, cfg, 5, test_print, NULL, &out, err, sizeof err), 0);
    sqlite3_close(db);
    return out;
}

/* Writes v1 then v2 of key k, both acknowledged, then reads. */
#define TEST_WRITES                                                                                \
    {"set", "k", 10, 20, "stored", 100, "aaaa"},                                                   \
    {                                                                                              \
        "set", "k", 30, 40, "stored", 200, "bbbb"                                                  \
    }

static void test_clean_run(void)
{
    const test_row rows[] = {TEST_WRITES,
                             {"get", "k", 15, 25, "hit", 100, "aaaa"},
                             {"get", "k", 50, 60, "hit", 200, "bbbb"},
                             {"get", "k", 35, 45, "hit", 100, "aaaa"}}; /* concurrent: fine */
    cb_check_config cfg = test_config(2);
    cb_check_result r = test_check(test_write_run("clean.db", rows, 5), &cfg);
    CU_ASSERT_EQUAL(r.violations, 0);
    CU_ASSERT_EQUAL(r.digests, 3);
    CU_ASSERT_EQUAL(r.stale_hits, 0);
}

/* A hit of the right key and size but a value nobody wrote: the size rule alone passes it. */
static void test_phantom_digest(void)
{
    const test_row rows[] = {TEST_WRITES, {"get", "k", 50, 60, "hit", 200, "bbbc"}};
    cb_check_config cfg = test_config(2);
    cb_check_result r = test_check(test_write_run("phantom.db", rows, 3), &cfg);
    CU_ASSERT_EQUAL(r.by_invariant[CB_CHECK_PHANTOM_READ], 1);
    CU_ASSERT_EQUAL(r.violations, 1);
}

/* The right value with a version that no write of it carried. */
static void test_phantom_version(void)
{
    const test_row rows[] = {TEST_WRITES, {"get", "k", 50, 60, "hit", 150, "bbbb"}};
    cb_check_config cfg = test_config(2);
    cb_check_result r = test_check(test_write_run("phantom_v.db", rows, 3), &cfg);
    CU_ASSERT_EQUAL(r.by_invariant[CB_CHECK_PHANTOM_READ], 1);
}

/*
 * A server that acknowledges v2 before storing it: a read after v2's acknowledgement still
 * returns v1. No fault happened and the policy's quorums overlap: a violation.
 */
static void test_stale_versioned(void)
{
    const test_row rows[] = {TEST_WRITES, {"get", "k", 50, 60, "hit", 100, "aaaa"}};
    cb_check_config cfg = test_config(2);
    cb_check_result r = test_check(test_write_run("stale.db", rows, 3), &cfg);
    CU_ASSERT_EQUAL(r.by_invariant[CB_CHECK_STALE_READ], 1);
    CU_ASSERT_EQUAL(r.by_invariant[CB_CHECK_PHANTOM_READ], 0);
    CU_ASSERT_EQUAL(r.stale_hits, 0);
    /* W = 1 (primary_async): W + Q <= R promises nothing; the stale hit is counted. */
    cfg = test_config(1);
    r = test_check(test_path("stale.db"), &cfg);
    CU_ASSERT_EQUAL(r.violations, 0);
    CU_ASSERT_EQUAL(r.stale_hits, 1);
}

/* A versioned delete acknowledged before the read: the old value is stale too. */
static void test_stale_after_delete(void)
{
    const test_row rows[] = {TEST_WRITES,
                             {"delete", "k", 45, 48, "deleted", 300, NULL},
                             {"get", "k", 50, 60, "hit", 200, "bbbb"}};
    cb_check_config cfg = test_config(2);
    cb_check_result r = test_check(test_write_run("stale_del.db", rows, 4), &cfg);
    CU_ASSERT_EQUAL(r.by_invariant[CB_CHECK_STALE_READ], 1);
}

/* A crash of a server between the write and the read excuses the stale hit. */
static void test_stale_disturbed(void)
{
    const test_row rows[] = {TEST_WRITES, {"get", "k", 50, 60, "hit", 100, "aaaa"}};
    const char *path = test_write_run("stale_crash.db", rows, 3);
    sqlite3 *db = NULL;
    CU_ASSERT_FATAL(sqlite3_open(path, &db) == SQLITE_OK);
    CU_ASSERT(sqlite3_exec(db,
                           "INSERT INTO events (run_id, time_ns, node, kind)"
                           " VALUES (1, 35000, 'server1', 'crash')",
                           NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    cb_check_config cfg = test_config(2);
    cb_check_result r = test_check(path, &cfg);
    CU_ASSERT_EQUAL(r.violations, 0);
    CU_ASSERT_EQUAL(r.stale_hits, 1);
}

/* Unversioned items (one replica, plain SETs): the order is real time. */
static void test_stale_unversioned(void)
{
    const test_row rows[] = {{"set", "k", 10, 20, "stored", 0, "aaaa"},
                             {"set", "k", 30, 40, "stored", 0, "bbbb"},
                             {"get", "k", 50, 60, "hit", 0, "aaaa"},
                             /* a write that timed out may land any time later: not stale */
                             {"set", "j", 10, 20, "timeout", -1, "cccc"},
                             {"set", "j", 30, 40, "stored", 0, "dddd"},
                             {"get", "j", 50, 60, "hit", 0, "cccc"}};
    cb_check_config cfg = {.servers = 1,
                           .clients = 1,
                           .replicas = 1,
                           .write_acks = 1,
                           .read_answers = 1,
                           .all_recorded = 1,
                           .no_eviction = 1};
    cb_check_result r = test_check(test_write_run("unversioned.db", rows, 6), &cfg);
    CU_ASSERT_EQUAL(r.by_invariant[CB_CHECK_STALE_READ], 1);
    CU_ASSERT_EQUAL(r.violations, 1);
}

/* Rows without digests (a file migrated from schema version 2) keep the size rule. */
static void test_no_digest_falls_back(void)
{
    const test_row rows[] = {{"set", "k", 10, 20, "stored", -1, NULL},
                             {"get", "k", 50, 60, "hit", -1, NULL}};
    const char *path = test_write_run("nodigest.db", rows, 2);
    sqlite3 *db = NULL;
    CU_ASSERT_FATAL(sqlite3_open(path, &db) == SQLITE_OK);
    CU_ASSERT(sqlite3_exec(db, "UPDATE requests SET value_bytes = 4", NULL, NULL, NULL) ==
              SQLITE_OK);
    sqlite3_close(db);
    cb_check_config cfg = test_config(2);
    cb_check_result r = test_check(path, &cfg);
    CU_ASSERT_EQUAL(r.violations, 0);
    CU_ASSERT_EQUAL(r.digests, 0);
}

static const cb_test_case cases[] = {
    {"clean_run", test_clean_run},
    {"phantom_digest", test_phantom_digest},
    {"phantom_version", test_phantom_version},
    {"stale_versioned", test_stale_versioned},
    {"stale_after_delete", test_stale_after_delete},
    {"stale_disturbed", test_stale_disturbed},
    {"stale_unversioned", test_stale_unversioned},
    {"no_digest_falls_back", test_no_digest_falls_back},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_check", cases)
