/*
 * cb_sgworld.h: cache servers and clients wired together inside SimGrid (3.32, C API).
 *
 * The simulated world of DESIGN.md: the same machines as cb_memworld (S cb_server, C
 * cb_client), the same hooks and the same closed-loop workload, but messages cross a SimGrid
 * platform that models latency and bandwidth, and the clock is SimGrid's. A scenario runs on
 * either world by filling cb_memworld_config or cb_sgworld_config and the same hooks.
 * docs/simulator.md explains the design; the short version:
 *
 * Platform: a star. Node i runs on host "h<i>", which has one split-duplex link to the
 * centre, with latency latency_ns / 2 and bandwidth bandwidth_bps in each direction. A
 * message crosses two links (the sender's UP, the receiver's DOWN), so its one-way latency
 * is latency_ns, and with nothing else in flight it arrives after
 *     latency_ns + wire_bytes * 8 / bandwidth_bps
 * (SimGrid's fluid model: the transfer is paced by the bottleneck link once, not once per
 * link, there is no store-and-forward). Network model CM02 with TCP-gamma 0 and crosstraffic
 * off, so that holds exactly (tests/test_cb_sgworld.c proves it).
 *
 * Node ids: servers are 0..S-1, clients S..S+C-1, as in cb_memworld; then the extra nodes:
 * the queue transport's broker (S+C), then the warm resyncer (S+C, or S+C+1 after the
 * broker), each on its own host h<id>.
 *
 * Queue transport (CB_SGWORLD_QUEUE, docs/simulator.md "Queue transport"): one more node,
 * the broker, id S+C on host "h<S+C>", runs a cb_broker (config `broker`). Every server and
 * client talks only to it, through a cb_qendpoint: a machine's SEND becomes PUBLISH
 * envelopes to the broker, the broker's DELIVERs are fed to the machine as bytes from their
 * source, and ACKed. Links to the broker behave as TCP (loss costs rto_ns, in order). An
 * endpoint SUBSCRIBEs when its machine is made (start, recovery) and again when the broker
 * recovers. A crashed broker loses its queues (it is not durable); clients time out and
 * retry. A crashed endpoint's stream closes at the broker at once (as a TCP reset would),
 * which requeues its unacknowledged deliveries.
 *
 * Messages: every SEND action becomes one SimGrid message whose payload is a heap copy of the
 * frame bytes and whose simulated size is cb_sgworld_wire_bytes() of their length (frame
 * bytes + per-packet headers). Loss is drawn per message from the sender's own seeded
 * cb_rng (SimGrid has no loss model): over UDP a lost message is dropped; over TCP it is
 * delayed by rto_ns instead, and later messages on the same connection wait behind it; a
 * client's first message on a connection (and its first after the connection broke) waits
 * one more round trip, the SYN/SYN-ACK exchange, itself subject to loss. An
 * optional jitter delays each message by a further uniform draw from the same generator;
 * over TCP it never lets a message overtake an earlier one on its connection.
 *
 * Workload: as cb_memworld. Whenever client c has fewer than outstanding_max requests in
 * flight and its wake time has come, the `next` hook is asked for its next operation; it
 * returns one (the world submits it at once) or says when to ask again: at a time, or not
 * before one of c's own requests completes. Every completion makes c eligible again. A
 * client is idle when it has nothing in flight, no message waiting to be posted and no wake
 * time; the run ends when every client is idle, or when the clock reaches until_ns.
 *
 * Replication: with `router` set, each client node runs a cb_router (docs/replication.md)
 * owning the cb_client the world drives, exactly as in cb_memworld: the `next` hook's
 * server is ignored (the router picks replicas by key), operations go to cb_router_submit,
 * the client's completions to cb_router_on_completion, and the router's completions (one
 * per operation) and events (with the client's node id) to the hooks. The router's clock
 * (ejections, probes) is the node's.
 *
 * Codecs: the client and server configs' `codec` (compression, sealing) is used as given,
 * except the seal seed: each node gets its own, derived from the run's seed, the configured
 * seed and the node id (as cb_memworld does), and a new one for every incarnation after a
 * crash, so no nonce is ever reused under the same key (docs/protocol.md §6.2).
 *
 * Faults: an optional timeline of crashes, recoveries, link changes, partitions and heals,
 * applied at their simulated times by the first node step at or after each (every node
 * wakes at every entry's time; docs/simulator.md, "Faults"). A
 * crashed node is down in the driver (its host stays on in SimGrid): its machine is gone,
 * messages to it, from it or still in flight are dropped, and a recovered node starts with a
 * fresh machine (a server comes back empty; with resync = warm a resyncer node then copies
 * its items back from its peers). Each fault is reported to the event hook.
 *
 * One simulation per process: SimGrid cannot be reset, so cb_sgworld_run may be called once
 * per process. Run several simulations by forking a child per run (tests, bench, sweeps).
 */
