/*
 * cb_report_figs.c: the sections of the report that compare groups — the strategy comparison
 * (mean and 95% confidence interval across seeds), latency distributions, and p99 against
 * offered load. Definitions are in docs/report.md; keep the two in step.
 */
#include "cb_report_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Colours cycled through for series (colour-blind-safe, Okabe and Ito). */
static const char *const report_colors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                            "#E69F00", "#56B4E9", "#000000", "#F0E442"};
#define REPORT_COLOR(i) report_colors[(i) % (sizeof report_colors / sizeof report_colors[0])]

/* A metric's value as text, with the precision its unit deserves. */
static void report_format_value(char *out, size_t cap, report_metric m, double v)
{
    if (!isfinite(v)) {
        snprintf(out, cap, "–");
    } else if (m == REPORT_M_THROUGHPUT) {
        snprintf(out, cap, "%.0f", v);
    } else if (m == REPORT_M_P50 || m == REPORT_M_P99 || m == REPORT_M_P999) {
        snprintf(out, cap, "%.1f", v);
    } else {
        snprintf(out, cap, "%.4f", v);
    }
}

static void report_format_ci(char *out, size_t cap, report_metric m, const cb_report_ci *ci)
{
    char mean[32];
    char half[32];
    report_format_value(mean, sizeof mean, m, ci->mean);
    if (ci->n < 2) {
        snprintf(out, cap, "%s%s", mean, ci->n == 1 ? " (n=1)" : "");
        return;
    }
    report_format_value(half, sizeof half, m, ci->half_width);
    snprintf(out, cap, "%s ± %s", mean, half);
}

/* Bold the best mean of column `col` (metric m) over the table's data rows. */
static void report_mark_best(report_table *t, size_t col, const report_ctx *ctx, report_metric m)
{
    double best = NAN;
    for (size_t g = 0; g < ctx->group_count; g++) {
        double v = ctx->groups[g].ci[m].mean;
        if (isfinite(v) &&
            (!isfinite(best) || (report_metrics[m].higher_is_better ? v > best : v < best))) {
            best = v;
        }
    }
    for (size_t g = 0; g < ctx->group_count && ctx->group_count > 1; g++) {
        t->bold[(g + 1) * t->cols + col] = ctx->groups[g].ci[m].mean == best;
    }
}

static int report_comparison_table(report_ctx *ctx)
{
    report_table *t = report_table_new(2 + REPORT_METRIC_COUNT);
    const char *head[2 + REPORT_METRIC_COUNT] = {"group", "runs"};
    for (int m = 0; m < REPORT_METRIC_COUNT; m++) {
        head[2 + m] = report_metrics[m].axis;
    }
    int bad = t == NULL || report_table_add_row(t, head) != 0;
    for (size_t g = 0; !bad && g < ctx->group_count; g++) {
        const report_group *grp = &ctx->groups[g];
        char cells[2 + REPORT_METRIC_COUNT][96];
        const char *row[2 + REPORT_METRIC_COUNT];
        snprintf(cells[1], sizeof cells[1], "%zu", grp->run_count);
        for (int m = 0; m < REPORT_METRIC_COUNT; m++) {
            report_format_ci(cells[2 + m], sizeof cells[2 + m], (report_metric)m, &grp->ci[m]);
        }
        row[0] = grp->label;
        for (size_t c = 1; c < 2 + REPORT_METRIC_COUNT; c++) {
            row[c] = cells[c];
        }
        bad = report_table_add_row(t, row) != 0;
    }
    if (bad) {
        report_table_free(t);
        return report_fail(ctx, "comparison table: out of memory");
    }
    for (size_t c = 1; c < t->cols; c++) {
        t->align[c] = 1;
    }
    for (int m = 0; m < REPORT_METRIC_COUNT; m++) {
        report_mark_best(t, 2 + (size_t)m, ctx, (report_metric)m);
    }
    return report_add_table(ctx, t,
                            "Mean ± half-width of the 95% confidence interval across seeds; "
                            "the best mean of each column in bold");
}

