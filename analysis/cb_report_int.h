/*
 * cb_report_int.h: what the files of the report module share (cb_report.h is the contract).
 *
 *   cb_report.c        cb_report_generate(): load, group, build each section, write pages
 *   cb_report_data.c   reading runs, parameters, latencies and events from the database
 *   cb_report_stats.c  confidence intervals, Kolmogorov-Smirnov, quantiles, buckets
 *   cb_report_plot.c   plot files (.gp/.dat) and running gnuplot on them
 *   cb_report_figs.c   the plots themselves: CDFs, time series, comparison, load, QQ
 *   cb_report_place.c  the placement section (bench placement figures, schema version 2)
 *   cb_report_doc.c    the document model (headings, text, plots, tables) as HTML and Markdown
 */
#ifndef CB_REPORT_INT_H
#define CB_REPORT_INT_H

#include "cb_report.h"

#include <sqlite3.h>
#include <stdio.h>

#if defined(__GNUC__)
#define REPORT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define REPORT_PRINTF(f, a)
#endif

/* ---- growable strings ---------------------------------------------------------------------- */

typedef struct report_str {
    char *data; /* NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
    int nomem; /* an append failed: the content is incomplete */
} report_str;

void report_str_add(report_str *s, const char *p, size_t n);
void report_str_printf(report_str *s, const char *fmt, ...) REPORT_PRINTF(2, 3);
/* The content as a string ("" when empty); valid until the next append. */
const char *report_str_get(const report_str *s);
/* Hand the content over as a malloc'd string (NULL when out of memory); s becomes empty. */
char *report_str_take(report_str *s);
void report_str_free(report_str *s);
/* A malloc'd copy of printf's output; NULL when out of memory. */
char *report_sprintf(const char *fmt, ...) REPORT_PRINTF(1, 2);

/* ---- metrics compared across groups ------------------------------------------------------- */

typedef enum {
    REPORT_M_THROUGHPUT = 0,
    REPORT_M_P50,
    REPORT_M_P99,
    REPORT_M_P999,
    REPORT_M_HIT,
    REPORT_M_TIMEOUT,
    REPORT_M_ERROR,
    REPORT_METRIC_COUNT
} report_metric;

typedef struct report_metric_info {
    const char *column;   /* run_summary column */
    const char *title;    /* for tables and plot titles */
    const char *axis;     /* y-axis label, with its unit */
    int higher_is_better; /* marks the best group */
} report_metric_info;

extern const report_metric_info report_metrics[REPORT_METRIC_COUNT];

/* ---- runs and groups ---------------------------------------------------------------------- */

typedef struct report_param {
    char *key;
    char *value; /* as text, e.g. "4", "50us", "udp" */
} report_param;

typedef struct report_run {
    int64_t id;
    char *scenario;
    char *mode;
    char *transport; /* "" when NULL */
    char *placement; /* "" when NULL */
    char *status;
    int64_t seed;
    report_param *params; /* varied parameters except seeds, sorted by key */
    size_t param_count;
    int has_summary;
    int64_t requests;
    int64_t completed;
    double metric[REPORT_METRIC_COUNT]; /* NaN when the summary has none */
    size_t group;                       /* index into report_ctx.groups */
} report_run;

typedef struct report_group {
    char *identity; /* scenario, mode, transport, placement, parameters: equal means same group */
    char *match;    /* the identity without the mode: model and real runs pair on it */
    char *label;    /* what sets this group apart from the others, for legends */
    char *mode;     /* borrowed from its first run */
    size_t *runs;   /* indices into report_ctx.runs, ascending id */
    size_t run_count;
    cb_report_ci ci[REPORT_METRIC_COUNT];
    size_t cdf_index; /* its block in latency_cdf.dat; SIZE_MAX: no latencies */
} report_group;

/* ---- the document ------------------------------------------------------------------------- */

typedef enum {
    REPORT_BLOCK_HEADING = 0,
    REPORT_BLOCK_TEXT,
    REPORT_BLOCK_PLOT,
    REPORT_BLOCK_TABLE,
} report_block_kind;

typedef struct report_table {
    size_t cols;
    size_t rows;          /* including the header row 0 */
    char **cells;         /* rows * cols strings, row-major */
    unsigned char *bold;  /* rows * cols flags: the best value of a column */
    unsigned char *align; /* cols flags: 1 = right-aligned (numbers) */
} report_table;

typedef struct report_block {
    report_block_kind kind;
    int level;     /* heading: 2 or 3 */
    char *text;    /* heading text, paragraph, plot title, table caption */
    char *name;    /* plot: file stem; heading: anchor id (may be NULL) */
    char *caption; /* plot: what it shows */
    char *error;   /* plot: why it has no image, or NULL */
    report_table *table;
} report_block;

/* ---- the context ---------------------------------------------------------------------------- */

typedef struct report_ctx {
    sqlite3 *db;
    const char *db_path;
    const char *dir;
    const char *gnuplot;
    report_run *runs; /* ascending id */
    size_t run_count;
    report_group *groups;
    size_t group_count;
    report_block *blocks;
    size_t block_count;
    size_t block_cap;
    cb_report_result res;
    int placement_only_ok; /* no runs is not an error: the file has placement figures */
    int failed;            /* a fatal error is in err: stop */
    char err[1024];        /* the first fatal error */
    char render_err[1024]; /* the first gnuplot failure (not fatal: other plots go on) */
} report_ctx;

