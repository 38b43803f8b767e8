/*
 * cb_router.c: replication policies, failover and ejection over one cb_client; see
 * cb_router.h for the contract and docs/replication.md for the design.
 *
 * Each application operation takes a slot for as long as any of its sub-requests is in
 * flight, which may outlive its COMPLETE (quorum stragglers, async propagation, repairs).
 * Sub-requests are tagged, in the client's user_data, with the slot, the slot's generation
 * and the sub-request's index, so a client completion finds its sub-request in O(1).
 */
#include "cb_router.h"

#include <assert.h>
#include <stddef.h>
#include <string.h>

#include "cb_err.h"
#include "cb_frame.h"

#define ROUTER_CANDIDATES_MAX CB_PLACEMENT_LIST_MAX
/* Sub-requests of one operation: one per candidate, plus a repair per replica. */
#define ROUTER_SUBS_MAX         (CB_PLACEMENT_LIST_MAX + CB_ROUTER_REPLICAS_MAX)
#define ROUTER_OPS_MAX          65536u
#define ROUTER_CLIENT_SLOTS_MAX 65536u
/* Action slots beyond the completions the router must always have room for. */
#define ROUTER_EVENT_SLOTS 64u
#define ROUTER_CLOCK_MAX   ((1ull << 48) - 1u)

_Static_assert(ROUTER_SUBS_MAX <= 256, "a sub-request index fits the tag's low byte");
_Static_assert(CB_ROUTER_REPLICAS_MAX <= CB_PLACEMENT_LIST_MAX, "replicas fit a list");

typedef enum { SUB_READ, SUB_WRITE, SUB_REPAIR, SUB_PROPAGATE } router_sub_kind;
typedef enum { SUB_INFLIGHT, SUB_ANSWERED, SUB_FAILED } router_sub_state;

typedef struct router_sub {
    uint32_t node;
    uint8_t kind;     /* router_sub_kind */
    uint8_t state;    /* router_sub_state */
    uint8_t found;    /* a read's answer was a hit */
    uint8_t cand_idx; /* position in the candidate list (preference order) */
    uint64_t version; /* a read's version (0: miss or unversioned) */
} router_sub;

typedef struct router_op {
    uint8_t in_use;
    uint8_t done; /* the application's COMPLETE was emitted */
    uint8_t is_read;
    uint8_t key_len;
    uint8_t cand_len, cand_next; /* candidates, and the next one not yet considered */
    uint8_t sub_count, inflight, answers, timeouts, need;
    uint8_t have_res, res_cand; /* a result is chosen; its candidate position */
    uint8_t best_found;         /* quorum read: the chosen answer is a hit */
    uint32_t generation;
    uint32_t ttl_ms;
    uint32_t value_len; /* write: the value; read: the chosen answer's value */
    uint32_t buf_cap;
    uint64_t version; /* write: assigned (SET); read: the chosen answer's */
    uint64_t delta;
    uint8_t *buf;
    cb_completion res; /* the COMPLETE being built */
    uint32_t cand[ROUTER_CANDIDATES_MAX];
    router_sub subs[ROUTER_SUBS_MAX];
    uint8_t key[CB_KEY_BYTES_MAX];
} router_op;

typedef struct router_node {
    uint8_t state; /* cb_router_node_state */
    uint32_t failures;
    uint64_t until_ns;  /* EJECTED: when the probe may go */
    uint64_t probe_tag; /* the probe's sub-request tag; 0: no probe in flight */
} router_node;

struct cb_router {
    cb_router_config cfg;
    const cb_placement *placement;
    const cb_alloc *alloc;
    cb_client *client;
    router_op *ops;
    uint32_t *free_ops;
    uint32_t free_count;
    router_node *nodes; /* client.peer_count */
    uint32_t pending;   /* operations whose COMPLETE is not emitted yet */
    uint32_t next_request_id;
    uint64_t clock; /* hybrid logical clock: the versions' high 48 bits */
    cb_outbox outbox;
    cb_router_stats stats;
};

cb_router_config cb_router_config_default(void)
{
    cb_router_config c;
    memset(&c, 0, sizeof c);
    c.replicas = 1;
    c.spares = 2;
    c.read_policy = CB_ROUTER_READ_ANY;
    c.write_policy = CB_ROUTER_WRITE_ALL;
    c.ops_max = 64;
    c.eject_after = 3;
    c.eject_for_ns = 1000u * 1000u * 1000u;
    c.client = cb_client_config_default();
    return c;
}

