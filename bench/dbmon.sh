#!/usr/bin/env bash
# Database monitoring benchmark (issue 16): `prodready db exporter` beside Debian's
# prometheus-postgres-exporter (0.11) on the same throwaway cluster and database.
#
# The cluster preloads pg_stat_statements (max 20000; autovacuum off) and the database holds 100 small
# tables (dead tuples in most, 20 analyzed), one deadlock, temporary files, rollbacks, a session idle in
# transaction and $BENCH_STATEMENTS (default 10,000) distinct statement shapes, each run with two
# different constants (every tenth once more with aliases): constants and aliases do not make
# statements distinct. Each exporter connects as its own pg_monitor role and keeps its sessions (one for
# prodready, two for postgres_exporter 0.11). Then:
#   phase "statements": pg_stat_statements present in the database (10,000+ tracked): prodready, the
#     peer with its default collectors (no statements: 0.11 has no statements collector) and the peer with
#     the example queries Debian ships (examples/queries.yaml, its pg_stat_statements query renamed for
#     PostgreSQL 13+ columns: the only way 0.11 exports statements);
#   phase "no statements": the extension dropped from the database, so prodready exports everything but
#     statements: prodready against the peer's defaults.
# Per exporter: scrape wall time (curl), the CPU of its server sessions (/proc/PID/schedstat, ns), of the
# whole cluster (postmaster and children, /proc/PID/stat ticks, with only that exporter scraping) and of
# the exporter process; scrapes interleaved in rounds. pg_stat_statements then shows each role's
# per-scrape statements (where the server's time goes). Last, the families both expose are compared:
# the peer is scraped between two prodready scrapes and its value must lie between theirs.
# Usage: cargo xtask bench dbmon   (or PRODREADY_BIN=... bash bench/dbmon.sh)
set -euo pipefail

BIN="${PRODREADY_BIN:?set PRODREADY_BIN to a release build of prodready}"
PEERS="${PRODREADY_PEERS_DIR:-$HOME/.cache/prodready/peers}"
PEER="${POSTGRES_EXPORTER:-$PEERS/bin/prometheus-postgres-exporter}"
PEER_QUERIES_EXAMPLE="${POSTGRES_EXPORTER_QUERIES:-$PEERS/root/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml}"
PGBIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}"
STATEMENTS="${BENCH_STATEMENTS:-10000}"
ROUNDS="${BENCH_ROUNDS:-5}"
PER_ROUND="${BENCH_SCRAPES_PER_ROUND:-10}"
TOP_N="${BENCH_TOP_N:-50}"
[ -x "$PEER" ] || { echo "no $PEER: run cargo xtask peers" >&2; exit 1; }
[ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL server binaries in /usr/lib/postgresql" >&2; exit 1; }

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/prodready-dbmon-bench.XXXXXX")"
chmod 755 "$WORK"
DATA="$WORK/data"
SOCK="$WORK/sock"
PIDS=()
IDLE_PID=""
# initdb and postgres refuse root: run them as `postgres` then.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  set +e
  exec 3>&- 2>/dev/null
  for pid in "${PIDS[@]}" $IDLE_PID; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}" $IDLE_PID; do wait "$pid" 2>/dev/null; done
  [ -f "$DATA/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
mkdir -p "$SOCK"
[ "$(id -u)" = 0 ] && chown postgres: "$SOCK"
[ "$(id -u)" = 0 ] && chown postgres: "$WORK"
as_pg "$PGBIN/initdb" -U postgres --no-sync -E UTF8 --locale=C --auth=trust -D "$DATA" >/dev/null
# autovacuum off: the dead tuples stay, and no background worker's CPU lands in the cluster's figures.
as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/postgres.log" -w -t 60 start -o "-p $PORT \
  -c listen_addresses=127.0.0.1 -c unix_socket_directories=$SOCK -c fsync=off -c autovacuum=off \
  -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=20000" >/dev/null
POSTMASTER=$(head -n 1 "$DATA/postmaster.pid")
URL="postgres://postgres@127.0.0.1:$PORT"
AT="127.0.0.1:$PORT"
psql() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql "$URL/postgres" -c "CREATE DATABASE bench"

echo "dataset: 100 tables, $STATEMENTS distinct statements..." >&2
psql "$URL/bench" >/dev/null <<'SQL'
CREATE EXTENSION pg_stat_statements;
DO $$ BEGIN FOR k IN 1..100 LOOP
  EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, c1 int, c2 int, c3 int, c4 int, c5 int,
                  c6 int, c7 int, c8 int, c9 int, c10 int, pad text)', lpad(k::text, 3, '0'));
  EXECUTE format('INSERT INTO t%s SELECT i, i, i %% 2, i %% 3, i %% 4, i %% 5, i %% 6, i %% 7, i %% 8,
                  i %% 9, i %% 10, repeat(''x'', %s) FROM generate_series(1, 200) i',
                 lpad(k::text, 3, '0'), k * 4);
  -- dead tuples: 0 to 180 per table
  EXECUTE format('DELETE FROM t%s WHERE id <= %s', lpad(k::text, 3, '0'), (k % 10) * 20);
