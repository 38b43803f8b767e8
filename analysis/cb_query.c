/*
 * cb_query.c: one SQL statement in, rows out as a table, CSV or JSON (see cb_query.h).
 *
 * Every cell is first rendered into a growable byte buffer (query_buf) in the chosen format,
 * then written: at once for CSV and JSON, after all rows for the table, whose column widths
 * need every row.
 */
#include "cb_query.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A growable byte string; NUL-terminated whenever len > 0. */
typedef struct query_buf {
    char *data;
    size_t len;
    size_t cap;
    int nomem; /* an append failed: the content is incomplete */
} query_buf;

static void query_buf_free(query_buf *b)
{
    free(b->data);
    *b = (query_buf){0};
}

static void query_buf_add(query_buf *b, const char *s, size_t n)
{
    if (b->nomem) {
        return;
    }
    if (b->cap - b->len <= n) {
        size_t cap = b->cap > 0 ? b->cap : 64;
        while (cap - b->len <= n) {
            cap *= 2;
        }
        char *data = realloc(b->data, cap);
        if (data == NULL) {
            b->nomem = 1;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void query_buf_str(query_buf *b, const char *s)
{
    query_buf_add(b, s, strlen(s));
}

static void query_buf_printf(query_buf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) {
        query_buf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
    }
}

static void query_format_error(char *errbuf, size_t errcap, const char *fmt, ...)
{
    if (errcap == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(errbuf, errcap, fmt, ap);
    va_end(ap);
    if (n < 0) {
        errbuf[0] = '\0';
    }
}

/* ---- rendering values -------------------------------------------------------------------- */

/*
 * For scripts (CSV, JSON) the shorter of %.15g and %.17g that reads back as the same double;
 * for people (the table) %.15g, as the sqlite3 shell shows reals.
 */
static void query_add_real(query_buf *b, double v, cb_query_format format)
{
    if (!isfinite(v)) {
        query_buf_str(b, format == CB_QUERY_JSON ? "null" : (v > 0 ? "Inf" : "-Inf"));
        return;
    }
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (format != CB_QUERY_TABLE && strtod(tmp, NULL) != v) {
        snprintf(tmp, sizeof tmp, "%.17g", v);
    }
    query_buf_str(b, tmp);
}

static void query_add_blob_hex(query_buf *b, const unsigned char *p, int n)
{
    static const char digits[] = "0123456789ABCDEF";
    query_buf_str(b, "X'");
    for (int i = 0; i < n; i++) {
        char pair[2] = {digits[p[i] >> 4], digits[p[i] & 0xf]};
        query_buf_add(b, pair, 2);
    }
    query_buf_str(b, "'");
}

/* Table text: control characters escaped so that a cell stays on one line. */
static void query_add_table_text(query_buf *b, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '\n') {
            query_buf_str(b, "\\n");
        } else if (c == '\r') {
            query_buf_str(b, "\\r");
        } else if (c == '\t') {
            query_buf_str(b, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            query_buf_printf(b, "\\x%02x", c);
        } else {
            query_buf_add(b, (const char *)&p[i], 1);
        }
    }
}

/* CSV field (RFC 4180 §2.6-2.7): quoted when it holds a comma, quote, CR or LF. */
static void query_add_csv_text(query_buf *b, const char *p, size_t n)
{
    /* strcspn stops early at an embedded NUL too: such a field is quoted, harmlessly. */
    if (strcspn(p, ",\"\r\n") >= n) {
        query_buf_add(b, p, n);
        return;
    }
    query_buf_str(b, "\"");
    for (size_t i = 0; i < n; i++) {
        query_buf_add(b, &p[i], 1);
        if (p[i] == '"') {
            query_buf_str(b, "\"");
        }
    }
    query_buf_str(b, "\"");
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, surrogates), 0 if none. */
static size_t query_utf8_len(const unsigned char *p, size_t n)
{
    size_t len = p[0] < 0x80                    ? 1
                 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2
                 : (p[0] & 0xf0) == 0xe0        ? 3
                 : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4
                                                : 0;
    if (len == 0 || len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)) {
        return 0;
    }
    return len;
}

/* JSON string (RFC 8259 §7) with quotes; invalid UTF-8 bytes become U+FFFD. */
static void query_add_json_text(query_buf *b, const unsigned char *p, size_t n)
{
    query_buf_str(b, "\"");
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t len = query_utf8_len(p + i, n - i);
        if (len == 0) {
            query_buf_str(b, "\\ufffd");
            i++;
            continue;
        }
        if (c == '"' || c == '\\') {
            query_buf_add(b, "\\", 1);
            query_buf_add(b, (const char *)&c, 1);
        } else if (c == '\n') {
            query_buf_str(b, "\\n");
        } else if (c == '\r') {
            query_buf_str(b, "\\r");
        } else if (c == '\t') {
            query_buf_str(b, "\\t");
        } else if (c < 0x20) {
            query_buf_printf(b, "\\u%04x", c);
        } else {
            query_buf_add(b, (const char *)p + i, len);
        }
        i += len;
    }
    query_buf_str(b, "\"");
}

