/*
 * fuzz_cb_queue.c: libFuzzer target for the queue envelope (protocols/cb_queue.h), decoding
 * and round-trip in one, plus the stream reader and the broker fed the same bytes.
 *
 * Envelopes are decoded back to back until the decoder asks for more bytes or reports an
 * error. Each one is re-encoded, which must reproduce its bytes exactly (the encoding is
 * canonical), and every strict prefix of it must give CB_ERR_NEED_MORE. The same input is
 * then fed to a cb_queue_reader in chunks sized by its first byte, which must yield the same
 * envelopes, and to a small cb_broker (drained after every call), which must never crash.
 * An undocumented error code abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cb_broker.h"
#include "cb_err.h"
#include "cb_queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_PAYLOAD_MAX 4096u

static int fuzz_err_documented(long rc)
{
    return rc == CB_ERR_NEED_MORE || rc == CB_ERR_BAD_MAGIC || rc == CB_ERR_BAD_VERSION ||
           rc == CB_ERR_BAD_OPCODE || rc == CB_ERR_BAD_FLAGS || rc == CB_ERR_MALFORMED ||
           rc == CB_ERR_TOO_LARGE;
}

static void fuzz_round_trip(const uint8_t *orig, size_t len, const cb_queue_msg *m)
{
    uint8_t *enc = malloc(len);
    if (enc == NULL) {
        abort();
    }
    if (cb_queue_encode(m, enc, len) != (long)len || memcmp(enc, orig, len) != 0) {
        abort();
    }
    free(enc);
    for (size_t n = 0; n < len; n++) {
        cb_queue_msg p;
        if (cb_queue_decode(orig, n, FUZZ_PAYLOAD_MAX, &p) != CB_ERR_NEED_MORE) {
            abort();
        }
    }
}

/* Decode back to back; returns how many envelopes decoded. */
static size_t fuzz_decode(const uint8_t *data, size_t size)
{
    size_t off = 0, count = 0;
    for (;;) {
        cb_queue_msg m;
        long rc = cb_queue_decode(data + off, size - off, FUZZ_PAYLOAD_MAX, &m);
        if (rc < 0) {
            if (!fuzz_err_documented(rc)) {
                abort();
            }
            return count;
        }
        if ((size_t)rc > size - off || (size_t)rc != cb_queue_encoded_len(&m)) {
            abort();
        }
        fuzz_round_trip(data + off, (size_t)rc, &m);
        off += (size_t)rc;
        count++;
    }
}

/* The reader must find the same envelopes whatever the chunking. */
static void fuzz_reader(const uint8_t *data, size_t size, size_t want)
{
    size_t chunk = size > 0 ? 1 + data[0] % 64 : 1;
    cb_queue_reader r;
    memset(&r, 0, sizeof r);
    size_t off = 0, got = 0;
    int broken = 0;
    while (off < size && !broken) {
        size_t n = chunk < size - off ? chunk : size - off;
        const uint8_t *in = data + off;
        size_t in_len = n;
        for (;;) {
            cb_queue_msg m;
            int rc = cb_queue_reader_next(&r, &in, &in_len, FUZZ_PAYLOAD_MAX, NULL, &m);
            if (rc == 0) {
                break;
            }
            if (rc < 0) {
                if (!fuzz_err_documented(rc) || rc == CB_ERR_NEED_MORE) {
                    abort();
                }
                broken = 1;
                break;
            }
            got++;
        }
        off += n;
    }
    if (got != want) {
        abort();
    }
    cb_queue_reader_free(&r, NULL);
}

static void fuzz_broker(const uint8_t *data, size_t size)
{
    cb_broker_config c = cb_broker_config_default();
    c.conn_max = 2;
    c.node_max = 4;
    c.queue_limit = 8;
    c.service_ns = 10;
    c.ack_timeout_ns = 100;
    c.delivery_max = 3;
    c.payload_bytes_max = FUZZ_PAYLOAD_MAX;
    c.outbox_actions = 8;
    cb_broker *b = NULL;
    if (cb_broker_new(&c, NULL, &b) != CB_ERR_OK) {
        abort();
    }
    uint64_t now = 0;
    size_t off = 0;
    cb_action a[8];
    while (off < size) {
        uint32_t conn = (uint32_t)(off / 97) % 2;
        long rc = cb_broker_on_bytes(b, conn, data + off, size - off, now);
        if (rc < 0 || (size_t)rc > size - off) {
            abort();
        }
        off += (size_t)rc;
        while (cb_broker_drain(b, a, 8) > 0) {
        }
        now += 50;
        if (cb_broker_on_timer(b, now) != CB_ERR_OK && cb_broker_drain(b, a, 8) == 0) {
            abort();
        }
        while (cb_broker_drain(b, a, 8) > 0) {
        }
        if (rc == 0 && cb_broker_on_close(b, conn, now) != CB_ERR_OK) {
            abort();
        }
    }
    cb_broker_del(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (data == NULL) {
        return 0;
    }
    size_t count = fuzz_decode(data, size);
    fuzz_reader(data, size, count);
    fuzz_broker(data, size);
    return 0;
}
