#!/usr/bin/env bash
# Runs redis-py's own test suite (the `tests/` of its PyPI source release,
# not part of this repository) against moonshard and against redis-server,
# side by side, and lists the tests that fail on moonshard only. Findings:
# docs/REDIS_TEST_SUITE.md ("redis-py's own test suite").
#
#   tools/redis_py_suite.sh [redis-py version]        (default 5.0.8)
#
# Needs python3 (venv, pip reaching PyPI), redis-server on PATH and
# target/release/moonshard. moonshard runs with `keyspace-mode standalone`
# (the suite's keys carry no hash tags, as a standalone Redis's users'
# do). Both RESP2 and RESP3 (`--protocol=3`). Env: OUT (default
# /tmp/redis-py-suite), PORTS (two free ports, default "6411 6412"; not 6390,
# which the suite uses as a port where no server listens), CLUSTER=1 (the
# cluster suites against two 6-node clusters, moonshard's and redis-server's,
# from the first port and from the second + 100).
# Exit status 1 when some test fails on moonshard only.
set -uo pipefail
version=${1:-5.0.8}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MOONSHARD:-$root/target/release/moonshard}
out=${OUT:-/tmp/redis-py-suite}
read -r ours_port theirs_port <<<"${PORTS:-6411 6412}"
mkdir -p "$out"
cd "$out" || exit 2
if [ ! -d "redis-$version/tests" ]; then
  python3 -m pip download "redis==$version" --no-binary :all: --no-deps -d . -q || exit 2
  tar xzf "redis-$version.tar.gz" || exit 2
fi
if [ ! -x venv/bin/pytest ]; then
  python3 -m venv venv || exit 2
  venv/bin/pip install -q "redis==$version" pytest "pytest-asyncio==0.23.8" pytest-timeout mock packaging || exit 2
fi
pids=()
trap 'kill ${pids[*]} 2>/dev/null; wait 2>/dev/null' EXIT
up() {  # up <port>: waits for a server to answer
  for _ in $(seq 50); do redis-cli -p "$1" ping >/dev/null 2>&1 && break; sleep 0.1; done
}
if [ -z "${CLUSTER:-}" ]; then
  "$bin" --port "$ours_port" --save '' --keyspace-mode standalone --enable-debug-command yes >"$out/moonshard.log" 2>&1 &
  pids+=($!)
  redis-server --port "$theirs_port" --save '' --enable-debug-command yes >"$out/redis.log" 2>&1 &
  pids+=($!)
  up "$ours_port"; up "$theirs_port"
else
  # Two clusters of 3 masters and 3 replicas, made by redis-cli --cluster
  # create: moonshard nodes from $ours_port on, redis-server nodes from
  # $theirs_port + 100 on (their bus ports are port + 10000).
  theirs_port=$((theirs_port + 100))
  for first in "$ours_port" "$theirs_port"; do
    addrs=()
    for i in 0 1 2 3 4 5; do
      p=$((first + i)); d="$out/node.$p"; rm -rf "$d"; mkdir -p "$d"
      if [ "$first" = "$ours_port" ]; then prog="$bin"; else prog=redis-server; fi
      "$prog" --port "$p" --save '' --dir "$d" --cluster-enabled yes --cluster-node-timeout 5000 \
        --enable-debug-command yes >"$d/log" 2>&1 &
      pids+=($!)
      up "$p"; addrs+=("127.0.0.1:$p")
    done
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$out/create.$first.log" 2>&1 || exit 2
    for _ in $(seq 100); do
      redis-cli -p "$first" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.2
    done
  done
fi
files=(test_commands.py test_pipeline.py test_pubsub.py test_scripting.py test_function.py test_lock.py
  test_connection.py test_monitor.py test_encoding.py test_hash.py test_retry.py test_helpers.py
  test_multiprocessing.py test_connection_pool.py test_credentials.py
  test_asyncio/test_commands.py test_asyncio/test_pipeline.py test_asyncio/test_pubsub.py
  test_asyncio/test_scripting.py test_asyncio/test_lock.py test_asyncio/test_connection.py
  test_asyncio/test_monitor.py test_asyncio/test_encoding.py test_asyncio/test_hash.py)
marks=()
if [ -n "${CLUSTER:-}" ]; then
  # As redis-py's own CI runs them against a cluster.
  marks=(-m "not onlynoncluster and not redismod and not ssl")
  files=(test_cluster.py test_commands.py test_pipeline.py test_pubsub.py test_scripting.py test_function.py
    test_asyncio/test_commands.py test_asyncio/test_pipeline.py)
fi
cd "redis-$version" || exit 2
run() {  # run <port> <protocol>: the failing tests' ids, and the summary on stderr
  ../venv/bin/python -m pytest "${files[@]/#/tests/}" "${marks[@]}" --redis-url="redis://localhost:$1/0" --protocol="$2" \
    -o asyncio_mode=auto -q --timeout 60 -p no:cacheprovider -W ignore --assert=plain 2>&1 |
    tee "$out/run.$1.$2.log" | grep -E '^(FAILED|ERROR) ' | cut -d' ' -f2 | sort -u
  tail -1 "$out/run.$1.$2.log" | sed "s/^/  port $1 RESP$2: /" >&2
  # A run that stopped (a collection error) lists no failures: say so.
  tail -1 "$out/run.$1.$2.log" | grep -q ' passed' || echo "RUN-INCOMPLETE-port-$1"
}
status=0
for proto in 2 3; do
  run "$ours_port" "$proto" >"$out/failed.moonshard.$proto"
  run "$theirs_port" "$proto" >"$out/failed.redis.$proto"
  only=$(comm -23 "$out/failed.moonshard.$proto" "$out/failed.redis.$proto")
  if [ -n "$only" ]; then
    echo "RESP$proto: failing on moonshard only:"
    echo "$only" | sed 's/^/  /'
    status=1
  else
    echo "RESP$proto: no test fails on moonshard that passes on redis-server"
  fi
done
exit $status
