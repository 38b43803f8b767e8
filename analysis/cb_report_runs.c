/*
 * cb_report_runs.c: the sections built from requests one run or pair at a time — each run's
 * throughput, hit ratio and timeouts over time with its events marked, and the comparison of
 * model runs (sim, memnet) with real runs of the same scenario: quantile-quantile plot,
 * relative errors and the Kolmogorov-Smirnov statistic. Definitions: docs/report.md.
 */
#include "cb_report_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Events drawn as lines per run; more are listed in the data file and the events table. */
#define REPORT_EVENT_LINES_MAX 200
/* Fault labels written on the plot; more would overlap. */
#define REPORT_EVENT_LABELS_MAX 20
/* Event rows listed per run in the page. */
#define REPORT_EVENT_ROWS_MAX 50

typedef struct report_bucket {
    int64_t completed; /* answered (not timed out) */
    int64_t hits;
    int64_t misses;
    int64_t timeouts;
} report_bucket;

/* How a run's time axis is cut and shown. */
typedef struct report_axis {
    int64_t origin_ns; /* the first bucket's start: start_ns rounded down to the width */
    uint64_t width_ns;
    size_t count;
    double scale; /* ns per displayed unit */
    const char *unit;
} report_axis;

static report_axis report_time_axis(const report_samples *s)
{
    report_axis a;
    a.width_ns = cb_report_bucket_width_ns((uint64_t)(s->end_ns - s->start_ns));
    a.origin_ns = s->start_ns / (int64_t)a.width_ns * (int64_t)a.width_ns;
    a.count = (size_t)((uint64_t)(s->end_ns - a.origin_ns) / a.width_ns) + 1;
    int in_ms = s->end_ns < 2000000000;
    a.scale = in_ms ? 1e6 : 1e9;
    a.unit = in_ms ? "ms" : "s";
    return a;
}

static void report_fill_buckets(const report_samples *s, const report_axis *a, report_bucket *b)
{
    for (size_t i = 0; i < s->count; i++) {
        report_bucket *k = &b[(uint64_t)(s->complete_ns[i] - a->origin_ns) / a->width_ns];
        switch (s->code[i]) {
        case REPORT_CODE_TIMEOUT:
            k->timeouts++;
            continue;
        case REPORT_CODE_HIT:
            k->hits++;
            break;
        case REPORT_CODE_MISS:
            k->misses++;
            break;
        default:
            break;
        }
        k->completed++;
    }
}

/*
 * Index 0 of timeseries_<id>.dat. A bucket's rates divide by the part of it the run covers
 * (the first and last are partial); one covered less than a fifth is left out (NaN).
 */
static int report_bucket_rows(FILE *dat, const report_samples *s, const report_axis *a,
                              const report_bucket *b, int *has_hits)
{
    fputs("# columns: 1 bucket start, 2 bucket middle (time since run start), "
          "3 completed requests/s, 4 GET hit ratio, 5 timeouts/s, 6 completed, 7 hits, "
          "8 misses, 9 timeouts, 10 seconds of the bucket the run covers\n",
          dat);
    fprintf(dat, "# time unit: %s; bucket width: %.6g %s\n", a->unit,
            (double)a->width_ns / a->scale, a->unit);
    for (size_t i = 0; i < a->count; i++) {
        int64_t lo = a->origin_ns + (int64_t)(i * a->width_ns);
        int64_t hi = lo + (int64_t)a->width_ns;
        int64_t cover = (hi < s->end_ns ? hi : s->end_ns) - (lo > s->start_ns ? lo : s->start_ns);
        double cover_s = (double)cover / 1e9;
        int ok = cover * 5 >= (int64_t)a->width_ns;
        int64_t gets = b[i].hits + b[i].misses;
        *has_hits |= ok && gets > 0;
        fprintf(dat, "%.9g %.9g %.9g %.9g %.9g %lld %lld %lld %lld %.9g\n", (double)lo / a->scale,
                ((double)lo + (double)a->width_ns / 2) / a->scale,
                ok ? (double)b[i].completed / cover_s : NAN,
                ok && gets > 0 ? (double)b[i].hits / (double)gets : NAN,
                ok ? (double)b[i].timeouts / cover_s : NAN, (long long)b[i].completed,
                (long long)b[i].hits, (long long)b[i].misses, (long long)b[i].timeouts, cover_s);
    }
    return 0;
}

