/*
 * cb_merge.h: merge results databases, and the statistics `cachebed compare` reports.
 *
 * A sweep too big for one machine runs as many jobs (a Slurm job array, GNU parallel), each
 * writing its own results database; `cachebed merge` then appends every job's runs to one
 * database (DESIGN.md "Beyond one machine"). `cachebed compare --jobs` does the same on one
 * machine: one temporary database per job, merged by the parent in job order, so run ids do
 * not depend on which job finished first.
 */
#ifndef CB_MERGE_H
#define CB_MERGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cb_merge_stats {
    int64_t id_offset; /* a run `id` of the input became `id + id_offset` */
    uint64_t runs;
    uint64_t requests;
    uint64_t events;
} cb_merge_stats;

/*
 * Append every run of the results database at in_path, with its requests, events and
 * run_summary row, to the one at out_path (created, or brought to this build's schema, by
 * cb_results_open). Runs keep their order and their gaps: each id becomes id + the largest
 * run id out_path had (0 when empty); event rows get new ids after out's. Placement bench
 * runs (schema version 2: placement_runs, placement_results, placement_load) are shifted
 * the same way by the largest placement_runs id. Everything is one transaction: on error
 * out_path is left as it was. in_path is only read, and may be of any schema version from 1
 * (no placement tables) to this build's. Errors (CB_RESULTS_ERROR, message in errbuf):
 * in_path missing, not a results database, of a newer schema version, the same file as
 * out_path, or any SQLite error.
 */
int cb_merge_file(const char *out_path, const char *in_path, cb_merge_stats *stats, char *errbuf,
                  size_t errcap);

/*
 * Mean of x[0..n) and the half-width of its 95% confidence interval, Student's t with n - 1
 * degrees of freedom (GSL's gsl_cdf_tdist_Pinv(0.975, n - 1)) times the sample standard
 * deviation over sqrt(n). n = 0: both NaN; n = 1: the half-width is NaN.
 */
void cb_merge_mean_ci95(const double *x, size_t n, double *mean, double *half_width);

#endif
