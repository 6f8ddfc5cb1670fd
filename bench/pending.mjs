// (6) Scheduler memory with many pending calls. The calls are dispatched to
// an endpoint that accepts connections and never answers: the scheduler
// sends as many RunRequests as its adaptive concurrency allows (16 at first;
// with no answer the limit never moves) and every other call stays pending
// in the store, dispatched but not runnable. The scheduler is a process of
// its own; its RSS is read from /proc after the last batch is stored and the
// process has settled, with the peak (VmHWM) since it started.
import { createServer } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeArgs } from '@dispatch/core/protocol';
import { check, mb, now, sleep } from './lib/common.mjs';
import { startScheduler, tempDir } from './lib/harness.mjs';

export async function pending({ calls = 100_000, batch = 1000, settleMs = 3000, log = () => {} } = {}) {
  const held = new Set();
  const hung = createServer((req, res) => {
    held.add(res);
    req.resume();
  });
  await new Promise((resolve) => hung.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${hung.address().port}`;
  const tmp = tempDir();
  const scheduler = await startScheduler({ db: join(tmp.dir, 'scheduler.db') });
  try {
    const idle = scheduler.memory();
    const input = encodeArgs(['pending']);
    const start = now();
    for (let sent = 0; sent < calls; sent += batch) {
      const n = Math.min(batch, calls - sent);
      const ids = await scheduler.client.dispatch(Array.from({ length: n }, () => ({ function: 'noop', endpoint, input })));
      check(ids.length === n, `dispatched ${n}, got ${ids.length} IDs`);
    }
    const dispatchMs = now() - start;
    await sleep(settleMs);
    const mem = scheduler.memory();
    const { counts } = await scheduler.client.list({ limit: 1 });
    check(counts.pending + counts.running === calls, `expected ${calls} pending or running calls, counts ${JSON.stringify(counts)}`);
    log(
      `  ${calls} pending calls (${counts.running} in flight to a hung endpoint): scheduler RSS ${mb(mem.rss).toFixed(0)} MB (peak ${mb(mem.peak).toFixed(0)} MB, idle ${mb(idle.rss).toFixed(0)} MB); dispatched in ${dispatchMs.toFixed(0)} ms`,
    );
    return { calls, pending: counts.pending, running: counts.running, rss: mem.rss, peak: mem.peak, idleRss: idle.rss, dispatchMs };
  } finally {
    // The runs in flight never end: kill rather than drain.
    await scheduler.kill();
    for (const res of held) res.destroy();
    hung.closeAllConnections();
    hung.close();
    tmp.cleanup();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  console.log(JSON.stringify(await pending({ calls: quick ? 5000 : 100_000, settleMs: quick ? 500 : 3000, log: console.log })));
}
