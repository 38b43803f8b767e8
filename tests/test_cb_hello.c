/*
 * test_cb_hello.c: the HELLO negotiation of compression on stream connections
 * (docs/protocol.md §5.3): one cb_client (peer 0) wired by hand to one cb_server (conn 1),
 * every frame's header in our hands. Outcomes (both lz4; lz4 offered to a zstd server; a
 * server with compression off; no HELLO; reconnection) and hostile HELLO frames.
 */
#include <string.h>

#include "cb_client.h"
#include "cb_err.h"
#include "cb_server.h"
#include "cb_test.h"

#define H_CONN      1u
#define H_VALUE_LEN 2000u
#define H_ACTS      64u

typedef struct h_pair {
    cb_client *cli;
    cb_server *srv;
    cb_rng rng;
    /* What went over the wire at the last h_pump, in order. */
    uint8_t cli_ops[H_ACTS], cli_flags[H_ACTS];
    uint8_t srv_ops[H_ACTS], srv_flags[H_ACTS];
    uint16_t srv_status[H_ACTS];
    uint64_t srv_arg[H_ACTS];
    size_t cli_n, srv_n;
    /* The last GET completion's value. */
    uint8_t got[H_VALUE_LEN];
    size_t got_len;
    uint8_t got_outcome;
} h_pair;

static uint8_t h_value[H_VALUE_LEN];

static void h_fill_value(void)
{
    for (size_t i = 0; i < sizeof h_value; i++) {
        h_value[i] = (uint8_t)("abcabcabd"[i % 9]); /* compresses well */
    }
}

static cb_codec_config h_codec(uint8_t alg)
{
    cb_codec_config c;
    memset(&c, 0, sizeof c);
    c.compress_alg = alg;
    c.compress_threshold_bytes = 64;
    return c;
}

static void h_new(h_pair *p, const cb_codec_config *cli, const cb_codec_config *srv)
{
    memset(p, 0, sizeof *p);
    h_fill_value();
    cb_rng_init(&p->rng, 7);
    cb_client_config cc = cb_client_config_default();
    cc.codec = *cli;
    cb_server_config sc = cb_server_config_default();
    sc.conn_max = 2;
    sc.codec = *srv;
    CU_ASSERT_EQUAL_FATAL(cb_client_new(&cc, &p->rng, NULL, &p->cli), CB_ERR_OK);
    CU_ASSERT_EQUAL_FATAL(cb_server_new(&sc, NULL, &p->srv), CB_ERR_OK);
}

static void h_del(h_pair *p)
{
    cb_client_del(p->cli);
    cb_server_del(p->srv);
}

static void h_header(const cb_action *a, uint8_t *op, uint8_t *flags, uint16_t *status,
                     uint64_t *arg)
{
    cb_frame f;
    CU_ASSERT_FATAL(cb_frame_decode_header(a->data, a->data_len, NULL, &f) ==
                    (long)CB_FRAME_HEADER_BYTES);
    *op = f.opcode;
    *flags = f.flags;
    if (status != NULL) {
        *status = f.status;
        *arg = f.arg;
    }
}

/* Carry every frame client -> server -> client until both are quiet, recording headers. */
static void h_pump(h_pair *p)
{
    p->cli_n = p->srv_n = 0;
    for (int round = 0; round < 8; round++) {
        cb_action a[H_ACTS];
        size_t n = cb_client_drain(p->cli, a, H_ACTS);
        size_t moved = n;
        for (size_t i = 0; i < n; i++) {
            if (a[i].kind == CB_ACTION_COMPLETE && a[i].completion.op == CB_OP_GET) {
                p->got_outcome = a[i].completion.outcome;
                p->got_len = a[i].completion.value_len;
                if (p->got_len <= sizeof p->got) {
                    memcpy(p->got, a[i].completion.value, p->got_len);
                }
            }
            if (a[i].kind != CB_ACTION_SEND) {
                continue;
            }
            CU_ASSERT_FATAL(p->cli_n < H_ACTS);
            h_header(&a[i], &p->cli_ops[p->cli_n], &p->cli_flags[p->cli_n], NULL, NULL);
            p->cli_n++;
            CU_ASSERT_EQUAL(cb_server_on_bytes(p->srv, H_CONN, a[i].data, a[i].data_len, 0),
                            (long)a[i].data_len);
        }
        n = cb_server_drain(p->srv, a, H_ACTS);
        moved += n;
        for (size_t i = 0; i < n; i++) {
            if (a[i].kind != CB_ACTION_SEND) {
                continue;
            }
            CU_ASSERT_FATAL(p->srv_n < H_ACTS);
            h_header(&a[i], &p->srv_ops[p->srv_n], &p->srv_flags[p->srv_n],
                     &p->srv_status[p->srv_n], &p->srv_arg[p->srv_n]);
            p->srv_n++;
            CU_ASSERT_EQUAL(cb_client_on_bytes(p->cli, 0, a[i].data, a[i].data_len, 0),
                            (long)a[i].data_len);
        }
        if (moved == 0) {
            return;
        }
    }
    CU_FAIL("h_pump did not settle");
}

