/*
 * test_cb_router.c: replication policies, failover and ejection, through the in-memory world.
 *
 * Routers run inside cb_memworld (one per client) over R = 3 of 5-6 servers on a lossless
 * stream network, so every timeout is a crash. A reference model keeps, per key, every write
 * that completed and checks each read: the version it returned must be at least the newest
 * version written before the read began, unless the policy allows a stale read there. The
 * model knows which: with W writes acknowledged and Q replicas read, W + Q > R guarantees
 * overlap, so a stale read needs at least W + Q - R replicas to have lost the write, i.e.
 * that many servers crashed (or were still ejected after recovering) between the write's
 * issue and the read's end; with W + Q <= R (primary_async, or quorum writes read from one
 * replica) stale reads are allowed and counted. Every operation must complete exactly once.
 * Scripted cases check failover on a crashed primary, ejection after K failures and the
 * probe that brings a node back, read repair, and determinism (same seed, same trace hash).
 */
#include <stdio.h>
#include <string.h>

#include "cb_err.h"
#include "cb_memworld.h"
#include "cb_router.h"
#include "cb_test.h"
#include "cb_test_repl.h"

#define RT_US           1000ull
#define RT_MS           1000000ull
#define RT_KEYS         64u
#define RT_OPS_MAX      10000u
#define RT_WRITES_MAX   RT_OPS_MAX
#define RT_SERVERS_MAX  8u
#define RT_FAULTS_MAX   8u
#define RT_KEY_WRITES   1024u
#define RT_EJECT_FOR_NS (20u * RT_MS)

typedef struct rt_write {
    uint64_t version;
    uint64_t issue_ns;
    uint64_t complete_ns;
    int deleted; /* a versioned DELETE: the key must read as absent (a tombstone) */
} rt_write;

typedef struct rt_key {
    rt_write done[RT_KEY_WRITES]; /* writes that completed (STORED, or a DELETE acknowledged
                                   * DELETED or NOT_FOUND), in completion order */
    uint32_t count;
} rt_key;

typedef struct rt_op {
    uint8_t op;
    uint8_t completions;
    uint32_t key;
    uint64_t issue_ns;
} rt_op;

typedef struct rt_run {
    /* setup */
    uint32_t servers, clients, ops;
    uint32_t delete_tenths; /* of every 10 operations: 4 SETs, this many DELETEs, GETs */
    cb_router_config rc;
    cb_memworld_fault faults[RT_FAULTS_MAX];
    size_t fault_count;
    uint64_t seed;
    /* state */
    cb_rng rng;
    uint32_t submitted;
    rt_op ops_log[RT_OPS_MAX];
    rt_key keys[RT_KEYS];
    /* results */
    uint32_t completed, duplicates, reads, stale, stale_allowed, violations, timeouts, errors;
    uint32_t deletes, deleted_misses; /* DELETEs acknowledged; reads that found a deletion */
    uint64_t trace_hash;
    cb_router_stats totals;
    uint64_t events[16];
} rt_run;

static void rt_hash(rt_run *t, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        t->trace_hash = (t->trace_hash ^ b[i]) * 0x100000001b3ull; /* FNV-1a 64 */
    }
}

static size_t rt_key_name(uint32_t key, uint8_t *out)
{
    return (size_t)snprintf((char *)out, 16, "key%u", key);
}

static int rt_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op, uint32_t *server,
                   uint64_t *wake_ns)
{
    static uint8_t key[16];
    static uint8_t value[32];
    rt_run *t = user;
    (void)client;
    *server = 0;
    if (t->submitted >= t->ops) {
        *wake_ns = UINT64_MAX;
        return 0;
    }
    uint32_t idx = t->submitted++;
    rt_op *o = &t->ops_log[idx];
    o->key = (uint32_t)cb_rng_below(&t->rng, RT_KEYS);
    uint64_t draw = cb_rng_below(&t->rng, 10);
    o->op = draw < 4 ? CB_OP_SET : draw < 4 + t->delete_tenths ? CB_OP_DELETE : CB_OP_GET;
    o->issue_ns = now_ns;
    op->op = o->op;
    op->key = key;
    op->key_len = (uint8_t)rt_key_name(o->key, key);
    if (o->op == CB_OP_SET) {
        memset(value, 'a' + (int)(idx % 26), sizeof value);
        op->value = value;
        op->value_len = 16 + idx % 16;
    }
    op->user_data = idx;
    return 1;
}

