/**
 * A poison call, with real processes: `poison` ends the app's process
 * (process.exit(1)) every time it runs, in an app that a supervisor (this
 * test) restarts at once, while 3,000 innocent calls of `work` run beside
 * it through a `dispatch serve` scheduler. The poison call is quarantined
 * after 5 crashes with an error that says so (shown by `dispatch get`),
 * every innocent call succeeds, and the only duplicate executions are those
 * of innocent calls that were in flight when the app died; the concurrency
 * limit of `work` is not lowered by the crashes.
 */
import { join } from 'node:path';
import { DispatchClient, Status } from '@dispatch/core';
import { encodeArgs } from '@dispatch/core/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLEAN_ENV, dispatchCli, killAll, requireBuilt, tempDir, until } from '../e2e/helpers/processes.js';
import { counterLines, faultApp, type ServedScheduler, serveScheduler, type SupervisedApp } from './fixtures/harness.js';

const INNOCENT = 3000;
const tmp = tempDir('poison');
let scheduler: ServedScheduler | undefined;
let app: SupervisedApp | undefined;

beforeAll(() => requireBuilt());
afterAll(async () => {
  await app?.down();
  await killAll([scheduler?.proc]);
  tmp.remove();
});

describe('a poison call', () => {
  it('is quarantined after 5 crashes of the app, while 3,000 other calls all succeed', { timeout: 240_000 }, async () => {
    scheduler = await serveScheduler(tmp.dir, ['--log-level', 'info']);
    const counter = join(tmp.dir, 'counter.log');
    app = await faultApp(scheduler, tmp.dir, counter, true);
    await app.up();
    const client = new DispatchClient({ apiUrl: scheduler.url, apiKey: scheduler.apiKey });
    const endpoint = app.endpoint;
    const work = (n: number) => ({ function: 'work', endpoint, input: encodeArgs([n]) });

    await client.dispatch(Array.from({ length: 1000 }, (_, n) => work(n)));
    const [poisonId] = await client.dispatch([{ function: 'poison', endpoint, input: encodeArgs(['p-1']) }]);
    for (let from = 1000; from < INNOCENT; from += 1000) {
      await client.dispatch(Array.from({ length: 1000 }, (_, i) => work(from + i)));
    }

    try {
      await until(async () => {
        const { counts } = await client.list({ limit: 1 });
        return counts.succeeded + counts.failed + counts.cancelled === INNOCENT + 1;
      }, 'every call finished', 180_000);
    } catch (err) {
      console.log(JSON.stringify((await client.list({ limit: 1 })).counts), app.crashes, '\n', scheduler.proc.all.filter((l) => !/outcome=exit/.test(l)).slice(-80).join('\n'));
      throw err;
    }

    const { counts } = await client.list({ function: 'work', limit: 1 });
    expect(counts.succeeded).toBe(INNOCENT);
    const poison = (await client.list({ function: 'poison', limit: 1 })).calls[0]!;
    expect(poison.dispatchId).toBe(poisonId);
    expect(poison.state).toBe('failed');
    expect(poison.status).toBe(Status.PERMANENT_ERROR);
    expect(poison.error?.name).toBe('QuarantinedError');
    expect(poison.error?.message).toMatch(/^quarantined: poison crashed the app at http:\/\/127\.0\.0\.1:\d+ 5 times in a row/);
    expect(poison.error?.message).toContain(`dispatch restart ${poisonId}`);

    // The CLI shows the error as it is.
    const shown = await dispatchCli(['get', poisonId!], { cwd: tmp.dir, env: { ...CLEAN_ENV, DISPATCH_API_URL: scheduler.url, DISPATCH_API_KEY: scheduler.apiKey } });
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/QuarantinedError/);
    expect(shown.stdout).toMatch(/crashed the app at .* 5 times in a row/);

    // What the app saw: the poison ran 5 times, one per crash; duplicates of
    // innocent calls are exactly the runs that died with the app.
    const lines = counterLines(counter);
    const poisonRuns = lines.filter(([what, fn]) => what === 'start' && fn === 'poison').length;
    const started = lines.filter(([what, fn]) => what === 'start' && fn === 'work');
    const ended = new Set(lines.filter(([what, fn]) => what === 'end' && fn === 'work').map(([, , key, pid]) => `${key} ${pid}`));
    const diedInFlight = started.filter(([, , key, pid]) => !ended.has(`${key} ${pid}`)).length;
    const duplicates = started.length - INNOCENT;
    const decreases = scheduler.proc.all.filter((l) => /concurrency work at .*: limit (\d+) → (\d+)/.test(l));
    const crashesSeen = scheduler.proc.all.filter((l) => /run poison .*status=TCP_ERROR/.test(l)).length;
    // Innocent runs whose connection dropped with the app (their answer never came back): the duplicates a crash costs.
    const dropped = scheduler.proc.all.filter((l) => /run work .*status=TCP_ERROR.*(ECONNRESET|socket hang up|closed before)/.test(l)).length;
    console.log(
      `poison: ${poisonRuns} runs, ${app.crashes} crashes of the app; work: ${INNOCENT} succeeded, ${started.length} executions, ` +
        `${duplicates} duplicates, ${diedInFlight} executions died in flight with the app, ${dropped} runs of work in flight at the crashes ` +
        `(connection dropped); concurrency changes of work: ${decreases.length} ` +
        `(${decreases.slice(0, 3).join(' | ')}); poison attempts seen as crashes by the scheduler: ${crashesSeen}`,
    );
    expect(app.crashes).toBe(5);
    expect(poisonRuns).toBe(5);
    // No duplicate beyond the calls in flight at each crash (a run that ended just before the
    // process did, its answer lost, is one of them too).
    expect(duplicates).toBeGreaterThanOrEqual(diedInFlight);
    expect(duplicates).toBeLessThanOrEqual(dropped);
    // The limit of the innocent function is not lowered by the crashes (it only grows).
    for (const line of decreases) {
      const [, before, after] = /limit (\d+) → (\d+)/.exec(line)!;
      expect(Number(after), line).toBeGreaterThan(Number(before));
    }
  });
});
