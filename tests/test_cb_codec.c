/*
 * test_cb_codec.c: the machines with compression and sealing on (protocols/cb_codec.h,
 * docs/protocol.md §5, §6).
 *
 * Over the in-memory network (sim/cb_memworld.h): SET/GET pairs of compressible values of
 * 16 B to 64 KiB with lz4, zstd, sealing (stream and datagram modes, with duplication and
 * reordering) and both at once all succeed and return the bytes stored, with fewer bytes on
 * the wire than without compression; mismatched configurations are refused with a status or
 * a frame_rejected event. By hand: a tampered or replayed request closes the connection
 * without a reply, a bomb is answered TOO_LARGE, and runs are byte-identical for a seed.
 */
#include <stdio.h>
#include <string.h>

#include "cb_err.h"
#include "cb_memworld.h"
#include "cb_test.h"

#define W_OPS       400u
#define W_KEYS      50u
#define W_VALUE_MAX (64u * 1024u)

static const uint32_t w_sizes[] = {16, 100, 300, 1000, 4000, 20000, W_VALUE_MAX};

typedef struct w_ctx {
    uint32_t issued;
    uint32_t done;
    uint32_t failures;
    uint32_t rejected_events;
    int32_t last_reject;
    uint8_t key[32];
    uint8_t value[W_VALUE_MAX];
    uint64_t trace_hash;
} w_ctx;

/* JSON-ish text for key `k`: compressible like real cache values, distinct per key. */
static uint32_t w_value(uint32_t k, uint8_t *out)
{
    uint32_t len = w_sizes[k % (sizeof w_sizes / sizeof w_sizes[0])];
    uint32_t off = 0;
    for (uint32_t item = 0; off < len; item++) {
        char rec[96];
        int n = snprintf(rec, sizeof rec, "{\"id\":%u,\"user\":\"u%u\",\"score\":%u,\"ok\":true},",
                         item, k, (item * 7919u + k) % 1000u);
        for (int i = 0; i < n && off < len; i++) {
            out[off++] = (uint8_t)rec[i];
        }
    }
    return len;
}

static int w_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op, uint32_t *server,
                  uint64_t *wake_ns)
{
    w_ctx *t = user;
    (void)client;
    (void)now_ns;
    if (t->issued >= W_OPS || t->issued > t->done) {
        *wake_ns = UINT64_MAX; /* one at a time: a GET follows its SET */
        return 0;
    }
    uint32_t k = (t->issued / 2) % W_KEYS;
    op->key_len = (uint8_t)snprintf((char *)t->key, sizeof t->key, "key:%u", k);
    op->key = t->key;
    op->op = t->issued % 2 == 0 ? CB_OP_SET : CB_OP_GET;
    if (op->op == CB_OP_SET) {
        op->value_len = w_value(k, t->value);
        op->value = t->value;
    }
    op->user_data = t->issued++;
    *server = 0;
    return 1;
}

static void w_complete(void *user, uint32_t client, const cb_completion *c)
{
    w_ctx *t = user;
    (void)client;
    t->done++;
    static uint8_t want[W_VALUE_MAX];
    if (c->op == CB_OP_SET) {
        t->failures += c->outcome != CB_OUTCOME_STORED;
        return;
    }
    uint32_t len = w_value((uint32_t)(c->user_data / 2) % W_KEYS, want);
    t->failures +=
        c->outcome != CB_OUTCOME_HIT || c->value_len != len || memcmp(c->value, want, len) != 0;
}

static void w_event(void *user, uint32_t node, const cb_event *e, uint64_t now_ns)
{
    w_ctx *t = user;
    (void)node;
    (void)now_ns;
    if (e->kind == CB_EVENT_FRAME_REJECTED) {
        t->rejected_events++;
        t->last_reject = e->detail;
    }
}

