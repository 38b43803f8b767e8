#!/bin/sh
# test_replay_memcached.sh: `cachebed replay --protocol text` against a real memcached
# (Debian's memcached package) on a free loopback port, started and stopped here. Every
# request must complete with a real outcome, the run is recorded with mode 'real', and
# memcached's own counters must show the requests. Skips (exit 0, with a message) only when
# memcached is not installed. Usage: test_replay_memcached.sh path/to/cachebed SOURCE_DIR
set -u
bin=$1
src=$2
fails=0
command -v memcached >/dev/null 2>&1 || { echo "SKIP: memcached not installed"; exit 0; }
tmp=$(mktemp -d) || exit 1
mpid=
cleanup() {
    [ -n "$mpid" ] && kill "$mpid" 2>/dev/null && wait "$mpid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
# memcached_cmd PORT LINE: send one command, print the reply up to END (or one line).
memcached_cmd() {
    python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.sendall(sys.argv[2].encode() + b"\r\n")
buf = b""
while not (buf.endswith(b"END\r\n") or (buf.endswith(b"\r\n") and not buf.startswith(b"STAT"))):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
sys.stdout.write(buf.decode())
PY
}
# A free port: bind 0, read it back, start memcached there; retry if another process won it.
port=
for attempt in 1 2 3 4 5; do
    p=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    memcached -u nobody -l 127.0.0.1 -p "$p" -U 0 -t 1 -m 64 >"$tmp/mc.log" 2>&1 &
    mpid=$!
    for i in 1 2 3 4 5 6 7 8 9 10; do
        memcached_cmd "$p" version 2>/dev/null | grep -q '^VERSION' && { port=$p; break; }
        kill -0 "$mpid" 2>/dev/null || break
        sleep 0.2
    done
    [ -n "$port" ] && break
    kill "$mpid" 2>/dev/null; wait "$mpid" 2>/dev/null; mpid=
done
[ -n "$port" ] || { echo "FAIL: memcached did not start"; cat "$tmp/mc.log"; exit 1; }
echo "memcached $(memcached_cmd "$port" version | tr -d '\r') on 127.0.0.1:$port"

cd "$src" || exit 1
# A long timeout: this checks the text path, not latency; a loaded CI machine can stall
# a request past quickstart's 100 ms and make it a (real) timeout.
"$bin" replay -o "$tmp/mc.db" --set scenario.requests=2000 --set scenario.warmup=0s \
    --set transport.timeout=5s --set transport.timeout_max=5s --servers "127.0.0.1:$port" \
    --protocol text scenarios/quickstart.ini >"$tmp/out" 2>&1
st=$?
cat "$tmp/out"
[ "$st" = 0 ] || { echo "FAIL replay exit $st"; fails=$((fails + 1)); }
got=$(sqlite3 "$tmp/mc.db" "SELECT mode, status,
    (SELECT count(*) FROM requests WHERE run_id = 1),
    (SELECT count(*) FROM requests WHERE run_id = 1 AND outcome IN ('hit', 'miss', 'stored')),
    (SELECT count(*) FROM events WHERE run_id = 1 AND kind = 'server'
        AND detail LIKE '%existing server, memcached text protocol')
    FROM runs WHERE id = 1")
[ "$got" = "real|complete|2000|2000|1" ] ||
    { echo "FAIL run row: got '$got', want 'real|complete|2000|2000|1'"; fails=$((fails + 1)); }
# memcached saw them: 2000 gets and sets (plus our own version probes, which are not counted).
ops=$(memcached_cmd "$port" stats | tr -d '\r' |
    awk '$2 == "cmd_get" || $2 == "cmd_set" { n += $3 } END { print n }')
[ "$ops" = 2000 ] || { echo "FAIL memcached cmd_get + cmd_set = '$ops', want 2000"; fails=$((fails + 1)); }
# A dead server: requests fail (errors), never hang; replay reports the failure.
kill "$mpid"; wait "$mpid" 2>/dev/null; mpid=
timeout 60 "$bin" replay --quiet -o "$tmp/dead.db" --set scenario.requests=200 \
    --servers "127.0.0.1:$port" --protocol text scenarios/quickstart.ini >"$tmp/dead.out" 2>&1
st=$?
[ "$st" != 124 ] || { echo "FAIL replay against a dead server hung"; fails=$((fails + 1)); }
echo "replay_memcached: $fails failure(s)"
[ "$fails" = 0 ]
