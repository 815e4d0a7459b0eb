#!/usr/bin/env bash
# Load-testing benchmark (issue 20): `prodready load run` beside wrk and k6, all three against one nginx
# (Debian's, from the peers), the server pinned to one core and the generator to the other (taskset).
# Each generator runs alone against the server; runs of the three are interleaved in rounds.
#
# Phases (each figure from the generator process's own rusage, read with wait4: user+sys CPU, peak RSS):
#   cpu       closed model, 50 connections (VUs) for $BENCH_SECONDS s per run, $BENCH_ROUNDS rounds of
#             prodready, wrk (-t1 -c50) and k6; prodready and k6 run the same scenario (k6's script is
#             `prodready load export-k6` of ours) with two checks and three thresholds; wrk has neither.
#             Generator CPU per request = (user + sys) / requests; medians over the rounds.
#   instr     instructions per request under `valgrind --tool=callgrind` (independent of the machine's
#             load): prodready at two iteration counts and wrk at two durations, the difference of the
#             process totals over the difference of requests. k6 (Go) crashes under valgrind: CPU time only.
#   idle      memory per idle VU: each VU sends one request (so it holds its keep-alive connection) and then
#             thinks for an hour; the run lasts 10 s with gracefulStop 0s. (peak RSS at N VUs - peak RSS at
#             1 VU) / (N - 1), for N = 1,000 and 10,000; prodready and k6.
#   flat      peak RSS of a 10 s and a 60 s open-model run at 2,000 iterations/s (checks, thresholds, a
#             tag sub-metric): memory must not grow with the run's length. prodready and k6.
#   rate      open model (constant-arrival-rate) at 2,000 and 10,000 iterations/s for $BENCH_RATE_SECONDS s:
#             the rate the server saw (nginx's access log, $msec per request: (n - 1) / (last - first)) and
#             the requests sent against rate x duration. prodready and k6.
# Usage: cargo xtask bench loadtest   (or PRODREADY_BIN=... bash bench/loadtest.sh)
#   BENCH_PHASES="cpu instr idle flat rate" (default all), BENCH_ROUNDS (5), BENCH_SECONDS (10),
#   BENCH_RATE_SECONDS (10), BENCH_IDLE_VUS ("1000 10000"), BENCH_SERVER_CPU (0), BENCH_GEN_CPU (1).
set -euo pipefail

BIN="${PRODREADY_BIN:?set PRODREADY_BIN to a release build of prodready}"
PEERS="${PRODREADY_PEERS_DIR:-$HOME/.cache/prodready/peers}"
NGINX="${NGINX:-$PEERS/root/usr/sbin/nginx}"
WRK="${WRK:-$PEERS/root/usr/bin/wrk}"
K6="${K6:-$PEERS/venv/bin/k6}"
for tool in "$NGINX" "$WRK" "$K6"; do
  [ -x "$tool" ] || { echo "no $tool: run cargo xtask peers" >&2; exit 1; }
