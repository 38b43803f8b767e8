/* test_cb_rng.c: the seeded generator — reference values, bounds, bias, determinism. */
#include "cb_rng.h"
#include "cb_test.h"

/* Reference: xoshiro256** seeded with splitmix64(0) steps, as in the authors' C code. */
static void test_rng_reference_values(void)
{
    cb_rng r;
    cb_rng_init(&r, 0);
    /* splitmix64 from 0 gives these four words (Vigna's splitmix64.c). */
    CU_ASSERT_EQUAL(r.s[0], 0xe220a8397b1dcdafull);
    CU_ASSERT_EQUAL(r.s[1], 0x6e789e6aa1b965f4ull);
    CU_ASSERT_EQUAL(r.s[2], 0x06c45d188009454full);
    CU_ASSERT_EQUAL(r.s[3], 0xf88bb8a8724c81ecull);
    /* First output is rotl(s1 * 5, 7) * 9. */
    uint64_t s1 = 0x6e789e6aa1b965f4ull * 5;
    uint64_t expect = ((s1 << 7) | (s1 >> 57)) * 9;
    CU_ASSERT_EQUAL(cb_rng_next(&r), expect);
}

static void test_rng_same_seed_same_stream(void)
{
    cb_rng a, b, c;
    cb_rng_init(&a, cb_test_seed());
    cb_rng_init(&b, cb_test_seed());
    cb_rng_init(&c, cb_test_seed() + 1);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = cb_rng_next(&a);
        CU_ASSERT_EQUAL_FATAL(x, cb_rng_next(&b));
        differ += x != cb_rng_next(&c);
    }
    CU_ASSERT(differ > 990);
}

static void test_rng_below_bounds_and_balance(void)
{
    cb_rng r;
    cb_rng_init(&r, cb_test_seed());
    enum { BINS = 10, DRAWS = 100000 };
    unsigned counts[BINS] = {0};
    for (int i = 0; i < DRAWS; i++) {
        uint64_t v = cb_rng_below(&r, BINS);
        CU_ASSERT_FATAL(v < BINS);
        counts[v]++;
    }
    /* Each bin expects 10000, sd ~95: 6 sd either side. */
    for (int i = 0; i < BINS; i++) {
        CU_ASSERT(counts[i] > 9430 && counts[i] < 10570);
    }
    CU_ASSERT_EQUAL(cb_rng_below(&r, 0), 0);
    CU_ASSERT_EQUAL(cb_rng_below(&r, 1), 0);
}

static void test_rng_range_and_chance(void)
{
    cb_rng r;
    cb_rng_init(&r, cb_test_seed());
    int seen_lo = 0, seen_hi = 0, hits = 0;
    for (int i = 0; i < 10000; i++) {
        uint64_t v = cb_rng_range(&r, 5, 7);
        CU_ASSERT_FATAL(v >= 5 && v <= 7);
        seen_lo += v == 5;
        seen_hi += v == 7;
        hits += cb_rng_chance_ppm(&r, 250000);
    }
    CU_ASSERT(seen_lo > 0 && seen_hi > 0);
    CU_ASSERT(hits > 2300 && hits < 2700);
    CU_ASSERT_EQUAL(cb_rng_chance_ppm(&r, 0), 0);
    CU_ASSERT_EQUAL(cb_rng_chance_ppm(&r, 1000000), 1);
    (void)cb_rng_range(&r, 0, UINT64_MAX); /* full range: must not divide by zero */
}

static void test_rng_split_independent(void)
{
    cb_rng root, a, b;
    cb_rng_init(&root, cb_test_seed());
    cb_rng_split(&root, &a);
    cb_rng_split(&root, &b);
    CU_ASSERT_NOT_EQUAL(cb_rng_next(&a), cb_rng_next(&b));
}

static const cb_test_case tests[] = {
    {"reference_values", test_rng_reference_values},
    {"same_seed_same_stream", test_rng_same_seed_same_stream},
    {"below_bounds_and_balance", test_rng_below_bounds_and_balance},
    {"range_and_chance", test_rng_range_and_chance},
    {"split_independent", test_rng_split_independent},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_rng", tests)
