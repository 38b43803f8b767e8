/*
 * test_cb_memnet.c: the in-memory network's delay, jitter, loss, duplication and order.
 *
 * Rates are checked over 10^5 draws with bounds at about 6 sigma, so a correct network fails
 * them with probability ~1e-9 whatever the seed. Everything else is exact.
 */
#include <string.h>

#include "cb_err.h"
#include "cb_memnet.h"
#include "cb_test.h"

#define MEMNET_RATE_MSGS 100000u

static cb_memnet_config memnet_config(uint64_t latency_ns, uint64_t jitter_ns)
{
    cb_memnet_config c;
    memset(&c, 0, sizeof c);
    c.latency_ns = latency_ns;
    c.jitter_ns = jitter_ns;
    c.seed = cb_test_seed();
    c.queue_max = 1024;
    c.bytes_max = 1u << 20;
    return c;
}

static cb_memnet *memnet_new(const cb_memnet_config *c)
{
    cb_memnet *net = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_memnet_new(c, NULL, &net), CB_ERR_OK);
    return net;
}

static int memnet_send_u32(cb_memnet *net, uint32_t src, uint32_t dst, uint32_t v, uint64_t now_ns)
{
    return cb_memnet_send(net, src, dst, (const uint8_t *)&v, sizeof v, now_ns);
}

static uint32_t memnet_u32(const cb_memnet_msg *m)
{
    uint32_t v;
    CU_ASSERT_EQUAL_FATAL(m->data_len, sizeof v);
    memcpy(&v, m->data, sizeof v);
    return v;
}

/* |x - mean| within 6 sigma of a binomial(n, ppm/10^6), in integers: d^2 <= 36 var (the
 * variance rounded up, so rates 0 and 10^6 allow a difference of 6 at most). */
static int memnet_within_6_sigma(uint64_t x, uint64_t n, uint64_t ppm)
{
    uint64_t mean = n * ppm / 1000000u;
    uint64_t d = x > mean ? x - mean : mean - x;
    uint64_t var = n * ppm / 1000000u * (1000000u - ppm) / 1000000u + 1;
    return d * d <= 36u * var;
}

static void test_memnet_exact_latency_without_jitter(void)
{
    cb_memnet_config c = memnet_config(1000, 0);
    cb_memnet *net = memnet_new(&c);
    CU_ASSERT_EQUAL(cb_memnet_next_ns(net), UINT64_MAX);
    for (uint32_t i = 0; i < 50; i++) {
        uint64_t now = (uint64_t)i * 37;
        CU_ASSERT_EQUAL(memnet_send_u32(net, 0, 1, i, now), CB_ERR_OK);
    }
    for (uint32_t i = 0; i < 50; i++) {
        uint64_t due = (uint64_t)i * 37 + 1000;
        CU_ASSERT_EQUAL(cb_memnet_next_ns(net), due);
        cb_memnet_msg m;
        CU_ASSERT_EQUAL(cb_memnet_pop(net, due - 1, &m), 0);
        CU_ASSERT_EQUAL_FATAL(cb_memnet_pop(net, due, &m), 1);
        CU_ASSERT_EQUAL(m.deliver_ns, due);
        CU_ASSERT_EQUAL(m.sent_ns, due - 1000);
        CU_ASSERT_EQUAL(m.src, 0);
        CU_ASSERT_EQUAL(m.dst, 1);
        CU_ASSERT_EQUAL(memnet_u32(&m), i);
    }
    cb_memnet_stats s;
    cb_memnet_get_stats(net, &s);
    CU_ASSERT_EQUAL(s.sent, 50);
    CU_ASSERT_EQUAL(s.delivered, 50);
    CU_ASSERT_EQUAL(s.reordered, 0);
    CU_ASSERT_EQUAL(s.bytes_sent, 50 * sizeof(uint32_t));
    cb_memnet_del(net);
}

