#!/usr/bin/env bash
# Side-by-side load test of shoal (fsync=always) and kinesalite (in memory) with `shoal bench`, the client on the
# same machine. Usage: scripts/bench-compare.sh [DURATION]   (default 10s per scenario)
# kinesalite is the npm package (a Node Kinesis emulator); it is installed once, with npm, under
# ${KINESALITE_DIR:-~/.cache/shoal/kinesalite-VERSION} and run with node. Without node and npm the kinesalite half
# is skipped (with a message) and only shoal is measured.
set -euo pipefail
dur=${1:-10s}
root=$(cd "$(dirname "$0")/.." && pwd)
kversion=3.3.3
kdir=${KINESALITE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shoal/kinesalite-$kversion}
shoal_port=4610 kinesalite_port=4611
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

# listening PORT TRIES: waits until something accepts connections on the loopback PORT.
listening() {
  for _ in $(seq 1 "$2"); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# kinesalite first: a failed install or start stops the script before minutes of shoal runs.
kinesalite=yes
kjs=$kdir/node_modules/kinesalite/cli.js
if ! command -v node >/dev/null; then
  echo "bench-compare: node not found: skipping kinesalite, measuring shoal only (install Node.js and npm to compare)" >&2
  kinesalite=
elif [ ! -f "$kjs" ]; then
  if ! command -v npm >/dev/null; then
    echo "bench-compare: npm not found and kinesalite not installed in $kdir: skipping kinesalite, measuring shoal only" >&2
    kinesalite=
  else
    echo "bench-compare: installing kinesalite@$kversion into $kdir" >&2
    mkdir -p "$kdir"
    if ! npm install --prefix "$kdir" --no-audit --no-fund --no-save --silent "kinesalite@$kversion" >&2 ||
      [ ! -f "$kjs" ]; then
      echo "bench-compare: npm install kinesalite@$kversion into $kdir failed" >&2
      exit 1
    fi
  fi
fi
if [ -n "$kinesalite" ]; then
  # kinesalite demands SigV4-signed requests: the fake credentials of shoal bench do.
  node "$kjs" --port "$kinesalite_port" --createStreamMs 0 --deleteStreamMs 0 --updateStreamMs 0 --shardLimit 1000 \
    >"$work/kinesalite.log" 2>&1 &
  if ! listening "$kinesalite_port" 100; then
    echo "bench-compare: kinesalite did not start on port $kinesalite_port:" >&2
    tail -n 20 "$work/kinesalite.log" >&2
    exit 1
  fi
fi

go build -o "$work/shoal" "$root/cmd/shoal"
"$work/shoal" server --addr "127.0.0.1:$shoal_port" --data-dir "$work/data" --fsync always --log-level warn &
if ! listening "$shoal_port" 300; then
  echo "bench-compare: shoal did not start on port $shoal_port" >&2
  exit 1
fi

run() { # name endpoint args...
  local name=$1 ep=$2; shift 2
  echo "== $name"
  "$work/shoal" bench "$@" --endpoint "$ep" | grep -E '^(put|get|latency|errors)[: ]'
}
# kinesalite prefills at ~20,000 records/s, so it gets a smaller backlog to read.
targets=("shoal http://127.0.0.1:$shoal_port 1000000")
if [ -n "$kinesalite" ]; then targets+=("kinesalite http://127.0.0.1:$kinesalite_port 300000"); fi
for target in "${targets[@]}"; do
  read -r n ep prefill <<<"$target"
  run "$n: PutRecords 500 x 100 B, 4 shards, 8 clients" "$ep" put --stream p100 --shards 4 --clients 8 --batch 500 --size 100 --duration "$dur"
  run "$n: PutRecords 500 x 1 KiB, 4 shards, 8 clients" "$ep" put --stream p1k --shards 4 --clients 8 --batch 500 --size 1024 --duration "$dur"
  run "$n: GetRecords read-back, 4 shards" "$ep" get --stream g100 --shards 4 --prefill "$prefill" --size 100 --duration 60s
  run "$n: sequential PutRecord, 1 client" "$ep" put --stream seq --shards 1 --clients 1 --mode record --size 100 --duration "$dur"
done
