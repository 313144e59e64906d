// BullMQ and ioredis against the server on MOONSHARD_PORT (started by
// tests/node_clients.rs). By default the queue uses the hash-tagged prefix
// `{jobs}` so every key of a queue lives in one slot, as on Redis Cluster;
// MOONSHARD_BULL_PREFIX=bull (BullMQ's own default) runs the same tests over
// untagged keys, for `--keyspace-mode standalone`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Queue, Worker, QueueEvents, FlowProducer } from 'bullmq';
import IORedis from 'ioredis';

const port = Number(process.env.MOONSHARD_PORT);
assert.ok(port > 0, 'MOONSHARD_PORT must name the server port');
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
const prefix = process.env.MOONSHARD_BULL_PREFIX ?? '{jobs}';
const closers = [];
after(async () => {
  for (const c of closers.reverse()) await c.close();
});

let seq = 0;
const queueName = (base) => `${base}-${process.pid}-${++seq}`;

/** Resolves when `pred` is true for the QueueEvents event stream; fails after `ms`. */
function waitFor(events, name, pred, ms = 15000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for '${name}'`)), ms);
    const on = (arg) => {
      if (pred(arg)) {
        clearTimeout(timer);
        events.off(name, on);
        resolve(arg);
      }
    };
    events.on(name, on);
  });
}

async function setup(base) {
  const name = queueName(base);
  const queue = new Queue(name, { connection, prefix });
  const events = new QueueEvents(name, { connection, prefix });
  closers.push(queue, events);
  await queue.waitUntilReady();
  await events.waitUntilReady();
  return { name, queue, events };
}

test('plain, delayed and prioritized jobs run end to end', { timeout: 30000 }, async () => {
  const { name, queue, events } = await setup('basic');
  let completed = 0;
  const allDone = waitFor(events, 'completed', () => ++completed === 4);

  const plain = await queue.add('plain', { x: 1 });
  const delayed = await queue.add('delayed', { x: 2 }, { delay: 300 });
  const low = await queue.add('low', { x: 3 }, { priority: 10 });
  const high = await queue.add('high', { x: 4 }, { priority: 1 });
  assert.equal(await queue.getJobState(delayed.id), 'delayed');
  assert.equal(await queue.getJobState(low.id), 'prioritized');

  const order = [];
  const worker = new Worker(
    name,
    async (job) => {
      order.push(job.name);
      await job.updateProgress(50);
      return job.data.x * 10;
    },
    { connection, prefix },
  );
  closers.push(worker);
  await allDone;

  assert.ok(order.indexOf('high') < order.indexOf('low'), `priority order: ${order}`);
  assert.equal(order.length, 4);
  for (const [job, want] of [[plain, 10], [delayed, 20], [low, 30], [high, 40]]) {
    const j = await queue.getJob(job.id);
    assert.equal(j.returnvalue, want);
    assert.equal(await j.getState(), 'completed');
  }
  const counts = await queue.getJobCounts('completed', 'failed', 'wait', 'delayed', 'prioritized');
  assert.deepEqual(counts, { completed: 4, failed: 0, wait: 0, delayed: 0, prioritized: 0 });
});

test('failures retry with backoff, then succeed or fail for good', { timeout: 30000 }, async () => {
  const { name, queue, events } = await setup('retry');
  const flaky = await queue.add('flaky', {}, { attempts: 3, backoff: { type: 'fixed', delay: 100 } });
  const doomed = await queue.add('doomed', {}, { attempts: 2, backoff: { type: 'exponential', delay: 50 } });
  const flakyDone = waitFor(events, 'completed', ({ jobId }) => jobId === flaky.id);
  const doomedFailed = waitFor(events, 'failed', ({ jobId }) => jobId === doomed.id);

  const worker = new Worker(
    name,
    async (job) => {
      if (job.name === 'doomed' || job.attemptsMade < 2) throw new Error(`boom ${job.attemptsMade}`);
      return 'ok';
    },
    { connection, prefix },
  );
  closers.push(worker);
  await flakyDone;
  // The doomed job fails once per attempt; wait for its final state.
  await doomedFailed;
  for (let i = 0; i < 100 && (await queue.getJobState(doomed.id)) !== 'failed'; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const f = await queue.getJob(flaky.id);
  assert.equal(f.returnvalue, 'ok');
  assert.equal(f.attemptsMade, 3);
  const d = await queue.getJob(doomed.id);
  assert.equal(await d.getState(), 'failed');
  assert.equal(d.attemptsMade, 2);
  assert.match(d.failedReason, /boom/);
});

test('queue events stream carries the job lifecycle', { timeout: 30000 }, async () => {
  const { name, queue, events } = await setup('events');
  const seen = [];
  for (const ev of ['added', 'waiting', 'active', 'progress', 'completed']) {
    events.on(ev, ({ jobId }) => seen.push(`${ev}:${jobId}`));
  }
  const job = await queue.add('watched', { n: 1 });
  const done = waitFor(events, 'completed', ({ jobId }) => jobId === job.id);
  const worker = new Worker(
    name,
    async (j) => {
      await j.updateProgress(42);
      return 'fine';
    },
    { connection, prefix },
  );
  closers.push(worker);
  const { returnvalue } = await done;
  assert.equal(returnvalue, 'fine');
  for (const ev of ['active', 'progress', 'completed']) {
    assert.ok(seen.includes(`${ev}:${job.id}`), `missing ${ev} in ${seen}`);
  }
  // The events live in a stream under the queue's hash tag.
  const r = new IORedis(connection);
  closers.push({ close: () => r.quit() });
  assert.equal(await r.type(`${prefix}:${name}:events`), 'stream');
  assert.ok((await r.xlen(`${prefix}:${name}:events`)) >= 3);
});

test('flows: a parent runs once its children are done, with their values', { timeout: 30000 }, async () => {
  const { name, queue, events } = await setup('flow');
  const flow = new FlowProducer({ connection, prefix });
  closers.push(flow);
  const tree = await flow.add({
    name: 'parent',
    queueName: name,
    data: {},
    children: [1, 2, 3].map((n) => ({ name: `child${n}`, queueName: name, data: { n } })),
  });
  const parentDone = waitFor(events, 'completed', ({ jobId }) => jobId === tree.job.id);
  const worker = new Worker(
    name,
    async (job) => {
      if (job.name !== 'parent') return job.data.n * 2;
      const values = Object.values(await job.getChildrenValues());
      return values.reduce((a, b) => a + b, 0);
    },
    { connection, prefix },
  );
  closers.push(worker);
  const { returnvalue } = await parentDone;
  assert.equal(Number(returnvalue), 12);
  const counts = await queue.getJobCounts('completed', 'waiting-children', 'failed');
  assert.deepEqual(counts, { completed: 4, 'waiting-children': 0, failed: 0 });
});

test('concurrent workers take every job exactly once', { timeout: 30000 }, async () => {
  const { name, queue, events } = await setup('many');
  const total = 200;
  let completed = 0;
  const allDone = waitFor(events, 'completed', () => ++completed === total, 25000);
  await queue.addBulk(Array.from({ length: total }, (_, i) => ({ name: 'n', data: { i } })));
  const seen = new Map();
  for (let w = 0; w < 4; w++) {
    const worker = new Worker(
      name,
      async (job) => {
        seen.set(job.data.i, (seen.get(job.data.i) ?? 0) + 1);
        return job.data.i;
      },
      { connection, prefix, concurrency: 5 },
    );
    closers.push(worker);
  }
  await allDone;
  assert.equal(seen.size, total);
  assert.ok([...seen.values()].every((n) => n === 1), 'a job ran twice');
  const counts = await queue.getJobCounts('completed', 'wait', 'active', 'failed');
  assert.deepEqual(counts, { completed: total, wait: 0, active: 0, failed: 0 });
});

test('ioredis defineCommand recovers from NOSCRIPT', { timeout: 30000 }, async () => {
  const r = new IORedis(connection);
  closers.push({ close: () => r.quit() });
  r.defineCommand('addBoth', {
    numberOfKeys: 2,
    lua: "return {redis.call('INCRBY', KEYS[1], ARGV[1]), redis.call('INCRBY', KEYS[2], ARGV[1])}",
  });
  const a = `{def}:a:${process.pid}`;
  const b = `{def}:b:${process.pid}`;
  assert.deepEqual(await r.addBoth(a, b, 2), [2, 2]);
  await r.script('FLUSH');
  // The cached SHA is gone: ioredis gets NOSCRIPT and falls back to EVAL.
  assert.deepEqual(await r.addBoth(a, b, 3), [5, 5]);
  assert.deepEqual(await r.addBoth(a, b, 1), [6, 6]);
  const pipe = await r.pipeline().addBoth(a, b, 1).addBoth(a, b, 1).exec();
  assert.deepEqual(pipe, [[null, [7, 7]], [null, [8, 8]]]);
});
