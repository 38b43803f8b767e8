/*
 * cb_scanbody.h: the body of a SCAN reply (docs/protocol.md §3.2) — several items packed in
 * one frame value. Big-endian, like the frame:
 *
 *   body  = count:u32, then `count` items, nothing after the last
 *   item  = key_len:u8 (1..250), kind:u8 (0 item, 1 tombstone: value_len 0), flags:u32,
 *           ttl_ms:u32 (remaining, 0 = never expires), value_len:u32, version:u64,
 *           key_len bytes of key, value_len bytes of value
 *
 * The writer packs items into a caller's buffer and refuses one that does not fit. The
 * reader checks the whole body before it hands out the first item (every length inside the
 * body, the count exact, no trailing bytes), so a hostile body is refused as a whole; its
 * item views point into the body.
 */
#ifndef CB_SCANBODY_H
#define CB_SCANBODY_H

#include <stddef.h>
#include <stdint.h>

#define CB_SCANBODY_HEADER_BYTES      4u
#define CB_SCANBODY_ITEM_HEADER_BYTES 22u
/* Items one SCAN request may ask for; a request's 0 means CB_SCAN_ITEMS_DEFAULT. */
#define CB_SCAN_ITEMS_MAX     128u
#define CB_SCAN_ITEMS_DEFAULT 32u

typedef struct cb_scanbody_item {
    const uint8_t *key;
    uint8_t key_len;
    uint32_t flags;
    uint32_t ttl_ms; /* remaining lifetime, rounded up; 0: never expires */
    uint32_t value_len;
    uint64_t version; /* writer-assigned version, 0: none */
    const uint8_t *value;
    uint8_t tombstone; /* 1: a versioned delete's tombstone (value_len 0) */
} cb_scanbody_item;

typedef struct cb_scanbody_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    uint32_t count;
} cb_scanbody_writer;

/* Bytes one item takes in a body. */
size_t cb_scanbody_item_bytes(size_t key_len, size_t value_len);

/* Start a body in buf[0..cap); CB_ERR_INVALID if buf is NULL or cap < the header. */
int cb_scanbody_writer_init(cb_scanbody_writer *w, uint8_t *buf, size_t cap);

/* Append an item: CB_ERR_OK; CB_ERR_FULL (it does not fit, the body is unchanged);
 * CB_ERR_INVALID (key_len 0 or over CB_KEY_BYTES_MAX, a NULL view with a length, or a
 * tombstone with a value). */
int cb_scanbody_put(cb_scanbody_writer *w, const cb_scanbody_item *it);

/* Write the count; returns the body's length. */
size_t cb_scanbody_finish(cb_scanbody_writer *w);

typedef struct cb_scanbody_reader {
    const uint8_t *body;
    size_t len;
    size_t off;
    uint32_t left; /* items not yet read */
} cb_scanbody_reader;

/*
 * Check the whole body and start reading it. CB_ERR_OK with *count (if not NULL) the item
 * count; CB_ERR_MALFORMED for a body shorter than its header, a key_len of 0 or over
 * CB_KEY_BYTES_MAX, a kind other than 0 or 1, a tombstone with a value, a length that runs
 * past the end, a value_len over CB_VALUE_BYTES_LIMIT, or bytes after the last item; CB_ERR_INVALID
 * for NULL arguments (body may be NULL when len is 0, which is malformed).
 */
int cb_scanbody_reader_init(cb_scanbody_reader *r, const uint8_t *body, size_t len,
                            uint32_t *count);

/* The next item: CB_ERR_OK, or CB_ERR_NOT_FOUND after the last one. */
int cb_scanbody_next(cb_scanbody_reader *r, cb_scanbody_item *it);

#endif
