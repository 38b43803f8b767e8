/*
 * cb_trace.c: streaming readers for Twitter CSV, libCacheSim CSV and oracleGeneral traces,
 * plain or zstd-compressed; see cb_trace.h.
 *
 * Layers, bottom up: the input (a FILE read in chunks, or a caller's memory buffer used in
 * place), optional zstd decompression (ZSTD_decompressStream straight into the free part of
 * the 64 KiB byte buffer), then records (lines of at most CB_TRACE_LINE_BYTES_MAX bytes,
 * or 24-byte binary records) parsed from views into that buffer. Nothing grows with the
 * trace.
 */
#include "cb_trace.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "cb_err.h"
#include "cb_frame.h"

/* Decompressed bytes kept at once: a whole line must fit, with room to refill around it. */
#define TRACE_BUF_BYTES (64u * 1024u)
/* Most columns of a libCacheSim CSV line (and of its header). */
#define TRACE_FIELDS_MAX 16u
/* A zstd window above 128 MiB (zstd's own default limit, 2^27) is refused: a hostile frame
 * header must not make us allocate more. */
#define TRACE_ZSTD_WINDOW_LOG_MAX 27
#define TRACE_NAME_BYTES          256u
#define TRACE_ERR_BYTES           512u
#define NS_PER_S                  1000000000ull

_Static_assert(TRACE_BUF_BYTES >= 2u * (CB_TRACE_LINE_BYTES_MAX + 2u), "a line fits twice");
_Static_assert(TRACE_BUF_BYTES >= CB_TRACE_ORACLE_RECORD_BYTES, "a record fits");

typedef struct trace_field {
    const uint8_t *s;
    size_t n;
} trace_field;

/* libCacheSim CSV columns, 0-based; -1: absent. */
typedef struct trace_columns {
    int time, key, size, op, ttl;
    size_t count_min, count_max; /* fields a data line must have */
} trace_columns;

struct cb_trace {
    cb_trace_format format;
    uint64_t speed_micro;
    char name[TRACE_NAME_BYTES];
    FILE *file;        /* NULL: reading from memory */
    const uint8_t *in; /* raw (maybe compressed) input: the file's chunk, or the memory */
    uint8_t *in_owned; /* the chunk buffer, for a file */
    size_t in_cap, in_len, in_pos;
    int in_eof;        /* no input beyond in[in_len) */
    ZSTD_DCtx *zstd;   /* NULL: plain input */
    size_t zstd_left;  /* last ZSTD_decompressStream result: 0 at a frame's end */
    size_t pos, len;   /* buf[pos..len) are decompressed bytes not yet parsed */
    uint64_t consumed; /* decompressed bytes before buf[pos] */
    uint64_t line;     /* CSV: number of the last line read */
    uint64_t records;  /* records returned so far */
    int have_first;
    uint64_t first_ns, last_ns;
    int header_done;    /* libCacheSim CSV: the first line was looked at */
    trace_columns cols; /* libCacheSim CSV */
    int status;         /* sticky once the trace ended (0) or failed (< 0); 1 before */
    char err[TRACE_ERR_BYTES];
    uint8_t buf[TRACE_BUF_BYTES];
};

/* ---- errors ---- */

/* Record the error (with where it happened), make it sticky, and return rc. */
__attribute__((format(printf, 3, 4))) static int trace_fail(cb_trace *t, int rc, const char *fmt,
                                                            ...)
{
    int n;
    if (t->format == CB_TRACE_ORACLE_GENERAL) {
        n = snprintf(t->err, sizeof t->err, "%s: record %llu at offset %llu: ", t->name,
                     (unsigned long long)t->records, (unsigned long long)t->consumed);
    } else {
        n = snprintf(t->err, sizeof t->err, "%s:%llu: ", t->name, (unsigned long long)t->line);
    }
    size_t used = n > 0 && (size_t)n < sizeof t->err ? (size_t)n : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err + used, sizeof t->err - used, fmt, ap);
    va_end(ap);
    t->status = rc;
    return rc;
}

