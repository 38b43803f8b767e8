/*
 * test_cb_broker.c: the queue broker machine (protocols/cb_broker.h) and the endpoint
 * adapter (protocols/cb_qendpoint.h), driven on fake time with bytes moved by hand.
 *
 * Publish/deliver/ack round trips, a full queue and an unknown destination (NACKs), ack
 * timeouts (redelivery with the same tag, then drop after delivery_max), a closed
 * connection's deliveries requeued, service-time pacing (exact departure times, a
 * work-conserving single server), round robin between destinations, bad input closing a
 * connection, a full outbox, and allocation failures at every step of creation.
 */
#include "cb_broker.h"
#include "cb_err.h"
#include "cb_frame.h"
#include "cb_qendpoint.h"
#include "cb_rng.h"
#include "cb_test.h"

#include <string.h>

/* ---- helpers ---- */

/* A GET frame for key "k<i>"; returns its length. */
static size_t make_frame(uint8_t *out, size_t cap, uint32_t i)
{
    uint8_t key[16];
    int klen = snprintf((char *)key, sizeof key, "k%u", i);
    cb_frame f;
    memset(&f, 0, sizeof f);
    f.opcode = CB_OP_GET;
    f.key_len = (uint8_t)klen;
    f.key = key;
    f.request_id = i + 1;
    long n = cb_frame_encode(&f, out, cap);
    CU_ASSERT_FATAL(n > 0);
    return (size_t)n;
}

static cb_broker *broker_make(uint32_t queue_limit, uint64_t service_ns, uint64_t ack_ns)
{
    cb_broker_config c = cb_broker_config_default();
    c.conn_max = 4;
    c.node_max = 4;
    c.queue_limit = queue_limit;
    c.service_ns = service_ns;
    c.ack_timeout_ns = ack_ns;
    c.payload_bytes_max = 4096;
    cb_broker *b = NULL;
    CU_ASSERT_FATAL(cb_broker_new(&c, NULL, &b) == CB_ERR_OK);
    return b;
}

static cb_qendpoint *ep_make(uint32_t node)
{
    cb_qendpoint_config c = {.node = node, .broker_peer = 0, .payload_bytes_max = 4096};
    cb_qendpoint *ep = NULL;
    CU_ASSERT_FATAL(cb_qendpoint_new(&c, NULL, &ep) == CB_ERR_OK);
    return ep;
}

/* Move everything the endpoint queued to the broker as connection `conn`. */
static void ep_to_broker(cb_qendpoint *ep, cb_broker *b, uint32_t conn, uint64_t now)
{
    cb_action a[16];
    size_t n;
    while ((n = cb_qendpoint_drain(ep, a, 16)) > 0) {
        for (size_t i = 0; i < n; i++) {
            CU_ASSERT_FATAL(a[i].kind == CB_ACTION_SEND);
            long used = cb_broker_on_bytes(b, conn, a[i].data, a[i].data_len, now);
            CU_ASSERT_EQUAL(used, (long)a[i].data_len);
        }
    }
}

/* Bytes the broker sent each connection since the last call, concatenated. */
typedef struct sent {
    uint8_t buf[4][8192];
    size_t len[4];
    uint32_t closes;
    uint32_t events;
} sent;

static void broker_out(cb_broker *b, sent *s)
{
    cb_action a[16];
    size_t n;
    while ((n = cb_broker_drain(b, a, 16)) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (a[i].kind == CB_ACTION_CLOSE) {
                s->closes++;
                continue;
            }
            if (a[i].kind == CB_ACTION_EVENT) {
                s->events++;
                continue;
            }
            CU_ASSERT_FATAL(a[i].kind == CB_ACTION_SEND && a[i].peer < 4);
            CU_ASSERT_FATAL(s->len[a[i].peer] + a[i].data_len <= sizeof s->buf[0]);
            memcpy(s->buf[a[i].peer] + s->len[a[i].peer], a[i].data, a[i].data_len);
            s->len[a[i].peer] += a[i].data_len;
        }
    }
}

/* Feed connection conn's bytes to the endpoint; store up to cap messages; returns count. */
static size_t ep_take(cb_qendpoint *ep, sent *s, uint32_t conn, cb_qendpoint_msg *msgs,
                      uint8_t (*payloads)[256], size_t cap)
{
    const uint8_t *in = s->buf[conn];
    size_t in_len = s->len[conn];
    size_t got = 0;
    for (;;) {
        cb_qendpoint_msg m;
        int rc = cb_qendpoint_next(ep, &in, &in_len, &m);
        CU_ASSERT_FATAL(rc >= 0);
        if (rc == 0) {
            break;
        }
        CU_ASSERT_FATAL(got < cap);
        msgs[got] = m;
        if (m.payload_len > 0) {
            CU_ASSERT_FATAL(m.payload_len <= 256);
            memcpy(payloads[got], m.payload, m.payload_len);
            msgs[got].payload = payloads[got];
        }
        got++;
    }
    s->len[conn] = 0;
    return got;
}