/* comparison.dat: one row per group: index, label, runs, then mean, low, high per metric. */
static void report_comparison_data(const report_ctx *ctx, FILE *dat)
{
    fputs("# columns: 1 index, 2 group, 3 runs; then for each metric its mean, CI low, CI high:",
          dat);
    for (int m = 0; m < REPORT_METRIC_COUNT; m++) {
        fprintf(dat, " %d-%d %s", 4 + 3 * m, 6 + 3 * m, report_metrics[m].column);
    }
    fputs("\n# CI: mean ± t(0.975, n-1) * sd / sqrt(n); low = high = mean when n = 1\n", dat);
    for (size_t g = 0; g < ctx->group_count; g++) {
        const report_group *grp = &ctx->groups[g];
        fprintf(dat, "%zu ", g);
        report_dat_string(dat, grp->label);
        fprintf(dat, " %zu", grp->run_count);
        for (int m = 0; m < REPORT_METRIC_COUNT; m++) {
            const cb_report_ci *ci = &grp->ci[m];
            double half = isfinite(ci->half_width) ? ci->half_width : 0.0;
            fprintf(dat, " %.17g %.17g %.17g", ci->mean, ci->mean - half, ci->mean + half);
        }
        fputs("\n", dat);
    }
}

/* The six metrics the comparison plot shows (error rate stays in the table). */
static const report_metric report_plotted[] = {REPORT_M_THROUGHPUT, REPORT_M_P50, REPORT_M_P99,
                                               REPORT_M_P999,       REPORT_M_HIT, REPORT_M_TIMEOUT};

/* Does any group have a value of metric m? */
static int report_metric_has_data(const report_ctx *ctx, report_metric m)
{
    for (size_t g = 0; g < ctx->group_count; g++) {
        if (isfinite(ctx->groups[g].ci[m].mean)) {
            return 1;
        }
    }
    return 0;
}

static void report_comparison_script(const report_ctx *ctx, FILE *gp)
{
    fprintf(gp,
            "set multiplot layout 2,3 title 'Mean across seeds with 95%% confidence "
            "interval'\n"
            "set style fill solid 0.7 border rgb \"#333333\"\nset boxwidth 0.6\n"
            "set xrange [-0.6:%zu.4]\nset yrange [0:*]\nset grid noxtics\n"
            "set xtics rotate by -25 left nomirror\nset bmargin 7\nset bars 2\n",
            ctx->group_count - 1);
    for (size_t i = 0; i < sizeof report_plotted / sizeof report_plotted[0]; i++) {
        int col = 4 + 3 * (int)report_plotted[i];
        fputs("set title ", gp);
        report_gp_string(gp, report_metrics[report_plotted[i]].axis);
        if (!report_metric_has_data(ctx, report_plotted[i])) {
            /* gnuplot fails on a plot without one valid point: say so instead. */
            fputs("\nset label 1 'no data' at graph 0.5, 0.5 center\nplot 1e30 notitle\n"
                  "unset label 1\n",
                  gp);
            continue;
        }
        fprintf(gp,
                "\nplot 'comparison.dat' using 1:%d:xtic(2) with boxes lc rgb \"%s\", \\\n"
                "     '' using 1:%d:%d:%d with yerrorbars lc rgb \"black\" pt 7 ps 0.4\n",
                col, REPORT_COLOR(i), col, col + 1, col + 2);
    }
    fputs("unset multiplot\n", gp);
}

int report_section_comparison(report_ctx *ctx)
{
    if (report_add_heading(ctx, 2, "comparison", "Strategy comparison") != CB_REPORT_OK ||
        report_add_text(ctx,
                        "Runs that differ only by their seed form a group; a group is named by "
                        "what sets it apart from the others (its varied parameters). Each "
                        "metric is the run_summary value of each run, averaged over the "
                        "group's runs, with a 95%% Student's t confidence interval "
                        "(n - 1 degrees of freedom).") != CB_REPORT_OK ||
        report_comparison_table(ctx) != CB_REPORT_OK) {
        return CB_REPORT_ERROR;
    }
    const char *title = "Strategy comparison across seeds";
    report_plot p;
    if (report_plot_open(ctx, &p, "comparison", title, 1200, 760) != CB_REPORT_OK) {
        return CB_REPORT_ERROR;
    }
    report_comparison_data(ctx, p.dat);
    report_comparison_script(ctx, p.gp);
    return report_plot_close(ctx, &p, title,
                             "Bars: mean of each group's runs; whiskers: 95% confidence "
                             "interval across seeds (none when a group has one run).");
}

