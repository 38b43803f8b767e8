/*
 * cb_scenario.c: the scenario loader — a line reader in front of libinih, the key handler,
 * the diagnostics list, the checks across keys, and the final plan. See cb_scenario.h.
 *
 * libinih r55 as Debian builds it (PITFALLS.md) gives the handler no line number, cuts lines
 * over 199 characters silently, treats indented lines as continuations and reports only its
 * first error. So our reader (ini_parse_stream's callback) sees every raw line first: it
 * counts lines (the handler runs before the next line is read, so the count is the line
 * being handled), reports over-long lines, control characters, continuation lines, broken
 * section headers and lines without '=', and hands libinih an empty line in their place so
 * numbering stays right and nothing is half-read. Lines it passes on start with no blank,
 * so libinih never joins lines. It also tracks the current section itself, since libinih
 * does not call the handler on a section header.
 */
#include "cb_scenario.h"

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cb_err.h"
#include "cb_scenario_int.h"
#include "cb_units.h"

/* A scenario is a page of text; anything near this size is a mistake (or an attack). */
#define SCEN_FILE_BYTES_MAX (1u << 20)
/* The pseudo-section of [server.N] overrides. */
#define SCEN_SEC_SERVER_N ((int)SCEN_SEC_COUNT)
#define SCEN_SEC_SKIP     (-1)

typedef struct scen_override {
    uint32_t index;
    uint32_t line;
    uint32_t key_line[3]; /* by CB_PLAN_SERVER_* bit number */
    cb_plan_server values;
} scen_override;

typedef struct scen_fault_item {
    cb_fault fault;
    uint32_t line;
} scen_fault_item;

typedef struct scen_ctx {
    const char *name;
    const char *text;
    size_t text_len, pos;
    uint32_t lineno;
    int section;           /* SCEN_SEC_*, SCEN_SEC_SERVER_N or SCEN_SEC_SKIP */
    bool seen_header;      /* a [section] line came (keys before one are errors) */
    char section_name[48]; /* as written, for messages */
    size_t override_idx;   /* with SCEN_SEC_SERVER_N */
    char prev_key[48];     /* the last key line since the section header, "" if none */
    uint32_t prev_key_line;
    uint32_t section_line[SCEN_SEC_COUNT];
    uint32_t key_line[SCEN_KEYS_MAX];
    cb_plan plan; /* staging: schema fields only, owns nothing */
    scen_override *overrides;
    size_t override_count, override_cap;
    scen_fault_item *faults;
    size_t fault_count, fault_cap;
    cb_diag *diag;
    size_t problems;
    bool nomem;
} scen_ctx;

/* ---- diagnostics ---- */

void cb_diag_init(cb_diag *diag)
{
    diag->count = 0;
    diag->omitted = 0;
}

void cb_diag_print(const cb_diag *diag, FILE *out)
{
    for (size_t i = 0; i < diag->count; i++) {
        fprintf(out, "%s\n", diag->messages[i].text);
    }
    if (diag->omitted > 0) {
        fprintf(out, "%zu more problem(s) not shown\n", diag->omitted);
    }
}

/* Stable insertion sort by line: the list is short and mostly in order already. */
static void scen_diag_sort(cb_diag *diag)
{
    for (size_t i = 1; i < diag->count; i++) {
        cb_diag_message m = diag->messages[i];
        size_t j = i;
        for (; j > 0 && diag->messages[j - 1].line > m.line; j--) {
            diag->messages[j] = diag->messages[j - 1];
        }
        diag->messages[j] = m;
    }
}

/* Add `file:line: [section] key: problem` (parts omitted when 0/NULL). */
__attribute__((format(printf, 5, 6))) static void scen_problem(scen_ctx *ctx, uint32_t line,
                                                               const char *section, const char *key,
                                                               const char *fmt, ...)
{
    ctx->problems++;
    if (ctx->diag->count >= CB_DIAG_MESSAGES_MAX) {
        ctx->diag->omitted++;
        return;
    }
    cb_diag_message *m = &ctx->diag->messages[ctx->diag->count++];
    char where[96] = "";
    if (section != NULL) {
        (void)snprintf(where, sizeof where, key != NULL ? " [%s] %s:" : " [%s]:", section, key);
    }
    int n = line > 0
                ? snprintf(m->text, sizeof m->text, "%s:%" PRIu32 ":%s ", ctx->name, line, where)
                : snprintf(m->text, sizeof m->text, "%s:%s ", ctx->name, where);
    size_t used = n > 0 && (size_t)n < sizeof m->text ? (size_t)n : sizeof m->text - 1;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(m->text + used, sizeof m->text - used, fmt, ap); /* a cut is fine */
    va_end(ap);
    m->line = line;
}

