/* cli_serve.c: `cachebed serve` — parse the options, run real/cb_serve until signalled. */
#include "cb_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cb_compress.h"
#include "cb_err.h"
#include "cb_limits.h"
#include "cb_seal.h"
#include "cb_serve.h"
#include "cb_udp_peers.h"
#include "cb_units.h"

const char cb_cli_serve_help[] =
    "usage: cachebed serve [--port P] [--udp-port U] [--listen ADDR] [--memory 64MiB]\n"
    "                      [--value-max 1MiB] [--conn-max N] [--threads 1] [--udp-peers N]\n"
    "                      [--compression lz4|zstd[:LEVEL]] [--compress-min BYTES]\n"
    "                      [--key-file PATH] [--seal-mode stream|datagram]\n"
    "\n"
    "A real cache server on epoll loops (docs/real.md). On its TCP port it speaks\n"
    "cachebed's binary frame and the memcached text protocol (classic and meta commands),\n"
    "chosen by each connection's first byte, so stock memcached clients work unchanged.\n"
    "With --udp-port it also speaks memcached's UDP framing. It prints 'listening on ...'\n"
    "and serves until SIGINT or SIGTERM, then closes every connection and exits 0.\n"
    "\n"
    "  --port P         TCP port (default 11311; 0 picks a free one)\n"
    "  --udp-port U     also serve UDP on port U (0 picks a free one; default: no UDP)\n"
    "  --udp-peers N    UDP peers (address and port) remembered per thread, each with its own\n"
    "                   state and seal session; the least recent is dropped for a new one\n"
    "                   (default 1024; 1..65536; docs/real.md §6)\n"
    "  --listen ADDR    numeric IPv4 or IPv6 address to bind (default 127.0.0.1)\n"
    "  --memory SIZE    store memory cap (default 64MiB)\n"
    "  --value-max SIZE largest value (default 1MiB, at most 128MiB)\n"
    "  --conn-max N     TCP connections at once (default 1024; needs N+32 descriptors)\n"
    "  --threads N      event loops, one per thread, sharing one store split into locked\n"
    "                   shards (default 1; at most 64; docs/real.md §5)\n"
    "  --broker H:P     queue consumer: no listener; connect to the broker at H:P, subscribe\n"
    "                   as --node N and serve the requests it delivers (docs/real.md §10);\n"
    "                   --conn-max bounds the node ids served; --port, --listen unused\n"
    "  --node N         this server's node id with --broker (default 0)\n"
    "  --reconnect T    with --broker: how often to retry a lost broker (default 200ms)\n"
    "  --connect-wait T with --broker: if the broker refuses the first connect, retry for\n"
    "                   up to T (default 0: exit 1 at once)\n"
    "\n"
    "Codec (cachebed's binary frame only; docs/protocol.md §5-§6). Both ends must agree:\n"
    "these mirror a scenario's [transport] compression, compression_level, compression_min\n"
    "and encryption_key_file, and 'cachebed replay' passes them to the servers it starts.\n"
    "  --compression A  compress values in replies: lz4, zstd or zstd:LEVEL (1..19, default\n"
    "                   3); compressed requests in that algorithm are accepted\n"
    "  --compress-min N shortest value compressed (default 128B; 1: every value)\n"
    "  --key-file PATH  seal every frame with this key ('cachebed keygen'); clear frames and\n"
    "                   frames sealed with another key are refused (the connection closed)\n"
    "  --seal-mode M    stream (default; TCP) or datagram (default with --udp-port: UDP\n"
    "                   clients seal each datagram on its own, and with --broker: queue\n"
    "                   messages may be redelivered)\n"
    "With --broker the codec is connectionless (no HELLO): both ends configured alike.\n";

typedef struct cli_serve_args {
    cb_serve_config cfg;
    const char *broker; /* --broker: queue consumer mode */
    uint32_t node;
    uint64_t reconnect_ns; /* --reconnect, with --broker; 0: the default */
    uint64_t connect_wait_ns; /* --connect-wait, with --broker */
    cb_seal_key key; /* --key-file: cfg.server.codec.seal_key points here */
    uint8_t seal_mode; /* --seal-mode: 0 (by transport), CB_SEAL_STREAM or CB_SEAL_DATAGRAM */
} cli_serve_args;

/* --compression ALG[:LEVEL]. */
static int cli_serve_compression(cli_serve_args *a, const char *val)
{
    cb_codec_config *c = &a->cfg.server.codec;
    const char *colon = strchr(val, ':');
    size_t name_len = colon != NULL ? (size_t)(colon - val) : strlen(val);
    uint64_t level = 0;
    char err[128];
    if (name_len == 3 && strncmp(val, "lz4", 3) == 0) {
        c->compress_alg = CB_COMPRESS_LZ4;
    } else if (name_len == 4 && strncmp(val, "zstd", 4) == 0) {
        c->compress_alg = CB_COMPRESS_ZSTD;
    } else {
        fprintf(stderr, "cachebed serve: --compression '%s': lz4, zstd or zstd:LEVEL\n", val);
        return -1;
    }
    if (colon != NULL) {
        uint64_t max = c->compress_alg == CB_COMPRESS_ZSTD ? CB_COMPRESS_ZSTD_LEVEL_MAX : 65537u;
        if (cb_units_parse_uint(colon + 1, &level, err, sizeof err) != 0 || level < 1 ||
            level > max) {
            fprintf(stderr, "cachebed serve: --compression '%s': level 1..%llu\n", val,
                    (unsigned long long)max);
            return -1;
        }
    }
    c->compress_level = (int32_t)level;
    return 0;
}

