/**
 * Declared limits end to end (issue 16), with real processes: three
 * `dispatch serve` instances (the built CLI) share one PostgreSQL schema; an
 * app process declares `concurrency`, `rateLimit` and a per-key concurrency
 * with `dispatch.function({...})`, dispatches through the SDK, and counts
 * what its bodies see (GET /stats of fixtures/limits-app.mjs). The same
 * checks run against one `dispatch serve` on a SQLite file.
 *
 * Needs DISPATCH_TEST_POSTGRES_URL for the PostgreSQL part, and a build.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSigningKeyPair, privateKeyToPem, publicKeyToBase64 } from '@dispatch/core/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { dispatchBinPath, dropPgSchema, randomPgSchema, startInstanceProcess } from '../../packages/scheduler/test/support/pg-cluster.js';
import { dispatchCli, freePort, requireBuilt, tempDir, until } from './helpers/processes.js';

const url = process.env.DISPATCH_TEST_POSTGRES_URL;
if (!url) console.warn('the PostgreSQL part of limits.test.ts is SKIPPED: DISPATCH_TEST_POSTGRES_URL is not set');
const APP = fileURLToPath(new URL('./fixtures/limits-app.mjs', import.meta.url));

interface Run {
  args: unknown[];
  start: number;
  end: number | null;
}
type Stats = Record<string, { running: number; peak: number; runs: Run[] }>;

const processes: ChildProcess[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const p of processes) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const c of cleanups.reverse()) await c();
});

const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DISPATCH_')));

interface Cluster {
  urls: string[];
  apiKey: string;
  app: { control: string; url: string };
  env: NodeJS.ProcessEnv;
}

async function startCluster(db: (i: number) => string, instances: number): Promise<Cluster> {
  requireBuilt();
  const apiKey = `dsk_${randomBytes(24).toString('base64url')}`;
  const keys = generateSigningKeyPair();
  const env = { ...cleanEnv(), DISPATCH_API_KEY: apiKey, DISPATCH_SIGNING_KEY: privateKeyToPem(keys.privateKey) };
  const urls = await Promise.all(
    Array.from({ length: instances }, async (_, i) => {
      const port = await freePort();
      const args = ['serve', '--db', db(i), '--port', String(port), '--log-level', 'warn'];
      const s = await startInstanceProcess(dispatchBinPath(), args, `http://127.0.0.1:${port}`, env);
      processes.push(s.child);
      return s.url;
    }),
  );
  const appPort = await freePort();
  const child = spawn(process.execPath, [APP], {
    env: {
      ...cleanEnv(),
      DISPATCH_API_URL: urls[0],
      DISPATCH_API_KEY: apiKey,
      DISPATCH_VERIFICATION_KEY: publicKeyToBase64(keys.publicKey),
      DISPATCH_ENDPOINT_URL: `http://127.0.0.1:${appPort}`,
      LIMITS_APP_PORT: String(appPort),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  processes.push(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-10_000);
  });
  const app = await new Promise<{ control: string; url: string }>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as { control: string; url: string });
    });
    child.once('exit', (code) => reject(new Error(`the limits app exited (${code}): ${err}`)));
  });
  return { urls, apiKey, app, env: { ...cleanEnv(), DISPATCH_API_KEY: apiKey } };
}

async function dispatchThrough(c: Cluster, fn: string, calls: unknown[][]): Promise<{ ids: string[]; at: number[] }> {
  const res = await fetch(`${c.app.control}/dispatch`, { method: 'POST', body: JSON.stringify({ fn, calls }) });
  if (!res.ok) throw new Error(`dispatch of ${fn} failed: ${await res.text()}`);
  return (await res.json()) as { ids: string[]; at: number[] };
}

async function stats(c: Cluster): Promise<Stats> {
  return (await (await fetch(`${c.app.control}/stats`)).json()) as Stats;
}

/** Most starts in any window [t, t + ms) that begins at a start. */
function maxPerWindow(starts: number[], ms: number): number {
  const s = [...starts].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < s.length; i++) {
    while (s[j]! < s[i]! - ms + 1) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

function checks(name: string, cluster: () => Cluster) {
  it(`${name}: concurrency 2 never has more than 2 bodies running (20 calls of 300 ms)`, async () => {
    const c = cluster();
    await dispatchThrough(
      c,
      'slowCheckout',
      Array.from({ length: 20 }, (_, i) => [i]),
    );
    await until(async () => (await stats(c)).slowCheckout!.runs.filter((r) => r.end !== null).length === 20, '20 slowCheckout runs', 120_000);
    const s = (await stats(c)).slowCheckout!;
    console.log(`[limits ${name}] concurrency 2: peak ${s.peak} concurrently running bodies over ${s.runs.length} calls of 300 ms`);
    expect(s.runs.length).toBe(20);
    expect(s.peak).toBeLessThanOrEqual(2);
    expect(s.peak).toBe(2); // the limit is used, not only respected
  }, 180_000);

  it(`${name}: rateLimit 5/s gives at most 5 starts in every one-second window (30 calls)`, async () => {
    const c = cluster();
    await dispatchThrough(
      c,
      'notify',
      Array.from({ length: 30 }, (_, i) => [i]),
    );
    await until(async () => (await stats(c)).notify!.runs.length === 30, '30 notify runs', 120_000);
    const starts = (await stats(c)).notify!.runs.map((r) => r.start);
    const max = maxPerWindow(starts, 1000);
    const span = Math.max(...starts) - Math.min(...starts);
    console.log(`[limits ${name}] rateLimit 5/s: at most ${max} starts in any 1 s window; 30 starts over ${span} ms`);
    const sorted = [...starts].sort((a, b) => a - b);
    if (max > 5) console.log(`[limits ${name}] starts (ms from the first): ${sorted.map((t) => t - sorted[0]!).join(' ')}`);
    expect(max).toBeLessThanOrEqual(5);
    expect(max).toBeGreaterThanOrEqual(4); // bursts up to the limit are let through
  }, 180_000);

  it(`${name}: a key with 100 queued calls does not delay another key's call by a call's duration (per-key concurrency 2, calls of 500 ms)`, async () => {
    const c = cluster();
    await dispatchThrough(
      c,
      'perUser',
      Array.from({ length: 100 }, (_, i) => ['busy', i]),
    );
    await until(async () => (await stats(c)).perUser!.runs.length >= 2, 'the first busy runs', 60_000);
    // While the busy key waits, the CLI shows its calls pending on the limit.
    let last = '';
    await until(
      async () => {
        const ls = await dispatchCli(['ls', '--state', 'pending', '--function', 'perUser', '--api-url', c.urls.at(-1)!], { env: c.env });
        last = `${ls.stdout}\n${ls.stderr}`;
        return ls.stdout.includes('pending (concurrency limit 2 of perUser, key busy)');
      },
      'dispatch ls showing the limit',
      30_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; the last output of dispatch ls:\n${last}`);
    });
    const pending = JSON.parse(
      (await dispatchCli(['ls', '--state', 'pending', '--function', 'perUser', '--json', '--api-url', c.urls.at(-1)!], { env: c.env })).stdout,
    ) as { calls: Array<{ dispatchId: string }> };
    // Between a completion and the next claim the key has a free slot for a moment: ask until the wait shows.
    let got = { stdout: '' };
    await until(async () => {
      got = await dispatchCli(['get', pending.calls[0]!.dispatchId, '--api-url', c.urls.at(-1)!], { env: c.env });
      return /state\s+pending \(/.test(got.stdout);
    }, 'dispatch get showing the limit', 30_000);
    expect(got.stdout).toMatch(/state\s+pending \(concurrency limit 2 of perUser, key busy\)/);
    expect(got.stdout).toMatch(/limit key\s+busy/);

    const { ids, at } = await dispatchThrough(c, 'perUser', [['other', 0]]);
    await until(async () => (await stats(c)).perUser!.runs.some((r) => r.args[0] === 'other' && r.end !== null), 'the other key run', 60_000);
    const s = (await stats(c)).perUser!;
    const other = s.runs.find((r) => r.args[0] === 'other')!;
    const delay = other.start - at[0]!;
    const busyDone = s.runs.filter((r) => r.args[0] === 'busy' && r.end !== null).length;
    console.log(
      `[limits ${name}] per key: the other key's call started ${delay} ms after its dispatch (one call takes 500 ms); ${busyDone} of 100 busy calls done by then`,
    );
    expect(ids).toHaveLength(1);
    expect(delay).toBeLessThan(500); // one call's duration
    expect(busyDone).toBeLessThan(100);
    // Each key stays within its limit, measured from the app.
    let peak = 0;
    for (const r of s.runs.filter((x) => x.args[0] === 'busy')) {
      const at = r.start;
      peak = Math.max(peak, s.runs.filter((x) => x.args[0] === 'busy' && x.start <= at && (x.end === null || x.end > at)).length);
    }
    expect(peak).toBeLessThanOrEqual(2);
  }, 180_000);
}

describe.skipIf(!url)('declared limits on three PostgreSQL scheduler processes', () => {
  let cluster: Cluster | undefined;
  it('starts three dispatch serve processes on one schema and the app', async () => {
    const schema = randomPgSchema('dispatch_limits');
    cleanups.push(() => dropPgSchema(url!, schema));
    const db = new URL(url!);
    db.searchParams.set('schema', schema);
    db.searchParams.set('pool_size', '4');
    cluster = await startCluster(() => db.toString(), 3);
    expect(cluster.urls).toHaveLength(3);
  }, 120_000);
  checks('postgres x3', () => cluster!);
});

describe('declared limits on a SQLite scheduler process', () => {
  let cluster: Cluster | undefined;
  it('starts dispatch serve on a SQLite file and the app', async () => {
    const tmp = tempDir('limits');
    cleanups.push(tmp.remove);
    cluster = await startCluster(() => join(tmp.dir, 'dispatch.db'), 1);
    expect(cluster.urls).toHaveLength(1);
  }, 120_000);
  checks('sqlite', () => cluster!);
});
