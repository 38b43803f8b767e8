/* cb_rng.c: xoshiro256** seeded by splitmix64; see cb_rng.h. */
#include "cb_rng.h"

#include <assert.h>

/* GCC and clang both have it; __extension__ keeps -Wpedantic quiet. */
__extension__ typedef unsigned __int128 rng_u128;

uint64_t cb_rng_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void cb_rng_init(cb_rng *rng, uint64_t seed)
{
    /* splitmix64 as the reference implementation recommends: consecutive outputs. */
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        rng->s[i] = cb_rng_mix64(x);
        x += 0x9e3779b97f4a7c15ull;
    }
}

static inline uint64_t rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t cb_rng_next(cb_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return result;
}

uint64_t cb_rng_below(cb_rng *rng, uint64_t bound)
{
    if (bound == 0) {
        return 0;
    }
    /* Lemire's nearly divisionless method on the 128-bit product. */
    rng_u128 m = (rng_u128)cb_rng_next(rng) * bound;
    uint64_t low = (uint64_t)m;
    if (low < bound) {
        uint64_t threshold = -bound % bound;
        while (low < threshold) {
            m = (rng_u128)cb_rng_next(rng) * bound;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

uint64_t cb_rng_range(cb_rng *rng, uint64_t lo, uint64_t hi)
{
    assert(lo <= hi);
    if (lo == 0 && hi == UINT64_MAX) {
        return cb_rng_next(rng);
    }
    return lo + cb_rng_below(rng, hi - lo + 1);
}

int cb_rng_chance_ppm(cb_rng *rng, uint32_t ppm)
{
    if (ppm == 0) {
        return 0;
    }
    if (ppm >= 1000000u) {
        return 1;
    }
    return cb_rng_below(rng, 1000000u) < ppm;
}

void cb_rng_split(cb_rng *parent, cb_rng *child)
{
    cb_rng_init(child, cb_rng_next(parent));
}
