/* cb_brokerd.c: the real queue broker; see cb_brokerd.h, docs/real.md §10. */
#define _GNU_SOURCE /* accept4 */
#include "cb_brokerd.h"

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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cb_conn.h"
#include "cb_err.h"
#include "cb_loop.h"

#define BD_READ_BYTES        (64u * 1024u)
#define BD_READS_PER_EVENT   16
#define BD_ACCEPTS_PER_EVENT 64
#define BD_ACTIONS_BATCH     256
#define BD_FD_RESERVE        32
#define BD_NO_ID             UINT32_MAX

typedef struct bd_conn {
    cb_loop_watch w; /* w.fd < 0: free */
    struct cb_brokerd *b;
    uint32_t id, next_free;
    int closing;
    cb_conn_out out; /* unsent bytes, within out_bytes_max */
} bd_conn;

struct cb_brokerd {
    cb_brokerd_config cfg;
    cb_loop *loop;
    cb_broker *m;
    cb_loop_watch listen_w;
    bd_conn *conns;
    uint32_t conn_max, free_head;
    uint32_t *doomed; /* ids marked closing, closed by bd_reap after the current event */
    uint32_t doomed_len;
    uint8_t *rbuf;
    cb_action acts[BD_ACTIONS_BATCH];
    size_t out_bytes_max;
    uint16_t port;
    cb_brokerd_stats stats;
};

/* ---- output ------------------------------------------------------------------------------- */

/* Close c once the machine's SEND payloads are no longer needed (bd_reap). */
static void bd_mark(cb_brokerd *b, bd_conn *c)
{
    if (!c->closing && c->w.fd >= 0) {
        c->closing = 1;
        b->doomed[b->doomed_len++] = c->id; /* each id at most once: fits conn_max */
    }
}

/* What a cb_conn_out call returned: anything but OK closes the connection (FULL: an
 * endpoint past out_bytes_max, counted as slow). */
static void bd_check(cb_brokerd *b, bd_conn *c, int rc)
{
    if (rc != CB_ERR_OK) {
        b->stats.closed_slow += rc == CB_ERR_FULL;
        bd_mark(b, c);
    }
}

/* Watch for EPOLLOUT exactly while bytes are queued. */
static void bd_watch(cb_brokerd *b, bd_conn *c)
{
    if (cb_conn_watch_out(b->loop, &c->w, &c->out) != 0) {
        bd_mark(b, c);
    }
}

static void bd_flush(cb_brokerd *b, bd_conn *c)
{
    bd_check(b, c, cb_conn_out_flush(&c->out, c->w.fd));
    if (!c->closing) {
        bd_watch(b, c);
    }
}

static void bd_send_run(cb_brokerd *b, uint32_t peer, size_t i, size_t j)
{
    if (peer >= b->conn_max) {
        return;
    }
    bd_conn *c = &b->conns[peer];
    if (c->w.fd < 0 || c->closing) {
        return;
    }
    bd_check(b, c, cb_conn_out_send_actions(&c->out, c->w.fd, &b->acts[i], j - i));
    if (!c->closing) {
        bd_watch(b, c);
    }
}

/* Carry out what the machine queued (SEND payloads live until the next machine call). */
static size_t bd_drain(cb_brokerd *b)
{
    size_t total = 0, n;
    while ((n = cb_broker_drain(b->m, b->acts, BD_ACTIONS_BATCH)) > 0) {
        total += n;
        for (size_t i = 0; i < n;) {
            const cb_action *a = &b->acts[i];
            if (a->kind == CB_ACTION_SEND) {
                size_t j = cb_conn_send_run_end(b->acts, i, n);
                bd_send_run(b, a->peer, i, j);
                i = j;
                continue;
            }
            if (a->kind == CB_ACTION_CLOSE && a->peer < b->conn_max) {
                b->stats.closed_by_protocol++;
                bd_mark(b, &b->conns[a->peer]);
            }
            i++;
        }
    }
    return total;
}

