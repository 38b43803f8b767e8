/*
 * cb_queue.c: the queue transport's envelope (cb_queue.h, docs/protocol.md §10).
 *
 * Integers are written and read one byte at a time, most significant first. The decoder
 * checks each field once its bytes are present, in field order, so a stream that can never
 * become an envelope is refused at the first byte that proves it.
 *
 * Sans-IO: the reader allocates through the caller's cb_alloc only.
 */
#include "cb_queue.h"

#include <assert.h>
#include <string.h>

#include "cb_err.h"
#include "cb_seal.h"

enum {
    QUEUE_OFF_MAGIC = 0,
    QUEUE_OFF_VERSION = 2,
    QUEUE_OFF_KIND = 3,
    QUEUE_OFF_FLAGS = 4,
    QUEUE_OFF_REASON = 5,
    QUEUE_OFF_DELIVERY = 6,
    QUEUE_OFF_DST = 8,
    QUEUE_OFF_SRC = 12,
    QUEUE_OFF_MESSAGE_ID = 16,
    QUEUE_OFF_PAYLOAD_LEN = 24,
    QUEUE_OFF_END = 28,
};

_Static_assert(QUEUE_OFF_END == CB_QUEUE_HEADER_BYTES, "offsets cover the whole header");
_Static_assert(CB_SEAL_OVERHEAD_MAX <= 64u, "a sealed maximal frame fits the payload limit");
_Static_assert((uint64_t)CB_QUEUE_HEADER_BYTES + CB_QUEUE_PAYLOAD_BYTES_LIMIT <= INT32_MAX,
               "every envelope length fits a long, even a 32-bit one");

const char *cb_queue_kind_name(int kind)
{
    switch (kind) {
#define CB_QUEUE_KIND_TEXT(name, code, text)                                                       \
    case code:                                                                                     \
        return text;
        CB_QUEUE_KIND_LIST(CB_QUEUE_KIND_TEXT)
#undef CB_QUEUE_KIND_TEXT
    default:
        return "unknown";
    }
}

static int queue_kind_valid(unsigned kind)
{
    return kind >= CB_QUEUE_SUBSCRIBE && kind <= CB_QUEUE_NACK;
}

static int queue_has_payload(unsigned kind)
{
    return kind == CB_QUEUE_PUBLISH || kind == CB_QUEUE_DELIVER;
}

static void queue_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void queue_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint16_t queue_get16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t queue_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t queue_get64(const uint8_t *p)
{
    return (uint64_t)queue_get32(p) << 32 | queue_get32(p + 4);
}

/* The per-kind rules of the header table (cb_queue.h), shared by encoder and decoder. */
static int queue_reason_ok(unsigned kind, unsigned reason)
{
    if (kind == CB_QUEUE_NACK) {
        return reason >= 1 && reason <= CB_QUEUE_REASON_MAX;
    }
    return reason == 0;
}

static int queue_delivery_ok(unsigned kind, unsigned delivery)
{
    return kind == CB_QUEUE_DELIVER ? delivery >= 1 : delivery == 0;
}

static int queue_message_id_ok(unsigned kind, uint64_t id)
{
    return kind == CB_QUEUE_SUBSCRIBE ? id == 0 : id != 0;
}

static int queue_payload_len_ok(unsigned kind, uint32_t len)
{
    return queue_has_payload(kind) ? len >= 1 : len == 0;
}

size_t cb_queue_encoded_len(const cb_queue_msg *m)
{
    return CB_QUEUE_HEADER_BYTES + (size_t)m->payload_len;
}

long cb_queue_encode_header(const cb_queue_msg *m, uint8_t *out, size_t out_cap)
{
    if (m == NULL || !queue_kind_valid(m->kind) || !queue_reason_ok(m->kind, m->reason) ||
        !queue_delivery_ok(m->kind, m->delivery) || !queue_message_id_ok(m->kind, m->message_id) ||
        !queue_payload_len_ok(m->kind, m->payload_len)) {
        return CB_ERR_INVALID;
    }
    if (m->payload_len > CB_QUEUE_PAYLOAD_BYTES_LIMIT) {
        return CB_ERR_TOO_LARGE;
    }
    if (out == NULL || out_cap < CB_QUEUE_HEADER_BYTES) {
        return CB_ERR_FULL;
    }
    queue_put16(out + QUEUE_OFF_MAGIC, (uint16_t)CB_QUEUE_MAGIC);
    out[QUEUE_OFF_VERSION] = CB_QUEUE_VERSION;
    out[QUEUE_OFF_KIND] = m->kind;
    out[QUEUE_OFF_FLAGS] = 0;
    out[QUEUE_OFF_REASON] = m->reason;
    queue_put16(out + QUEUE_OFF_DELIVERY, m->delivery);
    queue_put32(out + QUEUE_OFF_DST, m->dst);
    queue_put32(out + QUEUE_OFF_SRC, m->src);
    queue_put32(out + QUEUE_OFF_MESSAGE_ID, (uint32_t)(m->message_id >> 32));
    queue_put32(out + QUEUE_OFF_MESSAGE_ID + 4, (uint32_t)m->message_id);
    queue_put32(out + QUEUE_OFF_PAYLOAD_LEN, m->payload_len);
    return CB_QUEUE_HEADER_BYTES;
}

