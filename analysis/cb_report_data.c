/*
 * cb_report_data.c: what `cachebed report` reads from a results database — the runs with
 * their summaries and varied parameters, grouped by what they vary except the seed; each
 * run's requests (one prepared SELECT per run, ordered by latency in SQL); its events.
 */
#include "cb_report_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const report_metric_info report_metrics[REPORT_METRIC_COUNT] = {
    {"throughput_rps", "throughput", "throughput (requests/s)", 1},
    {"p50_us", "p50 latency", "p50 latency (µs)", 0},
    {"p99_us", "p99 latency", "p99 latency (µs)", 0},
    {"p999_us", "p99.9 latency", "p99.9 latency (µs)", 0},
    {"hit_ratio", "hit ratio", "GET hit ratio", 1},
    {"timeout_rate", "timeout rate", "timeouts / requests", 0},
    {"error_rate", "error rate", "errors / requests", 0},
};

static char *report_strdup(const char *s)
{
    size_t n = strlen(s != NULL ? s : "");
    char *copy = malloc(n + 1);
    if (copy != NULL) {
        memcpy(copy, s != NULL ? s : "", n + 1);
    }
    return copy;
}

static char *report_column_text(sqlite3_stmt *st, int col)
{
    return report_strdup((const char *)sqlite3_column_text(st, col));
}

static double report_column_double(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

/* ---- runs ------------------------------------------------------------------------------------ */

static const char report_runs_sql[] =
    "SELECT r.id, r.scenario_name, r.mode, coalesce(r.transport, ''), coalesce(r.placement, ''),"
    " r.status, coalesce(r.seed, 0), s.run_id IS NOT NULL, coalesce(s.requests, 0),"
    " coalesce(s.completed, 0), s.throughput_rps, s.p50_us, s.p99_us, s.p999_us, s.hit_ratio,"
    " s.timeout_rate, s.error_rate"
    " FROM runs r LEFT JOIN run_summary s ON s.run_id = r.id ORDER BY r.id";

static int report_wanted(int64_t id, const int64_t *ids, size_t id_count)
{
    if (ids == NULL) {
        return 1;
    }
    for (size_t i = 0; i < id_count; i++) {
        if (ids[i] == id) {
            return 1;
        }
    }
    return 0;
}

static int report_fill_run(report_run *r, sqlite3_stmt *st)
{
    r->id = sqlite3_column_int64(st, 0);
    r->scenario = report_column_text(st, 1);
    r->mode = report_column_text(st, 2);
    r->transport = report_column_text(st, 3);
    r->placement = report_column_text(st, 4);
    r->status = report_column_text(st, 5);
    r->seed = sqlite3_column_int64(st, 6);
    r->has_summary = sqlite3_column_int(st, 7);
    r->requests = sqlite3_column_int64(st, 8);
    r->completed = sqlite3_column_int64(st, 9);
    for (int m = 0; m < REPORT_METRIC_COUNT; m++) {
        r->metric[m] = report_column_double(st, 10 + m);
    }
    if (r->scenario == NULL || r->mode == NULL || r->transport == NULL || r->placement == NULL ||
        r->status == NULL) {
        return -1;
    }
    return 0;
}

static int report_read_runs(report_ctx *ctx, const int64_t *ids, size_t id_count)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ctx->db, report_runs_sql, -1, &st, NULL) != SQLITE_OK) {
        return report_fail(ctx, "%s: not a results database: %s", ctx->db_path,
                           sqlite3_errmsg(ctx->db));
    }
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!report_wanted(sqlite3_column_int64(st, 0), ids, id_count)) {
            continue;
        }
        if (ctx->run_count == cap) {
            cap = cap > 0 ? 2 * cap : 16;
            report_run *runs = realloc(ctx->runs, cap * sizeof *runs);
            if (runs == NULL) {
                break;
            }
            ctx->runs = runs;
        }
        report_run *r = &ctx->runs[ctx->run_count++];
        *r = (report_run){0};
        if (report_fill_run(r, st) != 0) {
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        return report_fail(ctx, "%s: reading runs: %s", ctx->db_path, sqlite3_errmsg(ctx->db));
    }
    return rc == SQLITE_DONE ? CB_REPORT_OK : report_fail(ctx, "reading runs: out of memory");
}

