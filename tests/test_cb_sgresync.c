/*
 * test_cb_sgresync.c: warm resync of a recovered server inside SimGrid (cb_sgworld with
 * resync = warm), the scenario of test_cb_resync.c (which runs it in memworld).
 *
 * R = 3 of 6 servers (rendezvous), one router writing `all` and reading `primary`. 300 keys
 * are written; server 0 crashes at 50 ms and recovers empty at 51 ms; keys 0..99 are
 * overwritten from 52 ms, racing the resync; every key is read from 300 ms. With warm, the
 * resyncer node copies back every key whose replicas include server 0 and every read hits
 * with the newest value; with lazy, the keys whose primary is server 0 and that were not
 * overwritten miss. Each simulation runs in a forked child (one SimGrid run per process).
 */
#include <stdio.h>
#include <string.h>

#include "cb_err.h"
#include "cb_sgworld.h"
#include "cb_test.h"
#include "cb_test_repl.h"
#include "cb_test_fork.h"

#define SS_MS      1000000ull
#define SS_US      1000ull
#define SS_SERVERS 6u
#define SS_KEYS    300u
#define SS_NEWER   100u /* keys 0..SS_NEWER-1 are overwritten while the resync runs */

typedef struct ss_result {
    int rc;
    int phase;
    cb_test_reads reads;
    uint64_t events[32];
    uint64_t resync_start_ns, resync_done_ns;
    uint32_t resync_node;
    cb_sgworld_stats stats;
} ss_result;

typedef struct ss_state {
    ss_result *r;
    cb_test_phases w;
    uint32_t gen[SS_KEYS];
} ss_state;

static int ss_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op, uint32_t *server,
                   uint64_t *wake_ns)
{
    (void)client, (void)server;
    ss_state *s = user;
    int rc = cb_test_phases_next(&s->w, now_ns, op, wake_ns);
    s->r->phase = s->w.phase;
    return rc;
}

static void ss_complete(void *user, uint32_t client, const cb_completion *c)
{
    (void)client;
    ss_state *s = user;
    cb_test_reads_count(&s->r->reads, c, s->gen);
}

static void ss_event(void *user, uint32_t node, const cb_event *e, uint64_t now_ns)
{
    ss_state *s = user;
    ss_result *r = s->r;
    r->events[e->kind < 32 ? e->kind : 0]++;
    if (e->kind == CB_EVENT_RESYNC_START) {
        r->resync_start_ns = now_ns;
        r->resync_node = node;
    } else if (e->kind == CB_EVENT_RESYNC_DONE) {
        r->resync_done_ns = now_ns;
    }
}

static void ss_child(const void *arg, void *result)
{
    uint32_t resync = *(const uint32_t *)arg;
    static ss_state s;
    memset(&s, 0, sizeof s);
    s.r = result;
    s.w = (cb_test_phases){SS_KEYS, SS_NEWER, {0, 52 * SS_MS, 300 * SS_MS}, 0, 0, s.gen, "", ""};
    cb_placement *p = cb_test_placement(SS_SERVERS);
    if (p == NULL) {
        s.r->rc = CB_ERR_NOMEM;
        return;
    }
    cb_router_config rc = cb_test_resync_router();
    cb_sgworld_config cfg = cb_sgworld_config_default();
    cfg.server_count = SS_SERVERS;
    cfg.client_count = 1;
    cfg.server.store.memory_bytes_max = 1u << 22;
    cfg.client.outstanding_max = 4;
    cfg.client.timeout_ns = 2 * SS_MS;
    cfg.client.timeout_max_ns = 4 * SS_MS;
    cfg.client.attempts_max = 2;
    cfg.latency_ns = 100 * SS_US;
    cfg.seed = 0x5eed;
    cfg.router = &rc;
    cfg.placement = p;
    cfg.resync = resync;
    cfg.context_factory = CB_TEST_SG_FACTORY;
    cb_sgworld_fault faults[2] = {
        {.at_ns = 50 * SS_MS, .kind = CB_SGWORLD_FAULT_CRASH, .node = 0},
        {.at_ns = 51 * SS_MS, .kind = CB_SGWORLD_FAULT_RECOVER, .node = 0},
    };
    cfg.faults = faults;
    cfg.fault_count = 2;
    cb_world_hooks hooks = {&s, ss_next, ss_complete, ss_event, NULL};
    s.r->rc = cb_sgworld_run(&cfg, &hooks, UINT64_MAX, &s.r->stats);
    cb_placement_del(p);
}

static ss_result *ss_run(uint32_t resync)
{
    static ss_result result;
    CU_ASSERT_EQUAL_FATAL(cb_test_fork(ss_child, &resync, &result, sizeof result), 0);
    CU_ASSERT_EQUAL_FATAL(result.rc, CB_ERR_OK);
    CU_ASSERT_EQUAL(result.phase, CB_TEST_READ);
    CU_ASSERT_EQUAL(result.reads.failed, 0);
    CU_ASSERT_EQUAL(result.reads.stale, 0);
    CU_ASSERT_EQUAL(result.reads.hits + result.reads.misses, SS_KEYS);
    CU_ASSERT_EQUAL(result.stats.faults_applied, 2);
    return &result;
}

