/**
 * Handles, delays, idempotency keys and resume end to end (issue 15),
 * through real processes: `dispatch run` (SQLite, and PostgreSQL when
 * DISPATCH_TEST_POSTGRES_URL is set) running fixtures/world-app.mjs, which
 * starts calls with `fn.start` / `fn.withOptions(...)` and awaits them with
 * `handle.result()` / `dispatch.result()` (the core's client only), and the
 * `dispatch` CLI (resume, get).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuilt } from './helpers/processes.js';
import { STORES, startWorld, type World } from './helpers/world.js';

beforeAll(() => requireBuilt());

describe.each(STORES)('handles, delays, keys and resume on %s', (store) => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld(store);
  }, 90_000);
  afterAll(async () => {
    await w?.stop();
  });

  it('handle.result() resolves to the value of a call that succeeds; dispatch.result() too, for any ID', async () => {
    const { dispatchId } = await w.start('quick', ['Ann']);
    expect(dispatchId).toMatch(/^\S+$/);
    expect(await w.result(dispatchId)).toEqual({ value: 'hello Ann', via: 'handle' });
    // An ID the app did not start (the CLI did): dispatch.result(id).
    const other = await w.cli('call', 'quick', '"Bob"', '--json', '--endpoint', w.endpoint);
    const otherId = (JSON.parse(other.stdout) as { dispatchId: string }).dispatchId;
    expect(await w.result(otherId)).toEqual({ value: 'hello Bob', via: 'dispatch.result' });
  }, 90_000);

  it('handle.result() throws the error of a call that failed for good: same class, name, message and status', async () => {
    const { dispatchId } = await w.start('failsForGood');
    expect(await w.result(dispatchId)).toEqual({
      error: { class: 'PermanentError', name: 'PermanentError', message: 'the card was declined', status: 7 },
      via: 'handle',
    });
  }, 90_000);

  it('handle.result({ timeout }) throws a TimeoutError when the call has not finished in time', async () => {
    const { dispatchId } = await w.start('slow');
    const r = await w.result(dispatchId, '1s');
    expect(r.error).toMatchObject({ class: 'TimeoutError', name: 'TimeoutError' });
    expect(r.error?.message).toMatch(new RegExp(`the call ${dispatchId} did not finish within 1000 ms \\(it is (pending|running|suspended)\\)`));
  }, 90_000);

  it('fn.withOptions({ delay }) does not run the call before its delay; startAt neither', async () => {
    const delayed = await w.start('stamp', [], { delay: '3s' });
    const info = await w.get(delayed.dispatchId);
    // Still waiting for its time (unless the machine was so slow that the delay passed): its next run is 3 s after its creation.
    if (info.state === 'pending') expect(Date.parse(info.nextRunAt) - Date.parse(info.createdAt)).toBeGreaterThanOrEqual(3000);
    const ranAt = (await w.result(delayed.dispatchId)).value as number;
    expect(ranAt - delayed.startedAt).toBeGreaterThanOrEqual(3000);
    const at = Date.now() + 2500;
    const scheduled = await w.start('stamp', [], { startAt: String(at) });
    const ranAt2 = (await w.result(scheduled.dispatchId)).value as number;
    expect(ranAt2).toBeGreaterThanOrEqual(at);
  }, 90_000);

  it('the same idempotency key twice makes one call: the second dispatch answers the first one\'s ID', async () => {
    const key = `order-${store}-42`;
    const first = await w.start('counted', [key], { key });
    const second = await w.start('counted', [key], { key });
    expect(second.dispatchId).toBe(first.dispatchId);
    expect(await w.result(first.dispatchId)).toMatchObject({ value: 1 });
    const counts = await w.control<Record<string, number>>('/count');
    expect(counts[`counted:${key}`]).toBe(1);
    expect((await w.get(first.dispatchId)).idempotencyKey).toBe(key);
  }, 90_000);

  it('dispatch resume runs a failed call again from its journal: the await that succeeded is not run again', async () => {
    const { dispatchId } = await w.start('pipeline');
    const failed = await w.result(dispatchId);
    expect(failed.error).toMatchObject({ class: 'PermanentError', message: 'stepB is broken until the fix is deployed' });
    const before = await w.control<Record<string, number>>('/count');
    expect(before.stepA).toBe(1);
    expect(before.stepB).toBe(1);
    // Resuming a call that did not fail is refused.
    const done = await w.start('quick', ['Cy']);
    await w.result(done.dispatchId);
    const refused = await w.cli('resume', done.dispatchId);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`the call ${done.dispatchId} is succeeded: only a failed or expired call can be resumed (use restart to run it again from its input)`);
    // The fix is deployed; resume.
    await w.control('/fix');
    const resumed = await w.cli('resume', dispatchId);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/resumed pipeline \S+ from its journal/);
    expect(await w.result(dispatchId)).toMatchObject({ value: 42 });
    const after = await w.control<Record<string, number>>('/count');
    expect(after.stepA).toBe(1); // its recorded result was delivered again, it did not run
    expect(after.stepB).toBe(2);
    expect((await w.get(dispatchId)).state).toBe('succeeded');
  }, 90_000);
});
