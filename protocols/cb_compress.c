/*
 * cb_compress.c: per-value lz4/zstd compression with a bomb-proof header; see cb_compress.h
 * for the contract and docs/protocol.md §5 for the wire format.
 *
 * Every buffer and library context is allocated once, in cb_compress_new, through the
 * caller's cb_alloc: lz4 gets an external state (LZ4_compress_fast_extState), zstd static
 * contexts carved from a workspace we allocate (ZSTD_initStaticCCtx/DCtx), so the libraries
 * never call malloc behind our back and OOM tests reach every allocation.
 */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_initStatic*, ZSTD_estimate*Size (exported by 1.5) */
#include "cb_compress.h"

#include <assert.h>
#include <lz4.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "cb_err.h"
#include "cb_limits.h"

struct cb_compress {
    cb_compress_config cfg;
    const cb_alloc *alloc;
    uint8_t *enc_buf; /* value_bytes_max: header + compressed bytes, always < the value */
    uint8_t *dec_buf; /* value_bytes_max: a decompressed value */
    void *lz4_state;  /* LZ4_sizeofState() bytes, lz4 only */
    void *zstd_cwork; /* ZSTD_estimateCCtxSize(level) bytes, zstd only */
    void *zstd_dwork; /* ZSTD_estimateDCtxSize() bytes, zstd only */
    ZSTD_CCtx *zc;    /* views into the workspaces above */
    ZSTD_DCtx *zd;
};

static void compress_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t compress_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Fill in defaults and check ranges; returns CB_ERR_OK or CB_ERR_INVALID. */
static int compress_normalize(const cb_compress_config *in, cb_compress_config *out)
{
    *out = *in;
    if (out->threshold_bytes == 0) {
        out->threshold_bytes = CB_COMPRESS_THRESHOLD_DEFAULT;
    }
    if (out->value_bytes_max == 0 || out->value_bytes_max > CB_VALUE_BYTES_LIMIT) {
        return CB_ERR_INVALID;
    }
    if (out->alg == CB_COMPRESS_LZ4) {
        out->level = out->level == 0 ? 1 : out->level;
        return out->level >= 1 && out->level <= CB_COMPRESS_LZ4_ACCEL_MAX ? CB_ERR_OK
                                                                          : CB_ERR_INVALID;
    }
    if (out->alg == CB_COMPRESS_ZSTD) {
        out->level = out->level == 0 ? CB_COMPRESS_ZSTD_LEVEL_DEFAULT : out->level;
        return out->level >= 1 && out->level <= CB_COMPRESS_ZSTD_LEVEL_MAX ? CB_ERR_OK
                                                                           : CB_ERR_INVALID;
    }
    return CB_ERR_INVALID;
}

size_t cb_compress_memory_bytes(const cb_compress_config *cfg)
{
    cb_compress_config c;
    if (compress_normalize(cfg, &c) != CB_ERR_OK) {
        return 0;
    }
    size_t n = sizeof(struct cb_compress) + 2u * (size_t)c.value_bytes_max;
    if (c.alg == CB_COMPRESS_LZ4) {
        return n + (size_t)LZ4_sizeofState();
    }
    return n + ZSTD_estimateCCtxSize(c.level) + ZSTD_estimateDCtxSize();
}

static int compress_alloc_zstd(cb_compress *c)
{
    size_t csize = ZSTD_estimateCCtxSize(c->cfg.level);
    size_t dsize = ZSTD_estimateDCtxSize();
    c->zstd_cwork = cb_alloc_malloc(c->alloc, csize);
    c->zstd_dwork = cb_alloc_malloc(c->alloc, dsize);
    if (c->zstd_cwork == NULL || c->zstd_dwork == NULL) {
        return CB_ERR_NOMEM;
    }
    c->zc = ZSTD_initStaticCCtx(c->zstd_cwork, csize);
    c->zd = ZSTD_initStaticDCtx(c->zstd_dwork, dsize);
    assert(c->zc != NULL && c->zd != NULL); /* sized by zstd's own estimates */
    return CB_ERR_OK;
}

int cb_compress_new(const cb_compress_config *cfg, const cb_alloc *alloc, cb_compress **out)
{
    *out = NULL;
    cb_compress_config norm;
    if (cfg == NULL || compress_normalize(cfg, &norm) != CB_ERR_OK) {
        return CB_ERR_INVALID;
    }
    cb_compress *c = cb_alloc_calloc(alloc, 1, sizeof *c);
    if (c == NULL) {
        return CB_ERR_NOMEM;
    }
    c->cfg = norm;
    c->alloc = alloc;
    c->enc_buf = cb_alloc_malloc(alloc, norm.value_bytes_max);
    c->dec_buf = cb_alloc_malloc(alloc, norm.value_bytes_max);
    int rc = CB_ERR_NOMEM;
    if (c->enc_buf != NULL && c->dec_buf != NULL) {
        if (norm.alg == CB_COMPRESS_LZ4) {
            c->lz4_state = cb_alloc_malloc(alloc, (size_t)LZ4_sizeofState());
            rc = c->lz4_state != NULL ? CB_ERR_OK : CB_ERR_NOMEM;
        } else {
            rc = compress_alloc_zstd(c);
        }
    }
    if (rc != CB_ERR_OK) {
        cb_compress_del(c);
        return rc;
    }
    *out = c;
    return CB_ERR_OK;
}

