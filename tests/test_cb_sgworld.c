/*
 * test_cb_sgworld.c: the SimGrid driver — its network model, the closed loop against a
 * reference model, both transports under loss, jitter, determinism, payload ownership, and
 * the workload runner (sim/cb_runner) driving it into a results database.
 *
 * SimGrid runs one simulation per process, so every case forks a child that runs one
 * cb_sgworld_run, writes a small result struct into a pipe and exits with exit(0) (so that
 * LeakSanitizer checks the child under CB_SANITIZE); the parent asserts on the result and on
 * the child's exit status. Under AddressSanitizer the children use SimGrid's thread
 * contexts, with which LSan sees every leaked payload (SIMGRID-NOTES.md §7).
 */
#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cb_err.h"
#include "cb_runner.h"
#include "cb_sgworld.h"
#include "cb_test.h"
#include "cb_test_fork.h"

#define SGT_LAT_GETS  301u
#define SGT_KEYS      50u
#define SGT_VALUE_MAX 24u
#define SGT_OPS_MAX   4000u

static cb_sgworld_config sgt_config(uint64_t seed)
{
    cb_sgworld_config cfg = cb_sgworld_config_default();
    cfg.context_factory = CB_TEST_SG_FACTORY;
    cfg.seed = seed;
    cfg.server.dedup_window = 64;
    return cfg;
}

static uint64_t sgt_fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 0x100000001b3ull;
    }
    return h;
}

/* ---- 1. the network model: median GET latency = 2L + transmission time ----------------- */

typedef struct lat_arg {
    uint64_t latency_ns;
} lat_arg;

typedef struct lat_result {
    int rc;
    uint32_t gets;
    uint64_t median_ns;
    uint64_t min_ns;
    uint64_t max_ns;
    uint64_t get_request_bytes; /* frame bytes the client sent for a GET */
    uint64_t get_reply_bytes;   /* frame bytes the server sent for a hit */
} lat_result;

typedef struct lat_state {
    uint32_t submitted;
    uint32_t gets;
    uint64_t latency_ns[SGT_LAT_GETS];
    lat_result *r;
} lat_state;

static const uint8_t lat_key[] = "k";
static const uint8_t lat_value[32] = "0123456789abcdef0123456789abcdef";

static int lat_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op,
                    uint32_t *server, uint64_t *wake_ns)
{
    lat_state *s = user;
    (void)client;
    (void)now_ns;
    if (s->submitted > SGT_LAT_GETS) {
        *wake_ns = UINT64_MAX; /* done */
        return 0;
    }
    op->op = s->submitted == 0 ? CB_OP_SET : CB_OP_GET; /* store the value, then read it */
    op->key = lat_key;
    op->key_len = 1;
    if (op->op == CB_OP_SET) {
        op->value = lat_value;
        op->value_len = sizeof lat_value;
    }
    op->user_data = s->submitted++;
    *server = 0;
    return 1;
}

static void lat_complete(void *user, uint32_t client, const cb_completion *c)
{
    lat_state *s = user;
    (void)client;
    if (c->op == CB_OP_GET && c->outcome == CB_OUTCOME_HIT && s->gets < SGT_LAT_GETS) {
        s->latency_ns[s->gets++] = c->complete_ns - c->issue_ns;
    }
}

