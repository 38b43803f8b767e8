/*
 * test_cb_text.c: the memcached text protocol parser and encoders (protocols/cb_text.h).
 *
 * A table of requests, one per command and one per error, each checked for its command,
 * error, consumed length and flags; every strict prefix of each must be NEED_MORE; each is
 * parsed from the end of a page followed by a PROT_NONE guard page, so a read past the input
 * faults. Then fields per command, meta flags, limits (line, key, value, numbers), hostile
 * inputs, pipelines split at every byte and at seeded points, and the encoders.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cb_err.h"
#include "cb_rng.h"
#include "cb_test.h"
#include "cb_text.h"

static const cb_text_limits txt_lim = {.value_bytes_max = 1024};

static long txt_parse(const char *s, cb_text_request *r)
{
    return cb_text_parse((const uint8_t *)s, strlen(s), &txt_lim, r);
}

typedef struct txt_case {
    const char *name;
    const char *input;
    int cmd;   /* cb_text_cmd */
    int error; /* cb_text_error */
    int noreply;
    int close;
    uint64_t swallow;
} txt_case;

#define E(x) CB_TEXT_ERROR_##x
#define C(x) CB_TEXT_CMD_##x
static const txt_case txt_cases[] = {
    {"get", "get k\r\n", C(GET), 0, 0, 0, 0},
    {"get_bare_lf", "get k\n", C(GET), 0, 0, 0, 0},
    {"get_many", "get a bb  ccc\r\n", C(GET), 0, 0, 0, 0},
    {"gets", "gets k\r\n", C(GETS), 0, 0, 0, 0},
    {"gat", "gat 10 k1 k2\r\n", C(GAT), 0, 0, 0, 0},
    {"gats", "gats -1 k\r\n", C(GATS), 0, 0, 0, 0},
    {"set", "set k 5 0 3\r\nabc\r\n", C(SET), 0, 0, 0, 0},
    {"set_noreply", "set k 0 0 0 noreply\r\n\r\n", C(SET), 0, 1, 0, 0},
    {"add", "add k 0 0 1\r\nx\r\n", C(ADD), 0, 0, 0, 0},
    {"replace", "replace k 0 0 1\r\nx\r\n", C(REPLACE), 0, 0, 0, 0},
    {"append", "append k 0 0 1\r\nx\r\n", C(APPEND), 0, 0, 0, 0},
    {"prepend", "prepend k 0 0 1\r\nx\r\n", C(PREPEND), 0, 0, 0, 0},
    {"cas", "cas k 0 0 1 77\r\nx\r\n", C(CAS), 0, 0, 0, 0},
    {"delete", "delete k\r\n", C(DELETE), 0, 0, 0, 0},
    {"delete_zero_noreply", "delete k 0 noreply\r\n", C(DELETE), 0, 1, 0, 0},
    {"incr", "incr k 5\r\n", C(INCR), 0, 0, 0, 0},
    {"decr", "decr k 18446744073709551615 noreply\r\n", C(DECR), 0, 1, 0, 0},
    {"touch", "touch k 100\r\n", C(TOUCH), 0, 0, 0, 0},
    {"flush_all", "flush_all\r\n", C(FLUSH_ALL), 0, 0, 0, 0},
    {"flush_all_delay", "flush_all 10 noreply\r\n", C(FLUSH_ALL), 0, 1, 0, 0},
    {"stats", "stats\r\n", C(STATS), 0, 0, 0, 0},
    {"stats_group", "stats settings\r\n", C(STATS), 0, 0, 0, 0},
    {"stats_unknown_group", "stats noreply\r\n", 0, E(UNKNOWN_COMMAND), 0, 0, 0},
    {"version", "version\r\n", C(VERSION), 0, 0, 0, 0},
    {"verbosity", "verbosity 1\r\n", C(VERBOSITY), 0, 0, 0, 0},
    {"quit", "quit\r\n", C(QUIT), 0, 0, 1, 0},
    {"mg", "mg k v k c t s f O123 q\r\n", C(MG), 0, 1, 0, 0},
    {"mg_touch", "mg k T30 v\r\n", C(MG), 0, 0, 0, 0},
    {"ms", "ms k 2 T10 F7 c\r\nhi\r\n", C(MS), 0, 0, 0, 0},
    {"ms_mode", "ms k 1 MA q Oab\r\nx\r\n", C(MS), 0, 1, 0, 0},
    {"md", "md k q O1\r\n", C(MD), 0, 1, 0, 0},
    {"ma", "ma k N10 J5 D2 T5 MD v c t\r\n", C(MA), 0, 0, 0, 0},
    {"mn", "mn\r\n", C(MN), 0, 0, 0, 0},
    /* errors */
    {"empty_line", "\r\n", 0, E(UNKNOWN_COMMAND), 0, 0, 0},
    {"unknown", "frob k\r\n", 0, E(UNKNOWN_COMMAND), 0, 0, 0},
    {"upper_case", "GET k\r\n", 0, E(UNKNOWN_COMMAND), 0, 0, 0},
    {"get_no_key", "get\r\n", 0, E(FORMAT), 0, 0, 0},
    {"get_spaces_only", "get   \r\n", 0, E(FORMAT), 0, 0, 0},
    {"gat_bad_exptime", "gat x k\r\n", 0, E(BAD_EXPTIME), 0, 0, 0},
    {"set_few_tokens", "set k 0 0\r\n", 0, E(FORMAT), 0, 0, 0},
    {"set_bad_flags", "set k x 0 1\r\nx\r\n", 0, E(FORMAT), 0, 0, 3},
    {"set_flags_overflow", "set k 4294967296 0 1\r\nx\r\n", 0, E(FORMAT), 0, 0, 3},
    {"set_bad_exptime", "set k 0 1e 1\r\nx\r\n", 0, E(FORMAT), 0, 0, 3},
    {"set_negative_len", "set k 0 0 -1\r\n", 0, E(FORMAT), 0, 0, 0},
    {"set_junk_token", "set k 0 0 1 junk\r\nx\r\n", 0, E(FORMAT), 0, 0, 3},
    {"set_too_large", "set k 0 0 1025\r\n", 0, E(TOO_LARGE), 0, 0, 1027},
    {"set_too_large_noreply", "set k 0 0 2000 noreply\r\n", 0, E(TOO_LARGE), 1, 0, 2002},
    {"set_2gib", "set k 0 0 2147483648\r\n", 0, E(TOO_LARGE), 0, 1, 0},
    {"set_20_digits", "set k 0 0 99999999999999999999\r\n", 0, E(FORMAT), 0, 0, 0},
    {"set_bad_chunk", "set k 0 0 1\r\nxyz", 0, E(BAD_CHUNK), 0, 0, 0},
    {"cas_bad_unique", "cas k 0 0 1 x\r\nx\r\n", 0, E(FORMAT), 0, 0, 3},
    {"delete_hold", "delete k 5\r\n", 0, E(FORMAT), 0, 0, 0},
    {"incr_bad_delta", "incr k -1\r\n", 0, E(BAD_DELTA), 0, 0, 0},
    {"incr_delta_overflow", "incr k 18446744073709551616\r\n", 0, E(BAD_DELTA), 0, 0, 0},
    {"incr_no_delta", "incr k\r\n", 0, E(FORMAT), 0, 0, 0},
    {"touch_bad_exptime", "touch k 99999999999\r\n", 0, E(BAD_EXPTIME), 0, 0, 0},
    {"flush_bad_delay", "flush_all x\r\n", 0, E(FORMAT), 0, 0, 0},
    {"verbosity_no_level", "verbosity\r\n", 0, E(FORMAT), 0, 0, 0},
    {"version_args", "version x y\r\n", C(VERSION), 0, 0, 0, 0},
    {"quit_args", "quit noreply\r\n", C(QUIT), 0, 0, 1, 0},
    {"too_many_tokens", "delete a b c d e f g h i j k l m n o p q r s t u v w x y z\r\n", 0,
     E(FORMAT), 0, 0, 0},
    {"mg_no_key", "mg\r\n", 0, E(FORMAT), 0, 0, 0},
    {"mg_bad_flag", "mg k q !\r\n", 0, E(BAD_FLAG), 0, 0, 0},
    {"mg_unknown_letter", "mg k Q\r\n", 0, E(BAD_FLAG), 0, 0, 0},
    {"mg_base64", "mg k b v\r\n", 0, E(UNSUPPORTED), 0, 0, 0},
    {"mg_dup_flag", "mg k v v\r\n", 0, E(DUP_FLAG), 0, 0, 0},
    {"mg_flag_with_arg", "mg k vx\r\n", 0, E(BAD_FLAG), 0, 0, 0},
    {"mg_opaque_long", "mg k O123456789012345678901234567890123\r\n", 0, E(OPAQUE_TOO_LONG), 0, 0,
     0},
    {"ms_no_len", "ms k\r\n", 0, E(FORMAT), 0, 0, 0},
    {"ms_bad_mode", "ms k 1 MX\r\nx\r\n", 0, E(BAD_MODE), 0, 0, 3},
    {"ms_invalidate", "ms k 1 I\r\nx\r\n", 0, E(UNSUPPORTED), 0, 0, 3},
    {"ms_too_large", "ms k 4096 T0\r\n", 0, E(TOO_LARGE), 0, 0, 4098},
    {"ms_bad_chunk", "ms k 1\r\nxxx", 0, E(BAD_CHUNK), 0, 0, 0},
    {"md_stale", "md k I\r\n", 0, E(UNSUPPORTED), 0, 0, 0},
    {"ma_bad_delta", "ma k Dx\r\n", 0, E(BAD_DELTA), 0, 0, 0},
    {"ma_bad_mode", "ma k MS\r\n", 0, E(BAD_MODE), 0, 0, 0},
    {"mn_args", "mn x\r\n", 0, E(FORMAT), 0, 0, 0},
};
#undef E
#undef C

