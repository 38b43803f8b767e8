/* cb_serve.c: the real cache server; see cb_serve.h for the contract, docs/real.md for the
 * design. */
#define _GNU_SOURCE /* accept4 */
#include "cb_serve.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cb_conn.h"
#include "cb_err.h"
#include "cb_loop.h"
#include "cb_rng.h"
#include "cb_shards.h"
#include "cb_udp.h"
#include "cb_udp_peers.h"

#define SERVE_READ_BYTES          (64u * 1024u) /* the one reusable read buffer */
#define SERVE_READS_PER_EVENT     16            /* fairness: then the next ready fd */
#define SERVE_ACCEPTS_PER_EVENT   64
#define SERVE_DATAGRAMS_PER_EVENT 64
#define SERVE_ACTIONS_BATCH       256
#define SERVE_FD_RESERVE          32 /* fds besides connections: listeners, loop, stdio, spare */
#define SERVE_NO_ID               UINT32_MAX
#define SERVE_FDS_PER_THREAD      8 /* each further loop: epoll, timer, eventfd, sockets, spare */
#define SERVE_SHARDS_PER_THREAD   4

typedef struct serve_conn {
    cb_loop_watch w; /* w.fd < 0: the slot is free */
    struct cb_serve *s;
    uint32_t id;
    uint32_t next_free;
    int closing;     /* close once the current event is handled */
    cb_conn_out out; /* unsent replies, within out_bytes_max */
} serve_conn;

/* What the threads of one server share (docs/real.md §5). */
typedef struct serve_group {
    uint32_t threads;
    struct cb_serve **workers; /* one per thread; workers[0] is the handle cb_serve_new gave */
    pthread_t *tids;           /* tids[i] runs workers[i] (i >= 1) */
    cb_shards *shards;         /* the one store, or NULL with one thread (the machine's own) */
    pthread_mutex_t *locks;    /* one per shard */
    uint32_t locks_inited;
    atomic_uint conns_open; /* TCP connections open over all threads, <= conn_max */
    uint64_t clock_unix_s;
} serve_group;

/* One thread's loop: its own machine, connections, buffers and sockets. */
struct cb_serve {
    cb_serve_config cfg;
    serve_group *group;
    uint32_t index; /* in group->workers */
    cb_loop *loop;
    cb_server *srv;
    cb_loop_watch listen_w, udp_w;
    int spare_fd; /* given up to accept-and-close when the fd limit is reached */
    serve_conn *conns;
    uint32_t conn_max, free_head, udp_peers_max;
    cb_udp_peers *peers; /* UDP peer -> slot; machine id conn_max + slot (docs/real.md §6) */
    uint32_t udp_cur;    /* the machine id of the datagram being handled, or SERVE_NO_ID */
    uint8_t *rbuf;
    cb_action acts[SERVE_ACTIONS_BATCH];
    uint8_t *udp_reply;
    size_t udp_reply_len, udp_reply_cap;
    int udp_reply_overflow;
    size_t out_bytes_max;
    uint16_t port, udp_port;
    cb_serve_stats stats;
};

/* ---- output ------------------------------------------------------------------------------- */

/* What a cb_conn_out call returned: anything but OK closes the connection after this event
 * (FULL: a client past out_bytes_max, counted as slow). */
static void serve_check(cb_serve *s, serve_conn *c, int rc)
{
    if (rc != CB_ERR_OK) {
        s->stats.closed_slow += rc == CB_ERR_FULL;
        c->closing = 1;
    }
}

/* Watch for EPOLLOUT exactly while replies are queued. */
static void serve_watch(cb_serve *s, serve_conn *c)
{
    if (cb_conn_watch_out(s->loop, &c->w, &c->out) != 0) {
        c->closing = 1;
    }
}