static void scen_nomem(scen_ctx *ctx)
{
    if (!ctx->nomem) {
        ctx->nomem = true;
        scen_problem(ctx, ctx->lineno, NULL, NULL, "out of memory");
    }
}

/* Grow an array of `size`-byte items to hold one more; false (and a message) on failure. */
static bool scen_grow(scen_ctx *ctx, void **items, size_t count, size_t *cap, size_t size)
{
    if (count < *cap) {
        return true;
    }
    size_t want = *cap == 0 ? 8 : *cap * 2;
    void *grown = realloc(*items, want * size); /* want <= 2 * 10^4 items: no overflow */
    if (grown == NULL) {
        scen_nomem(ctx);
        return false;
    }
    *items = grown;
    *cap = want;
    return true;
}

/* ---- sections ---- */

/* "did you mean [network]?" among the section names, or "" */
static void scen_suggest_section(const char *name, char *out, size_t out_cap)
{
    size_t best = SCEN_SEC_COUNT, best_dist = 3;
    out[0] = '\0';
    for (size_t i = 0; i < SCEN_SEC_COUNT; i++) {
        size_t d = scen_edit_distance(name, scen_section_names[i], 2);
        if (d < best_dist) {
            best = i;
            best_dist = d;
        }
    }
    if (best < SCEN_SEC_COUNT) {
        (void)snprintf(out, out_cap, " (did you mean [%s]?)", scen_section_names[best]);
    } else if (strncmp(name, "server", 6) == 0) {
        (void)snprintf(out, out_cap, " (per-server overrides are [server.N], N from 0)");
    }
}

/* `server.N`: N without leading zeros, below 10^9. Returns false if `name` is not one. */
static bool scen_server_section_index(const char *name, uint32_t *index)
{
    const char *d = name + 7;
    size_t len = strlen(d);
    if (strncmp(name, "server.", 7) != 0 || len == 0 || len > 9 || (d[0] == '0' && len > 1) ||
        strspn(d, "0123456789") != len) {
        return false;
    }
    *index = (uint32_t)strtoul(d, NULL, 10); /* 9 digits, NUL-terminated: exact */
    return true;
}

static void scen_enter_override(scen_ctx *ctx, uint32_t index)
{
    for (size_t i = 0; i < ctx->override_count; i++) {
        if (ctx->overrides[i].index == index) {
            scen_problem(ctx, ctx->lineno, ctx->section_name, NULL,
                         "section repeated (first at line %" PRIu32 "); merge the two",
                         ctx->overrides[i].line);
            return;
        }
    }
    if (ctx->override_count >= CB_SCENARIO_SERVERS_MAX ||
        !scen_grow(ctx, (void **)&ctx->overrides, ctx->override_count, &ctx->override_cap,
                   sizeof ctx->overrides[0])) {
        return;
    }
    scen_override *o = &ctx->overrides[ctx->override_count];
    memset(o, 0, sizeof *o);
    o->index = index;
    o->line = ctx->lineno;
    ctx->override_idx = ctx->override_count++;
    ctx->section = SCEN_SEC_SERVER_N;
}

static void scen_enter_section(scen_ctx *ctx, const char *name)
{
    char hint[64];
    uint32_t index;
    (void)snprintf(ctx->section_name, sizeof ctx->section_name, "%s", name);
    ctx->section = SCEN_SEC_SKIP;
    ctx->prev_key[0] = '\0';
    for (int i = 0; i < (int)SCEN_SEC_COUNT; i++) {
        if (strcmp(name, scen_section_names[i]) != 0) {
            continue;
        }
        if (ctx->section_line[i] != 0) {
            scen_problem(ctx, ctx->lineno, ctx->section_name, NULL,
                         "section repeated (first at line %" PRIu32 "); merge the two",
                         ctx->section_line[i]);
            return;
        }
        ctx->section_line[i] = ctx->lineno;
        ctx->section = i;
        return;
    }
    if (scen_server_section_index(name, &index)) {
        scen_enter_override(ctx, index);
        return;
    }
    scen_suggest_section(name, hint, sizeof hint);
    scen_problem(ctx, ctx->lineno, ctx->section_name, NULL, "unknown section%s", hint);
}

