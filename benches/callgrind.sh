#!/usr/bin/env bash
# Instructions per request of one server under callgrind (docs/PERFORMANCE.md):
# Ir/request = (Ir(N_BIG) - Ir(N_SMALL)) / (N_BIG - N_SMALL), one client, -r 100000.
#
#   benches/callgrind.sh <server binary> <pipeline> <test>...   e.g.
#   benches/callgrind.sh target/release/moonshard 16 set get incr lpush evalsha
#   benches/callgrind.sh redis-server 16 set get
#
# `evalsha` runs the seed script (`evalsha <sha> 2 {s}list {s}sum 2 1 2`).
set -euo pipefail
bin=$1; pipeline=$2; shift 2
port=${PORT:-7777}
small=${N_SMALL:-2000}; big=${N_BIG:-22000}
seed='local n = 0
for i = 1, #ARGV do
  redis.call("LPUSH", KEYS[1], ARGV[i])
  n = n + tonumber(ARGV[i])
end
redis.call("INCRBY", KEYS[2], n)
return n'
count() {  # count <test> <n>: total Ir while running n requests
  local test=$1 n=$2 out pid
  out=$(mktemp -d)
  if [[ $bin == *redis-server* ]]; then
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/cg" "$bin" --port "$port" --save '' --appendonly no >/dev/null 2>&1 &
  else
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/cg" "$bin" --port "$port" --shards 1 --save '' --dir "$out" >/dev/null 2>&1 &
  fi
  pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
  local args=(-t "$test")
  if [[ $test == evalsha ]]; then
    sha=$(redis-cli -p "$port" script load "$seed")
    args=(evalsha "$sha" 2 '{s}list' '{s}sum' 2 1 2)
  fi
  callgrind_control -i on "$pid" >/dev/null 2>&1
  redis-benchmark -p "$port" -c 1 -n "$n" -P "$pipeline" -r 100000 -q "${args[@]}" >/dev/null
  callgrind_control -i off "$pid" >/dev/null 2>&1
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$pid" 2>/dev/null || true
  grep -E '^totals:' "$out/cg" | head -1 | awk '{print $2}'
  rm -rf "$out"
}
for test in "$@"; do
  a=$(count "$test" "$small"); b=$(count "$test" "$big")
  echo "$test P$pipeline $(( (b - a) / (big - small) ))"
done
