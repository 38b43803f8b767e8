/*
 * cli_replay.c: `cachebed replay SCENARIO` — the scenario's workload over real sockets.
 *
 * Everything but the world is `cachebed run`'s (cli_run.c: plan, workload, placement,
 * runner, results database, summary), so the same seeded operations are issued. The world
 * is real/cb_realworld: the scenario's clients in this process on one epoll loop, talking
 * to `cachebed serve` child processes on loopback ephemeral ports (or to --servers), with
 * the scenario's latency, jitter and loss imposed in user space (docs/real.md §8).
 */
#define _GNU_SOURCE /* pipe2, usleep, prctl */
#include "cb_cli.h"

#include <fcntl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cb_compress.h"
#include "cb_err.h"
#include "cb_memworld.h"
#include "cb_realworld.h"
#include "cb_results.h"
#include "cb_scenario.h"
#include "cb_seal.h"
#include "cb_sgfaults.h"
#include "cb_units.h"

#define REPLAY_ARGS_MAX   256
#define REPLAY_START_NS   5000000000ull /* a child has this long to say it is listening */
#define REPLAY_STOP_POLLS 50            /* x 100 ms: SIGTERM, then SIGKILL */
#define REPLAY_GRACE_NS   1000000000ull /* in-flight requests after a stop signal */

const char cb_cli_replay_help[] =
    "usage: cachebed replay SCENARIO [-o RESULTS.db] [--seed N] [--set SECTION.KEY=VALUE ...]\n"
    "                       [--servers HOST:PORT,...] [--protocol binary|text] [--quiet]\n"
    "\n"
    "Replays SCENARIO over real sockets and logs it like 'cachebed run', with mode = 'real':\n"
    "the same plan, workload streams, placement and request budget, so the same sequence of\n"
    "operations is issued. Without --servers, the scenario's N servers are started as\n"
    "'cachebed serve' child processes on free 127.0.0.1 ports (memory and value limits from\n"
    "the scenario), and stopped (SIGTERM, reaped) at the end. The clients run in this process\n"
    "on one epoll loop, one connection per (client, server), tcp or udp as the scenario says.\n"
    "\n"
    "The scenario's latency, jitter and loss are imposed in user space on the client side,\n"
    "in both directions (a delay queue and a seeded loss draw; over tcp a lost message is\n"
    "delayed by rto_min), on top of the real loopback time; the run records it as an\n"
    "'impairment' event (docs/real.md §8). Bandwidth is not imposed.\n"
    "\n"
    "  -o PATH        results database (default results.db)\n"
    "  --seed N       same as --set scenario.seed=N\n"
    "  --set S.K=V    override one key of the file (repeatable)\n"
    "  --servers L    use running servers, one HOST:PORT per scenario server,\n"
    "                 comma-separated, numeric IPv4 or localhost: 'cachebed serve', or\n"
    "                 real memcached with --protocol text\n"
    "  --protocol P   binary (default: cachebed's frame) or text (memcached's text\n"
    "                 protocol: replies are matched in order, over udp by their request\n"
    "                 id too, so a timed-out request is not retried, its connection is\n"
    "                 reset instead and the requests in flight on it fail; docs/real.md §9)\n"
    "  --quiet        no progress line\n"
    "\n"
    "SIGINT/SIGTERM: no new request is issued, those in flight get 1 s to complete and are\n"
    "then cancelled (outcome error), the run is marked incomplete, the servers are reaped.\n"
    "replicas > 1 runs the scenario's replication router in every client; compression and\n"
    "encryption_key_file are given to the clients and, as 'cachebed serve' options, to the\n"
    "servers started.\n"
    "[faults] are imposed for real: a server crash is SIGKILL of its process, its recover\n"
    "a restart, empty, on the same port; link latency, jitter and loss and partitions go\n"
    "through the user-space delay queue (bandwidth is not imposed); each is an event row.\n"
    "With transport kind = queue, a 'cachebed broker' child is started first and the\n"
    "servers run as its consumers ('cachebed serve --broker'); each client keeps one\n"
    "connection to the broker, whose delay stands for both hops (docs/real.md §10.3).\n"
    "Replication, compression and encryption work over it as over tcp; [faults]: the\n"
    "node 'broker' crashes by SIGKILL (its queues lost) and recovers on its port (the\n"
    "consumers and clients reconnect and subscribe again); a server crash kills its\n"
    "consumer (the broker requeues), its recover starts a new one.\n"
    "resync = warm (replicas > 1): a resyncer in this process warms each restarted server\n"
    "from its peers (SCAN, versioned writes) once it accepts connections, one at a time;\n"
    "its resync_start and resync_done are event rows on node 'resync'.\n"
    "Not yet (exit 3): the text protocol with replicas > 1, a codec or the queue\n"
    "transport, and server crashes with --servers.\n"
    "\n"
    "Exit status: 0 ok, 1 failed or interrupted, 2 bad usage, 3 not built yet.\n";

typedef struct replay_state {
    const char *servers_opt; /* --servers, or NULL */
    uint8_t protocol;        /* --protocol: CB_CLIENT_PROTOCOL_* */
    uint32_t server_count;
    struct sockaddr_in *addrs;
    pid_t *pids; /* children, 0 where none */
    int *pipes;  /* their stdout, -1 where none */
    cb_realworld *world;
    const cb_plan *plan;
    /* transport kind = queue: the `cachebed broker` child (docs/real.md §10.3) */
    pid_t broker_pid;
    int broker_pipe;
    struct sockaddr_in broker_addr;
    int broker_hold;          /* a socket holding its port while it is down, or -1 */
    uint8_t broker_restarted; /* by a recover fault, listening not checked yet */
    cb_codec_config codec; /* the clients' and servers' (for the events rows) */
    int sealed;
    const char *key_path;
    cb_sgfaults faults;  /* the [faults] timeline, in the world's form */
    uint8_t *restarted;  /* per server: restarted by a recover fault, listening not checked */
    int *holds;          /* per server: a socket holding its port while it is down, or -1 */
} replay_state;

