/*
 * cb_report.h: `cachebed report` — a directory of tables and plots made from a results
 * database (DESIGN.md "Results database"; what each plot shows is docs/report.md).
 *
 * cb_report_generate() reads the runs, their summaries, requests and events (read-only), and
 * writes into the output directory:
 *   - index.html: one self-contained page (inline CSS, no network) showing every plot's SVG
 *     and linking its PNG, gnuplot script and data, with the tables;
 *   - report.md: the same tables in Markdown, with links to the plots;
 *   - for each plot NAME: NAME.dat (the data, columns named in its header), NAME.gp (the
 *     gnuplot script; `gnuplot NAME.gp` in the directory rewrites NAME.svg and NAME.png).
 * Plots are rendered by running the gnuplot program (fork and exec, no shell) on each script.
 *
 * Runs that differ only by their seed form a group; groups are compared with 95% confidence
 * intervals across seeds (Student's t). Runs of a scenario in mode 'sim' or 'memnet' are
 * compared with its runs in mode 'real' (quantile-quantile plot, relative errors, the
 * two-sample Kolmogorov-Smirnov statistic D).
 *
 * Not thread-safe (one report at a time per process; it forks gnuplot).
 */
#ifndef CB_REPORT_H
#define CB_REPORT_H

#include <stddef.h>
#include <stdint.h>

enum {
    CB_REPORT_OK = 0,
    CB_REPORT_ERROR = -1,
};

typedef struct cb_report_options {
    const char *db_path;    /* required: an existing results database, opened read-only */
    const char *out_dir;    /* required: created if absent (with its parents); files in it
                               with the report's names are overwritten, others are kept */
    const int64_t *run_ids; /* the runs to report, in any order; NULL: every run */
    size_t run_id_count;
    const char *gnuplot; /* the gnuplot program, looked up on PATH; NULL: "gnuplot" */
} cb_report_options;

/* What a report holds, for the caller to print. */
typedef struct cb_report_result {
    size_t runs;           /* runs reported */
    size_t groups;         /* groups of runs that differ only by seed */
    size_t plots;          /* plots written (.gp and .dat) */
    size_t plots_rendered; /* of those, rendered by gnuplot to SVG and PNG */
    size_t sim_real_pairs; /* model-vs-real comparisons */
} cb_report_result;

/*
 * Write the report described by `opt`. On success, `*res` (when not NULL) says what it holds.
 *
 * Errors (CB_REPORT_ERROR, a message in errbuf): the database cannot be opened or is not a
 * results database; a requested run id does not exist; there are no runs; the directory or
 * a file cannot be created or written; out of memory; gnuplot cannot be run, fails or writes
 * no image for some plot (every other file is still written, and the message names the
 * failing script and quotes gnuplot's error output; `res->plots_rendered` counts the good
 * ones).
 */
int cb_report_generate(const cb_report_options *opt, cb_report_result *res, char *errbuf,
                       size_t errcap);

/* ---- the statistics the report uses, exposed for tests --------------------------------- */

/* Mean of a sample with a two-sided confidence interval from Student's t distribution. */
typedef struct cb_report_ci {
    size_t n;          /* sample size (finite values only) */
    double mean;       /* NaN when n = 0 */
    double sd;         /* sample standard deviation (n - 1 in the denominator); NaN if n < 2 */
    double half_width; /* t(1 - (1 - level)/2, n - 1) * sd / sqrt(n); NaN when n < 2 */
} cb_report_ci;

/*
 * The mean of the finite values among x[0..n-1] and its `level` (e.g. 0.95) confidence
 * interval mean ± half_width. NaN and infinite values are skipped (a metric a run lacks).
 */
cb_report_ci cb_report_mean_ci(const double *x, size_t n, double level);

/*
 * The two-sample Kolmogorov-Smirnov statistic D = sup_x |F_a(x) - F_b(x)| of two samples
 * sorted ascending (F: empirical distribution functions, right-continuous; ties handled).
 * Returns NaN when either sample is empty. O(na + nb).
 */
double cb_report_ks_statistic(const double *a, size_t na, const double *b, size_t nb);

/*
 * The time-series bucket width for a run lasting `duration_ns`: duration / 50 rounded down
 * to 1, 2 or 5 times a power of ten, at least 100 µs and at most 1 s.
 */
uint64_t cb_report_bucket_width_ns(uint64_t duration_ns);

#endif
