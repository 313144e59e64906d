// ioredis `Cluster` and BullMQ against a 3-master moonshard cluster, in two
// phases around a `redis-cli --cluster reshard` (tests/cluster_clients.rs):
// EVALSHA through defineCommand with hash-tagged keys, pipelines, pub/sub
// across nodes, and a BullMQ queue with a `{prefix}`.
// Usage: node cluster_apps.mjs PORT before|after
import assert from 'node:assert/strict';
import { Queue, Worker, QueueEvents } from 'bullmq';
import IORedis from 'ioredis';
import calculateSlot from 'cluster-key-slot';

const port = Number(process.argv[2]);
const phase = process.argv[3];
const nodes = [{ host: '127.0.0.1', port }];
const opened = [];
const cluster = () => {
  const c = new IORedis.Cluster(nodes, { redisOptions: { maxRetriesPerRequest: null } });
  opened.push(c);
  return c;
};
const rc = cluster();

const SEED = `local n = 0
for i = 1, #ARGV do
  redis.call("LPUSH", KEYS[1], ARGV[i])
  n = n + tonumber(ARGV[i])
end
redis.call("INCRBY", KEYS[2], n)
return n`;
rc.defineCommand('seed', { numberOfKeys: 2, lua: SEED });

// Half of the tags in the first slots, which the resharding moves.
const tags = Array.from({ length: 20 }, (_, i) => `{n${i}}`);
for (let i = 0; tags.length < 40; i++) {
  if (calculateSlot(`{m${i}}`) < 100) tags.push(`{m${i}}`);
}
for (const t of tags) {
  assert.equal(await rc.seed(`${t}list`, `${t}sum`, 1, 2, 3), 6);
}
// Pipelines of one slot (ioredis Cluster requires it) on every tag.
const piped = tags.slice(15, 25);
for (const t of piped) {
  const out = await rc.pipeline().incr(`${t}${phase}:c`).set(`${t}${phase}:k`, 'v').get(`${t}${phase}:k`).exec();
  assert.deepEqual(out, [[null, 1], [null, 'OK'], [null, 'v']]);
}
if (phase === 'after') {
  for (const t of tags) {
    assert.equal(await rc.llen(`${t}list`), 6);
    assert.equal(await rc.get(`${t}sum`), '12');
  }
  for (const t of piped) assert.equal(await rc.get(`${t}before:k`), 'v');
}

// Pub/sub: ioredis subscribes through one node; PUBLISH is sent to each
// master in turn, the bus carries it to the subscriber's node.
const sub = cluster();
const channel = `news-${phase}`;
const got = new Set();
const all = new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`pub/sub: got only ${[...got]}`)), 10000);
  sub.on('message', (ch, msg) => {
    if (ch === channel) got.add(msg);
    if (got.size === 3) {
      clearTimeout(timer);
      resolve();
    }
  });
});
await sub.subscribe(channel);
for (const node of rc.nodes('master')) {
  await node.publish(channel, `via ${node.options.port}`);
}
await all;
sub.disconnect();

// BullMQ: a queue with a hash-tagged prefix (every key in one slot).
const connection = cluster();
const name = `q-${phase}`;
const queue = new Queue(name, { connection, prefix: '{bq}' });
const events = new QueueEvents(name, { connection: cluster(), prefix: '{bq}' });
await events.waitUntilReady();
const done = [];
const worker = new Worker(name, async (job) => job.data.n * 2, { connection: cluster(), prefix: '{bq}' });
const finished = new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`bullmq: ${done.length} done`)), 20000);
  worker.on('completed', (job, result) => {
    done.push(result);
    if (done.length === 20) {
      clearTimeout(timer);
      resolve();
    }
  });
});
for (let n = 0; n < 20; n++) await queue.add('double', { n });
await finished;
assert.deepEqual(done.sort((a, b) => a - b), Array.from({ length: 20 }, (_, n) => n * 2));
const counts = await queue.getJobCounts('completed', 'waiting', 'failed');
assert.equal(counts.completed, 20);
assert.equal(counts.failed, 0);
await worker.close();
await events.close();
await queue.close();
for (const c of opened) c.disconnect();
console.log(`cluster apps ${phase} ok`);
// BullMQ's blocking connections may linger a moment: do not wait for them.
process.exit(0);
