/*
 * cb_codec.h: what a machine (cb_client, cb_server) does to frames between its logic and
 * the wire when compression and/or sealing are configured: compress values and seal frames
 * on send, open and decompress on receive (docs/protocol.md §5, §6).
 *
 * One cb_codec per machine. It owns the compressor (cb_compress.h, shared by all
 * connections: compression is stateless per value), a copy of the seal key, one sender and
 * one receiver session per connection (cb_seal.h), a buffer for one opened frame, and the
 * generator its session salts are drawn from. Everything is allocated by cb_codec_new, sized
 * from conn_count and value_bytes_max; nothing is allocated per frame.
 *
 * Compression is agreed per connection by the HELLO exchange on stream transports
 * (docs/protocol.md §5.3): each connection has an agreed algorithm, CB_CODEC_AGREED_CONFIGURED
 * until a HELLO settles it (and again after cb_codec_reset), meaning "the configured one":
 * datagram and queue transports, and peers that never send HELLO, stay configured alike, and
 * a frame that does not match this end's configuration is refused with CB_ERR_CODEC_MISMATCH
 * (docs/protocol.md §5.3, §6.3).
 */
#ifndef CB_CODEC_H
#define CB_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "cb_alloc.h"
#include "cb_compress.h"
#include "cb_frame.h"
#include "cb_seal.h"

/* Part of cb_client_config and cb_server_config; all zero means both off. */
typedef struct cb_codec_config {
    uint8_t compress_alg;              /* CB_COMPRESS_NONE (off), _LZ4 or _ZSTD */
    int32_t compress_level;            /* cb_compress_config.level (0: the default) */
    uint32_t compress_threshold_bytes; /* shortest value compressed (0: 128) */
    const cb_seal_key *seal_key;       /* NULL: no sealing; else copied by cb_codec_new */
    uint8_t seal_mode;                 /* CB_SEAL_STREAM (0 picks it) or CB_SEAL_DATAGRAM */
    /* Seeds the session salts. Machines sharing a key must use different seeds (drivers
     * draw them from the run's generator; real drivers from the OS RNG, docs §6.2). */
    uint64_t seal_seed;
    /* 1: the transport has no connections (UDP, queue): a client never sends HELLO and both
     * ends stay configured alike (docs/protocol.md §5.3). 0: stream (TCP). */
    uint8_t connectionless;
} cb_codec_config;

/* A connection's agreed algorithm before any HELLO: the configured one (cb_codec_agreed). */
#define CB_CODEC_AGREED_CONFIGURED 0xFFu
/* The HELLO bitmask bits that name an algorithm (bit n: algorithm id n, cb_compress.h). */
#define CB_CODEC_HELLO_MASK_KNOWN ((1u << CB_COMPRESS_LZ4) | (1u << CB_COMPRESS_ZSTD))

/* Which end a machine is: sets the direction of the frames it seals and opens. */
#define CB_CODEC_CLIENT 1u
#define CB_CODEC_SERVER 2u

typedef struct cb_codec cb_codec;

/* 1 if `cfg` turns compression or sealing on (a machine then needs a cb_codec), else 0. */
int cb_codec_enabled(const cb_codec_config *cfg);

/*
 * Create the codec of a machine with `conn_count` connections (peers), for values of at
 * most value_bytes_max. Returns CB_ERR_OK with *out set, CB_ERR_INVALID (a config value out
 * of range, or nothing enabled) or CB_ERR_NOMEM (nothing leaked).
 */
int cb_codec_new(const cb_codec_config *cfg, uint8_t role, uint32_t conn_count,
                 uint32_t value_bytes_max, const cb_alloc *alloc, cb_codec **out);

/* Free the codec, wiping the key. NULL is a no-op. */
void cb_codec_del(cb_codec *c);

/* Is sealing on? */
int cb_codec_sealing(const cb_codec *c);

/* Is the seal mode CB_SEAL_DATAGRAM (a refused frame is dropped, the connection kept)? */
int cb_codec_datagram(const cb_codec *c);

/* The largest value_len a frame on the wire may carry: the value limit plus the seal's
 * overhead when sealing. The machine's framer limit. */
uint32_t cb_codec_wire_value_max(const cb_codec *c, uint32_t value_bytes_max);

/* The most a frame grows by on the wire (0 or CB_SEAL_OVERHEAD_MAX). */
size_t cb_codec_overhead_max(const cb_codec *c);