/* Servers that crashed, or were still coming back, at some time in [from, to]. */
static uint32_t rt_disturbed(const rt_run *t, uint64_t from, uint64_t to)
{
    uint32_t count = 0;
    for (uint32_t s = 0; s < t->servers; s++) {
        uint64_t start = UINT64_MAX;
        int hit = 0;
        for (size_t i = 0; i < t->fault_count; i++) {
            const cb_memworld_fault *f = &t->faults[i];
            if (f->server != s) {
                continue;
            }
            if (f->kind == CB_MEMWORLD_CRASH) {
                start = f->at_ns;
            } else if (start != UINT64_MAX) {
                uint64_t end = f->at_ns + RT_EJECT_FOR_NS + 10u * RT_MS;
                hit |= start <= to && end >= from;
                start = UINT64_MAX;
            }
        }
        hit |= start != UINT64_MAX && start <= to; /* never recovered */
        count += (uint32_t)hit;
    }
    return count;
}

/* Replicas that must lose a write for a read to miss it; 0: stale reads always allowed. */
static uint32_t rt_loss_needed(const cb_router_config *rc)
{
    uint32_t r = rc->replicas, majority = r / 2 + 1;
    uint32_t w = rc->write_policy == CB_ROUTER_WRITE_ALL      ? r
                 : rc->write_policy == CB_ROUTER_WRITE_QUORUM ? majority
                                                              : 1;
    uint32_t q = rc->read_policy == CB_ROUTER_READ_QUORUM ? majority : 1;
    return w + q > r ? w + q - r : 0;
}

static void rt_check_read(rt_run *t, const rt_op *o, const cb_completion *c)
{
    const rt_key *k = &t->keys[o->key];
    const rt_write *need = NULL;
    for (uint32_t i = 0; i < k->count; i++) {
        if (k->done[i].complete_ns < o->issue_ns &&
            (need == NULL || k->done[i].version > need->version)) {
            need = &k->done[i];
        }
    }
    t->reads++;
    /* A hit's version, or a miss's tombstone version (0: none). After a delete the key
     * must miss, unless a newer write got in; after a set, the read must see its version
     * or newer (a newer delete's miss included). */
    uint64_t got = c->number;
    int hit = c->outcome == CB_OUTCOME_HIT;
    if (need != NULL && need->deleted && !hit) {
        t->deleted_misses++;
    }
    if (need == NULL || (need->deleted ? !hit || got > need->version : got >= need->version)) {
        return;
    }
    t->stale++;
    uint32_t needed = rt_loss_needed(&t->rc);
    if (needed == 0 || rt_disturbed(t, need->issue_ns, c->complete_ns) >= needed) {
        t->stale_allowed++;
        return;
    }
    t->violations++;
    printf("  violation: key%u read [%llu, %llu] got %llx, write %llx done at %llu\n", o->key,
           (unsigned long long)o->issue_ns, (unsigned long long)c->complete_ns,
           (unsigned long long)got, (unsigned long long)need->version,
           (unsigned long long)need->complete_ns);
}

static void rt_complete(void *user, uint32_t client, const cb_completion *c)
{
    rt_run *t = user;
    (void)client;
    CU_ASSERT_FATAL(c->user_data < t->submitted);
    rt_op *o = &t->ops_log[c->user_data];
    if (o->completions++ > 0) {
        t->duplicates++;
        return;
    }
    t->completed++;
    t->timeouts += c->outcome == CB_OUTCOME_TIMEOUT;
    t->errors += c->outcome == CB_OUTCOME_ERROR;
    if (o->op == CB_OP_GET && (c->outcome == CB_OUTCOME_HIT || c->outcome == CB_OUTCOME_MISS)) {
        rt_check_read(t, o, c);
    } else if (o->op == CB_OP_SET && c->outcome == CB_OUTCOME_STORED) {
        rt_key *k = &t->keys[o->key];
        CU_ASSERT_FATAL(k->count < RT_KEY_WRITES);
        k->done[k->count++] = (rt_write){c->number, o->issue_ns, c->complete_ns, 0};
    } else if (o->op == CB_OP_DELETE &&
               (c->outcome == CB_OUTCOME_DELETED || c->outcome == CB_OUTCOME_NOT_FOUND)) {
        rt_key *k = &t->keys[o->key];
        CU_ASSERT_FATAL(k->count < RT_KEY_WRITES);
        CU_ASSERT(c->number > 0); /* replicated deletes carry the writer's version */
        k->done[k->count++] = (rt_write){c->number, o->issue_ns, c->complete_ns, 1};
        t->deletes++;
    }
}

