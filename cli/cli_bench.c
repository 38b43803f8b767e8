/* cli_bench.c: `cachebed bench NAME` — dispatch to the benchmarks in bench/. */
#include "cb_cli.h"
#include "cb_bench.h"

#include <stdio.h>
#include <string.h>

typedef struct cli_bench_entry {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv);
} cli_bench_entry;

static const cli_bench_entry cli_benches[] = {
    {"store", "GET/SET operations per second and bytes per item of the store", cb_bench_store},
    {"placement", "balance, key movement, lookup ns of each placement strategy",
     cb_bench_placement},
    {"sim", "SimGrid driver vs bare SimGrid, requests per wall second", cb_bench_sim},
    {"codec", "lz4/zstd bytes saved and ns per KiB, seal/open cost, break-even link speed",
     cb_bench_codec},
    {"logging", "what recording every request costs a simulation", cb_bench_logging},
    {"serve", "cachebed serve vs memcached -t 1, ops/s and latency", cb_bench_serve},
    {NULL, NULL, NULL},
};

const char cb_cli_bench_help[] =
    "usage: cachebed bench NAME [OPTIONS]\n"
    "\n"
    "Benchmarks print their figures (and, where they compare, ratios measured in the same\n"
    "run). They are never part of the test suite. Benchmarks:\n"
    "  store     GET/SET ops/s on 10^6 keys of 32 B with 100 B values, bytes per item\n"
    "            options: --keys N (default 1000000) --value-bytes N (default 100)\n"
    "                     --key-bytes N (default 32) --seed N\n"
    "  placement load balance (max/mean, cv), keys moved on add/remove (ratio to 1/N) and\n"
    "            lookup ns (R=1, R=3) of modulo, ketama, rendezvous, jump, maglev\n"
    "            options: --keys N (default 1000000) --nodes LIST (default 10,100,1000)\n"
    "                     --seed N (default 1) --maglev-table M (prime, default 65537)\n"
    "                     -o FILE (also write the figures to results database FILE)\n"
    "  sim       the SimGrid driver (1,000 clients, 100 servers, 10^6 requests over TCP):\n"
    "            wall and cpu seconds, requests per wall second, peak RSS, and the same for\n"
    "            a bare SimGrid ping-pong of the same shape, with their ratio\n"
    "            options: --clients LIST (default 1000; 1000,10000: one case each)\n"
    "                     --servers N (default 100) --requests N (default 1000000) --seed N\n"
    "                     --factory raw|boost|ucontext|thread --only driver|bare\n"
    "                     --bare port|detached (default port: kept sends, as the driver)\n"
    "                     --rounds R (1: R > 1 alternates which runs first and prints the\n"
    "                     median ratio)\n"
    "  codec     lz4 and zstd (levels 1, 3, 9): share of value bytes saved, compress and\n"
    "            decompress ns per KiB, break-even link speed; seal/open ns per KiB and\n"
    "            overhead; on fixed, uniform, log-normal and Facebook ETC (generalized\n"
    "            Pareto) value sizes, JSON-like and letter content\n"
    "            options: --values N (default 2000) --reps R (default 3) --seed N\n"
    "  logging   one simulation (Zipf keys, 90% GET, 100 B values) with and without the\n"
    "            results database: CPU and wall seconds and the overhead of logging\n"
    "            options: --requests N (default 1000000) --clients N (default 100)\n"
    "                     --world sim|memnet (default sim)\n"
    "  serve     `cachebed serve` and `memcached -t 1 -m 64` (each a child process on a\n"
    "            loopback port) under the same pipelined text load from one generator:\n"
    "            ops/s, p50/p99 latency of each and the ratio\n"
    "            options: --conns C (16) --depth D (8) --seconds S (5) --keys K (10000)\n"
    "                     --value-bytes V (32) --get-percent G (90) --seed N (1)\n"
    "                     --threads T (1) --rounds R (1: R > 1 alternates the servers and\n"
    "                     prints the median ratio)\n";

int cb_cli_bench(const cb_cli_verb *verb, int argc, char **argv)
{
    (void)verb;
    if (argc < 1) {
        fputs(cb_cli_bench_help, stderr);
        return CB_CLI_EXIT_USAGE;
    }
    for (size_t i = 0; cli_benches[i].name != NULL; i++) {
        if (strcmp(cli_benches[i].name, argv[0]) == 0) {
            return cli_benches[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "cachebed bench: unknown benchmark '%s' (try 'cachebed bench --help')\n",
            argv[0]);
    return CB_CLI_EXIT_USAGE;
}
