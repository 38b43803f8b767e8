/*
 * cli_compare.c: `cachebed compare SCENARIO --vary S.K=V1,V2 ... --seeds N [--jobs J]` — run
 * the Cartesian product of the varied values times N seeds, and print one row per
 * combination with the mean and 95% confidence interval of each metric across seeds.
 *
 * SimGrid runs one simulation per process, so every run is a child process: this binary
 * itself, exec'd as `cachebed run SCENARIO --quiet -o JOB.db --seed S --set ...`, at most J
 * at a time, by the shared job runner (cli_jobs.c, as `cachebed check`). Each job writes its own
 * temporary database (no lock contention, nothing half written if a job dies); when all are done
 * the parent merges them into the target database in job order (analysis/cb_merge.h), so run ids
 * follow the combination and seed order whatever order the jobs finished in. Seeds are the
 * scenario's seed + 0, 1, ..., N - 1.
 */
#include "cb_cli.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cb_err.h"
#include "cb_merge.h"
#include "cb_results.h"
#include "cb_scenario.h"

#define CMP_VARY_MAX   8u
#define CMP_VALUES_MAX 64u
#define CMP_SETS_MAX   32u
#define CMP_SEEDS_MAX  1000u
#define CMP_JOBS_MAX   100000u
#define CMP_SET_BYTES  200u /* "section.key=value", like a scenario line */
#define CMP_PATH_BYTES 4096u
#define CMP_METRIC_NUM 6u
#define CMP_CELL_BYTES 48u
#define CMP_SEED_BYTES 24u /* a uint64_t in decimal and its NUL */
/* The fixed words of a job's argv: exe, "run", scenario, "--quiet", "-o", db, "--seed", seed. */
#define CMP_ARGV_HEAD 8u

const char cb_cli_compare_help[] =
    "usage: cachebed compare SCENARIO --vary SECTION.KEY=V1,V2[,...] [--vary ...]\n"
    "                        [--seeds N] [--jobs J] [-o RESULTS.db] [--set S.K=V ...] [--quiet]\n"
    "\n"
    "Runs SCENARIO for every combination of the varied values (the Cartesian product of the\n"
    "--vary options) and N seeds each (the scenario's seed + 0 .. N-1), as `cachebed run`\n"
    "child processes, J at a time. Each job writes its own temporary database; they are\n"
    "merged into RESULTS.db in combination and seed order. Then prints one row per\n"
    "combination: mean ± half-width of the 95% confidence interval across seeds (Student's\n"
    "t) of throughput, p50 and p99 latency, hit ratio, timeout rate and bytes per request;\n"
    "* marks the best value of each column. Each run's varied_params holds its --set values\n"
    "(not the seed), so SQL can group runs the same way.\n"
    "\n"
    "  --vary S.K=V1,V2  a key of the scenario and its values (repeatable, at most 8)\n"
    "  --seeds N         seeds per combination (default 3)\n"
    "  --jobs J          runs at a time (default: the number of CPUs)\n"
    "  -o PATH           results database (default results.db; runs are appended)\n"
    "  --set S.K=V       a fixed override for every run (repeatable)\n"
    "  --quiet           no progress lines\n"
    "\n"
    "Across machines, run one `cachebed run ... -o job-N.db` per job (a Slurm job array,\n"
    "GNU parallel) and join them with `cachebed merge` (docs/compare.md).\n"
    "\n"
    "Exit status: 0 ok, 1 invalid scenario or a failed run, 2 bad usage.\n";

typedef struct cmp_vary {
    char key[CMP_SET_BYTES / 2];
    char values[CMP_VALUES_MAX][CMP_SET_BYTES / 2];
    char sets[CMP_VALUES_MAX][CMP_SET_BYTES]; /* "key=value" for each value, as --set takes */
    uint32_t count;
} cmp_vary;

typedef struct cmp_job {
    uint32_t combo;
    uint64_t seed;
    int64_t run_id; /* in the target database; 0 if not merged */
} cmp_job;

