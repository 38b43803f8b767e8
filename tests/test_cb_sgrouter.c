/*
 * test_cb_sgrouter.c: replication inside SimGrid (cb_sgworld with `router`): R = 3,
 * quorum writes and quorum reads over 5 servers. Two servers crash together mid-run (so
 * keys with both among their replicas need a spare to reach a quorum) and recover empty,
 * one after the other. Every operation gets exactly one outcome, no read returns a value
 * older than the last acknowledged write of its key, and the routers fail over, eject the
 * crashed servers and probe them back. A run without faults is the control: no failover.
 *
 * As in test_cb_sgfaults.c, every simulation runs in a forked child (one SimGrid run per
 * process) that writes its result struct into a pipe and exits with exit(0), so that
 * LeakSanitizer checks it under CB_SANITIZE (with SimGrid's thread contexts).
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cb_err.h"
#include "cb_sgworld.h"
#include "cb_test.h"
#include "cb_test_fork.h"

#define SR_SERVERS  5u
#define SR_CLIENTS  3u
#define SR_KEYS     8u
#define SR_OPS_MAX  1500u /* per client */
#define SR_MS       1000000ull
#define SR_VALUE_SZ 12u

typedef struct sr_arg {
    int crash; /* crash servers 0 and 1 at 30 ms, recover them at 100 and 140 ms */
} sr_arg;

typedef struct sr_result {
    int rc;
    cb_sgworld_stats stats;
    uint32_t issued, completed;
    uint32_t twice; /* completions for an op already completed, or never issued */
    uint32_t stale; /* reads older than the last acknowledged write of their key */
    uint32_t hits, failed;
    uint32_t failover_events, eject_events;
    uint8_t done[SR_CLIENTS][SR_OPS_MAX];
} sr_result;

/* Each client writes and reads its own keys, one operation at a time, so the last write it
 * saw acknowledged is what a correct read must return (or something newer). */
typedef struct sr_client {
    uint32_t issued;
    uint32_t acked[SR_KEYS]; /* sequence number of the last acknowledged write (0: none) */
    uint32_t pending_key;
    uint32_t pending_seq;
    uint8_t pending_set;
    uint8_t keys[SR_KEYS][4];
    uint8_t value[SR_VALUE_SZ + 1];
} sr_client;

typedef struct sr_state {
    sr_result *r;
    sr_client clients[SR_CLIENTS];
} sr_state;

static int sr_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op, uint32_t *server,
                   uint64_t *wake_ns)
{
    sr_state *s = user;
    sr_client *c = &s->clients[client];
    if (now_ns >= 200 * SR_MS || c->issued >= SR_OPS_MAX) {
        *wake_ns = UINT64_MAX;
        return 0;
    }
    uint32_t seq = ++c->issued; /* 1-based: 0 means "never written" */
    uint32_t key = seq % SR_KEYS;
    c->pending_key = key;
    c->pending_seq = seq;
    c->pending_set = seq % 3 != 0;
    op->op = c->pending_set ? CB_OP_SET : CB_OP_GET;
    op->key = c->keys[key];
    op->key_len = sizeof c->keys[key];
    op->user_data = seq;
    if (c->pending_set) {
        snprintf((char *)c->value, sizeof c->value, "%012u", seq);
        op->value = c->value;
        op->value_len = SR_VALUE_SZ;
    }
    *server = 0; /* ignored with a router */
    s->r->issued++;
    return 1;
}

static uint32_t sr_value_seq(const cb_completion *c)
{
    uint32_t v = 0;
    for (size_t i = 0; i < c->value_len && i < SR_VALUE_SZ; i++) {
        v = v * 10u + (uint32_t)(c->value[i] - '0');
    }
    return v;
}

static void sr_complete(void *user, uint32_t client, const cb_completion *c)
{
    sr_state *s = user;
    sr_result *r = s->r;
    sr_client *cl = &s->clients[client];
    uint64_t seq = c->user_data;
    r->completed++;
    if (seq == 0 || seq > cl->issued || r->done[client][seq - 1]) {
        r->twice++;
        return;
    }
    r->done[client][seq - 1] = 1;
    int ok = c->outcome != CB_OUTCOME_TIMEOUT && c->outcome != CB_OUTCOME_ERROR;
    r->failed += !ok;
    if (!ok) {
        return;
    }
    if (cl->pending_set) {
        cl->acked[cl->pending_key] = (uint32_t)seq;
        return;
    }
    uint32_t last = cl->acked[cl->pending_key];
    if (c->outcome == CB_OUTCOME_HIT) {
        r->hits++;
        r->stale += sr_value_seq(c) < last;
    } else {
        r->stale += last != 0; /* a miss of an acknowledged write */
    }
}

static void sr_event(void *user, uint32_t node, const cb_event *e, uint64_t now_ns)
{
    sr_state *s = user;
    (void)node;
    (void)now_ns;
    s->r->failover_events += e->kind == CB_EVENT_FAILOVER;
    s->r->eject_events += e->kind == CB_EVENT_EJECT;
}

static int sr_placement(cb_placement **out)
{
    cb_placement_node nodes[SR_SERVERS];
    char names[SR_SERVERS][16];
    for (uint32_t i = 0; i < SR_SERVERS; i++) {
        snprintf(names[i], sizeof names[i], "server%u", i);
        nodes[i] = (cb_placement_node){i, 1, names[i]};
    }
    cb_placement_config pc;
    cb_placement_config_default(&pc);
    pc.seed = 7;
    return cb_placement_new(CB_PLACEMENT_RENDEZVOUS, &pc, nodes, SR_SERVERS, NULL, out);
}

