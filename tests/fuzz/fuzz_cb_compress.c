/*
 * fuzz_cb_compress.c: libFuzzer target for the compressed-payload decoder
 * (protocols/cb_compress.h, docs/protocol.md §5), decoding and round trip in one.
 *
 * The whole input is a payload. It is decoded by an lz4 and a zstd compressor with a 64 KiB
 * value limit: the result must be a documented error, or a value of exactly the declared
 * length. A decoded value is compressed again and decoded again, which must give the same
 * bytes. Independently, the input itself is compressed as a value by both and must decode
 * back to itself (or be sent as is). Any other outcome abort()s; ASan catches any read past
 * the input, which libFuzzer hands over in a buffer of exactly `size` bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cb_compress.h"
#include "cb_err.h"

#define FUZZ_VALUE_MAX (64u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_err_documented(long rc)
{
    return rc == CB_ERR_MALFORMED || rc == CB_ERR_BAD_ALGORITHM || rc == CB_ERR_VALUE_TOO_LARGE ||
           rc == CB_ERR_CODEC_MISMATCH;
}

/* Compress value[0..len) and check that it decodes back to the same bytes. */
static void fuzz_round_trip(cb_compress *c, const uint8_t *value, size_t len)
{
    const uint8_t *enc = NULL, *dec = NULL;
    long n = cb_compress_encode(c, value, len, &enc);
    if (n < 0 || (n > 0 && (size_t)n >= len)) {
        abort();
    }
    if (n == 0) {
        return; /* sent as is */
    }
    uint8_t *copy = malloc((size_t)n);
    if (copy == NULL) {
        abort();
    }
    memcpy(copy, enc, (size_t)n);
    long m = cb_compress_decode(c, copy, (size_t)n, &dec);
    if (m != (long)len || memcmp(dec, value, len) != 0) {
        abort();
    }
    free(copy);
}

static void fuzz_decode(cb_compress *c, const uint8_t *data, size_t size)
{
    const uint8_t *dec = NULL;
    long n = cb_compress_decode(c, data, size, &dec);
    if (n < 0) {
        if (!fuzz_err_documented(n) || dec != NULL) {
            abort();
        }
        return;
    }
    uint8_t alg = 0;
    uint32_t len = 0;
    if (cb_compress_peek(data, size, FUZZ_VALUE_MAX, &alg, &len) != CB_ERR_OK ||
        (uint32_t)n != len || alg != cb_compress_alg(c)) {
        abort();
    }
    uint8_t *value = malloc((size_t)n);
    if (value == NULL) {
        abort();
    }
    memcpy(value, dec, (size_t)n);
    fuzz_round_trip(c, value, (size_t)n);
    free(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t algs[] = {CB_COMPRESS_LZ4, CB_COMPRESS_ZSTD};
    if (data == NULL) {
        return 0; /* only an empty input can come as NULL */
    }
    /* Made once and kept (the zstd workspace costs a few hundred KiB to set up); decoding
     * leaves no state behind, so runs stay independent. */
    static cb_compress *cs[2];
    for (size_t a = 0; a < 2; a++) {
        cb_compress_config cfg = {
            .alg = algs[a], .level = 1, .threshold_bytes = 1, .value_bytes_max = FUZZ_VALUE_MAX};
        if (cs[a] == NULL && cb_compress_new(&cfg, NULL, &cs[a]) != CB_ERR_OK) {
            abort();
        }
        fuzz_decode(cs[a], data, size);
        if (size <= FUZZ_VALUE_MAX) {
            fuzz_round_trip(cs[a], data, size);
        }
    }
    return 0;
}
