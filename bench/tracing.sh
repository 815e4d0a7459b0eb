#!/usr/bin/env bash
# The server layer's cost per request against tracing-opentelemetry's plain layer (issue #19), two ways:
# 1. time: the benchmark's own interleaved runs (wall, request-thread CPU, process CPU; noisy on a
#    shared machine);
# 2. instructions: every case alone under `valgrind --tool=callgrind`, at two request counts; the
#    difference of the process's totals divided by the difference of requests is the instructions per
#    request (request path, batch processor and exporter together), repeatable whatever else the machine
#    is doing.
# Usage: cargo xtask bench tracing   (or bash bench/tracing.sh; BENCH_BIN=path/to/overhead skips the build)
set -euo pipefail

if [ -z "${BENCH_BIN:-}" ]; then
    BENCH_BIN=$(cargo bench --package prodready-tracing --features axum --bench overhead --no-run \
        --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "overhead" and m.get("executable"):
        print(m["executable"])')
fi
BIN="$BENCH_BIN"
SMALL="${BENCH_SMALL:-2000}"
LARGE="${BENCH_LARGE:-12000}"
# A queue that holds every span of a run: nothing is dropped, so every case exports all its spans and the
# exporter's share is the same work at every request count (the SDK providers read this variable
# themselves; `--queue` gives it to `init`).
export OTEL_BSP_MAX_QUEUE_SIZE="${OTEL_BSP_MAX_QUEUE_SIZE:-200000}"
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }

echo "## time"
"$BIN" --bench --queue "$OTEL_BSP_MAX_QUEUE_SIZE"

# Instructions of the whole process for one case at N requests.
instructions() {
    local out
    out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" --case "$1" --requests "$2" --queue "$OTEL_BSP_MAX_QUEUE_SIZE" \
        >/dev/null 2>"$out"
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out"
    rm -f "$out"
}

echo
echo "## instructions per request (callgrind, ($LARGE - $SMALL) requests)"
echo
echo "| case | instructions/request | ratio to the exporter's plain |"
echo "|---|---|---|"
declare -A per_case
for exporter in none discard sink stock; do
    middlewares="plain extract attributes server"
    [ "$exporter" = none ] && middlewares=none
    base=""
    for middleware in $middlewares; do
        case="$exporter/$middleware"
        small=$(instructions "$case" "$SMALL")
        large=$(instructions "$case" "$LARGE")
        per=$(( (large - small) / (LARGE - SMALL) ))
        per_case[$case]=$per
        [ -z "$base" ] && base=$per
        echo "| $case | $per | $(python3 -c "print(f'{$per / $base:.2f}')") |"
    done
done
echo
# The target (PRODUCT.md section 6): a request through ServerLayer with its exporter on, against
# tracing-opentelemetry's plain layer with the exporter a team would set up (opentelemetry-otlp's).
echo "target: sink/server ÷ stock/plain = ${per_case[sink/server]} ÷ ${per_case[stock/plain]} =" \
    "$(python3 -c "print(f'{${per_case[sink/server]} / ${per_case[stock/plain]}:.2f}')") (≤ 1.30)"
