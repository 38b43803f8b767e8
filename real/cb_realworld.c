/* cb_realworld.c: cache clients over real sockets; see cb_realworld.h. */
#define _GNU_SOURCE /* SOCK_NONBLOCK, SOCK_CLOEXEC */
#include "cb_realworld.h"

#include <assert.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cb_err.h"
#include "cb_loop.h"
#include "cb_qendpoint.h"
#include "cb_seal.h"
#include "cb_scanbody.h"
#include "cb_serve.h"
#include "cb_udp.h"
#include "cb_sgfaults.h"

#define RW_DRAIN_BATCH 64u
#define RW_READ_BYTES  65536u
#define RW_READS_MAX   16u
/* A reassembled UDP reply at most this long (a 1 MiB value and its frame fit). */
#define RW_UDP_REPLY_MAX (2u * 1024u * 1024u)
/* Room a client needs in the delay queue to be given a new request: a request with a value
 * of the default maximum (1 MiB) and its frame fits. */
#define RW_SEND_ROOM_BYTES (RW_UDP_REPLY_MAX / 2u + 4096u)
_Static_assert(CB_REALWORLD_DELAY_BYTES_MIN >= 2u * RW_UDP_REPLY_MAX + 64u,
               "an empty delay queue holds the largest read and a request");

enum { RW_CLOSED = 0, RW_CONNECTING, RW_UP };
enum { RW_OUT = 0, RW_IN = 1 };

typedef struct rw_conn {
    cb_loop_watch watch;
    struct cb_realworld *w;
    uint32_t client, server;
    int state;
    uint8_t *out; /* unsent bytes (TCP) */
    size_t out_len, out_cap;
    uint64_t last_release_ns[2]; /* per direction: keeps a TCP stream ordered */
    int read_paused;             /* the delay queue was full: EPOLLIN off until it drains */
    uint32_t epoch; /* bumped at each close: delayed bytes of an older connection are void */
    uint16_t udp_request_id;
    cb_udp_reasm udp_reasm; /* reassembly of the current reply */
    /* Text over UDP: the UDP request ids of the requests awaiting a reply, in the client's
     * order (a ring of `outstanding_max` + 1); a reply must answer the oldest. */
    uint16_t *text_ids;
    uint32_t text_head, text_len;
    uint8_t *udp_buf;
} rw_conn;

/* A message or chunk in the delay queue; its bytes are in the ring at `off`. */
typedef struct rw_msg {
    uint64_t at_ns;
    uint64_t seq; /* ties: first queued, first released */
    uint32_t conn;
    uint32_t dir;
    uint32_t epoch; /* the connection's epoch when queued */
    uint16_t udp_id; /* UDP: the datagram's request id */
    uint32_t peer;   /* queue: the server at the envelope's other end, or RW_PEER_NONE */
    size_t off;     /* the bytes, in the ring */
    size_t len;
} rw_msg;

/* A record in the delay queue's byte ring: this header, then len bytes padded to 8. */
typedef struct rw_rec {
    uint32_t len;
    uint32_t state; /* RW_REC_* */
} rw_rec;

enum { RW_REC_LIVE = 1, RW_REC_FREED, RW_REC_WRAP };

/* An envelope to or from the broker itself (SUBSCRIBE, ACK), not a server. */
#define RW_PEER_NONE UINT32_MAX

struct cb_realworld {
    cb_realworld_config cfg;
    struct sockaddr_in *addrs;
    cb_loop *loop;
    cb_rng root, net_rng;
    cb_rng *client_rngs;
    cb_client **clients;
    cb_router **routers; /* NULL without replication; else clients[i] is routers[i]'s */
    uint32_t fanout;     /* messages one operation sends at once: R with a router, else 1 */
    cb_router_config router_cfg; /* with routers: to rebuild a recovered client's */
    /* Faults (NULL without a timeline): per node link settings, partition groups. */
    size_t fault_next;
    int net_faults; /* the timeline has link or partition entries */
    uint64_t *link_lat, *link_jit;
    uint32_t *link_loss;
    uint8_t *groups; /* node_count; meaningful while partitioned */
    int partitioned;
    uint8_t *client_down;
    uint64_t *wake_ns;
    rw_conn *conns;      /* client * server_count + server (queue: + 0 is the broker's) */
    cb_qendpoint **qeps; /* queue transport: one endpoint per client, else NULL */
    struct sockaddr_in broker_addr; /* queue transport */
    cb_queue_reader *qreaders; /* queue, impaired: per client, the broker stream's envelopes */
    uint8_t *qenv;             /* queue, impaired: one whole envelope, re-encoded */
    uint64_t *q_last; /* queue, impaired: per client and direction, per server and (at S) the
                       * client-broker link: the last release time (rw_q_release_at) */
    uint32_t qpayload_max;
    rw_msg *heap;
    size_t heap_len, heap_cap; /* heap_cap: fixed at init (rw_alloc_queue) */
    uint64_t heap_seq;
    uint8_t *ring; /* the queued bytes: allocated in order, freed in any order */
    size_t ring_cap, ring_head, ring_tail, ring_used;
    uint32_t read_paused; /* connections with read_paused set */
    uint8_t *rbuf;
    const cb_world_hooks *hooks;
    uint64_t until_ns;
    uint64_t stop_at_ns; /* UINT64_MAX until *stop is seen */
    int failed;          /* a CB_ERR to return, or 0 */
    int done;
    cb_realworld_stats stats;
    /* Warm resync (resync NULL otherwise): the resyncer is agent client_count, its client
     * clients[client_count] (owned by the resyncer), its connections the conns after the
     * clients'. */
    uint32_t agent_count; /* client_count, + 1 with the resyncer */
    cb_resync *resync;
    cb_rng resync_rng;
    uint8_t *resync_want;      /* per server: recovered, waiting for its resync */
    uint64_t *resync_since_ns; /* per server: when it was queued */
    uint64_t resync_probe_ns;  /* the next probe round */
    uint64_t resync_busy_ns;   /* the last step a resync was running (no probes then) */
    int resync_stopped;        /* after *stop: the resyncer starts and sends nothing more */
};

/* Is agent i the resyncer? */
static int rw_is_resyncer(const cb_realworld *w, uint32_t i)
{
    return w->resync != NULL && i == w->cfg.client_count;
}

/* Connections: one per (agent, server). */
static size_t rw_conn_count(const cb_realworld *w)
{
    return (size_t)w->agent_count * w->cfg.server_count;
}

static int rw_impaired(const cb_realworld *w)
{
    return w->cfg.latency_ns > 0 || w->cfg.jitter_ns > 0 || w->cfg.loss_ppm > 0 || w->net_faults;
}

/* One hop between nodes a and b: one-way latency, jitter bound and loss, from the config
 * or, after link faults, from its two ends (as cb_sgworld: half of each latency, the larger
 * jitter and loss). */
static void rw_hop(const cb_realworld *w, uint32_t a, uint32_t b, uint64_t *lat, uint64_t *jit,
                   uint32_t *loss)
{
    if (w->link_lat == NULL) {
        *lat = w->cfg.latency_ns;
        *jit = w->cfg.jitter_ns;
        *loss = w->cfg.loss_ppm;
        return;
    }
    *lat = w->link_lat[a] / 2 + w->link_lat[b] / 2 + (w->link_lat[a] % 2 + w->link_lat[b] % 2) / 2;
    *jit = w->link_jit[a] > w->link_jit[b] ? w->link_jit[a] : w->link_jit[b];
    *loss = w->link_loss[a] > w->link_loss[b] ? w->link_loss[a] : w->link_loss[b];
}

/* The link between c's client and server (not the queue transport: rw_q_release_at). */
static void rw_link(const cb_realworld *w, const rw_conn *c, uint64_t *lat, uint64_t *jit,
                    uint32_t *loss)
{
    rw_hop(w, w->cfg.server_count + c->client, c->server, lat, jit, loss);
}

/* Queue transport: when an envelope on client c->client's broker stream, to or from server
 * `peer` (or RW_PEER_NONE: the broker's own), is released. The stream stands for two hops,
 * taken in their order (out: client-broker then broker-server; in: server-broker then
 * broker-client), each with its own latency, jitter draw and loss draw (a loss costs
 * retransmit_ns: links to the broker are TCP-like), and each in order behind what went
 * before on it: the client-broker link is one, broker-server one per server (as
 * cb_sgworld's links; docs/real.md §10.3). */
static uint64_t rw_q_release_at(cb_realworld *w, const rw_conn *c, uint32_t dir, uint32_t peer,
                                uint64_t now)
{
    uint32_t S = w->cfg.server_count, broker = S + w->cfg.client_count;
    uint64_t *last = &w->q_last[((size_t)c->client * 2u + dir) * (S + 1u)];
    uint64_t t = now;
    for (int k = 0; k < 2; k++) {
        int client_hop = (dir == RW_OUT) == (k == 0);
        if (!client_hop && peer >= S) {
            continue; /* an envelope of the broker's own: one hop */
        }
        uint64_t lat, jit;
        uint32_t loss;
        rw_hop(w, client_hop ? S + c->client : broker, client_hop ? broker : peer, &lat, &jit,
               &loss);
        t += lat + cb_rng_below(&w->net_rng, jit + 1);
        if (cb_rng_chance_ppm(&w->net_rng, loss)) {
            w->stats.lost_delayed++;
            t += w->cfg.retransmit_ns;
        }
        uint64_t *l = &last[client_hop ? S : peer];
        t = t < *l ? *l : t;
        *l = t;
    }
    return t;
}

static int rw_apart(const cb_realworld *w, uint32_t a, uint32_t b)
{
    return w->groups[a] != 0 && w->groups[b] != 0 && w->groups[a] != w->groups[b];
}

