#!/usr/bin/env bash
# Runs Redis's own test suite (the Tcl `tests/` of a Redis 7.0 source tree,
# not part of this repository) against moonshard, one unit at a time, and
# prints one summary line per unit. Findings: docs/REDIS_TEST_SUITE.md.
#
#   tools/redis_suite.sh <redis-source-dir> [external|harness] [unit ...]
#
# external: one moonshard per unit on a fixed port, the suite in
#           `--host/--port` mode (tests tagged external:skip do not run).
# harness:  the suite starts its servers itself: `src/redis-server` in a
#           copy of the tree is a wrapper that runs moonshard with the
#           suite's config file (standalone keyspace unless cluster-enabled).
# Needs tclsh 8.5+, target/release/moonshard, redis-cli/redis-benchmark on
# PATH. Env: T (seconds per unit, default 400), OUT (default /tmp/redis-suite).
set -uo pipefail
src=${1:?usage: tools/redis_suite.sh <redis-source-dir> [external|harness] [unit ...]}
mode=${2:-external}
shift $(( $# >= 2 ? 2 : 1 ))
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MOONSHARD:-$root/target/release/moonshard}
out=${OUT:-/tmp/redis-suite}
mkdir -p "$out"
tree=$out/tree
rm -rf "$tree" && mkdir -p "$tree/src" && cp -r "$src/tests" "$src/runtest" "$tree/"
cat > "$tree/src/redis-server" <<WRAP
#!/bin/sh
if grep -qs "cluster-enabled yes" "\$1"; then exec "$bin" "\$@"; fi
exec "$bin" "\$@" --keyspace-mode standalone
WRAP
chmod +x "$tree/src/redis-server"
for t in redis-cli redis-benchmark redis-check-aof redis-check-rdb; do
  ln -sf "$(command -v $t)" "$tree/src/$t"
done
units=("$@")
if [ ${#units[@]} -eq 0 ]; then
  mapfile -t units < <(cd "$tree/tests" && ls unit/*.tcl unit/type/*.tcl | sed 's/\.tcl$//')
fi
cd "$tree"
port=${PORT:-7950}
for u in "${units[@]}"; do
  name=$(echo "$u" | tr / _)
  if [ "$mode" = external ]; then
    data=$(mktemp -d)
    "$bin" --port $port --dir "$data" --save '' --keyspace-mode standalone --enable-debug-command yes \
      >"$out/$name.server.log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
    timeout "${T:-400}" ./runtest --host 127.0.0.1 --port $port --single "$u" --clients 1 >"$out/$name.out" 2>&1
    rc=$?
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"
  else
    timeout "${T:-400}" ./runtest --single "$u" --clients 1 --baseport "${BASEPORT:-21111}" --timeout 60 >"$out/$name.out" 2>&1
    rc=$?
  fi
  ok=$(grep -c '\[.*ok.*\]:' "$out/$name.out")
  err=$(grep -c '\[.*err.*\]:\|\[.*exception.*\]:' "$out/$name.out")
  printf '%-28s rc=%-3s ok=%-4s err=%s\n' "$u" "$rc" "$ok" "$err"
done
