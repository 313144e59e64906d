#!/usr/bin/env bash
# Runs ioredis's own test suite (`test/functional`, and with CLUSTER=1
# `test/cluster`, of an ioredis source tree: not part of this repository)
# against redis-server and then against moonshard, and lists the tests that
# fail on moonshard only. Findings: docs/REDIS_TEST_SUITE.md ("ioredis's own
# test suite").
#
#   tools/ioredis_suite.sh <ioredis-source-dir>            (functional suite)
#   CLUSTER=1 tools/ioredis_suite.sh <ioredis-source-dir>  (cluster suite)
#
# The suite talks to 127.0.0.1:6379 (functional) or to a cluster of three
# masters and three replicas on ports 3000-3005 (cluster), so those ports
# must be free; the servers run one after the other. moonshard runs with
# `keyspace-mode standalone` for the functional suite (its keys carry no hash
# tags). Needs node/npm (the registry), redis-server and redis-cli on PATH
# and target/release/moonshard. The source tree is copied to OUT (default
# /tmp/ioredis-suite) and its test dependencies installed there.
# Exit status 1 when some test fails on moonshard only.
set -uo pipefail
src=${1:?usage: tools/ioredis_suite.sh <ioredis-source-dir>}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MOONSHARD:-$root/target/release/moonshard}
out=${OUT:-/tmp/ioredis-suite}
mkdir -p "$out"
if [ ! -d "$out/src/node_modules/mocha" ]; then
  rm -rf "$out/src" && cp -r "$src" "$out/src" || exit 2
  # Only what the tests need (no release tooling, linters or docs).
  (cd "$out/src" && python3 - <<'EOF'
import json
p = json.load(open("package.json"))
keep = {"@types/chai", "@types/chai-as-promised", "@types/debug", "@types/mocha", "@types/node",
        "@types/redis-errors", "@types/sinon", "chai", "chai-as-promised", "mocha", "server-destroy",
        "sinon", "ts-node", "typescript", "uuid"}
p["devDependencies"] = {k: v for k, v in p.get("devDependencies", {}).items() if k in keep}
p["scripts"] = {}
json.dump(p, open("package.json", "w"), indent=1)
EOF
  npm install --no-audit --no-fund -q) || exit 2
fi
pids=()
trap 'kill ${pids[*]} 2>/dev/null; wait 2>/dev/null' EXIT
up() {  # up <port>: waits for a server to answer
  for _ in $(seq 50); do redis-cli -p "$1" ping >/dev/null 2>&1 && break; sleep 0.1; done
}
start() {  # start <binary> <name>: the server(s) the suite expects
  pids=()
  if [ -z "${CLUSTER:-}" ]; then
    local extra=()
    [ "$2" = moonshard ] && extra=(--keyspace-mode standalone)
    "$1" --port 6379 --save '' --enable-debug-command yes "${extra[@]}" >"$out/$2.log" 2>&1 &
    pids+=($!)
    up 6379
    return
  fi
  local addrs=()
  for p in 3000 3001 3002 3003 3004 3005; do
    local d="$out/node.$2.$p"
    rm -rf "$d" && mkdir -p "$d"
    "$1" --port "$p" --save '' --dir "$d" --cluster-enabled yes --enable-debug-command yes >"$d/log" 2>&1 &
    pids+=($!)
    up "$p"
    addrs+=("127.0.0.1:$p")
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$out/create.$2.log" 2>&1 || exit 2
  for _ in $(seq 100); do
    redis-cli -p 3000 cluster info | grep -q 'cluster_state:ok' && break
    sleep 0.2
  done
  sleep 2 # the replicas' first sync
}
stop() {
  kill "${pids[@]}" 2>/dev/null
  wait 2>/dev/null
}
files=("test/helpers/*.ts" "test/functional/**/*.ts")
[ -n "${CLUSTER:-}" ] && files=("test/cluster/**/*.ts")
run() {  # run <name>: the failing tests' titles, and the summary on stderr
  (cd "$out/src" && TS_NODE_TRANSPILE_ONLY=true NODE_ENV=test timeout 1200 npx mocha --no-experimental-strip-types \
    --exit --timeout 8000 --recursive --require ts-node/register "${files[@]}" --reporter json \
    --reporter-option "output=$out/run.$1.json" >"$out/run.$1.out" 2>&1)
  python3 - "$out/run.$1.json" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    print("RUN-INCOMPLETE"); sys.exit()
for t in r.get("failures", []):
    print(t["fullTitle"])
s = r["stats"]
print(f"  {sys.argv[1]}: {s['passes']} passing, {s['failures']} failing, {s['pending']} pending", file=sys.stderr)
EOF
}
start redis-server redis && run redis | sort -u >"$out/failed.redis"
stop
start "$bin" moonshard && run moonshard | sort -u >"$out/failed.moonshard"
stop
only=$(comm -23 "$out/failed.moonshard" "$out/failed.redis")
if [ -n "$only" ]; then
  echo "failing on moonshard only:"
  echo "$only" | sed 's/^/  /'
  exit 1
fi
echo "no test fails on moonshard that passes on redis-server"
