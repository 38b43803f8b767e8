/*
 * cb_seal.h: authenticated encryption of whole frames (the ENCRYPTED flag) with a pre-shared
 * 32-byte key: XChaCha20-Poly1305 IETF (libsodium crypto_aead_xchacha20poly1305_ietf_*).
 *
 * The wire format is docs/protocol.md §6. In short: the 40-byte header stays in clear (so
 * framing works unchanged) and is authenticated as associated data, together with the
 * transport mode and the direction; key and value are encrypted as one body; value_len
 * counts the seal's overhead, so the frame's length is still 40 + key_len + value_len.
 *
 *   stream, a session's first frame:  header | salt(16)             | ct(key|value) | tag(16)
 *   stream, every later frame:        header |                        ct(key|value) | tag(16)
 *   datagram, every frame:            header | salt(16) | counter(8) | ct(key|value) | tag(16)
 *
 * The 24-byte nonce is salt(16) | counter(8, big-endian). Each sender session draws its salt
 * from the caller's seeded cb_rng (protocols/ reads no OS randomness: STYLE.md §6) and counts
 * from 0, so a nonce is never reused as long as no two sessions under one key draw the same
 * 128-bit salt: drivers seed each machine's generator differently, and real (socket) drivers
 * from the OS RNG. A stream receiver requires counter n+1 after n (the counter is implicit:
 * a replayed, dropped or reordered frame fails authentication); a datagram receiver keeps an
 * IPsec-style sliding window of CB_SEAL_WINDOW_BITS counters and rejects duplicates and
 * frames older than the window.
 *
 * libsodium: protocols/ never calls sodium_init(). Drivers (the CLI, tests, benches) call
 * cb_seal_global_init() once at start-up; sealing works before it too (libsodium's portable
 * code), only slower.
 *
 * Sans-IO: no allocation, no I/O, no mutable static data; tx/rx states are plain structs the
 * caller embeds (one pair per connection, or per peer for datagrams).
 */
#ifndef CB_SEAL_H
#define CB_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "cb_frame.h"
#include "cb_rng.h"

#define CB_SEAL_KEY_BYTES     32u
#define CB_SEAL_TAG_BYTES     16u
#define CB_SEAL_SALT_BYTES    16u
#define CB_SEAL_COUNTER_BYTES 8u
#define CB_SEAL_NONCE_BYTES   24u
/* The most a frame grows by when sealed (a datagram frame: salt, counter, tag). */
#define CB_SEAL_OVERHEAD_MAX (CB_SEAL_SALT_BYTES + CB_SEAL_COUNTER_BYTES + CB_SEAL_TAG_BYTES)
/* Datagram anti-replay window: RFC 4303 asks for >= 32 and suggests 64; datagrams that
 * jitter reorders by up to 256 frames are still accepted. A multiple of 64. */
#define CB_SEAL_WINDOW_BITS 256u

/* Transport modes (bound into every frame's associated data). */
#define CB_SEAL_STREAM   1u
#define CB_SEAL_DATAGRAM 2u
/* Directions (bound into every frame's associated data, so a frame cannot be reflected). */
#define CB_SEAL_CLIENT_TO_SERVER 1u
#define CB_SEAL_SERVER_TO_CLIENT 2u

typedef struct cb_seal_key {
    uint8_t bytes[CB_SEAL_KEY_BYTES];
} cb_seal_key;

/* A sender session: one per connection and direction (stream), or per peer (datagram). */
typedef struct cb_seal_tx {
    uint8_t mode;
    uint8_t dir;
    uint8_t salt_sent; /* stream: the session's salt went out in its first frame */
    uint8_t salt[CB_SEAL_SALT_BYTES];
    uint64_t counter; /* the next frame's counter */
} cb_seal_tx;

/* A receiver session, the sender's mirror. */
typedef struct cb_seal_rx {
    uint8_t mode;
    uint8_t dir;
    uint8_t have_salt;
    uint8_t have_retired;
    uint8_t salt[CB_SEAL_SALT_BYTES];
    uint8_t retired[CB_SEAL_SALT_BYTES]; /* datagram: the peer's previous session */
    uint64_t top; /* stream: the next counter; datagram: the highest accepted + 1 (0: none) */
    uint64_t window[CB_SEAL_WINDOW_BITS / 64u]; /* datagram: bit i = counter top-1-i seen */
} cb_seal_rx;

