/*
 * cb_text.c: the memcached text protocol parser and reply encoders; see cb_text.h for the
 * contract and docs/real.md §4 for what is supported.
 */
#include "cb_text.h"

#include <assert.h>
#include <string.h>

#include "cb_err.h"

/* A token: a view into the line. */
typedef struct text_tok {
    const uint8_t *p;
    size_t len;
} text_tok;

typedef void (*text_parse_fn)(const text_tok *toks, size_t ntok, cb_text_request *req);

typedef struct text_cmd_entry {
    const char *name;
    uint8_t cmd;
    uint8_t retrieval; /* keys on the rest of the line, however many */
    text_parse_fn fn;
} text_cmd_entry;

static const char *const text_error_lines[] = {
#define TEXT_ERROR_LINE(name, line) line,
    CB_TEXT_ERROR_LIST(TEXT_ERROR_LINE)
#undef TEXT_ERROR_LINE
};

const char *cb_text_error_line(int error)
{
    if (error < 0 || (size_t)error >= sizeof text_error_lines / sizeof text_error_lines[0]) {
        return "";
    }
    return text_error_lines[error];
}

/* ---- small helpers ---------------------------------------------------------------------- */

static int text_tok_is(const text_tok *t, const char *s)
{
    size_t n = strlen(s);
    return t->len == n && memcmp(t->p, s, n) == 0;
}

