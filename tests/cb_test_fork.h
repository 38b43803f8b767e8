/*
 * cb_test_fork.h: run each simulation of a test in its own forked child.
 *
 * SimGrid runs one simulation per process (SIMGRID-NOTES.md §6), so a suite with several
 * SimGrid runs forks a child for each: the child runs fn(arg, result) and sends `result`
 * back through a pipe. The child ends with exit(), not _exit(), so LeakSanitizer checks it.
 * Under ASan the children use SimGrid's thread contexts, the one factory under which LSan
 * sees every leak (SIMGRID-NOTES.md §7); otherwise the fast raw contexts.
 */
#ifndef CB_TEST_FORK_H
#define CB_TEST_FORK_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cb_test.h"

#if defined(__SANITIZE_ADDRESS__)
#define CB_TEST_SG_FACTORY "thread"
#else
#define CB_TEST_SG_FACTORY "raw"
#endif

typedef void (*cb_test_child_fn)(const void *arg, void *result);

/* Run fn(arg, result) in a child and copy its result back. Returns the child's exit status
 * (0 = ok), or -1 when it died or sent a short result. */
static inline int cb_test_fork(cb_test_child_fn fn, const void *arg, void *result,
                               size_t result_len)
{
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        memset(result, 0, result_len);
        fn(arg, result);
        ssize_t wrote = write(fds[1], result, result_len);
        exit(wrote == (ssize_t)result_len ? 0 : 3); /* exit, not _exit: LSan runs at exit */
    }
    close(fds[1]);
    size_t got = 0;
    while (got < result_len) {
        ssize_t r = read(fds[0], (uint8_t *)result + got, result_len - got);
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fds[0]);
    int status = 0;
    CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || got != result_len) {
        return -1;
    }
    return WEXITSTATUS(status);
}

#endif
