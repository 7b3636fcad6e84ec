#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time each (default 5s).
# Usage: scripts/fuzz-smoke.sh [DURATION]
set -euo pipefail
fuzztime=${1:-5s}
cd "$(dirname "$0")/.."
status=0
passed=0
failed=0
while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")
  pkg=./$(dirname "$file")
  echo "fuzz $pkg $name ($fuzztime)"
  log=$(mktemp)
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
    passed=$((passed + 1))
  else
    cat "$log"
    failed=$((failed + 1))
    status=1
  fi
  rm -f "$log"
done < <(grep -rEn --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | sed -E 's/^\.\///; s/:[0-9]+:/:/')
echo "fuzz: $passed passed, $failed failed"
exit $status
