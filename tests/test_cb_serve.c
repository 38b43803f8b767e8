/*
 * test_cb_serve.c: `cachebed serve` over real sockets (real/cb_serve.h), on 127.0.0.1 only.
 *
 * The server runs in a thread of this process on ephemeral TCP and UDP ports; every client
 * socket has a 5 s receive timeout, so a server bug fails a test instead of hanging it. It
 * covers binary frames, classic and meta text commands, UDP framing (multi-datagram replies,
 * malformed datagrams), hostile clients (garbage, a line that never ends, a 2 GiB length,
 * 1,000 connections at once, a client that never reads) and clean shutdown. Counts and
 * sizes are bounded; the whole suite takes a few seconds.
 */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cb_frame.h"
#include "cb_serve.h"
#include "cb_test.h"

#define SV_CONN_MAX   1100u
#define SV_MANY_CONNS 1000u

static cb_serve *sv;
static uint32_t sv_conn_max = SV_CONN_MAX; /* lowered under a low fd limit */
static size_t sv_many = SV_MANY_CONNS;
static pthread_t sv_thread;
static uint16_t sv_port, sv_udp_port;

static void *sv_run(void *arg)
{
    (void)arg;
    CU_ASSERT_EQUAL(cb_serve_run(sv), 0);
    return NULL;
}

/* Both ends of every connection live in this process: raise the soft fd limit to the hard
 * one and, if that is still low, scale the connection counts down (and say so). */
static void sv_fit_fd_limit(void)
{
    struct rlimit rl;
    CU_ASSERT_FATAL(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl); /* raising up to the hard limit is allowed */
    CU_ASSERT_FATAL(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_cur < 2 * SV_CONN_MAX + 200) {
        sv_conn_max = rl.rlim_cur > 600 ? (uint32_t)(rl.rlim_cur - 200) / 2 : 200;
        sv_many = sv_conn_max - 50;
        printf("\n  fd limit %llu: %zu connections at once\n", (unsigned long long)rl.rlim_cur,
               sv_many);
    }
}

static void sv_start(void)
{
    cb_serve_config c;
    memset(&c, 0, sizeof c);
    c.server = cb_server_config_default();
    sv_fit_fd_limit();
    c.server.conn_max = sv_conn_max;
    c.udp = 1;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(cb_serve_new(&c, &sv, err, sizeof err), 0);
    sv_port = cb_serve_port(sv);
    sv_udp_port = cb_serve_udp_port(sv);
    CU_ASSERT_FATAL(sv_port != 0 && sv_udp_port != 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&sv_thread, NULL, sv_run, NULL), 0);
}

static void sv_stop(cb_serve_stats *st)
{
    cb_serve_stop(sv);
    CU_ASSERT_EQUAL(pthread_join(sv_thread, NULL), 0);
    cb_serve_get_stats(sv, st);
    cb_serve_del(sv);
    sv = NULL;
}

static struct sockaddr_in sv_addr(uint16_t port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void sv_timeout(int fd, int seconds)
{
    struct timeval tv = {seconds, 0};
    CU_ASSERT(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
}

static int sv_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_in a = sv_addr(sv_port);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    sv_timeout(fd, 5);
    return fd;
}

static void sv_send(int fd, const void *buf, size_t len)
{
    CU_ASSERT_EQUAL_FATAL(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Read exactly `len` bytes (or until EOF/timeout); returns how many arrived. */
static size_t sv_recv(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, (char *)buf + got, len - got, 0);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    return got;
}

/* Send `req`, expect exactly `want` back. */
static void sv_expect(int fd, const char *req, const char *want)
{
    char got[4096];
    size_t len = strlen(want);
    CU_ASSERT_FATAL(len < sizeof got);
    sv_send(fd, req, strlen(req));
    size_t n = sv_recv(fd, got, len);
    got[n] = '\0';
    if (n != len || memcmp(got, want, len) != 0) {
        printf("\n  sent %s  want %s  got %s\n", req, want, got);
    }
    CU_ASSERT(n == len && memcmp(got, want, len) == 0);
}

/* Whether the server closed `fd` (EOF or reset) within the receive timeout. */
static int sv_closed(int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            return 1;
        }
        if (n < 0) {
            return 0; /* timeout */
        }
    }
}

