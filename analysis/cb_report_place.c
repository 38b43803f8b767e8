/*
 * cb_report_place.c: the Placement section — figures of the latest `cachebed bench placement
 * -o` run in the database (placement_runs, schema version 2): keys per node of each strategy,
 * keys moved on a membership change as a ratio to the optimum, and a table of every figure.
 * Definitions are in docs/report.md; keep the two in step.
 */
#include "cb_report_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Colours cycled through for strategies (as cb_report_figs.c: Okabe and Ito). */
static const char *const place_colors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                           "#E69F00", "#56B4E9", "#000000", "#F0E442"};
#define PLACE_COLOR(i) place_colors[(i) % (sizeof place_colors / sizeof place_colors[0])]

/* The figures of placement_results, in column order. */
enum {
    PLACE_MAX_MEAN = 0,
    PLACE_CV,
    PLACE_ADD,
    PLACE_REMOVE,
    PLACE_REMOVE_LAST,
    PLACE_NS_R1,
    PLACE_NS_R3,
    PLACE_FIGURES
};

/* Most strategies a run holds that the section shows. */
#define PLACE_STRATEGIES_MAX 32

typedef struct place_row {
    char *strategy;
    int64_t nodes;
    double v[PLACE_FIGURES]; /* NaN when NULL */
} place_row;

typedef struct place_data {
    int64_t run_id;
    char info[256]; /* "run 3, 2026-...: 1000000 keys, seed 1" */
    place_row *rows;
    size_t count;
    const char *strategies[PLACE_STRATEGIES_MAX]; /* borrowed from rows, first-seen order */
    size_t strategy_count;
} place_data;

/* The latest placement run with results; 0 when none (or the file predates version 2). */
static int64_t place_latest_run(report_ctx *ctx)
{
    static const char sql[] = "SELECT max(placement_run_id) FROM placement_results";
    sqlite3_stmt *st = NULL;
    int64_t id = 0;
    if (sqlite3_prepare_v2(ctx->db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st); /* no such table: a version-1 file, no placement data */
    return id;
}

int report_has_placement(report_ctx *ctx)
{
    return place_latest_run(ctx) > 0;
}

static int place_read_info(report_ctx *ctx, place_data *d)
{
    static const char sql[] = "SELECT started_at, keys, seed, coalesce(maglev_table_size, 0),"
                              " software_version FROM placement_runs WHERE id = ?1";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ctx->db, sql, -1, &st, NULL);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 1, d->run_id);
    rc = rc != SQLITE_OK ? rc : sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *at = sqlite3_column_text(st, 0);
        const unsigned char *ver = sqlite3_column_text(st, 4);
        snprintf(d->info, sizeof d->info,
                 "placement run %lld (%s, cachebed %s): %lld keys, seed %lld, maglev table %lld",
                 (long long)d->run_id, at != NULL ? (const char *)at : "?",
                 ver != NULL ? (const char *)ver : "?", (long long)sqlite3_column_int64(st, 1),
                 (long long)sqlite3_column_int64(st, 2), (long long)sqlite3_column_int64(st, 3));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        return report_fail(ctx, "reading placement_runs: %s", sqlite3_errmsg(ctx->db));
    }
    return CB_REPORT_OK;
}

static void place_note_strategy(place_data *d, const char *name)
{
    for (size_t i = 0; i < d->strategy_count; i++) {
        if (strcmp(d->strategies[i], name) == 0) {
            return;
        }
    }
    if (d->strategy_count < PLACE_STRATEGIES_MAX) {
        d->strategies[d->strategy_count++] = name;
    }
}

/* One placement_results row into d->rows[d->count]; -1 when out of memory. */
static int place_take_row(place_data *d, sqlite3_stmt *st, size_t *cap)
{
    if (d->count == *cap) {
        size_t grown_cap = *cap > 0 ? 2 * *cap : 32;
        place_row *grown = realloc(d->rows, grown_cap * sizeof *grown);
        if (grown == NULL) {
            return -1;
        }
        d->rows = grown;
        *cap = grown_cap;
    }
    place_row *r = &d->rows[d->count];
    const unsigned char *name = sqlite3_column_text(st, 0);
    r->strategy = report_sprintf("%s", name != NULL ? (const char *)name : "?");
    if (r->strategy == NULL) {
        return -1;
    }
    r->nodes = sqlite3_column_int64(st, 1);
    for (int i = 0; i < PLACE_FIGURES; i++) {
        r->v[i] =
            sqlite3_column_type(st, 2 + i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 2 + i);
    }
    d->count++;
    place_note_strategy(d, r->strategy);
    return 0;
}

