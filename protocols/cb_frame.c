/*
 * cb_frame.c: encoder and incremental decoder for cachebed's binary frame (cb_frame.h).
 *
 * The wire layout is docs/protocol.md §2. Integers are written and read one byte at a time,
 * most significant first, so the code is the same on every host and never makes an
 * unaligned access. The decoder validates each header field as soon as its bytes are present,
 * in field order (docs/protocol.md §7.2): a stream that can never become a valid frame is
 * rejected at the first byte that proves it, and a valid prefix gives CB_ERR_NEED_MORE.
 *
 * Sans-IO: no allocation, no I/O, no mutable static data.
 */
#include "cb_frame.h"

#include <assert.h>
#include <string.h>

#include "cb_err.h"

/* Header field offsets (docs/protocol.md §2). */
enum {
    FRAME_OFF_MAGIC = 0,
    FRAME_OFF_VERSION = 2,
    FRAME_OFF_OPCODE = 3,
    FRAME_OFF_FLAGS = 4,
    FRAME_OFF_KEY_LEN = 5,
    FRAME_OFF_STATUS = 6,
    FRAME_OFF_REQUEST_ID = 8,
    FRAME_OFF_VALUE_LEN = 12,
    FRAME_OFF_TTL_MS = 16,
    FRAME_OFF_OPAQUE = 20,
    FRAME_OFF_CAS = 24,
    FRAME_OFF_ARG = 32,
    FRAME_OFF_END = 40,
};

_Static_assert(FRAME_OFF_END == CB_FRAME_HEADER_BYTES, "offsets cover the whole header");
_Static_assert(CB_FRAME_HEADER_BYTES + 255u + (uint64_t)CB_VALUE_BYTES_LIMIT <= INT32_MAX,
               "every valid frame length fits a long, even a 32-bit one");

const char *cb_op_name(int op)
{
    switch (op) {
#define CB_OP_TEXT(name, code, text)                                                               \
    case code:                                                                                     \
        return text;
        CB_OP_LIST(CB_OP_TEXT)
#undef CB_OP_TEXT
    default:
        return "unknown";
    }
}

int cb_op_valid(int op)
{
    switch (op) {
#define CB_OP_CASE(name, code, text) case code:
        CB_OP_LIST(CB_OP_CASE)
#undef CB_OP_CASE
        return 1;
    default:
        return 0;
    }
}

const char *cb_status_name(int status)
{
    switch (status) {
#define CB_STATUS_TEXT(name, code, text)                                                           \
    case code:                                                                                     \
        return text;
        CB_STATUS_LIST(CB_STATUS_TEXT)
#undef CB_STATUS_TEXT
    default:
        return "unknown status";
    }
}

static int frame_status_known(unsigned status)
{
    switch (status) {
#define CB_STATUS_CASE(name, code, text) case code:
        CB_STATUS_LIST(CB_STATUS_CASE)
#undef CB_STATUS_CASE
        return 1;
    default:
        return 0;
    }
}

/*
 * A request carries status 0; a reply carries one of CB_STATUS_LIST (docs/protocol.md §4).
 * Anything else is a reserved value, so the frame is malformed.
 */
static int frame_status_valid(unsigned flags, unsigned status)
{
    if ((flags & CB_FLAG_RESPONSE) == 0) {
        return status == 0;
    }
    return frame_status_known(status);
}

cb_frame_limits cb_frame_limits_default(void)
{
    cb_frame_limits lim = {.value_bytes_max = CB_VALUE_BYTES_MAX_DEFAULT};
    return lim;
}

size_t cb_frame_encoded_len(const cb_frame *f)
{
    return (size_t)CB_FRAME_HEADER_BYTES + f->key_len + (size_t)f->value_len;
}

static void frame_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void frame_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void frame_put_u64(uint8_t *p, uint64_t v)
{
    frame_put_u32(p, (uint32_t)(v >> 32));
    frame_put_u32(p + 4, (uint32_t)v);
}

static uint16_t frame_get_u16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t frame_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t frame_get_u64(const uint8_t *p)
{
    return (uint64_t)frame_get_u32(p) << 32 | frame_get_u32(p + 4);
}

