/* cb_merge.c: append one results database to another; see cb_merge.h. */
#include "cb_merge.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>
#include <sqlite3.h>

#include "cb_results.h"

#define MERGE_BUSY_TIMEOUT_MS 60000

/* Rows copied in order; the generated latency_ns column is left out (SQLite computes it). */
static const char merge_runs_sql[] =
    "INSERT INTO main.runs (id, scenario_name, scenario_text, varied_params, mode, transport,"
    " placement, seed, started_at, wall_seconds, sim_seconds, software_version, status,"
    " requests_planned) SELECT id + ?1, scenario_name, scenario_text, varied_params, mode,"
    " transport, placement, seed, started_at, wall_seconds, sim_seconds, software_version,"
    " status, requests_planned FROM src.runs ORDER BY id";
static const char merge_requests_sql[] =
    "INSERT INTO main.requests (run_id, seq, client, server, op, key, value_bytes, issue_ns,"
    " complete_ns, outcome, status, attempts, bytes_sent, bytes_received)"
    " SELECT run_id + ?1, seq, client, server, op, key, value_bytes, issue_ns, complete_ns,"
    " outcome, status, attempts, bytes_sent, bytes_received FROM src.requests"
    " WHERE run_id IN (SELECT id FROM src.runs) ORDER BY run_id, seq";
/* Version 3 inputs also carry each request's version and value digest. */
static const char merge_requests_v3_sql[] =
    "INSERT INTO main.requests (run_id, seq, client, server, op, key, value_bytes, issue_ns,"
    " complete_ns, outcome, status, attempts, bytes_sent, bytes_received, version,"
    " value_digest) SELECT run_id + ?1, seq, client, server, op, key, value_bytes, issue_ns,"
    " complete_ns, outcome, status, attempts, bytes_sent, bytes_received, version,"
    " value_digest FROM src.requests"
    " WHERE run_id IN (SELECT id FROM src.runs) ORDER BY run_id, seq";
static const char merge_events_sql[] =
    "INSERT INTO main.events (run_id, time_ns, node, kind, detail)"
    " SELECT run_id + ?1, time_ns, node, kind, detail FROM src.events"
    " WHERE run_id IN (SELECT id FROM src.runs) ORDER BY id";
static const char merge_summary_sql[] =
    "INSERT INTO main.run_summary (run_id, requests, completed, duration_s, throughput_rps,"
    " p50_us, p90_us, p99_us, p999_us, mean_us, hit_ratio, error_rate, timeout_rate,"
    " bytes_per_request, retries, stale_reads) SELECT run_id + ?1, requests, completed,"
    " duration_s, throughput_rps, p50_us, p90_us, p99_us, p999_us, mean_us, hit_ratio,"
    " error_rate, timeout_rate, bytes_per_request, retries, stale_reads FROM src.run_summary"
    " WHERE run_id IN (SELECT id FROM src.runs) ORDER BY run_id";

/* Placement bench runs (schema version 2), ids shifted by ?1 like runs'. */
static const char merge_placement_runs_sql[] =
    "INSERT INTO main.placement_runs (id, started_at, keys, seed, maglev_table_size,"
    " software_version, notes) SELECT id + ?1, started_at, keys, seed, maglev_table_size,"
    " software_version, notes FROM src.placement_runs ORDER BY id";
static const char merge_placement_results_sql[] =
    "INSERT INTO main.placement_results SELECT placement_run_id + ?1, strategy, nodes,"
    " max_over_mean, cv, moved_add_ratio, moved_remove_ratio, moved_remove_last_ratio,"
    " lookup_ns_r1, lookup_ns_r3 FROM src.placement_results"
    " WHERE placement_run_id IN (SELECT id FROM src.placement_runs)";
static const char merge_placement_load_sql[] =
    "INSERT INTO main.placement_load SELECT placement_run_id + ?1, strategy, nodes, node, keys"
    " FROM src.placement_load WHERE placement_run_id IN (SELECT id FROM src.placement_runs)";

static int merge_fail(char *errbuf, size_t errcap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errcap > 0) {
        (void)vsnprintf(errbuf, errcap, fmt, ap);
    }
    va_end(ap);
    return CB_RESULTS_ERROR;
}

/* Run `sql` with ?1 bound to `offset` (if it has a parameter); *changes gets the rows. */
static int merge_exec(sqlite3 *db, const char *sql, int64_t offset, uint64_t *changes)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_bind_parameter_count(st) > 0) {
        rc = sqlite3_bind_int64(st, 1, offset);
    }
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        }
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    if (changes != NULL) {
        *changes = (uint64_t)sqlite3_changes(db);
    }
    return rc;
}

/* The single integer `sql` gives, or -1. */
static int64_t merge_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

