/*
 * cb_router.h: replication over a cb_client — the sans-IO machine between an application and
 * the replicas of each key (docs/replication.md is the design and its rationale).
 *
 * The application submits operations with a key, as it would to a cb_client, but without a
 * server: the router looks the key up in the placement (a preference list of R replicas plus
 * `spares` failover candidates), sends sub-requests through the cb_client it owns, and
 * combines their outcomes under the configured policies into exactly one COMPLETE action per
 * operation:
 *
 *   writes  ALL            every one of R replicas must acknowledge;
 *           QUORUM         W = R/2 + 1 acknowledgements; the rest continue in the background;
 *           PRIMARY_ASYNC  the first replica's acknowledgement completes the write, which is
 *                          then copied to R - 1 others (PROPAGATE events report each copy).
 *   reads   PRIMARY        the first usable replica only, no failover;
 *           ANY            the first usable replica, failing over to the next on a timeout;
 *           QUORUM         Q = R/2 + 1 answers, the newest version wins; replicas that answered
 *                          older versions (or missed) are reported (STALE_READ) and, with
 *                          read_repair, written back the newest value (READ_REPAIR).
 *
 * SET carries a version the router assigns, (clock << 16) | writer_id, where the clock is a
 * hybrid logical clock: max(last + 1, now_ns, newest clock seen in replies). Servers apply it
 * last-writer-wins (docs/protocol.md §3.1). DELETE carries a version from the same clock
 * and leaves a tombstone on the replicas, so an older SET cannot bring the key back; a
 * quorum read orders a tombstone's miss against other answers by version. Other keyed ops
 * are replicated by the write policy without versions (docs/replication.md §4 says what
 * that does not guarantee).
 *
 * Failover and ejection: a sub-request that times out goes to the next candidate not yet
 * tried (while the operation still waits). A node with eject_after consecutive failures is
 * ejected: skipped by every lookup for eject_for_ns; then the next request that would use it
 * is let through as a probe (PROBE event, detail 0) while others keep skipping it; a reply
 * brings it back (PROBE detail 1), a timeout ejects it again (PROBE detail -1). Ejection is
 * the router's own view (mcrouter's per-proxy TKO), applied as a filter on the shared,
 * read-only placement: lookup with the node marked down gives the same list.
 *
 * Driver contract: the driver owns the network and the clock. It feeds bytes, resets and
 * timers to cb_router_client(r) exactly as to a plain client, sends that client's SEND
 * actions, and hands every COMPLETE action the client emits to cb_router_on_completion
 * instead of the application. The application's COMPLETE and EVENT actions come out of
 * cb_router_drain. The router has no timers of its own (ejections end lazily, at the next
 * call whose now_ns is past them).
 *
 * Events (detail): FAILOVER (the node that failed; peer = the next one), EJECT (consecutive
 * failures), PROBE (0 sent, 1 passed, -1 failed), STALE_READ (0: a replica was behind the
 * value returned; 1: a later answer was newer than the value already returned), READ_REPAIR
 * and PROPAGATE (the copy's cb_outcome). Events are best effort (a full outbox drops them;
 * cb_router_stats always counts); completions are never dropped.
 *
 * Memory: everything is allocated by cb_router_new, sized by ops_max, except each operation
 * slot's value buffer, which grows to the largest value the slot has held (like cb_client's
 * frame buffers) and is kept for reuse. Determinism: no floats, no clock, decisions follow
 * preference-list order and slot order only.
 */
#ifndef CB_ROUTER_H
#define CB_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "cb_alloc.h"
#include "cb_client.h"
#include "cb_outbox.h"
#include "cb_placement.h"
#include "cb_rng.h"

/* Largest replication factor; R + spares <= CB_PLACEMENT_LIST_MAX. */
#define CB_ROUTER_REPLICAS_MAX 8u
/* Largest writer id: versions keep it in their low 16 bits. */
#define CB_ROUTER_WRITER_ID_MAX 0xFFFFu

typedef enum {
    CB_ROUTER_READ_PRIMARY = 0,
    CB_ROUTER_READ_ANY = 1,
    CB_ROUTER_READ_QUORUM = 2,
} cb_router_read_policy;

typedef enum {
    CB_ROUTER_WRITE_ALL = 0,
    CB_ROUTER_WRITE_QUORUM = 1,
    CB_ROUTER_WRITE_PRIMARY_ASYNC = 2,
} cb_router_write_policy;

/* A node's health in the router's view (cb_router_node_state). */
typedef enum {
    CB_ROUTER_NODE_UP = 0,
    CB_ROUTER_NODE_EJECTED = 1, /* skipped until its ejection ends */
    CB_ROUTER_NODE_PROBING = 2, /* ejection over: one request is (or may be) its probe */
} cb_router_node_state;

typedef struct cb_router_config {
    uint32_t replicas;     /* R, 1..CB_ROUTER_REPLICAS_MAX */
    uint32_t spares;       /* failover candidates beyond R; R + spares <= CB_PLACEMENT_LIST_MAX */
    uint32_t read_policy;  /* cb_router_read_policy */
    uint32_t write_policy; /* cb_router_write_policy */
    uint32_t read_repair;  /* 1: quorum reads write the newest value back to stale replicas */
    uint32_t ops_max;      /* application operations at once (including finished operations
                            * whose background sub-requests still run); 1..65536 */
    uint32_t eject_after;  /* consecutive failures that eject a node; 0: never eject */
    uint64_t eject_for_ns; /* how long an ejection lasts before the probe */
    uint32_t writer_id;    /* 0..CB_ROUTER_WRITER_ID_MAX, unique among routers */
    /* The owned client's settings (timeouts, retries, value limit). peer_count must cover
     * every node id of the placement; outstanding_max and outbox_actions are set by the
     * router (ops_max times the sub-requests one operation may need). */
    cb_client_config client;
} cb_router_config;

