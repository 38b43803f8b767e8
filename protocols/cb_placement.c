/*
 * cb_placement.c: the node list every strategy shares (validation, add, remove, marks),
 * lookup dispatch, and the two strategies that need no structure of their own: modulo and
 * jump. Ketama, maglev and rendezvous live in cb_place_ketama.c, cb_place_maglev.c and
 * cb_place_hrw.c. Contract in cb_placement.h; design notes in docs/placement.md.
 */
#include "cb_place_internal.h"

#include "cb_err.h"
#include "cb_rng.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

/* Jump's replicas: rehash attempts before the linear fallback (see place_jump_lookup). */
#define PLACE_JUMP_ATTEMPTS_BASE 32u

static const char *const place_strategy_names[CB_PLACEMENT_STRATEGY_COUNT] = {
    "modulo", "ketama", "rendezvous", "jump", "maglev",
};

void cb_placement_config_default(cb_placement_config *config)
{
    memset(config, 0, sizeof(*config));
    config->ketama_points = 160;
    config->ketama_default_port = 11211;
    config->maglev_table_size = 65537;
}

const char *cb_placement_strategy_name(cb_placement_strategy strategy)
{
    if ((unsigned)strategy >= CB_PLACEMENT_STRATEGY_COUNT) {
        return "?";
    }
    return place_strategy_names[strategy];
}

int cb_placement_strategy_from_name(const char *name, cb_placement_strategy *out)
{
    for (unsigned i = 0; i < CB_PLACEMENT_STRATEGY_COUNT; i++) {
        if (strcmp(name, place_strategy_names[i]) == 0) {
            *out = (cb_placement_strategy)i;
            return CB_ERR_OK;
        }
    }
    return CB_ERR_INVALID;
}

uint64_t place_key_hash(const cb_placement *p, const uint8_t *key, size_t key_len)
{
    return XXH3_64bits_withSeed(key, key_len, p->config.seed);
}

static int place_is_prime(uint32_t n)
{
    if (n < 2) {
        return 0;
    }
    for (uint32_t d = 2; (uint64_t)d * d <= n; d++) {
        if (n % d == 0) {
            return 0;
        }
    }
    return 1;
}

/* Check the config against the strategy and fill in nodes_max. */
static int place_config_check(cb_placement_strategy strategy, cb_placement_config *c,
                              size_t node_count)
{
    if ((unsigned)strategy >= CB_PLACEMENT_STRATEGY_COUNT || node_count > CB_PLACEMENT_NODES_MAX) {
        return CB_ERR_INVALID;
    }
    if (c->nodes_max == 0) {
        size_t want = node_count * 2 < 16 ? 16 : node_count * 2;
        c->nodes_max = (uint32_t)(want > CB_PLACEMENT_NODES_MAX ? CB_PLACEMENT_NODES_MAX : want);
    }
    if (c->nodes_max > CB_PLACEMENT_NODES_MAX || node_count > c->nodes_max) {
        return CB_ERR_INVALID;
    }
    if (strategy == CB_PLACEMENT_KETAMA && (c->ketama_points == 0 || c->ketama_points % 4 != 0 ||
                                            c->ketama_points > CB_PLACEMENT_KETAMA_POINTS_MAX)) {
        return CB_ERR_INVALID;
    }
    if (strategy == CB_PLACEMENT_MAGLEV && (c->maglev_table_size < c->nodes_max ||
                                            c->maglev_table_size > CB_PLACEMENT_MAGLEV_TABLE_MAX ||
                                            !place_is_prime(c->maglev_table_size))) {
        return CB_ERR_INVALID;
    }
    return CB_ERR_OK;
}

