/*
 * cb_bench_placement.c: `cachebed bench placement` — load balance, key movement and lookup
 * cost of every placement strategy (protocols/cb_placement.h), as in issue 5.
 *
 * For each node count N and strategy: keys per node (max/mean and coefficient of variation)
 * over --keys keys; keys whose primary changes when node N+1 is added, when a middle node is
 * removed and when the last node is removed, as a ratio to the optimum 1/(N+1) or 1/N; and
 * lookup ns per key (median of 5 timed passes over up to 10^5 keys) for R = 1 and R = 3.
 * A first row per N, "uniform", assigns each key to a node by a seeded uniform draw: the
 * sampling noise floor that no hash can beat with that many keys. "ketama-int" is ketama
 * with exact integer point counts (config.ketama_integer_points) instead of libmemcached's.
 * Options: --keys N, --nodes LIST, --seed N, --maglev-table M (prime, default 65537),
 * -o FILE: also write the figures to the results database FILE (analysis/cb_results.h,
 * tables placement_runs, placement_results, and placement_load: keys per node for N <= 100
 * only, to keep the file small). Without -o the table is only printed.
 */
#include "cb_bench.h"
#include "cb_err.h"
#include "cb_placement.h"
#include "cb_results.h"
#include "cb_rng.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BENCH_KEY_BYTES = 24, BENCH_RUNS = 5, BENCH_TIMED_KEYS_MAX = 100000, BENCH_NODES_MAX = 8 };

/* Keys per node are stored (placement_load) for node counts up to this one. */
enum { BENCH_LOAD_NODES_MAX = 100 };

typedef struct bench_opts {
    uint64_t keys;
    uint64_t seed;
    uint64_t maglev_table_size;
    uint32_t nodes[BENCH_NODES_MAX];
    size_t node_lists;
    const char *output; /* -o: the results database, or NULL */
} bench_opts;

typedef struct bench_keys {
    char *buf; /* keys[i] at buf + i * BENCH_KEY_BYTES */
    uint8_t *len;
    size_t count;
} bench_keys;

typedef struct bench_row {
    double max_mean, cv, add, remove, remove_last, ns_r1, ns_r3;
    uint64_t *count; /* keys per node, [0] unowned, [1..n] nodes; kept when n is small */
} bench_row;

/* What -o writes: one result per strategy and N, in the order printed. */
typedef struct bench_out {
    cb_placement_result *rows;
    size_t count;
} bench_out;

static const char *key_at(const bench_keys *k, size_t i)
{
    return k->buf + i * BENCH_KEY_BYTES;
}

static int bench_make_keys(bench_keys *k, uint64_t count, uint64_t seed)
{
    k->count = (size_t)count;
    k->buf = malloc(k->count * BENCH_KEY_BYTES);
    k->len = malloc(k->count);
    if (k->buf == NULL || k->len == NULL) {
        return -1;
    }
    cb_rng r;
    cb_rng_init(&r, seed);
    for (size_t i = 0; i < k->count; i++) {
        int n = snprintf(k->buf + i * BENCH_KEY_BYTES, BENCH_KEY_BYTES, "key:%016" PRIx64,
                         cb_rng_next(&r));
        k->len[i] = (uint8_t)n;
    }
    return 0;
}

/* A strategy as the bench runs it: "ketama-int" is ketama with integer point counts. */
typedef struct bench_variant {
    const char *name;
    cb_placement_strategy strategy;
    uint32_t ketama_integer_points;
} bench_variant;

static const bench_variant bench_variants[] = {
    {"modulo", CB_PLACEMENT_MODULO, 0},     {"ketama", CB_PLACEMENT_KETAMA, 0},
    {"ketama-int", CB_PLACEMENT_KETAMA, 1}, {"rendezvous", CB_PLACEMENT_RENDEZVOUS, 0},
    {"jump", CB_PLACEMENT_JUMP, 0},         {"maglev", CB_PLACEMENT_MAGLEV, 0},
};