/* Parse `s` placed so that its last byte is the last byte before a PROT_NONE page. */
static long txt_parse_guarded(const char *s, cb_text_request *r)
{
    static uint8_t *pages;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = strlen(s);
    if (pages == NULL) {
        pages = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CU_ASSERT_FATAL(pages != MAP_FAILED);
        CU_ASSERT_FATAL(mprotect(pages + 3 * page, page, PROT_NONE) == 0);
    }
    CU_ASSERT_FATAL(len <= 3 * page);
    uint8_t *at = pages + 3 * page - len;
    memcpy(at, s, len);
    return cb_text_parse(at, len, &txt_lim, r);
}

static void test_text_table(void)
{
    for (size_t i = 0; i < sizeof txt_cases / sizeof txt_cases[0]; i++) {
        const txt_case *c = &txt_cases[i];
        cb_text_request r;
        long n = txt_parse_guarded(c->input, &r);
        /* consumed: the whole input, or the line when the rest is to be swallowed */
        size_t len = strlen(c->input);
        int ok = (n == (long)len || (size_t)n + c->swallow == len) && r.cmd == c->cmd &&
                 r.error == c->error && r.noreply == c->noreply && r.close == c->close &&
                 r.swallow_bytes == c->swallow && r.consumed == (size_t)n;
        if (!ok) {
            printf("\n  case %s: rc %ld cmd %d error %d noreply %d close %d swallow %llu\n",
                   c->name, n, r.cmd, r.error, r.noreply, r.close,
                   (unsigned long long)r.swallow_bytes);
        }
        CU_ASSERT(ok);
    }
}

