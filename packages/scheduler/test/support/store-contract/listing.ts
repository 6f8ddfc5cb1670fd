/**
 * Store contract: listing calls (newest first, filters, pages, counts) and
 * the stored settings.
 * @module
 */
import { expect, it } from 'vitest';
import { completion, describeContract, finished, newCall, NOW, type StoreContractHooks, type StoreFactory } from './fixtures.js';

/**
 * Registers the tests of listing and settings.
 * @example
 * listingContract(() => SqliteStore.open({ path: ':memory:' }));
 */
export function listingContract(makeStore: StoreFactory, hooks: StoreContractHooks = {}): void {
  describeContract('listing and settings', makeStore, hooks, (t) => {
    const { claim } = t;

    it('lists calls newest first with filters, pages and counts', async () => {
      const store = t.store;
      const calls = Array.from({ length: 7 }, (_, i) => newCall({ function: i % 2 ? 'odd' : 'even', createdAt: NOW + i }));
      await store.insertCalls(calls);
      const [c] = (await claim({ limit: 1 })).calls;
      await store.complete(completion(c!.id, c!.leaseToken, NOW, finished()));

      const page1 = await store.listCalls({ limit: 3 });
      expect(page1.calls.map((x) => x.id)).toEqual(calls.slice(4).reverse().map((x) => x.id));
      expect(page1.nextCursor).not.toBeNull();
      const page2 = await store.listCalls({ limit: 3, cursor: page1.nextCursor! });
      const page3 = await store.listCalls({ limit: 3, cursor: page2.nextCursor! });
      expect([...page2.calls, ...page3.calls].map((x) => x.id)).toEqual(calls.slice(0, 4).reverse().map((x) => x.id));
      expect(page3.nextCursor).toBeNull();
      expect(page1.counts).toMatchObject({ pending: 6, succeeded: 1, running: 0, failed: 0 });

      const odd = await store.listCalls({ function: 'odd' });
      expect(odd.calls.map((x) => x.function)).toEqual(['odd', 'odd', 'odd']);
      const succeeded = await store.listCalls({ states: ['succeeded'] });
      expect(succeeded.calls.map((x) => x.id)).toEqual([c!.id]);
      expect(succeeded.counts.pending).toBe(6);
      const ranged = await store.listCalls({ createdAfter: NOW + 2, createdBefore: NOW + 4 });
      expect(ranged.calls.map((x) => x.id)).toEqual([calls[3]!.id, calls[2]!.id]);
    });

    it('keeps settings; initMeta keeps the first value', async () => {
      const store = t.store;
      expect(await store.getMeta('k')).toBeNull();
      const [a, b] = await Promise.all([store.initMeta('k', 'one'), store.initMeta('k', 'two')]);
      expect(a).toBe(b);
      expect(await store.getMeta('k')).toBe(a);
    });
  });
}
