/**
 * SQLite on a file system that fills up, with real processes: the scheduler
 * (`dispatch serve` of the built CLI) keeps its database on a small tmpfs
 * that the test mounts (the machine and CI run as root), the app
 * (fixtures/work-app.mjs) runs in its own process. Calls are accepted, then
 * a filler file takes the last byte: dispatches answer `unavailable` with a
 * message that says the database is full, `/healthz` says so (503), the
 * scheduler stays up; once the filler is deleted, every accepted call
 * completes, each run exactly once (the app's side-effect log).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DispatchApiError, DispatchClient, Status } from '@dispatch/core';
import { encodeArgs } from '@dispatch/core/protocol';
import { SqliteStore } from '@dispatch/scheduler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, killAll, type Proc, requireBuilt, tempDir } from '../e2e/helpers/processes.js';
import { countLines, dispatchPaced, startApp, startScheduler } from './helpers/faults.js';

const root = process.getuid?.() === 0;
if (!root) console.warn('SQLite disk-full test SKIPPED: mounting a tmpfs needs root (the machine and CI run as root)');

const procs: Array<Proc | undefined> = [];
const tmp = tempDir('faults-sqlite');
const mnt = join(tmp.dir, 'small-fs');
let mounted = false;

beforeAll(() => requireBuilt());
afterAll(async () => {
  await killAll(procs);
  if (mounted) execFileSync('umount', [mnt]);
  tmp.remove();
});

/** Writes a file until the file system has no byte left. */
function fill(path: string): number {
  const fd = openSync(path, 'w');
  let written = 0;
  try {
    for (const size of [1 << 20, 1 << 12, 1]) {
      const chunk = Buffer.alloc(size, 1);
      for (;;) {
        try {
          written += writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

describe.skipIf(!root)('SQLite on a file system that fills up', () => {
  it('answers unavailable with "the database is full", /healthz says so; once space returns every accepted call completes, run once', { timeout: 120_000 }, async () => {
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0700', 'tmpfs', mnt]);
    mounted = true;
    const db = join(mnt, 'dispatch', 'scheduler.db');
    const counter = join(tmp.dir, 'side-effects.log');
    const { proc: scheduler, ready } = await startScheduler(db, await freePort(), tmp.dir);
    procs.push(scheduler);
    const { proc: app, endpoint } = await startApp(ready, counter, tmp.dir, 100);
    procs.push(app);
    const client = new DispatchClient({ apiUrl: ready.url, apiKey: ready.apiKey });
    const once = new DispatchClient({ apiUrl: ready.url, apiKey: ready.apiKey, attempts: 1 });

    // Accepted before the disk fills: they run while it is full.
    const accepted = await dispatchPaced(client, endpoint, { total: 400, batch: 100, everyMs: 0, prefix: 'a' });
    const filler = join(mnt, 'filler');
    const fillerBytes = fill(filler);
    const fullAt = Date.now();

    // Dispatches (one try each) until one meets the full disk; those accepted meanwhile count too.
    let refused: DispatchApiError | undefined;
    let probes = 0;
    while (!refused && probes < 2000) {
      try {
        accepted.push(...(await once.dispatch([{ function: 'work', endpoint, input: encodeArgs([`p${probes}`]) }])));
      } catch (err) {
        if (!(err instanceof DispatchApiError)) throw err;
        refused = err;
      }
      probes++;
      if (!refused) fill(`${filler}-${probes}`); // what a finished checkpoint freed
    }
    expect(refused, `no dispatch was refused after ${probes} tries`).toBeDefined();
    expect([refused!.code, refused!.httpStatus]).toEqual(['unavailable', 503]);
    expect(refused!.message).toMatch(/^the scheduler's database is full \(SQLITE_FULL at .*\/dispatch\/scheduler\.db\): free disk space; calls already accepted are kept$/);

    const res = await fetch(`${ready.url}/healthz`);
    const health = (await res.json()) as { status: string; store: { ok: boolean; code: string; reason: string } };
    expect(res.status).toBe(503);
    expect(health).toMatchObject({ status: 'unavailable', store: { ok: false, code: 'SQLITE_FULL' } });
    expect(health.store.reason).toBe(refused!.message);

    // A dispatch through the default client meanwhile: it retries until the store takes it.
    const late = client.dispatch(Array.from({ length: 20 }, (_, i) => ({ function: 'work', endpoint, input: encodeArgs([`late${i}`]) })));
    late.catch(() => {});
    await new Promise((r) => setTimeout(r, 3000)); // results wait to be recorded meanwhile
    expect(scheduler.child.exitCode, scheduler.text().slice(-3000)).toBeNull();
    const fullMs = Date.now() - fullAt;

    // Space returns.
    for (let i = 0; i <= probes; i++) if (existsSync(i === 0 ? filler : `${filler}-${i}`)) unlinkSync(i === 0 ? filler : `${filler}-${i}`);
    accepted.push(...(await late));
    for (const id of accepted) {
      const outcome = await client.wait(id, { timeoutMs: 60_000 });
      expect(outcome.done, id).toBe(true);
      if (outcome.done) expect(outcome.status, `${id}: ${outcome.error?.message}`).toBe(Status.OK);
    }
    const after = (await (await fetch(`${ready.url}/healthz`)).json()) as { status: string; store: { ok: boolean } };
    expect(after).toMatchObject({ status: 'ok', store: { ok: true } });
    const log = {
      recordRetries: scheduler.all.filter((l) => /recording the result of .* failed: the scheduler's database is full/.test(l)).length,
      recordedAfterRetry: scheduler.all.filter((l) => /recorded the result of .* after \d+ tries/.test(l)).length,
      claimOutages: scheduler.all.filter((l) => /claiming due calls failed: the scheduler's database is full/.test(l)).length,
    };

    scheduler.kill('SIGTERM');
    expect(await scheduler.exited).toBe(0);
    const store = await SqliteStore.open({ path: db });
    try {
      const { counts } = await store.listCalls({ limit: 1 });
      // Nothing created twice, nothing lost: exactly the accepted calls, all succeeded.
      expect(new Set(accepted).size).toBe(accepted.length);
      expect(counts).toMatchObject({ succeeded: accepted.length, pending: 0, running: 0, failed: 0 });
      let exits = 0;
      for (const id of accepted) {
        const attempts = await store.getAttempts(id);
        expect(attempts.filter((a) => a.outcome === 'exit'), id).toHaveLength(1);
        exits++;
      }
      const runs = countLines(counter);
      expect([...runs.entries()].filter(([, n]) => n > 1)).toEqual([]);
      expect(runs.size).toBe(accepted.length);
      console.log(
        `[faults] sqlite disk full: ${JSON.stringify({ accepted: accepted.length, fillerBytes, dispatchesUntilRefused: probes, fullForMs: fullMs, executions: [...runs.values()].reduce((a, b) => a + b, 0), recordedOnce: exits, refused: refused!.message, ...log })}`,
      );
    } finally {
      await store.close();
    }
  });
});
