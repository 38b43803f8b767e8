/*
 * cb_qendpoint.h: a queue transport endpoint (sans-IO), docs/protocol.md §10.3.
 *
 * Sits between a cache machine (cb_client, cb_server) and the broker (cb_broker.h), so a
 * driver only moves bytes to and from the broker. Outbound, the machine's SEND(peer, bytes)
 * becomes cb_qendpoint_publish(dst node, bytes): one PUBLISH envelope per cache frame,
 * queued as SEND actions to the broker (peer `broker_peer`). Inbound, the broker's byte
 * stream goes through cb_qendpoint_next, which hands out each DELIVERed payload with its
 * source node (for the driver to feed to the machine as that peer's bytes) and queues the
 * ACK; a NACK (the broker refused a PUBLISH) is handed out too, for the driver to log: the
 * cache client's own timeout and retry then decide what happens.
 *
 * Redeliveries are handed out like first deliveries (delivery > 1): at-least-once, no
 * dedup here (cb_broker.h).
 */
#ifndef CB_QENDPOINT_H
#define CB_QENDPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "cb_alloc.h"
#include "cb_outbox.h"
#include "cb_queue.h"

typedef struct cb_qendpoint cb_qendpoint;

typedef struct cb_qendpoint_config {
    uint32_t node;              /* this endpoint's node id (SUBSCRIBE, PUBLISH src) */
    uint32_t broker_peer;       /* the peer id its SEND actions carry */
    uint32_t payload_bytes_max; /* largest frame published or accepted; 0: a 1 MiB-value frame */
    uint32_t outbox_actions;    /* 0 picks 256 */
    uint32_t outbox_bytes;      /* 0 picks 2 envelopes of payload_bytes_max */
} cb_qendpoint_config;

typedef struct cb_qendpoint_stats {
    uint64_t published;   /* PUBLISH envelopes queued */
    uint64_t delivered;   /* DELIVERs handed out (and ACKed) */
    uint64_t redelivered; /* of which delivery > 1 */
    uint64_t nacked;      /* NACKs received */
    uint64_t bytes_sent;
    uint64_t bytes_received;
} cb_qendpoint_stats;

/* One thing the broker sent: a delivery (payload views valid until the next call) or a NACK. */
typedef struct cb_qendpoint_msg {
    uint8_t kind;        /* CB_QUEUE_DELIVER or CB_QUEUE_NACK */
    uint8_t reason;      /* NACK: CB_QUEUE_REASON_* */
    uint16_t delivery;   /* DELIVER: 1 first, more for a redelivery */
    uint32_t src;        /* DELIVER: the publishing node; NACK: the refused PUBLISH's dst */
    uint64_t message_id; /* DELIVER: the broker's tag; NACK: our PUBLISH's id */
    const uint8_t *payload;
    uint32_t payload_len;
} cb_qendpoint_msg;

/* CB_ERR_OK, CB_ERR_INVALID (outbox_bytes below one maximal envelope), CB_ERR_NOMEM. */
int cb_qendpoint_new(const cb_qendpoint_config *cfg, const cb_alloc *alloc, cb_qendpoint **out);
void cb_qendpoint_del(cb_qendpoint *ep);

/* Queue a SUBSCRIBE for this node: at start and after every new connection to the broker.
 * CB_ERR_OK or CB_ERR_FULL (drain first). */
int cb_qendpoint_subscribe(cb_qendpoint *ep);

/*
 * Wrap buf[0..buf_len), whole cache frames (docs/protocol.md §2) for node `dst`, into one
 * PUBLISH per frame. All or nothing: CB_ERR_OK; CB_ERR_FULL (the outbox lacks room for all
 * of them: drain, call again); CB_ERR_MALFORMED (buf is not a sequence of whole frames);
 * CB_ERR_TOO_LARGE (a frame over payload_bytes_max).
 */
int cb_qendpoint_publish(cb_qendpoint *ep, uint32_t dst, const uint8_t *buf, size_t buf_len);

/*
 * Take bytes of the broker's stream from (*in, *in_len) until one DELIVER or NACK is whole.
 * Returns 1 (*msg filled; a DELIVER's ACK is queued), 0 (input used up), CB_ERR_FULL (no
 * room for an ACK: drain, call again with what is left), CB_ERR_NOMEM (the partial buffer
 * could not grow), or a decoder error (cb_queue.h) or CB_ERR_MALFORMED (an envelope kind an
 * endpoint never receives): the stream is broken, the driver closes it and calls
 * cb_qendpoint_on_reset.
 */
int cb_qendpoint_next(cb_qendpoint *ep, const uint8_t **in, size_t *in_len, cb_qendpoint_msg *msg);

/* The connection to the broker was lost or re-made: drop partial input. Call
 * cb_qendpoint_subscribe once a new connection is up. */
void cb_qendpoint_on_reset(cb_qendpoint *ep);

size_t cb_qendpoint_drain(cb_qendpoint *ep, cb_action *out, size_t out_cap);
void cb_qendpoint_get_stats(const cb_qendpoint *ep, cb_qendpoint_stats *out);

#endif
