"""redis-py's Lock (SET NX PX plus Lua scripts for release, extend and
reacquire) between several clients. Usage: lock.py PORT"""
import sys
import threading
import time

import redis
from redis.exceptions import LockError, LockNotOwnedError

port = int(sys.argv[1])
r1 = redis.Redis(port=port)
r2 = redis.Redis(port=port)
r1.flushall()

name = "{jobs}lock"
a = r1.lock(name, timeout=10)
b = r2.lock(name, timeout=10, blocking_timeout=0.2)
assert a.acquire(blocking=False)
assert a.owned() and a.locked()
assert not b.acquire()  # times out while a holds it
assert not b.owned() and b.locked()

assert a.extend(20)
assert 25_000 < r1.pttl(name) <= 30_000
assert a.extend(5, replace_ttl=True)
assert r1.pttl(name) <= 5_000
assert a.reacquire()
assert 5_000 < r1.pttl(name) <= 10_000

# Only the owner's token releases or extends (the scripts compare tokens).
stranger = r2.lock(name, timeout=10)
for op in (stranger.release, lambda: stranger.extend(5), stranger.reacquire):
    stranger.local.token = b"not-the-owner"  # release forgets it even when refused
    try:
        op()
        raise AssertionError("a stranger changed the lock")
    except LockNotOwnedError:
        pass
try:
    b.release()
    raise AssertionError("released a lock never acquired")
except LockError:
    pass

# The script cache flushed under the lock: release recovers from NOSCRIPT.
r1.script_flush()
a.release()
assert not r1.exists(name)
try:
    a.release()
    raise AssertionError("released twice")
except LockError:
    pass

# Blocking acquire on another client wakes once the holder releases.
assert a.acquire()
acquired_at = []


def wait_for_lock():
    other = r2.lock(name, timeout=10, sleep=0.01)
    if other.acquire(blocking=True, blocking_timeout=10):
        acquired_at.append(time.monotonic())
        other.release()


t = threading.Thread(target=wait_for_lock)
t.start()
time.sleep(0.3)
assert not acquired_at
released_at = time.monotonic()
a.release()
t.join(15)
assert acquired_at and acquired_at[0] >= released_at

# An expired lock can be taken by another client; the old owner finds out.
short = r1.lock(name, timeout=0.2)
assert short.acquire()
time.sleep(0.4)
taker = r2.lock(name, timeout=10)
assert taker.acquire(blocking=False)
try:
    short.extend(5)
    raise AssertionError("extended a lock someone else holds")
except LockNotOwnedError:
    pass
taker.release()

# Mutual exclusion: read-modify-write under the lock from many clients.
r1.set("{jobs}counter", 0)


def worker():
    c = redis.Redis(port=port)
    for _ in range(25):
        with c.lock(name, timeout=10, sleep=0.001, blocking_timeout=30):
            v = int(c.get("{jobs}counter"))
            c.set("{jobs}counter", v + 1)


threads = [threading.Thread(target=worker) for _ in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join(60)
assert int(r1.get("{jobs}counter")) == 150, r1.get("{jobs}counter")

print("lock ok")
