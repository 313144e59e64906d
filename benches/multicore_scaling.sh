#!/usr/bin/env bash
# Multi-core scaling series (issue 18, point 5), one prepared run for a large
# host: moonshard on 1, 2, 4, 8 server CPUs (`--shards N --io-threads N`,
# pinned to the first N of SERVER_CPUS) against redis-server 7.0 on all of
# SERVER_CPUS, single-threaded and with `io-threads 4` +
# `io-threads-do-reads yes`, the load generator (`loadtest`) pinned to
# CLIENT_CPUS. Workloads: GET and SET at -P 16 and -P 1 on uniform keys, a
# GET/SET 9:1 mix on zipf-skewed keys (exponent 0.99), and EVALSHA of the
# seed script (with loadtest's atomicity check at the end).
#
#   benches/multicore_scaling.sh [OUT_DIR]
#
# Environment: SERVER_CPUS (default 0-7), CLIENT_CPUS (default 8-15), COUNTS
# (default "1 2 4 8"), SECONDS_PER_POINT (default 10), CONNS (default 256),
# MOONSHARD (default target/release/moonshard), LOADTEST (default
# target/release/loadtest). Build both first: `cargo build --release`.
# Output: OUT_DIR/raw.txt (every loadtest table), OUT_DIR/results.csv
# (server,cpus,workload,req_per_s,p99_ms,errors) and OUT_DIR/scaling.svg.
# Every run is bounded: SECONDS_PER_POINT per point, 8 points per server
# configuration.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/target/multicore-scaling}
server_cpus=${SERVER_CPUS:-0-7}
client_cpus=${CLIENT_CPUS:-8-15}
counts=${COUNTS:-1 2 4 8}
secs=${SECONDS_PER_POINT:-10}
conns=${CONNS:-256}
moonshard=${MOONSHARD:-$root/target/release/moonshard}
loadtest=${LOADTEST:-$root/target/release/loadtest}
port=${PORT:-7480}
mkdir -p "$out"
work=$(mktemp -d)
cleanup() {
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The CPUs of a list such as 0-7 or 0,2,4 one per line.
expand() {
  tr ',' '\n' <<<"$1" | while IFS=- read -r a b; do seq "$a" "${b:-$a}"; done
}
first_n() {  # first_n <list> <n>: the first n CPUs of the list, comma-separated
  expand "$1" | head -n "$2" | paste -sd, -
}
client_threads=$(expand "$client_cpus" | wc -l)

start() {  # start <cpus> <binary> <args...>
  local cpus=$1; shift
  local dir="$work/data"
  rm -rf "$dir"; mkdir -p "$dir"
  taskset -c "$cpus" "$@" --port "$port" --dir "$dir" --save '' --appendonly no >"$work/server.log" 2>&1 &
  for _ in $(seq 200); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  echo "server did not start: $*" >&2
  cat "$work/server.log" >&2
  exit 1
}
stop() {
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 || return 0; sleep 0.05; done
}

point() {  # point <server label> <cpus> <workload label> <loadtest args...>
  local label=$1 cpus=$2 wl=$3; shift 3
  local json="$work/point.json"
  echo "## $label on $cpus CPU(s): $wl" >>"$out/raw.txt"
  taskset -c "$client_cpus" "$loadtest" -p "$port" -c "$conns" --threads "$client_threads" \
    --duration "$secs" -q --json "$json" "$@" >>"$out/raw.txt" 2>&1 || true
  local rps p99 errors
  rps=$(grep -o '"requests_per_sec": [0-9.]*' "$json" | awk '{print $2}')
  p99=$(grep -o '"p99": [0-9.]*' "$json" | awk '{print $2}')
  errors=$(grep -o '"errors": [0-9]*' "$json" | awk '{print $2}')
  echo "$label,$cpus,$wl,${rps:-0},${p99:-0},${errors:-0}" >>"$out/results.csv"
  printf '%-28s %2s CPU(s) %-22s %12s req/s  p99 %s ms  errors %s\n' "$label" "$cpus" "$wl" "${rps:-0}" "${p99:-0}" "${errors:-0}"
}

series() {  # series <server label> <cpu count>: every workload against the running server
  local label=$1 n=$2
  point "$label" "$n" "GET -P16" -w get -P 16 -r 1000000
  point "$label" "$n" "SET -P16" -w set -P 16 -r 1000000
  point "$label" "$n" "GET -P1" -w get -P 1 -r 1000000
  point "$label" "$n" "SET -P1" -w set -P 1 -r 1000000
  point "$label" "$n" "zipf0.99 GET:SET 9:1 -P16" -w getset --get-ratio 0.9 --zipf 0.99 -P 16 -r 1000000
  point "$label" "$n" "zipf0.99 GET:SET 9:1 -P1" -w getset --get-ratio 0.9 --zipf 0.99 -P 1 -r 1000000
  point "$label" "$n" "EVALSHA seed -P16" -w seed -P 16 --flush
  point "$label" "$n" "EVALSHA seed -P1" -w seed -P 1 --flush
}

: >"$out/raw.txt"
echo "server,cpus,workload,req_per_s,p99_ms,errors" >"$out/results.csv"
{
  echo "# multicore_scaling.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "host: $(nproc) CPUs; server CPUs $server_cpus, client CPUs $client_cpus ($client_threads loadtest threads, $conns connections), $secs s per point"
  echo "moonshard: $("$moonshard" --version 2>/dev/null | head -1 || echo "$moonshard")"
  echo "redis-server: $(redis-server --version)"
  echo
} | tee -a "$out/raw.txt"

for n in $counts; do
  cpus=$(first_n "$server_cpus" "$n")
  start "$cpus" "$moonshard" --shards "$n" --io-threads "$n"
  series moonshard "$n"
  stop
done
all=$(expand "$server_cpus" | wc -l)
start "$server_cpus" redis-server
series "redis-server" "$all"
stop
start "$server_cpus" redis-server --io-threads 4 --io-threads-do-reads yes
series "redis-server io-threads 4" "$all"
stop

# Ratios: moonshard at each count over its own 1-CPU figure and over
# redis-server's best configuration, per workload.
awk -F, 'NR > 1 {
    key = $3
    if ($1 == "moonshard") { ms[key, $2] = $4; if ($2 == 1) one[key] = $4; counts[$2] = 1 }
    else if ($4 > best[key]) best[key] = $4
    wl[key] = 1
  }
  END {
    print ""
    print "| workload | CPUs | moonshard req/s | x own 1-CPU | x redis-server best |"
    print "|---|---:|---:|---:|---:|"
    for (k in wl) for (c in counts) if ((k, c) in ms)
      printf "| %s | %s | %.0f | %.2f | %.2f |\n", k, c, ms[k, c], (one[k] ? ms[k, c] / one[k] : 0), (best[k] ? ms[k, c] / best[k] : 0)
  }' "$out/results.csv" | tee "$out/ratios.md"

