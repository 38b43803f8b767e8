/*
 * test_cb_brokerd.c: the queue transport over real sockets on 127.0.0.1 — `cachebed broker`
 * (real/cb_brokerd.h) and `cachebed serve --broker` (real/cb_serve_queue.h).
 *
 * The broker and the consumer servers run in threads of this process on ephemeral ports;
 * the test's own endpoints are raw sockets speaking envelopes (cb_queue.h) with a 5 s
 * receive timeout, so a bug fails a test instead of hanging it. Covered: publish, deliver,
 * ACK; two consumer servers answering SET/GET through the broker; hostile input (garbage,
 * an oversize length, an endpoint that never reads) closing only that connection; a broker
 * stopped and started again on the same port, after which the servers have resubscribed
 * and still hold their data; the replay world's clients through a broker restart and
 * through a partition between the broker and one server; an inherited listening socket.
 */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cb_brokerd.h"
#include "cb_err.h"
#include "cb_frame.h"
#include "cb_queue.h"
#include "cb_realworld.h"
#include "cb_serve_queue.h"
#include "cb_test.h"

typedef struct bt_broker {
    cb_brokerd *b;
    pthread_t t;
    uint16_t port;
} bt_broker;

typedef struct bt_server {
    cb_serveq *q;
    pthread_t t;
} bt_server;

static void *bt_broker_main(void *arg)
{
    bt_broker *bk = arg;
    CU_ASSERT_EQUAL(cb_brokerd_run(bk->b), 0);
    return NULL;
}

static void *bt_server_main(void *arg)
{
    bt_server *sv = arg;
    CU_ASSERT_EQUAL(cb_serveq_run(sv->q), 0);
    return NULL;
}

static void bt_broker_start(bt_broker *bk, uint16_t port)
{
    cb_brokerd_config c;
    memset(&c, 0, sizeof c);
    c.broker = cb_broker_config_default();
    c.broker.conn_max = 64;
    c.broker.node_max = 64;
    c.broker.ack_timeout_ns = 200000000ull;
    c.port = port;
    char err[256];
    /* A port just freed may take a moment (the old listener's thread is joined first). */
    int rc = -1;
    for (int i = 0; i < 50 && rc != 0; i++) {
        rc = cb_brokerd_new(&c, &bk->b, err, sizeof err);
        if (rc != 0) {
            (void)usleep(20000);
        }
    }
    if (rc != 0) {
        printf("\n  broker: %s\n", err);
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    bk->port = cb_brokerd_port(bk->b);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&bk->t, NULL, bt_broker_main, bk), 0);
}

static void bt_broker_stop(bt_broker *bk, cb_brokerd_stats *st)
{
    cb_brokerd_stop(bk->b);
    CU_ASSERT_EQUAL(pthread_join(bk->t, NULL), 0);
    if (st != NULL) {
        cb_brokerd_get_stats(bk->b, st);
    }
    cb_brokerd_del(bk->b);
    bk->b = NULL;
}

static void bt_server_start(bt_server *sv, uint16_t broker_port, uint32_t node)
{
    cb_serveq_config c;
    memset(&c, 0, sizeof c);
    c.broker_host = "127.0.0.1";
    c.broker_port = broker_port;
    c.node = node;
    c.server = cb_server_config_default();
    c.server.conn_max = 64;
    c.reconnect_ns = 50000000ull;
    char err[256];
    int rc = cb_serveq_new(&c, &sv->q, err, sizeof err);
    if (rc != 0) {
        printf("\n  serve: %s\n", err);
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&sv->t, NULL, bt_server_main, sv), 0);
}

static void bt_server_stop(bt_server *sv, cb_serveq_stats *st)
{
    cb_serveq_stop(sv->q);
    CU_ASSERT_EQUAL(pthread_join(sv->t, NULL), 0);
    if (st != NULL) {
        cb_serveq_get_stats(sv->q, st);
    }
    cb_serveq_del(sv->q);
    sv->q = NULL;
}

/* ---- a raw endpoint ----------------------------------------------------------------------- */

