/*
 * fuzz_cb_seal.c: libFuzzer target for sealed frames (protocols/cb_seal.h,
 * docs/protocol.md §6), hostile input and round trip in one.
 *
 * The input is a byte stream of frames, decoded back to back as a stream receiver would.
 * Each frame is opened by a stream receiver (whose session carries over from frame to frame)
 * and by a datagram receiver, under a fixed key the seed corpus was sealed with: the result
 * must be a documented error, or a plaintext that fits what the header announced. Each frame
 * with ENCRYPTED clear is also sealed in both modes and opened again, which must give back
 * the same fields and bytes, and the sealed copy with one byte changed (chosen by the input)
 * must be refused. Any other outcome abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cb_err.h"
#include "cb_seal.h"

#define FUZZ_BUF (4096u + 512u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The key of the seed corpus: bytes 0, 1, ..., 31. */
static cb_seal_key fuzz_key(void)
{
    cb_seal_key k;
    for (size_t i = 0; i < sizeof k.bytes; i++) {
        k.bytes[i] = (uint8_t)i;
    }
    return k;
}

static int fuzz_err_documented(long rc)
{
    return rc == CB_ERR_CODEC_MISMATCH || rc == CB_ERR_MALFORMED || rc == CB_ERR_AUTH_FAILED ||
           rc == CB_ERR_REPLAY || rc == CB_ERR_FULL;
}

static void fuzz_check_open(long rc, const cb_frame *sealed, const cb_frame *plain)
{
    if (rc < 0) {
        if (!fuzz_err_documented(rc)) {
            abort();
        }
        return;
    }
    if ((size_t)rc != (size_t)plain->key_len + plain->value_len ||
        plain->key_len != sealed->key_len || plain->value_len >= sealed->value_len ||
        (plain->flags & CB_FLAG_ENCRYPTED) != 0) {
        abort();
    }
}

/* Seal `f` in `mode`, open it, compare; then change byte `flip_at` and expect a refusal. */
static void fuzz_round_trip(const cb_frame *f, uint8_t mode, size_t flip_at)
{
    static uint8_t sealed[FUZZ_BUF], out[FUZZ_BUF];
    cb_seal_key k = fuzz_key();
    cb_rng rng;
    cb_rng_init(&rng, 1);
    cb_seal_tx tx;
    cb_seal_rx rx;
    if (cb_seal_tx_init(&tx, mode, CB_SEAL_SERVER_TO_CLIENT, &rng) != CB_ERR_OK ||
        cb_seal_rx_init(&rx, mode, CB_SEAL_SERVER_TO_CLIENT) != CB_ERR_OK) {
        abort();
    }
    long n = cb_seal_frame(&tx, &k, f, sealed, sizeof sealed);
    if (n < 0) {
        abort(); /* every decoded clear frame below the buffer's size can be sealed */
    }
    cb_frame_limits lim = {.value_bytes_max = FUZZ_BUF};
    cb_frame s, plain;
    if (cb_frame_decode(sealed, (size_t)n, &lim, &s) != n) {
        abort();
    }
    /* A changed header byte must fail the decode or the open: decode the changed copy. */
    cb_seal_rx rx_copy = rx;
    cb_frame bad;
    sealed[flip_at % (size_t)n] ^= 0x20;
    if (cb_frame_decode(sealed, (size_t)n, &lim, &bad) == n &&
        cb_seal_open(&rx_copy, &k, &bad, out, sizeof out, &plain) >= 0) {
        abort();
    }
    sealed[flip_at % (size_t)n] ^= 0x20;
    long m = cb_seal_open(&rx, &k, &s, out, sizeof out, &plain);
    if (m != (long)f->key_len + (long)f->value_len || plain.request_id != f->request_id ||
        plain.flags != f->flags || plain.value_len != f->value_len || plain.cas != f->cas ||
        (f->key_len > 0 && memcmp(plain.key, f->key, f->key_len) != 0) ||
        (f->value_len > 0 && memcmp(plain.value, f->value, f->value_len) != 0)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[FUZZ_BUF];
    if (data == NULL) {
        return 0; /* only an empty input can come as NULL */
    }
    cb_seal_key k = fuzz_key();
    cb_seal_rx stream, dgram;
    if (cb_seal_rx_init(&stream, CB_SEAL_STREAM, CB_SEAL_SERVER_TO_CLIENT) != CB_ERR_OK ||
        cb_seal_rx_init(&dgram, CB_SEAL_DATAGRAM, CB_SEAL_SERVER_TO_CLIENT) != CB_ERR_OK) {
        abort();
    }
    cb_frame_limits lim = {.value_bytes_max = 4096};
    size_t off = 0;
    for (;;) {
        cb_frame f, plain;
        long rc = cb_frame_decode(data + off, size - off, &lim, &f);
        if (rc < 0) {
            break;
        }
        fuzz_check_open(cb_seal_open(&stream, &k, &f, out, sizeof out, &plain), &f, &plain);
        fuzz_check_open(cb_seal_open(&dgram, &k, &f, out, sizeof out, &plain), &f, &plain);
        if ((f.flags & CB_FLAG_ENCRYPTED) == 0) {
            fuzz_round_trip(&f, CB_SEAL_STREAM, off + (size_t)f.request_id);
            fuzz_round_trip(&f, CB_SEAL_DATAGRAM, off + (size_t)f.opaque);
        }
        off += (size_t)rc;
    }
    return 0;
}
