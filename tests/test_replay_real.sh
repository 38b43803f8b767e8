#!/bin/sh
# test_replay_real.sh: `cachebed replay` features over real sockets on loopback
# (docs/real.md §8): replication routers against 3 spawned servers and against a dead one;
# compression and sealing, and a server with another key.
# Every server binds 127.0.0.1 on an ephemeral port; every run is small and bounded.
# Usage: test_replay_real.sh path/to/cachebed SOURCE_DIR
set -u
bin=$1
src=$2
fails=0
tmp=$(mktemp -d) || exit 1
cleanup() { # the servers start_serve left (their pids in $tmp/*.pid)
    for f in "$tmp"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
# run NAME EXPECTED_STATUS ARGS...: cachebed replay, output kept in $tmp/NAME.out
run() {
    name=$1; want=$2; shift 2
    timeout 120 "$bin" replay --quiet "$@" >"$tmp/$name.out" 2>&1; got=$?
    if [ "$got" -ne "$want" ]; then
        fail "$name: exit $got, want $want"; cat "$tmp/$name.out"
    else
        echo "ok   $name"
    fi
}
q() { sqlite3 "$1" "$2"; } # q DB SQL
qs="$src/scenarios/quickstart.ini"
small="--set scenario.requests=2000 --set scenario.warmup=0s"

# 1. Replication: R = 3 on 3 spawned servers, each write and read policy pair. Every request
# completes with a real outcome; the servers each saw traffic (one 'server' row each).
for pol in all:any quorum:quorum primary_async:primary; do
    wp=${pol%:*}; rp=${pol#*:}
    run "replicas $pol" 0 -o "$tmp/r3.db" $small --set servers.count=3 \
        --set placement.replicas=3 --set placement.write_policy="$wp" \
        --set placement.read_policy="$rp" "$qs"
done
got=$(q "$tmp/r3.db" "SELECT count(*), sum(status = 'complete') FROM runs WHERE mode = 'real'")
[ "$got" = "3|3" ] || fail "replicas runs: $got"
got=$(q "$tmp/r3.db" "SELECT count(*) FROM requests WHERE outcome NOT IN ('hit', 'miss', 'stored')")
[ "$got" = 0 ] || fail "replicas: $got requests without a real outcome"
got=$(q "$tmp/r3.db" "SELECT count(*) FROM events WHERE kind = 'server'")
[ "$got" = 9 ] || fail "replicas: $got server rows, want 9"
# The routers draw from the seed as in the simulation: the same fan-out of sub-requests.
"$bin" run --world memnet --quiet -o "$tmp/sim.db" $small --set servers.count=3 \
    --set placement.replicas=3 --set placement.write_policy=all --set placement.read_policy=any \
    "$qs" >/dev/null 2>&1 || fail "memnet replicas run"
# (The retries column counts sub-requests beyond the first; on a loaded machine a real
# request may also time out and be resent, which is a 'retry' event: not counted here.)
sub="SELECT retries - (SELECT count(*) FROM events WHERE run_id = 1 AND kind = 'retry')
    FROM run_summary WHERE run_id = 1"
sim=$(q "$tmp/sim.db" "$sub")
real=$(q "$tmp/r3.db" "$sub")
[ -n "$sim" ] && [ "$sim" = "$real" ] || fail "replicas: sub-requests sim $sim, real $real"

# 2. Failover and ejection: 2 live servers and a port where nothing listens. R = 3, write
# quorum (2 of 3), read any: every request still succeeds; the dead node is ejected.
start_serve() { # start_serve OUTFILE [OPTION...]: a `cachebed serve` on a free port; prints its port
    out=$1; shift
    : >"$out"
    "$bin" serve --port 0 "$@" >"$out" 2>&1 &
    echo $! >"$out.pid"
    for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        grep -q listening "$out" && break
        sleep 0.1
    done
    sed -n 's/.* port \([0-9]*\) (tcp).*/\1/p' "$out"
}
p1=$(start_serve "$tmp/s1.out")
p2=$(start_serve "$tmp/s2.out")
dead=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
[ -n "$p1" ] && [ -n "$p2" ] || fail "serve did not start"
run "replicas dead node" 0 -o "$tmp/dead.db" $small --set servers.count=3 \
    --set placement.replicas=3 --set placement.write_policy=quorum \
    --set placement.read_policy=any --set placement.eject_after=1 \
    --set placement.eject_for=10s --servers "127.0.0.1:$p1,127.0.0.1:$p2,127.0.0.1:$dead" "$qs"
got=$(q "$tmp/dead.db" "SELECT count(*) FROM requests WHERE outcome NOT IN ('hit', 'miss', 'stored')")
[ "$got" = 0 ] || fail "dead node: $got requests failed"
got=$(q "$tmp/dead.db" "SELECT count(*) > 0 FROM events WHERE kind = 'eject'")
[ "$got" = 1 ] || fail "dead node: no eject event"

# 3. Codecs: large_values_compression, small (200 requests of 64-512 KiB values), with lz4,
# zstd and sealing; the spawned servers get the scenario's codec (their 'server' rows say
# which). Compression must send fewer bytes per request than none.
lv="$tmp/lv.ini"
sed -e 's/^requests = .*/requests = 200/' "$src/scenarios/large_values_compression.ini" >"$lv"
"$bin" keygen "$tmp/k1" >/dev/null && "$bin" keygen "$tmp/k2" >/dev/null || fail "keygen"
for comp in none lz4 zstd; do
    run "codec $comp" 0 -o "$tmp/lv.db" --set transport.compression=$comp "$lv"
done
run "codec zstd sealed" 0 -o "$tmp/lv.db" --set transport.encryption_key_file="$tmp/k1" "$lv"
run "codec sealed udp" 0 -o "$tmp/lv.db" --set transport.encryption_key_file="$tmp/k1" \
    --set transport.compression=none --set transport.kind=udp --set clients.count=1 \
    --set workload.value_size_min=100B --set workload.value_size_max=8KiB "$lv"
got=$(q "$tmp/lv.db" "SELECT count(*) FROM requests WHERE outcome NOT IN ('hit', 'miss', 'stored')")
[ "$got" = 0 ] || fail "codecs: $got requests without a real outcome"
got=$(q "$tmp/lv.db" "SELECT group_concat(c, '|') FROM (SELECT DISTINCT CASE
    WHEN instr(detail, 'codec: ') > 0 THEN substr(detail, instr(detail, 'codec: ')) ELSE 'codec: none'
    END AS c FROM events WHERE kind = 'server' ORDER BY run_id)")
[ "$got" = "codec: none|codec: lz4 min=128|codec: zstd:3 min=128|codec: zstd:3 min=128, sealed stream|codec: sealed datagram" ] ||
    fail "codec server rows: $got"
got=$(q "$tmp/lv.db" "SELECT (SELECT bytes_per_request FROM run_summary WHERE run_id = 1) >
    (SELECT bytes_per_request FROM run_summary WHERE run_id = 3)")
[ "$got" = 1 ] || fail "zstd does not send fewer bytes than none"
# Sealed udp with 3 clients (each its own source port, so its own seal session in the
# server: docs/real.md §6): no loss is configured, so every request completes at its first
# attempt; with one session for all peers a client whose salt another had just retired was
# refused as a replay, timed out and retried.
run "codec sealed udp 3 clients" 0 -o "$tmp/su.db" --set transport.encryption_key_file="$tmp/k1" \
    --set transport.compression=none --set transport.kind=udp --set clients.count=3 \
    --set workload.value_size_min=100B --set workload.value_size_max=8KiB "$lv"
got=$(q "$tmp/su.db" "SELECT count(*), sum(outcome IN ('hit', 'miss', 'stored')),
    sum(attempts = 1), count(DISTINCT client) FROM requests")
[ "$got" = "200|200|200|3" ] || fail "sealed udp 3 clients: requests|real outcomes|first attempt|clients = $got"
got=$(q "$tmp/su.db" "SELECT count(*) FROM events WHERE kind IN ('retry', 'timeout', 'conn_closed')")
[ "$got" = 0 ] || fail "sealed udp 3 clients: $got retry/timeout/conn_closed events"
# A server with another key: every request fails (timeout), each refused connection is a
# conn_closed event, and the server stays up and serves a client with its key.
pk=$(start_serve "$tmp/sk.out" --key-file "$tmp/k2")
[ -n "$pk" ] || fail "serve --key-file did not start"
nc="--set servers.count=1 --set scenario.requests=20 --set transport.compression=none"
run "wrong key" 0 -o "$tmp/wk.db" $nc --set transport.timeout=50ms \
    --set transport.encryption_key_file="$tmp/k1" --servers "127.0.0.1:$pk" "$lv"
got=$(q "$tmp/wk.db" "SELECT count(*) FROM requests WHERE outcome = 'timeout'")
[ "$got" = 20 ] || fail "wrong key: $got of 20 requests timed out"
got=$(q "$tmp/wk.db" "SELECT count(*) > 0 FROM events WHERE kind = 'conn_closed'")
[ "$got" = 1 ] || fail "wrong key: no conn_closed event"
run "right key" 0 -o "$tmp/wk.db" $nc --set transport.encryption_key_file="$tmp/k2" \
    --servers "127.0.0.1:$pk" "$lv"
got=$(q "$tmp/wk.db" "SELECT count(*) FROM requests WHERE run_id = 2 AND outcome IN ('hit', 'miss', 'stored')")
[ "$got" = 20 ] || fail "right key after a wrong one: $got of 20"
# The right key but compression the server does not have: over TCP the client's HELLO
# (docs/protocol.md §5.3) agrees on none, so values go uncompressed and nothing fails.
run "compression mismatch" 0 -o "$tmp/wk.db" --set servers.count=1 --set scenario.requests=40 \
    --set transport.encryption_key_file="$tmp/k2" --servers "127.0.0.1:$pk" "$lv"
got=$(q "$tmp/wk.db" "SELECT sum(outcome = 'error' AND status = 7) > 0, sum(outcome = 'error' AND op <> 'set')
    FROM requests WHERE run_id = 3")
[ "$got" = "0|0" ] || fail "compression mismatch: $got"
kill -0 "$(cat "$tmp/sk.out.pid")" 2>/dev/null || fail "the server with another key died"

# 4. [faults] for real. A closed-loop run on 2 servers; server1 is killed (SIGKILL) at
# 500ms and restarted, empty, on its port at 1s: its requests time out while it is down,
# server0's do not, and everything succeeds again once it listens (the restart is a fork
# and exec: on a loaded machine it may take a few hundred ms, hence the 500ms margin).
base='[scenario]
name = faults
seed = 1
duration = 2s
warmup = 0s
[servers]
count = 2
[clients]
count = 2
outstanding = 4
[transport]
timeout = 50ms
attempts = 2
[workload]
keys = 1000
value_size = 100B
mix = get=0.8 set=0.2
think_time = 1ms
[faults]'
printf '%s\nat = 500ms crash server1\nat = 1s recover server1\n' "$base" >"$tmp/crash.ini"
run "crash recover" 0 -o "$tmp/crash.db" "$tmp/crash.ini"
got=$(q "$tmp/crash.db" "SELECT group_concat(kind || '@' || (time_ns >= 500000000 AND time_ns < 600000000)
    || (time_ns >= 1000000000 AND time_ns < 1100000000) || ':' || (detail LIKE '%SIGKILL%')
    || (detail LIKE '%restarted, empty, on port%'), ' ')
    FROM events WHERE kind IN ('crash', 'recover') AND node = 'server1'")
[ "$got" = "crash@10:10 recover@01:01" ] || fail "crash recover events: $got"
got=$(q "$tmp/crash.db" "SELECT
    (SELECT count(*) > 0 AND sum(outcome = 'timeout') = count(*) FROM requests
        WHERE server = 1 AND issue_ns BETWEEN 600000000 AND 900000000),
    (SELECT count(*) > 0 AND sum(outcome IN ('hit', 'miss', 'stored')) = count(*) FROM requests
        WHERE server = 0 AND issue_ns BETWEEN 600000000 AND 900000000),
    (SELECT count(*) > 0 AND sum(outcome IN ('hit', 'miss', 'stored')) = count(*) FROM requests
        WHERE issue_ns > (SELECT min(issue_ns) FROM requests WHERE server = 1
            AND issue_ns > 1000000000 AND outcome IN ('hit', 'miss', 'stored')))")
# After: from server1's first answer after its restart (which takes 25 ms on an idle machine
# and up to a second under ASan and load) every request succeeds.
[ "$got" = "1|1|1" ] || { fail "crash recover outcomes (down, other server, after): $got"; cat "$tmp/crash recover.out"; }
got=$(q "$tmp/crash.db" "SELECT count(*) FROM events WHERE kind = 'impairment' AND detail LIKE '%crash=SIGKILL%'")
[ "$got" = 1 ] || fail "crash recover: the impairment row does not say how faults were imposed"
run "crash with --servers" 3 -o "$tmp/crash.db" --servers "127.0.0.1:$p1,127.0.0.1:$p2" "$tmp/crash.ini"
# Replication: the same crash with R = 2 on 3 servers, write all, read any, eject after 3:
# the routers fail over (to the spare) and eject, no request fails (the memnet run of this
# scenario has none either).
printf '%s\nat = 500ms crash server1\nat = 1s recover server1\n' "$base" |
    sed -e 's/^count = 2$/count = 3/' -e 's/^\[transport\]/[placement]\nreplicas = 2\nread_policy = any\neject_after = 3\neject_for = 300ms\n[transport]/' \
    >"$tmp/crashr.ini"
run "crash recover replicas" 0 -o "$tmp/crashr.db" "$tmp/crashr.ini"
got=$(q "$tmp/crashr.db" "SELECT (SELECT count(*) FROM requests WHERE outcome NOT IN ('hit', 'miss', 'stored')),
    (SELECT count(*) > 0 FROM events WHERE kind = 'eject'),
    (SELECT count(*) > 0 FROM events WHERE kind = 'failover' AND time_ns > 500000000)")
[ "$got" = "0|1|1" ] || fail "crash recover replicas (failed, eject, failover): $got"
# Link and partition in user space: server0's link gets 2ms at 300ms, so a round trip to it
# takes at least 2 x (50us + 1ms); {client*} | {server1} at 600ms cuts server1 off until
# the heal at 900ms.
printf '%s\nat = 300ms link server0 latency=2ms\nat = 600ms partition {client*} | {server1}\nat = 900ms heal\n' \
    "$base" >"$tmp/net.ini"
run "link partition" 0 -o "$tmp/net.db" "$tmp/net.ini"
got=$(q "$tmp/net.db" "SELECT
    (SELECT count(*) > 0 AND min(latency_ns) >= 2100000 FROM requests
        WHERE server = 0 AND issue_ns > 310000000 AND outcome <> 'timeout'),
    (SELECT count(*) > 0 AND 2 * sum(latency_ns < 2000000) > count(*) FROM requests
        WHERE server = 0 AND complete_ns < 290000000),
    (SELECT count(*) > 0 AND sum(outcome = 'timeout') = count(*) FROM requests
        WHERE server = 1 AND issue_ns BETWEEN 610000000 AND 850000000),
    (SELECT count(*) > 0 AND sum(outcome IN ('hit', 'miss', 'stored')) = count(*) FROM requests
        WHERE issue_ns > 1000000000),
    (SELECT group_concat(kind, ',') FROM (SELECT kind FROM events
        WHERE kind IN ('link_change', 'partition', 'heal') ORDER BY time_ns))")
[ "$got" = "1|1|1|1|link_change,partition,heal" ] || fail "link partition: $got"

# 5. The text protocol over udp: replies matched by their UDP request id, in order. Against
# spawned servers, with jitter (the delay queue keeps a text connection's datagrams in
# order), and against memcached's UDP port when it is installed. With loss the run ends:
# requests time out or fail, none hangs.
run "text udp" 0 -o "$tmp/tu.db" $small --protocol text --set transport.kind=udp \
    --set network.jitter=100us "$qs"
got=$(q "$tmp/tu.db" "SELECT count(*) FROM requests WHERE outcome IN ('hit', 'miss', 'stored')")
[ "$got" = 2000 ] || fail "text udp: $got of 2000 with a real outcome"
run "text udp loss" 0 -o "$tmp/tu.db" $small --protocol text --set transport.kind=udp \
    --set network.loss=2% "$qs"
got=$(q "$tmp/tu.db" "SELECT count(*), sum(outcome IN ('timeout', 'error')) > 0 FROM requests WHERE run_id = 2")
[ "$got" = "2000|1" ] || fail "text udp loss: $got"
if command -v memcached >/dev/null 2>&1; then
    up=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    memcached -u nobody -l 127.0.0.1 -p 0 -U "$up" -t 1 -m 64 >"$tmp/mc.log" 2>&1 &
    echo $! >"$tmp/mc.pid"
    sleep 0.5
    run "text udp memcached" 0 -o "$tmp/tum.db" $small --protocol text --set transport.kind=udp \
        --servers "127.0.0.1:$up" "$qs"
    got=$(q "$tmp/tum.db" "SELECT count(*) FROM requests WHERE outcome IN ('hit', 'miss', 'stored')")
    [ "$got" = 2000 ] || fail "text udp memcached: $got of 2000 with a real outcome"
else
    echo "skip text udp memcached: memcached not installed"
fi

echo "replay_real: $fails failure(s)"
[ "$fails" -eq 0 ]
