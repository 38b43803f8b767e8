/* cb_loop.c: the epoll event loop; see cb_loop.h for the contract. */
#define _GNU_SOURCE /* signalfd, timerfd, eventfd, epoll */
#include "cb_loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* Events taken from one epoll_wait. */
#define LOOP_EVENTS_MAX 256

struct cb_loop {
    int epfd;
    uint64_t start_ns; /* CLOCK_MONOTONIC at cb_loop_new */
    cb_loop_watch timer;
    cb_loop_watch stopper; /* eventfd */
    cb_loop_watch signals; /* signalfd, fd -1 unless watched */
    cb_loop_timer_fn timer_fn;
    void *timer_ctx;
    uint64_t deadline_ns;
    volatile int stopping;
    int stop_signal;
};

static uint64_t loop_mono_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for CLOCK_MONOTONIC */
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t cb_loop_now_ns(const cb_loop *loop)
{
    return loop_mono_ns() - loop->start_ns;
}

void cb_loop_share_clock(cb_loop *loop, const cb_loop *origin)
{
    loop->start_ns = origin->start_ns;
}

static void loop_on_timer(cb_loop *loop, cb_loop_watch *w, uint32_t events)
{
    (void)events;
    uint64_t expirations;
    if (read(w->fd, &expirations, sizeof expirations) < 0) {
        return; /* EAGAIN: a re-arm raced the expiry; nothing is due */
    }
    loop->deadline_ns = UINT64_MAX;
    if (loop->timer_fn != NULL) {
        loop->timer_fn(loop, cb_loop_now_ns(loop), loop->timer_ctx);
    }
}

static void loop_on_stop(cb_loop *loop, cb_loop_watch *w, uint32_t events)
{
    (void)events;
    uint64_t v;
    (void)read(w->fd, &v, sizeof v); /* only draining the counter */
    loop->stopping = 1;
}

static void loop_on_signal(cb_loop *loop, cb_loop_watch *w, uint32_t events)
{
    (void)events;
    struct signalfd_siginfo si;
    if (read(w->fd, &si, sizeof si) == (ssize_t)sizeof si) {
        loop->stop_signal = (int)si.ssi_signo;
        loop->stopping = 1;
    }
}

int cb_loop_new(cb_loop **out)
{
    *out = NULL;
    cb_loop *loop = calloc(1, sizeof *loop);
    if (loop == NULL) {
        return -ENOMEM;
    }
    loop->signals.fd = -1;
    loop->deadline_ns = UINT64_MAX;
    loop->start_ns = loop_mono_ns();
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    loop->stopper.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    loop->timer.fn = loop_on_timer;
    loop->stopper.fn = loop_on_stop;
    int rc = 0;
    if (loop->epfd < 0 || loop->timer.fd < 0 || loop->stopper.fd < 0) {
        rc = -errno;
    } else if ((rc = cb_loop_add(loop, &loop->timer, EPOLLIN)) == 0) {
        rc = cb_loop_add(loop, &loop->stopper, EPOLLIN);
    }
    if (rc != 0) {
        cb_loop_del(loop);
        return rc;
    }
    *out = loop;
    return 0;
}

void cb_loop_del(cb_loop *loop)
{
    if (loop == NULL) {
        return;
    }
    int fds[] = {loop->epfd, loop->timer.fd, loop->stopper.fd, loop->signals.fd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        if (fds[i] >= 0) {
            (void)close(fds[i]);
        }
    }
    free(loop);
}

static int loop_ctl(cb_loop *loop, int op, cb_loop_watch *w, uint32_t events)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.ptr = w;
    if (epoll_ctl(loop->epfd, op, w->fd, &ev) != 0) {
        return -errno;
    }
    w->events = events;
    return 0;
}

int cb_loop_add(cb_loop *loop, cb_loop_watch *w, uint32_t events)
{
    return loop_ctl(loop, EPOLL_CTL_ADD, w, events);
}

int cb_loop_modify(cb_loop *loop, cb_loop_watch *w, uint32_t events)
{
    return events == w->events ? 0 : loop_ctl(loop, EPOLL_CTL_MOD, w, events);
}

int cb_loop_remove(cb_loop *loop, cb_loop_watch *w)
{
    return epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL) == 0 ? 0 : -errno;
}

int cb_loop_set_timer(cb_loop *loop, uint64_t deadline_ns, cb_loop_timer_fn fn, void *ctx)
{
    loop->timer_fn = fn;
    loop->timer_ctx = ctx;
    if (deadline_ns == loop->deadline_ns) {
        return 0;
    }
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (deadline_ns != UINT64_MAX) {
        /* timerfd's absolute time is the raw clock; 0 would disarm, so at least 1 ns. */
        uint64_t at = loop->start_ns + deadline_ns;
        at = at > 0 ? at : 1;
        its.it_value.tv_sec = (time_t)(at / 1000000000ull);
        its.it_value.tv_nsec = (long)(at % 1000000000ull);
    }
    if (timerfd_settime(loop->timer.fd, TFD_TIMER_ABSTIME, &its, NULL) != 0) {
        return -errno;
    }
    loop->deadline_ns = deadline_ns;
    return 0;
}

int cb_loop_watch_signals(cb_loop *loop)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        return -errno;
    }
    /* A shell starts background jobs with SIGINT ignored, and an ignored signal is dropped
     * even while blocked: restore the default, which blocking keeps from ever running. */
    (void)signal(SIGINT, SIG_DFL);
    (void)signal(SIGTERM, SIG_DFL);
    loop->signals.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (loop->signals.fd < 0) {
        return -errno;
    }
    loop->signals.fn = loop_on_signal;
    return cb_loop_add(loop, &loop->signals, EPOLLIN);
}

int cb_loop_run(cb_loop *loop)
{
    struct epoll_event evs[LOOP_EVENTS_MAX];
    while (!loop->stopping) {
        int n = epoll_wait(loop->epfd, evs, LOOP_EVENTS_MAX, -1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        for (int i = 0; i < n && !loop->stopping; i++) {
            cb_loop_watch *w = evs[i].data.ptr;
            w->fn(loop, w, evs[i].events);
        }
    }
    loop->stopping = 0;
    return 0;
}

void cb_loop_stop(cb_loop *loop)
{
    uint64_t one = 1;
    (void)write(loop->stopper.fd, &one, sizeof one); /* a full counter already means "stop" */
}

int cb_loop_stop_signal(const cb_loop *loop)
{
    return loop->stop_signal;
}