/* ---- the line reader ---- */

/* Where libinih would split `key = value`: the first '=' or ':' before an inline comment
 * (a ';' after a blank), or NULL. */
static const char *scen_find_separator(const char *s, size_t len)
{
    bool was_blank = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '=' || s[i] == ':') {
            return s + i;
        }
        if (was_blank && s[i] == ';') {
            return NULL;
        }
        was_blank = s[i] == ' ' || s[i] == '\t';
    }
    return NULL;
}

/* `[name]` then blanks and an optional comment. Hands libinih the header; enters it. */
static void scen_read_header(scen_ctx *ctx, const char *s, size_t len, char *out)
{
    const char *close = memchr(s, ']', len);
    ctx->seen_header = true;
    size_t after = close != NULL ? (size_t)(close - s) + 1 : len;
    while (after < len && (s[after] == ' ' || s[after] == '\t')) {
        after++;
    }
    if (close == NULL || (after < len && s[after] != ';' && s[after] != '#')) {
        ctx->section = SCEN_SEC_SKIP;
        ctx->prev_key[0] = '\0';
        scen_problem(ctx, ctx->lineno, NULL, NULL,
                     close == NULL ? "section header without ']': expected [section]"
                                   : "text after ']': expected [section] alone on its line");
        return;
    }
    size_t name_len = (size_t)(close - s) - 1;
    memcpy(out, s, name_len + 2);
    out[name_len + 2] = '\0';
    out[name_len + 1] = '\0';
    scen_enter_section(ctx, out + 1);
    out[name_len + 1] = ']';
}

/* A `key = value` line: hands it to libinih (without its indentation). */
static void scen_read_key_line(scen_ctx *ctx, const char *s, size_t len, char *out)
{
    const char *sep = scen_find_separator(s, len);
    if (!ctx->seen_header) {
        scen_problem(ctx, ctx->lineno, NULL, NULL,
                     "a key before any [section]: start with a section such as [scenario]");
        return;
    }
    if (sep == NULL) {
        scen_problem(ctx, ctx->lineno, ctx->section >= 0 ? ctx->section_name : NULL, NULL,
                     "expected 'key = value', a [section] or a ; comment");
        return;
    }
    size_t key_len = (size_t)(sep - s);
    while (key_len > 0 && (s[key_len - 1] == ' ' || s[key_len - 1] == '\t')) {
        key_len--;
    }
    (void)snprintf(ctx->prev_key, sizeof ctx->prev_key, "%.*s", (int)key_len, s);
    ctx->prev_key_line = ctx->lineno;
    memcpy(out, s, len);
    out[len] = '\0';
}

/* Check a raw line (without its newline) and write what libinih should see into `out`. */
static void scen_read_line(scen_ctx *ctx, const char *line, size_t len, char *out, size_t out_cap)
{
    out[0] = '\0';
    if (len > CB_SCENARIO_LINE_BYTES_MAX || len >= out_cap) {
        scen_problem(ctx, ctx->lineno, NULL, NULL,
                     "line is %zu characters long; the limit is %u (the line was not read)", len,
                     CB_SCENARIO_LINE_BYTES_MAX);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            scen_problem(ctx, ctx->lineno, NULL, NULL,
                         "control character 0x%02x in column %zu (the line was not read)", c,
                         i + 1);
            return;
        }
    }
    size_t start = 0;
    if (ctx->lineno == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        start = 3; /* UTF-8 byte order mark */
    }
    size_t indent = start; /* the line is not NUL-terminated: no str* functions here */
    while (indent < len && (line[indent] == ' ' || line[indent] == '\t')) {
        indent++;
    }
    const char *s = line + indent;
    size_t slen = indent < len ? len - indent : 0;
    if (slen == 0 || s[0] == ';' || s[0] == '#') {
        return;
    }
    if (indent > start && ctx->prev_key[0] != '\0') {
        scen_problem(ctx, ctx->lineno, ctx->section >= 0 ? ctx->section_name : NULL, NULL,
                     "indented line would continue '%s' from line %" PRIu32
                     "; continuation lines are not supported: remove the indentation",
                     ctx->prev_key, ctx->prev_key_line);
        return;
    }
    if (s[0] == '[') {
        scen_read_header(ctx, s, slen, out);
    } else {
        scen_read_key_line(ctx, s, slen, out);
    }
}

