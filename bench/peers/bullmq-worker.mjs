// The BullMQ worker of the peer benchmark, its own process (like the SDK
// app): no-op jobs. BENCH_QUEUE: queue name; BENCH_CONCURRENCY: jobs in flight.
import { Worker } from 'bullmq';
import IORedis from 'ioredis';

const connection = new IORedis(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const worker = new Worker(process.env.BENCH_QUEUE, async () => 0, {
  connection,
  concurrency: Number(process.env.BENCH_CONCURRENCY ?? 16),
});
await worker.waitUntilReady();
process.on('message', async (msg) => {
  if (msg?.cmd === 'exit') {
    await worker.close();
    await connection.quit();
    process.exit(0);
  }
});
process.send({ ready: true });
