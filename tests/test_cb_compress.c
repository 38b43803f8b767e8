/*
 * test_cb_compress.c: per-value compression (protocols/cb_compress.h, docs/protocol.md §5).
 *
 * Round trips for lz4 and zstd at several levels on compressible text; the "send as is"
 * cases (short, incompressible); every header error of cb_compress_peek in a table; bombs
 * (a header declaring more than the limit is refused before any work, including a real
 * 1 MiB zstd bomb); payloads that lie about their length, lack a zstd content size, carry
 * trailing bytes or are truncated; a payload against a PROT_NONE guard page; and
 * out-of-memory at every allocation of cb_compress_new.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, for the guard page */
#define ZSTD_STATIC_LINKING_ONLY
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>

#include "cb_compress.h"
#include "cb_err.h"
#include "cb_limits.h"
#include "cb_rng.h"
#include "cb_test.h"

#define T_VALUE_MAX (256u * 1024u)

/* Text-like content: words from a small vocabulary, as cache values of web pages hold. */
static void t_fill_text(uint8_t *out, size_t len, uint64_t seed)
{
    static const char *const words[] = {"user",  "id", "name", "the",        "session", "cache",
                                        "value", "42", "true", "created_at", "{",       "}"};
    cb_rng rng;
    cb_rng_init(&rng, seed);
    size_t off = 0;
    while (off < len) {
        const char *w = words[cb_rng_below(&rng, sizeof words / sizeof words[0])];
        for (size_t i = 0; w[i] != '\0' && off < len; i++) {
            out[off++] = (uint8_t)w[i];
        }
        if (off < len) {
            out[off++] = ' ';
        }
    }
}

static cb_compress *t_new(uint8_t alg, int32_t level, uint32_t value_max)
{
    cb_compress_config cfg = {.alg = alg, .level = level, .value_bytes_max = value_max};
    cb_compress *c = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_compress_new(&cfg, NULL, &c), CB_ERR_OK);
    return c;
}

static void t_round_trip(uint8_t alg, int32_t level)
{
    static uint8_t value[T_VALUE_MAX];
    cb_compress *c = t_new(alg, level, T_VALUE_MAX);
    static const size_t sizes[] = {128, 200, 1000, 4096, 65536, T_VALUE_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        t_fill_text(value, sizes[i], i + 1);
        const uint8_t *enc = NULL, *dec = NULL;
        long n = cb_compress_encode(c, value, sizes[i], &enc);
        CU_ASSERT(n > (long)CB_COMPRESS_HEADER_BYTES && n < (long)sizes[i]);
        CU_ASSERT_EQUAL(enc[0], alg);
        long m = cb_compress_decode(c, enc, (size_t)n, &dec);
        CU_ASSERT_EQUAL(m, (long)sizes[i]);
        CU_ASSERT(dec != NULL && memcmp(dec, value, sizes[i]) == 0);
    }
    cb_compress_del(c);
}

static void test_round_trip_lz4(void)
{
    t_round_trip(CB_COMPRESS_LZ4, 0);
    t_round_trip(CB_COMPRESS_LZ4, 8);
}

static void test_round_trip_zstd(void)
{
    t_round_trip(CB_COMPRESS_ZSTD, 1);
    t_round_trip(CB_COMPRESS_ZSTD, 3);
    t_round_trip(CB_COMPRESS_ZSTD, 9);
    t_round_trip(CB_COMPRESS_ZSTD, 19);
}

/* Short values and values that do not shrink are sent as they are (0, flag clear). */
static void test_send_as_is(void)
{
    uint8_t value[4096];
    cb_compress *c = t_new(CB_COMPRESS_ZSTD, 3, sizeof value);
    const uint8_t *enc = value;
    t_fill_text(value, sizeof value, 7);
    CU_ASSERT_EQUAL(cb_compress_encode(c, value, CB_COMPRESS_THRESHOLD_DEFAULT - 1, &enc), 0);
    CU_ASSERT_PTR_NULL(enc);
    cb_rng rng;
    cb_rng_init(&rng, cb_test_seed());
    for (size_t i = 0; i < sizeof value; i++) {
        value[i] = (uint8_t)cb_rng_next(&rng); /* random bytes do not compress */
    }
    CU_ASSERT_EQUAL(cb_compress_encode(c, value, sizeof value, &enc), 0);
    CU_ASSERT_EQUAL(cb_compress_encode(c, value, sizeof value + 1, &enc), CB_ERR_VALUE_TOO_LARGE);
    CU_ASSERT_EQUAL(cb_compress_encode(c, NULL, 0, &enc), 0);
    cb_compress_del(c);
    /* A threshold of 1 with lz4: tiny values still never grow. */
    cb_compress_config cfg = {.alg = CB_COMPRESS_LZ4, .threshold_bytes = 1, .value_bytes_max = 64};
    CU_ASSERT_EQUAL_FATAL(cb_compress_new(&cfg, NULL, &c), CB_ERR_OK);
    for (size_t len = 0; len <= 64; len++) {
        memset(value, 'a', len);
        long n = cb_compress_encode(c, value, len, &enc);
        CU_ASSERT(n == 0 || (n > 0 && n < (long)len));
    }
    cb_compress_del(c);
}

