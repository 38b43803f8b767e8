/*
 * test_cb_client.c: the client machine on fake time, with server replies crafted by hand.
 *
 * The clock is a plain uint64_t advanced by the test (ngtcp2 tests/ngtcp2_conn_test.c style);
 * replies are encoded with cb_frame_encode and fed to cb_client_on_bytes, and every action
 * is drained and checked: the request frames, the outcome of every op/status pair, the retry
 * schedule, late, duplicate and unknown replies, both kinds of back-pressure, malformed
 * input, bad submissions and allocation failures.
 */
#include <string.h>

#include "cb_client.h"
#include "cb_err.h"
#include "cb_test.h"

#define CLI_ACTIONS_MAX 512u
#define CLI_FRAME_MAX   (CB_FRAME_HEADER_BYTES + CB_KEY_BYTES_MAX + 200000u)

static cb_rng cli_rng;
static cb_action cli_acts[CLI_ACTIONS_MAX];
static uint8_t cli_buf[64 * CLI_FRAME_MAX / 32];

static cb_client_config cli_config(void)
{
    cb_client_config c = cb_client_config_default();
    c.timeout_ns = 1000;
    c.timeout_max_ns = 5000;
    c.attempts_max = 3;
    c.jitter_ppm = 0;
    return c;
}

static cb_client *cli_new(const cb_client_config *c)
{
    cb_rng_init(&cli_rng, cb_test_seed());
    cb_client *cli = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_client_new(c, &cli_rng, NULL, &cli), CB_ERR_OK);
    return cli;
}

/* Drain everything into cli_acts; returns how many. */
static size_t cli_drain(cb_client *cli)
{
    size_t n = 0, got;
    while ((got = cb_client_drain(cli, cli_acts + n, CLI_ACTIONS_MAX - n)) > 0) {
        n += got;
        CU_ASSERT_FATAL(n < CLI_ACTIONS_MAX);
    }
    return n;
}

static size_t cli_count(size_t n, uint8_t kind)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        k += cli_acts[i].kind == kind;
    }
    return k;
}

/* The first action of `kind` among the first n drained, or NULL. */
static const cb_action *cli_find(size_t n, uint8_t kind)
{
    for (size_t i = 0; i < n; i++) {
        if (cli_acts[i].kind == kind) {
            return &cli_acts[i];
        }
    }
    return NULL;
}

static cb_client_op cli_op(uint8_t op, const char *key)
{
    cb_client_op o;
    memset(&o, 0, sizeof o);
    o.op = op;
    o.key = (const uint8_t *)key;
    o.key_len = key ? (uint8_t)strlen(key) : 0;
    return o;
}

/* Submit a GET of "k" and drain its SEND; returns the request id. */
static uint32_t cli_get(cb_client *cli, uint64_t now)
{
    cb_client_op op = cli_op(CB_OP_GET, "k");
    uint32_t id = 0;
    CU_ASSERT_EQUAL_FATAL(cb_client_request(cli, 0, &op, now, &id), CB_ERR_OK);
    CU_ASSERT_EQUAL(cli_drain(cli), 1);
    return id;
}

/* Encode a reply frame into out; returns its length. */
static size_t cli_reply(uint8_t *out, uint8_t op, uint16_t status, uint32_t id,
                        const uint8_t *value, uint32_t value_len, uint64_t cas, uint64_t arg)
{
    cb_frame f;
    memset(&f, 0, sizeof f);
    f.opcode = op;
    f.flags = CB_FLAG_RESPONSE;
    f.status = status;
    f.request_id = id;
    f.value = value;
    f.value_len = value_len;
    f.cas = cas;
    f.arg = arg;
    long n = cb_frame_encode(&f, out, CLI_FRAME_MAX);
    CU_ASSERT_FATAL(n > 0);
    return (size_t)n;
}

/* Feed a whole buffer that must be consumed in one call. */
static void cli_feed(cb_client *cli, const uint8_t *buf, size_t len, uint64_t now)
{
    CU_ASSERT_EQUAL(cb_client_on_bytes(cli, 0, buf, len, now), (long)len);
}

typedef struct cli_encode_case {
    const char *name;
    uint8_t op;
    const char *key;
    const char *value;
    uint32_t ttl_ms;
    uint64_t cas;
    uint64_t delta;
} cli_encode_case;

static void test_client_request_encodes_frame(void)
{
    static const cli_encode_case cases[] = {
        {"get", CB_OP_GET, "user:1", NULL, 0, 0, 0},
        {"set", CB_OP_SET, "user:2", "hello", 1500, 0, 0},
        {"cas", CB_OP_CAS, "k", "v", 0, 0x1122334455667788ull, 0},
        {"incr", CB_OP_INCR, "counter", NULL, 0, 0, 0xFFFFFFFFFFull},
        {"touch", CB_OP_TOUCH, "k", NULL, 42, 0, 0},
        {"flush", CB_OP_FLUSH, NULL, NULL, 0, 0, 0},
        {"set_empty_value", CB_OP_SET, "e", "", 0, 0, 0},
    };
    cb_client_config c = cli_config();
    c.peer_count = 3;
    cb_client *cli = cli_new(&c);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const cli_encode_case *t = &cases[i];
        cb_client_op op = cli_op(t->op, t->key);
        op.value = (const uint8_t *)t->value;
        op.value_len = t->value ? (uint32_t)strlen(t->value) : 0;
        op.ttl_ms = t->ttl_ms;
        op.cas = t->cas;
        op.delta = t->delta;
        uint32_t id = 0;
        CU_ASSERT_EQUAL_FATAL(cb_client_request(cli, 2, &op, 10, &id), CB_ERR_OK);
        CU_ASSERT_EQUAL_FATAL(cli_drain(cli), 1);
        const cb_action *a = &cli_acts[0];
        CU_ASSERT_EQUAL(a->kind, CB_ACTION_SEND);
        CU_ASSERT_EQUAL(a->peer, 2);
        cb_frame f;
        long n = cb_frame_decode(a->data, a->data_len, NULL, &f);
        if (n != (long)a->data_len) {
            printf("\n  case %s: decode %ld of %zu\n", t->name, n, a->data_len);
        }
        CU_ASSERT_EQUAL_FATAL(n, (long)a->data_len);
        CU_ASSERT_EQUAL(f.opcode, t->op);
        CU_ASSERT_EQUAL(f.flags, 0);
        CU_ASSERT_EQUAL(f.status, 0);
        CU_ASSERT_EQUAL(f.request_id, id);
        CU_ASSERT_NOT_EQUAL(id, 0);
        CU_ASSERT_EQUAL(f.key_len, op.key_len);
        CU_ASSERT(f.key_len == 0 || memcmp(f.key, t->key, f.key_len) == 0);
        CU_ASSERT_EQUAL(f.value_len, op.value_len);
        CU_ASSERT(f.value_len == 0 || memcmp(f.value, t->value, f.value_len) == 0);
        CU_ASSERT_EQUAL(f.ttl_ms, t->ttl_ms);
        CU_ASSERT_EQUAL(f.cas, t->cas);
        CU_ASSERT_EQUAL(f.arg, t->delta);
    }
    CU_ASSERT_EQUAL(cb_client_outstanding(cli), sizeof cases / sizeof cases[0]);
    cb_client_del(cli);
}