static void test_memnet_jitter_bounds(void)
{
    cb_memnet_config c = memnet_config(1000, 500);
    cb_memnet *net = memnet_new(&c);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint32_t i = 0; i < 10000; i++) {
        CU_ASSERT_EQUAL(memnet_send_u32(net, 0, 1, i, 0), CB_ERR_OK);
        cb_memnet_msg m;
        CU_ASSERT_EQUAL_FATAL(cb_memnet_pop(net, UINT64_MAX, &m), 1);
        uint64_t d = m.deliver_ns - m.sent_ns;
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    CU_ASSERT(lo >= 1000 && lo < 1010); /* both ends of [1000, 1500] are reached */
    CU_ASSERT(hi <= 1500 && hi > 1490);
    cb_memnet_del(net);
}

static void test_memnet_loss_rate(void)
{
    static const uint32_t rates[] = {0, 1000, 50000, 500000, 1000000};
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        cb_memnet_config c = memnet_config(10, 0);
        c.loss_ppm = rates[r];
        cb_memnet *net = memnet_new(&c);
        uint64_t delivered = 0;
        for (uint32_t i = 0; i < MEMNET_RATE_MSGS; i++) {
            CU_ASSERT_EQUAL(memnet_send_u32(net, 0, 1, i, i), CB_ERR_OK);
            cb_memnet_msg m;
            delivered += (uint64_t)cb_memnet_pop(net, i + 10, &m);
        }
        cb_memnet_stats s;
        cb_memnet_get_stats(net, &s);
        CU_ASSERT_EQUAL(s.sent, MEMNET_RATE_MSGS);
        CU_ASSERT_EQUAL(s.delivered, delivered);
        CU_ASSERT_EQUAL(s.lost + delivered, MEMNET_RATE_MSGS);
        if (!memnet_within_6_sigma(s.lost, MEMNET_RATE_MSGS, rates[r])) {
            printf("\n  loss_ppm %u: %llu lost of %u\n", rates[r], (unsigned long long)s.lost,
                   MEMNET_RATE_MSGS);
            CU_FAIL("loss rate outside 6 sigma");
        }
        cb_memnet_del(net);
    }
}

static void test_memnet_duplication(void)
{
    cb_memnet_config c = memnet_config(10, 0);
    c.dup_ppm = 100000;
    cb_memnet *net = memnet_new(&c);
    uint64_t delivered = 0;
    for (uint32_t i = 0; i < MEMNET_RATE_MSGS; i++) {
        CU_ASSERT_EQUAL(memnet_send_u32(net, 0, 1, i, i), CB_ERR_OK);
        cb_memnet_msg m;
        while (cb_memnet_pop(net, i + 10, &m)) {
            delivered++;
        }
    }
    cb_memnet_stats s;
    cb_memnet_get_stats(net, &s);
    CU_ASSERT_EQUAL(delivered, MEMNET_RATE_MSGS + s.duplicated);
    CU_ASSERT(memnet_within_6_sigma(s.duplicated, MEMNET_RATE_MSGS, 100000));
    cb_memnet_del(net);

    /* dup_ppm = 10^6: every message exactly twice, identical, back to back. */
    c.dup_ppm = 1000000;
    net = memnet_new(&c);
    for (uint32_t i = 0; i < 100; i++) {
        CU_ASSERT_EQUAL(memnet_send_u32(net, 0, 1, i, 0), CB_ERR_OK);
    }
    for (uint32_t i = 0; i < 200; i++) {
        cb_memnet_msg m;
        CU_ASSERT_EQUAL_FATAL(cb_memnet_pop(net, 10, &m), 1);
        CU_ASSERT_EQUAL(memnet_u32(&m), i / 2);
    }
    cb_memnet_get_stats(net, &s);
    CU_ASSERT_EQUAL(s.duplicated, 100);
    CU_ASSERT_EQUAL(s.reordered, 0);
    cb_memnet_del(net);
}

static void test_memnet_ties_in_send_order(void)
{
    cb_memnet_config c = memnet_config(100, 0);
    cb_memnet *net = memnet_new(&c);
    for (uint32_t i = 0; i < 500; i++) {
        /* Sources and destinations vary; only the send order may break the tie. */
        CU_ASSERT_EQUAL(memnet_send_u32(net, i % 7, (i * 3) % 5, i, 0), CB_ERR_OK);
    }
    for (uint32_t i = 0; i < 500; i++) {
        cb_memnet_msg m;
        CU_ASSERT_EQUAL_FATAL(cb_memnet_pop(net, 100, &m), 1);
        CU_ASSERT_EQUAL(memnet_u32(&m), i);
        CU_ASSERT_EQUAL(m.src, i % 7);
        CU_ASSERT_EQUAL(m.dst, (i * 3) % 5);
    }
    cb_memnet_del(net);
}