typedef struct peek_case {
    const char *name;
    uint8_t bytes[8];
    size_t len;
    uint32_t value_max;
    int expect;
} peek_case;

static void test_peek_table(void)
{
    static const peek_case cases[] = {
        {"empty", {0}, 0, 1000, CB_ERR_MALFORMED},
        {"1 byte", {1}, 1, 1000, CB_ERR_MALFORMED},
        {"4 bytes", {1, 0, 0, 0}, 4, 1000, CB_ERR_MALFORMED},
        {"length 0", {1, 0, 0, 0, 0, 9}, 6, 1000, CB_ERR_MALFORMED},
        {"alg 0", {0, 0, 0, 1, 0, 9}, 6, 1000, CB_ERR_BAD_ALGORITHM},
        {"alg 3", {3, 0, 0, 1, 0, 9}, 6, 1000, CB_ERR_BAD_ALGORITHM},
        {"alg 255", {255, 0, 0, 1, 0, 9}, 6, 1000, CB_ERR_BAD_ALGORITHM},
        {"bomb 4 GiB", {2, 0xFF, 0xFF, 0xFF, 0xFF, 9}, 6, 1000, CB_ERR_VALUE_TOO_LARGE},
        {"limit + 1", {1, 0, 0, 0x03, 0xE9, 9}, 6, 1000, CB_ERR_VALUE_TOO_LARGE},
        {"not shrunk", {1, 0, 0, 0, 6, 9}, 6, 1000, CB_ERR_MALFORMED},
        {"at limit", {1, 0, 0, 0x03, 0xE8, 9}, 6, 1000, CB_ERR_OK},
        {"shrunk by 1", {2, 0, 0, 0, 7, 9}, 6, 1000, CB_ERR_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const peek_case *pc = &cases[i];
        uint8_t alg = 0;
        uint32_t len = 0;
        int rc = cb_compress_peek(pc->bytes, pc->len, pc->value_max, &alg, &len);
        if (rc != pc->expect) {
            printf("\n  case '%s': got %s, want %s\n", pc->name, cb_err_name(rc),
                   cb_err_name(pc->expect));
        }
        CU_ASSERT_EQUAL(rc, pc->expect);
    }
}

/* A real bomb: 1 MiB of zeros is ~40 bytes of zstd; a receiver with a 64 KiB limit refuses
 * it from the header alone, and an lz4 receiver refuses it as a mismatch. */
static void test_bomb(void)
{
    static uint8_t zeros[1u << 20];
    cb_compress *big = t_new(CB_COMPRESS_ZSTD, 19, sizeof zeros);
    const uint8_t *enc = NULL, *dec = NULL;
    long n = cb_compress_encode(big, zeros, sizeof zeros, &enc);
    CU_ASSERT_FATAL(n > 0 && n < 200);
    cb_compress *small = t_new(CB_COMPRESS_ZSTD, 3, 64u * 1024u);
    CU_ASSERT_EQUAL(cb_compress_decode(small, enc, (size_t)n, &dec), CB_ERR_VALUE_TOO_LARGE);
    CU_ASSERT_PTR_NULL(dec);
    cb_compress *lz = t_new(CB_COMPRESS_LZ4, 1, sizeof zeros);
    CU_ASSERT_EQUAL(cb_compress_decode(lz, enc, (size_t)n, &dec), CB_ERR_CODEC_MISMATCH);
    CU_ASSERT_EQUAL(cb_compress_decode(big, enc, (size_t)n, &dec), (long)sizeof zeros);
    cb_compress_del(lz);
    cb_compress_del(small);
    cb_compress_del(big);
}

/* Copy a payload and rewrite its declared length. */
static size_t t_relabel(const uint8_t *enc, size_t n, uint32_t len, uint8_t *out)
{
    memcpy(out, enc, n);
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
    return n;
}

/* The header's length must be exactly what the algorithm produces, either way. */
static void test_length_lies(void)
{
    uint8_t value[8192], copy[8192];
    t_fill_text(value, sizeof value, 3);
    const uint8_t algs[] = {CB_COMPRESS_LZ4, CB_COMPRESS_ZSTD};
    for (size_t a = 0; a < 2; a++) {
        cb_compress *c = t_new(algs[a], 0, sizeof value + 100);
        const uint8_t *enc = NULL, *dec = NULL;
        long n = cb_compress_encode(c, value, sizeof value, &enc);
        CU_ASSERT_FATAL(n > 0);
        t_relabel(enc, (size_t)n, sizeof value + 1, copy);
        CU_ASSERT_EQUAL(cb_compress_decode(c, copy, (size_t)n, &dec), CB_ERR_MALFORMED);
        t_relabel(enc, (size_t)n, sizeof value - 1, copy);
        CU_ASSERT_EQUAL(cb_compress_decode(c, copy, (size_t)n, &dec), CB_ERR_MALFORMED);
        /* Trailing bytes after the compressed data. */
        memcpy(copy, enc, (size_t)n);
        copy[n] = 0;
        CU_ASSERT(cb_compress_decode(c, copy, (size_t)n + 1, &dec) < 0);
        cb_compress_del(c);
    }
}

/* Every truncation of a valid payload is an error, never a crash or a success. */
static void test_truncated(void)
{
    uint8_t value[3000];
    t_fill_text(value, sizeof value, 5);
    const uint8_t algs[] = {CB_COMPRESS_LZ4, CB_COMPRESS_ZSTD};
    for (size_t a = 0; a < 2; a++) {
        cb_compress *c = t_new(algs[a], 0, sizeof value);
        const uint8_t *enc = NULL, *dec = NULL;
        long n = cb_compress_encode(c, value, sizeof value, &enc);
        CU_ASSERT_FATAL(n > 0);
        uint8_t copy[3000];
        memcpy(copy, enc, (size_t)n);
        int failures = 0;
        for (long k = 0; k < n; k++) {
            failures += cb_compress_decode(c, copy, (size_t)k, &dec) < 0;
        }
        CU_ASSERT_EQUAL(failures, n);
        cb_compress_del(c);
    }
}

/* zstd frames without a content size are refused (STYLE.md §4), even when they decode. */
static void test_zstd_no_content_size(void)
{
    uint8_t value[2000], frame[2100];
    t_fill_text(value, sizeof value, 9);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    CU_ASSERT_FATAL(cc != NULL);
    CU_ASSERT(!ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0)));
    ZSTD_outBuffer ob = {frame + CB_COMPRESS_HEADER_BYTES, sizeof frame - 5, 0};
    ZSTD_inBuffer ib = {value, sizeof value, 0};
    size_t left = ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end);
    CU_ASSERT_EQUAL(left, 0);
    ZSTD_freeCCtx(cc);
    CU_ASSERT_EQUAL(ZSTD_getFrameContentSize(frame + 5, ob.pos), ZSTD_CONTENTSIZE_UNKNOWN);
    frame[0] = CB_COMPRESS_ZSTD;
    t_relabel(frame, 5, sizeof value, frame);
    cb_compress *c = t_new(CB_COMPRESS_ZSTD, 3, sizeof value);
    const uint8_t *dec = NULL;
    CU_ASSERT_EQUAL(cb_compress_decode(c, frame, 5 + ob.pos, &dec), CB_ERR_MALFORMED);
    cb_compress_del(c);
}