/* A field's text for a message: at most 40 bytes, non-printable bytes as '?'. */
static const char *trace_show(trace_field f, char out[48])
{
    size_t n = f.n < 40 ? f.n : 40, i;
    for (i = 0; i < n; i++) {
        out[i] = f.s[i] >= 0x20 && f.s[i] < 0x7f ? (char)f.s[i] : '?';
    }
    strcpy(out + i, f.n > 40 ? "..." : "");
    return out;
}

/* ---- input: raw bytes, then zstd ---- */

/* Refill in[] from the file; memory input has nothing more. 0, or CB_ERR_INVALID. */
static int trace_in_refill(cb_trace *t)
{
    if (t->file == NULL) {
        t->in_eof = 1;
        return CB_ERR_OK;
    }
    size_t n = fread(t->in_owned, 1, t->in_cap, t->file);
    t->in_len = n;
    t->in_pos = 0;
    if (n == 0) {
        if (ferror(t->file)) {
            return trace_fail(t, CB_ERR_INVALID, "read error");
        }
        t->in_eof = 1;
    }
    return CB_ERR_OK;
}

static int trace_fill_plain(cb_trace *t)
{
    if (t->in_pos == t->in_len && !t->in_eof) {
        int rc = trace_in_refill(t);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    size_t n = t->in_len - t->in_pos, room = sizeof t->buf - t->len;
    n = n < room ? n : room;
    if (n > 0) {
        memcpy(t->buf + t->len, t->in + t->in_pos, n);
        t->in_pos += n;
        t->len += n;
    }
    return CB_ERR_OK;
}

static int trace_fill_zstd(cb_trace *t)
{
    ZSTD_outBuffer out = {t->buf, sizeof t->buf, t->len};
    for (;;) {
        if (t->in_pos == t->in_len && !t->in_eof) {
            int rc = trace_in_refill(t);
            if (rc != CB_ERR_OK) {
                return rc;
            }
        }
        ZSTD_inBuffer in = {t->in, t->in_len, t->in_pos};
        size_t r = ZSTD_decompressStream(t->zstd, &out, &in);
        int no_input = in.pos == t->in_pos;
        t->in_pos = in.pos;
        if (ZSTD_isError(r)) {
            return trace_fail(t, CB_ERR_MALFORMED, "zstd: %s", ZSTD_getErrorName(r));
        }
        if (!no_input || out.pos > t->len) {
            /* Called with no input after a frame's end, zstd asks for the next frame's
             * header: only a call that did something says whether a frame is open. */
            t->zstd_left = r;
        }
        if (out.pos > t->len || (no_input && t->in_eof && t->in_pos == t->in_len)) {
            break; /* bytes came out, or nothing more ever will */
        }
    }
    if (out.pos == t->len && t->zstd_left != 0) {
        return trace_fail(t, CB_ERR_NEED_MORE, "zstd stream ends inside a frame (truncated?)");
    }
    t->len = out.pos;
    return CB_ERR_OK;
}

/* Move the unparsed bytes to the front and add more. Returns 0 (*eof set when none came) or
 * an error. */
static int trace_fill(cb_trace *t, int *eof)
{
    if (t->pos > 0) {
        memmove(t->buf, t->buf + t->pos, t->len - t->pos);
        t->len -= t->pos;
        t->pos = 0;
    }
    size_t before = t->len;
    int rc = t->zstd != NULL ? trace_fill_zstd(t) : trace_fill_plain(t);
    *eof = rc == CB_ERR_OK && t->len == before;
    return rc;
}

/* ---- lines ---- */

/* The next line, without its line end (a view into buf, valid until the next call).
 * Returns 1, 0 at the end, or an error. */
static int trace_line(cb_trace *t, trace_field *line)
{
    int eof = 0;
    for (;;) {
        size_t avail = t->len - t->pos;
        const uint8_t *start = t->buf + t->pos;
        const uint8_t *nl = memchr(start, '\n', avail);
        size_t n = nl != NULL ? (size_t)(nl - start) : avail;
        if (nl == NULL && avail > CB_TRACE_LINE_BYTES_MAX + 1 /* a '\r' may follow */) {
            t->line++;
            return trace_fail(t, CB_ERR_TOO_LARGE, "line longer than %u bytes",
                              CB_TRACE_LINE_BYTES_MAX);
        }
        if (nl != NULL || (eof && avail > 0)) {
            size_t step = nl != NULL ? n + 1 : n;
            t->pos += step;
            t->consumed += step;
            t->line++;
            n -= n > 0 && start[n - 1] == '\r';
            if (n > CB_TRACE_LINE_BYTES_MAX) {
                return trace_fail(t, CB_ERR_TOO_LARGE, "line longer than %u bytes",
                                  CB_TRACE_LINE_BYTES_MAX);
            }
            *line = (trace_field){start, n};
            return 1;
        }
        if (eof) {
            return 0;
        }
        t->line++; /* a failing fill names the line being read */
        int rc = trace_fill(t, &eof);
        t->line--;
        if (rc != CB_ERR_OK) {
            t->line++;
            return rc;
        }
    }
}

/* Split `line` at commas into at most cap fields. Returns the count, or cap + 1 if more. */
static size_t trace_split(trace_field line, trace_field *fields, size_t cap)
{
    size_t count = 0, start = 0;
    for (size_t i = 0; i <= line.n; i++) {
        if (i == line.n || line.s[i] == ',') {
            if (count == cap) {
                return cap + 1;
            }
            fields[count++] = (trace_field){line.s + start, i - start};
            start = i + 1;
        }
    }
    return count;
}

static trace_field trace_trim(trace_field f)
{
    while (f.n > 0 && (f.s[0] == ' ' || f.s[0] == '\t')) {
        f.s++;
        f.n--;
    }
    while (f.n > 0 && (f.s[f.n - 1] == ' ' || f.s[f.n - 1] == '\t')) {
        f.n--;
    }
    return f;
}

/* ---- numbers ---- */

/* Decimal digits only, value <= max. 0, -1 not a number (empty, a non-digit), -2 over max. */
static int trace_u64(trace_field f, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (f.n == 0) {
        return -1;
    }
    for (size_t i = 0; i < f.n; i++) {
        if (f.s[i] < '0' || f.s[i] > '9') {
            return -1;
        }
    }
    if (f.n > CB_NUMBER_DIGITS_MAX) {
        return -2;
    }
    for (size_t i = 0; i < f.n; i++) {
        uint64_t d = (uint64_t)(f.s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -2;
        }
        v = v * 10 + d;
    }
    if (v > max) {
        return -2;
    }
    *out = v;
    return 0;
}

/* Seconds with an optional fraction of 1..9 digits, into ns. 0, -1 bad, -2 too large. */
static int trace_seconds(trace_field f, uint64_t *ns)
{
    const uint8_t *dot = f.n > 0 ? memchr(f.s, '.', f.n) : NULL;
    size_t whole = dot != NULL ? (size_t)(dot - f.s) : f.n;
    uint64_t s = 0, frac = 0;
    int rc = trace_u64((trace_field){f.s, whole}, UINT64_MAX / NS_PER_S, &s);
    if (rc != 0) {
        return rc;
    }
    if (dot != NULL) {
        trace_field fr = {dot + 1, f.n - whole - 1};
        if (fr.n == 0 || fr.n > 9 || trace_u64(fr, UINT64_MAX, &frac) != 0) {
            return -1;
        }
        for (size_t i = fr.n; i < 9; i++) {
            frac *= 10;
        }
    }
    if (s * NS_PER_S > UINT64_MAX - frac) {
        return -2;
    }
    *ns = s * NS_PER_S + frac;
    return 0;
}

/* A numeric field of a CSV record, with the error message naming it. */
static int trace_field_u64(cb_trace *t, trace_field f, const char *what, uint64_t max,
                           uint64_t *out)
{
    char shown[48];
    int rc = trace_u64(f, max, out);
    if (rc == -2) {
        return trace_fail(t, CB_ERR_TOO_LARGE, "%s: '%s' is over %llu", what, trace_show(f, shown),
                          (unsigned long long)max);
    }
    if (rc != 0) {
        return trace_fail(t, CB_ERR_MALFORMED, "%s: '%s' is not a whole number", what,
                          trace_show(f, shown));
    }
    return CB_ERR_OK;
}

/* The record's time: check order, make it relative to the first record, apply the speed. */
static int trace_time(cb_trace *t, uint64_t ns, cb_trace_record *rec)
{
    if (!t->have_first) {
        t->have_first = 1;
        t->first_ns = t->last_ns = ns;
    }
    if (ns < t->last_ns) {
        return trace_fail(t, CB_ERR_MALFORMED,
                          "timestamp goes backwards (%llu.%09llu s after %llu.%09llu s)",
                          (unsigned long long)(ns / NS_PER_S), (unsigned long long)(ns % NS_PER_S),
                          (unsigned long long)(t->last_ns / NS_PER_S),
                          (unsigned long long)(t->last_ns % NS_PER_S));
    }
    t->last_ns = ns;
    uint64_t rel = ns - t->first_ns, q = rel / t->speed_micro, r = rel % t->speed_micro;
    /* rel * 10^6 / speed_micro without overflow: split rel by the divisor. */
    if (q > (UINT64_MAX - 1000000u) / 1000000u) {
        return trace_fail(t, CB_ERR_TOO_LARGE, "timestamp beyond 2^64 ns once scaled");
    }
    rec->timestamp_ns = q * 1000000u + r * 1000000u / t->speed_micro;
    return CB_ERR_OK;
}

/* ---- operations and keys ---- */

typedef struct trace_op_name {
    const char *name;
    uint8_t op;
    uint8_t fill_on_miss;
} trace_op_name;

/* Twitter's operations and libCacheSim's req_op names; docs/scenarios.md has the mapping. */
static const trace_op_name trace_ops[] = {
    {"get", CB_OP_GET, 0},       {"gets", CB_OP_GET, 0},        {"set", CB_OP_SET, 0},
    {"cas", CB_OP_SET, 0},       {"add", CB_OP_ADD, 0},         {"replace", CB_OP_REPLACE, 0},
    {"append", CB_OP_APPEND, 0}, {"prepend", CB_OP_PREPEND, 0}, {"delete", CB_OP_DELETE, 0},
    {"incr", CB_OP_INCR, 0},     {"decr", CB_OP_DECR, 0},       {"read", CB_OP_GET, 1},
    {"write", CB_OP_SET, 0},     {"update", CB_OP_SET, 0},
};

/* Case-insensitive equality of a field and a lower-case word. */
static int trace_word_is(trace_field f, const char *word)
{
    size_t n = strlen(word);
    if (f.n != n) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t c = f.s[i] >= 'A' && f.s[i] <= 'Z' ? (uint8_t)(f.s[i] + 32) : f.s[i];
        if (c != (uint8_t)word[i]) {
            return 0;
        }
    }
    return 1;
}

