/* cb_runner.c: workload in, outcomes out; see cb_runner.h. */
#include "cb_runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_err.h"
#include "cb_frame.h"

typedef struct runner_pending {
    uint64_t key_id;
    uint64_t intended_ns; /* open loop: the arrival time; else the submit time */
    uint32_t value_bytes;
    uint8_t op;
    uint8_t rmw;
    uint8_t record;
} runner_pending;

typedef struct runner_client {
    cb_workload_stream *stream;
    uint64_t budget; /* requests this client may issue; UINT64_MAX: no budget */
    uint64_t issued;
    int have_op; /* `op` is drawn and waits for ready_ns */
    cb_workload_op op;
    uint64_t ready_ns;
    int rmw_pending; /* a read-modify-write's SET comes next */
    uint64_t rmw_key;
    uint32_t rmw_bytes;
    runner_pending *pending; /* outstanding_max entries, indexed by user_data */
    uint32_t *free_idx;
    uint32_t free_count;
} runner_client;

struct cb_runner {
    cb_runner_config cfg;
    runner_client *clients;
    uint8_t key[CB_KEY_BYTES_MAX];
    uint8_t *value; /* scratch for the value being submitted (copied by the client) */
    uint32_t value_cap;
    uint64_t budget;
    uint64_t progress_step;
    cb_runner_totals totals;
    const char *db_error;
};

static int runner_client_init(cb_runner *r, uint32_t i)
{
    runner_client *c = &r->clients[i];
    uint32_t n = r->cfg.outstanding_max;
    if (cb_workload_stream_new(r->cfg.workload, i, &c->stream) != 0) {
        return -1;
    }
    c->pending = calloc(n, sizeof c->pending[0]);
    c->free_idx = calloc(n, sizeof c->free_idx[0]);
    if (c->pending == NULL || c->free_idx == NULL) {
        return -1;
    }
    for (uint32_t k = 0; k < n; k++) {
        c->free_idx[k] = n - 1 - k;
    }
    c->free_count = n;
    c->budget = UINT64_MAX;
    if (r->cfg.requests > 0) {
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
    if (r->value == NULL || r->clients == NULL) {
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
        cb_workload_stream_del(r->clients[i].stream);
        free(r->clients[i].pending);
        free(r->clients[i].free_idx);
    }
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

/* Fill *op for (op code, key, value bytes) and take a pending entry for it. */
static void runner_build(cb_runner *r, runner_client *c, uint8_t code, uint64_t key_id,
                         uint32_t value_bytes, uint64_t intended_ns, uint8_t rmw, cb_client_op *op)
{
    const cb_workload *wl = r->cfg.workload;
    memset(op, 0, sizeof *op);
    op->op = code;
    op->key_len = (uint8_t)cb_workload_key_name(wl, key_id, r->key, sizeof r->key);
    op->key = r->key;
    if (code == CB_OP_SET) {
        if (value_bytes > r->value_cap) {
            value_bytes = r->value_cap;
        }
        cb_workload_fill_value(key_id, c->issued, r->value, value_bytes);
        op->value = r->value;
        op->value_len = value_bytes;
    }
    if (code == CB_OP_INCR) {
        op->delta = 1;
    }
    uint32_t idx = c->free_idx[--c->free_count];
    runner_pending *p = &c->pending[idx];
    p->key_id = key_id;
    p->intended_ns = intended_ns;
    p->value_bytes = value_bytes; /* a read-modify-write GET keeps its SET's size */
    p->op = code;
    p->rmw = rmw;
    p->record = intended_ns >= r->cfg.warmup_ns;
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
    if (c->rmw_pending) {
        c->rmw_pending = 0;
        runner_build(r, c, CB_OP_SET, c->rmw_key, c->rmw_bytes, now_ns, 0, op);
        *server = runner_route(r, op);
        return 1;
    }
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
        int beyond = r->cfg.duration_ns > 0 && c->ready_ns >= r->cfg.duration_ns;
        *wake_ns = beyond ? UINT64_MAX : c->ready_ns;
        return 0;
    }
    /* An open-loop request late because the client had no free slot is timed from its
     * arrival, so client-side queueing counts in its latency (no coordinated omission). */
    uint64_t intended = open ? c->op.at_ns : now_ns;
    runner_build(r, c, c->op.op, c->op.key_id, c->op.value_bytes, intended, c->op.rmw, op);
    c->have_op = 0;
    c->issued++;
    *server = runner_route(r, op);
    return 1;
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

static void runner_record(cb_runner *r, uint32_t client, const runner_pending *p,
                          const cb_completion *cm)
{
    uint8_t key[CB_KEY_BYTES_MAX];
    cb_result_request row;
    memset(&row, 0, sizeof row);
    row.client = client;
    row.server = cm->peer;
    row.op = cb_op_name(p->op);
    row.key = key;
    row.key_len = cb_workload_key_name(r->cfg.workload, p->key_id, key, sizeof key);
    row.value_bytes = p->op == CB_OP_SET ? p->value_bytes : cm->value_len;
    row.issue_ns = p->intended_ns;
    row.complete_ns = cm->complete_ns;
    row.outcome = cb_outcome_name(cm->outcome);
    row.status = cm->status;
    row.attempts = cm->attempts;
    row.bytes_sent = cm->bytes_sent;
    row.bytes_received = cm->bytes_received;
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
    if (p->rmw && (cm->outcome == CB_OUTCOME_HIT || cm->outcome == CB_OUTCOME_MISS)) {
        c->rmw_pending = 1;
        c->rmw_key = p->key_id;
        c->rmw_bytes = p->value_bytes;
    }
    if (p->record && r->cfg.db != NULL) {
        runner_record(r, client, p, cm);
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
    if (r->cfg.db == NULL) {
        return;
    }
    char name[32], detail[64];
    if (node < r->cfg.server_count) {
        snprintf(name, sizeof name, "server%u", node);
    } else {
        snprintf(name, sizeof name, "client%u", node - r->cfg.server_count);
    }
    /* A world's fault events (crash ... link_change) carry the scenario's text, if any;
     * partition and heal concern no single node. */
    int fault = e->kind >= CB_EVENT_CRASH;
    snprintf(detail, sizeof detail, "request=%u detail=%d", e->request_id, e->detail);
    if (cb_results_add_event(r->cfg.db, r->cfg.run_id, now_ns,
                             node < r->cfg.server_count + r->cfg.client_count ? name : NULL,
                             cb_event_name(e->kind), fault ? e->note : detail) != CB_RESULTS_OK &&
        r->db_error == NULL) {
        r->db_error = cb_results_errmsg(r->cfg.db);
    }
}
