/* cb_runner.c: a workload or a trace in, outcomes out; see cb_runner.h. */
#include "cb_runner.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_err.h"
#include "cb_frame.h"
#include "cb_tracedemux.h"

typedef struct runner_pending {
    uint64_t key_id;      /* names the key when key_len is 0; seeds the value's bytes */
    uint64_t intended_ns; /* open loop: the arrival time; else the submit time */
    uint32_t value_bytes; /* a read-modify-write or fill GET keeps its SET's size */
    uint32_t ttl_ms;
    uint64_t value_digest; /* stores: cb_results_value_digest() of the value sent */
    uint8_t op;
    uint8_t rmw;     /* read-modify-write GET: its SET follows on a hit or a miss */
    uint8_t fill;    /* trace fill_on_miss GET: its SET follows on a miss */
    uint8_t record;  /* issued after the warm-up */
    uint8_t key_len; /* > 0: the key is the client's keys[idx] (trace key strings) */
} runner_pending;

/* A SET owed after a completed GET (read-modify-write, fill on miss). */
typedef struct runner_follow {
    uint64_t key_id;
    uint32_t value_bytes;
    uint32_t ttl_ms;
    uint8_t key_len; /* > 0: the key is follow_keys[slot] */
} runner_follow;

/* What one request is made of, before it becomes a cb_client_op. */
typedef struct runner_req {
    uint8_t op, rmw, fill;
    uint8_t key_len; /* > 0: key_bytes holds the key; 0: named from key_id */
    const uint8_t *key_bytes;
    uint64_t key_id;
    uint32_t value_bytes; /* capped at the value cap when built */
    uint32_t ttl_ms;
    uint64_t intended_ns;
} runner_req;

typedef struct runner_client {
    cb_workload_stream *stream; /* NULL in trace replay */
    uint64_t budget;            /* requests this client may issue; UINT64_MAX: no budget */
    uint64_t issued;
    int have_op; /* `op` (or `rec`) is drawn and waits for ready_ns */
    cb_workload_op op;
    cb_trace_record rec;
    uint64_t ready_ns;
    /* SETs owed, a ring of outstanding_max: each comes from a completed request, and is
     * issued before any new one, so owed + in flight never exceeds outstanding_max. */
    runner_follow *follow;
    uint32_t follow_head, follow_count;
    runner_pending *pending; /* outstanding_max entries, indexed by user_data */
    uint32_t *free_idx;
    uint32_t free_count;
    uint8_t (*keys)[CB_KEY_BYTES_MAX];        /* trace replay: pending requests' keys */
    uint8_t (*follow_keys)[CB_KEY_BYTES_MAX]; /* trace replay: owed SETs' keys */
} runner_client;

struct cb_runner {
    cb_runner_config cfg;
    runner_client *clients;
    cb_tracedemux *demux; /* trace replay, else NULL */
    uint8_t key[CB_KEY_BYTES_MAX];
    uint8_t *value; /* scratch for the value being submitted (copied by the client) */
    uint32_t value_cap;
    uint64_t budget;
    uint64_t progress_step;
    cb_runner_totals totals;
    const char *db_error;
    const char *trace_error;
};

static int runner_client_init(cb_runner *r, uint32_t i)
{
    runner_client *c = &r->clients[i];
    uint32_t n = r->cfg.outstanding_max;
    if (r->cfg.trace == NULL && cb_workload_stream_new(r->cfg.workload, i, &c->stream) != 0) {
        return -1;
    }
    c->pending = calloc(n, sizeof c->pending[0]);
    c->free_idx = calloc(n, sizeof c->free_idx[0]);
    c->follow = calloc(n, sizeof c->follow[0]);
    if (c->pending == NULL || c->free_idx == NULL || c->follow == NULL) {
        return -1;
    }
    if (r->cfg.trace != NULL) {
        c->keys = calloc(n, sizeof c->keys[0]);
        c->follow_keys = calloc(n, sizeof c->follow_keys[0]);
        if (c->keys == NULL || c->follow_keys == NULL) {
            return -1;
        }
    }
    for (uint32_t k = 0; k < n; k++) {
        c->free_idx[k] = n - 1 - k;
    }
    c->free_count = n;
    c->budget = UINT64_MAX;
    if (r->cfg.requests > 0 && r->cfg.trace == NULL) {
        uint64_t base = r->cfg.requests / r->cfg.client_count;
        c->budget = base + (i < r->cfg.requests % r->cfg.client_count ? 1 : 0);
    }
    return 0;
}

