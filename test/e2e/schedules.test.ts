/**
 * Schedules through real processes on the SQLite store (issue 15): a
 * `dispatch serve` process, an app process with scheduled functions (its
 * side-effect log counts the ticks run), and the CLI. Ticks missed while
 * the scheduler was stopped run once on its return (`missed: 'run-once'`)
 * or not at all (`missed: 'skip'`); `dispatch schedules pause|resume|remove`
 * act on them; a bad cron expression stops the app at registration; a
 * scheduler without schedules is reported as such.
 */
import http from 'node:http';
import type net from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLEAN_ENV, DISPATCH_BIN, dispatchCli, freePort, killAll, type Proc, ROOT, requireBuilt, start, tempDir } from './helpers/processes.js';

const APP = join(ROOT, 'test/e2e/fixtures/schedules-app.mjs');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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

const procs: Proc[] = [];
const tmp = tempDir('schedules');
afterAll(async () => {
  await killAll(procs);
  tmp.remove();
});

async function stop(p: Proc): Promise<void> {
  p.kill('SIGTERM');
  const done = await Promise.race([p.exited.then(() => true), sleep(10_000).then(() => false)]);
  if (!done) {
    p.kill('SIGKILL');
    await p.exited;
  }
}

/** `dispatch serve` on the SQLite file `db`, on `port`; resolves once it prints its key. */
async function serve(db: string, port: number): Promise<{ proc: Proc; apiUrl: string; apiKey: string; verificationKey: string }> {
  const proc = start(process.execPath, [DISPATCH_BIN, 'serve', '--db', db, '--port', String(port), '--log-level', 'info'], { cwd: tmp.dir, env: CLEAN_ENV });
  procs.push(proc);
  const apiUrl = /API URL\s+(\S+)/.exec(await proc.waitFor(/API URL/, 30_000))![1]!;
  const apiKey = /API key\s+(\S+)/.exec(await proc.waitFor(/API key/, 30_000))![1]!;
  const verificationKey = /verification key\s+(\S+)/.exec(await proc.waitFor(/verification key/, 30_000))![1]!;
  return { proc, apiUrl, apiKey, verificationKey };
}

async function startApp(
  scheduler: { apiUrl: string; apiKey: string; verificationKey: string },
  tickLog: string,
  extra: NodeJS.ProcessEnv = {},
): Promise<Proc> {
  const port = await freePort();
  const app = start(process.execPath, [APP], {
    env: {
      ...CLEAN_ENV,
      DISPATCH_API_URL: scheduler.apiUrl,
      DISPATCH_API_KEY: scheduler.apiKey,
      DISPATCH_ENDPOINT_URL: `http://127.0.0.1:${port}`,
      DISPATCH_ENDPOINT_ADDR: `127.0.0.1:${port}`,
      DISPATCH_VERIFICATION_KEY: scheduler.verificationKey,
      TICK_LOG: tickLog,
      ...extra,
    },
  });
  procs.push(app);
  return app;
}

