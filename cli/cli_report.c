/* cli_report.c: `cachebed report RESULTS.db [--runs ID,...|all] [-o DIR]` (cb_report.h). */
#include "cb_cli.h"
#include "cb_report.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char cb_cli_report_help[] =
    "usage: cachebed report RESULTS.db [--runs ID,ID,...|all] [-o DIR] [--gnuplot PROGRAM]\n"
    "\n"
    "Writes a report of the runs in a results database (opened read-only) into DIR\n"
    "(default: report/, created if absent):\n"
    "  index.html   one page with every table and plot (open it in a browser)\n"
    "  report.md    the same tables in Markdown\n"
    "  NAME.gp      each plot's gnuplot script, NAME.dat its data, NAME.svg and NAME.png\n"
    "               the images; edit NAME.gp and run `gnuplot NAME.gp` in DIR to restyle\n"
    "\n"
    "It holds: a table of the runs; groups of runs that differ only by seed compared with\n"
    "95% confidence intervals; latency CDFs; p99 and throughput against any numeric varied\n"
    "parameter; throughput, hit ratio and timeouts over time with events marked; and, when\n"
    "a scenario has both sim/memnet and real runs, a quantile-quantile plot, relative\n"
    "errors and the Kolmogorov-Smirnov statistic. Definitions: docs/report.md.\n"
    "\n"
    "  --runs LIST      run ids (3,5,7 or ranges 3-7) or 'all' (default: all)\n"
    "  -o, --output DIR the report directory\n"
    "  --gnuplot PROG   the gnuplot program to run (default: gnuplot, from PATH)\n"
    "\n"
    "Exit status: 0 ok, 1 failed (the database, a run id, a file, or gnuplot; the message\n"
    "says which), 2 bad usage.\n";

/* Most run ids one --runs list may name (a range counts each id). */
#define CLI_REPORT_IDS_MAX 100000

typedef struct cli_report_args {
    const char *db_path;
    const char *out_dir;
    const char *gnuplot;
    int64_t *ids; /* NULL: all */
    size_t id_count;
} cli_report_args;

static int cli_report_parse_id(const char *s, char **end, int64_t *out)
{
    errno = 0;
    if (*s < '0' || *s > '9') {
        return -1;
    }
    long long v = strtoll(s, end, 10);
    if (errno != 0 || v <= 0) {
        return -1;
    }
    *out = v;
    return 0;
}

static int cli_report_add_id(cli_report_args *a, int64_t id)
{
    for (size_t i = 0; i < a->id_count; i++) {
        if (a->ids[i] == id) {
            return 0;
        }
    }
    if (a->id_count == CLI_REPORT_IDS_MAX) {
        return -1;
    }
    int64_t *ids = realloc(a->ids, (a->id_count + 1) * sizeof *ids);
    if (ids == NULL) {
        return -1;
    }
    a->ids = ids;
    a->ids[a->id_count++] = id;
    return 0;
}

/* "all", or comma-separated ids and ranges LO-HI. */
static int cli_report_parse_runs(cli_report_args *a, const char *list)
{
    if (strcmp(list, "all") == 0) {
        return 0;
    }
    const char *p = list;
    for (;;) {
        char *end = NULL;
        int64_t lo = 0;
        int64_t hi = 0;
        if (cli_report_parse_id(p, &end, &lo) != 0) {
            return -1;
        }
        hi = lo;
        if (*end == '-' && (cli_report_parse_id(end + 1, &end, &hi) != 0 || hi < lo ||
                            hi - lo >= CLI_REPORT_IDS_MAX)) {
            return -1;
        }
        for (int64_t id = lo; id <= hi; id++) {
            if (cli_report_add_id(a, id) != 0) {
                return -1;
            }
        }
        if (*end == '\0') {
            return 0;
        }
        if (*end != ',') {
            return -1;
        }
        p = end + 1;
    }
}

/* An option's value: the next argument, which must exist. */
static const char *cli_report_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "cachebed report: %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int cli_report_option(cli_report_args *a, int argc, char **argv, int *i)
{
    const char *opt = argv[*i];
    const char *v = cli_report_value(argc, argv, i);
    if (v == NULL) {
        return CB_CLI_EXIT_USAGE;
    }
    if (strcmp(opt, "--runs") == 0) {
        if (cli_report_parse_runs(a, v) != 0) {
            fprintf(stderr,
                    "cachebed report: --runs '%s': give 'all' or run ids such as "
                    "3,5,7 or 3-7\n",
                    v);
            return CB_CLI_EXIT_USAGE;
        }
    } else if (strcmp(opt, "--gnuplot") == 0) {
        a->gnuplot = v;
    } else {
        a->out_dir = v;
    }
    return CB_CLI_EXIT_OK;
}

static int cli_report_parse(int argc, char **argv, cli_report_args *a)
{
    int positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--runs") == 0 || strcmp(s, "-o") == 0 || strcmp(s, "--output") == 0 ||
            strcmp(s, "--gnuplot") == 0) {
            int rc = cli_report_option(a, argc, argv, &i);
            if (rc != CB_CLI_EXIT_OK) {
                return rc;
            }
        } else if (s[0] == '-' && s[1] != '\0') {
            fprintf(stderr, "cachebed report: unknown option '%s'\n", s);
            return CB_CLI_EXIT_USAGE;
        } else if (positional++ == 0) {
            a->db_path = s;
        } else {
            fprintf(stderr, "cachebed report: unexpected argument '%s'\n", s);
            return CB_CLI_EXIT_USAGE;
        }
    }
    if (a->db_path == NULL) {
        fprintf(stderr, "usage: cachebed report RESULTS.db [--runs ID,...|all] [-o DIR]\n");
        return CB_CLI_EXIT_USAGE;
    }
    return CB_CLI_EXIT_OK;
}

static double cli_report_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cb_cli_report(const cb_cli_verb *verb, int argc, char **argv)
{
    (void)verb;
    cli_report_args a = {NULL, "report", NULL, NULL, 0};
    int rc = cli_report_parse(argc, argv, &a);
    if (rc != CB_CLI_EXIT_OK) {
        free(a.ids);
        return rc;
    }
    cb_report_options opt = {a.db_path, a.out_dir, a.ids, a.id_count, a.gnuplot};
    cb_report_result res;
    char err[2048];
    double t0 = cli_report_now_s();
    rc = cb_report_generate(&opt, &res, err, sizeof err);
    free(a.ids);
    if (rc != CB_REPORT_OK) {
        fprintf(stderr, "cachebed report: %s\n", err);
        return CB_CLI_EXIT_FAILED;
    }
    printf("report: %s/index.html (%zu run(s), %zu group(s), %zu plot(s), %zu model-vs-real "
           "pair(s); %.2f s)\n",
           a.out_dir, res.runs, res.groups, res.plots, res.sim_real_pairs, cli_report_now_s() - t0);
    return CB_CLI_EXIT_OK;
}
