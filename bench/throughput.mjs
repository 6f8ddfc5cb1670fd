// (2) Throughput: no-op calls per second end to end. Calls are dispatched in
// batches through the API (DispatchService.Dispatch), the scheduler (its own
// process) runs each through the Run endpoint of a real SDK app (its own
// process) over HTTP with signed requests (the app verifies them), and
// records each result. The clock starts before the first batch is sent and
// stops when the store counts every call as succeeded (List counts, polled
// every 25 ms). A warm-up of `warmup` calls runs first on the same processes
// (JIT, connections, the adaptive concurrency limit) and is not counted;
// with several instances, `warmup` calls per instance.
//
// Stores: SQLite (a file in a temporary directory, synchronous NORMAL or
// FULL) or PostgreSQL (a scratch schema on the machine's server, dropped
// after) with one or several scheduler instances; batches are spread over
// the instances' APIs in turn.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeArgs, generateSigningKeyPair, privateKeyToPem } from '@dispatch/core/protocol';
import { check, now } from './lib/common.mjs';
import { startApp, startInProcessStack, startScheduler, tempDir, waitForFinished } from './lib/harness.mjs';
import { scratchSchema } from './lib/pg.mjs';

/**
 * The limits `noopLimited` declares in the app, as the SDK puts them on
 * each call (`Call.limits`): never binding (100,000 at once, 1,000,000/s).
 */
const NON_BINDING_LIMITS = { concurrency: 100_000, rateCount: 1_000_000, ratePeriodMs: 1000 };

async function dispatchAll(clients, endpoint, count, batch, limited = false) {
  const input = encodeArgs([]);
  const call = limited ? { function: 'noopLimited', endpoint, input, limits: NON_BINDING_LIMITS } : { function: 'noop', endpoint, input };
  let turn = 0;
  for (let sent = 0; sent < count; sent += batch) {
    const n = Math.min(batch, count - sent);
    const client = clients[turn++ % clients.length];
    const ids = await client.dispatch(Array.from({ length: n }, () => ({ ...call })));
    check(ids.length === n, `dispatched ${n} calls, got ${ids.length} IDs`);
  }
}

/**
 * One run on a fresh store. `store`: 'sqlite' (with `synchronous`) or
 * 'postgres' (with `instances`). `signatures: false` leaves the app without
 * a verification key (the scheduler still signs): a diagnostic only.
 */
export async function throughputRun({
  calls = 10_000,
  batch = 1000,
  warmup = 1000,
  store = 'sqlite',
  synchronous = 'NORMAL',
  instances = 1,
  signatures = true,
  inProcess = false,
  limited = false,
  profileDir,
} = {}) {
  const tmp = tempDir();
  const schema = store === 'postgres' ? await scratchSchema('dispatch_bench_tp') : null;
  const schedulers = [];
  let app;
  try {
    if (schema) {
      const keys = generateSigningKeyPair();
      const pg = { url: schema.url, apiKey: `dsk_bench_${randomBytes(12).toString('base64url')}`, signingKey: privateKeyToPem(keys.privateKey) };
      // The first instance migrates the schema; the others start on it.
      schedulers.push(await startScheduler({ pg, profileDir, profileName: 'scheduler-0' }));
      schedulers.push(
        ...(await Promise.all(
          Array.from({ length: instances - 1 }, (_, i) => startScheduler({ pg, profileDir, profileName: `scheduler-${i + 1}` })),
        )),
      );
    } else if (inProcess) {
      const stack = await startInProcessStack({ db: join(tmp.dir, 'scheduler.db'), synchronous, profileDir });
      schedulers.push(stack.scheduler);
      app = stack.app;
    } else {
      schedulers.push(await startScheduler({ db: join(tmp.dir, 'scheduler.db'), synchronous, profileDir }));
    }
    const main = schedulers[0];
    const clients = schedulers.map((s) => s.client);
    app ??= await startApp({ verificationKey: signatures ? main.verificationKey : null, profileDir });
    const endpoint = app.url;
    // Each instance is warmed as much as a single one would be (JIT, pool connections, its concurrency limit):
    // `warmup` calls per instance, spread over their APIs.
    const warmed = warmup * schedulers.length;
    if (warmed > 0) {
      await dispatchAll(clients, endpoint, warmed, batch, limited);
      await waitForFinished(main.client, warmed);
    }
    const inFlight = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const h = await Promise.all(clients.map((c) => c.health()));
        inFlight.push(h.reduce((sum, x) => sum + (x.inFlight ?? 0), 0));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const start = now();
    await dispatchAll(clients, endpoint, calls, batch, limited);
    const dispatchedMs = now() - start;
    const counts = await waitForFinished(main.client, warmed + calls, { everyMs: 25 });
    const ms = now() - start;
    sampling = false;
    await sampler;
    check(counts.succeeded === warmed + calls, `expected ${warmed + calls} succeeded calls, counts ${JSON.stringify(counts)}`);
    const stats = await app.stats();
    check(stats.stats.starts >= warmed + calls, `the app started ${stats.stats.starts} runs for ${warmed + calls} calls`);
    inFlight.sort((a, b) => a - b);
    return {
      calls,
      warmup,
      ms,
      perSecond: (calls / ms) * 1000,
      dispatchPerSecond: (calls / dispatchedMs) * 1000,
      inFlightMedian: inFlight[inFlight.length >> 1] ?? 0,
      inFlightMax: inFlight[inFlight.length - 1] ?? 0,
      schedulerPeakRss: Math.max(...schedulers.map((s) => s.memory().peak)),
      appPeakRss: stats.memory.peak,
      appRuns: stats.stats.starts,
    };
  } finally {
    await app?.stop();
    await Promise.all(schedulers.map((s) => s.stop()));
    await schema?.drop();
    tmp.cleanup();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick');
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  const r = await throughputRun({
    calls: Number(arg('--calls', quick ? 2000 : 10_000)),
    warmup: quick ? 200 : 1000,
    store: arg('--store', 'sqlite'),
    synchronous: arg('--sync', 'NORMAL'),
    instances: Number(arg('--instances', 1)),
    signatures: !process.argv.includes('--unsigned'),
    inProcess: process.argv.includes('--in-process'),
    limited: process.argv.includes('--limited'),
  });
  console.log(JSON.stringify(r));
}
