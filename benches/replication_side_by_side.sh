#!/usr/bin/env bash
# Replication figures, moonshard against redis-server in the same topology:
#   1. master throughput, SET -P 16 (redis-benchmark), with 0, 1 and 2 replicas
#      of the same kind attached, and the replication lag sampled under that
#      load (master_repl_offset minus the slowest replica's acknowledged offset);
#   2. full-sync time of a 3M-key dataset (DEBUG POPULATE 3000000): REPLICAOF
#      until the replica's link is up with the master's offset.
# Master on CPU 0, replicas and the benchmark client on CPU 1. Release build:
#   cargo build --release --bin moonshard && benches/replication_side_by_side.sh
set -euo pipefail
ms=${MS:-target/release/moonshard}
n=${N:-300000}
base=${PORT:-23000}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

# node <kind> <port> <cpu>: starts a server (1 shard for moonshard).
node() {
  local kind=$1 port=$2 cpu=$3 d="$dir/$2"
  mkdir -p "$d"
  if [[ $kind == redis ]]; then
    taskset -c "$cpu" redis-server --port "$port" --save '' --appendonly no --dir "$d" \
      --repl-diskless-sync-delay 0 --enable-debug-command yes >/dev/null 2>&1 &
  else
    taskset -c "$cpu" "$ms" --port "$port" --shards 1 --save '' --dir "$d" \
      --repl-diskless-sync-delay 0 --enable-debug-command yes >/dev/null 2>&1 &
  fi
  pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.1; done
}
field() { redis-cli -p "$1" info replication | tr -d '\r' | awk -F: -v k="$2" '$1==k {print $2}'; }
in_sync() { # <master port> <replica port>
  [[ $(field "$2" master_link_status) == up && $(field "$2" slave_repl_offset) == $(field "$1" master_repl_offset) ]]
}
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; pids=(); }

echo "| server | replicas | SET -P16 ops/s | max lag (bytes) |"
echo "|---|---|---|---|"
for kind in moonshard redis; do
  for replicas in 0 1 2; do
    m=$base
    node "$kind" "$m" 0
    for i in $(seq "$replicas"); do
      node "$kind" $((m + i)) 1
      redis-cli -p $((m + i)) replicaof 127.0.0.1 "$m" >/dev/null
      until in_sync "$m" $((m + i)); do sleep 0.1; done
    done
    lagfile="$dir/lag"
    : > "$lagfile"
    if (( replicas > 0 )); then
      ( while sleep 0.2; do
          mo=$(field "$m" master_repl_offset); lo=$mo
          for i in $(seq "$replicas"); do o=$(field $((m + i)) slave_repl_offset); if (( o < lo )); then lo=$o; fi; done
          echo $((mo - lo)) >> "$lagfile"
        done ) &
      sampler=$!
    fi
    ops=$(taskset -c 1 redis-benchmark -p "$m" -t set -P 16 -c 50 -n "$n" -r 100000 -q 2>/dev/null \
      | tr '\r' '\n' | awk '/SET:/ {print $2}' | tail -1)
    lag=-
    if (( replicas > 0 )); then kill "$sampler"; wait "$sampler" 2>/dev/null || true; lag=$(sort -n "$lagfile" | tail -1); fi
    echo "| $kind | $replicas | $ops | $lag |"
    stop_all
  done
done

echo
echo "| server | keys | full sync (s) |"
echo "|---|---|---|"
for kind in moonshard redis; do
  m=$base
  node "$kind" "$m" 0
  redis-cli -p "$m" debug populate 3000000 >/dev/null
  node "$kind" $((m + 1)) 1
  t0=$(date +%s.%N)
  redis-cli -p $((m + 1)) replicaof 127.0.0.1 "$m" >/dev/null
  until in_sync "$m" $((m + 1)); do sleep 0.05; done
  t1=$(date +%s.%N)
  echo "| $kind | $(redis-cli -p $((m + 1)) dbsize) | $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') |"
  stop_all
done
