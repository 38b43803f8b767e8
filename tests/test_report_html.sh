#!/bin/sh
# test_report_html.sh: a report's index.html opened in headless Chromium — every image (each
# plot's SVG shown in the page and each PNG it links) loads. The page's own script sets
# body[data-images] to "ok N" or "broken FILES" once all have loaded or failed; Chromium
# dumps the DOM after the page settles. Usage: test_report_html.sh path/to/cachebed SOURCE_DIR
set -u
bin=$1
src=$2
browser=$(command -v chromium || command -v chromium-browser) ||
    { echo "FAIL chromium not found: install Debian's chromium (./setup deps)"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
for seed in 1 2; do
    for clients in 2 4; do
        "$bin" run "$src/scenarios/quickstart.ini" -o "$tmp/r.db" --seed "$seed" --quiet \
            --set clients.count="$clients" --set scenario.requests=20000 >/dev/null ||
            { echo "FAIL cachebed run"; exit 1; }
    done
done
"$bin" report "$tmp/r.db" -o "$tmp/report" || { echo "FAIL cachebed report"; exit 1; }
plots=$(ls "$tmp/report"/*.gp | wc -l)
# Every plot shows its SVG and links its PNG: 2 images per plot.
want="ok $((2 * plots))"
dom=$(timeout 60 "$browser" --headless --no-sandbox --disable-gpu \
    --disable-background-networking --disable-component-update --disable-sync \
    --no-first-run --user-data-dir="$tmp/profile" --virtual-time-budget=10000 \
    --dump-dom "file://$tmp/report/index.html" 2>"$tmp/chromium.log")
status=$?
if [ "$status" -ne 0 ]; then
    echo "FAIL chromium exited $status (124: timed out); its log:"; tail -20 "$tmp/chromium.log"
    exit 1
fi
got=$(printf '%s' "$dom" | grep -o 'data-images="[^"]*"' | head -1)
if [ "$got" != "data-images=\"$want\"" ]; then
    echo "FAIL images: got $got, want data-images=\"$want\""
    exit 1
fi
echo "ok   $plots plots, $((2 * plots)) images loaded in headless Chromium"