const char *cb_router_read_policy_name(uint32_t policy)
{
    static const char *const names[] = {"primary", "any", "quorum"};
    return policy < 3 ? names[policy] : "?";
}

const char *cb_router_write_policy_name(uint32_t policy)
{
    static const char *const names[] = {"all", "quorum", "primary_async"};
    return policy < 3 ? names[policy] : "?";
}

static uint32_t router_subs_per_op(const cb_router_config *c)
{
    return c->replicas + c->spares + c->replicas;
}

static int router_config_valid(const cb_router_config *c, const cb_placement *p)
{
    return c->replicas >= 1 && c->replicas <= CB_ROUTER_REPLICAS_MAX &&
           c->replicas + c->spares <= CB_PLACEMENT_LIST_MAX &&
           c->replicas <= cb_placement_node_count(p) && c->read_policy <= CB_ROUTER_READ_QUORUM &&
           c->write_policy <= CB_ROUTER_WRITE_PRIMARY_ASYNC && c->read_repair <= 1 &&
           c->ops_max >= 1 && c->ops_max <= ROUTER_OPS_MAX &&
           (uint64_t)c->ops_max * router_subs_per_op(c) <= ROUTER_CLIENT_SLOTS_MAX &&
           c->writer_id <= CB_ROUTER_WRITER_ID_MAX;
}

/* Every node id of the placement must be a peer of the client. */
static int router_nodes_valid(const cb_router_config *c, const cb_placement *p)
{
    for (size_t i = 0; i < cb_placement_node_count(p); i++) {
        if (cb_placement_node_id_at(p, i) >= c->client.peer_count) {
            return 0;
        }
    }
    return 1;
}

static int router_alloc(cb_router *r, cb_rng *rng)
{
    const cb_router_config *c = &r->cfg;
    r->ops = cb_alloc_calloc(r->alloc, c->ops_max, sizeof r->ops[0]);
    r->free_ops = cb_alloc_calloc(r->alloc, c->ops_max, sizeof r->free_ops[0]);
    r->nodes = cb_alloc_calloc(r->alloc, c->client.peer_count, sizeof r->nodes[0]);
    if (r->ops == NULL || r->free_ops == NULL || r->nodes == NULL) {
        return CB_ERR_NOMEM;
    }
    cb_client_config cc = c->client;
    cc.outstanding_max = c->ops_max * router_subs_per_op(c);
    cc.outbox_actions = 0;
    int rc = cb_client_new(&cc, rng, r->alloc, &r->client);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    /* Completions' values live in the slots' buffers: the arena holds no payload. */
    return cb_outbox_init(&r->outbox, 2u * c->ops_max + ROUTER_EVENT_SLOTS, 64, r->alloc);
}

int cb_router_new(const cb_router_config *cfg, const cb_placement *placement, cb_rng *rng,
                  const cb_alloc *alloc, cb_router **out)
{
    if (out == NULL) {
        return CB_ERR_INVALID;
    }
    *out = NULL;
    if (cfg == NULL || placement == NULL || rng == NULL || !router_config_valid(cfg, placement) ||
        !router_nodes_valid(cfg, placement)) {
        return CB_ERR_INVALID;
    }
    cb_router *r = cb_alloc_calloc(alloc, 1, sizeof *r);
    if (r == NULL) {
        return CB_ERR_NOMEM;
    }
    r->cfg = *cfg;
    r->placement = placement;
    r->alloc = alloc;
    int rc = router_alloc(r, rng);
    if (rc != CB_ERR_OK) {
        cb_router_del(r);
        return rc;
    }
    for (uint32_t i = 0; i < cfg->ops_max; i++) {
        r->free_ops[i] = cfg->ops_max - 1 - i; /* slot 0 first: predictable traces */
    }
    r->free_count = cfg->ops_max;
    *out = r;
    return CB_ERR_OK;
}

void cb_router_del(cb_router *r)
{
    if (r == NULL) {
        return;
    }
    for (uint32_t i = 0; r->ops != NULL && i < r->cfg.ops_max; i++) {
        cb_alloc_free(r->alloc, r->ops[i].buf);
    }
    cb_client_del(r->client);
    cb_outbox_free(&r->outbox, r->alloc);
    cb_alloc_free(r->alloc, r->nodes);
    cb_alloc_free(r->alloc, r->free_ops);
    cb_alloc_free(r->alloc, r->ops);
    cb_alloc_free(r->alloc, r);
}

cb_client *cb_router_client(cb_router *r)
{
    return r->client;
}

