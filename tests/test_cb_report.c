/*
 * test_cb_report.c: `cachebed report` on a synthetic results database with known latencies,
 * times, timeouts and events — every file is there and well-formed (scripts name their data,
 * gnuplot rendered each SVG and PNG, the page references every image), and the confidence
 * intervals and Kolmogorov-Smirnov statistic equal values computed here independently.
 */
#include "cb_report.h"
#include "cb_results.h"
#include "cb_test.h"

#include <dirent.h>
#include <math.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEST_PATH_MAX 512

static char test_dir[64];

/* A path in this suite's temporary directory; valid for the next three calls too. */
static const char *test_path(const char *name)
{
    static char paths[4][TEST_PATH_MAX];
    static unsigned next;
    char *path = paths[next++ % 4];
    if (test_dir[0] == '\0') {
        snprintf(test_dir, sizeof test_dir, "/tmp/cb_report_XXXXXX");
        CU_ASSERT_FATAL(mkdtemp(test_dir) != NULL);
    }
    snprintf(path, TEST_PATH_MAX, "%s/%s", test_dir, name);
    return path;
}

/* ---- the synthetic database ------------------------------------------------------------- */

typedef struct test_run_spec {
    const char *mode;
    const char *transport;
    const char *params;
    uint64_t seed;
    uint64_t base_us; /* latency of request i: base + seed * 3 + (i * 37) % 200 µs */
    int timeouts;     /* every 50th request times out */
    int events;       /* a crash at 20 ms, a recover at 40 ms, a retry at 30 ms */
} test_run_spec;

/* Three sim seeds over tcp, three over udp (slower, with timeouts), two real over tcp. */
static const test_run_spec test_runs[] = {
    {"sim", "tcp", "{\"transport\":\"tcp\",\"clients.count\":\"2\",\"scenario.seed\":\"1\"}", 1,
     100, 0, 1},
    {"sim", "tcp", "{\"transport\":\"tcp\",\"clients.count\":\"2\",\"scenario.seed\":\"2\"}", 2,
     100, 0, 0},
    {"sim", "tcp", "{\"transport\":\"tcp\",\"clients.count\":\"2\",\"scenario.seed\":\"3\"}", 3,
     100, 0, 0},
    {"sim", "udp", "{\"transport\":\"udp\",\"clients.count\":\"4\",\"scenario.seed\":\"1\"}", 1,
     150, 1, 0},
    {"sim", "udp", "{\"transport\":\"udp\",\"clients.count\":\"4\",\"scenario.seed\":\"2\"}", 2,
     150, 1, 0},
    {"sim", "udp", "{\"transport\":\"udp\",\"clients.count\":\"4\",\"scenario.seed\":\"3\"}", 3,
     150, 1, 0},
    {"real", "tcp", "{\"transport\":\"tcp\",\"clients.count\":\"2\",\"scenario.seed\":\"1\"}", 1,
     120, 0, 0},
    {"real", "tcp", "{\"transport\":\"tcp\",\"clients.count\":\"2\",\"scenario.seed\":\"2\"}", 2,
     120, 0, 0},
};
#define TEST_RUN_COUNT (sizeof test_runs / sizeof test_runs[0])
#define TEST_REQUESTS  2000

static void test_add_requests(cb_results *db, int64_t id, const test_run_spec *spec)
{
    for (uint64_t i = 0; i < TEST_REQUESTS; i++) {
        uint64_t issue = i * 40000; /* one every 40 µs: the run lasts 80 ms */
        uint64_t lat_us = spec->base_us + spec->seed * 3 + (i * 37) % 200;
        int timeout = spec->timeouts && i % 50 == 0;
        char key[16];
        snprintf(key, sizeof key, "k%llu", (unsigned long long)(i % 100));
        cb_result_request r = {0};
        r.op = i % 10 == 0 ? "set" : "get";
        r.key = (const uint8_t *)key;
        r.key_len = strlen(key);
        r.issue_ns = issue;
        r.complete_ns = issue + (timeout ? 1000000 : lat_us * 1000);
        r.outcome = timeout ? "timeout" : i % 10 == 0 ? "stored" : i % 3 == 0 ? "miss" : "hit";
        r.attempts = 1;
        CU_ASSERT_FATAL(cb_results_add_request(db, id, &r) == CB_RESULTS_OK);
    }
}

