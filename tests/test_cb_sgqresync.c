/*
 * test_cb_sgqresync.c: warm resync over the queue transport inside SimGrid (cb_sgworld with
 * transport = queue and resync = warm): the broker is node S + C, the resyncer node
 * S + C + 1, and the resyncer's SCANs and versioned SETs go through the broker like any
 * client's requests (docs/simulator.md, "Queue transport").
 *
 * R = 3 of 6 servers (rendezvous, tests/cb_test_repl.h), one router writing `all` and
 * reading `primary`. 300 keys are written; servers 0 and 3 crash at 100 ms and recover
 * empty at 101 ms; keys 0..99 are overwritten from 102 ms, racing the two resyncs (one at a
 * time: server 0's, then server 3's); every key is read from 400 ms.
 *   - warm: every read hits with the newest value; the broker carries the resyncer's
 *     traffic (more publishes than the same run with lazy, at least one request and one
 *     reply per SCAN and per SET);
 *   - lazy: the not-overwritten keys whose primary is server 0 or 3 miss, exactly those;
 *   - the same seed gives the same completions and events (a hash), with jitter on so that
 *     the seed matters: another seed gives another hash.
 * Each simulation runs in a forked child (one SimGrid run per process).
 */
#include <stdio.h>
#include <string.h>

#include "cb_err.h"
#include "cb_rng.h"
#include "cb_sgworld.h"
#include "cb_test.h"
#include "cb_test_fork.h"
#include "cb_test_repl.h"

#define QR_MS      1000000ull
#define QR_US      1000ull
#define QR_SERVERS 6u
#define QR_KEYS    300u
#define QR_NEWER   100u /* keys 0..QR_NEWER-1 are overwritten while the resyncs run */
#define QR_CRASH   (100 * QR_MS)
#define QR_RECOVER (101 * QR_MS)
#define QR_BROKER  (QR_SERVERS + 1u)      /* node S + C */
#define QR_RESYNC  (QR_SERVERS + 1u + 1u) /* node S + C + 1 */

typedef struct qr_arg {
    uint32_t resync;
    uint64_t seed;
    uint64_t jitter_ns;
    int broker_crash; /* the broker crashes at 105 ms (during the first resync) for 1 ms */
} qr_arg;

typedef struct qr_result {
    int rc;
    int phase;
    cb_test_reads reads;
    uint64_t events[32];
    uint64_t resync_start_ns[2], resync_done_ns[2];
    uint32_t resync_peer[2];
    uint32_t resync_node, resync_starts, resync_dones;
    uint32_t foreign_events; /* events from a node that is none of S, C, the resyncer */
    uint64_t write_done_ns;  /* the last completion of the first write phase */
    uint64_t hash;           /* every completion and event, in order */
    cb_sgworld_stats stats;
} qr_result;

typedef struct qr_state {
    qr_result *r;
    cb_test_phases w;
    uint32_t done_writes;
    uint32_t gen[QR_KEYS];
} qr_state;

#define QR_READ_AT (400 * QR_MS)

static void qr_mix(qr_result *r, uint64_t v)
{
    r->hash = cb_rng_mix64(r->hash ^ v);
}

static int qr_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op, uint32_t *server,
                   uint64_t *wake_ns)
{
    (void)client, (void)server;
    qr_state *s = user;
    int rc = cb_test_phases_next(&s->w, now_ns, op, wake_ns);
    s->r->phase = s->w.phase;
    return rc;
}

static void qr_complete(void *user, uint32_t client, const cb_completion *c)
{
    qr_state *s = user;
    qr_result *r = s->r;
    cb_test_reads_count(&r->reads, c, s->gen);
    if (c->op == CB_OP_SET && ++s->done_writes == QR_KEYS) {
        r->write_done_ns = c->complete_ns;
    }
    qr_mix(r, client);
    qr_mix(r, c->user_data);
    qr_mix(r, c->outcome);
    qr_mix(r, c->attempts);
    qr_mix(r, c->issue_ns);
    qr_mix(r, c->complete_ns);
    for (uint32_t i = 0; i < c->value_len; i++) {
        qr_mix(r, c->value[i]);
    }
}