static cb_broker_stats stats_of(const cb_broker *b)
{
    cb_broker_stats st;
    cb_broker_get_stats(b, &st);
    return st;
}

/* ---- tests ---- */

static void test_broker_round_trip(void)
{
    cb_broker *b = broker_make(16, 0, 1000000);
    cb_qendpoint *a = ep_make(0), *c = ep_make(1);
    sent s = {0};
    CU_ASSERT_EQUAL(cb_qendpoint_subscribe(a), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_qendpoint_subscribe(c), CB_ERR_OK);
    ep_to_broker(a, b, 0, 0);
    ep_to_broker(c, b, 1, 0);
    uint8_t frames[256];
    size_t f1 = make_frame(frames, sizeof frames, 1);
    size_t f2 = make_frame(frames + f1, sizeof frames - f1, 2);
    CU_ASSERT_EQUAL(cb_qendpoint_publish(a, 1, frames, f1 + f2), CB_ERR_OK); /* two PUBLISHes */
    ep_to_broker(a, b, 0, 10);
    broker_out(b, &s);
    CU_ASSERT_EQUAL(s.len[0], 0);
    cb_qendpoint_msg m[4];
    uint8_t p[4][256];
    CU_ASSERT_EQUAL(ep_take(c, &s, 1, m, p, 4), 2);
    CU_ASSERT_EQUAL(m[0].kind, CB_QUEUE_DELIVER);
    CU_ASSERT_EQUAL(m[0].src, 0);
    CU_ASSERT_EQUAL(m[0].delivery, 1);
    CU_ASSERT_EQUAL(m[0].payload_len, f1);
    CU_ASSERT(memcmp(m[0].payload, frames, f1) == 0);
    CU_ASSERT_EQUAL(m[1].payload_len, f2);
    CU_ASSERT(memcmp(m[1].payload, frames + f1, f2) == 0);
    cb_broker_stats st = stats_of(b);
    CU_ASSERT_EQUAL(st.published, 2);
    CU_ASSERT_EQUAL(st.delivered, 2);
    CU_ASSERT_EQUAL(st.depth, 2);
    ep_to_broker(c, b, 1, 20); /* the ACKs */
    st = stats_of(b);
    CU_ASSERT_EQUAL(st.acked, 2);
    CU_ASSERT_EQUAL(st.depth, 0);
    CU_ASSERT_EQUAL(st.depth_max, 2);
    CU_ASSERT_EQUAL(cb_broker_next_deadline_ns(b), UINT64_MAX);
    ep_to_broker(c, b, 1, 20); /* nothing more */
    cb_qendpoint_stats es;
    cb_qendpoint_get_stats(c, &es);
    CU_ASSERT_EQUAL(es.delivered, 2);
    cb_qendpoint_get_stats(a, &es);
    CU_ASSERT_EQUAL(es.published, 2);
    cb_qendpoint_del(a);
    cb_qendpoint_del(c);
    cb_broker_del(b);
}

static void test_broker_full_and_unknown_dst(void)
{
    cb_broker *b = broker_make(2, 0, 1000000);
    cb_qendpoint *a = ep_make(0);
    sent s = {0};
    uint8_t fr[128];
    CU_ASSERT_EQUAL(cb_qendpoint_subscribe(a), CB_ERR_OK);
    for (uint32_t i = 0; i < 3; i++) { /* node 1 has no subscriber: messages wait */
        size_t n = make_frame(fr, sizeof fr, i);
        CU_ASSERT_EQUAL(cb_qendpoint_publish(a, 1, fr, n), CB_ERR_OK);
    }
    size_t n = make_frame(fr, sizeof fr, 9);
    CU_ASSERT_EQUAL(cb_qendpoint_publish(a, 7, fr, n), CB_ERR_OK); /* node_max is 4 */
    ep_to_broker(a, b, 0, 0);
    broker_out(b, &s);
    cb_qendpoint_msg m[4];
    uint8_t p[4][256];
    CU_ASSERT_EQUAL(ep_take(a, &s, 0, m, p, 4), 2);
    CU_ASSERT_EQUAL(m[0].kind, CB_QUEUE_NACK);
    CU_ASSERT_EQUAL(m[0].reason, CB_QUEUE_REASON_FULL);
    CU_ASSERT_EQUAL(m[0].message_id, 3);
    CU_ASSERT_EQUAL(m[1].reason, CB_QUEUE_REASON_UNKNOWN_DST);
    CU_ASSERT_EQUAL(m[1].message_id, 4);
    CU_ASSERT_EQUAL(m[1].src, 7);
    cb_broker_stats st = stats_of(b);
    CU_ASSERT_EQUAL(st.published, 2);
    CU_ASSERT_EQUAL(st.rejected, 2);
    CU_ASSERT_EQUAL(st.depth, 2);
    /* A subscriber for node 1 appears: the waiting messages leave. */
    cb_qendpoint *c = ep_make(1);
    CU_ASSERT_EQUAL(cb_qendpoint_subscribe(c), CB_ERR_OK);
    ep_to_broker(c, b, 1, 5);
    broker_out(b, &s);
    CU_ASSERT_EQUAL(ep_take(c, &s, 1, m, p, 4), 2);
    cb_qendpoint_del(c);
    cb_qendpoint_del(a);
    cb_broker_del(b);
}

