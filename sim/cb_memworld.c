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
    cb_client **clients;
    cb_memnet *net;
    uint64_t now_ns;
    const cb_memworld_hooks *hooks;
};

/*
 * The seed of node `node`'s seal salts (cb_codec_config.seal_seed): distinct per node, so
 * no two machines sharing the key draw the same salts (docs/protocol.md §6.2), and derived
 * without drawing from the root generator, so turning sealing on changes no other stream.
 */
static uint64_t memworld_seal_seed(const cb_memworld *w, uint64_t configured, uint32_t node)
{
    return cb_rng_mix64(w->cfg.seed ^ configured ^ cb_rng_mix64(0x5ea1ull + node));
}

static int memworld_alloc_nodes(cb_memworld *w, const cb_server_config *server_each)
{
    const cb_memworld_config *c = &w->cfg;
    w->servers = cb_alloc_calloc(w->alloc, c->server_count, sizeof w->servers[0]);
    w->clients = cb_alloc_calloc(w->alloc, c->client_count, sizeof w->clients[0]);
    w->client_rngs = cb_alloc_calloc(w->alloc, c->client_count, sizeof w->client_rngs[0]);
    w->wake_ns = cb_alloc_calloc(w->alloc, c->client_count, sizeof w->wake_ns[0]);
    if (w->servers == NULL || w->clients == NULL || w->client_rngs == NULL || w->wake_ns == NULL) {
        return CB_ERR_NOMEM;
    }
    for (uint32_t s = 0; s < c->server_count; s++) {
        cb_server_config sc = server_each != NULL ? server_each[s] : c->server;
        sc.conn_max = c->server_count + c->client_count;
        sc.codec.seal_seed = memworld_seal_seed(w, sc.codec.seal_seed, s);
        int rc = cb_server_new(&sc, w->alloc, &w->servers[s]);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    cb_client_config cc = c->client;
    cc.peer_count = c->server_count;
    for (uint32_t i = 0; i < c->client_count; i++) {
        cc.codec.seal_seed = memworld_seal_seed(w, c->client.codec.seal_seed, c->server_count + i);
        cb_rng_split(&w->root, &w->client_rngs[i]);
        int rc = cb_client_new(&cc, &w->client_rngs[i], w->alloc, &w->clients[i]);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    cb_memnet_config nc = c->net;
    nc.seed = cb_rng_next(&w->root);
    return cb_memnet_new(&nc, w->alloc, &w->net);
}

int cb_memworld_new(const cb_memworld_config *cfg, const cb_alloc *alloc, cb_memworld **out)
{
    *out = NULL;
    if (cfg->server_count == 0 || cfg->client_count == 0) {
        return CB_ERR_INVALID;
    }
    cb_memworld *w = cb_alloc_calloc(alloc, 1, sizeof *w);
    if (w == NULL) {
        return CB_ERR_NOMEM;
    }
    w->cfg = *cfg;
    w->cfg.server_each = NULL; /* only read during construction, below */
    w->alloc = alloc;
    cb_rng_init(&w->root, cfg->seed);
    int rc = memworld_alloc_nodes(w, cfg->server_each);
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
        cb_client_del(w->clients[i]);
    }
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

cb_server *cb_memworld_server(cb_memworld *w, uint32_t server)
{
    return server < w->cfg.server_count ? w->servers[server] : NULL;
}

cb_memnet *cb_memworld_net(cb_memworld *w)
{
    return w->net;
}

static int memworld_is_server(const cb_memworld *w, uint32_t node)
{
    return node < w->cfg.server_count;
}

/* Carry out one action of `node`. SEND targets: a client's peer p is server node p; a
 * server's connection c is node c. */
static int memworld_act(cb_memworld *w, uint32_t node, const cb_action *a)
{
    const cb_memworld_hooks *h = w->hooks;
    if (h->action != NULL) {
        h->action(h->user, node, a, w->now_ns);
    }
    switch (a->kind) {
    case CB_ACTION_SEND:
        return cb_memnet_send(w->net, node, a->peer, a->data, a->data_len, w->now_ns);
    case CB_ACTION_COMPLETE:
        w->wake_ns[node - w->cfg.server_count] = 0; /* a slot is free: ask again */
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
            return cb_client_on_reset(w->clients[a->peer - w->cfg.server_count], node);
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
    return cb_client_drain(w->clients[node - w->cfg.server_count], batch, MEMWORLD_DRAIN_BATCH);
}

/* Drain `node` until its outbox is empty. */
static int memworld_pump(cb_memworld *w, uint32_t node)
{
    cb_action batch[MEMWORLD_DRAIN_BATCH];
    size_t n;
    while ((n = memworld_drain_one(w, node, batch)) > 0) {
        for (size_t i = 0; i < n; i++) {
            int rc = memworld_act(w, node, &batch[i]);
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
    while (left > 0) {
        long n;
        if (memworld_is_server(w, m->dst)) {
            n = cb_server_on_bytes(w->servers[m->dst], m->src, p, left, w->now_ns);
        } else {
            n = cb_client_on_bytes(w->clients[m->dst - w->cfg.server_count], m->src, p, left,
                                   w->now_ns);
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
static int memworld_submit_client(cb_memworld *w, uint32_t i)
{
    const cb_memworld_hooks *h = w->hooks;
    cb_client *cli = w->clients[i];
    while (w->wake_ns[i] <= w->now_ns &&
           cb_client_outstanding(cli) < w->cfg.client.outstanding_max) {
        cb_client_op op;
        uint32_t server = 0;
        uint64_t wake = UINT64_MAX;
        memset(&op, 0, sizeof op);
        if (!h->next(h->user, i, w->now_ns, &op, &server, &wake)) {
            w->wake_ns[i] = wake > w->now_ns ? wake : w->now_ns + 1;
            break;
        }
        int rc = cb_client_request(cli, server, &op, w->now_ns, NULL);
        if (rc != CB_ERR_OK) {
            return rc; /* the hook asked for something impossible (a bad op, a bad server) */
        }
        rc = memworld_pump(w, w->cfg.server_count + i);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    if (cb_client_outstanding(cli) == w->cfg.client.outstanding_max) {
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
        if (cb_server_next_deadline_ns(w->servers[s]) <= w->now_ns) {
            (void)cb_server_on_timer(w->servers[s], w->now_ns); /* always CB_ERR_OK */
            int rc = memworld_pump(w, s);
            if (rc != CB_ERR_OK) {
                return rc;
            }
        }
    }
    for (uint32_t i = 0; i < w->cfg.client_count; i++) {
        cb_client *cli = w->clients[i];
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
    for (uint32_t i = 0; i < w->cfg.client_count; i++) {
        uint64_t d = cb_client_next_deadline_ns(w->clients[i]);
        next = d < next ? d : next;
        next = w->wake_ns[i] < next ? w->wake_ns[i] : next;
    }
    return next;
}

int cb_memworld_run(cb_memworld *w, const cb_memworld_hooks *hooks, uint64_t until_ns)
{
    w->hooks = hooks;
    for (;;) {
        int rc = memworld_submit_all(w);
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
