/* cb_memnet.c: the in-memory network; see cb_memnet.h. */
#include "cb_memnet.h"

#include <assert.h>
#include <string.h>

#include "cb_err.h"
#include "cb_rng.h"

typedef struct memnet_entry {
    uint64_t deliver_ns;
    uint64_t seq; /* send order: breaks delivery-time ties deterministically */
    uint64_t sent_ns;
    uint32_t src;
    uint32_t dst;
    uint8_t *data;
    size_t len;
} memnet_entry;

struct cb_memnet {
    cb_memnet_config cfg;
    const cb_alloc *alloc;
    cb_rng rng;
    memnet_entry *heap; /* binary min-heap on (deliver_ns, seq) */
    uint32_t count;
    size_t bytes;
    uint64_t seq;
    uint8_t *last;              /* payload of the last popped message, freed on the next pop */
    uint64_t seq_delivered_max; /* highest send sequence delivered so far, plus one */
    uint64_t *pair_last_ns;     /* stream mode: last delivery time per (src, dst) */
    cb_memnet_stats stats;
};

int cb_memnet_new(const cb_memnet_config *cfg, const cb_alloc *alloc, cb_memnet **out)
{
    *out = NULL;
    if (cfg->queue_max == 0 || cfg->bytes_max == 0) {
        return CB_ERR_INVALID;
    }
    cb_memnet *net = cb_alloc_calloc(alloc, 1, sizeof *net);
    if (net == NULL) {
        return CB_ERR_NOMEM;
    }
    net->heap = cb_alloc_calloc(alloc, cfg->queue_max, sizeof net->heap[0]);
    if (cfg->node_count > 0) {
        net->pair_last_ns = cb_alloc_calloc(alloc, (size_t)cfg->node_count * cfg->node_count,
                                            sizeof net->pair_last_ns[0]);
    }
    if (net->heap == NULL || (cfg->node_count > 0 && net->pair_last_ns == NULL)) {
        cb_alloc_free(alloc, net->heap);
        cb_alloc_free(alloc, net);
        return CB_ERR_NOMEM;
    }
    net->cfg = *cfg;
    net->alloc = alloc;
    cb_rng_init(&net->rng, cfg->seed);
    *out = net;
    return CB_ERR_OK;
}

static void memnet_release_last(cb_memnet *net)
{
    cb_alloc_free(net->alloc, net->last);
    net->last = NULL;
}

void cb_memnet_del(cb_memnet *net)
{
    if (net == NULL) {
        return;
    }
    for (uint32_t i = 0; i < net->count; i++) {
        cb_alloc_free(net->alloc, net->heap[i].data);
    }
    memnet_release_last(net);
    cb_alloc_free(net->alloc, net->pair_last_ns);
    cb_alloc_free(net->alloc, net->heap);
    cb_alloc_free(net->alloc, net);
}

static int memnet_before(const memnet_entry *a, const memnet_entry *b)
{
    return a->deliver_ns < b->deliver_ns || (a->deliver_ns == b->deliver_ns && a->seq < b->seq);
}

static void memnet_swap(memnet_entry *a, memnet_entry *b)
{
    memnet_entry t = *a;
    *a = *b;
    *b = t;
}