static int trace_op(cb_trace *t, trace_field f, cb_trace_record *rec)
{
    char shown[48];
    for (size_t i = 0; i < sizeof trace_ops / sizeof trace_ops[0]; i++) {
        if (trace_word_is(f, trace_ops[i].name)) {
            rec->op = trace_ops[i].op;
            rec->fill_on_miss = trace_ops[i].fill_on_miss;
            return CB_ERR_OK;
        }
    }
    return trace_fail(t, CB_ERR_MALFORMED, "unknown operation '%s'", trace_show(f, shown));
}

static int trace_key_string(cb_trace *t, trace_field f, cb_trace_record *rec)
{
    if (f.n == 0) {
        return trace_fail(t, CB_ERR_MALFORMED, "empty key");
    }
    if (f.n > CB_KEY_BYTES_MAX) {
        return trace_fail(t, CB_ERR_TOO_LARGE, "key of %zu bytes is over %u", f.n,
                          CB_KEY_BYTES_MAX);
    }
    for (size_t i = 0; i < f.n; i++) {
        if (f.s[i] < 0x21 || f.s[i] == 0x7f) { /* memcached keys: no blanks or controls */
            return trace_fail(t, CB_ERR_MALFORMED, "key holds a blank or control byte (0x%02x)",
                              f.s[i]);
        }
    }
    memcpy(rec->key, f.s, f.n);
    rec->key_len = (uint8_t)f.n;
    rec->key_bytes = (uint32_t)f.n;
    return CB_ERR_OK;
}

