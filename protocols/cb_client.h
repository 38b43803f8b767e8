/*
 * cb_client.h: the cache client machine (sans-IO).
 *
 * The application submits operations addressed to a peer (a server index chosen by the
 * caller, later by placement). The machine assigns each a wire request id, encodes its frame
 * (docs/protocol.md), emits a SEND action, and keeps a deadline for it. When the deadline
 * passes (cb_client_on_timer) the same frame is sent again, up to attempts_max sends in all,
 * each attempt waiting longer: timeout_ns * 2^(attempt-1), capped at timeout_max_ns, plus a
 * jitter drawn from the caller's generator (up to jitter_ppm millionths of that wait). After
 * the last attempt times out the request completes with outcome TIMEOUT.
 *
 * Replies come in through cb_client_on_bytes, one peer's byte stream at a time (or one
 * datagram at a time: each call must then hold whole frames). A reply matches a request by
 * request id and peer-independent slot; replies that arrive late (after TIMEOUT), twice, or
 * for ids never issued are dropped and reported as events, never as a second outcome. Every
 * submitted request ends with exactly one COMPLETE action.
 *
 * Request ids encode a slot index in their low bits and a generation above it, so a reply is
 * matched in O(1) and a stale id can never match a reused slot.
 */
#ifndef CB_CLIENT_H
#define CB_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "cb_alloc.h"
#include "cb_codec.h"
#include "cb_frame.h"
#include "cb_outbox.h"
#include "cb_rng.h"

typedef struct cb_client cb_client;

typedef struct cb_client_config {
    uint32_t peer_count;      /* peers (servers) are numbered 0..peer_count-1; >= 1 */
    uint32_t outstanding_max; /* requests in flight at once; 1..65536 */
    uint64_t timeout_ns;      /* first attempt's wait for a reply; > 0 */
    uint64_t timeout_max_ns;  /* cap of the exponential backoff; >= timeout_ns */
    uint32_t attempts_max;    /* sends per request before TIMEOUT; 1..64 */
    uint32_t jitter_ppm;      /* extra random wait, in millionths of the wait; <= 10^6 */
    uint32_t value_bytes_max; /* largest value accepted in a reply; <= CB_VALUE_BYTES_LIMIT */
    uint32_t outbox_actions;  /* action slots; 0 picks 2 * outstanding_max + 16 */
    /* Compression and sealing (docs/protocol.md §5, §6); all zero: off. Must match the
     * servers', except that with compression on and codec.connectionless = 0 each new
     * connection to a peer opens with a HELLO that agrees on the algorithm (§5.3; requests
     * go uncompressed until its reply). Peers are the codec's connections: peer p's sessions
     * and agreement restart when the client closes p or cb_client_on_reset(p) is called. */
    cb_codec_config codec;
    /* The wire protocol: CB_CLIENT_PROTOCOL_BINARY (0, cachebed's frame) or
     * CB_CLIENT_PROTOCOL_TEXT (memcached's text protocol, cb_textreply.h; docs/real.md §9).
     * Text replies carry no request id: they are matched first in, first out per peer, so in
     * text mode a request is sent once (attempts_max is not used): at its deadline it
     * completes TIMEOUT and the client closes the peer (a CLOSE action), whose other requests
     * in flight then complete ERROR at the next cb_client_on_timer, as they do when the peer
     * is reset (cb_client_on_reset) or sends a reply that is not one. The codec must be off. */
    uint8_t protocol;
} cb_client_config;

#define CB_CLIENT_PROTOCOL_BINARY 0u
#define CB_CLIENT_PROTOCOL_TEXT   1u

/* A configuration with sensible defaults: 1 peer, 64 in flight, 100 ms timeout doubling up
 * to 1 s, 3 attempts, 10% jitter, 1 MiB values. */
cb_client_config cb_client_config_default(void);

/* One operation, as the application states it. Views are copied by cb_client_request. */
typedef struct cb_client_op {
    uint8_t op;      /* cb_op */
    uint8_t quiet;   /* reserved: quiet requests are not supported yet, must be 0 */
    uint8_t key_len; /* 1..CB_KEY_BYTES_MAX (0 for FLUSH, STATS, NOOP) */
    const uint8_t *key;
    const uint8_t *value; /* SET/ADD/REPLACE/APPEND/PREPEND/CAS */
    uint32_t value_len;
    uint32_t ttl_ms;    /* stores and TOUCH; 0 = never expires */
    uint64_t cas;       /* CAS: the expected version */
    uint64_t delta;     /* INCR/DECR */
    uint64_t user_data; /* returned untouched in the completion */
} cb_client_op;

/*
 * Create a client. `rng` is the caller's generator for jitter; it must outlive the client.
 * Returns CB_ERR_OK with *out set, CB_ERR_INVALID (a config value out of range), or
 * CB_ERR_NOMEM (nothing leaked).
 */