static report_run *report_find_run(report_ctx *ctx, int64_t id)
{
    size_t lo = 0;
    size_t hi = ctx->run_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ctx->runs[mid].id == id) {
            return &ctx->runs[mid];
        }
        if (ctx->runs[mid].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

/* A seed is what a group's runs differ by, not a parameter of the group. */
static int report_is_seed_key(const char *key)
{
    size_t n = strlen(key);
    return strcmp(key, "seed") == 0 || (n > 5 && strcmp(key + n - 5, ".seed") == 0);
}

static int report_add_param(report_run *r, const char *key, const char *value)
{
    report_param *params = realloc(r->params, (r->param_count + 1) * sizeof *params);
    if (params == NULL) {
        return -1;
    }
    r->params = params;
    report_param *p = &params[r->param_count];
    p->key = report_strdup(key);
    p->value = report_strdup(value != NULL ? value : "null");
    r->param_count++;
    return p->key != NULL && p->value != NULL ? 0 : -1;
}

/* Every run's varied parameters except seeds, sorted by key (SQLite's json_each). */
static int report_read_params(report_ctx *ctx)
{
    static const char sql[] = "SELECT r.id, j.key, CAST(j.value AS TEXT)"
                              " FROM runs r, json_each(r.varied_params) j ORDER BY r.id, j.key";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ctx->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return report_fail(ctx, "reading varied_params: %s", sqlite3_errmsg(ctx->db));
    }
    int rc;
    int nomem = 0;
    while (!nomem && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        report_run *r = report_find_run(ctx, sqlite3_column_int64(st, 0));
        const char *key = (const char *)sqlite3_column_text(st, 1);
        if (r == NULL || key == NULL || report_is_seed_key(key)) {
            continue;
        }
        nomem = report_add_param(r, key, (const char *)sqlite3_column_text(st, 2)) != 0;
    }
    sqlite3_finalize(st);
    if (nomem) {
        return report_fail(ctx, "reading varied_params: out of memory");
    }
    if (rc != SQLITE_DONE) {
        return report_fail(ctx, "reading varied_params: %s", sqlite3_errmsg(ctx->db));
    }
    return CB_REPORT_OK;
}

int report_load_runs(report_ctx *ctx, const int64_t *ids, size_t id_count)
{
    if (report_read_runs(ctx, ids, id_count) != CB_REPORT_OK) {
        return CB_REPORT_ERROR;
    }
    for (size_t i = 0; ids != NULL && i < id_count; i++) {
        if (report_find_run(ctx, ids[i]) == NULL) {
            return report_fail(ctx, "%s: no run with id %lld", ctx->db_path, (long long)ids[i]);
        }
    }
    if (ctx->run_count == 0 && !ctx->placement_only_ok) {
        return report_fail(ctx, "%s: no runs to report", ctx->db_path);
    }
    return report_read_params(ctx);
}

/* ---- groups ---------------------------------------------------------------------------------- */

/* The run's identity: with the mode (a group) or without it (to pair model and real runs). */
static char *report_identity(const report_run *r, int with_mode)
{
    report_str s = {0};
    report_str_printf(&s, "%s\x1f%s\x1f%s\x1f%s", r->scenario, with_mode ? r->mode : "",
                      r->transport, r->placement);
    for (size_t i = 0; i < r->param_count; i++) {
        report_str_printf(&s, "\x1f%s=%s", r->params[i].key, r->params[i].value);
    }
    return report_str_take(&s);
}

static report_group *report_find_group(report_ctx *ctx, const char *identity)
{
    for (size_t i = 0; i < ctx->group_count; i++) {
        if (strcmp(ctx->groups[i].identity, identity) == 0) {
            return &ctx->groups[i];
        }
    }
    return NULL;
}

