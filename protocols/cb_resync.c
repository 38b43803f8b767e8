/* cb_resync.c: warm-up of a recovered server from its peers; see cb_resync.h. */
#include "cb_resync.h"

#include <string.h>

#include "cb_err.h"
#include "cb_frame.h"
#include "cb_router.h"
#include "cb_scanbody.h"

#define RESYNC_EVENTS_MAX 64u
/* user_data of a SCAN; a write's user_data is the version it carries (never 0). */
#define RESYNC_TAG_SCAN 0u

struct cb_resync {
    cb_resync_config cfg;
    const cb_placement *placement;
    const cb_alloc *alloc;
    cb_client *cli;
    cb_outbox events;
    int active;
    uint32_t target;
    size_t peer_pos;   /* position (cb_placement_node_id_at) of the peer being scanned */
    int peer_done;     /* that peer's scan is over (finished or given up) */
    uint64_t cursor;   /* its next SCAN cursor */
    int scan_inflight; /* a SCAN is out */
    uint32_t writes_inflight;
    uint8_t *body; /* the current SCAN body (copied from the completion) */
    size_t body_cap;
    int have_body;
    cb_scanbody_reader rd;
    uint64_t run_stored; /* writes stored in this run */
    cb_resync_stats stats;
};

const char *cb_resync_policy_name(uint32_t policy)
{
    return policy == CB_RESYNC_LAZY ? "lazy" : policy == CB_RESYNC_WARM ? "warm" : "?";
}

int cb_resync_policy_from_name(const char *name, uint32_t *out)
{
    for (uint32_t p = CB_RESYNC_LAZY; p <= CB_RESYNC_WARM; p++) {
        if (name != NULL && strcmp(name, cb_resync_policy_name(p)) == 0) {
            *out = p;
            return CB_ERR_OK;
        }
    }
    return CB_ERR_INVALID;
}

cb_resync_config cb_resync_config_default(void)
{
    cb_resync_config c;
    memset(&c, 0, sizeof c);
    c.replicas = 1;
    c.scan_items = CB_SCAN_ITEMS_DEFAULT;
    c.writes_max = 16;
    c.client = cb_client_config_default();
    return c;
}

int cb_resync_new(const cb_resync_config *cfg, const cb_placement *placement, cb_rng *rng,
                  const cb_alloc *alloc, cb_resync **out)
{
    if (out == NULL || cfg == NULL || placement == NULL || rng == NULL || cfg->replicas == 0 ||
        cfg->replicas > CB_ROUTER_REPLICAS_MAX || cfg->scan_items > CB_SCAN_ITEMS_MAX ||
        cfg->writes_max == 0 || cfg->writes_max > CB_RESYNC_WRITES_MAX) {
        return CB_ERR_INVALID;
    }
    *out = NULL;
    alloc = alloc != NULL ? alloc : cb_alloc_default();
    cb_resync *rs = cb_alloc_calloc(alloc, 1, sizeof *rs);
    if (rs == NULL) {
        return CB_ERR_NOMEM;
    }
    rs->cfg = *cfg;
    rs->cfg.client.outstanding_max = cfg->writes_max + 1;
    rs->cfg.client.outbox_actions = 0;
    rs->placement = placement;
    rs->alloc = alloc;
    int rc = cb_client_new(&rs->cfg.client, rng, alloc, &rs->cli);
    if (rc == CB_ERR_OK) {
        rc = cb_outbox_init(&rs->events, RESYNC_EVENTS_MAX, 64, alloc);
    }
    if (rc != CB_ERR_OK) {
        cb_resync_del(rs);
        return rc;
    }
    *out = rs;
    return CB_ERR_OK;
}

void cb_resync_del(cb_resync *rs)
{
    if (rs == NULL) {
        return;
    }
    cb_client_del(rs->cli);
    cb_outbox_free(&rs->events, rs->alloc);
    cb_alloc_free(rs->alloc, rs->body);
    cb_alloc_free(rs->alloc, rs);
}

cb_client *cb_resync_client(cb_resync *rs)
{
    return rs->cli;
}

