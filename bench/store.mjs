// Store-level diagnostic: the SQLite store's CPU per no-op call, without the
// scheduler, a transport or an app. Each round inserts calls in batches of
// 1,000 (as the API does), then claims up to 128 at a time and completes each
// (finish, with its attempt), as the run loop does, all through the store's
// public methods. Not part of `pnpm bench`'s targets: it splits the
// in-process figure into "the store" and "the rest" (bench/profile-notes.md).
//
// `--awaited`: awaited calls instead, one after the other, as the run loop
// drives the store for `loop(n)` of section (4): the parent suspends with one
// child (recorded, child leased in the same transaction: completeAndClaim),
// the child finishes (parent woken and leased), then the run loop's claim
// round after each run. Reports CPU and wall time per step and the KiB the
// process wrote per step (Linux's /proc/self/io: the redo log's records, the
// WAL pages of the background commits, checkpoints), over 500 more steps.
//
//   node bench/store.mjs [--calls 30000] [--rounds 3] [--sync NORMAL|FULL]
//   node bench/store.mjs --awaited [--steps 5000] [--rounds 3]
//   node bench/store.mjs --fanin [--children 10000] [--rounds 3]
//
// `--fanin`: one parent gathers n children, as the run loop drives the
// store for `fanin(n)` of section (5): wall ms of the suspension (children
// recorded), the children's completions, the parent's resume and its finish.
//
// Prints one JSON object per round: CPU (user + system) and wall time per
// call in microseconds. Run it with `node --cpu-prof` to see where the
// store's time goes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteStore } from '@dispatch/scheduler';
import { tempDir } from './lib/harness.mjs';

/** IDs in creation order, as the scheduler's ULID-like dispatch IDs are (random ones would touch random index pages). */
let counter = 0;
const nextId = () => `${Date.now().toString(32).padStart(10, '0')}${(counter++).toString(32).padStart(16, '0')}`;

const input = { typeUrl: 'type.googleapis.com/google.protobuf.BytesValue', value: Buffer.from([10, 0]) };
const OK = 1;
const ENDPOINT = 'http://127.0.0.1:1';

/** The CompleteRequest of a leased call's first run, returning `output`. */
function finishOf(call, now, output = input) {
  return {
    id: call.id,
    owner: 'bench',
    leaseToken: call.leaseToken,
    now,
    attempt: { number: 1, startedAt: now, durationMs: 0, status: OK, outcome: 'exit', error: null, resume: false },
    delivered: [],
    outcome: { kind: 'finish', status: OK, output, error: null },
  };
}

/** Inserts, claims and completes `n` no-op calls. */
async function round(store, n) {
  const now0 = Date.now();
  for (let sent = 0; sent < n; sent += 1000) {
    const calls = [];
    for (let i = 0; i < Math.min(1000, n - sent); i++) {
      const id = nextId();
      calls.push({ id, function: 'noop', endpoint: ENDPOINT, input, createdAt: now0, dueAt: now0, expiresAt: now0 + 3_600_000, expirationMs: 3_600_000, rootId: id });
    }
    await store.insertCalls(calls);
  }
  let done = 0;
  while (done < n) {
    const now = Date.now();
    const { calls } = await store.claimDue({ owner: 'bench', now, leaseMs: 60_000, limit: 128, capacity: () => 128 });
    if (calls.length === 0) throw new Error(`claimed nothing with ${n - done} calls left`);
    const recorded = await Promise.all(calls.map((call) => store.complete(finishOf(call, now, null))));
    if (recorded.some((r) => !r)) throw new Error('a completion was not recorded');
    done += calls.length;
  }
}

/**
 * Opens a store in a temporary directory, runs `warmup(store)`, then
 * `rounds` times `work(store)`: CPU (user + system) and wall µs per `n`,
 * with `extra(store, path)`'s fields added to each round's result.
 */
async function measured({ synchronous, rounds, n, warmup, work, extra = () => ({}) }) {
  const tmp = tempDir();
  const path = join(tmp.dir, 'scheduler.db');
  const store = await SqliteStore.open({ path, synchronous });
  try {
    await warmup(store);
    const out = [];
    for (let r = 0; r < rounds; r++) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await work(store);
      const cpu = process.cpuUsage(cpu0);
      const wallMs = performance.now() - t0;
      out.push({ n, cpuUs: +((cpu.user + cpu.system) / n).toFixed(1), wallUs: +((wallMs * 1000) / n).toFixed(1), ...(await extra(store, path)) });
    }
    return out;
  } finally {
    await store.close();
    tmp.cleanup();
  }
}

