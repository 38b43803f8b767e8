#!/bin/sh
# test_replay_resync.sh: `cachebed replay` with [placement] resync = warm over real sockets
# (docs/real.md §8): a recovered server is warmed from its peers by the replay's resyncer,
# as in the simulator (docs/replication.md §6).
#
# 3 spawned servers on 127.0.0.1, R = 2, write all, read primary, 300 uniform keys (30% sets,
# so nearly every key is written before the crash). server1 is killed at 700ms and restarted
# empty on its port at 800ms. With lazy, reads whose primary is server1 miss until their key
# is written again; with warm, the resyncer copies server1's items from its peers once the
# restarted process accepts connections, and those reads hit. Runs: lazy and warm over tcp,
# warm over udp, warm with zstd and sealing; then sealing over udp with warm is refused.
# Each run is 2.5s of workload (a restart under ASan on a loaded machine may take most of a
# second).
# Usage: test_replay_resync.sh path/to/cachebed SOURCE_DIR
set -u
bin=$1
fails=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
q() { sqlite3 "$1" "$2"; } # q DB SQL

cat >"$tmp/rs.ini" <<'INI'
[scenario]
name = resync_real
seed = 1
duration = 2500ms
warmup = 0s
[network]
latency = 50us
[servers]
count = 3
[clients]
count = 2
outstanding = 4
[placement]
replicas = 2
read_policy = primary
write_policy = all
eject_after = 3
eject_for = 100ms
[transport]
kind = tcp
timeout = 50ms
attempts = 2
[workload]
keys = 300
key_dist = uniform
value_size = 100B
mix = get=0.7 set=0.3
think_time = 500us
[faults]
at = 700ms crash server1
at = 800ms recover server1
INI

"$bin" keygen "$tmp/k.key" >/dev/null 2>&1 || fail "keygen"
for pol in lazy warm udp codec; do
    kind=tcp rs=$pol codec=
    [ "$pol" = udp ] && kind=udp rs=warm
    [ "$pol" = codec ] && rs=warm codec="--set transport.compression=zstd
        --set transport.compression_min=1 --set transport.encryption_key_file=$tmp/k.key"
    # shellcheck disable=SC2086 # $codec is a list of options
    timeout 60 "$bin" replay --quiet -o "$tmp/$pol.db" --set placement.resync=$rs \
        --set transport.kind=$kind $codec "$tmp/rs.ini" >"$tmp/$pol.out" 2>&1
    st=$?
    if [ "$st" -ne 0 ]; then
        fail "replay resync=$pol: exit $st"; cat "$tmp/$pol.out"
    else
        echo "ok   replay resync=$rs over $kind"
    fi
done
grep "resync:" "$tmp/warm.out" "$tmp/udp.out" "$tmp/codec.out"