/* Render column `col` of the current row in `format` (appended to b). */
static void query_add_cell(query_buf *b, sqlite3_stmt *st, int col, cb_query_format format)
{
    int type = sqlite3_column_type(st, col);
    if (type == SQLITE_NULL) {
        query_buf_str(b, format == CB_QUERY_JSON ? "null" : format == CB_QUERY_CSV ? "" : "NULL");
    } else if (type == SQLITE_INTEGER) {
        query_buf_printf(b, "%lld", (long long)sqlite3_column_int64(st, col));
    } else if (type == SQLITE_FLOAT) {
        query_add_real(b, sqlite3_column_double(st, col), format);
    } else if (type == SQLITE_BLOB) {
        query_buf btmp = {0};
        query_add_blob_hex(&btmp, sqlite3_column_blob(st, col), sqlite3_column_bytes(st, col));
        if (format == CB_QUERY_JSON) {
            query_add_json_text(b, (const unsigned char *)btmp.data, btmp.len);
        } else {
            query_buf_add(b, btmp.data, btmp.len);
        }
        b->nomem |= btmp.nomem;
        query_buf_free(&btmp);
    } else {
        const unsigned char *text = sqlite3_column_text(st, col);
        size_t n = (size_t)sqlite3_column_bytes(st, col);
        if (format == CB_QUERY_JSON) {
            query_add_json_text(b, text, n);
        } else if (format == CB_QUERY_CSV) {
            query_add_csv_text(b, (const char *)text, n);
        } else {
            query_add_table_text(b, text, n);
        }
    }
}

/* ---- CSV and JSON: streamed ---------------------------------------------------------------- */

static void query_add_csv_header(query_buf *b, sqlite3_stmt *st, int ncol)
{
    for (int i = 0; i < ncol; i++) {
        const char *name = sqlite3_column_name(st, i);
        if (i > 0) {
            query_buf_str(b, ",");
        }
        query_add_csv_text(b, name != NULL ? name : "", name != NULL ? strlen(name) : 0);
    }
    query_buf_str(b, "\r\n");
}

static void query_add_row(query_buf *b, sqlite3_stmt *st, int ncol, cb_query_format format,
                          int64_t row)
{
    if (format == CB_QUERY_JSON) {
        query_buf_str(b, row > 0 ? ",\n{" : "\n{");
    }
    for (int i = 0; i < ncol; i++) {
        if (i > 0) {
            query_buf_str(b, ",");
        }
        if (format == CB_QUERY_JSON) {
            const char *name = sqlite3_column_name(st, i);
            name = name != NULL ? name : "";
            query_add_json_text(b, (const unsigned char *)name, strlen(name));
            query_buf_str(b, ":");
        }
        query_add_cell(b, st, i, format);
    }
    query_buf_str(b, format == CB_QUERY_JSON ? "}" : "\r\n");
}

/* Write and empty b; -1 when out of memory or the write failed. */
static int query_flush(query_buf *b, FILE *out)
{
    if (b->nomem) {
        return -1;
    }
    if (b->len > 0 && fwrite(b->data, 1, b->len, out) != b->len) {
        return -1;
    }
    b->len = 0;
    return 0;
}

static int query_stream(sqlite3_stmt *st, cb_query_format format, FILE *out, char *errbuf,
                        size_t errcap)
{
    int ncol = sqlite3_column_count(st);
    query_buf b = {0};
    if (format == CB_QUERY_CSV) {
        query_add_csv_header(&b, st, ncol);
    } else {
        query_buf_str(&b, "[");
    }
    int rc;
    int io_rc = 0;
    int64_t row = 0;
    while (io_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        query_add_row(&b, st, ncol, format, row++);
        io_rc = query_flush(&b, out);
    }
    if (io_rc == 0 && rc == SQLITE_DONE) {
        query_buf_str(&b, format == CB_QUERY_JSON ? (row > 0 ? "\n]\n" : "]\n") : "");
        io_rc = query_flush(&b, out);
    }
    int nomem = b.nomem;
    query_buf_free(&b);
    if (io_rc != 0) {
        query_format_error(errbuf, errcap, "%s", nomem ? "out of memory" : strerror(errno));
        return CB_QUERY_ERROR;
    }
    if (rc != SQLITE_DONE) {
        query_format_error(errbuf, errcap, "%s", sqlite3_errmsg(sqlite3_db_handle(st)));
        return CB_QUERY_ERROR;
    }
    return CB_QUERY_OK;
}

