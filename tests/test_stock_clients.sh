#!/bin/sh
# test_stock_clients.sh: stock memcached clients against `cachebed serve`, unchanged —
# pymemcache (python3-pymemcache), libmemcached-tools' memccp/memccat/memcstat/memcrm, and
# memccapable's text-protocol conformance suite.
# Usage: test_stock_clients.sh path/to/cachebed [serve options, e.g. --threads 2]
#
# A tool that is missing is skipped with a message (setup's package list installs them all);
# the server runs on an ephemeral loopback port and is stopped with SIGTERM at the end, which
# must make it exit 0.
set -u
bin=$1
shift
py=/usr/bin/python3 # Debian's python, where python3-pymemcache installs
fails=0
skips=0
tmp=$(mktemp -d) || exit 1
"$bin" serve --port 0 "$@" >"$tmp/serve.out" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do
    grep -q listening "$tmp/serve.out" && break
    sleep 0.1
done
port=$(awk '/listening/ {print $5}' "$tmp/serve.out")
[ -n "$port" ] || { echo "FAIL server did not start:"; cat "$tmp/serve.out"; exit 1; }
srv=127.0.0.1:$port
ok() { echo "ok   $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }
skip() { echo "SKIP $1"; skips=$((skips + 1)); }

# pymemcache: every classic command it offers, pipelined multi-gets, a large value, noreply.
if [ -x "$py" ] && "$py" -c 'import pymemcache' 2>/dev/null; then
    if "$py" - "$port" <<'PYEOF'
import sys
from pymemcache.client.base import Client
c = Client(("127.0.0.1", int(sys.argv[1])), connect_timeout=5, timeout=5)
assert c.version().startswith(b"1.6")
assert c.set("k", b"v1", noreply=False) is True
assert c.get("k") == b"v1"
assert c.add("k", b"x", noreply=False) is False
assert c.replace("k", b"v2", noreply=False) is True
assert c.append("k", b"!", noreply=False) is True
assert c.prepend("k", b"<", noreply=False) is True
assert c.get("k") == b"<v2!"
value, cas = c.gets("k")
assert c.cas("k", b"new", cas, noreply=False) is True
assert c.cas("k", b"newer", cas, noreply=False) is False
assert c.get("k") == b"new"
assert c.set("n", b"10") is True           # noreply (pymemcache's default)
assert c.incr("n", 5) == 15 and c.decr("n", 20) == 0
assert c.touch("k", 100, noreply=False) is True
assert c.delete("k", noreply=False) is True and c.get("k") is None
c.set_many({"m%d" % i: b"x" * i for i in range(200)})
got = c.get_many(["m%d" % i for i in range(200)])
assert len(got) == 200 and all(got["m%d" % i] == b"x" * i for i in range(200))
big = bytes(range(256)) * 2048             # 512 KiB, every byte value
assert c.set("big", big, noreply=False) is True and c.get("big") == big
assert c.set("gone", b"x", expire=-1, noreply=False) is True and c.get("gone") is None
stats = c.stats()
assert stats[b"curr_items"] >= 200 and stats[b"cmd_get"] > 0
assert c.flush_all(noreply=False) is True and c.get("big") is None
c.close()
PYEOF
    then ok pymemcache; else fail pymemcache; fi
else
    skip "pymemcache: /usr/bin/python3 with python3-pymemcache not found"
fi

# libmemcached-tools: copy files in, read them back byte for byte, stats, remove.
if command -v memccp >/dev/null && command -v memccat >/dev/null && command -v memcstat >/dev/null &&
    command -v memcrm >/dev/null; then
    head -c 300000 /dev/urandom >"$tmp/blob.bin"
    printf 'hello from memccp\n' >"$tmp/note.txt"
    (cd "$tmp" && memccp --servers="$srv" blob.bin note.txt) || fail "memccp"
    # memccat ends every value with a newline of its own (it does so with memcached too)
    (cd "$tmp" && memccat --servers="$srv" blob.bin >blob.out) &&
        printf '\n' | cat "$tmp/blob.bin" - | cmp -s - "$tmp/blob.out" &&
        ok "memccp + memccat (300 kB binary)" || fail "memccat blob differs"
    [ "$(memccat --servers="$srv" note.txt)" = "hello from memccp" ] && ok "memccat text" ||
        fail "memccat text"
    memcstat --servers="$srv" >"$tmp/stat.out" && grep -q 'curr_items: 2' "$tmp/stat.out" &&
        ok "memcstat" || { fail "memcstat"; cat "$tmp/stat.out"; }
    memcrm --servers="$srv" note.txt && ! memccat --servers="$srv" note.txt >/dev/null 2>&1 &&
        ok "memcrm" || fail "memcrm"
else
    skip "libmemcached-tools (memccp, memccat, memcstat, memcrm) not installed"
fi

# memccapable: libmemcached's text-protocol conformance checker (it flushes the server).
if command -v memccapable >/dev/null; then
    timeout 60 memccapable -a -t 5 -h 127.0.0.1 -p "$port" >"$tmp/capable.out" 2>&1 &&
        grep -q 'All tests passed' "$tmp/capable.out" && ok "memccapable -a" ||
        { fail "memccapable -a"; grep -v pass "$tmp/capable.out"; }
else
    skip "memccapable not installed"
fi

kill -TERM $pid
wait $pid
status=$?
[ "$status" -eq 0 ] && ok "SIGTERM: clean exit" || fail "SIGTERM: exit $status"
trap 'rm -rf "$tmp"' EXIT
echo "stock clients: $fails failure(s), $skips skipped"
[ "$fails" -eq 0 ]