/* Write what the queue holds. */
static void serve_flush(cb_serve *s, serve_conn *c)
{
    serve_check(s, c, cb_conn_out_flush(&c->out, c->w.fd));
    if (!c->closing) {
        serve_watch(s, c);
    }
}

/* A UDP reply collects all its SENDs before it is cut into datagrams. */
static void serve_udp_collect(cb_serve *s, const uint8_t *data, size_t len)
{
    if (s->udp_reply_overflow || len > s->out_bytes_max - s->udp_reply_len) {
        s->udp_reply_overflow = 1;
        return;
    }
    if (s->udp_reply_cap - s->udp_reply_len < len) {
        size_t cap = s->udp_reply_cap > 0 ? s->udp_reply_cap : 16384;
        while (cap - s->udp_reply_len < len) {
            cap *= 2;
        }
        uint8_t *p = realloc(s->udp_reply, cap);
        if (p == NULL) {
            s->udp_reply_overflow = 1;
            return;
        }
        s->udp_reply = p;
        s->udp_reply_cap = cap;
    }
    memcpy(s->udp_reply + s->udp_reply_len, data, len);
    s->udp_reply_len += len;
}

/* Send the SENDs acts[i..j) (all to one peer) in one gather write. */
static void serve_send_run(cb_serve *s, uint32_t peer, size_t i, size_t j)
{
    if (peer >= s->conn_max) {
        /* A UDP peer's id: the machine answers only the datagram being handled. */
        for (size_t k = i; k < j && peer == s->udp_cur; k++) {
            serve_udp_collect(s, s->acts[k].data, s->acts[k].data_len);
        }
        return;
    }
    serve_conn *c = &s->conns[peer];
    if (c->w.fd < 0 || c->closing) {
        return;
    }
    serve_check(s, c, cb_conn_out_send_actions(&c->out, c->w.fd, &s->acts[i], j - i));
    if (!c->closing) {
        serve_watch(s, c);
    }
}

/* Carry out everything the machine queued; returns how many actions there were. The SEND
 * payloads are valid until the next machine call, so they are sent or copied right here. */
static size_t serve_drain(cb_serve *s)
{
    size_t total = 0, n;
    while ((n = cb_server_drain(s->srv, s->acts, SERVE_ACTIONS_BATCH)) > 0) {
        total += n;
        for (size_t i = 0; i < n;) {
            const cb_action *a = &s->acts[i];
            if (a->kind == CB_ACTION_SEND) {
                size_t j = cb_conn_send_run_end(s->acts, i, n);
                serve_send_run(s, a->peer, i, j);
                i = j;
                continue;
            }
            if (a->kind == CB_ACTION_CLOSE && a->peer < s->conn_max) {
                s->stats.closed_by_protocol++;
                s->conns[a->peer].closing = 1; /* closed after this event: the machine is
                                                  not called while its payloads are live */
            }
            i++;
        }
    }
    return total;
}

/* ---- timer -------------------------------------------------------------------------------- */

static void serve_on_timer(cb_loop *loop, uint64_t now_ns, void *ctx);

static void serve_arm_timer(cb_serve *s)
{
    if (cb_loop_set_timer(s->loop, cb_server_next_deadline_ns(s->srv), serve_on_timer, s) != 0) {
        cb_loop_stop(s->loop); /* timerfd_settime cannot fail with valid arguments */
    }
}

static void serve_on_timer(cb_loop *loop, uint64_t now_ns, void *ctx)
{
    (void)loop;
    cb_serve *s = ctx;
    (void)cb_server_on_timer(s->srv, now_ns); /* always CB_ERR_OK */
    (void)serve_drain(s);
    serve_arm_timer(s);
}

/* ---- connections -------------------------------------------------------------------------- */

