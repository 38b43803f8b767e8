/*
 * cli_merge.c: `cachebed merge OUT.db IN.db...` — append the runs of several results
 * databases to one (analysis/cb_merge.h). For sweeps run as one database per job: a Slurm
 * job array, GNU parallel (docs/compare.md).
 */
#include "cb_cli.h"

#include <stdio.h>
#include <string.h>

#include "cb_merge.h"
#include "cb_results.h"

const char cb_cli_merge_help[] =
    "usage: cachebed merge OUT.db IN.db [IN.db ...]\n"
    "\n"
    "Appends every run of each IN.db (its requests, events and summary) to OUT.db, created\n"
    "if missing. Runs are renumbered after OUT.db's last run, keeping their order; each\n"
    "input is merged in one transaction and only read. Made for sweeps that write one\n"
    "database per job (Slurm job arrays, GNU parallel): see docs/compare.md.\n"
    "\n"
    "Exit status: 0 ok, 1 an input could not be merged (the others are), 2 bad usage.\n";

int cb_cli_merge(const cb_cli_verb *verb, int argc, char **argv)
{
    (void)verb;
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "cachebed merge: unknown option '%s' (try 'cachebed merge --help')\n",
                    argv[i]);
            return CB_CLI_EXIT_USAGE;
        }
    }
    if (argc < 2) {
        fputs("usage: cachebed merge OUT.db IN.db [IN.db ...] (try 'cachebed merge --help')\n",
              stderr);
        return CB_CLI_EXIT_USAGE;
    }
    int status = CB_CLI_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        char err[512];
        cb_merge_stats s;
        if (cb_merge_file(argv[0], argv[i], &s, err, sizeof err) != CB_RESULTS_OK) {
            fprintf(stderr, "cachebed merge: %s\n", err);
            status = CB_CLI_EXIT_FAILED;
            continue;
        }
        printf("%s: %llu run(s), %llu request(s), %llu event(s); run ids + %lld\n", argv[i],
               (unsigned long long)s.runs, (unsigned long long)s.requests,
               (unsigned long long)s.events, (long long)s.id_offset);
    }
    return status;
}