/* For each op, the outcome of each status 0..8 (OK, NOT_FOUND, EXISTS, NOT_STORED,
 * NOT_NUMBER, TOO_LARGE, NO_MEMORY, BAD_REQUEST, UNKNOWN_COMMAND). */
typedef struct cli_outcome_row {
    uint8_t op;
    uint8_t outcome[9];
} cli_outcome_row;

#define O_HIT  CB_OUTCOME_HIT
#define O_MISS CB_OUTCOME_MISS
#define O_STO  CB_OUTCOME_STORED
#define O_NST  CB_OUTCOME_NOT_STORED
#define O_EX   CB_OUTCOME_EXISTS
#define O_DEL  CB_OUTCOME_DELETED
#define O_NF   CB_OUTCOME_NOT_FOUND
#define O_OK   CB_OUTCOME_OK
#define O_ERR  CB_OUTCOME_ERROR

static void test_client_outcome_mapping(void)
{
    /* clang-format off */
    static const cli_outcome_row rows[] = {
        /*               OK     NOT_FOUND EXISTS NOT_STORED NOT_NUMBER TOO_LARGE NO_MEMORY BAD  UNKNOWN */
        {CB_OP_GET,     {O_HIT, O_MISS,   O_EX,  O_NST,     O_ERR,     O_ERR,    O_ERR,    O_ERR, O_ERR}},
        {CB_OP_SET,     {O_STO, O_NF,     O_EX,  O_NST,     O_ERR,     O_ERR,    O_ERR,    O_ERR, O_ERR}},
        {CB_OP_ADD,     {O_STO, O_NF,     O_EX,  O_NST,     O_ERR,     O_ERR,    O_ERR,    O_ERR, O_ERR}},
        {CB_OP_REPLACE, {O_STO, O_NF,     O_EX,  O_NST,     O_ERR,     O_ERR,    O_ERR,    O_ERR, O_ERR}},
        {CB_OP_APPEND,  {O_STO, O_NF,     O_EX,  O_NST,     O_ERR,     O_ERR,    O_ERR,    O_ERR, O_ERR}},
        {CB_OP_PREPEND, {O_STO, O_NF,     O_EX,  O_NST,     O_ERR,     O_ERR,    O_ERR,    O_ERR, O_ERR}},
        {CB_OP_CAS,     {O_STO, O_NF,     O_EX,  O_NST,     O_ERR,     O_ERR,    O_ERR,    O_ERR, O_ERR}},
        {CB_OP_DELETE,  {O_DEL, O_NF,     O_EX,  O_NST,     O_ERR,     O_ERR,    O_ERR,    O_ERR, O_ERR}},
        {CB_OP_INCR,    {O_OK,  O_NF,     O_EX,  O_NST,     O_ERR,     O_ERR,    O_ERR,    O_ERR, O_ERR}},
        {CB_OP_DECR,    {O_OK,  O_NF,     O_EX,  O_NST,     O_ERR,     O_ERR,    O_ERR,    O_ERR, O_ERR}},
        {CB_OP_TOUCH,   {O_OK,  O_NF,     O_EX,  O_NST,     O_ERR,     O_ERR,    O_ERR,    O_ERR, O_ERR}},
        {CB_OP_FLUSH,   {O_OK,  O_NF,     O_EX,  O_NST,     O_ERR,     O_ERR,    O_ERR,    O_ERR, O_ERR}},
        {CB_OP_STATS,   {O_OK,  O_NF,     O_EX,  O_NST,     O_ERR,     O_ERR,    O_ERR,    O_ERR, O_ERR}},
        {CB_OP_NOOP,    {O_OK,  O_NF,     O_EX,  O_NST,     O_ERR,     O_ERR,    O_ERR,    O_ERR, O_ERR}},
    };
    /* clang-format on */
    cb_client *cli = NULL;
    cb_client_config c = cli_config();
    cli = cli_new(&c);
    uint64_t now = 0;
    const uint8_t body[] = "12345";
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        uint8_t op_code = rows[r].op;
        for (uint16_t status = 0; status < 9; status++) {
            int keyed = op_code != CB_OP_FLUSH && op_code != CB_OP_STATS && op_code != CB_OP_NOOP;
            cb_client_op op = cli_op(op_code, keyed ? "key" : NULL);
            op.user_data = r * 100 + status;
            uint32_t id = 0;
            CU_ASSERT_EQUAL_FATAL(cb_client_request(cli, 0, &op, now, &id), CB_ERR_OK);
            CU_ASSERT_EQUAL(cli_drain(cli), 1);
            /* Successful GET and STATS carry a value. */
            int with_value = status == 0 && (op_code == CB_OP_GET || op_code == CB_OP_STATS);
            size_t len = cli_reply(cli_buf, op_code, status, id, with_value ? body : NULL,
                                   with_value ? 5 : 0, 77 + status, 99);
            now += 10;
            cli_feed(cli, cli_buf, len, now);
            size_t n = cli_drain(cli);
            CU_ASSERT_EQUAL(n, 1);
            const cb_completion *cp = &cli_acts[0].completion;
            CU_ASSERT_EQUAL(cli_acts[0].kind, CB_ACTION_COMPLETE);
            if (cp->outcome != rows[r].outcome[status]) {
                printf("\n  %s status %u: outcome %s, want %s\n", cb_op_name(op_code), status,
                       cb_outcome_name(cp->outcome), cb_outcome_name(rows[r].outcome[status]));
            }
            CU_ASSERT_EQUAL(cp->outcome, rows[r].outcome[status]);
            CU_ASSERT_EQUAL(cp->status, status);
            CU_ASSERT_EQUAL(cp->op, op_code);
            CU_ASSERT_EQUAL(cp->request_id, id);
            CU_ASSERT_EQUAL(cp->user_data, r * 100 + status);
            CU_ASSERT_EQUAL(cp->attempts, 1);
            CU_ASSERT_EQUAL(cp->cas, 77u + status);
            CU_ASSERT_EQUAL(cp->number, 99);
            CU_ASSERT_EQUAL(cp->complete_ns, now);
            CU_ASSERT_EQUAL(cp->issue_ns, now - 10);
            CU_ASSERT_EQUAL(cp->bytes_received, len);
            CU_ASSERT_EQUAL(cp->value_len, with_value ? 5 : 0);
            CU_ASSERT(!with_value || memcmp(cp->value, body, 5) == 0);
        }
    }
    CU_ASSERT_EQUAL(cb_client_outstanding(cli), 0);
    cb_client_del(cli);
}