static void serve_close(cb_serve *s, serve_conn *c)
{
    if (c->w.fd < 0) {
        return;
    }
    if (cb_conn_out_pending(&c->out) > 0) {
        /* best effort: an error line before the close */
        (void)cb_conn_out_flush(&c->out, c->w.fd);
    }
    (void)cb_loop_remove(s->loop, &c->w); /* close() would drop it anyway */
    (void)close(c->w.fd);
    c->w.fd = -1;
    (void)cb_server_on_close(s->srv, c->id); /* id < conn_max: cannot fail */
    cb_conn_out_free(&c->out);
    c->closing = 0;
    c->next_free = s->free_head;
    s->free_head = c->id;
    s->stats.conns_open--;
    atomic_fetch_sub(&s->group->conns_open, 1);
}

/* Feed received bytes to the machine, draining between calls, until all are taken. */
static void serve_feed(cb_serve *s, uint32_t id, const uint8_t *buf, size_t len)
{
    uint64_t now = cb_loop_now_ns(s->loop);
    while (len > 0) {
        long rc = cb_server_on_bytes(s->srv, id, buf, len, now);
        size_t actions = serve_drain(s);
        if (rc < 0) {
            break; /* the stream broke: the machine queued a CLOSE */
        }
        if (rc == 0 && actions == 0) {
            if (id < s->conn_max) {
                s->conns[id].closing = 1; /* no progress possible: out of memory */
            }
            break;
        }
        buf += rc;
        len -= (size_t)rc;
    }
    serve_arm_timer(s);
}

static void serve_read(cb_serve *s, serve_conn *c)
{
    for (int i = 0; i < SERVE_READS_PER_EVENT && !c->closing; i++) {
        long n = cb_conn_recv(c->w.fd, s->rbuf, SERVE_READ_BYTES);
        if (n > 0) {
            serve_feed(s, c->id, s->rbuf, (size_t)n);
            if ((size_t)n < SERVE_READ_BYTES) {
                return;
            }
            continue;
        }
        if (n == 0) {
            return;
        }
        c->closing = 1; /* end of stream, or a reset */
    }
}

static void serve_on_conn(cb_loop *loop, cb_loop_watch *w, uint32_t events)
{
    (void)loop;
    serve_conn *c = w->ctx;
    cb_serve *s = c->s;
    if (w->fd < 0) {
        return; /* closed earlier in this batch of events */
    }
    if ((events & EPOLLOUT) != 0) {
        serve_flush(s, c);
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && !c->closing) {
        serve_read(s, c);
    }
    if (c->closing) {
        serve_close(s, c);
    }
}

/* At the fd limit: give up the spare fd to accept and close one pending client, so the
 * listener does not stay ready forever. */
static void serve_shed(cb_serve *s)
{
    if (s->spare_fd < 0) {
        return;
    }
    (void)close(s->spare_fd);
    int fd = accept(s->listen_w.fd, NULL, NULL);
    if (fd >= 0) {
        (void)close(fd);
        s->stats.refused++;
    }
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void serve_adopt(cb_serve *s, int fd)
{
    static const char full[] = "SERVER_ERROR too many open connections\r\n";
    /* conn_max counts connections over all threads; each thread has ids for all of them. */
    if (s->free_head == SERVE_NO_ID ||
        atomic_fetch_add(&s->group->conns_open, 1) >= s->conn_max) {
        if (s->free_head != SERVE_NO_ID) {
            atomic_fetch_sub(&s->group->conns_open, 1);
        }
        (void)send(fd, full, sizeof full - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)close(fd);
        s->stats.refused++;
        return;
    }
    serve_conn *c = &s->conns[s->free_head];
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* replies are small */
    c->w.fd = fd;
    if (cb_loop_add(s->loop, &c->w, EPOLLIN) != 0) {
        c->w.fd = -1;
        (void)close(fd);
        s->stats.refused++;
        atomic_fetch_sub(&s->group->conns_open, 1);
        return;
    }
    s->free_head = c->next_free;
    s->stats.accepted++;
    s->stats.conns_open++;
}

static void serve_on_listen(cb_loop *loop, cb_loop_watch *w, uint32_t events)
{
    (void)loop;
    (void)events;
    cb_serve *s = w->ctx;
    for (int i = 0; i < SERVE_ACCEPTS_PER_EVENT; i++) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            serve_adopt(s, fd);
            continue;
        }
        if (errno == EMFILE || errno == ENFILE) {
            serve_shed(s);
        }
        if (errno != EINTR && errno != ECONNABORTED) {
            return;
        }
    }
}