/* 1..20 decimal digits, value <= max. No sign, no spaces. */
static int text_u64(const text_tok *t, uint64_t max, uint64_t *out)
{
    if (t->len == 0 || t->len > CB_NUMBER_DIGITS_MAX) {
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < t->len; i++) {
        uint8_t c = t->p[i];
        if (c < '0' || c > '9') {
            return 0;
        }
        uint64_t d = (uint64_t)(c - '0');
        if (v > (max - d) / 10) {
            return 0;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

/* An exptime: optional '-', then digits, within int32 (memcached reads it as an int). */
static int text_exptime(const text_tok *t, int64_t *out)
{
    text_tok digits = *t;
    int neg = t->len > 0 && t->p[0] == '-';
    if (neg) {
        digits.p++;
        digits.len--;
    }
    uint64_t v;
    if (!text_u64(&digits, neg ? 2147483648u : 2147483647u, &v)) {
        return 0;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 1;
}

static void text_fail(cb_text_request *req, cb_text_error err)
{
    if (req->error == CB_TEXT_ERROR_NONE) {
        req->error = (uint8_t)err;
    }
}

/* Take toks[i] as the key; report a missing or too-long key. */
static int text_key(const text_tok *toks, size_t ntok, size_t i, cb_text_request *req)
{
    if (i >= ntok) {
        text_fail(req, CB_TEXT_ERROR_FORMAT);
        return 0;
    }
    if (toks[i].len > CB_KEY_BYTES_MAX) {
        text_fail(req, CB_TEXT_ERROR_KEY_TOO_LONG);
        return 0;
    }
    req->key = toks[i].p;
    req->key_len = toks[i].len;
    return 1;
}

/* A classic command takes `base` tokens and an optional final "noreply". Returns 1 if the
 * count fits (setting req->noreply), else reports FORMAT. */
static int text_arity(const text_tok *toks, size_t ntok, size_t base, cb_text_request *req)
{
    if (ntok == base + 1 && text_tok_is(&toks[base], "noreply")) {
        req->noreply = 1;
        return 1;
    }
    if (ntok != base) {
        if (ntok > base && text_tok_is(&toks[ntok - 1], "noreply")) {
            req->noreply = 1; /* memcached honours noreply even on a bad line */
        }
        text_fail(req, CB_TEXT_ERROR_FORMAT);
        return 0;
    }
    return 1;
}

/* ---- classic commands --------------------------------------------------------------------- */

/* The data block length: numbers above value_bytes_max are still parsed (up to 20 digits)
 * so the caller can refuse them and swallow the block. */
static int text_block_len(const text_tok *t, cb_text_request *req, uint64_t *len)
{
    if (!text_u64(t, UINT64_MAX, len)) {
        text_fail(req, CB_TEXT_ERROR_FORMAT);
        return 0;
    }
    req->has_block = 1;
    return 1;
}

/* set/add/replace/append/prepend <key> <flags> <exptime> <bytes> [noreply]
 * cas <key> <flags> <exptime> <bytes> <cas> [noreply] */
static void text_parse_storage(const text_tok *toks, size_t ntok, cb_text_request *req)
{
    size_t base = req->cmd == CB_TEXT_CMD_CAS ? 6 : 5;
    uint64_t v;
    int arity_ok = text_arity(toks, ntok, base, req);
    if (ntok < base) {
        return;
    }
    if (!text_block_len(&toks[4], req, &req->block_bytes)) {
        return;
    }
    if (!arity_ok || !text_key(toks, ntok, 1, req)) {
        return;
    }
    if (!text_u64(&toks[2], UINT32_MAX, &v) || !text_exptime(&toks[3], &req->exptime)) {
        text_fail(req, CB_TEXT_ERROR_FORMAT);
        return;
    }
    req->flags = (uint32_t)v;
    req->has_exptime = 1;
    if (base == 6 && !text_u64(&toks[5], UINT64_MAX, &req->cas)) {
        text_fail(req, CB_TEXT_ERROR_FORMAT);
    }
}

/* delete <key> [0] [noreply] (the legacy hold time must be 0, as in memcached) */
static void text_parse_delete(const text_tok *toks, size_t ntok, cb_text_request *req)
{
    size_t base = 2;
    if (ntok >= 3 && text_tok_is(&toks[2], "0")) {
        base = 3;
    }
    if (text_arity(toks, ntok, base, req)) {
        (void)text_key(toks, ntok, 1, req); /* reports its own error */
    }
}

/* incr|decr <key> <delta> [noreply] */
static void text_parse_arith(const text_tok *toks, size_t ntok, cb_text_request *req)
{
    if (!text_arity(toks, ntok, 3, req) || !text_key(toks, ntok, 1, req)) {
        return;
    }
    if (!text_u64(&toks[2], UINT64_MAX, &req->delta)) {
        text_fail(req, CB_TEXT_ERROR_BAD_DELTA);
    }
}

/* touch <key> <exptime> [noreply] */
static void text_parse_touch(const text_tok *toks, size_t ntok, cb_text_request *req)
{
    if (!text_arity(toks, ntok, 3, req) || !text_key(toks, ntok, 1, req)) {
        return;
    }
    if (!text_exptime(&toks[2], &req->exptime)) {
        text_fail(req, CB_TEXT_ERROR_BAD_EXPTIME);
        return;
    }
    req->has_exptime = 1;
}

/* flush_all [delay] [noreply]; verbosity <level> [noreply] */
static void text_parse_numeric_opt(const text_tok *toks, size_t ntok, cb_text_request *req)
{
    size_t nums = ntok - 1;
    if (ntok >= 2 && text_tok_is(&toks[ntok - 1], "noreply")) {
        req->noreply = 1;
        nums--;
    }
    size_t need_min = req->cmd == CB_TEXT_CMD_VERBOSITY ? 1 : 0;
    if (nums < need_min || nums > 1) {
        text_fail(req, CB_TEXT_ERROR_FORMAT);
        return;
    }
    if (nums == 1) {
        if (!text_u64(&toks[1], UINT32_MAX, &req->number)) {
            text_fail(req, CB_TEXT_ERROR_FORMAT);
            return;
        }
        req->has_number = 1;
    }
}

/* stats [group]: a group memcached knows and cachebed has nothing for is kept in `keys`
 * (the server answers an empty list); any other group is ERROR, as in memcached. */
static void text_parse_stats(const text_tok *toks, size_t ntok, cb_text_request *req)
{
    static const char *const groups[] = {"settings", "items", "slabs", "sizes", "conns"};
    if (ntok == 1) {
        return;
    }
    for (size_t i = 0; ntok == 2 && i < sizeof groups / sizeof groups[0]; i++) {
        if (text_tok_is(&toks[1], groups[i])) {
            req->keys = toks[1].p;
            req->keys_len = toks[1].len;
            return;
        }
    }
    text_fail(req, CB_TEXT_ERROR_UNKNOWN_COMMAND);
}

/* version and quit ignore any arguments, as memcached 1.6 does (libmemcached's memcapable
 * checks that "version foo bar" answers). */
static void text_parse_bare(const text_tok *toks, size_t ntok, cb_text_request *req)
{
    (void)toks;
    (void)ntok;
    if (req->cmd == CB_TEXT_CMD_QUIT) {
        req->close = 1;
    }
}

/* ---- meta commands ------------------------------------------------------------------------ */

typedef struct text_meta_rules {
    const char *allowed;     /* flags cachebed implements for this command */
    const char *unsupported; /* memcached flags cachebed refuses with UNSUPPORTED */
} text_meta_rules;

static int text_meta_letter(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static void text_meta_return(cb_text_request *req, char c)
{
    /* Each letter is seen once (duplicates are refused), so 16 slots hold them all. */
    assert(req->meta_ret_count < CB_TEXT_META_RETURN_MAX);
    req->meta_ret[req->meta_ret_count++] = c;
}

static int text_meta_mode(const text_tok *arg, cb_text_request *req)
{
    static const char ms_modes[] = "EAPRSeaprs";
    static const char ma_modes[] = "IiDd+-";
    const char *modes = req->cmd == CB_TEXT_CMD_MS ? ms_modes : ma_modes;
    if (arg->len != 1 || memchr(modes, arg->p[0], strlen(modes)) == NULL) {
        text_fail(req, CB_TEXT_ERROR_BAD_MODE);
        return 0;
    }
    char m = (char)arg->p[0];
    if (m == '+' || m == 'i') {
        m = 'I';
    } else if (m == '-' || m == 'd') {
        m = 'D';
    } else if (m >= 'a' && m <= 'z') {
        m = (char)(m - 'a' + 'A');
    }
    req->mode = m;
    return 1;
}

/* The argument of a flag that takes one. Returns 0 (error reported) when it is bad. */
static int text_meta_arg(char c, const text_tok *arg, cb_text_request *req)
{
    uint64_t v;
    switch (c) {
    case 'T':
        req->has_exptime = 1;
        return text_exptime(arg, &req->exptime) || (text_fail(req, CB_TEXT_ERROR_FORMAT), 0);
    case 'N':
        req->has_vivify = 1;
        return text_exptime(arg, &req->vivify_exptime) || (text_fail(req, CB_TEXT_ERROR_FORMAT), 0);
    case 'F':
        if (!text_u64(arg, UINT32_MAX, &v)) {
            text_fail(req, CB_TEXT_ERROR_FORMAT);
            return 0;
        }
        req->flags = (uint32_t)v;
        return 1;
    case 'C':
        return text_u64(arg, UINT64_MAX, &req->cas) || (text_fail(req, CB_TEXT_ERROR_FORMAT), 0);
    case 'J':
        req->has_number = 1;
        return text_u64(arg, UINT64_MAX, &req->number) || (text_fail(req, CB_TEXT_ERROR_FORMAT), 0);
    case 'D':
        return text_u64(arg, UINT64_MAX, &req->delta) ||
               (text_fail(req, CB_TEXT_ERROR_BAD_DELTA), 0);
    case 'M':
        return text_meta_mode(arg, req);
    case 'O':
        if (arg->len > CB_TEXT_OPAQUE_BYTES_MAX) {
            text_fail(req, CB_TEXT_ERROR_OPAQUE_TOO_LONG);
            return 0;
        }
        req->opaque = arg->p;
        req->opaque_len = arg->len;
        text_meta_return(req, 'O');
        return 1;
    case 'P':
    case 'L':
        return 1; /* proxy hints: ignored, as memcached does */
    default:
        if (arg->len != 0) {
            text_fail(req, CB_TEXT_ERROR_BAD_FLAG); /* a flag without argument got one */
            return 0;
        }
        if (c == 'q') {
            req->noreply = 1;
        } else if (c == 'c' || c == 'f' || c == 'k' || c == 's' || c == 't') {
            text_meta_return(req, c);
        }
        return 1; /* v and u need no more than their bit */
    }
}

static void text_parse_meta_flags(const text_tok *toks, size_t ntok, size_t first,
                                  const text_meta_rules *rules, cb_text_request *req)
{
    for (size_t i = first; i < ntok; i++) {
        uint8_t c = toks[i].p[0];
        if (!text_meta_letter(c) || strchr(rules->allowed, c) == NULL) {
            int known = text_meta_letter(c) && strchr(rules->unsupported, c) != NULL;
            text_fail(req, known ? CB_TEXT_ERROR_UNSUPPORTED : CB_TEXT_ERROR_BAD_FLAG);
            return;
        }
        uint64_t bit = CB_TEXT_META_BIT(c);
        if ((req->meta & bit) != 0) {
            text_fail(req, CB_TEXT_ERROR_DUP_FLAG);
            return;
        }
        req->meta |= bit;
        text_tok arg = {toks[i].p + 1, toks[i].len - 1};
        if (!text_meta_arg((char)c, &arg, req)) {
            return;
        }
    }
}

static const text_meta_rules text_rules_mg = {"vkctsfqOTuPL", "bCENRhlE"};
static const text_meta_rules text_rules_ms = {"ckOqsTFMCPL", "bEIN"};
static const text_meta_rules text_rules_md = {"qOkCPL", "bEITx"};
static const text_meta_rules text_rules_ma = {"NJDTMvqOkctCPL", "bE"};

/* mg|md|ma <key> <flags>*;  ms <key> <datalen> <flags>* */
static void text_parse_meta(const text_tok *toks, size_t ntok, cb_text_request *req)
{
    const text_meta_rules *rules = &text_rules_mg;
    size_t first = 2;
    if (req->cmd == CB_TEXT_CMD_MS) {
        if (ntok < 3 || !text_block_len(&toks[2], req, &req->block_bytes)) {
            text_fail(req, CB_TEXT_ERROR_FORMAT);
            return;
        }
        rules = &text_rules_ms;
        req->mode = 'S';
        first = 3;
    } else if (req->cmd == CB_TEXT_CMD_MD) {
        rules = &text_rules_md;
    } else if (req->cmd == CB_TEXT_CMD_MA) {
        rules = &text_rules_ma;
        req->mode = 'I';
        req->delta = 1;
    }
    if (!text_key(toks, ntok, 1, req)) {
        return;
    }
    text_parse_meta_flags(toks, ntok, first, rules, req);
}

static void text_parse_mn(const text_tok *toks, size_t ntok, cb_text_request *req)
{
    (void)toks;
    if (ntok != 1) {
        text_fail(req, CB_TEXT_ERROR_FORMAT);
    }
}

/* ---- lines and dispatch ------------------------------------------------------------------- */

static const text_cmd_entry text_cmds[] = {
    {"get", CB_TEXT_CMD_GET, 1, NULL},
    {"gets", CB_TEXT_CMD_GETS, 1, NULL},
    {"gat", CB_TEXT_CMD_GAT, 1, NULL},
    {"gats", CB_TEXT_CMD_GATS, 1, NULL},
    {"set", CB_TEXT_CMD_SET, 0, text_parse_storage},
    {"add", CB_TEXT_CMD_ADD, 0, text_parse_storage},
    {"replace", CB_TEXT_CMD_REPLACE, 0, text_parse_storage},
    {"append", CB_TEXT_CMD_APPEND, 0, text_parse_storage},
    {"prepend", CB_TEXT_CMD_PREPEND, 0, text_parse_storage},
    {"cas", CB_TEXT_CMD_CAS, 0, text_parse_storage},
    {"delete", CB_TEXT_CMD_DELETE, 0, text_parse_delete},
    {"incr", CB_TEXT_CMD_INCR, 0, text_parse_arith},
    {"decr", CB_TEXT_CMD_DECR, 0, text_parse_arith},
    {"touch", CB_TEXT_CMD_TOUCH, 0, text_parse_touch},
    {"flush_all", CB_TEXT_CMD_FLUSH_ALL, 0, text_parse_numeric_opt},
    {"stats", CB_TEXT_CMD_STATS, 0, text_parse_stats},
    {"version", CB_TEXT_CMD_VERSION, 0, text_parse_bare},
    {"verbosity", CB_TEXT_CMD_VERBOSITY, 0, text_parse_numeric_opt},
    {"quit", CB_TEXT_CMD_QUIT, 0, text_parse_bare},
    {"mg", CB_TEXT_CMD_MG, 0, text_parse_meta},
    {"ms", CB_TEXT_CMD_MS, 0, text_parse_meta},
    {"md", CB_TEXT_CMD_MD, 0, text_parse_meta},
    {"ma", CB_TEXT_CMD_MA, 0, text_parse_meta},
    {"mn", CB_TEXT_CMD_MN, 0, text_parse_mn},
};

static const text_cmd_entry *text_find_cmd(const text_tok *t)
{
    for (size_t i = 0; i < sizeof text_cmds / sizeof text_cmds[0]; i++) {
        if (text_tok_is(t, text_cmds[i].name)) {
            return &text_cmds[i];
        }
    }
    return NULL;
}

/* Split line[0..len) on spaces into at most cap tokens; returns the count, cap + 1 when
 * there are more. */
static size_t text_tokenize(const uint8_t *line, size_t len, text_tok *toks, size_t cap)
{
    size_t n = 0, i = 0;
    while (i < len) {
        while (i < len && line[i] == ' ') {
            i++;
        }
        if (i == len) {
            break;
        }
        size_t start = i;
        while (i < len && line[i] != ' ') {
            i++;
        }
        if (n == cap) {
            return cap + 1;
        }
        toks[n].p = line + start;
        toks[n].len = i - start;
        n++;
    }
    return n;
}

/* Retrieval lines may run to CB_TEXT_GET_LINE_BYTES_MAX; everything else to
 * CB_TEXT_LINE_BYTES_MAX. Decided from the first bytes, as memcached does. */
static size_t text_line_max(const uint8_t *buf, size_t len)
{
    static const char *const prefixes[] = {"get ", "gets ", "gat ", "gats "};
    for (size_t i = 0; i < 4; i++) {
        size_t n = strlen(prefixes[i]);
        if (len >= n && memcmp(buf, prefixes[i], n) == 0) {
            return CB_TEXT_GET_LINE_BYTES_MAX;
        }
    }
    return CB_TEXT_LINE_BYTES_MAX;
}

/* Find the line: *line_len includes its '\n', *content_len excludes "\r\n" or "\n". */
static int text_find_line(const uint8_t *buf, size_t buf_len, size_t *line_len, size_t *content_len)
{
    size_t max = text_line_max(buf, buf_len);
    size_t scan = buf_len < max ? buf_len : max;
    const uint8_t *nl = scan > 0 ? memchr(buf, '\n', scan) : NULL;
    if (nl == NULL) {
        return buf_len >= max ? CB_ERR_TOO_LARGE : CB_ERR_NEED_MORE;
    }
    *line_len = (size_t)(nl - buf) + 1;
    *content_len = *line_len - 1;
    if (*content_len > 0 && buf[*content_len - 1] == '\r') {
        (*content_len)--;
    }
    return CB_ERR_OK;
}

/* get|gets <key>+;  gat|gats <exptime> <key>+ — any number of keys, each checked. */
static void text_parse_retrieval(const uint8_t *line, size_t len, const text_tok *cmd,
                                 cb_text_request *req)
{
    size_t off = (size_t)(cmd->p + cmd->len - line);
    text_tok t;
    if (req->cmd == CB_TEXT_CMD_GAT || req->cmd == CB_TEXT_CMD_GATS) {
        if (text_tokenize(line + off, len - off, &t, 1) == 0) {
            text_fail(req, CB_TEXT_ERROR_FORMAT);
            return;
        }
        if (!text_exptime(&t, &req->exptime)) {
            text_fail(req, CB_TEXT_ERROR_BAD_EXPTIME);
            return;
        }
        req->has_exptime = 1;
        off = (size_t)(t.p + t.len - line);
    }
    req->keys = line + off;
    req->keys_len = len - off;
    size_t cursor = 0, count = 0;
    const uint8_t *k;
    size_t klen;
    while (cb_text_next_key(req, &cursor, &k, &klen)) {
        if (klen > CB_KEY_BYTES_MAX) {
            text_fail(req, CB_TEXT_ERROR_KEY_TOO_LONG);
            return;
        }
        if (count++ == 0) {
            req->key = k;
            req->key_len = klen;
        }
    }
    if (count == 0) {
        text_fail(req, CB_TEXT_ERROR_FORMAT);
    }
}

/* The data block, once the line is parsed: wait for it, check it, or plan to swallow it. */
static long text_finish_block(const uint8_t *buf, size_t buf_len, const cb_text_limits *lim,
                              cb_text_request *req)
{
    uint64_t block = req->block_bytes;
    if (req->error == CB_TEXT_ERROR_NONE && block > lim->value_bytes_max) {
        req->error = CB_TEXT_ERROR_TOO_LARGE;
    }
    if (req->error != CB_TEXT_ERROR_NONE) {
        if (block > CB_TEXT_SWALLOW_BYTES_MAX) {
            req->close = 1;
        } else {
            req->swallow_bytes = block + 2;
        }
        return (long)req->consumed;
    }
    size_t line_len = req->consumed;
    size_t total = line_len + (size_t)block + 2;
    if (buf_len - line_len < (size_t)block + 2) {
        req->need_bytes = total;
        return CB_ERR_NEED_MORE;
    }
    req->consumed = total;
    if (buf[total - 2] != '\r' || buf[total - 1] != '\n') {
        req->error = CB_TEXT_ERROR_BAD_CHUNK;
        return (long)total;
    }
    req->value = buf + line_len;
    req->value_len = (uint32_t)block;
    return (long)total;
}

long cb_text_parse(const uint8_t *buf, size_t buf_len, const cb_text_limits *lim,
                   cb_text_request *req)
{
    if (req == NULL || lim == NULL || (buf == NULL && buf_len > 0)) {
        return CB_ERR_INVALID;
    }
    memset(req, 0, sizeof *req);
    size_t line_len = 0, len = 0;
    int rc = text_find_line(buf, buf_len, &line_len, &len);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    req->consumed = line_len;
    text_tok toks[CB_TEXT_TOKENS_MAX + 1];
    size_t ntok = text_tokenize(buf, len, toks, CB_TEXT_TOKENS_MAX);
    const text_cmd_entry *e = ntok > 0 ? text_find_cmd(&toks[0]) : NULL;
    if (e == NULL) {
        req->error = CB_TEXT_ERROR_UNKNOWN_COMMAND;
        return (long)line_len;
    }
    req->cmd = e->cmd;
    if (e->retrieval) {
        text_parse_retrieval(buf, len, &toks[0], req);
    } else if (ntok > CB_TEXT_TOKENS_MAX) {
        text_fail(req, CB_TEXT_ERROR_FORMAT);
    } else {
        e->fn(toks, ntok, req);
    }
    long n = req->has_block ? text_finish_block(buf, buf_len, lim, req) : (long)line_len;
    if (req->error != CB_TEXT_ERROR_NONE) {
        if (req->cmd >= CB_TEXT_CMD_MG) {
            req->noreply = 0; /* meta q never hides an error (protocol.txt, "Meta Get") */
        }
        req->cmd = CB_TEXT_CMD_NONE;
    }
    return n;
}

int cb_text_next_key(const cb_text_request *req, size_t *cursor, const uint8_t **key,
                     size_t *key_len)
{
    size_t i = *cursor;
    while (i < req->keys_len && req->keys[i] == ' ') {
        i++;
    }
    if (i >= req->keys_len) {
        *cursor = i;
        return 0;
    }
    size_t start = i;
    while (i < req->keys_len && req->keys[i] != ' ') {
        i++;
    }
    *key = req->keys + start;
    *key_len = i - start;
    *cursor = i;
    return 1;
}

/* ---- encoders ----------------------------------------------------------------------------- */

typedef struct text_writer {
    uint8_t *out;
    size_t cap;
    size_t len;
    int full;
} text_writer;

static void text_put(text_writer *w, const void *p, size_t n)
{
    if (w->full || w->cap - w->len < n) {
        w->full = 1;
        return;
    }
    if (n > 0) {
        memcpy(w->out + w->len, p, n);
    }
    w->len += n;
}

static void text_put_str(text_writer *w, const char *s)
{
    text_put(w, s, strlen(s));
}

static void text_put_u64(text_writer *w, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[sizeof digits - 1 - n] = (char)('0' + v % 10);
        v /= 10;
        n++;
    } while (v != 0);
    text_put(w, digits + sizeof digits - n, n);
}

static void text_put_i64(text_writer *w, int64_t v)
{
    if (v < 0) {
        text_put_str(w, "-");
        text_put_u64(w, (uint64_t)(-(v + 1)) + 1u);
        return;
    }
    text_put_u64(w, (uint64_t)v);
}

static long text_done(const text_writer *w)
{
    return w->full ? CB_ERR_FULL : (long)w->len;
}

long cb_text_encode_value_header(uint8_t *out, size_t out_cap, const uint8_t *key, size_t key_len,
                                 uint32_t flags, size_t value_len, int with_cas, uint64_t cas)
{
    text_writer w = {out, out_cap, 0, 0};
    text_put_str(&w, "VALUE ");
    text_put(&w, key, key_len);
    text_put_str(&w, " ");
    text_put_u64(&w, flags);
    text_put_str(&w, " ");
    text_put_u64(&w, value_len);
    if (with_cas) {
        text_put_str(&w, " ");
        text_put_u64(&w, cas);
    }
    text_put_str(&w, "\r\n");
    return text_done(&w);
}

long cb_text_encode_line(uint8_t *out, size_t out_cap, const char *line)
{
    text_writer w = {out, out_cap, 0, 0};
    text_put_str(&w, line);
    text_put_str(&w, "\r\n");
    return text_done(&w);
}

long cb_text_encode_number(uint8_t *out, size_t out_cap, uint64_t number)
{
    text_writer w = {out, out_cap, 0, 0};
    text_put_u64(&w, number);
    text_put_str(&w, "\r\n");
    return text_done(&w);
}

static void text_put_meta_flag(text_writer *w, char c, const cb_text_request *req,
                               const cb_text_meta_item *item)
{
    char head[3] = {' ', c, '\0'};
    if (c == 'O' || c == 'k') {
        text_put_str(w, head);
        if (c == 'O') {
            text_put(w, req->opaque, req->opaque_len);
        } else {
            text_put(w, req->key, req->key_len);
        }
        return;
    }
    if (item == NULL) {
        return;
    }
    text_put_str(w, head);
    switch (c) {
    case 'c':
        text_put_u64(w, item->cas);
        break;
    case 'f':
        text_put_u64(w, item->flags);
        break;
    case 's':
        text_put_u64(w, item->size);
        break;
    default:
        assert(c == 't');
        text_put_i64(w, item->ttl_s);
        break;
    }
}

long cb_text_encode_meta(uint8_t *out, size_t out_cap, const char *code, size_t value_len,
                         const cb_text_request *req, const cb_text_meta_item *item)
{
    text_writer w = {out, out_cap, 0, 0};
    text_put_str(&w, code);
    if (strcmp(code, "VA") == 0) {
        text_put_str(&w, " ");
        text_put_u64(&w, value_len);
    }
    for (size_t i = 0; i < req->meta_ret_count; i++) {
        text_put_meta_flag(&w, req->meta_ret[i], req, item);
    }
    text_put_str(&w, "\r\n");
    return text_done(&w);
}
