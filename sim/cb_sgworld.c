/*
 * cb_sgworld.c: servers and clients inside SimGrid; see cb_sgworld.h and docs/simulator.md.
 *
 * One actor per node (server, client, the queue transport's broker, the warm resyncer), on
 * the node's host, which owns a port (cb_sgshim_port): the node's receive and the sends it
 * has posted, waited on together with a timeout at the node's next deadline (machine timer,
 * held message, the client's wake time, end of run, the next timeline entry of any kind). A
 * message wakes it to feed the machine; a timeout runs the machine's timers and the closed
 * loop. Sends are kept, not detached: SimGrid 3.32 walks one global list of every detached
 * comm in flight to remove each finished one, which cost more than the rest of a message
 * (docs/simulator.md, "Actors, timers, atomic steps").
 *
 * The actors are daemons; a master actor, the only other one, sleeps until the run is over
 * (every client idle, an error, or until_ns), so its end ends the run. A node's wait can be
 * ended only by its own messages and deadlines: no step of one node changes another's
 * deadline except a fault, and every node wakes at every timeline entry (see Faults).
 *
 * The workload. A client's `next` hook is only ever asked by the client's actor: at the end
 * of each of its steps, while it has room and its wake_ns has come. A completion sets wake_ns
 * to 0, so the step that delivered it asks again; a full client waits for a completion
 * (wake_ns UINT64_MAX). After each client step the driver counts the idle clients; when all
 * are idle, the run is over.
 *
 * Atomic steps. Every SimGrid call that is a simcall (posting a message, waiting) lets the
 * other actors run. Machine calls therefore never straddle one: a step feeds a machine,
 * drains all its actions, copies every SEND into a pooled message in the node's `ready`
 * queue and calls the hooks, with no SimGrid call in between; only then are the ready
 * messages posted. Another actor (a fault) thus never sees a machine mid-call.
 *
 * Ownership. A message comes from the world's pool (sg_pool: free lists by size class, no
 * malloc per message) when its SEND is drained and is owned by the node's queues until
 * posted; from then on by the receiver, which returns it to the pool once fed. Messages
 * still in flight at the end go with the pool.
 *
 * Faults. There is no controller actor: every node's wait ends at the next timeline entry,
 * and every node step first applies the entries due by then, so whichever node steps first
 * at an entry's instant applies it, before any message of that instant. A fault may change
 * other nodes than its own: a crashed queue endpoint makes the broker requeue (and send),
 * a recovered broker makes every endpoint subscribe again, a recovered server starts the
 * warm resyncer. Those changes only fill the changed node's `ready` queue and move its
 * deadline; since that node also wakes at this instant, it steps after the change and posts
 * through its own port (ports are per actor). world_post_wakes checks that no changed node
 * waits past its new deadline. The price: nodes x timeline entries extra wake-ups.
 *
 * A crash never turns the SimGrid host off: every
 * mailbox has a permanent receiver, and host off + permanent receiver + a later send aborts
 * (SIMGRID-NOTES.md §4); kept messages would also survive the crash and arrive after the
 * reboot. Instead a node is "down" in the driver: its machine is deleted, its queues freed,
 * and every message carries the epochs of both ends at send time (an epoch counts a node's
 * crashes and recoveries), so one sent before a crash of either end, or to a down node, is
 * dropped on receipt. Partitions are checked at send and at receipt; link latency and
 * bandwidth are SimGrid link settings, loss and jitter the driver's own draws. TCP
 * connection set-up (conn_est) is per (client, server) state read at send time; faults
 * only reset it, so it needs no wake-up.
 */
#include "cb_sgworld.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <simgrid/actor.h>
#include <simgrid/comm.h>
#include <simgrid/engine.h>
#include <simgrid/host.h>
#include <simgrid/link.h>
#include <simgrid/mailbox.h>
#include <simgrid/semaphore.h>

#include "cb_err.h"
#include "cb_qendpoint.h"
#include "cb_sgsetup.h"
#include "cb_sgshim.h"

#define SG_DRAIN_BATCH    8u
#define SG_RTO_DEFAULT_NS 200000000ull /* Linux's minimum RTO */
#define SG_JITTER_MAX_NS  (1ull << 40) /* keeps now + rto + jitter far from overflow */
#define SG_PEER_GONE      (UINT32_MAX - 1u)
#define SG_SYN_TRIES      7u /* a SYN and up to 6 retransmissions (Linux tcp_syn_retries) */

enum { SG_MSG_DATA = 0, SG_MSG_CLOSE = 1 };

typedef struct sg_pool sg_pool;

/* A message on the simulated wire: this header, then the frame bytes; one pool block. */
typedef struct sg_msg {
    sg_pool *pool;       /* where it goes back */
    uint32_t size_class; /* its block's size class in the pool */
    uint32_t src;        /* the sender as the receiving machine names it (a client's conn) */
    uint32_t from;       /* the sender's node id */
    uint32_t from_epoch; /* both ends' epochs when it was sent */
    uint32_t to_epoch;
    uint32_t kind;
    uint64_t sent_ns;
    size_t len;
    uint8_t data[];
} sg_msg;

/* Message blocks by size class: 2^(SG_POOL_MIN_SHIFT + k) bytes, free lists linked through
 * their first word. Small classes are cut from 64 KiB chunks; each chunk (or big block) is
 * kept in `chunks` and freed with the world. */
#define SG_POOL_MIN_SHIFT 7u
#define SG_POOL_CLASSES   40u
#define SG_POOL_CHUNK     (64u * 1024u)

struct sg_pool {
    void *free[SG_POOL_CLASSES];
    void **chunks;
    size_t chunk_count;
    size_t chunk_cap;
};

/* The master's stop message (sg_master_main): one for every node, never freed. */
static sg_msg sg_stop_msg;

/* A message not yet posted. */
typedef struct sg_out {
    uint64_t release_ns; /* held: when it may be posted */
    uint64_t wire_bytes;
    sg_msg *msg;
    uint32_t dst;
} sg_out;

typedef struct sg_vec {
    sg_out *items;
    size_t head; /* first unposted item (ready queue); held items are compacted instead */
    size_t count;
    size_t cap;
} sg_vec;

/* What other nodes' steps read of a node (a sender of its receiver, a receiver of its
 * sender), kept apart from sg_node in one dense array: 16 bytes a node, so 1,100 nodes take
 * 17.6 KiB that every message touches and the cache keeps, where the same fields in sg_node
 * cost a cold line of another node's state per message (docs/simulator.md, "Benchmark"). */
typedef struct sg_peer {
    sg_mailbox_t mailbox;
    uint32_t epoch; /* crashes + recoveries so far */
    uint8_t down;   /* crashed and not recovered: no machine */
    uint8_t group;  /* partition group; 0: in none */
} sg_peer;

typedef struct sg_node {
    cb_sgworld *w;
    uint32_t id;
    uint8_t is_client;
    uint8_t is_broker;       /* queue transport: the broker node (id S+C) */
    uint8_t is_resync;       /* the resyncer (resync = warm): a client node without workload */
    uint32_t conn;           /* client: its connection id at the servers, new per recovery */
    uint32_t recovers_ahead; /* RECOVER entries for this node not applied yet */
    uint32_t loss_ppm;       /* this node's link (config, then LINK faults) */
    uint64_t jitter_ns;
    cb_server *srv;     /* servers */
    cb_client *cli;     /* clients (with replication: the router's) */
    cb_router *router;  /* clients with replication, else NULL */
    cb_broker *broker;  /* the broker node (queue transport) */
    cb_qendpoint *ep;   /* queue transport: every server and client's way to the broker */
    uint64_t seal_seed; /* this incarnation's cb_codec_config.seal_seed */
    sg_host_t host;
    cb_sgshim_port *port;
    uint64_t armed_ns; /* the end of the actor's wait while it waits; 0 while it runs */
    uint64_t now_ns;   /* the node's clock: SimGrid's, never going back */
    cb_rng jitter_rng; /* clients: the machine's generator */
    cb_rng loss_rng;   /* loss draws of this node's messages */
    sg_vec ready;      /* to post now, by this node's own actors */
    sg_vec held;       /* waiting for a retransmission timeout or a jitter delay */
    uint64_t wake_ns;  /* client: when to ask `next` again (UINT64_MAX: not before a
                          completion); never in the past while the client is full */
    uint8_t idle;      /* client: counted in world.idle_count */
    uint8_t wake_listed;
} sg_node;

struct cb_sgworld {
    cb_sgworld_config cfg;
    const cb_world_hooks *hooks;
    uint64_t until_ns;
    uint32_t node_count;
    sg_node *nodes;
    sg_peer *peers; /* per node, like nodes */
    uint32_t idle_count; /* clients with nothing in flight, nothing to post, no wake time */
    uint32_t *wake_list; /* nodes a step changed (checked after the step) */
    uint32_t wake_count;
    sg_sem_t done;       /* the master sleeps on it until the run is over */
    uint32_t running;    /* node actors that have not returned */
    int stopping;        /* the master sent the stop messages and waits for `running` 0 */
    uint64_t end_ns;     /* when the run ended (before the nodes were stopped) */
    uint64_t applied_ns; /* the time of the last timeline entry applied */
    int done_posted;
    sg_pool pool;
    int finished;
    int error;
    cb_sgworld_stats stats;
    cb_server_config *server_cfg; /* per server, for recoveries */
    cb_client_config client_cfg;
    cb_router_config router_cfg; /* with replication (cfg.router != NULL) */
    cb_sgworld_fault *faults;    /* the timeline (copied) */
    size_t fault_next;
    uint32_t *conn_node; /* connection id -> node id */
    uint32_t conn_count;
    uint32_t conn_max;
    uint8_t partitioned;
    uint32_t broker_id;   /* queue transport: the broker's node id (S+C); else UINT32_MAX */
    uint32_t base_count;  /* server_count + client_count: the nodes the config names */
    uint32_t *conn_est;   /* TCP: per (client node, server), the server's epoch + 1 when the
                             connection was set up; 0: none (docs/simulator.md) */
    uint32_t resync_id;   /* resync = warm: the resyncer's node id (S+C, or S+C+1 after the
                             queue transport's broker); else UINT32_MAX */
    cb_resync *resync;    /* resync = warm: the resyncer, node resync_id */
    uint8_t *resync_want; /* per server: recovered, waiting for its resync */
};