static void w_action(void *user, uint32_t node, const cb_action *a, uint64_t now_ns)
{
    w_ctx *t = user;
    uint64_t h = t->trace_hash ^ cb_rng_mix64(node + 31u * a->kind + now_ns);
    for (size_t i = 0; a->kind == CB_ACTION_SEND && i < a->data_len; i++) {
        h = (h ^ a->data[i]) * 0x100000001b3ull;
    }
    t->trace_hash = h;
}

static cb_memworld_config w_config(const cb_codec_config *cli, const cb_codec_config *srv)
{
    cb_memworld_config c;
    memset(&c, 0, sizeof c);
    c.server_count = 1;
    c.client_count = 1;
    c.server = cb_server_config_default();
    c.server.store.value_bytes_max = W_VALUE_MAX;
    c.server.codec = *srv;
    c.client = cb_client_config_default();
    c.client.value_bytes_max = W_VALUE_MAX;
    c.client.attempts_max = 2;
    c.client.codec = *cli;
    c.net.latency_ns = 100000;
    c.net.queue_max = 1024;
    c.net.bytes_max = 16u << 20;
    c.net.node_count = 2; /* stream semantics */
    c.seed = cb_test_seed();
    return c;
}

/* Run the SET/GET workload; returns the bytes the network carried. */
static uint64_t w_run(const cb_memworld_config *cfg, w_ctx *t)
{
    memset(t, 0, sizeof *t);
    cb_memworld *w = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_memworld_new(cfg, NULL, &w), CB_ERR_OK);
    cb_world_hooks h = {t, w_next, w_complete, w_event, w_action};
    CU_ASSERT_EQUAL(cb_memworld_run(w, &h, UINT64_MAX), CB_ERR_OK);
    cb_memnet_stats ns;
    cb_memnet_get_stats(cb_memworld_net(w), &ns);
    cb_memworld_del(w);
    return ns.bytes_sent;
}

static const cb_seal_key w_key = {{1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31}};
static const cb_seal_key w_other_key = {{9}};

static void w_expect_clean(const w_ctx *t, const char *what)
{
    if (t->done != W_OPS || t->failures != 0 || t->rejected_events != 0) {
        printf("\n  %s: %u/%u done, %u failures, %u rejected (last %s)\n", what, t->done, W_OPS,
               t->failures, t->rejected_events, cb_err_name(t->last_reject));
    }
    CU_ASSERT_EQUAL(t->done, W_OPS);
    CU_ASSERT_EQUAL(t->failures, 0);
    CU_ASSERT_EQUAL(t->rejected_events, 0);
}

static void test_compression_saves_bytes(void)
{
    cb_codec_config off, lz4, zstd;
    memset(&off, 0, sizeof off);
    lz4 = off;
    lz4.compress_alg = CB_COMPRESS_LZ4;
    zstd = off;
    zstd.compress_alg = CB_COMPRESS_ZSTD;
    zstd.compress_level = 9;
    w_ctx t;
    cb_memworld_config c = w_config(&off, &off);
    uint64_t plain = w_run(&c, &t);
    w_expect_clean(&t, "off");
    c = w_config(&lz4, &lz4);
    uint64_t with_lz4 = w_run(&c, &t);
    w_expect_clean(&t, "lz4");
    c = w_config(&zstd, &zstd);
    uint64_t with_zstd = w_run(&c, &t);
    w_expect_clean(&t, "zstd");
    printf("\n  wire bytes: plain %llu, lz4 %llu, zstd-9 %llu\n", (unsigned long long)plain,
           (unsigned long long)with_lz4, (unsigned long long)with_zstd);
    CU_ASSERT(with_lz4 < plain / 2);
    CU_ASSERT(with_zstd < with_lz4);
}

static void test_sealed_stream(void)
{
    cb_codec_config seal, both;
    memset(&seal, 0, sizeof seal);
    seal.seal_key = &w_key;
    both = seal;
    both.compress_alg = CB_COMPRESS_LZ4;
    w_ctx t;
    cb_memworld_config c = w_config(&seal, &seal);
    uint64_t sealed = w_run(&c, &t);
    w_expect_clean(&t, "sealed");
    c = w_config(&both, &both);
    uint64_t sealed_lz4 = w_run(&c, &t);
    w_expect_clean(&t, "sealed+lz4");
    CU_ASSERT(sealed_lz4 < sealed / 2);
    /* Same seed, same bytes, sealing included. */
    uint64_t h1 = t.trace_hash;
    w_run(&c, &t);
    CU_ASSERT_EQUAL(t.trace_hash, h1);
}

