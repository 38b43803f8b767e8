/*
 * test_cb_trace.c: the trace readers (scenarios/cb_trace.h): every format parsed exactly,
 * plain and zstd, from files and memory; speed scaling; malformed input to exact messages.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "cb_err.h"
#include "cb_frame.h"
#include "cb_trace.h"
#include "cb_test.h"

#define SPEED_1  1000000u
#define RECS_MAX 16

/* How a test feeds the bytes: as they are or zstd-compressed, from memory or a file. */
typedef enum { FEED_MEMORY, FEED_FILE, FEED_ZSTD_MEMORY, FEED_ZSTD_FILE } feed_kind;

typedef struct feed {
    uint8_t *bytes;
    size_t len;
    char path[64];
} feed;

/* The bytes zstd-compressed at level 3 (malloc'd). */
static uint8_t *zstd_of(const void *buf, size_t len, size_t *out_len)
{
    size_t cap = ZSTD_compressBound(len);
    uint8_t *out = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    size_t n = ZSTD_compress(out, cap, buf, len, 3);
    CU_ASSERT_FATAL(!ZSTD_isError(n));
    *out_len = n;
    return out;
}

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* Open buf[0..len) as `kind`; the feed keeps what must outlive the trace. */
static int feed_open(feed *fd, feed_kind kind, const void *buf, size_t len, cb_trace_format fmt,
                     uint64_t speed, cb_trace **t)
{
    char err[256];
    memset(fd, 0, sizeof *fd);
    if (kind == FEED_ZSTD_MEMORY || kind == FEED_ZSTD_FILE) {
        fd->bytes = zstd_of(buf, len, &fd->len);
    } else {
        fd->bytes = malloc(len > 0 ? len : 1);
        memcpy(fd->bytes, buf, len);
        fd->len = len;
    }
    if (kind == FEED_MEMORY || kind == FEED_ZSTD_MEMORY) {
        return cb_trace_open_memory("t", fd->bytes, fd->len, fmt, speed, t, err, sizeof err);
    }
    snprintf(fd->path, sizeof fd->path, "/tmp/cb_trace_test_%d", (int)getpid());
    write_file(fd->path, fd->bytes, fd->len);
    return cb_trace_open(fd->path, fmt, speed, t, err, sizeof err);
}

static void feed_close(feed *fd, cb_trace *t)
{
    cb_trace_close(t);
    if (fd->path[0] != '\0') {
        unlink(fd->path);
    }
    free(fd->bytes);
}

/* Read every record (at most RECS_MAX); returns the final status (0 or an error). */
static int read_all(cb_trace *t, cb_trace_record *recs, size_t *count)
{
    int rc;
    *count = 0;
    cb_trace_record rec;
    while ((rc = cb_trace_next(t, &rec)) == 1) {
        if (*count < RECS_MAX) {
            recs[*count] = rec;
        }
        (*count)++;
    }
    return rc;
}

static const char twitter_text[] = "0,keyA,4,100,1,get,0\n"
                                   "0.5,k:b,3,200,2,set,3600\r\n"
                                   "\n"
                                   "2,keyA,4,0,1,delete,0\n"
                                   "3,c,1,0,7,incr,0\n"
                                   "3,c,1,0,7,decr,0\n"
                                   "4,keyA,9,50,3,cas,0\n"
                                   "4.000000001,keyA,4,50,3,gets,0\n"
                                   "5,x,1,10,3,add,0\n"
                                   "5,x,1,10,3,replace,0\n"
                                   "5,x,1,10,3,append,0\n"
                                   "6,x,1,10,18446744073709551615,PREPEND,4294967295";

typedef struct expect_rec {
    uint64_t ns;
    uint8_t op;
    const char *key;
    uint32_t key_bytes, value_bytes;
    uint64_t client;
    uint32_t ttl_s;
} expect_rec;

