// Peer: BullMQ on the machine's Redis, ioredis installed beside it. Jobs are
// added in batches of 1,000 (addBulk) by this process, run by a worker
// process, and the clock stops when Redis counts every job as completed (its
// return value stored), polled like our scheduler's counts.
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { check, forkWorker, now } from '../lib/common.mjs';

export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function oneRun(connection, jobs, concurrency, batch, warm) {
  const name = `dispatch-bench-${process.pid}-${Date.now().toString(36)}`;
  const queue = new Queue(name, { connection });
  const worker = await forkWorker(fileURLToPath(new URL('./bullmq-worker.mjs', import.meta.url)), {
    env: { BENCH_QUEUE: name, BENCH_CONCURRENCY: String(concurrency), BENCH_REDIS_URL: REDIS_URL },
    label: 'bullmq-worker',
  });
  try {
    const addAll = async (count) => {
      for (let sent = 0; sent < count; sent += batch) {
        const n = Math.min(batch, count - sent);
        await queue.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'noop', data: { i } })));
      }
    };
    const waitCompleted = async (count) => {
      const deadline = Date.now() + 300_000;
      for (;;) {
        const c = await queue.getJobCounts('completed', 'failed');
        check(c.failed === 0, `${c.failed} BullMQ jobs failed`);
        if (c.completed >= count) return;
        if (Date.now() > deadline) throw new Error(`only ${c.completed} of ${count} BullMQ jobs completed within 300 s`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    await addAll(warm);
    await waitCompleted(warm);
    const start = now();
    await addAll(jobs);
    await waitCompleted(warm + jobs);
    return now() - start;
  } finally {
    await worker.stop();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

/** `warmup`: jobs run on the same worker before the clock starts (as ours: `WARMUP_CALLS` in lib/common.mjs). */
export async function bullmqThroughput({ jobs = 10_000, warmup = 1000, concurrencies = [16, 100], runs = 3, log = () => {} } = {}) {
  const connection = new IORedis(REDIS_URL, { maxRetriesPerRequest: null });
  try {
    const info = await connection.info('server');
    const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    const out = { redisVersion, jobs, warmup, perSecond: {} };
    for (const c of concurrencies) {
      out.perSecond[c] = [];
      for (let r = 0; r < runs; r++) {
        const ms = await oneRun(connection, jobs, c, 1000, warmup);
        out.perSecond[c].push((jobs / ms) * 1000);
        log(`  BullMQ, worker concurrency ${c}: ${jobs} jobs in ${ms.toFixed(0)} ms (${Math.round((jobs / ms) * 1000)}/s)`);
      }
    }
    return out;
  } finally {
    await connection.quit();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  console.log(JSON.stringify(await bullmqThroughput({ jobs: quick ? 2000 : 10_000, runs: quick ? 1 : 3, log: console.log })));
}