/* Every strict prefix of every case is NEED_MORE (the error cases' lines too: a line is
 * judged only once it is whole). */
static void test_text_prefixes_need_more(void)
{
    for (size_t i = 0; i < sizeof txt_cases / sizeof txt_cases[0]; i++) {
        const txt_case *c = &txt_cases[i];
        size_t len = strlen(c->input);
        cb_text_request r;
        long whole = txt_parse(c->input, &r);
        for (size_t n = 0; n < (size_t)whole && n < len; n++) {
            char buf[256];
            CU_ASSERT_FATAL(n < sizeof buf);
            memcpy(buf, c->input, n);
            buf[n] = '\0';
            long rc = txt_parse_guarded(buf, &r);
            if (rc != CB_ERR_NEED_MORE) {
                printf("\n  case %s: prefix %zu gave %ld\n", c->name, n, rc);
            }
            CU_ASSERT_EQUAL(rc, CB_ERR_NEED_MORE);
        }
    }
}

static void test_text_storage_fields(void)
{
    cb_text_request r;
    CU_ASSERT_EQUAL(txt_parse("set key 4294967295 -5 3 noreply\r\nabc\r\nget", &r), 38);
    CU_ASSERT_EQUAL(r.cmd, CB_TEXT_CMD_SET);
    CU_ASSERT_EQUAL(r.key_len, 3);
    CU_ASSERT(memcmp(r.key, "key", 3) == 0);
    CU_ASSERT_EQUAL(r.flags, 4294967295u);
    CU_ASSERT_EQUAL(r.exptime, -5);
    CU_ASSERT(r.has_exptime);
    CU_ASSERT_EQUAL(r.value_len, 3);
    CU_ASSERT(memcmp(r.value, "abc", 3) == 0);
    CU_ASSERT(r.noreply);
    CU_ASSERT_EQUAL(txt_parse("cas k 1 2 0 18446744073709551615\r\n\r\n", &r), 36);
    CU_ASSERT_EQUAL(r.cas, UINT64_MAX);
    CU_ASSERT_EQUAL(r.value_len, 0);
    /* a value with \r\n inside is data, not a line end */
    CU_ASSERT_EQUAL(txt_parse("set k 0 0 4\r\n\r\n\r\n\r\n", &r), 19);
    CU_ASSERT_EQUAL(r.error, 0);
    CU_ASSERT_EQUAL(r.value_len, 4);
    /* NEED_MORE inside the block tells the whole length */
    CU_ASSERT_EQUAL(txt_parse("set k 0 0 10\r\nabc", &r), CB_ERR_NEED_MORE);
    CU_ASSERT_EQUAL(r.need_bytes, 14 + 12);
    CU_ASSERT_EQUAL(txt_parse("set k 0 0 10\r", &r), CB_ERR_NEED_MORE);
    CU_ASSERT_EQUAL(r.need_bytes, 0);
}

