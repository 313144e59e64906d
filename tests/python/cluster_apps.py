"""redis-py's RedisCluster against a 3-master moonshard cluster, in two
phases around a `redis-cli --cluster reshard` (tests/cluster_clients.rs):
EVALSHA of the seed script with hash-tagged keys, pipelines, pub/sub
(PUBLISH through one node, subscriber on another; SPUBLISH/SSUBSCRIBE on
the channel's owner). Usage: cluster_apps.py PORT before|after"""
import sys
import time

from redis.cluster import RedisCluster


def next_of(get, kind, secs):
    """Polls `get` (a pubsub's get_message or get_sharded_message) until a
    message of type `kind` arrives (returned) or `secs` pass (None)."""
    deadline = time.time() + secs
    while time.time() < deadline:
        m = get(timeout=0.2)
        if m and m["type"] == kind:
            return m
    return None


port, phase = int(sys.argv[1]), sys.argv[2]
rc = RedisCluster(host="127.0.0.1", port=port)
assert len(rc.get_nodes()) == 3, rc.get_nodes()

SEED = """local n = 0
for i = 1, #ARGV do
  redis.call("LPUSH", KEYS[1], ARGV[i])
  n = n + tonumber(ARGV[i])
end
redis.call("INCRBY", KEYS[2], n)
return n"""
seed = rc.register_script(SEED)
# Half of the tags in the first slots, which the resharding moves.
low = (t for t in (f"{{t{i}}}" for i in range(100000)) if rc.keyslot(t) < 100)
TAGS = [next(low) for _ in range(20)] + [f"{{t{i}}}" for i in range(20)]

# EVALSHA (register_script loads on NOSCRIPT) on tags spread over every node.
for t in TAGS:
    assert seed(keys=[f"{t}list", f"{t}sum"], args=[1, 2, 3]) == 6
# Pipelines: per-slot batches sent to each node.
pipe = rc.pipeline()
for i in range(100):
    pipe.incr(f"{phase}:counter:{i}")
    pipe.set(f"{phase}:k:{i}", i)
out = pipe.execute()
assert out == [x for i in range(100) for x in (1, True)], out
if phase == "after":
    # What the first phase wrote survived the resharding.
    for t in TAGS:
        assert rc.llen(f"{t}list") == 6, t
        assert rc.get(f"{t}sum") == b"12", t
    vals = rc.mget_nonatomic([f"before:k:{i}" for i in range(100)])
    assert vals == [str(i).encode() for i in range(100)], vals

# Pub/sub: the subscriber sits on the node of the channel's slot; PUBLISH
# goes through every node in turn (the bus carries it to the subscriber).
p = rc.pubsub()
p.subscribe(f"news-{phase}")
next_of(p.get_message, "subscribe", 5)
for n in rc.get_nodes():
    rc.get_redis_connection(n).publish(f"news-{phase}", f"via {n.port}")
got = set()
deadline = time.time() + 10
while len(got) < 3 and time.time() < deadline:
    m = p.get_message(timeout=0.2)
    if m and m["type"] == "message":
        got.add(m["data"])
assert got == {f"via {n.port}".encode() for n in rc.get_nodes()}, got
p.close()

# Sharded pub/sub: SSUBSCRIBE and SPUBLISH reach the channel's slot owner.
sp = rc.pubsub()
sp.ssubscribe(f"orders-{phase}")
next_of(sp.get_sharded_message, "ssubscribe", 5)
assert rc.spublish(f"orders-{phase}", "o1") == 1
m = next_of(sp.get_sharded_message, "smessage", 5)
assert m and m["data"] == b"o1", m
sp.close()
print(f"cluster apps {phase} ok")
