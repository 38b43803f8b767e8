/*
 * test_cb_shards.c: the sharded store (protocols/cb_shards.h) and servers sharing one.
 *
 * Keys spread over every shard and always land in the same one; the cap is split and holds
 * under a flood; flush reaches every shard; stats add up; a SCAN over sharded cursors
 * returns every key; the injected lock is taken once per access and never nested. Then
 * two cb_server machines sharing one sharded store (as two threads of `cachebed serve`
 * do): a key set through one is read through the other, FLUSH and incr act on both, and
 * every request leaves all locks released.
 */
#include <stdio.h>
#include <string.h>

#include "cb_err.h"
#include "cb_server.h"
#include "cb_shards.h"
#include "cb_test.h"

/* A lock that checks its own use: one shard held at a time, released by its taker. */
typedef struct shards_test_lock {
    int held;        /* shard held, -1: none */
    uint64_t locks;  /* lock calls */
    uint64_t errors; /* nested lock, or unlock of a shard not held */
} shards_test_lock;

static void shards_lock(void *ctx, uint32_t shard)
{
    shards_test_lock *l = ctx;
    if (l->held != -1) {
        l->errors++;
    }
    l->held = (int)shard;
    l->locks++;
}

static void shards_unlock(void *ctx, uint32_t shard)
{
    shards_test_lock *l = ctx;
    if (l->held != (int)shard) {
        l->errors++;
    }
    l->held = -1;
}

static cb_store_config shards_store_config(uint64_t memory)
{
    cb_store_config c;
    memset(&c, 0, sizeof c);
    c.memory_bytes_max = memory;
    c.value_bytes_max = 1024;
    return c;
}

