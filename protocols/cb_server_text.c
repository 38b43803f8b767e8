/*
 * cb_server_text.c: the server machine's memcached text protocol path (cb_server.h, "Two
 * protocols"; docs/real.md §3-§4).
 *
 * Input: requests are parsed in place from the caller's bytes; only a request split across
 * calls is copied into the connection's buffer, and only up to its own end (its line, then
 * its data block once the line says how long it is), like cb_framer does for frames.
 * Output: replies are appended to the outbox with cb_outbox_send, so the replies to a
 * pipeline of small requests leave as one SEND. Every request needs room for one maximal
 * reply before it runs; a multi-key get checks room before each key and, when the outbox is
 * full, remembers the key it stopped at and is parsed again on the next call (its input was
 * left unconsumed).
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "cb_err.h"
#include "cb_server_int.h"

/* A connection keeps a text buffer of at most this size between requests. */
#define TEXT_CONN_KEEP_BYTES (16u * 1024u)
/* The longest meta reply line: code, size, every return flag at its longest. */
#define TEXT_META_LINE_BYTES_MAX 512u

#ifndef CB_VERSION
#define CB_VERSION "unknown"
#endif

enum { TEXT_CONTINUE = 1, TEXT_STOP = 0 };

/* ---- output ------------------------------------------------------------------------------- */

static int text_room(const cb_server *srv, size_t bytes, size_t actions)
{
    return cb_outbox_has_room_n(&srv->outbox, actions, bytes);
}

/* Bytes of the outbox for `conn`; the caller checked the room. */
static uint8_t *text_out(cb_server *srv, uint32_t conn, size_t len)
{
    uint8_t *p = cb_outbox_send(&srv->outbox, conn, len);
    assert(p != NULL);
    srv->stats.bytes_sent += len;
    return p;
}

static void text_put(cb_server *srv, uint32_t conn, const void *data, size_t len)
{
    if (len > 0) {
        memcpy(text_out(srv, conn, len), data, len);
    }
}

static void text_line(cb_server *srv, uint32_t conn, const char *line)
{
    size_t n = strlen(line);
    uint8_t *p = text_out(srv, conn, n + 2);
    memcpy(p, line, n);
    memcpy(p + n, "\r\n", 2);
    srv->stats.replies++;
}

/* The reply of a classic command, unless it asked for none. */
static void text_reply(cb_server *srv, uint32_t conn, const cb_text_request *req, const char *line)
{
    if (!req->noreply) {
        text_line(srv, conn, line);
    }
}

static void text_close(cb_server *srv, uint32_t conn, int err)
{
    srv->conns[conn].closing = 1;
    if (err != CB_ERR_OK) {
        server_queue_close(srv, conn, err);
        return;
    }
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_CLOSE;
    a.peer = conn;
    (void)cb_outbox_push(&srv->outbox, &a); /* the caller checked for free slots */
}

/* ---- time --------------------------------------------------------------------------------- */

typedef struct text_ttl {
    uint64_t ttl_ns; /* 0: never expires */
    int expired;     /* the exptime is already past: the item must not be visible */
} text_ttl;

/* memcached exptime: 0 never, < 0 already expired, up to 30 days relative, else absolute
 * Unix time (cb_server_config.clock_unix_s gives the Unix time at now_ns == 0). */
static text_ttl text_ttl_of(const cb_server *srv, int64_t exptime, uint64_t now_ns)
{
    text_ttl t = {0, 0};
    if (exptime < 0) {
        t.expired = 1;
    } else if (exptime > 0 && exptime <= CB_TEXT_RELATIVE_EXPTIME_MAX) {
        t.ttl_ns = (uint64_t)exptime * SERVER_NS_PER_S;
    } else if (exptime > 0) {
        /* exptime < 2^31 and clock_unix_s is a present-day time: no overflow below 2^63 */
        uint64_t at_ns = (uint64_t)exptime * SERVER_NS_PER_S;
        uint64_t base_ns = srv->cfg.clock_unix_s * SERVER_NS_PER_S + now_ns;
        t.expired = at_ns <= base_ns;
        t.ttl_ns = t.expired ? 0 : at_ns - base_ns;
    }
    return t;
}