/* ---- table: buffered ---------------------------------------------------------------------- */

/* Every cell's rendered text, row-major, header first; offsets into one buffer. */
typedef struct query_table {
    query_buf text;
    size_t *offsets; /* start of cell i in text.data; cell i ends at offsets[i + 1] */
    size_t count;    /* cells stored */
    size_t cap;
    int ncol;
    size_t *widths;  /* per column, in code points */
    int *is_number;  /* per column: every non-NULL cell is an INTEGER or REAL */
    int *has_number; /* per column: some cell is a number */
} query_table;

static size_t query_utf8_width(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        w += ((unsigned char)s[i] & 0xc0) != 0x80;
    }
    return w;
}

static int query_table_push(query_table *t, sqlite3_stmt *st, int col, const char *header)
{
    if (t->count + 1 >= t->cap) {
        size_t cap = t->cap > 0 ? t->cap * 2 : 256;
        size_t *offsets = realloc(t->offsets, cap * sizeof *offsets);
        if (offsets == NULL) {
            return -1;
        }
        t->offsets = offsets;
        t->cap = cap;
    }
    size_t start = t->text.len;
    t->offsets[t->count] = start;
    if (header != NULL) {
        query_add_table_text(&t->text, (const unsigned char *)header, strlen(header));
    } else {
        query_add_cell(&t->text, st, col, CB_QUERY_TABLE);
        int type = sqlite3_column_type(st, col);
        int number = type == SQLITE_INTEGER || type == SQLITE_FLOAT;
        t->is_number[col] &= number || type == SQLITE_NULL;
        t->has_number[col] |= number;
    }
    size_t w = query_utf8_width(t->text.data + start, t->text.len - start);
    t->widths[col] = w > t->widths[col] ? w : t->widths[col];
    t->count++;
    t->offsets[t->count] = t->text.len;
    return t->text.nomem ? -1 : 0;
}

static void query_table_free(query_table *t)
{
    query_buf_free(&t->text);
    free(t->offsets);
    free(t->widths);
    free(t->is_number);
    free(t->has_number);
}

static void query_pad(query_buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        query_buf_add(b, " ", 1);
    }
}

/* Print row `row` (0: the header) and, after the header, the rule under it. */
static void query_table_row(const query_table *t, size_t row, query_buf *b)
{
    for (int c = 0; c < t->ncol; c++) {
        size_t cell = row * (size_t)t->ncol + (size_t)c;
        const char *s = t->text.data + t->offsets[cell];
        size_t n = t->offsets[cell + 1] - t->offsets[cell];
        size_t pad = t->widths[c] - query_utf8_width(s, n);
        int right = t->is_number[c] && t->has_number[c];
        query_buf_str(b, c > 0 ? " | " : "");
        query_pad(b, right ? pad : 0);
        query_buf_add(b, s, n);
        query_pad(b, right || c == t->ncol - 1 ? 0 : pad);
    }
    query_buf_str(b, "\n");
    for (int c = 0; row == 0 && c < t->ncol; c++) {
        query_buf_str(b, c > 0 ? "-+-" : "");
        for (size_t i = 0; i < t->widths[c]; i++) {
            query_buf_str(b, "-");
        }
        query_buf_str(b, c == t->ncol - 1 ? "\n" : "");
    }
}

static int query_table_print(const query_table *t, FILE *out)
{
    size_t rows = t->count / (size_t)t->ncol;
    query_buf b = {0};
    int rc = 0;
    for (size_t r = 0; r < rows && rc == 0; r++) {
        query_table_row(t, r, &b);
        rc = query_flush(&b, out);
    }
    if (rc == 0) {
        query_buf_printf(&b, "(%zu row%s)\n", rows - 1, rows - 1 == 1 ? "" : "s");
        rc = query_flush(&b, out);
    }
    query_buf_free(&b);
    return rc;
}