static void rt_event(void *user, uint32_t node, const cb_event *e, uint64_t now_ns)
{
    rt_run *t = user;
    (void)node;
    (void)now_ns;
    if (e->kind < 16) {
        t->events[e->kind]++;
    }
}

static void rt_action(void *user, uint32_t node, const cb_action *a, uint64_t now_ns)
{
    rt_run *t = user;
    rt_hash(t, &node, sizeof node);
    rt_hash(t, &now_ns, sizeof now_ns);
    rt_hash(t, &a->kind, sizeof a->kind);
    rt_hash(t, &a->peer, sizeof a->peer);
    if (a->kind == CB_ACTION_SEND) {
        rt_hash(t, a->data, a->data_len);
    } else if (a->kind == CB_ACTION_COMPLETE) {
        rt_hash(t, &a->completion.outcome, sizeof a->completion.outcome);
        rt_hash(t, &a->completion.number, sizeof a->completion.number);
    }
}

static cb_placement *rt_placement(uint32_t servers)
{
    cb_placement *p = cb_test_placement(servers);
    CU_ASSERT_FATAL(p != NULL);
    return p;
}

static cb_memworld_config rt_world_config(const rt_run *t)
{
    cb_memworld_config mc;
    memset(&mc, 0, sizeof mc);
    mc.server_count = t->servers;
    mc.client_count = t->clients;
    mc.server = cb_server_config_default();
    mc.server.store.memory_bytes_max = 1u << 20;
    mc.client = cb_client_config_default();
    mc.client.outstanding_max = 4;
    mc.client.timeout_ns = 2 * RT_MS;
    mc.client.timeout_max_ns = 4 * RT_MS;
    mc.client.attempts_max = 2;
    mc.net.latency_ns = 100 * RT_US;
    mc.net.jitter_ns = 40 * RT_US;
    mc.net.queue_max = 4096;
    mc.net.bytes_max = 1u << 22;
    mc.net.node_count = t->servers + t->clients; /* streams: FIFO, lossless */
    mc.seed = t->seed;
    mc.faults = t->faults;
    mc.fault_count = t->fault_count;
    return mc;
}

/* Run t's workload to the end; every operation must complete exactly once. */
static void rt_execute(rt_run *t)
{
    cb_rng_init(&t->rng, t->seed);
    cb_placement *p = rt_placement(t->servers);
    cb_memworld_config mc = rt_world_config(t);
    mc.router = &t->rc;
    mc.placement = p;
    cb_memworld *w = NULL;
    CU_ASSERT_FATAL(cb_memworld_new(&mc, NULL, &w) == CB_ERR_OK);
    cb_world_hooks h = {t, rt_next, rt_complete, rt_event, rt_action};
    CU_ASSERT_EQUAL(cb_memworld_run(w, &h, UINT64_MAX), CB_ERR_OK);
    CU_ASSERT_EQUAL(t->completed, t->ops);
    CU_ASSERT_EQUAL(t->duplicates, 0);
    memset(&t->totals, 0, sizeof t->totals);
    for (uint32_t i = 0; i < t->clients; i++) {
        cb_router_stats st;
        cb_router_get_stats(cb_memworld_router(w, i), &st);
        CU_ASSERT_EQUAL(st.ops, st.completed);
        CU_ASSERT_EQUAL(cb_router_outstanding(cb_memworld_router(w, i)), 0);
        t->totals.failovers += st.failovers;
        t->totals.ejections += st.ejections;
        t->totals.probes_passed += st.probes_passed;
        t->totals.stale_replicas += st.stale_replicas;
        t->totals.stale_returned += st.stale_returned;
        t->totals.repairs += st.repairs;
        t->totals.propagations += st.propagations;
        t->totals.propagations_failed += st.propagations_failed;
        t->totals.no_node += st.no_node;
    }
    cb_memworld_del(w);
    cb_placement_del(p);
}

