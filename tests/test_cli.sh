#!/bin/sh
# test_cli.sh: the cachebed command's contract — help lists every verb, VERB --help explains
# it, unknown verbs and options exit 2 with a message. Usage: test_cli.sh path/to/cachebed
set -u
bin=$1
fails=0
check() { # check NAME EXPECTED_STATUS COMMAND...
    name=$1; want=$2; shift 2
    out=$("$@" 2>&1); got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL $name: exit $got, want $want; output:"; echo "$out"; fails=$((fails + 1))
    else
        echo "ok   $name"
    fi
}
check help 0 "$bin" --help
for verb in run compare check merge replay serve broker query report bench keygen; do
    "$bin" --help | grep -q "^  $verb " || { echo "FAIL help lists $verb"; fails=$((fails + 1)); }
    check "$verb --help" 0 "$bin" "$verb" --help
done
check "no args" 2 "$bin"
check "unknown verb" 2 "$bin" frobnicate
check "unknown option" 2 "$bin" --frobnicate
"$bin" frobnicate 2>&1 | grep -q "unknown verb 'frobnicate'" || { echo "FAIL unknown verb message"; fails=$((fails + 1)); }
check "bench unknown" 2 "$bin" bench nosuch
check "broker unknown option" 2 "$bin" broker --frobnicate 1
check "broker bad ack timeout" 2 "$bin" broker --ack-timeout 0s
check "serve --broker not HOST:PORT" 2 "$bin" serve --broker nocolon
check "serve --broker nobody there" 1 "$bin" serve --broker 127.0.0.1:1 --node 0
check "serve --broker with udp" 2 "$bin" serve --broker 127.0.0.1:1 --udp-port 0
check version 0 "$bin" --version

# query: a small database made with the sqlite3 shell (a listed dependency, see setup).
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
sqlite3 "$tmp/r.db" "CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'x,y'), (2, NULL);" ||
    { echo "FAIL cannot make a database with sqlite3"; fails=$((fails + 1)); }
expect_out() { # expect_out NAME EXPECTED. COMMAND...: stdout must equal EXPECTED exactly
    # (both carry a final '.' so that $(...) keeps trailing newlines)
    name=$1; want=${2%.}; shift 2
    got=$("$@"; echo .) ; got=${got%.}
    if [ "$got" != "$want" ]; then
        echo "FAIL $name: output differs; got:"; printf '%s' "$got" | od -c | head -5
        fails=$((fails + 1))
    else
        echo "ok   $name"
    fi
}
check "query table" 0 "$bin" query "$tmp/r.db" "SELECT * FROM t"
expect_out "query table output" "$(printf 'a | b\n--+-----\n1 | x,y\n2 | NULL\n(2 rows)\n.')" \
    "$bin" query "$tmp/r.db" "SELECT * FROM t ORDER BY a"
expect_out "query --csv output" "$(printf 'a,b\r\n1,"x,y"\r\n2,\r\n.')" \
    "$bin" query "$tmp/r.db" "SELECT * FROM t ORDER BY a" --csv
expect_out "query --json output" "$(printf '[\n{"a":1,"b":"x,y"},\n{"a":2,"b":null}\n]\n.')" \
    "$bin" query "$tmp/r.db" --json "SELECT * FROM t ORDER BY a"
check "query bad SQL" 1 "$bin" query "$tmp/r.db" "SELEC 1"
"$bin" query "$tmp/r.db" "SELEC 1" 2>&1 >/dev/null | grep -q 'syntax error' ||
    { echo "FAIL query bad SQL message"; fails=$((fails + 1)); }
check "query two statements" 1 "$bin" query "$tmp/r.db" "SELECT 1; SELECT 2"
# keygen: a new 0600 key file, never overwritten; --check loads it strictly.
check "keygen" 0 "$bin" keygen "$tmp/k1"
[ "$(stat -c %a "$tmp/k1")" = 600 ] || { echo "FAIL keygen mode"; fails=$((fails + 1)); }
[ "$(stat -c %s "$tmp/k1")" = 65 ] || { echo "FAIL keygen size"; fails=$((fails + 1)); }
grep -Eq '^[0-9a-f]{64}$' "$tmp/k1" || { echo "FAIL keygen format"; fails=$((fails + 1)); }
check "keygen refuses to overwrite" 1 "$bin" keygen "$tmp/k1"
check "keygen no path" 2 "$bin" keygen
check "keygen --check" 0 "$bin" keygen --check "$tmp/k1"
chmod 644 "$tmp/k1"
"$bin" keygen --check "$tmp/k1" 2>&1 | grep -q "mode 0644: group or others" ||
    { echo "FAIL keygen --check warns on 0644"; fails=$((fails + 1)); }
printf '00112233' > "$tmp/short.key"
check "keygen --check short" 1 "$bin" keygen --check "$tmp/short.key"
printf '%064d\r\n' 0 > "$tmp/crlf.key"
check "keygen --check crlf" 1 "$bin" keygen --check "$tmp/crlf.key"
check "keygen --check missing" 1 "$bin" keygen --check "$tmp/none.key"
check "query missing file" 1 "$bin" query "$tmp/none.db" "SELECT 1"
[ ! -e "$tmp/none.db" ] || { echo "FAIL query created a missing file"; fails=$((fails + 1)); }
"$bin" query "$tmp/none.db" "SELECT 1" 2>&1 | grep -q 'none.db: No such file' ||
    { echo "FAIL query missing file message"; fails=$((fails + 1)); }
check "query read-only" 1 "$bin" query "$tmp/r.db" "DELETE FROM t"
check "query no SQL" 2 "$bin" query "$tmp/r.db"
check "query two formats" 2 "$bin" query "$tmp/r.db" "SELECT 1" --csv --json
check "query unknown option" 2 "$bin" query "$tmp/r.db" "SELECT 1" --xml