/* jitter 0: deadlines at exactly timeout, 2x, 4x... capped; TIMEOUT once, after the last. */
static void test_client_retry_schedule_exact(void)
{
    cb_client_config c = cli_config();
    c.timeout_ns = 1000;
    c.timeout_max_ns = 5000;
    c.attempts_max = 6;
    cb_client *cli = cli_new(&c);
    static const uint64_t waits[] = {1000, 2000, 4000, 5000, 5000, 5000};
    uint64_t now = 100;
    cb_client_op op = cli_op(CB_OP_SET, "k");
    op.value = (const uint8_t *)"v";
    op.value_len = 1;
    uint32_t id = 0;
    CU_ASSERT_EQUAL_FATAL(cb_client_request(cli, 0, &op, now, &id), CB_ERR_OK);
    CU_ASSERT_EQUAL_FATAL(cli_drain(cli), 1);
    size_t frame_len = cli_acts[0].data_len;
    uint8_t first[256];
    memcpy(first, cli_acts[0].data, frame_len);
    for (uint32_t attempt = 1; attempt <= c.attempts_max; attempt++) {
        uint64_t deadline = now + waits[attempt - 1];
        CU_ASSERT_EQUAL(cb_client_next_deadline_ns(cli), deadline);
        CU_ASSERT_EQUAL(cb_client_on_timer(cli, deadline - 1), CB_ERR_OK);
        CU_ASSERT_EQUAL(cli_drain(cli), 0);
        now = deadline;
        CU_ASSERT_EQUAL(cb_client_on_timer(cli, now), CB_ERR_OK);
        size_t n = cli_drain(cli);
        if (attempt < c.attempts_max) {
            CU_ASSERT_EQUAL_FATAL(n, 2); /* the resend and a RETRY event */
            const cb_action *send = cli_find(n, CB_ACTION_SEND);
            const cb_action *ev = cli_find(n, CB_ACTION_EVENT);
            CU_ASSERT_FATAL(send != NULL && ev != NULL);
            CU_ASSERT_EQUAL(send->data_len, frame_len);
            CU_ASSERT(memcmp(send->data, first, frame_len) == 0); /* the same frame */
            CU_ASSERT_EQUAL(ev->event.kind, CB_EVENT_RETRY);
            CU_ASSERT_EQUAL(ev->event.detail, (int32_t)attempt + 1);
            CU_ASSERT_EQUAL(ev->event.request_id, id);
        } else {
            CU_ASSERT_EQUAL_FATAL(n, 1);
            const cb_completion *cp = &cli_acts[0].completion;
            CU_ASSERT_EQUAL(cli_acts[0].kind, CB_ACTION_COMPLETE);
            CU_ASSERT_EQUAL(cp->outcome, CB_OUTCOME_TIMEOUT);
            CU_ASSERT_EQUAL(cp->status, 0);
            CU_ASSERT_EQUAL(cp->attempts, c.attempts_max);
            CU_ASSERT_EQUAL(cp->bytes_sent, frame_len * c.attempts_max);
            CU_ASSERT_EQUAL(cp->issue_ns, 100);
            CU_ASSERT_EQUAL(cp->complete_ns, now);
        }
    }
    /* Exactly once: nothing more, ever. */
    CU_ASSERT_EQUAL(cb_client_next_deadline_ns(cli), UINT64_MAX);
    CU_ASSERT_EQUAL(cb_client_on_timer(cli, UINT64_MAX), CB_ERR_OK);
    CU_ASSERT_EQUAL(cli_drain(cli), 0);
    cb_client_stats s;
    cb_client_get_stats(cli, &s);
    CU_ASSERT_EQUAL(s.retries, c.attempts_max - 1);
    CU_ASSERT_EQUAL(s.timeouts, 1);
    CU_ASSERT_EQUAL(s.completed, 1);
    CU_ASSERT_EQUAL(s.bytes_sent, frame_len * c.attempts_max);
    cb_client_del(cli);
}