static const expect_rec twitter_expect[] = {
    {0, CB_OP_GET, "keyA", 4, 100, 1, 0},
    {500000000, CB_OP_SET, "k:b", 3, 200, 2, 3600},
    {2000000000, CB_OP_DELETE, "keyA", 4, 0, 1, 0},
    {3000000000, CB_OP_INCR, "c", 1, 0, 7, 0},
    {3000000000, CB_OP_DECR, "c", 1, 0, 7, 0},
    {4000000000, CB_OP_SET, "keyA", 9, 50, 3, 0},
    {4000000001, CB_OP_GET, "keyA", 4, 50, 3, 0},
    {5000000000, CB_OP_ADD, "x", 1, 10, 3, 0},
    {5000000000, CB_OP_REPLACE, "x", 1, 10, 3, 0},
    {5000000000, CB_OP_APPEND, "x", 1, 10, 3, 0},
    {6000000000, CB_OP_PREPEND, "x", 1, 10, UINT64_MAX, UINT32_MAX},
};

static void check_twitter(feed_kind kind)
{
    feed fd;
    cb_trace *t = NULL;
    cb_trace_record recs[RECS_MAX];
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(
        feed_open(&fd, kind, twitter_text, strlen(twitter_text), CB_TRACE_TWITTER, SPEED_1, &t),
        CB_ERR_OK);
    CU_ASSERT_EQUAL(read_all(t, recs, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, sizeof twitter_expect / sizeof twitter_expect[0]);
    for (size_t i = 0; i < n; i++) {
        const expect_rec *e = &twitter_expect[i];
        CU_ASSERT_EQUAL(recs[i].index, i);
        CU_ASSERT_EQUAL(recs[i].timestamp_ns, e->ns);
        CU_ASSERT_EQUAL(recs[i].op, e->op);
        CU_ASSERT_EQUAL(recs[i].fill_on_miss, 0);
        CU_ASSERT_EQUAL(recs[i].key_is_id, 0);
        CU_ASSERT_EQUAL(recs[i].key_len, strlen(e->key));
        CU_ASSERT_EQUAL(memcmp(recs[i].key, e->key, recs[i].key_len), 0);
        CU_ASSERT_EQUAL(recs[i].key_bytes, e->key_bytes);
        CU_ASSERT_EQUAL(recs[i].value_bytes, e->value_bytes);
        CU_ASSERT_EQUAL(recs[i].client_id, e->client);
        CU_ASSERT_EQUAL(recs[i].ttl_s, e->ttl_s);
    }
    CU_ASSERT_EQUAL(cb_trace_next(t, &recs[0]), 0); /* the end is sticky */
    feed_close(&fd, t);
}

static void test_twitter_memory(void)
{
    check_twitter(FEED_MEMORY);
}

static void test_twitter_file(void)
{
    check_twitter(FEED_FILE);
}

static void test_twitter_zstd_memory(void)
{
    check_twitter(FEED_ZSTD_MEMORY);
}

static void test_twitter_zstd_file(void)
{
    check_twitter(FEED_ZSTD_FILE);
}

/* Timestamps of a 3-record trace at 0, 1 and 10 s, replayed at `speed_micro`. */
static void check_speed(uint64_t speed_micro, uint64_t t1, uint64_t t2)
{
    static const char text[] = "100,a,1,1,0,get,0\n101,a,1,1,0,get,0\n110,a,1,1,0,get,0\n";
    feed fd;
    cb_trace *t = NULL;
    cb_trace_record recs[RECS_MAX];
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(
        feed_open(&fd, FEED_MEMORY, text, strlen(text), CB_TRACE_TWITTER, speed_micro, &t),
        CB_ERR_OK);
    CU_ASSERT_EQUAL(read_all(t, recs, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_EQUAL(recs[0].timestamp_ns, 0);
    CU_ASSERT_EQUAL(recs[1].timestamp_ns, t1);
    CU_ASSERT_EQUAL(recs[2].timestamp_ns, t2);
    feed_close(&fd, t);
}

static void test_speed_scaling(void)
{
    check_speed(SPEED_1, 1000000000, 10000000000);
    check_speed(2 * SPEED_1, 500000000, 5000000000);
    check_speed(SPEED_1 / 2, 2000000000, 20000000000);
    check_speed(3 * SPEED_1, 333333333, 3333333333);
    check_speed(CB_TRACE_SPEED_MICRO_MIN, 1000000000000, 10000000000000);
    check_speed(CB_TRACE_SPEED_MICRO_MAX, 1000000, 10000000);
}

static void test_open_errors(void)
{
    char err[256];
    cb_trace *t = (cb_trace *)1;
    CU_ASSERT_EQUAL(
        cb_trace_open("/nonexistent/x.csv", CB_TRACE_TWITTER, SPEED_1, &t, err, sizeof err),
        CB_ERR_INVALID);
    CU_ASSERT_PTR_NULL(t);
    CU_ASSERT_STRING_EQUAL(err, "/nonexistent/x.csv: cannot open: No such file or directory");
    CU_ASSERT_EQUAL(cb_trace_open_memory("m", (const uint8_t *)"", 0, CB_TRACE_TWITTER,
                                         CB_TRACE_SPEED_MICRO_MIN - 1, &t, err, sizeof err),
                    CB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err, "m: speed 999 millionths is outside 1000 .. 1000000000");
    CU_ASSERT_EQUAL(cb_trace_open_memory("m", (const uint8_t *)"", 0, (cb_trace_format)7, SPEED_1,
                                         &t, err, sizeof err),
                    CB_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err, "m: unknown trace format 7");
    /* An empty input is an empty trace. */
    CU_ASSERT_EQUAL_FATAL(
        cb_trace_open_memory("m", NULL, 0, CB_TRACE_ORACLE_GENERAL, SPEED_1, &t, err, sizeof err),
        CB_ERR_OK);
    cb_trace_record rec;
    CU_ASSERT_EQUAL(cb_trace_next(t, &rec), 0);
    CU_ASSERT_STRING_EQUAL(cb_trace_error(t), "");
    cb_trace_close(t);
    cb_trace_close(NULL);
}

static void check_libcachesim(const char *text, const expect_rec *want, size_t want_n,
                              int fill_on_miss)
{
    for (feed_kind kind = FEED_MEMORY; kind <= FEED_ZSTD_FILE; kind++) {
        feed fd;
        cb_trace *t = NULL;
        cb_trace_record recs[RECS_MAX];
        size_t n = 0;
        CU_ASSERT_EQUAL_FATAL(
            feed_open(&fd, kind, text, strlen(text), CB_TRACE_LIBCACHESIM_CSV, SPEED_1, &t),
            CB_ERR_OK);
        int rc = read_all(t, recs, &n);
        CU_ASSERT_EQUAL(rc, 0);
        if (rc != 0) {
            printf("\n  %s\n", cb_trace_error(t));
        }
        CU_ASSERT_EQUAL_FATAL(n, want_n);
        for (size_t i = 0; i < n; i++) {
            int is_id = want[i].key[0] == '#';
            CU_ASSERT_EQUAL(recs[i].timestamp_ns, want[i].ns);
            CU_ASSERT_EQUAL(recs[i].op, want[i].op);
            CU_ASSERT_EQUAL(recs[i].fill_on_miss, fill_on_miss);
            CU_ASSERT_EQUAL(recs[i].key_is_id, is_id);
            if (is_id) {
                CU_ASSERT_EQUAL(recs[i].key_id, strtoull(want[i].key + 1, NULL, 10));
            } else {
                CU_ASSERT_EQUAL(recs[i].key_len, strlen(want[i].key));
                CU_ASSERT_EQUAL(memcmp(recs[i].key, want[i].key, recs[i].key_len), 0);
            }
            CU_ASSERT_EQUAL(recs[i].key_bytes, want[i].key_bytes);
            CU_ASSERT_EQUAL(recs[i].value_bytes, want[i].value_bytes);
            CU_ASSERT_EQUAL(recs[i].client_id, i); /* no client column: round-robin */
            CU_ASSERT_EQUAL(recs[i].ttl_s, want[i].ttl_s);
        }
        feed_close(&fd, t);
    }
}

static void test_libcachesim_trace_print_header(void)
{
    /* libCacheSim's tracePrint output, blanks and all. */
    static const char text[] = "# time, object, size, next_access_vtime\n"
                               "10, 42, 100, 2\n"
                               "11, abc, 200, -1\n"
                               "12, 18446744073709551615, 4294967295, -1\n";
    static const expect_rec want[] = {
        {0, CB_OP_GET, "#42", CB_TRACE_ID_KEY_BYTES, 100, 0, 0},
        {1000000000, CB_OP_GET, "abc", 3, 200, 0, 0},
        {2000000000, CB_OP_GET, "#18446744073709551615", CB_TRACE_ID_KEY_BYTES, UINT32_MAX, 0, 0},
    };
    check_libcachesim(text, want, 3, 1);
}

static void test_libcachesim_named_columns(void)
{
    static const char text[] = "extra,obj_size,TTL,op,obj_id,clock_time\n"
                               "x,10,60,set,5,1\n"
                               "y,10,0,get,5,2\n"
                               "z,0,0,delete,99999999999999999999999,2.5\n";
    static const expect_rec want[] = {
        {0, CB_OP_SET, "#5", CB_TRACE_ID_KEY_BYTES, 10, 0, 60},
        {1000000000, CB_OP_GET, "#5", CB_TRACE_ID_KEY_BYTES, 10, 0, 0},
        {1500000000, CB_OP_DELETE, "99999999999999999999999", 23, 0, 0, 0},
    };
    check_libcachesim(text, want, 3, 0);
}

static void test_libcachesim_no_header(void)
{
    static const char text[] = "1,2,3\n1,3,4,7\n";
    static const expect_rec want[] = {
        {0, CB_OP_GET, "#2", CB_TRACE_ID_KEY_BYTES, 3, 0, 0},
        {0, CB_OP_GET, "#3", CB_TRACE_ID_KEY_BYTES, 4, 0, 0},
    };
    check_libcachesim(text, want, 2, 1);
}

/* One oracleGeneral record, little-endian. */
static void oracle_put(uint8_t *p, uint32_t time_s, uint64_t id, uint32_t size, int64_t next)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(time_s >> (8 * i));
        p[12 + i] = (uint8_t)(size >> (8 * i));
    }
    for (int i = 0; i < 8; i++) {
        p[4 + i] = (uint8_t)(id >> (8 * i));
        p[16 + i] = (uint8_t)((uint64_t)next >> (8 * i));
    }
}

static void test_oracle_general(void)
{
    uint8_t buf[3 * 24];
    oracle_put(buf, 100, 7, 4096, 2);
    oracle_put(buf + 24, 101, UINT64_MAX, 0, -1);
    oracle_put(buf + 48, 4000000000u, 7, UINT32_MAX, -1);
    for (feed_kind kind = FEED_MEMORY; kind <= FEED_ZSTD_FILE; kind++) {
        feed fd;
        cb_trace *t = NULL;
        cb_trace_record recs[RECS_MAX];
        size_t n = 0;
        CU_ASSERT_EQUAL_FATAL(
            feed_open(&fd, kind, buf, sizeof buf, CB_TRACE_ORACLE_GENERAL, 2 * SPEED_1, &t),
            CB_ERR_OK);
        CU_ASSERT_EQUAL(read_all(t, recs, &n), 0);
        CU_ASSERT_EQUAL_FATAL(n, 3);
        CU_ASSERT_EQUAL(recs[0].timestamp_ns, 0);
        CU_ASSERT_EQUAL(recs[1].timestamp_ns, 500000000);
        CU_ASSERT_EQUAL(recs[2].timestamp_ns, (4000000000ull - 100) * 500000000ull);
        CU_ASSERT_EQUAL(recs[0].key_id, 7);
        CU_ASSERT_EQUAL(recs[1].key_id, UINT64_MAX);
        CU_ASSERT_EQUAL(recs[0].value_bytes, 4096);
        CU_ASSERT_EQUAL(recs[1].value_bytes, 0);
        CU_ASSERT_EQUAL(recs[2].value_bytes, UINT32_MAX);
        for (size_t i = 0; i < n; i++) {
            CU_ASSERT_EQUAL(recs[i].op, CB_OP_GET);
            CU_ASSERT_EQUAL(recs[i].fill_on_miss, 1);
            CU_ASSERT_EQUAL(recs[i].key_is_id, 1);
            CU_ASSERT_EQUAL(recs[i].key_bytes, CB_TRACE_ID_KEY_BYTES);
            CU_ASSERT_EQUAL(recs[i].client_id, i);
        }
        feed_close(&fd, t);
    }
}

/* Every prefix of an oracleGeneral trace that cuts a record says where. */
static void test_oracle_truncated(void)
{
    uint8_t buf[2 * 24];
    oracle_put(buf, 1, 1, 1, -1);
    oracle_put(buf + 24, 2, 2, 2, -1);
    for (size_t len = 1; len < sizeof buf; len++) {
        if (len == 24) {
            continue;
        }
        feed fd;
        cb_trace *t = NULL;
        cb_trace_record recs[RECS_MAX];
        size_t n = 0;
        char want[128];
        CU_ASSERT_EQUAL_FATAL(
            feed_open(&fd, FEED_MEMORY, buf, len, CB_TRACE_ORACLE_GENERAL, SPEED_1, &t), CB_ERR_OK);
        CU_ASSERT_EQUAL(read_all(t, recs, &n), CB_ERR_NEED_MORE);
        CU_ASSERT_EQUAL(n, len / 24);
        snprintf(want, sizeof want,
                 "t: record %zu at offset %zu: truncated: %zu of 24 bytes at the end", len / 24,
                 len / 24 * 24, len % 24);
        CU_ASSERT_STRING_EQUAL(cb_trace_error(t), want);
        CU_ASSERT_EQUAL(cb_trace_next(t, &recs[0]), CB_ERR_NEED_MORE); /* sticky */
        feed_close(&fd, t);
    }
}

typedef struct bad_case {
    const char *name;
    cb_trace_format format;
    const char *input;
    int rc;
    size_t good; /* records read before the error */
    const char *message;
} bad_case;

#define TW        CB_TRACE_TWITTER
#define LC        CB_TRACE_LIBCACHESIM_CSV
#define TW_FIELDS "expected 7 (timestamp,key,key size,value size,client id,operation,ttl)"

static const bad_case bad_cases[] = {
    {"twitter_few_fields", TW, "0,k,1,1,1,get\n", CB_ERR_MALFORMED, 0,
     "t:1: 6 field(s), " TW_FIELDS},
    {"twitter_many_fields", TW, "0,k,1,1,1,get,0,9\n", CB_ERR_MALFORMED, 0,
     "t:1: more than 7 field(s), " TW_FIELDS},
    {"twitter_bad_time", TW, "x,k,1,1,1,get,0\n", CB_ERR_MALFORMED, 0,
     "t:1: timestamp: 'x' is not seconds like 12 or 12.5"},
    {"twitter_negative_time", TW, "-1,k,1,1,1,get,0\n", CB_ERR_MALFORMED, 0,
     "t:1: timestamp: '-1' is not seconds like 12 or 12.5"},
    {"twitter_long_fraction", TW, "1.0123456789,k,1,1,1,get,0\n", CB_ERR_MALFORMED, 0,
     "t:1: timestamp: '1.0123456789' is not seconds like 12 or 12.5"},
    {"twitter_huge_time", TW, "18446744074,k,1,1,1,get,0\n", CB_ERR_TOO_LARGE, 0,
     "t:1: timestamp: '18446744074' is not seconds like 12 or 12.5"},
    {"twitter_unknown_op", TW, "0,k,1,1,1,get,0\n1,k,1,1,1,frob,0\n", CB_ERR_MALFORMED, 1,
     "t:2: unknown operation 'frob'"},
    {"twitter_value_over", TW, "0,k,1,4294967296,1,get,0\n", CB_ERR_TOO_LARGE, 0,
     "t:1: value size: '4294967296' is over 4294967295"},
    {"twitter_21_digits", TW, "0,k,1,1,1,get,123456789012345678901\n", CB_ERR_TOO_LARGE, 0,
     "t:1: ttl: '123456789012345678901' is over 4294967295"},
    {"twitter_client_word", TW, "0,k,1,1,c1,get,0\n", CB_ERR_MALFORMED, 0,
     "t:1: client id: 'c1' is not a whole number"},
    {"twitter_empty_size", TW, "0,k,,1,1,get,0\n", CB_ERR_MALFORMED, 0,
     "t:1: key size: '' is not a whole number"},
    {"twitter_empty_key", TW, "0,,1,1,1,get,0\n", CB_ERR_MALFORMED, 0, "t:1: empty key"},
    {"twitter_key_blank", TW, "0,a b,1,1,1,get,0\n", CB_ERR_MALFORMED, 0,
     "t:1: key holds a blank or control byte (0x20)"},
    {"twitter_backwards", TW, "5,k,1,1,1,get,0\n4.5,k,1,1,1,get,0\n", CB_ERR_MALFORMED, 1,
     "t:2: timestamp goes backwards (4.500000000 s after 5.000000000 s)"},
    {"twitter_nul_in_op", TW, "0,k,1,1,1,g\x01t,0\n", CB_ERR_MALFORMED, 0,
     "t:1: unknown operation 'g?t'"},
    {"lcs_header_no_size", LC, "time,obj_id\n1,2\n", CB_ERR_MALFORMED, 0,
     "t:1: header: needs time, object (or obj_id) and size columns"},
    {"lcs_header_repeat", LC, "time,key,obj_id,size\n", CB_ERR_MALFORMED, 0,
     "t:1: header: column 'obj_id' repeats column 2"},
    {"lcs_two_fields", LC, "1,2\n", CB_ERR_MALFORMED, 0,
     "t:1: 2 field(s), expected 3 or 4 (time,object,size[,next_access_vtime])"},
    {"lcs_header_count", LC, "time,object,size\n1,2,3\n1,2,3,4\n", CB_ERR_MALFORMED, 1,
     "t:3: 4 field(s), expected 3 as in the header"},
    {"lcs_too_many", LC, "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n", CB_ERR_MALFORMED, 0,
     "t:1: more than 16 field(s), expected 3 or 4 (time,object,size[,next_access_vtime])"},
    {"lcs_bad_size", LC, "1,2,big\n", CB_ERR_MALFORMED, 0,
     "t:1: size: 'big' is not a whole number"},
    {"lcs_bad_op", LC, "time,object,size,op\n1,2,3,frob\n", CB_ERR_MALFORMED, 0,
     "t:2: unknown operation 'frob'"},
};

static void check_bad(const bad_case *c, feed_kind kind)
{
    feed fd;
    cb_trace *t = NULL;
    cb_trace_record recs[RECS_MAX];
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(feed_open(&fd, kind, c->input, strlen(c->input), c->format, SPEED_1, &t),
                          CB_ERR_OK);
    int rc = read_all(t, recs, &n);
    char want[512]; /* messages name the file: "t" for memory, the path for a file */
    snprintf(want, sizeof want, "%s%s",
             c->message[0] == '\0' ? ""
             : fd.path[0]          ? fd.path
                                   : "t",
             c->message[0] == '\0' ? "" : c->message + 1);
    if (rc != c->rc || n != c->good || strcmp(cb_trace_error(t), want) != 0) {
        printf("\n  case %s (feed %d): rc %d, %zu record(s), '%s'\n", c->name, (int)kind, rc, n,
               cb_trace_error(t));
        CU_FAIL("bad case");
    }
    CU_ASSERT_EQUAL(cb_trace_next(t, &recs[0]), c->rc); /* sticky */
    feed_close(&fd, t);
}

static void test_malformed_table(void)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        check_bad(&bad_cases[i], FEED_MEMORY);
        check_bad(&bad_cases[i], FEED_ZSTD_FILE);
    }
}

