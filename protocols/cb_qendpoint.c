/*
 * cb_qendpoint.c: queue transport endpoint (cb_qendpoint.h, docs/protocol.md §10.3).
 */
#include "cb_qendpoint.h"

#include <assert.h>
#include <string.h>

#include "cb_err.h"
#include "cb_frame.h"

struct cb_qendpoint {
    cb_qendpoint_config cfg;
    const cb_alloc *alloc;
    cb_queue_reader reader;
    uint64_t next_message_id;
    cb_outbox outbox;
    cb_qendpoint_stats stats;
};

int cb_qendpoint_new(const cb_qendpoint_config *cfg, const cb_alloc *alloc, cb_qendpoint **out)
{
    cb_qendpoint_config c = *cfg;
    if (out == NULL || c.payload_bytes_max > CB_QUEUE_PAYLOAD_BYTES_LIMIT) {
        return CB_ERR_INVALID;
    }
    if (c.payload_bytes_max == 0) {
        c.payload_bytes_max = CB_FRAME_HEADER_BYTES + CB_KEY_BYTES_MAX + CB_VALUE_BYTES_MAX_DEFAULT;
    }
    if (c.outbox_actions == 0) {
        c.outbox_actions = 256;
    }
    uint64_t envelope = CB_QUEUE_HEADER_BYTES + (uint64_t)c.payload_bytes_max;
    if (c.outbox_bytes == 0) {
        c.outbox_bytes = 2 * envelope > UINT32_MAX ? UINT32_MAX : (uint32_t)(2 * envelope);
    }
    if (c.outbox_bytes < envelope) {
        return CB_ERR_INVALID;
    }
    cb_qendpoint *ep = cb_alloc_calloc(alloc, 1, sizeof *ep);
    if (ep == NULL) {
        return CB_ERR_NOMEM;
    }
    ep->cfg = c;
    ep->alloc = alloc;
    ep->next_message_id = 1;
    if (cb_outbox_init(&ep->outbox, c.outbox_actions, c.outbox_bytes, alloc) != CB_ERR_OK) {
        cb_alloc_free(alloc, ep);
        return CB_ERR_NOMEM;
    }
    *out = ep;
    return CB_ERR_OK;
}

void cb_qendpoint_del(cb_qendpoint *ep)
{
    if (ep == NULL) {
        return;
    }
    cb_queue_reader_free(&ep->reader, ep->alloc);
    cb_outbox_free(&ep->outbox, ep->alloc);
    cb_alloc_free(ep->alloc, ep);
}

/* Queue envelope `m` to the broker; the caller checked room. */
static void qendpoint_send(cb_qendpoint *ep, const cb_queue_msg *m)
{
    size_t len = cb_queue_encoded_len(m);
    uint8_t *p = cb_outbox_send(&ep->outbox, ep->cfg.broker_peer, len);
    assert(p != NULL);
    long rc = cb_queue_encode(m, p, len);
    assert(rc == (long)len); /* only valid envelopes are built here */
    (void)rc;
    ep->stats.bytes_sent += len;
}

int cb_qendpoint_subscribe(cb_qendpoint *ep)
{
    if (!cb_outbox_has_room(&ep->outbox, CB_QUEUE_HEADER_BYTES)) {
        return CB_ERR_FULL;
    }
    cb_queue_msg m;
    memset(&m, 0, sizeof m);
    m.kind = CB_QUEUE_SUBSCRIBE;
    m.src = ep->cfg.node;
    qendpoint_send(ep, &m);
    return CB_ERR_OK;
}

/* Split buf into frames: count them and their envelope bytes; a negative cb_err if not whole
 * frames. */
static int qendpoint_scan(const cb_qendpoint *ep, const uint8_t *buf, size_t buf_len, size_t *count,
                          size_t *bytes)
{
    cb_frame_limits lim = {.value_bytes_max = CB_VALUE_BYTES_LIMIT};
    size_t off = 0;
    *count = 0;
    *bytes = 0;
    while (off < buf_len) {
        cb_frame f;
        long hr = cb_frame_decode_header(buf + off, buf_len - off, &lim, &f);
        if (hr < 0) {
            return CB_ERR_MALFORMED; /* a header error or one ending mid-header */
        }
        size_t flen = cb_frame_encoded_len(&f);
        if (flen > buf_len - off) {
            return CB_ERR_MALFORMED;
        }
        if (flen > ep->cfg.payload_bytes_max) {
            return CB_ERR_TOO_LARGE;
        }
        *count += 1;
        *bytes += CB_QUEUE_HEADER_BYTES + flen;
        off += flen;
    }
    return CB_ERR_OK;
}

