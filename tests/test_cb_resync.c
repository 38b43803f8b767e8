/*
 * test_cb_resync.c: warm-up of a recovered server (protocols/cb_resync.h) in memworld.
 *
 * R = 3 of 6 servers (rendezvous), one router writing `all` and reading `primary`. N keys
 * are written; server 0 crashes and recovers empty. With resync = warm the resyncer copies
 * back every key whose replicas include server 0, racing with overwrites of some keys, and
 * primary reads afterwards see no missing or stale value. With lazy the keys whose primary
 * is server 0 miss (the documented difference: lazy repair needs quorum reads).
 */
#include <stdio.h>
#include <string.h>

#include "cb_err.h"
#include "cb_memworld.h"
#include "cb_resync.h"
#include "cb_scanbody.h"
#include "cb_test.h"
#include "cb_test_repl.h"

#define RS_MS      1000000ull
#define RS_US      1000ull
#define RS_SERVERS 6u
#define RS_KEYS    300u
#define RS_NEWER   100u /* keys 0..RS_NEWER-1 are overwritten while the resync runs */

enum { RS_WRITE = 0, RS_OVERWRITE, RS_READ };

static const cb_memworld_fault rs_faults[] = {
    {50 * RS_MS, 0, CB_MEMWORLD_CRASH, NULL, NULL},
    {51 * RS_MS, 0, CB_MEMWORLD_RECOVER, NULL, NULL},
};

typedef struct rs_run {
    int phase;
    uint32_t next_key;
    uint32_t gen[RS_KEYS]; /* the generation last written */
    cb_test_reads reads;
    uint64_t events[32];
} rs_run;

static void rs_key(char *buf, size_t cap, uint32_t k)
{
    snprintf(buf, cap, "key%u", k);
}

/* The phases follow the clock: writes from 0, server 0 crashes at 50 ms and recovers at
 * 51 ms (the fault schedule), overwrites from 52 ms, reads from 300 ms. */
static const uint64_t rs_phase_start[] = {0, 52 * RS_MS, 300 * RS_MS};

static int rs_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op, uint32_t *server,
                   uint64_t *wake_ns)
{
    (void)client, (void)server;
    rs_run *t = user;
    static char key[32], val[32];
    uint32_t end = t->phase == RS_OVERWRITE ? RS_NEWER : RS_KEYS;
    if (t->next_key >= end && t->phase != RS_READ) {
        t->phase = t->phase == RS_WRITE ? RS_OVERWRITE : RS_READ;
        t->next_key = 0;
    }
    if (now_ns < rs_phase_start[t->phase] || t->next_key >= end) {
        *wake_ns = t->next_key >= end ? UINT64_MAX : rs_phase_start[t->phase];
        return 0;
    }
    uint32_t k = t->next_key++;
    rs_key(key, sizeof key, k);
    op->key = (const uint8_t *)key;
    op->key_len = (uint8_t)strlen(key);
    op->user_data = k;
    if (t->phase == RS_READ) {
        op->op = CB_OP_GET;
        return 1;
    }
    t->gen[k]++;
    snprintf(val, sizeof val, "v%u-%u", k, t->gen[k]);
    op->op = CB_OP_SET;
    op->value = (const uint8_t *)val;
    op->value_len = (uint32_t)strlen(val);
    return 1;
}

static void rs_complete(void *user, uint32_t client, const cb_completion *c)
{
    (void)client;
    rs_run *t = user;
    cb_test_reads_count(&t->reads, c, t->gen);
}

static void rs_event(void *user, uint32_t node, const cb_event *e, uint64_t now_ns)
{
    (void)node, (void)now_ns;
    rs_run *t = user;
    t->events[e->kind < 32 ? e->kind : 0]++;
}

static cb_memworld *rs_world_faults(const cb_placement *p, const cb_router_config *rc,
                                    uint32_t resync, const cb_memworld_fault *faults)
{
    cb_memworld_config mc;
    memset(&mc, 0, sizeof mc);
    mc.server_count = RS_SERVERS;
    mc.client_count = 1;
    mc.server = cb_server_config_default();
    mc.server.store.memory_bytes_max = 1u << 22;
    mc.client = cb_client_config_default();
    mc.client.outstanding_max = 4;
    mc.client.timeout_ns = 2 * RS_MS;
    mc.client.timeout_max_ns = 4 * RS_MS;
    mc.client.attempts_max = 2;
    mc.net.latency_ns = 100 * RS_US;
    mc.net.jitter_ns = 40 * RS_US;
    mc.net.queue_max = 4096;
    mc.net.bytes_max = 1u << 22;
    mc.net.node_count = RS_SERVERS + 1; /* streams: FIFO, lossless */
    mc.seed = 0x5eed;
    mc.router = rc;
    mc.placement = p;
    mc.resync = resync;
    mc.faults = faults;
    mc.fault_count = 2;
    cb_memworld *w = NULL;
    CU_ASSERT_FATAL(cb_memworld_new(&mc, NULL, &w) == CB_ERR_OK);
    return w;
}

