/*
 * cb_place_maglev.c: Maglev consistent hashing (Eisenbud et al., NSDI 2016, section 3.4).
 *
 * Each node has a permutation of the table's M entries (M prime): entry j of it is
 * (offset + j * skip) mod M, with offset = h1(name) mod M and skip = h2(name) mod (M - 1) + 1
 * (h1, h2: XXH3-64 of the name under two seeds derived from the config seed). Nodes take
 * turns, in list order, claiming their next preferred entry that is still empty, until the
 * table is full (the paper's Pseudocode 1).
 *
 * Weights follow Envoy's maglev (source/extensions/load_balancing_policies/maglev): a node
 * of weight w takes its turn in round t only when t * w >= its target, and each turn adds the
 * largest weight to its target, so it claims entries in proportion to w. In integers: the
 * same table on every platform. With equal weights every node takes every turn, as in the
 * paper.
 *
 * A key goes to table[hash mod M]. Replicas, and the choice when that node is down, are the
 * next distinct up nodes in the following table entries: the table interleaves nodes
 * pseudo-randomly, so a down node's keys spread over the others.
 */
#include "cb_place_internal.h"

#include <assert.h>
#include <xxhash.h>

/* Seeds of the two name hashes, derived from the config seed (arbitrary odd constants). */
#define MAGLEV_SEED_OFFSET 0x6d61676c65762d31ull
#define MAGLEV_SEED_SKIP   0x6d61676c65762d32ull

static void maglev_init_nodes(cb_placement *p)
{
    uint32_t m = p->config.maglev_table_size;
    for (uint32_t pos = 0; pos < p->count; pos++) {
        place_node *n = &p->nodes[pos];
        const char *name = place_name(p, pos);
        uint64_t h1 = XXH3_64bits_withSeed(name, n->name_len, p->config.seed ^ MAGLEV_SEED_OFFSET);
        uint64_t h2 = XXH3_64bits_withSeed(name, n->name_len, p->config.seed ^ MAGLEV_SEED_SKIP);
        n->mg_offset = (uint32_t)(h1 % m);
        n->mg_skip = (uint32_t)(h2 % (m - 1) + 1);
        n->mg_pos = n->mg_offset;
        n->mg_target = 0;
    }
}

/* Node `pos` claims its next preferred empty entry. The table has one, so this ends. */
static void maglev_claim(cb_placement *p, uint32_t pos)
{
    uint32_t m = p->config.maglev_table_size;
    place_node *n = &p->nodes[pos];
    uint32_t c = n->mg_pos;
    while (p->maglev[c] != PLACE_MAGLEV_EMPTY) {
        c = c + n->mg_skip >= m ? c + n->mg_skip - m : c + n->mg_skip;
    }
    p->maglev[c] = pos;
    n->mg_pos = c + n->mg_skip >= m ? c + n->mg_skip - m : c + n->mg_skip;
}

void place_maglev_build(cb_placement *p)
{
    uint32_t m = p->config.maglev_table_size;
    for (uint32_t i = 0; i < m; i++) {
        p->maglev[i] = PLACE_MAGLEV_EMPTY;
    }
    if (p->count == 0) {
        return;
    }
    maglev_init_nodes(p);
    uint64_t weight_max = 0;
    for (uint32_t pos = 0; pos < p->count; pos++) {
        weight_max = p->nodes[pos].weight > weight_max ? p->nodes[pos].weight : weight_max;
    }
    uint32_t filled = 0;
    for (uint64_t round = 0; filled < m; round++) {
        for (uint32_t pos = 0; pos < p->count && filled < m; pos++) {
            place_node *n = &p->nodes[pos];
            if (round * n->weight < n->mg_target) {
                continue;
            }
            n->mg_target += weight_max;
            maglev_claim(p, pos);
            filled++;
        }
    }
}

size_t place_maglev_lookup(const cb_placement *p, uint64_t hash, uint32_t *out, size_t cap)
{
    uint32_t m = p->config.maglev_table_size;
    uint32_t at = (uint32_t)(hash % m);
    size_t n = 0;
    for (uint32_t step = 0; step < m && n < cap; step++) {
        uint32_t i = at + step >= m ? at + step - m : at + step;
        uint32_t pos = p->maglev[i];
        assert(pos < p->count);
        if (p->nodes[pos].up) {
            place_out_push(p, out, &n, pos);
        }
    }
    return n;
}
