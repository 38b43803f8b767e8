/*
 * cli_check.c: `cachebed check SCENARIO --seeds N` — run SCENARIO under N seeds, each with
 * its own random fault schedule (crash/recover, partition/heal, loss bursts, latency
 * spikes) drawn from the seed, and check every run's invariants (analysis/cb_check.h);
 * `cachebed check --verify DB --run ID` checks a run already in a database. docs/check.md.
 *
 * Faults cannot be given with --set, so each seed gets a scenario file of its own: the
 * original text without its [faults] section (and without a warmup, so that every request
 * is recorded), plus the generated [faults]. It lives in check-artifacts/ next to the
 * output database, is run by a `cachebed run` child into a per-job database (cli_jobs.c),
 * and is kept only when its run broke an invariant: it is the reproducer.
 */
#include "cb_cli.h"

#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cb_check.h"
#include "cb_err.h"
#include "cb_merge.h"
#include "cb_rng.h"
#include "cb_scenario.h"

#define CHK_SEEDS_MAX   10000u
#define CHK_FAULTS_MAX  64u
#define CHK_PATH_BYTES  4096u
#define CHK_SCHED_BYTES 160u
#define CHK_REPORT_MAX  5u
#define CHK_FAULT_SALT  0x636865636b66756cull /* "checkful": fault rng apart from the run's */

const char cb_cli_check_help[] =
    "usage: cachebed check SCENARIO [--seeds N] [--jobs J] [-o CHECK.db] [--faults K] [--quiet]\n"
    "       cachebed check --verify RESULTS.db --run ID\n"
    "\n"
    "Runs SCENARIO under N seeds (the scenario's seed + 0 .. N-1). Each seed gets its own\n"
    "fault schedule of K faults drawn from the seed: a server crash and recovery, a\n"
    "partition of a server from the clients and its heal, a loss burst or a latency spike\n"
    "on a server's link. Each run is a `cachebed run` child (J at a time) of a scenario\n"
    "file written to check-artifacts/ next to CHECK.db: the original with its [faults]\n"
    "replaced and no warmup. After the runs, each is checked (docs/check.md): one outcome\n"
    "per request, no read of a value never written, no acknowledged write lost where the\n"
    "replication policy promises it survives the faults that happened, stale reads only\n"
    "where allowed and counted exactly. Every violation is printed with the command that\n"
    "replays its seed; the scenario files of failing seeds are kept, the others removed.\n"
    "\n"
    "  --seeds N     seeds (default 10)\n"
    "  --jobs J      runs at a time (default: the number of CPUs)\n"
    "  -o PATH       results database (default check.db; runs are appended)\n"
    "  --faults K    faults per schedule, 0..64 (default 4)\n"
    "  --verify DB   check run --run ID of an existing database instead (no runs)\n"
    "  --quiet       no progress lines\n"
    "\n"
    "Exit status: 0 no violation, 1 a violation or a failed run, 2 bad usage.\n";

typedef struct chk_seed {
    uint64_t seed;
    char path[CHK_PATH_BYTES];     /* the scenario file of this seed */
    char db[CHK_PATH_BYTES + 32];  /* the job's database */
    char log[CHK_PATH_BYTES + 32]; /* the job's stderr */
    char seed_text[32];
    char schedule[CHK_SCHED_BYTES]; /* "crash s1, loss s2, ..." */
    const char *argv[9];
    int64_t run_id;
    cb_check_result result;
} chk_seed;

typedef struct chk {
    const char *scenario;
    const char *db_path;
    const char *verify;
    int64_t verify_run;
    uint32_t seeds;
    uint32_t faults;
    uint32_t jobs_max;
    int quiet;
    cb_plan plan;
    char *text; /* the scenario file */
    chk_seed *runs;
    cb_cli_job *jobs;
    char artifacts[CHK_PATH_BYTES];
    char tmpdir[CHK_PATH_BYTES];
    char exe[CHK_PATH_BYTES];
} chk;

static volatile sig_atomic_t chk_stop;

