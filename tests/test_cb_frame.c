/*
 * test_cb_frame.c: the binary frame codec (protocols/cb_frame.h, docs/protocol.md).
 *
 * Golden bytes pin the layout; tables cover every decoder and encoder error; every strict
 * prefix of a valid frame must give NEED_MORE; inputs sit against a PROT_NONE guard page so
 * an over-read crashes; a seeded stream of 10^4 random frames is fed in random and 1-byte
 * chunks through a compacting receive buffer; corrupted headers must decode to a valid frame
 * or give a documented error.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */

#include "cb_err.h"
#include "cb_frame.h"
#include "cb_scanbody.h"
#include "cb_rng.h"
#include "cb_test.h"
#include "cb_test_guard.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Largest frame the tests build: a full key and the default maximum value. */
#define TEST_FRAME_BYTES_MAX (CB_FRAME_HEADER_BYTES + CB_KEY_BYTES_MAX + CB_VALUE_BYTES_MAX_DEFAULT)

/* ---- helpers ---------------------------------------------------------------------------- */

/* A valid frame whose fields are all distinct, so a swapped field shows. */
static cb_frame frame_sample(void)
{
    cb_frame f = {
        .opcode = CB_OP_SET,
        .flags = CB_FLAG_QUIET,
        .key_len = 3,
        .request_id = 0x01020304u,
        .value_len = 5,
        .ttl_ms = 0x05060708u,
        .opaque = 0x090A0B0Cu,
        .cas = 0x1112131415161718ull,
        .arg = 0x2122232425262728ull,
        .key = (const uint8_t *)"foo",
        .value = (const uint8_t *)"hello",
    };
    return f;
}

static int frame_equal(const cb_frame *a, const cb_frame *b)
{
    if (a->opcode != b->opcode || a->flags != b->flags || a->key_len != b->key_len ||
        a->status != b->status || a->request_id != b->request_id || a->value_len != b->value_len ||
        a->ttl_ms != b->ttl_ms || a->opaque != b->opaque || a->cas != b->cas || a->arg != b->arg) {
        return 0;
    }
    if (a->key_len > 0 && memcmp(a->key, b->key, a->key_len) != 0) {
        return 0;
    }
    return a->value_len == 0 || memcmp(a->value, b->value, a->value_len) == 0;
}

static int err_documented(long rc)
{
    return rc == CB_ERR_NEED_MORE || rc == CB_ERR_BAD_MAGIC || rc == CB_ERR_BAD_VERSION ||
           rc == CB_ERR_BAD_OPCODE || rc == CB_ERR_BAD_FLAGS || rc == CB_ERR_KEY_TOO_LONG ||
           rc == CB_ERR_MALFORMED || rc == CB_ERR_VALUE_TOO_LARGE;
}

static const uint8_t test_op_codes[] = {
#define TEST_OP_CODE(name, code, text) code,
    CB_OP_LIST(TEST_OP_CODE)
#undef TEST_OP_CODE
};

static const uint16_t test_status_codes[] = {
#define TEST_STATUS_CODE(name, code, text) code,
    CB_STATUS_LIST(TEST_STATUS_CODE)
#undef TEST_STATUS_CODE
};

/* A random valid frame; key and value point into `pool` (pool_len >= 250 + value max). */
static cb_frame frame_random(cb_rng *r, const uint8_t *pool, size_t pool_len, uint32_t value_max)
{
    cb_frame f = {0};
    f.opcode = test_op_codes[cb_rng_below(r, sizeof test_op_codes)];
    f.flags = (uint8_t)cb_rng_below(r, CB_FLAG_MASK + 1u);
    if (f.flags & CB_FLAG_RESPONSE) {
        f.status = test_status_codes[cb_rng_below(r, sizeof test_status_codes / 2)];
    }
    f.key_len = (uint8_t)cb_rng_below(r, CB_KEY_BYTES_MAX + 1u);
    /* Mostly small values, some empty, now and then a large one. */
    uint64_t kind = cb_rng_below(r, 100);
    uint64_t small = value_max < 600 ? value_max : 600;
    uint64_t cap = kind < 10 ? 0 : kind < 99 ? small : value_max;
    f.value_len = (uint32_t)cb_rng_below(r, cap + 1);
    f.request_id = (uint32_t)cb_rng_next(r);
    f.ttl_ms = (uint32_t)cb_rng_next(r);
    f.opaque = (uint32_t)cb_rng_next(r);
    f.cas = cb_rng_next(r);
    f.arg = cb_rng_next(r);
    CU_ASSERT_FATAL(pool_len >= CB_KEY_BYTES_MAX + (size_t)value_max);
    f.key = f.key_len ? pool + cb_rng_below(r, pool_len - f.key_len + 1) : NULL;
    f.value = f.value_len ? pool + cb_rng_below(r, pool_len - f.value_len + 1) : NULL;
    return f;
}

static void fill_random(cb_rng *r, uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)cb_rng_next(r);
    }
}

