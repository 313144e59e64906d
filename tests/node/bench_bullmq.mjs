// BullMQ throughput: JOBS jobs through QUEUES queues (add -> worker with
// CONCURRENCY -> completed), against the server on PORT with key PREFIX.
// Prints one line: `bullmq jobs=N seconds=S jobs_per_sec=R`.
// Used by benches/apps/run.sh (lives here for node_modules): node tests/node/bench_bullmq.mjs
import { Queue, Worker } from 'bullmq';

const port = Number(process.env.PORT ?? 6379);
const jobs = Number(process.env.JOBS ?? 20000);
const queues = Number(process.env.QUEUES ?? 4);
const concurrency = Number(process.env.CONCURRENCY ?? 16);
const prefix = process.env.PREFIX ?? 'bull';
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
const perQueue = Math.ceil(jobs / queues);

const timer = setTimeout(() => {
  console.error('bullmq bench timed out');
  process.exit(2);
}, Number(process.env.TIMEOUT_MS ?? 300000));

const started = process.hrtime.bigint();
let done = 0;
const all = [];
const closers = [];
for (let q = 0; q < queues; q++) {
  const name = `bench-${process.pid}-${q}`;
  const queue = new Queue(name, { connection, prefix });
  closers.push(queue);
  let finished;
  const completed = new Promise((resolve) => (finished = resolve));
  let mine = 0;
  const worker = new Worker(name, async (job) => job.data.n * 2, {
    connection,
    prefix,
    concurrency,
    removeOnComplete: { count: 1000 },
  });
  worker.on('completed', () => {
    done++;
    if (++mine === perQueue) finished();
  });
  closers.push(worker);
  all.push(completed);
  // Adds in bulk batches, as producers of high-volume queues do.
  for (let i = 0; i < perQueue; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(i + 100, perQueue); j++) batch.push({ name: 'j', data: { n: j } });
    await queue.addBulk(batch);
  }
}
await Promise.all(all);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(`bullmq jobs=${done} seconds=${seconds.toFixed(2)} jobs_per_sec=${(done / seconds).toFixed(0)}`);
clearTimeout(timer);
for (const c of closers) await c.close();
process.exit(0);
