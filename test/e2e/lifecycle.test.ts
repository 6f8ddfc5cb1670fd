/**
 * Cancellation through the scheduler's API and durable sleeps, end to end.
 */
import { Dispatch, DispatchClient, Status, TemporaryError } from '@dispatch/core';
import { startTestScheduler, type TestScheduler } from '@dispatch/testing';
import { afterEach, describe, expect, it } from 'vitest';

const silent = { warn() {}, error() {}, info() {} };
let t: TestScheduler | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const app = () => new Dispatch({ env: {}, logger: silent });
const api = (t: TestScheduler) => new DispatchClient({ apiUrl: t.apiUrl, apiKey: t.apiKey });

async function until(predicate: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('cancel', () => {
  it('cancels a suspended call and its descendants through the API', async () => {
    const d = app();
    const nap = d.function(async function nap() {
      await d.sleep('1h');
      return 'rested';
    });
    const parent = d.function(async function waitForNap() {
      return await nap();
    });
    t = await startTestScheduler(d);
    const id = await t.start(parent);
    await until(async () => {
      const call = await t!.get(id);
      return call.children.length === 1 && (await t!.get(call.children[0]!)).state === 'suspended';
    }, 'the nap to start sleeping');
    const [childId] = (await t.get(id)).children;
    expect(await api(t).cancel(id)).toBe(2);
    const r = await t.outcome(id);
    expect(r).toMatchObject({ state: 'cancelled', status: Status.PERMANENT_ERROR });
    expect(r.error?.name).toBe('CancelledError');
    expect(r.error?.message).toMatch(/cancelled/);
    expect((await t.get(childId!)).state).toBe('cancelled');
    // Cancelling again finds nothing left to cancel.
    expect(await api(t).cancel(id)).toBe(0);
  });

  it('a parent awaiting a cancelled child gets its CancelledError and carries on', async () => {
    const d = app();
    const nap = d.function(async function longNap() {
      await d.sleep('1h');
    });
    const parent = d.function(async function tolerant() {
      try {
        await nap();
        return 'napped';
      } catch (err) {
        return `child ended: ${(err as Error).name}`;
      }
    });
    t = await startTestScheduler(d);
    const id = await t.start(parent);
    await until(async () => (await t!.get(id)).children.length === 1, 'the child call');
    const [childId] = (await t.get(id)).children;
    await until(async () => (await t!.get(childId!)).state === 'suspended', 'the child to sleep');
    expect(await api(t).cancel(childId!)).toBe(1);
    expect((await t.outcome(id)).value).toBe('child ended: CancelledError');
  });

  it('stops retrying a cancelled call', async () => {
    const d = app();
    let runs = 0;
    let otherRuns = 0;
    const down = d.function(async function keepsFailing() {
      runs++;
      throw new TemporaryError('down');
    });
    const alsoDown = d.function(async function alsoFailing() {
      otherRuns++;
      throw new TemporaryError('down too');
    });
    t = await startTestScheduler(d, { backoff: { initialMs: 20, maxMs: 50 } });
    const id = await t.start(down);
    await until(() => runs >= 3, 'three runs');
    await api(t).cancel(id);
    const r = await t.outcome(id);
    expect(r.state).toBe('cancelled');
    const atCancel = runs;
    // Nothing more happens to the cancelled call while another call that
    // fails the same way (same backoff, at most 50 ms) is retried ten times:
    // a call still being retried would have run several times meanwhile.
    const otherId = await t.start(alsoDown);
    await until(() => otherRuns >= 10, 'ten runs of another failing call');
    expect(runs - atCancel, 'runs of the cancelled call after it was cancelled').toBeLessThanOrEqual(1); // at most the run in flight
    expect((await t.get(id)).state).toBe('cancelled');
    expect(await api(t).cancel(otherId)).toBe(1);
  });
});

describe('durable sleep', () => {
  it('suspends the function on a timer kept by the scheduler and resumes it after the delay', async () => {
    const d = app();
    const after: string[] = [];
    const remind = d.function(async function remindLater(user: string) {
      await d.sleep('1s');
      after.push(user);
      return `reminded ${user}`;
    });
    t = await startTestScheduler(d);
    const r = await t.run(remind, 'ada');
    expect(r.value).toBe('reminded ada');
    expect(after).toEqual(['ada']);
    const attempts = await t.attempts(r.id);
    expect(attempts.map((a) => [a.outcome, a.resume])).toEqual([
      ['suspend', false],
      ['exit', true],
    ]);
    const [first, second] = attempts;
    expect(second!.startedAt.getTime() - first!.startedAt.getTime()).toBeGreaterThanOrEqual(990);
    expect((await t.get(r.id)).children).toEqual([]); // a timer, not a call
  });

  it('uses a sleep as a race timeout', async () => {
    const d = app();
    const slow = d.function(async function slowLookup() {
      await d.sleep('1h');
      return 'found';
    });
    const lookup = d.function(async function lookupWithTimeout() {
      const winner = await d.race([slow(), d.sleep('1s').then(() => 'timed out')]);
      return winner;
    });
    t = await startTestScheduler(d);
    expect(await t.call(lookup)).toBe('timed out');
  });
});