static void rt_setup(rt_run *t, uint32_t write_policy, uint32_t read_policy, uint32_t ops)
{
    memset(t, 0, sizeof *t);
    t->servers = 6;
    t->clients = 3;
    t->ops = ops;
    t->seed = cb_test_seed();
    t->rc = cb_router_config_default();
    t->rc.replicas = 3;
    t->rc.spares = 2;
    t->rc.write_policy = write_policy;
    t->rc.read_policy = read_policy;
    t->rc.read_repair = read_policy == CB_ROUTER_READ_QUORUM;
    t->rc.eject_after = 2;
    t->rc.eject_for_ns = RT_EJECT_FOR_NS;
}

/* Two servers crash and come back empty, one after the other, then one more. */
static void rt_crashes(rt_run *t)
{
    static const cb_memworld_fault faults[] = {
        {30 * RT_MS, 0, CB_MEMWORLD_CRASH, NULL, NULL},  {60 * RT_MS, 0, CB_MEMWORLD_RECOVER, NULL, NULL},
        {90 * RT_MS, 3, CB_MEMWORLD_CRASH, NULL, NULL},  {130 * RT_MS, 3, CB_MEMWORLD_RECOVER, NULL, NULL},
        {160 * RT_MS, 1, CB_MEMWORLD_CRASH, NULL, NULL}, {190 * RT_MS, 1, CB_MEMWORLD_RECOVER, NULL, NULL},
    };
    memcpy(t->faults, faults, sizeof faults);
    t->fault_count = sizeof faults / sizeof faults[0];
}

/* Without faults, no policy reads stale data where its quorums overlap, nothing times
 * out, and every operation completes once. */
static void test_router_policies_no_faults(void)
{
    static rt_run t;
    for (uint32_t wp = 0; wp <= CB_ROUTER_WRITE_PRIMARY_ASYNC; wp++) {
        for (uint32_t rp = 0; rp <= CB_ROUTER_READ_QUORUM; rp++) {
            rt_setup(&t, wp, rp, 3000);
            rt_execute(&t);
            CU_ASSERT_EQUAL(t.violations, 0);
            CU_ASSERT_EQUAL(t.timeouts, 0);
            CU_ASSERT_EQUAL(t.errors, 0);
            CU_ASSERT_EQUAL(t.totals.failovers, 0);
            if (rt_loss_needed(&t.rc) > 0) {
                CU_ASSERT_EQUAL(t.stale, 0);
            }
        }
    }
}

/* The end-to-end run: 10^4 operations per policy pair, R = 3 of 6 servers, three crashes
 * with empty recoveries. Reports stale reads and failovers per policy. */
static void test_router_e2e_crashes(void)
{
    static rt_run t;
    printf("\n  %-13s %-7s %6s %6s %7s %5s %5s %6s %6s %6s\n", "write", "read", "reads", "stale",
           "allowed", "tmo", "fail", "eject", "repair", "stRepl");
    for (uint32_t wp = 0; wp <= CB_ROUTER_WRITE_PRIMARY_ASYNC; wp++) {
        for (uint32_t rp = 0; rp <= CB_ROUTER_READ_QUORUM; rp++) {
            rt_setup(&t, wp, rp, RT_OPS_MAX);
            rt_crashes(&t);
            rt_execute(&t);
            printf("  %-13s %-7s %6u %6u %7u %5u %5llu %6llu %6llu %6llu\n",
                   cb_router_write_policy_name(wp), cb_router_read_policy_name(rp), t.reads,
                   t.stale, t.stale_allowed, t.timeouts, (unsigned long long)t.totals.failovers,
                   (unsigned long long)t.totals.ejections, (unsigned long long)t.totals.repairs,
                   (unsigned long long)t.totals.stale_replicas);
            CU_ASSERT_EQUAL(t.violations, 0);
            CU_ASSERT(t.totals.failovers > 0 || rp != CB_ROUTER_READ_ANY);
            CU_ASSERT(t.totals.ejections > 0);
            CU_ASSERT(t.totals.probes_passed > 0);
        }
    }
}