/* Hash of the whole delivery sequence of a lossy, jittery, duplicating network. */
static uint64_t memnet_trace(uint64_t seed)
{
    cb_memnet_config c = memnet_config(1000, 5000);
    c.seed = seed;
    c.loss_ppm = 100000;
    c.dup_ppm = 50000;
    cb_memnet *net = memnet_new(&c);
    uint64_t h = 0xcbf29ce484222325ull;
    uint64_t now = 0;
    for (uint32_t i = 0; i < 2000; i++) {
        now += 100;
        CU_ASSERT_EQUAL(memnet_send_u32(net, i % 3, (i + 1) % 3, i, now), CB_ERR_OK);
        cb_memnet_msg m;
        while (cb_memnet_pop(net, now, &m)) {
            uint64_t fields[] = {m.src, m.dst, m.sent_ns, m.deliver_ns, memnet_u32(&m)};
            for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
                h = (h ^ fields[k]) * 0x100000001b3ull;
            }
        }
    }
    cb_memnet_del(net);
    return h;
}

static void test_memnet_seed_determinism(void)
{
    uint64_t seed = cb_test_seed();
    CU_ASSERT_EQUAL(memnet_trace(seed), memnet_trace(seed));
    CU_ASSERT_NOT_EQUAL(memnet_trace(seed), memnet_trace(seed + 1));
}

static void test_memnet_full(void)
{
    cb_memnet_config c = memnet_config(10, 0);
    c.queue_max = 3;
    cb_memnet *net = memnet_new(&c);
    for (uint32_t i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(memnet_send_u32(net, 0, 1, i, 0), CB_ERR_OK);
    }
    CU_ASSERT_EQUAL(memnet_send_u32(net, 0, 1, 3, 0), CB_ERR_FULL);
    cb_memnet_stats s;
    cb_memnet_get_stats(net, &s);
    CU_ASSERT_EQUAL(s.sent, 3); /* a refused message was not sent */
    cb_memnet_msg m;
    CU_ASSERT_EQUAL(cb_memnet_pop(net, 10, &m), 1);
    CU_ASSERT_EQUAL(memnet_send_u32(net, 0, 1, 3, 0), CB_ERR_OK);
    cb_memnet_del(net);

    /* The byte cap: 10 bytes in flight at most. */
    c = memnet_config(10, 0);
    c.bytes_max = 10;
    net = memnet_new(&c);
    uint8_t buf[10] = {0};
    CU_ASSERT_EQUAL(cb_memnet_send(net, 0, 1, buf, 8, 0), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_memnet_send(net, 0, 1, buf, 3, 0), CB_ERR_FULL);
    CU_ASSERT_EQUAL(cb_memnet_send(net, 0, 1, buf, 2, 0), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_memnet_send(net, 0, 1, buf, 0, 0), CB_ERR_OK); /* empty message */
    CU_ASSERT_EQUAL(cb_memnet_pop(net, 10, &m), 1);
    CU_ASSERT_EQUAL(cb_memnet_send(net, 0, 1, buf, 8, 0), CB_ERR_OK);
    cb_memnet_del(net);
}

