/*
 * cb_queue.h: the queue transport's envelope (docs/protocol.md §10) — encoder and incremental
 * decoder.
 *
 * With `[transport] kind = queue` no cache frame travels straight between a client and a
 * server: each one rides in an envelope to and from a broker node (cb_broker.h). An envelope
 * is a fixed 28-byte header, then `payload_len` bytes of payload (whole cache frames).
 * Big-endian, like the frame:
 *
 *   off size field
 *   0   2    magic 0xCB 0x51
 *   2   1    version (1)
 *   3   1    kind: SUBSCRIBE 1, PUBLISH 2, DELIVER 3, ACK 4, NACK 5
 *   4   1    flags (none defined: 0)
 *   5   1    reason: NACK only (1 queue full, 2 unknown destination, 3 too large); else 0
 *   6   2    delivery: DELIVER only, 1 for the first delivery, +1 per redelivery; else 0
 *   8   4    dst node
 *   12  4    src node
 *   16  8    message id: PUBLISH/NACK the publisher's id; DELIVER/ACK the broker's delivery
 *            tag; both non-zero. SUBSCRIBE: 0.
 *   24  4    payload_len: PUBLISH/DELIVER 1..payload_bytes_max; other kinds 0
 *   28  ..   payload
 *
 * The decoder works like cb_frame_decode: each header field is checked as soon as its bytes
 * are present, in field order, so a hostile stream is refused at the first byte that proves
 * it, and a valid prefix gives CB_ERR_NEED_MORE. Nothing is allocated; the payload view
 * points into the caller's buffer.
 */
#ifndef CB_QUEUE_H
#define CB_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "cb_alloc.h"
#include "cb_frame.h"
#include "cb_limits.h"

#define CB_QUEUE_MAGIC        0xCB51u
#define CB_QUEUE_VERSION      1u
#define CB_QUEUE_HEADER_BYTES 28u

/*
 * Largest payload any envelope may carry: one maximal cache frame (header, key, the hard
 * value limit), sealed (64 bytes cover the seal's overhead, CB_SEAL_OVERHEAD_MAX = 40). A
 * decoder's payload_bytes_max above it is treated as this.
 */
#define CB_QUEUE_PAYLOAD_BYTES_LIMIT                                                               \
    (CB_FRAME_HEADER_BYTES + CB_KEY_BYTES_MAX + CB_VALUE_BYTES_LIMIT + 64u)

#define CB_QUEUE_KIND_LIST(X)                                                                      \
    X(SUBSCRIBE, 1, "subscribe") /* endpoint -> broker: deliver node `src`'s messages here */      \
    X(PUBLISH, 2, "publish")     /* endpoint -> broker: queue this payload for `dst` */            \
    X(DELIVER, 3, "deliver")     /* broker -> endpoint: a message for `dst` from `src` */          \
    X(ACK, 4, "ack")             /* endpoint -> broker: delivery tag `message id` done */          \
    X(NACK, 5, "nack")           /* broker -> publisher: PUBLISH `message id` refused */

typedef enum {
#define CB_QUEUE_KIND_ENUM(name, code, text) CB_QUEUE_##name = (code),
    CB_QUEUE_KIND_LIST(CB_QUEUE_KIND_ENUM)
#undef CB_QUEUE_KIND_ENUM
} cb_queue_kind;

/* NACK reasons. */
#define CB_QUEUE_REASON_FULL        1u /* the broker holds queue_limit messages already */
#define CB_QUEUE_REASON_UNKNOWN_DST 2u /* dst is not a node the broker serves */
#define CB_QUEUE_REASON_NOMEM       3u /* the broker could not allocate the message */
#define CB_QUEUE_REASON_MAX         3u

/* Lower-case name of `kind` ("publish"); "unknown" for a value not in the list. */
const char *cb_queue_kind_name(int kind);

