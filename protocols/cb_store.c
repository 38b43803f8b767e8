/*
 * cb_store.c: the cache store of cb_store.h — chained hash table with incremental resize,
 * intrusive LRU list, lazy and swept TTL expiry, and a byte cap that is never exceeded.
 *
 * Layout (docs/store.md §1): each item is one allocation, a header followed by the key and
 * the value. The item sits in exactly one hash chain and in the LRU list. While a resize is
 * under way there are two tables; an item's "home" is tables[0] if its old bucket index is
 * at or past rehash_idx, else tables[1]. Every lookup, insert and removal goes through
 * store_home_idx(), so the invariant has one definition.
 */
#include "cb_store.h"

#include <assert.h>
#include <string.h>

#include "cb_err.h"

/* GCC and clang both have it (as in cb_rng.c); __extension__ keeps -Wpedantic quiet. */
__extension__ typedef unsigned __int128 store_u128;

typedef struct store_link {
    struct store_link *prev;
    struct store_link *next;
} store_link;

typedef struct store_item {
    store_link lru; /* first member: a store_link * to an item is the item */
    struct store_item *chain;
    uint64_t cas;
    uint64_t version;   /* writer-assigned (cb_store_set_versioned), 0: none */
    uint64_t expire_ns; /* UINT64_MAX: never */
    uint32_t hash;
    uint32_t value_len;
    uint32_t flags;
    uint8_t key_len;
    uint8_t tombstone; /* 1: a versioned delete's marker (no value); reads see no item */
    uint8_t data[];    /* key_len bytes of key, then value_len bytes of value */
} store_item;

_Static_assert(offsetof(store_item, lru) == 0, "LRU links convert to items by a cast");
_Static_assert(CB_KEY_BYTES_MAX <= UINT8_MAX, "key_len fits uint8_t");
_Static_assert(CB_VALUE_BYTES_LIMIT <= UINT32_MAX / 2, "joined values fit uint32_t");
_Static_assert(CB_STORE_BUCKETS_MAX <= (uint64_t)UINT32_MAX + 1, "32-bit hashes index tables");

#define STORE_ITEM_HEADER_BYTES offsetof(store_item, data)
/* Redis dictRehash: visit at most 10 empty buckets per bucket we mean to move. */
#define STORE_REHASH_EMPTY_VISITS 10u

typedef struct store_table {
    store_item **buckets; /* NULL when the table is absent */
    size_t size;          /* a power of two, or 0 when absent */
    size_t used;          /* items whose home is this table */
} store_table;

/* Why an item leaves the store; decides which counter it bumps. */
typedef enum store_drop {
    STORE_LIVE = 0,
    STORE_DROP_EXPIRED,
    STORE_DROP_FLUSHED,
    STORE_DROP_EVICTED,
    STORE_DROP_DELETED,
    STORE_DROP_REPLACED,
} store_drop;

/* The way a write treats an existing item (cb_store_set and friends). */
typedef enum store_mode {
    STORE_MODE_SET,
    STORE_MODE_ADD,
    STORE_MODE_REPLACE,
    STORE_MODE_CAS,
} store_mode;

/* A new value given as up to two pieces, so append/prepend copy straight into the item. */
typedef struct store_value {
    const uint8_t *head;
    size_t head_len;
    const uint8_t *tail;
    size_t tail_len;
    int keep_version; /* the new item keeps the old one's version (edits in place) */
    uint64_t version; /* else the new item's version (0: unversioned) */
    int tombstone;    /* the new item is a tombstone (docs/store.md "Tombstones") */
} store_value;

struct cb_store {
    const cb_alloc *alloc;
    store_table tables[2]; /* tables[1] exists only during a resize */
    size_t rehash_idx;     /* next bucket of tables[0] to migrate */
    size_t sweep_cursor;
    store_link lru; /* sentinel: lru.next is the most recently used item, lru.prev the least */
    uint64_t bytes_used;
    uint64_t memory_bytes_max;
    uint64_t hash_seed;
    uint64_t cas_next;  /* CAS of the next mutation; starts at 1 */
    uint64_t flush_cas; /* items with cas < flush_cas were flushed */
    uint32_t value_bytes_max;
    uint32_t sweep_buckets_max;
    uint64_t tombstone_ttl_ns; /* how long a versioned delete's tombstone lasts */
    cb_store_stats stats;      /* counters; the gauges are filled by cb_store_stats_get */
};

/* ---- hash: wyhash (final 4 construction), reading bytes little-endian on every host ---- */