# run: both worlds on a small quickstart, the plan, and refusals with their exit codes.
qs="$(cd "$(dirname "$0")/.." && pwd)/scenarios/quickstart.ini"
small="--set scenario.requests=2000 --set scenario.warmup=0s --quiet"
# shellcheck disable=SC2086 # $small is a list of options
check "run sim" 0 "$bin" run "$qs" -o "$tmp/run.db" $small
# shellcheck disable=SC2086
check "run memnet" 0 "$bin" run "$qs" -o "$tmp/run.db" --world memnet $small
expect_out "run logged both runs" "$(printf 'mode,requests\r\nmemnet,2000\r\nsim,2000\r\n.')" \
    "$bin" query "$tmp/run.db" "SELECT r.mode, s.requests FROM runs r JOIN run_summary s
                                 ON s.run_id = r.id ORDER BY r.mode" --csv
check "run --explain" 0 "$bin" run --explain "$qs"
"$bin" run --explain "$qs" | grep -q '^requests = 20000$' ||
    { echo "FAIL run --explain shows the plan"; fails=$((fails + 1)); }
check "run bad --set" 1 "$bin" run "$qs" --set clients.cuont=3
"$bin" run "$qs" --set clients.cuont=3 2>&1 | grep -q -- "--set:1: \[clients\] cuont: unknown key" ||
    { echo "FAIL run bad --set message"; fails=$((fails + 1)); }
