/*
 * cb_brokerd.h: `cachebed broker` — the queue transport's broker (protocols/cb_broker.h, the
 * sans-IO machine) driven by a cb_loop over a TCP listener (docs/real.md §10).
 *
 * The same shape as cb_serve (cb_serve.h): each accepted socket gets a dense connection id
 * 0..conn_max-1 (one beyond conn_max is closed at once); its bytes are read into one
 * reusable buffer and fed to the machine; the DELIVERs, NACKs and CLOSEs the machine queues
 * are carried out at once, consecutive SENDs to one connection in one gathering sendmsg,
 * and what the socket does not take waits in the connection's output queue. That queue is
 * bounded (out_bytes_max): an endpoint that never reads is closed when its queue would pass
 * the bound (its unacknowledged deliveries go back to their queues) and the broker goes on.
 * The machine's deadline (ack timeouts, paced deliveries) arms the loop's timer.
 *
 * One thread runs one loop; cb_brokerd_stop() may be called from any thread.
 */
#ifndef CB_BROKERD_H
#define CB_BROKERD_H

#include <stddef.h>
#include <stdint.h>

#include "cb_broker.h"

/* Default bound on one connection's unsent envelopes, on top of one maximal envelope. */
#define CB_BROKERD_OUT_BYTES_DEFAULT (4u * 1024u * 1024u)

typedef struct cb_brokerd_config {
    const char *listen_addr; /* numeric IPv4 or IPv6 address; NULL: 127.0.0.1 */
    uint16_t port;           /* 0 picks an ephemeral one (see cb_brokerd_port) */
    /* > 0: a TCP socket already bound and listening, inherited (a supervisor made it, e.g.
     * `cachebed replay` restarting a crashed broker on its port): used instead of binding
     * listen_addr:port, owned by cb_brokerd_new from the call on (closed by it on failure,
     * by cb_brokerd_del after). 0: bind as above. */
    int listen_fd;
    cb_broker_config broker; /* conn_max here is the TCP connection limit */
    size_t out_bytes_max;    /* per-connection output bound; 0: 4 MiB + one maximal envelope */
    int handle_signals;      /* 1: SIGINT/SIGTERM stop the broker (blocks them in this thread) */
} cb_brokerd_config;

typedef struct cb_brokerd_stats {
    cb_broker_stats broker;
    uint64_t accepted;           /* TCP connections accepted */
    uint64_t refused;            /* accepted then closed: no free connection id */
    uint64_t closed_slow;        /* closed for not reading what the broker sent */
    uint64_t closed_by_protocol; /* closed by the machine (bad input) */
    uint32_t conns_open;
} cb_brokerd_stats;

typedef struct cb_brokerd cb_brokerd;

/* Bind and set up; returns 0 with *out set, or -1 with a message in err[0..err_cap). */
int cb_brokerd_new(const cb_brokerd_config *cfg, cb_brokerd **out, char *err, size_t err_cap);
void cb_brokerd_del(cb_brokerd *b);
uint16_t cb_brokerd_port(const cb_brokerd *b);

/* Serve until cb_brokerd_stop or a signal, then close every connection (the machine's held
 * messages stay until cb_brokerd_del: nothing is durable). Returns 0, or -1 if the loop
 * failed. */
int cb_brokerd_run(cb_brokerd *b);
void cb_brokerd_stop(cb_brokerd *b);
int cb_brokerd_stop_signal(const cb_brokerd *b);
void cb_brokerd_get_stats(const cb_brokerd *b, cb_brokerd_stats *out);

#endif
