/*
 * cb_server.h: the cache server machine (sans-IO).
 *
 * Bytes from each connection go in through cb_server_on_bytes; whole request frames
 * (docs/protocol.md) are executed against the server's cb_store and their replies come out
 * as SEND actions, one reply frame each, in request order per connection. A connection whose
 * bytes cannot be a frame gets a PROTOCOL_ERROR event and a CLOSE action. A well-formed
 * request the server cannot honour (a reply frame sent as a request, an unsupported flag, a
 * missing key) gets a BAD_REQUEST reply and the connection stays open.
 *
 * Connections are numbered by the driver, 0..conn_max-1 (a socket driver maps its file
 * descriptors onto them, a simulator its peers). Each keeps at most one partial frame
 * (cb_framer.h). The timer sweeps expired items from the store (cb_store_sweep) every
 * sweep_interval_ns.
 *
 * Datagram transports call cb_server_on_bytes with one whole datagram at a time and then
 * cb_server_on_close, so nothing partial carries over between datagrams.
 *
 * Two protocols: a connection's first byte picks one for its life (docs/real.md §3). 0xCB
 * (the frame magic's first byte) means cachebed's binary frame, as above; anything else
 * means the memcached text protocol (cb_text.h), whose replies leave as SEND actions too —
 * several replies to one connection may share one SEND, and a reply may span SENDs (a text
 * stream has no frame boundaries). Text errors follow memcached: a bad command gets ERROR,
 * CLIENT_ERROR or SERVER_ERROR and the connection stays open; a line with no newline within
 * its limit (or a data block announcing more than CB_TEXT_SWALLOW_BYTES_MAX) gets its error
 * line, a PROTOCOL_ERROR event and a CLOSE, and later input on it is dropped until
 * cb_server_on_close. A text connection buffers at most one partial request:
 * max(CB_TEXT_GET_LINE_BYTES_MAX, CB_TEXT_LINE_BYTES_MAX + value_bytes_max + 2) bytes.
 */
#ifndef CB_SERVER_H
#define CB_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "cb_alloc.h"
#include "cb_codec.h"
#include "cb_outbox.h"
#include "cb_shards.h"
#include "cb_store.h"

typedef struct cb_server cb_server;

typedef struct cb_server_config {
    cb_store_config store;      /* the store's cap, value limit, hash seed... */
    uint32_t conn_max;          /* connection ids 0..conn_max-1; 1..2^20 */
    uint32_t outbox_actions;    /* action slots; 0 picks 1024 */
    uint64_t sweep_interval_ns; /* store sweep period; 0 picks 100 ms */
    /*
     * At-most-once window: 0 (memcached's behaviour: a retransmitted request runs again), or
     * a power of two up to 65536: per connection, the reply of each non-GET request is kept
     * in slot request_id % dedup_window, and a request whose id is already there gets that
     * reply again instead of running twice. Exact when dedup_window >= the client's
     * outstanding_max (rounded up to a power of two), because cb_client reuses an id's slot
     * only after the request before it completed (docs/protocol.md §8).
     */
    uint32_t dedup_window;
    /*
     * Compression and sealing (docs/protocol.md §5, §6); all zero: off, and a request with
     * COMPRESSED or ENCRYPTED set gets BAD_REQUEST. Must match the clients' configuration,
     * except that a connection opened with a HELLO compresses only with the algorithm it
     * agreed (docs/protocol.md §5.3).
     */
    cb_codec_config codec;
    /*
     * Unix time in seconds at now_ns == 0, for memcached exptimes above 30 days, which are
     * absolute Unix times (docs/real.md §4). The driver reads its clock once and passes it
     * in; 0 (simulations) makes such exptimes relative to the start of the run.
     */
    uint64_t clock_unix_s;
    /*
     * NULL (the default): the server makes and owns a one-shard, unlocked store from `store`.
     * Otherwise a store shared with other servers (one per thread, docs/real.md §5), owned by
     * the caller and outliving the server; `store` must then be the config it was made from
     * (its value limit sizes the server's buffers). Each request locks only its key's shard
     * for the time it runs and its reply is copied out; FLUSH, STATS, SCAN and the sweep take
     * the shards one at a time.
     */
    cb_shards *shared_store;
} cb_server_config;

/* Defaults: 64 MiB store, 1 MiB values, 1024 connections. */
cb_server_config cb_server_config_default(void);

