/*
 * test_cb_workload.c: the workload generators against their distributions, with fixed seeds.
 *
 * Statistical checks use generous thresholds (p > 0.001 for chi-square, the 0.1% critical
 * value for Kolmogorov-Smirnov) so a correct generator passes for any seed; a wrong one
 * (a Zipf exponent off by 0.1, a rate off by 10%) fails by orders of magnitude.
 */
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_sort.h>
#include <math.h>
#include <string.h>

#include "cb_frame.h"
#include "cb_test.h"
#include "cb_workload.h"

static cb_workload *wl_make(const cb_workload_config *cfg)
{
    char err[200];
    cb_workload *wl = NULL;
    int rc = cb_workload_new(cfg, &wl, err, sizeof err);
    if (rc != 0) {
        printf("cb_workload_new: %s\n", err);
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    return wl;
}

/* Chi-square of observed rank counts against Zipf(alpha) over n keys: ranks below `bins`
 * one bin each, the rest pooled. Returns the p-value. */
static double wl_zipf_chi2_p(const uint64_t *counts, uint32_t bins, uint64_t n, double alpha,
                             uint64_t samples)
{
    double h = 0;
    for (uint64_t k = 1; k <= n; k++) {
        h += pow((double)k, -alpha);
    }
    double chi2 = 0, tail_expected = 1.0;
    for (uint32_t i = 0; i < bins; i++) {
        double p = pow((double)(i + 1), -alpha) / h;
        tail_expected -= p;
        double e = p * (double)samples;
        chi2 += ((double)counts[i] - e) * ((double)counts[i] - e) / e;
    }
    double e = tail_expected * (double)samples;
    chi2 += ((double)counts[bins] - e) * ((double)counts[bins] - e) / e;
    return gsl_cdf_chisq_Q(chi2, bins);
}

static void wl_zipf_check(uint64_t keys, double alpha, double alpha_used)
{
    enum { BINS = 100, SAMPLES = 200000 };
    cb_workload_config cfg;
    cb_workload_config_default(&cfg);
    cfg.keys = keys;
    cfg.key_dist = CB_WL_KEYS_ZIPF;
    cfg.zipf_alpha = alpha_used;
    cfg.seed = cb_test_seed();
    cb_workload *wl = wl_make(&cfg);
    cb_workload_stream *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_workload_stream_new(wl, 0, &s), 0);
    static uint64_t counts[BINS + 1];
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < SAMPLES; i++) {
        cb_workload_op op;
        cb_workload_next(s, 0, &op);
        CU_ASSERT_FATAL(op.key_id < keys);
        counts[op.key_id < BINS ? op.key_id : BINS]++;
    }
    double p = wl_zipf_chi2_p(counts, BINS, keys, alpha, SAMPLES);
    printf("\n  zipf n=%llu alpha=%.2f (generated with %.2f): chi-square p = %.3g",
           (unsigned long long)keys, alpha, alpha_used, p);
    if (alpha == alpha_used) {
        CU_ASSERT(p > 0.001);
    } else {
        CU_ASSERT(p < 1e-6); /* the test can tell a wrong exponent */
    }
    cb_workload_stream_del(s);
    cb_workload_del(wl);
}

static void test_wl_zipf_alias_matches_distribution(void)
{
    wl_zipf_check(1000, 0.99, 0.99);
    wl_zipf_check(100000, 0.6, 0.6);
    wl_zipf_check(1000, 0.99, 0.89);
}

static void test_wl_zipf_rejection_inversion_matches_distribution(void)
{
    /* Beyond the alias-table limit the sampler switches to rejection-inversion. */
    wl_zipf_check((uint64_t)CB_WORKLOAD_ALIAS_KEYS_MAX * 2, 1.2, 1.2);
    wl_zipf_check((uint64_t)CB_WORKLOAD_ALIAS_KEYS_MAX * 2, 0.99, 0.99);
}