/* Does a [faults] node pattern (server<i>, client<i>, broker, or a prefix and `*`) name a
 * server? */
static int replay_names_servers(const char *pattern)
{
    const char *star = strchr(pattern, '*');
    size_t n = star != NULL ? (size_t)(star - pattern) : strlen(pattern);
    return strncmp(pattern, "server", n < 6 ? n : 6) == 0;
}

static const char *replay_unsupported(void *user, const cb_plan *p)
{
    const replay_state *st = user;
    if (st->protocol == CB_CLIENT_PROTOCOL_TEXT && p->transport.kind == CB_TRANSPORT_QUEUE) {
        return "the text protocol over the queue transport";
    }
    if (p->transport.kind == CB_TRANSPORT_QUEUE && p->placement.resync == CB_PLAN_RESYNC_WARM &&
        p->placement.replicas > 1) {
        return "[placement] resync = warm with the queue transport over real sockets (the "
               "servers are the broker's consumers: the resyncer has no way to them; the "
               "simulator runs it through the broker)";
    }
    if (p->placement.replicas > 1 && st->protocol == CB_CLIENT_PROTOCOL_TEXT) {
        return "replicas > 1 with --protocol text (versioned writes need the binary frame)";
    }
    for (size_t k = 0; st->servers_opt != NULL && k < p->fault_count; k++) {
        const cb_fault *f = &p->faults[k];
        if ((f->kind == CB_FAULT_CRASH || f->kind == CB_FAULT_RECOVER) &&
            replay_names_servers(f->patterns[0])) {
            return "[faults] crash or recover of a server with --servers (replay can kill and "
                   "restart only the servers it started)";
        }
    }
    if (st->protocol == CB_CLIENT_PROTOCOL_TEXT &&
        (p->transport.compression != CB_COMPRESSION_NONE || p->transport.key_file[0] != '\0')) {
        return "compression or encryption with --protocol text (the codec is the binary "
               "frame's)";
    }
    if (p->transport.kind == CB_TRANSPORT_QUEUE && st->servers_opt != NULL) {
        return "--servers with transport kind = queue (replay starts the broker and servers)";
    }
    return NULL;
}

/* One HOST:PORT of --servers into *out; 0, or -1 with a message. */
static int replay_parse_addr(const char *text, size_t len, struct sockaddr_in *out)
{
    char buf[96];
    const char *colon = memchr(text, ':', len);
    if (len >= sizeof buf || colon == NULL) {
        fprintf(stderr, "cachebed replay: --servers: '%.*s' is not HOST:PORT\n", (int)len, text);
        return -1;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    buf[colon - text] = '\0';
    const char *host = strcmp(buf, "localhost") == 0 ? "127.0.0.1" : buf;
    char *end = NULL;
    unsigned long port = strtoul(buf + (colon - text) + 1, &end, 10);
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &out->sin_addr) != 1 || end == NULL || *end != '\0' || port == 0 ||
        port > 65535) {
        fprintf(stderr, "cachebed replay: --servers: '%.*s': a numeric IPv4 address and a port\n",
                (int)len, text);
        return -1;
    }
    return 0;
}

static int replay_parse_servers(replay_state *st)
{
    const char *s = st->servers_opt;
    uint32_t n = 0;
    while (*s != '\0') {
        size_t len = strcspn(s, ",");
        if (n == st->server_count) {
            fprintf(stderr, "cachebed replay: --servers lists more than the scenario's %u\n",
                    st->server_count);
            return -1;
        }
        if (replay_parse_addr(s, len, &st->addrs[n++]) != 0) {
            return -1;
        }
        s += len + (s[len] == ',');
    }
    if (n != st->server_count) {
        fprintf(stderr, "cachebed replay: --servers lists %u, the scenario has %u servers\n", n,
                st->server_count);
        return -1;
    }
    return 0;
}

/* Append the codec's `cachebed serve` options to argv[n..] (at most 8: leave room for
 * them and the NULL); returns the new n.
 * alg[32] and cmin[32] hold their values. */
static int replay_codec_args(const cb_codec_config *codec, const char *key_path, char *alg,
                             char *cmin, char **argv, int n)
{
    if (codec->compress_alg != CB_COMPRESS_NONE) {
        if (codec->compress_alg == CB_COMPRESS_LZ4) {
            snprintf(alg, 32, "lz4");
        } else if (codec->compress_level > 0) {
            snprintf(alg, 32, "zstd:%d", (int)codec->compress_level);
        } else {
            snprintf(alg, 32, "zstd");
        }
        snprintf(cmin, 32, "%u", codec->compress_threshold_bytes);
        argv[n++] = "--compression";
        argv[n++] = alg;
        argv[n++] = "--compress-min";
        argv[n++] = cmin;
    }
    if (key_path != NULL) {
        argv[n++] = "--key-file";
        argv[n++] = (char *)(uintptr_t)key_path;
        argv[n++] = "--seal-mode";
        argv[n++] = codec->seal_mode == CB_SEAL_DATAGRAM ? "datagram" : "stream";
    }
    return n;
}

/* The child: `cachebed serve` on an ephemeral loopback port, its stdout into `out_fd`, with
 * the scenario's codec (the clients' own: both ends must agree, docs/protocol.md §5.3). */
