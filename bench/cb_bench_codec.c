/*
 * cb_bench_codec.c: `cachebed bench codec` — what compression and sealing cost and save.
 *
 * Value sizes are drawn by the workload generator (scenarios/cb_workload.h) from four
 * distributions: fixed 100 B, uniform 100 B..10 KiB, log-normal (mu 7, sigma 1: median
 * ~1.1 KiB) and generalized Pareto with Facebook ETC's parameters (location 0, scale
 * 214.476, shape 0.348238; Atikoglu et al., SIGMETRICS 2012), all capped at 1 MiB. Content
 * is one of two generators: "json", records like {"id":17,"user":"u42","score":311,
 * "ok":true} with varying numbers (what caches of API responses hold), and "letters",
 * cb_workload_fill_value's pseudo-random lower-case letters (~4.7 bits of entropy per byte:
 * a pessimistic case that only entropy coding wins on).
 *
 * For each distribution x content x codec (lz4, zstd 1/3/9; the default 128-byte threshold,
 * a value that does not shrink counted as sent as is) it prints the share of value bytes
 * saved and ns per KiB of original value to compress and to decompress, then the same for
 * sealing and opening frames. Break-even bandwidth = bits saved / (compress + decompress ns):
 * on links slower than that, compression saves more transfer time than it costs CPU; on
 * faster links it adds latency. Times come from CLOCK_MONOTONIC (bench/ may read clocks).
 */
#include "cb_bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cb_compress.h"
#include "cb_err.h"
#include "cb_seal.h"
#include "cb_workload.h"

#define BENCH_VALUE_CAP (1024u * 1024u)

typedef struct bench_dist {
    const char *name;
    uint8_t dist;
    double a, b, c;
} bench_dist;

static const bench_dist bench_dists[] = {
    {"fixed100", CB_WL_VALUES_FIXED, 100, 0, 0},
    {"uniform", CB_WL_VALUES_UNIFORM, 100, 10240, 0},
    {"lognormal", CB_WL_VALUES_LOGNORMAL, 7.0, 1.0, 0},
    {"etc-gpd", CB_WL_VALUES_GPARETO, 0, 214.476, 0.348238},
};

typedef struct bench_codec {
    const char *name;
    uint8_t alg;
    int32_t level;
} bench_codec;

static const bench_codec bench_codecs[] = {
    {"lz4", CB_COMPRESS_LZ4, 1},
    {"zstd-1", CB_COMPRESS_ZSTD, 1},
    {"zstd-3", CB_COMPRESS_ZSTD, 3},
    {"zstd-9", CB_COMPRESS_ZSTD, 9},
};

/* A set of values laid end to end. */
typedef struct bench_values {
    uint8_t *bytes;
    uint32_t *len;
    size_t count;
    size_t total;
} bench_values;

static uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void bench_fill_json(uint64_t key, uint8_t *out, size_t len)
{
    size_t off = 0;
    for (uint32_t item = 0; off < len; item++) {
        char rec[96];
        uint64_t h = cb_rng_mix64(key * 1000003u + item);
        int n = snprintf(rec, sizeof rec, "{\"id\":%u,\"user\":\"u%llu\",\"score\":%u,\"ok\":%s},",
                         item, (unsigned long long)(h % 100000u), (unsigned)(h >> 20) % 1000u,
                         (h & 1u) ? "true" : "false");
        for (int i = 0; i < n && off < len; i++) {
            out[off++] = (uint8_t)rec[i];
        }
    }
}

/* Draw `count` sizes from `d` (seeded) and fill them with `json` or letters content. */
static int bench_make_values(const bench_dist *d, int json, size_t count, uint64_t seed,
                             bench_values *v)
{
    cb_workload_config cfg;
    cb_workload_config_default(&cfg);
    cfg.value_dist = d->dist;
    cfg.value_a = d->a;
    cfg.value_b = d->b;
    cfg.value_c = d->c;
    cfg.value_cap = BENCH_VALUE_CAP;
    cfg.mix_get = 0;
    cfg.mix_set = 1;
    cfg.seed = seed;
    cb_workload *wl = NULL;
    cb_workload_stream *st = NULL;
    char err[256];
    if (cb_workload_new(&cfg, &wl, err, sizeof err) != 0 ||
        cb_workload_stream_new(wl, 0, &st) != 0) {
        fprintf(stderr, "cachebed bench codec: workload: %s\n", err);
        cb_workload_del(wl);
        return -1;
    }
    memset(v, 0, sizeof *v);
    v->len = calloc(count, sizeof v->len[0]);
    for (size_t i = 0; v->len != NULL && i < count; i++) {
        cb_workload_op op;
        cb_workload_next(st, 0, &op);
        v->len[i] = op.value_bytes;
        v->total += op.value_bytes;
    }
    cb_workload_stream_del(st);
    cb_workload_del(wl);
    v->bytes = v->len != NULL ? malloc(v->total + 1) : NULL;
    if (v->bytes == NULL) {
        return -1;
    }
    v->count = count;
    for (size_t i = 0, off = 0; i < count; off += v->len[i], i++) {
        if (json) {
            bench_fill_json(i, v->bytes + off, v->len[i]);
        } else {
            cb_workload_fill_value(i, 0, v->bytes + off, v->len[i]);
        }
    }
    return 0;
}