/* ---- UDP ---------------------------------------------------------------------------------- */

/* Cut the collected reply into datagrams (cb_udp.h), each with the request id and its number. */
static void serve_udp_send(cb_serve *s, uint16_t req_id, const struct sockaddr *to,
                           socklen_t to_len)
{
    size_t count = cb_udp_reply_count(s->udp_reply_len, CB_UDP_DATAGRAM_BYTES);
    if (s->udp_reply_overflow || count == 0) {
        s->stats.udp_replies_dropped += s->udp_reply_len > 0;
        return;
    }
    for (size_t seq = 0; seq < count; seq++) {
        uint8_t head[CB_UDP_HEADER_BYTES];
        size_t off, len;
        int rc = cb_udp_reply_datagram(req_id, s->udp_reply_len, CB_UDP_DATAGRAM_BYTES, seq, head,
                                       &off, &len);
        assert(rc == CB_ERR_OK); /* seq < count */
        (void)rc;
        struct iovec iov[2] = {{head, sizeof head}, {s->udp_reply + off, len}};
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_name = (void *)to;
        msg.msg_namelen = to_len;
        msg.msg_iov = iov;
        msg.msg_iovlen = 2;
        if (sendmsg(s->udp_w.fd, &msg, MSG_DONTWAIT) < 0) {
            s->stats.udp_replies_dropped++;
        }
    }
}

static void serve_udp_one(cb_serve *s, size_t n, const struct sockaddr *from, socklen_t from_len)
{
    s->stats.udp_datagrams++;
    cb_udp_header h;
    const uint8_t *payload;
    size_t payload_len;
    /* One request per datagram: sequence 0 of 1, reserved 0 (protocol.txt, "UDP protocol"). */
    if (cb_udp_request_parse(s->rbuf, n, &h, &payload, &payload_len) != CB_ERR_OK) {
        s->stats.udp_dropped++;
        return;
    }
    /* Each peer (address and port) has its own machine id, hence its own seal session. */
    int added, evicted;
    uint32_t id = s->conn_max + cb_udp_peers_get(s->peers, from, from_len, &added, &evicted);
    if (evicted) {
        (void)cb_server_forget(s->srv, id); /* the least recent peer's state goes */
        s->stats.udp_peers_evicted++;
    }
    s->stats.udp_peers_added += (uint64_t)added;
    s->stats.udp_peers = cb_udp_peers_count(s->peers);
    s->udp_reply_len = 0;
    s->udp_reply_overflow = 0;
    s->udp_cur = id;
    serve_feed(s, id, payload, payload_len);
    (void)cb_server_on_close(s->srv, id); /* nothing partial carries over */
    s->udp_cur = SERVE_NO_ID;
    serve_udp_send(s, h.request_id, from, from_len);
}

static void serve_on_udp(cb_loop *loop, cb_loop_watch *w, uint32_t events)
{
    (void)loop;
    (void)events;
    cb_serve *s = w->ctx;
    for (int i = 0; i < SERVE_DATAGRAMS_PER_EVENT; i++) {
        struct sockaddr_storage from;
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom(w->fd, s->rbuf, SERVE_READ_BYTES, MSG_DONTWAIT,
                             (struct sockaddr *)&from, &from_len);
        if (n < 0) {
            return; /* EAGAIN, or an ICMP error from an earlier reply */
        }
        serve_udp_one(s, (size_t)n, (struct sockaddr *)&from, from_len);
    }
}