static sg_peer *node_peer(const sg_node *n)
{
    return &n->w->peers[n->id];
}

cb_sgworld_config cb_sgworld_config_default(void)
{
    cb_sgworld_config c;
    memset(&c, 0, sizeof c);
    c.server_count = 1;
    c.client_count = 1;
    c.server = cb_server_config_default();
    c.client = cb_client_config_default();
    c.latency_ns = 500000;
    c.bandwidth_bps = 1000000000ull;
    c.transport = CB_SGWORLD_TCP;
    c.rto_ns = SG_RTO_DEFAULT_NS;
    c.seed = 1;
    return c;
}

static uint32_t sg_overhead(const cb_sgworld_config *cfg)
{
    if (cfg->packet_overhead_bytes != 0) {
        return cfg->packet_overhead_bytes;
    }
    return cfg->transport == CB_SGWORLD_UDP ? CB_SGWORLD_UDP_OVERHEAD_BYTES
                                            : CB_SGWORLD_TCP_OVERHEAD_BYTES;
}

static uint64_t sg_packets(const cb_sgworld_config *cfg, size_t frame_bytes)
{
    uint64_t per = cfg->packet_payload_bytes;
    if (per == 0) {
        per = cfg->transport == CB_SGWORLD_UDP ? CB_SGWORLD_UDP_PAYLOAD_BYTES
                                               : CB_SGWORLD_TCP_PAYLOAD_BYTES;
    }
    uint64_t n = (frame_bytes + per - 1) / per;
    return n > 0 ? n : 1;
}

uint64_t cb_sgworld_wire_bytes(const cb_sgworld_config *cfg, size_t frame_bytes)
{
    return frame_bytes + sg_packets(cfg, frame_bytes) * sg_overhead(cfg);
}

/* ---- the message pool ------------------------------------------------------------------ */

static uint32_t pool_class(size_t bytes)
{
    uint32_t k = 0;
    while (k + 1 < SG_POOL_CLASSES && ((size_t)1 << (SG_POOL_MIN_SHIFT + k)) < bytes) {
        k++;
    }
    return k;
}

static int pool_keep(sg_pool *p, void *chunk)
{
    if (p->chunk_count == p->chunk_cap) {
        size_t cap = p->chunk_cap ? 2 * p->chunk_cap : 64;
        void **chunks = realloc(p->chunks, cap * sizeof chunks[0]);
        if (chunks == NULL) {
            return CB_ERR_NOMEM;
        }
        p->chunks = chunks;
        p->chunk_cap = cap;
    }
    p->chunks[p->chunk_count++] = chunk;
    return CB_ERR_OK;
}

/* Refill class k's free list: a chunk cut into blocks, or one block if bigger than a chunk. */
static int pool_grow(sg_pool *p, uint32_t k)
{
    size_t block = (size_t)1 << (SG_POOL_MIN_SHIFT + k);
    size_t bytes = block > SG_POOL_CHUNK ? block : SG_POOL_CHUNK;
    uint8_t *chunk = malloc(bytes);
    if (chunk == NULL || pool_keep(p, chunk) != CB_ERR_OK) {
        free(chunk);
        return CB_ERR_NOMEM;
    }
    for (size_t off = 0; off + block <= bytes; off += block) {
        void **b = (void **)(void *)(chunk + off);
        *b = p->free[k];
        p->free[k] = b;
    }
    return CB_ERR_OK;
}

/* A message with room for `len` frame bytes, or NULL. */
static sg_msg *msg_new(sg_pool *p, size_t len)
{
    if (len > ((size_t)1 << (SG_POOL_MIN_SHIFT + SG_POOL_CLASSES - 1)) - sizeof(sg_msg)) {
        return NULL;
    }
    uint32_t k = pool_class(sizeof(sg_msg) + len);
    if (p->free[k] == NULL && pool_grow(p, k) != CB_ERR_OK) {
        return NULL;
    }
    void **b = p->free[k];
    p->free[k] = *b;
    sg_msg *m = (sg_msg *)(void *)b;
    m->pool = p;
    m->size_class = k;
    return m;
}

static void msg_free(sg_msg *m)
{
    if (m != NULL) {
        sg_pool *p = m->pool; /* the link below overwrites it */
        uint32_t k = m->size_class;
        void **b = (void **)(void *)m;
        *b = p->free[k];
        p->free[k] = b;
    }
}

static void pool_del(sg_pool *p)
{
    for (size_t i = 0; i < p->chunk_count; i++) {
        free(p->chunks[i]);
    }
    free(p->chunks);
    memset(p, 0, sizeof *p);
}

/* ---- small queues ------------------------------------------------------------------- */

static int vec_push(sg_vec *v, const sg_out *o)
{
    if (v->head > 0 && v->head == v->count) {
        v->head = v->count = 0;
    }
    if (v->count == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 8;
        sg_out *items = realloc(v->items, cap * sizeof items[0]);
        if (items == NULL) {
            return CB_ERR_NOMEM;
        }
        v->items = items;
        v->cap = cap;
    }
    v->items[v->count++] = *o;
    return CB_ERR_OK;
}

static int vec_pop(sg_vec *v, sg_out *o)
{
    if (v->head == v->count) {
        return 0;
    }
    *o = v->items[v->head++];
    return 1;
}

static void vec_free(sg_vec *v)
{
    for (size_t i = v->head; i < v->count; i++) {
        msg_free(v->items[i].msg);
    }
    free(v->items);
    memset(v, 0, sizeof *v);
}

/* ---- clock, wake-ups, failure --------------------------------------------------------- */

static uint64_t node_now(sg_node *n)
{
    uint64_t t = cb_sgsetup_now_ns();
    if (t > n->now_ns) {
        n->now_ns = t;
    }
    return n->now_ns;
}

static int node_is_client(const sg_node *n)
{
    return n->is_client;
}

/* Remember that the current step changed `n`: once it ends, world_post_wakes checks that
 * `n`'s actor is not waiting past its new deadline (only its own steps and its own timeline
 * entries end its wait). */
static void world_mark_wake(cb_sgworld *w, sg_node *n)
{
    if (!n->wake_listed) {
        n->wake_listed = 1;
        w->wake_list[w->wake_count++] = n->id;
    }
}

/* The run is over: the master actor ends it once the current step ends (world_post_wakes). */
static void world_finish(cb_sgworld *w)
{
    w->finished = 1;
}

static void world_fail(cb_sgworld *w, int err)
{
    if (w->error == CB_ERR_OK) {
        w->error = err;
    }
    world_finish(w);
}

/* When the next timeline entry of any kind falls (UINT64_MAX for none by until_ns). Every
 * node's wait ends there too: a fault may change nodes other than its own (the queue's
 * broker and endpoints, the resyncer), and a wait ends only by the node's own messages and
 * deadlines, so every node steps at every entry's instant, after the entry (docs/simulator.md,
 * "Faults"). */
static uint64_t world_next_fault(const cb_sgworld *w)
{
    if (w->fault_next >= w->cfg.fault_count || w->faults[w->fault_next].at_ns > w->until_ns) {
        return UINT64_MAX;
    }
    return w->faults[w->fault_next].at_ns;
}

/* When the node's actor must next run without a message: UINT64_MAX for never, 0 for now. */
static uint64_t node_next_wake(const sg_node *n)
{
    const cb_sgworld *w = n->w;
    if (n->ready.head < n->ready.count) {
        return 0;
    }
    uint64_t f = world_next_fault(w);
    if (node_peer(n)->down) {
        uint64_t t = node_is_client(n) ? w->until_ns : UINT64_MAX;
        return f < t ? f : t;
    }
    uint64_t t = n->is_broker        ? cb_broker_next_deadline_ns(n->broker)
                 : node_is_client(n) ? cb_client_next_deadline_ns(n->cli)
                                     : cb_server_next_deadline_ns(n->srv);
    for (size_t i = 0; i < n->held.count; i++) {
        t = n->held.items[i].release_ns < t ? n->held.items[i].release_ns : t;
    }
    if (node_is_client(n)) {
        t = n->wake_ns < t ? n->wake_ns : t;
        t = w->until_ns < t ? w->until_ns : t;
    }
    return f < t ? f : t;
}

/* ---- sending (atomic part: no SimGrid call) ------------------------------------------- */

/* Held messages whose time has come move to the ready queue, in their order. */
static void node_release_held(sg_node *n)
{
    size_t keep = 0;
    for (size_t i = 0; i < n->held.count; i++) {
        sg_out *o = &n->held.items[i];
        if (o->release_ns <= n->now_ns) {
            if (vec_push(&n->ready, o) != CB_ERR_OK) {
                msg_free(o->msg);
                world_fail(n->w, CB_ERR_NOMEM);
            }
        } else {
            n->held.items[keep++] = *o;
        }
    }
    n->held.count = keep;
}

/* Latest release time of a held message to `dst` (0: none): TCP delivers a connection's
 * bytes in order, so a message waits behind an earlier held one on its connection. */
