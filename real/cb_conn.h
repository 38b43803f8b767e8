/*
 * cb_conn.h: the per-connection machinery the real/ epoll daemons share (docs/real.md §1):
 * a bounded output queue, gathering a machine's SEND payloads into one sendmsg and copying
 * what the socket refuses, EPOLLOUT watching, non-blocking reads, and the listening-socket
 * and fd-limit setup. Used by cb_serve.c (cache server), cb_brokerd.c (queue broker) and
 * cb_serve_queue.c (cache server as a queue consumer).
 *
 * The module keeps no state of its own and never closes a connection: each call reports an
 * error and the caller decides (mark the connection closing, count it, reconnect). Sockets
 * are non-blocking; sends use MSG_NOSIGNAL, so a peer gone mid-write is CB_ERR_CLOSED, not
 * SIGPIPE. One cb_conn_out is used by one thread.
 */
#ifndef CB_CONN_H
#define CB_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cb_outbox.h"
#include "cb_loop.h"

/* At most this many payloads per sendmsg; a longer run is sent in several. */
#define CB_CONN_IOV_MAX 64

/*
 * Bytes accepted for a connection but not yet taken by its socket: buf[head..len). The
 * caller embeds it (zero-filled, then cb_conn_out_init). The queue owns buf: it grows by
 * doubling from cap_first, on demand, and is freed by cb_conn_out_free. Queued bytes are
 * bounded by bytes_max: a peer that stops reading is not allowed to grow it further (the
 * caller closes it on CB_ERR_FULL).
 */
typedef struct cb_conn_out {
    uint8_t *buf;
    size_t head, len, cap;
    size_t bytes_max; /* bound on len - head */
    size_t cap_first; /* the first allocation's size */
} cb_conn_out;

/* An empty queue holding at most bytes_max bytes; allocates nothing. */
void cb_conn_out_init(cb_conn_out *o, size_t bytes_max, size_t cap_first);

/* Free the buffer; the queue is then empty and usable again with the same bounds. */
void cb_conn_out_free(cb_conn_out *o);

/* Drop what is queued, keeping the buffer. */
static inline void cb_conn_out_clear(cb_conn_out *o)
{
    o->head = o->len = 0;
}

/* Bytes queued and not yet sent. */
static inline size_t cb_conn_out_pending(const cb_conn_out *o)
{
    return o->len - o->head;
}

/* Copy data[0..len) to the end of the queue. Returns CB_ERR_OK; CB_ERR_FULL if it would hold
 * more than bytes_max (nothing is queued); CB_ERR_NOMEM if the buffer cannot grow. */
int cb_conn_out_append(cb_conn_out *o, const uint8_t *data, size_t len);

/* Send what is queued until the socket would block. Returns CB_ERR_OK (cb_conn_out_pending
 * tells whether it all went; when it did, the buffer is rewound), or CB_ERR_CLOSED if the
 * socket failed (reset, broken pipe). */
int cb_conn_out_flush(cb_conn_out *o, int fd);

/* Send iov[0..n) (the caller's buffers, only read during the call) with one sendmsg if
 * nothing is queued before them, and copy into the queue what the socket refuses, keeping
 * the order. Returns CB_ERR_OK, CB_ERR_CLOSED (the socket failed; nothing queued),
 * CB_ERR_FULL or CB_ERR_NOMEM (as cb_conn_out_append; what was sent is gone, the rest of
 * iov is not queued). */
int cb_conn_out_writev(cb_conn_out *o, int fd, const struct iovec *iov, size_t n);

/* The SENDs acts[0..n), all to one peer, by cb_conn_out_writev in CB_CONN_IOV_MAX-payload
 * gathers; their payloads are only read during the call. Returns as cb_conn_out_writev at
 * the first error. */
int cb_conn_out_send_actions(cb_conn_out *o, int fd, const cb_action *acts, size_t n);

/* The end of the run of SENDs to acts[i].peer starting at i (acts[i] is a SEND): the least
 * j > i with acts[j] not a SEND to that peer, or n. */
size_t cb_conn_send_run_end(const cb_action *acts, size_t i, size_t n);

/* Watch w for EPOLLIN, plus EPOLLOUT while o holds bytes (no system call when that is
 * already what is watched). Returns 0 or -errno from epoll_ctl. */
int cb_conn_watch_out(cb_loop *loop, cb_loop_watch *w, const cb_conn_out *o);

/* One non-blocking recv into buf[0..cap). Returns the byte count (> 0); 0 when nothing can
 * be read now (EAGAIN, EINTR); -1 when the stream ended or failed. */
long cb_conn_recv(int fd, uint8_t *buf, size_t cap);

/* Format an error message into err[0..err_cap) (NULL or 0: nothing). */
void cb_conn_err(char *err, size_t err_cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A non-blocking, close-on-exec socket of `type` (SOCK_STREAM: listening, backlog 1024;
 * SOCK_DGRAM) bound to numeric address host (IPv4 or IPv6) and port (0: any), with
 * SO_REUSEADDR and, if reuseport, SO_REUSEPORT. Returns the fd with *bound set to the port
 * it got, or -1 with a message in err. */
int cb_conn_bind(const char *host, uint16_t port, int type, int reuseport, uint16_t *bound,
                 char *err, size_t err_cap);

/* Make room for conn_max connections plus fds_reserve other fds under RLIMIT_NOFILE,
 * raising the soft limit if the hard one allows. Returns 0, or -1 with a message in err
 * naming --conn-max. */
int cb_conn_fd_limit(uint32_t conn_max, uint32_t fds_reserve, char *err, size_t err_cap);

#endif