long cb_queue_encode(const cb_queue_msg *m, uint8_t *out, size_t out_cap)
{
    if (m != NULL && m->payload_len > 0 && m->payload == NULL) {
        return CB_ERR_INVALID;
    }
    long rc = cb_queue_encode_header(m, out, out_cap);
    if (rc < 0) {
        return rc;
    }
    if (out_cap - CB_QUEUE_HEADER_BYTES < m->payload_len) {
        return CB_ERR_FULL;
    }
    if (m->payload_len > 0) {
        memcpy(out + CB_QUEUE_HEADER_BYTES, m->payload, m->payload_len);
    }
    return (long)cb_queue_encoded_len(m);
}

/* Check the header fields whose bytes are present; NEED_MORE when all present are valid. */
static long queue_check_header(const uint8_t *buf, size_t len, uint32_t payload_max)
{
    static const uint8_t magic[2] = {0xCB, 0x51};
    for (size_t i = 0; i < 2 && i < len; i++) {
        if (buf[i] != magic[i]) {
            return CB_ERR_BAD_MAGIC;
        }
    }
    if (len > QUEUE_OFF_VERSION && buf[QUEUE_OFF_VERSION] != CB_QUEUE_VERSION) {
        return CB_ERR_BAD_VERSION;
    }
    if (len <= QUEUE_OFF_KIND) {
        return CB_ERR_NEED_MORE;
    }
    unsigned kind = buf[QUEUE_OFF_KIND];
    if (!queue_kind_valid(kind)) {
        return CB_ERR_BAD_OPCODE;
    }
    if (len > QUEUE_OFF_FLAGS && buf[QUEUE_OFF_FLAGS] != 0) {
        return CB_ERR_BAD_FLAGS;
    }
    if (len > QUEUE_OFF_REASON && !queue_reason_ok(kind, buf[QUEUE_OFF_REASON])) {
        return CB_ERR_MALFORMED;
    }
    if (len >= QUEUE_OFF_DELIVERY + 2 &&
        !queue_delivery_ok(kind, queue_get16(buf + QUEUE_OFF_DELIVERY))) {
        return CB_ERR_MALFORMED;
    }
    if (len >= QUEUE_OFF_MESSAGE_ID + 8 &&
        !queue_message_id_ok(kind, queue_get64(buf + QUEUE_OFF_MESSAGE_ID))) {
        return CB_ERR_MALFORMED;
    }
    if (len < QUEUE_OFF_END) {
        return CB_ERR_NEED_MORE;
    }
    uint32_t plen = queue_get32(buf + QUEUE_OFF_PAYLOAD_LEN);
    if (!queue_payload_len_ok(kind, plen)) {
        return CB_ERR_MALFORMED;
    }
    if (plen > payload_max) {
        return CB_ERR_TOO_LARGE;
    }
    return CB_QUEUE_HEADER_BYTES;
}

static uint32_t queue_payload_max(uint32_t payload_bytes_max)
{
    if (payload_bytes_max == 0 || payload_bytes_max > CB_QUEUE_PAYLOAD_BYTES_LIMIT) {
        return CB_QUEUE_PAYLOAD_BYTES_LIMIT;
    }
    return payload_bytes_max;
}

