/* cb_textreply.c: text protocol requests and replies, client side; see cb_textreply.h. */
#include "cb_textreply.h"

#include <string.h>

#include "cb_err.h"
#include "cb_frame.h"

#define TR_U64_DIGITS_MAX 20u
/* "prepend " + key + flags + exptime + bytes + cas, spaces and \r\n: the longest line. */
#define TR_LINE_BYTES_MAX (8u + CB_KEY_BYTES_MAX + 4u * (1u + TR_U64_DIGITS_MAX) + 2u)

_Static_assert(TR_LINE_BYTES_MAX < CB_TEXT_LINE_BYTES_MAX, "a request line fits memcached's");

static int tr_is_store(uint8_t op)
{
    return op == CB_OP_SET || op == CB_OP_ADD || op == CB_OP_REPLACE || op == CB_OP_APPEND ||
           op == CB_OP_PREPEND || op == CB_OP_CAS;
}

static int tr_needs_key(uint8_t op)
{
    return op != CB_OP_FLUSH && op != CB_OP_STATS && op != CB_OP_NOOP;
}

size_t cb_text_request_bytes_max(const cb_text_op *op)
{
    return TR_LINE_BYTES_MAX + (size_t)op->value_len + 2u;
}

/* A small output cursor: every put checks room; `bad` sticks. */
typedef struct tr_out {
    uint8_t *p;
    size_t len;
    size_t cap;
    int bad;
} tr_out;

static void tr_put(tr_out *o, const void *data, size_t len)
{
    if (o->bad || len > o->cap - o->len) {
        o->bad = 1;
        return;
    }
    if (len > 0) {
        memcpy(o->p + o->len, data, len);
    }
    o->len += len;
}

static void tr_puts(tr_out *o, const char *s)
{
    tr_put(o, s, strlen(s));
}

static void tr_put_u64(tr_out *o, uint64_t v)
{
    char d[TR_U64_DIGITS_MAX + 1];
    size_t n = sizeof d;
    do {
        d[--n] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v > 0);
    tr_put(o, " ", 1);
    tr_put(o, d + n, sizeof d - n);
}

static int tr_key_ok(const cb_text_op *op)
{
    for (size_t i = 0; i < op->key_len; i++) {
        if (op->key[i] <= 0x20 || op->key[i] == 0x7F) {
            return 0;
        }
    }
    return 1;
}

static const char *tr_command(uint8_t op)
{
    switch (op) {
    case CB_OP_GET:
        return "gets";
    case CB_OP_FLUSH:
        return "flush_all";
    case CB_OP_NOOP:
        return "version";
    default:
        return cb_op_name(op); /* the text command has the op's name */
    }
}

static int tr_check(const cb_text_op *op)
{
    if (op == NULL || !cb_op_valid(op->op)) {
        return CB_ERR_INVALID;
    }
    if (op->key_len > CB_KEY_BYTES_MAX) {
        return CB_ERR_KEY_TOO_LONG;
    }
    if (tr_needs_key(op->op) != (op->key_len > 0) || (op->key_len > 0 && op->key == NULL) ||
        !tr_key_ok(op)) {
        return CB_ERR_INVALID;
    }
    if ((!tr_is_store(op->op) && op->value_len > 0) || (op->value_len > 0 && op->value == NULL)) {
        return CB_ERR_INVALID;
    }
    return CB_ERR_OK;
}

static uint64_t tr_exptime(uint32_t ttl_ms)
{
    uint64_t s = ((uint64_t)ttl_ms + 999u) / 1000u;
    return s > CB_TEXT_RELATIVE_EXPTIME_MAX ? CB_TEXT_RELATIVE_EXPTIME_MAX : s;
}

long cb_text_encode_request(const cb_text_op *op, uint8_t *out, size_t out_cap)
{
    int rc = tr_check(op);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    tr_out o = {out, 0, out == NULL ? 0 : out_cap, 0};
    tr_puts(&o, tr_command(op->op));
    if (op->key_len > 0) {
        tr_put(&o, " ", 1);
        tr_put(&o, op->key, op->key_len);
    }
    if (tr_is_store(op->op)) {
        tr_put_u64(&o, 0); /* flags */
        tr_put_u64(&o, tr_exptime(op->ttl_ms));
        tr_put_u64(&o, op->value_len);
        if (op->op == CB_OP_CAS) {
            tr_put_u64(&o, op->cas);
        }
        tr_put(&o, "\r\n", 2);
        tr_put(&o, op->value, op->value_len);
    } else if (op->op == CB_OP_INCR || op->op == CB_OP_DECR) {
        tr_put_u64(&o, op->delta);
    } else if (op->op == CB_OP_TOUCH) {
        tr_put_u64(&o, tr_exptime(op->ttl_ms));
    }
    tr_put(&o, "\r\n", 2);
    return o.bad ? CB_ERR_FULL : (long)o.len;
}

