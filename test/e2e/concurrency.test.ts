/**
 * Adaptive concurrency end to end: TEMPORARY_ERROR answers from the app's
 * function lower the scheduler's limit for (endpoint, function); OK answers
 * raise it again; the app never sees more runs at once than the limit.
 */
import { Dispatch, TemporaryError } from '@dispatch/core';
import type { ConcurrencySnapshot } from '@dispatch/scheduler';
import { startTestScheduler, type TestScheduler } from '@dispatch/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { ConcurrencyProbe } from '../../packages/scheduler/test/support/concurrency-probe.js';

const silent = { warn() {}, error() {}, info() {} };
let t: TestScheduler | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('adaptive concurrency', () => {
  it('falls under TEMPORARY_ERROR and rises under OK', async () => {
    const d = new Dispatch({ env: {}, logger: silent });
    let failing = true;
    let probe: ConcurrencyProbe | undefined;
    const tries = new Map<number, number>();
    const work = d.function(async function processItem(item: number) {
      const { dispatchId } = d.context();
      probe!.started(dispatchId);
      try {
        await new Promise((resolve) => setTimeout(resolve, 15));
        const n = (tries.get(item) ?? 0) + 1;
        tries.set(item, n);
        if (failing && n === 1) throw new TemporaryError(`item ${item}: backend overloaded`);
        return item;
      } finally {
        probe!.ended(dispatchId);
      }
    });
    t = await startTestScheduler(d, { concurrency: { initial: 16, min: 1, max: 64 }, backoff: { initialMs: 10, maxMs: 50 } });
    probe = new ConcurrencyProbe(t.scheduler, t.endpointUrl, 'processItem');
    const limits: number[] = [];
    t.scheduler.on('concurrency', (s: ConcurrencySnapshot) => {
      if (s.function === 'processItem') limits.push(s.limit);
    });
    const limit = () => t!.scheduler.concurrency(t!.endpointUrl, 'processItem').limit;

    // Phase 1: every item fails once with TEMPORARY_ERROR.
    const batch1 = d.batch();
    for (let i = 0; i < 48; i++) batch1.add(work(i));
    const ids1 = await batch1.dispatch();
    for (const [i, id] of ids1.entries()) expect((await t.outcome(id)).value).toBe(i);
    const lowest = Math.min(...limits);
    expect(lowest).toBeLessThan(16);
    expect(probe.peak).toBeLessThanOrEqual(16);
    expect(probe.peak).toBeGreaterThan(1);
    expect(probe.checked).toBe(2 * 48);
    const afterFailures = limit();

    // Phase 2: everything succeeds.
    failing = false;
    const batch2 = d.batch();
    for (let i = 100; i < 400; i++) batch2.add(work(i));
    const ids2 = await batch2.dispatch();
    for (const [i, id] of ids2.entries()) expect((await t.outcome(id)).value).toBe(100 + i);
    expect(probe.checked).toBe(2 * 48 + 300);
    const afterSuccesses = limit();
    expect(afterSuccesses).toBeGreaterThan(afterFailures);
    expect(afterSuccesses).toBeGreaterThan(lowest);
    // At every run the app started, it had no more runs at once than the limit
    // under which the newest of them was claimed (not only the final limit).
    expect(probe.violations.join('\n')).toBe('');
    // The limit is visible through Get.
    const info = await t.scheduler.get(ids2[0]!);
    expect(info.concurrency?.limit).toBe(afterSuccesses);
  });
});