/* ---- latency distributions ------------------------------------------------------------------ */

/* Probabilities the CDF is drawn at: every 1/400, then the tail. */
#define REPORT_CDF_STEPS 400
static const double report_cdf_tail[] = {0.9975, 0.999, 0.9995, 0.9999, 0.99995, 0.99999, 1.0};

/*
 * One block of latency_cdf.dat (latency, F = fraction <= latency) and of latency_ccdf.dat
 * (latency, 1 - F), the latter only where the sample resolves it: 1 - F >= 1/n.
 */
static void report_cdf_block(FILE *cdf, FILE *ccdf, const double *lat, size_t n)
{
    size_t tail_count = sizeof report_cdf_tail / sizeof report_cdf_tail[0];
    for (size_t i = 0; i < REPORT_CDF_STEPS + tail_count; i++) {
        double p = i <= REPORT_CDF_STEPS ? (double)i / REPORT_CDF_STEPS
                                         : report_cdf_tail[i - REPORT_CDF_STEPS - 1];
        if (i > REPORT_CDF_STEPS && p <= 1.0 - 1.0 / REPORT_CDF_STEPS) {
            continue;
        }
        double x = report_quantile(lat, n, p);
        fprintf(cdf, "%.6g %.6g\n", x, p);
        if ((1.0 - p) * (double)n >= 1.0) {
            fprintf(ccdf, "%.6g %.6g\n", x, 1.0 - p);
        }
    }
}

static void report_quantile_row(report_table *t, const char *label, const double *lat, size_t n,
                                int *bad)
{
    static const double fractions[] = {0.0, 0.5, 0.9, 0.99, 0.999, 1.0};
    char cells[7][48];
    const char *row[8] = {label};
    snprintf(cells[0], sizeof cells[0], "%zu", n);
    row[1] = cells[0];
    for (size_t i = 0; i < sizeof fractions / sizeof fractions[0]; i++) {
        snprintf(cells[1 + i], sizeof cells[1 + i], "%.1f", report_quantile(lat, n, fractions[i]));
        row[2 + i] = n > 0 ? cells[1 + i] : "–";
    }
    *bad |= report_table_add_row(t, row) != 0;
}

static void report_cdf_block_head(FILE *dat, size_t index, const char *label, size_t n)
{
    fputs(index > 0 ? "\n\n# group " : "# group ", dat);
    report_dat_string(dat, label);
    fprintf(dat, " (%zu latencies)\n", n);
}

/* Widen [*lo, *hi] to the positive latencies of sorted lat (log axes skip zero). */
static void report_widen_range(const double *lat, size_t n, double *lo, double *hi)
{
    for (size_t i = 0; i < n; i++) {
        if (lat[i] > 0) {
            *lo = fmin(*lo, lat[i]);
            break;
        }
    }
    if (n > 0 && lat[n - 1] > 0) {
        *hi = fmax(*hi, lat[n - 1]);
    }
}

/* Tics m * 10^k within [lo, hi] for m in mult[0..n-1], into tics; returns their count. */
static size_t report_log_tics(report_str *tics, double lo, double hi, const double *mult, size_t n)
{
    size_t count = 0;
    for (double decade = pow(10.0, floor(log10(lo))); decade <= hi; decade *= 10) {
        for (size_t i = 0; i < n; i++) {
            double v = mult[i] * decade;
            if (v >= lo && v <= hi) {
                report_str_printf(tics, "%s%.6g", count++ > 0 ? ", " : "", v);
            }
        }
    }
    return count;
}

/* Evenly spaced tics 1, 2 or 5 times a power of ten apart, about six over [lo, hi]. */
static void report_linear_tics(report_str *tics, double lo, double hi)
{
    double raw = (hi - lo) / 6.0;
    double step = pow(10.0, floor(log10(raw)));
    step *= raw > 5 * step ? 10 : raw > 2 * step ? 5 : raw > step ? 2 : 1;
    size_t count = 0;
    for (double v = ceil(lo / step) * step; v <= hi; v += step) {
        report_str_printf(tics, "%s%.6g", count++ > 0 ? ", " : "", v);
    }
}

