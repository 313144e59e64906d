#!/usr/bin/env bash
# Big values, moonshard against redis-server in the same run (docs/PERFORMANCE.md):
# SET/GET of 1 KB, 64 KB and 1 MB values and LRANGE 0 9999 of a 10,000-element
# list. Each server runs alone on CPU 0 (`taskset`), redis-benchmark on CPU 1;
# servers alternate A B / B A over ROUNDS rounds. Prints, per test, req/s and
# the server's CPU time per request (utime+stime from /proc/PID/stat over the
# run, microseconds; less sensitive than req/s to other load on the machine)
# per round, and the median ratios moonshard / redis-server.
#
#   benches/big_values.sh [moonshard binary]     # ROUNDS=3 CLIENTS=50 by default
set -euo pipefail
ms=${1:-target/release/moonshard}
rounds=${ROUNDS:-3}; clients=${CLIENTS:-50}
port=${PORT:-7791}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
source "$(dirname "$0")/side_by_side.sh"
bench() {  # bench <n> <redis-benchmark args...>: prints req/s,cpu-us-per-request
  local n=$1 c0 c1 rps; shift
  c0=$(cpu)
  rps=$(taskset -c 1 redis-benchmark -p "$port" -c "$clients" -q -n "$n" "$@" | tr '\r' '\n' | awk '/requests per second/ {for (i = 1; i <= NF; i++) if ($i == "requests") v = $(i - 1)} END {print v}')
  c1=$(cpu)
  awk -v r="$rps" -v a="$c0" -v b="$c1" -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%s,%.2f\n", r, (b - a) / hz * 1e6 / n}'
}
fill_list() {
  local args=()
  for i in $(seq 1 10000); do args+=("element-$i"); done
  printf '%s\n' "${args[@]}" | xargs -n 1000 redis-cli -p "$port" rpush biglist >/dev/null
}
declare -A res
tests=(set1k get1k set64k get64k set1m get1m lrange10k)
run_one() {  # run_one <server>
  local s=$1
  start "$s"
  res[$s,set1k]+=" $(bench 200000 -t set -d 1024)"
  res[$s,get1k]+=" $(bench 200000 -t get -d 1024)"
  redis-cli -p "$port" flushall >/dev/null
  res[$s,set64k]+=" $(bench 50000 -t set -d 65536)"
  res[$s,get64k]+=" $(bench 50000 -t get -d 65536)"
  redis-cli -p "$port" flushall >/dev/null
  res[$s,set1m]+=" $(bench 4000 -t set -d 1048576)"
  res[$s,get1m]+=" $(bench 4000 -t get -d 1048576)"
  redis-cli -p "$port" flushall >/dev/null
  fill_list
  res[$s,lrange10k]+=" $(bench 4000 lrange biglist 0 9999)"
  stop
}
alternate_rounds "$rounds"
echo "| test | moonshard req/s,cpu-us/req (rounds) | redis-server req/s,cpu-us/req (rounds) | req/s ratio | CPU/req ratio |"
echo "|---|---|---|---:|---:|"
for t in "${tests[@]}"; do
  m=(${res[moonshard,$t]}); r=(${res[redis,$t]})
  rr=$(for i in "${!m[@]}"; do awk -v a="${m[$i]%,*}" -v b="${r[$i]%,*}" 'BEGIN {printf "%.3f\n", a / b}'; done | median)
  cr=$(for i in "${!m[@]}"; do awk -v a="${m[$i]#*,}" -v b="${r[$i]#*,}" 'BEGIN {printf "%.3f\n", a / b}'; done | median)
  echo "| $t | ${m[*]} | ${r[*]} | $rr | $cr |"
done
