/*
 * cb_bench_serve.c: `cachebed bench serve` — `cachebed serve --threads T` against
 * memcached -t T under the same load from the same load generator, in one run
 * (docs/real.md §7).
 *
 * Each server runs as a child process on a free loopback port, both started by fork and exec:
 * cachebed's is this binary's `serve` verb, memcached is Debian's binary (`memcached -u
 * nobody -l 127.0.0.1 -p P -U 0 -t T -m MEM`). With --rounds R the two alternate R times,
 * the order swapped every round, and the median ratio is printed. The generator (this process, one epoll thread) opens C connections,
 * preloads K keys, then keeps D pipelined requests in flight on every connection for the
 * given seconds: GETs of random keys (get_percent of them) and SETs, memcached text
 * protocol, values of V bytes. It reports completed operations per second, p50 and p99
 * latency (send to reply, per request), CPU time and run-queue wait per operation of the
 * server and of the generator (from /proc schedstat), and the ratio cachebed / memcached.
 * The generator speaks only the text protocol: memcached does not speak cachebed's frame.
 */
#define _GNU_SOURCE
#include "cb_bench.h"
#include "cb_bench_child.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cb_rng.h"
#include "cb_serve.h"
#include "cb_units.h"

#define BENCH_CONNS_MAX   1024u
#define BENCH_DEPTH_MAX   64u
#define BENCH_SAMPLES_MAX (20u * 1000u * 1000u)
#define BENCH_BUF_BYTES   (256u * 1024u)

typedef struct bench_opts {
    uint64_t conns, depth, keys, value_bytes, get_percent, seconds, seed, memory_mib, threads,
        rounds;
} bench_opts;

typedef struct bench_conn {
    int fd;
    uint64_t sent_ns[BENCH_DEPTH_MAX]; /* ring of in-flight request times */
    uint8_t is_get[BENCH_DEPTH_MAX];
    unsigned head, inflight;
    uint8_t *in;
    size_t in_len;
} bench_conn;

typedef struct bench_result {
    double ops_per_s;
    double p50_us, p99_us;
    uint64_t ops, hits, misses, errors;
    uint64_t waits;           /* the generator's epoll_wait calls while measuring */
    double server_cpu_us_op;  /* server CPU time (all its threads) per operation */
    double gen_cpu_us_op;     /* the generator's CPU time per operation */
    double server_wait_us_op; /* server time runnable but not running, per operation */
    double server_slices_op;  /* server times scheduled onto a CPU, per operation */
    double gen_wait_us_op;    /* the generator's time runnable but not running, per op */
} bench_result;

static const char bench_usage[] =
    "usage: cachebed bench serve [--conns C] [--depth D] [--seconds S] [--keys K]\n"
    "                            [--value-bytes V] [--get-percent G] [--seed N] [--threads T]\n"
    "  --conns C        connections (default 16)\n"
    "  --depth D        pipelined requests in flight per connection (default 8, max 64)\n"
    "  --seconds S      measured seconds per server (default 5)\n"
    "  --keys K         keys preloaded and requested (default 10000)\n"
    "  --value-bytes V  value size (default 32)\n"
    "  --get-percent G  share of GETs; the rest are SETs (default 90)\n"
    "  --seed N         seed of the key and operation draws (default 1)\n"
    "  --threads T      server threads: cachebed serve --threads T, memcached -t T (default 1)\n"
    "  --rounds R       alternate the servers R times (cachebed, memcached, ...) and report\n"
    "                   every round and the median ratio (default 1)\n";

static uint64_t bench_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* From /proc/PID/task/TID/schedstat summed over a process's threads (pid 0: this thread):
 * nanoseconds run on a CPU and waited runnable on a run queue; 0 if unreadable. */
typedef struct bench_sched {
    uint64_t run_ns, wait_ns, slices;
} bench_sched;

static void bench_sched_add(const char *path, bench_sched *out)
{
    FILE *f = fopen(path, "r");
    unsigned long long run = 0, wait = 0, slices = 0;
    if (f != NULL) {
        if (fscanf(f, "%llu %llu %llu", &run, &wait, &slices) == 3) {
            out->run_ns += run;
            out->wait_ns += wait;
            out->slices += slices;
        }
        fclose(f);
    }
}

