#!/usr/bin/env bash
# Log shipping benchmark (PRODUCT.md section 6): 1M JSON lines through `prodready logs ship` into the
# Loki-compatible receiver (no Loki installs here), the agent pinned to one core and the receiver to the
# other. Reports lines/s, the agent's peak RSS, and a kill -9 + restart run: lines lost (must be 0) and
# duplicates (counted by the receiver, and as reported by the agent).
# Usage: cargo xtask bench logging   (or PRODREADY_BIN=... RECEIVER_BIN=... bash bench/ship.sh)
set -euo pipefail

BIN="${PRODREADY_BIN:?set PRODREADY_BIN to a release build of prodready}"
RECEIVER="${RECEIVER_BIN:?set RECEIVER_BIN to a release build of loki-receiver}"
LINES="${BENCH_LINES:-1000000}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/prodready-ship-bench.XXXXXX")"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
# taskset execs its command, so `$!` is the pinned process itself.
PIN0=(); PIN1=()
if command -v taskset >/dev/null; then PIN0=(taskset -c 0); PIN1=(taskset -c 1); fi
stat_of() { curl -fsS "$URL/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

echo "generating $LINES JSON lines..." >&2
python3 - "$WORK/app.log" "$LINES" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        f.write('{"ts":"2026-11-29T10:%02d:%02d.%06dZ","level":"%s","n":%d,"route":"/orders/{id}","status":200,"latency_ms":%d.%d,"message":"request completed"}\n'
                % (i // 60000 % 60, i // 1000 % 60, i % 1000000, "info" if i % 50 else "error", i, i % 97, i % 10))
PY
SIZE=$(stat -c %s "$WORK/app.log")

start_receiver() {
  rm -f "$WORK/url"
  "${PIN1[@]}" "$RECEIVER" >"$WORK/url" &
  RECV_PID=$!; PIDS+=("$RECV_PID")
  until [ -s "$WORK/url" ]; do sleep 0.05; done
  URL=$(head -n1 "$WORK/url")
}
wait_lines() { # wait until the receiver saw $1 distinct lines
  until [ "$(stat_of distinct)" -ge "$1" ]; do sleep 0.05; done
}

# 1. Throughput and memory.
start_receiver
t0=$(now)
"${PIN0[@]}" "$BIN" logs ship --path "$WORK/app.log" --loki "$URL" --positions "$WORK/positions.json" \
  2>"$WORK/agent.log" &
AGENT=$!; PIDS+=("$AGENT")
wait_lines "$LINES"
t1=$(now)
peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$AGENT/status")
kill -TERM "$AGENT"; wait "$AGENT" || true
secs=$(echo "$t1 - $t0" | bc)
rate=$(echo "$LINES / $secs" | bc)
rss_mib=$(echo "scale=1; $peak_kib / 1024" | bc)
dups=$(stat_of duplicates)
kill "$RECV_PID" 2>/dev/null || true; wait "$RECV_PID" 2>/dev/null || true

# 2. kill -9 in the middle, then restart.
rm -f "$WORK/positions.json"
start_receiver
"${PIN0[@]}" "$BIN" logs ship --path "$WORK/app.log" --loki "$URL" --positions "$WORK/positions.json" 2>/dev/null &
AGENT=$!; PIDS+=("$AGENT")
wait_lines $((LINES / 3))
kill -KILL "$AGENT"; wait "$AGENT" 2>/dev/null || true
at_kill=$(stat_of lines)
"${PIN0[@]}" "$BIN" logs ship --path "$WORK/app.log" --loki "$URL" --positions "$WORK/positions.json" 2>"$WORK/agent2.log" &
AGENT=$!; PIDS+=("$AGENT")
wait_lines "$LINES"
sleep 0.5
kill -TERM "$AGENT"; wait "$AGENT" || true
resent=$(grep '"stopped"' "$WORK/agent2.log" | python3 -c "import json,sys; print(json.loads(sys.stdin.read())['lines_resent'])")
distinct=$(stat_of distinct); total=$(stat_of lines); kdups=$(stat_of duplicates)

cat <<OUT
dataset: $LINES JSON lines, $(echo "scale=1; $SIZE / 1048576" | bc) MiB, one file
| measure | value | target |
|---|---|---|
| throughput (agent on one core) | $rate lines/s ($secs s) | >= 200000 lines/s |
| agent peak RSS | $rss_mib MiB | bounded |
| duplicates without a crash | $dups | 0 |
| kill -9 at $at_kill lines, restart: lines lost | $((LINES - distinct)) | 0 |
| kill -9, restart: duplicates received / reported resent by the agent | $kdups / $resent | counted |
| lines received in all | $total | |
OUT