static void test_memnet_drop_node(void)
{
    cb_memnet_config c = memnet_config(10, 1000);
    cb_memnet *net = memnet_new(&c);
    uint32_t expect_kept = 0;
    for (uint32_t i = 0; i < 300; i++) {
        uint32_t src = i % 3, dst = (i / 3) % 3;
        CU_ASSERT_EQUAL(memnet_send_u32(net, src, dst, i, 0), CB_ERR_OK);
        expect_kept += src != 1 && dst != 1;
    }
    cb_memnet_drop_node(net, 1);
    uint32_t kept = 0;
    uint64_t last_ns = 0;
    cb_memnet_msg m;
    while (cb_memnet_pop(net, UINT64_MAX, &m)) {
        CU_ASSERT(m.src != 1 && m.dst != 1);
        CU_ASSERT(m.deliver_ns >= last_ns); /* the heap is still ordered */
        last_ns = m.deliver_ns;
        kept++;
    }
    CU_ASSERT_EQUAL(kept, expect_kept);
    CU_ASSERT_EQUAL(cb_memnet_next_ns(net), UINT64_MAX);
    /* The dropped messages' bytes are no longer counted in flight. */
    for (uint32_t i = 0; i < 1024; i++) {
        CU_ASSERT_EQUAL(memnet_send_u32(net, 0, 2, i, 0), CB_ERR_OK);
    }
    cb_memnet_del(net);
}

static void test_memnet_reordered_counter(void)
{
    for (int jitter = 0; jitter < 2; jitter++) {
        cb_memnet_config c = memnet_config(1000, jitter ? 1000 : 0);
        cb_memnet *net = memnet_new(&c);
        uint64_t now = 0;
        for (uint32_t i = 0; i < 1000; i++) {
            now += 10;
            CU_ASSERT_EQUAL(memnet_send_u32(net, 0, 1, i, now), CB_ERR_OK);
            cb_memnet_msg m;
            while (cb_memnet_pop(net, now, &m)) {
            }
        }
        cb_memnet_msg m;
        while (cb_memnet_pop(net, UINT64_MAX, &m)) {
        }
        cb_memnet_stats s;
        cb_memnet_get_stats(net, &s);
        CU_ASSERT_EQUAL(s.delivered, 1000);
        if (jitter) {
            CU_ASSERT(s.reordered > 0);
        } else {
            CU_ASSERT_EQUAL(s.reordered, 0);
        }
        cb_memnet_del(net);
    }
}

static void test_memnet_invalid_and_nomem(void)
{
    cb_memnet_config c = memnet_config(10, 0);
    cb_memnet *net = NULL;
    c.queue_max = 0;
    CU_ASSERT_EQUAL(cb_memnet_new(&c, NULL, &net), CB_ERR_INVALID);
    c = memnet_config(10, 0);
    c.bytes_max = 0;
    CU_ASSERT_EQUAL(cb_memnet_new(&c, NULL, &net), CB_ERR_INVALID);
    CU_ASSERT_PTR_NULL(net);

    c = memnet_config(10, 0);
    for (uint64_t n = 0;; n++) {
        cb_alloc_failing fa;
        cb_alloc_failing_init(&fa, n, 1);
        int rc = cb_memnet_new(&c, &fa.alloc, &net);
        if (rc == CB_ERR_OK) {
            /* The next allocation (the message copy) fails: NOMEM, nothing queued. */
            fa.fail_at = fa.calls;
            fa.fail_count = 1;
            CU_ASSERT_EQUAL(memnet_send_u32(net, 0, 1, 7, 0), CB_ERR_NOMEM);
            CU_ASSERT_EQUAL(cb_memnet_next_ns(net), UINT64_MAX);
            CU_ASSERT_EQUAL(memnet_send_u32(net, 0, 1, 7, 0), CB_ERR_OK);
            cb_memnet_del(net);
            CU_ASSERT_EQUAL(fa.live, 0);
            break;
        }
        CU_ASSERT_EQUAL(rc, CB_ERR_NOMEM);
        CU_ASSERT_PTR_NULL(net);
        CU_ASSERT_EQUAL(fa.live, 0);
        CU_ASSERT_FATAL(n < 10);
    }
}

static const cb_test_case tests[] = {
    {"exact_latency_without_jitter", test_memnet_exact_latency_without_jitter},
    {"jitter_bounds", test_memnet_jitter_bounds},
    {"loss_rate", test_memnet_loss_rate},
    {"duplication", test_memnet_duplication},
    {"ties_in_send_order", test_memnet_ties_in_send_order},
    {"seed_determinism", test_memnet_seed_determinism},
    {"full", test_memnet_full},
    {"drop_node", test_memnet_drop_node},
    {"reordered_counter", test_memnet_reordered_counter},
    {"invalid_and_nomem", test_memnet_invalid_and_nomem},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_memnet", tests)