static int place_alloc_arrays(cb_placement *p)
{
    size_t cap = p->config.nodes_max;
    p->nodes = cb_alloc_calloc(p->alloc, cap, sizeof(*p->nodes));
    p->names = cb_alloc_calloc(p->alloc, cap, PLACE_NAME_STRIDE);
    if (p->nodes == NULL || p->names == NULL) {
        return CB_ERR_NOMEM;
    }
    if (p->strategy == CB_PLACEMENT_MODULO) {
        p->prefix = cb_alloc_calloc(p->alloc, cap + 1, sizeof(*p->prefix));
        return p->prefix == NULL ? CB_ERR_NOMEM : CB_ERR_OK;
    }
    if (p->strategy == CB_PLACEMENT_KETAMA) {
        p->ring_cap = place_ketama_ring_cap(&p->config);
        p->ring = cb_alloc_calloc(p->alloc, p->ring_cap, sizeof(*p->ring));
        p->ring_scratch = cb_alloc_calloc(p->alloc, p->ring_cap, sizeof(*p->ring_scratch));
        return p->ring == NULL || p->ring_scratch == NULL ? CB_ERR_NOMEM : CB_ERR_OK;
    }
    if (p->strategy == CB_PLACEMENT_MAGLEV) {
        p->maglev = cb_alloc_calloc(p->alloc, p->config.maglev_table_size, sizeof(*p->maglev));
        return p->maglev == NULL ? CB_ERR_NOMEM : CB_ERR_OK;
    }
    return CB_ERR_OK;
}

void cb_placement_del(cb_placement *p)
{
    if (p == NULL) {
        return;
    }
    const cb_alloc *a = p->alloc;
    cb_alloc_free(a, p->maglev);
    cb_alloc_free(a, p->ring_scratch);
    cb_alloc_free(a, p->ring);
    cb_alloc_free(a, p->prefix);
    cb_alloc_free(a, p->names);
    cb_alloc_free(a, p->nodes);
    cb_alloc_free(a, p);
}

/* Recompute whatever the strategy derives from the list. Never fails: sized at new. */
static void place_rebuild(cb_placement *p)
{
    switch (p->strategy) {
    case CB_PLACEMENT_MODULO:
        p->prefix[0] = 0;
        for (uint32_t i = 0; i < p->count; i++) {
            p->prefix[i + 1] = p->prefix[i] + p->nodes[i].weight;
        }
        break;
    case CB_PLACEMENT_KETAMA:
        place_ketama_build(p);
        break;
    case CB_PLACEMENT_MAGLEV:
        place_maglev_build(p);
        break;
    case CB_PLACEMENT_RENDEZVOUS:
    case CB_PLACEMENT_JUMP:
        break;
    }
    p->weights_equal = 1;
    for (uint32_t i = 1; i < p->count; i++) {
        p->weights_equal &= p->nodes[i].weight == p->nodes[0].weight;
    }
}

static int place_find(const cb_placement *p, uint32_t id)
{
    for (uint32_t i = 0; i < p->count; i++) {
        if (p->nodes[i].id == id) {
            return (int)i;
        }
    }
    return -1;
}

/*
 * Validate `node` against the list and write it at position p->count (not yet counted).
 * Returns 0 or the error of cb_placement_add().
 */
static int place_stage_node(cb_placement *p, const cb_placement_node *node)
{
    if (node->weight == 0 || node->weight > CB_PLACEMENT_WEIGHT_MAX ||
        place_find(p, node->id) >= 0) {
        return CB_ERR_INVALID;
    }
    if (p->strategy == CB_PLACEMENT_JUMP && p->count > 0 && node->weight != p->nodes[0].weight) {
        return CB_ERR_INVALID;
    }
    char *name = p->names + (size_t)p->count * PLACE_NAME_STRIDE;
    size_t len;
    if (node->name == NULL) {
        int n = snprintf(name, PLACE_NAME_STRIDE, "%u", node->id);
        assert(n > 0 && (size_t)n < PLACE_NAME_STRIDE);
        len = (size_t)n;
    } else {
        len = strnlen(node->name, PLACE_NAME_STRIDE);
        if (len > CB_PLACEMENT_NAME_BYTES_MAX) {
            return CB_ERR_TOO_LARGE;
        }
        memcpy(name, node->name, len + 1);
    }
    uint64_t ident = XXH3_64bits_withSeed(name, len, p->config.seed);
    for (uint32_t i = 0; i < p->count; i++) {
        if (p->nodes[i].ident == ident && strcmp(place_name(p, i), name) == 0) {
            return CB_ERR_INVALID;
        }
    }
    place_node *n = &p->nodes[p->count];
    memset(n, 0, sizeof(*n));
    n->id = node->id;
    n->weight = node->weight;
    n->ident = ident;
    n->name_len = (uint32_t)len;
    n->up = 1;
    return CB_ERR_OK;
}

