/**
 * An endpoint outage, with real processes: the app is down for 60 s while
 * 2,000 calls wait for it in a `dispatch serve` scheduler. The endpoint's
 * circuit opens at the first refused connection: no call is sent while it is
 * down but one probe now and then (0.5 s doubling to 5 s), and the scheduler
 * says so in one line per 10 s, not one per attempt. Once the app is back,
 * a probe connects, the queue is released and every call completes, run once.
 */
import { join } from 'node:path';
import { DispatchClient } from '@dispatch/core';
import { encodeArgs } from '@dispatch/core/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, requireBuilt, tempDir, until } from '../e2e/helpers/processes.js';
import { counterLines, faultApp, type ServedScheduler, serveScheduler, type SupervisedApp } from './fixtures/harness.js';

const CALLS = 2000;
const DOWN_MS = 60_000;
const tmp = tempDir('outage');
let scheduler: ServedScheduler | undefined;
let app: SupervisedApp | undefined;

beforeAll(() => requireBuilt());
afterAll(async () => {
  await app?.down();
  await killAll([scheduler?.proc]);
  tmp.remove();
});

describe('an endpoint outage', () => {
  it('makes a handful of attempts and log lines while the app is down for 60 s, then completes 2,000 calls', { timeout: 240_000 }, async () => {
    // debug: every attempt has a line (refused ones only at debug), so they can be counted.
    scheduler = await serveScheduler(tmp.dir, ['--log-level', 'debug']);
    const counter = join(tmp.dir, 'counter.log');
    app = await faultApp(scheduler, tmp.dir, counter, false);
    await app.up();
    const client = new DispatchClient({ apiUrl: scheduler.url, apiKey: scheduler.apiKey });
    const endpoint = app.endpoint;

    // The app goes down (kill -9), then 2,000 calls come for it.
    await app.down(true);
    const downAt = Date.now();
    const from = scheduler.proc.all.length;
    for (let n = 0; n < CALLS; n += 1000) {
      await client.dispatch(Array.from({ length: 1000 }, (_, i) => ({ function: 'work', endpoint, input: encodeArgs([n + i]) })));
    }
    await until(() => scheduler!.proc.all.some((l) => /unreachable \(ECONNREFUSED\)/.test(l)), 'the endpoint reported unreachable', 30_000);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, downAt + DOWN_MS - Date.now())));
    const whileDown = scheduler.proc.all.slice(from);
    await app.up();
    await until(async () => (await client.list({ function: 'work', limit: 1 })).counts.succeeded === CALLS, 'every call succeeded', 150_000);

    const attemptsWhileDown = whileDown.filter((l) => /run work .*status=TCP_ERROR/.test(l)).length;
    const linesWhileDown = whileDown.filter((l) => !/Z debug /.test(l));
    const closed = scheduler.proc.all.find((l) => /answers again after/.test(l));
    const executions = counterLines(counter).filter(([what]) => what === 'start').length;
    console.log(
      `outage of ${Math.round((Date.now() - downAt) / 1000)} s with ${CALLS} calls: ${attemptsWhileDown} attempts while down, ` +
        `${linesWhileDown.length} log lines (not debug) while down:\n${linesWhileDown.join('\n')}\n${closed}\n${executions} executions`,
    );
    expect(linesWhileDown.filter((l) => /unreachable \(ECONNREFUSED\): [\d,]+ call\(s\) waiting; next probe in/.test(l)).length).toBeGreaterThanOrEqual(1);
    // A handful, not thousands: the first refusals of the calls in flight when it opened, then probes (≤ 5 s apart).
    expect(attemptsWhileDown).toBeLessThanOrEqual(60);
    expect(linesWhileDown.length).toBeLessThanOrEqual(12);
    expect(closed).toMatch(/endpoint http:\/\/127\.0\.0\.1:\d+ answers again after [\d.]+ s unreachable \([\d,]+ refused attempt\(s\)\): its waiting calls are released/);
    expect(executions).toBe(CALLS);
  });
});
