/*
 * test_cb_e2e.c: a client and a server over the in-memory network with loss and reordering.
 *
 * 10^4 random operations on 200 keys, at most one in flight per key, checked one by one in
 * completion order against a reference model (a plain array of keys). The server's
 * at-most-once window makes retransmissions exact, so every outcome must match the model
 * even though 5% of messages are lost and jitter reorders them. A second part runs the same
 * world twice and compares a hash of every action: same seed, same bytes. A third part
 * runs the client in text mode (memcached's text protocol, matched in order) against the
 * same server on an ordered, lossless network, checked against the same model; text
 * replies to stores carry no CAS, so the model learns it from the next GET.
 */
#include <string.h>

#include "cb_err.h"
#include "cb_memworld.h"
#include "cb_test.h"

#define E2E_KEYS        200u
#define E2E_OPS         10000u
#define E2E_VALUE_MAX   48u
#define E2E_MODEL_BYTES 4096u

typedef struct e2e_key {
    uint8_t present;
    uint8_t in_flight;
    uint8_t unknown; /* a mutation timed out: the server state is unknown until a GET */
    uint64_t cas;
    uint8_t cas_known; /* cas is the item's (text stores do not say) */
    uint32_t len;
    uint8_t value[E2E_MODEL_BYTES];
} e2e_key;

/* What the test asked for, kept until the completion arrives. */
typedef struct e2e_pending {
    uint32_t key;
    uint8_t op;
    uint8_t cas_wrong; /* CAS sent with a deliberately wrong version */
    uint32_t value_len;
    uint8_t value[E2E_VALUE_MAX];
    uint64_t delta;
    uint8_t done;
} e2e_pending;

typedef struct e2e {
    cb_rng rng;
    e2e_key keys[E2E_KEYS];
    e2e_pending *pending; /* indexed by user_data */
    uint32_t submitted;
    uint32_t completed;
    uint32_t mismatches;
    uint32_t timeouts;
    uint32_t outcome_counts[16];
    uint64_t trace_hash;
    uint8_t name[32]; /* the key of the op being submitted */
} e2e;

static void e2e_hash(e2e *t, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        t->trace_hash = (t->trace_hash ^ b[i]) * 0x100000001b3ull; /* FNV-1a 64 */
    }
}

static int e2e_parse_number(const e2e_key *k, uint64_t *out)
{
    if (k->len == 0 || k->len > 20) {
        return 0;
    }
    uint64_t v = 0;
    for (uint32_t i = 0; i < k->len; i++) {
        uint8_t d = k->value[i];
        if (d < '0' || d > '9') {
            return 0;
        }
        if (v > (UINT64_MAX - (uint64_t)(d - '0')) / 10) {
            return 0;
        }
        v = v * 10 + (uint64_t)(d - '0');
    }
    *out = v;
    return 1;
}

static void e2e_set_number(e2e_key *k, uint64_t v)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    memcpy(k->value, digits, (size_t)n);
    k->len = (uint32_t)n;
}

static void e2e_key_name(uint32_t key, uint8_t *out, uint8_t *len)
{
    int n = snprintf((char *)out, 32, "key:%u", key);
    *len = (uint8_t)n;
}

static const uint8_t e2e_ops[] = {
    CB_OP_GET,    CB_OP_GET,     CB_OP_GET, CB_OP_SET,    CB_OP_SET,  CB_OP_ADD,  CB_OP_REPLACE,
    CB_OP_APPEND, CB_OP_PREPEND, CB_OP_CAS, CB_OP_DELETE, CB_OP_INCR, CB_OP_DECR, CB_OP_TOUCH};