static void h_request(h_pair *p, uint8_t op, const char *key)
{
    cb_client_op o;
    memset(&o, 0, sizeof o);
    o.op = op;
    o.key = (const uint8_t *)key;
    o.key_len = (uint8_t)strlen(key);
    if (op == CB_OP_SET) {
        o.value = h_value;
        o.value_len = H_VALUE_LEN;
    }
    CU_ASSERT_EQUAL_FATAL(cb_client_request(p->cli, 0, &o, 0, NULL), CB_ERR_OK);
}

/* A SET then a GET of the same key; the GET gets the value intact. */
static void h_set_get(h_pair *p, const char *key)
{
    h_request(p, CB_OP_SET, key);
    h_pump(p);
    h_request(p, CB_OP_GET, key);
    h_pump(p);
    CU_ASSERT_EQUAL(p->got_outcome, CB_OUTCOME_HIT);
    CU_ASSERT_EQUAL(p->got_len, H_VALUE_LEN);
    CU_ASSERT(p->got_len == H_VALUE_LEN && memcmp(p->got, h_value, H_VALUE_LEN) == 0);
}

static int h_compressed(uint8_t flags)
{
    return (flags & CB_FLAG_COMPRESSED) != 0;
}

/*
 * The first exchange on a new connection: the client sends HELLO, then its SET uncompressed
 * (nothing is agreed yet); the server answers the HELLO with `want` in arg. Then a SET and
 * a GET: both values compressed iff `want` is an algorithm.
 */
static void h_expect_negotiated(h_pair *p, uint8_t want, const char *key)
{
    h_request(p, CB_OP_SET, key);
    h_pump(p);
    CU_ASSERT_EQUAL_FATAL(p->cli_n, 2);
    CU_ASSERT_EQUAL(p->cli_ops[0], CB_OP_HELLO);
    CU_ASSERT_EQUAL(p->cli_ops[1], CB_OP_SET);
    CU_ASSERT(!h_compressed(p->cli_flags[1]));
    CU_ASSERT_EQUAL_FATAL(p->srv_n, 2);
    CU_ASSERT_EQUAL(p->srv_ops[0], CB_OP_HELLO);
    CU_ASSERT_EQUAL(p->srv_status[0], CB_STATUS_OK);
    CU_ASSERT_EQUAL(p->srv_arg[0], want);
    CU_ASSERT_EQUAL(p->srv_status[1], CB_STATUS_OK);
    h_request(p, CB_OP_SET, key);
    h_pump(p);
    CU_ASSERT_EQUAL_FATAL(p->cli_n, 1);
    CU_ASSERT_EQUAL(p->cli_ops[0], CB_OP_SET);
    CU_ASSERT_EQUAL(h_compressed(p->cli_flags[0]), want != CB_COMPRESS_NONE);
    CU_ASSERT_EQUAL(p->srv_status[0], CB_STATUS_OK);
    h_request(p, CB_OP_GET, key);
    h_pump(p);
    CU_ASSERT_EQUAL_FATAL(p->srv_n, 1);
    CU_ASSERT_EQUAL(h_compressed(p->srv_flags[0]), want != CB_COMPRESS_NONE);
    CU_ASSERT_EQUAL(p->got_outcome, CB_OUTCOME_HIT);
    CU_ASSERT(p->got_len == H_VALUE_LEN && memcmp(p->got, h_value, H_VALUE_LEN) == 0);
}

