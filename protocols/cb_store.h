/*
 * cb_store.h: the sans-IO cache store a cache server keeps its items in (memcached semantics).
 *
 * A chained hash table with incremental resize, an LRU list, TTL expiry and a hard memory cap,
 * all behind an opaque cb_store. The store never reads a clock: every call that needs the time
 * takes `now_ns` (nanoseconds since the run began), and the caller's timer calls
 * cb_store_sweep() to reclaim expired items in bounded steps. docs/store.md describes the data
 * structures, the memory accounting and the per-operation semantics in full.
 *
 * Time: TTLs are relative (`ttl_ns`, 0 = never expires); an item stores an absolute
 * `expire_ns` (UINT64_MAX = never; now_ns + ttl_ns saturates to UINT64_MAX). An item whose
 * expire_ns <= now_ns is expired: at now_ns == expire_ns it is gone, at expire_ns - 1 it is
 * still there.
 *
 * Memory: bytes_used counts sizeof the store struct, the bucket arrays of both hash tables and,
 * per item, cb_store_item_overhead_bytes() + key length + value length (one allocation holds
 * all three). bytes_used <= memory_bytes_max after every call. The allocator's own per-block
 * overhead is not counted (it is not ours to know).
 *
 * Views: cb_store_get returns a pointer into the item. It stays valid until the next call that
 * takes the store non-const (any call but cb_store_stats_get and cb_store_check); copy it
 * first.
 *
 * Keys are 1..CB_KEY_BYTES_MAX arbitrary bytes. Every successful mutation (set, add, replace,
 * append, prepend, cas, incr, decr) gives the item a new CAS from a per-store counter that
 * starts at 1, so the same calls always give the same CAS values. touch and get keep the CAS.
 */
#ifndef CB_STORE_H
#define CB_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "cb_alloc.h"
#include "cb_limits.h"

/* Bucket count when the config leaves buckets_initial at 0. */
#define CB_STORE_BUCKETS_DEFAULT 64u
/* Largest bucket count (initial or grown): item hashes kept in the item are 32 bits. */
#define CB_STORE_BUCKETS_MAX (1u << 31)
/* Buckets cb_store_sweep visits per call when the config leaves sweep_buckets_max at 0. */
#define CB_STORE_SWEEP_BUCKETS_DEFAULT 256u
/* Non-empty buckets one keyed operation migrates during a rehash (empty visits: 10x that). */
#define CB_STORE_REHASH_BUCKETS_PER_OP 2u
/* Most items one store operation evicts to make room for a bigger table (see docs/store.md). */
#define CB_STORE_GROW_EVICTIONS_MAX 16u
/* How long a versioned delete's tombstone lasts when the config leaves tombstone_ttl_ns at 0:
 * longer than a resync or a late replicated write takes (docs/store.md "Tombstones"). */
#define CB_STORE_TOMBSTONE_TTL_NS_DEFAULT (60ull * 1000000000ull)

typedef struct cb_store cb_store;

typedef struct cb_store_config {
    /* The cap on bytes_used; must leave room for the store struct and the initial table. */
    uint64_t memory_bytes_max;
    /* Largest value; 0 means CB_VALUE_BYTES_MAX_DEFAULT. Must be in
     * [CB_NUMBER_DIGITS_MAX, CB_VALUE_BYTES_LIMIT] so any incr result fits. */
    uint32_t value_bytes_max;
    /* Initial bucket count hint, rounded up to a power of two; 0 means the default. */
    uint32_t buckets_initial;
    /* Buckets one cb_store_sweep call visits at most; 0 means the default. */
    uint32_t sweep_buckets_max;
    /* Key of the hash function: the same seed gives the same table layout on every run. */
    uint64_t hash_seed;
    /* Lifetime of a versioned delete's tombstone; 0 means CB_STORE_TOMBSTONE_TTL_NS_DEFAULT. */
    uint64_t tombstone_ttl_ns;
} cb_store_config;

/* What cb_store_get returns. `value` points into the store (see "Views" above). */
typedef struct cb_store_view {
    const uint8_t *value;
    size_t value_len;
    uint32_t flags;     /* the client's opaque flags, as stored */
    uint64_t cas;       /* the item's CAS */
    uint64_t version;   /* writer-assigned version (cb_store_set_versioned); 0: none */
    uint64_t expire_ns; /* absolute expiry, UINT64_MAX for none */
} cb_store_view;