/*
 * Deletes under replication (docs/replication.md §4): 4 SETs, 2 versioned DELETEs and 4 GETs
 * in 10, over every policy pair, without faults and with the three crashes. The model's
 * newest write before a read may be a delete: the read must then miss (or see a newer
 * write), unless the policy allows a stale read there. A late replicated SET, a primary_async
 * copy or a read repair carrying an older version must not bring a deleted key back.
 */
static void test_router_deletes(void)
{
    static rt_run t;
    printf("\n  %-13s %-7s %6s %6s %7s %7s %6s\n", "write", "read", "reads", "stale", "allowed",
           "deletes", "d-miss");
    for (int faults = 0; faults <= 1; faults++) {
        for (uint32_t wp = 0; wp <= CB_ROUTER_WRITE_PRIMARY_ASYNC; wp++) {
            for (uint32_t rp = 0; rp <= CB_ROUTER_READ_QUORUM; rp++) {
                rt_setup(&t, wp, rp, faults ? 6000 : 3000);
                t.delete_tenths = 2;
                if (faults) {
                    rt_crashes(&t);
                }
                rt_execute(&t);
                printf("  %-13s %-7s %6u %6u %7u %7u %6u%s\n", cb_router_write_policy_name(wp),
                       cb_router_read_policy_name(rp), t.reads, t.stale, t.stale_allowed, t.deletes,
                       t.deleted_misses, faults ? " (crashes)" : "");
                CU_ASSERT_EQUAL(t.violations, 0);
                CU_ASSERT(t.deletes > 100);
                CU_ASSERT(t.deleted_misses > 50);
                if (!faults && rt_loss_needed(&t.rc) > 0) {
                    CU_ASSERT_EQUAL(t.stale, 0);
                }
            }
        }
    }
}

/* Same seed, same trace; another seed, another trace. */
static void test_router_deterministic(void)
{
    static rt_run t;
    uint64_t hash[3];
    for (int i = 0; i < 3; i++) {
        rt_setup(&t, CB_ROUTER_WRITE_QUORUM, CB_ROUTER_READ_QUORUM, 3000);
        rt_crashes(&t);
        t.seed = cb_test_seed() + (i == 2);
        rt_execute(&t);
        hash[i] = t.trace_hash;
    }
    CU_ASSERT_EQUAL(hash[0], hash[1]);
    CU_ASSERT_NOT_EQUAL(hash[0], hash[2]);
}

/* ---- scripted runs: one client, operations at set times ---- */

#define SC_STEPS_MAX 16u

typedef struct sc_step {
    uint64_t at_ns;
    uint8_t op;
    const char *key;
} sc_step;

typedef struct sc_run {
    const sc_step *steps;
    uint32_t step_count, next;
    cb_completion done[SC_STEPS_MAX];
    uint32_t done_count;
    uint64_t events[16];
    uint64_t probe_sent, probe_passed;
} sc_run;

static int sc_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op, uint32_t *server,
                   uint64_t *wake_ns)
{
    sc_run *t = user;
    (void)client;
    *server = 0;
    if (t->next >= t->step_count) {
        *wake_ns = UINT64_MAX;
        return 0;
    }
    const sc_step *s = &t->steps[t->next];
    if (now_ns < s->at_ns) {
        *wake_ns = s->at_ns;
        return 0;
    }
    op->op = s->op;
    op->key = (const uint8_t *)s->key;
    op->key_len = (uint8_t)strlen(s->key);
    if (s->op == CB_OP_SET) {
        op->value = (const uint8_t *)"value";
        op->value_len = 5;
    }
    op->user_data = t->next++;
    return 1;
}

static void sc_complete(void *user, uint32_t client, const cb_completion *c)
{
    sc_run *t = user;
    (void)client;
    CU_ASSERT_FATAL(t->done_count < SC_STEPS_MAX);
    CU_ASSERT_EQUAL(c->user_data, t->done_count); /* one at a time, in order */
    t->done[t->done_count++] = *c;
}

