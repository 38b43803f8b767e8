/*
 * test_cb_queue.c: the queue transport envelope (protocols/cb_queue.h, docs/protocol.md §10).
 *
 * Golden bytes pin the layout; a table covers every decoder error; every strict prefix of a
 * valid envelope gives NEED_MORE, read against a PROT_NONE guard page; the encoder refuses
 * what the decoder refuses; the stream reader reassembles envelopes fed byte by byte and at
 * seeded split points, and fails cleanly when its buffer cannot grow.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */

#include "cb_err.h"
#include "cb_queue.h"
#include "cb_rng.h"
#include "cb_test.h"
#include "cb_test_guard.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>


static const uint8_t test_payload[5] = {'h', 'e', 'l', 'l', 'o'};

static cb_queue_msg sample_deliver(void)
{
    cb_queue_msg m = {
        .kind = CB_QUEUE_DELIVER,
        .delivery = 0x0102,
        .dst = 0x03040506u,
        .src = 0x0708090Au,
        .message_id = 0x0B0C0D0E0F101112ull,
        .payload_len = sizeof test_payload,
        .payload = test_payload,
    };
    return m;
}

static void test_queue_golden_bytes(void)
{
    static const uint8_t want[] = {0xCB, 0x51, 0x01, 0x03, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
                                   0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10,
                                   0x11, 0x12, 0x00, 0x00, 0x00, 0x05, 'h',  'e',  'l',  'l',  'o'};
    cb_queue_msg m = sample_deliver();
    uint8_t out[64];
    CU_ASSERT_EQUAL(cb_queue_encoded_len(&m), sizeof want);
    CU_ASSERT_EQUAL(cb_queue_encode(&m, out, sizeof out), (long)sizeof want);
    CU_ASSERT(memcmp(out, want, sizeof want) == 0);
    cb_queue_msg d;
    CU_ASSERT_EQUAL(cb_queue_decode(want, sizeof want, 0, &d), (long)sizeof want);
    CU_ASSERT_EQUAL(d.kind, CB_QUEUE_DELIVER);
    CU_ASSERT_EQUAL(d.delivery, 0x0102);
    CU_ASSERT_EQUAL(d.dst, m.dst);
    CU_ASSERT_EQUAL(d.src, m.src);
    CU_ASSERT_EQUAL(d.message_id, m.message_id);
    CU_ASSERT_EQUAL(d.payload_len, 5);
    CU_ASSERT(d.payload == want + CB_QUEUE_HEADER_BYTES);
    CU_ASSERT_STRING_EQUAL(cb_queue_kind_name(CB_QUEUE_PUBLISH), "publish");
    CU_ASSERT_STRING_EQUAL(cb_queue_kind_name(CB_QUEUE_NACK), "nack");
    CU_ASSERT_STRING_EQUAL(cb_queue_kind_name(0), "unknown");
}

static void test_queue_round_trip_kinds(void)
{
    cb_queue_msg ms[] = {
        {.kind = CB_QUEUE_SUBSCRIBE, .src = 7},
        {.kind = CB_QUEUE_PUBLISH,
         .dst = 1,
         .src = 2,
         .message_id = 9,
         .payload_len = 5,
         .payload = test_payload},
        sample_deliver(),
        {.kind = CB_QUEUE_ACK, .dst = 1, .src = 2, .message_id = UINT64_MAX},
        {.kind = CB_QUEUE_NACK,
         .reason = CB_QUEUE_REASON_FULL,
         .dst = 2,
         .src = 1,
         .message_id = 9},
    };
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        uint8_t out[64];
        long n = cb_queue_encode(&ms[i], out, sizeof out);
        CU_ASSERT_EQUAL(n, (long)cb_queue_encoded_len(&ms[i]));
        cb_queue_msg d;
        CU_ASSERT_EQUAL(cb_queue_decode(out, (size_t)n, 0, &d), n);
        CU_ASSERT_EQUAL(d.kind, ms[i].kind);
        CU_ASSERT_EQUAL(d.reason, ms[i].reason);
        CU_ASSERT_EQUAL(d.message_id, ms[i].message_id);
        CU_ASSERT_EQUAL(d.payload_len, ms[i].payload_len);
        CU_ASSERT((d.payload == NULL) == (ms[i].payload_len == 0));
    }
}