/*
 * A log axis over [lo, hi] with labelled tics at 1, 2 and 5 times powers of ten; at powers
 * of ten only when that gives more than twelve; evenly spaced when the range is too narrow
 * for four of those. gnuplot's own log tics are powers of ten only, so a range inside one
 * decade (latencies of 180 to 330 µs) would get no label at all.
 */
void report_log_axis(FILE *gp, const char *axis, double lo, double hi)
{
    static const double one_two_five[] = {1, 2, 5};
    static const double one[] = {1};
    report_str tics = {0};
    size_t count = report_log_tics(&tics, lo, hi, one_two_five, 3);
    if (count > 12) {
        report_str_free(&tics);
        report_log_tics(&tics, lo, hi, one, 1);
    } else if (count < 4) {
        report_str_free(&tics);
        report_linear_tics(&tics, lo, hi);
    }
    fprintf(gp, "set %srange [%.6g:%.6g]\nset %stics (%s)\n", axis, lo, hi, axis,
            report_str_get(&tics));
    report_str_free(&tics);
}

/* Write each group's pooled latencies into both plots' data and the quantile table. */
static int report_cdf_data(report_ctx *ctx, FILE *cdf, FILE *ccdf, report_table *t, double *lo,
                           double *hi)
{
    int bad = 0;
    size_t plotted = 0;
    fputs("# columns: 1 latency (µs), 2 fraction of requests <= latency (F)\n"
          "# one block per group (gnuplot index 0, 1, ...), separated by two blank lines\n",
          cdf);
    fputs("# columns: 1 latency (µs), 2 fraction of requests > latency (1 - F), down to 1/n\n"
          "# one block per group (gnuplot index 0, 1, ...), separated by two blank lines\n",
          ccdf);
    for (size_t g = 0; g < ctx->group_count && !bad; g++) {
        double *lat = NULL;
        size_t n = 0;
        if (report_read_group_latencies(ctx, &ctx->groups[g], &lat, &n) != CB_REPORT_OK) {
            return CB_REPORT_ERROR;
        }
        report_quantile_row(t, ctx->groups[g].label, lat, n, &bad);
        report_widen_range(lat, n, lo, hi);
        ctx->groups[g].cdf_index = n > 0 ? plotted : SIZE_MAX;
        if (n > 0) {
            report_cdf_block_head(cdf, plotted, ctx->groups[g].label, n);
            report_cdf_block_head(ccdf, plotted, ctx->groups[g].label, n);
            report_cdf_block(cdf, ccdf, lat, n);
            plotted++;
        }
        free(lat);
    }
    return bad ? report_fail(ctx, "latency table: out of memory") : CB_REPORT_OK;
}

/* The plot command of a latency plot: one line per group with latencies. */
static void report_cdf_plot_lines(const report_ctx *ctx, FILE *gp, const char *dat)
{
    const char *sep = "plot ";
    for (size_t g = 0; g < ctx->group_count; g++) {
        if (ctx->groups[g].cdf_index == SIZE_MAX) {
            continue;
        }
        fprintf(gp, "%s'%s' index %zu using 1:2 with lines lw 2 lc rgb \"%s\" title ", sep, dat,
                ctx->groups[g].cdf_index, REPORT_COLOR(g));
        report_gp_string(gp, ctx->groups[g].label);
        sep = ", \\\n     ";
    }
    if (sep[0] == 'p') {
        fputs("set label 'no completed requests' at graph 0.5, 0.5 center\n"
              "unset logscale\nset yrange [0:1]\nplot [0:1] 1e30 notitle\n",
              gp);
    }
    fputs("\n", gp);
}

static const char report_cdf_script[] =
    "set title 'Latency CDF (runs pooled per group)'\nset logscale x\nset mxtics 10\n"
    "set xlabel 'latency (µs, log scale)'\nset ylabel 'fraction of requests ≤ latency'\n"
    "set yrange [0:1]\nset ytics 0.1\nset key bottom right\n";

static const char report_ccdf_script[] =
    "set title 'Latency tail: fraction of requests slower than x'\nset logscale xy\n"
    "set mxtics 10\nset xlabel 'latency (µs, log scale)'\n"
    "set ylabel 'fraction of requests > latency (log scale)'\nset format y '%g'\n"
    "set key top right\n";