static void e2e_random_value(e2e *t, e2e_pending *p)
{
    if (cb_rng_below(&t->rng, 2) == 0) {
        /* Numbers, so incr/decr have something to work on; sometimes near 2^64. */
        uint64_t v = cb_rng_below(&t->rng, 4) == 0 ? UINT64_MAX - cb_rng_below(&t->rng, 1000)
                                                   : cb_rng_below(&t->rng, 100000);
        int n = snprintf((char *)p->value, sizeof p->value, "%llu", (unsigned long long)v);
        p->value_len = (uint32_t)n;
        return;
    }
    p->value_len = (uint32_t)cb_rng_below(&t->rng, E2E_VALUE_MAX + 1);
    for (uint32_t i = 0; i < p->value_len; i++) {
        p->value[i] = (uint8_t)('a' + cb_rng_below(&t->rng, 26));
    }
}

static int e2e_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op,
                    uint32_t *server, uint64_t *wake_ns)
{
    e2e *t = user;
    (void)client;
    (void)now_ns;
    *server = 0;
    *wake_ns = UINT64_MAX; /* when there is nothing to do: after a completion */
    if (t->submitted == E2E_OPS) {
        return 0;
    }
    uint32_t key = (uint32_t)cb_rng_below(&t->rng, E2E_KEYS);
    if (t->keys[key].in_flight) {
        return 0; /* try again after something completes */
    }
    e2e_pending *p = &t->pending[t->submitted];
    memset(p, 0, sizeof *p);
    p->key = key;
    p->op = e2e_ops[cb_rng_below(&t->rng, sizeof e2e_ops)];
    if (t->keys[key].unknown) {
        p->op = CB_OP_GET; /* resynchronise the model first */
    }
    op->op = p->op;
    e2e_key_name(key, t->name, &op->key_len);
    op->key = t->name;
    op->user_data = t->submitted;
    if (p->op == CB_OP_SET || p->op == CB_OP_ADD || p->op == CB_OP_REPLACE ||
        p->op == CB_OP_APPEND || p->op == CB_OP_PREPEND || p->op == CB_OP_CAS) {
        e2e_random_value(t, p);
        op->value = p->value;
        op->value_len = p->value_len;
    }
    if (p->op == CB_OP_CAS) {
        p->cas_wrong = cb_rng_below(&t->rng, 3) == 0;
        if (t->keys[key].present && !t->keys[key].cas_known) {
            p->cas_wrong = 1; /* the item's CAS is unknown: any guess is wrong */
        }
        op->cas = t->keys[key].cas + (p->cas_wrong ? 1000000007u : 0);
    }
    if (p->op == CB_OP_INCR || p->op == CB_OP_DECR) {
        p->delta = cb_rng_below(&t->rng, 4) == 0 ? UINT64_MAX / 2 : cb_rng_below(&t->rng, 1000);
        op->delta = p->delta;
    }
    t->keys[key].in_flight = 1;
    t->submitted++;
    return 1;
}

/* The outcome the model predicts for `p`, and the model's state after it. */
static uint8_t e2e_expect(e2e_key *k, const e2e_pending *p, uint64_t *number)
{
    uint64_t v;
    switch (p->op) {
    case CB_OP_GET:
        return k->present ? CB_OUTCOME_HIT : CB_OUTCOME_MISS;
    case CB_OP_SET:
        return CB_OUTCOME_STORED;
    case CB_OP_ADD:
        return k->present ? CB_OUTCOME_NOT_STORED : CB_OUTCOME_STORED;
    case CB_OP_REPLACE:
    case CB_OP_APPEND:
    case CB_OP_PREPEND:
        return k->present ? CB_OUTCOME_STORED : CB_OUTCOME_NOT_STORED;
    case CB_OP_CAS:
        if (!k->present) {
            return CB_OUTCOME_NOT_FOUND;
        }
        return p->cas_wrong ? CB_OUTCOME_EXISTS : CB_OUTCOME_STORED;
    case CB_OP_DELETE:
        return k->present ? CB_OUTCOME_DELETED : CB_OUTCOME_NOT_FOUND;
    case CB_OP_INCR:
    case CB_OP_DECR:
        if (!k->present) {
            return CB_OUTCOME_NOT_FOUND;
        }
        if (!e2e_parse_number(k, &v)) {
            return CB_OUTCOME_ERROR;
        }
        *number = p->op == CB_OP_INCR ? v + p->delta : (v > p->delta ? v - p->delta : 0);
        return CB_OUTCOME_OK;
    default:
        return k->present ? CB_OUTCOME_OK : CB_OUTCOME_NOT_FOUND;
    }
}