/* With jitter, each wait lies in [wait, wait * (1 + jitter)], over many seeds. */
static void test_client_retry_jitter_bounds(void)
{
    cb_client_config c = cli_config();
    c.timeout_ns = 1000000;
    c.timeout_max_ns = 4000000;
    c.attempts_max = 5;
    c.jitter_ppm = 100000; /* 10% */
    static const uint64_t waits[] = {1000000, 2000000, 4000000, 4000000, 4000000};
    uint64_t extra_max = 0, extra_min = UINT64_MAX;
    for (uint64_t seed = 0; seed < 200; seed++) {
        cb_rng rng;
        cb_rng_init(&rng, cb_test_seed() + seed);
        cb_client *cli = NULL;
        CU_ASSERT_EQUAL_FATAL(cb_client_new(&c, &rng, NULL, &cli), CB_ERR_OK);
        uint64_t now = 0;
        (void)cli_get(cli, now);
        for (uint32_t attempt = 1; attempt <= c.attempts_max; attempt++) {
            uint64_t deadline = cb_client_next_deadline_ns(cli);
            uint64_t w = waits[attempt - 1];
            CU_ASSERT(deadline >= now + w);
            CU_ASSERT(deadline <= now + w + w / 10);
            uint64_t extra = (deadline - now - w) * 1000 / w; /* per mille of the wait */
            extra_max = extra > extra_max ? extra : extra_max;
            extra_min = extra < extra_min ? extra : extra_min;
            now = deadline;
            CU_ASSERT_EQUAL(cb_client_on_timer(cli, now), CB_ERR_OK);
            (void)cli_drain(cli);
        }
        CU_ASSERT_EQUAL(cb_client_outstanding(cli), 0);
        cb_client_del(cli);
    }
    /* 1000 draws: the jitter really spreads over [0, 10%]. */
    CU_ASSERT(extra_min <= 2);
    CU_ASSERT(extra_max >= 98);
}

static void test_client_late_reply(void)
{
    cb_client_config c = cli_config();
    c.attempts_max = 1;
    cb_client *cli = cli_new(&c);
    uint32_t id = cli_get(cli, 0);
    CU_ASSERT_EQUAL(cb_client_on_timer(cli, 1000), CB_ERR_OK);
    CU_ASSERT_EQUAL(cli_drain(cli), 1);
    CU_ASSERT_EQUAL(cli_acts[0].completion.outcome, CB_OUTCOME_TIMEOUT);
    size_t len = cli_reply(cli_buf, CB_OP_GET, CB_STATUS_NOT_FOUND, id, NULL, 0, 0, 0);
    cli_feed(cli, cli_buf, len, 1500);
    size_t n = cli_drain(cli);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(cli_count(n, CB_ACTION_COMPLETE), 0);
    CU_ASSERT_EQUAL(cli_acts[0].kind, CB_ACTION_EVENT);
    CU_ASSERT_EQUAL(cli_acts[0].event.kind, CB_EVENT_LATE_REPLY);
    CU_ASSERT_EQUAL(cli_acts[0].event.request_id, id);
    cb_client_stats s;
    cb_client_get_stats(cli, &s);
    CU_ASSERT_EQUAL(s.late_replies, 1);
    CU_ASSERT_EQUAL(s.completed, 1);
    cb_client_del(cli);
}

static void test_client_duplicate_reply(void)
{
    cb_client_config c = cli_config();
    cb_client *cli = cli_new(&c);
    uint32_t id = cli_get(cli, 0);
    size_t len = cli_reply(cli_buf, CB_OP_GET, CB_STATUS_NOT_FOUND, id, NULL, 0, 0, 0);
    memcpy(cli_buf + len, cli_buf, len); /* twice in one buffer */
    cli_feed(cli, cli_buf, 2 * len, 10);
    cli_feed(cli, cli_buf, len, 20); /* and a third time later */
    size_t n = cli_drain(cli);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(cli_count(n, CB_ACTION_COMPLETE), 1);
    CU_ASSERT_EQUAL(cli_acts[0].kind, CB_ACTION_COMPLETE);
    CU_ASSERT_EQUAL(cli_acts[0].completion.outcome, CB_OUTCOME_MISS);
    for (size_t i = 1; i < n; i++) {
        CU_ASSERT_EQUAL(cli_acts[i].kind, CB_ACTION_EVENT);
        CU_ASSERT_EQUAL(cli_acts[i].event.kind, CB_EVENT_DUPLICATE_REPLY);
        CU_ASSERT_EQUAL(cli_acts[i].event.request_id, id);
    }
    cb_client_stats s;
    cb_client_get_stats(cli, &s);
    CU_ASSERT_EQUAL(s.duplicate_replies, 2);
    CU_ASSERT_EQUAL(s.completed, 1);
    /* No timer is left to fire a second outcome. */
    CU_ASSERT_EQUAL(cb_client_next_deadline_ns(cli), UINT64_MAX);
    cb_client_del(cli);
}

static void test_client_unknown_reply(void)
{
    cb_client_config c = cli_config();
    c.outstanding_max = 4;
    cb_client *cli = cli_new(&c);
    uint32_t id = cli_get(cli, 0);
    /* Never issued: a later generation of the same slot, an unused slot, id 0, a slot
     * beyond outstanding_max, a matching id with the wrong opcode, and a request frame. */
    const uint32_t bogus[] = {id + (1u << 2), (id & ~3u) | 1u, 0, 0xFFFFFFFFu};
    size_t len = 0;
    for (size_t i = 0; i < sizeof bogus / sizeof bogus[0]; i++) {
        len += cli_reply(cli_buf + len, CB_OP_GET, 0, bogus[i], NULL, 0, 0, 0);
    }
    len += cli_reply(cli_buf + len, CB_OP_SET, 0, id, NULL, 0, 0, 0);
    cb_frame req;
    memset(&req, 0, sizeof req);
    req.opcode = CB_OP_GET;
    req.request_id = id;
    long rn = cb_frame_encode(&req, cli_buf + len, CLI_FRAME_MAX);
    CU_ASSERT_FATAL(rn > 0);
    len += (size_t)rn;
    cli_feed(cli, cli_buf, len, 5);
    CU_ASSERT_EQUAL(cli_drain(cli), 0);
    cb_client_stats s;
    cb_client_get_stats(cli, &s);
    CU_ASSERT_EQUAL(s.unknown_replies, 6);
    CU_ASSERT_EQUAL(s.completed, 0);
    CU_ASSERT_EQUAL(cb_client_outstanding(cli), 1);
    cb_client_del(cli);
}

