/**
 * Store contract: inserting calls — exact round trips, idempotency keys,
 * atomic batches.
 * @module
 */
import { expect, it } from 'vitest';
import { describeContract, HOUR, newCall, NOW, type StoreContractHooks, type StoreFactory, textOf } from './fixtures.js';

/**
 * Registers the tests of inserting calls.
 * @example
 * callsContract(() => SqliteStore.open({ path: ':memory:' }));
 */
export function callsContract(makeStore: StoreFactory, hooks: StoreContractHooks = {}): void {
  describeContract('calls', makeStore, hooks, (t) => {
    it('inserts calls and reads them back exactly', async () => {
      const store = t.store;
      const big = (1n << 63n) + 12345n;
      const a = newCall({ version: 'v2' });
      const b = newCall({ parentId: a.id, rootId: a.id, correlationId: big, input: null });
      const ids = await store.insertCalls([a, b]);
      expect(ids).toEqual([a.id, b.id]);
      const got = await store.getCall(a.id);
      expect(got).toMatchObject({ id: a.id, function: 'fn', state: 'pending', status: 0, parentId: null, rootId: a.id });
      expect(got?.version).toBe('v2');
      expect(got?.input?.typeUrl).toBe(a.input?.typeUrl);
      expect(textOf(got?.input)).toBe(`input of ${a.id}`);
      expect(got?.dueAt).toBe(NOW);
      expect(got?.expiresAt).toBe(NOW + HOUR);
      const child = await store.getCall(b.id);
      expect(child?.correlationId).toBe(big);
      expect(child?.parentId).toBe(a.id);
      expect(child?.input).toBeNull();
      expect(await store.getChildren(a.id)).toEqual([b.id]);
      expect(await store.getCall('nope')).toBeNull();
    });

    it('answers the original dispatch ID for a known idempotency key, also within a batch and concurrently', async () => {
      const store = t.store;
      const first = newCall({ idempotencyKey: 'k1' });
      expect(await store.insertCalls([first])).toEqual([first.id]);
      const again = newCall({ idempotencyKey: 'k1' });
      expect(await store.insertCalls([again])).toEqual([first.id]);
      expect(await store.getCall(again.id)).toBeNull();

      const x = newCall({ idempotencyKey: 'k2' });
      const y = newCall({ idempotencyKey: 'k2' });
      expect(await store.insertCalls([x, y])).toEqual([x.id, x.id]);

      const racers = Array.from({ length: 5 }, () => newCall({ idempotencyKey: 'k3' }));
      const answers = await Promise.all(racers.map((c) => store.insertCalls([c])));
      const winners = new Set(answers.map((a) => a[0]));
      expect(winners.size).toBe(1);
      const page = await store.listCalls({ limit: 1000 });
      expect(page.calls.length).toBe(3);
    });

    it('inserts atomically: all calls or none', async () => {
      const store = t.store;
      const a = newCall();
      await store.insertCalls([a]);
      const b = newCall();
      await expect(store.insertCalls([b, { ...newCall(), id: a.id }])).rejects.toThrow();
      expect(await store.getCall(b.id)).toBeNull();
    });
  });
}