static int bt_connect(uint16_t port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    if (rcvbuf > 0) {
        CU_ASSERT(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {5, 0};
    CU_ASSERT(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    return fd;
}

static int bt_send(int fd, const void *buf, size_t len)
{
    return send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

static int bt_env(int fd, uint8_t kind, uint32_t dst, uint32_t src, uint64_t id,
                  const uint8_t *payload, uint32_t len)
{
    static uint8_t buf[CB_QUEUE_HEADER_BYTES + 600000];
    cb_queue_msg m = {.kind = kind,
                      .dst = dst,
                      .src = src,
                      .message_id = id,
                      .payload_len = len,
                      .payload = payload};
    long n = cb_queue_encode(&m, buf, sizeof buf);
    CU_ASSERT_FATAL(n > 0);
    return bt_send(fd, buf, (size_t)n);
}

static size_t bt_recv(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, (char *)buf + got, len - got, 0);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    return got;
}

/* Read one envelope into *m (payload in buf); 0, or -1 (closed or timeout). */
static int bt_read_env(int fd, uint8_t *buf, size_t cap, cb_queue_msg *m)
{
    if (bt_recv(fd, buf, CB_QUEUE_HEADER_BYTES) != CB_QUEUE_HEADER_BYTES) {
        return -1;
    }
    uint32_t plen =
        (uint32_t)buf[24] << 24 | (uint32_t)buf[25] << 16 | (uint32_t)buf[26] << 8 | buf[27];
    CU_ASSERT_FATAL(CB_QUEUE_HEADER_BYTES + (size_t)plen <= cap);
    if (bt_recv(fd, buf + CB_QUEUE_HEADER_BYTES, plen) != plen) {
        return -1;
    }
    long n = cb_queue_decode(buf, CB_QUEUE_HEADER_BYTES + (size_t)plen, 0, m);
    CU_ASSERT_EQUAL(n, (long)(CB_QUEUE_HEADER_BYTES + plen));
    return n > 0 ? 0 : -1;
}

/* Whether the peer closed fd (EOF or reset) within the receive timeout. */
static int bt_closed(int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            return 1;
        }
        if (n < 0) {
            return 0;
        }
    }
}

static size_t bt_frame(uint8_t *out, uint8_t op, const char *key, const char *value, uint32_t id)
{
    cb_frame f;
    memset(&f, 0, sizeof f);
    f.version = CB_FRAME_VERSION;
    f.opcode = op;
    f.key_len = (uint8_t)strlen(key);
    f.key = (const uint8_t *)key;
    f.request_id = id;
    if (value != NULL) {
        f.value_len = (uint32_t)strlen(value);
        f.value = (const uint8_t *)value;
    }
    long n = cb_frame_encode(&f, out, 1024);
    CU_ASSERT_FATAL(n > 0);
    return (size_t)n;
}

/* Client node `me` sends one request frame to server node `dst` through the broker and
 * reads the reply (ACKing it); returns 0 with *f decoded (views into rbuf), or -1. */
static int bt_request(int fd, uint32_t me, uint32_t dst, uint8_t op, const char *key,
                      const char *value, uint32_t id, uint8_t *rbuf, size_t cap, cb_frame *f)
{
    uint8_t req[1024];
    size_t len = bt_frame(req, op, key, value, id);
    if (bt_env(fd, CB_QUEUE_PUBLISH, dst, me, id, req, (uint32_t)len) != 0) {
        return -1;
    }
    cb_queue_msg m;
    if (bt_read_env(fd, rbuf, cap, &m) != 0) {
        return -1;
    }
    CU_ASSERT_EQUAL(m.kind, CB_QUEUE_DELIVER);
    CU_ASSERT_EQUAL(m.src, dst);
    CU_ASSERT_EQUAL(m.dst, me);
    CU_ASSERT_EQUAL(bt_env(fd, CB_QUEUE_ACK, 0, me, m.message_id, NULL, 0), 0);
    long n = cb_frame_decode(m.payload, m.payload_len, NULL, f);
    CU_ASSERT_EQUAL(n, (long)m.payload_len);
    CU_ASSERT_EQUAL(f->request_id, id);
    return n > 0 ? 0 : -1;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_brokerd_publish_deliver_ack(void)
{
    bt_broker bk;
    bt_broker_start(&bk, 0);
    int a = bt_connect(bk.port, 0), b = bt_connect(bk.port, 0);
    CU_ASSERT_FATAL(a >= 0 && b >= 0);
    CU_ASSERT_EQUAL(bt_env(a, CB_QUEUE_SUBSCRIBE, 0, 3, 0, NULL, 0), 0);
    CU_ASSERT_EQUAL(bt_env(b, CB_QUEUE_SUBSCRIBE, 0, 4, 0, NULL, 0), 0);
    static const uint8_t hello[] = "hello";
    CU_ASSERT_EQUAL(bt_env(b, CB_QUEUE_PUBLISH, 3, 4, 7, hello, 5), 0);
    static uint8_t buf[4096];
    cb_queue_msg m;
    CU_ASSERT_EQUAL_FATAL(bt_read_env(a, buf, sizeof buf, &m), 0);
    CU_ASSERT_EQUAL(m.kind, CB_QUEUE_DELIVER);
    CU_ASSERT_EQUAL(m.src, 4);
    CU_ASSERT_EQUAL(m.delivery, 1);
    CU_ASSERT(m.payload_len == 5 && memcmp(m.payload, "hello", 5) == 0);
    /* not ACKed within 200 ms: delivered again, same tag, delivery 2 */
    uint64_t tag = m.message_id;
    CU_ASSERT_EQUAL_FATAL(bt_read_env(a, buf, sizeof buf, &m), 0);
    CU_ASSERT_EQUAL(m.message_id, tag);
    CU_ASSERT_EQUAL(m.delivery, 2);
    CU_ASSERT_EQUAL(bt_env(a, CB_QUEUE_ACK, 0, 3, tag, NULL, 0), 0);
    /* a PUBLISH to a node out of range is NACKed */
    CU_ASSERT_EQUAL(bt_env(b, CB_QUEUE_PUBLISH, 1000, 4, 8, hello, 5), 0);
    CU_ASSERT_EQUAL_FATAL(bt_read_env(b, buf, sizeof buf, &m), 0);
    CU_ASSERT_EQUAL(m.kind, CB_QUEUE_NACK);
    CU_ASSERT_EQUAL(m.reason, CB_QUEUE_REASON_UNKNOWN_DST);
    CU_ASSERT_EQUAL(m.message_id, 8);
    close(a);
    close(b);
    cb_brokerd_stats st;
    bt_broker_stop(&bk, &st);
    CU_ASSERT_EQUAL(st.broker.published, 1);
    CU_ASSERT_EQUAL(st.broker.redelivered, 1);
    CU_ASSERT_EQUAL(st.broker.acked, 1);
    CU_ASSERT_EQUAL(st.broker.rejected, 1);
    CU_ASSERT_EQUAL(st.accepted, 2);
}

static void test_brokerd_two_servers(void)
{
    bt_broker bk;
    bt_broker_start(&bk, 0);
    bt_server s0, s1;
    bt_server_start(&s0, bk.port, 0);
    bt_server_start(&s1, bk.port, 1);
    int c = bt_connect(bk.port, 0);
    CU_ASSERT_FATAL(c >= 0);
    CU_ASSERT_EQUAL(bt_env(c, CB_QUEUE_SUBSCRIBE, 0, 2, 0, NULL, 0), 0);
    static uint8_t buf[8192];
    cb_frame f;
    CU_ASSERT_EQUAL_FATAL(bt_request(c, 2, 0, CB_OP_SET, "k0", "zero", 1, buf, sizeof buf, &f), 0);
    CU_ASSERT_EQUAL(f.status, CB_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(bt_request(c, 2, 1, CB_OP_SET, "k1", "one", 2, buf, sizeof buf, &f), 0);
    CU_ASSERT_EQUAL(f.status, CB_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(bt_request(c, 2, 0, CB_OP_GET, "k0", NULL, 3, buf, sizeof buf, &f), 0);
    CU_ASSERT(f.status == CB_STATUS_OK && f.value_len == 4 && memcmp(f.value, "zero", 4) == 0);
    CU_ASSERT_EQUAL_FATAL(bt_request(c, 2, 1, CB_OP_GET, "k1", NULL, 4, buf, sizeof buf, &f), 0);
    CU_ASSERT(f.status == CB_STATUS_OK && f.value_len == 3 && memcmp(f.value, "one", 3) == 0);
    /* each server holds only its own key */
    CU_ASSERT_EQUAL_FATAL(bt_request(c, 2, 1, CB_OP_GET, "k0", NULL, 5, buf, sizeof buf, &f), 0);
    CU_ASSERT_EQUAL(f.status, CB_STATUS_NOT_FOUND);
    close(c);
    cb_serveq_stats q0, q1;
    bt_server_stop(&s0, &q0);
    bt_server_stop(&s1, &q1);
    CU_ASSERT_EQUAL(q0.deliveries, 2);
    CU_ASSERT_EQUAL(q1.deliveries, 3);
    CU_ASSERT_EQUAL(q0.server.requests + q1.server.requests, 5);
    cb_brokerd_stats st;
    bt_broker_stop(&bk, &st);
    CU_ASSERT_EQUAL(st.broker.published, 10);
    CU_ASSERT_EQUAL(st.broker.acked, 10);
}

static void test_brokerd_hostile(void)
{
    bt_broker bk;
    bt_broker_start(&bk, 0);
    static uint8_t buf[4096];
    cb_queue_msg m;
    /* garbage bytes: closed */
    int g = bt_connect(bk.port, 0);
    CU_ASSERT_EQUAL(bt_send(g, "GET / HTTP/1.0\r\n\r\n", 18), 0);
    CU_ASSERT(bt_closed(g));
    close(g);
    /* a valid header announcing a 2 GiB payload: closed before any payload is read */
    int o = bt_connect(bk.port, 0);
    uint8_t hdr[CB_QUEUE_HEADER_BYTES] = {0xCB, 0x51, 1, CB_QUEUE_PUBLISH};
    hdr[11] = 1;    /* dst 1 */
    hdr[23] = 1;    /* message id 1 */
    hdr[24] = 0x80; /* payload_len 2^31 */
    CU_ASSERT_EQUAL(bt_send(o, hdr, sizeof hdr), 0);
    CU_ASSERT(bt_closed(o));
    close(o);
    /* a DELIVER sent to the broker: closed */
    int d = bt_connect(bk.port, 0);
    uint8_t dl[CB_QUEUE_HEADER_BYTES + 1];
    cb_queue_msg dm = {.kind = CB_QUEUE_DELIVER,
                       .delivery = 1,
                       .dst = 1,
                       .message_id = 1,
                       .payload_len = 1,
                       .payload = (const uint8_t *)"x"};
    CU_ASSERT(cb_queue_encode(&dm, dl, sizeof dl) > 0);
    CU_ASSERT_EQUAL(bt_send(d, dl, sizeof dl), 0);
    CU_ASSERT(bt_closed(d));
    close(d);
    /* an endpoint subscribed as node 5 that never reads: 48 x 512 KiB is more than its
     * output bound (4 MiB + one envelope) plus socket buffers, so it is closed */
    int slow = bt_connect(bk.port, 4096);
    CU_ASSERT_EQUAL(bt_env(slow, CB_QUEUE_SUBSCRIBE, 0, 5, 0, NULL, 0), 0);
    int pub = bt_connect(bk.port, 0);
    static uint8_t big[512 * 1024];
    memset(big, 'b', sizeof big);
    for (uint64_t i = 1; i <= 48; i++) {
        CU_ASSERT_EQUAL(bt_env(pub, CB_QUEUE_PUBLISH, 5, 6, i, big, sizeof big), 0);
    }
    /* the broker is still up for others: a round trip through it */
    int a = bt_connect(bk.port, 0);
    CU_ASSERT_EQUAL(bt_env(a, CB_QUEUE_SUBSCRIBE, 0, 7, 0, NULL, 0), 0);
    CU_ASSERT_EQUAL(bt_env(pub, CB_QUEUE_PUBLISH, 7, 6, 100, (const uint8_t *)"ok", 2), 0);
    CU_ASSERT_EQUAL_FATAL(bt_read_env(a, buf, sizeof buf, &m), 0);
    CU_ASSERT(m.kind == CB_QUEUE_DELIVER && m.payload_len == 2 && memcmp(m.payload, "ok", 2) == 0);
    close(a);
    close(pub);
    close(slow);
    cb_brokerd_stats st;
    bt_broker_stop(&bk, &st);
    CU_ASSERT_EQUAL(st.closed_by_protocol, 3);
    CU_ASSERT_EQUAL(st.broker.protocol_errors, 3);
    CU_ASSERT(st.closed_slow >= 1);
    CU_ASSERT_EQUAL(st.broker.published, 49);
}

static void test_brokerd_restart(void)
{
    bt_broker bk;
    bt_broker_start(&bk, 0);
    uint16_t port = bk.port;
    bt_server s0;
    bt_server_start(&s0, port, 0);
    int c = bt_connect(port, 0);
    CU_ASSERT_EQUAL(bt_env(c, CB_QUEUE_SUBSCRIBE, 0, 9, 0, NULL, 0), 0);
    static uint8_t buf[8192];
    cb_frame f;
    CU_ASSERT_EQUAL_FATAL(bt_request(c, 9, 0, CB_OP_SET, "kept", "v", 1, buf, sizeof buf, &f), 0);
    /* the broker goes away: the client's stream ends, nothing listens */
    bt_broker_stop(&bk, NULL);
    CU_ASSERT(bt_closed(c));
    close(c);
    CU_ASSERT(bt_connect(port, 0) < 0);
    /* a request published now would be lost; the broker comes back on the same port */
    (void)usleep(120000);
    bt_broker_start(&bk, port);
    c = bt_connect(port, 0);
    CU_ASSERT_FATAL(c >= 0);
    CU_ASSERT_EQUAL(bt_env(c, CB_QUEUE_SUBSCRIBE, 0, 9, 0, NULL, 0), 0);
    /* the server resubscribes within its retry period (50 ms); until then the request waits
     * in the broker's queue for node 0 */
    CU_ASSERT_EQUAL_FATAL(bt_request(c, 9, 0, CB_OP_GET, "kept", NULL, 2, buf, sizeof buf, &f), 0);
    CU_ASSERT(f.status == CB_STATUS_OK && f.value_len == 1 && f.value[0] == 'v');
    close(c);
    cb_serveq_stats q;
    bt_server_stop(&s0, &q);
    CU_ASSERT_EQUAL(q.disconnects, 1);
    CU_ASSERT_EQUAL(q.reconnects, 1);
    CU_ASSERT_EQUAL(q.deliveries, 2);
    bt_broker_stop(&bk, NULL);
}

/* ---- the replay world's clients through a broker that goes away and comes back ---------- */

/* 400 requests 2 ms apart: the last 20 leave 460 ms after the broker is back, room for slow
 * reconnects when the machine is loaded (250 requests once left too little). */
#define RT_REQUESTS 400u
#define RT_PACE_NS  2000000ull

typedef struct rt_state {
    uint32_t servers; /* request i goes to server i % servers (0: server 0) */
    uint32_t issued, completed;
    uint64_t next_at;
    uint8_t outcomes[RT_REQUESTS];
    char key[16];
} rt_state;

static int rt_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op, uint32_t *server,
                   uint64_t *wake_ns)
{
    (void)client;
    rt_state *st = user;
    if (st->issued == RT_REQUESTS) {
        *wake_ns = UINT64_MAX;
        return 0;
    }
    if (now_ns < st->next_at) {
        *wake_ns = st->next_at;
        return 0;
    }
    st->next_at = now_ns + RT_PACE_NS;
    int n = snprintf(st->key, sizeof st->key, "key%u", st->issued);
    op->op = CB_OP_SET;
    op->key = (const uint8_t *)st->key;
    op->key_len = (uint8_t)n;
    op->value = (const uint8_t *)"v";
    op->value_len = 1;
    *server = st->servers > 1 ? st->issued % st->servers : 0;
    op->user_data = st->issued++;
    return 1;
}

static void rt_complete(void *user, uint32_t client, const cb_completion *c)
{
    (void)client;
    rt_state *st = user;
    CU_ASSERT_FATAL(c->user_data < RT_REQUESTS);
    st->outcomes[c->user_data] = c->outcome;
    st->completed++;
}

typedef struct rt_ctl {
    bt_broker *bk;
    uint16_t port;
} rt_ctl;

/* Stop the broker 150 ms in, start it again on the same port 150 ms later. */
static void *rt_control(void *arg)
{
    rt_ctl *ctl = arg;
    (void)usleep(150000);
    bt_broker_stop(ctl->bk, NULL);
    (void)usleep(150000);
    bt_broker_start(ctl->bk, ctl->port);
    return NULL;
}

static void test_brokerd_replay_world_restart(void)
{
    bt_broker bk;
    bt_broker_start(&bk, 0);
    bt_server s0;
    bt_server_start(&s0, bk.port, 0);
    struct sockaddr_in broker;
    memset(&broker, 0, sizeof broker);
    broker.sin_family = AF_INET;
    broker.sin_port = htons(bk.port);
    broker.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cb_realworld_config rc;
    memset(&rc, 0, sizeof rc);
    rc.server_count = 1;
    rc.client_count = 1;
    rc.servers = &broker; /* unused with a broker */
    rc.broker = &broker;
    rc.client = cb_client_config_default();
    rc.client.outstanding_max = 1;
    rc.client.timeout_ns = rc.client.timeout_max_ns = 20000000ull;
    rc.client.attempts_max = 2;
    rc.latency_ns = 50000; /* through the delay queue too */
    rc.seed = 7;
    cb_realworld *w = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_realworld_new(&rc, &w), CB_ERR_OK);
    static rt_state st;
    memset(&st, 0, sizeof st);
    cb_world_hooks hooks = {.user = &st, .next = rt_next, .complete = rt_complete};
    rt_ctl ctl = {&bk, bk.port};
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, rt_control, &ctl), 0);
    CU_ASSERT_EQUAL(cb_realworld_run(w, &hooks, 10000000000ull), CB_ERR_OK);
    CU_ASSERT_EQUAL(pthread_join(t, NULL), 0);
    cb_realworld_stats rs;
    cb_realworld_get_stats(w, &rs);
    cb_realworld_del(w);
    CU_ASSERT_EQUAL(st.completed, RT_REQUESTS);
    uint32_t stored = 0, timeouts = 0;
    for (uint32_t i = 0; i < RT_REQUESTS; i++) {
        stored += st.outcomes[i] == CB_OUTCOME_STORED;
        timeouts += st.outcomes[i] == CB_OUTCOME_TIMEOUT;
    }
    /* requests timed out while the broker was gone, and the last ones all went through */
    CU_ASSERT(timeouts >= 1);
    CU_ASSERT_EQUAL(stored + timeouts, RT_REQUESTS);
    for (uint32_t i = RT_REQUESTS - 20; i < RT_REQUESTS; i++) {
        CU_ASSERT_EQUAL(st.outcomes[i], CB_OUTCOME_STORED);
    }
    CU_ASSERT(rs.connects >= 2);
    printf("\n  %u stored, %u timed out, %llu connections\n", stored, timeouts,
           (unsigned long long)rs.connects);
    cb_serveq_stats q;
    bt_server_stop(&s0, &q);
    CU_ASSERT_EQUAL(q.reconnects, 1);
    bt_broker_stop(&bk, NULL);
}

