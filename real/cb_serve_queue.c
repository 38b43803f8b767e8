/* cb_serve_queue.c: the cache server as a queue consumer; see cb_serve_queue.h. */
#define _GNU_SOURCE /* SOCK_NONBLOCK, SOCK_CLOEXEC */
#include "cb_serve_queue.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cb_conn.h"
#include "cb_err.h"
#include "cb_loop.h"
#include "cb_qendpoint.h"
#include "cb_seal.h"

#define SQ_READ_BYTES        (64u * 1024u)
#define SQ_READS_PER_EVENT   16
#define SQ_ACTIONS_BATCH     256
#define SQ_RECONNECT_NS      200000000ull
#define SQ_OUT_BYTES_DEFAULT (4u * 1024u * 1024u)

enum { SQ_DOWN = 0, SQ_CONNECTING, SQ_UP };

struct cb_serveq {
    cb_serveq_config cfg;
    struct sockaddr_in addr;
    cb_loop *loop;
    cb_server *srv;
    cb_qendpoint *ep;
    cb_loop_watch w;
    int state;
    int broken; /* the connection must be closed after the current event */
    uint64_t retry_at_ns;
    uint8_t *rbuf;
    cb_conn_out out; /* bytes for the broker, within the configured bound */
    cb_action acts[SQ_ACTIONS_BATCH];
    uint32_t closes[SQ_ACTIONS_BATCH];
    cb_serveq_stats stats;
};

/* ---- bytes to the broker ------------------------------------------------------------------ */

static void sq_append(cb_serveq *q, const uint8_t *data, size_t len)
{
    if (q->state == SQ_DOWN || q->broken) {
        return; /* lost with the connection: the broker redelivers, clients retry */
    }
    if (cb_conn_out_append(&q->out, data, len) != CB_ERR_OK) {
        q->broken = 1; /* past out_bytes_max, or out of memory */
    }
}

/* Move the endpoint's queued envelopes into the output buffer. */
static void sq_pump_ep(cb_serveq *q)
{
    size_t n;
    while ((n = cb_qendpoint_drain(q->ep, q->acts, SQ_ACTIONS_BATCH)) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (q->acts[i].kind == CB_ACTION_SEND) {
                sq_append(q, q->acts[i].data, q->acts[i].data_len);
            }
        }
    }
}

static void sq_watch(cb_serveq *q)
{
    uint32_t ev = q->state == SQ_CONNECTING          ? (uint32_t)EPOLLOUT
                  : cb_conn_out_pending(&q->out) > 0 ? (uint32_t)(EPOLLIN | EPOLLOUT)
                                                     : (uint32_t)EPOLLIN;
    if (cb_loop_modify(q->loop, &q->w, ev) != 0) {
        q->broken = 1;
    }
}

static void sq_flush(cb_serveq *q)
{
    if (q->state != SQ_UP) {
        return;
    }
    if (cb_conn_out_flush(&q->out, q->w.fd) != CB_ERR_OK) {
        q->broken = 1;
        return;
    }
    sq_watch(q);
}

/* ---- the machine -------------------------------------------------------------------------- */

/* Publish the machine's replies; CLOSEs (a bad frame from a node) reset that node's input
 * once the batch's payloads have been copied. */
static size_t sq_drain(cb_serveq *q)
{
    size_t total = 0, n;
    cb_action batch[SQ_ACTIONS_BATCH];
    while ((n = cb_server_drain(q->srv, batch, SQ_ACTIONS_BATCH)) > 0) {
        size_t closes = 0;
        total += n;
        for (size_t i = 0; i < n; i++) {
            const cb_action *a = &batch[i];
            if (a->kind == CB_ACTION_CLOSE) {
                q->closes[closes++] = a->peer;
                continue;
            }
            if (a->kind != CB_ACTION_SEND) {
                continue;
            }
            int rc = cb_qendpoint_publish(q->ep, a->peer, a->data, a->data_len);
            if (rc == CB_ERR_FULL) {
                sq_pump_ep(q);
                rc = cb_qendpoint_publish(q->ep, a->peer, a->data, a->data_len);
            }
            (void)rc; /* TOO_LARGE or MALFORMED cannot come from the machine's own frames */
        }
        sq_pump_ep(q);
        for (size_t i = 0; i < closes; i++) {
            (void)cb_server_on_close(q->srv, q->closes[i]);
        }
    }
    return total;
}