static uint64_t node_held_until(const sg_node *n, uint32_t dst)
{
    uint64_t t = 0;
    for (size_t i = 0; i < n->held.count; i++) {
        if (n->held.items[i].dst == dst && n->held.items[i].release_ns > t) {
            t = n->held.items[i].release_ns;
        }
    }
    return t;
}

/* 1 if the loss draw loses the message: any of its packets lost. The probability is the
 * larger of the two ends' links' (both the config's unless a LINK fault changed one). */
static int node_draw_loss(sg_node *n, const sg_node *dst, uint64_t packets)
{
    int lost = 0;
    uint32_t ppm = n->loss_ppm > dst->loss_ppm ? n->loss_ppm : dst->loss_ppm;
    if (ppm == 0) {
        return 0;
    }
    for (uint64_t i = 0; i < packets; i++) {
        lost |= cb_rng_chance_ppm(&n->loss_rng, ppm);
    }
    return lost;
}

/* Extra delay of one message, uniform in [0, jitter], from the sender's loss rng; jitter is
 * the larger of the two ends'. No draw without jitter, so such runs keep the loss sequence
 * they always had. */
static uint64_t node_draw_jitter(sg_node *n, const sg_node *dst)
{
    uint64_t bound = n->jitter_ns > dst->jitter_ns ? n->jitter_ns : dst->jitter_ns;
    if (bound == 0) {
        return 0;
    }
    uint64_t j = cb_rng_below(&n->loss_rng, bound + 1);
    n->w->stats.messages_jittered += (uint64_t)(j > 0);
    return j;
}

/* The connection slot of client (or resyncer) node `cli` to server `srv`, TCP only. */
static uint32_t *world_conn_slot(cb_sgworld *w, uint32_t cli, uint32_t srv)
{
    return &w->conn_est[(size_t)(cli - w->cfg.server_count) * w->cfg.server_count + srv];
}

/* A CLOSE either way ends the connection between a client and a server: the client's next
 * message sets up a new one. */
static void node_conn_close(sg_node *n, uint32_t dst)
{
    cb_sgworld *w = n->w;
    if (w->conn_est == NULL || node_is_client(n) == node_is_client(&w->nodes[dst])) {
        return;
    }
    *world_conn_slot(w, node_is_client(n) ? n->id : dst, node_is_client(n) ? dst : n->id) = 0;
}

/* One crossing of a packet with no payload (SYN, SYN-ACK) from a to b on the current path:
 * its route latency plus its header bytes at the route's bandwidth. SimGrid getters that
 * are no simcalls, so the step stays atomic. */
static uint64_t world_syn_ns(const cb_sgworld *w, const sg_node *a, const sg_node *b)
{
    double s = sg_host_get_route_latency(a->host, b->host);
    double bw = sg_host_get_route_bandwidth(a->host, b->host);
    if (bw > 0) {
        s += (double)cb_sgworld_wire_bytes(&w->cfg, 0) / bw;
    }
    return (uint64_t)llround(s * 1e9);
}

/*
 * TCP: the delay before client node n's data to server dst may leave. 0 on an established
 * connection. Else the connection is set up now (a server crash or recovery since, a
 * partition between them, or a CLOSE either way broke the old one): SYN and SYN-ACK cost
 * one round trip on the current path; each is subject to the loss draw, and a lost one
 * costs rto_ns (the SYN is retransmitted), for at most SG_SYN_TRIES tries, after which the
 * exchange is taken as done (like data, a set-up is delayed, never lost).
 */
static uint64_t node_connect(sg_node *n, uint32_t dst)
{
    cb_sgworld *w = n->w;
    sg_node *d = &w->nodes[dst];
    uint32_t *slot = world_conn_slot(w, n->id, dst);
    if (*slot == node_peer(d)->epoch + 1u) {
        return 0;
    }
    *slot = node_peer(d)->epoch + 1u;
    w->stats.connects++;
    uint64_t delay = 0;
    for (uint32_t i = 0; i < SG_SYN_TRIES; i++) {
        if (i == SG_SYN_TRIES - 1 || !node_draw_loss(n, d, 2)) {
            return delay + world_syn_ns(w, n, d) + world_syn_ns(w, d, n);
        }
        delay += w->cfg.rto_ns;
        w->stats.syn_retries++;
    }
    return delay;
}

/* Route a new message through the transport's loss and jitter models into ready, held, or
 * nowhere. */
static int node_route(sg_node *n, sg_out *o, uint64_t packets)
{
    cb_sgworld *w = n->w;
    const sg_node *dst = &w->nodes[o->dst];
    uint64_t setup = 0; /* TCP: the SYN exchange comes first, its loss draws too */
    if (w->cfg.transport == CB_SGWORLD_TCP && o->msg->kind == SG_MSG_CLOSE) {
        node_conn_close(n, o->dst);
    } else if (w->cfg.transport == CB_SGWORLD_TCP && node_is_client(n)) {
        setup = node_connect(n, o->dst); /* the data leaves once set up */
    }
    int lost = node_draw_loss(n, dst, packets);
    if (w->cfg.transport == CB_SGWORLD_UDP && lost) { /* TCP and queue links are reliable */
        w->stats.messages_lost++;
        msg_free(o->msg);
        return CB_ERR_OK;
    }
    o->release_ns = n->now_ns + setup + node_draw_jitter(n, dst);
    if (w->cfg.transport != CB_SGWORLD_UDP) {
        /* Held messages already due go first: they were sent before this one, and the
         * node's timeout step that would post them may not have run yet at this instant. */
        node_release_held(n);
        o->release_ns += lost ? w->cfg.rto_ns : 0;
        w->stats.messages_delayed += (uint64_t)lost;
        uint64_t hol = node_held_until(n, o->dst);
        if (hol > o->release_ns) {
            w->stats.messages_hol += (uint64_t)!lost;
            o->release_ns = hol;
        }
    }
    return vec_push(o->release_ns > n->now_ns ? &n->held : &n->ready, o);
}

/* 1 when a partition keeps nodes a and b apart. */
static int world_separated(const cb_sgworld *w, uint32_t a, uint32_t b)
{
    uint8_t ga = w->peers[a].group, gb = w->peers[b].group;
    return w->partitioned && ga != 0 && gb != 0 && ga != gb;
}

/* The node a machine's peer id names: a server's peers are connection ids (a recovered
 * client gets a new one), a client's are server ids. UINT32_MAX: not a peer we gave it;
 * SG_PEER_GONE: a connection of a crashed client's former life. */
static uint32_t node_peer_node(const sg_node *n, uint32_t peer)
{
    const cb_sgworld *w = n->w;
    if (n->is_broker) {
        return peer < w->node_count ? peer : UINT32_MAX; /* its connections are node ids */
    }
    if (node_is_client(n)) {
        return peer < w->cfg.server_count ? peer : UINT32_MAX;
    }
    if (peer >= w->conn_count) {
        return UINT32_MAX;
    }
    uint32_t node = w->conn_node[peer];
    return w->nodes[node].conn == peer ? node : SG_PEER_GONE;
}

/* Put a message to node `dst` on the wire (or lose it to a fault). */
static void node_send_to(sg_node *n, uint32_t dst, uint32_t kind, const uint8_t *data, size_t len)
{
    cb_sgworld *w = n->w;
    w->stats.messages_sent++;
    if (dst == SG_PEER_GONE || w->peers[dst].down || world_separated(w, n->id, dst)) {
        w->stats.messages_faulted++; /* nobody there to receive it, or no route */
        return;
    }
    sg_out o = {0, cb_sgworld_wire_bytes(&w->cfg, len), msg_new(&w->pool, len), dst};
    if (o.msg == NULL) {
        world_fail(w, CB_ERR_NOMEM);
        return;
    }
    /* The broker names its connections by node id; servers name clients' by connection. */
    o.msg->src = node_is_client(n) && w->broker_id == UINT32_MAX ? n->conn : n->id;
    o.msg->from = n->id;
    o.msg->from_epoch = node_peer(n)->epoch;
    o.msg->to_epoch = w->peers[dst].epoch;
    o.msg->kind = kind;
    o.msg->sent_ns = n->now_ns;
    o.msg->len = len;
    if (len > 0) {
        memcpy(o.msg->data, data, len);
    }
    w->stats.frame_bytes_sent += len;
    w->stats.wire_bytes_sent += o.wire_bytes;
    if (node_route(n, &o, sg_packets(&w->cfg, len)) != CB_ERR_OK) {
        msg_free(o.msg);
        world_fail(w, CB_ERR_NOMEM);
    }
}

static void node_send(sg_node *n, uint32_t peer, uint32_t kind, const uint8_t *data, size_t len)
{
    uint32_t dst = node_peer_node(n, peer);
    if (dst == UINT32_MAX || dst == n->id) {
        world_fail(n->w, CB_ERR_UNKNOWN_CONN); /* a machine addressed a peer we never gave it */
        return;
    }
    node_send_to(n, dst, kind, data, len);
}

/* ---- queue transport endpoints (atomic part) ---------------------------------------- */

/* Everything the node's endpoint queued (PUBLISH, ACK, SUBSCRIBE) goes to the broker. */
static void node_pump_endpoint(sg_node *n)
{
    cb_action batch[SG_DRAIN_BATCH];
    size_t count;
    while (n->ep != NULL && (count = cb_qendpoint_drain(n->ep, batch, SG_DRAIN_BATCH)) > 0) {
        for (size_t i = 0; i < count; i++) {
            node_send_to(n, n->w->broker_id, SG_MSG_DATA, batch[i].data, batch[i].data_len);
        }
    }
}