static void test_broker_redelivery_and_drop(void)
{
    cb_broker_config cfg = cb_broker_config_default();
    cfg.conn_max = 2;
    cfg.node_max = 2;
    cfg.ack_timeout_ns = 1000;
    cfg.delivery_max = 3;
    cb_broker *b = NULL;
    CU_ASSERT_FATAL(cb_broker_new(&cfg, NULL, &b) == CB_ERR_OK);
    cb_qendpoint *a = ep_make(0), *c = ep_make(1);
    sent s = {0};
    CU_ASSERT_EQUAL(cb_qendpoint_subscribe(c), CB_ERR_OK);
    ep_to_broker(c, b, 1, 0);
    uint8_t fr[128];
    size_t n = make_frame(fr, sizeof fr, 1);
    CU_ASSERT_EQUAL(cb_qendpoint_publish(a, 1, fr, n), CB_ERR_OK);
    ep_to_broker(a, b, 0, 100);
    CU_ASSERT_EQUAL(cb_broker_next_deadline_ns(b), 1100);
    cb_qendpoint_msg m[4];
    uint8_t p[4][256];
    uint64_t tag = 0;
    for (uint16_t d = 1; d <= 3; d++) {
        broker_out(b, &s);
        CU_ASSERT_EQUAL(ep_take(c, &s, 1, m, p, 4), 1);
        CU_ASSERT_EQUAL(m[0].delivery, d);
        if (d == 1) {
            tag = m[0].message_id;
        }
        CU_ASSERT_EQUAL(m[0].message_id, tag);             /* same tag on every delivery */
        (void)cb_qendpoint_drain(c, (cb_action[4]){0}, 4); /* the ACK is lost */
        uint64_t due = cb_broker_next_deadline_ns(b);
        CU_ASSERT_EQUAL(due, 100 + 1000ull * d);
        CU_ASSERT_EQUAL(cb_broker_on_timer(b, due), CB_ERR_OK);
    }
    broker_out(b, &s);
    CU_ASSERT_EQUAL(s.len[1], 0);
    cb_broker_stats st = stats_of(b);
    CU_ASSERT_EQUAL(st.delivered, 3);
    CU_ASSERT_EQUAL(st.redelivered, 2);
    CU_ASSERT_EQUAL(st.dropped, 1);
    CU_ASSERT_EQUAL(st.depth, 0);
    /* A late ACK for the dropped message is unknown, not a crash. */
    cb_queue_msg ack = {.kind = CB_QUEUE_ACK, .message_id = tag};
    uint8_t buf[64];
    long len = cb_queue_encode(&ack, buf, sizeof buf);
    CU_ASSERT_EQUAL(cb_broker_on_bytes(b, 1, buf, (size_t)len, 5000), len);
    ack.message_id = 0xFFFFFFFFull;
    len = cb_queue_encode(&ack, buf, sizeof buf);
    CU_ASSERT_EQUAL(cb_broker_on_bytes(b, 1, buf, (size_t)len, 5000), len);
    CU_ASSERT_EQUAL(stats_of(b).unknown_acks, 2);
    cb_qendpoint_del(a);
    cb_qendpoint_del(c);
    cb_broker_del(b);
}