/* ini_reader: one line per call from ctx->text; NULL at the end. */
static char *scen_reader(char *str, int num, void *stream)
{
    scen_ctx *ctx = stream;
    if (ctx->pos >= ctx->text_len || num <= 0) {
        return NULL;
    }
    const char *line = ctx->text + ctx->pos;
    size_t rest = ctx->text_len - ctx->pos;
    const char *nl = memchr(line, '\n', rest);
    size_t len = nl != NULL ? (size_t)(nl - line) : rest;
    ctx->pos += len + (nl != NULL ? 1u : 0u);
    ctx->lineno++;
    if (len > 0 && line[len - 1] == '\r') {
        len--;
    }
    scen_read_line(ctx, line, len, str, (size_t)num);
    return str;
}

/* ---- keys ---- */

/* A hint for an unknown key: a close name in the section, or the section it belongs to. */
static void scen_suggest_key(scen_section section, const char *name, char *out, size_t out_cap)
{
    const scen_key *keys = scen_keys();
    size_t best = SIZE_MAX, best_dist = strlen(name) <= 3 ? 2 : 3;
    out[0] = '\0';
    for (size_t i = 0; i < scen_key_count(); i++) {
        size_t d = scen_edit_distance(name, keys[i].name, 2);
        if (keys[i].section == section && d < best_dist) {
            best = i;
            best_dist = d;
        }
    }
    if (best != SIZE_MAX) {
        (void)snprintf(out, out_cap, " (did you mean '%s'?)", keys[best].name);
        return;
    }
    for (size_t i = 0; i < scen_key_count(); i++) {
        if (strcmp(keys[i].name, name) == 0) {
            (void)snprintf(out, out_cap, " ('%s' is a [%s] key)", name,
                           scen_section_names[keys[i].section]);
            return;
        }
    }
    (void)snprintf(out, out_cap, " (docs/scenarios.md lists every key)");
}

/* Parse into `v`; false (with a message) on a bad value. */
static bool scen_parse_or_report(scen_ctx *ctx, const scen_key *k, const char *value, scen_value *v)
{
    char err[SCEN_ERR_BYTES];
    if (scen_value_parse(k, value, v, err, sizeof err) != CB_ERR_OK) {
        scen_problem(ctx, ctx->lineno, ctx->section_name, k->name, "%s", err);
        return false;
    }
    return true;
}

static bool scen_first_time(scen_ctx *ctx, const char *key, uint32_t *line)
{
    if (*line != 0) {
        scen_problem(ctx, ctx->lineno, ctx->section_name, key,
                     "repeated key (first set at line %" PRIu32 "); only [faults] at may repeat",
                     *line);
        return false;
    }
    *line = ctx->lineno;
    return true;
}

static void scen_on_server_key(scen_ctx *ctx, const char *name, const char *value)
{
    const scen_key *k = scen_key_find(SCEN_SEC_SERVERS, name);
    scen_override *o = &ctx->overrides[ctx->override_idx];
    scen_value v;
    if (k == NULL || k->server_bit == 0) {
        scen_problem(ctx, ctx->lineno, ctx->section_name, name,
                     "unknown key (a [server.N] section may set memory, value_max and "
                     "dedup_window)");
        return;
    }
    unsigned bit = k->server_bit == CB_PLAN_SERVER_MEMORY      ? 0
                   : k->server_bit == CB_PLAN_SERVER_VALUE_MAX ? 1
                                                               : 2;
    if (scen_first_time(ctx, name, &o->key_line[bit]) && scen_parse_or_report(ctx, k, value, &v)) {
        scen_value_store(k, &v, &o->values, true);
        o->values.overridden |= k->server_bit;
    }
}

