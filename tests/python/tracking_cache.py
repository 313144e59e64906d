"""redis-py's client-side cache (RESP3, CLIENT TRACKING) against concurrent
writers: values read through the cache never go back in time, and once the
writers stop every cached value equals the server's.

Usage: tracking_cache.py <port>. Prints "tracking cache ok" on success.
"""

import random
import sys
import threading
import time

import redis
from redis.cache import CacheConfig
from redis.connection import CacheProxyConnection

# redis-py only enables its cache for servers that call themselves 7.4 or
# later (a product policy, not a protocol need): tracking as used here is
# Redis 6's, which both redis-server 7.0 and moonshard speak.
CacheProxyConnection.MIN_ALLOWED_VERSION = "7.0.0"

PORT = int(sys.argv[1])
KEYS = [f"cache:{i}" for i in range(40)]
WRITERS = 3
SECONDS = 1.0


def writer(n, stop):
    w = redis.Redis(port=PORT)
    mine = KEYS[n::WRITERS]
    version = 0
    while not stop.is_set():
        version += 1
        for k in mine:
            w.set(k, version)


def main():
    plain = redis.Redis(port=PORT)
    for k in KEYS:
        plain.set(k, 0)
    cached = redis.Redis(port=PORT, protocol=3, cache_config=CacheConfig(), single_connection_client=True)
    stop = threading.Event()
    threads = [threading.Thread(target=writer, args=(n, stop)) for n in range(WRITERS)]
    before = plain.info("commandstats").get("cmdstat_get", {}).get("calls", 0)
    for t in threads:
        t.start()
    seen = {k: 0 for k in KEYS}
    reads = 0
    rng = random.Random(7)
    deadline = time.time() + SECONDS
    while time.time() < deadline:
        k = rng.choice(KEYS)
        v = int(cached.get(k))
        reads += 1
        assert v >= seen[k], f"{k} went back from {seen[k]} to {v}"
        seen[k] = v
    stop.set()
    for t in threads:
        t.join()
    # Reads answered from the cache never reached the server: some must have.
    served = plain.info("commandstats").get("cmdstat_get", {}).get("calls", 0) - before
    local = reads - served
    assert local > 0, f"the cache answered nothing ({reads} reads, {served} reached the server)"
    # Let the last invalidations arrive, then the cache must agree with the server.
    time.sleep(0.3)
    for _ in range(2):
        for k in KEYS:
            assert cached.get(k) == plain.get(k), f"{k}: cached {cached.get(k)!r}, server {plain.get(k)!r}"
    # Idle: reading every key twice more from the cache costs the server nothing.
    served = plain.info("commandstats")["cmdstat_get"]["calls"]
    for k in KEYS:
        cached.get(k)
        cached.get(k)
    assert plain.info("commandstats")["cmdstat_get"]["calls"] == served, "cached reads reached the server"
    print(f"{reads} reads, {local} from the cache")
    print("tracking cache ok")


main()