/* Remaining whole seconds (rounded up) of an item expiring at expire_ns; -1 for never. */
static int64_t text_ttl_left_s(uint64_t expire_ns, uint64_t now_ns)
{
    if (expire_ns == UINT64_MAX) {
        return -1;
    }
    if (expire_ns <= now_ns) {
        return 0;
    }
    return (int64_t)((expire_ns - now_ns + SERVER_NS_PER_S - 1) / SERVER_NS_PER_S);
}

/* ---- retrieval ---------------------------------------------------------------------------- */

static void text_get_one(cb_server *srv, uint32_t conn, const cb_text_request *req,
                         const uint8_t *key, size_t key_len, uint64_t now_ns)
{
    int touch = req->cmd == CB_TEXT_CMD_GAT || req->cmd == CB_TEXT_CMD_GATS;
    if (touch) {
        text_ttl t = text_ttl_of(srv, req->exptime, now_ns);
        if (cb_store_touch(srv->store, key, key_len, t.ttl_ns, now_ns) != CB_ERR_OK) {
            return;
        }
        if (t.expired) {
            (void)cb_store_delete(srv->store, key, key_len, now_ns); /* it was just there */
            return;
        }
    }
    cb_store_view v;
    if (cb_store_get(srv->store, key, key_len, now_ns, &v) != CB_ERR_OK) {
        return;
    }
    uint8_t head[CB_TEXT_VALUE_HEADER_BYTES_MAX];
    int with_cas = req->cmd == CB_TEXT_CMD_GETS || req->cmd == CB_TEXT_CMD_GATS;
    long n = cb_text_encode_value_header(head, sizeof head, key, key_len, v.flags, v.value_len,
                                         with_cas, v.cas);
    assert(n > 0);
    uint8_t *p = text_out(srv, conn, (size_t)n + v.value_len + 2);
    memcpy(p, head, (size_t)n);
    if (v.value_len > 0) {
        memcpy(p + n, v.value, v.value_len);
    }
    memcpy(p + (size_t)n + v.value_len, "\r\n", 2);
}

/* get, gets, gat, gats. Returns 0 when the outbox filled before the last key (the request
 * is run again from conns[conn].get_resume on the next call). */
static int text_exec_get(cb_server *srv, uint32_t conn, const cb_text_request *req, uint64_t now_ns)
{
    server_conn *c = &srv->conns[conn];
    size_t cursor = c->get_resume;
    size_t worst = CB_TEXT_VALUE_HEADER_BYTES_MAX + srv->text_limits.value_bytes_max + 2 + 5;
    const uint8_t *key;
    size_t key_len;
    for (;;) {
        size_t before = cursor;
        if (!cb_text_next_key(req, &cursor, &key, &key_len)) {
            break;
        }
        if (!text_room(srv, worst, 2)) {
            c->get_resume = before;
            return 0;
        }
        server_key_lock(srv, key, key_len); /* one key at a time: keys live in many shards */
        text_get_one(srv, conn, req, key, key_len, now_ns);
        server_key_unlock(srv);
    }
    c->get_resume = 0;
    text_line(srv, conn, "END");
    return 1;
}

/* ---- storage and single-key commands ------------------------------------------------------ */

static int text_store_op(cb_server *srv, uint8_t cmd, const cb_text_request *req, uint64_t ttl_ns,
                         uint64_t now_ns, uint64_t *cas)
{
    cb_store *st = srv->store;
    const uint8_t *k = req->key, *v = req->value;
    size_t kl = req->key_len, vl = req->value_len;
    switch (cmd) {
    case CB_TEXT_CMD_SET:
        return cb_store_set(st, k, kl, v, vl, req->flags, ttl_ns, now_ns, cas);
    case CB_TEXT_CMD_ADD:
        return cb_store_add(st, k, kl, v, vl, req->flags, ttl_ns, now_ns, cas);
    case CB_TEXT_CMD_REPLACE:
        return cb_store_replace(st, k, kl, v, vl, req->flags, ttl_ns, now_ns, cas);
    case CB_TEXT_CMD_CAS:
        return cb_store_cas(st, k, kl, v, vl, req->flags, ttl_ns, req->cas, now_ns, cas);
    case CB_TEXT_CMD_APPEND:
        return cb_store_append(st, k, kl, v, vl, now_ns, cas);
    default:
        assert(cmd == CB_TEXT_CMD_PREPEND);
        return cb_store_prepend(st, k, kl, v, vl, now_ns, cas);
    }
}

