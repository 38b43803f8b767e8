/*
 * cb_trace.h: read cache traces to replay, one record at a time.
 *
 * Three formats (docs/scenarios.md, "Trace replay"), each plain or zstd-compressed (a file
 * whose first four bytes are the zstd magic 28 b5 2f fd is decompressed as it streams; it
 * may hold several frames):
 *
 *  - CB_TRACE_TWITTER: the Twitter cache-trace CSV (github.com/twitter/cache-trace), seven
 *    fields per line: timestamp, anonymized key, key size, value size, client id,
 *    operation, TTL. Timestamps are seconds, with an optional fraction of up to 9 digits
 *    (the published traces have whole seconds). Operations map to cachebed's:
 *    get, gets -> GET; set, cas -> SET (the trace has no CAS version to send);
 *    add, replace, append, prepend, delete, incr, decr -> the same op (incr/decr by 1).
 *    TTL is in seconds, 0 = none. The key is the anonymized key as written.
 *  - CB_TRACE_LIBCACHESIM_CSV: libCacheSim's CSV. An optional header line names the
 *    columns the way libCacheSim's tools do (`# time,object,size,next_access_vtime` from
 *    tracePrint; also obj_id, obj_size, op, ttl...; unknown columns are ignored); without
 *    one the columns are `time,object,size[,next_access_vtime]`. Blanks around fields are
 *    ignored. An object made of digits only is a numeric id (named like
 *    cb_workload_key_name), anything else a key string. Without an op column every record
 *    is a GET with fill_on_miss (libCacheSim's look-aside semantics).
 *  - CB_TRACE_ORACLE_GENERAL: libCacheSim's binary oracleGeneral records, 24 bytes each,
 *    little-endian: uint32 clock_time (s), uint64 obj_id, uint32 obj_size, int64
 *    next_access_vtime (ignored). Every record is a GET with fill_on_miss.
 *
 * Input is hostile (STYLE.md §4): lines are at most CB_TRACE_LINE_BYTES_MAX bytes, numbers
 * are digit-capped and overflow-checked, keys over CB_KEY_BYTES_MAX bytes, empty keys,
 * unknown operations, wrong field counts, timestamps that go backwards and a record cut
 * short at the end of the input are errors; the message names `file:line` (CSV) or
 * `file: record N at offset O` (binary, offsets in decompressed bytes). Nothing is skipped
 * or truncated silently; the first error ends the trace.
 *
 * Memory is bounded whatever the trace's size: the reader keeps one 64 KiB buffer of
 * decompressed bytes and one compressed input buffer, never the whole file.
 */
#ifndef CB_TRACE_H
#define CB_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "cb_limits.h"
#include "cb_scenario.h" /* cb_trace_format */

/* Longest CSV line, without its line end. Real trace lines are under 200 bytes; 4 KiB leaves
 * room for long keys while bounding the buffer a line must fit in. */
#define CB_TRACE_LINE_BYTES_MAX 4096u
/* Size of one oracleGeneral record. */
#define CB_TRACE_ORACLE_RECORD_BYTES 24u
/* Length of the name of a numeric key id: 'k' and 16 hex digits, unique for every 64-bit id
 * (cb_workload_key_name's scheme with key_bytes = 17). */
#define CB_TRACE_ID_KEY_BYTES 17u
/* trace_speed bounds, in millionths (the scenario's range: 0.001 .. 1000). */
#define CB_TRACE_SPEED_MICRO_MIN 1000u
#define CB_TRACE_SPEED_MICRO_MAX 1000000000u

/* One request of the trace. A plain struct; cb_trace_next overwrites all of it. */
typedef struct cb_trace_record {
    uint64_t index;        /* 0, 1, 2... among the trace's records (header not counted) */
    uint64_t timestamp_ns; /* since the first record, divided by the speed */
    uint8_t op;            /* CB_OP_GET, SET, ADD, REPLACE, APPEND, PREPEND, DELETE, INCR, DECR */
    uint8_t fill_on_miss;  /* a GET whose miss the replayer follows with a SET of value_bytes */
    uint8_t key_is_id;     /* 1: key_id is the key; 0: key[0..key_len) is */
    uint8_t key_len;       /* 1..CB_KEY_BYTES_MAX when key_is_id is 0, else 0 */
    uint8_t key[CB_KEY_BYTES_MAX];
    uint64_t key_id;
    uint32_t key_bytes;   /* the key size the trace declares (Twitter), else the key's length */
    uint32_t value_bytes; /* as in the trace, not capped */
    uint64_t client_id;   /* Twitter's client id; for formats without one, `index` */
    uint32_t ttl_s;       /* 0 = none */
} cb_trace_record;

typedef struct cb_trace cb_trace;

/*
 * Open the trace at `path` in `format`; timestamps are divided by speed_micro / 10^6
 * (CB_TRACE_SPEED_MICRO_MIN..MAX). Reads nothing beyond the first bytes (zstd detection).
 * Returns CB_ERR_OK with *out set, CB_ERR_INVALID (cannot open the file, a bad format or
 * speed) or CB_ERR_NOMEM, with a message in err[0..err_cap) and *out NULL.
 */
int cb_trace_open(const char *path, cb_trace_format format, uint64_t speed_micro, cb_trace **out,
                  char *err, size_t err_cap);

/*
 * As cb_trace_open, from buf[0..buf_len) (any bytes; read in place, so it must outlive the
 * trace). `name` is what messages call the input.
 */
int cb_trace_open_memory(const char *name, const uint8_t *buf, size_t buf_len,
                         cb_trace_format format, uint64_t speed_micro, cb_trace **out, char *err,
                         size_t err_cap);

/*
 * Read the next record into *rec. Returns 1 (a record), 0 (the trace ended cleanly), or a
 * negative cb_err with cb_trace_error() saying where and why:
 *   CB_ERR_MALFORMED  a bad line, field, number, operation, header or zstd stream;
 *   CB_ERR_TOO_LARGE  a line over CB_TRACE_LINE_BYTES_MAX, a key over CB_KEY_BYTES_MAX, a
 *                     number over its field's range, a scaled time beyond 2^64 ns;
 *   CB_ERR_NEED_MORE  the input ends inside a record (binary) or a zstd frame;
 *   CB_ERR_INVALID    a read error from the file;
 *   CB_ERR_NOMEM.
 * After 0 or an error, every further call returns the same.
 */
int cb_trace_next(cb_trace *t, cb_trace_record *rec);

/* The last error's message ("" if none); valid until cb_trace_close. */
const char *cb_trace_error(const cb_trace *t);

/* Close the file and free everything. NULL is a no-op. */
void cb_trace_close(cb_trace *t);

#endif