/* Counters since cb_store_new. cmd_* count every call, whatever it returned. */
typedef struct cb_store_stats {
    uint64_t items;            /* items linked, including expired or flushed ones not reclaimed */
    uint64_t bytes_used;       /* see "Memory" above */
    uint64_t memory_bytes_max; /* the cap */
    uint64_t total_items;      /* successful stores ever (set/add/.../incr/decr) */
    uint64_t get_hits, get_misses;
    uint64_t cas_hits, cas_misses, cas_badval; /* cas: stored, NOT_FOUND, EXISTS */
    uint64_t set_superseded;    /* versioned sets not applied: the item had a version >= theirs */
    uint64_t delete_superseded; /* versioned deletes not applied: a version >= theirs was there */
    uint64_t tombstones;        /* tombstones written by versioned deletes */
    uint64_t evictions;         /* live items dropped from the LRU tail to make room */
    uint64_t expirations; /* expired items freed: lazily on access, by sweep, or at the tail */
    uint64_t reclaimed;   /* items invalidated by a flush and freed since */
    uint64_t cmd_get, cmd_set, cmd_add, cmd_replace, cmd_append, cmd_prepend, cmd_cas;
    uint64_t cmd_delete, cmd_incr, cmd_decr, cmd_touch, cmd_flush;
    uint64_t buckets;        /* buckets in both tables */
    uint64_t rehashing;      /* 1 while an incremental resize is under way */
    uint64_t table_grows;    /* resizes started */
    uint64_t grows_declined; /* resizes skipped: table over half the cap, or allocation failed */
} cb_store_stats;

/*
 * Bytes counted per item on top of its key and value (the item header; 54 on LP64).
 * A tombstone costs this plus its key.
 */
size_t cb_store_item_overhead_bytes(void);

/*
 * Create a store. `alloc` NULL means cb_alloc_default(); the allocator must outlive the store.
 * On success *out is the new store and CB_ERR_OK is returned; otherwise *out is NULL and:
 *   CB_ERR_INVALID  cfg or out NULL; value_bytes_max out of range; buckets_initial over
 *                   CB_STORE_BUCKETS_MAX; memory_bytes_max too small for the struct and the
 *                   initial table;
 *   CB_ERR_NOMEM    an allocation failed (nothing leaks).
 */
int cb_store_new(const cb_store_config *cfg, const cb_alloc *alloc, cb_store **out);

/* Free the store and every item. NULL is a no-op. */
void cb_store_del(cb_store *store);

/*
 * Look up `key`; on a hit fill *out (a view, see above), move the item to the LRU head and
 * return CB_ERR_OK. An expired or flushed item is freed on the spot and reported missing.
 *   CB_ERR_NOT_FOUND     no live item; *out is zeroed except out->version, the version of
 *                        the key's tombstone (cb_store_delete_versioned), 0 without one;
 *   CB_ERR_KEY_TOO_LONG  key_len > CB_KEY_BYTES_MAX;
 *   CB_ERR_INVALID       key_len == 0, or key/out NULL.
 */
int cb_store_get(cb_store *store, const uint8_t *key, size_t key_len, uint64_t now_ns,
                 cb_store_view *out);

/*
 * Store `value` (copied) under `key` with `flags` and `ttl_ns`, replacing any item. On success
 * *cas_out (if not NULL) is the new CAS. Evicts from the LRU tail as needed to stay under the
 * cap; if the item cannot fit even in an empty store nothing is evicted.
 *   CB_ERR_KEY_TOO_LONG, CB_ERR_INVALID  as for get (also value NULL with value_len > 0);
 *   CB_ERR_VALUE_TOO_LARGE  value_len > value_bytes_max;
 *   CB_ERR_NOMEM  the item cannot fit in an empty store, or the allocation failed; the store
 *                 is unchanged (the old item, if any, is still there).
 */
int cb_store_set(cb_store *store, const uint8_t *key, size_t key_len, const uint8_t *value,
                 size_t value_len, uint32_t flags, uint64_t ttl_ns, uint64_t now_ns,
                 uint64_t *cas_out);

/*
 * Last-writer-wins set for replication (docs/replication.md §2): as cb_store_set, and the new
 * item records `version`, a number the writer assigned (not the store's CAS, which differs
 * between replicas). When a live item already has a version >= `version`, nothing changes:
 * the call still returns CB_ERR_OK, with *cas_out and *version_out (either may be NULL) the
 * live item's, so *version_out > version tells the caller its write was superseded (equal:
 * the same write arrived before, e.g. a repair or a retransmission). Otherwise *version_out
 * is `version`. An item stored by any other call has version 0, so any versioned set
 * replaces it; append, prepend, incr and decr keep the item's version, other stores reset
 * it to 0. Errors: those of cb_store_set (the store is unchanged).
 */