/* ---- Twitter ---- */

static int trace_twitter(cb_trace *t, trace_field line, cb_trace_record *rec)
{
    trace_field f[8];
    uint64_t ns = 0, key_bytes = 0, value_bytes = 0, ttl = 0;
    char shown[48];
    size_t count = trace_split(line, f, 7);
    if (count != 7) {
        return trace_fail(t, CB_ERR_MALFORMED,
                          "%s%zu field(s), expected 7 (timestamp,key,key size,value size,"
                          "client id,operation,ttl)",
                          count > 7 ? "more than " : "", count > 7 ? (size_t)7 : count);
    }
    int rc = trace_seconds(f[0], &ns);
    if (rc != 0) {
        return trace_fail(t, rc == -2 ? CB_ERR_TOO_LARGE : CB_ERR_MALFORMED,
                          "timestamp: '%s' is not seconds like 12 or 12.5",
                          trace_show(f[0], shown));
    }
    if ((rc = trace_key_string(t, f[1], rec)) != CB_ERR_OK ||
        (rc = trace_field_u64(t, f[2], "key size", UINT32_MAX, &key_bytes)) != CB_ERR_OK ||
        (rc = trace_field_u64(t, f[3], "value size", UINT32_MAX, &value_bytes)) != CB_ERR_OK ||
        (rc = trace_field_u64(t, f[4], "client id", UINT64_MAX, &rec->client_id)) != CB_ERR_OK ||
        (rc = trace_op(t, f[5], rec)) != CB_ERR_OK ||
        (rc = trace_field_u64(t, f[6], "ttl", UINT32_MAX, &ttl)) != CB_ERR_OK) {
        return rc;
    }
    rec->key_bytes = (uint32_t)key_bytes;
    rec->value_bytes = (uint32_t)value_bytes;
    rec->ttl_s = (uint32_t)ttl;
    return trace_time(t, ns, rec);
}

