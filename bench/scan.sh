#!/usr/bin/env bash
# Secret scanning (issue #17): `prodready scan secrets` beside ripsecrets (crates.io) and detect-secrets
# (PyPI) in one run, on the same large tree (default: the cargo registry sources, ~/.cargo/registry/src,
# plus the Python packages of the peers' virtualenv, to pass 500 MB; SCAN_TREES="DIR..." to change it) and
# on the labelled corpus of the tests of prodready-scan (recall and precision against its labels).
# Usage: cargo xtask bench scan   (or PRODREADY_BIN=... CORPUS_BIN=... PEERS=... bash bench/scan.sh)
set -euo pipefail

BIN="${PRODREADY_BIN:?set PRODREADY_BIN to a release build of prodready}"
CORPUS_BIN="${CORPUS_BIN:?set CORPUS_BIN to a release build of the corpus example of prodready-scan}"
PEERS="${PEERS:?set PEERS to the peers dir (cargo xtask peers)}"
read -r -a TREES <<<"${SCAN_TREES:-$HOME/.cargo/registry/src $PEERS/venv/lib}"
RIPSECRETS="$PEERS/bin/ripsecrets"
DETECT_SECRETS="$PEERS/bin/detect-secrets"
for tool in "$RIPSECRETS" "$DETECT_SECRETS"; do
    [ -x "$tool" ] || { echo "$tool is missing: run cargo xtask peers" >&2; exit 1; }
