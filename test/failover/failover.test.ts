/**
 * Failover with real processes (issue 6): three `dispatch serve` instances
 * (the built CLI) share one PostgreSQL schema; an app process serves
 * independent calls, fan-ins and sequential chains — 10,000 calls in all.
 * One instance is killed with SIGKILL mid-run, then a second one, each at a
 * moment it holds leases on calls whose runs are at the app (frozen with
 * SIGSTOP to look, so the kill is sure to interrupt work). Every call must
 * complete, every result be recorded exactly once, none be lost, and each
 * run cut short be lost and run again; the test prints how many runs were
 * repeated because of the kills.
 *
 * Needs DISPATCH_TEST_POSTGRES_URL (`.ci/run` sets it) and a build
 * (`pnpm build`: the instances and the app run the built packages).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encodeArgs, generateSigningKeyPair, privateKeyToPem, publicKeyToBase64 } from '@dispatch/core/protocol';
import { DispatchClient } from '@dispatch/core';
import { PgStore } from '@dispatch/scheduler';
import { dispatchBinPath, dropPgSchema, freePort, randomPgSchema, startInstanceProcess } from '../../packages/scheduler/test/support/pg-cluster.js';
import { afterAll, describe, expect, it } from 'vitest';

const url = process.env.DISPATCH_TEST_POSTGRES_URL;
if (!url) {
  console.warn('failover test SKIPPED: DISPATCH_TEST_POSTGRES_URL is not set (.ci/run sets it to the local PostgreSQL)');
}

const root = fileURLToPath(new URL('../../', import.meta.url));
const APP = fileURLToPath(new URL('./app.mjs', import.meta.url));

// The workload: 4,000 independent calls, 150 fan-ins of 24 parts, 50 chains of 44 steps = 10,000 calls.
const LEAVES = 4000;
const FAN_INS = 150;
const PARTS = 24;
const CHAINS = 50;
const STEPS = 44;
const TOTAL = LEAVES + FAN_INS * (PARTS + 1) + CHAINS * (STEPS + 1);
const LEASE_MS = 2000;

interface Instance {
  child: ChildProcess;
  url: string;
  client: DispatchClient;
  alive: boolean;
  stderr: string[];
  /** Its owner ID in leases (`GET /healthz` → instance). */
  owner: string;
  /** The application_name of its PostgreSQL connections. */
  applicationName: string;
}

/** What the app counted (GET /counts of app.mjs). */
interface AppCounts {
  runs: Record<string, number>;
  received: Record<string, number>;
  executions: Record<string, Record<string, number>>;
}

const processes: ChildProcess[] = [];
let schema: string | undefined;
let store: PgStore | undefined;
afterAll(async () => {
  await store?.close();
  for (const p of processes) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  if (url && schema) await dropPgSchema(url, schema);
});

function checkBuilt(): string {
  const missing = [`${root}packages/core/dist/esm/index.js`, `${root}packages/scheduler/dist/cjs/cli/program.js`].filter((f) => !existsSync(f));
  if (missing.length > 0) {
    throw new Error(`the failover test runs the built packages, and ${missing.join(', ')} is missing: run \`pnpm build\` (or \`pnpm -r --filter './packages/*' build\`) first`);
  }
  return dispatchBinPath();
}

async function startApp(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [APP], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  processes.push(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-10_000);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, url: (JSON.parse(out.slice(0, nl)) as { url: string }).url });
    });
    child.once('exit', (code) => reject(new Error(`the failover app exited (${code}): ${err}`)));
  });
}

type Root = { kind: 'leaf' | 'fanIn' | 'chain'; i: number; expected: number };

function workload(): Root[] {
  const roots: Root[] = [];
  for (let i = 0; i < LEAVES; i++) roots.push({ kind: 'leaf', i, expected: i * 2 });
  const partsSum = (PARTS * (PARTS - 1)) / 2;
  for (let i = 0; i < FAN_INS; i++) roots.push({ kind: 'fanIn', i, expected: PARTS * 100 * i + partsSum });
  const stepsSum = (STEPS * (STEPS - 1)) / 2;
  for (let i = 0; i < CHAINS; i++) roots.push({ kind: 'chain', i, expected: i + stepsSum });
  // Interleave the kinds (deterministically) so that the kills hit all of them.
  let seed = 42;
  for (let k = roots.length - 1; k > 0; k--) {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    const j = seed % (k + 1);
    [roots[k], roots[j]] = [roots[j]!, roots[k]!];
  }
  return roots;
}

