/**
 * Retries by status, backoff and expiration, end to end: the SDK's errors
 * become statuses in real RunResponses, and the scheduler acts on them.
 * The backoff is checked on the delays the scheduler plans (exact values or
 * the jitter's range); measured durations only as lower bounds (a retry
 * never starts before it is due).
 */
import { Dispatch, PermanentError, Status, TemporaryError, ThrottledError, TimeoutError } from '@dispatch/core';
import { startTestScheduler, type TestAttempt, type TestScheduler } from '@dispatch/testing';
import { afterEach, describe, expect, it } from 'vitest';

const silent = { warn() {}, error() {}, info() {} };
let t: TestScheduler | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const app = () => new Dispatch({ env: {}, logger: silent });
/** Time from the end of one attempt to the start of the next. */
const gaps = (attempts: TestAttempt[]) =>
  attempts.slice(1).map((a, i) => a.startedAt.getTime() - (attempts[i]!.startedAt.getTime() + attempts[i]!.durationMs));

/**
 * The backoff the scheduler plans for each retry, per dispatch ID: the
 * retry's due time minus the end of the failed attempt (its own numbers, not
 * a measured duration).
 */
function plannedDelays(t: TestScheduler): Map<string, number[]> {
  const delays = new Map<string, number[]>();
  t.scheduler.on('attempt', (e) => {
    if (e.outcome !== 'retry') return;
    delays.set(e.dispatchId, [...(delays.get(e.dispatchId) ?? []), e.nextRunAt! - (e.startedAt + e.durationMs)]);
  });
  return delays;
}