int cb_resync_active(const cb_resync *rs)
{
    return rs->active;
}

/* Events are best effort, as the router's: a full outbox drops one (stats still count). */
static void resync_event(cb_resync *rs, uint8_t kind, uint64_t detail)
{
    cb_action a;
    memset(&a, 0, sizeof a);
    a.kind = CB_ACTION_EVENT;
    a.peer = rs->target;
    a.event.kind = kind;
    a.event.detail = detail > INT32_MAX ? INT32_MAX : (int32_t)detail;
    (void)cb_outbox_push(&rs->events, &a);
}

/* Does `key` belong on the target (among the first R of its preference list)? */
static int resync_owned(const cb_resync *rs, const uint8_t *key, size_t key_len)
{
    uint32_t list[CB_ROUTER_REPLICAS_MAX];
    int n = cb_placement_lookup(rs->placement, key, key_len, list, rs->cfg.replicas);
    for (int i = 0; i < n; i++) {
        if (list[i] == rs->target) {
            return 1;
        }
    }
    return 0;
}

/* Submit the versioned SET of one scanned item, if it is the target's. 0 if the client
 * had no room (the caller puts the item back). */
static int resync_item(cb_resync *rs, const cb_scanbody_item *it, uint64_t now_ns)
{
    if (!resync_owned(rs, it->key, it->key_len)) {
        return 1;
    }
    if (it->version == 0) {
        rs->stats.unversioned++;
        return 1;
    }
    cb_client_op op;
    memset(&op, 0, sizeof op);
    /* A tombstone is copied as the versioned DELETE that made it (docs/protocol.md §3.1):
     * the target then refuses older copies from other peers, whatever their order. */
    op.op = it->tombstone ? CB_OP_DELETE : CB_OP_SET;
    op.key = it->key;
    op.key_len = it->key_len;
    if (!it->tombstone) {
        op.value = it->value;
        op.value_len = it->value_len;
        op.ttl_ms = it->ttl_ms;
    }
    op.delta = it->version; /* the frame's arg: a versioned SET or DELETE */
    op.user_data = it->version;
    if (cb_client_request(rs->cli, rs->target, &op, now_ns, NULL) != CB_ERR_OK) {
        return 0;
    }
    rs->stats.items_owned++;
    rs->stats.writes++;
    rs->writes_inflight++;
    return 1;
}

/* Submit the writes of the current body while there is room; 1 when it is all submitted. */
static int resync_drain_body(cb_resync *rs, uint64_t now_ns)
{
    while (rs->have_body && rs->writes_inflight < rs->cfg.writes_max) {
        cb_scanbody_reader before = rs->rd;
        cb_scanbody_item it;
        if (cb_scanbody_next(&rs->rd, &it) != CB_ERR_OK) {
            rs->have_body = 0;
            break;
        }
        if (!resync_item(rs, &it, now_ns)) {
            rs->rd = before; /* the client is full: retried at the next completion */
            return 0;
        }
    }
    return !rs->have_body;
}

/* Move to the next peer that is not the target; 0 when there is none left. */
static int resync_next_peer(cb_resync *rs)
{
    size_t count = cb_placement_node_count(rs->placement);
    if (rs->peer_done) {
        rs->peer_pos++;
        rs->peer_done = 0;
        rs->cursor = 0;
    }
    while (rs->peer_pos < count &&
           cb_placement_node_id_at(rs->placement, rs->peer_pos) == rs->target) {
        rs->peer_pos++;
    }
    return rs->peer_pos < count;
}

static void resync_finish(cb_resync *rs)
{
    rs->active = 0;
    rs->stats.runs_done++;
    resync_event(rs, CB_EVENT_RESYNC_DONE, rs->run_stored);
}