typedef struct decode_case {
    const char *name;
    size_t off;    /* byte to set */
    uint8_t value; /* its value */
    long want;
} decode_case;

/* Each case corrupts one byte of an encoded PUBLISH (or, from 100, a NACK). */
static void test_queue_decode_errors(void)
{
    static const decode_case cases[] = {
        {"magic0", 0, 0xCC, CB_ERR_BAD_MAGIC},
        {"magic1", 1, 0x52, CB_ERR_BAD_MAGIC},
        {"version", 2, 2, CB_ERR_BAD_VERSION},
        {"kind0", 3, 0, CB_ERR_BAD_OPCODE},
        {"kind6", 3, 6, CB_ERR_BAD_OPCODE},
        {"flags", 4, 1, CB_ERR_BAD_FLAGS},
        {"reason_on_publish", 5, 1, CB_ERR_MALFORMED},
        {"delivery_on_publish", 7, 1, CB_ERR_MALFORMED},
        {"payload_too_large", 24, 0x7F, CB_ERR_TOO_LARGE},
        {"nack_reason_zero", 105, 0, CB_ERR_MALFORMED},
        {"nack_reason_4", 105, 4, CB_ERR_MALFORMED},
        {"nack_payload", 127, 1, CB_ERR_MALFORMED},
        {"nack_id_zero", 123, 0, CB_ERR_MALFORMED},
    };
    cb_queue_msg pub = {
        .kind = CB_QUEUE_PUBLISH, .message_id = 1, .payload_len = 5, .payload = test_payload};
    cb_queue_msg nack = {.kind = CB_QUEUE_NACK, .reason = 1, .message_id = 1};
    cb_test_guard g;
    cb_test_guard_init(&g);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[64];
        int is_nack = cases[i].off >= 100;
        long n = cb_queue_encode(is_nack ? &nack : &pub, buf, sizeof buf);
        CU_ASSERT_FATAL(n > 0);
        buf[cases[i].off % 100] = cases[i].value;
        const uint8_t *at = cb_test_guard_place(&g, buf, (size_t)n);
        cb_queue_msg d;
        long rc = cb_queue_decode(at, (size_t)n, 1024, &d);
        if (rc != cases[i].want) {
            printf("case %s: got %ld want %ld\n", cases[i].name, rc, cases[i].want);
        }
        CU_ASSERT_EQUAL(rc, cases[i].want);
    }
    /* Message id 0 on a PUBLISH, and a SUBSCRIBE with one. */
    uint8_t buf[64];
    long n = cb_queue_encode(&pub, buf, sizeof buf);
    buf[23] = 0;
    cb_queue_msg d;
    CU_ASSERT_EQUAL(cb_queue_decode(buf, (size_t)n, 0, &d), CB_ERR_MALFORMED);
    cb_queue_msg sub = {.kind = CB_QUEUE_SUBSCRIBE};
    n = cb_queue_encode(&sub, buf, sizeof buf);
    buf[23] = 1;
    CU_ASSERT_EQUAL(cb_queue_decode(buf, (size_t)n, 0, &d), CB_ERR_MALFORMED);
    /* An empty PUBLISH; a DELIVER with delivery 0. */
    n = cb_queue_encode(&pub, buf, sizeof buf);
    buf[27] = 0;
    CU_ASSERT_EQUAL(cb_queue_decode(buf, (size_t)n, 0, &d), CB_ERR_MALFORMED);
    cb_queue_msg del = sample_deliver();
    n = cb_queue_encode(&del, buf, sizeof buf);
    buf[6] = buf[7] = 0;
    CU_ASSERT_EQUAL(cb_queue_decode(buf, (size_t)n, 0, &d), CB_ERR_MALFORMED);
    /* Early rejection: a bad magic is known after one byte. */
    const uint8_t *one = cb_test_guard_place(&g, (const uint8_t[]){0x00}, 1);
    CU_ASSERT_EQUAL(cb_queue_decode(one, 1, 0, &d), CB_ERR_BAD_MAGIC);
    CU_ASSERT_EQUAL(cb_queue_decode(NULL, 0, 0, &d), CB_ERR_NEED_MORE);
    CU_ASSERT_EQUAL(cb_queue_decode(NULL, 3, 0, &d), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(cb_queue_decode(buf, 3, 0, NULL), CB_ERR_INVALID);
    cb_test_guard_free(&g);
}