typedef struct bench_result {
    double saved_share; /* of value bytes */
    double enc_ns_kib;  /* per KiB of original value */
    double dec_ns_kib;
    double breakeven_mbps; /* bits saved per ns of CPU, in Mbit/s */
} bench_result;

/* Compress and decompress every value of `v` with `c`, `reps` times; check the bytes. */
static int bench_compress_run(cb_compress *c, const bench_values *v, int reps, bench_result *r)
{
    uint64_t enc_ns = 0, dec_ns = 0, wire = 0;
    for (int rep = 0; rep < reps; rep++) {
        size_t off = 0;
        for (size_t i = 0; i < v->count; off += v->len[i], i++) {
            const uint8_t *val = v->bytes + off, *enc = NULL, *dec = NULL;
            uint64_t t0 = bench_now_ns();
            long n = cb_compress_encode(c, val, v->len[i], &enc);
            uint64_t t1 = bench_now_ns();
            long m = n > 0 ? cb_compress_decode(c, enc, (size_t)n, &dec) : (long)v->len[i];
            uint64_t t2 = bench_now_ns();
            if (n < 0 || m != (long)v->len[i] || (n > 0 && memcmp(dec, val, v->len[i]) != 0)) {
                fprintf(stderr, "cachebed bench codec: round trip failed\n");
                return -1;
            }
            enc_ns += t1 - t0;
            dec_ns += n > 0 ? t2 - t1 : 0;
            wire += n > 0 ? (uint64_t)n : v->len[i];
        }
    }
    double kib = (double)v->total * reps / 1024.0;
    double saved = (double)v->total * reps - (double)wire;
    r->saved_share = saved / ((double)v->total * reps);
    r->enc_ns_kib = (double)enc_ns / kib;
    r->dec_ns_kib = (double)dec_ns / kib;
    r->breakeven_mbps = saved * 8.0 / (double)(enc_ns + dec_ns) * 1000.0;
    return 0;
}

/* Seal and open every value of `v` as a SET frame (stream mode), `reps` times. */
static int bench_seal_run(const bench_values *v, int reps, bench_result *r)
{
    cb_seal_key key;
    memset(&key, 7, sizeof key);
    cb_rng rng;
    cb_rng_init(&rng, 1);
    cb_seal_tx tx;
    cb_seal_rx rx;
    cb_seal_tx_init(&tx, CB_SEAL_STREAM, CB_SEAL_CLIENT_TO_SERVER, &rng);
    cb_seal_rx_init(&rx, CB_SEAL_STREAM, CB_SEAL_CLIENT_TO_SERVER);
    size_t cap = BENCH_VALUE_CAP + 512u;
    uint8_t *wire = malloc(cap), *out = malloc(cap);
    uint64_t seal_ns = 0, open_ns = 0, extra = 0;
    cb_frame_limits lim = {.value_bytes_max = BENCH_VALUE_CAP + CB_SEAL_OVERHEAD_MAX};
    for (int rep = 0; wire != NULL && out != NULL && rep < reps; rep++) {
        size_t off = 0;
        for (size_t i = 0; i < v->count; off += v->len[i], i++) {
            cb_frame f, s, p;
            memset(&f, 0, sizeof f);
            f.opcode = CB_OP_SET;
            f.key = (const uint8_t *)"bench:key:0000000001";
            f.key_len = 20;
            f.value = v->bytes + off;
            f.value_len = v->len[i];
            uint64_t t0 = bench_now_ns();
            long n = cb_seal_frame(&tx, &key, &f, wire, cap);
            uint64_t t1 = bench_now_ns();
            long m = n > 0 && cb_frame_decode(wire, (size_t)n, &lim, &s) == n
                         ? cb_seal_open(&rx, &key, &s, out, cap, &p)
                         : -1;
            seal_ns += t1 - t0;
            open_ns += bench_now_ns() - t1;
            extra += (uint64_t)n - cb_frame_encoded_len(&f);
            if (m != 20 + (long)v->len[i]) {
                free(wire);
                free(out);
                return -1;
            }
        }
    }
    free(wire);
    free(out);
    double kib = (double)v->total * reps / 1024.0;
    r->saved_share = -(double)extra / ((double)v->total * reps);
    r->enc_ns_kib = (double)seal_ns / kib;
    r->dec_ns_kib = (double)open_ns / kib;
    r->breakeven_mbps = 0;
    return wire == NULL ? -1 : 0;
}