/* ---- synthetic placement figures (schema version 2) ------------------------------------ */

static const char *const test_strategies[] = {"uniform", "modulo", "jump"};
#define TEST_STRATEGY_COUNT 3
static const uint32_t test_node_counts[] = {10, 100, 1000};
#define TEST_NODE_COUNTS 3

/* Keys per node of strategy s over n nodes: mean 1000, spread growing with s. */
static void test_load(size_t s, uint32_t n, uint64_t *load)
{
    for (uint32_t i = 0; i < n; i++) {
        load[i] = 1000 + (uint64_t)(s * 10) * (i % 7) - (uint64_t)(s * 30);
    }
}

/* One placement run: every strategy over N = 10, 100, 1000, load rows for N <= 100. */
static void test_add_placement(cb_results *db)
{
    static uint64_t loads[TEST_STRATEGY_COUNT * TEST_NODE_COUNTS][100];
    cb_placement_result rows[TEST_STRATEGY_COUNT * TEST_NODE_COUNTS];
    size_t k = 0;
    for (size_t n = 0; n < TEST_NODE_COUNTS; n++) {
        for (size_t s = 0; s < TEST_STRATEGY_COUNT; s++, k++) {
            uint32_t nodes = test_node_counts[n];
            double moved = s == 0 ? NAN : s == 1 ? (double)nodes : 1.0 + 0.01 * (double)n;
            rows[k] = (cb_placement_result){test_strategies[s],
                                            nodes,
                                            1.0 + 0.1 * (double)s,
                                            0.01 * (double)s,
                                            moved,
                                            moved,
                                            moved,
                                            s == 0 ? NAN : 10.0 * (double)s,
                                            s == 0 ? NAN : 20.0 * (double)s,
                                            NULL};
            if (nodes <= 100) {
                test_load(s, nodes, loads[k]);
                rows[k].load = loads[k];
            }
        }
    }
    cb_placement_run_info info = {"2026-03-01T00:00:00.000Z", 1000000, 1, 65537, NULL, NULL};
    CU_ASSERT_FATAL(cb_results_add_placement(db, &info, rows, k, NULL) == CB_RESULTS_OK);
}

static void test_build_db(const char *path)
{
    char err[256];
    cb_results *db = NULL;
    unlink(path);
    CU_ASSERT_FATAL(cb_results_open(path, &db, err, sizeof err) == CB_RESULTS_OK);
    for (size_t k = 0; k < TEST_RUN_COUNT; k++) {
        const test_run_spec *spec = &test_runs[k];
        cb_run_info info = {0};
        info.scenario_name = "synth_test";
        info.varied_params = spec->params;
        info.mode = spec->mode;
        info.transport = spec->transport;
        info.placement = "ring";
        info.seed = spec->seed;
        int64_t id = 0;
        CU_ASSERT_FATAL(cb_results_begin_run(db, &info, &id) == CB_RESULTS_OK);
        test_add_requests(db, id, spec);
        if (spec->events) {
            CU_ASSERT(cb_results_add_event(db, id, 20000000, "server0", "crash", NULL) == 0);
            CU_ASSERT(cb_results_add_event(db, id, 30000000, "client1", "retry", "x") == 0);
            CU_ASSERT(cb_results_add_event(db, id, 40000000, "server0", "recover", NULL) == 0);
        }
        CU_ASSERT_FATAL(cb_results_end_run(db, id, CB_RUN_COMPLETE, 1.0, 0.08) == CB_RESULTS_OK);
    }
    test_add_placement(db);
    CU_ASSERT_FATAL(cb_results_close(db) == CB_RESULTS_OK);
}

static const char *test_db(void)
{
    static int built;
    static char path[TEST_PATH_MAX];
    if (!built) {
        snprintf(path, sizeof path, "%s", test_path("synth.db"));
        test_build_db(path);
        built = 1;
    }
    return path;
}