static cb_memworld *rs_world(const cb_placement *p, const cb_router_config *rc, uint32_t resync)
{
    return rs_world_faults(p, rc, resync, rs_faults);
}

/* Keys whose first R candidates include server 0, and those whose primary it is. */
static void rs_owned(const cb_placement *p, uint32_t *owned, uint32_t *primary)
{
    char key[32];
    *owned = *primary = 0;
    for (uint32_t k = 0; k < RS_KEYS; k++) {
        uint32_t list[3];
        rs_key(key, sizeof key, k);
        CU_ASSERT_EQUAL_FATAL(cb_placement_lookup(p, (const uint8_t *)key, strlen(key), list, 3),
                              3);
        *owned += list[0] == 0 || list[1] == 0 || list[2] == 0;
        *primary += list[0] == 0 && k >= RS_NEWER;
    }
}

/* Write, crash and recover server 0, overwrite some keys (racing the resync), read back. */
static void rs_scenario(uint32_t resync, rs_run *t, uint64_t *items_on_0)
{
    cb_placement *p = cb_test_placement(RS_SERVERS);
    CU_ASSERT_FATAL(p != NULL);
    cb_router_config rc = cb_test_resync_router();
    cb_memworld *w = rs_world(p, &rc, resync);
    memset(t, 0, sizeof *t);
    cb_world_hooks h = {t, rs_next, rs_complete, rs_event, NULL};
    CU_ASSERT_EQUAL_FATAL(cb_memworld_run(w, &h, UINT64_MAX), CB_ERR_OK);
    CU_ASSERT_EQUAL(t->phase, RS_READ);
    cb_server_stats ss;
    cb_server_get_stats(cb_memworld_server(w, 0), &ss);
    *items_on_0 = ss.store.items;
    CU_ASSERT_EQUAL(t->reads.failed, 0);
    if (resync == CB_RESYNC_WARM) {
        cb_resync_stats st;
        cb_resync_get_stats(cb_memworld_resync(w), &st);
        CU_ASSERT_EQUAL(st.runs, 1);
        CU_ASSERT_EQUAL(st.runs_done, 1);
        CU_ASSERT_EQUAL(st.scans_failed, 0);
        CU_ASSERT_EQUAL(st.writes_failed, 0);
        CU_ASSERT(st.writes_stored > 0);
        CU_ASSERT_EQUAL(st.writes, st.writes_stored + st.writes_superseded);
        CU_ASSERT(st.items_seen >= RS_KEYS); /* each key lives on >= 2 of the peers */
    } else {
        CU_ASSERT_PTR_NULL(cb_memworld_resync(w));
    }
    cb_memworld_del(w);
    cb_placement_del(p);
}

static void test_resync_warm(void)
{
    rs_run t;
    uint64_t items = 0;
    cb_placement *p = cb_test_placement(RS_SERVERS);
    CU_ASSERT_FATAL(p != NULL);
    uint32_t owned, primary;
    rs_owned(p, &owned, &primary);
    cb_placement_del(p);
    CU_ASSERT(owned > RS_KEYS / 4 && primary > 0);
    rs_scenario(CB_RESYNC_WARM, &t, &items);
    CU_ASSERT_EQUAL(items, owned); /* every key it should hold, nothing else */
    CU_ASSERT_EQUAL(t.reads.hits, RS_KEYS);
    CU_ASSERT_EQUAL(t.reads.misses, 0);
    CU_ASSERT_EQUAL(t.reads.stale, 0);
    CU_ASSERT_EQUAL(t.events[CB_EVENT_RESYNC_START], 1);
    CU_ASSERT_EQUAL(t.events[CB_EVENT_RESYNC_DONE], 1);
}