/* A machine's SEND to `peer`, as PUBLISH envelopes for the peer's node. */
static void node_publish(sg_node *n, uint32_t peer, const uint8_t *data, size_t len)
{
    cb_sgworld *w = n->w;
    uint32_t dst = node_peer_node(n, peer);
    if (dst == UINT32_MAX || dst == n->id) {
        world_fail(w, CB_ERR_UNKNOWN_CONN);
        return;
    }
    if (dst == SG_PEER_GONE) {
        w->stats.messages_faulted++; /* a reply to a crashed client's former life */
        return;
    }
    int rc = cb_qendpoint_publish(n->ep, dst, data, len);
    if (rc == CB_ERR_FULL) {
        node_pump_endpoint(n); /* the outbox holds at least one maximal envelope */
        rc = cb_qendpoint_publish(n->ep, dst, data, len);
    }
    if (rc != CB_ERR_OK) {
        world_fail(w, rc);
    }
}

/* A (re)made stream to the broker: forget partial input, subscribe. */
static void node_subscribe(sg_node *n)
{
    cb_qendpoint_on_reset(n->ep);
    int rc = cb_qendpoint_subscribe(n->ep);
    if (rc == CB_ERR_FULL) {
        node_pump_endpoint(n);
        rc = cb_qendpoint_subscribe(n->ep);
    }
    if (rc != CB_ERR_OK) {
        world_fail(n->w, rc);
    }
    node_pump_endpoint(n);
}

/* ---- machines (atomic part) ----------------------------------------------------------- */

static void world_resync_kick(cb_sgworld *w);

static void node_act(sg_node *n, const cb_action *a, int from_router)
{
    cb_sgworld *w = n->w;
    const cb_world_hooks *h = w->hooks;
    if (h->action != NULL) {
        h->action(h->user, n->id, a, n->now_ns);
    }
    switch (a->kind) {
    case CB_ACTION_SEND:
        if (n->ep != NULL) {
            node_publish(n, a->peer, a->data, a->data_len);
        } else {
            node_send(n, a->peer, SG_MSG_DATA, a->data, a->data_len);
        }
        break;
    case CB_ACTION_CLOSE:
        /* A connection's end travels to the peer (TCP); datagrams have no connection, and
         * with the queue transport a cache connection is not a stream (only the broker's
         * connections are, and it closes one on bad input). */
        if (w->cfg.transport == CB_SGWORLD_TCP || n->is_broker) {
            node_send(n, a->peer, SG_MSG_CLOSE, NULL, 0);
        }
        break;
    case CB_ACTION_COMPLETE:
        if (n->is_resync) {
            int rc = cb_resync_on_completion(w->resync, &a->completion, n->now_ns);
            if (rc != CB_ERR_OK) {
                world_fail(w, rc);
            }
            break;
        }
        n->wake_ns = 0; /* a slot is free: ask again in this step */
        if (n->router != NULL && !from_router) {
            int rc = cb_router_on_completion(n->router, &a->completion, n->now_ns);
            if (rc != CB_ERR_OK) {
                world_fail(w, rc);
            }
            break;
        }
        h->complete(h->user, n->id - w->cfg.server_count, &a->completion);
        break;
    case CB_ACTION_EVENT:
        if (h->event != NULL) {
            h->event(h->user, n->id, &a->event, n->now_ns);
        }
        break;
    default:
        world_fail(w, CB_ERR_INVALID);
        break;
    }
}

/* The resyncer's own events, then the next recovered server once this resync is done. */
static void node_pump_resync(sg_node *n)
{
    cb_action batch[SG_DRAIN_BATCH];
    size_t count;
    while ((count = cb_resync_drain(n->w->resync, batch, SG_DRAIN_BATCH)) > 0) {
        for (size_t i = 0; i < count; i++) {
            node_act(n, &batch[i], 1);
        }
    }
    world_resync_kick(n->w);
}

/* Drain `n`'s machine until its outbox is empty; then, for a client with a router, the
 * router's (the client's completions may have made the router send more, hence the client
 * first; the router's own actions never make the client act). Actions are acted on where
 * they lie (cb_outbox_pop), not copied out: that copy was a cold stack line per action. */
static void node_pump(sg_node *n)
{
    const cb_action *a;
    for (;;) {
        a = n->is_broker        ? cb_broker_pop(n->broker)
            : node_is_client(n) ? cb_client_pop(n->cli)
                                : cb_server_pop(n->srv);
        if (a == NULL) {
            break;
        }
        node_act(n, a, 0);
    }
    while (n->router != NULL && (a = cb_router_pop(n->router)) != NULL) {
        node_act(n, a, 1);
    }
    node_pump_endpoint(n);
    if (n->is_resync) {
        node_pump_resync(n);
    }
}

static long node_on_bytes(sg_node *n, uint32_t src, const uint8_t *p, size_t len)
{
    if (n->is_broker) {
        return cb_broker_on_bytes(n->broker, src, p, len, n->now_ns);
    }
    if (node_is_client(n)) {
        return cb_client_on_bytes(n->cli, src, p, len, n->now_ns);
    }
    return cb_server_on_bytes(n->srv, src, p, len, n->now_ns);
}

/* Feed bytes from machine peer `src` to the machine, draining whenever its outbox fills. */
static void node_feed_bytes(sg_node *n, uint32_t src, const uint8_t *p, size_t left)
{
    while (left > 0) {
        long k = node_on_bytes(n, src, p, left);
        node_pump(n);
        if (k < 0) {
            break; /* a protocol error: the machine closed the stream itself */
        }
        if (k == 0) {
            world_fail(n->w, CB_ERR_NOMEM); /* nothing taken with an empty outbox */
            break;
        }
        p += k;
        left -= (size_t)k;
    }
}

/* The machine's name for the node that published a delivery: a client's peers are server
 * ids, a server's are client connections (the resyncer's too); UINT32_MAX for a node that
 * cannot be a peer. */
static uint32_t node_delivery_peer(const sg_node *n, uint32_t src)
{
    const cb_sgworld *w = n->w;
    if (node_is_client(n)) {
        return src < w->cfg.server_count ? src : UINT32_MAX;
    }
    if (src < w->cfg.server_count || src >= w->node_count ||
        (src >= w->base_count && src != w->resync_id)) {
        return UINT32_MAX; /* a server, the broker, or no node */
    }
    return w->nodes[src].conn;
}

/* Bytes from the broker: DELIVERs go to the machine (their ACKs to the broker), NACKs are
 * counted (the client's timeout decides the request's fate). */
static void node_feed_endpoint(sg_node *n, const sg_msg *m)
{
    const uint8_t *in = m->data;
    size_t left = m->len;
    for (;;) {
        cb_qendpoint_msg qm;
        int rc = cb_qendpoint_next(n->ep, &in, &left, &qm);
        if (rc == 0) {
            break;
        }
        if (rc == CB_ERR_FULL) {
            node_pump_endpoint(n);
            continue;
        }
        if (rc < 0) {
            world_fail(n->w, rc); /* our own broker sent what an endpoint cannot read */
            return;
        }
        if (qm.kind == CB_QUEUE_NACK) {
            n->w->stats.queue_nacks++;
            continue;
        }
        uint32_t peer = node_delivery_peer(n, qm.src);
        if (peer == UINT32_MAX) {
            world_fail(n->w, CB_ERR_UNKNOWN_CONN);
            return;
        }
        node_feed_bytes(n, peer, qm.payload, qm.payload_len);
    }
    node_pump_endpoint(n);
}

/* Feed a received message to the machine, draining whenever its outbox fills. */
static void node_feed(sg_node *n, const sg_msg *m)
{
    if (m->kind == SG_MSG_CLOSE) {
        int rc = CB_ERR_OK;
        if (n->is_broker) {
            rc = cb_broker_on_close(n->broker, m->src, n->now_ns);
        } else if (n->ep != NULL) {
            node_subscribe(n); /* the broker closed our stream: connect again */
        } else {
            rc = node_is_client(n) ? cb_client_on_reset(n->cli, m->src)
                                   : cb_server_on_close(n->srv, m->src);
        }
        if (rc != CB_ERR_OK) {
            world_fail(n->w, rc);
        }
        node_pump(n);
        return;
    }
    if (n->ep != NULL) {
        node_feed_endpoint(n, m);
        return;
    }
    node_feed_bytes(n, m->src, m->data, m->len);
    if (!node_is_client(n) && n->w->cfg.transport == CB_SGWORLD_UDP) {
        /* A datagram ends here: nothing partial carries over (cb_server.h). */
        (void)cb_server_on_close(n->srv, m->src); /* m->src < conn_max: cannot fail */
    }
}

/* ---- the workload (atomic part) ------------------------------------------------------ */

/* Has the client room for one more operation? (With a router: the router's operations.) */
static int client_has_room(const sg_node *n)
{
    uint32_t room = n->w->cfg.client.outstanding_max;
    if (n->router != NULL) {
        return cb_router_outstanding(n->router) < room && cb_router_has_room(n->router);
    }
    return cb_client_outstanding(n->cli) < room;
}

static int client_submit(sg_node *n, uint32_t server, const cb_client_op *op)
{
    if (n->router != NULL) {
        return cb_router_submit(n->router, op, n->now_ns, NULL);
    }
    return cb_client_request(n->cli, server, op, n->now_ns, NULL);
}

/* Ask the `next` hook for operations while the client has room and its wake time has come
 * (as cb_memworld does). */
static void client_offer(sg_node *n)
{
    cb_sgworld *w = n->w;
    const cb_world_hooks *h = w->hooks;
    uint32_t client = n->id - w->cfg.server_count;
    if (node_peer(n)->down || n->is_resync) {
        return;
    }
    while (!w->finished && n->wake_ns <= n->now_ns && client_has_room(n)) {
        cb_client_op op;
        uint32_t server = 0;
        uint64_t wake = UINT64_MAX;
        memset(&op, 0, sizeof op);
        if (!h->next(h->user, client, n->now_ns, &op, &server, &wake)) {
            n->wake_ns = wake > n->now_ns ? wake : n->now_ns + 1;
            break;
        }
        int rc = client_submit(n, server, &op);
        if (rc != CB_ERR_OK) {
            world_fail(w, rc); /* the hook asked for something impossible */
            return;
        }
        node_pump(n);
    }
    if (!client_has_room(n)) {
        /* Full: only a completion makes room. A wake time left in the past would make the
         * node's wait return at once, again and again, without time advancing. */
        n->wake_ns = UINT64_MAX;
    }
}

