#!/usr/bin/env bash
# Instructions per request of the bitmap, HyperLogLog and geo rows of
# `loadtest compare` (the same command lines), moonshard against
# redis-server, under callgrind (benches/callgrind.sh, docs/PERFORMANCE.md):
# the deterministic view of per-core cost where wall-clock ratios at -P 1
# measure the load generator. Prints one line per row and server.
#
#   benches/families_callgrind.sh <moonshard binary> [pipeline]   # CLIENTS=50 for -c 50
set -euo pipefail
ms=${1:-target/release/moonshard}; pipeline=${2:-1}
here=$(dirname "$0")
grid='for i in $(seq 0 99); do a=(); for j in $(seq 0 99); do a+=(13.$(printf %03d $i) 38.$(printf %03d $j) p$i.$j); done; redis-cli -p $port geoadd {g}grid "${a[@]}"; done'
rows=(
  "SETBIT|setbit bitmap:__rand_int__ 1000 1|"
  "BITCOUNT|bitcount bitmap:__rand_int__|redis-benchmark -p \$port -n 100000 -r 100000 -P 16 -q setbit bitmap:__rand_int__ 1000 1"
  "PFADD|pfadd {s}hll __rand_int__|"
  "PFCOUNT|pfcount {s}hll|redis-benchmark -p \$port -n 20000 -r 100000 -P 16 -q pfadd {s}hll __rand_int__"
  "PFCOUNT-union-of-2|pfcount {s}hll {s}hll|redis-benchmark -p \$port -n 20000 -r 100000 -P 16 -q pfadd {s}hll __rand_int__"
  "GEOADD|geoadd {g}add 13.__rand_int__ 38.__rand_int__ m:__rand_int__|"
  "GEOSEARCH|geosearch {g}grid fromlonlat 13.0505 38.0505 byradius 500 m asc count 10|$grid"
)
for row in "${rows[@]}"; do
  IFS='|' read -r label cmd preload <<< "$row"
  for server in redis-server "$ms"; do
    name=moonshard; [[ $server == redis-server ]] && name=redis-server
    out=$(LABEL=$label CMD=$cmd PRELOAD=$preload "$here/callgrind.sh" "$server" "$pipeline" custom)
    echo "$name $out"
  done
done