static void test_broker_close_requeues(void)
{
    cb_broker *b = broker_make(8, 0, 1000000);
    cb_qendpoint *a = ep_make(0), *c = ep_make(1);
    sent s = {0};
    CU_ASSERT_EQUAL(cb_qendpoint_subscribe(c), CB_ERR_OK);
    ep_to_broker(c, b, 1, 0);
    uint8_t fr[128];
    size_t n = make_frame(fr, sizeof fr, 1);
    CU_ASSERT_EQUAL(cb_qendpoint_publish(a, 1, fr, n), CB_ERR_OK);
    ep_to_broker(a, b, 0, 0);
    broker_out(b, &s);
    s.len[1] = 0; /* delivered, never read */
    CU_ASSERT_EQUAL(cb_broker_on_close(b, 1, 50), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_broker_on_close(b, 9, 50), CB_ERR_UNKNOWN_CONN);
    CU_ASSERT_EQUAL(stats_of(b).depth, 1);
    /* Node 1 comes back on connection 2 and gets it again. */
    cb_qendpoint_on_reset(c);
    CU_ASSERT_EQUAL(cb_qendpoint_subscribe(c), CB_ERR_OK);
    ep_to_broker(c, b, 2, 60);
    broker_out(b, &s);
    cb_qendpoint_msg m[2];
    uint8_t p[2][256];
    CU_ASSERT_EQUAL(ep_take(c, &s, 2, m, p, 2), 1);
    CU_ASSERT_EQUAL(m[0].delivery, 2);
    ep_to_broker(c, b, 2, 70);
    CU_ASSERT_EQUAL(stats_of(b).acked, 1);
    cb_qendpoint_del(a);
    cb_qendpoint_del(c);
    cb_broker_del(b);
}

/* service_ns = 1000: five messages at t=0 leave at 1000, 2000, ... 5000; one at 10000, idle
 * server, leaves at 11000; with service 0 they all leave at once. */
static void test_broker_service_pacing(void)
{
    cb_broker *b = broker_make(16, 1000, 1000000000);
    cb_qendpoint *a = ep_make(0), *c = ep_make(1);
    sent s = {0};
    CU_ASSERT_EQUAL(cb_qendpoint_subscribe(c), CB_ERR_OK);
    ep_to_broker(c, b, 1, 0);
    uint8_t fr[128];
    for (uint32_t i = 0; i < 5; i++) {
        size_t n = make_frame(fr, sizeof fr, i);
        CU_ASSERT_EQUAL(cb_qendpoint_publish(a, 1, fr, n), CB_ERR_OK);
    }
    ep_to_broker(a, b, 0, 0);
    broker_out(b, &s);
    CU_ASSERT_EQUAL(s.len[1], 0); /* nothing leaves before its service ends */
    cb_qendpoint_msg m[8];
    uint8_t p[8][256];
    for (uint64_t k = 1; k <= 5; k++) {
        uint64_t due = cb_broker_next_deadline_ns(b);
        CU_ASSERT_EQUAL(due, 1000 * k);
        CU_ASSERT_EQUAL(cb_broker_on_timer(b, due - 1), CB_ERR_OK);
        broker_out(b, &s);
        CU_ASSERT_EQUAL(s.len[1], 0);
        CU_ASSERT_EQUAL(cb_broker_on_timer(b, due), CB_ERR_OK);
        broker_out(b, &s);
        CU_ASSERT_EQUAL(ep_take(c, &s, 1, m, p, 8), 1);
        ep_to_broker(c, b, 1, due);
    }
    CU_ASSERT_EQUAL(cb_broker_next_deadline_ns(b), UINT64_MAX);
    size_t n = make_frame(fr, sizeof fr, 7);
    CU_ASSERT_EQUAL(cb_qendpoint_publish(a, 1, fr, n), CB_ERR_OK);
    ep_to_broker(a, b, 0, 10000);
    CU_ASSERT_EQUAL(cb_broker_next_deadline_ns(b), 11000);
    /* A late timer delivers what is due, in order, without losing the schedule. */
    for (uint32_t i = 0; i < 3; i++) {
        n = make_frame(fr, sizeof fr, i);
        CU_ASSERT_EQUAL(cb_qendpoint_publish(a, 1, fr, n), CB_ERR_OK);
    }
    ep_to_broker(a, b, 0, 10500);
    CU_ASSERT_EQUAL(cb_broker_on_timer(b, 13000), CB_ERR_OK); /* 11000, 12000, 13000 */
    broker_out(b, &s);
    CU_ASSERT_EQUAL(ep_take(c, &s, 1, m, p, 8), 3);
    CU_ASSERT_EQUAL(cb_broker_next_deadline_ns(b), 14000);
    cb_qendpoint_del(a);
    cb_qendpoint_del(c);
    cb_broker_del(b);
}