/* Keep the pipeline full: writes from the body, then the next SCAN, then the end. */
static void resync_pump(cb_resync *rs, uint64_t now_ns)
{
    if (!rs->active || !resync_drain_body(rs, now_ns) || rs->scan_inflight) {
        return;
    }
    if (!resync_next_peer(rs)) {
        if (rs->writes_inflight == 0) {
            resync_finish(rs);
        }
        return;
    }
    cb_client_op op;
    memset(&op, 0, sizeof op);
    op.op = CB_OP_SCAN;
    op.delta = rs->cursor;
    op.ttl_ms = rs->cfg.scan_items;
    op.user_data = RESYNC_TAG_SCAN;
    uint32_t peer = cb_placement_node_id_at(rs->placement, rs->peer_pos);
    if (cb_client_request(rs->cli, peer, &op, now_ns, NULL) == CB_ERR_OK) {
        rs->scan_inflight = 1;
        rs->stats.scans++;
    }
}

int cb_resync_start(cb_resync *rs, uint32_t node, uint64_t now_ns)
{
    if (rs->active) {
        return CB_ERR_BUSY;
    }
    size_t count = cb_placement_node_count(rs->placement);
    size_t pos = 0;
    while (pos < count && cb_placement_node_id_at(rs->placement, pos) != node) {
        pos++;
    }
    if (pos == count) {
        return CB_ERR_NOT_FOUND;
    }
    rs->active = 1;
    rs->target = node;
    rs->peer_pos = 0;
    rs->peer_done = 0;
    rs->cursor = 0;
    rs->have_body = 0;
    rs->run_stored = 0;
    rs->stats.runs++;
    resync_event(rs, CB_EVENT_RESYNC_START, count - 1);
    resync_pump(rs, now_ns);
    return CB_ERR_OK;
}

/* A SCAN reply: keep its body for the writes, note the next cursor. */
static void resync_on_scan(cb_resync *rs, const cb_completion *c)
{
    rs->scan_inflight = 0;
    uint32_t count = 0;
    if (c->outcome != CB_OUTCOME_OK || c->status != CB_STATUS_OK) {
        rs->stats.scans_failed++;
        rs->peer_done = 1;
        return;
    }
    if (c->value_len > rs->body_cap) {
        uint8_t *b = cb_alloc_malloc(rs->alloc, c->value_len);
        if (b == NULL) {
            rs->stats.scans_failed++;
            rs->peer_done = 1;
            return;
        }
        cb_alloc_free(rs->alloc, rs->body);
        rs->body = b;
        rs->body_cap = c->value_len;
    }
    if (c->value_len > 0) {
        memcpy(rs->body, c->value, c->value_len);
    }
    if (cb_scanbody_reader_init(&rs->rd, rs->body, c->value_len, &count) != CB_ERR_OK) {
        rs->stats.scans_failed++; /* a malformed body: give up on this peer */
        rs->peer_done = 1;
        return;
    }
    rs->stats.items_seen += count;
    rs->have_body = 1;
    rs->cursor = c->number;
    rs->peer_done = c->number == 0;
}

int cb_resync_on_completion(cb_resync *rs, const cb_completion *c, uint64_t now_ns)
{
    if (!rs->active) {
        return CB_ERR_INVALID;
    }
    if (c->op == CB_OP_SCAN) {
        resync_on_scan(rs, c);
    } else {
        rs->writes_inflight--;
        int ok = c->outcome == CB_OUTCOME_STORED || c->outcome == CB_OUTCOME_DELETED ||
                 c->outcome == CB_OUTCOME_NOT_FOUND;
        rs->stats.tombstones += c->op == CB_OP_DELETE && ok;
        if (!ok) {
            rs->stats.writes_failed++;
        } else if (c->number > c->user_data) {
            rs->stats.writes_superseded++; /* a newer write got there first */
        } else {
            rs->stats.writes_stored++;
            rs->run_stored++;
        }
    }
    resync_pump(rs, now_ns);
    return CB_ERR_OK;
}

size_t cb_resync_drain(cb_resync *rs, cb_action *out, size_t out_cap)
{
    return cb_outbox_drain(&rs->events, out, out_cap);
}

void cb_resync_get_stats(const cb_resync *rs, cb_resync_stats *out)
{
    *out = rs->stats;
}
