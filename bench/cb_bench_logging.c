/*
 * cb_bench_logging.c: `cachebed bench logging` — what recording every request costs a run.
 *
 * The same simulation twice, each in its own child (SimGrid runs one simulation per
 * process): once with the runner recording every request and event in a results database
 * (prepared statements, batched transactions, WAL, then the run summary), once recording
 * nothing. The ratio of their CPU seconds is the logging overhead (the goal: under
 * 10%). The workload is quickstart's shape scaled up: Zipf(0.99) over 10^4 keys, 90% GET,
 * 100-byte values, closed loop.
 */
#include "cb_bench.h"
#include "cb_bench_child.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cb_err.h"
#include "cb_memworld.h"
#include "cb_runner.h"
#include "cb_sgworld.h"

typedef struct logging_opts {
    uint32_t clients, servers, outstanding;
    uint64_t requests, seed;
    int memnet;
    const char *db_path; /* NULL: no logging */
} logging_opts;

typedef struct logging_result {
    int rc;
    double wall_s;
    uint64_t completed, recorded;
} logging_result;

/* The world config shared by both worlds' builders. */
static void logging_world(const logging_opts *o, cb_memworld_config *mc)
{
    memset(mc, 0, sizeof *mc);
    mc->server_count = o->servers;
    mc->client_count = o->clients;
    mc->server = cb_server_config_default();
    mc->client = cb_client_config_default();
    mc->client.outstanding_max = o->outstanding;
    mc->net.latency_ns = 100000;
    mc->net.queue_max = o->clients * o->outstanding * 4u + 1024u;
    mc->net.bytes_max = (size_t)1 << 30;
    mc->seed = o->seed;
}

static int logging_run_world(const logging_opts *o, cb_runner *r)
{
    cb_memworld_config mc;
    logging_world(o, &mc);
    if (o->memnet) {
        cb_memworld *w = NULL;
        int rc = cb_memworld_new(&mc, NULL, &w);
        cb_world_hooks h = {r, cb_runner_next, cb_runner_complete, cb_runner_event, NULL};
        rc = rc == CB_ERR_OK ? cb_memworld_run(w, &h, UINT64_MAX) : rc;
        cb_memworld_del(w);
        return rc;
    }
    cb_sgworld_config sc = cb_sgworld_config_default();
    sc.server_count = mc.server_count;
    sc.client_count = mc.client_count;
    sc.client = mc.client;
    sc.latency_ns = mc.net.latency_ns;
    sc.bandwidth_bps = 10000000000ull;
    sc.seed = o->seed;
    cb_world_hooks h = {r, cb_runner_next, cb_runner_complete, cb_runner_event, NULL};
    cb_sgworld_stats st;
    return cb_sgworld_run(&sc, &h, UINT64_MAX, &st);
}

static int logging_setup(const logging_opts *o, cb_workload **wl, cb_placement **pl)
{
    char err[256];
    cb_workload_config wc;
    cb_workload_config_default(&wc);
    wc.key_dist = CB_WL_KEYS_ZIPF;
    wc.seed = o->seed;
    if (cb_workload_new(&wc, wl, err, sizeof err) != 0) {
        fprintf(stderr, "bench logging: %s\n", err);
        return -1;
    }
    cb_placement_node nodes[256];
    for (uint32_t s = 0; s < o->servers; s++) {
        nodes[s] = (cb_placement_node){s, 1, NULL};
    }
    cb_placement_config pc;
    cb_placement_config_default(&pc);
    return cb_placement_new(CB_PLACEMENT_JUMP, &pc, nodes, o->servers, NULL, pl) == CB_ERR_OK ? 0
                                                                                              : -1;
}