done
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
command -v taskset >/dev/null || { echo "taskset is missing: apt-get install util-linux" >&2; exit 1; }
# wrk links libluajit-5.1.so.2, unpacked beside it by `cargo xtask peers` (not installed on the machine).
# The real binary is run (not the bin/wrk wrapper) so that rusage and callgrind see wrk itself.
LUAJIT=$(ls -d "$PEERS"/root/usr/lib/*/libluajit-5.1.so.2 2>/dev/null | head -n 1 || true)
[ -n "$LUAJIT" ] && export WRK_LD_LIBRARY_PATH="$(dirname "$LUAJIT")"
WRK_VERSION=$(env LD_LIBRARY_PATH="${WRK_LD_LIBRARY_PATH:-}" "$WRK" -v 2>&1 || true)
case "$WRK_VERSION" in
  wrk*) ;;
  *) echo "wrk does not start (libluajit?): $WRK_VERSION" >&2; exit 1 ;;
esac

export BENCH_PHASES="${BENCH_PHASES:-cpu instr idle flat rate}"
export BENCH_ROUNDS="${BENCH_ROUNDS:-5}" BENCH_SECONDS="${BENCH_SECONDS:-10}"
export BENCH_RATE_SECONDS="${BENCH_RATE_SECONDS:-10}" BENCH_IDLE_VUS="${BENCH_IDLE_VUS:-1000 10000}"
export SERVER_CPU="${BENCH_SERVER_CPU:-0}" GEN_CPU="${BENCH_GEN_CPU:-1}"
export BIN WRK K6
# k6 would try to send its usage report to the internet at the end of every run.
export K6_NO_USAGE_REPORT=true

WORK="$(mktemp -d "${TMPDIR:-/tmp}/prodready-loadtest-bench.XXXXXX")"
export WORK
NGINX_PID=""
cleanup() {
  set +e
  if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
LOG_PORT=$(free_port)
export PORT LOG_PORT
mkdir -p "$WORK/html" "$WORK/tmp"
# nginx started as root serves with an unprivileged worker (nobody): it must read the page.
chmod 755 "$WORK" "$WORK/html"
printf 'hello from the load-testing benchmark\n' >"$WORK/html/index.html"
# One worker process on the server's core; a second server block writes an access log with the arrival
# time of every request ($msec, millisecond resolution), for the rate phase only.
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 40000;
daemon off;
pid $WORK/nginx.pid;
error_log stderr warn;
events { worker_connections 30000; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp;
  uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
  log_format arrivals '\$msec \$arg_run';
  server { listen 127.0.0.1:$PORT backlog=4096; root $WORK/html; location / { } }
  server { listen 127.0.0.1:$LOG_PORT backlog=4096; root $WORK/html;
           access_log $WORK/arrivals.log arrivals buffer=256k flush=1s; location / { } }
}
CONF
taskset -c "$SERVER_CPU" "$NGINX" -e stderr -p "$WORK" -c "$WORK/nginx.conf" 2>"$WORK/nginx.log" &
NGINX_PID=$!
export NGINX_PID
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/" || { echo "nginx does not answer" >&2; cat "$WORK/nginx.log" >&2; exit 1; }

cat >"$WORK/bench.py" <<'PY'
"""Runs the phases, then prints the report (markdown) from $WORK/results.json."""
import json, os, re, statistics, subprocess, sys, time

WORK = os.environ["WORK"]
BIN, WRK, K6 = os.environ["BIN"], os.environ["WRK"], os.environ["K6"]
PORT, LOG_PORT = os.environ["PORT"], os.environ["LOG_PORT"]
GEN = os.environ["GEN_CPU"]
ROUNDS = int(os.environ["BENCH_ROUNDS"])
SECONDS = int(os.environ["BENCH_SECONDS"])
RATE_SECONDS = int(os.environ["BENCH_RATE_SECONDS"])
RESULTS = os.path.join(WORK, "results.json")
R = {"runs": [], "load": []}


def loadavg():
    return open("/proc/loadavg").read().split()[:3]


def note_load(what):
    R["load"].append({"at": what, "loadavg": loadavg()})


def run(name, cmd, env=None, timeout=900):
    """Runs cmd pinned to the generator's core; returns (rc, stdout, stderr, cpu seconds, peak RSS KiB, wall)."""
    out_path, err_path = os.path.join(WORK, name + ".out"), os.path.join(WORK, name + ".err")
    full_env = dict(os.environ)
    full_env.update(env or {})
    start = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        p = subprocess.Popen(["taskset", "-c", GEN] + cmd, stdout=out, stderr=err, env=full_env,
                             cwd=WORK)
        # taskset execs the command: this pid is the generator's, and wait4 gives its own rusage.
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    stdout, stderr = open(out_path, errors="replace").read(), open(err_path, errors="replace").read()
    return p.returncode, stdout, stderr, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, wall


def scenario(name, executor, url, checks=True, thresholds=True, think=None, graceful=None):
    """A scenario file for prodready (and, exported, for k6)."""
    lines = [f"[scenarios.{name}]"] + [f"{k} = {json.dumps(v)}" for k, v in executor.items()]
    if graceful is not None:
        lines.append(f'gracefulStop = "{graceful}"')
    if think is not None:
        lines.append(f'think_time = "{think}"')
    lines += [f"[[scenarios.{name}.requests]]", f'url = "{url}"', 'tags = { name = "index" }']
    if checks:
        lines.append('checks = { status = 200, body_contains = "hello" }')
    if thresholds:
        lines += ["[thresholds]", 'http_req_duration = ["p(95)<500"]',
                  '"http_req_duration{name:index}" = ["p(99)<1000"]', 'http_req_failed = ["rate<0.01"]']
        if checks:
            lines.append('checks = ["rate>0.99"]')
    path = os.path.join(WORK, name + ".toml")
    open(path, "w").write("\n".join(lines) + "\n")
    js = os.path.join(WORK, name + ".js")
    res = subprocess.run([BIN, "load", "export-k6", path], capture_output=True, text=True, cwd=WORK)
    if res.returncode != 0:
        sys.exit(f"export-k6 failed: {res.stderr}")
    open(js, "w").write(res.stdout)
    return path, js


def summary_counts(path):
    m = json.load(open(path))["metrics"]
    get = lambda k: m.get(k, {}).get("count", 0)
    return {"requests": get("http_reqs"), "iterations": get("iterations"), "dropped": get("dropped_iterations"),
            "failed_rate": m.get("http_req_failed", {}).get("value", m.get("http_req_failed", {}).get("rate"))}


def ours(name, toml, extra_env=None):
    export = os.path.join(WORK, name + ".summary.json")
    rc, out, err, cpu, rss, wall = run(name, [BIN, "load", "run", toml, "--summary-export", export], extra_env)
    if rc not in (0, 99):
        sys.exit(f"{name}: prodready exited {rc}: {err[-2000:]}")
    return dict(summary_counts(export), tool="prodready", exit=rc, cpu=cpu, rss_kib=rss, wall=wall)


def k6(name, js, extra=()):
    export = os.path.join(WORK, name + ".summary.json")
    rc, out, err, cpu, rss, wall = run(name, [K6, "run", "-q", "--no-color", "--summary-export", export, *extra, js])
    if rc not in (0, 99):
        sys.exit(f"{name}: k6 exited {rc}: {err[-2000:]}")
    return dict(summary_counts(export), tool="k6", exit=rc, cpu=cpu, rss_kib=rss, wall=wall)


def wrk(name, seconds, url):
    env = {"LD_LIBRARY_PATH": os.environ.get("WRK_LD_LIBRARY_PATH", "")}
    rc, out, err, cpu, rss, wall = run(name, [WRK, "-t1", "-c50", f"-d{seconds}s", url], env)
    m = re.search(r"(\d+) requests in", out)
    if rc != 0 or not m:
        sys.exit(f"{name}: wrk exited {rc}: {out}{err}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return {"tool": "wrk", "requests": int(m.group(1)), "exit": rc, "cpu": cpu, "rss_kib": rss, "wall": wall,
            "errors": errors.group(0) if errors else ""}


def record(phase, **kw):
    kw["phase"] = phase
    kw["loadavg"] = loadavg()
    R["runs"].append(kw)
    json.dump(R, open(RESULTS, "w"), indent=1)
    shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in kw.items() if k not in ("phase",)}
    print(f"  {phase}: {shown}", file=sys.stderr, flush=True)


def phase_cpu():
    url = f"http://127.0.0.1:{PORT}/"
    toml, js = scenario("cpu", {"executor": "constant-vus", "vus": 50, "duration": f"{SECONDS}s"}, url)
    for r in range(1, ROUNDS + 1):
        record("cpu", round=r, **ours(f"cpu-ours-{r}", toml))
        record("cpu", round=r, **wrk(f"cpu-wrk-{r}", SECONDS, url))
        record("cpu", round=r, **k6(f"cpu-k6-{r}", js))


def callgrind(name, cmd, env=None):
    rc, out, err, *_ = run(name, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={WORK}/{name}.callgrind", *cmd],
                           env, timeout=1800)
    m = re.search(r"Collected : (\d+)", err)
    if not m:
        sys.exit(f"{name}: no callgrind total (exit {rc}): {err[-2000:]}")
    return int(m.group(1)), out


def phase_instr():
    url = f"http://127.0.0.1:{PORT}/"
    small, large = 4000, 16000
    counts = {}
    for n in (small, large):
        toml, _ = scenario(f"instr{n}", {"executor": "shared-iterations", "vus": 50, "iterations": n,
                                          "maxDuration": "10m"}, url)
        instr, _ = callgrind(f"instr-ours-{n}", [BIN, "load", "run", toml, "--summary-export",
                                                 os.path.join(WORK, f"instr-ours-{n}.summary.json")])
        reqs = summary_counts(os.path.join(WORK, f"instr-ours-{n}.summary.json"))["requests"]
        counts.setdefault("prodready", []).append((reqs, instr))
    env = {"LD_LIBRARY_PATH": os.environ.get("WRK_LD_LIBRARY_PATH", "")}
    for d in (2, 8):
        instr, out = callgrind(f"instr-wrk-{d}", [WRK, "-t1", "-c50", f"-d{d}s", url], env)
        counts.setdefault("wrk", []).append((int(re.search(r"(\d+) requests in", out).group(1)), instr))
    for tool, [(r1, i1), (r2, i2)] in counts.items():
        record("instr", tool=tool, requests=[r1, r2], instructions=[i1, i2], per_request=(i2 - i1) / (r2 - r1))


def phase_idle():
    url = f"http://127.0.0.1:{PORT}/"
    for n in [1] + [int(x) for x in os.environ["BENCH_IDLE_VUS"].split()]:
        toml, js = scenario(f"idle{n}", {"executor": "constant-vus", "vus": n, "duration": "10s"}, url,
                            checks=False, thresholds=False, think="1h", graceful="0s")
        record("idle", vus=n, **ours(f"idle-ours-{n}", toml))
        record("idle", vus=n, **k6(f"idle-k6-{n}", js))


def open_model(name, rate, seconds, url):
    return scenario(name, {"executor": "constant-arrival-rate", "rate": rate, "timeUnit": "1s",
                           "duration": f"{seconds}s", "preAllocatedVUs": max(50, rate // 50),
                           "maxVUs": max(200, rate // 10)}, url)


def phase_flat():
    url = f"http://127.0.0.1:{PORT}/"
    for seconds in (10, 60):
        toml, js = open_model(f"flat{seconds}", 2000, seconds, url)
        record("flat", seconds=seconds, **ours(f"flat-ours-{seconds}", toml))
        record("flat", seconds=seconds, **k6(f"flat-k6-{seconds}", js))


def phase_rate():
    for rate in (2000, 10000):
        for tool in ("prodready", "k6"):
            run_id = f"{tool}-{rate}"
            toml, js = open_model(f"rate{rate}{tool}", rate, RATE_SECONDS,
                                  f"http://127.0.0.1:{LOG_PORT}/?run={run_id}")
            r = ours(f"rate-{run_id}", toml) if tool == "prodready" else k6(f"rate-{run_id}", js)
            record("rate", rate=rate, seconds=RATE_SECONDS, run=run_id, **r)
            time.sleep(2)  # nginx flushes its access log buffer every second


def arrivals():
    """Per run: requests the server logged, first and last arrival."""
    seen = {}
    path = os.path.join(WORK, "arrivals.log")
    if not os.path.exists(path):
        return seen
    for line in open(path):
        t, run_id = line.split()
        t = float(t)
        s = seen.setdefault(run_id, {"n": 0, "first": t, "last": t, "per_second": {}})
        s["n"] += 1
        s["first"], s["last"] = min(s["first"], t), max(s["last"], t)
    for line in open(path):
        t, run_id = line.split()
        s = seen[run_id]
        sec = int(float(t) - s["first"])
        s["per_second"][sec] = s["per_second"].get(sec, 0) + 1
    return seen


def report():
    r = json.load(open(RESULTS))
    runs = r["runs"]
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    print("\n## generator CPU per request (closed model, 50 connections, "
          f"{SECONDS} s per run, {ROUNDS} rounds; user+sys of the generator process)")
    print("| tool | requests per run (median) | CPU s per run (median) | µs CPU per request, each round | median |")
    print("|---|---|---|---|---|")
    per = {}
    for tool in ("prodready", "wrk", "k6"):
        xs = [x for x in runs if x["phase"] == "cpu" and x["tool"] == tool]
        if not xs:
            continue
        us = [x["cpu"] / x["requests"] * 1e6 for x in xs]
        per[tool] = med(us)
        print(f"| {tool} | {med([x['requests'] for x in xs]):,.0f} | {med([x['cpu'] for x in xs]):.2f} | "
              f"{', '.join(f'{u:.1f}' for u in us)} | **{per[tool]:.1f}** |")
    if "prodready" in per and "wrk" in per:
        ratios = [o["cpu"] / o["requests"] / (w["cpu"] / w["requests"]) for o, w in zip(
            [x for x in runs if x["phase"] == "cpu" and x["tool"] == "prodready"],
            [x for x in runs if x["phase"] == "cpu" and x["tool"] == "wrk"])]
        print(f"\nprodready / wrk: median of the per-round ratios **{med(ratios):.2f}** "
              f"({', '.join(f'{x:.2f}' for x in ratios)}); target ≤ 1.25")
    if "prodready" in per and "k6" in per:
        ratios = [o["cpu"] / o["requests"] / (k["cpu"] / k["requests"]) for o, k in zip(
            [x for x in runs if x["phase"] == "cpu" and x["tool"] == "prodready"],
            [x for x in runs if x["phase"] == "cpu" and x["tool"] == "k6"])]
        print(f"prodready / k6: median of the per-round ratios **{med(ratios):.3f}** "
              f"({', '.join(f'{x:.3f}' for x in ratios)}); target ≤ 0.2")
    xs = [x for x in runs if x["phase"] == "cpu" and x["tool"] != "wrk"]
    if xs:
        print(f"(thresholds: exit codes {sorted({x['exit'] for x in xs})}; failed-request rates "
              f"{sorted({x['failed_rate'] for x in xs})})")
    xs = [x for x in runs if x["phase"] == "instr"]
    if xs:
        print("\n## instructions per request (callgrind; two request counts, difference over difference)")
        print("| tool | requests | instructions | per request |")
        print("|---|---|---|---|")
        for x in xs:
            print(f"| {x['tool']} | {x['requests'][0]:,} / {x['requests'][1]:,} | "
                  f"{x['instructions'][0]:,} / {x['instructions'][1]:,} | **{x['per_request']:,.0f}** |")
        by = {x["tool"]: x["per_request"] for x in xs}
        if "prodready" in by and "wrk" in by:
            print(f"\nprodready / wrk in instructions: **{by['prodready'] / by['wrk']:.2f}** (target ≤ 1.25)")
    xs = [x for x in runs if x["phase"] == "idle"]
    if xs:
        print("\n## memory per idle VU (one request each, then thinking; peak RSS)")
        print("| tool | VUs | peak RSS | (RSS - RSS at 1 VU) / (VUs - 1) |")
        print("|---|---|---|---|")
        for tool in ("prodready", "k6"):
            base = next((x["rss_kib"] for x in xs if x["tool"] == tool and x["vus"] == 1), None)
            for x in (x for x in xs if x["tool"] == tool):
                per_vu = "" if x["vus"] == 1 else f"**{(x['rss_kib'] - base) / (x['vus'] - 1):.1f} KiB**"
                print(f"| {tool} | {x['vus']:,} | {x['rss_kib'] / 1024:.1f} MiB | {per_vu} |")
    xs = [x for x in runs if x["phase"] == "flat"]
    if xs:
        print("\n## peak memory against the run's length (open model, 2,000 iterations/s)")
        print("| tool | 10 s run | 60 s run | 60 s / 10 s | requests (10 s / 60 s) |")
        print("|---|---|---|---|---|")
        for tool in ("prodready", "k6"):
            a = next((x for x in xs if x["tool"] == tool and x["seconds"] == 10), None)
            b = next((x for x in xs if x["tool"] == tool and x["seconds"] == 60), None)
            if a and b:
                print(f"| {tool} | {a['rss_kib'] / 1024:.1f} MiB | {b['rss_kib'] / 1024:.1f} MiB | "
                      f"**{b['rss_kib'] / a['rss_kib']:.3f}** | {a['requests']:,} / {b['requests']:,} |")
    xs = [x for x in runs if x["phase"] == "rate"]
    if xs:
        seen = arrivals()
        print(f"\n## open-model rate ({RATE_SECONDS} s; the server's access log, $msec per request)")
        print("| tool | target /s | sent (of rate x duration) | dropped | server: requests | server: rate "
              "(n-1)/(last-first) | rate / target | server: slowest and fastest full second |")
        print("|---|---|---|---|---|---|---|---|")
        for x in xs:
            s = seen.get(x["run"], {"n": 0, "first": 0, "last": 0, "per_second": {}})
            span = s["last"] - s["first"]
            rate = (s["n"] - 1) / span if span > 0 else float("nan")
            full = [v for k, v in s["per_second"].items() if k < int(span)]
            lohi = f"{min(full):,} / {max(full):,}" if full else "-"
            want = x["rate"] * x["seconds"]
            print(f"| {x['tool']} | {x['rate']:,} | {x['requests']:,} ({x['requests'] / want:.4f}) | "
                  f"{x['dropped']:,} | {s['n']:,} | {rate:,.1f} | **{rate / x['rate']:.4f}** | {lohi} |")
    print("\nload average (1, 5, 15 min) during the phases: " +
          "; ".join(f"{l['at']} {' '.join(l['loadavg'])}" for l in r["load"]))


if sys.argv[1] == "report":
    report()
else:
    phases = {"cpu": phase_cpu, "instr": phase_instr, "idle": phase_idle, "flat": phase_flat, "rate": phase_rate}
    for name in os.environ["BENCH_PHASES"].split():
        print(f"phase {name}...", file=sys.stderr, flush=True)
        note_load(f"before {name}")
        phases[name]()
    note_load("end")
    json.dump(R, open(RESULTS, "w"), indent=1)
PY

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
python3 "$WORK/bench.py" run
# nginx writes out the rest of its access log when it stops.
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=""
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), \
$(free -g | awk '/Mem:/ {print $2}') GB, Linux $(uname -r); server: $("$NGINX" -v 2>&1) on core $SERVER_CPU \
(1 worker); generator on core $GEN_CPU; $("$BIN" --version); $("$K6" version | head -n 1); \
$(echo "$WRK_VERSION" | head -n 1 | cut -d' ' -f1-2); \
load average at the start $LOAD0, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$WORK/bench.py" report
