/**
 * Store contract: what a run's outcome records — a retry with backoff, a
 * finish, a tail call — and the unfinished children a finish or a tail call
 * leaves behind (cancelled).
 * @module
 */
import { expect, it } from 'vitest';
import { anyOf, childOf, completion, describeContract, finished, HOUR, NOW, OK, type StoreContractHooks, type StoreFactory, suspendOutcome, TEMPORARY_ERROR, textOf } from './fixtures.js';

/**
 * Registers the tests of recording outcomes.
 * @example
 * completionContract(() => SqliteStore.open({ path: ':memory:' }));
 */
export function completionContract(makeStore: StoreFactory, hooks: StoreContractHooks = {}): void {
  describeContract('completion', makeStore, hooks, (t) => {
    const { claim, startOne } = t;

    it('records retries with backoff, errors and attempts', async () => {
      const store = t.store;
      const { call, leased: c } = await startOne();
      const error = { type: 'TemporaryError', message: 'try later' };
      const attempt = { number: 1, startedAt: NOW, durationMs: 10, status: TEMPORARY_ERROR, outcome: 'retry', error, resume: false };
      expect(
        await store.complete(completion(c!.id, c!.leaseToken, NOW + 10, { kind: 'retry', status: TEMPORARY_ERROR, error, dueAt: NOW + 500 }, { attempt })),
      ).toBe(true);
      const got = await store.getCall(call.id);
      expect(got).toMatchObject({ state: 'pending', status: TEMPORARY_ERROR, dueAt: NOW + 500, attempts: 1, failures: 1 });
      expect(got?.error).toMatchObject(error);
      expect((await claim({ now: NOW + 499 })).calls).toEqual([]);
      const [again] = (await claim({ now: NOW + 500 })).calls;
      expect(again).toMatchObject({ attempts: 1, failures: 1 });
      const attempts = await store.getAttempts(call.id);
      expect(attempts).toEqual([
        { number: 1, startedAt: NOW, durationMs: 10, status: TEMPORARY_ERROR, outcome: 'retry', error, resume: false },
      ]);
    });

    it('replaces the execution on a tail call and cancels children of the old one', async () => {
      const store = t.store;
      const { call, leased: p } = await startOne();
      const kid = childOf(call, 1n);
      await store.complete(completion(call.id, p!.leaseToken, NOW, suspendOutcome(NOW + 1, { calls: [kid] })));
      const [resumed] = (await claim({ now: NOW + 1, capacity: (_e, fn) => (fn === 'fn' ? 1 : 0) })).calls;
      expect(resumed?.id === call.id || resumed?.id === kid.id).toBe(true);
      const parentClaim = resumed?.id === call.id ? resumed : (await claim({ now: NOW + 1 })).calls.find((c) => c.id === call.id);
      await store.complete(
        completion(call.id, parentClaim!.leaseToken, NOW + 2, {
          kind: 'tail_call',
          status: OK,
          function: 'next',
          endpoint: 'http://127.0.0.1:2',
          input: anyOf('tail'),
          expiresAt: NOW + HOUR,
          dueAt: NOW + 2,
        }),
      );
      const got = await store.getCall(call.id);
      expect(got).toMatchObject({ state: 'pending', function: 'next', endpoint: 'http://127.0.0.1:2', originalFunction: 'fn' });
      expect(await store.getCall(kid.id)).toMatchObject({ state: 'cancelled' });
      const [tail] = (await claim({ now: NOW + 2 })).calls;
      expect(tail).toMatchObject({ id: call.id, function: 'next', resume: null });
      expect(textOf(tail?.input)).toBe('tail');
    });

    it('cancels unfinished children when their parent finishes', async () => {
      const store = t.store;
      const { call: root, leased: r } = await startOne();
      const kids = [childOf(root, 1n), childOf(root, 2n)];
      await store.complete(completion(root.id, r!.leaseToken, NOW, suspendOutcome(NOW + 60_000, { calls: kids })));
      const claimed = (await claim({ now: NOW + 1 })).calls;
      const k0 = claimed.find((c) => c.id === kids[0]!.id)!;
      await store.complete(completion(k0.id, k0.leaseToken, NOW + 2, finished()));
      const [p] = (await claim({ now: NOW + 3 })).calls;
      await store.complete(completion(root.id, p!.leaseToken, NOW + 4, finished(anyOf('done')), { delivered: [k0.id] }));
      expect(await store.getCall(root.id)).toMatchObject({ state: 'succeeded', status: OK });
      expect(await store.getCall(kids[0]!.id)).toMatchObject({ state: 'succeeded' });
      expect(await store.getCall(kids[1]!.id)).toMatchObject({ state: 'cancelled' });
    });
  });
}
