/*
 * test_cb_runner.c: the runner driving the in-memory world into a results database.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cb_err.h"
#include "cb_memworld.h"
#include "cb_runner.h"
#include "cb_test.h"

typedef struct runner_fixture {
    cb_workload *wl;
    cb_placement *pl;
    cb_results *db;
    int64_t run_id;
    cb_runner *r;
    cb_memworld *w;
    char path[64];
} runner_fixture;

static void runner_setup_trace(runner_fixture *f, const cb_workload_config *wc, uint64_t requests,
                               uint64_t warmup_ns, uint32_t servers, cb_trace *trace)
{
    memset(f, 0, sizeof *f);
    char err[256];
    CU_ASSERT_EQUAL_FATAL(cb_workload_new(wc, &f->wl, err, sizeof err), 0);
    cb_placement_config pc;
    cb_placement_config_default(&pc);
    cb_placement_node nodes[8];
    for (uint32_t i = 0; i < servers; i++) {
        nodes[i] = (cb_placement_node){i, 1, NULL};
    }
    CU_ASSERT_EQUAL_FATAL(cb_placement_new(CB_PLACEMENT_JUMP, &pc, nodes, servers, NULL, &f->pl),
                          CB_ERR_OK);
    snprintf(f->path, sizeof f->path, "/tmp/cb_runner_test_%d.db", (int)getpid());
    unlink(f->path);
    CU_ASSERT_EQUAL_FATAL(cb_results_open(f->path, &f->db, err, sizeof err), CB_RESULTS_OK);
    cb_run_info info = {.scenario_name = "runner-test", .mode = "memnet", .seed = wc->seed};
    CU_ASSERT_EQUAL_FATAL(cb_results_begin_run(f->db, &info, &f->run_id), CB_RESULTS_OK);
    cb_memworld_config mc;
    memset(&mc, 0, sizeof mc);
    mc.server_count = servers;
    mc.client_count = 3;
    mc.server = cb_server_config_default();
    mc.client = cb_client_config_default();
    mc.client.outstanding_max = 4;
    mc.net.latency_ns = 100000;
    mc.net.jitter_ns = 20000;
    mc.net.queue_max = 1024;
    mc.net.bytes_max = 16u << 20;
    mc.seed = wc->seed;
    CU_ASSERT_EQUAL_FATAL(cb_memworld_new(&mc, NULL, &f->w), CB_ERR_OK);
    cb_runner_config rc = {.client_count = 3,
                           .server_count = servers,
                           .outstanding_max = 4,
                           .requests = requests,
                           .warmup_ns = warmup_ns,
                           .workload = f->wl,
                           .placement = f->pl,
                           .trace = trace,
                           .trace_timed = 1,
                           .db = f->db,
                           .run_id = f->run_id};
    CU_ASSERT_EQUAL_FATAL(cb_runner_new(&rc, &f->r), 0);
    cb_world_hooks hooks = {f->r, cb_runner_next, cb_runner_complete, cb_runner_event, NULL};
    CU_ASSERT_EQUAL_FATAL(cb_memworld_run(f->w, &hooks, UINT64_MAX), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_runner_db_error(f->r), NULL);
    CU_ASSERT_EQUAL(cb_results_end_run(f->db, f->run_id, CB_RUN_COMPLETE, 0.1, 0.1), CB_RESULTS_OK);
}

static void runner_setup(runner_fixture *f, const cb_workload_config *wc, uint64_t requests,
                         uint64_t warmup_ns, uint32_t servers)
{
    runner_setup_trace(f, wc, requests, warmup_ns, servers, NULL);
}

static void runner_teardown(runner_fixture *f)
{
    cb_memworld_del(f->w);
    cb_runner_del(f->r);
    cb_results_close(f->db);
    cb_placement_del(f->pl);
    cb_workload_del(f->wl);
    unlink(f->path);
}

/* One integer from a query on the fixture's database. */
static int64_t runner_query_int(const runner_fixture *f, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void test_runner_budget_and_records(void)
{
    cb_workload_config wc;
    cb_workload_config_default(&wc);
    wc.keys = 500;
    wc.mix_get = 0.5, wc.mix_set = 0.4, wc.mix_incr = 0.1;
    wc.rmw_fraction = 0.2;
    wc.seed = cb_test_seed();
    runner_fixture f;
    runner_setup(&f, &wc, 1000, 0, 4);
    const cb_runner_totals *t = cb_runner_get_totals(f.r);
    uint64_t rmw_sets = t->issued - 1000;
    CU_ASSERT(rmw_sets > 40); /* 20% of ~400 SETs were read-modify-write */
    CU_ASSERT_EQUAL(t->completed, t->issued);
    CU_ASSERT_EQUAL(t->recorded, t->issued);
    CU_ASSERT_EQUAL(runner_query_int(&f, "SELECT count(*) FROM requests"), (int64_t)t->issued);
    CU_ASSERT_EQUAL(runner_query_int(&f, "SELECT count(DISTINCT server) FROM requests"), 4);
    CU_ASSERT_EQUAL(runner_query_int(&f, "SELECT count(*) FROM requests WHERE outcome IS NULL"), 0);
    CU_ASSERT_EQUAL(runner_query_int(&f, "SELECT completed FROM run_summary"), (int64_t)t->issued);
    runner_teardown(&f);
}

static void test_runner_warmup_not_recorded(void)
{
    cb_workload_config wc;
    cb_workload_config_default(&wc);
    wc.seed = cb_test_seed();
    runner_fixture f;
    runner_setup(&f, &wc, 600, 5000000 /* 5 ms */, 2);
    const cb_runner_totals *t = cb_runner_get_totals(f.r);
    CU_ASSERT_EQUAL(t->completed, 600);
    CU_ASSERT(t->recorded > 0 && t->recorded < 600);
    CU_ASSERT_EQUAL(runner_query_int(&f, "SELECT min(issue_ns) >= 5000000 FROM requests"), 1);
    runner_teardown(&f);
}

static void test_runner_open_loop_paces_arrivals(void)
{
    cb_workload_config wc;
    cb_workload_config_default(&wc);
    wc.arrival = CB_WL_ARRIVAL_OPEN;
    wc.rate_per_s = 1000; /* per client: 3 clients x 200 requests take about 0.2 s */
    wc.seed = cb_test_seed();
    runner_fixture f;
    runner_setup(&f, &wc, 600, 0, 2);
    int64_t span = runner_query_int(&f, "SELECT max(issue_ns) - min(issue_ns) FROM requests");
    CU_ASSERT(span > 150000000 && span < 260000000);
    runner_teardown(&f);
}

static uint64_t runner_rows_hash(uint64_t seed)
{
    cb_workload_config wc;
    cb_workload_config_default(&wc);
    wc.key_dist = CB_WL_KEYS_ZIPF;
    wc.seed = seed;
    runner_fixture f;
    runner_setup(&f, &wc, 500, 0, 3);
    int64_t h = runner_query_int(
        &f, "SELECT sum((client + 7 * server + 131 * issue_ns + 1009 * complete_ns + "
            "length(key) * 13 + length(outcome)) % 1000000007) FROM requests");
    runner_teardown(&f);
    return (uint64_t)h;
}

static void test_runner_same_seed_same_rows(void)
{
    uint64_t a = runner_rows_hash(cb_test_seed()), b = runner_rows_hash(cb_test_seed());
    CU_ASSERT_EQUAL(a, b);
    CU_ASSERT_NOT_EQUAL(a, runner_rows_hash(cb_test_seed() + 1));
}

/* Trace replay: a workload that names numeric keys like the CLI's, values capped at 50 B. */
static void runner_trace_workload(cb_workload_config *wc)
{
    cb_workload_config_default(wc);
    wc->key_bytes = CB_TRACE_ID_KEY_BYTES;
    wc->value_cap = 50;
    wc->seed = cb_test_seed();
}

static cb_trace *runner_open_trace(const char *text, cb_trace_format fmt)
{
    char err[256];
    cb_trace *t = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_trace_open_memory("t", (const uint8_t *)text, strlen(text), fmt,
                                               1000000, &t, err, sizeof err),
                          CB_ERR_OK);
    return t;
}