/* --key-file PATH: load it (cb_cli_load_key says what is wrong). */
static int cli_serve_key(cli_serve_args *a, const char *path)
{
    if (cb_cli_load_key(path, &a->key, stderr) != 0) {
        fprintf(stderr, "cachebed serve: --key-file %s: no usable key\n", path);
        return -1;
    }
    a->cfg.server.codec.seal_key = &a->key;
    return 0;
}

static int cli_serve_port(const char *text, uint16_t *out)
{
    uint64_t v;
    char err[128];
    if (cb_units_parse_uint(text, &v, err, sizeof err) != 0 || v > 65535) {
        fprintf(stderr, "cachebed serve: bad port '%s' (0..65535)\n", text);
        return -1;
    }
    *out = (uint16_t)v;
    return 0;
}

static int cli_serve_size(const char *opt, const char *text, uint64_t max, uint64_t *out)
{
    char err[160];
    if (cb_units_parse_size(text, CB_UNITS_BARE_OK, out, err, sizeof err) != 0) {
        fprintf(stderr, "cachebed serve: %s '%s': %s\n", opt, text, err);
        return -1;
    }
    if (*out > max) {
        fprintf(stderr, "cachebed serve: %s '%s' is above %llu bytes\n", opt, text,
                (unsigned long long)max);
        return -1;
    }
    return 0;
}

