"""redis-py's RedisCluster against a moonshard cluster: slot discovery
(CLUSTER SLOTS), SET/GET across slots, a pipeline, hash tags, MOVED
handling. Usage: cluster_client.py PORT"""
import sys

from redis.cluster import RedisCluster

port = int(sys.argv[1])
rc = RedisCluster(host="127.0.0.1", port=port)
assert len(rc.get_nodes()) == 3, rc.get_nodes()
for i in range(200):
    rc.set(f"user:{i}", i)
for i in range(200):
    assert rc.get(f"user:{i}") == str(i).encode()
pipe = rc.pipeline()
for i in range(50):
    pipe.incr(f"counter:{i}")
    pipe.get(f"counter:{i}")
out = pipe.execute()
assert out == [x for i in range(50) for x in (1, b"1")], out
rc.mset_nonatomic({"{tag}a": 1, "{tag}b": 2, "x": 3})
assert rc.mget_nonatomic(["{tag}a", "{tag}b", "x"]) == [b"1", b"2", b"3"]
assert rc.keyslot("{tag}a") == rc.keyslot("{tag}b")
import redis
total = sum(redis.Redis(host=n.host, port=n.port).dbsize() for n in rc.get_nodes())
assert total == 253, total
print("cluster client ok")
