/*
 * test_cb_store.c: the cache store — per-operation semantics and errors (scripted tables),
 * LRU order, the TTL boundary (lazy and swept), flush, incremental resize, the memory cap
 * under random workloads checked against reference models, and allocation failures.
 */
#include "cb_err.h"
#include "cb_rng.h"
#include "cb_store.h"
#include "cb_test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NS_NONE UINT64_MAX

/* ---- scripted steps ---- */

enum {
    OP_GET,
    OP_SET,
    OP_ADD,
    OP_REPLACE,
    OP_APPEND,
    OP_PREPEND,
    OP_CAS,
    OP_DELETE,
    OP_INCR,
    OP_DECR,
    OP_TOUCH,
    OP_FLUSH,
    OP_COUNT
};

/*
 * One call. `value` is the value written, or for GET the value expected (NULL: not checked),
 * or for INCR/DECR the decimal result expected. `arg` is ttl_ns or the delta. `cas_in` is
 * the CAS a CAS op expects; `cas_out` the CAS expected back (GET too), 0 when not checked.
 */
typedef struct step {
    const char *name;
    int op;
    const char *key;
    const char *value;
    uint64_t arg;
    uint64_t cas_in;
    uint64_t cas_out;
    uint64_t now_ns;
    int rc;
    uint32_t flags; /* written, or expected by GET */
} step;

static const uint8_t *u8(const char *s)
{
    return (const uint8_t *)s;
}

static size_t len_of(const char *s)
{
    return s == NULL ? 0 : strlen(s);
}

/* Run one step on raw key bytes; returns the rc and checks outputs on success. */
static int run_raw(cb_store *s, const step *st, const uint8_t *key, size_t key_len)
{
    const uint8_t *v = u8(st->value);
    size_t vl = len_of(st->value);
    uint64_t cas = 0, num = 0;
    cb_store_view view = {0};
    int rc = CB_ERR_OK;
    switch (st->op) {
    case OP_GET:
        rc = cb_store_get(s, key, key_len, st->now_ns, &view);
        cas = view.cas;
        break;
    case OP_SET:
        rc = cb_store_set(s, key, key_len, v, vl, st->flags, st->arg, st->now_ns, &cas);
        break;
    case OP_ADD:
        rc = cb_store_add(s, key, key_len, v, vl, st->flags, st->arg, st->now_ns, &cas);
        break;
    case OP_REPLACE:
        rc = cb_store_replace(s, key, key_len, v, vl, st->flags, st->arg, st->now_ns, &cas);
        break;
    case OP_APPEND:
        rc = cb_store_append(s, key, key_len, v, vl, st->now_ns, &cas);
        break;
    case OP_PREPEND:
        rc = cb_store_prepend(s, key, key_len, v, vl, st->now_ns, &cas);
        break;
    case OP_CAS:
        rc = cb_store_cas(s, key, key_len, v, vl, st->flags, st->arg, st->cas_in, st->now_ns, &cas);
        break;
    case OP_DELETE:
        rc = cb_store_delete(s, key, key_len, st->now_ns);
        break;
    case OP_INCR:
        rc = cb_store_incr(s, key, key_len, st->arg, st->now_ns, &num, &cas);
        break;
    case OP_DECR:
        rc = cb_store_decr(s, key, key_len, st->arg, st->now_ns, &num, &cas);
        break;
    case OP_TOUCH:
        rc = cb_store_touch(s, key, key_len, st->arg, st->now_ns);
        break;
    case OP_FLUSH:
        cb_store_flush(s);
        break;
    }
    if (rc != CB_ERR_OK) {
        return rc;
    }
    int ok = st->cas_out == 0 || cas == st->cas_out;
    if (st->op == OP_GET && st->value != NULL) {
        ok =
            ok && view.value_len == vl && memcmp(view.value, v, vl) == 0 && view.flags == st->flags;
    }
    if ((st->op == OP_INCR || st->op == OP_DECR) && st->value != NULL) {
        ok = ok && num == strtoull(st->value, NULL, 10);
    }
    if (!ok) {
        fprintf(stderr, "step '%s': output differs (cas %" PRIu64 ")\n", st->name, cas);
        CU_FAIL("step output differs");
    }
    return rc;
}

static int run_step(cb_store *s, const step *st)
{
    return run_raw(s, st, u8(st->key), len_of(st->key));
}

static void run_script(cb_store *s, const step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = run_step(s, &steps[i]);
        if (rc != steps[i].rc) {
            fprintf(stderr, "step '%s': rc %s, want %s\n", steps[i].name, cb_err_name(rc),
                    cb_err_name(steps[i].rc));
        }
        CU_ASSERT_EQUAL(rc, steps[i].rc);
        CU_ASSERT_EQUAL_FATAL(cb_store_check(s), CB_ERR_OK);
    }
}

static cb_store *new_store(uint64_t cap, uint32_t buckets, uint32_t value_max)
{
    cb_store_config cfg = {.memory_bytes_max = cap,
                           .value_bytes_max = value_max,
                           .buckets_initial = buckets,
                           .hash_seed = cb_test_seed()};
    cb_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_store_new(&cfg, NULL, &s), CB_ERR_OK);
    return s;
}

static cb_store_stats stats_of(const cb_store *s)
{
    cb_store_stats st;
    cb_store_stats_get(s, &st);
    return st;
}

/* Bytes an empty store with this many buckets counts (the struct and its table). */
static uint64_t fixed_bytes(uint32_t buckets)
{
    cb_store *s = new_store(1u << 30, buckets, 0);
    uint64_t b = stats_of(s).bytes_used;
    cb_store_del(s);
    return b;
}

/* ---- tests ---- */