describe('schedules on the SQLite store (dispatch serve, an app, the CLI)', () => {
  it('runs the ticks missed while the scheduler was stopped once on its return (or skips them), and pauses and resumes through the CLI', async () => {
    requireBuilt();
    const db = join(tmp.dir, 'scheduler.db');
    const port = await freePort();
    let scheduler = await serve(db, port);
    const tickLog = join(tmp.dir, 'ticks.jsonl');
    const app = await startApp(scheduler, tickLog, { SKIP_SCHEDULE: '1' });
    await app.waitFor(/^ready$/, 30_000);
    expect(app.text()).toMatch(/3 schedule\(s\) declared to the scheduler/);
    const cliEnv = { ...CLEAN_ENV, DISPATCH_API_URL: scheduler.apiUrl, DISPATCH_API_KEY: scheduler.apiKey };
    const cli = (...args: string[]) => dispatchCli(args, { cwd: tmp.dir, env: cliEnv });

    // `dispatch schedules` lists them with their next run.
    const listed = await cli('schedules');
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/NAME\s+CRON\s+TIME ZONE\s+STATE\s+NEXT RUN/);
    // The next run: ahead, or just passed when the listing lands as a tick falls due (a loaded machine: "(41 ms ago)").
    expect(listed.stdout).toMatch(/every2s\s+\*\/2 \* \* \* \* \*\s+UTC\s+active\s+\S+Z \((in \d.*|[\d.]+ m?s ago)\)/);
    expect(listed.stdout).toMatch(/weekly\s+0 9 \* \* 1\s+Europe\/Paris\s+active/);

    // Regular ticks, then the scheduler stops for 9 seconds.
    await expect.poll(() => readTicks(tickLog, 'every2s').length, { timeout: 30_000, interval: 200 }).toBeGreaterThanOrEqual(2);
    await expect.poll(() => readTicks(tickLog, 'every2sSkip').length, { timeout: 30_000, interval: 200 }).toBeGreaterThanOrEqual(2);
    await stop(scheduler.proc);
    const stoppedAt = Date.now();
    const before = readTicks(tickLog, 'every2s');
    const beforeSkip = readTicks(tickLog, 'every2sSkip');
    await sleep(9_000);
    scheduler = await serve(db, port);
    const returnedAt = Date.now();

    // run-once: the first tick after the return stands for every tick missed meanwhile.
    await expect.poll(() => readTicks(tickLog, 'every2s').length, { timeout: 30_000, interval: 200 }).toBeGreaterThan(before.length);
    const lastBefore = Date.parse(before.at(-1)!.time);
    const firstAfter = readTicks(tickLog, 'every2s')[before.length]!;
    const missedTicks = (Date.parse(firstAfter.time) - lastBefore) / 2_000 - 1;
    expect(missedTicks).toBeGreaterThanOrEqual(3);
    expect(firstAfter.missed).toBe(missedTicks);
    expect(Date.parse(firstAfter.time)).toBeLessThanOrEqual(returnedAt);
    // ...and each later tick runs once, 2 s apart.
    await expect.poll(() => readTicks(tickLog, 'every2s').length, { timeout: 30_000, interval: 200 }).toBeGreaterThanOrEqual(before.length + 3);
    const after = readTicks(tickLog, 'every2s').slice(before.length).map((t) => Date.parse(t.time));
    expect(new Set(after).size).toBe(after.length);
    expect(after.slice(1).map((t, i) => t - after[i]!)).toEqual(after.slice(1).map(() => 2_000));

    // skip: the missed ticks do not run; the next regular one does.
    await expect.poll(() => readTicks(tickLog, 'every2sSkip').length, { timeout: 30_000, interval: 200 }).toBeGreaterThan(beforeSkip.length);
    const skipAfter = readTicks(tickLog, 'every2sSkip')[beforeSkip.length]!;
    // The first tick run is the latest one, found within 5 s of its time; it reports the ticks skipped before it.
    const skippedBefore = (Date.parse(skipAfter.time) - Date.parse(beforeSkip.at(-1)!.time)) / 2_000 - 1;
    expect(skippedBefore).toBeGreaterThanOrEqual(2);
    expect(skipAfter.missed).toBe(skippedBefore);
    expect(returnedAt - Date.parse(skipAfter.time)).toBeLessThanOrEqual(5_000 + 2_000);
    const skipJson = JSON.parse((await cli('schedules', '--json')).stdout) as { schedules: Array<{ name: string; skippedTicks: number; ticks: number }> };
    const skipped = skipJson.schedules.find((s) => s.name === 'every2sSkip')!;
    expect(skipped.skippedTicks).toBeGreaterThanOrEqual(3);
    console.log(
      `schedules (SQLite): scheduler stopped ${((returnedAt - stoppedAt) / 1000).toFixed(1)} s; run-once: ${missedTicks} missed ticks → 1 run (tick ${firstAfter.time}, missed ${firstAfter.missed}); skip: ${skipped.skippedTicks} ticks skipped`,
    );

    // Pause through the CLI: no tick runs until resumed.
    const paused = await cli('schedules', 'pause', 'every2s');
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stdout).toMatch(/paused the schedule every2s/);
    const pausedAt = Date.now();
    const countAtPause = readTicks(tickLog, 'every2s').length;
    expect((await cli('schedules')).stdout).toMatch(/every2s\s+\S+ \S+ \S+ \S+ \S+ \S+\s+UTC\s+paused\s+- \(paused\)/);
    await sleep(7_000);
    const duringPause = readTicks(tickLog, 'every2s').filter((t) => Date.parse(t.time) > pausedAt + 1_000);
    expect(duringPause).toEqual([]);
    expect(readTicks(tickLog, 'every2s').length).toBeLessThanOrEqual(countAtPause + 1); // a tick already in flight at the pause
    const resumed = await cli('schedules', 'resume', 'every2s');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/the schedule every2s is active: next run/);
    const resumedAt = Date.now();
    await expect.poll(() => readTicks(tickLog, 'every2s').filter((t) => Date.parse(t.time) >= resumedAt - 1_000).length, { timeout: 30_000, interval: 200 }).toBeGreaterThanOrEqual(2);
    // The ticks of the pause were not run on resume.
    const resumedTicks = readTicks(tickLog, 'every2s').filter((t) => Date.parse(t.time) > pausedAt + 1_000);
    expect(resumedTicks.every((t) => Date.parse(t.time) >= resumedAt - 1_000 && t.missed === 0)).toBe(true);

    // Remove: gone from the list; an unknown name is a clear error.
    const removed = await cli('schedules', 'remove', 'every2sSkip');
    expect(removed.code, removed.stderr).toBe(0);
    expect((await cli('schedules')).stdout).not.toMatch(/every2sSkip/);
    const unknown = await cli('schedules', 'pause', 'nope');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/no schedule named "nope": `dispatch schedules` lists them/);

    // The app restarted without the skip schedule: its declaration removes what it no longer has.
    await stop(app);
    const again = await startApp(scheduler, tickLog);
    await again.waitFor(/^ready$/, 30_000);
    const names = (JSON.parse((await cli('schedules', '--json')).stdout) as { schedules: Array<{ name: string }> }).schedules.map((s) => s.name);
    expect(names).toEqual(['every2s', 'weekly']);
    await stop(again);
    await stop(scheduler.proc);
  }, 180_000);

  it('refuses a bad cron expression at registration, naming it', async () => {
    requireBuilt();
    const app = await startApp({ apiUrl: 'http://127.0.0.1:9', apiKey: 'unused-key-0123456789', verificationKey: '' }, join(tmp.dir, 'bad.jsonl'), {
      SCHEDULE_CRON: '61 * * * *',
    });
    expect(await app.exited).not.toBe(0);
    expect(app.text()).toMatch(/TypeError: the schedule of "every2s" has an invalid cron expression "61 \* \* \* \*" \(Invalid value for minute: 61\); use five fields/);
    expect(app.text()).not.toMatch(/^ready$/m);
  }, 60_000);

  it('says that a scheduler without schedules does not support them', async () => {
    requireBuilt();
    // A scheduler of before schedules: it answers 404 for the ScheduleService.
    const requests: string[] = [];
    const old = http.createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      req.resume();
      const body = JSON.stringify({ code: 'not_found', message: `no procedure at ${req.url}` });
      res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise<void>((resolve) => old.listen(0, '127.0.0.1', resolve));
    try {
      const apiUrl = `http://127.0.0.1:${(old.address() as net.AddressInfo).port}`;
      const app = await startApp({ apiUrl, apiKey: 'dsk_0123456789abcdef', verificationKey: '' }, join(tmp.dir, 'old.jsonl'));
      expect(await app.exited).not.toBe(0);
      expect(app.text()).toMatch(
        /the scheduler at http:\/\/127\.0\.0\.1:\d+ does not support schedules \(it has no dispatch\.typescript\.v1\.ScheduleService\/DeclareSchedules\)/,
      );
      expect(requests).toContain('POST /dispatch.typescript.v1.ScheduleService/DeclareSchedules');
      const cli = await dispatchCli(['schedules'], { cwd: tmp.dir, env: { ...CLEAN_ENV, DISPATCH_API_URL: apiUrl, DISPATCH_API_KEY: 'dsk_0123456789abcdef' } });
      expect(cli.code).not.toBe(0);
      expect(cli.stderr).toMatch(/does not support schedules/);
    } finally {
      await new Promise<void>((resolve) => old.close(() => resolve()));
    }
  }, 60_000);
});