done
WORK="$(mktemp -d "${TMPDIR:-/tmp}/prodready-scan-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# Runs a command (its exit code ignored: scanners exit 1 when they find something), output to a file;
# prints "wall_seconds max_rss_kib".
timed() {
    local out="$1"
    shift
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >"$out" 2>"$out.err" || true
    tail -n 1 "$WORK/time"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(uname -sr)"
echo "prodready: $("$BIN" --version); ripsecrets: $("$RIPSECRETS" --version); detect-secrets: $("$DETECT_SECRETS" --version)"

# --- the large tree ------------------------------------------------------------------------------------
# One copy of the trees that every scanner reads the same way: detect-secrets scans paths under its
# working directory and finds nothing under a hidden directory such as ~/.cargo, so the trees are copied
# to $WORK/tree (which also warms the page cache) and each scanner is given that one directory.
mkdir -p "$WORK/tree"
for t in "${TREES[@]}"; do
    cp -a "$t" "$WORK/tree/$(echo "${t#/}" | tr '/.' '__')"
done
TREE="$WORK/tree"
bytes=$(du -sb "$TREE" | cut -f1)
files=$(find "$TREE" -type f | wc -l)
mib=$(python3 -c "print(f'{$bytes / 1048576:.0f}')")
echo
echo "tree: ${TREES[*]} (copied): $mib MiB ($((bytes / 1000000)) MB) in $files files"

read -r ours_s ours_rss < <(cd "$TREE" && timed "$WORK/ours.json" "$BIN" scan secrets . --format json)
read -r rip_s rip_rss < <(cd "$TREE" && timed "$WORK/rip.txt" "$RIPSECRETS" .)
# detect-secrets takes hours on a tree this size (it was stopped after 40 min once): it gets
# $SCAN_DS_LIMIT seconds (default 1200), and a stopped run is reported as a lower bound.
DS_LIMIT="${SCAN_DS_LIMIT:-1200}"
read -r ds_s ds_rss < <(cd "$TREE" && timed "$WORK/ds.json" timeout "$DS_LIMIT" "$DETECT_SECRETS" scan --all-files .)
ds_stopped=$(python3 -c "print(int($ds_s >= $DS_LIMIT - 1))")
# ours once more after the peers, so a change in the machine's load shows
read -r ours2_s _ < <(cd "$TREE" && timed "$WORK/ours2.json" "$BIN" scan secrets . --format json)

python3 - "$WORK" "$bytes" "$ours_s" "$ours_rss" "$rip_s" "$rip_rss" "$ds_s" "$ds_rss" "$ours2_s" "$ds_stopped" <<'PY'
import json, sys
work, size = sys.argv[1], int(sys.argv[2])
ours_s, ours_rss, rip_s, rip_rss, ds_s, ds_rss, ours2_s = map(float, sys.argv[3:10])
ds_stopped = sys.argv[10] == "1"
ours = json.load(open(f"{work}/ours.json"))
rip = [l for l in open(f"{work}/rip.txt", errors="replace") if l.strip()]
if ds_stopped:
    print(f"detect-secrets stopped after {ds_s:.0f} s (SCAN_DS_LIMIT): its time is a lower bound, its findings unknown")
    ds_n = -1
else:
    ds = json.load(open(f"{work}/ds.json"))
    ds_n = sum(len(v) for v in ds["results"].values())
mib = size / 1048576
print(f"{'scanner':<16} {'wall s':>8} {'MiB/s':>8} {'max RSS MiB':>12} {'findings':>9}")
for name, s, rss, n in [("prodready", ours_s, ours_rss, len(ours["findings"])),
                        ("ripsecrets", rip_s, rip_rss, len(rip)),
                        ("detect-secrets", ds_s, ds_rss, ds_n)]:
    print(f"{name:<16} {s:>8.2f} {mib / max(s, 0.01):>8.1f} {rss / 1024:>12.0f} {n:>9}")
print(f"prodready again after the peers: {ours2_s:.2f} s")
at_least = ">" if ds_stopped else ""
print(f"throughput: {rip_s / max(ours_s, 0.01):.2f}x ripsecrets, {at_least}{ds_s / max(ours_s, 0.01):.1f}x detect-secrets")
stats = ours["stats"]
print("prodready read {files} files ({bytes} bytes), skipped {skipped_binary} binary and {skipped_large} large".format(**stats))
by_rule = {}
for f in ours["findings"]:
    by_rule[f["rule"]] = by_rule.get(f["rule"], 0) + 1
print("prodready findings by rule: " + ", ".join(f"{k} {v}" for k, v in sorted(by_rule.items(), key=lambda kv: -kv[1])))
PY

# --- the labelled corpus -------------------------------------------------------------------------------
CORPUS="$WORK/corpus"
"$CORPUS_BIN" "$CORPUS" 2>/dev/null
echo
echo "corpus: $(wc -l <"$CORPUS/labels.tsv") labelled secrets in $(find "$CORPUS" -type f ! -name labels.tsv | wc -l) files"
(cd "$CORPUS" && "$BIN" scan secrets . --format json >"$WORK/c-ours.json" 2>/dev/null || true)
(cd "$CORPUS" && "$RIPSECRETS" . >"$WORK/c-rip.txt" 2>/dev/null || true)
(cd "$CORPUS" && "$DETECT_SECRETS" scan --all-files . >"$WORK/c-ds.json" 2>/dev/null || true)

python3 - "$WORK" "$CORPUS" <<'PY'
import json, sys
work, corpus = sys.argv[1], sys.argv[2]
labels = {}
for line in open(f"{corpus}/labels.tsv"):
    path, n, rule = line.rstrip("\n").split("\t")
    labels[(path, int(n))] = rule

def norm(p):
    return p[2:] if p.startswith("./") else p

ours = {(norm(f["path"]), f["line"]) for f in json.load(open(f"{work}/c-ours.json"))["findings"]}
rip = set()
for line in open(f"{work}/c-rip.txt", errors="replace"):
    parts = line.split(":", 2)
    if len(parts) >= 2 and parts[1].isdigit():
        rip.add((norm(parts[0]), int(parts[1])))
ds = {(norm(path), r["line_number"]) for path, rs in json.load(open(f"{work}/c-ds.json"))["results"].items() for r in rs}

print(f"{'scanner':<16} {'recall':>7} {'precision':>10} {'reported lines':>15} {'false':>6}")
rows = {}
for name, found in [("prodready", ours), ("ripsecrets", rip), ("detect-secrets", ds)]:
    hit = sum(1 for k in labels if k in found)
    false = sum(1 for k in found if k not in labels)
    rows[name] = found
    print(f"{name:<16} {hit / len(labels):>7.3f} {(len(found) - false) / max(len(found), 1):>10.3f} {len(found):>15} {false:>6}")
rules = sorted(set(labels.values()))
print()
print("recall per rule (labelled secrets found, any rule of the scanner's):")
print(f"{'rule':<32} {'prodready':>9} {'ripsecrets':>10} {'detect-secrets':>14}")
for rule in rules:
    keys = [k for k, r in labels.items() if r == rule]
    cells = [sum(1 for k in keys if k in rows[n]) / len(keys) for n in ("prodready", "ripsecrets", "detect-secrets")]
    print(f"{rule:<32} {cells[0]:>9.2f} {cells[1]:>10.2f} {cells[2]:>14.2f}")
PY