END LOOP; END $$;
DO $$ BEGIN FOR k IN 1..20 LOOP EXECUTE format('ANALYZE t%s', lpad(k::text, 3, '0')); END LOOP; END $$;
CREATE TABLE dl (id int PRIMARY KEY);
-- One role per exporter, with the least privilege: pg_stat_statements then tells their queries apart.
CREATE ROLE bench_prodready LOGIN IN ROLE pg_monitor;
CREATE ROLE bench_prodready_shared LOGIN IN ROLE pg_monitor;
CREATE ROLE bench_peer_default LOGIN IN ROLE pg_monitor;
CREATE ROLE bench_peer_queries LOGIN IN ROLE pg_monitor;
INSERT INTO dl VALUES (1), (2);
SQL
# Temporary files and rollbacks.
psql "$URL/bench" >/dev/null -c "SET work_mem = '64kB'" \
  -c "SELECT count(*) FROM (SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC) s"
for _ in 1 2 3; do psql "$URL/bench" -c "BEGIN" -c "SELECT 1" -c "ROLLBACK" >/dev/null; done
# One deadlock: each session locks one row, then wants the other's.
psql "$URL/bench" -c "BEGIN; UPDATE dl SET id = id WHERE id = 1; SELECT pg_sleep(1); UPDATE dl SET id = id WHERE id = 2; COMMIT" >/dev/null 2>&1 &
DL1=$!
psql "$URL/bench" -c "BEGIN; UPDATE dl SET id = id WHERE id = 2; SELECT pg_sleep(1); UPDATE dl SET id = id WHERE id = 1; COMMIT" >/dev/null 2>&1 &
DL2=$!
wait "$DL1" || true
wait "$DL2" || true

# Distinct shapes: table (100) x select-list length (1..10) x the column in WHERE (10). Each shape runs
# twice with different constants and once more with a column alias: still one entry each.
python3 - "$STATEMENTS" >"$WORK/statements.sql" <<'PY'
import sys
n = int(sys.argv[1])
print("\\set QUIET on")
shapes = [(k, l, w) for k in range(1, 101) for l in range(1, 11) for w in range(1, 11)][:n]
if len(shapes) < n:
    sys.exit("at most 10000 shapes")
for i, (k, l, w) in enumerate(shapes):
    cols = ", ".join(f"c{c}" for c in range(1, l + 1))
    print(f"SELECT {cols} FROM t{k:03d} WHERE c{w} = {i % 7};")
    print(f"SELECT {cols} FROM t{k:03d} WHERE c{w} = {i % 7 + 100};")
    if i % 10 == 0:
        print(f"SELECT c1 AS renamed{i}{', ' + cols[4:] if l > 1 else ''} FROM t{k:03d} x WHERE c{w} = -{i};")
PY
start=$(date +%s.%N)
psql "$URL/bench" -f "$WORK/statements.sql" >/dev/null
echo "ran the statements in $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s" >&2
TRACKED=$(psql -At "$URL/bench" -c "SELECT count(DISTINCT queryid) FROM pg_stat_statements
  WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'bench')")
echo "pg_stat_statements tracks $TRACKED statements in the database" >&2

