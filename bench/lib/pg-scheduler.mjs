// A scheduler process on the PostgreSQL store, for the benchmarks: the same
// Scheduler class as `dispatch serve`, with a PgStore. Used while the
// scheduler's own process entry (main.js) takes SQLite paths only. Prints one
// JSON line when ready ({ url, apiKey, verificationKey, pid }) like main.js;
// SIGTERM closes gracefully.
//
// Environment: BENCH_PG_DB (postgres://…?schema=…), BENCH_API_KEY,
// BENCH_SIGNING_KEY (PEM; instances of one cluster share both).
import { Scheduler } from '@dispatch/scheduler';
import { loadPgStore } from './pg.mjs';

const PgStore = await loadPgStore();
const store = await PgStore.open({ url: process.env.BENCH_PG_DB });
const scheduler = await Scheduler.start({
  store,
  port: 0,
  logLevel: 'warn',
  apiKeys: [process.env.BENCH_API_KEY],
  signingKey: process.env.BENCH_SIGNING_KEY,
});
process.stdout.write(
  `${JSON.stringify({ url: scheduler.url, apiKey: scheduler.apiKey, verificationKey: scheduler.verificationKey, pid: process.pid })}\n`,
);
let stopping = false;
process.on('SIGTERM', async () => {
  if (stopping) process.exit(130);
  stopping = true;
  await scheduler.close();
  await store.close();
  process.exit(0);
});
