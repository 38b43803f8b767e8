/*
 * cb_textreply.h: the client side of memcached's text protocol (sans-IO) — a request
 * encoder and an incremental reply parser, used by cb_client in text mode (docs/real.md §9).
 *
 * Requests map cachebed's operations onto classic text commands:
 *   GET -> gets (the reply carries the CAS, as the binary GET's does); SET, ADD, REPLACE,
 *   APPEND, PREPEND, CAS -> the storage command with flags 0 and exptime from ttl_ms
 *   (rounded up to whole seconds, at most CB_TEXT_RELATIVE_EXPTIME_MAX so it is never read
 *   as a Unix time); DELETE, INCR, DECR, TOUCH -> the same; FLUSH -> flush_all;
 *   STATS -> stats; NOOP -> version.
 * Keys travel as text tokens: a key holding a space, a control byte or DEL cannot be sent.
 *
 * Replies carry no request id: the caller knows which operation the next reply answers
 * (replies come in request order per connection) and passes it to the parser. The parser
 * never allocates or copies; the reply's views point into the input. Input is hostile: a
 * line is at most CB_TEXT_LINE_BYTES_MAX bytes, a STATS reply at most
 * CB_TEXT_REPLY_STATS_BYTES_MAX, a VALUE's length is checked against value_bytes_max as soon
 * as its line is in (before any byte of the data is needed), numbers have bounded digits and
 * are overflow-checked, and a reply that does not answer the operation is malformed.
 */
#ifndef CB_TEXTREPLY_H
#define CB_TEXTREPLY_H

#include <stddef.h>
#include <stdint.h>

#include "cb_text.h"

/* The longest STATS reply accepted, all STAT lines and END. */
#define CB_TEXT_REPLY_STATS_BYTES_MAX CB_TEXT_GET_LINE_BYTES_MAX

/* What a request carries; views are read by the encoder only. */
typedef struct cb_text_op {
    uint8_t op; /* cb_op */
    const uint8_t *key;
    size_t key_len; /* 1..CB_KEY_BYTES_MAX; 0 for FLUSH, STATS, NOOP */
    const uint8_t *value;
    uint32_t value_len; /* storage commands */
    uint32_t ttl_ms;    /* storage commands and TOUCH; 0 = never expires */
    uint64_t cas;       /* CAS */
    uint64_t delta;     /* INCR/DECR */
} cb_text_op;

/* The most bytes cb_text_encode_request writes for this op (an upper bound). */
size_t cb_text_request_bytes_max(const cb_text_op *op);

/*
 * Encode `op` as one text request into out[0..out_cap). Returns the length written, or
 *   CB_ERR_INVALID      an unknown op, a key missing where needed (or given where not), a key
 *                       byte the text protocol cannot carry (<= 0x20, 0x7F), a value on a
 *                       non-storage op, NULL views with non-zero lengths;
 *   CB_ERR_KEY_TOO_LONG key_len > CB_KEY_BYTES_MAX;
 *   CB_ERR_FULL         out_cap too small (out may hold a partial write).
 */
long cb_text_encode_request(const cb_text_op *op, uint8_t *out, size_t out_cap);

typedef struct cb_text_reply {
    uint16_t status;    /* cb_status: OK, NOT_FOUND (also a GET miss), EXISTS, NOT_STORED, or for
                           an error line UNKNOWN_COMMAND (ERROR), BAD_REQUEST (CLIENT_ERROR),
                           NOT_NUMBER (CLIENT_ERROR on incr/decr of a non-number), TOO_LARGE or
                           NO_MEMORY (SERVER_ERROR) */
    uint8_t error_line; /* 1: the reply was ERROR, CLIENT_ERROR or SERVER_ERROR */
    const uint8_t *key; /* GET hit: the VALUE line's key */
    size_t key_len;
    const uint8_t *value; /* GET hit: the data, without its \r\n */
    uint32_t value_len;
    uint32_t flags;    /* GET hit */
    uint64_t cas;      /* GET hit (0 when the server sent none) */
    uint64_t number;   /* INCR/DECR: the new value */
    size_t consumed;   /* bytes the reply covers */
    size_t need_bytes; /* on CB_ERR_NEED_MORE: the whole reply's length if known, else 0 */
} cb_text_reply;

/*
 * Parse the reply to operation `op` (cb_op) from the start of buf[0..buf_len). Returns the
 * bytes it covers (> 0, also in rep->consumed) with *rep filled, or:
 *   CB_ERR_NEED_MORE       the bytes end inside the reply (rep->need_bytes as above);
 *   CB_ERR_TOO_LARGE       no newline within CB_TEXT_LINE_BYTES_MAX (or a STATS reply over
 *                          CB_TEXT_REPLY_STATS_BYTES_MAX): the stream cannot be framed;
 *   CB_ERR_VALUE_TOO_LARGE a VALUE announcing more than value_bytes_max bytes;
 *   CB_ERR_MALFORMED       anything else that is not a reply to `op`;
 *   CB_ERR_INVALID         rep NULL, buf NULL with buf_len > 0, or an unknown op.
 * Lines end in \r\n or a bare \n; a VALUE's data must end in \r\n, then END\r\n.
 * Never reads past buf[buf_len - 1]. Any error but NEED_MORE means the connection is
 * out of step and must be closed.
 */
long cb_text_parse_reply(const uint8_t *buf, size_t buf_len, uint8_t op, uint32_t value_bytes_max,
                         cb_text_reply *rep);

#endif