/** A warm-up round, then `rounds` measured rounds of `calls` no-op calls: `{ calls, cpuUsPerCall, wallUsPerCall }` each. */
export async function storeRun({ calls = 30_000, rounds = 3, synchronous = 'NORMAL' } = {}) {
  const out = await measured({ synchronous, rounds, n: calls, warmup: (store) => round(store, 5000), work: (store) => round(store, calls) });
  return out.map((r) => ({ calls, cpuUsPerCall: r.cpuUs, wallUsPerCall: r.wallUs }));
}

/** Bytes this process has written with write(2) and pwrite(2) so far (Linux: /proc/self/io `wchar`; null elsewhere). */
function bytesWritten() {
  try {
    return Number(/^wchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))[1]);
  } catch {
    return null;
  }
}

/** `n` awaited calls of one parent: suspend with a child, child finishes, parent resumed (see the module comment). */
async function awaitedSteps(store, n) {
  const now0 = Date.now();
  const parentId = nextId();
  await store.insertCalls([{ id: parentId, function: 'loop', endpoint: ENDPOINT, input, createdAt: now0, dueAt: now0, expiresAt: now0 + 3_600_000, expirationMs: 3_600_000, rootId: parentId }]);
  const follow = { leaseMs: 60_000, capacity: () => 128, claimed: () => {}, elideStateAbove: 1024 };
  const claimRound = async () => {
    const { calls } = await store.claimDue({ owner: 'bench', now: Date.now(), leaseMs: 60_000, limit: 128, capacity: () => 128, elideStateAbove: 1024 });
    if (calls.length > 0) throw new Error(`a claim round claimed ${calls.length} call(s): completeAndClaim should have leased them`);
  };
  let parent = (await store.claimDue({ owner: 'bench', now: Date.now(), leaseMs: 60_000, limit: 1, capacity: () => 1 })).calls[0];
  let run = 1;
  for (let i = 0; i < n; i++) {
    const now = Date.now();
    const childId = nextId();
    const suspended = await store.completeAndClaim(
      {
        id: parent.id,
        owner: 'bench',
        leaseToken: parent.leaseToken,
        now,
        attempt: { number: run++, startedAt: now, durationMs: 0, status: OK, outcome: 'suspend', error: null, resume: i > 0 },
        delivered: parent.resume ? parent.resume.results.map((r) => r.dispatchId) : [],
        outcome: {
          kind: 'suspend',
          status: OK,
          state: { kind: 'bytes', typeUrl: '', value: Buffer.alloc(80, i & 0xff) },
          stateIsDelta: i > 0,
          calls: [{ id: childId, function: 'inc', endpoint: ENDPOINT, input, createdAt: now, dueAt: now, expiresAt: now + 3_600_000, expirationMs: 3_600_000, parentId, rootId: parentId, correlationId: BigInt(i + 1) }],
          minResults: 1,
          maxResults: 1,
          deadline: now + 3_600_000,
          wakeOnError: false,
          pollError: null,
        },
      },
      follow,
    );
    await claimRound();
    const child = suspended.calls.find((c) => c.id === childId);
    if (!child) throw new Error(`step ${i}: the child was not leased with the suspension`);
    const finished = await store.completeAndClaim(finishOf(child, now), follow);
    await claimRound();
    parent = finished.calls.find((c) => c.id === parentId);
    if (!parent) throw new Error(`step ${i}: the parent was not leased with its child's result`);
  }
}

/**
 * KiB written per step over 500 more steps: the redo log's records, the WAL
 * pages of its commits and the checkpoints, all that the store writes.
 */
async function kibPerStep(store) {
  const before = bytesWritten();
  await awaitedSteps(store, 500);
  const after = bytesWritten();
  return before === null || after === null ? null : +((after - before) / 1024 / 500).toFixed(2);
}

/** A warm-up of 500 steps, then `rounds` rounds of `steps` awaited calls: `{ steps, cpuUsPerStep, wallUsPerStep, kibWrittenPerStep }` each. */
export async function awaitedRun({ steps = 5000, rounds = 3, synchronous = 'NORMAL' } = {}) {
  const out = await measured({
    synchronous,
    rounds,
    n: steps,
    warmup: (store) => awaitedSteps(store, 500),
    work: (store) => awaitedSteps(store, steps),
    extra: async (store) => ({ kibWrittenPerStep: await kibPerStep(store) }),
  });
  return out.map((r) => ({ steps, cpuUsPerStep: r.cpuUs, wallUsPerStep: r.wallUs, kibWrittenPerStep: r.kibWrittenPerStep }));
}

/**
 * One fan-in of `n` children through the store, as the run loop drives it:
 * the parent suspends with `n` children (recorded, up to `capacity`
 * children leased in the same transaction), each child finishes
 * (completeAndClaim; the rest are claimed in rounds of 256), the parent is
 * resumed with every result and finishes. Wall ms of each phase.
 */
