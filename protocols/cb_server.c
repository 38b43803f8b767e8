/* cb_server.c: the cache server machine; see cb_server.h for the contract. */
#include "cb_server.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "cb_err.h"
#include "cb_frame.h"
#include "cb_framer.h"
#include "cb_server_int.h"

#define SERVER_CONN_MAX    (1u << 20)
#define SERVER_NS_PER_MS   1000000ull
#define SERVER_DEDUP_MAX   65536u
#define SERVER_CODEC_FLAGS (CB_FLAG_COMPRESSED | CB_FLAG_ENCRYPTED)
/*
 * Room above the largest value for one reply's framing: a text VALUE line or a meta reply
 * line with every return flag (< 512 bytes), a frame header (40). The text STATS reply
 * ("STAT " lines) stays under 2 * SERVER_STATS_BYTES_MAX.
 */
#define SERVER_REPLY_OVERHEAD_BYTES 1024u

cb_server_config cb_server_config_default(void)
{
    cb_server_config c;
    memset(&c, 0, sizeof c);
    c.store.memory_bytes_max = 64u * 1024u * 1024u;
    c.store.value_bytes_max = CB_VALUE_BYTES_MAX_DEFAULT;
    c.conn_max = 1024;
    return c;
}

/* The codec (if configured), the framer's limit and the largest reply, from the config. */
static int server_setup_codec(cb_server *srv)
{
    const cb_server_config *cfg = &srv->cfg;
    uint32_t value_max =
        cfg->store.value_bytes_max ? cfg->store.value_bytes_max : CB_VALUE_BYTES_MAX_DEFAULT;
    if (cb_codec_enabled(&cfg->codec)) {
        int rc = cb_codec_new(&cfg->codec, CB_CODEC_SERVER, cfg->conn_max, value_max, srv->alloc,
                              &srv->codec);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    srv->limits.value_bytes_max = value_max;
    srv->scan_buf_cap = value_max;
    srv->text_limits.value_bytes_max = value_max;
    srv->reply_bytes_max =
        SERVER_REPLY_OVERHEAD_BYTES +
        (value_max > 2 * SERVER_STATS_BYTES_MAX ? value_max : 2 * SERVER_STATS_BYTES_MAX);
    if (srv->codec != NULL) {
        srv->limits.value_bytes_max = cb_codec_wire_value_max(srv->codec, value_max);
        srv->reply_bytes_max += cb_codec_overhead_max(srv->codec);
    }
    return CB_ERR_OK;
}

int cb_server_new(const cb_server_config *cfg, const cb_alloc *alloc, cb_server **out)
{
    *out = NULL;
    if (cfg->conn_max == 0 || cfg->conn_max > SERVER_CONN_MAX ||
        cfg->dedup_window > SERVER_DEDUP_MAX ||
        (cfg->dedup_window & (cfg->dedup_window - 1)) != 0) {
        return CB_ERR_INVALID;
    }
    cb_server *srv = cb_alloc_calloc(alloc, 1, sizeof *srv);
    if (srv == NULL) {
        return CB_ERR_NOMEM;
    }
    srv->cfg = *cfg;
    srv->alloc = alloc;
    if (srv->cfg.outbox_actions == 0) {
        srv->cfg.outbox_actions = 1024;
    }
    if (srv->cfg.sweep_interval_ns == 0) {
        srv->cfg.sweep_interval_ns = 100u * SERVER_NS_PER_MS;
    }
    int rc = CB_ERR_OK;
    srv->shards = cfg->shared_store;
    if (srv->shards == NULL) {
        rc = cb_shards_new(&cfg->store, 1, NULL, alloc, &srv->shards);
        if (rc != CB_ERR_OK) {
            goto out_free_server;
        }
        srv->own_shards = 1;
    }
    srv->sharded = cfg->shared_store != NULL;
    srv->store = srv->sharded ? NULL : cb_shards_acquire(srv->shards, 0); /* unlocked */
    rc = server_setup_codec(srv);
    if (rc != CB_ERR_OK) {
        goto out_del_store;
    }
    srv->flush_at_ns = UINT64_MAX;
    rc = CB_ERR_NOMEM;
    srv->framers = cb_alloc_calloc(alloc, cfg->conn_max, sizeof srv->framers[0]);
    if (srv->framers == NULL) {
        goto out_del_codec;
    }
    srv->conns = cb_alloc_calloc(alloc, cfg->conn_max, sizeof srv->conns[0]);
    if (srv->conns == NULL) {
        goto out_free_framers;
    }
    if (cfg->dedup_window > 0) {
        srv->dedup =
            cb_alloc_calloc(alloc, (size_t)cfg->conn_max * cfg->dedup_window, sizeof srv->dedup[0]);
        if (srv->dedup == NULL) {
            goto out_free_framers;
        }
    }
    /* Room for one maximal reply plus a batch of small ones. */
    rc = cb_outbox_init(&srv->outbox, srv->cfg.outbox_actions, srv->reply_bytes_max + 256u * 1024u,
                        alloc);
    if (rc != CB_ERR_OK) {
        goto out_free_framers;
    }
    srv->next_sweep_ns = srv->cfg.sweep_interval_ns;
    *out = srv;
    return CB_ERR_OK;

out_free_framers:
    cb_alloc_free(alloc, srv->dedup);
    cb_alloc_free(alloc, srv->conns);
    cb_alloc_free(alloc, srv->framers);
out_del_codec:
    cb_codec_del(srv->codec);
out_del_store:
    if (srv->own_shards) {
        cb_shards_del(srv->shards);
    }
out_free_server:
    cb_alloc_free(alloc, srv);
    return rc;
}

void cb_server_del(cb_server *srv)
{
    if (srv == NULL) {
        return;
    }
    for (uint32_t i = 0; i < srv->cfg.conn_max; i++) {
        cb_framer_free(&srv->framers[i], srv->alloc);
        server_text_reset(srv, &srv->conns[i]);
    }
    cb_outbox_free(&srv->outbox, srv->alloc);
    cb_alloc_free(srv->alloc, srv->scan_buf);
    cb_alloc_free(srv->alloc, srv->dedup);
    cb_alloc_free(srv->alloc, srv->conns);
    cb_alloc_free(srv->alloc, srv->framers);
    cb_codec_del(srv->codec);
    if (srv->own_shards) {
        cb_shards_del(srv->shards);
    }
    cb_alloc_free(srv->alloc, srv);
}

/* What executing one request produced: the reply's fields. */
typedef struct server_reply {
    uint16_t status;
    uint64_t cas;
    uint64_t arg;
    const uint8_t *value;
    size_t value_len;
} server_reply;

static uint16_t server_status_of(int err)
{
    switch (err) {
    case CB_ERR_OK:
        return CB_STATUS_OK;
    case CB_ERR_NOT_FOUND:
        return CB_STATUS_NOT_FOUND;
    case CB_ERR_EXISTS:
        return CB_STATUS_EXISTS;
    case CB_ERR_NOT_STORED:
        return CB_STATUS_NOT_STORED;
    case CB_ERR_NOT_NUMBER:
        return CB_STATUS_NOT_NUMBER;
    case CB_ERR_VALUE_TOO_LARGE:
        return CB_STATUS_TOO_LARGE;
    case CB_ERR_NOMEM:
        return CB_STATUS_NO_MEMORY;
    default:
        return CB_STATUS_BAD_REQUEST;
    }
}

static uint64_t server_ttl_ns(uint32_t ttl_ms)
{
    return (uint64_t)ttl_ms * SERVER_NS_PER_MS;
}

/* SET, ADD, REPLACE, CAS, APPEND, PREPEND. A SET whose arg is not 0 carries the writer's
 * version (docs/protocol.md §3.1): it is applied only over an older one, and its reply's arg
 * is the version stored after it. */
static int server_exec_store(cb_server *srv, const cb_frame *f, uint64_t now_ns, uint64_t *cas,
                             uint64_t *version)
{
    cb_store *st = srv->store;
    uint64_t ttl = server_ttl_ns(f->ttl_ms);
    switch (f->opcode) {
    case CB_OP_SET:
        if (f->arg != 0) {
            return cb_store_set_versioned(st, f->key, f->key_len, f->value, f->value_len, 0, ttl,
                                          f->arg, now_ns, cas, version);
        }
        return cb_store_set(st, f->key, f->key_len, f->value, f->value_len, 0, ttl, now_ns, cas);
    case CB_OP_ADD:
        return cb_store_add(st, f->key, f->key_len, f->value, f->value_len, 0, ttl, now_ns, cas);
    case CB_OP_REPLACE:
        return cb_store_replace(st, f->key, f->key_len, f->value, f->value_len, 0, ttl, now_ns,
                                cas);
    case CB_OP_CAS:
        return cb_store_cas(st, f->key, f->key_len, f->value, f->value_len, 0, ttl, f->cas, now_ns,
                            cas);
    case CB_OP_APPEND:
        return cb_store_append(st, f->key, f->key_len, f->value, f->value_len, now_ns, cas);
    default:
        assert(f->opcode == CB_OP_PREPEND);
        return cb_store_prepend(st, f->key, f->key_len, f->value, f->value_len, now_ns, cas);
    }
}

static int server_exec_get(cb_server *srv, const cb_frame *f, uint64_t now_ns, server_reply *r)
{
    cb_store_view v;
    int rc = cb_store_get(srv->store, f->key, f->key_len, now_ns, &v);
    if (rc == CB_ERR_OK) {
        r->value = v.value;
        r->value_len = v.value_len;
        r->cas = v.cas;
        r->arg = v.version;
    } else if (rc == CB_ERR_NOT_FOUND) {
        r->arg = v.version; /* a tombstone's version (docs/protocol.md §3.1), else 0 */
    }
    return rc;
}

/* Ops on one key that carry no value. */
static int server_exec_keyed(cb_server *srv, const cb_frame *f, uint64_t now_ns, server_reply *r)
{
    switch (f->opcode) {
    case CB_OP_GET:
        return server_exec_get(srv, f, now_ns, r);
    case CB_OP_DELETE:
        /* A DELETE whose arg is not 0 carries the writer's version (docs/protocol.md §3.1):
         * it leaves a tombstone, and its reply's arg is the version in force after it. */
        if (f->arg != 0) {
            return cb_store_delete_versioned(srv->store, f->key, f->key_len, f->arg, now_ns,
                                             &r->arg);
        }
        return cb_store_delete(srv->store, f->key, f->key_len, now_ns);
    case CB_OP_INCR:
        return cb_store_incr(srv->store, f->key, f->key_len, f->arg, now_ns, &r->arg, &r->cas);
    case CB_OP_DECR:
        return cb_store_decr(srv->store, f->key, f->key_len, f->arg, now_ns, &r->arg, &r->cas);
    default:
        assert(f->opcode == CB_OP_TOUCH);
        return cb_store_touch(srv->store, f->key, f->key_len, server_ttl_ns(f->ttl_ms), now_ns);
    }
}

/* Is the frame's shape right for its opcode (key present or not, value allowed or not)? */
static int server_request_well_formed(const cb_frame *f)
{
    /* With a codec, COMPRESSED and ENCRYPTED were undone before this (server_on_frame);
     * without one they are a configuration mismatch (docs/protocol.md §5.3, §6.3). */
    if ((f->flags & (CB_FLAG_RESPONSE | CB_FLAG_COMPRESSED | CB_FLAG_ENCRYPTED)) != 0) {
        return 0;
    }
    switch (f->opcode) {
    case CB_OP_SET:
    case CB_OP_ADD:
    case CB_OP_REPLACE:
    case CB_OP_CAS:
    case CB_OP_APPEND:
    case CB_OP_PREPEND:
        return f->key_len > 0;
    case CB_OP_FLUSH:
    case CB_OP_STATS:
    case CB_OP_NOOP:
    case CB_OP_SCAN:
        return f->key_len == 0 && f->value_len == 0;
    default:
        return f->key_len > 0 && f->value_len == 0;
    }
}

/* Execute one request; the reply's body (if any) is a view valid until the next store call,
 * or into `scratch` for STATS. */
static void server_execute(cb_server *srv, const cb_frame *f, uint64_t now_ns, server_reply *r,
                           char *scratch)
{
    memset(r, 0, sizeof *r);
    if (!server_request_well_formed(f)) {
        r->status = CB_STATUS_BAD_REQUEST;
        return;
    }
    int rc = CB_ERR_OK;
    switch (f->opcode) {
    case CB_OP_FLUSH:
        cb_shards_flush(srv->shards);
        break;
    case CB_OP_NOOP:
        break;
    case CB_OP_STATS: {
        long n = cb_server_format_stats(srv, scratch, SERVER_STATS_BYTES_MAX);
        assert(n >= 0);
        r->value = (const uint8_t *)scratch;
        r->value_len = n > 0 ? (size_t)n : 0;
        break;
    }
    case CB_OP_SCAN:
        rc = server_exec_scan(srv, f->arg, f->ttl_ms, now_ns, &r->value, &r->value_len, &r->arg);
        break;
    case CB_OP_SET:
    case CB_OP_ADD:
    case CB_OP_REPLACE:
    case CB_OP_CAS:
    case CB_OP_APPEND:
    case CB_OP_PREPEND:
        rc = server_exec_store(srv, f, now_ns, &r->cas, &r->arg);
        break;
    default:
        rc = server_exec_keyed(srv, f, now_ns, r);
        break;
    }
    r->status = server_status_of(rc);
}

/* Quiet requests omit the routine reply: a GET's miss, any other op's success. */
static int server_reply_suppressed(const cb_frame *f, const server_reply *r)
{
    if ((f->flags & CB_FLAG_QUIET) == 0) {
        return 0;
    }
    if (f->opcode == CB_OP_GET) {
        return r->status == CB_STATUS_NOT_FOUND;
    }
    return r->status == CB_STATUS_OK;
}

/* Encode (and with a codec, compress and seal) `rep` into the outbox arena. */
static size_t server_write_reply(cb_server *srv, uint32_t conn, cb_frame *rep, uint8_t **data)
{
    if (srv->codec != NULL) {
        /* Only a STATS body over a value limit below 4 KiB can fail (VALUE_TOO_LARGE): it
         * is then sent as it is, like any value that does not shrink. */
        (void)cb_codec_compress_conn(srv->codec, conn, rep);
    }
    size_t len =
        srv->codec != NULL ? cb_codec_wire_len(srv->codec, conn, rep) : cb_frame_encoded_len(rep);
    uint8_t *out = cb_outbox_reserve(&srv->outbox, len);
    assert(out != NULL); /* the caller checked for room for reply_bytes_max */
    long n = srv->codec != NULL ? cb_codec_write(srv->codec, conn, rep, out, len)
                                : cb_frame_encode(rep, out, len);
    assert(n == (long)len);
    (void)n;
    *data = out;
    return len;
}

static void server_queue_reply(cb_server *srv, uint32_t conn, const cb_frame *req,
                               const server_reply *r)
{
    cb_frame rep;
    memset(&rep, 0, sizeof rep);
    rep.opcode = req->opcode;
    rep.flags = CB_FLAG_RESPONSE;
    rep.status = r->status;
    rep.request_id = req->request_id;
    rep.opaque = req->opaque;
    rep.cas = r->cas;
    rep.arg = r->arg;
    rep.value = r->value;
    rep.value_len = (uint32_t)r->value_len;
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_SEND;
    a.peer = conn;
    a.data_len = server_write_reply(srv, conn, &rep, (uint8_t **)&a.data);
    int rc = cb_outbox_push(&srv->outbox, &a);
    assert(rc == CB_ERR_OK);
    (void)rc;
    srv->stats.replies++;
    srv->stats.bytes_sent += a.data_len;
}

/* The window entry for request `f` on `conn`, or NULL when the window is off or `f` is
 * idempotent (GET, STATS, NOOP, SCAN: running them again is harmless, and GET replies are large).
 */
static server_dedup *server_dedup_slot(cb_server *srv, uint32_t conn, const cb_frame *f)
{
    if (srv->dedup == NULL || f->opcode == CB_OP_GET || f->opcode == CB_OP_STATS ||
        f->opcode == CB_OP_NOOP || f->opcode == CB_OP_SCAN || f->request_id == 0) {
        return NULL;
    }
    uint32_t w = srv->cfg.dedup_window;
    return &srv->dedup[(size_t)conn * w + (f->request_id & (w - 1))];
}

static void server_handle(cb_server *srv, uint32_t conn, const cb_frame *f, uint64_t now_ns,
                          size_t wire_len)
{
    char scratch[SERVER_STATS_BYTES_MAX];
    server_reply r;
    srv->stats.requests++;
    srv->stats.bytes_received += wire_len;
    server_dedup *d = server_dedup_slot(srv, conn, f);
    if (d != NULL && d->request_id == f->request_id && d->opcode == f->opcode) {
        memset(&r, 0, sizeof r);
        r.status = d->status;
        r.cas = d->cas;
        r.arg = d->arg;
        srv->stats.dedup_replays++;
        server_queue_reply(srv, conn, f, &r);
        return;
    }
    /* A keyed request holds its shard until its reply (a view into the store) is copied. */
    int keyed = f->key_len > 0;
    if (keyed) {
        server_key_lock(srv, f->key, f->key_len);
    }
    server_execute(srv, f, now_ns, &r, scratch);
    if (d != NULL) {
        d->request_id = f->request_id;
        d->opcode = f->opcode;
        d->status = r.status;
        d->cas = r.cas;
        d->arg = r.arg;
    }
    if (r.status == CB_STATUS_BAD_REQUEST) {
        srv->stats.bad_requests++;
    }
    if (!server_reply_suppressed(f, &r)) {
        server_queue_reply(srv, conn, f, &r);
    }
    if (keyed) {
        server_key_unlock(srv);
    }
}

static void server_event(cb_server *srv, uint32_t conn, uint8_t kind, int err, uint32_t request_id)
{
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_EVENT;
    a.peer = conn;
    a.event.kind = kind;
    a.event.detail = err;
    a.event.request_id = request_id;
    /* The caller checked for two free action slots: this and a close or a reply fit. */
    (void)cb_outbox_push(&srv->outbox, &a);
}

/* Count and queue the event of `kind` (PROTOCOL_ERROR or FRAME_REJECTED), then a CLOSE. */
static void server_queue_event_close(cb_server *srv, uint32_t conn, uint8_t kind, int err)
{
    if (kind == CB_EVENT_PROTOCOL_ERROR) {
        srv->stats.protocol_errors++;
    } else {
        srv->stats.frames_rejected++;
    }
    server_event(srv, conn, kind, err, 0);
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_CLOSE;
    a.peer = conn;
    (void)cb_outbox_push(&srv->outbox, &a);
}

void server_queue_close(cb_server *srv, uint32_t conn, int err)
{
    server_queue_event_close(srv, conn, CB_EVENT_PROTOCOL_ERROR, err);
}

/* Close `conn` after undecodable input (PROTOCOL_ERROR) or a frame that did not open
 * (FRAME_REJECTED); its partial input and seal sessions are dropped. */
static long server_close_conn(cb_server *srv, uint32_t conn, uint8_t kind, int err)
{
    cb_framer_reset(&srv->framers[conn]);
    srv->conns[conn].started = 0;
    if (srv->codec != NULL) {
        cb_codec_reset(srv->codec, conn);
    }
    server_queue_event_close(srv, conn, kind, err);
    return err;
}

void server_flush_if_due(cb_server *srv, uint64_t now_ns)
{
    if (now_ns >= srv->flush_at_ns) {
        cb_shards_flush(srv->shards);
        srv->flush_at_ns = UINT64_MAX;
    }
}

static long server_protocol_error(cb_server *srv, uint32_t conn, int err)
{
    return server_close_conn(srv, conn, CB_EVENT_PROTOCOL_ERROR, err);
}

/* A request whose value the codec refused: answer it, keep the connection (§5.3). */
static void server_reject_value(cb_server *srv, uint32_t conn, const cb_frame *f, int err)
{
    srv->stats.frames_rejected++;
    srv->stats.bad_requests++;
    server_event(srv, conn, CB_EVENT_FRAME_REJECTED, err, f->request_id);
    server_reply r;
    memset(&r, 0, sizeof r);
    r.status = err == CB_ERR_VALUE_TOO_LARGE ? CB_STATUS_TOO_LARGE : CB_STATUS_BAD_REQUEST;
    server_queue_reply(srv, conn, f, &r);
}

/*
 * A HELLO (docs/protocol.md §5.3). As the connection's first frame, well formed (a request,
 * no key, no value, a bitmask of known algorithms with at least one bit): the reply's arg is
 * our algorithm if the bitmask has it, else CB_COMPRESS_NONE, and the connection compresses
 * with that alone from now on. As the first frame but malformed: BAD_REQUEST, and the
 * connection agrees on none. Later on the connection: BAD_REQUEST, nothing changes. A HELLO
 * is always answered (QUIET is ignored).
 */
static void server_hello(cb_server *srv, uint32_t conn, const cb_frame *f, int first,
                         size_t wire_len)
{
    server_reply r;
    memset(&r, 0, sizeof r);
    srv->stats.requests++;
    srv->stats.bytes_received += wire_len;
    int well_formed = (f->flags & (CB_FLAG_RESPONSE | CB_FLAG_COMPRESSED)) == 0 &&
                      f->key_len == 0 && f->value_len == 0 && f->arg != 0 &&
                      (f->arg & ~(uint64_t)CB_CODEC_HELLO_MASK_KNOWN) == 0;
    if (first && well_formed) {
        r.arg = cb_codec_hello_choose(srv->codec, f->arg);
    } else {
        r.status = CB_STATUS_BAD_REQUEST;
        srv->stats.bad_requests++;
    }
    if (first && srv->codec != NULL) {
        cb_codec_agree(srv->codec, conn, (uint8_t)r.arg);
    }
    server_queue_reply(srv, conn, f, &r);
}

/*
 * One whole frame from `conn`: open and decompress it if a codec is configured, then run
 * it. Returns CB_ERR_OK, or the error that closed the connection (docs/protocol.md §6.3).
 */
static long server_on_frame(cb_server *srv, uint32_t conn, const cb_frame *wire, uint64_t now_ns)
{
    size_t wire_len = cb_frame_encoded_len(wire);
    int first = !srv->conns[conn].started;
    srv->conns[conn].started = 1;
    if (srv->codec == NULL && wire->opcode == CB_OP_HELLO &&
        (wire->flags & SERVER_CODEC_FLAGS) == 0) {
        server_hello(srv, conn, wire, first, wire_len);
        return CB_ERR_OK;
    }
    if (srv->codec == NULL && (wire->flags & SERVER_CODEC_FLAGS) != 0) {
        server_reject_value(srv, conn, wire, CB_ERR_CODEC_MISMATCH);
        return CB_ERR_OK;
    }
    if (srv->codec == NULL) {
        server_handle(srv, conn, wire, now_ns, wire_len);
        return CB_ERR_OK;
    }
    cb_frame f;
    int rc = cb_codec_open(srv->codec, conn, wire, &f);
    if (rc != CB_ERR_OK && !cb_codec_sealing(srv->codec)) {
        server_reject_value(srv, conn, wire, rc); /* ENCRYPTED while sealing is off */
        return CB_ERR_OK;
    }
    if (rc != CB_ERR_OK && cb_codec_datagram(srv->codec)) {
        srv->stats.frames_rejected++;
        server_event(srv, conn, CB_EVENT_FRAME_REJECTED, rc, 0); /* dropped */
        return CB_ERR_OK;
    }
    if (rc != CB_ERR_OK) {
        return server_close_conn(srv, conn, CB_EVENT_FRAME_REJECTED, rc);
    }
    rc = cb_codec_decompress(srv->codec, &f);
    if (rc != CB_ERR_OK) {
        server_reject_value(srv, conn, &f, rc);
        return CB_ERR_OK;
    }
    if (f.opcode == CB_OP_HELLO) {
        server_hello(srv, conn, &f, first, wire_len);
        return CB_ERR_OK;
    }
    server_handle(srv, conn, &f, now_ns, wire_len);
    return CB_ERR_OK;
}

long cb_server_on_bytes(cb_server *srv, uint32_t conn, const uint8_t *buf, size_t buf_len,
                        uint64_t now_ns)
{
    if (conn >= srv->cfg.conn_max) {
        return CB_ERR_UNKNOWN_CONN;
    }
    server_conn *c = &srv->conns[conn];
    server_flush_if_due(srv, now_ns);
    if (c->proto == SERVER_PROTO_UNKNOWN && buf_len > 0) {
        /* The first byte decides for the connection's life (docs/real.md §3): the frame's
         * magic starts with 0xCB, which no text command does. */
        c->proto = buf[0] == (CB_FRAME_MAGIC >> 8) ? SERVER_PROTO_BINARY : SERVER_PROTO_TEXT;
    }
    if (c->proto == SERVER_PROTO_TEXT) {
        return server_text_on_bytes(srv, conn, buf, buf_len, now_ns);
    }
    const uint8_t *in = buf;
    size_t in_len = buf_len;
    while (in_len > 0 && cb_outbox_has_room_n(&srv->outbox, 2, srv->reply_bytes_max)) {
        cb_frame f;
        int rc = cb_framer_next(&srv->framers[conn], &in, &in_len, &srv->limits, srv->alloc, &f);
        if (rc < 0 && rc != CB_ERR_NOMEM) {
            return server_protocol_error(srv, conn, rc);
        }
        if (rc <= 0) {
            break; /* input used up, or no memory for a partial frame: retry later */
        }
        long frc = server_on_frame(srv, conn, &f, now_ns);
        if (frc < 0) {
            return frc;
        }
    }
    return (long)(buf_len - in_len);
}

int cb_server_on_close(cb_server *srv, uint32_t conn)
{
    if (conn >= srv->cfg.conn_max) {
        return CB_ERR_UNKNOWN_CONN;
    }
    cb_framer_reset(&srv->framers[conn]);
    if (srv->codec != NULL) {
        cb_codec_reset(srv->codec, conn);
    }
    server_text_reset(srv, &srv->conns[conn]);
    return CB_ERR_OK;
}

int cb_server_forget(cb_server *srv, uint32_t conn)
{
    int rc = cb_server_on_close(srv, conn);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    if (srv->codec != NULL) {
        cb_codec_forget(srv->codec, conn);
    }
    if (srv->dedup != NULL) {
        uint32_t w = srv->cfg.dedup_window;
        memset(&srv->dedup[(size_t)conn * w], 0, (size_t)w * sizeof srv->dedup[0]);
    }
    return CB_ERR_OK;
}

int cb_server_on_timer(cb_server *srv, uint64_t now_ns)
{
    server_flush_if_due(srv, now_ns);
    if (now_ns < srv->next_sweep_ns) {
        return CB_ERR_OK;
    }
    (void)cb_shards_sweep(srv->shards, now_ns); /* the count is in the store's stats */
    srv->next_sweep_ns = now_ns + srv->cfg.sweep_interval_ns;
    return CB_ERR_OK;
}

uint64_t cb_server_next_deadline_ns(const cb_server *srv)
{
    return srv->next_sweep_ns < srv->flush_at_ns ? srv->next_sweep_ns : srv->flush_at_ns;
}

size_t cb_server_drain(cb_server *srv, cb_action *out, size_t out_cap)
{
    return cb_outbox_drain(&srv->outbox, out, out_cap);
}

const cb_action *cb_server_pop(cb_server *srv)
{
    return cb_outbox_pop(&srv->outbox);
}

cb_store *cb_server_store(cb_server *srv)
{
    return srv->store;
}

void cb_server_get_stats(const cb_server *srv, cb_server_stats *out)
{
    *out = srv->stats;
    cb_shards_stats_get(srv->shards, &out->store);
}

/* The STATS reply: every counter, memcached-style names where memcached has one. */
#define SERVER_STAT_FIELDS(X)                                                                      \
    X("curr_items", store.items)                                                                   \
    X("bytes", store.bytes_used)                                                                   \
    X("limit_maxbytes", store.memory_bytes_max)                                                    \
    X("total_items", store.total_items)                                                            \
    X("get_hits", store.get_hits)                                                                  \
    X("get_misses", store.get_misses)                                                              \
    X("cas_hits", store.cas_hits)                                                                  \
    X("cas_misses", store.cas_misses)                                                              \
    X("cas_badval", store.cas_badval)                                                              \
    X("evictions", store.evictions)                                                                \
    X("expired", store.expirations)                                                                \
    X("reclaimed", store.reclaimed)                                                                \
    X("cmd_get", store.cmd_get)                                                                    \
    X("cmd_set", store.cmd_set)                                                                    \
    X("cmd_add", store.cmd_add)                                                                    \
    X("cmd_replace", store.cmd_replace)                                                            \
    X("cmd_append", store.cmd_append)                                                              \
    X("cmd_prepend", store.cmd_prepend)                                                            \
    X("cmd_cas", store.cmd_cas)                                                                    \
    X("cmd_delete", store.cmd_delete)                                                              \
    X("cmd_incr", store.cmd_incr)                                                                  \
    X("cmd_decr", store.cmd_decr)                                                                  \
    X("cmd_touch", store.cmd_touch)                                                                \
    X("cmd_flush", store.cmd_flush)                                                                \
    X("hash_buckets", store.buckets)                                                               \
    X("hash_is_expanding", store.rehashing)                                                        \
    X("requests", requests)                                                                        \
    X("replies", replies)                                                                          \
    X("bad_requests", bad_requests)                                                                \
    X("protocol_errors", protocol_errors)                                                          \
    X("dedup_replays", dedup_replays)                                                              \
    X("frames_rejected", frames_rejected)                                                          \
    X("bytes_read", bytes_received)                                                                \
    X("bytes_written", bytes_sent)

long cb_server_format_stats(const cb_server *srv, char *out, size_t out_cap)
{
    cb_server_stats s;
    cb_server_get_stats(srv, &s);
    size_t len = 0;
#define SERVER_STAT_LINE(name, field)                                                              \
    {                                                                                              \
        int n =                                                                                    \
            snprintf(out + len, out_cap - len, "%s %llu\n", name, (unsigned long long)s.field);    \
        if (n < 0 || (size_t)n >= out_cap - len) {                                                 \
            return CB_ERR_FULL;                                                                    \
        }                                                                                          \
        len += (size_t)n;                                                                          \
    }
    SERVER_STAT_FIELDS(SERVER_STAT_LINE)
#undef SERVER_STAT_LINE
    return (long)len;
}
