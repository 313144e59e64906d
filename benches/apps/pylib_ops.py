"""redis-py workloads as applications send them: Lock acquire/release
(SET NX PX, then the release script by EVALSHA with NOSCRIPT fallback) and
a sliding-window rate limiter script (Script object: EVALSHA, EVAL on
NOSCRIPT). Usage: pylib_ops.py PORT lock|ratelimit OPS THREADS
Prints: `<workload> ops=N seconds=S ops_per_sec=R`."""
import sys
import threading
import time

import redis

port, which, ops, threads = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
LIMITER = """
local key, now, window, limit, id = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then return 0 end
redis.call('ZADD', key, now, id)
redis.call('PEXPIRE', key, window)
return 1
"""


def work(t, n):
    r = redis.Redis(port=port)
    if which == "lock":
        for i in range(n):
            lock = r.lock(f"lock:{t}:{i % 64}", timeout=10)
            assert lock.acquire(blocking=False)
            lock.release()
    else:
        limiter = r.register_script(LIMITER)
        for i in range(n):
            limiter(keys=[f"rl:{t}:{i % 256}"], args=[int(time.time() * 1000), 1000, 50, f"{t}-{i}"])


start = time.time()
per = ops // threads
pool = [threading.Thread(target=work, args=(t, per)) for t in range(threads)]
for th in pool:
    th.start()
for th in pool:
    th.join()
secs = time.time() - start
print(f"{which} ops={per * threads} seconds={secs:.2f} ops_per_sec={per * threads / secs:.0f}")
