// The DBOS side of the peer benchmarks, run as its own process: DBOS is a
// library, so workflows run in the app process and checkpoint to PostgreSQL.
// Commands arrive over IPC: { cmd, n } → { ok, ms, value, memory }.
// BENCH_DBOS_URL: the system database (created and dropped by dbos.mjs).
import { DBOS } from '@dbos-inc/dbos-sdk';
import { memoryOf } from '../lib/common.mjs';

const noop = DBOS.registerWorkflow(async () => 0, { name: 'noop' });

const child = DBOS.registerWorkflow(async (n) => n + 1, { name: 'child' });

const inlineSteps = DBOS.registerWorkflow(
  async (count) => {
    let n = 0;
    for (let i = 0; i < count; i++) n = await DBOS.runStep(async () => n + 1, { name: 'inc' });
    return n;
  },
  { name: 'inlineSteps' },
);

const childWorkflows = DBOS.registerWorkflow(
  async (count) => {
    let n = 0;
    for (let i = 0; i < count; i++) n = await child(n);
    return n;
  },
  { name: 'childWorkflows' },
);

const square = DBOS.registerWorkflow(async (n) => n * n, { name: 'square' });

const fanin = DBOS.registerWorkflow(
  async (count) => {
    const handles = [];
    for (let i = 0; i < count; i++) handles.push(await DBOS.startWorkflow(square)(i));
    let sum = 0;
    for (const h of handles) sum += await h.getResult();
    return sum;
  },
  { name: 'fanin' },
);

DBOS.setConfig({ name: 'dispatch-bench', systemDatabaseUrl: process.env.BENCH_DBOS_URL, logLevel: 'error' });
await DBOS.launch();

async function throughput(count, batch) {
  for (let sent = 0; sent < count; sent += batch) {
    const n = Math.min(batch, count - sent);
    const handles = await Promise.all(Array.from({ length: n }, () => DBOS.startWorkflow(noop)()));
    // Started workflows run in the background; results are awaited at the end.
    pendingHandles.push(...handles);
  }
  const results = await Promise.all(pendingHandles.splice(0).map((h) => h.getResult()));
  return results.length;
}
const pendingHandles = [];

const commands = {
  throughput: (n) => throughput(n, 1000),
  inlineSteps: (n) => inlineSteps(n),
  childWorkflows: (n) => childWorkflows(n),
  fanin: (n) => fanin(n),
};

process.on('message', async (msg) => {
  if (msg.cmd === 'exit') {
    await DBOS.shutdown();
    process.exit(0);
  }
  try {
    const start = performance.now();
    const value = await commands[msg.cmd](msg.n);
    process.send({ ok: true, ms: performance.now() - start, value, memory: memoryOf(process.pid) });
  } catch (err) {
    process.send({ ok: false, error: String(err?.stack ?? err) });
  }
});
process.send({ ready: true });
