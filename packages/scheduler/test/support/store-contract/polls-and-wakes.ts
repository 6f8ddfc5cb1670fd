/**
 * Store contract: polls and wakes — a suspended call wakes when
 * `min_results` are in, on an error result when its Poll asks, at its
 * deadline (a timer), or at once when its Poll was refused; it is handed at
 * most `max_results`; one child per correlation ID (PROTOCOL.md 8.17).
 * @module
 */
import type { NewCall } from '../../../src/store/store.js';
import { expect, it } from 'vitest';
import { anyOf, childOf, completion, describeContract, newCall, NOW, OK, PERMANENT_ERROR, type StoreContractHooks, type StoreFactory, suspendOutcome, textOf, typed } from './fixtures.js';

/**
 * Registers the tests of polls and wakes.
 * @example
 * pollsAndWakesContract(() => SqliteStore.open({ path: ':memory:' }));
 */
export function pollsAndWakesContract(makeStore: StoreFactory, hooks: StoreContractHooks = {}): void {
  describeContract('polls and wakes', makeStore, hooks, (t) => {
    const { claim, startOne } = t;

    it('suspends on a poll, wakes the parent when min_results are in, delivers at most max_results', async () => {
      const store = t.store;
      const { call: parent, leased: p } = await startOne();
      const kids = [1n, 2n, 3n].map((corr) => childOf(parent, (1n << 63n) + corr));
      const state = { kind: 'typed' as const, typeUrl: 'example.com/Foreign', value: new Uint8Array([1, 2, 3]) };
      await store.complete(
        completion(parent.id, p!.leaseToken, NOW, suspendOutcome(NOW + 60_000, { state, calls: kids, minResults: 2, maxResults: 1 }), {
          attempt: { number: 1, startedAt: NOW, durationMs: 1, status: OK, outcome: 'suspend', error: null, resume: false },
        }),
      );
      expect(await store.getCall(parent.id)).toMatchObject({ state: 'suspended', dueAt: NOW + 60_000, coroutineState: state });
      const claimed = await claim({ now: NOW + 1 });
      expect(claimed.calls.map((c) => c.id).sort()).toEqual(kids.map((k) => k.id).sort());
      const byId = new Map(claimed.calls.map((c) => [c.id, c]));
      const finishKid = (i: number, at: number) =>
        store.complete(
          completion(kids[i]!.id, byId.get(kids[i]!.id)!.leaseToken, at, { kind: 'finish', status: OK, output: anyOf(`out ${i}`), error: null }),
        );
      await finishKid(0, NOW + 2);
      expect(await store.getCall(parent.id)).toMatchObject({ state: 'suspended', dueAt: NOW + 60_000, ready: 1 });
      await finishKid(1, NOW + 3);
      expect(await store.getCall(parent.id)).toMatchObject({ state: 'suspended', dueAt: NOW + 3, ready: 2 });

      const [resumed] = (await claim({ now: NOW + 4 })).calls;
      expect(resumed?.id).toBe(parent.id);
      expect(resumed?.input).toBeNull();
      expect(resumed?.resume?.state).toEqual(state);
      expect(resumed?.resume?.results).toHaveLength(1);
      const r0 = resumed!.resume!.results[0]!;
      expect(r0).toMatchObject({ dispatchId: kids[0]!.id, correlationId: (1n << 63n) + 1n, error: null });
      expect(textOf(r0.output)).toBe('out 0');

      // Re-poll with no calls; one result is still ready, the third child is running.
      await store.complete(
        completion(
          parent.id,
          resumed!.leaseToken,
          NOW + 5,
          suspendOutcome(NOW + 60_000, { state: typed([4], state.typeUrl), stateIsDelta: true, maxResults: 10 }),
          {
            attempt: { number: 2, startedAt: NOW + 4, durationMs: 1, status: OK, outcome: 'suspend', error: null, resume: true },
            delivered: [kids[0]!.id],
          },
        ),
      );
      const after = await store.getCall(parent.id);
      expect(after).toMatchObject({ state: 'suspended', ready: 1, dueAt: NOW + 5 });
      const [again] = (await claim({ now: NOW + 6 })).calls;
      expect(again?.resume?.results.map((r) => r.dispatchId)).toEqual([kids[1]!.id]);
      expect(again?.resume?.state).toEqual(typed([1, 2, 3, 4], state.typeUrl));
      expect(again?.resume?.deltaCapable).toBe(true);
    });

    it('delivers a fan-in in parts: each result once, its errors taken off the wake condition', async () => {
      const store = t.store;
      const { call: parent, leased: p } = await startOne();
      const kids = Array.from({ length: 30 }, (_, i) => childOf(parent, BigInt(i + 1)));
      await store.complete(completion(parent.id, p!.leaseToken, NOW, suspendOutcome(NOW + 60_000, { calls: kids, minResults: 30, maxResults: 20 })));
      const byId = new Map((await claim({ now: NOW + 1 })).calls.map((c) => [c.id, c]));
      // The first ten fail, then twenty succeed: results are handed over in the order they came in.
      for (const [i, kid] of kids.entries()) {
        const outcome = i < 10 ? { kind: 'finish' as const, status: PERMANENT_ERROR, output: null, error: { type: 'Boom', message: `kid ${i}` } } : { kind: 'finish' as const, status: OK, output: anyOf(`out ${i}`), error: null };
        expect(await store.complete(completion(kid.id, byId.get(kid.id)!.leaseToken, NOW + 2 + i, outcome))).toBe(true);
      }
      expect(await store.getCall(parent.id)).toMatchObject({ state: 'suspended', ready: 30 });
      const [first] = (await claim({ now: NOW + 40 })).calls;
      const firstIds = first!.resume!.results.map((r) => r.dispatchId);
      expect(firstIds).toEqual(kids.slice(0, 20).map((k) => k.id));
      expect(first!.resume!.results.filter((r) => r.error !== null)).toHaveLength(10);
      // Delivered: the twenty (one twice, and an ID that is no child): ten remain, none an error, so an error does not
      // wake the parent and eleven results are not in: it waits for its deadline.
      await store.complete(
        completion(parent.id, first!.leaseToken, NOW + 41, suspendOutcome(NOW + 60_000, { minResults: 11, maxResults: 20, wakeOnError: true }), {
          delivered: [...firstIds, firstIds[0]!, 'not-a-child'],
        }),
      );
      expect(await store.getCall(parent.id)).toMatchObject({ state: 'suspended', ready: 10, dueAt: NOW + 60_000 });
      expect((await claim({ now: NOW + 42 })).calls).toEqual([]);
      const [second] = (await claim({ now: NOW + 60_000 })).calls;
      expect(second!.resume!.results.map((r) => r.dispatchId)).toEqual(kids.slice(20).map((k) => k.id));
      expect(second!.resume!.results.map((r) => textOf(r.output))).toEqual(kids.slice(20).map((_, i) => `out ${i + 20}`));
      await store.complete(completion(parent.id, second!.leaseToken, NOW + 60_001, { kind: 'finish', status: OK, output: null, error: null }, {
        delivered: second!.resume!.results.map((r) => r.dispatchId),
      }));
      expect(await store.getCall(parent.id)).toMatchObject({ state: 'succeeded' });
    });

    it('drops calls whose correlation ID repeats one of the same execution', async () => {
      const store = t.store;
      const parent = newCall();
      await store.insertCalls([parent]);
      const suspend = async (leaseToken: number, calls: NewCall[]) =>
        store.complete(completion(parent.id, leaseToken, NOW, suspendOutcome(NOW + 1, { calls, maxResults: 10 })));
      const kid = (corr: bigint) => childOf(parent, corr);
      const [p] = (await claim({ capacity: () => 1 })).calls;
      await suspend(p!.leaseToken, [kid(1n), kid(2n), kid(1n)]);
      expect(await store.getChildren(parent.id)).toHaveLength(2);
      const again = (await claim({ now: NOW + 1, capacity: (_e, fn) => (fn === 'fn' ? 10 : 0) })).calls.find((c) => c.id === parent.id);
      await suspend(again!.leaseToken, [kid(2n), kid(3n)]);
      expect(await store.getChildren(parent.id)).toHaveLength(3);
    });

    it('wakes a parent on an error result when the poll asks for it', async () => {
      const store = t.store;
      const { call: parent, leased: p } = await startOne();
      const kid = childOf(parent, 9n);
      const other = childOf(parent, 10n);
      const state = { kind: 'bytes' as const, value: new Uint8Array([7]) };
      await store.complete(
        completion(parent.id, p!.leaseToken, NOW, suspendOutcome(NOW + 60_000, { state, calls: [kid, other], minResults: 2, maxResults: 2, wakeOnError: true })),
      );
      const claimed = (await claim()).calls.find((c) => c.id === kid.id)!;
      await store.complete(
        completion(kid.id, claimed.leaseToken, NOW + 1, { kind: 'finish', status: PERMANENT_ERROR, output: null, error: { type: 'Boom', message: 'no' } }),
      );
      expect(await store.getCall(kid.id)).toMatchObject({ state: 'failed', status: PERMANENT_ERROR });
      const [resumed] = (await claim({ now: NOW + 2 })).calls;
      expect(resumed?.id).toBe(parent.id);
      expect(resumed?.resume?.state).toEqual({ kind: 'bytes', value: new Uint8Array([7]) });
      expect(resumed?.resume?.results[0]?.error).toMatchObject({ type: 'Boom', message: 'no' });
    });

    it('takes a delivered error result off the count: the next poll that wakes on errors waits', async () => {
      const store = t.store;
      const { call: parent, leased: p } = await startOne();
      const kid = childOf(parent, 9n);
      await store.complete(completion(parent.id, p!.leaseToken, NOW, suspendOutcome(NOW + 60_000, { calls: [kid], wakeOnError: true })));
      const claimed = (await claim()).calls.find((c) => c.id === kid.id)!;
      await store.complete(
        completion(kid.id, claimed.leaseToken, NOW + 1, { kind: 'finish', status: PERMANENT_ERROR, output: null, error: { type: 'Boom', message: 'no' } }),
      );
      const [resumed] = (await claim({ now: NOW + 2 })).calls;
      expect(resumed?.resume?.results.map((r) => r.error?.type)).toEqual(['Boom']);
      // The error delivered, the parent waits for its next child, errors or not.
      const next = childOf(parent, 10n);
      await store.complete(
        completion(parent.id, resumed!.leaseToken, NOW + 3, suspendOutcome(NOW + 60_000, { calls: [next], wakeOnError: true }), { delivered: [kid.id] }),
      );
      const due = (await claim({ now: NOW + 4 })).calls.map((c) => c.id);
      expect(due).toEqual([next.id]);
      expect((await store.getCall(parent.id))?.state).toBe('suspended');
    });

    it('keeps a timer: a poll without calls is due at its deadline', async () => {
      const store = t.store;
      const { leased: p } = await startOne();
      await store.complete(completion(p!.id, p!.leaseToken, NOW, suspendOutcome(NOW + 1000)));
      const { calls, nextDueAt } = await claim({ now: NOW + 999 });
      expect(calls).toEqual([]);
      expect(nextDueAt).toBe(NOW + 1000);
      const [woken] = (await claim({ now: NOW + 1000 })).calls;
      expect(woken?.resume).toMatchObject({ state: null, results: [], error: null });
    });

    it('resumes at once with the poll error when a poll is refused', async () => {
      const store = t.store;
      const { leased: p } = await startOne();
      const pollError = { type: 'InvalidArgumentError', message: 'bad function name' };
      await store.complete(completion(p!.id, p!.leaseToken, NOW, suspendOutcome(NOW + 60_000, { pollError })));
      const [woken] = (await claim()).calls;
      expect(woken?.resume?.error).toMatchObject({ message: 'bad function name' });
    });
  });
}
