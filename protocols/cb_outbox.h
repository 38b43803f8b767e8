/*
 * cb_outbox.h: the actions a sans-IO machine asks its driver to carry out, and the
 * fixed-capacity outbox that holds them until the driver drains it.
 *
 * A machine (server, client) never does I/O: each call appends actions — send these bytes to
 * that peer, close that connection, this request completed, this event happened — and the
 * driver drains them with cb_outbox_drain() until it returns 0 (the shape of nghttp2's
 * mem_send). Both the action slots and the byte arena that holds SEND payloads are sized
 * once at init; nothing grows afterwards. When either is full, the machine's input call
 * returns CB_ERR_FULL (or consumes less input) and the driver drains before calling again.
 *
 * Lifetime of payloads: the bytes a SEND (or a COMPLETE's value view) points at live in the
 * outbox arena, or in the machine's own buffers; they stay valid until the next call into the
 * machine other than its drain function. Drivers send or copy them right after draining.
 */
#ifndef CB_OUTBOX_H
#define CB_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "cb_alloc.h"

typedef enum {
    CB_ACTION_SEND = 1, /* send data[0..data_len) to `peer` (a whole number of frames) */
    CB_ACTION_CLOSE,    /* close the connection to `peer` */
    CB_ACTION_COMPLETE, /* a client request completed: see `completion` */
    CB_ACTION_EVENT,    /* something worth logging happened: see `event` */
} cb_action_kind;

/* Outcomes of a client request (docs/protocol.md §4 maps reply statuses onto them). */
#define CB_OUTCOME_LIST(X)                                                                         \
    X(HIT, 1, "hit")                                                                               \
    X(MISS, 2, "miss")                                                                             \
    X(STORED, 3, "stored")                                                                         \
    X(NOT_STORED, 4, "not_stored")                                                                 \
    X(EXISTS, 5, "exists")                                                                         \
    X(DELETED, 6, "deleted")                                                                       \
    X(NOT_FOUND, 7, "not_found")                                                                   \
    X(OK, 8, "ok")                                                                                 \
    X(TIMEOUT, 9, "timeout")                                                                       \
    X(ERROR, 10, "error")

typedef enum {
#define CB_OUTCOME_ENUM(name, code, text) CB_OUTCOME_##name = (code),
    CB_OUTCOME_LIST(CB_OUTCOME_ENUM)
#undef CB_OUTCOME_ENUM
} cb_outcome;

/* The outcome's name as logged ("hit", "not_stored"); "unknown" for other values. */
const char *cb_outcome_name(int outcome);

/* Events a machine reports; drivers log them (results database `events` table). */
#define CB_EVENT_LIST(X)                                                                           \
    X(RETRY, 1, "retry")                     /* a request timed out and was sent again */          \
    X(LATE_REPLY, 3, "late_reply")           /* a reply for a request already given up on */       \
    X(DUPLICATE_REPLY, 4, "duplicate_reply") /* a second reply for a completed request */          \
    X(PROTOCOL_ERROR, 5, "protocol_error")   /* undecodable input; connection closed */            \
    X(CONN_CLOSED, 6, "conn_closed") /* the peer closed; requests on it fail over or fail */       \
    /* Router events (cb_router.h; `peer` is the node concerned, detail as listed there). */       \
    X(FAILOVER, 7, "failover")        /* a sub-request failed; the next candidate gets it */       \
    X(EJECT, 8, "eject")              /* a node failed eject_after times: skipped for a while */   \
    X(PROBE, 9, "probe")              /* an ejected node's trial request: sent, passed, failed */  \
    X(READ_REPAIR, 10, "read_repair") /* the newest value written back to a stale replica */       \
    X(STALE_READ, 11, "stale_read")   /* a replica answered an older version than another */       \
    X(PROPAGATE, 12, "propagate")     /* primary_async: a write copied to a replica, or not */     \
    /* Codec events (cb_codec.h): `detail` is the cb_err. */                                       \
    X(FRAME_REJECTED, 13, "frame_rejected") /* a frame failed to open or decompress */             \
    /* Faults a driver applied (never emitted by a machine; docs/simulator.md "Faults"): */        \
    X(CRASH, 14, "crash")             /* the node went down; its state is lost */                  \
    X(RECOVER, 15, "recover")         /* the node came back with a fresh machine */                \
    X(PARTITION, 16, "partition")     /* the network split into groups */                          \
    X(HEAL, 17, "heal")               /* the partition ended */                                    \
    X(LINK_CHANGE, 18, "link_change") /* the node's link latency/bandwidth/loss changed */         \
    /* Resync events (cb_resync.h; `peer` is the recovered node). */                               \
    X(RESYNC_START, 19, "resync_start") /* warm-up began; detail: peers to scan */                 \
    X(RESYNC_DONE, 20, "resync_done")   /* warm-up ended; detail: items written */

typedef enum {
#define CB_EVENT_ENUM(name, code, text) CB_EVENT_##name = (code),
    CB_EVENT_LIST(CB_EVENT_ENUM)
#undef CB_EVENT_ENUM
} cb_event_kind;