static void lat_action(void *user, uint32_t node, const cb_action *a, uint64_t now_ns)
{
    lat_state *s = user;
    (void)now_ns;
    if (a->kind != CB_ACTION_SEND || s->submitted < 2) {
        return; /* sizes of GET traffic only (the SET came first) */
    }
    if (node == 1) {
        s->r->get_request_bytes = a->data_len;
    } else {
        s->r->get_reply_bytes = a->data_len;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void lat_child(const void *arg, void *result)
{
    const lat_arg *la = arg;
    static lat_state s;
    memset(&s, 0, sizeof s);
    s.r = result;
    cb_sgworld_config cfg = sgt_config(1);
    cfg.latency_ns = la->latency_ns;
    cfg.bandwidth_bps = 1000000000ull;
    cfg.client.outstanding_max = 1;
    cb_world_hooks hooks = {&s, lat_next, lat_complete, NULL, lat_action};
    s.r->rc = cb_sgworld_run(&cfg, &hooks, UINT64_MAX, NULL);
    qsort(s.latency_ns, s.gets, sizeof s.latency_ns[0], cmp_u64);
    s.r->gets = s.gets;
    if (s.gets > 0) {
        s.r->median_ns = s.latency_ns[s.gets / 2];
        s.r->min_ns = s.latency_ns[0];
        s.r->max_ns = s.latency_ns[s.gets - 1];
    }
}

static void lat_check(uint64_t latency_ns)
{
    lat_arg arg = {latency_ns};
    lat_result r;
    CU_ASSERT_EQUAL_FATAL(cb_test_fork(lat_child, &arg, &r, sizeof r), 0);
    CU_ASSERT_EQUAL(r.rc, CB_ERR_OK);
    CU_ASSERT_EQUAL(r.gets, SGT_LAT_GETS);
    /* Frame sizes from docs/protocol.md §2: a 40-byte header, then the key (request) or the
     * value (reply). Each message carries one TCP/IP header (40) and Ethernet framing (38:
     * header, FCS, preamble, inter-frame gap). */
    uint64_t req = 40 + (sizeof lat_key - 1), rep = 40 + sizeof lat_value;
    CU_ASSERT_EQUAL(r.get_request_bytes, req);
    CU_ASSERT_EQUAL(r.get_reply_bytes, rep);
    uint64_t wire = (req + 40 + 38) + (rep + 40 + 38);
    /* One-way = L + bytes / bandwidth: SimGrid's fluid model paces a message once by its
     * bottleneck link, though it crosses two (no store-and-forward). 1 Gbit/s = 8 ns/B. */
    uint64_t expect = 2 * latency_ns + wire * 8;
    printf("\n  L = %llu ns: median GET %llu ns (min %llu, max %llu), expected 2L + %llu B * 8 "
           "ns/B = %llu ns\n",
           (unsigned long long)latency_ns, (unsigned long long)r.median_ns,
           (unsigned long long)r.min_ns, (unsigned long long)r.max_ns, (unsigned long long)wire,
           (unsigned long long)expect);
    uint64_t diff = r.median_ns > expect ? r.median_ns - expect : expect - r.median_ns;
    CU_ASSERT(diff * 100 <= expect); /* within 1%, as DESIGN.md asks */
    CU_ASSERT(diff <= 2);            /* and in fact exact to SimGrid's 1 ns precision */
    CU_ASSERT(r.max_ns - r.min_ns <= 2);
}

static void test_sg_latency_is_2L_plus_transmission(void)
{
    lat_check(1000000);  /* 1 ms */
    lat_check(10000000); /* 10 ms */
}

/* ---- 1b. TCP connection set-up: the first request pays one more round trip ------------ */

#define CONN_GETS 40u

typedef struct conn_arg {
    uint64_t latency_ns;
    uint8_t transport;
    uint8_t crash; /* crash the server at 43 L, recover it at 44 L (while the client idles) */
    uint32_t loss_ppm;
} conn_arg;

typedef struct conn_result {
    int rc;
    uint32_t done;
    uint64_t latency_ns[CONN_GETS];
    uint64_t issue_ns[CONN_GETS];
    uint8_t outcome[CONN_GETS];
    uint64_t request_bytes, reply_bytes;
    cb_sgworld_stats stats;
} conn_result;

static uint8_t conn_key[] = "c";

static uint64_t conn_latency_ns; /* L of the child's run */

/* GET i is issued at i * 5L (or when GET i-1 completes, if later). */
static int conn_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op,
                     uint32_t *server, uint64_t *wake_ns)
{
    conn_result *r = user;
    (void)client;
    static uint32_t submitted;
    if (submitted >= CONN_GETS) {
        *wake_ns = UINT64_MAX;
        return 0;
    }
    if (now_ns < submitted * 5 * conn_latency_ns) {
        *wake_ns = submitted * 5 * conn_latency_ns;
        return 0;
    }
    op->op = CB_OP_GET;
    op->key = conn_key;
    op->key_len = 1;
    op->user_data = submitted++;
    *server = 0;
    (void)r;
    return 1;
}

static void conn_complete(void *user, uint32_t client, const cb_completion *c)
{
    conn_result *r = user;
    (void)client;
    if (c->user_data < CONN_GETS) {
        r->latency_ns[c->user_data] = c->complete_ns - c->issue_ns;
        r->issue_ns[c->user_data] = c->issue_ns;
        r->outcome[c->user_data] = c->outcome;
        r->done++;
    }
}

static void conn_action(void *user, uint32_t node, const cb_action *a, uint64_t now_ns)
{
    conn_result *r = user;
    (void)now_ns;
    if (a->kind == CB_ACTION_SEND) {
        *(node == 1 ? &r->request_bytes : &r->reply_bytes) = a->data_len;
    }
}

static void conn_child(const void *varg, void *result)
{
    const conn_arg *arg = varg;
    conn_result *r = result;
    cb_sgworld_config cfg = sgt_config(1);
    conn_latency_ns = arg->latency_ns;
    cfg.latency_ns = arg->latency_ns;
    cfg.transport = arg->transport;
    cfg.client.outstanding_max = 1;
    cfg.client.timeout_ns = arg->loss_ppm > 0 ? 20000000000ull : 5 * arg->latency_ns;
    cfg.client.timeout_max_ns = cfg.client.timeout_ns;
    cfg.client.attempts_max = 3;
    cfg.loss_ppm = arg->loss_ppm;
    cb_sgworld_fault faults[2] = {
        {.at_ns = arg->latency_ns * 43, .kind = CB_SGWORLD_FAULT_CRASH, .node = 0},
        {.at_ns = arg->latency_ns * 44, .kind = CB_SGWORLD_FAULT_RECOVER, .node = 0},
    };
    if (arg->crash) {
        cfg.faults = faults;
        cfg.fault_count = 2;
    }
    cb_world_hooks hooks = {r, conn_next, conn_complete, NULL, conn_action};
    r->rc = cb_sgworld_run(&cfg, &hooks, UINT64_MAX, &r->stats);
}

static conn_result conn_run(uint64_t latency_ns, uint8_t transport, uint8_t crash)
{
    conn_arg arg = {latency_ns, transport, crash, 0};
    conn_result r;
    CU_ASSERT_EQUAL_FATAL(cb_test_fork(conn_child, &arg, &r, sizeof r), 0);
    CU_ASSERT_EQUAL(r.rc, CB_ERR_OK);
    CU_ASSERT_EQUAL(r.done, CONN_GETS);
    return r;
}

static int conn_within_1pct(uint64_t got, uint64_t want)
{
    uint64_t diff = got > want ? got - want : want - got;
    return diff * 100 <= want;
}

/* With one-way latency L and no load, the first GET on a new connection takes 4L + tx (SYN,
 * SYN-ACK, then the request and its reply), every later one 2L + tx. */
static void conn_check(uint64_t latency_ns)
{
    conn_result r = conn_run(latency_ns, CB_SGWORLD_TCP, 0);
    uint64_t tx = (r.request_bytes + 78 + r.reply_bytes + 78) * 8; /* 1 Gbit/s: 8 ns/B */
    printf("\n  tcp L = %llu ns: first GET %llu ns (4L + tx = %llu), second %llu ns, last %llu "
           "ns (2L + tx = %llu), connects %llu",
           (unsigned long long)latency_ns, (unsigned long long)r.latency_ns[0],
           (unsigned long long)(4 * latency_ns + tx), (unsigned long long)r.latency_ns[1],
           (unsigned long long)r.latency_ns[CONN_GETS - 1],
           (unsigned long long)(2 * latency_ns + tx), (unsigned long long)r.stats.connects);
    CU_ASSERT(conn_within_1pct(r.latency_ns[0], 4 * latency_ns + tx));
    for (uint32_t i = 1; i < CONN_GETS; i++) {
        CU_ASSERT(conn_within_1pct(r.latency_ns[i], 2 * latency_ns + tx));
    }
    CU_ASSERT_EQUAL(r.stats.connects, 1);
    CU_ASSERT_EQUAL(r.stats.syn_retries, 0);
}

static void test_sg_tcp_connect_costs_a_round_trip(void)
{
    conn_check(1000000);
    conn_check(10000000);
    /* UDP has no connection: the first GET costs 2L + tx like the others. */
    conn_result u = conn_run(1000000, CB_SGWORLD_UDP, 0);
    uint64_t tx = (u.request_bytes + 74 + u.reply_bytes + 74) * 8;
    CU_ASSERT(conn_within_1pct(u.latency_ns[0], 2000000 + tx));
    CU_ASSERT_EQUAL(u.stats.connects, 0);
    /* 90% loss (and a 20 s client timeout): SYN or SYN-ACK is lost on 99% of tries; each
     * lost try costs the RTO (200 ms), so the first GET takes at least 4L + retries x RTO. */
    conn_arg lossy = {1000000, CB_SGWORLD_TCP, 0, 900000};
    conn_result l;
    CU_ASSERT_EQUAL_FATAL(cb_test_fork(conn_child, &lossy, &l, sizeof l), 0);
    CU_ASSERT_EQUAL(l.rc, CB_ERR_OK);
    printf("\n  tcp, loss 90%%: %llu SYN retries, first GET %.3f ms",
           (unsigned long long)l.stats.syn_retries, (double)l.latency_ns[0] / 1e6);
    CU_ASSERT_EQUAL(l.stats.connects, 1);
    CU_ASSERT(l.stats.syn_retries > 0 && l.stats.syn_retries < 7);
    CU_ASSERT(l.latency_ns[0] >= 4000000 + l.stats.syn_retries * 200000000ull);
}

/* A server crash breaks the connection: the first request after the recovery sets up a new
 * one (4L + tx), the next ones are back to 2L + tx. No request is in flight at the crash. */
static void test_sg_tcp_reconnects_after_a_crash(void)
{
    uint64_t L = 1000000;
    conn_result r = conn_run(L, CB_SGWORLD_TCP, 1);
    uint64_t tx = (r.request_bytes + 78 + r.reply_bytes + 78) * 8;
    uint32_t first_after = CONN_GETS;
    for (uint32_t i = 0; i < CONN_GETS; i++) {
        if (r.issue_ns[i] >= 44 * L) {
            first_after = i;
            break;
        }
    }
    CU_ASSERT_FATAL(first_after + 1 < CONN_GETS);
    printf("\n  crash at 43 L, recover at 44 L: GET %u (issued %.3f ms) took %llu ns, the next "
           "%llu ns, connects %llu",
           first_after, (double)r.issue_ns[first_after] / 1e6,
           (unsigned long long)r.latency_ns[first_after],
           (unsigned long long)r.latency_ns[first_after + 1], (unsigned long long)r.stats.connects);
    CU_ASSERT_EQUAL(r.stats.connects, 2);
    CU_ASSERT(conn_within_1pct(r.latency_ns[first_after], 4 * L + tx));
    CU_ASSERT(conn_within_1pct(r.latency_ns[first_after + 1], 2 * L + tx));
}

/* ---- 2. multi-client closed loop against a reference model ---------------------------- */

typedef struct model_arg {
    uint64_t seed;
    uint32_t clients;
    uint32_t ops;
    uint32_t loss_ppm;
    uint8_t transport;
    uint64_t until_ns;
} model_arg;

typedef struct model_result {
    int rc;
    uint32_t submitted;
    uint32_t completed;
    uint32_t mismatches;
    uint32_t timeouts;
    uint32_t retried; /* requests that needed more than one attempt */
    uint32_t hits;
    uint32_t misses;
    uint32_t max_outstanding_seen;
    uint64_t hash; /* over every completion, in order */
    uint64_t max_latency_ns;
    uint64_t slow_requests; /* latency >= the TCP RTO */
    cb_sgworld_stats stats;
} model_result;

typedef struct model_key {
    uint8_t present, in_flight, unknown;
    uint32_t len;
    uint8_t value[SGT_VALUE_MAX * 64];
} model_key;

typedef struct model_pending {
    uint32_t key;
    uint8_t op;
    uint32_t value_len;
    uint8_t value[SGT_VALUE_MAX];
} model_pending;

typedef struct model_state {
    const model_arg *arg;
    model_result *r;
    cb_rng rng;
    model_key keys[SGT_KEYS];
    model_pending pending[SGT_OPS_MAX];
    uint64_t rto_ns;
    uint8_t name[16]; /* the key of the op being submitted */
} model_state;

static const uint8_t model_ops[] = {CB_OP_GET, CB_OP_GET,    CB_OP_SET,    CB_OP_ADD,
                                    CB_OP_SET, CB_OP_DELETE, CB_OP_APPEND, CB_OP_REPLACE};

/* The workload: random ops on shared keys, one request per key in flight across all clients,
 * so the model knows the order the server applies them in. */
static int model_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op,
                      uint32_t *server, uint64_t *wake_ns)
{
    model_state *s = user;
    (void)client;
    if (s->r->submitted == s->arg->ops) {
        *wake_ns = UINT64_MAX; /* done */
        return 0;
    }
    uint32_t key = (uint32_t)cb_rng_below(&s->rng, SGT_KEYS);
    if (s->keys[key].in_flight) {
        /* The key is busy, perhaps with another client's request. The world asks a client
         * again only after one of its *own* completions, so waiting for UINT64_MAX could
         * wait forever (a client with nothing in flight would end as idle). Poll instead:
         * 1 us is far below the 1 ms round trip, so it barely delays the run. */
        *wake_ns = now_ns + 1000;
        return 0;
    }
    model_pending *p = &s->pending[s->r->submitted];
    p->key = key;
    p->op = s->keys[key].unknown ? CB_OP_GET : model_ops[cb_rng_below(&s->rng, sizeof model_ops)];
    p->value_len = (uint32_t)cb_rng_below(&s->rng, SGT_VALUE_MAX + 1);
    for (uint32_t i = 0; i < p->value_len; i++) {
        p->value[i] = (uint8_t)('a' + cb_rng_below(&s->rng, 26));
    }
    op->op = p->op;
    op->key = s->name;
    op->key_len = (uint8_t)snprintf((char *)s->name, sizeof s->name, "key:%u", key);
    if (p->op == CB_OP_SET || p->op == CB_OP_ADD || p->op == CB_OP_APPEND ||
        p->op == CB_OP_REPLACE) {
        op->value = p->value;
        op->value_len = p->value_len;
    }
    op->user_data = s->r->submitted;
    *server = 0;
    s->keys[key].in_flight = 1;
    s->r->submitted++;
    return 1;
}