int cb_placement_new(cb_placement_strategy strategy, const cb_placement_config *config,
                     const cb_placement_node *nodes, size_t node_count, const cb_alloc *alloc,
                     cb_placement **out)
{
    cb_placement_config c = *config;
    int rc = place_config_check(strategy, &c, node_count);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    cb_placement *p = cb_alloc_calloc(alloc, 1, sizeof(*p));
    if (p == NULL) {
        return CB_ERR_NOMEM;
    }
    p->strategy = strategy;
    p->config = c;
    p->alloc = alloc;
    rc = place_alloc_arrays(p);
    if (rc != CB_ERR_OK) {
        goto out_del;
    }
    for (size_t i = 0; i < node_count; i++) {
        rc = place_stage_node(p, &nodes[i]);
        if (rc != CB_ERR_OK) {
            goto out_del;
        }
        p->count++;
        p->up_count++;
    }
    place_rebuild(p);
    *out = p;
    return CB_ERR_OK;
out_del:
    cb_placement_del(p);
    return rc;
}

int cb_placement_add(cb_placement *p, const cb_placement_node *node)
{
    if (p->count >= p->config.nodes_max) {
        return CB_ERR_FULL;
    }
    int rc = place_stage_node(p, node);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    p->count++;
    p->up_count++;
    place_rebuild(p);
    return CB_ERR_OK;
}

int cb_placement_remove(cb_placement *p, uint32_t id)
{
    int pos = place_find(p, id);
    if (pos < 0) {
        return CB_ERR_NOT_FOUND;
    }
    uint32_t last = p->count - 1;
    p->up_count -= p->nodes[pos].up;
    if ((uint32_t)pos != last) {
        p->nodes[pos] = p->nodes[last];
        memcpy(p->names + (size_t)pos * PLACE_NAME_STRIDE, place_name(p, last), PLACE_NAME_STRIDE);
    }
    p->count--;
    place_rebuild(p);
    return CB_ERR_OK;
}

static int place_mark(cb_placement *p, uint32_t id, uint8_t up)
{
    int pos = place_find(p, id);
    if (pos < 0) {
        return CB_ERR_NOT_FOUND;
    }
    place_node *n = &p->nodes[pos];
    if (n->up != up) {
        n->up = up;
        p->up_count = up ? p->up_count + 1 : p->up_count - 1;
    }
    return CB_ERR_OK;
}

int cb_placement_mark_down(cb_placement *p, uint32_t id)
{
    return place_mark(p, id, 0);
}

int cb_placement_mark_up(cb_placement *p, uint32_t id)
{
    return place_mark(p, id, 1);
}

int cb_placement_is_up(const cb_placement *p, uint32_t id)
{
    int pos = place_find(p, id);
    return pos < 0 ? CB_ERR_NOT_FOUND : p->nodes[pos].up;
}

size_t cb_placement_node_count(const cb_placement *p)
{
    return p->count;
}

size_t cb_placement_up_count(const cb_placement *p)
{
    return p->up_count;
}

uint32_t cb_placement_node_id_at(const cb_placement *p, size_t pos)
{
    assert(pos < p->count);
    return p->nodes[pos].id;
}

cb_placement_strategy cb_placement_strategy_of(const cb_placement *p)
{
    return p->strategy;
}

/*
 * modulo: the slot hash mod (sum of weights) belongs to the node whose prefix range holds it
 * (with equal weights, node = hash mod N). Replicas: the following nodes in list order.
 */