int cb_store_set_versioned(cb_store *store, const uint8_t *key, size_t key_len,
                           const uint8_t *value, size_t value_len, uint32_t flags, uint64_t ttl_ns,
                           uint64_t version, uint64_t now_ns, uint64_t *cas_out,
                           uint64_t *version_out);

/* As cb_store_set, but only if no live item has `key`; else CB_ERR_NOT_STORED. */
int cb_store_add(cb_store *store, const uint8_t *key, size_t key_len, const uint8_t *value,
                 size_t value_len, uint32_t flags, uint64_t ttl_ns, uint64_t now_ns,
                 uint64_t *cas_out);

/* As cb_store_set, but only if a live item has `key`; else CB_ERR_NOT_STORED. */
int cb_store_replace(cb_store *store, const uint8_t *key, size_t key_len, const uint8_t *value,
                     size_t value_len, uint32_t flags, uint64_t ttl_ns, uint64_t now_ns,
                     uint64_t *cas_out);

/*
 * As cb_store_set, but only if the live item's CAS equals `cas_expected`.
 *   CB_ERR_NOT_FOUND  no live item;  CB_ERR_EXISTS  its CAS differs (item untouched);
 *   and the errors of cb_store_set.
 */
int cb_store_cas(cb_store *store, const uint8_t *key, size_t key_len, const uint8_t *value,
                 size_t value_len, uint32_t flags, uint64_t ttl_ns, uint64_t cas_expected,
                 uint64_t now_ns, uint64_t *cas_out);

/*
 * Add `data` after (append) or before (prepend) the live item's value. The item keeps its
 * flags and expiry, gets a new CAS and moves to the LRU head.
 *   CB_ERR_NOT_STORED       no live item;
 *   CB_ERR_VALUE_TOO_LARGE  the joined value would exceed value_bytes_max;
 *   and the other errors of cb_store_set.
 */
int cb_store_append(cb_store *store, const uint8_t *key, size_t key_len, const uint8_t *data,
                    size_t data_len, uint64_t now_ns, uint64_t *cas_out);
int cb_store_prepend(cb_store *store, const uint8_t *key, size_t key_len, const uint8_t *data,
                     size_t data_len, uint64_t now_ns, uint64_t *cas_out);

/*
 * Remove the live item with `key`.
 *   CB_ERR_NOT_FOUND  no live item;  CB_ERR_KEY_TOO_LONG, CB_ERR_INVALID  as for get.
 */
int cb_store_delete(cb_store *store, const uint8_t *key, size_t key_len, uint64_t now_ns);

/*
 * Versioned delete for replication (docs/store.md "Tombstones", docs/protocol.md §3.1):
 * `version` is the writer's, as for cb_store_set_versioned. When the key's live item or
 * tombstone has a version >= `version`, nothing changes (*version_out = that version, so
 * *version_out > version says the delete was superseded). Otherwise the item (if any) is
 * replaced by a tombstone carrying `version` that lives tombstone_ttl_ns: reads, scans and
 * every unversioned operation see no item, a versioned set with a version <= it is
 * superseded, and an unversioned set or add replaces it. The tombstone counts against the
 * memory cap (cb_store_item_overhead_bytes() + key) and may be evicted like an item; if it
 * cannot fit at all, the item is still deleted. version 0 is cb_store_delete.
 * Returns CB_ERR_OK when a live item was there (deleted, or kept because it is newer),
 * CB_ERR_NOT_FOUND when none was (a tombstone is left all the same);
 * CB_ERR_KEY_TOO_LONG, CB_ERR_INVALID as for get.
 */
int cb_store_delete_versioned(cb_store *store, const uint8_t *key, size_t key_len, uint64_t version,
                              uint64_t now_ns, uint64_t *version_out);

/*
 * Add `delta` to (incr, wrapping modulo 2^64 as memcached does) or subtract it from (decr,
 * flooring at 0) the live item's value, which must be 1..20 ASCII digits with a value that
 * fits uint64_t. The result is stored as decimal text without padding; the item keeps its
 * flags and expiry and gets a new CAS. *value_out and *cas_out (either may be NULL) get the
 * new value and CAS.
 *   CB_ERR_NOT_FOUND   no live item;
 *   CB_ERR_NOT_NUMBER  the value is empty, has a non-digit, more than 20 digits, or exceeds
 *                      UINT64_MAX;
 *   CB_ERR_NOMEM, CB_ERR_KEY_TOO_LONG, CB_ERR_INVALID  as for set.
 */