/* The checks cb_frame_encode and cb_frame_encode_header share, in header field order. */
static long frame_check_encodable(const cb_frame *f)
{
    if (!cb_op_valid(f->opcode)) {
        return CB_ERR_BAD_OPCODE;
    }
    if ((f->flags & ~CB_FLAG_MASK) != 0) {
        return CB_ERR_BAD_FLAGS;
    }
    if (f->key_len > CB_KEY_BYTES_MAX) {
        return CB_ERR_KEY_TOO_LONG;
    }
    if (!frame_status_valid(f->flags, f->status)) {
        return CB_ERR_INVALID;
    }
    if (f->value_len > CB_VALUE_BYTES_LIMIT) {
        return CB_ERR_VALUE_TOO_LARGE;
    }
    return CB_ERR_OK;
}

static void frame_write_header(const cb_frame *f, uint8_t *out)
{
    frame_put_u16(out + FRAME_OFF_MAGIC, (uint16_t)CB_FRAME_MAGIC);
    out[FRAME_OFF_VERSION] = (uint8_t)CB_FRAME_VERSION;
    out[FRAME_OFF_OPCODE] = f->opcode;
    out[FRAME_OFF_FLAGS] = f->flags;
    out[FRAME_OFF_KEY_LEN] = f->key_len;
    frame_put_u16(out + FRAME_OFF_STATUS, f->status);
    frame_put_u32(out + FRAME_OFF_REQUEST_ID, f->request_id);
    frame_put_u32(out + FRAME_OFF_VALUE_LEN, f->value_len);
    frame_put_u32(out + FRAME_OFF_TTL_MS, f->ttl_ms);
    frame_put_u32(out + FRAME_OFF_OPAQUE, f->opaque);
    frame_put_u64(out + FRAME_OFF_CAS, f->cas);
    frame_put_u64(out + FRAME_OFF_ARG, f->arg);
}

long cb_frame_encode_header(const cb_frame *f, uint8_t *out, size_t out_cap)
{
    if (f == NULL) {
        return CB_ERR_INVALID;
    }
    long rc = frame_check_encodable(f);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    if (out == NULL || out_cap < CB_FRAME_HEADER_BYTES) {
        return CB_ERR_FULL;
    }
    frame_write_header(f, out);
    return (long)CB_FRAME_HEADER_BYTES;
}

long cb_frame_encode(const cb_frame *f, uint8_t *out, size_t out_cap)
{
    if (f == NULL) {
        return CB_ERR_INVALID;
    }
    long rc = frame_check_encodable(f);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    if ((f->key_len > 0 && f->key == NULL) || (f->value_len > 0 && f->value == NULL)) {
        return CB_ERR_INVALID;
    }
    /* value_len <= CB_VALUE_BYTES_LIMIT was checked, so this sum cannot wrap. */
    size_t total = cb_frame_encoded_len(f);
    if (out == NULL || out_cap < total) {
        return CB_ERR_FULL;
    }
    frame_write_header(f, out);
    if (f->key_len > 0) {
        memcpy(out + CB_FRAME_HEADER_BYTES, f->key, f->key_len);
    }
    if (f->value_len > 0) {
        memcpy(out + CB_FRAME_HEADER_BYTES + f->key_len, f->value, f->value_len);
    }
    return (long)total;
}

/* 1 when buf[0..buf_len) holds the whole field that ends at offset `end`. */
static int frame_has(size_t buf_len, size_t end)
{
    return buf_len >= end;
}

/*
 * Validate the header fields that buf[0..buf_len) already holds, in field order, so that an
 * invalid prefix is rejected as early as it can be (docs/protocol.md §7.2). Returns CB_ERR_OK
 * when every field present is valid, whatever buf_len is.
 */