static cb_placement *bench_build(const bench_variant *s, uint32_t n, const bench_opts *o)
{
    cb_placement_node *nodes = calloc(n + 1u, sizeof(*nodes));
    char(*names)[32] = calloc(n + 1u, sizeof(*names));
    cb_placement *p = NULL;
    if (nodes != NULL && names != NULL) {
        for (uint32_t i = 0; i < n; i++) {
            snprintf(names[i], sizeof(names[i]), "10.%u.%u.%u:11211", i / 62500, i / 250 % 250,
                     i % 250 + 1);
            nodes[i] = (cb_placement_node){i + 1, 1, names[i]};
        }
        cb_placement_config c;
        cb_placement_config_default(&c);
        c.seed = o->seed;
        c.nodes_max = n + 1;
        c.ketama_integer_points = s->ketama_integer_points;
        c.maglev_table_size = (uint32_t)o->maglev_table_size;
        if (cb_placement_new(s->strategy, &c, nodes, n, NULL, &p) != CB_ERR_OK) {
            p = NULL;
        }
    }
    free(names);
    free(nodes);
    return p;
}

static uint32_t bench_primary(const cb_placement *p, const bench_keys *k, size_t i)
{
    uint32_t out = 0;
    int n = cb_placement_lookup(p, (const uint8_t *)key_at(k, i), k->len[i], &out, 1);
    return n == 1 ? out : UINT32_MAX;
}

/* max/mean and coefficient of variation of the counts per node (ids 1 .. n). */
static void bench_balance(const uint32_t *owner, size_t keys, uint32_t n, bench_row *row)
{
    uint64_t *count = calloc(n + 1u, sizeof(*count));
    if (count == NULL) {
        return;
    }
    for (size_t i = 0; i < keys; i++) {
        count[owner[i] <= n ? owner[i] : 0]++;
    }
    double mean = (double)keys / n, var = 0, max = 0;
    for (uint32_t i = 1; i <= n; i++) {
        double d = (double)count[i] - mean;
        var += d * d;
        max = (double)count[i] > max ? (double)count[i] : max;
    }
    row->max_mean = max / mean;
    row->cv = sqrt(var / n) / mean;
    if (n <= BENCH_LOAD_NODES_MAX) {
        free(row->count);
        row->count = count;
    } else {
        free(count);
    }
}

/* Fraction of keys whose primary under `p` differs from `owner`, over `optimum`. */
static double bench_moved(const cb_placement *p, const bench_keys *k, const uint32_t *owner,
                          double optimum)
{
    if (p == NULL) {
        return NAN;
    }
    size_t moved = 0;
    for (size_t i = 0; i < k->count; i++) {
        moved += bench_primary(p, k, i) != owner[i];
    }
    return (double)moved / (double)k->count / optimum;
}

static double bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median over BENCH_RUNS passes of the ns per lookup with out_cap r. */
static double bench_lookup_ns(const cb_placement *p, const bench_keys *k, size_t r)
{
    size_t timed = k->count < BENCH_TIMED_KEYS_MAX ? k->count : BENCH_TIMED_KEYS_MAX;
    double runs[BENCH_RUNS];
    volatile uint32_t sink = 0;
    for (int run = 0; run < BENCH_RUNS; run++) {
        double t0 = bench_now_ns();
        for (size_t i = 0; i < timed; i++) {
            uint32_t out[3];
            int n = cb_placement_lookup(p, (const uint8_t *)key_at(k, i), k->len[i], out, r);
            sink += n > 0 ? out[0] : 0;
        }
        runs[run] = (bench_now_ns() - t0) / (double)timed;
    }
    (void)sink;
    qsort(runs, BENCH_RUNS, sizeof(runs[0]), bench_cmp_double);
    return runs[BENCH_RUNS / 2];
}

static int bench_strategy(const bench_variant *s, uint32_t n, const bench_opts *o,
                          const bench_keys *k, uint32_t *owner, bench_row *row)
{
    cb_placement *base = bench_build(s, n, o);
    if (base == NULL) {
        return -1;
    }
    for (size_t i = 0; i < k->count; i++) {
        owner[i] = bench_primary(base, k, i);
    }
    bench_balance(owner, k->count, n, row);
    cb_placement *grown = bench_build(s, n + 1, o);
    row->add = bench_moved(grown, k, owner, 1.0 / (n + 1));
    cb_placement_del(grown);
    cb_placement *shrunk = bench_build(s, n, o);
    if (shrunk != NULL && cb_placement_remove(shrunk, n / 2 + 1) == CB_ERR_OK) {
        row->remove = bench_moved(shrunk, k, owner, 1.0 / n);
    }
    cb_placement_del(shrunk);
    shrunk = bench_build(s, n, o);
    if (shrunk != NULL && cb_placement_remove(shrunk, n) == CB_ERR_OK) {
        row->remove_last = bench_moved(shrunk, k, owner, 1.0 / n);
    }
    cb_placement_del(shrunk);
    row->ns_r1 = bench_lookup_ns(base, k, 1);
    row->ns_r3 = bench_lookup_ns(base, k, 3);
    cb_placement_del(base);
    return 0;
}