/* Kolmogorov-Smirnov statistic of sorted samples against Exp(mean). */
static double wl_ks_exponential(double *x, size_t n, double mean)
{
    gsl_sort(x, 1, n);
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double f = 1.0 - exp(-x[i] / mean);
        double lo = f - (double)i / (double)n, hi = (double)(i + 1) / (double)n - f;
        d = fmax(d, fmax(lo, hi));
    }
    return d;
}

static double wl_poisson_ks(double rate_used, double rate_expected)
{
    enum { N = 20000 };
    cb_workload_config cfg;
    cb_workload_config_default(&cfg);
    cfg.arrival = CB_WL_ARRIVAL_OPEN;
    cfg.rate_per_s = rate_used;
    cfg.seed = cb_test_seed();
    cb_workload *wl = wl_make(&cfg);
    cb_workload_stream *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_workload_stream_new(wl, 7, &s), 0);
    static double gaps[N];
    uint64_t last = 0;
    for (int i = 0; i < N; i++) {
        cb_workload_op op;
        cb_workload_next(s, 0, &op);
        CU_ASSERT_FATAL(op.at_ns >= last);
        gaps[i] = (double)(op.at_ns - last);
        last = op.at_ns;
    }
    double d = wl_ks_exponential(gaps, N, 1e9 / rate_expected);
    cb_workload_stream_del(s);
    cb_workload_del(wl);
    return d;
}

static void test_wl_poisson_arrivals(void)
{
    /* 0.1% critical value of the KS statistic: 1.95 / sqrt(n). */
    double critical = 1.95 / sqrt(20000.0);
    double good = wl_poisson_ks(5000, 5000), bad = wl_poisson_ks(5500, 5000);
    printf("\n  KS D = %.4f (right rate), %.4f (rate off by 10%%), critical %.4f", good, bad,
           critical);
    CU_ASSERT(good < critical);
    CU_ASSERT(bad > critical);
}

static void wl_collect(const cb_workload_config *cfg, uint32_t client, int n, cb_workload_op *out)
{
    cb_workload *wl = wl_make(cfg);
    cb_workload_stream *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_workload_stream_new(wl, client, &s), 0);
    for (int i = 0; i < n; i++) {
        cb_workload_next(s, 0, &out[i]);
    }
    cb_workload_stream_del(s);
    cb_workload_del(wl);
}

static void test_wl_streams_per_client_and_independent(void)
{
    enum { N = 2000 };
    static cb_workload_op a[N], b[N], c[N], d[N];
    cb_workload_config cfg;
    cb_workload_config_default(&cfg);
    cfg.key_dist = CB_WL_KEYS_ZIPF;
    cfg.mix_delete = 0.05;
    cfg.value_dist = CB_WL_VALUES_GPARETO;
    cfg.value_a = 0, cfg.value_b = 214.476, cfg.value_c = 0.348238;
    cfg.seed = cb_test_seed();
    wl_collect(&cfg, 3, N, a);
    wl_collect(&cfg, 3, N, b);
    wl_collect(&cfg, 4, N, c);
    CU_ASSERT(memcmp(a, b, sizeof a) == 0); /* same (seed, client): same stream */
    int same = 0;
    for (int i = 0; i < N; i++) {
        same += a[i].key_id == c[i].key_id;
    }
    CU_ASSERT(same < N / 4); /* another client draws other keys */
    /* Another value distribution leaves the key and op sequence alone. */
    cfg.value_dist = CB_WL_VALUES_LOGNORMAL;
    cfg.value_a = 5, cfg.value_b = 1;
    wl_collect(&cfg, 3, N, d);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL_FATAL(a[i].key_id, d[i].key_id);
        CU_ASSERT_EQUAL_FATAL(a[i].op, d[i].op);
    }
}