/* Datagram mode on a datagram network that duplicates 20% of messages and reorders: the
 * duplicates are refused as replays and dropped, and every request still completes. */
static void test_sealed_datagram_duplicates(void)
{
    cb_codec_config dg;
    memset(&dg, 0, sizeof dg);
    dg.seal_key = &w_key;
    dg.seal_mode = CB_SEAL_DATAGRAM;
    cb_memworld_config c = w_config(&dg, &dg);
    c.net.node_count = 0;
    c.net.jitter_ns = 50000;
    c.net.dup_ppm = 200000;
    w_ctx t;
    w_run(&c, &t);
    CU_ASSERT_EQUAL(t.done, W_OPS);
    CU_ASSERT_EQUAL(t.failures, 0);
    CU_ASSERT(t.rejected_events > 10);
    CU_ASSERT_EQUAL(t.last_reject, CB_ERR_REPLAY);
}

/* Mismatches: each refused with a clear status or event, never silently accepted. */
static void test_mismatch(void)
{
    cb_codec_config off, seal, other, lz4, zstd;
    memset(&off, 0, sizeof off);
    seal = off;
    seal.seal_key = &w_key;
    other = off;
    other.seal_key = &w_other_key;
    lz4 = off;
    lz4.compress_alg = CB_COMPRESS_LZ4;
    zstd = off;
    zstd.compress_alg = CB_COMPRESS_ZSTD;
    w_ctx t;
    /* Wrong key: the server refuses (AUTH_FAILED), closes; the requests time out. */
    cb_memworld_config c = w_config(&seal, &other);
    w_run(&c, &t);
    CU_ASSERT(t.failures > 0 && t.rejected_events > 0);
    CU_ASSERT_EQUAL(t.last_reject, CB_ERR_AUTH_FAILED);
    /* A clear client to a sealing server: CODEC_MISMATCH, closed. */
    c = w_config(&off, &seal);
    w_run(&c, &t);
    CU_ASSERT(t.failures > 0);
    CU_ASSERT_EQUAL(t.last_reject, CB_ERR_CODEC_MISMATCH);
    /* zstd values to an lz4 server over a stream: the HELLO agrees on none (§5.3), so
     * every value goes uncompressed and nothing fails. */
    c = w_config(&zstd, &lz4);
    w_run(&c, &t);
    CU_ASSERT_EQUAL(t.done, W_OPS);
    CU_ASSERT_EQUAL(t.failures, 0);
    /* Without HELLO (connectionless: configured alike), BAD_REQUEST replies for the
     * compressed ones. */
    zstd.connectionless = 1;
    c = w_config(&zstd, &lz4);
    w_run(&c, &t);
    CU_ASSERT_EQUAL(t.done, W_OPS);
    CU_ASSERT(t.failures > 0);
    CU_ASSERT_EQUAL(t.last_reject, CB_ERR_CODEC_MISMATCH);
}

/* By hand: one client and one server, sealed, the request's bytes in our hands. */
typedef struct w_pair {
    cb_client *cli;
    cb_server *srv;
    uint8_t req[1024];
    size_t req_len;
} w_pair;

static void w_pair_new(w_pair *p, const cb_codec_config *codec)
{
    memset(p, 0, sizeof *p);
    static cb_rng rng;
    cb_rng_init(&rng, 1);
    cb_client_config cc = cb_client_config_default();
    cc.codec = *codec;
    cb_server_config sc = cb_server_config_default();
    sc.conn_max = 2;
    sc.codec = *codec;
    sc.codec.seal_seed = 77;
    CU_ASSERT_EQUAL_FATAL(cb_client_new(&cc, &rng, NULL, &p->cli), CB_ERR_OK);
    CU_ASSERT_EQUAL_FATAL(cb_server_new(&sc, NULL, &p->srv), CB_ERR_OK);
}

