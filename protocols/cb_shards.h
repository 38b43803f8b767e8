/*
 * cb_shards.h: a cache store split by key hash into independent cb_store shards, so that
 * several threads can serve one cache (docs/real.md §5). Sans-IO: the store knows nothing of
 * threads; the driver injects a lock (two callbacks taking the shard number), and every
 * access to a shard goes between cb_shards_acquire and cb_shards_release.
 *
 * Keys: a key lives in shard (hash(key) >> 32) & (count - 1), with a hash (FNV-1a, then a
 * 64-bit finalizer) independent of the stores' own seeded bucket hash, so each shard's table
 * is filled evenly. One shard holds all of a key's state, so single-key operations (get,
 * set, cas, incr...) are atomic under their shard's lock; CAS values come from each shard's
 * own counter (unique per key, which is what clients compare).
 *
 * Memory: the cap is split evenly, memory_bytes_max / count per shard (each evicts on its
 * own), so bytes_used summed over shards never exceeds the configured cap. A skewed key
 * distribution evicts earlier in a hot shard than one global LRU would.
 *
 * Global operations (flush, sweep, stats) visit the shards in order 0..count-1, taking one
 * lock at a time: never call them while holding a shard. With one shard and no lock (the
 * simulator, a one-thread server) this is a plain cb_store and costs nothing extra.
 */
#ifndef CB_SHARDS_H
#define CB_SHARDS_H

#include <stddef.h>
#include <stdint.h>

#include "cb_alloc.h"
#include "cb_store.h"

#define CB_SHARDS_MAX 256u
/* A sharded SCAN cursor carries the shard in its top 8 bits (with more than one shard). */
#define CB_SHARDS_CURSOR_SHIFT 56u

/* The lock a driver injects; lock(ctx, i) must exclude every other lock(ctx, i). */
typedef struct cb_shards_lock {
    void (*lock)(void *ctx, uint32_t shard);
    void (*unlock)(void *ctx, uint32_t shard);
    void *ctx;
} cb_shards_lock;

typedef struct cb_shards cb_shards;

/*
 * `count` shards (a power of two, 1..CB_SHARDS_MAX), each a cb_store made from *cfg with
 * memory_bytes_max / count and hash_seed + shard. `lock` NULL: no locking (one thread);
 * else copied. Returns CB_ERR_OK with *out set; CB_ERR_INVALID (bad count, or a shard's
 * cap too small for cb_store_new); CB_ERR_NOMEM (nothing leaked).
 */
int cb_shards_new(const cb_store_config *cfg, uint32_t count, const cb_shards_lock *lock,
                  const cb_alloc *alloc, cb_shards **out);

/* Free every shard. NULL is a no-op. */
void cb_shards_del(cb_shards *sh);

uint32_t cb_shards_count(const cb_shards *sh);

/* The shard `key` lives in (0 with one shard). */
uint32_t cb_shards_index(const cb_shards *sh, const uint8_t *key, size_t key_len);

/* Lock shard `i` (< count) and return its store; views from it stay valid until release. */
cb_store *cb_shards_acquire(cb_shards *sh, uint32_t i);
void cb_shards_release(cb_shards *sh, uint32_t i);

/* cb_store_flush on every shard. */
void cb_shards_flush(cb_shards *sh);

/* cb_store_sweep on every shard; returns the items freed. */
size_t cb_shards_sweep(cb_shards *sh, uint64_t now_ns);

/* Counters summed over the shards (rehashing: 1 if any shard is resizing). */
void cb_shards_stats_get(cb_shards *sh, cb_store_stats *out);

/*
 * SCAN cursors over shards. With one shard the cursor is cb_store's own. With more, shard
 * s's inner cursor c is (s << 56) | c: cb_shards_cursor_split gives s and c (a shard out of
 * range gives s = count: the scan is over), cb_shards_cursor_join the cursor that continues
 * after shard s's scan returned `inner_next` (0: the next shard; 0 after the last one). An
 * inner cursor of 2^56 or more (an item offset above 2^24 in one bucket group, which the
 * store's load factor rules out) moves on to the next shard.
 */
void cb_shards_cursor_split(const cb_shards *sh, uint64_t cursor, uint32_t *shard, uint64_t *inner);
uint64_t cb_shards_cursor_join(const cb_shards *sh, uint32_t shard, uint64_t inner_next);

#endif