/* Index 1: the events, at most REPORT_EVENT_LINES_MAX; counts faults into *faults. */
static size_t report_event_rows(FILE *dat, const report_event *ev, size_t n, double scale,
                                size_t *faults)
{
    size_t written = n < REPORT_EVENT_LINES_MAX ? n : REPORT_EVENT_LINES_MAX;
    fputs("\n\n# events: 1 time, 2 fault (1) or other event (0), 3 kind, 4 node\n", dat);
    for (size_t i = 0; i < written; i++) {
        int fault = report_event_is_fault(ev[i].kind);
        *faults += (size_t)fault;
        fprintf(dat, "%.9g %d ", (double)ev[i].time_ns / scale, fault);
        report_dat_string(dat, ev[i].kind);
        fputs(" ", dat);
        report_dat_string(dat, ev[i].node);
        fputs("\n", dat);
    }
    return written;
}

/* The event lines (and fault labels) added to a panel's plot command. */
static void report_event_series(FILE *gp, const char *name, size_t events, size_t faults,
                                int labels)
{
    if (faults > 0) {
        fprintf(gp,
                ", \\\n     '%s.dat' index 1 using 1:($2 == 1 ? 1 : NaN) axes x1y2 "
                "with impulses dt 2 lw 1.5 lc rgb \"#CC0000\" title 'fault'",
                name);
    }
    if (events > faults) {
        fprintf(gp,
                ", \\\n     '%s.dat' index 1 using 1:($2 == 0 ? 1 : NaN) axes x1y2 "
                "with impulses dt 3 lc rgb \"#777777\" title 'other event'",
                name);
    }
    if (labels && faults > 0 && faults <= REPORT_EVENT_LABELS_MAX) {
        fprintf(gp,
                ", \\\n     '%s.dat' index 1 using 1:($2 == 1 ? 0.98 : NaN):3 axes x1y2 "
                "with labels rotate by 90 right offset -0.7,0 tc rgb \"#CC0000\"",
                name);
    }
}

typedef struct report_panel {
    const char *ylabel;
    const char *yrange;
    int column;
    const char *color;
} report_panel;

static const report_panel report_panels[] = {
    {"completed requests/s", "[0:*]", 3, "#0072B2"},
    {"GET hit ratio", "[0:1]", 4, "#009E73"},
    {"timeouts/s", "[0:1<*]", 5, "#D55E00"},
};

static void report_timeseries_script(FILE *gp, const char *name, const char *title,
                                     const report_axis *a, size_t events, size_t faults,
                                     int has_hits)
{
    fputs("set multiplot layout 3,1 title ", gp);
    report_gp_string(gp, title);
    fprintf(gp,
            "\nset lmargin 12\nset rmargin 4\nset xrange [%.9g:%.9g]\n"
            "set y2range [0:1]\nunset y2tics\nset key bottom right opaque\n",
            (double)a->origin_ns / a->scale,
            ((double)a->origin_ns + (double)(a->count * a->width_ns)) / a->scale);
    for (size_t i = 0; i < sizeof report_panels / sizeof report_panels[0]; i++) {
        const report_panel *pn = &report_panels[i];
        int last = i + 1 == sizeof report_panels / sizeof report_panels[0];
        fprintf(gp, "set ylabel '%s'\nset yrange %s\n", pn->ylabel, pn->yrange);
        if (last) {
            fprintf(gp, "set xlabel 'time since run start (%s)'\nset format x '%%g'\n", a->unit);
        } else {
            fputs("unset xlabel\nset format x ''\n", gp);
        }
        if (pn->column == 4 && !has_hits) {
            fputs("set label 1 'no GET answered hit or miss' at graph 0.5, 0.5 center\n"
                  "plot 2 notitle\nunset label 1\n",
                  gp);
            continue;
        }
        fprintf(gp, "plot '%s.dat' index 0 using 2:%d with lines lw 2 lc rgb \"%s\" notitle", name,
                pn->column, pn->color);
        report_event_series(gp, name, events, faults, i == 0);
        fputs("\nunset key\n", gp); /* the event legend once, in the top panel */
    }
    fputs("unset multiplot\n", gp);
}

static int report_events_table(report_ctx *ctx, const report_run *r, const report_event *ev,
                               size_t n)
{
    static const char *const head[] = {"time (ms)", "node", "kind", "detail"};
    report_table *t = report_table_new(4);
    int bad = t == NULL || report_table_add_row(t, head) != 0;
    for (size_t i = 0; !bad && i < n && i < REPORT_EVENT_ROWS_MAX; i++) {
        char when[32];
        snprintf(when, sizeof when, "%.3f", (double)ev[i].time_ns / 1e6);
        const char *row[] = {when, ev[i].node, ev[i].kind, ev[i].detail};
        bad = report_table_add_row(t, row) != 0;
    }
    if (bad) {
        report_table_free(t);
        return report_fail(ctx, "events table: out of memory");
    }
    t->align[0] = 1;
    char caption[160];
    snprintf(caption, sizeof caption, "Events of run %lld (%zu%s)", (long long)r->id, n,
             n > REPORT_EVENT_ROWS_MAX ? "; the first 50 listed, all in the events table" : "");
    return report_add_table(ctx, t, caption);
}

