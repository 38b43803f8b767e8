/*
 * cb_realworld.h: cache clients over real sockets, driven through the world hooks
 * (sim/cb_world.h) like cb_memworld and cb_sgworld, for `cachebed replay` (docs/real.md §8).
 *
 * One process, one thread, one cb_loop: C cb_client machines, each with one connection per
 * server — a TCP socket (non-blocking connect, TCP_NODELAY) or, with `udp`, a connected UDP
 * socket speaking memcached's UDP framing (8-byte header; a reply split over several
 * datagrams is reassembled before the machine sees it). The servers are elsewhere (child
 * processes, or existing `cachebed serve` instances): only their addresses are given.
 *
 * Text over UDP: memcached's text replies name no request, but its UDP header carries the
 * request id back. Each request's datagram gets its id when the client emits it (in the
 * client's order, before any delay), and a reply is given to the client only if its id is
 * the oldest still awaited on that connection; any other (late, or ahead of a lost or
 * delayed one) is dropped (stats.udp_unmatched) and the requests concerned time out (the
 * client then fails the rest on that peer, as on a reset: docs/real.md §9).
 *
 * Clock: nanoseconds since cb_realworld_run began (CLOCK_MONOTONIC, the loop's clock).
 * Client timers are found by a scan over the clients (C is small), the loop's single timer
 * is armed at the earliest of them, of the delay queue's head and of the clients' wake
 * times, and never further than CB_REALWORLD_TICK_NS ahead (so a stop flag set by a signal
 * handler is seen promptly).
 *
 * Impairment in user space. The kernel cannot add delay or loss on loopback here, so the
 * driver does, on the client side, in both directions: every message a client sends and
 * every chunk of reply bytes it receives goes through one delay queue and is released at
 * now + latency_ns + a uniform draw in [0, jitter_ns]. A seeded loss draw (loss_ppm, per
 * message and direction) drops a UDP datagram (the client's timer retries) or, over TCP,
 * delays it by retransmit_ns more (the stream stays ordered: a message is never released
 * before the one sent before it on its connection). The round trip thus pays the
 * scenario's one-way latency twice, as in the simulation, on top of the real loopback and
 * server time. All zero: no queue, bytes go straight to the socket and the machine.
 *
 * The delay queue is sized once, at cb_realworld_new, and never grows: with R = clients x
 * outstanding_max, it holds at most R x CB_REALWORLD_DELAY_MSGS_PER_REQUEST messages and
 * R x CB_REALWORLD_DELAY_BYTES_PER_REQUEST bytes, each clamped to the _MIN/_MAX below (so
 * at most CB_REALWORLD_DELAY_BYTES_MAX bytes however large the config). Messages are
 * released in the same order as ever: by release time, ties first queued first. When the
 * queue lacks room, senders wait instead: a client is given no new request (it is woken
 * when the queue's head is released), and a connection stops reading (EPOLLIN off: the
 * kernel's buffers and TCP flow control hold the rest) until a whole read fits again. A
 * message that still finds it full (a retry, a reply chunk) counts in stats.queue_full: a
 * UDP datagram is lost (the request's timer retries); a TCP connection is closed (its
 * requests retry on a new one), as when CB_REALWORLD_OUT_BYTES_MAX is passed.
 *
 * Replication (router set): each client is a cb_router owning the cb_client the world
 * drives, exactly as in cb_memworld: the `next` hook's server is ignored (the router picks
 * replicas by key), `complete` gets the routers' completions, router events reach `event`
 * with the client's node id. A connection refused by a server (nothing listens: it crashed)
 * is reported to the router (cb_router_on_peer_down), which ejects it at once when
 * eject_after > 0; requests in flight to it still end by their timers and fail over.
 *
 * Codec: the clients' codec config (compression, sealing) is the `client` config's. Each
 * client's seal seed is drawn from the OS generator (getrandom), as real drivers must
 * (docs/protocol.md §6.2): a seeded, repeatable seed would reuse nonces under the same key
 * across runs.
 *
 * Connection events: when a server closes a connection (end of stream, a reset), the
 * `event` hook gets a CONN_CLOSED event on the client's node, detail = the server index;
 * refused connects are counted in stats only.
 *
 * Faults (a [faults] timeline), applied when the clock reaches each entry, each reported to
 * the `event` hook at that time (kind CRASH, RECOVER, LINK_CHANGE, PARTITION, HEAL; node:
 * the node, or CB_SGWORLD_NODE_NONE for partition and heal; note: the entry's label and
 * what was done). Meanings follow cb_sgworld's (docs/simulator.md "Faults"), carried out
 * for real or in user space:
 *   - server crash / recover: the server_fault callback (the replay kills the server's
 *     process with SIGKILL, and restarts it, empty, on the same port); the clients learn
 *     of it as real clients do: a reset connection, refused connects, timeouts;
 *   - client crash: its requests in flight are abandoned (outcome ERROR), its connections
 *     closed, it issues nothing until a recover (a never-recovered client is idle); recover:
 *     a new client machine (a new router), the same generator continuing, new connections;
 *   - link: the node's latency, jitter, loss in the user-space delay queue (a message
 *     between client and server has (latency_c + latency_s) / 2, the larger jitter and the
 *     larger loss of its two ends, as in cb_sgworld); bandwidth is not imposed;
 *   - partition: a message between nodes of different groups (both non-zero) is dropped at
 *     send, and on release for those queued before the partition; over TCP the stream
 *     cannot lose bytes, so the connection is also closed (its requests retry on their
 *     timers, as over a reset connection; the next send reconnects); heal ends it.
 *   - queue transport: the broker (node S+C) crashes and recovers through broker_fault, and
 *     its crash closes every client's stream to it; link changes apply per hop and a
 *     partition cuts a client's stream or a server's envelopes (see `broker` above).
 * A timeline with link or partition entries sends everything through the delay queue from
 * the start (with zero delay while nothing is set).
 *
 * Warm resync (resync = CB_RESYNC_WARM, needs `router`): a resyncer, node S + C, warms each
 * recovered server from its peers as cb_sgworld's does (docs/replication.md §6): one
 * cb_resync machine (protocols/cb_resync.h) with the routers' R and placement, its own
 * cb_client (the clients' config and codec, a seal seed from getrandom) and its own TCP
 * connections to every server (UDP with `udp`), through the same delay queue (its link is
 * the config's; it is in no partition group, as in cb_sgworld). A server recover fault
 * queues the server; the resyncer then probes it (a connect every
 * CB_REALWORLD_RESYNC_PROBE_NS) and starts its resync once a connect succeeds, i.e. once
 * the restarted process accepts connections. Over UDP no connect says so: the resync
 * starts once server_ready answers 1 (or at once when it cannot say).
 * One resync at a time, the queued servers in server order; a server that does not accept
 * a connection within CB_REALWORLD_RESYNC_WAIT_NS is given up (stats.resync_given_up).
 * A crash of a queued server takes it off the queue; a resync under way to a server that
 * crashes ends by its requests' timeouts. Its events (RESYNC_START, RESYNC_DONE: peer =
 * the server) and its connections' CONN_CLOSED reach the `event` hook with node S + C;
 * its COMPLETEs go to the resyncer, never to `complete`. It does not keep the run alive (as
 * in cb_sgworld): when the workload is done, a resync under way is cut short; at *stop
 * (after the grace) its requests are abandoned and it starts nothing more.
 *
 * Stop: when *stop becomes non-zero the `next` hook is expected to issue nothing more (the
 * runner does that); requests in flight are waited for up to stop_grace_ns, then the
 * remaining ones are abandoned (cb_client_abandon: they complete with outcome ERROR, i.e.
 * recorded as cancelled).
 */