static const char *text_store_line(int rc)
{
    switch (rc) {
    case CB_ERR_OK:
        return "STORED";
    case CB_ERR_NOT_STORED:
        return "NOT_STORED";
    case CB_ERR_EXISTS:
        return "EXISTS";
    case CB_ERR_NOT_FOUND:
        return "NOT_FOUND";
    case CB_ERR_VALUE_TOO_LARGE:
        return "SERVER_ERROR object too large for cache";
    default:
        return "SERVER_ERROR out of memory storing object";
    }
}

/* Store with a memcached exptime; an exptime already past stores nothing visible. A SET that
 * fails for size or memory drops the old item, as memcached does, so no stale value stays. */
static int text_store(cb_server *srv, uint8_t cmd, const cb_text_request *req, uint64_t now_ns,
                      uint64_t *cas)
{
    int keeps_expiry = cmd == CB_TEXT_CMD_APPEND || cmd == CB_TEXT_CMD_PREPEND;
    text_ttl t = text_ttl_of(srv, req->exptime, now_ns);
    int rc = text_store_op(srv, cmd, req, t.ttl_ns, now_ns, cas);
    if (rc == CB_ERR_OK && t.expired && !keeps_expiry) {
        (void)cb_store_delete(srv->store, req->key, req->key_len, now_ns); /* just stored */
    }
    if (cmd == CB_TEXT_CMD_SET && (rc == CB_ERR_VALUE_TOO_LARGE || rc == CB_ERR_NOMEM)) {
        (void)cb_store_delete(srv->store, req->key, req->key_len, now_ns); /* may be absent */
    }
    return rc;
}

static void text_exec_arith(cb_server *srv, uint32_t conn, const cb_text_request *req,
                            uint64_t now_ns)
{
    uint64_t value = 0;
    int rc =
        req->cmd == CB_TEXT_CMD_INCR
            ? cb_store_incr(srv->store, req->key, req->key_len, req->delta, now_ns, &value, NULL)
            : cb_store_decr(srv->store, req->key, req->key_len, req->delta, now_ns, &value, NULL);
    if (rc == CB_ERR_OK) {
        if (!req->noreply) {
            char num[24];
            int n = snprintf(num, sizeof num, "%llu", (unsigned long long)value);
            assert(n > 0);
            (void)n;
            text_line(srv, conn, num);
        }
        return;
    }
    text_reply(srv, conn, req,
               rc == CB_ERR_NOT_FOUND ? "NOT_FOUND"
               : rc == CB_ERR_NOT_NUMBER
                   ? "CLIENT_ERROR cannot increment or decrement non-numeric value"
                   : "SERVER_ERROR out of memory");
}

static void text_exec_touch(cb_server *srv, uint32_t conn, const cb_text_request *req,
                            uint64_t now_ns)
{
    text_ttl t = text_ttl_of(srv, req->exptime, now_ns);
    int rc = cb_store_touch(srv->store, req->key, req->key_len, t.ttl_ns, now_ns);
    if (rc == CB_ERR_OK && t.expired) {
        (void)cb_store_delete(srv->store, req->key, req->key_len, now_ns); /* just touched */
    }
    text_reply(srv, conn, req, rc == CB_ERR_OK ? "TOUCHED" : "NOT_FOUND");
}

static void text_exec_flush(cb_server *srv, uint32_t conn, const cb_text_request *req,
                            uint64_t now_ns)
{
    if (req->has_number && req->number > 0) {
        srv->flush_at_ns = now_ns + req->number * SERVER_NS_PER_S;
    } else {
        cb_shards_flush(srv->shards);
        srv->flush_at_ns = UINT64_MAX; /* an immediate flush replaces a pending one */
    }
    text_reply(srv, conn, req, "OK");
}

/* stats: "STAT name value" for every counter, then END. A group (stats items, settings...)
 * gets an empty list: cachebed has no slabs or settings to report. */