static int report_join_group(report_ctx *ctx, size_t run_idx)
{
    report_run *r = &ctx->runs[run_idx];
    char *identity = report_identity(r, 1);
    if (identity == NULL) {
        return -1;
    }
    report_group *g = report_find_group(ctx, identity);
    if (g == NULL) {
        report_group *groups = realloc(ctx->groups, (ctx->group_count + 1) * sizeof *groups);
        if (groups == NULL) {
            free(identity);
            return -1;
        }
        ctx->groups = groups;
        g = &groups[ctx->group_count++];
        *g = (report_group){0};
        g->identity = identity;
        g->match = report_identity(r, 0);
        g->mode = r->mode;
    } else {
        free(identity);
    }
    size_t *runs = realloc(g->runs, (g->run_count + 1) * sizeof *runs);
    if (runs == NULL || g->match == NULL) {
        return -1; /* what was allocated is in the group: report_free_runs() frees it */
    }
    g->runs = runs;
    g->runs[g->run_count++] = run_idx;
    r->group = (size_t)(g - ctx->groups);
    return 0;
}

/* The value of `key` among a run's parameters, or NULL. */
const char *report_param_value(const report_run *r, const char *key)
{
    for (size_t i = 0; i < r->param_count; i++) {
        if (strcmp(r->params[i].key, key) == 0) {
            return r->params[i].value;
        }
    }
    return NULL;
}

