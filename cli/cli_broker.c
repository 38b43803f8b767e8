/* cli_broker.c: `cachebed broker` — parse the options, run real/cb_brokerd until signalled. */
#include "cb_cli.h"

#include <stdio.h>
#include <string.h>

#include "cb_brokerd.h"
#include "cb_limits.h"
#include "cb_seal.h"
#include "cb_units.h"

const char cb_cli_broker_help[] =
    "usage: cachebed broker [--port P] [--bind ADDR] [--queue-limit N] [--ack-timeout 1s]\n"
    "                       [--service-time 0] [--delivery-max N] [--node-max N]\n"
    "                       [--conn-max N] [--value-max 1MiB] [--listen-fd N]\n"
    "\n"
    "The queue transport's broker (docs/protocol.md §10, docs/real.md §10) as a real process\n"
    "on one epoll loop. Endpoints connect over TCP, SUBSCRIBE as a node, PUBLISH cache frames\n"
    "to other nodes; the broker queues them per node and DELIVERs them to the node's\n"
    "subscriber, redelivering what is not ACKed in time. It prints 'listening on ...' and\n"
    "runs until SIGINT or SIGTERM, then closes every connection, prints its counters and\n"
    "exits 0. Messages live in memory only: a stopped broker loses what it held.\n"
    "\n"
    "  --port P           TCP port (default 11411; 0 picks a free one)\n"
    "  --bind ADDR        numeric IPv4 or IPv6 address to bind (default 127.0.0.1)\n"
    "  --queue-limit N    messages held at once, queued or unacknowledged (default 65536)\n"
    "  --ack-timeout D    redeliver a delivery not ACKed within D (default 1s)\n"
    "  --service-time D   pace deliveries to one per D (default 0: real CPU is the service)\n"
    "  --delivery-max N   drop a message after N deliveries (default 0: never)\n"
    "  --node-max N       node ids 0..N-1 (default 1024)\n"
    "  --conn-max N       TCP connections at once (default 1024; needs N+32 descriptors)\n"
    "  --value-max SIZE   largest value in a carried frame (default 1MiB, at most 128MiB)\n"
    "  --listen-fd N      serve on inherited descriptor N, a TCP socket already bound and\n"
    "                     listening, instead of --port/--bind ('cachebed replay' restarts a\n"
    "                     crashed broker so: its port accepts from the recovery on)\n";