#define TRACE_RECORDS 60

static const char *const trace_ops[] = {"set", "get", "gets", "delete", "incr", "add", "append"};

/* 60 Twitter records, 1 ms apart, over client ids 0..5 (3 clients: id % 3). */
static char *runner_twitter_text(void)
{
    char *text = malloc(TRACE_RECORDS * 64), *p = text;
    for (int i = 0; i < TRACE_RECORDS; i++) {
        p += sprintf(p, "%d.%03d,key%d,4,%d,%d,%s,0\n", i / 1000, i % 1000, i % 7, 10 + i, i % 6,
                     trace_ops[i % 7]);
    }
    return text;
}

/* Every record became one request with its key, op, size and client, in trace order. */
static void test_runner_trace_replay(void)
{
    cb_workload_config wc;
    runner_trace_workload(&wc);
    char *text = runner_twitter_text();
    cb_trace *t = runner_open_trace(text, CB_TRACE_TWITTER);
    runner_fixture f;
    runner_setup_trace(&f, &wc, 1000, 0, 2, t);
    CU_ASSERT_PTR_NULL(cb_runner_trace_error(f.r));
    CU_ASSERT_EQUAL(cb_runner_get_totals(f.r)->issued, TRACE_RECORDS);
    CU_ASSERT_EQUAL(runner_query_int(&f, "SELECT count(*) FROM requests"), TRACE_RECORDS);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(f.path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(db,
                                             "SELECT client, op, CAST(key AS TEXT), value_bytes, "
                                             "issue_ns FROM requests ORDER BY issue_ns",
                                             -1, &st, NULL),
                          SQLITE_OK);
    static const char *const mapped[] = {"set", "get", "get", "delete", "incr", "add", "append"};
    for (int i = 0; sqlite3_step(st) == SQLITE_ROW; i++) {
        char key[16];
        snprintf(key, sizeof key, "key%d", i % 7);
        CU_ASSERT_EQUAL(sqlite3_column_int(st, 0), (i % 6) % 3);
        CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(st, 1), mapped[i % 7]);
        CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(st, 2), key);
        CU_ASSERT_EQUAL(sqlite3_column_int64(st, 4), (int64_t)i * 1000000);
        if (i % 7 == 0 || i % 7 >= 5) { /* stores: the trace's size, capped at 50 */
            CU_ASSERT_EQUAL(sqlite3_column_int(st, 3), 10 + i < 50 ? 10 + i : 50);
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    runner_teardown(&f);
    cb_trace_close(t);
    free(text);
}

