/* cb_codec.c: a machine's compression and sealing of frames; see cb_codec.h. */
#include "cb_codec.h"

#include <assert.h>
#include <string.h>

#include "cb_err.h"
#include "cb_limits.h"

struct cb_codec {
    cb_codec_config cfg;
    const cb_alloc *alloc;
    uint8_t role;
    uint32_t conn_count;
    uint32_t value_bytes_max;
    cb_compress *compress; /* NULL: compression off */
    uint8_t *agreed;       /* conn_count, when compressing: CB_CODEC_AGREED_CONFIGURED or an alg */
    int sealing;
    cb_seal_key key;
    cb_rng rng;        /* session salts */
    cb_seal_tx *tx;    /* conn_count, when sealing */
    cb_seal_rx *rx;    /* conn_count, when sealing */
    uint8_t *open_buf; /* one opened key and value */
    size_t open_cap;
};

int cb_codec_enabled(const cb_codec_config *cfg)
{
    return cfg->compress_alg != CB_COMPRESS_NONE || cfg->seal_key != NULL;
}

static uint8_t codec_send_dir(const cb_codec *c)
{
    return c->role == CB_CODEC_CLIENT ? CB_SEAL_CLIENT_TO_SERVER : CB_SEAL_SERVER_TO_CLIENT;
}

static uint8_t codec_recv_dir(const cb_codec *c)
{
    return c->role == CB_CODEC_CLIENT ? CB_SEAL_SERVER_TO_CLIENT : CB_SEAL_CLIENT_TO_SERVER;
}

/* Start connection `conn`'s sessions afresh. */
static void codec_start(cb_codec *c, uint32_t conn)
{
    int rc = cb_seal_tx_init(&c->tx[conn], c->cfg.seal_mode, codec_send_dir(c), &c->rng);
    assert(rc == CB_ERR_OK); /* mode and role were checked by cb_codec_new */
    rc = cb_seal_rx_init(&c->rx[conn], c->cfg.seal_mode, codec_recv_dir(c));
    assert(rc == CB_ERR_OK);
    (void)rc;
}

static int codec_alloc_seal(cb_codec *c)
{
    c->tx = cb_alloc_calloc(c->alloc, c->conn_count, sizeof c->tx[0]);
    c->rx = cb_alloc_calloc(c->alloc, c->conn_count, sizeof c->rx[0]);
    c->open_cap = (size_t)CB_KEY_BYTES_MAX + c->value_bytes_max + CB_SEAL_OVERHEAD_MAX;
    c->open_buf = cb_alloc_malloc(c->alloc, c->open_cap);
    if (c->tx == NULL || c->rx == NULL || c->open_buf == NULL) {
        return CB_ERR_NOMEM;
    }
    c->sealing = 1;
    c->key = *c->cfg.seal_key;
    c->cfg.seal_key = NULL; /* the caller's copy need not outlive us */
    cb_rng_init(&c->rng, c->cfg.seal_seed);
    for (uint32_t i = 0; i < c->conn_count; i++) {
        codec_start(c, i);
    }
    return CB_ERR_OK;
}

static int codec_config_valid(const cb_codec_config *cfg, uint8_t role, uint32_t conn_count)
{
    return cb_codec_enabled(cfg) && conn_count > 0 &&
           (role == CB_CODEC_CLIENT || role == CB_CODEC_SERVER) &&
           (cfg->seal_mode == CB_SEAL_STREAM || cfg->seal_mode == CB_SEAL_DATAGRAM);
}

int cb_codec_new(const cb_codec_config *cfg, uint8_t role, uint32_t conn_count,
                 uint32_t value_bytes_max, const cb_alloc *alloc, cb_codec **out)
{
    *out = NULL;
    cb_codec_config norm = *cfg;
    norm.seal_mode = norm.seal_mode == 0 ? (uint8_t)CB_SEAL_STREAM : norm.seal_mode;
    if (!codec_config_valid(&norm, role, conn_count)) {
        return CB_ERR_INVALID;
    }
    cb_codec *c = cb_alloc_calloc(alloc, 1, sizeof *c);
    if (c == NULL) {
        return CB_ERR_NOMEM;
    }
    c->cfg = norm;
    c->alloc = alloc;
    c->role = role;
    c->conn_count = conn_count;
    c->value_bytes_max = value_bytes_max;
    int rc = CB_ERR_OK;
    if (norm.compress_alg != CB_COMPRESS_NONE) {
        cb_compress_config cc = {.alg = norm.compress_alg,
                                 .level = norm.compress_level,
                                 .threshold_bytes = norm.compress_threshold_bytes,
                                 .value_bytes_max = value_bytes_max};
        rc = cb_compress_new(&cc, alloc, &c->compress);
        if (rc == CB_ERR_OK) {
            c->agreed = cb_alloc_malloc(alloc, conn_count);
            rc = c->agreed == NULL ? CB_ERR_NOMEM : CB_ERR_OK;
        }
        if (c->agreed != NULL) {
            memset(c->agreed, CB_CODEC_AGREED_CONFIGURED, conn_count);
        }
    }
    if (rc == CB_ERR_OK && norm.seal_key != NULL) {
        rc = codec_alloc_seal(c);
    }
    if (rc != CB_ERR_OK) {
        cb_codec_del(c);
        return rc;
    }
    *out = c;
    return CB_ERR_OK;
}

void cb_codec_del(cb_codec *c)
{
    if (c == NULL) {
        return;
    }
    cb_seal_key_wipe(&c->key);
    cb_alloc_free(c->alloc, c->open_buf);
    cb_alloc_free(c->alloc, c->rx);
    cb_alloc_free(c->alloc, c->tx);
    cb_compress_del(c->compress);
    cb_alloc_free(c->alloc, c->agreed);
    cb_alloc_free(c->alloc, c);
}

