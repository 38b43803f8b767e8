/*
 * test_cb_conn.c: the per-connection machinery of the real/ daemons (real/cb_conn.h).
 *
 * Sockets are AF_UNIX socketpairs with a small SO_SNDBUF, so a gathering write is cut short
 * and the rest must be queued in order; reads on the other end are non-blocking and bounded
 * in count. Covered: the queue's bound (FULL, nothing queued) and growth past cap_first;
 * partial sendmsg then flush, bytes arriving in order; a run of SEND actions longer than
 * CB_CONN_IOV_MAX; a peer that never reads reaching the bound; EPOLLOUT watched exactly while
 * bytes are queued, driven by a real cb_loop; a closed peer (CLOSED, no SIGPIPE); recv's three
 * outcomes; binding and its errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cb_conn.h"
#include "cb_err.h"
#include "cb_test.h"

#define CT_SNDBUF 4096

/* A non-blocking socketpair; sv[0] with a small send buffer. */
static void ct_pair(int sv[2])
{
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    int size = CT_SNDBUF;
    CU_ASSERT_EQUAL_FATAL(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size), 0);
    CU_ASSERT_EQUAL_FATAL(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof size), 0);
}

static uint8_t ct_byte(size_t i)
{
    return (uint8_t)(i * 7u + i / 251u);
}

/* Read what fd holds now into got[*got_len..cap); returns bytes read. */
static size_t ct_drain(int fd, uint8_t *got, size_t *got_len, size_t cap)
{
    size_t total = 0;
    for (int i = 0; i < 100000 && *got_len < cap; i++) {
        ssize_t n = recv(fd, got + *got_len, cap - *got_len, MSG_DONTWAIT);
        if (n <= 0) {
            break;
        }
        *got_len += (size_t)n;
        total += (size_t)n;
    }
    return total;
}

static void test_conn_append_bound_and_growth(void)
{
    cb_conn_out o;
    cb_conn_out_init(&o, 100, 8);
    uint8_t data[101];
    for (size_t i = 0; i < sizeof data; i++) {
        data[i] = ct_byte(i);
    }
    CU_ASSERT_EQUAL(cb_conn_out_pending(&o), 0);
    CU_ASSERT_EQUAL(cb_conn_out_append(&o, data, 101), CB_ERR_FULL);
    CU_ASSERT_EQUAL(cb_conn_out_pending(&o), 0);
    CU_ASSERT_EQUAL(cb_conn_out_append(&o, data, 60), CB_ERR_OK);
    CU_ASSERT(o.cap >= 60 && o.cap % 8 == 0);
    CU_ASSERT_EQUAL(cb_conn_out_append(&o, data + 60, 41), CB_ERR_FULL);
    CU_ASSERT_EQUAL(cb_conn_out_pending(&o), 60);
    CU_ASSERT_EQUAL(cb_conn_out_append(&o, data + 60, 40), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_conn_out_pending(&o), 100);
    CU_ASSERT_EQUAL(memcmp(o.buf + o.head, data, 100), 0);
    /* Consumed bytes make room again: the queue moves down rather than growing. */
    o.head = 90;
    CU_ASSERT_EQUAL(cb_conn_out_append(&o, data, 90), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_conn_out_pending(&o), 100);
    CU_ASSERT_EQUAL(memcmp(o.buf + o.head, data + 90, 10), 0);
    CU_ASSERT_EQUAL(memcmp(o.buf + o.head + 10, data, 90), 0);
    cb_conn_out_clear(&o);
    CU_ASSERT_EQUAL(cb_conn_out_pending(&o), 0);
    cb_conn_out_free(&o);
    CU_ASSERT(o.buf == NULL && o.cap == 0);
    cb_conn_out_free(&o);                                        /* twice: still fine */
    CU_ASSERT_EQUAL(cb_conn_out_append(&o, data, 5), CB_ERR_OK); /* usable after free */
    cb_conn_out_free(&o);
}