/* ---- outbox ---- */

static size_t router_free_actions(const cb_router *r)
{
    return r->outbox.action_cap - r->outbox.count;
}

/* Best effort: an event is queued only if every pending operation keeps room for its
 * COMPLETE afterwards (the invariant free actions >= pending). */
static void router_event(cb_router *r, uint8_t kind, uint32_t peer, int32_t detail)
{
    if (router_free_actions(r) <= r->pending) {
        return;
    }
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_EVENT;
    a.peer = peer;
    a.event.kind = kind;
    a.event.detail = detail;
    int rc = cb_outbox_push(&r->outbox, &a);
    assert(rc == CB_ERR_OK);
    (void)rc;
}

/* ---- node health ---- */

static void router_node_refresh(cb_router *r, uint32_t node, uint64_t now_ns)
{
    router_node *n = &r->nodes[node];
    if (n->state == CB_ROUTER_NODE_EJECTED && now_ns >= n->until_ns) {
        n->state = CB_ROUTER_NODE_PROBING;
    }
}

/* May a new sub-request go to `node` now? Up, or probing with no probe in flight. */
static int router_node_usable(cb_router *r, uint32_t node, uint64_t now_ns)
{
    router_node_refresh(r, node, now_ns);
    const router_node *n = &r->nodes[node];
    return n->state == CB_ROUTER_NODE_UP ||
           (n->state == CB_ROUTER_NODE_PROBING && n->probe_tag == 0);
}

static void router_eject(cb_router *r, uint32_t node, uint64_t now_ns)
{
    router_node *n = &r->nodes[node];
    n->state = CB_ROUTER_NODE_EJECTED;
    n->until_ns = now_ns + r->cfg.eject_for_ns;
    n->probe_tag = 0;
    r->stats.ejections++;
    router_event(r, CB_EVENT_EJECT, node,
                 (int32_t)(n->failures > INT32_MAX ? INT32_MAX : n->failures));
}

/* A sub-request to `node` ended: a reply (alive) or a timeout. */
static void router_node_result(cb_router *r, uint32_t node, uint64_t tag, int alive,
                               uint64_t now_ns)
{
    router_node *n = &r->nodes[node];
    int was_probe = n->probe_tag != 0 && n->probe_tag == tag;
    if (alive) {
        n->failures = 0;
        if (n->state != CB_ROUTER_NODE_UP) {
            n->state = CB_ROUTER_NODE_UP;
            n->probe_tag = 0;
            r->stats.probes_passed++;
            router_event(r, CB_EVENT_PROBE, node, 1);
        }
        return;
    }
    n->failures++;
    if (was_probe) {
        r->stats.probes_failed++;
        router_event(r, CB_EVENT_PROBE, node, -1);
        router_eject(r, node, now_ns);
    } else if (n->state == CB_ROUTER_NODE_UP && r->cfg.eject_after > 0 &&
               n->failures >= r->cfg.eject_after) {
        router_eject(r, node, now_ns);
    }
}

int cb_router_on_peer_down(cb_router *r, uint32_t node, uint64_t now_ns)
{
    if (node >= r->cfg.client.peer_count) {
        return CB_ERR_UNKNOWN_CONN;
    }
    if (r->cfg.eject_after > 0 && r->nodes[node].state == CB_ROUTER_NODE_UP) {
        r->nodes[node].failures = r->cfg.eject_after;
        router_eject(r, node, now_ns);
    }
    return CB_ERR_OK;
}

cb_router_node_state cb_router_node_state_of(const cb_router *r, uint32_t node, uint64_t now_ns)
{
    if (node >= r->cfg.client.peer_count) {
        return CB_ROUTER_NODE_UP;
    }
    const router_node *n = &r->nodes[node];
    if (n->state == CB_ROUTER_NODE_EJECTED && now_ns >= n->until_ns) {
        return CB_ROUTER_NODE_PROBING;
    }
    return (cb_router_node_state)n->state;
}

/* ---- versions ---- */

static uint64_t router_next_version(cb_router *r, uint64_t now_ns)
{
    uint64_t c = r->clock + 1;
    if (now_ns > c) {
        c = now_ns;
    }
    /* The clock part has 48 bits: 2^48 ns is 78 hours of run time, beyond any run. */
    assert(c <= ROUTER_CLOCK_MAX);
    r->clock = c;
    return c << 16 | r->cfg.writer_id;
}