/* ---- setup -------------------------------------------------------------------------------- */

static int serve_alloc(cb_serve *s)
{
    s->conns = calloc(s->conn_max, sizeof s->conns[0]);
    s->rbuf = malloc(SERVE_READ_BYTES);
    if (s->conns == NULL || s->rbuf == NULL) {
        return -1;
    }
    s->free_head = SERVE_NO_ID;
    for (uint32_t i = s->conn_max; i-- > 0;) {
        serve_conn *c = &s->conns[i];
        c->w.fd = -1;
        c->w.fn = serve_on_conn;
        c->w.ctx = c;
        c->s = s;
        c->id = i;
        cb_conn_out_init(&c->out, s->out_bytes_max, 16384);
        c->next_free = s->free_head;
        s->free_head = i;
    }
    return 0;
}

static int serve_open_sockets(cb_serve *s, char *err, size_t err_cap)
{
    const char *host = s->cfg.listen_addr != NULL ? s->cfg.listen_addr : "127.0.0.1";
    /* Several threads: each binds its own sockets to the port the first one got, with
     * SO_REUSEPORT; the kernel spreads connections (and UDP peers) over them by hash. */
    const cb_serve *first = s->group->workers[0];
    int reuse = s->group->threads > 1;
    uint16_t port = s->index == 0 ? s->cfg.port : first->port;
    uint16_t udp_port = s->index == 0 ? s->cfg.udp_port : first->udp_port;
    s->listen_w.fd = cb_conn_bind(host, port, SOCK_STREAM, reuse, &s->port, err, err_cap);
    if (s->listen_w.fd < 0) {
        return -1;
    }
    s->listen_w.fn = serve_on_listen;
    s->listen_w.ctx = s;
    if (cb_loop_add(s->loop, &s->listen_w, EPOLLIN) != 0) {
        cb_conn_err(err, err_cap, "epoll: %s", strerror(errno));
        return -1;
    }
    if (!s->cfg.udp) {
        return 0;
    }
    s->udp_w.fd = cb_conn_bind(host, udp_port, SOCK_DGRAM, reuse, &s->udp_port, err, err_cap);
    if (s->udp_w.fd < 0) {
        return -1;
    }
    s->udp_w.fn = serve_on_udp;
    s->udp_w.ctx = s;
    return cb_loop_add(s->loop, &s->udp_w, EPOLLIN) == 0 ? 0 : -1;
}

static int serve_setup(cb_serve *s, char *err, size_t err_cap)
{
    serve_group *g = s->group;
    if (s->index == 0 &&
        cb_conn_fd_limit(s->conn_max + (g->threads - 1) * SERVE_FDS_PER_THREAD,
                         SERVE_FD_RESERVE, err, err_cap) != 0) {
        return -1;
    }
    int rc = cb_loop_new(&s->loop);
    if (rc != 0) {
        cb_conn_err(err, err_cap, "event loop: %s", strerror(-rc));
        return -1;
    }
    if (s->index > 0) {
        cb_loop_share_clock(s->loop, g->workers[0]->loop); /* one now_ns for the store */
    }
    /* Signals go to the first loop; the other threads inherit its blocked mask. */
    if (s->index == 0 && s->cfg.handle_signals && cb_loop_watch_signals(s->loop) != 0) {
        cb_conn_err(err, err_cap, "signals: %s", strerror(errno));
        return -1;
    }
    cb_server_config sc = s->cfg.server;
    if (s->cfg.udp) {
        /* ids conn_max.. are the UDP peers' (one each, docs/real.md §6) */
        if ((uint64_t)s->conn_max + s->udp_peers_max > (1u << 20)) {
            cb_conn_err(err, err_cap, "conn_max + udp_peers_max must be at most %u", 1u << 20);
            return -1;
        }
        if (cb_udp_peers_new(s->udp_peers_max, &s->peers) != 0) {
            cb_conn_err(err, err_cap, "UDP peer table: out of memory");
            return -1;
        }
        sc.conn_max = s->conn_max + s->udp_peers_max;
    }
    if (s->index > 0) {
        /* Each machine its own salts: a thread's sessions must not repeat another's nonces
         * under the one key (docs/protocol.md §6.2); mix64 is a bijection: distinct seeds. */
        sc.codec.seal_seed = cb_rng_mix64(sc.codec.seal_seed ^ cb_rng_mix64(s->index));
    }
    sc.clock_unix_s = g->clock_unix_s;
    sc.shared_store = g->shards; /* NULL with one thread: the machine owns its store */
    rc = cb_server_new(&sc, NULL, &s->srv);
    if (rc != CB_ERR_OK) {
        cb_conn_err(err, err_cap, "server config: %s", cb_strerror(rc));
        return -1;
    }
    if (serve_alloc(s) != 0) {
        cb_conn_err(err, err_cap, "out of memory");
        return -1;
    }
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (serve_open_sockets(s, err, err_cap) != 0) {
        return -1;
    }
    serve_arm_timer(s);
    return 0;
}

