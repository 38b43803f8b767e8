/*
 * cb_test_repl.h: fixtures the replication suites share (router, resync in both worlds).
 *
 * cb_test_placement: rendezvous over servers 0..n-1, weight 1, seed 7 — the placement every
 * replication test uses, so their key -> replica sets agree.
 * cb_test_reads_count: classify a completion of a test whose key k holds "v<k>-<gen[k]>"
 * after its latest write (user_data = k): writes count as failed unless stored; a GET is a
 * hit when it returns exactly that value, a miss, or stale (any other value).
 */
#ifndef CB_TEST_REPL_H
#define CB_TEST_REPL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cb_client.h"
#include "cb_err.h"
#include "cb_placement.h"

/* NULL when it cannot be made (n > 1024, or out of memory). */
static inline cb_placement *cb_test_placement(uint32_t n)
{
    cb_placement_node nodes[1024];
    if (n == 0 || n > 1024) {
        return NULL;
    }
    for (uint32_t s = 0; s < n; s++) {
        nodes[s] = (cb_placement_node){s, 1, NULL};
    }
    cb_placement_config pc;
    cb_placement_config_default(&pc);
    pc.seed = 7;
    cb_placement *p = NULL;
    return cb_placement_new(CB_PLACEMENT_RENDEZVOUS, &pc, nodes, n, NULL, &p) == CB_ERR_OK ? p
                                                                                           : NULL;
}

typedef struct cb_test_reads {
    uint64_t hits, misses, stale, failed;
} cb_test_reads;

static inline void cb_test_reads_count(cb_test_reads *r, const cb_completion *c,
                                       const uint32_t *gen)
{
    if (c->op != CB_OP_GET) {
        r->failed += c->outcome != CB_OUTCOME_STORED;
        return;
    }
    char want[32];
    uint32_t k = (uint32_t)c->user_data;
    snprintf(want, sizeof want, "v%u-%u", k, gen[k]);
    if (c->outcome == CB_OUTCOME_MISS) {
        r->misses++;
    } else if (c->outcome == CB_OUTCOME_HIT && c->value_len == strlen(want) &&
               memcmp(c->value, want, c->value_len) == 0) {
        r->hits++;
    } else {
        r->stale++;
    }
}

#endif