/* ---- libCacheSim CSV ---- */

typedef struct trace_column_name {
    const char *name;
    int which; /* 0 time, 1 object, 2 size, 3 op, 4 ttl */
} trace_column_name;

/* Column names of libCacheSim's tools (tracePrint: "time,object,size,next_access_vtime";
 * request fields: clock_time, obj_id, obj_size, op, ttl) and common spellings. */
static const trace_column_name trace_column_names[] = {
    {"time", 0},   {"timestamp", 0}, {"clock_time", 0}, {"real_time", 0},
    {"object", 1}, {"obj_id", 1},    {"obj-id", 1},     {"id", 1},
    {"key", 1},    {"size", 2},      {"obj_size", 2},   {"obj-size", 2},
    {"op", 3},     {"operation", 3}, {"op_type", 3},    {"ttl", 4},
};

static int *trace_column_slot(trace_columns *c, int which)
{
    int *slots[] = {&c->time, &c->key, &c->size, &c->op, &c->ttl};
    return slots[which];
}

/* Read the header's column names into t->cols. */
static int trace_csv_header(cb_trace *t, trace_field line)
{
    trace_field f[TRACE_FIELDS_MAX];
    char shown[48];
    line = trace_trim(line);
    if (line.n > 0 && line.s[0] == '#') {
        line.s++, line.n--;
    }
    size_t count = trace_split(line, f, TRACE_FIELDS_MAX);
    if (count > TRACE_FIELDS_MAX) {
        return trace_fail(t, CB_ERR_TOO_LARGE, "header: more than %u columns", TRACE_FIELDS_MAX);
    }
    t->cols = (trace_columns){-1, -1, -1, -1, -1, count, count};
    for (size_t i = 0; i < count; i++) {
        trace_field name = trace_trim(f[i]);
        for (size_t k = 0; k < sizeof trace_column_names / sizeof trace_column_names[0]; k++) {
            if (!trace_word_is(name, trace_column_names[k].name)) {
                continue;
            }
            int *slot = trace_column_slot(&t->cols, trace_column_names[k].which);
            if (*slot >= 0) {
                return trace_fail(t, CB_ERR_MALFORMED, "header: column '%s' repeats column %d",
                                  trace_show(name, shown), *slot + 1);
            }
            *slot = (int)i;
        }
    }
    if (t->cols.time < 0 || t->cols.key < 0 || t->cols.size < 0) {
        return trace_fail(t, CB_ERR_MALFORMED,
                          "header: needs time, object (or obj_id) and size columns");
    }
    return CB_ERR_OK;
}