/* ---- golden bytes and names ------------------------------------------------------------- */

/* The sample frame, byte for byte (docs/protocol.md §2). */
static const uint8_t sample_bytes[] = {
    0xCB, 0xED, 0x01, 0x02, 0x04, 0x03, 0x00, 0x00, /* magic version opcode flags klen status */
    0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x05, /* request_id value_len */
    0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, /* ttl_ms opaque */
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, /* cas */
    0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, /* arg */
    'f',  'o',  'o',  'h',  'e',  'l',  'l',  'o',
};

static void test_frame_golden_bytes(void)
{
    cb_frame f = frame_sample();
    uint8_t out[64];
    CU_ASSERT_EQUAL(cb_frame_encoded_len(&f), sizeof sample_bytes);
    CU_ASSERT_EQUAL(cb_frame_encode(&f, out, sizeof out), (long)sizeof sample_bytes);
    CU_ASSERT(memcmp(out, sample_bytes, sizeof sample_bytes) == 0);

    cb_frame d;
    CU_ASSERT_EQUAL(cb_frame_decode(sample_bytes, sizeof sample_bytes, NULL, &d),
                    (long)sizeof sample_bytes);
    CU_ASSERT_EQUAL(d.version, CB_FRAME_VERSION);
    CU_ASSERT(frame_equal(&f, &d));
    CU_ASSERT_PTR_EQUAL(d.key, sample_bytes + 40);
    CU_ASSERT_PTR_EQUAL(d.value, sample_bytes + 43);

    /* The header alone, and the header encoder, agree with the golden bytes. */
    CU_ASSERT_EQUAL(cb_frame_decode_header(sample_bytes, 40, NULL, &d), 40);
    CU_ASSERT_PTR_NULL(d.key);
    CU_ASSERT_PTR_NULL(d.value);
    CU_ASSERT_EQUAL(d.value_len, 5);
    f.key = NULL; /* encode_header does not read key or value */
    f.value = NULL;
    memset(out, 0, sizeof out);
    CU_ASSERT_EQUAL(cb_frame_encode_header(&f, out, 40), 40);
    CU_ASSERT(memcmp(out, sample_bytes, 40) == 0);
}

static void test_frame_names(void)
{
    CU_ASSERT_STRING_EQUAL(cb_op_name(CB_OP_GET), "get");
    CU_ASSERT_STRING_EQUAL(cb_op_name(CB_OP_DECR), "decr");
    CU_ASSERT_STRING_EQUAL(cb_op_name(CB_OP_NOOP), "noop");
    CU_ASSERT_STRING_EQUAL(cb_op_name(0), "unknown");
    CU_ASSERT_STRING_EQUAL(cb_op_name(0x10), "hello");
    CU_ASSERT_STRING_EQUAL(cb_op_name(0x11), "unknown");
    CU_ASSERT_STRING_EQUAL(cb_op_name(-1), "unknown");
    int valid = 0;
    for (int op = -1; op <= 256; op++) {
        valid += cb_op_valid(op);
        CU_ASSERT_EQUAL(cb_op_valid(op), op >= CB_OP_GET && op <= CB_OP_HELLO);
    }
    CU_ASSERT_EQUAL(valid, (int)sizeof test_op_codes);
    CU_ASSERT_EQUAL(valid, 16);

    CU_ASSERT_STRING_EQUAL(cb_status_name(CB_STATUS_OK), "ok");
    CU_ASSERT_STRING_EQUAL(cb_status_name(CB_STATUS_NOT_FOUND), "not found");
    CU_ASSERT_STRING_EQUAL(cb_status_name(CB_STATUS_UNKNOWN_COMMAND), "unknown command");
    CU_ASSERT_STRING_EQUAL(cb_status_name(9), "unknown status");
    CU_ASSERT_STRING_EQUAL(cb_status_name(-1), "unknown status");
    CU_ASSERT_EQUAL(cb_frame_limits_default().value_bytes_max, CB_VALUE_BYTES_MAX_DEFAULT);
}

/* ---- decoder error table ---------------------------------------------------------------- */

typedef struct decode_case {
    const char *name;
    uint8_t bytes[48];
    size_t len;
    long expect;
} decode_case;

/* A valid GET request header for "k": change one field to make a case. */
#define HDR_GET                                                                                    \
    0xCB, 0xED, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   \
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'k'

