/**
 * Store contract: what metrics and tracing read from a store — the live
 * counts per function and state (`countLive`, for `/metrics`) and the trace
 * context of a call, kept from its insertion to every claim.
 * @module
 */
import { expect, it } from 'vitest';
import { childOf, completion, describeContract, finished, HOUR, newCall, NOW, type StoreContractHooks, type StoreFactory, suspendOutcome } from './fixtures.js';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

/**
 * Registers the tests of live counts and trace contexts.
 * @example
 * observabilityContract(() => SqliteStore.open({ path: ':memory:' }));
 */
export function observabilityContract(makeStore: StoreFactory, hooks: StoreContractHooks = {}): void {
  describeContract('observability', makeStore, hooks, (t) => {
    it('counts unfinished calls per function and state, and the pending ones due', async () => {
      const store = t.store;
      expect(store.countLive).toBeTypeOf('function');
      expect(await store.countLive!(NOW)).toEqual([]);
      const later = newCall({ function: 'b', dueAt: NOW + HOUR });
      await store.insertCalls([newCall({ function: 'a' }), newCall({ function: 'a' }), newCall({ function: 'a' }), later, newCall({ function: 'b' })]);
      // Claim two of a (running), then finish one and suspend the other.
      const { calls } = await t.claim({ capacity: (_e, fn) => (fn === 'a' ? 2 : 0) });
      expect(calls).toHaveLength(2);
      const [first, second] = calls as [(typeof calls)[0], (typeof calls)[0]];
      const sorted = (await store.countLive!(NOW)).sort((x, y) => `${x.function}${x.state}`.localeCompare(`${y.function}${y.state}`));
      expect(sorted).toEqual([
        { function: 'a', state: 'pending', count: 1, due: 1 },
        { function: 'a', state: 'running', count: 2, due: 0 },
        { function: 'b', state: 'pending', count: 2, due: 1 },
      ]);
      expect(await store.complete(completion(first.id, first.leaseToken, NOW, finished()))).toBe(true);
      expect(await store.complete(completion(second.id, second.leaseToken, NOW, suspendOutcome(NOW + HOUR)))).toBe(true);
      const after = (await store.countLive!(NOW + HOUR)).sort((x, y) => `${x.function}${x.state}`.localeCompare(`${y.function}${y.state}`));
      expect(after).toEqual([
        { function: 'a', state: 'pending', count: 1, due: 1 },
        { function: 'a', state: 'suspended', count: 1, due: 0 },
        { function: 'b', state: 'pending', count: 2, due: 2 },
      ]);
    });

    it('keeps the trace context of a call and gives it with every claim', async () => {
      const store = t.store;
      const traced = newCall({ traceContext: { traceparent: TRACEPARENT, tracestate: 'vendor=abc,other=1' } });
      const plain = newCall();
      await store.insertCalls([traced, plain]);
      const claimed = (await t.claim()).calls;
      const byId = new Map(claimed.map((c) => [c.id, c]));
      expect(byId.get(traced.id)?.traceContext).toEqual({ traceparent: TRACEPARENT, tracestate: 'vendor=abc,other=1' });
      expect(byId.get(plain.id)?.traceContext).toBeUndefined();
      // A child started by a Poll keeps its own context, and a resumed parent still has its own.
      const leased = byId.get(traced.id)!;
      const child = { ...childOf(traced, 7n), traceContext: { traceparent: TRACEPARENT.replace('b7ad6b7169203331', '00f067aa0ba902b7') } };
      expect(await store.complete(completion(leased.id, leased.leaseToken, NOW, suspendOutcome(NOW + 1, { calls: [child] })))).toBe(true);
      const next = (await t.claim({ now: NOW + 2 })).calls;
      const again = new Map(next.map((c) => [c.id, c]));
      expect(again.get(child.id)?.traceContext).toEqual({ traceparent: child.traceContext.traceparent });
      expect(again.get(traced.id)?.traceContext?.traceparent).toBe(TRACEPARENT);
    });
  });
}