# A session idle in a transaction that read t001 (its locks, the longest transaction).
mkfifo "$WORK/idle.fifo"
"$PGBIN/psql" -X -q "$URL/bench" <"$WORK/idle.fifo" >/dev/null 2>&1 &
IDLE_PID=$!
exec 3>"$WORK/idle.fifo"
echo "SET application_name = 'bench-idle'; BEGIN; SELECT count(*) FROM t001;" >&3

# The exporters, all against the same database, each with its own application_name.
P_PR=$(free_port)
cat >"$WORK/prodready.toml" <<TOML
[database_monitoring]
databases = ["postgres://bench_prodready@$AT/bench?sslmode=disable"]
top_n = $TOP_N
scrape_timeout = "5s"
TOML
"$BIN" --config "$WORK/prodready.toml" db exporter --listen "127.0.0.1:$P_PR" 2>"$WORK/prodready.log" &
PIDS+=($!)
PR_PID=$!
# The same exporter reading only the families postgres_exporter's defaults also read (no table, index or
# statement families): the like-for-like comparison with the peer's defaults.
P_PS=$(free_port)
cat >"$WORK/prodready-shared.toml" <<TOML
[database_monitoring]
databases = ["postgres://bench_prodready_shared@$AT/bench?sslmode=disable&application_name=bench-prodready-shared"]
top_n = $TOP_N
scrape_timeout = "5s"
collect_tables = false
collect_indexes = false
collect_statements = false
TOML
"$BIN" --config "$WORK/prodready-shared.toml" db exporter --listen "127.0.0.1:$P_PS" 2>"$WORK/prodready-shared.log" &
PIDS+=($!)
PS_PID=$!
P_PD=$(free_port)
DATA_SOURCE_NAME="postgres://bench_peer_default@$AT/bench?sslmode=disable&application_name=bench-peer-default" \
  "$PEER" --web.listen-address="127.0.0.1:$P_PD" --log.level=warn 2>"$WORK/peer-default.log" &
PIDS+=($!)
PD_PID=$!
MODES_B="prodready|http://127.0.0.1:$P_PR/metrics|$PR_PID|prodready-db-exporter prodready-shared|http://127.0.0.1:$P_PS/metrics|$PS_PID|bench-prodready-shared peer-default|http://127.0.0.1:$P_PD/metrics|$PD_PID|bench-peer-default"
if [ -f "$PEER_QUERIES_EXAMPLE" ]; then
  # PostgreSQL 13 renamed pg_stat_statements' *_time columns to *_exec_time: the example fails as shipped.
  sed -E 's/\b(total|min|max|mean|stddev)_time \/ 1000/\1_exec_time \/ 1000/g' "$PEER_QUERIES_EXAMPLE" >"$WORK/queries.yaml"
  P_PQ=$(free_port)
  DATA_SOURCE_NAME="postgres://bench_peer_queries@$AT/bench?sslmode=disable&application_name=bench-peer-queries" \
    "$PEER" --web.listen-address="127.0.0.1:$P_PQ" --log.level=warn \
    --extend.query-path="$WORK/queries.yaml" 2>"$WORK/peer-queries.log" &
  PIDS+=($!)
  PQ_PID=$!
  MODES_B="$MODES_B peer-queries|http://127.0.0.1:$P_PQ/metrics|$PQ_PID|bench-peer-queries"
else
  echo "no $PEER_QUERIES_EXAMPLE: the peer is measured with its defaults only" >&2