static void sq_serve(cb_serveq *q, uint32_t src, const uint8_t *buf, size_t len)
{
    uint64_t now = cb_loop_now_ns(q->loop);
    if (src >= q->cfg.server.conn_max) {
        q->stats.dropped++;
        return;
    }
    while (len > 0) {
        long rc = cb_server_on_bytes(q->srv, src, buf, len, now);
        size_t actions = sq_drain(q);
        if (rc < 0 || (rc == 0 && actions == 0)) {
            (void)cb_server_on_close(q->srv, src); /* broken frames: forget them */
            return;
        }
        buf += rc;
        len -= (size_t)rc;
    }
}

/* Bytes from the broker. */
static void sq_input(cb_serveq *q, const uint8_t *in, size_t in_len)
{
    while (!q->broken) {
        cb_qendpoint_msg m;
        int rc = cb_qendpoint_next(q->ep, &in, &in_len, &m);
        if (rc == 0) {
            break;
        }
        if (rc == CB_ERR_FULL) {
            sq_pump_ep(q);
            continue;
        }
        if (rc < 0) {
            q->broken = 1; /* a stream that does not decode: re-make the connection */
            break;
        }
        if (m.kind == CB_QUEUE_DELIVER) {
            q->stats.deliveries++;
            q->stats.redeliveries += m.delivery > 1;
            sq_serve(q, m.src, m.payload, m.payload_len);
        } else {
            q->stats.nacked++;
        }
        sq_pump_ep(q);
    }
}

/* ---- the connection ----------------------------------------------------------------------- */

static void sq_on_io(cb_loop *loop, cb_loop_watch *w, uint32_t events);
static void sq_arm(cb_serveq *q);

static void sq_disconnect(cb_serveq *q)
{
    if (q->state != SQ_DOWN) {
        (void)cb_loop_remove(q->loop, &q->w);
        (void)close(q->w.fd);
        q->w.fd = -1;
        q->stats.disconnects += q->state == SQ_UP; /* a failed connect is not one */
    }
    q->state = SQ_DOWN;
    q->broken = 0;
    cb_conn_out_clear(&q->out);
    cb_qendpoint_on_reset(q->ep);
    sq_pump_ep(q); /* nothing queued survives (sq_append drops it while down) */
    q->retry_at_ns = cb_loop_now_ns(q->loop) + q->cfg.reconnect_ns;
}

static void sq_up(cb_serveq *q)
{
    q->state = SQ_UP;
    (void)cb_qendpoint_subscribe(q->ep); /* the outbox was emptied on reset: room */
    sq_pump_ep(q);
    sq_flush(q);
}

/* Start a non-blocking connect; 0, or -1 (try again later). */
static int sq_connect(cb_serveq *q)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(fd, (const struct sockaddr *)&q->addr, sizeof q->addr);
    if (rc != 0 && errno != EINPROGRESS) {
        (void)close(fd);
        return -1;
    }
    q->w.fd = fd;
    q->w.fn = sq_on_io;
    q->w.ctx = q;
    q->state = rc == 0 ? SQ_UP : SQ_CONNECTING;
    if (cb_loop_add(q->loop, &q->w, rc == 0 ? EPOLLIN : EPOLLOUT) != 0) {
        (void)close(fd);
        q->w.fd = -1;
        q->state = SQ_DOWN;
        return -1;
    }
    if (q->state == SQ_UP) {
        sq_up(q);
    }
    return 0;
}

