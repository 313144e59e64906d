#!/usr/bin/env bash
# Real-application workloads, moonshard vs redis-server side by side, with
# the server's CPU time per operation (issue: performance round two, point 2;
# issue: standalone keyspace mode, BullMQ with its default prefix).
#
#   benches/apps/run.sh [PERCENT]    (scales the op counts; default 100)
#
# Each server runs pinned to CPU ${SERVER_CPU:-0}; clients run on the other
# CPUs. For each workload the line gives client-side throughput and the
# server's utime+stime over the run divided by the operations (µs/op), read
# from /proc/PID/stat. Workloads:
#   bullmq     20k jobs (tests/node/bench_bullmq.mjs), 4 queues, worker concurrency 16, prefix `bull`
#              (moonshard: --keyspace-mode standalone, as a standalone app needs)
#   seed       the seed script by EVALSHA, 200 clients, -P 1 (loadtest -w seed)
#   lock       redis-py Lock acquire+release (one op = both), 4 threads
#   ratelimit  redis-py Script: a sliding-window limiter, 4 threads
#   zipf       GET/SET 9:1, 80% of requests on ~1% of keys (loadtest --zipf 1.15)
# MOONSHARD_ARGS: extra moonshard flags (e.g. "--io-threads 1"); ONLY: the
# workloads to run, space-separated (default all).
# Needs target/release/{moonshard,loadtest}, node + tests/node/node_modules,
# and target/pyvenv (created by the test suite) for redis-py.
set -euo pipefail
scale=${1:-100}
root=$(cd "$(dirname "$0")/../.." && pwd)
moonshard=${MOONSHARD:-$root/target/release/moonshard}
loadtest=${LOADTEST:-$root/target/release/loadtest}
py=${PYTHON:-$root/target/pyvenv/bin/python}
cpu=${SERVER_CPU:-0}
shards=${SHARDS:-1}
read -r -a extra_args <<<"${MOONSHARD_ARGS:-}"
only=${ONLY:-bullmq seed lock ratelimit zipf}
clients_cpus=$(python3 -c "import os; c=sorted(os.sched_getaffinity(0)); print(','.join(str(x) for x in c if x != $cpu) or str(c[0]))")
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

start_server() {  # start_server <name> <port>: sets $pid
  local name=$1 port=$2
  mkdir -p "$work/$name"
  if [[ $name == moonshard* ]]; then
    taskset -c "$cpu" "$moonshard" --port "$port" --save "" --dir "$work/$name" --shards "$shards" \
      --keyspace-mode standalone "${extra_args[@]}" >/dev/null 2>&1 &
  else
    taskset -c "$cpu" redis-server --port "$port" --save "" --appendonly no --dir "$work/$name" \
      >/dev/null 2>&1 &
  fi
  pid=$!
  pids+=("$pid")
  for _ in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
}

measure() {  # measure <server> <pid> <port> <workload> <ops> <command...>
  local server=$1 pid=$2 port=$3 workload=$4 ops=$5; shift 5
  [[ " $only " == *" $workload "* ]] || return 0
  redis-cli -p "$port" flushall >/dev/null
  local before after out
  before=$(ticks "$pid")
  out=$(taskset -c "$clients_cpus" "$@" 2>&1 | tail -n 3 | tr '\n' ' ')
  after=$(ticks "$pid")
  local us
  us=$(python3 -c "print(f'{($after - $before) * 1e6 / $hz / $ops:.1f}')")
  printf '%-10s %-9s cpu_us_per_op=%-6s %s\n' "$server" "$workload" "$us" "$out"
}

n_jobs=$((20000 * scale / 100)); n_seed=$((200000 * scale / 100)); n_py=$((20000 * scale / 100)); n_zipf=$((1000000 * scale / 100))
for server in redis moonshard; do
  port=$((7480 + RANDOM % 400))
  start_server "$server" "$port"
  (cd "$root/tests/node" && measure "$server" "$pid" "$port" bullmq "$n_jobs" \
    env PORT="$port" JOBS="$n_jobs" node "$root/tests/node/bench_bullmq.mjs")
  measure "$server" "$pid" "$port" seed "$n_seed" \
    "$loadtest" -p "$port" -w seed -c 200 -P 1 -n "$n_seed" -q
  measure "$server" "$pid" "$port" lock "$n_py" "$py" "$root/benches/apps/pylib_ops.py" "$port" lock "$n_py" 4
  measure "$server" "$pid" "$port" ratelimit "$n_py" \
    "$py" "$root/benches/apps/pylib_ops.py" "$port" ratelimit "$n_py" 4
  measure "$server" "$pid" "$port" zipf "$n_zipf" \
    "$loadtest" -p "$port" -c 50 -P 1 -n "$n_zipf" --zipf 1.15 --get-ratio 0.9 -r 100000 -q
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
