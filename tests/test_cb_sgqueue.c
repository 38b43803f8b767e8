/*
 * test_cb_sgqueue.c: the queue transport in the SimGrid world (sim/cb_sgworld.h, "Queue
 * transport"): every request and reply goes through the broker node.
 *
 *   - no load: the median GET takes 4 one-way latencies (client -> broker -> server and
 *     back) + the transmission time of the four envelopes + two service times, within 1%;
 *   - overload: many requests in flight against a slow broker queue up there (latency far
 *     above the unloaded one), and with a small queue_limit the broker rejects PUBLISHes;
 *   - a broker crash: requests time out while it is down, then complete again once it is
 *     back and the endpoints have subscribed again;
 *   - a partition between the broker and the server: nothing reaches it until the heal;
 *   - a server crash: its stream closes at the broker in the crash's step (applied by
 *     whichever node steps first), which requeues the deliveries it had not ACKed and
 *     redelivers them once the server is back (docs/simulator.md, "Faults").
 *
 * Each simulation runs in a forked child (SimGrid runs one per process; cb_test_fork.h).
 */
#include <string.h>

#include "cb_err.h"
#include "cb_sgworld.h"
#include "cb_test.h"
#include "cb_test_fork.h"

#define QT_SAMPLES 4096u

typedef struct qt_arg {
    uint64_t latency_ns;
    uint64_t service_ns;
    uint32_t queue_limit;
    uint32_t clients;
    uint32_t outstanding;
    uint64_t timeout_ns;
    uint64_t until_ns;
    uint64_t requests_max; /* per client; 0: until until_ns */
    int crash_broker;      /* crash at 50 ms, recover at 150 ms */
    int crash_server;      /* the same for server 0 */
    int partition_server;  /* {clients, broker} | {server 0} from 50 to 150 ms */
    uint32_t loss_ppm;
    uint64_t jitter_ns;
} qt_arg;

typedef struct qt_result {
    int rc;
    uint32_t gets;
    uint64_t median_ns;
    uint64_t min_ns;
    uint64_t max_ns;
    uint64_t timeouts;
    uint64_t ok_before_crash;
    uint64_t ok_during_crash; /* completed (not timeout) between 60 and 150 ms */
    uint64_t ok_after_recover;
    uint64_t timeouts_during_crash;
    cb_sgworld_stats stats;
} qt_result;

typedef struct qt_state {
    const qt_arg *arg;
    uint64_t submitted[64];
    uint32_t gets;
    uint64_t latency_ns[QT_SAMPLES];
    qt_result *r;
} qt_state;

static const uint8_t qt_key[] = "k";
static const uint8_t qt_value[32] = "0123456789abcdef0123456789abcdef";

static int qt_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op, uint32_t *server,
                   uint64_t *wake_ns)
{
    qt_state *s = user;
    (void)now_ns;
    if (s->arg->requests_max != 0 && s->submitted[client] >= s->arg->requests_max) {
        *wake_ns = UINT64_MAX;
        return 0;
    }
    op->op = s->submitted[client] == 0 ? CB_OP_SET : CB_OP_GET;
    op->key = qt_key;
    op->key_len = 1;
    if (op->op == CB_OP_SET) {
        op->value = qt_value;
        op->value_len = sizeof qt_value;
    }
    s->submitted[client]++;
    *server = 0;
    return 1;
}

static void qt_complete(void *user, uint32_t client, const cb_completion *c)
{
    qt_state *s = user;
    (void)client;
    int ok = c->outcome != CB_OUTCOME_TIMEOUT && c->outcome != CB_OUTCOME_ERROR;
    s->r->timeouts += c->outcome == CB_OUTCOME_TIMEOUT;
    if (c->complete_ns < 50000000ull) {
        s->r->ok_before_crash += (uint64_t)ok;
    } else if (c->complete_ns >= 60000000ull && c->complete_ns < 150000000ull) {
        s->r->ok_during_crash += (uint64_t)ok;
        s->r->timeouts_during_crash += c->outcome == CB_OUTCOME_TIMEOUT;
    } else if (c->complete_ns >= 200000000ull) {
        s->r->ok_after_recover += (uint64_t)ok;
    }
    if (c->op == CB_OP_GET && c->outcome == CB_OUTCOME_HIT && s->gets < QT_SAMPLES) {
        s->latency_ns[s->gets++] = c->complete_ns - c->issue_ns;
    }
}

