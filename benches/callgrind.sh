#!/usr/bin/env bash
# Instructions per request of one server under callgrind (docs/PERFORMANCE.md):
# Ir/request = (Ir(N_BIG) - Ir(N_SMALL)) / (N_BIG - N_SMALL), one client, -r 100000.
#
#   benches/callgrind.sh <server binary> <pipeline> <test>...   e.g.
#   benches/callgrind.sh target/release/moonshard 16 set get incr lpush evalsha
#   benches/callgrind.sh redis-server 16 set get
#
# `evalsha` runs the seed script (`evalsha <sha> 2 {s}list {s}sum 2 1 2`), or the
# script in file $SCRIPT with the same keys and arguments,
# `xadd` runs `xadd mystream * myfield myvalue`.
# `del` deletes random keys of a keyspace filled by SETs first (not measured).
# `custom` runs the command line in $CMD (`CMD='setbit bm:__rand_int__ 1000 1'`),
# after the shell line in $PRELOAD if set (not measured; the server's port is
# $port), and prints its row as $LABEL.
# CLUSTER=1: moonshard runs with `cluster-enabled yes` as a one-node cluster
# serving every slot (redis-server the same).
# CLIENTS=N: N client connections (default 1; the performance issue's -P 1
# target is stated at -c 50, where a wake-up serves several connections).
# ACL_USER=1: the load runs as a user with key patterns (`~key:* ~{s}* +@all`)
# instead of the default user, to measure the cost of the ACL check.
set -euo pipefail
bin=$1; pipeline=$2; shift 2
port=${PORT:-7777}
small=${N_SMALL:-2000}; big=${N_BIG:-22000}
# The seed script (EVALSHA tests): benches/seed.lua.
seed=$(cat "${SCRIPT:-$(dirname "$0")/seed.lua}")
cluster_args=()
[[ -n ${CLUSTER:-} ]] && cluster_args=(--cluster-enabled yes --cluster-config-file nodes.conf)
count() {  # count <test> <n>: total Ir while running n requests
  local test=$1 n=$2 out pid
  out=$(mktemp -d)
  if [[ $bin == *redis-server* ]]; then
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/cg" "$bin" --port "$port" --save '' --appendonly no --dir "$out" "${cluster_args[@]}" >/dev/null 2>&1 &
  else
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/cg" "$bin" --port "$port" --shards 1 ${MOONSHARD_ARGS:-} --save '' --dir "$out" "${cluster_args[@]}" >/dev/null 2>&1 &
  fi
  pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
  if [[ -n ${CLUSTER:-} ]]; then
    redis-cli -p "$port" cluster addslotsrange 0 16383 >/dev/null
    for _ in $(seq 100); do redis-cli -p "$port" cluster info | grep -q cluster_state:ok && break; sleep 0.2; done
  fi
  local args=(-t "$test")
  if [[ -n ${ACL_USER:-} ]]; then
    redis-cli -p "$port" acl setuser bench on '>pw' '~key:*' '~{s}*' '+@all' >/dev/null
    args=(--user bench -a pw "${args[@]}")
  fi
  if [[ $test == evalsha ]]; then
    sha=$(redis-cli -p "$port" script load "$seed")
    args=("${args[@]:0:${#args[@]}-2}" evalsha "$sha" 2 '{s}list' '{s}sum' 2 1 2)
  elif [[ $test == del ]]; then  # redis-benchmark 7.0 has no del test
    redis-benchmark -p "$port" -n 100000 -r 100000 -P 16 -q -t set >/dev/null
    args=("${args[@]:0:${#args[@]}-2}" del 'key:__rand_int__')
  elif [[ $test == xadd ]]; then  # redis-benchmark 7.0 has no xadd test
    args=("${args[@]:0:${#args[@]}-2}" xadd mystream '*' myfield myvalue)
  elif [[ $test == custom ]]; then
    [[ -n ${PRELOAD:-} ]] && eval "$PRELOAD" >/dev/null
    local words
    read -ra words <<< "$CMD"
    args=("${args[@]:0:${#args[@]}-2}" "${words[@]}")
  fi
  callgrind_control -i on "$pid" >/dev/null 2>&1
  redis-benchmark -p "$port" -c "${CLIENTS:-1}" -n "$n" -P "$pipeline" -r 100000 -q "${args[@]}" >/dev/null
  callgrind_control -i off "$pid" >/dev/null 2>&1
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$pid" 2>/dev/null || true
  grep -E '^totals:' "$out/cg" | head -1 | awk '{print $2}'
  rm -rf "$out"
}
for test in "$@"; do
  a=$(count "$test" "$small"); b=$(count "$test" "$big")
  label=$test; [[ $test == custom ]] && label=${LABEL:-$CMD}
  echo "$label P$pipeline $(( (b - a) / (big - small) ))"
done