typedef struct cb_server_stats {
    cb_store_stats store;
    uint64_t requests;        /* frames executed */
    uint64_t replies;         /* reply frames sent */
    uint64_t bad_requests;    /* BAD_REQUEST / UNKNOWN_COMMAND replies */
    uint64_t protocol_errors; /* connections closed for undecodable input */
    uint64_t dedup_replays;   /* retransmitted requests answered from the window */
    uint64_t frames_rejected; /* FRAME_REJECTED events: codec mismatch, bomb, seal failure */
    uint64_t scan_skipped;    /* SCAN: items too large for a reply body, not returned */
    uint64_t bytes_received;
    uint64_t bytes_sent;
} cb_server_stats;

/* Returns CB_ERR_OK with *out set; CB_ERR_INVALID (a config value out of range, including
 * the store's); CB_ERR_NOMEM (nothing leaked). */
int cb_server_new(const cb_server_config *cfg, const cb_alloc *alloc, cb_server **out);

/* Free the server, its store and its buffers. NULL is a no-op. */
void cb_server_del(cb_server *srv);

/*
 * Bytes received on connection `conn` at now_ns. Executes every whole request and queues its
 * reply. Returns the input bytes consumed: all of them, unless the outbox filled (drain, then
 * call again with the rest). Errors:
 *   CB_ERR_UNKNOWN_CONN  conn >= conn_max (nothing consumed);
 *   a cb_frame decoder error: the connection's stream is broken; its partial input is
 *   dropped and a PROTOCOL_ERROR event and a CLOSE action are queued;
 *   with sealing in stream mode, a frame that does not open (CB_ERR_AUTH_FAILED,
 *   CB_ERR_CODEC_MISMATCH for a clear frame, CB_ERR_MALFORMED, CB_ERR_VALUE_TOO_LARGE): the
 *   same, with a FRAME_REJECTED event (detail: the error) instead of PROTOCOL_ERROR.
 * In datagram mode a frame that does not open (CB_ERR_REPLAY too) is dropped with a
 * FRAME_REJECTED event and the rest is processed. A request whose value does not decompress
 * (a bomb, a corrupt payload, another algorithm) is answered TOO_LARGE or BAD_REQUEST with a
 * FRAME_REJECTED event; a sealed request while sealing is off, BAD_REQUEST and the event.
 */
long cb_server_on_bytes(cb_server *srv, uint32_t conn, const uint8_t *buf, size_t buf_len,
                        uint64_t now_ns);

/* Connection `conn` closed (or a datagram ended): forget its partial frame, and in stream
 * seal mode its seal sessions (datagram sessions persist). Returns CB_ERR_OK or
 * CB_ERR_UNKNOWN_CONN. */
int cb_server_on_close(cb_server *srv, uint32_t conn);

/* The peer behind `conn` is gone for good and the driver may give the id to another peer
 * (a UDP driver's bounded peer table, docs/real.md §6): as cb_server_on_close, and
 * whatever outlives a close is dropped too — datagram seal sessions start afresh
 * (cb_codec_forget) and the connection's at-most-once window is emptied. Returns CB_ERR_OK
 * or CB_ERR_UNKNOWN_CONN. */
int cb_server_forget(cb_server *srv, uint32_t conn);

/* Run what is due at now_ns (the store sweep). Returns CB_ERR_OK. */
int cb_server_on_timer(cb_server *srv, uint64_t now_ns);

/* When cb_server_on_timer next has work; UINT64_MAX for never. */
uint64_t cb_server_next_deadline_ns(const cb_server *srv);

/* Move up to out_cap queued actions into out; returns how many (0: none). */
size_t cb_server_drain(cb_server *srv, cb_action *out, size_t out_cap);
/* The oldest queued action without a copy, or NULL (cb_outbox_pop: valid until the next pop). */
const cb_action *cb_server_pop(cb_server *srv);

void cb_server_get_stats(const cb_server *srv, cb_server_stats *out);

/* The server's store, for tests and tools that inspect it (e.g. that a deleted key is gone
 * from every replica). Calls on it bypass the server: no replies, no stats of the server's. */
cb_store *cb_server_store(cb_server *srv);

/*
 * Write the server's statistics as "name value\n" lines (the STATS reply body) into
 * out[0..out_cap). Returns the length written, or CB_ERR_FULL if out_cap is too small.
 */
long cb_server_format_stats(const cb_server *srv, char *out, size_t out_cap);

#endif
