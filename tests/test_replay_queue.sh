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
[ "$fails" = 0 ] && echo "ok   replay queue_broker" && exit 0
exit 1