static void qr_event(void *user, uint32_t node, const cb_event *e, uint64_t now_ns)
{
    qr_state *s = user;
    qr_result *r = s->r;
    r->events[e->kind < 32 ? e->kind : 0]++;
    qr_mix(r, node);
    qr_mix(r, e->kind);
    qr_mix(r, now_ns);
    qr_mix(r, (uint64_t)(int64_t)e->detail);
    if (e->kind == CB_EVENT_RESYNC_START || e->kind == CB_EVENT_RESYNC_DONE) {
        r->resync_node = node;
    }
    if (e->kind == CB_EVENT_RESYNC_START && r->resync_starts < 2) {
        r->resync_start_ns[r->resync_starts++] = now_ns;
    } else if (e->kind == CB_EVENT_RESYNC_DONE && r->resync_dones < 2) {
        r->resync_done_ns[r->resync_dones++] = now_ns;
    }
    /* The resyncer is the only extra node that reports events (faults name servers). */
    if (node >= QR_BROKER && node != QR_RESYNC) {
        r->foreign_events++;
    }
}

/* The resync events' peer (the server warmed) is in the action, not the event. */
static void qr_action(void *user, uint32_t node, const cb_action *a, uint64_t now_ns)
{
    qr_state *s = user;
    qr_result *r = s->r;
    (void)node, (void)now_ns;
    if (a->kind == CB_ACTION_EVENT && a->event.kind == CB_EVENT_RESYNC_START &&
        r->resync_starts < 2) {
        r->resync_peer[r->resync_starts] = a->peer; /* the event hook comes next */
    }
}

static void qr_child(const void *arg, void *result)
{
    const qr_arg *a = arg;
    static qr_state s;
    memset(&s, 0, sizeof s);
    s.r = result;
    s.w = (cb_test_phases){QR_KEYS, QR_NEWER, {0, 102 * QR_MS, QR_READ_AT}, 0, 0, s.gen, "", ""};
    cb_placement *p = cb_test_placement(QR_SERVERS);
    if (p == NULL) {
        s.r->rc = CB_ERR_NOMEM;
        return;
    }
    cb_router_config rc = cb_test_resync_router();
    cb_sgworld_config cfg = cb_sgworld_config_default();
    cfg.server_count = QR_SERVERS;
    cfg.client_count = 1;
    cfg.server.store.memory_bytes_max = 1u << 22;
    cfg.client.outstanding_max = 4;
    cfg.client.timeout_ns = 2 * QR_MS;
    cfg.client.timeout_max_ns = 4 * QR_MS;
    cfg.client.attempts_max = 2;
    cfg.latency_ns = 100 * QR_US;
    cfg.jitter_ns = a->jitter_ns;
    cfg.seed = a->seed;
    cfg.transport = CB_SGWORLD_QUEUE;
    cfg.broker = cb_broker_config_default();
    cfg.router = &rc;
    cfg.placement = p;
    cfg.resync = a->resync;
    cfg.context_factory = CB_TEST_SG_FACTORY;
    cb_sgworld_fault faults[6] = {
        {.at_ns = QR_CRASH, .kind = CB_SGWORLD_FAULT_CRASH, .node = 0},
        {.at_ns = QR_CRASH, .kind = CB_SGWORLD_FAULT_CRASH, .node = 3},
        {.at_ns = QR_RECOVER, .kind = CB_SGWORLD_FAULT_RECOVER, .node = 0},
        {.at_ns = QR_RECOVER, .kind = CB_SGWORLD_FAULT_RECOVER, .node = 3},
        {.at_ns = 105 * QR_MS, .kind = CB_SGWORLD_FAULT_CRASH, .node = QR_BROKER},
        {.at_ns = 106 * QR_MS, .kind = CB_SGWORLD_FAULT_RECOVER, .node = QR_BROKER},
    };
    cfg.faults = faults;
    cfg.fault_count = a->broker_crash ? 6 : 4;
    cb_world_hooks hooks = {&s, qr_next, qr_complete, qr_event, qr_action};
    s.r->rc = cb_sgworld_run(&cfg, &hooks, UINT64_MAX, &s.r->stats);
    cb_placement_del(p);
}

