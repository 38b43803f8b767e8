/* cli_serve_queue.c: `cachebed serve --broker HOST:PORT --node N` — the cache server as a
 * queue consumer (real/cb_serve_queue, docs/real.md §10.2). cli_serve.c parses the options
 * and hands them here. */
#include "cb_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_serve.h"
#include "cb_serve_queue.h"

int cb_cli_serve_queue(const cb_serve_config *sc, const char *broker, uint32_t node,
                       uint64_t reconnect_ns, uint64_t connect_wait_ns)
{
    if (sc->udp) {
        fprintf(stderr, "cachebed serve: --udp-port has no meaning with --broker (the broker "
                        "speaks TCP only)\n");
        return CB_CLI_EXIT_USAGE;
    }
    char host[64];
    const char *colon = strrchr(broker, ':');
    char *end = NULL;
    unsigned long port = colon != NULL ? strtoul(colon + 1, &end, 10) : 0;
    if (colon == NULL || (size_t)(colon - broker) >= sizeof host || end == colon + 1 ||
        *end != '\0' || port == 0 || port > 65535) {
        fprintf(stderr, "cachebed serve: --broker '%s': expected HOST:PORT\n", broker);
        return CB_CLI_EXIT_USAGE;
    }
    memcpy(host, broker, (size_t)(colon - broker));
    host[colon - broker] = '\0';
    cb_serveq_config cfg = {
        .broker_host = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
        .broker_port = (uint16_t)port,
        .node = node,
        .reconnect_ns = reconnect_ns,
        .connect_wait_ns = connect_wait_ns,
        .server = sc->server,
        .handle_signals = sc->handle_signals,
    };
    char err[256];
    cb_serveq *q = NULL;
    if (cb_serveq_new(&cfg, &q, err, sizeof err) != 0) {
        fprintf(stderr, "cachebed serve: %s\n", err);
        return CB_CLI_EXIT_FAILED;
    }
    printf("subscribed to broker %s port %lu as node %u (queue)\n", cfg.broker_host, port, node);
    fflush(stdout);
    int rc = cb_serveq_run(q);
    cb_serveq_stats st;
    cb_serveq_get_stats(q, &st);
    printf("stopped: %llu deliveries (%llu redelivered, %llu from unknown nodes), %llu requests, "
           "%llu replies refused by the broker, %llu disconnects, %llu reconnects\n",
           (unsigned long long)st.deliveries, (unsigned long long)st.redeliveries,
           (unsigned long long)st.dropped, (unsigned long long)st.server.requests,
           (unsigned long long)st.nacked, (unsigned long long)st.disconnects,
           (unsigned long long)st.reconnects);
    cb_serveq_del(q);
    return rc == 0 ? CB_CLI_EXIT_OK : CB_CLI_EXIT_FAILED;
}