static void bench_print_row(const char *name, uint32_t n, const bench_row *r)
{
    printf("%-10s %5u %8.3f %7.4f %7.3f %7.3f %7.3f %8.1f %8.1f\n", name, n, r->max_mean, r->cv,
           r->add, r->remove, r->remove_last, r->ns_r1, r->ns_r3);
}

/* Keep row r of strategy `name` for -o (its counts move into out); print it. */
static void bench_keep_row(bench_out *out, const char *name, uint32_t n, bench_row *r)
{
    bench_print_row(name, n, r);
    if (out->rows == NULL) {
        free(r->count);
        r->count = NULL;
        return;
    }
    out->rows[out->count++] =
        (cb_placement_result){name,           n,
                              r->max_mean,    r->cv,
                              r->add,         r->remove,
                              r->remove_last, r->ns_r1,
                              r->ns_r3,       r->count != NULL ? r->count + 1 : NULL};
    r->count = NULL;
}

static int bench_one_n(uint32_t n, const bench_opts *o, const bench_keys *k, uint32_t *owner,
                       bench_out *out)
{
    bench_row uniform = {NAN, NAN, NAN, NAN, NAN, NAN, NAN, NULL};
    cb_rng r;
    cb_rng_init(&r, o->seed ^ n);
    for (size_t i = 0; i < k->count; i++) {
        owner[i] = (uint32_t)cb_rng_below(&r, n) + 1;
    }
    bench_balance(owner, k->count, n, &uniform);
    bench_keep_row(out, "uniform", n, &uniform);
    for (size_t s = 0; s < sizeof(bench_variants) / sizeof(bench_variants[0]); s++) {
        bench_row row = {NAN, NAN, NAN, NAN, NAN, NAN, NAN, NULL};
        if (bench_strategy(&bench_variants[s], n, o, k, owner, &row) != 0) {
            fprintf(stderr, "cachebed bench placement: cannot build %s over %u nodes\n",
                    bench_variants[s].name, n);
            free(row.count);
            return -1;
        }
        bench_keep_row(out, bench_variants[s].name, n, &row);
        fflush(stdout);
    }
    return 0;
}

static int bench_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 0);
    if (*s == '\0' || *s == '-' || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int bench_parse_nodes(char *list, bench_opts *o)
{
    o->node_lists = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        uint64_t v;
        if (o->node_lists == BENCH_NODES_MAX ||
            bench_parse_u64(tok, 1, CB_PLACEMENT_NODES_MAX - 1, &v) != 0) {
            return -1;
        }
        o->nodes[o->node_lists++] = (uint32_t)v;
    }
    return o->node_lists > 0 ? 0 : -1;
}

static int bench_parse(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){1000000, 1, 65537, {10, 100, 1000}, 3, NULL};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = v == NULL;
        if (!bad && strcmp(a, "--keys") == 0) {
            bad = bench_parse_u64(v, 1, 100000000, &o->keys) != 0;
        } else if (!bad && strcmp(a, "--seed") == 0) {
            bad = bench_parse_u64(v, 0, UINT64_MAX, &o->seed) != 0;
        } else if (!bad && strcmp(a, "--maglev-table") == 0) {
            bad = bench_parse_u64(v, 2, CB_PLACEMENT_MAGLEV_TABLE_MAX, &o->maglev_table_size) != 0;
        } else if (!bad && strcmp(a, "--nodes") == 0) {
            bad = bench_parse_nodes(argv[i + 1], o) != 0;
        } else if (!bad && (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)) {
            bad = v[0] == '\0';
            o->output = v;
        } else {
            bad = 1;
        }
        if (bad) {
            fprintf(stderr, "cachebed bench placement: bad option '%s'%s%s\n", a,
                    v != NULL ? " " : "", v != NULL ? v : "");
            return -1;
        }
        i++;
    }
    return 0;
}