static void serve_worker_del(cb_serve *s);

/* One thread's loop, workers[index] of group g (which is filled in order). */
static int serve_worker_new(const cb_serve_config *cfg, serve_group *g, uint32_t index,
                            char *err, size_t err_cap)
{
    cb_serve *s = calloc(1, sizeof *s);
    if (s == NULL) {
        cb_conn_err(err, err_cap, "out of memory");
        return -1;
    }
    g->workers[index] = s;
    s->group = g;
    s->index = index;
    s->cfg = *cfg;
    s->conn_max = cfg->server.conn_max;
    s->udp_cur = SERVE_NO_ID;
    s->udp_peers_max = cfg->udp_peers_max != 0 ? cfg->udp_peers_max : CB_SERVE_UDP_PEERS_DEFAULT;
    s->listen_w.fd = s->udp_w.fd = s->spare_fd = -1;
    uint32_t value_max = cfg->server.store.value_bytes_max ? cfg->server.store.value_bytes_max
                                                           : CB_VALUE_BYTES_MAX_DEFAULT;
    s->out_bytes_max = cfg->out_bytes_max != 0
                           ? cfg->out_bytes_max
                           : CB_SERVE_OUT_BYTES_DEFAULT + (size_t)value_max + 64u * 1024u;
    (void)signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error, not a death */
    if (s->conn_max == 0 || s->udp_peers_max > CB_UDP_PEERS_MAX ||
        serve_setup(s, err, err_cap) != 0) {
        if (s->conn_max == 0) {
            cb_conn_err(err, err_cap, "conn_max must be at least 1");
        } else if (s->udp_peers_max > CB_UDP_PEERS_MAX) {
            cb_conn_err(err, err_cap, "udp_peers_max must be 1..%u", CB_UDP_PEERS_MAX);
        }
        return -1; /* freed with the group */
    }
    return 0;
}

static void serve_lock(void *ctx, uint32_t shard)
{
    serve_group *g = ctx;
    (void)pthread_mutex_lock(&g->locks[shard]); /* a default mutex: cannot fail here */
}

static void serve_unlock(void *ctx, uint32_t shard)
{
    serve_group *g = ctx;
    (void)pthread_mutex_unlock(&g->locks[shard]);
}

/*
 * Shards for `threads` loops (docs/real.md §5): SERVE_SHARDS_PER_THREAD per thread rounded up
 * to a power of two (so two threads rarely want one lock), halved while a shard's share of
 * the cap would be under four maximal values (each shard evicts on its own, and must still
 * hold large items).
 */
static uint32_t serve_shard_count(uint32_t threads, uint64_t memory_bytes, uint32_t value_max)
{
    uint32_t n = 1;
    while (n < threads * SERVE_SHARDS_PER_THREAD && n < CB_SHARDS_MAX) {
        n *= 2;
    }
    while (n > 1 && memory_bytes / n < 4ull * value_max) {
        n /= 2;
    }
    return n;
}