static void memnet_sift_up(memnet_entry *h, uint32_t i)
{
    while (i > 0 && memnet_before(&h[i], &h[(i - 1) / 2])) {
        memnet_swap(&h[i], &h[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
}

static void memnet_sift_down(memnet_entry *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && memnet_before(&h[l], &h[m])) {
            m = l;
        }
        if (r < n && memnet_before(&h[r], &h[m])) {
            m = r;
        }
        if (m == i) {
            return;
        }
        memnet_swap(&h[i], &h[m]);
        i = m;
    }
}

/* Stream mode: a message never overtakes an earlier one between the same two nodes. */
static uint64_t memnet_in_order(cb_memnet *net, uint32_t src, uint32_t dst, uint64_t deliver_ns)
{
    if (net->pair_last_ns == NULL) {
        return deliver_ns;
    }
    uint64_t *last = &net->pair_last_ns[(size_t)src * net->cfg.node_count + dst];
    if (deliver_ns < *last) {
        deliver_ns = *last;
    }
    *last = deliver_ns;
    return deliver_ns;
}

static int memnet_enqueue(cb_memnet *net, uint32_t src, uint32_t dst, const uint8_t *data,
                          size_t len, uint64_t now_ns, uint64_t extra_ns)
{
    if (net->count == net->cfg.queue_max || net->cfg.bytes_max - net->bytes < len) {
        return CB_ERR_FULL;
    }
    uint8_t *copy = cb_alloc_malloc(net->alloc, len > 0 ? len : 1);
    if (copy == NULL) {
        return CB_ERR_NOMEM;
    }
    memcpy(copy, data, len);
    memnet_entry *e = &net->heap[net->count];
    uint64_t delay = net->cfg.latency_ns + cb_rng_below(&net->rng, net->cfg.jitter_ns + 1);
    e->deliver_ns = memnet_in_order(net, src, dst, now_ns + delay + extra_ns);
    e->seq = net->seq++;
    e->sent_ns = now_ns;
    e->src = src;
    e->dst = dst;
    e->data = copy;
    e->len = len;
    net->bytes += len;
    memnet_sift_up(net->heap, net->count++);
    return CB_ERR_OK;
}

int cb_memnet_send(cb_memnet *net, uint32_t src, uint32_t dst, const uint8_t *data, size_t len,
                   uint64_t now_ns)
{
    if (net->pair_last_ns != NULL && (src >= net->cfg.node_count || dst >= net->cfg.node_count)) {
        return CB_ERR_INVALID;
    }
    if (net->count == net->cfg.queue_max || net->cfg.bytes_max - net->bytes < len) {
        return CB_ERR_FULL;
    }
    net->stats.sent++;
    net->stats.bytes_sent += len;
    /* Draw loss and duplication for every message, in send order, whatever happens next:
     * the draws a message gets never depend on the queue's state. */
    int lost = cb_rng_chance_ppm(&net->rng, net->cfg.loss_ppm);
    int dup = cb_rng_chance_ppm(&net->rng, net->cfg.dup_ppm);
    uint64_t extra_ns = 0;
    if (lost) {
        net->stats.lost++;
        if (net->pair_last_ns == NULL) {
            return CB_ERR_OK;
        }
        extra_ns = net->cfg.retransmit_ns; /* a stream retransmits what the network lost */
    }
    int rc = memnet_enqueue(net, src, dst, data, len, now_ns, extra_ns);
    if (rc == CB_ERR_OK && dup &&
        memnet_enqueue(net, src, dst, data, len, now_ns, extra_ns) == CB_ERR_OK) {
        net->stats.duplicated++;
    }
    return rc;
}

uint64_t cb_memnet_next_ns(const cb_memnet *net)
{
    return net->count > 0 ? net->heap[0].deliver_ns : UINT64_MAX;
}

int cb_memnet_pop(cb_memnet *net, uint64_t now_ns, cb_memnet_msg *out)
{
    memnet_release_last(net);
    if (net->count == 0 || net->heap[0].deliver_ns > now_ns) {
        return 0;
    }
    memnet_entry e = net->heap[0];
    net->heap[0] = net->heap[--net->count];
    memnet_sift_down(net->heap, net->count, 0);
    net->bytes -= e.len;
    net->last = e.data;
    net->stats.delivered++;
    if (e.seq + 1 < net->seq_delivered_max) {
        net->stats.reordered++;
    } else {
        net->seq_delivered_max = e.seq + 1;
    }
    out->src = e.src;
    out->dst = e.dst;
    out->sent_ns = e.sent_ns;
    out->deliver_ns = e.deliver_ns;
    out->data = e.data;
    out->data_len = e.len;
    return 1;
}

void cb_memnet_drop_node(cb_memnet *net, uint32_t node)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < net->count; i++) {
        memnet_entry *e = &net->heap[i];
        if (e->src == node || e->dst == node) {
            net->bytes -= e->len;
            cb_alloc_free(net->alloc, e->data);
            continue;
        }
        net->heap[kept++] = *e;
    }
    net->count = kept;
    for (uint32_t i = kept / 2 + 1; i-- > 0;) {
        memnet_sift_down(net->heap, net->count, i);
    }
}

void cb_memnet_get_stats(const cb_memnet *net, cb_memnet_stats *out)
{
    *out = net->stats;
}