static void test_conn_partial_write_then_flush(void)
{
    enum { TOTAL = 3 * 65536 + 123 };
    int sv[2];
    ct_pair(sv);
    uint8_t *data = malloc(TOTAL), *got = malloc(TOTAL);
    CU_ASSERT_FATAL(data != NULL && got != NULL);
    for (size_t i = 0; i < TOTAL; i++) {
        data[i] = ct_byte(i);
    }
    struct iovec iov[4] = {
        {data, 65536}, {data + 65536, 123}, {data + 65659, 65536}, {data + 131195, TOTAL - 131195}};
    cb_conn_out o;
    cb_conn_out_init(&o, 1u << 20, 16384);
    CU_ASSERT_EQUAL(cb_conn_out_writev(&o, sv[0], iov, 4), CB_ERR_OK);
    size_t queued = cb_conn_out_pending(&o);
    CU_ASSERT(queued > 0 && queued < TOTAL); /* some went, the rest was copied */
    /* A second write while bytes are queued goes behind them, not around them. */
    uint8_t tail[3] = {0xAA, 0xBB, 0xCC};
    struct iovec t = {tail, sizeof tail};
    CU_ASSERT_EQUAL(cb_conn_out_writev(&o, sv[0], &t, 1), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_conn_out_pending(&o), queued + 3);
    uint8_t *all = malloc(TOTAL + 3);
    CU_ASSERT_FATAL(all != NULL);
    size_t got_len = 0;
    int rounds = 0;
    for (; rounds < 10000 && (cb_conn_out_pending(&o) > 0 || got_len < TOTAL + 3); rounds++) {
        (void)ct_drain(sv[1], all, &got_len, TOTAL + 3);
        CU_ASSERT_EQUAL_FATAL(cb_conn_out_flush(&o, sv[0]), CB_ERR_OK);
    }
    CU_ASSERT(rounds > 1); /* the flush, too, was cut short at least once */
    CU_ASSERT_EQUAL(got_len, TOTAL + 3);
    CU_ASSERT_EQUAL(memcmp(all, data, TOTAL), 0);
    CU_ASSERT_EQUAL(memcmp(all + TOTAL, tail, 3), 0);
    CU_ASSERT_EQUAL(o.head, 0); /* rewound once empty */
    CU_ASSERT_EQUAL(o.len, 0);
    cb_conn_out_free(&o);
    free(all);
    free(data);
    free(got);
    (void)close(sv[0]);
    (void)close(sv[1]);
}

static void test_conn_send_actions_runs(void)
{
    enum { N = 3 * CB_CONN_IOV_MAX + 5, EACH = 10 };
    int sv[2];
    ct_pair(sv);
    static uint8_t payload[N][EACH];
    cb_action acts[N + 2];
    memset(acts, 0, sizeof acts);
    for (size_t i = 0; i < N; i++) {
        for (size_t k = 0; k < EACH; k++) {
            payload[i][k] = ct_byte(i * EACH + k);
        }
        acts[i].kind = CB_ACTION_SEND;
        acts[i].peer = 7;
        acts[i].data = payload[i];
        acts[i].data_len = EACH;
    }
    acts[N].kind = CB_ACTION_SEND;
    acts[N].peer = 8;
    acts[N + 1].kind = CB_ACTION_CLOSE;
    acts[N + 1].peer = 7;
    CU_ASSERT_EQUAL(cb_conn_send_run_end(acts, 0, N + 2), N);
    CU_ASSERT_EQUAL(cb_conn_send_run_end(acts, N - 1, N + 2), N);
    CU_ASSERT_EQUAL(cb_conn_send_run_end(acts, N, N + 2), N + 1);
    CU_ASSERT_EQUAL(cb_conn_send_run_end(acts, 3, 5), 5);
    cb_conn_out o;
    cb_conn_out_init(&o, 1u << 20, 16384);
    CU_ASSERT_EQUAL(cb_conn_out_send_actions(&o, sv[0], acts, N), CB_ERR_OK);
    uint8_t got[N * EACH];
    size_t got_len = 0;
    for (int r = 0; r < 1000 && got_len < sizeof got; r++) {
        (void)ct_drain(sv[1], got, &got_len, sizeof got);
        CU_ASSERT_EQUAL_FATAL(cb_conn_out_flush(&o, sv[0]), CB_ERR_OK);
    }
    CU_ASSERT_EQUAL(got_len, sizeof got);
    for (size_t i = 0; i < sizeof got; i++) {
        if (got[i] != ct_byte(i)) {
            CU_FAIL("payloads out of order");
            break;
        }
    }
    cb_conn_out_free(&o);
    (void)close(sv[0]);
    (void)close(sv[1]);
}