static void test_both_lz4(void)
{
    cb_codec_config lz4 = h_codec(CB_COMPRESS_LZ4);
    h_pair p;
    h_new(&p, &lz4, &lz4);
    h_expect_negotiated(&p, CB_COMPRESS_LZ4, "k");
    cb_client_stats cs;
    cb_client_get_stats(p.cli, &cs);
    CU_ASSERT_EQUAL(cs.unknown_replies, 0);
    CU_ASSERT_EQUAL(cs.requests, 3); /* the HELLO is not a request of the caller's */
    h_del(&p);
}

static void test_both_zstd(void)
{
    cb_codec_config zstd = h_codec(CB_COMPRESS_ZSTD);
    h_pair p;
    h_new(&p, &zstd, &zstd);
    h_expect_negotiated(&p, CB_COMPRESS_ZSTD, "k");
    h_del(&p);
}

/* Today a zstd server's replies to an lz4 client fail; negotiated, both send plain values. */
static void test_lz4_client_zstd_server(void)
{
    cb_codec_config lz4 = h_codec(CB_COMPRESS_LZ4);
    cb_codec_config zstd = h_codec(CB_COMPRESS_ZSTD);
    h_pair p;
    h_new(&p, &lz4, &zstd);
    h_expect_negotiated(&p, CB_COMPRESS_NONE, "k");
    cb_server_stats ss;
    cb_server_get_stats(p.srv, &ss);
    CU_ASSERT_EQUAL(ss.bad_requests, 0);
    h_del(&p);
}

/* A server with no codec at all, and one that only seals, answer none. */
static void test_server_off(void)
{
    cb_codec_config lz4 = h_codec(CB_COMPRESS_LZ4);
    cb_codec_config off = h_codec(CB_COMPRESS_NONE);
    h_pair p;
    h_new(&p, &lz4, &off);
    h_expect_negotiated(&p, CB_COMPRESS_NONE, "k");
    cb_server_stats ss;
    cb_server_get_stats(p.srv, &ss);
    CU_ASSERT_EQUAL(ss.bad_requests, 0);
    CU_ASSERT_EQUAL(ss.frames_rejected, 0);
    h_del(&p);
}

/* No HELLO (a connectionless transport, or an old-style client): configured alike, as
 * before negotiation existed: the first SET is compressed, the server compresses too. */
static void test_no_hello_configured(void)
{
    cb_codec_config lz4 = h_codec(CB_COMPRESS_LZ4);
    cb_codec_config lz4_dgram = lz4;
    lz4_dgram.connectionless = 1;
    h_pair p;
    h_new(&p, &lz4_dgram, &lz4);
    h_request(&p, CB_OP_SET, "k");
    h_pump(&p);
    CU_ASSERT_EQUAL_FATAL(p.cli_n, 1);
    CU_ASSERT_EQUAL(p.cli_ops[0], CB_OP_SET);
    CU_ASSERT(h_compressed(p.cli_flags[0]));
    h_request(&p, CB_OP_GET, "k");
    h_pump(&p);
    CU_ASSERT_EQUAL_FATAL(p.srv_n, 1);
    CU_ASSERT(h_compressed(p.srv_flags[0]));
    CU_ASSERT(p.got_len == H_VALUE_LEN && memcmp(p.got, h_value, H_VALUE_LEN) == 0);
    h_del(&p);
    /* And a mismatch stays a mismatch without HELLO: zstd values to an lz4 server. */
    cb_codec_config zstd_dgram = h_codec(CB_COMPRESS_ZSTD);
    zstd_dgram.connectionless = 1;
    h_new(&p, &zstd_dgram, &lz4);
    h_request(&p, CB_OP_SET, "k");
    h_pump(&p);
    CU_ASSERT_EQUAL_FATAL(p.srv_n, 1);
    CU_ASSERT_EQUAL(p.srv_status[0], CB_STATUS_BAD_REQUEST);
    h_del(&p);
}

/* A reset connection starts over: HELLO again, agreed again; the server takes it as the
 * new connection's first frame, not a mid-connection one. */