/* One envelope. Decoded: `payload` points into the decoder's input (NULL when empty). */
typedef struct cb_queue_msg {
    uint8_t kind;
    uint8_t reason;
    uint16_t delivery;
    uint32_t dst;
    uint32_t src;
    uint64_t message_id;
    uint32_t payload_len;
    const uint8_t *payload;
} cb_queue_msg;

/* Encoded size: CB_QUEUE_HEADER_BYTES + payload_len. */
size_t cb_queue_encoded_len(const cb_queue_msg *m);

/*
 * Encode `m` into out[0..out_cap). Refuses what the decoder (with the hard payload limit)
 * would refuse. Returns the bytes written, or, in this order:
 *   CB_ERR_INVALID      `m` NULL; kind unknown; reason/delivery/message id/payload_len
 *                       inconsistent with the kind (see the table above); a NULL payload
 *                       with a length;
 *   CB_ERR_TOO_LARGE    payload_len > CB_QUEUE_PAYLOAD_BYTES_LIMIT;
 *   CB_ERR_FULL         out NULL or too small (nothing written).
 */
long cb_queue_encode(const cb_queue_msg *m, uint8_t *out, size_t out_cap);

/*
 * Write only the header of `m` (out_cap >= CB_QUEUE_HEADER_BYTES), for callers that copy the
 * payload themselves. Same checks as cb_queue_encode except that m->payload is not read.
 * Returns CB_QUEUE_HEADER_BYTES or an error.
 */
long cb_queue_encode_header(const cb_queue_msg *m, uint8_t *out, size_t out_cap);

/*
 * Decode one envelope from the start of buf[0..buf_len). payload_bytes_max of 0, or above
 * CB_QUEUE_PAYLOAD_BYTES_LIMIT, means the limit. Returns the bytes consumed (> 0), or the
 * first of these, in field order, that the bytes present prove:
 *   CB_ERR_BAD_MAGIC    byte 0 not 0xCB or byte 1 not 0x51;
 *   CB_ERR_BAD_VERSION  byte 2 not 1;
 *   CB_ERR_BAD_OPCODE   byte 3 not a kind;
 *   CB_ERR_BAD_FLAGS    byte 4 not 0;
 *   CB_ERR_MALFORMED    reason (byte 5), delivery (6-7), message id (16-23) or
 *                       payload_len (24-27) inconsistent with the kind;
 *   CB_ERR_TOO_LARGE    payload_len > payload_bytes_max;
 *   CB_ERR_NEED_MORE    the bytes are a valid prefix of an envelope;
 *   CB_ERR_INVALID      `m` NULL, or buf NULL with buf_len > 0.
 */
long cb_queue_decode(const uint8_t *buf, size_t buf_len, uint32_t payload_bytes_max,
                     cb_queue_msg *m);

/*
 * Reassembles envelopes from a byte stream (the shape of cb_framer): holds at most one
 * partial envelope, copies only an envelope split across calls, and checks its header before
 * buffering any payload. Zero-fill to initialise.
 */
typedef struct cb_queue_reader {
    uint8_t *buf;
    size_t len;
    size_t cap;
    size_t need; /* total length of the envelope being assembled; 0 until its header is in */
} cb_queue_reader;

void cb_queue_reader_free(cb_queue_reader *r, const cb_alloc *alloc);
void cb_queue_reader_reset(cb_queue_reader *r);

/*
 * Take bytes from (*in, *in_len) until one whole envelope is available. Returns 1 (decoded
 * into *m, views valid until the next call), 0 (input used up; a partial envelope is kept),
 * CB_ERR_NOMEM (buffer could not grow; the untaken input is left), or a decode error (the
 * stream is broken; the reader is reset).
 */
int cb_queue_reader_next(cb_queue_reader *r, const uint8_t **in, size_t *in_len,
                         uint32_t payload_bytes_max, const cb_alloc *alloc, cb_queue_msg *m);

#endif
