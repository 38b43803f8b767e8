/*
 * cb_frame.h: cachebed's binary frame — encoder and incremental decoder.
 *
 * Every request and every reply between cachebed clients and servers is one frame: a fixed
 * 40-byte header, then the key, then the value. The byte layout is specified in
 * docs/protocol.md §2; all integers are big-endian.
 *
 *   off size field        off size field
 *   0   2    magic 0xCB 0xED      16  4    ttl_ms
 *   2   1    version (1)          20  4    opaque
 *   3   1    opcode               24  8    cas
 *   4   1    flags                32  8    arg (incr/decr delta; their reply's new value)
 *   5   1    key_len (<= 250)     40  key_len bytes of key
 *   6   2    status               ..  value_len bytes of value
 *   8   4    request_id
 *   12  4    value_len
 *
 * The decoder is incremental in the picohttpparser sense: the caller hands it whatever bytes
 * it has buffered, and it returns either a whole frame (bytes consumed, > 0), or
 * CB_ERR_NEED_MORE when the bytes end mid-frame, or a distinct negative error for a frame
 * that can never become valid. Each header field is checked as soon as its bytes are there,
 * in field order (docs/protocol.md §7.2): a wrong magic byte is rejected after 1 byte, and a
 * frame announcing a 2 GiB value after 16, not after 2 GiB. Nothing is allocated or copied:
 * the decoded frame's key and value point into the caller's buffer.
 */
#ifndef CB_FRAME_H
#define CB_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "cb_limits.h"

#define CB_FRAME_MAGIC        0xCBEDu
#define CB_FRAME_VERSION      1u
#define CB_FRAME_HEADER_BYTES 40u

/* Opcodes (docs/protocol.md §3). memcached semantics; GET always returns the CAS. */
#define CB_OP_LIST(X)                                                                              \
    X(GET, 0x01, "get")                                                                            \
    X(SET, 0x02, "set")                                                                            \
    X(ADD, 0x03, "add")                                                                            \
    X(REPLACE, 0x04, "replace")                                                                    \
    X(APPEND, 0x05, "append")                                                                      \
    X(PREPEND, 0x06, "prepend")                                                                    \
    X(CAS, 0x07, "cas")                                                                            \
    X(DELETE, 0x08, "delete")                                                                      \
    X(INCR, 0x09, "incr")                                                                          \
    X(DECR, 0x0A, "decr")                                                                          \
    X(TOUCH, 0x0B, "touch")                                                                        \
    X(FLUSH, 0x0C, "flush")                                                                        \
    X(STATS, 0x0D, "stats")                                                                        \
    X(NOOP, 0x0E, "noop")                                                                          \
    X(SCAN, 0x0F, "scan")                                                                          \
    X(HELLO, 0x10, "hello")

typedef enum {
#define CB_OP_ENUM(name, code, text) CB_OP_##name = (code),
    CB_OP_LIST(CB_OP_ENUM)
#undef CB_OP_ENUM
} cb_op;

/* Lower-case name of `op` ("get"); "unknown" for a value not in the list. */
const char *cb_op_name(int op);
/* 1 if `op` is a known opcode, else 0. */
int cb_op_valid(int op);

/* Flag bits (docs/protocol.md §2.2). Bits not listed here must be zero. */
#define CB_FLAG_COMPRESSED 0x01u /* value is compressed (algorithm in docs/protocol.md §5) */
#define CB_FLAG_ENCRYPTED  0x02u /* frame body is sealed (docs/protocol.md §6) */
#define CB_FLAG_QUIET      0x04u /* request: omit the routine reply (docs/protocol.md §2.2) */
#define CB_FLAG_RESPONSE   0x08u /* set on every reply, clear on every request */
#define CB_FLAG_MASK       0x0Fu

/* Reply statuses (docs/protocol.md §4). Requests carry status 0; other values are reserved. */
#define CB_STATUS_LIST(X)                                                                          \
    X(OK, 0, "ok")                                                                                 \
    X(NOT_FOUND, 1, "not found")                                                                   \
    X(EXISTS, 2, "exists")                                                                         \
    X(NOT_STORED, 3, "not stored")                                                                 \
    X(NOT_NUMBER, 4, "value is not a number")                                                      \
    X(TOO_LARGE, 5, "value too large")                                                             \
    X(NO_MEMORY, 6, "out of memory")                                                               \
    X(BAD_REQUEST, 7, "malformed request")                                                         \
    X(UNKNOWN_COMMAND, 8, "unknown command")

typedef enum {
#define CB_STATUS_ENUM(name, code, text) CB_STATUS_##name = (code),
    CB_STATUS_LIST(CB_STATUS_ENUM)
#undef CB_STATUS_ENUM
} cb_status;

/* Text for `status`; "unknown status" for a value not in the list. */
const char *cb_status_name(int status);

/*
 * One frame. When decoded, `key` and `value` point into the decoder's input buffer and are
 * valid as long as that buffer is; when encoding, they are read and copied into `out`.
 * key may be NULL when key_len is 0, value may be NULL when value_len is 0.
 */