static uint8_t model_expect(const model_key *k, uint8_t op)
{
    switch (op) {
    case CB_OP_GET:
        return k->present ? CB_OUTCOME_HIT : CB_OUTCOME_MISS;
    case CB_OP_SET:
        return CB_OUTCOME_STORED;
    case CB_OP_ADD:
        return k->present ? CB_OUTCOME_NOT_STORED : CB_OUTCOME_STORED;
    case CB_OP_DELETE:
        return k->present ? CB_OUTCOME_DELETED : CB_OUTCOME_NOT_FOUND;
    default: /* APPEND, REPLACE */
        return k->present ? CB_OUTCOME_STORED : CB_OUTCOME_NOT_STORED;
    }
}

static void model_apply(model_key *k, const model_pending *p, uint8_t outcome)
{
    if (outcome == CB_OUTCOME_DELETED) {
        k->present = 0;
        k->len = 0;
    } else if (outcome == CB_OUTCOME_STORED && p->op == CB_OP_APPEND) {
        memcpy(k->value + k->len, p->value, p->value_len);
        k->len += p->value_len;
    } else if (outcome == CB_OUTCOME_STORED) {
        memcpy(k->value, p->value, p->value_len);
        k->len = p->value_len;
        k->present = 1;
    }
}

/* Compare one completion with the model; 1 if it matches. */
static int model_check(model_state *s, model_key *k, const model_pending *p, const cb_completion *c)
{
    if (k->unknown) { /* a timed-out mutation before: this GET tells the truth */
        k->present = c->outcome == CB_OUTCOME_HIT;
        k->len = k->present ? c->value_len : 0;
        if (k->len > 0) {
            memcpy(k->value, c->value, k->len);
        }
        k->unknown = 0;
        return 1;
    }
    uint8_t want = model_expect(k, p->op);
    int ok = c->outcome == want;
    if (ok && want == CB_OUTCOME_HIT) {
        ok = c->value_len == k->len && (k->len == 0 || memcmp(c->value, k->value, k->len) == 0);
    }
    if (!ok && s->r->mismatches < 5) {
        printf("\n  mismatch: request %llu %s key:%u: %s, model says %s",
               (unsigned long long)c->user_data, cb_op_name(p->op), p->key,
               cb_outcome_name(c->outcome), cb_outcome_name(want));
    }
    if (ok) {
        model_apply(k, p, c->outcome);
    }
    return ok;
}