describe('retries by status', () => {
  it('retries TEMPORARY_ERROR with exponential backoff until the function succeeds', async () => {
    const dispatch = app();
    let runs = 0;
    const flaky = dispatch.function(async function flakyReport(id: string) {
      runs++;
      if (runs <= 4) throw new TemporaryError(`report service down (run ${runs})`);
      return `report ${id}`;
    });
    // Equal jitter: the n-th retry waits between half and all of 40 ms × 2^(n−1).
    t = await startTestScheduler(dispatch, { backoff: { initialMs: 40, maxMs: 10_000, multiplier: 2, jitter: 'equal' } });
    const planned = plannedDelays(t);
    const r = await t.run(flaky, 'r1');
    expect(r).toMatchObject({ status: Status.OK, value: 'report r1', attempts: 5 });
    const attempts = await t.attempts(r.id);
    expect(attempts.map((a) => a.statusName)).toEqual(['TEMPORARY_ERROR', 'TEMPORARY_ERROR', 'TEMPORARY_ERROR', 'TEMPORARY_ERROR', 'OK']);
    expect(attempts.map((a) => a.outcome)).toEqual(['retry', 'retry', 'retry', 'retry', 'exit']);
    expect(attempts[2]?.error).toEqual({ name: 'TemporaryError', message: 'report service down (run 3)' });
    // The backoff grows: the n-th retry is planned between half and all of
    // 40 ms × 2^(n−1) after the attempt (20–40, 40–80, 80–160, 160–320 ms:
    // ranges that do not overlap), and starts no earlier.
    const delays = planned.get(r.id)!;
    expect(delays).toHaveLength(4);
    for (const [i, d] of delays.entries()) {
      expect(d, `retry ${i + 1}`).toBeGreaterThanOrEqual(20 * 2 ** i);
      expect(d, `retry ${i + 1}`).toBeLessThanOrEqual(40 * 2 ** i);
    }
    for (const [i, gap] of gaps(attempts).entries()) expect(gap, `retry ${i + 1}`).toBeGreaterThanOrEqual(delays[i]! - 1);
  });

  it('does not retry PERMANENT_ERROR', async () => {
    const dispatch = app();
    let runs = 0;
    const charge = dispatch.function(async function charge(card: string) {
      runs++;
      throw new PermanentError(`card ${card} declined`);
    });
    t = await startTestScheduler(dispatch);
    const r = await t.run(charge, 'card_9');
    expect(r.status).toBe(Status.PERMANENT_ERROR);
    expect(r.state).toBe('failed');
    expect(r.error).toMatchObject({ name: 'PermanentError', message: 'card card_9 declined' });
    expect(runs).toBe(1);
    expect((await t.attempts(r.id)).map((a) => [a.statusName, a.outcome])).toEqual([['PERMANENT_ERROR', 'exit']]);
    await expect(t.call(charge, 'card_8')).rejects.toThrow('card card_8 declined');
  });

  it('retries THROTTLED (backing off harder) and TIMEOUT', async () => {
    const dispatch = app();
    const runs = new Map<string, number>();
    const count = (name: string) => {
      const n = (runs.get(name) ?? 0) + 1;
      runs.set(name, n);
      return n;
    };
    const throttled = dispatch.function(async function callRateLimitedApi() {
      if (count('throttled') === 1) throw new ThrottledError('429 from the API');
      return 'throttled then ok';
    });
    const slow = dispatch.function(async function slowQuery() {
      if (count('timeout') === 1) throw new TimeoutError('the query took too long');
      return 'timed out then ok';
    });
    t = await startTestScheduler(dispatch, { backoff: { initialMs: 30, throttledFactor: 4, jitter: 'none' } });
    const planned = plannedDelays(t);
    const a = await t.run(throttled);
    const b = await t.run(slow);
    expect(a).toMatchObject({ status: Status.OK, value: 'throttled then ok', attempts: 2 });
    expect(b).toMatchObject({ status: Status.OK, value: 'timed out then ok', attempts: 2 });
    const ta = await t.attempts(a.id);
    const tb = await t.attempts(b.id);
    expect(ta.map((x) => x.statusName)).toEqual(['THROTTLED', 'OK']);
    expect(tb.map((x) => x.statusName)).toEqual(['TIMEOUT', 'OK']);
    // No jitter: THROTTLED is retried 30 ms × 4 after the attempt, TIMEOUT 30 ms, and not earlier.
    expect(planned.get(a.id)).toEqual([120]);
    expect(planned.get(b.id)).toEqual([30]);
    expect(gaps(ta)[0]).toBeGreaterThanOrEqual(120 - 1);
    expect(gaps(tb)[0]).toBeGreaterThanOrEqual(30 - 1);
  });

  it('retries a run that outlasts the request timeout (TIMEOUT from the scheduler)', async () => {
    const dispatch = app();
    let runs = 0;
    const report = dispatch.function(async function buildReport() {
      runs++;
      if (runs === 1) await new Promise((resolve) => setTimeout(resolve, 1500));
      return `built on run ${runs}`;
    });
    t = await startTestScheduler(dispatch, { requestTimeoutMs: 300 });
    const r = await t.run(report);
    expect(r.value).toBe('built on run 2');
    const [first] = await t.attempts(r.id);
    expect(first).toMatchObject({ statusName: 'TIMEOUT', outcome: 'retry' });
  });
});

describe('expiration', () => {
  it('ends a call that keeps failing past its expiration with TIMEOUT and says it expired', async () => {
    const dispatch = app();
    let runs = 0;
    const down = dispatch.function(async function alwaysDown() {
      runs++;
      throw new TemporaryError('still down');
    });
    t = await startTestScheduler(dispatch, { backoff: { initialMs: 20, maxMs: 100 } });
    const [id] = await dispatch.batch().add(down.withOptions({ expiration: '1s' })()).dispatch();
    const r = await t.outcome(id!);
    expect(r.status).toBe(Status.TIMEOUT);
    expect(r.state).toBe('failed');
    expect(r.error?.message).toMatch(/expired/);
    expect(runs).toBeGreaterThan(1);
    const call = await t.get(id!);
    expect(call.finishedAt!.getTime() - call.createdAt.getTime()).toBeGreaterThanOrEqual(1000);
  });

  it('a parent awaiting an expired child receives its TIMEOUT error', async () => {
    const dispatch = app();
    const down = dispatch.function(async function upstream() {
      throw new TemporaryError('upstream down');
    });
    const parent = dispatch.function(async function caller() {
      try {
        return await down.withOptions({ expiration: '1s' })();
      } catch (err) {
        return `caught ${(err as Error).name}: ${(err as Error).message.slice(0, 16)}`;
      }
    });
    t = await startTestScheduler(dispatch, { backoff: { initialMs: 20, maxMs: 100 } });
    expect(await t.call(parent)).toBe('caught TimeoutError: the call expired');
  });
});
