/*
 * test_cb_realresync.c: warm resync of a recovered server over real sockets (cb_realworld
 * with resync = warm), the scenario of test_cb_sgresync.c (SimGrid) and test_cb_resync.c
 * (memworld) on loopback.
 *
 * R = 3 of 6 `cb_serve` servers (threads of this process on 127.0.0.1, ephemeral ports),
 * rendezvous, one router writing `all` and reading `primary`, 100 µs one way imposed in user
 * space. 300 keys are written; server 0 crashes at 200 ms (its cb_serve is stopped and
 * freed: its connections close) and recovers empty at 201 ms (a new cb_serve on the same
 * port); keys 0..99 are overwritten from 202 ms, racing the resync; every key is read from
 * 600 ms. (The simulator's 50/51/52/300 ms are stretched: real writes under ASan on a
 * loaded machine need the room.) With warm, the resyncer copies back every key whose
 * replicas include server 0 and every read hits with the newest value; with lazy, at least
 * the keys whose primary is server 0 and that were not overwritten miss.
 */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cb_err.h"
#include "cb_realworld.h"
#include "cb_serve.h"
#include "cb_test.h"
#include "cb_test_repl.h"

#define RR_MS      1000000ull
#define RR_US      1000ull
#define RR_SERVERS 6u
#define RR_KEYS    300u
#define RR_NEWER   100u /* keys 0..RR_NEWER-1 are overwritten while the resync runs */

typedef struct rr_server {
    cb_serve *s;
    pthread_t t;
    uint16_t port;
} rr_server;

typedef struct rr_state {
    rr_server servers[RR_SERVERS];
    cb_test_phases w;
    uint32_t gen[RR_KEYS];
    cb_test_reads reads;
    uint64_t events[32];
    uint64_t resync_start_ns, resync_done_ns, recover_ns;
    uint32_t resync_node;
    int32_t resync_detail;
    int fault_errors;
} rr_state;

static void *rr_server_main(void *arg)
{
    rr_server *sv = arg;
    CU_ASSERT_EQUAL(cb_serve_run(sv->s), 0);
    return NULL;
}

/* Start a server on `port` (0: ephemeral). 0, or -1. */
static int rr_server_start(rr_server *sv, uint16_t port)
{
    char err[128];
    cb_serve_config c;
    memset(&c, 0, sizeof c);
    c.port = port;
    c.server = cb_server_config_default();
    c.server.conn_max = 16;
    c.server.store.memory_bytes_max = 1u << 22;
    if (cb_serve_new(&c, &sv->s, err, sizeof err) != 0) {
        fprintf(stderr, "cb_serve_new: %s\n", err);
        return -1;
    }
    sv->port = cb_serve_port(sv->s);
    if (pthread_create(&sv->t, NULL, rr_server_main, sv) != 0) {
        cb_serve_del(sv->s);
        sv->s = NULL;
        return -1;
    }
    return 0;
}

static void rr_server_stop(rr_server *sv)
{
    if (sv->s == NULL) {
        return;
    }
    cb_serve_stop(sv->s);
    CU_ASSERT_EQUAL(pthread_join(sv->t, NULL), 0);
    cb_serve_del(sv->s); /* closes every socket: the clients see their connections end */
    sv->s = NULL;
}

/* The world's server_fault: stop server s for good, or start it again, empty, on its port
 * (listening when this returns). */
static int rr_fault(void *user, uint32_t s, int up, char *note, size_t note_cap)
{
    rr_state *st = user;
    rr_server *sv = &st->servers[s];
    if (!up) {
        rr_server_stop(sv);
        snprintf(note, note_cap, "stopped");
        return 0;
    }
    uint16_t port = sv->port;
    if (rr_server_start(sv, port) != 0 || sv->port != port) {
        st->fault_errors++;
        return -1;
    }
    snprintf(note, note_cap, "restarted on port %u", (unsigned)port);
    return 0;
}

static int rr_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op, uint32_t *server,
                   uint64_t *wake_ns)
{
    (void)client, (void)server;
    rr_state *s = user;
    return cb_test_phases_next(&s->w, now_ns, op, wake_ns);
}

static void rr_complete(void *user, uint32_t client, const cb_completion *c)
{
    (void)client;
    rr_state *s = user;
    cb_test_reads_count(&s->reads, c, s->gen);
}

