/* cb_conn.c: per-connection machinery shared by the real/ daemons; see cb_conn.h. */
#define _GNU_SOURCE /* SO_REUSEPORT, SOCK_NONBLOCK */
#include "cb_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cb_err.h"

void cb_conn_out_init(cb_conn_out *o, size_t bytes_max, size_t cap_first)
{
    o->buf = NULL;
    o->head = o->len = o->cap = 0;
    o->bytes_max = bytes_max;
    o->cap_first = cap_first > 0 ? cap_first : 1;
}

void cb_conn_out_free(cb_conn_out *o)
{
    free(o->buf);
    o->buf = NULL;
    o->head = o->len = o->cap = 0;
}

int cb_conn_out_append(cb_conn_out *o, const uint8_t *data, size_t len)
{
    size_t queued = o->len - o->head;
    if (queued > o->bytes_max || len > o->bytes_max - queued) {
        return CB_ERR_FULL;
    }
    if (o->cap - o->len < len && o->head > 0) {
        memmove(o->buf, o->buf + o->head, queued);
        o->len = queued;
        o->head = 0;
    }
    if (o->cap - o->len < len) {
        size_t cap = o->cap > 0 ? o->cap : o->cap_first;
        while (cap - o->len < len) {
            cap *= 2; /* len + queued <= bytes_max: no overflow short of SIZE_MAX / 2 */
        }
        uint8_t *p = realloc(o->buf, cap);
        if (p == NULL) {
            return CB_ERR_NOMEM;
        }
        o->buf = p;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, data, len);
    o->len += len;
    return CB_ERR_OK;
}

int cb_conn_out_flush(cb_conn_out *o, int fd)
{
    while (o->head < o->len) {
        ssize_t n = send(fd, o->buf + o->head, o->len - o->head, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return CB_ERR_OK;
            }
            return CB_ERR_CLOSED;
        }
        o->head += (size_t)n;
    }
    o->head = o->len = 0;
    return CB_ERR_OK;
}

int cb_conn_out_writev(cb_conn_out *o, int fd, const struct iovec *iov, size_t n)
{
    size_t sent = 0;
    if (o->head == o->len) {
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = (struct iovec *)iov; /* sendmsg does not write it */
        msg.msg_iovlen = n;
        ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return CB_ERR_CLOSED;
        }
        sent = w > 0 ? (size_t)w : 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (sent >= iov[i].iov_len) {
            sent -= iov[i].iov_len;
            continue;
        }
        int rc =
            cb_conn_out_append(o, (const uint8_t *)iov[i].iov_base + sent, iov[i].iov_len - sent);
        if (rc != CB_ERR_OK) {
            return rc;
        }
        sent = 0;
    }
    return CB_ERR_OK;
}

int cb_conn_out_send_actions(cb_conn_out *o, int fd, const cb_action *acts, size_t n)
{
    struct iovec iov[CB_CONN_IOV_MAX];
    size_t i = 0;
    while (i < n) {
        size_t k = 0;
        for (; i < n && k < CB_CONN_IOV_MAX; i++, k++) {
            iov[k].iov_base = (void *)acts[i].data; /* only read: see cb_conn_out_writev */
            iov[k].iov_len = acts[i].data_len;
        }
        int rc = cb_conn_out_writev(o, fd, iov, k);
        if (rc != CB_ERR_OK) {
            return rc;
        }
    }
    return CB_ERR_OK;
}

size_t cb_conn_send_run_end(const cb_action *acts, size_t i, size_t n)
{
    uint32_t peer = acts[i].peer;
    size_t j = i + 1;
    while (j < n && acts[j].kind == CB_ACTION_SEND && acts[j].peer == peer) {
        j++;
    }
    return j;
}

int cb_conn_watch_out(cb_loop *loop, cb_loop_watch *w, const cb_conn_out *o)
{
    return cb_loop_modify(loop, w, o->head < o->len ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

long cb_conn_recv(int fd, uint8_t *buf, size_t cap)
{
    ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
    if (n > 0) {
        return (long)n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return 0;
    }
    return -1; /* end of stream, or a reset */
}

void cb_conn_err(char *err, size_t err_cap, const char *fmt, ...)
{
    if (err == NULL || err_cap == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(err, err_cap, fmt, ap);
    va_end(ap);
}

/* Parse a numeric address; *len gets the sockaddr's length. */
static int conn_addr(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof *v6;
        return 0;
    }
    return -1;
}

int cb_conn_bind(const char *host, uint16_t port, int type, int reuseport, uint16_t *bound,
                 char *err, size_t err_cap)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (conn_addr(host, port, &ss, &len) != 0) {
        cb_conn_err(err, err_cap, "'%s' is not a numeric IPv4 or IPv6 address", host);
        return -1;
    }
    int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 ||
        (type == SOCK_STREAM && listen(fd, 1024) != 0) ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        cb_conn_err(err, err_cap, "%s %s port %u: %s", type == SOCK_STREAM ? "tcp" : "udp", host,
                    (unsigned)port, strerror(errno));
        if (fd >= 0) {
            (void)close(fd);
        }
        return -1;
    }
    *bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                           : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

int cb_conn_fd_limit(uint32_t conn_max, uint32_t fds_reserve, char *err, size_t err_cap)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return 0;
    }
    rlim_t want = (rlim_t)conn_max + fds_reserve;
    if (rl.rlim_cur >= want) {
        return 0;
    }
    if (rl.rlim_max >= want) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
            return 0;
        }
    }
    cb_conn_err(err, err_cap, "--conn-max %u needs %llu file descriptors; the limit is %llu",
                conn_max, (unsigned long long)want, (unsigned long long)rl.rlim_max);
    return -1;
}