/* A line of `len` bytes: "0,KEY,1,1,1,get,0" with the key padding it out. */
static char *line_of(size_t key_len, size_t *len)
{
    char *s = malloc(key_len + 32);
    memcpy(s, "0,", 2);
    memset(s + 2, 'k', key_len);
    strcpy(s + 2 + key_len, ",1,1,1,get,0\n");
    *len = strlen(s);
    return s;
}

static void test_oversized_lines_and_keys(void)
{
    size_t len;
    char *s = line_of(CB_KEY_BYTES_MAX, &len);
    bad_case c = {"key_250", TW, s, 0, 1, ""};
    check_bad(&c, FEED_MEMORY);
    free(s);
    s = line_of(CB_KEY_BYTES_MAX + 1, &len);
    c = (bad_case){"key_251", TW, s, CB_ERR_TOO_LARGE, 0, "t:1: key of 251 bytes is over 250"};
    check_bad(&c, FEED_MEMORY);
    check_bad(&c, FEED_ZSTD_MEMORY);
    free(s);
    /* A line of exactly 4096 bytes is read (its key is then too long); 4097 is refused. */
    s = line_of(CB_TRACE_LINE_BYTES_MAX - 14, &len);
    CU_ASSERT_EQUAL(len, CB_TRACE_LINE_BYTES_MAX + 1);
    c = (bad_case){"line_4096", TW, s, CB_ERR_TOO_LARGE, 0, "t:1: key of 4082 bytes is over 250"};
    check_bad(&c, FEED_MEMORY);
    free(s);
    s = line_of(CB_TRACE_LINE_BYTES_MAX - 13, &len);
    c = (bad_case){"line_4097", TW, s, CB_ERR_TOO_LARGE, 0, "t:1: line longer than 4096 bytes"};
    check_bad(&c, FEED_MEMORY);
    check_bad(&c, FEED_ZSTD_FILE);
    free(s);
    /* A huge line without any newline is refused without reading it all. */
    s = malloc(1 << 20);
    memset(s, 'a', (1 << 20) - 1);
    s[(1 << 20) - 1] = '\0';
    c = (bad_case){"no_newline", TW, s, CB_ERR_TOO_LARGE, 0, "t:1: line longer than 4096 bytes"};
    check_bad(&c, FEED_ZSTD_MEMORY);
    free(s);
}

