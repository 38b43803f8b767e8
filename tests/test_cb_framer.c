/*
 * test_cb_framer.c: frame reassembly over a byte stream.
 *
 * Two frames split at every position and fed byte by byte come out whole and in order; a
 * bad header is rejected as soon as the bytes prove it, without buffering a body; the
 * buffer holds at most one frame and is never allocated beyond one; NOMEM leaves what was
 * not taken untaken and the stream resumable.
 */
#include <string.h>

#include "cb_err.h"
#include "cb_framer.h"
#include "cb_test.h"

#define FRAMER_BUF_BYTES 4096u

/* Encode a SET request with `key` and `value_len` bytes of a pattern into out. */
static size_t framer_make(uint8_t *out, uint32_t id, const char *key, uint32_t value_len)
{
    static uint8_t value[FRAMER_BUF_BYTES];
    for (uint32_t i = 0; i < value_len; i++) {
        value[i] = (uint8_t)(i * 7u + id);
    }
    cb_frame f;
    memset(&f, 0, sizeof f);
    f.opcode = CB_OP_SET;
    f.request_id = id;
    f.key_len = (uint8_t)strlen(key);
    f.key = (const uint8_t *)key;
    f.value_len = value_len;
    f.value = value;
    long n = cb_frame_encode(&f, out, FRAMER_BUF_BYTES);
    CU_ASSERT_FATAL(n > 0);
    return (size_t)n;
}

static void framer_check(const cb_frame *f, uint32_t id, const char *key, uint32_t value_len)
{
    CU_ASSERT_EQUAL(f->opcode, CB_OP_SET);
    CU_ASSERT_EQUAL(f->request_id, id);
    CU_ASSERT_EQUAL(f->key_len, strlen(key));
    CU_ASSERT(f->key_len == 0 || memcmp(f->key, key, f->key_len) == 0);
    CU_ASSERT_EQUAL_FATAL(f->value_len, value_len);
    int same = 1;
    for (uint32_t i = 0; i < value_len; i++) {
        same &= f->value[i] == (uint8_t)(i * 7u + id);
    }
    CU_ASSERT(same);
}

/* Feed buf[0..split) then buf[split..len), checking the frames that come out. */
static int framer_feed(cb_framer *fr, const uint8_t *buf, size_t len, size_t split, int *frames)
{
    const cb_frame_limits lim = cb_frame_limits_default();
    size_t bounds[3] = {0, split, len};
    for (int part = 0; part < 2; part++) {
        const uint8_t *in = buf + bounds[part];
        size_t in_len = bounds[part + 1] - bounds[part];
        for (;;) {
            cb_frame f;
            int rc = cb_framer_next(fr, &in, &in_len, &lim, NULL, &f);
            if (rc < 0) {
                return rc;
            }
            if (rc == 0) {
                CU_ASSERT_EQUAL(in_len, 0);
                break;
            }
            if (*frames == 0) {
                framer_check(&f, 1, "alpha", 300);
            } else {
                framer_check(&f, 2, "b", 0);
            }
            ++*frames;
        }
    }
    return 0;
}

static void test_framer_every_split(void)
{
    uint8_t buf[2 * FRAMER_BUF_BYTES];
    size_t a = framer_make(buf, 1, "alpha", 300);
    size_t b = framer_make(buf + a, 2, "b", 0);
    size_t total = a + b;
    for (size_t split = 0; split <= total; split++) {
        cb_framer fr;
        cb_framer_init(&fr);
        int frames = 0;
        CU_ASSERT_EQUAL(framer_feed(&fr, buf, total, split, &frames), 0);
        CU_ASSERT_EQUAL(frames, 2);
        CU_ASSERT_EQUAL(cb_framer_pending(&fr), 0);
        cb_framer_free(&fr, NULL);
    }
}

