/*
 * test_cb_seal.c: frame sealing (protocols/cb_seal.h, docs/protocol.md §6).
 *
 * Round trips in both modes and directions; a changed byte anywhere in a sealed frame, a
 * wrong key, the wrong direction or mode are all refused; stream replay, loss and reorder
 * fail authentication; the datagram window rejects duplicates and frames older than the
 * window, at its exact edges and against a reference model under seeded shuffles; a peer's
 * new session is accepted and its previous one refused; 10^5 nonces are all distinct; key
 * files parse strictly.
 */
#include <stdlib.h>
#include <string.h>

#include "cb_err.h"
#include "cb_seal.h"
#include "cb_test.h"

#define T_BUF 2048u

typedef struct t_sealed {
    uint8_t bytes[T_BUF];
    size_t len;
} t_sealed;

static cb_seal_key t_key(uint8_t fill)
{
    cb_seal_key k;
    for (size_t i = 0; i < sizeof k.bytes; i++) {
        k.bytes[i] = (uint8_t)(fill + i);
    }
    return k;
}

/* A GET-hit-like reply or a SET-like request numbered `n`, with a key and a value. */
static cb_frame t_frame(uint32_t n, uint8_t *key_buf, uint8_t *value_buf, uint32_t value_len)
{
    cb_frame f;
    memset(&f, 0, sizeof f);
    f.opcode = CB_OP_SET;
    f.request_id = n;
    f.key_len = (uint8_t)snprintf((char *)key_buf, 32, "key:%u", n);
    f.key = key_buf;
    for (uint32_t i = 0; i < value_len; i++) {
        value_buf[i] = (uint8_t)('a' + (n + i) % 26);
    }
    f.value_len = value_len;
    f.value = value_len > 0 ? value_buf : NULL;
    return f;
}

static void t_seal(cb_seal_tx *tx, const cb_seal_key *k, uint32_t n, uint32_t value_len,
                   t_sealed *out)
{
    uint8_t key[32], value[T_BUF];
    cb_frame f = t_frame(n, key, value, value_len);
    long rc = cb_seal_frame(tx, k, &f, out->bytes, sizeof out->bytes);
    CU_ASSERT_FATAL(rc > 0);
    out->len = (size_t)rc;
}

/* Decode then open; returns the open's result (or the decoder's error). */
static long t_open(cb_seal_rx *rx, const cb_seal_key *k, const t_sealed *s, cb_frame *plain,
                   uint8_t *out)
{
    cb_frame_limits lim = {.value_bytes_max = CB_VALUE_BYTES_LIMIT};
    cb_frame f;
    long rc = cb_frame_decode(s->bytes, s->len, &lim, &f);
    if (rc < 0) {
        return rc;
    }
    if ((size_t)rc != s->len) {
        return CB_ERR_MALFORMED;
    }
    return cb_seal_open(rx, k, &f, out, T_BUF, plain);
}

/* Open and check the plaintext is frame `n` with `value_len` bytes of value. */
static void t_open_ok(cb_seal_rx *rx, const cb_seal_key *k, const t_sealed *s, uint32_t n,
                      uint32_t value_len)
{
    uint8_t out[T_BUF], key[32], value[T_BUF];
    cb_frame plain;
    cb_frame want = t_frame(n, key, value, value_len);
    long rc = t_open(rx, k, s, &plain, out);
    CU_ASSERT_EQUAL(rc, (long)want.key_len + value_len);
    if (rc < 0) {
        return;
    }
    CU_ASSERT_EQUAL(plain.flags, 0);
    CU_ASSERT_EQUAL(plain.request_id, n);
    CU_ASSERT_EQUAL(plain.value_len, value_len);
    CU_ASSERT(memcmp(plain.key, key, want.key_len) == 0);
    CU_ASSERT(value_len == 0 || memcmp(plain.value, value, value_len) == 0);
}

static void t_pair(uint8_t mode, cb_seal_tx *tx, cb_seal_rx *rx, uint64_t seed)
{
    cb_rng rng;
    cb_rng_init(&rng, seed);
    CU_ASSERT_EQUAL_FATAL(cb_seal_tx_init(tx, mode, CB_SEAL_CLIENT_TO_SERVER, &rng), CB_ERR_OK);
    CU_ASSERT_EQUAL_FATAL(cb_seal_rx_init(rx, mode, CB_SEAL_CLIENT_TO_SERVER), CB_ERR_OK);
}