static void sc_event(void *user, uint32_t node, const cb_event *e, uint64_t now_ns)
{
    sc_run *t = user;
    (void)node;
    (void)now_ns;
    t->events[e->kind < 16 ? e->kind : 0]++;
    t->probe_sent += e->kind == CB_EVENT_PROBE && e->detail == 0;
    t->probe_passed += e->kind == CB_EVENT_PROBE && e->detail == 1;
}

/* The preference list of `key` in a world of `servers`. */
static void sc_list(const cb_placement *p, const char *key, uint32_t *out, size_t n)
{
    int got = cb_placement_lookup(p, (const uint8_t *)key, strlen(key), out, n);
    CU_ASSERT_FATAL(got == (int)n);
}

static cb_memworld *sc_world(rt_run *setup, const cb_placement *p)
{
    cb_memworld_config mc = rt_world_config(setup);
    mc.client.outstanding_max = 1;
    mc.router = &setup->rc;
    mc.placement = p;
    cb_memworld *w = NULL;
    CU_ASSERT_FATAL(cb_memworld_new(&mc, NULL, &w) == CB_ERR_OK);
    return w;
}

/* A crashed primary: reads fail over to the next replica, the primary is ejected after two
 * failures and skipped, and once its ejection ends one probe brings it back (empty). */
static void test_router_failover_eject_probe(void)
{
    static rt_run setup;
    rt_setup(&setup, CB_ROUTER_WRITE_ALL, CB_ROUTER_READ_ANY, 0);
    setup.servers = 4;
    setup.clients = 1;
    setup.rc.replicas = 2;
    cb_placement *p = rt_placement(setup.servers);
    uint32_t list[2];
    sc_list(p, "k", list, 2);
    setup.faults[0] = (cb_memworld_fault){10 * RT_MS, list[0], CB_MEMWORLD_CRASH, NULL, NULL};
    setup.faults[1] = (cb_memworld_fault){55 * RT_MS, list[0], CB_MEMWORLD_RECOVER, NULL, NULL};
    setup.fault_count = 2;
    static const sc_step steps[] = {
        {0, CB_OP_SET, "k"},          {11 * RT_MS, CB_OP_GET, "k"}, {30 * RT_MS, CB_OP_GET, "k"},
        {50 * RT_MS, CB_OP_GET, "k"}, {90 * RT_MS, CB_OP_GET, "k"}, {95 * RT_MS, CB_OP_GET, "k"},
    };
    sc_run t = {steps, 6, 0, {{0}}, 0, {0}, 0, 0};
    cb_memworld *w = sc_world(&setup, p);
    cb_world_hooks h = {&t, sc_next, sc_complete, sc_event, NULL};
    CU_ASSERT_EQUAL(cb_memworld_run(w, &h, UINT64_MAX), CB_ERR_OK);
    CU_ASSERT_EQUAL_FATAL(t.done_count, 6);
    CU_ASSERT_EQUAL(t.done[0].outcome, CB_OUTCOME_STORED);
    for (int i = 1; i <= 2; i++) { /* primary times out (2 attempts), the replica answers */
        CU_ASSERT_EQUAL(t.done[i].outcome, CB_OUTCOME_HIT);
        CU_ASSERT_EQUAL(t.done[i].peer, list[1]);
        CU_ASSERT_EQUAL(t.done[i].attempts, 3);
    }
    CU_ASSERT_EQUAL(t.events[CB_EVENT_FAILOVER], 2);
    CU_ASSERT_EQUAL(t.events[CB_EVENT_EJECT], 1);
    /* Ejected: straight to the replica, one attempt, one round trip. */
    CU_ASSERT_EQUAL(t.done[3].outcome, CB_OUTCOME_HIT);
    CU_ASSERT_EQUAL(t.done[3].attempts, 1);
    CU_ASSERT(t.done[3].complete_ns - t.done[3].issue_ns < RT_MS);
    /* Ejection over: the probe goes to the recovered, empty primary: a (stale) miss. */
    CU_ASSERT_EQUAL(t.probe_sent, 1);
    CU_ASSERT_EQUAL(t.probe_passed, 1);
    CU_ASSERT_EQUAL(t.done[4].outcome, CB_OUTCOME_MISS);
    CU_ASSERT_EQUAL(t.done[4].peer, list[0]);
    CU_ASSERT_EQUAL(cb_router_node_state_of(cb_memworld_router(w, 0), list[0], 95 * RT_MS),
                    CB_ROUTER_NODE_UP);
    CU_ASSERT_EQUAL(t.done[5].peer, list[0]);
    cb_memworld_del(w);
    cb_placement_del(p);
}

