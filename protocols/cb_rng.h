/*
 * cb_rng.h: the seeded pseudo-random generator every component draws from.
 *
 * xoshiro256** (Blackman & Vigna, 2018): 256 bits of state, period 2^256-1, passes BigCrush,
 * about 1 ns per draw. Seeded through splitmix64 so that any 64-bit seed, including 0, gives
 * a well-mixed state. No global state: the caller owns each cb_rng, a plain struct to embed.
 *
 * A run has one root generator seeded from the scenario; each component takes a sub-seed
 * from it with cb_rng_next() at set-up (cb_rng_split), so adding a component later does not
 * change the streams of the others that were split before it.
 *
 * Integers only: protocol decisions never depend on floating point (STYLE.md §6).
 */
#ifndef CB_RNG_H
#define CB_RNG_H

#include <stdint.h>

typedef struct cb_rng {
    uint64_t s[4];
} cb_rng;

/* Seed `rng` from `seed` (any value). */
void cb_rng_init(cb_rng *rng, uint64_t seed);

/* The next 64 uniformly distributed bits. */
uint64_t cb_rng_next(cb_rng *rng);

/* A uniform integer in [0, bound), without modulo bias (Lemire 2019). bound 0 returns 0. */
uint64_t cb_rng_below(cb_rng *rng, uint64_t bound);

/* A uniform integer in [lo, hi] (inclusive); requires lo <= hi. */
uint64_t cb_rng_range(cb_rng *rng, uint64_t lo, uint64_t hi);

/* 1 with probability ppm / 10^6 (parts per million), else 0. ppm >= 10^6 always gives 1. */
int cb_rng_chance_ppm(cb_rng *rng, uint32_t ppm);

/* Initialise `child` from a sub-seed drawn from `parent`. */
void cb_rng_split(cb_rng *parent, cb_rng *child);

/* splitmix64 step: also a good 64-bit mixing function for hashing seeds and ids together. */
uint64_t cb_rng_mix64(uint64_t x);

#endif