static int query_table_init(query_table *t, sqlite3_stmt *st)
{
    *t = (query_table){0};
    t->ncol = sqlite3_column_count(st);
    size_t n = (size_t)t->ncol;
    t->widths = calloc(n, sizeof *t->widths);
    t->is_number = malloc(n * sizeof *t->is_number);
    t->has_number = calloc(n, sizeof *t->has_number);
    if (t->widths == NULL || t->is_number == NULL || t->has_number == NULL) {
        return -1;
    }
    for (int c = 0; c < t->ncol; c++) {
        const char *name = sqlite3_column_name(st, c);
        t->is_number[c] = 1;
        if (query_table_push(t, st, c, name != NULL ? name : "") != 0) {
            return -1;
        }
    }
    return 0;
}

static int query_table_run(sqlite3_stmt *st, FILE *out, char *errbuf, size_t errcap)
{
    query_table t;
    int rc = SQLITE_NOMEM;
    int mem_rc = query_table_init(&t, st);
    while (mem_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < t.ncol && mem_rc == 0; c++) {
            mem_rc = query_table_push(&t, st, c, NULL);
        }
    }
    int io_rc = mem_rc == 0 && rc == SQLITE_DONE ? query_table_print(&t, out) : 0;
    query_table_free(&t);
    if (mem_rc != 0) {
        query_format_error(errbuf, errcap, "out of memory");
    } else if (rc != SQLITE_DONE) {
        query_format_error(errbuf, errcap, "%s", sqlite3_errmsg(sqlite3_db_handle(st)));
    } else if (io_rc != 0) {
        query_format_error(errbuf, errcap, "write: %s", strerror(errno));
    }
    return mem_rc == 0 && rc == SQLITE_DONE && io_rc == 0 ? CB_QUERY_OK : CB_QUERY_ERROR;
}

/* ---- entry points -------------------------------------------------------------------------- */

static int query_exec(sqlite3_stmt *st, char *errbuf, size_t errcap)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) {
        query_format_error(errbuf, errcap, "%s", sqlite3_errmsg(sqlite3_db_handle(st)));
        return CB_QUERY_ERROR;
    }
    return CB_QUERY_OK;
}

/* 1 if `tail` holds another statement (not just blanks, comments and semicolons). */
static int query_has_more(sqlite3 *db, const char *tail)
{
    while (tail != NULL && *tail != '\0') {
        sqlite3_stmt *next = NULL;
        const char *rest = NULL;
        int rc = sqlite3_prepare_v2(db, tail, -1, &next, &rest);
        sqlite3_finalize(next);
        if (rc != SQLITE_OK || next != NULL) {
            return 1;
        }
        tail = rest;
    }
    return 0;
}

int cb_query_run(sqlite3 *db, const char *sql, cb_query_format format, FILE *out, char *errbuf,
                 size_t errcap)
{
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, &tail) != SQLITE_OK) {
        query_format_error(errbuf, errcap, "%s", sqlite3_errmsg(db));
        return CB_QUERY_ERROR;
    }
    if (st == NULL) {
        query_format_error(errbuf, errcap, "no SQL statement to run");
        return CB_QUERY_ERROR;
    }
    if (query_has_more(db, tail)) {
        sqlite3_finalize(st);
        query_format_error(errbuf, errcap,
                           "more than one SQL statement: run one at a time (text after the "
                           "first ';' was: %.60s)",
                           tail);
        return CB_QUERY_ERROR;
    }
    int rc;
    if (sqlite3_column_count(st) == 0) {
        rc = query_exec(st, errbuf, errcap); /* a statement without rows prints nothing */
    } else if (format == CB_QUERY_TABLE) {
        rc = query_table_run(st, out, errbuf, errcap);
    } else {
        rc = query_stream(st, format, out, errbuf, errcap);
    }
    sqlite3_finalize(st);
    if (rc == CB_QUERY_OK && fflush(out) != 0) {
        query_format_error(errbuf, errcap, "write: %s", strerror(errno));
        return CB_QUERY_ERROR;
    }
    return rc;
}

int cb_query_open(const char *path, sqlite3 **out, char *errbuf, size_t errcap)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        query_format_error(errbuf, errcap, "%s: %s", path, strerror(errno));
        return CB_QUERY_ERROR;
    }
    if (!S_ISREG(sb.st_mode)) {
        query_format_error(errbuf, errcap, "%s: not a regular file", path);
        return CB_QUERY_ERROR;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    /* The header is read lazily: touch the schema now so a non-database fails here. */
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        query_format_error(errbuf, errcap, "%s: %s", path,
                           db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return CB_QUERY_ERROR;
    }
    /* Wait for a writer's transaction rather than fail at once. */
    (void)sqlite3_busy_timeout(db, 10000); /* cannot fail on an open connection */
    *out = db;
    return CB_QUERY_OK;
}
