/*
 * cb_report.c: cb_report_generate() (cb_report.h) — open the database read-only, load and
 * group the runs, build each section in page order, then write index.html and report.md.
 * The sections live in cb_report_figs.c (comparison, latency, load), cb_report_runs.c
 * (time series, model against real) and cb_report_place.c (placement); the document model
 * in cb_report_doc.c.
 */
#include "cb_report_int.h"
#include "cb_query.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* mkdir -p: create `dir` and its missing parents (mode 0777 less the umask). */
static int report_make_dir(report_ctx *ctx, const char *dir)
{
    char *path = report_sprintf("%s", dir);
    if (path == NULL) {
        return report_fail(ctx, "%s: out of memory", dir);
    }
    int rc = CB_REPORT_OK;
    for (char *p = path + 1; rc == CB_REPORT_OK; p++) {
        if (*p != '/' && *p != '\0') {
            continue;
        }
        char saved = *p;
        *p = '\0';
        struct stat sb;
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            rc = report_fail(ctx, "%s: cannot create directory: %s", path, strerror(errno));
        } else if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            rc = report_fail(ctx, "%s: not a directory", path);
        }
        *p = saved;
        if (saved == '\0') {
            break;
        }
    }
    free(path);
    return rc;
}

static void report_format_metric(char *out, size_t cap, int decimals, double v)
{
    if (isfinite(v)) {
        snprintf(out, cap, "%.*f", decimals, v);
    } else {
        snprintf(out, cap, "–");
    }
}

static int report_runs_row(report_table *t, const report_ctx *ctx, const report_run *r)
{
    char id[24], seed[24], requests[24], m[5][32];
    snprintf(id, sizeof id, "%lld", (long long)r->id);
    snprintf(seed, sizeof seed, "%lld", (long long)r->seed);
    snprintf(requests, sizeof requests, "%lld", (long long)r->requests);
    report_format_metric(m[0], sizeof m[0], 0, r->metric[REPORT_M_THROUGHPUT]);
    report_format_metric(m[1], sizeof m[1], 1, r->metric[REPORT_M_P50]);
    report_format_metric(m[2], sizeof m[2], 1, r->metric[REPORT_M_P99]);
    report_format_metric(m[3], sizeof m[3], 4, r->metric[REPORT_M_HIT]);
    report_format_metric(m[4], sizeof m[4], 4, r->metric[REPORT_M_TIMEOUT]);
    const char *row[] = {id,
                         r->scenario,
                         r->mode,
                         r->transport,
                         r->placement,
                         seed,
                         ctx->groups[r->group].label,
                         r->status,
                         r->has_summary ? requests : "–",
                         m[0],
                         m[1],
                         m[2],
                         m[3],
                         m[4]};
    return report_table_add_row(t, row);
}

static int report_section_runs(report_ctx *ctx)
{
    static const char *const head[] = {
        "run",    "scenario", "mode",       "transport", "placement", "seed",      "group",
        "status", "requests", "requests/s", "p50 (µs)",  "p99 (µs)",  "hit ratio", "timeout rate"};
    if (report_add_heading(ctx, 2, "runs", "Runs") != CB_REPORT_OK) {
        return CB_REPORT_ERROR;
    }
    report_table *t = report_table_new(sizeof head / sizeof head[0]);
    int bad = t == NULL || report_table_add_row(t, head) != 0;
    for (size_t i = 0; !bad && i < ctx->run_count; i++) {
        bad = report_runs_row(t, ctx, &ctx->runs[i]) != 0;
    }
    if (bad) {
        report_table_free(t);
        return report_fail(ctx, "runs table: out of memory");
    }
    t->align[0] = 1;
    t->align[5] = 1;
    for (size_t c = 8; c < t->cols; c++) {
        t->align[c] = 1;
    }
    return report_add_table(ctx, t, "Every reported run and its summary (run_summary)");
}

static int report_build(report_ctx *ctx, const cb_report_options *opt)
{
    /* A database holding placement figures only (bench placement -o) is reported too. */
    ctx->placement_only_ok = opt->run_ids == NULL && report_has_placement(ctx);
    if (report_load_runs(ctx, opt->run_ids, opt->run_id_count) != CB_REPORT_OK ||
        (ctx->run_count > 0 && report_group_runs(ctx) != CB_REPORT_OK)) {
        return CB_REPORT_ERROR;
    }
    ctx->res.runs = ctx->run_count;
    int (*const sections[])(report_ctx *) = {report_section_runs,       report_section_comparison,
                                             report_section_cdf,        report_section_load,
                                             report_section_timeseries, report_section_sim_real,
                                             report_section_placement};
    size_t first = 0;
    if (ctx->run_count == 0) {
        first = sizeof sections / sizeof sections[0] - 1; /* placement only */
        if (report_add_text(ctx, "No runs in this database: placement figures only.") !=
            CB_REPORT_OK) {
            return CB_REPORT_ERROR;
        }
    }
    for (size_t i = first; i < sizeof sections / sizeof sections[0]; i++) {
        if (sections[i](ctx) != CB_REPORT_OK) {
            return CB_REPORT_ERROR;
        }
    }
    if (report_write_html(ctx) != CB_REPORT_OK || report_write_markdown(ctx) != CB_REPORT_OK) {
        return CB_REPORT_ERROR;
    }
    return CB_REPORT_OK;
}

int cb_report_generate(const cb_report_options *opt, cb_report_result *res, char *errbuf,
                       size_t errcap)
{
    report_ctx ctx = {0};
    ctx.db_path = opt->db_path;
    ctx.dir = opt->out_dir;
    ctx.gnuplot = opt->gnuplot != NULL ? opt->gnuplot : "gnuplot";
    int rc = CB_REPORT_ERROR;
    if (opt->db_path == NULL || opt->out_dir == NULL || opt->out_dir[0] == '\0') {
        report_fail(&ctx, "no database or no output directory given");
    } else if (opt->run_ids != NULL && opt->run_id_count == 0) {
        report_fail(&ctx, "an empty list of runs");
    } else if (cb_query_open(opt->db_path, &ctx.db, ctx.err, sizeof ctx.err) != CB_QUERY_OK) {
        ctx.failed = 1;
    } else if (report_make_dir(&ctx, opt->out_dir) == CB_REPORT_OK) {
        rc = report_build(&ctx, opt);
    }
    if (rc == CB_REPORT_OK && ctx.render_err[0] != '\0') {
        report_fail(&ctx, "%zu of %zu plots not rendered; first: %s",
                    ctx.res.plots - ctx.res.plots_rendered, ctx.res.plots, ctx.render_err);
        rc = CB_REPORT_ERROR;
    }
    if (rc != CB_REPORT_OK && errcap > 0) {
        snprintf(errbuf, errcap, "%s", ctx.err);
    }
    if (res != NULL) {
        *res = ctx.res;
    }
    report_free_blocks(&ctx);
    report_free_runs(&ctx);
    sqlite3_close(ctx.db);
    return rc;
}