int cb_store_incr(cb_store *store, const uint8_t *key, size_t key_len, uint64_t delta,
                  uint64_t now_ns, uint64_t *value_out, uint64_t *cas_out);
int cb_store_decr(cb_store *store, const uint8_t *key, size_t key_len, uint64_t delta,
                  uint64_t now_ns, uint64_t *value_out, uint64_t *cas_out);

/*
 * Give the live item a new expiry now_ns + ttl_ns (0: never) and move it to the LRU head.
 * Its CAS is kept (memcached).
 *   CB_ERR_NOT_FOUND  no live item;  CB_ERR_KEY_TOO_LONG, CB_ERR_INVALID  as for get.
 */
int cb_store_touch(cb_store *store, const uint8_t *key, size_t key_len, uint64_t ttl_ns,
                   uint64_t now_ns);

/*
 * Invalidate every item that exists now (memcached flush_all). O(1): items with a CAS older
 * than the flush are treated as missing from now on and freed lazily (on access, by sweep or
 * at the LRU tail, counted in stats.reclaimed). Items stored afterwards are unaffected.
 */
void cb_store_flush(cb_store *store);

/*
 * Visit at most sweep_buckets_max cursor positions (one bucket per table; two during a
 * resize) from a cursor that wraps around the table, freeing expired and flushed items; then
 * advance an ongoing rehash by one step, or start a resize that is due (which may evict up
 * to CB_STORE_GROW_EVICTIONS_MAX items, as a store operation may). Call it from a timer.
 * Returns the number of items freed. A whole cycle of the cursor visits every bucket; an item
 * that a rehash moves behind the cursor can wait for the next cycle (or for lazy expiry).
 */
size_t cb_store_sweep(cb_store *store, uint64_t now_ns);

/* ---- cursor scan (docs/store.md "Scan") ---- */

/* Bucket positions plus items one cb_store_scan call examines per item slot it is given. */
#define CB_STORE_SCAN_WORK_PER_ITEM 16u

/* One live item as cb_store_scan returns it; views into the store (see "Views" above). */
typedef struct cb_store_scan_item {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    uint32_t flags;
    uint64_t version;   /* writer-assigned version, 0: none */
    uint64_t expire_ns; /* absolute expiry, UINT64_MAX for none */
    uint64_t resume;    /* the cursor that continues right after this item */
    uint8_t tombstone;  /* 1: a versioned delete's tombstone (no value), so a resync can copy
                         * deletes too (docs/store.md "Tombstones") */
} cb_store_scan_item;

/*
 * Return up to `cap` live items from `cursor` (0 starts a scan) into out[0..*n_out), and the
 * cursor to continue from in *next_out (0: the scan is complete). Read-only: nothing is
 * freed, moved or bumped in the LRU; dead (expired, flushed) items are skipped. Live
 * tombstones are returned too, with `tombstone` set (the only reader that sees them).
 *
 * The cursor is Redis SCAN's reverse-binary bucket counter (low 32 bits) plus an item offset
 * inside the bucket group (high 32 bits). A bucket group is one bucket of the smaller table
 * and, during a resize, the buckets of the larger table that its items rehash into.
 * Bounded work: at most CB_STORE_SCAN_WORK_PER_ITEM * cap + 1 bucket visits and item
 * examinations per call (a call can return no items and a non-zero cursor).
 *
 * Guarantee: an item that is live for a whole scan, from cursor 0 until *next_out is 0, is
 * returned at least once, even when the table grows (or a resize progresses) in between,
 * because the reverse-binary order visits the expansions of a bucket together. Caveats:
 * items may be returned more than once across a resize; a call normally stops at a group
 * boundary, but a group with more items than `cap` (or than the work bound) is split with an
 * offset, and an insertion, removal or rehash inside that group between the two calls can
 * then skip or repeat one of its items. `resume` lets a caller that consumes only a prefix
 * of out[] continue exactly after the last item it used.
 *   CB_ERR_INVALID  store, out, n_out or next_out NULL, or cap 0.
 */
int cb_store_scan(const cb_store *store, uint64_t cursor, uint64_t now_ns, cb_store_scan_item *out,
                  size_t cap, size_t *n_out, uint64_t *next_out);

/* Fill *out with the counters. */
void cb_store_stats_get(const cb_store *store, cb_store_stats *out);

/*
 * Check every invariant (for tests; O(items + buckets)): each item is reachable in the table
 * its hash says, LRU links are consistent, counts and bytes_used add up, bytes_used <= cap.
 * Returns CB_ERR_OK, or CB_ERR_INVALID naming no detail (use a debugger).
 */
int cb_store_check(const cb_store *store);

#endif