check "run bad world" 2 "$bin" run "$qs" --world mars
check "run no scenario" 2 "$bin" run
check "run missing file" 1 "$bin" run "$tmp/nope.ini"
printf '[scenario]\nname = f\nrequests = 10\n[faults]\nat = 1ms crash server0\n' >"$tmp/f.ini"
# run: the catalogue. Every scenario explains itself; the trace replay runs (its trace is
# found relative to the scenario file, whatever the working directory); scenarios needing
# what is not built yet exit 3 with the reason.
scen=$(cd "$(dirname "$0")/../scenarios" && pwd)
case $bin in /*) abs_bin=$bin ;; *) abs_bin=$PWD/$bin ;; esac
for f in "$scen"/*.ini; do
    check "run --explain $(basename "$f")" 0 "$bin" run --explain "$f"
done
(cd "$tmp" && "$abs_bin" run --quiet -o "$tmp/t.db" "$scen/trace_replay.ini") >"$tmp/out" 2>&1 ||
    { echo "FAIL run trace_replay.ini"; cat "$tmp/out"; fails=$((fails + 1)); }
grep -q '^4000 requests issued' "$tmp/out" || { echo "FAIL trace_replay count"; fails=$((fails + 1)); }
# Every runnable scenario of the catalogue runs to completion, cut to a few hundred requests.
for f in quickstart replication_failover large_values_compression partition_heal tcp_vs_udp \
    hot_key placement_ring_vs_jump trace_replay queue_broker two_racks; do
    check "run $f.ini (small)" 0 "$bin" run --quiet -o "$tmp/cat.db" "$scen/$f.ini" \
        --set scenario.requests=400
done
# replication_failover past its crash (1s at 10k requests/s): routers fail over, and
# stale_reads is a count, with either read policy.
for pol in any primary; do
    check "run replication_failover $pol" 0 "$bin" run --quiet -o "$tmp/rf-$pol.db" \
        "$scen/replication_failover.ini" --set scenario.requests=12000 \
        --set placement.read_policy=$pol
    n=$("$bin" query "$tmp/rf-$pol.db" --csv "SELECT (SELECT count(*) FROM events
         WHERE kind = 'failover') || ' ' || (SELECT count(*) FROM events WHERE kind = 'crash')
         || ' ' || stale_reads FROM run_summary" | tail -n 1 | tr -d '\r')
    case $n in
    0\ *|*\ 0\ *|*-*|'') echo "FAIL replication_failover $pol: '$n' (failovers crashes stale)"
        fails=$((fails + 1)) ;;
    esac
done
# replication_failover with resync = warm in SimGrid: the resyncer warms server1 after its
# recovery at 2s (resync_start, resync_done rows), and quorum reads after 2s find far
# fewer stale replicas than with lazy (measured: 207 against 850 stale_read events).
for rs in lazy warm; do
    check "run replication_failover resync=$rs" 0 "$bin" run --quiet -o "$tmp/rs-$rs.db" \
        "$scen/replication_failover.ini" --set scenario.requests=28000 \
        --set placement.read_policy=quorum --set placement.resync=$rs
done
rsq() { # rsq DB: stale_read events after the recovery, and resync rows
    "$bin" query "$1" --csv "SELECT (SELECT count(*) FROM events WHERE kind = 'stale_read'
        AND time_ns > 2000000000) || ' ' || (SELECT count(*) FROM events
        WHERE kind LIKE 'resync%' AND node = 'resync')" | tail -n 1 | tr -d '\r'
}
set -- $(rsq "$tmp/rs-lazy.db") x x
lazy_stale=$1 lazy_rs=$2
set -- $(rsq "$tmp/rs-warm.db") x x
warm_stale=$1 warm_rs=$2
case "$lazy_stale$warm_stale" in *[!0-9]*) lazy_stale=0 warm_stale=999999 ;; esac
[ "$lazy_rs" = 0 ] && [ "$warm_rs" = 2 ] && [ "$lazy_stale" -gt 0 ] &&
    [ $((2 * warm_stale)) -lt "$lazy_stale" ] ||
    { echo "FAIL resync warm vs lazy: stale $warm_stale vs $lazy_stale, rows $warm_rs/$lazy_rs"
      fails=$((fails + 1)); }
# The same with the queue transport (once refused, exit 3): the broker is node S+C, the
# resyncer S+C+1 and reaches the servers through the broker; its rows are logged with node
# 'resync' (measured: 168 stale_read events after the recovery, against 845 with lazy).
for rs in lazy warm; do
    check "run replication_failover queue resync=$rs" 0 "$bin" run --quiet \
        -o "$tmp/rsq-$rs.db" "$scen/replication_failover.ini" --set scenario.requests=28000 \
        --set placement.read_policy=quorum --set placement.resync=$rs --set transport.kind=queue
done
set -- $(rsq "$tmp/rsq-lazy.db") x x
lazy_stale=$1 lazy_rs=$2
set -- $(rsq "$tmp/rsq-warm.db") x x
warm_stale=$1 warm_rs=$2
case "$lazy_stale$warm_stale" in *[!0-9]*) lazy_stale=0 warm_stale=999999 ;; esac
[ "$lazy_rs" = 0 ] && [ "$warm_rs" = 2 ] && [ "$lazy_stale" -gt 0 ] &&
    [ $((2 * warm_stale)) -lt "$lazy_stale" ] ||
    { echo "FAIL queue resync warm vs lazy: stale $warm_stale vs $lazy_stale, rows $warm_rs/$lazy_rs"
      fails=$((fails + 1)); }
# two_racks: the platform file (relative to the scenario) sets the latency: 2 x 140 us plus
# 1 KiB at the 1 Gbit/s uplink, so the median GET lies in 285..300 us. Refused: on memnet,
# with a link latency fault, with a platform that has too few hosts (exit 1, the reason).
check "run two_racks.ini" 0 "$bin" run --quiet -o "$tmp/tr.db" "$scen/two_racks.ini" \
    --set scenario.requests=3000
p50=$("$bin" query "$tmp/tr.db" --csv "SELECT round(p50_us) FROM run_summary" | tail -n 1 | tr -d '\r' | cut -d. -f1)
[ -n "$p50" ] && [ "$p50" -ge 285 ] && [ "$p50" -le 300 ] ||
    { echo "FAIL two_racks p50 '$p50' us"; fails=$((fails + 1)); }
check "run two_racks memnet" 3 "$bin" run -o "$tmp/t.db" "$scen/two_racks.ini" --world memnet
cp "$scen/two_racks.ini" "$tmp/tr.ini"
mkdir -p "$tmp/platforms" && cp "$scen/platforms/two_racks.xml" "$tmp/platforms/"
# two_racks with the queue transport: the broker runs on host 'broker' (40 us from the
# servers, 140 us from the clients), so an unloaded GET takes 2 x (140 + 40) us + 2 x 10 us
# of broker service + transmission (measured p50 383.6 us); with warm resync the resyncer
# runs on host 'resync' and warms server1 after a crash. A file without a 'broker' host is
# refused (exit 1, naming it).
check "run two_racks queue" 0 "$bin" run --quiet -o "$tmp/trq.db" "$scen/two_racks.ini" \
    --set scenario.requests=2000 --set transport.kind=queue --set clients.count=1 \
    --set clients.outstanding=1
p50=$("$bin" query "$tmp/trq.db" --csv "SELECT round(p50_us) FROM run_summary" | tail -n 1 | tr -d '\r' | cut -d. -f1)
[ -n "$p50" ] && [ "$p50" -ge 378 ] && [ "$p50" -le 395 ] ||
    { echo "FAIL two_racks queue p50 '$p50' us"; fails=$((fails + 1)); }
cp "$scen/two_racks.ini" "$tmp/trqr.ini"
printf '[faults]\nat = 20ms crash server1\nat = 30ms recover server1\n' >>"$tmp/trqr.ini"
check "run two_racks queue resync=warm" 0 "$bin" run --quiet -o "$tmp/trqr.db" "$tmp/trqr.ini" \
    --set scenario.requests=4000 --set transport.kind=queue --set placement.replicas=2 \
    --set placement.resync=warm
expect_out "two_racks queue resync rows" "$(printf 'crash|server1\nrecover|server1\nresync_start|resync\nresync_done|resync\n.')" \
    sqlite3 "$tmp/trqr.db" "SELECT kind, node FROM events WHERE kind IN ('crash', 'recover', 'resync_start', 'resync_done') ORDER BY time_ns, kind = 'recover' DESC"
sed 's/"broker"/"broker9"/g' "$tmp/platforms/two_racks.xml" >"$tmp/platforms/nobroker.xml"
sed 's|^platform = .*|platform = platforms/nobroker.xml|' "$scen/two_racks.ini" >"$tmp/nb.ini"
check "run platform without broker host" 1 "$bin" run -o "$tmp/t.db" "$tmp/nb.ini" \
    --set transport.kind=queue
"$bin" run -o "$tmp/t.db" "$tmp/nb.ini" --set transport.kind=queue 2>&1 |
    grep -q "no host 'broker'" || { echo "FAIL platform without broker reason"; fails=$((fails + 1)); }
printf '[faults]\nat = 1ms link client0 latency=1ms\n' >>"$tmp/tr.ini"
check "run two_racks latency fault" 3 "$bin" run -o "$tmp/t.db" "$tmp/tr.ini"
"$bin" run -o "$tmp/t.db" "$tmp/tr.ini" 2>&1 | grep -q 'link latency or bandwidth changes with a platform' ||
    { echo "FAIL two_racks latency fault reason"; fails=$((fails + 1)); }
check "run two_racks too few hosts" 1 "$bin" run -o "$tmp/t.db" "$scen/two_racks.ini" \
    --set servers.count=5
"$bin" run -o "$tmp/t.db" "$scen/two_racks.ini" --set servers.count=5 2>&1 |
    grep -q "names its hosts server0.., but has no host 'server4'" ||
    { echo "FAIL two_racks too few hosts reason"; fails=$((fails + 1)); }
# large_values_compression: zstd sends fewer bytes per request than no compression.
bpr() { # bpr DB: bytes/req of the database's one run
    "$bin" query "$1" --csv "SELECT round(bytes_per_request) FROM run_summary" | tail -n 1 | tr -d '\r' | cut -d. -f1
}
for comp in zstd none; do
    check "run large_values_compression $comp" 0 "$bin" run --quiet -o "$tmp/lv-$comp.db" \
        "$scen/large_values_compression.ini" --set scenario.requests=200 \
        --set transport.compression=$comp
done
a=$(bpr "$tmp/lv-zstd.db"); b=$(bpr "$tmp/lv-none.db")
[ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ] ||
    { echo "FAIL compression bytes/req: zstd '$a', none '$b'"; fails=$((fails + 1)); }
# queue_broker: its runs are logged with transport 'queue'; a broker crash in [faults] runs.
expect_out "queue_broker transport" "$(printf 'queue\n.')" \
    sqlite3 "$tmp/cat.db" "SELECT DISTINCT transport FROM runs WHERE scenario_name = 'queue_broker'"
printf '0,k,1,1,0,get,0\n1,k,1,1,0,frob,0\n' >"$tmp/bad.csv"
sed -e 's|^trace = .*|trace = bad.csv|' -e 's|^requests = .*|requests = 10|' "$scen/trace_replay.ini" >"$tmp/bad.ini"
check "run bad trace" 1 "$bin" run --quiet -o "$tmp/t.db" "$tmp/bad.ini"
"$bin" run --quiet -o "$tmp/t.db" "$tmp/bad.ini" 2>&1 | grep -q "bad.csv:2: unknown operation 'frob'" ||
    { echo "FAIL bad trace message"; fails=$((fails + 1)); }
# report: usage errors exit 2, a database or run that is not there exits 1.
check "report no database" 2 "$bin" report
check "report bad --runs" 2 "$bin" report "$tmp/r.db" --runs 3,x
check "report --runs no value" 2 "$bin" report "$tmp/r.db" --runs
check "report unknown option" 2 "$bin" report "$tmp/r.db" --frobnicate
check "report missing file" 1 "$bin" report "$tmp/none.db" -o "$tmp/rep"
check "report not a results db" 1 "$bin" report "$tmp/r.db" -o "$tmp/rep"
"$bin" report "$tmp/r.db" -o "$tmp/rep" 2>&1 | grep -q 'not a results database' ||
    { echo "FAIL report not a results db message"; fails=$((fails + 1)); }
# memnet applies server crash/recover, partition and heal (logged as events), and refuses
# client crashes and link changes with the reason.
check "run server crash on memnet" 0 "$bin" run --quiet "$tmp/f.ini" -o "$tmp/mf.db" --world memnet
expect_out "memnet logs the crash" "$(printf 'node,kind,detail\r\nserver0,crash,1ms crash server0\r\n.')" \
    "$bin" query "$tmp/mf.db" --csv "SELECT node, kind, detail FROM events WHERE kind = 'crash'"
check "run partition_heal memnet" 0 "$bin" run --quiet -o "$tmp/mp.db" --world memnet \
    "$scen/partition_heal.ini" --set scenario.requests=30000
n=$("$bin" query "$tmp/mp.db" --csv "SELECT (SELECT group_concat(kind, '+') FROM events WHERE kind IN
     ('partition', 'heal')) || ' ' || (SELECT count(*) FROM requests WHERE outcome = 'timeout')" |
    tail -n 1 | tr -d '\r')
case $n in
'partition+heal '[1-9]*) ;;
*) echo "FAIL partition_heal on memnet: '$n' (events timeouts)"; fails=$((fails + 1)) ;;
esac
printf '[scenario]\nname = f\nrequests = 10\n[faults]\nat = 1ms crash client*\n' >"$tmp/fc.ini"
check "run refuses client crash on memnet" 3 "$bin" run "$tmp/fc.ini" -o "$tmp/run.db" --world memnet
"$bin" run "$tmp/fc.ini" -o "$tmp/run.db" --world memnet 2>&1 |
    grep -q 'crash or recover of a client on --world memnet' ||
    { echo "FAIL run client crash on memnet message"; fails=$((fails + 1)); }
printf '[scenario]\nname = f\nrequests = 10\n[faults]\nat = 1ms link server0 loss=1%%\n' >"$tmp/fl.ini"
check "run refuses link change on memnet" 3 "$bin" run "$tmp/fl.ini" -o "$tmp/run.db" --world memnet
"$bin" run "$tmp/fl.ini" -o "$tmp/run.db" --world memnet 2>&1 |
    grep -q 'link changes on --world memnet' ||
    { echo "FAIL run link change on memnet message"; fails=$((fails + 1)); }
printf '[scenario]\nname = f\nrequests = 10\n[transport]\nkind = queue\n' >"$tmp/q.ini"
check "run refuses queue on memnet" 3 "$bin" run "$tmp/q.ini" -o "$tmp/run.db" --world memnet
check "run queue" 0 "$bin" run "$tmp/q.ini" -o "$tmp/run.db" --quiet
printf '[scenario]\nname = qc\nduration = 300ms\n[transport]\nkind = queue\ntimeout = 20ms\n[clients]\noutstanding = 4\n[faults]\nat = 50ms crash broker\nat = 150ms recover broker\n' >"$tmp/qc.ini"
check "run queue broker crash" 0 "$bin" run "$tmp/qc.ini" -o "$tmp/qc.db" --quiet
expect_out "queue broker crash events" "$(printf 'crash|broker|1\nrecover|broker|1\n.')" \
    sqlite3 "$tmp/qc.db" "SELECT kind, node, count(*) FROM events WHERE kind IN ('crash', 'recover') GROUP BY kind ORDER BY kind"
n=$(sqlite3 "$tmp/qc.db" "SELECT count(*) FROM requests WHERE outcome = 'timeout'")
[ "${n:-0}" -gt 0 ] || { echo "FAIL queue broker crash: no timeouts"; fails=$((fails + 1)); }

# run with encryption: a key from keygen, found relative to the scenario; a short key is
# refused with the reason; a readable key runs with a warning.
"$bin" keygen "$tmp/e.key" >/dev/null 2>&1
printf '[scenario]\nname = e\nrequests = 300\nwarmup = 0s\n[transport]\nencryption_key_file = e.key\n' \
    >"$tmp/e.ini"
check "run encrypted" 0 "$bin" run "$tmp/e.ini" -o "$tmp/e.db" --quiet
check "run encrypted udp" 0 "$bin" run "$tmp/e.ini" -o "$tmp/e.db" --quiet --set transport.kind=udp
check "run encrypted queue" 0 "$bin" run "$tmp/e.ini" -o "$tmp/eq.db" --quiet --set transport.kind=queue
expect_out "run encrypted queue outcomes" "$(printf '300|0\n.')" \
    sqlite3 "$tmp/eq.db" "SELECT count(*), sum(outcome IN ('timeout', 'error')) FROM requests"
expect_out "run encrypted outcomes" "$(printf '600|0\n.')" \
    sqlite3 "$tmp/e.db" "SELECT count(*), sum(outcome IN ('timeout', 'error')) FROM requests"
printf '00112233\n' >"$tmp/short.key"
sed 's|= e.key|= short.key|' "$tmp/e.ini" >"$tmp/e2.ini"
check "run short key" 1 "$bin" run "$tmp/e2.ini" -o "$tmp/e.db" --quiet
"$bin" run "$tmp/e2.ini" -o "$tmp/e.db" --quiet 2>&1 | grep -q 'short.key: 9 bytes, want 64 hex digits' ||
    { echo "FAIL run short key message"; fails=$((fails + 1)); }
chmod 644 "$tmp/e.key"
"$bin" run "$tmp/e.ini" -o "$tmp/e.db" --quiet 2>&1 | grep -q 'group or others' ||
    { echo "FAIL run readable key warns"; fails=$((fails + 1)); }

# run with faults: events rows at their simulated times, with the scenario's text.
cat >"$tmp/faults.ini" <<'EOF'
[scenario]
name = faults
requests = 600
warmup = 0s
[servers]
count = 2
[clients]
count = 2
[transport]
timeout = 1ms
[faults]
at = 2ms crash server0
at = 4ms recover server0
at = 5ms partition {client0} | {server*}
at = 6ms heal
at = 7ms link client* latency=1ms
EOF
check "run faults" 0 "$bin" run "$tmp/faults.ini" -o "$tmp/faults.db" --quiet
expect_out "run faults events" "$(printf '%s\n' '2000000|server0|crash|2ms crash server0' \
    '4000000|server0|recover|4ms recover server0' \
    '5000000||partition|5ms partition {client0} | {server*}' '6000000||heal|6ms heal' \
    '7000000|client0|link_change|7ms link client* latency=1ms' \
    '7000000|client1|link_change|7ms link client* latency=1ms'; echo .)" \
    sqlite3 "$tmp/faults.db" "SELECT time_ns, node, kind, detail FROM events
                              WHERE kind IN ('crash', 'recover', 'partition', 'heal',
                              'link_change') ORDER BY id"
# While server0 is down (2ms..4ms), everything sent to it ends in a timeout.
n=$(sqlite3 "$tmp/faults.db" "SELECT sum(outcome = 'timeout') || ' ' || sum(outcome != 'timeout')
                              FROM requests WHERE server = 0
                              AND complete_ns > 2000000 AND complete_ns <= 4000000")
case $n in
0\ *|*\ [1-9]*) echo "FAIL run faults: server0 down: '$n' (timeouts, others)"; fails=$((fails + 1)) ;;
esac

# Determinism: the same scenario and seed give identical request rows.
rows="SELECT r.transport, r.seed, q.seq, q.client, q.server, q.op, q.key, q.value_bytes,
      q.issue_ns, q.complete_ns, q.outcome, q.status, q.attempts, q.bytes_sent,
      q.bytes_received FROM requests q JOIN runs r ON r.id = q.run_id"
check "run faults again" 0 "$bin" run "$tmp/faults.ini" -o "$tmp/faults2.db" --quiet
h1=$(sqlite3 "$tmp/faults.db" "$rows ORDER BY q.seq" | md5sum)
h2=$(sqlite3 "$tmp/faults2.db" "$rows ORDER BY q.seq" | md5sum)
[ "$h1" = "$h2" ] || { echo "FAIL same seed, different requests rows"; fails=$((fails + 1)); }

# compare: usage errors, then a tiny sweep with --jobs 1 and --jobs 2.
check "compare no vary" 2 "$bin" compare "$qs"
check "compare bad vary" 2 "$bin" compare "$qs" --vary transport.kind
check "compare vary no dot" 2 "$bin" compare "$qs" --vary kind=tcp
check "compare empty value" 2 "$bin" compare "$qs" --vary transport.kind=tcp,,udp
check "compare vary seed" 2 "$bin" compare "$qs" --vary scenario.seed=1,2
check "compare seeds 0" 2 "$bin" compare "$qs" --vary transport.kind=tcp --seeds 0
check "compare jobs x" 2 "$bin" compare "$qs" --vary transport.kind=tcp --jobs x
check "compare unknown option" 2 "$bin" compare "$qs" --vary transport.kind=tcp --frob
check "compare no scenario" 2 "$bin" compare --vary transport.kind=tcp
check "compare bad value" 1 "$bin" compare "$qs" --vary transport.kind=tcp,carrier-pigeon \
    -o "$tmp/bad.db"
sweep="--vary transport.kind=tcp,udp --seeds 3 --set scenario.requests=300 --quiet"
sweep="$sweep --set scenario.warmup=0s"
# shellcheck disable=SC2086 # $sweep is a list of options
"$bin" compare "$qs" $sweep --jobs 1 -o "$tmp/c1.db" >"$tmp/c1.out" 2>"$tmp/c1.err" ||
    { echo "FAIL compare --jobs 1"; cat "$tmp/c1.err"; fails=$((fails + 1)); }
# shellcheck disable=SC2086
"$bin" compare "$qs" $sweep --jobs 2 -o "$tmp/c2.db" >"$tmp/c2.out" 2>"$tmp/c2.err" ||
    { echo "FAIL compare --jobs 2"; cat "$tmp/c2.err"; fails=$((fails + 1)); }
h1=$(sqlite3 "$tmp/c1.db" "$rows ORDER BY q.run_id, q.seq" | md5sum)
h2=$(sqlite3 "$tmp/c2.db" "$rows ORDER BY q.run_id, q.seq" | md5sum)
[ "$h1" = "$h2" ] || { echo "FAIL compare: --jobs 1 and --jobs 2 differ"; fails=$((fails + 1)); }
expect_out "compare runs" "$(printf '%s\n' 1tcp1 2tcp2 3tcp3 4udp1 5udp2 6udp3; echo .)" \
    sqlite3 "$tmp/c2.db" "SELECT id || transport || seed FROM runs ORDER BY id"
json='{"scenario.requests": "300", "scenario.warmup": "0s", "transport.kind": "udp"}'
expect_out "compare varied_params" "$(printf '%s\n' 2 "$json"; echo .)" \
    sqlite3 "$tmp/c2.db" "SELECT count(DISTINCT varied_params) FROM runs;
                          SELECT varied_params FROM runs WHERE id = 6"
# The table's CI, computed here independently: mean ± t(0.975, 2) * sd / sqrt(3).
for col in "p50_us 4 1" "p99_us 5 1" "bytes_per_request 8 1" "throughput_rps 3 0"; do
    # shellcheck disable=SC2086 # split "column field decimals"
    set -- $col
    want=$(sqlite3 "$tmp/c2.db" "SELECT $1 FROM run_summary s JOIN runs r ON r.id = s.run_id
                                 WHERE r.transport = 'udp'" |
        awk -v d="$3" '{ x[NR] = $1; s += $1 } END { m = s / NR
            for (i = 1; i <= NR; i++) v += (x[i] - m) ^ 2
            h = 4.302652729749464 * sqrt(v / (NR - 1)) / sqrt(NR)
            printf "%.*f ± %.*f", d, m, d, h }')
    got=$(grep '^udp ' "$tmp/c2.out" | awk -F ' [|] ' -v f="$2" '{ v = $f; sub(/ *\*? *$/, "", v); print v }')
    [ "$got" = "$want" ] || { echo "FAIL compare CI of $1: table '$got', want '$want'"; fails=$((fails + 1)); }
done
grep -q '^tcp  *| 3 ' "$tmp/c2.out" || { echo "FAIL compare table rows"; cat "$tmp/c2.out"; fails=$((fails + 1)); }
[ -z "$(ls -d "$tmp"/c2.db.jobs-* 2>/dev/null)" ] || { echo "FAIL compare left its job files"; fails=$((fails + 1)); }

# merge: two databases, ids shifted after the first, rows and events carried over.
check "merge no args" 2 "$bin" merge
check "merge one arg" 2 "$bin" merge "$tmp/m.db"
check "merge missing input" 1 "$bin" merge "$tmp/m.db" "$tmp/none.db"
check "merge into itself" 1 "$bin" merge "$tmp/c1.db" "$tmp/c1.db"
check "merge" 0 "$bin" merge "$tmp/m.db" "$tmp/c1.db" "$tmp/faults.db"
expect_out "merge runs" "$(printf '7|7|faults\n.')" \
    sqlite3 "$tmp/m.db" "SELECT count(*), max(id), (SELECT scenario_name FROM runs WHERE id = 7)
                         FROM runs"
a=$(sqlite3 "$tmp/faults.db" "SELECT count(*), sum(issue_ns) FROM requests WHERE run_id = 1")
b=$(sqlite3 "$tmp/m.db" "SELECT count(*), sum(issue_ns) FROM requests WHERE run_id = 7")
[ "$a" = "$b" ] || { echo "FAIL merge requests: $a vs $b"; fails=$((fails + 1)); }
a=$(sqlite3 "$tmp/faults.db" "SELECT group_concat(time_ns || kind) FROM events")
b=$(sqlite3 "$tmp/m.db" "SELECT group_concat(time_ns || kind) FROM events WHERE run_id = 7")
[ -n "$a" ] && [ "$a" = "$b" ] || { echo "FAIL merge events"; fails=$((fails + 1)); }
a=$(sqlite3 "$tmp/c1.db" "SELECT group_concat(p99_us) FROM run_summary ORDER BY run_id")
b=$(sqlite3 "$tmp/m.db" "SELECT group_concat(p99_us) FROM run_summary WHERE run_id <= 6
                         ORDER BY run_id")
[ "$a" = "$b" ] || { echo "FAIL merge summaries"; fails=$((fails + 1)); }

# bench sim --rounds: a tiny case, both halves alternated, the same simulated shape (the
# driver ends one TCP set-up round trip later), and the median closing line.
out=$("$bin" bench sim --clients 20 --servers 4 --requests 400 --rounds 2 2>&1); st=$?
ends=$(printf '%s\n' "$out" | sed -n 's/.*simulated end: driver \([0-9.]*\) s, bare \([0-9.]*\) s.*/\1 \2/p' | sort -u)
if [ "$st" -eq 0 ] && printf '%s\n' "$out" | grep -q "round 2 (bare first)" &&
    printf '%s\n' "$out" | grep -q "median driver/bare rate over 2 rounds" &&
    [ "$(printf '%s\n' "$ends" | wc -l)" -eq 1 ] && [ -n "$ends" ]; then
    echo "ok   bench sim --rounds ($ends)"
