/*
 * cb_text.h: the memcached text protocol (sans-IO) — a request parser and reply encoders.
 *
 * The server machine (cb_server.c) speaks this on a connection whose first byte is not 0xCB
 * (docs/real.md §3). The grammar is memcached's doc/protocol.txt; what cachebed supports and
 * where it differs is in docs/real.md §4.
 *
 * Parsing: cb_text_parse() takes the bytes a connection has buffered and returns one request:
 * its command line and, for storage commands, its data block. It never allocates and never
 * copies: the request's key, key list, value and opaque are views into the input, valid as
 * long as the input is. Input is hostile: a line is at most CB_TEXT_LINE_BYTES_MAX bytes
 * (retrieval lines CB_TEXT_GET_LINE_BYTES_MAX, as memcached lets multi-key gets run long),
 * keys at most CB_KEY_BYTES_MAX, numbers have bounded digits and are overflow-checked, and a
 * data block's length meets the caller's value_bytes_max as soon as the line is in, before
 * any byte of the block is needed.
 *
 * A request the client got wrong but whose extent is known (an unknown command, a bad
 * number, a key too long, a value over the limit, a data block not ending in \r\n) is not a
 * parse failure: it is returned as a request with `error` set, `consumed` covering what to
 * skip, plus `swallow_bytes` still to discard from later input and `close` when the
 * connection must end after the error reply. Only input whose extent cannot be known is a
 * parse failure (a line with no newline within the limit).
 */
#ifndef CB_TEXT_H
#define CB_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "cb_limits.h"

/* memcached's command line limit (its READ_BUFFER_SIZE-era 2048): the line and its \r\n. */
#define CB_TEXT_LINE_BYTES_MAX 2048u
/*
 * Retrieval lines (get, gets, gat, gats) may list many keys; memcached grows its buffer for
 * them. 64 KiB holds 250 keys of 250 bytes; a longer multi-get must be split by the client.
 */
#define CB_TEXT_GET_LINE_BYTES_MAX 65536u
/* Most tokens on a non-retrieval line (memcached's MAX_TOKENS is 24). */
#define CB_TEXT_TOKENS_MAX 24u
/* Longest meta opaque token (memcached's MFLAG_MAX_OPAQUE_LENGTH). */
#define CB_TEXT_OPAQUE_BYTES_MAX 32u
/* Most return flags a meta command echoes (one per letter; duplicates are rejected). */
#define CB_TEXT_META_RETURN_MAX 16u
/* Exptimes above this many seconds are absolute Unix times (memcached's REALTIME_MAXDELTA). */
#define CB_TEXT_RELATIVE_EXPTIME_MAX 2592000
/*
 * A storage command announcing more than value_bytes_max gets SERVER_ERROR and its data block
 * is swallowed (memcached's conn_swallow) when it announces at most this much; beyond, the
 * connection is closed after the error, rather than reading up to 4 GiB of junk.
 */
#define CB_TEXT_SWALLOW_BYTES_MAX CB_VALUE_BYTES_LIMIT

_Static_assert(CB_TEXT_GET_LINE_BYTES_MAX >= CB_TEXT_LINE_BYTES_MAX, "retrieval lines longer");
_Static_assert(CB_TEXT_LINE_BYTES_MAX > CB_KEY_BYTES_MAX + 64u, "a line holds a long key");

typedef enum {
    CB_TEXT_CMD_NONE = 0, /* an error request (see `error`) */
    CB_TEXT_CMD_GET,
    CB_TEXT_CMD_GETS,
    CB_TEXT_CMD_GAT,
    CB_TEXT_CMD_GATS,
    CB_TEXT_CMD_SET,
    CB_TEXT_CMD_ADD,
    CB_TEXT_CMD_REPLACE,
    CB_TEXT_CMD_APPEND,
    CB_TEXT_CMD_PREPEND,
    CB_TEXT_CMD_CAS,
    CB_TEXT_CMD_DELETE,
    CB_TEXT_CMD_INCR,
    CB_TEXT_CMD_DECR,
    CB_TEXT_CMD_TOUCH,
    CB_TEXT_CMD_FLUSH_ALL,
    CB_TEXT_CMD_STATS,
    CB_TEXT_CMD_VERSION,
    CB_TEXT_CMD_VERBOSITY,
    CB_TEXT_CMD_QUIT,
    CB_TEXT_CMD_MG,
    CB_TEXT_CMD_MS,
    CB_TEXT_CMD_MD,
    CB_TEXT_CMD_MA,
    CB_TEXT_CMD_MN,
} cb_text_cmd;

