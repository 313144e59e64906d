"""The seed example: redis-py's register_script doing LPUSH of integers and
INCRBY of their sum atomically, including the NOSCRIPT fallback after
SCRIPT FLUSH. Usage: seed_script.py PORT"""
import sys

import redis

SEED = """
local sum = 0
for _, v in ipairs(ARGV) do sum = sum + tonumber(v); redis.call('LPUSH', KEYS[1], v) end
return redis.call('INCRBY', KEYS[2], sum)
"""

r = redis.Redis(port=int(sys.argv[1]))
push_sum = r.register_script(SEED)
assert push_sum(keys=["{s}list", "{s}sum"], args=[2, 1, 2]) == 5
assert push_sum(keys=["{s}list", "{s}sum"], args=[10]) == 15
r.script_flush()
assert push_sum(keys=["{s}list", "{s}sum"], args=[5, 5]) == 25  # NOSCRIPT -> EVAL
assert r.llen("{s}list") == 6
assert r.lrange("{s}list", 0, -1) == [b"5", b"5", b"10", b"2", b"1", b"2"]
print("seed ok")
