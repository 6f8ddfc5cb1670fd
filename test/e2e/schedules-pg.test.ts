/**
 * Schedules across three scheduler processes (issue 15): three `dispatch
 * serve` instances share one PostgreSQL schema; an app process declares a
 * six-field schedule that ticks every 2 seconds. Over 20 seconds, every tick
 * must run exactly once: counted from the app's side-effect log, with their
 * tick times, no tick twice and no gap between the first and the last.
 *
 * Needs DISPATCH_TEST_POSTGRES_URL (`.ci/run` sets it) and a build.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DispatchClient } from '@dispatch/core';
import { generateSigningKeyPair, privateKeyToPem, publicKeyToBase64 } from '@dispatch/core/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { dispatchBinPath, dropPgSchema, randomPgSchema, startInstanceProcess } from '../../packages/scheduler/test/support/pg-cluster.js';
import { CLEAN_ENV, freePort, killAll, type Proc, ROOT, requireBuilt, start, tempDir } from './helpers/processes.js';

const url = process.env.DISPATCH_TEST_POSTGRES_URL;
if (!url) console.warn('schedules PostgreSQL test SKIPPED: DISPATCH_TEST_POSTGRES_URL is not set (.ci/run sets it to the local PostgreSQL)');

const APP = join(ROOT, 'test/e2e/fixtures/schedules-app.mjs');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One line of the app's side-effect log. */
interface TickLine {
  fn: string;
  time: string;
  missed: number;
  dispatchId: string;
}

function readTicks(file: string, fn: string): TickLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TickLine)
    .filter((t) => t.fn === fn);
}

const tmp = tempDir('schedules-pg');
let schema: string | undefined;
const procs: Proc[] = [];
const children: Array<{ kill: (s?: NodeJS.Signals) => void }> = [];
afterAll(async () => {
  await killAll(procs);
  for (const c of children) c.kill('SIGKILL');
  if (url && schema) await dropPgSchema(url, schema);
  tmp.remove();
});

describe.skipIf(!url)('schedules on three PostgreSQL scheduler processes', () => {
  it('runs every tick of a 2-second schedule exactly once over 20 seconds', async () => {
    requireBuilt();
    const bin = dispatchBinPath();
    schema = randomPgSchema('dispatch_schedules');
    const db = new URL(url!);
    db.searchParams.set('schema', schema);
    db.searchParams.set('pool_size', '4');
    const apiKey = `dsk_${randomBytes(24).toString('base64url')}`;
    const keys = generateSigningKeyPair();
    const env = { ...process.env, ...CLEAN_ENV, DISPATCH_API_KEY: apiKey, DISPATCH_SIGNING_KEY: privateKeyToPem(keys.privateKey) };
    const logs: string[][] = [];
    const instances = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const port = await freePort();
        const started = await startInstanceProcess(
          bin,
          ['serve', '--db', db.toString(), '--port', String(port), '--log-level', 'info'],
          `http://127.0.0.1:${port}`,
          env,
        );
        children.push(started.child);
        const lines: string[] = [];
        logs[i] = lines;
        started.child.stderr?.on('data', (d: Buffer) => lines.push(...d.toString().split('\n')));
        return started;
      }),
    );

    const appPort = await freePort();
    const tickLog = join(tmp.dir, 'ticks.jsonl');
    const app = start(process.execPath, [APP], {
      env: {
        ...CLEAN_ENV,
        DISPATCH_API_URL: instances[0]!.url,
        DISPATCH_API_KEY: apiKey,
        DISPATCH_ENDPOINT_URL: `http://127.0.0.1:${appPort}`,
        DISPATCH_ENDPOINT_ADDR: `127.0.0.1:${appPort}`,
        DISPATCH_VERIFICATION_KEY: publicKeyToBase64(keys.publicKey),
        TICK_LOG: tickLog,
      },
    });
    procs.push(app);
    await app.waitFor(/^ready$/, 30_000);

    // The schedule is declared once, seen by every instance.
    const clients = instances.map((i) => new DispatchClient({ apiUrl: i.url, apiKey }));
    for (const client of clients) {
      const names = (await client.listSchedules()).map((s) => s.name);
      expect(names).toEqual(['every2s', 'weekly']);
    }
    const weekly = (await clients[1]!.listSchedules()).find((s) => s.name === 'weekly')!;
    expect(weekly.timeZone).toBe('Europe/Paris');
    // Mondays 9:00 in Paris: 07:00 or 08:00 UTC.
    expect(weekly.nextTickTime!.getUTCDay()).toBe(1);
    expect([7, 8]).toContain(weekly.nextTickTime!.getUTCHours());

    await expect.poll(() => readTicks(tickLog, 'every2s').length, { timeout: 30_000, interval: 200 }).toBeGreaterThan(0);
    const first = Date.parse(readTicks(tickLog, 'every2s')[0]!.time);
    // 20 seconds of ticks after the first one.
    await expect.poll(() => readTicks(tickLog, 'every2s').some((t) => Date.parse(t.time) >= first + 20_000), { timeout: 60_000, interval: 250 }).toBe(true);
    await sleep(2_500); // the ticks of the window that may still be in flight
    const ticks = readTicks(tickLog, 'every2s').filter((t) => Date.parse(t.time) <= first + 20_000);
    const times = ticks.map((t) => Date.parse(t.time)).sort((a, b) => a - b);

    const unique = new Set(times);
    expect(unique.size, `a tick ran twice: ${ticks.map((t) => t.time).join(', ')}`).toBe(times.length);
    const gaps = times.slice(1).map((t, i) => t - times[i]!).filter((d) => d !== 2_000);
    expect(gaps, `ticks missing between ${new Date(first).toISOString()} and 20 s later`).toEqual([]);
    expect(times.length).toBe(11); // first, then every 2 s for 20 s
    expect(ticks.every((t) => t.missed === 0)).toBe(true);
    expect(new Set(ticks.map((t) => t.dispatchId)).size).toBe(ticks.length);

    // Which instance dispatched each tick (their logs), for the report.
    const perInstance = logs.map((lines) => new Set(lines.filter((l) => /schedule every2s: tick /.test(l)).map((l) => /tick (\S+)/.exec(l)![1])));
    const windowTimes = new Set(times.map((t) => new Date(t).toISOString()));
    const byInstance = perInstance.map((set) => [...set].filter((t) => windowTimes.has(t!)).length);
    // Every tick of the window was dispatched by exactly one instance.
    expect(byInstance.reduce((a, b) => a + b, 0)).toBe(times.length);
    const schedule = (await clients[2]!.listSchedules()).find((s) => s.name === 'every2s')!;
    expect(schedule.ticks).toBeGreaterThanOrEqual(times.length);
    console.log(
      `schedules (PostgreSQL, 3 instances): ${times.length} ticks in 20 s from ${new Date(first).toISOString()}, each run once (${unique.size} distinct tick times, 0 gaps); dispatched by instance: ${byInstance.join(' / ')}`,
    );
  }, 180_000);
});