static uint64_t store_mum(uint64_t a, uint64_t b)
{
    store_u128 r = (store_u128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static uint64_t store_read32(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
}

static uint64_t store_read64(const uint8_t *p)
{
    return store_read32(p) | store_read32(p + 4) << 32;
}

/*
 * wyhash: keyed by `seed`, fast on short keys (one 128-bit multiply for <= 16 bytes), passes
 * SMHasher. Explicit little-endian reads make tables identical across hosts.
 */
static uint64_t store_hash64(uint64_t seed, const uint8_t *p, size_t len)
{
    static const uint64_t s[4] = {0xa0761d6478bd642full, 0xe7037ed1a0b428dbull,
                                  0x8ebc6af09c88c6e3ull, 0x589965cc75374cc3ull};
    uint64_t a = 0, b = 0;
    seed ^= store_mum(seed ^ s[0], s[1]);
    if (len <= 16) {
        if (len >= 4) {
            size_t mid = (len >> 3) << 2;
            a = store_read32(p) << 32 | store_read32(p + mid);
            b = store_read32(p + len - 4) << 32 | store_read32(p + len - 4 - mid);
        } else if (len > 0) {
            a = (uint64_t)p[0] << 16 | (uint64_t)p[len >> 1] << 8 | p[len - 1];
        }
    } else {
        size_t i = len;
        if (i > 48) {
            uint64_t see1 = seed, see2 = seed;
            do {
                seed = store_mum(store_read64(p) ^ s[1], store_read64(p + 8) ^ seed);
                see1 = store_mum(store_read64(p + 16) ^ s[2], store_read64(p + 24) ^ see1);
                see2 = store_mum(store_read64(p + 32) ^ s[3], store_read64(p + 40) ^ see2);
                p += 48;
                i -= 48;
            } while (i > 48);
            seed ^= see1 ^ see2;
        }
        while (i > 16) {
            seed = store_mum(store_read64(p) ^ s[1], store_read64(p + 8) ^ seed);
            i -= 16;
            p += 16;
        }
        a = store_read64(p + i - 16);
        b = store_read64(p + i - 8);
    }
    store_u128 r = (store_u128)(a ^ s[1]) * (b ^ seed);
    return store_mum((uint64_t)r ^ s[0] ^ len, (uint64_t)(r >> 64) ^ s[1]);
}

static uint32_t store_hash(const cb_store *store, const uint8_t *key, size_t key_len)
{
    uint64_t h = store_hash64(store->hash_seed, key, key_len);
    return (uint32_t)(h ^ (h >> 32));
}

/* ---- small helpers ---- */

size_t cb_store_item_overhead_bytes(void)
{
    return STORE_ITEM_HEADER_BYTES;
}

static uint64_t store_item_bytes(const store_item *it)
{
    return (uint64_t)STORE_ITEM_HEADER_BYTES + it->key_len + it->value_len;
}

/* Bytes that do not belong to items: the struct and both bucket arrays. */
static uint64_t store_fixed_bytes(const cb_store *store)
{
    uint64_t buckets = (uint64_t)store->tables[0].size + store->tables[1].size;
    return sizeof(cb_store) + buckets * sizeof(store_item *);
}

static uint64_t store_expire_at(uint64_t now_ns, uint64_t ttl_ns)
{
    if (ttl_ns == 0 || ttl_ns >= UINT64_MAX - now_ns) {
        return UINT64_MAX; /* none, or saturated: a deadline past the end of time */
    }
    return now_ns + ttl_ns;
}

/* STORE_LIVE, or why the item no longer counts: flushed, or expired (expire_ns <= now_ns). */
static store_drop store_item_state(const cb_store *store, const store_item *it, uint64_t now_ns)
{
    if (it->cas < store->flush_cas) {
        return STORE_DROP_FLUSHED;
    }
    if (it->expire_ns != UINT64_MAX && it->expire_ns <= now_ns) {
        return STORE_DROP_EXPIRED;
    }
    return STORE_LIVE;
}

static int store_check_key(const uint8_t *key, size_t key_len)
{
    if (key_len > CB_KEY_BYTES_MAX) {
        return CB_ERR_KEY_TOO_LONG;
    }
    if (key == NULL || key_len == 0) {
        return CB_ERR_INVALID;
    }
    return CB_ERR_OK;
}

static int store_check_value(const cb_store *store, const uint8_t *value, size_t value_len)
{
    if (value == NULL && value_len > 0) {
        return CB_ERR_INVALID;
    }
    if (value_len > store->value_bytes_max) {
        return CB_ERR_VALUE_TOO_LARGE;
    }
    return CB_ERR_OK;
}

/* ---- LRU list ---- */

static void store_lru_remove(store_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
}

static void store_lru_push_head(cb_store *store, store_link *l)
{
    l->prev = &store->lru;
    l->next = store->lru.next;
    store->lru.next->prev = l;
    store->lru.next = l;
}

static void store_lru_bump(cb_store *store, store_item *it)
{
    store_lru_remove(&it->lru);
    store_lru_push_head(store, &it->lru);
}

/* ---- hash table ---- */

/* 0 or 1: the table that holds (or would hold) an item with this hash. */
static unsigned store_home_idx(const cb_store *store, uint32_t hash)
{
    const store_table *t0 = &store->tables[0];
    if (store->tables[1].buckets != NULL && (hash & (t0->size - 1)) < store->rehash_idx) {
        return 1;
    }
    return 0;
}

static store_item **store_home_slot(cb_store *store, uint32_t hash, store_table **table_out)
{
    store_table *t = &store->tables[store_home_idx(store, hash)];
    *table_out = t;
    return &t->buckets[hash & (t->size - 1)];
}

static void store_table_insert(cb_store *store, store_item *it)
{
    store_table *t;
    store_item **slot = store_home_slot(store, it->hash, &t);
    it->chain = *slot;
    *slot = it;
    t->used++;
}

static void store_table_remove(cb_store *store, store_item *it)
{
    store_table *t;
    store_item **slot = store_home_slot(store, it->hash, &t);
    while (*slot != it) {
        assert(*slot != NULL); /* the item is in its home chain */
        slot = &(*slot)->chain;
    }
    *slot = it->chain;
    assert(t->used > 0);
    t->used--;
}

/* tables[0] is empty: free it and make the new table the only one. */
static void store_rehash_finish(cb_store *store)
{
    store_table *t0 = &store->tables[0];
    assert(t0->used == 0);
    store->bytes_used -= (uint64_t)t0->size * sizeof(store_item *);
    cb_alloc_free(store->alloc, t0->buckets);
    *t0 = store->tables[1];
    memset(&store->tables[1], 0, sizeof(store->tables[1]));
    store->rehash_idx = 0;
}

/* Move every item of one old bucket to the new table. */
static void store_rehash_bucket(cb_store *store, store_item *it)
{
    store_table *from = &store->tables[0];
    store_table *to = &store->tables[1];
    while (it != NULL) {
        store_item *next = it->chain;
        store_item **slot = &to->buckets[it->hash & (to->size - 1)];
        it->chain = *slot;
        *slot = it;
        from->used--;
        to->used++;
        it = next;
    }
}

/* Migrate up to `buckets` non-empty old buckets, visiting at most 10x as many empty ones. */
static void store_rehash_step(cb_store *store, size_t buckets)
{
    store_table *from = &store->tables[0];
    if (store->tables[1].buckets == NULL) {
        return;
    }
    size_t empty_visits = buckets * STORE_REHASH_EMPTY_VISITS;
    while (buckets > 0 && from->used > 0) {
        assert(store->rehash_idx < from->size);
        store_item *it = from->buckets[store->rehash_idx];
        if (it == NULL) {
            store->rehash_idx++;
            if (--empty_visits == 0) {
                return;
            }
            continue;
        }
        from->buckets[store->rehash_idx] = NULL;
        /* Advance first: from here on this bucket's items live in the new table. */
        store->rehash_idx++;
        store_rehash_bucket(store, it);
        buckets--;
    }
    if (from->used == 0) {
        store_rehash_finish(store);
    }
}

/* ---- item lifetime ---- */

/* Free an item already out of its hash chain, counting why it went. */
static void store_forget(cb_store *store, store_item *it, store_drop why)
{
    store_lru_remove(&it->lru);
    store->bytes_used -= store_item_bytes(it);
    switch (why) {
    case STORE_DROP_EXPIRED:
        store->stats.expirations++;
        break;
    case STORE_DROP_FLUSHED:
        store->stats.reclaimed++;
        break;
    case STORE_DROP_EVICTED:
        store->stats.evictions++;
        break;
    case STORE_LIVE:
    case STORE_DROP_DELETED:
    case STORE_DROP_REPLACED:
        break;
    }
    cb_alloc_free(store->alloc, it);
}

static void store_drop_item(cb_store *store, store_item *it, store_drop why)
{
    store_table_remove(store, it);
    store_forget(store, it, why);
}

/* Free the LRU tail unless it is `keep` or the list is empty; 1 if an item went. */
static int store_evict_tail(cb_store *store, const store_item *keep, uint64_t now_ns)
{
    store_link *tail = store->lru.prev;
    if (tail == &store->lru || (keep != NULL && tail == &keep->lru)) {
        return 0;
    }
    store_item *it = (store_item *)tail;
    store_drop why = store_item_state(store, it, now_ns);
    store_drop_item(store, it, why == STORE_LIVE ? STORE_DROP_EVICTED : why);
    return 1;
}

/*
 * Find the live item or tombstone with this key, or NULL; a dead one found on the way is
 * freed. Every keyed operation comes through here, so this is where a resize advances.
 */
static store_item *store_find_entry(cb_store *store, const uint8_t *key, size_t key_len,
                                    uint32_t hash, uint64_t now_ns)
{
    store_rehash_step(store, CB_STORE_REHASH_BUCKETS_PER_OP);
    store_table *t;
    store_item *it = *store_home_slot(store, hash, &t);
    while (it != NULL &&
           (it->hash != hash || it->key_len != key_len || memcmp(it->data, key, key_len) != 0)) {
        it = it->chain;
    }
    if (it == NULL) {
        return NULL;
    }
    store_drop why = store_item_state(store, it, now_ns);
    if (why != STORE_LIVE) {
        store_drop_item(store, it, why);
        return NULL;
    }
    return it;
}

/* The live item with this key, or NULL: a tombstone reads as no item. */
static store_item *store_find(cb_store *store, const uint8_t *key, size_t key_len, uint32_t hash,
                              uint64_t now_ns)
{
    store_item *it = store_find_entry(store, key, key_len, hash, now_ns);
    return it != NULL && it->tombstone ? NULL : it;
}

/*
 * Start a resize when the load factor reaches 1, if the doubled table keeps all tables
 * within half the cap. Room for it is made by evicting at most CB_STORE_GROW_EVICTIONS_MAX
 * tail items per call (never `keep`, the item just stored); when that is not enough the
 * next store operation goes on. A failed allocation only means the table stays as it is.
 */
static void store_maybe_grow(cb_store *store, const store_item *keep, uint64_t now_ns)
{
    store_table *t0 = &store->tables[0];
    if (store->tables[1].buckets != NULL || t0->used < t0->size) {
        return;
    }
    uint64_t new_bytes = 2 * (uint64_t)t0->size * sizeof(store_item *);
    if (t0->size >= CB_STORE_BUCKETS_MAX ||
        store_fixed_bytes(store) + new_bytes > store->memory_bytes_max / 2) {
        store->stats.grows_declined++;
        return;
    }
    for (unsigned n = 0; n < CB_STORE_GROW_EVICTIONS_MAX; n++) {
        if (store->bytes_used + new_bytes <= store->memory_bytes_max ||
            !store_evict_tail(store, keep, now_ns)) {
            break;
        }
    }
    if (store->bytes_used + new_bytes > store->memory_bytes_max) {
        return;
    }
    store_item **buckets = cb_alloc_calloc(store->alloc, 2 * t0->size, sizeof(store_item *));
    if (buckets == NULL) {
        store->stats.grows_declined++;
        return;
    }
    store->tables[1].buckets = buckets;
    store->tables[1].size = 2 * t0->size;
    store->tables[1].used = 0;
    store->rehash_idx = 0;
    store->bytes_used += new_bytes;
    store->stats.table_grows++;
    assert(store->bytes_used <= store->memory_bytes_max);
}

/*
 * Store a new item for `key` holding `v`, replacing `old` (may be NULL). The item is built
 * before anything changes, so a failure leaves the store as it was. Then the old item goes,
 * the LRU tail makes room, and the new item is linked at the LRU head.
 */
/* 1 when a write can reuse `old`'s allocation: the same key and value lengths, and no part
 * of the new value read from `old` itself. Sets of same-sized values (the common case of a
 * cache rewriting a key) then cost no malloc and free, whose cold chunks were most of a
 * store's cache misses in `bench sim`. */
static int store_overwrite_fits(const store_item *old, size_t key_len, const store_value *v)
{
    if (old == NULL || old->key_len != key_len || old->value_len != v->head_len + v->tail_len) {
        return 0;
    }
    uintptr_t lo = (uintptr_t)old->data;
    uintptr_t hi = lo + key_len + old->value_len;
    uintptr_t head = (uintptr_t)v->head;
    uintptr_t tail = (uintptr_t)v->tail;
    return (v->head_len == 0 || head + v->head_len <= lo || head >= hi) &&
           (v->tail_len == 0 || tail + v->tail_len <= lo || tail >= hi);
}

/* store_put's result for an item rewritten in place: what a new item would hold (a new CAS,
 * the head of the LRU, one more write counted), the same bytes used. */
static void store_overwrite(cb_store *store, store_item *it, const store_value *v, uint32_t flags,
                            uint64_t expire_ns)
{
    it->flags = flags;
    it->tombstone = (uint8_t)(v->tombstone != 0);
    if (!v->keep_version) {
        it->version = v->version;
    }
    it->expire_ns = expire_ns;
    if (v->head_len > 0) {
        memcpy(it->data + it->key_len, v->head, v->head_len);
    }
    if (v->tail_len > 0) {
        memcpy(it->data + it->key_len + v->head_len, v->tail, v->tail_len);
    }
    assert(store->cas_next < UINT64_MAX);
    it->cas = store->cas_next++;
    store_lru_bump(store, it);
    store->stats.total_items++;
}

static int store_put(cb_store *store, store_item *old, const uint8_t *key, size_t key_len,
                     uint32_t hash, const store_value *v, uint32_t flags, uint64_t expire_ns,
                     uint64_t now_ns, uint64_t *cas_out)
{
    /* Append, prepend, incr and decr edit the value in place: they keep its version. */
    int keep_version = v->keep_version;
    size_t value_len = v->head_len + v->tail_len;
    uint64_t need = (uint64_t)STORE_ITEM_HEADER_BYTES + key_len + value_len;
    assert(store_fixed_bytes(store) <= store->memory_bytes_max);
    if (need > store->memory_bytes_max - store_fixed_bytes(store)) {
        return CB_ERR_NOMEM; /* would not fit in an empty store: evict nothing */
    }
    if (store_overwrite_fits(old, key_len, v)) {
        store_overwrite(store, old, v, flags, expire_ns);
        if (cas_out != NULL) {
            *cas_out = old->cas;
        }
        return CB_ERR_OK;
    }
    store_item *it = cb_alloc_malloc(store->alloc, (size_t)need);
    if (it == NULL) {
        return CB_ERR_NOMEM;
    }
    it->hash = hash;
    it->key_len = (uint8_t)key_len;
    it->value_len = (uint32_t)value_len;
    it->flags = flags;
    it->tombstone = (uint8_t)(v->tombstone != 0);
    it->version = v->version;
    if (keep_version) {
        it->version = old != NULL ? old->version : 0;
    }
    it->expire_ns = expire_ns;
    memcpy(it->data, key, key_len);
    if (v->head_len > 0) {
        memcpy(it->data + key_len, v->head, v->head_len);
    }
    if (v->tail_len > 0) {
        memcpy(it->data + key_len + v->head_len, v->tail, v->tail_len);
    }
    if (old != NULL) {
        store_drop_item(store, old, STORE_DROP_REPLACED);
    }
    while (store->bytes_used + need > store->memory_bytes_max) {
        int evicted = store_evict_tail(store, NULL, now_ns);
        assert(evicted); /* the check above proved an empty store has room */
        (void)evicted;
    }
    assert(store->cas_next < UINT64_MAX);
    it->cas = store->cas_next++;
    store_table_insert(store, it);
    store_lru_push_head(store, &it->lru);
    store->bytes_used += need;
    store->stats.total_items++;
    store_maybe_grow(store, it, now_ns);
    assert(store->bytes_used <= store->memory_bytes_max);
    if (cas_out != NULL) {
        *cas_out = it->cas;
    }
    return CB_ERR_OK;
}

/* ---- create, destroy ---- */

static int store_config_buckets(uint32_t hint, size_t *out)
{
    if (hint > CB_STORE_BUCKETS_MAX) {
        return CB_ERR_INVALID;
    }
    size_t n = 1;
    while (n < (hint == 0 ? CB_STORE_BUCKETS_DEFAULT : hint)) {
        n <<= 1;
    }
    *out = n;
    return CB_ERR_OK;
}

int cb_store_new(const cb_store_config *cfg, const cb_alloc *alloc, cb_store **out)
{
    if (out == NULL) {
        return CB_ERR_INVALID;
    }
    *out = NULL;
    if (cfg == NULL) {
        return CB_ERR_INVALID;
    }
    uint32_t value_max = cfg->value_bytes_max ? cfg->value_bytes_max : CB_VALUE_BYTES_MAX_DEFAULT;
    size_t buckets;
    if (value_max < CB_NUMBER_DIGITS_MAX || value_max > CB_VALUE_BYTES_LIMIT ||
        store_config_buckets(cfg->buckets_initial, &buckets) != CB_ERR_OK ||
        cfg->memory_bytes_max < sizeof(cb_store) + (uint64_t)buckets * sizeof(store_item *)) {
        return CB_ERR_INVALID;
    }
    if (alloc == NULL) {
        alloc = cb_alloc_default();
    }
    cb_store *store = cb_alloc_calloc(alloc, 1, sizeof(*store));
    if (store == NULL) {
        return CB_ERR_NOMEM;
    }
    store->tables[0].buckets = cb_alloc_calloc(alloc, buckets, sizeof(store_item *));
    if (store->tables[0].buckets == NULL) {
        goto out_free_store;
    }
    store->alloc = alloc;
    store->tables[0].size = buckets;
    store->lru.prev = &store->lru;
    store->lru.next = &store->lru;
    store->memory_bytes_max = cfg->memory_bytes_max;
    store->hash_seed = cfg->hash_seed;
    store->cas_next = 1;
    store->value_bytes_max = value_max;
    store->sweep_buckets_max =
        cfg->sweep_buckets_max ? cfg->sweep_buckets_max : CB_STORE_SWEEP_BUCKETS_DEFAULT;
    store->tombstone_ttl_ns =
        cfg->tombstone_ttl_ns ? cfg->tombstone_ttl_ns : CB_STORE_TOMBSTONE_TTL_NS_DEFAULT;
    store->bytes_used = store_fixed_bytes(store);
    assert(store->bytes_used <= store->memory_bytes_max);
    *out = store;
    return CB_ERR_OK;

out_free_store:
    cb_alloc_free(alloc, store);
    return CB_ERR_NOMEM;
}

void cb_store_del(cb_store *store)
{
    if (store == NULL) {
        return;
    }
    store_link *l = store->lru.next;
    while (l != &store->lru) {
        store_link *next = l->next;
        cb_alloc_free(store->alloc, l);
        l = next;
    }
    cb_alloc_free(store->alloc, store->tables[1].buckets);
    cb_alloc_free(store->alloc, store->tables[0].buckets);
    cb_alloc_free(store->alloc, store);
}

/* ---- operations ---- */

int cb_store_get(cb_store *store, const uint8_t *key, size_t key_len, uint64_t now_ns,
                 cb_store_view *out)
{
    store->stats.cmd_get++;
    int rc = store_check_key(key, key_len);
    if (rc == CB_ERR_OK && out == NULL) {
        rc = CB_ERR_INVALID;
    }
    if (rc != CB_ERR_OK) {
        return rc;
    }
    store_item *it = store_find_entry(store, key, key_len, store_hash(store, key, key_len), now_ns);
    if (it == NULL || it->tombstone) {
        /* A tombstone reads as a miss that still tells its version (quorum reads order it). */
        memset(out, 0, sizeof *out);
        out->version = it != NULL ? it->version : 0;
        store->stats.get_misses++;
        return CB_ERR_NOT_FOUND;
    }
    store->stats.get_hits++;
    store_lru_bump(store, it);
    out->value = it->data + it->key_len;
    out->value_len = it->value_len;
    out->flags = it->flags;
    out->cas = it->cas;
    out->version = it->version;
    out->expire_ns = it->expire_ns;
    return CB_ERR_OK;
}

/* The one path of set, add, replace and cas. */
static int store_write(cb_store *store, store_mode mode, const uint8_t *key, size_t key_len,
                       const store_value *v, uint32_t flags, uint64_t ttl_ns, uint64_t cas_expected,
                       uint64_t now_ns, uint64_t *cas_out)
{
    int rc = store_check_key(key, key_len);
    if (rc == CB_ERR_OK) {
        rc = store_check_value(store, v->head, v->head_len);
    }
    if (rc != CB_ERR_OK) {
        return rc;
    }
    uint32_t hash = store_hash(store, key, key_len);
    /* A tombstone is no item for the mode's condition, but the new item replaces it. */
    store_item *entry = store_find_entry(store, key, key_len, hash, now_ns);
    store_item *old = entry != NULL && entry->tombstone ? NULL : entry;
    if ((mode == STORE_MODE_ADD && old != NULL) || (mode == STORE_MODE_REPLACE && old == NULL)) {
        return CB_ERR_NOT_STORED;
    }
    if (mode == STORE_MODE_CAS && old == NULL) {
        store->stats.cas_misses++;
        return CB_ERR_NOT_FOUND;
    }
    if (mode == STORE_MODE_CAS && old->cas != cas_expected) {
        store->stats.cas_badval++;
        return CB_ERR_EXISTS;
    }
    rc = store_put(store, entry, key, key_len, hash, v, flags, store_expire_at(now_ns, ttl_ns),
                   now_ns, cas_out);
    if (rc == CB_ERR_OK && mode == STORE_MODE_CAS) {
        store->stats.cas_hits++;
    }
    return rc;
}

int cb_store_set(cb_store *store, const uint8_t *key, size_t key_len, const uint8_t *value,
                 size_t value_len, uint32_t flags, uint64_t ttl_ns, uint64_t now_ns,
                 uint64_t *cas_out)
{
    store->stats.cmd_set++;
    store_value v = {value, value_len, NULL, 0, 0, 0, 0};
    return store_write(store, STORE_MODE_SET, key, key_len, &v, flags, ttl_ns, 0, now_ns, cas_out);
}

int cb_store_set_versioned(cb_store *store, const uint8_t *key, size_t key_len,
                           const uint8_t *value, size_t value_len, uint32_t flags, uint64_t ttl_ns,
                           uint64_t version, uint64_t now_ns, uint64_t *cas_out,
                           uint64_t *version_out)
{
    int rc = store_check_key(key, key_len);
    if (rc == CB_ERR_OK) {
        rc = store_check_value(store, value, value_len);
    }
    if (rc != CB_ERR_OK) {
        return rc;
    }
    uint32_t hash = store_hash(store, key, key_len);
    /* A tombstone orders writes too: an older set must not bring a deleted key back. */
    store_item *old = store_find_entry(store, key, key_len, hash, now_ns);
    store->stats.cmd_set++;
    if (old != NULL && version <= old->version) {
        /* Last writer wins by version: an older (or the same) write changes nothing. */
        store->stats.set_superseded++;
        if (cas_out != NULL) {
            *cas_out = old->cas;
        }
        if (version_out != NULL) {
            *version_out = old->version;
        }
        return CB_ERR_OK;
    }
    store_value v = {value, value_len, NULL, 0, 0, version, 0};
    rc = store_write(store, STORE_MODE_SET, key, key_len, &v, flags, ttl_ns, 0, now_ns, cas_out);
    if (rc == CB_ERR_OK && version_out != NULL) {
        *version_out = version;
    }
    return rc;
}

int cb_store_add(cb_store *store, const uint8_t *key, size_t key_len, const uint8_t *value,
                 size_t value_len, uint32_t flags, uint64_t ttl_ns, uint64_t now_ns,
                 uint64_t *cas_out)
{
    store->stats.cmd_add++;
    store_value v = {value, value_len, NULL, 0, 0, 0, 0};
    return store_write(store, STORE_MODE_ADD, key, key_len, &v, flags, ttl_ns, 0, now_ns, cas_out);
}

int cb_store_replace(cb_store *store, const uint8_t *key, size_t key_len, const uint8_t *value,
                     size_t value_len, uint32_t flags, uint64_t ttl_ns, uint64_t now_ns,
                     uint64_t *cas_out)
{
    store->stats.cmd_replace++;
    store_value v = {value, value_len, NULL, 0, 0, 0, 0};
    return store_write(store, STORE_MODE_REPLACE, key, key_len, &v, flags, ttl_ns, 0, now_ns,
                       cas_out);
}

int cb_store_cas(cb_store *store, const uint8_t *key, size_t key_len, const uint8_t *value,
                 size_t value_len, uint32_t flags, uint64_t ttl_ns, uint64_t cas_expected,
                 uint64_t now_ns, uint64_t *cas_out)
{
    store->stats.cmd_cas++;
    store_value v = {value, value_len, NULL, 0, 0, 0, 0};
    return store_write(store, STORE_MODE_CAS, key, key_len, &v, flags, ttl_ns, cas_expected, now_ns,
                       cas_out);
}

/* append (at_end 1) and prepend (at_end 0). */
static int store_concat(cb_store *store, int at_end, const uint8_t *key, size_t key_len,
                        const uint8_t *data, size_t data_len, uint64_t now_ns, uint64_t *cas_out)
{
    int rc = store_check_key(key, key_len);
    if (rc == CB_ERR_OK && data == NULL && data_len > 0) {
        rc = CB_ERR_INVALID;
    }
    if (rc != CB_ERR_OK) {
        return rc;
    }
    uint32_t hash = store_hash(store, key, key_len);
    store_item *old = store_find(store, key, key_len, hash, now_ns);
    if (old == NULL) {
        return CB_ERR_NOT_STORED;
    }
    if (data_len > store->value_bytes_max - old->value_len) {
        return CB_ERR_VALUE_TOO_LARGE;
    }
    const uint8_t *old_value = old->data + old->key_len;
    store_value v = {old_value, old->value_len, data, data_len, 1, 0, 0};
    if (!at_end) {
        v = (store_value){data, data_len, old_value, old->value_len, 1, 0, 0};
    }
    return store_put(store, old, key, key_len, hash, &v, old->flags, old->expire_ns, now_ns,
                     cas_out);
}

int cb_store_append(cb_store *store, const uint8_t *key, size_t key_len, const uint8_t *data,
                    size_t data_len, uint64_t now_ns, uint64_t *cas_out)
{
    store->stats.cmd_append++;
    return store_concat(store, 1, key, key_len, data, data_len, now_ns, cas_out);
}

int cb_store_prepend(cb_store *store, const uint8_t *key, size_t key_len, const uint8_t *data,
                     size_t data_len, uint64_t now_ns, uint64_t *cas_out)
{
    store->stats.cmd_prepend++;
    return store_concat(store, 0, key, key_len, data, data_len, now_ns, cas_out);
}

int cb_store_delete(cb_store *store, const uint8_t *key, size_t key_len, uint64_t now_ns)
{
    store->stats.cmd_delete++;
    int rc = store_check_key(key, key_len);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    store_item *it = store_find(store, key, key_len, store_hash(store, key, key_len), now_ns);
    if (it == NULL) {
        return CB_ERR_NOT_FOUND;
    }
    store_drop_item(store, it, STORE_DROP_DELETED);
    return CB_ERR_OK;
}

int cb_store_delete_versioned(cb_store *store, const uint8_t *key, size_t key_len, uint64_t version,
                              uint64_t now_ns, uint64_t *version_out)
{
    store->stats.cmd_delete++;
    int rc = store_check_key(key, key_len);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    uint32_t hash = store_hash(store, key, key_len);
    store_item *entry = store_find_entry(store, key, key_len, hash, now_ns);
    int live = entry != NULL && !entry->tombstone;
    if (version == 0) {
        if (live) {
            store_drop_item(store, entry, STORE_DROP_DELETED);
        }
        return live ? CB_ERR_OK : CB_ERR_NOT_FOUND;
    }
    if (entry != NULL && version <= entry->version) {
        /* Last writer wins: a newer item or tombstone is already there. */
        store->stats.delete_superseded++;
        if (version_out != NULL) {
            *version_out = entry->version;
        }
        return live ? CB_ERR_OK : CB_ERR_NOT_FOUND;
    }
    store_value v = {NULL, 0, NULL, 0, 0, version, 1};
    rc = store_put(store, entry, key, key_len, hash, &v, 0,
                   store_expire_at(now_ns, store->tombstone_ttl_ns), now_ns, NULL);
    if (rc != CB_ERR_OK && live) {
        /* No room even for a key: delete without a tombstone rather than not at all. */
        store_drop_item(store, entry, STORE_DROP_DELETED);
    }
    if (rc == CB_ERR_OK) {
        store->stats.tombstones++;
    }
    if (version_out != NULL) {
        *version_out = version;
    }
    return live ? CB_ERR_OK : CB_ERR_NOT_FOUND;
}

/* Parse 1..CB_NUMBER_DIGITS_MAX ASCII digits into *out; 0 if not such a number. */
static int store_parse_u64(const uint8_t *buf, size_t buf_len, uint64_t *out)
{
    if (buf_len == 0 || buf_len > CB_NUMBER_DIGITS_MAX) {
        return 0;
    }
    uint64_t n = 0;
    for (size_t i = 0; i < buf_len; i++) {
        if (buf[i] < '0' || buf[i] > '9') {
            return 0;
        }
        uint64_t d = (uint64_t)(buf[i] - '0');
        if (n > (UINT64_MAX - d) / 10) {
            return 0;
        }
        n = n * 10 + d;
    }
    *out = n;
    return 1;
}

/* Write `n` in decimal into out[0..CB_NUMBER_DIGITS_MAX); returns the digit count. */
static size_t store_format_u64(uint64_t n, uint8_t *out)
{
    uint8_t rev[CB_NUMBER_DIGITS_MAX];
    size_t len = 0;
    do {
        rev[len++] = (uint8_t)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    for (size_t i = 0; i < len; i++) {
        out[i] = rev[len - 1 - i];
    }
    return len;
}

/* incr (up 1) and decr (up 0). */
static int store_arith(cb_store *store, int up, const uint8_t *key, size_t key_len, uint64_t delta,
                       uint64_t now_ns, uint64_t *value_out, uint64_t *cas_out)
{
    int rc = store_check_key(key, key_len);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    uint32_t hash = store_hash(store, key, key_len);
    store_item *old = store_find(store, key, key_len, hash, now_ns);
    if (old == NULL) {
        return CB_ERR_NOT_FOUND;
    }
    uint64_t n;
    if (!store_parse_u64(old->data + old->key_len, old->value_len, &n)) {
        return CB_ERR_NOT_NUMBER;
    }
    if (up) {
        n += delta; /* wraps modulo 2^64, as memcached's incr */
    } else {
        n = delta > n ? 0 : n - delta;
    }
    uint8_t digits[CB_NUMBER_DIGITS_MAX];
    store_value v = {digits, store_format_u64(n, digits), NULL, 0, 1, 0, 0};
    rc = store_put(store, old, key, key_len, hash, &v, old->flags, old->expire_ns, now_ns, cas_out);
    if (rc == CB_ERR_OK && value_out != NULL) {
        *value_out = n;
    }
    return rc;
}

int cb_store_incr(cb_store *store, const uint8_t *key, size_t key_len, uint64_t delta,
                  uint64_t now_ns, uint64_t *value_out, uint64_t *cas_out)
{
    store->stats.cmd_incr++;
    return store_arith(store, 1, key, key_len, delta, now_ns, value_out, cas_out);
}

int cb_store_decr(cb_store *store, const uint8_t *key, size_t key_len, uint64_t delta,
                  uint64_t now_ns, uint64_t *value_out, uint64_t *cas_out)
{
    store->stats.cmd_decr++;
    return store_arith(store, 0, key, key_len, delta, now_ns, value_out, cas_out);
}

int cb_store_touch(cb_store *store, const uint8_t *key, size_t key_len, uint64_t ttl_ns,
                   uint64_t now_ns)
{
    store->stats.cmd_touch++;
    int rc = store_check_key(key, key_len);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    store_item *it = store_find(store, key, key_len, store_hash(store, key, key_len), now_ns);
    if (it == NULL) {
        return CB_ERR_NOT_FOUND;
    }
    it->expire_ns = store_expire_at(now_ns, ttl_ns);
    store_lru_bump(store, it);
    return CB_ERR_OK;
}

void cb_store_flush(cb_store *store)
{
    store->stats.cmd_flush++;
    /* Every item alive now has cas < cas_next; every later one gets cas >= cas_next. */
    store->flush_cas = store->cas_next;
}

/* Free the dead items of one chain; returns how many. */
static size_t store_sweep_chain(cb_store *store, store_table *t, store_item **slot, uint64_t now_ns)
{
    size_t freed = 0;
    while (*slot != NULL) {
        store_item *it = *slot;
        store_drop why = store_item_state(store, it, now_ns);
        if (why == STORE_LIVE) {
            slot = &it->chain;
            continue;
        }
        *slot = it->chain;
        t->used--;
        store_forget(store, it, why);
        freed++;
    }
    return freed;
}

size_t cb_store_sweep(cb_store *store, uint64_t now_ns)
{
    size_t freed = 0;
    for (uint32_t n = 0; n < store->sweep_buckets_max; n++) {
        /* The cursor spans the larger table; a smaller one is visited at cursor mod size. */
        size_t span = store->tables[0].size > store->tables[1].size ? store->tables[0].size
                                                                    : store->tables[1].size;
        if (store->sweep_cursor >= span) {
            store->sweep_cursor = 0;
        }
        for (unsigned i = 0; i < 2; i++) {
            store_table *t = &store->tables[i];
            if (t->buckets != NULL) {
                freed += store_sweep_chain(
                    store, t, &t->buckets[store->sweep_cursor & (t->size - 1)], now_ns);
            }
        }
        store->sweep_cursor++;
    }
    store_rehash_step(store, CB_STORE_REHASH_BUCKETS_PER_OP);
    /* A resize declined earlier (allocation failure, no room yet) gets another chance. */
    store_maybe_grow(store, NULL, now_ns);
    return freed;
}

void cb_store_stats_get(const cb_store *store, cb_store_stats *out)
{
    *out = store->stats;
    out->items = (uint64_t)store->tables[0].used + store->tables[1].used;
    out->bytes_used = store->bytes_used;
    out->memory_bytes_max = store->memory_bytes_max;
    out->buckets = (uint64_t)store->tables[0].size + store->tables[1].size;
    out->rehashing = store->tables[1].buckets != NULL;
}

/* Walk one table: every item in its home bucket, counts and bytes summed. 0 on a violation. */
static int store_check_table(const cb_store *store, unsigned idx, uint64_t *bytes)
{
    const store_table *t = &store->tables[idx];
    size_t count = 0;
    for (size_t b = 0; b < t->size; b++) {
        for (const store_item *it = t->buckets[b]; it != NULL; it = it->chain) {
            if ((it->hash & (t->size - 1)) != b || store_home_idx(store, it->hash) != idx ||
                it->cas >= store->cas_next) {
                return 0;
            }
            *bytes += store_item_bytes(it);
            count++;
        }
    }
    return count == t->used;
}

int cb_store_check(const cb_store *store)
{
    uint64_t bytes = store_fixed_bytes(store);
    if (!store_check_table(store, 0, &bytes) || !store_check_table(store, 1, &bytes)) {
        return CB_ERR_INVALID;
    }
    size_t count = 0;
    for (const store_link *l = store->lru.next; l != &store->lru; l = l->next) {
        if (l->next->prev != l || l->prev->next != l) {
            return CB_ERR_INVALID;
        }
        count++;
    }
    if (count != store->tables[0].used + store->tables[1].used || bytes != store->bytes_used ||
        store->bytes_used > store->memory_bytes_max) {
        return CB_ERR_INVALID;
    }
    return CB_ERR_OK;
}

/* ---- cursor scan (Redis SCAN's reverse-binary cursor, dict.c dictScan) ---- */

static uint32_t store_rev32(uint32_t v)
{
    v = ((v >> 1) & 0x55555555u) | ((v & 0x55555555u) << 1);
    v = ((v >> 2) & 0x33333333u) | ((v & 0x33333333u) << 2);
    v = ((v >> 4) & 0x0F0F0F0Fu) | ((v & 0x0F0F0F0Fu) << 4);
    v = ((v >> 8) & 0x00FF00FFu) | ((v & 0x00FF00FFu) << 8);
    return (v >> 16) | (v << 16);
}

/* The next bucket cursor after `v` for a smaller table with mask m0; 0 when done. */
static uint32_t store_scan_advance(uint32_t v, uint32_t m0)
{
    v |= ~m0;
    v = store_rev32(v);
    v++;
    return store_rev32(v);
}

/* State of one cb_store_scan call. */
typedef struct store_scan {
    const cb_store *store;
    uint64_t now_ns;
    cb_store_scan_item *out;
    size_t cap;
    size_t n;
    size_t work;     /* budget left */
    uint32_t bucket; /* the group's bucket cursor */
    uint32_t pos;    /* items of the group passed so far, live or dead */
    uint32_t skip;   /* items of the group to pass without returning */
} store_scan;

/* Pass one chain; 0 when the call must stop inside it (out full or budget gone). */
static int store_scan_chain(store_scan *sc, const store_item *it)
{
    for (; it != NULL; it = it->chain) {
        if (sc->pos < sc->skip) {
            sc->pos++;
            continue;
        }
        if (sc->n == sc->cap || sc->work == 0) {
            return 0;
        }
        sc->work--;
        sc->pos++;
        if (store_item_state(sc->store, it, sc->now_ns) != STORE_LIVE) {
            continue;
        }
        cb_store_scan_item *o = &sc->out[sc->n++];
        o->key = it->data;
        o->key_len = it->key_len;
        o->value = it->data + it->key_len;
        o->value_len = it->value_len;
        o->flags = it->flags;
        o->version = it->version;
        o->tombstone = it->tombstone;
        o->expire_ns = it->expire_ns;
        o->resume = (uint64_t)sc->pos << 32 | sc->bucket;
    }
    return 1;
}

/* Pass the group of sc->bucket in both tables; 0 when stopped inside it. */
static int store_scan_group(store_scan *sc)
{
    const store_table *t0 = &sc->store->tables[0];
    const store_table *t1 = &sc->store->tables[1];
    uint32_t m0 = (uint32_t)(t0->size - 1);
    if (!store_scan_chain(sc, t0->buckets[sc->bucket & m0])) {
        return 0;
    }
    if (t1->buckets == NULL) {
        return 1;
    }
    uint32_t m1 = (uint32_t)(t1->size - 1);
    uint32_t v = sc->bucket;
    do {
        if (!store_scan_chain(sc, t1->buckets[v & m1])) {
            return 0;
        }
        v = (((v | m0) + 1) & ~m0) | (v & m0);
    } while ((v & (m0 ^ m1)) != 0);
    return 1;
}

int cb_store_scan(const cb_store *store, uint64_t cursor, uint64_t now_ns, cb_store_scan_item *out,
                  size_t cap, size_t *n_out, uint64_t *next_out)
{
    if (store == NULL || out == NULL || n_out == NULL || next_out == NULL || cap == 0) {
        return CB_ERR_INVALID;
    }
    /* tables[0] is the smaller one: resizes only grow. */
    uint32_t m0 = (uint32_t)(store->tables[0].size - 1);
    store_scan sc = {store,
                     now_ns,
                     out,
                     cap,
                     0,
                     CB_STORE_SCAN_WORK_PER_ITEM * cap + 1,
                     (uint32_t)cursor,
                     0,
                     (uint32_t)(cursor >> 32)};
    for (int first = 1;; first = 0) {
        size_t n_before = sc.n;
        sc.pos = 0;
        sc.work--; /* the bucket visit; the loop only goes on with budget left */
        if (!store_scan_group(&sc)) {
            /* Split only the call's first group (progress); else end before the group. */
            sc.n = first ? sc.n : n_before;
            *next_out = first ? (uint64_t)sc.pos << 32 | sc.bucket : sc.bucket;
            break;
        }
        sc.skip = 0;
        sc.bucket = store_scan_advance(sc.bucket, m0);
        *next_out = sc.bucket;
        if (sc.bucket == 0 || sc.n == sc.cap || sc.work == 0) {
            break;
        }
    }
    *n_out = sc.n;
    return CB_ERR_OK;
}
