/*
 * cb_resync.h: the warm-up of a recovered, empty server from its replicas (sans-IO;
 * docs/replication.md §6).
 *
 * cb_resync_start(node) scans every other node of the placement with SCAN
 * (docs/protocol.md §3.2), one peer at a time and one SCAN in flight, and writes each item
 * whose preference list (the first `replicas` nodes of cb_placement_lookup) includes `node`
 * to `node` as a versioned SET carrying the item's version, value and remaining TTL. Servers
 * apply versioned SETs last-writer-wins, so a copy that races with a newer application write
 * cannot undo it, and the copies of one item from several peers are idempotent. Items with
 * version 0 (unversioned) are skipped: no order is known for them. A peer whose SCAN fails
 * (timeout, error, a malformed body) is given up; its items are left to lazy read repair.
 *
 * Bounds: at most writes_max SETs and one SCAN in flight; a SCAN asks for scan_items items,
 * and the next SCAN goes out only when the previous body is all submitted.
 *
 * Driver contract (as cb_router's): the resyncer owns a cb_client (cb_resync_client). The
 * driver feeds it bytes, resets and timers, sends its SEND actions, and hands every
 * COMPLETE it emits to cb_resync_on_completion. cb_resync_drain gives the EVENT actions:
 * RESYNC_START (peer = node, detail = peers to scan) and RESYNC_DONE (peer = node,
 * detail = items stored, capped at INT32_MAX). One resync runs at a time.
 */
#ifndef CB_RESYNC_H
#define CB_RESYNC_H

#include <stddef.h>
#include <stdint.h>

#include "cb_alloc.h"
#include "cb_client.h"
#include "cb_outbox.h"
#include "cb_placement.h"
#include "cb_rng.h"

/* How a recovered server gets its items back. */
typedef enum {
    CB_RESYNC_LAZY = 0, /* quorum reads with read_repair rewrite what they find missing */
    CB_RESYNC_WARM = 1, /* a resyncer copies its items from its peers (this module) */
} cb_resync_policy;

/* "lazy", "warm"; "?" otherwise. */
const char *cb_resync_policy_name(uint32_t policy);
/* CB_ERR_OK with *out set, or CB_ERR_INVALID for another name. */
int cb_resync_policy_from_name(const char *name, uint32_t *out);

#define CB_RESYNC_WRITES_MAX 4096u

typedef struct cb_resync_config {
    uint32_t replicas;   /* R: an item belongs on the first R nodes of its list; 1..8 */
    uint32_t scan_items; /* items per SCAN; 0: CB_SCAN_ITEMS_DEFAULT; <= CB_SCAN_ITEMS_MAX */
    uint32_t writes_max; /* versioned SETs in flight; 1..CB_RESYNC_WRITES_MAX */
    /* The owned client's settings; peer_count must cover every node id of the placement.
     * outstanding_max is set to writes_max + 1. */
    cb_client_config client;
} cb_resync_config;

/* R = 1, 32 items per SCAN, 16 writes in flight, cb_client_config_default(). */
cb_resync_config cb_resync_config_default(void);

typedef struct cb_resync cb_resync;

typedef struct cb_resync_stats {
    uint64_t runs;                /* resyncs started */
    uint64_t runs_done;           /* resyncs finished */
    uint64_t scans, scans_failed; /* SCAN requests, and peers given up on */
    uint64_t items_seen;          /* items in SCAN bodies */
    uint64_t items_owned;         /* of those, items whose replicas include the node */
    uint64_t unversioned;         /* owned items skipped for version 0 */
    uint64_t writes, writes_stored, writes_superseded, writes_failed;
    uint64_t tombstones; /* of the writes, tombstones copied as versioned DELETEs that a
                          * server acknowledged (stored or superseded) */
} cb_resync_stats;

/* Create a resyncer over `placement` (read only; it must outlive the resyncer). Returns
 * CB_ERR_OK, CB_ERR_INVALID (a config value out of range, NULL argument) or CB_ERR_NOMEM. */
int cb_resync_new(const cb_resync_config *cfg, const cb_placement *placement, cb_rng *rng,
                  const cb_alloc *alloc, cb_resync **out);
void cb_resync_del(cb_resync *rs);

/* The client the resyncer sends through (see the driver contract above). */
cb_client *cb_resync_client(cb_resync *rs);

/* Start warming `node`. CB_ERR_OK; CB_ERR_BUSY (a resync is running); CB_ERR_NOT_FOUND
 * (`node` is not in the placement). Sends the first SCAN: drain the client afterwards. */
int cb_resync_start(cb_resync *rs, uint32_t node, uint64_t now_ns);

/* A COMPLETE the resyncer's client emitted. CB_ERR_OK, or CB_ERR_INVALID when no resync
 * is running. May send more requests: drain the client afterwards. */
int cb_resync_on_completion(cb_resync *rs, const cb_completion *c, uint64_t now_ns);

/* 1 while a resync runs. */
int cb_resync_active(const cb_resync *rs);

/* Move up to out_cap EVENT actions into out; returns how many. */
size_t cb_resync_drain(cb_resync *rs, cb_action *out, size_t out_cap);

void cb_resync_get_stats(const cb_resync *rs, cb_resync_stats *out);

#endif