static void model_complete(void *user, uint32_t client, const cb_completion *c)
{
    model_state *s = user;
    model_result *r = s->r;
    const model_pending *p = &s->pending[c->user_data];
    model_key *k = &s->keys[p->key];
    uint64_t fields[] = {client,      c->user_data,   c->request_id, c->outcome,  c->attempts,
                         c->issue_ns, c->complete_ns, c->cas,        c->value_len};
    r->hash = sgt_fnv(sgt_fnv(r->hash, fields, sizeof fields), c->value, c->value_len);
    r->completed++;
    r->retried += c->attempts > 1;
    r->hits += c->outcome == CB_OUTCOME_HIT;
    r->misses += c->outcome == CB_OUTCOME_MISS;
    uint64_t latency = c->complete_ns - c->issue_ns;
    r->max_latency_ns = latency > r->max_latency_ns ? latency : r->max_latency_ns;
    r->slow_requests += latency >= s->rto_ns;
    k->in_flight = 0;
    if (c->outcome == CB_OUTCOME_TIMEOUT) {
        r->timeouts++;
        k->unknown |= p->op != CB_OP_GET;
        return;
    }
    r->mismatches += !model_check(s, k, p, c);
}

static void model_child(const void *arg, void *result)
{
    static model_state s;
    memset(&s, 0, sizeof s);
    s.arg = arg;
    s.r = result;
    s.r->hash = 0xcbf29ce484222325ull;
    cb_rng_init(&s.rng, s.arg->seed ^ 0x5917);
    cb_sgworld_config cfg = sgt_config(s.arg->seed);
    cfg.client_count = s.arg->clients;
    cfg.client.outstanding_max = 4;
    cfg.client.attempts_max = 10;
    cfg.client.timeout_ns = 5000000; /* 5 ms: five round trips */
    cfg.client.timeout_max_ns = 20000000;
    cfg.loss_ppm = s.arg->loss_ppm;
    cfg.transport = s.arg->transport;
    if (cfg.transport == CB_SGWORLD_TCP && cfg.loss_ppm > 0) {
        cfg.client.timeout_ns = cfg.client.timeout_max_ns = 2000000000ull; /* above the RTO */
    }
    s.rto_ns = cfg.rto_ns;
    cb_world_hooks hooks = {&s, model_next, model_complete, NULL, NULL};
    s.r->rc = cb_sgworld_run(&cfg, &hooks, s.arg->until_ns, &s.r->stats);
}

static model_result sgt_model_run(const model_arg *arg)
{
    model_result r;
    CU_ASSERT_EQUAL(cb_test_fork(model_child, arg, &r, sizeof r), 0);
    CU_ASSERT_EQUAL(r.rc, CB_ERR_OK);
    const cb_sgworld_stats *st = &r.stats;
    printf("\n  %u clients, %s, loss %u ppm: %u/%u completed, %u mismatches, %u timeouts, "
           "%u retried, %u hits; %llu msgs sent, %llu lost, %llu delayed, %llu held; end %.3f "
           "ms; max latency %.3f ms",
           arg->clients, arg->transport == CB_SGWORLD_TCP ? "tcp" : "udp", arg->loss_ppm,
           r.completed, r.submitted, r.mismatches, r.timeouts, r.retried, r.hits,
           (unsigned long long)st->messages_sent, (unsigned long long)st->messages_lost,
           (unsigned long long)st->messages_delayed, (unsigned long long)st->messages_hol,
           (double)st->end_ns / 1e6, (double)r.max_latency_ns / 1e6);
    return r;
}

static void test_sg_multi_client_matches_model(void)
{
    model_arg arg = {cb_test_seed(), 8, 2000, 0, CB_SGWORLD_TCP, UINT64_MAX};
    model_result r = sgt_model_run(&arg);
    CU_ASSERT_EQUAL(r.submitted, arg.ops);
    CU_ASSERT_EQUAL(r.completed, arg.ops);
    CU_ASSERT_EQUAL(r.mismatches, 0);
    CU_ASSERT_EQUAL(r.timeouts, 0);
    CU_ASSERT_EQUAL(r.retried, 0);
    CU_ASSERT(r.hits > 0 && r.misses > 0);
    CU_ASSERT_EQUAL(r.stats.clients.completed, arg.ops);
    CU_ASSERT_EQUAL(r.stats.server_requests, arg.ops);
    CU_ASSERT_EQUAL(r.stats.messages_received, r.stats.messages_sent);
}

/* ---- 3. loss: UDP drops, TCP delays --------------------------------------------------- */

static void test_sg_udp_loss_retries_and_completes(void)
{
    model_arg arg = {cb_test_seed(), 4, 3000, 100000, CB_SGWORLD_UDP, UINT64_MAX};
    model_result r = sgt_model_run(&arg);
    const cb_sgworld_stats *st = &r.stats;
    CU_ASSERT_EQUAL(r.completed, arg.ops);
    CU_ASSERT_EQUAL(r.timeouts, 0);
    CU_ASSERT_EQUAL(r.mismatches, 0); /* the server's dedup window keeps retries exact */
    /* About 10% of messages lost: 3000 requests make ~7000 messages, sd ~0.36%. */
    CU_ASSERT(st->messages_lost * 1000 >= st->messages_sent * 85);
    CU_ASSERT(st->messages_lost * 1000 <= st->messages_sent * 115);
    /* A first attempt fails when its request or its reply is lost: 1 - 0.9^2 = 19%. */
    printf("\n  first attempts lost: %.1f%% of requests (expected ~19%%: request or reply)",
           100.0 * r.retried / r.completed);
    CU_ASSERT(r.retried * 100 >= r.completed * 15 && r.retried * 100 <= r.completed * 23);
    CU_ASSERT_EQUAL(st->messages_delayed, 0);
}

