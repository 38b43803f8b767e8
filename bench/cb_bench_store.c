/*
 * cb_bench_store.c: `cachebed bench store` — GET and SET operations per second of cb_store
 * and the memory each item costs.
 *
 * Fills a store (capped large enough that nothing is evicted) with N keys, then times
 * several passes of N SETs overwriting random existing keys and N GETs of random existing
 * keys, and prints the median. Memory per item is given twice: the store's own accounting
 * (bytes_used / items, which includes the bucket arrays) and the growth of the process's
 * resident set during the fill (/proc/self/statm), which adds malloc's per-block overhead.
 * Times come from CLOCK_MONOTONIC; bench/ may read clocks, protocols/ may not.
 */
#include "cb_bench.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cb_err.h"
#include "cb_rng.h"
#include "cb_store.h"

enum { BENCH_PASSES = 5 };

typedef struct bench_opts {
    uint64_t keys;
    uint64_t key_bytes;
    uint64_t value_bytes;
    uint64_t seed;
} bench_opts;

typedef struct bench_data {
    uint8_t *keys;   /* keys * key_bytes */
    uint8_t *value;  /* value_bytes */
    uint32_t *order; /* a random key index per operation */
    cb_store *store;
} bench_data;

static const char bench_usage[] =
    "usage: cachebed bench store [--keys N] [--key-bytes N] [--value-bytes N] [--seed N]\n"
    "  --keys N         keys stored and operated on (default 1000000)\n"
    "  --key-bytes N    key length, at least the digits of N-1, at most 250 (default 32)\n"
    "  --value-bytes N  value length, at most 1 MiB (default 100)\n"
    "  --seed N         seed of the key order and the hash (default 1)\n";

static double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resident set size in bytes, or 0 when /proc is not there. */
static uint64_t bench_rss_bytes(void)
{
    unsigned long size_pages = 0, resident_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) {
        return 0;
    }
    if (fscanf(f, "%lu %lu", &size_pages, &resident_pages) != 2) {
        resident_pages = 0;
    }
    fclose(f);
    return (uint64_t)resident_pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

static int bench_parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    if (s == NULL || *s < '0' || *s > '9') {
        return 0;
    }
    *out = strtoull(s, &end, 0);
    return errno == 0 && *end == '\0';
}

static size_t bench_digits(uint64_t n)
{
    size_t d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

/* Parse the options; 0 ok, 1 help printed, 2 usage error (message printed). */
static int bench_parse(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){1000000, 32, 100, 1};
    for (int i = 0; i < argc; i += 2) { /* every option takes one value */
        uint64_t *dst = NULL;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(bench_usage, stdout);
            return 1;
        } else if (strcmp(argv[i], "--keys") == 0) {
            dst = &o->keys;
        } else if (strcmp(argv[i], "--key-bytes") == 0) {
            dst = &o->key_bytes;
        } else if (strcmp(argv[i], "--value-bytes") == 0) {
            dst = &o->value_bytes;
        } else if (strcmp(argv[i], "--seed") == 0) {
            dst = &o->seed;
        }
        if (dst == NULL || i + 1 >= argc || !bench_parse_u64(argv[i + 1], dst)) {
            fprintf(stderr, "cachebed bench store: bad option '%s'\n%s", argv[i], bench_usage);
            return 2;
        }
    }
    if (o->keys == 0 || o->keys > UINT32_MAX || o->key_bytes > CB_KEY_BYTES_MAX ||
        o->key_bytes < bench_digits(o->keys - 1) || o->value_bytes > CB_VALUE_BYTES_MAX_DEFAULT) {
        fprintf(stderr, "cachebed bench store: options out of range\n%s", bench_usage);
        return 2;
    }
    return 0;
}

static size_t bench_pow2_at_least(uint64_t n)
{
    size_t p = 1;
    while (p < n) {
        p <<= 1;
    }
    return p;
}

/*
 * A cap that holds every item with no eviction: the items, plus both bucket arrays of the
 * last resize counted twice (a resize may only start while the tables fit in half the cap),
 * plus slack for the struct.
 */
static uint64_t bench_cap(const bench_opts *o)
{
    uint64_t items = o->keys * (cb_store_item_overhead_bytes() + o->key_bytes + o->value_bytes);
    uint64_t tables = 3 * (uint64_t)bench_pow2_at_least(o->keys + 1) * sizeof(void *);
    return items + 2 * tables + (1u << 20);
}

static const uint8_t *bench_key(const bench_data *d, const bench_opts *o, uint64_t i)
{
    return d->keys + i * o->key_bytes;
}

static void bench_shuffle(cb_rng *rng, uint32_t *order, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        order[i] = (uint32_t)cb_rng_below(rng, n);
    }
}

