/*
 * test_cb_placement.c: every placement strategy — determinism, distinct preference lists,
 * down nodes, weights, key movement on add/remove, ketama against real libmemcached vectors,
 * jump against the published values, maglev balance, bad arguments and out-of-memory.
 */
#include "cb_err.h"
#include "cb_limits.h"
#include "cb_place_internal.h"
#include "cb_placement.h"
#include "cb_rng.h"
#include "cb_test.h"

#include <math.h>
#include <string.h>

enum { KEYS = 20000, NODES = 10 };

static const cb_placement_strategy all_strategies[] = {
    CB_PLACEMENT_MODULO, CB_PLACEMENT_KETAMA, CB_PLACEMENT_RENDEZVOUS,
    CB_PLACEMENT_JUMP,   CB_PLACEMENT_MAGLEV,
};
#define STRATEGIES (sizeof(all_strategies) / sizeof(all_strategies[0]))

static size_t key_of(unsigned i, char *buf)
{
    return (size_t)snprintf(buf, 32, "key:%u", i);
}

/* Nodes id i+1, named "10.0.0.<i+1>:11211", weight 1 (or weights[i]). */
static void make_nodes(cb_placement_node *nodes, char names[][32], unsigned count,
                       const uint32_t *weights)
{
    for (unsigned i = 0; i < count; i++) {
        snprintf(names[i], 32, "10.0.%u.%u:11211", i / 250, i % 250 + 1);
        nodes[i].id = i + 1;
        nodes[i].weight = weights != NULL ? weights[i] : 1;
        nodes[i].name = names[i];
    }
}

static cb_placement *build(cb_placement_strategy s, const cb_placement_node *nodes, unsigned count,
                           uint64_t seed)
{
    cb_placement_config c;
    cb_placement_config_default(&c);
    c.seed = seed;
    cb_placement *p = NULL;
    int rc = cb_placement_new(s, &c, nodes, count, NULL, &p);
    CU_ASSERT_EQUAL_FATAL(rc, CB_ERR_OK);
    return p;
}

static uint32_t primary(const cb_placement *p, unsigned key)
{
    char buf[32];
    size_t len = key_of(key, buf);
    uint32_t out[1] = {0};
    int n = cb_placement_lookup(p, (const uint8_t *)buf, len, out, 1);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    return out[0];
}