static void chk_on_signal(int sig)
{
    (void)sig;
    chk_stop = 1;
}

__attribute__((format(printf, 1, 2))) static int chk_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cachebed check: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (try 'cachebed check --help')\n", stderr);
    va_end(ap);
    return CB_CLI_EXIT_USAGE;
}

static int chk_count(const char *opt, const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < min || v > max) {
        return chk_usage("%s '%s': expected a whole number %llu..%llu", opt, text,
                         (unsigned long long)min, (unsigned long long)max);
    }
    *out = v;
    return CB_CLI_EXIT_OK;
}

static int chk_option(chk *c, const char *opt, const char *v)
{
    uint64_t n = 0;
    int rc = CB_CLI_EXIT_OK;
    if (strcmp(opt, "--seeds") == 0 && (rc = chk_count(opt, v, 1, CHK_SEEDS_MAX, &n)) == 0) {
        c->seeds = (uint32_t)n;
    } else if (strcmp(opt, "--jobs") == 0 && (rc = chk_count(opt, v, 1, 1024, &n)) == 0) {
        c->jobs_max = (uint32_t)n;
    } else if (strcmp(opt, "--faults") == 0 &&
               (rc = chk_count(opt, v, 0, CHK_FAULTS_MAX, &n)) == 0) {
        c->faults = (uint32_t)n;
    } else if (strcmp(opt, "--run") == 0 && (rc = chk_count(opt, v, 1, INT64_MAX, &n)) == 0) {
        c->verify_run = (int64_t)n;
    } else if (strcmp(opt, "-o") == 0) {
        c->db_path = v;
    } else if (strcmp(opt, "--verify") == 0) {
        c->verify = v;
    }
    return rc;
}

static int chk_parse(chk *c, int argc, char **argv)
{
    static const char *const valued[] = {"--seeds", "--jobs", "--faults",
                                         "--run",   "-o",     "--verify"};
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        int has_value = 0, rc = CB_CLI_EXIT_OK;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) {
            has_value |= strcmp(arg, valued[k]) == 0;
        }
        if (has_value) {
            if (i + 1 >= argc) {
                return chk_usage("option '%s' needs a value", arg);
            }
            rc = chk_option(c, arg, argv[++i]);
        } else if (strcmp(arg, "--quiet") == 0) {
            c->quiet = 1;
        } else if (arg[0] == '-') {
            return chk_usage("unknown option '%s'", arg);
        } else if (c->scenario == NULL) {
            c->scenario = arg;
        } else {
            return chk_usage("one scenario at a time ('%s' is extra)", arg);
        }
        if (rc != CB_CLI_EXIT_OK) {
            return rc;
        }
    }
    if (c->verify != NULL) {
        return c->scenario == NULL && c->verify_run > 0
                   ? CB_CLI_EXIT_OK
                   : chk_usage("--verify DB needs --run ID and no scenario");
    }
    return c->scenario != NULL ? CB_CLI_EXIT_OK : chk_usage("no scenario given");
}

/* ---- what the checker is told ------------------------------------------------------- */

/* The largest value a workload writes, or 0 when it cannot say (traces, heavy tails). */
static uint64_t chk_value_max(const cb_plan_workload *w)
{
    if (w->trace[0] != '\0') {
        return 0;
    }
    if (w->value_dist == CB_VALUE_DIST_FIXED) {
        return w->value_bytes;
    }
    if (w->value_dist == CB_VALUE_DIST_UNIFORM) {
        return w->value_bytes_max;
    }
    return w->value_cap_bytes;
}

