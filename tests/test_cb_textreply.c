/*
 * test_cb_textreply.c: the client side of the memcached text protocol — the request encoder,
 * the reply parser (every reply kind, every split, hostile replies) and cb_client in text
 * mode on fake time (in-order matching, timeouts and resets, garbage closing the peer).
 */
#include <string.h>

#include "cb_client.h"
#include "cb_err.h"
#include "cb_frame.h"
#include "cb_test.h"
#include "cb_textreply.h"

#define TR_VMAX 1024u

static long tr_encode(uint8_t op, const char *key, const char *value, uint32_t ttl_ms, uint64_t cas,
                      uint64_t delta, uint8_t *out, size_t cap)
{
    cb_text_op t = {op,
                    (const uint8_t *)key,
                    key ? strlen(key) : 0,
                    (const uint8_t *)value,
                    value ? (uint32_t)strlen(value) : 0,
                    ttl_ms,
                    cas,
                    delta};
    return cb_text_encode_request(&t, out, cap);
}

static void tr_expect_request(uint8_t op, const char *key, const char *value, uint32_t ttl_ms,
                              uint64_t cas, uint64_t delta, const char *want)
{
    uint8_t out[512];
    long n = tr_encode(op, key, value, ttl_ms, cas, delta, out, sizeof out);
    CU_ASSERT_EQUAL(n, (long)strlen(want));
    if (n == (long)strlen(want)) {
        CU_ASSERT(memcmp(out, want, (size_t)n) == 0);
    }
    /* Every smaller buffer is too small. */
    for (size_t cap = 0; n > 0 && cap < (size_t)n; cap++) {
        CU_ASSERT_EQUAL(tr_encode(op, key, value, ttl_ms, cas, delta, out, cap), CB_ERR_FULL);
    }
}

static void test_encode_every_op(void)
{
    tr_expect_request(CB_OP_GET, "k1", NULL, 0, 0, 0, "gets k1\r\n");
    tr_expect_request(CB_OP_SET, "k1", "abc", 0, 0, 0, "set k1 0 0 3\r\nabc\r\n");
    tr_expect_request(CB_OP_ADD, "k1", "", 1, 0, 0, "add k1 0 1 0\r\n\r\n");
    tr_expect_request(CB_OP_REPLACE, "k1", "x", 1500, 0, 0, "replace k1 0 2 1\r\nx\r\n");
    tr_expect_request(CB_OP_APPEND, "k1", "x", 0, 0, 0, "append k1 0 0 1\r\nx\r\n");
    tr_expect_request(CB_OP_PREPEND, "k1", "x", 0, 0, 0, "prepend k1 0 0 1\r\nx\r\n");
    tr_expect_request(CB_OP_CAS, "k1", "v", 0, 42, 0, "cas k1 0 0 1 42\r\nv\r\n");
    tr_expect_request(CB_OP_DELETE, "k1", NULL, 0, 0, 0, "delete k1\r\n");
    tr_expect_request(CB_OP_INCR, "k1", NULL, 0, 0, 7, "incr k1 7\r\n");
    tr_expect_request(CB_OP_DECR, "k1", NULL, 0, 0, UINT64_MAX, "decr k1 18446744073709551615\r\n");
    tr_expect_request(CB_OP_TOUCH, "k1", NULL, 3000, 0, 0, "touch k1 3\r\n");
    tr_expect_request(CB_OP_FLUSH, NULL, NULL, 0, 0, 0, "flush_all\r\n");
    tr_expect_request(CB_OP_STATS, NULL, NULL, 0, 0, 0, "stats\r\n");
    tr_expect_request(CB_OP_NOOP, NULL, NULL, 0, 0, 0, "version\r\n");
    /* A TTL beyond 30 days would read as a Unix time: clamped. */
    tr_expect_request(CB_OP_TOUCH, "k1", NULL, UINT32_MAX, 0, 0, "touch k1 2592000\r\n");
}