/* Writes fail over too: with the primary crashed, write ALL acknowledges from the replica
 * and the first spare; a read fails over from the primary to the replica. */
static void test_router_write_failover(void)
{
    static rt_run setup;
    rt_setup(&setup, CB_ROUTER_WRITE_ALL, CB_ROUTER_READ_ANY, 0);
    setup.servers = 4;
    setup.clients = 1;
    setup.rc.replicas = 2;
    cb_placement *p = rt_placement(setup.servers);
    uint32_t list[3];
    sc_list(p, "k", list, 3);
    setup.faults[0] = (cb_memworld_fault){1 * RT_MS, list[0], CB_MEMWORLD_CRASH, NULL, NULL};
    setup.fault_count = 1;
    static const sc_step steps[] = {{2 * RT_MS, CB_OP_SET, "k"}, {20 * RT_MS, CB_OP_GET, "k"}};
    sc_run t = {steps, 2, 0, {{0}}, 0, {0}, 0, 0};
    cb_memworld *w = sc_world(&setup, p);
    cb_world_hooks h = {&t, sc_next, sc_complete, sc_event, NULL};
    CU_ASSERT_EQUAL(cb_memworld_run(w, &h, UINT64_MAX), CB_ERR_OK);
    CU_ASSERT_EQUAL_FATAL(t.done_count, 2);
    CU_ASSERT_EQUAL(t.done[0].outcome, CB_OUTCOME_STORED);
    CU_ASSERT_EQUAL(t.done[0].peer, list[1]);
    CU_ASSERT_EQUAL(t.events[CB_EVENT_FAILOVER], 2); /* the write's, then the read's */
    cb_server_stats st;
    cb_server_get_stats(cb_memworld_server(w, list[2]), &st);
    CU_ASSERT_EQUAL(st.store.items, 1); /* the spare holds the write */
    CU_ASSERT_EQUAL(t.done[1].outcome, CB_OUTCOME_HIT);
    cb_memworld_del(w);
    cb_placement_del(p);
}

/* A replica that came back empty is found stale by a quorum read and repaired. */
static void test_router_read_repair(void)
{
    static rt_run setup;
    rt_setup(&setup, CB_ROUTER_WRITE_ALL, CB_ROUTER_READ_QUORUM, 0);
    setup.servers = 3;
    setup.clients = 1;
    cb_placement *p = rt_placement(setup.servers);
    setup.faults[0] = (cb_memworld_fault){5 * RT_MS, 1, CB_MEMWORLD_CRASH, NULL, NULL};
    setup.faults[1] = (cb_memworld_fault){6 * RT_MS, 1, CB_MEMWORLD_RECOVER, NULL, NULL};
    setup.fault_count = 2;
    static const sc_step steps[] = {{0, CB_OP_SET, "k"}, {10 * RT_MS, CB_OP_GET, "k"}};
    sc_run t = {steps, 2, 0, {{0}}, 0, {0}, 0, 0};
    cb_memworld *w = sc_world(&setup, p);
    cb_world_hooks h = {&t, sc_next, sc_complete, sc_event, NULL};
    CU_ASSERT_EQUAL(cb_memworld_run(w, &h, UINT64_MAX), CB_ERR_OK);
    CU_ASSERT_EQUAL_FATAL(t.done_count, 2);
    CU_ASSERT_EQUAL(t.done[1].outcome, CB_OUTCOME_HIT);
    CU_ASSERT_EQUAL(t.done[1].number, t.done[0].number); /* the version written */
    CU_ASSERT_EQUAL(t.events[CB_EVENT_STALE_READ], 1);
    CU_ASSERT_EQUAL(t.events[CB_EVENT_READ_REPAIR], 1);
    cb_server_stats st;
    cb_server_get_stats(cb_memworld_server(w, 1), &st);
    CU_ASSERT_EQUAL(st.store.items, 1); /* repaired */
    cb_router_stats rs;
    cb_router_get_stats(cb_memworld_router(w, 0), &rs);
    CU_ASSERT(rs.stale_replicas == 1 && rs.repairs == 1 && rs.repairs_failed == 0);
    cb_memworld_del(w);
    cb_placement_del(p);
}