typedef struct cb_frame {
    uint8_t version;
    uint8_t opcode;
    uint8_t flags;
    uint8_t key_len;
    uint16_t status;
    uint32_t request_id;
    uint32_t value_len;
    uint32_t ttl_ms;
    uint32_t opaque;
    uint64_t cas;
    uint64_t arg;
    const uint8_t *key;
    const uint8_t *value;
} cb_frame;

/*
 * Decoder limits. value_bytes_max must be <= CB_VALUE_BYTES_LIMIT; the decoder treats a larger
 * value as CB_VALUE_BYTES_LIMIT, so a bad configuration cannot lift the hard limit.
 */
typedef struct cb_frame_limits {
    uint32_t value_bytes_max;
} cb_frame_limits;

/* The default limits: value_bytes_max = CB_VALUE_BYTES_MAX_DEFAULT (1 MiB). */
cb_frame_limits cb_frame_limits_default(void);

/* Total encoded size of `f`: CB_FRAME_HEADER_BYTES + key_len + value_len. */
size_t cb_frame_encoded_len(const cb_frame *f);

/*
 * Encode `f` into out[0..out_cap). `f->version` is ignored (CB_FRAME_VERSION is written).
 * It refuses every frame that cb_frame_decode would reject with value_bytes_max set to
 * CB_VALUE_BYTES_LIMIT. Returns the number of bytes written (cb_frame_encoded_len(f)), or,
 * checked in this order:
 *   CB_ERR_INVALID      `f` is NULL;
 *   CB_ERR_BAD_OPCODE   f->opcode is not a known opcode;
 *   CB_ERR_BAD_FLAGS    f->flags has bits outside CB_FLAG_MASK;
 *   CB_ERR_KEY_TOO_LONG f->key_len > CB_KEY_BYTES_MAX;
 *   CB_ERR_INVALID      a request (CB_FLAG_RESPONSE clear) with a non-zero status, or a reply
 *                       whose status is not in CB_STATUS_LIST;
 *   CB_ERR_VALUE_TOO_LARGE f->value_len > CB_VALUE_BYTES_LIMIT;
 *   CB_ERR_INVALID      a NULL key/value with a non-zero length;
 *   CB_ERR_FULL         `out` is NULL or out_cap is smaller than the frame (nothing written).
 */
long cb_frame_encode(const cb_frame *f, uint8_t *out, size_t out_cap);

/*
 * Write only the 40-byte header of `f` into out (out_cap >= CB_FRAME_HEADER_BYTES), for
 * callers that send the key and value from their own buffers (gather writes).
 * Same checks and errors as cb_frame_encode, except that f->key and f->value are not read
 * (so they may be NULL) and CB_ERR_FULL means out_cap < CB_FRAME_HEADER_BYTES.
 * Returns CB_FRAME_HEADER_BYTES on success.
 */
long cb_frame_encode_header(const cb_frame *f, uint8_t *out, size_t out_cap);

/*
 * Decode the header at buf[0..buf_len) into `f` (key and value left NULL). `lim` NULL means
 * cb_frame_limits_default(). Never reads past buf[buf_len - 1]. Returns
 * CB_FRAME_HEADER_BYTES, or the first of these, in header field order, that the bytes
 * present already prove (docs/protocol.md §7.2):
 *   CB_ERR_BAD_MAGIC       byte 0 is not 0xCB, or byte 1 is not 0xED;
 *   CB_ERR_BAD_VERSION     byte 2 is not CB_FRAME_VERSION;
 *   CB_ERR_BAD_OPCODE      byte 3 is not a known opcode;
 *   CB_ERR_BAD_FLAGS       byte 4 has bits outside CB_FLAG_MASK;
 *   CB_ERR_KEY_TOO_LONG    key_len > CB_KEY_BYTES_MAX;
 *   CB_ERR_MALFORMED       a request with a non-zero status, or a reply whose status is not
 *                          in CB_STATUS_LIST (checked once both status bytes are there);
 *   CB_ERR_VALUE_TOO_LARGE value_len > lim->value_bytes_max (once its 4 bytes are there);
 *   CB_ERR_NEED_MORE       fewer than 40 bytes, all of them a valid prefix;
 *   CB_ERR_INVALID         `f` is NULL, or `buf` is NULL with buf_len > 0.
 */
long cb_frame_decode_header(const uint8_t *buf, size_t buf_len, const cb_frame_limits *lim,
                            cb_frame *f);

/*
 * Decode one whole frame from the start of buf[0..buf_len). Returns the bytes consumed
 * (> 0; the next frame starts there), CB_ERR_NEED_MORE when the bytes end mid-frame (call
 * again with more), or any error of cb_frame_decode_header. On error `f` is unspecified.
 * The returned key/value views point into `buf`, and are NULL when their length is 0.
 */
long cb_frame_decode(const uint8_t *buf, size_t buf_len, const cb_frame_limits *lim, cb_frame *f);

#endif