/* Keys whose first R candidates include server 0, and the not-overwritten ones whose
 * primary it is. */
static void ss_owned(uint32_t *owned, uint32_t *primary)
{
    CU_ASSERT_EQUAL_FATAL(cb_test_owned(SS_SERVERS, SS_KEYS, SS_NEWER, 1u << 0, owned, primary), 0);
}

static void test_sgresync_warm(void)
{
    uint32_t owned, primary;
    ss_owned(&owned, &primary);
    CU_ASSERT(owned > SS_KEYS / 4 && primary > 0);
    const ss_result *r = ss_run(CB_RESYNC_WARM);
    const cb_resync_stats *st = &r->stats.resync;
    printf("\n    warm: hits %llu misses %llu; keys on server 0 %u; resync %.3f..%.3f ms, "
           "copies owned %llu stored %llu superseded %llu ",
           (unsigned long long)r->reads.hits, (unsigned long long)r->reads.misses, owned,
           (double)r->resync_start_ns / 1e6, (double)r->resync_done_ns / 1e6,
           (unsigned long long)st->items_owned, (unsigned long long)st->writes_stored,
           (unsigned long long)st->writes_superseded);
    CU_ASSERT_EQUAL(r->reads.hits, SS_KEYS);
    CU_ASSERT_EQUAL(r->reads.misses, 0);
    CU_ASSERT_EQUAL(r->events[CB_EVENT_RESYNC_START], 1);
    CU_ASSERT_EQUAL(r->events[CB_EVENT_RESYNC_DONE], 1);
    CU_ASSERT_EQUAL(r->resync_node, SS_SERVERS + 1); /* node S + C */
    CU_ASSERT_EQUAL(r->resync_start_ns, 51 * SS_MS); /* at the recovery */
    CU_ASSERT(r->resync_done_ns > r->resync_start_ns && r->resync_done_ns < 300 * SS_MS);
    CU_ASSERT_EQUAL(st->runs, 1);
    CU_ASSERT_EQUAL(st->runs_done, 1);
    CU_ASSERT_EQUAL(st->scans_failed, 0);
    CU_ASSERT_EQUAL(st->writes_failed, 0);
    CU_ASSERT_EQUAL(st->writes, st->writes_stored + st->writes_superseded);
    /* Each key server 0 replicates is on its two other replicas, and each copy found is
     * written (once per peer: the second copy of an item is idempotent). */
    CU_ASSERT(st->items_owned >= owned);
    CU_ASSERT(st->writes_stored >= owned - SS_NEWER);
    CU_ASSERT(st->items_seen >= SS_KEYS);
}

static void test_sgresync_lazy(void)
{
    uint32_t owned, primary;
    ss_owned(&owned, &primary);
    const ss_result *r = ss_run(CB_RESYNC_LAZY);
    printf("\n    lazy: hits %llu misses %llu (primary on server 0, not overwritten: %u) ",
           (unsigned long long)r->reads.hits, (unsigned long long)r->reads.misses, primary);
    CU_ASSERT_EQUAL(r->reads.misses, primary);
    CU_ASSERT_EQUAL(r->events[CB_EVENT_RESYNC_START], 0);
    CU_ASSERT_EQUAL(r->stats.resync.runs, 0);
}

/* resync = warm needs a router; values past warm are refused before SimGrid starts. */
static void bad_child(const void *arg, void *result)
{
    (void)arg;
    int *rc = result;
    cb_sgworld_config cfg = cb_sgworld_config_default();
    cfg.resync = CB_RESYNC_WARM;
    cb_world_hooks hooks = {NULL, ss_next, ss_complete, NULL, NULL};
    rc[0] = cb_sgworld_run(&cfg, &hooks, UINT64_MAX, NULL);
    cfg.resync = 7;
    rc[1] = cb_sgworld_run(&cfg, &hooks, UINT64_MAX, NULL);
}

static void test_sgresync_refused(void)
{
    int rc[2] = {0, 0};
    CU_ASSERT_EQUAL_FATAL(cb_test_fork(bad_child, NULL, rc, sizeof rc), 0);
    CU_ASSERT_EQUAL(rc[0], CB_ERR_INVALID);
    CU_ASSERT_EQUAL(rc[1], CB_ERR_INVALID);
}

static const cb_test_case tests[] = {
    {"warm_brings_keys_back", test_sgresync_warm},
    {"lazy_leaves_misses", test_sgresync_lazy},
    {"warm_needs_router", test_sgresync_refused},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_sgresync", tests)