/* Call sodium_init() (drivers only, once, before any thread uses libsodium). Returns
 * CB_ERR_OK, or CB_ERR_INVALID when libsodium cannot initialise. */
int cb_seal_global_init(void);

/*
 * Parse a key written as 64 hexadecimal digits (either case), optionally followed by one
 * "\n" (the key file format, docs/protocol.md §6.4). Returns CB_ERR_OK, or CB_ERR_MALFORMED
 * (wrong length, a non-hex digit) with *out untouched.
 */
int cb_seal_key_parse(const char *text, size_t text_len, cb_seal_key *out);

/* Write `key` as 64 lower-case hex digits and "\n" into out (out_cap >= 65); returns 65, or
 * CB_ERR_FULL. */
long cb_seal_key_format(const cb_seal_key *key, char *out, size_t out_cap);

/* Wipe a key (sodium_memzero: not optimised away). */
void cb_seal_key_wipe(cb_seal_key *key);

/*
 * Start a sender session: mode CB_SEAL_STREAM or CB_SEAL_DATAGRAM, direction of the frames it
 * sends; a fresh salt is drawn from `rng` and the counter starts at 0. Call again on every
 * new connection (stream). Returns CB_ERR_OK or CB_ERR_INVALID (bad mode or direction).
 */
int cb_seal_tx_init(cb_seal_tx *tx, uint8_t mode, uint8_t dir, cb_rng *rng);

/* Start a receiver session for frames travelling in direction `dir`. Same returns. */
int cb_seal_rx_init(cb_seal_rx *rx, uint8_t mode, uint8_t dir);

/* How many bytes the next frame sealed by `tx` grows by (16, 32 or 40). */
size_t cb_seal_overhead(const cb_seal_tx *tx);

/*
 * Seal the plaintext frame `plain` (ENCRYPTED clear) into out[0..out_cap): the sealed frame
 * is 40 + key_len + value_len + cb_seal_overhead(tx) bytes, with ENCRYPTED set and value_len
 * counting the overhead. On success the session's counter advances. Returns the sealed
 * frame's length, or (nothing advanced, out unspecified):
 *   CB_ERR_INVALID          `plain` already has ENCRYPTED set, a NULL argument, a frame
 *                           cb_frame_encode refuses, or an uninitialised tx;
 *   CB_ERR_VALUE_TOO_LARGE  value_len + overhead > CB_VALUE_BYTES_LIMIT;
 *   CB_ERR_TOO_LARGE        the counter is exhausted (2^64 - 1 frames sent): start a new
 *                           session;
 *   CB_ERR_FULL             out_cap is too small.
 */
long cb_seal_frame(cb_seal_tx *tx, const cb_seal_key *key, const cb_frame *plain, uint8_t *out,
                   size_t out_cap);

/*
 * Open the sealed frame `sealed`, as cb_frame_decode returned it (its key and value views
 * contiguous). The decrypted key and value are written to out[0..key_len + plain value_len)
 * and *plain receives the header with ENCRYPTED cleared, value_len without the overhead and
 * key/value pointing into `out` (NULL when empty). The session advances only on success.
 * Returns the plaintext body length (key_len + value_len, >= 0), or:
 *   CB_ERR_CODEC_MISMATCH  the frame is not sealed (ENCRYPTED clear);
 *   CB_ERR_MALFORMED       value_len is shorter than the overhead this session expects;
 *   CB_ERR_FULL            out_cap is smaller than the plaintext body;
 *   CB_ERR_REPLAY          datagram only: a counter already accepted, one older than the
 *                          window, or a salt of the peer's previous session;
 *   CB_ERR_AUTH_FAILED     the tag does not verify: wrong key, any byte changed (header
 *                          included), wrong direction or mode, or, on a stream, a frame
 *                          replayed, dropped or reordered (its counter is implicit);
 *   CB_ERR_INVALID         NULL arguments, views not contiguous, or an uninitialised rx.
 * On any error *plain is untouched and out holds no plaintext: when authentication fails
 * libsodium zeroes the bytes it was given to write, and nothing else is written.
 */
long cb_seal_open(cb_seal_rx *rx, const cb_seal_key *key, const cb_frame *sealed, uint8_t *out,
                  size_t out_cap, cb_frame *plain);

#endif