static void test_reconnect_renegotiates(void)
{
    cb_codec_config lz4 = h_codec(CB_COMPRESS_LZ4);
    h_pair p;
    h_new(&p, &lz4, &lz4);
    h_expect_negotiated(&p, CB_COMPRESS_LZ4, "k");
    CU_ASSERT_EQUAL(cb_client_on_reset(p.cli, 0), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_server_on_close(p.srv, H_CONN), CB_ERR_OK);
    h_expect_negotiated(&p, CB_COMPRESS_LZ4, "k2");
    /* A lost HELLO reply: the connection resets before it arrives. */
    CU_ASSERT_EQUAL(cb_client_on_reset(p.cli, 0), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_server_on_close(p.srv, H_CONN), CB_ERR_OK);
    h_request(&p, CB_OP_SET, "k3");
    cb_action a[8];
    size_t n = cb_client_drain(p.cli, a, 8);
    CU_ASSERT_EQUAL_FATAL(n, 2); /* HELLO and SET, dropped on the floor */
    CU_ASSERT_EQUAL(cb_client_on_reset(p.cli, 0), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_client_on_timer(p.cli, UINT64_MAX / 2), CB_ERR_OK); /* retry */
    h_pump(&p);
    CU_ASSERT_EQUAL_FATAL(p.cli_n, 2);
    CU_ASSERT_EQUAL(p.cli_ops[0], CB_OP_HELLO);
    CU_ASSERT_EQUAL(p.srv_arg[0], CB_COMPRESS_LZ4);
    h_set_get(&p, "k3");
    CU_ASSERT(h_compressed(p.srv_flags[0]));
    cb_server_stats ss;
    cb_server_get_stats(p.srv, &ss);
    CU_ASSERT_EQUAL(ss.bad_requests, 0);
    h_del(&p);
}

/* Sealed (stream): the HELLO is sealed like any frame, and a reconnection (new seal
 * sessions) negotiates again. */
static void test_sealed_lz4(void)
{
    static const cb_seal_key key = {{3, 1, 4, 1, 5, 9, 2, 6}};
    cb_codec_config cli = h_codec(CB_COMPRESS_LZ4);
    cli.seal_key = &key;
    cli.seal_seed = 11;
    cb_codec_config srv = cli;
    srv.seal_seed = 22;
    h_pair p;
    h_new(&p, &cli, &srv);
    h_expect_negotiated(&p, CB_COMPRESS_LZ4, "k");
    CU_ASSERT(p.srv_flags[0] & CB_FLAG_ENCRYPTED);
    CU_ASSERT_EQUAL(cb_client_on_reset(p.cli, 0), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_server_on_close(p.srv, H_CONN), CB_ERR_OK);
    h_expect_negotiated(&p, CB_COMPRESS_LZ4, "k2");
    cb_server_stats ss;
    cb_server_get_stats(p.srv, &ss);
    CU_ASSERT_EQUAL(ss.frames_rejected, 0);
    CU_ASSERT_EQUAL(ss.bad_requests, 0);
    h_del(&p);
}

/* ---- hostile HELLO frames ---- */

static size_t h_frame(uint8_t *out, uint8_t op, uint8_t flags, uint16_t status, uint64_t arg,
                      const char *key)
{
    cb_frame f;
    memset(&f, 0, sizeof f);
    f.opcode = op;
    f.flags = flags;
    f.status = status;
    f.arg = arg;
    f.request_id = op == CB_OP_HELLO ? 0 : 5;
    f.key = (const uint8_t *)key;
    f.key_len = key != NULL ? (uint8_t)strlen(key) : 0;
    long n = cb_frame_encode(&f, out, 512);
    CU_ASSERT_FATAL(n > 0);
    return (size_t)n;
}

/* Feed one frame to the server on conn; returns the reply's status (0xFFFF: no reply) and
 * sets *arg. */
static uint16_t h_srv_one(cb_server *srv, uint32_t conn, const uint8_t *buf, size_t len,
                          uint64_t *arg, uint8_t *flags)
{
    CU_ASSERT_EQUAL(cb_server_on_bytes(srv, conn, buf, len, 0), (long)len);
    cb_action a[8];
    size_t n = cb_server_drain(srv, a, 8);
    uint16_t status = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT(a[i].kind != CB_ACTION_CLOSE);
        if (a[i].kind == CB_ACTION_SEND) {
            uint8_t op, fl;
            h_header(&a[i], &op, &fl, &status, arg);
            if (flags != NULL) {
                *flags = fl;
            }
        }
    }
    return status;
}

