// Store-level diagnostic: the SQLite store's CPU per no-op call, without the
// scheduler, a transport or an app. Each round inserts calls in batches of
// 1,000 (as the API does), then claims up to 128 at a time and completes each
// (finish, with its attempt), as the run loop does, all through the store's
// public methods. Not part of `pnpm bench`'s targets: it splits the
// in-process figure into "the store" and "the rest" (bench/profile-notes.md).
//
//   node bench/store.mjs [--calls 30000] [--rounds 3] [--sync NORMAL|FULL]
//
// Prints one JSON object per round: CPU (user + system) and wall time per
// call in microseconds. Run it with `node --cpu-prof` to see where the
// store's time goes.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteStore } from '@dispatch/scheduler';
import { tempDir } from './lib/harness.mjs';

/** IDs in creation order, as the scheduler's ULID-like dispatch IDs are (random ones would touch random index pages). */
let counter = 0;
const nextId = () => `${Date.now().toString(32).padStart(10, '0')}${(counter++).toString(32).padStart(16, '0')}`;

const input = { typeUrl: 'type.googleapis.com/google.protobuf.BytesValue', value: Buffer.from([10, 0]) };
const OK = 1;

/** Inserts, claims and completes `n` no-op calls. */
async function round(store, n) {
  const now0 = Date.now();
  for (let sent = 0; sent < n; sent += 1000) {
    const calls = [];
    for (let i = 0; i < Math.min(1000, n - sent); i++) {
      const id = nextId();
      calls.push({ id, function: 'noop', endpoint: 'http://127.0.0.1:1', input, createdAt: now0, dueAt: now0, expiresAt: now0 + 3_600_000, expirationMs: 3_600_000, rootId: id });
    }
    await store.insertCalls(calls);
  }
  let done = 0;
  while (done < n) {
    const now = Date.now();
    const { calls } = await store.claimDue({ owner: 'bench', now, leaseMs: 60_000, limit: 128, capacity: () => 128 });
    if (calls.length === 0) throw new Error(`claimed nothing with ${n - done} calls left`);
    const recorded = await Promise.all(
      calls.map((call) =>
        store.complete({
          id: call.id,
          owner: 'bench',
          leaseToken: call.leaseToken,
          now,
          attempt: { number: 1, startedAt: now, durationMs: 0, status: OK, outcome: 'exit', error: null, resume: false },
          delivered: [],
          outcome: { kind: 'finish', status: OK, output: null, error: null },
        }),
      ),
    );
    if (recorded.some((r) => !r)) throw new Error('a completion was not recorded');
    done += calls.length;
  }
}

/** Opens a store in a temporary directory; runs a warm-up round, then `rounds` measured rounds of `calls`. */
export async function storeRun({ calls = 30_000, rounds = 3, synchronous = 'NORMAL' } = {}) {
  const tmp = tempDir();
  const store = await SqliteStore.open({ path: join(tmp.dir, 'scheduler.db'), synchronous });
  try {
    await round(store, 5000);
    const out = [];
    for (let r = 0; r < rounds; r++) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await round(store, calls);
      const cpu = process.cpuUsage(cpu0);
      out.push({ calls, cpuUsPerCall: +((cpu.user + cpu.system) / calls).toFixed(1), wallUsPerCall: +(((performance.now() - t0) * 1000) / calls).toFixed(1) });
    }
    return out;
  } finally {
    await store.close();
    tmp.cleanup();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  for (const r of await storeRun({ calls: Number(arg('--calls', 30_000)), rounds: Number(arg('--rounds', 3)), synchronous: arg('--sync', 'NORMAL') })) {
    console.log(JSON.stringify(r));
  }
}