/* Submit a SET and keep its wire bytes. */
static void w_pair_request(w_pair *p, const char *key)
{
    cb_client_op op;
    memset(&op, 0, sizeof op);
    op.op = CB_OP_SET;
    op.key = (const uint8_t *)key;
    op.key_len = (uint8_t)strlen(key);
    op.value = (const uint8_t *)"hello";
    op.value_len = 5;
    CU_ASSERT_EQUAL_FATAL(cb_client_request(p->cli, 0, &op, 0, NULL), CB_ERR_OK);
    cb_action a;
    CU_ASSERT_EQUAL_FATAL(cb_client_drain(p->cli, &a, 1), 1);
    CU_ASSERT_FATAL(a.kind == CB_ACTION_SEND && a.data_len <= sizeof p->req);
    memcpy(p->req, a.data, a.data_len);
    p->req_len = a.data_len;
}

/* Feed bytes to the server; count its SEND, CLOSE and FRAME_REJECTED actions. */
static void w_pair_feed(w_pair *p, const uint8_t *buf, size_t len, size_t *sends, size_t *closes,
                        int32_t *reject)
{
    (void)cb_server_on_bytes(p->srv, 1, buf, len, 0);
    cb_action a[8];
    size_t n = cb_server_drain(p->srv, a, 8);
    *sends = *closes = 0;
    *reject = 0;
    for (size_t i = 0; i < n; i++) {
        *sends += a[i].kind == CB_ACTION_SEND;
        *closes += a[i].kind == CB_ACTION_CLOSE;
        if (a[i].kind == CB_ACTION_EVENT && a[i].event.kind == CB_EVENT_FRAME_REJECTED) {
            *reject = a[i].event.detail;
        }
    }
}

static void test_tamper_and_replay(void)
{
    cb_codec_config seal;
    memset(&seal, 0, sizeof seal);
    seal.seal_key = &w_key;
    w_pair p;
    w_pair_new(&p, &seal);
    w_pair_request(&p, "k1");
    size_t sends, closes;
    int32_t reject;
    for (size_t i = 0; i < p.req_len; i += 5) {
        uint8_t bad[1024];
        memcpy(bad, p.req, p.req_len);
        bad[i] ^= 0x04;
        w_pair_feed(&p, bad, p.req_len, &sends, &closes, &reject);
        CU_ASSERT_EQUAL(sends, 0);
        /* Closed, unless the flip made key_len (byte 5) or value_len (bytes 12..15)
         * announce more bytes: then the server waits for them, and the close below drops
         * them. A flipped first byte is no longer 0xCB: the connection then speaks the
         * memcached text protocol (docs/real.md §3) and waits for a line's end. */
        int longer = i == 0 || i == 5 || (i >= 12 && i < 16);
        CU_ASSERT(closes == 1 || longer);
        CU_ASSERT(reject != 0 || i < CB_FRAME_HEADER_BYTES); /* or a decoder error */
        CU_ASSERT_EQUAL(cb_server_on_close(p.srv, 1), CB_ERR_OK);
    }
    w_pair_feed(&p, p.req, p.req_len, &sends, &closes, &reject);
    CU_ASSERT_EQUAL(sends, 1);
    CU_ASSERT_EQUAL(closes, 0);
    /* The same bytes again on the same connection: a replay, refused and closed. */
    w_pair_feed(&p, p.req, p.req_len, &sends, &closes, &reject);
    CU_ASSERT_EQUAL(sends, 0);
    CU_ASSERT_EQUAL(closes, 1);
    CU_ASSERT_EQUAL(reject, CB_ERR_AUTH_FAILED);
    cb_server_stats st;
    cb_server_get_stats(p.srv, &st);
    CU_ASSERT_EQUAL(st.store.cmd_set, 1);
    cb_client_del(p.cli);
    cb_server_del(p.srv);
}