/* The router alone: config and op validation, and an operation with no usable node still
 * completes (ERROR), exactly once. */
static void test_router_api(void)
{
    cb_placement *p = rt_placement(3);
    cb_rng rng;
    cb_rng_init(&rng, 1);
    cb_router_config c = cb_router_config_default();
    c.client.peer_count = 3;
    cb_router *r = NULL;
    c.replicas = 4; /* more than the nodes */
    CU_ASSERT_EQUAL(cb_router_new(&c, p, &rng, NULL, &r), CB_ERR_INVALID);
    c.replicas = 2;
    c.client.peer_count = 2; /* node 2 is not a peer */
    CU_ASSERT_EQUAL(cb_router_new(&c, p, &rng, NULL, &r), CB_ERR_INVALID);
    c.client.peer_count = 3;
    c.ops_max = 1;
    CU_ASSERT_EQUAL_FATAL(cb_router_new(&c, p, &rng, NULL, &r), CB_ERR_OK);
    cb_client_op op = {.op = CB_OP_CAS, .key = (const uint8_t *)"k", .key_len = 1};
    CU_ASSERT_EQUAL(cb_router_submit(r, &op, 0, NULL), CB_ERR_INVALID);
    op.op = CB_OP_FLUSH;
    op.key_len = 0;
    CU_ASSERT_EQUAL(cb_router_submit(r, &op, 0, NULL), CB_ERR_INVALID);
    for (uint32_t n = 0; n < 3; n++) {
        CU_ASSERT_EQUAL(cb_router_on_peer_down(r, n, 0), CB_ERR_OK);
    }
    CU_ASSERT_EQUAL(cb_router_on_peer_down(r, 3, 0), CB_ERR_UNKNOWN_CONN);
    op = (cb_client_op){.op = CB_OP_GET, .key = (const uint8_t *)"k", .key_len = 1};
    CU_ASSERT_EQUAL(cb_router_submit(r, &op, 0, NULL), CB_ERR_OK);
    cb_action a[4];
    CU_ASSERT_EQUAL_FATAL(cb_router_drain(r, a, 4), 4); /* 3 ejections and the outcome */
    CU_ASSERT_EQUAL(a[3].kind, CB_ACTION_COMPLETE);
    CU_ASSERT_EQUAL(a[3].completion.outcome, CB_OUTCOME_ERROR);
    CU_ASSERT_EQUAL(cb_router_outstanding(r), 0);
    cb_completion bogus = {.user_data = 12345};
    CU_ASSERT_EQUAL(cb_router_on_completion(r, &bogus, 0), CB_ERR_INVALID);
    /* A second op while the first is in flight: BUSY (ops_max 1). */
    CU_ASSERT_EQUAL(cb_router_submit(r, &op, 2000000000ull, NULL), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_router_submit(r, &op, 2000000000ull, NULL), CB_ERR_BUSY);
    cb_router_stats st;
    cb_router_get_stats(r, &st);
    CU_ASSERT_EQUAL(st.no_node, 1);
    CU_ASSERT_EQUAL(st.probes, 1); /* the ejections had ended: the second op probes */
    cb_router_del(r);
    cb_placement_del(p);
}

static const cb_test_case tests[] = {
    {"policies_no_faults", test_router_policies_no_faults},
    {"e2e_crashes", test_router_e2e_crashes},
    {"deletes", test_router_deletes},
    {"deterministic", test_router_deterministic},
    {"failover_eject_probe", test_router_failover_eject_probe},
    {"write_failover", test_router_write_failover},
    {"read_repair", test_router_read_repair},
    {"api", test_router_api},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_router", tests)