static void text_exec_stats(cb_server *srv, uint32_t conn, const cb_text_request *req,
                            uint64_t now_ns)
{
    char body[SERVER_STATS_BYTES_MAX];
    char out[2 * SERVER_STATS_BYTES_MAX];
    size_t len = 0;
    if (req->keys_len == 0) {
        long n = cb_server_format_stats(srv, body, sizeof body);
        assert(n >= 0);
        int m = snprintf(
            out, sizeof out, "STAT uptime %llu\r\nSTAT time %llu\r\nSTAT version %s\r\n",
            (unsigned long long)(now_ns / SERVER_NS_PER_S),
            (unsigned long long)(srv->cfg.clock_unix_s + now_ns / SERVER_NS_PER_S), CB_VERSION);
        assert(m > 0 && (size_t)m < sizeof out);
        len = (size_t)m;
        for (char *line = body, *end; line < body + n; line = end + 1) {
            end = memchr(line, '\n', (size_t)(body + n - line));
            assert(end != NULL);
            m = snprintf(out + len, sizeof out - len, "STAT %.*s\r\n", (int)(end - line), line);
            assert(m > 0 && (size_t)m < sizeof out - len);
            len += (size_t)m;
        }
    }
    text_put(srv, conn, out, len);
    text_line(srv, conn, "END");
}

/* ---- meta commands ------------------------------------------------------------------------ */

static int text_meta_has(const cb_text_request *req, char letter)
{
    return (req->meta & CB_TEXT_META_BIT(letter)) != 0;
}

/* The reply line (and, for VA, the data); `item` NULL echoes only O and k. */
static void text_meta_reply(cb_server *srv, uint32_t conn, const cb_text_request *req,
                            const char *code, const cb_text_meta_item *item, const uint8_t *data,
                            size_t data_len)
{
    uint8_t line[TEXT_META_LINE_BYTES_MAX];
    long n = cb_text_encode_meta(line, sizeof line, code, data_len, req, item);
    assert(n > 0);
    int va = strcmp(code, "VA") == 0;
    uint8_t *p = text_out(srv, conn, (size_t)n + (va ? data_len + 2 : 0));
    memcpy(p, line, (size_t)n);
    if (va) {
        if (data_len > 0) {
            memcpy(p + n, data, data_len);
        }
        memcpy(p + (size_t)n + data_len, "\r\n", 2);
    }
    srv->stats.replies++;
}

/* Fill `item` from the live item (for return flags after a write). 0 when it is gone. */
static int text_meta_peek(cb_server *srv, const cb_text_request *req, uint64_t now_ns,
                          cb_text_meta_item *item)
{
    cb_store_view v;
    if (cb_store_get(srv->store, req->key, req->key_len, now_ns, &v) != CB_ERR_OK) {
        return 0;
    }
    item->cas = v.cas;
    item->flags = v.flags;
    item->ttl_s = text_ttl_left_s(v.expire_ns, now_ns);
    item->size = v.value_len;
    return 1;
}

/* The C flag: CB_ERR_OK when absent or matching, else NOT_FOUND or EXISTS. */
static int text_meta_cas_check(cb_server *srv, const cb_text_request *req, uint64_t now_ns)
{
    if (!text_meta_has(req, 'C')) {
        return CB_ERR_OK;
    }
    cb_store_view v;
    if (cb_store_get(srv->store, req->key, req->key_len, now_ns, &v) != CB_ERR_OK) {
        return CB_ERR_NOT_FOUND;
    }
    return v.cas == req->cas ? CB_ERR_OK : CB_ERR_EXISTS;
}

static const char *text_meta_code(int rc)
{
    switch (rc) {
    case CB_ERR_OK:
        return "HD";
    case CB_ERR_NOT_STORED:
        return "NS";
    case CB_ERR_EXISTS:
        return "EX";
    case CB_ERR_NOT_FOUND:
        return "NF";
    case CB_ERR_VALUE_TOO_LARGE:
        return "SERVER_ERROR object too large for cache";
    case CB_ERR_NOT_NUMBER:
        return "CLIENT_ERROR cannot increment or decrement non-numeric value";
    default:
        return "SERVER_ERROR out of memory";
    }
}