/* Lamport merge: a version seen in a reply moves the clock past it. */
static void router_observe_version(cb_router *r, uint64_t version)
{
    uint64_t c = version >> 16;
    if (c > r->clock && c <= ROUTER_CLOCK_MAX) {
        r->clock = c;
    }
}

/* ---- sub-requests ---- */

static uint64_t router_tag(const cb_router *r, uint32_t slot, uint32_t sub)
{
    return (uint64_t)r->ops[slot].generation << 32 | (uint64_t)slot << 8 | sub;
}

/* The client op a sub-request of `kind` sends for slot `slot`. */
static void router_sub_op(const router_op *o, uint8_t kind, uint8_t app_op, cb_client_op *c)
{
    memset(c, 0, sizeof *c);
    c->key = o->key;
    c->key_len = o->key_len;
    if (kind == SUB_READ) {
        c->op = CB_OP_GET;
        return;
    }
    c->op = app_op;
    if (kind == SUB_REPAIR) {
        /* A read repair writes back the newest answer: a value, or a tombstone. */
        c->op = o->best_found ? CB_OP_SET : CB_OP_DELETE;
    }
    if (c->op != CB_OP_DELETE) {
        c->value = o->buf;
        c->value_len = o->value_len;
    }
    c->ttl_ms = kind == SUB_REPAIR ? 0 : o->ttl_ms;
    /* SET's and DELETE's arg is their version (docs/protocol.md §3.1); INCR/DECR's is the
     * delta. */
    c->delta = c->op == CB_OP_SET || c->op == CB_OP_DELETE ? o->version : o->delta;
}

/*
 * Send a sub-request of `kind` for slot `slot` to candidate `cand_idx`. Returns CB_ERR_OK,
 * or the client's error (nothing sent; the node is not blamed).
 */
static int router_send(cb_router *r, uint32_t slot, uint8_t cand_idx, uint8_t kind, uint64_t now_ns)
{
    router_op *o = &r->ops[slot];
    assert(o->sub_count < ROUTER_SUBS_MAX);
    uint32_t node = o->cand[cand_idx];
    cb_client_op c;
    router_sub_op(o, kind, o->res.op, &c);
    uint32_t idx = o->sub_count;
    c.user_data = router_tag(r, slot, idx);
    int rc = cb_client_request(r->client, node, &c, now_ns, NULL);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    router_sub *s = &o->subs[idx];
    memset(s, 0, sizeof *s);
    s->node = node;
    s->kind = kind;
    s->state = SUB_INFLIGHT;
    s->cand_idx = cand_idx;
    o->sub_count++;
    o->inflight++;
    r->stats.sub_requests++;
    router_node *n = &r->nodes[node];
    if (n->state == CB_ROUTER_NODE_PROBING && n->probe_tag == 0) {
        n->probe_tag = c.user_data;
        r->stats.probes++;
        router_event(r, CB_EVENT_PROBE, node, 0);
    }
    return CB_ERR_OK;
}

/* Has candidate `cand_idx` of `o` been sent a read or write already? */
static int router_tried(const router_op *o, uint8_t cand_idx)
{
    for (uint32_t i = 0; i < o->sub_count; i++) {
        if (o->subs[i].cand_idx == cand_idx &&
            (o->subs[i].kind == SUB_READ || o->subs[i].kind == SUB_WRITE ||
             o->subs[i].kind == SUB_PROPAGATE)) {
            return 1;
        }
    }
    return 0;
}

/* Send `kind` to up to `count` more usable candidates, in preference order. Returns how
 * many were sent. Unusable (ejected) candidates are passed over for good. */
static uint32_t router_fanout(cb_router *r, uint32_t slot, uint32_t count, uint8_t kind,
                              uint64_t now_ns)
{
    router_op *o = &r->ops[slot];
    uint32_t sent = 0;
    while (sent < count && o->cand_next < o->cand_len) {
        uint8_t ci = o->cand_next++;
        if (router_tried(o, ci) || !router_node_usable(r, o->cand[ci], now_ns)) {
            continue;
        }
        if (router_send(r, slot, ci, kind, now_ns) != CB_ERR_OK) {
            break; /* the client is out of room: the completion checks fail the op */
        }
        sent++;
    }
    return sent;
}

/* A sub-request failed while its operation waits: try the next candidate. */
static void router_failover(cb_router *r, uint32_t slot, uint32_t failed_node, uint8_t kind,
                            uint64_t now_ns)
{
    router_op *o = &r->ops[slot];
    uint8_t before = o->sub_count;
    if (router_fanout(r, slot, 1, kind, now_ns) == 1) {
        r->stats.failovers++;
        router_event(r, CB_EVENT_FAILOVER, o->subs[before].node, (int32_t)failed_node);
    }
}