static void test_shards_rejects_bad_counts(void)
{
    cb_store_config c = shards_store_config(1 << 20);
    cb_shards *sh = (cb_shards *)1;
    CU_ASSERT_EQUAL(cb_shards_new(&c, 0, NULL, NULL, &sh), CB_ERR_INVALID);
    CU_ASSERT_PTR_NULL(sh);
    CU_ASSERT_EQUAL(cb_shards_new(&c, 3, NULL, NULL, &sh), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(cb_shards_new(&c, 512, NULL, NULL, &sh), CB_ERR_INVALID);
    c.memory_bytes_max = 64; /* too small for any shard */
    CU_ASSERT_EQUAL(cb_shards_new(&c, 4, NULL, NULL, &sh), CB_ERR_INVALID);
    CU_ASSERT_PTR_NULL(sh);
    cb_shards_del(NULL);
}

static void test_shards_spread_and_cap(void)
{
    shards_test_lock l = {-1, 0, 0};
    cb_shards_lock lk = {shards_lock, shards_unlock, &l};
    cb_store_config c = shards_store_config(1 << 20);
    cb_shards *sh;
    CU_ASSERT_EQUAL_FATAL(cb_shards_new(&c, 16, &lk, NULL, &sh), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_shards_count(sh), 16);
    unsigned per[16] = {0};
    uint8_t value[200];
    memset(value, 'v', sizeof value);
    for (int i = 0; i < 20000; i++) { /* ~4.6 MB of items into a 1 MiB cap */
        char key[32];
        int n = snprintf(key, sizeof key, "key:%d", i);
        uint32_t s = cb_shards_index(sh, (const uint8_t *)key, (size_t)n);
        CU_ASSERT_FATAL(s < 16);
        CU_ASSERT_EQUAL(s, cb_shards_index(sh, (const uint8_t *)key, (size_t)n));
        per[s]++;
        cb_store *st = cb_shards_acquire(sh, s);
        CU_ASSERT_EQUAL(cb_store_set(st, (const uint8_t *)key, (size_t)n, value, sizeof value, 0,
                                     0, 0, NULL),
                        CB_ERR_OK);
        cb_shards_release(sh, s);
    }
    for (int s = 0; s < 16; s++) {
        CU_ASSERT(per[s] > 20000 / 16 / 2 && per[s] < 20000 / 16 * 2); /* roughly even */
        CU_ASSERT_EQUAL(cb_store_check(cb_shards_acquire(sh, (uint32_t)s)), CB_ERR_OK);
        cb_shards_release(sh, (uint32_t)s);
    }
    cb_store_stats st;
    cb_shards_stats_get(sh, &st);
    CU_ASSERT(st.bytes_used <= (1u << 20));
    CU_ASSERT_EQUAL(st.memory_bytes_max, (1u << 20));
    CU_ASSERT_EQUAL(st.cmd_set, 20000);
    CU_ASSERT(st.evictions > 0);
    CU_ASSERT(st.items > 0 && st.items < 20000);
    uint64_t items = st.items;
    /* A scan over the sharded cursor returns every item exactly once (no resize under way
     * between calls: nothing is written during the scan). */
    uint64_t cursor = 0, seen = 0;
    int calls = 0;
    do {
        uint32_t shard;
        uint64_t inner, next;
        cb_shards_cursor_split(sh, cursor, &shard, &inner);
        CU_ASSERT_FATAL(shard < 16);
        cb_store_scan_item out[64];
        size_t n;
        CU_ASSERT_EQUAL_FATAL(
            cb_store_scan(cb_shards_acquire(sh, shard), inner, 0, out, 64, &n, &next), CB_ERR_OK);
        cb_shards_release(sh, shard);
        seen += n;
        cursor = cb_shards_cursor_join(sh, shard, next);
        CU_ASSERT_FATAL(++calls < 100000);
    } while (cursor != 0);
    CU_ASSERT(seen >= items);
    cb_shards_flush(sh);
    cb_shards_stats_get(sh, &st);
    CU_ASSERT_EQUAL(st.cmd_flush, 16);
    for (uint32_t s = 0; s < 16; s++) {
        cb_store_view v;
        CU_ASSERT_EQUAL(cb_store_get(cb_shards_acquire(sh, s), (const uint8_t *)"key:19999", 9, 0,
                                     &v),
                        CB_ERR_NOT_FOUND);
        cb_shards_release(sh, s);
    }
    CU_ASSERT(cb_shards_sweep(sh, 1) > 0); /* flushed items are reclaimed in every shard */
    CU_ASSERT_EQUAL(l.errors, 0);
    CU_ASSERT_EQUAL(l.held, -1);
    cb_shards_del(sh);
}

static void test_shards_cursor(void)
{
    cb_store_config c = shards_store_config(1 << 20);
    cb_shards *one, *four;
    CU_ASSERT_EQUAL_FATAL(cb_shards_new(&c, 1, NULL, NULL, &one), CB_ERR_OK);
    CU_ASSERT_EQUAL_FATAL(cb_shards_new(&c, 4, NULL, NULL, &four), CB_ERR_OK);
    uint32_t s;
    uint64_t inner;
    cb_shards_cursor_split(one, 0xffffffffffffull, &s, &inner); /* one shard: unchanged */
    CU_ASSERT_EQUAL(s, 0);
    CU_ASSERT_EQUAL(inner, 0xffffffffffffull);
    CU_ASSERT_EQUAL(cb_shards_cursor_join(one, 0, 77), 77);
    CU_ASSERT_EQUAL(cb_shards_cursor_join(four, 0, 0), 1ull << 56);
    CU_ASSERT_EQUAL(cb_shards_cursor_join(four, 2, 5), (2ull << 56) | 5);
    CU_ASSERT_EQUAL(cb_shards_cursor_join(four, 3, 0), 0); /* the last shard is done */
    CU_ASSERT_EQUAL(cb_shards_cursor_join(four, 1, 1ull << 56), 2ull << 56);
    cb_shards_cursor_split(four, (2ull << 56) | 5, &s, &inner);
    CU_ASSERT_EQUAL(s, 2);
    CU_ASSERT_EQUAL(inner, 5);
    cb_shards_cursor_split(four, 9ull << 56, &s, &inner);
    CU_ASSERT_EQUAL(s, 4); /* out of range: the scan is over */
    cb_shards_del(one);
    cb_shards_del(four);
}

/* ---- two servers, one store ---- */

static char shards_out[8192];

/* Feed a text request on `conn` and collect its reply into shards_out. */
static const char *shards_request(cb_server *srv, uint32_t conn, const char *in)
{
    size_t len = strlen(in), off = 0, out_len = 0;
    while (off < len) {
        long rc = cb_server_on_bytes(srv, conn, (const uint8_t *)in + off, len - off, 0);
        CU_ASSERT_FATAL(rc >= 0);
        off += (size_t)rc;
        cb_action acts[64];
        size_t n;
        while ((n = cb_server_drain(srv, acts, 64)) > 0) {
            for (size_t i = 0; i < n; i++) {
                if (acts[i].kind == CB_ACTION_SEND) {
                    CU_ASSERT_FATAL(out_len + acts[i].data_len < sizeof shards_out);
                    memcpy(shards_out + out_len, acts[i].data, acts[i].data_len);
                    out_len += acts[i].data_len;
                }
            }
        }
    }
    shards_out[out_len] = '\0';
    return shards_out;
}

static void test_shards_two_servers(void)
{
    shards_test_lock l = {-1, 0, 0};
    cb_shards_lock lk = {shards_lock, shards_unlock, &l};
    cb_server_config sc = cb_server_config_default();
    sc.store.memory_bytes_max = 4u << 20;
    sc.conn_max = 4;
    cb_shards *sh;
    CU_ASSERT_EQUAL_FATAL(cb_shards_new(&sc.store, 8, &lk, NULL, &sh), CB_ERR_OK);
    sc.shared_store = sh;
    cb_server *a, *b;
    CU_ASSERT_EQUAL_FATAL(cb_server_new(&sc, NULL, &a), CB_ERR_OK);
    CU_ASSERT_EQUAL_FATAL(cb_server_new(&sc, NULL, &b), CB_ERR_OK);
    CU_ASSERT_STRING_EQUAL(shards_request(a, 0, "set k1 5 0 3\r\nabc\r\n"), "STORED\r\n");
    CU_ASSERT_STRING_EQUAL(shards_request(b, 2, "get k1\r\n"), "VALUE k1 5 3\r\nabc\r\nEND\r\n");
    CU_ASSERT_STRING_EQUAL(shards_request(a, 0, "set n 0 0 1\r\n0\r\n"), "STORED\r\n");
    for (int i = 0; i < 10; i++) {
        shards_request(i % 2 ? a : b, 1, "incr n 1\r\n");
    }
    CU_ASSERT_STRING_EQUAL(shards_request(b, 1, "incr n 0\r\n"), "10\r\n");
    /* A multi-key get takes each key's shard in turn. */
    for (int i = 0; i < 20; i++) {
        char req[64];
        (void)snprintf(req, sizeof req, "set m%d 0 0 1\r\n%d\r\n", i, i % 10);
        CU_ASSERT_STRING_EQUAL(shards_request(i % 2 ? a : b, 0, req), "STORED\r\n");
    }
    const char *r = shards_request(a, 3, "get m0 m1 m2 m3 m4 m5 m6 m7 m8 m9 m10 m19\r\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "VALUE m19 0 1\r\n9\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "VALUE m0 0 1\r\n0\r\n"));
    /* Meta commands hold their key's shard across check, write and return flags. */
    CU_ASSERT_STRING_EQUAL(shards_request(b, 0, "ma ctr N0 J5 v\r\n"), "VA 1\r\n5\r\n");
    CU_ASSERT_STRING_EQUAL(shards_request(a, 0, "mg ctr v\r\n"), "VA 1\r\n5\r\n");
    /* STATS aggregates the shards; FLUSH reaches every shard, through either server. */
    r = shards_request(b, 0, "stats\r\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "STAT curr_items 23\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "STAT limit_maxbytes 4194304\r\n"));
    CU_ASSERT_STRING_EQUAL(shards_request(b, 0, "flush_all\r\n"), "OK\r\n");
    CU_ASSERT_STRING_EQUAL(shards_request(a, 0, "get k1 n m5 ctr\r\n"), "END\r\n");
    CU_ASSERT_EQUAL(cb_server_on_timer(a, 200000000), CB_ERR_OK); /* sweep every shard */
    CU_ASSERT_EQUAL(l.errors, 0);
    CU_ASSERT_EQUAL(l.held, -1);
    CU_ASSERT(l.locks > 40);
    cb_server_del(a);
    cb_server_del(b);
    cb_shards_del(sh); /* the caller owns a shared store */
}

static const cb_test_case tests[] = {
    {"rejects_bad_counts", test_shards_rejects_bad_counts},
    {"spread_and_cap", test_shards_spread_and_cap},
    {"cursor", test_shards_cursor},
    {"two_servers", test_shards_two_servers},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_shards", tests)