static void rr_event(void *user, uint32_t node, const cb_event *e, uint64_t now_ns)
{
    rr_state *s = user;
    s->events[e->kind < 32 ? e->kind : 0]++;
    if (e->kind == CB_EVENT_RESYNC_START) {
        s->resync_start_ns = now_ns;
        s->resync_node = node;
    } else if (e->kind == CB_EVENT_RESYNC_DONE) {
        s->resync_done_ns = now_ns;
        s->resync_detail = e->detail;
    } else if (e->kind == CB_EVENT_RECOVER) {
        s->recover_ns = now_ns;
    }
}

static rr_state rr_st;

/* One run with `resync`; the world's stats in *out. */
static void rr_run(uint32_t resync, cb_realworld_stats *out)
{
    rr_state *s = &rr_st;
    memset(s, 0, sizeof *s);
    s->w = (cb_test_phases){RR_KEYS, RR_NEWER, {0, 202 * RR_MS, 600 * RR_MS}, 0, 0, s->gen, "", ""};
    memset(out, 0, sizeof *out);
    struct sockaddr_in addrs[RR_SERVERS];
    for (uint32_t i = 0; i < RR_SERVERS; i++) {
        CU_ASSERT_EQUAL_FATAL(rr_server_start(&s->servers[i], 0), 0);
        memset(&addrs[i], 0, sizeof addrs[i]);
        addrs[i].sin_family = AF_INET;
        addrs[i].sin_port = htons(s->servers[i].port);
        addrs[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    cb_placement *p = cb_test_placement(RR_SERVERS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    cb_router_config rc = cb_test_resync_router();
    cb_sgworld_fault faults[2] = {
        {.at_ns = 200 * RR_MS, .kind = CB_SGWORLD_FAULT_CRASH, .node = 0},
        {.at_ns = 201 * RR_MS, .kind = CB_SGWORLD_FAULT_RECOVER, .node = 0},
    };
    cb_realworld_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.server_count = RR_SERVERS;
    cfg.client_count = 1;
    cfg.servers = addrs;
    cfg.client = cb_client_config_default();
    cfg.client.outstanding_max = 4;
    cfg.client.timeout_ns = 100 * RR_MS; /* generous: ASan on a loaded machine */
    cfg.client.timeout_max_ns = 200 * RR_MS;
    cfg.client.attempts_max = 3;
    cfg.latency_ns = 100 * RR_US;
    cfg.seed = 0x5eed;
    cfg.router = &rc;
    cfg.placement = p;
    cfg.resync = resync;
    cfg.faults = faults;
    cfg.fault_count = 2;
    cfg.server_fault = rr_fault;
    cfg.fault_user = s;
    cb_realworld *w = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_realworld_new(&cfg, &w), CB_ERR_OK);
    cb_world_hooks hooks = {s, rr_next, rr_complete, rr_event, NULL};
    CU_ASSERT_EQUAL(cb_realworld_run(w, &hooks, 20000 * RR_MS), CB_ERR_OK);
    cb_realworld_get_stats(w, out);
    cb_realworld_del(w);
    for (uint32_t i = 0; i < RR_SERVERS; i++) {
        rr_server_stop(&s->servers[i]);
    }
    cb_placement_del(p);
    CU_ASSERT_EQUAL(s->fault_errors, 0);
    CU_ASSERT_EQUAL(out->faults, 2);
    CU_ASSERT_EQUAL(s->w.phase, CB_TEST_READ);
    CU_ASSERT_EQUAL(s->reads.failed, 0);
    CU_ASSERT_EQUAL(s->reads.stale, 0);
    CU_ASSERT_EQUAL(s->reads.hits + s->reads.misses, RR_KEYS);
}

/* Keys whose first R candidates include server 0, and the not-overwritten ones whose
 * primary it is. */
static void rr_owned(uint32_t *owned, uint32_t *primary)
{
    CU_ASSERT_EQUAL_FATAL(cb_test_owned(RR_SERVERS, RR_KEYS, RR_NEWER, 1u << 0, owned, primary), 0);
}

static void test_realresync_warm(void)
{
    uint32_t owned, primary;
    rr_owned(&owned, &primary);
    CU_ASSERT(owned > RR_KEYS / 4 && primary > 0);
    cb_realworld_stats ws;
    rr_run(CB_RESYNC_WARM, &ws);
    const rr_state *r = &rr_st;
    const cb_resync_stats *st = &ws.resync;
    printf("\n    warm: hits %llu misses %llu; keys on server 0 %u; resync %.3f..%.3f ms "
           "(recover %.3f), %llu probe(s), copies owned %llu stored %llu superseded %llu ",
           (unsigned long long)r->reads.hits, (unsigned long long)r->reads.misses, owned,
           (double)r->resync_start_ns / 1e6, (double)r->resync_done_ns / 1e6,
           (double)r->recover_ns / 1e6, (unsigned long long)ws.resync_probes,
           (unsigned long long)st->items_owned, (unsigned long long)st->writes_stored,
           (unsigned long long)st->writes_superseded);
    CU_ASSERT_EQUAL(r->reads.hits, RR_KEYS);
    CU_ASSERT_EQUAL(r->reads.misses, 0);
    CU_ASSERT_EQUAL(r->events[CB_EVENT_RESYNC_START], 1);
    CU_ASSERT_EQUAL(r->events[CB_EVENT_RESYNC_DONE], 1);
    CU_ASSERT_EQUAL(r->resync_node, RR_SERVERS + 1); /* node S + C */
    CU_ASSERT(r->resync_start_ns >= r->recover_ns && r->recover_ns >= 201 * RR_MS);
    CU_ASSERT(r->resync_done_ns > r->resync_start_ns && r->resync_done_ns < 600 * RR_MS);
    CU_ASSERT(ws.resync_probes >= 1);
    CU_ASSERT_EQUAL(ws.resync_given_up, 0);
    CU_ASSERT_EQUAL(st->runs, 1);
    CU_ASSERT_EQUAL(st->runs_done, 1);
    CU_ASSERT_EQUAL(st->scans_failed, 0);
    CU_ASSERT_EQUAL(st->writes_failed, 0);
    CU_ASSERT_EQUAL(st->writes, st->writes_stored + st->writes_superseded);
    CU_ASSERT_EQUAL((uint64_t)r->resync_detail, st->writes_stored);
    /* Each key server 0 replicates is on its two other replicas, and each copy found is
     * written (once per peer: the second copy of an item is idempotent). */
    CU_ASSERT(st->items_owned >= owned);
    CU_ASSERT(st->writes_stored >= owned - RR_NEWER);
    CU_ASSERT(st->items_seen >= RR_KEYS);
}

static void test_realresync_lazy(void)
{
    uint32_t owned, primary;
    rr_owned(&owned, &primary);
    cb_realworld_stats ws;
    rr_run(CB_RESYNC_LAZY, &ws);
    const rr_state *r = &rr_st;
    printf("\n    lazy: hits %llu misses %llu (primary on server 0, not overwritten: %u) ",
           (unsigned long long)r->reads.hits, (unsigned long long)r->reads.misses, primary);
    CU_ASSERT(r->reads.misses >= primary && primary > 0);
    CU_ASSERT_EQUAL(r->events[CB_EVENT_RESYNC_START], 0);
    CU_ASSERT_EQUAL(ws.resync.runs, 0);
    CU_ASSERT_EQUAL(ws.resync_probes, 0);
}

/* resync = warm needs a router, and no queue transport; values past warm are refused. */
static void test_realresync_refused(void)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    cb_placement *p = cb_test_placement(1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    cb_router_config rc = cb_router_config_default();
    cb_realworld_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.server_count = 1;
    cfg.client_count = 1;
    cfg.servers = &a;
    cfg.client = cb_client_config_default();
    cfg.resync = CB_RESYNC_WARM;
    cb_realworld *w = NULL;
    CU_ASSERT_EQUAL(cb_realworld_new(&cfg, &w), CB_ERR_INVALID); /* no router */
    cfg.router = &rc;
    cfg.placement = p;
    cfg.resync = 7;
    CU_ASSERT_EQUAL(cb_realworld_new(&cfg, &w), CB_ERR_INVALID);
    cfg.resync = CB_RESYNC_WARM;
    CU_ASSERT_EQUAL(cb_realworld_new(&cfg, &w), CB_ERR_OK);
    cb_realworld_del(w);
    cb_placement_del(p);
}

static const cb_test_case tests[] = {
    {"warm_brings_keys_back", test_realresync_warm},
    {"lazy_leaves_misses", test_realresync_lazy},
    {"warm_needs_router", test_realresync_refused},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_realresync", tests)
