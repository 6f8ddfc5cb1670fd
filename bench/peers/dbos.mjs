// Peer: DBOS (@dbos-inc/dbos-sdk) on the machine's PostgreSQL. The bench
// creates a database of its own for DBOS's system tables and drops it at the
// end. DBOS runs workflows inside the app process (dbos-app.mjs), so its
// figures have one process and PostgreSQL where ours have a scheduler and an
// app talking HTTP.
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { check, forkWorker } from '../lib/common.mjs';

export const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Creates a scratch database; returns its URL and a drop function. */
export async function scratchDatabase(prefix) {
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Starts DBOS in its own process on a scratch database; `fn(worker)`; then cleans up. */
export async function withDbos(fn) {
  const db = await scratchDatabase('dispatch_bench_dbos');
  let worker;
  try {
    worker = await forkWorker(fileURLToPath(new URL('./dbos-app.mjs', import.meta.url)), {
      env: { BENCH_DBOS_URL: db.url },
      label: 'dbos-app',
      execArgv: ['--no-deprecation'],
    });
    const run = async (cmd, n, expected) => {
      const r = await worker.request({ cmd, n });
      check(r.ok, `DBOS ${cmd}(${n}) failed: ${r.error}`);
      check(r.value === expected, `DBOS ${cmd}(${n}) returned ${r.value}, expected ${expected}`);
      return r;
    };
    return await fn({ run, pid: worker.pid });
  } finally {
    await worker?.stop();
    await db.drop();
  }
}

const sumOfSquares = (n) => {
  let s = 0;
  for (let i = 0; i < n; i++) s += i * i;
  return s;
};

/** Throughput of no-op workflows: started in batches of 1,000, all results awaited. */
export async function dbosThroughput({ calls = 10_000, runs = 3, log = () => {} } = {}) {
  return withDbos(async ({ run }) => {
    await run('throughput', 1000, 1000); // warm-up
    const perSecond = [];
    for (let r = 0; r < runs; r++) {
      const { ms } = await run('throughput', calls, calls);
      perSecond.push((calls / ms) * 1000);
      log(`  DBOS: ${calls} no-op workflows in ${ms.toFixed(0)} ms (${Math.round((calls / ms) * 1000)}/s)`);
    }
    return { perSecond };
  });
}

/** Sequential inline steps and child workflows; fan-in of child workflows. */
export async function dbosSequential({ sizes = [100, 1000, 10_000], faninSizes = [1000], runs = 3, repeatBelowMs = 30_000, log = () => {} } = {}) {
  return withDbos(async ({ run }) => {
    await run('inlineSteps', 500, 500);
    await run('childWorkflows', 200, 200);
    const out = { inlineSteps: {}, childWorkflows: {}, fanin: {} };
    for (const kind of ['inlineSteps', 'childWorkflows']) {
      for (const n of sizes) {
        out[kind][n] = { totalMs: [] };
        for (let r = 0; r < runs; r++) {
          const { ms } = await run(kind, n, n);
          out[kind][n].totalMs.push(ms);
          log(`  DBOS ${kind} ${n}: ${ms.toFixed(0)} ms (${((ms / n) * 1000).toFixed(0)} µs/step)`);
          if (ms > repeatBelowMs) break;
        }
      }
    }
    for (const n of faninSizes) {
      out.fanin[n] = { ms: [] };
      for (let r = 0; r < runs; r++) {
        const { ms } = await run('fanin', n, sumOfSquares(n));
        out.fanin[n].ms.push(ms);
        log(`  DBOS fan-in of ${n} child workflows: ${ms.toFixed(0)} ms`);
      }
    }
    return out;
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  console.log(JSON.stringify(await dbosThroughput({ calls: quick ? 2000 : 10_000, runs: quick ? 1 : 3, log: console.log })));
  console.log(JSON.stringify(await dbosSequential({ sizes: quick ? [100] : [100, 1000], runs: 1, log: console.log })));
}