/* A partition between the broker and server 1 (node ids: servers 0, 1, client 2, broker 3)
 * from 100 ms to 300 ms, in the replay world's delay queue: the envelopes to and from
 * server 1 are lost (its requests time out), the client's stream to the broker stays up
 * (server 0's requests go through), and after the heal both servers answer again. */
static void test_brokerd_replay_world_partition(void)
{
    bt_broker bk;
    bt_broker_start(&bk, 0);
    bt_server s0, s1;
    bt_server_start(&s0, bk.port, 0);
    bt_server_start(&s1, bk.port, 1);
    struct sockaddr_in broker[2];
    memset(broker, 0, sizeof broker);
    broker[0].sin_family = AF_INET;
    broker[0].sin_port = htons(bk.port);
    broker[0].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    broker[1] = broker[0];
    static const uint8_t groups[4] = {1, 2, 1, 1};
    cb_sgworld_fault faults[2] = {
        {.at_ns = 100000000ull, .kind = CB_SGWORLD_FAULT_PARTITION, .groups = groups},
        {.at_ns = 300000000ull, .kind = CB_SGWORLD_FAULT_HEAL},
    };
    cb_realworld_config rc;
    memset(&rc, 0, sizeof rc);
    rc.server_count = 2;
    rc.client_count = 1;
    rc.servers = broker; /* unused with a broker */
    rc.broker = &broker[0];
    rc.client = cb_client_config_default();
    rc.client.outstanding_max = 1;
    rc.client.timeout_ns = rc.client.timeout_max_ns = 20000000ull;
    rc.client.attempts_max = 2;
    rc.seed = 7;
    rc.faults = faults;
    rc.fault_count = 2;
    cb_realworld *w = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_realworld_new(&rc, &w), CB_ERR_OK);
    static rt_state st;
    memset(&st, 0, sizeof st);
    st.servers = 2;
    cb_world_hooks hooks = {.user = &st, .next = rt_next, .complete = rt_complete};
    CU_ASSERT_EQUAL(cb_realworld_run(w, &hooks, 10000000000ull), CB_ERR_OK);
    cb_realworld_stats rs;
    cb_realworld_get_stats(w, &rs);
    cb_realworld_del(w);
    CU_ASSERT_EQUAL(st.completed, RT_REQUESTS);
    /* Paced every 2 ms, or later after a timeout: request i is issued at >= 2i ms. */
    uint32_t ok[2] = {0, 0}, lost[2] = {0, 0}, tail_ok = 0;
    for (uint32_t i = 0; i < RT_REQUESTS; i++) {
        int stored = st.outcomes[i] == CB_OUTCOME_STORED;
        ok[i % 2] += (uint32_t)stored;
        lost[i % 2] += (uint32_t)(st.outcomes[i] == CB_OUTCOME_TIMEOUT);
        tail_ok += (uint32_t)(i >= RT_REQUESTS - 20 && stored);
    }
    printf("\n  server0 %u stored %u timed out, server1 %u stored %u timed out, %llu cut, "
           "%llu connections\n",
           ok[0], lost[0], ok[1], lost[1], (unsigned long long)rs.cut,
           (unsigned long long)rs.connects);
    CU_ASSERT_EQUAL(lost[0], 0);  /* the client's stream was never cut */
    CU_ASSERT(lost[1] >= 3);      /* 200 ms / (2 x 20 ms) per timed-out request */
    CU_ASSERT(rs.cut > 0);
    CU_ASSERT_EQUAL(rs.connects, 1);
    CU_ASSERT_EQUAL(tail_ok, 20); /* both answer after the heal */
    bt_server_stop(&s1, NULL);
    bt_server_stop(&s0, NULL);
    bt_broker_stop(&bk, NULL);
}