/* Random bytes after a valid header: every result is an error or exactly the declared
 * length, and ASan sees no read outside the payload. */
static void test_garbage(void)
{
    cb_rng rng;
    cb_rng_init(&rng, cb_test_seed());
    cb_compress *cs[2] = {t_new(CB_COMPRESS_LZ4, 0, 4096), t_new(CB_COMPRESS_ZSTD, 0, 4096)};
    uint8_t buf[512];
    for (int i = 0; i < 20000; i++) {
        size_t len = (size_t)cb_rng_below(&rng, sizeof buf);
        for (size_t k = 0; k < len; k++) {
            buf[k] = (uint8_t)cb_rng_next(&rng);
        }
        if (len >= 5) {
            buf[0] = (uint8_t)(1 + (i & 1));
            t_relabel(buf, len, (uint32_t)cb_rng_range(&rng, len + 1, 4096), buf);
        }
        const uint8_t *dec = NULL;
        long n = cb_compress_decode(cs[i & 1], buf, len, &dec);
        CU_ASSERT(n < 0 || (n > (long)len && n <= 4096 && dec != NULL));
    }
    cb_compress_del(cs[0]);
    cb_compress_del(cs[1]);
}

/* A payload that ends exactly at a PROT_NONE page: any read past it faults. */
static void test_guard_page(void)
{
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *map =
        mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(map != MAP_FAILED);
    CU_ASSERT_FATAL(mprotect(map + page, (size_t)page, PROT_NONE) == 0);
    uint8_t value[3000];
    t_fill_text(value, sizeof value, 11);
    const uint8_t algs[] = {CB_COMPRESS_LZ4, CB_COMPRESS_ZSTD};
    for (size_t a = 0; a < 2; a++) {
        cb_compress *c = t_new(algs[a], 0, sizeof value);
        const uint8_t *enc = NULL, *dec = NULL;
        long n = cb_compress_encode(c, value, sizeof value, &enc);
        CU_ASSERT_FATAL(n > 0 && n < page);
        for (long cut = n; cut >= 0; cut -= 7) {
            uint8_t *at = map + page - cut;
            memcpy(at, enc, (size_t)cut);
            long m = cb_compress_decode(c, at, (size_t)cut, &dec);
            CU_ASSERT(cut == n ? m == (long)sizeof value : m < 0);
        }
        cb_compress_del(c);
    }
    munmap(map, (size_t)page * 2);
}