static void test_broker_round_robin(void)
{
    cb_broker *b = broker_make(16, 100, 1000000000);
    cb_qendpoint *a = ep_make(0), *c1 = ep_make(1), *c2 = ep_make(2);
    sent s = {0};
    CU_ASSERT_EQUAL(cb_qendpoint_subscribe(c1), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_qendpoint_subscribe(c2), CB_ERR_OK);
    ep_to_broker(c1, b, 1, 0);
    ep_to_broker(c2, b, 2, 0);
    uint8_t fr[128];
    for (uint32_t i = 0; i < 4; i++) { /* four for node 1, then four for node 2 */
        size_t n = make_frame(fr, sizeof fr, i);
        CU_ASSERT_EQUAL(cb_qendpoint_publish(a, 1, fr, n), CB_ERR_OK);
    }
    for (uint32_t i = 0; i < 4; i++) {
        size_t n = make_frame(fr, sizeof fr, i);
        CU_ASSERT_EQUAL(cb_qendpoint_publish(a, 2, fr, n), CB_ERR_OK);
    }
    ep_to_broker(a, b, 0, 0);
    /* After 4 service times, each node got two: served alternately. */
    CU_ASSERT_EQUAL(cb_broker_on_timer(b, 400), CB_ERR_OK);
    broker_out(b, &s);
    cb_qendpoint_msg m[8];
    uint8_t p[8][256];
    CU_ASSERT_EQUAL(ep_take(c1, &s, 1, m, p, 8), 2);
    CU_ASSERT_EQUAL(ep_take(c2, &s, 2, m, p, 8), 2);
    cb_qendpoint_del(a);
    cb_qendpoint_del(c1);
    cb_qendpoint_del(c2);
    cb_broker_del(b);
}

static void test_broker_bad_input(void)
{
    cb_broker *b = broker_make(4, 0, 1000);
    sent s = {0};
    CU_ASSERT_EQUAL(cb_broker_on_bytes(b, 4, (const uint8_t *)"x", 1, 0), CB_ERR_UNKNOWN_CONN);
    /* Garbage: a PROTOCOL_ERROR event and a CLOSE; the whole input is consumed. */
    CU_ASSERT_EQUAL(cb_broker_on_bytes(b, 0, (const uint8_t *)"GET k\r\nmore", 11, 0), 11);
    broker_out(b, &s);
    CU_ASSERT_EQUAL(s.events, 1);
    CU_ASSERT_EQUAL(s.closes, 1);
    /* A DELIVER sent to the broker; a SUBSCRIBE for a node it does not serve. */
    uint8_t buf[64];
    uint8_t pl = 1;
    cb_queue_msg bad[] = {
        {.kind = CB_QUEUE_DELIVER,
         .delivery = 1,
         .message_id = 1,
         .payload_len = 1,
         .payload = &pl},
        {.kind = CB_QUEUE_NACK, .reason = 1, .message_id = 1},
        {.kind = CB_QUEUE_SUBSCRIBE, .src = 4},
    };
    for (size_t i = 0; i < 3; i++) {
        long n = cb_queue_encode(&bad[i], buf, sizeof buf);
        CU_ASSERT_EQUAL(cb_broker_on_bytes(b, 1, buf, (size_t)n, 0), n);
    }
    broker_out(b, &s);
    CU_ASSERT_EQUAL(s.closes, 4);
    CU_ASSERT_EQUAL(stats_of(b).protocol_errors, 4);
    /* A payload over the broker's limit (4096) is refused from its header. */
    cb_queue_msg big = {.kind = CB_QUEUE_PUBLISH, .message_id = 1, .payload_len = 5000};
    long n = cb_queue_encode_header(&big, buf, sizeof buf);
    CU_ASSERT_EQUAL(cb_broker_on_bytes(b, 2, buf, (size_t)n, 0), n);
    broker_out(b, &s);
    CU_ASSERT_EQUAL(s.closes, 5);
    cb_broker_del(b);
}

/* With two action slots, one NACK leaves no room for the next envelope's worst case. */
static void test_broker_outbox_full(void)
{
    cb_broker_config cfg = cb_broker_config_default();
    cfg.conn_max = 1;
    cfg.node_max = 1;
    cfg.queue_limit = 1;
    cfg.outbox_actions = 2;
    cfg.payload_bytes_max = 512;
    cb_broker *b = NULL;
    CU_ASSERT_FATAL(cb_broker_new(&cfg, NULL, &b) == CB_ERR_OK);
    uint8_t fr[128], buf[512];
    size_t fl = make_frame(fr, sizeof fr, 1);
    size_t len = 0;
    for (uint64_t id = 1; id <= 3; id++) {
        cb_queue_msg m = {.kind = CB_QUEUE_PUBLISH,
                          .dst = 5,
                          .message_id = id,
                          .payload_len = (uint32_t)fl,
                          .payload = fr};
        len += (size_t)cb_queue_encode(&m, buf + len, sizeof buf - len);
    }
    long used = cb_broker_on_bytes(b, 0, buf, len, 0);
    CU_ASSERT(used > 0 && used < (long)len);
    sent s = {0};
    broker_out(b, &s);
    long more = cb_broker_on_bytes(b, 0, buf + used, len - (size_t)used, 0);
    CU_ASSERT(more > 0);
    CU_ASSERT_EQUAL(stats_of(b).rejected, 2);
    cb_broker_del(b);
}

