/*
 * cb_broker.c: the queue broker machine (cb_broker.h, docs/protocol.md §10).
 *
 * Messages live in a slot table sized at init (queue_limit slots); only a message's payload
 * is allocated, when it is published. A slot is on exactly one list: the free list, its
 * destination's FIFO, or the unacknowledged list (ordered by ack deadline, because every
 * delivery gets now + ack_timeout and now never goes back). Destinations that have queued
 * messages and a subscriber form a ring served round robin. Every list is doubly linked by
 * slot index, so every step is O(1) except a closing connection, which walks the
 * unacknowledged list once.
 */
#include "cb_broker.h"

#include <assert.h>
#include <string.h>

#include "cb_err.h"

#define BROKER_NONE      UINT32_MAX
#define BROKER_IDS_MAX   (1u << 20)
#define BROKER_SLOTS_MAX (1u << 24)

enum { BROKER_FREE = 0, BROKER_QUEUED, BROKER_UNACKED };

typedef struct broker_msg {
    uint8_t *payload;
    uint32_t payload_len;
    uint32_t dst;
    uint32_t src;
    uint32_t conn; /* UNACKED: the connection it was delivered on */
    uint32_t gen;  /* bumped at each reuse of the slot: tags of old messages never match */
    uint32_t prev;
    uint32_t next;
    uint16_t delivery;
    uint8_t state;
    uint64_t ready_ns;    /* QUEUED: when it (re)joined its queue */
    uint64_t deadline_ns; /* UNACKED: ack deadline */
} broker_msg;

typedef struct broker_node {
    uint32_t head; /* its FIFO */
    uint32_t tail;
    uint32_t count;
    uint32_t conn;      /* subscriber, BROKER_NONE when none */
    uint32_t ring_prev; /* ring of servable nodes; BROKER_NONE when not in it */
    uint32_t ring_next;
} broker_node;

typedef struct broker_conn {
    cb_queue_reader reader;
    uint32_t node; /* subscribed node, BROKER_NONE when none */
} broker_conn;

struct cb_broker {
    cb_broker_config cfg;
    const cb_alloc *alloc;
    broker_msg *msgs;
    broker_node *nodes;
    broker_conn *conns;
    uint32_t free_head;
    uint32_t unacked_head;
    uint32_t unacked_tail;
    uint32_t ring; /* node served next, BROKER_NONE when the ring is empty */
    uint64_t busy_until_ns;
    cb_outbox outbox;
    cb_broker_stats stats;
};

cb_broker_config cb_broker_config_default(void)
{
    cb_broker_config c;
    memset(&c, 0, sizeof c);
    c.conn_max = 1024;
    c.node_max = 1024;
    c.queue_limit = 65536;
    c.service_ns = 0;
    c.ack_timeout_ns = 1000000000ull;
    return c;
}

static uint32_t broker_payload_max(const cb_broker_config *c)
{
    if (c->payload_bytes_max == 0) {
        return CB_FRAME_HEADER_BYTES + CB_KEY_BYTES_MAX + CB_VALUE_BYTES_MAX_DEFAULT;
    }
    return c->payload_bytes_max;
}

static int broker_config_check(cb_broker_config *c)
{
    if (c->conn_max == 0 || c->conn_max > BROKER_IDS_MAX || c->node_max == 0 ||
        c->node_max > BROKER_IDS_MAX || c->queue_limit == 0 || c->queue_limit > BROKER_SLOTS_MAX ||
        c->ack_timeout_ns == 0 || c->payload_bytes_max > CB_QUEUE_PAYLOAD_BYTES_LIMIT) {
        return CB_ERR_INVALID;
    }
    c->payload_bytes_max = broker_payload_max(c);
    if (c->outbox_actions == 0) {
        c->outbox_actions = 1024;
    }
    uint64_t envelope = CB_QUEUE_HEADER_BYTES + (uint64_t)c->payload_bytes_max;
    if (c->outbox_bytes == 0) {
        uint64_t want = 4 * envelope;
        c->outbox_bytes = want > UINT32_MAX ? UINT32_MAX : (uint32_t)want;
    }
    if (c->outbox_bytes < envelope) {
        return CB_ERR_INVALID; /* a maximal delivery could never leave */
    }
    return CB_ERR_OK;
}

