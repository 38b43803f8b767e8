/*
 * cb_memnet.h: an in-memory network with seeded delay, jitter (hence reordering) and loss.
 *
 * The simplest driver world: messages between numbered nodes are copied into a priority
 * queue ordered by delivery time (ties broken by send order, so runs are deterministic), and
 * handed back when the driver's clock reaches them. Each message is a unit: it arrives whole
 * or not at all (loss is drawn per message from the net's own cb_rng). Jitter draws each
 * message's delay uniformly in [latency_ns, latency_ns + jitter_ns], so a later message can
 * overtake an earlier one: that is the reordering. Duplication is drawn the same way.
 *
 * Tests drive the protocol machines through it exactly as the SimGrid and socket drivers
 * do: drain a machine's actions, send its SEND payloads here, feed delivered bytes and fired
 * timers back with the current time.
 */
#ifndef CB_MEMNET_H
#define CB_MEMNET_H

#include <stddef.h>
#include <stdint.h>

#include "cb_alloc.h"

typedef struct cb_memnet cb_memnet;

typedef struct cb_memnet_config {
    uint64_t latency_ns; /* one-way base delay */
    uint64_t jitter_ns;  /* extra delay, uniform in [0, jitter_ns] */
    uint32_t loss_ppm;   /* probability a message is lost, in millionths */
    uint32_t dup_ppm;    /* probability a message is delivered twice, in millionths */
    uint64_t seed;       /* seeds the loss, duplication and jitter draws */
    uint32_t queue_max;  /* messages in flight at most (sizes the queue); > 0 */
    size_t bytes_max;    /* payload bytes in flight at most; > 0 */
    /*
     * Stream semantics, the in-memory stand-in for TCP: when `node_count` > 0, messages
     * between each ordered pair of nodes (ids < node_count) arrive in send order, and a
     * message the loss draw hits is not dropped but delivered retransmit_ns later (a
     * retransmission timeout). node_count 0: datagram semantics (loss drops, jitter
     * reorders).
     */
    uint32_t node_count;
    uint64_t retransmit_ns;
} cb_memnet_config;

/* A delivered message. `data` is valid until the next cb_memnet_pop (sending meanwhile is
 * fine: a driver replies while it still holds the request). */
typedef struct cb_memnet_msg {
    uint32_t src;
    uint32_t dst;
    uint64_t sent_ns;
    uint64_t deliver_ns;
    const uint8_t *data;
    size_t data_len;
} cb_memnet_msg;

typedef struct cb_memnet_stats {
    uint64_t sent;       /* messages handed to send */
    uint64_t lost;       /* hit by the loss draw: dropped, or retransmitted in stream mode */
    uint64_t duplicated; /* extra copies queued */
    uint64_t delivered;  /* popped */
    uint64_t reordered;  /* delivered after a message that was sent later */
    uint64_t bytes_sent;
} cb_memnet_stats;

/* Returns CB_ERR_OK, CB_ERR_INVALID (zero queue_max/bytes_max) or CB_ERR_NOMEM. */
int cb_memnet_new(const cb_memnet_config *cfg, const cb_alloc *alloc, cb_memnet **out);
void cb_memnet_del(cb_memnet *net);

/*
 * Send a copy of data[0..len) from src to dst at now_ns. Returns CB_ERR_OK (also when the
 * loss draw drops it: the sender cannot tell), or CB_ERR_FULL when queue_max messages or
 * bytes_max bytes are already in flight (nothing queued), CB_ERR_NOMEM, or CB_ERR_INVALID
 * (stream mode, a node id >= node_count).
 */
int cb_memnet_send(cb_memnet *net, uint32_t src, uint32_t dst, const uint8_t *data, size_t len,
                   uint64_t now_ns);

/* Delivery time of the earliest message in flight; UINT64_MAX when none. */
uint64_t cb_memnet_next_ns(const cb_memnet *net);

/* Pop the earliest message if it is due (deliver_ns <= now_ns): returns 1 and fills *out,
 * else 0. */
int cb_memnet_pop(cb_memnet *net, uint64_t now_ns, cb_memnet_msg *out);

/* Drop every message in flight to or from `node` (a crash, a reset connection). */
void cb_memnet_drop_node(cb_memnet *net, uint32_t node);

void cb_memnet_get_stats(const cb_memnet *net, cb_memnet_stats *out);

#endif
