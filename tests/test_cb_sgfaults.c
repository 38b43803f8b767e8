/*
 * test_cb_sgfaults.c: the SimGrid driver's fault timeline (cb_sgworld faults) and its
 * translation from a scenario (sim/cb_sgfaults) — a crashed server comes back empty, a
 * crashed client's requests end and it resumes after recovery, a partition makes requests
 * time out until the heal, link latency, bandwidth and loss changes show after their time,
 * and every fault is reported with its simulated time.
 *
 * As in test_cb_sgworld.c, every simulation runs in a forked child (one SimGrid run per
 * process) that writes its result struct into a pipe and exits with exit(0), so that
 * LeakSanitizer checks it under CB_SANITIZE (with SimGrid's thread contexts).
 */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cb_err.h"
#include "cb_sgfaults.h"
#include "cb_sgworld.h"
#include "cb_test.h"
#include "cb_test_fork.h"

#define FT_RECS_MAX   4000u
#define FT_EVENTS_MAX 8u
#define FT_MS         1000000ull
#define FT_US         1000ull

/* ---- a scripted client: SET 10 keys, then 1 SET per 3 GETs, until end_ns --------------- */

typedef struct ft_arg {
    uint8_t transport;
    uint32_t servers;
    uint32_t outstanding;
    uint64_t timeout_ns;
    uint32_t attempts;
    uint64_t end_ns; /* stop issuing then */
    size_t fault_count;
    cb_sgworld_fault faults[4];
    uint8_t groups[8];
} ft_arg;

typedef struct ft_rec {
    uint64_t issue_ns;
    uint64_t complete_ns;
    uint8_t op;
    uint8_t outcome;
    uint8_t server;
    uint8_t attempts;
} ft_rec;

typedef struct ft_event {
    uint64_t at_ns;
    uint32_t node;
    uint8_t kind;
} ft_event;

typedef struct ft_result {
    int rc;
    cb_sgworld_stats stats;
    uint32_t count;
    uint32_t event_count;
    ft_event events[FT_EVENTS_MAX];
    ft_rec recs[FT_RECS_MAX];
} ft_result;

typedef struct ft_state {
    const ft_arg *arg;
    ft_result *r;
    uint32_t issued;
    uint8_t keys[10][2];
} ft_state;

static const uint8_t ft_value[8] = "01234567";

static int ft_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op, uint32_t *server,
                   uint64_t *wake_ns)
{
    ft_state *s = user;
    (void)client;
    if (now_ns >= s->arg->end_ns || s->issued >= FT_RECS_MAX) {
        *wake_ns = UINT64_MAX;
        return 0;
    }
    uint32_t i = s->issued++;
    int set = i < 10 || i % 4 == 0;
    uint32_t key = i < 10 ? i : set ? (i / 4) % 10 : i % 10;
    op->op = set ? CB_OP_SET : CB_OP_GET;
    op->key = s->keys[key];
    op->key_len = 2;
    if (set) {
        op->value = ft_value;
        op->value_len = sizeof ft_value;
    }
    *server = i % s->arg->servers;
    return 1;
}

static void ft_complete(void *user, uint32_t client, const cb_completion *c)
{
    ft_state *s = user;
    (void)client;
    if (s->r->count < FT_RECS_MAX) {
        s->r->recs[s->r->count++] = (ft_rec){c->issue_ns, c->complete_ns,   c->op,
                                             c->outcome,  (uint8_t)c->peer, (uint8_t)c->attempts};
    }
}

static void ft_event_hook(void *user, uint32_t node, const cb_event *e, uint64_t now_ns)
{
    ft_state *s = user;
    if (e->kind >= CB_EVENT_CRASH && s->r->event_count < FT_EVENTS_MAX) {
        s->r->events[s->r->event_count++] = (ft_event){now_ns, node, e->kind};
    }
}