typedef struct cmp {
    const char *scenario;
    const char *db_path;
    cmp_vary vary[CMP_VARY_MAX];
    uint32_t vary_count;
    const char *sets[CMP_SETS_MAX];
    uint32_t set_count;
    uint32_t seeds;
    uint32_t jobs_max;
    int quiet;
    uint32_t combos;
    cmp_job *jobs;
    cb_cli_job *runs; /* the runner's view of jobs[i]: argv, log, exit status */
    uint32_t job_count;
    const char **argvs; /* job_count argv arrays of argv_each words */
    uint32_t argv_each;
    char *texts; /* per job: db path, log path (path_bytes each), seed */
    size_t path_bytes;
    char tmpdir[CMP_PATH_BYTES];
    char exe[CMP_PATH_BYTES];
} cmp;

static volatile sig_atomic_t cmp_stop;

static void cmp_on_signal(int sig)
{
    (void)sig;
    cmp_stop = 1;
}

static double cmp_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- arguments ------------------------------------------------------------------------ */

__attribute__((format(printf, 1, 2))) static int cmp_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cachebed compare: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (try 'cachebed compare --help')\n", stderr);
    va_end(ap);
    return CB_CLI_EXIT_USAGE;
}

/* "section.key=v1,v2,...": each value non-empty, the key not the seed. */
static int cmp_parse_vary(cmp *c, const char *text)
{
    const char *eq = strchr(text, '=');
    if (c->vary_count == CMP_VARY_MAX) {
        return cmp_usage("at most 8 --vary options");
    }
    if (eq == NULL || eq == text || memchr(text, '.', (size_t)(eq - text)) == NULL ||
        (size_t)(eq - text) >= CMP_SET_BYTES / 2) {
        return cmp_usage("--vary '%s': expected SECTION.KEY=V1,V2,...", text);
    }
    cmp_vary *v = &c->vary[c->vary_count++];
    memcpy(v->key, text, (size_t)(eq - text));
    if (strcmp(v->key, "scenario.seed") == 0) {
        return cmp_usage("--vary %s: seeds come from --seeds", v->key);
    }
    for (const char *p = eq + 1;; p++) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= CMP_SET_BYTES / 2 || v->count == CMP_VALUES_MAX) {
            return cmp_usage("--vary '%s': values must be non-empty, short, at most 64", text);
        }
        /* "key=value": both under CMP_SET_BYTES / 2, so it fits with its NUL. */
        char *set = v->sets[v->count];
        memcpy(set, text, (size_t)(eq - text) + 1);
        memcpy(set + (eq - text) + 1, p, len);
        set[(size_t)(eq - text) + 1 + len] = '\0';
        memcpy(v->values[v->count++], p, len);
        p += len;
        if (*p == '\0') {
            return CB_CLI_EXIT_OK;
        }
    }
}

static int cmp_parse_count(const char *opt, const char *text, uint32_t max, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v == 0 || v > max) {
        fprintf(stderr, "cachebed compare: %s '%s': expected a whole number 1..%u\n", opt, text,
                max);
        return CB_CLI_EXIT_USAGE;
    }
    *out = (uint32_t)v;
    return CB_CLI_EXIT_OK;
}

static int cmp_parse_option(cmp *c, const char *opt, const char *v)
{
    if (strcmp(opt, "--vary") == 0) {
        return cmp_parse_vary(c, v);
    }
    if (strcmp(opt, "--seeds") == 0) {
        return cmp_parse_count(opt, v, CMP_SEEDS_MAX, &c->seeds);
    }
    if (strcmp(opt, "--jobs") == 0) {
        return cmp_parse_count(opt, v, 1024, &c->jobs_max);
    }
    if (strcmp(opt, "-o") == 0) {
        c->db_path = v;
        return CB_CLI_EXIT_OK;
    }
    if (c->set_count == CMP_SETS_MAX) {
        return cmp_usage("at most 32 --set options");
    }
    c->sets[c->set_count++] = v;
    return CB_CLI_EXIT_OK;
}