static void test_encode_refuses(void)
{
    uint8_t out[512];
    CU_ASSERT_EQUAL(tr_encode(CB_OP_GET, "a b", NULL, 0, 0, 0, out, sizeof out), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(tr_encode(CB_OP_GET, "a\r", NULL, 0, 0, 0, out, sizeof out), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(tr_encode(CB_OP_GET, "a\x7f", NULL, 0, 0, 0, out, sizeof out), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(tr_encode(CB_OP_GET, NULL, NULL, 0, 0, 0, out, sizeof out), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(tr_encode(CB_OP_FLUSH, "k", NULL, 0, 0, 0, out, sizeof out), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(tr_encode(CB_OP_GET, "k", "v", 0, 0, 0, out, sizeof out), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(tr_encode(0x7F, "k", NULL, 0, 0, 0, out, sizeof out), CB_ERR_INVALID);
    char key[CB_KEY_BYTES_MAX + 2];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    CU_ASSERT_EQUAL(tr_encode(CB_OP_GET, key, NULL, 0, 0, 0, out, sizeof out), CB_ERR_KEY_TOO_LONG);
}

typedef struct tr_case {
    uint8_t op;
    const char *wire;
    uint16_t status;
} tr_case;

static const tr_case tr_cases[] = {
    {CB_OP_GET, "END\r\n", CB_STATUS_NOT_FOUND},
    {CB_OP_GET, "VALUE k1 0 3 77\r\nabc\r\nEND\r\n", CB_STATUS_OK},
    {CB_OP_GET, "VALUE k1 5 0\r\n\r\nEND\r\n", CB_STATUS_OK},
    {CB_OP_SET, "STORED\r\n", CB_STATUS_OK},
    {CB_OP_ADD, "NOT_STORED\r\n", CB_STATUS_NOT_STORED},
    {CB_OP_CAS, "EXISTS\r\n", CB_STATUS_EXISTS},
    {CB_OP_CAS, "NOT_FOUND\r\n", CB_STATUS_NOT_FOUND},
    {CB_OP_DELETE, "DELETED\r\n", CB_STATUS_OK},
    {CB_OP_DELETE, "NOT_FOUND\n", CB_STATUS_NOT_FOUND},
    {CB_OP_TOUCH, "TOUCHED\r\n", CB_STATUS_OK},
    {CB_OP_INCR, "18446744073709551615\r\n", CB_STATUS_OK},
    {CB_OP_DECR, "NOT_FOUND\r\n", CB_STATUS_NOT_FOUND},
    {CB_OP_FLUSH, "OK\r\n", CB_STATUS_OK},
    {CB_OP_NOOP, "VERSION 1.6.18\r\n", CB_STATUS_OK},
    {CB_OP_STATS, "STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n", CB_STATUS_OK},
    {CB_OP_SET, "ERROR\r\n", CB_STATUS_UNKNOWN_COMMAND},
    {CB_OP_GET, "CLIENT_ERROR bad command line format\r\n", CB_STATUS_BAD_REQUEST},
    {CB_OP_INCR, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
     CB_STATUS_NOT_NUMBER},
    {CB_OP_SET, "SERVER_ERROR object too large for cache\r\n", CB_STATUS_TOO_LARGE},
    {CB_OP_SET, "SERVER_ERROR out of memory storing object\r\n", CB_STATUS_NO_MEMORY},
    {CB_OP_STATS, "SERVER_ERROR out of memory\r\n", CB_STATUS_NO_MEMORY},
};

static void test_parse_every_reply_and_split(void)
{
    for (size_t i = 0; i < sizeof tr_cases / sizeof tr_cases[0]; i++) {
        const tr_case *c = &tr_cases[i];
        size_t len = strlen(c->wire);
        uint8_t buf[256];
        memcpy(buf, c->wire, len);
        memcpy(buf + len, "junk", 4); /* what follows is not taken */
        cb_text_reply r;
        long n = cb_text_parse_reply(buf, len + 4, c->op, TR_VMAX, &r);
        CU_ASSERT_EQUAL(n, (long)len);
        CU_ASSERT_EQUAL(r.status, c->status);
        CU_ASSERT_EQUAL(r.consumed, len);
        /* Every strict prefix asks for more, never misreads. */
        for (size_t k = 0; k < len; k++) {
            CU_ASSERT_EQUAL(cb_text_parse_reply(buf, k, c->op, TR_VMAX, &r), CB_ERR_NEED_MORE);
        }
    }
    cb_text_reply r;
    const char *hit = "VALUE k1 9 3 77\r\nabc\r\nEND\r\n";
    CU_ASSERT(cb_text_parse_reply((const uint8_t *)hit, strlen(hit), CB_OP_GET, TR_VMAX, &r) > 0);
    CU_ASSERT(r.value_len == 3 && memcmp(r.value, "abc", 3) == 0 && r.cas == 77 && r.flags == 9);
    CU_ASSERT(r.key_len == 2 && memcmp(r.key, "k1", 2) == 0);
    /* Once the VALUE line is in, the whole length is known. */
    CU_ASSERT_EQUAL(cb_text_parse_reply((const uint8_t *)hit, 20, CB_OP_GET, TR_VMAX, &r),
                    CB_ERR_NEED_MORE);
    CU_ASSERT_EQUAL(r.need_bytes, strlen(hit));
    const char *num = "42\r\n";
    CU_ASSERT(cb_text_parse_reply((const uint8_t *)num, 4, CB_OP_INCR, TR_VMAX, &r) == 4 &&
              r.number == 42);
}

static long tr_parse(const char *s, uint8_t op)
{
    cb_text_reply r;
    return cb_text_parse_reply((const uint8_t *)s, strlen(s), op, TR_VMAX, &r);
}

static void test_parse_hostile(void)
{
    /* A huge VALUE is refused as soon as its line is in. */
    CU_ASSERT_EQUAL(tr_parse("VALUE k 0 2147483648\r\n", CB_OP_GET), CB_ERR_VALUE_TOO_LARGE);
    CU_ASSERT_EQUAL(tr_parse("VALUE k 0 1025\r\n", CB_OP_GET), CB_ERR_VALUE_TOO_LARGE);
    CU_ASSERT_EQUAL(tr_parse("VALUE k 0 99999999999999999999999\r\n", CB_OP_GET), CB_ERR_MALFORMED);
    /* An endless line. */
    static uint8_t endless[CB_TEXT_LINE_BYTES_MAX + 10];
    memset(endless, 'A', sizeof endless);
    cb_text_reply r;
    CU_ASSERT_EQUAL(cb_text_parse_reply(endless, sizeof endless, CB_OP_SET, TR_VMAX, &r),
                    CB_ERR_TOO_LARGE);
    CU_ASSERT_EQUAL(
        cb_text_parse_reply(endless, CB_TEXT_LINE_BYTES_MAX - 1, CB_OP_SET, TR_VMAX, &r),
        CB_ERR_NEED_MORE);
    static uint8_t stats[CB_TEXT_REPLY_STATS_BYTES_MAX + 64];
    for (size_t i = 0; i + 12 <= sizeof stats; i += 12) {
        memcpy(stats + i, "STAT a 123\r\n", 12);
    }
    CU_ASSERT_EQUAL(cb_text_parse_reply(stats, sizeof stats, CB_OP_STATS, TR_VMAX, &r),
                    CB_ERR_TOO_LARGE);
    /* Garbage, and replies that do not answer the op. */
    CU_ASSERT_EQUAL(tr_parse("HELLO\r\n", CB_OP_SET), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(tr_parse("STORED\r\n", CB_OP_GET), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(tr_parse("DELETED\r\n", CB_OP_SET), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(tr_parse("12\r\n", CB_OP_SET), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(tr_parse("18446744073709551616\r\n", CB_OP_INCR), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(tr_parse("VALUE k 0 3\r\nabcXYEND\r\n", CB_OP_GET), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(tr_parse("VALUE k 0 3\r\nabc\r\nVALUE k 0 3\r\n", CB_OP_GET), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(tr_parse("VALUE k 4294967296 1\r\na\r\nEND\r\n", CB_OP_GET), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(tr_parse("VALUE k 0 1 2 3\r\na\r\nEND\r\n", CB_OP_GET), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(tr_parse("VALUE  0 1\r\na\r\nEND\r\n", CB_OP_GET), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(tr_parse("ERRORS\r\n", CB_OP_SET), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(tr_parse("STAT x\r\nfoo\r\n", CB_OP_STATS), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(cb_text_parse_reply(NULL, 0, CB_OP_GET, TR_VMAX, NULL), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(cb_text_parse_reply(NULL, 1, CB_OP_GET, TR_VMAX, &r), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(cb_text_parse_reply(NULL, 0, 0x7F, TR_VMAX, &r), CB_ERR_INVALID);
}

/* ---- cb_client in text mode ------------------------------------------------------------ */

#define TC_ACTS 256u

static cb_rng tc_rng;
static cb_action tc_acts[TC_ACTS];

static cb_client *tc_new(uint32_t peers)
{
    cb_client_config c = cb_client_config_default();
    c.peer_count = peers;
    c.timeout_ns = 1000;
    c.timeout_max_ns = 1000;
    c.jitter_ppm = 0;
    c.value_bytes_max = TR_VMAX;
    c.protocol = CB_CLIENT_PROTOCOL_TEXT;
    cb_rng_init(&tc_rng, 1);
    cb_client *cli = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_client_new(&c, &tc_rng, NULL, &cli), CB_ERR_OK);
    return cli;
}

static size_t tc_drain(cb_client *cli)
{
    size_t n = 0, got;
    while ((got = cb_client_drain(cli, tc_acts + n, TC_ACTS - n)) > 0) {
        n += got;
        CU_ASSERT_FATAL(n < TC_ACTS);
    }
    return n;
}

static void tc_submit(cb_client *cli, uint32_t peer, uint8_t op, const char *key,
                      uint64_t user_data)
{
    cb_client_op o;
    memset(&o, 0, sizeof o);
    o.op = op;
    o.key = (const uint8_t *)key;
    o.key_len = (uint8_t)strlen(key);
    if (op == CB_OP_SET) {
        o.value = (const uint8_t *)"hello";
        o.value_len = 5;
    }
    o.user_data = user_data;
    CU_ASSERT_EQUAL(cb_client_request(cli, peer, &o, 0, NULL), CB_ERR_OK);
}

/* The outcomes of the COMPLETE actions among n, by user_data (0 where none). */
static void tc_outcomes(size_t n, uint8_t *out, size_t out_len)
{
    memset(out, 0, out_len);
    for (size_t i = 0; i < n; i++) {
        if (tc_acts[i].kind == CB_ACTION_COMPLETE && tc_acts[i].completion.user_data < out_len) {
            out[tc_acts[i].completion.user_data] = tc_acts[i].completion.outcome;
        }
    }
}

static void test_client_text_in_order_byte_by_byte(void)
{
    cb_client *cli = tc_new(1);
    tc_submit(cli, 0, CB_OP_GET, "a", 1);
    tc_submit(cli, 0, CB_OP_SET, "a", 2);
    tc_submit(cli, 0, CB_OP_GET, "a", 3);
    size_t n = tc_drain(cli);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT(tc_acts[1].kind == CB_ACTION_SEND && tc_acts[1].data_len == 20 &&
              memcmp(tc_acts[1].data, "set a 0 0 5\r\nhello\r\n", 20) == 0);
    const char *wire = "END\r\nSTORED\r\nVALUE a 0 5 9\r\nhello\r\nEND\r\n";
    uint8_t got[4] = {0};
    uint64_t cas = 0;
    char value[8] = {0};
    for (size_t i = 0; i < strlen(wire); i++) {
        CU_ASSERT_EQUAL(cb_client_on_bytes(cli, 0, (const uint8_t *)wire + i, 1, 5), 1);
        size_t k = tc_drain(cli);
        for (size_t j = 0; j < k; j++) {
            const cb_completion *c = &tc_acts[j].completion;
            if (tc_acts[j].kind == CB_ACTION_COMPLETE && c->user_data == 3) {
                cas = c->cas;
                memcpy(value, c->value, c->value_len < 7 ? c->value_len : 7);
            }
            if (tc_acts[j].kind == CB_ACTION_COMPLETE && c->user_data < 4) {
                got[c->user_data] = c->outcome;
            }
        }
    }
    CU_ASSERT_EQUAL(got[1], CB_OUTCOME_MISS);
    CU_ASSERT_EQUAL(got[2], CB_OUTCOME_STORED);
    CU_ASSERT_EQUAL(got[3], CB_OUTCOME_HIT);
    CU_ASSERT_EQUAL(cas, 9);
    CU_ASSERT_STRING_EQUAL(value, "hello");
    CU_ASSERT_EQUAL(cb_client_outstanding(cli), 0);
    cb_client_del(cli);
}

/* Garbage, a reply to nothing, a huge VALUE, another key's VALUE: the peer is closed. */
static void test_client_text_hostile_closes(void)
{
    static const char *bad[] = {"HELLO\r\n", "VALUE a 0 99999999\r\n",
                                "VALUE b 0 1\r\nx\r\nEND\r\n"};
    for (size_t b = 0; b < 3; b++) {
        cb_client *cli = tc_new(2);
        tc_submit(cli, 0, CB_OP_GET, "a", 1);
        tc_submit(cli, 0, CB_OP_GET, "a", 2);
        tc_submit(cli, 1, CB_OP_GET, "a", 3);
        (void)tc_drain(cli);
        CU_ASSERT(cb_client_on_bytes(cli, 0, (const uint8_t *)bad[b], strlen(bad[b]), 5) < 0);
        size_t n = tc_drain(cli);
        int closed = 0;
        for (size_t i = 0; i < n; i++) {
            closed += tc_acts[i].kind == CB_ACTION_CLOSE && tc_acts[i].peer == 0;
        }
        CU_ASSERT_EQUAL(closed, 1);
        /* Both requests on peer 0 fail at the next timer; peer 1's stays. */
        CU_ASSERT_EQUAL(cb_client_next_deadline_ns(cli), 0);
        CU_ASSERT_EQUAL(cb_client_on_timer(cli, 10), CB_ERR_OK);
        uint8_t out[4];
        tc_outcomes(tc_drain(cli), out, sizeof out);
        CU_ASSERT(out[1] == CB_OUTCOME_ERROR && out[2] == CB_OUTCOME_ERROR && out[3] == 0);
        CU_ASSERT_EQUAL(cb_client_outstanding(cli), 1);
        cb_client_stats st;
        cb_client_get_stats(cli, &st);
        CU_ASSERT_EQUAL(st.protocol_errors, 1);
        /* Peer 1 still works; bytes from peer 0 now answer nothing: closed again. */
        CU_ASSERT_EQUAL(cb_client_on_bytes(cli, 1, (const uint8_t *)"END\r\n", 5, 20), 5);
        tc_outcomes(tc_drain(cli), out, sizeof out);
        CU_ASSERT_EQUAL(out[3], CB_OUTCOME_MISS);
        CU_ASSERT(cb_client_on_bytes(cli, 0, (const uint8_t *)"END\r\n", 5, 20) < 0);
        cb_client_del(cli);
    }
}

/* A timeout completes TIMEOUT, without retry, and resets the peer; a reset fails the rest. */
static void test_client_text_timeout_resets(void)
{
    cb_client *cli = tc_new(1);
    tc_submit(cli, 0, CB_OP_GET, "a", 1);
    (void)tc_drain(cli);
    tc_submit(cli, 0, CB_OP_DELETE, "a", 2);
    (void)tc_drain(cli);
    CU_ASSERT_EQUAL(cb_client_on_timer(cli, 1000), CB_ERR_OK);
    size_t n = tc_drain(cli);
    uint8_t out[4];
    tc_outcomes(n, out, sizeof out);
    CU_ASSERT_EQUAL(out[1], CB_OUTCOME_TIMEOUT);
    uint8_t second = out[2]; /* failed in the same scan, or at the next timer */
    int closed = 0, sends = 0;
    for (size_t i = 0; i < n; i++) {
        closed += tc_acts[i].kind == CB_ACTION_CLOSE;
        sends += tc_acts[i].kind == CB_ACTION_SEND;
    }
    CU_ASSERT(closed == 1 && sends == 0);
    CU_ASSERT_EQUAL(cb_client_on_timer(cli, 1001), CB_ERR_OK);
    tc_outcomes(tc_drain(cli), out, sizeof out);
    CU_ASSERT_EQUAL(second | out[2], CB_OUTCOME_ERROR);
    CU_ASSERT_EQUAL(cb_client_outstanding(cli), 0);
    /* After the reset, a new request's reply matches it. */
    tc_submit(cli, 0, CB_OP_GET, "a", 3);
    (void)tc_drain(cli);
    CU_ASSERT_EQUAL(cb_client_on_bytes(cli, 0, (const uint8_t *)"END\r\n", 5, 1002), 5);
    tc_outcomes(tc_drain(cli), out, sizeof out);
    CU_ASSERT_EQUAL(out[3], CB_OUTCOME_MISS);
    /* The driver reports a lost connection: what was in flight fails. */
    tc_submit(cli, 0, CB_OP_GET, "a", 1);
    (void)tc_drain(cli);
    CU_ASSERT_EQUAL(cb_client_on_reset(cli, 0), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_client_on_timer(cli, 1003), CB_ERR_OK);
    tc_outcomes(tc_drain(cli), out, sizeof out);
    CU_ASSERT_EQUAL(out[1], CB_OUTCOME_ERROR);
    cb_client_stats st;
    cb_client_get_stats(cli, &st);
    CU_ASSERT_EQUAL(st.retries, 0);
    CU_ASSERT_EQUAL(st.timeouts, 1);
    cb_client_del(cli);
}

static void test_client_text_config(void)
{
    cb_client_config c = cb_client_config_default();
    c.protocol = 2;
    cb_client *cli = NULL;
    cb_rng_init(&tc_rng, 1);
    CU_ASSERT_EQUAL(cb_client_new(&c, &tc_rng, NULL, &cli), CB_ERR_INVALID);
    /* A key the text protocol cannot carry is refused at submission. */
    cli = tc_new(1);
    cb_client_op o;
    memset(&o, 0, sizeof o);
    o.op = CB_OP_GET;
    o.key = (const uint8_t *)"a b";
    o.key_len = 3;
    CU_ASSERT_EQUAL(cb_client_request(cli, 0, &o, 0, NULL), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(cb_client_outstanding(cli), 0);
    CU_ASSERT_EQUAL(tc_drain(cli), 0);
    cb_client_del(cli);
}

static const cb_test_case tests[] = {
    {"encode_every_op", test_encode_every_op},
    {"encode_refuses", test_encode_refuses},
    {"parse_every_reply_and_split", test_parse_every_reply_and_split},
    {"parse_hostile", test_parse_hostile},
    {"client_text_in_order_byte_by_byte", test_client_text_in_order_byte_by_byte},
    {"client_text_hostile_closes", test_client_text_hostile_closes},
    {"client_text_timeout_resets", test_client_text_timeout_resets},
    {"client_text_config", test_client_text_config},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_textreply", tests)
