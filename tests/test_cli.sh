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
for verb in run compare replay serve broker query report bench keygen; do
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
check "run refuses what is not built" 3 "$bin" run "$tmp/f.ini" -o "$tmp/run.db"
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
check "run queue_broker.ini" 3 "$bin" run -o "$tmp/t.db" "$scen/queue_broker.ini"
"$bin" run -o "$tmp/t.db" "$scen/queue_broker.ini" 2>&1 | grep -q 'not built yet: transport kind = queue' ||
    { echo "FAIL queue_broker reason"; fails=$((fails + 1)); }
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

echo "cli: $fails failure(s)"
[ "$fails" -eq 0 ]
