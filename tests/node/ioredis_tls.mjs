// ioredis over TLS against the server whose TLS port is MOONSHARD_TLS_PORT
// (started by tests/node_clients.rs), trusting MOONSHARD_CA and presenting
// the client certificate MOONSHARD_CERT/MOONSHARD_KEY: commands, a
// pipeline, a script through defineCommand, pub/sub. Exits non-zero on any failure.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import IORedis from 'ioredis';

const port = Number(process.env.MOONSHARD_TLS_PORT);
const tls = {
  ca: readFileSync(process.env.MOONSHARD_CA),
  cert: readFileSync(process.env.MOONSHARD_CERT),
  key: readFileSync(process.env.MOONSHARD_KEY),
  servername: 'localhost',
};
const options = { host: '127.0.0.1', port, tls, maxRetriesPerRequest: 1, connectTimeout: 5000 };
const redis = new IORedis(options);
const sub = new IORedis(options);
const timer = setTimeout(() => {
  console.error('timed out');
  process.exit(2);
}, 20000);

try {
  assert.equal(await redis.set('{t}k', 'over tls'), 'OK');
  assert.equal(await redis.get('{t}k'), 'over tls');
  const big = 'x'.repeat(200000);
  await redis.set('{t}big', big);
  assert.equal(await redis.get('{t}big'), big);
  const results = await redis.pipeline().incr('{t}n').incr('{t}n').lpush('{t}l', 'a', 'b').lrange('{t}l', 0, -1).exec();
  assert.deepEqual(results.map(([err, v]) => v), [1, 2, 2, ['b', 'a']]);
  redis.defineCommand('bump', { numberOfKeys: 1, lua: "return redis.call('INCRBY', KEYS[1], ARGV[1])" });
  assert.equal(await redis.bump('{t}n', 10), 12);
  await redis.script('FLUSH');
  assert.equal(await redis.bump('{t}n', 1), 13); // NOSCRIPT recovered by ioredis
  const got = new Promise((resolve) => sub.on('message', (ch, msg) => resolve([ch, msg])));
  await sub.subscribe('news');
  assert.equal(await redis.publish('news', 'hello'), 1);
  assert.deepEqual(await got, ['news', 'hello']);
  console.log('ioredis tls ok');
} finally {
  clearTimeout(timer);
  redis.disconnect();
  sub.disconnect();
}