static void test_queue_prefixes_need_more(void)
{
    cb_queue_msg m = sample_deliver();
    uint8_t buf[64];
    long n = cb_queue_encode(&m, buf, sizeof buf);
    cb_test_guard g;
    cb_test_guard_init(&g);
    for (long cut = 0; cut < n; cut++) {
        const uint8_t *at = cb_test_guard_place(&g, buf, (size_t)cut);
        cb_queue_msg d;
        long rc = cb_queue_decode(at, (size_t)cut, 0, &d);
        if (rc != CB_ERR_NEED_MORE) {
            printf("prefix %ld: %ld\n", cut, rc);
        }
        CU_ASSERT_EQUAL(rc, CB_ERR_NEED_MORE);
    }
    cb_test_guard_free(&g);
}

static void test_queue_encode_errors(void)
{
    uint8_t out[64];
    cb_queue_msg m = sample_deliver();
    CU_ASSERT_EQUAL(cb_queue_encode(NULL, out, sizeof out), CB_ERR_INVALID);
    m.kind = 9;
    CU_ASSERT_EQUAL(cb_queue_encode(&m, out, sizeof out), CB_ERR_INVALID);
    m = sample_deliver();
    m.delivery = 0;
    CU_ASSERT_EQUAL(cb_queue_encode(&m, out, sizeof out), CB_ERR_INVALID);
    m = sample_deliver();
    m.reason = 1;
    CU_ASSERT_EQUAL(cb_queue_encode(&m, out, sizeof out), CB_ERR_INVALID);
    m = sample_deliver();
    m.message_id = 0;
    CU_ASSERT_EQUAL(cb_queue_encode(&m, out, sizeof out), CB_ERR_INVALID);
    m = sample_deliver();
    m.payload = NULL;
    CU_ASSERT_EQUAL(cb_queue_encode(&m, out, sizeof out), CB_ERR_INVALID);
    m = sample_deliver();
    m.payload_len = CB_QUEUE_PAYLOAD_BYTES_LIMIT + 1;
    CU_ASSERT_EQUAL(cb_queue_encode_header(&m, out, sizeof out), CB_ERR_TOO_LARGE);
    m = sample_deliver();
    CU_ASSERT_EQUAL(cb_queue_encode(&m, out, CB_QUEUE_HEADER_BYTES + 4), CB_ERR_FULL);
    CU_ASSERT_EQUAL(cb_queue_encode(&m, NULL, 0), CB_ERR_FULL);
    CU_ASSERT_EQUAL(cb_queue_encode_header(&m, out, CB_QUEUE_HEADER_BYTES),
                    (long)CB_QUEUE_HEADER_BYTES);
    cb_queue_msg ack = {
        .kind = CB_QUEUE_ACK, .message_id = 1, .payload_len = 1, .payload = test_payload};
    CU_ASSERT_EQUAL(cb_queue_encode(&ack, out, sizeof out), CB_ERR_INVALID);
}

/* A stream of random envelopes, fed to the reader in seeded chunks (and 1-byte chunks). */
static void reader_feed(const uint8_t *stream, size_t len, const size_t *starts, size_t count,
                        cb_rng *rng, int one_byte)
{
    cb_queue_reader r;
    memset(&r, 0, sizeof r);
    size_t off = 0, got = 0;
    while (off < len) {
        size_t chunk = one_byte ? 1 : 1 + (size_t)cb_rng_below(rng, 300);
        if (chunk > len - off) {
            chunk = len - off;
        }
        const uint8_t *in = stream + off;
        size_t in_len = chunk;
        for (;;) {
            cb_queue_msg m;
            int rc = cb_queue_reader_next(&r, &in, &in_len, 0, NULL, &m);
            CU_ASSERT_FATAL(rc >= 0);
            if (rc == 0) {
                break;
            }
            CU_ASSERT_FATAL(got < count);
            cb_queue_msg want;
            CU_ASSERT(cb_queue_decode(stream + starts[got], len - starts[got], 0, &want) > 0);
            CU_ASSERT_EQUAL(m.message_id, want.message_id);
            CU_ASSERT_EQUAL(m.payload_len, want.payload_len);
            CU_ASSERT(m.payload_len == 0 || memcmp(m.payload, want.payload, m.payload_len) == 0);
            got++;
        }
        CU_ASSERT_EQUAL(in_len, 0);
        off += chunk;
    }
    CU_ASSERT_EQUAL(got, count);
    cb_queue_reader_free(&r, NULL);
}

