/*
 * cb_compress.h: per-value compression (lz4, zstd) for the COMPRESSED frame flag.
 *
 * A value of at least threshold_bytes is compressed before it is framed; the frame's value
 * then holds a compressed payload (docs/protocol.md §5):
 *
 *   off size field
 *   0   1    algorithm: 1 = lz4 block, 2 = zstd frame (with its content size)
 *   1   4    original length, big-endian: 1..value_bytes_max, > the payload's length
 *   5   ..   the algorithm's compressed bytes
 *
 * A value whose payload would not be shorter than the value itself is sent as it is, with
 * the flag clear. The decoder reads the declared original length and checks it against the
 * value limit before any work (a 50-byte payload cannot make us inflate 4 GiB), hands the
 * algorithm the real output capacity (exactly the declared length) and requires the output
 * to be exactly that long.
 *
 * One cb_compress per machine: compression is stateless per value, so connections share it.
 * cb_compress_new allocates everything it will ever use, sized from value_bytes_max: an
 * encode buffer and a decode buffer of value_bytes_max bytes each, and the configured
 * algorithm's state (LZ4_sizeofState bytes, or static zstd contexts). Encoding and decoding
 * never allocate. Sans-IO: no I/O, no mutable static data.
 */
#ifndef CB_COMPRESS_H
#define CB_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "cb_alloc.h"

/* Algorithm ids, as written in byte 0 of a compressed payload (docs/protocol.md §5.1). */
#define CB_COMPRESS_NONE 0u /* configuration only: compression off; never on the wire */
#define CB_COMPRESS_LZ4  1u
#define CB_COMPRESS_ZSTD 2u

#define CB_COMPRESS_HEADER_BYTES 5u

/* Values shorter than this are not worth compressing: below ~100 B lz4 and zstd rarely
 * win back their 5-byte header plus their own framing (bench: `cachebed bench codec`). */
#define CB_COMPRESS_THRESHOLD_DEFAULT  128u
#define CB_COMPRESS_ZSTD_LEVEL_DEFAULT 3
#define CB_COMPRESS_ZSTD_LEVEL_MAX     19 /* above 19 zstd wants ultra mode and 100s of MiB */
#define CB_COMPRESS_LZ4_ACCEL_MAX      65537

typedef struct cb_compress_config {
    uint8_t alg;              /* CB_COMPRESS_LZ4 or CB_COMPRESS_ZSTD */
    int32_t level;            /* zstd: 1..19 (0 picks 3); lz4: acceleration 1..65537 (0: 1) */
    uint32_t threshold_bytes; /* shortest value compressed; 0 picks the default (128) */
    uint32_t value_bytes_max; /* largest value, both ways; 1..CB_VALUE_BYTES_LIMIT */
} cb_compress_config;

typedef struct cb_compress cb_compress;

/*
 * Allocate a compressor for `cfg`. Returns CB_ERR_OK with *out set, CB_ERR_INVALID (an
 * algorithm, level or limit out of range) or CB_ERR_NOMEM (nothing leaked).
 */
int cb_compress_new(const cb_compress_config *cfg, const cb_alloc *alloc, cb_compress **out);

/* Free the compressor and its buffers. NULL is a no-op. */
void cb_compress_del(cb_compress *c);

/* The algorithm this compressor writes (CB_COMPRESS_LZ4 or CB_COMPRESS_ZSTD). */
uint8_t cb_compress_alg(const cb_compress *c);

/*
 * Compress value buf[0..buf_len) into a §5 payload. Returns
 *   > 0  the payload's length, < buf_len; *out points at it, inside the compressor's encode
 *        buffer, valid until the next cb_compress_encode on `c`;
 *   0    send the value as it is (flag clear): it is shorter than threshold_bytes, or it did
 *        not shrink; *out is set to NULL;
 *   CB_ERR_VALUE_TOO_LARGE  buf_len > value_bytes_max;
 *   CB_ERR_INVALID          buf NULL with buf_len > 0.
 */
long cb_compress_encode(cb_compress *c, const uint8_t *buf, size_t buf_len, const uint8_t **out);

/*
 * Check the header of a §5 payload buf[0..buf_len) without decompressing (pure: no state,
 * no allocation). On success returns CB_ERR_OK with *alg and *orig_len set; else, checked in
 * this order:
 *   CB_ERR_MALFORMED        buf_len < CB_COMPRESS_HEADER_BYTES (a truncated header), or an
 *                           original length of 0;
 *   CB_ERR_BAD_ALGORITHM    byte 0 is not CB_COMPRESS_LZ4 or CB_COMPRESS_ZSTD;
 *   CB_ERR_VALUE_TOO_LARGE  the original length is > value_bytes_max (a bomb);
 *   CB_ERR_MALFORMED        the original length is <= buf_len (the payload did not shrink,
 *                           so a conforming sender would not have compressed it).
 */
int cb_compress_peek(const uint8_t *buf, size_t buf_len, uint32_t value_bytes_max, uint8_t *alg,
                     uint32_t *orig_len);

/*
 * Decompress a §5 payload. Returns the original length (> 0) with *out pointing at the
 * value inside the decode buffer, valid until the next cb_compress_decode on `c`; or any
 * error of cb_compress_peek (checked first, before any decompression), or
 *   CB_ERR_CODEC_MISMATCH  a valid algorithm other than the one `c` is configured with;
 *   CB_ERR_MALFORMED       the compressed bytes are corrupt, hold trailing bytes, or do not
 *                          decode to exactly the declared length (zstd: a frame without a
 *                          content size, or one that disagrees with the header);
 *   CB_ERR_INVALID         buf NULL with buf_len > 0.
 * On error *out is NULL and the decode buffer's contents are unspecified.
 */
long cb_compress_decode(cb_compress *c, const uint8_t *buf, size_t buf_len, const uint8_t **out);

/* Bytes cb_compress_new allocates for `cfg` (for benchmarks and docs); 0 if it is invalid. */
size_t cb_compress_memory_bytes(const cb_compress_config *cfg);

#endif
