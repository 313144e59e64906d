"""redis-py against moonshard: transactional pipelines and pub/sub.

Run as: python test_txn_pubsub.py PORT
"""
import sys
import threading
import time

import redis


def check_pipelines(r):
    r.flushall()
    # pipeline() wraps arbitrary keys (different slots, different shards) in MULTI/EXEC.
    with r.pipeline() as p:
        for i in range(20):
            p.set(f"key:{i}", i)
        p.incr("key:3", 100)
        p.mget([f"key:{i}" for i in range(20)])
        res = p.execute()
    assert res[:20] == [True] * 20, res
    assert res[20] == 103, res
    assert res[21][3] == b"103" and res[21][19] == b"19", res

    # A runtime error inside EXEC: redis-py raises it, the other commands ran.
    r.set("s", "text")
    with r.pipeline() as p:
        p.incr("s").set("after", "yes")
        try:
            p.execute()
            raise AssertionError("expected a ResponseError")
        except redis.ResponseError as e:
            assert "not an integer" in str(e), e
    assert r.get("after") == b"yes"

    # raise_on_error=False hands back the error in place.
    with r.pipeline() as p:
        p.incr("s").get("after")
        res = p.execute(raise_on_error=False)
    assert isinstance(res[0], redis.ResponseError) and res[1] == b"yes", res

    # A queuing error discards the transaction.
    with r.pipeline() as p:
        p.execute_command("NOSUCHCOMMAND", "x")
        p.set("never", 1)
        try:
            p.execute()
            raise AssertionError("expected an error")
        except redis.ResponseError as e:
            assert "unknown command" in str(e) or "EXECABORT" in str(e), e
    assert r.get("never") is None


def check_watch(r):
    r.set("balance", 100)

    def spend(pipe):
        v = int(pipe.get("balance"))
        pipe.multi()
        pipe.set("balance", v - 1)

    threads = []
    for _ in range(4):
        t = threading.Thread(target=lambda: [r.transaction(spend, "balance") for _ in range(25)])
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    assert int(r.get("balance")) == 0, r.get("balance")

    # A watched key changed by someone else: WatchError.
    other = redis.Redis(port=r.connection_pool.connection_kwargs["port"])
    with r.pipeline() as p:
        p.watch("w")
        other.set("w", "changed")
        p.multi()
        p.set("w", "mine")
        try:
            p.execute()
            raise AssertionError("expected WatchError")
        except redis.WatchError:
            pass
    assert r.get("w") == b"changed"


def check_pubsub(r, port):
    ps = r.pubsub()
    ps.subscribe("news")
    ps.psubscribe("news.*")
    assert ps.get_message(timeout=5)["type"] == "subscribe"
    assert ps.get_message(timeout=5)["type"] == "psubscribe"
    assert r.publish("news", "a") == 1
    assert r.publish("news.sport", "b") == 1
    m = ps.get_message(timeout=5)
    assert (m["type"], m["channel"], m["data"]) == ("message", b"news", b"a"), m
    m = ps.get_message(timeout=5)
    assert (m["type"], m["pattern"], m["channel"], m["data"]) == ("pmessage", b"news.*", b"news.sport", b"b"), m
    assert r.pubsub_numsub("news") == [(b"news", 1)]
    assert r.pubsub_numpat() == 1
    assert b"news" in r.pubsub_channels()
    ps.unsubscribe()
    ps.punsubscribe()
    ps.close()

    # RESP3 client: pushes arrive through the handler.
    r3 = redis.Redis(port=port, protocol=3)
    got = []
    ps3 = r3.pubsub()
    ps3.subscribe(**{"feed": lambda m: got.append(m["data"])})
    deadline = time.time() + 5
    while r.pubsub_numsub("feed")[0][1] != 1 and time.time() < deadline:
        ps3.get_message(timeout=0.01)
    for i in range(100):
        r.publish("feed", str(i))
    deadline = time.time() + 10
    while len(got) < 100 and time.time() < deadline:
        ps3.get_message(timeout=0.1)
    ps3.close()
    assert got == [str(i).encode() for i in range(100)], got[:10]

    # Keyspace notifications.
    r.config_set("notify-keyspace-events", "KEA")
    ps = r.pubsub()
    ps.psubscribe("__keyspace@0__:*")
    ps.get_message(timeout=5)
    r.set("watched", 1)
    r.expire("watched", 100)
    r.delete("watched")
    events = []
    for _ in range(3):
        m = ps.get_message(timeout=5)
        events.append((m["channel"], m["data"]))
    assert events == [(b"__keyspace@0__:watched", e) for e in (b"set", b"expire", b"del")], events
    r.config_set("notify-keyspace-events", "")
    ps.close()


def main():
    port = int(sys.argv[1])
    r = redis.Redis(port=port)
    check_pipelines(r)
    check_watch(r)
    check_pubsub(r, port)
    print("txn-pubsub ok")


if __name__ == "__main__":
    main()