/* After a client step has posted its messages: count the client idle or busy, and end the
 * run when every client is idle. An idle client has nothing that could ever ask its hook
 * again; another client's completion does not wake it (hooks that wait for each other
 * poll with a wake time). */
static void client_count_idle(sg_node *n)
{
    cb_sgworld *w = n->w;
    if (n->is_resync) {
        return; /* it works for the workload's servers; it never keeps the run alive */
    }
    /* A down client waits for its recovery, if one is still ahead. */
    uint8_t idle = node_peer(n)->down ? n->recovers_ahead == 0
                           : cb_client_outstanding(n->cli) == 0 && n->wake_ns == UINT64_MAX &&
                                 n->held.count == 0 && n->ready.head == n->ready.count &&
                                 (n->router == NULL || cb_router_outstanding(n->router) == 0);
    if (idle != n->idle) {
        n->idle = idle;
        w->idle_count = idle ? w->idle_count + 1 : w->idle_count - 1;
    }
    if (w->idle_count == w->cfg.client_count && !w->finished) {
        world_finish(w);
    }
}

/* ---- step ends: the SimGrid calls ----------------------------------------------------- */

/* Post the ready messages through the node's port (only its own actor does). */
static void node_flush(sg_node *n)
{
    sg_out o;
    while (vec_pop(&n->ready, &o)) {
        if (cb_sgshim_port_send(n->port, n->w->peers[o.dst].mailbox, o.msg, o.wire_bytes) != 0) {
            msg_free(o.msg);
            world_fail(n->w, CB_ERR_INVALID);
        }
    }
}

/* After a step: a node it changed whose actor waits past its new deadline could not be
 * woken (a wait ends only by the node's own messages and deadlines): that is a driver bug,
 * reported rather than left to distort the run. Then, once the run is over, wake the master. */
static void world_post_wakes(cb_sgworld *w, uint64_t now)
{
    /* `now`: the stepping node's clock, SimGrid's (no time passes in a step). A fault is
     * applied at its time (every node wakes then), which SimGrid's clock may show 1 ns
     * earlier (its double seconds). */
    now = w->applied_ns > now ? w->applied_ns : now;
    while (w->wake_count > 0) {
        sg_node *n = &w->nodes[w->wake_list[--w->wake_count]];
        n->wake_listed = 0;
        if (n->armed_ns > now && node_next_wake(n) < n->armed_ns) {
            fprintf(stderr, "cb_sgworld: node %u changed while it waits (driver bug)\n", n->id);
            world_fail(w, CB_ERR_INVALID);
        }
    }
    if (w->finished && !w->done_posted) {
        w->done_posted = 1;
        sg_sem_release(w->done);
    }
}

/* Post the step's messages. A client is counted after the flush, with its queues empty. */
static void node_step_end(sg_node *n)
{
    node_flush(n);
    if (node_is_client(n)) {
        client_count_idle(n);
    }
    world_post_wakes(n->w, n->now_ns);
}

static void world_apply_fault(cb_sgworld *w, const cb_sgworld_fault *f); /* under faults */

/* Apply the timeline entries due by `now` not yet applied (by another node's step): a step
 * starts with them, so every actor sees a fault from its time on. */
static void world_apply_due(cb_sgworld *w, uint64_t now)
{
    while (!w->finished && w->fault_next < w->cfg.fault_count &&
           w->faults[w->fault_next].at_ns <= now && w->faults[w->fault_next].at_ns <= w->until_ns) {
        w->applied_ns = w->faults[w->fault_next].at_ns;
        world_apply_fault(w, &w->faults[w->fault_next++]);
    }
}

/* ---- actors --------------------------------------------------------------------------- */

/* 1 unless a fault lost the message: its receiver is down, either end crashed (or the
 * receiver recovered) since it was sent, or a partition now separates them. */
static int node_accepts(const sg_node *n, const sg_msg *m)
{
    const cb_sgworld *w = n->w;
    const sg_peer *self = node_peer(n);
    return !self->down && self->epoch == m->to_epoch && w->peers[m->from].epoch == m->from_epoch &&
           !world_separated(w, m->from, n->id);
}

static void node_on_message(sg_node *n, sg_msg *m)
{
    cb_sgworld *w = n->w;
    if (w->finished || n->now_ns > w->until_ns) {
        msg_free(m);
        return;
    }
    if (!node_accepts(n, m)) {
        w->stats.messages_faulted++;
        msg_free(m);
        return;
    }
    w->stats.messages_received++;
    node_feed(n, m);
    msg_free(m);
    if (node_is_client(n)) {
        client_offer(n);
    }
    node_step_end(n);
}

/* Wait for the node's next message or deadline. Returns the message, or NULL when the
 * deadline has come (or the wait failed: then the run fails too). */
static sg_msg *node_wait(sg_node *n)
{
    uint64_t t = node_next_wake(n);
    uint64_t now = n->now_ns; /* node_now(n) since the step began: no time passes in a step */
    if (t <= now) {
        return NULL;
    }
    void *payload = NULL;
    n->armed_ns = t;
    int got = cb_sgshim_port_wait(n->port, t == UINT64_MAX ? -1.0 : cb_sgsetup_seconds(t - now),
                                  t == UINT64_MAX ? -1.0 : cb_sgsetup_seconds(t), &payload);
    n->armed_ns = 0;
    now = node_now(n);
    if (got == 1) {
        return payload;
    }
    if (got < 0) {
        world_fail(n->w, CB_ERR_INVALID);
        world_post_wakes(n->w, now);
    } else if (now < t) {
        n->now_ns = t; /* SimGrid merges events closer than its 1 ns precision */
    }
    return NULL;
}

/* One timer wake-up: releases, machine timers, the closed loop. */
static void node_on_wake(sg_node *n)
{
    cb_sgworld *w = n->w;
    w->stats.timer_wakeups++;
    if (node_peer(n)->down) {
        if (node_is_client(n) && n->now_ns >= w->until_ns) {
            world_finish(w);
        }
        return;
    }
    node_release_held(n);
    if (n->is_broker) {
        /* Redeliveries and deliveries whose service ended; FULL: drained, call again. */
        while (cb_broker_next_deadline_ns(n->broker) <= n->now_ns) {
            int rc = cb_broker_on_timer(n->broker, n->now_ns);
            node_pump(n);
            if (rc == CB_ERR_OK) {
                break;
            }
        }
        return;
    }
    if (!node_is_client(n)) {
        if (cb_server_next_deadline_ns(n->srv) <= n->now_ns) {
            (void)cb_server_on_timer(n->srv, n->now_ns); /* always CB_ERR_OK */
            node_pump(n);
        }
        return;
    }
    while (!w->finished && cb_client_next_deadline_ns(n->cli) <= n->now_ns) {
        int rc = cb_client_on_timer(n->cli, n->now_ns);
        node_pump(n);
        if (rc == CB_ERR_OK) {
            break;
        }
    }
    if (n->now_ns >= w->until_ns) {
        world_finish(w);
    }
    client_offer(n);
}

/* A node's actor (a daemon): each turn is one step, a message or a deadline. */
static void sg_node_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    sg_node *n = sg_actor_self_get_data();
    cb_sgworld *w = n->w;
    sg_actor_daemonize(sg_actor_self());
    world_apply_due(w, node_now(n));
    node_pump(n); /* queue transport: the endpoint's SUBSCRIBE */
    if (node_is_client(n)) {
        client_offer(n); /* wake_ns starts at 0: ask at once */
    }
    node_step_end(n);
    while (!w->finished) {
        sg_msg *m = node_wait(n);
        if (m == &sg_stop_msg) {
            break;
        }
        world_apply_due(w, n->now_ns);
        if (m != NULL) {
            node_on_message(n, m);
        } else if (!w->finished) {
            node_on_wake(n);
            node_step_end(n);
        }
    }
    /* Whatever the last step queued stays unposted: the run is over (world_del frees it).
     * The actor returns rather than being killed (sg_master_main). */
    if (--w->running == 0 && w->stopping) {
        sg_sem_release(w->done);
    }
}

/* The master, the one actor that is no daemon: the run ends when it does, once a step has
 * finished the world (all clients idle, an error, or a client's wake-up at until_ns). */
static void sg_master_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cb_sgworld *w = sg_actor_self_get_data();
    while (!w->finished) {
        sg_sem_acquire(w->done);
    }
    w->end_ns = cb_sgsetup_now_ns();
    /* Every node actor returns before the master does, woken by its deadline or by a stop
     * message, rather than being killed as a daemon when the master ends: killing unwinds
     * each actor's stack with an exception (26e6 instructions for 1,100 actors), and under
     * AddressSanitizer with raw contexts that unwinding raised a false stack-buffer-overflow.
     * The stop messages take simulated time; the run's end is taken before them. Detached:
     * a node that returned before its stop arrived never takes it. Our star platform routes
     * every pair of hosts; a user's platform need only route clients to servers (checked at
     * set-up), so there the nodes are killed as before. */
    if (w->cfg.platform != NULL) {
        return;
    }
    w->stopping = 1;
    for (uint32_t i = 0; i < w->node_count && w->running > 0; i++) {
        sg_comm_detach(sg_mailbox_put_init(w->peers[i].mailbox, &sg_stop_msg, 1), NULL);
    }
    while (w->running > 0) {
        sg_sem_acquire(w->done);
    }
}

