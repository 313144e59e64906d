#!/bin/bash
# Resharding time: a 3-master cluster of moonshard and one of redis-server
# 7.0, each filled with KEYS keys per master (strings of 16 bytes, keys
# "k:N" sent to their slot's owner with redis-cli --pipe), then every slot
# of the first master moved to the second with
#   redis-cli --cluster reshard ... --cluster-slots 5461 --cluster-yes
# (MIGRATE in batches of 10 keys, redis-cli's default). Prints the seconds
# each reshard took and the keys moved.
#
# Usage: benches/cluster_reshard.sh target/release/moonshard [KEYS=100000] [SHARDS=2]
set -euo pipefail
BIN=${1:?moonshard binary}
KEYS=${2:-100000}
SHARDS=${3:-2}
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # kind dir: starts a node, its port in $PORT
  local kind=$1 dir=$2 p c
  p=$(port); c=$(port); mkdir -p "$dir"
  if [ "$kind" = moonshard ]; then
    "$BIN" --port "$p" --cluster-enabled yes --cluster-port "$c" --shards "$SHARDS" --dir "$dir" --save "" \
      >"$dir/log" 2>&1 &
  else
    (cd "$dir" && exec redis-server --port "$p" --cluster-enabled yes --cluster-port "$c" --save "" \
      --appendonly no >"$dir/log" 2>&1) &
  fi
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  PORT=$p
}

fill() { # p1 p2 p3: every key to its slot's owner (create gives 0-5460, 5461-10922, 10923-16383)
  python3 - "$KEYS" "$@" <<'PY'
import sys, subprocess
n = int(sys.argv[1]); ports = sys.argv[2:]
def crc16(b):
    c = 0
    for x in b:
        c ^= x << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) & 0xffff if c & 0x8000 else (c << 1) & 0xffff
    return c
owners = {}
for p in ports:
    out = subprocess.run(["redis-cli", "-p", p, "cluster", "nodes"], capture_output=True, text=True).stdout
    me = [l for l in out.splitlines() if "myself" in l][0].split()
    for r in me[8:]:
        a, _, b = r.partition("-")
        owners[(int(a), int(b or a))] = p
bufs = {p: [] for p in ports}
i = 0; per = {p: 0 for p in ports}
while min(per.values()) < n:
    k = f"k:{i}".encode(); s = crc16(k) % 16384; i += 1
    p = next(p for (a, b), p in owners.items() if a <= s <= b)
    if per[p] >= n: continue
    per[p] += 1
    bufs[p].append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$16\r\n%016d\r\n" % (len(k), k, i))
for p in ports:
    subprocess.run(["redis-cli", "-p", p, "--pipe"], input=b"".join(bufs[p]), capture_output=True, check=True)
PY
}

for kind in moonshard redis; do
  ps=()
  for i in 1 2 3; do start $kind "$WORK/$kind$i"; ps+=("$PORT"); done
  redis-cli --cluster create "127.0.0.1:${ps[0]}" "127.0.0.1:${ps[1]}" "127.0.0.1:${ps[2]}" --cluster-yes >/dev/null
  for _ in $(seq 100); do
    redis-cli -p "${ps[0]}" cluster info | grep -q cluster_state:ok && break; sleep 0.2
  done
  sleep 1
  fill "${ps[@]}"
  from=$(redis-cli -p "${ps[0]}" cluster myid); to=$(redis-cli -p "${ps[1]}" cluster myid)
  before=$(redis-cli -p "${ps[0]}" dbsize)
  t0=$(date +%s.%N)
  redis-cli --cluster reshard "127.0.0.1:${ps[0]}" --cluster-from "$from" --cluster-to "$to" \
    --cluster-slots 5461 --cluster-yes >"$WORK/$kind.reshard.log" 2>&1
  t1=$(date +%s.%N)
  after=$(redis-cli -p "${ps[1]}" dbsize)
  left=$(redis-cli -p "${ps[0]}" dbsize)
  errors=$(grep -c -i "err" "$WORK/$kind.reshard.log" || true)
  printf '%-9s moved %s keys (%s left, target now %s) in %.2f s, %s error lines\n' \
    "$kind" "$before" "$left" "$after" "$(echo "$t1 - $t0" | bc)" "$errors"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  PIDS=()
  sleep 0.5
done