int cb_runner_new(const cb_runner_config *cfg, cb_runner **out)
{
    *out = NULL;
    if ((cfg->requests == 0 && cfg->duration_ns == 0) || cfg->client_count == 0 ||
        cfg->outstanding_max == 0 || cfg->workload == NULL || cfg->placement == NULL) {
        return -1;
    }
    cb_runner *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return -1;
    }
    r->cfg = *cfg;
    r->value_cap = cb_workload_get_config(cfg->workload)->value_cap;
    r->value = malloc(r->value_cap > 0 ? r->value_cap : 1);
    r->clients = calloc(cfg->client_count, sizeof r->clients[0]);
    if (r->value == NULL || r->clients == NULL ||
        (cfg->trace != NULL &&
         cb_tracedemux_new(cfg->trace, cfg->client_count, CB_RUNNER_TRACE_BUFFERED, cfg->requests,
                           &r->demux) != CB_ERR_OK)) {
        cb_runner_del(r);
        return -1;
    }
    for (uint32_t i = 0; i < cfg->client_count; i++) {
        if (runner_client_init(r, i) != 0) {
            cb_runner_del(r);
            return -1;
        }
    }
    r->budget = cfg->requests;
    r->progress_step = cfg->requests >= 100 ? cfg->requests / 100 : 1;
    *out = r;
    return 0;
}

void cb_runner_del(cb_runner *r)
{
    if (r == NULL) {
        return;
    }
    for (uint32_t i = 0; r->clients != NULL && i < r->cfg.client_count; i++) {
        runner_client *c = &r->clients[i];
        cb_workload_stream_del(c->stream);
        free(c->pending);
        free(c->free_idx);
        free(c->follow);
        free(c->keys);
        free(c->follow_keys);
    }
    cb_tracedemux_del(r->demux);
    free(r->clients);
    free(r->value);
    free(r);
}

const cb_runner_totals *cb_runner_get_totals(const cb_runner *r)
{
    return &r->totals;
}

uint64_t cb_runner_budget(const cb_runner *r)
{
    return r->budget;
}

const char *cb_runner_db_error(const cb_runner *r)
{
    return r->db_error;
}

const char *cb_runner_trace_error(const cb_runner *r)
{
    return r->trace_error;
}

static int runner_is_store(uint8_t op)
{
    return op == CB_OP_SET || op == CB_OP_ADD || op == CB_OP_REPLACE || op == CB_OP_APPEND ||
           op == CB_OP_PREPEND || op == CB_OP_CAS;
}

/* Fill *op from *q and take a pending entry for it. */
static void runner_build(cb_runner *r, runner_client *c, const runner_req *q, cb_client_op *op)
{
    uint32_t idx = c->free_idx[--c->free_count];
    uint32_t value_bytes = q->value_bytes > r->value_cap ? r->value_cap : q->value_bytes;
    memset(op, 0, sizeof *op);
    op->op = q->op;
    if (q->key_len > 0) {
        memcpy(c->keys[idx], q->key_bytes, q->key_len);
        op->key = c->keys[idx];
        op->key_len = q->key_len;
    } else {
        op->key_len =
            (uint8_t)cb_workload_key_name(r->cfg.workload, q->key_id, r->key, sizeof r->key);
        op->key = r->key;
    }
    if (runner_is_store(q->op)) {
        cb_workload_fill_value(q->key_id, c->issued, r->value, value_bytes);
        op->value = r->value;
        op->value_len = value_bytes;
        op->ttl_ms = q->ttl_ms;
    }
    if (q->op == CB_OP_INCR || q->op == CB_OP_DECR) {
        op->delta = 1;
    }
    c->pending[idx] = (runner_pending){
        .key_id = q->key_id,
        .intended_ns = q->intended_ns,
        .value_bytes = value_bytes,
        .ttl_ms = q->ttl_ms,
        .value_digest = runner_is_store(q->op) ? cb_results_value_digest(r->value, value_bytes) : 0,
        .op = q->op,
        .rmw = q->rmw,
        .fill = q->fill,
        .record = q->intended_ns >= r->cfg.warmup_ns,
        .key_len = q->key_len,
    };
    op->user_data = idx;
    r->totals.issued++;
}