int cb_broker_new(const cb_broker_config *cfg, const cb_alloc *alloc, cb_broker **out)
{
    cb_broker_config c = *cfg;
    if (out == NULL || broker_config_check(&c) != CB_ERR_OK) {
        return CB_ERR_INVALID;
    }
    cb_broker *b = cb_alloc_calloc(alloc, 1, sizeof *b);
    if (b == NULL) {
        return CB_ERR_NOMEM;
    }
    b->cfg = c;
    b->alloc = alloc;
    b->msgs = cb_alloc_calloc(alloc, c.queue_limit, sizeof b->msgs[0]);
    if (b->msgs == NULL) {
        goto out_free_broker;
    }
    b->nodes = cb_alloc_calloc(alloc, c.node_max, sizeof b->nodes[0]);
    if (b->nodes == NULL) {
        goto out_free_msgs;
    }
    b->conns = cb_alloc_calloc(alloc, c.conn_max, sizeof b->conns[0]);
    if (b->conns == NULL) {
        goto out_free_nodes;
    }
    if (cb_outbox_init(&b->outbox, c.outbox_actions, c.outbox_bytes, alloc) != CB_ERR_OK) {
        goto out_free_conns;
    }
    for (uint32_t i = 0; i < c.queue_limit; i++) {
        b->msgs[i].next = i + 1 < c.queue_limit ? i + 1 : BROKER_NONE;
    }
    for (uint32_t i = 0; i < c.node_max; i++) {
        broker_node *n = &b->nodes[i];
        n->head = n->tail = n->conn = n->ring_prev = n->ring_next = BROKER_NONE;
    }
    for (uint32_t i = 0; i < c.conn_max; i++) {
        b->conns[i].node = BROKER_NONE;
    }
    b->free_head = 0;
    b->unacked_head = b->unacked_tail = BROKER_NONE;
    b->ring = BROKER_NONE;
    *out = b;
    return CB_ERR_OK;

out_free_conns:
    cb_alloc_free(alloc, b->conns);
out_free_nodes:
    cb_alloc_free(alloc, b->nodes);
out_free_msgs:
    cb_alloc_free(alloc, b->msgs);
out_free_broker:
    cb_alloc_free(alloc, b);
    return CB_ERR_NOMEM;
}

void cb_broker_del(cb_broker *b)
{
    if (b == NULL) {
        return;
    }
    for (uint32_t i = 0; i < b->cfg.queue_limit; i++) {
        cb_alloc_free(b->alloc, b->msgs[i].payload);
    }
    for (uint32_t i = 0; i < b->cfg.conn_max; i++) {
        cb_queue_reader_free(&b->conns[i].reader, b->alloc);
    }
    cb_outbox_free(&b->outbox, b->alloc);
    cb_alloc_free(b->alloc, b->conns);
    cb_alloc_free(b->alloc, b->nodes);
    cb_alloc_free(b->alloc, b->msgs);
    cb_alloc_free(b->alloc, b);
}

/* ---- lists ---- */

static uint64_t broker_tag(const cb_broker *b, uint32_t slot)
{
    return (uint64_t)b->msgs[slot].gen << 32 | (uint64_t)(slot + 1);
}

static void ring_insert(cb_broker *b, uint32_t node)
{
    broker_node *n = &b->nodes[node];
    assert(n->ring_next == BROKER_NONE);
    if (b->ring == BROKER_NONE) {
        n->ring_prev = n->ring_next = node;
        b->ring = node;
        return;
    }
    /* Join just before the node served next: served last in this round. */
    uint32_t next = b->ring;
    uint32_t prev = b->nodes[next].ring_prev;
    n->ring_prev = prev;
    n->ring_next = next;
    b->nodes[prev].ring_next = node;
    b->nodes[next].ring_prev = node;
}

