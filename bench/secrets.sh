#!/usr/bin/env bash
# `secrets migrate` of a large .env into the file store (issue #13): the dry run, the first apply (one
# store rewrite for the whole file), and a second run that finds everything unchanged.
# Usage: cargo xtask bench secrets   (or PRODREADY_BIN=... bash bench/secrets.sh)
set -euo pipefail

BIN="${PRODREADY_BIN:?set PRODREADY_BIN to a release build of prodready}"
ENTRIES="${BENCH_ENTRIES:-10000}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/prodready-secrets-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

python3 - "$WORK/.env" "$ENTRIES" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        f.write('SERVICE_%05d_TOKEN="tok-%064x"\n' % (i, i * 2654435761))
PY

# One run of `prodready secrets migrate ARGS...` in the work directory: wall seconds.
timed() {
    local start end
    start=$(date +%s.%N)
    (cd "$WORK" && HOME="$WORK" "$BIN" secrets migrate --from .env --prefix bench/ "$@" >/dev/null)
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.2f}')"
}

dry=$(timed --dry-run)
first=$(timed)
second=$(timed)
size=$(stat -c %s "$WORK/.local/share/prodready/secrets.enc")
echo "entries: $ENTRIES"
echo "dry run (plan only): ${dry} s"
echo "first apply (all added, one store rewrite): ${first} s"
echo "second run (all unchanged, nothing written): ${second} s"
echo "store size: $((size / 1024)) KiB"