/*
 * Compress f's value if compression is on, it is long enough and it shrinks: then f->value
 * points at the payload (valid until the next cb_codec_compress), f->value_len is its length
 * and COMPRESSED is set. Returns 1 if compressed, 0 if left as it is, or
 * CB_ERR_VALUE_TOO_LARGE (value over the limit).
 */
int cb_codec_compress(cb_codec *c, cb_frame *f);

/* The length `plain` will have on connection `conn` once sealed (its encoded length when
 * sealing is off). */
size_t cb_codec_wire_len(const cb_codec *c, uint32_t conn, const cb_frame *plain);

/*
 * Write `plain` for the wire on connection `conn` into out[0..out_cap): sealed with the
 * connection's sender session when sealing is on, else just encoded. Returns the length
 * written (cb_codec_wire_len), or an error of cb_seal_frame / cb_frame_encode.
 */
long cb_codec_write(cb_codec *c, uint32_t conn, const cb_frame *plain, uint8_t *out,
                    size_t out_cap);

/*
 * Undo sealing of a frame received on `conn` (as cb_frame_decode gave it). With sealing on,
 * *plain views the opened frame inside the codec (valid until the next cb_codec_open); with
 * sealing off, *plain is a copy of *wire. Returns CB_ERR_OK, or
 *   CB_ERR_CODEC_MISMATCH  a clear frame while sealing, or a sealed one while not;
 *   any error of cb_seal_open (CB_ERR_AUTH_FAILED, CB_ERR_REPLAY, CB_ERR_MALFORMED).
 */
int cb_codec_open(cb_codec *c, uint32_t conn, const cb_frame *wire, cb_frame *plain);

/*
 * Undo compression of f's value if COMPRESSED is set: f->value then points at the original
 * bytes (valid until the next cb_codec_decompress) and the flag is cleared. Returns
 * CB_ERR_OK, or CB_ERR_CODEC_MISMATCH (compression off here), or any error of
 * cb_compress_decode (CB_ERR_VALUE_TOO_LARGE for a bomb, CB_ERR_MALFORMED,
 * CB_ERR_BAD_ALGORITHM).
 */
int cb_codec_decompress(cb_codec *c, cb_frame *f);

/* Is compression configured (an algorithm other than CB_COMPRESS_NONE)? */
int cb_codec_compressing(const cb_codec *c);

/* The algorithm compression is configured with (CB_COMPRESS_NONE when off). */
uint8_t cb_codec_alg(const cb_codec *c);

/* The HELLO bitmask of the algorithms this end decodes: 1 << the configured algorithm, or
 * 0 when compression is off. NULL (no codec) gives 0. */
uint64_t cb_codec_hello_mask(const cb_codec *c);

/* A server's answer to a HELLO offering `peer_mask`: its configured algorithm if the mask
 * has that algorithm's bit, else CB_COMPRESS_NONE. NULL (no codec) gives CB_COMPRESS_NONE. */
uint8_t cb_codec_hello_choose(const cb_codec *c, uint64_t peer_mask);

/* Settle connection `conn`'s algorithm: CB_COMPRESS_NONE (send every value as it is) or the
 * configured algorithm (any other value is taken as CB_COMPRESS_NONE). Lasts until
 * cb_codec_reset(conn). A no-op when compression is off. */
void cb_codec_agree(cb_codec *c, uint32_t conn, uint8_t alg);

/* Connection `conn`'s agreed algorithm: CB_CODEC_AGREED_CONFIGURED, CB_COMPRESS_NONE or the
 * configured algorithm (CB_COMPRESS_NONE when compression is off). */
uint8_t cb_codec_agreed(const cb_codec *c, uint32_t conn);

/* cb_codec_compress for a frame sent on `conn`: leaves it as it is (returns 0) when the
 * connection agreed on CB_COMPRESS_NONE. */
int cb_codec_compress_conn(cb_codec *c, uint32_t conn, cb_frame *f);

/* Connection `conn` starts over: its agreed algorithm goes back to
 * CB_CODEC_AGREED_CONFIGURED, and in stream seal mode it gets a new sender session with a
 * fresh salt and a receiver waiting for the peer's new salt (datagram seal sessions outlive
 * connections). */
void cb_codec_reset(cb_codec *c, uint32_t conn);

/* The peer behind `conn` is gone for good and the id may go to another peer (a datagram
 * driver's bounded peer table): as cb_codec_reset, and the seal sessions start afresh in
 * either mode (a fresh sender salt, a receiver with no salt and an empty window). */
void cb_codec_forget(cb_codec *c, uint32_t conn);

#endif