/* The run's rows, by N and then in the order the bench wrote them (rowid). */
static int place_read_rows(report_ctx *ctx, place_data *d)
{
    static const char sql[] =
        "SELECT strategy, nodes, max_over_mean, cv, moved_add_ratio, moved_remove_ratio,"
        " moved_remove_last_ratio, lookup_ns_r1, lookup_ns_r3 FROM placement_results"
        " WHERE placement_run_id = ?1 ORDER BY nodes, rowid";
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    int rc = sqlite3_prepare_v2(ctx->db, sql, -1, &st, NULL);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 1, d->run_id);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (place_take_row(d, st, &cap) != 0) {
            sqlite3_finalize(st);
            return report_fail(ctx, "reading placement_results: out of memory");
        }
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return report_fail(ctx, "reading placement_results: %s", sqlite3_errmsg(ctx->db));
    }
    return CB_REPORT_OK;
}

static void place_free(place_data *d)
{
    for (size_t i = 0; i < d->count; i++) {
        free(d->rows[i].strategy);
    }
    free(d->rows);
}

/* ---- keys per node ------------------------------------------------------------------------- */

/* Write one strategy's block of placement_load.dat: rank, keys / mean, keys (sorted down). */
static int place_load_block(report_ctx *ctx, const place_data *d, int64_t nodes,
                            const char *strategy, FILE *dat)
{
    static const char sql[] = "SELECT keys, avg(keys) OVER () FROM placement_load"
                              " WHERE placement_run_id = ?1 AND nodes = ?2 AND strategy = ?3"
                              " ORDER BY keys DESC";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ctx->db, sql, -1, &st, NULL);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 1, d->run_id);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_int64(st, 2, nodes);
    rc = rc != SQLITE_OK ? rc : sqlite3_bind_text(st, 3, strategy, -1, SQLITE_STATIC);
    fputs("# ", dat);
    report_dat_string(dat, strategy);
    fputs("\n", dat);
    int64_t rank = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        double keys = sqlite3_column_double(st, 0);
        double mean = sqlite3_column_double(st, 1);
        fprintf(dat, "%lld %.17g %.0f\n", (long long)++rank, mean > 0 ? keys / mean : 0.0, keys);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    fputs("\n\n", dat);
    if (rc != SQLITE_DONE) {
        return report_fail(ctx, "reading placement_load: %s", sqlite3_errmsg(ctx->db));
    }
    return CB_REPORT_OK;
}