/* ---- machines: creation and deletion ------------------------------------------------ */

/*
 * The seed of node `node`'s seal salts (cb_codec_config.seal_seed) in its first incarnation:
 * distinct per node, so no two machines sharing the key draw the same salts, and derived
 * without drawing from the root generator, so turning sealing on changes no other stream
 * (the same derivation as cb_memworld's).
 */
static uint64_t sg_seal_seed(const cb_sgworld *w, uint64_t configured, uint32_t node)
{
    return cb_rng_mix64(w->cfg.seed ^ configured ^ cb_rng_mix64(0x5ea1ull + node));
}

/* A fresh machine for `n` (at the start, or after a recovery), with n->seal_seed: a server,
 * a client, or a router (writer id: the client index) owning its client. */
static int node_new_cache_machine(cb_sgworld *w, sg_node *n)
{
    if (n->is_resync) {
        cb_resync_config rc = cb_resync_config_default();
        rc.replicas = w->cfg.router->replicas;
        rc.client = w->client_cfg;
        rc.client.codec.seal_seed = n->seal_seed;
        int err = cb_resync_new(&rc, w->cfg.placement, &n->jitter_rng, NULL, &w->resync);
        if (err == CB_ERR_OK) {
            n->cli = cb_resync_client(w->resync);
        }
        return err;
    }
    if (!node_is_client(n)) {
        cb_server_config sc = w->server_cfg[n->id];
        sc.codec.seal_seed = n->seal_seed;
        return cb_server_new(&sc, NULL, &n->srv);
    }
    if (w->cfg.router == NULL) {
        cb_client_config cc = w->client_cfg;
        cc.codec.seal_seed = n->seal_seed;
        return cb_client_new(&cc, &n->jitter_rng, NULL, &n->cli);
    }
    cb_router_config rc = w->router_cfg;
    rc.writer_id = n->id - w->cfg.server_count;
    rc.client.codec.seal_seed = n->seal_seed;
    int err = cb_router_new(&rc, w->cfg.placement, &n->jitter_rng, NULL, &n->router);
    if (err == CB_ERR_OK) {
        n->cli = cb_router_client(n->router);
    }
    return err;
}

/* ... and, with the queue transport, its endpoint (which queues a SUBSCRIBE), or the
 * broker's machine. */
static int node_new_machine(cb_sgworld *w, sg_node *n)
{
    if (n->is_broker) {
        cb_broker_config bc = w->cfg.broker;
        bc.conn_max = w->node_count;
        bc.node_max = w->node_count;
        return cb_broker_new(&bc, NULL, &n->broker);
    }
    int rc = node_new_cache_machine(w, n);
    if (rc != CB_ERR_OK || w->broker_id == UINT32_MAX) {
        return rc;
    }
    cb_qendpoint_config ec;
    memset(&ec, 0, sizeof ec);
    ec.node = n->id;
    ec.broker_peer = w->broker_id;
    ec.payload_bytes_max = w->cfg.broker.payload_bytes_max;
    rc = cb_qendpoint_new(&ec, NULL, &n->ep);
    if (rc == CB_ERR_OK) {
        rc = cb_qendpoint_subscribe(n->ep); /* an empty outbox has room */
    }
    return rc;
}

static void node_del_machine(sg_node *n)
{
    if (n->is_resync) {
        n->cli = NULL; /* owned by the resyncer (world_del) */
        cb_qendpoint_del(n->ep);
        n->ep = NULL;
        return;
    }
    if (n->router != NULL) {
        cb_router_del(n->router); /* and the client it owns */
    } else {
        cb_client_del(n->cli);
    }
    cb_server_del(n->srv);
    cb_broker_del(n->broker);
    cb_qendpoint_del(n->ep);
    n->router = NULL;
    n->cli = NULL;
    n->srv = NULL;
    n->broker = NULL;
    n->ep = NULL;
}

/* ---- faults ------------------------------------------------------------------------- */

/* Add a machine's counters to the run's (at the end, or before a crash deletes it). */
static void router_collect(cb_router_stats *sum, const cb_router *r)
{
    cb_router_stats v;
    cb_router_get_stats(r, &v);
    sum->ops += v.ops;
    sum->completed += v.completed;
    sum->sub_requests += v.sub_requests;
    sum->failovers += v.failovers;
    sum->ejections += v.ejections;
    sum->probes += v.probes;
    sum->probes_passed += v.probes_passed;
    sum->probes_failed += v.probes_failed;
    sum->no_node += v.no_node;
    sum->stale_replicas += v.stale_replicas;
    sum->stale_returned += v.stale_returned;
    sum->repairs += v.repairs;
    sum->repairs_failed += v.repairs_failed;
    sum->propagations += v.propagations;
    sum->propagations_failed += v.propagations_failed;
    sum->superseded += v.superseded;
}

static void broker_collect(cb_broker_stats *sum, const cb_broker *b)
{
    cb_broker_stats v;
    cb_broker_get_stats(b, &v);
    sum->published += v.published;
    sum->rejected += v.rejected;
    sum->delivered += v.delivered;
    sum->redelivered += v.redelivered;
    sum->acked += v.acked;
    sum->dropped += v.dropped;
    sum->unknown_acks += v.unknown_acks;
    sum->protocol_errors += v.protocol_errors;
    sum->depth += v.depth;
    sum->depth_max = v.depth_max > sum->depth_max ? v.depth_max : sum->depth_max;
    sum->bytes_received += v.bytes_received;
    sum->bytes_sent += v.bytes_sent;
}

static void node_collect(cb_sgworld *w, const sg_node *n)
{
    cb_sgworld_stats *s = &w->stats;
    if (n->broker != NULL) {
        broker_collect(&s->broker, n->broker);
        return;
    }
    if (n->is_resync) {
        if (w->resync != NULL) {
            cb_resync_get_stats(w->resync, &s->resync);
        }
        return;
    }
    if (n->router != NULL) {
        router_collect(&s->routers, n->router);
    }
    if (n->cli != NULL) {
        cb_client_stats c;
        cb_client_get_stats(n->cli, &c);
        s->clients.requests += c.requests;
        s->clients.completed += c.completed;
        s->clients.retries += c.retries;
        s->clients.timeouts += c.timeouts;
        s->clients.late_replies += c.late_replies;
        s->clients.duplicate_replies += c.duplicate_replies;
        s->clients.unknown_replies += c.unknown_replies;
        s->clients.protocol_errors += c.protocol_errors;
        s->clients.bytes_sent += c.bytes_sent;
        s->clients.bytes_received += c.bytes_received;
    } else if (n->srv != NULL) {
        cb_server_stats v;
        cb_server_get_stats(n->srv, &v);
        s->server_requests += v.requests;
        s->server_replies += v.replies;
    }
}

static void world_report(cb_sgworld *w, uint32_t node, uint8_t kind, const cb_sgworld_fault *f)
{
    const cb_world_hooks *h = w->hooks;
    if (h->event != NULL) {
        cb_event e;
        memset(&e, 0, sizeof e);
        e.kind = kind;
        e.note = f->label;
        h->event(h->user, node, &e, f->at_ns);
    }
}

/* The client's requests in flight end as ERROR (through the complete hook, now). */
static void client_abandon(sg_node *n)
{
    for (int rc = CB_ERR_FULL; rc == CB_ERR_FULL;) {
        rc = cb_client_abandon(n->cli, n->now_ns);
        node_pump(n);
    }
}

/* Queue transport: a crashed endpoint's stream closes at the broker at once (a TCP reset),
 * which requeues the deliveries it had not acknowledged. */
static void queue_endpoint_gone(cb_sgworld *w, const sg_node *n)
{
    if (w->broker_id == UINT32_MAX || n->is_broker) {
        return;
    }
    sg_node *b = &w->nodes[w->broker_id];
    if (node_peer(b)->down) {
        return;
    }
    b->now_ns = n->now_ns > b->now_ns ? n->now_ns : b->now_ns;
    int rc = cb_broker_on_close(b->broker, n->id, b->now_ns);
    if (rc != CB_ERR_OK) {
        world_fail(w, rc);
    }
    node_pump(b);
    world_mark_wake(w, b);
}

/* Queue transport: the broker is back; every endpoint up connects and subscribes again. */
static void queue_broker_back(cb_sgworld *w, const sg_node *b)
{
    if (!b->is_broker) {
        return;
    }
    for (uint32_t i = 0; i < w->node_count; i++) {
        sg_node *n = &w->nodes[i];
        if (n->is_broker || node_peer(n)->down) {
            continue;
        }
        n->now_ns = b->now_ns > n->now_ns ? b->now_ns : n->now_ns;
        node_subscribe(n);
        world_mark_wake(w, n);
    }
}

static void fault_crash(cb_sgworld *w, sg_node *n, const cb_sgworld_fault *f)
{
    if (node_peer(n)->down) {
        return;
    }
    if (node_is_client(n)) {
        client_abandon(n);
    }
    node_collect(w, n);
    node_del_machine(n);
    /* Unposted messages die with the host; a node_flush under way finds the queue empty. */
    vec_free(&n->ready);
    vec_free(&n->held);
    node_peer(n)->down = 1;
    node_peer(n)->epoch++;
    n->wake_ns = UINT64_MAX;
    if (w->resync_want != NULL && n->id < w->cfg.server_count) { /* a server, not the broker */
        w->resync_want[n->id] = 0; /* a resync under way to it fails by timeouts */
    }
    world_report(w, n->id, CB_EVENT_CRASH, f);
    queue_endpoint_gone(w, n);
    if (node_is_client(n)) {
        client_count_idle(n);
    }
}

