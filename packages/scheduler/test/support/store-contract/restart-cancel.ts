/**
 * Store contract: cancelling a call and its descendants (its waiting parent
 * is handed the error as its result), and restarting a finished call from
 * its original input.
 * @module
 */
import { expect, it } from 'vitest';
import { anyOf, childOf, completion, describeContract, finished, HOUR, newCall, NOW, OK, PERMANENT_ERROR, type StoreContractHooks, type StoreFactory, suspendOutcome, textOf } from './fixtures.js';

/**
 * Registers the tests of cancel and restart.
 * @example
 * restartCancelContract(() => SqliteStore.open({ path: ':memory:' }));
 */
export function restartCancelContract(makeStore: StoreFactory, hooks: StoreContractHooks = {}): void {
  describeContract('restart and cancel', makeStore, hooks, (t) => {
    const { claim, startOne } = t;

    it('cancels a call and its descendants; the parent of the cancelled call gets an error result', async () => {
      const store = t.store;
      const { call: root, leased: r } = await startOne();
      const mid = childOf(root, 1n);
      await store.complete(completion(root.id, r!.leaseToken, NOW, suspendOutcome(NOW + 60_000, { calls: [mid] })));
      const [m] = (await claim()).calls;
      const leaf = childOf(mid, 2n);
      await store.complete(completion(mid.id, m!.leaseToken, NOW, suspendOutcome(NOW + 60_000, { calls: [leaf] })));
      expect(await store.cancel(mid.id, NOW + 5, { type: 'CancelledError', message: 'cancelled through the API' })).toBe(2);
      expect(await store.getCall(mid.id)).toMatchObject({ state: 'cancelled', status: PERMANENT_ERROR });
      expect((await store.getCall(mid.id))?.error?.message).toBe('cancelled through the API');
      expect(await store.getCall(leaf.id)).toMatchObject({ state: 'cancelled' });
      expect((await store.getCall(leaf.id))?.error?.message).toContain(mid.id);
      expect(await store.getCall(root.id)).toMatchObject({ state: 'suspended', ready: 1, dueAt: NOW + 5 });
      expect(await store.cancel(mid.id, NOW + 6, { type: 'CancelledError', message: 'again' })).toBe(0);
      const [resumed] = (await claim({ now: NOW + 6 })).calls;
      expect(resumed?.resume?.results[0]).toMatchObject({ dispatchId: mid.id, correlationId: 1n });

      expect(await store.cancel(root.id, NOW + 7, { type: 'CancelledError', message: 'x' })).toBe(1);
      // A result from the lease holder of a cancelled call is not recorded.
      expect(await store.complete(completion(root.id, resumed!.leaseToken, NOW + 8, finished()))).toBe(false);
      expect(await store.getCall(root.id)).toMatchObject({ state: 'cancelled' });
    });

    it('restarts a finished call from its original input', async () => {
      const store = t.store;
      const { call, leased: c } = await startOne();
      const error = { type: 'E', message: 'm' };
      await store.complete(
        completion(call.id, c!.leaseToken, NOW + 1, { kind: 'finish', status: PERMANENT_ERROR, output: null, error }, {
          attempt: { number: 1, startedAt: NOW, durationMs: 1, status: PERMANENT_ERROR, outcome: 'exit', error, resume: false },
        }),
      );
      expect(await store.restart(call.id, NOW + 10)).toBe(true);
      expect(await store.restart('unknown', NOW)).toBe(false);
      const got = await store.getCall(call.id);
      expect(got).toMatchObject({ state: 'pending', status: 0, error: null, finishedAt: null, dueAt: NOW + 10, expiresAt: NOW + 10 + HOUR, attempts: 1 });
      const [again] = (await claim({ now: NOW + 10 })).calls;
      expect(again?.resume).toBeNull();
      expect(textOf(again?.input)).toBe(`input of ${call.id}`);
    });

    it('stores an input once, and restarts a tail-called call from its first function and input', async () => {
      const store = t.store;
      const { call, leased } = await startOne();
      if (t.hooks.inputCopies) expect(await t.hooks.inputCopies(store)).toBe(0);
      const tail = (n: number, token: number, now: number) =>
        store.complete(
          completion(call.id, token, now, { kind: 'tail_call', status: OK, function: `next${n}`, endpoint: call.endpoint, input: anyOf(`tail ${n}`), expiresAt: NOW + HOUR, dueAt: now }),
        );
      expect(await tail(1, leased.leaseToken, NOW + 1)).toBe(true);
      let [c] = (await claim({ now: NOW + 1 })).calls;
      expect(textOf(c?.input)).toBe('tail 1');
      expect(await tail(2, c!.leaseToken, NOW + 2)).toBe(true);
      [c] = (await claim({ now: NOW + 2 })).calls;
      expect(c).toMatchObject({ function: 'next2' });
      expect(textOf(c?.input)).toBe('tail 2');
      await store.complete(completion(call.id, c!.leaseToken, NOW + 3, finished()));
      expect(await store.restart(call.id, NOW + 10)).toBe(true);
      [c] = (await claim({ now: NOW + 10 })).calls;
      expect(c).toMatchObject({ id: call.id, function: 'fn', resume: null });
      expect(textOf(c?.input)).toBe(`input of ${call.id}`);
      if (t.hooks.inputCopies) expect(await t.hooks.inputCopies(store)).toBe(0);
      // A second restart still finds it.
      await store.complete(completion(call.id, c!.leaseToken, NOW + 11, finished()));
      expect(await store.restart(call.id, NOW + 20)).toBe(true);
      [c] = (await claim({ now: NOW + 20 })).calls;
      expect(textOf(c?.input)).toBe(`input of ${call.id}`);
    });

    it('counts the calls waiting for an endpoint', async () => {
      const store = t.store;
      if (!store.countWaiting) return;
      const { call } = await startOne();
      expect(await store.countWaiting(call.endpoint)).toBe(0);
      await store.insertCalls([newCall({ endpoint: call.endpoint }), newCall({ endpoint: call.endpoint }), newCall({ endpoint: 'http://127.0.0.1:9' })]);
      expect(await store.countWaiting(call.endpoint)).toBe(2);
      expect(await store.countWaiting('http://127.0.0.1:9')).toBe(1);
    });
  });
}