static int report_cdf_table(report_ctx *ctx, report_table **out)
{
    static const char *const head[] = {"group",    "latencies", "min (µs)",   "p50 (µs)",
                                       "p90 (µs)", "p99 (µs)",  "p99.9 (µs)", "max (µs)"};
    report_table *t = report_table_new(8);
    if (t == NULL || report_table_add_row(t, head) != 0) {
        report_table_free(t);
        return report_fail(ctx, "latency table: out of memory");
    }
    for (size_t c = 1; c < 8; c++) {
        t->align[c] = 1;
    }
    *out = t;
    return CB_REPORT_OK;
}

int report_section_cdf(report_ctx *ctx)
{
    report_table *t = NULL;
    report_plot cdf;
    report_plot ccdf;
    const char *cdf_title = "Latency CDF";
    const char *ccdf_title = "Latency tail (complementary CDF)";
    if (report_add_heading(ctx, 2, "latency", "Latency distribution") != CB_REPORT_OK ||
        report_cdf_table(ctx, &t) != CB_REPORT_OK) {
        return CB_REPORT_ERROR;
    }
    if (report_plot_open(ctx, &cdf, "latency_cdf", cdf_title, 900, 560) != CB_REPORT_OK) {
        report_table_free(t);
        return CB_REPORT_ERROR;
    }
    if (report_plot_open(ctx, &ccdf, "latency_ccdf", ccdf_title, 900, 560) != CB_REPORT_OK) {
        report_table_free(t);
        report_plot_close(ctx, &cdf, cdf_title, NULL);
        return CB_REPORT_ERROR;
    }
    double lo = INFINITY;
    double hi = 0.0;
    int rc = report_cdf_data(ctx, cdf.dat, ccdf.dat, t, &lo, &hi);
    fputs(report_cdf_script, cdf.gp);
    fputs(report_ccdf_script, ccdf.gp);
    if (lo <= hi) {
        /* A little room on both sides; a single value still gets a range. */
        report_log_axis(cdf.gp, "x", lo / 1.1, hi * 1.1);
        report_log_axis(ccdf.gp, "x", lo / 1.1, hi * 1.1);
    }
    report_cdf_plot_lines(ctx, cdf.gp, "latency_cdf.dat");
    report_cdf_plot_lines(ctx, ccdf.gp, "latency_ccdf.dat");
    if (rc == CB_REPORT_OK) {
        rc = report_add_table(ctx, t,
                              "Latency quantiles, runs pooled per group (completed "
                              "requests; timeouts excluded)");
    } else {
        report_table_free(t);
    }
    rc = report_plot_close(ctx, &cdf, cdf_title,
                           "Empirical CDF of the latencies of each group's completed requests "
                           "(runs pooled), drawn at every 1/400 of probability plus the tail "
                           "quantiles; log latency axis.") != CB_REPORT_OK
             ? CB_REPORT_ERROR
             : rc;
    rc = report_plot_close(ctx, &ccdf, ccdf_title,
                           "1 - F on log scales shows the tail the CDF squeezes against 1; "
                           "drawn down to 1/n, the smallest fraction the sample resolves.") !=
                 CB_REPORT_OK
             ? CB_REPORT_ERROR
             : rc;
    return rc;
}

/* ---- p99 against offered load -----------------------------------------------------------------
 */

#define REPORT_UNIT_BYTES 24
/* At most this many load plots (one per numeric varied parameter). */
#define REPORT_LOAD_KEYS_MAX 4

/*
 * Is parameter `key` a numeric load axis: every group has it, as a number with the same
 * unit, and it takes at least two values? The unit goes to `unit`.
 */
static int report_is_load_key(const report_ctx *ctx, const char *key, char *unit)
{
    double first = NAN;
    int differs = 0;
    for (size_t g = 0; g < ctx->group_count; g++) {
        const char *text = report_param_value(&ctx->runs[ctx->groups[g].runs[0]], key);
        char u[REPORT_UNIT_BYTES];
        double v;
        if (text == NULL || report_parse_number(text, &v, u, sizeof u) != 0 ||
            (g > 0 && strcmp(u, unit) != 0)) {
            return 0;
        }
        if (g == 0) {
            memcpy(unit, u, sizeof u);
            first = v;
        }
        differs |= v != first;
    }
    return differs;
}

