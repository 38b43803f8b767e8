/*
 * cb_serve_queue.h: `cachebed serve --broker HOST:PORT --node N` — the cache server as a
 * consumer of the queue transport (docs/real.md §10.2).
 *
 * Instead of listening, the server keeps one TCP connection to a broker (cb_brokerd.h),
 * SUBSCRIBEs on it as node N through a cb_qendpoint, and serves the requests that arrive
 * as DELIVERs: each payload (whole cache frames) goes to the cb_server machine as bytes of
 * connection id = the publishing node, and each reply the machine sends to that id is
 * PUBLISHed to that node. Deliveries are ACKed as soon as they are handed to the machine
 * (which answers at once). So the machine's conn_max bounds the node ids served: a
 * delivery from a node >= conn_max is ACKed and dropped (counted).
 *
 * Reconnection: when the connection to the broker is lost (the broker stopped or crashed,
 * or closed it), the server drops partial input and retries every reconnect_ns (default
 * 200 ms) with a non-blocking connect; once connected it SUBSCRIBEs again. Nothing is
 * replayed: requests the old broker held are lost with it, and clients time out and retry.
 *
 * Output to the broker is bounded (out_bytes_max): past it the connection is closed and
 * re-made (the broker redelivers what was not ACKed).
 */
#ifndef CB_SERVE_QUEUE_H
#define CB_SERVE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "cb_server.h"

typedef struct cb_serveq_config {
    const char *broker_host; /* numeric IPv4 address */
    uint16_t broker_port;
    uint32_t node;           /* this server's node id */
    cb_server_config server; /* conn_max: node ids 0..conn_max-1 may send requests */
    uint64_t reconnect_ns;   /* 0: 200 ms */
    /* 0: the first connect is made once (refused: an error). Else a refused first connect
     * is retried every reconnect_ns for up to this long (a server started while its broker
     * is down, as replay's recover of a consumer may be); SIGINT/SIGTERM end the wait. */
    uint64_t connect_wait_ns;
    size_t out_bytes_max;    /* 0: 4 MiB + one maximal envelope */
    int handle_signals;      /* 1: SIGINT/SIGTERM stop it */
} cb_serveq_config;

typedef struct cb_serveq_stats {
    cb_server_stats server;
    uint64_t deliveries;   /* DELIVERs served */
    uint64_t redeliveries; /* of which delivery > 1 */
    uint64_t nacked;       /* replies the broker refused */
    uint64_t dropped;      /* deliveries from a node >= conn_max */
    uint64_t disconnects;  /* connections to the broker lost */
    uint64_t reconnects;   /* connections re-made (each followed by a SUBSCRIBE) */
} cb_serveq_stats;

typedef struct cb_serveq cb_serveq;

/* Connect (blocking; once, or retried for connect_wait_ns) and SUBSCRIBE; 0 with *out
 * set, or -1 with a message. */
int cb_serveq_new(const cb_serveq_config *cfg, cb_serveq **out, char *err, size_t err_cap);
void cb_serveq_del(cb_serveq *q);
/* Serve until cb_serveq_stop or a signal. Returns 0, or -1 if the loop failed. */
int cb_serveq_run(cb_serveq *q);
void cb_serveq_stop(cb_serveq *q);
int cb_serveq_stop_signal(const cb_serveq *q);
/* 1 while connected to the broker (from the serving thread). */
int cb_serveq_connected(const cb_serveq *q);
void cb_serveq_get_stats(const cb_serveq *q, cb_serveq_stats *out);

#endif
