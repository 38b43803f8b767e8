/*
 * fuzz_cb_textreply.c: libFuzzer target for the text reply parser (protocols/cb_textreply.h)
 * and cb_client's text mode.
 *
 * Byte 0 picks the operation (cb_op), byte 1 the chunk size; the rest is a reply stream.
 * It is parsed reply after reply as the client does, each result checked against the
 * header's contract (consumed within the input, views inside it, values within the limit,
 * only documented errors, every strict prefix of a reply NEED_MORE), until the parser asks
 * for more or fails. Then the same stream is fed in chunks to a text-mode client with 8
 * requests of that op in flight: every byte is taken or the peer closed, and every request
 * ends with exactly one outcome. Any violation abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cb_client.h"
#include "cb_err.h"
#include "cb_frame.h"
#include "cb_textreply.h"

#define FUZZ_VMAX 64u
#define FUZZ_REQS 8u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_reply(const cb_text_reply *r, const uint8_t *buf, size_t len, long rc)
{
    if (rc <= 0 || (size_t)rc != r->consumed || r->consumed > len || r->value_len > FUZZ_VMAX) {
        abort();
    }
    if (r->value_len > 0 && (r->value < buf || r->value + r->value_len > buf + len)) {
        abort();
    }
    if (r->key_len > CB_KEY_BYTES_MAX ||
        (r->key_len > 0 && (r->key < buf || r->key + r->key_len > buf + len))) {
        abort();
    }
    for (size_t k = 0; k < r->consumed && k < 512; k++) {
        cb_text_reply p;
        if (cb_text_parse_reply(buf, k, 0, FUZZ_VMAX, &p) != CB_ERR_INVALID) {
            abort(); /* op 0 is not an op */
        }
    }
}

static void fuzz_parse(uint8_t op, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        cb_text_reply r;
        long rc = cb_text_parse_reply(buf + off, len - off, op, FUZZ_VMAX, &r);
        if (rc == CB_ERR_NEED_MORE || rc == CB_ERR_TOO_LARGE || rc == CB_ERR_MALFORMED ||
            rc == CB_ERR_VALUE_TOO_LARGE) {
            return;
        }
        fuzz_check_reply(&r, buf + off, len - off, rc);
        for (size_t k = 0; k < r.consumed && k < 512; k++) {
            cb_text_reply p;
            if (cb_text_parse_reply(buf + off, k, op, FUZZ_VMAX, &p) != CB_ERR_NEED_MORE) {
                abort(); /* a strict prefix of a reply is never a reply or an error */
            }
        }
        off += r.consumed;
    }
}

static size_t fuzz_drain(cb_client *cli, uint32_t *completed)
{
    cb_action acts[64];
    size_t n, closes = 0;
    while ((n = cb_client_drain(cli, acts, 64)) > 0) {
        for (size_t i = 0; i < n; i++) {
            *completed += acts[i].kind == CB_ACTION_COMPLETE;
            closes += acts[i].kind == CB_ACTION_CLOSE;
        }
    }
    return closes;
}

static void fuzz_client(uint8_t op, size_t chunk, const uint8_t *buf, size_t len)
{
    cb_client_config c = cb_client_config_default();
    c.value_bytes_max = FUZZ_VMAX;
    c.protocol = CB_CLIENT_PROTOCOL_TEXT;
    cb_rng rng;
    cb_rng_init(&rng, 1);
    cb_client *cli = NULL;
    if (cb_client_new(&c, &rng, NULL, &cli) != CB_ERR_OK) {
        abort();
    }
    int keyed = op != CB_OP_FLUSH && op != CB_OP_STATS && op != CB_OP_NOOP;
    int store = op >= CB_OP_SET && op <= CB_OP_CAS;
    cb_client_op o = {.op = op,
                      .key = (const uint8_t *)"k",
                      .key_len = keyed ? 1 : 0,
                      .value = (const uint8_t *)"v",
                      .value_len = store ? 1 : 0};
    uint32_t completed = 0;
    for (uint32_t i = 0; i < FUZZ_REQS; i++) {
        if (cb_client_request(cli, 0, &o, 0, NULL) != CB_ERR_OK) {
            abort();
        }
    }
    size_t off = 0, closed = fuzz_drain(cli, &completed);
    while (off < len && closed == 0) {
        size_t n = len - off < chunk ? len - off : chunk;
        long rc = cb_client_on_bytes(cli, 0, buf + off, n, 1);
        closed += fuzz_drain(cli, &completed);
        if (rc < 0 && closed == 0) {
            abort(); /* an error always closes the peer */
        }
        if (rc >= 0 && (size_t)rc != n) {
            abort(); /* with the outbox drained, every byte is taken */
        }
        off += n;
    }
    if (cb_client_on_timer(cli, UINT64_MAX / 2) != CB_ERR_OK) {
        abort();
    }
    (void)fuzz_drain(cli, &completed);
    if (completed != FUZZ_REQS || cb_client_outstanding(cli) != 0) {
        abort();
    }
    cb_client_del(cli);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (data == NULL || size < 2) {
        return 0;
    }
    uint8_t op = (uint8_t)(1u + data[0] % 14u);
    size_t chunk = 1u + data[1] % 64u;
    fuzz_parse(op, data + 2, size - 2);
    fuzz_client(op, chunk, data + 2, size - 2);
    return 0;
}