static void test_broker_config_and_nomem(void)
{
    cb_broker_config cfg = cb_broker_config_default();
    cb_broker *b = NULL;
    cfg.queue_limit = 0;
    CU_ASSERT_EQUAL(cb_broker_new(&cfg, NULL, &b), CB_ERR_INVALID);
    cfg = cb_broker_config_default();
    cfg.ack_timeout_ns = 0;
    CU_ASSERT_EQUAL(cb_broker_new(&cfg, NULL, &b), CB_ERR_INVALID);
    cfg = cb_broker_config_default();
    cfg.outbox_bytes = 100;
    CU_ASSERT_EQUAL(cb_broker_new(&cfg, NULL, &b), CB_ERR_INVALID);
    cfg = cb_broker_config_default();
    cfg.queue_limit = 64;
    cfg.payload_bytes_max = 1024;
    int rc = CB_ERR_NOMEM;
    uint64_t k = 0;
    for (; rc == CB_ERR_NOMEM && k < 32; k++) {
        cb_alloc_failing fa;
        cb_alloc_failing_init(&fa, k, 1);
        rc = cb_broker_new(&cfg, &fa.alloc, &b);
        if (rc == CB_ERR_OK) {
            cb_broker_del(b);
        }
        CU_ASSERT_EQUAL(fa.live, 0);
    }
    CU_ASSERT_EQUAL(rc, CB_ERR_OK);
    CU_ASSERT(k > 3); /* the struct, slots, nodes, connections, outbox */
    /* A publish whose payload cannot be allocated is refused with NACK(NOMEM). */
    cb_alloc_failing fa;
    cb_alloc_failing_init(&fa, 0, 0);
    CU_ASSERT_FATAL(cb_broker_new(&cfg, &fa.alloc, &b) == CB_ERR_OK);
    fa.fail_at = fa.calls;
    fa.fail_count = UINT64_MAX;
    uint8_t fr[128], buf[256];
    size_t fl = make_frame(fr, sizeof fr, 1);
    cb_queue_msg m = {.kind = CB_QUEUE_PUBLISH,
                      .dst = 1,
                      .message_id = 5,
                      .payload_len = (uint32_t)fl,
                      .payload = fr};
    long n = cb_queue_encode(&m, buf, sizeof buf);
    CU_ASSERT_EQUAL(cb_broker_on_bytes(b, 0, buf, (size_t)n, 0), n);
    cb_action a[4];
    CU_ASSERT_EQUAL(cb_broker_drain(b, a, 4), 1);
    cb_queue_msg d;
    CU_ASSERT_EQUAL(cb_queue_decode(a[0].data, a[0].data_len, 0, &d), (long)a[0].data_len);
    CU_ASSERT_EQUAL(d.kind, CB_QUEUE_NACK);
    CU_ASSERT_EQUAL(d.reason, CB_QUEUE_REASON_NOMEM);
    cb_broker_del(b);
    CU_ASSERT_EQUAL(fa.live, 0);
    cb_broker_del(NULL);
}

