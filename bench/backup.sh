#!/usr/bin/env bash
# Backup benchmark: prodready against pg_dump/pg_restore on the same database, in the same run.
# Dataset (PRODUCT.md section 6): pgbench at scale $BENCH_SCALE (default 100, ~1.3 GB), a 3M-row mixed
# table (text, jsonb, timestamptz), 100 small tables and 20 large objects.
# Usage: cargo xtask bench backup   (or PRODREADY_BIN=... bash bench/backup.sh)
set -euo pipefail

BIN="${PRODREADY_BIN:?set PRODREADY_BIN to a release build of prodready}"
SCALE="${BENCH_SCALE:-100}"
MIXED_ROWS="${BENCH_MIXED_ROWS:-3000000}"
BASE="${BENCH_SERVER:-postgres://postgres@127.0.0.1:5432}"
DB=prodready_bench
WORK="$(mktemp -d "${TMPDIR:-/tmp}/prodready-bench.XXXXXX")"
trap 'rm -rf "$WORK"; for d in prodready_bench_r1 prodready_bench_r2; do psql -q "$BASE/postgres" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true; done' EXIT

psql() { command psql -X -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
# secs CMD...: wall seconds; peak RSS (KiB) of CMD in $WORK/rss
secs() { local t0 t1; t0=$(now); /usr/bin/time -f "%M" -o "$WORK/rss" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }; t1=$(now); echo "$t1 - $t0" | bc; }
ratio() { printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; }
size() { du -sb "$1" | cut -f1; }
mib() { echo "scale=1; $1 / 1048576" | bc; }

if [ "${BENCH_REUSE:-0}" != 1 ] || ! psql -q "$BASE/$DB" -c 'SELECT 1' >/dev/null 2>&1; then
  echo "building the dataset (scale $SCALE, $MIXED_ROWS mixed rows)..." >&2
  psql -q "$BASE/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
  pgbench -q -i -s "$SCALE" "$BASE/$DB" >/dev/null 2>&1
  psql -q "$BASE/$DB" <<SQL
CREATE TABLE mixed (id bigint PRIMARY KEY, note text, doc jsonb, at timestamptz);
INSERT INTO mixed SELECT i, 'note ' || md5(i::text) || repeat(' lorem ipsum', i % 7),
       jsonb_build_object('id', i, 'tags', jsonb_build_array(md5(i::text), i % 13), 'ok', i % 2 = 0),
       timestamptz '2026-01-01' + i * interval '1 second'
FROM generate_series(1, $MIXED_ROWS) i;
DO \$\$ BEGIN FOR n IN 1..100 LOOP
  EXECUTE format('CREATE TABLE small_%s (id int PRIMARY KEY, v text)', n);
  EXECUTE format('INSERT INTO small_%s SELECT i, md5(i::text) FROM generate_series(1, 100) i', n);
END LOOP; END \$\$;
SELECT lo_from_bytea(0, convert_to(repeat(md5(i::text), 20000), 'UTF8')) FROM generate_series(1, 20) i;
VACUUM ANALYZE;
SQL
fi
DBSIZE=$(psql -Atq "$BASE/$DB" -c "SELECT pg_database_size(current_database())")
# `latest` means the newest backup of the configured database.
export DATABASE_URL="$BASE/$DB"

