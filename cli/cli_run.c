/* cli_run.c: `cachebed run SCENARIO` (placeholder until the in-memory run lands). */
#include "cb_cli.h"

#include <stdio.h>

const char cb_cli_run_help[] = "usage: cachebed run SCENARIO\n";

int cb_cli_run(const cb_cli_verb *verb, int argc, char **argv)
{
    (void)verb;
    (void)argc;
    (void)argv;
    fprintf(stderr, "cachebed run: not built yet\n");
    return CB_CLI_EXIT_NOT_BUILT;
}
