"""redis-py over TLS (ssl=True). Usage: tls_client.py PORT CA [CERT KEY]
Checks commands, a pipeline and pub/sub over TLS; with CERT and KEY the
client presents that certificate. Prints "tls ok" when everything passed,
"refused" when the server ended the handshake."""
import sys

import redis

port, ca = int(sys.argv[1]), sys.argv[2]
extra = {}
if len(sys.argv) > 4:
    extra = {"ssl_certfile": sys.argv[3], "ssl_keyfile": sys.argv[4]}
r = redis.Redis(host="localhost", port=port, ssl=True, ssl_ca_certs=ca, **extra)
try:
    r.ping()
except redis.exceptions.ConnectionError as e:
    print("refused", e)
    sys.exit(0)

r.set("tls:key", "x" * 100_000)
assert r.get("tls:key") == b"x" * 100_000
r.delete("tls:counter")
p = r.pipeline(transaction=True)
for i in range(200):
    p.incr("tls:counter")
assert p.execute()[-1] == 200

sub = r.pubsub()
sub.subscribe("tls:chan")
assert sub.get_message(timeout=2)["type"] == "subscribe"
assert r.publish("tls:chan", "hello") == 1
msg = sub.get_message(timeout=2)
assert msg and msg["data"] == b"hello", msg
# A blocked command's reply also travels over TLS.
assert r.blpop(["tls:list"], timeout=0.1) is None
print("tls ok")