/* The first line: a header (starts with '#', or its first field is not a time), or data in
 * the default columns time,object,size[,next_access_vtime]. Returns 1 if it was a header. */
static int trace_csv_first(cb_trace *t, trace_field line)
{
    trace_field first = {NULL, 0}; /* trace_split always sets it; -O2 cannot tell */
    uint64_t ns;
    t->header_done = 1;
    t->cols = (trace_columns){0, 1, 2, -1, -1, 3, 4};
    line = trace_trim(line);            /* not empty: blank lines are skipped before */
    (void)trace_split(line, &first, 1); /* only the first field matters here */
    if (line.s[0] != '#' && trace_seconds(trace_trim(first), &ns) != -1) {
        return 0;
    }
    int rc = trace_csv_header(t, line);
    return rc != CB_ERR_OK ? rc : 1;
}

static int trace_csv_key(cb_trace *t, trace_field f, cb_trace_record *rec)
{
    if (trace_u64(f, UINT64_MAX, &rec->key_id) == 0) {
        rec->key_is_id = 1;
        rec->key_bytes = CB_TRACE_ID_KEY_BYTES;
        return CB_ERR_OK;
    }
    return trace_key_string(t, f, rec);
}

static int trace_libcachesim(cb_trace *t, trace_field line, cb_trace_record *rec)
{
    trace_field f[TRACE_FIELDS_MAX];
    const trace_columns *c = &t->cols;
    uint64_t ns = 0, size = 0, ttl = 0;
    char shown[48];
    size_t count = trace_split(line, f, TRACE_FIELDS_MAX);
    if (count < c->count_min || count > c->count_max) {
        const char *more = count > TRACE_FIELDS_MAX ? "more than " : "";
        count = count > TRACE_FIELDS_MAX ? TRACE_FIELDS_MAX : count;
        if (c->count_min == c->count_max) {
            return trace_fail(t, CB_ERR_MALFORMED, "%s%zu field(s), expected %zu as in the header",
                              more, count, c->count_min);
        }
        return trace_fail(t, CB_ERR_MALFORMED,
                          "%s%zu field(s), expected 3 or 4 (time,object,size[,next_access_vtime])",
                          more, count);
    }
    for (size_t i = 0; i < count; i++) {
        f[i] = trace_trim(f[i]);
    }
    int rc = trace_seconds(f[c->time], &ns);
    if (rc != 0) {
        return trace_fail(t, rc == -2 ? CB_ERR_TOO_LARGE : CB_ERR_MALFORMED,
                          "time: '%s' is not seconds like 12 or 12.5",
                          trace_show(f[c->time], shown));
    }
    rec->op = CB_OP_GET;
    rec->fill_on_miss = 1;
    if ((rc = trace_csv_key(t, f[c->key], rec)) != CB_ERR_OK ||
        (rc = trace_field_u64(t, f[c->size], "size", UINT32_MAX, &size)) != CB_ERR_OK ||
        (c->op >= 0 && (rc = trace_op(t, f[c->op], rec)) != CB_ERR_OK) ||
        (c->ttl >= 0 && (rc = trace_field_u64(t, f[c->ttl], "ttl", UINT32_MAX, &ttl)) != 0)) {
        return rc;
    }
    rec->value_bytes = (uint32_t)size;
    rec->ttl_s = (uint32_t)ttl;
    rec->client_id = rec->index; /* no client column: deal records round-robin */
    return trace_time(t, ns, rec);
}