#ifndef CB_SGWORLD_H
#define CB_SGWORLD_H

#include <stddef.h>
#include <stdint.h>

#include "cb_broker.h"
#include "cb_client.h"
#include "cb_placement.h"
#include "cb_resync.h"
#include "cb_router.h"
#include "cb_server.h"
#include "cb_world.h"

typedef struct cb_sgworld cb_sgworld;

typedef enum {
    CB_SGWORLD_TCP = 1,   /* reliable: a lost message costs rto_ns of extra delay */
    CB_SGWORLD_UDP = 2,   /* a lost message is dropped; the client retries on timeout */
    CB_SGWORLD_QUEUE = 3, /* through a broker node, over TCP-like links (see below) */
} cb_sgworld_transport;

/*
 * Per-packet overheads, in bytes on the wire, added to the frame bytes of each message
 * (docs/simulator.md §Transports). Ethernet: 14 header + 4 FCS + 8 preamble + 12 inter-frame
 * gap = 38, since bandwidth_bps is the line rate.
 */
#define CB_SGWORLD_ETHERNET_BYTES     38u
#define CB_SGWORLD_TCP_OVERHEAD_BYTES (20u + 20u + CB_SGWORLD_ETHERNET_BYTES)     /* IP, TCP */
#define CB_SGWORLD_UDP_OVERHEAD_BYTES (20u + 8u + 8u + CB_SGWORLD_ETHERNET_BYTES) /* +memcached */
/* Frame bytes per packet: the TCP MSS of a 1500 B MTU, and memcached's 1400 B UDP payload
 * less its 8 B frame header. */
#define CB_SGWORLD_TCP_PAYLOAD_BYTES 1460u
#define CB_SGWORLD_UDP_PAYLOAD_BYTES 1392u

/* Fault kinds of a timeline entry. */
typedef enum {
    CB_SGWORLD_FAULT_CRASH = 1,     /* `node` goes down: machine, queues, in-flight messages lost */
    CB_SGWORLD_FAULT_RECOVER = 2,   /* `node` comes back with a fresh machine (no-op if up) */
    CB_SGWORLD_FAULT_LINK = 3,      /* `node`'s link changes: the link_set fields */
    CB_SGWORLD_FAULT_PARTITION = 4, /* `groups` replaces any partition in force */
    CB_SGWORLD_FAULT_HEAL = 5,      /* the partition ends (link changes stay) */
} cb_sgworld_fault_kind;

/* Bits of cb_sgworld_fault.link_set: which link settings a LINK fault changes. */
enum {
    CB_SGWORLD_LINK_LATENCY = 1u << 0,
    CB_SGWORLD_LINK_JITTER = 1u << 1,
    CB_SGWORLD_LINK_BANDWIDTH = 1u << 2,
    CB_SGWORLD_LINK_LOSS = 1u << 3,
};

/* The event hook's node for faults of the whole network (partition, heal). */
#define CB_SGWORLD_NODE_NONE UINT32_MAX

/*
 * One timeline entry. Link settings are per node and mean what the config's do for the whole
 * network (docs/simulator.md, "Faults"):
 *   latency_ns     the node's link carries latency_ns / 2 each way (SimGrid link latency),
 *                  so setting it on every node is the same as the config's latency_ns;
 *   bandwidth_bps  the node's link, each direction (SimGrid link bandwidth); > 0;
 *   jitter_ns      a message's jitter bound is the larger of its two ends'; <= 2^40;
 *   loss_ppm       a message's loss probability is the larger of its two ends'; <= 10^6.
 */