typedef struct report_load_point {
    double x;
    size_t group;
    char *series; /* the group's label without the load key */
} report_load_point;

static int report_load_point_cmp(const void *pa, const void *pb)
{
    const report_load_point *a = pa;
    const report_load_point *b = pb;
    int c = strcmp(a->series, b->series);
    if (c != 0) {
        return c;
    }
    return (a->x > b->x) - (a->x < b->x);
}

/* Points of every group on the load axis `key`, sorted by series then x. */
static report_load_point *report_load_points(report_ctx *ctx, const char *key)
{
    report_load_point *pts = calloc(ctx->group_count, sizeof *pts);
    if (pts == NULL) {
        return NULL;
    }
    for (size_t g = 0; g < ctx->group_count; g++) {
        char unit[REPORT_UNIT_BYTES];
        const char *text = report_param_value(&ctx->runs[ctx->groups[g].runs[0]], key);
        /* Cannot fail: report_is_load_key() parsed every group's value. */
        (void)report_parse_number(text, &pts[g].x, unit, sizeof unit);
        pts[g].group = g;
        pts[g].series = report_group_label(ctx, &ctx->groups[g], key, 1);
        if (pts[g].series == NULL) {
            for (size_t i = 0; i < g; i++) {
                free(pts[i].series);
            }
            free(pts);
            return NULL;
        }
    }
    qsort(pts, ctx->group_count, sizeof *pts, report_load_point_cmp);
    return pts;
}

/* Data: one block per series (groups equal but for the load parameter), rows by x. */
static size_t report_load_data(const report_ctx *ctx, FILE *dat, const report_load_point *pts,
                               const char *key)
{
    fprintf(dat,
            "# columns: 1 %s, 2-4 p99 latency mean, CI low, CI high (µs),"
            " 5-7 throughput mean, CI low, CI high (requests/s), 8 runs\n"
            "# one block per series (gnuplot index 0, 1, ...)\n",
            key);
    size_t series = 0;
    for (size_t i = 0; i < ctx->group_count; i++) {
        const report_group *g = &ctx->groups[pts[i].group];
        if (i == 0 || strcmp(pts[i].series, pts[i - 1].series) != 0) {
            fprintf(dat, "%s# series ", i > 0 ? "\n\n" : "");
            report_dat_string(dat, pts[i].series);
            fputs("\n", dat);
            series++;
        }
        const cb_report_ci *a = &g->ci[REPORT_M_P99];
        const cb_report_ci *b = &g->ci[REPORT_M_THROUGHPUT];
        double ha = isfinite(a->half_width) ? a->half_width : 0.0;
        double hb = isfinite(b->half_width) ? b->half_width : 0.0;
        fprintf(dat, "%.10g %.10g %.10g %.10g %.10g %.10g %.10g %zu\n", pts[i].x, a->mean,
                a->mean - ha, a->mean + ha, b->mean, b->mean - hb, b->mean + hb, g->run_count);
    }
    return series;
}

/* One panel's plot command: a line with error bars per series, columns first..first+2. */
static void report_load_panel(const report_ctx *ctx, FILE *gp, const char *name,
                              const report_load_point *pts, int first)
{
    size_t series = 0;
    for (size_t i = 0; i < ctx->group_count; i++) {
        if (i > 0 && strcmp(pts[i].series, pts[i - 1].series) == 0) {
            continue;
        }
        fprintf(gp, "%s'%s.dat' index %zu using 1:%d:%d:%d with yerrorlines lw 2 pt 7 ",
                series > 0 ? ", \\\n     " : "plot ", name, series, first, first + 1, first + 2);
        fprintf(gp, "lc rgb \"%s\" %s", REPORT_COLOR(series),
                pts[i].series[0] != '\0' ? "title " : "");
        if (pts[i].series[0] != '\0') {
            report_gp_string(gp, pts[i].series);
        } else {
            fputs("notitle", gp);
        }
        series++;
    }
    fputs("\n", gp);
}