static void replay_exec_server(const cb_plan_server *ps, uint32_t conn_max, int udp,
                               uint16_t port, const cb_codec_config *codec, const char *key_path,
                               int out_fd)
{
    char mem[32], vmax[32], conns[16], alg[32], cmin[32], tcp_port[8], udp_port[8];
    /* Over udp the clients use the UDP port only: a restart needs that one back. */
    snprintf(tcp_port, sizeof tcp_port, "%u", udp ? 0u : (unsigned)port);
    snprintf(udp_port, sizeof udp_port, "%u", udp ? (unsigned)port : 0u);
    snprintf(mem, sizeof mem, "%llu", (unsigned long long)ps->memory_bytes);
    snprintf(vmax, sizeof vmax, "%llu", (unsigned long long)ps->value_bytes_max);
    snprintf(conns, sizeof conns, "%u", conn_max);
    (void)setpgid(0, 0); /* a terminal's ^C reaches replay, which stops the servers itself */
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM); /* and if replay dies, so do they */
    if (dup2(out_fd, STDOUT_FILENO) < 0) {
        _exit(127);
    }
    char *argv[24] = {"cachebed", "serve",       "--port", tcp_port,     "--memory",
                      mem,        "--value-max", vmax,     "--conn-max", conns};
    int n = 10;
    if (udp) {
        argv[n++] = "--udp-port";
        argv[n++] = udp_port;
    }
    n = replay_codec_args(codec, key_path, alg, cmin, argv, n);
    argv[n] = NULL;
    execv("/proc/self/exe", argv);
    fprintf(stderr, "cachebed replay: cannot start 'cachebed serve': %s\n", strerror(errno));
    _exit(127);
}

/* Queue transport: the broker child, and each server as its consumer `--node s`. Node ids:
 * servers 0..S-1, clients S..S+C-1 (cb_realworld.h). */
static void replay_exec_child(char **argv, int out_fd)
{
    (void)setpgid(0, 0);
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (dup2(out_fd, STDOUT_FILENO) < 0) {
        _exit(127);
    }
    execv("/proc/self/exe", argv);
    fprintf(stderr, "cachebed replay: cannot start 'cachebed %s': %s\n", argv[1], strerror(errno));
    _exit(127);
}

/* listen_fd >= 0: the broker serves on it (inherited, bound to `port` and listening). */
static void replay_exec_broker(const cb_plan *p, uint16_t port, int listen_fd, int out_fd)
{
    char nodes[16], conns[16], vmax[32], portv[8], lfd[16];
    snprintf(portv, sizeof portv, "%u", (unsigned)port);
    snprintf(lfd, sizeof lfd, "%d", listen_fd);
    snprintf(nodes, sizeof nodes, "%u", p->servers.count + p->clients.count);
    snprintf(conns, sizeof conns, "%u", p->servers.count + p->clients.count + 16u);
    uint64_t v = 0;
    for (uint32_t s = 0; s < p->servers.count; s++) {
        v = p->servers.each[s].value_bytes_max > v ? p->servers.each[s].value_bytes_max : v;
    }
    snprintf(vmax, sizeof vmax, "%llu", (unsigned long long)v);
    /* The scenario's [broker] queue_limit, ack_timeout and delivery_max; not its
     * service_time, which models the simulated broker's CPU: the real one has its own. */
    char limit[24], ack[32], dmax[24];
    snprintf(limit, sizeof limit, "%llu", (unsigned long long)p->broker.queue_limit);
    snprintf(ack, sizeof ack, "%lluns", (unsigned long long)p->broker.ack_timeout_ns);
    snprintf(dmax, sizeof dmax, "%llu", (unsigned long long)p->broker.delivery_max);
    char *argv[] = {"cachebed",      "broker",  "--port",         portv, "--node-max",
                    nodes,           "--conn-max", conns,         "--value-max", vmax,
                    "--queue-limit", limit,     "--ack-timeout",  ack,   "--delivery-max",
                    dmax,            NULL,      NULL,             NULL};
    if (listen_fd >= 0) {
        if (fcntl(listen_fd, F_SETFD, 0) != 0) { /* this child keeps it across exec */
            _exit(127);
        }
        argv[16] = "--listen-fd";
        argv[17] = lfd;
    }
    replay_exec_child(argv, out_fd);
}

static void replay_exec_consumer(const cb_plan *p, uint32_t s, uint16_t broker_port,
                                 const cb_codec_config *codec, const char *key_path, int out_fd)
{
    char mem[32], vmax[32], conns[16], node[16], broker[32], alg[32], cmin[32];
    snprintf(mem, sizeof mem, "%llu", (unsigned long long)p->servers.each[s].memory_bytes);
    snprintf(vmax, sizeof vmax, "%llu", (unsigned long long)p->servers.each[s].value_bytes_max);
    snprintf(conns, sizeof conns, "%u", p->servers.count + p->clients.count); /* node ids */
    snprintf(node, sizeof node, "%u", s);
    snprintf(broker, sizeof broker, "127.0.0.1:%u", (unsigned)broker_port);
    /* It retries a lost broker every 10 ms (not the default 200 ms): a recovered broker
     * finds its consumers back about as soon as the simulated one does; and a consumer
     * recovered while the broker is down waits for it (the simulated one subscribes when
     * the broker is back). */
    char *argv[32] = {"cachebed",     "serve",       "--broker",  broker, "--node",
                      node,           "--memory",    mem,         "--value-max", vmax,
                      "--conn-max",   conns,         "--reconnect", "10ms", "--connect-wait",
                      "1h"};
    int n = replay_codec_args(codec, key_path, alg, cmin, argv, 16);
    argv[n] = NULL;
    replay_exec_child(argv, out_fd);
}

/* Read the child's "listening on ... port P (tcp) [and port U (udp)]" line. */
static int replay_read_port(int fd, int udp, uint16_t *port)
{
    char line[256];
    size_t len = 0;
    while (len + 1 < sizeof line && memchr(line, '\n', len) == NULL) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)(REPLAY_START_NS / 1000000ull)) <= 0) {
            return -1; /* silent for 5 s */
        }
        ssize_t n = read(fd, line + len, sizeof line - 1 - len);
        if (n <= 0) {
            return -1; /* it exited */
        }
        len += (size_t)n;
    }
    line[len] = '\0';
    const char *key = udp ? "and port " : " port ";
    const char *p = strstr(line, key);
    unsigned v = 0;
    if (p == NULL || sscanf(p + strlen(key), "%u", &v) != 1 || v == 0 || v > 65535) {
        return -1;
    }
    *port = (uint16_t)v;
    return 0;
}

