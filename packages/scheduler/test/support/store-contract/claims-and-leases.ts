/**
 * Store contract: claims and leases — due calls only, within capacity and
 * limit; expired leases taken over; only the lease holder records; renewals.
 * @module
 */
import { expect, it } from 'vitest';
import type { AttemptRecord, Outcome } from '../../../src/store/store.js';
import { anyOf, childOf, completion, describeContract, newCall, NOW, OK, type StoreContractHooks, type StoreFactory, suspendOutcome, TEMPORARY_ERROR, textOf } from './fixtures.js';

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

    it('records nothing under a lease lost to a cancellation or a restart, whatever the outcome', async () => {
      const store = t.store;
      const attempt: AttemptRecord = { number: 1, startedAt: NOW, durationMs: 5, status: OK, outcome: 'exit', error: null, resume: false };
      const outcomes: Outcome[] = [
        { kind: 'finish', status: OK, output: anyOf('late'), error: null },
        { kind: 'retry', status: TEMPORARY_ERROR, error: { type: 'E', message: 'late' }, dueAt: NOW + 10 },
        suspendOutcome(NOW + 1000, { calls: [childOf({ id: 'p', rootId: 'p' }, 1n)] }),
      ];
      for (const outcome of outcomes) {
        for (const lostBy of ['cancel', 'restart'] as const) {
          const call = newCall();
          await store.insertCalls([call]);
          const [c] = (await claim()).calls;
          expect(c?.id).toBe(call.id);
          if (lostBy === 'cancel') await store.cancel(call.id, NOW + 1, { type: 'Cancelled', message: 'by a test' });
          else await store.restart(call.id, NOW + 1);
          const before = await store.getCall(call.id);
          const done = await store.complete(completion(call.id, c!.leaseToken, NOW + 2, outcome, { attempt: { ...attempt } }));
          expect(done, `${outcome.kind} after ${lostBy}`).toBe(false);
          expect(await store.getAttempts(call.id)).toEqual([]);
          expect(await store.getChildren(call.id)).toEqual([]);
          const after = await store.getCall(call.id);
          expect(after?.state).toBe(before?.state);
          expect(after?.output ?? null).toEqual(before?.output ?? null);
          if (lostBy === 'restart') {
            // Claimed again: the new lease records, the old one still does not.
            const [again] = (await claim({ now: NOW + 3 })).calls;
            expect(again?.leaseToken).toBeGreaterThan(c!.leaseToken);
            expect(await store.complete(completion(call.id, c!.leaseToken, NOW + 4, outcome, { attempt: { ...attempt } }))).toBe(false);
            expect(await store.complete(completion(call.id, again!.leaseToken, NOW + 4, { kind: 'finish', status: OK, output: anyOf('b'), error: null }))).toBe(true);
            expect(textOf((await store.getCall(call.id))?.output)).toBe('b');
          } else {
            expect(after?.state).toBe('cancelled');
          }
        }
      }
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