static void test_text_retrieval_keys(void)
{
    cb_text_request r;
    const char *in = "gats 300  alpha b  gamma \r\n";
    CU_ASSERT_EQUAL(txt_parse(in, &r), (long)strlen(in));
    CU_ASSERT_EQUAL(r.cmd, CB_TEXT_CMD_GATS);
    CU_ASSERT_EQUAL(r.exptime, 300);
    const char *want[] = {"alpha", "b", "gamma"};
    size_t cursor = 0, n = 0, klen;
    const uint8_t *k;
    while (cb_text_next_key(&r, &cursor, &k, &klen)) {
        CU_ASSERT_FATAL(n < 3);
        CU_ASSERT_EQUAL(klen, strlen(want[n]));
        CU_ASSERT(memcmp(k, want[n], klen) == 0);
        n++;
    }
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(r.key_len, 5);
}

static void test_text_meta_fields(void)
{
    cb_text_request r;
    CU_ASSERT(txt_parse("mg key s v t Oxy k c f\r\n", &r) > 0);
    CU_ASSERT_EQUAL(r.meta_ret_count, 6);
    CU_ASSERT(memcmp(r.meta_ret, "stOkcf", 6) == 0);
    CU_ASSERT((r.meta & CB_TEXT_META_BIT('v')) != 0);
    CU_ASSERT_EQUAL(r.opaque_len, 2);
    CU_ASSERT(txt_parse("ms k 1 MP C9 F3 T-1\r\nx\r\n", &r) > 0);
    CU_ASSERT_EQUAL(r.mode, 'P');
    CU_ASSERT_EQUAL(r.cas, 9);
    CU_ASSERT_EQUAL(r.flags, 3);
    CU_ASSERT_EQUAL(r.exptime, -1);
    CU_ASSERT(txt_parse("ma k\r\n", &r) > 0);
    CU_ASSERT_EQUAL(r.mode, 'I');
    CU_ASSERT_EQUAL(r.delta, 1);
    CU_ASSERT(txt_parse("ma k M- D7 N0 J3\r\n", &r) > 0);
    CU_ASSERT_EQUAL(r.mode, 'D');
    CU_ASSERT_EQUAL(r.delta, 7);
    CU_ASSERT(r.has_vivify);
    CU_ASSERT_EQUAL(r.number, 3);
    CU_ASSERT(txt_parse("ms k 0\r\n\r\n", &r) > 0);
    CU_ASSERT_EQUAL(r.mode, 'S');
    CU_ASSERT(txt_parse("mg k Pproxy Lpath v\r\n", &r) > 0);
    CU_ASSERT_EQUAL(r.error, 0);
}