static uint32_t runner_route(const cb_runner *r, const cb_client_op *op)
{
    uint32_t node = 0;
    int n = cb_placement_lookup(r->cfg.placement, op->key, op->key_len, &node, 1);
    /* No node up: send to the primary's slot anyway; the request times out, as it would. */
    return n > 0 ? node : 0;
}

/* Build the oldest owed SET. */
static void runner_follow_pop(cb_runner *r, runner_client *c, uint64_t now_ns, cb_client_op *op)
{
    uint32_t slot = c->follow_head;
    const runner_follow *f = &c->follow[slot];
    runner_req q = {.op = CB_OP_SET,
                    .key_len = f->key_len,
                    .key_bytes = f->key_len > 0 ? c->follow_keys[slot] : NULL,
                    .key_id = f->key_id,
                    .value_bytes = f->value_bytes,
                    .ttl_ms = f->ttl_ms,
                    .intended_ns = now_ns};
    runner_build(r, c, &q, op);
    c->follow_head = (slot + 1) % r->cfg.outstanding_max;
    c->follow_count--;
}

/* The pending request `idx` completed and owes a SET. */
static void runner_follow_push(cb_runner *r, runner_client *c, uint32_t idx)
{
    const runner_pending *p = &c->pending[idx];
    assert(c->follow_count < r->cfg.outstanding_max);
    uint32_t slot = (c->follow_head + c->follow_count) % r->cfg.outstanding_max;
    c->follow[slot] = (runner_follow){p->key_id, p->value_bytes, p->ttl_ms, p->key_len};
    if (p->key_len > 0) {
        memcpy(c->follow_keys[slot], c->keys[idx], p->key_len);
    }
    c->follow_count++;
}

/* When to ask again for an operation ready at ready_ns: never if that is past the end. */
static uint64_t runner_wake(const cb_runner *r, uint64_t ready_ns)
{
    return r->cfg.duration_ns > 0 && ready_ns >= r->cfg.duration_ns ? UINT64_MAX : ready_ns;
}

/* 64-bit FNV-1a: a trace key string's id, which seeds its values' bytes. */
static uint64_t runner_key_hash(const uint8_t *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ key[i]) * 0x100000001b3ull;
    }
    return h;
}

static void runner_trace_req(const cb_runner *r, const runner_client *c, uint64_t now_ns,
                             runner_req *q)
{
    const cb_trace_record *rec = &c->rec;
    uint64_t ttl_ms = (uint64_t)rec->ttl_s * 1000u;
    *q = (runner_req){.op = rec->op,
                      .fill = rec->fill_on_miss,
                      .key_id = rec->key_id,
                      .value_bytes = rec->value_bytes,
                      .ttl_ms = ttl_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ttl_ms,
                      .intended_ns = r->cfg.trace_timed ? rec->timestamp_ns : now_ns};
    if (!rec->key_is_id) {
        q->key_len = rec->key_len;
        q->key_bytes = rec->key;
        q->key_id = runner_key_hash(rec->key, rec->key_len);
    }
}

/* Trace replay: the client's next record, when its time has come. */
static int runner_next_trace(cb_runner *r, runner_client *c, uint32_t client, uint64_t now_ns,
                             cb_client_op *op, uint64_t *wake_ns)
{
    if (!c->have_op) {
        int rc = cb_tracedemux_next(r->demux, client, &c->rec);
        if (rc == CB_TRACEDEMUX_WAIT) {
            *wake_ns = runner_wake(r, now_ns + CB_RUNNER_TRACE_POLL_NS);
            return 0;
        }
        if (rc != CB_TRACEDEMUX_RECORD) {
            if (rc < 0 && r->trace_error == NULL) {
                r->trace_error = cb_trace_error(r->cfg.trace);
            }
            return 0; /* this client's part of the trace is over */
        }
        c->have_op = 1;
        c->ready_ns = r->cfg.trace_timed
                          ? c->rec.timestamp_ns
                          : now_ns + cb_workload_get_config(r->cfg.workload)->think_ns;
    }
    if (now_ns < c->ready_ns) {
        *wake_ns = runner_wake(r, c->ready_ns);
        return 0;
    }
    runner_req q;
    runner_trace_req(r, c, now_ns, &q);
    runner_build(r, c, &q, op);
    c->have_op = 0;
    c->issued++;
    return 1;
}