/* ---- completion of the application's operation ---- */

static void router_free_slot(cb_router *r, uint32_t slot)
{
    router_op *o = &r->ops[slot];
    assert(o->done && o->inflight == 0);
    o->in_use = 0;
    r->free_ops[r->free_count++] = slot;
}

static void router_complete(cb_router *r, uint32_t slot, uint64_t now_ns)
{
    router_op *o = &r->ops[slot];
    assert(!o->done);
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_COMPLETE;
    a.completion = o->res;
    a.completion.complete_ns = now_ns;
    a.peer = o->res.peer;
    if (o->is_read && o->res.outcome == CB_OUTCOME_HIT) {
        a.completion.value = o->buf;
        a.completion.value_len = o->value_len;
    }
    int rc = cb_outbox_push(&r->outbox, &a); /* room is kept: free actions >= pending */
    assert(rc == CB_ERR_OK);
    (void)rc;
    o->done = 1;
    r->pending--;
    r->stats.completed++;
}

/* Complete as failed: TIMEOUT if a sub-request timed out, else ERROR. */
static void router_fail(cb_router *r, uint32_t slot, uint64_t now_ns)
{
    router_op *o = &r->ops[slot];
    o->res.outcome = o->timeouts > 0 ? CB_OUTCOME_TIMEOUT : CB_OUTCOME_ERROR;
    o->res.cas = 0;
    o->res.number = 0;
    if (o->res.outcome == CB_OUTCOME_TIMEOUT) {
        o->res.status = 0;
    }
    router_complete(r, slot, now_ns);
}

/* Complete once `need` answers are in, or fail once they cannot be. */
static void router_check(cb_router *r, uint32_t slot, uint64_t now_ns)
{
    router_op *o = &r->ops[slot];
    if (o->done) {
        return;
    }
    if (o->answers >= o->need) {
        router_complete(r, slot, now_ns);
        return;
    }
    uint32_t possible = (uint32_t)o->answers + o->inflight + (o->cand_len - o->cand_next);
    if (o->inflight == 0 || possible < o->need) {
        router_fail(r, slot, now_ns);
    }
}

/* ---- replies ---- */

/* Record reply `c` of sub-request `s` as the operation's result when it comes from an
 * earlier candidate than the current one (writes: the first acknowledging replica in
 * preference order). */
static void router_take_result(router_op *o, const router_sub *s, const cb_completion *c)
{
    if (o->have_res && o->res_cand <= s->cand_idx) {
        return;
    }
    o->have_res = 1;
    o->res_cand = s->cand_idx;
    o->res.outcome = c->outcome;
    o->res.status = c->status;
    o->res.cas = c->cas;
    o->res.number = c->number;
    o->res.peer = s->node;
}

/* Keep a copy of a read answer's value in the slot's buffer (grown as needed). */
static int router_keep_value(cb_router *r, router_op *o, const cb_completion *c)
{
    if (c->value_len > o->buf_cap) {
        uint8_t *buf = cb_alloc_malloc(r->alloc, c->value_len);
        if (buf == NULL) {
            return CB_ERR_NOMEM;
        }
        cb_alloc_free(r->alloc, o->buf);
        o->buf = buf;
        o->buf_cap = c->value_len;
    }
    if (c->value_len > 0) {
        memcpy(o->buf, c->value, c->value_len);
    }
    o->value_len = c->value_len;
    return CB_ERR_OK;
}

/*
 * Is answer (found, version) older than the chosen one? A miss's version is its tombstone's
 * (0: none). Against a chosen hit, any miss or older hit is older; against a chosen
 * tombstone, only a hit of an older version is (a plain miss agrees with it).
 */
static int router_older(const router_op *o, uint8_t found, uint64_t version)
{
    if (o->best_found) {
        return !found || version < o->version;
    }
    return found && version < o->version;
}

/* Is answer (found, version) newer than the chosen one? The higher version wins (a tombstone
 * is a version too); at equal versions a hit beats a miss. */
static int router_newer(const router_op *o, uint8_t found, uint64_t version)
{
    return version > o->version || (version == o->version && found && !o->best_found);
}

/* A replica answered an older version than the one returned: count it, and repair it when
 * the policy says so and the value has a version to win with. */