static void sr_child(const void *varg, void *result)
{
    const sr_arg *arg = varg;
    sr_result *r = result;
    static sr_state s;
    memset(&s, 0, sizeof s);
    s.r = r;
    for (uint32_t c = 0; c < SR_CLIENTS; c++) {
        for (uint32_t k = 0; k < SR_KEYS; k++) {
            s.clients[c].keys[k][0] = 'k';
            s.clients[c].keys[k][1] = (uint8_t)('a' + c);
            s.clients[c].keys[k][2] = (uint8_t)('0' + k);
            s.clients[c].keys[k][3] = '!';
        }
    }
    cb_placement *pl = NULL;
    if (sr_placement(&pl) != CB_ERR_OK) {
        r->rc = CB_ERR_NOMEM;
        return;
    }
    cb_router_config rc = cb_router_config_default();
    rc.replicas = 3;
    rc.read_policy = CB_ROUTER_READ_QUORUM;
    rc.write_policy = CB_ROUTER_WRITE_QUORUM;
    rc.eject_after = 2;
    rc.eject_for_ns = 20 * SR_MS;
    cb_sgworld_config cfg = cb_sgworld_config_default();
    cfg.server_count = SR_SERVERS;
    cfg.client_count = SR_CLIENTS;
    cfg.client.outstanding_max = 1;
    cfg.client.timeout_ns = 5 * SR_MS;
    cfg.client.attempts_max = 1;
    cfg.router = &rc;
    cfg.placement = pl;
    cfg.context_factory = CB_TEST_SG_FACTORY;
    cb_sgworld_fault faults[4] = {
        {.at_ns = 30 * SR_MS, .kind = CB_SGWORLD_FAULT_CRASH, .node = 0},
        {.at_ns = 30 * SR_MS, .kind = CB_SGWORLD_FAULT_CRASH, .node = 1},
        {.at_ns = 100 * SR_MS, .kind = CB_SGWORLD_FAULT_RECOVER, .node = 0},
        {.at_ns = 140 * SR_MS, .kind = CB_SGWORLD_FAULT_RECOVER, .node = 1},
    };
    if (arg->crash) {
        cfg.faults = faults;
        cfg.fault_count = 4;
    }
    cb_world_hooks hooks = {&s, sr_next, sr_complete, sr_event, NULL};
    r->rc = cb_sgworld_run(&cfg, &hooks, UINT64_MAX, &r->stats);
    cb_placement_del(pl);
}

static sr_result *sr_run(int crash)
{
    static sr_result result;
    sr_arg arg = {crash};
    CU_ASSERT_EQUAL_FATAL(cb_test_fork(sr_child, &arg, &result, sizeof result), 0);
    CU_ASSERT_EQUAL_FATAL(result.rc, CB_ERR_OK);
    return &result;
}

static void sr_check_one_outcome_each(const sr_result *r)
{
    CU_ASSERT(r->issued > 300);
    CU_ASSERT_EQUAL(r->completed, r->issued);
    CU_ASSERT_EQUAL(r->twice, 0);
    CU_ASSERT_EQUAL(r->stats.routers.ops, r->issued);
    CU_ASSERT_EQUAL(r->stats.routers.completed, r->issued);
    CU_ASSERT_EQUAL(r->stale, 0);
    CU_ASSERT_EQUAL(r->stats.routers.stale_returned, 0);
    CU_ASSERT(r->hits > 0);
}

static void test_quorum_with_server_crashes(void)
{
    const sr_result *r = sr_run(1);
    printf("\n    ops %u, hits %u, failovers %llu, ejections %llu, probes %llu ", r->issued,
           r->hits, (unsigned long long)r->stats.routers.failovers,
           (unsigned long long)r->stats.routers.ejections,
           (unsigned long long)r->stats.routers.probes);
    sr_check_one_outcome_each(r);
    CU_ASSERT_EQUAL(r->stats.faults_applied, 4);
    CU_ASSERT(r->stats.routers.failovers > 0);
    CU_ASSERT(r->failover_events > 0);
    CU_ASSERT(r->stats.routers.ejections > 0);
    CU_ASSERT(r->eject_events > 0);
    CU_ASSERT(r->stats.routers.probes > 0);
    CU_ASSERT(r->stats.routers.probes_passed > 0); /* the servers came back */
    /* Spares make up the quorum: no operation fails for the crashes. */
    CU_ASSERT_EQUAL(r->failed, 0);
}

static void test_quorum_without_faults(void)
{
    const sr_result *r = sr_run(0);
    sr_check_one_outcome_each(r);
    CU_ASSERT_EQUAL(r->stats.routers.failovers, 0);
    CU_ASSERT_EQUAL(r->stats.routers.ejections, 0);
    CU_ASSERT_EQUAL(r->failed, 0);
    /* Quorum writes reach all 3 replicas: 3 sub-requests per SET, 2 per quorum GET. */
    CU_ASSERT(r->stats.routers.sub_requests >= 2u * r->issued);
}

static const cb_test_case tests[] = {
    {"quorum_with_server_crashes", test_quorum_with_server_crashes},
    {"quorum_without_faults", test_quorum_without_faults},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_sgrouter", tests)