static void test_place_names(void)
{
    for (size_t i = 0; i < STRATEGIES; i++) {
        cb_placement_strategy back;
        const char *name = cb_placement_strategy_name(all_strategies[i]);
        CU_ASSERT_EQUAL(cb_placement_strategy_from_name(name, &back), CB_ERR_OK);
        CU_ASSERT_EQUAL(back, all_strategies[i]);
    }
    cb_placement_strategy back;
    CU_ASSERT_EQUAL(cb_placement_strategy_from_name("consistent", &back), CB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(cb_placement_strategy_name((cb_placement_strategy)99), "?");
}

typedef struct bad_case {
    const char *name;
    cb_placement_strategy strategy;
    uint32_t ketama_points, maglev_table_size, nodes_max;
    uint32_t weight1, id1; /* node 1's weight and id (node 0 is id 1, weight 1) */
    const char *name1;
    int expect;
} bad_case;

static void test_place_bad_arguments(void)
{
    char longname[CB_PLACEMENT_NAME_BYTES_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    const bad_case cases[] = {
        {"ok", CB_PLACEMENT_KETAMA, 160, 65537, 0, 1, 2, "b", CB_ERR_OK},
        {"unknown strategy", (cb_placement_strategy)7, 160, 65537, 0, 1, 2, "b", CB_ERR_INVALID},
        {"ketama points 0", CB_PLACEMENT_KETAMA, 0, 65537, 0, 1, 2, "b", CB_ERR_INVALID},
        {"ketama points 6", CB_PLACEMENT_KETAMA, 6, 65537, 0, 1, 2, "b", CB_ERR_INVALID},
        {"ketama points big", CB_PLACEMENT_KETAMA, 2048, 65537, 0, 1, 2, "b", CB_ERR_INVALID},
        {"maglev not prime", CB_PLACEMENT_MAGLEV, 160, 65536, 0, 1, 2, "b", CB_ERR_INVALID},
        {"maglev < nodes_max", CB_PLACEMENT_MAGLEV, 160, 13, 0, 1, 2, "b", CB_ERR_INVALID},
        {"maglev ok", CB_PLACEMENT_MAGLEV, 160, 17, 0, 1, 2, "b", CB_ERR_OK},
        {"weight 0", CB_PLACEMENT_RENDEZVOUS, 160, 65537, 0, 0, 2, "b", CB_ERR_INVALID},
        {"weight big", CB_PLACEMENT_RENDEZVOUS, 160, 65537, 0, 65536, 2, "b", CB_ERR_INVALID},
        {"duplicate id", CB_PLACEMENT_MODULO, 160, 65537, 0, 1, 1, "b", CB_ERR_INVALID},
        {"duplicate name", CB_PLACEMENT_MODULO, 160, 65537, 0, 1, 2, "a", CB_ERR_INVALID},
        {"name too long", CB_PLACEMENT_MODULO, 160, 65537, 0, 1, 2, longname, CB_ERR_TOO_LARGE},
        {"jump unequal", CB_PLACEMENT_JUMP, 160, 65537, 0, 2, 2, "b", CB_ERR_INVALID},
        {"over nodes_max", CB_PLACEMENT_MODULO, 160, 65537, 1, 1, 2, "b", CB_ERR_INVALID},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const bad_case *bc = &cases[i];
        cb_placement_config c;
        cb_placement_config_default(&c);
        c.ketama_points = bc->ketama_points;
        c.maglev_table_size = bc->maglev_table_size;
        c.nodes_max = bc->nodes_max;
        cb_placement_node nodes[2] = {{1, 1, "a"}, {bc->id1, bc->weight1, bc->name1}};
        cb_placement *p = NULL;
        int rc = cb_placement_new(bc->strategy, &c, nodes, 2, NULL, &p);
        if (rc != bc->expect) {
            printf("\ncase '%s': got %s, want %s\n", bc->name, cb_err_name(rc),
                   cb_err_name(bc->expect));
        }
        CU_ASSERT_EQUAL(rc, bc->expect);
        CU_ASSERT((rc == CB_ERR_OK) == (p != NULL));
        cb_placement_del(p);
    }
}

static void test_place_runtime_errors(void)
{
    cb_placement_node nodes[NODES];
    char names[NODES][32];
    make_nodes(nodes, names, NODES, NULL);
    cb_placement_config c;
    cb_placement_config_default(&c);
    c.nodes_max = NODES;
    cb_placement *p = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_placement_new(CB_PLACEMENT_JUMP, &c, nodes, 0, NULL, &p), 0);
    uint32_t out[4];
    CU_ASSERT_EQUAL(cb_placement_lookup(p, (const uint8_t *)"k", 1, out, 4), 0);
    for (unsigned i = 0; i < NODES; i++) {
        CU_ASSERT_EQUAL(cb_placement_add(p, &nodes[i]), CB_ERR_OK);
    }
    CU_ASSERT_EQUAL(cb_placement_add(p, &nodes[0]), CB_ERR_FULL);
    CU_ASSERT_EQUAL(cb_placement_remove(p, 999), CB_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(cb_placement_mark_down(p, 999), CB_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(cb_placement_is_up(p, 999), CB_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(cb_placement_add(p, &nodes[0]), CB_ERR_FULL);
    CU_ASSERT_EQUAL(cb_placement_remove(p, 3), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_placement_add(p, &nodes[3]), CB_ERR_INVALID); /* id 4 still there */
    uint8_t key[CB_KEY_BYTES_MAX + 1] = {0};
    CU_ASSERT_EQUAL(cb_placement_lookup(p, key, sizeof(key), out, 4), CB_ERR_KEY_TOO_LONG);
    CU_ASSERT_EQUAL(cb_placement_lookup(p, key, CB_KEY_BYTES_MAX, out, 0), 0);
    for (unsigned i = 0; i < NODES; i++) {
        (void)cb_placement_mark_down(p, nodes[i].id); /* id 3 is gone: NOT_FOUND, fine */
    }
    CU_ASSERT_EQUAL(cb_placement_up_count(p), 0);
    CU_ASSERT_EQUAL(cb_placement_lookup(p, key, 3, out, 4), 0);
    cb_placement_del(p);
    cb_placement_del(NULL);
}

/* Same node list, same answers; the list rebuilt through add/remove answers the same too. */
static void test_place_determinism(void)
{
    cb_placement_node nodes[NODES + 1];
    char names[NODES + 1][32];
    make_nodes(nodes, names, NODES + 1, NULL);
    for (size_t s = 0; s < STRATEGIES; s++) {
        cb_placement *a = build(all_strategies[s], nodes, NODES, 7);
        cb_placement *b = build(all_strategies[s], nodes, NODES, 7);
        cb_placement *other_seed = build(all_strategies[s], nodes, NODES, 8);
        /* b: add an 11th node, remove it again, remove and re-add the last node. */
        CU_ASSERT_EQUAL(cb_placement_add(b, &nodes[NODES]), 0);
        CU_ASSERT_EQUAL(cb_placement_remove(b, nodes[NODES].id), 0);
        CU_ASSERT_EQUAL(cb_placement_remove(b, nodes[NODES - 1].id), 0);
        CU_ASSERT_EQUAL(cb_placement_add(b, &nodes[NODES - 1]), 0);
        unsigned same_other = 0;
        for (unsigned k = 0; k < 2000; k++) {
            char buf[32];
            size_t len = key_of(k, buf);
            uint32_t la[3], lb[3];
            int na = cb_placement_lookup(a, (const uint8_t *)buf, len, la, 3);
            int nb = cb_placement_lookup(b, (const uint8_t *)buf, len, lb, 3);
            CU_ASSERT_EQUAL_FATAL(na, 3);
            CU_ASSERT_EQUAL_FATAL(nb, 3);
            CU_ASSERT_FATAL(memcmp(la, lb, sizeof(la)) == 0);
            same_other += primary(other_seed, k) == la[0];
        }
        /* The seed changes the layout (ketama is MD5-based and ignores it). */
        if (all_strategies[s] == CB_PLACEMENT_KETAMA) {
            CU_ASSERT_EQUAL(same_other, 2000);
        } else {
            CU_ASSERT(same_other < 400);
        }
        cb_placement_del(other_seed);
        cb_placement_del(b);
        cb_placement_del(a);
    }
}

/* Every list holds min(R, up nodes) distinct known ids, and a shorter list is its prefix. */
static void test_place_distinct_lists(void)
{
    cb_placement_node nodes[NODES];
    char names[NODES][32];
    make_nodes(nodes, names, NODES, NULL);
    for (size_t s = 0; s < STRATEGIES; s++) {
        cb_placement *p = build(all_strategies[s], nodes, NODES, 1);
        for (unsigned k = 0; k < 500; k++) {
            char buf[32];
            size_t len = key_of(k, buf);
            uint32_t full[CB_PLACEMENT_LIST_MAX];
            int nf = cb_placement_lookup(p, (const uint8_t *)buf, len, full, 64);
            CU_ASSERT_EQUAL_FATAL(nf, NODES);
            unsigned seen = 0;
            for (int i = 0; i < nf; i++) {
                CU_ASSERT_FATAL(full[i] >= 1 && full[i] <= NODES);
                CU_ASSERT_FATAL((seen & (1u << full[i])) == 0);
                seen |= 1u << full[i];
            }
            for (size_t r = 1; r <= 4; r++) {
                uint32_t part[4];
                int np = cb_placement_lookup(p, (const uint8_t *)buf, len, part, r);
                CU_ASSERT_EQUAL_FATAL((size_t)np, r);
                CU_ASSERT_FATAL(memcmp(part, full, r * sizeof(uint32_t)) == 0);
            }
        }
        cb_placement_del(p);
    }
}

/* Down nodes never appear; the rest of each list keeps its order; marking up restores it. */
static void test_place_down_skipped(void)
{
    cb_placement_node nodes[NODES];
    char names[NODES][32];
    make_nodes(nodes, names, NODES, NULL);
    const uint32_t down[] = {2, 5, 9};
    for (size_t s = 0; s < STRATEGIES; s++) {
        cb_placement *p = build(all_strategies[s], nodes, NODES, 3);
        cb_placement *ref = build(all_strategies[s], nodes, NODES, 3);
        for (size_t i = 0; i < 3; i++) {
            CU_ASSERT_EQUAL(cb_placement_mark_down(p, down[i]), 0);
            CU_ASSERT_EQUAL(cb_placement_mark_down(p, down[i]), 0); /* twice: harmless */
            CU_ASSERT_EQUAL(cb_placement_is_up(p, down[i]), 0);
        }
        CU_ASSERT_EQUAL(cb_placement_up_count(p), NODES - 3);
        for (unsigned k = 0; k < 2000; k++) {
            char buf[32];
            size_t len = key_of(k, buf);
            uint32_t got[3], all[CB_PLACEMENT_LIST_MAX], want[3];
            CU_ASSERT_EQUAL_FATAL(cb_placement_lookup(p, (const uint8_t *)buf, len, got, 3), 3);
            CU_ASSERT_EQUAL_FATAL(cb_placement_lookup(ref, (const uint8_t *)buf, len, all, 16),
                                  NODES);
            size_t n = 0;
            for (size_t i = 0; i < NODES && n < 3; i++) {
                if (all[i] != down[0] && all[i] != down[1] && all[i] != down[2]) {
                    want[n++] = all[i];
                }
            }
            for (size_t i = 0; i < 3; i++) {
                CU_ASSERT_FATAL(got[i] != down[0] && got[i] != down[1] && got[i] != down[2]);
            }
            /* Jump rehashes instead of walking one fixed order: only its up primaries stay. */
            if (all_strategies[s] != CB_PLACEMENT_JUMP) {
                CU_ASSERT_FATAL(memcmp(got, want, sizeof(got)) == 0);
            } else {
                CU_ASSERT_FATAL(got[0] == want[0] || want[0] != all[0]);
            }
        }
        for (size_t i = 0; i < 3; i++) {
            CU_ASSERT_EQUAL(cb_placement_mark_up(p, down[i]), 0);
        }
        for (unsigned k = 0; k < 2000; k++) {
            CU_ASSERT_FATAL(primary(p, k) == primary(ref, k));
        }
        cb_placement_del(ref);
        cb_placement_del(p);
    }
}

/*
 * Keys per node follow weights 1, 2, 3, 4 (x2): 10^5 keys. Tolerance: each node within 5% of
 * its share for modulo, rendezvous and maglev (sampling noise alone is ~1.5%); ketama's 160
 * points give each server's arc a spread of about 8% (1/sqrt(160)), so with 160 points the
 * nodes of each weight class together must be within 10% of their share, and with 1024
 * points every node within 10%.
 */
static void test_place_weights(void)
{
    enum { N = 8, WKEYS = 100000 };
    static const uint32_t weights[N] = {1, 2, 3, 4, 1, 2, 3, 4};
    cb_placement_node nodes[N];
    char names[N][32];
    make_nodes(nodes, names, N, weights);
    const cb_placement_strategy ss[] = {CB_PLACEMENT_MODULO, CB_PLACEMENT_RENDEZVOUS,
                                        CB_PLACEMENT_MAGLEV, CB_PLACEMENT_KETAMA,
                                        CB_PLACEMENT_KETAMA};
    for (size_t s = 0; s < 5; s++) {
        cb_placement_config c;
        cb_placement_config_default(&c);
        c.ketama_points = s == 4 ? 1024 : 160;
        cb_placement *p = NULL;
        CU_ASSERT_EQUAL_FATAL(cb_placement_new(ss[s], &c, nodes, N, NULL, &p), 0);
        unsigned count[N + 1] = {0};
        for (unsigned k = 0; k < WKEYS; k++) {
            count[primary(p, k)]++;
        }
        double per_weight = WKEYS / 20.0, class_sum[5] = {0};
        for (unsigned i = 0; i < N; i++) {
            double ratio = count[i + 1] / (per_weight * weights[i]);
            class_sum[weights[i]] += ratio / 2;
            if (s != 3) {
                double tol = ss[s] == CB_PLACEMENT_KETAMA ? 0.10 : 0.05;
                if (fabs(ratio - 1) > tol) {
                    printf("\n%s node %u weight %u: %.3f of its share\n",
                           cb_placement_strategy_name(ss[s]), i + 1, weights[i], ratio);
                }
                CU_ASSERT(fabs(ratio - 1) <= tol);
            }
        }
        for (unsigned w = 1; w <= 4; w++) {
            CU_ASSERT(fabs(class_sum[w] - 1) <= 0.10);
        }
        cb_placement_del(p);
    }
}

/* Fraction of KEYS whose primary differs between a and b; *to_new counts moves onto `id`. */
static double moved(const cb_placement *a, const cb_placement *b, uint32_t id, unsigned *to_new)
{
    unsigned n = 0;
    *to_new = 0;
    for (unsigned k = 0; k < KEYS; k++) {
        uint32_t pa = primary(a, k), pb = primary(b, k);
        n += pa != pb;
        *to_new += pa != pb && (pb == id || pa == id);
    }
    return (double)n / KEYS;
}

/*
 * Adding an 11th node should move ~1/11 of the keys, all onto it; removing one moves ~1/10,
 * all from it. Bounds: 1.5x the optimum (ketama's arcs vary by ~8%, and 20000 keys add ~3%);
 * maglev also shuffles a few keys between old nodes (the paper's "minimal disruption" is not
 * zero); jump removing a middle node moves ~2/N (the last node takes its bucket). Modulo is
 * the documented exception: it moves most keys.
 */
static void test_place_movement(void)
{
    cb_placement_node nodes[NODES + 1];
    char names[NODES + 1][32];
    make_nodes(nodes, names, NODES + 1, NULL);
    for (size_t s = 0; s < STRATEGIES; s++) {
        cb_placement_strategy st = all_strategies[s];
        cb_placement *base = build(st, nodes, NODES, 5);
        cb_placement *grown = build(st, nodes, NODES + 1, 5);
        cb_placement *shrunk = build(st, nodes, NODES, 5);
        cb_placement *shrunk_last = build(st, nodes, NODES, 5);
        CU_ASSERT_EQUAL(cb_placement_remove(shrunk, 4), 0);
        CU_ASSERT_EQUAL(cb_placement_remove(shrunk_last, NODES), 0);
        unsigned onto, from, from_last;
        double add = moved(base, grown, NODES + 1, &onto);
        double rm = moved(base, shrunk, 4, &from);
        double rm_last = moved(base, shrunk_last, NODES, &from_last);
        printf("\n  %-10s add %.3f (opt %.3f) remove %.3f remove-last %.3f (opt %.3f)",
               cb_placement_strategy_name(st), add, 1.0 / (NODES + 1), rm, rm_last, 1.0 / NODES);
        if (st == CB_PLACEMENT_MODULO) {
            CU_ASSERT(add > 0.8 && rm > 0.5);
        } else {
            CU_ASSERT(add < 1.5 / (NODES + 1) && add > 0.5 / (NODES + 1));
            CU_ASSERT(rm_last < 1.5 / NODES);
            CU_ASSERT(rm < (st == CB_PLACEMENT_JUMP ? 2.5 : 1.5) / NODES);
        }
        if (st == CB_PLACEMENT_KETAMA || st == CB_PLACEMENT_RENDEZVOUS || st == CB_PLACEMENT_JUMP) {
            CU_ASSERT_EQUAL(onto, (unsigned)(add * KEYS + 0.5)); /* all moves onto the new */
            CU_ASSERT_EQUAL(from_last, (unsigned)(rm_last * KEYS + 0.5));
        }
        if (st == CB_PLACEMENT_MAGLEV) {
            CU_ASSERT(onto >= (unsigned)(0.9 * add * KEYS));
        }
        cb_placement_del(shrunk_last);
        cb_placement_del(shrunk);
        cb_placement_del(grown);
        cb_placement_del(base);
    }
}

/* tests/data/ketama_vectors.txt, from libmemcached 1.1.4 (tests/tools/ketama_vectors.c). */
static int ketama_run_set(FILE *f, unsigned *checked, unsigned *wrong)
{
    cb_placement_node nodes[8];
    char names[8][80];
    unsigned count = 0;
    char line[128], a[64];
    unsigned port, weight;
    cb_placement *p = NULL;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "server %63s %u %u", a, &port, &weight) == 3 && count < 8) {
            snprintf(names[count], sizeof(names[count]), "%s:%u", a, port);
            nodes[count] = (cb_placement_node){count, weight, names[count]};
            count++;
        } else if (sscanf(line, "key %63s %u", a, &port) == 2) {
            if (p == NULL) {
                p = build(CB_PLACEMENT_KETAMA, nodes, count, 0);
            }
            uint32_t got = UINT32_MAX;
            CU_ASSERT_EQUAL(cb_placement_lookup(p, (const uint8_t *)a, strlen(a), &got, 1), 1);
            (*checked)++;
            *wrong += got != port;
        } else if (strncmp(line, "end", 3) == 0) {
            cb_placement_del(p);
            return 1;
        }
    }
    cb_placement_del(p);
    return 0;
}

static void test_place_ketama_libmemcached_vectors(void)
{
    FILE *f = fopen(CB_TEST_DATA_DIR "/ketama_vectors.txt", "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    unsigned sets = 0, checked = 0, wrong = 0;
    while (ketama_run_set(f, &checked, &wrong)) {
        sets++;
    }
    fclose(f);
    printf("\n  %u sets, %u keys, %u differ from libmemcached", sets, checked, wrong);
    CU_ASSERT_EQUAL(sets, 3);
    CU_ASSERT_EQUAL(checked, 3000);
    CU_ASSERT_EQUAL(wrong, 0);
}

/* libmemcached's float arithmetic gives 100 equal servers 156 points each (1/100 in binary32
 * is just below 0.01); integer points give 160. */
static void test_place_ketama_point_counts(void)
{
    enum { N = 100 };
    cb_placement_node nodes[N];
    char names[N][32];
    make_nodes(nodes, names, N, NULL);
    for (uint32_t integer = 0; integer <= 1; integer++) {
        cb_placement_config c;
        cb_placement_config_default(&c);
        c.ketama_integer_points = integer;
        cb_placement *p = NULL;
        CU_ASSERT_EQUAL_FATAL(cb_placement_new(CB_PLACEMENT_KETAMA, &c, nodes, N, NULL, &p), 0);
        CU_ASSERT_EQUAL(p->ring_count, integer ? 16000u : 15600u);
        cb_placement_del(p);
    }
}

/* The paper's C++ code, in double, as the reference. */
static uint32_t jump_reference(uint64_t key, int64_t buckets)
{
    int64_t b = -1, j = 0;
    while (j < buckets) {
        b = j;
        key = key * 2862933555777941757ull + 1;
        j = (int64_t)((double)(b + 1) * ((double)(1ll << 31) / (double)((key >> 33) + 1)));
    }
    return (uint32_t)b;
}

static void test_place_jump_reference(void)
{
    /* Published values (ClickHouse's and Rust jump-consistent-hash's tests of the paper). */
    static const struct {
        uint64_t key;
        uint32_t buckets, expect;
    } vec[] = {
        {1, 1, 0},
        {42, 57, 43},
        {256, 1024, 520},
        {3735883980u, 1, 0},
        {3735883980u, 666, 361},
        {16045690984833335023ull, 255, 237},
        {0, 60, 0},
        {1, 60, 55},
        {2, 60, 46},
    };
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        CU_ASSERT_EQUAL(place_jump(vec[i].key, vec[i].buckets), vec[i].expect);
    }
    cb_rng r;
    cb_rng_init(&r, cb_test_seed());
    static const uint32_t buckets[] = {1, 2, 3, 10, 100, 1000, CB_PLACEMENT_NODES_MAX};
    for (int i = 0; i < 20000; i++) {
        uint64_t key = cb_rng_next(&r);
        for (size_t b = 0; b < sizeof(buckets) / sizeof(buckets[0]); b++) {
            CU_ASSERT_EQUAL_FATAL(place_jump(key, buckets[b]), jump_reference(key, buckets[b]));
        }
    }
}

/* Maglev's table: each of N equal nodes holds M/N entries, give or take one (the paper). */
static void test_place_maglev_balance(void)
{
    cb_placement_node nodes[NODES];
    char names[NODES][32];
    static const uint32_t weights[NODES] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 4};
    for (int weighted = 0; weighted <= 1; weighted++) {
        make_nodes(nodes, names, NODES, weighted ? weights : NULL);
        cb_placement *p = build(CB_PLACEMENT_MAGLEV, nodes, NODES, 9);
        unsigned entries[NODES] = {0};
        uint32_t m = p->config.maglev_table_size;
        for (uint32_t i = 0; i < m; i++) {
            CU_ASSERT_FATAL(p->maglev[i] < NODES);
            entries[p->maglev[i]]++;
        }
        for (unsigned i = 0; i < NODES; i++) {
            double share = weighted ? (double)m * weights[i] / 17 : (double)m / NODES;
            CU_ASSERT(fabs(entries[i] - share) <= (weighted ? share * 0.001 + 1 : 1.0));
        }
        cb_placement_del(p);
    }
}