static void ring_remove(cb_broker *b, uint32_t node)
{
    broker_node *n = &b->nodes[node];
    if (n->ring_next == BROKER_NONE) {
        return;
    }
    if (n->ring_next == node) {
        b->ring = BROKER_NONE;
    } else {
        b->nodes[n->ring_prev].ring_next = n->ring_next;
        b->nodes[n->ring_next].ring_prev = n->ring_prev;
        if (b->ring == node) {
            b->ring = n->ring_next;
        }
    }
    n->ring_prev = n->ring_next = BROKER_NONE;
}

/* Keep the invariant: a node is in the ring iff it has queued messages and a subscriber. */
static void ring_update(cb_broker *b, uint32_t node)
{
    broker_node *n = &b->nodes[node];
    int want = n->count > 0 && n->conn != BROKER_NONE;
    int in = n->ring_next != BROKER_NONE;
    if (want && !in) {
        ring_insert(b, node);
    } else if (!want && in) {
        ring_remove(b, node);
    }
}

static void queue_push(cb_broker *b, uint32_t slot, int at_head, uint64_t now_ns)
{
    broker_msg *m = &b->msgs[slot];
    broker_node *n = &b->nodes[m->dst];
    m->state = BROKER_QUEUED;
    m->ready_ns = now_ns;
    if (n->head == BROKER_NONE) {
        m->prev = m->next = BROKER_NONE;
        n->head = n->tail = slot;
    } else if (at_head) {
        m->prev = BROKER_NONE;
        m->next = n->head;
        b->msgs[n->head].prev = slot;
        n->head = slot;
    } else {
        m->next = BROKER_NONE;
        m->prev = n->tail;
        b->msgs[n->tail].next = slot;
        n->tail = slot;
    }
    n->count++;
    ring_update(b, m->dst);
}

static uint32_t queue_pop(cb_broker *b, uint32_t node)
{
    broker_node *n = &b->nodes[node];
    uint32_t slot = n->head;
    assert(slot != BROKER_NONE);
    n->head = b->msgs[slot].next;
    if (n->head == BROKER_NONE) {
        n->tail = BROKER_NONE;
    } else {
        b->msgs[n->head].prev = BROKER_NONE;
    }
    n->count--;
    return slot;
}

static void unacked_append(cb_broker *b, uint32_t slot)
{
    broker_msg *m = &b->msgs[slot];
    m->state = BROKER_UNACKED;
    m->next = BROKER_NONE;
    m->prev = b->unacked_tail;
    if (b->unacked_tail == BROKER_NONE) {
        b->unacked_head = slot;
    } else {
        b->msgs[b->unacked_tail].next = slot;
    }
    b->unacked_tail = slot;
}

static void unacked_remove(cb_broker *b, uint32_t slot)
{
    broker_msg *m = &b->msgs[slot];
    if (m->prev == BROKER_NONE) {
        b->unacked_head = m->next;
    } else {
        b->msgs[m->prev].next = m->next;
    }
    if (m->next == BROKER_NONE) {
        b->unacked_tail = m->prev;
    } else {
        b->msgs[m->next].prev = m->prev;
    }
}

static void slot_free(cb_broker *b, uint32_t slot)
{
    broker_msg *m = &b->msgs[slot];
    cb_alloc_free(b->alloc, m->payload);
    m->payload = NULL;
    m->payload_len = 0;
    m->state = BROKER_FREE;
    m->gen++;
    m->next = b->free_head;
    b->free_head = slot;
    assert(b->stats.depth > 0);
    b->stats.depth--;
}