static void test_framer_byte_by_byte(void)
{
    uint8_t buf[2 * FRAMER_BUF_BYTES];
    size_t a = framer_make(buf, 1, "alpha", 300);
    size_t total = a + framer_make(buf + a, 2, "b", 0);
    const cb_frame_limits lim = cb_frame_limits_default();
    cb_framer fr;
    cb_framer_init(&fr);
    int frames = 0;
    for (size_t i = 0; i < total; i++) {
        const uint8_t *in = buf + i;
        size_t in_len = 1;
        cb_frame f;
        int rc = cb_framer_next(&fr, &in, &in_len, &lim, NULL, &f);
        CU_ASSERT_EQUAL(in_len, 0);
        /* Never more than the frame being assembled. */
        CU_ASSERT(cb_framer_pending(&fr) <= (i < a ? a : total - a));
        if (rc == 1) {
            CU_ASSERT_EQUAL(i + 1, frames == 0 ? a : total);
            if (frames == 0) {
                framer_check(&f, 1, "alpha", 300);
            } else {
                framer_check(&f, 2, "b", 0);
            }
            frames++;
        } else {
            CU_ASSERT_EQUAL(rc, 0);
        }
    }
    CU_ASSERT_EQUAL(frames, 2);
    cb_framer_free(&fr, NULL);
}

typedef struct framer_bad_case {
    const char *name;
    size_t offset;   /* byte to corrupt */
    uint8_t value;   /* its new value */
    size_t proof_at; /* the byte count that proves the header bad */
    int expect_rc;
} framer_bad_case;

/* Each case breaks one header field; the framer must fail on the byte that proves it. */
static void test_framer_bad_header_rejected_early(void)
{
    static const framer_bad_case cases[] = {
        {"magic", 0, 0x00, 1, CB_ERR_BAD_MAGIC},
        {"version", 2, 9, 3, CB_ERR_BAD_VERSION},
        {"opcode", 3, 0xEE, 4, CB_ERR_BAD_OPCODE},
        {"flags", 4, 0x80, 5, CB_ERR_BAD_FLAGS},
        {"key_len", 5, 251, 6, CB_ERR_KEY_TOO_LONG},
        {"status", 7, 1, 8, CB_ERR_MALFORMED},
        {"value_len", 12, 0x7F, 16, CB_ERR_VALUE_TOO_LARGE},
    };
    const cb_frame_limits lim = cb_frame_limits_default();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t buf[FRAMER_BUF_BYTES];
        size_t len = framer_make(buf, 1, "alpha", 300);
        buf[cases[c].offset] = cases[c].value;
        cb_framer fr;
        cb_framer_init(&fr);
        size_t i = 0;
        int rc = 0;
        for (; i < len && rc == 0; i++) {
            const uint8_t *in = buf + i;
            size_t in_len = 1;
            cb_frame f;
            rc = cb_framer_next(&fr, &in, &in_len, &lim, NULL, &f);
            CU_ASSERT(cb_framer_pending(&fr) <= CB_FRAME_HEADER_BYTES);
        }
        if (rc != cases[c].expect_rc || i != cases[c].proof_at) {
            printf("\n  case %s: rc %d after %zu bytes\n", cases[c].name, rc, i);
        }
        CU_ASSERT_EQUAL(rc, cases[c].expect_rc);
        CU_ASSERT_EQUAL(i, cases[c].proof_at);
        CU_ASSERT_EQUAL(cb_framer_pending(&fr), 0); /* reset */
        cb_framer_free(&fr, NULL);
    }
}

/* A 2 GiB value announced in the header: rejected without allocating for it. */
static void test_framer_huge_value_not_buffered(void)
{
    uint8_t buf[FRAMER_BUF_BYTES];
    size_t len = framer_make(buf, 1, "k", 10);
    buf[12] = 0x80;
    const cb_frame_limits lim = cb_frame_limits_default();
    cb_alloc_failing fa;
    cb_alloc_failing_init(&fa, UINT64_MAX, 0);
    cb_framer fr;
    cb_framer_init(&fr);
    const uint8_t *in = buf;
    size_t in_len = 10; /* a partial header first: buffered */
    cb_frame f;
    CU_ASSERT_EQUAL(cb_framer_next(&fr, &in, &in_len, &lim, &fa.alloc, &f), 0);
    in_len = len - 10;
    CU_ASSERT_EQUAL(cb_framer_next(&fr, &in, &in_len, &lim, &fa.alloc, &f), CB_ERR_VALUE_TOO_LARGE);
    CU_ASSERT(fr.cap <= 256);
    cb_framer_free(&fr, &fa.alloc);
    CU_ASSERT_EQUAL(fa.live, 0);
}

