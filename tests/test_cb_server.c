/*
 * test_cb_server.c: the server machine on fake time, fed request frames by hand.
 *
 * Every reply is decoded from the SEND actions: each op's status and fields, CAS and TTL,
 * badly shaped requests (answered, connection kept), undecodable streams (closed, other
 * connections unaffected), pipelining under arbitrary splits, back-pressure from a tiny
 * outbox, the at-most-once window, the sweep timer, bad configs and allocation failures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_err.h"
#include "cb_frame.h"
#include "cb_rng.h"
#include "cb_scanbody.h"
#include "cb_server.h"
#include "cb_test.h"
#include "cb_text.h"

#define SRV_REPLIES_MAX 256u
#define SRV_VALUE_MAX   4096u
#define SRV_BUF_BYTES   65536u
#define SRV_MS          1000000ull

typedef struct srv_reply {
    uint32_t conn;
    cb_frame f;
    uint8_t value[SRV_VALUE_MAX];
    uint8_t raw[CB_FRAME_HEADER_BYTES + 64]; /* the first bytes as sent */
    size_t raw_len;
} srv_reply;

static srv_reply srv_out[SRV_REPLIES_MAX];
static size_t srv_closes, srv_events;
static int32_t srv_last_event_detail;
static uint8_t srv_buf[SRV_BUF_BYTES];

static cb_server_config srv_config(void)
{
    cb_server_config c = cb_server_config_default();
    c.store.memory_bytes_max = 4u << 20;
    c.store.value_bytes_max = 64u * 1024u;
    c.conn_max = 4;
    return c;
}

static cb_server *srv_new(const cb_server_config *c)
{
    cb_server *srv = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_server_new(c, NULL, &srv), CB_ERR_OK);
    return srv;
}

/* Drain everything; decode SENDs into srv_out (appending from *count); count the rest. */
static void srv_collect(cb_server *srv, size_t *count)
{
    cb_action acts[64];
    size_t n;
    while ((n = cb_server_drain(srv, acts, 64)) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (acts[i].kind == CB_ACTION_CLOSE) {
                srv_closes++;
                continue;
            }
            if (acts[i].kind == CB_ACTION_EVENT && acts[i].event.kind == CB_EVENT_FRAME_REJECTED) {
                /* COMPRESSED/ENCRYPTED without a codec: answered BAD_REQUEST, reported. */
                CU_ASSERT_EQUAL(acts[i].event.detail, CB_ERR_CODEC_MISMATCH);
                continue;
            }
            if (acts[i].kind == CB_ACTION_EVENT) {
                CU_ASSERT_EQUAL(acts[i].event.kind, CB_EVENT_PROTOCOL_ERROR);
                srv_last_event_detail = acts[i].event.detail;
                srv_events++;
                continue;
            }
            CU_ASSERT_EQUAL_FATAL(acts[i].kind, CB_ACTION_SEND);
            CU_ASSERT_FATAL(*count < SRV_REPLIES_MAX);
            srv_reply *r = &srv_out[(*count)++];
            long dn = cb_frame_decode(acts[i].data, acts[i].data_len, NULL, &r->f);
            CU_ASSERT_EQUAL_FATAL(dn, (long)acts[i].data_len); /* one whole frame per SEND */
            CU_ASSERT_FATAL(r->f.value_len <= SRV_VALUE_MAX);
            if (r->f.value_len > 0) {
                memcpy(r->value, r->f.value, r->f.value_len);
            }
            r->f.value = r->value;
            r->f.key = NULL;
            r->conn = acts[i].peer;
            r->raw_len = acts[i].data_len < sizeof r->raw ? acts[i].data_len : sizeof r->raw;
            memcpy(r->raw, acts[i].data, r->raw_len);
        }
    }
}

typedef struct srv_req {
    uint8_t op;
    uint32_t id;
    const char *key;
    const char *value;
    uint32_t ttl_ms;
    uint64_t cas;
    uint64_t arg;
    uint8_t flags;
} srv_req;

static size_t srv_encode(uint8_t *out, const srv_req *q)
{
    cb_frame f;
    memset(&f, 0, sizeof f);
    f.opcode = q->op;
    f.flags = q->flags;
    f.request_id = q->id;
    f.opaque = q->id ^ 0xA5A5A5A5u;
    f.key = (const uint8_t *)q->key;
    f.key_len = q->key ? (uint8_t)strlen(q->key) : 0;
    f.value = (const uint8_t *)q->value;
    f.value_len = q->value ? (uint32_t)strlen(q->value) : 0;
    f.ttl_ms = q->ttl_ms;
    f.cas = q->cas;
    f.arg = q->arg;
    long n = cb_frame_encode(&f, out, SRV_BUF_BYTES);
    CU_ASSERT_FATAL(n > 0);
    return (size_t)n;
}

/* Send one request on `conn` at now_ns and return its single reply. */
static const srv_reply *srv_call(cb_server *srv, uint32_t conn, const srv_req *q, uint64_t now)
{
    size_t len = srv_encode(srv_buf, q);
    CU_ASSERT_EQUAL(cb_server_on_bytes(srv, conn, srv_buf, len, now), (long)len);
    size_t count = 0;
    srv_collect(srv, &count);
    CU_ASSERT_EQUAL_FATAL(count, 1);
    const srv_reply *r = &srv_out[0];
    CU_ASSERT_EQUAL(r->conn, conn);
    CU_ASSERT_EQUAL(r->f.opcode, q->op);
    CU_ASSERT_EQUAL(r->f.flags, CB_FLAG_RESPONSE);
    CU_ASSERT_EQUAL(r->f.request_id, q->id);
    CU_ASSERT_EQUAL(r->f.opaque, q->id ^ 0xA5A5A5A5u);
    CU_ASSERT_EQUAL(r->f.key_len, 0);
    return r;
}

typedef struct srv_step {
    srv_req q;
    uint16_t status;
    const char *value; /* expected reply value, NULL: none */
    uint64_t arg;      /* expected reply arg */
} srv_step;