static void test_sg_tcp_loss_delays_never_loses(void)
{
    model_arg arg = {cb_test_seed(), 4, 1500, 100000, CB_SGWORLD_TCP, UINT64_MAX};
    model_result r = sgt_model_run(&arg);
    const cb_sgworld_stats *st = &r.stats;
    CU_ASSERT_EQUAL(r.completed, arg.ops);
    CU_ASSERT_EQUAL(r.mismatches, 0);
    CU_ASSERT_EQUAL(r.timeouts, 0);
    CU_ASSERT_EQUAL(r.retried, 0); /* TCP retransmits below the application */
    CU_ASSERT_EQUAL(st->messages_lost, 0);
    CU_ASSERT_EQUAL(st->messages_received, st->messages_sent);
    CU_ASSERT(st->messages_delayed * 1000 >= st->messages_sent * 85);
    CU_ASSERT(st->messages_delayed * 1000 <= st->messages_sent * 115);
    /* The tail shows the 200 ms RTO: at least the ~19% whose request or reply was lost. */
    CU_ASSERT(r.max_latency_ns >= 200000000ull);
    printf("\n  requests slower than the RTO: %.1f%%",
           100.0 * (double)r.slow_requests / r.completed);
    CU_ASSERT(r.slow_requests * 100 >= r.completed * 15);
}

/* ---- 4. determinism ------------------------------------------------------------------- */

static void test_sg_same_seed_same_completions(void)
{
    model_arg arg = {cb_test_seed(), 4, 1500, 50000, CB_SGWORLD_UDP, UINT64_MAX};
    model_result a = sgt_model_run(&arg);
    model_result b = sgt_model_run(&arg);
    arg.seed++;
    model_result c = sgt_model_run(&arg);
    printf("\n  completion hashes: %016llx %016llx (seed+1: %016llx)", (unsigned long long)a.hash,
           (unsigned long long)b.hash, (unsigned long long)c.hash);
    CU_ASSERT_EQUAL(a.completed, arg.ops);
    CU_ASSERT_EQUAL(a.hash, b.hash);
    CU_ASSERT_EQUAL(a.stats.end_ns, b.stats.end_ns);
    CU_ASSERT_NOT_EQUAL(a.hash, c.hash);
}

/* ---- 5. payload ownership: runs cut short with messages everywhere --------------------- */

static void test_sg_cut_short_frees_everything(void)
{
    /* Until 300 ms: TCP messages sit in RTO holds, others are in flight or in mailboxes;
     * under CB_SANITIZE the child's LeakSanitizer fails its exit status on any leak. */
    model_arg tcp = {cb_test_seed(), 4, 4000, 200000, CB_SGWORLD_TCP, 300000000ull};
    model_result r = sgt_model_run(&tcp);
    CU_ASSERT(r.completed < r.submitted);
    CU_ASSERT(r.stats.end_ns <= 300000000ull);
    model_arg udp = {cb_test_seed(), 4, 4000, 200000, CB_SGWORLD_UDP, 30000000ull};
    r = sgt_model_run(&udp);
    CU_ASSERT(r.completed < r.submitted);
    CU_ASSERT(r.stats.messages_lost > 0);
}

/* Messages of every size come from the driver's pool (size classes from 128 B, chunks of
 * 64 KiB, single blocks above): SET then GET values around those sizes and check each GET
 * returns every byte intact. */
static const uint32_t sizes_len[] = {1, 40, 41, 200, 4000, 65000, 65536, 70000, 300000};
#define SIZES_N (sizeof sizes_len / sizeof sizes_len[0])

typedef struct sizes_state {
    uint32_t submitted; /* SET of value i at 2i, GET at 2i + 1 */
    uint32_t intact;
    uint32_t bad;
    uint8_t key[8];
    uint8_t value[300000];
} sizes_state;

static uint8_t sizes_byte(uint32_t i, uint32_t k)
{
    return (uint8_t)(k * 31u + i * 7u + (k >> 8));
}

static int sizes_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op,
                      uint32_t *server, uint64_t *wake_ns)
{
    sizes_state *s = user;
    (void)client;
    (void)now_ns;
    if (s->submitted == 2 * SIZES_N) {
        *wake_ns = UINT64_MAX;
        return 0;
    }
    uint32_t i = s->submitted / 2;
    s->key[0] = 'k';
    s->key[1] = (uint8_t)('0' + i);
    op->key = s->key;
    op->key_len = 2;
    op->op = s->submitted % 2 == 0 ? CB_OP_SET : CB_OP_GET;
    if (op->op == CB_OP_SET) {
        for (uint32_t k = 0; k < sizes_len[i]; k++) {
            s->value[k] = sizes_byte(i, k);
        }
        op->value = s->value;
        op->value_len = sizes_len[i];
    }
    op->user_data = i;
    s->submitted++;
    *server = 0;
    return 1;
}

static void sizes_complete(void *user, uint32_t client, const cb_completion *c)
{
    sizes_state *s = user;
    (void)client;
    if (c->op != CB_OP_GET) {
        s->bad += c->outcome != CB_OUTCOME_STORED;
        return;
    }
    uint32_t i = (uint32_t)c->user_data;
    int ok = i < SIZES_N && c->outcome == CB_OUTCOME_HIT && c->value_len == sizes_len[i];
    for (uint32_t k = 0; ok && k < c->value_len; k++) {
        ok = c->value[k] == sizes_byte(i, k);
    }
    s->intact += (uint32_t)ok;
    s->bad += (uint32_t)!ok;
}

typedef struct sizes_result {
    int rc;
    uint32_t intact;
    uint32_t bad;
} sizes_result;

static void sizes_child(const void *arg, void *result)
{
    (void)arg;
    static sizes_state s;
    memset(&s, 0, sizeof s);
    sizes_result *r = result;
    cb_sgworld_config cfg = sgt_config(1);
    cfg.client.outstanding_max = 1;
    cb_world_hooks hooks = {&s, sizes_next, sizes_complete, NULL, NULL};
    r->rc = cb_sgworld_run(&cfg, &hooks, UINT64_MAX, NULL);
    r->intact = s.intact;
    r->bad = s.bad;
}