static void scen_on_fault(scen_ctx *ctx, const char *name, const char *value)
{
    char err[SCEN_ERR_BYTES];
    cb_fault fault;
    if (strcmp(name, "at") != 0) {
        scen_problem(ctx, ctx->lineno, ctx->section_name, name,
                     "unknown key (events are 'at = TIME EVENT', one per line)");
        return;
    }
    if (scen_fault_parse(value, &fault, err, sizeof err) != CB_ERR_OK) {
        scen_problem(ctx, ctx->lineno, ctx->section_name, name, "%s", err);
        return;
    }
    if (ctx->fault_count >= CB_SCENARIO_FAULTS_MAX) {
        scen_problem(ctx, ctx->lineno, ctx->section_name, name, "more than %u events",
                     CB_SCENARIO_FAULTS_MAX);
        return;
    }
    if (scen_grow(ctx, (void **)&ctx->faults, ctx->fault_count, &ctx->fault_cap,
                  sizeof ctx->faults[0])) {
        ctx->faults[ctx->fault_count].fault = fault;
        ctx->faults[ctx->fault_count++].line = ctx->lineno;
    }
}

/* ini_handler: called for each `key = value` line the reader passed on. */
static int scen_handler(void *user, const char *section, const char *name, const char *value)
{
    scen_ctx *ctx = user;
    char hint[96];
    scen_value v;
    (void)section; /* the reader tracks the section, including broken headers */
    if (ctx->section == SCEN_SEC_SKIP) {
        return 1;
    }
    if (name[0] == '\0') {
        scen_problem(ctx, ctx->lineno, ctx->section_name, NULL, "a value without a key name");
        return 1;
    }
    if (ctx->section == SCEN_SEC_SERVER_N) {
        scen_on_server_key(ctx, name, value);
        return 1;
    }
    if (ctx->section == SCEN_SEC_FAULTS) {
        scen_on_fault(ctx, name, value);
        return 1;
    }
    const scen_key *k = scen_key_find((scen_section)ctx->section, name);
    if (k == NULL) {
        scen_suggest_key((scen_section)ctx->section, name, hint, sizeof hint);
        scen_problem(ctx, ctx->lineno, ctx->section_name, name, "unknown key%s", hint);
        return 1;
    }
    size_t idx = (size_t)(k - scen_keys());
    if (scen_first_time(ctx, name, &ctx->key_line[idx]) &&
        scen_parse_or_report(ctx, k, value, &v)) {
        scen_value_store(k, &v, &ctx->plan, false);
    }
    return 1; /* problems are collected, never reported to libinih */
}

/* ---- checks across keys ---- */

/* The line of a key if the file set it, else of its section header, else 0. */
static uint32_t scen_where(const scen_ctx *ctx, scen_section sec, const char *name)
{
    const scen_key *k = scen_key_find(sec, name);
    uint32_t line = k != NULL ? ctx->key_line[k - scen_keys()] : 0;
    return line != 0 ? line : ctx->section_line[sec];
}

static void scen_check_required(scen_ctx *ctx)
{
    const scen_key *keys = scen_keys();
    const cb_plan_workload *w = &ctx->plan.workload;
    for (size_t i = 0; i < scen_key_count(); i++) {
        const scen_key *k = &keys[i];
        const char *na = k->not_applicable != NULL ? k->not_applicable(&ctx->plan) : NULL;
        const char *sec = scen_section_names[k->section];
        if ((k->flags & SCEN_F_REQUIRED) && ctx->key_line[i] == 0) {
            scen_problem(ctx, ctx->section_line[k->section], sec, k->name,
                         "required key is missing");
        }
        if ((k->flags & SCEN_F_REQUIRED_IF_APPLIES) && ctx->key_line[i] == 0 && na == NULL) {
            scen_problem(ctx, ctx->section_line[k->section], sec, k->name, "missing: %s",
                         w->arrival == CB_ARRIVAL_OPEN && w->trace[0] == '\0'
                             ? "arrival = open needs a rate, like rate = 20000/s"
                             : "trace is set, so give its format (twitter, libcachesim_csv or "
                               "oracle_general)");
        }
        if (ctx->key_line[i] != 0 && na != NULL) {
            scen_problem(ctx, ctx->key_line[i], sec, k->name, "%s; remove it", na);
        }
    }
    if (ctx->plan.scenario.requests == 0 && ctx->plan.scenario.duration_ns == 0) {
        scen_problem(ctx, ctx->section_line[SCEN_SEC_SCENARIO], "scenario", NULL,
                     "set requests, duration or both (both are 0: the run would never end)");
    }
}