static void bench_print_row(const char *dist, const char *content, const char *codec, size_t mean,
                            const bench_result *r)
{
    printf("%-10s %-8s %-8s %8zu %8.1f%% %10.0f %10.0f", dist, content, codec, mean,
           100.0 * r->saved_share, r->enc_ns_kib, r->dec_ns_kib);
    if (r->breakeven_mbps > 0) {
        printf(" %12.0f\n", r->breakeven_mbps);
    } else {
        printf(" %12s\n", "-");
    }
}

/* All codecs and sealing on one distribution and content. */
static int bench_one(const bench_dist *d, int json, size_t count, int reps, uint64_t seed)
{
    bench_values v;
    if (bench_make_values(d, json, count, seed, &v) != 0) {
        return -1;
    }
    const char *content = json ? "json" : "letters";
    size_t mean = v.total / count;
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < sizeof bench_codecs / sizeof bench_codecs[0]; k++) {
        cb_compress_config cfg = {.alg = bench_codecs[k].alg,
                                  .level = bench_codecs[k].level,
                                  .value_bytes_max = BENCH_VALUE_CAP};
        cb_compress *c = NULL;
        bench_result r;
        rc =
            cb_compress_new(&cfg, NULL, &c) == CB_ERR_OK ? bench_compress_run(c, &v, reps, &r) : -1;
        if (rc == 0) {
            bench_print_row(d->name, content, bench_codecs[k].name, mean, &r);
        }
        cb_compress_del(c);
    }
    bench_result r;
    if (rc == 0 && (rc = bench_seal_run(&v, reps, &r)) == 0) {
        bench_print_row(d->name, content, "seal", mean, &r);
    }
    free(v.bytes);
    free(v.len);
    return rc;
}

static const char bench_codec_usage[] =
    "usage: cachebed bench codec [--values N] [--reps R] [--seed S]\n";

int cb_bench_codec(int argc, char **argv)
{
    size_t count = 2000;
    int reps = 3;
    uint64_t seed = 1;
    for (int i = 0; i + 1 < argc; i += 2) {
        char *end = NULL;
        unsigned long long v = strtoull(argv[i + 1], &end, 10);
        if (*end != '\0' || v == 0 || v > 1000000) {
            fputs(bench_codec_usage, stderr);
            return 2;
        }
        if (strcmp(argv[i], "--values") == 0) {
            count = (size_t)v;
        } else if (strcmp(argv[i], "--reps") == 0) {
            reps = (int)v;
        } else if (strcmp(argv[i], "--seed") == 0) {
            seed = v;
        } else {
            fputs(bench_codec_usage, stderr);
            return 2;
        }
    }
    if (argc % 2 != 0 || cb_seal_global_init() != CB_ERR_OK) {
        fputs(bench_codec_usage, stderr);
        return 2;
    }
    printf("%-10s %-8s %-8s %8s %9s %10s %10s %12s\n", "values", "content", "codec", "mean_B",
           "saved", "enc_ns/KiB", "dec_ns/KiB", "breakeven_Mb");
    for (size_t d = 0; d < sizeof bench_dists / sizeof bench_dists[0]; d++) {
        for (int json = 1; json >= 0; json--) {
            if (bench_one(&bench_dists[d], json, count, reps, seed) != 0) {
                fprintf(stderr, "cachebed bench codec: %s failed\n", bench_dists[d].name);
                return 1;
            }
        }
    }
    printf("\nsaved: share of value bytes not sent (seal: negative, its overhead).\n"
           "breakeven_Mb: link speed in Mbit/s below which compressing saves more transfer\n"
           "time than compress + decompress cost; above it, compression adds latency.\n");
    return 0;
}