static void test_hostile_to_server(void)
{
    cb_codec_config lz4 = h_codec(CB_COMPRESS_LZ4);
    cb_server_config sc = cb_server_config_default();
    sc.conn_max = 16;
    sc.codec = lz4;
    cb_server *srv;
    CU_ASSERT_EQUAL_FATAL(cb_server_new(&sc, NULL, &srv), CB_ERR_OK);
    uint8_t buf[512];
    uint64_t arg = 0;
    const uint64_t bit_lz4 = 1u << CB_COMPRESS_LZ4;
    const uint64_t bit_zstd = 1u << CB_COMPRESS_ZSTD;
    struct {
        const char *name;
        uint8_t flags;
        uint64_t mask;
        const char *key;
    } bad_first[] = {
        {"empty_mask", 0, 0, NULL},
        {"bit0_none", 0, 1, NULL},
        {"unknown_bit3", 0, bit_lz4 | 8, NULL},
        {"high_bit", 0, bit_lz4 | (1ull << 63), NULL},
        {"reply_direction", CB_FLAG_RESPONSE, bit_lz4, NULL},
        {"with_key", 0, bit_lz4, "k"},
    };
    uint32_t conn = 0;
    for (size_t i = 0; i < sizeof bad_first / sizeof bad_first[0]; i++, conn++) {
        size_t n =
            h_frame(buf, CB_OP_HELLO, bad_first[i].flags, 0, bad_first[i].mask, bad_first[i].key);
        CU_ASSERT_EQUAL(h_srv_one(srv, conn, buf, n, &arg, NULL), CB_STATUS_BAD_REQUEST);
    }
    /* A malformed first HELLO still settles the connection: none. A GET's large value then
     * goes uncompressed. */
    uint8_t value[1000];
    memset(value, 'x', sizeof value);
    cb_frame set;
    memset(&set, 0, sizeof set);
    set.opcode = CB_OP_SET;
    set.request_id = 9;
    set.key = (const uint8_t *)"big";
    set.key_len = 3;
    set.value = value;
    set.value_len = sizeof value;
    uint8_t big[1200];
    long sn = cb_frame_encode(&set, big, sizeof big);
    CU_ASSERT_FATAL(sn > 0);
    uint8_t fl = 0;
    CU_ASSERT_EQUAL(h_srv_one(srv, 0, big, (size_t)sn, &arg, NULL), CB_STATUS_OK);
    size_t n = h_frame(buf, CB_OP_GET, 0, 0, 0, "big");
    CU_ASSERT_EQUAL(h_srv_one(srv, 0, buf, n, &arg, &fl), CB_STATUS_OK);
    CU_ASSERT(!h_compressed(fl));
    /* Without any HELLO the same GET is compressed (configured alike). */
    CU_ASSERT_EQUAL(h_srv_one(srv, conn, buf, n, &arg, &fl), CB_STATUS_OK);
    CU_ASSERT(h_compressed(fl));
    conn++;
    /* HELLO mid-connection: after a request, and a second HELLO after a good one. */
    n = h_frame(buf, CB_OP_HELLO, 0, 0, bit_lz4, NULL);
    CU_ASSERT_EQUAL(h_srv_one(srv, conn - 1, buf, n, &arg, NULL), CB_STATUS_BAD_REQUEST);
    CU_ASSERT_EQUAL(h_srv_one(srv, conn, buf, n, &arg, NULL), CB_STATUS_OK);
    CU_ASSERT_EQUAL(arg, CB_COMPRESS_LZ4);
    n = h_frame(buf, CB_OP_HELLO, 0, 0, bit_zstd, NULL);
    CU_ASSERT_EQUAL(h_srv_one(srv, conn, buf, n, &arg, NULL), CB_STATUS_BAD_REQUEST);
    /* The connection kept its agreement (lz4): the GET is compressed. */
    n = h_frame(buf, CB_OP_GET, 0, 0, 0, "big");
    CU_ASSERT_EQUAL(h_srv_one(srv, conn, buf, n, &arg, &fl), CB_STATUS_OK);
    CU_ASSERT(h_compressed(fl));
    conn++;
    /* Both bits offered: the server's own. Only zstd offered: none. */
    n = h_frame(buf, CB_OP_HELLO, 0, 0, bit_lz4 | bit_zstd, NULL);
    CU_ASSERT_EQUAL(h_srv_one(srv, conn++, buf, n, &arg, NULL), CB_STATUS_OK);
    CU_ASSERT_EQUAL(arg, CB_COMPRESS_LZ4);
    n = h_frame(buf, CB_OP_HELLO, 0, 0, bit_zstd, NULL);
    CU_ASSERT_EQUAL(h_srv_one(srv, conn, buf, n, &arg, NULL), CB_STATUS_OK);
    CU_ASSERT_EQUAL(arg, CB_COMPRESS_NONE);
    n = h_frame(buf, CB_OP_GET, 0, 0, 0, "big");
    CU_ASSERT_EQUAL(h_srv_one(srv, conn, buf, n, &arg, &fl), CB_STATUS_OK);
    CU_ASSERT(!h_compressed(fl));
    cb_server_del(srv);
}

