/* cb_workload.c: seeded workload generators; see cb_workload.h. */
#include "cb_workload.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_frame.h"
#include "cb_limits.h"
#include "cb_rng.h"

__extension__ typedef unsigned __int128 wl_u128;

/* xoshiro256** as a gsl_rng type, so GSL's distributions draw from cachebed's generator. */
typedef struct wl_gsl_state {
    cb_rng rng;
} wl_gsl_state;

static void wl_gsl_set(void *state, unsigned long seed)
{
    cb_rng_init(&((wl_gsl_state *)state)->rng, (uint64_t)seed);
}

static unsigned long wl_gsl_get(void *state)
{
    return (unsigned long)(cb_rng_next(&((wl_gsl_state *)state)->rng) >> 32);
}

static double wl_gsl_get_double(void *state)
{
    /* 53 random bits: a uniform double in [0, 1). */
    return (double)(cb_rng_next(&((wl_gsl_state *)state)->rng) >> 11) * 0x1.0p-53;
}

static const gsl_rng_type wl_gsl_xoshiro = {"xoshiro256**",       0xffffffffUL, 0,
                                            sizeof(wl_gsl_state), wl_gsl_set,   wl_gsl_get,
                                            wl_gsl_get_double};

/* Zipf by rejection-inversion (Hörmann & Derflinger 1996), for key spaces too large for an
 * alias table. Ranks are 1..n here; the caller subtracts 1. */
typedef struct wl_zipf_ri {
    double s;
    double n;
    double h_integral_x1;
    double h_integral_n;
    double s_threshold;
} wl_zipf_ri;