static void e2e_apply(e2e_key *k, const e2e_pending *p, const cb_completion *c)
{
    switch (c->outcome) {
    case CB_OUTCOME_STORED:
        if (p->op == CB_OP_APPEND) {
            memcpy(k->value + k->len, p->value, p->value_len);
            k->len += p->value_len;
        } else if (p->op == CB_OP_PREPEND) {
            memmove(k->value + p->value_len, k->value, k->len);
            memcpy(k->value, p->value, p->value_len);
            k->len += p->value_len;
        } else {
            memcpy(k->value, p->value, p->value_len);
            k->len = p->value_len;
        }
        k->present = 1;
        k->cas = c->cas;
        k->cas_known = c->cas != 0;
        break;
    case CB_OUTCOME_DELETED:
        k->present = 0;
        break;
    case CB_OUTCOME_OK:
        if (p->op == CB_OP_INCR || p->op == CB_OP_DECR) {
            e2e_set_number(k, c->number);
            k->cas = c->cas;
            k->cas_known = c->cas != 0;
        }
        break;
    case CB_OUTCOME_HIT:
        k->cas = c->cas;
        k->cas_known = 1;
        break;
    default:
        break;
    }
}

/* After a timeout the model cannot know whether the server applied the op; the next GET
 * tells, and the model takes what it says. */
static void e2e_resync(e2e_key *k, const e2e_pending *p, const cb_completion *c)
{
    if (p->op != CB_OP_GET) {
        return;
    }
    k->present = c->outcome == CB_OUTCOME_HIT;
    k->len = k->present ? c->value_len : 0;
    k->cas = c->cas;
    k->cas_known = k->present;
    if (k->len > 0) {
        memcpy(k->value, c->value, k->len);
    }
    k->unknown = 0;
}

static void e2e_complete(void *user, uint32_t client, const cb_completion *c)
{
    e2e *t = user;
    (void)client;
    CU_ASSERT_FATAL(c->user_data < t->submitted);
    e2e_pending *p = &t->pending[c->user_data];
    CU_ASSERT_FATAL(!p->done); /* exactly one outcome per request */
    p->done = 1;
    t->completed++;
    t->outcome_counts[c->outcome & 15]++;
    e2e_key *k = &t->keys[p->key];
    k->in_flight = 0;
    if (c->outcome == CB_OUTCOME_TIMEOUT) {
        t->timeouts++;
        k->unknown |= p->op != CB_OP_GET;
        return;
    }
    if (k->unknown) {
        e2e_resync(k, p, c);
        return;
    }
    uint64_t number = 0;
    uint8_t want = e2e_expect(k, p, &number);
    int ok = c->outcome == want;
    if (ok && want == CB_OUTCOME_HIT) {
        ok = c->value_len == k->len && (!k->cas_known || c->cas == k->cas) &&
             (k->len == 0 || memcmp(c->value, k->value, k->len) == 0);
    }
    if (ok && want == CB_OUTCOME_OK && (p->op == CB_OP_INCR || p->op == CB_OP_DECR)) {
        ok = c->number == number;
    }
    if (!ok) {
        if (t->mismatches++ < 5) {
            printf("mismatch: request %llu %s key:%u: outcome %s, model says %s\n",
                   (unsigned long long)c->user_data, cb_op_name(p->op), p->key,
                   cb_outcome_name(c->outcome), cb_outcome_name(want));
        }
        return;
    }
    e2e_apply(k, p, c);
}

