/*
 * cb_sgshim.h: the few SimGrid 3.32 calls the C API lacks, as an extern "C" API over s4u.
 *
 * SimGrid's C API cannot create a platform (SIMGRID-NOTES.md §1). This shim builds the one
 * cachebed needs: a star zone where every host has its own split-duplex link (an UP and a
 * DOWN direction that do not share bandwidth) to the centre. A message from host a to host b
 * crosses a's UP link then b's DOWN link. Everything else (actors, mailboxes, semaphores)
 * goes through SimGrid's C API. Only sim/ and the benchmark use it.
 */
#ifndef CB_SGSHIM_H
#define CB_SGSHIM_H

#include <stddef.h>
#include <stdint.h>

#include <simgrid/forward.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Create the root zone "cachebed" (a star), with `host_count` hosts named "h0".."h<N-1>" of
 * 1 Gflop/s each, and one split-duplex link "l<i>" per host: each direction has
 * `link_latency_s` latency and `link_bandwidth_Bps` bytes/s. Seals the zone. Host i is
 * written to hosts_out[i]. Call once, after simgrid_init and the model configuration.
 * Returns 0, or -1 (with a message on stderr) when SimGrid refused (a second platform).
 */
int cb_sgshim_build_star(uint32_t host_count, double link_latency_s, double link_bandwidth_Bps,
                         sg_host_t *hosts_out);

/*
 * Make `receiver` the permanent receiver of `mailbox` (s4u Mailbox::set_receiver). A message
 * put there then starts crossing the network at once, instead of waiting in the mailbox until
 * a get matches it (SimGrid's rendez-vous); gets take the messages in the order they were
 * put. The C API's sg_mailbox_set_receiver only names the calling actor; this one can be
 * called from main before simgrid_run, so no message is ever sent before it holds.
 */
void cb_sgshim_set_receiver(sg_mailbox_t mailbox, sg_actor_t receiver);

/*
 * Load a user's SimGrid platform XML (simgrid_load_platform), catching SimGrid's C++
 * exceptions (a parse error, an unknown attribute, a second platform). Returns 0, or -1 with
 * the reason written to err (NUL-terminated, cut to err_cap).
 */
int cb_sgshim_load_platform(const char *path, char *err, size_t err_cap);

/*
 * Check that a route exists from every host of `from` to every host of `to` and back
 * (sg_host_get_route_latency throws on a missing route). Returns 0, or -1 with the first
 * pair that has none written to err.
 */
int cb_sgshim_check_routes(sg_host_t const *from, uint32_t from_count, sg_host_t const *to,
                           uint32_t to_count, char *err, size_t err_cap);

/*
 * A port: one actor's messaging without detached comms. SimGrid 3.32 keeps every detached
 * comm in one list of the maestro and removes each finished one with a walk of the whole
 * list (CommImpl::finish), O(messages in flight) per message; a comm the sender keeps sits
 * in that sender's own short list instead, until the sender waits on it. So the port keeps
 * its sends, waits on its receive alone, and reclaims (waits on) each send that has ended
 * before its next wait (docs/simulator.md, "Actors, timers, atomic steps").
 *
 * cb_sgshim_port_new: a port receiving on `mailbox` (NULL: no memory). Create it anywhere;
 * only its actor may send or wait on it.
 * cb_sgshim_port_send: put `payload` (not NULL) to `to` as `bytes` simulated bytes; returns
 * 0, or -1 (message on stderr). The receiver owns the payload once delivered; a message lost
 * to a network failure is dropped (the caller owns its memory).
 * cb_sgshim_port_wait: wait for the next message of the mailbox until the simulated date
 * `until_s`, `timeout_s` seconds from now (both < 0: no limit; the caller knows both, and
 * reading SimGrid's clock per wait showed in profiles). Sends that ended since the last wait
 * are reclaimed first; a send's end does not end the wait. Returns 1 with *payload, 0 when
 * the time is up, -1 on an unexpected SimGrid error (on stderr).
 * cb_sgshim_port_del: after the run; cancels what is still pending.
 */
typedef struct cb_sgshim_port cb_sgshim_port;
cb_sgshim_port *cb_sgshim_port_new(sg_mailbox_t mailbox);
int cb_sgshim_port_send(cb_sgshim_port *p, sg_mailbox_t to, void *payload, uint64_t bytes);
int cb_sgshim_port_wait(cb_sgshim_port *p, double timeout_s, double until_s, void **payload);
void cb_sgshim_port_del(cb_sgshim_port *p);

#ifdef __cplusplus
}
#endif

#endif