static bench_sched bench_sched_get(pid_t pid)
{
    bench_sched s = {0, 0, 0};
    if (pid == 0) {
        bench_sched_add("/proc/thread-self/schedstat", &s);
        return s;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL) {
        return s;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            char p2[96];
            snprintf(p2, sizeof p2, "/proc/%d/task/%.16s/schedstat", (int)pid, e->d_name);
            bench_sched_add(p2, &s);
        }
    }
    closedir(d);
    return s;
}

/* ---- the servers -------------------------------------------------------------------------- */

/* A free loopback TCP port (bound and released; a race with other processes is possible). */
static uint16_t bench_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

/* `cachebed serve` as its own program (this binary, re-executed), started the way memcached
 * is — fork and exec — so neither server shares pages or history with the generator. */
static pid_t bench_start_cachebed(uint16_t port, uint64_t memory_mib, uint64_t threads)
{
    pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    char p[16], m[32], t[24], n[24];
    snprintf(p, sizeof p, "%u", (unsigned)port);
    snprintf(m, sizeof m, "%lluMiB", (unsigned long long)memory_mib);
    snprintf(t, sizeof t, "%llu", (unsigned long long)threads);
    snprintf(n, sizeof n, "%u", BENCH_CONNS_MAX + 16);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
        (void)dup2(null, STDOUT_FILENO); /* its "listening on" line */
        close(null);
    }
    execl("/proc/self/exe", "cachebed", "serve", "--listen", "127.0.0.1", "--port", p, "--memory",
          m, "--conn-max", n, "--threads", t, (char *)NULL);
    fprintf(stderr, "bench serve: cannot run cachebed serve: %s\n", strerror(errno));
    _exit(127);
}

static pid_t bench_start_memcached(uint16_t port, uint64_t memory_mib, uint64_t threads)
{
    pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    char p[16], m[24], t[24];
    snprintf(p, sizeof p, "%u", (unsigned)port);
    snprintf(t, sizeof t, "%llu", (unsigned long long)threads);
    snprintf(m, sizeof m, "%llu", (unsigned long long)memory_mib);
    execlp("memcached", "memcached", "-u", "nobody", "-l", "127.0.0.1", "-p", p, "-U", "0", "-t", t,
           "-m", m, "-c", "4096", (char *)NULL);
    fprintf(stderr, "bench serve: cannot run memcached: %s\n", strerror(errno));
    _exit(127);
}

static int bench_connect(uint16_t port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int attempt = 0; attempt < 100; attempt++) { /* the server may still be starting */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            return -1;
        }
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            int one = 1;
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return fd;
        }
        close(fd);
        usleep(20000);
    }
    return -1;
}

/* ---- the load ----------------------------------------------------------------------------- */

typedef struct bench_run {
    const bench_opts *o;
    bench_conn *conns;
    cb_rng rng;
    char *value;
    uint64_t *samples;
    size_t nsamples;
    bench_result r;
} bench_run;

/* Append one request to out; returns its length. */
static size_t bench_request(bench_run *b, char *out, int *is_get)
{
    uint64_t key = cb_rng_below(&b->rng, b->o->keys);
    *is_get = cb_rng_below(&b->rng, 100) < b->o->get_percent;
    if (*is_get) {
        return (size_t)sprintf(out, "get key:%llu\r\n", (unsigned long long)key);
    }
    int n = sprintf(out, "set key:%llu 0 0 %llu\r\n", (unsigned long long)key,
                    (unsigned long long)b->o->value_bytes);
    memcpy(out + n, b->value, b->o->value_bytes);
    memcpy(out + (size_t)n + b->o->value_bytes, "\r\n", 2);
    return (size_t)n + b->o->value_bytes + 2;
}