/* Fork the broker (port 0: any; else that port again), its stdout in st->broker_pipe;
 * does not wait for it to listen. listen_fd >= 0: a socket bound to `port` and listening,
 * given to the broker (closed here). 0, or -1 with a message. */
static int replay_spawn_broker(replay_state *st, const cb_plan *p, uint16_t port, int listen_fd)
{
    int fds[2];
    fflush(NULL); /* the child must not repeat our buffered output */
    if (pipe2(fds, O_CLOEXEC) != 0) {
        fprintf(stderr, "cachebed replay: pipe: %s\n", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        replay_exec_broker(p, port, listen_fd, fds[1]);
    }
    (void)close(fds[1]);
    if (listen_fd >= 0) {
        (void)close(listen_fd); /* the child's now */
    }
    if (st->broker_pipe >= 0) {
        (void)close(st->broker_pipe);
    }
    st->broker_pipe = fds[0];
    if (pid < 0) {
        fprintf(stderr, "cachebed replay: fork: %s\n", strerror(errno));
        return -1;
    }
    st->broker_pid = pid;
    return 0;
}

static int replay_start_broker(replay_state *st, const cb_plan *p)
{
    uint16_t port = 0;
    if (replay_spawn_broker(st, p, 0, -1) != 0) {
        return -1;
    }
    if (replay_read_port(st->broker_pipe, 0, &port) != 0) {
        fprintf(stderr, "cachebed replay: the broker did not start (see above)\n");
        return -1;
    }
    st->broker_addr.sin_family = AF_INET;
    st->broker_addr.sin_port = htons(port);
    st->broker_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return 0;
}

/* Fork server s's `cachebed serve` (port 0: any; else that port again), its stdout in
 * st->pipes[s]; does not wait for it to listen. With the queue transport it is the
 * broker's consumer `--node s` instead. 0, or -1 with a message. */
static int replay_spawn_server(replay_state *st, uint32_t s, uint16_t port)
{
    const cb_plan *p = st->plan;
    int fds[2];
    fflush(NULL); /* the child must not repeat our buffered output */
    if (pipe2(fds, O_CLOEXEC) != 0) {
        fprintf(stderr, "cachebed replay: pipe: %s\n", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0 && p->transport.kind == CB_TRANSPORT_QUEUE) {
        replay_exec_consumer(p, s, ntohs(st->broker_addr.sin_port), &st->codec, st->key_path,
                             fds[1]);
    }
    if (pid == 0) {
        replay_exec_server(&p->servers.each[s], p->clients.count + 16u,
                           p->transport.kind == CB_TRANSPORT_UDP, port, &st->codec, st->key_path,
                           fds[1]);
    }
    (void)close(fds[1]);
    if (st->pipes[s] >= 0) {
        (void)close(st->pipes[s]);
    }
    st->pipes[s] = fds[0];
    if (pid < 0) {
        fprintf(stderr, "cachebed replay: fork: %s\n", strerror(errno));
        return -1;
    }
    st->pids[s] = pid;
    return 0;
}

static int replay_start_servers(replay_state *st)
{
    int udp = st->plan->transport.kind == CB_TRANSPORT_UDP;
    fflush(NULL); /* the child must not repeat our buffered output */
    if (st->plan->transport.kind == CB_TRANSPORT_QUEUE && replay_start_broker(st, st->plan) != 0) {
        return -1;
    }
    for (uint32_t s = 0; s < st->server_count; s++) {
        uint16_t port = 0;
        if (replay_spawn_server(st, s, 0) != 0) {
            return -1;
        }
        if (replay_read_port(st->pipes[s], udp, &port) != 0) {
            fprintf(stderr, "cachebed replay: server %u did not start (see above)\n", s);
            return -1;
        }
        st->addrs[s].sin_family = AF_INET;
        st->addrs[s].sin_port = htons(port); /* queue: the broker's, which it reached */
        st->addrs[s].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    return 0;
}

/* Hold 127.0.0.1:port (a socket bound with SO_REUSEADDR, never listening) while server s
 * is down, so that no other socket on the machine — an outgoing connection's ephemeral
 * port, another test's server on port 0 — takes the port its restart must bind. The
 * restarted server binds beside it (SO_REUSEADDR, and it is not listening). Best effort:
 * returns the socket or -1. */
static int replay_hold_port(int udp, uint16_t port)
{
    int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
                    bind(fd, (struct sockaddr *)&a, sizeof a) != 0)) {
        (void)close(fd);
        fd = -1;
    }
    return fd;
}

/* A TCP socket bound to 127.0.0.1:port and listening (close-on-exec), or -1. */
static int replay_listen_port(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
                    bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 1024) != 0)) {
        (void)close(fd);
        fd = -1;
    }
    return fd;
}

static void replay_release_port(replay_state *st, uint32_t s)
{
    if (st->holds != NULL && st->holds[s] >= 0) {
        (void)close(st->holds[s]);
        st->holds[s] = -1;
    }
}

