/* cb_memworld.c: servers and clients over cb_memnet; see cb_memworld.h. */
#include "cb_memworld.h"

#include <string.h>

#include "cb_err.h"

#define MEMWORLD_DRAIN_BATCH 64u

struct cb_memworld {
    cb_memworld_config cfg;
    const cb_alloc *alloc;
    cb_rng root;
    cb_rng *client_rngs;
    uint64_t *wake_ns; /* per client: when to ask its `next` hook again */
    cb_server **servers;
    cb_server_config *server_cfgs; /* each server's, to rebuild it after a crash */
    uint8_t *down;                 /* per server: crashed */
    cb_client **clients;
    cb_router **routers; /* NULL without replication; else clients[i] is routers[i]'s */
    cb_memworld_fault *faults;
    size_t fault_next;
    uint64_t dropped;
    cb_memnet *net;
    uint64_t now_ns;
    const cb_world_hooks *hooks;
    cb_resync *resync;    /* resync = warm only; its node id is S + C */
    cb_rng resync_rng;    /* its client's jitter */
    uint8_t *resync_want; /* per server: recovered, waiting for its resync */
    const uint8_t *groups; /* the partition in force (S + C entries), or NULL */
};

/* 1 when the partition in force keeps nodes a and b apart (the resyncer is in no group). */
static int memworld_separated(const cb_memworld *w, uint32_t a, uint32_t b)
{
    uint32_t n = w->cfg.server_count + w->cfg.client_count;
    if (w->groups == NULL || a >= n || b >= n) {
        return 0;
    }
    return w->groups[a] != 0 && w->groups[b] != 0 && w->groups[a] != w->groups[b];
}

/* Node id of the resyncer (resync = warm). */
static uint32_t memworld_resync_node(const cb_memworld *w)
{
    return w->cfg.server_count + w->cfg.client_count;
}

static int memworld_is_resync(const cb_memworld *w, uint32_t node)
{
    return w->resync != NULL && node == memworld_resync_node(w);
}

/* The resyncer (warm) over the routers' placement and R, drawing its own sub-seed last so
 * that every other stream is the same as with lazy. */
static int memworld_alloc_resync(cb_memworld *w, const cb_client_config *cc)
{
    const cb_memworld_config *c = &w->cfg;
    cb_resync_config rc = cb_resync_config_default();
    rc.replicas = c->router->replicas;
    rc.client = *cc;
    w->resync_want = cb_alloc_calloc(w->alloc, c->server_count, sizeof w->resync_want[0]);
    if (w->resync_want == NULL) {
        return CB_ERR_NOMEM;
    }
    cb_rng_split(&w->root, &w->resync_rng);
    return cb_resync_new(&rc, c->placement, &w->resync_rng, w->alloc, &w->resync);
}

/*
 * The seed of node `node`'s seal salts (cb_codec_config.seal_seed): distinct per node, so
 * no two machines sharing the key draw the same salts (docs/protocol.md §6.2), and derived
 * without drawing from the root generator, so turning sealing on changes no other stream.
 */
static uint64_t memworld_seal_seed(const cb_memworld *w, uint64_t configured, uint32_t node)
{
    return cb_rng_mix64(w->cfg.seed ^ configured ^ cb_rng_mix64(0x5ea1ull + node));
}

/* A router per client (replication), each owning the client the world drives. */
static int memworld_alloc_routers(cb_memworld *w, const cb_client_config *cc)
{
    const cb_memworld_config *c = &w->cfg;
    w->routers = cb_alloc_calloc(w->alloc, c->client_count, sizeof w->routers[0]);
    if (w->routers == NULL) {
        return CB_ERR_NOMEM;
    }
    cb_router_config rc = *c->router;
    rc.client = *cc;
    if (rc.ops_max < cc->outstanding_max) {
        rc.ops_max = cc->outstanding_max;
    }
    for (uint32_t i = 0; i < c->client_count; i++) {
        rc.writer_id = i;
        rc.client.codec.seal_seed =
            memworld_seal_seed(w, c->client.codec.seal_seed, c->server_count + i);
        cb_rng_split(&w->root, &w->client_rngs[i]);
        int err = cb_router_new(&rc, c->placement, &w->client_rngs[i], w->alloc, &w->routers[i]);
        if (err != CB_ERR_OK) {
            return err;
        }
        w->clients[i] = cb_router_client(w->routers[i]);
    }
    return CB_ERR_OK;
}

