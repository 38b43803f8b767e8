/*
 * test_cb_udp.c: memcached's UDP framing (protocols/cb_udp.h).
 *
 * Header round trip and byte order, the server's request check (short, empty, multi-datagram,
 * reserved set), reply splitting at the datagram boundary and past UINT16_MAX datagrams, and
 * reassembly: in order, lost, reordered, another request's, oversize.
 */
#include <string.h>

#include "cb_err.h"
#include "cb_test.h"
#include "cb_udp.h"

static void test_udp_header_round_trip(void)
{
    cb_udp_header h = {0x1234, 0x0102, 0xfffe, 0}, back;
    uint8_t buf[CB_UDP_HEADER_BYTES];
    cb_udp_header_encode(&h, buf);
    const uint8_t want[] = {0x12, 0x34, 0x01, 0x02, 0xff, 0xfe, 0, 0};
    CU_ASSERT_EQUAL(memcmp(buf, want, sizeof want), 0);
    CU_ASSERT_EQUAL(cb_udp_header_decode(buf, sizeof buf, &back), CB_ERR_OK);
    CU_ASSERT_EQUAL(back.request_id, 0x1234);
    CU_ASSERT_EQUAL(back.seq, 0x0102);
    CU_ASSERT_EQUAL(back.total, 0xfffe);
    CU_ASSERT_EQUAL(back.reserved, 0);
    CU_ASSERT_EQUAL(cb_udp_header_decode(buf, 7, &back), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(cb_udp_header_decode(NULL, 0, &back), CB_ERR_MALFORMED);
}

static void test_udp_request_parse(void)
{
    uint8_t d[16] = {0, 7, 0, 0, 0, 1, 0, 0, 'g', 'e', 't', ' ', 'k', '\r', '\n'};
    cb_udp_header h;
    const uint8_t *p = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(cb_udp_request_parse(d, 15, &h, &p, &n), CB_ERR_OK);
    CU_ASSERT_EQUAL(h.request_id, 7);
    CU_ASSERT_PTR_EQUAL(p, d + 8);
    CU_ASSERT_EQUAL(n, 7);
    CU_ASSERT_EQUAL(cb_udp_request_parse(d, 8, &h, &p, &n), CB_ERR_MALFORMED); /* no payload */
    CU_ASSERT_EQUAL(cb_udp_request_parse(d, 3, &h, &p, &n), CB_ERR_MALFORMED);
    d[5] = 2; /* two datagrams */
    CU_ASSERT_EQUAL(cb_udp_request_parse(d, 15, &h, &p, &n), CB_ERR_MALFORMED);
    d[5] = 1;
    d[3] = 1; /* sequence 1 */
    CU_ASSERT_EQUAL(cb_udp_request_parse(d, 15, &h, &p, &n), CB_ERR_MALFORMED);
    d[3] = 0;
    d[7] = 1; /* reserved */
    CU_ASSERT_EQUAL(cb_udp_request_parse(d, 15, &h, &p, &n), CB_ERR_MALFORMED);
    d[7] = 0;
    d[5] = 0; /* zero datagrams */
    CU_ASSERT_EQUAL(cb_udp_request_parse(d, 15, &h, &p, &n), CB_ERR_MALFORMED);
}

static void test_udp_reply_split(void)
{
    const size_t per = CB_UDP_DATAGRAM_BYTES - CB_UDP_HEADER_BYTES;
    CU_ASSERT_EQUAL(cb_udp_reply_count(0, CB_UDP_DATAGRAM_BYTES), 0);
    CU_ASSERT_EQUAL(cb_udp_reply_count(1, CB_UDP_DATAGRAM_BYTES), 1);
    CU_ASSERT_EQUAL(cb_udp_reply_count(per, CB_UDP_DATAGRAM_BYTES), 1);
    CU_ASSERT_EQUAL(cb_udp_reply_count(per + 1, CB_UDP_DATAGRAM_BYTES), 2);
    CU_ASSERT_EQUAL(cb_udp_reply_count(per * 65535, CB_UDP_DATAGRAM_BYTES), 65535);
    CU_ASSERT_EQUAL(cb_udp_reply_count(per * 65535 + 1, CB_UDP_DATAGRAM_BYTES), 0);
    CU_ASSERT_EQUAL(cb_udp_reply_count(10, CB_UDP_HEADER_BYTES), 0);
    /* 2.5 datagrams: offsets and lengths tile the reply exactly. */
    size_t len = per * 2 + per / 2, covered = 0;
    for (size_t seq = 0; seq < 3; seq++) {
        uint8_t head[CB_UDP_HEADER_BYTES];
        size_t off, n;
        CU_ASSERT_EQUAL_FATAL(
            cb_udp_reply_datagram(0xabcd, len, CB_UDP_DATAGRAM_BYTES, seq, head, &off, &n),
            CB_ERR_OK);
        cb_udp_header h;
        CU_ASSERT_EQUAL(cb_udp_header_decode(head, sizeof head, &h), CB_ERR_OK);
        CU_ASSERT_EQUAL(h.request_id, 0xabcd);
        CU_ASSERT_EQUAL(h.seq, seq);
        CU_ASSERT_EQUAL(h.total, 3);
        CU_ASSERT_EQUAL(off, covered);
        CU_ASSERT(n + CB_UDP_HEADER_BYTES <= CB_UDP_DATAGRAM_BYTES);
        covered += n;
    }
    CU_ASSERT_EQUAL(covered, len);
    uint8_t head[CB_UDP_HEADER_BYTES];
    size_t off, n;
    CU_ASSERT_EQUAL(cb_udp_reply_datagram(1, len, CB_UDP_DATAGRAM_BYTES, 3, head, &off, &n),
                    CB_ERR_INVALID);
}

static void test_udp_reasm_in_order(void)
{
    cb_udp_reasm r;
    memset(&r, 0, sizeof r);
    size_t at = 99;
    cb_udp_header one = {5, 0, 1, 0};
    CU_ASSERT_EQUAL(cb_udp_reasm_add(&r, &one, 10, 100, &at), CB_UDP_REASM_SINGLE);
    cb_udp_header h = {6, 0, 3, 0};
    CU_ASSERT_EQUAL(cb_udp_reasm_add(&r, &h, 40, 100, &at), CB_UDP_REASM_PART);
    CU_ASSERT_EQUAL(at, 0);
    h.seq = 1;
    CU_ASSERT_EQUAL(cb_udp_reasm_add(&r, &h, 40, 100, &at), CB_UDP_REASM_PART);
    CU_ASSERT_EQUAL(at, 40);
    h.seq = 2;
    CU_ASSERT_EQUAL(cb_udp_reasm_add(&r, &h, 20, 100, &at), CB_UDP_REASM_DONE);
    CU_ASSERT_EQUAL(at, 80);
    CU_ASSERT_EQUAL(r.len, 100);
    CU_ASSERT_EQUAL(r.total, 0);
}

static void test_udp_reasm_rejects(void)
{
    cb_udp_reasm r;
    memset(&r, 0, sizeof r);
    size_t at;
    cb_udp_header h = {6, 1, 3, 0}; /* seq 1 with nothing under way: the first was lost */
    CU_ASSERT_EQUAL(cb_udp_reasm_add(&r, &h, 10, 100, &at), CB_ERR_MALFORMED);
    h.seq = 0;
    CU_ASSERT_EQUAL(cb_udp_reasm_add(&r, &h, 10, 100, &at), CB_UDP_REASM_PART);
    h.seq = 2; /* reordered */
    CU_ASSERT_EQUAL(cb_udp_reasm_add(&r, &h, 10, 100, &at), CB_ERR_MALFORMED);
    h.seq = 1; /* abandoned: 1 no longer continues anything */
    CU_ASSERT_EQUAL(cb_udp_reasm_add(&r, &h, 10, 100, &at), CB_ERR_MALFORMED);
    h.seq = 0;
    CU_ASSERT_EQUAL(cb_udp_reasm_add(&r, &h, 10, 100, &at), CB_UDP_REASM_PART);
    cb_udp_header other = {7, 1, 3, 0}; /* another request's datagram */
    CU_ASSERT_EQUAL(cb_udp_reasm_add(&r, &other, 10, 100, &at), CB_ERR_MALFORMED);
    CU_ASSERT_EQUAL(cb_udp_reasm_add(&r, &h, 60, 100, &at), CB_UDP_REASM_PART);
    h.seq = 1;
    CU_ASSERT_EQUAL(cb_udp_reasm_add(&r, &h, 41, 100, &at), CB_ERR_MALFORMED); /* over max */
    cb_udp_header zero = {8, 0, 0, 0};
    CU_ASSERT_EQUAL(cb_udp_reasm_add(&r, &zero, 1, 100, &at), CB_ERR_MALFORMED);
    cb_udp_header big = {9, 0, 1, 0};
    CU_ASSERT_EQUAL(cb_udp_reasm_add(&r, &big, 101, 100, &at), CB_ERR_MALFORMED);
}

static const cb_test_case tests[] = {
    {"header_round_trip", test_udp_header_round_trip},
    {"request_parse", test_udp_request_parse},
    {"reply_split", test_udp_reply_split},
    {"reasm_in_order", test_udp_reasm_in_order},
    {"reasm_rejects", test_udp_reasm_rejects},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_udp", tests)
