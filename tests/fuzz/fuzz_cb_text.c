/*
 * fuzz_cb_text.c: libFuzzer target for the memcached text parser (protocols/cb_text.h).
 *
 * The input is a byte stream parsed request after request, as the server does: each request
 * is skipped by its `consumed` bytes and then up to `swallow_bytes` more, until the parser
 * asks for more bytes, reports a line too long, or a request closes the connection. Every
 * result is checked against the header's contract (views inside the input, keys within
 * CB_KEY_BYTES_MAX, values within the limit, cmd and error exclusive, only documented error
 * codes), each request's strict prefixes up to its line end must be NEED_MORE, and each
 * parsed meta request is fed to the reply encoder. Any violation abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cb_err.h"
#include "cb_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_view(const uint8_t *p, size_t len, const uint8_t *buf, size_t buf_len)
{
    if (len == 0) {
        return;
    }
    if (p < buf || p > buf + buf_len || len > (size_t)(buf + buf_len - p)) {
        abort();
    }
}

static void fuzz_check_request(const cb_text_request *r, const uint8_t *buf, size_t len,
                               const cb_text_limits *lim)
{
    if (r->consumed == 0 || r->consumed > len || (r->cmd != 0) == (r->error != 0)) {
        abort();
    }
    if (r->key_len > CB_KEY_BYTES_MAX || r->value_len > lim->value_bytes_max ||
        r->opaque_len > CB_TEXT_OPAQUE_BYTES_MAX || r->meta_ret_count > CB_TEXT_META_RETURN_MAX) {
        abort();
    }
    fuzz_check_view(r->key, r->key_len, buf, len);
    fuzz_check_view(r->keys, r->keys_len, buf, len);
    fuzz_check_view(r->value, r->value_len, buf, len);
    fuzz_check_view(r->opaque, r->opaque_len, buf, len);
    size_t cursor = 0, klen;
    const uint8_t *k;
    while (r->cmd >= CB_TEXT_CMD_GET && r->cmd <= CB_TEXT_CMD_GATS &&
           cb_text_next_key(r, &cursor, &k, &klen)) {
        if (klen == 0 || klen > CB_KEY_BYTES_MAX) {
            abort();
        }
    }
    uint8_t out[1024]; /* VA, every return flag at its longest, k and O included */
    cb_text_meta_item item = {.cas = UINT64_MAX, .flags = UINT32_MAX, .ttl_s = -1, .size = 1};
    if (r->cmd >= CB_TEXT_CMD_MG &&
        cb_text_encode_meta(out, sizeof out, "VA", SIZE_MAX, r, &item) <= 0) {
        abort();
    }
}

/* The line of a request ends at consumed or before; no shorter prefix is a request. */
static void fuzz_check_prefixes(const uint8_t *buf, size_t consumed, const cb_text_limits *lim)
{
    const uint8_t *nl = memchr(buf, '\n', consumed);
    size_t line = nl ? (size_t)(nl - buf) : consumed;
    for (size_t n = 0; n < line; n++) {
        cb_text_request r;
        if (cb_text_parse(buf, n, lim, &r) != CB_ERR_NEED_MORE) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A small limit so short inputs reach TOO_LARGE and swallowing. */
    cb_text_limits lim = {.value_bytes_max = 64};
    if (data == NULL) {
        return 0;
    }
    size_t off = 0;
    while (off < size) {
        cb_text_request r;
        long rc = cb_text_parse(data + off, size - off, &lim, &r);
        if (rc == CB_ERR_NEED_MORE || rc == CB_ERR_TOO_LARGE) {
            break;
        }
        if (rc <= 0 || (size_t)rc != r.consumed) {
            abort();
        }
        fuzz_check_request(&r, data + off, size - off, &lim);
        fuzz_check_prefixes(data + off, r.consumed, &lim);
        off += r.consumed;
        if (r.close) {
            break;
        }
        off += r.swallow_bytes < size - off ? (size_t)r.swallow_bytes : size - off;
    }
    return 0;
}
