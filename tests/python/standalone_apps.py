"""Standalone-Redis application patterns over untagged keys (keys in
different hash slots), as ordinary applications write them: a sliding-window
rate limiter script over two keys, a transfer script between two accounts
under concurrent clients while readers check the total, redis-py's Lock,
WATCH-based optimistic transactions (redis-py's `transaction` helper), and
pipelines. Run against moonshard with --keyspace-mode standalone and
against redis-server: both must behave the same. Usage: standalone_apps.py PORT"""
import sys
import threading
import time

import redis

port = int(sys.argv[1])
r = redis.Redis(port=port, decode_responses=True)
r.flushall()

# A sliding-window rate limiter: a sorted set of request times and a
# counter of refusals, two unrelated keys.
LIMITER = r.register_script("""
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  redis.call('INCR', KEYS[2])
  return 0
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return 1
""")
allowed = sum(LIMITER(keys=["ratelimit:user:42", "ratelimit:refused:42"], args=[1000 + i, 10_000, 5, f"req{i}"])
              for i in range(8))
assert allowed == 5, allowed
assert r.get("ratelimit:refused:42") == "3"

# Transfers between accounts on different slots by script, while readers
# sum them by script and by MULTI: the total never changes.
accounts = [f"account:{name}" for name in ("alice", "bob", "carol", "dave", "erin", "frank")]
r.mset({a: 100 for a in accounts})
TRANSFER = r.register_script("""
local from = tonumber(redis.call('GET', KEYS[1]))
local amount = tonumber(ARGV[1])
if from < amount then return 0 end
redis.call('DECRBY', KEYS[1], amount)
redis.call('INCRBY', KEYS[2], amount)
return 1
""")
TOTAL = r.register_script("local t = 0 for _, k in ipairs(KEYS) do t = t + tonumber(redis.call('GET', k)) end return t")
stop = threading.Event()
bad = []

def mover(seed):
    c = redis.Redis(port=port, decode_responses=True)
    for i in range(300):
        a = accounts[(seed + i) % len(accounts)]
        b = accounts[(seed * 7 + i * 3 + 1) % len(accounts)]
        if a != b:
            TRANSFER(keys=[a, b], args=[1 + (i % 5)], client=c)

def reader():
    c = redis.Redis(port=port, decode_responses=True)
    while not stop.is_set():
        if TOTAL(keys=accounts, client=c) != 600:
            bad.append("script")
        p = c.pipeline(transaction=True)
        for a in accounts:
            p.get(a)
        if sum(int(v) for v in p.execute()) != 600:
            bad.append("multi")

threads = [threading.Thread(target=mover, args=(s,)) for s in range(3)]
rd = threading.Thread(target=reader)
rd.start()
for t in threads:
    t.start()
for t in threads:
    t.join()
stop.set()
rd.join()
assert not bad, bad[:5]
assert sum(int(r.get(a)) for a in accounts) == 600

# redis-py's Lock on an untagged name, guarding a read-modify-write of
# another key.
lock = r.lock("locks:report", timeout=5)
with lock:
    r.set("report:count", int(r.get("report:count") or 0) + 1)
assert r.get("report:count") == "1" and not r.exists("locks:report")

# Optimistic locking: WATCH two unrelated keys, then MULTI/EXEC.
r.set("stock:widget", 3)
r.set("orders:count", 0)

def order(pipe):
    left = int(pipe.get("stock:widget"))
    pipe.multi()
    if left > 0:
        pipe.decr("stock:widget")
        pipe.incr("orders:count")

for _ in range(5):
    r.transaction(order, "stock:widget", "orders:count")
assert r.get("stock:widget") == "0" and r.get("orders:count") == "3"

# Multi-key commands over untagged keys.
r.sadd("tags:new", "a", "b")
assert r.smove("tags:new", "tags:done", "a")
assert r.smembers("tags:done") == {"a"}
r.rename("tags:new", "tags:pending")
assert r.smembers("tags:pending") == {"b"}
r.zadd("scores:mon", {"x": 1, "y": 2})
r.zadd("scores:tue", {"x": 3})
assert r.zunionstore("scores:week", ["scores:mon", "scores:tue"]) == 2
assert r.zscore("scores:week", "x") == 4
assert r.lmove("queue:in", "queue:out") is None
r.rpush("queue:in", "job1")
assert r.lmove("queue:in", "queue:out") == "job1"
assert r.msetnx({"flag:a": 1, "flag:b": 1}) and not r.msetnx({"flag:b": 2, "flag:c": 2})

print("standalone apps ok")
