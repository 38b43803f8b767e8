/*
 * test_cb_runner.c: the runner driving the in-memory world into a results database.
 */
#include <sqlite3.h>
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

static void runner_setup(runner_fixture *f, const cb_workload_config *wc, uint64_t requests,
                         uint64_t warmup_ns, uint32_t servers)
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
                           .db = f->db,
                           .run_id = f->run_id};
    CU_ASSERT_EQUAL_FATAL(cb_runner_new(&rc, &f->r), 0);
    cb_memworld_hooks hooks = {f->r, cb_runner_next, cb_runner_complete, cb_runner_event, NULL};
    CU_ASSERT_EQUAL_FATAL(cb_memworld_run(f->w, &hooks, UINT64_MAX), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_runner_db_error(f->r), NULL);
    CU_ASSERT_EQUAL(cb_results_end_run(f->db, f->run_id, CB_RUN_COMPLETE, 0.1, 0.1), CB_RESULTS_OK);
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

static const cb_test_case tests[] = {
    {"budget_and_records", test_runner_budget_and_records},
    {"warmup_not_recorded", test_runner_warmup_not_recorded},
    {"open_loop_paces_arrivals", test_runner_open_loop_paces_arrivals},
    {"same_seed_same_rows", test_runner_same_seed_same_rows},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_runner", tests)