else
    echo "FAIL bench sim --rounds: exit $st"; echo "$out"; fails=$((fails + 1))
fi
check "bench sim --rounds 0" 2 "$bin" bench sim --rounds 0

# bench placement -o: figures into a results database (twice: two placement runs), merged
# with ids shifted, and reported as a placement-only report.
check "bench placement -o" 0 "$bin" bench placement --keys 2000 --nodes 10,200 -o "$tmp/pl.db"
check "bench placement -o again" 0 "$bin" bench placement --keys 2000 --nodes 10 -o "$tmp/pl.db"
check "bench placement -o empty" 2 "$bin" bench placement -o ""
expect_out "bench placement rows" "$(printf '2|21|140\n.')" \
    sqlite3 "$tmp/pl.db" "SELECT count(*), (SELECT count(*) FROM placement_results),
                                 (SELECT count(*) FROM placement_load) FROM placement_runs"
check "merge placement" 0 "$bin" merge "$tmp/m.db" "$tmp/pl.db"
expect_out "merge placement rows" "$(printf '1,2|21|140\n.')" \
    sqlite3 "$tmp/m.db" "SELECT group_concat(id), (SELECT count(*) FROM placement_results),
                                 (SELECT count(*) FROM placement_load) FROM placement_runs"
check "report placement only" 0 "$bin" report "$tmp/pl.db" -o "$tmp/plrep"
[ -s "$tmp/plrep/placement_moved.svg" ] || { echo "FAIL report placement plot"; fails=$((fails + 1)); }

