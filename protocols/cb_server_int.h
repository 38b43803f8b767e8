/*
 * cb_server_int.h: the server machine's internals, shared by cb_server.c (creation, the
 * binary frame path, protocol detection, timers) and cb_server_text.c (the memcached text
 * protocol). Nothing outside the server includes it; the contract is cb_server.h.
 */
#ifndef CB_SERVER_INT_H
#define CB_SERVER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cb_codec.h"
#include "cb_framer.h"
#include "cb_server.h"
#include "cb_text.h"

#define SERVER_STATS_BYTES_MAX 4096u /* the STATS body ("name value\n" lines) fits in this */
#define SERVER_NS_PER_S        1000000000ull

/* What a connection speaks, decided by its first byte (docs/real.md §3). */
enum { SERVER_PROTO_UNKNOWN = 0, SERVER_PROTO_BINARY, SERVER_PROTO_TEXT };

/* One remembered reply of the at-most-once window (cb_server_config.dedup_window). */
typedef struct server_dedup {
    uint32_t request_id; /* 0: empty (cb_client never issues id 0) */
    uint8_t opcode;
    uint16_t status;
    uint64_t cas;
    uint64_t arg;
} server_dedup;

/* Per-connection state beyond the binary framer. */
typedef struct server_conn {
    uint8_t proto;     /* SERVER_PROTO_* */
    uint8_t closing;   /* text: a CLOSE is queued; later input is dropped */
    uint8_t started;   /* binary: a frame was handled, so a HELLO now is mid-connection */
    uint64_t swallow;  /* text: bytes of a refused data block still to discard */
    size_t get_resume; /* text: key cursor a multi-key get resumes at (0: none) */
    uint8_t *buf;      /* text: one partial request */
    size_t len, cap;
    size_t need; /* its whole length once its line is in, else 0 */
} server_conn;

struct cb_server {
    cb_server_config cfg;
    const cb_alloc *alloc;
    cb_shards *shards;   /* the store, maybe shared (cb_server_config.shared_store) */
    int own_shards;      /* 1: made by cb_server_new, freed by cb_server_del */
    int sharded;         /* 0: one unlocked shard, `store` is fixed; 1: lock per key */
    cb_store *store;     /* the shard being used: between server_key_lock and _unlock only,
                            unless !sharded */
    uint32_t locked_shard;
    cb_frame_limits limits;
    cb_text_limits text_limits;
    cb_framer *framers;  /* one per connection */
    server_conn *conns;  /* one per connection */
    cb_codec *codec;     /* compression and sealing, or NULL when both are off */
    server_dedup *dedup; /* conn_max * dedup_window entries, or NULL */
    cb_outbox outbox;
    size_t reply_bytes_max; /* the largest reply one request can produce */
    uint64_t next_sweep_ns;
    uint64_t flush_at_ns; /* a delayed flush_all, UINT64_MAX for none */
    cb_server_stats stats;
    uint8_t *scan_buf;   /* SCAN reply bodies (cb_server_scan.c), allocated on first use */
    size_t scan_buf_cap; /* the value limit: a body is one frame value */
};

/* Lock the shard `key` lives in and point srv->store at it (a no-op when !sharded). */
static inline void server_key_lock(cb_server *srv, const uint8_t *key, size_t key_len)
{
    if (srv->sharded) {
        srv->locked_shard = cb_shards_index(srv->shards, key, key_len);
        srv->store = cb_shards_acquire(srv->shards, srv->locked_shard);
    }
}

static inline void server_key_unlock(cb_server *srv)
{
    if (srv->sharded) {
        srv->store = NULL;
        cb_shards_release(srv->shards, srv->locked_shard);
    }
}

/* Text protocol input on a connection detected as text (cb_server_text.c); the contract of
 * cb_server_on_bytes. */
long server_text_on_bytes(cb_server *srv, uint32_t conn, const uint8_t *buf, size_t buf_len,
                          uint64_t now_ns);

/* Forget a text connection's state; releases its buffer. */
void server_text_reset(cb_server *srv, server_conn *c);

/* Queue a PROTOCOL_ERROR event and a CLOSE for `conn` (two action slots must be free). */
void server_queue_close(cb_server *srv, uint32_t conn, int err);

/* One SCAN step from `cursor` for up to `count` items (cb_server_scan.c): *body (valid
 * until the next SCAN) and *next, the cursor to continue from (0: done). */
int server_exec_scan(cb_server *srv, uint64_t cursor, uint32_t count, uint64_t now_ns,
                     const uint8_t **body, size_t *body_len, uint64_t *next);

/* Run a delayed flush_all that is due. */
void server_flush_if_due(cb_server *srv, uint64_t now_ns);

#endif