/* Client mistakes answered on the wire; each has its reply line (cb_text_error_line). */
#define CB_TEXT_ERROR_LIST(X)                                                                      \
    X(NONE, "")                                                                                    \
    X(UNKNOWN_COMMAND, "ERROR")                                                                    \
    X(FORMAT, "CLIENT_ERROR bad command line format")                                              \
    X(KEY_TOO_LONG, "CLIENT_ERROR key too long")                                                   \
    X(BAD_CHUNK, "CLIENT_ERROR bad data chunk")                                                    \
    X(TOO_LARGE, "SERVER_ERROR object too large for cache")                                        \
    X(LINE_TOO_LONG, "CLIENT_ERROR line too long")                                                 \
    X(BAD_DELTA, "CLIENT_ERROR invalid numeric delta argument")                                    \
    X(BAD_EXPTIME, "CLIENT_ERROR invalid exptime argument")                                        \
    X(BAD_FLAG, "CLIENT_ERROR invalid flag")                                                       \
    X(DUP_FLAG, "CLIENT_ERROR duplicate flag")                                                     \
    X(BAD_MODE, "CLIENT_ERROR invalid mode for ms")                                                \
    X(OPAQUE_TOO_LONG, "CLIENT_ERROR opaque token too long")                                       \
    X(UNSUPPORTED, "CLIENT_ERROR flag not supported by cachebed")

typedef enum {
#define CB_TEXT_ERROR_ENUM(name, line) CB_TEXT_ERROR_##name,
    CB_TEXT_ERROR_LIST(CB_TEXT_ERROR_ENUM)
#undef CB_TEXT_ERROR_ENUM
} cb_text_error;

/* The reply line of `error`, without \r\n ("ERROR", "CLIENT_ERROR ..."); "" for NONE and
 * for values not in the list. */
const char *cb_text_error_line(int error);

/* Meta flag bits (cb_text_request.meta): one bit per letter seen. */
#define CB_TEXT_META_BIT(letter) (1ull << ((letter) - 'A'))

/* ms/ma mode letters (flag M): ms E A P R S; ma I D ('+' and '-' map to I and D). */
typedef struct cb_text_request {
    uint8_t cmd;            /* cb_text_cmd; CB_TEXT_CMD_NONE when `error` is set */
    uint8_t error;          /* cb_text_error */
    uint8_t noreply;        /* classic `noreply`, or meta `q` */
    uint8_t close;          /* close the connection after replying (quit; an unbounded error) */
    size_t consumed;        /* bytes of the input this request covers (line and data block) */
    uint64_t swallow_bytes; /* further input bytes to discard (a refused data block) */
    const uint8_t *key;     /* single-key commands (and the first key of a retrieval) */
    size_t key_len;
    const uint8_t *keys; /* retrieval: the space-separated key list, every key checked */
    size_t keys_len;
    const uint8_t *value; /* storage: the data block, without its \r\n */
    uint32_t value_len;
    uint32_t flags;  /* client flags (storage; ms F) */
    int64_t exptime; /* seconds as sent (storage, touch, gat, ms/mg/ma T); see has_exptime */
    uint8_t has_exptime;
    uint64_t cas;           /* cas; meta C */
    uint64_t delta;         /* incr/decr; ma D (default 1) */
    uint64_t number;        /* flush_all delay, verbosity level; ma J (default 0) */
    int64_t vivify_exptime; /* ma N: create on miss with this exptime; see has_vivify */
    uint8_t has_vivify;
    uint8_t has_number;
    uint8_t has_block;    /* a data block follows the line (storage, ms) */
    uint64_t block_bytes; /* its announced length, as sent (may be over the limit) */
    char mode;            /* ms: E A P R S (default S); ma: I D (default I) */
    uint64_t meta;        /* CB_TEXT_META_BIT of every meta flag letter given */
    char meta_ret[CB_TEXT_META_RETURN_MAX]; /* return flags in request order (c f k O s t) */
    uint8_t meta_ret_count;
    const uint8_t *opaque; /* meta O token */
    size_t opaque_len;
    size_t need_bytes; /* on CB_ERR_NEED_MORE: the whole request's length if known, else 0 */
} cb_text_request;