# check: 5 seeds of the failover scenario under random faults pass; then every invariant
# is shown to fail on a tampered copy of a run (--verify), and only failures keep files.
rf="$(dirname "$0")/../scenarios/replication_failover.ini"
check "check no scenario" 2 "$bin" check
check "check verify no run" 2 "$bin" check --verify "$tmp/x.db"
check "check 5 seeds" 0 "$bin" check "$rf" --seeds 5 --jobs 2 --faults 3 -o "$tmp/ck.db" --quiet
[ ! -d "$tmp/check-artifacts" ] || { echo "FAIL check kept artifacts of passing seeds"; fails=$((fails + 1)); }
check "check verify clean" 0 "$bin" check --verify "$tmp/ck.db" --run 1
cp "$tmp/ck.db" "$tmp/bad.db"
sqlite3 "$tmp/bad.db" "UPDATE requests SET outcome = NULL WHERE run_id = 1 AND seq = 5;
  DELETE FROM requests WHERE run_id = 1 AND seq = 9;
  UPDATE requests SET key = 'never-written' WHERE run_id = 1 AND seq =
    (SELECT min(seq) FROM requests WHERE run_id = 1 AND outcome = 'hit');
  UPDATE run_summary SET stale_reads = stale_reads + 3 WHERE run_id = 1;"