static void ft_child(const void *varg, void *result)
{
    const ft_arg *arg = varg;
    static ft_state s;
    memset(&s, 0, sizeof s);
    s.arg = arg;
    s.r = result;
    for (int k = 0; k < 10; k++) {
        s.keys[k][0] = 'k';
        s.keys[k][1] = (uint8_t)('0' + k);
    }
    cb_sgworld_config cfg = cb_sgworld_config_default();
    cfg.context_factory = CB_TEST_SG_FACTORY;
    cfg.server.dedup_window = 64;
    cfg.server_count = arg->servers;
    cfg.latency_ns = 100 * FT_US;
    cfg.transport = arg->transport;
    cfg.client.outstanding_max = arg->outstanding;
    cfg.client.timeout_ns = arg->timeout_ns;
    cfg.client.timeout_max_ns = arg->timeout_ns;
    cfg.client.attempts_max = arg->attempts;
    cfg.client.jitter_ppm = 0;
    cfg.faults = arg->faults;
    cfg.fault_count = arg->fault_count;
    cb_world_hooks hooks = {&s, ft_next, ft_complete, ft_event_hook, NULL};
    s.r->rc = cb_sgworld_run(&cfg, &hooks, UINT64_MAX, &s.r->stats);
}

static ft_arg ft_arg_default(void)
{
    ft_arg a;
    memset(&a, 0, sizeof a);
    a.transport = CB_SGWORLD_TCP;
    a.servers = 1;
    a.outstanding = 1;
    a.timeout_ns = FT_MS;
    a.attempts = 1;
    a.end_ns = 30 * FT_MS;
    return a;
}

static void ft_add(ft_arg *a, uint64_t at_ns, uint8_t kind, uint32_t node)
{
    cb_sgworld_fault *f = &a->faults[a->fault_count++];
    memset(f, 0, sizeof *f);
    f->at_ns = at_ns;
    f->kind = kind;
    f->node = node;
}

static ft_result *ft_run(const ft_arg *arg)
{
    static ft_result r;
    CU_ASSERT_EQUAL_FATAL(cb_test_fork(ft_child, arg, &r, sizeof r), 0);
    CU_ASSERT_EQUAL(r.rc, CB_ERR_OK);
    return &r;
}

/* Counts over the requests issued in [from, to) (to a server, or any with UINT32_MAX). */
typedef struct ft_window {
    uint32_t requests, gets, hits, misses, timeouts, errors, retried;
} ft_window;

static ft_window ft_count(const ft_result *r, uint64_t from, uint64_t to, uint32_t server)
{
    ft_window w;
    memset(&w, 0, sizeof w);
    for (uint32_t i = 0; i < r->count; i++) {
        const ft_rec *c = &r->recs[i];
        if (c->issue_ns < from || c->issue_ns >= to ||
            (server != UINT32_MAX && c->server != server)) {
            continue;
        }
        w.requests++;
        w.gets += c->op == CB_OP_GET;
        w.hits += c->outcome == CB_OUTCOME_HIT;
        w.misses += c->outcome == CB_OUTCOME_MISS;
        w.timeouts += c->outcome == CB_OUTCOME_TIMEOUT;
        w.errors += c->outcome == CB_OUTCOME_ERROR;
        w.retried += c->attempts > 1;
    }
    return w;
}

static void ft_check_event(const ft_result *r, uint32_t i, uint64_t at_ns, uint32_t node,
                           uint8_t kind)
{
    CU_ASSERT_FATAL(i < r->event_count);
    CU_ASSERT_EQUAL(r->events[i].at_ns, at_ns);
    CU_ASSERT_EQUAL(r->events[i].node, node);
    CU_ASSERT_EQUAL(r->events[i].kind, kind);
}

/* ---- crash and recover ---------------------------------------------------------------- */

