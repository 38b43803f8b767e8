/*
 * cb_report_stats.c: the statistics of `cachebed report` (docs/report.md "Definitions"):
 * means with Student's t confidence intervals (GSL), the two-sample Kolmogorov-Smirnov
 * statistic, quantiles of sorted samples, time-series bucket widths, and parsing the numbers
 * varied parameters hold.
 */
#include "cb_report_int.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

cb_report_ci cb_report_mean_ci(const double *x, size_t n, double level)
{
    cb_report_ci ci = {0, NAN, NAN, NAN};
    double *finite = malloc((n > 0 ? n : 1) * sizeof *finite);
    if (finite == NULL) {
        return ci;
    }
    for (size_t i = 0; i < n; i++) {
        if (isfinite(x[i])) {
            finite[ci.n++] = x[i];
        }
    }
    if (ci.n > 0) {
        ci.mean = gsl_stats_mean(finite, 1, ci.n);
    }
    if (ci.n > 1) {
        ci.sd = gsl_stats_sd(finite, 1, ci.n);
        double t = gsl_cdf_tdist_Pinv(1.0 - (1.0 - level) / 2.0, (double)(ci.n - 1));
        ci.half_width = t * ci.sd / sqrt((double)ci.n);
    }
    free(finite);
    return ci;
}

double cb_report_ks_statistic(const double *a, size_t na, const double *b, size_t nb)
{
    if (na == 0 || nb == 0) {
        return NAN;
    }
    size_t i = 0;
    size_t j = 0;
    double d = 0.0;
    /*
     * Walk both samples in order; at each distinct value x, step past every copy of x in
     * both before comparing F_a(x) and F_b(x), so that ties between the samples count once.
     */
    while (i < na && j < nb) {
        double x = a[i] < b[j] ? a[i] : b[j];
        while (i < na && a[i] <= x) {
            i++;
        }
        while (j < nb && b[j] <= x) {
            j++;
        }
        double diff = fabs((double)i / (double)na - (double)j / (double)nb);
        if (diff > d) {
            d = diff;
        }
    }
    /* Once one sample is exhausted its F is 1 and the other's only grows toward 1. */
    return d;
}

uint64_t cb_report_bucket_width_ns(uint64_t duration_ns)
{
    const uint64_t min_ns = 100000;     /* 100 µs */
    const uint64_t max_ns = 1000000000; /* 1 s */
    uint64_t target = duration_ns / 50;
    if (target <= min_ns) {
        return min_ns;
    }
    if (target >= max_ns) {
        return max_ns;
    }
    uint64_t decade = 1;
    while (decade * 10 <= target) {
        decade *= 10;
    }
    if (5 * decade <= target) {
        return 5 * decade;
    }
    return 2 * decade <= target ? 2 * decade : decade;
}

double report_quantile(const double *x, size_t n, double f)
{
    if (n == 0) {
        return NAN;
    }
    return gsl_stats_quantile_from_sorted_data(x, 1, n, f);
}

void report_merge_sorted(const double *a, size_t na, const double *b, size_t nb, double *out)
{
    size_t i = 0;
    size_t j = 0;
    size_t k = 0;
    while (i < na && j < nb) {
        out[k++] = a[i] <= b[j] ? a[i++] : b[j++];
    }
    while (i < na) {
        out[k++] = a[i++];
    }
    while (j < nb) {
        out[k++] = b[j++];
    }
}

int report_parse_number(const char *text, double *value, char *unit, size_t unit_cap)
{
    char *end = NULL;
    if (text == NULL || *text == '\0' || unit_cap == 0) {
        return -1;
    }
    double v = strtod(text, &end);
    if (end == text || !isfinite(v)) {
        return -1;
    }
    /* "20k/s" and "20000/s" are one value: scale k, M, G when no letter follows them. */
    static const struct {
        char prefix;
        double scale;
    } scales[] = {{'k', 1e3}, {'M', 1e6}, {'G', 1e9}};
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++) {
        if (end[0] == scales[i].prefix && (end[1] == '\0' || end[1] == '/')) {
            v *= scales[i].scale;
            end++;
            break;
        }
    }
    size_t len = strlen(end);
    if (len >= unit_cap) {
        return -1;
    }
    memcpy(unit, end, len + 1);
    *value = v;
    return 0;
}