static void test_qendpoint_errors(void)
{
    cb_qendpoint_config cfg = {.node = 3, .payload_bytes_max = 100};
    cb_qendpoint *ep = NULL;
    CU_ASSERT_FATAL(cb_qendpoint_new(&cfg, NULL, &ep) == CB_ERR_OK);
    uint8_t fr[512];
    size_t n = make_frame(fr, sizeof fr, 1);
    CU_ASSERT_EQUAL(cb_qendpoint_publish(ep, 1, fr, n - 1), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(cb_qendpoint_publish(ep, 1, (const uint8_t *)"GET k\r\n", 7), CB_ERR_MALFORMED);
    cb_frame f;
    memset(&f, 0, sizeof f);
    f.opcode = CB_OP_SET;
    f.key_len = 1;
    f.key = (const uint8_t *)"k";
    f.value_len = 200;
    f.value = fr + 300;
    long big = cb_frame_encode(&f, fr, sizeof fr);
    CU_ASSERT_FATAL(big > 0);
    CU_ASSERT_EQUAL(cb_qendpoint_publish(ep, 1, fr, (size_t)big), CB_ERR_TOO_LARGE);
    /* Fill the outbox (2 envelopes of 128 bytes), then FULL until drained. */
    n = make_frame(fr, sizeof fr, 1);
    int rc;
    int published = 0;
    while ((rc = cb_qendpoint_publish(ep, 1, fr, n)) == CB_ERR_OK) {
        published++;
    }
    CU_ASSERT_EQUAL(rc, CB_ERR_FULL);
    CU_ASSERT(published >= 1);
    int subs = 0;
    while (cb_qendpoint_subscribe(ep) == CB_ERR_OK && subs < 100) {
        subs++;
    }
    CU_ASSERT(subs < 100);
    CU_ASSERT_EQUAL(cb_qendpoint_subscribe(ep), CB_ERR_FULL);
    cb_action a[8];
    CU_ASSERT_EQUAL(cb_qendpoint_drain(ep, a, 8), 1); /* coalesced into one SEND */
    CU_ASSERT_EQUAL(cb_qendpoint_publish(ep, 1, fr, n), CB_ERR_OK);
    (void)cb_qendpoint_drain(ep, a, 8);
    /* A PUBLISH coming from the broker is a broken stream. */
    cb_queue_msg m = {
        .kind = CB_QUEUE_PUBLISH, .message_id = 1, .payload_len = (uint32_t)n, .payload = fr};
    uint8_t buf[256];
    long len = cb_queue_encode(&m, buf, sizeof buf);
    const uint8_t *in = buf;
    size_t in_len = (size_t)len;
    cb_qendpoint_msg qm;
    CU_ASSERT_EQUAL(cb_qendpoint_next(ep, &in, &in_len, &qm), CB_ERR_MALFORMED);
    in = (const uint8_t *)"junk";
    in_len = 4;
    CU_ASSERT_EQUAL(cb_qendpoint_next(ep, &in, &in_len, &qm), CB_ERR_BAD_MAGIC);
    cb_qendpoint_del(ep);
    cb_qendpoint_del(NULL);
    cfg.outbox_bytes = 10;
    CU_ASSERT_EQUAL(cb_qendpoint_new(&cfg, NULL, &ep), CB_ERR_INVALID);
    cfg.outbox_bytes = 0;
    for (uint64_t k = 0; k < 3; k++) {
        cb_alloc_failing fa;
        cb_alloc_failing_init(&fa, k, 1);
        CU_ASSERT_EQUAL(cb_qendpoint_new(&cfg, &fa.alloc, &ep), CB_ERR_NOMEM);
        CU_ASSERT_EQUAL(fa.live, 0);
    }
}

/*
 * Property: random publishes, lost ACKs, closes and resubscriptions against a reference of
 * what was published. At every step depth = published - acked - dropped; every delivery
 * carries a payload that was published for the node subscribed on that connection; at
 * most one delivery per service_ns (100) since the start. At the end, with every node subscribed
 * and every delivery ACKed, the broker empties and every published message was acked exactly once.
 */
#define PROP_MSGS 600u

typedef struct prop_state {
    cb_broker *b;
    uint8_t acked[PROP_MSGS];
    uint32_t published;
    uint32_t deliveries;
    int conn_node[4]; /* node subscribed on each connection, -1 none */
} prop_state;

static void prop_check_depth(const prop_state *ps)
{
    cb_broker_stats st = stats_of(ps->b);
    CU_ASSERT_EQUAL(st.depth, st.published - st.acked - st.dropped);
    CU_ASSERT(st.depth <= 32);
}

/* Drain the broker; ACK each delivery unless `lose` says so (1 in lose_in). */
static void prop_drain(prop_state *ps, cb_rng *rng, uint64_t now, uint32_t lose_in)
{
    cb_action a[8];
    size_t n;
    while ((n = cb_broker_drain(ps->b, a, 8)) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (a[i].kind != CB_ACTION_SEND) {
                continue;
            }
            const uint8_t *in = a[i].data;
            size_t left = a[i].data_len;
            while (left > 0) {
                cb_queue_msg m;
                long k = cb_queue_decode(in, left, 0, &m);
                CU_ASSERT_FATAL(k > 0);
                in += k;
                left -= (size_t)k;
                if (m.kind != CB_QUEUE_DELIVER) {
                    continue; /* a NACK: the publisher sees it */
                }
                uint32_t id;
                CU_ASSERT_FATAL(m.payload_len == sizeof id);
                memcpy(&id, m.payload, sizeof id);
                CU_ASSERT_FATAL(id < ps->published);
                CU_ASSERT_EQUAL(ps->conn_node[a[i].peer], (int)m.dst);
                CU_ASSERT_EQUAL(m.dst, id % 4);
                ps->deliveries++;
                if (lose_in != 0 && cb_rng_below(rng, lose_in) == 0) {
                    continue;
                }
                cb_queue_msg ack = {.kind = CB_QUEUE_ACK, .message_id = m.message_id};
                uint8_t buf[64];
                long len = cb_queue_encode(&ack, buf, sizeof buf);
                cb_broker_stats before = stats_of(ps->b);
                CU_ASSERT_EQUAL(cb_broker_on_bytes(ps->b, a[i].peer, buf, (size_t)len, now), len);
                if (stats_of(ps->b).acked > before.acked) {
                    CU_ASSERT_FATAL(!ps->acked[id]); /* acked exactly once */
                    ps->acked[id] = 1;
                }
            }
        }
    }
}