typedef struct cb_sgworld_fault {
    uint64_t at_ns;        /* simulated time; entries are in non-decreasing at_ns order */
    uint8_t kind;          /* cb_sgworld_fault_kind */
    uint32_t node;         /* crash, recover, link: the world node id */
    const uint8_t *groups; /* partition: node_count entries; 0 = in no group (reaches every
                              node), else the node's group; nodes in different groups cannot
                              exchange messages */
    uint32_t link_set;     /* link: CB_SGWORLD_LINK_* bits */
    uint64_t latency_ns;
    uint64_t jitter_ns;
    uint64_t bandwidth_bps;
    uint32_t loss_ppm;
    const char *label; /* NULL, or text passed as the event's note (the scenario line) */
} cb_sgworld_fault;

typedef struct cb_sgworld_config {
    uint32_t server_count;               /* >= 1 */
    uint32_t client_count;               /* >= 1 */
    cb_server_config server;             /* every server's, unless server_each is set;
                                            conn_max is set to server_count + client_count */
    const cb_server_config *server_each; /* NULL, or server_count configs (read only
                                            while the run starts; conn_max set as above) */
    cb_client_config client;             /* peer_count is set to server_count */
    uint64_t latency_ns;    /* one-way, between any two nodes; each host link has half */
    uint64_t bandwidth_bps; /* bits per second of each host link, each direction; > 0 */
    uint32_t loss_ppm;      /* per-message loss probability, in millionths; <= 10^6 */
    uint8_t transport;      /* cb_sgworld_transport */
    uint64_t rto_ns;        /* TCP: extra delay of a lost message; 0 picks 200 ms */
    uint64_t jitter_ns;     /* extra delay of every message, uniform in [0, jitter_ns], drawn
                               from the sender's loss rng; TCP keeps each connection in order.
                               0: none; <= 2^40 (about 18 minutes) */
    uint32_t packet_overhead_bytes; /* headers per packet; 0 picks the transport's default */
    uint32_t packet_payload_bytes;  /* frame bytes per packet; 0 picks the transport's */
    uint64_t seed; /* root seed: each client machine's rng and each node's loss rng split off */
    const char *context_factory;    /* SimGrid contexts/factory: NULL = "raw" (fastest); the
                                       sanitizer tests use "thread" (SIMGRID-NOTES.md §7) */
    const char *log_threshold;      /* SimGrid root log threshold: NULL = "critical" */
    const cb_sgworld_fault *faults; /* NULL, or fault_count entries; they (and their groups
                                       and labels) must stay valid until the run returns */
    size_t fault_count;
    /* Replication: NULL for none. Else each client node runs a cb_router with this config
     * (copied; its `client` is replaced by `client` above, ops_max raised to at least the
     * client's outstanding_max, writer_id set to the client index) over `placement`, whose
     * node ids are server indexes and which must outlive the run. */
    const cb_router_config *router;
    const cb_placement *placement;
    /* Queue transport: the broker's config (conn_max and node_max are set by the world). */
    cb_broker_config broker;
    /* Resync of a recovered server (cb_resync_policy): CB_RESYNC_LAZY (0) leaves it to read
     * repair; CB_RESYNC_WARM (needs `router`) adds a resyncer node, id S + C (S + C + 1
     * with the queue transport, after the broker), on its own host h<id>, that warms each
     * recovered server from its peers (docs/replication.md §6), as cb_memworld does. Its
     * client uses `client` above, its R is the router's; with the queue transport it has a
     * cb_qendpoint like a client's, so its SCANs and SETs go through the broker. Its
     * events reach the event hook with its node id, its COMPLETEs go to the resyncer. It
     * is in no partition group and no fault names it; it does not keep the run alive. */
    uint32_t resync;
    /* NULL: the star above. Else the path of a user's SimGrid platform XML, loaded instead;
     * latency_ns and bandwidth_bps are then unused (the file's links count) and nodes map
     * onto its hosts (docs/simulator.md, "A platform file"): by name when it has hosts
     * server0.. and client0.. (and broker, resync), else in host-name order, servers first.
     * LINK faults may change loss and jitter only. */
    const char *platform;
} cb_sgworld_config;

