/*
 * fuzz_cb_frame.c: libFuzzer target for the frame decoder (protocols/cb_frame.h), decoding and
 * round-trip in one.
 *
 * The input is a byte stream: frames are decoded back to back until the decoder asks for more
 * bytes or reports an error. Each decoded frame is re-encoded, which must reproduce exactly
 * the bytes it was decoded from (the encoding is canonical), and decoded again, which must
 * give the same fields. Every strict prefix of the header must give CB_ERR_NEED_MORE. Any
 * other outcome, or an undocumented error code, abort()s. ASan catches any read past the
 * input, which libFuzzer hands over in a buffer of exactly `size` bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cb_err.h"
#include "cb_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_err_documented(long rc)
{
    return rc == CB_ERR_NEED_MORE || rc == CB_ERR_BAD_MAGIC || rc == CB_ERR_BAD_VERSION ||
           rc == CB_ERR_BAD_OPCODE || rc == CB_ERR_BAD_FLAGS || rc == CB_ERR_KEY_TOO_LONG ||
           rc == CB_ERR_MALFORMED || rc == CB_ERR_VALUE_TOO_LARGE;
}

static int fuzz_same_fields(const cb_frame *a, const cb_frame *b)
{
    return a->version == b->version && a->opcode == b->opcode && a->flags == b->flags &&
           a->key_len == b->key_len && a->status == b->status && a->request_id == b->request_id &&
           a->value_len == b->value_len && a->ttl_ms == b->ttl_ms && a->opaque == b->opaque &&
           a->cas == b->cas && a->arg == b->arg;
}

static int fuzz_same_bytes(const uint8_t *a, const uint8_t *b, size_t len)
{
    return len == 0 || memcmp(a, b, len) == 0;
}

/* Encode `f`, decode the result, and compare both with the original bytes and fields. */
static void fuzz_round_trip(const uint8_t *orig, size_t len, const cb_frame *f,
                            const cb_frame_limits *lim)
{
    uint8_t *enc = malloc(len);
    if (enc == NULL) {
        abort();
    }
    if (cb_frame_encode(f, enc, len) != (long)len || memcmp(enc, orig, len) != 0) {
        abort();
    }
    cb_frame again;
    if (cb_frame_decode(enc, len, lim, &again) != (long)len || !fuzz_same_fields(f, &again)) {
        abort();
    }
    if (!fuzz_same_bytes(f->key, again.key, f->key_len) ||
        !fuzz_same_bytes(f->value, again.value, f->value_len)) {
        abort();
    }
    free(enc);
}

/* Every strict prefix of a decoded frame's header must be a valid prefix. */
static void fuzz_check_prefixes(const uint8_t *buf, const cb_frame_limits *lim)
{
    for (size_t n = 0; n < CB_FRAME_HEADER_BYTES; n++) {
        cb_frame f;
        if (cb_frame_decode(buf, n, lim, &f) != CB_ERR_NEED_MORE) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A small limit, so inputs of a few KiB can also reach the VALUE_TOO_LARGE path. */
    cb_frame_limits lim = {.value_bytes_max = 4096};
    if (data == NULL) {
        return 0; /* only an empty input can come as NULL; data + 0 would be undefined */
    }
    size_t off = 0;
    for (;;) {
        cb_frame f;
        long rc = cb_frame_decode(data + off, size - off, &lim, &f);
        if (rc < 0) {
            if (!fuzz_err_documented(rc)) {
                abort();
            }
            break;
        }
        if ((size_t)rc > size - off || (size_t)rc != cb_frame_encoded_len(&f)) {
            abort();
        }
        fuzz_check_prefixes(data + off, &lim);
        fuzz_round_trip(data + off, (size_t)rc, &f, &lim);
        off += (size_t)rc;
    }
    return 0;
}
