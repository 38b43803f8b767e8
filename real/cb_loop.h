/*
 * cb_loop.h: the real-socket driver's event loop — one epoll instance, one timer, a stop
 * switch — on which real/ servers run their sans-IO machines (docs/real.md §1).
 *
 * The loop never blocks anywhere but in epoll_wait. File descriptors are watched through a
 * cb_loop_watch the caller embeds in its own state (a connection, a listener): the loop
 * calls watch->fn(loop, watch, events) when the fd is ready, level-triggered. The single
 * timer is a timerfd armed at an absolute deadline on the loop's clock (nanoseconds since
 * cb_loop_new, CLOCK_MONOTONIC). cb_loop_stop() may be called from any thread or a signal
 * handler (it writes an eventfd); with cb_loop_watch_signals() SIGINT and SIGTERM stop the
 * loop through a signalfd.
 *
 * One loop is used by one thread.
 */
#ifndef CB_LOOP_H
#define CB_LOOP_H

#include <stdint.h>

typedef struct cb_loop cb_loop;
typedef struct cb_loop_watch cb_loop_watch;

/* Called with the epoll events (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP...) that are ready. */
typedef void (*cb_loop_io_fn)(cb_loop *loop, cb_loop_watch *watch, uint32_t events);
/* Called when the timer's deadline has passed, with the loop's current time. */
typedef void (*cb_loop_timer_fn)(cb_loop *loop, uint64_t now_ns, void *ctx);

struct cb_loop_watch {
    int fd;
    cb_loop_io_fn fn;
    void *ctx;       /* the caller's */
    uint32_t events; /* as registered */
};

/* Returns 0 with *out set, or -errno (epoll, timerfd or eventfd creation failed). */
int cb_loop_new(cb_loop **out);

/* Close the loop's own fds and free it; watched fds are not closed. NULL is a no-op. */
void cb_loop_del(cb_loop *loop);

/* Nanoseconds since cb_loop_new on CLOCK_MONOTONIC. */
uint64_t cb_loop_now_ns(const cb_loop *loop);

/* Make `loop`'s clock origin that of `origin`, so loops on several threads give the same
 * now_ns (call before any deadline is set on `loop`). */
void cb_loop_share_clock(cb_loop *loop, const cb_loop *origin);

/* Watch w->fd for `events` (EPOLLIN, EPOLLOUT); w must stay valid until removed. Returns 0
 * or -errno from epoll_ctl. */
int cb_loop_add(cb_loop *loop, cb_loop_watch *w, uint32_t events);

/* Change the events watched; a no-op when they are the same. Returns 0 or -errno. */
int cb_loop_modify(cb_loop *loop, cb_loop_watch *w, uint32_t events);

/* Stop watching (before closing the fd). Returns 0 or -errno. */
int cb_loop_remove(cb_loop *loop, cb_loop_watch *w);

/* The timer: fn(ctx) runs once the loop's clock reaches deadline_ns (UINT64_MAX: disarm).
 * Re-arming replaces the previous deadline. Returns 0 or -errno from timerfd_settime. */
int cb_loop_set_timer(cb_loop *loop, uint64_t deadline_ns, cb_loop_timer_fn fn, void *ctx);

/* Block SIGINT and SIGTERM in the calling thread and stop the loop when one arrives (its
 * number is then cb_loop_stop_signal()). Call before starting other threads so they
 * inherit the mask. Returns 0 or -errno. */
int cb_loop_watch_signals(cb_loop *loop);

/* Run until cb_loop_stop() or a watched signal. Returns 0, or -errno if epoll_wait failed. */
int cb_loop_run(cb_loop *loop);

/* Make cb_loop_run return after the current iteration. Thread- and async-signal-safe. */
void cb_loop_stop(cb_loop *loop);

/* The signal that stopped the loop, 0 if none. */
int cb_loop_stop_signal(const cb_loop *loop);

#endif