static void test_resync_lazy(void)
{
    rs_run t;
    uint64_t items = 0;
    cb_placement *p = cb_test_placement(RS_SERVERS);
    CU_ASSERT_FATAL(p != NULL);
    uint32_t owned, primary;
    rs_owned(p, &owned, &primary);
    cb_placement_del(p);
    rs_scenario(CB_RESYNC_LAZY, &t, &items);
    CU_ASSERT(items < owned); /* only the overwritten keys came back */
    CU_ASSERT_EQUAL(t.reads.misses, primary);
    CU_ASSERT_EQUAL(t.reads.stale, 0);
    CU_ASSERT_EQUAL(t.reads.hits + t.reads.misses, RS_KEYS);
    CU_ASSERT_EQUAL(t.events[CB_EVENT_RESYNC_START], 0);
}

/*
 * Deleted keys stay deleted across a crash and a warm resync (docs/replication.md §4, §6).
 * DEL_KEYS keys are written to R = 3 of 6 servers. Server 0 crashes at 20 ms; the keys are
 * overwritten while it is down, so the writes it misses fail over to a spare, which keeps
 * that newer copy (sloppy quorum, no hinted handoff). Server 0 recovers empty at 80 ms and
 * every key is deleted at once: the versioned DELETEs reach server 0 and the key's first R
 * replicas (the router never ejects here), not the spares. The resync of server 0, racing
 * with the deletes, finds the spares' copies, which are older than the deletes: the
 * tombstones on server 0 must supersede them, or the deleted keys would come back there.
 * Reads at 200 ms, from the primary, must all miss, and no server may hold a live copy.
 */
#define DEL_KEYS 60u

static const cb_memworld_fault del_faults[] = {
    {20 * RS_MS, 0, CB_MEMWORLD_CRASH, NULL, NULL},
    {80 * RS_MS, 0, CB_MEMWORLD_RECOVER, NULL, NULL},
};

enum { DEL_WRITE = 0, DEL_OVERWRITE, DEL_DELETE, DEL_READ, DEL_DONE };
static const uint64_t del_phase_start[] = {0, 22 * RS_MS, 80 * RS_MS, 200 * RS_MS, UINT64_MAX};

typedef struct del_run {
    int phase;
    uint32_t next_key;
    uint64_t hits, misses, deleted, write_failed;
} del_run;

static int del_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op,
                    uint32_t *server, uint64_t *wake_ns)
{
    (void)client, (void)server;
    del_run *t = user;
    static char key[32], val[32];
    if (t->next_key >= DEL_KEYS && t->phase < DEL_DONE) {
        t->phase++;
        t->next_key = 0;
    }
    if (t->phase == DEL_DONE || now_ns < del_phase_start[t->phase]) {
        *wake_ns = del_phase_start[t->phase];
        return 0;
    }
    uint32_t k = t->next_key++;
    rs_key(key, sizeof key, k);
    memset(op, 0, sizeof *op);
    op->key = (const uint8_t *)key;
    op->key_len = (uint8_t)strlen(key);
    op->user_data = k;
    op->op = t->phase == DEL_READ ? CB_OP_GET : t->phase == DEL_DELETE ? CB_OP_DELETE : CB_OP_SET;
    if (op->op == CB_OP_SET) {
        snprintf(val, sizeof val, "v%u-%d", k, t->phase);
        op->value = (const uint8_t *)val;
        op->value_len = (uint32_t)strlen(val);
    }
    return 1;
}

static void del_complete(void *user, uint32_t client, const cb_completion *c)
{
    (void)client;
    del_run *t = user;
    if (c->op == CB_OP_SET) {
        t->write_failed += c->outcome != CB_OUTCOME_STORED;
    } else if (c->op == CB_OP_DELETE) {
        t->deleted += c->outcome == CB_OUTCOME_DELETED || c->outcome == CB_OUTCOME_NOT_FOUND;
    } else {
        t->hits += c->outcome == CB_OUTCOME_HIT;
        t->misses += c->outcome == CB_OUTCOME_MISS;
    }
}