static void test_serve_text_and_meta(void)
{
    int fd = sv_connect();
    sv_expect(fd, "set k 7 0 5\r\nhello\r\n", "STORED\r\n");
    sv_expect(fd, "get k nope\r\n", "VALUE k 7 5\r\nhello\r\nEND\r\n");
    sv_expect(fd, "append k 0 0 1\r\n!\r\nincr k 1\r\n",
              "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    sv_expect(fd, "ms n 2 T100\r\n41\r\nma n v\r\nmg n v f\r\nmn\r\n",
              "HD\r\nVA 2\r\n42\r\nVA 2 f0\r\n42\r\nMN\r\n");
    sv_expect(fd, "delete k\r\nmd k q\r\nmg k v q\r\nmn\r\n", "DELETED\r\nNF\r\nMN\r\n");
    sv_expect(fd, "version\r\n", "VERSION 1.6.0 cachebed-" CB_VERSION "\r\n");
    sv_expect(fd, "quit\r\n", "");
    CU_ASSERT(sv_closed(fd));
    close(fd);
}

static size_t sv_frame(uint8_t *out, uint8_t op, const char *key, const char *value, uint32_t id)
{
    cb_frame f;
    memset(&f, 0, sizeof f);
    f.opcode = op;
    f.request_id = id;
    f.key = (const uint8_t *)key;
    f.key_len = (uint8_t)strlen(key);
    f.value = (const uint8_t *)value;
    f.value_len = value ? (uint32_t)strlen(value) : 0;
    long n = cb_frame_encode(&f, out, 512);
    CU_ASSERT_FATAL(n > 0);
    return (size_t)n;
}