/* SIGKILL child `pid` and reap it; the milliseconds that took. */
static double replay_kill(pid_t pid)
{
    struct timespec t0, t1;
    int status = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    (void)kill(pid, SIGKILL); /* our child */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

/* Queue transport: server s is the broker's consumer (node s). Its crash is SIGKILL: the
 * broker sees its stream end and requeues the deliveries it had not ACKed, which wait for
 * its recovery; the recovery is a new consumer, empty, which subscribes as node s again
 * and gets them (docs/real.md §10.3). It has no port of its own to hold. */
static int replay_consumer_fault(replay_state *st, uint32_t s, int up, char *note, size_t cap)
{
    if (!up) {
        pid_t pid = st->pids[s];
        if (pid <= 0) {
            snprintf(note, cap, "already down");
            return 0;
        }
        double ms = replay_kill(pid);
        st->pids[s] = 0;
        st->restarted[s] = 0;
        snprintf(note, cap,
                 "SIGKILL to 'cachebed serve --broker' pid %d (node %u), reaped in %.1f ms; the "
                 "broker requeues what it had not ACKed",
                 (int)pid, s, ms);
        return 0;
    }
    if (st->pids[s] > 0) {
        snprintf(note, cap, "already up");
        return 0;
    }
    if (replay_spawn_server(st, s, 0) != 0) {
        snprintf(note, cap, "restart failed: %s", strerror(errno));
        return -1;
    }
    st->restarted[s] = 1;
    snprintf(note, cap,
             "'cachebed serve --broker' restarted, empty, as node %u (pid %d); it subscribes "
             "again",
             s, (int)st->pids[s]);
    return 0;
}

/* A [faults] crash (up = 0) or recover (up = 1) of the queue transport's broker, for real:
 * SIGKILL its process (its queues and everything in flight are lost: it is not durable),
 * hold its port, or start it again, empty, on the same port. The consumers reconnect every
 * 200 ms and subscribe again; the clients reconnect with their next send (docs/real.md
 * §10.3). */
static int replay_broker_fault(void *user, int up, char *note, size_t cap)
{
    replay_state *st = user;
    unsigned port = ntohs(st->broker_addr.sin_port);
    if (!up) {
        pid_t pid = st->broker_pid;
        if (pid <= 0) {
            snprintf(note, cap, "already down");
            return 0;
        }
        double ms = replay_kill(pid);
        st->broker_pid = 0;
        st->broker_restarted = 0;
        if (st->broker_hold >= 0) {
            (void)close(st->broker_hold);
        }
        st->broker_hold = replay_hold_port(0, (uint16_t)port);
        snprintf(note, cap,
                 "SIGKILL to 'cachebed broker' pid %d (port %u), reaped in %.1f ms, its queues "
                 "lost%s",
                 (int)pid, port, ms, st->broker_hold >= 0 ? ", port held" : ", port not held");
        return 0;
    }
    if (st->broker_pid > 0) {
        snprintf(note, cap, "already up");
        return 0;
    }
    /* The port listens from now on (a socket made here, handed to the new broker), so that
     * connects made while the process starts (tens of ms) wait in its backlog, as the
     * simulated broker is up at the recovery's time. */
    if (st->broker_hold >= 0) {
        (void)close(st->broker_hold);
        st->broker_hold = -1;
    }
    int lfd = replay_listen_port((uint16_t)port);
    if (replay_spawn_broker(st, st->plan, (uint16_t)port, lfd) != 0) {
        snprintf(note, cap, "restart failed: %s", strerror(errno));
        return -1;
    }
    st->broker_restarted = 1;
    snprintf(note, cap,
             "'cachebed broker' restarted, empty, on port %u (pid %d%s); consumers and clients "
             "reconnect and subscribe again",
             port, (int)st->broker_pid,
             lfd >= 0 ? ", port listening from now" : ", the port made by the broker");
    return 0;
}

/* A [faults] crash (up = 0) or recover (up = 1) of server s, for real: SIGKILL its process
 * (and reap it), or start it again, empty, on the same port. The restart is not waited
 * for: until it listens, connects are refused, as from any server coming back; whether it
 * did listen is checked at the end (replay_check_restarts). */
static int replay_server_fault(void *user, uint32_t s, int up, char *note, size_t cap)
{
    replay_state *st = user;
    int udp = st->plan->transport.kind == CB_TRANSPORT_UDP;
    int queue = st->plan->transport.kind == CB_TRANSPORT_QUEUE;
    unsigned port = ntohs(st->addrs[s].sin_port);
    if (queue) {
        return replay_consumer_fault(st, s, up, note, cap);
    }
    if (!up) {
        pid_t pid = st->pids[s];
        int status = 0;
        if (pid <= 0) {
            snprintf(note, cap, "already down");
            return 0;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        (void)kill(pid, SIGKILL); /* our child */
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        st->pids[s] = 0;
        st->restarted[s] = 0;
        replay_release_port(st, s);
        st->holds[s] = replay_hold_port(udp, (uint16_t)port);
        snprintf(note, cap, "SIGKILL to 'cachebed serve' pid %d (port %u), reaped in %.1f ms%s",
                 (int)pid, port,
                 (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
                 st->holds[s] >= 0 ? ", port held" : ", port not held");
        return 0;
    }
    if (st->pids[s] > 0) {
        snprintf(note, cap, "already up");
        return 0;
    }
    if (udp) {
        replay_release_port(st, s); /* UDP would share datagrams with the holder */
    }
    if (replay_spawn_server(st, s, (uint16_t)port) != 0) {
        snprintf(note, cap, "restart failed: %s", strerror(errno));
        return -1;
    }
    st->restarted[s] = 1;
    snprintf(note, cap, "'cachebed serve' restarted, empty, on port %u (pid %d)", port,
             (int)st->pids[s]);
    return 0;
}

/* Did every restarted server listen on its old port? Warns about those that did not. */
static void replay_check_restarts(replay_state *st)
{
    int udp = st->plan->transport.kind == CB_TRANSPORT_UDP;
    uint16_t bport = 0;
    if (st->broker_restarted &&
        (replay_read_port(st->broker_pipe, 0, &bport) != 0 ||
         bport != ntohs(st->broker_addr.sin_port))) {
        fprintf(stderr,
                "cachebed replay: warning: the broker did not listen again on port %u after "
                "its recover (requests failed)\n",
                (unsigned)ntohs(st->broker_addr.sin_port));
    }
    st->broker_restarted = 0;
    for (uint32_t s = 0; st->restarted != NULL && s < st->server_count; s++) {
        uint16_t port = 0;
        if (!st->restarted[s]) {
            continue;
        }
        st->restarted[s] = 0;
        if (st->plan->transport.kind == CB_TRANSPORT_QUEUE && st->broker_pid <= 0) {
            fprintf(stderr,
                    "cachebed replay: warning: server %u was restarted while the broker is down "
                    "(it waits for it, unsubscribed)\n",
                    s);
            continue;
        }
        if (replay_read_port(st->pipes[s], udp, &port) != 0 ||
            port != ntohs(st->addrs[s].sin_port)) {
            fprintf(stderr,
                    "cachebed replay: warning: server %u did not listen again on port %u after "
                    "its recover (requests to it failed)\n",
                    s, (unsigned)ntohs(st->addrs[s].sin_port));
        }
    }
}

/* Warm resync over udp (cb_realworld_config.server_ready): has restarted server s said it
 * listens? 1 yes (on its old port), 0 not yet, -1 cannot say (not restarted by a recover,
 * already checked, or it failed: warned about, as replay_check_restarts does). Reads its
 * "listening" line once it is readable (written at once by the server). */
static int replay_server_ready(void *user, uint32_t s)
{
    replay_state *st = user;
    int udp = st->plan->transport.kind == CB_TRANSPORT_UDP;
    uint16_t port = 0;
    if (!st->restarted[s] || st->pipes[s] < 0) {
        return -1;
    }
    struct pollfd pfd = {st->pipes[s], POLLIN, 0};
    if (poll(&pfd, 1, 0) <= 0) {
        return 0;
    }
    st->restarted[s] = 0; /* checked here, not at the end */
    if (replay_read_port(st->pipes[s], udp, &port) != 0 || port != ntohs(st->addrs[s].sin_port)) {
        fprintf(stderr,
                "cachebed replay: warning: server %u did not listen again on port %u after its "
                "recover (requests to it failed)\n",
                s, (unsigned)ntohs(st->addrs[s].sin_port));
        return -1;
    }
    return 1;
}

/* SIGTERM every child, wait for each (SIGKILL after 5 s); 0 if all exited 0. */
static int replay_stop_servers(replay_state *st)
{
    int bad = 0;
    for (uint32_t s = 0; st->pids != NULL && s < st->server_count; s++) {
        if (st->pids[s] > 0) {
            (void)kill(st->pids[s], SIGTERM); /* our child: cannot fail but for ESRCH */
        }
    }
    for (uint32_t s = 0; st->pids != NULL && s < st->server_count; s++) {
        replay_release_port(st, s);
    }
    for (uint32_t s = 0; st->pids != NULL && s < st->server_count; s++) {
        int status = 0;
        for (int i = 0; st->pids[s] > 0; i++) {
            pid_t r = waitpid(st->pids[s], &status, i < REPLAY_STOP_POLLS ? WNOHANG : 0);
            if (r == st->pids[s] || (r < 0 && errno != EINTR)) {
                bad |= r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
                st->pids[s] = 0;
            } else if (i == REPLAY_STOP_POLLS - 1) {
                (void)kill(st->pids[s], SIGKILL);
            } else if (r == 0) {
                (void)usleep(100000);
            }
        }
        if (st->pipes[s] >= 0) {
            (void)close(st->pipes[s]);
            st->pipes[s] = -1;
        }
    }
    if (st->broker_pid > 0) { /* after its consumers, so they do not see it go */
        (void)kill(st->broker_pid, SIGTERM);
        int status = 0;
        for (int i = 0; st->broker_pid > 0; i++) {
            pid_t r = waitpid(st->broker_pid, &status, i < REPLAY_STOP_POLLS ? WNOHANG : 0);
            if (r == st->broker_pid || (r < 0 && errno != EINTR)) {
                bad |= r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
                st->broker_pid = 0;
            } else if (i == REPLAY_STOP_POLLS - 1) {
                (void)kill(st->broker_pid, SIGKILL);
            } else if (r == 0) {
                (void)usleep(100000);
            }
        }
    }
    if (st->broker_pipe >= 0) {
        (void)close(st->broker_pipe);
        st->broker_pipe = -1;
    }
    if (st->broker_hold >= 0) {
        (void)close(st->broker_hold);
        st->broker_hold = -1;
    }
    return bad ? -1 : 0;
}

static int replay_build(void *user, const cb_plan *p, const cb_memworld_config *mc,
                        const char *key_path)
{
    replay_state *st = user;
    st->plan = p;
    st->server_count = p->servers.count;
    st->addrs = calloc(st->server_count, sizeof st->addrs[0]);
    st->pids = calloc(st->server_count, sizeof st->pids[0]);
    st->pipes = malloc(st->server_count * sizeof st->pipes[0]);
    st->restarted = calloc(st->server_count, sizeof st->restarted[0]);
    st->holds = malloc(st->server_count * sizeof st->holds[0]);
    for (uint32_t s = 0; s < st->server_count; s++) {
        if (st->pipes != NULL) {
            st->pipes[s] = -1;
        }
        if (st->holds != NULL) {
            st->holds[s] = -1;
        }
    }
    if (st->addrs == NULL || st->pids == NULL || st->pipes == NULL || st->restarted == NULL ||
        st->holds == NULL ||
        cb_sgfaults_from_plan(p, &st->faults) != CB_ERR_OK) {
        fprintf(stderr, "cachebed replay: out of memory\n");
        return -1;
    }
    st->broker_pipe = -1;
    st->codec = mc->client.codec;
    st->sealed = key_path != NULL;
    st->key_path = key_path; /* cli_run's: lives as long as the run */
    int rc = st->servers_opt != NULL ? replay_parse_servers(st) : replay_start_servers(st);
    if (rc != 0) {
        return -1;
    }
    cb_realworld_config rc_cfg = {
        .server_count = p->servers.count,
        .client_count = p->clients.count,
        .servers = st->addrs,
        .udp = p->transport.kind == CB_TRANSPORT_UDP,
        .client = mc->client,
        .latency_ns = p->network.latency_ns,
        .jitter_ns = p->network.jitter_ns,
        .loss_ppm = p->network.loss_ppm,
        .retransmit_ns = p->transport.rto_min_ns,
        .seed = p->scenario.seed,
        .stop_grace_ns = REPLAY_GRACE_NS,
        .router = mc->router,
        .placement = mc->placement,
        .resync = mc->resync,
        .faults = st->faults.items,
        .fault_count = st->faults.count,
        .server_fault = replay_server_fault,
        .broker_fault = replay_broker_fault,
        .server_ready = replay_server_ready,
        .fault_user = st,
    };
    rc_cfg.client.protocol = st->protocol;
    if (p->transport.kind == CB_TRANSPORT_QUEUE) {
        /* Client -> broker -> server is two links of the scenario each way: the user-space
         * delay of the client-broker stream stands for both (the world adds up the two
         * hops, docs/real.md §10.3). */
        rc_cfg.broker = &st->broker_addr;
    }
    rc = cb_realworld_new(&rc_cfg, &st->world);
    if (rc != CB_ERR_OK) {
        fprintf(stderr, "cachebed replay: cannot build the clients: %s\n", cb_strerror(rc));
        return -1;
    }
    return 0;
}

/* The events rows saying where the servers were and what the driver imposed. */
/* The codec both ends use, for the server rows: "none", "zstd:3 min=1, sealed stream"... */
static void replay_codec_text(const replay_state *st, char *out, size_t cap)
{
    const cb_codec_config *c = &st->codec;
    int n = 0;
    if (c->compress_alg != CB_COMPRESS_NONE) {
        if (c->compress_alg == CB_COMPRESS_LZ4) {
            n = snprintf(out, cap, "lz4 min=%u", c->compress_threshold_bytes);
        } else {
            n = snprintf(out, cap, "zstd:%d min=%u", (int)c->compress_level,
                         c->compress_threshold_bytes);
        }
    }
    if (st->sealed && n >= 0 && (size_t)n < cap) {
        snprintf(out + n, cap - (size_t)n, "%ssealed %s", n > 0 ? ", " : "",
                 c->seal_mode == CB_SEAL_DATAGRAM ? "datagram" : "stream");
    } else if (n == 0) {
        out[0] = '\0';
    }
}

static int replay_note(void *user, cb_results *db, int64_t run_id)
{
    replay_state *st = user;
    const cb_plan *p = st->plan;
    char detail[1280], codec[96];
    replay_codec_text(st, codec, sizeof codec);
    int rc = CB_RESULTS_OK;
    for (uint32_t s = 0; s < st->server_count && rc == CB_RESULTS_OK; s++) {
        char node[32], addr[INET_ADDRSTRLEN] = "?";
        snprintf(node, sizeof node, "server%u", s);
        (void)inet_ntop(AF_INET, &st->addrs[s].sin_addr, addr, sizeof addr); /* fits */
        snprintf(detail, sizeof detail, "%s:%u %s, %s protocol%s%s", addr,
                 (unsigned)ntohs(st->addrs[s].sin_port),
                 p->transport.kind == CB_TRANSPORT_QUEUE
                     ? "(broker) child 'cachebed serve --broker'"
                 : st->pids[s] > 0 ? "child process 'cachebed serve'"
                                   : "existing server",
                 st->protocol == CB_CLIENT_PROTOCOL_TEXT ? "memcached text" : "binary",
                 codec[0] != '\0' ? ", codec: " : "", codec);
        rc = cb_results_add_event(db, run_id, 0, node, "server", detail);
    }
    snprintf(detail, sizeof detail,
             "user space, client side, both directions: latency_ns=%llu jitter_ns=%llu "
             "loss_ppm=%u loss=%s rto_ns=%llu bandwidth=not imposed",
             (unsigned long long)p->network.latency_ns, (unsigned long long)p->network.jitter_ns,
             p->network.loss_ppm,
             p->transport.kind == CB_TRANSPORT_UDP ? "drop" : "delay by rto_ns",
             (unsigned long long)p->transport.rto_min_ns);
    if (rc == CB_RESULTS_OK && p->transport.kind == CB_TRANSPORT_QUEUE) {
        char addr[INET_ADDRSTRLEN] = "?";
        (void)inet_ntop(AF_INET, &st->broker_addr.sin_addr, addr, sizeof addr);
        snprintf(detail, sizeof detail,
                 "%s:%u child process 'cachebed broker' (service time 0: real CPU); nodes: "
                 "servers 0..%u, clients %u..%u; impairment doubled: client-broker stands for "
                 "client-broker-server",
                 addr, (unsigned)ntohs(st->broker_addr.sin_port), p->servers.count - 1,
                 p->servers.count, p->servers.count + p->clients.count - 1);
        rc = cb_results_add_event(db, run_id, 0, "broker", "broker", detail);
        snprintf(detail, sizeof detail,
                 "user space, client side, both directions: latency_ns=%llu jitter_ns=%llu "
                 "loss_ppm=%u loss=delay by rto_ns rto_ns=%llu bandwidth=not imposed",
                 (unsigned long long)p->network.latency_ns * 2,
                 (unsigned long long)p->network.jitter_ns * 2, p->network.loss_ppm,
                 (unsigned long long)p->transport.rto_min_ns);
    }
    if (st->faults.count > 0) {
        size_t n = strlen(detail);
        snprintf(detail + n, sizeof detail - n,
                 "; faults: crash=SIGKILL of the server process, recover=restart on the same "
                 "port (empty), client crash/recover in the replay process, link "
                 "latency/jitter/loss and partitions in user space (client side), link "
                 "bandwidth not imposed%s",
                 p->transport.kind == CB_TRANSPORT_QUEUE
                     ? "; queue: a server is the broker's consumer (crash: the broker requeues "
                       "its unACKed deliveries; recover: a new consumer subscribes), broker "
                       "crash=SIGKILL (queues lost), recover=restart on the same port (empty), "
                       "consumers and clients reconnect and subscribe again; link and "
                       "partition per hop of client-broker-server"
                     : "");
        if (p->placement.resync == CB_PLAN_RESYNC_WARM && p->placement.replicas > 1) {
            n = strlen(detail);
            snprintf(detail + n, sizeof detail - n,
                     "; resync=warm: a resyncer in the replay process, over %s, starts once "
                     "the restarted server %s",
                     p->transport.kind == CB_TRANSPORT_UDP ? "udp" : "tcp",
                     p->transport.kind == CB_TRANSPORT_UDP ? "says it listens"
                                                           : "accepts a connection");
        }
    }
    if (rc == CB_RESULTS_OK) {
        rc = cb_results_add_event(db, run_id, 0, NULL, "impairment", detail);
    }
    if (rc != CB_RESULTS_OK) {
        fprintf(stderr, "cachebed replay: %s\n", cb_results_errmsg(db));
        return -1;
    }
    return 0;
}

static int replay_run(void *user, const cb_world_hooks *hooks, volatile sig_atomic_t *stop,
                      uint64_t *end_ns)
{
    replay_state *st = user;
    /* The stop flag is read through the world's config: set it before the run. */
    cb_realworld_set_stop(st->world, stop);
    int rc = cb_realworld_run(st->world, hooks, UINT64_MAX);
    *end_ns = cb_realworld_now_ns(st->world);
    cb_realworld_stats rs;
    cb_realworld_get_stats(st->world, &rs);
    if (st->plan->placement.resync == CB_PLAN_RESYNC_WARM && st->plan->placement.replicas > 1) {
        const cb_resync_stats *r = &rs.resync;
        fprintf(stderr,
                "cachebed replay: resync: %llu of %llu run(s) done, %llu SCAN(s) (%llu failed), "
                "%llu item(s) seen, %llu written (%llu stored, %llu superseded, %llu failed, "
                "%llu tombstones), %llu probe(s), %llu server(s) given up\n",
                (unsigned long long)r->runs_done, (unsigned long long)r->runs,
                (unsigned long long)r->scans, (unsigned long long)r->scans_failed,
                (unsigned long long)r->items_seen, (unsigned long long)r->writes,
                (unsigned long long)r->writes_stored, (unsigned long long)r->writes_superseded,
                (unsigned long long)r->writes_failed, (unsigned long long)r->tombstones,
                (unsigned long long)rs.resync_probes, (unsigned long long)rs.resync_given_up);
    }
    if (rs.nacked > 0) {
        fprintf(stderr, "cachebed replay: the broker refused %llu request(s) or replies\n",
                (unsigned long long)rs.nacked);
    }
    fprintf(stderr,
            "cachebed replay: %llu connection(s) (%llu failed), %llu message(s) delayed, "
            "%llu dropped and %llu retransmit-delayed by the loss draw, %llu cancelled, "
            "%llu closed by a server\n",
            (unsigned long long)rs.connects, (unsigned long long)rs.connect_failures,
            (unsigned long long)rs.delayed, (unsigned long long)rs.lost_dropped,
            (unsigned long long)rs.lost_delayed, (unsigned long long)rs.abandoned,
            (unsigned long long)rs.peer_closed);
    replay_check_restarts(st);
    if (replay_stop_servers(st) != 0) {
        fprintf(stderr, "cachebed replay: warning: a server did not exit cleanly\n");
    }
    return rc;
}

static void replay_close(void *user)
{
    replay_state *st = user;
    (void)replay_stop_servers(st); /* after a failed build or run: none left behind */
    cb_realworld_del(st->world);
    cb_sgfaults_free(&st->faults);
    free(st->restarted);
    free(st->holds);
    free(st->pipes);
    free(st->pids);
    free(st->addrs);
    memset(st, 0, sizeof *st);
}

int cb_cli_replay(const cb_cli_verb *verb, int argc, char **argv)
{
    (void)verb;
    static char *rest[REPLAY_ARGS_MAX];
    replay_state st;
    memset(&st, 0, sizeof st);
    st.broker_pipe = -1;
    st.broker_hold = -1;
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--servers") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cachebed replay: option '--servers' needs a value\n");
                return CB_CLI_EXIT_USAGE;
            }
            st.servers_opt = argv[++i];
        } else if (strcmp(argv[i], "--protocol") == 0) {
            const char *v = i + 1 < argc ? argv[++i] : "";
            if (strcmp(v, "text") != 0 && strcmp(v, "binary") != 0) {
                fprintf(stderr, "cachebed replay: --protocol: 'binary' or 'text'\n");
                return CB_CLI_EXIT_USAGE;
            }
            st.protocol = strcmp(v, "text") == 0 ? CB_CLIENT_PROTOCOL_TEXT : 0;
        } else if (n < REPLAY_ARGS_MAX) {
            rest[n++] = argv[i];
        } else {
            fprintf(stderr, "cachebed replay: too many arguments\n");
            return CB_CLI_EXIT_USAGE;
        }
    }
    cb_cli_world_ops ops = {"replay",     "real",      "elapsed",  &st,         replay_unsupported,
                            replay_build, replay_note, replay_run, replay_close};
    return cb_cli_run_world(n, rest, &ops);
}