static void test_conn_peer_never_reads(void)
{
    int sv[2];
    ct_pair(sv);
    cb_conn_out o;
    cb_conn_out_init(&o, 64 * 1024, 4096);
    uint8_t chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    cb_action a = {.kind = CB_ACTION_SEND, .peer = 0, .data = chunk, .data_len = sizeof chunk};
    int rc = CB_ERR_OK;
    int sends = 0;
    for (; sends < 10000 && rc == CB_ERR_OK; sends++) {
        rc = cb_conn_out_send_actions(&o, sv[0], &a, 1);
    }
    CU_ASSERT_EQUAL(rc, CB_ERR_FULL);
    CU_ASSERT(cb_conn_out_pending(&o) <= 64 * 1024);
    CU_ASSERT(cb_conn_out_pending(&o) + sizeof chunk > 64 * 1024);
    CU_ASSERT(sends < 1000); /* bounded well before the loop's own limit */
    cb_conn_out_free(&o);
    (void)close(sv[0]);
    (void)close(sv[1]);
}

/* ---- EPOLLOUT through a real loop ---- */

typedef struct ct_loop_ctx {
    cb_loop *loop;
    cb_loop_watch w;
    cb_conn_out o;
    int reader_fd;
    uint8_t *got;
    size_t got_len, got_cap;
    int outs;      /* EPOLLOUT events seen */
    int watch_err; /* cb_conn_watch_out failures */
    int flush_err;
} ct_loop_ctx;

static void ct_on_io(cb_loop *loop, cb_loop_watch *w, uint32_t events)
{
    ct_loop_ctx *x = w->ctx;
    if ((events & EPOLLOUT) != 0) {
        x->outs++;
        x->flush_err |= cb_conn_out_flush(&x->o, w->fd) != CB_ERR_OK;
        x->watch_err |= cb_conn_watch_out(loop, w, &x->o) != 0;
    }
    if (cb_conn_out_pending(&x->o) == 0) {
        cb_loop_stop(loop);
    }
}

/* The "peer" reads a little each timer tick, so EPOLLOUT fires several times. */
static void ct_on_timer(cb_loop *loop, uint64_t now_ns, void *ctx)
{
    ct_loop_ctx *x = ctx;
    uint8_t tmp[2048];
    ssize_t n = recv(x->reader_fd, tmp, sizeof tmp, MSG_DONTWAIT);
    if (n > 0 && x->got_len + (size_t)n <= x->got_cap) {
        memcpy(x->got + x->got_len, tmp, (size_t)n);
        x->got_len += (size_t)n;
    }
    (void)cb_loop_set_timer(loop, now_ns + 1000000ull, ct_on_timer, x);
}

static void test_conn_epollout_rearm(void)
{
    enum { TOTAL = 48 * 1024 };
    int sv[2];
    ct_pair(sv);
    ct_loop_ctx x;
    memset(&x, 0, sizeof x);
    CU_ASSERT_EQUAL_FATAL(cb_loop_new(&x.loop), 0);
    x.reader_fd = sv[1];
    x.got_cap = TOTAL;
    x.got = malloc(TOTAL);
    uint8_t *data = malloc(TOTAL);
    CU_ASSERT_FATAL(x.got != NULL && data != NULL);
    for (size_t i = 0; i < TOTAL; i++) {
        data[i] = ct_byte(i);
    }
    cb_conn_out_init(&x.o, 1u << 20, 16384);
    x.w.fd = sv[0];
    x.w.fn = ct_on_io;
    x.w.ctx = &x;
    CU_ASSERT_EQUAL_FATAL(cb_loop_add(x.loop, &x.w, EPOLLIN), 0);
    CU_ASSERT_EQUAL(cb_conn_watch_out(x.loop, &x.w, &x.o), 0);
    CU_ASSERT_EQUAL(x.w.events, (uint32_t)EPOLLIN); /* nothing queued: no EPOLLOUT */
    struct iovec iov = {data, TOTAL};
    CU_ASSERT_EQUAL(cb_conn_out_writev(&x.o, sv[0], &iov, 1), CB_ERR_OK);
    CU_ASSERT_FATAL(cb_conn_out_pending(&x.o) > 0);
    CU_ASSERT_EQUAL(cb_conn_watch_out(x.loop, &x.w, &x.o), 0);
    CU_ASSERT_EQUAL(x.w.events, (uint32_t)(EPOLLIN | EPOLLOUT));
    CU_ASSERT_EQUAL(cb_loop_set_timer(x.loop, cb_loop_now_ns(x.loop) + 1000000ull, ct_on_timer, &x),
                    0);
    /* Bounded: the reader takes 2 KiB a millisecond, so 48 KiB drain in well under 5 s. */
    uint64_t deadline = cb_loop_now_ns(x.loop) + 5000000000ull;
    while (cb_conn_out_pending(&x.o) > 0 && cb_loop_now_ns(x.loop) < deadline) {
        CU_ASSERT_EQUAL_FATAL(cb_loop_run(x.loop), 0);
    }
    CU_ASSERT_EQUAL(cb_conn_out_pending(&x.o), 0);
    CU_ASSERT_EQUAL(x.w.events, (uint32_t)EPOLLIN); /* EPOLLOUT dropped once empty */
    CU_ASSERT(x.outs >= 2);
    CU_ASSERT_EQUAL(x.flush_err, 0);
    CU_ASSERT_EQUAL(x.watch_err, 0);
    (void)ct_drain(sv[1], x.got, &x.got_len, x.got_cap);
    CU_ASSERT_EQUAL(x.got_len, TOTAL);
    CU_ASSERT_EQUAL(memcmp(x.got, data, x.got_len < TOTAL ? x.got_len : TOTAL), 0);
    (void)cb_loop_remove(x.loop, &x.w);
    cb_loop_del(x.loop);
    cb_conn_out_free(&x.o);
    free(x.got);
    free(data);
    (void)close(sv[0]);
    (void)close(sv[1]);
}