out=$("$bin" check --verify "$tmp/bad.db" --run 1); got=$?
for inv in one-outcome phantom-read stale-count "reproduce: cachebed run"; do
    printf '%s' "$out" | grep -q "$inv" || { echo "FAIL check verify misses $inv"; fails=$((fails + 1)); }
done
[ "$got" -eq 1 ] && [ -f "$tmp/check-artifacts/run1.ini" ] ||
    { echo "FAIL check verify tampered: exit $got"; fails=$((fails + 1)); }
# A planted lost write: with no faults (run of seed 1, --faults 0), a read that misses a key
# acknowledged before it must be flagged.
check "check no faults" 0 "$bin" check "$rf" --seeds 1 --faults 0 -o "$tmp/nf.db" --quiet
sqlite3 "$tmp/nf.db" "UPDATE requests SET outcome = 'miss' WHERE run_id = 1 AND seq =
    (SELECT max(seq) FROM requests WHERE run_id = 1 AND outcome = 'hit')"
"$bin" check --verify "$tmp/nf.db" --run 1 | grep -q "lost-write" ||
    { echo "FAIL check misses a lost write"; fails=$((fails + 1)); }
# Planted value bugs (docs/check.md): a hit of the right key and size whose value digest no
# write sent (the size rule alone passes it), and a hit that returns the previous version of
# its key after the newer one was acknowledged (a server acknowledging before storing).
check "check no faults (values)" 0 "$bin" check "$rf" --seeds 1 --faults 0 -o "$tmp/nv.db" --quiet
cp "$tmp/nv.db" "$tmp/nv2.db"
sqlite3 "$tmp/nv.db" "UPDATE requests SET value_digest = value_digest - sign(value_digest) WHERE run_id = 1
    AND seq = (SELECT max(seq) FROM requests WHERE run_id = 1 AND outcome = 'hit')"