static void test_server_ops_table(void)
{
    static const srv_step steps[] = {
        {{CB_OP_GET, 1, "a", NULL, 0, 0, 0, 0}, CB_STATUS_NOT_FOUND, NULL, 0},
        {{CB_OP_SET, 2, "a", "1", 0, 0, 0, 0}, CB_STATUS_OK, NULL, 0},
        {{CB_OP_GET, 3, "a", NULL, 0, 0, 0, 0}, CB_STATUS_OK, "1", 0},
        {{CB_OP_ADD, 4, "a", "x", 0, 0, 0, 0}, CB_STATUS_NOT_STORED, NULL, 0},
        {{CB_OP_ADD, 5, "b", "x", 0, 0, 0, 0}, CB_STATUS_OK, NULL, 0},
        {{CB_OP_REPLACE, 6, "c", "x", 0, 0, 0, 0}, CB_STATUS_NOT_STORED, NULL, 0},
        {{CB_OP_REPLACE, 7, "a", "10", 0, 0, 0, 0}, CB_STATUS_OK, NULL, 0},
        {{CB_OP_APPEND, 8, "a", "5", 0, 0, 0, 0}, CB_STATUS_OK, NULL, 0},
        {{CB_OP_PREPEND, 9, "a", "2", 0, 0, 0, 0}, CB_STATUS_OK, NULL, 0},
        {{CB_OP_GET, 10, "a", NULL, 0, 0, 0, 0}, CB_STATUS_OK, "2105", 0},
        {{CB_OP_APPEND, 11, "z", "5", 0, 0, 0, 0}, CB_STATUS_NOT_STORED, NULL, 0},
        {{CB_OP_PREPEND, 12, "z", "5", 0, 0, 0, 0}, CB_STATUS_NOT_STORED, NULL, 0},
        {{CB_OP_INCR, 13, "a", NULL, 0, 0, 5, 0}, CB_STATUS_OK, NULL, 2110},
        {{CB_OP_DECR, 14, "a", NULL, 0, 0, 3000, 0}, CB_STATUS_OK, NULL, 0},
        {{CB_OP_INCR, 15, "a", NULL, 0, 0, UINT64_MAX, 0}, CB_STATUS_OK, NULL, UINT64_MAX},
        {{CB_OP_INCR, 16, "a", NULL, 0, 0, 2, 0}, CB_STATUS_OK, NULL, 1}, /* wraps */
        {{CB_OP_GET, 17, "a", NULL, 0, 0, 0, 0}, CB_STATUS_OK, "1", 0},
        {{CB_OP_INCR, 18, "b", NULL, 0, 0, 1, 0}, CB_STATUS_NOT_NUMBER, NULL, 0},
        {{CB_OP_DECR, 19, "z", NULL, 0, 0, 1, 0}, CB_STATUS_NOT_FOUND, NULL, 0},
        {{CB_OP_TOUCH, 20, "a", NULL, 1000, 0, 0, 0}, CB_STATUS_OK, NULL, 0},
        {{CB_OP_TOUCH, 21, "z", NULL, 1000, 0, 0, 0}, CB_STATUS_NOT_FOUND, NULL, 0},
        {{CB_OP_CAS, 22, "z", "v", 0, 1, 0, 0}, CB_STATUS_NOT_FOUND, NULL, 0},
        {{CB_OP_DELETE, 23, "b", NULL, 0, 0, 0, 0}, CB_STATUS_OK, NULL, 0},
        {{CB_OP_DELETE, 24, "b", NULL, 0, 0, 0, 0}, CB_STATUS_NOT_FOUND, NULL, 0},
        {{CB_OP_NOOP, 25, NULL, NULL, 0, 0, 0, 0}, CB_STATUS_OK, NULL, 0},
        {{CB_OP_SET, 26, "big", NULL, 0, 0, 0, 0}, CB_STATUS_OK, NULL, 0},
        {{CB_OP_GET, 27, "big", NULL, 0, 0, 0, 0}, CB_STATUS_OK, "", 0},
        {{CB_OP_FLUSH, 28, NULL, NULL, 0, 0, 0, 0}, CB_STATUS_OK, NULL, 0},
        {{CB_OP_GET, 29, "a", NULL, 0, 0, 0, 0}, CB_STATUS_NOT_FOUND, NULL, 0},
        {{CB_OP_SET, 30, "a", "new", 0, 0, 0, 0}, CB_STATUS_OK, NULL, 0},
        {{CB_OP_GET, 31, "a", NULL, 0, 0, 0, 0}, CB_STATUS_OK, "new", 0},
    };
    cb_server_config c = srv_config();
    cb_server *srv = srv_new(&c);
    uint64_t now = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        const srv_step *s = &steps[i];
        now += SRV_MS;
        const srv_reply *r = srv_call(srv, 0, &s->q, now);
        size_t want_len = s->value ? strlen(s->value) : 0;
        int ok = r->f.status == s->status && r->f.arg == s->arg && r->f.value_len == want_len &&
                 (want_len == 0 || memcmp(r->value, s->value, want_len) == 0);
        if (!ok) {
            printf("\n  step %u (%s): status %u arg %llu value_len %u\n", s->q.id,
                   cb_op_name(s->q.op), r->f.status, (unsigned long long)r->f.arg, r->f.value_len);
        }
        CU_ASSERT(ok);
        /* Successful mutations and GET hits carry a CAS; errors carry none. */
        int has_cas = s->status == CB_STATUS_OK &&
                      (s->q.op == CB_OP_GET || s->q.op == CB_OP_SET || s->q.op == CB_OP_ADD ||
                       s->q.op == CB_OP_REPLACE || s->q.op == CB_OP_APPEND ||
                       s->q.op == CB_OP_PREPEND || s->q.op == CB_OP_INCR || s->q.op == CB_OP_DECR);
        CU_ASSERT_EQUAL(r->f.cas != 0, has_cas);
    }
    cb_server_stats st;
    cb_server_get_stats(srv, &st);
    CU_ASSERT_EQUAL(st.requests, sizeof steps / sizeof steps[0]);
    CU_ASSERT_EQUAL(st.replies, sizeof steps / sizeof steps[0]);
    CU_ASSERT_EQUAL(st.bad_requests, 0);
    cb_server_del(srv);
}

/* Find "name value\n" in a STATS body; returns the value or -1. */
static long long srv_stat(const srv_reply *r, const char *name)
{
    char body[SRV_VALUE_MAX + 1];
    memcpy(body, r->value, r->f.value_len);
    body[r->f.value_len] = '\0';
    char pat[64];
    snprintf(pat, sizeof pat, "%s ", name);
    for (const char *line = body; *line != '\0';) {
        const char *end = strchr(line, '\n');
        CU_ASSERT_PTR_NOT_NULL_FATAL(end); /* every line ends with \n */
        if (strncmp(line, pat, strlen(pat)) == 0) {
            return strtoll(line + strlen(pat), NULL, 10);
        }
        line = end + 1;
    }
    return -1;
}