static void test_text_key_limits(void)
{
    char line[600];
    char key[300];
    memset(key, 'k', sizeof key);
    cb_text_request r;
    static const char *const around[][2] = {{"get ", "\r\n"},
                                            {"set ", " 0 0 1\r\nx\r\n"},
                                            {"mg ", " v\r\n"},
                                            {"delete ", "\r\n"},
                                            {"get a ", "\r\n"}};
    for (size_t i = 0; i < sizeof around / sizeof around[0]; i++) {
        for (int klen = 250; klen <= 251; klen++) {
            snprintf(line, sizeof line, "%s%.*s%s", around[i][0], klen, key, around[i][1]);
            CU_ASSERT(txt_parse(line, &r) > 0);
            CU_ASSERT_EQUAL(r.error, klen == 250 ? 0 : CB_TEXT_ERROR_KEY_TOO_LONG);
        }
    }
    /* a refused set still swallows its block */
    snprintf(line, sizeof line, "set %.*s 0 0 1\r\nx\r\n", 251, key);
    CU_ASSERT_EQUAL(txt_parse(line, &r), 4 + 251 + 8);
    CU_ASSERT_EQUAL(r.swallow_bytes, 3);
}

static void test_text_line_limits(void)
{
    static uint8_t buf[CB_TEXT_GET_LINE_BYTES_MAX + 16];
    cb_text_request r;
    memset(buf, 'x', sizeof buf);
    CU_ASSERT_EQUAL(cb_text_parse(buf, CB_TEXT_LINE_BYTES_MAX - 1, &txt_lim, &r), CB_ERR_NEED_MORE);
    CU_ASSERT_EQUAL(cb_text_parse(buf, CB_TEXT_LINE_BYTES_MAX, &txt_lim, &r), CB_ERR_TOO_LARGE);
    /* a newline just past the limit is still too long */
    buf[CB_TEXT_LINE_BYTES_MAX] = '\n';
    CU_ASSERT_EQUAL(cb_text_parse(buf, CB_TEXT_LINE_BYTES_MAX + 1, &txt_lim, &r), CB_ERR_TOO_LARGE);
    /* exactly at the limit: a whole (unknown) line */
    buf[CB_TEXT_LINE_BYTES_MAX - 1] = '\n';
    CU_ASSERT_EQUAL(cb_text_parse(buf, CB_TEXT_LINE_BYTES_MAX, &txt_lim, &r),
                    (long)CB_TEXT_LINE_BYTES_MAX);
    CU_ASSERT_EQUAL(r.error, CB_TEXT_ERROR_UNKNOWN_COMMAND);
    /* retrieval lines may be longer: 200 keys of 100 bytes */
    size_t len = 0;
    memcpy(buf, "get", 3);
    len = 3;
    for (int i = 0; i < 200; i++) {
        buf[len++] = ' ';
        memset(buf + len, 'a' + i % 26, 100);
        len += 100;
    }
    CU_ASSERT_EQUAL(cb_text_parse(buf, len, &txt_lim, &r), CB_ERR_NEED_MORE);
    buf[len++] = '\r';
    buf[len++] = '\n';
    CU_ASSERT_EQUAL(cb_text_parse(buf, len, &txt_lim, &r), (long)len);
    CU_ASSERT_EQUAL(r.cmd, CB_TEXT_CMD_GET);
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "get ", 4);
    CU_ASSERT_EQUAL(cb_text_parse(buf, CB_TEXT_GET_LINE_BYTES_MAX, &txt_lim, &r), CB_ERR_TOO_LARGE);
}