static qr_result *qr_run_with(uint32_t resync, uint64_t seed, uint64_t jitter_ns, int broker_crash,
                              qr_result *out)
{
    qr_arg a = {resync, seed, jitter_ns, broker_crash};
    CU_ASSERT_EQUAL_FATAL(cb_test_fork(qr_child, &a, out, sizeof *out), 0);
    CU_ASSERT_EQUAL_FATAL(out->rc, CB_ERR_OK);
    CU_ASSERT_EQUAL(out->phase, CB_TEST_READ);
    CU_ASSERT_EQUAL(out->reads.failed, 0);
    CU_ASSERT_EQUAL(out->reads.stale, 0);
    CU_ASSERT_EQUAL(out->reads.hits + out->reads.misses, QR_KEYS);
    CU_ASSERT_EQUAL(out->stats.faults_applied, broker_crash ? 6 : 4);
    CU_ASSERT_EQUAL(out->events[CB_EVENT_CRASH], broker_crash ? 3 : 2);
    CU_ASSERT_EQUAL(out->events[CB_EVENT_RECOVER], broker_crash ? 3 : 2);
    CU_ASSERT_EQUAL(out->foreign_events, broker_crash ? 2 : 0); /* the broker's faults */
    /* The setting the test relies on: every key is written before the crash. */
    CU_ASSERT(out->write_done_ns > 0 && out->write_done_ns < QR_CRASH);
    /* Everything went through the broker; nothing was refused. */
    CU_ASSERT(out->stats.broker.delivered > 0);
    CU_ASSERT_EQUAL(out->stats.broker.rejected, 0);
    CU_ASSERT_EQUAL(out->stats.broker.protocol_errors, 0);
    CU_ASSERT_EQUAL(out->stats.queue_nacks, 0);
    return out;
}

static qr_result *qr_run(uint32_t resync, uint64_t seed, uint64_t jitter_ns, qr_result *out)
{
    return qr_run_with(resync, seed, jitter_ns, 0, out);
}

/* Keys whose first R candidates include server 0 or 3, and the not-overwritten ones whose
 * primary is one of them. */
static void qr_owned(uint32_t *owned, uint32_t *primary)
{
    CU_ASSERT_EQUAL_FATAL(
        cb_test_owned(QR_SERVERS, QR_KEYS, QR_NEWER, 1u << 0 | 1u << 3, owned, primary), 0);
}

static qr_result qr_lazy_result;

static void test_qresync_lazy(void)
{
    uint32_t owned, primary;
    qr_owned(&owned, &primary);
    CU_ASSERT(owned > QR_KEYS / 3 && primary > 0);
    const qr_result *r = qr_run(CB_RESYNC_LAZY, 0x5eed, 0, &qr_lazy_result);
    printf("\n    lazy: hits %llu misses %llu (primary on server 0 or 3, not overwritten: %u); "
           "broker published %llu ",
           (unsigned long long)r->reads.hits, (unsigned long long)r->reads.misses, primary,
           (unsigned long long)r->stats.broker.published);
    CU_ASSERT_EQUAL(r->reads.misses, primary);
    CU_ASSERT_EQUAL(r->events[CB_EVENT_RESYNC_START], 0);
    CU_ASSERT_EQUAL(r->stats.resync.runs, 0);
}

static void test_qresync_warm(void)
{
    static qr_result res;
    uint32_t owned, primary;
    qr_owned(&owned, &primary);
    const qr_result *r = qr_run(CB_RESYNC_WARM, 0x5eed, 0, &res);
    const cb_resync_stats *st = &r->stats.resync;
    printf("\n    warm: hits %llu misses %llu; keys on server 0 or 3 %u; resyncs %.3f..%.3f "
           "and %.3f..%.3f ms; scans %llu, copies owned %llu stored %llu superseded %llu; "
           "broker published %llu ",
           (unsigned long long)r->reads.hits, (unsigned long long)r->reads.misses, owned,
           (double)r->resync_start_ns[0] / 1e6, (double)r->resync_done_ns[0] / 1e6,
           (double)r->resync_start_ns[1] / 1e6, (double)r->resync_done_ns[1] / 1e6,
           (unsigned long long)st->scans, (unsigned long long)st->items_owned,
           (unsigned long long)st->writes_stored, (unsigned long long)st->writes_superseded,
           (unsigned long long)r->stats.broker.published);
    CU_ASSERT_EQUAL(r->reads.hits, QR_KEYS);
    CU_ASSERT_EQUAL(r->reads.misses, 0);
    /* Two resyncs, one at a time, in server order, by node S + C + 1. */
    CU_ASSERT_EQUAL(r->resync_starts, 2);
    CU_ASSERT_EQUAL(r->resync_dones, 2);
    CU_ASSERT_EQUAL(r->resync_node, QR_RESYNC);
    CU_ASSERT_EQUAL(r->resync_peer[0], 0);
    CU_ASSERT_EQUAL(r->resync_peer[1], 3);
    CU_ASSERT_EQUAL(r->resync_start_ns[0], QR_RECOVER); /* at the recovery */
    CU_ASSERT(r->resync_done_ns[0] > r->resync_start_ns[0]);
    CU_ASSERT(r->resync_start_ns[1] >= r->resync_done_ns[0]);
    CU_ASSERT(r->resync_done_ns[1] > r->resync_start_ns[1] && r->resync_done_ns[1] < QR_READ_AT);
    CU_ASSERT_EQUAL(st->runs, 2);
    CU_ASSERT_EQUAL(st->runs_done, 2);
    CU_ASSERT_EQUAL(st->scans_failed, 0);
    CU_ASSERT_EQUAL(st->writes_failed, 0);
    CU_ASSERT_EQUAL(st->writes, st->writes_stored + st->writes_superseded);
    CU_ASSERT(st->items_owned >= owned);
    CU_ASSERT(st->writes_stored >= owned - QR_NEWER);
    /* The resyncer's requests and the servers' replies to them crossed the broker: the
     * same workload with lazy published at least 2 x (SCANs + SETs) fewer messages. */
    CU_ASSERT(r->stats.broker.published >=
              qr_lazy_result.stats.broker.published + 2 * (st->scans + st->writes));
    CU_ASSERT(qr_lazy_result.stats.broker.published > 0); /* lazy_leaves_misses ran first */
}