static void sq_on_io(cb_loop *loop, cb_loop_watch *w, uint32_t events)
{
    (void)loop;
    cb_serveq *q = w->ctx;
    if (q->state == SQ_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(q->w.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            sq_disconnect(q); /* never was up: not counted as a disconnect */
            sq_arm(q);
            return;
        }
        q->stats.reconnects++;
        sq_up(q);
    } else {
        if ((events & EPOLLOUT) != 0) {
            sq_flush(q);
        }
        int readable = (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0;
        for (int i = 0; i < SQ_READS_PER_EVENT && readable && !q->broken; i++) {
            long n = cb_conn_recv(q->w.fd, q->rbuf, SQ_READ_BYTES);
            if (n == 0) {
                break;
            }
            if (n < 0) {
                q->broken = 1; /* the broker went away */
                break;
            }
            sq_input(q, q->rbuf, (size_t)n);
            if ((size_t)n < SQ_READ_BYTES) {
                break;
            }
        }
        sq_flush(q);
    }
    if (q->broken) {
        sq_disconnect(q);
    }
    sq_arm(q);
}

/* ---- timer -------------------------------------------------------------------------------- */

static void sq_on_timer(cb_loop *loop, uint64_t now_ns, void *ctx)
{
    (void)loop;
    cb_serveq *q = ctx;
    if (cb_server_next_deadline_ns(q->srv) <= now_ns) {
        (void)cb_server_on_timer(q->srv, now_ns);
        (void)sq_drain(q);
        sq_flush(q);
        if (q->broken) {
            sq_disconnect(q);
        }
    }
    if (q->state == SQ_DOWN && q->retry_at_ns <= now_ns) {
        if (sq_connect(q) != 0) {
            q->retry_at_ns = now_ns + q->cfg.reconnect_ns;
        } else if (q->state == SQ_UP) {
            q->stats.reconnects++;
        }
    }
    sq_arm(q);
}

static void sq_arm(cb_serveq *q)
{
    uint64_t next = cb_server_next_deadline_ns(q->srv);
    if (q->state == SQ_DOWN && q->retry_at_ns < next) {
        next = q->retry_at_ns;
    }
    if (cb_loop_set_timer(q->loop, next, sq_on_timer, q) != 0) {
        cb_loop_stop(q->loop);
    }
}

/* ---- setup -------------------------------------------------------------------------------- */

/* Is SIGINT or SIGTERM pending (blocked by cb_loop_watch_signals, not yet read)? */
static int sq_stop_pending(const cb_serveq *q)
{
    sigset_t set;
    return q->cfg.handle_signals && sigpending(&set) == 0 &&
           (sigismember(&set, SIGINT) == 1 || sigismember(&set, SIGTERM) == 1);
}

/* The first, blocking connect: once, or retried every reconnect_ns while refused for up to
 * connect_wait_ns. The socket, or -1 with errno set. */
static int sq_first_connect(cb_serveq *q)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            return -1;
        }
        if (connect(fd, (const struct sockaddr *)&q->addr, sizeof q->addr) == 0) {
            return fd;
        }
        int e = errno;
        (void)close(fd);
        clock_gettime(CLOCK_MONOTONIC, &t);
        uint64_t waited = (uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000ull +
                          (uint64_t)t.tv_nsec - (uint64_t)t0.tv_nsec;
        if (e != ECONNREFUSED || waited >= q->cfg.connect_wait_ns || sq_stop_pending(q)) {
            errno = e;
            return -1;
        }
        struct timespec d = {(time_t)(q->cfg.reconnect_ns / 1000000000ull),
                             (long)(q->cfg.reconnect_ns % 1000000000ull)};
        (void)nanosleep(&d, NULL);
    }
}