/* The largest N of the run with keys-per-node rows; 0 when none. */
static int64_t place_load_nodes(report_ctx *ctx, const place_data *d)
{
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    if (sqlite3_prepare_v2(ctx->db,
                           "SELECT coalesce(max(nodes), 0) FROM placement_load"
                           " WHERE placement_run_id = ?1",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_int64(st, 1, d->run_id) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}

static int place_load_plot(report_ctx *ctx, const place_data *d, int64_t nodes)
{
    char title[96];
    snprintf(title, sizeof title, "Keys per node, N = %lld", (long long)nodes);
    report_plot p;
    if (report_plot_open(ctx, &p, "placement_load", title, 900, 520) != CB_REPORT_OK) {
        return CB_REPORT_ERROR;
    }
    fputs("# one block (index) per strategy, in the plot's order; columns: 1 rank (1 = most "
          "keys), 2 keys / mean keys per node, 3 keys\n",
          p.dat);
    fprintf(p.gp,
            "set title '%s'\nset xlabel 'node, most loaded first'\n"
            "set ylabel 'keys / mean keys per node'\nset key outside right top\n"
            "set xrange [0.5:%lld.5]\nset arrow from graph 0, first 1 to graph 1, first 1"
            " nohead dt 2 lc rgb '#777777'\nplot ",
            title, (long long)nodes);
    for (size_t i = 0; i < d->strategy_count; i++) {
        if (place_load_block(ctx, d, nodes, d->strategies[i], p.dat) != CB_REPORT_OK) {
            fclose(p.gp);
            fclose(p.dat);
            return CB_REPORT_ERROR;
        }
        fprintf(p.gp,
                "%s'placement_load.dat' index %zu using 1:2 with steps lw 2 lc rgb '%s' "
                "title ",
                i > 0 ? ", \\\n     " : "", i, PLACE_COLOR(i));
        report_gp_string(p.gp, d->strategies[i]);
    }
    fputs("\n", p.gp);
    return report_plot_close(ctx, &p, title,
                             "Keys per node of each strategy, sorted from the most loaded node "
                             "and divided by the mean (1, dashed); flat is balanced.");
}

/* ---- keys moved ----------------------------------------------------------------------------- */

/* Does strategy s have a movement figure (uniform, the noise floor, has none)? */
static int place_has_moves(const place_data *d, const char *s)
{
    for (size_t i = 0; i < d->count; i++) {
        if (strcmp(d->rows[i].strategy, s) == 0 &&
            (isfinite(d->rows[i].v[PLACE_ADD]) || isfinite(d->rows[i].v[PLACE_REMOVE]))) {
            return 1;
        }
    }
    return 0;
}

static double place_value(const place_data *d, const char *s, int64_t nodes, int figure)
{
    for (size_t i = 0; i < d->count; i++) {
        if (d->rows[i].nodes == nodes && strcmp(d->rows[i].strategy, s) == 0) {
            return d->rows[i].v[figure];
        }
    }
    return NAN;
}

/* placement_moved.dat: block 0 adding a node, block 1 removing one; a row per N. */
static void place_moved_data(const place_data *d, FILE *dat, const unsigned char *shown)
{
    fputs("# block 0: a node added, block 1: a middle node removed; columns: 1 N, then one per "
          "strategy (keys moved / optimum):",
          dat);
    for (size_t s = 0; s < d->strategy_count; s++) {
        if (shown[s]) {
            fputs(" ", dat);
            report_dat_string(dat, d->strategies[s]);
        }
    }
    fputs("\n", dat);
    const int figures[2] = {PLACE_ADD, PLACE_REMOVE};
    for (int b = 0; b < 2; b++) {
        for (size_t i = 0; i < d->count; i++) {
            if (i > 0 && d->rows[i].nodes == d->rows[i - 1].nodes) {
                continue;
            }
            fprintf(dat, "%lld", (long long)d->rows[i].nodes);
            for (size_t s = 0; s < d->strategy_count; s++) {
                if (!shown[s]) {
                    continue;
                }
                double v = place_value(d, d->strategies[s], d->rows[i].nodes, figures[b]);
                if (isfinite(v)) {
                    fprintf(dat, " %.17g", v);
                } else {
                    fputs(" NaN", dat);
                }
            }
            fputs("\n", dat);
        }
        fputs("\n\n", dat);
    }
}

static void place_moved_script(const place_data *d, FILE *gp, const unsigned char *shown)
{
    fputs("set multiplot layout 1,2 title 'Keys moved on a membership change, as a ratio to "
          "the optimum (1 = optimal)'\nset style data histograms\n"
          "set style histogram clustered gap 1\nset style fill solid 0.8 border rgb '#333333'\n"
          "set logscale y\nset xlabel 'nodes N'\n"
          "set ylabel 'keys moved / optimum'\nset key top left\n",
          gp);
    double top = 1.0; /* the largest bar, for headroom above it on the log axis */
    for (size_t i = 0; i < d->count; i++) {
        for (int f = PLACE_ADD; f <= PLACE_REMOVE; f++) {
            top = isfinite(d->rows[i].v[f]) && d->rows[i].v[f] > top ? d->rows[i].v[f] : top;
        }
    }
    fprintf(gp, "set yrange [0.5:%.6g]\n", top * 3.0);
    const char *const titles[2] = {"a node added (optimum 1/(N+1))",
                                   "a middle node removed (optimum 1/N)"};
    for (int b = 0; b < 2; b++) {
        fprintf(gp, "set title '%s'\nplot ", titles[b]);
        size_t col = 2;
        for (size_t s = 0; s < d->strategy_count; s++) {
            if (!shown[s]) {
                continue;
            }
            fprintf(gp, "%s'placement_moved.dat' index %d using %zu%s lc rgb '%s' title ",
                    col > 2 ? ", \\\n     " : "", b, col, col == 2 ? ":xtic(1)" : "",
                    PLACE_COLOR(s));
            report_gp_string(gp, d->strategies[s]);
            col++;
        }
        fputs("\n", gp);
    }
    fputs("unset multiplot\n", gp);
}

static int place_moved_plot(report_ctx *ctx, const place_data *d)
{
    unsigned char shown[PLACE_STRATEGIES_MAX] = {0};
    size_t count = 0;
    for (size_t s = 0; s < d->strategy_count; s++) {
        shown[s] = (unsigned char)place_has_moves(d, d->strategies[s]);
        count += shown[s];
    }
    if (count == 0) {
        return report_add_text(ctx, "No keys-moved figures in this placement run: no plot.");
    }
    static const char title[] = "Keys moved on a membership change";
    report_plot p;
    if (report_plot_open(ctx, &p, "placement_moved", title, 1100, 480) != CB_REPORT_OK) {
        return CB_REPORT_ERROR;
    }
    place_moved_data(d, p.dat, shown);
    place_moved_script(d, p.gp, shown);
    return report_plot_close(ctx, &p, title,
                             "Share of keys whose primary node changes when node N+1 is added "
                             "(left) and when a middle node is removed (right), over the "
                             "optimum; log scale. Modulo moves nearly every key.");
}

/* ---- the table --------------------------------------------------------------------------------
 */

static int place_table(report_ctx *ctx, const place_data *d)
{
    static const char *const head[] = {
        "strategy",           "N",      "max/mean", "cv", "moved: add", "moved: remove",
        "moved: remove last", "ns R=1", "ns R=3"};
    static const int decimals[PLACE_FIGURES] = {3, 4, 3, 3, 3, 1, 1};
    report_table *t = report_table_new(sizeof head / sizeof head[0]);
    int bad = t == NULL || report_table_add_row(t, head) != 0;
    for (size_t i = 0; !bad && i < d->count; i++) {
        char cells[1 + PLACE_FIGURES][32];
        const char *row[2 + PLACE_FIGURES] = {d->rows[i].strategy, cells[0]};
        snprintf(cells[0], sizeof cells[0], "%lld", (long long)d->rows[i].nodes);
        for (int f = 0; f < PLACE_FIGURES; f++) {
            double v = d->rows[i].v[f];
            snprintf(cells[1 + f], sizeof cells[1 + f], "%.*f", decimals[f], v);
            if (!isfinite(v)) {
                snprintf(cells[1 + f], sizeof cells[1 + f], "–");
            }
            row[2 + f] = cells[1 + f];
        }
        bad = report_table_add_row(t, row) != 0;
    }
    if (bad) {
        report_table_free(t);
        return report_fail(ctx, "placement table: out of memory");
    }
    for (size_t c = 1; c < t->cols; c++) {
        t->align[c] = 1;
    }
    return report_add_table(ctx, t,
                            "Keys per node (max/mean, coefficient of variation), keys moved as a "
                            "ratio to the optimum, and ns per lookup (median) of each strategy; "
                            "uniform is a seeded random assignment, the sampling noise floor");
}

int report_section_placement(report_ctx *ctx)
{
    if (report_add_heading(ctx, 2, "placement", "Placement") != CB_REPORT_OK) {
        return CB_REPORT_ERROR;
    }
    place_data d = {0};
    d.run_id = place_latest_run(ctx);
    if (d.run_id <= 0) {
        return report_add_text(ctx,
                               "No placement figures in this database: run `cachebed bench "
                               "placement -o %s` to add them.",
                               ctx->db_path);
    }
    int rc = place_read_info(ctx, &d);
    rc = rc != CB_REPORT_OK ? rc : place_read_rows(ctx, &d);
    rc = rc != CB_REPORT_OK ? rc : report_add_text(ctx, "From %s.", d.info);
    int64_t load_nodes = rc == CB_REPORT_OK ? place_load_nodes(ctx, &d) : 0;
    if (rc == CB_REPORT_OK && load_nodes > 0) {
        rc = place_load_plot(ctx, &d, load_nodes);
    } else if (rc == CB_REPORT_OK) {
        rc = report_add_text(ctx, "No keys-per-node rows (placement_load) in this run: no plot.");
    }
    rc = rc != CB_REPORT_OK ? rc : place_moved_plot(ctx, &d);
    rc = rc != CB_REPORT_OK ? rc : place_table(ctx, &d);
    place_free(&d);
    return rc;
}