static int cli_serve_count(const char *opt, const char *text, uint64_t min, uint64_t max,
                           uint64_t *out)
{
    char err[128];
    if (cb_units_parse_uint(text, out, err, sizeof err) != 0 || *out < min || *out > max) {
        fprintf(stderr, "cachebed serve: %s '%s': expected %llu..%llu\n", opt, text,
                (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    return 0;
}

/* One option with its value; returns 0, or -1 (message printed). */
static int cli_serve_option(cli_serve_args *a, const char *opt, const char *val)
{
    uint64_t v;
    if (strcmp(opt, "--port") == 0) {
        return cli_serve_port(val, &a->cfg.port);
    }
    if (strcmp(opt, "--udp-port") == 0) {
        a->cfg.udp = 1;
        return cli_serve_port(val, &a->cfg.udp_port);
    }
    if (strcmp(opt, "--listen") == 0) {
        a->cfg.listen_addr = val;
        return 0;
    }
    if (strcmp(opt, "--memory") == 0) {
        return cli_serve_size(opt, val, UINT64_MAX, &a->cfg.server.store.memory_bytes_max);
    }
    if (strcmp(opt, "--value-max") == 0) {
        int rc = cli_serve_size(opt, val, CB_VALUE_BYTES_LIMIT, &v);
        a->cfg.server.store.value_bytes_max = (uint32_t)v;
        return rc;
    }
    if (strcmp(opt, "--udp-peers") == 0) {
        int rc = cli_serve_count(opt, val, 1, CB_UDP_PEERS_MAX, &v);
        a->cfg.udp_peers_max = (uint32_t)v;
        return rc;
    }
    if (strcmp(opt, "--conn-max") == 0) {
        int rc = cli_serve_count(opt, val, 1, 1u << 20, &v);
        a->cfg.server.conn_max = (uint32_t)v;
        return rc;
    }
    if (strcmp(opt, "--compression") == 0) {
        return cli_serve_compression(a, val);
    }
    if (strcmp(opt, "--compress-min") == 0) {
        int rc = cli_serve_size(opt, val, CB_VALUE_BYTES_LIMIT, &v);
        a->cfg.server.codec.compress_threshold_bytes = v > 0 ? (uint32_t)v : 1u;
        return rc;
    }
    if (strcmp(opt, "--key-file") == 0) {
        return cli_serve_key(a, val);
    }
    if (strcmp(opt, "--seal-mode") == 0) {
        if (strcmp(val, "stream") != 0 && strcmp(val, "datagram") != 0) {
            fprintf(stderr, "cachebed serve: --seal-mode '%s': stream or datagram\n", val);
            return -1;
        }
        a->seal_mode = strcmp(val, "stream") == 0 ? CB_SEAL_STREAM : CB_SEAL_DATAGRAM;
        return 0;
    }
    if (strcmp(opt, "--threads") == 0) {
        int rc = cli_serve_count(opt, val, 1, CB_SERVE_THREADS_MAX, &v);
        a->cfg.threads = (uint32_t)v;
        return rc;
    }
    if (strcmp(opt, "--broker") == 0) {
        a->broker = val;
        return 0;
    }
    if (strcmp(opt, "--reconnect") == 0) {
        char err[160];
        if (cb_units_parse_duration(val, 0, &a->reconnect_ns, err, sizeof err) != 0 ||
            a->reconnect_ns == 0) {
            fprintf(stderr, "cachebed serve: --reconnect '%s': %s\n", val,
                    a->reconnect_ns == 0 ? "a duration above 0" : err);
            return -1;
        }
        return 0;
    }
    if (strcmp(opt, "--connect-wait") == 0) {
        char err[160];
        if (cb_units_parse_duration(val, 0, &a->connect_wait_ns, err, sizeof err) != 0) {
            fprintf(stderr, "cachebed serve: --connect-wait '%s': %s\n", val, err);
            return -1;
        }
        return 0;
    }
    if (strcmp(opt, "--node") == 0) {
        int rc = cli_serve_count(opt, val, 0, (1u << 20) - 1, &v);
        a->node = (uint32_t)v;
        return rc;
    }
    fprintf(stderr, "cachebed serve: unknown option '%s' (try 'cachebed serve --help')\n", opt);
    return -1;
}

/* Finish the codec once every option is read: the seal mode and the salts' seed. */
static int cli_serve_codec(cli_serve_args *a)
{
    cb_codec_config *c = &a->cfg.server.codec;
    /* The queue has no connections: no HELLO, both ends configured alike (protocol §5.3). */
    c->connectionless = a->broker != NULL;
    if (c->seal_key == NULL) {
        if (a->seal_mode != 0) {
            fprintf(stderr, "cachebed serve: --seal-mode needs --key-file\n");
            return -1;
        }
        return 0;
    }
    c->seal_mode = a->seal_mode != 0                 ? a->seal_mode
                   : a->cfg.udp || a->broker != NULL ? CB_SEAL_DATAGRAM
                                                     : CB_SEAL_STREAM;
    /* A key file outlives runs: the salts' seed comes from the OS generator, never a
     * seeded one (docs/protocol.md §6.2). */
    if (cb_seal_global_init() != CB_ERR_OK) {
        fprintf(stderr, "cachebed serve: libsodium did not initialise\n");
        return -1;
    }
    randombytes_buf(&c->seal_seed, sizeof c->seal_seed);
    return 0;
}

static int cli_serve_parse(int argc, char **argv, cli_serve_args *a)
{
    memset(a, 0, sizeof *a);
    a->cfg.server = cb_server_config_default();
    a->cfg.port = 11311;
    a->cfg.handle_signals = 1;
    for (int i = 0; i < argc; i++) {
        if (i + 1 >= argc || strncmp(argv[i], "--", 2) != 0) {
            fprintf(stderr, "cachebed serve: '%s' %s (try 'cachebed serve --help')\n", argv[i],
                    strncmp(argv[i], "--", 2) == 0 ? "needs a value" : "is not an option");
            return -1;
        }
        if (cli_serve_option(a, argv[i], argv[i + 1]) != 0) {
            return -1;
        }
        i++;
    }
    return cli_serve_codec(a);
}

static void cli_serve_report(const cb_serve *s)
{
    cb_serve_stats st;
    cb_serve_get_stats(s, &st);
    printf("stopped: %llu connections served (%llu refused, %llu closed for not reading), "
           "%llu requests, %llu UDP datagrams (%llu dropped) from %llu peers (%llu evicted), "
           "%llu frames rejected by the codec, %u threads, %u shards\n",
           (unsigned long long)st.accepted, (unsigned long long)st.refused,
           (unsigned long long)st.closed_slow, (unsigned long long)st.server.requests,
           (unsigned long long)st.udp_datagrams, (unsigned long long)st.udp_dropped,
           (unsigned long long)st.udp_peers_added, (unsigned long long)st.udp_peers_evicted,
           (unsigned long long)st.server.frames_rejected, cb_serve_threads(s), cb_serve_shards(s));
}

int cb_cli_serve(const cb_cli_verb *verb, int argc, char **argv)
{
    (void)verb;
    cli_serve_args a;
    if (cli_serve_parse(argc, argv, &a) != 0) {
        sodium_memzero(&a.key, sizeof a.key);
        return CB_CLI_EXIT_USAGE;
    }
    if (a.broker != NULL) {
        return cb_cli_serve_queue(&a.cfg, a.broker, a.node, a.reconnect_ns, a.connect_wait_ns);
    }
    char err[256];
    cb_serve *s = NULL;
    if (cb_serve_new(&a.cfg, &s, err, sizeof err) != 0) {
        fprintf(stderr, "cachebed serve: %s\n", err);
        return CB_CLI_EXIT_FAILED;
    }
    const char *host = a.cfg.listen_addr != NULL ? a.cfg.listen_addr : "127.0.0.1";
    printf("listening on %s port %u (tcp)", host, (unsigned)cb_serve_port(s));
    if (a.cfg.udp) {
        printf(" and port %u (udp)", (unsigned)cb_serve_udp_port(s));
    }
    printf("\n");
    fflush(stdout);
    int rc = cb_serve_run(s);
    cli_serve_report(s);
    cb_serve_del(s);
    sodium_memzero(&a.key, sizeof a.key);
    return rc == 0 ? CB_CLI_EXIT_OK : CB_CLI_EXIT_FAILED;
}