static int qt_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void qt_child(const void *arg, void *result)
{
    const qt_arg *a = arg;
    static qt_state s;
    memset(&s, 0, sizeof s);
    s.arg = a;
    s.r = result;
    cb_sgworld_config cfg = cb_sgworld_config_default();
    cfg.context_factory = CB_TEST_SG_FACTORY;
    cfg.transport = CB_SGWORLD_QUEUE;
    cfg.client_count = a->clients;
    cfg.latency_ns = a->latency_ns;
    cfg.bandwidth_bps = 1000000000ull;
    cfg.loss_ppm = a->loss_ppm;
    cfg.jitter_ns = a->jitter_ns;
    cfg.rto_ns = 2000000ull;
    cfg.client.outstanding_max = a->outstanding;
    cfg.client.timeout_ns = a->timeout_ns;
    cfg.client.timeout_max_ns = a->timeout_ns;
    cfg.client.attempts_max = 1;
    cfg.broker = cb_broker_config_default();
    cfg.broker.service_ns = a->service_ns;
    cfg.broker.queue_limit = a->queue_limit;
    cfg.broker.ack_timeout_ns = 1000000000ull;
    cfg.broker.payload_bytes_max = 4096;
    cb_sgworld_fault faults[2] = {
        {.at_ns = 50000000ull, .kind = CB_SGWORLD_FAULT_CRASH, .node = 1 + a->clients},
        {.at_ns = 150000000ull, .kind = CB_SGWORLD_FAULT_RECOVER, .node = 1 + a->clients},
    };
    if (a->crash_server) {
        faults[0].node = faults[1].node = 0;
    }
    uint8_t groups[64 + 2];
    memset(groups, 1, sizeof groups);
    groups[0] = 2; /* server 0 alone; the clients and the broker (node 1 + clients) together */
    if (a->partition_server) {
        faults[0] = (cb_sgworld_fault){
            .at_ns = 50000000ull, .kind = CB_SGWORLD_FAULT_PARTITION, .groups = groups};
        faults[1] = (cb_sgworld_fault){.at_ns = 150000000ull, .kind = CB_SGWORLD_FAULT_HEAL};
    }
    if (a->crash_broker || a->crash_server || a->partition_server) {
        cfg.faults = faults;
        cfg.fault_count = 2;
    }
    cb_world_hooks hooks = {&s, qt_next, qt_complete, NULL, NULL};
    s.r->rc = cb_sgworld_run(&cfg, &hooks, a->until_ns, &s.r->stats);
    qsort(s.latency_ns, s.gets, sizeof s.latency_ns[0], qt_cmp);
    s.r->gets = s.gets;
    if (s.gets > 0) {
        s.r->median_ns = s.latency_ns[s.gets / 2];
        s.r->min_ns = s.latency_ns[0];
        s.r->max_ns = s.latency_ns[s.gets - 1];
    }
}

static qt_result qt_run(const qt_arg *a)
{
    qt_result r;
    CU_ASSERT_EQUAL_FATAL(cb_test_fork(qt_child, a, &r, sizeof r), 0);
    CU_ASSERT_EQUAL(r.rc, CB_ERR_OK);
    return r;
}

static void qt_latency_check(uint64_t latency_ns, uint64_t service_ns)
{
    qt_arg a = {.latency_ns = latency_ns,
                .service_ns = service_ns,
                .queue_limit = 1024,
                .clients = 1,
                .outstanding = 1,
                .timeout_ns = 1000000000ull,
                .until_ns = UINT64_MAX,
                .requests_max = 201};
    qt_result r = qt_run(&a);
    CU_ASSERT_EQUAL(r.gets, 200);
    /*
     * Bytes per leg (docs/protocol.md §2, §10): a GET frame is 40 + 1 (key), its hit reply
     * 40 + 32 (value); each envelope adds 28; each message one TCP/IP header (40) and
     * Ethernet framing (38). The server's ACK of the request leaves in the same message as
     * its reply's PUBLISH (the endpoint coalesces them). The client's ACK of the previous
     * reply leaves in its own message just before the next request (the completion comes
     * between them) and shares the client's link with it, so it adds its transmission time.
     */
    uint64_t req = 28 + 41, rep = 28 + 72, ack = 28, pkt = 40 + 38;
    uint64_t wire = (ack + pkt) + (req + pkt) + (req + pkt) + (ack + rep + pkt) + (rep + pkt);
    uint64_t expect = 4 * latency_ns + wire * 8 + 2 * service_ns;
    printf("\n  L = %llu ns, service %llu ns: median GET %llu ns (min %llu, max %llu), "
           "expected 4L + %llu B * 8 ns/B + 2 service = %llu ns\n",
           (unsigned long long)latency_ns, (unsigned long long)service_ns,
           (unsigned long long)r.median_ns, (unsigned long long)r.min_ns,
           (unsigned long long)r.max_ns, (unsigned long long)wire, (unsigned long long)expect);
    uint64_t diff = r.median_ns > expect ? r.median_ns - expect : expect - r.median_ns;
    CU_ASSERT(diff * 100 <= expect); /* within 1% */
    CU_ASSERT(diff <= 4);            /* in fact exact to SimGrid's 1 ns precision */
    CU_ASSERT_EQUAL(r.stats.broker.published, 2 * 201);
    CU_ASSERT_EQUAL(r.stats.broker.delivered, 2 * 201);
    /* The last reply's ACK is still on its way when the run ends. */
    CU_ASSERT(r.stats.broker.acked >= 2 * 201 - 1);
    CU_ASSERT_EQUAL(r.stats.broker.rejected, 0);
}

