/*
 * test_cb_tracedemux.c: one trace dealt to several clients through a bounded pool.
 */
#include <string.h>

#include "cb_err.h"
#include "cb_test.h"
#include "cb_tracedemux.h"

static cb_trace *demux_trace(const char *text)
{
    char err[256];
    cb_trace *t = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_trace_open_memory("t", (const uint8_t *)text, strlen(text),
                                               CB_TRACE_TWITTER, 1000000, &t, err, sizeof err),
                          CB_ERR_OK);
    return t;
}

/* Records of client ids 0 0 0 1 0 3 (2 clients: 0 0 0 1 0 1), pool of 2. */
static const char demux_text[] = "0,a,1,1,0,get,0\n1,b,1,1,0,get,0\n2,c,1,1,0,get,0\n"
                                 "3,d,1,1,1,get,0\n4,e,1,1,0,get,0\n5,f,1,1,3,get,0\n";

static void expect_key(cb_tracedemux *d, uint32_t client, char key)
{
    cb_trace_record rec;
    CU_ASSERT_EQUAL_FATAL(cb_tracedemux_next(d, client, &rec), CB_TRACEDEMUX_RECORD);
    CU_ASSERT_EQUAL(rec.key_len, 1);
    CU_ASSERT_EQUAL(rec.key[0], (uint8_t)key);
    CU_ASSERT_EQUAL(rec.client_id % 2, client);
}

static void test_demux_bounded_pool(void)
{
    cb_trace *t = demux_trace(demux_text);
    cb_tracedemux *d = NULL;
    cb_trace_record rec;
    CU_ASSERT_EQUAL_FATAL(cb_tracedemux_new(t, 2, 2, 0, &d), CB_ERR_OK);
    /* Client 1's first record is behind three of client 0's: two fit, the third waits. */
    CU_ASSERT_EQUAL(cb_tracedemux_next(d, 1, &rec), CB_TRACEDEMUX_WAIT);
    CU_ASSERT_EQUAL(cb_tracedemux_read(d), 3);
    expect_key(d, 0, 'a');
    CU_ASSERT_EQUAL(cb_tracedemux_next(d, 1, &rec), CB_TRACEDEMUX_RECORD); /* c parked, d */
    CU_ASSERT_EQUAL(rec.key[0], 'd');
    expect_key(d, 0, 'b');
    expect_key(d, 0, 'c');
    expect_key(d, 0, 'e');
    CU_ASSERT_EQUAL(cb_tracedemux_next(d, 0, &rec), CB_TRACEDEMUX_END); /* f parked */
    expect_key(d, 1, 'f');
    CU_ASSERT_EQUAL(cb_tracedemux_next(d, 1, &rec), CB_TRACEDEMUX_END);
    CU_ASSERT_EQUAL(cb_tracedemux_read(d), 6);
    cb_tracedemux_del(d);
    cb_trace_close(t);
}

static void test_demux_limit_and_error(void)
{
    cb_trace *t = demux_trace(demux_text);
    cb_tracedemux *d = NULL;
    cb_trace_record rec;
    CU_ASSERT_EQUAL_FATAL(cb_tracedemux_new(t, 1, 4, 2, &d), CB_ERR_OK);
    expect_key(d, 0, 'a');
    expect_key(d, 0, 'b');
    CU_ASSERT_EQUAL(cb_tracedemux_next(d, 0, &rec), CB_TRACEDEMUX_END);
    cb_tracedemux_del(d);
    cb_trace_close(t);

    t = demux_trace("0,a,1,1,1,get,0\n1,b,1,1,0,get,0\n2,c,1,1,0,nope,0\n");
    CU_ASSERT_EQUAL_FATAL(cb_tracedemux_new(t, 2, 4, 0, &d), CB_ERR_OK);
    expect_key(d, 0, 'b');
    CU_ASSERT_EQUAL(cb_tracedemux_next(d, 0, &rec), CB_ERR_MALFORMED);
    expect_key(d, 1, 'a'); /* what was buffered before the error still comes out */
    CU_ASSERT_EQUAL(cb_tracedemux_next(d, 1, &rec), CB_ERR_MALFORMED);
    CU_ASSERT_STRING_EQUAL(cb_trace_error(t), "t:3: unknown operation 'nope'");
    cb_tracedemux_del(d);
    cb_trace_close(t);

    CU_ASSERT_EQUAL(cb_tracedemux_new(NULL, 1, 1, 0, &d), CB_ERR_INVALID);
    CU_ASSERT_PTR_NULL(d);
    cb_tracedemux_del(NULL);
}

static const cb_test_case tests[] = {
    {"bounded_pool", test_demux_bounded_pool},
    {"limit_and_error", test_demux_limit_and_error},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_tracedemux", tests)