static void test_conn_closed_peer_and_recv(void)
{
    int sv[2];
    ct_pair(sv);
    uint8_t buf[16];
    CU_ASSERT_EQUAL(cb_conn_recv(sv[1], buf, sizeof buf), 0); /* nothing yet */
    CU_ASSERT_EQUAL(send(sv[0], "hello", 5, 0), 5);
    CU_ASSERT_EQUAL(cb_conn_recv(sv[1], buf, sizeof buf), 5);
    CU_ASSERT_EQUAL(memcmp(buf, "hello", 5), 0);
    (void)close(sv[0]);
    CU_ASSERT_EQUAL(cb_conn_recv(sv[1], buf, sizeof buf), -1); /* end of stream */
    /* Writing to a closed peer: CLOSED, and no SIGPIPE kills the test. */
    int tv[2];
    ct_pair(tv);
    (void)close(tv[1]);
    cb_conn_out o;
    cb_conn_out_init(&o, 1024, 64);
    struct iovec iov = {(void *)"x", 1};
    CU_ASSERT_EQUAL(cb_conn_out_writev(&o, tv[0], &iov, 1), CB_ERR_CLOSED);
    CU_ASSERT_EQUAL(cb_conn_out_pending(&o), 0);
    CU_ASSERT_EQUAL(cb_conn_out_append(&o, (const uint8_t *)"abc", 3), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_conn_out_flush(&o, tv[0]), CB_ERR_CLOSED);
    cb_conn_out_free(&o);
    (void)close(tv[0]);
    (void)close(sv[1]);
}

static void test_conn_bind_and_fd_limit(void)
{
    char err[128] = "";
    uint16_t port = 0;
    int fd = cb_conn_bind("not-an-address", 0, SOCK_STREAM, 0, &port, err, sizeof err);
    CU_ASSERT_EQUAL(fd, -1);
    CU_ASSERT(strstr(err, "not a numeric") != NULL);
    fd = cb_conn_bind("127.0.0.1", 0, SOCK_STREAM, 0, &port, err, sizeof err);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(port != 0);
    uint16_t again = 0;
    err[0] = '\0';
    CU_ASSERT_EQUAL(cb_conn_bind("127.0.0.1", port, SOCK_STREAM, 0, &again, err, sizeof err), -1);
    CU_ASSERT(strstr(err, "tcp 127.0.0.1 port") != NULL);
    (void)close(fd);
    fd = cb_conn_bind("127.0.0.1", 0, SOCK_DGRAM, 1, &port, NULL, 0);
    CU_ASSERT(fd >= 0 && port != 0);
    if (fd >= 0) {
        (void)close(fd);
    }
    CU_ASSERT_EQUAL(cb_conn_fd_limit(16, 16, err, sizeof err), 0);
    err[0] = '\0';
    CU_ASSERT_EQUAL(cb_conn_fd_limit(UINT32_MAX, 32, err, sizeof err), -1);
    CU_ASSERT(strstr(err, "--conn-max") != NULL);
}

static const cb_test_case cases[] = {
    {"output queue: bound, growth, reuse", test_conn_append_bound_and_growth},
    {"partial gather write, queued rest flushed in order", test_conn_partial_write_then_flush},
    {"a run of SENDs longer than one gather", test_conn_send_actions_runs},
    {"a peer that never reads reaches the bound", test_conn_peer_never_reads},
    {"EPOLLOUT watched exactly while bytes are queued", test_conn_epollout_rearm},
    {"closed peer and recv outcomes", test_conn_closed_peer_and_recv},
    {"bind and fd limit", test_conn_bind_and_fd_limit},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_conn", cases)