static cb_check_config chk_config(const cb_plan *p)
{
    const cb_plan_placement *pl = &p->placement;
    uint32_t r = pl->replicas > 0 ? pl->replicas : 1, majority = r / 2 + 1;
    cb_check_config cfg = {.servers = p->servers.count, .clients = p->clients.count};
    cfg.replicas = r;
    cfg.write_acks = r == 1                                ? 1
                     : pl->write_policy == CB_WRITE_ALL    ? r
                     : pl->write_policy == CB_WRITE_QUORUM ? majority
                                                           : 1;
    cfg.read_answers = r > 1 && pl->read_policy == CB_READ_QUORUM ? majority : 1;
    cfg.quorum_reads = r > 1 && pl->read_policy == CB_READ_QUORUM;
    cfg.all_recorded = p->scenario.warmup_ns == 0;
    /* An item costs its key, its value and the store's header; 128 bytes is generous. */
    uint64_t value_max = chk_value_max(&p->workload), memory_min = UINT64_MAX;
    for (uint32_t s = 0; s < p->servers.count; s++) {
        uint64_t m = p->servers.each[s].memory_bytes;
        memory_min = m < memory_min ? m : memory_min;
    }
    uint64_t item = value_max + p->workload.key_bytes + 128;
    cfg.no_eviction = value_max > 0 && p->workload.keys <= memory_min / item;
    /* After a fault ends, a server may stay ejected (eject_for) and be found down again by
     * a probe: count it disturbed for that long, plus a client's full retry budget. */
    uint64_t retry_ns = p->transport.timeout_ns * (p->transport.attempts + 1u);
    cfg.margin_ns = pl->eject_for_ns + retry_ns * (pl->eject_after + 1u);
    return cfg;
}

/* ---- fault schedules ------------------------------------------------------------------ */

typedef struct chk_buf {
    char *text;
    size_t len;
    size_t cap;
} chk_buf;

__attribute__((format(printf, 2, 3))) static int chk_put(chk_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->text + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        return -1;
    }
    b->len += (size_t)n;
    return 0;
}

/* One fault of the schedule, inside [start_ns, end_ns): its event, then its end. */
static int chk_fault(const cb_plan *p, cb_rng *rng, uint64_t start_ns, uint64_t end_ns, chk_buf *b,
                     chk_buf *sched)
{
    static const char *const kinds[] = {"crash", "partition", "loss", "latency"};
    uint32_t kind = (uint32_t)cb_rng_below(rng, 4);
    uint32_t s = (uint32_t)cb_rng_below(rng, p->servers.count);
    uint32_t loss = p->network.loss_ppm;
    unsigned long long a = start_ns, z = end_ns;
    int rc = chk_put(sched, "%s%s s%u", sched->len > 0 ? ", " : "", kinds[kind], s);
    if (rc == 0 && kind == 0) {
        rc = chk_put(b, "at = %lluns crash server%u\nat = %lluns recover server%u\n", a, s, z, s);
    } else if (rc == 0 && kind == 1) {
        rc =
            chk_put(b, "at = %lluns partition {server%u} | {client*}\nat = %lluns heal\n", a, s, z);
    } else if (rc == 0 && kind == 2) {
        rc =
            chk_put(b,
                    "at = %lluns link server%u loss=%u%%\nat = %lluns link server%u "
                    "loss=%u.%04u%%\n",
                    a, s, 5u + (uint32_t)cb_rng_below(rng, 46), z, s, loss / 10000u, loss % 10000u);
    } else if (rc == 0) {
        rc = chk_put(b,
                     "at = %lluns link server%u latency=%lluus\nat = %lluns link server%u "
                     "latency=%lluns\n",
                     a, s, (unsigned long long)(500u + cb_rng_below(rng, 19500)), z, s,
                     (unsigned long long)p->network.latency_ns);
    }
    return rc;
}

/* The [faults] of seed `seed`: K faults, one per equal slot of the middle 80% of the run,
 * each starting in the first quarter of its slot and lasting a quarter to three quarters of
 * it, so no two overlap and every one ends before the run does. */
