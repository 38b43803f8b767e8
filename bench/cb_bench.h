/*
 * cb_bench.h: benchmarks reached through `cachebed bench NAME`.
 *
 * Each takes the arguments after its name and returns an exit status (0 ok, 1 failed,
 * 2 bad usage). They print figures to stdout; they never assert absolute times.
 */
#ifndef CB_BENCH_H
#define CB_BENCH_H

/* `cachebed bench store`: GET/SET ops/s and bytes per item of cb_store (bench/cb_bench_store.c). */
int cb_bench_store(int argc, char **argv);

/* `cachebed bench placement`: balance, movement and lookup cost of every placement strategy
 * (bench/cb_bench_placement.c). */
int cb_bench_placement(int argc, char **argv);

/* `cachebed bench sim`: the SimGrid driver's requests per wall second, against a bare SimGrid
 * ping-pong of the same shape in the same run (bench/cb_bench_sim.c). */
int cb_bench_sim(int argc, char **argv);

/* `cachebed bench logging`: one simulation with and without the results database, the CPU
 * ratio being what logging costs a run (bench/cb_bench_logging.c). */
int cb_bench_logging(int argc, char **argv);

/* `cachebed bench codec`: bytes saved and ns per KiB of lz4, zstd and sealing on the workload
 * value-size distributions, with break-even link speeds (bench/cb_bench_codec.c). */
int cb_bench_codec(int argc, char **argv);

/* `cachebed bench serve`: `cachebed serve` against memcached -t 1 under the same pipelined
 * text load, ops/s, p50/p99 latency and their ratio (bench/cb_bench_serve.c). */
int cb_bench_serve(int argc, char **argv);

#endif
