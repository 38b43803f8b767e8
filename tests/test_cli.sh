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
echo "cli: $fails failure(s)"
[ "$fails" -eq 0 ]