static void router_stale(cb_router *r, uint32_t slot, const router_sub *s, uint64_t now_ns)
{
    router_op *o = &r->ops[slot];
    r->stats.stale_replicas++;
    router_event(r, CB_EVENT_STALE_READ, s->node, 0);
    if (!r->cfg.read_repair || o->version == 0 || o->sub_count >= ROUTER_SUBS_MAX) {
        return;
    }
    if (router_send(r, slot, s->cand_idx, SUB_REPAIR, now_ns) == CB_ERR_OK) {
        r->stats.repairs++;
    }
}

/* A quorum read has its answer: report (and repair) every replica that answered older. */
static void router_scan_stale(cb_router *r, uint32_t slot, uint64_t now_ns)
{
    router_op *o = &r->ops[slot];
    uint32_t count = o->sub_count; /* repairs appended below are not scanned */
    for (uint32_t i = 0; i < count; i++) {
        router_sub s = o->subs[i];
        if (s.kind == SUB_READ && s.state == SUB_ANSWERED && router_older(o, s.found, s.version)) {
            router_stale(r, slot, &s, now_ns);
        }
    }
}

/* An answer that arrived after a quorum read completed. */
static void router_late_answer(cb_router *r, uint32_t slot, const router_sub *s, uint64_t now_ns)
{
    router_op *o = &r->ops[slot];
    if (r->cfg.read_policy != CB_ROUTER_READ_QUORUM) {
        return;
    }
    if (router_older(o, s->found, s->version)) {
        router_stale(r, slot, s, now_ns);
    } else if (router_newer(o, s->found, s->version)) {
        r->stats.stale_returned++;
        router_event(r, CB_EVENT_STALE_READ, s->node, 1);
    }
}

/* A hit or a miss from a replica, while the read waits: keep it if it is the newest. */
static void router_read_answer(cb_router *r, router_op *o, router_sub *s, const cb_completion *c)
{
    int newer = !o->have_res || router_newer(o, s->found, s->version);
    if (newer && s->found && router_keep_value(r, o, c) != CB_ERR_OK) {
        s->state = SUB_FAILED; /* no room for the value: as if the replica had erred */
        return;
    }
    o->answers++;
    if (newer) {
        o->have_res = 1;
        o->res_cand = s->cand_idx;
        o->res.outcome = c->outcome;
        o->res.status = c->status;
        o->res.cas = c->cas;
        o->res.number = s->version;
        o->res.peer = s->node;
        o->best_found = s->found;
        o->version = s->version;
        if (!s->found) {
            o->value_len = 0; /* a tombstone won over an earlier hit */
        }
    }
}

static void router_on_read(cb_router *r, uint32_t slot, router_sub *s, const cb_completion *c,
                           uint64_t now_ns)
{
    router_op *o = &r->ops[slot];
    if (c->outcome == CB_OUTCOME_HIT || c->outcome == CB_OUTCOME_MISS) {
        s->state = SUB_ANSWERED;
        s->found = c->outcome == CB_OUTCOME_HIT;
        s->version = c->number; /* a miss: its tombstone's version, 0 for none */
        if (o->done) {
            router_late_answer(r, slot, s, now_ns);
            return;
        }
        router_read_answer(r, o, s, c);
    } else {
        s->state = SUB_FAILED;
        o->res.status = c->status;
        o->res.peer = s->node;
        if (c->outcome == CB_OUTCOME_TIMEOUT && !o->done &&
            r->cfg.read_policy != CB_ROUTER_READ_PRIMARY) {
            router_failover(r, slot, s->node, SUB_READ, now_ns);
        }
    }
    if (!o->done) {
        router_check(r, slot, now_ns);
        if (o->done && r->cfg.read_policy == CB_ROUTER_READ_QUORUM) {
            router_scan_stale(r, slot, now_ns);
        }
    }
}

static void router_on_write(cb_router *r, uint32_t slot, router_sub *s, const cb_completion *c,
                            uint64_t now_ns)
{
    router_op *o = &r->ops[slot];
    if (c->outcome == CB_OUTCOME_TIMEOUT || c->outcome == CB_OUTCOME_ERROR) {
        s->state = SUB_FAILED;
        if (!o->have_res) {
            o->res.status = c->status;
            o->res.peer = s->node;
        }
        if (c->outcome == CB_OUTCOME_TIMEOUT && !o->done) {
            router_failover(r, slot, s->node, SUB_WRITE, now_ns);
        }
        router_check(r, slot, now_ns);
        return;
    }
    s->state = SUB_ANSWERED;
    if ((o->res.op == CB_OP_SET || o->res.op == CB_OP_DELETE) && c->number > o->version) {
        r->stats.superseded++;
    }
    if (o->done) {
        return;
    }
    o->answers++;
    router_take_result(o, s, c);
    if (o->res.op == CB_OP_SET || o->res.op == CB_OP_DELETE) {
        o->res.number = o->version; /* the version this write carried */
    }
    router_check(r, slot, now_ns);
    if (o->done && r->cfg.write_policy == CB_ROUTER_WRITE_PRIMARY_ASYNC) {
        uint32_t sent = router_fanout(r, slot, r->cfg.replicas - 1, SUB_PROPAGATE, now_ns);
        r->stats.propagations += sent;
    }
}