/* ---- records ---- */

static int trace_next_csv(cb_trace *t, cb_trace_record *rec)
{
    trace_field line;
    for (;;) {
        int rc = trace_line(t, &line);
        if (rc <= 0) {
            return rc;
        }
        if (trace_trim(line).n == 0) {
            continue; /* a blank line holds no record */
        }
        if (t->format == CB_TRACE_TWITTER) {
            rc = trace_twitter(t, line, rec);
            return rc == CB_ERR_OK ? 1 : rc;
        }
        if (!t->header_done) {
            rc = trace_csv_first(t, line);
            if (rc < 0) {
                return rc;
            }
            if (rc == 1) {
                continue;
            }
        }
        rc = trace_libcachesim(t, line, rec);
        return rc == CB_ERR_OK ? 1 : rc;
    }
}

static uint64_t trace_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i > 0; i--) {
        v = v << 8 | p[i - 1];
    }
    return v;
}

static int trace_next_oracle(cb_trace *t, cb_trace_record *rec)
{
    int eof = 0;
    while (t->len - t->pos < CB_TRACE_ORACLE_RECORD_BYTES) {
        if (eof) {
            if (t->len == t->pos) {
                return 0;
            }
            return trace_fail(t, CB_ERR_NEED_MORE, "truncated: %zu of %u bytes at the end",
                              t->len - t->pos, CB_TRACE_ORACLE_RECORD_BYTES);
        }
        int rc = trace_fill(t, &eof);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    const uint8_t *p = t->buf + t->pos;
    rec->op = CB_OP_GET;
    rec->fill_on_miss = 1;
    rec->key_is_id = 1;
    rec->key_id = trace_le(p + 4, 8);
    rec->key_bytes = CB_TRACE_ID_KEY_BYTES;
    rec->value_bytes = (uint32_t)trace_le(p + 12, 4);
    rec->client_id = rec->index; /* no client field: deal records round-robin */
    /* p + 16: next_access_vtime, libCacheSim's oracle for Belady-like policies; unused. */
    int rc = trace_time(t, trace_le(p, 4) * NS_PER_S, rec);
    t->pos += CB_TRACE_ORACLE_RECORD_BYTES;
    t->consumed += CB_TRACE_ORACLE_RECORD_BYTES;
    return rc == CB_ERR_OK ? 1 : rc;
}

int cb_trace_next(cb_trace *t, cb_trace_record *rec)
{
    if (t->status <= 0) {
        return t->status;
    }
    memset(rec, 0, sizeof *rec);
    rec->index = t->records;
    int rc =
        t->format == CB_TRACE_ORACLE_GENERAL ? trace_next_oracle(t, rec) : trace_next_csv(t, rec);
    if (rc < 0) {
        return rc;
    }
    if (rc == 0) {
        t->status = 0;
        return 0;
    }
    t->records++;
    return 1;
}

const char *cb_trace_error(const cb_trace *t)
{
    return t->err;
}

/* ---- open and close ---- */

static int trace_new(const char *name, cb_trace_format format, uint64_t speed_micro, cb_trace **out,
                     char *err, size_t err_cap)
{
    if (format != CB_TRACE_TWITTER && format != CB_TRACE_LIBCACHESIM_CSV &&
        format != CB_TRACE_ORACLE_GENERAL) {
        snprintf(err, err_cap, "%s: unknown trace format %d", name, (int)format);
        return CB_ERR_INVALID;
    }
    if (speed_micro < CB_TRACE_SPEED_MICRO_MIN || speed_micro > CB_TRACE_SPEED_MICRO_MAX) {
        snprintf(err, err_cap, "%s: speed %llu millionths is outside %u .. %u", name,
                 (unsigned long long)speed_micro, CB_TRACE_SPEED_MICRO_MIN,
                 CB_TRACE_SPEED_MICRO_MAX);
        return CB_ERR_INVALID;
    }
    cb_trace *t = calloc(1, sizeof *t);
    if (t == NULL) {
        snprintf(err, err_cap, "%s: out of memory", name);
        return CB_ERR_NOMEM;
    }
    t->format = format;
    t->speed_micro = speed_micro;
    t->status = 1;
    snprintf(t->name, sizeof t->name, "%s", name);
    *out = t;
    return CB_ERR_OK;
}

/* Look at the first bytes: zstd's magic number turns decompression on. */
static int trace_detect(cb_trace *t, char *err, size_t err_cap)
{
    static const uint8_t magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
    if (t->in_len - t->in_pos < sizeof magic || memcmp(t->in + t->in_pos, magic, 4) != 0) {
        return CB_ERR_OK;
    }
    t->zstd = ZSTD_createDCtx();
    if (t->zstd == NULL || ZSTD_isError(ZSTD_DCtx_setParameter(t->zstd, ZSTD_d_windowLogMax,
                                                               TRACE_ZSTD_WINDOW_LOG_MAX))) {
        snprintf(err, err_cap, "%s: out of memory", t->name);
        return CB_ERR_NOMEM;
    }
    return CB_ERR_OK;
}

int cb_trace_open_memory(const char *name, const uint8_t *buf, size_t buf_len,
                         cb_trace_format format, uint64_t speed_micro, cb_trace **out, char *err,
                         size_t err_cap)
{
    cb_trace *t;
    *out = NULL;
    int rc = trace_new(name, format, speed_micro, &t, err, err_cap);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    t->in = buf;
    t->in_len = buf_len;
    t->in_eof = 1;
    rc = trace_detect(t, err, err_cap);
    if (rc != CB_ERR_OK) {
        cb_trace_close(t);
        return rc;
    }
    *out = t;
    return CB_ERR_OK;
}

int cb_trace_open(const char *path, cb_trace_format format, uint64_t speed_micro, cb_trace **out,
                  char *err, size_t err_cap)
{
    cb_trace *t;
    *out = NULL;
    int rc = trace_new(path, format, speed_micro, &t, err, err_cap);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    t->file = fopen(path, "rb");
    if (t->file == NULL) {
        snprintf(err, err_cap, "%s: cannot open: %s", path, strerror(errno));
        cb_trace_close(t);
        return CB_ERR_INVALID;
    }
    t->in_cap = ZSTD_DStreamInSize();
    t->in = t->in_owned = malloc(t->in_cap);
    if (t->in_owned == NULL) {
        snprintf(err, err_cap, "%s: out of memory", path);
        cb_trace_close(t);
        return CB_ERR_NOMEM;
    }
    if (trace_in_refill(t) != CB_ERR_OK) {
        snprintf(err, err_cap, "%s", t->err);
        cb_trace_close(t);
        return CB_ERR_INVALID;
    }
    rc = trace_detect(t, err, err_cap);
    if (rc != CB_ERR_OK) {
        cb_trace_close(t);
        return rc;
    }
    *out = t;
    return CB_ERR_OK;
}

void cb_trace_close(cb_trace *t)
{
    if (t == NULL) {
        return;
    }
    if (t->file != NULL) {
        fclose(t->file);
    }
    ZSTD_freeDCtx(t->zstd);
    free(t->in_owned);
    free(t);
}
