/* cb_framer.c: frame reassembly over a byte stream; see cb_framer.h. */
#include "cb_framer.h"

#include <assert.h>
#include <string.h>

#include "cb_err.h"

void cb_framer_init(cb_framer *fr)
{
    memset(fr, 0, sizeof *fr);
}

void cb_framer_free(cb_framer *fr, const cb_alloc *alloc)
{
    cb_alloc_free(alloc, fr->buf);
    memset(fr, 0, sizeof *fr);
}

void cb_framer_reset(cb_framer *fr)
{
    fr->len = 0;
    fr->need = 0;
}

size_t cb_framer_pending(const cb_framer *fr)
{
    return fr->len;
}

static int framer_reserve(cb_framer *fr, size_t want, const cb_alloc *alloc)
{
    if (fr->cap >= want) {
        return CB_ERR_OK;
    }
    size_t cap = fr->cap < 256 ? 256 : fr->cap;
    while (cap < want) {
        cap *= 2;
    }
    /* Doubling could overshoot a frame near the limit by almost 2x; once the frame's length
     * is known, allocate no more than it, so the buffer never exceeds one maximal frame. */
    if (fr->need != 0 && cap > fr->need) {
        cap = fr->need;
    }
    assert(cap >= want);
    uint8_t *grown = cb_alloc_malloc(alloc, cap);
    if (grown == NULL) {
        return CB_ERR_NOMEM;
    }
    if (fr->len > 0) {
        memcpy(grown, fr->buf, fr->len);
    }
    cb_alloc_free(alloc, fr->buf);
    fr->buf = grown;
    fr->cap = cap;
    return CB_ERR_OK;
}

/* Move up to `upto` total buffered bytes from the input into the buffer. */
static int framer_fill(cb_framer *fr, const uint8_t **in, size_t *in_len, size_t upto,
                       const cb_alloc *alloc)
{
    assert(fr->len <= upto);
    size_t take = upto - fr->len;
    if (take > *in_len) {
        take = *in_len;
    }
    int rc = framer_reserve(fr, fr->len + take, alloc);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    memcpy(fr->buf + fr->len, *in, take);
    fr->len += take;
    *in += take;
    *in_len -= take;
    return CB_ERR_OK;
}

/* Continue a frame split across calls: header first, then the rest up to its end. */
static int framer_continue(cb_framer *fr, const uint8_t **in, size_t *in_len,
                           const cb_frame_limits *lim, const cb_alloc *alloc, cb_frame *f)
{
    if (fr->need == 0) {
        int rc = framer_fill(fr, in, in_len, CB_FRAME_HEADER_BYTES, alloc);
        if (rc != CB_ERR_OK) {
            return rc;
        }
        long hr = cb_frame_decode_header(fr->buf, fr->len, lim, f);
        if (hr == CB_ERR_NEED_MORE) {
            return 0;
        }
        if (hr < 0) {
            cb_framer_reset(fr);
            return (int)hr;
        }
        fr->need = CB_FRAME_HEADER_BYTES + (size_t)f->key_len + (size_t)f->value_len;
    }
    int rc = framer_fill(fr, in, in_len, fr->need, alloc);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    if (fr->len < fr->need) {
        return 0;
    }
    long dr = cb_frame_decode(fr->buf, fr->len, lim, f);
    /* The header passed above, and exactly one frame's bytes are held. */
    assert(dr == (long)fr->need);
    cb_framer_reset(fr);
    return dr > 0 ? 1 : (int)dr;
}

int cb_framer_next(cb_framer *fr, const uint8_t **in, size_t *in_len, const cb_frame_limits *lim,
                   const cb_alloc *alloc, cb_frame *f)
{
    if (fr->len > 0) {
        return framer_continue(fr, in, in_len, lim, alloc, f);
    }
    if (*in_len == 0) {
        return 0;
    }
    long rc = cb_frame_decode(*in, *in_len, lim, f);
    if (rc > 0) {
        *in += rc;
        *in_len -= (size_t)rc;
        return 1;
    }
    if (rc != CB_ERR_NEED_MORE) {
        return (int)rc;
    }
    /* A partial frame: buffer it (the header check happens as soon as it is complete). */
    return framer_continue(fr, in, in_len, lim, alloc, f);
}
