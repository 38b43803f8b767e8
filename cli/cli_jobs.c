/*
 * cli_jobs.c: run child processes, at most J at a time — the job machinery of sweeps
 * (`cachebed check`, `cachebed compare`). Each child gets stdout on /dev/null and
 * stderr in its log file, then execs argv; the caller learns of each end through a callback.
 */
#include "cb_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void jobs_exec(const cb_cli_job *j)
{
    if (freopen("/dev/null", "w", stdout) == NULL || freopen(j->log_path, "w", stderr) == NULL) {
        _exit(126);
    }
    execv(j->argv[0], (char *const *)j->argv);
    fprintf(stderr, "cachebed: cannot run %s: %s\n", j->argv[0], strerror(errno));
    _exit(127);
}

static uint64_t jobs_now_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* CLOCK_MONOTONIC always exists on Linux */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int jobs_spawn(cb_cli_job *j)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "cachebed: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        jobs_exec(j);
    }
    j->pid = pid;
    j->status = -1;
    j->started_ns = jobs_now_ns();
    return 0;
}

int cb_cli_jobs_run(cb_cli_job *jobs, uint32_t count, uint32_t jobs_max,
                    volatile sig_atomic_t *stop, cb_cli_job_ended_fn ended, void *user)
{
    uint32_t next = 0, running = 0, done = 0;
    int rc = 0;
    while (done < next || (next < count && !*stop && rc == 0)) {
        while (running < jobs_max && next < count && !*stop && rc == 0) {
            rc = jobs_spawn(&jobs[next]);
            next += rc == 0;
            running += rc == 0;
        }
        if (running == 0) {
            break;
        }
        int wstatus = 0;
        pid_t pid = waitpid(-1, &wstatus, 0);
        if (pid < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        for (uint32_t i = 0; i < next; i++) {
            if (jobs[i].pid == pid && jobs[i].status == -1) {
                running--;
                jobs[i].status =
                    WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
                ended(user, i, ++done);
            }
        }
    }
    return rc;
}