static int memworld_alloc_clients(cb_memworld *w)
{
    const cb_memworld_config *c = &w->cfg;
    cb_client_config cc = c->client;
    cc.peer_count = c->server_count;
    if (c->router != NULL) {
        return memworld_alloc_routers(w, &cc);
    }
    for (uint32_t i = 0; i < c->client_count; i++) {
        cc.codec.seal_seed = memworld_seal_seed(w, c->client.codec.seal_seed, c->server_count + i);
        cb_rng_split(&w->root, &w->client_rngs[i]);
        int rc = cb_client_new(&cc, &w->client_rngs[i], w->alloc, &w->clients[i]);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    return CB_ERR_OK;
}

static int memworld_alloc_nodes(cb_memworld *w, const cb_server_config *server_each)
{
    const cb_memworld_config *c = &w->cfg;
    w->servers = cb_alloc_calloc(w->alloc, c->server_count, sizeof w->servers[0]);
    w->clients = cb_alloc_calloc(w->alloc, c->client_count, sizeof w->clients[0]);
    w->client_rngs = cb_alloc_calloc(w->alloc, c->client_count, sizeof w->client_rngs[0]);
    w->wake_ns = cb_alloc_calloc(w->alloc, c->client_count, sizeof w->wake_ns[0]);
    w->server_cfgs = cb_alloc_calloc(w->alloc, c->server_count, sizeof w->server_cfgs[0]);
    w->down = cb_alloc_calloc(w->alloc, c->server_count, sizeof w->down[0]);
    if (w->servers == NULL || w->clients == NULL || w->client_rngs == NULL || w->wake_ns == NULL ||
        w->server_cfgs == NULL || w->down == NULL) {
        return CB_ERR_NOMEM;
    }
    for (uint32_t s = 0; s < c->server_count; s++) {
        cb_server_config sc = server_each != NULL ? server_each[s] : c->server;
        sc.conn_max = c->server_count + c->client_count + (c->resync == CB_RESYNC_WARM);
        sc.codec.seal_seed = memworld_seal_seed(w, sc.codec.seal_seed, s);
        w->server_cfgs[s] = sc;
        int rc = cb_server_new(&sc, w->alloc, &w->servers[s]);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    int rc = memworld_alloc_clients(w);
    if (rc != CB_ERR_OK) {
        return rc;
    }
    cb_memnet_config nc = c->net;
    nc.seed = cb_rng_next(&w->root);
    if (c->resync == CB_RESYNC_WARM) {
        cb_client_config cc = c->client;
        cc.peer_count = c->server_count;
        rc = memworld_alloc_resync(w, &cc);
        if (rc != CB_ERR_OK) {
            return rc;
        }
        if (nc.node_count > 0 && nc.node_count <= memworld_resync_node(w)) {
            nc.node_count = memworld_resync_node(w) + 1; /* streams to the resyncer too */
        }
    }
    return cb_memnet_new(&nc, w->alloc, &w->net);
}

/* Copy the fault schedule; it must be sorted and name existing servers. */
static int memworld_copy_faults(cb_memworld *w, const cb_memworld_config *cfg)
{
    w->cfg.faults = NULL;
    if (cfg->fault_count == 0) {
        return CB_ERR_OK;
    }
    for (size_t i = 0; i < cfg->fault_count; i++) {
        const cb_memworld_fault *f = &cfg->faults[i];
        int server_kind = f->kind == CB_MEMWORLD_CRASH || f->kind == CB_MEMWORLD_RECOVER;
        if ((server_kind && f->server >= cfg->server_count) ||
            (!server_kind && f->kind != CB_MEMWORLD_HEAL &&
             (f->kind != CB_MEMWORLD_PARTITION || f->groups == NULL)) ||
            (i > 0 && f->at_ns < cfg->faults[i - 1].at_ns)) {
            return CB_ERR_INVALID;
        }
    }
    w->faults = cb_alloc_calloc(w->alloc, cfg->fault_count, sizeof w->faults[0]);
    if (w->faults == NULL) {
        return CB_ERR_NOMEM;
    }
    memcpy(w->faults, cfg->faults, cfg->fault_count * sizeof w->faults[0]);
    return CB_ERR_OK;
}

int cb_memworld_new(const cb_memworld_config *cfg, const cb_alloc *alloc, cb_memworld **out)
{
    *out = NULL;
    if (cfg->server_count == 0 || cfg->client_count == 0 ||
        (cfg->router != NULL && cfg->placement == NULL) || cfg->resync > CB_RESYNC_WARM ||
        (cfg->resync == CB_RESYNC_WARM && cfg->router == NULL) ||
        (cfg->fault_count > 0 && cfg->faults == NULL)) {
        return CB_ERR_INVALID;
    }
    cb_memworld *w = cb_alloc_calloc(alloc, 1, sizeof *w);
    if (w == NULL) {
        return CB_ERR_NOMEM;
    }
    w->cfg = *cfg;
    w->cfg.server_each = NULL; /* only read during construction, below */
    w->cfg.router = NULL;
    w->alloc = alloc;
    cb_rng_init(&w->root, cfg->seed);
    w->cfg.router = cfg->router; /* read by memworld_alloc_nodes only */
    int rc = memworld_copy_faults(w, cfg);
    if (rc == CB_ERR_OK) {
        rc = memworld_alloc_nodes(w, cfg->server_each);
    }
    w->cfg.router = NULL;
    if (rc != CB_ERR_OK) {
        cb_memworld_del(w);
        return rc;
    }
    *out = w;
    return CB_ERR_OK;
}

void cb_memworld_del(cb_memworld *w)
{
    if (w == NULL) {
        return;
    }
    for (uint32_t s = 0; w->servers != NULL && s < w->cfg.server_count; s++) {
        cb_server_del(w->servers[s]);
    }
    for (uint32_t i = 0; w->clients != NULL && i < w->cfg.client_count; i++) {
        if (w->routers != NULL) {
            cb_router_del(w->routers[i]); /* and the client it owns */
        } else {
            cb_client_del(w->clients[i]);
        }
    }
    cb_alloc_free(w->alloc, w->routers);
    cb_resync_del(w->resync);
    cb_alloc_free(w->alloc, w->resync_want);
    cb_alloc_free(w->alloc, w->faults);
    cb_alloc_free(w->alloc, w->down);
    cb_alloc_free(w->alloc, w->server_cfgs);
    cb_memnet_del(w->net);
    cb_alloc_free(w->alloc, w->wake_ns);
    cb_alloc_free(w->alloc, w->client_rngs);
    cb_alloc_free(w->alloc, w->clients);
    cb_alloc_free(w->alloc, w->servers);
    cb_alloc_free(w->alloc, w);
}

uint64_t cb_memworld_now_ns(const cb_memworld *w)
{
    return w->now_ns;
}

cb_client *cb_memworld_client(cb_memworld *w, uint32_t client)
{
    return client < w->cfg.client_count ? w->clients[client] : NULL;
}

cb_router *cb_memworld_router(cb_memworld *w, uint32_t client)
{
    return w->routers != NULL && client < w->cfg.client_count ? w->routers[client] : NULL;
}

int cb_memworld_crash(cb_memworld *w, uint32_t server)
{
    if (server >= w->cfg.server_count) {
        return CB_ERR_INVALID;
    }
    if (w->down[server]) {
        return CB_ERR_OK;
    }
    /* The state goes now: a fresh server waits, unreachable, for the recovery. It is a new
     * incarnation, so it draws new seal salts: with the old seed it would repeat the nonces
     * it used before the crash under the same key (docs/protocol.md §6.2). */
    cb_server_config *sc = &w->server_cfgs[server];
    sc->codec.seal_seed = cb_rng_mix64(sc->codec.seal_seed + 1);
    cb_server *fresh = NULL;
    int rc = cb_server_new(sc, w->alloc, &fresh);
    w->down[server] = 1;
    cb_memnet_drop_node(w->net, server);
    cb_server_del(w->servers[server]);
    w->servers[server] = fresh;
    for (uint32_t i = 0; i < w->cfg.client_count; i++) {
        /* Each client's connection to it is gone: drop its partial input. */
        (void)cb_client_on_reset(w->clients[i], server); /* a valid peer: cannot fail */
    }
    if (w->resync != NULL) {
        (void)cb_client_on_reset(cb_resync_client(w->resync), server);
        w->resync_want[server] = 0;
    }
    return rc;
}

int cb_memworld_recover(cb_memworld *w, uint32_t server)
{
    if (server >= w->cfg.server_count) {
        return CB_ERR_INVALID;
    }
    if (w->servers[server] == NULL) {
        int rc = cb_server_new(&w->server_cfgs[server], w->alloc, &w->servers[server]);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    if (w->resync != NULL && w->down[server]) {
        w->resync_want[server] = 1; /* started by the run loop (memworld_resync_kick) */
    }
    w->down[server] = 0;
    return CB_ERR_OK;
}

int cb_memworld_is_down(const cb_memworld *w, uint32_t server)
{
    return server < w->cfg.server_count && w->down[server];
}

uint64_t cb_memworld_dropped(const cb_memworld *w)
{
    return w->dropped;
}

cb_server *cb_memworld_server(cb_memworld *w, uint32_t server)
{
    return server < w->cfg.server_count ? w->servers[server] : NULL;
}

cb_memnet *cb_memworld_net(cb_memworld *w)
{
    return w->net;
}

cb_resync *cb_memworld_resync(cb_memworld *w)
{
    return w->resync;
}

static int memworld_is_server(const cb_memworld *w, uint32_t node)
{
    return node < w->cfg.server_count;
}

/* The client machine of client node `node` (the resyncer's for its node). */
static cb_client *memworld_client_of(cb_memworld *w, uint32_t node)
{
    if (memworld_is_resync(w, node)) {
        return cb_resync_client(w->resync);
    }
    return w->clients[node - w->cfg.server_count];
}

/* Carry out one action of `node` (`from_router`: of the client node's router). SEND targets:
 * a client's peer p is server node p; a server's connection c is node c. A client's COMPLETE
 * goes to its router when there is one. */
static int memworld_act(cb_memworld *w, uint32_t node, const cb_action *a, int from_router)
{
    const cb_world_hooks *h = w->hooks;
    if (h->action != NULL) {
        h->action(h->user, node, a, w->now_ns);
    }
    switch (a->kind) {
    case CB_ACTION_SEND:
        /* A client's peer p is server node p; a server's connection c is node c. */
        if (memworld_separated(w, node, a->peer)) {
            w->dropped++; /* no route across the partition */
            return CB_ERR_OK;
        }
        return cb_memnet_send(w->net, node, a->peer, a->data, a->data_len, w->now_ns);
    case CB_ACTION_COMPLETE:
        if (memworld_is_resync(w, node)) {
            return cb_resync_on_completion(w->resync, &a->completion, w->now_ns);
        }
        w->wake_ns[node - w->cfg.server_count] = 0; /* a slot is free: ask again */
        if (w->routers != NULL && !from_router) {
            return cb_router_on_completion(w->routers[node - w->cfg.server_count], &a->completion,
                                           w->now_ns);
        }
        h->complete(h->user, node - w->cfg.server_count, &a->completion);
        return CB_ERR_OK;
    case CB_ACTION_EVENT:
        if (h->event != NULL) {
            h->event(h->user, node, &a->event, w->now_ns);
        }
        return CB_ERR_OK;
    case CB_ACTION_CLOSE:
        /* Message network: closing only discards the other side's partial input. */
        if (memworld_is_server(w, node)) {
            return cb_client_on_reset(memworld_client_of(w, a->peer), node);
        }
        if (w->servers[a->peer] == NULL) {
            return CB_ERR_OK; /* crashed, and not rebuilt yet */
        }
        return cb_server_on_close(w->servers[a->peer], node);
    default:
        return CB_ERR_INVALID;
    }
}

static size_t memworld_drain_one(cb_memworld *w, uint32_t node, cb_action *batch)
{
    if (memworld_is_server(w, node)) {
        return cb_server_drain(w->servers[node], batch, MEMWORLD_DRAIN_BATCH);
    }
    return cb_client_drain(memworld_client_of(w, node), batch, MEMWORLD_DRAIN_BATCH);
}

/* Drain `node` until its outbox is empty; then, for a client with a router, the router's
 * (its completions may have made the client send more, hence the client first). */
static int memworld_pump(cb_memworld *w, uint32_t node)
{
    cb_action batch[MEMWORLD_DRAIN_BATCH];
    size_t n;
    while ((n = memworld_drain_one(w, node, batch)) > 0) {
        for (size_t i = 0; i < n; i++) {
            int rc = memworld_act(w, node, &batch[i], 0);
            if (rc != CB_ERR_OK) {
                return rc;
            }
        }
    }
    if (w->routers == NULL || memworld_is_server(w, node)) {
        return CB_ERR_OK;
    }
    cb_router *router = memworld_is_resync(w, node) ? NULL : w->routers[node - w->cfg.server_count];
    while ((n = router != NULL ? cb_router_drain(router, batch, MEMWORLD_DRAIN_BATCH)
                               : cb_resync_drain(w->resync, batch, MEMWORLD_DRAIN_BATCH)) > 0) {
        for (size_t i = 0; i < n; i++) {
            int rc = memworld_act(w, node, &batch[i], 1);
            if (rc != CB_ERR_OK) {
                return rc;
            }
        }
    }
    return CB_ERR_OK;
}

/* Feed a delivered message to its destination, draining whenever the machine's outbox
 * fills, until every byte is taken. */
static int memworld_deliver(cb_memworld *w, const cb_memnet_msg *m)
{
    const uint8_t *p = m->data;
    size_t left = m->data_len;
    if ((memworld_is_server(w, m->dst) && w->down[m->dst]) ||
        memworld_separated(w, m->src, m->dst)) {
        w->dropped++; /* a crashed server hears nothing; a partition cuts what was in flight */
        return CB_ERR_OK;
    }
    while (left > 0) {
        long n;
        if (memworld_is_server(w, m->dst)) {
            n = cb_server_on_bytes(w->servers[m->dst], m->src, p, left, w->now_ns);
        } else {
            n = cb_client_on_bytes(memworld_client_of(w, m->dst), m->src, p, left, w->now_ns);
        }
        int rc = memworld_pump(w, m->dst);
        if (rc != CB_ERR_OK) {
            return rc;
        }
        if (n < 0) {
            return CB_ERR_OK; /* a protocol error: the machine closed the stream itself */
        }
        if (n == 0) {
            return CB_ERR_NOMEM; /* nothing taken with an empty outbox: cannot progress */
        }
        p += n;
        left -= (size_t)n;
    }
    return CB_ERR_OK;
}

/* Ask client `i` for operations while it has room and its wake time has come. */
/* Has client `i` room for one more operation? (With a router: the router's operations.) */
static int memworld_has_room(const cb_memworld *w, uint32_t i)
{
    if (w->routers != NULL) {
        return cb_router_outstanding(w->routers[i]) < w->cfg.client.outstanding_max &&
               cb_router_has_room(w->routers[i]);
    }
    return cb_client_outstanding(w->clients[i]) < w->cfg.client.outstanding_max;
}

static int memworld_submit_one(cb_memworld *w, uint32_t i, uint32_t server, const cb_client_op *op)
{
    if (w->routers != NULL) {
        return cb_router_submit(w->routers[i], op, w->now_ns, NULL);
    }
    return cb_client_request(w->clients[i], server, op, w->now_ns, NULL);
}

static int memworld_submit_client(cb_memworld *w, uint32_t i)
{
    const cb_world_hooks *h = w->hooks;
    while (w->wake_ns[i] <= w->now_ns && memworld_has_room(w, i)) {
        cb_client_op op;
        uint32_t server = 0;
        uint64_t wake = UINT64_MAX;
        memset(&op, 0, sizeof op);
        if (!h->next(h->user, i, w->now_ns, &op, &server, &wake)) {
            w->wake_ns[i] = wake > w->now_ns ? wake : w->now_ns + 1;
            break;
        }
        int rc = memworld_submit_one(w, i, server, &op);
        if (rc != CB_ERR_OK) {
            return rc; /* the hook asked for something impossible (a bad op, a bad server) */
        }
        rc = memworld_pump(w, w->cfg.server_count + i);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    if (!memworld_has_room(w, i)) {
        w->wake_ns[i] = UINT64_MAX; /* full: the next completion makes it eligible again */
    }
    return CB_ERR_OK;
}

/* Let every client with room submit, in client order. */
static int memworld_submit_all(cb_memworld *w)
{
    for (uint32_t i = 0; i < w->cfg.client_count; i++) {
        int rc = memworld_submit_client(w, i);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    return CB_ERR_OK;
}

/* Fire every machine timer due at now_ns. */
static int memworld_fire_timers(cb_memworld *w)
{
    for (uint32_t s = 0; s < w->cfg.server_count; s++) {
        if (!w->down[s] && cb_server_next_deadline_ns(w->servers[s]) <= w->now_ns) {
            (void)cb_server_on_timer(w->servers[s], w->now_ns); /* always CB_ERR_OK */
            int rc = memworld_pump(w, s);
            if (rc != CB_ERR_OK) {
                return rc;
            }
        }
    }
    uint32_t client_nodes = w->cfg.client_count + (w->resync != NULL);
    for (uint32_t i = 0; i < client_nodes; i++) {
        cb_client *cli = memworld_client_of(w, w->cfg.server_count + i);
        while (cb_client_next_deadline_ns(cli) <= w->now_ns) {
            int trc = cb_client_on_timer(cli, w->now_ns);
            int rc = memworld_pump(w, w->cfg.server_count + i);
            if (rc != CB_ERR_OK) {
                return rc;
            }
            if (trc == CB_ERR_OK) {
                break;
            }
        }
    }
    return CB_ERR_OK;
}

/* The next time anything happens: a delivery, a client deadline or a client's wake time
 * (server sweeps only matter while something else is going on, so they do not keep the run
 * alive). */
static uint64_t memworld_next_ns(const cb_memworld *w)
{
    uint64_t next = cb_memnet_next_ns(w->net);
    if (w->fault_next < w->cfg.fault_count && w->faults[w->fault_next].at_ns < next) {
        next = w->faults[w->fault_next].at_ns;
    }
    for (uint32_t i = 0; i < w->cfg.client_count; i++) {
        uint64_t d = cb_client_next_deadline_ns(w->clients[i]);
        next = d < next ? d : next;
        next = w->wake_ns[i] < next ? w->wake_ns[i] : next;
    }
    if (w->resync != NULL) {
        uint64_t d = cb_client_next_deadline_ns(cb_resync_client(w->resync));
        next = d < next ? d : next;
    }
    return next;
}

/* Apply every scheduled fault due at now_ns. */
static int memworld_apply_faults(cb_memworld *w)
{
    while (w->fault_next < w->cfg.fault_count && w->faults[w->fault_next].at_ns <= w->now_ns) {
        const cb_memworld_fault *f = &w->faults[w->fault_next++];
        int rc = CB_ERR_OK;
        uint32_t node = f->server;
        cb_event e;
        memset(&e, 0, sizeof e);
        e.note = f->label;
        switch (f->kind) {
        case CB_MEMWORLD_CRASH:
            rc = cb_memworld_crash(w, f->server);
            e.kind = CB_EVENT_CRASH;
            break;
        case CB_MEMWORLD_RECOVER:
            rc = cb_memworld_recover(w, f->server);
            e.kind = CB_EVENT_RECOVER;
            break;
        default:
            w->groups = f->kind == CB_MEMWORLD_PARTITION ? f->groups : NULL;
            e.kind = f->kind == CB_MEMWORLD_PARTITION ? CB_EVENT_PARTITION : CB_EVENT_HEAL;
            node = UINT32_MAX;
            break;
        }
        if (rc != CB_ERR_OK) {
            return rc;
        }
        if (w->hooks != NULL && w->hooks->event != NULL) {
            w->hooks->event(w->hooks->user, node, &e, w->now_ns);
        }
    }
    return CB_ERR_OK;
}

/* Start the resync of the first recovered server waiting for one, if none runs. */
static int memworld_resync_kick(cb_memworld *w)
{
    if (w->resync == NULL || cb_resync_active(w->resync)) {
        return CB_ERR_OK;
    }
    for (uint32_t s = 0; s < w->cfg.server_count; s++) {
        if (w->resync_want[s] && !w->down[s]) {
            w->resync_want[s] = 0;
            int rc = cb_resync_start(w->resync, s, w->now_ns);
            if (rc == CB_ERR_OK) {
                return memworld_pump(w, memworld_resync_node(w));
            }
        }
    }
    return CB_ERR_OK;
}

int cb_memworld_run(cb_memworld *w, const cb_world_hooks *hooks, uint64_t until_ns)
{
    w->hooks = hooks;
    for (;;) {
        int rc = memworld_resync_kick(w);
        if (rc == CB_ERR_OK) {
            rc = memworld_submit_all(w);
        }
        if (rc != CB_ERR_OK) {
            return rc;
        }
        uint64_t next = memworld_next_ns(w);
        if (next == UINT64_MAX || next > until_ns) {
            return CB_ERR_OK;
        }
        if (next > w->now_ns) {
            w->now_ns = next;
        }
        rc = memworld_apply_faults(w);
        if (rc != CB_ERR_OK) {
            return rc;
        }
        cb_memnet_msg m;
        while (cb_memnet_pop(w->net, w->now_ns, &m)) {
            rc = memworld_deliver(w, &m);
            if (rc != CB_ERR_OK) {
                return rc;
            }
        }
        rc = memworld_fire_timers(w);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
}
