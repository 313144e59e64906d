#!/usr/bin/env bash
# BGSAVE under load, moonshard vs redis-server side by side (issue: durability).
#
#   benches/snapshot_under_load.sh [KEYS] [SECONDS]
#
# For each server: DEBUG POPULATE KEYS keys with 100-byte values, then a
# 50-client GET/SET load (loadtest, half of it overwriting values) runs twice:
# once without a save (baseline) and once with a BGSAVE started 2 s in. It
# reports the save time, the peak extra memory during the save (the server's
# RSS plus the private pages of any child it forks, so a fork's shared pages
# count once), and the load's p99.9 / max latency with and without the save.
# Servers run on CPUs ${SERVER_CPUS:-0,1}, the load generator anywhere.
# Needs target/release/moonshard and target/release/loadtest (cargo build --release --workspace).
set -euo pipefail
keys=${1:-3000000}
secs=${2:-12}
cpus=${SERVER_CPUS:-0,1}
root=$(cd "$(dirname "$0")/.." && pwd)
moonshard=${MOONSHARD:-$root/target/release/moonshard}
loadtest=${LOADTEST:-$root/target/release/loadtest}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mem_kb() {  # the server's RSS plus the private pages of any child it forked, in kB
  # (VmRSS needs no page-table walk, so sampling does not slow the server; a
  # fork's shared pages are the parent's, its private ones are the copies)
  local total p v
  total=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
  for p in $(pgrep -P "$1" || true); do
    v=$(awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s + 0}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "${total:-0}"
}

field() { redis-cli -p "$1" info persistence | tr -d '\r' | awk -F: -v k="$2" '$1 == k {print $2}'; }

measure() {  # measure <name> <command...>
  local name=$1; shift
  local port=7390 dir="$work/$name"
  mkdir -p "$dir"
  taskset -c "$cpus" "$@" --port $port --dir "$dir" --save '' --appendonly no --enable-debug-command yes \
    >"$dir/log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p $port debug populate "$keys" key 100 >/dev/null
  local load=("$loadtest" -p $port -c 50 -w getset -r "$keys" -d 100 --duration "$secs" -n 100000000 -q --slow 5)
  "${load[@]}" --json "$dir/base.json" >/dev/null
  local before peak=0 now
  before=$(mem_kb $pid)
  "${load[@]}" --json "$dir/save.json" >/dev/null &
  local lpid=$!
  sleep 2
  local t0 t1
  t0=$(date +%s%N)
  redis-cli -p $port bgsave >/dev/null
  while [ "$(field $port rdb_bgsave_in_progress)" != "0" ]; do
    now=$(mem_kb $pid); [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.02
  done
  t1=$(date +%s%N)
  wait $lpid
  local b s
  local py="import json,sys;r=json.load(open(sys.argv[1]));l=r['latency_ms'];print(l['p99_9'],l['max'],round(r['requests_per_sec']))"
  b=$(python3 -c "$py" "$dir/base.json")
  s=$(python3 -c "$py" "$dir/save.json")
  read -r bp bm br <<<"$b"; read -r sp sm sr <<<"$s"
  # The longest request that overlapped the save (from BGSAVE to its end) and
  # the longest of the same run outside it: requests of 5 ms or more are listed
  # with their start time (loadtest --slow).
  local split="import json,sys;r=json.load(open(sys.argv[1]));t0,t1=int(sys.argv[2]),int(sys.argv[3])
inside=[us for at,us in r['slow'] if at<=t1 and at+us/1000>=t0]
outside=[us for at,us in r['slow'] if not (at<=t1 and at+us/1000>=t0)]
f=lambda v:'%.1f'%(max(v)/1000) if v else '<5'
print(f(inside),f(outside),len(inside))"
  read -r sin sout nin <<<"$(python3 -c "$split" "$dir/save.json" $((t0 / 1000000)) $((t1 / 1000000)))"
  printf '| %s | %d | %d | %d | %.1f%% | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(( (t1 - t0) / 1000000 ))" \
    "$((before / 1024))" "$(( (peak - before) / 1024 ))" "$(echo "scale=3; 100 * ($peak - $before) / $before" | bc)" \
    "$bp" "$sp" "$bm" "$sm" "$sin" "$nin" "$sout" "$br" "$sr"
  redis-cli -p $port shutdown nosave >/dev/null 2>&1 || true
  wait $pid 2>/dev/null || true
  if [ -n "${KEEP_LOGS:-}" ]; then cp "$dir/log" "$KEEP_LOGS.$name.log"; fi
}

echo "keys=$keys value=100B load=50 clients getset ${secs}s, servers on CPUs $cpus ($(nproc) CPUs)"
echo
echo "| server | save ms | dataset RSS MiB | extra at peak MiB | extra/dataset | p99.9 ms base | p99.9 ms save | max ms base | max ms save run | max ms during save | requests ≥5 ms during save | max ms save run outside save | req/s base | req/s save |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
measure redis-server redis-server
measure moonshard "$moonshard"
