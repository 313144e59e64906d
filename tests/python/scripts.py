"""redis-py's script helper (register_script): EVALSHA first, and the
NOSCRIPT recovery after SCRIPT FLUSH, directly, in pipelines (which load
their scripts first) and in transactional pipelines across shards.
Usage: scripts.py PORT"""
import sys

import redis

r = redis.Redis(port=int(sys.argv[1]))
r.flushall()

incr_by = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
keyless = r.register_script("return redis.call('INCRBY', 'keyless', ARGV[1])")
ro = r.register_script("#!lua flags=no-writes\nreturn redis.call('GET', KEYS[1])")

assert incr_by(keys=["a"], args=[2]) == 2
assert r.script_exists(incr_by.sha) == [True]
r.script_flush()
assert r.script_exists(incr_by.sha) == [False]
assert incr_by(keys=["a"], args=[3]) == 5  # NOSCRIPT -> EVAL, which caches it again
assert r.script_exists(incr_by.sha) == [True]
assert keyless(args=[4]) == 4
assert ro(keys=["a"]) == b"5"
assert r.evalsha_ro(ro.sha, 1, "a") == b"5"

# Pipelines load every script they use before sending the EVALSHAs.
r.script_flush()
pipe = r.pipeline(transaction=False)
for i, key in enumerate(["p1", "p2", "p3", "p4", "p5"]):
    incr_by(keys=[key], args=[i + 1], client=pipe)
keyless(args=[1], client=pipe)
assert pipe.execute() == [1, 2, 3, 4, 5, 5]

# A transactional pipeline over keys on several shards.
r.script_flush()
pipe = r.pipeline(transaction=True)
for key in ["t1", "t2", "t3", "t4"]:
    incr_by(keys=[key], args=[10], client=pipe)
ro(keys=["t1"], client=pipe)
assert pipe.execute() == [10, 10, 10, 10, b"10"]

# Errors raised from the script surface as ResponseError.
bad = r.register_script("return redis.call('LPUSH', KEYS[1], 'x')")
try:
    bad(keys=["a"])
    raise AssertionError("WRONGTYPE expected")
except redis.exceptions.ResponseError as e:
    assert "WRONGTYPE" in str(e), e

print("scripts ok")
