#!/usr/bin/env bash
# Many clients, moonshard against redis-server in the same run
# (docs/PERFORMANCE.md, "Many connections"):
# - 1,000 connections at -P 1: `redis-benchmark -c 1000 -P 1 -t get,set`;
# - connection churn: `redis-benchmark -c 50 -k 0 -t ping,get` (each request
#   on a new connection: connect, one command, close).
# Servers alone on CPU 0, redis-benchmark on CPU 1, alternating A B / B A over
# ROUNDS rounds. Per test: req/s, p99 (ms) and the server's CPU time per
# request (utime+stime, microseconds), each round, then median ratios.
#
#   benches/many_clients.sh [moonshard binary]
set -euo pipefail
ms=${1:-target/release/moonshard}
rounds=${ROUNDS:-3}
port=${PORT:-7792}
ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
source "$(dirname "$0")/side_by_side.sh"
bench() {  # bench <n> <redis-benchmark args...>: one "test,rps,p99,cpu_us" line per test
  local n=$1 c0 c1; shift
  c0=$(cpu)
  local out
  out=$(taskset -c 1 redis-benchmark -p "$port" -n "$n" --csv "$@" | tr -d '"' | grep -v '^test,')
  c1=$(cpu)
  # Tests run one after another: the CPU time is split by their request counts (equal).
  local tests
  tests=$(echo "$out" | wc -l)
  echo "$out" | awk -F, -v a="$c0" -v b="$c1" -v n="$n" -v t="$tests" -v hz="$(getconf CLK_TCK)" \
    '{printf "%s,%s,%s,%.2f\n", $1, $2, $7, (b - a) / hz * 1e6 / (n * t)}'
}
declare -A res
run_one() {
  local s=$1
  start "$s" --maxclients 5000
  while IFS=, read -r t rps p99 c; do res[$s,c1000_$t]+=" $rps,$p99,$c"; done < <(bench 200000 -c 1000 -P 1 -r 100000 -t set,get)
  while IFS=, read -r t rps p99 c; do res[$s,churn_$t]+=" $rps,$p99,$c"; done < <(bench 30000 -c 50 -k 0 -t ping_mbulk,get)
  stop
}
alternate_rounds "$rounds"
echo "| test | moonshard req/s,p99 ms,cpu-us/req | redis-server req/s,p99 ms,cpu-us/req | req/s ratio | p99 ratio | CPU/req ratio |"
echo "|---|---|---|---:|---:|---:|"
for key in $(printf '%s\n' "${!res[@]}" | grep '^moonshard,' | sed 's/^moonshard,//' | sort); do
  m=(${res[moonshard,$key]}); r=(${res[redis,$key]})
  ratio() {  # ratio <field>
    for i in "${!m[@]}"; do
      awk -v a="$(echo "${m[$i]}" | cut -d, -f"$1")" -v b="$(echo "${r[$i]}" | cut -d, -f"$1")" 'BEGIN {printf "%.3f\n", (b > 0 ? a / b : 0)}'
    done | median
  }
  echo "| $key | ${m[*]} | ${r[*]} | $(ratio 1) | $(ratio 2) | $(ratio 3) |"
done
