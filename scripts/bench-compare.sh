#!/usr/bin/env bash
# Side-by-side load test of shoal (fsync=always) and kinesalite (in memory) with `shoal bench`, the client on the
# same machine, against a yardstick: `shoal bench responder` (internal/bench/responder), a minimal endpoint that
# decodes each request with shoal's codec, answers success and stores nothing. A summary prints each figure and
# shoal's and kinesalite's as a ratio of the responder's: on a small machine the load tool and the server share the
# CPU, and the ratio says how much of the floor (client + HTTP + codec) a server keeps.
# Usage: scripts/bench-compare.sh [DURATION]   (default 10s per scenario)
# kinesalite is the npm package (a Node Kinesis emulator); it is installed once, with npm, under
# ${KINESALITE_DIR:-~/.cache/shoal/kinesalite-VERSION} and run with node. Without node and npm the kinesalite half
# is skipped (with a message) and only shoal is measured.
set -euo pipefail
dur=${1:-10s}
root=$(cd "$(dirname "$0")/.." && pwd)
kversion=3.3.3
kdir=${KINESALITE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shoal/kinesalite-$kversion}
shoal_port=4610 kinesalite_port=4611 responder_port=4612
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

# The responder, last to start and first to run: the yardstick of the ratios below.
"$work/shoal" bench responder --addr "127.0.0.1:$responder_port" >"$work/responder.log" 2>&1 &
if ! listening "$responder_port" 100; then
  echo "bench-compare: the responder did not start on port $responder_port:" >&2
  tail -n 20 "$work/responder.log" >&2
  exit 1
fi

# run TARGET SCENARIO ENDPOINT args...: prints the run's figures and keeps, in $work/TARGET.SCENARIO, its rate
# (records/s) and, for put, its p50 latency per call in ms.
run() {
  local target=$1 scenario=$2 ep=$3; shift 3
  echo "== $target: ${titles[$scenario]}"
  "$work/shoal" bench "$@" --endpoint "$ep" | grep -E '^(put|get|latency|errors)[: ]' | tee "$work/out"
  local rate p50
  rate=$(sed -nE 's/^(put|get): .* = ([0-9.]+) records\/s.*/\2/p' "$work/out")
  p50=$(sed -nE 's/^latency per call: p50 ([0-9.]+)(ms|s|µs|us).*/\1 \2/p' "$work/out")
  echo "${rate:-0} ${p50:-0 ms}" >"$work/$target.$scenario"
}
declare -A titles=(
  [p100]="PutRecords 500 x 100 B, 4 shards, 8 clients"
  [p1k]="PutRecords 500 x 1 KiB, 4 shards, 8 clients"
  [get]="GetRecords read-back, 4 shards"
  [seq]="sequential PutRecord, 1 client, 100 B"
)
scenarios=(p100 p1k get seq)
# kinesalite prefills at ~20,000 records/s, so it gets a smaller backlog to read.
targets=("responder http://127.0.0.1:$responder_port 1000000" "shoal http://127.0.0.1:$shoal_port 1000000")
if [ -n "$kinesalite" ]; then targets+=("kinesalite http://127.0.0.1:$kinesalite_port 300000"); fi
for target in "${targets[@]}"; do
  read -r n ep prefill <<<"$target"
  run "$n" p100 "$ep" put --stream p100 --shards 4 --clients 8 --batch 500 --size 100 --duration "$dur"
  run "$n" p1k "$ep" put --stream p1k --shards 4 --clients 8 --batch 500 --size 1024 --duration "$dur"
  run "$n" get "$ep" get --stream g100 --shards 4 --prefill "$prefill" --size 100 --duration 60s
  run "$n" seq "$ep" put --stream seq --shards 1 --clients 1 --mode record --size 100 --duration "$dur"
done

# Summary: records/s (sequential PutRecord: p50 per call), and each server's figure as a ratio of the responder's
# (rate: server/responder, higher is better, 1.00 = the floor; p50: server/responder, lower is better).
ms() { # VALUE UNIT -> milliseconds
  case $2 in s) awk -v v="$1" 'BEGIN{print v*1000}' ;; µs | us) awk -v v="$1" 'BEGIN{print v/1000}' ;; *) echo "$1" ;; esac
}
echo
echo "== summary (ratio to the responder)"
printf '%-46s %-16s' scenario responder
for target in "${targets[@]:1}"; do printf ' %-26s' "${target%% *}"; done
echo
for sc in "${scenarios[@]}"; do
  read -r rrate rp50 runit <"$work/responder.$sc"
  if [ "$sc" = seq ]; then rp50=$(ms "$rp50" "$runit"); printf '%-46s %-16s' "${titles[$sc]} (p50)" "${rp50} ms"; else printf '%-46s %-16s' "${titles[$sc]}" "$(printf '%.0f/s' "$rrate")"; fi
  for target in "${targets[@]:1}"; do
    read -r rate p50 unit <"$work/${target%% *}.$sc"
    if [ "$sc" = seq ]; then
      p50=$(ms "$p50" "$unit")
      printf ' %-26s' "$(awk -v a="$p50" -v b="$rp50" 'BEGIN{printf "%s ms (x%.2f)", a, (b>0?a/b:0)}')"
    else
      printf ' %-26s' "$(awk -v a="$rate" -v b="$rrate" 'BEGIN{printf "%.0f/s (%.2f)", a, (b>0?a/b:0)}')"
    fi
  done
  echo
done