/* Write timeseries_<id>.{dat,gp} from the run's samples and events, and render it. */
static int report_timeseries_plot(report_ctx *ctx, const report_run *r, const report_samples *s,
                                  const report_event *ev, size_t ev_count)
{
    report_axis a = report_time_axis(s);
    report_bucket *b = calloc(a.count, sizeof *b);
    char name[48];
    snprintf(name, sizeof name, "timeseries_%lld", (long long)r->id);
    char *title = report_sprintf("Run %lld: %s, seed %lld", (long long)r->id,
                                 ctx->groups[r->group].label, (long long)r->seed);
    char *caption = report_sprintf(
        "Completions per %.6g %s bucket (by completion time): answered requests per second, "
        "GET hit ratio, timeouts per second; vertical lines mark the run's events.",
        (double)a.width_ns / a.scale, a.unit);
    report_plot p;
    int rc = b == NULL || title == NULL || caption == NULL
                 ? report_fail(ctx, "time series: out of memory")
                 : report_plot_open(ctx, &p, name, title, 1000, 780);
    if (rc == CB_REPORT_OK) {
        int has_hits = 0;
        size_t faults = 0;
        report_fill_buckets(s, &a, b);
        report_bucket_rows(p.dat, s, &a, b, &has_hits);
        size_t lines = report_event_rows(p.dat, ev, ev_count, a.scale, &faults);
        report_timeseries_script(p.gp, name, title, &a, lines, faults, has_hits);
        rc = report_plot_close(ctx, &p, title, caption);
    }
    free(b);
    free(title);
    free(caption);
    return rc;
}

static int report_timeseries_run(report_ctx *ctx, const report_run *r)
{
    report_samples s;
    report_event *ev = NULL;
    size_t ev_count = 0;
    if (report_read_samples(ctx, r->id, &s) != CB_REPORT_OK) {
        return CB_REPORT_ERROR;
    }
    int rc = report_read_events(ctx, r->id, &ev, &ev_count);
    if (rc == CB_REPORT_OK && s.count == 0) {
        rc = report_add_text(ctx, "Run %lld has no completed requests: no time series.",
                             (long long)r->id);
    } else if (rc == CB_REPORT_OK) {
        rc = report_timeseries_plot(ctx, r, &s, ev, ev_count);
    }
    if (rc == CB_REPORT_OK && ev_count > 0) {
        rc = report_events_table(ctx, r, ev, ev_count);
    }
    report_events_free(ev, ev_count);
    report_samples_free(&s);
    return rc;
}

int report_section_timeseries(report_ctx *ctx)
{
    if (report_add_heading(ctx, 2, "time", "Over time") != CB_REPORT_OK ||
        report_add_text(ctx, "Per run: requests are counted in the bucket of their completion "
                             "time. Buckets are 1 s wide, or a fiftieth of the run rounded down "
                             "to 1, 2 or 5 times a power of ten (at least 100 µs) for runs "
                             "shorter than 50 s. Red dashed lines: injected faults; grey "
                             "dotted lines: other events.") != CB_REPORT_OK) {
        return CB_REPORT_ERROR;
    }
    for (size_t i = 0; i < ctx->run_count; i++) {
        if (report_timeseries_run(ctx, &ctx->runs[i]) != CB_REPORT_OK) {
            return CB_REPORT_ERROR;
        }
    }
    return CB_REPORT_OK;
}

/* ---- model against real --------------------------------------------------------------------- */

/* Probabilities of the QQ plot: 0.001, 0.005, 0.01 ... 0.99, 0.995, 0.999. */
static double report_qq_probability(size_t i)
{
    static const double ends[] = {0.001, 0.005, 0.995, 0.999};
    if (i < 2) {
        return ends[i];
    }
    return i < 101 ? (double)(i - 1) / 100.0 : ends[i - 99];
}
#define REPORT_QQ_POINTS 103

/* Critical value of D at the 5% level for samples of n and m (asymptotic: 1.358 factor). */
static double report_ks_critical(size_t n, size_t m)
{
    return 1.358 * sqrt((double)(n + m) / ((double)n * (double)m));
}