/* Copy the placement tables (version 2 inputs), inside merge_copy's transaction. */
static int merge_placement(sqlite3 *db)
{
    int64_t offset = merge_int(db, "SELECT coalesce(max(id), 0) FROM main.placement_runs");
    int rc = merge_exec(db, merge_placement_runs_sql, offset, NULL);
    if (rc == SQLITE_OK) {
        rc = merge_exec(db, merge_placement_results_sql, offset, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = merge_exec(db, merge_placement_load_sql, offset, NULL);
    }
    return rc;
}

/* Check the attached input, then copy its four tables inside one write transaction. */
static int merge_copy(sqlite3 *db, const char *in_path, cb_merge_stats *s, char *errbuf,
                      size_t errcap)
{
    int64_t version = merge_int(db, "PRAGMA src.user_version");
    if (version < 1 || version > CB_RESULTS_SCHEMA_VERSION) {
        return merge_fail(errbuf, errcap,
                          "%s: not a results database of schema version 1 to %d (it has %lld)",
                          in_path, CB_RESULTS_SCHEMA_VERSION, (long long)version);
    }
    if (merge_exec(db, "BEGIN IMMEDIATE", 0, NULL) != SQLITE_OK) {
        return merge_fail(errbuf, errcap, "%s", sqlite3_errmsg(db));
    }
    s->id_offset = merge_int(db, "SELECT coalesce(max(id), 0) FROM main.runs");
    int rc = merge_exec(db, merge_runs_sql, s->id_offset, &s->runs);
    if (rc == SQLITE_OK) {
        rc = merge_exec(db, version >= 3 ? merge_requests_v3_sql : merge_requests_sql, s->id_offset,
                        &s->requests);
    }
    if (rc == SQLITE_OK) {
        rc = merge_exec(db, merge_events_sql, s->id_offset, &s->events);
    }
    if (rc == SQLITE_OK) {
        rc = merge_exec(db, merge_summary_sql, s->id_offset, NULL);
    }
    if (rc == SQLITE_OK && version >= 2) {
        rc = merge_placement(db);
    }
    if (rc == SQLITE_OK) {
        rc = merge_exec(db, "COMMIT", 0, NULL);
    }
    if (rc != SQLITE_OK) {
        merge_fail(errbuf, errcap, "%s: %s", in_path, sqlite3_errmsg(db));
        (void)merge_exec(db, "ROLLBACK", 0, NULL); /* fails only if nothing is open */
        return CB_RESULTS_ERROR;
    }
    return CB_RESULTS_OK;
}

/* Make sure out_path exists with this build's schema, and that in_path is another file. */
static int merge_check_files(const char *out_path, const char *in_path, char *errbuf, size_t errcap)
{
    struct stat in_st, out_st;
    if (stat(in_path, &in_st) != 0 || !S_ISREG(in_st.st_mode)) {
        return merge_fail(errbuf, errcap, "%s: no such results database", in_path);
    }
    cb_results *r = NULL;
    if (cb_results_open(out_path, &r, errbuf, errcap) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    cb_results_close(r);
    if (stat(out_path, &out_st) == 0 && out_st.st_dev == in_st.st_dev &&
        out_st.st_ino == in_st.st_ino) {
        return merge_fail(errbuf, errcap, "%s: cannot merge a database into itself", in_path);
    }
    return CB_RESULTS_OK;
}

int cb_merge_file(const char *out_path, const char *in_path, cb_merge_stats *stats, char *errbuf,
                  size_t errcap)
{
    cb_merge_stats s;
    memset(&s, 0, sizeof s);
    if (merge_check_files(out_path, in_path, errbuf, errcap) != CB_RESULTS_OK) {
        return CB_RESULTS_ERROR;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_open_v2(out_path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) {
        (void)sqlite3_busy_timeout(db, MERGE_BUSY_TIMEOUT_MS); /* cannot fail when open */
        rc = sqlite3_prepare_v2(db, "ATTACH ?1 AS src", -1, &st, NULL);
    }
    if (rc == SQLITE_OK &&
        (rc = sqlite3_bind_text(st, 1, in_path, -1, SQLITE_STATIC)) == SQLITE_OK) {
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    int result = CB_RESULTS_ERROR;
    if (rc != SQLITE_OK) {
        merge_fail(errbuf, errcap, "%s: %s", db != NULL ? in_path : out_path,
                   db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    } else {
        result = merge_copy(db, in_path, &s, errbuf, errcap);
    }
    sqlite3_close(db); /* detaches src */
    if (stats != NULL) {
        *stats = s;
    }
    return result;
}

void cb_merge_mean_ci95(const double *x, size_t n, double *mean, double *half_width)
{
    *mean = n > 0 ? gsl_stats_mean(x, 1, n) : NAN;
    *half_width = NAN;
    if (n > 1) {
        double sd = gsl_stats_sd_m(x, 1, n, *mean);
        *half_width = gsl_cdf_tdist_Pinv(0.975, (double)(n - 1)) * sd / sqrt((double)n);
    }
}