static void test_server_stats_body(void)
{
    cb_server_config c = srv_config();
    cb_server *srv = srv_new(&c);
    const char *keys[] = {"k1", "k2", "k3"};
    for (uint32_t i = 0; i < 3; i++) {
        srv_req q = {CB_OP_SET, i + 1, keys[i], "v", 0, 0, 0, 0};
        (void)srv_call(srv, 0, &q, 1);
    }
    srv_req get = {CB_OP_GET, 9, "nope", NULL, 0, 0, 0, 0};
    (void)srv_call(srv, 0, &get, 2);
    srv_req stats = {CB_OP_STATS, 10, NULL, NULL, 0, 0, 0, 0};
    const srv_reply *r = srv_call(srv, 0, &stats, 3);
    CU_ASSERT_EQUAL(r->f.status, CB_STATUS_OK);
    CU_ASSERT(r->f.value_len > 0 && r->value[r->f.value_len - 1] == '\n');
    CU_ASSERT_EQUAL(srv_stat(r, "curr_items"), 3);
    CU_ASSERT_EQUAL(srv_stat(r, "cmd_set"), 3);
    CU_ASSERT_EQUAL(srv_stat(r, "get_misses"), 1);
    CU_ASSERT_EQUAL(srv_stat(r, "requests"), 5); /* counted before the body is made */
    CU_ASSERT_EQUAL(srv_stat(r, "limit_maxbytes"), 4 << 20);
    srv_req flush = {CB_OP_FLUSH, 11, NULL, NULL, 0, 0, 0, 0};
    (void)srv_call(srv, 0, &flush, 4);
    stats.id = 12;
    r = srv_call(srv, 0, &stats, 5);
    CU_ASSERT_EQUAL(srv_stat(r, "cmd_flush"), 1);
    char small[8];
    CU_ASSERT_EQUAL(cb_server_format_stats(srv, small, sizeof small), CB_ERR_FULL);
    cb_server_del(srv);
}

static void test_server_cas_flow(void)
{
    cb_server_config c = srv_config();
    cb_server *srv = srv_new(&c);
    srv_req set = {CB_OP_SET, 1, "k", "v1", 0, 0, 0, 0};
    uint64_t set_cas = srv_call(srv, 0, &set, 1)->f.cas;
    srv_req get = {CB_OP_GET, 2, "k", NULL, 0, 0, 0, 0};
    uint64_t cas = srv_call(srv, 0, &get, 2)->f.cas;
    CU_ASSERT_EQUAL(cas, set_cas);
    srv_req swap = {CB_OP_CAS, 3, "k", "v2", 0, cas, 0, 0};
    const srv_reply *r = srv_call(srv, 0, &swap, 3);
    CU_ASSERT_EQUAL(r->f.status, CB_STATUS_OK);
    uint64_t new_cas = r->f.cas;
    CU_ASSERT(new_cas != 0 && new_cas != cas);
    swap.id = 4; /* the same, now stale, cas */
    r = srv_call(srv, 0, &swap, 4);
    CU_ASSERT_EQUAL(r->f.status, CB_STATUS_EXISTS);
    get.id = 5;
    r = srv_call(srv, 0, &get, 5);
    CU_ASSERT_EQUAL(r->f.cas, new_cas);
    CU_ASSERT(r->f.value_len == 2 && memcmp(r->value, "v2", 2) == 0);
    cb_server_del(srv);
}

static void test_server_ttl(void)
{
    cb_server_config c = srv_config();
    cb_server *srv = srv_new(&c);
    const uint64_t t0 = 5000 * SRV_MS;
    srv_req set = {CB_OP_SET, 1, "k", "v", 100, 0, 0, 0};
    CU_ASSERT_EQUAL(srv_call(srv, 0, &set, t0)->f.status, CB_STATUS_OK);
    srv_req get = {CB_OP_GET, 2, "k", NULL, 0, 0, 0, 0};
    CU_ASSERT_EQUAL(srv_call(srv, 0, &get, t0 + 100 * SRV_MS - 1)->f.status, CB_STATUS_OK);
    get.id = 3;
    CU_ASSERT_EQUAL(srv_call(srv, 0, &get, t0 + 100 * SRV_MS)->f.status, CB_STATUS_NOT_FOUND);
    /* TOUCH extends; ttl 0 never expires. */
    srv_req set2 = {CB_OP_SET, 4, "t", "v", 10, 0, 0, 0};
    (void)srv_call(srv, 0, &set2, t0);
    srv_req touch = {CB_OP_TOUCH, 5, "t", NULL, 0, 0, 0, 0};
    CU_ASSERT_EQUAL(srv_call(srv, 0, &touch, t0 + 5 * SRV_MS)->f.status, CB_STATUS_OK);
    srv_req get2 = {CB_OP_GET, 6, "t", NULL, 0, 0, 0, 0};
    CU_ASSERT_EQUAL(srv_call(srv, 0, &get2, UINT64_MAX - 1)->f.status, CB_STATUS_OK);
    cb_server_del(srv);
}

typedef struct srv_bad_case {
    const char *name;
    srv_req q;
} srv_bad_case;

/* Wrong shapes get BAD_REQUEST and the connection stays open. */
static void test_server_bad_request_keeps_connection(void)
{
    static const srv_bad_case cases[] = {
        {"get_with_value", {CB_OP_GET, 1, "k", "v", 0, 0, 0, 0}},
        {"set_without_key", {CB_OP_SET, 2, NULL, "v", 0, 0, 0, 0}},
        {"delete_with_value", {CB_OP_DELETE, 3, "k", "v", 0, 0, 0, 0}},
        {"incr_without_key", {CB_OP_INCR, 4, NULL, NULL, 0, 0, 1, 0}},
        {"flush_with_key", {CB_OP_FLUSH, 5, "k", NULL, 0, 0, 0, 0}},
        {"noop_with_value", {CB_OP_NOOP, 6, NULL, "v", 0, 0, 0, 0}},
        {"response_flag", {CB_OP_GET, 7, "k", NULL, 0, 0, 0, CB_FLAG_RESPONSE}},
        {"compressed_flag", {CB_OP_SET, 8, "k", "v", 0, 0, 0, CB_FLAG_COMPRESSED}},
        {"encrypted_flag", {CB_OP_SET, 9, "k", "v", 0, 0, 0, CB_FLAG_ENCRYPTED}},
    };
    cb_server_config c = srv_config();
    cb_server *srv = srv_new(&c);
    size_t n_cases = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n_cases; i++) {
        srv_closes = 0;
        size_t len = srv_encode(srv_buf, &cases[i].q);
        srv_req noop = {CB_OP_NOOP, 100 + (uint32_t)i, NULL, NULL, 0, 0, 0, 0};
        len += srv_encode(srv_buf + len, &noop);
        CU_ASSERT_EQUAL(cb_server_on_bytes(srv, 1, srv_buf, len, 1), (long)len);
        size_t count = 0;
        srv_collect(srv, &count);
        if (count != 2 || srv_out[0].f.status != CB_STATUS_BAD_REQUEST) {
            printf("\n  case %s: %zu replies, status %u\n", cases[i].name, count,
                   srv_out[0].f.status);
        }
        CU_ASSERT_EQUAL_FATAL(count, 2);
        CU_ASSERT_EQUAL(srv_out[0].f.status, CB_STATUS_BAD_REQUEST);
        CU_ASSERT_EQUAL(srv_out[0].f.request_id, cases[i].q.id);
        CU_ASSERT_EQUAL(srv_out[0].f.value_len, 0);
        CU_ASSERT_EQUAL(srv_out[1].f.status, CB_STATUS_OK);
        CU_ASSERT_EQUAL(srv_out[1].f.request_id, noop.id);
        CU_ASSERT_EQUAL(srv_closes, 0);
    }
    /* Nothing was stored by the rejected SETs. */
    srv_req get = {CB_OP_GET, 50, "k", NULL, 0, 0, 0, 0};
    CU_ASSERT_EQUAL(srv_call(srv, 1, &get, 2)->f.status, CB_STATUS_NOT_FOUND);
    cb_server_stats st;
    cb_server_get_stats(srv, &st);
    CU_ASSERT_EQUAL(st.bad_requests, n_cases);
    CU_ASSERT_EQUAL(st.protocol_errors, 0);
    cb_server_del(srv);
}