/* The budget is the first `requests` records of the trace. */
static void test_runner_trace_budget(void)
{
    cb_workload_config wc;
    runner_trace_workload(&wc);
    char *text = runner_twitter_text();
    cb_trace *t = runner_open_trace(text, CB_TRACE_TWITTER);
    runner_fixture f;
    runner_setup_trace(&f, &wc, 25, 0, 2, t);
    CU_ASSERT_EQUAL(cb_runner_get_totals(f.r)->issued, 25);
    CU_ASSERT_EQUAL(runner_query_int(&f, "SELECT max(issue_ns) FROM requests"), 24000000);
    runner_teardown(&f);
    cb_trace_close(t);
    free(text);
}

/* oracleGeneral-like records (here libCacheSim CSV) are GETs whose misses fill the key. */
static void test_runner_trace_fill_on_miss(void)
{
    cb_workload_config wc;
    runner_trace_workload(&wc);
    char text[512], *p = text;
    for (int i = 0; i < 10; i++) {
        p += sprintf(p, "0.%03d,%d,%d\n", i, i % 3, 20 + i % 3);
    }
    cb_trace *t = runner_open_trace(text, CB_TRACE_LIBCACHESIM_CSV);
    runner_fixture f;
    runner_setup_trace(&f, &wc, 1000, 0, 2, t);
    CU_ASSERT_EQUAL(runner_query_int(&f, "SELECT count(*) FROM requests"), 13);
    CU_ASSERT_EQUAL(runner_query_int(&f, "SELECT count(*) FROM requests WHERE outcome = 'miss'"),
                    3);
    CU_ASSERT_EQUAL(runner_query_int(&f, "SELECT count(*) FROM requests WHERE outcome = 'hit'"), 7);
    CU_ASSERT_EQUAL(runner_query_int(&f, "SELECT count(*) FROM requests WHERE op = 'set' AND "
                                         "value_bytes = 21 AND key = 'k0000000000000001'"),
                    1);
    /* Records are dealt round-robin: record i to client i % 3. */
    CU_ASSERT_EQUAL(runner_query_int(&f, "SELECT count(*) FROM requests WHERE op = 'get' AND "
                                         "client = (issue_ns / 1000000) % 3"),
                    10);
    runner_teardown(&f);
    cb_trace_close(t);
}

/* A bad record ends the replay where it is, and the runner says why. */
static void test_runner_trace_error(void)
{
    cb_workload_config wc;
    runner_trace_workload(&wc);
    cb_trace *t = runner_open_trace("0,a,1,1,0,get,0\n1,b,1,1,1,get,0\n2,c,1,1,2,frob,0\n"
                                    "3,d,1,1,0,get,0\n",
                                    CB_TRACE_TWITTER);
    runner_fixture f;
    runner_setup_trace(&f, &wc, 1000, 0, 1, t);
    CU_ASSERT_EQUAL(cb_runner_get_totals(f.r)->issued, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cb_runner_trace_error(f.r));
    CU_ASSERT_STRING_EQUAL(cb_runner_trace_error(f.r), "t:3: unknown operation 'frob'");
    runner_teardown(&f);
    cb_trace_close(t);
}

static const cb_test_case tests[] = {
    {"budget_and_records", test_runner_budget_and_records},
    {"warmup_not_recorded", test_runner_warmup_not_recorded},
    {"open_loop_paces_arrivals", test_runner_open_loop_paces_arrivals},
    {"same_seed_same_rows", test_runner_same_seed_same_rows},
    {"trace_replay", test_runner_trace_replay},
    {"trace_budget", test_runner_trace_budget},
    {"trace_fill_on_miss", test_runner_trace_fill_on_miss},
    {"trace_error", test_runner_trace_error},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_runner", tests)
