#!/usr/bin/env bash
# Start a 3-node NATS JetStream cluster and N shoal servers on it, all on loopback.
#
#   scripts/nats-cluster.sh [N]     # N shoal servers (default 2) on ports 4567, 4568, ...
#
# NATS clients: 127.0.0.1:14221-14223 (routes 16221-16223, monitoring 18221-18223), each with
# sync_interval: always (shoal's requirement) and its store in $SHOAL_CLUSTER_DIR (default ./shoal-cluster).
# nats-server v2.15.3 is built once from the Go module proxy into the user cache. Ctrl-C stops everything.
#
# Sourced (as scripts/bench-nats.sh does), it only defines nats_server_build and nats_cluster_start.
set -euo pipefail

# nats_server_build sets nats_server to the nats-server binary, building it into the user cache
# the first time.
nats_server_build() {
  local version=v2.15.3
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/shoal/nats-server-$version"
  if [ ! -x "$cache/nats-server" ]; then
    echo "building nats-server $version into $cache"
    mkdir -p "$cache"
    GOBIN="$cache" GOFLAGS= CGO_ENABLED=0 go install "github.com/nats-io/nats-server/v2@$version"
  fi
  nats_server=$cache/nats-server
}

# nats_cluster_start DIR NAME OFFSET starts 3 nats-servers in the background, node i (1 to 3) in
# DIR/ni (config nats.conf, store js/, log server.log) on 127.0.0.1, ports 14220+OFFSET+i (clients),
# 16220+OFFSET+i (routes) and 18220+OFFSET+i (monitoring), in the cluster NAME. It appends their
# pids to the array pids and sets urls to the client URLs, comma-separated. Call nats_server_build
# first.
nats_cluster_start() {
  local dir=$1 name=$2 offset=$3 i
  local client=$((14220 + offset)) route=$((16220 + offset)) http=$((18220 + offset))
  local routes="nats-route://127.0.0.1:$((route + 1)), nats-route://127.0.0.1:$((route + 2)), nats-route://127.0.0.1:$((route + 3))"
  urls=
  for i in 1 2 3; do
    mkdir -p "$dir/n$i"
    cat >"$dir/n$i/nats.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:$((client + i))
http: 127.0.0.1:$((http + i))
max_payload: 8MB
jetstream { store_dir: "$dir/n$i/js", sync_interval: always, max_file_store: 10G }
cluster { name: $name, listen: 127.0.0.1:$((route + i)), routes: [$routes] }
CONF
    "$nats_server" -c "$dir/n$i/nats.conf" >"$dir/n$i/server.log" 2>&1 &
    pids+=($!)
    urls+="${urls:+,}nats://127.0.0.1:$((client + i))"
  done
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  return 0 # sourced: the functions only
fi

cd "$(dirname "$0")/.."
n=${1:-2}
dir=${SHOAL_CLUSTER_DIR:-./shoal-cluster}
nats_server_build
go build -o "$dir/shoal" ./cmd/shoal
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
nats_cluster_start "$dir" shoal 0
for i in $(seq 1 "$n"); do
  port=$((4566 + i))
  "$dir/shoal" server --addr "127.0.0.1:$port" --storage nats --nats-url "$urls" >"$dir/shoal-$i.log" 2>&1 &
  pids+=($!)
  echo "shoal $i: http://127.0.0.1:$port (log $dir/shoal-$i.log)"
done
echo "NATS: $urls; stop with Ctrl-C"
wait