static void test_resync_keeps_deletes(void)
{
    cb_placement *p = cb_test_placement(RS_SERVERS);
    CU_ASSERT_FATAL(p != NULL);
    cb_router_config rc = cb_test_resync_router();
    rc.eject_after = 0; /* every write tries server 0 first: the deletes reach it at once */
    cb_memworld *w = rs_world_faults(p, &rc, CB_RESYNC_WARM, del_faults);
    del_run t;
    memset(&t, 0, sizeof t);
    cb_world_hooks h = {&t, del_next, del_complete, NULL, NULL};
    CU_ASSERT_EQUAL_FATAL(cb_memworld_run(w, &h, UINT64_MAX), CB_ERR_OK);
    CU_ASSERT_EQUAL(t.phase, DEL_DONE);
    CU_ASSERT_EQUAL(t.write_failed, 0);
    CU_ASSERT_EQUAL(t.deleted, DEL_KEYS);
    CU_ASSERT_EQUAL(t.misses, DEL_KEYS);
    CU_ASSERT_EQUAL(t.hits, 0);
    /* The resync met the spares' older copies after the deletes: superseded, not stored. */
    cb_resync_stats st;
    cb_resync_get_stats(cb_memworld_resync(w), &st);
    printf("\n  resync: %llu items seen, %llu owned, %llu writes (%llu tombstones), %llu stored,"
           " %llu superseded\n",
           (unsigned long long)st.items_seen, (unsigned long long)st.items_owned,
           (unsigned long long)st.writes, (unsigned long long)st.tombstones,
           (unsigned long long)st.writes_stored, (unsigned long long)st.writes_superseded);
    CU_ASSERT_EQUAL(st.runs_done, 1);
    CU_ASSERT(st.writes_superseded > 0);
    /* None of a deleted key's R replicas holds a live copy (the spares may: the deletes
     * never went there); server 0 keeps tombstones. */
    uint64_t live = 0;
    for (uint32_t k = 0; k < DEL_KEYS; k++) {
        char key[32];
        uint32_t list[3];
        rs_key(key, sizeof key, k);
        CU_ASSERT_EQUAL_FATAL(cb_placement_lookup(p, (const uint8_t *)key, strlen(key), list, 3),
                              3);
        for (uint32_t i = 0; i < 3; i++) {
            cb_store_view v;
            cb_server *srv = cb_memworld_server(w, list[i]);
            live += cb_store_get(cb_server_store(srv), (const uint8_t *)key, strlen(key),
                                 300 * RS_MS, &v) == CB_ERR_OK;
        }
    }
    CU_ASSERT_EQUAL(live, 0);
    cb_server_stats ss;
    cb_server_get_stats(cb_memworld_server(w, 0), &ss);
    CU_ASSERT(ss.store.tombstones > 0);
    cb_memworld_del(w);
    cb_placement_del(p);
}