/* Generate the full report into dir `name` once; returns its path. */
static const char *test_report(void)
{
    static char dir[TEST_PATH_MAX];
    static int made;
    if (!made) {
        const char *db = test_db();
        snprintf(dir, sizeof dir, "%s", test_path("report"));
        cb_report_options opt = {db, dir, NULL, 0, NULL};
        cb_report_result res;
        char err[2048] = "";
        int rc = cb_report_generate(&opt, &res, err, sizeof err);
        if (rc != CB_REPORT_OK) {
            printf("report: %s\n", err);
        }
        CU_ASSERT_FATAL(rc == CB_REPORT_OK);
        CU_ASSERT(res.runs == TEST_RUN_COUNT);
        CU_ASSERT(res.groups == 3);
        CU_ASSERT(res.sim_real_pairs == 1);
        CU_ASSERT(res.plots == res.plots_rendered);
        made = 1;
    }
    return dir;
}

/* ---- file helpers ------------------------------------------------------------------------ */

/* The whole file dir/name, NUL-terminated (malloc'd), or NULL; its size in *len. */
static char *test_slurp(const char *dir, const char *name, size_t *len)
{
    char path[TEST_PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    if (buf != NULL && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL) {
        buf[size] = '\0';
        *len = (size_t)size;
    }
    return buf;
}

static int test_file_exists(const char *dir, const char *name)
{
    char path[TEST_PATH_MAX * 2];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0;
}

/* The plot stems (NAME of NAME.gp) in dir, sorted; returns how many (at most cap). */
static size_t test_plots(const char *dir, char names[][64], size_t cap)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    CU_ASSERT_FATAL(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < cap) {
        size_t len = strlen(e->d_name);
        if (len > 3 && len < 60 && strcmp(e->d_name + len - 3, ".gp") == 0) {
            memcpy(names[n], e->d_name, len - 3);
            names[n][len - 3] = '\0';
            n++;
        }
    }
    closedir(d);
    return n;
}

static int test_svg_ok(const char *text, size_t len)
{
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '\r')) {
        len--;
    }
    int starts = strncmp(text, "<?xml", 5) == 0 || strncmp(text, "<svg", 4) == 0;
    return starts && len >= 6 && strncmp(text + len - 6, "</svg>", 6) == 0 &&
           strstr(text, "<svg") != NULL;
}

/* ---- file checks --------------------------------------------------------------------------- */