static int serve_group_store(serve_group *g, const cb_serve_config *cfg, char *err, size_t err_cap)
{
    uint32_t value_max = cfg->server.store.value_bytes_max ? cfg->server.store.value_bytes_max
                                                           : CB_VALUE_BYTES_MAX_DEFAULT;
    uint32_t n = serve_shard_count(g->threads, cfg->server.store.memory_bytes_max, value_max);
    g->locks = calloc(n, sizeof g->locks[0]);
    if (g->locks == NULL) {
        cb_conn_err(err, err_cap, "out of memory");
        return -1;
    }
    for (; g->locks_inited < n; g->locks_inited++) {
        if (pthread_mutex_init(&g->locks[g->locks_inited], NULL) != 0) {
            cb_conn_err(err, err_cap, "mutex: %s", strerror(errno));
            return -1;
        }
    }
    cb_shards_lock lock = {serve_lock, serve_unlock, g};
    int rc = cb_shards_new(&cfg->server.store, n, &lock, NULL, &g->shards);
    if (rc != CB_ERR_OK) {
        cb_conn_err(err, err_cap, "store config: %s", cb_strerror(rc));
        return -1;
    }
    return 0;
}

static void serve_group_del(serve_group *g)
{
    for (uint32_t i = 0; g->workers != NULL && i < g->threads; i++) {
        serve_worker_del(g->workers[i]);
    }
    cb_shards_del(g->shards);
    for (uint32_t i = 0; i < g->locks_inited; i++) {
        (void)pthread_mutex_destroy(&g->locks[i]); /* unlocked: no thread runs */
    }
    free(g->locks);
    free(g->workers);
    free(g->tids);
    free(g);
}

int cb_serve_new(const cb_serve_config *cfg, cb_serve **out, char *err, size_t err_cap)
{
    *out = NULL;
    uint32_t threads = cfg->threads > 0 ? cfg->threads : 1;
    if (threads > CB_SERVE_THREADS_MAX) {
        cb_conn_err(err, err_cap, "threads must be 1..%u", CB_SERVE_THREADS_MAX);
        return -1;
    }
    serve_group *g = calloc(1, sizeof *g);
    if (g == NULL || (g->workers = calloc(threads, sizeof g->workers[0])) == NULL ||
        (g->tids = calloc(threads, sizeof g->tids[0])) == NULL) {
        cb_conn_err(err, err_cap, "out of memory");
        if (g != NULL) {
            serve_group_del(g);
        }
        return -1;
    }
    g->threads = threads;
    atomic_init(&g->conns_open, 0);
    g->clock_unix_s = (uint64_t)time(NULL);
    if (threads > 1 && serve_group_store(g, cfg, err, err_cap) != 0) {
        serve_group_del(g);
        return -1;
    }
    for (uint32_t i = 0; i < threads; i++) {
        if (serve_worker_new(cfg, g, i, err, err_cap) != 0) {
            serve_group_del(g);
            return -1;
        }
    }
    *out = g->workers[0];
    return 0;
}

void cb_serve_del(cb_serve *s)
{
    if (s != NULL) {
        serve_group_del(s->group);
    }
}

static void serve_worker_del(cb_serve *s)
{
    if (s == NULL) {
        return;
    }
    for (uint32_t i = 0; s->conns != NULL && i < s->conn_max; i++) {
        serve_close(s, &s->conns[i]);
    }
    int fds[] = {s->listen_w.fd, s->udp_w.fd, s->spare_fd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        if (fds[i] >= 0) {
            (void)close(fds[i]);
        }
    }
    cb_server_del(s->srv);
    cb_udp_peers_del(s->peers);
    cb_loop_del(s->loop);
    free(s->conns);
    free(s->rbuf);
    free(s->udp_reply);
    free(s);
}