/* ---- replies ---------------------------------------------------------------------------- */

/* One line at buf[0..): *line_len without its \r\n or \n, *total with it. */
static int tr_line(const uint8_t *buf, size_t len, size_t *line_len, size_t *total)
{
    size_t scan = len < CB_TEXT_LINE_BYTES_MAX ? len : CB_TEXT_LINE_BYTES_MAX;
    const uint8_t *nl = scan > 0 ? memchr(buf, '\n', scan) : NULL;
    if (nl == NULL) {
        return len >= CB_TEXT_LINE_BYTES_MAX ? CB_ERR_TOO_LARGE : CB_ERR_NEED_MORE;
    }
    *total = (size_t)(nl - buf) + 1u;
    *line_len = *total - 1u;
    if (*line_len > 0 && buf[*line_len - 1u] == '\r') {
        (*line_len)--;
    }
    return CB_ERR_OK;
}

static int tr_is(const uint8_t *line, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len == n && memcmp(line, word, n) == 0;
}

/* `line` starts with `word` followed by a space or the end. */
static int tr_starts(const uint8_t *line, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len >= n && memcmp(line, word, n) == 0 && (len == n || line[n] == ' ');
}

static int tr_u64(const uint8_t *p, size_t len, uint64_t *out)
{
    if (len == 0 || len > TR_U64_DIGITS_MAX) {
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10u) {
            return 0;
        }
        v = v * 10u + d;
    }
    *out = v;
    return 1;
}

/* Next space-separated token of line[*pos..len); 0 when none. */
static int tr_token(const uint8_t *line, size_t len, size_t *pos, const uint8_t **tok, size_t *n)
{
    if (*pos >= len) {
        return 0;
    }
    const uint8_t *sp = memchr(line + *pos, ' ', len - *pos);
    size_t end = sp != NULL ? (size_t)(sp - line) : len;
    *tok = line + *pos;
    *n = end - *pos;
    *pos = end + (sp != NULL);
    return *n > 0;
}

/* ERROR, CLIENT_ERROR ..., SERVER_ERROR ...: 1 with rep->status set, else 0. */
static int tr_error_line(const uint8_t *line, size_t len, uint8_t op, cb_text_reply *rep)
{
    if (tr_is(line, len, "ERROR")) {
        rep->status = CB_STATUS_UNKNOWN_COMMAND;
    } else if (tr_starts(line, len, "CLIENT_ERROR")) {
        int numeric = (op == CB_OP_INCR || op == CB_OP_DECR) && len >= 24 &&
                      memcmp(line, "CLIENT_ERROR cannot incr", 24) == 0;
        rep->status = numeric ? CB_STATUS_NOT_NUMBER : CB_STATUS_BAD_REQUEST;
    } else if (tr_starts(line, len, "SERVER_ERROR")) {
        int large = len >= 23 && memcmp(line, "SERVER_ERROR object too", 23) == 0;
        rep->status = large ? CB_STATUS_TOO_LARGE : CB_STATUS_NO_MEMORY;
    } else {
        return 0;
    }
    rep->error_line = 1;
    return 1;
}

/* "VALUE <key> <flags> <bytes>[ <cas>]" into rep; CB_ERR_OK or an error. */
static int tr_value_line(const uint8_t *line, size_t len, uint32_t value_max, cb_text_reply *rep)
{
    size_t pos = 6; /* after "VALUE " */
    const uint8_t *t;
    size_t n;
    uint64_t flags = 0, bytes = 0, cas = 0;
    if (!tr_token(line, len, &pos, &rep->key, &rep->key_len) || rep->key_len > CB_KEY_BYTES_MAX ||
        !tr_token(line, len, &pos, &t, &n) || !tr_u64(t, n, &flags) || flags > UINT32_MAX ||
        !tr_token(line, len, &pos, &t, &n) || !tr_u64(t, n, &bytes)) {
        return CB_ERR_MALFORMED;
    }
    if (pos < len && (!tr_token(line, len, &pos, &t, &n) || !tr_u64(t, n, &cas) || pos < len)) {
        return CB_ERR_MALFORMED;
    }
    if (bytes > value_max) {
        return CB_ERR_VALUE_TOO_LARGE;
    }
    rep->flags = (uint32_t)flags;
    rep->value_len = (uint32_t)bytes;
    rep->cas = cas;
    return CB_ERR_OK;
}