void cb_compress_del(cb_compress *c)
{
    if (c == NULL) {
        return;
    }
    /* The zstd contexts live inside their workspaces: freeing those is all they need. */
    cb_alloc_free(c->alloc, c->zstd_dwork);
    cb_alloc_free(c->alloc, c->zstd_cwork);
    cb_alloc_free(c->alloc, c->lz4_state);
    cb_alloc_free(c->alloc, c->dec_buf);
    cb_alloc_free(c->alloc, c->enc_buf);
    cb_alloc_free(c->alloc, c);
}

uint8_t cb_compress_alg(const cb_compress *c)
{
    return c->cfg.alg;
}

/* Compress into dst[0..dst_cap); returns the compressed length, or 0 if it does not fit. */
static size_t compress_run(cb_compress *c, const uint8_t *buf, size_t buf_len, uint8_t *dst,
                           size_t dst_cap)
{
    if (c->cfg.alg == CB_COMPRESS_LZ4) {
        /* buf_len <= value_bytes_max <= 128 MiB, far below LZ4_MAX_INPUT_SIZE and INT_MAX. */
        int n = LZ4_compress_fast_extState(c->lz4_state, (const char *)buf, (char *)dst,
                                           (int)buf_len, (int)dst_cap, c->cfg.level);
        return n > 0 ? (size_t)n : 0;
    }
    size_t n = ZSTD_compressCCtx(c->zc, dst, dst_cap, buf, buf_len, c->cfg.level);
    if (ZSTD_isError(n)) {
        /* Only "does not fit" can happen: the context was sized for this level. */
        assert(ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall);
        return 0;
    }
    return n;
}

long cb_compress_encode(cb_compress *c, const uint8_t *buf, size_t buf_len, const uint8_t **out)
{
    *out = NULL;
    if (buf == NULL && buf_len > 0) {
        return CB_ERR_INVALID;
    }
    if (buf_len > c->cfg.value_bytes_max) {
        return CB_ERR_VALUE_TOO_LARGE;
    }
    if (buf_len < c->cfg.threshold_bytes || buf_len <= CB_COMPRESS_HEADER_BYTES + 1u) {
        return 0;
    }
    /* Room for a payload strictly shorter than the value: a longer one is not sent. */
    size_t cap = buf_len - 1u - CB_COMPRESS_HEADER_BYTES;
    size_t n = compress_run(c, buf, buf_len, c->enc_buf + CB_COMPRESS_HEADER_BYTES, cap);
    if (n == 0) {
        return 0;
    }
    assert(n <= cap);
    c->enc_buf[0] = c->cfg.alg;
    compress_put_u32(c->enc_buf + 1, (uint32_t)buf_len);
    *out = c->enc_buf;
    return (long)(CB_COMPRESS_HEADER_BYTES + n);
}

int cb_compress_peek(const uint8_t *buf, size_t buf_len, uint32_t value_bytes_max, uint8_t *alg,
                     uint32_t *orig_len)
{
    if (buf_len < CB_COMPRESS_HEADER_BYTES) {
        return CB_ERR_MALFORMED;
    }
    uint32_t len = compress_get_u32(buf + 1);
    if (len == 0) {
        return CB_ERR_MALFORMED;
    }
    if (buf[0] != CB_COMPRESS_LZ4 && buf[0] != CB_COMPRESS_ZSTD) {
        return CB_ERR_BAD_ALGORITHM;
    }
    if (len > value_bytes_max) {
        return CB_ERR_VALUE_TOO_LARGE;
    }
    if (len <= buf_len) {
        return CB_ERR_MALFORMED;
    }
    *alg = buf[0];
    *orig_len = len;
    return CB_ERR_OK;
}

/* zstd: exactly one frame, filling src, whose recorded content size is `len`. */
static int compress_zstd_frame_ok(const uint8_t *src, size_t src_len, uint32_t len)
{
    unsigned long long size = ZSTD_getFrameContentSize(src, src_len);
    if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR || size != len) {
        return 0;
    }
    size_t frame = ZSTD_findFrameCompressedSize(src, src_len);
    return !ZSTD_isError(frame) && frame == src_len;
}

/* Decompress src into dec_buf with exactly `len` bytes of capacity; 1 if exactly `len`
 * bytes came out. */
static int compress_inflate(cb_compress *c, const uint8_t *src, size_t src_len, uint32_t len)
{
    if (c->cfg.alg == CB_COMPRESS_LZ4) {
        /* src_len < len <= value_bytes_max <= 128 MiB: both fit an int. */
        int n = LZ4_decompress_safe((const char *)src, (char *)c->dec_buf, (int)src_len, (int)len);
        return n >= 0 && (uint32_t)n == len;
    }
    if (!compress_zstd_frame_ok(src, src_len, len)) {
        return 0;
    }
    size_t n = ZSTD_decompressDCtx(c->zd, c->dec_buf, len, src, src_len);
    return !ZSTD_isError(n) && n == len;
}

long cb_compress_decode(cb_compress *c, const uint8_t *buf, size_t buf_len, const uint8_t **out)
{
    *out = NULL;
    if (buf == NULL && buf_len > 0) {
        return CB_ERR_INVALID;
    }
    uint8_t alg = 0;
    uint32_t len = 0;
    int rc = cb_compress_peek(buf, buf_len, c->cfg.value_bytes_max, &alg, &len);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    if (alg != c->cfg.alg) {
        return CB_ERR_CODEC_MISMATCH;
    }
    /* len <= value_bytes_max == the decode buffer's size, checked by peek above. */
    if (!compress_inflate(c, buf + CB_COMPRESS_HEADER_BYTES, buf_len - CB_COMPRESS_HEADER_BYTES,
                          len)) {
        return CB_ERR_MALFORMED;
    }
    *out = c->dec_buf;
    return (long)len;
}
