/*
 * cb_scanbody.c: SCAN reply bodies (cb_scanbody.h).
 */
#include "cb_scanbody.h"

#include <string.h>

#include "cb_err.h"
#include "cb_limits.h"

static void sb_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t sb_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t cb_scanbody_item_bytes(size_t key_len, size_t value_len)
{
    return CB_SCANBODY_ITEM_HEADER_BYTES + key_len + value_len;
}

int cb_scanbody_writer_init(cb_scanbody_writer *w, uint8_t *buf, size_t cap)
{
    if (w == NULL || buf == NULL || cap < CB_SCANBODY_HEADER_BYTES) {
        return CB_ERR_INVALID;
    }
    w->buf = buf;
    w->cap = cap;
    w->len = CB_SCANBODY_HEADER_BYTES;
    w->count = 0;
    return CB_ERR_OK;
}

int cb_scanbody_put(cb_scanbody_writer *w, const cb_scanbody_item *it)
{
    if (it->key_len == 0 || it->key_len > CB_KEY_BYTES_MAX || it->key == NULL ||
        (it->value_len > 0 && it->value == NULL) || it->value_len > CB_VALUE_BYTES_LIMIT ||
        it->tombstone > 1 || (it->tombstone && it->value_len > 0)) {
        return CB_ERR_INVALID;
    }
    size_t need = cb_scanbody_item_bytes(it->key_len, it->value_len);
    if (need > w->cap - w->len || w->count == UINT32_MAX) {
        return CB_ERR_FULL;
    }
    uint8_t *p = w->buf + w->len;
    p[0] = it->key_len;
    p[1] = it->tombstone;
    sb_put32(p + 2, it->flags);
    sb_put32(p + 6, it->ttl_ms);
    sb_put32(p + 10, it->value_len);
    sb_put32(p + 14, (uint32_t)(it->version >> 32));
    sb_put32(p + 18, (uint32_t)it->version);
    memcpy(p + CB_SCANBODY_ITEM_HEADER_BYTES, it->key, it->key_len);
    if (it->value_len > 0) {
        memcpy(p + CB_SCANBODY_ITEM_HEADER_BYTES + it->key_len, it->value, it->value_len);
    }
    w->len += need;
    w->count++;
    return CB_ERR_OK;
}

size_t cb_scanbody_finish(cb_scanbody_writer *w)
{
    sb_put32(w->buf, w->count);
    return w->len;
}

/* Parse the item at body[off..len) into *it; its size, or 0 if it is malformed. */
static size_t sb_parse(const uint8_t *body, size_t len, size_t off, cb_scanbody_item *it)
{
    if (len - off < CB_SCANBODY_ITEM_HEADER_BYTES) {
        return 0;
    }
    const uint8_t *p = body + off;
    it->key_len = p[0];
    it->tombstone = p[1];
    it->flags = sb_get32(p + 2);
    it->ttl_ms = sb_get32(p + 6);
    it->value_len = sb_get32(p + 10);
    it->version = (uint64_t)sb_get32(p + 14) << 32 | sb_get32(p + 18);
    if (it->key_len == 0 || it->key_len > CB_KEY_BYTES_MAX ||
        it->value_len > CB_VALUE_BYTES_LIMIT || it->tombstone > 1 ||
        (it->tombstone && it->value_len > 0)) {
        return 0;
    }
    size_t rest = len - off - CB_SCANBODY_ITEM_HEADER_BYTES;
    if (it->key_len > rest || it->value_len > rest - it->key_len) {
        return 0;
    }
    it->key = p + CB_SCANBODY_ITEM_HEADER_BYTES;
    it->value = it->key + it->key_len;
    return cb_scanbody_item_bytes(it->key_len, it->value_len);
}

int cb_scanbody_reader_init(cb_scanbody_reader *r, const uint8_t *body, size_t len, uint32_t *count)
{
    if (r == NULL || (body == NULL && len > 0)) {
        return CB_ERR_INVALID;
    }
    if (len < CB_SCANBODY_HEADER_BYTES) {
        return CB_ERR_MALFORMED;
    }
    uint32_t n = sb_get32(body);
    /* Each item takes at least its header: a count the length cannot hold is refused
     * before any walk. */
    if (n > (len - CB_SCANBODY_HEADER_BYTES) / CB_SCANBODY_ITEM_HEADER_BYTES) {
        return CB_ERR_MALFORMED;
    }
    size_t off = CB_SCANBODY_HEADER_BYTES;
    for (uint32_t i = 0; i < n; i++) {
        cb_scanbody_item it;
        size_t used = sb_parse(body, len, off, &it);
        if (used == 0) {
            return CB_ERR_MALFORMED;
        }
        off += used;
    }
    if (off != len) {
        return CB_ERR_MALFORMED;
    }
    r->body = body;
    r->len = len;
    r->off = CB_SCANBODY_HEADER_BYTES;
    r->left = n;
    if (count != NULL) {
        *count = n;
    }
    return CB_ERR_OK;
}

int cb_scanbody_next(cb_scanbody_reader *r, cb_scanbody_item *it)
{
    if (r->left == 0) {
        return CB_ERR_NOT_FOUND;
    }
    size_t used = sb_parse(r->body, r->len, r->off, it);
    if (used == 0) {
        return CB_ERR_MALFORMED; /* cannot happen after reader_init's check */
    }
    r->off += used;
    r->left--;
    return CB_ERR_OK;
}