/* A repair or a propagation ended: report it. */
static void router_on_background(cb_router *r, const router_sub *s, const cb_completion *c)
{
    int ok = c->outcome != CB_OUTCOME_TIMEOUT && c->outcome != CB_OUTCOME_ERROR;
    if (s->kind == SUB_REPAIR) {
        r->stats.repairs_failed += !ok;
        router_event(r, CB_EVENT_READ_REPAIR, s->node, c->outcome);
    } else {
        r->stats.propagations_failed += !ok;
        router_event(r, CB_EVENT_PROPAGATE, s->node, c->outcome);
    }
}

/* The sub-request a client completion belongs to, or NULL. */
static router_sub *router_find_sub(cb_router *r, uint64_t tag, uint32_t *slot_out)
{
    uint32_t slot = (uint32_t)(tag >> 8) & 0xFFFFFFu;
    uint32_t idx = (uint32_t)(tag & 0xFFu);
    if (slot >= r->cfg.ops_max) {
        return NULL;
    }
    router_op *o = &r->ops[slot];
    if (!o->in_use || o->generation != (uint32_t)(tag >> 32) || idx >= o->sub_count ||
        o->subs[idx].state != SUB_INFLIGHT) {
        return NULL;
    }
    *slot_out = slot;
    return &o->subs[idx];
}

int cb_router_on_completion(cb_router *r, const cb_completion *c, uint64_t now_ns)
{
    uint32_t slot = 0;
    router_sub *s = router_find_sub(r, c->user_data, &slot);
    if (s == NULL) {
        return CB_ERR_INVALID;
    }
    router_op *o = &r->ops[slot];
    o->inflight--;
    if (!o->done) {
        o->res.attempts += c->attempts;
        o->res.bytes_sent += c->bytes_sent;
        o->res.bytes_received += c->bytes_received;
    }
    if (c->outcome == CB_OUTCOME_TIMEOUT) {
        o->timeouts++;
    }
    router_node_result(r, s->node, c->user_data, c->outcome != CB_OUTCOME_TIMEOUT, now_ns);
    if (c->op == CB_OP_GET || c->op == CB_OP_SET || c->op == CB_OP_DELETE) {
        router_observe_version(r, c->number);
    }
    switch (s->kind) {
    case SUB_READ:
        router_on_read(r, slot, s, c, now_ns);
        break;
    case SUB_WRITE:
        router_on_write(r, slot, s, c, now_ns);
        break;
    default:
        s->state = c->outcome == CB_OUTCOME_TIMEOUT ? SUB_FAILED : SUB_ANSWERED;
        router_on_background(r, s, c);
        break;
    }
    if (o->done && o->inflight == 0) {
        router_free_slot(r, slot);
    }
    return CB_ERR_OK;
}

/* ---- submission ---- */

static int router_check_op(const cb_router *r, const cb_client_op *op)
{
    if (!cb_op_valid(op->op) || op->quiet || op->op == CB_OP_FLUSH || op->op == CB_OP_STATS ||
        op->op == CB_OP_NOOP || op->op == CB_OP_SCAN || op->op == CB_OP_CAS) {
        return CB_ERR_INVALID; /* CAS values are per replica: no meaning across replicas */
    }
    if (op->key_len > CB_KEY_BYTES_MAX) {
        return CB_ERR_KEY_TOO_LONG;
    }
    if (op->key_len == 0 || op->key == NULL || (op->value_len > 0 && op->value == NULL)) {
        return CB_ERR_INVALID;
    }
    int takes_value = op->op == CB_OP_SET || op->op == CB_OP_ADD || op->op == CB_OP_REPLACE ||
                      op->op == CB_OP_APPEND || op->op == CB_OP_PREPEND;
    if (!takes_value && op->value_len > 0) {
        return CB_ERR_INVALID;
    }
    if (op->value_len > r->cfg.client.value_bytes_max) {
        return CB_ERR_VALUE_TOO_LARGE;
    }
    return CB_ERR_OK;
}