/* Same seed, same run; the jitter draws make the seed matter. */
static void test_qresync_deterministic(void)
{
    static qr_result a, b, c;
    qr_run(CB_RESYNC_WARM, 42, 20 * QR_US, &a);
    qr_run(CB_RESYNC_WARM, 42, 20 * QR_US, &b);
    qr_run(CB_RESYNC_WARM, 43, 20 * QR_US, &c);
    printf("\n    hashes %016llx %016llx %016llx, jittered %llu ", (unsigned long long)a.hash,
           (unsigned long long)b.hash, (unsigned long long)c.hash,
           (unsigned long long)a.stats.messages_jittered);
    CU_ASSERT(a.stats.messages_jittered > 0);
    CU_ASSERT_EQUAL(a.hash, b.hash);
    CU_ASSERT_EQUAL(a.stats.broker.published, b.stats.broker.published);
    CU_ASSERT_EQUAL(a.stats.end_ns, b.stats.end_ns);
    CU_ASSERT_NOT_EQUAL(a.hash, c.hash);
    CU_ASSERT_EQUAL(a.reads.hits, QR_KEYS);
    CU_ASSERT_EQUAL(c.reads.hits, QR_KEYS);
}

/* The broker crashes for 1 ms in the middle of server 0's resync: the resyncer's requests
 * in flight are lost and retried after their timeout (2 ms), through the recovered broker,
 * to which the resyncer has subscribed again; both resyncs finish, nothing is read stale. */
static void test_qresync_broker_crash(void)
{
    static qr_result res;
    const qr_result *r = qr_run_with(CB_RESYNC_WARM, 0x5eed, 0, 1, &res);
    const cb_resync_stats *st = &r->stats.resync;
    printf("\n    broker crash 105..106 ms: hits %llu misses %llu; resyncs %.3f..%.3f and "
           "%.3f..%.3f ms; scans %llu failed %llu, writes %llu failed %llu; client timeouts "
           "%llu ",
           (unsigned long long)r->reads.hits, (unsigned long long)r->reads.misses,
           (double)r->resync_start_ns[0] / 1e6, (double)r->resync_done_ns[0] / 1e6,
           (double)r->resync_start_ns[1] / 1e6, (double)r->resync_done_ns[1] / 1e6,
           (unsigned long long)st->scans, (unsigned long long)st->scans_failed,
           (unsigned long long)st->writes, (unsigned long long)st->writes_failed,
           (unsigned long long)r->stats.clients.timeouts);
    CU_ASSERT_EQUAL(st->runs, 2);
    CU_ASSERT_EQUAL(st->runs_done, 2);
    CU_ASSERT(r->resync_done_ns[0] > 106 * QR_MS); /* it was under way at the crash */
    CU_ASSERT(r->stats.clients.retries > 0);       /* requests lost with the broker */
    CU_ASSERT_EQUAL(r->reads.hits, QR_KEYS);
}

static const cb_test_case tests[] = {
    {"lazy_leaves_misses", test_qresync_lazy},
    {"warm_through_the_broker", test_qresync_warm},
    {"same_seed_same_run", test_qresync_deterministic},
    {"broker_crash_during_resync", test_qresync_broker_crash},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_sgqresync", tests)