/* R = 1, 2 spares, read ANY, write ALL, no repair, 64 operations, eject after 3 failures
 * for 1 s, writer 0, cb_client_config_default(). */
cb_router_config cb_router_config_default(void);

typedef struct cb_router cb_router;

typedef struct cb_router_stats {
    uint64_t ops;          /* submitted */
    uint64_t completed;    /* COMPLETE actions emitted (== ops once all are done) */
    uint64_t sub_requests; /* sent through the client, all kinds */
    uint64_t failovers;    /* sub-requests re-sent to the next candidate */
    uint64_t ejections;    /* nodes ejected (also after a failed probe) */
    uint64_t probes, probes_passed, probes_failed;
    uint64_t no_node;        /* operations that found no usable candidate (outcome ERROR) */
    uint64_t stale_replicas; /* quorum answers older than the value returned */
    uint64_t stale_returned; /* quorum reads that returned a value older than a later answer */
    uint64_t repairs, repairs_failed;           /* read-repair writes sent, and lost */
    uint64_t propagations, propagations_failed; /* primary_async copies sent, and lost */
    uint64_t superseded; /* versioned write replies that named a newer version */
} cb_router_stats;

/*
 * Create a router over `placement` (read only; it must outlive the router, and its node ids
 * must be < cfg->client.peer_count) and its own client, drawing the client's jitter from
 * `rng` (which must outlive the router). Returns CB_ERR_OK with *out set; CB_ERR_INVALID (a
 * config value out of range, R larger than the placement's node count, a NULL argument);
 * CB_ERR_NOMEM (nothing leaked).
 */
int cb_router_new(const cb_router_config *cfg, const cb_placement *placement, cb_rng *rng,
                  const cb_alloc *alloc, cb_router **out);

/* Free the router, its client and its buffers. NULL is a no-op. */
void cb_router_del(cb_router *r);

/* The client the router sends through: the driver feeds it bytes, resets and timers and
 * sends its SEND actions; its COMPLETE actions go to cb_router_on_completion. */
cb_client *cb_router_client(cb_router *r);

/*
 * Submit `op` (any keyed op; its views are copied) at now_ns. On success *request_id (if not
 * NULL) gets the router's id for it, also found in its COMPLETE. Returns
 *   CB_ERR_OK;
 *   CB_ERR_BUSY     ops_max operations are in the router (wait for completions);
 *   CB_ERR_FULL     the router's outbox is too full to promise a completion: drain first;
 *   CB_ERR_INVALID  an unknown op, a keyless op (FLUSH, STATS, NOOP), quiet set, a value on
 *                   an op that takes none;
 *   CB_ERR_KEY_TOO_LONG, CB_ERR_VALUE_TOO_LARGE  limits (the client's value_bytes_max);
 *   CB_ERR_NOMEM    the slot's value buffer could not grow.
 * Nothing is queued on error. An operation for which no candidate is usable completes at
 * once with outcome ERROR (stats.no_node).
 *
 * The COMPLETE carries the operation's user_data and op; its outcome is the combined one
 * (write: the first acknowledging replica's in preference order, or TIMEOUT/ERROR when too
 * few acknowledged; read: the answer chosen). peer is the node whose reply was used;
 * attempts, bytes_sent and bytes_received sum the sub-requests sent until then; number is
 * the version written (SET, DELETE) or read (GET: the item's, 0 for an unversioned item; a
 * miss: its tombstone's, 0 for none), the new value for INCR/DECR. A GET hit's value stays valid
 * until the next call into the router other than cb_router_drain.
 */
int cb_router_submit(cb_router *r, const cb_client_op *op, uint64_t now_ns, uint32_t *request_id);

/*
 * A COMPLETE action the router's client emitted. Returns CB_ERR_OK, or CB_ERR_INVALID when
 * it is not one of the router's sub-requests (nothing changes). May send new sub-requests
 * (failover, repair, propagation) through the client: drain the client afterwards.
 */
int cb_router_on_completion(cb_router *r, const cb_completion *c, uint64_t now_ns);

/*
 * The driver learned that `node` is unreachable (a refused connection): eject it now, as
 * if it had failed eject_after times (nothing happens when eject_after is 0). Requests in
 * flight to it still end by their timers. Returns CB_ERR_OK or CB_ERR_UNKNOWN_CONN.
 */
int cb_router_on_peer_down(cb_router *r, uint32_t node, uint64_t now_ns);

/* Move up to out_cap COMPLETE and EVENT actions into out; returns how many (0: none). */
size_t cb_router_drain(cb_router *r, cb_action *out, size_t out_cap);
/* The oldest queued action without a copy, or NULL (cb_outbox_pop: valid until the next pop). */
const cb_action *cb_router_pop(cb_router *r);

/* Operations submitted whose COMPLETE has not been emitted yet. */
uint32_t cb_router_outstanding(const cb_router *r);

/* 1 if cb_router_submit would find a free slot and outbox room now, else 0. */
int cb_router_has_room(const cb_router *r);

/* `node`'s state as of now_ns (an ejection that has ended reads PROBING); node must be
 * < peer_count (else UP). */
cb_router_node_state cb_router_node_state_of(const cb_router *r, uint32_t node, uint64_t now_ns);

void cb_router_get_stats(const cb_router *r, cb_router_stats *out);

/* "primary", "any", "quorum" / "all", "quorum", "primary_async"; "?" otherwise. */
const char *cb_router_read_policy_name(uint32_t policy);
const char *cb_router_write_policy_name(uint32_t policy);

#endif
