#!/usr/bin/env bash
# Memory per idle connection, moonshard against redis-server in the same run
# (docs/PERFORMANCE.md, "Many connections"):
#
#   benches/connections.sh [N] [moonshard binary]    # default 10000, target/release/moonshard
#
# Each server starts fresh on CPU 0 (`taskset`); a Python client on CPU 1 opens
# N connections, sends PING on each and reads +PONG, then holds them all while
# the server's VmRSS (/proc/PID/status) is read. It reads RSS again after
# IDLE seconds (default 3: redis-server trims idle clients' buffers in its
# cron), then closes everything. Bounded: every step has a timeout.
set -euo pipefail
n=${1:-10000}
ms=${2:-target/release/moonshard}
idle=${IDLE:-3}
port=${PORT:-7790}
ulimit -n "$(ulimit -Hn)"
need=$((n + 64))
if (( $(ulimit -n) < need )); then echo "ulimit -n $(ulimit -n) < $need" >&2; exit 1; fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
client='
import socket, sys, time, os
n, port, idle = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"*1\r\n$4\r\nPING\r\n")
    if s.recv(64) != b"+PONG\r\n":
        sys.exit("bad reply on connection %d" % i)
    socks.append(s)
print("open", flush=True)
sys.stdin.readline()
time.sleep(idle)
print("idle", flush=True)
sys.stdin.readline()
for s in socks:
    s.close()
'
measure() {  # measure <name> <command...>
  local name=$1; shift
  taskset -c 0 "$@" >"$dir/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  sleep 0.5
  local before after idle_rss
  before=$(rss "$pid")
  coproc CLIENT { timeout 300 taskset -c 1 python3 -c "$client" "$n" "$port" "$idle"; }
  read -r -t 120 line <&"${CLIENT[0]}"; [[ $line == open ]] || { echo "client failed" >&2; kill "$pid"; exit 1; }
  after=$(rss "$pid")
  local clients
  clients=$(redis-cli -p "$port" info clients | awk -F: '/^connected_clients/ {print $2}' | tr -d '\r')
  echo >&"${CLIENT[1]}"
  read -r -t 120 line <&"${CLIENT[0]}"
  idle_rss=$(rss "$pid")
  echo >&"${CLIENT[1]}"
  wait "$CLIENT_PID" 2>/dev/null || true
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$pid"
  wait "$pid" 2>/dev/null || true
  awk -v name="$name" -v b="$before" -v a="$after" -v i="$idle_rss" -v n="$n" -v c="$clients" 'BEGIN {
    printf "%-12s connected=%s rss_before_kb=%d rss_open_kb=%d rss_idle_kb=%d bytes_per_conn_open=%.0f bytes_per_conn_idle=%.0f\n",
      name, c, b, a, i, (a - b) * 1024 / n, (i - b) * 1024 / n }'
}
measure moonshard "$ms" --port "$port" --shards 1 --save '' --dir "$dir" --maxclients $((n + 100))
measure redis-server redis-server --port "$port" --save '' --appendonly no --maxclients $((n + 100))
