/* cb_client.c: the cache client machine; see cb_client.h for the contract. */
#include "cb_client.h"

#include <assert.h>
#include <string.h>

#include "cb_err.h"
#include "cb_framer.h"
#include "cb_textreply.h"

#define CLIENT_SLOTS_MAX    65536u
#define CLIENT_ATTEMPTS_MAX 64u

/* A peer's HELLO exchange (docs/protocol.md §5.3): none sent on this connection yet, sent
 * and unanswered (values go uncompressed), answered (the codec holds the agreement). */
enum { CLIENT_HELLO_NEW = 0, CLIENT_HELLO_PENDING, CLIENT_HELLO_DONE };

typedef struct client_slot {
    uint8_t in_use;
    uint8_t op;
    uint8_t last_timed_out; /* how the previous request in this slot ended */
    uint8_t doomed;         /* text mode: its connection was reset; completes ERROR */
    uint32_t request_id;    /* current (in_use) or last request id */
    uint32_t generation;
    uint32_t peer;
    uint32_t attempts;
    uint64_t issue_ns;
    uint64_t deadline_ns;
    uint64_t wait_ns; /* this attempt's wait before jitter */
    uint64_t bytes_sent;
    uint64_t user_data;
    uint8_t *frame; /* the encoded request, re-sent as is on retry */
    size_t frame_len;
    size_t frame_cap;
} client_slot;

/* Text mode, per peer: the partial reply and the requests awaiting replies, in order. */
typedef struct client_text_peer {
    uint8_t *buf; /* a prefix of one reply, never more */
    size_t len;
    size_t cap;
    size_t need;    /* the whole reply's length once known, else 0 */
    uint32_t *fifo; /* outstanding_max slot indices, a ring */
    uint32_t head;
    uint32_t count;
} client_text_peer;

struct cb_client {
    cb_client_config cfg;
    const cb_alloc *alloc;
    cb_rng *rng;
    cb_frame_limits limits;
    client_slot *slots;
    uint32_t slot_count; /* a power of two >= outstanding_max */
    uint32_t slot_bits;
    uint32_t *free_slots; /* stack of free slot indices */
    uint32_t free_count;
    cb_framer *framers;     /* one per peer */
    cb_codec *codec;        /* compression and sealing, or NULL when both are off */
    client_text_peer *text; /* text mode: one per peer; NULL in binary mode */
    uint32_t *text_fifos;   /* peer_count * outstanding_max */
    cb_outbox outbox;
    cb_client_stats stats;
    /* HELLO (docs/protocol.md §5.3): per peer CLIENT_HELLO_*, NULL when none is ever sent;
     * and the encoded HELLO (request id 0). */
    uint8_t *hello;
    uint8_t hello_frame[CB_FRAME_HEADER_BYTES];
};

cb_client_config cb_client_config_default(void)
{
    cb_client_config c;
    memset(&c, 0, sizeof c);
    c.peer_count = 1;
    c.outstanding_max = 64;
    c.timeout_ns = 100u * 1000u * 1000u;
    c.timeout_max_ns = 1000u * 1000u * 1000u;
    c.attempts_max = 3;
    c.jitter_ppm = 100000;
    c.value_bytes_max = CB_VALUE_BYTES_MAX_DEFAULT;
    return c;
}

static int client_config_valid(const cb_client_config *c)
{
    return c->peer_count >= 1 && c->outstanding_max >= 1 &&
           c->outstanding_max <= CLIENT_SLOTS_MAX && c->timeout_ns > 0 &&
           c->timeout_max_ns >= c->timeout_ns && c->attempts_max >= 1 &&
           c->attempts_max <= CLIENT_ATTEMPTS_MAX && c->jitter_ppm <= 1000000u &&
           c->value_bytes_max <= CB_VALUE_BYTES_LIMIT && c->protocol <= CB_CLIENT_PROTOCOL_TEXT &&
           (c->protocol == CB_CLIENT_PROTOCOL_BINARY || !cb_codec_enabled(&c->codec));
}

/* Connection to `peer` is new: a HELLO goes first, and values go uncompressed until the
 * reply settles the algorithm. */
static void client_hello_fresh(cb_client *cli, uint32_t peer)
{
    if (cli->hello != NULL) {
        cli->hello[peer] = CLIENT_HELLO_NEW;
        cb_codec_agree(cli->codec, peer, CB_COMPRESS_NONE);
    }
}

/* With compression on over a stream transport: the per-peer HELLO states and the HELLO
 * frame, whose arg is the bitmask of what we decode, cas our algorithm, ttl_ms our level. */
static int client_hello_setup(cb_client *cli)
{
    const cb_codec_config *cc = &cli->cfg.codec;
    if (!cb_codec_compressing(cli->codec) || cc->connectionless) {
        return CB_ERR_OK;
    }
    cli->hello = cb_alloc_calloc(cli->alloc, cli->cfg.peer_count, sizeof cli->hello[0]);
    if (cli->hello == NULL) {
        return CB_ERR_NOMEM;
    }
    cb_frame f;
    memset(&f, 0, sizeof f);
    f.opcode = CB_OP_HELLO;
    f.arg = cb_codec_hello_mask(cli->codec);
    f.cas = cb_codec_alg(cli->codec);
    f.ttl_ms = (uint32_t)cc->compress_level;
    long n = cb_frame_encode(&f, cli->hello_frame, sizeof cli->hello_frame);
    assert(n == (long)sizeof cli->hello_frame);
    (void)n;
    for (uint32_t p = 0; p < cli->cfg.peer_count; p++) {
        client_hello_fresh(cli, p);
    }
    return CB_ERR_OK;
}