static void test_zstd_damaged(void)
{
    size_t zlen;
    uint8_t *z = zstd_of(twitter_text, strlen(twitter_text), &zlen);
    char err[128];
    cb_trace *t = NULL;
    cb_trace_record recs[RECS_MAX];
    size_t n;
    /* Cut short: the records that came out, then an error naming the line being read. */
    CU_ASSERT_EQUAL_FATAL(
        cb_trace_open_memory("t", z, zlen - 3, CB_TRACE_TWITTER, SPEED_1, &t, err, sizeof err),
        CB_ERR_OK);
    int rc = read_all(t, recs, &n);
    CU_ASSERT(rc == CB_ERR_NEED_MORE || rc < 0);
    CU_ASSERT(strstr(cb_trace_error(t), "t:") == cb_trace_error(t));
    cb_trace_close(t);
    /* The magic, then garbage. */
    static const uint8_t junk[] = {0x28, 0xb5, 0x2f, 0xfd, 0x08, 0, 0, 0, 0, 0}; /* reserved bit */
    CU_ASSERT_EQUAL_FATAL(cb_trace_open_memory("t", junk, sizeof junk, CB_TRACE_TWITTER, SPEED_1,
                                               &t, err, sizeof err),
                          CB_ERR_OK);
    rc = read_all(t, recs, &n);
    CU_ASSERT_EQUAL(rc, CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT(strncmp(cb_trace_error(t), "t:1: zstd: ", 11) == 0);
    if (rc != CB_ERR_MALFORMED) {
        printf("\n  %d %s\n", rc, cb_trace_error(t));
    }
    cb_trace_close(t);
    /* Only the magic. */
    CU_ASSERT_EQUAL_FATAL(
        cb_trace_open_memory("t", junk, 4, CB_TRACE_TWITTER, SPEED_1, &t, err, sizeof err),
        CB_ERR_OK);
    CU_ASSERT_EQUAL(read_all(t, recs, &n), CB_ERR_NEED_MORE);
    CU_ASSERT_STRING_EQUAL(cb_trace_error(t), "t:1: zstd stream ends inside a frame (truncated?)");
    cb_trace_close(t);
    free(z);
}

/* Many records, so lines and records straddle every buffer refill; two zstd frames. */
static void test_large_streams(void)
{
    size_t cap = 40000 * 40, len = 0;
    char *text = malloc(cap);
    for (unsigned i = 0; i < 40000; i++) {
        len += (size_t)snprintf(text + len, cap - len, "%u,key%u,%u,%u,%u,get,0\n", i / 10, i % 977,
                                3 + i % 5, i, i % 3);
    }
    for (feed_kind kind = FEED_MEMORY; kind <= FEED_ZSTD_FILE; kind++) {
        feed fd;
        cb_trace *t = NULL;
        cb_trace_record rec, last;
        size_t n = 0;
        CU_ASSERT_EQUAL_FATAL(feed_open(&fd, kind, text, len, CB_TRACE_TWITTER, SPEED_1, &t),
                              CB_ERR_OK);
        while (cb_trace_next(t, &rec) == 1) {
            last = rec;
            n++;
        }
        CU_ASSERT_EQUAL(n, 40000);
        CU_ASSERT_EQUAL(last.value_bytes, 39999);
        CU_ASSERT_EQUAL(last.timestamp_ns, 3999000000000ull);
        CU_ASSERT_EQUAL(last.key_len, 6);
        CU_ASSERT_EQUAL(memcmp(last.key, "key919", 6), 0);
        feed_close(&fd, t);
    }
    /* Two frames back to back read as one stream. */
    size_t half = len / 2, z1, z2;
    while (text[half - 1] != '\n') {
        half++;
    }
    uint8_t *a = zstd_of(text, half, &z1), *b = zstd_of(text + half, len - half, &z2);
    uint8_t *both = malloc(z1 + z2);
    memcpy(both, a, z1);
    memcpy(both + z1, b, z2);
    char err[128];
    cb_trace *t = NULL;
    cb_trace_record last;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(
        cb_trace_open_memory("t", both, z1 + z2, CB_TRACE_TWITTER, SPEED_1, &t, err, sizeof err),
        CB_ERR_OK);
    while (cb_trace_next(t, &last) == 1) {
        n++;
    }
    CU_ASSERT_EQUAL(n, 40000);
    CU_ASSERT_STRING_EQUAL(cb_trace_error(t), "");
    cb_trace_close(t);
    free(a);
    free(b);
    free(both);
    free(text);
}

static const cb_test_case tests[] = {
    {"twitter_memory", test_twitter_memory},
    {"twitter_file", test_twitter_file},
    {"twitter_zstd_memory", test_twitter_zstd_memory},
    {"twitter_zstd_file", test_twitter_zstd_file},
    {"speed_scaling", test_speed_scaling},
    {"open_errors", test_open_errors},
    {"libcachesim_trace_print_header", test_libcachesim_trace_print_header},
    {"libcachesim_named_columns", test_libcachesim_named_columns},
    {"libcachesim_no_header", test_libcachesim_no_header},
    {"oracle_general", test_oracle_general},
    {"oracle_truncated", test_oracle_truncated},
    {"malformed_table", test_malformed_table},
    {"oversized_lines_and_keys", test_oversized_lines_and_keys},
    {"zstd_damaged", test_zstd_damaged},
    {"large_streams", test_large_streams},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_trace", tests)