typedef struct cb_text_limits {
    uint32_t value_bytes_max; /* data blocks above it are refused (TOO_LARGE) */
} cb_text_limits;

/*
 * Parse one request from the start of buf[0..buf_len). Returns the bytes the request covers
 * (> 0, also in req->consumed) with *req filled — possibly an error request (req->error set,
 * req->cmd NONE), which the caller answers with cb_text_error_line() and skips; or:
 *   CB_ERR_NEED_MORE  the bytes end inside the line or the data block; req->need_bytes is
 *                     the whole request's length once the line is in (else 0);
 *   CB_ERR_TOO_LARGE  no newline within the line limit: the stream cannot be framed; answer
 *                     CLIENT_ERROR line too long and close;
 *   CB_ERR_INVALID    req or lim NULL, or buf NULL with buf_len > 0.
 * Never reads past buf[buf_len - 1]. Lines end in \r\n or a bare \n (as memcached accepts).
 */
long cb_text_parse(const uint8_t *buf, size_t buf_len, const cb_text_limits *lim,
                   cb_text_request *req);

/*
 * Iterate the keys of a retrieval request: *cursor starts at 0. Returns 1 with (*key,
 * *key_len) set to the next key, or 0 when none is left. The keys were checked by the parse.
 */
int cb_text_next_key(const cb_text_request *req, size_t *cursor, const uint8_t **key,
                     size_t *key_len);

/* Longest line cb_text_encode_value_header() writes. */
#define CB_TEXT_VALUE_HEADER_BYTES_MAX (6u + CB_KEY_BYTES_MAX + 1u + 10u + 1u + 10u + 1u + 20u + 2u)

/*
 * Encoders. Each writes into out[0..out_cap) and returns the length written, or CB_ERR_FULL
 * when out_cap is too small (out may then hold a partial write).
 *
 * "VALUE <key> <flags> <bytes>[ <cas>]\r\n" (with_cas 0 or 1); the caller adds the data and
 * "\r\n".
 */
long cb_text_encode_value_header(uint8_t *out, size_t out_cap, const uint8_t *key, size_t key_len,
                                 uint32_t flags, size_t value_len, int with_cas, uint64_t cas);

/* `line` followed by \r\n. */
long cb_text_encode_line(uint8_t *out, size_t out_cap, const char *line);

/* The decimal number and \r\n (incr/decr replies). */
long cb_text_encode_number(uint8_t *out, size_t out_cap, uint64_t number);

/* What a meta reply reports about the item; fields are read as req->meta_ret asks. */
typedef struct cb_text_meta_item {
    uint64_t cas;
    uint32_t flags;
    int64_t ttl_s; /* remaining seconds; -1 for none */
    size_t size;
} cb_text_meta_item;

/*
 * A meta reply line: `code` ("HD", "NF", ..., or "VA" which writes "VA <value_len>"), then the
 * return flags req->meta_ret asks for (k echoes req->key, O req->opaque), then \r\n. `item`
 * NULL means the item is unknown (a miss or a failure): only O and k are echoed then. The caller
 * adds a VA's data and \r\n.
 */
long cb_text_encode_meta(uint8_t *out, size_t out_cap, const char *code, size_t value_len,
                         const cb_text_request *req, const cb_text_meta_item *item);

#endif