/* Fill slot `slot` for `op`: key, value, candidates, the result's fixed fields. */
static int router_fill(cb_router *r, uint32_t slot, const cb_client_op *op, uint64_t now_ns)
{
    router_op *o = &r->ops[slot];
    if (op->value_len > o->buf_cap) {
        uint8_t *buf = cb_alloc_malloc(r->alloc, op->value_len);
        if (buf == NULL) {
            return CB_ERR_NOMEM;
        }
        cb_alloc_free(r->alloc, o->buf);
        o->buf = buf;
        o->buf_cap = op->value_len;
    }
    uint8_t *buf = o->buf;
    uint32_t cap = o->buf_cap;
    uint32_t generation = o->generation + 1;
    memset(o, 0, offsetof(router_op, subs));
    o->buf = buf;
    o->buf_cap = cap;
    o->generation = generation;
    if (op->value_len > 0) {
        memcpy(o->buf, op->value, op->value_len);
    }
    o->value_len = op->value_len;
    memcpy(o->key, op->key, op->key_len);
    o->key_len = op->key_len;
    o->ttl_ms = op->ttl_ms;
    o->delta = op->delta;
    o->is_read = op->op == CB_OP_GET;
    o->res.user_data = op->user_data;
    o->res.request_id = ++r->next_request_id;
    o->res.op = op->op;
    o->res.issue_ns = now_ns;
    int n = cb_placement_lookup(r->placement, o->key, o->key_len, o->cand,
                                r->cfg.replicas + r->cfg.spares);
    o->cand_len = n > 0 ? (uint8_t)n : 0;
    return CB_ERR_OK;
}

/* How many sub-requests an operation starts with, and how many answers it needs. */
static void router_plan(const cb_router *r, const router_op *o, uint32_t *start, uint8_t *need)
{
    uint32_t rep = r->cfg.replicas;
    uint32_t majority = rep / 2 + 1;
    if (o->is_read) {
        int quorum = r->cfg.read_policy == CB_ROUTER_READ_QUORUM;
        *start = quorum ? rep : 1;
        *need = (uint8_t)(quorum ? majority : 1);
        return;
    }
    switch (r->cfg.write_policy) {
    case CB_ROUTER_WRITE_ALL:
        *start = rep;
        *need = (uint8_t)rep;
        break;
    case CB_ROUTER_WRITE_QUORUM:
        *start = rep;
        *need = (uint8_t)majority;
        break;
    default:
        *start = 1;
        *need = 1;
        break;
    }
}

int cb_router_submit(cb_router *r, const cb_client_op *op, uint64_t now_ns, uint32_t *request_id)
{
    int rc = router_check_op(r, op);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    if (r->free_count == 0) {
        return CB_ERR_BUSY;
    }
    if (router_free_actions(r) <= r->pending) {
        return CB_ERR_FULL;
    }
    uint32_t slot = r->free_ops[r->free_count - 1];
    rc = router_fill(r, slot, op, now_ns);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    r->free_count--;
    router_op *o = &r->ops[slot];
    o->in_use = 1;
    if (op->op == CB_OP_SET || op->op == CB_OP_DELETE) {
        o->version = router_next_version(r, now_ns);
    }
    r->pending++;
    r->stats.ops++;
    if (request_id != NULL) {
        *request_id = o->res.request_id;
    }
    uint32_t start = 0;
    router_plan(r, o, &start, &o->need);
    if (router_fanout(r, slot, start, o->is_read ? SUB_READ : SUB_WRITE, now_ns) == 0) {
        r->stats.no_node++;
        router_fail(r, slot, now_ns);
        router_free_slot(r, slot);
        return CB_ERR_OK;
    }
    router_check(r, slot, now_ns);
    return CB_ERR_OK;
}

size_t cb_router_drain(cb_router *r, cb_action *out, size_t out_cap)
{
    return cb_outbox_drain(&r->outbox, out, out_cap);
}

const cb_action *cb_router_pop(cb_router *r)
{
    return cb_outbox_pop(&r->outbox);
}

uint32_t cb_router_outstanding(const cb_router *r)
{
    return r->pending;
}

int cb_router_has_room(const cb_router *r)
{
    return r->free_count > 0 && router_free_actions(r) > r->pending;
}

void cb_router_get_stats(const cb_router *r, cb_router_stats *out)
{
    *out = r->stats;
}