static void test_sgqueue_latency_is_4L(void)
{
    qt_latency_check(1000000, 0);    /* 1 ms, no service time */
    qt_latency_check(100000, 20000); /* 100 us, 20 us per delivery */
}

/* 4 clients x 32 in flight against 50 us per delivery (10^4 requests/s at most): requests
 * wait at the broker. With queue_limit 1024 none is refused; with 16, PUBLISHes are. */
static void test_sgqueue_overload(void)
{
    qt_arg a = {.latency_ns = 100000,
                .service_ns = 50000,
                .queue_limit = 1024,
                .clients = 4,
                .outstanding = 32,
                .timeout_ns = 1000000000ull,
                .until_ns = 200000000ull};
    qt_result big = qt_run(&a);
    uint64_t unloaded = 4 * a.latency_ns + 2 * a.service_ns;
    printf("\n  overload, queue_limit 1024: median GET %llu ns (unloaded about %llu), depth max "
           "%llu, rejected %llu\n",
           (unsigned long long)big.median_ns, (unsigned long long)unloaded,
           (unsigned long long)big.stats.broker.depth_max,
           (unsigned long long)big.stats.broker.rejected);
    CU_ASSERT(big.gets > 100);
    /* 128 requests in flight, two deliveries each at 50 us: about 128 * 100 us queued. */
    CU_ASSERT(big.median_ns > 10 * unloaded);
    CU_ASSERT(big.stats.broker.depth_max > 64);
    CU_ASSERT_EQUAL(big.stats.broker.rejected, 0);
    /* Throughput is the broker's: at most one delivery per 50 us. */
    CU_ASSERT(big.stats.broker.delivered <= a.until_ns / a.service_ns + 1);
    a.queue_limit = 16;
    a.timeout_ns = 20000000ull;
    qt_result small = qt_run(&a);
    printf("  overload, queue_limit 16: rejected %llu, nacks %llu, timeouts %llu\n",
           (unsigned long long)small.stats.broker.rejected,
           (unsigned long long)small.stats.queue_nacks, (unsigned long long)small.timeouts);
    CU_ASSERT(small.stats.broker.rejected > 0);
    CU_ASSERT_EQUAL(small.stats.queue_nacks, small.stats.broker.rejected);
    CU_ASSERT(small.timeouts > 0); /* a refused request is only retried by its timeout */
    CU_ASSERT(small.stats.broker.depth_max <= 16);
}

/* The broker is down from 50 to 150 ms: requests time out (20 ms), then flow again. */
static void test_sgqueue_broker_crash(void)
{
    qt_arg a = {.latency_ns = 100000,
                .service_ns = 0,
                .queue_limit = 1024,
                .clients = 2,
                .outstanding = 4,
                .timeout_ns = 20000000ull,
                .until_ns = 300000000ull,
                .crash_broker = 1};
    qt_result r = qt_run(&a);
    printf("\n  broker crash: ok before %llu, during %llu (timeouts %llu), after %llu\n",
           (unsigned long long)r.ok_before_crash, (unsigned long long)r.ok_during_crash,
           (unsigned long long)r.timeouts_during_crash, (unsigned long long)r.ok_after_recover);
    CU_ASSERT(r.ok_before_crash > 100);
    CU_ASSERT_EQUAL(r.ok_during_crash, 0);
    CU_ASSERT(r.timeouts_during_crash > 0);
    CU_ASSERT(r.ok_after_recover > 100);
    CU_ASSERT_EQUAL(r.stats.faults_applied, 2);
}

/* A server crash with requests on their way to it: the broker requeues the deliveries the
 * server had not ACKed (at the crash time, from whichever node's step applies it) and
 * redelivers them once the recovered server subscribes again; the run stays consistent
 * (no node left waiting past its new deadline) and the same seed gives the same run. */