/* An unacknowledged delivery failed (timeout, closed connection): requeue or drop. */
static void broker_redeliver_later(cb_broker *b, uint32_t slot, uint64_t now_ns)
{
    unacked_remove(b, slot);
    broker_msg *m = &b->msgs[slot];
    if (b->cfg.delivery_max != 0 && m->delivery >= b->cfg.delivery_max) {
        b->stats.dropped++;
        slot_free(b, slot);
        return;
    }
    queue_push(b, slot, 1, now_ns);
}

/* ---- sending ---- */

static void broker_event(cb_broker *b, uint32_t conn, int kind, int detail)
{
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_EVENT;
    a.peer = conn;
    a.event.kind = (uint8_t)kind;
    a.event.detail = detail;
    /* Callers checked room for an event and a close (broker_on_bad_input). */
    int rc = cb_outbox_push(&b->outbox, &a);
    assert(rc == CB_ERR_OK);
    (void)rc;
}

/* Send envelope `m` (its payload copied) to conn; 0 when the outbox lacks room. */
static int broker_send(cb_broker *b, uint32_t conn, const cb_queue_msg *m)
{
    size_t len = cb_queue_encoded_len(m);
    uint8_t *p = cb_outbox_send(&b->outbox, conn, len);
    if (p == NULL) {
        return 0;
    }
    long rc = cb_queue_encode(m, p, len);
    assert(rc == (long)len); /* the broker builds only valid envelopes */
    (void)rc;
    b->stats.bytes_sent += len;
    return 1;
}

static void broker_nack(cb_broker *b, uint32_t conn, const cb_queue_msg *pub, uint8_t reason)
{
    cb_queue_msg n;
    memset(&n, 0, sizeof n);
    n.kind = CB_QUEUE_NACK;
    n.reason = reason;
    n.dst = pub->src;
    n.src = pub->dst;
    n.message_id = pub->message_id;
    b->stats.rejected++;
    /* The caller checked room for one header-only envelope. */
    int sent = broker_send(b, conn, &n);
    assert(sent);
    (void)sent;
}

/* ---- serving ---- */

/* When the ring's next message leaves service; its ready time when service_ns is 0. */
static uint64_t broker_service_done_ns(const cb_broker *b)
{
    const broker_msg *m = &b->msgs[b->nodes[b->ring].head];
    uint64_t start = m->ready_ns;
    if (b->cfg.service_ns == 0) {
        return start;
    }
    if (b->busy_until_ns > start) {
        start = b->busy_until_ns;
    }
    return start + b->cfg.service_ns;
}

/* Deliver one message from the ring's next node at now_ns; 0 when the outbox lacks room. */
static int broker_deliver_one(cb_broker *b, uint64_t done_ns, uint64_t now_ns)
{
    uint32_t node = b->ring;
    broker_node *n = &b->nodes[node];
    uint32_t slot = n->head;
    broker_msg *m = &b->msgs[slot];
    cb_queue_msg d;
    memset(&d, 0, sizeof d);
    d.kind = CB_QUEUE_DELIVER;
    d.delivery = m->delivery == UINT16_MAX ? UINT16_MAX : (uint16_t)(m->delivery + 1);
    d.dst = m->dst;
    d.src = m->src;
    d.message_id = broker_tag(b, slot);
    d.payload_len = m->payload_len;
    d.payload = m->payload;
    if (!broker_send(b, n->conn, &d)) {
        return 0;
    }
    (void)queue_pop(b, node);
    m->delivery = d.delivery;
    m->conn = n->conn;
    m->deadline_ns = now_ns + b->cfg.ack_timeout_ns;
    unacked_append(b, slot);
    b->stats.delivered++;
    if (m->delivery > 1) {
        b->stats.redelivered++;
    }
    if (b->cfg.service_ns != 0) {
        b->busy_until_ns = done_ns;
    }
    /* Round robin: the next node is served next; this one leaves the ring if drained. */
    b->ring = n->ring_next;
    ring_update(b, node);
    return 1;
}