int cb_codec_sealing(const cb_codec *c)
{
    return c->sealing;
}

int cb_codec_datagram(const cb_codec *c)
{
    return c->sealing && c->cfg.seal_mode == CB_SEAL_DATAGRAM;
}

uint32_t cb_codec_wire_value_max(const cb_codec *c, uint32_t value_bytes_max)
{
    return value_bytes_max + (uint32_t)cb_codec_overhead_max(c);
}

size_t cb_codec_overhead_max(const cb_codec *c)
{
    return c->sealing ? CB_SEAL_OVERHEAD_MAX : 0;
}

int cb_codec_compress(cb_codec *c, cb_frame *f)
{
    if (c->compress == NULL || f->value_len == 0) {
        return 0;
    }
    const uint8_t *payload = NULL;
    long n = cb_compress_encode(c->compress, f->value, f->value_len, &payload);
    if (n <= 0) {
        return (int)n;
    }
    f->value = payload;
    f->value_len = (uint32_t)n;
    f->flags = (uint8_t)(f->flags | CB_FLAG_COMPRESSED);
    return 1;
}

size_t cb_codec_wire_len(const cb_codec *c, uint32_t conn, const cb_frame *plain)
{
    size_t len = cb_frame_encoded_len(plain);
    return c->sealing ? len + cb_seal_overhead(&c->tx[conn]) : len;
}

long cb_codec_write(cb_codec *c, uint32_t conn, const cb_frame *plain, uint8_t *out, size_t out_cap)
{
    assert(conn < c->conn_count);
    if (!c->sealing) {
        return cb_frame_encode(plain, out, out_cap);
    }
    return cb_seal_frame(&c->tx[conn], &c->key, plain, out, out_cap);
}

int cb_codec_open(cb_codec *c, uint32_t conn, const cb_frame *wire, cb_frame *plain)
{
    assert(conn < c->conn_count);
    if (!c->sealing) {
        if ((wire->flags & CB_FLAG_ENCRYPTED) != 0) {
            return CB_ERR_CODEC_MISMATCH;
        }
        *plain = *wire;
        return CB_ERR_OK;
    }
    long rc = cb_seal_open(&c->rx[conn], &c->key, wire, c->open_buf, c->open_cap, plain);
    if (rc < 0) {
        return (int)rc;
    }
    /* The seal's overhead varies (16..40 bytes), so the framer's limit leaves room for a
     * plaintext value a little over the limit: refuse it here. */
    return plain->value_len > c->value_bytes_max ? CB_ERR_VALUE_TOO_LARGE : CB_ERR_OK;
}

int cb_codec_decompress(cb_codec *c, cb_frame *f)
{
    if ((f->flags & CB_FLAG_COMPRESSED) == 0) {
        return CB_ERR_OK;
    }
    if (c->compress == NULL) {
        return CB_ERR_CODEC_MISMATCH;
    }
    const uint8_t *value = NULL;
    long n = cb_compress_decode(c->compress, f->value, f->value_len, &value);
    if (n < 0) {
        return (int)n;
    }
    f->value = value;
    f->value_len = (uint32_t)n;
    f->flags = (uint8_t)(f->flags & ~CB_FLAG_COMPRESSED);
    return CB_ERR_OK;
}

int cb_codec_compressing(const cb_codec *c)
{
    return c->compress != NULL;
}

uint8_t cb_codec_alg(const cb_codec *c)
{
    return c->compress != NULL ? c->cfg.compress_alg : (uint8_t)CB_COMPRESS_NONE;
}

uint64_t cb_codec_hello_mask(const cb_codec *c)
{
    return c != NULL && c->compress != NULL ? (uint64_t)1 << c->cfg.compress_alg : 0;
}

uint8_t cb_codec_hello_choose(const cb_codec *c, uint64_t peer_mask)
{
    uint64_t mine = cb_codec_hello_mask(c);
    return mine != 0 && (peer_mask & mine) != 0 ? c->cfg.compress_alg : (uint8_t)CB_COMPRESS_NONE;
}

void cb_codec_agree(cb_codec *c, uint32_t conn, uint8_t alg)
{
    assert(conn < c->conn_count);
    if (c->agreed != NULL) {
        c->agreed[conn] = alg == c->cfg.compress_alg ? alg : (uint8_t)CB_COMPRESS_NONE;
    }
}

uint8_t cb_codec_agreed(const cb_codec *c, uint32_t conn)
{
    assert(conn < c->conn_count);
    return c->agreed != NULL ? c->agreed[conn] : (uint8_t)CB_COMPRESS_NONE;
}

int cb_codec_compress_conn(cb_codec *c, uint32_t conn, cb_frame *f)
{
    assert(conn < c->conn_count);
    if (c->agreed == NULL || c->agreed[conn] == CB_COMPRESS_NONE) {
        return 0;
    }
    return cb_codec_compress(c, f);
}

void cb_codec_reset(cb_codec *c, uint32_t conn)
{
    assert(conn < c->conn_count);
    if (c->agreed != NULL) {
        c->agreed[conn] = CB_CODEC_AGREED_CONFIGURED;
    }
    if (c->sealing && c->cfg.seal_mode == CB_SEAL_STREAM) {
        codec_start(c, conn);
    }
}

void cb_codec_forget(cb_codec *c, uint32_t conn)
{
    assert(conn < c->conn_count);
    cb_codec_reset(c, conn);
    if (c->sealing && c->cfg.seal_mode != CB_SEAL_STREAM) {
        codec_start(c, conn);
    }
}