/*
 * Datagram sealing, by hand, with the server's connection ids as UDP peers (docs/real.md §6):
 * two clients (two salts) on one id collide — the second's salt retires the first's, whose
 * next frame is a replay — while on two ids both are served. cb_server_on_close keeps a
 * datagram session (a replayed frame is still refused after it); cb_server_forget starts it
 * afresh (the id may go to another peer: the same frame is then accepted).
 */
static void test_datagram_peers_and_forget(void)
{
    cb_codec_config dg;
    memset(&dg, 0, sizeof dg);
    dg.seal_key = &w_key;
    dg.seal_mode = CB_SEAL_DATAGRAM;
    dg.connectionless = 1;
    w_pair a, b;
    w_pair_new(&a, &dg);
    dg.seal_seed = 99; /* the second client: another salt */
    w_pair_new(&b, &dg);
    cb_client_del(b.cli);
    b.cli = NULL;
    cb_rng rng;
    cb_rng_init(&rng, 3);
    cb_client_config cc = cb_client_config_default();
    cc.codec = dg;
    CU_ASSERT_EQUAL_FATAL(cb_client_new(&cc, &rng, NULL, &b.cli), CB_ERR_OK);
    size_t sends, closes;
    int32_t reject;
    /* One id (1) for both clients: a's first frame, b's, then a's next is refused. */
    w_pair_request(&a, "a1");
    w_pair_feed(&a, a.req, a.req_len, &sends, &closes, &reject);
    CU_ASSERT_EQUAL(sends, 1);
    w_pair_request(&b, "b1");
    w_pair_feed(&a, b.req, b.req_len, &sends, &closes, &reject);
    CU_ASSERT_EQUAL(sends, 1);
    w_pair_request(&a, "a2");
    w_pair_feed(&a, a.req, a.req_len, &sends, &closes, &reject);
    CU_ASSERT_EQUAL(sends, 0);
    CU_ASSERT_EQUAL(reject, CB_ERR_REPLAY);
    /* Each client on its own id of b's server: both served, interleaved. */
    for (int i = 0; i < 3; i++) {
        w_pair_request(&a, "a3");
        (void)cb_server_on_bytes(b.srv, 0, a.req, a.req_len, 0);
        cb_action acts[8];
        size_t n = cb_server_drain(b.srv, acts, 8);
        CU_ASSERT(n >= 1 && acts[0].kind == CB_ACTION_SEND && acts[0].peer == 0);
        w_pair_request(&b, "b3");
        w_pair_feed(&b, b.req, b.req_len, &sends, &closes, &reject);
        CU_ASSERT_EQUAL(sends, 1);
    }
    cb_server_stats st;
    cb_server_get_stats(b.srv, &st);
    CU_ASSERT_EQUAL(st.frames_rejected, 0);
    CU_ASSERT_EQUAL(st.store.cmd_set, 6);
    /* on_close keeps the session: b's last frame again is a replay. */
    CU_ASSERT_EQUAL(cb_server_on_close(b.srv, 1), CB_ERR_OK);
    w_pair_feed(&b, b.req, b.req_len, &sends, &closes, &reject);
    CU_ASSERT_EQUAL(sends, 0);
    CU_ASSERT_EQUAL(reject, CB_ERR_REPLAY);
    /* forget drops it: the id starts afresh and takes the frame (a new peer's window). */
    CU_ASSERT_EQUAL(cb_server_forget(b.srv, 2), CB_ERR_UNKNOWN_CONN);
    CU_ASSERT_EQUAL(cb_server_forget(b.srv, 1), CB_ERR_OK);
    w_pair_feed(&b, b.req, b.req_len, &sends, &closes, &reject);
    CU_ASSERT_EQUAL(sends, 1);
    CU_ASSERT_EQUAL(reject, 0);
    cb_client_del(a.cli);
    cb_server_del(a.srv);
    cb_client_del(b.cli);
    cb_server_del(b.srv);
}