static void test_sgqueue_server_crash(void)
{
    qt_arg a = {.latency_ns = 100000,
                .service_ns = 20000,
                .queue_limit = 1024,
                .clients = 3,
                .outstanding = 8,
                .timeout_ns = 20000000ull,
                .until_ns = 300000000ull,
                .crash_server = 1};
    qt_result r = qt_run(&a);
    qt_result again = qt_run(&a);
    printf("\n  server crash: ok before %llu, during %llu (timeouts %llu), after %llu, "
           "redelivered %llu\n",
           (unsigned long long)r.ok_before_crash, (unsigned long long)r.ok_during_crash,
           (unsigned long long)r.timeouts_during_crash, (unsigned long long)r.ok_after_recover,
           (unsigned long long)r.stats.broker.redelivered);
    CU_ASSERT(r.ok_before_crash > 100);
    CU_ASSERT_EQUAL(r.ok_during_crash, 0);
    CU_ASSERT(r.timeouts_during_crash > 0);
    CU_ASSERT(r.ok_after_recover > 100);
    CU_ASSERT(r.stats.broker.redelivered > 0);
    CU_ASSERT_EQUAL(r.stats.faults_applied, 2);
    CU_ASSERT_EQUAL(r.gets, again.gets);
    CU_ASSERT_EQUAL(r.median_ns, again.median_ns);
    CU_ASSERT_EQUAL(r.stats.end_ns, again.stats.end_ns);
    CU_ASSERT(memcmp(&r.stats.broker, &again.stats.broker, sizeof r.stats.broker) == 0);
}

/* A partition between the broker and the server: the broker is in the partition's groups
 * like any node, so nothing reaches the server until the heal (it used to stay in no group
 * and carry every message across). */
static void test_sgqueue_partition_broker_server(void)
{
    qt_arg a = {.latency_ns = 100000,
                .service_ns = 0,
                .queue_limit = 1024,
                .clients = 2,
                .outstanding = 4,
                .timeout_ns = 20000000ull,
                .until_ns = 300000000ull,
                .partition_server = 1};
    qt_result r = qt_run(&a);
    printf("\n  partition: ok before %llu, during %llu (timeouts %llu), after %llu\n",
           (unsigned long long)r.ok_before_crash, (unsigned long long)r.ok_during_crash,
           (unsigned long long)r.timeouts_during_crash, (unsigned long long)r.ok_after_recover);
    CU_ASSERT(r.ok_before_crash > 100);
    CU_ASSERT_EQUAL(r.ok_during_crash, 0);
    CU_ASSERT(r.timeouts_during_crash > 0);
    CU_ASSERT(r.ok_after_recover > 100);
    CU_ASSERT_EQUAL(r.stats.faults_applied, 2);
}

/* Same seed, same run: every counter of two runs with loss and jitter agrees. */
static void test_sgqueue_same_seed_same_run(void)
{
    qt_arg a = {.latency_ns = 100000,
                .service_ns = 5000,
                .queue_limit = 64,
                .clients = 3,
                .outstanding = 8,
                .timeout_ns = 5000000ull,
                .until_ns = 100000000ull,
                .crash_broker = 0,
                .loss_ppm = 20000,
                .jitter_ns = 20000};
    qt_result x = qt_run(&a);
    qt_result y = qt_run(&a);
    CU_ASSERT(x.gets > 100);
    CU_ASSERT_EQUAL(x.gets, y.gets);
    CU_ASSERT_EQUAL(x.median_ns, y.median_ns);
    CU_ASSERT_EQUAL(x.max_ns, y.max_ns);
    CU_ASSERT(memcmp(&x.stats.broker, &y.stats.broker, sizeof x.stats.broker) == 0);
    CU_ASSERT_EQUAL(x.stats.messages_sent, y.stats.messages_sent);
    CU_ASSERT_EQUAL(x.stats.end_ns, y.stats.end_ns);
    CU_ASSERT(x.stats.messages_delayed > 0); /* the loss draws happened */
    CU_ASSERT_EQUAL(x.stats.messages_delayed, y.stats.messages_delayed);
}

static const cb_test_case tests[] = {
    {"same_seed_same_run", test_sgqueue_same_seed_same_run},
    {"latency_is_4L", test_sgqueue_latency_is_4L},
    {"overload", test_sgqueue_overload},
    {"broker_crash", test_sgqueue_broker_crash},
    {"server_crash", test_sgqueue_server_crash},
    {"partition_broker_server", test_sgqueue_partition_broker_server},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_sgqueue", tests)