/* HELLO frames the client did not ask for are counted and ignored, never trusted. */
static void test_hostile_to_client(void)
{
    cb_codec_config lz4 = h_codec(CB_COMPRESS_LZ4);
    h_pair p;
    h_new(&p, &lz4, &lz4);
    uint8_t buf[512];
    /* Before any HELLO was sent: an unsolicited reply. */
    size_t n = h_frame(buf, CB_OP_HELLO, CB_FLAG_RESPONSE, 0, CB_COMPRESS_LZ4, NULL);
    CU_ASSERT_EQUAL(cb_client_on_bytes(p.cli, 0, buf, n, 0), (long)n);
    /* A HELLO request to the client (no RESPONSE flag). */
    n = h_frame(buf, CB_OP_HELLO, 0, 0, 1u << CB_COMPRESS_LZ4, NULL);
    CU_ASSERT_EQUAL(cb_client_on_bytes(p.cli, 0, buf, n, 0), (long)n);
    cb_client_stats cs;
    cb_client_get_stats(p.cli, &cs);
    CU_ASSERT_EQUAL(cs.unknown_replies, 2);
    /* The real exchange still happens and agrees. */
    h_expect_negotiated(&p, CB_COMPRESS_LZ4, "k");
    /* A second reply after agreement: ignored, the agreement stands. */
    n = h_frame(buf, CB_OP_HELLO, CB_FLAG_RESPONSE, 0, CB_COMPRESS_NONE, NULL);
    CU_ASSERT_EQUAL(cb_client_on_bytes(p.cli, 0, buf, n, 0), (long)n);
    cb_client_get_stats(p.cli, &cs);
    CU_ASSERT_EQUAL(cs.unknown_replies, 3);
    h_request(&p, CB_OP_SET, "k");
    h_pump(&p);
    CU_ASSERT(h_compressed(p.cli_flags[0]));
    /* After a reset, a reply naming an algorithm we did not offer (zstd) means none. */
    CU_ASSERT_EQUAL(cb_client_on_reset(p.cli, 0), CB_ERR_OK);
    h_request(&p, CB_OP_SET, "k");
    cb_action a[8];
    CU_ASSERT_EQUAL(cb_client_drain(p.cli, a, 8), 2);
    n = h_frame(buf, CB_OP_HELLO, CB_FLAG_RESPONSE, 0, CB_COMPRESS_ZSTD, NULL);
    CU_ASSERT_EQUAL(cb_client_on_bytes(p.cli, 0, buf, n, 0), (long)n);
    h_request(&p, CB_OP_SET, "k4");
    CU_ASSERT_EQUAL_FATAL(cb_client_drain(p.cli, a, 8), 1);
    uint8_t op, fl;
    h_header(&a[0], &op, &fl, NULL, NULL);
    CU_ASSERT_EQUAL(op, CB_OP_SET);
    CU_ASSERT(!h_compressed(fl));
    /* HELLO is not an operation a caller may submit. */
    cb_client_op o;
    memset(&o, 0, sizeof o);
    o.op = CB_OP_HELLO;
    o.key = (const uint8_t *)"k";
    o.key_len = 1;
    CU_ASSERT_EQUAL(cb_client_request(p.cli, 0, &o, 0, NULL), CB_ERR_INVALID);
    h_del(&p);
}

static const cb_test_case cases[] = {
    {"both_lz4", test_both_lz4},
    {"both_zstd", test_both_zstd},
    {"lz4_client_zstd_server", test_lz4_client_zstd_server},
    {"server_off", test_server_off},
    {"no_hello_configured", test_no_hello_configured},
    {"reconnect_renegotiates", test_reconnect_renegotiates},
    {"sealed_lz4", test_sealed_lz4},
    {"hostile_to_server", test_hostile_to_server},
    {"hostile_to_client", test_hostile_to_client},
    {NULL, NULL},
};

/* Like CB_TEST_MAIN, after libsodium's one-time set-up, which is the driver's job. */
int main(void)
{
    if (cb_seal_global_init() != CB_ERR_OK) {
        return 2;
    }
    return cb_test_run("cb_hello", cases);
}