static void scen_check_durations(scen_ctx *ctx)
{
    const cb_plan *p = &ctx->plan;
    char a[CB_UNITS_FORMAT_BYTES], b[CB_UNITS_FORMAT_BYTES];
    if (p->scenario.duration_ns != 0 && p->scenario.warmup_ns >= p->scenario.duration_ns) {
        (void)cb_units_format_duration(p->scenario.warmup_ns, a, sizeof a);
        (void)cb_units_format_duration(p->scenario.duration_ns, b, sizeof b);
        scen_problem(ctx, scen_where(ctx, SCEN_SEC_SCENARIO, "warmup"), "scenario", "warmup",
                     "%s leaves nothing to measure: it must be below duration = %s", a, b);
    }
    if (p->transport.timeout_max_ns < p->transport.timeout_ns) {
        (void)cb_units_format_duration(p->transport.timeout_max_ns, a, sizeof a);
        (void)cb_units_format_duration(p->transport.timeout_ns, b, sizeof b);
        scen_problem(ctx, scen_where(ctx, SCEN_SEC_TRANSPORT, "timeout_max"), "transport",
                     "timeout_max", "%s is below timeout = %s", a, b);
    }
}

static void scen_check_contradictions(scen_ctx *ctx)
{
    const cb_plan *p = &ctx->plan;
    const cb_plan_workload *w = &p->workload;
    char a[CB_UNITS_FORMAT_BYTES], b[CB_UNITS_FORMAT_BYTES];
    scen_check_durations(ctx);
    if (p->placement.replicas > p->servers.count) {
        scen_problem(ctx, scen_where(ctx, SCEN_SEC_PLACEMENT, "replicas"), "placement", "replicas",
                     "%" PRIu32 " replicas but [servers] count = %" PRIu32
                     ": at most one replica per server",
                     p->placement.replicas, p->servers.count);
    }
    if (p->transport.compression == CB_COMPRESSION_LZ4 && p->transport.compression_level > 12) {
        scen_problem(ctx, scen_where(ctx, SCEN_SEC_TRANSPORT, "compression_level"), "transport",
                     "compression_level", "%" PRIu32 " is above lz4's highest level, 12",
                     p->transport.compression_level);
    }
    if (w->trace[0] == '\0' && w->value_dist == CB_VALUE_DIST_UNIFORM &&
        w->value_bytes_min > w->value_bytes_max) {
        (void)cb_units_format_size(w->value_bytes_min, a, sizeof a);
        (void)cb_units_format_size(w->value_bytes_max, b, sizeof b);
        scen_problem(ctx, scen_where(ctx, SCEN_SEC_WORKLOAD, "value_size_max"), "workload",
                     "value_size_max", "%s is below value_size_min = %s", b, a);
    }
    if (w->trace[0] == '\0' && w->key_dist == CB_KEY_DIST_HOTSPOT &&
        (uint64_t)w->hot_keys_ppm * w->keys / 1000000u == 0) {
        (void)cb_units_format_percent(w->hot_keys_ppm, a, sizeof a);
        scen_problem(ctx, scen_where(ctx, SCEN_SEC_WORKLOAD, "hot_fraction_keys"), "workload",
                     "hot_fraction_keys", "%s of %" PRIu64 " keys is not even one key", a, w->keys);
    }
}

static void scen_check_overrides(scen_ctx *ctx)
{
    for (size_t i = 0; i < ctx->override_count; i++) {
        const scen_override *o = &ctx->overrides[i];
        char name[24];
        if (o->index < ctx->plan.servers.count) {
            continue;
        }
        (void)snprintf(name, sizeof name, "server.%" PRIu32, o->index);
        scen_problem(ctx, o->line, name, NULL,
                     "no such server: [servers] count = %" PRIu32 " (server.0 .. server.%" PRIu32
                     ")",
                     ctx->plan.servers.count, ctx->plan.servers.count - 1);
    }
}

static void scen_check_faults(scen_ctx *ctx)
{
    char err[SCEN_ERR_BYTES];
    for (size_t i = 0; i < ctx->fault_count; i++) {
        if (scen_fault_check(&ctx->faults[i].fault, &ctx->plan, err, sizeof err) != CB_ERR_OK) {
            scen_problem(ctx, ctx->faults[i].line, "faults", "at", "%s", err);
        }
    }
}

/* ---- the plan ---- */