/* Deliver everything whose service has ended by now_ns. CB_ERR_FULL: outbox filled first. */
static int broker_serve(cb_broker *b, uint64_t now_ns)
{
    while (b->ring != BROKER_NONE) {
        uint64_t done = broker_service_done_ns(b);
        if (done > now_ns) {
            return CB_ERR_OK;
        }
        if (!broker_deliver_one(b, done, now_ns)) {
            return CB_ERR_FULL;
        }
    }
    return CB_ERR_OK;
}

static void broker_expire(cb_broker *b, uint64_t now_ns)
{
    while (b->unacked_head != BROKER_NONE && b->msgs[b->unacked_head].deadline_ns <= now_ns) {
        broker_redeliver_later(b, b->unacked_head, now_ns);
    }
}

/* ---- input ---- */

static void broker_unsubscribe(cb_broker *b, uint32_t conn)
{
    uint32_t node = b->conns[conn].node;
    if (node == BROKER_NONE) {
        return;
    }
    b->conns[conn].node = BROKER_NONE;
    b->nodes[node].conn = BROKER_NONE;
    ring_update(b, node);
}

static void broker_conn_reset(cb_broker *b, uint32_t conn, uint64_t now_ns)
{
    cb_queue_reader_reset(&b->conns[conn].reader);
    broker_unsubscribe(b, conn);
    uint32_t slot = b->unacked_head;
    while (slot != BROKER_NONE) {
        uint32_t next = b->msgs[slot].next;
        if (b->msgs[slot].conn == conn) {
            broker_redeliver_later(b, slot, now_ns);
        }
        slot = next;
    }
}

static void broker_on_bad_input(cb_broker *b, uint32_t conn, int err, uint64_t now_ns)
{
    b->stats.protocol_errors++;
    broker_conn_reset(b, conn, now_ns);
    broker_event(b, conn, CB_EVENT_PROTOCOL_ERROR, err);
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_CLOSE;
    a.peer = conn;
    int rc = cb_outbox_push(&b->outbox, &a);
    assert(rc == CB_ERR_OK); /* room for both was checked before reading */
    (void)rc;
}

static int broker_on_subscribe(cb_broker *b, uint32_t conn, const cb_queue_msg *m)
{
    if (m->src >= b->cfg.node_max) {
        return CB_ERR_UNKNOWN_CONN;
    }
    broker_unsubscribe(b, conn);
    uint32_t old = b->nodes[m->src].conn;
    if (old != BROKER_NONE) {
        b->conns[old].node = BROKER_NONE; /* the newest subscriber wins */
    }
    b->nodes[m->src].conn = conn;
    b->conns[conn].node = m->src;
    ring_update(b, m->src);
    return CB_ERR_OK;
}

static void broker_on_publish(cb_broker *b, uint32_t conn, const cb_queue_msg *m, uint64_t now_ns)
{
    if (m->dst >= b->cfg.node_max) {
        broker_nack(b, conn, m, CB_QUEUE_REASON_UNKNOWN_DST);
        return;
    }
    if (b->free_head == BROKER_NONE) {
        broker_nack(b, conn, m, CB_QUEUE_REASON_FULL);
        return;
    }
    uint8_t *payload = cb_alloc_malloc(b->alloc, m->payload_len);
    if (payload == NULL) {
        broker_nack(b, conn, m, CB_QUEUE_REASON_NOMEM);
        return;
    }
    memcpy(payload, m->payload, m->payload_len);
    uint32_t slot = b->free_head;
    broker_msg *s = &b->msgs[slot];
    b->free_head = s->next;
    s->payload = payload;
    s->payload_len = m->payload_len;
    s->dst = m->dst;
    s->src = m->src;
    s->delivery = 0;
    s->conn = BROKER_NONE;
    b->stats.published++;
    b->stats.depth++;
    if (b->stats.depth > b->stats.depth_max) {
        b->stats.depth_max = b->stats.depth;
    }
    queue_push(b, slot, 0, now_ns);
}