static void t_round_trip(uint8_t mode)
{
    cb_seal_key k = t_key(1);
    cb_seal_tx tx;
    cb_seal_rx rx;
    t_pair(mode, &tx, &rx, 7);
    t_sealed s;
    for (uint32_t n = 0; n < 200; n++) {
        size_t overhead = cb_seal_overhead(&tx);
        size_t want = mode == CB_SEAL_DATAGRAM ? 40u : (n == 0 ? 32u : 16u);
        CU_ASSERT_EQUAL(overhead, want);
        uint32_t value_len = (n * 37u) % 1500u;
        t_seal(&tx, &k, n, value_len, &s);
        CU_ASSERT_EQUAL(s.bytes[4] & CB_FLAG_ENCRYPTED, CB_FLAG_ENCRYPTED);
        t_open_ok(&rx, &k, &s, n, value_len);
    }
}

static void test_round_trip_stream(void)
{
    t_round_trip(CB_SEAL_STREAM);
}

static void test_round_trip_datagram(void)
{
    t_round_trip(CB_SEAL_DATAGRAM);
}

/* Flip each bit position's byte of a sealed frame in turn: never accepted, and the session
 * is unharmed (the untouched frame opens afterwards). */
static void t_tamper(uint8_t mode, int first)
{
    cb_seal_key k = t_key(2);
    cb_seal_tx tx;
    cb_seal_rx rx;
    t_pair(mode, &tx, &rx, 9);
    t_sealed s, bad;
    if (!first) {
        t_seal(&tx, &k, 100, 10, &s);
        t_open_ok(&rx, &k, &s, 100, 10);
    }
    t_seal(&tx, &k, 1, 300, &s);
    uint8_t out[T_BUF];
    int accepted = 0;
    for (size_t i = 0; i < s.len; i++) {
        for (uint8_t flip = 1; flip != 0; flip = (uint8_t)(flip << 1)) {
            bad = s;
            bad.bytes[i] ^= flip;
            cb_seal_rx copy = rx;
            cb_frame plain;
            accepted += t_open(&copy, &k, &bad, &plain, out) >= 0;
            CU_ASSERT(memcmp(&copy, &rx, sizeof rx) == 0);
        }
    }
    CU_ASSERT_EQUAL(accepted, 0);
    /* Truncated (as a datagram would be) and extended frames too. */
    bad = s;
    bad.len = s.len - 1;
    cb_frame plain;
    CU_ASSERT(t_open(&rx, &k, &bad, &plain, out) < 0);
    t_open_ok(&rx, &k, &s, 1, 300);
}

static void test_tamper_every_bit(void)
{
    t_tamper(CB_SEAL_STREAM, 1);
    t_tamper(CB_SEAL_STREAM, 0);
    t_tamper(CB_SEAL_DATAGRAM, 1);
}

static void test_wrong_key_direction_mode(void)
{
    cb_seal_key k = t_key(3), other = t_key(4);
    cb_seal_tx tx;
    cb_seal_rx rx;
    t_pair(CB_SEAL_DATAGRAM, &tx, &rx, 11);
    t_sealed s;
    t_seal(&tx, &k, 5, 64, &s);
    uint8_t out[T_BUF];
    memset(out, 0xAA, sizeof out);
    cb_frame plain, untouched;
    memset(&plain, 0x55, sizeof plain);
    untouched = plain;
    CU_ASSERT_EQUAL(t_open(&rx, &other, &s, &plain, out), CB_ERR_AUTH_FAILED);
    CU_ASSERT(memcmp(&plain, &untouched, sizeof plain) == 0);
    for (size_t i = 0; i < 64 + 5; i++) {
        CU_ASSERT(out[i] == 0 || out[i] == 0xAA); /* no plaintext, only libsodium's zeros */
    }
    cb_seal_rx wrong_dir;
    cb_seal_rx_init(&wrong_dir, CB_SEAL_DATAGRAM, CB_SEAL_SERVER_TO_CLIENT);
    CU_ASSERT_EQUAL(t_open(&wrong_dir, &k, &s, &plain, out), CB_ERR_AUTH_FAILED);
    /* A stream receiver reads the datagram's counter as ciphertext: refused. */
    cb_seal_rx wrong_mode;
    cb_seal_rx_init(&wrong_mode, CB_SEAL_STREAM, CB_SEAL_CLIENT_TO_SERVER);
    CU_ASSERT_EQUAL(t_open(&wrong_mode, &k, &s, &plain, out), CB_ERR_AUTH_FAILED);
    t_open_ok(&rx, &k, &s, 5, 64);
}