/* A GET reply: END, or one VALUE, its data, END. */
static long tr_get(const uint8_t *buf, size_t len, size_t line_len, size_t total,
                   uint32_t value_max, cb_text_reply *rep)
{
    if (tr_is(buf, line_len, "END")) {
        rep->status = CB_STATUS_NOT_FOUND;
        return (long)total;
    }
    if (line_len < 6 || memcmp(buf, "VALUE ", 6) != 0) {
        return CB_ERR_MALFORMED;
    }
    int rc = tr_value_line(buf, line_len, value_max, rep);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    size_t whole = total + rep->value_len + 2u + 5u; /* data, \r\n, END\r\n */
    if (len < whole) {
        rep->need_bytes = whole;
        return CB_ERR_NEED_MORE;
    }
    const uint8_t *d = buf + total;
    if (memcmp(d + rep->value_len, "\r\nEND\r\n", 7) != 0) {
        return CB_ERR_MALFORMED;
    }
    rep->value = rep->value_len > 0 ? d : NULL;
    rep->status = CB_STATUS_OK;
    return (long)whole;
}

/* A STATS reply: STAT lines, then END. */
static long tr_stats(const uint8_t *buf, size_t len, cb_text_reply *rep)
{
    size_t at = 0;
    for (;;) {
        size_t line_len = 0, total = 0;
        int rc = tr_line(buf + at, len - at, &line_len, &total);
        if (rc == CB_ERR_OK && at + total > CB_TEXT_REPLY_STATS_BYTES_MAX) {
            rc = CB_ERR_TOO_LARGE;
        }
        if (rc == CB_ERR_NEED_MORE && len >= CB_TEXT_REPLY_STATS_BYTES_MAX) {
            rc = CB_ERR_TOO_LARGE;
        }
        if (rc != CB_ERR_OK) {
            return rc;
        }
        if (tr_is(buf + at, line_len, "END")) {
            rep->status = CB_STATUS_OK;
            return (long)(at + total);
        }
        if (!tr_starts(buf + at, line_len, "STAT")) {
            return at == 0 && tr_error_line(buf, line_len, CB_OP_STATS, rep) ? (long)total
                                                                             : CB_ERR_MALFORMED;
        }
        at += total;
    }
}

/* The one-line replies of every other op. */
static int tr_simple(const uint8_t *line, size_t len, uint8_t op, cb_text_reply *rep)
{
    int store = tr_is_store(op);
    if ((store && tr_is(line, len, "STORED")) ||
        (op == CB_OP_DELETE && tr_is(line, len, "DELETED")) ||
        (op == CB_OP_TOUCH && tr_is(line, len, "TOUCHED")) ||
        (op == CB_OP_FLUSH && tr_is(line, len, "OK")) ||
        (op == CB_OP_NOOP && tr_starts(line, len, "VERSION"))) {
        rep->status = CB_STATUS_OK;
    } else if (store && tr_is(line, len, "NOT_STORED")) {
        rep->status = CB_STATUS_NOT_STORED;
    } else if (store && tr_is(line, len, "EXISTS")) {
        rep->status = CB_STATUS_EXISTS;
    } else if ((store || op == CB_OP_DELETE || op == CB_OP_TOUCH || op == CB_OP_INCR ||
                op == CB_OP_DECR) &&
               tr_is(line, len, "NOT_FOUND")) {
        rep->status = CB_STATUS_NOT_FOUND;
    } else if ((op == CB_OP_INCR || op == CB_OP_DECR) && tr_u64(line, len, &rep->number)) {
        rep->status = CB_STATUS_OK;
    } else if (!tr_error_line(line, len, op, rep)) {
        return CB_ERR_MALFORMED;
    }
    return CB_ERR_OK;
}

long cb_text_parse_reply(const uint8_t *buf, size_t buf_len, uint8_t op, uint32_t value_bytes_max,
                         cb_text_reply *rep)
{
    if (rep == NULL || (buf == NULL && buf_len > 0) || !cb_op_valid(op)) {
        return CB_ERR_INVALID;
    }
    memset(rep, 0, sizeof *rep);
    long rc;
    if (op == CB_OP_STATS) {
        rc = tr_stats(buf, buf_len, rep);
    } else {
        size_t line_len = 0, total = 0;
        rc = tr_line(buf, buf_len, &line_len, &total);
        if (rc == CB_ERR_OK && op == CB_OP_GET) {
            rc = tr_error_line(buf, line_len, op, rep)
                     ? (long)total
                     : tr_get(buf, buf_len, line_len, total, value_bytes_max, rep);
        } else if (rc == CB_ERR_OK) {
            rc = tr_simple(buf, line_len, op, rep);
            rc = rc == CB_ERR_OK ? (long)total : rc;
        }
    }
    if (rc > 0) {
        rep->consumed = (size_t)rc;
    }
    return rc;
}