/* The child: one whole run, logged or not, timed from set-up to the last summary row. */
static void logging_child(void *arg, void *out)
{
    const logging_opts *o = arg;
    logging_result *res = out;
    cb_workload *wl = NULL;
    cb_placement *pl = NULL;
    cb_results *db = NULL;
    cb_runner *r = NULL;
    int64_t run_id = 0;
    char err[512];
    double t0 = cb_bench_now_s();
    res->rc = -1;
    if (logging_setup(o, &wl, &pl) != 0) {
        goto out;
    }
    if (o->db_path != NULL) {
        cb_run_info info = {.scenario_name = "bench-logging", .mode = "sim", .seed = o->seed};
        if (cb_results_open(o->db_path, &db, err, sizeof err) != CB_RESULTS_OK ||
            cb_results_begin_run(db, &info, &run_id) != CB_RESULTS_OK) {
            fprintf(stderr, "bench logging: %s\n", db != NULL ? cb_results_errmsg(db) : err);
            goto out;
        }
    }
    cb_runner_config rc = {.client_count = o->clients,
                           .server_count = o->servers,
                           .outstanding_max = o->outstanding,
                           .requests = o->requests,
                           .workload = wl,
                           .placement = pl,
                           .db = db,
                           .run_id = run_id};
    if (cb_runner_new(&rc, &r) != 0 || logging_run_world(o, r) != CB_ERR_OK) {
        goto out;
    }
    if (db != NULL && cb_results_end_run(db, run_id, CB_RUN_COMPLETE, 0, 0) != CB_RESULTS_OK) {
        goto out;
    }
    res->completed = cb_runner_get_totals(r)->completed;
    res->recorded = cb_runner_get_totals(r)->recorded;
    res->rc = 0;
out:
    if (db != NULL) {
        cb_results_close(db);
    }
    res->wall_s = cb_bench_now_s() - t0;
    cb_runner_del(r);
    cb_placement_del(pl);
    cb_workload_del(wl);
}

static int logging_parse(int argc, char **argv, logging_opts *o)
{
    for (int i = 0; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--world") == 0 && v != NULL) {
            o->memnet = strcmp(v, "memnet") == 0;
            i++;
        } else if (strcmp(argv[i], "--requests") == 0 && v != NULL) {
            o->requests = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(argv[i], "--clients") == 0 && v != NULL) {
            o->clients = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else {
            fprintf(stderr, "bench logging: unknown or incomplete option '%s'\n", argv[i]);
            return 2;
        }
    }
    return o->requests > 0 && o->clients > 0 ? 0 : 2;
}

int cb_bench_logging(int argc, char **argv)
{
    logging_opts o = {100, 10, 4, 1000000, 1, 0, NULL};
    if (logging_parse(argc, argv, &o) != 0) {
        return 2;
    }
    char path[64];
    snprintf(path, sizeof path, "/tmp/cachebed-bench-logging-%d.db", (int)getpid());
    printf("cachebed bench logging: %llu requests, %u clients, %u servers, %s world\n",
           (unsigned long long)o.requests, o.clients, o.servers, o.memnet ? "memnet" : "SimGrid");
    logging_result off, on;
    cb_bench_usage uoff, uon;
    logging_opts with = o;
    with.db_path = path;
    int bad = cb_bench_child(logging_child, &o, &off, sizeof off, &uoff) != 0 || off.rc != 0 ||
              cb_bench_child(logging_child, &with, &on, sizeof on, &uon) != 0 || on.rc != 0;
    unlink(path);
    for (const char *sfx = "-wal"; sfx != NULL; sfx = sfx[1] == 'w' ? "-shm" : NULL) {
        char side[80];
        snprintf(side, sizeof side, "%s%s", path, sfx);
        unlink(side);
    }
    if (bad) {
        fprintf(stderr, "bench logging: a run failed\n");
        return 1;
    }
    printf("  %-12s  wall %7.2f s  cpu %7.2f s  requests %llu\n", "no logging", off.wall_s,
           uoff.cpu_s, (unsigned long long)off.completed);
    printf("  %-12s  wall %7.2f s  cpu %7.2f s  requests %llu, rows %llu\n", "logging", on.wall_s,
           uon.cpu_s, (unsigned long long)on.completed, (unsigned long long)on.recorded);
    printf("  logging adds %.1f%% cpu (%.2f us per request), %.1f%% wall\n",
           100.0 * (uon.cpu_s / uoff.cpu_s - 1.0),
           1e6 * (uon.cpu_s - uoff.cpu_s) / (double)on.completed,
           100.0 * (on.wall_s / off.wall_s - 1.0));
    return 0;
}
