/* cb_shards.c: a store split by key hash; see cb_shards.h for the contract. */
#include "cb_shards.h"

#include <string.h>

#include "cb_err.h"

struct cb_shards {
    const cb_alloc *alloc;
    uint32_t count;
    int locked; /* a lock was injected */
    cb_shards_lock lock;
    cb_store *stores[];
};

int cb_shards_new(const cb_store_config *cfg, uint32_t count, const cb_shards_lock *lock,
                  const cb_alloc *alloc, cb_shards **out)
{
    *out = NULL;
    if (cfg == NULL || count == 0 || count > CB_SHARDS_MAX || (count & (count - 1)) != 0 ||
        (lock != NULL && (lock->lock == NULL || lock->unlock == NULL))) {
        return CB_ERR_INVALID;
    }
    cb_shards *sh = cb_alloc_calloc(alloc, 1, sizeof *sh + count * sizeof sh->stores[0]);
    if (sh == NULL) {
        return CB_ERR_NOMEM;
    }
    sh->alloc = alloc;
    sh->count = count;
    if (lock != NULL) {
        sh->locked = 1;
        sh->lock = *lock;
    }
    cb_store_config sc = *cfg;
    sc.memory_bytes_max = cfg->memory_bytes_max / count;
    for (uint32_t i = 0; i < count; i++) {
        sc.hash_seed = cfg->hash_seed + i;
        int rc = cb_store_new(&sc, alloc, &sh->stores[i]);
        if (rc != CB_ERR_OK) {
            cb_shards_del(sh);
            return rc;
        }
    }
    *out = sh;
    return CB_ERR_OK;
}

void cb_shards_del(cb_shards *sh)
{
    if (sh == NULL) {
        return;
    }
    for (uint32_t i = 0; i < sh->count; i++) {
        cb_store_del(sh->stores[i]);
    }
    cb_alloc_free(sh->alloc, sh);
}

uint32_t cb_shards_count(const cb_shards *sh)
{
    return sh->count;
}

uint32_t cb_shards_index(const cb_shards *sh, const uint8_t *key, size_t key_len)
{
    if (sh->count == 1) {
        return 0;
    }
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < key_len; i++) {
        h = (h ^ key[i]) * 0x100000001b3ull;
    }
    h ^= h >> 33; /* murmur3's fmix64: every input bit reaches the top bits */
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (uint32_t)(h >> 32) & (sh->count - 1);
}

cb_store *cb_shards_acquire(cb_shards *sh, uint32_t i)
{
    if (sh->locked) {
        sh->lock.lock(sh->lock.ctx, i);
    }
    return sh->stores[i];
}

void cb_shards_release(cb_shards *sh, uint32_t i)
{
    if (sh->locked) {
        sh->lock.unlock(sh->lock.ctx, i);
    }
}

void cb_shards_flush(cb_shards *sh)
{
    for (uint32_t i = 0; i < sh->count; i++) {
        cb_store_flush(cb_shards_acquire(sh, i));
        cb_shards_release(sh, i);
    }
}

size_t cb_shards_sweep(cb_shards *sh, uint64_t now_ns)
{
    size_t freed = 0;
    for (uint32_t i = 0; i < sh->count; i++) {
        freed += cb_store_sweep(cb_shards_acquire(sh, i), now_ns);
        cb_shards_release(sh, i);
    }
    return freed;
}

void cb_shards_stats_get(cb_shards *sh, cb_store_stats *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < sh->count; i++) {
        cb_store_stats s;
        cb_store_stats_get(cb_shards_acquire(sh, i), &s);
        cb_shards_release(sh, i);
        uint64_t rehashing = out->rehashing | s.rehashing;
        /* Every field is a uint64_t counter: sum them as an array. */
        uint64_t *o = (uint64_t *)out;
        const uint64_t *p = (const uint64_t *)&s;
        for (size_t k = 0; k < sizeof s / sizeof(uint64_t); k++) {
            o[k] += p[k];
        }
        out->rehashing = rehashing;
    }
}

_Static_assert(sizeof(cb_store_stats) % sizeof(uint64_t) == 0, "cb_store_stats is all uint64_t");

void cb_shards_cursor_split(const cb_shards *sh, uint64_t cursor, uint32_t *shard, uint64_t *inner)
{
    if (sh->count == 1) {
        *shard = 0;
        *inner = cursor;
        return;
    }
    uint64_t s = cursor >> CB_SHARDS_CURSOR_SHIFT;
    *shard = s < sh->count ? (uint32_t)s : sh->count;
    *inner = cursor & ((1ull << CB_SHARDS_CURSOR_SHIFT) - 1);
}

uint64_t cb_shards_cursor_join(const cb_shards *sh, uint32_t shard, uint64_t inner_next)
{
    if (sh->count == 1) {
        return inner_next;
    }
    if (inner_next != 0 && inner_next < (1ull << CB_SHARDS_CURSOR_SHIFT)) {
        return (uint64_t)shard << CB_SHARDS_CURSOR_SHIFT | inner_next;
    }
    return shard + 1 < sh->count ? (uint64_t)(shard + 1) << CB_SHARDS_CURSOR_SHIFT : 0;
}