ROUNDS="${BENCH_ROUNDS:-3}"
# median VALUES...: the middle value (the lower middle for an even count)
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# Each round runs every peer and every prodready step, interleaved, after a CHECKPOINT, so that neither
# side always inherits the other's dirty pages or warm cache; the report takes each measure's median.
fresh() { psql -q "$BASE/postgres" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"; }
checkpoint() { psql -q "$BASE/postgres" -c CHECKPOINT; }
FC=(); FD=(); PR=(); PGR=(); PRR=(); PRV=(); RSS_PR=0; RSS_PRR=0
for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS: pg_dump -Fc, pg_dump -Fd -j2 -Z1, prodready backup run --jobs 2..." >&2
  rm -rf "$WORK/dump.fc" "$WORK/dump.fd" "$WORK/store"
  checkpoint; FC+=("$(secs pg_dump -Fc -f "$WORK/dump.fc" -d "$BASE/$DB")"); S_FC=$(size "$WORK/dump.fc")
  checkpoint; FD+=("$(secs pg_dump -Fd -j2 -Z1 -f "$WORK/dump.fd" -d "$BASE/$DB")"); S_FD=$(size "$WORK/dump.fd")
  checkpoint; PR+=("$(secs "$BIN" backup run --jobs 2 --store "$WORK/store" --database "$BASE/$DB")")
  RSS_PR=$(( $(cat "$WORK/rss") > RSS_PR ? $(cat "$WORK/rss") : RSS_PR )); S_PR=$(size "$WORK/store")
  echo "round $round of $ROUNDS: pg_restore -j2, prodready backup restore --jobs 2, prodready backup verify..." >&2
  # Each restored copy is dropped before the next step: left in place, the freshly loaded tables draw
  # autovacuum (insert-triggered vacuum and analyze of 13M rows) onto the next step's cores.
  fresh prodready_bench_r1; checkpoint
  PGR+=("$(secs pg_restore -j2 -d "$BASE/prodready_bench_r1" "$WORK/dump.fd")")
  psql -q "$BASE/postgres" -c "DROP DATABASE prodready_bench_r1 WITH (FORCE)"
  fresh prodready_bench_r2; checkpoint
  PRR+=("$(secs "$BIN" backup restore latest --jobs 2 --store "$WORK/store" --into "$BASE/prodready_bench_r2")")
  RSS_PRR=$(( $(cat "$WORK/rss") > RSS_PRR ? $(cat "$WORK/rss") : RSS_PRR ))
  psql -q "$BASE/postgres" -c "DROP DATABASE prodready_bench_r2 WITH (FORCE)"
  checkpoint
  PRV+=("$(secs env PRODREADY_BACKUP__JOBS=2 "$BIN" backup verify latest --store "$WORK/store" --scratch "$BASE/postgres")")
done

# S3 (moto, PRODUCT.md: within 1.15x of a local directory): the same backup into a bucket on a local moto
# server, interleaved with local runs. Skipped (and said so) when moto is not provisioned.
MOTO="${MOTO_SERVER:-${PRODREADY_PEERS_DIR:-$HOME/.cache/prodready/peers}/venv/bin/moto_server}"
S3_LOCAL=(); S3_MOTO=()
if [ -x "$MOTO" ]; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$MOTO" -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
  MOTO_PID=$!
  trap 'kill $MOTO_PID 2>/dev/null; rm -rf "$WORK"; for d in prodready_bench_r1 prodready_bench_r2; do psql -q "$BASE/postgres" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true; done' EXIT
  until curl -fs "http://127.0.0.1:$PORT/moto-api/" >/dev/null; do sleep 0.2; done
  # moto routes by the credential scope and checks no signature.
  curl -fs -X PUT -H "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0" \
    "http://127.0.0.1:$PORT/prodready-bench" >/dev/null
  for round in $(seq "$ROUNDS"); do
    echo "round $round of $ROUNDS: prodready backup run to a directory, then to S3 (moto)..." >&2
    rm -rf "$WORK/store"
    checkpoint; S3_LOCAL+=("$(secs "$BIN" backup run --jobs 2 --store "$WORK/store" --database "$BASE/$DB")")
    checkpoint
    S3_MOTO+=("$(secs env AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
      AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
      "$BIN" backup run --jobs 2 --store "s3://prodready-bench/round$round" --database "$BASE/$DB")")
  done
  echo "runs (s): local ${S3_LOCAL[*]}; S3 on moto ${S3_MOTO[*]}" >&2
else
  echo "moto is not provisioned at $MOTO (run \`cargo xtask peers\`): the S3 comparison is skipped" >&2
fi
T_FC=$(median "${FC[@]}"); T_FD=$(median "${FD[@]}"); T_PR=$(median "${PR[@]}")
T_PGR=$(median "${PGR[@]}"); T_PRR=$(median "${PRR[@]}"); T_PRV=$(median "${PRV[@]}")
echo "runs (s): pg_dump -Fc ${FC[*]}; -Fd -j2 ${FD[*]}; backup ${PR[*]}; pg_restore ${PGR[*]}; restore ${PRR[*]}; verify ${PRV[*]}" >&2

cat <<REPORT
Medians of $ROUNDS interleaved rounds.

| measure | prodready | peer | ratio (prodready / peer) | target |
|---|---|---|---|---|
| backup wall vs \`pg_dump -Fc\` | ${T_PR} s | ${T_FC} s | $(ratio "$T_PR" "$T_FC") | ≤ 0.33 |
| backup wall vs \`pg_dump -Fd -j2 -Z1\` | ${T_PR} s | ${T_FD} s | $(ratio "$T_PR" "$T_FD") | ≤ 0.75 |
| output size vs \`pg_dump -Fc\` | $(mib "$S_PR") MiB | $(mib "$S_FC") MiB | $(ratio "$S_PR" "$S_FC") | ≤ 0.9 |
| output size vs \`pg_dump -Fd -Z1\` | $(mib "$S_PR") MiB | $(mib "$S_FD") MiB | $(ratio "$S_PR" "$S_FD") | |
| backup peak RSS | $(echo "scale=1; $RSS_PR / 1024" | bc) MiB | | | < 256 MiB |
| restore wall vs \`pg_restore -j2\` | ${T_PRR} s | ${T_PGR} s | $(ratio "$T_PRR" "$T_PGR") | ≤ 1.0 |
| restore peak RSS | $(echo "scale=1; $RSS_PRR / 1024" | bc) MiB | | | |
| verify (restore + counts + amcheck) vs restore | ${T_PRV} s | ${T_PRR} s | $(ratio "$T_PRV" "$T_PRR") | ≤ 1.2 |
$(if [ ${#S3_MOTO[@]} -gt 0 ]; then T_S3=$(median "${S3_MOTO[@]}"); T_L=$(median "${S3_LOCAL[@]}"); echo "| backup to S3 (moto) vs to a directory | ${T_S3} s | ${T_L} s | $(ratio "$T_S3" "$T_L") | ≤ 1.15 |"; fi)

Database size: $(mib "$DBSIZE") MiB (pgbench scale $SCALE, $MIXED_ROWS mixed rows, 100 small tables, 20 large objects).
REPORT
