#!/bin/sh
# prodready security scans as one CI step: secrets in the tree, locked dependencies against an offline
# advisory database. Writes SARIF (and JUnit with SCAN_JUNIT=1) into $SCAN_OUT, runs both scans even when
# the first one fails, and exits with the worse of the two exit codes (0 clean, 1 findings, 2 usage).
#
#   ADVISORY_DB       required: advisory directories (OSV JSON or a RustSec advisory-db checkout), ':'-separated
#   PRODREADY         the prodready binary (default: prodready on PATH)
#   SCAN_PATH         what to scan (default: .)
#   SCAN_OUT          where the reports go (default: scan-reports)
#   MIN_SEVERITY      scan deps fails only at or above it: low, medium, high or critical (default: any)
#   SECRETS_BASELINE  a baseline file of accepted secret findings (default: none)
#   SCAN_JUNIT        1 to write JUnit XML beside the SARIF files
#
# Docs: docs/security-scanning.md
set -u

PRODREADY="${PRODREADY:-prodready}"
SCAN_PATH="${SCAN_PATH:-.}"
SCAN_OUT="${SCAN_OUT:-scan-reports}"
MIN_SEVERITY="${MIN_SEVERITY:-}"
SECRETS_BASELINE="${SECRETS_BASELINE:-}"
SCAN_JUNIT="${SCAN_JUNIT:-0}"
if [ -z "${ADVISORY_DB:-}" ]; then
    echo "scan.sh: set ADVISORY_DB to a directory of OSV JSON files or a RustSec advisory-db checkout" >&2
    exit 2
fi

mkdir -p "$SCAN_OUT" || exit 2
worst=0
record() {
    if [ "$1" -gt "$worst" ]; then worst=$1; fi
}

# scan secrets
set -- scan secrets "$SCAN_PATH"
if [ -n "$SECRETS_BASELINE" ]; then set -- "$@" --baseline "$SECRETS_BASELINE"; fi
"$PRODREADY" "$@" --format sarif --output "$SCAN_OUT/secrets.sarif"
code=$?
record "$code"
echo "scan secrets: exit $code, report $SCAN_OUT/secrets.sarif" >&2
if [ "$SCAN_JUNIT" = 1 ]; then "$PRODREADY" "$@" --format junit --output "$SCAN_OUT/secrets.xml"; fi

# scan deps
set -- scan deps "$SCAN_PATH"
old_ifs=$IFS
IFS=:
for db in $ADVISORY_DB; do set -- "$@" --db "$db"; done
IFS=$old_ifs
if [ -n "$MIN_SEVERITY" ]; then set -- "$@" --min-severity "$MIN_SEVERITY"; fi
"$PRODREADY" "$@" --format sarif --output "$SCAN_OUT/deps.sarif"
code=$?
record "$code"
echo "scan deps: exit $code, report $SCAN_OUT/deps.sarif" >&2
if [ "$SCAN_JUNIT" = 1 ]; then "$PRODREADY" "$@" --format junit --output "$SCAN_OUT/deps.xml"; fi

exit "$worst"