static void test_resync_api(void)
{
    cb_placement *p = cb_test_placement(RS_SERVERS);
    CU_ASSERT_FATAL(p != NULL);
    cb_rng rng;
    cb_rng_init(&rng, 1);
    cb_resync_config c = cb_resync_config_default();
    c.client.peer_count = RS_SERVERS;
    cb_resync *rs = NULL;
    c.writes_max = 0;
    CU_ASSERT_EQUAL(cb_resync_new(&c, p, &rng, NULL, &rs), CB_ERR_INVALID);
    c.writes_max = 4;
    CU_ASSERT_EQUAL_FATAL(cb_resync_new(&c, p, &rng, NULL, &rs), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_resync_start(rs, 99, 0), CB_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(cb_resync_start(rs, 2, 0), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_resync_start(rs, 3, 0), CB_ERR_BUSY);
    CU_ASSERT_EQUAL(cb_client_outstanding(cb_resync_client(rs)), 1); /* one SCAN */
    cb_action a[4];
    CU_ASSERT_EQUAL(cb_resync_drain(rs, a, 4), 1);
    CU_ASSERT_EQUAL(a[0].event.kind, CB_EVENT_RESYNC_START);
    CU_ASSERT_EQUAL(a[0].event.detail, RS_SERVERS - 1);
    uint32_t pol = 9;
    CU_ASSERT_EQUAL(cb_resync_policy_from_name("warm", &pol), CB_ERR_OK);
    CU_ASSERT_EQUAL(pol, CB_RESYNC_WARM);
    CU_ASSERT_EQUAL(cb_resync_policy_from_name("eager", &pol), CB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(cb_resync_policy_name(CB_RESYNC_LAZY), "lazy");
    cb_resync_del(rs);
    cb_placement_del(p);
}

/* A key whose first 3 candidates include `node`, and one whose do not. */
static void rs_keys_of(const cb_placement *p, uint32_t node, char *owned, char *other)
{
    for (uint32_t k = 0; k < 100 && (owned[0] == 0 || other[0] == 0); k++) {
        char key[32];
        uint32_t list[3];
        rs_key(key, sizeof key, k);
        cb_placement_lookup(p, (const uint8_t *)key, strlen(key), list, 3);
        int mine = list[0] == node || list[1] == node || list[2] == node;
        memcpy(mine ? owned : other, key, sizeof key);
    }
}

/* Hostile and edge replies: a malformed body gives up that peer; unversioned items and
 * items the node does not replicate are not written; a versioned owned one is. */
static void test_resync_bodies(void)
{
    cb_placement *p = cb_test_placement(RS_SERVERS);
    CU_ASSERT_FATAL(p != NULL);
    cb_rng rng;
    cb_rng_init(&rng, 1);
    cb_resync_config c = cb_resync_config_default();
    c.replicas = 3;
    c.client.peer_count = RS_SERVERS;
    cb_resync *rs = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_resync_new(&c, p, &rng, NULL, &rs), CB_ERR_OK);
    CU_ASSERT_EQUAL_FATAL(cb_resync_start(rs, 2, 0), CB_ERR_OK);
    cb_completion done;
    memset(&done, 0, sizeof done);
    done.op = CB_OP_SCAN;
    done.outcome = CB_OUTCOME_OK;
    static const uint8_t bad[] = {0, 0, 0, 5, 1, 2};
    done.value = bad;
    done.value_len = sizeof bad;
    done.number = 77;
    CU_ASSERT_EQUAL(cb_resync_on_completion(rs, &done, 1), CB_ERR_OK);
    cb_resync_stats st;
    cb_resync_get_stats(rs, &st);
    CU_ASSERT_EQUAL(st.scans_failed, 1);
    CU_ASSERT_EQUAL(st.scans, 2); /* on to the next peer */
    char owned[32] = "", other[32] = "";
    rs_keys_of(p, 2, owned, other);
    uint8_t body[256];
    cb_scanbody_writer w;
    cb_scanbody_writer_init(&w, body, sizeof body);
    cb_scanbody_item it = {
        (const uint8_t *)owned, (uint8_t)strlen(owned), 0, 0, 1, 0, (const uint8_t *)"x", 0};
    cb_scanbody_put(&w, &it); /* owned, unversioned: skipped */
    it.version = 5;
    cb_scanbody_put(&w, &it); /* owned, versioned: written */
    it.key = (const uint8_t *)other;
    it.key_len = (uint8_t)strlen(other);
    cb_scanbody_put(&w, &it); /* not node 2's */
    cb_scanbody_item tomb = {(const uint8_t *)owned, (uint8_t)strlen(owned), 0, 0, 0, 7, NULL, 1};
    cb_scanbody_put(&w, &tomb); /* owned tombstone: copied as a versioned DELETE */
    done.value = body;
    done.value_len = (uint32_t)cb_scanbody_finish(&w);
    done.number = 0;
    CU_ASSERT_EQUAL(cb_resync_on_completion(rs, &done, 2), CB_ERR_OK);
    cb_resync_get_stats(rs, &st);
    CU_ASSERT_EQUAL(st.items_seen, 4);
    CU_ASSERT_EQUAL(st.unversioned, 1);
    CU_ASSERT_EQUAL(st.writes, 2);
    CU_ASSERT_EQUAL(st.items_owned, 2);
    /* What went out: the SET of version 5 with its value, the DELETE of version 7 without. */
    cb_action acts[16];
    size_t n = cb_client_drain(cb_resync_client(rs), acts, 16);
    int sets = 0, deletes = 0;
    for (size_t i = 0; i < n; i++) {
        cb_frame f;
        if (acts[i].kind != CB_ACTION_SEND ||
            cb_frame_decode(acts[i].data, acts[i].data_len, NULL, &f) <= 0) {
            continue;
        }
        sets += f.opcode == CB_OP_SET && f.arg == 5 && f.value_len == 1;
        deletes += f.opcode == CB_OP_DELETE && f.arg == 7 && f.value_len == 0;
    }
    CU_ASSERT_EQUAL(sets, 1);
    CU_ASSERT_EQUAL(deletes, 1);
    cb_resync_del(rs);
    cb_placement_del(p);
}

static const cb_test_case tests[] = {
    {"warm", test_resync_warm},
    {"lazy", test_resync_lazy},
    {"keeps_deletes", test_resync_keeps_deletes},
    {"api", test_resync_api},
    {"bodies", test_resync_bodies},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_resync", tests)
