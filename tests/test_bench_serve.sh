#!/bin/sh
# test_bench_serve.sh: a short `cachebed bench serve --rounds 2` against Debian's memcached
# (docs/real.md §7): two rounds, each with a cachebed and a memcached line with operations
# done and no errors, the server's CPU per operation measured, and a median ratio.
# Usage: test_bench_serve.sh path/to/cachebed. Skips (exit 0) if memcached is not installed.
set -u
bin=$1
command -v memcached >/dev/null 2>&1 || { echo "SKIP memcached not installed"; exit 0; }
out=$(timeout 60 "$bin" bench serve --conns 4 --depth 2 --seconds 1 --keys 100 --rounds 2 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL exit status $rc"; exit 1; }
fails=0
[ "$(echo "$out" | grep -c '^round ')" -eq 2 ] || { echo "FAIL not 2 rounds"; fails=1; }
for srv in cachebed memcached; do
    # columns: name ops/s p50 p99 ops misses errors srv_us/op ...
    n=$(echo "$out" | awk -v s=$srv '$1 == s && $5 > 0 && $7 == 0 && $8 > 0' | wc -l)
    [ "$n" -eq 2 ] || { echo "FAIL $srv: want 2 runs with ops > 0, 0 errors, CPU/op > 0"; fails=1; }
done
echo "$out" | grep -q '^median ratio over 2 rounds: [0-9]' || { echo "FAIL no median"; fails=1; }
[ $fails -eq 0 ] && echo "PASS bench serve --rounds 2"
exit $fails
