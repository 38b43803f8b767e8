#!/bin/sh
# test_replay_queue.sh: the queue transport as real processes (docs/real.md §10).
#  1. `cachebed broker --port 0`: hostile endpoints (garbage, a 2 GiB length) are closed and
#     counted, the broker stays up, and SIGTERM stops it cleanly with its counters printed.
#  2. `cachebed replay scenarios/queue_broker.ini` with 2,000 requests: replay starts a
#     broker and 4 `cachebed serve --broker` consumers; every request completes with a real
#     outcome and the run is recorded with mode 'real', transport 'queue'.
# Usage: test_replay_queue.sh path/to/cachebed SOURCE_DIR
set -u
bin=$1
src=$2
fails=0
tmp=$(mktemp -d) || exit 1
bpid=
cleanup() {
    [ -n "$bpid" ] && kill "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

"$bin" broker --port 0 >"$tmp/broker.out" 2>&1 &
bpid=$!
port=
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    port=$(sed -n 's/^listening on 127.0.0.1 port \([0-9]*\) (broker)$/\1/p' "$tmp/broker.out")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: broker did not start"; cat "$tmp/broker.out"; exit 1; }
python3 - "$port" <<'PY' || fails=$((fails + 1))
import socket, struct, sys
port = int(sys.argv[1])
def closed(payload):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(payload)
    try:
        while True:
            if not s.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
# garbage, then a PUBLISH header announcing 2 GiB of payload
ok = closed(b"GET / HTTP/1.0\r\n\r\n")
ok &= closed(struct.pack(">HBBBBHIIQI", 0xCB51, 1, 2, 0, 0, 0, 1, 0, 1, 1 << 31))
# still up: a subscriber gets what another endpoint publishes
sub = socket.create_connection(("127.0.0.1", port), timeout=5)
sub.sendall(struct.pack(">HBBBBHIIQI", 0xCB51, 1, 1, 0, 0, 0, 0, 3, 0, 0))
pub = socket.create_connection(("127.0.0.1", port), timeout=5)
pub.sendall(struct.pack(">HBBBBHIIQI", 0xCB51, 1, 2, 0, 0, 0, 3, 4, 1, 2) + b"hi")
got = b""
while len(got) < 30:
    chunk = sub.recv(64)
    if not chunk:
        break
    got += chunk
ok &= len(got) == 30 and got[3] == 3 and got[28:] == b"hi"
print("ok   broker hostile input" if ok else "FAIL broker hostile input")
sys.exit(0 if ok else 1)
PY
kill -TERM "$bpid"
wait "$bpid"
st=$?
bpid=
[ "$st" = 0 ] || { echo "FAIL broker exit $st"; fails=$((fails + 1)); }
grep -q '2 for bad input); published 1, .*delivered 1 ' "$tmp/broker.out" ||
    { echo "FAIL broker counters:"; cat "$tmp/broker.out"; fails=$((fails + 1)); }

cd "$src" || exit 1
"$bin" replay -o "$tmp/q.db" --set scenario.requests=2000 --set scenario.duration=0s \
    --set scenario.warmup=0s scenarios/queue_broker.ini >"$tmp/out" 2>&1
st=$?
cat "$tmp/out"
[ "$st" = 0 ] || { echo "FAIL replay exit $st"; fails=$((fails + 1)); }
got=$(sqlite3 "$tmp/q.db" "SELECT mode, transport, status,
    (SELECT count(*) FROM requests WHERE run_id = 1),
    (SELECT count(*) FROM requests WHERE run_id = 1 AND outcome IN ('hit', 'miss', 'stored')),
    (SELECT count(*) FROM events WHERE run_id = 1 AND kind = 'broker')
    FROM runs WHERE id = 1")
[ "$got" = "real|queue|complete|2000|2000|1" ] ||
    { echo "FAIL replay run: '$got'"; fails=$((fails + 1)); }

# 3. [faults] over the queue: the broker is SIGKILLed at 1 s and restarted on its port at
#    1.5 s; server0 (a consumer) is SIGKILLed at 2 s and restarted at 2.3 s. Requests issued
#    before the broker crash all succeed, some issued during its outage time out, those
#    issued well after both recoveries all succeed; requests to server0 issued while it is
#    down wait for it (retried); the four faults are event rows.
cat >"$tmp/qf.ini" <<'EOF'
[scenario]
name = queue_faults
seed = 1
duration = 3s
warmup = 0s

[network]
latency = 100us

[servers]
count = 2
memory = 16MiB

[clients]
count = 2
outstanding = 2

[transport]
kind = queue
timeout = 50ms

[workload]
keys = 1000
value_size = 100B
mix = get=0.9 set=0.1
arrival = closed
think_time = 2ms

[faults]
at = 1s crash broker
at = 1.5s recover broker
at = 2s crash server0
at = 2.3s recover server0
EOF
"$bin" replay -o "$tmp/qf.db" "$tmp/qf.ini" >"$tmp/out" 2>&1
st=$?
[ "$st" = 0 ] || { cat "$tmp/out"; echo "FAIL replay faults exit $st"; fails=$((fails + 1)); }
grep -q "did not listen again" "$tmp/out" && { cat "$tmp/out"; echo "FAIL a restart"; fails=$((fails + 1)); }
ok="outcome IN ('hit', 'miss', 'stored')"
got=$(sqlite3 "$tmp/qf.db" "SELECT
    (SELECT count(*) FROM requests WHERE issue_ns < 900000000 AND NOT $ok),
    (SELECT count(*) > 100 FROM requests WHERE issue_ns < 900000000 AND $ok),
    (SELECT count(*) > 0 FROM requests WHERE issue_ns >= 1000000000 AND issue_ns < 1500000000
        AND outcome IN ('timeout', 'error')),
    (SELECT count(*) > 0 FROM requests WHERE server = 0 AND issue_ns >= 2000000000
        AND issue_ns < 2300000000 AND attempts > 1),
    (SELECT count(*) FROM requests WHERE issue_ns >= 2600000000 AND NOT $ok),
    (SELECT count(*) > 100 FROM requests WHERE issue_ns >= 2600000000 AND $ok),
    (SELECT group_concat(node || ':' || kind, ',') FROM (SELECT node, kind FROM events
        WHERE kind IN ('crash', 'recover') AND detail NOT LIKE '%failed%' ORDER BY time_ns))")
want="0|1|1|1|0|1|broker:crash,broker:recover,server0:crash,server0:recover"
[ "$got" = "$want" ] ||
    { cat "$tmp/out"; echo "FAIL replay faults: '$got', want '$want'"; fails=$((fails + 1)); }
[ "$fails" = 0 ] && echo "ok   replay queue faults (broker and server crash, recover)"

# 4. Compression and encryption over the queue: the consumers get the scenario's codec
#    (zstd, a key from `cachebed keygen`, sealed datagrams: queue messages may be
#    redelivered); a codec mismatch would make every request time out. 4 KiB values of the
#    workload's compressible filler travel compressed: a hit's reply is under 4 KiB.
"$bin" keygen "$tmp/k.key" >/dev/null || { echo "FAIL keygen"; fails=$((fails + 1)); }
cat >"$tmp/qc.ini" <<EOF
[scenario]
name = queue_codec
seed = 2
requests = 1500
duration = 0s
warmup = 0s

[servers]
count = 2

[clients]
count = 3
outstanding = 4

[transport]
kind = queue
timeout = 200ms
compression = zstd
compression_min = 256B
encryption_key_file = $tmp/k.key

[workload]
keys = 500
value_size = 4KiB
mix = get=0.8 set=0.2
EOF
"$bin" replay -o "$tmp/qc.db" "$tmp/qc.ini" >"$tmp/out" 2>&1
st=$?
[ "$st" = 0 ] || { cat "$tmp/out"; echo "FAIL replay codec exit $st"; fails=$((fails + 1)); }
got=$(sqlite3 "$tmp/qc.db" "SELECT
    (SELECT count(*) FROM requests WHERE $ok),
    (SELECT count(*) > 100 AND max(bytes_received) < 4096 FROM requests WHERE outcome = 'hit'),
    (SELECT count(*) FROM events WHERE kind = 'server'
        AND detail LIKE '%codec: zstd:3 min=256, sealed datagram')")
[ "$got" = "1500|1|2" ] ||
    { cat "$tmp/out"; echo "FAIL replay codec: '$got', want '1500|1|2'"; fails=$((fails + 1)); }
[ "$fails" = 0 ] && echo "ok   replay queue compression and encryption"

# 5. replicas = 2 over the queue (replication_failover.ini: server1 crashes at 1 s and
#    recovers at 2 s; a 100 ms timeout, not its 20 ms, for slow sanitizer builds on a
#    loaded machine): the clients' routers fail over to the other replica and eject the
#    crashed one, so almost every request succeeds (without replication about a third of
#    those issued during the outage would time out).
"$bin" replay -o "$tmp/qr.db" --set transport.kind=queue --set workload.rate=2k/s \
    --set transport.timeout=100ms --set scenario.duration=2.5s \
    scenarios/replication_failover.ini >"$tmp/out" 2>&1
st=$?
[ "$st" = 0 ] || { cat "$tmp/out"; echo "FAIL replay replicas exit $st"; fails=$((fails + 1)); }
got=$(sqlite3 "$tmp/qr.db" "SELECT
    (SELECT count(*) > 1000 FROM requests),
    (SELECT count(*) FROM requests WHERE NOT $ok) * 200 < (SELECT count(*) FROM requests),
    (SELECT count(*) > 500 FROM requests WHERE issue_ns >= 1000000000
        AND issue_ns < 2000000000),
    (SELECT count(*) > 0 FROM events WHERE kind = 'eject'),
    (SELECT count(*) FROM events WHERE node = 'server1' AND kind IN ('crash', 'recover'))")
[ "$got" = "1|1|1|1|2" ] ||
    { cat "$tmp/out"; echo "FAIL replay replicas: '$got', want '1|1|1|1|2'"; fails=$((fails + 1)); }
[ "$fails" = 0 ] && echo "ok   replay queue replicas = 2 with a server crash"

[ "$fails" = 0 ] && echo "ok   replay queue_broker" && exit 0
exit 1