static int cmp_parse(cmp *c, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        int rc = CB_CLI_EXIT_OK;
        if (strcmp(arg, "--vary") == 0 || strcmp(arg, "--seeds") == 0 ||
            strcmp(arg, "--jobs") == 0 || strcmp(arg, "-o") == 0 || strcmp(arg, "--set") == 0) {
            if (i + 1 >= argc) {
                return cmp_usage("option '%s' needs a value", arg);
            }
            rc = cmp_parse_option(c, arg, argv[++i]);
        } else if (strcmp(arg, "--quiet") == 0) {
            c->quiet = 1;
        } else if (arg[0] == '-') {
            return cmp_usage("unknown option '%s'", arg);
        } else if (c->scenario == NULL) {
            c->scenario = arg;
        } else {
            return cmp_usage("one scenario at a time ('%s' is extra)", arg);
        }
        if (rc != CB_CLI_EXIT_OK) {
            return rc;
        }
    }
    if (c->scenario == NULL) {
        return cmp_usage("no scenario given");
    }
    if (c->vary_count == 0) {
        return cmp_usage("nothing to compare: give --vary SECTION.KEY=V1,V2");
    }
    return CB_CLI_EXIT_OK;
}

/* ---- combinations --------------------------------------------------------------------- */

/* Index of vary `v`'s value in combination `combo` (the last --vary changes fastest). */
static uint32_t cmp_value_index(const cmp *c, uint32_t combo, uint32_t v)
{
    for (uint32_t u = c->vary_count; u-- > v + 1;) {
        combo /= c->vary[u].count;
    }
    return combo % c->vary[v].count;
}

/* The --set strings of a combination: the fixed ones, then the varied ones (views into c). */
static uint32_t cmp_combo_sets(const cmp *c, uint32_t combo, const char **out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->set_count; i++) {
        out[n++] = c->sets[i];
    }
    for (uint32_t v = 0; v < c->vary_count; v++) {
        out[n++] = c->vary[v].sets[cmp_value_index(c, combo, v)];
    }
    return n;
}

/* Load every combination's plan (all problems reported), and give each job its seed. */
static int cmp_plan_jobs(cmp *c)
{
    static cb_diag diag; /* about 20 KiB */
    const char *sets[CMP_SETS_MAX + CMP_VARY_MAX];
    int status = CB_CLI_EXIT_OK;
    for (uint32_t k = 0; k < c->combos; k++) {
        cb_plan plan;
        uint32_t n = cmp_combo_sets(c, k, sets);
        int rc = cb_scenario_load_with(c->scenario, sets, n, &plan, &diag);
        if (rc != CB_ERR_OK) {
            cb_diag_print(&diag, stderr);
            fprintf(stderr, "cachebed compare: %s: combination %u cannot run\n", c->scenario,
                    k + 1);
            status = CB_CLI_EXIT_FAILED;
            continue;
        }
        for (uint32_t s = 0; s < c->seeds; s++) {
            cmp_job *j = &c->jobs[k * c->seeds + s];
            j->combo = k;
            j->seed = plan.scenario.seed + s;
        }
        cb_plan_free(&plan);
    }
    return status;
}

/* ---- jobs ----------------------------------------------------------------------------- */

/* The path of job idx's file with extension `ext`. tmpdir comes from mkdtemp under /tmp, so
 * it is far shorter than the buffers; a cut path would name another file, so it aborts. */
static void cmp_job_path(const cmp *c, uint32_t idx, const char *ext, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/job-%u%s", c->tmpdir, idx, ext);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "cachebed compare: job path too long under %s\n", c->tmpdir);
        abort();
    }
}

/* Job idx's argv (`cachebed run` with its database, seed and --set values) and log, in the
 * storage cmp_alloc_argvs made; the runner execs it as is. */