static void test_sg_message_sizes_intact(void)
{
    sizes_result r;
    CU_ASSERT_EQUAL_FATAL(cb_test_fork(sizes_child, NULL, &r, sizeof r), 0);
    CU_ASSERT_EQUAL(r.rc, CB_ERR_OK);
    CU_ASSERT_EQUAL(r.intact, SIZES_N);
    CU_ASSERT_EQUAL(r.bad, 0);
}

/* ---- 6. one simulation per process ---------------------------------------------------- */

static void twice_child(const void *arg, void *result)
{
    (void)arg;
    int *rcs = result;
    static lat_state s;
    memset(&s, 0, sizeof s);
    s.submitted = SGT_LAT_GETS + 1; /* nothing to submit */
    static lat_result r;
    s.r = &r;
    cb_sgworld_config cfg = sgt_config(1);
    cb_world_hooks hooks = {&s, lat_next, lat_complete, NULL, NULL};
    cfg.client_count = 0; /* refused before SimGrid starts: the process keeps its run */
    rcs[0] = cb_sgworld_run(&cfg, &hooks, UINT64_MAX, NULL);
    cfg.client_count = 1;
    rcs[1] = cb_sgworld_run(&cfg, &hooks, UINT64_MAX, NULL);
    rcs[2] = cb_sgworld_run(&cfg, &hooks, UINT64_MAX, NULL);
}

static void test_sg_second_run_in_process_refused(void)
{
    int rcs[3];
    CU_ASSERT_EQUAL_FATAL(cb_test_fork(twice_child, NULL, rcs, sizeof rcs), 0);
    CU_ASSERT_EQUAL(rcs[0], CB_ERR_INVALID);
    CU_ASSERT_EQUAL(rcs[1], CB_ERR_OK);
    CU_ASSERT_EQUAL(rcs[2], CB_ERR_INVALID);
}

static void test_sg_wire_bytes(void)
{
    cb_sgworld_config cfg = cb_sgworld_config_default();
    CU_ASSERT_EQUAL(cb_sgworld_wire_bytes(&cfg, 0), 78);
    CU_ASSERT_EQUAL(cb_sgworld_wire_bytes(&cfg, 41), 41 + 78);
    CU_ASSERT_EQUAL(cb_sgworld_wire_bytes(&cfg, 1460), 1460 + 78);
    CU_ASSERT_EQUAL(cb_sgworld_wire_bytes(&cfg, 1461), 1461 + 2 * 78);
    cfg.transport = CB_SGWORLD_UDP;
    CU_ASSERT_EQUAL(cb_sgworld_wire_bytes(&cfg, 41), 41 + 74);
    CU_ASSERT_EQUAL(cb_sgworld_wire_bytes(&cfg, 1393), 1393 + 2 * 74);
    cfg.packet_overhead_bytes = 10;
    cfg.packet_payload_bytes = 100;
    CU_ASSERT_EQUAL(cb_sgworld_wire_bytes(&cfg, 250), 250 + 30);
}

/* ---- 7. jitter: delays spread, TCP keeps each connection in order --------------------- */

#define ORDER_APPENDS   26u
#define ORDER_JITTER_NS 200000u

typedef struct order_result {
    int rc;
    uint32_t completed;
    uint32_t appended; /* APPENDs stored */
    uint32_t value_len;
    uint8_t value[ORDER_APPENDS];
    uint64_t min_latency_ns;
    uint64_t max_latency_ns;
    cb_sgworld_stats stats;
} order_result;

typedef struct order_state {
    uint32_t submitted;
    order_result *r;
} order_state;

static const uint8_t order_letters[] = "abcdefghijklmnopqrstuvwxyz";

/* SET an empty value, then ORDER_APPENDS one-letter APPENDs at once (all in flight
 * together), then, once every one completed, a GET of the result. */
static int order_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op,
                      uint32_t *server, uint64_t *wake_ns)
{
    order_state *s = user;
    (void)client;
    (void)now_ns;
    uint32_t i = s->submitted;
    if (i == ORDER_APPENDS + 2 || (i == ORDER_APPENDS + 1 && s->r->completed < i)) {
        *wake_ns = UINT64_MAX; /* done, or the GET waits for the last completion */
        return 0;
    }
    op->op = i == 0 ? CB_OP_SET : i <= ORDER_APPENDS ? CB_OP_APPEND : CB_OP_GET;
    op->key = order_letters; /* the key "a" */
    op->key_len = 1;
    if (op->op != CB_OP_GET) {
        op->value = i == 0 ? order_letters : &order_letters[i - 1];
        op->value_len = i == 0 ? 0 : 1;
    }
    op->user_data = i;
    *server = 0;
    s->submitted++;
    return 1;
}

static void order_complete(void *user, uint32_t client, const cb_completion *c)
{
    order_state *s = user;
    order_result *r = s->r;
    (void)client;
    r->completed++;
    if (c->op == CB_OP_GET && c->outcome == CB_OUTCOME_HIT && c->value_len <= ORDER_APPENDS) {
        r->value_len = (uint32_t)c->value_len;
        memcpy(r->value, c->value, c->value_len);
        return;
    }
    if (c->op != CB_OP_APPEND) {
        return;
    }
    r->appended += c->outcome == CB_OUTCOME_STORED;
    uint64_t latency = c->complete_ns - c->issue_ns;
    r->min_latency_ns = latency < r->min_latency_ns ? latency : r->min_latency_ns;
    r->max_latency_ns = latency > r->max_latency_ns ? latency : r->max_latency_ns;
}

static void order_child(const void *arg, void *result)
{
    static order_state s;
    memset(&s, 0, sizeof s);
    s.r = result;
    s.r->min_latency_ns = UINT64_MAX;
    cb_sgworld_config cfg = sgt_config(cb_test_seed());
    cfg.transport = *(const uint8_t *)arg;
    cfg.jitter_ns = ORDER_JITTER_NS;
    cfg.latency_ns = 500000;
    cfg.client.outstanding_max = 32;
    cb_world_hooks hooks = {&s, order_next, order_complete, NULL, NULL};
    s.r->rc = cb_sgworld_run(&cfg, &hooks, UINT64_MAX, &s.r->stats);
}