static long frame_check_prefix(const uint8_t *buf, size_t buf_len, uint32_t value_bytes_max)
{
    if (frame_has(buf_len, 1) && buf[0] != (uint8_t)(CB_FRAME_MAGIC >> 8)) {
        return CB_ERR_BAD_MAGIC;
    }
    if (frame_has(buf_len, 2) && buf[1] != (uint8_t)CB_FRAME_MAGIC) {
        return CB_ERR_BAD_MAGIC;
    }
    if (frame_has(buf_len, FRAME_OFF_OPCODE) && buf[FRAME_OFF_VERSION] != CB_FRAME_VERSION) {
        return CB_ERR_BAD_VERSION;
    }
    if (frame_has(buf_len, FRAME_OFF_FLAGS) && !cb_op_valid(buf[FRAME_OFF_OPCODE])) {
        return CB_ERR_BAD_OPCODE;
    }
    if (frame_has(buf_len, FRAME_OFF_KEY_LEN) && (buf[FRAME_OFF_FLAGS] & ~CB_FLAG_MASK) != 0) {
        return CB_ERR_BAD_FLAGS;
    }
    if (frame_has(buf_len, FRAME_OFF_STATUS) && buf[FRAME_OFF_KEY_LEN] > CB_KEY_BYTES_MAX) {
        return CB_ERR_KEY_TOO_LONG;
    }
    if (frame_has(buf_len, FRAME_OFF_REQUEST_ID) &&
        !frame_status_valid(buf[FRAME_OFF_FLAGS], frame_get_u16(buf + FRAME_OFF_STATUS))) {
        return CB_ERR_MALFORMED;
    }
    if (frame_has(buf_len, FRAME_OFF_TTL_MS) &&
        frame_get_u32(buf + FRAME_OFF_VALUE_LEN) > value_bytes_max) {
        return CB_ERR_VALUE_TOO_LARGE;
    }
    return CB_ERR_OK;
}

static void frame_read_header(const uint8_t *buf, cb_frame *f)
{
    f->version = buf[FRAME_OFF_VERSION];
    f->opcode = buf[FRAME_OFF_OPCODE];
    f->flags = buf[FRAME_OFF_FLAGS];
    f->key_len = buf[FRAME_OFF_KEY_LEN];
    f->status = frame_get_u16(buf + FRAME_OFF_STATUS);
    f->request_id = frame_get_u32(buf + FRAME_OFF_REQUEST_ID);
    f->value_len = frame_get_u32(buf + FRAME_OFF_VALUE_LEN);
    f->ttl_ms = frame_get_u32(buf + FRAME_OFF_TTL_MS);
    f->opaque = frame_get_u32(buf + FRAME_OFF_OPAQUE);
    f->cas = frame_get_u64(buf + FRAME_OFF_CAS);
    f->arg = frame_get_u64(buf + FRAME_OFF_ARG);
    f->key = NULL;
    f->value = NULL;
}

long cb_frame_decode_header(const uint8_t *buf, size_t buf_len, const cb_frame_limits *lim,
                            cb_frame *f)
{
    if (f == NULL || (buf == NULL && buf_len > 0)) {
        return CB_ERR_INVALID;
    }
    /* A configured maximum above the hard limit is clamped to it (cb_frame.h). */
    uint32_t value_bytes_max = CB_VALUE_BYTES_MAX_DEFAULT;
    if (lim != NULL) {
        value_bytes_max = lim->value_bytes_max;
    }
    if (value_bytes_max > CB_VALUE_BYTES_LIMIT) {
        value_bytes_max = CB_VALUE_BYTES_LIMIT;
    }
    long rc = frame_check_prefix(buf, buf_len, value_bytes_max);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    if (buf_len < CB_FRAME_HEADER_BYTES) {
        return CB_ERR_NEED_MORE;
    }
    frame_read_header(buf, f);
    return (long)CB_FRAME_HEADER_BYTES;
}

long cb_frame_decode(const uint8_t *buf, size_t buf_len, const cb_frame_limits *lim, cb_frame *f)
{
    long rc = cb_frame_decode_header(buf, buf_len, lim, f);
    if (rc < 0) {
        return rc;
    }
    size_t off = CB_FRAME_HEADER_BYTES;
    assert(off <= buf_len);
    /* value_len <= CB_VALUE_BYTES_LIMIT (checked above), so `need` cannot wrap. */
    size_t need = (size_t)f->key_len + f->value_len;
    if (buf_len - off < need) {
        return CB_ERR_NEED_MORE;
    }
    if (f->key_len > 0) {
        f->key = buf + off;
    }
    if (f->value_len > 0) {
        f->value = buf + off + f->key_len;
    }
    return (long)(off + need);
}
