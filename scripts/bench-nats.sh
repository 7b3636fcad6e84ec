#!/usr/bin/env bash
# Load test of shoal on a 3-node NATS JetStream cluster (every server syncing each write, R3) with 1 and with 2
# shoal servers, beside shoal on its file engine (fsync=always), all on this machine with the load tool.
# Usage: scripts/bench-nats.sh [DURATION]   (default 10s per scenario)
set -euo pipefail
dur=${1:-10s}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
# nats_server_build and nats_cluster_start
source "$root/scripts/nats-cluster.sh"
nats_server_build
go build -o "$work/shoal" "$root/cmd/shoal"
# NATS clients on 127.0.0.1:14321-14323 (routes 16321-16323, monitoring 18321-18323): beside a
# scripts/nats-cluster.sh cluster, not on its ports; sets urls.
nats_cluster_start "$work" bench 100
"$work/shoal" server --addr 127.0.0.1:4620 --data-dir "$work/file" --fsync always --log-level warn &
"$work/shoal" server --addr 127.0.0.1:4621 --storage nats --nats-url "$urls" --log-level warn &
"$work/shoal" server --addr 127.0.0.1:4622 --storage nats --nats-url "$urls" --log-level warn &
for port in 4620 4621 4622; do # the servers listen once they can serve
  for _ in $(seq 1 120); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.5; done
done

run() { # name endpoint args...
  local name=$1 ep=$2; shift 2
  echo "== $name"
  "$work/shoal" bench "$@" --endpoint "$ep" | grep -E '^(put|get|fanout|latency|errors|sent|consumer [0-9]|put->receive)[: ]' || true
}
targets=("file http://127.0.0.1:4620" "nats-1 http://127.0.0.1:4621" "nats-2 http://127.0.0.1:4621,http://127.0.0.1:4622")
# Scenario by scenario, the three targets one after another, so that the machine's other load falls on all alike.
for target in "${targets[@]}"; do
  set -- $target
  n=$1 ep=$2
  run "$n: PutRecords 500 x 100 B, 4 shards, 8 clients" "$ep" put --stream p100${n//-/} --shards 4 --clients 8 --batch 500 --size 100 --duration "$dur"
done
for target in "${targets[@]}"; do
  set -- $target
  n=$1 ep=$2
  run "$n: PutRecords 500 x 1 KiB, 4 shards, 8 clients" "$ep" put --stream p1k${n//-/} --shards 4 --clients 8 --batch 500 --size 1024 --duration "$dur"
done
for target in "${targets[@]}"; do
  set -- $target
  n=$1 ep=$2
  run "$n: GetRecords read-back, 4 shards" "$ep" get --stream g100${n//-/} --shards 4 --prefill 200000 --size 100 --duration "$dur"
done
for target in "${targets[@]}"; do
  set -- $target
  n=$1 ep=$2
  run "$n: sequential PutRecord, 1 client" "$ep" put --stream seq${n//-/} --shards 1 --clients 1 --mode record --size 100 --duration "$dur"
done
for target in "${targets[@]}"; do
  set -- $target
  n=$1 ep=$2
  run "$n: fan-out put->receive, 1 subscriber, 1000 rec/s" "$ep" fanout --stream fan${n//-/} --shards 4 --consumers 1 --rate 1000 --mode subscriber --duration "$dur"
done
