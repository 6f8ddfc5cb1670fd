/**
 * Store contract, for stores shared by several scheduler instances
 * (`StoreContractHooks.sharedByInstances`): heartbeats count the live
 * instances, and a graceful leave is seen at once.
 * @module
 */
import { expect, it } from 'vitest';
import { describeContract, type StoreContractHooks, type StoreFactory } from './fixtures.js';

/**
 * Registers the tests of heartbeats (the store must implement `heartbeat` and `leave`).
 * @example
 * heartbeatsContract(() => PgStore.open({ url }), { sharedByInstances: true });
 */
export function heartbeatsContract(makeStore: StoreFactory, hooks: StoreContractHooks = {}): void {
  describeContract('heartbeats', makeStore, hooks, (t) => {
    it('counts live instances by heartbeat; a graceful leave is seen at once', async () => {
      const store = t.store;
      if (!store.heartbeat || !store.leave) throw new Error('a store shared by instances implements heartbeat and leave');
      const now = Date.now();
      expect(await store.heartbeat({ owner: 'a', now, ttlMs: 1000 })).toBe(1);
      expect(await store.heartbeat({ owner: 'b', now, ttlMs: 1000 })).toBe(2);
      expect(await store.heartbeat({ owner: 'c', now: now + 500, ttlMs: 1000 })).toBe(3);
      expect(await store.heartbeat({ owner: 'a', now: now + 1200, ttlMs: 1000 })).toBe(2); // b is silent since `now`
      await store.leave('c');
      expect(await store.heartbeat({ owner: 'a', now: now + 1300, ttlMs: 1000 })).toBe(1);
    });
  });
}