long cb_queue_decode(const uint8_t *buf, size_t buf_len, uint32_t payload_bytes_max,
                     cb_queue_msg *m)
{
    if (m == NULL || (buf == NULL && buf_len > 0)) {
        return CB_ERR_INVALID;
    }
    long hr = queue_check_header(buf, buf_len, queue_payload_max(payload_bytes_max));
    if (hr < 0) {
        return hr;
    }
    m->kind = buf[QUEUE_OFF_KIND];
    m->reason = buf[QUEUE_OFF_REASON];
    m->delivery = queue_get16(buf + QUEUE_OFF_DELIVERY);
    m->dst = queue_get32(buf + QUEUE_OFF_DST);
    m->src = queue_get32(buf + QUEUE_OFF_SRC);
    m->message_id = queue_get64(buf + QUEUE_OFF_MESSAGE_ID);
    m->payload_len = queue_get32(buf + QUEUE_OFF_PAYLOAD_LEN);
    if (buf_len - CB_QUEUE_HEADER_BYTES < m->payload_len) {
        return CB_ERR_NEED_MORE;
    }
    m->payload = m->payload_len > 0 ? buf + CB_QUEUE_HEADER_BYTES : NULL;
    return (long)cb_queue_encoded_len(m);
}

void cb_queue_reader_free(cb_queue_reader *r, const cb_alloc *alloc)
{
    cb_alloc_free(alloc, r->buf);
    memset(r, 0, sizeof *r);
}

void cb_queue_reader_reset(cb_queue_reader *r)
{
    r->len = 0;
    r->need = 0;
}

static int reader_reserve(cb_queue_reader *r, size_t want, const cb_alloc *alloc)
{
    if (r->cap >= want) {
        return CB_ERR_OK;
    }
    size_t cap = r->cap < 256 ? 256 : r->cap;
    while (cap < want) {
        cap *= 2;
    }
    /* Never more than the envelope being assembled, once its length is known. */
    if (r->need != 0 && cap > r->need) {
        cap = r->need;
    }
    assert(cap >= want);
    uint8_t *grown = cb_alloc_malloc(alloc, cap);
    if (grown == NULL) {
        return CB_ERR_NOMEM;
    }
    if (r->len > 0) {
        memcpy(grown, r->buf, r->len);
    }
    cb_alloc_free(alloc, r->buf);
    r->buf = grown;
    r->cap = cap;
    return CB_ERR_OK;
}

static int reader_fill(cb_queue_reader *r, const uint8_t **in, size_t *in_len, size_t upto,
                       const cb_alloc *alloc)
{
    assert(r->len <= upto);
    size_t take = upto - r->len;
    if (take > *in_len) {
        take = *in_len;
    }
    int rc = reader_reserve(r, r->len + take, alloc);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    if (take > 0) {
        memcpy(r->buf + r->len, *in, take);
    }
    r->len += take;
    *in += take;
    *in_len -= take;
    return CB_ERR_OK;
}

static int reader_continue(cb_queue_reader *r, const uint8_t **in, size_t *in_len,
                           uint32_t payload_max, const cb_alloc *alloc, cb_queue_msg *m)
{
    if (r->need == 0) {
        int rc = reader_fill(r, in, in_len, CB_QUEUE_HEADER_BYTES, alloc);
        if (rc != CB_ERR_OK) {
            return rc;
        }
        long hr = queue_check_header(r->buf, r->len, payload_max);
        if (hr == CB_ERR_NEED_MORE) {
            return 0;
        }
        if (hr < 0) {
            cb_queue_reader_reset(r);
            return (int)hr;
        }
        r->need = CB_QUEUE_HEADER_BYTES + (size_t)queue_get32(r->buf + QUEUE_OFF_PAYLOAD_LEN);
    }
    int rc = reader_fill(r, in, in_len, r->need, alloc);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    if (r->len < r->need) {
        return 0;
    }
    long dr = cb_queue_decode(r->buf, r->len, payload_max, m);
    assert(dr == (long)r->need); /* the header passed, exactly one envelope is held */
    cb_queue_reader_reset(r);
    return dr > 0 ? 1 : (int)dr;
}

int cb_queue_reader_next(cb_queue_reader *r, const uint8_t **in, size_t *in_len,
                         uint32_t payload_bytes_max, const cb_alloc *alloc, cb_queue_msg *m)
{
    uint32_t payload_max = queue_payload_max(payload_bytes_max);
    if (r->len > 0) {
        return reader_continue(r, in, in_len, payload_max, alloc, m);
    }
    if (*in_len == 0) {
        return 0;
    }
    long rc = cb_queue_decode(*in, *in_len, payload_max, m);
    if (rc > 0) {
        *in += rc;
        *in_len -= (size_t)rc;
        return 1;
    }
    if (rc != CB_ERR_NEED_MORE) {
        return (int)rc;
    }
    return reader_continue(r, in, in_len, payload_max, alloc, m);
}