static void test_client_busy(void)
{
    cb_client_config c = cli_config();
    c.outstanding_max = 4;
    cb_client *cli = cli_new(&c);
    uint32_t ids[4];
    for (int i = 0; i < 4; i++) {
        ids[i] = cli_get(cli, 0);
    }
    cb_client_op op = cli_op(CB_OP_GET, "k");
    CU_ASSERT_EQUAL(cb_client_request(cli, 0, &op, 0, NULL), CB_ERR_BUSY);
    CU_ASSERT_EQUAL(cli_drain(cli), 0); /* nothing queued */
    size_t len = cli_reply(cli_buf, CB_OP_GET, CB_STATUS_NOT_FOUND, ids[2], NULL, 0, 0, 0);
    cli_feed(cli, cli_buf, len, 1);
    CU_ASSERT_EQUAL(cli_drain(cli), 1);
    CU_ASSERT_EQUAL(cb_client_outstanding(cli), 3);
    CU_ASSERT_EQUAL(cb_client_request(cli, 0, &op, 0, NULL), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_client_request(cli, 0, &op, 0, NULL), CB_ERR_BUSY);
    cb_client_del(cli);
}

/* A full outbox: submit says FULL; on_bytes takes what fits and the rest after a drain. */
static void test_client_outbox_full(void)
{
    cb_client_config c = cli_config();
    c.outstanding_max = 16;
    c.outbox_actions = 4;
    cb_client *cli = cli_new(&c);
    uint32_t ids[4];
    cb_client_op op = cli_op(CB_OP_GET, "k");
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(cb_client_request(cli, 0, &op, 0, &ids[i]), CB_ERR_OK);
    }
    CU_ASSERT_EQUAL(cb_client_request(cli, 0, &op, 0, NULL), CB_ERR_FULL);
    CU_ASSERT_EQUAL(cb_client_outstanding(cli), 4);
    CU_ASSERT_EQUAL(cli_drain(cli), 4);
    size_t len = 0;
    for (int i = 0; i < 4; i++) {
        len += cli_reply(cli_buf + len, CB_OP_GET, CB_STATUS_NOT_FOUND, ids[i], NULL, 0, 0, 0);
    }
    int done[4] = {0};
    size_t off = 0;
    int calls = 0;
    while (off < len) {
        long n = cb_client_on_bytes(cli, 0, cli_buf + off, len - off, 7);
        CU_ASSERT_FATAL(n > 0);
        if (calls++ == 0) {
            CU_ASSERT((size_t)n < len); /* the outbox filled before the end */
        }
        off += (size_t)n;
        size_t k = cli_drain(cli);
        for (size_t i = 0; i < k; i++) {
            CU_ASSERT_EQUAL_FATAL(cli_acts[i].kind, CB_ACTION_COMPLETE);
            for (int j = 0; j < 4; j++) {
                done[j] += cli_acts[i].completion.request_id == ids[j];
            }
        }
    }
    CU_ASSERT(calls >= 2);
    for (int j = 0; j < 4; j++) {
        CU_ASSERT_EQUAL(done[j], 1); /* none lost, none twice */
    }
    CU_ASSERT_EQUAL(cb_client_outstanding(cli), 0);
    cb_client_del(cli);
}

/* The timer under a full outbox reports FULL and catches up after a drain. */
static void test_client_timer_outbox_full(void)
{
    cb_client_config c = cli_config();
    c.outstanding_max = 8;
    c.outbox_actions = 4;
    c.attempts_max = 1;
    cb_client *cli = cli_new(&c);
    cb_client_op op = cli_op(CB_OP_GET, "k");
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(cb_client_request(cli, 0, &op, 0, NULL), CB_ERR_OK);
    }
    CU_ASSERT_EQUAL(cb_client_on_timer(cli, 1000), CB_ERR_FULL);
    int timeouts = 0;
    for (int round = 0; round < 10 && cb_client_outstanding(cli) > 0; round++) {
        size_t n = cli_drain(cli);
        for (size_t i = 0; i < n; i++) {
            timeouts += cli_acts[i].kind == CB_ACTION_COMPLETE;
        }
        (void)cb_client_on_timer(cli, 1000);
    }
    size_t n = cli_drain(cli);
    for (size_t i = 0; i < n; i++) {
        timeouts += cli_acts[i].kind == CB_ACTION_COMPLETE;
    }
    CU_ASSERT_EQUAL(timeouts, 4);
    cb_client_del(cli);
}