static void broker_on_ack(cb_broker *b, uint32_t conn, const cb_queue_msg *m)
{
    uint64_t low = m->message_id & 0xFFFFFFFFu;
    if (low == 0 || low > b->cfg.queue_limit) {
        b->stats.unknown_acks++;
        return;
    }
    uint32_t slot = (uint32_t)(low - 1);
    broker_msg *s = &b->msgs[slot];
    if (s->state != BROKER_UNACKED || broker_tag(b, slot) != m->message_id || s->conn != conn) {
        b->stats.unknown_acks++;
        return;
    }
    unacked_remove(b, slot);
    b->stats.acked++;
    slot_free(b, slot);
}

/* Handle one envelope; a negative cb_err when the connection must close. */
static int broker_on_envelope(cb_broker *b, uint32_t conn, const cb_queue_msg *m, uint64_t now_ns)
{
    switch (m->kind) {
    case CB_QUEUE_SUBSCRIBE:
        return broker_on_subscribe(b, conn, m);
    case CB_QUEUE_PUBLISH:
        broker_on_publish(b, conn, m, now_ns);
        return CB_ERR_OK;
    case CB_QUEUE_ACK:
        broker_on_ack(b, conn, m);
        return CB_ERR_OK;
    default:
        return CB_ERR_MALFORMED; /* DELIVER and NACK only flow from the broker */
    }
}

long cb_broker_on_bytes(cb_broker *b, uint32_t conn, const uint8_t *buf, size_t buf_len,
                        uint64_t now_ns)
{
    if (conn >= b->cfg.conn_max) {
        return CB_ERR_UNKNOWN_CONN;
    }
    broker_conn *c = &b->conns[conn];
    const uint8_t *in = buf;
    size_t left = buf_len;
    /* Room for a NACK, or for a PROTOCOL_ERROR event and a CLOSE, before each envelope. */
    while (left > 0 && cb_outbox_has_room_n(&b->outbox, 2, CB_QUEUE_HEADER_BYTES)) {
        cb_queue_msg m;
        size_t before = left;
        int rc =
            cb_queue_reader_next(&c->reader, &in, &left, b->cfg.payload_bytes_max, b->alloc, &m);
        b->stats.bytes_received += before - left;
        if (rc == 1) {
            rc = broker_on_envelope(b, conn, &m, now_ns);
        }
        if (rc < 0) {
            broker_on_bad_input(b, conn, rc, now_ns);
            b->stats.bytes_received += left;
            left = 0; /* the rest of a broken stream is dropped */
            break;
        }
    }
    /* Deliveries that do not fit now wait for on_timer (the deadline is already due). */
    (void)broker_serve(b, now_ns);
    return (long)(buf_len - left);
}

int cb_broker_on_close(cb_broker *b, uint32_t conn, uint64_t now_ns)
{
    if (conn >= b->cfg.conn_max) {
        return CB_ERR_UNKNOWN_CONN;
    }
    broker_conn_reset(b, conn, now_ns);
    return CB_ERR_OK;
}

int cb_broker_on_timer(cb_broker *b, uint64_t now_ns)
{
    broker_expire(b, now_ns);
    return broker_serve(b, now_ns);
}

uint64_t cb_broker_next_deadline_ns(const cb_broker *b)
{
    uint64_t t = UINT64_MAX;
    if (b->unacked_head != BROKER_NONE) {
        t = b->msgs[b->unacked_head].deadline_ns;
    }
    if (b->ring != BROKER_NONE) {
        uint64_t done = broker_service_done_ns(b);
        if (done < t) {
            t = done;
        }
    }
    return t;
}

size_t cb_broker_drain(cb_broker *b, cb_action *out, size_t out_cap)
{
    return cb_outbox_drain(&b->outbox, out, out_cap);
}

const cb_action *cb_broker_pop(cb_broker *b)
{
    return cb_outbox_pop(&b->outbox);
}

void cb_broker_get_stats(const cb_broker *b, cb_broker_stats *out)
{
    *out = b->stats;
}