# The resync is logged as the simulator logs it: one resync_start (detail = peers scanned:
# 2) and one resync_done (detail = items stored on server1, > 0) on node 'resync', after
# the recover; lazy has none.
ev="SELECT count(*), min(time_ns), max(time_ns) FROM events WHERE node = 'resync' AND kind = "
set -- $(q "$tmp/warm.db" "$ev'resync_start'" | tr '|' ' ') x x x
starts=$1 start_ns=$2
set -- $(q "$tmp/warm.db" "$ev'resync_done'" | tr '|' ' ') x x x
dones=$1 done_ns=$2
peers=$(q "$tmp/warm.db" "SELECT substr(detail, instr(detail, 'detail=') + 7) FROM events
    WHERE kind = 'resync_start'")
items=$(q "$tmp/warm.db" "SELECT CAST(substr(detail, instr(detail, 'detail=') + 7) AS INTEGER)
    FROM events WHERE kind = 'resync_done'")
echo "warm: resync_start at $start_ns ns (peers $peers), resync_done at $done_ns ns, $items item(s)"
case "$starts$dones$start_ns$done_ns$items" in *[!0-9]*) starts=x ;; esac
if [ "$starts" = 1 ] && [ "$dones" = 1 ] && [ "$peers" = 2 ] &&
    [ "$start_ns" -ge 800000000 ] && [ "$done_ns" -ge "$start_ns" ] && [ "$items" -gt 0 ]; then
    echo "ok   warm resync events"
else
    fail "warm resync events: starts=$starts dones=$dones peers=$peers start=$start_ns done=$done_ns items=$items"
fi
got=$(q "$tmp/lazy.db" "SELECT count(*) FROM events WHERE kind LIKE 'resync%'")
[ "$got" = 0 ] || fail "lazy: $got resync rows"
got=$(q "$tmp/warm.db" "SELECT count(*) FROM events WHERE kind = 'impairment'
    AND detail LIKE '%resync=warm: a resyncer in the replay process, over tcp%'")
[ "$got" = 1 ] || fail "warm: the impairment row does not say how the resync was run"
# Reads whose primary is server1, issued after the recover, of keys stored before the crash
# (server1 held them, and lost them): lazy misses them once server1 is back until each is
# written again; warm has copied them back (the same seeded operations). While server1
# restarts, such reads fail over to the other replica and hit in both runs.
mq="SELECT sum(outcome = 'miss'), count(*) FROM requests WHERE op = 'get' AND server = 1
    AND issue_ns > 800000000 AND key IN (SELECT key FROM requests WHERE op = 'set'
    AND outcome = 'stored' AND complete_ns < 700000000)"
set -- $(q "$tmp/lazy.db" "$mq" | tr '|' ' ') x x
lazy_miss=$1 lazy_gets=$2
set -- $(q "$tmp/warm.db" "$mq" | tr '|' ' ') x x
warm_miss=$1 warm_gets=$2
echo "server1 reads of keys stored before the crash, after the recover: lazy $lazy_miss miss(es) of $lazy_gets, warm $warm_miss of $warm_gets"
case "$lazy_miss$warm_miss$lazy_gets$warm_gets" in *[!0-9]*) lazy_miss=0 warm_miss=1 ;; esac
if [ "$lazy_gets" -gt 100 ] && [ "$warm_gets" -gt 100 ] && [ "$lazy_miss" -gt 20 ] &&
    [ $((4 * warm_miss)) -lt "$lazy_miss" ]; then
    echo "ok   warm misses less than lazy on server1"
else
    fail "warm vs lazy misses on server1: warm $warm_miss/$warm_gets, lazy $lazy_miss/$lazy_gets"
fi
# Over udp no connect says when the restarted server listens: the resync waits for its
# "listening" line (server_ready). It stores items and the same reads hit (lazy's misses
# come from the lost items, whatever the transport).
items=$(q "$tmp/udp.db" "SELECT CAST(substr(detail, instr(detail, 'detail=') + 7) AS INTEGER)
    FROM events WHERE kind = 'resync_done' AND node = 'resync'")
set -- $(q "$tmp/udp.db" "$mq" | tr '|' ' ') x x
udp_miss=$1 udp_gets=$2
echo "udp warm: $items item(s) stored; server1 reads after the recover: $udp_miss miss(es) of $udp_gets"
case "$items$udp_miss$udp_gets" in *[!0-9]*) items=0 ;; esac
if [ "$items" -gt 0 ] && [ "$udp_gets" -gt 100 ] && [ $((4 * udp_miss)) -lt "$lazy_miss" ]; then
    echo "ok   warm resync over udp"
else
    fail "warm resync over udp: items=$items misses $udp_miss/$udp_gets (lazy tcp $lazy_miss)"
fi

# The resyncer speaks the clients' codec: compressed and sealed frames (zstd, sealed stream).
set -- $(q "$tmp/codec.db" "SELECT
    (SELECT CAST(substr(detail, instr(detail, 'detail=') + 7) AS INTEGER) FROM events
        WHERE kind = 'resync_done'),
    (SELECT count(*) FROM events WHERE kind = 'server' AND detail LIKE '%zstd%sealed stream%')" |
    tr '|' ' ') x x
echo "codec warm: $1 item(s) stored, $2 server row(s) with zstd and sealing"
case "$1$2" in *[!0-9]*) set -- 0 0 ;; esac
[ "$1" -gt 0 ] && [ "$2" = 3 ] && echo "ok   warm resync with zstd and sealing" ||
    fail "warm resync with zstd and sealing: items $1, server rows $2"

# Sealing over udp: 'cachebed serve' keeps one seal session per UDP peer, and the resyncer
# is one more peer of each server, so sealed udp with warm resync works (its salts collided
# with the client's when every peer shared one session).
timeout 60 "$bin" replay --quiet -o "$tmp/x.db" --set placement.resync=warm --set transport.kind=udp \
    --set transport.encryption_key_file="$tmp/k.key" --set clients.count=2 "$tmp/rs.ini" \
    >"$tmp/x.out" 2>&1
st=$?
set -- $(q "$tmp/x.db" "SELECT
    (SELECT CAST(substr(detail, instr(detail, 'detail=') + 7) AS INTEGER) FROM events
        WHERE kind = 'resync_done'),
    (SELECT count(*) FROM requests WHERE outcome = 'error' OR (outcome = 'timeout' AND
        issue_ns > (SELECT time_ns FROM events WHERE kind = 'resync_done')))" | tr '|' ' ') x x
case "$1$2" in *[!0-9]*) set -- 0 -1 ;; esac
[ "$st" = 0 ] && [ "$1" -gt 0 ] && [ "$2" = 0 ] && echo "ok   sealed udp with warm resync: $1 item(s) stored, no error, no timeout after it" ||
    { fail "sealed udp with warm: exit $st, items $1, errors or timeouts after the resync $2"; cat "$tmp/x.out"; }

# The queue transport's servers are the broker's consumers: the resyncer cannot reach them.
timeout 30 "$bin" replay --quiet -o "$tmp/q.db" --set placement.resync=warm --set transport.kind=queue \
    "$tmp/rs.ini" >"$tmp/q.out" 2>&1
st=$?
[ "$st" = 3 ] && grep -q "queue" "$tmp/q.out" && echo "ok   warm resync with the queue transport refused" ||
    { fail "warm resync with the queue transport: exit $st"; cat "$tmp/q.out"; }

echo "replay_resync: $fails failure(s)"
[ "$fails" -eq 0 ]