int cb_client_new(const cb_client_config *cfg, cb_rng *rng, const cb_alloc *alloc, cb_client **out);

/* Free the client and everything it owns. NULL is a no-op. */
void cb_client_del(cb_client *cli);

/*
 * Submit `op` to `peer` at now_ns. On success the frame is queued as a SEND action and
 * *request_id (if not NULL) receives its wire id. Returns
 *   CB_ERR_OK;
 *   CB_ERR_BUSY          outstanding_max requests already in flight (complete some first);
 *   CB_ERR_FULL          the outbox has no room: drain, then submit again;
 *   CB_ERR_UNKNOWN_CONN  peer >= peer_count;
 *   CB_ERR_INVALID       an unknown op, a missing key, quiet set, or value on a non-store op;
 *   CB_ERR_KEY_TOO_LONG, CB_ERR_VALUE_TOO_LARGE  limits (cb_limits.h);
 *   CB_ERR_NOMEM         the request's frame buffer could not grow.
 * Nothing is queued on error.
 */
int cb_client_request(cb_client *cli, uint32_t peer, const cb_client_op *op, uint64_t now_ns,
                      uint32_t *request_id);

/*
 * Bytes received from `peer`. Whole replies are matched to their requests and completed;
 * a partial reply is buffered until the rest arrives. Returns the number of input bytes
 * consumed (all of them, unless the outbox fills: drain and call again with the rest), or
 *   CB_ERR_UNKNOWN_CONN  peer >= peer_count;
 *   a decoder error (cb_frame.h) when the peer's stream is malformed: the peer's buffered
 *   bytes are dropped, a PROTOCOL_ERROR event and a CLOSE action for the peer are queued,
 *   and the requests outstanding on it keep waiting for their timers;
 *   with a codec in stream seal mode (or compression only), a reply that does not open or
 *   decompress (CB_ERR_AUTH_FAILED, CB_ERR_CODEC_MISMATCH, CB_ERR_VALUE_TOO_LARGE,
 *   CB_ERR_MALFORMED, CB_ERR_BAD_ALGORITHM): the same, with a FRAME_REJECTED event. In
 *   datagram seal mode such a reply (or a CB_ERR_REPLAY duplicate) is dropped with a
 *   FRAME_REJECTED event and the rest of the input is processed.
 */
long cb_client_on_bytes(cb_client *cli, uint32_t peer, const uint8_t *buf, size_t buf_len,
                        uint64_t now_ns);

/*
 * The connection to `peer` was lost (or re-established): drop its partial input. Requests
 * in flight to it stay armed and are retried by their timers (text mode: they complete
 * ERROR at the next cb_client_on_timer; their deadline becomes 0). Returns CB_ERR_OK or
 * CB_ERR_UNKNOWN_CONN.
 */
int cb_client_on_reset(cb_client *cli, uint32_t peer);

/*
 * Time passed: every request whose deadline is <= now_ns is retried or completed with
 * TIMEOUT. Returns CB_ERR_OK, or CB_ERR_FULL when the outbox filled before all expired
 * requests were handled (drain and call again).
 */
int cb_client_on_timer(cb_client *cli, uint64_t now_ns);

/*
 * The client is going away (its host crashed, docs/simulator.md "Faults"): every request in
 * flight completes at once with outcome ERROR, status 0. Returns CB_ERR_OK, or CB_ERR_FULL
 * when the outbox filled first (drain and call again).
 */
int cb_client_abandon(cb_client *cli, uint64_t now_ns);

/* The earliest request deadline; UINT64_MAX when nothing is in flight. */
uint64_t cb_client_next_deadline_ns(const cb_client *cli);

/* Move up to out_cap queued actions into out; returns how many (0: none). See cb_outbox.h. */
size_t cb_client_drain(cb_client *cli, cb_action *out, size_t out_cap);
/* The oldest queued action without a copy, or NULL (cb_outbox_pop: valid until the next pop). */
const cb_action *cb_client_pop(cb_client *cli);

/* Requests submitted and not yet completed. */
uint32_t cb_client_outstanding(const cb_client *cli);

typedef struct cb_client_stats {
    uint64_t requests;          /* submitted */
    uint64_t completed;         /* COMPLETE actions emitted */
    uint64_t retries;           /* re-sends after a timeout */
    uint64_t timeouts;          /* requests that ended TIMEOUT */
    uint64_t late_replies;      /* replies for requests already timed out */
    uint64_t duplicate_replies; /* replies for requests already completed */
    uint64_t unknown_replies;   /* replies for ids never issued, or not replies at all */
    uint64_t protocol_errors;   /* malformed input from a peer */
    uint64_t frames_rejected;   /* replies that did not open or decompress (FRAME_REJECTED) */
    uint64_t bytes_sent;
    uint64_t bytes_received;
} cb_client_stats;

void cb_client_get_stats(const cb_client *cli, cb_client_stats *out);

#endif