uint16_t cb_serve_port(const cb_serve *s)
{
    return s->port;
}

uint16_t cb_serve_udp_port(const cb_serve *s)
{
    return s->udp_port;
}

/* A further thread: run its loop; when it ends (stopped, or failed) stop the first one,
 * which stops the rest. */
static void *serve_thread(void *arg)
{
    cb_serve *s = arg;
    int rc = cb_loop_run(s->loop);
    cb_loop_stop(s->group->workers[0]->loop);
    return rc == 0 ? NULL : s;
}

int cb_serve_run(cb_serve *s)
{
    serve_group *g = s->group;
    uint32_t started = 1;
    int rc = 0;
    for (; started < g->threads; started++) {
        if (pthread_create(&g->tids[started], NULL, serve_thread, g->workers[started]) != 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0) {
        rc = cb_loop_run(s->loop);
    }
    for (uint32_t i = 1; i < started; i++) {
        cb_loop_stop(g->workers[i]->loop);
    }
    for (uint32_t i = 1; i < started; i++) {
        void *ret = NULL;
        if (pthread_join(g->tids[i], &ret) != 0 || ret != NULL) {
            rc = -1;
        }
    }
    /* Clean shutdown: every request read has been answered (the machine runs requests as
     * they arrive); flush what each socket takes now and close it. */
    for (uint32_t k = 0; k < g->threads; k++) {
        cb_serve *w = g->workers[k];
        for (uint32_t i = 0; i < w->conn_max; i++) {
            serve_close(w, &w->conns[i]);
        }
    }
    return rc == 0 ? 0 : -1;
}

void cb_serve_stop(cb_serve *s)
{
    cb_loop_stop(s->group->workers[0]->loop);
}

uint32_t cb_serve_threads(const cb_serve *s)
{
    return s->group->threads;
}

uint32_t cb_serve_shards(const cb_serve *s)
{
    return s->group->shards != NULL ? cb_shards_count(s->group->shards) : 1;
}

void cb_serve_get_thread_stats(const cb_serve *s, uint32_t thread, cb_serve_stats *out)
{
    const cb_serve *w = s->group->workers[thread];
    *out = w->stats;
    cb_server_get_stats(w->srv, &out->server);
}

int cb_serve_stop_signal(const cb_serve *s)
{
    return cb_loop_stop_signal(s->loop);
}

/* Sums over the threads; the store's counters are the one shared store's. */
void cb_serve_get_stats(const cb_serve *s, cb_serve_stats *out)
{
    const serve_group *g = s->group;
    cb_serve_get_thread_stats(s, 0, out);
    for (uint32_t k = 1; k < g->threads; k++) {
        cb_serve_stats t;
        cb_serve_get_thread_stats(s, k, &t);
        out->accepted += t.accepted;
        out->refused += t.refused;
        out->closed_slow += t.closed_slow;
        out->closed_by_protocol += t.closed_by_protocol;
        out->udp_datagrams += t.udp_datagrams;
        out->udp_dropped += t.udp_dropped;
        out->udp_replies_dropped += t.udp_replies_dropped;
        out->udp_peers += t.udp_peers;
        out->udp_peers_added += t.udp_peers_added;
        out->udp_peers_evicted += t.udp_peers_evicted;
        out->conns_open += t.conns_open;
        cb_server_stats *a = &out->server;
        const cb_server_stats *b = &t.server;
        a->requests += b->requests;
        a->replies += b->replies;
        a->bad_requests += b->bad_requests;
        a->protocol_errors += b->protocol_errors;
        a->dedup_replays += b->dedup_replays;
        a->frames_rejected += b->frames_rejected;
        a->scan_skipped += b->scan_skipped;
        a->bytes_received += b->bytes_received;
        a->bytes_sent += b->bytes_sent;
    }
}
