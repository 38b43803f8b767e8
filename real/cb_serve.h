/*
 * cb_serve.h: `cachebed serve` — a real cache server: cb_server (the sans-IO machine) driven
 * by a cb_loop over a TCP listener and, optionally, a UDP socket (docs/real.md).
 *
 * TCP: each accepted socket gets a dense connection id 0..conn_max-1 from a free list (a
 * client beyond conn_max is told "SERVER_ERROR too many open connections" and closed). Its
 * bytes are read into one reusable buffer and fed to the machine; the replies the machine
 * queues are written at once with one sendmsg (gather) per batch, and what the socket does
 * not take waits in the connection's output queue. That queue is bounded
 * (out_bytes_max): a client that sends requests without reading the replies is closed when
 * its queue would pass the bound, and the server goes on serving the others.
 *
 * UDP: memcached's framing — every datagram starts with an 8-byte header (request id,
 * sequence number, datagram count, reserved; big-endian 16-bit each). A request is one
 * datagram (sequence 0, count 1); its reply is split into datagrams of at most
 * CB_SERVE_UDP_DATAGRAM_BYTES (header included) carrying the request id, numbered 0..n-1.
 * Malformed datagrams are dropped and counted. Each UDP peer (source address and port) gets
 * its own machine connection id conn_max + slot from a bounded table per thread
 * (cb_udp_peers.h: at most udp_peers_max peers, the least recently seen evicted and
 * forgotten, cb_server_forget), so the machine has conn_max + udp_peers_max ids and each
 * peer its own datagram seal session; replies go to the address the request came from.
 *
 * Threads (docs/real.md §5): with threads = N > 1, N loops each run on their own thread
 * (the first on the caller's, in cb_serve_run), each with its own machine, connections,
 * buffers and sockets bound to the one port with SO_REUSEPORT (the kernel spreads
 * connections and UDP peers over them). All machines share one store (cb_shards.h), split
 * by key hash into shards with a mutex each, so every thread sees the same cache. With
 * N = 1 the machine owns an unlocked store: nothing changes from the one-loop server.
 * cb_serve_stop() may be called from any thread.
 */
#ifndef CB_SERVE_H
#define CB_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "cb_server.h"
#include "cb_udp.h"

/* The UDP framing lives in protocols/cb_udp.h (sans-IO); these names are kept for callers. */
#define CB_SERVE_UDP_DATAGRAM_BYTES CB_UDP_DATAGRAM_BYTES
#define CB_SERVE_UDP_HEADER_BYTES   CB_UDP_HEADER_BYTES
#define CB_SERVE_THREADS_MAX 64u
/* Default bound on one connection's unsent replies, on top of one maximal reply. */
#define CB_SERVE_OUT_BYTES_DEFAULT (4u * 1024u * 1024u)
/* Default UDP peers remembered per thread (docs/real.md §6). */
#define CB_SERVE_UDP_PEERS_DEFAULT 1024u

typedef struct cb_serve_config {
    const char *listen_addr; /* numeric IPv4 or IPv6 address; NULL: 127.0.0.1 */
    uint16_t port;           /* TCP port; 0 picks an ephemeral one (see cb_serve_port) */
    int udp;                 /* 1: also serve UDP on udp_port (0: ephemeral) */
    uint16_t udp_port;
    cb_server_config server; /* conn_max here is the TCP connection limit (all threads) */
    size_t out_bytes_max;    /* per-connection output bound; 0: 4 MiB + one maximal reply */
    int handle_signals;      /* 1: SIGINT/SIGTERM stop the server (blocks them in this thread) */
    uint32_t threads;        /* event loops, one per thread; 0 or 1: one (cb_serve_run's) */
    uint32_t udp_peers_max;  /* UDP peers held per thread, 1..65536; 0: 1024 */
} cb_serve_config;

typedef struct cb_serve_stats {
    cb_server_stats server;
    uint64_t accepted;            /* TCP connections accepted */
    uint64_t refused;             /* accepted then closed: no free connection id */
    uint64_t closed_slow;         /* closed for not reading their replies */
    uint64_t closed_by_protocol;  /* closed by the machine (quit, protocol error) */
    uint64_t udp_datagrams;       /* UDP requests received */
    uint64_t udp_dropped;         /* malformed or multi-datagram UDP requests dropped */
    uint64_t udp_replies_dropped; /* reply datagrams the socket refused */
    uint64_t udp_peers_added;     /* UDP peers that got a slot (again, after an eviction) */
    uint64_t udp_peers_evicted;   /* least recently seen UDP peers dropped for a new one */
    uint32_t udp_peers;           /* UDP peers held now (<= udp_peers_max per thread) */
    uint32_t conns_open;
} cb_serve_stats;

typedef struct cb_serve cb_serve;

/*
 * Bind the listener (and UDP socket) and set everything up; nothing is served until
 * cb_serve_run. Returns 0 with *out set, or -1 with a message in err[0..err_cap) (bad
 * address, port in use, conn_max above the process's file limit, a bad server config,
 * out of memory). Ignores SIGPIPE for the process (sends use MSG_NOSIGNAL anyway).
 */
int cb_serve_new(const cb_serve_config *cfg, cb_serve **out, char *err, size_t err_cap);

/* Free everything, closing every socket. NULL is a no-op. */
void cb_serve_del(cb_serve *s);

/* The bound ports (useful with port 0). */
uint16_t cb_serve_port(const cb_serve *s);
uint16_t cb_serve_udp_port(const cb_serve *s);

/* Serve until cb_serve_stop or a signal; then close every connection. Returns 0, or -1 if
 * the loop failed. */
int cb_serve_run(cb_serve *s);

/* Ask cb_serve_run to return. Thread-safe. */
void cb_serve_stop(cb_serve *s);

/* The signal that stopped the server, 0 if none. */
int cb_serve_stop_signal(const cb_serve *s);

/* Counters summed over the threads (the store's are the shared store's); call from the
 * serving thread with one thread, or after cb_serve_run returned. */
void cb_serve_get_stats(const cb_serve *s, cb_serve_stats *out);

/* One thread's counters (thread < cb_serve_threads), with the same rule. */
void cb_serve_get_thread_stats(const cb_serve *s, uint32_t thread, cb_serve_stats *out);

/* The loops, and the store's shards (1 with one thread). */
uint32_t cb_serve_threads(const cb_serve *s);
uint32_t cb_serve_shards(const cb_serve *s);

#endif
