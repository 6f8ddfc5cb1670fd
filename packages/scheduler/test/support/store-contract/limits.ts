/**
 * Store contract: declared limits (issue 16) — the limits calls carry are
 * recorded for their (endpoint, function); a claim never leases more calls
 * than the concurrency limit allows (live leases count, expired ones do
 * not), nor more starts than the rate window allows; per-key limits are
 * per key and fair across keys; a due call held back says why (`limitWait`).
 * @module
 */
import { expect, it } from 'vitest';
import type { LimitSpec } from '../../../src/store/limits.js';
import { completion, describeContract, finished, newCall, NOW, type StoreContractHooks, type StoreFactory } from './fixtures.js';

const spec = (over: Partial<LimitSpec>): LimitSpec => ({ concurrency: 0, concurrencyPerKey: false, rateCount: 0, ratePeriodMs: 0, ratePerKey: false, ...over });

/**
 * Registers the tests of declared limits.
 * @example
 * limitsContract(() => SqliteStore.open({ path: ':memory:' }));
 */
export function limitsContract(makeStore: StoreFactory, hooks: StoreContractHooks = {}): void {
  describeContract('declared limits', makeStore, hooks, (t) => {
    const { claim } = t;

    it('leases at most `concurrency` calls of a function; expired leases do not count', async () => {
      const store = t.store;
      const limits = { spec: spec({ concurrency: 2 }), key: '' };
      const calls = Array.from({ length: 5 }, () => newCall({ function: 'limited', limits }));
      await store.insertCalls([...calls, newCall({ function: 'free' })]);

      const first = await claim({ leaseMs: 1000 });
      expect(first.calls.filter((c) => c.function === 'limited')).toHaveLength(2);
      expect(first.calls.filter((c) => c.function === 'free')).toHaveLength(1);
      const held = await claim({ leaseMs: 1000 });
      expect(held.calls).toEqual([]);
      // Held back by the limit: look again soon, not at once (no busy loop).
      expect(held.nextDueAt).not.toBeNull();
      expect(held.nextDueAt!).toBeGreaterThan(NOW);
      const waiting = calls.find((c) => !first.calls.some((f) => f.id === c.id))!;
      expect(await store.limitWait?.({ endpoint: waiting.endpoint, function: 'limited', limitKey: '' }, NOW)).toMatchObject({
        kind: 'concurrency',
        limit: 2,
        used: 2,
      });

      const done = first.calls.find((c) => c.function === 'limited')!;
      expect(await store.complete(completion(done.id, done.leaseToken, NOW + 1, finished()))).toBe(true);
      expect((await claim({ now: NOW + 2, leaseMs: 1000 })).calls).toHaveLength(1);
      // Every lease expired: the calls are due again and none counts as running.
      const later = await claim({ now: NOW + 5000, leaseMs: 1000 });
      expect(later.calls.filter((c) => c.function === 'limited')).toHaveLength(2);
    });

    it('applies a per-key limit per key, fairly: a key with a backlog does not hold back another key', async () => {
      const store = t.store;
      const of = (key: string) => ({ spec: spec({ concurrency: 1, concurrencyPerKey: true }), key });
      const busy = Array.from({ length: 20 }, () => newCall({ function: 'perUser', limits: of('busy') }));
      await store.insertCalls(busy);
      await store.insertCalls([newCall({ function: 'perUser', limits: of('other') })]);
      const got = await claim();
      expect(got.calls).toHaveLength(2);
      const keys = await Promise.all(got.calls.map(async (c) => (await store.getCall(c.id))!.limitKey));
      expect(keys.sort()).toEqual(['busy', 'other']);
      expect((await claim()).calls).toEqual([]);
      const pending = busy.find((b) => !got.calls.some((c) => c.id === b.id))!;
      expect(await store.limitWait?.({ endpoint: pending.endpoint, function: 'perUser', limitKey: 'busy' }, NOW)).toMatchObject({
        kind: 'concurrency',
        limit: 1,
        key: 'busy',
      });
      // The AIMD capacity still caps the claim, whatever the declared limit lets through.
      await store.insertCalls([newCall({ function: 'perUser', limits: of('third') }), newCall({ function: 'perUser', limits: of('fourth') })]);
      expect((await claim({ capacity: () => 1 })).calls).toHaveLength(1);
    });

    it('starts at most `rateCount` calls per window, on the wall clock', async () => {
      const store = t.store;
      const now = Date.now();
      const limits = { spec: spec({ rateCount: 3, ratePeriodMs: 1000 }), key: '' };
      await store.insertCalls(Array.from({ length: 5 }, () => newCall({ function: 'paced', limits }, now)));
      const first = await claim({ now });
      expect(first.calls).toHaveLength(3);
      const held = await claim({ now });
      expect(held.calls).toEqual([]);
      expect(held.nextDueAt).not.toBeNull();
      expect(held.nextDueAt!).toBeGreaterThan(now);
      expect(held.nextDueAt!).toBeLessThanOrEqual(now + 1000);
      expect(await store.limitWait?.({ endpoint: 'http://127.0.0.1:1', function: 'paced', limitKey: '' }, now)).toMatchObject({ kind: 'rate', limit: 3 });
      // Completing does not give a start back: the window does.
      for (const c of first.calls) await store.complete(completion(c.id, c.leaseToken, now + 1, finished()));
      expect((await claim({ now: now + 2 })).calls).toEqual([]);
      const after = now + 1000 + 400;
      expect((await claim({ now: after })).calls).toHaveLength(2);
    });

    it('tells when a limited function has its next call due', async () => {
      const store = t.store;
      const limits = { spec: spec({ concurrency: 2 }), key: '' };
      await store.insertCalls([newCall({ function: 'later', limits, dueAt: NOW + 500 })]);
      const none = await claim();
      expect(none.calls).toEqual([]);
      expect(none.nextDueAt).toBe(NOW + 500);
      expect((await claim({ now: NOW + 500 })).calls).toHaveLength(1);
    });

    it('keeps the latest limits a function declares', async () => {
      const store = t.store;
      await store.insertCalls(Array.from({ length: 3 }, () => newCall({ function: 'changing', limits: { spec: spec({ concurrency: 1 }), key: '' } })));
      expect((await claim()).calls).toHaveLength(1);
      await store.insertCalls([newCall({ function: 'changing', limits: { spec: spec({ concurrency: 3 }), key: '' } })]);
      expect((await claim({ now: NOW + 1 })).calls).toHaveLength(2);
    });
  });
}
