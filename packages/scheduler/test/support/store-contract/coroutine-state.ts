/**
 * Store contract: coroutine states — deltas appended and loaded as their
 * concatenation, left out of claims that elide them, replaced by a full
 * state or another type, dropped on finish, restart, tail call and
 * cancellation.
 * @module
 */
import { expect, it } from 'vitest';
import { completion, describeContract, finished, HOUR, newCall, NOW, OK, type StoreContractHooks, type StoreFactory, typed } from './fixtures.js';

/**
 * Registers the tests of coroutine states.
 * @example
 * coroutineStateContract(() => SqliteStore.open({ path: ':memory:' }), hooks);
 */
export function coroutineStateContract(makeStore: StoreFactory, hooks: StoreContractHooks = {}): void {
  describeContract('coroutine state', makeStore, hooks, (t) => {
    const { claim, suspendWith, chunks } = t;

    it('appends state deltas: the state loaded is their concatenation, left out of claims that elide it', async () => {
      const store = t.store;
      const call = newCall();
      await store.insertCalls([call]);
      let [c] = (await claim()).calls;
      expect(await suspendWith(call.id, c!.leaseToken, NOW, typed([1, 2, 3]), true)).toBe(true);
      [c] = (await claim({ now: NOW + 1, elideStateAbove: 4 })).calls;
      expect(c?.resume).toMatchObject({ state: typed([1, 2, 3]), stateLength: 3, stateLoaded: true, deltaCapable: true });
      expect(await suspendWith(call.id, c!.leaseToken, NOW + 1, typed([4, 5]), true)).toBe(true);
      [c] = (await claim({ now: NOW + 2, elideStateAbove: 4 })).calls;
      // Elided: kind, type and length only; the bytes are read on demand, by the lease holder.
      expect(c?.resume).toMatchObject({ stateLength: 5, stateLoaded: false, state: { kind: 'typed', typeUrl: 'example.com/Journal' } });
      expect(c?.resume?.state?.value).toHaveLength(0);
      expect(await store.loadState(call.id, c!.leaseToken)).toEqual(typed([1, 2, 3, 4, 5]));
      expect(await store.loadState(call.id, c!.leaseToken - 1)).toBeNull();
      expect(await suspendWith(call.id, c!.leaseToken, NOW + 2, typed([]), true)).toBe(true);
      [c] = (await claim({ now: NOW + 3, elideStateAbove: 4 })).calls;
      expect(await suspendWith(call.id, c!.leaseToken, NOW + 3, typed([6]), true)).toBe(true);
      expect((await store.getCall(call.id))?.coroutineState).toEqual(typed([1, 2, 3, 4, 5, 6]));
      const stored = await chunks();
      if (stored !== undefined) expect(stored).toBe(3); // one per non-empty delta, nothing rewritten
      [c] = (await claim({ now: NOW + 4 })).calls;
      expect(c?.resume).toMatchObject({ state: typed([1, 2, 3, 4, 5, 6]), stateLength: 6, stateLoaded: true });

      // A full state replaces the chunks.
      expect(await suspendWith(call.id, c!.leaseToken, NOW + 4, typed([9, 9]), false)).toBe(true);
      [c] = (await claim({ now: NOW + 5 })).calls;
      expect(c?.resume).toMatchObject({ state: typed([9, 9]), stateLength: 2, stateLoaded: true });
      // A delta of another type replaces it too.
      expect(await suspendWith(call.id, c!.leaseToken, NOW + 5, typed([8], 'example.com/Other'), true)).toBe(true);
      [c] = (await claim({ now: NOW + 6 })).calls;
      expect(c?.resume?.state).toEqual(typed([8], 'example.com/Other'));
      // Opaque bytes (python SDK) are always loaded.
      expect(await suspendWith(call.id, c!.leaseToken, NOW + 6, { kind: 'bytes', value: new Uint8Array([7, 7, 7]) }, false)).toBe(true);
      [c] = (await claim({ now: NOW + 7, elideStateAbove: 0 })).calls;
      expect(c?.resume).toMatchObject({ state: { kind: 'bytes', value: new Uint8Array([7, 7, 7]) }, stateLength: 3, stateLoaded: true });
      if (stored !== undefined) expect(await chunks()).toBe(1);

      await store.complete(completion(call.id, c!.leaseToken, NOW + 8, finished()));
      expect((await store.getCall(call.id))?.coroutineState).toBeNull();
      expect(await store.loadState(call.id, c!.leaseToken)).toBeNull();
      if (stored !== undefined) expect(await chunks()).toBe(0);
    });

    it('drops the stored state on restart, tail call and cancellation', async () => {
      const store = t.store;
      const call = newCall();
      await store.insertCalls([call]);
      let [c] = (await claim()).calls;
      await suspendWith(call.id, c!.leaseToken, NOW, typed([1, 2]), true);
      expect(await store.restart(call.id, NOW + 1)).toBe(true);
      expect((await store.getCall(call.id))?.coroutineState).toBeNull();
      if (hooks.stateChunks) expect(await chunks()).toBe(0);
      [c] = (await claim({ now: NOW + 1 })).calls;
      expect(c?.resume).toBeNull();
      // The new generation starts a new state: the old bytes are gone.
      await suspendWith(call.id, c!.leaseToken, NOW + 1, typed([7]), true);
      [c] = (await claim({ now: NOW + 2 })).calls;
      expect(c?.resume?.state).toEqual(typed([7]));
      await store.complete(
        completion(call.id, c!.leaseToken, NOW + 2, {
          kind: 'tail_call',
          status: OK,
          function: 'next',
          endpoint: call.endpoint,
          input: null,
          expiresAt: NOW + HOUR,
          dueAt: NOW + 2,
        }),
      );
      expect((await store.getCall(call.id))?.coroutineState).toBeNull();
      if (hooks.stateChunks) expect(await chunks()).toBe(0);
      [c] = (await claim({ now: NOW + 2 })).calls;
      expect(c).toMatchObject({ function: 'next', resume: null });
      await suspendWith(call.id, c!.leaseToken, NOW + 2, typed([3]), true);
      expect((await store.getCall(call.id))?.coroutineState).toEqual(typed([3]));
      expect(await store.cancel(call.id, NOW + 3, { type: 'CancelledError', message: 'test' })).toBe(1);
      expect((await store.getCall(call.id))?.coroutineState).toBeNull();
      if (hooks.stateChunks) expect(await chunks()).toBe(0);
    });
  });
}