/* A meta outcome without data: HD (hidden by q), NS/EX/NF with O and k, or an error line. */
static void text_meta_outcome(cb_server *srv, uint32_t conn, const cb_text_request *req, int rc,
                              uint64_t now_ns)
{
    const char *code = text_meta_code(rc);
    if (rc == CB_ERR_OK) {
        cb_text_meta_item item;
        memset(&item, 0, sizeof item);
        int live = text_meta_peek(srv, req, now_ns, &item);
        if (!req->noreply) {
            text_meta_reply(srv, conn, req, code, live ? &item : NULL, NULL, 0);
        }
    } else if (strlen(code) == 2) {
        text_meta_reply(srv, conn, req, code, NULL, NULL, 0);
    } else {
        text_line(srv, conn, code);
    }
}

static void text_exec_mg(cb_server *srv, uint32_t conn, const cb_text_request *req, uint64_t now_ns)
{
    int rc = CB_ERR_OK;
    if (req->has_exptime) {
        text_ttl t = text_ttl_of(srv, req->exptime, now_ns);
        rc = cb_store_touch(srv->store, req->key, req->key_len, t.ttl_ns, now_ns);
        if (rc == CB_ERR_OK && t.expired) {
            (void)cb_store_delete(srv->store, req->key, req->key_len, now_ns);
            rc = CB_ERR_NOT_FOUND;
        }
    }
    cb_store_view v;
    if (rc == CB_ERR_OK) {
        rc = cb_store_get(srv->store, req->key, req->key_len, now_ns, &v);
    }
    if (rc != CB_ERR_OK) {
        if (!req->noreply) {
            text_line(srv, conn, "EN");
        }
        return;
    }
    cb_text_meta_item item = {v.cas, v.flags, text_ttl_left_s(v.expire_ns, now_ns), v.value_len};
    if (text_meta_has(req, 'v')) {
        text_meta_reply(srv, conn, req, "VA", &item, v.value, v.value_len);
    } else {
        text_meta_reply(srv, conn, req, "HD", &item, NULL, 0);
    }
}

static void text_exec_ms(cb_server *srv, uint32_t conn, const cb_text_request *req, uint64_t now_ns)
{
    static const struct {
        char mode;
        uint8_t cmd;
    } modes[] = {{'S', CB_TEXT_CMD_SET},
                 {'E', CB_TEXT_CMD_ADD},
                 {'R', CB_TEXT_CMD_REPLACE},
                 {'A', CB_TEXT_CMD_APPEND},
                 {'P', CB_TEXT_CMD_PREPEND}};
    uint8_t cmd = CB_TEXT_CMD_SET;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (modes[i].mode == req->mode) {
            cmd = modes[i].cmd;
        }
    }
    uint64_t cas = 0;
    int rc = text_meta_cas_check(srv, req, now_ns);
    if (rc == CB_ERR_OK) {
        rc = text_store(srv, cmd, req, now_ns, &cas);
    }
    text_meta_outcome(srv, conn, req, rc, now_ns);
}

static void text_exec_md(cb_server *srv, uint32_t conn, const cb_text_request *req, uint64_t now_ns)
{
    int rc = text_meta_cas_check(srv, req, now_ns);
    if (rc == CB_ERR_OK) {
        rc = cb_store_delete(srv->store, req->key, req->key_len, now_ns);
    }
    if (rc == CB_ERR_OK) {
        if (!req->noreply) {
            text_meta_reply(srv, conn, req, "HD", NULL, NULL, 0);
        }
        return;
    }
    text_meta_outcome(srv, conn, req, rc, now_ns);
}

/* ma: incr/decr, N creates a missing item holding J, T sets the TTL on success. */
static int text_ma_apply(cb_server *srv, const cb_text_request *req, uint64_t now_ns,
                         uint64_t *value)
{
    const uint8_t *k = req->key;
    size_t kl = req->key_len;
    int rc = req->mode == 'D' ? cb_store_decr(srv->store, k, kl, req->delta, now_ns, value, NULL)
                              : cb_store_incr(srv->store, k, kl, req->delta, now_ns, value, NULL);
    if (rc == CB_ERR_NOT_FOUND && req->has_vivify) {
        char num[24];
        int n = snprintf(num, sizeof num, "%llu", (unsigned long long)req->number);
        assert(n > 0);
        text_ttl t = text_ttl_of(srv, req->vivify_exptime, now_ns);
        rc = cb_store_add(srv->store, k, kl, (const uint8_t *)num, (size_t)n, 0, t.ttl_ns, now_ns,
                          NULL);
        *value = req->number;
        return rc == CB_ERR_NOT_STORED ? CB_ERR_NOT_STORED : rc;
    }
    if (rc == CB_ERR_OK && req->has_exptime) {
        text_ttl t = text_ttl_of(srv, req->exptime, now_ns);
        (void)cb_store_touch(srv->store, k, kl, t.ttl_ns, now_ns); /* it was just updated */
    }
    return rc;
}