static void test_server_garbage_closes_only_that_connection(void)
{
    cb_server_config c = srv_config();
    cb_server *srv = srv_new(&c);
    /* Connection 0 holds half a request when connection 2 sends garbage. */
    srv_req set = {CB_OP_SET, 1, "k", "v", 0, 0, 0, 0};
    size_t len = srv_encode(srv_buf, &set);
    CU_ASSERT_EQUAL(cb_server_on_bytes(srv, 0, srv_buf, 20, 1), 20);
    /* 0xCB first: a binary connection (anything else would be text), then a bad magic. */
    const char garbage[] = "\xcb\x01 k 0 0 1\r\nv\r\n";
    srv_closes = srv_events = 0;
    long rc = cb_server_on_bytes(srv, 2, (const uint8_t *)garbage, sizeof garbage - 1, 2);
    CU_ASSERT_EQUAL(rc, CB_ERR_BAD_MAGIC);
    size_t count = 0;
    srv_collect(srv, &count);
    CU_ASSERT_EQUAL(count, 0);
    CU_ASSERT_EQUAL(srv_closes, 1);
    CU_ASSERT_EQUAL(srv_events, 1);
    CU_ASSERT_EQUAL(srv_last_event_detail, CB_ERR_BAD_MAGIC);
    /* Connection 0 completes its request. */
    CU_ASSERT_EQUAL(cb_server_on_bytes(srv, 0, srv_buf + 20, len - 20, 3), (long)(len - 20));
    srv_collect(srv, &count);
    CU_ASSERT_EQUAL_FATAL(count, 1);
    CU_ASSERT_EQUAL(srv_out[0].conn, 0);
    CU_ASSERT_EQUAL(srv_out[0].f.status, CB_STATUS_OK);
    /* A bad opcode after good requests in the same buffer: those are answered first. */
    srv_req noop = {CB_OP_NOOP, 7, NULL, NULL, 0, 0, 0, 0};
    len = srv_encode(srv_buf, &noop);
    size_t bad_at = len;
    len += srv_encode(srv_buf + len, &noop);
    srv_buf[bad_at + 3] = 0x42;
    srv_closes = 0;
    CU_ASSERT_EQUAL(cb_server_on_bytes(srv, 3, srv_buf, len, 4), CB_ERR_BAD_OPCODE);
    count = 0;
    srv_collect(srv, &count);
    CU_ASSERT_EQUAL(count, 1);
    CU_ASSERT_EQUAL(srv_closes, 1);
    cb_server_stats st;
    cb_server_get_stats(srv, &st);
    CU_ASSERT_EQUAL(st.protocol_errors, 2);
    cb_server_del(srv);
}

/* 100 pipelined requests: byte by byte, then at seeded random split points. */
static void test_server_pipelined_splits(void)
{
    cb_server_config c = srv_config();
    cb_rng rng;
    cb_rng_init(&rng, cb_test_seed());
    size_t len = 0;
    char keys[100][16];
    for (uint32_t i = 0; i < 100; i++) {
        snprintf(keys[i], sizeof keys[i], "key%u", i % 10);
        srv_req q = {i % 3 == 0 ? CB_OP_GET : CB_OP_SET, i + 1, keys[i], NULL, 0, 0, 0, 0};
        q.value = q.op == CB_OP_SET ? keys[i] : NULL;
        len += srv_encode(srv_buf + len, &q);
    }
    for (int mode = 0; mode < 4; mode++) {
        cb_server *srv = srv_new(&c);
        size_t count = 0;
        for (size_t off = 0; off < len;) {
            size_t step = mode == 0 ? 1 : 1 + (size_t)cb_rng_below(&rng, 200);
            step = step > len - off ? len - off : step;
            CU_ASSERT_EQUAL(cb_server_on_bytes(srv, 1, srv_buf + off, step, 1), (long)step);
            off += step;
            srv_collect(srv, &count);
        }
        CU_ASSERT_EQUAL_FATAL(count, 100);
        for (uint32_t i = 0; i < 100; i++) {
            CU_ASSERT_EQUAL(srv_out[i].f.request_id, i + 1); /* in order */
            uint8_t op = i % 3 == 0 ? CB_OP_GET : CB_OP_SET;
            CU_ASSERT_EQUAL(srv_out[i].f.opcode, op);
        }
        cb_server_del(srv);
    }
}

/* A tiny outbox: on_bytes takes what fits; feeding the rest after draining answers all. */
static void test_server_outbox_full(void)
{
    cb_server_config c = srv_config();
    c.outbox_actions = 4;
    cb_server *srv = srv_new(&c);
    size_t len = 0;
    for (uint32_t i = 0; i < 20; i++) {
        srv_req q = {CB_OP_NOOP, i + 1, NULL, NULL, 0, 0, 0, 0};
        len += srv_encode(srv_buf + len, &q);
    }
    size_t count = 0, off = 0;
    int calls = 0;
    while (off < len) {
        long n = cb_server_on_bytes(srv, 0, srv_buf + off, len - off, 1);
        CU_ASSERT_FATAL(n > 0 && (size_t)n <= len - off);
        if (calls++ == 0) {
            CU_ASSERT((size_t)n < len);
        }
        off += (size_t)n;
        srv_collect(srv, &count);
    }
    CU_ASSERT(calls >= 5);
    CU_ASSERT_EQUAL_FATAL(count, 20);
    for (uint32_t i = 0; i < 20; i++) {
        CU_ASSERT_EQUAL(srv_out[i].f.request_id, i + 1);
    }
    cb_server_del(srv);
}

/* Send `q` twice on conn 0; returns whether the two replies were byte-identical. */
static int srv_twice(cb_server *srv, const srv_req *q, uint64_t now, uint16_t *status)
{
    size_t len = srv_encode(srv_buf, q);
    memcpy(srv_buf + len, srv_buf, len);
    CU_ASSERT_EQUAL(cb_server_on_bytes(srv, 0, srv_buf, 2 * len, now), (long)(2 * len));
    size_t count = 0;
    srv_collect(srv, &count);
    CU_ASSERT_EQUAL_FATAL(count, 2);
    *status = srv_out[0].f.status;
    return srv_out[0].raw_len == srv_out[1].raw_len &&
           memcmp(srv_out[0].raw, srv_out[1].raw, srv_out[0].raw_len) == 0;
}