static int sq_setup(cb_serveq *q, char *err, size_t err_cap)
{
    const cb_serveq_config *c = &q->cfg;
    memset(&q->addr, 0, sizeof q->addr);
    q->addr.sin_family = AF_INET;
    q->addr.sin_port = htons(c->broker_port);
    if (c->broker_host == NULL || inet_pton(AF_INET, c->broker_host, &q->addr.sin_addr) != 1) {
        cb_conn_err(err, err_cap, "broker address '%s' is not a numeric IPv4 address",
                    c->broker_host != NULL ? c->broker_host : "");
        return -1;
    }
    int rc = cb_loop_new(&q->loop);
    if (rc != 0) {
        cb_conn_err(err, err_cap, "event loop: %s", strerror(-rc));
        return -1;
    }
    if (c->handle_signals && cb_loop_watch_signals(q->loop) != 0) {
        cb_conn_err(err, err_cap, "signals: %s", strerror(errno));
        return -1;
    }
    cb_server_config sc = c->server;
    sc.clock_unix_s = (uint64_t)time(NULL);
    rc = cb_server_new(&sc, NULL, &q->srv);
    if (rc != CB_ERR_OK) {
        cb_conn_err(err, err_cap, "server config: %s", cb_strerror(rc));
        return -1;
    }
    uint32_t value_max =
        sc.store.value_bytes_max != 0 ? sc.store.value_bytes_max : CB_VALUE_BYTES_MAX_DEFAULT;
    cb_qendpoint_config ec = {
        .node = c->node, .payload_bytes_max = CB_FRAME_HEADER_BYTES + CB_KEY_BYTES_MAX + value_max +
                             CB_SEAL_OVERHEAD_MAX}; /* a sealed frame's growth */
    rc = cb_qendpoint_new(&ec, NULL, &q->ep);
    if (rc != CB_ERR_OK) {
        cb_conn_err(err, err_cap, "queue endpoint: %s", cb_strerror(rc));
        return -1;
    }
    cb_conn_out_init(&q->out,
                     c->out_bytes_max != 0
                         ? c->out_bytes_max
                         : SQ_OUT_BYTES_DEFAULT + CB_QUEUE_HEADER_BYTES + ec.payload_bytes_max,
                     65536);
    q->rbuf = malloc(SQ_READ_BYTES);
    if (q->rbuf == NULL) {
        cb_conn_err(err, err_cap, "out of memory");
        return -1;
    }
    /* The first connection is made at once, so a wrong address is an error, not a wait
     * (unless connect_wait_ns says to wait for a broker that is down). */
    int fd = sq_first_connect(q);
    if (fd < 0) {
        cb_conn_err(err, err_cap, "cannot connect to the broker at %s:%u: %s", c->broker_host,
                    (unsigned)c->broker_port, strerror(errno));
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        cb_conn_err(err, err_cap, "fcntl: %s", strerror(errno));
        (void)close(fd);
        return -1;
    }
    q->w.fd = fd;
    q->w.fn = sq_on_io;
    q->w.ctx = q;
    q->state = SQ_UP;
    if (cb_loop_add(q->loop, &q->w, EPOLLIN) != 0) {
        cb_conn_err(err, err_cap, "epoll: %s", strerror(errno));
        return -1;
    }
    sq_up(q);
    sq_arm(q);
    return 0;
}

int cb_serveq_new(const cb_serveq_config *cfg, cb_serveq **out, char *err, size_t err_cap)
{
    *out = NULL;
    cb_serveq *q = calloc(1, sizeof *q);
    if (q == NULL) {
        cb_conn_err(err, err_cap, "out of memory");
        return -1;
    }
    q->cfg = *cfg;
    q->w.fd = -1;
    if (q->cfg.reconnect_ns == 0) {
        q->cfg.reconnect_ns = SQ_RECONNECT_NS;
    }
    (void)signal(SIGPIPE, SIG_IGN);
    if (sq_setup(q, err, err_cap) != 0) {
        cb_serveq_del(q);
        return -1;
    }
    *out = q;
    return 0;
}

void cb_serveq_del(cb_serveq *q)
{
    if (q == NULL) {
        return;
    }
    if (q->w.fd >= 0) {
        (void)close(q->w.fd);
    }
    cb_qendpoint_del(q->ep);
    cb_server_del(q->srv);
    cb_loop_del(q->loop);
    free(q->rbuf);
    cb_conn_out_free(&q->out);
    free(q);
}

int cb_serveq_run(cb_serveq *q)
{
    int rc = cb_loop_run(q->loop);
    sq_flush(q); /* best effort: replies already published */
    return rc == 0 ? 0 : -1;
}

void cb_serveq_stop(cb_serveq *q)
{
    cb_loop_stop(q->loop);
}

int cb_serveq_stop_signal(const cb_serveq *q)
{
    return cb_loop_stop_signal(q->loop);
}

int cb_serveq_connected(const cb_serveq *q)
{
    return q->state == SQ_UP;
}

void cb_serveq_get_stats(const cb_serveq *q, cb_serveq_stats *out)
{
    *out = q->stats;
    cb_server_get_stats(q->srv, &out->server);
}