static void fault_recover(cb_sgworld *w, sg_node *n, const cb_sgworld_fault *f)
{
    n->recovers_ahead -= n->recovers_ahead > 0;
    if (!node_peer(n)->down) {
        return;
    }
    if (node_is_client(n)) {
        n->conn = w->conn_count++; /* a new process: new connections, fresh request ids */
        w->conn_node[n->conn] = n->id;
        for (uint32_t sv = 0; w->conn_est != NULL && sv < w->cfg.server_count; sv++) {
            *world_conn_slot(w, n->id, sv) = 0;
        }
    }
    /* A new incarnation draws new seal salts: with the old seed it would repeat the nonces
     * it used before the crash under the same key (docs/protocol.md §6.2). */
    n->seal_seed = cb_rng_mix64(n->seal_seed + 1);
    int rc = node_new_machine(w, n); /* a server comes back empty */
    if (rc != CB_ERR_OK) {
        world_fail(w, rc);
        return;
    }
    node_peer(n)->down = 0;
    node_peer(n)->epoch++;
    n->wake_ns = 0; /* a client asks its hook again at once */
    world_report(w, n->id, CB_EVENT_RECOVER, f);
    node_pump(n); /* queue transport: the new endpoint's SUBSCRIBE */
    queue_broker_back(w, n);
    world_mark_wake(w, n);
    if (w->resync_want != NULL && n->id < w->cfg.server_count) {
        w->resync_want[n->id] = 1; /* resync = warm: queued, in server order */
        world_resync_kick(w);
    }
}

/* resync = warm: start warming the first recovered server waiting for it, unless a resync
 * runs (one at a time, as in cb_memworld). Runs inside a step (any node's that applies a
 * recovery, or the resyncer's own); the resyncer's actor posts what it sent through its own
 * port, in its own step at that instant (it wakes at every timeline entry). */
static void world_resync_kick(cb_sgworld *w)
{
    if (w->resync == NULL || cb_resync_active(w->resync)) {
        return;
    }
    sg_node *r = &w->nodes[w->resync_id];
    uint64_t now = cb_sgsetup_now_ns();
    r->now_ns = now > r->now_ns ? now : r->now_ns;
    for (uint32_t s = 0; s < w->cfg.server_count; s++) {
        if (w->resync_want[s] && !w->peers[s].down) {
            w->resync_want[s] = 0;
            if (cb_resync_start(w->resync, s, r->now_ns) == CB_ERR_OK) {
                world_mark_wake(w, r);
                node_pump(r); /* may kick the next one if this one is already done */
                return;
            }
        }
    }
}

/* Latency and bandwidth are SimGrid's (each direction of the node's split-duplex link;
 * cb_sgsetup switches to full network updates when latency changes, see there); loss and
 * jitter the driver's draws. SimGrid calls come last: they may let others run. */
static void fault_link(cb_sgworld *w, sg_node *n, const cb_sgworld_fault *f)
{
    char name[32];
    if (f->link_set & CB_SGWORLD_LINK_LOSS) {
        n->loss_ppm = f->loss_ppm;
    }
    if (f->link_set & CB_SGWORLD_LINK_JITTER) {
        n->jitter_ns = f->jitter_ns;
    }
    world_report(w, n->id, CB_EVENT_LINK_CHANGE, f);
    for (int up = 0; up < 2; up++) {
        snprintf(name, sizeof name, "l%u_%s", n->id, up ? "UP" : "DOWN");
        sg_link_t link = sg_link_by_name(name);
        if (f->link_set & CB_SGWORLD_LINK_LATENCY) {
            sg_link_set_latency(link, cb_sgsetup_seconds(f->latency_ns) / 2.0);
        }
        if (f->link_set & CB_SGWORLD_LINK_BANDWIDTH) {
            sg_link_set_bandwidth(link, (double)f->bandwidth_bps / 8.0);
        }
    }
}

static void fault_partition(cb_sgworld *w, const cb_sgworld_fault *f)
{
    /* The resyncer stays in no group; the queue transport's broker is a node like any other
     * (S+C): in no group, it would carry every message across any partition. */
    uint32_t grouped = w->broker_id != UINT32_MAX ? w->broker_id + 1 : w->base_count;
    for (uint32_t i = 0; i < grouped; i++) {
        w->peers[i].group = f->kind == CB_SGWORLD_FAULT_PARTITION ? f->groups[i] : 0;
    }
    w->partitioned = f->kind == CB_SGWORLD_FAULT_PARTITION;
    for (uint32_t c = w->cfg.server_count; w->conn_est != NULL && c < w->node_count; c++) {
        for (uint32_t sv = 0; sv < w->cfg.server_count; sv++) {
            if (world_separated(w, c, sv)) {
                *world_conn_slot(w, c, sv) = 0; /* TCP: the connection breaks */
            }
        }
    }
    world_report(w, CB_SGWORLD_NODE_NONE, w->partitioned ? CB_EVENT_PARTITION : CB_EVENT_HEAL, f);
}

static void world_apply_fault(cb_sgworld *w, const cb_sgworld_fault *f)
{
    sg_node *n = f->kind <= CB_SGWORLD_FAULT_LINK ? &w->nodes[f->node] : NULL;
    w->stats.faults_applied++;
    if (n != NULL && n->now_ns < f->at_ns) {
        n->now_ns = f->at_ns;
    }
    switch (f->kind) {
    case CB_SGWORLD_FAULT_CRASH:
        fault_crash(w, n, f);
        break;
    case CB_SGWORLD_FAULT_RECOVER:
        fault_recover(w, n, f);
        break;
    case CB_SGWORLD_FAULT_LINK:
        fault_link(w, n, f);
        break;
    default:
        fault_partition(w, f);
        break;
    }
    if (n != NULL) {
        world_mark_wake(w, n);
    }
}

/* ---- set-up and tear-down ------------------------------------------------------------- */

/* Servers, clients, then the extra nodes: the queue transport's broker (S+C), the warm
 * resyncer (S+C, or S+C+1 after the broker). */
static uint64_t world_node_count(const cb_sgworld_config *cfg)
{
    return (uint64_t)cfg->server_count + cfg->client_count + (cfg->transport == CB_SGWORLD_QUEUE) +
           (cfg->resync == CB_RESYNC_WARM);
}

static int world_check_fault(const cb_sgworld_config *cfg, const cb_sgworld_fault *f)
{
    uint64_t nodes =
        (uint64_t)cfg->server_count + cfg->client_count + (cfg->transport == CB_SGWORLD_QUEUE);
    if (f->kind == CB_SGWORLD_FAULT_PARTITION) {
        return f->groups != NULL ? CB_ERR_OK : CB_ERR_INVALID;
    }
    if (f->kind == CB_SGWORLD_FAULT_HEAL) {
        return CB_ERR_OK;
    }
    if (f->kind < CB_SGWORLD_FAULT_CRASH || f->kind > CB_SGWORLD_FAULT_LINK || f->node >= nodes) {
        return CB_ERR_INVALID;
    }
    if (f->kind == CB_SGWORLD_FAULT_LINK && cfg->platform != NULL &&
        (f->link_set & (CB_SGWORLD_LINK_LATENCY | CB_SGWORLD_LINK_BANDWIDTH))) {
        return CB_ERR_INVALID; /* a platform file's links are not the star's l<i> */
    }
    if (f->kind == CB_SGWORLD_FAULT_LINK &&
        (f->link_set == 0 || f->link_set > 15u || f->loss_ppm > 1000000u ||
         f->jitter_ns > SG_JITTER_MAX_NS ||
         ((f->link_set & CB_SGWORLD_LINK_BANDWIDTH) && f->bandwidth_bps == 0))) {
        return CB_ERR_INVALID;
    }
    return CB_ERR_OK;
}

/* Entries in time order, each valid; recoveries give clients new connection ids, which
 * must stay within the server's conn_max limit. */
static int world_check_faults(const cb_sgworld_config *cfg)
{
    uint64_t conns = world_node_count(cfg);
    if (cfg->fault_count > 0 && cfg->faults == NULL) {
        return CB_ERR_INVALID;
    }
    for (size_t i = 0; i < cfg->fault_count; i++) {
        const cb_sgworld_fault *f = &cfg->faults[i];
        if ((i > 0 && f->at_ns < cfg->faults[i - 1].at_ns) ||
            world_check_fault(cfg, f) != CB_ERR_OK) {
            return CB_ERR_INVALID;
        }
        conns += f->kind == CB_SGWORLD_FAULT_RECOVER;
    }
    return conns <= (1u << 20) ? CB_ERR_OK : CB_ERR_INVALID;
}

static int world_check(const cb_sgworld_config *cfg, const cb_world_hooks *hooks)
{
    if (cfg->server_count == 0 || cfg->client_count == 0 || cfg->bandwidth_bps == 0 ||
        cfg->loss_ppm > 1000000u || cfg->jitter_ns > SG_JITTER_MAX_NS || hooks == NULL ||
        hooks->next == NULL || hooks->complete == NULL) {
        return CB_ERR_INVALID;
    }
    if (cfg->transport != CB_SGWORLD_TCP && cfg->transport != CB_SGWORLD_UDP &&
        cfg->transport != CB_SGWORLD_QUEUE) {
        return CB_ERR_INVALID;
    }
    if (world_node_count(cfg) > (1u << 20)) {
        return CB_ERR_INVALID; /* the server's conn_max limit */
    }
    if (cfg->router != NULL &&
        (cfg->placement == NULL || cfg->client_count - 1u > CB_ROUTER_WRITER_ID_MAX)) {
        return CB_ERR_INVALID; /* writer ids are client indexes */
    }
    if (cfg->resync > CB_RESYNC_WARM || (cfg->resync == CB_RESYNC_WARM && cfg->router == NULL)) {
        return CB_ERR_INVALID;
    }
    return world_check_faults(cfg);
}

