/* cb_cli.h: what the cachebed command's verbs share — the verb table entry and exit codes. */
#ifndef CB_CLI_H
#define CB_CLI_H

enum {
    CB_CLI_EXIT_OK = 0,
    CB_CLI_EXIT_FAILED = 1,
    CB_CLI_EXIT_USAGE = 2,
    CB_CLI_EXIT_NOT_BUILT = 3,
};

typedef struct cb_cli_verb cb_cli_verb;
struct cb_cli_verb {
    const char *name;
    const char *summary; /* one line for `cachebed --help` */
    const char *help;    /* full text for `cachebed VERB --help` */
    /* argv holds the verb's own arguments (after the verb); returns an exit status. */
    int (*fn)(const cb_cli_verb *verb, int argc, char **argv);
};

extern const char cb_cli_run_help[];
int cb_cli_run(const cb_cli_verb *verb, int argc, char **argv);

extern const char cb_cli_bench_help[];
int cb_cli_bench(const cb_cli_verb *verb, int argc, char **argv);

extern const char cb_cli_serve_help[];
int cb_cli_serve(const cb_cli_verb *verb, int argc, char **argv);

extern const char cb_cli_query_help[];
int cb_cli_query(const cb_cli_verb *verb, int argc, char **argv);

#endif