static void cmp_job_argv(cmp *c, uint32_t idx)
{
    char *db = c->texts + (size_t)idx * (2 * c->path_bytes + CMP_SEED_BYTES);
    char *log = db + c->path_bytes, *seed = log + c->path_bytes;
    const char **argv = c->argvs + (size_t)idx * c->argv_each;
    const char *sets[CMP_SETS_MAX + CMP_VARY_MAX];
    const cmp_job *j = &c->jobs[idx];
    cmp_job_path(c, idx, ".db", db, c->path_bytes);
    cmp_job_path(c, idx, ".log", log, c->path_bytes);
    snprintf(seed, CMP_SEED_BYTES, "%llu", (unsigned long long)j->seed);
    uint32_t n = cmp_combo_sets(c, j->combo, sets), argc = 0;
    const char *head[CMP_ARGV_HEAD] = {c->exe, "run", c->scenario, "--quiet",
                                       "-o",   db,    "--seed",    seed};
    for (size_t i = 0; i < CMP_ARGV_HEAD; i++) {
        argv[argc++] = head[i];
    }
    for (uint32_t i = 0; i < n; i++) {
        argv[argc++] = "--set";
        argv[argc++] = sets[i];
    }
    argv[argc] = NULL;
    assert(argc + 1 == c->argv_each);
    c->runs[idx] = (cb_cli_job){.argv = argv, .log_path = log, .status = -1};
}

/* Size and fill every job's argv once tmpdir is made (it is in every job's paths). */
static int cmp_alloc_argvs(cmp *c)
{
    c->argv_each = CMP_ARGV_HEAD + 2 * (c->set_count + c->vary_count) + 1;
    c->path_bytes = strlen(c->tmpdir) + sizeof "/job-4294967295.log";
    c->argvs = calloc((size_t)c->job_count * c->argv_each, sizeof c->argvs[0]);
    c->texts = malloc((size_t)c->job_count * (2 * c->path_bytes + CMP_SEED_BYTES));
    c->runs = calloc(c->job_count, sizeof c->runs[0]);
    if (c->argvs == NULL || c->texts == NULL || c->runs == NULL) {
        fprintf(stderr, "cachebed compare: out of memory for %u jobs\n", c->job_count);
        return -1;
    }
    for (uint32_t i = 0; i < c->job_count; i++) {
        cmp_job_argv(c, i);
    }
    return 0;
}

/* The combination's varied values as "key=value key=value". */
static void cmp_combo_label(const cmp *c, uint32_t combo, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (uint32_t v = 0; v < c->vary_count && used < cap; v++) {
        int n = snprintf(out + used, cap - used, "%s%s=%s", v > 0 ? " " : "", c->vary[v].key,
                         c->vary[v].values[cmp_value_index(c, combo, v)]);
        used += n > 0 ? (size_t)n : 0;
    }
}

/* Print the end of a failed job's log (it says why). */
static void cmp_show_log(const cmp *c, uint32_t idx)
{
    char path[CMP_PATH_BYTES], text[2048];
    cmp_job_path(c, idx, ".log", path, sizeof path);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    fprintf(stderr, "%s%s", text, n > 0 && text[n - 1] != '\n' ? "\n" : "");
}

/* The runner's `ended` callback: a progress line, and the log of a failed job. */
static void cmp_job_ended(void *user, uint32_t idx, uint32_t done)
{
    const cmp *c = user;
    const cmp_job *j = &c->jobs[idx];
    const cb_cli_job *r = &c->runs[idx];
    char label[512];
    if (c->quiet && r->status == 0) {
        return;
    }
    cmp_combo_label(c, j->combo, label, sizeof label);
    fprintf(stderr, "[%u/%u] %s seed %llu: %s (%.1f s)\n", done, c->job_count, label,
            (unsigned long long)j->seed, r->status == 0 ? "ok" : "FAILED",
            cmp_wall() - (double)r->started_ns / 1e9);
    if (r->status != 0) {
        cmp_show_log(c, idx);
    }
}

/* Merge every successful job's database, in job order; remove the temporary files. */
static int cmp_merge_jobs(cmp *c)
{
    static const char *const exts[] = {".db", ".db-wal", ".db-shm", ".log"};
    char path[CMP_PATH_BYTES], err[512];
    int status = 0;
    for (uint32_t i = 0; i < c->job_count; i++) {
        cmp_job *j = &c->jobs[i];
        cb_merge_stats s;
        cmp_job_path(c, i, ".db", path, sizeof path);
        int ok = c->runs[i].status == 0;
        if (ok && cb_merge_file(c->db_path, path, &s, err, sizeof err) != 0) {
            fprintf(stderr, "cachebed compare: %s\n", err);
            status = -1;
        } else if (ok && s.runs == 1) {
            j->run_id = s.id_offset + 1; /* a job's database holds its one run, id 1 */
        }
        for (size_t e = 0; e < sizeof exts / sizeof exts[0]; e++) {
            cmp_job_path(c, i, exts[e], path, sizeof path);
            (void)unlink(path); /* absent files are fine */
        }
    }
    (void)rmdir(c->tmpdir);
    return status;
}