static void test_store_config(void)
{
    static const struct {
        const char *name;
        cb_store_config cfg;
        int rc;
    } cases[] = {
        {"defaults", {.memory_bytes_max = 1u << 20}, CB_ERR_OK},
        {"cap too small", {.memory_bytes_max = 64}, CB_ERR_INVALID},
        {"value max 19", {.memory_bytes_max = 1u << 20, .value_bytes_max = 19}, CB_ERR_INVALID},
        {"value max 20", {.memory_bytes_max = 1u << 20, .value_bytes_max = 20}, CB_ERR_OK},
        {"value max limit",
         {.memory_bytes_max = 1u << 20, .value_bytes_max = CB_VALUE_BYTES_LIMIT},
         CB_ERR_OK},
        {"value max over",
         {.memory_bytes_max = 1u << 20, .value_bytes_max = CB_VALUE_BYTES_LIMIT + 1},
         CB_ERR_INVALID},
        {"buckets over",
         {.memory_bytes_max = UINT64_MAX, .buckets_initial = CB_STORE_BUCKETS_MAX + 1u},
         CB_ERR_INVALID},
        {"buckets 3 -> 4", {.memory_bytes_max = 1u << 20, .buckets_initial = 3}, CB_ERR_OK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cb_store *s = (cb_store *)&s;
        int rc = cb_store_new(&cases[i].cfg, NULL, &s);
        if (rc != cases[i].rc) {
            fprintf(stderr, "config '%s': %s\n", cases[i].name, cb_err_name(rc));
        }
        CU_ASSERT_EQUAL(rc, cases[i].rc);
        CU_ASSERT((rc == CB_ERR_OK) == (s != NULL));
        if (s != NULL && i == sizeof(cases) / sizeof(cases[0]) - 1) {
            CU_ASSERT_EQUAL(stats_of(s).buckets, 4);
        }
        cb_store_del(s);
    }
    CU_ASSERT_EQUAL(cb_store_new(NULL, NULL, &(cb_store *){NULL}), CB_ERR_INVALID);
    cb_store_del(NULL);
}

static void test_store_ops_semantics(void)
{
    static const step script[] = {
        {"set a", OP_SET, "a", "1", 0, 0, 1, 10, CB_ERR_OK, 0},
        {"get a", OP_GET, "a", "1", 0, 0, 1, 10, CB_ERR_OK, 0},
        {"get missing", OP_GET, "zz", NULL, 0, 0, 0, 10, CB_ERR_NOT_FOUND, 0},
        {"add existing", OP_ADD, "a", "x", 0, 0, 0, 10, CB_ERR_NOT_STORED, 0},
        {"add new", OP_ADD, "b", "BEE", 0, 0, 2, 10, CB_ERR_OK, 5},
        {"replace missing", OP_REPLACE, "c", "x", 0, 0, 0, 10, CB_ERR_NOT_STORED, 0},
        {"replace", OP_REPLACE, "b", "bee", 0, 0, 3, 10, CB_ERR_OK, 7},
        {"append", OP_APPEND, "b", "++", 0, 0, 4, 10, CB_ERR_OK, 0},
        {"prepend", OP_PREPEND, "b", "--", 0, 0, 5, 10, CB_ERR_OK, 0},
        {"get joined, flags kept", OP_GET, "b", "--bee++", 0, 0, 5, 10, CB_ERR_OK, 7},
        {"append missing", OP_APPEND, "c", "x", 0, 0, 0, 10, CB_ERR_NOT_STORED, 0},
        {"prepend missing", OP_PREPEND, "c", "x", 0, 0, 0, 10, CB_ERR_NOT_STORED, 0},
        {"cas missing", OP_CAS, "c", "x", 0, 1, 0, 10, CB_ERR_NOT_FOUND, 0},
        {"cas stale", OP_CAS, "b", "new", 0, 4, 0, 10, CB_ERR_EXISTS, 0},
        {"get after stale cas", OP_GET, "b", "--bee++", 0, 0, 5, 10, CB_ERR_OK, 7},
        {"cas match", OP_CAS, "b", "new", 0, 5, 6, 10, CB_ERR_OK, 9},
        {"get after cas", OP_GET, "b", "new", 0, 0, 6, 10, CB_ERR_OK, 9},
        {"delete", OP_DELETE, "b", NULL, 0, 0, 0, 10, CB_ERR_OK, 0},
        {"delete again", OP_DELETE, "b", NULL, 0, 0, 0, 10, CB_ERR_NOT_FOUND, 0},
        {"get deleted", OP_GET, "b", NULL, 0, 0, 0, 10, CB_ERR_NOT_FOUND, 0},
        {"set n", OP_SET, "n", "41", 0, 0, 7, 10, CB_ERR_OK, 3},
        {"incr", OP_INCR, "n", "42", 1, 0, 8, 10, CB_ERR_OK, 0},
        {"decr floors", OP_DECR, "n", "0", 50, 0, 9, 10, CB_ERR_OK, 0},
        {"get n, flags kept", OP_GET, "n", "0", 0, 0, 9, 10, CB_ERR_OK, 3},
        {"incr missing", OP_INCR, "c", NULL, 1, 0, 0, 10, CB_ERR_NOT_FOUND, 0},
        {"decr missing", OP_DECR, "c", NULL, 1, 0, 0, 10, CB_ERR_NOT_FOUND, 0},
        {"touch missing", OP_TOUCH, "c", NULL, 5, 0, 0, 10, CB_ERR_NOT_FOUND, 0},
        {"touch a ttl 100", OP_TOUCH, "a", NULL, 100, 0, 0, 20, CB_ERR_OK, 0},
        {"touch keeps cas", OP_GET, "a", "1", 0, 0, 1, 119, CB_ERR_OK, 0},
        {"touched a expires", OP_GET, "a", NULL, 0, 0, 0, 120, CB_ERR_NOT_FOUND, 0},
        {"set t ttl 100", OP_SET, "t", "x", 100, 0, 10, 0, CB_ERR_OK, 0},
        {"append keeps ttl", OP_APPEND, "t", "y", 0, 0, 11, 50, CB_ERR_OK, 0},
        {"incr on text", OP_INCR, "t", NULL, 1, 0, 0, 60, CB_ERR_NOT_NUMBER, 0},
        {"t before expiry", OP_GET, "t", "xy", 0, 0, 11, 99, CB_ERR_OK, 0},
        {"t at expiry", OP_GET, "t", NULL, 0, 0, 0, 100, CB_ERR_NOT_FOUND, 0},
        {"add over expired", OP_SET, "e", "1", 5, 0, 12, 0, CB_ERR_OK, 0},
        {"add succeeds at expiry", OP_ADD, "e", "2", 0, 0, 13, 5, CB_ERR_OK, 0},
        {"replace expired", OP_REPLACE, "t", "z", 0, 0, 0, 200, CB_ERR_NOT_STORED, 0},
        {"set empty value", OP_SET, "empty", "", 0, 0, 14, 0, CB_ERR_OK, 0},
        {"get empty value", OP_GET, "empty", "", 0, 0, 14, 0, CB_ERR_OK, 0},
        {"incr empty value", OP_INCR, "empty", NULL, 1, 0, 0, 0, CB_ERR_NOT_NUMBER, 0},
        {"flush", OP_FLUSH, NULL, NULL, 0, 0, 0, 0, CB_ERR_OK, 0},
        {"flushed n", OP_GET, "n", NULL, 0, 0, 0, 0, CB_ERR_NOT_FOUND, 0},
        {"flushed e: add", OP_ADD, "e", "3", 0, 0, 15, 0, CB_ERR_OK, 0},
        {"after flush", OP_GET, "e", "3", 0, 0, 15, 0, CB_ERR_OK, 0},
    };
    cb_store *s = new_store(1u << 20, 8, 0);
    run_script(s, script, sizeof(script) / sizeof(script[0]));
    cb_store_stats st = stats_of(s);
    CU_ASSERT_EQUAL(st.cas_badval, 1);
    CU_ASSERT_EQUAL(st.cas_misses, 1);
    CU_ASSERT_EQUAL(st.cas_hits, 1);
    CU_ASSERT_EQUAL(st.cmd_get, 14);
    CU_ASSERT_EQUAL(st.get_hits, 9);
    CU_ASSERT_EQUAL(st.get_misses, 5);
    CU_ASSERT_EQUAL(st.cmd_set, 5);
    CU_ASSERT_EQUAL(st.cmd_add, 4);
    CU_ASSERT_EQUAL(st.cmd_replace, 3);
    CU_ASSERT_EQUAL(st.cmd_append, 3);
    CU_ASSERT_EQUAL(st.cmd_prepend, 2);
    CU_ASSERT_EQUAL(st.cmd_cas, 3);
    CU_ASSERT_EQUAL(st.cmd_delete, 2);
    CU_ASSERT_EQUAL(st.cmd_incr, 4);
    CU_ASSERT_EQUAL(st.cmd_decr, 2);
    CU_ASSERT_EQUAL(st.cmd_touch, 2);
    CU_ASSERT_EQUAL(st.cmd_flush, 1);
    CU_ASSERT_EQUAL(st.total_items, 15);
    CU_ASSERT_EQUAL(st.expirations, 3); /* a, t, e */
    CU_ASSERT_EQUAL(st.reclaimed, 2);   /* n and e, met after the flush */
    cb_store_del(s);
}

/* Every operation rejects an empty key, a NULL key and a key of 251 bytes. */
static void test_store_key_value_errors(void)
{
    cb_store *s = new_store(1u << 20, 8, 64);
    char long_key[CB_KEY_BYTES_MAX + 2];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    for (int op = OP_GET; op < OP_FLUSH; op++) {
        step st = {"bad key", op, NULL, "v", 1, 0, 0, 0, 0, 0};
        CU_ASSERT_EQUAL(run_raw(s, &st, u8(""), 0), CB_ERR_INVALID);
        CU_ASSERT_EQUAL(run_raw(s, &st, NULL, 3), CB_ERR_INVALID);
        CU_ASSERT_EQUAL(run_raw(s, &st, u8(long_key), CB_KEY_BYTES_MAX + 1), CB_ERR_KEY_TOO_LONG);
        int rc = run_raw(s, &st, u8(long_key), CB_KEY_BYTES_MAX); /* 250 is fine */
        CU_ASSERT(rc != CB_ERR_KEY_TOO_LONG && rc != CB_ERR_INVALID);
    }
    CU_ASSERT_EQUAL(cb_store_get(s, u8("k"), 1, 0, NULL), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(cb_store_set(s, u8("k"), 1, NULL, 1, 0, 0, 0, NULL), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(cb_store_set(s, u8("k"), 1, NULL, 0, 0, 0, 0, NULL), CB_ERR_OK);

    uint8_t big[65] = {0};
    CU_ASSERT_EQUAL(cb_store_set(s, u8("v"), 1, big, 65, 0, 0, 0, NULL), CB_ERR_VALUE_TOO_LARGE);
    CU_ASSERT_EQUAL(cb_store_add(s, u8("v"), 1, big, 65, 0, 0, 0, NULL), CB_ERR_VALUE_TOO_LARGE);
    CU_ASSERT_EQUAL(cb_store_replace(s, u8("k"), 1, big, 65, 0, 0, 0, NULL),
                    CB_ERR_VALUE_TOO_LARGE);
    CU_ASSERT_EQUAL(cb_store_cas(s, u8("k"), 1, big, 65, 0, 0, 1, 0, NULL), CB_ERR_VALUE_TOO_LARGE);
    CU_ASSERT_EQUAL(cb_store_set(s, u8("v"), 1, big, 64, 0, 0, 0, NULL), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_append(s, u8("v"), 1, big, 1, 0, NULL), CB_ERR_VALUE_TOO_LARGE);
    CU_ASSERT_EQUAL(cb_store_prepend(s, u8("v"), 1, big, 1, 0, NULL), CB_ERR_VALUE_TOO_LARGE);
    CU_ASSERT_EQUAL(cb_store_append(s, u8("v"), 1, big, 0, 0, NULL), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_check(s), CB_ERR_OK);
    cb_store_del(s);
}

static void test_store_incr_decr_parsing(void)
{
    static const struct {
        const char *initial;
        int op;
        uint64_t delta;
        int rc;
        const char *result;
    } cases[] = {
        {"0", OP_INCR, 1, CB_ERR_OK, "1"},
        {"99", OP_INCR, 1, CB_ERR_OK, "100"},
        {"100", OP_DECR, 1, CB_ERR_OK, "99"},
        {"10", OP_DECR, 3, CB_ERR_OK, "7"},
        {"5", OP_DECR, 10, CB_ERR_OK, "0"},
        {"012", OP_INCR, 1, CB_ERR_OK, "13"},
        {"18446744073709551615", OP_INCR, 0, CB_ERR_OK, "18446744073709551615"},
        {"18446744073709551615", OP_INCR, 1, CB_ERR_OK, "0"},
        {"18446744073709551615", OP_INCR, 10, CB_ERR_OK, "9"},
        {"18446744073709551615", OP_DECR, UINT64_MAX, CB_ERR_OK, "0"},
        {"00000000000000000001", OP_INCR, 1, CB_ERR_OK, "2"},
        {"18446744073709551616", OP_INCR, 1, CB_ERR_NOT_NUMBER, NULL},
        {"99999999999999999999", OP_INCR, 1, CB_ERR_NOT_NUMBER, NULL},
        {"000000000000000000001", OP_INCR, 1, CB_ERR_NOT_NUMBER, NULL},
        {"12abc", OP_INCR, 1, CB_ERR_NOT_NUMBER, NULL},
        {"", OP_DECR, 1, CB_ERR_NOT_NUMBER, NULL},
        {" 12", OP_INCR, 1, CB_ERR_NOT_NUMBER, NULL},
        {"12 ", OP_INCR, 1, CB_ERR_NOT_NUMBER, NULL},
        {"-1", OP_INCR, 1, CB_ERR_NOT_NUMBER, NULL},
        {"+1", OP_DECR, 1, CB_ERR_NOT_NUMBER, NULL},
    };
    cb_store *s = new_store(1u << 20, 8, 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CU_ASSERT_EQUAL_FATAL(cb_store_set(s, u8("n"), 1, u8(cases[i].initial),
                                           strlen(cases[i].initial), 0, 0, 0, NULL),
                              CB_ERR_OK);
        step st = {cases[i].initial, cases[i].op, "n", NULL, cases[i].delta, 0, 0, 0, 0, 0};
        int rc = run_step(s, &st);
        if (rc != cases[i].rc) {
            fprintf(stderr, "incr/decr '%s': %s\n", cases[i].initial, cb_err_name(rc));
        }
        CU_ASSERT_EQUAL(rc, cases[i].rc);
        cb_store_view v;
        CU_ASSERT_EQUAL_FATAL(cb_store_get(s, u8("n"), 1, 0, &v), CB_ERR_OK);
        const char *want = cases[i].result != NULL ? cases[i].result : cases[i].initial;
        CU_ASSERT(v.value_len == strlen(want) && memcmp(v.value, want, v.value_len) == 0);
    }
    cb_store_del(s);
}

/* Every mutation draws the next CAS; failures draw none; the same calls give the same CAS. */
static void test_store_cas_counter(void)
{
    cb_store *s = new_store(1u << 20, 8, 0);
    uint64_t cas = 0;
    for (uint64_t i = 1; i <= 50; i++) {
        CU_ASSERT_EQUAL(cb_store_set(s, u8("k"), 1, u8("1"), 1, 0, 0, 0, &cas), CB_ERR_OK);
        CU_ASSERT_EQUAL(cas, 2 * i - 1);
        CU_ASSERT_EQUAL(cb_store_add(s, u8("k"), 1, u8("1"), 1, 0, 0, 0, &cas), CB_ERR_NOT_STORED);
        CU_ASSERT_EQUAL(cb_store_incr(s, u8("k"), 1, 1, 0, NULL, &cas), CB_ERR_OK);
        CU_ASSERT_EQUAL(cas, 2 * i);
    }
    cb_store_del(s);
}

/* Fill to exactly 10 items, use some, insert more: the least recently used go first. */
static void test_store_lru_order(void)
{
    uint64_t item = cb_store_item_overhead_bytes() + 3 + 10;
    uint64_t cap = fixed_bytes(64) + 10 * item;
    cb_store *s = new_store(cap, 64, 0);
    char key[4];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        CU_ASSERT_EQUAL(cb_store_set(s, u8(key), 3, u8("0123456789"), 10, 0, 0, 0, NULL),
                        CB_ERR_OK);
    }
    CU_ASSERT_EQUAL(stats_of(s).bytes_used, cap);
    cb_store_view v;
    CU_ASSERT_EQUAL(cb_store_get(s, u8("k00"), 3, 0, &v), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_get(s, u8("k01"), 3, 0, &v), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_touch(s, u8("k02"), 3, 0, 0), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_set(s, u8("k03"), 3, u8("abcdefghij"), 10, 0, 0, 0, NULL), CB_ERR_OK);
    CU_ASSERT_EQUAL(stats_of(s).evictions, 0);
    for (int i = 10; i < 14; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        CU_ASSERT_EQUAL(cb_store_set(s, u8(key), 3, u8("0123456789"), 10, 0, 0, 0, NULL),
                        CB_ERR_OK);
    }
    /* LRU now, oldest first: 08 09 00 01 02 03 10 11 12 13 (04..07 evicted). */
    CU_ASSERT_EQUAL(stats_of(s).evictions, 4);
    static const char expect_present[] = {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1};
    for (int i = 0; i < 14; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        CU_ASSERT_EQUAL(cb_store_get(s, u8(key), 3, 0, &v) == CB_ERR_OK, expect_present[i]);
    }
    /* The gets above made the order 00 01 02 03 08 ... 13; an item 13 bytes larger evicts two. */
    uint8_t big[10 + 13];
    memset(big, 'b', sizeof(big));
    CU_ASSERT_EQUAL(cb_store_set(s, u8("k99"), 3, big, sizeof(big), 0, 0, 0, NULL), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_get(s, u8("k00"), 3, 0, &v), CB_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(cb_store_get(s, u8("k01"), 3, 0, &v), CB_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(cb_store_get(s, u8("k02"), 3, 0, &v), CB_ERR_OK);
    CU_ASSERT_EQUAL(stats_of(s).evictions, 6);
    CU_ASSERT_EQUAL(stats_of(s).bytes_used, cap - item + 13);
    CU_ASSERT_EQUAL(cb_store_check(s), CB_ERR_OK);
    cb_store_del(s);
}

/* An item that cannot fit even in an empty store fails without evicting anything. */
static void test_store_too_big_evicts_nothing(void)
{
    uint64_t cap = fixed_bytes(16) + 4096;
    cb_store *s = new_store(cap, 16, 0);
    uint8_t value[4096] = {0};
    for (int i = 0; i < 8; i++) {
        uint8_t key = (uint8_t)('a' + i);
        CU_ASSERT_EQUAL(cb_store_set(s, &key, 1, value, 100, 0, 0, 0, NULL), CB_ERR_OK);
    }
    cb_store_stats before = stats_of(s);
    size_t fits = 4096 - cb_store_item_overhead_bytes() - 1;
    CU_ASSERT_EQUAL(cb_store_set(s, u8("a"), 1, value, fits + 1, 0, 0, 0, NULL), CB_ERR_NOMEM);
    cb_store_stats after = stats_of(s);
    CU_ASSERT_EQUAL(after.items, before.items);
    CU_ASSERT_EQUAL(after.evictions, 0);
    cb_store_view v;
    CU_ASSERT_EQUAL(cb_store_get(s, u8("a"), 1, 0, &v), CB_ERR_OK); /* old item kept */
    CU_ASSERT_EQUAL(cb_store_set(s, u8("z"), 1, value, fits, 0, 0, 0, NULL), CB_ERR_OK);
    after = stats_of(s);
    CU_ASSERT_EQUAL(after.items, 1);
    CU_ASSERT_EQUAL(after.evictions, 8);
    CU_ASSERT_EQUAL(after.bytes_used, cap);
    cb_store_del(s);
}

/* expire_ns = now + ttl; at expire_ns - 1 the item is there, at expire_ns it is gone. */
static void test_store_ttl_boundary_lazy(void)
{
    cb_store *s = new_store(1u << 20, 8, 0);
    cb_store_view v;
    CU_ASSERT_EQUAL(cb_store_set(s, u8("k"), 1, u8("v"), 1, 0, 100, 1000, NULL), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_get(s, u8("k"), 1, 1099, &v), CB_ERR_OK);
    CU_ASSERT_EQUAL(v.expire_ns, 1100);
    CU_ASSERT_EQUAL(stats_of(s).items, 1);
    CU_ASSERT_EQUAL(cb_store_get(s, u8("k"), 1, 1100, &v), CB_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(stats_of(s).items, 0); /* freed on access */
    CU_ASSERT_EQUAL(stats_of(s).expirations, 1);
    /* Delete, touch and incr see the same boundary. */
    CU_ASSERT_EQUAL(cb_store_set(s, u8("k"), 1, u8("7"), 1, 0, 10, 0, NULL), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_incr(s, u8("k"), 1, 1, 9, NULL, NULL), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_touch(s, u8("k"), 1, 0, 10), CB_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(cb_store_set(s, u8("k"), 1, u8("7"), 1, 0, 10, 0, NULL), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_delete(s, u8("k"), 1, 10), CB_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(stats_of(s).expirations, 3);
    /* ttl 0 never expires, even at the end of time; a huge ttl saturates to "never". */
    CU_ASSERT_EQUAL(cb_store_set(s, u8("n"), 1, u8("v"), 1, 0, 0, 5, NULL), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_get(s, u8("n"), 1, UINT64_MAX, &v), CB_ERR_OK);
    CU_ASSERT_EQUAL(v.expire_ns, NS_NONE);
    CU_ASSERT_EQUAL(cb_store_set(s, u8("h"), 1, u8("v"), 1, 0, UINT64_MAX - 5, 10, NULL),
                    CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_get(s, u8("h"), 1, UINT64_MAX - 1, &v), CB_ERR_OK);
    CU_ASSERT_EQUAL(v.expire_ns, NS_NONE);
    CU_ASSERT_EQUAL(cb_store_set(s, u8("m"), 1, u8("v"), 1, 0, UINT64_MAX - 11, 10, NULL),
                    CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_get(s, u8("m"), 1, UINT64_MAX - 2, &v), CB_ERR_OK);
    CU_ASSERT_EQUAL(v.expire_ns, UINT64_MAX - 1);
    CU_ASSERT_EQUAL(cb_store_get(s, u8("m"), 1, UINT64_MAX - 1, &v), CB_ERR_NOT_FOUND);
    cb_store_del(s);
}

/* The sweep frees expired items, bounded per call, and counts them. */
static void test_store_ttl_sweep(void)
{
    cb_store_config cfg = {.memory_bytes_max = 1u << 22,
                           .buckets_initial = 256,
                           .sweep_buckets_max = 8,
                           .hash_seed = cb_test_seed()};
    cb_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_store_new(&cfg, NULL, &s), CB_ERR_OK);
    char key[16];
    for (int i = 0; i < 200; i++) {
        int n = snprintf(key, sizeof(key), "key%d", i);
        uint64_t ttl = i % 2 ? 0 : 500;
        CU_ASSERT_EQUAL(cb_store_set(s, u8(key), (size_t)n, u8("v"), 1, 0, ttl, 1000, NULL),
                        CB_ERR_OK);
    }
    CU_ASSERT_EQUAL(stats_of(s).rehashing, 0);
    size_t freed = 0;
    for (int i = 0; i < 32; i++) { /* one whole cycle: 256 buckets, 8 per call */
        freed += cb_store_sweep(s, 1499);
    }
    CU_ASSERT_EQUAL(freed, 0);
    size_t first = cb_store_sweep(s, 1500);
    CU_ASSERT(first < 100);
    freed = first;
    for (int i = 1; i < 32; i++) {
        freed += cb_store_sweep(s, 1500);
    }
    CU_ASSERT_EQUAL(freed, 100);
    CU_ASSERT_EQUAL(cb_store_sweep(s, 1500), 0);
    cb_store_stats st = stats_of(s);
    CU_ASSERT_EQUAL(st.items, 100);
    CU_ASSERT_EQUAL(st.expirations, 100);
    CU_ASSERT_EQUAL(st.get_misses, 0);
    CU_ASSERT_EQUAL(cb_store_check(s), CB_ERR_OK);
    /* Flushed items are reclaimed by the sweep and counted apart. */
    cb_store_flush(s);
    CU_ASSERT_EQUAL(stats_of(s).items, 100);
    freed = 0;
    for (int i = 0; i < 32; i++) {
        freed += cb_store_sweep(s, 1500);
    }
    CU_ASSERT_EQUAL(freed, 100);
    st = stats_of(s);
    CU_ASSERT_EQUAL(st.items, 0);
    CU_ASSERT_EQUAL(st.reclaimed, 100);
    CU_ASSERT_EQUAL(st.bytes_used, fixed_bytes(256));
    cb_store_del(s);
}

/* Check every key that should be there is, and every deleted one is not. */
static void resize_verify(cb_store *s, int inserted)
{
    char key[16];
    cb_store_view v;
    CU_ASSERT_EQUAL_FATAL(cb_store_check(s), CB_ERR_OK);
    for (int j = 0; j < inserted; j++) {
        int n = snprintf(key, sizeof(key), "key%d", j);
        int want = j % 3 == 1 ? CB_ERR_NOT_FOUND : CB_ERR_OK;
        CU_ASSERT_EQUAL_FATAL(cb_store_get(s, u8(key), (size_t)n, 0, &v), want);
        if (want == CB_ERR_OK) {
            CU_ASSERT_FATAL(v.value_len == (size_t)n && memcmp(v.value, key, v.value_len) == 0);
        }
    }
}

/* Grow from 4 buckets to 8192 while checking that every key stays reachable mid-rehash. */
static void test_store_resize_reachable(void)
{
    cb_store *s = new_store(1u << 26, 4, 0);
    char key[16];
    int rehash_checks = 0;
    uint64_t was_rehashing = 0;
    for (int i = 0; i < 6000; i++) {
        int n = snprintf(key, sizeof(key), "key%d", i);
        CU_ASSERT_EQUAL_FATAL(
            cb_store_set(s, u8(key), (size_t)n, u8(key), (size_t)n, 0, 0, 0, NULL), CB_ERR_OK);
        cb_store_stats st = stats_of(s);
        CU_ASSERT_FATAL(st.bytes_used <= st.memory_bytes_max);
        /* Verify keys 0..i-1 on the first op of each rehash and every 97th op during one. */
        if (st.rehashing && (!was_rehashing || i % 97 == 0)) {
            resize_verify(s, i);
            rehash_checks++;
        }
        was_rehashing = st.rehashing;
        if (i % 3 == 1) {
            CU_ASSERT_EQUAL_FATAL(cb_store_delete(s, u8(key), (size_t)n, 0), CB_ERR_OK);
        }
    }
    cb_store_stats st = stats_of(s);
    CU_ASSERT(rehash_checks >= 10);
    CU_ASSERT(st.table_grows >= 10);
    CU_ASSERT_EQUAL(st.items, 4000);
    resize_verify(s, 6000);
    cb_store_del(s);
}

/* ---- random workload against a reference model ---- */

enum { WL_KEYS = 300, WL_VALUE_MAX = 4096 };

typedef struct wl_entry {
    uint8_t key[CB_KEY_BYTES_MAX];
    size_t key_len;
    int present;
    uint8_t value[WL_VALUE_MAX];
    size_t value_len;
    uint32_t flags;
    uint64_t cas;
    uint64_t expire_ns;
} wl_entry;

typedef struct wl_model {
    wl_entry e[WL_KEYS];
    uint64_t cas_next;
} wl_model;

typedef struct wl_op {
    int op;
    size_t k;
    uint8_t value[WL_VALUE_MAX];
    size_t value_len;
    uint32_t flags;
    uint64_t arg; /* ttl or delta */
    uint64_t cas_in;
    uint64_t now_ns;
} wl_op;

static uint64_t model_expire(uint64_t now_ns, uint64_t ttl_ns)
{
    if (ttl_ns == 0 || now_ns + ttl_ns < now_ns || now_ns + ttl_ns == UINT64_MAX) {
        return UINT64_MAX;
    }
    return now_ns + ttl_ns;
}

static int model_live(const wl_entry *e, uint64_t now_ns)
{
    return e->present && (e->expire_ns == UINT64_MAX || e->expire_ns > now_ns);
}

/* The reference parse: a NUL-terminated copy through strtoull. */
static int model_number(const wl_entry *e, uint64_t *out)
{
    char buf[32];
    if (e->value_len == 0 || e->value_len > 20) {
        return 0;
    }
    for (size_t i = 0; i < e->value_len; i++) {
        if (e->value[i] < '0' || e->value[i] > '9') {
            return 0;
        }
    }
    memcpy(buf, e->value, e->value_len);
    buf[e->value_len] = '\0';
    errno = 0;
    *out = strtoull(buf, NULL, 10);
    return errno == 0;
}

/* The rc the model predicts, treating the key as missing when `absent`. */
static int model_expect(const wl_model *m, const wl_op *o, int absent)
{
    const wl_entry *e = &m->e[o->k];
    int live = !absent && model_live(e, o->now_ns);
    uint64_t n;
    switch (o->op) {
    case OP_GET:
    case OP_DELETE:
    case OP_TOUCH:
        return live ? CB_ERR_OK : CB_ERR_NOT_FOUND;
    case OP_SET:
        return CB_ERR_OK;
    case OP_ADD:
        return live ? CB_ERR_NOT_STORED : CB_ERR_OK;
    case OP_REPLACE:
        return live ? CB_ERR_OK : CB_ERR_NOT_STORED;
    case OP_APPEND:
    case OP_PREPEND:
        if (!live) {
            return CB_ERR_NOT_STORED;
        }
        return e->value_len + o->value_len > WL_VALUE_MAX ? CB_ERR_VALUE_TOO_LARGE : CB_ERR_OK;
    case OP_CAS:
        if (!live) {
            return CB_ERR_NOT_FOUND;
        }
        return e->cas == o->cas_in ? CB_ERR_OK : CB_ERR_EXISTS;
    case OP_INCR:
    case OP_DECR:
        if (!live) {
            return CB_ERR_NOT_FOUND;
        }
        return model_number(e, &n) ? CB_ERR_OK : CB_ERR_NOT_NUMBER;
    default:
        return CB_ERR_OK;
    }
}

static void model_write(wl_model *m, wl_entry *e, const uint8_t *head, size_t head_len,
                        const uint8_t *tail, size_t tail_len)
{
    uint8_t buf[WL_VALUE_MAX];
    if (head_len > 0) {
        memcpy(buf, head, head_len);
    }
    if (tail_len > 0) {
        memcpy(buf + head_len, tail, tail_len);
    }
    memcpy(e->value, buf, head_len + tail_len);
    e->value_len = head_len + tail_len;
    e->present = 1;
    e->cas = m->cas_next++;
}

/* Apply a successful op to the model. */
static void model_apply(wl_model *m, const wl_op *o)
{
    wl_entry *e = &m->e[o->k];
    uint64_t n = 0;
    char digits[24];
    switch (o->op) {
    case OP_SET:
    case OP_ADD:
    case OP_REPLACE:
    case OP_CAS:
        model_write(m, e, o->value, o->value_len, NULL, 0);
        e->flags = o->flags;
        e->expire_ns = model_expire(o->now_ns, o->arg);
        break;
    case OP_APPEND:
        model_write(m, e, e->value, e->value_len, o->value, o->value_len);
        break;
    case OP_PREPEND:
        model_write(m, e, o->value, o->value_len, e->value, e->value_len);
        break;
    case OP_INCR:
    case OP_DECR:
        CU_ASSERT_FATAL(model_number(e, &n));
        n = o->op == OP_INCR ? n + o->arg : (n < o->arg ? 0 : n - o->arg);
        snprintf(digits, sizeof(digits), "%" PRIu64, n);
        model_write(m, e, u8(digits), strlen(digits), NULL, 0);
        break;
    case OP_TOUCH:
        e->expire_ns = model_expire(o->now_ns, o->arg);
        break;
    case OP_DELETE:
        e->present = 0;
        break;
    case OP_FLUSH:
        for (size_t i = 0; i < WL_KEYS; i++) {
            m->e[i].present = 0;
        }
        break;
    default:
        break;
    }
}

static void wl_init_keys(wl_model *m, cb_rng *rng)
{
    memset(m, 0, sizeof(*m));
    m->cas_next = 1;
    for (size_t i = 0; i < WL_KEYS; i++) {
        wl_entry *e = &m->e[i];
        int unique = 0;
        while (!unique) {
            e->key_len = (size_t)cb_rng_range(rng, 1, CB_KEY_BYTES_MAX);
            for (size_t b = 0; b < e->key_len; b++) {
                e->key[b] = (uint8_t)cb_rng_next(rng);
            }
            unique = 1;
            for (size_t j = 0; j < i; j++) {
                unique = unique && !(m->e[j].key_len == e->key_len &&
                                     memcmp(m->e[j].key, e->key, e->key_len) == 0);
            }
        }
    }
}

static void wl_draw(cb_rng *rng, const wl_model *m, wl_op *o, uint64_t *now_ns)
{
    static const int weights[OP_COUNT] = {30, 20, 6, 6, 5, 5, 6, 6, 5, 5, 6, 0};
    *now_ns += cb_rng_below(rng, 1000);
    o->now_ns = *now_ns;
    o->k = (size_t)cb_rng_below(rng, WL_KEYS);
    uint64_t pick = cb_rng_below(rng, 100);
    o->op = 0;
    while (pick >= (uint64_t)weights[o->op]) {
        pick -= (uint64_t)weights[o->op];
        o->op++;
    }
    if (cb_rng_chance_ppm(rng, 1000)) {
        o->op = OP_FLUSH;
    }
    o->flags = (uint32_t)cb_rng_next(rng);
    o->arg = cb_rng_chance_ppm(rng, 500000) ? 0 : cb_rng_range(rng, 1, 200000);
    if (o->op == OP_INCR || o->op == OP_DECR) {
        o->arg = cb_rng_chance_ppm(rng, 100000) ? UINT64_MAX - cb_rng_below(rng, 3)
                                                : cb_rng_below(rng, 1000);
    }
    o->cas_in = cb_rng_chance_ppm(rng, 500000) ? m->e[o->k].cas : cb_rng_below(rng, 50);
    uint64_t shape = cb_rng_below(rng, 10);
    if (shape == 0) { /* a number, for incr/decr */
        o->value_len = (size_t)snprintf((char *)o->value, 24, "%" PRIu64,
                                        cb_rng_below(rng, 3) ? cb_rng_below(rng, 100000)
                                                             : UINT64_MAX - cb_rng_below(rng, 5));
    } else {
        o->value_len = (size_t)cb_rng_below(rng, shape < 8 ? 300 : WL_VALUE_MAX + 1);
        for (size_t b = 0; b < o->value_len; b++) {
            o->value[b] = (uint8_t)cb_rng_next(rng);
        }
    }
}

/* Run `o` on the store; check the outputs of a hit or a store against the model. */
static int wl_run(cb_store *s, const wl_model *m, const wl_op *o, const wl_entry *e, uint64_t *cas)
{
    cb_store_view v;
    uint64_t n = 0, want_n;
    int rc = CB_ERR_OK;
    *cas = 0;
    switch (o->op) {
    case OP_GET:
        rc = cb_store_get(s, e->key, e->key_len, o->now_ns, &v);
        if (rc == CB_ERR_OK) {
            CU_ASSERT_FATAL(model_live(e, o->now_ns));
            CU_ASSERT_FATAL(v.value_len == e->value_len &&
                            memcmp(v.value, e->value, e->value_len) == 0);
            CU_ASSERT_FATAL(v.cas == e->cas && v.flags == e->flags && v.expire_ns == e->expire_ns);
        }
        return rc;
    case OP_SET:
        return cb_store_set(s, e->key, e->key_len, o->value, o->value_len, o->flags, o->arg,
                            o->now_ns, cas);
    case OP_ADD:
        return cb_store_add(s, e->key, e->key_len, o->value, o->value_len, o->flags, o->arg,
                            o->now_ns, cas);
    case OP_REPLACE:
        return cb_store_replace(s, e->key, e->key_len, o->value, o->value_len, o->flags, o->arg,
                                o->now_ns, cas);
    case OP_CAS:
        return cb_store_cas(s, e->key, e->key_len, o->value, o->value_len, o->flags, o->arg,
                            o->cas_in, o->now_ns, cas);
    case OP_APPEND:
        return cb_store_append(s, e->key, e->key_len, o->value, o->value_len, o->now_ns, cas);
    case OP_PREPEND:
        return cb_store_prepend(s, e->key, e->key_len, o->value, o->value_len, o->now_ns, cas);
    case OP_DELETE:
        return cb_store_delete(s, e->key, e->key_len, o->now_ns);
    case OP_TOUCH:
        return cb_store_touch(s, e->key, e->key_len, o->arg, o->now_ns);
    case OP_INCR:
    case OP_DECR:
        rc = o->op == OP_INCR ? cb_store_incr(s, e->key, e->key_len, o->arg, o->now_ns, &n, cas)
                              : cb_store_decr(s, e->key, e->key_len, o->arg, o->now_ns, &n, cas);
        if (rc == CB_ERR_OK && model_number(e, &want_n)) {
            want_n = o->op == OP_INCR ? want_n + o->arg : (want_n < o->arg ? 0 : want_n - o->arg);
            CU_ASSERT_FATAL(n == want_n);
        }
        return rc;
    case OP_FLUSH:
        cb_store_flush(s);
        return CB_ERR_OK;
    }
    (void)m;
    return rc;
}

/*
 * 10^5 random operations. `exact`: the cap is large, nothing is evicted, and every rc must be
 * the model's. Otherwise the store may also answer as if an item were missing (it was
 * evicted), but a hit must still match the model exactly, and bytes_used <= cap after every
 * operation.
 */
static void workload(uint64_t cap, uint32_t buckets, int exact)
{
    static wl_model m;
    static wl_op o;
    cb_rng rng;
    cb_rng_init(&rng, cb_test_seed() ^ (uint64_t)exact);
    wl_init_keys(&m, &rng);
    cb_store_config cfg = {.memory_bytes_max = cap,
                           .value_bytes_max = WL_VALUE_MAX,
                           .buckets_initial = buckets,
                           .sweep_buckets_max = 16,
                           .hash_seed = cb_rng_next(&rng)};
    cb_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_store_new(&cfg, NULL, &s), CB_ERR_OK);
    uint64_t now_ns = 0, cas;
    for (int i = 0; i < 100000; i++) {
        wl_draw(&rng, &m, &o, &now_ns);
        wl_entry *e = &m.e[o.k];
        int want = model_expect(&m, &o, 0);
        int rc = wl_run(s, &m, &o, e, &cas);
        if (rc != want && (exact || rc != model_expect(&m, &o, 1))) {
            fprintf(stderr, "op %d (%d on key %zu): rc %s, model %s\n", i, o.op, o.k,
                    cb_err_name(rc), cb_err_name(want));
            CU_FAIL_FATAL("store and model disagree");
        }
        if (rc != want) {
            e->present = 0; /* evicted: the store answered as if the key were missing */
        }
        if (rc == CB_ERR_OK) {
            uint64_t cas_model = m.cas_next;
            model_apply(&m, &o);
            CU_ASSERT_FATAL(cas == 0 || cas == cas_model);
        }
        if (i % 64 == 0) {
            (void)cb_store_sweep(s, now_ns); /* a count; no error to handle */
        }
        cb_store_stats st = stats_of(s);
        CU_ASSERT_FATAL(st.bytes_used <= st.memory_bytes_max);
        if (i % 2000 == 0) {
            CU_ASSERT_EQUAL_FATAL(cb_store_check(s), CB_ERR_OK);
        }
    }
    cb_store_stats st = stats_of(s);
    CU_ASSERT_EQUAL_FATAL(cb_store_check(s), CB_ERR_OK);
    if (exact) {
        CU_ASSERT_EQUAL(st.evictions, 0);
    } else {
        CU_ASSERT(st.evictions > 1000);
        CU_ASSERT(st.table_grows > 0);
    }
    CU_ASSERT(st.expirations > 0 && st.get_hits > 0 && st.reclaimed > 0);
    cb_store_del(s);
}

static void test_store_workload_cap(void)
{
    workload(64 * 1024, 4, 0);
}

static void test_store_workload_model(void)
{
    workload(64u << 20, 4, 1);
}

/*
 * Under eviction, against an array LRU: sets, gets and deletes of random sizes (some too big
 * for the store) on a fixed-size table. Hits, item counts, bytes and evictions must agree.
 */
enum { LRU_KEYS = 400 };

typedef struct lru_entry {
    int present;
    uint64_t last_used;
    uint64_t bytes;
    uint32_t value_len;
    uint32_t fill;
} lru_entry;

static size_t lru_victim(const lru_entry *e)
{
    size_t victim = LRU_KEYS;
    for (size_t i = 0; i < LRU_KEYS; i++) {
        if (e[i].present && (victim == LRU_KEYS || e[i].last_used < e[victim].last_used)) {
            victim = i;
        }
    }
    return victim;
}

static void test_store_lru_model(void)
{
    static lru_entry e[LRU_KEYS];
    static uint8_t value[40000];
    memset(e, 0, sizeof(e));
    cb_rng rng;
    cb_rng_init(&rng, cb_test_seed() + 7);
    uint64_t fixed = fixed_bytes(1024), room = 32 * 1024, used = 0, evictions = 0, tick = 0;
    cb_store *s = new_store(fixed + room, 1024, 64 * 1024);
    char key[8];
    for (int i = 0; i < 20000; i++) {
        size_t k = (size_t)cb_rng_below(&rng, LRU_KEYS);
        size_t key_len = (size_t)snprintf(key, sizeof(key), "%zu", k);
        uint64_t op = cb_rng_below(&rng, 10);
        if (op < 5) {
            cb_store_view v;
            int rc = cb_store_get(s, u8(key), key_len, 0, &v);
            CU_ASSERT_EQUAL_FATAL(rc == CB_ERR_OK, e[k].present);
            if (rc == CB_ERR_OK) {
                CU_ASSERT_FATAL(v.value_len == e[k].value_len && v.flags == e[k].fill);
                e[k].last_used = ++tick;
            }
        } else if (op < 9) {
            uint32_t vlen =
                (uint32_t)(cb_rng_chance_ppm(&rng, 5000) ? 33000 + cb_rng_below(&rng, 5000)
                                                         : cb_rng_below(&rng, 600));
            uint64_t need = cb_store_item_overhead_bytes() + key_len + vlen;
            uint32_t fill = (uint32_t)cb_rng_next(&rng);
            memset(value, (int)(fill & 0xff), vlen);
            int rc = cb_store_set(s, u8(key), key_len, value, vlen, fill, 0, 0, NULL);
            if (need > room) {
                CU_ASSERT_EQUAL_FATAL(rc, CB_ERR_NOMEM);
                continue;
            }
            CU_ASSERT_EQUAL_FATAL(rc, CB_ERR_OK);
            if (e[k].present) {
                used -= e[k].bytes;
                e[k].present = 0;
            }
            while (used + need > room) {
                size_t victim = lru_victim(e);
                used -= e[victim].bytes;
                e[victim].present = 0;
                evictions++;
            }
            e[k] = (lru_entry){1, ++tick, need, vlen, fill};
            used += need;
        } else {
            int rc = cb_store_delete(s, u8(key), key_len, 0);
            CU_ASSERT_EQUAL_FATAL(rc == CB_ERR_OK, e[k].present);
            used -= e[k].present ? e[k].bytes : 0;
            e[k].present = 0;
        }
        cb_store_stats st = stats_of(s);
        CU_ASSERT_EQUAL_FATAL(st.bytes_used, fixed + used);
        CU_ASSERT_EQUAL_FATAL(st.evictions, evictions);
    }
    CU_ASSERT(evictions > 1000);
    CU_ASSERT_EQUAL(stats_of(s).table_grows, 0);
    CU_ASSERT_EQUAL(cb_store_check(s), CB_ERR_OK);
    cb_store_del(s);
}

/* ---- allocation failures ---- */

/* Fingerprint of what a client can see for the script's keys (values, CAS, flags). */
static size_t oom_fingerprint(cb_store *s, uint8_t *out, size_t out_cap)
{
    static const char *keys[] = {"a", "b", "c", "d", "e", "f", "g", "n", "x"};
    size_t off = 0;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        cb_store_view v = {0};
        int rc = cb_store_get(s, u8(keys[i]), 1, 0, &v);
        CU_ASSERT_FATAL(off + 32 + v.value_len <= out_cap);
        memcpy(out + off, &rc, sizeof(rc));
        off += sizeof(rc);
        if (rc == CB_ERR_OK) {
            memcpy(out + off, &v.cas, 8);
            memcpy(out + off + 8, &v.flags, 4);
            memcpy(out + off + 12, v.value, v.value_len);
            off += 12 + v.value_len;
        }
    }
    cb_store_stats st = stats_of(s);
    memcpy(out + off, &st.items, 8);
    return off + 8;
}

/* A write of the same key and value lengths reuses the item (no allocation at all), and
 * still behaves as a new item: a new CAS, the value, flags and TTL written, the LRU head. */
static void test_store_overwrite_in_place(void)
{
    cb_alloc_failing f;
    cb_alloc_failing_init(&f, UINT64_MAX, 0);
    cb_store_config cfg = {.memory_bytes_max = 4096, .buckets_initial = 16};
    cb_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_store_new(&cfg, &f.alloc, &s), CB_ERR_OK);
    uint64_t cas1 = 0, cas2 = 0, v = 0;
    CU_ASSERT_EQUAL(cb_store_set(s, u8("k"), 1, u8("abcde"), 5, 1, 0, 0, &cas1), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_set(s, u8("j"), 1, u8("12345"), 5, 0, 0, 0, NULL), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_set(s, u8("n"), 1, u8("10"), 2, 0, 0, 0, NULL), CB_ERR_OK);
    uint64_t used = stats_of(s).bytes_used;
    f.fail_at = f.calls; /* every allocation from here on fails */
    f.fail_count = UINT64_MAX;
    CU_ASSERT_EQUAL(cb_store_set(s, u8("k"), 1, u8("vwxyz"), 5, 7, 0, 10, &cas2), CB_ERR_OK);
    CU_ASSERT(cas2 > cas1);
    CU_ASSERT_EQUAL(cb_store_incr(s, u8("n"), 1, 1, 10, &v, NULL), CB_ERR_OK); /* "10" -> "11" */
    CU_ASSERT_EQUAL(v, 11);
    /* A different length needs a new item: refused, the old value kept. */
    CU_ASSERT_EQUAL(cb_store_set(s, u8("k"), 1, u8("longer"), 6, 0, 0, 10, NULL), CB_ERR_NOMEM);
    CU_ASSERT_EQUAL(cb_store_append(s, u8("k"), 1, u8("!"), 1, 10, NULL), CB_ERR_NOMEM);
    f.fail_count = 0;
    cb_store_view view = {0};
    CU_ASSERT_EQUAL_FATAL(cb_store_get(s, u8("k"), 1, 10, &view), CB_ERR_OK);
    CU_ASSERT_EQUAL(view.cas, cas2);
    CU_ASSERT_EQUAL(view.flags, 7);
    CU_ASSERT_EQUAL(view.value_len, 5);
    CU_ASSERT(memcmp(view.value, "vwxyz", 5) == 0);
    CU_ASSERT_EQUAL_FATAL(cb_store_get(s, u8("n"), 1, 10, &view), CB_ERR_OK);
    CU_ASSERT(memcmp(view.value, "11", 2) == 0);
    CU_ASSERT_EQUAL(stats_of(s).bytes_used, used);
    CU_ASSERT_EQUAL(cb_store_check(s), CB_ERR_OK);
    /* The rewritten "k" is younger than "j": filling the store with items of j's size
     * evicts "j" first, and one at a time. */
    CU_ASSERT_EQUAL(cb_store_set(s, u8("n"), 1, u8("10"), 2, 0, 0, 20, NULL), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_set(s, u8("k"), 1, u8("ABCDE"), 5, 0, 0, 20, NULL), CB_ERR_OK);
    char key[16];
    for (int i = 0; stats_of(s).evictions == 0; i++) { /* a get would bump "j" itself */
        CU_ASSERT_FATAL(i < 100);
        snprintf(key, sizeof key, "%02d", i); /* 2 + 4 bytes: the size of "j" (1 + 5) */
        CU_ASSERT_EQUAL_FATAL(cb_store_set(s, u8(key), 2, u8("1234"), 4, 0, 0, 30, NULL),
                              CB_ERR_OK);
    }
    CU_ASSERT_EQUAL(stats_of(s).evictions, 1);
    CU_ASSERT_EQUAL(cb_store_get(s, u8("j"), 1, 30, &view), CB_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(cb_store_get(s, u8("k"), 1, 30, &view), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_store_check(s), CB_ERR_OK);
    cb_store_del(s);
    CU_ASSERT_EQUAL(f.live, 0);
}

static void test_store_oom(void)
{
    static const step script[] = {
        {"set a", OP_SET, "a", "alpha", 0, 0, 1, 0, CB_ERR_OK, 1},
        {"set b", OP_SET, "b", "beta", 0, 0, 2, 0, CB_ERR_OK, 2},
        {"add c", OP_ADD, "c", "gamma", 0, 0, 3, 0, CB_ERR_OK, 3},
        {"set d (grows)", OP_SET, "d", "delta", 0, 0, 4, 0, CB_ERR_OK, 4},
        {"set e", OP_SET, "e", "epsilon", 0, 0, 5, 0, CB_ERR_OK, 5},
        {"set f", OP_SET, "f", "phi", 0, 0, 6, 0, CB_ERR_OK, 6},
        {"set g", OP_SET, "g", "gee", 0, 0, 7, 0, CB_ERR_OK, 6},
        {"replace a", OP_REPLACE, "a", "ALPHA", 0, 0, 8, 0, CB_ERR_OK, 1},
        {"append a", OP_APPEND, "a", "++", 0, 0, 9, 0, CB_ERR_OK, 0},
        {"prepend b", OP_PREPEND, "b", "--", 0, 0, 10, 0, CB_ERR_OK, 0},
        {"set n", OP_SET, "n", "99", 0, 0, 11, 0, CB_ERR_OK, 0},
        {"incr n", OP_INCR, "n", "100", 1, 0, 12, 0, CB_ERR_OK, 0},
        {"decr n", OP_DECR, "n", "90", 10, 0, 13, 0, CB_ERR_OK, 0},
        {"cas c", OP_CAS, "c", "GAMMA!", 0, 3, 14, 0, CB_ERR_OK, 3},
        {"touch d", OP_TOUCH, "d", NULL, 1000, 0, 0, 0, CB_ERR_OK, 0},
        {"delete e", OP_DELETE, "e", NULL, 0, 0, 0, 0, CB_ERR_OK, 0},
        {"get a", OP_GET, "a", "ALPHA++", 0, 0, 9, 0, CB_ERR_OK, 1},
        {"add a", OP_ADD, "a", "x", 0, 0, 0, 0, CB_ERR_NOT_STORED, 0},
        {"set x", OP_SET, "x", "ex", 0, 0, 15, 0, CB_ERR_OK, 0},
        {"flush", OP_FLUSH, NULL, NULL, 0, 0, 0, 0, CB_ERR_OK, 0},
        {"set a again", OP_SET, "a", "new", 0, 0, 16, 0, CB_ERR_OK, 0},
    };
    static uint8_t before[4096], after[4096];
    cb_alloc_failing f;
    cb_store_config cfg = {.memory_bytes_max = 1u << 20, .buckets_initial = 2};
    cb_store *s = NULL;
    uint64_t n = 0, failures = 0;
    for (;; n++) { /* creation: the struct, then the table */
        cb_alloc_failing_init(&f, n, 1);
        int rc = cb_store_new(&cfg, &f.alloc, &s);
        if (rc == CB_ERR_OK) {
            break;
        }
        CU_ASSERT_EQUAL_FATAL(rc, CB_ERR_NOMEM);
        CU_ASSERT_EQUAL_FATAL(f.live, 0);
        CU_ASSERT_PTR_NULL_FATAL(s);
    }
    CU_ASSERT_EQUAL(n, 2);
    for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++) {
        for (n = 0;; n++) {
            size_t fp_len = oom_fingerprint(s, before, sizeof(before));
            f.fail_at = f.calls + n;
            f.fail_count = 1;
            int rc = run_step(s, &script[i]);
            f.fail_count = 0; /* disarm, whether or not the op reached allocation n */
            CU_ASSERT_EQUAL_FATAL(cb_store_check(s), CB_ERR_OK);
            if (rc != CB_ERR_NOMEM) {
                CU_ASSERT_EQUAL(rc, script[i].rc);
                break;
            }
            failures++;
            CU_ASSERT_FATAL(n < 4);
            CU_ASSERT_EQUAL_FATAL(oom_fingerprint(s, after, sizeof(after)), fp_len);
            CU_ASSERT_FATAL(memcmp(before, after, fp_len) == 0);
        }
        /* A resize declined above is retried by the sweep: once failing, once not. */
        for (n = 0; n < 2; n++) {
            f.fail_at = f.calls;
            f.fail_count = 1 - n;
            (void)cb_store_sweep(s, 0); /* a count; allocation failures are not errors here */
            f.fail_count = 0;
            CU_ASSERT_EQUAL_FATAL(cb_store_check(s), CB_ERR_OK);
        }
    }
    cb_store_stats st = stats_of(s);
    CU_ASSERT(failures >= 15);
    CU_ASSERT(st.table_grows >= 2);
    CU_ASSERT(st.grows_declined >= 1); /* a failed table allocation is not an error */
    cb_store_del(s);
    CU_ASSERT_EQUAL(f.live, 0);
}

/* The same seed and calls give the same counters, byte for byte. */
static void test_store_deterministic(void)
{
    cb_store_stats st[2];
    for (int run = 0; run < 2; run++) {
        cb_store_config cfg = {.memory_bytes_max = 64 * 1024, .buckets_initial = 4, .hash_seed = 1};
        cb_store *s = NULL;
        CU_ASSERT_EQUAL_FATAL(cb_store_new(&cfg, NULL, &s), CB_ERR_OK);
        cb_rng rng;
        cb_rng_init(&rng, cb_test_seed());
        uint8_t value[512] = {0};
        for (int i = 0; i < 5000; i++) {
            char key[16];
            int n = snprintf(key, sizeof(key), "k%" PRIu64, cb_rng_below(&rng, 1000));
            cb_store_view v;
            if (cb_rng_below(&rng, 2)) {
                CU_ASSERT_EQUAL(cb_store_set(s, u8(key), (size_t)n, value,
                                             (size_t)cb_rng_below(&rng, 512), 0, 0, 0, NULL),
                                CB_ERR_OK);
            } else {
                (void)cb_store_get(s, u8(key), (size_t)n, 0, &v); /* hit or miss: both fine */
            }
        }
        cb_store_stats_get(s, &st[run]);
        cb_store_del(s);
    }
    CU_ASSERT(memcmp(&st[0], &st[1], sizeof(st[0])) == 0);
    CU_ASSERT(st[0].evictions > 0 && st[0].table_grows > 0);
}

/* Versioned sets: last writer wins by the writer's version, whatever arrives first. */
/* Versioned deletes leave tombstones (docs/store.md "Tombstones"): a table of steps on one
 * key, each checked by what GET sees afterwards. */
static void test_store_tombstones(void)
{
    enum { SET_V, DEL_V, SET_PLAIN, ADD, DEL_PLAIN };
    static const struct {
        const char *name;
        int kind;
        uint64_t version;
        uint64_t now_ns;
        int want_rc;
        uint64_t want_version_out; /* versioned calls */
        const char *want_value;    /* NULL: GET misses */
        uint64_t want_get_version; /* hit: the item's; miss: the tombstone's */
    } steps[] = {
        {"set v10", SET_V, 10, 0, CB_ERR_OK, 10, "v10", 10},
        {"delete v20 removes it", DEL_V, 20, 1, CB_ERR_OK, 20, NULL, 20},
        {"older set v15 cannot resurrect", SET_V, 15, 2, CB_ERR_OK, 20, NULL, 20},
        {"same-version set is a no-op", SET_V, 20, 3, CB_ERR_OK, 20, NULL, 20},
        {"older delete v5 is superseded", DEL_V, 5, 4, CB_ERR_NOT_FOUND, 20, NULL, 20},
        {"plain delete leaves the tombstone", DEL_PLAIN, 0, 5, CB_ERR_NOT_FOUND, 0, NULL, 20},
        {"newer set v30 wins", SET_V, 30, 6, CB_ERR_OK, 30, "v30", 30},
        {"older delete v25 keeps the item", DEL_V, 25, 7, CB_ERR_OK, 30, "v30", 30},
        {"delete v40 of it", DEL_V, 40, 8, CB_ERR_OK, 40, NULL, 40},
        {"add over a tombstone stores", ADD, 0, 9, CB_ERR_OK, 0, "add", 0},
        {"delete v50 again", DEL_V, 50, 10, CB_ERR_OK, 50, NULL, 50},
        {"plain set replaces the tombstone", SET_PLAIN, 0, 11, CB_ERR_OK, 0, "plain", 0},
        {"plain delete of the item", DEL_PLAIN, 0, 12, CB_ERR_OK, 0, NULL, 0},
        {"tombstone for a key never there", DEL_V, 60, 13, CB_ERR_NOT_FOUND, 60, NULL, 60},
        {"its older set is superseded", SET_V, 55, 14, CB_ERR_OK, 60, NULL, 60},
        /* The tombstone lives tombstone_ttl_ns (1000 ns here) from its delete at 13. */
        {"at 1012 it still holds", SET_V, 56, 1012, CB_ERR_OK, 60, NULL, 60},
        {"at 1013 it is gone: an old set lands", SET_V, 57, 1013, CB_ERR_OK, 57, "v57", 57},
    };
    cb_store_config cfg = {.memory_bytes_max = 64 * 1024,
                           .buckets_initial = 4,
                           .hash_seed = cb_test_seed(),
                           .tombstone_ttl_ns = 1000};
    cb_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_store_new(&cfg, NULL, &s), CB_ERR_OK);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        uint64_t got = 0, now = steps[i].now_ns, ver = steps[i].version;
        char value[8];
        snprintf(value, sizeof value, "v%llu", (unsigned long long)ver);
        int rc = CB_ERR_INVALID;
        switch (steps[i].kind) {
        case SET_V:
            rc = cb_store_set_versioned(s, u8("k"), 1, u8(value), strlen(value), 0, 0, ver, now,
                                        NULL, &got);
            break;
        case DEL_V:
            rc = cb_store_delete_versioned(s, u8("k"), 1, ver, now, &got);
            break;
        case SET_PLAIN:
            rc = cb_store_set(s, u8("k"), 1, u8("plain"), 5, 0, 0, now, NULL);
            break;
        case ADD:
            rc = cb_store_add(s, u8("k"), 1, u8("add"), 3, 0, 0, now, NULL);
            break;
        default:
            rc = cb_store_delete(s, u8("k"), 1, now);
            break;
        }
        cb_store_view v;
        int get = cb_store_get(s, u8("k"), 1, now, &v);
        int ok = rc == steps[i].want_rc && v.version == steps[i].want_get_version;
        if (steps[i].kind == SET_V || steps[i].kind == DEL_V) {
            ok = ok && got == steps[i].want_version_out;
        }
        if (steps[i].want_value == NULL) {
            ok = ok && get == CB_ERR_NOT_FOUND;
        } else {
            ok = ok && get == CB_ERR_OK && v.value_len == strlen(steps[i].want_value) &&
                 memcmp(v.value, steps[i].want_value, v.value_len) == 0;
        }
        if (!ok) {
            printf("  step '%s': rc %d get %d version %llu out %llu\n", steps[i].name, rc, get,
                   (unsigned long long)v.version, (unsigned long long)got);
            CU_FAIL(steps[i].name);
        }
        CU_ASSERT_EQUAL_FATAL(cb_store_check(s), CB_ERR_OK);
    }
    cb_store_stats st = stats_of(s);
    CU_ASSERT_EQUAL(st.tombstones, 4);
    CU_ASSERT_EQUAL(st.delete_superseded, 2);
    cb_store_del(s);
}

/* A tombstone is a key without a value in the memory count; reads and unversioned edits see
 * no item, SCAN returns it flagged; it is evicted from the LRU like any item. */
static void test_store_tombstone_memory(void)
{
    cb_store *s = new_store(64 * 1024, 4, 0);
    uint64_t before = stats_of(s).bytes_used;
    CU_ASSERT_EQUAL(
        cb_store_set_versioned(s, u8("key"), 3, u8("0123456789"), 10, 0, 0, 7, 0, NULL, NULL),
        CB_ERR_OK);
    CU_ASSERT_EQUAL(stats_of(s).bytes_used, before + cb_store_item_overhead_bytes() + 3 + 10);
    CU_ASSERT_EQUAL(cb_store_delete_versioned(s, u8("key"), 3, 8, 1, NULL), CB_ERR_OK);
    CU_ASSERT_EQUAL(stats_of(s).bytes_used, before + cb_store_item_overhead_bytes() + 3);
    CU_ASSERT_EQUAL(stats_of(s).items, 1);
    CU_ASSERT_EQUAL(cb_store_append(s, u8("key"), 3, u8("x"), 1, 2, NULL), CB_ERR_NOT_STORED);
    CU_ASSERT_EQUAL(cb_store_replace(s, u8("key"), 3, u8("x"), 1, 0, 0, 2, NULL),
                    CB_ERR_NOT_STORED);
    CU_ASSERT_EQUAL(cb_store_incr(s, u8("key"), 3, 1, 2, NULL, NULL), CB_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(cb_store_touch(s, u8("key"), 3, 0, 2), CB_ERR_NOT_FOUND);
    cb_store_scan_item out[4];
    size_t n = 9;
    uint64_t next = 1;
    CU_ASSERT_EQUAL(cb_store_scan(s, 0, 2, out, 4, &n, &next), CB_ERR_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1); /* SCAN returns it flagged, for the resync */
    CU_ASSERT(out[0].tombstone == 1 && out[0].version == 8 && out[0].value_len == 0);
    CU_ASSERT_EQUAL(cb_store_check(s), CB_ERR_OK);
    /* Fill the store: the tombstone, least recently used, goes first. */
    uint8_t value[1000];
    memset(value, 'v', sizeof value);
    for (uint32_t i = 0; i < 200; i++) {
        char key[16];
        int len = snprintf(key, sizeof key, "f%u", i);
        CU_ASSERT_EQUAL(cb_store_set(s, u8(key), (size_t)len, value, sizeof value, 0, 0, 3, NULL),
                        CB_ERR_OK);
    }
    CU_ASSERT(stats_of(s).evictions > 0);
    cb_store_view v;
    CU_ASSERT_EQUAL(cb_store_get(s, u8("key"), 3, 4, &v), CB_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(v.version, 0); /* evicted: the tombstone is gone with it */
    CU_ASSERT_EQUAL(cb_store_check(s), CB_ERR_OK);
    cb_store_del(s);
}

static void test_store_set_versioned(void)
{
    static const struct {
        const char *name;
        uint64_t version;  /* the set's version; 0: a plain cb_store_set */
        const char *value; /* stored */
        uint64_t want_version;
        const char *want_value; /* what GET sees afterwards */
    } steps[] = {
        {"first write", 10, "a", 10, "a"},    {"newer wins", 20, "b", 20, "b"},
        {"older loses", 15, "c", 20, "b"},    {"same is a no-op", 20, "d", 20, "b"},
        {"plain set resets", 0, "e", 0, "e"}, {"any version beats 0", 5, "f", 5, "f"},
    };
    cb_store *s = new_store(64 * 1024, 4, 0);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        uint64_t cas = 0, got = 99;
        size_t len = strlen(steps[i].value);
        int rc;
        if (steps[i].version == 0) {
            rc = cb_store_set(s, u8("k"), 1, u8(steps[i].value), len, 0, 0, 0, &cas);
            got = 0;
        } else {
            rc = cb_store_set_versioned(s, u8("k"), 1, u8(steps[i].value), len, 0, 0,
                                        steps[i].version, 0, &cas, &got);
        }
        cb_store_view v;
        CU_ASSERT_EQUAL_FATAL(cb_store_get(s, u8("k"), 1, 0, &v), CB_ERR_OK);
        if (rc != CB_ERR_OK || got != steps[i].want_version || v.version != got || v.cas != cas ||
            v.value_len != strlen(steps[i].want_value) ||
            memcmp(v.value, steps[i].want_value, v.value_len) != 0) {
            CU_FAIL(steps[i].name);
        }
    }
    /* Edits in place keep the version; a too-large value is refused even when superseded. */
    CU_ASSERT_EQUAL(cb_store_append(s, u8("k"), 1, u8("g"), 1, 0, NULL), CB_ERR_OK);
    cb_store_view v;
    CU_ASSERT_EQUAL(cb_store_get(s, u8("k"), 1, 0, &v), CB_ERR_OK);
    CU_ASSERT_EQUAL(v.version, 5);
    uint8_t big[2] = {0};
    cb_store *small = new_store(64 * 1024, 4, 20);
    uint8_t huge[21] = {0};
    CU_ASSERT_EQUAL(
        cb_store_set_versioned(small, u8("k"), 1, huge, sizeof huge, 0, 0, 1, 0, NULL, NULL),
        CB_ERR_VALUE_TOO_LARGE);
    CU_ASSERT_EQUAL(cb_store_set_versioned(small, u8("k"), 1, big, 0, 0, 0, 1, 0, NULL, NULL),
                    CB_ERR_OK);
    CU_ASSERT_EQUAL(stats_of(s).set_superseded, 2);
    CU_ASSERT_EQUAL(cb_store_check(s), CB_ERR_OK);
    cb_store_del(small);
    cb_store_del(s);
}

/* Scan from cursor 0 to the end with `cap` per call; marks seen[i] for key "key<i>". */
static size_t scan_all(const cb_store *s, size_t cap, uint64_t now, unsigned char *seen,
                       size_t seen_len)
{
    cb_store_scan_item items[64];
    uint64_t cursor = 0;
    size_t calls = 0, returned = 0;
    do {
        size_t n = 0;
        CU_ASSERT_EQUAL_FATAL(cb_store_scan(s, cursor, now, items, cap, &n, &cursor), CB_ERR_OK);
        CU_ASSERT_FATAL(n <= cap);
        for (size_t i = 0; i < n; i++) {
            int k = atoi((const char *)items[i].key + 3);
            CU_ASSERT_FATAL(k >= 0 && (size_t)k < seen_len);
            CU_ASSERT_EQUAL(items[i].value_len, items[i].key_len);
            seen[k] = 1;
        }
        returned += n;
        CU_ASSERT_FATAL(++calls < 1000000);
    } while (cursor != 0);
    return returned;
}

static void test_store_scan_full(void)
{
    cb_store *s = new_store(1u << 26, 4, 0);
    char key[16];
    enum { N = 3000 };
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof(key), "key%d", i);
        uint64_t ttl = i % 10 == 9 ? 5 : 0; /* expired at now = 10 */
        CU_ASSERT_EQUAL_FATAL(
            cb_store_set(s, u8(key), (size_t)n, u8(key), (size_t)n, 0, ttl, 0, NULL), CB_ERR_OK);
    }
    static const size_t caps[] = {1, 3, 64};
    for (size_t c = 0; c < 3; c++) {
        static unsigned char seen[N];
        memset(seen, 0, sizeof seen);
        size_t returned = scan_all(s, caps[c], 10, seen, N);
        CU_ASSERT(returned >= N - N / 10);
        for (int i = 0; i < N; i++) {
            CU_ASSERT_EQUAL_FATAL(seen[i], i % 10 != 9);
        }
    }
    /* Bounded: a call examines at most 16 * cap + 1 positions, so an empty store of many
     * buckets needs many calls; resume continues right after a consumed prefix. */
    cb_store_scan_item items[4];
    size_t n = 0;
    uint64_t next = 0;
    CU_ASSERT_EQUAL(cb_store_scan(s, 0, 10, items, 4, &n, &next), CB_ERR_OK);
    CU_ASSERT(n >= 1 && next != 0);
    uint64_t resumed = 0;
    cb_store_scan_item again[1];
    CU_ASSERT_EQUAL(cb_store_scan(s, items[0].resume, 10, again, 1, &n, &resumed), CB_ERR_OK);
    CU_ASSERT(n == 0 || again[0].key != items[0].key);
    CU_ASSERT_EQUAL(cb_store_scan(s, 0, 10, items, 0, &n, &next), CB_ERR_INVALID);
    /* Flushed items are dead: a scan after a flush returns nothing. */
    cb_store_flush(s);
    static unsigned char none[N];
    memset(none, 0, sizeof none);
    CU_ASSERT_EQUAL(scan_all(s, 64, 10, none, N), 0);
    CU_ASSERT_EQUAL(cb_store_check(s), CB_ERR_OK);
    cb_store_del(s);
}