static int cli_broker_uint(const char *opt, const char *text, uint64_t min, uint64_t max,
                           uint64_t *out)
{
    char err[128];
    if (cb_units_parse_uint(text, out, err, sizeof err) != 0 || *out < min || *out > max) {
        fprintf(stderr, "cachebed broker: %s '%s': expected %llu..%llu\n", opt, text,
                (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    return 0;
}

static int cli_broker_duration(const char *opt, const char *text, uint64_t *out)
{
    char err[160];
    if (cb_units_parse_duration(text, CB_UNITS_BARE_OK, out, err, sizeof err) != 0) {
        fprintf(stderr, "cachebed broker: %s '%s': %s\n", opt, text, err);
        return -1;
    }
    return 0;
}

/* One option with its value; returns 0, or -1 (message printed). */
static int cli_broker_option(cb_brokerd_config *c, const char *opt, const char *val)
{
    uint64_t v = 0;
    int rc;
    if (strcmp(opt, "--port") == 0) {
        rc = cli_broker_uint(opt, val, 0, 65535, &v);
        c->port = (uint16_t)v;
    } else if (strcmp(opt, "--listen-fd") == 0) {
        rc = cli_broker_uint(opt, val, 3, 1u << 20, &v);
        c->listen_fd = (int)v;
    } else if (strcmp(opt, "--bind") == 0) {
        c->listen_addr = val;
        rc = 0;
    } else if (strcmp(opt, "--queue-limit") == 0) {
        rc = cli_broker_uint(opt, val, 1, 1u << 24, &v);
        c->broker.queue_limit = (uint32_t)v;
    } else if (strcmp(opt, "--ack-timeout") == 0) {
        rc = cli_broker_duration(opt, val, &c->broker.ack_timeout_ns);
        if (rc == 0 && c->broker.ack_timeout_ns == 0) {
            fprintf(stderr, "cachebed broker: --ack-timeout must be above 0\n");
            rc = -1;
        }
    } else if (strcmp(opt, "--service-time") == 0) {
        rc = cli_broker_duration(opt, val, &c->broker.service_ns);
    } else if (strcmp(opt, "--delivery-max") == 0) {
        rc = cli_broker_uint(opt, val, 0, UINT32_MAX, &v);
        c->broker.delivery_max = (uint32_t)v;
    } else if (strcmp(opt, "--node-max") == 0) {
        rc = cli_broker_uint(opt, val, 1, 1u << 20, &v);
        c->broker.node_max = (uint32_t)v;
    } else if (strcmp(opt, "--conn-max") == 0) {
        rc = cli_broker_uint(opt, val, 1, 1u << 20, &v);
        c->broker.conn_max = (uint32_t)v;
    } else if (strcmp(opt, "--value-max") == 0) {
        char err[160];
        rc = cb_units_parse_size(val, CB_UNITS_BARE_OK, &v, err, sizeof err);
        if (rc != 0 || v > CB_VALUE_BYTES_LIMIT) {
            fprintf(stderr, "cachebed broker: --value-max '%s': %s\n", val,
                    rc != 0 ? err : "above 128MiB");
            return -1;
        }
        /* and a sealed frame's growth (the codec's, docs/protocol.md §6) */
        c->broker.payload_bytes_max =
            (uint32_t)(CB_FRAME_HEADER_BYTES + CB_KEY_BYTES_MAX + v + CB_SEAL_OVERHEAD_MAX);
    } else {
        fprintf(stderr, "cachebed broker: unknown option '%s' (try 'cachebed broker --help')\n",
                opt);
        return -1;
    }
    return rc;
}

static int cli_broker_parse(int argc, char **argv, cb_brokerd_config *c)
{
    memset(c, 0, sizeof *c);
    c->broker = cb_broker_config_default();
    c->port = 11411;
    c->handle_signals = 1;
    for (int i = 0; i < argc; i++) {
        if (i + 1 >= argc || strncmp(argv[i], "--", 2) != 0) {
            fprintf(stderr, "cachebed broker: '%s' %s (try 'cachebed broker --help')\n", argv[i],
                    strncmp(argv[i], "--", 2) == 0 ? "needs a value" : "is not an option");
            return -1;
        }
        if (cli_broker_option(c, argv[i], argv[i + 1]) != 0) {
            return -1;
        }
        i++;
    }
    return 0;
}

static void cli_broker_report(const cb_brokerd *b)
{
    cb_brokerd_stats st;
    cb_brokerd_get_stats(b, &st);
    const cb_broker_stats *m = &st.broker;
    printf("stopped: %llu connections (%llu refused, %llu closed for not reading, %llu for bad "
           "input); published %llu, rejected %llu, delivered %llu (redelivered %llu), acked "
           "%llu, dropped %llu, unknown acks %llu, held %llu (at most %llu)\n",
           (unsigned long long)st.accepted, (unsigned long long)st.refused,
           (unsigned long long)st.closed_slow, (unsigned long long)st.closed_by_protocol,
           (unsigned long long)m->published, (unsigned long long)m->rejected,
           (unsigned long long)m->delivered, (unsigned long long)m->redelivered,
           (unsigned long long)m->acked, (unsigned long long)m->dropped,
           (unsigned long long)m->unknown_acks, (unsigned long long)m->depth,
           (unsigned long long)m->depth_max);
}

int cb_cli_broker(const cb_cli_verb *verb, int argc, char **argv)
{
    (void)verb;
    cb_brokerd_config cfg;
    if (cli_broker_parse(argc, argv, &cfg) != 0) {
        return CB_CLI_EXIT_USAGE;
    }
    char err[256];
    cb_brokerd *b = NULL;
    if (cb_brokerd_new(&cfg, &b, err, sizeof err) != 0) {
        fprintf(stderr, "cachebed broker: %s\n", err);
        return CB_CLI_EXIT_FAILED;
    }
    printf("listening on %s port %u (broker)\n",
           cfg.listen_addr != NULL ? cfg.listen_addr : "127.0.0.1", (unsigned)cb_brokerd_port(b));
    fflush(stdout);
    int rc = cb_brokerd_run(b);
    cli_broker_report(b);
    cb_brokerd_del(b);
    return rc == 0 ? CB_CLI_EXIT_OK : CB_CLI_EXIT_FAILED;
}