/* Top the connection up to `depth` requests in flight, in one write. */
static int bench_fill(bench_run *b, bench_conn *c)
{
    static char out[BENCH_DEPTH_MAX * (64 + 4096)];
    size_t len = 0;
    uint64_t now = bench_ns();
    while (c->inflight < b->o->depth) {
        int is_get;
        len += bench_request(b, out + len, &is_get);
        unsigned slot = (c->head + c->inflight) % BENCH_DEPTH_MAX;
        c->sent_ns[slot] = now;
        c->is_get[slot] = (uint8_t)is_get;
        c->inflight++;
    }
    return len == 0 || send(c->fd, out, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* Length of one whole reply at the start of buf, 0 if incomplete, -1 if unexpected. */
static long bench_reply_len(const uint8_t *buf, size_t len, int *hit)
{
    const uint8_t *nl = memchr(buf, '\n', len);
    if (nl == NULL) {
        return 0;
    }
    size_t line = (size_t)(nl - buf) + 1;
    *hit = 0;
    if (line >= 6 && memcmp(buf, "VALUE ", 6) == 0) {
        const uint8_t *sp = buf + line - 3; /* "... <bytes>\r\n": find the last space */
        while (sp > buf && *sp != ' ') {
            sp--;
        }
        size_t bytes = strtoul((const char *)sp + 1, NULL, 10);
        size_t total = line + bytes + 2 + 5;
        *hit = 1;
        return len >= total ? (long)total : 0;
    }
    if ((line == 5 && memcmp(buf, "END", 3) == 0) || (line == 8 && memcmp(buf, "STORED", 6) == 0)) {
        return (long)line;
    }
    return -1;
}

static int bench_on_readable(bench_run *b, bench_conn *c, int measuring)
{
    ssize_t n = recv(c->fd, c->in + c->in_len, BENCH_BUF_BYTES - c->in_len, MSG_DONTWAIT);
    if (n <= 0) {
        return n < 0 && errno == EAGAIN ? 0 : -1;
    }
    c->in_len += (size_t)n;
    uint64_t now = bench_ns();
    size_t off = 0;
    for (;;) {
        int hit;
        long r = bench_reply_len(c->in + off, c->in_len - off, &hit);
        if (r < 0 || (r > 0 && c->inflight == 0)) {
            b->r.errors++;
            return -1;
        }
        if (r == 0) {
            break;
        }
        off += (size_t)r;
        if (measuring) {
            b->r.ops++;
            b->r.hits += hit && c->is_get[c->head];
            b->r.misses += !hit && c->is_get[c->head];
            if (b->nsamples < BENCH_SAMPLES_MAX) {
                b->samples[b->nsamples++] = now - c->sent_ns[c->head];
            }
        }
        c->head = (c->head + 1) % BENCH_DEPTH_MAX;
        c->inflight--;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return c->inflight < b->o->depth ? bench_fill(b, c) : 0;
}

/* Run the pipelined load on every connection until `until_ns`. */
static int bench_drive(bench_run *b, int ep, uint64_t until_ns, int measuring)
{
    struct epoll_event evs[64];
    while (bench_ns() < until_ns) {
        int n = epoll_wait(ep, evs, 64, 100);
        b->r.waits += (uint64_t)measuring;
        for (int i = 0; i < n; i++) {
            if (bench_on_readable(b, &b->conns[evs[i].data.u32], measuring) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

static int bench_preload(bench_run *b, int fd)
{
    char line[128];
    static uint8_t reply[8 * 4096];
    for (uint64_t k = 0; k < b->o->keys; k++) {
        int n = snprintf(line, sizeof line, "set key:%llu 0 0 %llu noreply\r\n",
                         (unsigned long long)k, (unsigned long long)b->o->value_bytes);
        if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n ||
            send(fd, b->value, b->o->value_bytes, MSG_NOSIGNAL) != (ssize_t)b->o->value_bytes ||
            send(fd, "\r\n", 2, MSG_NOSIGNAL) != 2) {
            return -1;
        }
    }
    /* a final get proves every set before it was read */
    if (send(fd, "get key:0\r\n", 11, MSG_NOSIGNAL) != 11) {
        return -1;
    }
    size_t got = 0;
    while (got < 5 || memcmp(reply + got - 5, "END\r\n", 5) != 0) {
        ssize_t n = recv(fd, reply + got, sizeof reply - got, 0);
        if (n <= 0 || (got += (size_t)n) == sizeof reply) {
            return -1;
        }
    }
    return 0;
}

static int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int bench_open_conns(bench_run *b, int ep, uint16_t port)
{
    for (uint64_t i = 0; i < b->o->conns; i++) {
        bench_conn *c = &b->conns[i];
        c->fd = bench_connect(port);
        c->in = malloc(BENCH_BUF_BYTES);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (c->fd < 0 || c->in == NULL || epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            return -1;
        }
    }
    return bench_preload(b, b->conns[0].fd);
}

/* One server, already started on `port`: warm up 0.5 s, measure, fill *out. */
static int bench_measure(const bench_opts *o, uint16_t port, pid_t server, bench_result *out)
{
    bench_run b;
    memset(&b, 0, sizeof b);
    b.o = o;
    cb_rng_init(&b.rng, o->seed);
    b.conns = calloc(o->conns, sizeof b.conns[0]);
    b.value = malloc(o->value_bytes + 1);
    b.samples = malloc(BENCH_SAMPLES_MAX * sizeof b.samples[0]);
    int ep = epoll_create1(0);
    int rc = -1;
    if (b.conns == NULL || b.value == NULL || b.samples == NULL || ep < 0) {
        goto out;
    }
    memset(b.value, 'v', o->value_bytes);
    for (uint64_t i = 0; i < o->conns; i++) {
        b.conns[i].fd = -1;
    }
    if (bench_open_conns(&b, ep, port) != 0) {
        goto out;
    }
    for (uint64_t i = 0; i < o->conns; i++) {
        if (bench_fill(&b, &b.conns[i]) != 0) {
            goto out;
        }
    }
    uint64_t t0 = bench_ns();
    if (bench_drive(&b, ep, t0 + 500000000ull, 0) != 0) {
        goto out;
    }
    uint64_t t1 = bench_ns();
    bench_sched srv0 = bench_sched_get(server), gen0 = bench_sched_get(0);
    if (bench_drive(&b, ep, t1 + o->seconds * 1000000000ull, 1) != 0) {
        goto out;
    }
    double secs = (double)(bench_ns() - t1) / 1e9;
    if (b.r.ops > 0) {
        bench_sched srv1 = bench_sched_get(server), gen1 = bench_sched_get(0);
        double ops = (double)b.r.ops;
        b.r.server_cpu_us_op = (double)(srv1.run_ns - srv0.run_ns) / 1e3 / ops;
        b.r.server_wait_us_op = (double)(srv1.wait_ns - srv0.wait_ns) / 1e3 / ops;
        b.r.server_slices_op = (double)(srv1.slices - srv0.slices) / ops;
        b.r.gen_cpu_us_op = (double)(gen1.run_ns - gen0.run_ns) / 1e3 / ops;
        b.r.gen_wait_us_op = (double)(gen1.wait_ns - gen0.wait_ns) / 1e3 / ops;
    }
    qsort(b.samples, b.nsamples, sizeof b.samples[0], bench_cmp_u64);
    b.r.ops_per_s = (double)b.r.ops / secs;
    if (b.nsamples > 0) {
        b.r.p50_us = (double)b.samples[b.nsamples / 2] / 1e3;
        b.r.p99_us = (double)b.samples[b.nsamples * 99 / 100] / 1e3;
    }
    *out = b.r;
    rc = 0;
out:
    for (uint64_t i = 0; b.conns != NULL && i < o->conns; i++) {
        if (b.conns[i].fd >= 0) {
            close(b.conns[i].fd);
        }
        free(b.conns[i].in);
    }
    if (ep >= 0) {
        close(ep);
    }
    free(b.conns);
    free(b.value);
    free(b.samples);
    return rc;
}

/* ---- options and report ------------------------------------------------------------------- */

static int bench_parse(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){16, 8, 10000, 32, 90, 5, 1, 64, 1, 1};
    static const struct {
        const char *name;
        size_t off;
        uint64_t min, max;
    } opts[] = {
        {"--conns", offsetof(bench_opts, conns), 1, BENCH_CONNS_MAX},
        {"--depth", offsetof(bench_opts, depth), 1, BENCH_DEPTH_MAX},
        {"--keys", offsetof(bench_opts, keys), 1, 10000000},
        {"--value-bytes", offsetof(bench_opts, value_bytes), 1, 4096},
        {"--get-percent", offsetof(bench_opts, get_percent), 0, 100},
        {"--seconds", offsetof(bench_opts, seconds), 1, 600},
        {"--seed", offsetof(bench_opts, seed), 0, UINT64_MAX},
        {"--threads", offsetof(bench_opts, threads), 1, CB_SERVE_THREADS_MAX},
        {"--rounds", offsetof(bench_opts, rounds), 1, 99},
    };
    for (int i = 0; i < argc; i += 2) {
        size_t k = 0;
        while (k < sizeof opts / sizeof opts[0] && strcmp(argv[i], opts[k].name) != 0) {
            k++;
        }
        uint64_t v;
        char err[128];
        if (k == sizeof opts / sizeof opts[0] || i + 1 >= argc ||
            cb_units_parse_uint(argv[i + 1], &v, err, sizeof err) != 0 || v < opts[k].min ||
            v > opts[k].max) {
            fputs(bench_usage, stderr);
            return -1;
        }
        *(uint64_t *)((char *)o + opts[k].off) = v;
    }
    return 0;
}

static void bench_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    (void)waitpid(pid, NULL, 0);
}

static int bench_one(const bench_opts *o, int memcached, bench_result *r)
{
    uint16_t port = bench_free_port();
    pid_t pid = memcached ? bench_start_memcached(port, o->memory_mib, o->threads)
                          : bench_start_cachebed(port, o->memory_mib, o->threads);
    if (port == 0 || pid < 0) {
        return -1;
    }
    int rc = bench_measure(o, port, pid, r);
    bench_stop(pid);
    if (rc != 0) {
        fprintf(stderr, "bench serve: %s: the run failed\n", memcached ? "memcached" : "cachebed");
    }
    return rc;
}

static void bench_print(const char *name, const bench_result *r)
{
    printf("%-10s %10.0f %8.1f %8.1f %9llu %6llu %6llu %9.2f %10.2f %9.3f %9.2f %10.2f %8.2f\n",
           name, r->ops_per_s, r->p50_us, r->p99_us, (unsigned long long)r->ops,
           (unsigned long long)r->misses, (unsigned long long)r->errors, r->server_cpu_us_op,
           r->server_wait_us_op, r->server_slices_op, r->gen_cpu_us_op, r->gen_wait_us_op,
           r->waits > 0 ? (double)r->ops / (double)r->waits : 0.0);
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int cb_bench_serve(int argc, char **argv)
{
    bench_opts o;
    if (bench_parse(argc, argv, &o) != 0) {
        return 2;
    }
    printf("bench serve: %llu connections x %llu pipelined, %llu%% GET / %llu%% SET, %llu keys, "
           "%llu-byte values, %llu s each, %llu server threads, %llu round(s), text protocol, "
           "loopback, cachebed on %s\n",
           (unsigned long long)o.conns, (unsigned long long)o.depth,
           (unsigned long long)o.get_percent, (unsigned long long)(100 - o.get_percent),
           (unsigned long long)o.keys, (unsigned long long)o.value_bytes,
           (unsigned long long)o.seconds, (unsigned long long)o.threads,
           (unsigned long long)o.rounds, cb_bench_malloc_name());
    printf("(per op: srv_us server CPU time, all threads; srvwait server time runnable but "
           "waiting for a CPU;\n srvslc times the server was put on a CPU; gen_us the "
           "generator's CPU;\n genwait its time waiting for a CPU; ops/wait replies per generator "
           "epoll_wait)\n");
    double ratios[99];
    for (uint64_t k = 0; k < o.rounds; k++) {
        /* Alternate which server goes first, so a trend in the machine's load favours
         * neither: round 1 cachebed then memcached, round 2 memcached then cachebed... */
        int mc_first = (int)(k % 2);
        bench_result cb, mc;
        if (bench_one(&o, mc_first, mc_first ? &mc : &cb) != 0 ||
            bench_one(&o, !mc_first, mc_first ? &cb : &mc) != 0) {
            return 1;
        }
        printf("round %llu\n%-10s %10s %8s %8s %9s %6s %6s %9s %10s %9s %9s %10s %8s\n",
               (unsigned long long)k + 1, "server", "ops/s", "p50_us", "p99_us", "ops", "misses",
               "errors", "srv_us/op", "srvwait/op", "srvslc/op", "gen_us/op", "genwait/op",
               "ops/wait");
        bench_print("cachebed", &cb);
        bench_print("memcached", &mc);
        ratios[k] = mc.ops_per_s > 0 ? cb.ops_per_s / mc.ops_per_s : 0.0;
        printf("ratio cachebed/memcached: %.3f ops/s\n", ratios[k]);
        fflush(stdout);
    }
    if (o.rounds > 1) {
        qsort(ratios, o.rounds, sizeof ratios[0], bench_cmp_double);
        double med = o.rounds % 2 ? ratios[o.rounds / 2]
                                  : (ratios[o.rounds / 2 - 1] + ratios[o.rounds / 2]) / 2;
        printf("median ratio over %llu rounds: %.3f (min %.3f, max %.3f)\n",
               (unsigned long long)o.rounds, med, ratios[0], ratios[o.rounds - 1]);
    }
    return 0;
}
