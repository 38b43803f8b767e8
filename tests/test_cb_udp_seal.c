/*
 * test_cb_udp_seal.c: several sealing clients over real UDP to one `cachebed serve` with a
 * key in datagram seal mode (real/cb_serve.c, docs/real.md §6, §6a), on 127.0.0.1 only.
 *
 * SEAL_CLIENTS cb_client machines, each on its own UDP socket (its own source port) with its
 * own seal salt, take turns: every round each client (A, B, C, D) sends a SET of its own key
 * before any reply is read, so the server sees their datagrams interleaved, then every
 * client reads its reply, then the same with a GET sent in reverse order (D, C, B, A). Every
 * request must be answered (STORED, then a HIT with the bytes stored) and the server must
 * reject no frame. With one seal session for all UDP peers (the server before per-peer ids)
 * each new salt retired the one before it, so a client whose salt was just retired (C after
 * D, D having followed C) was refused as a replay: the first round already fails. Run with one
 * thread and with two (SO_REUSEPORT: each peer stays on the thread the kernel hashes it to),
 * and with a peer table of 2 slots for the 4 clients (nearly every datagram evicts a peer).
 */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cb_client.h"
#include "cb_err.h"
#include "cb_seal.h"
#include "cb_serve.h"
#include "cb_test.h"
#include "cb_udp.h"

#define SEAL_CLIENTS 4u
#define SEAL_ROUNDS  40u

static const cb_seal_key seal_key = {{9,  8,  7,  6,  5,  4,  3,  2,  1,  0,  11,
                                      12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                      23, 24, 25, 26, 27, 28, 29, 30, 31, 32}};

typedef struct seal_peer {
    int fd;
    cb_client *cli;
    cb_rng rng;
    uint16_t next_id;
    uint32_t ok, failed;
} seal_peer;

static cb_serve *seal_sv;

static void *seal_run(void *arg)
{
    (void)arg;
    CU_ASSERT_EQUAL(cb_serve_run(seal_sv), 0);
    return NULL;
}

static cb_codec_config seal_codec(uint64_t seed)
{
    cb_codec_config c;
    memset(&c, 0, sizeof c);
    c.seal_key = &seal_key;
    c.seal_mode = CB_SEAL_DATAGRAM;
    c.seal_seed = seed;
    c.connectionless = 1;
    return c;
}

/* Submit one op on peer p and send its frame in one datagram. */
static void seal_send(seal_peer *p, uint8_t op, const char *key, const char *value)
{
    cb_client_op o;
    memset(&o, 0, sizeof o);
    o.op = op;
    o.key = (const uint8_t *)key;
    o.key_len = (uint8_t)strlen(key);
    if (value != NULL) {
        o.value = (const uint8_t *)value;
        o.value_len = (uint32_t)strlen(value);
    }
    CU_ASSERT_EQUAL_FATAL(cb_client_request(p->cli, 0, &o, 0, NULL), CB_ERR_OK);
    cb_action a;
    CU_ASSERT_EQUAL_FATAL(cb_client_drain(p->cli, &a, 1), 1);
    CU_ASSERT_FATAL(a.kind == CB_ACTION_SEND && a.data_len < 1024);
    uint8_t d[1100];
    cb_udp_header h = {p->next_id++, 0, 1, 0};
    cb_udp_header_encode(&h, d);
    memcpy(d + CB_UDP_HEADER_BYTES, a.data, a.data_len);
    size_t n = CB_UDP_HEADER_BYTES + a.data_len;
    CU_ASSERT_FATAL(send(p->fd, d, n, 0) == (ssize_t)n);
}

/* Read one reply datagram on p and check the completion: `want` NULL means STORED, else a
 * HIT with that value. A missing reply (the 1 s timeout) counts as a failure. */
static void seal_recv(seal_peer *p, const char *want)
{
    uint8_t d[2048];
    ssize_t r = recv(p->fd, d, sizeof d, 0);
    cb_udp_header h;
    if (r < 0 || cb_udp_header_decode(d, (size_t)r, &h) != CB_ERR_OK || h.total != 1) {
        p->failed++;
        return;
    }
    long used =
        cb_client_on_bytes(p->cli, 0, d + CB_UDP_HEADER_BYTES, (size_t)r - CB_UDP_HEADER_BYTES, 0);
    cb_action a[4];
    size_t n = cb_client_drain(p->cli, a, 4);
    int good = 0;
    for (size_t i = 0; i < n; i++) {
        const cb_completion *c = &a[i].completion;
        if (a[i].kind != CB_ACTION_COMPLETE) {
            continue;
        }
        good = want == NULL ? c->outcome == CB_OUTCOME_STORED
                            : c->outcome == CB_OUTCOME_HIT && c->value_len == strlen(want) &&
                                  memcmp(c->value, want, c->value_len) == 0;
    }
    good = good && used == (long)((size_t)r - CB_UDP_HEADER_BYTES);
    p->ok += (uint32_t)good;
    p->failed += (uint32_t)!good;
}