/* The buffer is never allocated beyond one maximal frame under the decoder's limits. */
static void test_framer_buffer_bounded_by_max_frame(void)
{
    cb_frame_limits lim = {1000};
    uint8_t buf[FRAMER_BUF_BYTES];
    size_t len = framer_make(buf, 3, "key", 1000);
    cb_framer fr;
    cb_framer_init(&fr);
    for (size_t i = 0; i < len; i += 100) {
        const uint8_t *in = buf + i;
        size_t in_len = len - i < 100 ? len - i : 100;
        cb_frame f;
        int rc = cb_framer_next(&fr, &in, &in_len, &lim, NULL, &f);
        CU_ASSERT_EQUAL(rc, i + 100 >= len ? 1 : 0);
        CU_ASSERT(fr.cap <= CB_FRAME_HEADER_BYTES + CB_KEY_BYTES_MAX + lim.value_bytes_max);
        if (rc == 1) {
            framer_check(&f, 3, "key", 1000);
        }
    }
    cb_framer_free(&fr, NULL);
}

/* NOMEM: nothing is lost; what was not taken is still in the input, and the frame
 * completes once memory is back. */
static void test_framer_nomem(void)
{
    uint8_t buf[FRAMER_BUF_BYTES];
    size_t len = framer_make(buf, 1, "alpha", 2000);
    const cb_frame_limits lim = cb_frame_limits_default();
    for (uint64_t n = 0; n < 2; n++) {
        cb_alloc_failing fa;
        cb_alloc_failing_init(&fa, n, 1);
        cb_framer fr;
        cb_framer_init(&fr);
        const uint8_t *in = buf;
        size_t in_len = len - 1; /* a partial frame: must be buffered */
        cb_frame f;
        int rc = cb_framer_next(&fr, &in, &in_len, &lim, &fa.alloc, &f);
        CU_ASSERT_EQUAL(rc, CB_ERR_NOMEM);
        CU_ASSERT_EQUAL(in_len + cb_framer_pending(&fr), len - 1);
        CU_ASSERT_PTR_EQUAL(in, buf + cb_framer_pending(&fr));
        if (n == 0) {
            CU_ASSERT_EQUAL(in_len, len - 1); /* the first allocation: nothing taken */
        }
        /* Memory is back: the rest of the frame completes it. */
        CU_ASSERT_EQUAL(cb_framer_next(&fr, &in, &in_len, &lim, &fa.alloc, &f), 0);
        in = buf + len - 1;
        in_len = 1;
        CU_ASSERT_EQUAL(cb_framer_next(&fr, &in, &in_len, &lim, &fa.alloc, &f), 1);
        framer_check(&f, 1, "alpha", 2000);
        cb_framer_free(&fr, &fa.alloc);
        CU_ASSERT_EQUAL(fa.live, 0);
    }
}

static void test_framer_reset_drops_partial(void)
{
    uint8_t buf[2 * FRAMER_BUF_BYTES];
    size_t a = framer_make(buf, 1, "alpha", 300);
    size_t b = framer_make(buf + a, 2, "b", 0);
    const cb_frame_limits lim = cb_frame_limits_default();
    cb_framer fr;
    cb_framer_init(&fr);
    const uint8_t *in = buf;
    size_t in_len = 100;
    cb_frame f;
    CU_ASSERT_EQUAL(cb_framer_next(&fr, &in, &in_len, &lim, NULL, &f), 0);
    CU_ASSERT_EQUAL(cb_framer_pending(&fr), 100);
    cb_framer_reset(&fr);
    CU_ASSERT_EQUAL(cb_framer_pending(&fr), 0);
    in = buf + a;
    in_len = b;
    CU_ASSERT_EQUAL(cb_framer_next(&fr, &in, &in_len, &lim, NULL, &f), 1);
    framer_check(&f, 2, "b", 0);
    cb_framer_free(&fr, NULL);
}

static const cb_test_case tests[] = {
    {"every_split", test_framer_every_split},
    {"byte_by_byte", test_framer_byte_by_byte},
    {"bad_header_rejected_early", test_framer_bad_header_rejected_early},
    {"huge_value_not_buffered", test_framer_huge_value_not_buffered},
    {"buffer_bounded_by_max_frame", test_framer_buffer_bounded_by_max_frame},
    {"nomem", test_framer_nomem},
    {"reset_drops_partial", test_framer_reset_drops_partial},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_framer", tests)
