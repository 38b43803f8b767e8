/*
 * cachebed.c: the `cachebed` command — argument parsing and dispatch, nothing more.
 *
 * Each verb has a one-line summary (for `cachebed --help`), a full help text (for
 * `cachebed VERB --help`) and a handler. A verb asked for something it cannot do yet (a
 * scenario feature a world refuses) says so and exits with status 3, so scripts can tell
 * "not yet" from "failed" (1) and "bad usage" (2).
 */
#include "cb_cli.h"

#include <stdio.h>
#include <string.h>

static const cb_cli_verb cli_verbs[] = {
    {"run", "run one scenario and log it to the results database", cb_cli_run_help, cb_cli_run},
    {"compare", "run a scenario across varied parameters and seeds, compare the results",
     cb_cli_compare_help, cb_cli_compare},
    {"check", "run a scenario under random fault schedules and check its invariants",
     cb_cli_check_help, cb_cli_check},
    {"merge", "merge results databases (one per job of a sweep) into one", cb_cli_merge_help,
     cb_cli_merge},
    {"replay", "replay a scenario's workload over real sockets on loopback", cb_cli_replay_help,
     cb_cli_replay},
    {"serve", "run a real cache server (binary frame and memcached protocols)", cb_cli_serve_help,
     cb_cli_serve},
    {"broker", "run the queue transport's broker as a real process", cb_cli_broker_help,
     cb_cli_broker},
    {"query", "run SQL on a results database", cb_cli_query_help, cb_cli_query},
    {"report", "render tables and plots from a results database", cb_cli_report_help,
     cb_cli_report},
    {"bench", "run a benchmark (store, placement, sim, serve, codec, logging) and print its figures",
     cb_cli_bench_help, cb_cli_bench},
    {"keygen", "write a new key file for sealed frames (mode 0600)", cb_cli_keygen_help,
     cb_cli_keygen},
};

static void cli_print_usage(FILE *out)
{
    fprintf(out,
            "usage: cachebed VERB [ARGS...]\n"
            "       cachebed VERB --help\n"
            "       cachebed --version\n\n"
            "cachebed %s: a simulator and testbed for distributed-cache protocols.\n\n"
            "verbs:\n",
            CB_VERSION);
    for (size_t i = 0; i < sizeof cli_verbs / sizeof cli_verbs[0]; i++) {
        fprintf(out, "  %-9s %s\n", cli_verbs[i].name, cli_verbs[i].summary);
    }
    fprintf(out, "\nExit status: 0 ok, 1 failed, 2 bad usage, 3 not supported yet (the reason "
                 "is printed).\n");
}

static const cb_cli_verb *cli_find_verb(const char *name)
{
    for (size_t i = 0; i < sizeof cli_verbs / sizeof cli_verbs[0]; i++) {
        if (strcmp(cli_verbs[i].name, name) == 0) {
            return &cli_verbs[i];
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_print_usage(stderr);
        return CB_CLI_EXIT_USAGE;
    }
    const char *arg = argv[1];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "help") == 0) {
        cli_print_usage(stdout);
        return CB_CLI_EXIT_OK;
    }
    if (strcmp(arg, "--version") == 0) {
        printf("cachebed %s\n", CB_VERSION);
        return CB_CLI_EXIT_OK;
    }
    if (arg[0] == '-') {
        fprintf(stderr, "cachebed: unknown option '%s' (try 'cachebed --help')\n", arg);
        return CB_CLI_EXIT_USAGE;
    }
    const cb_cli_verb *verb = cli_find_verb(arg);
    if (verb == NULL) {
        fprintf(stderr, "cachebed: unknown verb '%s' (try 'cachebed --help')\n", arg);
        return CB_CLI_EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(verb->help, stdout);
            return CB_CLI_EXIT_OK;
        }
    }
    return verb->fn(verb, argc - 2, argv + 2);
}