static void test_server_dedup_window(void)
{
    for (uint32_t window = 0; window <= 16; window += 16) {
        cb_server_config c = srv_config();
        c.dedup_window = window;
        cb_server *srv = srv_new(&c);
        uint16_t status;
        srv_req set = {CB_OP_SET, 5, "n", "10", 0, 0, 0, 0};
        int same = srv_twice(srv, &set, 1, &status);
        CU_ASSERT_EQUAL(status, CB_STATUS_OK);
        /* Without the window the second SET gets a new CAS: the replies differ. */
        CU_ASSERT_EQUAL(same, window > 0);
        srv_req incr = {CB_OP_INCR, 6, "n", NULL, 0, 0, 7, 0};
        same = srv_twice(srv, &incr, 2, &status);
        CU_ASSERT_EQUAL(status, CB_STATUS_OK);
        CU_ASSERT_EQUAL(same, window > 0);
        srv_req get = {CB_OP_GET, 7, "n", NULL, 0, 0, 0, 0};
        const srv_reply *r = srv_call(srv, 0, &get, 3);
        const char *want = window > 0 ? "17" : "24"; /* INCR applied once, or twice */
        CU_ASSERT(r->f.value_len == 2 && memcmp(r->value, want, 2) == 0);
        srv_req del = {CB_OP_DELETE, 8, "n", NULL, 0, 0, 0, 0};
        same = srv_twice(srv, &del, 4, &status);
        CU_ASSERT_EQUAL(status, CB_STATUS_OK);
        CU_ASSERT_EQUAL(same, window > 0); /* else the second says NOT_FOUND */
        /* GETs are never replayed from the window; a different opcode with the same
         * id runs normally. */
        srv_req add = {CB_OP_ADD, 8, "n", "1", 0, 0, 0, 0};
        CU_ASSERT_EQUAL(srv_call(srv, 0, &add, 5)->f.status, CB_STATUS_OK);
        /* The window is per connection: the same id on another conn runs. */
        srv_req incr2 = {CB_OP_INCR, 6, "n", NULL, 0, 0, 1, 0};
        r = srv_call(srv, 1, &incr2, 6);
        CU_ASSERT_EQUAL(r->f.status, CB_STATUS_OK);
        CU_ASSERT_EQUAL(r->f.arg, 2);
        cb_server_stats st;
        cb_server_get_stats(srv, &st);
        CU_ASSERT_EQUAL(st.dedup_replays, window > 0 ? 3 : 0);
        /* on_close keeps conn 1's window, cb_server_forget empties it (the id may go to
         * another UDP peer, docs/real.md §6): the same id then runs again. */
        CU_ASSERT_EQUAL(cb_server_on_close(srv, 1), CB_ERR_OK);
        CU_ASSERT_EQUAL(srv_call(srv, 1, &incr2, 7)->f.arg, window > 0 ? 2 : 3);
        CU_ASSERT_EQUAL(cb_server_forget(srv, 1), CB_ERR_OK);
        CU_ASSERT_EQUAL(srv_call(srv, 1, &incr2, 8)->f.arg, window > 0 ? 3 : 4);
        CU_ASSERT_EQUAL(cb_server_forget(srv, c.conn_max), CB_ERR_UNKNOWN_CONN);
        cb_server_get_stats(srv, &st);
        CU_ASSERT_EQUAL(st.dedup_replays, window > 0 ? 4 : 0);
        cb_server_del(srv);
    }
}

static void test_server_invalid_config(void)
{
    cb_server_config base = srv_config();
    cb_server_config cs[6];
    for (size_t i = 0; i < 6; i++) {
        cs[i] = base;
    }
    cs[0].dedup_window = 3;
    cs[1].dedup_window = 48;
    cs[2].dedup_window = 131072;
    cs[3].conn_max = 0;
    cs[4].conn_max = (1u << 20) + 1;
    cs[5].store.memory_bytes_max = 16; /* the store rejects it */
    for (size_t i = 0; i < 6; i++) {
        cb_server *srv = NULL;
        CU_ASSERT_EQUAL(cb_server_new(&cs[i], NULL, &srv), CB_ERR_INVALID);
        CU_ASSERT_PTR_NULL(srv);
    }
    cb_server_del(NULL);
}

static void test_server_unknown_conn(void)
{
    cb_server_config c = srv_config();
    cb_server *srv = srv_new(&c);
    srv_req q = {CB_OP_NOOP, 1, NULL, NULL, 0, 0, 0, 0};
    size_t len = srv_encode(srv_buf, &q);
    CU_ASSERT_EQUAL(cb_server_on_bytes(srv, 4, srv_buf, len, 1), CB_ERR_UNKNOWN_CONN);
    CU_ASSERT_EQUAL(cb_server_on_bytes(srv, UINT32_MAX, srv_buf, len, 1), CB_ERR_UNKNOWN_CONN);
    CU_ASSERT_EQUAL(cb_server_on_close(srv, 4), CB_ERR_UNKNOWN_CONN);
    CU_ASSERT_EQUAL(cb_server_on_close(srv, 3), CB_ERR_OK);
    size_t count = 0;
    srv_collect(srv, &count);
    CU_ASSERT_EQUAL(count, 0);
    /* on_close drops a partial frame: the next request decodes from its first byte. */
    CU_ASSERT_EQUAL(cb_server_on_bytes(srv, 3, srv_buf, 10, 1), 10);
    CU_ASSERT_EQUAL(cb_server_on_close(srv, 3), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_server_on_bytes(srv, 3, srv_buf, len, 1), (long)len);
    srv_collect(srv, &count);
    CU_ASSERT_EQUAL(count, 1);
    cb_server_del(srv);
}

static void test_server_timer_sweeps(void)
{
    cb_server_config c = srv_config();
    c.sweep_interval_ns = 100 * SRV_MS;
    cb_server *srv = srv_new(&c);
    CU_ASSERT_EQUAL(cb_server_next_deadline_ns(srv), 100 * SRV_MS);
    char keys[10][8];
    for (uint32_t i = 0; i < 10; i++) {
        snprintf(keys[i], sizeof keys[i], "e%u", i);
        srv_req q = {CB_OP_SET, i + 1, keys[i], "v", 10, 0, 0, 0};
        (void)srv_call(srv, 0, &q, SRV_MS);
    }
    srv_req keep = {CB_OP_SET, 20, "keep", "v", 0, 0, 0, 0};
    (void)srv_call(srv, 0, &keep, SRV_MS);
    CU_ASSERT_EQUAL(cb_server_on_timer(srv, 50 * SRV_MS), CB_ERR_OK); /* not due */
    CU_ASSERT_EQUAL(cb_server_next_deadline_ns(srv), 100 * SRV_MS);
    cb_server_stats st;
    cb_server_get_stats(srv, &st);
    CU_ASSERT_EQUAL(st.store.expirations, 0);
    CU_ASSERT_EQUAL(st.store.items, 11);
    CU_ASSERT_EQUAL(cb_server_on_timer(srv, 150 * SRV_MS), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_server_next_deadline_ns(srv), 250 * SRV_MS);
    cb_server_get_stats(srv, &st);
    CU_ASSERT_EQUAL(st.store.expirations, 10);
    CU_ASSERT_EQUAL(st.store.items, 1);
    size_t count = 0;
    srv_collect(srv, &count);
    CU_ASSERT_EQUAL(count, 0); /* the timer sends nothing */
    cb_server_del(srv);
}

