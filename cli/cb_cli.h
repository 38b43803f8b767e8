/* cb_cli.h: what the cachebed command's verbs share — the verb table entry and exit codes. */
#ifndef CB_CLI_H
#define CB_CLI_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "cb_seal.h"

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

/*
 * A world a verb other than `run` supplies to cli_run.c's pipeline (plan, workload,
 * placement, runner, results database, summary): `cachebed replay`'s real sockets. Each
 * function returns 0, or -1 after printing why; `user` is the verb's.
 */
struct cb_plan;
struct cb_memworld_config;
struct cb_results;
struct cb_world_hooks;
typedef struct cb_cli_world_ops {
    const char *verb;  /* for messages: "replay" */
    const char *mode;  /* runs.mode: "real" */
    const char *clock; /* the summary's word for the run's clock: "elapsed" */
    void *user;
    /* Why the plan cannot run in this world, or NULL. */
    const char *(*unsupported)(void *user, const struct cb_plan *p);
    /* Build the world from the plan and the machines' config (servers, clients, codec);
     * key_path is the plan's encryption key file resolved against the scenario, or NULL. */
    int (*build)(void *user, const struct cb_plan *p, const struct cb_memworld_config *mc,
                 const char *key_path);
    /* Record what the world adds to the run (events rows) once the run is begun. */
    int (*note)(void *user, struct cb_results *db, int64_t run_id);
    /* Run the hooks to the end; *end_ns is the run's clock at the end. Returns a cb_err. */
    int (*run)(void *user, const struct cb_world_hooks *hooks, volatile sig_atomic_t *stop,
               uint64_t *end_ns);
    void (*close)(void *user); /* also after a failed build */
} cb_cli_world_ops;

/* `cachebed run`'s pipeline over `ops`'s world; argv as cb_cli_run's, without --world. */
int cb_cli_run_world(int argc, char **argv, const cb_cli_world_ops *ops);

extern const char cb_cli_replay_help[];
int cb_cli_replay(const cb_cli_verb *verb, int argc, char **argv);

extern const char cb_cli_bench_help[];
int cb_cli_bench(const cb_cli_verb *verb, int argc, char **argv);

extern const char cb_cli_keygen_help[];
int cb_cli_keygen(const cb_cli_verb *verb, int argc, char **argv);

/*
 * Load a seal key file (docs/protocol.md §6.4) into *out. Returns 0, or -1 after printing
 * why to stderr (missing, not a regular file, wrong size, not 64 hex digits). A file group
 * or others can read loads, with a warning printed to `warn` (NULL: none).
 */
int cb_cli_load_key(const char *path, cb_seal_key *out, FILE *warn);

extern const char cb_cli_compare_help[];
int cb_cli_compare(const cb_cli_verb *verb, int argc, char **argv);

extern const char cb_cli_merge_help[];
int cb_cli_merge(const cb_cli_verb *verb, int argc, char **argv);

extern const char cb_cli_broker_help[];
int cb_cli_broker(const cb_cli_verb *verb, int argc, char **argv);

extern const char cb_cli_serve_help[];
int cb_cli_serve(const cb_cli_verb *verb, int argc, char **argv);
/* `cachebed serve --broker HOST:PORT --node N` (cli_serve_queue.c): an exit status. */
struct cb_serve_config;
int cb_cli_serve_queue(const struct cb_serve_config *sc, const char *broker, uint32_t node,
                       uint64_t reconnect_ns, uint64_t connect_wait_ns);

extern const char cb_cli_query_help[];
int cb_cli_query(const cb_cli_verb *verb, int argc, char **argv);

extern const char cb_cli_report_help[];
int cb_cli_report(const cb_cli_verb *verb, int argc, char **argv);

extern const char cb_cli_check_help[];
int cb_cli_check(const cb_cli_verb *verb, int argc, char **argv);

/* One child process of a sweep (cli_jobs.c): argv[0] is the program, NULL-terminated;
 * stdout goes to /dev/null and stderr to log_path. status: exit status, -1 until it ended
 * (128 + signal if killed). started_ns: CLOCK_MONOTONIC when it was started. */
typedef struct cb_cli_job {
    const char *const *argv;
    const char *log_path;
    pid_t pid;
    int status;
    uint64_t started_ns;
} cb_cli_job;

typedef void (*cb_cli_job_ended_fn)(void *user, uint32_t idx, uint32_t done);

/*
 * Run `count` jobs, at most `jobs_max` at a time, until all ended or *stop is set (then the
 * running ones are still waited for). `ended` is called as each ends, with the number ended
 * so far. Returns 0, or -1 if a job could not start or waiting failed.
 */
int cb_cli_jobs_run(cb_cli_job *jobs, uint32_t count, uint32_t jobs_max,
                    volatile sig_atomic_t *stop, cb_cli_job_ended_fn ended, void *user);

#endif
