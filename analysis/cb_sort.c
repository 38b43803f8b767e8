/*
 * cb_sort.c: radix sort of uint64_t (see cb_sort.h).
 */
#include "cb_sort.h"

#include <string.h>

enum { SORT_RADIX = 256, SORT_DIGITS = 8 };

/* One histogram per byte, in a single pass over the data. */
static void sort_count(const uint64_t *v, size_t n, size_t counts[SORT_DIGITS][SORT_RADIX])
{
    memset(counts, 0, sizeof(size_t) * SORT_DIGITS * SORT_RADIX);
    for (size_t i = 0; i < n; i++) {
        uint64_t x = v[i];
        for (int d = 0; d < SORT_DIGITS; d++) {
            counts[d][(x >> (8 * d)) & 0xff]++;
        }
    }
}

/* Stable scatter of src into dst by byte d, given that byte's histogram. */
static void sort_pass(const uint64_t *src, uint64_t *dst, size_t n, int d, const size_t *count)
{
    size_t pos[SORT_RADIX];
    size_t sum = 0;
    for (int b = 0; b < SORT_RADIX; b++) {
        pos[b] = sum;
        sum += count[b];
    }
    for (size_t i = 0; i < n; i++) {
        dst[pos[(src[i] >> (8 * d)) & 0xff]++] = src[i];
    }
}

void cb_sort_u64(uint64_t *v, uint64_t *tmp, size_t n)
{
    size_t counts[SORT_DIGITS][SORT_RADIX]; /* 16 KiB */
    if (n < 2) {
        return;
    }
    sort_count(v, n, counts);
    uint64_t *src = v;
    uint64_t *dst = tmp;
    for (int d = 0; d < SORT_DIGITS; d++) {
        /* A byte every value shares leaves the order as it is. */
        if (counts[d][(v[0] >> (8 * d)) & 0xff] == n) {
            continue;
        }
        sort_pass(src, dst, n, d, counts[d]);
        uint64_t *swap = src;
        src = dst;
        dst = swap;
    }
    if (src != v) {
        memcpy(v, src, n * sizeof *v);
    }
}
