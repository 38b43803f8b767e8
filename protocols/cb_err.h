/*
 * cb_err.h: the error codes every cachebed module returns.
 *
 * One X-macro list generates the enum and cb_strerror()/cb_err_name(), in the manner of
 * libuv's UV_ERRNO_MAP. Codes are negative; functions that return a count or a byte total
 * return it as a non-negative value and an error as one of these.
 *
 * "Need more bytes" (CB_ERR_NEED_MORE) is not "malformed": a decoder that sees the input end
 * mid-message says so, and the caller waits for more bytes.
 */
#ifndef CB_ERR_H
#define CB_ERR_H

#define CB_ERR_LIST(X)                                                                             \
    X(OK, 0, "ok")                                                                                 \
    X(NEED_MORE, -1, "input ends mid-message")                                                     \
    X(MALFORMED, -2, "malformed message")                                                          \
    X(TOO_LARGE, -3, "field over its limit")                                                       \
    X(NOMEM, -4, "out of memory")                                                                  \
    X(FULL, -5, "outbox full")                                                                     \
    X(BAD_MAGIC, -6, "bad magic: not a cachebed frame")                                            \
    X(BAD_VERSION, -7, "unsupported frame version")                                                \
    X(BAD_OPCODE, -8, "unknown opcode")                                                            \
    X(BAD_FLAGS, -9, "reserved flag bits set")                                                     \
    X(KEY_TOO_LONG, -10, "key longer than 250 bytes")                                              \
    X(VALUE_TOO_LARGE, -11, "value larger than the configured maximum")                            \
    X(INVALID, -12, "invalid argument")                                                            \
    X(NOT_FOUND, -13, "not found")                                                                 \
    X(EXISTS, -14, "exists")                                                                       \
    X(NOT_STORED, -15, "not stored")                                                               \
    X(NOT_NUMBER, -16, "value is not a decimal number")                                            \
    X(BUSY, -17, "too many requests in flight")                                                    \
    X(UNKNOWN_CONN, -18, "unknown connection or peer")                                             \
    X(CLOSED, -19, "connection closed")                                                            \
    X(CODEC_MISMATCH, -20, "peer's compression or sealing differs from ours")                      \
    X(BAD_ALGORITHM, -21, "unknown compression algorithm")                                         \
    X(AUTH_FAILED, -22, "sealed frame failed authentication (wrong key or tampered)")              \
    X(REPLAY, -23, "replayed, reordered or duplicate sealed frame")

typedef enum {
#define CB_ERR_ENUM(name, code, text) CB_ERR_##name = (code),
    CB_ERR_LIST(CB_ERR_ENUM)
#undef CB_ERR_ENUM
} cb_err;

/* A static string describing `err`; "unknown error" for a value not in the list. */
const char *cb_strerror(int err);

/* The code's name without prefix ("NEED_MORE"); "UNKNOWN" for a value not in the list. */
const char *cb_err_name(int err);

#endif