static void e2e_action(void *user, uint32_t node, const cb_action *a, uint64_t now_ns)
{
    e2e *t = user;
    e2e_hash(t, &node, sizeof node);
    e2e_hash(t, &now_ns, sizeof now_ns);
    e2e_hash(t, &a->kind, sizeof a->kind);
    e2e_hash(t, &a->peer, sizeof a->peer);
    if (a->kind == CB_ACTION_SEND) {
        e2e_hash(t, a->data, a->data_len);
    } else if (a->kind == CB_ACTION_COMPLETE) {
        const cb_completion *c = &a->completion;
        uint64_t fields[] = {c->user_data,   c->request_id, c->outcome, c->attempts,
                             c->complete_ns, c->cas,        c->number,  c->value_len};
        e2e_hash(t, fields, sizeof fields);
    }
}

static cb_memworld_config e2e_config(uint64_t seed, uint32_t loss_ppm, uint8_t protocol)
{
    cb_memworld_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.server_count = 1;
    cfg.client_count = 1;
    cfg.server = cb_server_config_default();
    cfg.server.dedup_window = 64;
    cfg.client = cb_client_config_default();
    cfg.client.outstanding_max = 32;
    cfg.client.attempts_max = 6;
    cfg.client.timeout_ns = 5000000;      /* 5 ms: above the largest round trip (2 x 1.5 ms) */
    cfg.client.timeout_max_ns = 40000000; /* 40 ms */
    cfg.net.latency_ns = 500000;          /* 0.5 ms one way */
    cfg.net.jitter_ns = 1000000;          /* up to 1 ms more: messages overtake each other */
    cfg.client.protocol = protocol;
    if (protocol == CB_CLIENT_PROTOCOL_TEXT) {
        cfg.net.jitter_ns = 0; /* a text stream is ordered, as TCP keeps it */
    }
    cfg.net.loss_ppm = loss_ppm;
    cfg.net.queue_max = 4096;
    cfg.net.bytes_max = 64u << 20;
    cfg.seed = seed;
    return cfg;
}

/* Run one world; returns the trace hash, fills the counters. */
static uint64_t e2e_run(e2e *t, uint64_t seed, uint32_t loss_ppm, uint8_t protocol,
                        cb_memnet_stats *net_stats, cb_client_stats *cli_stats)
{
    memset(t, 0, sizeof *t);
    t->trace_hash = 0xcbf29ce484222325ull;
    cb_rng_init(&t->rng, seed ^ 0x0e2e);
    t->pending = calloc(E2E_OPS, sizeof t->pending[0]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t->pending);
    cb_memworld_config cfg = e2e_config(seed, loss_ppm, protocol);
    cb_memworld *w = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_memworld_new(&cfg, NULL, &w), CB_ERR_OK);
    cb_world_hooks hooks = {t, e2e_next, e2e_complete, NULL, e2e_action};
    CU_ASSERT_EQUAL(cb_memworld_run(w, &hooks, UINT64_MAX), CB_ERR_OK);
    cb_memnet_get_stats(cb_memworld_net(w), net_stats);
    cb_client_get_stats(cb_memworld_client(w, 0), cli_stats);
    CU_ASSERT_EQUAL(cb_client_outstanding(cb_memworld_client(w, 0)), 0);
    cb_memworld_del(w);
    free(t->pending);
    t->pending = NULL;
    return t->trace_hash;
}