static void test_server_new_nomem(void)
{
    for (uint32_t window = 0; window <= 8; window += 8) {
        cb_server_config c = srv_config();
        c.dedup_window = window;
        uint64_t n = 0;
        for (;; n++) {
            cb_alloc_failing fa;
            cb_alloc_failing_init(&fa, n, 1);
            cb_server *srv = NULL;
            int rc = cb_server_new(&c, &fa.alloc, &srv);
            if (rc == CB_ERR_OK) {
                /* It works: answer one request, then free everything. */
                srv_req q = {CB_OP_SET, 1, "k", "v", 0, 0, 0, 0};
                size_t len = srv_encode(srv_buf, &q);
                CU_ASSERT_EQUAL(cb_server_on_bytes(srv, 0, srv_buf, len, 1), (long)len);
                cb_server_del(srv);
                CU_ASSERT_EQUAL(fa.live, 0);
                break;
            }
            CU_ASSERT_EQUAL(rc, CB_ERR_NOMEM);
            CU_ASSERT_PTR_NULL(srv);
            CU_ASSERT_EQUAL(fa.live, 0);
            CU_ASSERT_FATAL(n < 100);
        }
        CU_ASSERT(n >= 4);
    }
}

/* A SET with arg = version is last-writer-wins; GET and the SET reply carry the version. */
static void test_server_versioned_set(void)
{
    cb_server_config c = srv_config();
    cb_server *srv = srv_new(&c);
    srv_req set = {CB_OP_SET, 1, "k", "new", 0, 0, 200, 0};
    const srv_reply *r = srv_call(srv, 0, &set, 1);
    CU_ASSERT(r->f.status == CB_STATUS_OK && r->f.arg == 200);
    srv_req old = {CB_OP_SET, 2, "k", "old", 0, 0, 100, 0};
    r = srv_call(srv, 0, &old, 2);
    CU_ASSERT(r->f.status == CB_STATUS_OK && r->f.arg == 200); /* superseded: the newer one */
    srv_req get = {CB_OP_GET, 3, "k", NULL, 0, 0, 0, 0};
    r = srv_call(srv, 0, &get, 3);
    CU_ASSERT_EQUAL(r->f.arg, 200);
    CU_ASSERT(r->f.value_len == 3 && memcmp(r->value, "new", 3) == 0);
    srv_req plain = {CB_OP_SET, 4, "k", "p", 0, 0, 0, 0};
    CU_ASSERT_EQUAL(srv_call(srv, 0, &plain, 4)->f.arg, 0);
    get.id = 5;
    CU_ASSERT_EQUAL(srv_call(srv, 0, &get, 5)->f.arg, 0);
    cb_server_del(srv);
}

/* A DELETE with arg = version leaves a tombstone (docs/protocol.md §3.1): an older versioned
 * SET after it changes nothing, GET misses with the tombstone's version, a newer SET wins. */
static void test_server_versioned_delete(void)
{
    static const srv_step steps[] = {
        {{CB_OP_SET, 1, "k", "v1", 0, 0, 100, 0}, CB_STATUS_OK, NULL, 100},
        {{CB_OP_DELETE, 2, "k", NULL, 0, 0, 200, 0}, CB_STATUS_OK, NULL, 200},
        {{CB_OP_GET, 3, "k", NULL, 0, 0, 0, 0}, CB_STATUS_NOT_FOUND, NULL, 200},
        {{CB_OP_SET, 4, "k", "late", 0, 0, 150, 0}, CB_STATUS_OK, NULL, 200}, /* superseded */
        {{CB_OP_GET, 5, "k", NULL, 0, 0, 0, 0}, CB_STATUS_NOT_FOUND, NULL, 200},
        {{CB_OP_DELETE, 6, "k", NULL, 0, 0, 120, 0}, CB_STATUS_NOT_FOUND, NULL, 200},
        {{CB_OP_SET, 7, "k", "v3", 0, 0, 300, 0}, CB_STATUS_OK, NULL, 300},
        {{CB_OP_GET, 8, "k", NULL, 0, 0, 0, 0}, CB_STATUS_OK, "v3", 300},
        {{CB_OP_DELETE, 9, "k", NULL, 0, 0, 250, 0}, CB_STATUS_OK, NULL, 300}, /* older */
        {{CB_OP_GET, 10, "k", NULL, 0, 0, 0, 0}, CB_STATUS_OK, "v3", 300},
        {{CB_OP_DELETE, 11, "absent", NULL, 0, 0, 400, 0}, CB_STATUS_NOT_FOUND, NULL, 400},
        {{CB_OP_SET, 12, "absent", "x", 0, 0, 399, 0}, CB_STATUS_OK, NULL, 400},
        {{CB_OP_DELETE, 13, "k", NULL, 0, 0, 0, 0}, CB_STATUS_OK, NULL, 0}, /* plain */
        {{CB_OP_GET, 14, "k", NULL, 0, 0, 0, 0}, CB_STATUS_NOT_FOUND, NULL, 0},
    };
    cb_server_config c = srv_config();
    cb_server *srv = srv_new(&c);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        const srv_reply *r = srv_call(srv, 0, &steps[i].q, 10 + i);
        size_t want_len = steps[i].value != NULL ? strlen(steps[i].value) : 0;
        if (r->f.status != steps[i].status || r->f.arg != steps[i].arg ||
            r->f.value_len != want_len ||
            (want_len > 0 && memcmp(r->value, steps[i].value, want_len) != 0)) {
            printf("  step %zu: status %u arg %llu\n", i + 1, r->f.status,
                   (unsigned long long)r->f.arg);
            CU_FAIL("versioned delete step");
        }
    }
    cb_server_stats st;
    cb_server_get_stats(srv, &st);
    CU_ASSERT_EQUAL(st.store.tombstones, 2);
    CU_ASSERT_EQUAL(st.store.delete_superseded, 2);
    cb_server_del(srv);
}

/* ---- the text protocol (cb_server.h, "Two protocols") ---- */

static char srv_text[600000];
static size_t srv_text_len;