static int scen_fault_item_cmp(const void *a, const void *b)
{
    const scen_fault_item *x = a, *y = b;
    if (x->fault.at_ns != y->fault.at_ns) {
        return x->fault.at_ns < y->fault.at_ns ? -1 : 1;
    }
    /* Equal times keep file order: lines are distinct, so the order is total. */
    return x->line < y->line ? -1 : x->line > y->line ? 1 : 0;
}

/* Move the staging plan into *plan with its servers and sorted faults. */
static int scen_build_plan(scen_ctx *ctx, cb_plan *plan)
{
    cb_plan out = ctx->plan;
    out.servers.each = calloc(out.servers.count, sizeof out.servers.each[0]);
    if (out.servers.each == NULL) {
        scen_nomem(ctx);
        return CB_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < out.servers.count; i++) {
        out.servers.each[i] = out.servers.defaults;
    }
    for (size_t i = 0; i < ctx->override_count; i++) {
        const scen_override *o = &ctx->overrides[i];
        cb_plan_server *srv = &out.servers.each[o->index]; /* index < count: checked */
        srv->memory_bytes = (o->values.overridden & CB_PLAN_SERVER_MEMORY) ? o->values.memory_bytes
                                                                           : srv->memory_bytes;
        srv->value_bytes_max = (o->values.overridden & CB_PLAN_SERVER_VALUE_MAX)
                                   ? o->values.value_bytes_max
                                   : srv->value_bytes_max;
        srv->dedup_window = (o->values.overridden & CB_PLAN_SERVER_DEDUP_WINDOW)
                                ? o->values.dedup_window
                                : srv->dedup_window;
        srv->overridden = o->values.overridden;
    }
    out.fault_count = ctx->fault_count;
    out.faults = NULL;
    if (ctx->fault_count > 0) {
        out.faults = calloc(ctx->fault_count, sizeof out.faults[0]);
        if (out.faults == NULL) {
            free(out.servers.each);
            scen_nomem(ctx);
            return CB_ERR_NOMEM;
        }
        qsort(ctx->faults, ctx->fault_count, sizeof ctx->faults[0], scen_fault_item_cmp);
        for (size_t i = 0; i < ctx->fault_count; i++) {
            out.faults[i] = ctx->faults[i].fault;
        }
    }
    *plan = out;
    return CB_ERR_OK;
}

void cb_plan_free(cb_plan *plan)
{
    if (plan == NULL) {
        return;
    }
    free(plan->servers.each);
    free(plan->faults);
    memset(plan, 0, sizeof *plan);
}

/* Split "section.key=value" into its three parts (trimmed); false if it has no such shape. */
static bool scen_split_set(const char *spec, char *section, char *key, size_t cap,
                           const char **value)
{
    const char *dot = strchr(spec, '.');
    const char *eq = strchr(spec, '=');
    if (dot == NULL || eq == NULL || dot > eq || (size_t)(dot - spec) >= cap ||
        (size_t)(eq - dot - 1) >= cap) {
        return false;
    }
    (void)snprintf(section, cap, "%.*s", (int)(dot - spec), spec);
    (void)snprintf(key, cap, "%.*s", (int)(eq - dot - 1), dot + 1);
    for (size_t n = strlen(key); n > 0 && (key[n - 1] == ' ' || key[n - 1] == '\t'); n--) {
        key[n - 1] = '\0';
    }
    *value = eq + 1;
    while (**value == ' ' || **value == '\t') {
        (*value)++;
    }
    return section[0] != '\0' && key[0] != '\0';
}

/* Apply --set number `n` (1-based) over what the file said. */
static void scen_apply_set(scen_ctx *ctx, const char *spec, uint32_t n)
{
    char section[48], key[48], hint[96];
    const char *value;
    scen_value v;
    ctx->lineno = n;
    if (!scen_split_set(spec, section, key, sizeof section, &value)) {
        scen_problem(ctx, n, NULL, NULL, "expected SECTION.KEY=VALUE, got '%s'", spec);
        return;
    }
    (void)snprintf(ctx->section_name, sizeof ctx->section_name, "%s", section);
    int sec = -1;
    for (int i = 0; i < (int)SCEN_SEC_COUNT; i++) {
        sec = strcmp(section, scen_section_names[i]) == 0 ? i : sec;
    }
    if (sec < 0 || sec == SCEN_SEC_FAULTS) {
        scen_problem(ctx, n, section, NULL,
                     sec < 0 ? "unknown section" : "faults are set in the scenario file");
        return;
    }
    const scen_key *k = scen_key_find((scen_section)sec, key);
    if (k == NULL) {
        scen_suggest_key((scen_section)sec, key, hint, sizeof hint);
        scen_problem(ctx, n, section, key, "unknown key%s", hint);
        return;
    }
    if (scen_parse_or_report(ctx, k, value, &v)) {
        scen_value_store(k, &v, &ctx->plan, false);
        ctx->key_line[k - scen_keys()] = n; /* set, by the command line */
    }
}

