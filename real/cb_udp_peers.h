/*
 * cb_udp_peers.h: a bounded table of UDP peers (source address and port) for `cachebed
 * serve` (docs/real.md §6). Each distinct peer gets a slot 0..cap-1, which the server maps
 * onto its own machine connection id, so per-peer machine state (the datagram seal session
 * and its replay window above all) is kept apart for each client.
 *
 * The table never holds more than `cap` peers: a new peer when it is full takes the slot of
 * the least recently seen one (LRU), and the caller is told so that it can drop that peer's
 * state (cb_server_forget). A flood of datagrams from spoofed or many source ports therefore
 * costs at most `cap` slots (about 64 bytes each here plus the machine's per-id state), and
 * what it can do to real clients is evict them: their next datagram then starts afresh.
 *
 * The index is open addressing with linear probing over 2 * cap rounded up to a power of two
 * buckets (load <= 1/2), with backward-shift deletion (no tombstones, so probe lengths do
 * not degrade over time). The bucket is chosen by SipHash-2-4 (libsodium's
 * crypto_shorthash) keyed with random bytes drawn at creation, so a sender cannot choose
 * source ports that collide. One table per serving thread; not thread-safe.
 */
#ifndef CB_UDP_PEERS_H
#define CB_UDP_PEERS_H

#include <stdint.h>
#include <sys/socket.h>

#define CB_UDP_PEERS_MAX 65536u

typedef struct cb_udp_peers cb_udp_peers;

/* A table of at most cap peers (1..CB_UDP_PEERS_MAX). Returns 0 with *out set, or -1 (cap
 * out of range, out of memory, libsodium unusable). */
int cb_udp_peers_new(uint32_t cap, cb_udp_peers **out);

/* Free the table. NULL is a no-op. */
void cb_udp_peers_del(cb_udp_peers *p);

/*
 * The slot of the peer `addr` (AF_INET or AF_INET6; another family, or a length too short
 * for its family, is one peer of its own per family), which becomes the most recently seen.
 * A peer not in the table is added: *added = 1, and if the table was full the least recently
 * seen peer is evicted and its slot reused (*evicted = 1: drop what was kept for that slot).
 */
uint32_t cb_udp_peers_get(cb_udp_peers *p, const struct sockaddr *addr, socklen_t addr_len,
                          int *added, int *evicted);

/* Peers held now (<= cap), and the cap. */
uint32_t cb_udp_peers_count(const cb_udp_peers *p);
uint32_t cb_udp_peers_cap(const cb_udp_peers *p);

/* Bytes the table allocated (fixed at creation). */
size_t cb_udp_peers_bytes(const cb_udp_peers *p);

#endif
