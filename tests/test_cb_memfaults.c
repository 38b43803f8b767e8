/*
 * test_cb_memfaults.c: partitions and heals in cb_memworld (CB_MEMWORLD_PARTITION/HEAL).
 *
 * 2 servers, 1 client sending GETs to server 0 and server 1 in turn, one at a time, every
 * 1 ms. A partition {client0} | {server1} from 10 ms to 20 ms: requests to server 1 issued
 * inside it time out, those to server 0 (in no group) do not, none after the heal; the
 * partition and the heal reach the event hook with their labels, and so does a server
 * crash. Also: a partition without groups is refused.
 */
#include <stdio.h>
#include <string.h>

#include "cb_err.h"
#include "cb_memworld.h"
#include "cb_test.h"

#define MF_MS   1000000ull
#define MF_OPS  40u

typedef struct mf_state {
    uint32_t submitted;
    uint32_t timeouts_in[2], timeouts_out[2], ok[2];
    uint32_t issued_in[2]; /* issued while the partition is in force */
    uint64_t issue_ns[MF_OPS];
    uint32_t events[32];
    const char *notes[32];
    uint32_t event_node[32];
} mf_state;

static const uint8_t mf_key[] = "m";

static int mf_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op,
                   uint32_t *server, uint64_t *wake_ns)
{
    mf_state *s = user;
    (void)client;
    if (s->submitted >= MF_OPS) {
        *wake_ns = UINT64_MAX;
        return 0;
    }
    if (now_ns < s->submitted * MF_MS) {
        *wake_ns = s->submitted * MF_MS;
        return 0;
    }
    op->op = CB_OP_GET;
    op->key = mf_key;
    op->key_len = 1;
    op->user_data = s->submitted;
    s->issue_ns[s->submitted] = now_ns;
    *server = s->submitted % 2;
    s->issued_in[*server] += now_ns >= 10 * MF_MS && now_ns < 20 * MF_MS;
    s->submitted++;
    return 1;
}

static void mf_complete(void *user, uint32_t client, const cb_completion *c)
{
    mf_state *s = user;
    (void)client;
    uint32_t i = (uint32_t)c->user_data, srv = i % 2;
    uint64_t t = s->issue_ns[i];
    if (c->outcome == CB_OUTCOME_TIMEOUT) {
        if (t >= 10 * MF_MS && t < 20 * MF_MS) {
            s->timeouts_in[srv]++;
        } else {
            s->timeouts_out[srv]++;
        }
    } else {
        s->ok[srv]++;
    }
}

static void mf_event(void *user, uint32_t node, const cb_event *e, uint64_t now_ns)
{
    mf_state *s = user;
    (void)now_ns;
    if (e->kind < 32) {
        s->events[e->kind]++;
        s->notes[e->kind] = e->note;
        s->event_node[e->kind] = node;
    }
}

static cb_memworld_config mf_config(void)
{
    cb_memworld_config mc;
    memset(&mc, 0, sizeof mc);
    mc.server_count = 2;
    mc.client_count = 1;
    mc.server = cb_server_config_default();
    mc.client = cb_client_config_default();
    mc.client.outstanding_max = 1;
    mc.client.timeout_ns = 2 * MF_MS;
    mc.client.timeout_max_ns = 2 * MF_MS;
    mc.client.attempts_max = 1;
    mc.net.latency_ns = 100000;
    mc.net.queue_max = 64;
    mc.net.bytes_max = 1u << 20;
    mc.seed = 3;
    return mc;
}

static void test_partition_then_heal(void)
{
    static const uint8_t groups[3] = {0, 2, 1}; /* server0 in none, server1 | client0 */
    cb_memworld_fault faults[] = {
        {10 * MF_MS, 0, CB_MEMWORLD_PARTITION, groups, "10ms partition"},
        {20 * MF_MS, 0, CB_MEMWORLD_HEAL, NULL, "20ms heal"},
        {30 * MF_MS, 0, CB_MEMWORLD_CRASH, NULL, "30ms crash server0"},
        {31 * MF_MS, 0, CB_MEMWORLD_RECOVER, NULL, NULL},
    };
    cb_memworld_config mc = mf_config();
    mc.faults = faults;
    mc.fault_count = 4;
    cb_memworld *w = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_memworld_new(&mc, NULL, &w), CB_ERR_OK);
    static mf_state s;
    memset(&s, 0, sizeof s);
    cb_world_hooks h = {&s, mf_next, mf_complete, mf_event, NULL};
    CU_ASSERT_EQUAL_FATAL(cb_memworld_run(w, &h, UINT64_MAX), CB_ERR_OK);
    CU_ASSERT_EQUAL(s.submitted, MF_OPS);
        printf("\n    timeouts in %u/%u out %u/%u ok %u/%u dropped %llu ", s.timeouts_in[0], s.timeouts_in[1], s.timeouts_out[0], s.timeouts_out[1], s.ok[0], s.ok[1], (unsigned long long)cb_memworld_dropped(w));
    CU_ASSERT(s.issued_in[1] >= 3);
    CU_ASSERT_EQUAL(s.timeouts_in[1], s.issued_in[1]); /* every one cut off */
    CU_ASSERT_EQUAL(s.timeouts_in[0], 0);
    CU_ASSERT_EQUAL(s.timeouts_out[1], 0);
    CU_ASSERT(s.timeouts_out[0] <= 1); /* the GET in flight at the crash of server0 */
    CU_ASSERT_EQUAL(cb_memworld_dropped(w), s.issued_in[1] + s.timeouts_out[0]);
    CU_ASSERT_EQUAL(s.events[CB_EVENT_PARTITION], 1);
    CU_ASSERT_EQUAL(s.events[CB_EVENT_HEAL], 1);
    CU_ASSERT_EQUAL(s.events[CB_EVENT_CRASH], 1);
    CU_ASSERT_EQUAL(s.events[CB_EVENT_RECOVER], 1);
    CU_ASSERT_EQUAL(s.event_node[CB_EVENT_PARTITION], UINT32_MAX);
    CU_ASSERT_EQUAL(s.event_node[CB_EVENT_CRASH], 0);
    CU_ASSERT_STRING_EQUAL(s.notes[CB_EVENT_PARTITION], "10ms partition");
    CU_ASSERT_STRING_EQUAL(s.notes[CB_EVENT_CRASH], "30ms crash server0");
    CU_ASSERT_PTR_NULL(s.notes[CB_EVENT_RECOVER]);
    cb_memworld_del(w);
}

static void test_partition_needs_groups(void)
{
    cb_memworld_fault f = {1 * MF_MS, 0, CB_MEMWORLD_PARTITION, NULL, NULL};
    cb_memworld_config mc = mf_config();
    mc.faults = &f;
    mc.fault_count = 1;
    cb_memworld *w = NULL;
    CU_ASSERT_EQUAL(cb_memworld_new(&mc, NULL, &w), CB_ERR_INVALID);
    f.kind = 9;
    CU_ASSERT_EQUAL(cb_memworld_new(&mc, NULL, &w), CB_ERR_INVALID);
}

static const cb_test_case tests[] = {
    {"partition_then_heal", test_partition_then_heal},
    {"partition_needs_groups", test_partition_needs_groups},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_memfaults", tests)