static void test_config(void)
{
    static const cb_compress_config bad[] = {
        {.alg = CB_COMPRESS_NONE, .value_bytes_max = 100},
        {.alg = 3, .value_bytes_max = 100},
        {.alg = CB_COMPRESS_ZSTD, .level = 20, .value_bytes_max = 100},
        {.alg = CB_COMPRESS_ZSTD, .level = -1, .value_bytes_max = 100},
        {.alg = CB_COMPRESS_LZ4, .level = CB_COMPRESS_LZ4_ACCEL_MAX + 1, .value_bytes_max = 100},
        {.alg = CB_COMPRESS_LZ4, .value_bytes_max = 0},
        {.alg = CB_COMPRESS_LZ4, .value_bytes_max = CB_VALUE_BYTES_LIMIT + 1u},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cb_compress *c = (cb_compress *)1;
        CU_ASSERT_EQUAL(cb_compress_new(&bad[i], NULL, &c), CB_ERR_INVALID);
        CU_ASSERT_PTR_NULL(c);
        CU_ASSERT_EQUAL(cb_compress_memory_bytes(&bad[i]), 0);
    }
    cb_compress_del(NULL);
}

/* Fail allocation 0, 1, 2, ... until cb_compress_new succeeds: a clean NOMEM each time. */
static void test_oom(void)
{
    const uint8_t algs[] = {CB_COMPRESS_LZ4, CB_COMPRESS_ZSTD};
    for (size_t a = 0; a < 2; a++) {
        cb_compress_config cfg = {.alg = algs[a], .value_bytes_max = 4096};
        for (uint64_t n = 0;; n++) {
            cb_alloc_failing f;
            cb_alloc_failing_init(&f, n, 1);
            cb_compress *c = NULL;
            int rc = cb_compress_new(&cfg, &f.alloc, &c);
            if (rc == CB_ERR_OK) {
                cb_compress_del(c);
                CU_ASSERT_EQUAL(f.live, 0);
                CU_ASSERT(n >= 3);
                break;
            }
            CU_ASSERT_EQUAL(rc, CB_ERR_NOMEM);
            CU_ASSERT_EQUAL(f.live, 0);
            CU_ASSERT_FATAL(n < 10);
        }
    }
}

static const cb_test_case cases[] = {
    {"round_trip_lz4", test_round_trip_lz4},
    {"round_trip_zstd", test_round_trip_zstd},
    {"send_as_is", test_send_as_is},
    {"peek_table", test_peek_table},
    {"bomb", test_bomb},
    {"length_lies", test_length_lies},
    {"truncated", test_truncated},
    {"zstd_no_content_size", test_zstd_no_content_size},
    {"garbage", test_garbage},
    {"guard_page", test_guard_page},
    {"config", test_config},
    {"oom", test_oom},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_compress", cases)
