/*
 * cb_framer.h: reassembles frames from a byte stream that arrives in arbitrary pieces.
 *
 * cb_frame_decode works on bytes the caller already holds. A connection receives them in
 * pieces: a frame may start at the end of one read and end three reads later. The framer
 * keeps at most one partial frame per connection. While it holds none, frames are decoded in
 * place from the caller's input (no copy); only a frame split across calls is copied, and
 * only up to its own end, so the buffer never exceeds one maximal frame
 * (CB_FRAME_HEADER_BYTES + CB_KEY_BYTES_MAX + value_bytes_max), and the header is checked
 * (cb_frame_decode_header) before any byte of a key or value is buffered.
 */
#ifndef CB_FRAMER_H
#define CB_FRAMER_H

#include <stddef.h>
#include <stdint.h>

#include "cb_alloc.h"
#include "cb_frame.h"

typedef struct cb_framer {
    uint8_t *buf;  /* partial frame bytes */
    size_t len;    /* bytes held */
    size_t cap;    /* allocated */
    size_t need;   /* total length of the frame being assembled, 0 until its header is in */
} cb_framer;

/* A zero-filled cb_framer is ready; init is a memset. */
void cb_framer_init(cb_framer *fr);

/* Release the buffer. */
void cb_framer_free(cb_framer *fr, const cb_alloc *alloc);

/* Forget any partial frame (the connection was reset). Keeps the buffer. */
void cb_framer_reset(cb_framer *fr);

/* Bytes of a partial frame held. */
size_t cb_framer_pending(const cb_framer *fr);

/*
 * Take bytes from (*in, *in_len) until one whole frame is available, advancing *in and
 * decreasing *in_len by what was taken. Returns
 *   1                  a frame was decoded into *f; its key/value views point into the
 *                      input or into the framer's buffer, valid until the next call;
 *   0                  the input is used up, any partial frame is kept for the next call;
 *   CB_ERR_NOMEM       the buffer could not grow: input not yet buffered is left untaken
 *                      (a header already buffered stays buffered); call again later;
 *   any cb_frame_decode_header error: the stream is broken and the caller should close it
 *                      (the framer is reset).
 */
int cb_framer_next(cb_framer *fr, const uint8_t **in, size_t *in_len, const cb_frame_limits *lim,
                   const cb_alloc *alloc, cb_frame *f);

#endif