static const decode_case decode_cases[] = {
    {"empty input", {0}, 0, CB_ERR_NEED_MORE},
    {"valid GET", {HDR_GET}, 41, 41},
    {"valid GET, key missing", {HDR_GET}, 40, CB_ERR_NEED_MORE},
    {"bad magic, 1 byte", {0x00}, 1, CB_ERR_BAD_MAGIC},
    {"bad magic, 1 byte 0xED", {0xED}, 1, CB_ERR_BAD_MAGIC},
    {"bad 2nd magic, 2 bytes", {0xCB, 0xEE}, 2, CB_ERR_BAD_MAGIC},
    {"good magic, 2 bytes", {0xCB, 0xED}, 2, CB_ERR_NEED_MORE},
    {"version 0, 3 bytes", {0xCB, 0xED, 0x00}, 3, CB_ERR_BAD_VERSION},
    {"version 2, 40 bytes", {0xCB, 0xED, 0x02, 0x01}, 40, CB_ERR_BAD_VERSION},
    {"opcode 0, 4 bytes", {0xCB, 0xED, 0x01, 0x00}, 4, CB_ERR_BAD_OPCODE},
    {"opcode 0x11, 40 bytes", {0xCB, 0xED, 0x01, 0x11}, 40, CB_ERR_BAD_OPCODE},
    {"opcode 0xFF, 4 bytes", {0xCB, 0xED, 0x01, 0xFF}, 4, CB_ERR_BAD_OPCODE},
    {"flag 0x10, 5 bytes", {0xCB, 0xED, 0x01, 0x01, 0x10}, 5, CB_ERR_BAD_FLAGS},
    {"flag 0x80, 40 bytes", {0xCB, 0xED, 0x01, 0x01, 0x80}, 40, CB_ERR_BAD_FLAGS},
    {"all flags in mask, 5 bytes", {0xCB, 0xED, 0x01, 0x01, 0x0F}, 5, CB_ERR_NEED_MORE},
    {"key_len 251, 6 bytes", {0xCB, 0xED, 0x01, 0x01, 0x00, 251}, 6, CB_ERR_KEY_TOO_LONG},
    {"key_len 255, 40 bytes", {0xCB, 0xED, 0x01, 0x01, 0x00, 255}, 40, CB_ERR_KEY_TOO_LONG},
    {"key_len 250, 6 bytes", {0xCB, 0xED, 0x01, 0x01, 0x00, 250}, 6, CB_ERR_NEED_MORE},
    {"request status 1, 8 bytes", {0xCB, 0xED, 0x01, 0x01, 0x00, 0, 0, 1}, 8, CB_ERR_MALFORMED},
    {"request status 0x100, 7 bytes", {0xCB, 0xED, 0x01, 0x01, 0x00, 0, 1}, 7, CB_ERR_NEED_MORE},
    {"request status 0x100, 8 bytes", {0xCB, 0xED, 0x01, 0x01, 0x00, 0, 1}, 8, CB_ERR_MALFORMED},
    {"reply status 8, 40 bytes", {0xCB, 0xED, 0x01, 0x01, 0x08, 0, 0, 8}, 40, 40},
    {"reply status 9, 8 bytes", {0xCB, 0xED, 0x01, 0x01, 0x08, 0, 0, 9}, 8, CB_ERR_MALFORMED},
    {"reply status 0xFFFF, 40 bytes",
     {0xCB, 0xED, 0x01, 0x01, 0x08, 0, 0xFF, 0xFF},
     40,
     CB_ERR_MALFORMED},
    {"value_len 1MiB+1, 16 bytes",
     {0xCB, 0xED, 0x01, 0x02, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10, 0x00, 0x01},
     16,
     CB_ERR_VALUE_TOO_LARGE},
    {"value_len 1MiB+1, 15 bytes",
     {0xCB, 0xED, 0x01, 0x02, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10, 0x00, 0x01},
     15,
     CB_ERR_NEED_MORE},
    {"value_len 2^32-1, 40 bytes",
     {0xCB, 0xED, 0x01, 0x02, 0x00, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF},
     40,
     CB_ERR_VALUE_TOO_LARGE},
    {"value_len 1MiB, 40 bytes",
     {0xCB, 0xED, 0x01, 0x02, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10, 0x00, 0x00},
     40,
     CB_ERR_NEED_MORE},
    /* Field order: the first bad field wins. */
    {"bad version and opcode", {0xCB, 0xED, 0x09, 0x00}, 4, CB_ERR_BAD_VERSION},
    {"bad opcode and flags", {0xCB, 0xED, 0x01, 0x00, 0xF0}, 5, CB_ERR_BAD_OPCODE},
    {"bad flags and key_len", {0xCB, 0xED, 0x01, 0x01, 0xF0, 0xFF}, 6, CB_ERR_BAD_FLAGS},
    {"bad key_len and status", {0xCB, 0xED, 0x01, 0x01, 0x00, 0xFF, 1, 1}, 8, CB_ERR_KEY_TOO_LONG},
    {"bad status and value_len",
     {0xCB, 0xED, 0x01, 0x01, 0x00, 0, 0, 1, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF},
     16,
     CB_ERR_MALFORMED},
};

