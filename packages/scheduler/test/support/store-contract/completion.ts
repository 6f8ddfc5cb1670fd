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

    it('counts attempts and resumes apart: a resume continues after a suspension, a retry is an attempt', async () => {
      const store = t.store;
      const { call, leased: first } = await startOne();
      expect(first).toMatchObject({ attempts: 0, resumes: 0, failures: 0 });
      const error = { type: 'TemporaryError', message: 'try later' };
      const run = (number: number, outcome: string, resume: boolean) => ({
        attempt: { number, startedAt: NOW + number, durationMs: 1, status: outcome === 'retry' ? TEMPORARY_ERROR : OK, outcome, error: null, resume },
      });
      // Run 1, an attempt, suspends on a timer.
      await store.complete(completion(call.id, first.leaseToken, NOW, suspendOutcome(NOW + 1), run(1, 'suspend', false)));
      expect(await store.getCall(call.id)).toMatchObject({ attempts: 1, resumes: 0 });
      // Run 2 resumes, and fails: a resume all the same.
      const [second] = (await claim({ now: NOW + 1 })).calls;
      expect(second).toMatchObject({ attempts: 1, resumes: 0, failures: 0 });
      await store.complete(
        completion(call.id, second!.leaseToken, NOW + 2, { kind: 'retry', status: TEMPORARY_ERROR, error, dueAt: NOW + 3 }, run(2, 'retry', true)),
      );
      expect(await store.getCall(call.id)).toMatchObject({ attempts: 1, resumes: 1, failures: 1 });
      // Run 3 retries it (an attempt) and suspends again.
      const [third] = (await claim({ now: NOW + 3 })).calls;
      expect(third).toMatchObject({ attempts: 1, resumes: 1, failures: 1 });
      await store.complete(completion(call.id, third!.leaseToken, NOW + 4, suspendOutcome(NOW + 5), run(3, 'suspend', false)));
      // Run 4 resumes and finishes.
      const [fourth] = (await claim({ now: NOW + 5 })).calls;
      expect(fourth).toMatchObject({ attempts: 2, resumes: 1, failures: 0 });
      await store.complete(completion(call.id, fourth!.leaseToken, NOW + 6, finished(anyOf('done')), run(4, 'exit', true)));
      expect(await store.getCall(call.id)).toMatchObject({ state: 'succeeded', attempts: 2, resumes: 2 });
      expect((await store.getAttempts(call.id)).map((a) => [a.number, a.outcome, a.resume])).toEqual([
        [1, 'suspend', false],
        [2, 'retry', true],
        [3, 'suspend', false],
        [4, 'exit', true],
      ]);
      expect((await store.listCalls({})).calls.find((c) => c.id === call.id)).toMatchObject({ attempts: 2, resumes: 2 });

      // A call that never suspends: every run an attempt, finished without a transaction of its own in some stores.
      const { call: plain, leased: p1 } = await startOne();
      await store.complete(completion(plain.id, p1.leaseToken, NOW, { kind: 'retry', status: TEMPORARY_ERROR, error, dueAt: NOW }, run(1, 'retry', false)));
      const [p2] = (await claim({ now: NOW })).calls;
      await store.complete(completion(plain.id, p2!.leaseToken, NOW + 1, finished(), run(2, 'exit', false)));
      expect(await store.getCall(plain.id)).toMatchObject({ state: 'succeeded', attempts: 2, resumes: 0 });
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