/* Items live for the whole scan are seen even while the table grows between calls. */
static void test_store_scan_resize(void)
{
    cb_store *s = new_store(1u << 26, 4, 0);
    char key[16];
    enum { OLD = 500, N = 8000 };
    static unsigned char seen[N];
    memset(seen, 0, sizeof seen);
    int next_key = 0;
    for (; next_key < OLD; next_key++) {
        int n = snprintf(key, sizeof(key), "key%d", next_key);
        cb_store_set(s, u8(key), (size_t)n, u8(key), (size_t)n, 0, 0, 0, NULL);
    }
    cb_store_scan_item items[8];
    uint64_t cursor = 0;
    uint64_t grows = stats_of(s).table_grows;
    do {
        size_t n = 0;
        CU_ASSERT_EQUAL_FATAL(cb_store_scan(s, cursor, 0, items, 8, &n, &cursor), CB_ERR_OK);
        for (size_t i = 0; i < n; i++) {
            seen[atoi((const char *)items[i].key + 3)] = 1;
        }
        for (int j = 0; j < 7 && next_key < N; j++, next_key++) {
            int kn = snprintf(key, sizeof(key), "key%d", next_key);
            cb_store_set(s, u8(key), (size_t)kn, u8(key), (size_t)kn, 0, 0, 0, NULL);
        }
    } while (cursor != 0);
    CU_ASSERT(stats_of(s).table_grows > grows);
    for (int i = 0; i < OLD; i++) {
        CU_ASSERT_EQUAL_FATAL(seen[i], 1);
    }
    cb_store_del(s);
}

static const cb_test_case tests[] = {
    {"config", test_store_config},
    {"ops_semantics", test_store_ops_semantics},
    {"key_value_errors", test_store_key_value_errors},
    {"incr_decr_parsing", test_store_incr_decr_parsing},
    {"cas_counter", test_store_cas_counter},
    {"lru_order", test_store_lru_order},
    {"too_big_evicts_nothing", test_store_too_big_evicts_nothing},
    {"ttl_boundary_lazy", test_store_ttl_boundary_lazy},
    {"ttl_sweep", test_store_ttl_sweep},
    {"resize_reachable", test_store_resize_reachable},
    {"workload_cap", test_store_workload_cap},
    {"workload_model", test_store_workload_model},
    {"lru_model", test_store_lru_model},
    {"oom", test_store_oom},
    {"overwrite_in_place", test_store_overwrite_in_place},
    {"deterministic", test_store_deterministic},
    {"set_versioned", test_store_set_versioned},
    {"tombstones", test_store_tombstones},
    {"tombstone_memory", test_store_tombstone_memory},
    {"scan_full", test_store_scan_full},
    {"scan_resize", test_store_scan_resize},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_store", tests)
