#!/usr/bin/env bash
# Runs the redis crate's own integration tests (its crates.io source, not
# part of this repository) with moonshard as the `redis-server` they start,
# then with the real redis-server, and lists the tests that fail on
# moonshard only. Findings: docs/REDIS_TEST_SUITE.md ("The redis crate's
# own tests").
#
#   tools/redis_rs_suite.sh [crate version]          (default 0.27.6)
#
# The tests start their servers themselves (`redis-server` from PATH, with
# `--port`, `--cluster-enabled yes`, ...): a wrapper first on PATH runs
# moonshard instead (`keyspace-mode standalone` unless a cluster node).
# Needs cargo (crates.io reachable), redis-server, redis-cli, and
# target/release/moonshard. Env: OUT (default /tmp/redis-rs-suite).
# Exit status 1 when some test fails on moonshard only.
set -uo pipefail
version=${1:-0.27.6}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${MOONSHARD:-$root/target/release/moonshard}
out=${OUT:-/tmp/redis-rs-suite}
mkdir -p "$out/bin"
src="$out/redis-$version"
if [ ! -d "$src/tests" ]; then
  # The crate's published source, as cargo downloads it for a build.
  fetch="$out/fetch"
  mkdir -p "$fetch/src" && echo 'fn main() {}' >"$fetch/src/main.rs"
  printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nredis = "=%s"\n' \
    "$version" >"$fetch/Cargo.toml"
  (cd "$fetch" && cargo fetch -q) || exit 2
  found=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"redis-$version" | head -1)
  cp -r "$found" "$src" || exit 2
fi
cat >"$out/bin/redis-server" <<WRAP
#!/bin/sh
case " \$* " in *" --cluster-enabled yes "*) exec "$bin" "\$@" ;; esac
if [ -f "\$1" ] && grep -qs "cluster-enabled yes" "\$1"; then exec "$bin" "\$@"; fi
exec "$bin" "\$@" --keyspace-mode standalone
WRAP
chmod +x "$out/bin/redis-server"
tests=(test_basic test_async test_script test_streams test_geospatial test_acl test_types test_cluster test_cluster_async)
cd "$src" || exit 2
export CARGO_TARGET_DIR="$out/target"
features="tokio-comp cluster-async connection-manager"
args=()
for t in "${tests[@]}"; do args+=(--test "$t"); done
cargo test -q --features "$features" "${args[@]}" --no-run 2>"$out/build.log" || { tail "$out/build.log"; exit 2; }
run() {  # run <label> <PATH>: failing tests, one per line
  for t in "${tests[@]}"; do
    exe=$(ls -t "$CARGO_TARGET_DIR"/debug/deps/"$t"-* | grep -v '\.d$' | head -1)
    PATH="$2" timeout 900 "$exe" --test-threads 2 >"$out/$1.$t.log" 2>&1
    grep -E '^test .* FAILED$' "$out/$1.$t.log" | sed "s/^test /$t: /; s/ \.\.\. FAILED$//"
    grep -E '^test result' "$out/$1.$t.log" | sed "s/^/  $1 $t: /" >&2
  done | sort
}
run moonshard "$out/bin:$PATH" >"$out/failed.moonshard"
run redis "$PATH" >"$out/failed.redis"
only=$(comm -23 "$out/failed.moonshard" "$out/failed.redis")
# Some tests restart servers on fixed addresses and race under parallel
# runs (on redis-server too): a failure is confirmed by a rerun alone.
confirmed=""
while IFS= read -r line; do
  [ -n "$line" ] || continue
  t=${line%%:*}; name=${line#*: }; name=${name% - should panic}
  exe=$(ls -t "$CARGO_TARGET_DIR"/debug/deps/"$t"-* | grep -v '\.d$' | head -1)
  if PATH="$out/bin:$PATH" timeout 300 "$exe" --exact "$name" >"$out/rerun.log" 2>&1; then
    echo "flaky (passed alone): $line"
  else
    confirmed+="$line"$'\n'
  fi
done <<<"$only"
only=${confirmed%$'\n'}
if [ -n "$only" ]; then
  echo "failing on moonshard only:"
  echo "$only" | sed 's/^/  /'
  exit 1
fi
echo "no test fails on moonshard that passes on redis-server"