static int client_alloc_tables(cb_client *cli)
{
    const cb_client_config *c = &cli->cfg;
    cli->slots = cb_alloc_calloc(cli->alloc, cli->slot_count, sizeof cli->slots[0]);
    cli->free_slots = cb_alloc_calloc(cli->alloc, cli->slot_count, sizeof cli->free_slots[0]);
    cli->framers = cb_alloc_calloc(cli->alloc, c->peer_count, sizeof cli->framers[0]);
    if (cli->slots == NULL || cli->free_slots == NULL || cli->framers == NULL) {
        return CB_ERR_NOMEM;
    }
    /* Completions copy GET values into the arena: room for a few maximal ones. Sealed
     * requests are written there too (each send seals afresh): room for a maximal one. */
    if (c->protocol == CB_CLIENT_PROTOCOL_TEXT) {
        cli->text = cb_alloc_calloc(cli->alloc, c->peer_count, sizeof cli->text[0]);
        cli->text_fifos = cb_alloc_calloc(cli->alloc, (size_t)c->peer_count * c->outstanding_max,
                                          sizeof cli->text_fifos[0]);
        if (cli->text == NULL || cli->text_fifos == NULL) {
            return CB_ERR_NOMEM;
        }
        for (uint32_t p = 0; p < c->peer_count; p++) {
            cli->text[p].fifo = cli->text_fifos + (size_t)p * c->outstanding_max;
        }
    }
    size_t actions = c->outbox_actions ? c->outbox_actions : 2u * c->outstanding_max + 16u;
    size_t arena = (size_t)c->value_bytes_max + 64u * 1024u;
    if (cb_codec_enabled(&c->codec)) {
        int rc = cb_codec_new(&c->codec, CB_CODEC_CLIENT, c->peer_count, c->value_bytes_max,
                              cli->alloc, &cli->codec);
        if (rc != CB_ERR_OK) {
            return rc;
        }
        cli->limits.value_bytes_max = cb_codec_wire_value_max(cli->codec, c->value_bytes_max);
        arena += cb_codec_sealing(cli->codec) ? (size_t)c->value_bytes_max + 64u * 1024u : 0;
        rc = client_hello_setup(cli);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    return cb_outbox_init(&cli->outbox, actions, arena, cli->alloc);
}

int cb_client_new(const cb_client_config *cfg, cb_rng *rng, const cb_alloc *alloc, cb_client **out)
{
    *out = NULL;
    if (!client_config_valid(cfg) || rng == NULL) {
        return CB_ERR_INVALID;
    }
    cb_client *cli = cb_alloc_calloc(alloc, 1, sizeof *cli);
    if (cli == NULL) {
        return CB_ERR_NOMEM;
    }
    cli->cfg = *cfg;
    cli->alloc = alloc;
    cli->rng = rng;
    cli->limits.value_bytes_max = cfg->value_bytes_max;
    cli->slot_count = 1;
    while (cli->slot_count < cfg->outstanding_max) {
        cli->slot_count *= 2;
        cli->slot_bits++;
    }
    int rc = client_alloc_tables(cli);
    if (rc != CB_ERR_OK) {
        cb_client_del(cli);
        return rc;
    }
    /* Pop order: slot 0 first, so ids are predictable in traces. */
    for (uint32_t i = 0; i < cfg->outstanding_max; i++) {
        cli->free_slots[i] = cfg->outstanding_max - 1 - i;
    }
    cli->free_count = cfg->outstanding_max;
    *out = cli;
    return CB_ERR_OK;
}

void cb_client_del(cb_client *cli)
{
    if (cli == NULL) {
        return;
    }
    const cb_alloc *a = cli->alloc;
    if (cli->slots != NULL) {
        for (uint32_t i = 0; i < cli->slot_count; i++) {
            cb_alloc_free(a, cli->slots[i].frame);
        }
    }
    if (cli->framers != NULL) {
        for (uint32_t p = 0; p < cli->cfg.peer_count; p++) {
            cb_framer_free(&cli->framers[p], a);
        }
    }
    if (cli->text != NULL) {
        for (uint32_t p = 0; p < cli->cfg.peer_count; p++) {
            cb_alloc_free(a, cli->text[p].buf);
        }
    }
    cb_alloc_free(a, cli->text);
    cb_alloc_free(a, cli->text_fifos);
    cb_outbox_free(&cli->outbox, a);
    cb_codec_del(cli->codec);
    cb_alloc_free(a, cli->hello);
    cb_alloc_free(a, cli->framers);
    cb_alloc_free(a, cli->free_slots);
    cb_alloc_free(a, cli->slots);
    cb_alloc_free(a, cli);
}

static int client_op_is_store(uint8_t op)
{
    return op == CB_OP_SET || op == CB_OP_ADD || op == CB_OP_REPLACE || op == CB_OP_APPEND ||
           op == CB_OP_PREPEND || op == CB_OP_CAS;
}

static int client_op_needs_key(uint8_t op)
{
    return op != CB_OP_FLUSH && op != CB_OP_STATS && op != CB_OP_NOOP && op != CB_OP_SCAN;
}

static int client_check_op(const cb_client *cli, const cb_client_op *op)
{
    if (!cb_op_valid(op->op) || op->op == CB_OP_HELLO || op->quiet) {
        return CB_ERR_INVALID;
    }
    if (op->key_len > CB_KEY_BYTES_MAX) {
        return CB_ERR_KEY_TOO_LONG;
    }
    if (client_op_needs_key(op->op) != (op->key_len > 0) || (op->key_len > 0 && !op->key)) {
        return CB_ERR_INVALID;
    }
    if (!client_op_is_store(op->op) && op->value_len > 0) {
        return CB_ERR_INVALID;
    }
    if (op->value_len > cli->cfg.value_bytes_max) {
        return CB_ERR_VALUE_TOO_LARGE;
    }
    if (op->value_len > 0 && op->value == NULL) {
        return CB_ERR_INVALID;
    }
    return CB_ERR_OK;
}

/* The wait before attempt `attempt` (1-based) times out: exponential, capped, jittered. */
static uint64_t client_wait_ns(cb_client *cli, uint32_t attempt)
{
    uint64_t wait = cli->cfg.timeout_ns;
    for (uint32_t i = 1; i < attempt && wait < cli->cfg.timeout_max_ns; i++) {
        wait = wait > cli->cfg.timeout_max_ns / 2 ? cli->cfg.timeout_max_ns : wait * 2;
    }
    if (wait > cli->cfg.timeout_max_ns) {
        wait = cli->cfg.timeout_max_ns;
    }
    if (cli->cfg.jitter_ppm > 0) {
        uint64_t span = wait / 1000000u * cli->cfg.jitter_ppm +
                        wait % 1000000u * cli->cfg.jitter_ppm / 1000000u;
        wait += cb_rng_below(cli->rng, span + 1);
    }
    return wait;
}

/* Room for `len` bytes in slot `s`'s request buffer. */
static int client_frame_room(cb_client *cli, client_slot *s, size_t len)
{
    if (len > s->frame_cap) {
        uint8_t *buf = cb_alloc_malloc(cli->alloc, len);
        if (buf == NULL) {
            return CB_ERR_NOMEM;
        }
        cb_alloc_free(cli->alloc, s->frame);
        s->frame = buf;
        s->frame_cap = len;
    }
    return CB_ERR_OK;
}

static int client_encode_text(cb_client *cli, client_slot *s, const cb_client_op *op)
{
    cb_text_op t = {op->op,        op->key,    op->key_len, op->value,
                    op->value_len, op->ttl_ms, op->cas,     op->delta};
    int rc = client_frame_room(cli, s, cb_text_request_bytes_max(&t));
    if (rc != CB_ERR_OK) {
        return rc;
    }
    long n = cb_text_encode_request(&t, s->frame, s->frame_cap);
    if (n < 0) {
        return (int)n;
    }
    s->frame_len = (size_t)n;
    return CB_ERR_OK;
}

static int client_encode(cb_client *cli, client_slot *s, uint32_t peer, const cb_client_op *op)
{
    if (cli->text != NULL) {
        return client_encode_text(cli, s, op);
    }
    cb_frame f;
    memset(&f, 0, sizeof f);
    f.opcode = op->op;
    f.key_len = op->key_len;
    f.key = op->key;
    f.value_len = op->value_len;
    f.value = op->value;
    f.ttl_ms = op->ttl_ms;
    f.cas = op->cas;
    f.arg = op->delta;
    f.request_id = s->request_id;
    if (cli->codec != NULL) {
        /* Once per request: a retry re-sends the same compressed frame. The value was
         * checked against the limit, so this cannot fail. */
        (void)cb_codec_compress_conn(cli->codec, peer, &f);
    }
    int rc = client_frame_room(cli, s, cb_frame_encoded_len(&f));
    if (rc != CB_ERR_OK) {
        return rc;
    }
    long n = cb_frame_encode(&f, s->frame, s->frame_cap);
    if (n < 0) {
        return (int)n;
    }
    s->frame_len = (size_t)n;
    return CB_ERR_OK;
}

static uint32_t client_next_id(cb_client *cli, uint32_t slot_idx)
{
    client_slot *s = &cli->slots[slot_idx];
    uint32_t gen_mask = UINT32_MAX >> cli->slot_bits;
    s->generation = (s->generation + 1) & gen_mask;
    if (s->generation == 0) {
        s->generation = 1; /* id 0 is never issued */
    }
    return (s->generation << cli->slot_bits) | slot_idx;
}

/* The most the outbox arena must hold to send `frame_len` bytes of request. */
static size_t client_send_room(const cb_client *cli, size_t frame_len)
{
    if (cli->codec == NULL || !cb_codec_sealing(cli->codec)) {
        return 0; /* sent from the slot's own buffer */
    }
    return frame_len + cb_codec_overhead_max(cli->codec);
}

/* Seal slot `s`'s frame afresh into the outbox arena (every send is a new sealed frame:
 * the same bytes twice would be a replay). */
static int client_seal(cb_client *cli, const client_slot *s, const uint8_t **data, size_t *len)
{
    cb_frame f;
    cb_frame_limits any = {.value_bytes_max = CB_VALUE_BYTES_LIMIT};
    long rc = cb_frame_decode(s->frame, s->frame_len, &any, &f);
    assert(rc == (long)s->frame_len); /* we encoded it */
    size_t wire_len = cb_codec_wire_len(cli->codec, s->peer, &f);
    uint8_t *out = cb_outbox_reserve(&cli->outbox, wire_len);
    if (out == NULL) {
        return CB_ERR_FULL;
    }
    rc = cb_codec_write(cli->codec, s->peer, &f, out, wire_len);
    assert(rc == (long)wire_len); /* sized by cb_codec_wire_len just above */
    (void)rc;
    *data = out;
    *len = wire_len;
    return CB_ERR_OK;
}

/* Does a send to `peer` now start its connection (a HELLO must go first)? */
static int client_hello_due(const cb_client *cli, uint32_t peer)
{
    return cli->hello != NULL && cli->hello[peer] == CLIENT_HELLO_NEW;
}

/* The outbox room a send to `peer` of `frame_len` bytes needs: actions and arena bytes. */
static int client_has_send_room(const cb_client *cli, uint32_t peer, size_t actions,
                                size_t frame_len)
{
    size_t bytes = client_send_room(cli, frame_len);
    if (client_hello_due(cli, peer)) {
        actions++;
        bytes += client_send_room(cli, CB_FRAME_HEADER_BYTES);
    }
    return cb_outbox_has_room_n(&cli->outbox, actions, bytes);
}

/* Queue the HELLO to `peer` (room was checked): sealed afresh when sealing, else from
 * hello_frame. */
static void client_send_hello(cb_client *cli, uint32_t peer)
{
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_SEND;
    a.peer = peer;
    a.data = cli->hello_frame;
    a.data_len = sizeof cli->hello_frame;
    if (cb_codec_sealing(cli->codec)) {
        cb_frame f;
        long rc = cb_frame_decode(cli->hello_frame, sizeof cli->hello_frame, NULL, &f);
        assert(rc == (long)sizeof cli->hello_frame);
        size_t wire_len = cb_codec_wire_len(cli->codec, peer, &f);
        uint8_t *out = cb_outbox_reserve(&cli->outbox, wire_len);
        assert(out != NULL);
        rc = cb_codec_write(cli->codec, peer, &f, out, wire_len);
        assert(rc == (long)wire_len);
        (void)rc;
        a.data = out;
        a.data_len = wire_len;
    }
    int rc = cb_outbox_push(&cli->outbox, &a);
    assert(rc == CB_ERR_OK);
    (void)rc;
    cli->hello[peer] = CLIENT_HELLO_PENDING;
    cli->stats.bytes_sent += a.data_len;
}

static int client_send(cb_client *cli, uint32_t slot_idx)
{
    client_slot *s = &cli->slots[slot_idx];
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_SEND;
    a.peer = s->peer;
    a.data = s->frame;
    a.data_len = s->frame_len;
    if (client_hello_due(cli, s->peer)) {
        client_send_hello(cli, s->peer);
    }
    if (client_send_room(cli, s->frame_len) > 0) {
        int rc = client_seal(cli, s, &a.data, &a.data_len);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    int rc = cb_outbox_push(&cli->outbox, &a);
    if (rc == CB_ERR_OK) {
        s->bytes_sent += a.data_len;
        cli->stats.bytes_sent += a.data_len;
    }
    return rc;
}

int cb_client_request(cb_client *cli, uint32_t peer, const cb_client_op *op, uint64_t now_ns,
                      uint32_t *request_id)
{
    if (peer >= cli->cfg.peer_count) {
        return CB_ERR_UNKNOWN_CONN;
    }
    int rc = client_check_op(cli, op);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    if (cli->free_count == 0) {
        return CB_ERR_BUSY;
    }
    /* Room for the frame at its largest (compression only shrinks it). */
    size_t most = CB_FRAME_HEADER_BYTES + (size_t)op->key_len + op->value_len;
    if (!client_has_send_room(cli, peer, 1, most)) {
        return CB_ERR_FULL;
    }
    uint32_t idx = cli->free_slots[cli->free_count - 1];
    client_slot *s = &cli->slots[idx];
    assert(!s->in_use);
    s->request_id = client_next_id(cli, idx);
    rc = client_encode(cli, s, peer, op);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    cli->free_count--;
    if (cli->text != NULL) {
        client_text_peer *tp = &cli->text[peer];
        tp->fifo[(tp->head + tp->count++) % cli->cfg.outstanding_max] = idx;
    }
    s->in_use = 1;
    s->doomed = 0;
    s->op = op->op;
    s->peer = peer;
    s->attempts = 1;
    s->issue_ns = now_ns;
    s->wait_ns = client_wait_ns(cli, 1);
    s->deadline_ns = now_ns + s->wait_ns;
    s->bytes_sent = 0;
    s->user_data = op->user_data;
    rc = client_send(cli, idx);
    assert(rc == CB_ERR_OK); /* room was checked above */
    cli->stats.requests++;
    if (request_id != NULL) {
        *request_id = s->request_id;
    }
    return CB_ERR_OK;
}

static uint8_t client_outcome(uint8_t op, uint16_t status)
{
    switch (status) {
    case CB_STATUS_OK:
        if (op == CB_OP_GET) {
            return CB_OUTCOME_HIT;
        }
        if (client_op_is_store(op)) {
            return CB_OUTCOME_STORED;
        }
        return op == CB_OP_DELETE ? CB_OUTCOME_DELETED : CB_OUTCOME_OK;
    case CB_STATUS_NOT_FOUND:
        return op == CB_OP_GET ? CB_OUTCOME_MISS : CB_OUTCOME_NOT_FOUND;
    case CB_STATUS_EXISTS:
        return CB_OUTCOME_EXISTS;
    case CB_STATUS_NOT_STORED:
        return CB_OUTCOME_NOT_STORED;
    default:
        return CB_OUTCOME_ERROR;
    }
}

/* Emit the one COMPLETE of slot `idx` and free the slot. `reply` is NULL on timeout.
 * The caller has checked that the outbox has room for the action and the value. */
static void client_complete(cb_client *cli, uint32_t idx, const cb_frame *reply, uint64_t now_ns,
                            uint64_t reply_bytes)
{
    client_slot *s = &cli->slots[idx];
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_COMPLETE;
    a.peer = s->peer;
    cb_completion *c = &a.completion;
    c->user_data = s->user_data;
    c->request_id = s->request_id;
    c->peer = s->peer;
    c->op = s->op;
    c->attempts = s->attempts;
    c->issue_ns = s->issue_ns;
    c->complete_ns = now_ns;
    c->bytes_sent = s->bytes_sent;
    c->bytes_received = reply_bytes;
    if (reply == NULL) {
        c->outcome = CB_OUTCOME_TIMEOUT;
        cli->stats.timeouts++;
    } else {
        c->outcome = client_outcome(s->op, reply->status);
        c->status = reply->status;
        c->cas = reply->cas;
        c->number = reply->arg;
        if (reply->value_len > 0) {
            uint8_t *v = cb_outbox_reserve(&cli->outbox, reply->value_len);
            assert(v != NULL);
            memcpy(v, reply->value, reply->value_len);
            c->value = v;
            c->value_len = reply->value_len;
        }
    }
    int rc = cb_outbox_push(&cli->outbox, &a);
    assert(rc == CB_ERR_OK);
    (void)rc;
    s->in_use = 0;
    s->last_timed_out = reply == NULL;
    cli->free_slots[cli->free_count++] = idx;
    cli->stats.completed++;
}

static void client_event(cb_client *cli, uint32_t peer, uint8_t kind, int32_t detail,
                         uint32_t request_id)
{
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_EVENT;
    a.peer = peer;
    a.event.kind = kind;
    a.event.detail = detail;
    a.event.request_id = request_id;
    /* Events are best effort: a full outbox loses the event, never an outcome. The
     * matching counter in cb_client_stats is always updated. */
    (void)cb_outbox_push(&cli->outbox, &a);
}

/* A reply that matches no request in flight: late, duplicate, or unknown. */
static void client_on_stray(cb_client *cli, uint32_t peer, const cb_frame *f)
{
    uint32_t idx = f->request_id & (cli->slot_count - 1);
    const client_slot *s = idx < cli->cfg.outstanding_max ? &cli->slots[idx] : NULL;
    if (s != NULL && !s->in_use && s->request_id == f->request_id && s->generation != 0) {
        if (s->last_timed_out) {
            cli->stats.late_replies++;
            client_event(cli, peer, CB_EVENT_LATE_REPLY, 0, f->request_id);
        } else {
            cli->stats.duplicate_replies++;
            client_event(cli, peer, CB_EVENT_DUPLICATE_REPLY, 0, f->request_id);
        }
        return;
    }
    cli->stats.unknown_replies++;
}

static void client_on_reply(cb_client *cli, uint32_t peer, const cb_frame *f, uint64_t now_ns,
                            uint64_t frame_bytes)
{
    cli->stats.bytes_received += frame_bytes;
    uint32_t idx = f->request_id & (cli->slot_count - 1);
    int matches = (f->flags & CB_FLAG_RESPONSE) && idx < cli->cfg.outstanding_max &&
                  cli->slots[idx].in_use && cli->slots[idx].request_id == f->request_id &&
                  cli->slots[idx].op == f->opcode;
    if (!matches) {
        client_on_stray(cli, peer, f);
        return;
    }
    client_complete(cli, idx, f, now_ns, frame_bytes);
}

/* Text mode: forget `peer`'s partial reply and doom every request awaiting a reply from it:
 * each completes ERROR at the next cb_client_on_timer (its deadline becomes 0). */
static void client_text_reset(cb_client *cli, uint32_t peer)
{
    client_text_peer *tp = &cli->text[peer];
    for (uint32_t k = 0; k < tp->count; k++) {
        client_slot *s = &cli->slots[tp->fifo[(tp->head + k) % cli->cfg.outstanding_max]];
        s->doomed = 1;
        s->deadline_ns = 0;
    }
    tp->head = 0;
    tp->count = 0;
    tp->len = 0;
    tp->need = 0;
}

/* Close `peer` after undecodable input (PROTOCOL_ERROR) or a reply that did not open or
 * decompress (FRAME_REJECTED): its partial input and seal sessions are dropped. */
static long client_close_peer(cb_client *cli, uint32_t peer, uint8_t kind, int err)
{
    if (kind == CB_EVENT_PROTOCOL_ERROR) {
        cli->stats.protocol_errors++;
    } else {
        cli->stats.frames_rejected++;
    }
    cb_framer_reset(&cli->framers[peer]);
    if (cli->codec != NULL) {
        cb_codec_reset(cli->codec, peer);
        client_hello_fresh(cli, peer);
    }
    if (cli->text != NULL) {
        client_text_reset(cli, peer);
    }
    client_event(cli, peer, kind, err, 0);
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_CLOSE;
    a.peer = peer;
    (void)cb_outbox_push(&cli->outbox, &a); /* best effort, like events */
    return err;
}

/* A HELLO frame from `peer`: the reply to ours settles the connection's algorithm (ours if
 * the server named it with status OK, else none); anything else (a request, a reply we did
 * not ask for, or a second one) is counted as unknown and ignored. */
static void client_on_hello(cb_client *cli, uint32_t peer, const cb_frame *f, uint64_t wire_len)
{
    cli->stats.bytes_received += wire_len;
    if (cli->hello == NULL || cli->hello[peer] != CLIENT_HELLO_PENDING ||
        (f->flags & CB_FLAG_RESPONSE) == 0 || f->request_id != 0) {
        cli->stats.unknown_replies++;
        return;
    }
    uint8_t alg = f->status == CB_STATUS_OK && f->arg == cb_codec_alg(cli->codec)
                      ? cb_codec_alg(cli->codec)
                      : (uint8_t)CB_COMPRESS_NONE;
    cb_codec_agree(cli->codec, peer, alg);
    cli->hello[peer] = CLIENT_HELLO_DONE;
}

/*
 * One whole frame from `peer`: open and decompress it if a codec is configured, then match
 * it. Returns CB_ERR_OK, or the error that closed the connection (docs/protocol.md §6.3).
 */
static long client_on_frame(cb_client *cli, uint32_t peer, const cb_frame *wire, uint64_t now_ns)
{
    uint64_t wire_len = cb_frame_encoded_len(wire);
    if (cli->codec == NULL && (wire->flags & (CB_FLAG_COMPRESSED | CB_FLAG_ENCRYPTED)) != 0) {
        return client_close_peer(cli, peer, CB_EVENT_FRAME_REJECTED, CB_ERR_CODEC_MISMATCH);
    }
    if (cli->codec == NULL) {
        client_on_reply(cli, peer, wire, now_ns, wire_len);
        return CB_ERR_OK;
    }
    cb_frame f;
    int rc = cb_codec_open(cli->codec, peer, wire, &f);
    if (rc == CB_ERR_OK) {
        rc = cb_codec_decompress(cli->codec, &f);
    }
    if (rc == CB_ERR_OK && f.opcode == CB_OP_HELLO) {
        client_on_hello(cli, peer, &f, wire_len);
        return CB_ERR_OK;
    }
    if (rc == CB_ERR_OK) {
        client_on_reply(cli, peer, &f, now_ns, wire_len);
        return CB_ERR_OK;
    }
    if (cb_codec_datagram(cli->codec)) {
        cli->stats.frames_rejected++;
        client_event(cli, peer, CB_EVENT_FRAME_REJECTED, rc, wire->request_id); /* dropped */
        return CB_ERR_OK;
    }
    return client_close_peer(cli, peer, CB_EVENT_FRAME_REJECTED, rc);
}

/* Room for `len` bytes in tp's buffer, which grows geometrically (bounded by the parser's
 * limits: it never holds more than one reply's prefix). */
static int client_text_grow(cb_client *cli, client_text_peer *tp, size_t len)
{
    if (len <= tp->cap) {
        return CB_ERR_OK;
    }
    size_t cap = tp->cap > 0 ? tp->cap : 512u;
    while (cap < len) {
        cap *= 2;
    }
    uint8_t *buf = cb_alloc_malloc(cli->alloc, cap);
    if (buf == NULL) {
        return CB_ERR_NOMEM;
    }
    if (tp->len > 0) {
        memcpy(buf, tp->buf, tp->len);
    }
    cb_alloc_free(cli->alloc, tp->buf);
    tp->buf = buf;
    tp->cap = cap;
    return CB_ERR_OK;
}

/*
 * Parse `peer`'s next reply, from the input in place when nothing is buffered, else by
 * buffering only as much input as the reply can still need. *taken: input bytes used.
 * Returns the parse result (cb_text_parse_reply) or CB_ERR_NOMEM.
 */
static long client_text_next(cb_client *cli, uint32_t peer, const uint8_t *in, size_t in_len,
                             size_t *taken, cb_text_reply *r)
{
    client_text_peer *tp = &cli->text[peer];
    uint8_t op = cli->slots[tp->fifo[tp->head]].op;
    uint32_t vmax = cli->cfg.value_bytes_max;
    *taken = 0;
    if (tp->len == 0) {
        long rc = cb_text_parse_reply(in, in_len, op, vmax, r);
        if (rc != CB_ERR_NEED_MORE) {
            *taken = rc > 0 ? (size_t)rc : 0;
            return rc;
        }
        tp->need = r->need_bytes;
    }
    size_t limit = op == CB_OP_STATS ? CB_TEXT_REPLY_STATS_BYTES_MAX : CB_TEXT_LINE_BYTES_MAX;
    size_t want = (tp->need > 0 ? tp->need : limit) - tp->len;
    size_t take = want < in_len ? want : in_len;
    if (client_text_grow(cli, tp, tp->len + take) != CB_ERR_OK) {
        return CB_ERR_NOMEM;
    }
    memcpy(tp->buf + tp->len, in, take);
    tp->len += take;
    long rc = cb_text_parse_reply(tp->buf, tp->len, op, vmax, r);
    if (rc > 0) {
        *taken = take - (tp->len - (size_t)rc); /* what follows the reply stays untaken */
        tp->len = 0;
        tp->need = 0;
    } else if (rc == CB_ERR_NEED_MORE) {
        *taken = take;
        tp->need = r->need_bytes;
    }
    return rc;
}

/* A GET hit must name the key asked for (the request is "gets <key>\r\n"). */
static int client_text_key_ok(const client_slot *s, const cb_text_reply *r)
{
    if (s->op != CB_OP_GET || r->key_len == 0) {
        return 1;
    }
    return s->frame_len == r->key_len + 7u && memcmp(s->frame + 5, r->key, r->key_len) == 0;
}

/* Complete the oldest request awaiting a reply from `peer` with `r`. */
static void client_text_complete(cb_client *cli, uint32_t peer, const cb_text_reply *r,
                                 uint64_t now_ns)
{
    client_text_peer *tp = &cli->text[peer];
    uint32_t idx = tp->fifo[tp->head];
    tp->head = (tp->head + 1) % cli->cfg.outstanding_max;
    tp->count--;
    cb_frame f;
    memset(&f, 0, sizeof f);
    f.status = r->status;
    f.cas = r->cas;
    f.arg = r->number;
    f.value = r->value;
    f.value_len = r->value_len;
    cli->stats.bytes_received += r->consumed;
    client_complete(cli, idx, &f, now_ns, r->consumed);
}

/* cb_client_on_bytes in text mode: replies match requests first in, first out. */
static long client_text_bytes(cb_client *cli, uint32_t peer, const uint8_t *buf, size_t buf_len,
                              uint64_t now_ns)
{
    size_t used = 0;
    while (used < buf_len && cb_outbox_has_room_n(&cli->outbox, 2, cli->cfg.value_bytes_max)) {
        if (cli->text[peer].count == 0) {
            cli->stats.unknown_replies++; /* a reply to nothing: out of step */
            return client_close_peer(cli, peer, CB_EVENT_PROTOCOL_ERROR, CB_ERR_MALFORMED);
        }
        cb_text_reply r;
        size_t taken = 0;
        long rc = client_text_next(cli, peer, buf + used, buf_len - used, &taken, &r);
        used += taken;
        if (rc == CB_ERR_NEED_MORE || rc == CB_ERR_NOMEM) {
            break;
        }
        const client_slot *s = &cli->slots[cli->text[peer].fifo[cli->text[peer].head]];
        if (rc > 0 && !client_text_key_ok(s, &r)) {
            rc = CB_ERR_MALFORMED;
        }
        if (rc < 0) {
            return client_close_peer(cli, peer, CB_EVENT_PROTOCOL_ERROR, (int)rc);
        }
        client_text_complete(cli, peer, &r, now_ns);
    }
    return (long)used;
}

long cb_client_on_bytes(cb_client *cli, uint32_t peer, const uint8_t *buf, size_t buf_len,
                        uint64_t now_ns)
{
    if (peer >= cli->cfg.peer_count) {
        return CB_ERR_UNKNOWN_CONN;
    }
    if (cli->text != NULL) {
        return client_text_bytes(cli, peer, buf, buf_len, now_ns);
    }
    const uint8_t *in = buf;
    size_t in_len = buf_len;
    /* Room for a completion carrying a maximal value, and one event, before each frame. */
    while (in_len > 0 && cb_outbox_has_room_n(&cli->outbox, 2, cli->cfg.value_bytes_max)) {
        cb_frame f;
        int rc = cb_framer_next(&cli->framers[peer], &in, &in_len, &cli->limits, cli->alloc, &f);
        if (rc < 0 && rc != CB_ERR_NOMEM) {
            return client_close_peer(cli, peer, CB_EVENT_PROTOCOL_ERROR, rc);
        }
        if (rc <= 0) {
            break; /* input used up, or out of memory: the rest stays untaken */
        }
        long frc = client_on_frame(cli, peer, &f, now_ns);
        if (frc < 0) {
            return frc;
        }
    }
    return (long)(buf_len - in_len);
}

int cb_client_on_reset(cb_client *cli, uint32_t peer)
{
    if (peer >= cli->cfg.peer_count) {
        return CB_ERR_UNKNOWN_CONN;
    }
    cb_framer_reset(&cli->framers[peer]);
    if (cli->codec != NULL) {
        cb_codec_reset(cli->codec, peer);
        client_hello_fresh(cli, peer);
    }
    if (cli->text != NULL) {
        client_text_reset(cli, peer);
    }
    return CB_ERR_OK;
}

/* Complete slot `idx` with outcome ERROR, status 0 (cancelled, or its connection reset).
 * The caller has checked that the outbox has room for one action. */
static void client_fail(cb_client *cli, uint32_t idx, uint64_t now_ns)
{
    /* Completed as a timeout (no reply), then relabelled: the newest action is it. */
    client_complete(cli, idx, NULL, now_ns, 0);
    cli->stats.timeouts--;
    size_t last = (cli->outbox.head + cli->outbox.count - 1) % cli->outbox.action_cap;
    cli->outbox.actions[last].completion.outcome = CB_OUTCOME_ERROR;
}

/* Text mode: a doomed slot fails; a timed-out one completes TIMEOUT and its peer is closed,
 * since a late reply would be taken for the next request's (no retry over text). */
static int client_expire_text(cb_client *cli, uint32_t idx, uint64_t now_ns)
{
    client_slot *s = &cli->slots[idx];
    if (!cb_outbox_has_room_n(&cli->outbox, 2, 0)) {
        return CB_ERR_FULL;
    }
    if (s->doomed) {
        client_fail(cli, idx, now_ns);
        return CB_ERR_OK;
    }
    uint32_t peer = s->peer;
    client_complete(cli, idx, NULL, now_ns, 0);
    client_text_reset(cli, peer); /* also marks idx, now free: harmless, reset on reuse */
    cb_framer_reset(&cli->framers[peer]);
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_CLOSE;
    a.peer = peer;
    int rc = cb_outbox_push(&cli->outbox, &a);
    assert(rc == CB_ERR_OK); /* room was checked above */
    return rc;
}

/* Retry or time out slot `idx`, whose deadline has passed. */
static int client_expire(cb_client *cli, uint32_t idx, uint64_t now_ns)
{
    client_slot *s = &cli->slots[idx];
    if (cli->text != NULL) {
        return client_expire_text(cli, idx, now_ns);
    }
    if (!client_has_send_room(cli, s->peer, 2, s->frame_len)) {
        return CB_ERR_FULL;
    }
    if (s->attempts >= cli->cfg.attempts_max) {
        client_complete(cli, idx, NULL, now_ns, 0);
        return CB_ERR_OK;
    }
    s->attempts++;
    s->wait_ns = client_wait_ns(cli, s->attempts);
    s->deadline_ns = now_ns + s->wait_ns;
    int rc = client_send(cli, idx);
    assert(rc == CB_ERR_OK);
    cli->stats.retries++;
    client_event(cli, s->peer, CB_EVENT_RETRY, (int32_t)s->attempts, s->request_id);
    return rc;
}

int cb_client_on_timer(cb_client *cli, uint64_t now_ns)
{
    for (uint32_t i = 0; i < cli->cfg.outstanding_max; i++) {
        if (!cli->slots[i].in_use || cli->slots[i].deadline_ns > now_ns) {
            continue;
        }
        int rc = client_expire(cli, i, now_ns);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    return CB_ERR_OK;
}

int cb_client_abandon(cb_client *cli, uint64_t now_ns)
{
    for (uint32_t p = 0; cli->text != NULL && p < cli->cfg.peer_count; p++) {
        client_text_reset(cli, p); /* nothing awaits a reply any more */
    }
    for (uint32_t i = 0; i < cli->cfg.outstanding_max; i++) {
        if (!cli->slots[i].in_use) {
            continue;
        }
        if (cli->outbox.count == cli->outbox.action_cap) {
            return CB_ERR_FULL;
        }
        client_fail(cli, i, now_ns);
    }
    return CB_ERR_OK;
}

uint64_t cb_client_next_deadline_ns(const cb_client *cli)
{
    uint64_t next = UINT64_MAX;
    for (uint32_t i = 0; i < cli->cfg.outstanding_max; i++) {
        if (cli->slots[i].in_use && cli->slots[i].deadline_ns < next) {
            next = cli->slots[i].deadline_ns;
        }
    }
    return next;
}

size_t cb_client_drain(cb_client *cli, cb_action *out, size_t out_cap)
{
    return cb_outbox_drain(&cli->outbox, out, out_cap);
}

const cb_action *cb_client_pop(cb_client *cli)
{
    return cb_outbox_pop(&cli->outbox);
}

uint32_t cb_client_outstanding(const cb_client *cli)
{
    return cli->cfg.outstanding_max - cli->free_count;
}

void cb_client_get_stats(const cb_client *cli, cb_client_stats *out)
{
    *out = cli->stats;
}