static size_t place_modulo_lookup(const cb_placement *p, uint64_t hash, uint32_t *out, size_t cap)
{
    uint64_t slot = hash % p->prefix[p->count];
    uint32_t lo = 0, hi = p->count; /* invariant: prefix[lo] <= slot < prefix[hi] */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (p->prefix[mid] <= slot) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    size_t n = 0;
    for (uint32_t step = 0; step < p->count && n < cap; step++) {
        uint32_t pos = (lo + step) % p->count;
        if (p->nodes[pos].up) {
            out[n++] = p->nodes[pos].id;
        }
    }
    return n;
}

/*
 * Jump consistent hash (Lamping & Veach 2014, figure 1) in integers: the reference computes
 * j = (b + 1) * (2^31 / (r + 1)) in double; here j = floor((b + 1) * 2^31 / (r + 1)) exactly,
 * which keeps floats out of the decision. The two agree unless the exact quotient is an
 * integer that the double's two roundings bring just below: below 2^14 buckets that is 6041
 * (b, j) pairs, each hit by one value of r in 2^31, so about one key in 10^8 or fewer takes
 * a different path. The suite checks the published vectors and 10^5 keys against the double.
 */
uint32_t place_jump(uint64_t key, uint32_t buckets)
{
    uint64_t b = 0;
    uint64_t j = 0;
    while (j < buckets) {
        b = j;
        key = key * 2862933555777941757ull + 1;
        j = ((b + 1) << 31) / ((key >> 33) + 1);
    }
    return (uint32_t)b;
}

/*
 * jump: the primary is jump(hash, N) over list positions. Replicas (and the choice when the
 * primary is down) rehash: jump(mix64(hash + attempt), N), keeping the first distinct up
 * nodes, which keeps them uniform over the others. After a bounded number of attempts (only
 * reached when most nodes are down), the list is scanned in order from the last choice so the
 * answer is always complete.
 */
static size_t place_jump_lookup(const cb_placement *p, uint64_t hash, uint32_t *out, size_t cap)
{
    size_t n = 0;
    uint32_t pos = place_jump(hash, p->count);
    if (p->nodes[pos].up) {
        place_out_push(p, out, &n, pos);
    }
    uint64_t attempts = PLACE_JUMP_ATTEMPTS_BASE + 4u * (uint64_t)cap;
    for (uint64_t a = 1; a < attempts && n < cap; a++) {
        pos = place_jump(cb_rng_mix64(hash + a), p->count);
        if (p->nodes[pos].up) {
            place_out_push(p, out, &n, pos);
        }
    }
    for (uint32_t step = 1; step <= p->count && n < cap; step++) {
        uint32_t next = (pos + step) % p->count;
        if (p->nodes[next].up) {
            place_out_push(p, out, &n, next);
        }
    }
    return n;
}

int cb_placement_lookup(const cb_placement *p, const uint8_t *key, size_t key_len,
                        uint32_t *out_nodes, size_t out_cap)
{
    if (key_len > CB_KEY_BYTES_MAX) {
        return CB_ERR_KEY_TOO_LONG;
    }
    size_t cap = out_cap < CB_PLACEMENT_LIST_MAX ? out_cap : CB_PLACEMENT_LIST_MAX;
    /* Never ask for more nodes than are up: the ring and table walks stop once they have
     * them all instead of going round the whole structure. */
    cap = cap < p->up_count ? cap : p->up_count;
    if (cap == 0) {
        return 0;
    }
    size_t n = 0;
    switch (p->strategy) {
    case CB_PLACEMENT_MODULO:
        n = place_modulo_lookup(p, place_key_hash(p, key, key_len), out_nodes, cap);
        break;
    case CB_PLACEMENT_KETAMA:
        n = place_ketama_lookup(p, key, key_len, out_nodes, cap);
        break;
    case CB_PLACEMENT_RENDEZVOUS:
        n = place_hrw_lookup(p, place_key_hash(p, key, key_len), out_nodes, cap);
        break;
    case CB_PLACEMENT_JUMP:
        n = place_jump_lookup(p, place_key_hash(p, key, key_len), out_nodes, cap);
        break;
    case CB_PLACEMENT_MAGLEV:
        n = place_maglev_lookup(p, place_key_hash(p, key, key_len), out_nodes, cap);
        break;
    }
    assert(n <= cap);
    return (int)n;
}
