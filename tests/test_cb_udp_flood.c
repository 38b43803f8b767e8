/*
 * test_cb_udp_flood.c: hostile UDP against `cachebed serve --udp-port` (real/cb_serve.c,
 * protocols/cb_udp.h, docs/real.md §6), on 127.0.0.1 only.
 *
 * A server with two threads (so both UDP sockets behind SO_REUSEPORT are exercised) takes a
 * bounded flood (at most FLOOD_ROUNDS rounds and FLOOD_SECONDS) of: datagrams shorter than
 * the header (0..7 bytes), a bare header, bad sequence / total / reserved fields, both halves
 * of a two-datagram request, garbage payloads behind valid headers, maximal 65,507-byte
 * datagrams (a line that never ends, a data block not followed by CRLF, a value over the
 * limit cut short by the datagram's end). After every round a
 * valid request on the same socket must be answered, which also proves the round was read
 * (one socket, one peer: the kernel hashes it to one thread, in order). At the end: valid
 * UDP and TCP requests are answered, udp_dropped equals exactly the malformed datagrams sent,
 * udp_datagrams every datagram sent, and the process's RSS grew by less than the store cap
 * plus the documented per-thread bound (the UDP reply buffer, at most the output bound).
 */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cb_err.h"
#include "cb_rng.h"
#include "cb_serve.h"
#include "cb_test.h"
#include "cb_udp.h"

#define FLOOD_ROUNDS    400
#define FLOOD_SECONDS   20
#define FLOOD_THREADS   2u
#define FLOOD_MEMORY    (4u << 20)
#define FLOOD_VALUE_MAX (16u << 10)
#define FLOOD_BIG_BYTES 65507u /* the largest UDP payload over IPv4 */

/* Under AddressSanitizer freed blocks wait in a quarantine (256 MB by default), which would
 * count as RSS growth here: keep it small. Unused without ASan. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=4";
}

static cb_serve *fl_sv;
static pthread_t fl_thread;

static void *fl_run(void *arg)
{
    (void)arg;
    CU_ASSERT_EQUAL(cb_serve_run(fl_sv), 0);
    return NULL;
}

/* Resident set size of this process in KiB (server and test alike), from /proc. */
static long fl_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kib;
}