static void text_exec_ma(cb_server *srv, uint32_t conn, const cb_text_request *req, uint64_t now_ns)
{
    uint64_t value = 0;
    int rc = text_meta_cas_check(srv, req, now_ns);
    if (rc == CB_ERR_OK) {
        rc = text_ma_apply(srv, req, now_ns, &value);
    }
    if (rc != CB_ERR_OK || !text_meta_has(req, 'v')) {
        text_meta_outcome(srv, conn, req, rc, now_ns);
        return;
    }
    char num[24];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)value);
    assert(n > 0);
    cb_text_meta_item item;
    memset(&item, 0, sizeof item);
    int live = text_meta_peek(srv, req, now_ns, &item);
    text_meta_reply(srv, conn, req, "VA", live ? &item : NULL, (const uint8_t *)num, (size_t)n);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static void text_exec_error(cb_server *srv, uint32_t conn, const cb_text_request *req)
{
    srv->stats.bad_requests++;
    srv->conns[conn].swallow = req->swallow_bytes;
    if (!req->noreply || req->close) {
        text_line(srv, conn, cb_text_error_line(req->error));
    }
    if (req->close) {
        text_close(srv, conn, CB_ERR_VALUE_TOO_LARGE);
    }
}

static void text_exec_simple(cb_server *srv, uint32_t conn, const cb_text_request *req,
                             uint64_t now_ns)
{
    switch (req->cmd) {
    case CB_TEXT_CMD_DELETE: {
        int rc = cb_store_delete(srv->store, req->key, req->key_len, now_ns);
        text_reply(srv, conn, req, rc == CB_ERR_OK ? "DELETED" : "NOT_FOUND");
        break;
    }
    case CB_TEXT_CMD_INCR:
    case CB_TEXT_CMD_DECR:
        text_exec_arith(srv, conn, req, now_ns);
        break;
    case CB_TEXT_CMD_TOUCH:
        text_exec_touch(srv, conn, req, now_ns);
        break;
    case CB_TEXT_CMD_FLUSH_ALL:
        text_exec_flush(srv, conn, req, now_ns);
        break;
    case CB_TEXT_CMD_STATS:
        text_exec_stats(srv, conn, req, now_ns);
        break;
    case CB_TEXT_CMD_VERSION:
        /* The memcached protocol level first: clients parse major.minor.patch from it. */
        text_line(srv, conn, "VERSION 1.6.0 cachebed-" CB_VERSION);
        break;
    case CB_TEXT_CMD_VERBOSITY:
        text_reply(srv, conn, req, "OK");
        break;
    case CB_TEXT_CMD_QUIT:
        text_close(srv, conn, CB_ERR_OK);
        break;
    default:
        assert(req->cmd == CB_TEXT_CMD_MN);
        text_line(srv, conn, "MN");
        break;
    }
}

/* Run one parsed request (text_exec without the lock). */
static int text_exec_unlocked(cb_server *srv, uint32_t conn, const cb_text_request *req,
                              uint64_t now_ns)
{
    uint64_t cas;
    srv->stats.requests++;
    switch (req->cmd) {
    case CB_TEXT_CMD_NONE:
        text_exec_error(srv, conn, req);
        return 1;
    case CB_TEXT_CMD_GET:
    case CB_TEXT_CMD_GETS:
    case CB_TEXT_CMD_GAT:
    case CB_TEXT_CMD_GATS:
        return text_exec_get(srv, conn, req, now_ns);
    case CB_TEXT_CMD_SET:
    case CB_TEXT_CMD_ADD:
    case CB_TEXT_CMD_REPLACE:
    case CB_TEXT_CMD_APPEND:
    case CB_TEXT_CMD_PREPEND:
    case CB_TEXT_CMD_CAS:
        text_reply(srv, conn, req, text_store_line(text_store(srv, req->cmd, req, now_ns, &cas)));
        return 1;
    case CB_TEXT_CMD_MG:
        text_exec_mg(srv, conn, req, now_ns);
        return 1;
    case CB_TEXT_CMD_MS:
        text_exec_ms(srv, conn, req, now_ns);
        return 1;
    case CB_TEXT_CMD_MD:
        text_exec_md(srv, conn, req, now_ns);
        return 1;
    case CB_TEXT_CMD_MA:
        text_exec_ma(srv, conn, req, now_ns);
        return 1;
    default:
        text_exec_simple(srv, conn, req, now_ns);
        return 1;
    }
}