/* Feed `in` to `conn` in chunks of `chunk` bytes (0: whole), draining between calls; the
 * SEND bytes for `conn` accumulate in srv_text. Returns the CLOSE actions seen. */
static size_t srv_text_feed(cb_server *srv, uint32_t conn, const char *in, size_t len, size_t chunk,
                            uint64_t now)
{
    size_t off = 0, closes = 0;
    while (off < len) {
        size_t n = chunk == 0 || chunk > len - off ? len - off : chunk;
        long rc = cb_server_on_bytes(srv, conn, (const uint8_t *)in + off, n, now);
        CU_ASSERT_FATAL(rc >= 0 && (size_t)rc <= n);
        off += (size_t)rc;
        cb_action acts[64];
        size_t k;
        while ((k = cb_server_drain(srv, acts, 64)) > 0) {
            for (size_t i = 0; i < k; i++) {
                closes += acts[i].kind == CB_ACTION_CLOSE;
                if (acts[i].kind != CB_ACTION_SEND) {
                    continue;
                }
                CU_ASSERT_EQUAL(acts[i].peer, conn);
                CU_ASSERT_FATAL(srv_text_len + acts[i].data_len < sizeof srv_text);
                memcpy(srv_text + srv_text_len, acts[i].data, acts[i].data_len);
                srv_text_len += acts[i].data_len;
            }
        }
    }
    srv_text[srv_text_len] = '\0';
    return closes;
}

static const char srv_session_in[] =
    "set a 42 0 5\r\nhello\r\nget a nope\r\ngets a\r\nappend a 0 0 1\r\n!\r\n"
    "add a 0 0 1\r\nx\r\nreplace b 0 0 1\r\nx\r\ncas a 1 0 2 999\r\nxx\r\n"
    "set n 0 0 2 noreply\r\n10\r\nincr n 5\r\ndecr n 100\r\nincr a 1\r\ntouch n 100\r\n"
    "delete a\r\ndelete a\r\nbogus\r\nset big 0 0 70000\r\n";
static const char srv_session_out[] =
    "STORED\r\nVALUE a 42 5\r\nhello\r\nEND\r\nVALUE a 42 5 1\r\nhello\r\nEND\r\nSTORED\r\n"
    "NOT_STORED\r\nNOT_STORED\r\nEXISTS\r\n"
    "15\r\n0\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nTOUCHED\r\n"
    "DELETED\r\nNOT_FOUND\r\nERROR\r\nSERVER_ERROR object too large for cache\r\n";

/* A classic session, whole and split at every byte: same replies. */
static void test_server_text_session(void)
{
    cb_server_config c = srv_config();
    for (size_t chunk = 0; chunk <= 1; chunk++) {
        cb_server *srv = srv_new(&c);
        srv_text_len = 0;
        size_t closes = srv_text_feed(srv, 1, srv_session_in, sizeof srv_session_in - 1, chunk, 1);
        CU_ASSERT_EQUAL(closes, 0);
        if (strcmp(srv_text, srv_session_out) != 0) {
            printf("\n  chunk %zu got:\n%s\n", chunk, srv_text);
        }
        CU_ASSERT_STRING_EQUAL(srv_text, srv_session_out);
        /* the refused 70000-byte block is swallowed, then the connection works again */
        static char block[70002];
        memset(block, 'z', sizeof block);
        srv_text_len = 0;
        srv_text_feed(srv, 1, block, sizeof block, 4096, 2);
        srv_text_feed(srv, 1, "mn\r\n", 4, 0, 2);
        CU_ASSERT_STRING_EQUAL(srv_text, "MN\r\n");
        cb_server_del(srv);
    }
}

static void test_server_text_meta(void)
{
    cb_server_config c = srv_config();
    cb_server *srv = srv_new(&c);
    static const char in[] =
        "ms k 2 F9 T0 c\r\nhi\r\nmg k v f t s Oab k\r\nmg nope v q\r\n"
        "mg nope v\r\nms k 1 MA q\r\n!\r\nmg k v\r\nma c N0 J7 v\r\n"
        "ma c D3 v\r\nma c MD D20\r\nmd k q\r\nmd k O1\r\nms k 1 MX\r\nx\r\nmn\r\n";
    static const char out[] = "HD c1\r\nVA 2 f9 t-1 s2 Oab kk\r\nhi\r\nEN\r\nVA 3\r\nhi!\r\n"
                              "VA 1\r\n7\r\nVA 2\r\n10\r\nHD\r\nNF O1\r\n"
                              "CLIENT_ERROR invalid mode for ms\r\nMN\r\n";
    srv_text_len = 0;
    srv_text_feed(srv, 0, in, sizeof in - 1, 0, 1);
    if (strcmp(srv_text, out) != 0) {
        printf("\n  got:\n%s\n", srv_text);
    }
    CU_ASSERT_STRING_EQUAL(srv_text, out);
    cb_server_del(srv);
}

/* First byte decides: binary and text connections side by side; a text line that never ends
 * is answered and closed; a 2 GiB block is refused and closed. */
static void test_server_text_detection_and_limits(void)
{
    cb_server_config c = srv_config();
    cb_server *srv = srv_new(&c);
    srv_req set = {CB_OP_SET, 1, "k", "v", 0, 0, 0, 0};
    const srv_reply *r = srv_call(srv, 0, &set, 1);
    CU_ASSERT_EQUAL(r->f.status, CB_STATUS_OK);
    srv_text_len = 0;
    srv_text_feed(srv, 1, "get k\r\n", 7, 0, 2);
    CU_ASSERT_STRING_EQUAL(srv_text, "VALUE k 0 1\r\nv\r\nEND\r\n");
    static char endless[3 * CB_TEXT_LINE_BYTES_MAX];
    memset(endless, 'x', sizeof endless);
    srv_text_len = 0;
    CU_ASSERT_EQUAL(srv_text_feed(srv, 2, endless, sizeof endless, 100, 3), 1);
    CU_ASSERT_STRING_EQUAL(srv_text, "CLIENT_ERROR line too long\r\n");
    srv_text_len = 0;
    const char huge[] = "set k 0 0 2147483648\r\nxxxx";
    CU_ASSERT_EQUAL(srv_text_feed(srv, 3, huge, sizeof huge - 1, 0, 4), 1);
    CU_ASSERT_STRING_EQUAL(srv_text, "SERVER_ERROR object too large for cache\r\n");
    /* after on_close the id is fresh: a binary client may reuse it */
    CU_ASSERT_EQUAL(cb_server_on_close(srv, 3), CB_ERR_OK);
    srv_req get = {CB_OP_GET, 2, "k", NULL, 0, 0, 0, 0};
    r = srv_call(srv, 3, &get, 5);
    CU_ASSERT_EQUAL(r->f.status, CB_STATUS_OK);
    cb_server_del(srv);
}