int cb_qendpoint_publish(cb_qendpoint *ep, uint32_t dst, const uint8_t *buf, size_t buf_len)
{
    size_t count;
    size_t bytes;
    int rc = qendpoint_scan(ep, buf, buf_len, &count, &bytes);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    /* Envelopes to one peer coalesce into one SEND: a single action is enough. */
    if (count > 0 && !cb_outbox_has_room(&ep->outbox, bytes)) {
        return CB_ERR_FULL;
    }
    size_t off = 0;
    while (off < buf_len) {
        cb_frame f;
        cb_frame_limits lim = {.value_bytes_max = CB_VALUE_BYTES_LIMIT};
        long hr = cb_frame_decode_header(buf + off, buf_len - off, &lim, &f);
        assert(hr > 0); /* scanned above */
        (void)hr;
        cb_queue_msg m;
        memset(&m, 0, sizeof m);
        m.kind = CB_QUEUE_PUBLISH;
        m.dst = dst;
        m.src = ep->cfg.node;
        m.message_id = ep->next_message_id++;
        m.payload_len = (uint32_t)cb_frame_encoded_len(&f);
        m.payload = buf + off;
        qendpoint_send(ep, &m);
        ep->stats.published++;
        off += m.payload_len;
    }
    return CB_ERR_OK;
}

static int qendpoint_on_deliver(cb_qendpoint *ep, const cb_queue_msg *m, cb_qendpoint_msg *msg)
{
    cb_queue_msg ack;
    memset(&ack, 0, sizeof ack);
    ack.kind = CB_QUEUE_ACK;
    ack.dst = m->src;
    ack.src = ep->cfg.node;
    ack.message_id = m->message_id;
    qendpoint_send(ep, &ack);
    ep->stats.delivered++;
    if (m->delivery > 1) {
        ep->stats.redelivered++;
    }
    msg->src = m->src;
    msg->payload = m->payload;
    msg->payload_len = m->payload_len;
    return 1;
}

int cb_qendpoint_next(cb_qendpoint *ep, const uint8_t **in, size_t *in_len, cb_qendpoint_msg *msg)
{
    /* Checked before reading, so an envelope is never taken without room for its ACK. */
    if (*in_len > 0 && !cb_outbox_has_room(&ep->outbox, CB_QUEUE_HEADER_BYTES)) {
        return CB_ERR_FULL;
    }
    cb_queue_msg m;
    size_t before = *in_len;
    int rc =
        cb_queue_reader_next(&ep->reader, in, in_len, ep->cfg.payload_bytes_max, ep->alloc, &m);
    ep->stats.bytes_received += before - *in_len;
    if (rc != 1) {
        return rc;
    }
    memset(msg, 0, sizeof *msg);
    msg->kind = m.kind;
    msg->message_id = m.message_id;
    msg->delivery = m.delivery;
    switch (m.kind) {
    case CB_QUEUE_DELIVER:
        return qendpoint_on_deliver(ep, &m, msg);
    case CB_QUEUE_NACK:
        msg->reason = m.reason;
        msg->src = m.src;
        ep->stats.nacked++;
        return 1;
    default:
        cb_queue_reader_reset(&ep->reader);
        return CB_ERR_MALFORMED; /* SUBSCRIBE, PUBLISH and ACK only flow to the broker */
    }
}

void cb_qendpoint_on_reset(cb_qendpoint *ep)
{
    cb_queue_reader_reset(&ep->reader);
}

size_t cb_qendpoint_drain(cb_qendpoint *ep, cb_action *out, size_t out_cap)
{
    return cb_outbox_drain(&ep->outbox, out, out_cap);
}

void cb_qendpoint_get_stats(const cb_qendpoint *ep, cb_qendpoint_stats *out)
{
    *out = ep->stats;
}