/* Synthetic workload: the stream's next operation, when its time has come. */
static int runner_next_stream(cb_runner *r, runner_client *c, uint64_t now_ns, cb_client_op *op,
                              uint64_t *wake_ns)
{
    int open = cb_workload_get_config(r->cfg.workload)->arrival == CB_WL_ARRIVAL_OPEN;
    if (!c->have_op) {
        if (c->issued >= c->budget) {
            return 0;
        }
        cb_workload_next(c->stream, now_ns, &c->op);
        c->have_op = 1;
        c->ready_ns = open ? c->op.at_ns : now_ns + c->op.at_ns;
    }
    if (now_ns < c->ready_ns) {
        *wake_ns = runner_wake(r, c->ready_ns);
        return 0;
    }
    /* An open-loop request late because the client had no free slot is timed from its
     * arrival, so client-side queueing counts in its latency (no coordinated omission). */
    runner_req q = {.op = c->op.op,
                    .rmw = c->op.rmw,
                    .key_id = c->op.key_id,
                    .value_bytes = c->op.value_bytes,
                    .intended_ns = open ? c->op.at_ns : now_ns};
    runner_build(r, c, &q, op);
    c->have_op = 0;
    c->issued++;
    return 1;
}

int cb_runner_next(void *user, uint32_t client, uint64_t now_ns, cb_client_op *op, uint32_t *server,
                   uint64_t *wake_ns)
{
    cb_runner *r = user;
    runner_client *c = &r->clients[client];
    *wake_ns = UINT64_MAX;
    int stopped = (r->cfg.duration_ns > 0 && now_ns >= r->cfg.duration_ns) ||
                  (r->cfg.stop != NULL && *r->cfg.stop != 0);
    if (c->free_count == 0 || stopped) {
        return 0;
    }
    int got = 1;
    if (c->follow_count > 0) {
        runner_follow_pop(r, c, now_ns, op);
    } else if (r->demux != NULL) {
        got = runner_next_trace(r, c, client, now_ns, op, wake_ns);
    } else {
        got = runner_next_stream(r, c, now_ns, op, wake_ns);
    }
    if (got) {
        *server = runner_route(r, op);
    }
    return got;
}

static void runner_count(cb_runner *r, const cb_completion *cm)
{
    cb_runner_totals *t = &r->totals;
    t->completed++;
    t->hits += cm->outcome == CB_OUTCOME_HIT;
    t->misses += cm->outcome == CB_OUTCOME_MISS;
    t->timeouts += cm->outcome == CB_OUTCOME_TIMEOUT;
    t->errors += cm->outcome == CB_OUTCOME_ERROR;
    t->retries += cm->attempts > 1 ? cm->attempts - 1 : 0;
    t->bytes_sent += cm->bytes_sent;
    t->bytes_received += cm->bytes_received;
    t->last_complete_ns = cm->complete_ns;
}

/*
 * Which value the request wrote or read (docs/results.md, requests.version/value_digest): a
 * store's digest is of the value sent, whatever its outcome (a timed-out write may have
 * landed); a hit's of the value received. The version is the completion's `number` for
 * GET, SET and DELETE when a server answered (the version written, read or deleted; 0: an
 * unversioned item); INCR/DECR's number is their new value, not a version.
 */
static void runner_record_value(const runner_pending *p, const cb_completion *cm,
                                cb_result_request *row)
{
    int answered = cm->outcome != CB_OUTCOME_TIMEOUT && cm->outcome != CB_OUTCOME_ERROR &&
                   cm->outcome != CB_OUTCOME_MISS;
    if (runner_is_store(p->op)) {
        row->has_value_digest = 1;
        row->value_digest = p->value_digest;
    } else if (cm->outcome == CB_OUTCOME_HIT) {
        row->has_value_digest = 1;
        row->value_digest = cb_results_value_digest(cm->value, cm->value_len);
    }
    if (answered && (p->op == CB_OP_GET || p->op == CB_OP_SET || p->op == CB_OP_DELETE) &&
        cm->number <= (uint64_t)INT64_MAX) {
        row->has_version = 1;
        row->version = cm->number;
    }
}