/* Record a fatal error (only the first is kept); returns CB_REPORT_ERROR. */
int report_fail(report_ctx *ctx, const char *fmt, ...) REPORT_PRINTF(2, 3);

/* cb_report_data.c */
int report_load_runs(report_ctx *ctx, const int64_t *ids, size_t id_count);
int report_group_runs(report_ctx *ctx);
void report_free_runs(report_ctx *ctx);
/*
 * What sets group g apart: "key=value, ..." over the run fields (scenario, mode, transport,
 * placement; only when with_fields) and parameters that differ between groups, leaving out
 * parameter `exclude` (NULL: none). With nothing to tell it apart, no exclusion and
 * with_fields: "scenario (mode)". Malloc'd; NULL when out of memory.
 */
char *report_group_label(const report_ctx *ctx, const report_group *g, const char *exclude,
                         int with_fields);
/* The value of parameter `key` of run r, or NULL. */
const char *report_param_value(const report_run *r, const char *key);

/* One run's completed requests, as the plots need them. */
typedef struct report_samples {
    double *lat_us; /* latencies (µs) of completed non-timeout requests, ascending */
    size_t lat_count;
    int64_t *complete_ns; /* every request with an outcome, in latency order */
    unsigned char *code;  /* REPORT_CODE_* of each */
    size_t count;
    int64_t start_ns; /* earliest issue_ns among them; 0 when count = 0 */
    int64_t end_ns;   /* latest complete_ns */
} report_samples;

enum {
    REPORT_CODE_OTHER = 0, /* answered: stores, deletes, errors... */
    REPORT_CODE_HIT,       /* a GET answered hit */
    REPORT_CODE_MISS,      /* a GET answered miss */
    REPORT_CODE_TIMEOUT,   /* no answer in time */
};

int report_read_samples(report_ctx *ctx, int64_t run_id, report_samples *out);
void report_samples_free(report_samples *s);
/* The pooled latencies of a group's runs, ascending (malloc'd; *count may be 0). */
int report_read_group_latencies(report_ctx *ctx, const report_group *g, double **out,
                                size_t *count);

typedef struct report_event {
    int64_t time_ns;
    char *node;
    char *kind;
    char *detail;
} report_event;

int report_read_events(report_ctx *ctx, int64_t run_id, report_event **out, size_t *count);
void report_events_free(report_event *ev, size_t count);
/* A fault the scenario injected (crash, partition...) rather than a machine's event. */
int report_event_is_fault(const char *kind);

/* cb_report_stats.c */
/* Quantile f of sorted x (GSL's type 7, as run_summary); NaN when n = 0. */
double report_quantile(const double *x, size_t n, double f);
/* Merge two ascending arrays into out (na + nb). */
void report_merge_sorted(const double *a, size_t na, const double *b, size_t nb, double *out);
/* Parse "4", "2.5", "20k/s", "50us": the number (k, M, G scale it) and the unit after it. */
int report_parse_number(const char *text, double *value, char *unit, size_t unit_cap);

/* cb_report_plot.c */
/* Create dir/name for writing; NULL after report_fail() naming the path. */
FILE *report_fopen(report_ctx *ctx, const char *name);
/* Close f, reporting a write error on dir/name; NULL f is a no-op. */
int report_fclose(report_ctx *ctx, FILE *f, const char *name);
typedef struct report_plot {
    char name[64];
    FILE *gp;
    FILE *dat;
} report_plot;

/*
 * Open NAME.gp and NAME.dat and write the script's preamble (a loop over the svg and png
 * terminals, width x height pixels). The caller writes the data and the script's body.
 */
int report_plot_open(report_ctx *ctx, report_plot *p, const char *name, const char *title,
                     int width, int height);
/* Close the script's loop and both files, run gnuplot, add the plot to the document. */
int report_plot_close(report_ctx *ctx, report_plot *p, const char *title, const char *caption);
/* Write s as a gnuplot single-quoted string (quotes doubled, control characters dropped). */
void report_gp_string(FILE *f, const char *s);
/* Write s as a double-quoted data-file field (double quotes become single quotes). */
void report_dat_string(FILE *f, const char *s);

/* cb_report_figs.c */
int report_section_comparison(report_ctx *ctx);
int report_section_cdf(report_ctx *ctx);
int report_section_load(report_ctx *ctx);
int report_section_timeseries(report_ctx *ctx);
int report_section_sim_real(report_ctx *ctx);

/* cb_report_place.c */
/* Does the database hold placement figures (placement_results rows)? */
int report_has_placement(report_ctx *ctx);
int report_section_placement(report_ctx *ctx);

/* A log axis ("x" or "y") over [lo, hi] with readable tics, also inside one decade. */
void report_log_axis(FILE *gp, const char *axis, double lo, double hi);

/* cb_report_doc.c */
int report_add_heading(report_ctx *ctx, int level, const char *anchor, const char *text);
int report_add_text(report_ctx *ctx, const char *fmt, ...) REPORT_PRINTF(2, 3);
int report_add_plot(report_ctx *ctx, const char *name, const char *title, const char *caption,
                    const char *error);
/* A table of `cols` columns; its header is row 0. Takes ownership of t even on error. */
report_table *report_table_new(size_t cols);
int report_table_add_row(report_table *t, const char *const *cells);
void report_table_free(report_table *t);
int report_add_table(report_ctx *ctx, report_table *t, const char *caption);
int report_write_html(report_ctx *ctx);
int report_write_markdown(report_ctx *ctx);
void report_free_blocks(report_ctx *ctx);

#endif