static void test_server_crash_comes_back_empty(void)
{
    ft_arg a = ft_arg_default();
    a.end_ns = 40 * FT_MS;
    ft_add(&a, 10 * FT_MS, CB_SGWORLD_FAULT_CRASH, 0);
    ft_add(&a, 20 * FT_MS, CB_SGWORLD_FAULT_RECOVER, 0);
    ft_result *r = ft_run(&a);
    CU_ASSERT_EQUAL(r->event_count, 2);
    ft_check_event(r, 0, 10 * FT_MS, 0, CB_EVENT_CRASH);
    ft_check_event(r, 1, 20 * FT_MS, 0, CB_EVENT_RECOVER);
    ft_window before = ft_count(r, 3 * FT_MS, 9 * FT_MS, UINT32_MAX);
    ft_window down = ft_count(r, 10 * FT_MS, 19 * FT_MS, UINT32_MAX);
    ft_window after = ft_count(r, 20 * FT_MS, 22 * FT_MS, UINT32_MAX);
    ft_window later = ft_count(r, 32 * FT_MS, 40 * FT_MS, UINT32_MAX);
    printf("\n  hits/gets: before %u/%u, down %u timeouts of %u, after %u/%u, later %u/%u",
           before.hits, before.gets, down.timeouts, down.requests, after.hits, after.gets,
           later.hits, later.gets);
    CU_ASSERT(before.gets > 20 && before.hits == before.gets);
    CU_ASSERT(down.requests > 0 && down.timeouts == down.requests);
    CU_ASSERT(after.gets > 0 && after.hits * 2 < after.gets); /* empty: mostly misses */
    CU_ASSERT(later.gets > 20 && later.hits == later.gets);   /* refilled */
    CU_ASSERT(r->stats.messages_faulted > 0);
}

static void test_client_crash_abandons_then_resumes(void)
{
    ft_arg a = ft_arg_default();
    a.outstanding = 4;
    a.timeout_ns = 50 * FT_MS;
    ft_add(&a, 10 * FT_MS, CB_SGWORLD_FAULT_CRASH, 1);
    ft_add(&a, 20 * FT_MS, CB_SGWORLD_FAULT_RECOVER, 1);
    ft_result *r = ft_run(&a);
    ft_check_event(r, 0, 10 * FT_MS, 1, CB_EVENT_CRASH);
    ft_check_event(r, 1, 20 * FT_MS, 1, CB_EVENT_RECOVER);
    uint32_t errors = 0;
    for (uint32_t i = 0; i < r->count; i++) {
        if (r->recs[i].outcome == CB_OUTCOME_ERROR) {
            errors++;
            CU_ASSERT_EQUAL(r->recs[i].complete_ns, 10 * FT_MS);
        }
    }
    CU_ASSERT_EQUAL(errors, 4); /* a full closed loop: its 4 requests in flight */
    CU_ASSERT_EQUAL(ft_count(r, 10 * FT_MS + 1, 20 * FT_MS, UINT32_MAX).requests, 0);
    ft_window after = ft_count(r, 20 * FT_MS, 30 * FT_MS, UINT32_MAX);
    CU_ASSERT(after.requests > 100);
    CU_ASSERT_EQUAL(after.errors + after.timeouts, 0);
    CU_ASSERT_EQUAL(after.hits, after.gets);  /* the server kept its data */
    CU_ASSERT(r->stats.messages_faulted > 0); /* replies to the crashed client */
}

static void test_never_recovered_client_ends_the_run(void)
{
    ft_arg a = ft_arg_default();
    ft_add(&a, 5 * FT_MS, CB_SGWORLD_FAULT_CRASH, 1);
    ft_result *r = ft_run(&a);
    CU_ASSERT_EQUAL(ft_count(r, 5 * FT_MS + 1, UINT64_MAX, UINT32_MAX).requests, 0);
    CU_ASSERT(r->stats.end_ns <= 5 * FT_MS + FT_MS);
}

/* ---- partition and heal --------------------------------------------------------------- */

