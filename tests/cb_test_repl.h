/*
 * cb_test_repl.h: fixtures the replication suites share (router, resync in both worlds).
 *
 * cb_test_placement: rendezvous over servers 0..n-1, weight 1, seed 7 — the placement every
 * replication test uses, so their key -> replica sets agree.
 * cb_test_reads_count: classify a completion of a test whose key k holds "v<k>-<gen[k]>"
 * after its latest write (user_data = k): writes count as failed unless stored; a GET is a
 * hit when it returns exactly that value, a miss, or stale (any other value).
 * cb_test_phases: the resync suites' workload (one client, three phases), for their `next`
 * hook: write keys 0..keys-1, from start_ns[1] overwrite keys 0..newer-1, from start_ns[2]
 * read every key; key k is "key<k>" and holds "v<k>-<gen[k]>" after its latest write.
 * cb_test_resync_router: the resync suites' router: R = 3 with 2 spares, reads from the
 * primary, writes to all, 8 operations in flight.
 * cb_test_owned: of those keys under cb_test_placement(servers) with R = 3, how many have a
 * server of `mask` (bit s: server s < 32) among their 3 candidates, and how many of the
 * keys not overwritten (k >= newer) have one as primary; -1 when a lookup fails.
 */
#ifndef CB_TEST_REPL_H
#define CB_TEST_REPL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cb_client.h"
#include "cb_err.h"
#include "cb_placement.h"
#include "cb_router.h"

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

enum { CB_TEST_WRITE = 0, CB_TEST_OVERWRITE, CB_TEST_READ };

typedef struct cb_test_phases {
    uint32_t keys, newer;
    uint64_t start_ns[3];
    int phase;
    uint32_t next_key;
    uint32_t *gen; /* keys entries, zeroed */
    char key[32], val[32];
} cb_test_phases;

static inline void cb_test_key(char *buf, size_t cap, uint32_t k)
{
    snprintf(buf, cap, "key%u", k);
}

static inline int cb_test_phases_next(cb_test_phases *t, uint64_t now_ns, cb_client_op *op,
                                      uint64_t *wake_ns)
{
    uint32_t end = t->phase == CB_TEST_OVERWRITE ? t->newer : t->keys;
    if (t->next_key >= end && t->phase != CB_TEST_READ) {
        t->phase = t->phase == CB_TEST_WRITE ? CB_TEST_OVERWRITE : CB_TEST_READ;
        t->next_key = 0;
        end = t->phase == CB_TEST_OVERWRITE ? t->newer : t->keys;
    }
    if (now_ns < t->start_ns[t->phase] || t->next_key >= end) {
        *wake_ns = t->next_key >= end ? UINT64_MAX : t->start_ns[t->phase];
        return 0;
    }
    uint32_t k = t->next_key++;
    cb_test_key(t->key, sizeof t->key, k);
    op->key = (const uint8_t *)t->key;
    op->key_len = (uint8_t)strlen(t->key);
    op->user_data = k;
    if (t->phase == CB_TEST_READ) {
        op->op = CB_OP_GET;
        return 1;
    }
    t->gen[k]++;
    snprintf(t->val, sizeof t->val, "v%u-%u", k, t->gen[k]);
    op->op = CB_OP_SET;
    op->value = (const uint8_t *)t->val;
    op->value_len = (uint32_t)strlen(t->val);
    return 1;
}

static inline cb_router_config cb_test_resync_router(void)
{
    cb_router_config rc = cb_router_config_default();
    rc.replicas = 3;
    rc.spares = 2;
    rc.read_policy = CB_ROUTER_READ_PRIMARY;
    rc.write_policy = CB_ROUTER_WRITE_ALL;
    rc.ops_max = 8;
    return rc;
}

static inline int cb_test_owned(uint32_t servers, uint32_t keys, uint32_t newer, uint32_t mask,
                                uint32_t *owned, uint32_t *primary)
{
    char key[32];
    cb_placement *p = cb_test_placement(servers);
    if (p == NULL) {
        return -1;
    }
    *owned = *primary = 0;
    for (uint32_t k = 0; k < keys; k++) {
        uint32_t list[3];
        cb_test_key(key, sizeof key, k);
        if (cb_placement_lookup(p, (const uint8_t *)key, strlen(key), list, 3) != 3) {
            cb_placement_del(p);
            return -1;
        }
        int has = 0;
        for (int i = 0; i < 3; i++) {
            has |= list[i] < 32 && (mask >> list[i] & 1u) != 0;
        }
        *owned += (uint32_t)has;
        *primary += list[0] < 32 && (mask >> list[0] & 1u) != 0 && k >= newer;
    }
    cb_placement_del(p);
    return 0;
}

#endif
