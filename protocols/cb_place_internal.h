/*
 * cb_place_internal.h: what the placement files share (cb_placement.c, cb_place_ketama.c,
 * cb_place_maglev.c, cb_place_hrw.c). Not part of the public contract: include
 * cb_placement.h instead.
 */
#ifndef CB_PLACE_INTERNAL_H
#define CB_PLACE_INTERNAL_H

#include "cb_limits.h"
#include "cb_placement.h"

#include <stddef.h>
#include <stdint.h>

/* Bytes reserved per node name: the name and its NUL. */
#define PLACE_NAME_STRIDE (CB_PLACEMENT_NAME_BYTES_MAX + 1u)

/* Marks an empty maglev table entry during population. */
#define PLACE_MAGLEV_EMPTY UINT32_MAX

typedef struct place_node {
    uint32_t id;
    uint32_t weight;
    uint64_t ident; /* XXH3-64 of the name with the config seed: the node's identity */
    uint32_t name_len;
    uint8_t up;         /* 1: lookups may choose it */
    uint32_t mg_offset; /* maglev permutation: offset, skip, and the next candidate entry */
    uint32_t mg_skip;
    uint32_t mg_pos;
    uint64_t mg_target; /* maglev weighted population: the next round it may claim an entry */
} place_node;

/* One ketama point: its position on the 32-bit ring and the list position of its node. */
typedef struct place_point {
    uint32_t value;
    uint32_t node;
} place_point;

struct cb_placement {
    cb_placement_strategy strategy;
    cb_placement_config config;
    const cb_alloc *alloc;
    uint32_t count;        /* nodes in the list */
    uint32_t up_count;     /* of which marked up */
    uint8_t weights_equal; /* every node has the same weight (rendezvous' fast path) */
    place_node *nodes;     /* config.nodes_max entries, list order */
    char *names;           /* config.nodes_max * PLACE_NAME_STRIDE bytes, NUL-terminated names */
    /* modulo: prefix[i] = sum of the weights of nodes [0, i); nodes_max + 1 entries */
    uint64_t *prefix;
    /* ketama: the ring sorted by (value, node), a scratch copy for sorting, and sizes */
    place_point *ring;
    place_point *ring_scratch;
    size_t ring_count;
    size_t ring_cap;
    /* maglev: config.maglev_table_size entries, each a list position */
    uint32_t *maglev;
};

static inline const char *place_name(const cb_placement *p, uint32_t pos)
{
    return p->names + (size_t)pos * PLACE_NAME_STRIDE;
}

/* Append list position `pos` to out[0 .. *n) if its node is not there yet; 1 if added. */
static inline int place_out_push(const cb_placement *p, uint32_t *out, size_t *n, uint32_t pos)
{
    uint32_t id = p->nodes[pos].id;
    for (size_t i = 0; i < *n; i++) {
        if (out[i] == id) {
            return 0;
        }
    }
    out[(*n)++] = id;
    return 1;
}

/* The key hash every strategy but ketama uses: XXH3-64 with the config seed. */
uint64_t place_key_hash(const cb_placement *p, const uint8_t *key, size_t key_len);

/* Jump consistent hash of `key` over `buckets` (>= 1) buckets (cb_placement.c). */
uint32_t place_jump(uint64_t key, uint32_t buckets);

/* ketama (cb_place_ketama.c). */
size_t place_ketama_ring_cap(const cb_placement_config *config);
void place_ketama_build(cb_placement *p);
size_t place_ketama_lookup(const cb_placement *p, const uint8_t *key, size_t key_len, uint32_t *out,
                           size_t cap);

/* maglev (cb_place_maglev.c). */
void place_maglev_build(cb_placement *p);
size_t place_maglev_lookup(const cb_placement *p, uint64_t hash, uint32_t *out, size_t cap);

/* rendezvous (cb_place_hrw.c). 32.32 fixed-point -log2(h / 2^64), at least 1. */
uint64_t place_hrw_neg_log2(uint64_t h);
size_t place_hrw_lookup(const cb_placement *p, uint64_t hash, uint32_t *out, size_t cap);

#endif