/* ---- timer -------------------------------------------------------------------------------- */

static void bd_on_timer(cb_loop *loop, uint64_t now_ns, void *ctx);

static void bd_arm_timer(cb_brokerd *b)
{
    /* The loop skips re-arming an unchanged deadline. */
    if (cb_loop_set_timer(b->loop, cb_broker_next_deadline_ns(b->m), bd_on_timer, b) != 0) {
        cb_loop_stop(b->loop);
    }
}

static void bd_close(cb_brokerd *b, bd_conn *c);

/* Close the connections marked while the machine's payloads were live. */
static void bd_reap(cb_brokerd *b)
{
    while (b->doomed_len > 0) {
        bd_conn *c = &b->conns[b->doomed[--b->doomed_len]];
        bd_close(b, c); /* may mark others (requeued deliveries) */
    }
}

static void bd_on_timer(cb_loop *loop, uint64_t now_ns, void *ctx)
{
    (void)loop;
    cb_brokerd *b = ctx;
    for (int round = 0; round < 64; round++) {
        int rc = cb_broker_on_timer(b->m, now_ns);
        (void)bd_drain(b);
        if (rc != CB_ERR_FULL) {
            break;
        }
    }
    bd_reap(b);
    bd_arm_timer(b);
}

/* ---- connections -------------------------------------------------------------------------- */

static void bd_close(cb_brokerd *b, bd_conn *c)
{
    if (c->w.fd < 0) {
        return;
    }
    if (c->closing) { /* closed before bd_reap got to it (shutdown): drop it from the list */
        for (uint32_t i = 0; i < b->doomed_len; i++) {
            if (b->doomed[i] == c->id) {
                b->doomed[i] = b->doomed[--b->doomed_len];
                break;
            }
        }
    }
    c->closing = 0;
    (void)cb_loop_remove(b->loop, &c->w);
    (void)close(c->w.fd);
    c->w.fd = -1;
    cb_conn_out_free(&c->out);
    c->next_free = b->free_head;
    b->free_head = c->id;
    b->stats.conns_open--;
    /* Its unacknowledged deliveries go back to their queues: maybe due at once elsewhere. */
    (void)cb_broker_on_close(b->m, c->id, cb_loop_now_ns(b->loop));
    (void)bd_drain(b);
}

static void bd_feed(cb_brokerd *b, bd_conn *c, const uint8_t *buf, size_t len)
{
    uint64_t now = cb_loop_now_ns(b->loop);
    while (len > 0 && !c->closing) {
        long rc = cb_broker_on_bytes(b->m, c->id, buf, len, now);
        size_t actions = bd_drain(b);
        if (rc < 0) {
            bd_mark(b, c);
            break;
        }
        if (rc == 0 && actions == 0) {
            bd_mark(b, c); /* no progress possible */
            break;
        }
        buf += rc;
        len -= (size_t)rc;
    }
}

static void bd_read(cb_brokerd *b, bd_conn *c)
{
    for (int i = 0; i < BD_READS_PER_EVENT && !c->closing; i++) {
        long n = cb_conn_recv(c->w.fd, b->rbuf, BD_READ_BYTES);
        if (n > 0) {
            bd_feed(b, c, b->rbuf, (size_t)n);
            if ((size_t)n < BD_READ_BYTES) {
                return;
            }
            continue;
        }
        if (n == 0) {
            return;
        }
        bd_mark(b, c); /* end of stream, or a reset */
    }
}

static void bd_on_conn(cb_loop *loop, cb_loop_watch *w, uint32_t events)
{
    (void)loop;
    bd_conn *c = w->ctx;
    cb_brokerd *b = c->b;
    if (w->fd < 0) {
        return;
    }
    if ((events & EPOLLOUT) != 0) {
        bd_flush(b, c);
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && !c->closing) {
        bd_read(b, c);
    }
    /* A delivery to a slow endpoint may have marked another connection too. */
    bd_reap(b);
    bd_arm_timer(b);
}