static order_result order_run(uint8_t transport)
{
    order_result r;
    CU_ASSERT_EQUAL(cb_test_fork(order_child, &transport, &r, sizeof r), 0);
    CU_ASSERT_EQUAL(r.rc, CB_ERR_OK);
    CU_ASSERT_EQUAL(r.completed, ORDER_APPENDS + 2);
    printf("\n  %s, jitter %u us: appended \"%.*s\", APPEND latency %.3f..%.3f ms, "
           "%llu of %llu msgs jittered, %llu held behind an earlier one",
           transport == CB_SGWORLD_TCP ? "tcp" : "udp", ORDER_JITTER_NS / 1000, (int)r.value_len,
           (const char *)r.value, (double)r.min_latency_ns / 1e6, (double)r.max_latency_ns / 1e6,
           (unsigned long long)r.stats.messages_jittered, (unsigned long long)r.stats.messages_sent,
           (unsigned long long)r.stats.messages_hol);
    /* Each direction adds at most the jitter: RTT 1 ms + transmission (a few us) + 2J.
     * Over TCP every APPEND is issued at once with the SET, on a connection not set up
     * yet: each also waits for the SYN/SYN-ACK round trip (1 ms + 2 x 78 B x 8 ns). */
    uint64_t setup = transport == CB_SGWORLD_TCP ? 1000000 + 2 * 78 * 8 : 0;
    CU_ASSERT_EQUAL(r.stats.connects, transport == CB_SGWORLD_TCP ? 1 : 0);
    CU_ASSERT(r.min_latency_ns >= 1000000 + setup);
    CU_ASSERT(r.max_latency_ns <= 1000000 + setup + 2 * ORDER_JITTER_NS + 50000);
    CU_ASSERT(r.max_latency_ns >= 1000000 + ORDER_JITTER_NS / 2); /* the jitter shows */
    CU_ASSERT(r.stats.messages_jittered * 10 >= r.stats.messages_sent * 9);
    return r;
}

static void test_sg_jitter_keeps_tcp_order(void)
{
    order_result tcp = order_run(CB_SGWORLD_TCP);
    CU_ASSERT_EQUAL(tcp.appended, ORDER_APPENDS);
    CU_ASSERT_EQUAL(tcp.value_len, ORDER_APPENDS);
    CU_ASSERT(memcmp(tcp.value, order_letters, ORDER_APPENDS) == 0);
    CU_ASSERT(tcp.stats.messages_hol > 0);
    /* UDP datagrams overtake each other: the letters land out of order (26 messages, each
     * delayed by up to 200 us: keeping send order by chance has odds of about 1 in 26!). */
    order_result udp = order_run(CB_SGWORLD_UDP);
    CU_ASSERT(udp.value_len != ORDER_APPENDS ||
              memcmp(udp.value, order_letters, ORDER_APPENDS) != 0);
    CU_ASSERT_EQUAL(udp.stats.messages_hol, 0);
}

/* ---- 8. the workload runner over SimGrid, into a results database ---------------------- */

#define RUN_SERVERS  4u
#define RUN_CLIENTS  6u
#define RUN_REQUESTS 1500u
/* This server's value limit (32 B) refuses the workload's 100 B SETs: an over-limit frame
 * breaks the stream, the server closes the connection, and the request times out. */
#define RUN_SMALL 1u
_Static_assert(RUN_SMALL == 1, "run_fill_counts' queries name server 1");

typedef struct run_result {
    int step; /* 0: every set-up step worked, else the one that failed */
    int rc;
    uint64_t budget, issued, completed, recorded;
    int64_t rows, distinct_rows, outcome_null, servers_used;
    int64_t small_sets, small_stored, other_sets, other_stored;
    uint64_t rows_hash; /* every column of every row, in record order */
    cb_sgworld_stats stats;
} run_result;

/* Hash every row of the requests table in seq order into r->rows_hash. */
static int run_hash_rows(const char *path, run_result *r)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_prepare_v2(db, "SELECT * FROM requests ORDER BY seq", -1, &st, NULL);
    }
    r->rows_hash = 0xcbf29ce484222325ull;
    while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const unsigned char *t = sqlite3_column_text(st, i);
            r->rows_hash = sgt_fnv(r->rows_hash, t != NULL ? (const char *)t : "~",
                                   t != NULL ? (size_t)sqlite3_column_bytes(st, i) + 1 : 1);
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

