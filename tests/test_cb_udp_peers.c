/*
 * test_cb_udp_peers.c: the bounded UDP peer table of `cachebed serve` (real/cb_udp_peers.h,
 * docs/real.md §6).
 *
 * By hand: a peer keeps its slot, distinct ports and addresses get distinct slots, IPv4 and
 * IPv6 never mix, the least recently seen peer is the one evicted. As a property: 200,000
 * lookups of random peers from a pool larger than the table, checked against a plain LRU
 * list kept beside it (same slot for a peer held, the same victim, never more than cap
 * peers), with tables of 1, 2, 7 and 64 slots.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "cb_rng.h"
#include "cb_test.h"
#include "cb_udp_peers.h"

static struct sockaddr_in v4(uint32_t addr, uint16_t port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(addr);
    return a;
}

static uint32_t get4(cb_udp_peers *p, uint32_t addr, uint16_t port, int *added, int *evicted)
{
    struct sockaddr_in a = v4(addr, port);
    return cb_udp_peers_get(p, (struct sockaddr *)&a, sizeof a, added, evicted);
}

static void test_by_hand(void)
{
    cb_udp_peers *p = NULL;
    CU_ASSERT_EQUAL(cb_udp_peers_new(0, &p), -1);
    CU_ASSERT_EQUAL(cb_udp_peers_new(CB_UDP_PEERS_MAX + 1, &p), -1);
    CU_ASSERT_EQUAL_FATAL(cb_udp_peers_new(3, &p), 0);
    CU_ASSERT_EQUAL(cb_udp_peers_cap(p), 3);
    int added, evicted;
    uint32_t a = get4(p, 0x7f000001, 1000, &added, &evicted);
    CU_ASSERT(added == 1 && evicted == 0);
    CU_ASSERT_EQUAL(get4(p, 0x7f000001, 1000, &added, &evicted), a);
    CU_ASSERT(added == 0 && evicted == 0);
    uint32_t b = get4(p, 0x7f000001, 1001, &added, &evicted); /* another port */
    CU_ASSERT(added == 1 && b != a);
    uint32_t c = get4(p, 0x7f000002, 1000, &added, &evicted); /* another address */
    CU_ASSERT(added == 1 && c != a && c != b);
    CU_ASSERT_EQUAL(cb_udp_peers_count(p), 3);
    /* a is seen again: b is now the least recent, and goes for a fourth peer. */
    CU_ASSERT_EQUAL(get4(p, 0x7f000001, 1000, &added, &evicted), a);
    uint32_t d = get4(p, 0x7f000003, 7, &added, &evicted);
    CU_ASSERT(added == 1 && evicted == 1 && d == b);
    CU_ASSERT_EQUAL(cb_udp_peers_count(p), 3);
    CU_ASSERT_EQUAL(get4(p, 0x7f000001, 1000, &added, &evicted), a);
    CU_ASSERT_EQUAL(added, 0);
    CU_ASSERT_EQUAL(get4(p, 0x7f000002, 1000, &added, &evicted), c);
    CU_ASSERT_EQUAL(added, 0);
    /* b comes back as a new peer and takes the least recent's slot: d's. */
    CU_ASSERT_EQUAL(get4(p, 0x7f000001, 1001, &added, &evicted), d);
    CU_ASSERT(added == 1 && evicted == 1);
    /* IPv6 ::ffff:127.0.0.1 port 1000 is not the IPv4 peer. */
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(1000);
    s6.sin6_addr.s6_addr[10] = s6.sin6_addr.s6_addr[11] = 0xff;
    s6.sin6_addr.s6_addr[12] = 127;
    s6.sin6_addr.s6_addr[15] = 1;
    uint32_t e = cb_udp_peers_get(p, (struct sockaddr *)&s6, sizeof s6, &added, &evicted);
    CU_ASSERT(added == 1 && evicted == 1);
    CU_ASSERT_EQUAL(cb_udp_peers_get(p, (struct sockaddr *)&s6, sizeof s6, &added, &evicted), e);
    CU_ASSERT_EQUAL(added, 0);
    /* A short or unknown address is one peer per family, never a crash. */
    struct sockaddr odd;
    memset(&odd, 0, sizeof odd);
    odd.sa_family = AF_UNIX;
    uint32_t f = cb_udp_peers_get(p, &odd, 2, &added, &evicted);
    CU_ASSERT_EQUAL(cb_udp_peers_get(p, &odd, 2, &added, &evicted), f);
    CU_ASSERT(cb_udp_peers_bytes(p) > 3 * 24);
    cb_udp_peers_del(p);
    cb_udp_peers_del(NULL);
}

#define POOL 300u

/* The table against a plain LRU list (model[0] most recent) of (peer, slot). */
static void lru_check(uint32_t cap, uint64_t seed)
{
    cb_udp_peers *p = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_udp_peers_new(cap, &p), 0);
    static uint32_t m_peer[CB_UDP_PEERS_MAX], m_slot[CB_UDP_PEERS_MAX];
    uint32_t m_n = 0, bad = 0;
    cb_rng rng;
    cb_rng_init(&rng, seed);
    for (uint32_t step = 0; step < 50000; step++) {
        /* Skewed: a few hot peers, a long tail. */
        uint32_t peer = cb_rng_below(&rng, 4) == 0 ? (uint32_t)cb_rng_below(&rng, 4)
                                                   : (uint32_t)cb_rng_below(&rng, POOL);
        int added, evicted;
        uint32_t slot =
            get4(p, 0x0a000000u + peer / 7u, (uint16_t)(40000u + peer), &added, &evicted);
        uint32_t k = 0;
        while (k < m_n && m_peer[k] != peer) {
            k++;
        }
        uint32_t want_slot;
        int want_added = k == m_n, want_evicted = 0;
        if (k < m_n) {
            want_slot = m_slot[k];
        } else if (m_n < cap) {
            want_slot = m_n++; /* slots are handed out in order until full */
        } else {
            want_slot = m_slot[m_n - 1]; /* the least recent's */
            want_evicted = 1;
            k = m_n - 1;
        }
        memmove(&m_peer[1], &m_peer[0], k * sizeof m_peer[0]);
        memmove(&m_slot[1], &m_slot[0], k * sizeof m_slot[0]);
        m_peer[0] = peer;
        m_slot[0] = want_slot;
        bad += slot != want_slot || added != want_added || evicted != want_evicted ||
               cb_udp_peers_count(p) != m_n || m_n > cap;
    }
    CU_ASSERT_EQUAL(bad, 0);
    cb_udp_peers_del(p);
}

static void test_lru_model(void)
{
    static const uint32_t caps[] = {1, 2, 7, 64};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        lru_check(caps[i], cb_test_seed() + i);
    }
}

static const cb_test_case tests[] = {
    {"by_hand", test_by_hand},
    {"lru_model", test_lru_model},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_udp_peers", tests)
