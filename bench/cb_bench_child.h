/*
 * cb_bench_child.h: run one measurement in a forked child and collect what it measured.
 *
 * SimGrid runs one simulation per process, and a child also gives clean peak-RSS and CPU
 * figures per measurement. The child runs fn(arg, out), then writes `out` (out_len bytes)
 * back through a pipe with its CPU seconds (user + system) and peak RSS.
 */
#ifndef CB_BENCH_CHILD_H
#define CB_BENCH_CHILD_H

#include <stddef.h>

typedef struct cb_bench_usage {
    double cpu_s;     /* user + system: robust when other processes share the cores */
    long max_rss_kib; /* peak resident set of the child */
} cb_bench_usage;

/* Returns 0 when the child ran fn and sent its result; -1 otherwise (fork or pipe failed,
 * the child crashed or exited non-zero). */
int cb_bench_child(void (*fn)(void *arg, void *out), void *arg, void *out, size_t out_len,
                   cb_bench_usage *usage);

/* The malloc this process runs on, for benchmark headers: "jemalloc <version>" when the
 * cachebed binary links jemalloc (Release builds; CMakeLists.txt), else "glibc malloc".
 * Looked up at run time, so it names what the process really uses. */
const char *cb_bench_malloc_name(void);

/* Monotonic wall-clock seconds. */
double cb_bench_now_s(void);

#endif