static void test_queue_reader_splits(void)
{
    enum { N = 200 };
    static uint8_t stream[N * (CB_QUEUE_HEADER_BYTES + 600)];
    static uint8_t payload[600];
    size_t starts[N];
    cb_rng rng;
    cb_rng_init(&rng, cb_test_seed());
    for (size_t i = 0; i < sizeof payload; i++) {
        payload[i] = (uint8_t)cb_rng_next(&rng);
    }
    size_t len = 0;
    for (size_t i = 0; i < N; i++) {
        cb_queue_msg m = {.kind =
                              (uint8_t)(cb_rng_below(&rng, 2) ? CB_QUEUE_PUBLISH : CB_QUEUE_ACK),
                          .dst = (uint32_t)i,
                          .message_id = i + 1};
        if (m.kind == CB_QUEUE_PUBLISH) {
            m.payload_len = (uint32_t)(1 + cb_rng_below(&rng, sizeof payload));
            m.payload = payload;
        }
        starts[i] = len;
        long n = cb_queue_encode(&m, stream + len, sizeof stream - len);
        CU_ASSERT_FATAL(n > 0);
        len += (size_t)n;
    }
    reader_feed(stream, len, starts, N, &rng, 0);
    reader_feed(stream, len, starts, N, &rng, 1);
}

static void test_queue_reader_errors_and_nomem(void)
{
    uint8_t buf[64];
    cb_queue_msg m = sample_deliver();
    long n = cb_queue_encode(&m, buf, sizeof buf);
    /* Too large for the reader's limit: refused after the header, nothing buffered beyond. */
    cb_queue_reader r;
    memset(&r, 0, sizeof r);
    const uint8_t *in = buf;
    size_t in_len = 10;
    cb_queue_msg d;
    CU_ASSERT_EQUAL(cb_queue_reader_next(&r, &in, &in_len, 4, NULL, &d), 0);
    in_len = (size_t)n - 10;
    CU_ASSERT_EQUAL(cb_queue_reader_next(&r, &in, &in_len, 4, NULL, &d), CB_ERR_TOO_LARGE);
    CU_ASSERT_EQUAL(r.len, 0);
    /* Garbage. */
    in = (const uint8_t *)"GET x\r\n";
    in_len = 7;
    CU_ASSERT_EQUAL(cb_queue_reader_next(&r, &in, &in_len, 0, NULL, &d), CB_ERR_BAD_MAGIC);
    cb_queue_reader_free(&r, NULL);
    /* The first buffer allocation fails: NOMEM, input left, then it works. */
    cb_alloc_failing fa;
    cb_alloc_failing_init(&fa, 0, 1);
    memset(&r, 0, sizeof r);
    in = buf;
    in_len = 10;
    CU_ASSERT_EQUAL(cb_queue_reader_next(&r, &in, &in_len, 0, &fa.alloc, &d), CB_ERR_NOMEM);
    CU_ASSERT_EQUAL(in_len, 10);
    CU_ASSERT_EQUAL(cb_queue_reader_next(&r, &in, &in_len, 0, &fa.alloc, &d), 0);
    in_len = (size_t)n - 10;
    CU_ASSERT_EQUAL(cb_queue_reader_next(&r, &in, &in_len, 0, &fa.alloc, &d), 1);
    CU_ASSERT_EQUAL(d.message_id, m.message_id);
    cb_queue_reader_free(&r, &fa.alloc);
    CU_ASSERT_EQUAL(fa.live, 0);
}

static const cb_test_case tests[] = {
    {"golden_bytes", test_queue_golden_bytes},
    {"round_trip_kinds", test_queue_round_trip_kinds},
    {"decode_errors", test_queue_decode_errors},
    {"prefixes_need_more", test_queue_prefixes_need_more},
    {"encode_errors", test_queue_encode_errors},
    {"reader_splits", test_queue_reader_splits},
    {"reader_errors_and_nomem", test_queue_reader_errors_and_nomem},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_queue", tests)