static int64_t run_query(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void run_fill_counts(const char *path, run_result *r)
{
    r->rows = run_query(path, "SELECT count(*) FROM requests");
    r->distinct_rows = run_query(
        path, "SELECT count(*) FROM (SELECT DISTINCT client, issue_ns, op, key FROM requests)");
    r->outcome_null = run_query(path, "SELECT count(*) FROM requests WHERE outcome IS NULL");
    r->servers_used = run_query(path, "SELECT count(DISTINCT server) FROM requests");
    r->small_sets =
        run_query(path, "SELECT count(*) FROM requests WHERE op = 'set' AND server = 1");
    r->small_stored = run_query(path, "SELECT count(*) FROM requests WHERE op = 'set' AND "
                                      "server = 1 AND outcome = 'stored'");
    r->other_sets =
        run_query(path, "SELECT count(*) FROM requests WHERE op = 'set' AND server <> 1");
    r->other_stored = run_query(path, "SELECT count(*) FROM requests WHERE op = 'set' AND "
                                      "server <> 1 AND outcome = 'stored'");
}

static cb_sgworld_config run_world_config(uint64_t seed, cb_server_config *each)
{
    cb_sgworld_config cfg = sgt_config(seed);
    cfg.server_count = RUN_SERVERS;
    cfg.client_count = RUN_CLIENTS;
    cfg.client.outstanding_max = 4;
    cfg.jitter_ns = 20000;
    for (uint32_t i = 0; i < RUN_SERVERS; i++) {
        each[i] = cfg.server;
        each[i].store.hash_seed = seed + i;
    }
    each[RUN_SMALL].store.value_bytes_max = 32;
    cfg.server_each = each;
    return cfg;
}

/* Open the database and the run's inputs; returns 0 or the failed step (1..4). */
static int run_setup(uint64_t seed, const char *path, cb_workload **wl, cb_placement **pl,
                     cb_results **db, int64_t *run_id)
{
    char err[256];
    cb_workload_config wc;
    cb_workload_config_default(&wc);
    wc.keys = 500;
    wc.mix_get = 0.6, wc.mix_set = 0.4, wc.mix_incr = 0;
    wc.think_ns = 50000; /* exercises the wake times */
    wc.seed = seed;
    if (cb_workload_new(&wc, wl, err, sizeof err) != 0) {
        return 1;
    }
    cb_placement_config pc;
    cb_placement_config_default(&pc);
    cb_placement_node nodes[RUN_SERVERS];
    for (uint32_t i = 0; i < RUN_SERVERS; i++) {
        nodes[i] = (cb_placement_node){i, 1, NULL};
    }
    if (cb_placement_new(CB_PLACEMENT_JUMP, &pc, nodes, RUN_SERVERS, NULL, pl) != CB_ERR_OK) {
        return 2;
    }
    unlink(path);
    if (cb_results_open(path, db, err, sizeof err) != CB_RESULTS_OK) {
        return 3;
    }
    cb_run_info info = {.scenario_name = "sgworld-runner-test", .mode = "sim", .seed = seed};
    return cb_results_begin_run(*db, &info, run_id) == CB_RESULTS_OK ? 0 : 4;
}

static void run_child(const void *arg, void *result)
{
    run_result *r = result;
    uint64_t seed = *(const uint64_t *)arg;
    char path[64];
    snprintf(path, sizeof path, "/tmp/cb_sgworld_runner_%d.db", (int)getpid());
    cb_workload *wl = NULL;
    cb_placement *pl = NULL;
    cb_results *db = NULL;
    cb_runner *runner = NULL;
    int64_t run_id = 0;
    r->step = run_setup(seed, path, &wl, &pl, &db, &run_id);
    cb_runner_config rc = {.client_count = RUN_CLIENTS,
                           .server_count = RUN_SERVERS,
                           .outstanding_max = 4,
                           .requests = RUN_REQUESTS,
                           .workload = wl,
                           .placement = pl,
                           .db = db,
                           .run_id = run_id};
    if (r->step == 0 && cb_runner_new(&rc, &runner) != 0) {
        r->step = 5;
    }
    if (r->step == 0) {
        cb_server_config each[RUN_SERVERS];
        cb_sgworld_config cfg = run_world_config(seed, each);
        cb_world_hooks hooks = {runner, cb_runner_next, cb_runner_complete, cb_runner_event, NULL};
        r->rc = cb_sgworld_run(&cfg, &hooks, UINT64_MAX, &r->stats);
        const cb_runner_totals *t = cb_runner_get_totals(runner);
        r->budget = cb_runner_budget(runner);
        r->issued = t->issued, r->completed = t->completed, r->recorded = t->recorded;
        r->step = cb_runner_db_error(runner) != NULL ? 6 : 0;
        r->step =
            cb_results_end_run(db, run_id, CB_RUN_COMPLETE, 0, 0) != CB_RESULTS_OK ? 7 : r->step;
    }
    cb_runner_del(runner);
    r->step = cb_results_close(db) != CB_RESULTS_OK && r->step == 0 ? 8 : r->step;
    cb_placement_del(pl);
    cb_workload_del(wl);
    run_fill_counts(path, r);
    r->step = run_hash_rows(path, r) != 0 && r->step == 0 ? 9 : r->step;
    unlink(path);
}

static run_result run_fork(uint64_t seed)
{
    run_result r;
    CU_ASSERT_EQUAL(cb_test_fork(run_child, &seed, &r, sizeof r), 0);
    CU_ASSERT_EQUAL(r.step, 0);
    CU_ASSERT_EQUAL(r.rc, CB_ERR_OK);
    printf("\n  runner over sgworld, seed %llu: %llu issued, %llu completed, %lld rows, %llu "
           "timeouts, %llu retries, %llu timer wake-ups; end %.3f ms; rows hash %016llx",
           (unsigned long long)seed, (unsigned long long)r.issued, (unsigned long long)r.completed,
           (long long)r.rows, (unsigned long long)r.stats.clients.timeouts,
           (unsigned long long)r.stats.clients.retries, (unsigned long long)r.stats.timer_wakeups,
           (double)r.stats.end_ns / 1e6, (unsigned long long)r.rows_hash);
    return r;
}

static void test_sg_runner_drives_sgworld(void)
{
    run_result a = run_fork(cb_test_seed());
    /* The budget: exactly RUN_REQUESTS issued (no read-modify-write), split over clients. */
    CU_ASSERT_EQUAL(a.budget, RUN_REQUESTS);
    CU_ASSERT_EQUAL(a.issued, RUN_REQUESTS);
    CU_ASSERT_EQUAL(a.stats.clients.requests, RUN_REQUESTS);
    /* Every request completed once and has exactly one row, with an outcome. */
    CU_ASSERT_EQUAL(a.completed, RUN_REQUESTS);
    CU_ASSERT_EQUAL(a.stats.clients.completed, RUN_REQUESTS);
    CU_ASSERT_EQUAL(a.recorded, RUN_REQUESTS);
    CU_ASSERT_EQUAL(a.rows, RUN_REQUESTS);
    CU_ASSERT_EQUAL(a.distinct_rows, RUN_REQUESTS);
    CU_ASSERT_EQUAL(a.outcome_null, 0);
    CU_ASSERT_EQUAL(a.servers_used, RUN_SERVERS);
    /* Per-server configs: only server RUN_SMALL refuses the 100 B values (its SETs time
     * out after the client's retries; every other SET is stored). */
    CU_ASSERT(a.small_sets > 0 && a.other_sets > 0);
    CU_ASSERT_EQUAL(a.small_stored, 0);
    CU_ASSERT_EQUAL(a.other_stored, a.other_sets);
    /* The same seed gives the same rows; another seed, others. */
    run_result b = run_fork(cb_test_seed());
    CU_ASSERT_EQUAL(a.rows_hash, b.rows_hash);
    CU_ASSERT_EQUAL(a.stats.end_ns, b.stats.end_ns);
    run_result c = run_fork(cb_test_seed() + 1);
    CU_ASSERT_NOT_EQUAL(a.rows_hash, c.rows_hash);
}

static const cb_test_case tests[] = {
    {"wire_bytes", test_sg_wire_bytes},
    {"latency_is_2L_plus_transmission", test_sg_latency_is_2L_plus_transmission},
    {"tcp_connect_costs_a_round_trip", test_sg_tcp_connect_costs_a_round_trip},
    {"tcp_reconnects_after_a_crash", test_sg_tcp_reconnects_after_a_crash},
    {"multi_client_matches_model", test_sg_multi_client_matches_model},
    {"udp_loss_retries_and_completes", test_sg_udp_loss_retries_and_completes},
    {"tcp_loss_delays_never_loses", test_sg_tcp_loss_delays_never_loses},
    {"same_seed_same_completions", test_sg_same_seed_same_completions},
    {"cut_short_frees_everything", test_sg_cut_short_frees_everything},
    {"message_sizes_intact", test_sg_message_sizes_intact},
    {"jitter_keeps_tcp_order", test_sg_jitter_keeps_tcp_order},
    {"runner_drives_sgworld", test_sg_runner_drives_sgworld},
    {"second_run_in_process_refused", test_sg_second_run_in_process_refused},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_sgworld", tests)