fi
for url in $(for m in $MODES_B; do echo "$m" | cut -d'|' -f2; done); do
  for _ in $(seq 100); do curl -sf -o /dev/null "$url" && break; sleep 0.1; done
  curl -sf -o /dev/null "$url" || { echo "no answer from $url" >&2; cat "$WORK"/*.log >&2; exit 1; }
done

cat >"$WORK/dbmon.py" <<'PY'
"""Measures and compares the exporters: `measure PHASE MODE...`, `compare`, `report`."""
import json, math, os, re, statistics, subprocess, sys, time

WORK = os.environ["WORK"]
RESULTS = os.path.join(WORK, "results.json")
POSTMASTER = int(os.environ["POSTMASTER"])
TICK = os.sysconf("SC_CLK_TCK")
TOP_N = int(os.environ["TOP_N"])


def load():
    return json.load(open(RESULTS)) if os.path.exists(RESULTS) else {"phases": {}, "compare": []}


def save(r):
    json.dump(r, open(RESULTS, "w"), indent=1)


def psql(sql):
    out = subprocess.run([os.environ["PGBIN"] + "/psql", "-X", "-At", os.environ["URL"] + "/bench", "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if l]


def stat_ticks(pid, children=False):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3): utime=14, stime=15, cutime=16, cstime=17
    t = int(fields[11]) + int(fields[12])
    if children:
        t += int(fields[13]) + int(fields[14])
    return t


def schedstat_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def cluster_ticks():
    """The postmaster (with its reaped children) and every live child, in clock ticks."""
    total = stat_ticks(POSTMASTER, children=True)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                raw = f.read()
            ppid = int(raw.rsplit(")", 1)[1].split()[1])
            if ppid == POSTMASTER:
                total += stat_ticks(int(entry))
        except (OSError, ValueError, IndexError):
            pass
    return total


def backends(app):
    return sorted(int(p) for p in psql(f"SELECT pid FROM pg_stat_activity WHERE application_name = '{app}'"))


def parse(text):
    """Prometheus text format: [(name, {label: value}, value)]."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        i = 0
        while i < len(line) and line[i] not in "{ ":
            i += 1
        name, labels = line[:i], {}
        if i < len(line) and line[i] == "{":
            i += 1
            while line[i] != "}":
                if line[i] in ", ":
                    i += 1
                    continue
                eq = line.index("=", i)
                key, i, value = line[i:eq].strip(), eq + 2, []
                while line[i] != '"':
                    if line[i] == "\\":
                        i += 1
                        value.append({"n": "\n"}.get(line[i], line[i]))
                    else:
                        value.append(line[i])
                    i += 1
                labels[key] = "".join(value)
                i += 1
            i += 1
        out.append((name, labels, float(line[i:].split()[0])))
    return out


def scrape(url):
    out = subprocess.run(["curl", "-sf", "-o", os.path.join(WORK, "body"), "-w", "%{time_total}", url],
                         check=True, capture_output=True, text=True).stdout
    return float(out), open(os.path.join(WORK, "body")).read()


def pct(values, p):
    """Nearest rank."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def measure(phase, modes):
    rounds, per_round = int(os.environ["ROUNDS"]), int(os.environ["PER_ROUND"])
    modes = [dict(zip(["name", "url", "pid", "app"], m.split("|"))) for m in modes]
    for m in modes:
        for _ in range(3):  # warm-up: sessions, the statement texts prodready keeps
            scrape(m["url"])
        # postgres_exporter 0.11 keeps two sessions: one for its metric maps, one for its collectors.
        m.update(backends=backends(m["app"]), wall=[], backend_ns=0, cluster_ticks=0, exporter_ticks=0)
        if not m["backends"]:
            sys.exit(f"{m['name']}: no server session with application_name {m['app']}")
    time.sleep(0.5)  # the lookups' backends exit and are reaped before the first reading
    for r in range(rounds):
        for m in modes:
            pid = int(m["pid"])
            b0, c0, e0 = sum(map(schedstat_ns, m["backends"])), cluster_ticks(), stat_ticks(pid)
            for _ in range(per_round):
                wall, body = scrape(m["url"])
                m["wall"].append(wall)
            m["backend_ns"] += sum(map(schedstat_ns, m["backends"])) - b0
            m["cluster_ticks"] += cluster_ticks() - c0
            m["exporter_ticks"] += stat_ticks(pid) - e0
            m["body"] = body
    r = load()
    out = {}
    for m in modes:
        if backends(m["app"]) != m["backends"]:
            sys.exit(f"{m['name']}: its server sessions changed during the run; CPU figures would be wrong")
        samples = parse(m["body"])
        n = len(m["wall"])
        res = {
            "scrapes": n,
            "wall_ms": {k: 1000 * v for k, v in [("p50", statistics.median(m["wall"])), ("p95", pct(m["wall"], 95)),
                                                  ("max", max(m["wall"])), ("mean", statistics.mean(m["wall"]))]},
            "backend_cpu_ms": m["backend_ns"] / 1e6 / n,
            "cluster_cpu_ms": m["cluster_ticks"] * 1000 / TICK / n,
            "exporter_cpu_ms": m["exporter_ticks"] * 1000 / TICK / n,
            "sessions": len(m["backends"]),
            "series": len(samples),
            "bytes": len(m["body"].encode()),
        }
        if m["name"] == "prodready":
            fams = {}
            for name, labels, _ in samples:
                if name.startswith("prodready_pg_statement_") or name == "prodready_pg_statement_info":
                    fams[name] = fams.get(name, 0) + 1
            res["statement_series"] = fams
            res["statements_tracked"] = [v for n_, _, v in samples if n_ == "prodready_pg_statements_tracked"]
            res["tables"] = len([1 for n_, _, _ in samples if n_ == "prodready_pg_table_size_bytes"])
            res["indexes"] = len([1 for n_, _, _ in samples if n_ == "prodready_pg_index_size_bytes"])
            res["up"] = [v for n_, _, v in samples if n_ == "prodready_pg_up"]
        if m["name"].startswith("peer"):
            res["statement_series"] = len([1 for n_, l, _ in samples if n_.startswith("pg_stat_statements_")])
        out[m["name"]] = res
    r["phases"][phase] = out
    save(r)


def compare():
    modes = [dict(zip(["name", "url", "pid", "app"], m.split("|"))) for m in sys.argv[2:]]
    pr = next(m for m in modes if m["name"] == "prodready")
    r = load()
    for peer in (m for m in modes if m["name"].startswith("peer")):
        _, a = scrape(pr["url"])
        _, p = scrape(peer["url"])
        _, b = scrape(pr["url"])
        a, p, b = parse(a), parse(p), parse(b)

        def ours(name, **want):
            def get(samples):
                vals = [v for n, l, v in samples if n == name and all(l.get(k) == w for k, w in want.items())]
                return sum(vals) if vals else None
            return get(a), get(b)

        def theirs(pattern, agg=sum, **want):
            vals = [v for n, l, v in p if re.fullmatch(pattern, n) and all(l.get(k) == w for k, w in want.items())]
            return agg(vals) if vals else None

        rows = []

        def row(label, pair, peer_value, tol=0.0, zero_missing=False):
            lo, hi = pair
            if zero_missing:
                lo, hi = lo or 0.0, hi or 0.0
                peer_value = peer_value or 0.0
            if lo is None or hi is None or peer_value is None:
                rows.append({"measure": label, "prodready": [lo, hi], "peer": peer_value, "agree": None})
                return
            lo, hi = min(lo, hi), max(lo, hi)
            slack = tol * max(abs(lo), abs(hi))
            rows.append({"measure": label, "prodready": [lo, hi], "peer": peer_value,
                         "agree": lo - slack <= peer_value <= hi + slack})

        db = {"datname": "bench"}
        row("up", ours("prodready_pg_up"), theirs("pg_up"))
        row("max_connections", ours("prodready_pg_max_connections"), theirs("pg_settings_max_connections"))
        states = sorted({l["state"] for n, l, _ in a + b if n == "prodready_pg_connections"}
                        | {l["state"] for n, l, v in p if n == "pg_stat_activity_count" and l.get("datname") == "bench" and v})
        for s in states:
            row(f"sessions {s}", ours("prodready_pg_connections", state=s),
                theirs("pg_stat_activity_count", state=s, **db), zero_missing=True)
        row("sessions, all states", ours("prodready_pg_connections"), theirs("pg_stat_activity_count", **db))
        # postgres_exporter 0.11 runs its two sessions at once: while it scrapes, both can be active, where
        # prodready sees them idle (and itself active). Explained when only active and idle differ by that.
        sessions = len(backends(peer["app"]))
        if rows[-1]["agree"]:
            for x in rows:
                if x["measure"] in ("sessions active", "sessions idle") and x["agree"] is False \
                        and abs(x["peer"] - x["prodready"][0]) <= sessions - 1:
                    x["agree"], x["note"] = True, f"the peer's {sessions} sessions run at once during its scrape"
        row("longest transaction (s)", ours("prodready_pg_longest_transaction_seconds"),
            theirs("pg_stat_activity_max_tx_duration", agg=max, **db))
        named = {l["mode"].lower(): l["mode"] for n, l, _ in a + b if n == "prodready_pg_locks"}
        lower = sorted(set(named) | {l["mode"] for n, l, v in p
                                     if n == "pg_locks_count" and l.get("datname") == "bench" and v})
        # prodready leaves its own session's locks out; postgres_exporter counts the ones its query holds
        # while it runs. So the locks are checked against the server itself (psql, leaving its own session
        # out too), with the peer's figure beside them.
        direct = {m_.lower(): float(c) for m_, c in (line.split("|") for line in psql(
            "SELECT mode, count(*) FROM pg_locks WHERE granted AND pid <> pg_backend_pid() "
            "AND database = (SELECT oid FROM pg_database WHERE datname = 'bench') GROUP BY mode",
            ) if line)}
        for mode in sorted(set(lower) | set(direct)):
            ourmode = named.get(mode, mode)
            lo, hi = ours("prodready_pg_locks", mode=ourmode)
            lo, hi = lo or 0.0, hi or 0.0
            server = direct.get(mode, 0.0)
            peer_value = theirs("pg_locks_count", mode=mode, **db) or 0.0
            rows.append({"measure": f"locks {ourmode} (other sessions, against the server; the peer counts its own)",
                         "prodready": [min(lo, hi), max(lo, hi)], "peer": f"{server:.0f} (peer {peer_value:.0f})",
                         "agree": min(lo, hi) <= server <= max(lo, hi)})
        for ourname, theirname in [("transactions_committed", "xact_commit"), ("transactions_rolled_back", "xact_rollback"),
                                   ("deadlocks", "deadlocks"), ("blocks_hit", "blks_hit"), ("blocks_read", "blks_read"),
                                   ("temp_files", "temp_files"), ("temp_bytes", "temp_bytes")]:
            row(f"pg_stat_database {theirname}", ours(f"prodready_pg_{ourname}_total"),
                theirs(f"pg_stat_database_{theirname}(_total)?", **db))
        row("database size (bytes)", ours("prodready_pg_database_size_bytes"), theirs("pg_database_size_bytes", **db))
        row("checkpoints timed", ours("prodready_pg_checkpoints_total", kind="timed"),
            theirs("pg_stat_bgwriter_checkpoints_timed(_total)?"))
        row("checkpoints requested", ours("prodready_pg_checkpoints_total", kind="requested"),
            theirs("pg_stat_bgwriter_checkpoints_req(_total)?"))
        if peer["name"] == "peer-queries":
            tables = sorted({(l["schema"], l["table"]) for n, l, _ in a if n == "prodready_pg_table_dead_tuples"})
            for what, ours_, theirs_ in [("dead tuples", "prodready_pg_table_dead_tuples", "pg_stat_user_tables_n_dead_tup"),
                                         ("live tuples", "prodready_pg_table_live_tuples", "pg_stat_user_tables_n_live_tup")]:
                agree = total = 0
                for schema, table in tables:
                    x = ours(ours_, schema=schema, table=table)
                    y = theirs(theirs_, schemaname=schema, relname=table, **db)
                    total += 1
                    agree += None not in x and y is not None and min(x) <= y <= max(x)
                rows.append({"measure": f"{what}, each of prodready's {total} tables", "prodready": None, "peer": None,
                             "agree": agree == total, "count": f"{agree}/{total}"})
            agree = total = 0
            for schema, table in tables:
                x = ours("prodready_pg_table_last_maintenance_timestamp_seconds", schema=schema, table=table, kind="analyze")
                y = theirs("pg_stat_user_tables_last_analyze", schemaname=schema, relname=table, **db)
                if None in x:
                    continue
                total += 1
                agree += y is not None and abs(x[0] - y) < 1.0
            rows.append({"measure": f"last analyze, the {total} analyzed tables", "prodready": None, "peer": None,
                         "agree": agree == total, "count": f"{agree}/{total}"})
            ids = sorted({l["queryid"] for n, l, _ in a if n == "prodready_pg_statement_calls_total" and l["queryid"] != "other"})
            for what, ours_, theirs_, tol in [("calls", "prodready_pg_statement_calls_total", "pg_stat_statements_calls", 0.0),
                                              ("seconds", "prodready_pg_statement_seconds_total", "pg_stat_statements_total_time_seconds", 1e-9),
                                              ("rows", "prodready_pg_statement_rows_total", "pg_stat_statements_rows", 0.0)]:
                agree = total = 0
                for q in ids:
                    x = ours(ours_, queryid=q)
                    y = theirs(theirs_, queryid=q, **db)
                    if x[0] is None or x[1] is None:
                        continue
                    total += 1
                    slack = tol * max(x)
                    agree += y is not None and min(x) - slack <= y <= max(x) + slack
                rows.append({"measure": f"statement {what}, prodready's top {total} queryids", "prodready": None,
                             "peer": None, "agree": agree == total, "count": f"{agree}/{total}"})
                # Not an identity: prodready's "other" sums the increments of statements while they are
                # outside the top, so a statement that entered or left the top moves it away from "all
                # minus the current top". Shown, not judged.
                other = ours(ours_, queryid="other")
                all_ = theirs(theirs_, **db) or 0.0
                top = sum(theirs(theirs_, queryid=q, **db) or 0.0 for q in ids)
                rows.append({"measure": f"statement {what}, \"other\" against the peer's all minus prodready's top",
                             "prodready": list(other), "peer": all_ - top, "agree": None})
        r["compare"].append({"peer": peer["name"], "rows": rows})
    save(r)


def profile():
    """The exporters' per-scrape statements (run at least once per scrape), costliest first, per role."""
    n = int(os.environ["ROUNDS"]) * int(os.environ["PER_ROUND"])
    rows = psql(f"""
        SELECT rolname, calls, round(mean_exec_time::numeric, 3), left(regexp_replace(query, '\\s+', ' ', 'g'), 90)
        FROM (SELECT r.rolname, s.*, row_number() OVER (PARTITION BY r.rolname ORDER BY s.total_exec_time DESC) AS rank
              FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
              WHERE r.rolname LIKE 'bench\\_%' AND s.calls >= {n}) x
        WHERE rank <= 6 ORDER BY rolname, total_exec_time DESC""")
    sums = psql(f"""
        SELECT r.rolname, count(*), round(sum(s.mean_exec_time)::numeric, 2)
        FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
        WHERE r.rolname LIKE 'bench\\_%' AND s.calls >= {n} GROUP BY 1 ORDER BY 1""")
    r = load()
    r["profile"] = {"rows": [x.split("|", 3) for x in rows], "sums": [x.split("|") for x in sums]}
    save(r)


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        lo, hi = v
        return fmt(lo) if lo == hi else f"{fmt(lo)}..{fmt(hi)}"
    return f"{v:,.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.3f}"


def report():
    r = load()
    print(f"\n## scrapes (ms per scrape; CPU per scrape)  top_n={TOP_N}")
    print("| phase | exporter | scrapes | wall p50 | wall p95 | wall max | server backend CPU | cluster CPU | exporter CPU | series | bytes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for phase, modes in r["phases"].items():
        for name, m in modes.items():
            w = m["wall_ms"]
            print(f"| {phase} | {name} | {m['scrapes']} | {w['p50']:.1f} | {w['p95']:.1f} | {w['max']:.1f} | "
                  f"{m['backend_cpu_ms']:.2f} | {m['cluster_cpu_ms']:.2f} | {m['exporter_cpu_ms']:.2f} | "
                  f"{m['series']:,} | {m['bytes']:,} |")
    print("\n## ratios prodready / peer (lower is better for prodready)")
    print("| phase | against | wall p50 | wall p95 | server backend CPU | cluster CPU | exporter CPU | series |")
    print("|---|---|---|---|---|---|---|---|")
    for phase, modes in r["phases"].items():
      for us in ["prodready", "prodready-shared"]:
        ours = modes.get(us)
        if ours is None:
            continue
        for name, m in modes.items():
            if not name.startswith("peer"):
                continue
            q = lambda x, y: f"{x / y:.2f}" if y else "-"
            print(f"| {phase} | {us} against {name} | {q(ours['wall_ms']['p50'], m['wall_ms']['p50'])} | "
                  f"{q(ours['wall_ms']['p95'], m['wall_ms']['p95'])} | {q(ours['backend_cpu_ms'], m['backend_cpu_ms'])} | "
                  f"{q(ours['cluster_cpu_ms'], m['cluster_cpu_ms'])} | {q(ours['exporter_cpu_ms'], m['exporter_cpu_ms'])} | "
                  f"{q(ours['series'], m['series'])} |")
    print("\n## prodready's statements")
    for phase, modes in r["phases"].items():
        m = modes["prodready"]
        fams = m.get("statement_series", {})
        bound = all(v <= TOP_N + 1 for v in fams.values())
        print(f"- {phase}: tracked {m.get('statements_tracked')}, series per family {fams} "
              f"(bound top_n + 1 = {TOP_N + 1}: {'met' if bound else 'MISSED'}); tables {m.get('tables')}, "
              f"indexes {m.get('indexes')}; wall max {m['wall_ms']['max']:.1f} ms "
              f"(target < 100 ms: {'met' if m['wall_ms']['max'] < 100 else 'MISSED'}); "
              f"the peers' statement series: { {n: x.get('statement_series') for n, x in modes.items() if n != 'prodready'} }")
    if "profile" in r:
        print("\n## where the server's time goes (pg_stat_statements, phase statements; exec time, not planning)")
        print("| role | statements per scrape | exec ms per scrape (sum of their means) |")
        print("|---|---|---|")
        for role, count, ms in r["profile"]["sums"]:
            print(f"| {role} | {count} | {ms} |")
        print("\n| role | calls | mean ms | statement |")
        print("|---|---|---|---|")
        for role, calls, mean, query in r["profile"]["rows"]:
            query = query.replace("|", "\\|")
            print(f"| {role} | {calls} | {mean} | `{query}` |")
    for c in r["compare"]:
        print(f"\n## agreement, prodready against {c['peer']} (the peer scraped between two prodready scrapes; "
              "it agrees when its value lies between theirs)")
        print("| measure | prodready (before..after) | peer | agrees |")
        print("|---|---|---|---|")
        for row in c["rows"]:
            agree = {True: "yes", False: "NO", None: "n/a"}[row["agree"]]
            if row.get("note"):
                agree += f" ({row['note']})"
            if "count" in row:
                print(f"| {row['measure']} | | | {agree} ({row['count']}) |")
            else:
                print(f"| {row['measure']} | {fmt(row['prodready'])} | {fmt(row['peer'])} | {agree} |")


{"measure": lambda: measure(sys.argv[2], sys.argv[3:]), "compare": compare, "profile": profile,
 "report": report}[sys.argv[1]]()
PY
export WORK POSTMASTER PGBIN URL TOP_N ROUNDS PER_ROUND
# shellcheck disable=SC2086
{
  echo "phase statements: $ROUNDS rounds of $PER_ROUND scrapes per exporter..." >&2
  python3 "$WORK/dbmon.py" measure statements $MODES_B
  python3 "$WORK/dbmon.py" profile
  python3 "$WORK/dbmon.py" compare $MODES_B
  psql "$URL/bench" -c "DROP EXTENSION pg_stat_statements"
  MODES_A=$(echo "$MODES_B" | tr ' ' '\n' | grep -v '^peer-queries|' | tr '\n' ' ')
  echo "phase no statements (extension dropped from the database): $ROUNDS rounds of $PER_ROUND scrapes..." >&2
  python3 "$WORK/dbmon.py" measure no-statements $MODES_A
}
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), \
$(free -g | awk '/Mem:/ {print $2}') GB, Linux $(uname -r); $("$PGBIN/postgres" --version); \
$("$PEER" --version 2>&1 | head -n 1); load average at the start $LOAD0, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "dataset: $TRACKED statements tracked in the database, 100 tables, top_n $TOP_N"
python3 "$WORK/dbmon.py" report