/* Defaults: 1 server, 1 client, machine defaults, 0.5 ms one way, 1 Gbit/s, no loss, TCP,
 * 200 ms RTO, no jitter, the transport's overheads, seed 1, raw contexts, critical logs only. */
cb_sgworld_config cb_sgworld_config_default(void);

typedef struct cb_sgworld_stats {
    uint64_t end_ns;            /* simulated time when the run ended */
    uint64_t messages_sent;     /* SEND actions (and CLOSE notices) handed to the network */
    uint64_t messages_lost;     /* UDP: dropped by the loss draw */
    uint64_t messages_delayed;  /* TCP: lost and retransmitted after rto_ns */
    uint64_t messages_hol;      /* TCP: held behind an earlier message on their connection */
    uint64_t connects;          /* TCP: connections set up (a client's first message to a
                                   server, and its first after the connection broke) */
    uint64_t syn_retries;       /* TCP: SYN or SYN-ACK lost, the SYN sent again after rto_ns */
    uint64_t messages_jittered; /* given a non-zero jitter delay */
    uint64_t messages_received; /* delivered and fed to a machine */
    uint64_t messages_faulted;  /* dropped by a fault: to or from a down node, sent before
                                   a crash of either end, or across a partition */
    uint64_t faults_applied;    /* timeline entries applied before the run ended */
    uint64_t frame_bytes_sent;  /* real frame bytes of the messages sent */
    uint64_t wire_bytes_sent;   /* simulated bytes: frame bytes + packet headers */
    uint64_t timer_wakeups;     /* times a node woke for a deadline, not a message */
    cb_client_stats clients;    /* summed over the clients (with replication: the
                                   routers' clients, i.e. sub-requests) */
    cb_router_stats routers;    /* summed over the routers (zero without replication) */
    cb_resync_stats resync;     /* the resyncer's (zero unless resync = warm) */
    uint64_t server_requests;   /* summed cb_server_stats.requests */
    uint64_t server_replies;    /* summed cb_server_stats.replies */
    cb_broker_stats broker;     /* queue transport: summed over the broker's incarnations
                                   (depth_max: the largest of them) */
    uint64_t queue_nacks;       /* queue transport: NACKs the endpoints received */
} cb_sgworld_stats;

/*
 * Simulated bytes of a message of `frame_bytes` frame bytes under `cfg`'s transport:
 * frame_bytes + packets * overhead, packets = max(1, ceil(frame_bytes / payload bytes)).
 */
uint64_t cb_sgworld_wire_bytes(const cb_sgworld_config *cfg, size_t frame_bytes);

/*
 * The hooks are cb_world_hooks (cb_world.h). A fault of the timeline reaches the event hook
 * when applied: kind CRASH..LINK_CHANGE, now_ns its at_ns, e->note its label, node
 * CB_SGWORLD_NODE_NONE for partition and heal.
 */

/*
 * Initialise SimGrid, build the platform, run the workload until every client is idle or the
 * clock reaches until_ns (requests still in flight then get no completion), free everything
 * and fill *stats (may be NULL). Returns
 *   CB_ERR_OK;
 *   CB_ERR_INVALID  a config value out of range (as a machine's _new would say; a fault out of
 *                   order, naming no node, or with a setting out of range), or a second
 *                   call in this process (SimGrid runs one simulation per process; the
 *                   message on stderr says to fork);
 *   CB_ERR_NOMEM    allocation failed (nothing leaked);
 *   another cb_err  a machine returned an error the driver cannot handle, or
 *                   cb_client_request refused an op a `next` hook returned (a bad server,
 *                   a bad op: its error); the first one wins and the run stops at once.
 */
int cb_sgworld_run(const cb_sgworld_config *cfg, const cb_world_hooks *hooks, uint64_t until_ns,
                   cb_sgworld_stats *stats);

#endif
