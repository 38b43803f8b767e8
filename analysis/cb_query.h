/*
 * cb_query.h: run one SQL statement on a results database and print its rows — the engine of
 * `cachebed query` (docs/results.md has example queries).
 *
 * Three formats:
 *   - CB_QUERY_TABLE: an aligned table for people. Column widths come from the data (in
 *     UTF-8 code points; East Asian wide characters are counted as one), numbers are
 *     right-aligned, NULL shows as "NULL", control characters in text show escaped (\n, \t,
 *     \xNN) so that every row stays on one line, reals show 15 significant digits, and a
 *     "(N rows)" line ends it. All rows are held in memory to size the columns.
 *   - CB_QUERY_CSV: RFC 4180 — a header line, CRLF line ends, fields that hold a comma, a
 *     double quote, CR or LF are quoted with quotes doubled; NULL is an empty field. Streamed.
 *   - CB_QUERY_JSON: an array of objects, one per row, keys the column names; integers and
 *     reals are JSON numbers (non-finite reals become null), NULL is null, text is a JSON
 *     string (invalid UTF-8 replaced by U+FFFD). Streamed.
 * CSV and JSON print reals with as many digits as it takes to read back the same double
 * (at most 17). A BLOB prints as X'hex' (a JSON string in JSON).
 */
#ifndef CB_QUERY_H
#define CB_QUERY_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    CB_QUERY_TABLE = 0,
    CB_QUERY_CSV,
    CB_QUERY_JSON,
} cb_query_format;

enum {
    CB_QUERY_OK = 0,
    CB_QUERY_ERROR = -1,
};

/*
 * Open an existing database at `path` read-only (never creates it). On success *out is a
 * connection the caller closes with sqlite3_close(). Errors (CB_QUERY_ERROR, *out = NULL, a
 * message naming `path` in errbuf): no such file, cannot open, not an SQLite database.
 */
int cb_query_open(const char *path, sqlite3 **out, char *errbuf, size_t errcap);

/*
 * Run the one SQL statement in `sql` on `db` and print its rows to `out` in `format`.
 * Errors (CB_QUERY_ERROR, SQLite's message in errbuf): the SQL does not compile, holds no
 * statement or more than one, fails while running (CSV and JSON may then have printed some
 * rows), out of memory, or writing to `out` failed.
 */
int cb_query_run(sqlite3 *db, const char *sql, cb_query_format format, FILE *out, char *errbuf,
                 size_t errcap);

#endif
