/*
 * cb_broker.h: the queue broker machine (sans-IO), docs/protocol.md §10.
 *
 * With the queue transport every cache request and reply goes through a broker node:
 * endpoints (cb_qendpoint.h) send it envelopes (cb_queue.h) over one byte stream each, the
 * driver's connection ids 0..conn_max-1. An endpoint SUBSCRIBEs as its node id; a PUBLISH
 * names a destination node; the broker queues the payload for that node and DELIVERs it on
 * the connection subscribed as that node; the endpoint ACKs the delivery tag.
 *
 * Queueing, the part a researcher measures:
 *   - one FIFO per destination node, holding messages (queued plus delivered and not yet
 *     acknowledged) up to queue_limit in total; a PUBLISH beyond it, for a node >= node_max,
 *     or that cannot be allocated is refused with a NACK to its publisher (`rejected`);
 *   - a single server: at most one delivery per service_ns. A message starts service at
 *     max(its ready time, the end of the previous service) and leaves service_ns later, so
 *     the broker is a work-conserving single-server queue whatever the driver (M/D/1 under
 *     Poisson arrivals). service_ns = 0: deliveries leave at once (real sockets);
 *   - destinations with queued messages and a subscriber are served round robin;
 *   - at-least-once: a delivery not acknowledged within ack_timeout_ns, or whose connection
 *     closes, goes back to the head of its queue and is delivered again with the same tag
 *     and delivery count + 1 (`redelivered`); after delivery_max deliveries (0: no limit) it is
 *     dropped instead (`dropped`). Duplicates reach the consumer: the cache server's
 *     at-most-once window (docs/protocol.md §9) absorbs repeated requests, the client
 *     reports repeated replies as duplicate/late replies;
 *   - messages for a node with no subscriber wait for one (they count toward queue_limit).
 *
 * Non-durable: the broker keeps everything in memory. A driver that crashes the broker
 * deletes it and makes a new one; held messages are lost and clients time out and retry.
 */
#ifndef CB_BROKER_H
#define CB_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "cb_alloc.h"
#include "cb_outbox.h"
#include "cb_queue.h"

typedef struct cb_broker cb_broker;

typedef struct cb_broker_config {
    uint32_t conn_max;          /* connection ids 0..conn_max-1; 1..2^20 */
    uint32_t node_max;          /* node ids (SUBSCRIBE src, PUBLISH dst) 0..node_max-1; 1..2^20 */
    uint32_t queue_limit;       /* messages held in all, queued or unacknowledged; 1..2^24 */
    uint64_t service_ns;        /* time one delivery takes; 0: no pacing */
    uint64_t ack_timeout_ns;    /* redeliver after this without an ACK; > 0 */
    uint32_t delivery_max;      /* deliveries of a message before it is dropped; 0: no limit */
    uint32_t payload_bytes_max; /* largest PUBLISH payload; 0 picks one 1 MiB-value frame */
    uint32_t outbox_actions;    /* action slots; 0 picks 1024 */
    uint32_t outbox_bytes;      /* SEND arena; 0 picks 4 envelopes of payload_bytes_max */
} cb_broker_config;

/* Defaults: 1024 connections and nodes, 65536 messages, no pacing, 1 s ack timeout. */
cb_broker_config cb_broker_config_default(void);

typedef struct cb_broker_stats {
    uint64_t published;       /* PUBLISHes accepted */
    uint64_t rejected;        /* PUBLISHes refused with a NACK */
    uint64_t delivered;       /* DELIVERs sent, redeliveries included */
    uint64_t redelivered;     /* DELIVERs after the first of a message */
    uint64_t acked;           /* messages acknowledged (and freed) */
    uint64_t dropped;         /* messages dropped after delivery_max deliveries */
    uint64_t unknown_acks;    /* ACKs for tags not awaiting one (duplicates, stale) */
    uint64_t protocol_errors; /* connections closed for bad input */
    uint64_t depth;           /* messages held now */
    uint64_t depth_max;       /* most messages held at once */
    uint64_t bytes_received;
    uint64_t bytes_sent;
} cb_broker_stats;

/* CB_ERR_OK with *out set; CB_ERR_INVALID (a config value out of range); CB_ERR_NOMEM. */
int cb_broker_new(const cb_broker_config *cfg, const cb_alloc *alloc, cb_broker **out);

/* Free the broker and every message it holds. NULL is a no-op. */
void cb_broker_del(cb_broker *b);

/*
 * Bytes received on connection `conn` at now_ns. Every whole envelope is handled; deliveries
 * due by now_ns leave as SEND actions (DELIVER envelopes, several may share one SEND). Returns
 * the input bytes consumed — all, unless the outbox had no room for a NACK (drain and call
 * again with the rest) — or CB_ERR_UNKNOWN_CONN (conn >= conn_max). Bad input (an envelope
 * that does not decode, a DELIVER or NACK sent to the broker, a SUBSCRIBE for a node >=
 * node_max, a stream that cannot be buffered) closes the connection: a PROTOCOL_ERROR
 * event (detail: the cb_err) and a CLOSE action, and cb_broker_on_close's effects.
 */
long cb_broker_on_bytes(cb_broker *b, uint32_t conn, const uint8_t *buf, size_t buf_len,
                        uint64_t now_ns);

/*
 * Connection `conn` closed: drop its partial input and its subscription, and put its
 * unacknowledged deliveries back at the head of their queues. Returns CB_ERR_OK or
 * CB_ERR_UNKNOWN_CONN.
 */
int cb_broker_on_close(cb_broker *b, uint32_t conn, uint64_t now_ns);

/*
 * Run what is due at now_ns: ack timeouts (redelivery or drop), then deliveries whose
 * service has ended. Returns CB_ERR_OK, or CB_ERR_FULL when the outbox filled with
 * deliveries still due (drain, call again).
 */
int cb_broker_on_timer(cb_broker *b, uint64_t now_ns);

/* When cb_broker_on_timer next has work (may be in the past); UINT64_MAX for never. */
uint64_t cb_broker_next_deadline_ns(const cb_broker *b);

/* Move up to out_cap queued actions into out; returns how many. See cb_outbox.h. */
size_t cb_broker_drain(cb_broker *b, cb_action *out, size_t out_cap);
/* The oldest queued action without a copy, or NULL (cb_outbox_pop: valid until the next pop). */
const cb_action *cb_broker_pop(cb_broker *b);

void cb_broker_get_stats(const cb_broker *b, cb_broker_stats *out);

#endif