/* Mean of N value sizes drawn with `cfg`. */
static double wl_value_mean(cb_workload_config *cfg, uint32_t *max_seen)
{
    enum { N = 100000 };
    cfg->mix_get = 0, cfg->mix_set = 1;
    cfg->seed = cb_test_seed();
    cb_workload *wl = wl_make(cfg);
    cb_workload_stream *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_workload_stream_new(wl, 0, &s), 0);
    double sum = 0;
    *max_seen = 0;
    for (int i = 0; i < N; i++) {
        cb_workload_op op;
        cb_workload_next(s, 0, &op);
        CU_ASSERT_EQUAL_FATAL(op.op, CB_OP_SET);
        sum += op.value_bytes;
        *max_seen = op.value_bytes > *max_seen ? op.value_bytes : *max_seen;
    }
    cb_workload_stream_del(s);
    cb_workload_del(wl);
    return sum / N;
}

static void test_wl_value_sizes(void)
{
    cb_workload_config cfg;
    uint32_t max;
    cb_workload_config_default(&cfg);
    cfg.value_a = 100;
    CU_ASSERT_DOUBLE_EQUAL(wl_value_mean(&cfg, &max), 100.0, 1e-9);
    cb_workload_config_default(&cfg);
    cfg.value_dist = CB_WL_VALUES_UNIFORM, cfg.value_a = 10, cfg.value_b = 30;
    CU_ASSERT_DOUBLE_EQUAL(wl_value_mean(&cfg, &max), 20.0, 0.1);
    CU_ASSERT_EQUAL(max, 30);
    /* Facebook ETC values: generalized Pareto(0, 214.476, 0.348238), mean 329. */
    cb_workload_config_default(&cfg);
    cfg.value_dist = CB_WL_VALUES_GPARETO;
    cfg.value_a = 0, cfg.value_b = 214.476, cfg.value_c = 0.348238;
    cfg.value_cap = UINT32_MAX / 64;
    CU_ASSERT_DOUBLE_EQUAL(wl_value_mean(&cfg, &max), 214.476 / (1 - 0.348238), 15.0);
    /* Log-normal: mean exp(mu + sigma^2 / 2). */
    cb_workload_config_default(&cfg);
    cfg.value_dist = CB_WL_VALUES_LOGNORMAL, cfg.value_a = 6, cfg.value_b = 0.5;
    CU_ASSERT_DOUBLE_EQUAL(wl_value_mean(&cfg, &max), exp(6.125), 5.0);
    /* GEV(30.7984, 8.20449, 0.078688) (ETC key sizes): mean mu + sigma (Gamma(1-k) - 1) / k. */
    cb_workload_config_default(&cfg);
    cfg.value_dist = CB_WL_VALUES_GEV;
    cfg.value_a = 30.7984, cfg.value_b = 8.20449, cfg.value_c = 0.078688;
    double gev_mean = 30.7984 + 8.20449 * (tgamma(1 - 0.078688) - 1) / 0.078688;
    CU_ASSERT_DOUBLE_EQUAL(wl_value_mean(&cfg, &max), gev_mean, 0.3);
    /* The cap clamps. */
    cb_workload_config_default(&cfg);
    cfg.value_dist = CB_WL_VALUES_GPARETO;
    cfg.value_a = 0, cfg.value_b = 214.476, cfg.value_c = 0.348238, cfg.value_cap = 500;
    (void)wl_value_mean(&cfg, &max);
    CU_ASSERT_EQUAL(max, 500);
}