typedef struct report_pair {
    const report_group *model;
    const report_group *real;
    double *model_lat;
    size_t model_n;
    double *real_lat;
    size_t real_n;
    char *label;
} report_pair;

static void report_qq_files(const report_pair *pr, const report_plot *p)
{
    fputs("# columns: 1 probability, 2 real latency quantile (µs), 3 model latency quantile "
          "(µs)\n",
          p->dat);
    double lo = INFINITY;
    double hi = 0.0;
    for (size_t i = 0; i < REPORT_QQ_POINTS; i++) {
        double f = report_qq_probability(i);
        double x = report_quantile(pr->real_lat, pr->real_n, f);
        double y = report_quantile(pr->model_lat, pr->model_n, f);
        fprintf(p->dat, "%.4g %.9g %.9g\n", f, x, y);
        lo = fmin(lo, fmin(x, y));
        hi = fmax(hi, fmax(x, y));
    }
    lo = lo > 0 ? lo / 1.2 : 0.1;
    hi = hi > lo ? hi * 1.2 : lo * 10;
    fputs("set title ", p->gp);
    report_gp_string(p->gp, pr->label);
    fputs("\nset logscale xy\n", p->gp);
    report_log_axis(p->gp, "x", lo, hi);
    report_log_axis(p->gp, "y", lo, hi);
    fprintf(p->gp,
            "set size square\n"
            "set xlabel 'real latency quantile (µs, log scale)'\n"
            "set ylabel '%s latency quantile (µs, log scale)'\nset key top left\n"
            "plot '%s.dat' using 2:3 with linespoints pt 7 ps 0.6 lc rgb \"#0072B2\" "
            "title 'quantiles 0.001 … 0.999', \\\n     x with lines dt 2 lc rgb "
            "\"#555555\" title 'y = x (model equals real)'\n",
            pr->model->mode, p->name);
}

/* Mean of a metric over a group's runs (the comparison's CI mean). */
static double report_group_mean(const report_group *g, report_metric m)
{
    return g->ci[m].mean;
}

static int report_error_rows(report_table *t, const report_pair *pr)
{
    const char *names[] = {"median latency (µs)", "p99 latency (µs)", "throughput (requests/s)",
                           "GET hit ratio"};
    double model[] = {report_quantile(pr->model_lat, pr->model_n, 0.5),
                      report_quantile(pr->model_lat, pr->model_n, 0.99),
                      report_group_mean(pr->model, REPORT_M_THROUGHPUT),
                      report_group_mean(pr->model, REPORT_M_HIT)};
    double real[] = {report_quantile(pr->real_lat, pr->real_n, 0.5),
                     report_quantile(pr->real_lat, pr->real_n, 0.99),
                     report_group_mean(pr->real, REPORT_M_THROUGHPUT),
                     report_group_mean(pr->real, REPORT_M_HIT)};
    for (size_t i = 0; i < 4; i++) {
        char cells[3][40];
        snprintf(cells[0], sizeof cells[0], "%.6g", model[i]);
        snprintf(cells[1], sizeof cells[1], "%.6g", real[i]);
        double rel = (model[i] - real[i]) / real[i];
        if (isfinite(rel)) {
            snprintf(cells[2], sizeof cells[2], "%+.1f%%", 100.0 * rel);
        } else {
            snprintf(cells[2], sizeof cells[2], "–");
        }
        const char *row[] = {pr->label, names[i], cells[0], cells[1], cells[2]};
        if (report_table_add_row(t, row) != 0) {
            return -1;
        }
    }
    return 0;
}

static int report_ks_row(report_table *t, const report_pair *pr)
{
    double d = cb_report_ks_statistic(pr->model_lat, pr->model_n, pr->real_lat, pr->real_n);
    double crit = report_ks_critical(pr->model_n, pr->real_n);
    char cells[4][40];
    snprintf(cells[0], sizeof cells[0], "%zu", pr->model_n);
    snprintf(cells[1], sizeof cells[1], "%zu", pr->real_n);
    snprintf(cells[2], sizeof cells[2], "%.4f", d);
    snprintf(cells[3], sizeof cells[3], "%.4f", crit);
    const char *row[] = {pr->label, cells[0], cells[1],
                         cells[2],  cells[3], d > crit ? "yes" : "no"};
    return report_table_add_row(t, row);
}

static int report_is_model_mode(const char *mode)
{
    return strcmp(mode, "sim") == 0 || strcmp(mode, "memnet") == 0;
}