static void test_serve_binary(void)
{
    int fd = sv_connect();
    uint8_t buf[1024];
    size_t len = sv_frame(buf, CB_OP_SET, "bin", "value", 1);
    len += sv_frame(buf + len, CB_OP_GET, "bin", NULL, 2);
    sv_send(fd, buf, len);
    uint8_t rep[256];
    CU_ASSERT_EQUAL_FATAL(sv_recv(fd, rep, 40), 40);
    cb_frame f;
    CU_ASSERT_EQUAL(cb_frame_decode(rep, 40, NULL, &f), 40);
    CU_ASSERT_EQUAL(f.request_id, 1);
    CU_ASSERT_EQUAL(f.status, CB_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(sv_recv(fd, rep, 45), 45);
    CU_ASSERT_EQUAL(cb_frame_decode(rep, 45, NULL, &f), 45);
    CU_ASSERT_EQUAL(f.request_id, 2);
    CU_ASSERT(f.value_len == 5 && memcmp(f.value, "value", 5) == 0);
    /* a text client sees the same item (flags 0: the frame carries none) */
    int t = sv_connect();
    sv_expect(t, "get bin\r\n", "VALUE bin 0 5\r\nvalue\r\nEND\r\n");
    /* a frame with a bad version after 0xCB: the connection is closed */
    static const uint8_t bad[40] = {0xCB, 0xED, 9};
    sv_send(fd, bad, sizeof bad);
    CU_ASSERT(sv_closed(fd));
    close(fd);
    close(t);
}

/* Send one UDP request; collect the reply's datagrams into out. Returns the bytes, or 0. */
static size_t sv_udp(int fd, uint16_t id, const char *req, uint8_t *out, size_t out_cap,
                     uint16_t *count_out)
{
    uint8_t dg[1500];
    uint8_t head[8] = {(uint8_t)(id >> 8), (uint8_t)id, 0, 0, 0, 1, 0, 0};
    memcpy(dg, head, 8);
    memcpy(dg + 8, req, strlen(req));
    struct sockaddr_in a = sv_addr(sv_udp_port);
    CU_ASSERT_FATAL(sendto(fd, dg, 8 + strlen(req), 0, (struct sockaddr *)&a, sizeof a) > 0);
    size_t total = 0;
    uint16_t count = 1;
    for (uint16_t got = 0; got < count; got++) {
        ssize_t n = recv(fd, dg, sizeof dg, 0);
        if (n < 8) {
            return 0;
        }
        CU_ASSERT(n <= (ssize_t)CB_SERVE_UDP_DATAGRAM_BYTES);
        CU_ASSERT_EQUAL(dg[0] << 8 | dg[1], id);
        count = (uint16_t)(dg[4] << 8 | dg[5]);
        size_t seq = (size_t)(dg[2] << 8 | dg[3]);
        size_t per = CB_SERVE_UDP_DATAGRAM_BYTES - 8;
        CU_ASSERT_FATAL(seq * per + (size_t)(n - 8) <= out_cap);
        memcpy(out + seq * per, dg + 8, (size_t)(n - 8)); /* loopback: in order, lossless */
        total += (size_t)(n - 8);
    }
    *count_out = count;
    return total;
}

static void test_serve_udp(void)
{
    int t = sv_connect();
    static char value[5000], line[5100];
    memset(value, 'u', sizeof value);
    snprintf(line, sizeof line, "set big 0 0 5000\r\n%.*s\r\n", 5000, value);
    sv_expect(t, line, "STORED\r\n");
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    sv_timeout(fd, 2);
    static uint8_t out[8192];
    uint16_t count = 0;
    size_t n = sv_udp(fd, 77, "get big\r\n", out, sizeof out, &count);
    size_t want = strlen("VALUE big 0 5000\r\n") + 5000 + 2 + 5;
    CU_ASSERT_EQUAL(n, want);
    CU_ASSERT_EQUAL(count, 4);
    CU_ASSERT(memcmp(out, "VALUE big 0 5000\r\n", 18) == 0);
    CU_ASSERT(memcmp(out + want - 5, "END\r\n", 5) == 0);
    n = sv_udp(fd, 78, "mn\r\n", out, sizeof out, &count);
    CU_ASSERT(n == 4 && memcmp(out, "MN\r\n", 4) == 0);
    /* malformed datagrams (short, count 2, garbage) are dropped; the socket keeps serving */
    struct sockaddr_in a = sv_addr(sv_udp_port);
    static const uint8_t bad[][12] = {{0, 1, 0}, {0, 2, 0, 0, 0, 2, 0, 0, 'm', 'n', '\r', '\n'}};
    CU_ASSERT(sendto(fd, bad[0], 3, 0, (struct sockaddr *)&a, sizeof a) == 3);
    CU_ASSERT(sendto(fd, bad[1], 12, 0, (struct sockaddr *)&a, sizeof a) == 12);
    n = sv_udp(fd, 79, "\xff\xfe garbage\r\n", out, sizeof out, &count);
    CU_ASSERT(n == 7 && memcmp(out, "ERROR\r\n", 7) == 0);
    close(fd);
    close(t);
}

static void test_serve_hostile(void)
{
    int ok = sv_connect();
    /* garbage text: ERROR, the connection stays */
    int g = sv_connect();
    sv_expect(g, "\x01\x02\x03 junk\r\n", "ERROR\r\n");
    sv_expect(g, "mn\r\n", "MN\r\n");
    close(g);
    /* a line that never ends: answered and closed */
    int l = sv_connect();
    static char endless[8192];
    memset(endless, 'x', sizeof endless);
    sv_send(l, endless, sizeof endless);
    char got[64];
    size_t n = sv_recv(l, got, 28);
    CU_ASSERT(n == 28 && memcmp(got, "CLIENT_ERROR line too long\r\n", 28) == 0);
    CU_ASSERT(sv_closed(l));
    close(l);
    /* a 2 GiB length: refused before anything is buffered, and closed */
    int h = sv_connect();
    sv_expect(h, "set k 0 0 2147483648\r\n", "SERVER_ERROR object too large for cache\r\n");
    CU_ASSERT(sv_closed(h));
    close(h);
    /* a binary frame promising 2 GiB: closed after 16 bytes */
    int b = sv_connect();
    static const uint8_t frame[16] = {0xCB, 0xED, 1, CB_OP_SET, 0,    1, 0, 0,
                                      0,    0,    0, 1,         0x80, 0, 0, 0};
    sv_send(b, frame, sizeof frame);
    CU_ASSERT(sv_closed(b));
    close(b);
    sv_expect(ok, "mn\r\n", "MN\r\n");
    close(ok);
}

/* 1,000 connections at once (fewer if the fd limit is low), each served. */
static void test_serve_many_connections(void)
{
    static int fds[SV_MANY_CONNS];
    size_t n = sv_many;
    for (size_t i = 0; i < n; i++) {
        fds[i] = sv_connect();
    }
    for (size_t i = 0; i < n; i++) {
        sv_send(fds[i], "mn\r\n", 4);
    }
    size_t served = 0;
    for (size_t i = 0; i < n; i++) {
        char got[4];
        served += sv_recv(fds[i], got, 4) == 4 && memcmp(got, "MN\r\n", 4) == 0;
        close(fds[i]);
    }
    CU_ASSERT_EQUAL(served, n);
}

/* A client that sends requests and never reads: its queue passes the cap and it is closed,
 * while another client is served throughout. */
static void test_serve_reader_that_never_reads(void)
{
    int ok = sv_connect();
    static char value[256 * 1024 + 64];
    int vn = snprintf(value, sizeof value, "set slow 0 0 %d\r\n", 256 * 1024);
    memset(value + vn, 's', 256 * 1024);
    memcpy(value + vn + 256 * 1024, "\r\n", 2);
    sv_send(ok, value, (size_t)vn + 256 * 1024 + 2);
    char got[16];
    CU_ASSERT(sv_recv(ok, got, 8) == 8 && memcmp(got, "STORED\r\n", 8) == 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 32 * 1024;
    CU_ASSERT(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
    struct sockaddr_in a = sv_addr(sv_port);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    struct timeval tv = {0, 100000};
    CU_ASSERT(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0);
    /* 400 requests would ask for 100 MiB of replies; the cap is ~5 MiB plus socket buffers */
    int closed = 0;
    for (int i = 0; i < 400 && !closed; i++) {
        ssize_t n = send(fd, "get slow\r\n", 10, MSG_NOSIGNAL);
        closed = n < 0 && (errno == EPIPE || errno == ECONNRESET);
        if (i % 50 == 0) {
            sv_expect(ok, "mn\r\n", "MN\r\n");
        }
    }
    if (!closed) {
        sv_timeout(fd, 5);
        closed = sv_closed(fd);
    }
    CU_ASSERT(closed);
    close(fd);
    sv_expect(ok, "mn\r\n", "MN\r\n");
    close(ok);
}

static void test_serve_session(void)
{
    sv_start();
    test_serve_text_and_meta();
    test_serve_binary();
    test_serve_udp();
    test_serve_hostile();
    test_serve_many_connections();
    test_serve_reader_that_never_reads();
    /* clean shutdown: a connected client sees the close, the thread returns */
    int idle = sv_connect();
    cb_serve_stats st;
    sv_stop(&st);
    CU_ASSERT(sv_closed(idle));
    close(idle);
    CU_ASSERT_EQUAL(st.conns_open, 0);
    CU_ASSERT_EQUAL(st.closed_slow, 1);
    CU_ASSERT_EQUAL(st.refused, 0);
    CU_ASSERT(st.accepted >= sv_many);
    CU_ASSERT_EQUAL(st.udp_dropped, 2);
    printf("\n  accepted %llu, requests %llu, closed for not reading %llu\n",
           (unsigned long long)st.accepted, (unsigned long long)st.server.requests,
           (unsigned long long)st.closed_slow);
}

/* Past conn_max, a client is told so and closed; the server keeps serving. */
static void test_serve_conn_max(void)
{
    cb_serve_config c;
    memset(&c, 0, sizeof c);
    c.server = cb_server_config_default();
    c.server.conn_max = 2;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(cb_serve_new(&c, &sv, err, sizeof err), 0);
    sv_port = cb_serve_port(sv);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&sv_thread, NULL, sv_run, NULL), 0);
    int a = sv_connect(), b = sv_connect(), x = sv_connect();
    char got[64];
    size_t n = sv_recv(x, got, 40);
    CU_ASSERT(n == 40 && memcmp(got, "SERVER_ERROR too many open connections\r\n", 40) == 0);
    close(x);
    sv_expect(a, "mn\r\n", "MN\r\n");
    close(a);
    usleep(50000); /* let the server see the close */
    int y = sv_connect();
    sv_expect(y, "mn\r\n", "MN\r\n");
    cb_serve_stats st;
    sv_stop(&st);
    CU_ASSERT_EQUAL(st.refused, 1);
    close(b);
    close(y);
    /* a bad address and a port in use are errors with a message */
    c.listen_addr = "not-an-address";
    CU_ASSERT_EQUAL(cb_serve_new(&c, &sv, err, sizeof err), -1);
    CU_ASSERT(strstr(err, "not a numeric") != NULL);
}

static const cb_test_case tests[] = {
    {"session", test_serve_session},
    {"conn_max", test_serve_conn_max},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_serve", tests)
