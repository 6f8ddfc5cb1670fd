/**
 * Store contract (issue 15): signals kept until a wait of the call's Poll
 * consumes them, delivered as results in order and once; refused for an
 * unknown or finished call; resume from the journal of a failed call; and
 * idempotency keys still honoured a day later.
 * @module
 */
import { expect, it } from 'vitest';
import { anyOf, childOf, completion, describeContract, finished, HOUR, newCall, NOW, PERMANENT_ERROR, type StoreContractHooks, type StoreFactory, suspendOutcome, textOf, typed } from './fixtures.js';

/**
 * Registers the tests of signals, resume and the lifetime of idempotency keys.
 * @example
 * signalsContract(() => SqliteStore.open({ path: ':memory:' }));
 */
export function signalsContract(makeStore: StoreFactory, hooks: StoreContractHooks = {}): void {
  describeContract('signals and resume', makeStore, hooks, (t) => {
    const { claim, startOne } = t;

    it('keeps a signal until the call waits for it, then delivers it as the wait\'s result, once', async () => {
      const store = t.store;
      const { call, leased } = await startOne();
      expect(await store.signal({ callId: call.id, name: 'decision', payload: anyOf('yes'), now: NOW + 1 })).toEqual({ kind: 'kept' });
      expect((await store.getSignals(call.id)).signals).toEqual([{ name: 'decision', payload: expect.anything(), sentAt: NOW + 1, consumedAt: null }]);
      await store.complete(completion(call.id, leased!.leaseToken, NOW + 2, suspendOutcome(NOW + HOUR, { signalWaits: [{ correlationId: 9n, name: 'decision' }] })));
      // The kept signal was consumed at once: the call is due with it.
      expect(await store.getCall(call.id)).toMatchObject({ state: 'suspended', ready: 1, dueAt: NOW + 2 });
      const [resumed] = (await claim({ now: NOW + 2 })).calls;
      expect(resumed?.resume?.results).toHaveLength(1);
      expect(resumed!.resume!.results[0]).toMatchObject({ correlationId: 9n, error: null });
      expect(textOf(resumed!.resume!.results[0]!.output)).toBe('yes');
      await store.complete(
        completion(call.id, resumed!.leaseToken, NOW + 3, suspendOutcome(NOW + HOUR, { signalWaits: [{ correlationId: 10n, name: 'decision' }] }), {
          delivered: resumed!.resume!.results.map((r) => r.dispatchId),
        }),
      );
      expect(await store.getCall(call.id)).toMatchObject({ state: 'suspended', ready: 0, dueAt: NOW + HOUR });
      expect((await store.getSignals(call.id)).waitingFor).toEqual(['decision']);
      expect((await store.getSignals(call.id)).signals[0]?.consumedAt).toBe(NOW + 2);
    });

    it('delivers a signal to a waiting call at once, and two of one name in the order sent, one per wait', async () => {
      const store = t.store;
      const { call, leased } = await startOne();
      const waits = [
        { correlationId: 1n, name: 'item' },
        { correlationId: 2n, name: 'item' },
      ];
      await store.complete(completion(call.id, leased!.leaseToken, NOW + 1, suspendOutcome(NOW + HOUR, { signalWaits: waits, minResults: 2, maxResults: 10 })));
      expect(await store.signal({ callId: call.id, name: 'other', payload: null, now: NOW + 2 })).toEqual({ kind: 'kept' });
      expect(await store.signal({ callId: call.id, name: 'item', payload: anyOf('first'), now: NOW + 3 })).toEqual({ kind: 'delivered' });
      expect(await store.getCall(call.id)).toMatchObject({ ready: 1, dueAt: NOW + HOUR });
      expect(await store.signal({ callId: call.id, name: 'item', payload: anyOf('second'), now: NOW + 4 })).toEqual({ kind: 'delivered' });
      expect(await store.signal({ callId: call.id, name: 'item', payload: anyOf('third'), now: NOW + 5 })).toEqual({ kind: 'kept' });
      expect(await store.getCall(call.id)).toMatchObject({ ready: 2, dueAt: NOW + 4 });
      const [resumed] = (await claim({ now: NOW + 5 })).calls;
      expect(resumed!.resume!.results.map((r) => [r.correlationId, textOf(r.output)])).toEqual([
        [1n, 'first'],
        [2n, 'second'],
      ]);
      const info = await store.getSignals(call.id);
      expect(info.signals.map((s) => s.name)).toEqual(['other', 'item', 'item', 'item']);
      expect(info.signals.map((s) => s.consumedAt !== null)).toEqual([false, true, true, false]);
    });

    it('refuses a signal to an unknown or finished call, and keeps a repeated key once', async () => {
      const store = t.store;
      expect(await store.signal({ callId: 'nope', name: 'x', payload: null, now: NOW })).toEqual({ kind: 'not_found' });
      const { call, leased } = await startOne();
      expect(await store.signal({ callId: call.id, name: 'x', payload: null, idempotencyKey: 'k1', now: NOW })).toEqual({ kind: 'kept' });
      expect(await store.signal({ callId: call.id, name: 'x', payload: null, idempotencyKey: 'k1', now: NOW })).toEqual({ kind: 'kept' });
      expect((await store.getSignals(call.id)).signals).toHaveLength(1);
      await store.complete(completion(call.id, leased!.leaseToken, NOW + 1, finished()));
      expect(await store.signal({ callId: call.id, name: 'x', payload: null, now: NOW + 2 })).toEqual({ kind: 'finished', state: 'succeeded' });
      expect((await store.getSignals(call.id)).waitingFor).toEqual([]);
    });

    it('resumes a failed call from its journal: succeeded children are delivered again, failed ones run again', async () => {
      const store = t.store;
      const { call: root, leased: r } = await startOne();
      const ok = childOf(root, 1n);
      const bad = childOf(root, 2n);
      await store.complete(completion(root.id, r!.leaseToken, NOW, suspendOutcome(NOW + HOUR, { calls: [ok, bad], state: typed([1, 2, 3]), maxResults: 10 })));
      const children = (await claim()).calls;
      for (const c of children) {
        const outcome =
          c.id === ok.id
            ? finished(anyOf('40'))
            : ({ kind: 'finish', status: PERMANENT_ERROR, output: null, error: { type: 'PermanentError', message: 'broken' } } as const);
        await store.complete(completion(c.id, c.leaseToken, NOW + 1, outcome));
      }
      const [resumed] = (await claim({ now: NOW + 1 })).calls;
      expect(resumed?.resume?.results).toHaveLength(2);
      await store.complete(
        completion(root.id, resumed!.leaseToken, NOW + 2, { kind: 'finish', status: PERMANENT_ERROR, output: null, error: { type: 'PermanentError', message: 'broken' } }, {
          delivered: resumed!.resume!.results.map((x) => x.dispatchId),
        }),
      );
      expect(await store.getCall(root.id)).toMatchObject({ state: 'failed' });
      expect(await store.resume('nope', NOW)).toEqual({ kind: 'not_found' });
      expect(await store.resume(ok.id, NOW + 3)).toEqual({ kind: 'refused', state: 'succeeded', reason: 'not_failed' });

      expect(await store.resume(root.id, NOW + 3)).toEqual({ kind: 'resumed', childrenRestarted: 1 });
      expect(await store.getCall(root.id)).toMatchObject({ state: 'suspended', error: null, finishedAt: null, expiresAt: NOW + 3 + HOUR });
      expect(await store.getCall(ok.id)).toMatchObject({ state: 'succeeded' });
      expect(await store.getCall(bad.id)).toMatchObject({ state: 'pending' });
      const claimed = (await claim({ now: NOW + 3 })).calls;
      const again = claimed.find((c) => c.id === root.id)!;
      // Its journal, and the result that succeeded (not the failed one, which runs again).
      expect(again.resume?.state).toMatchObject({ kind: 'typed', typeUrl: 'example.com/Journal' });
      expect(again.resume!.results.map((x) => x.dispatchId)).toEqual([ok.id]);
      const rerun = claimed.find((c) => c.id === bad.id)!;
      expect(rerun.resume).toBeNull();
      expect(textOf(rerun.input)).toBe(`input of ${bad.id}`);
      await store.complete(
        completion(root.id, again.leaseToken, NOW + 4, suspendOutcome(NOW + HOUR), { delivered: again.resume!.results.map((x) => x.dispatchId) }),
      );
      await store.complete(completion(bad.id, rerun.leaseToken, NOW + 5, finished(anyOf('2'))));
      const [last] = (await claim({ now: NOW + 5 })).calls;
      expect(last!.resume!.results.map((x) => [x.dispatchId, textOf(x.output)])).toEqual([[bad.id, '2']]);
    });

    it('honours an idempotency key more than 24 h after the first call', async () => {
      const store = t.store;
      const [first] = await store.insertCalls([newCall({ idempotencyKey: 'day-old' })]);
      const later = NOW + 25 * HOUR;
      const [second] = await store.insertCalls([newCall({ idempotencyKey: 'day-old' }, later)]);
      expect(second).toBe(first);
    });
  });
}
