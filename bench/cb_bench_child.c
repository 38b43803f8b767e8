/* cb_bench_child.c: one measurement per forked child; see cb_bench_child.h. */
#include "cb_bench_child.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *cb_bench_malloc_name(void)
{
    static char name[96];
    typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
    mallctl_fn mallctl = NULL;
    void *sym = dlsym(RTLD_DEFAULT, "mallctl");
    memcpy(&mallctl, &sym, sizeof mallctl); /* ISO C has no object-to-function cast */
    const char *version = NULL;
    size_t len = sizeof version;
    if (mallctl == NULL || mallctl("version", &version, &len, NULL, 0) != 0 || version == NULL) {
        return "glibc malloc";
    }
    snprintf(name, sizeof name, "jemalloc %.*s", (int)strcspn(version, "-"), version);
    return name;
}

double cb_bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Write all of buf or fail. */
static int child_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int child_read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void child_run(int fd, void (*fn)(void *, void *), void *arg, void *out, size_t out_len)
{
    fn(arg, out);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    cb_bench_usage u = {(double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
                        ru.ru_maxrss};
    int ok = child_write_all(fd, out, out_len) == 0 && child_write_all(fd, &u, sizeof u) == 0;
    _exit(ok ? 0 : 1);
}

int cb_bench_child(void (*fn)(void *arg, void *out), void *arg, void *out, size_t out_len,
                   cb_bench_usage *usage)
{
    int fds[2];
    if (pipe(fds) != 0) {
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        child_run(fds[1], fn, arg, out, out_len);
    }
    close(fds[1]);
    int got = child_read_all(fds[0], out, out_len) == 0 &&
              child_read_all(fds[0], usage, sizeof *usage) == 0;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return got && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}
