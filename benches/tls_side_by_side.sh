#!/usr/bin/env bash
# TLS throughput and server CPU per request, moonshard vs redis-server (ACL/TLS issue, performance):
# each server alone on CPU 0 (plain port for control, TLS port for the load), redis-benchmark
# --tls on CPU 1, an EC P-256 certificate made here, no client certificates.
#
#   benches/tls_side_by_side.sh [rounds] [n_p1] [n_p16]   (default 3 100000 1000000)
#
# Per test: median requests/s of each server and their ratio, plus the servers'
# CPU microseconds per request (utime+stime from /proc): at -P 1 one redis-benchmark process on one
# CPU is the bottleneck for both servers, so CPU per request is the server-side figure there.
set -euo pipefail
rounds=${1:-3}; n1=${2:-100000}; n16=${3:-1000000}
root=$(cd "$(dirname "$0")/.." && pwd)
ms=${MOONSHARD:-$root/target/release/moonshard}
port=${PORT:-7610}; tport=$((port + 1))
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
# shellcheck source=benches/side_by_side.sh
source "$root/benches/side_by_side.sh"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1
tls=(--tls-port "$tport" --tls-cert-file "$dir/cert.pem" --tls-key-file "$dir/key.pem"
     --tls-ca-cert-file "$dir/cert.pem" --tls-auth-clients no)
results=$dir/results
run_one() {  # run_one <server>: one line per test to $results
  local which=$1 test p n before after rps
  start "$which" "${tls[@]}"
  for p in 1 16; do
    n=$n1; [[ $p == 16 ]] && n=$n16
    for test in set get; do
      before=$(cpu)
      rps=$(taskset -c 1 redis-benchmark -h 127.0.0.1 -p "$tport" --tls --cacert "$dir/cert.pem" -t "$test" \
        -P "$p" -c 50 -n "$n" -r 100000 -q 2>/dev/null | tr '\r' '\n' | awk '/requests per second/ {print $2}' | tail -1)
      after=$(cpu)
      echo "$which ${test^^}_P$p $rps $(awk -v a="$after" -v b="$before" -v n="$n" -v hz="$(getconf CLK_TCK)" \
        'BEGIN {printf "%.2f", (a - b) * 1e6 / hz / n}')" >> "$results"
    done
  done
  stop
}
alternate_rounds "$rounds"
echo "| test | redis-server req/s | moonshard req/s | ratio | redis-server CPU µs/req | moonshard CPU µs/req | CPU ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for t in SET_P1 GET_P1 SET_P16 GET_P16; do
  r=$(awk -v t="$t" '$1 == "redis" && $2 == t {print $3}' "$results" | median)
  m=$(awk -v t="$t" '$1 == "moonshard" && $2 == t {print $3}' "$results" | median)
  rc=$(awk -v t="$t" '$1 == "redis" && $2 == t {print $4}' "$results" | median)
  mc=$(awk -v t="$t" '$1 == "moonshard" && $2 == t {print $4}' "$results" | median)
  echo "| ${t/_P/ -P } | $r | $m | $(awk -v a="$m" -v b="$r" 'BEGIN {printf "%.2f", a / b}') | $rc | $mc | $(awk -v a="$mc" -v b="$rc" 'BEGIN {printf "%.2f", a / b}') |"
done
