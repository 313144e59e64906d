#!/usr/bin/env bash
# SET -P 16 throughput with the append-only file on, moonshard vs redis-server
# side by side (servers pinned to ${SERVER_CPUS:-0}, redis-benchmark to
# ${CLIENT_CPUS:-1}, moonshard with one shard: a per-core comparison), and the
# time each takes to load the same RDB file of KEYS keys at start-up.
#
#   benches/persistence_throughput.sh [REQUESTS] [KEYS]
set -euo pipefail
n=${1:-2000000}
keys=${2:-1000000}
scpu=${SERVER_CPUS:-0}
ccpu=${CLIENT_CPUS:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
moonshard=${MOONSHARD:-$root/target/release/moonshard}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=7395

start() {  # start <dir> <binary> <args...>
  local dir=$1; shift
  mkdir -p "$dir"
  taskset -c "$scpu" "$@" --port $port --dir "$dir" --save '' --enable-debug-command yes >"$dir/log" 2>&1 &
  for _ in $(seq 200); do redis-cli -p $port ping 2>/dev/null | grep -q PONG && return; sleep 0.05; done
}
stop() { redis-cli -p $port shutdown nosave >/dev/null 2>&1 || true; sleep 0.3; }

setrate() {  # setrate <name> <binary> <args...>
  local name=$1; shift
  local dir="$work/$name"
  start "$dir" "$@"
  local rps
  rps=$(taskset -c "$ccpu" redis-benchmark -p $port -t set -P 16 -c 50 -n "$n" -r 100000 -q 2>/dev/null \
    | tr '\r' '\n' | awk '/^SET:/ {print $2}' | tail -1)
  stop
  echo "$rps"
}

echo "SET -P 16 -c 50 -n $n, requests/s (servers on CPU $scpu, client on CPU $ccpu)"
for round in 1 2; do
  r_sec=$(setrate "r-sec-$round" redis-server --appendonly yes --appendfsync everysec)
  m_sec=$(setrate "m-sec-$round" "$moonshard" --shards 1 --appendonly yes --appendfsync everysec)
  m_off=$(setrate "m-off-$round" "$moonshard" --shards 1 --appendonly no)
  r_alw=$(setrate "r-alw-$round" redis-server --appendonly yes --appendfsync always)
  m_alw=$(setrate "m-alw-$round" "$moonshard" --shards 1 --appendonly yes --appendfsync always)
  echo "round $round: everysec redis $r_sec moonshard $m_sec (x$(echo "scale=2; $m_sec / $r_sec" | bc)), moonshard without AOF $m_off (everysec/off x$(echo "scale=2; $m_sec / $m_off" | bc)); always redis $r_alw moonshard $m_alw (x$(echo "scale=2; $m_alw / $r_alw" | bc))"
done

echo
echo "Loading a $keys-key RDB (DEBUG POPULATE, 100-byte values) at start-up:"
start "$work/gen" redis-server
redis-cli -p $port debug populate "$keys" key 100 >/dev/null
redis-cli -p $port save >/dev/null
stop
for who in redis-server moonshard; do
  dir="$work/load-$who"; mkdir -p "$dir"; cp "$work/gen/dump.rdb" "$dir/"
  bin=redis-server; [ "$who" = moonshard ] && bin=$moonshard
  t0=$(date +%s%N)
  start "$dir" "$bin"
  until [ "$(redis-cli -p $port info persistence | tr -d '\r' | awk -F: '$1=="loading" {print $2}')" = "0" ]; do sleep 0.01; done
  t1=$(date +%s%N)
  echo "$who: $(( (t1 - t0) / 1000000 )) ms to serve, $(redis-cli -p $port dbsize) keys"
  stop
done
