#!/usr/bin/env bash
# A 3-master moonshard cluster against a 3-master redis-server cluster on the
# same cores, same client: `redis-benchmark --cluster` (SET, GET, INCR,
# LPUSH at -P 1 and -P 16). Both clusters run at once on CPU 0 (each node
# pinned there, moonshard nodes with one shard each); the rounds alternate
# which cluster is measured first; prints requests/s per cluster and the
# median ratio per test. Release build only (figures, not a test).
#
#   benches/cluster_side_by_side.sh target/release/moonshard [rounds] [requests]
set -euo pipefail
ms=$1; rounds=${2:-3}; n=${3:-100000}
base=${BASE_PORT:-26100}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
node() {  # node <kind> <port>
  local kind=$1 port=$2 d="$work/$2"
  mkdir -p "$d"
  if [[ $kind == redis ]]; then
    taskset -c 0 redis-server --port "$port" --cluster-enabled yes --cluster-port $((port + 1000)) \
      --save "" --appendonly no --dir "$d" >/dev/null 2>&1 &
  else
    taskset -c 0 "$ms" --port "$port" --cluster-enabled yes --cluster-port $((port + 1000)) --shards 1 \
      --save '' --dir "$d" >/dev/null 2>&1 &
  fi
  pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.1; done
}
for i in 0 1 2; do node moonshard $((base + i)); node redis $((base + 10 + i)); done
redis-cli --cluster create 127.0.0.1:$base 127.0.0.1:$((base + 1)) 127.0.0.1:$((base + 2)) --cluster-yes >/dev/null
redis-cli --cluster create 127.0.0.1:$((base + 10)) 127.0.0.1:$((base + 11)) 127.0.0.1:$((base + 12)) --cluster-yes >/dev/null
for p in $base $((base + 10)); do
  for _ in $(seq 100); do redis-cli -p "$p" cluster info | grep -q cluster_state:ok && break; sleep 0.2; done
done
sleep 2
bench() {  # bench <port> <pipeline>: "test rps" lines
  taskset -c 1 redis-benchmark --cluster -p "$1" -c 50 -n "$n" -r 100000 -P "$2" -t set,get,incr,lpush --csv 2>/dev/null |
    awk -F'","' 'NR > 1 {gsub(/"/, "", $1); gsub(/"/, "", $2); print tolower($1), $2}'
}
out="$work/results"
for r in $(seq "$rounds"); do
  for p in 1 16; do
    if (( r % 2 )); then order="m r"; else order="r m"; fi
    for who in $order; do
      port=$base; [[ $who == r ]] && port=$((base + 10))
      bench "$port" "$p" | sed "s/^/$who $p /" >>"$out"
    done
  done
done
echo "| test | P | moonshard rps | redis rps | ratio (median of rounds) |"
echo "|---|---|---|---|---|"
for p in 1 16; do
  for t in set get incr lpush; do
    m=$(awk -v t="$t" -v p="$p" '$1 == "m" && $2 == p && $3 == t {print $4}' "$out" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
    rr=$(awk -v t="$t" -v p="$p" '$1 == "r" && $2 == p && $3 == t {print $4}' "$out" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
    ratio=$(paste <(awk -v t="$t" -v p="$p" '$1 == "m" && $2 == p && $3 == t {print $4}' "$out") \
      <(awk -v t="$t" -v p="$p" '$1 == "r" && $2 == p && $3 == t {print $4}' "$out") |
      awk '{print $1 / $2}' | sort -n | awk '{v[NR]=$1} END {printf "%.2f", v[int((NR+1)/2)]}')
    echo "| $t | $p | $m | $rr | $ratio |"
  done
done
