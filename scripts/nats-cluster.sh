#!/usr/bin/env bash
# Start a 3-node NATS JetStream cluster and N shoal servers on it, all on loopback.
#
#   scripts/nats-cluster.sh [N]     # N shoal servers (default 2) on ports 4567, 4568, ...
#
# NATS clients: 127.0.0.1:14221-14223 (routes 16221-16223, monitoring 18221-18223), each with
# sync_interval: always (shoal's requirement) and its store in $SHOAL_CLUSTER_DIR (default ./shoal-cluster).
# nats-server v2.15.3 is built once from the Go module proxy into the user cache. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2}
dir=${SHOAL_CLUSTER_DIR:-./shoal-cluster}
version=v2.15.3
cache="${XDG_CACHE_HOME:-$HOME/.cache}/shoal/nats-server-$version"
if [ ! -x "$cache/nats-server" ]; then
  echo "building nats-server $version into $cache"
  mkdir -p "$cache"
  GOBIN="$cache" GOFLAGS= CGO_ENABLED=0 go install "github.com/nats-io/nats-server/v2@$version"
fi
go build -o "$dir/shoal" ./cmd/shoal
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
routes="nats-route://127.0.0.1:16221, nats-route://127.0.0.1:16222, nats-route://127.0.0.1:16223"
for i in 1 2 3; do
  mkdir -p "$dir/n$i"
  cat >"$dir/n$i/nats.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:1422$i
http: 127.0.0.1:1822$i
max_payload: 8MB
jetstream { store_dir: "$dir/n$i/js", sync_interval: always, max_file_store: 10G }
cluster { name: shoal, listen: 127.0.0.1:1622$i, routes: [$routes] }
CONF
  "$cache/nats-server" -c "$dir/n$i/nats.conf" >"$dir/n$i/server.log" 2>&1 &
  pids+=($!)
done
urls=nats://127.0.0.1:14221,nats://127.0.0.1:14222,nats://127.0.0.1:14223
for i in $(seq 1 "$n"); do
  port=$((4566 + i))
  "$dir/shoal" server --addr "127.0.0.1:$port" --storage nats --nats-url "$urls" >"$dir/shoal-$i.log" 2>&1 &
  pids+=($!)
  echo "shoal $i: http://127.0.0.1:$port (log $dir/shoal-$i.log)"
done
echo "NATS: $urls; stop with Ctrl-C"
wait