/* Tics at the parameter's values when there are few of them (2 and 4 clients, not 2.5). */
static void report_load_xtics(const report_ctx *ctx, FILE *gp, const report_load_point *pts)
{
    double values[12];
    size_t n = 0;
    for (size_t i = 0; i < ctx->group_count; i++) {
        size_t j = 0;
        while (j < n && values[j] != pts[i].x) {
            j++;
        }
        if (j == n && n == sizeof values / sizeof values[0]) {
            return; /* many values: gnuplot's own tics read better */
        }
        if (j == n) {
            values[n++] = pts[i].x;
        }
    }
    fputs("set xtics (", gp);
    for (size_t i = 0; i < n; i++) {
        fprintf(gp, "%s%.10g", i > 0 ? ", " : "", values[i]);
    }
    fputs(")\n", gp);
}

static void report_load_script(const report_ctx *ctx, FILE *gp, const char *name,
                               const report_load_point *pts, const char *key, const char *unit)
{
    char xlabel[160];
    snprintf(xlabel, sizeof xlabel, unit[0] != '\0' ? "%s (%s)" : "%s%s", key, unit);
    fputs("set multiplot layout 2,1\nset lmargin 12\nset key below\nset bars 2\n"
          "set offsets graph 0.05, graph 0.05, graph 0.1, 0\nset yrange [0:*]\n",
          gp);
    report_load_xtics(ctx, gp, pts);
    fputs("set xlabel ", gp);
    report_gp_string(gp, xlabel);
    fputs("\nset title ", gp);
    report_gp_string(gp, "p99 latency against load");
    fputs("\nset ylabel 'p99 latency (µs)'\n", gp);
    report_load_panel(ctx, gp, name, pts, 2);
    fputs("set title 'throughput against load'\nset ylabel 'throughput (requests/s)'\n", gp);
    report_load_panel(ctx, gp, name, pts, 5);
    fputs("unset multiplot\n", gp);
}

static int report_load_plot(report_ctx *ctx, const char *key, const char *unit, size_t index)
{
    report_load_point *pts = report_load_points(ctx, key);
    if (pts == NULL) {
        return report_fail(ctx, "load plot: out of memory");
    }
    char name[32];
    snprintf(name, sizeof name, "load_%zu", index + 1);
    char *title = report_sprintf("p99 latency and throughput against %s", key);
    report_plot p;
    int rc = title == NULL ? report_fail(ctx, "load plot: out of memory")
                           : report_plot_open(ctx, &p, name, title, 900, 800);
    if (rc == CB_REPORT_OK) {
        report_load_data(ctx, p.dat, pts, key);
        report_load_script(ctx, p.gp, name, pts, key, unit);
        rc = report_plot_close(ctx, &p, title,
                               "Each point: mean over a group's runs (seeds) with its 95% "
                               "confidence interval; lines join groups that differ only in "
                               "this parameter.");
    }
    for (size_t i = 0; i < ctx->group_count; i++) {
        free(pts[i].series);
    }
    free(pts);
    free(title);
    return rc;
}

/* Every parameter key of the first group's runs that is a load axis. */
int report_section_load(report_ctx *ctx)
{
    if (report_add_heading(ctx, 2, "load", "Latency against load") != CB_REPORT_OK) {
        return CB_REPORT_ERROR;
    }
    const report_run *r = &ctx->runs[ctx->groups[0].runs[0]];
    size_t plotted = 0;
    for (size_t i = 0; i < r->param_count && plotted < REPORT_LOAD_KEYS_MAX; i++) {
        char unit[REPORT_UNIT_BYTES];
        if (!report_metric_has_data(ctx, REPORT_M_P99) ||
            !report_metric_has_data(ctx, REPORT_M_THROUGHPUT) ||
            !report_is_load_key(ctx, r->params[i].key, unit)) {
            continue;
        }
        if (report_load_plot(ctx, r->params[i].key, unit, plotted) != CB_REPORT_OK) {
            return CB_REPORT_ERROR;
        }
        plotted++;
    }
    if (plotted == 0) {
        return report_add_text(ctx, "No numeric varied parameter (client count, open-loop "
                                    "rate, ...) takes two or more values among these runs: "
                                    "no load plot.");
    }
    return report_add_text(ctx, "One plot per numeric varied parameter taking two or more "
                                "values (offered load: open-loop rate, client count, ...).");
}
