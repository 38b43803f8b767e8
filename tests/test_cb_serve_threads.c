/*
 * test_cb_serve_threads.c: `cachebed serve --threads N` (real/cb_serve.h, docs/real.md §5),
 * on 127.0.0.1 only.
 *
 * Four loops behind one port share one sharded store. Connections land on several threads
 * (checked in the per-thread counters), and a key set through one connection is read
 * through all the others, so through another thread; concurrent incr from eight client
 * threads gives the exact total; flush_all is seen by every connection; the memory cap holds
 * under a flood of sets through every thread; UDP works on every thread's socket. Every
 * socket has a 5 s receive timeout; counts are bounded.
 */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cb_serve.h"
#include "cb_test.h"

#define TH_THREADS 4u
#define TH_CONNS   24
#define TH_CLIENTS 8
#define TH_INCRS   400

static cb_serve *th_sv;
static pthread_t th_thread;
static uint16_t th_port, th_udp_port;

static void *th_run(void *arg)
{
    (void)arg;
    CU_ASSERT_EQUAL(cb_serve_run(th_sv), 0);
    return NULL;
}

static void th_start(uint64_t memory, uint32_t value_max)
{
    cb_serve_config c;
    memset(&c, 0, sizeof c);
    c.server = cb_server_config_default();
    c.server.conn_max = 256;
    c.server.store.memory_bytes_max = memory;
    c.server.store.value_bytes_max = value_max;
    c.udp = 1;
    c.threads = TH_THREADS;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(cb_serve_new(&c, &th_sv, err, sizeof err), 0);
    CU_ASSERT_EQUAL(cb_serve_threads(th_sv), TH_THREADS);
    CU_ASSERT(cb_serve_shards(th_sv) >= 4 * TH_THREADS);
    th_port = cb_serve_port(th_sv);
    th_udp_port = cb_serve_udp_port(th_sv);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th_thread, NULL, th_run, NULL), 0);
}

static void th_stop(cb_serve_stats *st)
{
    cb_serve_stop(th_sv);
    CU_ASSERT_EQUAL(pthread_join(th_thread, NULL), 0);
    cb_serve_get_stats(th_sv, st);
}

static struct sockaddr_in th_addr(uint16_t port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int th_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_in a = th_addr(th_port);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    struct timeval tv = {5, 0};
    CU_ASSERT(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    return fd;
}

/* Send `req`; read until the reply ends with `end` (or 8 KiB, or a timeout). */
static int th_ask(int fd, const char *req, const char *end, char *got, size_t cap)
{
    size_t len = strlen(req), n = 0, el = strlen(end);
    if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        return -1;
    }
    while (n + 1 < cap) {
        ssize_t r = recv(fd, got + n, cap - 1 - n, 0);
        if (r <= 0) {
            break;
        }
        n += (size_t)r;
        if (n >= el && memcmp(got + n - el, end, el) == 0) {
            break;
        }
    }
    got[n] = '\0';
    return (int)n;
}

/* How many threads took connections, and served requests. */
static void th_spread(unsigned *accepting, unsigned *serving)
{
    *accepting = *serving = 0;
    for (uint32_t t = 0; t < cb_serve_threads(th_sv); t++) {
        cb_serve_stats st;
        cb_serve_get_thread_stats(th_sv, t, &st);
        *accepting += st.accepted > 0;
        *serving += st.server.requests > 0;
    }
}

