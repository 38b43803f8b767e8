/*
 * cb_memworld.h: cache servers and clients wired together over the in-memory network.
 *
 * The smallest complete driver: it owns S cb_server and C cb_client machines and one
 * cb_memnet, keeps the clock, turns SEND actions into messages, feeds delivered messages and
 * expired timers back into the machines, and reports completions, events and every action
 * through hooks. The SimGrid and socket drivers do the same job against a real model and
 * real sockets; this one makes unit-speed end-to-end tests and the pre-simulator
 * `cachebed run` possible.
 *
 * Node ids: servers are 0..S-1, clients S..S+C-1. A client addresses server s as its peer s;
 * a server sees each client node id as its connection id.
 *
 * Workload: whenever client c has fewer than outstanding_max requests in flight and its wake
 * time has come, the `next` hook is asked for its next operation. The hook either returns
 * one (the world submits it at once) or says when to ask again: at a time (think time, the
 * next open-loop arrival) or not before one of c's requests completes. Every completion
 * makes c eligible again. The run ends when nothing is in flight, the network is empty and
 * no client has a wake time, or when the clock passes until_ns.
 *
 * Replication: with `router` set, each client is a cb_router (docs/replication.md) over
 * `placement`, owning the client the world drives; the `next` hook's server is ignored (the
 * router picks replicas by key), its completions are the routers' (one per operation), and
 * router events reach the `event` hook with the client's node id. Without it (replicas = 1)
 * nothing changes.
 *
 * Crashes: cb_memworld_crash (or a CRASH fault of the config's schedule) drops a server's
 * state: it is replaced at once by a fresh, empty cb_server, every message in flight to or
 * from it is dropped, and so is every message delivered to it until cb_memworld_recover (or
 * a RECOVER fault) brings it back, still empty. Clients learn of it only by timeouts. With
 * resync = warm, the recovery queues the server for the resyncer, which starts at the next
 * step of the run (one server at a time, in server order).
 */
#ifndef CB_MEMWORLD_H
#define CB_MEMWORLD_H

#include <stdint.h>

#include "cb_client.h"
#include "cb_memnet.h"
#include "cb_placement.h"
#include "cb_resync.h"
#include "cb_router.h"
#include "cb_server.h"
#include "cb_world.h"

typedef struct cb_memworld cb_memworld;

typedef enum {
    CB_MEMWORLD_CRASH = 1,
    CB_MEMWORLD_RECOVER = 2,
    CB_MEMWORLD_PARTITION = 3, /* `groups` replaces any partition in force */
    CB_MEMWORLD_HEAL = 4,      /* the partition ends */
} cb_memworld_fault_kind;

/*
 * A scheduled fault: applied when the clock reaches at_ns, before that instant's messages,
 * and reported to the event hook (kind CRASH, RECOVER, PARTITION or HEAL; node the server,
 * or UINT32_MAX for partition and heal; note the label). A partition gives each of the
 * S + C nodes a group (0: in none, reaches every node); a message between nodes of two
 * different groups is dropped when sent and, if it was in flight when the partition began,
 * when it arrives (counted in cb_memworld_dropped). The resyncer is in no group.
 */
typedef struct cb_memworld_fault {
    uint64_t at_ns;
    uint32_t server;       /* crash, recover */
    uint32_t kind;         /* cb_memworld_fault_kind */
    const uint8_t *groups; /* partition: S + C entries, valid until the world is deleted */
    const char *label;     /* NULL, or the event's note; valid until the world is deleted */
} cb_memworld_fault;

typedef struct cb_memworld_config {
    uint32_t server_count;
    uint32_t client_count;
    cb_server_config server;             /* every server's, unless server_each is set */
    const cb_server_config *server_each; /* NULL, or server_count configs (copied) */
    cb_client_config client;             /* peer_count is set to server_count */
    cb_memnet_config net;
    uint64_t seed; /* the run's root seed: the network and each client draw sub-seeds */
    /* Replication: NULL for none. Else each client is a router with this config (its
     * `client` is replaced by the `client` above, ops_max raised to at least the client's
     * outstanding_max, writer_id set to the client index) over `placement`, whose node ids
     * are server indexes; both are read during cb_memworld_new only, except the placement,
     * which must outlive the world. */
    const cb_router_config *router;
    const cb_placement *placement;
    /* Faults, sorted by at_ns (copied; CB_ERR_INVALID when unsorted or naming a server
     * that does not exist). */
    const cb_memworld_fault *faults;
    size_t fault_count;
    /* Resync of a recovered server (cb_resync_policy): CB_RESYNC_LAZY (0) leaves it to read
     * repair; CB_RESYNC_WARM (needs `router`) adds a resyncer node, id S + C, that warms each
     * recovered server from its peers (docs/replication.md §6). Its client uses the `client`
     * config above, its R is the router's; its events reach the `event` hook with node S + C
     * (its COMPLETEs go to the resyncer, never to the `complete` hook). */
    uint32_t resync;
} cb_memworld_config;

/* Returns CB_ERR_OK, CB_ERR_INVALID (no servers/clients, a bad machine config) or
 * CB_ERR_NOMEM. */
int cb_memworld_new(const cb_memworld_config *cfg, const cb_alloc *alloc, cb_memworld **out);
void cb_memworld_del(cb_memworld *w);

/*
 * Run until the workload is done or the clock reaches until_ns. Returns CB_ERR_OK, or an
 * error a machine or the network returned that the driver cannot handle (CB_ERR_NOMEM...).
 */
int cb_memworld_run(cb_memworld *w, const cb_world_hooks *hooks, uint64_t until_ns);

/* The clock: nanoseconds since the run began. */
uint64_t cb_memworld_now_ns(const cb_memworld *w);

cb_client *cb_memworld_client(cb_memworld *w, uint32_t client);
/* Client `client`'s router; NULL without replication. */
cb_router *cb_memworld_router(cb_memworld *w, uint32_t client);

/*
 * Crash server `server` now (see "Crashes" above), or bring it back (empty). Crashing a
 * crashed server or recovering a running one changes nothing. Returns CB_ERR_OK,
 * CB_ERR_INVALID (no such server) or CB_ERR_NOMEM (the fresh server could not be made; the
 * server stays crashed).
 */
int cb_memworld_crash(cb_memworld *w, uint32_t server);
int cb_memworld_recover(cb_memworld *w, uint32_t server);
/* 1 while `server` is crashed, else 0. */
int cb_memworld_is_down(const cb_memworld *w, uint32_t server);
/* Messages dropped because their destination was crashed when they arrived. */
uint64_t cb_memworld_dropped(const cb_memworld *w);
cb_server *cb_memworld_server(cb_memworld *w, uint32_t server);
/* The resyncer (CB_RESYNC_WARM), else NULL. */
cb_resync *cb_memworld_resync(cb_memworld *w);
cb_memnet *cb_memworld_net(cb_memworld *w);

#endif