const argsOf = (r: Root) => (r.kind === 'leaf' ? [r.i] : [r.i, r.kind === 'fanIn' ? PARTS : STEPS]);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!url)('failover: three dispatch serve processes on one PostgreSQL schema, two killed with SIGKILL', () => {
  it(`runs ${TOTAL.toLocaleString('en')} calls to completion, each result recorded exactly once`, async () => {
    const bin = checkBuilt();
    expect(TOTAL).toBe(10_000);
    schema = randomPgSchema('dispatch_failover');
    const db = new URL(url!);
    db.searchParams.set('schema', schema);
    db.searchParams.set('pool_size', '5'); // 3 × (5 + 1 LISTEN): other test files share the server's max_connections
    const apiKey = `dsk_${randomBytes(24).toString('base64url')}`;
    const keys = generateSigningKeyPair();
    const env = { ...process.env, DISPATCH_API_KEY: apiKey, DISPATCH_SIGNING_KEY: privateKeyToPem(keys.privateKey) };
    const t0 = Date.now();

    // Three instances starting at once (they migrate the new schema under an advisory lock).
    const instances: Instance[] = await Promise.all(
      [0, 1, 2].map(async (k) => {
        const port = await freePort();
        // Its own application_name, to find its connections in pg_stat_activity (see `settled`).
        const own = new URL(db);
        own.searchParams.set('application_name', `${schema}_${k}`);
        const args = ['serve', '--db', own.toString(), '--port', String(port), '--lease-ms', String(LEASE_MS), '--claim-batch', '64', '--log-level', 'warn'];
        const started = await startInstanceProcess(bin, args, `http://127.0.0.1:${port}`, env);
        processes.push(started.child);
        const stderr: string[] = [];
        started.child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
        const { instance } = (await (await fetch(`${started.url}/healthz`)).json()) as { instance: string };
        return {
          child: started.child,
          url: started.url,
          client: new DispatchClient({ apiUrl: started.url, apiKey }),
          alive: true,
          stderr,
          owner: instance,
          applicationName: `${schema}_${k}`,
        };
      }),
    );
    const appEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DISPATCH_')));
    const app = await startApp({
      ...appEnv,
      FAILOVER_API_URL: instances[0]!.url,
      FAILOVER_API_KEY: apiKey,
      FAILOVER_VERIFICATION_KEY: publicKeyToBase64(keys.publicKey),
    });
    const startedAt = Date.now();

    // Dispatch the roots through every instance, 200 per request, with idempotency keys.
    const roots = workload();
    const ids: string[] = [];
    for (let b = 0; b * 200 < roots.length; b++) {
      const batch = roots.slice(b * 200, (b + 1) * 200);
      const calls = batch.map((r) => ({ function: r.kind, endpoint: app.url, input: encodeArgs(argsOf(r)), idempotencyKey: `${r.kind}-${r.i}` }));
      ids.push(...(await instances[b % 3]!.client.dispatch(calls)));
      if (b === 3) {
        // A client retrying a request through another instance creates nothing twice.
        expect(await instances[(b + 1) % 3]!.client.dispatch(calls)).toEqual(ids.slice(b * 200));
      }
    }
    expect(new Set(ids).size).toBe(roots.length);

    const survivor = instances[0]!;
    const succeeded = async () => (await survivor.client.list({ limit: 1 })).counts.succeeded;
    // Queries on the shared schema, for the checks at each kill and at the end.
    const pgStore = (store = await PgStore.open({ url: url!, schema, poolSize: 1, listen: false }));
    const q = async <R = Record<string, unknown>>(sql: string, values: unknown[] = []) =>
      (await pgStore.pool.query(sql.replaceAll('S.', `"${schema}".`), values)).rows as R[];
    const appCounts = async () => (await (await fetch(`${app.url}/counts`)).json()) as AppCounts;
    /** Calls that may have lost a run already (leased by the first victim at its kill). */
    const lostBefore = new Set<string>();
    /**
     * The calls leased to `owner` whose RunRequest the app has received and
     * whose attempt is not recorded: runs in flight at the app under its lease.
     * Run while the instance is frozen (SIGSTOP): it can neither claim nor record.
     */
    const inFlightAtApp = async (owner: string) => {
      const { received } = await appCounts(); // first: any run counted here started before the query below
      const leased = await q<{ id: string; recorded: number }>(
        `SELECT c.id, (SELECT count(*)::int FROM S.attempts a WHERE a.call_id = c.id) AS recorded
         FROM S.calls c WHERE c.state = 'running' AND c.lease_owner = $1`,
        [owner],
      );
      const interrupted = leased.filter((c) => !lostBefore.has(c.id) && (received[c.id] ?? 0) > c.recorded).map((c) => c.id);
      return { leased: leased.map((c) => c.id), interrupted };
    };
    /**
     * Waits until a frozen instance's connections are quiet: none executing a
     * statement and none changing state over 100 ms. A statement it sent just
     * before SIGSTOP (a COMMIT recording an attempt) still runs at the server;
     * reading before it ends would count a recorded run as in flight.
     * Gives up after a second: frozen longer, the instances left may finish
     * the work before the victim holds any again.
     */
    const settled = async (victim: Instance) => {
      const look = async () =>
        JSON.stringify(
          await q(`SELECT pid, state, state_change FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid`, [victim.applicationName]),
        );
      let before = await look();
      for (let i = 0; i < 10; i++) {
        await sleep(100);
        const now = await look();
        if (now === before && !now.includes('"state":"active"')) return true;
        before = now;
      }
      return false; // e.g. waiting on a lock its own frozen transaction holds: look again later
    };
    const killWhen = async (victim: Instance, fraction: number) => {
      while ((await succeeded()) < TOTAL * fraction) await sleep(50);
      // The kill must interrupt work: freeze the victim and look; kill it only
      // while it holds leases on calls whose runs are at the app, unrecorded.
      const deadline = Date.now() + 60_000;
      for (;;) {
        victim.child.kill('SIGSTOP');
        const quiet = await settled(victim);
        const seen = quiet ? await inFlightAtApp(victim.owner) : { leased: [], interrupted: [] };
        if (seen.interrupted.length > 0) {
          victim.child.kill('SIGKILL');
          victim.alive = false;
          await new Promise((resolve) => victim.child.once('exit', resolve));
          for (const id of seen.leased) lostBefore.add(id);
          return { at: Date.now() - startedAt, leased: seen.leased.length, interrupted: seen.interrupted, done: await succeeded() };
        }
        victim.child.kill('SIGCONT');
        if (Date.now() > deadline) {
          const last = quiet ? `${seen.leased.length} calls leased to it at the last look` : 'its connections were busy at the last look';
          throw new Error(`instance ${victim.owner} had no run in flight at the app in 60 s of looking (${last})`);
        }
        // Let it work before the next look; longer when its connections were busy (a statement of its own it waited on).
        await sleep(quiet ? 20 : 200);
      }
    };
    const kill1 = await killWhen(instances[1]!, 0.25);
    const kill2 = await killWhen(instances[2]!, 0.55);
    // The killed instances had claimed work, and runs of it were in flight at the app.
    expect(kill1.interrupted.length).toBeGreaterThan(0);
    expect(kill2.interrupted.length).toBeGreaterThan(0);

    const deadline = Date.now() + 180_000;
    let counts = (await survivor.client.list({ limit: 1 })).counts;
    while (counts.succeeded < TOTAL) {
      if (Date.now() > deadline) {
        throw new Error(`not finished after 3 minutes: ${JSON.stringify(counts)}\n${survivor.stderr.join('').slice(-3000)}`);
      }
      await sleep(100);
      counts = (await survivor.client.list({ limit: 1 })).counts;
    }
    const ranFor = Date.now() - startedAt;

    // Every root answers its value through the API (Wait on the surviving instance).
    const outcomes = await mapLimit(ids, 64, (id) => survivor.client.wait(id, { timeoutMs: 10_000 }));
    outcomes.forEach((o, k) => {
      expect(o.done, `root ${k} not done`).toBe(true);
      if (!o.done) return;
      expect(o.status).toBe(1);
      expect(o.value).toBe(roots[k]!.expected);
    });

    // The database: every call succeeded, none was created twice, one recorded exit per call.
    try {
      expect(await q(`SELECT state, count(*)::int AS n FROM S.calls GROUP BY state`)).toEqual([{ state: 'succeeded', n: TOTAL }]);
      const [exits] = await q(`SELECT count(*)::int AS n, count(DISTINCT call_id)::int AS calls FROM S.attempts WHERE outcome = 'exit'`);
      expect(exits).toEqual({ n: TOTAL, calls: TOTAL });
      expect(await q(`SELECT count(*)::int AS n FROM S.calls c WHERE NOT EXISTS (SELECT 1 FROM S.attempts a WHERE a.call_id = c.id AND a.outcome = 'exit')`)).toEqual([{ n: 0 }]);
      const perFunction = async (sql: string): Promise<Record<string, number>> =>
        Object.fromEntries((await q<{ function: string; n: number }>(sql)).map((r) => [r.function, r.n]));
      const recorded = await perFunction(`SELECT c.function, count(*)::int AS n FROM S.attempts a JOIN S.calls c ON c.id = a.call_id GROUP BY c.function`);
      const byFunction = await perFunction(`SELECT function, count(*)::int AS n FROM S.calls GROUP BY function`);
      expect(byFunction).toEqual({ leaf: LEAVES, fanIn: FAN_INS, part: FAN_INS * PARTS, chain: CHAINS, step: CHAINS * STEPS });

      // What the app saw: every leaf body ran at least once; runs beyond the recorded ones were repeated.
      const seen = await appCounts();
      let repeatedBodies = 0;
      for (const fn of ['leaf', 'part', 'step']) {
        const per = seen.executions[fn] ?? {};
        expect(Object.keys(per).length, `${fn}: every call executed`).toBe(byFunction[fn]);
        for (const n of Object.values(per)) repeatedBodies += n - 1;
      }
      const received = Object.values(seen.runs).reduce((a, b) => a + b, 0);
      const recordedRuns = Object.values(recorded).reduce((a, b) => a + b, 0);
      const repeatedRuns = received - recordedRuns;
      // Each run cut short by a kill was lost (never recorded) and the call ran again to its recorded exit.
      const interrupted = [...kill1.interrupted, ...kill2.interrupted];
      const attemptsOf = Object.fromEntries(
        (await q<{ id: string; n: number }>(`SELECT call_id AS id, count(*)::int AS n FROM S.attempts WHERE call_id = ANY($1) GROUP BY call_id`, [interrupted])).map(
          (r) => [r.id, r.n],
        ),
      );
      const notRepeated = interrupted.filter((id) => (seen.received[id] ?? 0) - (attemptsOf[id] ?? 0) < 1);
      expect(notRepeated, 'calls cut short by a kill whose lost run does not show').toEqual([]);
      expect(repeatedRuns).toBeGreaterThanOrEqual(interrupted.length);

      console.log(
        [
          `failover: ${TOTAL} calls (${LEAVES} independent, ${FAN_INS} fan-ins × ${PARTS}, ${CHAINS} chains × ${STEPS}) on 3 instances, lease ${LEASE_MS} ms`,
          `  kill -9 #1 at ${kill1.at} ms (${kill1.done} calls done; ${kill1.leased} calls leased to it, ${kill1.interrupted.length} of them with a run at the app)`,
          `  kill -9 #2 at ${kill2.at} ms (${kill2.done} calls done; ${kill2.leased} calls leased to it, ${kill2.interrupted.length} of them with a run at the app)`,
          `  all ${TOTAL} calls succeeded in ${ranFor} ms (${Math.round(TOTAL / (ranFor / 1000))} calls/s; ${Date.now() - t0} ms with startup and checks)`,
          `  runs received by the app: ${received}; recorded: ${recordedRuns}; repeated because of the kills: ${repeatedRuns}`,
          `  leaf bodies executed more than once: ${repeatedBodies} extra executions over ${LEAVES + FAN_INS * PARTS + CHAINS * STEPS} leaf calls`,
          `  each of the ${TOTAL} results recorded exactly once; none lost`,
        ].join('\n'),
      );
    } finally {
      await pgStore.close();
      store = undefined;
    }
    for (const p of [survivor.child, app.child]) p.kill('SIGTERM');
  }, 300_000);
});

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const k = next++;
        out[k] = await fn(items[k]!);
      }
    }),
  );
  return out;
}