/* A compressed value declaring 1 GiB: TOO_LARGE from its 5-byte header, connection kept. */
static void test_bomb_request(void)
{
    cb_codec_config lz4;
    memset(&lz4, 0, sizeof lz4);
    lz4.compress_alg = CB_COMPRESS_LZ4;
    w_pair p;
    w_pair_new(&p, &lz4);
    uint8_t payload[16] = {CB_COMPRESS_LZ4, 0x40, 0, 0, 0, 0x1F, 'a'};
    cb_frame f;
    memset(&f, 0, sizeof f);
    f.opcode = CB_OP_SET;
    f.flags = CB_FLAG_COMPRESSED;
    f.request_id = 9;
    f.key = (const uint8_t *)"bomb";
    f.key_len = 4;
    f.value = payload;
    f.value_len = sizeof payload;
    uint8_t wire[128];
    long n = cb_frame_encode(&f, wire, sizeof wire);
    CU_ASSERT_FATAL(n > 0);
    (void)cb_server_on_bytes(p.srv, 1, wire, (size_t)n, 0);
    cb_action a[8];
    size_t got = cb_server_drain(p.srv, a, 8);
    int replied = 0, rejected = 0;
    for (size_t i = 0; i < got; i++) {
        cb_frame r;
        if (a[i].kind == CB_ACTION_SEND &&
            cb_frame_decode(a[i].data, a[i].data_len, NULL, &r) == (long)a[i].data_len) {
            replied = r.status == CB_STATUS_TOO_LARGE && r.request_id == 9;
        }
        rejected |= a[i].kind == CB_ACTION_EVENT && a[i].event.detail == CB_ERR_VALUE_TOO_LARGE;
        CU_ASSERT(a[i].kind != CB_ACTION_CLOSE);
    }
    CU_ASSERT(replied && rejected);
    cb_client_del(p.cli);
    cb_server_del(p.srv);
}

/* cb_codec_new fails cleanly at every allocation, through the server's constructor. */
static void test_oom(void)
{
    cb_codec_config both;
    memset(&both, 0, sizeof both);
    both.seal_key = &w_key;
    both.compress_alg = CB_COMPRESS_ZSTD;
    cb_server_config sc = cb_server_config_default();
    sc.conn_max = 4;
    sc.store.memory_bytes_max = 1u << 20;
    sc.store.value_bytes_max = 4096;
    sc.codec = both;
    for (uint64_t n = 0;; n++) {
        cb_alloc_failing fa;
        cb_alloc_failing_init(&fa, n, 1);
        cb_server *srv = NULL;
        int rc = cb_server_new(&sc, &fa.alloc, &srv);
        CU_ASSERT_EQUAL(fa.live, rc == CB_ERR_OK ? fa.live : 0);
        if (rc == CB_ERR_OK) {
            cb_server_del(srv);
            CU_ASSERT_EQUAL(fa.live, 0);
            break;
        }
        CU_ASSERT_EQUAL(rc, CB_ERR_NOMEM);
        CU_ASSERT_FATAL(n < 100);
    }
}

static const cb_test_case cases[] = {
    {"compression_saves_bytes", test_compression_saves_bytes},
    {"sealed_stream", test_sealed_stream},
    {"sealed_datagram_duplicates", test_sealed_datagram_duplicates},
    {"mismatch", test_mismatch},
    {"tamper_and_replay", test_tamper_and_replay},
    {"datagram_peers_and_forget", test_datagram_peers_and_forget},
    {"bomb_request", test_bomb_request},
    {"oom", test_oom},
    {NULL, NULL},
};

/* Like CB_TEST_MAIN, after libsodium's one-time set-up, which is the driver's job. */
int main(void)
{
    if (cb_seal_global_init() != CB_ERR_OK) {
        fprintf(stderr, "cb_codec: sodium_init failed\n");
        return 2;
    }
    return cb_test_run("cb_codec", cases);
}
