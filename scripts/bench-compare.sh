#!/usr/bin/env bash
# Side-by-side load test of shoal (fsync=always) and kinesalite (in memory) with `shoal bench`, the client on the
# same machine. Usage: scripts/bench-compare.sh [DURATION]   (default 10s per scenario)
# Needs node/npm for kinesalite (../shared/peers/kinesalite.sh installs it once).
set -euo pipefail
dur=${1:-10s}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${kpid:-}" ] && kill "$kpid" 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/shoal" "$root/cmd/shoal"
"$work/shoal" server --addr 127.0.0.1:4610 --data-dir "$work/data" --fsync always --log-level warn &
peers=${PEERS_SCRIPT:-$root/../shared/peers/kinesalite.sh}
out=$(bash "$peers" 4611)
kpid=$(sed -E 's/.*pid ([0-9]+).*/\1/' <<<"$out")
sleep 1

run() { # name endpoint args...
  local name=$1 ep=$2; shift 2
  echo "== $name"
  "$work/shoal" bench "$@" --endpoint "$ep" | grep -E '^(put|get|latency|errors)[: ]'
}
# kinesalite prefills at ~20,000 records/s, so it gets a smaller backlog to read.
for target in "shoal http://127.0.0.1:4610 1000000" "kinesalite http://127.0.0.1:4611 300000"; do
  set -- $target
  n=$1 ep=$2 prefill=$3
  run "$n: PutRecords 500 x 100 B, 4 shards, 8 clients" "$ep" put --stream p100 --shards 4 --clients 8 --batch 500 --size 100 --duration "$dur"
  run "$n: PutRecords 500 x 1 KiB, 4 shards, 8 clients" "$ep" put --stream p1k --shards 4 --clients 8 --batch 500 --size 1024 --duration "$dur"
  run "$n: GetRecords read-back, 4 shards" "$ep" get --stream g100 --shards 4 --prefill "$prefill" --size 100 --duration 60s
  run "$n: sequential PutRecord, 1 client" "$ep" put --stream seq --shards 1 --clients 1 --mode record --size 100 --duration "$dur"
done