"$bin" check --verify "$tmp/nv.db" --run 1 | grep -q "phantom-read" ||
    { echo "FAIL check misses a tampered digest"; fails=$((fails + 1)); }
sqlite3 "$tmp/nv2.db" "UPDATE requests SET (version, value_digest) = (SELECT w.version,
      w.value_digest FROM requests w WHERE w.run_id = 1 AND w.key = requests.key
      AND w.op = 'set' AND w.outcome = 'stored' AND w.version < requests.version
      ORDER BY w.version DESC LIMIT 1)
    WHERE run_id = 1 AND seq = (SELECT min(g.seq) FROM requests g WHERE g.run_id = 1
      AND g.op = 'get' AND g.outcome = 'hit' AND EXISTS (SELECT 1 FROM requests w
        WHERE w.run_id = 1 AND w.key = g.key AND w.op = 'set' AND w.outcome = 'stored'
        AND w.version = g.version AND w.complete_ns < g.issue_ns)
      AND EXISTS (SELECT 1 FROM requests w WHERE w.run_id = 1 AND w.key = g.key
        AND w.op = 'set' AND w.outcome = 'stored' AND w.version < g.version))"
"$bin" check --verify "$tmp/nv2.db" --run 1 | grep -q "stale-read" ||
    { echo "FAIL check misses a stale hit"; fails=$((fails + 1)); }