/* Does `cmd` act on req->key alone (run under that key's shard lock)? */
static int text_cmd_keyed(uint8_t cmd)
{
    switch (cmd) {
    case CB_TEXT_CMD_SET:
    case CB_TEXT_CMD_ADD:
    case CB_TEXT_CMD_REPLACE:
    case CB_TEXT_CMD_APPEND:
    case CB_TEXT_CMD_PREPEND:
    case CB_TEXT_CMD_CAS:
    case CB_TEXT_CMD_MG:
    case CB_TEXT_CMD_MS:
    case CB_TEXT_CMD_MD:
    case CB_TEXT_CMD_MA:
    case CB_TEXT_CMD_DELETE:
    case CB_TEXT_CMD_INCR:
    case CB_TEXT_CMD_DECR:
    case CB_TEXT_CMD_TOUCH:
        return 1;
    default:
        return 0;
    }
}

/* Run one parsed request. Returns 0 when it must run again later (a multi-key get that
 * filled the outbox), else 1. A single-key command holds its shard for its whole run, reply
 * included (so ms with C, ma with N, and return flags read one consistent item). */
static int text_exec(cb_server *srv, uint32_t conn, const cb_text_request *req, uint64_t now_ns)
{
    if (srv->sharded && text_cmd_keyed(req->cmd)) {
        server_key_lock(srv, req->key, req->key_len);
        int done = text_exec_unlocked(srv, conn, req, now_ns);
        server_key_unlock(srv);
        return done;
    }
    return text_exec_unlocked(srv, conn, req, now_ns);
}

/* ---- input -------------------------------------------------------------------------------- */

void server_text_reset(cb_server *srv, server_conn *c)
{
    cb_alloc_free(srv->alloc, c->buf);
    memset(c, 0, sizeof *c);
}

/* The longest request a connection may buffer (cb_server.h). */
static size_t text_buffer_max(const cb_server *srv)
{
    size_t storage = CB_TEXT_LINE_BYTES_MAX + (size_t)srv->text_limits.value_bytes_max + 2;
    return storage > CB_TEXT_GET_LINE_BYTES_MAX ? storage : CB_TEXT_GET_LINE_BYTES_MAX;
}

static int text_reserve(cb_server *srv, server_conn *c, size_t want)
{
    if (want <= c->cap) {
        return CB_ERR_OK;
    }
    size_t cap = c->cap > 0 ? c->cap : 4096;
    while (cap < want) {
        cap *= 2;
    }
    size_t max = text_buffer_max(srv);
    cap = cap < max ? cap : max;
    assert(cap >= want);
    uint8_t *buf = cb_alloc_malloc(srv->alloc, cap);
    if (buf == NULL) {
        return CB_ERR_NOMEM;
    }
    if (c->len > 0) {
        memcpy(buf, c->buf, c->len);
    }
    cb_alloc_free(srv->alloc, c->buf);
    c->buf = buf;
    c->cap = cap;
    return CB_ERR_OK;
}

/* Move input into the buffer: up to the line's end while it is incomplete, then up to the
 * request's end. *taken says how much was moved. */
static int text_fill(cb_server *srv, server_conn *c, const uint8_t **in, size_t *in_len,
                     size_t *taken)
{
    size_t want;
    if (c->need > 0) {
        assert(c->need >= c->len && c->need <= text_buffer_max(srv));
        want = c->need - c->len;
    } else {
        size_t room = CB_TEXT_GET_LINE_BYTES_MAX - c->len;
        size_t scan = *in_len < room ? *in_len : room;
        const uint8_t *nl = scan > 0 ? memchr(*in, '\n', scan) : NULL;
        want = nl != NULL ? (size_t)(nl - *in) + 1 : scan;
    }
    size_t take = want < *in_len ? want : *in_len;
    *taken = 0;
    if (text_reserve(srv, c, c->len + take) != CB_ERR_OK) {
        return CB_ERR_NOMEM;
    }
    memcpy(c->buf + c->len, *in, take);
    c->len += take;
    *in += take;
    *in_len -= take;
    *taken = take;
    return CB_ERR_OK;
}

