#!/usr/bin/env bash
# BullMQ server CPU per run, servers alternating round by round, each pinned
# to CPU ${SERVER_CPU:-0} with the client on ${CLIENT_CPU:-1}: prints, per
# round, the CPU ticks (1/CLK_TCK s, utime+stime from /proc/PID/stat) each
# server spent on JOBS jobs (tests/node/bench_bullmq.mjs, 4 queues,
# concurrency 16, default `bull` prefix). docs/PERFORMANCE.md, "Worker threads".
#
#   benches/apps/bullmq_rounds.sh [ROUNDS] [JOBS]          (default 4 10000)
#
# Servers: moonshard `--shards 2 --keyspace-mode standalone` with its default
# workers, the same with `--io-threads 2`, and redis-server. Needs
# target/release/moonshard and tests/node/node_modules.
set -euo pipefail
rounds=${1:-4}; jobs=${2:-10000}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${MOONSHARD:-$root/target/release/moonshard}
scpu=${SERVER_CPU:-0}; ccpu=${CLIENT_CPU:-1}
work=$(mktemp -d)
pid=
trap '[[ -n $pid ]] && kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
run() {  # run <name> <port> <command...>
  local name=$1 port=$2 before after; shift 2
  taskset -c "$scpu" "$@" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  (cd "$root/tests/node" && taskset -c "$ccpu" env PORT="$port" JOBS="$jobs" node bench_bullmq.mjs >/dev/null)
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  printf '%s=%s ' "$name" $((after - before))
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$pid" 2>/dev/null || true
  pid=
}
for r in $(seq "$rounds"); do
  printf 'round %s: ' "$r"
  run moonshard 7841 "$bin" --port 7841 --shards 2 --keyspace-mode standalone --save '' --dir "$work"
  run moonshard-2-workers 7842 "$bin" --port 7842 --shards 2 --io-threads 2 --keyspace-mode standalone --save '' --dir "$work"
  run redis-server 7843 redis-server --port 7843 --save '' --appendonly no --dir "$work"
  echo
done