static int world_new_machines(cb_sgworld *w, const cb_server_config *server_each)
{
    cb_rng root;
    cb_rng_init(&root, w->cfg.seed);
    cb_client_config cc = w->cfg.client;
    cc.peer_count = w->cfg.server_count;
    w->client_cfg = cc;
    if (w->cfg.router != NULL) {
        w->router_cfg = *w->cfg.router;
        w->router_cfg.client = cc;
        if (w->router_cfg.ops_max < cc.outstanding_max) {
            w->router_cfg.ops_max = cc.outstanding_max;
        }
    }
    /* Client generators first, in client order, as cb_memworld splits them; the
     * resyncer's comes last of all, so that every other stream is the same as with lazy. */
    for (uint32_t i = w->cfg.server_count; i < w->base_count; i++) {
        cb_rng_split(&root, &w->nodes[i].jitter_rng);
    }
    for (uint32_t i = 0; i < w->node_count; i++) {
        cb_rng_split(&root, &w->nodes[i].loss_rng);
    }
    if (w->resync_id != UINT32_MAX) {
        cb_rng_split(&root, &w->nodes[w->resync_id].jitter_rng);
    }
    for (uint32_t i = 0; i < w->node_count; i++) {
        sg_node *n = &w->nodes[i];
        n->w = w;
        n->id = i;
        n->is_broker = i == w->broker_id;
        n->is_client = i >= w->cfg.server_count && !n->is_broker;
        n->is_resync = i >= w->base_count && !n->is_broker;
        n->wake_ns = n->is_resync ? UINT64_MAX : 0;
        n->conn = i;
        w->conn_node[i] = i;
        n->loss_ppm = w->cfg.loss_ppm;
        n->jitter_ns = w->cfg.jitter_ns;
        if (!n->is_client && !n->is_broker) {
            cb_server_config *sc = &w->server_cfg[i];
            *sc = server_each != NULL ? server_each[i] : w->cfg.server;
            sc->conn_max = w->conn_max;
        }
        uint64_t configured = n->is_client   ? cc.codec.seal_seed
                              : n->is_broker ? 0
                                             : w->server_cfg[i].codec.seal_seed;
        n->seal_seed = sg_seal_seed(w, configured, i);
        int rc = node_new_machine(w, n);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    return CB_ERR_OK;
}

static void world_del(cb_sgworld *w)
{
    for (uint32_t i = 0; w->nodes != NULL && i < w->node_count; i++) {
        sg_node *n = &w->nodes[i];
        node_del_machine(n);
        vec_free(&n->ready);
        vec_free(&n->held);
        cb_sgshim_port_del(n->port);
    }
    cb_resync_del(w->resync);
    free(w->resync_want);
    free(w->conn_est);
    if (w->done != NULL) {
        sg_sem_destroy(w->done);
    }
    pool_del(&w->pool); /* after the ports: messages still in flight go with it */
    free(w->nodes);
    free(w->peers);
    free(w->wake_list);
    free(w->server_cfg);
    free(w->conn_node);
    free(w->faults);
    free(w);
}

/* Copy the timeline, count each node's recoveries ahead, size the connection table. Needs
 * w->nodes; on failure world_del frees what was allocated. */
static int world_new_timeline(cb_sgworld *w)
{
    w->conn_max = w->node_count;
    for (size_t i = 0; i < w->cfg.fault_count; i++) {
        w->conn_max += w->cfg.faults[i].kind == CB_SGWORLD_FAULT_RECOVER;
    }
    w->conn_count = w->node_count;
    w->conn_node = calloc(w->conn_max, sizeof w->conn_node[0]);
    if (w->cfg.fault_count > 0) {
        w->faults = malloc(w->cfg.fault_count * sizeof w->faults[0]);
    }
    if (w->nodes == NULL || w->conn_node == NULL || (w->cfg.fault_count > 0 && w->faults == NULL)) {
        return CB_ERR_NOMEM;
    }
    for (size_t i = 0; i < w->cfg.fault_count; i++) {
        w->faults[i] = w->cfg.faults[i];
        if (w->faults[i].kind == CB_SGWORLD_FAULT_RECOVER) {
            w->nodes[w->faults[i].node].recovers_ahead++;
        }
    }
    w->cfg.faults = w->faults;
    return CB_ERR_OK;
}

static int world_new(const cb_sgworld_config *cfg, const cb_world_hooks *hooks, uint64_t until_ns,
                     cb_sgworld **out)
{
    *out = NULL;
    cb_sgworld *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return CB_ERR_NOMEM;
    }
    w->cfg = *cfg;
    w->cfg.server_each = NULL; /* only read during construction, below */
    if (w->cfg.rto_ns == 0) {
        w->cfg.rto_ns = SG_RTO_DEFAULT_NS;
    }
    w->hooks = hooks;
    w->until_ns = until_ns;
    w->base_count = cfg->server_count + cfg->client_count;
    w->node_count = w->base_count;
    /* The extra nodes: the queue transport's broker first, then the warm resyncer (which,
     * with the queue transport, is one more endpoint of the broker, like a client). */
    w->broker_id = UINT32_MAX;
    w->resync_id = UINT32_MAX;
    if (cfg->transport == CB_SGWORLD_QUEUE) {
        w->broker_id = w->node_count++;
    }
    if (cfg->resync == CB_RESYNC_WARM) {
        w->resync_id = w->node_count++;
        w->resync_want = calloc(cfg->server_count, sizeof w->resync_want[0]);
    }
    if (cfg->transport == CB_SGWORLD_TCP) {
        w->conn_est = calloc((size_t)(w->node_count - cfg->server_count) * cfg->server_count,
                             sizeof w->conn_est[0]);
    }
    w->nodes = calloc(w->node_count, sizeof w->nodes[0]);
    w->peers = calloc(w->node_count, sizeof w->peers[0]);
    w->wake_list = calloc(w->node_count, sizeof w->wake_list[0]);
    w->server_cfg = calloc(cfg->server_count, sizeof w->server_cfg[0]);
    int rc = world_new_timeline(w);
    if (rc == CB_ERR_OK && w->nodes != NULL && w->peers != NULL && w->wake_list != NULL && w->server_cfg != NULL &&
        (cfg->resync != CB_RESYNC_WARM || w->resync_want != NULL) &&
        (cfg->transport != CB_SGWORLD_TCP || w->conn_est != NULL)) {
        rc = world_new_machines(w, cfg->server_each);
    } else if (rc == CB_ERR_OK) {
        rc = CB_ERR_NOMEM;
    }
    if (rc != CB_ERR_OK) {
        world_del(w);
        return rc;
    }
    *out = w;
    return CB_ERR_OK;
}

static int world_start_actors(cb_sgworld *w, sg_host_t *hosts)
{
    char name[32];
    for (uint32_t i = 0; i < w->node_count; i++) {
        sg_node *n = &w->nodes[i];
        snprintf(name, sizeof name, "m%u", i);
        node_peer(n)->mailbox = sg_mailbox_by_name(name);
        n->host = hosts[i];
        n->port = cb_sgshim_port_new(node_peer(n)->mailbox);
        if (n->port == NULL) {
            return CB_ERR_NOMEM;
        }
        snprintf(name, sizeof name, "%s%u",
                 n->is_broker        ? "broker"
                 : n->is_resync      ? "resync"
                 : node_is_client(n) ? "client"
                                     : "server",
                 i);
        sg_actor_t a = sg_actor_init(name, hosts[i]);
        sg_actor_set_data(a, n);
        sg_actor_start(a, sg_node_main, 0, NULL);
        /* Eager delivery: a message crosses the network as soon as it is sent, whether or
         * not the receiver is waiting yet (docs/simulator.md, "Mailboxes"). */
        cb_sgshim_set_receiver(node_peer(n)->mailbox, a);
    }
    w->done = sg_sem_init(0);
    if (w->done == NULL) {
        return CB_ERR_NOMEM;
    }
    w->running = w->node_count;
    sg_actor_t master = sg_actor_init("master", hosts[0]);
    sg_actor_set_data(master, w);
    sg_actor_start(master, sg_master_main, 0, NULL);
    return CB_ERR_OK;
}

static void world_collect(cb_sgworld *w, cb_sgworld_stats *out)
{
    cb_sgworld_stats *s = &w->stats;
    s->end_ns = w->end_ns != 0 ? w->end_ns : cb_sgsetup_now_ns();
    for (uint32_t i = 0; i < w->node_count; i++) {
        node_collect(w, &w->nodes[i]);
    }
    if (out != NULL) {
        *out = *s;
    }
}

int cb_sgworld_run(const cb_sgworld_config *cfg, const cb_world_hooks *hooks, uint64_t until_ns,
                   cb_sgworld_stats *stats)
{
    if (cb_sgsetup_used()) {
        return cb_sgsetup_begin(cfg, NULL); /* says why on stderr, returns CB_ERR_INVALID */
    }
    int rc = world_check(cfg, hooks);
    cb_sgworld *w = NULL;
    if (rc == CB_ERR_OK) {
        rc = world_new(cfg, hooks, until_ns, &w);
    }
    if (rc != CB_ERR_OK) {
        return rc;
    }
    sg_host_t *hosts = calloc(w->node_count, sizeof hosts[0]);
    rc = hosts == NULL ? CB_ERR_NOMEM : cb_sgsetup_begin(&w->cfg, hosts);
    if (rc == CB_ERR_OK) {
        rc = world_start_actors(w, hosts);
    }
    if (rc == CB_ERR_OK) {
        simgrid_run();
        rc = w->error;
    }
    free(hosts);
    world_collect(w, stats);
    world_del(w);
    return rc;
}