static void seal_clients(uint32_t threads, uint32_t peers_max)
{
    cb_serve_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.server = cb_server_config_default();
    cfg.server.conn_max = 16;
    cfg.server.store.memory_bytes_max = 4u << 20;
    cfg.server.store.value_bytes_max = 16u << 10;
    cfg.server.codec = seal_codec(77);
    cfg.udp = 1;
    cfg.threads = threads;
    cfg.udp_peers_max = peers_max;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(cb_serve_new(&cfg, &seal_sv, err, sizeof err), 0);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, seal_run, NULL), 0);
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(cb_serve_udp_port(seal_sv));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    seal_peer peers[SEAL_CLIENTS];
    memset(peers, 0, sizeof peers);
    for (uint32_t i = 0; i < SEAL_CLIENTS; i++) {
        seal_peer *p = &peers[i];
        p->fd = socket(AF_INET, SOCK_DGRAM, 0);
        CU_ASSERT_FATAL(p->fd >= 0);
        struct timeval tv = {1, 0};
        CU_ASSERT(setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
        CU_ASSERT_FATAL(connect(p->fd, (struct sockaddr *)&to, sizeof to) == 0);
        cb_rng_init(&p->rng, 1000 + i);
        cb_client_config cc = cb_client_config_default();
        cc.codec = seal_codec(5000 + i); /* each client its own salts */
        CU_ASSERT_EQUAL_FATAL(cb_client_new(&cc, &p->rng, NULL, &p->cli), CB_ERR_OK);
        p->next_id = 1;
    }
    uint32_t failed_rounds = 0;
    for (uint32_t r = 0; r < SEAL_ROUNDS && failed_rounds < 3; r++) {
        char key[SEAL_CLIENTS][32], val[SEAL_CLIENTS][32];
        uint32_t failed = 0;
        for (uint32_t i = 0; i < SEAL_CLIENTS; i++) {
            snprintf(key[i], sizeof key[i], "c%u:k%u", i, r % 5);
            snprintf(val[i], sizeof val[i], "v%u.%u", i, r);
            seal_send(&peers[i], CB_OP_SET, key[i], val[i]);
        }
        for (uint32_t i = 0; i < SEAL_CLIENTS; i++) {
            seal_recv(&peers[i], NULL);
        }
        for (uint32_t i = SEAL_CLIENTS; i-- > 0;) { /* the other way round: D C B A */
            seal_send(&peers[i], CB_OP_GET, key[i], NULL);
        }
        for (uint32_t i = 0; i < SEAL_CLIENTS; i++) {
            seal_recv(&peers[i], val[i]);
            failed += peers[i].failed;
        }
        failed_rounds += failed > 0; /* a broken server fails fast, not after every timeout */
    }
    cb_serve_stop(seal_sv);
    CU_ASSERT_EQUAL(pthread_join(th, NULL), 0);
    cb_serve_stats st;
    cb_serve_get_stats(seal_sv, &st);
    uint32_t ok = 0, failed = 0;
    for (uint32_t i = 0; i < SEAL_CLIENTS; i++) {
        ok += peers[i].ok;
        failed += peers[i].failed;
        CU_ASSERT_EQUAL(peers[i].ok, 2 * SEAL_ROUNDS);
        cb_client_del(peers[i].cli);
        close(peers[i].fd);
    }
    printf("\n  %u thread(s), %u clients: %u replies right, %u wrong or missing; server: %llu "
           "datagrams, %llu peers, %llu frames rejected\n",
           threads, SEAL_CLIENTS, ok, failed, (unsigned long long)st.udp_datagrams,
           (unsigned long long)st.udp_peers_added, (unsigned long long)st.server.frames_rejected);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT_EQUAL(st.server.frames_rejected, 0);
    if (peers_max == 0) {
        CU_ASSERT_EQUAL(st.udp_peers, SEAL_CLIENTS);
        CU_ASSERT_EQUAL(st.udp_peers_added, SEAL_CLIENTS);
        CU_ASSERT_EQUAL(st.udp_peers_evicted, 0);
    } else {
        /* More clients than slots: a peer is evicted before it sends again (but for the
         * last SET's sender, which sends the first GET too). */
        CU_ASSERT_EQUAL(st.udp_peers, peers_max);
        CU_ASSERT_EQUAL(st.udp_peers_added - st.udp_peers_evicted, peers_max);
        CU_ASSERT(st.udp_peers_added >= st.udp_datagrams / 2);
    }
    cb_serve_del(seal_sv);
}

static void test_one_thread(void)
{
    seal_clients(1, 0);
}

static void test_two_threads(void)
{
    seal_clients(2, 0);
}

/* Two slots for four clients: nearly each datagram's peer was evicted since its last one, so it
 * starts afresh (cb_server_forget): a new server salt the client takes as a restart, a new
 * receiver that takes the client's salt. Service is unaffected, nothing is rejected. */
static void test_evicted_peers(void)
{
    seal_clients(1, 2);
}

static const cb_test_case tests[] = {
    {"one_thread", test_one_thread},
    {"two_threads", test_two_threads},
    {"evicted_peers", test_evicted_peers},
    {NULL, NULL},
};

/* Like CB_TEST_MAIN, after libsodium's one-time set-up, which is the driver's job. */
int main(void)
{
    if (cb_seal_global_init() != CB_ERR_OK) {
        fprintf(stderr, "cb_udp_seal: sodium_init failed\n");
        return 2;
    }
    return cb_test_run("cb_udp_seal", tests);
}
