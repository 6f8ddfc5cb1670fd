/**
 * Store contract: claims and leases — due calls only, within capacity and
 * limit; expired leases taken over; only the lease holder records; renewals.
 * @module
 */
import { expect, it } from 'vitest';
import { anyOf, completion, describeContract, newCall, NOW, OK, type StoreContractHooks, type StoreFactory, textOf } from './fixtures.js';

/**
 * Registers the tests of claims and leases.
 * @example
 * claimsAndLeasesContract(() => SqliteStore.open({ path: ':memory:' }));
 */
export function claimsAndLeasesContract(makeStore: StoreFactory, hooks: StoreContractHooks = {}): void {
  describeContract('claims and leases', makeStore, hooks, (t) => {
    const { claim } = t;

    it('claims due calls only, within capacity and limit, with a lease', async () => {
      const store = t.store;
      const due = [newCall(), newCall(), newCall()];
      const later = newCall({ dueAt: NOW + 5000 });
      const other = newCall({ function: 'other' });
      await store.insertCalls([...due, later, other]);

      const first = await claim({ capacity: (_e, fn) => (fn === 'fn' ? 2 : 0) });
      expect(first.calls.map((c) => c.id)).toEqual(due.slice(0, 2).map((c) => c.id));
      const c0 = first.calls[0]!;
      expect(c0.attempts).toBe(0);
      expect(c0.resume).toBeNull();
      expect(textOf(c0.input)).toBe(`input of ${c0.id}`);
      expect((await store.getCall(c0.id))?.state).toBe('running');

      const second = await claim({ limit: 1 });
      expect(second.calls.length).toBe(1);
      expect(second.nextDueAt).toBe(NOW);
      const third = await claim();
      expect(new Set([...second.calls, ...third.calls].map((c) => c.id))).toEqual(new Set([due[2]!.id, other.id]));
      expect(third.nextDueAt).toBe(NOW + 5000);

      const none = await claim();
      expect(none.calls).toEqual([]);
      expect((await claim({ now: NOW + 5000 })).calls.map((c) => c.id)).toEqual([later.id]);
    });

    it('lets another owner claim a call whose lease expired, and records only the lease holder', async () => {
      const store = t.store;
      const call = newCall();
      await store.insertCalls([call]);
      const [a] = (await claim({ owner: 'a', leaseMs: 1000 })).calls;
      expect((await claim({ owner: 'b', now: NOW + 999 })).calls).toEqual([]);
      const [b] = (await claim({ owner: 'b', now: NOW + 1000 })).calls;
      expect(b?.id).toBe(call.id);
      expect(b!.leaseToken).toBeGreaterThan(a!.leaseToken);
      const finish = (owner: string, leaseToken: number) =>
        store.complete(
          completion(call.id, leaseToken, NOW + 2000, { kind: 'finish', status: OK, output: anyOf(owner), error: null }, {
            owner,
            attempt: { number: 1, startedAt: NOW, durationMs: 5, status: OK, outcome: 'exit', error: null, resume: false },
          }),
        );
      const [ra, rb] = await Promise.all([finish('a', a!.leaseToken), finish('b', b!.leaseToken)]);
      expect([ra, rb]).toEqual([false, true]);
      const got = await store.getCall(call.id);
      expect(got?.state).toBe('succeeded');
      expect(textOf(got?.output)).toBe('b');
      expect(await finish('b', b!.leaseToken)).toBe(false);
      expect(await store.getAttempts(call.id)).toHaveLength(1);
    });

    it('renews leases', async () => {
      const store = t.store;
      await store.insertCalls([newCall()]);
      const [c] = (await claim({ leaseMs: 1000 })).calls;
      await store.renewLeases('a', [c!.id], NOW + 10_000);
      expect((await claim({ owner: 'b', now: NOW + 5000 })).calls).toEqual([]);
      expect((await claim({ owner: 'b', now: NOW + 10_000 })).calls.length).toBe(1);
    });
  });
}