#ifndef CB_REALWORLD_H
#define CB_REALWORLD_H

#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>

#include "cb_client.h"
#include "cb_placement.h"
#include "cb_resync.h"
#include "cb_router.h"
#include "cb_sgworld.h"
#include "cb_world.h"

/* The longest the loop sleeps without looking at the stop flag. */
#define CB_REALWORLD_TICK_NS 20000000ull
/* Bytes one connection may hold unsent (beyond that it is closed and its requests retry). */
#define CB_REALWORLD_OUT_BYTES_MAX (64u * 1024u * 1024u)
/* The delay queue's size per request in flight (clients x outstanding_max), and its bounds:
 * a request's message, a retry or two and its reply in a few chunks; the byte minimum holds
 * the largest read (a reassembled 2 MiB UDP reply) and a request with a 1 MiB value. */
#define CB_REALWORLD_DELAY_MSGS_PER_REQUEST  8u
#define CB_REALWORLD_DELAY_MSGS_MIN          1024u
#define CB_REALWORLD_DELAY_MSGS_MAX          (1u << 20)
#define CB_REALWORLD_DELAY_BYTES_PER_REQUEST (64u * 1024u)
#define CB_REALWORLD_DELAY_BYTES_MIN         (8u * 1024u * 1024u)
#define CB_REALWORLD_DELAY_BYTES_MAX         (256u * 1024u * 1024u)
/* Warm resync: how often a recovered server is probed, and for how long. */
#define CB_REALWORLD_RESYNC_PROBE_NS 1000000ull
#define CB_REALWORLD_RESYNC_WAIT_NS  5000000000ull