static void test_wl_hotspot_mix_and_rmw(void)
{
    enum { N = 100000 };
    cb_workload_config cfg;
    cb_workload_config_default(&cfg);
    cfg.keys = 1000;
    cfg.key_dist = CB_WL_KEYS_HOTSPOT, cfg.hot_requests = 0.8, cfg.hot_keys = 0.05;
    cfg.mix_get = 0.7, cfg.mix_set = 0.2, cfg.mix_delete = 0.05, cfg.mix_incr = 0.05;
    cfg.rmw_fraction = 0.5;
    cfg.seed = cb_test_seed();
    cb_workload *wl = wl_make(&cfg);
    cb_workload_stream *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_workload_stream_new(wl, 1, &s), 0);
    unsigned hot = 0, ops[16] = {0}, rmw = 0;
    for (int i = 0; i < N; i++) {
        cb_workload_op op;
        cb_workload_next(s, 0, &op);
        hot += op.key_id < 50;
        ops[op.op & 15]++;
        rmw += op.rmw;
        CU_ASSERT_FATAL(!op.rmw || op.op == CB_OP_GET);
    }
    /* Binomial sd for N = 10^5 is at most 158: allow 6 sd. */
    CU_ASSERT(abs((int)hot - 80000) < 950);
    /* Half the SETs (20%) become read-modify-write: a GET flagged rmw, then the SET. */
    CU_ASSERT(abs((int)ops[CB_OP_GET] - 80000) < 950);
    CU_ASSERT(abs((int)ops[CB_OP_SET] - 10000) < 950);
    CU_ASSERT(abs((int)ops[CB_OP_DELETE] - 5000) < 950);
    CU_ASSERT(abs((int)ops[CB_OP_INCR] - 5000) < 950);
    CU_ASSERT(abs((int)rmw - 10000) < 950);
    cb_workload_stream_del(s);
    cb_workload_del(wl);
}

static void test_wl_churn_shifts_key_space(void)
{
    cb_workload_config cfg;
    cb_workload_config_default(&cfg);
    cfg.keys = 1000;
    cfg.key_dist = CB_WL_KEYS_ZIPF;
    cfg.zipf_alpha = 2.0; /* rank 0 dominates: 61% of draws */
    cfg.churn_interval_ns = 1000000000ull;
    cfg.churn_fraction = 0.25;
    cfg.seed = cb_test_seed();
    cb_workload *wl = wl_make(&cfg);
    cb_workload_stream *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_workload_stream_new(wl, 0, &s), 0);
    unsigned at0 = 0, at250 = 0, at500 = 0;
    for (int i = 0; i < 3000; i++) {
        cb_workload_op op;
        uint64_t now = (uint64_t)(i / 1000) * UINT64_C(1000000000); /* epochs 0, 1, 2 */
        cb_workload_next(s, now, &op);
        at0 += i < 1000 && op.key_id == 0;
        at250 += i >= 1000 && i < 2000 && op.key_id == 250;
        at500 += i >= 2000 && op.key_id == 500;
    }
    CU_ASSERT(at0 > 500 && at250 > 500 && at500 > 500); /* the hottest key moved by 250 */
    cb_workload_stream_del(s);
    cb_workload_del(wl);
}

static void test_wl_closed_loop_think_time(void)
{
    enum { N = 50000 };
    cb_workload_config cfg;
    cb_workload_config_default(&cfg);
    cfg.think_ns = 2000000; /* 2 ms */
    cfg.seed = cb_test_seed();
    cb_workload *wl = wl_make(&cfg);
    cb_workload_stream *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_workload_stream_new(wl, 0, &s), 0);
    double sum = 0;
    for (int i = 0; i < N; i++) {
        cb_workload_op op;
        cb_workload_next(s, 0, &op);
        sum += (double)op.at_ns;
    }
    CU_ASSERT_DOUBLE_EQUAL(sum / N, 2e6, 2e6 * 0.03); /* sd of the mean: 0.45% */
    cb_workload_stream_del(s);
    cb_workload_del(wl);
}

static void test_wl_key_names(void)
{
    cb_workload_config cfg;
    cb_workload_config_default(&cfg);
    cfg.keys = 1u << 20;
    cfg.key_bytes = 12;
    cb_workload *wl = wl_make(&cfg);
    uint8_t a[64], b[64];
    CU_ASSERT_EQUAL(cb_workload_key_name(wl, 0, a, sizeof a), 12);
    CU_ASSERT(memcmp(a, "k00000000000", 12) == 0);
    CU_ASSERT_EQUAL(cb_workload_key_name(wl, 0xfffff, b, sizeof b), 12);
    CU_ASSERT(memcmp(b, "k000000fffff", 12) == 0);
    CU_ASSERT_EQUAL(cb_workload_key_name(wl, 1, a, 11), 0); /* no room */
    uint8_t v1[40], v2[40];
    cb_workload_fill_value(5, 9, v1, sizeof v1);
    cb_workload_fill_value(5, 9, v2, sizeof v2);
    CU_ASSERT(memcmp(v1, v2, sizeof v1) == 0);
    cb_workload_fill_value(5, 10, v2, sizeof v2);
    CU_ASSERT(memcmp(v1, v2, sizeof v1) != 0);
    cb_workload_del(wl);
}