/* 32 GET hits with distinct values, fed byte by byte and then all in one buffer. */
static void test_client_split_and_batched_replies(void)
{
    for (int batched = 0; batched < 2; batched++) {
        cb_client_config c = cli_config();
        c.outstanding_max = 32;
        cb_client *cli = cli_new(&c);
        uint32_t ids[32];
        uint8_t values[32][40];
        size_t len = 0;
        for (uint32_t i = 0; i < 32; i++) {
            ids[i] = cli_get(cli, 0);
            memset(values[i], (int)('a' + i), sizeof values[i]);
        }
        for (uint32_t i = 0; i < 32; i++) {
            uint32_t j = 31 - i; /* replies in reverse order */
            len += cli_reply(cli_buf + len, CB_OP_GET, 0, ids[j], values[j], j + 1, j, 0);
        }
        int done[32] = {0};
        size_t step = batched ? len : 1;
        for (size_t off = 0; off < len; off += step) {
            cli_feed(cli, cli_buf + off, step, 3);
            size_t n = cli_drain(cli);
            for (size_t k = 0; k < n; k++) {
                const cb_completion *cp = &cli_acts[k].completion;
                CU_ASSERT_EQUAL_FATAL(cli_acts[k].kind, CB_ACTION_COMPLETE);
                uint32_t j = (uint32_t)cp->cas;
                CU_ASSERT_FATAL(j < 32);
                CU_ASSERT_EQUAL(cp->request_id, ids[j]);
                CU_ASSERT_EQUAL(cp->outcome, CB_OUTCOME_HIT);
                CU_ASSERT_EQUAL(cp->value_len, j + 1);
                CU_ASSERT(memcmp(cp->value, values[j], j + 1) == 0);
                done[j]++;
            }
        }
        for (int j = 0; j < 32; j++) {
            CU_ASSERT_EQUAL(done[j], 1);
        }
        cb_client_del(cli);
    }
}

/* A GET hit's value is copied: it survives the input buffer being overwritten. */
static void test_client_get_value_intact(void)
{
    cb_client_config c = cli_config();
    cb_client *cli = cli_new(&c);
    static uint8_t value[150000];
    for (size_t i = 0; i < sizeof value; i++) {
        value[i] = (uint8_t)(i * 31u + (i >> 8));
    }
    uint32_t id = cli_get(cli, 0);
    size_t len = cli_reply(cli_buf, CB_OP_GET, 0, id, value, sizeof value, 5, 0);
    CU_ASSERT_EQUAL(cb_client_on_bytes(cli, 0, cli_buf, len, 1), (long)len);
    memset(cli_buf, 0xEE, len); /* the driver reuses its read buffer */
    CU_ASSERT_EQUAL_FATAL(cli_drain(cli), 1);
    const cb_completion *cp = &cli_acts[0].completion;
    CU_ASSERT_EQUAL(cp->outcome, CB_OUTCOME_HIT);
    CU_ASSERT_EQUAL_FATAL(cp->value_len, sizeof value);
    CU_ASSERT(memcmp(cp->value, value, sizeof value) == 0);
    CU_ASSERT_EQUAL(cp->bytes_received, len);
    cb_client_del(cli);
}

/*
 * After a large value was drained, an event pushed first (here a duplicate reply) must not
 * make the drained value count against the arena: a reply in the same buffer is still taken
 * (on_bytes consumes everything unless the outbox is really full).
 */
static void test_client_consumes_all_after_large_value(void)
{
    cb_client_config c = cli_config();
    cb_client *cli = cli_new(&c);
    static uint8_t value[150000];
    uint32_t big = cli_get(cli, 0);
    uint32_t small = cli_get(cli, 0);
    size_t len = cli_reply(cli_buf, CB_OP_GET, CB_STATUS_NOT_FOUND, small, NULL, 0, 0, 0);
    len += cli_reply(cli_buf + len, CB_OP_GET, 0, big, value, sizeof value, 5, 0);
    cli_feed(cli, cli_buf, len, 1);
    CU_ASSERT_EQUAL(cli_drain(cli), 2);
    uint32_t id2 = cli_get(cli, 2); /* reuses big's slot; small's slot remembers `small` */
    len = cli_reply(cli_buf, CB_OP_GET, CB_STATUS_NOT_FOUND, small, NULL, 0, 0, 0);
    len += cli_reply(cli_buf + len, CB_OP_GET, CB_STATUS_NOT_FOUND, id2, NULL, 0, 0, 0);
    cli_feed(cli, cli_buf, len, 3);
    size_t n = cli_drain(cli);
    CU_ASSERT_EQUAL(cli_count(n, CB_ACTION_COMPLETE), 1);
    CU_ASSERT_EQUAL(cli_count(n, CB_ACTION_EVENT), 1); /* DUPLICATE_REPLY */
    CU_ASSERT_EQUAL(cb_client_outstanding(cli), 0);
    cb_client_del(cli);
}