/* The broker on an inherited listening socket (`cachebed broker --listen-fd`): it serves
 * on it and reports its port; a socket that does not listen is refused. */
static void test_brokerd_listen_fd(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    CU_ASSERT_EQUAL(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    cb_brokerd_config c;
    memset(&c, 0, sizeof c);
    c.broker = cb_broker_config_default();
    c.broker.conn_max = 8;
    c.broker.node_max = 8;
    c.listen_fd = fd;
    char err[256] = "";
    cb_brokerd *b = NULL;
    CU_ASSERT_NOT_EQUAL(cb_brokerd_new(&c, &b, err, sizeof err), 0); /* not listening */
    CU_ASSERT(strstr(err, "not a listening TCP socket") != NULL);
    fd = socket(AF_INET, SOCK_STREAM, 0); /* the failed broker owned (closed) the first */
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    CU_ASSERT_EQUAL_FATAL(listen(fd, 16), 0);
    c.listen_fd = fd;
    bt_broker bk;
    CU_ASSERT_EQUAL_FATAL(cb_brokerd_new(&c, &bk.b, err, sizeof err), 0);
    bk.port = cb_brokerd_port(bk.b);
    CU_ASSERT_EQUAL(bk.port, ntohs(a.sin_port));
    CU_ASSERT_EQUAL_FATAL(pthread_create(&bk.t, NULL, bt_broker_main, &bk), 0);
    bt_server s0;
    bt_server_start(&s0, bk.port, 0); /* it connects and subscribes through that socket */
    cb_serveq_stats q;
    bt_server_stop(&s0, &q);
    CU_ASSERT_EQUAL(q.disconnects, 0);
    cb_brokerd_stats bs;
    bt_broker_stop(&bk, &bs);
    CU_ASSERT_EQUAL(bs.accepted, 1);
}

static const cb_test_case cases[] = {
    {"publish, deliver, redeliver, ack, nack", test_brokerd_publish_deliver_ack},
    {"two consumer servers through the broker", test_brokerd_two_servers},
    {"hostile endpoints are closed, the broker stays up", test_brokerd_hostile},
    {"broker restart: servers resubscribe", test_brokerd_restart},
    {"replay world: clients time out, then work after a broker restart",
     test_brokerd_replay_world_restart},
    {"replay world: a partition between the broker and a server", test_brokerd_replay_world_partition},
    {"broker on an inherited listening socket", test_brokerd_listen_fd},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_brokerd", cases)