static void test_partition_times_out_until_heal(void)
{
    ft_arg a = ft_arg_default();
    a.servers = 2;
    a.groups[0] = 2; /* server0 apart from client0 (node 2); server1 in no group */
    a.groups[1] = 0;
    a.groups[2] = 1;
    ft_add(&a, 10 * FT_MS, CB_SGWORLD_FAULT_PARTITION, CB_SGWORLD_NODE_NONE);
    a.faults[0].groups = a.groups;
    ft_add(&a, 20 * FT_MS, CB_SGWORLD_FAULT_HEAL, CB_SGWORLD_NODE_NONE);
    ft_result *r = ft_run(&a);
    ft_check_event(r, 0, 10 * FT_MS, CB_SGWORLD_NODE_NONE, CB_EVENT_PARTITION);
    ft_check_event(r, 1, 20 * FT_MS, CB_SGWORLD_NODE_NONE, CB_EVENT_HEAL);
    ft_window cut = ft_count(r, 10 * FT_MS, 19 * FT_MS, 0);
    ft_window other = ft_count(r, 10 * FT_MS, 20 * FT_MS, 1);
    ft_window healed = ft_count(r, 20 * FT_MS, 30 * FT_MS, UINT32_MAX);
    CU_ASSERT(cut.requests > 0 && cut.timeouts == cut.requests);
    CU_ASSERT(other.requests > 0 && other.timeouts == 0);
    CU_ASSERT(healed.requests > 20 && healed.timeouts == 0);
    CU_ASSERT_EQUAL(ft_count(r, 0, 10 * FT_MS - FT_MS, UINT32_MAX).timeouts, 0);
}

/* ---- link changes --------------------------------------------------------------------- */

/* Median latency of the GETs issued in [from, to). */
static uint64_t ft_median_get(const ft_result *r, uint64_t from, uint64_t to)
{
    static uint64_t lat[FT_RECS_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->count; i++) {
        const ft_rec *c = &r->recs[i];
        if (c->op == CB_OP_GET && c->issue_ns >= from && c->issue_ns < to) {
            uint64_t v = c->complete_ns - c->issue_ns;
            uint32_t j = n++;
            for (; j > 0 && lat[j - 1] > v; j--) {
                lat[j] = lat[j - 1]; /* insertion sort: a few hundred values */
            }
            lat[j] = v;
        }
    }
    return n > 0 ? lat[n / 2] : 0;
}

static void test_link_latency_and_bandwidth_show_after_their_time(void)
{
    ft_arg a = ft_arg_default();
    a.timeout_ns = 50 * FT_MS;
    ft_add(&a, 10 * FT_MS, CB_SGWORLD_FAULT_LINK, 0);
    a.faults[0].link_set = CB_SGWORLD_LINK_LATENCY;
    a.faults[0].latency_ns = 2 * FT_MS; /* server0's link: 1 ms each way */
    ft_add(&a, 20 * FT_MS, CB_SGWORLD_FAULT_LINK, 0);
    a.faults[1].link_set = CB_SGWORLD_LINK_BANDWIDTH;
    a.faults[1].bandwidth_bps = 1000000; /* 1 Mbit/s: a 120-byte message takes ~1 ms */
    ft_result *r = ft_run(&a);
    ft_check_event(r, 0, 10 * FT_MS, 0, CB_EVENT_LINK_CHANGE);
    ft_check_event(r, 1, 20 * FT_MS, 0, CB_EVENT_LINK_CHANGE);
    uint64_t m0 = ft_median_get(r, 2 * FT_MS, 10 * FT_MS);
    uint64_t m1 = ft_median_get(r, 10 * FT_MS, 20 * FT_MS);
    uint64_t m2 = ft_median_get(r, 20 * FT_MS, 40 * FT_MS);
    printf("\n  median GET: %llu ns, then %llu ns, then %llu ns", (unsigned long long)m0,
           (unsigned long long)m1, (unsigned long long)m2);
    /* 2 x 100 us, then 2 x (50 us + 1 ms), plus about 2 us of transmission at 1 Gbit/s. */
    CU_ASSERT(m0 >= 200 * FT_US && m0 < 203 * FT_US);
    CU_ASSERT(m1 >= 2100 * FT_US && m1 < 2103 * FT_US);
    /* The GET in flight at 10 ms: SimGrid applies the change to it approximately, but it
     * must not stall (lazy updates stalled it until the next link change, at 20 ms). */
    for (uint32_t i = 0; i < r->count; i++) {
        if (r->recs[i].issue_ns < 10 * FT_MS && r->recs[i].complete_ns > 10 * FT_MS) {
            CU_ASSERT(r->recs[i].complete_ns < 13 * FT_MS);
        }
    }
    /* Then request (~120 B) and reply (~126 B) at 1 Mbit/s: about 2 ms more. */
    CU_ASSERT(m2 >= 4000 * FT_US && m2 < 4200 * FT_US);
}