/* Stream: the counter is implicit, so replay, loss and reorder all fail authentication. */
static void test_stream_replay_reorder(void)
{
    cb_seal_key k = t_key(5);
    cb_seal_tx tx;
    cb_seal_rx rx;
    t_pair(CB_SEAL_STREAM, &tx, &rx, 13);
    t_sealed s[4];
    for (uint32_t n = 0; n < 4; n++) {
        t_seal(&tx, &k, n, 20, &s[n]);
    }
    uint8_t out[T_BUF];
    cb_frame plain;
    CU_ASSERT_EQUAL(t_open(&rx, &k, &s[1], &plain, out), CB_ERR_AUTH_FAILED); /* no salt yet */
    t_open_ok(&rx, &k, &s[0], 0, 20);
    CU_ASSERT_EQUAL(t_open(&rx, &k, &s[0], &plain, out), CB_ERR_AUTH_FAILED); /* replay */
    CU_ASSERT_EQUAL(t_open(&rx, &k, &s[2], &plain, out), CB_ERR_AUTH_FAILED); /* reorder */
    t_open_ok(&rx, &k, &s[1], 1, 20);
    t_open_ok(&rx, &k, &s[2], 2, 20);
    CU_ASSERT_EQUAL(t_open(&rx, &k, &s[1], &plain, out), CB_ERR_AUTH_FAILED);
    t_open_ok(&rx, &k, &s[3], 3, 20);
    /* A new connection: the same frames replayed from the start are a new session the
     * receiver cannot tell from a real one (docs/protocol.md §6.5), but a new session's
     * frames do not open on the old connection's receiver. */
    cb_seal_tx tx2;
    cb_rng rng;
    cb_rng_init(&rng, 99);
    cb_seal_tx_init(&tx2, CB_SEAL_STREAM, CB_SEAL_CLIENT_TO_SERVER, &rng);
    t_sealed fresh;
    t_seal(&tx2, &k, 9, 20, &fresh);
    CU_ASSERT_EQUAL(t_open(&rx, &k, &fresh, &plain, out), CB_ERR_AUTH_FAILED);
}

/* Datagram window edges: with counter 299 the highest seen, 44 (255 back) is inside and
 * 43 (256 back) outside; duplicates are refused everywhere in the window. */
static void test_datagram_window_edges(void)
{
    cb_seal_key k = t_key(6);
    cb_seal_tx tx;
    cb_seal_rx rx;
    t_pair(CB_SEAL_DATAGRAM, &tx, &rx, 15);
    static t_sealed s[500];
    for (uint32_t n = 0; n < 500; n++) {
        t_seal(&tx, &k, n, 8, &s[n]);
    }
    uint8_t out[T_BUF];
    cb_frame plain;
    t_open_ok(&rx, &k, &s[299], 299, 8);
    CU_ASSERT_EQUAL(t_open(&rx, &k, &s[299], &plain, out), CB_ERR_REPLAY);
    CU_ASSERT_EQUAL(t_open(&rx, &k, &s[43], &plain, out), CB_ERR_REPLAY);
    t_open_ok(&rx, &k, &s[44], 44, 8);
    CU_ASSERT_EQUAL(t_open(&rx, &k, &s[44], &plain, out), CB_ERR_REPLAY);
    t_open_ok(&rx, &k, &s[298], 298, 8);
    t_open_ok(&rx, &k, &s[235], 235, 8); /* 64 back: the second word's first bit */
    t_open_ok(&rx, &k, &s[236], 236, 8); /* 63 back */
    /* Jumps by 1, 63, 64 and 65 keep the old bits in the right place. */
    static const uint32_t next[] = {300, 363, 427, 492};
    for (size_t i = 0; i < 4; i++) {
        t_open_ok(&rx, &k, &s[next[i]], next[i], 8);
    }
    CU_ASSERT_EQUAL(t_open(&rx, &k, &s[300], &plain, out), CB_ERR_REPLAY); /* seen */
    CU_ASSERT_EQUAL(t_open(&rx, &k, &s[298], &plain, out), CB_ERR_REPLAY); /* seen */
    CU_ASSERT_EQUAL(t_open(&rx, &k, &s[236], &plain, out), CB_ERR_REPLAY); /* 256 back */
    t_open_ok(&rx, &k, &s[237], 237, 8);                                   /* 255 back */
    t_open_ok(&rx, &k, &s[400], 400, 8);                                   /* a gap */
    CU_ASSERT_EQUAL(t_open(&rx, &k, &s[400], &plain, out), CB_ERR_REPLAY);
}

