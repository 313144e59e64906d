# Shared by the side-by-side benches (sourced, not run): one server at a time
# on CPU 0, moonshard (`$ms`, one shard, `$dir`) or redis-server, on `$port`;
# rounds alternate which server goes first; medians of per-round ratios.
# start <moonshard|redis> [extra server flags...]   (sets $pid)
start() {
  local which=$1; shift
  if [[ $which == redis ]]; then
    taskset -c 0 redis-server --port "$port" --save '' --appendonly no "$@" >/dev/null 2>&1 &
  else
    taskset -c 0 "$ms" --port "$port" --shards 1 --save '' --dir "$dir" "$@" >/dev/null 2>&1 &
  fi
  pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.1; done
}
stop() { redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$pid"; wait "$pid" 2>/dev/null || true; }
# The server's CPU time so far (utime+stime, clock ticks).
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# alternate_rounds <rounds>: calls run_one for both servers each round, A B / B A.
alternate_rounds() {
  local r
  for r in $(seq "$1"); do
    if (( r % 2 )); then run_one moonshard; run_one redis; else run_one redis; run_one moonshard; fi
  done
}
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
