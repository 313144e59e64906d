#!/usr/bin/env bash
# The cost of ACL checks on the plain path (ACL issue, performance point):
# instructions per request under callgrind, one shard, -P 16, the load run as
# the default user (allowed everything) and as a user with key patterns
# (`~key:* ~{s}* +@all`, so every key of every command is matched).
#
#   benches/acl_cost.sh <moonshard binary> [N] [test...]   (default: 20000 get set evalsha)
#
# Two figures per run: `total` is the whole process's instructions per request
# (it also moves by +-100 with how requests happen to be batched per read,
# which differs from run to run); `acl` is the instructions executed in
# src/acl/ plus the request path's check in dispatch.rs (callgrind's
# per-source-line counts), i.e. what the check itself costs.
set -euo pipefail
bin=$1; n=${2:-20000}; shift 2 || true
tests=("$@"); [[ ${#tests[@]} -gt 0 ]] || tests=(get set evalsha)
port=${PORT:-7795}
# The seed script (EVALSHA tests): benches/seed.lua.
seed=$(cat "$(dirname "$0")/seed.lua")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for test in "${tests[@]}"; do
  for mode in default patterns; do
    out=$work/$test-$mode.cg
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "$bin" --port "$port" --shards 1 \
      --save '' --dir "$work" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
    args=()
    if [[ $mode == patterns ]]; then
      redis-cli -p "$port" acl setuser bench on '>pw' '~key:*' '~{s}*' '+@all' >/dev/null
      args=(--user bench -a pw)
    fi
    if [[ $test == evalsha ]]; then
      sha=$(redis-cli -p "$port" script load "$seed")
      args+=(evalsha "$sha" 2 '{s}list' '{s}sum' 2 1 2)
    else
      args+=(-t "$test")
    fi
    # Warm up (lazily built tables, the first allocations) outside the count.
    redis-benchmark -p "$port" -c 1 -n 1000 -P 16 -r 100000 -q "${args[@]}" >/dev/null 2>&1
    callgrind_control -i on "$pid" >/dev/null 2>&1
    redis-benchmark -p "$port" -c 1 -n "$n" -P 16 -r 100000 -q "${args[@]}" >/dev/null 2>&1
    callgrind_control -i off "$pid" >/dev/null 2>&1
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    wait "$pid" 2>/dev/null || true
    callgrind_annotate --auto=yes "$out" 2>/dev/null | awk -v n="$n" -v m="$mode" -v t="$test" '
      /^-- Auto-annotated source:/ { src = $4 }
      /^ *[0-9][0-9,]* \(/ && !/=>/ {
        c = $1; gsub(",", "", c)
        if (src ~ /src\/acl\// || (src ~ /dispatch\.rs/ && /quick_allows/)) acl += c
      }
      /PROGRAM TOTALS/ { tot = $1; gsub(",", "", tot) }
      END { printf "%-8s %-9s total=%.0f acl=%.0f\n", t, m, tot / n, acl / n }'
  done
done
