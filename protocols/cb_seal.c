/*
 * cb_seal.c: XChaCha20-Poly1305 sealing of whole frames; see cb_seal.h for the contract and
 * docs/protocol.md §6 for the wire format.
 *
 * Sealing copies key and value behind the header and encrypts them in place (libsodium
 * allows c == m); opening decrypts straight into the caller's buffer, which libsodium only
 * fills after the tag verified (it zeroes it otherwise). A datagram receiver checks its
 * window before authenticating (cheap rejection of duplicates) and updates it only after
 * (a forged frame cannot move the window: RFC 4303 §3.4.3).
 */
#include "cb_seal.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

#include "cb_err.h"

/* Associated data: the 40-byte header as sent, then the mode and direction bytes. */
#define SEAL_AD_BYTES (CB_FRAME_HEADER_BYTES + 2u)

_Static_assert(CB_SEAL_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");
_Static_assert(CB_SEAL_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag size");
_Static_assert(CB_SEAL_NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce");
_Static_assert(CB_SEAL_SALT_BYTES + CB_SEAL_COUNTER_BYTES == CB_SEAL_NONCE_BYTES, "nonce split");
_Static_assert(CB_SEAL_WINDOW_BITS % 64u == 0 && CB_SEAL_WINDOW_BITS >= 64u, "window words");
_Static_assert(CB_VALUE_BYTES_LIMIT + (uint64_t)CB_SEAL_OVERHEAD_MAX < UINT32_MAX, "fits");

int cb_seal_global_init(void)
{
    return sodium_init() < 0 ? CB_ERR_INVALID : CB_ERR_OK;
}

static int seal_hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

int cb_seal_key_parse(const char *text, size_t text_len, cb_seal_key *out)
{
    size_t digits = 2u * CB_SEAL_KEY_BYTES;
    if (text == NULL || (text_len != digits && text_len != digits + 1u) ||
        (text_len == digits + 1u && text[digits] != '\n')) {
        return CB_ERR_MALFORMED;
    }
    cb_seal_key k;
    for (size_t i = 0; i < CB_SEAL_KEY_BYTES; i++) {
        int hi = seal_hex_digit(text[2 * i]);
        int lo = seal_hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            sodium_memzero(&k, sizeof k);
            return CB_ERR_MALFORMED;
        }
        k.bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = k;
    sodium_memzero(&k, sizeof k);
    return CB_ERR_OK;
}

long cb_seal_key_format(const cb_seal_key *key, char *out, size_t out_cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = 2u * CB_SEAL_KEY_BYTES + 1u;
    if (out == NULL || out_cap < len) {
        return CB_ERR_FULL;
    }
    for (size_t i = 0; i < CB_SEAL_KEY_BYTES; i++) {
        out[2 * i] = hex[key->bytes[i] >> 4];
        out[2 * i + 1] = hex[key->bytes[i] & 15u];
    }
    out[len - 1] = '\n';
    return (long)len;
}

void cb_seal_key_wipe(cb_seal_key *key)
{
    sodium_memzero(key, sizeof *key);
}

static int seal_mode_dir_valid(uint8_t mode, uint8_t dir)
{
    return (mode == CB_SEAL_STREAM || mode == CB_SEAL_DATAGRAM) &&
           (dir == CB_SEAL_CLIENT_TO_SERVER || dir == CB_SEAL_SERVER_TO_CLIENT);
}

int cb_seal_tx_init(cb_seal_tx *tx, uint8_t mode, uint8_t dir, cb_rng *rng)
{
    if (tx == NULL || rng == NULL || !seal_mode_dir_valid(mode, dir)) {
        return CB_ERR_INVALID;
    }
    memset(tx, 0, sizeof *tx);
    tx->mode = mode;
    tx->dir = dir;
    for (size_t i = 0; i < CB_SEAL_SALT_BYTES; i += 8) {
        uint64_t r = cb_rng_next(rng);
        for (size_t b = 0; b < 8; b++) {
            tx->salt[i + b] = (uint8_t)(r >> (8 * b));
        }
    }
    return CB_ERR_OK;
}

int cb_seal_rx_init(cb_seal_rx *rx, uint8_t mode, uint8_t dir)
{
    if (rx == NULL || !seal_mode_dir_valid(mode, dir)) {
        return CB_ERR_INVALID;
    }
    memset(rx, 0, sizeof *rx);
    rx->mode = mode;
    rx->dir = dir;
    return CB_ERR_OK;
}

size_t cb_seal_overhead(const cb_seal_tx *tx)
{
    if (tx->mode == CB_SEAL_DATAGRAM) {
        return CB_SEAL_OVERHEAD_MAX;
    }
    return tx->salt_sent ? CB_SEAL_TAG_BYTES : CB_SEAL_SALT_BYTES + CB_SEAL_TAG_BYTES;
}

static void seal_put_u64(uint8_t *p, uint64_t v)
{
    for (size_t i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    }
}

static uint64_t seal_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static void seal_nonce(uint8_t *nonce, const uint8_t *salt, uint64_t counter)
{
    memcpy(nonce, salt, CB_SEAL_SALT_BYTES);
    seal_put_u64(nonce + CB_SEAL_SALT_BYTES, counter);
}

/* The associated data for a frame whose wire header is already in header[0..40). */
static void seal_ad(uint8_t *ad, const uint8_t *header, uint8_t mode, uint8_t dir)
{
    memcpy(ad, header, CB_FRAME_HEADER_BYTES);
    ad[CB_FRAME_HEADER_BYTES] = mode;
    ad[CB_FRAME_HEADER_BYTES + 1u] = dir;
}

/* Write the explicit part of the nonce (if any) at out; returns its length. */
static size_t seal_write_prefix(const cb_seal_tx *tx, uint8_t *out)
{
    if (tx->mode == CB_SEAL_STREAM && tx->salt_sent) {
        return 0;
    }
    memcpy(out, tx->salt, CB_SEAL_SALT_BYTES);
    if (tx->mode == CB_SEAL_STREAM) {
        return CB_SEAL_SALT_BYTES;
    }
    seal_put_u64(out + CB_SEAL_SALT_BYTES, tx->counter);
    return CB_SEAL_SALT_BYTES + CB_SEAL_COUNTER_BYTES;
}

static int seal_tx_valid(const cb_seal_tx *tx)
{
    return seal_mode_dir_valid(tx->mode, tx->dir);
}

long cb_seal_frame(cb_seal_tx *tx, const cb_seal_key *key, const cb_frame *plain, uint8_t *out,
                   size_t out_cap)
{
    if (tx == NULL || key == NULL || plain == NULL || !seal_tx_valid(tx) ||
        (plain->flags & CB_FLAG_ENCRYPTED) != 0) {
        return CB_ERR_INVALID;
    }
    if (tx->counter == UINT64_MAX) {
        return CB_ERR_TOO_LARGE;
    }
    size_t overhead = cb_seal_overhead(tx);
    if ((uint64_t)plain->value_len + overhead > CB_VALUE_BYTES_LIMIT) {
        return CB_ERR_VALUE_TOO_LARGE;
    }
    cb_frame sealed = *plain;
    sealed.flags = (uint8_t)(plain->flags | CB_FLAG_ENCRYPTED);
    sealed.value_len = (uint32_t)(plain->value_len + overhead);
    long rc = cb_frame_encode_header(&sealed, out, out_cap);
    if (rc < 0) {
        return rc == CB_ERR_FULL ? CB_ERR_FULL : CB_ERR_INVALID;
    }
    size_t total = cb_frame_encoded_len(&sealed);
    if (out_cap < total || (plain->key_len > 0 && plain->key == NULL) ||
        (plain->value_len > 0 && plain->value == NULL)) {
        return out_cap < total ? CB_ERR_FULL : CB_ERR_INVALID;
    }
    uint8_t *ct = out + CB_FRAME_HEADER_BYTES + seal_write_prefix(tx, out + CB_FRAME_HEADER_BYTES);
    size_t body = (size_t)plain->key_len + plain->value_len;
    if (plain->key_len > 0) {
        memcpy(ct, plain->key, plain->key_len);
    }
    if (plain->value_len > 0) {
        memcpy(ct + plain->key_len, plain->value, plain->value_len);
    }
    uint8_t ad[SEAL_AD_BYTES], nonce[CB_SEAL_NONCE_BYTES];
    seal_ad(ad, out, tx->mode, tx->dir);
    seal_nonce(nonce, tx->salt, tx->counter);
    /* Cannot fail: lengths are far below the library's limit (2^64 - 17 bytes). */
    (void)crypto_aead_xchacha20poly1305_ietf_encrypt_detached(ct, ct + body, NULL, ct, body, ad,
                                                              sizeof ad, NULL, nonce, key->bytes);
    tx->counter++;
    tx->salt_sent = 1;
    return (long)total;
}

/* Datagram window: CB_ERR_OK if `counter` is new and inside (or ahead of) the window. */
static int seal_window_check(const cb_seal_rx *rx, uint64_t counter)
{
    if (counter >= rx->top) {
        return CB_ERR_OK;
    }
    uint64_t back = rx->top - 1u - counter; /* 0 = the highest accepted */
    if (back >= CB_SEAL_WINDOW_BITS) {
        return CB_ERR_REPLAY;
    }
    return (rx->window[back / 64u] >> (back % 64u)) & 1u ? CB_ERR_REPLAY : CB_ERR_OK;
}

/* Shift the window towards newer counters by `by` bits (bit i moves to bit i + by). */
static void seal_window_shift(cb_seal_rx *rx, uint64_t by)
{
    const size_t words = CB_SEAL_WINDOW_BITS / 64u;
    if (by >= CB_SEAL_WINDOW_BITS) {
        memset(rx->window, 0, sizeof rx->window);
        return;
    }
    size_t wshift = (size_t)(by / 64u);
    unsigned bshift = (unsigned)(by % 64u);
    for (size_t i = words; i-- > 0;) {
        uint64_t v = i >= wshift ? rx->window[i - wshift] << bshift : 0;
        if (bshift != 0 && i > wshift) {
            v |= rx->window[i - wshift - 1u] >> (64u - bshift);
        }
        rx->window[i] = v;
    }
}

static void seal_window_accept(cb_seal_rx *rx, uint64_t counter)
{
    if (counter >= rx->top) {
        seal_window_shift(rx, counter + 1u - rx->top);
        rx->top = counter + 1u;
    }
    uint64_t back = rx->top - 1u - counter;
    assert(back < CB_SEAL_WINDOW_BITS); /* checked by seal_window_check */
    rx->window[back / 64u] |= (uint64_t)1u << (back % 64u);
}

/* Where a sealed frame's explicit nonce part says its session and counter are. */
typedef struct seal_in {
    const uint8_t *salt;
    uint64_t counter;
    int new_salt; /* the salt differs from the session's (or there is none yet) */
    size_t prefix;
} seal_in;

/* Read the explicit nonce part and check it against the session; CB_ERR_OK or an error. */
static int seal_read_prefix(const cb_seal_rx *rx, const uint8_t *body, size_t body_len, seal_in *in)
{
    memset(in, 0, sizeof *in);
    if (rx->mode == CB_SEAL_STREAM && rx->have_salt) {
        in->salt = rx->salt;
        in->counter = rx->top;
    } else {
        in->prefix = rx->mode == CB_SEAL_STREAM ? CB_SEAL_SALT_BYTES
                                                : CB_SEAL_SALT_BYTES + CB_SEAL_COUNTER_BYTES;
        if (body_len < in->prefix + CB_SEAL_TAG_BYTES) {
            return CB_ERR_MALFORMED;
        }
        in->salt = body;
        in->counter = rx->mode == CB_SEAL_DATAGRAM ? seal_get_u64(body + CB_SEAL_SALT_BYTES) : 0;
        if (in->counter == UINT64_MAX) {
            return CB_ERR_MALFORMED; /* senders stop before it (cb_seal_frame) */
        }
        in->new_salt = !rx->have_salt || memcmp(rx->salt, body, CB_SEAL_SALT_BYTES) != 0;
    }
    if (body_len < in->prefix + CB_SEAL_TAG_BYTES) {
        return CB_ERR_MALFORMED;
    }
    if (rx->mode == CB_SEAL_DATAGRAM && in->new_salt && rx->have_retired &&
        memcmp(rx->retired, in->salt, CB_SEAL_SALT_BYTES) == 0) {
        return CB_ERR_REPLAY; /* the peer's previous session: never again */
    }
    if (rx->mode == CB_SEAL_DATAGRAM && !in->new_salt) {
        return seal_window_check(rx, in->counter);
    }
    return CB_ERR_OK;
}

/* Commit an authenticated frame to the session. */
static void seal_rx_accept(cb_seal_rx *rx, const seal_in *in)
{
    if (in->new_salt) {
        if (rx->have_salt) {
            memcpy(rx->retired, rx->salt, CB_SEAL_SALT_BYTES);
            rx->have_retired = 1;
        }
        memcpy(rx->salt, in->salt, CB_SEAL_SALT_BYTES);
        rx->have_salt = 1;
        rx->top = 0;
        memset(rx->window, 0, sizeof rx->window);
    }
    if (rx->mode == CB_SEAL_STREAM) {
        rx->top++;
    } else {
        seal_window_accept(rx, in->counter);
    }
}

static int seal_open_args_ok(const cb_seal_rx *rx, const cb_seal_key *key, const cb_frame *f,
                             const cb_frame *plain)
{
    if (rx == NULL || key == NULL || f == NULL || plain == NULL ||
        !seal_mode_dir_valid(rx->mode, rx->dir)) {
        return 0;
    }
    /* The body must be one run of bytes: key then value, as cb_frame_decode returns. */
    if ((f->key_len > 0 && f->key == NULL) || (f->value_len > 0 && f->value == NULL)) {
        return 0;
    }
    return f->key_len == 0 || f->value_len == 0 || f->value == f->key + f->key_len;
}

long cb_seal_open(cb_seal_rx *rx, const cb_seal_key *key, const cb_frame *sealed, uint8_t *out,
                  size_t out_cap, cb_frame *plain)
{
    if (!seal_open_args_ok(rx, key, sealed, plain)) {
        return CB_ERR_INVALID;
    }
    if ((sealed->flags & CB_FLAG_ENCRYPTED) == 0) {
        return CB_ERR_CODEC_MISMATCH;
    }
    const uint8_t *body = sealed->key_len > 0 ? sealed->key : sealed->value;
    size_t body_len = (size_t)sealed->key_len + sealed->value_len;
    seal_in in;
    int rc = seal_read_prefix(rx, body, body_len, &in);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    size_t ct_len = body_len - in.prefix - CB_SEAL_TAG_BYTES;
    if (ct_len < sealed->key_len) {
        return CB_ERR_MALFORMED; /* value_len is shorter than the overhead */
    }
    if (out_cap < ct_len || (out == NULL && ct_len > 0)) {
        return CB_ERR_FULL;
    }
    uint8_t header[CB_FRAME_HEADER_BYTES], ad[SEAL_AD_BYTES], nonce[CB_SEAL_NONCE_BYTES];
    long hr = cb_frame_encode_header(sealed, header, sizeof header);
    if (hr < 0) {
        return CB_ERR_INVALID; /* a decoded header always re-encodes */
    }
    seal_ad(ad, header, rx->mode, rx->dir);
    seal_nonce(nonce, in.salt, in.counter);
    const uint8_t *ct = body + in.prefix;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out, NULL, ct, ct_len, ct + ct_len, ad,
                                                            sizeof ad, nonce, key->bytes) != 0) {
        return CB_ERR_AUTH_FAILED;
    }
    seal_rx_accept(rx, &in);
    *plain = *sealed;
    plain->flags = (uint8_t)(sealed->flags & ~CB_FLAG_ENCRYPTED);
    plain->value_len = (uint32_t)(ct_len - sealed->key_len);
    plain->key = sealed->key_len > 0 ? out : NULL;
    plain->value = plain->value_len > 0 ? out + sealed->key_len : NULL;
    return (long)ct_len;
}