/* ---- the comparison table ------------------------------------------------------------- */

typedef struct cmp_metric {
    const char *title;
    const char *column;
    double scale;
    int higher_better;
    int decimals;
} cmp_metric;

static const cmp_metric cmp_metrics[CMP_METRIC_NUM] = {
    {"req/s", "throughput_rps", 1.0, 1, 0},
    {"p50 us", "p50_us", 1.0, 0, 1},
    {"p99 us", "p99_us", 1.0, 0, 1},
    {"hit ratio", "hit_ratio", 1.0, 1, 3},
    {"timeout %", "timeout_rate", 100.0, 0, 2},
    {"bytes/req", "bytes_per_request", 1.0, 0, 1},
};

typedef struct cmp_row {
    uint32_t runs;
    double mean[CMP_METRIC_NUM];
    double half[CMP_METRIC_NUM];
    char cell[CMP_METRIC_NUM][CMP_CELL_BYTES];
} cmp_row;

/* Read one run's metrics (NaN where NULL). */
static int cmp_read_run(sqlite3 *db, int64_t run_id, double *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT throughput_rps, p50_us, p99_us, hit_ratio, timeout_rate,"
                                " bytes_per_request FROM run_summary WHERE run_id = ?1",
                                -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_bind_int64(st, 1, run_id) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        for (int m = 0; m < (int)CMP_METRIC_NUM; m++) {
            out[m] = sqlite3_column_type(st, m) == SQLITE_NULL
                         ? NAN
                         : sqlite3_column_double(st, m) * cmp_metrics[m].scale;
        }
        rc = SQLITE_OK;
    } else {
        rc = SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Mean and CI of each metric over the combination's merged runs. */
static void cmp_row_stats(const cmp *c, sqlite3 *db, uint32_t combo, cmp_row *row)
{
    double x[CMP_METRIC_NUM][CMP_SEEDS_MAX];
    size_t n[CMP_METRIC_NUM] = {0};
    double v[CMP_METRIC_NUM];
    memset(row, 0, sizeof *row);
    for (uint32_t s = 0; s < c->seeds; s++) {
        const cmp_job *j = &c->jobs[combo * c->seeds + s];
        if (j->run_id == 0 || cmp_read_run(db, j->run_id, v) != SQLITE_OK) {
            continue;
        }
        row->runs++;
        for (uint32_t m = 0; m < CMP_METRIC_NUM; m++) {
            if (!isnan(v[m])) {
                x[m][n[m]++] = v[m];
            }
        }
    }
    for (uint32_t m = 0; m < CMP_METRIC_NUM; m++) {
        cb_merge_mean_ci95(x[m], n[m], &row->mean[m], &row->half[m]);
    }
}

/* A mean as shown (rounded to the column's decimals), signed so that larger is better. */
static double cmp_rank_value(const cmp_metric *mt, double mean)
{
    double shown = round(mean * pow(10.0, mt->decimals));
    return mt->higher_better ? shown : -shown;
}

/* Format the cells; mark the best mean of each column (all of them when tied as shown),
 * unless every row shows the same. */
static void cmp_format_cells(cmp_row *rows, uint32_t count)
{
    for (uint32_t m = 0; m < CMP_METRIC_NUM; m++) {
        const cmp_metric *mt = &cmp_metrics[m];
        double best = NAN, worst = NAN;
        for (uint32_t r = 0; r < count; r++) {
            double v = cmp_rank_value(mt, rows[r].mean[m]);
            best = isnan(best) || v > best ? v : best;
            worst = isnan(worst) || v < worst ? v : worst;
        }
        for (uint32_t r = 0; r < count; r++) {
            double v = cmp_rank_value(mt, rows[r].mean[m]);
            const char *mark = count > 1 && best != worst && v == best ? " *" : "";
            char *cell = rows[r].cell[m];
            if (isnan(rows[r].mean[m])) {
                snprintf(cell, CMP_CELL_BYTES, "-");
            } else if (isnan(rows[r].half[m])) {
                snprintf(cell, CMP_CELL_BYTES, "%.*f%s", mt->decimals, rows[r].mean[m], mark);
            } else {
                snprintf(cell, CMP_CELL_BYTES, "%.*f ± %.*f%s", mt->decimals, rows[r].mean[m],
                         mt->decimals, rows[r].half[m], mark);
            }
        }
    }
}

/* Display width of a UTF-8 string (the ± sign is two bytes, one column). */
static int cmp_width(const char *s)
{
    int w = 0;
    for (; *s != '\0'; s++) {
        w += ((unsigned char)*s & 0xc0) != 0x80;
    }
    return w;
}

static void cmp_print_cell(const char *s, int width, int last)
{
    printf("%s%*s%s", s, last ? 0 : width - cmp_width(s), "", last ? "\n" : " | ");
}

static void cmp_print_rule(const int *widths, uint32_t cols)
{
    for (uint32_t i = 0; i < cols; i++) {
        for (int k = 0; k < widths[i]; k++) {
            putchar('-');
        }
        fputs(i + 1 < cols ? "-+-" : "\n", stdout);
    }
}

/* Column widths: the varied keys, "runs", then the metrics. */
static uint32_t cmp_widths(const cmp *c, const cmp_row *rows, int *widths)
{
    uint32_t cols = 0;
    for (uint32_t v = 0; v < c->vary_count; v++, cols++) {
        widths[cols] = cmp_width(c->vary[v].key);
        for (uint32_t k = 0; k < c->combos; k++) {
            int w = cmp_width(c->vary[v].values[cmp_value_index(c, k, v)]);
            widths[cols] = w > widths[cols] ? w : widths[cols];
        }
    }
    widths[cols++] = 4;
    for (uint32_t m = 0; m < CMP_METRIC_NUM; m++, cols++) {
        widths[cols] = cmp_width(cmp_metrics[m].title);
        for (uint32_t k = 0; k < c->combos; k++) {
            int w = cmp_width(rows[k].cell[m]);
            widths[cols] = w > widths[cols] ? w : widths[cols];
        }
    }
    return cols;
}

static void cmp_print_table(const cmp *c, const cmp_row *rows)
{
    int widths[CMP_VARY_MAX + 1 + CMP_METRIC_NUM];
    char runs[16];
    uint32_t cols = cmp_widths(c, rows, widths), col = 0;
    for (uint32_t v = 0; v < c->vary_count; v++) {
        cmp_print_cell(c->vary[v].key, widths[col++], 0);
    }
    cmp_print_cell("runs", widths[col++], 0);
    for (uint32_t m = 0; m < CMP_METRIC_NUM; m++, col++) {
        cmp_print_cell(cmp_metrics[m].title, widths[col], col + 1 == cols);
    }
    cmp_print_rule(widths, cols);
    for (uint32_t k = 0; k < c->combos; k++) {
        col = 0;
        for (uint32_t v = 0; v < c->vary_count; v++) {
            cmp_print_cell(c->vary[v].values[cmp_value_index(c, k, v)], widths[col++], 0);
        }
        snprintf(runs, sizeof runs, "%u", rows[k].runs);
        cmp_print_cell(runs, widths[col++], 0);
        for (uint32_t m = 0; m < CMP_METRIC_NUM; m++, col++) {
            cmp_print_cell(rows[k].cell[m], widths[col], col + 1 == cols);
        }
    }
}

static int cmp_report(const cmp *c, double wall_s)
{
    sqlite3 *db = NULL;
    cmp_row *rows = calloc(c->combos, sizeof rows[0]);
    if (rows == NULL || sqlite3_open_v2(c->db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "cachebed compare: %s: cannot read the results\n", c->db_path);
        sqlite3_close(db);
        free(rows);
        return -1;
    }
    int64_t first = 0, last = 0;
    for (uint32_t i = 0; i < c->job_count; i++) {
        first = first == 0 ? c->jobs[i].run_id : first;
        last = c->jobs[i].run_id != 0 ? c->jobs[i].run_id : last;
    }
    for (uint32_t k = 0; k < c->combos; k++) {
        cmp_row_stats(c, db, k, &rows[k]);
    }
    sqlite3_close(db);
    cmp_format_cells(rows, c->combos);
    printf("cachebed compare: %s: %u combination(s) x %u seed(s) = %u runs, %u at a time, "
           "%.1f s wall; results in %s, runs %lld-%lld\n",
           c->scenario, c->combos, c->seeds, c->job_count, c->jobs_max, wall_s, c->db_path,
           (long long)first, (long long)last);
    cmp_print_table(c, rows);
    printf("mean ± half-width of the 95%% confidence interval across seeds (Student's t, n-1 "
           "degrees of freedom); * best in its column\n");
    free(rows);
    return 0;
}

/* ---- the verb ------------------------------------------------------------------------- */

static int cmp_prepare(cmp *c)
{
    uint64_t combos = 1;
    for (uint32_t v = 0; v < c->vary_count; v++) {
        combos *= c->vary[v].count;
    }
    if (combos * c->seeds > CMP_JOBS_MAX) {
        fprintf(stderr, "cachebed compare: %llu runs: at most %u\n",
                (unsigned long long)(combos * c->seeds), CMP_JOBS_MAX);
        return CB_CLI_EXIT_USAGE;
    }
    c->combos = (uint32_t)combos;
    c->job_count = c->combos * c->seeds;
    c->jobs = calloc(c->job_count, sizeof c->jobs[0]);
    ssize_t n = readlink("/proc/self/exe", c->exe, sizeof c->exe - 1);
    if (c->jobs == NULL || n <= 0) {
        fprintf(stderr, "cachebed compare: cannot find this program (/proc/self/exe)\n");
        return CB_CLI_EXIT_FAILED;
    }
    c->exe[n] = '\0';
    return cmp_plan_jobs(c);
}

static void cmp_free(cmp *c)
{
    free(c->runs);
    free(c->texts);
    free(c->argvs);
    free(c->jobs);
}

int cb_cli_compare(const cb_cli_verb *verb, int argc, char **argv)
{
    (void)verb;
    static cmp c; /* about 0.7 MiB of varied values: keep it off the stack */
    memset(&c, 0, sizeof c);
    c.db_path = "results.db";
    c.seeds = 3;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    c.jobs_max = cpus > 0 ? (uint32_t)cpus : 1;
    int status = cmp_parse(&c, argc, argv);
    if (status == CB_CLI_EXIT_OK) {
        status = cmp_prepare(&c);
    }
    snprintf(c.tmpdir, sizeof c.tmpdir, "%s.jobs-XXXXXX", c.db_path);
    if (status == CB_CLI_EXIT_OK && mkdtemp(c.tmpdir) == NULL) {
        fprintf(stderr, "cachebed compare: %s: %s\n", c.tmpdir, strerror(errno));
        status = CB_CLI_EXIT_FAILED;
    }
    if (status == CB_CLI_EXIT_OK && cmp_alloc_argvs(&c) != 0) {
        (void)rmdir(c.tmpdir); /* empty: nothing ran yet */
        status = CB_CLI_EXIT_FAILED;
    }
    if (status != CB_CLI_EXIT_OK) {
        cmp_free(&c);
        return status;
    }
    signal(SIGINT, cmp_on_signal);
    signal(SIGTERM, cmp_on_signal);
    double start = cmp_wall();
    int rc = cb_cli_jobs_run(c.runs, c.job_count, c.jobs_max, &cmp_stop, cmp_job_ended, &c);
    int failed = rc != 0 || cmp_stop;
    failed |= cmp_merge_jobs(&c) != 0;
    for (uint32_t i = 0; i < c.job_count; i++) {
        failed |= c.jobs[i].run_id == 0;
    }
    if (cmp_report(&c, cmp_wall() - start) != 0) {
        failed = 1;
    }
    cmp_free(&c);
    return failed ? CB_CLI_EXIT_FAILED : CB_CLI_EXIT_OK;
}