/* A line that never ends (or no memory to hold a request): answer and close. */
static void text_fatal(cb_server *srv, uint32_t conn, const char *line, int err)
{
    text_line(srv, conn, line);
    text_close(srv, conn, err);
}

static int text_step_buffered(cb_server *srv, uint32_t conn, const uint8_t **in, size_t *in_len,
                              uint64_t now_ns)
{
    server_conn *c = &srv->conns[conn];
    size_t taken;
    if (text_fill(srv, c, in, in_len, &taken) != CB_ERR_OK) {
        text_fatal(srv, conn, "SERVER_ERROR out of memory reading request", CB_ERR_NOMEM);
        return TEXT_CONTINUE;
    }
    cb_text_request req;
    long n = cb_text_parse(c->buf, c->len, &srv->text_limits, &req);
    if (n == CB_ERR_NEED_MORE) {
        c->need = req.need_bytes;
        return TEXT_CONTINUE;
    }
    if (n < 0) {
        assert(n == CB_ERR_TOO_LARGE);
        text_fatal(srv, conn, cb_text_error_line(CB_TEXT_ERROR_LINE_TOO_LONG), CB_ERR_TOO_LARGE);
        return TEXT_CONTINUE;
    }
    if (!text_exec(srv, conn, &req, now_ns)) {
        /* Give the completing bytes back: the request runs again when they come back. */
        assert(taken > 0);
        c->len -= taken;
        *in -= taken;
        *in_len += taken;
        return TEXT_STOP;
    }
    srv->stats.bytes_received += (uint64_t)n;
    c->len -= (size_t)n;
    memmove(c->buf, c->buf + n, c->len);
    c->need = 0;
    if (c->len == 0 && c->cap > TEXT_CONN_KEEP_BYTES) {
        cb_alloc_free(srv->alloc, c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
    return TEXT_CONTINUE;
}

static int text_step_in_place(cb_server *srv, uint32_t conn, const uint8_t **in, size_t *in_len,
                              uint64_t now_ns)
{
    cb_text_request req;
    long n = cb_text_parse(*in, *in_len, &srv->text_limits, &req);
    if (n == CB_ERR_NEED_MORE) {
        srv->conns[conn].need = req.need_bytes;
        return text_step_buffered(srv, conn, in, in_len, now_ns);
    }
    if (n < 0) {
        assert(n == CB_ERR_TOO_LARGE);
        text_fatal(srv, conn, cb_text_error_line(CB_TEXT_ERROR_LINE_TOO_LONG), CB_ERR_TOO_LARGE);
        return TEXT_CONTINUE;
    }
    if (!text_exec(srv, conn, &req, now_ns)) {
        return TEXT_STOP;
    }
    srv->stats.bytes_received += (uint64_t)n;
    *in += n;
    *in_len -= (size_t)n;
    return TEXT_CONTINUE;
}

long server_text_on_bytes(cb_server *srv, uint32_t conn, const uint8_t *buf, size_t buf_len,
                          uint64_t now_ns)
{
    server_conn *c = &srv->conns[conn];
    const uint8_t *in = buf;
    size_t in_len = buf_len;
    while (in_len > 0) {
        if (c->closing) {
            in_len = 0; /* a CLOSE is queued: what follows is never read */
            break;
        }
        if (c->swallow > 0) {
            size_t take = c->swallow < in_len ? (size_t)c->swallow : in_len;
            c->swallow -= take;
            in += take;
            in_len -= take;
            continue;
        }
        /* One maximal reply, and slots for it, an END and an event with a CLOSE. */
        if (!text_room(srv, srv->reply_bytes_max, 4)) {
            break;
        }
        int rc = c->len > 0 ? text_step_buffered(srv, conn, &in, &in_len, now_ns)
                            : text_step_in_place(srv, conn, &in, &in_len, now_ns);
        if (rc == TEXT_STOP) {
            break;
        }
    }
    return (long)(buf_len - in_len);
}