static int report_pair_run(report_ctx *ctx, report_pair *pr, size_t index, report_table *errs,
                           report_table *ks)
{
    if (report_read_group_latencies(ctx, pr->model, &pr->model_lat, &pr->model_n) != CB_REPORT_OK ||
        report_read_group_latencies(ctx, pr->real, &pr->real_lat, &pr->real_n) != CB_REPORT_OK) {
        return CB_REPORT_ERROR;
    }
    if (pr->model_n == 0 || pr->real_n == 0) {
        return report_add_text(ctx, "%s: one side has no completed requests; nothing to compare.",
                               pr->label);
    }
    if (report_error_rows(errs, pr) != 0 || report_ks_row(ks, pr) != 0) {
        return report_fail(ctx, "model against real: out of memory");
    }
    char name[32];
    snprintf(name, sizeof name, "qq_%zu", index + 1);
    char *title = report_sprintf("Quantile-quantile: %s", pr->label);
    report_plot p;
    int rc = title == NULL ? report_fail(ctx, "model against real: out of memory")
                           : report_plot_open(ctx, &p, name, title, 700, 700);
    if (rc == CB_REPORT_OK) {
        report_qq_files(pr, &p);
        rc = report_plot_close(ctx, &p, title,
                               "Latency quantiles of the model runs (y) against the real runs "
                               "(x), runs of each side pooled; on the dashed line the model "
                               "matches reality.");
    }
    free(title);
    return rc;
}

static report_table *report_sim_real_table(const char *const *head, size_t cols)
{
    report_table *t = report_table_new(cols);
    if (t != NULL && report_table_add_row(t, head) != 0) {
        report_table_free(t);
        return NULL;
    }
    for (size_t c = 1; t != NULL && c < cols; c++) {
        t->align[c] = 1;
    }
    return t;
}

/* Pair every real group with each model group of the same scenario and parameters. */
static int report_sim_real_pairs(report_ctx *ctx, report_table *errs, report_table *ks)
{
    int rc = CB_REPORT_OK;
    for (size_t r = 0; r < ctx->group_count && rc == CB_REPORT_OK; r++) {
        const report_group *real = &ctx->groups[r];
        for (size_t m = 0; m < ctx->group_count && rc == CB_REPORT_OK; m++) {
            const report_group *model = &ctx->groups[m];
            if (strcmp(real->mode, "real") != 0 || !report_is_model_mode(model->mode) ||
                strcmp(real->match, model->match) != 0) {
                continue;
            }
            const report_run *run = &ctx->runs[model->runs[0]];
            report_pair pr = {model, real, NULL, 0, NULL, 0, NULL};
            char *params = report_group_label(ctx, model, NULL, 0);
            pr.label = params == NULL
                           ? NULL
                           : report_sprintf("%s%s%s: %s vs real", run->scenario,
                                            params[0] != '\0' ? " " : "", params, model->mode);
            free(params);
            rc = pr.label == NULL ? report_fail(ctx, "model against real: out of memory")
                                  : report_pair_run(ctx, &pr, ctx->res.sim_real_pairs, errs, ks);
            ctx->res.sim_real_pairs++;
            free(pr.model_lat);
            free(pr.real_lat);
            free(pr.label);
        }
    }
    return rc;
}

int report_section_sim_real(report_ctx *ctx)
{
    static const char *const err_head[] = {"pair", "metric", "model", "real", "relative error"};
    static const char *const ks_head[] = {"pair", "model latencies", "real latencies",
                                          "KS D", "D critical (5%)", "distributions differ at 5%"};
    if (report_add_heading(ctx, 2, "fidelity", "Simulation against reality") != CB_REPORT_OK) {
        return CB_REPORT_ERROR;
    }
    report_table *errs = report_sim_real_table(err_head, 5);
    report_table *ks = report_sim_real_table(ks_head, 6);
    int rc = errs == NULL || ks == NULL ? report_fail(ctx, "model against real: out of memory")
                                        : report_sim_real_pairs(ctx, errs, ks);
    if (rc == CB_REPORT_OK && errs->rows > 1) {
        rc = report_add_table(ctx, errs, "Relative error of the model: (model - real) / real");
        errs = NULL;
        if (rc == CB_REPORT_OK) {
            rc = report_add_table(ctx, ks,
                                  "Two-sample Kolmogorov-Smirnov statistic of the "
                                  "latency distributions");
            ks = NULL;
        }
    } else if (rc == CB_REPORT_OK) {
        rc = report_add_text(ctx, "No scenario has both a model run (mode sim or memnet) and a "
                                  "real run (mode real, from cachebed replay) among the reported "
                                  "runs: nothing to compare.");
    }
    report_table_free(errs);
    report_table_free(ks);
    return rc;
}