async function fanInOnce(store, n, capacity) {
  const now0 = Date.now();
  const parentId = nextId();
  await store.insertCalls([{ id: parentId, function: 'fanin', endpoint: ENDPOINT, input, createdAt: now0, dueAt: now0, expiresAt: now0 + 3_600_000, expirationMs: 3_600_000, rootId: parentId }]);
  const parent = (await store.claimDue({ owner: 'bench', now: Date.now(), leaseMs: 60_000, limit: 1, capacity: () => 1 })).calls[0];
  let room = capacity;
  const follow = { leaseMs: 60_000, capacity: () => room, claimed: () => room--, elideStateAbove: 1024 };
  const t0 = performance.now();
  const now = Date.now();
  const calls = [];
  for (let i = 0; i < n; i++) {
    const id = nextId();
    calls.push({ id, function: 'square', endpoint: ENDPOINT, input, createdAt: now, dueAt: now, expiresAt: now + 3_600_000, expirationMs: 3_600_000, parentId, rootId: parentId, correlationId: BigInt(i + 1) });
  }
  const suspended = await store.completeAndClaim(
    {
      id: parent.id,
      owner: 'bench',
      leaseToken: parent.leaseToken,
      now,
      attempt: { number: 1, startedAt: now, durationMs: 0, status: OK, outcome: 'suspend', error: null, resume: false },
      delivered: [],
      outcome: { kind: 'suspend', status: OK, state: { kind: 'bytes', typeUrl: '', value: Buffer.alloc(80 + 12 * n, 1) }, stateIsDelta: false, calls, minResults: n, maxResults: n, deadline: now + 3_600_000, wakeOnError: false, pollError: null },
    },
    follow,
  );
  const t1 = performance.now();
  let queue = suspended.calls.filter((c) => c.id !== parentId);
  let resumed;
  let finished = 0;
  while (finished < n) {
    if (queue.length === 0) {
      room = 256;
      queue = (await store.claimDue({ owner: 'bench', now: Date.now(), leaseMs: 60_000, limit: 256, capacity: () => 256, elideStateAbove: 1024 })).calls;
      if (queue.length === 0) throw new Error(`claimed nothing with ${n - finished} children left`);
    }
    const batch = queue;
    queue = [];
    await Promise.all(
      batch.map(async (child) => {
        room++;
        const r = await store.completeAndClaim(finishOf(child, now), follow);
        finished++;
        for (const c of r.calls) (c.id === parentId ? (resumed = c) : queue.push(c));
      }),
    );
  }
  const t2 = performance.now();
  if (!resumed) resumed = (await store.claimDue({ owner: 'bench', now: Date.now(), leaseMs: 60_000, limit: 1, capacity: () => 1, elideStateAbove: 1024 })).calls[0];
  if (resumed?.id !== parentId || resumed.resume.results.length !== n) throw new Error(`the parent was not resumed with ${n} results`);
  const t3 = performance.now();
  await store.complete({
    id: parentId,
    owner: 'bench',
    leaseToken: resumed.leaseToken,
    now,
    attempt: { number: 2, startedAt: now, durationMs: 0, status: OK, outcome: 'exit', error: null, resume: true },
    delivered: resumed.resume.results.map((r) => r.dispatchId),
    outcome: { kind: 'finish', status: OK, output: input, error: null },
  });
  const t4 = performance.now();
  const ms = (a, b) => +(b - a).toFixed(1);
  return { n, suspendMs: ms(t0, t1), childrenMs: ms(t1, t2), resumeMs: ms(t2, t3), finishMs: ms(t3, t4), totalMs: ms(t0, t4) };
}

/** A warm-up fan-in of 1,000, then `rounds` fan-ins of `children` (the run loop's follow-on capacity: `capacity`). */
export async function fanInRun({ children = 10_000, rounds = 3, capacity = 4096, synchronous = 'NORMAL' } = {}) {
  const tmp = tempDir();
  const store = await SqliteStore.open({ path: join(tmp.dir, 'scheduler.db'), synchronous });
  try {
    await fanInOnce(store, 1000, capacity);
    const out = [];
    for (let r = 0; r < rounds; r++) out.push(await fanInOnce(store, children, capacity));
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
  const rounds = Number(arg('--rounds', 3));
  const synchronous = arg('--sync', 'NORMAL');
  const results = process.argv.includes('--awaited')
    ? await awaitedRun({ steps: Number(arg('--steps', 5000)), rounds, synchronous })
    : process.argv.includes('--fanin')
      ? await fanInRun({ children: Number(arg('--children', 10_000)), rounds, synchronous })
      : await storeRun({ calls: Number(arg('--calls', 30_000)), rounds, synchronous });
  for (const r of results) console.log(JSON.stringify(r));
}