static int chk_schedule(const chk *c, uint64_t seed, chk_buf *b, chk_buf *sched)
{
    cb_rng rng;
    cb_rng_init(&rng, cb_rng_mix64(seed ^ CHK_FAULT_SALT));
    uint64_t d = c->plan.scenario.duration_ns, slot = d / 10 * 8 / (c->faults ? c->faults : 1);
    int rc = chk_put(b, "\n[faults]\n; generated by cachebed check for seed %llu\n",
                     (unsigned long long)seed);
    for (uint32_t k = 0; rc == 0 && k < c->faults; k++) {
        uint64_t base = d / 10 + k * slot;
        uint64_t start = base + cb_rng_below(&rng, slot / 4 + 1);
        uint64_t end = start + slot / 4 + cb_rng_below(&rng, slot / 2 + 1);
        rc = chk_fault(&c->plan, &rng, start, end, b, sched);
    }
    return rc;
}

/* Whether a line starts the section `name` ("[name]" after blanks). */
static int chk_section(const char *line, size_t len, const char **name)
{
    while (len > 0 && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    if (len == 0 || *line != '[') {
        return 0;
    }
    *name = line + 1;
    return 1;
}

/* The original text without its [faults] section and [scenario] warmup. */
static int chk_strip(const char *text, chk_buf *b)
{
    int in_faults = 0, in_scenario = 0;
    for (const char *p = text; *p != '\0';) {
        size_t len = strcspn(p, "\n");
        const char *name = NULL, *key = p + strspn(p, " \t");
        if (chk_section(p, len, &name)) {
            in_faults = strncmp(name, "faults]", 7) == 0;
            in_scenario = strncmp(name, "scenario]", 9) == 0;
        }
        int drop = in_faults || (in_scenario && strncmp(key, "warmup", 6) == 0 &&
                                 strchr(" \t=", key[6]) != NULL);
        if (!drop && chk_put(b, "%.*s\n", (int)len, p) != 0) {
            return -1;
        }
        p += len + (p[len] == '\n');
    }
    return 0;
}

/* ---- runs ----------------------------------------------------------------------------- */

static int chk_write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "cachebed check: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Seed i's scenario file, paths and argv. */
static int chk_prepare_seed(chk *c, uint32_t i, chk_buf *b)
{
    chk_seed *r = &c->runs[i];
    chk_buf sched = {r->schedule, 0, sizeof r->schedule};
    r->seed = c->plan.scenario.seed + i;
    b->len = 0;
    int n = snprintf(r->path, sizeof r->path, "%s/%s-seed%llu.ini", c->artifacts,
                     c->plan.scenario.name, (unsigned long long)r->seed);
    (void)snprintf(r->db, sizeof r->db, "%s/job-%u.db", c->tmpdir, i); /* tmpdir is short */
    (void)snprintf(r->log, sizeof r->log, "%s/job-%u.log", c->tmpdir, i);
    snprintf(r->seed_text, sizeof r->seed_text, "%llu", (unsigned long long)r->seed);
    if (n < 0 || (size_t)n >= sizeof r->path ||
        chk_put(b, "; cachebed check: %s with a generated [faults] (seed %llu)\n", c->scenario,
                (unsigned long long)r->seed) != 0 ||
        chk_strip(c->text, b) != 0 || chk_schedule(c, r->seed, b, &sched) != 0) {
        fprintf(stderr, "cachebed check: seed %llu: scenario too large\n",
                (unsigned long long)r->seed);
        return -1;
    }
    const char *argv[] = {c->exe, "run",    r->path,      "--quiet", "-o",
                          r->db,  "--seed", r->seed_text, NULL};
    memcpy(r->argv, argv, sizeof argv);
    c->jobs[i] = (cb_cli_job){.argv = r->argv, .log_path = r->log, .status = -1};
    return chk_write_file(r->path, b->text, b->len);
}

static void chk_job_ended(void *user, uint32_t idx, uint32_t done)
{
    chk *c = user;
    const cb_cli_job *j = &c->jobs[idx];
    if (!c->quiet || j->status != 0) {
        fprintf(stderr, "[%u/%u] seed %llu: %s\n", done, c->seeds,
                (unsigned long long)c->runs[idx].seed, j->status == 0 ? "ran" : "FAILED");
    }
    if (j->status != 0) {
        char text[2048];
        FILE *f = fopen(j->log_path, "r");
        size_t n = f != NULL ? fread(text, 1, sizeof text - 1, f) : 0;
        text[n] = '\0';
        fprintf(stderr, "%s", text);
        if (f != NULL) {
            fclose(f);
        }
    }
}

/* Merge every successful job's database in seed order; remove the job files. */
static int chk_merge(chk *c)
{
    char err[512], path[CHK_PATH_BYTES + 64];
    int status = 0;
    for (uint32_t i = 0; i < c->seeds; i++) {
        chk_seed *r = &c->runs[i];
        cb_merge_stats s;
        if (c->jobs[i].status == 0 && cb_merge_file(c->db_path, r->db, &s, err, sizeof err) != 0) {
            fprintf(stderr, "cachebed check: %s\n", err);
            status = -1;
        } else if (c->jobs[i].status == 0 && s.runs == 1) {
            r->run_id = s.id_offset + 1; /* a job's database holds its one run, id 1 */
        }
        static const char *const exts[] = {"", "-wal", "-shm"};
        for (size_t e = 0; e < sizeof exts / sizeof exts[0]; e++) {
            snprintf(path, sizeof path, "%s%s", r->db, exts[e]);
            (void)unlink(path); /* absent files are fine */
        }
        (void)unlink(r->log);
    }
    (void)rmdir(c->tmpdir);
    return status;
}

/* ---- checking ------------------------------------------------------------------------- */

typedef struct chk_where {
    uint64_t seed;
    const char *path;
} chk_where;

static void chk_on_violation(void *user, cb_check_invariant inv, const char *details)
{
    const chk_where *w = user;
    printf("seed %llu: %s: %s — reproduce: cachebed run %s --seed %llu\n",
           (unsigned long long)w->seed, cb_check_name(inv), details, w->path,
           (unsigned long long)w->seed);
}

/* The run's scenario text and seed (text malloc'd), or -1. */
static int chk_run_text(sqlite3 *db, int64_t run_id, char **text, uint64_t *seed)
{
    sqlite3_stmt *st = NULL;
    int rc =
        sqlite3_prepare_v2(db, "SELECT scenario_text, seed FROM runs WHERE id = ?1", -1, &st, NULL);
    *text = NULL;
    if (rc == SQLITE_OK && sqlite3_bind_int64(st, 1, run_id) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL) {
        *text = strdup((const char *)sqlite3_column_text(st, 0));
        *seed = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (*text == NULL) {
        fprintf(stderr, "cachebed check: run %lld: no scenario text\n", (long long)run_id);
        return -1;
    }
    return 0;
}

/* Check one run of `db`; violations name `path` as the reproducer. -1: cannot check. */
static int chk_check_run(sqlite3 *db, int64_t run_id, const char *path, cb_check_result *out)
{
    static cb_diag diag; /* about 20 KiB */
    char *text = NULL, err[512];
    uint64_t seed = 0;
    cb_plan plan;
    if (chk_run_text(db, run_id, &text, &seed) != 0) {
        return -1;
    }
    int rc = cb_scenario_load_string("scenario_text", text, strlen(text), &plan, &diag);
    free(text);
    if (rc != CB_ERR_OK) {
        cb_diag_print(&diag, stderr);
        return -1;
    }
    cb_check_config cfg = chk_config(&plan);
    cb_plan_free(&plan);
    chk_where where = {seed, path};
    if (cb_check_run(db, run_id, &cfg, CHK_REPORT_MAX, chk_on_violation, &where, out, err,
                     sizeof err) != 0) {
        fprintf(stderr, "cachebed check: %s\n", err);
        return -1;
    }
    return 0;
}

static void chk_print_row(const char *seed, const char *sched, const cb_check_result *r,
                          const char *note)
{
    printf("%-8s | %-54s | %8llu | %8llu | %8llu | %8llu | %10llu%s\n", seed, sched,
           (unsigned long long)r->requests, (unsigned long long)r->stale_allowed,
           (unsigned long long)r->stale_hits, (unsigned long long)r->stale_events,
           (unsigned long long)r->violations, note);
}

static void chk_print_table(const chk *c)
{
    cb_check_result total = {0};
    char seed[32];
    printf("%-8s | %-54s | %8s | %8s | %8s | %8s | %10s\n", "seed", "faults applied", "requests",
           "stale ok", "stale hit", "stale ev", "violations");
    printf(
        "---------+--------------------------------------------------------+----------+----------+"
        "----------+----------+-----------\n");
    for (uint32_t i = 0; i < c->seeds; i++) {
        const chk_seed *r = &c->runs[i];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->seed);
        chk_print_row(seed, r->schedule, &r->result, r->run_id == 0 ? " (run FAILED)" : "");
        total.requests += r->result.requests;
        total.stale_allowed += r->result.stale_allowed;
        total.stale_hits += r->result.stale_hits;
        total.stale_events += r->result.stale_events;
        total.violations += r->result.violations;
    }
    chk_print_row("total", "", &total, "");
    if (c->seeds > 0 && c->runs[0].result.skipped != 0) {
        printf("not checked:%s%s%s\n",
               c->runs[0].result.skipped & (1u << CB_CHECK_PHANTOM_READ) ? " phantom-read" : "",
               c->runs[0].result.skipped & (1u << CB_CHECK_STALE_READ) ? " stale-read" : "",
               c->runs[0].result.skipped & (1u << CB_CHECK_LOST_WRITE)
                   ? " lost-write (values may be evicted)"
                   : "");
    }
}

/* ---- the verb ------------------------------------------------------------------------- */

/* dirname(db)/check-artifacts, created if missing. */
static int chk_artifacts_dir(const char *db_path, char *out, size_t cap)
{
    char copy[CHK_PATH_BYTES];
    snprintf(copy, sizeof copy, "%s", db_path);
    int n = snprintf(out, cap, "%s/check-artifacts", dirname(copy));
    if (n < 0 || (size_t)n >= cap || (mkdir(out, 0777) != 0 && errno != EEXIST)) {
        fprintf(stderr, "cachebed check: cannot make %s: %s\n", out, strerror(errno));
        return -1;
    }
    return 0;
}

static int chk_verify(chk *c)
{
    sqlite3 *db = NULL;
    char path[CHK_PATH_BYTES + 64], *text = NULL;
    uint64_t seed = 0;
    cb_check_result r;
    if (sqlite3_open_v2(c->verify, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        chk_artifacts_dir(c->verify, c->artifacts, sizeof c->artifacts) != 0 ||
        chk_run_text(db, c->verify_run, &text, &seed) != 0) {
        fprintf(stderr, "cachebed check: %s: cannot read run %lld\n", c->verify,
                (long long)c->verify_run);
        sqlite3_close(db);
        return CB_CLI_EXIT_FAILED;
    }
    snprintf(path, sizeof path, "%s/run%lld.ini", c->artifacts, (long long)c->verify_run);
    int rc = chk_write_file(path, text, strlen(text));
    free(text);
    rc = rc == 0 ? chk_check_run(db, c->verify_run, path, &r) : rc;
    sqlite3_close(db);
    if (rc != 0) {
        return CB_CLI_EXIT_FAILED;
    }
    printf("run %lld (seed %llu): %llu requests, %llu faults, %llu allowed stale misses, %llu "
           "allowed stale hits (%llu hits checked by value), %llu stale_read events, %llu "
           "violations\n",
           (long long)c->verify_run, (unsigned long long)seed, (unsigned long long)r.requests,
           (unsigned long long)r.faults, (unsigned long long)r.stale_allowed,
           (unsigned long long)r.stale_hits, (unsigned long long)r.digests,
           (unsigned long long)r.stale_events, (unsigned long long)r.violations);
    if (r.violations == 0) {
        (void)unlink(path); /* only failing runs keep their reproducer */
    }
    return r.violations == 0 ? CB_CLI_EXIT_OK : CB_CLI_EXIT_FAILED;
}

static char *chk_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text = f != NULL ? malloc((size_t)1 << 20 | 1) : NULL;
    size_t n = text != NULL ? fread(text, 1, (size_t)1 << 20, f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    if (text != NULL) {
        text[n] = '\0';
    }
    return text;
}

/* Plan, text, directories and every seed's scenario file. */
static int chk_prepare(chk *c)
{
    static cb_diag diag;
    static char buf[(1u << 20) + 16384];
    chk_buf b = {buf, 0, sizeof buf};
    if (cb_scenario_load(c->scenario, &c->plan, &diag) != CB_ERR_OK) {
        cb_diag_print(&diag, stderr);
        return CB_CLI_EXIT_FAILED;
    }
    if (c->faults > 0 && c->plan.scenario.duration_ns == 0) {
        fprintf(stderr, "cachebed check: %s: faults need a [scenario] duration\n", c->scenario);
        return CB_CLI_EXIT_FAILED;
    }
    ssize_t n = readlink("/proc/self/exe", c->exe, sizeof c->exe - 1);
    c->text = chk_read_file(c->scenario);
    c->runs = calloc(c->seeds, sizeof c->runs[0]);
    c->jobs = calloc(c->seeds, sizeof c->jobs[0]);
    snprintf(c->tmpdir, sizeof c->tmpdir, "%s.jobs-XXXXXX", c->db_path);
    if (n <= 0 || c->text == NULL || c->runs == NULL || c->jobs == NULL ||
        chk_artifacts_dir(c->db_path, c->artifacts, sizeof c->artifacts) != 0 ||
        mkdtemp(c->tmpdir) == NULL) {
        fprintf(stderr, "cachebed check: cannot prepare the runs: %s\n", strerror(errno));
        return CB_CLI_EXIT_FAILED;
    }
    c->exe[n] = '\0';
    for (uint32_t i = 0; i < c->seeds; i++) {
        if (chk_prepare_seed(c, i, &b) != 0) {
            return CB_CLI_EXIT_FAILED;
        }
    }
    return CB_CLI_EXIT_OK;
}

/* Check every merged run; keep the scenario files of failing seeds only. */
static int chk_check_all(chk *c)
{
    sqlite3 *db = NULL;
    int failed = 0;
    if (sqlite3_open_v2(c->db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "cachebed check: %s: cannot read the results\n", c->db_path);
        sqlite3_close(db);
        return 1;
    }
    for (uint32_t i = 0; i < c->seeds; i++) {
        chk_seed *r = &c->runs[i];
        int bad = r->run_id == 0 || chk_check_run(db, r->run_id, r->path, &r->result) != 0 ||
                  r->result.violations > 0;
        if (!bad) {
            (void)unlink(r->path);
        }
        failed |= bad;
    }
    sqlite3_close(db);
    (void)rmdir(c->artifacts); /* fails while it holds reproducers: fine */
    return failed;
}

int cb_cli_check(const cb_cli_verb *verb, int argc, char **argv)
{
    (void)verb;
    static chk c;
    memset(&c, 0, sizeof c);
    c.db_path = "check.db";
    c.seeds = 10;
    c.faults = 4;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    c.jobs_max = cpus > 0 ? (uint32_t)cpus : 1;
    int status = chk_parse(&c, argc, argv);
    if (status != CB_CLI_EXIT_OK || c.verify != NULL) {
        return status != CB_CLI_EXIT_OK ? status : chk_verify(&c);
    }
    status = chk_prepare(&c);
    if (status == CB_CLI_EXIT_OK) {
        signal(SIGINT, chk_on_signal);
        signal(SIGTERM, chk_on_signal);
        int failed =
            cb_cli_jobs_run(c.jobs, c.seeds, c.jobs_max, &chk_stop, chk_job_ended, &c) != 0 ||
            chk_stop;
        failed |= chk_merge(&c) != 0;
        failed |= chk_check_all(&c);
        chk_print_table(&c);
        status = failed ? CB_CLI_EXIT_FAILED : CB_CLI_EXIT_OK;
    }
    cb_plan_free(&c.plan);
    free(c.text);
    free(c.runs);
    free(c.jobs);
    return status;
}