/* The event's name as logged ("retry"); "unknown" for other values. */
const char *cb_event_name(int event);

typedef struct cb_completion {
    uint64_t user_data;      /* the application's tag from cb_client_request */
    uint32_t request_id;     /* wire request id */
    uint32_t peer;           /* server it was last sent to */
    uint8_t op;              /* cb_op */
    uint8_t outcome;         /* cb_outcome */
    uint16_t status;         /* reply status (cb_status); 0 on TIMEOUT */
    uint32_t attempts;       /* sends, 1 = no retry */
    uint64_t issue_ns;       /* when the application submitted it */
    uint64_t complete_ns;    /* when the outcome was known */
    uint64_t bytes_sent;     /* request bytes over all attempts */
    uint64_t bytes_received; /* reply bytes */
    uint64_t cas;            /* item CAS from the reply (GET, stores) */
    uint64_t number;         /* INCR/DECR: the new value */
    const uint8_t *value;    /* GET hit: the value (valid until the next non-drain call) */
    uint32_t value_len;
} cb_completion;

typedef struct cb_event {
    uint8_t kind;        /* cb_event_kind */
    int32_t detail;      /* a cb_err for PROTOCOL_ERROR and FRAME_REJECTED, attempts for RETRY */
    uint32_t request_id; /* 0 when not about a request */
    const char *note;    /* drivers' fault events only: a label, valid during the hook, or
                            NULL; machines leave it NULL */
} cb_event;

typedef struct cb_action {
    uint8_t kind;  /* cb_action_kind */
    uint32_t peer; /* SEND/CLOSE/EVENT: the connection or peer concerned */
    const uint8_t *data;
    size_t data_len;
    cb_completion completion; /* COMPLETE only */
    cb_event event;           /* EVENT only */
} cb_action;

typedef struct cb_outbox {
    cb_action *actions;
    size_t action_cap;
    size_t head;   /* first undrained action */
    size_t count;  /* undrained actions */
    size_t popped; /* 1 while the action cb_outbox_pop returned last may be in use */
    uint8_t *arena;
    size_t arena_cap;
    size_t arena_used;
} cb_outbox;

/*
 * Allocate room for action_cap actions and arena_cap payload bytes (both > 0).
 * Returns CB_ERR_OK, CB_ERR_INVALID (a zero capacity) or CB_ERR_NOMEM (nothing allocated).
 */
int cb_outbox_init(cb_outbox *ob, size_t action_cap, size_t arena_cap, const cb_alloc *alloc);

/* Release what init allocated; `ob` may be zero-filled (never initialised). */
void cb_outbox_free(cb_outbox *ob, const cb_alloc *alloc);

/* Room for one more action and `bytes` more payload bytes? (1/0) */
int cb_outbox_has_room(const cb_outbox *ob, size_t bytes);

/* Room for `actions` more actions and `bytes` more payload bytes? (1/0) */
int cb_outbox_has_room_n(const cb_outbox *ob, size_t actions, size_t bytes);

/*
 * Reserve `len` arena bytes for a payload the caller is about to push; NULL when the arena
 * cannot hold them (nothing reserved). The bytes belong to the next pushed action.
 */
uint8_t *cb_outbox_reserve(cb_outbox *ob, size_t len);

/* Give back the last `len` reserved bytes (after a failed encode). */
void cb_outbox_unreserve(cb_outbox *ob, size_t len);

/*
 * Reserve `len` arena bytes for data to send to `peer` and queue them: when the newest queued
 * action is a SEND to the same peer whose data ends where this reservation begins, that SEND
 * grows by `len` (so a stream of small replies becomes one action); otherwise a new SEND is
 * pushed. The caller fills the returned bytes before the next drain. Returns NULL (nothing
 * changed) when the arena lacks `len` bytes or a new action is needed and none is free.
 * For byte-stream protocols only: coalesced SENDs no longer align with message boundaries.
 */
uint8_t *cb_outbox_send(cb_outbox *ob, uint32_t peer, size_t len);

/* Append a copy of `a`. Returns CB_ERR_OK or CB_ERR_FULL (all action slots taken). */
int cb_outbox_push(cb_outbox *ob, const cb_action *a);

/*
 * Move up to out_cap actions, oldest first, into out. Returns how many (0: empty). Once the
 * outbox is empty its arena is reused by the next reserve; drained payloads stay readable
 * until then.
 */
size_t cb_outbox_drain(cb_outbox *ob, cb_action *out, size_t out_cap);

/*
 * The oldest action, taken off the queue without a copy, or NULL when none is left. The
 * action and its payload stay valid until the next pop: the outbox reuses neither its slot
 * nor its payload bytes for actions pushed meanwhile (the call that returns NULL releases
 * them). For a caller that acts on one action at a time (the SimGrid driver, where the copy
 * into a batch was cache misses on every step); use pop or drain on an outbox, not both.
 */
const cb_action *cb_outbox_pop(cb_outbox *ob);

#endif