int cb_scenario_load_string(const char *name, const char *text, size_t text_len, cb_plan *plan,
                            cb_diag *diag)
{
    return cb_scenario_load_string_with(name, text, text_len, NULL, 0, plan, diag);
}

int cb_scenario_load_string_with(const char *name, const char *text, size_t text_len,
                                 const char *const *sets, size_t set_count, cb_plan *plan,
                                 cb_diag *diag)
{
    scen_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    memset(plan, 0, sizeof *plan);
    cb_diag_init(diag);
    ctx.name = name;
    ctx.text = text;
    ctx.text_len = text_len;
    ctx.diag = diag;
    ctx.section = SCEN_SEC_SKIP;
    scen_plan_defaults(&ctx.plan);
    if (text_len > SCEN_FILE_BYTES_MAX) {
        scen_problem(&ctx, 0, NULL, NULL, "file is %zu bytes; a scenario is at most %u", text_len,
                     SCEN_FILE_BYTES_MAX);
    } else {
        (void)ini_parse_stream(scen_reader, &ctx, scen_handler, &ctx); /* problems: in ctx */
        ctx.name = "--set";
        for (size_t i = 0; i < set_count; i++) {
            scen_apply_set(&ctx, sets[i], (uint32_t)(i + 1));
        }
        ctx.name = name;
        scen_check_required(&ctx);
        scen_check_contradictions(&ctx);
        scen_check_overrides(&ctx);
        scen_check_faults(&ctx);
    }
    int rc = ctx.nomem ? CB_ERR_NOMEM : ctx.problems > 0 ? CB_ERR_INVALID : CB_ERR_OK;
    if (rc == CB_ERR_OK) {
        rc = scen_build_plan(&ctx, plan);
    }
    free(ctx.overrides);
    free(ctx.faults);
    scen_diag_sort(diag);
    return rc;
}

int cb_scenario_load(const char *path, cb_plan *plan, cb_diag *diag)
{
    return cb_scenario_load_with(path, NULL, 0, plan, diag);
}

int cb_scenario_load_with(const char *path, const char *const *sets, size_t set_count,
                          cb_plan *plan, cb_diag *diag)
{
    scen_ctx ctx; /* only for its message helper */
    memset(&ctx, 0, sizeof ctx);
    memset(plan, 0, sizeof *plan);
    cb_diag_init(diag);
    ctx.name = path;
    ctx.diag = diag;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        scen_problem(&ctx, 0, NULL, NULL, "cannot open: %s", strerror(errno));
        return CB_ERR_INVALID;
    }
    char *buf = malloc(SCEN_FILE_BYTES_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        scen_problem(&ctx, 0, NULL, NULL, "out of memory");
        return CB_ERR_NOMEM;
    }
    size_t len = fread(buf, 1, SCEN_FILE_BYTES_MAX + 1, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    int rc = CB_ERR_INVALID;
    if (failed) {
        scen_problem(&ctx, 0, NULL, NULL, "cannot read: %s", strerror(errno));
    } else {
        rc = cb_scenario_load_string_with(path, buf, len, sets, set_count, plan, diag);
    }
    free(buf);
    return rc;
}

int cb_scenario_resolve_path(const char *scenario_path, const char *value, char *out,
                             size_t out_cap)
{
    const char *slash = strrchr(scenario_path, '/');
    int n;
    if (value[0] == '/' || slash == NULL) {
        n = snprintf(out, out_cap, "%s", value);
    } else {
        n = snprintf(out, out_cap, "%.*s/%s", (int)(slash - scenario_path), scenario_path, value);
    }
    return n < 0 || (size_t)n >= out_cap ? -1 : n;
}
