/**
 * kill -9 of the app process in the middle of a function, after two
 * checkpoints: once the app is started again, the function resumes from its
 * last checkpoint — the calls it had completed are not run again.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Status } from '@dispatch/core';
import { encodeArgs, decodeValue } from '@dispatch/core/protocol';
import { Scheduler } from '@dispatch/scheduler';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, killAll, type Proc, requireBuilt, start, tempDir } from '../e2e/helpers/processes.js';

const APP = fileURLToPath(new URL('./fixtures/pipeline-app.mjs', import.meta.url));
const tmp = tempDir('app-crash');
let scheduler: Scheduler | undefined;
const procs: Proc[] = [];

beforeAll(() => requireBuilt());
afterAll(async () => {
  await killAll(procs);
  await scheduler?.close();
  tmp.remove();
});

describe('app crash', () => {
  it('resumes a function from its last checkpoint after the app is killed mid-function and started again', { timeout: 60_000 }, async () => {
    scheduler = await Scheduler.start({
      db: join(tmp.dir, 'scheduler.db'),
      port: 0,
      logLevel: 'silent',
      backoff: { initialMs: 50, maxMs: 400 },
    });
    const counter = join(tmp.dir, 'side-effects.log');
    writeFileSync(counter, '');
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const startApp = (generation: string) => {
      const p = start(process.execPath, [APP], {
        cwd: tmp.dir,
        env: {
          DISPATCH_API_URL: scheduler!.url,
          DISPATCH_API_KEY: scheduler!.apiKey,
          DISPATCH_ENDPOINT_URL: endpoint,
          DISPATCH_ENDPOINT_ADDR: `127.0.0.1:${port}`,
          DISPATCH_VERIFICATION_KEY: scheduler!.verificationKey,
          COUNTER_FILE: counter,
          CRASH_GENERATION: generation,
        },
      });
      procs.push(p);
      return p;
    };
    const lines = () => readFileSync(counter, 'utf8').split('\n').filter(Boolean);

    const first = startApp('1');
    await first.waitFor(/app generation 1 ready/);
    const [id] = await scheduler.dispatch([{ function: 'fulfil', endpoint, input: encodeArgs(['o-7']) }]);
    // Wait until fulfil is past its two checkpoints and hangs inside its run, then kill -9 the app.
    for (let i = 0; i < 1000 && !lines().includes('fulfil after checkpoints o-7 (generation 1)'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(lines()).toContain('fulfil after checkpoints o-7 (generation 1)');
    first.kill('SIGKILL');
    expect(await first.exited).toBe(137);

    const second = startApp('2');
    await second.waitFor(/app generation 2 ready/);
    const outcome = await scheduler.wait(id!, 30_000);
    expect(outcome.done).toBe(true);
    if (!outcome.done) return;
    expect(outcome.status).toBe(Status.OK);
    expect(decodeValue(outcome.result.output)).toEqual({ receipt: 'receipt-o-7', parcel: 'parcel-o-7', tracking: 'tracking-o-7' });

    // charge and pack ran once, in the first app; ship once, in the second.
    expect(lines().filter((l) => !l.startsWith('fulfil'))).toEqual([
      'charge o-7 (generation 1)',
      'pack o-7 (generation 1)',
      'ship o-7 parcel-o-7 (generation 2)',
    ]);
    // fulfil itself replayed its journal in the second app and went on from there.
    expect(lines()).toContain('fulfil after checkpoints o-7 (generation 2)');
    // The scheduler saw the run die with the app and retried it.
    const info = await scheduler.get(id!);
    const statuses = (info.attemptHistory ?? []).map((a): [number, string] => [a.status ?? 0, a.outcome ?? '']);
    expect(statuses.slice(0, 2)).toEqual([
      [Status.OK, 'suspend'],
      [Status.OK, 'suspend'],
    ]);
    expect(statuses.some(([s, o]) => s === Status.TCP_ERROR && o === 'retry')).toBe(true);
    expect(statuses.at(-1)).toEqual([Status.OK, 'exit']);
    expect(info.children).toHaveLength(3);
  });
});