# A chart: moonshard req/s per workload against CPU count (log scale), and
# redis-server's best as a dashed line per workload.
awk -F, -v counts="$counts" 'BEGIN { n = split(counts, cs, " "); W = 900; H = 520; L = 70; B = 60 }
  NR > 1 {
    key = $3; wl[key] = 1
    if ($1 == "moonshard") ms[key, $2] = $4; else if ($4 > best[key]) best[key] = $4
    if ($4 > max) max = $4
  }
  END {
    if (max <= 0) max = 1
    top = log(max * 1.5) / log(10); bot = top - 3
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W + 260, H
    printf "<text x=\"%d\" y=\"20\" font-size=\"14\">moonshard req/s by server CPUs (solid) and redis-server best (dashed)</text>\n", L
    for (e = int(bot) + 1; e <= top; e++) {
      y = H - B - (e - bot) / (top - bot) * (H - B - 40)
      printf "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"5\" y=\"%.1f\">1e%d</text>\n", L, W, y, y, y + 4, e
    }
    for (i = 1; i <= n; i++) {
      x = L + (i - 1) / (n > 1 ? n - 1 : 1) * (W - L - 20)
      printf "<text x=\"%.1f\" y=\"%d\">%s</text>\n", x - 4, H - B + 20, cs[i]
    }
    split("#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f", pal, " ")
    j = 0
    for (k in wl) {
      j++; col = pal[(j - 1) % 8 + 1]; path = ""
      for (i = 1; i <= n; i++) if ((k, cs[i]) in ms && ms[k, cs[i]] > 0) {
        x = L + (i - 1) / (n > 1 ? n - 1 : 1) * (W - L - 20)
        y = H - B - (log(ms[k, cs[i]]) / log(10) - bot) / (top - bot) * (H - B - 40)
        path = path (path == "" ? "M" : " L") sprintf("%.1f %.1f", x, y)
      }
      if (path != "") printf "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n", path, col
      if (best[k] > 0) {
        y = H - B - (log(best[k]) / log(10) - bot) / (top - bot) * (H - B - 40)
        printf "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-dasharray=\"5,4\"/>\n", L, W - 20, y, y, col
      }
      printf "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text>\n", W + 10, 40 + j * 20, col, W + 28, 50 + j * 20, k
    }
    print "</svg>"
  }' "$out/results.csv" >"$out/scaling.svg"
echo
echo "written: $out/raw.txt, $out/results.csv, $out/ratios.md, $out/scaling.svg"