static int report_same_text(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

/* Does `key` take more than one value across groups (absent counts as a value)? */
static int report_param_varies(const report_ctx *ctx, const char *key)
{
    const char *first = report_param_value(&ctx->runs[ctx->groups[0].runs[0]], key);
    for (size_t g = 1; g < ctx->group_count; g++) {
        const char *v = report_param_value(&ctx->runs[ctx->groups[g].runs[0]], key);
        if (!report_same_text(first, v)) {
            return 1;
        }
    }
    return 0;
}

/* The run fields that tell groups apart besides the parameters. */
static const char *const report_field_names[] = {"scenario", "mode", "transport", "placement"};

static const char *report_run_field(const report_run *r, size_t field)
{
    switch (field) {
    case 0:
        return r->scenario;
    case 1:
        return r->mode;
    case 2:
        return r->transport;
    default:
        return r->placement;
    }
}

static int report_is_field_name(const char *key)
{
    for (size_t f = 0; f < sizeof report_field_names / sizeof report_field_names[0]; f++) {
        if (strcmp(key, report_field_names[f]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Does run field `field` differ across groups? */
static int report_field_varies(const report_ctx *ctx, size_t field)
{
    const char *first = report_run_field(&ctx->runs[ctx->groups[0].runs[0]], field);
    for (size_t g = 1; g < ctx->group_count; g++) {
        if (strcmp(first, report_run_field(&ctx->runs[ctx->groups[g].runs[0]], field)) != 0) {
            return 1;
        }
    }
    return 0;
}

char *report_group_label(const report_ctx *ctx, const report_group *g, const char *exclude,
                         int with_fields)
{
    const report_run *r = &ctx->runs[g->runs[0]];
    report_str s = {0};
    size_t fields = with_fields ? sizeof report_field_names / sizeof report_field_names[0] : 0;
    for (size_t f = 0; f < fields; f++) {
        if (report_field_varies(ctx, f)) {
            report_str_printf(&s, "%s%s=%s", s.len > 0 ? ", " : "", report_field_names[f],
                              report_run_field(r, f));
        }
    }
    for (size_t i = 0; i < r->param_count; i++) {
        if (exclude != NULL && strcmp(r->params[i].key, exclude) == 0) {
            continue;
        }
        if (with_fields && report_is_field_name(r->params[i].key)) {
            continue; /* a parameter "transport" is the field transport, already named */
        }
        if (report_param_varies(ctx, r->params[i].key)) {
            report_str_printf(&s, "%s%s=%s", s.len > 0 ? ", " : "", r->params[i].key,
                              r->params[i].value);
        }
    }
    if (s.len == 0 && exclude == NULL && with_fields) {
        report_str_printf(&s, "%s (%s)", r->scenario, r->mode);
    }
    return report_str_take(&s);
}

/* Each metric's mean and 95% confidence interval over the group's runs. */
static int report_group_stats(const report_ctx *ctx, report_group *grp)
{
    double *values = malloc(grp->run_count * sizeof *values);
    if (values == NULL) {
        return -1;
    }
    for (int m = 0; m < REPORT_METRIC_COUNT; m++) {
        for (size_t i = 0; i < grp->run_count; i++) {
            values[i] = ctx->runs[grp->runs[i]].metric[m];
        }
        grp->ci[m] = cb_report_mean_ci(values, grp->run_count, 0.95);
    }
    free(values);
    return 0;
}

int report_group_runs(report_ctx *ctx)
{
    for (size_t i = 0; i < ctx->run_count; i++) {
        if (report_join_group(ctx, i) != 0) {
            return report_fail(ctx, "grouping runs: out of memory");
        }
    }
    for (size_t g = 0; g < ctx->group_count; g++) {
        report_group *grp = &ctx->groups[g];
        grp->label = report_group_label(ctx, grp, NULL, 1);
        if (grp->label == NULL) {
            return report_fail(ctx, "grouping runs: out of memory");
        }
        if (report_group_stats(ctx, grp) != 0) {
            return report_fail(ctx, "grouping runs: out of memory");
        }
    }
    ctx->res.groups = ctx->group_count;
    return CB_REPORT_OK;
}

void report_free_runs(report_ctx *ctx)
{
    for (size_t i = 0; i < ctx->run_count; i++) {
        report_run *r = &ctx->runs[i];
        free(r->scenario);
        free(r->mode);
        free(r->transport);
        free(r->placement);
        free(r->status);
        for (size_t p = 0; p < r->param_count; p++) {
            free(r->params[p].key);
            free(r->params[p].value);
        }
        free(r->params);
    }
    for (size_t g = 0; g < ctx->group_count; g++) {
        free(ctx->groups[g].identity);
        free(ctx->groups[g].match);
        free(ctx->groups[g].label);
        free(ctx->groups[g].runs);
    }
    free(ctx->runs);
    free(ctx->groups);
}

/* ---- requests -------------------------------------------------------------------------------- */

/*
 * One pass over a run's requests with an outcome, in latency order (SQL sorts; the report
 * buckets by time in C). The code column classifies the outcome once, in SQL.
 */
static const char report_samples_sql[] =
    "SELECT issue_ns, complete_ns, latency_ns,"
    " CASE WHEN outcome = 'timeout' THEN 3 WHEN op = 'get' AND outcome = 'hit' THEN 1"
    " WHEN op = 'get' AND outcome = 'miss' THEN 2 ELSE 0 END"
    " FROM requests WHERE run_id = ?1 AND complete_ns IS NOT NULL ORDER BY latency_ns";

static int report_samples_reserve(report_samples *s, size_t cap)
{
    double *lat = realloc(s->lat_us, cap * sizeof *lat);
    if (lat == NULL) {
        return -1;
    }
    s->lat_us = lat;
    int64_t *complete = realloc(s->complete_ns, cap * sizeof *complete);
    if (complete == NULL) {
        return -1;
    }
    s->complete_ns = complete;
    unsigned char *code = realloc(s->code, cap);
    if (code == NULL) {
        return -1;
    }
    s->code = code;
    return 0;
}

static void report_samples_add(report_samples *s, sqlite3_stmt *st)
{
    int64_t issue = sqlite3_column_int64(st, 0);
    int64_t complete = sqlite3_column_int64(st, 1);
    int code = sqlite3_column_int(st, 3);
    if (s->count == 0 || issue < s->start_ns) {
        s->start_ns = issue;
    }
    if (s->count == 0 || complete > s->end_ns) {
        s->end_ns = complete;
    }
    s->complete_ns[s->count] = complete;
    s->code[s->count] = (unsigned char)code;
    s->count++;
    if (code != REPORT_CODE_TIMEOUT) {
        s->lat_us[s->lat_count++] = (double)sqlite3_column_int64(st, 2) / 1000.0;
    }
}

int report_read_samples(report_ctx *ctx, int64_t run_id, report_samples *out)
{
    *out = (report_samples){0};
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ctx->db, report_samples_sql, -1, &st, NULL) != SQLITE_OK) {
        return report_fail(ctx, "reading requests: %s", sqlite3_errmsg(ctx->db));
    }
    size_t cap = 0;
    int rc = sqlite3_bind_int64(st, 1, run_id);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->count == cap) {
            cap = cap > 0 ? 2 * cap : 4096;
            if (report_samples_reserve(out, cap) != 0) {
                rc = SQLITE_NOMEM;
                break;
            }
        }
        report_samples_add(out, st);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        report_samples_free(out);
        return rc == SQLITE_NOMEM ? report_fail(ctx, "reading requests of run %lld: out of memory",
                                                (long long)run_id)
                                  : report_fail(ctx, "reading requests of run %lld: %s",
                                                (long long)run_id, sqlite3_errmsg(ctx->db));
    }
    return CB_REPORT_OK;
}

void report_samples_free(report_samples *s)
{
    free(s->lat_us);
    free(s->complete_ns);
    free(s->code);
    *s = (report_samples){0};
}

int report_read_group_latencies(report_ctx *ctx, const report_group *g, double **out, size_t *count)
{
    double *pooled = NULL;
    size_t n = 0;
    for (size_t i = 0; i < g->run_count; i++) {
        report_samples s;
        if (report_read_samples(ctx, ctx->runs[g->runs[i]].id, &s) != CB_REPORT_OK) {
            free(pooled);
            return CB_REPORT_ERROR;
        }
        double *merged = malloc((n + s.lat_count + 1) * sizeof *merged);
        if (merged == NULL) {
            report_samples_free(&s);
            free(pooled);
            return report_fail(ctx, "pooling latencies: out of memory");
        }
        report_merge_sorted(pooled, n, s.lat_us, s.lat_count, merged);
        n += s.lat_count;
        free(pooled);
        pooled = merged;
        report_samples_free(&s);
    }
    *out = pooled;
    *count = n;
    return CB_REPORT_OK;
}

/* ---- events ---------------------------------------------------------------------------------- */

int report_event_is_fault(const char *kind)
{
    static const char *const faults[] = {"crash", "recover",     "partition",
                                         "heal",  "link_change", "fault"};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        if (strcmp(kind, faults[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

int report_read_events(report_ctx *ctx, int64_t run_id, report_event **out, size_t *count)
{
    static const char sql[] = "SELECT time_ns, coalesce(node, ''), kind, coalesce(detail, '')"
                              " FROM events WHERE run_id = ?1 ORDER BY time_ns, id";
    *out = NULL;
    *count = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ctx->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return report_fail(ctx, "reading events: %s", sqlite3_errmsg(ctx->db));
    }
    size_t cap = 0;
    int rc = sqlite3_bind_int64(st, 1, run_id);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*count == cap) {
            cap = cap > 0 ? 2 * cap : 16;
            report_event *grown = realloc(*out, cap * sizeof *grown);
            if (grown == NULL) {
                rc = SQLITE_NOMEM;
                break;
            }
            *out = grown;
        }
        report_event *ev = *out;
        ev[*count] = (report_event){sqlite3_column_int64(st, 0), report_column_text(st, 1),
                                    report_column_text(st, 2), report_column_text(st, 3)};
        (*count)++;
        rc = ev[*count - 1].kind != NULL ? SQLITE_OK : SQLITE_NOMEM;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        report_events_free(*out, *count);
        *out = NULL;
        *count = 0;
        return report_fail(ctx, "reading events of run %lld: %s", (long long)run_id,
                           rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(ctx->db));
    }
    return CB_REPORT_OK;
}

void report_events_free(report_event *ev, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(ev[i].node);
        free(ev[i].kind);
        free(ev[i].detail);
    }
    free(ev);
}