static struct sockaddr_in fl_addr(uint16_t port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

typedef struct fl_counts {
    uint64_t sent, malformed;
} fl_counts;

static int fl_fd;
static struct sockaddr_in fl_to;

static void fl_send(fl_counts *c, const uint8_t *d, size_t n, int malformed)
{
    ssize_t rc = sendto(fl_fd, d, n, 0, (struct sockaddr *)&fl_to, sizeof fl_to);
    CU_ASSERT_FATAL(rc == (ssize_t)n);
    c->sent++;
    c->malformed += malformed != 0;
}

static size_t fl_datagram(uint8_t *out, uint16_t id, uint16_t seq, uint16_t total,
                          uint16_t reserved, const char *payload, size_t len)
{
    cb_udp_header h = {id, seq, total, reserved};
    cb_udp_header_encode(&h, out);
    memcpy(out + CB_UDP_HEADER_BYTES, payload, len);
    return CB_UDP_HEADER_BYTES + len;
}

/* Send a valid request and wait for its reply (other replies are skipped); 1 if it came. */
static int fl_probe(fl_counts *c, uint16_t id, const char *req, const char *want)
{
    uint8_t d[2048];
    size_t n = fl_datagram(d, id, 0, 1, 0, req, strlen(req));
    fl_send(c, d, n, 0);
    for (int tries = 0; tries < 10000; tries++) {
        ssize_t r = recv(fl_fd, d, sizeof d - 1, 0);
        if (r < 0) {
            return 0; /* the 2 s timeout */
        }
        cb_udp_header h;
        if (cb_udp_header_decode(d, (size_t)r, &h) == CB_ERR_OK && h.request_id == id) {
            d[r] = '\0';
            return strcmp((const char *)d + CB_UDP_HEADER_BYTES, want) == 0;
        }
    }
    return 0;
}

static void fl_round(fl_counts *c, cb_rng *rng, uint16_t id, uint8_t *big)
{
    uint8_t d[2048];
    uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    fl_send(c, junk, (size_t)(id % 8), 1); /* shorter than the header, 0 bytes included */
    fl_send(c, d, fl_datagram(d, id, 0, 1, 0, "", 0), 1); /* a header and nothing */
    fl_send(c, d, fl_datagram(d, id, 1, 1, 0, "mn\r\n", 4), 1);     /* sequence 1 of 1 */
    fl_send(c, d, fl_datagram(d, id, 0, 0, 0, "mn\r\n", 4), 1);     /* zero datagrams */
    fl_send(c, d, fl_datagram(d, id, 0, 65535, 0, "mn\r\n", 4), 1); /* 65535 datagrams */
    fl_send(c, d, fl_datagram(d, id, 0, 1, 0x8000, "mn\r\n", 4), 1); /* reserved set */
    /* A two-datagram set: memcached refuses multi-datagram requests, and so do we. */
    fl_send(c, d, fl_datagram(d, id, 0, 2, 0, "set half 0 0 5\r\nhe", 19), 1);
    fl_send(c, d, fl_datagram(d, id, 1, 2, 0, "llo\r\n", 5), 1);
    /* Garbage behind a valid header: the machine answers it (ERROR, or nothing for a
     * binary-looking stream it closes), the datagram counts as served. */
    char g[512];
    size_t gl = 1 + (size_t)cb_rng_below(rng, sizeof g - 1);
    for (size_t i = 0; i < gl; i++) {
        g[i] = (char)cb_rng_below(rng, 256);
    }
    fl_send(c, d, fl_datagram(d, id, 0, 1, 0, g, gl), 0);
    /* Maximal datagrams: a line that never ends, a block not followed by CRLF, a value over
     * the limit whose block the datagram's end cuts short. */
    static const char *heads[] = {"get ", "set big 0 0 15000\r\n", "set cut 0 0 100000\r\n"};
    const char *head = heads[id % 3];
    size_t hl = strlen(head);
    cb_udp_header h = {id, 0, 1, 0};
    cb_udp_header_encode(&h, big);
    memcpy(big + CB_UDP_HEADER_BYTES, head, hl);
    memset(big + CB_UDP_HEADER_BYTES + hl, 'z', FLOOD_BIG_BYTES - CB_UDP_HEADER_BYTES - hl);
    fl_send(c, big, FLOOD_BIG_BYTES, 0);
}

static void test_udp_flood(void)
{
    cb_serve_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.server = cb_server_config_default();
    cfg.server.conn_max = 64;
    cfg.server.store.memory_bytes_max = FLOOD_MEMORY;
    cfg.server.store.value_bytes_max = FLOOD_VALUE_MAX;
    cfg.udp = 1;
    cfg.threads = FLOOD_THREADS;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(cb_serve_new(&cfg, &fl_sv, err, sizeof err), 0);
    fl_to = fl_addr(cb_serve_udp_port(fl_sv));
    CU_ASSERT_EQUAL_FATAL(pthread_create(&fl_thread, NULL, fl_run, NULL), 0);
    fl_fd = socket(AF_INET, SOCK_DGRAM, 0);
    CU_ASSERT_FATAL(fl_fd >= 0);
    struct timeval tv = {2, 0};
    CU_ASSERT(setsockopt(fl_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    fl_counts c = {0, 0};
    CU_ASSERT_FATAL(fl_probe(&c, 1, "mn\r\n", "MN\r\n")); /* warm: buffers at their size */
    uint8_t *big = malloc(FLOOD_BIG_BYTES);
    CU_ASSERT_FATAL(big != NULL);
    long rss0 = fl_rss_kib();
    cb_rng rng;
    cb_rng_init(&rng, cb_test_seed());
    time_t end = time(NULL) + FLOOD_SECONDS;
    int rounds = 0, answered = 0;
    for (; rounds < FLOOD_ROUNDS && time(NULL) < end; rounds++) {
        uint16_t id = (uint16_t)(2 + rounds);
        fl_round(&c, &rng, id, big);
        answered += fl_probe(&c, (uint16_t)(id + 30000), "mn\r\n", "MN\r\n");
    }
    long rss1 = fl_rss_kib();
    free(big);
    CU_ASSERT(rounds >= 50);
    CU_ASSERT_EQUAL(answered, rounds);
    /* Still serving, over UDP and TCP, and the store works. */
    CU_ASSERT(fl_probe(&c, 60000, "set after 0 0 2\r\nok\r\n", "STORED\r\n"));
    CU_ASSERT(fl_probe(&c, 60001, "get after\r\n", "VALUE after 0 2\r\nok\r\nEND\r\n"));
    CU_ASSERT(fl_probe(&c, 60002, "get half\r\n", "END\r\n")); /* the split set never ran */
    int t = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in ta = fl_addr(cb_serve_port(fl_sv));
    CU_ASSERT_FATAL(t >= 0 && connect(t, (struct sockaddr *)&ta, sizeof ta) == 0);
    CU_ASSERT(setsockopt(t, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    CU_ASSERT(send(t, "get after\r\n", 11, MSG_NOSIGNAL) == 11);
    static const char want[] = "VALUE after 0 2\r\nok\r\nEND\r\n";
    char got[128];
    size_t n = 0;
    while (n < sizeof want - 1) {
        ssize_t r = recv(t, got + n, sizeof got - 1 - n, 0);
        if (r <= 0) {
            break;
        }
        n += (size_t)r;
    }
    got[n] = '\0';
    CU_ASSERT_STRING_EQUAL(got, want);
    close(t);
    close(fl_fd);
    cb_serve_stop(fl_sv);
    CU_ASSERT_EQUAL(pthread_join(fl_thread, NULL), 0);
    cb_serve_stats st;
    cb_serve_get_stats(fl_sv, &st);
    /* The documented bound (docs/real.md §6): the store's cap plus, per thread, one UDP
     * reply buffer (at most the output bound) and one partial request (the value limit plus
     * a line); 4 MiB more for the allocator's per-thread arenas and page rounding. */
    long out_bound = (long)(CB_SERVE_OUT_BYTES_DEFAULT + FLOOD_VALUE_MAX + 64u * 1024u);
    long bound_kib =
        (long)(FLOOD_MEMORY + FLOOD_THREADS * (out_bound + FLOOD_VALUE_MAX + 4096) + (4 << 20)) /
        1024;
    printf("\n  %d rounds, %llu datagrams (%llu malformed): udp_datagrams %llu, udp_dropped %llu;"
           " RSS %ld -> %ld KiB (bound +%ld KiB)\n",
           rounds, (unsigned long long)c.sent, (unsigned long long)c.malformed,
           (unsigned long long)st.udp_datagrams, (unsigned long long)st.udp_dropped, rss0, rss1,
           bound_kib);
    CU_ASSERT_EQUAL(st.udp_dropped, c.malformed);
    CU_ASSERT_EQUAL(st.udp_datagrams, c.sent);
    CU_ASSERT(rss0 > 0 && rss1 > 0);
    CU_ASSERT(rss1 - rss0 < bound_kib);
    CU_ASSERT(st.server.store.bytes_used <= FLOOD_MEMORY);
    cb_serve_del(fl_sv);
}

/*
 * Many source ports: MANY_SOCKETS sockets (each its own peer) send MANY_ROUNDS requests each,
 * round robin in batches of MANY_BATCH (so the server's socket buffers never overflow), to a
 * 2-thread server holding MANY_PEERS peers per thread. Every request is answered, the table
 * never holds more than MANY_PEERS per thread, the rest were evicted, and RSS stays flat.
 */
#define MANY_SOCKETS 500u
#define MANY_ROUNDS  10u
#define MANY_BATCH   50u
#define MANY_PEERS   64u

static void test_many_peers(void)
{
    cb_serve_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.server = cb_server_config_default();
    cfg.server.conn_max = 16;
    cfg.server.store.memory_bytes_max = FLOOD_MEMORY;
    cfg.server.store.value_bytes_max = FLOOD_VALUE_MAX;
    cfg.udp = 1;
    cfg.threads = FLOOD_THREADS;
    cfg.udp_peers_max = MANY_PEERS;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(cb_serve_new(&cfg, &fl_sv, err, sizeof err), 0);
    fl_to = fl_addr(cb_serve_udp_port(fl_sv));
    CU_ASSERT_EQUAL_FATAL(pthread_create(&fl_thread, NULL, fl_run, NULL), 0);
    static int fds[MANY_SOCKETS];
    struct timeval tv = {2, 0};
    for (uint32_t i = 0; i < MANY_SOCKETS; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
        CU_ASSERT_FATAL(fds[i] >= 0);
        CU_ASSERT(setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    }
    long rss0 = fl_rss_kib(), rss_warm = -1;
    uint32_t sent = 0, answered = 0;
    time_t end = time(NULL) + FLOOD_SECONDS;
    for (uint32_t r = 0; r < MANY_ROUNDS && time(NULL) < end; r++) {
        for (uint32_t b = 0; b < MANY_SOCKETS; b += MANY_BATCH) {
            uint8_t d[64];
            for (uint32_t i = b; i < b + MANY_BATCH; i++) {
                size_t n = fl_datagram(d, (uint16_t)(r * 1000u + i), 0, 1, 0, "mn\r\n", 4);
                ssize_t rc = sendto(fds[i], d, n, 0, (struct sockaddr *)&fl_to, sizeof fl_to);
                sent += rc == (ssize_t)n;
            }
            for (uint32_t i = b; i < b + MANY_BATCH; i++) {
                ssize_t rc = recv(fds[i], d, sizeof d, 0);
                cb_udp_header h;
                answered += rc == CB_UDP_HEADER_BYTES + 4 &&
                            cb_udp_header_decode(d, (size_t)rc, &h) == CB_ERR_OK &&
                            h.request_id == (uint16_t)(r * 1000u + i) &&
                            memcmp(d + CB_UDP_HEADER_BYTES, "MN\r\n", 4) == 0;
            }
        }
        if (r == 0) {
            rss_warm = fl_rss_kib(); /* every peer seen once, every table slot used */
        }
    }
    long rss1 = fl_rss_kib();
    for (uint32_t i = 0; i < MANY_SOCKETS; i++) {
        close(fds[i]);
    }
    cb_serve_stop(fl_sv);
    CU_ASSERT_EQUAL(pthread_join(fl_thread, NULL), 0);
    cb_serve_stats st;
    cb_serve_get_stats(fl_sv, &st);
    uint32_t held_max = 0;
    for (uint32_t k = 0; k < FLOOD_THREADS; k++) {
        cb_serve_stats t;
        cb_serve_get_thread_stats(fl_sv, k, &t);
        held_max = t.udp_peers > held_max ? t.udp_peers : held_max;
    }
    printf("\n  %u datagrams from %u sockets, %u answered: %llu peers added, %llu evicted, "
           "%u held (at most %u on a thread, cap %u per thread); RSS %ld -> %ld (after the "
           "first 500) -> %ld KiB\n",
           sent, MANY_SOCKETS, answered, (unsigned long long)st.udp_peers_added,
           (unsigned long long)st.udp_peers_evicted, st.udp_peers, held_max, MANY_PEERS, rss0,
           rss_warm, rss1);
    CU_ASSERT_EQUAL(sent, MANY_SOCKETS * MANY_ROUNDS);
    CU_ASSERT_EQUAL(answered, sent);
    CU_ASSERT_EQUAL(st.udp_datagrams, sent);
    CU_ASSERT(held_max <= MANY_PEERS);
    CU_ASSERT(st.udp_peers <= FLOOD_THREADS * MANY_PEERS);
    CU_ASSERT(st.udp_peers_added >= MANY_SOCKETS);
    CU_ASSERT_EQUAL(st.udp_peers_added - st.udp_peers_evicted, st.udp_peers);
    CU_ASSERT(st.udp_peers_evicted >= MANY_SOCKETS - FLOOD_THREADS * MANY_PEERS);
    /* The peers' state was allocated at start: once every slot has been used (the first
     * 500 datagrams), 4,500 more from the same 500 ports, each evicting a peer, add nothing
     * but allocator noise (1 MiB allowed); the whole run, 4 MiB (sanitizers' shadow pages). */
    CU_ASSERT(rss0 > 0 && rss_warm > 0 && rss1 - rss_warm < 1024);
    CU_ASSERT(rss1 - rss0 < 4096);
    cb_serve_del(fl_sv);
}

static const cb_test_case tests[] = {
    {"flood", test_udp_flood},
    {"many_peers", test_many_peers},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_udp_flood", tests)
