/**
 * Memory with big inputs, with real processes: 5,000 calls of 200 KB each
 * (1 GB of inputs) through a `dispatch serve` scheduler. Its peak resident
 * set (VmHWM of its own process, from /proc) stays under 300 MB: the input is
 * stored once, a claim reads only what the runs need, and what the scheduler
 * holds follows the work in flight, not what is stored.
 */
import { join } from 'node:path';
import { DispatchClient } from '@dispatch/core';
import { encodeArgs } from '@dispatch/core/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, requireBuilt, tempDir, until } from '../e2e/helpers/processes.js';
import { counterLines, faultApp, rssOf, type ServedScheduler, serveScheduler, type SupervisedApp } from './fixtures/harness.js';

const CALLS = 5000;
const INPUT_BYTES = 200_000;
const BATCH = 50;
const tmp = tempDir('big-inputs');
let scheduler: ServedScheduler | undefined;
let app: SupervisedApp | undefined;

beforeAll(() => requireBuilt());
afterAll(async () => {
  await app?.down();
  await killAll([scheduler?.proc]);
  tmp.remove();
});

describe('big inputs', () => {
  it('runs 5,000 calls of 200 KB with a peak scheduler RSS under 300 MB', { timeout: 400_000 }, async () => {
    scheduler = await serveScheduler(tmp.dir, ['--log-level', 'warn']);
    expect(scheduler.pid).toBe(scheduler.proc.child.pid);
    const counter = join(tmp.dir, 'counter.log');
    app = await faultApp(scheduler, tmp.dir, counter, false);
    await app.up();
    const client = new DispatchClient({ apiUrl: scheduler.url, apiKey: scheduler.apiKey });
    const endpoint = app.endpoint;
    const text = (n: number) => `${n}:`.padEnd(INPUT_BYTES, 'abcdefghijklmnopqrstuvwxyz0123456789');

    const startedAt = Date.now();
    for (let n = 0; n < CALLS; n += BATCH) {
      await client.dispatch(Array.from({ length: BATCH }, (_, i) => ({ function: 'measure', endpoint, input: encodeArgs([n + i, text(n + i)]) })));
    }
    const dispatchedMb = rssOf(scheduler.pid);
    await until(async () => (await client.list({ function: 'measure', limit: 1 })).counts.succeeded === CALLS, 'every call succeeded', 300_000);
    const rss = rssOf(scheduler.pid);
    const executions = counterLines(counter).filter(([what]) => what === 'start').length;
    console.log(
      `${CALLS} calls of ${INPUT_BYTES / 1000} KB in ${Math.round((Date.now() - startedAt) / 1000)} s: scheduler peak RSS ${rss.peakMb.toFixed(0)} MB ` +
        `(after dispatching: ${dispatchedMb.currentMb.toFixed(0)} MB, at the end: ${rss.currentMb.toFixed(0)} MB); ${executions} executions`,
    );
    expect(executions).toBe(CALLS);
    const [last] = (await client.list({ function: 'measure', limit: 1 })).calls;
    const info = await client.get<number>(last!.dispatchId);
    expect(info.output).toBe(INPUT_BYTES);
    // Restart still finds the input (stored once).
    const restarted = await client.restart(last!.dispatchId);
    expect((restarted.input as [number, string])[1]).toHaveLength(INPUT_BYTES);
    expect((await client.wait<number>(last!.dispatchId, { timeoutMs: 60_000 })).done).toBe(true);
    expect(rss.peakMb).toBeLessThan(300);
  });
});