static void test_udp_link_loss_after_its_time(void)
{
    ft_arg a = ft_arg_default();
    a.transport = CB_SGWORLD_UDP;
    a.attempts = 4;
    a.end_ns = 600 * FT_MS;
    ft_add(&a, 10 * FT_MS, CB_SGWORLD_FAULT_LINK, 1); /* client0's link */
    a.faults[0].link_set = CB_SGWORLD_LINK_LOSS;
    a.faults[0].loss_ppm = 100000;
    ft_result *r = ft_run(&a);
    ft_window before = ft_count(r, 0, 10 * FT_MS, UINT32_MAX);
    ft_window after = ft_count(r, 10 * FT_MS, UINT64_MAX, UINT32_MAX);
    CU_ASSERT_EQUAL(before.retried, 0);
    /* Every datagram to or from client0 is lost with p = 10%; a single-datagram request's
     * first attempt fails when its request or its reply is: 1 - 0.9^2 = 19%. */
    printf("\n  first attempts lost after the change: %u of %u", after.retried, after.requests);
    CU_ASSERT(after.requests > 1000);
    CU_ASSERT(after.retried * 100 >= after.requests * 15);
    CU_ASSERT(after.retried * 100 <= after.requests * 23);
    CU_ASSERT(r->stats.messages_lost * 100 >= r->stats.messages_sent * 7);
    CU_ASSERT(r->stats.messages_lost * 100 <= r->stats.messages_sent * 12);
}

/* ---- config checks and the scenario's timeline ---------------------------------------- */

static void test_bad_timelines_are_refused(void)
{
    /* Refused before SimGrid starts, so the test process keeps its (unused) run. */
    cb_sgworld_config cfg = cb_sgworld_config_default();
    cb_world_hooks hooks = {NULL, ft_next, ft_complete, NULL, NULL};
    cb_sgworld_fault f[2];
    memset(f, 0, sizeof f);
    f[0].at_ns = 5;
    f[0].kind = CB_SGWORLD_FAULT_CRASH;
    f[1] = f[0];
    f[1].at_ns = 4; /* out of order */
    cfg.faults = f;
    cfg.fault_count = 2;
    CU_ASSERT_EQUAL(cb_sgworld_run(&cfg, &hooks, UINT64_MAX, NULL), CB_ERR_INVALID);
    f[1].at_ns = 6;
    f[1].node = 2; /* no such node */
    CU_ASSERT_EQUAL(cb_sgworld_run(&cfg, &hooks, UINT64_MAX, NULL), CB_ERR_INVALID);
    f[1].node = 0;
    f[1].kind = CB_SGWORLD_FAULT_LINK; /* nothing to change */
    CU_ASSERT_EQUAL(cb_sgworld_run(&cfg, &hooks, UINT64_MAX, NULL), CB_ERR_INVALID);
    f[1].kind = CB_SGWORLD_FAULT_PARTITION; /* no groups */
    CU_ASSERT_EQUAL(cb_sgworld_run(&cfg, &hooks, UINT64_MAX, NULL), CB_ERR_INVALID);
}