static void prop_subscribe(prop_state *ps, uint32_t conn, uint32_t node, uint64_t now)
{
    cb_queue_msg m = {.kind = CB_QUEUE_SUBSCRIBE, .src = node};
    uint8_t buf[64];
    long len = cb_queue_encode(&m, buf, sizeof buf);
    CU_ASSERT_EQUAL(cb_broker_on_bytes(ps->b, conn, buf, (size_t)len, now), len);
    for (int c = 0; c < 4; c++) {
        ps->conn_node[c] = ps->conn_node[c] == (int)node ? -1 : ps->conn_node[c];
    }
    ps->conn_node[conn] = (int)node;
}

static void test_broker_property(void)
{
    cb_rng rng;
    cb_rng_init(&rng, cb_test_seed());
    static prop_state ps;
    memset(&ps, 0, sizeof ps);
    ps.b = broker_make(32, 100, 5000);
    for (uint32_t c = 0; c < 4; c++) {
        ps.conn_node[c] = -1;
        prop_subscribe(&ps, c, c, 0);
    }
    uint64_t now = 0;
    uint32_t issued = 0;
    while (issued < PROP_MSGS) {
        now += cb_rng_below(&rng, 200);
        uint64_t r = cb_rng_below(&rng, 100);
        if (r < 70) {
            uint32_t id = issued++;
            cb_queue_msg m = {.kind = CB_QUEUE_PUBLISH,
                              .dst = id % 4,
                              .src = 9,
                              .message_id = id + 1,
                              .payload_len = sizeof id,
                              .payload = (const uint8_t *)&id};
            uint8_t buf[64];
            long len = cb_queue_encode(&m, buf, sizeof buf);
            ps.published = issued;
            (void)cb_broker_on_bytes(ps.b, (uint32_t)cb_rng_below(&rng, 4), buf, (size_t)len, now);
        } else if (r < 73) {
            uint32_t c = (uint32_t)cb_rng_below(&rng, 4);
            CU_ASSERT_EQUAL(cb_broker_on_close(ps.b, c, now), CB_ERR_OK);
            ps.conn_node[c] = -1;
            prop_subscribe(&ps, (uint32_t)cb_rng_below(&rng, 4), c, now);
        }
        if (cb_broker_next_deadline_ns(ps.b) <= now) {
            CU_ASSERT_EQUAL(cb_broker_on_timer(ps.b, now), CB_ERR_OK);
        }
        prop_drain(&ps, &rng, now, 5);
        prop_check_depth(&ps);
    }
    /* Every node subscribed, every delivery ACKed: the broker empties. */
    for (uint32_t c = 0; c < 4; c++) {
        prop_subscribe(&ps, c, c, now);
    }
    for (int round = 0; round < 10000 && stats_of(ps.b).depth > 0; round++) {
        uint64_t due = cb_broker_next_deadline_ns(ps.b);
        CU_ASSERT_FATAL(due != UINT64_MAX);
        now = due > now ? due : now;
        CU_ASSERT_EQUAL(cb_broker_on_timer(ps.b, now), CB_ERR_OK);
        prop_drain(&ps, &rng, now, 0);
    }
    cb_broker_stats st = stats_of(ps.b);
    CU_ASSERT_EQUAL(st.depth, 0);
    CU_ASSERT_EQUAL(st.published + st.rejected, PROP_MSGS);
    CU_ASSERT(st.rejected > 0);    /* queue_limit 32 was reached */
    CU_ASSERT(st.redelivered > 0); /* lost ACKs and closes were redelivered */
    uint32_t acked = 0;
    for (uint32_t i = 0; i < PROP_MSGS; i++) {
        acked += ps.acked[i];
    }
    CU_ASSERT_EQUAL(acked, st.acked);
    CU_ASSERT_EQUAL(st.acked, st.published);
    CU_ASSERT_EQUAL(st.delivered, ps.deliveries);
    CU_ASSERT(st.delivered <= now / 100 + 1); /* the single server's pace */
    printf("\n  published %llu rejected %llu delivered %llu redelivered %llu\n",
           (unsigned long long)st.published, (unsigned long long)st.rejected,
           (unsigned long long)st.delivered, (unsigned long long)st.redelivered);
    cb_broker_del(ps.b);
}

static const cb_test_case tests[] = {
    {"property", test_broker_property},
    {"round_trip", test_broker_round_trip},
    {"full_and_unknown_dst", test_broker_full_and_unknown_dst},
    {"redelivery_and_drop", test_broker_redelivery_and_drop},
    {"close_requeues", test_broker_close_requeues},
    {"service_pacing", test_broker_service_pacing},
    {"round_robin", test_broker_round_robin},
    {"bad_input", test_broker_bad_input},
    {"outbox_full", test_broker_outbox_full},
    {"config_and_nomem", test_broker_config_and_nomem},
    {"qendpoint_errors", test_qendpoint_errors},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_broker", tests)
