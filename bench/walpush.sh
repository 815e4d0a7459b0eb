#!/usr/bin/env bash
# WAL push benchmark (issue 21): `prodready backup wal-push` against pgBackRest's `archive-push` (Debian's
# pgbackrest 2.45, unpacked by `cargo xtask peers`), on the same throwaway cluster and the same segments.
#
# A cluster (archive_mode off, wal_keep_size large so nothing is recycled) writes $BENCH_SEGMENTS
# (default 48) segments of 16 MiB: rows of md5 text, as compressible as typical OLTP WAL. The finished
# segments are copied aside once. Each run then plays PostgreSQL's archiver on a fresh pg_wal copy: a
# `.ready` file per segment in archive_status, the archive command run once per segment, oldest first,
# `.ready` renamed to `.done` on success only, exactly as the archiver does; the store (repository) is
# emptied before each run. Both tools run as the cluster's user, store zstd level 3 and compare hashes
# (SHA-256 for prodready, SHA-1 for pgBackRest), into a local directory:
#   sync:     one file per call (prodready --jobs 1; pgBackRest default, process-max 1)
#   parallel: two files at once (prodready --jobs 2, pushing ready files ahead; pgBackRest archive-async
#             with process-max 2, its asynchronous mode)
#   async:    prodready --async --jobs 2 against pgBackRest archive-async process-max 2
# Runs are interleaved (prodready, pgBackRest, prodready, ...) for $BENCH_ROUNDS rounds (default 3); the
# median wall time of each gives segments per second.
# Usage: cargo xtask bench walpush   (or PRODREADY_BIN=... bash bench/walpush.sh)
set -euo pipefail