static void test_frame_decode_errors(void)
{
    cb_test_guard g;
    cb_test_guard_init(&g);
    for (size_t i = 0; i < sizeof decode_cases / sizeof decode_cases[0]; i++) {
        const decode_case *c = &decode_cases[i];
        const uint8_t *buf = cb_test_guard_place(&g, c->bytes, c->len);
        cb_frame f;
        long rc = cb_frame_decode(buf, c->len, NULL, &f);
        if (rc != c->expect) {
            printf("\n  case \"%s\": got %ld (%s), want %ld (%s)\n", c->name, rc,
                   cb_err_name((int)rc), c->expect, cb_err_name((int)c->expect));
        }
        CU_ASSERT_EQUAL(rc, c->expect);
        /* The header decoder agrees whenever the header alone decides. */
        long hrc = cb_frame_decode_header(buf, c->len, NULL, &f);
        long hexpect = c->expect > 0 ? 40 : c->expect;
        if (c->len >= 40 && c->expect == CB_ERR_NEED_MORE) {
            hexpect = 40;
        }
        if (hrc != hexpect) {
            printf("\n  case \"%s\" (header): got %ld, want %ld\n", c->name, hrc, hexpect);
        }
        CU_ASSERT_EQUAL(hrc, hexpect);
    }
    cb_test_guard_free(&g);
}