/* One timed pass of N operations; returns ops/s, or -1 on a store error. */
static double bench_pass(bench_data *d, const bench_opts *o, int is_set)
{
    uint64_t checksum = 0;
    double t0 = bench_now_s();
    for (uint64_t i = 0; i < o->keys; i++) {
        const uint8_t *key = bench_key(d, o, d->order[i]);
        int rc;
        if (is_set) {
            rc = cb_store_set(d->store, key, o->key_bytes, d->value, o->value_bytes, 0, 0, 0, NULL);
        } else {
            cb_store_view v = {0};
            rc = cb_store_get(d->store, key, o->key_bytes, 0, &v);
            checksum += v.value_len + v.cas;
        }
        if (rc != CB_ERR_OK) {
            fprintf(stderr, "cachebed bench store: %s\n", cb_strerror(rc));
            return -1;
        }
    }
    double elapsed = bench_now_s() - t0;
    /* Print nothing from the checksum, but keep the compiler from dropping the GETs. */
    __asm__ volatile("" : : "r"(checksum) : "memory");
    return (double)o->keys / elapsed;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Fill the store with every key; returns the fill time in seconds, or -1. */
static double bench_fill(bench_data *d, const bench_opts *o)
{
    double t0 = bench_now_s();
    for (uint64_t i = 0; i < o->keys; i++) {
        int rc = cb_store_set(d->store, bench_key(d, o, i), o->key_bytes, d->value, o->value_bytes,
                              0, 0, 0, NULL);
        if (rc != CB_ERR_OK) {
            fprintf(stderr, "cachebed bench store: fill: %s\n", cb_strerror(rc));
            return -1;
        }
    }
    return bench_now_s() - t0;
}

static int bench_alloc(bench_data *d, const bench_opts *o)
{
    d->keys = malloc(o->keys * o->key_bytes + 1);
    d->value = malloc(o->value_bytes + 1);
    d->order = malloc(o->keys * sizeof(uint32_t));
    if (d->keys == NULL || d->value == NULL || d->order == NULL) {
        fprintf(stderr, "cachebed bench store: out of memory\n");
        return 0;
    }
    for (uint64_t i = 0; i < o->keys; i++) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%0*" PRIu64, (int)bench_digits(o->keys - 1), i);
        uint8_t *key = d->keys + i * o->key_bytes;
        memset(key, 'k', o->key_bytes);
        memcpy(key + o->key_bytes - (size_t)n, buf, (size_t)n);
    }
    memset(d->value, 'v', o->value_bytes + 1);
    return 1;
}

static void bench_print(const bench_opts *o, const cb_store_stats *st, uint64_t rss_growth,
                        double fill_s, double rates[2][BENCH_PASSES])
{
    printf("cachebed bench store: %" PRIu64 " keys, %" PRIu64 " B keys, %" PRIu64
           " B values, seed %" PRIu64 "\n\n",
           o->keys, o->key_bytes, o->value_bytes, o->seed);
    printf("  %-30s %14" PRIu64 " B (%.1f MiB)\n", "store cap (memory_bytes_max)",
           st->memory_bytes_max, (double)st->memory_bytes_max / 1048576.0);
    printf("  %-30s %14" PRIu64 " B (%.1f MiB)\n", "bytes_used", st->bytes_used,
           (double)st->bytes_used / 1048576.0);
    printf("  %-30s %14" PRIu64 "\n", "items", st->items);
    printf("  %-30s %14" PRIu64 "\n", "hash buckets", st->buckets);
    printf("  %-30s %14zu B\n", "per-item overhead (header)", cb_store_item_overhead_bytes());
    printf("  %-30s %14.1f B\n", "bytes/item, store accounting",
           (double)st->bytes_used / (double)st->items);
    printf("  %-30s %14.1f B\n", "bytes/item, RSS growth", (double)rss_growth / (double)st->items);
    printf("  %-30s %14.2f s (%.0f ops/s)\n\n", "fill", fill_s, (double)o->keys / fill_s);
    printf("  %-4s %8s %14s %14s %14s\n", "op", "passes", "median ops/s", "min ops/s", "max ops/s");
    static const char *names[2] = {"SET", "GET"};
    for (int k = 0; k < 2; k++) {
        qsort(rates[k], BENCH_PASSES, sizeof(double), bench_cmp_double);
        printf("  %-4s %8d %14.0f %14.0f %14.0f\n", names[k], BENCH_PASSES,
               rates[k][BENCH_PASSES / 2], rates[k][0], rates[k][BENCH_PASSES - 1]);
    }
}

/* Timed passes, SET then GET in turn; 0 on a store error. */
static int bench_run_passes(bench_data *d, const bench_opts *o, cb_rng *rng,
                            double rates[2][BENCH_PASSES])
{
    for (int p = 0; p < BENCH_PASSES; p++) {
        for (int k = 0; k < 2; k++) {
            bench_shuffle(rng, d->order, o->keys);
            rates[k][p] = bench_pass(d, o, k == 0);
            if (rates[k][p] < 0) {
                return 0;
            }
        }
    }
    return 1;
}

int cb_bench_store(int argc, char **argv)
{
    bench_opts o;
    int rc = bench_parse(argc, argv, &o);
    if (rc != 0) {
        return rc == 1 ? 0 : 2;
    }
    bench_data d = {0};
    int status = 1;
    cb_rng rng;
    cb_rng_init(&rng, o.seed);
    if (!bench_alloc(&d, &o)) {
        goto out_free;
    }
    cb_store_config cfg = {.memory_bytes_max = bench_cap(&o), .hash_seed = cb_rng_next(&rng)};
    uint64_t rss_before = bench_rss_bytes();
    rc = cb_store_new(&cfg, NULL, &d.store);
    if (rc != CB_ERR_OK) {
        fprintf(stderr, "cachebed bench store: %s\n", cb_strerror(rc));
        goto out_free;
    }
    double fill_s = bench_fill(&d, &o);
    uint64_t rss_growth = bench_rss_bytes() - rss_before;
    double rates[2][BENCH_PASSES];
    if (fill_s < 0 || !bench_run_passes(&d, &o, &rng, rates)) {
        goto out_free;
    }
    cb_store_stats st;
    cb_store_stats_get(d.store, &st);
    if (st.evictions != 0 || st.items != o.keys) {
        fprintf(stderr, "cachebed bench store: %" PRIu64 " evictions; cap too small\n",
                st.evictions);
        goto out_free;
    }
    bench_print(&o, &st, rss_growth, fill_s, rates);
    status = 0;

out_free:
    cb_store_del(d.store);
    free(d.order);
    free(d.value);
    free(d.keys);
    return status;
}