typedef struct cb_realworld cb_realworld;

typedef struct cb_realworld_config {
    uint32_t server_count;
    uint32_t client_count;
    const struct sockaddr_in *servers; /* server_count TCP (or UDP) addresses; copied */
    int udp;                           /* 1: memcached UDP framing; 0: TCP */
    cb_client_config client;           /* peer_count is set to server_count */
    uint64_t latency_ns;               /* one-way, added in each direction */
    uint64_t jitter_ns;                /* uniform extra delay in [0, jitter_ns] */
    uint32_t loss_ppm;                 /* per message and direction */
    uint64_t retransmit_ns;            /* TCP: what a lost message costs */
    uint64_t seed;                     /* the clients' and the impairment's draws */
    volatile sig_atomic_t *stop;       /* NULL: never */
    /* Queue transport (docs/real.md §10.3): non-NULL, every client keeps one TCP connection to
     * this broker instead of one per server, SUBSCRIBEs as node server_count + client index
     * and PUBLISHes each request to the server's node (its index); binary TCP only. The
     * broker is node server_count + client_count (in faults). The impairment applies to the
     * client-broker stream, which stands for two hops: an envelope to or from server s is
     * delayed by hop(client, broker) + hop(broker, s) (latency_ns and jitter_ns each, so 2x
     * the config's without link faults; one loss draw at the larger hop loss), an envelope
     * of the broker's own (SUBSCRIBE, ACK) by the first hop only; with impairment the
     * broker's stream is cut into whole envelopes before the delay. A partition between a
     * client and the broker cuts (resets) its stream; between the broker and a server, only
     * the envelopes to and from that server are lost. */
    const struct sockaddr_in *broker;
    uint64_t stop_grace_ns;            /* after *stop, wait this long for in-flight requests */
    /* Replication: NULL for none. Else each client is a cb_router with this config over
     * `placement` (node ids = server indexes), as in cb_memworld: its `client` is replaced by
     * the `client` above, ops_max raised to at least outstanding_max, writer_id set to the
     * client index. The router config is read by cb_realworld_new only; the placement must
     * outlive the world. */
    const cb_router_config *router;
    const cb_placement *placement;
    /* cb_resync_policy: CB_RESYNC_LAZY (0) or CB_RESYNC_WARM (needs `router`, not the queue
     * transport): see "Warm resync" above. */
    uint32_t resync;
    /* Faults: a timeline in cb_sgworld's form (sim/cb_sgfaults builds it from a plan; node
     * ids: servers 0..S-1, clients S..S+C-1), in non-decreasing at_ns order, read during
     * the run (it, its groups and labels must outlive it). See "Faults" above. */
    const cb_sgworld_fault *faults;
    size_t fault_count;
    /* Crash (up = 0) or restart (up = 1) server `server` for real: the world does not own the
     * servers. Returns 0, or -1 when it could not (the fault is still logged, with the
     * note). Writes what it did into note[0..note_cap) (for the event's detail). Required
     * when the timeline crashes or recovers a server. */
    int (*server_fault)(void *user, uint32_t server, int up, char *note, size_t note_cap);
    /* The same for the queue transport's broker (required when the timeline crashes or
     * recovers it). On its crash the world also closes every client's connection to it
     * (what was in flight to and from it is lost); the clients reconnect and SUBSCRIBE again
     * with their next send (refused while it is down: the requests' timers decide). */
    int (*broker_fault)(void *user, int up, char *note, size_t note_cap);
    /* Warm resync over udp (fault_user's): is restarted server `server` listening? 1 yes,
     * 0 not yet, -1 cannot say; NULL: cannot say. Over tcp a connect answers that. */
    int (*server_ready)(void *user, uint32_t server);
    void *fault_user;
} cb_realworld_config;