static void test_client_malformed_input(void)
{
    cb_client_config c = cli_config();
    c.attempts_max = 2;
    c.peer_count = 2;
    cb_client *cli = cli_new(&c);
    uint32_t id = cli_get(cli, 0);
    /* A valid prefix in one call, then a bad opcode byte in the next: caught on that byte. */
    uint8_t hdr[CB_FRAME_HEADER_BYTES];
    (void)cli_reply(hdr, CB_OP_GET, 0, id, NULL, 0, 0, 0);
    CU_ASSERT_EQUAL(cb_client_on_bytes(cli, 0, hdr, 3, 1), 3);
    const uint8_t bad_opcode[] = {0xEE, 0x08};
    CU_ASSERT_EQUAL(cb_client_on_bytes(cli, 0, bad_opcode, 2, 2), CB_ERR_BAD_OPCODE);
    size_t n = cli_drain(cli);
    CU_ASSERT_EQUAL(cli_count(n, CB_ACTION_CLOSE), 1);
    const uint8_t bad[] = {'G', 'E', 'T', ' ', 'k', '\r', '\n'};
    CU_ASSERT_EQUAL(cb_client_on_bytes(cli, 0, bad, sizeof bad, 3), CB_ERR_BAD_MAGIC);
    n = cli_drain(cli);
    CU_ASSERT_EQUAL(n, 2);
    const cb_action *ev = cli_find(n, CB_ACTION_EVENT);
    const cb_action *cl = cli_find(n, CB_ACTION_CLOSE);
    CU_ASSERT_FATAL(ev != NULL && cl != NULL);
    CU_ASSERT_EQUAL(ev->event.kind, CB_EVENT_PROTOCOL_ERROR);
    CU_ASSERT_EQUAL(ev->event.detail, CB_ERR_BAD_MAGIC);
    CU_ASSERT_EQUAL(ev->peer, 0);
    CU_ASSERT_EQUAL(cl->peer, 0);
    cb_client_stats s;
    cb_client_get_stats(cli, &s);
    CU_ASSERT_EQUAL(s.protocol_errors, 2);
    /* A header that breaks the limits mid-way: VALUE_TOO_LARGE as soon as it is known. */
    hdr[12] = 0x7F;
    CU_ASSERT_EQUAL(cb_client_on_bytes(cli, 0, hdr, 16, 4), CB_ERR_VALUE_TOO_LARGE);
    (void)cli_drain(cli);
    /* The request is still in flight and completes via its timers. */
    CU_ASSERT_EQUAL(cb_client_outstanding(cli), 1);
    CU_ASSERT_EQUAL(cb_client_on_timer(cli, 1000), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_client_on_timer(cli, 3000), CB_ERR_OK);
    n = cli_drain(cli);
    const cb_action *done = cli_find(n, CB_ACTION_COMPLETE);
    CU_ASSERT_FATAL(done != NULL);
    CU_ASSERT_EQUAL(done->completion.outcome, CB_OUTCOME_TIMEOUT);
    CU_ASSERT_EQUAL(done->completion.attempts, 2);
    /* The stream was reset by the error: a new reply decodes from its first byte. */
    uint32_t id2 = cli_get(cli, 4000);
    size_t len = cli_reply(cli_buf, CB_OP_GET, CB_STATUS_NOT_FOUND, id2, NULL, 0, 0, 0);
    cli_feed(cli, cli_buf, len, 4001);
    n = cli_drain(cli);
    CU_ASSERT_EQUAL(cli_count(n, CB_ACTION_COMPLETE), 1);
    cb_client_del(cli);
}

/* A partial reply dropped by on_reset does not corrupt the next one. */
static void test_client_reset_drops_partial(void)
{
    cb_client_config c = cli_config();
    cb_client *cli = cli_new(&c);
    uint32_t id = cli_get(cli, 0);
    size_t len = cli_reply(cli_buf, CB_OP_GET, CB_STATUS_NOT_FOUND, id, NULL, 0, 0, 0);
    CU_ASSERT_EQUAL(cb_client_on_bytes(cli, 0, cli_buf, 25, 1), 25);
    CU_ASSERT_EQUAL(cb_client_on_reset(cli, 0), CB_ERR_OK);
    CU_ASSERT_EQUAL(cb_client_on_reset(cli, 1), CB_ERR_UNKNOWN_CONN);
    cli_feed(cli, cli_buf, len, 2);
    CU_ASSERT_EQUAL(cli_drain(cli), 1);
    CU_ASSERT_EQUAL(cli_acts[0].completion.outcome, CB_OUTCOME_MISS);
    CU_ASSERT_EQUAL(cb_client_on_bytes(cli, 1, cli_buf, len, 2), CB_ERR_UNKNOWN_CONN);
    cb_client_del(cli);
}

typedef struct cli_invalid_case {
    const char *name;
    uint32_t peer;
    uint8_t op;
    uint8_t key_len;
    int with_key;
    uint32_t value_len;
    int with_value;
    uint8_t quiet;
    int expect_rc;
} cli_invalid_case;

static void test_client_invalid_ops(void)
{
    static const cli_invalid_case cases[] = {
        {"opcode_0", 0, 0x00, 1, 1, 0, 0, 0, CB_ERR_INVALID},
        {"opcode_0x0F", 0, 0x0F, 1, 1, 0, 0, 0, CB_ERR_INVALID},
        {"opcode_0xFF", 0, 0xFF, 1, 1, 0, 0, 0, CB_ERR_INVALID},
        {"get_no_key", 0, CB_OP_GET, 0, 0, 0, 0, 0, CB_ERR_INVALID},
        {"get_key_len_null_key", 0, CB_OP_GET, 3, 0, 0, 0, 0, CB_ERR_INVALID},
        {"set_no_key", 0, CB_OP_SET, 0, 0, 1, 1, 0, CB_ERR_INVALID},
        {"get_key_251", 0, CB_OP_GET, 251, 1, 0, 0, 0, CB_ERR_KEY_TOO_LONG},
        {"get_key_255", 0, CB_OP_GET, 255, 1, 0, 0, 0, CB_ERR_KEY_TOO_LONG},
        {"get_with_value", 0, CB_OP_GET, 1, 1, 1, 1, 0, CB_ERR_INVALID},
        {"delete_with_value", 0, CB_OP_DELETE, 1, 1, 1, 1, 0, CB_ERR_INVALID},
        {"flush_with_key", 0, CB_OP_FLUSH, 1, 1, 0, 0, 0, CB_ERR_INVALID},
        {"set_value_null", 0, CB_OP_SET, 1, 1, 5, 0, 0, CB_ERR_INVALID},
        {"set_value_too_large", 0, CB_OP_SET, 1, 1, 1025, 1, 0, CB_ERR_VALUE_TOO_LARGE},
        {"quiet", 0, CB_OP_GET, 1, 1, 0, 0, 1, CB_ERR_INVALID},
        {"peer_out_of_range", 2, CB_OP_GET, 1, 1, 0, 0, 0, CB_ERR_UNKNOWN_CONN},
        {"peer_max", UINT32_MAX, CB_OP_GET, 1, 1, 0, 0, 0, CB_ERR_UNKNOWN_CONN},
        {"key_250_ok", 0, CB_OP_GET, 250, 1, 0, 0, 0, CB_ERR_OK},
        {"value_1024_ok", 0, CB_OP_SET, 1, 1, 1024, 1, 0, CB_ERR_OK},
    };
    cb_client_config c = cli_config();
    c.peer_count = 2;
    c.value_bytes_max = 1024;
    cb_client *cli = cli_new(&c);
    static uint8_t bytes[2048];
    memset(bytes, 'x', sizeof bytes);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const cli_invalid_case *t = &cases[i];
        cb_client_op op;
        memset(&op, 0, sizeof op);
        op.op = t->op;
        op.key_len = t->key_len;
        op.key = t->with_key ? bytes : NULL;
        op.value_len = t->value_len;
        op.value = t->with_value ? bytes : NULL;
        op.quiet = t->quiet;
        int rc = cb_client_request(cli, t->peer, &op, 0, NULL);
        if (rc != t->expect_rc) {
            printf("\n  case %s: %s, want %s\n", t->name, cb_err_name(rc),
                   cb_err_name(t->expect_rc));
        }
        CU_ASSERT_EQUAL(rc, t->expect_rc);
        size_t n = cli_drain(cli);
        CU_ASSERT_EQUAL(n, rc == CB_ERR_OK ? 1u : 0u); /* nothing queued on error */
    }
    cb_client_stats s;
    cb_client_get_stats(cli, &s);
    CU_ASSERT_EQUAL(s.requests, 2);
    cb_client_del(cli);
}