/* A multi-get larger than the outbox: answered across calls, in order, nothing lost. */
static void test_server_text_multiget_resume(void)
{
    cb_server_config c = srv_config();
    c.outbox_actions = 4;
    cb_server *srv = srv_new(&c);
    static char value[60000], in[512];
    memset(value, 'v', sizeof value);
    size_t len = 0;
    srv_text_len = 0;
    for (int i = 0; i < 8; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "set k%d 0 0 %zu noreply\r\n", i, sizeof value);
        srv_text_feed(srv, 0, line, (size_t)n, 0, 1);
        srv_text_feed(srv, 0, value, sizeof value, 0, 1);
        srv_text_feed(srv, 0, "\r\n", 2, 0, 1);
        len += (size_t)snprintf(in + len, sizeof in - len, "%sk%d", i ? " " : "get ", i);
    }
    len += (size_t)snprintf(in + len, sizeof in - len, "\r\n");
    CU_ASSERT_EQUAL(srv_text_len, 0);
    static char all[8 * 60100];
    srv_text_len = 0;
    srv_text_feed(srv, 0, in, len, 7, 2); /* also through the connection buffer */
    CU_ASSERT_EQUAL(srv_text_len, 8 * (strlen("VALUE k0 0 60000\r\n") + 60000 + 2) + 5);
    memcpy(all, srv_text, srv_text_len);
    CU_ASSERT(memcmp(all + srv_text_len - 5, "END\r\n", 5) == 0);
    CU_ASSERT(memcmp(all, "VALUE k0 0 60000\r\n", 18) == 0);
    cb_server_del(srv);
}

/* SCAN walks the whole store in bounded steps; each body decodes; SCAN is never deduped. */
static void srv_scan_check(const cb_server_config *cfg)
{
    cb_server_config c = *cfg;
    c.dedup_window = 8;
    cb_server *srv = srv_new(&c);
    char key[16], val[16];
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        snprintf(val, sizeof val, "v%d", i);
        srv_req q = {CB_OP_SET, (uint32_t)i + 1, key, val, i % 2 ? 5000u : 0u, 0, 7, 0};
        CU_ASSERT_EQUAL(srv_call(srv, 0, &q, 0)->f.status, CB_STATUS_OK);
    }
    static unsigned char seen[N];
    memset(seen, 0, sizeof seen);
    uint64_t cursor = 0;
    uint32_t id = 1000, steps = 0;
    do {
        srv_req q = {CB_OP_SCAN, id++, NULL, NULL, 16, 0, cursor, 0};
        const srv_reply *r = srv_call(srv, 0, &q, 1000 * SRV_MS);
        CU_ASSERT_EQUAL_FATAL(r->f.status, CB_STATUS_OK);
        cb_scanbody_reader rd;
        uint32_t count = 0;
        CU_ASSERT_EQUAL_FATAL(cb_scanbody_reader_init(&rd, r->f.value, r->f.value_len, &count),
                              CB_ERR_OK);
        CU_ASSERT(count <= 16);
        cb_scanbody_item it;
        while (cb_scanbody_next(&rd, &it) == CB_ERR_OK) {
            int k = atoi((const char *)it.key + 1);
            CU_ASSERT_FATAL(k >= 0 && k < N);
            seen[k] = 1;
            CU_ASSERT_EQUAL(it.version, 7);
            CU_ASSERT_EQUAL(it.ttl_ms, k % 2 ? 4000u : 0u);
            CU_ASSERT(it.value_len >= 2 && it.value[0] == 'v');
        }
        cursor = r->f.arg;
        CU_ASSERT_FATAL(++steps < 1000);
    } while (cursor != 0);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(seen[i], 1);
    }
    /* A retransmitted SCAN runs again (its body is not in the window). */
    srv_req again = {CB_OP_SCAN, 5, NULL, NULL, 4, 0, 0, 0};
    CU_ASSERT(srv_call(srv, 0, &again, 1000 * SRV_MS)->f.value_len > CB_SCANBODY_HEADER_BYTES);
    CU_ASSERT(srv_call(srv, 0, &again, 1000 * SRV_MS)->f.value_len > CB_SCANBODY_HEADER_BYTES);
    srv_req keyed = {CB_OP_SCAN, 6, "k", NULL, 4, 0, 0, 0};
    CU_ASSERT_EQUAL(srv_call(srv, 0, &keyed, 0)->f.status, CB_STATUS_BAD_REQUEST);
    cb_server_del(srv);
}

static void test_server_scan(void)
{
    cb_server_config c = srv_config();
    srv_scan_check(&c);
}

static void srv_lock_nop(void *ctx, uint32_t shard)
{
    (*(uint64_t *)ctx)++;
    (void)shard;
}

/* The same over a shared store of 8 shards: the cursor walks every shard in turn, and a
 * cursor naming no shard is refused. */
static void test_server_scan_sharded(void)
{
    cb_server_config c = srv_config();
    uint64_t locks = 0;
    cb_shards_lock lk = {srv_lock_nop, srv_lock_nop, &locks};
    cb_shards *sh;
    CU_ASSERT_EQUAL_FATAL(cb_shards_new(&c.store, 8, &lk, NULL, &sh), CB_ERR_OK);
    c.shared_store = sh;
    srv_scan_check(&c);
    cb_server *srv = srv_new(&c);
    srv_req bad = {CB_OP_SCAN, 9, NULL, NULL, 4, 0, 9ull << 56, 0};
    CU_ASSERT_EQUAL(srv_call(srv, 0, &bad, 0)->f.status, CB_STATUS_BAD_REQUEST);
    cb_server_del(srv);
    cb_shards_del(sh);
    CU_ASSERT(locks > 400); /* every request and every scan step locked and unlocked */
}

static const cb_test_case tests[] = {
    {"ops_table", test_server_ops_table},
    {"scan_sharded", test_server_scan_sharded},
    {"stats_body", test_server_stats_body},
    {"cas_flow", test_server_cas_flow},
    {"ttl", test_server_ttl},
    {"bad_request_keeps_connection", test_server_bad_request_keeps_connection},
    {"garbage_closes_only_that_connection", test_server_garbage_closes_only_that_connection},
    {"pipelined_splits", test_server_pipelined_splits},
    {"outbox_full", test_server_outbox_full},
    {"dedup_window", test_server_dedup_window},
    {"invalid_config", test_server_invalid_config},
    {"unknown_conn", test_server_unknown_conn},
    {"timer_sweeps", test_server_timer_sweeps},
    {"new_nomem", test_server_new_nomem},
    {"versioned_set", test_server_versioned_set},
    {"versioned_delete", test_server_versioned_delete},
    {"scan", test_server_scan},
    {"text_session", test_server_text_session},
    {"text_meta", test_server_text_meta},
    {"text_detection_and_limits", test_server_text_detection_and_limits},
    {"text_multiget_resume", test_server_text_multiget_resume},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_server", tests)