typedef struct cb_realworld_stats {
    uint64_t delayed;      /* messages and chunks through the delay queue */
    uint64_t lost_dropped; /* UDP datagrams dropped by the loss draw */
    uint64_t lost_delayed; /* TCP messages delayed by retransmit_ns by the loss draw */
    uint64_t connects;     /* connections opened (first ones and reconnects) */
    uint64_t connect_failures;
    uint64_t udp_bad;    /* reply datagrams that could not be reassembled */
    uint64_t udp_unmatched; /* text over UDP: replies not for the oldest request (dropped) */
    uint64_t abandoned;  /* requests cancelled at stop */
    uint64_t queue_full; /* messages that found the delay queue full (see above) */
    uint64_t nacked;     /* queue transport: PUBLISHes the broker refused (the client retries) */
    uint64_t peer_closed; /* connections the server closed or reset (CONN_CLOSED events) */
    uint64_t faults;      /* timeline entries applied */
    uint64_t cut;         /* messages dropped by a partition (a TCP one also closes) */
    uint64_t resync_probes;   /* resync = warm: probes of a recovered server (tcp: connects;
                               * udp: server_ready asked) */
    uint64_t resync_given_up; /* recovered servers that never answered a probe */
    cb_resync_stats resync;   /* the resyncer's (zero unless resync = warm) */
} cb_realworld_stats;

/* Returns CB_ERR_OK, CB_ERR_INVALID (no servers or clients, a bad client config, resync =
 * warm without a router or with the queue transport) or
 * CB_ERR_NOMEM. Opens no socket yet. */
int cb_realworld_new(const cb_realworld_config *cfg, cb_realworld **out);
void cb_realworld_del(cb_realworld *w);

/*
 * Connect and run until the workload is done (nothing in flight, nothing queued, no client
 * with a wake time) or the clock passes until_ns. Returns CB_ERR_OK, CB_ERR_NOMEM, or
 * CB_ERR_INVALID when a hook asked for something impossible or the loop failed.
 */
int cb_realworld_run(cb_realworld *w, const cb_world_hooks *hooks, uint64_t until_ns);

/* Replace the config's stop flag (before cb_realworld_run). */
void cb_realworld_set_stop(cb_realworld *w, volatile sig_atomic_t *stop);

uint64_t cb_realworld_now_ns(const cb_realworld *w);
void cb_realworld_get_stats(const cb_realworld *w, cb_realworld_stats *out);

#endif
