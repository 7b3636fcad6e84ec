#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time each (default 5s).
# Usage: scripts/fuzz-smoke.sh [DURATION]
set -euo pipefail
fuzztime=${1:-5s}
cd "$(dirname "$0")/.."
status=0
while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")
  pkg=./$(dirname "$file")
  echo "fuzz $pkg $name ($fuzztime)"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/fuzz-$name.log 2>&1; then
    cat /tmp/fuzz-$name.log
    status=1
  fi
done < <(grep -rEn --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | sed -E 's/^\.\///; s/:[0-9]+:/:/')
exit $status