static void test_e2e_loss_and_reordering_match_model(void)
{
    static e2e t;
    cb_memnet_stats ns;
    cb_client_stats cs;
    e2e_run(&t, cb_test_seed(), 50000, 0, &ns, &cs);
    printf("\n  %u ops: %u completed, %u mismatches, %u timeouts; net: %llu sent, %llu lost, "
           "%llu reordered; client: %llu retries, %llu late, %llu duplicate replies\n",
           t.submitted, t.completed, t.mismatches, t.timeouts, (unsigned long long)ns.sent,
           (unsigned long long)ns.lost, (unsigned long long)ns.reordered,
           (unsigned long long)cs.retries, (unsigned long long)cs.late_replies,
           (unsigned long long)cs.duplicate_replies);
    CU_ASSERT_EQUAL(t.submitted, E2E_OPS);
    CU_ASSERT_EQUAL(t.completed, E2E_OPS); /* no request without an outcome */
    CU_ASSERT_EQUAL(t.mismatches, 0);
    /* The network really was hostile: about 5% lost, and reordering happened. */
    CU_ASSERT(ns.lost * 1000 > ns.sent * 40 && ns.lost * 1000 < ns.sent * 60);
    CU_ASSERT(ns.reordered > 100);
    CU_ASSERT(cs.retries > 0);
    /* Every outcome kind the model predicts was exercised. */
    CU_ASSERT(t.outcome_counts[CB_OUTCOME_HIT] > 0 && t.outcome_counts[CB_OUTCOME_MISS] > 0);
    CU_ASSERT(t.outcome_counts[CB_OUTCOME_EXISTS] > 0 && t.outcome_counts[CB_OUTCOME_ERROR] > 0);
    CU_ASSERT(t.outcome_counts[CB_OUTCOME_NOT_STORED] > 0 &&
              t.outcome_counts[CB_OUTCOME_DELETED] > 0);
}

static void test_e2e_same_seed_same_trace(void)
{
    static e2e t;
    cb_memnet_stats ns;
    cb_client_stats cs;
    uint64_t a = e2e_run(&t, cb_test_seed(), 50000, 0, &ns, &cs);
    uint64_t b = e2e_run(&t, cb_test_seed(), 50000, 0, &ns, &cs);
    uint64_t c = e2e_run(&t, cb_test_seed() + 1, 50000, 0, &ns, &cs);
    CU_ASSERT_EQUAL(a, b);
    CU_ASSERT_NOT_EQUAL(a, c);
}

static void test_e2e_text_protocol_matches_model(void)
{
    static e2e t;
    cb_memnet_stats ns;
    cb_client_stats cs;
    e2e_run(&t, cb_test_seed(), 0, CB_CLIENT_PROTOCOL_TEXT, &ns, &cs);
    printf("\n  text: %u ops: %u completed, %u mismatches, %u timeouts\n", t.submitted, t.completed,
           t.mismatches, t.timeouts);
    CU_ASSERT_EQUAL(t.submitted, E2E_OPS);
    CU_ASSERT_EQUAL(t.completed, E2E_OPS);
    CU_ASSERT_EQUAL(t.mismatches, 0);
    CU_ASSERT_EQUAL(t.timeouts, 0);
    CU_ASSERT_EQUAL(cs.protocol_errors, 0);
    CU_ASSERT(t.outcome_counts[CB_OUTCOME_HIT] > 0 && t.outcome_counts[CB_OUTCOME_MISS] > 0);
    CU_ASSERT(t.outcome_counts[CB_OUTCOME_EXISTS] > 0 && t.outcome_counts[CB_OUTCOME_ERROR] > 0);
    CU_ASSERT(t.outcome_counts[CB_OUTCOME_NOT_STORED] > 0 &&
              t.outcome_counts[CB_OUTCOME_DELETED] > 0 &&
              t.outcome_counts[CB_OUTCOME_NOT_FOUND] > 0 && t.outcome_counts[CB_OUTCOME_OK] > 0);
}

static const cb_test_case tests[] = {
    {"text_protocol_matches_model", test_e2e_text_protocol_matches_model},
    {"loss_and_reordering_match_model", test_e2e_loss_and_reordering_match_model},
    {"same_seed_same_trace", test_e2e_same_seed_same_trace},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_e2e", tests)