static void test_plan_faults_expand_patterns(void)
{
    static const char text[] = "[scenario]\nname = f\nrequests = 10\n"
                               "[servers]\ncount = 3\n[clients]\ncount = 12\n"
                               "[faults]\nat = 5ms crash server*\n"
                               "at = 6ms partition {client1*, server0} | {server2}\n"
                               "at = 7ms link client1 loss=2% latency=1ms\nat = 8ms heal\n";
    static cb_diag diag;
    cb_plan plan;
    CU_ASSERT_EQUAL_FATAL(cb_scenario_load_string("f.ini", text, sizeof text - 1, &plan, &diag),
                          CB_ERR_OK);
    cb_sgfaults t;
    CU_ASSERT_EQUAL_FATAL(cb_sgfaults_from_plan(&plan, &t), CB_ERR_OK);
    CU_ASSERT_EQUAL_FATAL(t.count, 3 + 1 + 1 + 1);
    for (uint32_t i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(t.items[i].kind, CB_SGWORLD_FAULT_CRASH);
        CU_ASSERT_EQUAL(t.items[i].node, i);
        CU_ASSERT_EQUAL(t.items[i].at_ns, 5 * FT_MS);
    }
    const cb_sgworld_fault *p = &t.items[3];
    CU_ASSERT_EQUAL(p->kind, CB_SGWORLD_FAULT_PARTITION);
    /* server0 and client1, client10, client11 (nodes 4, 13, 14) in group 1; server2 in 2. */
    static const uint8_t want[15] = {1, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1};
    CU_ASSERT(memcmp(p->groups, want, sizeof want) == 0);
    CU_ASSERT_STRING_EQUAL(p->label, "6ms partition {client1*, server0} | {server2}");
    CU_ASSERT_EQUAL(t.items[4].kind, CB_SGWORLD_FAULT_LINK);
    CU_ASSERT_EQUAL(t.items[4].node, 4);
    CU_ASSERT_EQUAL(t.items[4].link_set, CB_SGWORLD_LINK_LOSS | CB_SGWORLD_LINK_LATENCY);
    CU_ASSERT_EQUAL(t.items[4].loss_ppm, 20000);
    CU_ASSERT_EQUAL(t.items[4].latency_ns, FT_MS);
    CU_ASSERT_EQUAL(t.items[5].kind, CB_SGWORLD_FAULT_HEAL);
    cb_sgfaults_free(&t);
    cb_plan_free(&plan);
}

/* With the queue transport the broker is node S+C; `broker` and `*`-patterns reach it. */
static void test_plan_faults_name_the_broker(void)
{
    static const char text[] = "[scenario]\nname = f\nrequests = 10\n"
                               "[servers]\ncount = 2\n[clients]\ncount = 3\n"
                               "[transport]\nkind = queue\n"
                               "[faults]\nat = 5ms crash broker\nat = 6ms recover b*\n"
                               "at = 7ms partition {broker} | {server*}\n";
    static cb_diag diag;
    cb_plan plan;
    CU_ASSERT_EQUAL_FATAL(cb_scenario_load_string("f.ini", text, sizeof text - 1, &plan, &diag),
                          CB_ERR_OK);
    cb_sgfaults t;
    CU_ASSERT_EQUAL_FATAL(cb_sgfaults_from_plan(&plan, &t), CB_ERR_OK);
    CU_ASSERT_EQUAL_FATAL(t.count, 3);
    CU_ASSERT_EQUAL(t.items[0].kind, CB_SGWORLD_FAULT_CRASH);
    CU_ASSERT_EQUAL(t.items[0].node, 5);
    CU_ASSERT_EQUAL(t.items[1].kind, CB_SGWORLD_FAULT_RECOVER);
    CU_ASSERT_EQUAL(t.items[1].node, 5);
    static const uint8_t want[6] = {2, 2, 0, 0, 0, 1};
    CU_ASSERT(memcmp(t.items[2].groups, want, sizeof want) == 0);
    cb_sgfaults_free(&t);
    cb_plan_free(&plan);
}

static const cb_test_case tests[] = {
    {"bad_timelines_are_refused", test_bad_timelines_are_refused},
    {"plan_faults_expand_patterns", test_plan_faults_expand_patterns},
    {"plan_faults_name_the_broker", test_plan_faults_name_the_broker},
    {"server_crash_comes_back_empty", test_server_crash_comes_back_empty},
    {"client_crash_abandons_then_resumes", test_client_crash_abandons_then_resumes},
    {"never_recovered_client_ends_the_run", test_never_recovered_client_ends_the_run},
    {"partition_times_out_until_heal", test_partition_times_out_until_heal},
    {"link_latency_and_bandwidth_show_after_their_time",
     test_link_latency_and_bandwidth_show_after_their_time},
    {"udp_link_loss_after_its_time", test_udp_link_loss_after_its_time},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_sgfaults", tests)