typedef struct wl_bad_case {
    const char *name;
    void (*mutate)(cb_workload_config *c);
    const char *message_part;
} wl_bad_case;

static void wl_bad_keys(cb_workload_config *c)
{
    c->keys = 0;
}
static void wl_bad_key_bytes(cb_workload_config *c)
{
    c->keys = 1ull << 40, c->key_bytes = 8;
}
static void wl_bad_alpha(cb_workload_config *c)
{
    c->key_dist = CB_WL_KEYS_ZIPF, c->zipf_alpha = 0;
}
static void wl_bad_hot(cb_workload_config *c)
{
    c->key_dist = CB_WL_KEYS_HOTSPOT, c->hot_keys = 1;
}
static void wl_bad_uniform(cb_workload_config *c)
{
    c->value_dist = CB_WL_VALUES_UNIFORM, c->value_a = 10, c->value_b = 5;
}
static void wl_bad_mix(cb_workload_config *c)
{
    c->mix_get = 0, c->mix_set = 0;
}
static void wl_bad_rate(cb_workload_config *c)
{
    c->arrival = CB_WL_ARRIVAL_OPEN, c->rate_per_s = 0;
}
static void wl_bad_cap(cb_workload_config *c)
{
    c->value_cap = CB_VALUE_BYTES_LIMIT + 1;
}

static void test_wl_invalid_configs(void)
{
    static const wl_bad_case cases[] = {
        {"keys 0", wl_bad_keys, "keys:"},
        {"key_bytes too short", wl_bad_key_bytes, "key_bytes:"},
        {"zipf alpha 0", wl_bad_alpha, "zipf_alpha:"},
        {"hot_keys 1", wl_bad_hot, "hot_requests and hot_keys"},
        {"uniform max < min", wl_bad_uniform, "value parameters"},
        {"mix all zero", wl_bad_mix, "mix:"},
        {"open loop without rate", wl_bad_rate, "rate:"},
        {"value cap over limit", wl_bad_cap, "value_cap:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cb_workload_config cfg;
        cb_workload_config_default(&cfg);
        cases[i].mutate(&cfg);
        char err[200] = "";
        cb_workload *wl = (cb_workload *)&cfg; /* must be reset to NULL */
        int rc = cb_workload_new(&cfg, &wl, err, sizeof err);
        if (rc != -1 || wl != NULL || strstr(err, cases[i].message_part) == NULL) {
            printf("\n  case '%s': rc %d, message '%s'", cases[i].name, rc, err);
            CU_FAIL("invalid config accepted or wrong message");
        }
    }
}

static const cb_test_case tests[] = {
    {"zipf_alias_matches_distribution", test_wl_zipf_alias_matches_distribution},
    {"zipf_rejection_inversion_matches_distribution",
     test_wl_zipf_rejection_inversion_matches_distribution},
    {"poisson_arrivals", test_wl_poisson_arrivals},
    {"streams_per_client_and_independent", test_wl_streams_per_client_and_independent},
    {"value_sizes", test_wl_value_sizes},
    {"hotspot_mix_and_rmw", test_wl_hotspot_mix_and_rmw},
    {"churn_shifts_key_space", test_wl_churn_shifts_key_space},
    {"closed_loop_think_time", test_wl_closed_loop_think_time},
    {"key_names", test_wl_key_names},
    {"invalid_configs", test_wl_invalid_configs},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_workload", tests)