static double wl_helper1(double x) /* log1p(x) / x, continuous at 0 */
{
    return fabs(x) > 1e-8 ? log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

static double wl_helper2(double x) /* expm1(x) / x, continuous at 0 */
{
    return fabs(x) > 1e-8 ? expm1(x) / x
                          : 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

static double wl_h(const wl_zipf_ri *z, double x)
{
    return exp(-z->s * log(x));
}

static double wl_h_integral(const wl_zipf_ri *z, double x)
{
    double lx = log(x);
    return wl_helper2((1.0 - z->s) * lx) * lx;
}

static double wl_h_integral_inv(const wl_zipf_ri *z, double x)
{
    double t = x * (1.0 - z->s);
    if (t < -1.0) {
        t = -1.0; /* limits rounding errors near the end of the domain */
    }
    return exp(wl_helper1(t) * x);
}

static void wl_zipf_ri_init(wl_zipf_ri *z, uint64_t n, double s)
{
    z->s = s;
    z->n = (double)n;
    z->h_integral_x1 = wl_h_integral(z, 1.5) - 1.0;
    z->h_integral_n = wl_h_integral(z, z->n + 0.5);
    z->s_threshold = 2.0 - wl_h_integral_inv(z, wl_h_integral(z, 2.5) - wl_h(z, 2.0));
}

static uint64_t wl_zipf_ri_sample(const wl_zipf_ri *z, const gsl_rng *r)
{
    for (;;) {
        double u = z->h_integral_n + gsl_rng_uniform(r) * (z->h_integral_x1 - z->h_integral_n);
        double x = wl_h_integral_inv(z, u);
        double k = floor(x + 0.5);
        if (k < 1.0) {
            k = 1.0;
        } else if (k > z->n) {
            k = z->n;
        }
        if (k - x <= z->s_threshold || u >= wl_h_integral(z, k + 0.5) - wl_h(z, k)) {
            return (uint64_t)k;
        }
    }
}

struct cb_workload {
    cb_workload_config cfg;
    gsl_ran_discrete_t *alias; /* Zipf ranks, when keys <= CB_WORKLOAD_ALIAS_KEYS_MAX */
    wl_zipf_ri zipf;           /* Zipf ranks otherwise */
    double mix_cum[4];         /* cumulative, normalised: get, set, delete, incr */
    uint64_t hot_count;        /* hot-spot: the first hot_count ranks are hot */
    uint64_t churn_shift;
};

struct cb_workload_stream {
    const cb_workload *wl;
    gsl_rng *keys;   /* key ranks and operation kinds */
    gsl_rng *values; /* value sizes */
    gsl_rng *times;  /* arrivals and think times */
    uint64_t seq;
    uint64_t clock_ns; /* open loop: the last arrival */
};

void cb_workload_config_default(cb_workload_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->keys = 10000;
    cfg->key_bytes = 16;
    cfg->key_dist = CB_WL_KEYS_UNIFORM;
    cfg->zipf_alpha = 0.99;
    cfg->hot_requests = 0.9;
    cfg->hot_keys = 0.1;
    cfg->churn_fraction = 0.1;
    cfg->value_dist = CB_WL_VALUES_FIXED;
    cfg->value_a = 100;
    cfg->value_cap = CB_VALUE_BYTES_MAX_DEFAULT;
    cfg->mix_get = 0.9;
    cfg->mix_set = 0.1;
    cfg->arrival = CB_WL_ARRIVAL_CLOSED;
    cfg->rate_per_s = 1000;
}

/* Hex digits needed for the largest key id. */
static uint32_t wl_hex_digits(uint64_t keys)
{
    uint32_t d = 1;
    for (uint64_t v = keys - 1; v >= 16; v /= 16) {
        d++;
    }
    return d;
}

static int wl_check_keys(const cb_workload_config *c, char *err, size_t cap)
{
    if (c->keys == 0 || c->keys > (1ull << 60)) {
        snprintf(err, cap, "keys: must be in 1..2^60, got %llu", (unsigned long long)c->keys);
        return -1;
    }
    if (c->key_bytes < 8 || c->key_bytes > CB_KEY_BYTES_MAX ||
        c->key_bytes < 1 + wl_hex_digits(c->keys)) {
        snprintf(err, cap, "key_bytes: must be in %u..%u for %llu keys, got %u",
                 1 + wl_hex_digits(c->keys) > 8 ? 1 + wl_hex_digits(c->keys) : 8, CB_KEY_BYTES_MAX,
                 (unsigned long long)c->keys, c->key_bytes);
        return -1;
    }
    if (c->key_dist == CB_WL_KEYS_ZIPF && !(c->zipf_alpha > 0 && c->zipf_alpha <= 10)) {
        snprintf(err, cap, "zipf_alpha: must be in (0, 10], got %g", c->zipf_alpha);
        return -1;
    }
    if (c->key_dist == CB_WL_KEYS_HOTSPOT &&
        !(c->hot_requests > 0 && c->hot_requests < 1 && c->hot_keys > 0 && c->hot_keys < 1)) {
        snprintf(err, cap, "hot_requests and hot_keys: must be in (0, 1)");
        return -1;
    }
    if (c->key_dist > CB_WL_KEYS_HOTSPOT) {
        snprintf(err, cap, "key_dist: unknown distribution %u", c->key_dist);
        return -1;
    }
    if (c->churn_interval_ns > 0 && !(c->churn_fraction > 0 && c->churn_fraction <= 1)) {
        snprintf(err, cap, "churn_fraction: must be in (0, 1], got %g", c->churn_fraction);
        return -1;
    }
    return 0;
}

static int wl_check_values(const cb_workload_config *c, char *err, size_t cap)
{
    int ok;
    switch (c->value_dist) {
    case CB_WL_VALUES_FIXED:
        ok = c->value_a >= 0;
        break;
    case CB_WL_VALUES_UNIFORM:
        ok = c->value_a >= 0 && c->value_b >= c->value_a;
        break;
    case CB_WL_VALUES_LOGNORMAL:
        ok = c->value_b > 0;
        break;
    case CB_WL_VALUES_GPARETO:
    case CB_WL_VALUES_GEV:
        ok = c->value_b > 0 && isfinite(c->value_a) && isfinite(c->value_c);
        break;
    default:
        snprintf(err, cap, "value_dist: unknown distribution %u", c->value_dist);
        return -1;
    }
    if (!ok || !isfinite(c->value_a) || !isfinite(c->value_b)) {
        snprintf(err, cap, "value parameters out of range for the distribution (a=%g b=%g c=%g)",
                 c->value_a, c->value_b, c->value_c);
        return -1;
    }
    if (c->value_cap > CB_VALUE_BYTES_LIMIT) {
        snprintf(err, cap, "value_cap: must be at most %u, got %u", CB_VALUE_BYTES_LIMIT,
                 c->value_cap);
        return -1;
    }
    return 0;
}

static int wl_check_mix(const cb_workload_config *c, char *err, size_t cap)
{
    double sum = c->mix_get + c->mix_set + c->mix_delete + c->mix_incr;
    if (!(c->mix_get >= 0 && c->mix_set >= 0 && c->mix_delete >= 0 && c->mix_incr >= 0) ||
        !(sum > 0) || !isfinite(sum)) {
        snprintf(err, cap, "mix: weights must be >= 0 and not all 0");
        return -1;
    }
    if (!(c->rmw_fraction >= 0 && c->rmw_fraction <= 1)) {
        snprintf(err, cap, "rmw: must be in [0, 1], got %g", c->rmw_fraction);
        return -1;
    }
    if (c->arrival == CB_WL_ARRIVAL_OPEN && !(c->rate_per_s > 0 && isfinite(c->rate_per_s))) {
        snprintf(err, cap, "rate: an open loop needs a rate > 0, got %g", c->rate_per_s);
        return -1;
    }
    if (c->arrival > CB_WL_ARRIVAL_OPEN) {
        snprintf(err, cap, "arrival: unknown process %u", c->arrival);
        return -1;
    }
    return 0;
}

/* Build the Zipf sampler: an alias table over ranks, or rejection-inversion. */
static int wl_build_zipf(cb_workload *wl, char *err, size_t cap)
{
    const cb_workload_config *c = &wl->cfg;
    if (c->keys > CB_WORKLOAD_ALIAS_KEYS_MAX) {
        wl_zipf_ri_init(&wl->zipf, c->keys, c->zipf_alpha);
        return 0;
    }
    double *w = malloc((size_t)c->keys * sizeof *w);
    if (w == NULL) {
        snprintf(err, cap, "out of memory for the Zipf table (%llu keys)",
                 (unsigned long long)c->keys);
        return -1;
    }
    for (uint64_t i = 0; i < c->keys; i++) {
        w[i] = pow((double)(i + 1), -c->zipf_alpha);
    }
    wl->alias = gsl_ran_discrete_preproc((size_t)c->keys, w);
    free(w);
    if (wl->alias == NULL) {
        snprintf(err, cap, "out of memory for the Zipf table");
        return -1;
    }
    return 0;
}

int cb_workload_new(const cb_workload_config *cfg, cb_workload **out, char *err, size_t err_cap)
{
    *out = NULL;
    if (wl_check_keys(cfg, err, err_cap) || wl_check_values(cfg, err, err_cap) ||
        wl_check_mix(cfg, err, err_cap)) {
        return -1;
    }
    cb_workload *wl = calloc(1, sizeof *wl);
    if (wl == NULL) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    wl->cfg = *cfg;
    if (cfg->key_dist == CB_WL_KEYS_ZIPF && wl_build_zipf(wl, err, err_cap) != 0) {
        free(wl);
        return -1;
    }
    double sum = cfg->mix_get + cfg->mix_set + cfg->mix_delete + cfg->mix_incr;
    wl->mix_cum[0] = cfg->mix_get / sum;
    wl->mix_cum[1] = wl->mix_cum[0] + cfg->mix_set / sum;
    wl->mix_cum[2] = wl->mix_cum[1] + cfg->mix_delete / sum;
    wl->mix_cum[3] = 1.0;
    wl->hot_count = (uint64_t)ceil(cfg->hot_keys * (double)cfg->keys);
    if (wl->hot_count == 0 || wl->hot_count >= cfg->keys) {
        wl->hot_count = cfg->keys > 1 ? cfg->keys - 1 : 1;
    }
    wl->churn_shift = (uint64_t)llround(cfg->churn_fraction * (double)cfg->keys);
    if (wl->churn_shift == 0) {
        wl->churn_shift = 1;
    }
    *out = wl;
    return 0;
}

void cb_workload_del(cb_workload *wl)
{
    if (wl == NULL) {
        return;
    }
    if (wl->alias != NULL) {
        gsl_ran_discrete_free(wl->alias);
    }
    free(wl);
}

const cb_workload_config *cb_workload_get_config(const cb_workload *wl)
{
    return &wl->cfg;
}

static gsl_rng *wl_rng_new(uint64_t seed)
{
    gsl_rng *r = gsl_rng_alloc(&wl_gsl_xoshiro);
    if (r != NULL) {
        gsl_rng_set(r, (unsigned long)seed);
    }
    return r;
}

int cb_workload_stream_new(const cb_workload *wl, uint32_t client, cb_workload_stream **out)
{
    *out = NULL;
    cb_workload_stream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return -1;
    }
    s->wl = wl;
    /* Seeds from (workload seed, client index) only: independent of the client count. */
    uint64_t base = cb_rng_mix64(wl->cfg.seed ^ cb_rng_mix64((uint64_t)client + 1));
    s->keys = wl_rng_new(cb_rng_mix64(base ^ 1));
    s->values = wl_rng_new(cb_rng_mix64(base ^ 2));
    s->times = wl_rng_new(cb_rng_mix64(base ^ 3));
    if (s->keys == NULL || s->values == NULL || s->times == NULL) {
        cb_workload_stream_del(s);
        return -1;
    }
    *out = s;
    return 0;
}

void cb_workload_stream_del(cb_workload_stream *s)
{
    if (s == NULL) {
        return;
    }
    if (s->keys != NULL) {
        gsl_rng_free(s->keys);
    }
    if (s->values != NULL) {
        gsl_rng_free(s->values);
    }
    if (s->times != NULL) {
        gsl_rng_free(s->times);
    }
    free(s);
}

/* A uniform integer in [0, n) from a gsl_rng (n may exceed 2^32). */
static uint64_t wl_uniform_below(const gsl_rng *r, uint64_t n)
{
    uint64_t x = ((uint64_t)gsl_rng_get(r) << 32) | (uint64_t)gsl_rng_get(r);
    return (uint64_t)(((wl_u128)x * n) >> 64);
}

/* The rank (0 = hottest) of the next key. */
static uint64_t wl_next_rank(const cb_workload_stream *s)
{
    const cb_workload *wl = s->wl;
    switch (wl->cfg.key_dist) {
    case CB_WL_KEYS_ZIPF:
        if (wl->alias != NULL) {
            return (uint64_t)gsl_ran_discrete(s->keys, wl->alias);
        }
        return wl_zipf_ri_sample(&wl->zipf, s->keys) - 1;
    case CB_WL_KEYS_HOTSPOT:
        if (gsl_rng_uniform(s->keys) < wl->cfg.hot_requests) {
            return wl_uniform_below(s->keys, wl->hot_count);
        }
        return wl->hot_count + wl_uniform_below(s->keys, wl->cfg.keys - wl->hot_count);
    default:
        return wl_uniform_below(s->keys, wl->cfg.keys);
    }
}

static uint32_t wl_next_value_bytes(const cb_workload_stream *s)
{
    const cb_workload_config *c = &s->wl->cfg;
    double x;
    double u;
    switch (c->value_dist) {
    case CB_WL_VALUES_UNIFORM:
        x = c->value_a + floor(gsl_rng_uniform(s->values) * (c->value_b - c->value_a + 1.0));
        break;
    case CB_WL_VALUES_LOGNORMAL:
        x = gsl_ran_lognormal(s->values, c->value_a, c->value_b);
        break;
    case CB_WL_VALUES_GPARETO: /* inverse CDF of the generalized Pareto distribution */
        u = gsl_rng_uniform_pos(s->values);
        x = c->value_c != 0 ? c->value_a + c->value_b * (pow(u, -c->value_c) - 1.0) / c->value_c
                            : c->value_a - c->value_b * log(u);
        break;
    case CB_WL_VALUES_GEV: /* inverse CDF of the generalized extreme value distribution */
        u = gsl_rng_uniform_pos(s->values);
        x = c->value_c != 0
                ? c->value_a + c->value_b * (pow(-log(u), -c->value_c) - 1.0) / c->value_c
                : c->value_a - c->value_b * log(-log(u));
        break;
    default:
        x = c->value_a;
        break;
    }
    if (!(x > 0)) {
        return 0; /* also NaN */
    }
    x = floor(x + 0.5);
    return x >= (double)c->value_cap ? c->value_cap : (uint32_t)x;
}

static uint8_t wl_next_op(const cb_workload_stream *s)
{
    static const uint8_t ops[4] = {CB_OP_GET, CB_OP_SET, CB_OP_DELETE, CB_OP_INCR};
    double u = gsl_rng_uniform(s->keys);
    for (int i = 0; i < 3; i++) {
        if (u < s->wl->mix_cum[i]) {
            return ops[i];
        }
    }
    return ops[3];
}

static uint64_t wl_exponential_ns(const gsl_rng *r, double mean_ns)
{
    double x = gsl_ran_exponential(r, mean_ns);
    return x >= 1.8e19 ? UINT64_MAX / 2 : (uint64_t)x;
}

void cb_workload_next(cb_workload_stream *s, uint64_t now_ns, cb_workload_op *op)
{
    const cb_workload *wl = s->wl;
    const cb_workload_config *c = &wl->cfg;
    memset(op, 0, sizeof *op);
    op->seq = s->seq++;
    op->op = wl_next_op(s);
    uint64_t rank = wl_next_rank(s);
    if (op->op == CB_OP_SET) {
        op->value_bytes = wl_next_value_bytes(s);
        /* A read-modify-write SET: the driver reads the key first, then writes it. */
        if (c->rmw_fraction > 0 && gsl_rng_uniform(s->keys) < c->rmw_fraction) {
            op->op = CB_OP_GET;
            op->rmw = 1;
        }
    }
    uint64_t when = now_ns;
    if (c->arrival == CB_WL_ARRIVAL_OPEN) {
        s->clock_ns += wl_exponential_ns(s->times, 1e9 / c->rate_per_s);
        op->at_ns = s->clock_ns;
        when = s->clock_ns;
    } else if (c->think_ns > 0) {
        op->at_ns = wl_exponential_ns(s->times, (double)c->think_ns);
    }
    if (c->churn_interval_ns > 0) {
        uint64_t epoch = when / c->churn_interval_ns;
        rank = (uint64_t)(((wl_u128)(epoch % c->keys) * wl->churn_shift + rank) % c->keys);
    }
    op->key_id = rank;
}

size_t cb_workload_key_name(const cb_workload *wl, uint64_t key_id, uint8_t *out, size_t out_cap)
{
    size_t n = wl->cfg.key_bytes;
    if (out_cap < n) {
        return 0;
    }
    /* 'k', then the id in hex, right-aligned and zero-padded to the full length. */
    out[0] = 'k';
    for (size_t i = n - 1; i >= 1; i--) {
        out[i] = (uint8_t) "0123456789abcdef"[key_id & 15];
        key_id >>= 4;
    }
    return n;
}

void cb_workload_fill_value(uint64_t key_id, uint64_t seq, uint8_t *out, size_t len)
{
    uint64_t x = cb_rng_mix64(key_id * 0x9e3779b97f4a7c15ull ^ seq);
    for (size_t i = 0; i < len; i++) {
        if (i % 12 == 0) {
            x = cb_rng_mix64(x);
        }
        out[i] = (uint8_t)('a' + (x >> ((i % 12) * 5) & 31) % 26);
    }
}
