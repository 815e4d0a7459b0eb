#!/usr/bin/env bash
# Base backup benchmark: `prodready backup base` (pg_basebackup's tar stream through zstd into a store)
# against `pg_basebackup -Ft -z` into a local directory, on the same throwaway cluster, in the same run.
# Dataset: pgbench at scale $BENCH_SCALE (default 150, ~2.3 GB) in a cluster started here with WAL
# archiving on into our store (`backup base` keeps a base backup only when the store holds its WAL; the
# archive is left out of the sizes). Both sides use -X none (WAL comes from the archive) and a fast
# checkpoint.
# Usage: cargo xtask bench basebackup   (or PRODREADY_BIN=... bash bench/basebackup.sh)
set -euo pipefail

BIN="${PRODREADY_BIN:?set PRODREADY_BIN to a release build of prodready}"
SCALE="${BENCH_SCALE:-150}"
ROUNDS="${BENCH_ROUNDS:-3}"
PGBIN="${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/prodready-bench-base.XXXXXX")"
chmod 755 "$WORK"
# initdb and postgres refuse root: run the server as the postgres user then.
AS=()
if [ "$(id -u)" = 0 ]; then AS=(runuser -u postgres --); mkdir "$WORK/cluster"; chown postgres: "$WORK/cluster"; else mkdir "$WORK/cluster"; fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stop() { "${AS[@]}" "$PGBIN/pg_ctl" -D "$WORK/cluster/data" -m fast -w stop >/dev/null 2>&1 || true; }
trap 'stop; rm -rf "$WORK"' EXIT

# The server's user runs wal-push: a copy of the binary and the store it can reach.
install -m 755 "$BIN" "$WORK/prodready"
mkdir "$WORK/store"
if [ "$(id -u)" = 0 ]; then chown postgres: "$WORK/store"; fi
ARCHIVE="$WORK/prodready backup wal-push --store $WORK/store %p"
"${AS[@]}" "$PGBIN/initdb" -D "$WORK/cluster/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
"${AS[@]}" "$PGBIN/pg_ctl" -D "$WORK/cluster/data" -l "$WORK/cluster/log" -w \
  -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$WORK/cluster -c archive_mode=on -c max_wal_size=4GB" \
  -o "-c archive_command='$ARCHIVE'" \
  start >/dev/null
URL="postgres://postgres@127.0.0.1:$PORT/postgres"

psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
# secs CMD...: wall seconds; peak RSS (KiB) of CMD in $WORK/rss
secs() { local t0 t1; t0=$(now); /usr/bin/time -f "%M" -o "$WORK/rss" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }; t1=$(now); echo "$t1 - $t0" | bc; }
ratio() { printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; }
size() { du -sb --exclude=.wal "$1" | cut -f1; }
mib() { echo "scale=1; $1 / 1048576" | bc; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
checkpoint() { psql "$URL" -c CHECKPOINT; }

echo "building the dataset (pgbench scale $SCALE)..." >&2
"$PGBIN/pgbench" -q -i -s "$SCALE" "$URL" >/dev/null 2>&1
psql "$URL" -c 'VACUUM ANALYZE'
CLUSTER_SIZE=$(psql -At "$URL" -c "SELECT sum(pg_database_size(oid)) FROM pg_database")

PEER=(); OURS=(); RSS=0
for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS: pg_basebackup -Ft -z, prodready backup base..." >&2
  rm -rf "$WORK/pgbb"
  find "$WORK/store" -mindepth 1 -maxdepth 1 ! -name .wal -exec rm -rf {} +
  checkpoint; PEER+=("$(secs "$PGBIN/pg_basebackup" -D "$WORK/pgbb" -Ft -z -X none -c fast -d "$URL")"); S_PEER=$(size "$WORK/pgbb")
  checkpoint; OURS+=("$(secs "$BIN" backup base --store "$WORK/store" --database "$URL")"); S_OURS=$(size "$WORK/store")
  RSS=$(( $(cat "$WORK/rss") > RSS ? $(cat "$WORK/rss") : RSS ))
done
T_PEER=$(median "${PEER[@]}"); T_OURS=$(median "${OURS[@]}")
echo "runs (s): pg_basebackup -Ft -z ${PEER[*]}; prodready backup base ${OURS[*]}" >&2

cat <<REPORT
Medians of $ROUNDS interleaved rounds.

| measure | prodready | peer | ratio (prodready / peer) |
|---|---|---|---|
| base backup wall vs \`pg_basebackup -Ft -z -X none -c fast\` | ${T_OURS} s | ${T_PEER} s | $(ratio "$T_OURS" "$T_PEER") |
| output size | $(mib "$S_OURS") MiB | $(mib "$S_PEER") MiB | $(ratio "$S_OURS" "$S_PEER") |
| prodready peak RSS | $(echo "scale=1; $RSS / 1024" | bc) MiB | | |

Cluster size: $(mib "$CLUSTER_SIZE") MiB (pgbench scale $SCALE).
REPORT