/* The fixed-point -log2 used by rendezvous agrees with libm within its stated error. */
static void test_place_hrw_log2(void)
{
    cb_rng r;
    cb_rng_init(&r, cb_test_seed());
    double worst = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t h = cb_rng_next(&r) >> (i % 64);
        double exact = 64.0 - log2((double)(h == 0 ? 1 : h));
        double got = (double)place_hrw_neg_log2(h) / 4294967296.0;
        double err = fabs(got - exact);
        worst = err > worst ? err : worst;
    }
    CU_ASSERT(worst < 3e-6);
    CU_ASSERT_EQUAL(place_hrw_neg_log2(1), 64ull << 32);
    CU_ASSERT_EQUAL(place_hrw_neg_log2(1ull << 63), 1ull << 32);
    CU_ASSERT(place_hrw_neg_log2(UINT64_MAX) >= 1);
}

/* Out of memory: failing the Nth allocation of new returns NOMEM and leaks nothing. */
static void test_place_oom(void)
{
    cb_placement_node nodes[NODES];
    char names[NODES][32];
    make_nodes(nodes, names, NODES, NULL);
    for (size_t s = 0; s < STRATEGIES; s++) {
        cb_placement_config c;
        cb_placement_config_default(&c);
        int rc = CB_ERR_NOMEM;
        uint64_t fail_at = 0;
        for (; rc == CB_ERR_NOMEM && fail_at < 100; fail_at++) {
            cb_alloc_failing f;
            cb_alloc_failing_init(&f, fail_at, 1);
            cb_placement *p = NULL;
            rc = cb_placement_new(all_strategies[s], &c, nodes, NODES, &f.alloc, &p);
            CU_ASSERT(rc == CB_ERR_OK || (rc == CB_ERR_NOMEM && p == NULL));
            cb_placement_del(p);
            CU_ASSERT_EQUAL(f.live, 0);
        }
        CU_ASSERT_EQUAL(rc, CB_ERR_OK);
        CU_ASSERT(fail_at >= 3); /* the struct, nodes and names at least */
    }
}

static const cb_test_case tests[] = {
    {"strategy names", test_place_names},
    {"bad arguments", test_place_bad_arguments},
    {"runtime errors", test_place_runtime_errors},
    {"determinism", test_place_determinism},
    {"distinct preference lists", test_place_distinct_lists},
    {"down nodes skipped", test_place_down_skipped},
    {"weights", test_place_weights},
    {"movement on add/remove", test_place_movement},
    {"ketama = libmemcached", test_place_ketama_libmemcached_vectors},
    {"ketama point counts", test_place_ketama_point_counts},
    {"jump reference values", test_place_jump_reference},
    {"maglev balance", test_place_maglev_balance},
    {"rendezvous fixed-point log2", test_place_hrw_log2},
    {"out of memory", test_place_oom},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_placement", tests)
