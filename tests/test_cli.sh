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
for verb in run compare replay serve broker query report bench; do
    "$bin" --help | grep -q "^  $verb " || { echo "FAIL help lists $verb"; fails=$((fails + 1)); }
    check "$verb --help" 0 "$bin" "$verb" --help
done
check "no args" 2 "$bin"
check "unknown verb" 2 "$bin" frobnicate
check "unknown option" 2 "$bin" --frobnicate
"$bin" frobnicate 2>&1 | grep -q "unknown verb 'frobnicate'" || { echo "FAIL unknown verb message"; fails=$((fails + 1)); }
check "bench unknown" 2 "$bin" bench nosuch
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
check "run refuses faults on memnet" 3 "$bin" run "$tmp/f.ini" -o "$tmp/run.db" --world memnet
"$bin" run "$tmp/f.ini" -o "$tmp/run.db" --world memnet 2>&1 | grep -q 'faults\] need --world sim' ||
    { echo "FAIL run faults on memnet message"; fails=$((fails + 1)); }
printf '[scenario]\nname = f\nrequests = 10\n[transport]\nkind = queue\n' >"$tmp/q.ini"
check "run refuses what is not built" 3 "$bin" run "$tmp/q.ini" -o "$tmp/run.db"

echo "cli: $fails failure(s)"
[ "$fails" -eq 0 ]