static void test_client_invalid_config(void)
{
    cb_client_config base = cli_config();
    cb_client_config cs[9];
    for (size_t i = 0; i < 9; i++) {
        cs[i] = base;
    }
    cs[0].peer_count = 0;
    cs[1].outstanding_max = 0;
    cs[2].outstanding_max = 65537;
    cs[3].timeout_ns = 0;
    cs[4].timeout_max_ns = base.timeout_ns - 1;
    cs[5].attempts_max = 0;
    cs[6].attempts_max = 65;
    cs[7].jitter_ppm = 1000001;
    cs[8].value_bytes_max = CB_VALUE_BYTES_LIMIT + 1;
    cb_rng rng;
    cb_rng_init(&rng, 1);
    for (size_t i = 0; i < 9; i++) {
        cb_client *cli = (cb_client *)&rng; /* must be reset to NULL */
        CU_ASSERT_EQUAL(cb_client_new(&cs[i], &rng, NULL, &cli), CB_ERR_INVALID);
        CU_ASSERT_PTR_NULL(cli);
    }
    cb_client *cli = NULL;
    CU_ASSERT_EQUAL(cb_client_new(&base, NULL, NULL, &cli), CB_ERR_INVALID);
    cb_client_del(NULL);
}

static void test_client_new_nomem(void)
{
    cb_client_config c = cli_config();
    c.peer_count = 3;
    cb_rng rng;
    cb_rng_init(&rng, 1);
    uint64_t n = 0;
    for (;; n++) {
        cb_alloc_failing fa;
        cb_alloc_failing_init(&fa, n, 1);
        cb_client *cli = NULL;
        int rc = cb_client_new(&c, &rng, &fa.alloc, &cli);
        if (rc == CB_ERR_OK) {
            cb_client_del(cli);
            CU_ASSERT_EQUAL(fa.live, 0);
            break;
        }
        CU_ASSERT_EQUAL(rc, CB_ERR_NOMEM);
        CU_ASSERT_PTR_NULL(cli);
        CU_ASSERT_EQUAL(fa.live, 0);
        CU_ASSERT_FATAL(n < 50);
    }
    CU_ASSERT(n >= 5); /* client, slots, free list, framers, outbox (2) */
}

/* The request's frame buffer cannot be allocated: NOMEM, nothing queued or held. */
static void test_client_request_nomem(void)
{
    cb_client_config c = cli_config();
    cb_rng rng;
    cb_rng_init(&rng, 1);
    cb_alloc_failing fa;
    cb_alloc_failing_init(&fa, UINT64_MAX, 0);
    cb_client *cli = NULL;
    CU_ASSERT_EQUAL_FATAL(cb_client_new(&c, &rng, &fa.alloc, &cli), CB_ERR_OK);
    fa.fail_at = fa.calls;
    fa.fail_count = 1;
    cb_client_op op = cli_op(CB_OP_GET, "k");
    CU_ASSERT_EQUAL(cb_client_request(cli, 0, &op, 0, NULL), CB_ERR_NOMEM);
    CU_ASSERT_EQUAL(cb_client_outstanding(cli), 0);
    CU_ASSERT_EQUAL(cli_drain(cli), 0);
    CU_ASSERT_EQUAL(cb_client_next_deadline_ns(cli), UINT64_MAX);
    CU_ASSERT_EQUAL(cb_client_request(cli, 0, &op, 0, NULL), CB_ERR_OK);
    CU_ASSERT_EQUAL(cli_drain(cli), 1);
    cb_client_del(cli);
    CU_ASSERT_EQUAL(fa.live, 0);
}

static const cb_test_case tests[] = {
    {"request_encodes_frame", test_client_request_encodes_frame},
    {"outcome_mapping", test_client_outcome_mapping},
    {"retry_schedule_exact", test_client_retry_schedule_exact},
    {"retry_jitter_bounds", test_client_retry_jitter_bounds},
    {"late_reply", test_client_late_reply},
    {"duplicate_reply", test_client_duplicate_reply},
    {"unknown_reply", test_client_unknown_reply},
    {"busy", test_client_busy},
    {"outbox_full", test_client_outbox_full},
    {"timer_outbox_full", test_client_timer_outbox_full},
    {"split_and_batched_replies", test_client_split_and_batched_replies},
    {"get_value_intact", test_client_get_value_intact},
    {"consumes_all_after_large_value", test_client_consumes_all_after_large_value},
    {"malformed_input", test_client_malformed_input},
    {"reset_drops_partial", test_client_reset_drops_partial},
    {"invalid_ops", test_client_invalid_ops},
    {"invalid_config", test_client_invalid_config},
    {"new_nomem", test_client_new_nomem},
    {"request_nomem", test_client_request_nomem},
    {NULL, NULL},
};

CB_TEST_MAIN("cb_client", tests)