static void bench_out_free(bench_out *out)
{
    for (size_t i = 0; out->rows != NULL && i < out->count; i++) {
        /* load points one past the allocation's start (bench_keep_row). */
        free(out->rows[i].load != NULL ? (uint64_t *)out->rows[i].load - 1 : NULL);
    }
    free(out->rows);
    *out = (bench_out){NULL, 0};
}

/* Open -o's database before measuring (fail fast) and make room for its rows. */
static int bench_out_open(const bench_opts *o, cb_results **db, bench_out *out)
{
    char err[512];
    *db = NULL;
    *out = (bench_out){NULL, 0};
    if (o->output == NULL) {
        return 0;
    }
    if (cb_results_open(o->output, db, err, sizeof err) != CB_RESULTS_OK) {
        fprintf(stderr, "cachebed bench placement: %s\n", err);
        return -1;
    }
    size_t per_n = 1 + sizeof(bench_variants) / sizeof(bench_variants[0]);
    out->rows = calloc(o->node_lists * per_n, sizeof(*out->rows));
    if (out->rows == NULL) {
        fprintf(stderr, "cachebed bench placement: out of memory\n");
        return -1;
    }
    return 0;
}

/* Write the kept rows to -o's database in one transaction. */
static int bench_out_save(const bench_opts *o, cb_results *db, const bench_out *out)
{
    if (db == NULL) {
        return 0;
    }
    char notes[160];
    snprintf(notes, sizeof notes,
             "equal weights; lookup ns: median of %d passes; keys per node stored for N <= %d",
             BENCH_RUNS, BENCH_LOAD_NODES_MAX);
    cb_placement_run_info info = {NULL, o->keys, o->seed, o->maglev_table_size, NULL, notes};
    int64_t id = 0;
    if (cb_results_add_placement(db, &info, out->rows, out->count, &id) != CB_RESULTS_OK) {
        fprintf(stderr, "cachebed bench placement: %s: %s\n", o->output, cb_results_errmsg(db));
        return -1;
    }
    printf("written to %s as placement run %lld\n", o->output, (long long)id);
    return 0;
}

int cb_bench_placement(int argc, char **argv)
{
    bench_opts o;
    if (bench_parse(argc, argv, &o) != 0) {
        return 2;
    }
    bench_keys k = {NULL, NULL, 0};
    cb_results *db = NULL;
    bench_out out;
    uint32_t *owner = NULL;
    int rc = 1;
    if (bench_out_open(&o, &db, &out) != 0) {
        goto out_free;
    }
    owner = malloc((size_t)o.keys * sizeof(*owner));
    if (owner == NULL || bench_make_keys(&k, o.keys, o.seed) != 0) {
        fprintf(stderr, "cachebed bench placement: out of memory\n");
        goto out_free;
    }
    printf("placement: %" PRIu64 " keys, seed %" PRIu64 ", equal weights; movement as a ratio "
           "to the optimum 1/N; ns per lookup, median of %d passes over %d keys\n",
           o.keys, o.seed, BENCH_RUNS,
           (int)(k.count < BENCH_TIMED_KEYS_MAX ? k.count : BENCH_TIMED_KEYS_MAX));
    printf("%-10s %5s %8s %7s %7s %7s %7s %8s %8s\n", "strategy", "N", "max/mean", "cv", "add",
           "remove", "rm-last", "ns R=1", "ns R=3");
    for (size_t i = 0; i < o.node_lists; i++) {
        if (bench_one_n(o.nodes[i], &o, &k, owner, &out) != 0) {
            goto out_free;
        }
    }
    rc = bench_out_save(&o, db, &out) != 0 ? 1 : 0;
out_free:
    if (cb_results_close(db) != CB_RESULTS_OK && rc == 0) {
        fprintf(stderr, "cachebed bench placement: %s: cannot commit\n", o.output);
        rc = 1;
    }
    bench_out_free(&out);
    free(k.len);
    free(k.buf);
    free(owner);
    return rc;
}