# replay: the scenario over real sockets on loopback (docs/real.md §8). Small and bounded:
# 2000 requests, servers on ephemeral 127.0.0.1 ports, every process reaped.
qs="$scen/quickstart.ini"
small="--set scenario.requests=2000 --set scenario.warmup=0s"
check "replay quickstart" 0 "$bin" replay --quiet -o "$tmp/real.db" $small "$qs"
expect_out "replay real run" "real|complete|2000|2000
." sqlite3 "$tmp/real.db" "SELECT mode, status, (SELECT count(*) FROM requests WHERE run_id = 1),
    (SELECT count(*) FROM requests WHERE run_id = 1 AND outcome IN ('hit', 'miss', 'stored'))
    FROM runs WHERE id = 1"
n=$(sqlite3 "$tmp/real.db" "SELECT count(*) FROM events WHERE kind = 'impairment'
    AND detail LIKE '%latency_ns=100000 %'")
[ "$n" = 1 ] || { echo "FAIL replay impairment event"; fails=$((fails + 1)); }
# User-space delay: 2 ms each way, so every round trip takes at least 4 ms.
check "replay 2ms" 0 "$bin" replay --quiet -o "$tmp/lat.db" $small --set network.latency=2ms "$qs"
p50=$(sqlite3 "$tmp/lat.db" "SELECT p50_us >= 4000 FROM run_summary WHERE run_id = 1")
[ "$p50" = 1 ] || { echo "FAIL replay 2ms p50 >= 4ms"; fails=$((fails + 1)); }
check "replay udp" 0 "$bin" replay --quiet -o "$tmp/udp.db" $small --set transport.kind=udp "$qs"
check "replay replicas text" 3 "$bin" replay -o "$tmp/udp.db" --set placement.replicas=2 \
    --set servers.count=3 --protocol text "$qs"
# sim against real: the report pairs them and prints the KS statistic.
check "run for report" 0 "$bin" run --quiet -o "$tmp/real.db" $small "$qs"
check "report sim vs real" 0 "$bin" report "$tmp/real.db" -o "$tmp/rep"
grep -q 'quickstart: sim vs real.*median latency' "$tmp/rep/report.md" &&
    grep -q 'Kolmogorov-Smirnov' "$tmp/rep/report.md" ||
    { echo "FAIL report sim-vs-real section"; fails=$((fails + 1)); }
# --servers: an existing cachebed server.
: >"$tmp/serve.out" # before the background shell opens it: the loop below may look first
"$bin" serve --port 0 >"$tmp/serve.out" 2>&1 &
spid=$!
for i in 1 2 3 4 5 6 7 8 9 10; do grep -q listening "$tmp/serve.out" && break; sleep 0.2; done
port=$(sed -n 's/.* port \([0-9]*\) (tcp).*/\1/p' "$tmp/serve.out")
check "replay --servers" 0 "$bin" replay --quiet -o "$tmp/ext.db" $small --servers "127.0.0.1:$port" "$qs"
kill "$spid"; wait "$spid"
n=$(sqlite3 "$tmp/ext.db" "SELECT count(*) FROM events WHERE kind = 'server' AND detail LIKE '%existing%'")
[ "$n" = 1 ] || { echo "FAIL replay --servers event"; fails=$((fails + 1)); }
# --protocol text: memcached's text protocol, here to spawned 'cachebed serve' children (which
# speak it too); a real memcached is tests/test_replay_memcached.sh.
check "replay --protocol text" 0 "$bin" replay --quiet -o "$tmp/txt.db" $small --protocol text "$qs"
expect_out "replay text run" "real|complete|2000
." sqlite3 "$tmp/txt.db" "SELECT mode, status, (SELECT count(*) FROM requests WHERE run_id = 1
    AND outcome IN ('hit', 'miss', 'stored')) FROM runs WHERE id = 1"
check "replay --protocol bogus" 2 "$bin" replay --protocol bogus "$qs"
check "replay --protocol text udp" 0 "$bin" replay --quiet -o "$tmp/txt.db" $small \
    --protocol text --set transport.kind=udp "$qs"
check "replay --servers count" 1 "$bin" replay -o "$tmp/ext.db" --servers "127.0.0.1:1,127.0.0.1:2" "$qs"
# SIGINT: in-flight requests finish, the run is marked incomplete, the server is reaped.
"$bin" replay --quiet -o "$tmp/int.db" --set scenario.requests=100000000 "$qs" >"$tmp/int.out" 2>&1 &
rpid=$!
sleep 1
cpid=$(pgrep -P "$rpid" | head -1)
kill -INT "$rpid"
wait "$rpid"; st=$?
[ "$st" = 1 ] || { echo "FAIL replay SIGINT exit $st"; cat "$tmp/int.out"; fails=$((fails + 1)); }
[ -n "$cpid" ] && ! kill -0 "$cpid" 2>/dev/null || { echo "FAIL replay child reaped"; fails=$((fails + 1)); }
expect_out "replay SIGINT run" "incomplete|0
." sqlite3 "$tmp/int.db" "SELECT status, (SELECT count(*) FROM requests WHERE outcome IS NULL)
    FROM runs"

echo "cli: $fails failure(s)"
[ "$fails" -eq 0 ]