/* Hostile bytes: NULs, high bytes, lone \r, huge numbers — never a crash, always a verdict. */
static void test_text_hostile(void)
{
    static const struct {
        const char *in;
        size_t len;
        long rc;
        int error;
    } cases[] = {
        {"\0\0\0\n", 4, 4, CB_TEXT_ERROR_UNKNOWN_COMMAND},
        {"get \0k\r\n", 8, 8, 0},
        {"\xff\xfe\r\n", 4, 4, CB_TEXT_ERROR_UNKNOWN_COMMAND},
        {"\r\r\r\r", 4, CB_ERR_NEED_MORE, 0},
        {"set k 0 0 000000000000000000001\r\n", 33, 33, CB_TEXT_ERROR_FORMAT},
        {"set k 0 0 4294967296\r\n", 22, 22, CB_TEXT_ERROR_TOO_LARGE},
        {"incr k 99999999999999999999\r\n", 29, 29, CB_TEXT_ERROR_BAD_DELTA},
        {"gat -2147483649 k\r\n", 19, 19, CB_TEXT_ERROR_BAD_EXPTIME},
        {"mg k T\r\n", 8, 8, CB_TEXT_ERROR_FORMAT},
        {"ma k M\r\n", 8, 8, CB_TEXT_ERROR_BAD_MODE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cb_text_request r;
        long rc = cb_text_parse((const uint8_t *)cases[i].in, cases[i].len, &txt_lim, &r);
        if (rc != cases[i].rc || (rc > 0 && r.error != cases[i].error)) {
            printf("\n  hostile %zu: rc %ld error %d\n", i, rc, r.error);
        }
        CU_ASSERT_EQUAL(rc, cases[i].rc);
    }
    cb_text_request r;
    CU_ASSERT_EQUAL(cb_text_parse(NULL, 0, &txt_lim, &r), CB_ERR_NEED_MORE);
    CU_ASSERT_EQUAL(cb_text_parse(NULL, 1, &txt_lim, &r), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(cb_text_parse((const uint8_t *)"x", 1, NULL, &r), CB_ERR_INVALID);
}

/* A pipeline parsed from a stream split at every byte, and at seeded points, gives the same
 * commands as parsed whole (the caller re-parses its growing buffer, as the server does). */
static size_t txt_parse_stream(const uint8_t *in, size_t len, size_t (*next_chunk)(void *),
                               void *ctx, uint8_t *cmds, size_t cmds_cap)
{
    static uint8_t buf[4096];
    size_t have = 0, fed = 0, n = 0;
    while (fed < len || have > 0) {
        cb_text_request r;
        long rc = cb_text_parse(buf, have, &txt_lim, &r);
        if (rc > 0) {
            CU_ASSERT_FATAL(n < cmds_cap);
            cmds[n++] = r.cmd != 0 ? r.cmd : (uint8_t)(100 + r.error);
            memmove(buf, buf + rc, have - (size_t)rc);
            have -= (size_t)rc;
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(rc, CB_ERR_NEED_MORE);
        if (fed == len) {
            break;
        }
        size_t chunk = next_chunk(ctx);
        if (chunk > len - fed) {
            chunk = len - fed;
        }
        memcpy(buf + have, in + fed, chunk);
        have += chunk;
        fed += chunk;
    }
    return n;
}

static size_t txt_chunk_one(void *ctx)
{
    (void)ctx;
    return 1;
}

static size_t txt_chunk_rng(void *ctx)
{
    return 1 + (size_t)(cb_rng_next((cb_rng *)ctx) % 40);
}

static void test_text_pipeline_splits(void)
{
    static const char pipeline[] =
        "set a 1 0 5\r\nhello\r\nget a b\r\nbogus\r\nms k 3 T0\r\n\r\n\r\r\nmn\r\n"
        "incr n 1 noreply\r\nmg k v\r\nset x 0 0 2\r\nxyz\r\ndelete a\r\n";
    uint8_t whole[32], split[32];
    size_t len = strlen(pipeline);
    size_t n_whole =
        txt_parse_stream((const uint8_t *)pipeline, len, txt_chunk_one, NULL, whole, 32);
    /* set x's bad chunk takes 2 + 2 bytes; the "\n" left over is an empty line: ERROR */
    CU_ASSERT_EQUAL(n_whole, 10);
    uint8_t want[] = {CB_TEXT_CMD_SET,
                      CB_TEXT_CMD_GET,
                      100 + CB_TEXT_ERROR_UNKNOWN_COMMAND,
                      CB_TEXT_CMD_MS,
                      CB_TEXT_CMD_MN,
                      CB_TEXT_CMD_INCR,
                      CB_TEXT_CMD_MG,
                      100 + CB_TEXT_ERROR_BAD_CHUNK,
                      100 + CB_TEXT_ERROR_UNKNOWN_COMMAND,
                      CB_TEXT_CMD_DELETE};
    CU_ASSERT(memcmp(whole, want, sizeof want) == 0);
    cb_rng rng;
    cb_rng_init(&rng, cb_test_seed());
    for (int round = 0; round < 200; round++) {
        size_t n = txt_parse_stream((const uint8_t *)pipeline, len, txt_chunk_rng, &rng, split, 32);
        CU_ASSERT_EQUAL(n, n_whole);
        CU_ASSERT(memcmp(split, whole, n_whole) == 0);
    }
}

static void test_text_encoders(void)
{
    uint8_t out[512];
    long n = cb_text_encode_value_header(out, sizeof out, (const uint8_t *)"k", 1, 42, 3, 1, 99);
    CU_ASSERT_EQUAL(n, (long)strlen("VALUE k 42 3 99\r\n"));
    CU_ASSERT(memcmp(out, "VALUE k 42 3 99\r\n", (size_t)n) == 0);
    n = cb_text_encode_value_header(out, sizeof out, (const uint8_t *)"k", 1, 0, 0, 0, 0);
    CU_ASSERT(memcmp(out, "VALUE k 0 0\r\n", (size_t)n) == 0);
    CU_ASSERT_EQUAL(cb_text_encode_value_header(out, 5, (const uint8_t *)"k", 1, 0, 0, 0, 0),
                    CB_ERR_FULL);
    n = cb_text_encode_number(out, sizeof out, UINT64_MAX);
    CU_ASSERT(n == 22 && memcmp(out, "18446744073709551615\r\n", 22) == 0);
    n = cb_text_encode_line(out, sizeof out, "STORED");
    CU_ASSERT(n == 8 && memcmp(out, "STORED\r\n", 8) == 0);
    CU_ASSERT_EQUAL(cb_text_encode_line(out, 7, "STORED"), CB_ERR_FULL);
    cb_text_request r;
    CU_ASSERT(txt_parse("mg kk v t c f s Oop k q\r\n", &r) > 0);
    cb_text_meta_item item = {.cas = 7, .flags = 3, .ttl_s = -1, .size = 5};
    n = cb_text_encode_meta(out, sizeof out, "VA", 5, &r, &item);
    const char *want = "VA 5 t-1 c7 f3 s5 Oop kkk\r\n";
    CU_ASSERT_EQUAL(n, (long)strlen(want));
    CU_ASSERT(memcmp(out, want, strlen(want)) == 0);
    n = cb_text_encode_meta(out, sizeof out, "NF", 0, &r, NULL);
    CU_ASSERT(n == 12 && memcmp(out, "NF Oop kkk\r\n", 12) == 0);
    CU_ASSERT_STRING_EQUAL(cb_text_error_line(CB_TEXT_ERROR_TOO_LARGE),
                           "SERVER_ERROR object too large for cache");
    CU_ASSERT_STRING_EQUAL(cb_text_error_line(CB_TEXT_ERROR_UNKNOWN_COMMAND), "ERROR");
    CU_ASSERT_STRING_EQUAL(cb_text_error_line(-1), "");
    CU_ASSERT_STRING_EQUAL(cb_text_error_line(1000), "");
}

static const cb_test_case tests[] = {
    {"table", test_text_table},
    {"prefixes_need_more", test_text_prefixes_need_more},
    {"storage_fields", test_text_storage_fields},
    {"retrieval_keys", test_text_retrieval_keys},
    {"meta_fields", test_text_meta_fields},
    {"key_limits", test_text_key_limits},
    {"line_limits", test_text_line_limits},
    {"hostile", test_text_hostile},
    {"pipeline_splits", test_text_pipeline_splits},
    {"encoders", test_text_encoders},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_text", tests)