static void bd_adopt(cb_brokerd *b, int fd)
{
    if (b->free_head == BD_NO_ID) {
        (void)close(fd);
        b->stats.refused++;
        return;
    }
    bd_conn *c = &b->conns[b->free_head];
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->w.fd = fd;
    if (cb_loop_add(b->loop, &c->w, EPOLLIN) != 0) {
        c->w.fd = -1;
        (void)close(fd);
        b->stats.refused++;
        return;
    }
    b->free_head = c->next_free;
    b->stats.accepted++;
    b->stats.conns_open++;
}

static void bd_on_listen(cb_loop *loop, cb_loop_watch *w, uint32_t events)
{
    (void)loop;
    (void)events;
    cb_brokerd *b = w->ctx;
    for (int i = 0; i < BD_ACCEPTS_PER_EVENT; i++) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            bd_adopt(b, fd);
            continue;
        }
        if (errno != EINTR && errno != ECONNABORTED) {
            return; /* EAGAIN; at the fd limit the backlog waits (conn_max fits the limit) */
        }
    }
}

/* ---- setup -------------------------------------------------------------------------------- */

static int bd_listen(cb_brokerd *b, char *err, size_t err_cap)
{
    const char *host = b->cfg.listen_addr != NULL ? b->cfg.listen_addr : "127.0.0.1";
    if (b->cfg.listen_fd > 0) {
        struct sockaddr_storage a;
        socklen_t alen = sizeof a;
        int type = 0, on = 0;
        socklen_t tlen = sizeof type, olen = sizeof on;
        b->listen_w.fd = b->cfg.listen_fd;
        if (getsockopt(b->listen_w.fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 ||
            type != SOCK_STREAM ||
            getsockopt(b->listen_w.fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &olen) != 0 || !on ||
            getsockname(b->listen_w.fd, (struct sockaddr *)&a, &alen) != 0 ||
            fcntl(b->listen_w.fd, F_SETFL, fcntl(b->listen_w.fd, F_GETFL) | O_NONBLOCK) != 0 ||
            fcntl(b->listen_w.fd, F_SETFD, FD_CLOEXEC) != 0) {
            cb_conn_err(err, err_cap, "listen fd %d: not a listening TCP socket",
                        b->cfg.listen_fd);
            return -1;
        }
        b->port = ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port
                                                : ((struct sockaddr_in *)&a)->sin_port);
    } else {
        b->listen_w.fd =
            cb_conn_bind(host, b->cfg.port, SOCK_STREAM, 0, &b->port, err, err_cap);
    }
    if (b->listen_w.fd < 0) {
        return -1;
    }
    b->listen_w.fn = bd_on_listen;
    b->listen_w.ctx = b;
    if (cb_loop_add(b->loop, &b->listen_w, EPOLLIN) != 0) {
        cb_conn_err(err, err_cap, "epoll: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int bd_setup(cb_brokerd *b, char *err, size_t err_cap)
{
    if (cb_conn_fd_limit(b->conn_max, BD_FD_RESERVE, err, err_cap) != 0) {
        return -1;
    }
    int rc = cb_loop_new(&b->loop);
    if (rc != 0) {
        cb_conn_err(err, err_cap, "event loop: %s", strerror(-rc));
        return -1;
    }
    if (b->cfg.handle_signals && cb_loop_watch_signals(b->loop) != 0) {
        cb_conn_err(err, err_cap, "signals: %s", strerror(errno));
        return -1;
    }
    rc = cb_broker_new(&b->cfg.broker, NULL, &b->m);
    if (rc != CB_ERR_OK) {
        cb_conn_err(err, err_cap, "broker config: %s", cb_strerror(rc));
        return -1;
    }
    b->conns = calloc(b->conn_max, sizeof b->conns[0]);
    b->doomed = calloc(b->conn_max, sizeof b->doomed[0]);
    b->rbuf = malloc(BD_READ_BYTES);
    if (b->conns == NULL || b->doomed == NULL || b->rbuf == NULL) {
        cb_conn_err(err, err_cap, "out of memory");
        return -1;
    }
    b->free_head = BD_NO_ID;
    for (uint32_t i = b->conn_max; i-- > 0;) {
        bd_conn *c = &b->conns[i];
        c->w.fd = -1;
        c->w.fn = bd_on_conn;
        c->w.ctx = c;
        c->b = b;
        c->id = i;
        cb_conn_out_init(&c->out, b->out_bytes_max, 16384);
        c->next_free = b->free_head;
        b->free_head = i;
    }
    if (bd_listen(b, err, err_cap) != 0) {
        return -1;
    }
    bd_arm_timer(b);
    return 0;
}

int cb_brokerd_new(const cb_brokerd_config *cfg, cb_brokerd **out, char *err, size_t err_cap)
{
    *out = NULL;
    cb_brokerd *b = calloc(1, sizeof *b);
    if (b == NULL) {
        if (cfg->listen_fd > 0) {
            (void)close(cfg->listen_fd); /* owned from the call on */
        }
        cb_conn_err(err, err_cap, "out of memory");
        return -1;
    }
    b->cfg = *cfg;
    b->conn_max = cfg->broker.conn_max;
    b->listen_w.fd = cfg->listen_fd > 0 ? cfg->listen_fd : -1; /* owned from now on */
    uint32_t payload = cfg->broker.payload_bytes_max != 0
                           ? cfg->broker.payload_bytes_max
                           : CB_FRAME_HEADER_BYTES + CB_KEY_BYTES_MAX + CB_VALUE_BYTES_MAX_DEFAULT;
    b->out_bytes_max = cfg->out_bytes_max != 0
                           ? cfg->out_bytes_max
                           : CB_BROKERD_OUT_BYTES_DEFAULT + (size_t)payload + CB_QUEUE_HEADER_BYTES;
    (void)signal(SIGPIPE, SIG_IGN);
    if (b->conn_max == 0) {
        cb_conn_err(err, err_cap, "conn_max must be at least 1");
        cb_brokerd_del(b);
        return -1;
    }
    if (bd_setup(b, err, err_cap) != 0) {
        cb_brokerd_del(b);
        return -1;
    }
    *out = b;
    return 0;
}

void cb_brokerd_del(cb_brokerd *b)
{
    if (b == NULL) {
        return;
    }
    for (uint32_t i = 0; b->conns != NULL && i < b->conn_max; i++) {
        bd_close(b, &b->conns[i]);
    }
    if (b->listen_w.fd >= 0) {
        (void)close(b->listen_w.fd);
    }
    cb_broker_del(b->m);
    cb_loop_del(b->loop);
    free(b->conns);
    free(b->doomed);
    free(b->rbuf);
    free(b);
}

uint16_t cb_brokerd_port(const cb_brokerd *b)
{
    return b->port;
}

int cb_brokerd_run(cb_brokerd *b)
{
    int rc = cb_loop_run(b->loop);
    for (uint32_t i = 0; i < b->conn_max; i++) {
        bd_conn *c = &b->conns[i];
        if (c->w.fd >= 0 && cb_conn_out_pending(&c->out) > 0) {
            bd_flush(b, c); /* best effort */
        }
        bd_close(b, c);
    }
    return rc == 0 ? 0 : -1;
}

void cb_brokerd_stop(cb_brokerd *b)
{
    cb_loop_stop(b->loop);
}

int cb_brokerd_stop_signal(const cb_brokerd *b)
{
    return cb_loop_stop_signal(b->loop);
}

void cb_brokerd_get_stats(const cb_brokerd *b, cb_brokerd_stats *out)
{
    *out = b->stats;
    cb_broker_get_stats(b->m, &out->broker);
}