/* Is a message on c (to or from `peer`) cut by the partition in force? 0: no; RW_CUT_STREAM:
 * c's own hop is cut (a stream then closes); RW_CUT_MESSAGE: queue transport, only the
 * broker-server hop is: the envelope is lost, the client's stream to the broker stays. */
enum { RW_CUT_NONE = 0, RW_CUT_STREAM, RW_CUT_MESSAGE };
static int rw_cut(const cb_realworld *w, const rw_conn *c, uint32_t peer)
{
    if (!w->partitioned) {
        return RW_CUT_NONE;
    }
    uint32_t S = w->cfg.server_count, a = S + c->client;
    if (w->qeps == NULL) {
        return rw_apart(w, a, c->server) ? RW_CUT_STREAM : RW_CUT_NONE;
    }
    uint32_t broker = S + w->cfg.client_count;
    if (rw_apart(w, a, broker)) {
        return RW_CUT_STREAM;
    }
    return peer < S && rw_apart(w, broker, peer) ? RW_CUT_MESSAGE : RW_CUT_NONE;
}

static int rw_text_udp(const cb_realworld *w)
{
    return w->cfg.udp && w->cfg.client.protocol == CB_CLIENT_PROTOCOL_TEXT;
}

static void rw_fail(cb_realworld *w, int err)
{
    if (w->failed == 0) {
        w->failed = err;
    }
    cb_loop_stop(w->loop);
}

static void rw_close(cb_realworld *w, rw_conn *c);
static void rw_on_io(cb_loop *loop, cb_loop_watch *watch, uint32_t events);
static int rw_q_subscribe(cb_realworld *w, rw_conn *c);

/* ---- the delay queue (a binary min-heap on (at_ns, seq)) ------------------------------ */

static int rw_msg_before(const rw_msg *a, const rw_msg *b)
{
    return a->at_ns < b->at_ns || (a->at_ns == b->at_ns && a->seq < b->seq);
}