static void test_files_well_formed(void)
{
    const char *dir = test_report();
    char names[64][64];
    size_t n = test_plots(dir, names, 64);
    /* comparison, latency_cdf, latency_ccdf, load_1, qq_1, timeseries_1..8, placement_load,
     * placement_moved */
    CU_ASSERT(n == 15);
    for (size_t i = 0; i < n; i++) {
        char file[96];
        size_t len = 0;
        snprintf(file, sizeof file, "%s.dat", names[i]);
        char *dat = test_slurp(dir, file, &len);
        CU_ASSERT(dat != NULL && len > 0);
        CU_ASSERT(dat != NULL && strchr(dat, '\n') != NULL && dat[0] == '#');
        free(dat);
        snprintf(file, sizeof file, "%s.gp", names[i]);
        char *gp = test_slurp(dir, file, &len);
        char want[96];
        snprintf(want, sizeof want, "'%s.dat'", names[i]);
        if (gp == NULL || strstr(gp, want) == NULL) {
            printf("%s does not read %s\n", file, want);
            CU_FAIL("a script does not read its data");
        }
        free(gp);
        snprintf(file, sizeof file, "%s.svg", names[i]);
        char *svg = test_slurp(dir, file, &len);
        if (svg == NULL || !test_svg_ok(svg, len)) {
            printf("%s is not an SVG document\n", file);
            CU_FAIL("bad SVG");
        }
        free(svg);
        snprintf(file, sizeof file, "%s.png", names[i]);
        char *png = test_slurp(dir, file, &len);
        CU_ASSERT(png != NULL && len > 8 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
        free(png);
    }
}

/* Every src="..." and href="..." of index.html that is a file exists; every plot is shown. */
static void test_html_references(void)
{
    const char *dir = test_report();
    size_t len = 0;
    char *html = test_slurp(dir, "index.html", &len);
    CU_ASSERT_FATAL(html != NULL);
    CU_ASSERT(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    CU_ASSERT(strstr(html, "</html>") != NULL);
    static const char *const attrs[] = {"src=\"", "href=\""};
    size_t refs = 0;
    for (size_t a = 0; a < 2; a++) {
        for (const char *p = strstr(html, attrs[a]); p != NULL; p = strstr(p + 1, attrs[a])) {
            const char *start = p + strlen(attrs[a]);
            const char *end = strchr(start, '"');
            CU_ASSERT_FATAL(end != NULL);
            if (*start == '#') {
                continue;
            }
            char ref[128];
            snprintf(ref, sizeof ref, "%.*s", (int)(end - start), start);
            if (!test_file_exists(dir, ref)) {
                printf("index.html references missing %s\n", ref);
                CU_FAIL("a referenced file is missing");
            }
            refs++;
        }
    }
    char names[64][64];
    size_t n = test_plots(dir, names, 64);
    for (size_t i = 0; i < n; i++) {
        char want[128];
        snprintf(want, sizeof want, "<img src=\"%s.svg\"", names[i]);
        CU_ASSERT(strstr(html, want) != NULL);
        snprintf(want, sizeof want, "href=\"%s.png\"", names[i]);
        CU_ASSERT(strstr(html, want) != NULL);
    }
    CU_ASSERT(refs >= 4 * n);
    free(html);
}

static void test_markdown_tables(void)
{
    const char *dir = test_report();
    size_t len = 0;
    char *md = test_slurp(dir, "report.md", &len);
    CU_ASSERT_FATAL(md != NULL);
    CU_ASSERT(strstr(md, "# cachebed report") != NULL);
    static const char *const want[] = {"## Runs",
                                       "## Strategy comparison",
                                       "## Latency distribution",
                                       "## Simulation against reality",
                                       "## Placement",
                                       "| run | scenario |",
                                       "| --- |",
                                       " ---: |",
                                       "![Latency CDF](latency_cdf.svg)",
                                       "Kolmogorov-Smirnov",
                                       "![Keys per node, N = 100](placement_load.svg)",
                                       "![Keys moved on a membership change](placement_moved.svg)",
                                       "| strategy | N | max/mean |",
                                       "| jump | 1000 | 1.200 | 0.0200 | 1.020 |"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (strstr(md, want[i]) == NULL) {
            printf("report.md lacks '%s'\n", want[i]);
            CU_FAIL("report.md lacks a part");
        }
    }
    /* The best p50 (the tcp sim group, lowest latencies) is bold. */
    CU_ASSERT(strstr(md, "| **") != NULL);
    free(md);
}

/* ---- statistics checked independently --------------------------------------------------- */

/* Student's t quantiles t(0.975, df) from tables (not from GSL, which the report uses). */
static double test_t975(size_t df)
{
    static const double table[] = {NAN, 12.706204736174698, 4.302652729749464, 3.182446305284263};
    return df < sizeof table / sizeof table[0] ? table[df] : NAN;
}

static const char *const test_metric_columns[] = {
    "throughput_rps", "p50_us", "p99_us", "p999_us", "hit_ratio", "timeout_rate", "error_rate"};

/* Values of run_summary column `col` for runs first..last, read with SQL. */
static size_t test_summary_values(const char *col, int first, int last, double *out)
{
    sqlite3 *db = NULL;
    CU_ASSERT_FATAL(sqlite3_open_v2(test_db(), &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT %s FROM run_summary WHERE run_id BETWEEN %d AND %d", col,
             first, last);
    sqlite3_stmt *st = NULL;
    CU_ASSERT_FATAL(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        out[n++] = sqlite3_column_double(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Row `row` of comparison.dat as numbers (the quoted label skipped): out[0] is column 1. */
static size_t test_comparison_row(size_t row, double *out, size_t cap)
{
    size_t len = 0;
    char *dat = test_slurp(test_report(), "comparison.dat", &len);
    CU_ASSERT_FATAL(dat != NULL);
    size_t seen = 0;
    size_t n = 0;
    for (char *line = strtok(dat, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || seen++ != row) {
            continue;
        }
        char *close = strrchr(line, '"');
        CU_ASSERT_FATAL(close != NULL);
        out[n++] = strtod(line, NULL);
        out[n++] = NAN; /* the label */
        for (char *p = close + 1, *end = NULL; n < cap; p = end) {
            double v = strtod(p, &end);
            if (end == p) {
                break;
            }
            out[n++] = v;
        }
    }
    free(dat);
    return n;
}

static void test_check_group_ci(size_t row, int first, int last)
{
    double cols[64];
    size_t ncols = test_comparison_row(row, cols, 64);
    CU_ASSERT_FATAL(ncols == 3 + 3 * 7);
    CU_ASSERT(cols[2] == (double)(last - first + 1));
    for (size_t m = 0; m < 7; m++) {
        double v[8];
        size_t n = test_summary_values(test_metric_columns[m], first, last, v);
        CU_ASSERT_FATAL(n == (size_t)(last - first + 1));
        double mean = 0;
        for (size_t i = 0; i < n; i++) {
            mean += v[i] / (double)n;
        }
        double ss = 0;
        for (size_t i = 0; i < n; i++) {
            ss += (v[i] - mean) * (v[i] - mean);
        }
        double half = test_t975(n - 1) * sqrt(ss / (double)(n - 1)) / sqrt((double)n);
        double tol = 1e-9 * fmax(1.0, fabs(mean));
        CU_ASSERT(fabs(cols[3 + 3 * m] - mean) <= tol);
        CU_ASSERT(fabs(cols[4 + 3 * m] - (mean - half)) <= tol);
        CU_ASSERT(fabs(cols[5 + 3 * m] - (mean + half)) <= tol);
    }
}

static void test_ci_matches_independent(void)
{
    test_check_group_ci(0, 1, 3); /* sim tcp, 3 seeds */
    test_check_group_ci(1, 4, 6); /* sim udp, 3 seeds */
    test_check_group_ci(2, 7, 8); /* real tcp, 2 seeds */
}

static void test_mean_ci_unit(void)
{
    const double x[] = {1, 2, 3, 4};
    cb_report_ci ci = cb_report_mean_ci(x, 4, 0.95);
    double sd = sqrt((2.25 + 0.25 + 0.25 + 2.25) / 3.0);
    CU_ASSERT(ci.n == 4);
    CU_ASSERT(fabs(ci.mean - 2.5) < 1e-12);
    CU_ASSERT(fabs(ci.sd - sd) < 1e-12);
    CU_ASSERT(fabs(ci.half_width - test_t975(3) * sd / 2.0) < 1e-9);
    const double y[] = {1, NAN, 3, INFINITY};
    ci = cb_report_mean_ci(y, 4, 0.95);
    CU_ASSERT(ci.n == 2 && fabs(ci.mean - 2.0) < 1e-12);
    CU_ASSERT(fabs(ci.half_width - test_t975(1) * sqrt(2.0) / sqrt(2.0)) < 1e-9);
    ci = cb_report_mean_ci(x, 1, 0.95);
    CU_ASSERT(ci.n == 1 && ci.mean == 1.0 && isnan(ci.half_width));
    ci = cb_report_mean_ci(NULL, 0, 0.95);
    CU_ASSERT(ci.n == 0 && isnan(ci.mean));
}

/* D by brute force: the largest |F_a(x) - F_b(x)| over every sample value x. */
static double test_ks_brute(const double *a, size_t na, const double *b, size_t nb)
{
    double d = 0;
    for (size_t k = 0; k < na + nb; k++) {
        double x = k < na ? a[k] : b[k - na];
        size_t ca = 0;
        size_t cb = 0;
        for (size_t i = 0; i < na; i++) {
            ca += a[i] <= x;
        }
        for (size_t i = 0; i < nb; i++) {
            cb += b[i] <= x;
        }
        d = fmax(d, fabs((double)ca / (double)na - (double)cb / (double)nb));
    }
    return d;
}

static int test_cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa;
    double b = *(const double *)pb;
    return (a > b) - (a < b);
}

static void test_ks_unit(void)
{
    static const struct {
        const char *name;
        double a[4];
        size_t na;
        double b[4];
        size_t nb;
        double d;
    } cases[] = {
        {"equal", {1, 2, 3}, 3, {1, 2, 3}, 3, 0.0},
        {"disjoint", {1, 2}, 2, {3, 4}, 2, 1.0},
        {"ties across samples", {1, 1, 2}, 3, {1, 2, 2}, 3, 1.0 / 3.0},
        {"one each", {5}, 1, {5}, 1, 0.0},
        {"shifted", {1, 2, 3, 4}, 4, {2, 3, 4, 5}, 4, 0.25},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double d = cb_report_ks_statistic(cases[i].a, cases[i].na, cases[i].b, cases[i].nb);
        if (fabs(d - cases[i].d) > 1e-12) {
            printf("ks case %s: %g, want %g\n", cases[i].name, d, cases[i].d);
            CU_FAIL("KS statistic");
        }
    }
    CU_ASSERT(isnan(cb_report_ks_statistic(NULL, 0, cases[0].b, 3)));
    /* Random samples with many ties, against brute force. */
    uint64_t s = cb_test_seed();
    double a[200];
    double b[150];
    for (int iter = 0; iter < 50; iter++) {
        for (size_t i = 0; i < 200; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            a[i] = (double)((s >> 33) % 40);
            if (i < 150) {
                b[i] = (double)((s >> 13) % 45);
            }
        }
        qsort(a, 200, sizeof a[0], test_cmp_double);
        qsort(b, 150, sizeof b[0], test_cmp_double);
        CU_ASSERT(fabs(cb_report_ks_statistic(a, 200, b, 150) - test_ks_brute(a, 200, b, 150)) <
                  1e-12);
    }
}

/* The latencies (µs) of runs first..last that did not time out, sorted, read with SQL. */
static size_t test_latencies(int first, int last, double *out, size_t cap)
{
    sqlite3 *db = NULL;
    CU_ASSERT_FATAL(sqlite3_open_v2(test_db(), &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT complete_ns - issue_ns FROM requests WHERE run_id BETWEEN %d AND %d"
             " AND outcome <> 'timeout'",
             first, last);
    sqlite3_stmt *st = NULL;
    CU_ASSERT_FATAL(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
    size_t n = 0;
    while (n < cap && sqlite3_step(st) == SQLITE_ROW) {
        out[n++] = (double)sqlite3_column_int64(st, 0) / 1000.0;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    qsort(out, n, sizeof out[0], test_cmp_double);
    return n;
}

/* How many of the n values of s are <= x, counted one by one. */
static size_t test_count_le(const double *s, size_t n, double x)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c += s[i] <= x;
    }
    return c;
}

/* D evaluated at each distinct value of sorted a and b (the samples have few distinct ones). */
static double test_ks_distinct(const double *a, size_t na, const double *b, size_t nb)
{
    double d = 0;
    for (size_t k = 0; k < na + nb; k++) {
        double x = k < na ? a[k] : b[k - na];
        if ((k < na && k > 0 && a[k - 1] == x) || (k > na && b[k - na - 1] == x)) {
            continue;
        }
        double fa = (double)test_count_le(a, na, x) / (double)na;
        double fb = (double)test_count_le(b, nb, x) / (double)nb;
        d = fmax(d, fabs(fa - fb));
    }
    return d;
}

/* The KS table row of report.md for the one pair: "| pair | 6000 | 4000 | D | crit | ..." */
static double test_report_ks_d(void)
{
    size_t len = 0;
    char *md = test_slurp(test_report(), "report.md", &len);
    CU_ASSERT_FATAL(md != NULL);
    const char *row = strstr(md, "| 6000 | 4000 | ");
    double d = row != NULL ? strtod(row + strlen("| 6000 | 4000 | "), NULL) : NAN;
    free(md);
    return d;
}

static void test_ks_matches_independent(void)
{
    static double model[3 * TEST_REQUESTS];
    static double real[2 * TEST_REQUESTS];
    size_t nm = test_latencies(1, 3, model, 3 * TEST_REQUESTS);
    size_t nr = test_latencies(7, 8, real, 2 * TEST_REQUESTS);
    CU_ASSERT_FATAL(nm == 6000 && nr == 4000);
    double want = test_ks_distinct(model, nm, real, nr);
    CU_ASSERT(want > 0.05 && want < 1.0); /* real is 20 µs slower: they differ */
    CU_ASSERT(fabs(cb_report_ks_statistic(model, nm, real, nr) - want) < 1e-12);
    double shown = test_report_ks_d();
    if (!(fabs(shown - want) <= 0.00005 + 1e-12)) {
        printf("report.md KS D %g, computed %g\n", shown, want);
        CU_FAIL("KS statistic in the report");
    }
}

static void test_bucket_width(void)
{
    static const struct {
        uint64_t duration_ns;
        uint64_t width_ns;
    } cases[] = {
        {0, 100000},
        {5000000, 100000},
        {80000000, 1000000},
        {636000000, 10000000},
        {12000000000, 200000000},
        {25000000000, 500000000},
        {100000000000, 1000000000},
        {3600000000000, 1000000000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t w = cb_report_bucket_width_ns(cases[i].duration_ns);
        if (w != cases[i].width_ns) {
            printf("duration %llu ns: width %llu, want %llu\n",
                   (unsigned long long)cases[i].duration_ns, (unsigned long long)w,
                   (unsigned long long)cases[i].width_ns);
            CU_FAIL("bucket width");
        }
    }
}

/* ---- placement ------------------------------------------------------------------------------ */

/* placement_load.dat holds N = 100 (the largest with load rows), sorted, over the mean. */
static void test_placement_data(void)
{
    const char *dir = test_report();
    size_t len = 0;
    char *dat = test_slurp(dir, "placement_load.dat", &len);
    CU_ASSERT_FATAL(dat != NULL);
    /* jump (s = 2): most loaded node 1000 + 20 * 6 - 60 = 1060 keys; mean over 100 nodes. */
    uint64_t load[100];
    double sum = 0;
    test_load(2, 100, load);
    for (size_t i = 0; i < 100; i++) {
        sum += (double)load[i];
    }
    char want[96];
    snprintf(want, sizeof want, "\n1 %.17g 1060\n", 1060.0 / (sum / 100.0));
    const char *jump = strstr(dat, "# \"jump\"");
    CU_ASSERT_FATAL(jump != NULL);
    CU_ASSERT(strstr(jump, want) != NULL);
    CU_ASSERT(strstr(dat, "\n100 ") != NULL && strstr(dat, "\n101 ") == NULL);
    free(dat);
    char *moved = test_slurp(dir, "placement_moved.dat", &len);
    CU_ASSERT_FATAL(moved != NULL);
    /* uniform has no movement: not a column; modulo moves N times the optimum. */
    CU_ASSERT(strstr(moved, "\"modulo\" \"jump\"\n") != NULL);
    CU_ASSERT(strstr(moved, "\n1000 1000 1.02") != NULL);
    free(moved);
}

/* A database with placement figures and no runs is reported; one without either is not. */
static void test_placement_only(void)
{
    char err[512] = "";
    cb_results *db = NULL;
    const char *path = test_path("place_only.db");
    CU_ASSERT_FATAL(cb_results_open(path, &db, err, sizeof err) == CB_RESULTS_OK);
    cb_report_options empty = {path, test_path("place_empty"), NULL, 0, NULL};
    CU_ASSERT(cb_report_generate(&empty, NULL, err, sizeof err) == CB_REPORT_ERROR);
    CU_ASSERT(strstr(err, "no runs to report") != NULL);
    test_add_placement(db);
    CU_ASSERT_FATAL(cb_results_close(db) == CB_RESULTS_OK);
    cb_report_options opt = {path, test_path("place_only"), NULL, 0, NULL};
    cb_report_result res;
    CU_ASSERT_FATAL(cb_report_generate(&opt, &res, err, sizeof err) == CB_REPORT_OK);
    CU_ASSERT(res.runs == 0 && res.plots == 2 && res.plots_rendered == 2);
    CU_ASSERT(test_file_exists(opt.out_dir, "placement_load.svg"));
    CU_ASSERT(test_file_exists(opt.out_dir, "placement_moved.png"));
    size_t len = 0;
    char *md = test_slurp(opt.out_dir, "report.md", &len);
    CU_ASSERT_FATAL(md != NULL);
    CU_ASSERT(strstr(md, "## Placement") != NULL && strstr(md, "## Runs") == NULL);
    free(md);
}

/* A version-1 file (no placement tables), as `cachebed report` reads it: no placement plots. */
static void test_placement_absent_v1(void)
{
    const char *path = test_path("v1.db");
    char err[512] = "";
    sqlite3 *raw = NULL;
    test_build_db(path);
    CU_ASSERT_FATAL(sqlite3_open(path, &raw) == SQLITE_OK);
    CU_ASSERT(sqlite3_exec(raw,
                           "DROP TABLE placement_load; DROP TABLE placement_results;"
                           " DROP TABLE placement_runs; PRAGMA user_version = 1",
                           NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(raw);
    cb_report_options opt = {path, test_path("v1"), NULL, 0, NULL};
    CU_ASSERT_FATAL(cb_report_generate(&opt, NULL, err, sizeof err) == CB_REPORT_OK);
    CU_ASSERT(!test_file_exists(opt.out_dir, "placement_load.gp"));
    size_t len = 0;
    char *md = test_slurp(opt.out_dir, "report.md", &len);
    CU_ASSERT_FATAL(md != NULL);
    CU_ASSERT(strstr(md, "No placement figures in this database") != NULL);
    free(md);
}

/* ---- selections and failures ----------------------------------------------------------------- */

static void test_subset_of_runs(void)
{
    const int64_t ids[] = {4, 5};
    cb_report_options opt = {test_db(), test_path("subset"), ids, 2, NULL};
    cb_report_result res;
    char err[512] = "";
    CU_ASSERT_FATAL(cb_report_generate(&opt, &res, err, sizeof err) == CB_REPORT_OK);
    CU_ASSERT(res.runs == 2 && res.groups == 1 && res.sim_real_pairs == 0);
    CU_ASSERT(test_file_exists(opt.out_dir, "timeseries_4.svg"));
    CU_ASSERT(!test_file_exists(opt.out_dir, "timeseries_1.gp"));
    CU_ASSERT(!test_file_exists(opt.out_dir, "load_1.gp")); /* one value of each parameter */
}

static void test_failures(void)
{
    char err[2048] = "";
    const int64_t missing[] = {1, 99};
    cb_report_options opt = {test_db(), test_path("fail1"), missing, 2, NULL};
    CU_ASSERT(cb_report_generate(&opt, NULL, err, sizeof err) == CB_REPORT_ERROR);
    CU_ASSERT(strstr(err, "no run with id 99") != NULL);

    cb_report_options nodb = {test_path("none.db"), test_path("fail2"), NULL, 0, NULL};
    CU_ASSERT(cb_report_generate(&nodb, NULL, err, sizeof err) == CB_REPORT_ERROR);
    CU_ASSERT(strstr(err, "none.db") != NULL);
    CU_ASSERT(access(test_path("none.db"), F_OK) != 0); /* read-only: never created */

    /* gnuplot that cannot run: every file but the images is written, the error says so. */
    cb_report_options nognu = {test_db(), test_path("fail3"), NULL, 0, "/nonexistent/gnuplot"};
    cb_report_result res;
    CU_ASSERT(cb_report_generate(&nognu, &res, err, sizeof err) == CB_REPORT_ERROR);
    CU_ASSERT(strstr(err, "cannot run the gnuplot program") != NULL);
    CU_ASSERT(strstr(err, "exited with status 127") != NULL);
    CU_ASSERT(res.plots > 0 && res.plots_rendered == 0);
    CU_ASSERT(test_file_exists(nognu.out_dir, "index.html"));
    CU_ASSERT(test_file_exists(nognu.out_dir, "comparison.gp"));
    CU_ASSERT(!test_file_exists(nognu.out_dir, "comparison.svg"));

    /* A file where the directory should be. */
    FILE *f = fopen(test_path("afile"), "w");
    CU_ASSERT_FATAL(f != NULL);
    fclose(f);
    cb_report_options notdir = {test_db(), test_path("afile/sub"), NULL, 0, NULL};
    CU_ASSERT(cb_report_generate(&notdir, NULL, err, sizeof err) == CB_REPORT_ERROR);
    CU_ASSERT(strstr(err, "afile") != NULL);
}

/* Remove dir and what is in it, one level of subdirectories deep (all this suite makes). */
static void test_remove_tree(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[TEST_PATH_MAX * 2];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0 && depth > 0) {
            test_remove_tree(path, depth - 1);
        }
    }
    closedir(d);
    CU_ASSERT(rmdir(dir) == 0);
}

static void test_cleanup(void)
{
    if (test_dir[0] != '\0' && getenv("CB_TEST_KEEP") == NULL) {
        test_remove_tree(test_dir, 1);
    }
}

static const cb_test_case cases[] = {
    {"files well formed", test_files_well_formed},
    {"html references", test_html_references},
    {"markdown tables", test_markdown_tables},
    {"ci matches independent", test_ci_matches_independent},
    {"mean ci unit", test_mean_ci_unit},
    {"ks unit", test_ks_unit},
    {"ks matches independent", test_ks_matches_independent},
    {"bucket width", test_bucket_width},
    {"placement data", test_placement_data},
    {"placement only", test_placement_only},
    {"placement absent v1", test_placement_absent_v1},
    {"subset of runs", test_subset_of_runs},
    {"failures", test_failures},
    {"cleanup", test_cleanup},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_report", cases)