static void test_frame_decode_bad_arguments(void)
{
    cb_frame f;
    CU_ASSERT_EQUAL(cb_frame_decode(sample_bytes, sizeof sample_bytes, NULL, NULL), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(cb_frame_decode(NULL, 1, NULL, &f), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(cb_frame_decode(NULL, 0, NULL, &f), CB_ERR_NEED_MORE);
    CU_ASSERT_EQUAL(cb_frame_decode_header(NULL, 0, NULL, &f), CB_ERR_NEED_MORE);
}

/* key_len 251..255 is rejected whatever follows, with 6 bytes or a whole header. */
static void test_frame_key_len_over_limit(void)
{
    for (unsigned key_len = 251; key_len <= 255; key_len++) {
        uint8_t buf[40] = {0xCB, 0xED, 0x01, CB_OP_GET, 0x00, (uint8_t)key_len};
        cb_frame f;
        CU_ASSERT_EQUAL(cb_frame_decode(buf, 6, NULL, &f), CB_ERR_KEY_TOO_LONG);
        CU_ASSERT_EQUAL(cb_frame_decode(buf, sizeof buf, NULL, &f), CB_ERR_KEY_TOO_LONG);
    }
}

/* value_len over the configured limit is rejected with only the 40-byte header present. */
static void test_frame_value_len_over_limit(void)
{
    cb_test_guard g;
    cb_test_guard_init(&g);
    cb_frame_limits small = {.value_bytes_max = 100};
    cb_frame f = frame_sample();
    f.key = NULL;
    f.value = NULL;
    uint8_t hdr[40];
    cb_frame d;

    f.value_len = 101;
    CU_ASSERT_EQUAL(cb_frame_encode_header(&f, hdr, sizeof hdr), 40);
    const uint8_t *buf = cb_test_guard_place(&g, hdr, sizeof hdr);
    CU_ASSERT_EQUAL(cb_frame_decode(buf, 40, &small, &d), CB_ERR_VALUE_TOO_LARGE);
    CU_ASSERT_EQUAL(cb_frame_decode(buf, 40, NULL, &d), CB_ERR_NEED_MORE);

    f.value_len = 100;
    CU_ASSERT_EQUAL(cb_frame_encode_header(&f, hdr, sizeof hdr), 40);
    buf = cb_test_guard_place(&g, hdr, sizeof hdr);
    CU_ASSERT_EQUAL(cb_frame_decode(buf, 40, &small, &d), CB_ERR_NEED_MORE);

    /* Above the default, within the hard limit: the default rejects, a raised limit waits. */
    cb_frame_limits big = {.value_bytes_max = CB_VALUE_BYTES_LIMIT};
    f.value_len = CB_VALUE_BYTES_MAX_DEFAULT + 1;
    CU_ASSERT_EQUAL(cb_frame_encode_header(&f, hdr, sizeof hdr), 40);
    buf = cb_test_guard_place(&g, hdr, sizeof hdr);
    CU_ASSERT_EQUAL(cb_frame_decode(buf, 40, NULL, &d), CB_ERR_VALUE_TOO_LARGE);
    CU_ASSERT_EQUAL(cb_frame_decode(buf, 40, &big, &d), CB_ERR_NEED_MORE);
    CU_ASSERT_EQUAL(cb_frame_decode_header(buf, 40, &big, &d), 40);

    /* A configured maximum above the hard limit is clamped to it. */
    cb_frame_limits silly = {.value_bytes_max = UINT32_MAX};
    uint8_t raw[40] = {0xCB, 0xED, 0x01, CB_OP_SET, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0, 0, 1};
    buf = cb_test_guard_place(&g, raw, sizeof raw); /* value_len = 128 MiB + 1 */
    CU_ASSERT_EQUAL(cb_frame_decode(buf, 40, &silly, &d), CB_ERR_VALUE_TOO_LARGE);
    raw[15] = 0; /* exactly 128 MiB */
    buf = cb_test_guard_place(&g, raw, sizeof raw);
    CU_ASSERT_EQUAL(cb_frame_decode(buf, 40, &silly, &d), CB_ERR_NEED_MORE);
    cb_test_guard_free(&g);
}

/* ---- prefixes and guard page ------------------------------------------------------------ */

/* Every strict prefix gives NEED_MORE, the whole frame decodes, all against the guard page. */
static void check_prefixes(cb_test_guard *g, const cb_frame *f, const char *name)
{
    uint8_t enc[CB_FRAME_HEADER_BYTES + CB_KEY_BYTES_MAX + 64];
    long len = cb_frame_encode(f, enc, sizeof enc);
    CU_ASSERT_FATAL(len >= 40);
    for (size_t n = 0; n < (size_t)len; n++) {
        const uint8_t *buf = cb_test_guard_place(g, enc, n);
        cb_frame d;
        long rc = cb_frame_decode(buf, n, NULL, &d);
        if (rc != CB_ERR_NEED_MORE) {
            printf("\n  %s: prefix of %zu/%ld bytes gave %ld\n", name, n, len, rc);
        }
        CU_ASSERT_EQUAL(rc, CB_ERR_NEED_MORE);
    }
    const uint8_t *buf = cb_test_guard_place(g, enc, (size_t)len);
    cb_frame d;
    CU_ASSERT_EQUAL(cb_frame_decode(buf, (size_t)len, NULL, &d), len);
    CU_ASSERT(frame_equal(f, &d));
}

static void test_frame_prefixes_need_more(void)
{
    cb_test_guard g;
    cb_test_guard_init(&g);
    static const uint8_t key250[CB_KEY_BYTES_MAX] = {'k'};
    cb_frame f = frame_sample();
    check_prefixes(&g, &f, "key and value");

    cb_frame bare = {.opcode = CB_OP_NOOP};
    check_prefixes(&g, &bare, "no key, no value");

    cb_frame key_only = {.opcode = CB_OP_GET, .key_len = 3, .key = (const uint8_t *)"abc"};
    check_prefixes(&g, &key_only, "key only");

    cb_frame value_only = {.opcode = CB_OP_STATS,
                           .flags = CB_FLAG_RESPONSE,
                           .value_len = 11,
                           .value = (const uint8_t *)"pid 1\nup 2\n"};
    check_prefixes(&g, &value_only, "value only");

    cb_frame reply = {.opcode = CB_OP_GET,
                      .flags = CB_FLAG_RESPONSE,
                      .status = CB_STATUS_NOT_FOUND,
                      .key_len = CB_KEY_BYTES_MAX,
                      .key = key250};
    check_prefixes(&g, &reply, "250-byte key");
    cb_test_guard_free(&g);
}

/* ---- encoder errors --------------------------------------------------------------------- */

typedef struct encode_case {
    const char *name;
    cb_frame frame;
    size_t out_cap;
    long expect;
} encode_case;

#define K (const uint8_t *)"key"
#define V (const uint8_t *)"value"

static const encode_case encode_cases[] = {
    {"ok", {.opcode = CB_OP_SET, .key_len = 3, .value_len = 5, .key = K, .value = V}, 48, 48},
    {"full by one",
     {.opcode = CB_OP_SET, .key_len = 3, .value_len = 5, .key = K, .value = V},
     47,
     CB_ERR_FULL},
    {"full, cap 0", {.opcode = CB_OP_NOOP}, 0, CB_ERR_FULL},
    {"header fits, cap 40", {.opcode = CB_OP_NOOP}, 40, 40},
    {"opcode 0", {.opcode = 0}, 64, CB_ERR_BAD_OPCODE},
    {"opcode 0x11", {.opcode = 0x11}, 64, CB_ERR_BAD_OPCODE},
    {"opcode 0xFF", {.opcode = 0xFF}, 64, CB_ERR_BAD_OPCODE},
    {"flags 0x10", {.opcode = CB_OP_GET, .flags = 0x10}, 64, CB_ERR_BAD_FLAGS},
    {"flags 0xFF", {.opcode = CB_OP_GET, .flags = 0xFF}, 64, CB_ERR_BAD_FLAGS},
    {"key_len 251", {.opcode = CB_OP_GET, .key_len = 251, .key = K}, 1024, CB_ERR_KEY_TOO_LONG},
    {"key_len 255", {.opcode = CB_OP_GET, .key_len = 255, .key = K}, 1024, CB_ERR_KEY_TOO_LONG},
    {"value over hard limit",
     {.opcode = CB_OP_SET, .value_len = CB_VALUE_BYTES_LIMIT + 1, .value = V},
     64,
     CB_ERR_VALUE_TOO_LARGE},
    {"NULL key", {.opcode = CB_OP_GET, .key_len = 3}, 64, CB_ERR_INVALID},
    {"NULL value", {.opcode = CB_OP_SET, .value_len = 1}, 64, CB_ERR_INVALID},
    {"request with status", {.opcode = CB_OP_GET, .status = 1}, 64, CB_ERR_INVALID},
    {"reply with unknown status",
     {.opcode = CB_OP_GET, .flags = CB_FLAG_RESPONSE, .status = 9},
     64,
     CB_ERR_INVALID},
    {"reply with status", {.opcode = CB_OP_GET, .flags = CB_FLAG_RESPONSE, .status = 1}, 64, 40},
    /* Argument errors come before FULL. */
    {"bad opcode, cap 0", {.opcode = 0}, 0, CB_ERR_BAD_OPCODE},
    {"NULL key, cap 0", {.opcode = CB_OP_GET, .key_len = 3}, 0, CB_ERR_INVALID},
};

static void test_frame_encode_errors(void)
{
    uint8_t out[1024];
    for (size_t i = 0; i < sizeof encode_cases / sizeof encode_cases[0]; i++) {
        const encode_case *c = &encode_cases[i];
        CU_ASSERT_FATAL(c->out_cap <= sizeof out);
        long rc = cb_frame_encode(&c->frame, out, c->out_cap);
        if (rc != c->expect) {
            printf("\n  case \"%s\": got %ld (%s), want %ld (%s)\n", c->name, rc,
                   cb_err_name((int)rc), c->expect, cb_err_name((int)c->expect));
        }
        CU_ASSERT_EQUAL(rc, c->expect);
    }
    cb_frame f = frame_sample();
    CU_ASSERT_EQUAL(cb_frame_encode(NULL, out, sizeof out), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(cb_frame_encode(&f, NULL, 0), CB_ERR_FULL);
    CU_ASSERT_EQUAL(cb_frame_encode(&f, NULL, sizeof out), CB_ERR_FULL);
    CU_ASSERT_EQUAL(cb_frame_encode_header(NULL, out, sizeof out), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(cb_frame_encode_header(&f, out, 39), CB_ERR_FULL);
    CU_ASSERT_EQUAL(cb_frame_encode_header(&f, NULL, 40), CB_ERR_FULL);
    f.opcode = 0;
    CU_ASSERT_EQUAL(cb_frame_encode_header(&f, out, 40), CB_ERR_BAD_OPCODE);
    f.opcode = CB_OP_GET;
    f.key_len = 251;
    CU_ASSERT_EQUAL(cb_frame_encode_header(&f, out, 40), CB_ERR_KEY_TOO_LONG);
    /* The encoder writes the version itself, whatever f->version says. */
    f = frame_sample();
    f.version = 7;
    CU_ASSERT_EQUAL(cb_frame_encode(&f, out, sizeof out), (long)sizeof sample_bytes);
    CU_ASSERT_EQUAL(out[2], CB_FRAME_VERSION);
}

/* ---- random stream in random splits ----------------------------------------------------- */

enum { STREAM_FRAMES = 10000, STREAM_VALUE_MAX = 16384 };

typedef struct stream {
    cb_frame frames[STREAM_FRAMES];
    uint8_t *bytes;
    size_t len;
    uint8_t *pool;
    size_t pool_len;
} stream;

static void stream_build(stream *s, cb_rng *r)
{
    s->pool_len = CB_KEY_BYTES_MAX + STREAM_VALUE_MAX;
    s->pool = malloc(s->pool_len);
    CU_ASSERT_FATAL(s->pool != NULL);
    fill_random(r, s->pool, s->pool_len);
    size_t total = 0;
    for (size_t i = 0; i < STREAM_FRAMES; i++) {
        s->frames[i] = frame_random(r, s->pool, s->pool_len, STREAM_VALUE_MAX);
        total += cb_frame_encoded_len(&s->frames[i]);
    }
    s->bytes = malloc(total);
    CU_ASSERT_FATAL(s->bytes != NULL);
    s->len = 0;
    for (size_t i = 0; i < STREAM_FRAMES; i++) {
        long rc = cb_frame_encode(&s->frames[i], s->bytes + s->len, total - s->len);
        CU_ASSERT_FATAL(rc == (long)cb_frame_encoded_len(&s->frames[i]));
        s->len += (size_t)rc;
    }
    CU_ASSERT_FATAL(s->len == total);
}

/* The next chunk size: 0 chooses 1..4096 at random (mostly small), else a fixed size. */
static size_t stream_chunk(cb_rng *r, size_t fixed)
{
    if (fixed > 0) {
        return fixed;
    }
    return (size_t)(cb_rng_below(r, 4) == 0 ? cb_rng_range(r, 1, 4096) : cb_rng_range(r, 1, 64));
}

/* Decode every complete frame at the front of rx, check them, compact; returns frames seen. */
static size_t stream_drain(const stream *s, size_t next, uint8_t *rx, size_t *rx_len)
{
    size_t off = 0;
    size_t seen = 0;
    for (;;) {
        cb_frame d;
        long rc = cb_frame_decode(rx + off, *rx_len - off, NULL, &d);
        if (rc == CB_ERR_NEED_MORE) {
            break;
        }
        CU_ASSERT_FATAL(rc > 0);
        CU_ASSERT_FATAL(next + seen < STREAM_FRAMES);
        if (!frame_equal(&s->frames[next + seen], &d)) {
            printf("\n  frame %zu differs after decoding\n", next + seen);
            CU_FAIL_FATAL("frame differs");
        }
        off += (size_t)rc;
        seen++;
    }
    memmove(rx, rx + off, *rx_len - off);
    *rx_len -= off;
    return seen;
}

/* Feed the stream through a receive buffer in chunks; every frame must come back intact. */
static void stream_feed(const stream *s, cb_rng *r, size_t fixed_chunk)
{
    size_t rx_cap = CB_FRAME_HEADER_BYTES + CB_KEY_BYTES_MAX + STREAM_VALUE_MAX;
    uint8_t *rx = malloc(rx_cap);
    CU_ASSERT_FATAL(rx != NULL);
    size_t rx_len = 0, fed = 0, decoded = 0;
    while (fed < s->len) {
        size_t n = stream_chunk(r, fixed_chunk);
        n = n < s->len - fed ? n : s->len - fed;
        n = n < rx_cap - rx_len ? n : rx_cap - rx_len;
        CU_ASSERT_FATAL(n > 0); /* a full buffer that holds no whole frame would stall */
        memcpy(rx + rx_len, s->bytes + fed, n);
        rx_len += n;
        fed += n;
        decoded += stream_drain(s, decoded, rx, &rx_len);
    }
    CU_ASSERT_EQUAL(decoded, STREAM_FRAMES);
    CU_ASSERT_EQUAL(rx_len, 0);
    free(rx);
}

static void test_frame_random_stream_splits(void)
{
    cb_rng r;
    cb_rng_init(&r, cb_test_seed());
    stream *s = malloc(sizeof *s);
    CU_ASSERT_FATAL(s != NULL);
    stream_build(s, &r);
    stream_feed(s, &r, 0);      /* random chunk sizes */
    stream_feed(s, &r, 1);      /* byte by byte */
    stream_feed(s, &r, 4096);   /* large reads */
    stream_feed(s, &r, s->len); /* everything at once (clamped to the buffer) */
    free(s->bytes);
    free(s->pool);
    free(s);
}

/* ---- corrupted headers ------------------------------------------------------------------ */

/* A decoded corrupted frame must be valid in every field and re-encode to the same bytes. */
static void check_decoded_valid(const uint8_t *buf, size_t len, long rc, const cb_frame *d)
{
    CU_ASSERT_FATAL((size_t)rc <= len);
    CU_ASSERT(cb_op_valid(d->opcode));
    CU_ASSERT((d->flags & ~CB_FLAG_MASK) == 0);
    CU_ASSERT(d->key_len <= CB_KEY_BYTES_MAX);
    CU_ASSERT(d->value_len <= CB_VALUE_BYTES_MAX_DEFAULT);
    CU_ASSERT((d->flags & CB_FLAG_RESPONSE) != 0 || d->status == 0);
    CU_ASSERT_EQUAL((size_t)rc, cb_frame_encoded_len(d));
    uint8_t again[CB_FRAME_HEADER_BYTES + CB_KEY_BYTES_MAX + 1024];
    CU_ASSERT_FATAL((size_t)rc <= sizeof again);
    CU_ASSERT_EQUAL(cb_frame_encode(d, again, sizeof again), rc);
    CU_ASSERT(memcmp(again, buf, (size_t)rc) == 0);
}

static void test_frame_corrupted_headers(void)
{
    cb_test_guard g;
    cb_test_guard_init(&g);
    cb_rng r;
    cb_rng_init(&r, cb_test_seed() ^ 0xc0ffee);
    uint8_t pool[CB_KEY_BYTES_MAX + 512];
    fill_random(&r, pool, sizeof pool);
    unsigned ok = 0, errs = 0;
    for (int i = 0; i < 20000; i++) {
        cb_frame f = frame_random(&r, pool, sizeof pool, 512);
        uint8_t enc[CB_FRAME_HEADER_BYTES + sizeof pool];
        long len = cb_frame_encode(&f, enc, sizeof enc);
        CU_ASSERT_FATAL(len > 0);
        unsigned flips = (unsigned)cb_rng_range(&r, 1, 3);
        for (unsigned k = 0; k < flips; k++) {
            enc[cb_rng_below(&r, CB_FRAME_HEADER_BYTES)] ^= (uint8_t)(1u << cb_rng_below(&r, 8));
        }
        const uint8_t *buf = cb_test_guard_place(&g, enc, (size_t)len);
        cb_frame d;
        long rc = cb_frame_decode(buf, (size_t)len, NULL, &d);
        if (rc > 0) {
            check_decoded_valid(buf, (size_t)len, rc, &d);
            ok++;
        } else {
            CU_ASSERT(err_documented(rc));
            errs++;
        }
    }
    CU_ASSERT(ok > 0 && errs > 0); /* both outcomes were exercised */
    cb_test_guard_free(&g);
}

/* SCAN bodies: round trip, and every truncation or bad length refused as a whole. */
static void test_frame_scanbody(void)
{
    uint8_t buf[256];
    cb_scanbody_writer w;
    CU_ASSERT_EQUAL(cb_scanbody_writer_init(&w, buf, 3), CB_ERR_INVALID);
    CU_ASSERT_EQUAL_FATAL(cb_scanbody_writer_init(&w, buf, 80), CB_ERR_OK);
    cb_scanbody_item a = {(const uint8_t *)"key",   3, 9, 1500, 5, 0x0102030405060708ull,
                          (const uint8_t *)"hello", 0};
    cb_scanbody_item b = {(const uint8_t *)"k2", 2, 0, 0, 0, 1, NULL, 1}; /* a tombstone */
    CU_ASSERT_EQUAL(cb_scanbody_put(&w, &a), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_scanbody_put(&w, &b), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_scanbody_put(&w, &a), CB_ERR_FULL); /* 4 + 30 + 24 + 30 > 80 */
    cb_scanbody_item bad = b;
    bad.key_len = 0;
    CU_ASSERT_EQUAL(cb_scanbody_put(&w, &bad), CB_ERR_INVALID);
    bad = a;
    bad.tombstone = 1; /* a tombstone has no value */
    CU_ASSERT_EQUAL(cb_scanbody_put(&w, &bad), CB_ERR_INVALID);
    size_t len = cb_scanbody_finish(&w);
    CU_ASSERT_EQUAL(len, 4 + 30 + 24);
    cb_scanbody_reader r;
    uint32_t count = 0;
    CU_ASSERT_EQUAL_FATAL(cb_scanbody_reader_init(&r, buf, len, &count), CB_ERR_OK);
    CU_ASSERT_EQUAL(count, 2);
    cb_scanbody_item it;
    CU_ASSERT_EQUAL_FATAL(cb_scanbody_next(&r, &it), CB_ERR_OK);
    CU_ASSERT(it.key_len == 3 && memcmp(it.key, "key", 3) == 0 && it.flags == 9);
    CU_ASSERT(it.ttl_ms == 1500 && it.value_len == 5 && memcmp(it.value, "hello", 5) == 0);
    CU_ASSERT_EQUAL(it.version, 0x0102030405060708ull);
    CU_ASSERT_EQUAL_FATAL(cb_scanbody_next(&r, &it), CB_ERR_OK);
    CU_ASSERT(it.key_len == 2 && it.value_len == 0 && it.version == 1 && it.tombstone == 1);
    CU_ASSERT_EQUAL(cb_scanbody_next(&r, &it), CB_ERR_NOT_FOUND);
    for (size_t cut = 0; cut < len; cut++) {
        CU_ASSERT_EQUAL(cb_scanbody_reader_init(&r, buf, cut, NULL), CB_ERR_MALFORMED);
    }
    buf[len] = 0;
    CU_ASSERT_EQUAL(cb_scanbody_reader_init(&r, buf, len + 1, NULL), CB_ERR_MALFORMED);
    buf[4 + 10 + 3] = 0xFF; /* the first item's value_len now runs past the end */
    CU_ASSERT_EQUAL(cb_scanbody_reader_init(&r, buf, len, NULL), CB_ERR_MALFORMED);
    buf[4 + 10 + 3] = 5;
    buf[4 + 1] = 2; /* an unknown kind */
    CU_ASSERT_EQUAL(cb_scanbody_reader_init(&r, buf, len, NULL), CB_ERR_MALFORMED);
    buf[4 + 1] = 1; /* a tombstone with a value */
    CU_ASSERT_EQUAL(cb_scanbody_reader_init(&r, buf, len, NULL), CB_ERR_MALFORMED);
    buf[4 + 1] = 0;
    CU_ASSERT_EQUAL(cb_scanbody_reader_init(&r, buf, len, NULL), CB_ERR_OK);
    buf[0] = 0xFF; /* a count the length cannot hold */
    CU_ASSERT_EQUAL(cb_scanbody_reader_init(&r, buf, len, NULL), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(cb_scanbody_reader_init(&r, NULL, 0, NULL), CB_ERR_MALFORMED);
}

static const cb_test_case tests[] = {
    {"golden_bytes", test_frame_golden_bytes},
    {"names", test_frame_names},
    {"decode_errors", test_frame_decode_errors},
    {"decode_bad_arguments", test_frame_decode_bad_arguments},
    {"key_len_over_limit", test_frame_key_len_over_limit},
    {"value_len_over_limit", test_frame_value_len_over_limit},
    {"prefixes_need_more", test_frame_prefixes_need_more},
    {"encode_errors", test_frame_encode_errors},
    {"random_stream_splits", test_frame_random_stream_splits},
    {"corrupted_headers", test_frame_corrupted_headers},
    {"scanbody", test_frame_scanbody},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_frame", tests)
