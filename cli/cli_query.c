/* cli_query.c: `cachebed query RESULTS.db "SQL" [--csv | --json]` (analysis/cb_query.h). */
#include "cb_cli.h"
#include "cb_query.h"

#include <stdio.h>
#include <string.h>

const char cb_cli_query_help[] =
    "usage: cachebed query RESULTS.db \"SQL\" [--csv | --json]\n"
    "\n"
    "Runs one SQL statement on a results database, opened read-only, and prints the rows as\n"
    "an aligned table (numbers right-aligned, NULL shown as NULL), as CSV (--csv, RFC 4180)\n"
    "or as a JSON array of objects (--json). The schema and example queries are in\n"
    "docs/results.md, e.g.\n"
    "\n"
    "  cachebed query results.db \"SELECT r.transport, s.p99_us FROM runs r\n"
    "                             JOIN run_summary s ON s.run_id = r.id\"\n"
    "\n"
    "Exit status: 0 ok, 1 the database cannot be opened or the SQL failed (SQLite's message\n"
    "on stderr), 2 bad usage.\n";

typedef struct cli_query_args {
    const char *path;
    const char *sql;
    cb_query_format format;
} cli_query_args;

static int cli_query_parse(int argc, char **argv, cli_query_args *a)
{
    int positional = 0;
    int formats = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--csv") == 0 || strcmp(argv[i], "--json") == 0) {
            a->format = argv[i][2] == 'c' ? CB_QUERY_CSV : CB_QUERY_JSON;
            formats++;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "cachebed query: unknown option '%s'\n", argv[i]);
            return CB_CLI_EXIT_USAGE;
        } else if (positional == 0) {
            a->path = argv[i];
            positional++;
        } else if (positional == 1) {
            a->sql = argv[i];
            positional++;
        } else {
            fprintf(stderr,
                    "cachebed query: unexpected argument '%s' (quote the SQL as one "
                    "argument)\n",
                    argv[i]);
            return CB_CLI_EXIT_USAGE;
        }
    }
    if (formats > 1) {
        fprintf(stderr, "cachebed query: give at most one of --csv and --json\n");
        return CB_CLI_EXIT_USAGE;
    }
    if (positional != 2) {
        fprintf(stderr, "usage: cachebed query RESULTS.db \"SQL\" [--csv | --json]\n");
        return CB_CLI_EXIT_USAGE;
    }
    return CB_CLI_EXIT_OK;
}

int cb_cli_query(const cb_cli_verb *verb, int argc, char **argv)
{
    (void)verb;
    cli_query_args a = {NULL, NULL, CB_QUERY_TABLE};
    int rc = cli_query_parse(argc, argv, &a);
    if (rc != CB_CLI_EXIT_OK) {
        return rc;
    }
    char err[512];
    sqlite3 *db = NULL;
    if (cb_query_open(a.path, &db, err, sizeof err) != CB_QUERY_OK) {
        fprintf(stderr, "cachebed query: %s\n", err);
        return CB_CLI_EXIT_FAILED;
    }
    rc = cb_query_run(db, a.sql, a.format, stdout, err, sizeof err);
    sqlite3_close(db);
    if (rc != CB_QUERY_OK) {
        fprintf(stderr, "cachebed query: %s\n", err);
        return CB_CLI_EXIT_FAILED;
    }
    return CB_CLI_EXIT_OK;
}