/* The caller has checked that there is room (rw_queue_room). */
static void rw_heap_push(cb_realworld *w, const rw_msg *m)
{
    assert(w->heap_len < w->heap_cap);
    size_t i = w->heap_len++;
    while (i > 0 && rw_msg_before(m, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = *m;
}

static rw_msg rw_heap_pop(cb_realworld *w)
{
    rw_msg top = w->heap[0];
    rw_msg last = w->heap[--w->heap_len];
    size_t i = 0, n = w->heap_len;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const rw_msg *best = &last;
        if (l < n && rw_msg_before(&w->heap[l], best)) {
            m = l;
            best = &w->heap[l];
        }
        if (r < n && rw_msg_before(&w->heap[r], best)) {
            m = r;
        }
        if (m == i) {
            break;
        }
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (n > 0) {
        w->heap[i] = last;
    }
    return top;
}

/* ---- the delay queue's bytes (a ring: records taken in order, freed in any order) ----- */

static size_t rw_ring_need(size_t len)
{
    return sizeof(rw_rec) + ((len + 7u) & ~(size_t)7u);
}

/* Where a record of `need` bytes would start, or SIZE_MAX if it does not fit now. The free
 * space is [head, tail) when head < tail, else [head, cap) and [0, tail); a record never
 * straddles the end (a WRAP record fills the rest). */
static size_t rw_ring_fit(const cb_realworld *w, size_t need)
{
    size_t head = w->ring_head, tail = w->ring_tail;
    if (w->ring_used == 0) {
        return need <= w->ring_cap ? 0 : SIZE_MAX; /* empty: rw_ring_take starts over at 0 */
    }
    if (head <= tail) {
        return need <= tail - head ? head : SIZE_MAX;
    }
    if (need <= w->ring_cap - head) {
        return head;
    }
    return need <= tail ? 0 : SIZE_MAX;
}

/* Take a record for `len` bytes; returns its data's offset. The caller checked the fit. */
static size_t rw_ring_take(cb_realworld *w, size_t len)
{
    size_t need = rw_ring_need(len), at = rw_ring_fit(w, need);
    assert(at != SIZE_MAX);
    if (w->ring_used == 0) {
        w->ring_head = w->ring_tail = 0;
    }
    if (at < w->ring_head) { /* wrapped: mark the rest of the ring as skipped */
        rw_rec wrap = {0, RW_REC_WRAP};
        memcpy(w->ring + w->ring_head, &wrap, sizeof wrap);
        w->ring_used += w->ring_cap - w->ring_head;
    }
    rw_rec rec = {(uint32_t)len, RW_REC_LIVE};
    memcpy(w->ring + at, &rec, sizeof rec);
    w->ring_used += need;
    w->ring_head = (at + need) % w->ring_cap;
    return at + sizeof rec;
}

/* Free the record whose data is at `off`, then give back every freed record at the tail. */
static void rw_ring_free(cb_realworld *w, size_t off)
{
    rw_rec rec;
    memcpy(&rec, w->ring + off - sizeof rec, sizeof rec);
    assert(rec.state == RW_REC_LIVE);
    rec.state = RW_REC_FREED;
    memcpy(w->ring + off - sizeof rec, &rec, sizeof rec);
    while (w->ring_used > 0) {
        memcpy(&rec, w->ring + w->ring_tail, sizeof rec);
        size_t n = rec.state == RW_REC_WRAP ? w->ring_cap - w->ring_tail : rw_ring_need(rec.len);
        if (rec.state == RW_REC_LIVE) {
            break;
        }
        assert(n <= w->ring_used);
        w->ring_used -= n;
        w->ring_tail = (w->ring_tail + n) % w->ring_cap;
    }
}

/* Whether a message of `len` bytes can be queued now (an entry and its bytes). */
static int rw_queue_room(const cb_realworld *w, size_t len)
{
    return w->heap_len < w->heap_cap && len <= UINT32_MAX &&
           rw_ring_fit(w, rw_ring_need(len)) != SIZE_MAX;
}

/* The queue is full for this message: UDP loses it (the request's timer retries); TCP
 * cannot lose bytes mid-stream, so the connection closes and its requests retry on a new
 * one, as when CB_REALWORLD_OUT_BYTES_MAX is passed. Normally unreached: clients issue no
 * new request and connections stop reading while the queue lacks room. */
static int rw_queue_full(cb_realworld *w, rw_conn *c)
{
    w->stats.queue_full++;
    if (!w->cfg.udp) {
        rw_close(w, c);
    }
    return CB_ERR_OK;
}

/* Queue `data` on connection `c` in direction `dir` with the scenario's delay and loss. */
static int rw_delay(cb_realworld *w, rw_conn *c, uint32_t dir, const uint8_t *data, size_t len,
                    uint16_t udp_id, uint32_t peer)
{
    const cb_realworld_config *cfg = &w->cfg;
    uint64_t now = cb_loop_now_ns(w->loop), at = 0;
    int cut = rw_cut(w, c, peer);
    if (cut != RW_CUT_NONE) { /* no loss draw is spent on it, as in cb_sgworld */
        w->stats.cut++;
        if (!cfg->udp && cut == RW_CUT_STREAM) {
            rw_close(w, c); /* a stream cannot lose bytes: reset, the requests retry */
        }
        return CB_ERR_OK; /* a whole envelope (RW_CUT_MESSAGE) can be lost */
    }
    if (!rw_queue_room(w, len)) {
        return rw_queue_full(w, c);
    }
    if (w->qeps != NULL) {
        at = rw_q_release_at(w, c, dir, peer, now);
    } else {
        uint64_t lat, jit;
        uint32_t loss;
        rw_link(w, c, &lat, &jit, &loss);
        at = now + lat + cb_rng_below(&w->net_rng, jit + 1);
        if (cb_rng_chance_ppm(&w->net_rng, loss)) {
            if (cfg->udp) {
                w->stats.lost_dropped++;
                return CB_ERR_OK;
            }
            w->stats.lost_delayed++;
            at += cfg->retransmit_ns;
        }
        if ((!cfg->udp || rw_text_udp(w)) && at < c->last_release_ns[dir]) {
            /* A stream: never overtake what was sent before. Text over UDP too: its replies
             * are matched in order, so jitter delays datagrams without reordering them. */
            at = c->last_release_ns[dir];
        }
        c->last_release_ns[dir] = at;
    }
    rw_msg m = {at,     w->heap_seq++, (uint32_t)(c - w->conns), dir, c->epoch,
                udp_id, peer,          rw_ring_take(w, len),     len};
    memcpy(w->ring + m.off, data, len);
    w->stats.delayed++;
    rw_heap_push(w, &m);
    return CB_ERR_OK;
}

/* ---- connections ------------------------------------------------------------------------ */

static void rw_close(cb_realworld *w, rw_conn *c)
{
    if (c->read_paused) {
        c->read_paused = 0;
        w->read_paused--;
    }
    if (c->state != RW_CLOSED) {
        (void)cb_loop_remove(w->loop, &c->watch); /* watched since it was opened */
        (void)close(c->watch.fd);
    }
    c->watch.fd = -1;
    c->state = RW_CLOSED;
    c->epoch++;
    c->out_len = 0;
    memset(&c->udp_reasm, 0, sizeof c->udp_reasm);
    c->text_len = 0;
    /* A valid peer: cannot fail. Requests in flight stay armed and retry. */
    (void)cb_client_on_reset(w->clients[c->client], c->server);
    if (w->qeps != NULL) { /* the broker's stream: every server's replies came on it */
        cb_qendpoint_on_reset(w->qeps[c->client]);
        if (w->qreaders != NULL) {
            cb_queue_reader_reset(&w->qreaders[c->client]);
        }
        for (uint32_t s = 1; s < w->cfg.server_count; s++) {
            (void)cb_client_on_reset(w->clients[c->client], s);
        }
    }
}

/* A connect to c's server failed: with replication, the client's router hears that the
 * node is unreachable (it ejects it at once when eject_after > 0). */
static void rw_peer_down(cb_realworld *w, rw_conn *c)
{
    w->stats.connect_failures++;
    /* Not the resyncer's; and an unreachable broker says nothing of a server: the requests'
     * timers decide. */
    if (w->routers != NULL && w->qeps == NULL && c->client < w->cfg.client_count) {
        (void)cb_router_on_peer_down(w->routers[c->client], c->server,
                                     cb_loop_now_ns(w->loop)); /* a valid node: cannot fail */
    }
}

/* The server closed or reset connection c: a CONN_CLOSED event on the client's node. */
static void rw_peer_closed(cb_realworld *w, rw_conn *c)
{
    const cb_world_hooks *h = w->hooks;
    w->stats.peer_closed++;
    if (h != NULL && h->event != NULL) {
        /* detail: the server, or with the queue transport the broker's node id */
        uint32_t peer = w->qeps != NULL ? w->cfg.server_count + w->cfg.client_count : c->server;
        cb_event e = {.kind = CB_EVENT_CONN_CLOSED, .detail = (int32_t)peer};
        h->event(h->user, w->cfg.server_count + c->client, &e, cb_loop_now_ns(w->loop));
    }
}

/* Did the socket connect to itself? Connecting to a loopback port in the ephemeral range
 * where nothing listens (a crashed server's) can pick that very port as the source: TCP's
 * simultaneous open then connects the socket to itself (a connected UDP socket likewise
 * talks to itself), and it holds the port the restarted server must bind. */
static int rw_self_connected(int fd, const struct sockaddr_in *peer)
{
    struct sockaddr_in me;
    socklen_t len = sizeof me;
    return getsockname(fd, (struct sockaddr *)&me, &len) == 0 && me.sin_port == peer->sin_port &&
           me.sin_addr.s_addr == peer->sin_addr.s_addr;
}

static int rw_open(cb_realworld *w, rw_conn *c)
{
    int fd =
        socket(AF_INET, (w->cfg.udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (!w->cfg.udp) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* best effort */
    }
    const struct sockaddr_in *a = w->qeps != NULL ? &w->broker_addr : &w->addrs[c->server];
    int rc = connect(fd, (const struct sockaddr *)a, sizeof *a);
    if ((rc != 0 && errno != EINPROGRESS) || (rc == 0 && rw_self_connected(fd, a))) {
        (void)close(fd);
        rw_peer_down(w, c);
        return -1;
    }
    c->watch.fd = fd;
    c->watch.fn = rw_on_io;
    c->watch.ctx = c;
    c->state = rc == 0 || w->cfg.udp ? RW_UP : RW_CONNECTING;
    if (cb_loop_add(w->loop, &c->watch, c->state == RW_UP ? EPOLLIN : EPOLLIN | EPOLLOUT) != 0) {
        (void)close(fd);
        c->state = RW_CLOSED;
        return -1;
    }
    w->stats.connects++;
    if (w->qeps != NULL) {
        return rw_q_subscribe(w, c);
    }
    return 0;
}

/* Watch for input unless reads are paused, and for output while bytes wait. */
static void rw_watch(cb_realworld *w, rw_conn *c)
{
    uint32_t events = (c->read_paused ? 0u : (uint32_t)EPOLLIN) | (c->out_len > 0 ? EPOLLOUT : 0u);
    (void)cb_loop_modify(w->loop, &c->watch, events); /* a watched fd: cannot fail */
}

/* Write what the connection holds; keep the rest and watch EPOLLOUT. */
static void rw_flush(cb_realworld *w, rw_conn *c)
{
    if (c->state != RW_UP || c->out_len == 0) {
        return;
    }
    ssize_t n = send(c->watch.fd, c->out, c->out_len, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        rw_close(w, c);
        return;
    }
    size_t sent = n > 0 ? (size_t)n : 0;
    memmove(c->out, c->out + sent, c->out_len - sent);
    c->out_len -= sent;
    rw_watch(w, c);
}

/* UDP: one request, one datagram with memcached's 8-byte header (cb_udp.h). */
static void rw_send_udp(rw_conn *c, const uint8_t *data, size_t len, uint16_t id)
{
    uint8_t hdr[CB_UDP_HEADER_BYTES];
    cb_udp_header h = {id, 0, 1, 0};
    cb_udp_header_encode(&h, hdr);
    struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)(uintptr_t)data, len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    (void)sendmsg(c->watch.fd, &mh, MSG_NOSIGNAL); /* refused: lost, the timer retries */
}

/* Bytes for the wire of connection c (after any delay). */
static int rw_transmit(cb_realworld *w, rw_conn *c, const uint8_t *data, size_t len,
                       uint16_t udp_id)
{
    if (c->state == RW_CLOSED && rw_open(w, c) != 0) {
        return CB_ERR_OK; /* unreachable now: the request's timer retries */
    }
    if (w->cfg.udp) {
        rw_send_udp(c, data, len, udp_id);
        return CB_ERR_OK;
    }
    if (c->out_len + len > CB_REALWORLD_OUT_BYTES_MAX) {
        rw_close(w, c);
        return CB_ERR_OK;
    }
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap > 0 ? c->out_cap : 4096;
        while (cap < c->out_len + len) {
            cap *= 2;
        }
        uint8_t *p = realloc(c->out, cap);
        if (p == NULL) {
            return CB_ERR_NOMEM;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len; /* flushed at the end of the step: one send per connection */
    return CB_ERR_OK;
}

/* ---- the machines ----------------------------------------------------------------------- */

static int rw_deliver(cb_realworld *w, rw_conn *c, const uint8_t *data, size_t len,
                      uint16_t udp_id);
static int rw_q_publish(cb_realworld *w, uint32_t i, uint32_t server, const uint8_t *data,
                        size_t len);

/* Text over UDP: request `id` now awaits its reply on c. 0, or -1 when more requests wait
 * than the client can have (it cannot: at most outstanding_max). */
static int rw_text_push(cb_realworld *w, rw_conn *c, uint16_t id)
{
    uint32_t cap = w->cfg.client.outstanding_max + 1u;
    if (c->text_ids == NULL && (c->text_ids = calloc(cap, sizeof c->text_ids[0])) == NULL) {
        return CB_ERR_NOMEM;
    }
    if (c->text_len == cap) {
        return CB_ERR_INVALID;
    }
    c->text_ids[(c->text_head + c->text_len++) % cap] = id;
    return CB_ERR_OK;
}

static int rw_act(cb_realworld *w, uint32_t i, const cb_action *a, int from_router)
{
    const cb_world_hooks *h = w->hooks;
    uint64_t now = cb_loop_now_ns(w->loop);
    uint32_t node = w->cfg.server_count + i;
    if (h->action != NULL) {
        h->action(h->user, node, a, now);
    }
    rw_conn *c =
        a->peer < w->cfg.server_count ? &w->conns[i * w->cfg.server_count + a->peer] : NULL;
    switch (a->kind) {
    case CB_ACTION_SEND: {
        if (c == NULL) {
            return CB_ERR_INVALID;
        }
        if (w->qeps != NULL) {
            return rw_q_publish(w, i, a->peer, a->data, a->data_len);
        }
        /* UDP: the request id is given now, in the client's order (the delay queue may
         * reorder datagrams); text replies are matched against it (rw_feed_reply). */
        uint16_t id = w->cfg.udp ? ++c->udp_request_id : 0;
        if (rw_text_udp(w)) {
            int rc = rw_text_push(w, c, id);
            if (rc != CB_ERR_OK) {
                return rc;
            }
        }
        return rw_impaired(w) ? rw_delay(w, c, RW_OUT, a->data, a->data_len, id, c->server)
                              : rw_transmit(w, c, a->data, a->data_len, id);
    }
    case CB_ACTION_COMPLETE:
        if (rw_is_resyncer(w, i)) {
            return cb_resync_on_completion(w->resync, &a->completion, now);
        }
        w->wake_ns[i] = 0;
        if (w->routers != NULL && !from_router) {
            return cb_router_on_completion(w->routers[i], &a->completion, now);
        }
        h->complete(h->user, i, &a->completion);
        return CB_ERR_OK;
    case CB_ACTION_EVENT:
        if (h->event != NULL) {
            h->event(h->user, node, &a->event, now);
        }
        return CB_ERR_OK;
    case CB_ACTION_CLOSE:
        if (c != NULL && !w->cfg.udp && w->qeps == NULL) { /* queue: the stream is shared */
            rw_close(w, c);
        } else if (c != NULL) {
            c->text_len = 0; /* text over UDP: replies still due answer nothing any more */
        }
        return CB_ERR_OK;
    default:
        return CB_ERR_INVALID;
    }
}

/* Drain client i until its outbox is empty; then its router's (the client's completions
 * went to the router, which may have made the client send more: hence the client first);
 * for the resyncer, its events instead. */
static int rw_pump(cb_realworld *w, uint32_t i)
{
    cb_action batch[RW_DRAIN_BATCH];
    size_t n;
    while ((n = cb_client_drain(w->clients[i], batch, RW_DRAIN_BATCH)) > 0) {
        for (size_t k = 0; k < n; k++) {
            int rc = rw_act(w, i, &batch[k], 0);
            if (rc != CB_ERR_OK) {
                return rc;
            }
        }
    }
    while (w->routers != NULL && i < w->cfg.client_count &&
           (n = cb_router_drain(w->routers[i], batch, RW_DRAIN_BATCH)) > 0) {
        for (size_t k = 0; k < n; k++) {
            int rc = rw_act(w, i, &batch[k], 1);
            if (rc != CB_ERR_OK) {
                return rc;
            }
        }
    }
    while (rw_is_resyncer(w, i) && (n = cb_resync_drain(w->resync, batch, RW_DRAIN_BATCH)) > 0) {
        for (size_t k = 0; k < n; k++) {
            int rc = rw_act(w, i, &batch[k], 1);
            if (rc != CB_ERR_OK) {
                return rc;
            }
        }
    }
    return CB_ERR_OK;
}

/* Reply bytes for client i from server `server`. */
static int rw_feed_peer(cb_realworld *w, uint32_t i, uint32_t server, const uint8_t *data,
                        size_t len)
{
    while (len > 0) {
        long n = cb_client_on_bytes(w->clients[i], server, data, len, cb_loop_now_ns(w->loop));
        int rc = rw_pump(w, i);
        if (rc != CB_ERR_OK) {
            return rc;
        }
        if (n < 0) {
            return CB_ERR_OK; /* a protocol error: the machine closed the stream itself */
        }
        if (n == 0) {
            return CB_ERR_NOMEM; /* nothing taken with an empty outbox */
        }
        data += n;
        len -= (size_t)n;
    }
    return CB_ERR_OK;
}

/* ---- the queue transport: one endpoint per client, its stream to the broker ------------ */

/* The server at the other end of a whole envelope: a PUBLISH's dst, a DELIVER's src, a
 * NACK's refused dst; RW_PEER_NONE for the broker's own (SUBSCRIBE, ACK). */
static uint32_t rw_q_peer(const cb_realworld *w, const uint8_t *env, size_t len)
{
    cb_queue_msg m;
    if (cb_queue_decode(env, len, 0, &m) <= 0) {
        return RW_PEER_NONE;
    }
    uint32_t peer = m.kind == CB_QUEUE_DELIVER ? m.src
                    : m.kind == CB_QUEUE_PUBLISH || m.kind == CB_QUEUE_NACK ? m.dst
                                                                             : RW_PEER_NONE;
    return peer < w->cfg.server_count ? peer : RW_PEER_NONE;
}

/* Move the endpoint's envelopes to the broker connection (through the delay queue). */
static int rw_q_pump(cb_realworld *w, uint32_t i)
{
    rw_conn *c = &w->conns[(size_t)i * w->cfg.server_count];
    cb_action batch[RW_DRAIN_BATCH];
    size_t n;
    while ((n = cb_qendpoint_drain(w->qeps[i], batch, RW_DRAIN_BATCH)) > 0) {
        for (size_t k = 0; k < n; k++) {
            if (batch[k].kind != CB_ACTION_SEND) {
                continue;
            }
            int rc = rw_impaired(w) ? rw_delay(w, c, RW_OUT, batch[k].data, batch[k].data_len, 0,
                                               rw_q_peer(w, batch[k].data, batch[k].data_len))
                                    : rw_transmit(w, c, batch[k].data, batch[k].data_len, 0);
            if (rc != CB_ERR_OK) {
                return rc;
            }
        }
    }
    return CB_ERR_OK;
}

/* A new connection to the broker: SUBSCRIBE as the client's node before anything else,
 * undelayed. Encoded here rather than by cb_qendpoint_subscribe: rw_open runs while the
 * endpoint's drained SENDs are being copied, and a call into the endpoint then could reuse
 * their bytes. */
static int rw_q_subscribe(cb_realworld *w, rw_conn *c)
{
    uint8_t env[CB_QUEUE_HEADER_BYTES];
    cb_queue_msg m = {.kind = CB_QUEUE_SUBSCRIBE, .src = w->cfg.server_count + c->client};
    long n = cb_queue_encode(&m, env, sizeof env);
    return n > 0 ? rw_transmit(w, c, env, (size_t)n, 0) : CB_ERR_INVALID;
}

/* The client's frames for `server`: one PUBLISH each, to node `server`. */
static int rw_q_publish(cb_realworld *w, uint32_t i, uint32_t server, const uint8_t *data,
                        size_t len)
{
    int rc = cb_qendpoint_publish(w->qeps[i], server, data, len);
    if (rc == CB_ERR_FULL) {
        rc = rw_q_pump(w, i);
        if (rc == CB_ERR_OK) {
            rc = cb_qendpoint_publish(w->qeps[i], server, data, len);
        }
    }
    if (rc == CB_ERR_TOO_LARGE) {
        rc = CB_ERR_OK; /* the broker would refuse it: lost, the request's timer decides */
    }
    return rc == CB_ERR_OK ? rw_q_pump(w, i) : rc;
}

/* Bytes of client c->client's broker stream: DELIVERs go to the client as bytes from their
 * source node (a server); each is ACKed. */
static int rw_q_feed(cb_realworld *w, rw_conn *c, const uint8_t *data, size_t len)
{
    uint32_t i = c->client, epoch = c->epoch;
    while (c->epoch == epoch) {
        cb_qendpoint_msg m;
        int r = cb_qendpoint_next(w->qeps[i], &data, &len, &m);
        if (r == 0) {
            break;
        }
        if (r == CB_ERR_FULL) {
            r = rw_q_pump(w, i);
            if (r != CB_ERR_OK) {
                return r;
            }
            continue;
        }
        if (r == CB_ERR_NOMEM) {
            return r;
        }
        if (r < 0) {
            rw_close(w, c); /* the stream does not decode: a new connection, requests retry */
            break;
        }
        int rc = CB_ERR_OK;
        if (m.kind == CB_QUEUE_DELIVER && m.src < w->cfg.server_count) {
            rc = rw_feed_peer(w, i, m.src, m.payload, m.payload_len);
        } else if (m.kind == CB_QUEUE_NACK) {
            w->stats.nacked++;
        }
        if (rc == CB_ERR_OK) {
            rc = rw_q_pump(w, i); /* the ACK */
        }
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    return CB_ERR_OK;
}

/* Bytes for client c->client from c's peer (after any delay). */
static int rw_feed(cb_realworld *w, rw_conn *c, const uint8_t *data, size_t len)
{
    return w->qeps != NULL ? rw_q_feed(w, c, data, len)
                           : rw_feed_peer(w, c->client, c->server, data, len);
}

/* A whole reply for c (after any delay). Text over UDP: replies carry no request of their
 * own, so one must answer the oldest request awaiting a reply (its UDP request id); any
 * other (a late reply, or one that overtook a lost or delayed one) is dropped: the client
 * would take it for the oldest request's. */
static int rw_feed_reply(cb_realworld *w, rw_conn *c, const uint8_t *data, size_t len,
                         uint16_t udp_id)
{
    if (rw_text_udp(w)) {
        if (c->text_len == 0 || c->text_ids[c->text_head] != udp_id) {
            w->stats.udp_unmatched++;
            return CB_ERR_OK;
        }
        c->text_head = (c->text_head + 1) % (w->cfg.client.outstanding_max + 1u);
        c->text_len--;
    }
    return rw_feed(w, c, data, len);
}

/* Queue transport, impaired: cut the broker's stream into whole envelopes, each delayed
 * (or cut) by its own path: a DELIVER from server s crossed broker-server too. */
static int rw_q_delay_in(cb_realworld *w, rw_conn *c, const uint8_t *data, size_t len)
{
    cb_queue_reader *r = &w->qreaders[c->client];
    uint32_t epoch = c->epoch;
    while (len > 0 && c->epoch == epoch) {
        cb_queue_msg m;
        int got = cb_queue_reader_next(r, &data, &len, w->qpayload_max, NULL, &m);
        if (got == 0) {
            break;
        }
        if (got == CB_ERR_NOMEM) {
            return got;
        }
        if (got < 0) {
            rw_close(w, c); /* the stream does not decode: a new connection, requests retry */
            break;
        }
        long n = cb_queue_encode(&m, w->qenv, CB_QUEUE_HEADER_BYTES + (size_t)w->qpayload_max);
        if (n <= 0) {
            rw_close(w, c);
            break;
        }
        uint32_t peer = m.kind == CB_QUEUE_DELIVER ? m.src
                        : m.kind == CB_QUEUE_NACK  ? m.dst
                                                   : RW_PEER_NONE;
        int rc = rw_delay(w, c, RW_IN, w->qenv, (size_t)n, 0,
                          peer < w->cfg.server_count ? peer : RW_PEER_NONE);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    return CB_ERR_OK;
}

static int rw_deliver(cb_realworld *w, rw_conn *c, const uint8_t *data, size_t len,
                      uint16_t udp_id)
{
    if (!rw_impaired(w)) {
        return rw_feed_reply(w, c, data, len, udp_id);
    }
    return w->qeps != NULL ? rw_q_delay_in(w, c, data, len)
                           : rw_delay(w, c, RW_IN, data, len, udp_id, c->server);
}

/* ---- input ------------------------------------------------------------------------------ */

/* One reply datagram: strip the header, reassemble (cb_udp.h), deliver a whole reply. */
static int rw_udp_datagram(cb_realworld *w, rw_conn *c, const uint8_t *d, size_t len)
{
    cb_udp_header h;
    if (cb_udp_header_decode(d, len, &h) != CB_ERR_OK) {
        w->stats.udp_bad++;
        return CB_ERR_OK;
    }
    const uint8_t *p = d + CB_UDP_HEADER_BYTES;
    size_t plen = len - CB_UDP_HEADER_BYTES, at = 0;
    int rc = cb_udp_reasm_add(&c->udp_reasm, &h, plen, RW_UDP_REPLY_MAX, &at);
    if (rc == CB_UDP_REASM_SINGLE) {
        return rw_deliver(w, c, p, plen, h.request_id);
    }
    if (rc < 0) {
        w->stats.udp_bad++; /* out of order or lost: the request's timer retries */
        return CB_ERR_OK;
    }
    if (c->udp_buf == NULL && (c->udp_buf = malloc(RW_UDP_REPLY_MAX)) == NULL) {
        c->udp_reasm.total = 0;
        return CB_ERR_NOMEM;
    }
    memcpy(c->udp_buf + at, p, plen);
    if (rc == CB_UDP_REASM_PART) {
        return CB_ERR_OK;
    }
    return rw_deliver(w, c, c->udp_buf, c->udp_reasm.len, h.request_id);
}

/* With impairment, a read goes into the delay queue: stop reading (the kernel's buffers and
 * TCP flow control hold the rest) until the queue has room for the largest message one read
 * can make. rw_resume_reads turns reading back on. */
static int rw_read_blocked(cb_realworld *w, rw_conn *c)
{
    if (!rw_impaired(w) || rw_queue_room(w, w->cfg.udp ? RW_UDP_REPLY_MAX : RW_READ_BYTES)) {
        return 0;
    }
    if (!c->read_paused) {
        c->read_paused = 1;
        w->read_paused++;
        rw_watch(w, c);
    }
    return 1;
}

static int rw_read(cb_realworld *w, rw_conn *c)
{
    for (uint32_t k = 0; k < RW_READS_MAX && c->state == RW_UP; k++) {
        if (rw_read_blocked(w, c)) {
            return CB_ERR_OK;
        }
        ssize_t n = recv(c->watch.fd, w->rbuf, RW_READ_BYTES, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            return CB_ERR_OK;
        }
        if (n < 0 || (n == 0 && !w->cfg.udp)) {
            if (w->cfg.udp) {
                rw_peer_down(w, c); /* ICMP port unreachable: nothing listens there */
            } else {
                rw_peer_closed(w, c);
            }
            rw_close(w, c); /* the server went away: requests retry on a new connection */
            return CB_ERR_OK;
        }
        int rc = w->cfg.udp ? rw_udp_datagram(w, c, w->rbuf, (size_t)n)
                            : rw_deliver(w, c, w->rbuf, (size_t)n, 0);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    return CB_ERR_OK;
}

static void rw_step(cb_realworld *w);
static void rw_on_timer(cb_loop *loop, uint64_t now_ns, void *ctx);

static void rw_on_io(cb_loop *loop, cb_loop_watch *watch, uint32_t events)
{
    (void)loop;
    rw_conn *c = watch->ctx;
    cb_realworld *w = c->w;
    if (c->state == RW_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(watch->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0 ||
            rw_self_connected(watch->fd,
                              w->qeps != NULL ? &w->broker_addr : &w->addrs[c->server])) {
            rw_close(w, c);
            rw_peer_down(w, c);
            rw_step(w);
            return;
        }
        c->state = RW_UP;
    }
    if (c->state == RW_UP && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        int rc = rw_read(w, c);
        if (rc != CB_ERR_OK) {
            rw_fail(w, rc);
            return;
        }
    }
    rw_flush(w, c);
    rw_step(w);
}

/* ---- the step: submit, release, timers, flush, re-arm ------------------------------------ */

/* With impairment, a new request waits while the delay queue lacks room for it: the
 * client is woken when the queue's head is released (which frees room; an empty queue has
 * room). Returns 1 if it must wait. */
static int rw_submit_blocked(cb_realworld *w, uint32_t i)
{
    size_t room = (size_t)RW_SEND_ROOM_BYTES * w->fanout; /* R sub-requests at once */
    room = room < w->ring_cap / 2 ? room : w->ring_cap / 2; /* an empty queue has room */
    if (!rw_impaired(w) || rw_queue_room(w, room)) {
        return 0;
    }
    assert(w->heap_len > 0);
    w->wake_ns[i] = w->heap[0].at_ns;
    return 1;
}

/* Has client i room for one more operation? (With a router: the router's operations.) */
static int rw_has_room(const cb_realworld *w, uint32_t i)
{
    uint32_t max = w->cfg.client.outstanding_max;
    if (w->routers != NULL) {
        return cb_router_outstanding(w->routers[i]) < max && cb_router_has_room(w->routers[i]);
    }
    return cb_client_outstanding(w->clients[i]) < max;
}

static int rw_submit_client(cb_realworld *w, uint32_t i, uint64_t now)
{
    const cb_world_hooks *h = w->hooks;
    if (w->client_down != NULL && w->client_down[i]) {
        return CB_ERR_OK; /* crashed: issues nothing until it recovers */
    }
    while (w->wake_ns[i] <= now && rw_has_room(w, i) && !rw_submit_blocked(w, i)) {
        cb_client_op op;
        uint32_t server = 0;
        uint64_t wake = UINT64_MAX;
        memset(&op, 0, sizeof op);
        if (!h->next(h->user, i, now, &op, &server, &wake)) {
            w->wake_ns[i] = wake > now ? wake : now + 1;
            break;
        }
        int rc = w->routers != NULL ? cb_router_submit(w->routers[i], &op, now, NULL)
                                    : cb_client_request(w->clients[i], server, &op, now, NULL);
        if (rc == CB_ERR_OK) {
            rc = rw_pump(w, i);
        }
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    if (!rw_has_room(w, i)) {
        w->wake_ns[i] = UINT64_MAX; /* full: the next completion makes it eligible again */
    }
    return CB_ERR_OK;
}

static int rw_timers(cb_realworld *w, uint32_t i, uint64_t now)
{
    while (cb_client_next_deadline_ns(w->clients[i]) <= now) {
        int trc = cb_client_on_timer(w->clients[i], now);
        int rc = rw_pump(w, i);
        if (rc != CB_ERR_OK || trc == CB_ERR_OK) {
            return rc;
        }
    }
    return CB_ERR_OK;
}

/* Cancel client i's requests in flight (outcome ERROR). A router may answer a cancelled
 * sub-request with another (a repair, a copy), the resyncer a failed SCAN or write with
 * the next: cancel those too, a bounded number of rounds. */
static int rw_abandon(cb_realworld *w, uint32_t i, uint64_t now, uint32_t rounds)
{
    for (uint32_t round = 0; round < rounds && cb_client_outstanding(w->clients[i]) > 0;
         round++) {
        int arc;
        do {
            arc = cb_client_abandon(w->clients[i], now);
            int rc = rw_pump(w, i);
            if (rc != CB_ERR_OK) {
                return rc;
            }
        } while (arc == CB_ERR_FULL);
    }
    return CB_ERR_OK;
}

/* After *stop: wait stop_grace_ns for in-flight requests, then cancel the rest. */
static int rw_check_stop(cb_realworld *w, uint64_t now)
{
    if (w->cfg.stop == NULL || !*w->cfg.stop) {
        return CB_ERR_OK;
    }
    if (w->stop_at_ns == UINT64_MAX) {
        w->stop_at_ns = now;
    }
    if (now < w->stop_at_ns + w->cfg.stop_grace_ns) {
        return CB_ERR_OK;
    }
    for (uint32_t i = 0; i < w->cfg.client_count; i++) {
        w->stats.abandoned += w->routers != NULL ? cb_router_outstanding(w->routers[i])
                                                 : cb_client_outstanding(w->clients[i]);
        int rc = rw_abandon(w, i, now, 16);
        if (rc != CB_ERR_OK) {
            return rc;
        }
        w->wake_ns[i] = UINT64_MAX;
    }
    if (w->resync != NULL && !w->resync_stopped) {
        /* Each round may fail a SCAN (the next peer's goes out) or the writes in flight
         * (the rest of the body's go out): enough rounds for every peer and a body. */
        uint32_t rounds = 4u * w->cfg.server_count + CB_SCAN_ITEMS_MAX + 64u;
        memset(w->resync_want, 0, w->cfg.server_count);
        int rc = rw_abandon(w, w->cfg.client_count, now, rounds);
        w->resync_stopped = 1; /* whatever is left: not waited for */
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    while (w->heap_len > 0) {
        rw_ring_free(w, rw_heap_pop(w).off); /* nobody waits for these any more */
    }
    return CB_ERR_OK;
}

static int rw_release(cb_realworld *w, uint64_t now)
{
    while (w->heap_len > 0 && w->heap[0].at_ns <= now) {
        rw_msg m = rw_heap_pop(w);
        rw_conn *c = &w->conns[m.conn];
        const uint8_t *data = w->ring + m.off; /* live until freed below: the ring never moves */
        int rc = CB_ERR_OK, live = m.epoch == c->epoch, cut = rw_cut(w, c, m.peer);
        if (live && cut != RW_CUT_NONE) { /* queued before the partition: dropped on receipt */
            w->stats.cut++;
            if (!w->cfg.udp && cut == RW_CUT_STREAM) {
                rw_close(w, c);
            }
            live = 0;
        }
        /* Queue transport: an envelope for the broker is whole and self-contained (the
         * new connection's SUBSCRIBE went first), so it still goes out, unless cut. */
        if (live || (w->qeps != NULL && m.dir == RW_OUT && cut == RW_CUT_NONE)) {
            /* What was queued on a closed connection died with it: reply chunks belong to
             * a dead stream, a text reply would be taken for a new request's, and a frame
             * sealed in the old stream session would not open on the new connection. Its
             * requests retry on their timers. */
            rc = m.dir == RW_OUT ? rw_transmit(w, c, data, m.len, m.udp_id)
                                 : rw_feed_reply(w, c, data, m.len, m.udp_id);
        }
        rw_ring_free(w, m.off);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    return CB_ERR_OK;
}

/* Turn reading back on for connections paused by a full delay queue, once it has room. */
static void rw_resume_reads(cb_realworld *w)
{
    size_t conn_count = rw_conn_count(w);
    size_t need = w->cfg.udp ? RW_UDP_REPLY_MAX : RW_READ_BYTES;
    for (size_t k = 0; k < conn_count && w->read_paused > 0 && rw_queue_room(w, need); k++) {
        rw_conn *c = &w->conns[k];
        if (c->read_paused) {
            c->read_paused = 0;
            w->read_paused--;
            rw_watch(w, c); /* level-triggered: bytes already waiting are reported again */
        }
    }
}

/* ---- faults ----------------------------------------------------------------------------- */

static int rw_make_client(cb_realworld *w, uint32_t i);
static void rw_free_client(cb_realworld *w, uint32_t i);

/* Client i crashes: its requests in flight end (outcome ERROR), its connections close
 * (queued messages die with them), and it issues nothing until it recovers. */
static int rw_client_crash(cb_realworld *w, uint32_t i, uint64_t now)
{
    if (w->client_down[i]) {
        return CB_ERR_OK;
    }
    int rc = rw_abandon(w, i, now, 16);
    for (uint32_t s = 0; s < w->cfg.server_count; s++) {
        rw_close(w, &w->conns[(size_t)i * w->cfg.server_count + s]);
    }
    w->client_down[i] = 1;
    w->wake_ns[i] = UINT64_MAX;
    return rc;
}

/* Client i comes back as a new process would: a new machine (router), its generator
 * continuing, new connections (made by its first sends). */
static int rw_client_recover(cb_realworld *w, uint32_t i)
{
    if (!w->client_down[i]) {
        return CB_ERR_OK;
    }
    rw_free_client(w, i);
    int rc = rw_make_client(w, i);
    if (rc != CB_ERR_OK) {
        return rc; /* the world fails: it cannot go on without the client */
    }
    w->client_down[i] = 0;
    w->wake_ns[i] = 0;
    return CB_ERR_OK;
}

static void rw_link_change(cb_realworld *w, const cb_sgworld_fault *f, char *note, size_t cap)
{
    if (f->link_set & CB_SGWORLD_LINK_LATENCY) {
        w->link_lat[f->node] = f->latency_ns;
    }
    if (f->link_set & CB_SGWORLD_LINK_JITTER) {
        w->link_jit[f->node] = f->jitter_ns;
    }
    if (f->link_set & CB_SGWORLD_LINK_LOSS) {
        w->link_loss[f->node] = f->loss_ppm;
    }
    snprintf(note, cap, "user space, client side%s",
             f->link_set & CB_SGWORLD_LINK_BANDWIDTH ? "; bandwidth not imposed" : "");
}

/* Warm resync: server s recovered (queue = 1: restarted) or crashed (0). A recovered
 * server waits for its resync, probed at once (rw_work runs rw_resync_work right after the
 * faults); a crashed one leaves the queue
 * (a resync under way to it ends by its requests' timeouts, as in cb_sgworld). The
 * resyncer's connection to it is closed: its next one is to the new process. */
static void rw_resync_queue(cb_realworld *w, uint32_t s, int queue, uint64_t now)
{
    if (w->resync == NULL || w->resync_stopped) {
        return;
    }
    w->resync_want[s] = (uint8_t)(queue != 0);
    if (!queue) {
        return;
    }
    w->resync_since_ns[s] = now;
    w->resync_probe_ns = now;
    rw_conn *c = &w->conns[(size_t)w->cfg.client_count * w->cfg.server_count + s];
    if (c->state != RW_CLOSED) {
        rw_close(w, c);
    }
}

/* Is a recovered server waiting for its resync? */
static int rw_resync_waiting(const cb_realworld *w)
{
    for (uint32_t s = 0; w->resync != NULL && s < w->cfg.server_count; s++) {
        if (w->resync_want[s]) {
            return 1;
        }
    }
    return 0;
}

/* Warm resync: unless one runs, start the resync of the first queued server that accepted
 * the resyncer's connection (in server order, one at a time, as cb_sgworld); probe the
 * others (a connect each CB_REALWORLD_RESYNC_PROBE_NS), give up on those silent for
 * CB_REALWORLD_RESYNC_WAIT_NS (of probing: time spent behind another resync is not
 * counted). */
static int rw_resync_work(cb_realworld *w, uint64_t now)
{
    if (w->resync == NULL || w->resync_stopped) {
        return CB_ERR_OK;
    }
    if (cb_resync_active(w->resync)) {
        w->resync_busy_ns = now; /* the queued servers' wait starts over when it is done */
        return CB_ERR_OK;
    }
    uint32_t S = w->cfg.server_count, C = w->cfg.client_count;
    int probe = now >= w->resync_probe_ns;
    for (uint32_t s = 0; s < S; s++) {
        rw_conn *c = &w->conns[(size_t)C * S + s];
        if (!w->resync_want[s]) {
            continue;
        }
        int ready = c->state == RW_UP;
        if (w->cfg.udp) { /* no connect to probe with: ask the driver */
            ready = w->cfg.server_ready != NULL ? w->cfg.server_ready(w->cfg.fault_user, s) : -1;
            ready = ready != 0;
        }
        if (ready) {
            w->resync_want[s] = 0;
            if (cb_resync_start(w->resync, s, now) == CB_ERR_OK) {
                return rw_pump(w, C);
            }
            continue; /* not in the placement: nothing to warm */
        }
        uint64_t since = w->resync_since_ns[s] > w->resync_busy_ns ? w->resync_since_ns[s]
                                                                     : w->resync_busy_ns;
        if (now - since >= CB_REALWORLD_RESYNC_WAIT_NS) {
            w->resync_want[s] = 0;
            w->stats.resync_given_up++;
            continue;
        }
        if (probe && w->cfg.udp) {
            w->stats.resync_probes++; /* asked server_ready */
        } else if (probe && c->state == RW_CLOSED) {
            w->stats.resync_probes++;
            (void)rw_open(w, c); /* refused: closed again, probed at the next round */
        }
    }
    if (probe) {
        w->resync_probe_ns = now + CB_REALWORLD_RESYNC_PROBE_NS;
    }
    return CB_ERR_OK;
}

/* Apply one timeline entry at `now` and report it to the event hook. */
static int rw_fault(cb_realworld *w, const cb_sgworld_fault *f, uint64_t now)
{
    static const uint8_t kinds[] = {0,
                                    CB_EVENT_CRASH,
                                    CB_EVENT_RECOVER,
                                    CB_EVENT_LINK_CHANGE,
                                    CB_EVENT_PARTITION,
                                    CB_EVENT_HEAL};
    uint32_t S = w->cfg.server_count;
    char what[192] = "", label[CB_SGFAULTS_LABEL_BYTES + 200];
    int rc = CB_ERR_OK;
    uint32_t node = f->node;
    switch (f->kind) {
    case CB_SGWORLD_FAULT_CRASH:
    case CB_SGWORLD_FAULT_RECOVER: {
        int up = f->kind == CB_SGWORLD_FAULT_RECOVER;
        if (node < S) {
            int frc = w->cfg.server_fault(w->cfg.fault_user, node, up, what, sizeof what);
            if (frc != 0 && what[0] == '\0') {
                snprintf(what, sizeof what, "failed");
            }
            rw_resync_queue(w, node, up && frc == 0, now);
        } else if (node == S + w->cfg.client_count) { /* the queue transport's broker */
            if (w->cfg.broker_fault(w->cfg.fault_user, up, what, sizeof what) != 0 &&
                what[0] == '\0') {
                snprintf(what, sizeof what, "failed");
            }
            /* What was in flight to and from it is lost with it (its connections are gone:
             * reply bytes still in the delay queue die with them); the clients reconnect
             * and SUBSCRIBE again with their next send, and their requests time out and
             * retry meanwhile. */
            for (uint32_t i = 0; !up && i < w->cfg.client_count; i++) {
                rw_close(w, &w->conns[(size_t)i * S]);
            }
        } else {
            rc = up ? rw_client_recover(w, node - S) : rw_client_crash(w, node - S, now);
            snprintf(what, sizeof what, up ? "a new client machine, new connections"
                                           : "requests in flight cancelled, connections closed");
        }
        break;
    }
    case CB_SGWORLD_FAULT_LINK:
        rw_link_change(w, f, what, sizeof what);
        break;
    case CB_SGWORLD_FAULT_PARTITION:
        memcpy(w->groups, f->groups, (size_t)S + w->cfg.client_count + (w->qeps != NULL));
        w->partitioned = 1;
        node = CB_SGWORLD_NODE_NONE;
        snprintf(what, sizeof what, "user space, client side: messages across groups dropped%s",
                 w->qeps != NULL ? " (a client cut from the broker: its stream reset; a server "
                                   "cut from it: the envelopes to and from it)"
                 : w->cfg.udp    ? ""
                                 : ", their connections reset");
        break;
    case CB_SGWORLD_FAULT_HEAL:
        w->partitioned = 0;
        node = CB_SGWORLD_NODE_NONE;
        break;
    default:
        return CB_ERR_INVALID;
    }
    w->stats.faults++;
    const cb_world_hooks *h = w->hooks;
    if (h->event != NULL) {
        snprintf(label, sizeof label, "%s%s%s", f->label != NULL ? f->label : "",
                 what[0] != '\0' ? " | " : "", what);
        cb_event e = {.kind = kinds[f->kind], .note = label};
        h->event(h->user, node, &e, now);
    }
    return rc;
}

/* Apply every timeline entry due at `now` (none after a stop). */
static int rw_apply_faults(cb_realworld *w, uint64_t now)
{
    while (w->stop_at_ns == UINT64_MAX && w->fault_next < w->cfg.fault_count &&
           w->cfg.faults[w->fault_next].at_ns <= now) {
        int rc = rw_fault(w, &w->cfg.faults[w->fault_next++], now);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    return CB_ERR_OK;
}

static int rw_work(cb_realworld *w, uint64_t now)
{
    int rc = rw_check_stop(w, now);
    if (rc == CB_ERR_OK) {
        rc = rw_apply_faults(w, now);
    }
    if (rc == CB_ERR_OK) {
        rc = rw_resync_work(w, now);
    }
    for (uint32_t i = 0; i < w->cfg.client_count && rc == CB_ERR_OK; i++) {
        rc = rw_submit_client(w, i, now);
    }
    for (uint32_t i = 0; i < w->cfg.client_count && rc == CB_ERR_OK; i++) {
        rc = rw_timers(w, i, now);
    }
    if (rc == CB_ERR_OK && w->resync != NULL && !w->resync_stopped) {
        rc = rw_timers(w, w->cfg.client_count, now);
    }
    if (rc == CB_ERR_OK) {
        rc = rw_release(w, now);
    }
    if (rc == CB_ERR_OK && w->read_paused > 0) {
        rw_resume_reads(w);
    }
    size_t conn_count = rw_conn_count(w);
    for (size_t k = 0; k < conn_count && rc == CB_ERR_OK; k++) {
        rw_flush(w, &w->conns[k]);
    }
    return rc;
}

/* The next time anything is due; UINT64_MAX when the workload is done. */
static uint64_t rw_next_ns(const cb_realworld *w)
{
    uint64_t next = w->heap_len > 0 ? w->heap[0].at_ns : UINT64_MAX;
    if (w->stop_at_ns == UINT64_MAX && w->fault_next < w->cfg.fault_count &&
        w->cfg.faults[w->fault_next].at_ns < next) {
        next = w->cfg.faults[w->fault_next].at_ns;
    }
    for (uint32_t i = 0; i < w->cfg.client_count; i++) {
        uint64_t d = cb_client_next_deadline_ns(w->clients[i]);
        next = d < next ? d : next;
        next = w->wake_ns[i] < next ? w->wake_ns[i] : next;
    }
    /* The resyncer does not keep the run alive (as in cb_sgworld): with nothing else due
     * the run is done, a resync under way is cut short. */
    if (next != UINT64_MAX && w->resync != NULL && !w->resync_stopped) {
        uint64_t d = cb_client_next_deadline_ns(w->clients[w->cfg.client_count]);
        next = d < next ? d : next;
        if (!cb_resync_active(w->resync) && rw_resync_waiting(w) && w->resync_probe_ns < next) {
            next = w->resync_probe_ns;
        }
    }
    return next;
}

static void rw_step(cb_realworld *w)
{
    for (uint32_t round = 0; round < 64 && !w->failed && !w->done; round++) {
        uint64_t now = cb_loop_now_ns(w->loop);
        int rc = rw_work(w, now);
        if (rc != CB_ERR_OK) {
            rw_fail(w, rc);
            return;
        }
        uint64_t next = rw_next_ns(w);
        if (next == UINT64_MAX || now > w->until_ns) {
            w->done = 1;
            cb_loop_stop(w->loop);
            return;
        }
        if (next > now) {
            uint64_t tick = now + CB_REALWORLD_TICK_NS;
            next = next < tick ? next : tick;
            if (cb_loop_set_timer(w->loop, next, rw_on_timer, w) != 0) {
                rw_fail(w, CB_ERR_INVALID);
            }
            return;
        }
    }
    /* Still due after many rounds: come back through the loop (sockets get a turn). */
    if (!w->failed && !w->done && cb_loop_set_timer(w->loop, 0, rw_on_timer, w) != 0) {
        rw_fail(w, CB_ERR_INVALID);
    }
}

static void rw_on_timer(cb_loop *loop, uint64_t now_ns, void *ctx)
{
    (void)loop;
    (void)now_ns;
    rw_step(ctx);
}

/* ---- life cycle ------------------------------------------------------------------------- */

/* Size the delay queue from the config (only when impaired): see cb_realworld.h. */
static int rw_alloc_queue(cb_realworld *w)
{
    const cb_realworld_config *c = &w->cfg;
    uint64_t requests = (uint64_t)c->client_count * c->client.outstanding_max * w->fanout;
    if (w->resync != NULL) {
        requests += cb_resync_config_default().writes_max + 1u; /* its writes and SCAN */
    }
    uint64_t entries = requests * CB_REALWORLD_DELAY_MSGS_PER_REQUEST;
    uint64_t bytes = requests * CB_REALWORLD_DELAY_BYTES_PER_REQUEST;
    if (!rw_impaired(w)) {
        return CB_ERR_OK;
    }
    entries = entries < CB_REALWORLD_DELAY_MSGS_MIN ? CB_REALWORLD_DELAY_MSGS_MIN : entries;
    entries = entries > CB_REALWORLD_DELAY_MSGS_MAX ? CB_REALWORLD_DELAY_MSGS_MAX : entries;
    bytes = bytes < CB_REALWORLD_DELAY_BYTES_MIN ? CB_REALWORLD_DELAY_BYTES_MIN : bytes;
    bytes = bytes > CB_REALWORLD_DELAY_BYTES_MAX ? CB_REALWORLD_DELAY_BYTES_MAX : bytes;
    w->heap_cap = (size_t)entries;
    w->ring_cap = (size_t)bytes & ~(size_t)7u; /* records are 8-byte multiples */
    w->heap = malloc(w->heap_cap * sizeof w->heap[0]);
    w->ring = malloc(w->ring_cap);
    return w->heap == NULL || w->ring == NULL ? CB_ERR_NOMEM : CB_ERR_OK;
}

/* A seal seed from the OS generator (docs/protocol.md §6.2): real machines sharing a key
 * must never repeat a salt, across runs too. */
static int rw_seal_seed(uint64_t *out)
{
    size_t got = 0;
    while (got < sizeof *out) {
        ssize_t n = getrandom((uint8_t *)out + got, sizeof *out - got, 0);
        if (n < 0 && errno != EINTR) {
            return CB_ERR_INVALID;
        }
        got += n > 0 ? (size_t)n : 0;
    }
    return CB_ERR_OK;
}

/* The clients (or routers owning them), drawing their generators from the root in client
 * order, as cb_memworld does, so retry jitter draws match the simulation's. */
/* Client i's machine (a router owning one, with replication), over client_rngs[i]. */
static int rw_make_client(cb_realworld *w, uint32_t i)
{
    cb_client_config cc = w->cfg.client;
    cc.peer_count = w->cfg.server_count;
    if (cc.codec.seal_key != NULL && rw_seal_seed(&cc.codec.seal_seed) != CB_ERR_OK) {
        return CB_ERR_INVALID;
    }
    if (w->routers == NULL) {
        return cb_client_new(&cc, &w->client_rngs[i], NULL, &w->clients[i]);
    }
    cb_router_config rc = w->router_cfg;
    rc.client = cc;
    rc.writer_id = i;
    int err = cb_router_new(&rc, w->cfg.placement, &w->client_rngs[i], NULL, &w->routers[i]);
    w->clients[i] = err == CB_ERR_OK ? cb_router_client(w->routers[i]) : NULL;
    return err;
}

static void rw_free_client(cb_realworld *w, uint32_t i)
{
    if (w->routers != NULL) {
        cb_router_del(w->routers[i]); /* and the client it owns */
        w->routers[i] = NULL;
    } else {
        cb_client_del(w->clients[i]);
    }
    w->clients[i] = NULL;
}

static int rw_alloc_clients(cb_realworld *w)
{
    const cb_realworld_config *c = &w->cfg;
    if (c->router != NULL) {
        w->routers = calloc(c->client_count, sizeof w->routers[0]);
        if (w->routers == NULL) {
            return CB_ERR_NOMEM;
        }
        w->router_cfg = *c->router;
        if (w->router_cfg.ops_max < c->client.outstanding_max) {
            w->router_cfg.ops_max = c->client.outstanding_max;
        }
    }
    for (uint32_t i = 0; i < c->client_count; i++) {
        cb_rng_split(&w->root, &w->client_rngs[i]);
        int err = rw_make_client(w, i);
        if (err != CB_ERR_OK) {
            return err;
        }
    }
    return CB_ERR_OK;
}

/* Check the timeline and, when it has one, the per-node link settings, partition groups
 * and client states. */
static int rw_alloc_faults(cb_realworld *w)
{
    const cb_realworld_config *c = &w->cfg;
    size_t nodes = (size_t)c->server_count + c->client_count + (c->broker != NULL);
    /* Per-node link and group slots: the clients', and the resyncer's or the broker's (replay
     * never runs both). */
    size_t slots = (size_t)c->server_count + w->agent_count + (c->broker != NULL);
    if (c->fault_count == 0) {
        return CB_ERR_OK;
    }
    for (size_t k = 0; k < c->fault_count; k++) {
        const cb_sgworld_fault *f = &c->faults[k];
        int per_node = f->kind == CB_SGWORLD_FAULT_CRASH || f->kind == CB_SGWORLD_FAULT_RECOVER ||
                       f->kind == CB_SGWORLD_FAULT_LINK;
        if (f->kind < CB_SGWORLD_FAULT_CRASH || f->kind > CB_SGWORLD_FAULT_HEAL ||
            (k > 0 && f->at_ns < c->faults[k - 1].at_ns) || (per_node && f->node >= nodes) ||
            (f->kind == CB_SGWORLD_FAULT_PARTITION && f->groups == NULL) ||
            (f->kind != CB_SGWORLD_FAULT_LINK && f->kind != CB_SGWORLD_FAULT_PARTITION &&
             f->kind != CB_SGWORLD_FAULT_HEAL && f->node < c->server_count &&
             c->server_fault == NULL) ||
            ((f->kind == CB_SGWORLD_FAULT_CRASH || f->kind == CB_SGWORLD_FAULT_RECOVER) &&
             c->broker != NULL && f->node == nodes - 1 && c->broker_fault == NULL)) {
            return CB_ERR_INVALID;
        }
        w->net_faults |= f->kind == CB_SGWORLD_FAULT_LINK || f->kind == CB_SGWORLD_FAULT_PARTITION;
    }
    w->link_lat = malloc(slots * sizeof w->link_lat[0]);
    w->link_jit = malloc(slots * sizeof w->link_jit[0]);
    w->link_loss = malloc(slots * sizeof w->link_loss[0]);
    w->groups = calloc(slots, 1); /* the resyncer's stays 0: in no group */
    w->client_down = calloc(c->client_count, 1);
    if (w->link_lat == NULL || w->link_jit == NULL || w->link_loss == NULL || w->groups == NULL ||
        w->client_down == NULL) {
        return CB_ERR_NOMEM;
    }
    for (size_t n = 0; n < slots; n++) {
        w->link_lat[n] = c->latency_ns;
        w->link_jit[n] = c->jitter_ns;
        w->link_loss[n] = c->loss_ppm;
    }
    return CB_ERR_OK;
}

/* The resyncer (resync = warm): the routers' R and placement, the clients' config with a
 * seal seed of its own, its generator split last (every other draw is as with lazy). */
static int rw_alloc_resync(cb_realworld *w)
{
    const cb_realworld_config *c = &w->cfg;
    w->resync_want = calloc(c->server_count, sizeof w->resync_want[0]);
    w->resync_since_ns = calloc(c->server_count, sizeof w->resync_since_ns[0]);
    if (w->resync_want == NULL || w->resync_since_ns == NULL) {
        return CB_ERR_NOMEM;
    }
    cb_resync_config rc = cb_resync_config_default();
    rc.replicas = w->router_cfg.replicas;
    rc.client = c->client;
    rc.client.peer_count = c->server_count;
    if (rc.client.codec.seal_key != NULL && rw_seal_seed(&rc.client.codec.seal_seed) != CB_ERR_OK) {
        return CB_ERR_INVALID;
    }
    cb_rng_split(&w->root, &w->resync_rng);
    int err = cb_resync_new(&rc, c->placement, &w->resync_rng, NULL, &w->resync);
    if (err == CB_ERR_OK) {
        w->clients[c->client_count] = cb_resync_client(w->resync);
    }
    return err;
}

static int rw_alloc(cb_realworld *w, const struct sockaddr_in *servers)
{
    const cb_realworld_config *c = &w->cfg;
    size_t conn_count = rw_conn_count(w);
    w->addrs = calloc(c->server_count, sizeof w->addrs[0]);
    w->client_rngs = calloc(c->client_count, sizeof w->client_rngs[0]);
    w->clients = calloc(w->agent_count, sizeof w->clients[0]);
    w->wake_ns = calloc(c->client_count, sizeof w->wake_ns[0]);
    w->conns = calloc(conn_count, sizeof w->conns[0]);
    w->rbuf = malloc(RW_READ_BYTES);
    if (w->addrs == NULL || w->client_rngs == NULL || w->clients == NULL || w->wake_ns == NULL ||
        w->conns == NULL || w->rbuf == NULL) {
        return CB_ERR_NOMEM;
    }
    memcpy(w->addrs, servers, c->server_count * sizeof w->addrs[0]);
    for (size_t k = 0; k < conn_count; k++) {
        w->conns[k] = (rw_conn){.w = w,
                                .client = (uint32_t)(k / c->server_count),
                                .server = (uint32_t)(k % c->server_count),
                                .state = RW_CLOSED};
        w->conns[k].watch.fd = -1;
    }
    int rc = rw_alloc_clients(w);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    cb_rng_init(&w->net_rng, cb_rng_next(&w->root));
    if (c->resync == CB_RESYNC_WARM) {
        rc = rw_alloc_resync(w);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    if (c->broker != NULL) {
        w->qeps = calloc(c->client_count, sizeof w->qeps[0]);
        if (w->qeps == NULL) {
            return CB_ERR_NOMEM;
        }
        uint32_t vmax = c->client.value_bytes_max != 0 ? c->client.value_bytes_max
                                                       : CB_VALUE_BYTES_MAX_DEFAULT;
        for (uint32_t i = 0; i < c->client_count; i++) {
            cb_qendpoint_config ec = {.node = c->server_count + i,
                                      .payload_bytes_max = CB_FRAME_HEADER_BYTES +
                                                           CB_KEY_BYTES_MAX + vmax +
                                                           CB_SEAL_OVERHEAD_MAX};
            rc = cb_qendpoint_new(&ec, NULL, &w->qeps[i]);
            if (rc != CB_ERR_OK) {
                return rc;
            }
        }
    }
    rc = rw_alloc_faults(w);
    if (rc == CB_ERR_OK && c->broker != NULL && rw_impaired(w)) {
        w->qpayload_max = CB_FRAME_HEADER_BYTES + CB_KEY_BYTES_MAX +
                          (c->client.value_bytes_max != 0 ? c->client.value_bytes_max
                                                          : CB_VALUE_BYTES_MAX_DEFAULT) +
                          CB_SEAL_OVERHEAD_MAX;
        w->qreaders = calloc(c->client_count, sizeof w->qreaders[0]);
        w->qenv = malloc(CB_QUEUE_HEADER_BYTES + (size_t)w->qpayload_max);
        w->q_last = calloc((size_t)c->client_count * 2u * (c->server_count + 1u),
                           sizeof w->q_last[0]);
        if (w->qreaders == NULL || w->qenv == NULL || w->q_last == NULL) {
            return CB_ERR_NOMEM;
        }
    }
    return rc != CB_ERR_OK ? rc : rw_alloc_queue(w);
}

int cb_realworld_new(const cb_realworld_config *cfg, cb_realworld **out)
{
    *out = NULL;
    if (cfg->server_count == 0 || cfg->client_count == 0 || cfg->servers == NULL ||
        (cfg->broker != NULL && (cfg->udp || cfg->client.protocol == CB_CLIENT_PROTOCOL_TEXT)) ||
        (cfg->router != NULL &&
         (cfg->placement == NULL || cfg->client.protocol == CB_CLIENT_PROTOCOL_TEXT)) ||
        cfg->resync > CB_RESYNC_WARM ||
        (cfg->resync == CB_RESYNC_WARM && (cfg->router == NULL || cfg->broker != NULL))) {
        return CB_ERR_INVALID;
    }
    cb_realworld *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return CB_ERR_NOMEM;
    }
    w->cfg = *cfg;
    w->cfg.servers = NULL; /* copied into addrs */
    if (cfg->broker != NULL) {
        w->broker_addr = *cfg->broker;
        w->cfg.broker = &w->broker_addr;
    }
    w->stop_at_ns = UINT64_MAX;
    w->fanout = cfg->router != NULL && cfg->router->replicas > 1 ? cfg->router->replicas : 1;
    w->agent_count = cfg->client_count + (cfg->resync == CB_RESYNC_WARM);
    cb_rng_init(&w->root, cfg->seed);
    int rc = rw_alloc(w, cfg->servers);
    w->cfg.router = NULL; /* read during construction only: w->routers says it */
    if (rc != CB_ERR_OK) {
        cb_realworld_del(w);
        return rc;
    }
    *out = w;
    return CB_ERR_OK;
}

void cb_realworld_del(cb_realworld *w)
{
    if (w == NULL) {
        return;
    }
    size_t conn_count = rw_conn_count(w);
    for (size_t k = 0; w->conns != NULL && k < conn_count; k++) {
        if (w->conns[k].state != RW_CLOSED) {
            (void)close(w->conns[k].watch.fd);
        }
        free(w->conns[k].out);
        free(w->conns[k].udp_buf);
        free(w->conns[k].text_ids);
    }
    for (uint32_t i = 0; w->clients != NULL && i < w->cfg.client_count; i++) {
        rw_free_client(w, i);
    }
    cb_resync_del(w->resync); /* and its client */
    free(w->resync_want);
    free(w->resync_since_ns);
    for (uint32_t i = 0; w->qeps != NULL && i < w->cfg.client_count; i++) {
        cb_qendpoint_del(w->qeps[i]);
    }
    free(w->qeps);
    for (uint32_t i = 0; w->qreaders != NULL && i < w->cfg.client_count; i++) {
        cb_queue_reader_free(&w->qreaders[i], NULL);
    }
    free(w->qreaders);
    free(w->qenv);
    free(w->q_last);
    free(w->routers);
    free(w->link_lat);
    free(w->link_jit);
    free(w->link_loss);
    free(w->groups);
    free(w->client_down);
    free(w->ring);
    free(w->heap);
    cb_loop_del(w->loop);
    free(w->rbuf);
    free(w->conns);
    free(w->wake_ns);
    free(w->clients);
    free(w->client_rngs);
    free(w->addrs);
    free(w);
}

int cb_realworld_run(cb_realworld *w, const cb_world_hooks *hooks, uint64_t until_ns)
{
    if (w->loop == NULL && cb_loop_new(&w->loop) != 0) {
        return CB_ERR_NOMEM;
    }
    w->hooks = hooks;
    w->until_ns = until_ns;
    w->done = 0;
    rw_step(w); /* the first requests; the loop takes it from there */
    if (!w->done && !w->failed && cb_loop_run(w->loop) != 0) {
        return CB_ERR_INVALID;
    }
    size_t conn_count = rw_conn_count(w);
    for (size_t k = 0; k < conn_count; k++) {
        if (w->conns[k].state != RW_CLOSED) {
            rw_close(w, &w->conns[k]);
        }
    }
    return w->failed;
}

uint64_t cb_realworld_now_ns(const cb_realworld *w)
{
    return w->loop != NULL ? cb_loop_now_ns(w->loop) : 0;
}

void cb_realworld_get_stats(const cb_realworld *w, cb_realworld_stats *out)
{
    *out = w->stats;
    if (w->resync != NULL) {
        cb_resync_get_stats(w->resync, &out->resync);
    }
}

void cb_realworld_set_stop(cb_realworld *w, volatile sig_atomic_t *stop)
{
    w->cfg.stop = stop;
}