/* Reference model: a datagram is accepted iff never accepted before and within the window
 * of the highest accepted. Seeded delivery with duplicates and reordering. */
static void test_datagram_window_model(void)
{
    enum { N = 3000 };
    cb_seal_key k = t_key(7);
    cb_seal_tx tx;
    cb_seal_rx rx;
    t_pair(CB_SEAL_DATAGRAM, &tx, &rx, cb_test_seed());
    t_sealed *s = calloc(N, sizeof *s);
    uint8_t *seen = calloc(N, 1);
    CU_ASSERT_FATAL(s != NULL && seen != NULL);
    for (uint32_t n = 0; n < N; n++) {
        t_seal(&tx, &k, n, 4, &s[n]);
    }
    cb_rng rng;
    cb_rng_init(&rng, cb_test_seed());
    int64_t top = -1;
    int mismatches = 0;
    for (uint32_t i = 0; i < 3 * N; i++) {
        /* Mostly near the front of the sequence: jitter up to 300 behind or 20 ahead. */
        int64_t base = (int64_t)(i / 3);
        int64_t n = base + (int64_t)cb_rng_below(&rng, 320) - 300;
        n = n < 0 ? 0 : (n >= N ? N - 1 : n);
        int expect = !seen[n] && (n > top || top - n < (int64_t)CB_SEAL_WINDOW_BITS);
        uint8_t out[T_BUF];
        cb_frame plain;
        long rc = t_open(&rx, &k, &s[n], &plain, out);
        mismatches += expect != (rc >= 0);
        CU_ASSERT(rc >= 0 || rc == CB_ERR_REPLAY);
        if (rc >= 0) {
            seen[n] = 1;
            top = n > top ? n : top;
        }
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    free(seen);
    free(s);
}

/* A restarted datagram peer (new salt) is accepted; its previous session never again. */
static void test_datagram_new_session(void)
{
    cb_seal_key k = t_key(8);
    cb_seal_tx old_tx, new_tx;
    cb_seal_rx rx;
    t_pair(CB_SEAL_DATAGRAM, &old_tx, &rx, 17);
    cb_rng rng;
    cb_rng_init(&rng, 18);
    cb_seal_tx_init(&new_tx, CB_SEAL_DATAGRAM, CB_SEAL_CLIENT_TO_SERVER, &rng);
    t_sealed a, b, c;
    t_seal(&old_tx, &k, 1, 8, &a);
    t_seal(&old_tx, &k, 2, 8, &b);
    t_seal(&new_tx, &k, 3, 8, &c);
    uint8_t out[T_BUF];
    cb_frame plain;
    t_open_ok(&rx, &k, &a, 1, 8);
    t_open_ok(&rx, &k, &c, 3, 8);
    CU_ASSERT_EQUAL(t_open(&rx, &k, &b, &plain, out), CB_ERR_REPLAY);
    CU_ASSERT_EQUAL(t_open(&rx, &k, &c, &plain, out), CB_ERR_REPLAY);
}

static int t_cmp_nonce(const void *a, const void *b)
{
    return memcmp(a, b, CB_SEAL_NONCE_BYTES);
}

/* 10^5 datagram frames from two sessions (two machines' generators) and a restarted one:
 * every nonce (salt | counter, explicit in datagrams) is distinct. */
static void test_nonce_unique(void)
{
    enum { N = 100000 };
    cb_seal_key k = t_key(9);
    uint8_t(*nonces)[CB_SEAL_NONCE_BYTES] = calloc(N, CB_SEAL_NONCE_BYTES);
    CU_ASSERT_FATAL(nonces != NULL);
    cb_rng rng_a, rng_b;
    cb_rng_init(&rng_a, 1);
    cb_rng_init(&rng_b, 2);
    cb_seal_tx tx[2];
    cb_seal_tx_init(&tx[0], CB_SEAL_DATAGRAM, CB_SEAL_CLIENT_TO_SERVER, &rng_a);
    cb_seal_tx_init(&tx[1], CB_SEAL_DATAGRAM, CB_SEAL_CLIENT_TO_SERVER, &rng_b);
    t_sealed s;
    for (uint32_t n = 0; n < N; n++) {
        if (n == N / 2) {
            cb_seal_tx_init(&tx[0], CB_SEAL_DATAGRAM, CB_SEAL_CLIENT_TO_SERVER, &rng_a);
        }
        t_seal(&tx[n % 2], &k, n, 0, &s);
        memcpy(nonces[n], s.bytes + CB_FRAME_HEADER_BYTES + s.bytes[5], CB_SEAL_NONCE_BYTES);
    }
    qsort(nonces, N, CB_SEAL_NONCE_BYTES, t_cmp_nonce);
    int dups = 0;
    for (uint32_t n = 1; n < N; n++) {
        dups += memcmp(nonces[n - 1], nonces[n], CB_SEAL_NONCE_BYTES) == 0;
    }
    CU_ASSERT_EQUAL(dups, 0);
    free(nonces);
    /* Stream: the counter advances once per frame, never on a failed seal. */
    cb_seal_tx st;
    cb_seal_tx_init(&st, CB_SEAL_STREAM, CB_SEAL_SERVER_TO_CLIENT, &rng_a);
    uint8_t small[8];
    uint8_t key[32], value[8];
    cb_frame f = t_frame(1, key, value, 4);
    CU_ASSERT_EQUAL(cb_seal_frame(&st, &k, &f, small, sizeof small), CB_ERR_FULL);
    CU_ASSERT_EQUAL(st.counter, 0);
    t_seal(&st, &k, 1, 4, &s);
    CU_ASSERT_EQUAL(st.counter, 1);
    st.counter = UINT64_MAX;
    CU_ASSERT_EQUAL(cb_seal_frame(&st, &k, &f, s.bytes, sizeof s.bytes), CB_ERR_TOO_LARGE);
}

static void test_errors(void)
{
    cb_seal_key k = t_key(10);
    cb_seal_tx tx;
    cb_seal_rx rx;
    t_pair(CB_SEAL_DATAGRAM, &tx, &rx, 19);
    uint8_t key[32], value[64], out[T_BUF], wire[T_BUF];
    cb_frame f = t_frame(1, key, value, 10), plain, dec;
    cb_frame_limits lim = {.value_bytes_max = 4096};
    /* Opening a clear frame: a configuration mismatch. */
    long n = cb_frame_encode(&f, wire, sizeof wire);
    CU_ASSERT_FATAL(n > 0 && cb_frame_decode(wire, (size_t)n, &lim, &dec) == n);
    CU_ASSERT_EQUAL(cb_seal_open(&rx, &k, &dec, out, sizeof out, &plain), CB_ERR_CODEC_MISMATCH);
    /* Views that are not one run of bytes. */
    f.flags = CB_FLAG_ENCRYPTED;
    CU_ASSERT_EQUAL(cb_seal_open(&rx, &k, &f, out, sizeof out, &plain), CB_ERR_INVALID);
    /* Sealing a sealed frame, bad modes. */
    CU_ASSERT_EQUAL(cb_seal_frame(&tx, &k, &f, out, sizeof out), CB_ERR_INVALID);
    cb_rng rng;
    cb_rng_init(&rng, 1);
    CU_ASSERT_EQUAL(cb_seal_tx_init(&tx, 3, CB_SEAL_CLIENT_TO_SERVER, &rng), CB_ERR_INVALID);
    CU_ASSERT_EQUAL(cb_seal_rx_init(&rx, CB_SEAL_STREAM, 0), CB_ERR_INVALID);
    /* A sealed frame whose value is shorter than the overhead: malformed. */
    t_pair(CB_SEAL_DATAGRAM, &tx, &rx, 19);
    f.value_len = 39;
    n = cb_frame_encode(&f, wire, sizeof wire);
    CU_ASSERT_FATAL(n > 0 && cb_frame_decode(wire, (size_t)n, &lim, &dec) == n);
    CU_ASSERT_EQUAL(cb_seal_open(&rx, &k, &dec, out, sizeof out, &plain), CB_ERR_MALFORMED);
    /* Too small an output buffer. */
    t_sealed s;
    t_seal(&tx, &k, 2, 50, &s);
    cb_frame sealed;
    CU_ASSERT_FATAL(cb_frame_decode(s.bytes, s.len, &lim, &sealed) == (long)s.len);
    CU_ASSERT_EQUAL(cb_seal_open(&rx, &k, &sealed, out, 50, &plain), CB_ERR_FULL);
    CU_ASSERT(cb_seal_open(&rx, &k, &sealed, out, sizeof out, &plain) > 0);
}

typedef struct key_case {
    const char *name;
    const char *text;
    int expect;
} key_case;

static void test_key_parse(void)
{
    static const char good[] = "000102030405060708090a0b0c0d0e0f"
                               "101112131415161718191A1B1C1D1E1F";
    static const key_case cases[] = {
        {"64 digits", good, CB_ERR_OK},
        {"with newline", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
         CB_ERR_OK},
        {"63 digits", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1", -2},
        {"crlf", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\r\n", -2},
        {"non-hex", "g00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", -2},
        {"space", "000102030405060708090a0b0c0d0e0f 01112131415161718191a1b1c1d1e1f", -2},
        {"empty", "", -2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cb_seal_key k;
        memset(&k, 0, sizeof k);
        int rc = cb_seal_key_parse(cases[i].text, strlen(cases[i].text), &k);
        if (rc != cases[i].expect) {
            printf("\n  case '%s': got %s\n", cases[i].name, cb_err_name(rc));
        }
        CU_ASSERT_EQUAL(rc, cases[i].expect);
    }
    cb_seal_key k, again;
    CU_ASSERT_EQUAL(cb_seal_key_parse(good, strlen(good), &k), CB_ERR_OK);
    for (size_t i = 0; i < CB_SEAL_KEY_BYTES; i++) {
        CU_ASSERT_EQUAL(k.bytes[i], i);
    }
    char text[65];
    CU_ASSERT_EQUAL(cb_seal_key_format(&k, text, sizeof text), 65);
    CU_ASSERT_EQUAL(cb_seal_key_format(&k, text, 64), CB_ERR_FULL);
    CU_ASSERT_EQUAL(cb_seal_key_parse(text, sizeof text, &again), CB_ERR_OK);
    CU_ASSERT(memcmp(&k, &again, sizeof k) == 0);
    cb_seal_key_wipe(&k);
    CU_ASSERT_EQUAL(k.bytes[7], 0);
}

static const cb_test_case cases[] = {
    {"round_trip_stream", test_round_trip_stream},
    {"round_trip_datagram", test_round_trip_datagram},
    {"tamper_every_bit", test_tamper_every_bit},
    {"wrong_key_direction_mode", test_wrong_key_direction_mode},
    {"stream_replay_reorder", test_stream_replay_reorder},
    {"datagram_window_edges", test_datagram_window_edges},
    {"datagram_window_model", test_datagram_window_model},
    {"datagram_new_session", test_datagram_new_session},
    {"nonce_unique", test_nonce_unique},
    {"errors", test_errors},
    {"key_parse", test_key_parse},
    {NULL, NULL},
};

/* Like CB_TEST_MAIN, after libsodium's one-time set-up, which is the driver's job. */
int main(void)
{
    if (cb_seal_global_init() != CB_ERR_OK) {
        fprintf(stderr, "cb_seal: sodium_init failed\n");
        return 2;
    }
    return cb_test_run("cb_seal", cases);
}