static void test_threads_shared_cache(void)
{
    th_start(64u << 20, 0);
    int fds[TH_CONNS];
    for (int i = 0; i < TH_CONNS; i++) {
        fds[i] = th_connect();
    }
    char got[8192], req[128], want[128];
    /* Each key is set through one connection and read through every other one. */
    for (int k = 0; k < 6; k++) {
        int from = k * 4;
        (void)snprintf(req, sizeof req, "set key%d %d 0 6\r\nval-%02d\r\n", k, k, k);
        th_ask(fds[from], req, "\r\n", got, sizeof got);
        CU_ASSERT_STRING_EQUAL(got, "STORED\r\n");
        (void)snprintf(req, sizeof req, "get key%d\r\n", k);
        (void)snprintf(want, sizeof want, "VALUE key%d %d 6\r\nval-%02d\r\nEND\r\n", k, k, k);
        int hits = 0;
        for (int i = 0; i < TH_CONNS; i++) {
            th_ask(fds[i], req, "END\r\n", got, sizeof got);
            hits += strcmp(got, want) == 0;
        }
        CU_ASSERT_EQUAL(hits, TH_CONNS);
    }
    /* flush_all through one connection: every connection sees every key gone. */
    th_ask(fds[5], "flush_all\r\n", "\r\n", got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, "OK\r\n");
    int misses = 0;
    for (int i = 0; i < TH_CONNS; i++) {
        th_ask(fds[i], "get key0 key1 key2 key3 key4 key5\r\n", "END\r\n", got, sizeof got);
        misses += strcmp(got, "END\r\n") == 0;
    }
    CU_ASSERT_EQUAL(misses, TH_CONNS);
    /* UDP: whichever thread's socket the peer hashes to, it sees the TCP-set key. */
    th_ask(fds[0], "set udpkey 0 0 2\r\nhi\r\n", "\r\n", got, sizeof got);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    CU_ASSERT_FATAL(u >= 0);
    struct timeval tv = {5, 0};
    CU_ASSERT(setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    uint8_t dg[64] = {0, 9, 0, 0, 0, 1, 0, 0};
    memcpy(dg + 8, "get udpkey\r\n", 12);
    struct sockaddr_in ua = th_addr(th_udp_port);
    CU_ASSERT(sendto(u, dg, 20, 0, (struct sockaddr *)&ua, sizeof ua) == 20);
    ssize_t n = recv(u, got, sizeof got - 1, 0);
    CU_ASSERT_FATAL(n > 8);
    got[n] = '\0';
    CU_ASSERT_STRING_EQUAL(got + 8, "VALUE udpkey 0 2\r\nhi\r\nEND\r\n");
    close(u);
    for (int i = 0; i < TH_CONNS; i++) {
        close(fds[i]);
    }
    cb_serve_stats st;
    th_stop(&st);
    unsigned accepting, serving;
    th_spread(&accepting, &serving);
    printf("\n  %u of %u threads accepted connections, %u served requests\n", accepting,
           TH_THREADS, serving);
    /* 24 connections hashed over 4 listeners all on one: (1/4)^23, not by chance. */
    CU_ASSERT(accepting >= 2);
    CU_ASSERT(serving >= 2);
    CU_ASSERT_EQUAL(st.accepted, TH_CONNS);
    cb_serve_del(th_sv);
}

static void *th_incr_client(void *arg)
{
    int *errors = arg;
    int fd = th_connect();
    char got[128];
    for (int i = 0; i < TH_INCRS; i++) {
        if (th_ask(fd, "incr counter 1\r\n", "\r\n", got, sizeof got) <= 0 ||
            got[0] < '0' || got[0] > '9') {
            (*errors)++;
            break;
        }
    }
    close(fd);
    return NULL;
}

static void test_threads_concurrent_incr(void)
{
    th_start(64u << 20, 0);
    int fd = th_connect();
    char got[128];
    th_ask(fd, "set counter 0 0 1\r\n0\r\n", "\r\n", got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, "STORED\r\n");
    pthread_t t[TH_CLIENTS];
    int errors[TH_CLIENTS] = {0};
    for (int i = 0; i < TH_CLIENTS; i++) {
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, th_incr_client, &errors[i]), 0);
    }
    for (int i = 0; i < TH_CLIENTS; i++) {
        CU_ASSERT_EQUAL(pthread_join(t[i], NULL), 0);
        CU_ASSERT_EQUAL(errors[i], 0);
    }
    char want[32];
    (void)snprintf(want, sizeof want, "%d\r\n", TH_CLIENTS * TH_INCRS);
    th_ask(fd, "incr counter 0\r\n", "\r\n", got, sizeof got);
    CU_ASSERT_STRING_EQUAL(got, want);
    close(fd);
    cb_serve_stats st;
    th_stop(&st);
    unsigned accepting, serving;
    th_spread(&accepting, &serving);
    CU_ASSERT(serving >= 2); /* the incrs really came through several threads */
    CU_ASSERT_EQUAL(st.server.store.cmd_incr, TH_CLIENTS * TH_INCRS + 1);
    cb_serve_del(th_sv);
}