BIN="${PRODREADY_BIN:?set PRODREADY_BIN to a release build of prodready}"
PEERS="${PRODREADY_PEERS_DIR:-$HOME/.cache/prodready/peers}"
PEER="${PGBACKREST:-$PEERS/bin/pgbackrest}"
PGBIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}"
SEGMENTS="${BENCH_SEGMENTS:-48}"
ROUNDS="${BENCH_ROUNDS:-3}"
[ -x "$PEER" ] || { echo "no $PEER: run cargo xtask peers" >&2; exit 1; }
[ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL server binaries in /usr/lib/postgresql" >&2; exit 1; }

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/prodready-walpush-bench.XXXXXX")"
chmod 755 "$WORK"
DATA="$WORK/data"
SOCK="$WORK/sock"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  set +e
  [ -f "$DATA/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >/dev/null 2>&1
  # A background pusher (either tool) may still be winding down.
  sleep 1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Both tools run as the cluster's user, from copies it can execute.
mkdir -p "$WORK/bin" "$SOCK"
cp "$BIN" "$WORK/bin/prodready"
cp "$(readlink -f "$PEER")" "$WORK/bin/pgbackrest"
chmod 755 "$WORK/bin" "$WORK/bin/"*
[ "$(id -u)" = 0 ] && chown -R postgres: "$WORK"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
as_pg "$PGBIN/initdb" -U postgres --no-sync -E UTF8 --locale=C --auth=trust -D "$DATA" >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/postgres.log" -w -t 60 start -o "-p $PORT \
  -c listen_addresses=127.0.0.1 -c unix_socket_directories=$SOCK -c fsync=off -c wal_keep_size=4GB \
  -c max_wal_size=4GB" >/dev/null
psql() { "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }

echo "dataset: $SEGMENTS segments of WAL..." >&2
psql -c "CREATE TABLE t (id int, a text, b text, at timestamptz)"
START=$(psql -c "SELECT pg_walfile_name(pg_current_wal_lsn())")
first=$((16#${START:16:8} + 16#${START:8:8} * 256))
while :; do
  psql -c "INSERT INTO t SELECT g, md5(g::text), md5(random()::text), now() FROM generate_series(1, 100000) g"
  CUR=$(psql -c "SELECT pg_walfile_name(pg_current_wal_lsn())")
  cur=$((16#${CUR:16:8} + 16#${CUR:8:8} * 256))
  [ $((cur - first)) -gt "$SEGMENTS" ] && break
done
psql -c "SELECT pg_switch_wal()" >/dev/null
SEGS=()
for ((i = first; i < first + SEGMENTS; i++)); do
  SEGS+=("$(printf '%08X%08X%08X' 1 $((i / 256)) $((i % 256)))")
done
mkdir -p "$WORK/segments"
for s in "${SEGS[@]}"; do cp "$DATA/pg_wal/$s" "$WORK/segments/"; done
[ "$(id -u)" = 0 ] && chown -R postgres: "$WORK/segments"
BYTES=$(du -sb "$WORK/segments" | cut -f1)

# pgBackRest: one stanza on this cluster (created against the running server; pushes read the copy of
# its identity in $WORK/run), zstd level 3 like prodready's default, a local repository.
cat >"$WORK/pgbackrest.conf" <<EOF
[global]
repo1-path=$WORK/repo
log-path=$WORK/pgbr-log
lock-path=$WORK/pgbr-lock
spool-path=$WORK/pgbr-spool
log-level-console=warn
log-level-file=off
compress-type=zst
compress-level=3

[bench]
pg1-path=$WORK/run
pg1-port=$PORT
pg1-socket-path=$SOCK
EOF
chown postgres: "$WORK/pgbackrest.conf" 2>/dev/null || true
pgbr() { as_pg "$WORK/bin/pgbackrest" --config="$WORK/pgbackrest.conf" --stanza=bench "$@"; }

# A fresh pg_wal copy with every segment ready, as the archiver would find it, in a copy of the data
# directory's identity (pgBackRest reads global/pg_control and wants the WAL under pg1-path).
fresh_pg_wal() {
  local dir="$WORK/run/pg_wal"
  as_pg rm -rf "$WORK/run"
  as_pg mkdir -p "$dir/archive_status" "$WORK/run/global"
  as_pg cp "$DATA/global/pg_control" "$WORK/run/global/"
  as_pg cp "$DATA/PG_VERSION" "$WORK/run/"
  for s in "${SEGS[@]}"; do
    as_pg cp "$WORK/segments/$s" "$dir/$s"
    as_pg touch "$dir/archive_status/$s.ready"
  done
}

fresh_store() {
  as_pg rm -rf "$WORK/repo" "$WORK/store" "$WORK/pgbr-spool" "$WORK/pgbr-lock"
  as_pg mkdir -p "$WORK/repo" "$WORK/store"
  pgbr --pg1-path="$DATA" stanza-create >/dev/null
}

# The archiver's loop: one call per segment, oldest first; exits on the first failure.
archive_all() {
  local dir="$WORK/run/pg_wal" s
  for s in "${SEGS[@]}"; do
    "$@" "$dir/$s" || { echo "archive command failed for $s: $*" >&2; return 1; }
    as_pg mv "$dir/archive_status/$s.ready" "$dir/archive_status/$s.done"
  done
}

ours_sync() { as_pg "$WORK/bin/prodready" backup wal-push --store "$WORK/store" --jobs 1 "$1" 2>/dev/null; }
ours_parallel() { as_pg "$WORK/bin/prodready" backup wal-push --store "$WORK/store" --jobs 2 "$1" 2>/dev/null; }
ours_async() { as_pg "$WORK/bin/prodready" backup wal-push --store "$WORK/store" --jobs 2 --async "$1" 2>/dev/null; }
peer_sync() { pgbr archive-push "$1"; }
peer_async() { pgbr --archive-async --process-max=2 archive-push "$1"; }

declare -A TIMES STORED
run() { # NAME FUNCTION
  fresh_pg_wal
  fresh_store
  sync
  local t0 t1
  t0=$(date +%s.%N)
  archive_all "$2"
  t1=$(date +%s.%N)
  TIMES[$1]+="$(echo "$t1 - $t0" | bc) "
  STORED[$1]=$(( $(du -sb "$WORK/store" "$WORK/repo/archive" | awk '{s += $1} END {print s}') / 1048576 ))
  # Let a background pusher (either tool) finish before the next run.
  sleep 11
}

for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r/$ROUNDS..." >&2
  run ours_sync ours_sync
  run peer_sync peer_sync
  run ours_parallel ours_parallel
  run peer_async peer_async
  run ours_async ours_async
done

# The archive holds every segment, byte for byte: fetch each back and compare.
for s in "${SEGS[@]}"; do
  as_pg "$WORK/bin/prodready" backup wal-fetch --store "$WORK/store" "$s" "$WORK/run/fetched" >/dev/null
  cmp -s "$WORK/run/fetched" "$WORK/segments/$s" || { echo "wal-fetch $s differs from the original" >&2; exit 1; }
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "walpush: $SEGMENTS segments ($((BYTES / 1048576)) MiB), $ROUNDS interleaved rounds, $(nproc) cores, load before: $LOAD0"
printf '%-14s %12s %14s %12s   %s\n' mode "median s" "segments/s" "stored MiB" "all runs (s)"
for name in ours_sync peer_sync ours_parallel peer_async ours_async; do
  m=$(echo "${TIMES[$name]}" | median)
  printf '%-14s %12.2f %14.1f %12s   %s\n' "$name" "$m" "$(echo "$SEGMENTS / $m" | bc -l)" "${STORED[$name]}" "${TIMES[$name]}"
done
ratio() { echo "$(echo "${TIMES[$2]}" | median) / $(echo "${TIMES[$1]}" | median)" | bc -l; }
printf 'throughput ratio prodready/pgBackRest: sync %.2fx, parallel (push-ahead) vs async %.2fx, async vs async %.2fx\n' \
  "$(ratio ours_sync peer_sync)" "$(ratio ours_parallel peer_async)" "$(ratio ours_async peer_async)"
