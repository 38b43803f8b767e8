/*
 * cb_server_scan.c: the binary SCAN request (docs/protocol.md §3.2) — one bounded step of
 * cb_store_scan packed into a cb_scanbody reply. Request: arg = cursor, ttl_ms = item count
 * (0: CB_SCAN_ITEMS_DEFAULT, capped at CB_SCAN_ITEMS_MAX). Reply: value = body, arg = the
 * cursor to continue from (0: done).
 */
#include <string.h>

#include "cb_err.h"
#include "cb_scanbody.h"
#include "cb_server_int.h"
#include "cb_store.h"

#define SCAN_NS_PER_MS 1000000ull

/* Remaining lifetime in ms, rounded up so a live item never becomes "never expires". */
static uint32_t server_scan_ttl_ms(uint64_t expire_ns, uint64_t now_ns)
{
    if (expire_ns == UINT64_MAX) {
        return 0;
    }
    uint64_t ms = (expire_ns - now_ns + SCAN_NS_PER_MS - 1) / SCAN_NS_PER_MS;
    return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)(ms == 0 ? 1 : ms);
}

static int server_scan_buf(cb_server *srv)
{
    if (srv->scan_buf == NULL) {
        srv->scan_buf = cb_alloc_malloc(srv->alloc, srv->scan_buf_cap);
    }
    return srv->scan_buf != NULL ? CB_ERR_OK : CB_ERR_NOMEM;
}

/* One shard's SCAN step (the shard is locked): items from inner cursor `cursor` packed into
 * scan_buf; *next is the inner cursor to continue from. */
static int server_scan_shard(cb_server *srv, cb_store *store, uint64_t cursor, size_t cap,
                             uint64_t now_ns, size_t *body_len, uint64_t *next)
{
    cb_store_scan_item items[CB_SCAN_ITEMS_MAX];
    size_t n = 0;
    int rc = cb_store_scan(store, cursor, now_ns, items, cap, &n, next);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    cb_scanbody_writer w;
    rc = cb_scanbody_writer_init(&w, srv->scan_buf, srv->scan_buf_cap);
    for (size_t i = 0; i < n && rc == CB_ERR_OK; i++) {
        const cb_store_scan_item *s = &items[i];
        cb_scanbody_item it = {s->key,
                               (uint8_t)s->key_len,
                               s->flags,
                               server_scan_ttl_ms(s->expire_ns, now_ns),
                               (uint32_t)s->value_len,
                               s->version,
                               s->value,
                               s->tombstone};
        rc = cb_scanbody_put(&w, &it);
        if (rc == CB_ERR_FULL && w.count > 0) {
            *next = items[i - 1].resume; /* the rest goes in the next reply */
        } else if (rc == CB_ERR_FULL) {
            rc = CB_ERR_OK; /* too big for any body: skipped (docs/replication.md §6) */
            srv->stats.scan_skipped++;
        }
    }
    *body_len = cb_scanbody_finish(&w);
    return CB_ERR_OK;
}

/* With several shards one step scans one shard; the cursor says which (cb_shards.h). */
int server_exec_scan(cb_server *srv, uint64_t cursor, uint32_t count, uint64_t now_ns,
                     const uint8_t **body, size_t *body_len, uint64_t *next)
{
    size_t cap = count == 0 ? CB_SCAN_ITEMS_DEFAULT : count;
    cap = cap > CB_SCAN_ITEMS_MAX ? CB_SCAN_ITEMS_MAX : cap;
    int rc = server_scan_buf(srv);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    uint32_t shard;
    uint64_t inner, inner_next = 0;
    cb_shards_cursor_split(srv->shards, cursor, &shard, &inner);
    *body = srv->scan_buf;
    *body_len = 0;
    if (shard >= cb_shards_count(srv->shards)) {
        return CB_ERR_INVALID; /* a cursor this server never gave */
    }
    cb_store *store = cb_shards_acquire(srv->shards, shard);
    rc = server_scan_shard(srv, store, inner, cap, now_ns, body_len, &inner_next);
    cb_shards_release(srv->shards, shard);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    *next = cb_shards_cursor_join(srv->shards, shard, inner_next);
    return CB_ERR_OK;
}