/* 8 MiB of sets through connections on every thread into a 4 MiB cap. */
static void test_threads_memory_cap(void)
{
    const uint64_t cap = 4u << 20;
    th_start(cap, 16u << 10);
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = th_connect();
    }
    static char req[20000];
    static char value[8000];
    memset(value, 'm', sizeof value);
    char got[8192];
    int stored = 0;
    for (int i = 0; i < 1000; i++) {
        (void)snprintf(req, sizeof req, "set big%d 0 0 %zu\r\n%.*s\r\n", i, sizeof value,
                       (int)sizeof value, value);
        th_ask(fds[i % 8], req, "\r\n", got, sizeof got);
        stored += strcmp(got, "STORED\r\n") == 0;
    }
    CU_ASSERT_EQUAL(stored, 1000);
    th_ask(fds[3], "stats\r\n", "END\r\n", got, sizeof got);
    unsigned long long bytes = 0, limit = 0, evictions = 0;
    const char *p = strstr(got, "STAT bytes ");
    CU_ASSERT_FATAL(p != NULL);
    bytes = strtoull(p + 11, NULL, 10);
    p = strstr(got, "STAT limit_maxbytes ");
    CU_ASSERT_FATAL(p != NULL);
    limit = strtoull(p + 20, NULL, 10);
    p = strstr(got, "STAT evictions ");
    CU_ASSERT_FATAL(p != NULL);
    evictions = strtoull(p + 15, NULL, 10);
    printf("\n  bytes %llu of %llu, %llu evictions\n", bytes, limit, evictions);
    CU_ASSERT(limit <= cap && limit > cap - 64);
    CU_ASSERT(bytes <= limit);
    CU_ASSERT(bytes > cap / 2); /* the shards are used, not starved */
    CU_ASSERT(evictions > 0);
    for (int i = 0; i < 8; i++) {
        close(fds[i]);
    }
    cb_serve_stats st;
    th_stop(&st);
    CU_ASSERT(st.server.store.bytes_used <= cap);
    cb_serve_del(th_sv);
}

/* Bad thread counts are refused with a message. */
static void test_threads_config(void)
{
    cb_serve_config c;
    memset(&c, 0, sizeof c);
    c.server = cb_server_config_default();
    c.threads = CB_SERVE_THREADS_MAX + 1;
    char err[256];
    cb_serve *s = NULL;
    CU_ASSERT_EQUAL(cb_serve_new(&c, &s, err, sizeof err), -1);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "threads"));
    c.threads = 2; /* a 1 MiB value limit in a 2 MiB store: fewer, bigger shards */
    c.server.store.memory_bytes_max = 2u << 20;
    CU_ASSERT_EQUAL_FATAL(cb_serve_new(&c, &s, err, sizeof err), 0);
    CU_ASSERT_EQUAL(cb_serve_shards(s), 1);
    cb_serve_del(s);
}

static const cb_test_case tests[] = {
    {"shared_cache", test_threads_shared_cache},
    {"concurrent_incr", test_threads_concurrent_incr},
    {"memory_cap", test_threads_memory_cap},
    {"config", test_threads_config},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_serve_threads", tests)