static void runner_record(cb_runner *r, uint32_t client, uint32_t idx, const cb_completion *cm)
{
    uint8_t key[CB_KEY_BYTES_MAX];
    const runner_client *c = &r->clients[client];
    const runner_pending *p = &c->pending[idx];
    cb_result_request row;
    memset(&row, 0, sizeof row);
    row.client = client;
    row.server = cm->peer;
    row.op = cb_op_name(p->op);
    if (p->key_len > 0) {
        row.key = c->keys[idx];
        row.key_len = p->key_len;
    } else {
        row.key = key;
        row.key_len = cb_workload_key_name(r->cfg.workload, p->key_id, key, sizeof key);
    }
    row.value_bytes = runner_is_store(p->op) ? p->value_bytes : cm->value_len;
    row.issue_ns = p->intended_ns;
    row.complete_ns = cm->complete_ns;
    row.outcome = cb_outcome_name(cm->outcome);
    row.status = cm->status;
    row.attempts = cm->attempts;
    row.bytes_sent = cm->bytes_sent;
    row.bytes_received = cm->bytes_received;
    runner_record_value(p, cm, &row);
    if (cb_results_add_request(r->cfg.db, r->cfg.run_id, &row) != CB_RESULTS_OK) {
        if (r->db_error == NULL) {
            r->db_error = cb_results_errmsg(r->cfg.db);
        }
        return;
    }
    r->totals.recorded++;
}

void cb_runner_complete(void *user, uint32_t client, const cb_completion *cm)
{
    cb_runner *r = user;
    runner_client *c = &r->clients[client];
    uint32_t idx = (uint32_t)cm->user_data;
    runner_pending *p = &c->pending[idx];
    runner_count(r, cm);
    int answered = cm->outcome == CB_OUTCOME_HIT || cm->outcome == CB_OUTCOME_MISS;
    if ((p->rmw && answered) || (p->fill && cm->outcome == CB_OUTCOME_MISS)) {
        runner_follow_push(r, c, idx);
    }
    if (p->record && r->cfg.db != NULL) {
        runner_record(r, client, idx, cm);
    }
    c->free_idx[c->free_count++] = idx;
    if (r->cfg.progress != NULL && r->totals.completed % r->progress_step == 0) {
        r->cfg.progress(r->cfg.progress_user, r, cm->complete_ns);
    }
}

void cb_runner_event(void *user, uint32_t node, const cb_event *e, uint64_t now_ns)
{
    cb_runner *r = user;
    r->totals.events++;
    r->totals.stale_reads += e->kind == CB_EVENT_STALE_READ;
    if (r->cfg.db == NULL) {
        return;
    }
    char name[32], detail[64];
    const char *who = name; /* NULL: no single node (partition, heal) */
    uint32_t clients_end = r->cfg.server_count + r->cfg.client_count;
    if (node < r->cfg.server_count) {
        snprintf(name, sizeof name, "server%u", node);
    } else if (node < clients_end) {
        snprintf(name, sizeof name, "client%u", node - r->cfg.server_count);
    } else if (node - clients_end < 2u) {
        /* A world's extra nodes, ids S+C and S+C+1: the queue transport's broker and the
         * resyncer (either alone is S+C). */
        const char *extra = r->cfg.extra_node[node - clients_end];
        snprintf(name, sizeof name, "%s", extra != NULL ? extra : "resync");
    } else {
        who = NULL;
    }
    /* A world's fault events (crash ... link_change) carry the scenario's text, if any;
     * partition and heal concern no single node. */
    int fault = e->kind >= CB_EVENT_CRASH && e->kind <= CB_EVENT_LINK_CHANGE;
    snprintf(detail, sizeof detail, "request=%u detail=%d", e->request_id, e->detail);
    if (cb_results_add_event(r->cfg.db, r->cfg.run_id, now_ns, who, cb_event_name(e->kind),
                             fault ? e->note : detail) != CB_RESULTS_OK &&
        r->db_error == NULL) {
        r->db_error = cb_results_errmsg(r->cfg.db);
    }
}
