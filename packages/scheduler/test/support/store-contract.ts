/**
 * The store contract suite: every {@link Store} implementation (SQLite,
 * PostgreSQL) runs it. Call it from a `*.test.ts` file:
 *
 * ```ts
 * storeContract('SqliteStore (memory)', () => SqliteStore.open({ path: ':memory:' }));
 * ```
 *
 * `makeStore` must return a fresh, empty store each time.
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newDispatchId } from '../../src/store/dispatch-id.js';
import type { ClaimRequest, CoroutineState, NewCall, Store } from '../../src/store/store.js';

const HOUR = 3_600_000;
const OK = 1;
const TEMPORARY_ERROR = 6;
const PERMANENT_ERROR = 7;

function anyOf(text: string) {
  return { typeUrl: 'type.googleapis.com/google.protobuf.StringValue', value: new TextEncoder().encode(text) };
}

/** A root call due at `now`. */
export function newCall(overrides: Partial<NewCall> = {}, now = 1_000_000): NewCall {
  const id = overrides.id ?? newDispatchId();
  return {
    id,
    function: 'fn',
    endpoint: 'http://127.0.0.1:1',
    input: anyOf(`input of ${id}`),
    createdAt: now,
    dueAt: now,
    expiresAt: now + HOUR,
    expirationMs: HOUR,
    rootId: id,
    ...overrides,
  };
}

/**
 * What a store's own test tells the contract suite about its storage.
 * @example
 * const hooks: StoreContractHooks = { stateChunks: async (s) => (s as SqliteStore).db.prepare('SELECT count(*) AS n FROM call_state_chunks').pluck().get() as number };
 */
export interface StoreContractHooks {
  /** Number of stored state chunks (rows of `call_state_chunks`), to check that they are cleaned up. */
  stateChunks?: (store: Store) => Promise<number>;
}

/**
 * Registers the contract tests for a store.
 * @example
 * storeContract('SqliteStore (file)', () => SqliteStore.open({ path: tmpFile() }));
 */
export function storeContract(name: string, makeStore: () => Promise<Store>, hooks: StoreContractHooks = {}): void {
  describe(`store contract: ${name}`, () => {
    let store: Store;
    const now = 1_000_000;
    const claim = (over: Partial<ClaimRequest> = {}) =>
      store.claimDue({ owner: 'a', now, leaseMs: 60_000, limit: 100, capacity: () => 100, ...over });

    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });

    it('inserts calls and reads them back exactly', async () => {
      const big = (1n << 63n) + 12345n;
      const a = newCall({ version: 'v2' });
      const b = newCall({ parentId: a.id, rootId: a.id, correlationId: big, input: null });
      const ids = await store.insertCalls([a, b]);
      expect(ids).toEqual([a.id, b.id]);
      const got = await store.getCall(a.id);
      expect(got).toMatchObject({ id: a.id, function: 'fn', state: 'pending', status: 0, parentId: null, rootId: a.id });
      expect(got?.version).toBe('v2');
      expect(got?.input?.typeUrl).toBe(a.input?.typeUrl);
      expect(Buffer.from(got?.input?.value ?? []).toString()).toBe(`input of ${a.id}`);
      expect(got?.dueAt).toBe(now);
      expect(got?.expiresAt).toBe(now + HOUR);
      const child = await store.getCall(b.id);
      expect(child?.correlationId).toBe(big);
      expect(child?.parentId).toBe(a.id);
      expect(child?.input).toBeNull();
      expect(await store.getChildren(a.id)).toEqual([b.id]);
      expect(await store.getCall('nope')).toBeNull();
    });

    it('answers the original dispatch ID for a known idempotency key, also within a batch and concurrently', async () => {
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
      const a = newCall();
      await store.insertCalls([a]);
      const b = newCall();
      await expect(store.insertCalls([b, { ...newCall(), id: a.id }])).rejects.toThrow();
      expect(await store.getCall(b.id)).toBeNull();
    });

    it('claims due calls only, within capacity and limit, with a lease', async () => {
      const due = [newCall(), newCall(), newCall()];
      const later = newCall({ dueAt: now + 5000 });
      const other = newCall({ function: 'other' });
      await store.insertCalls([...due, later, other]);

      const first = await claim({ capacity: (_e, fn) => (fn === 'fn' ? 2 : 0) });
      expect(first.calls.map((c) => c.id)).toEqual(due.slice(0, 2).map((c) => c.id));
      const c0 = first.calls[0]!;
      expect(c0.attempts).toBe(0);
      expect(c0.resume).toBeNull();
      expect(Buffer.from(c0.input?.value ?? []).toString()).toBe(`input of ${c0.id}`);
      expect((await store.getCall(c0.id))?.state).toBe('running');

      const second = await claim({ limit: 1 });
      expect(second.calls.length).toBe(1);
      expect(second.nextDueAt).toBe(now);
      const third = await claim();
      expect(new Set([...second.calls, ...third.calls].map((c) => c.id))).toEqual(new Set([due[2]!.id, other.id]));
      expect(third.nextDueAt).toBe(now + 5000);

      const none = await claim();
      expect(none.calls).toEqual([]);
      expect((await claim({ now: now + 5000 })).calls.map((c) => c.id)).toEqual([later.id]);
    });

    it('lets another owner claim a call whose lease expired, and records only the lease holder', async () => {
      const call = newCall();
      await store.insertCalls([call]);
      const [a] = (await claim({ owner: 'a', leaseMs: 1000 })).calls;
      expect((await claim({ owner: 'b', now: now + 999 })).calls).toEqual([]);
      const [b] = (await claim({ owner: 'b', now: now + 1000 })).calls;
      expect(b?.id).toBe(call.id);
      expect(b!.leaseToken).toBeGreaterThan(a!.leaseToken);
      const finish = (owner: string, leaseToken: number) =>
        store.complete({
          id: call.id,
          owner,
          leaseToken,
          now: now + 2000,
          attempt: { number: 1, startedAt: now, durationMs: 5, status: OK, outcome: 'exit', error: null, resume: false },
          delivered: [],
          outcome: { kind: 'finish', status: OK, output: anyOf(owner), error: null },
        });
      const [ra, rb] = await Promise.all([finish('a', a!.leaseToken), finish('b', b!.leaseToken)]);
      expect([ra, rb]).toEqual([false, true]);
      const got = await store.getCall(call.id);
      expect(got?.state).toBe('succeeded');
      expect(Buffer.from(got?.output?.value ?? []).toString()).toBe('b');
      expect(await finish('b', b!.leaseToken)).toBe(false);
      expect(await store.getAttempts(call.id)).toHaveLength(1);
    });

    it('renews leases', async () => {
      await store.insertCalls([newCall()]);
      const [c] = (await claim({ leaseMs: 1000 })).calls;
      await store.renewLeases('a', [c!.id], now + 10_000);
      expect((await claim({ owner: 'b', now: now + 5000 })).calls).toEqual([]);
      expect((await claim({ owner: 'b', now: now + 10_000 })).calls.length).toBe(1);
    });

    it('records retries with backoff, errors and attempts', async () => {
      const call = newCall();
      await store.insertCalls([call]);
      const [c] = (await claim()).calls;
      const error = { type: 'TemporaryError', message: 'try later' };
      expect(
        await store.complete({
          id: c!.id,
          owner: 'a',
          leaseToken: c!.leaseToken,
          now: now + 10,
          attempt: { number: 1, startedAt: now, durationMs: 10, status: TEMPORARY_ERROR, outcome: 'retry', error, resume: false },
          delivered: [],
          outcome: { kind: 'retry', status: TEMPORARY_ERROR, error, dueAt: now + 500 },
        }),
      ).toBe(true);
      const got = await store.getCall(call.id);
      expect(got).toMatchObject({ state: 'pending', status: TEMPORARY_ERROR, dueAt: now + 500, attempts: 1, failures: 1 });
      expect(got?.error).toMatchObject(error);
      expect((await claim({ now: now + 499 })).calls).toEqual([]);
      const [again] = (await claim({ now: now + 500 })).calls;
      expect(again).toMatchObject({ attempts: 1, failures: 1 });
      const attempts = await store.getAttempts(call.id);
      expect(attempts).toEqual([
        { number: 1, startedAt: now, durationMs: 10, status: TEMPORARY_ERROR, outcome: 'retry', error, resume: false },
      ]);
    });

    it('suspends on a poll, wakes the parent when min_results are in, delivers at most max_results', async () => {
      const parent = newCall();
      await store.insertCalls([parent]);
      const [p] = (await claim()).calls;
      const kids = [1n, 2n, 3n].map((corr) =>
        newCall({ parentId: parent.id, rootId: parent.id, correlationId: (1n << 63n) + corr }),
      );
      const state = { kind: 'typed' as const, typeUrl: 'example.com/Foreign', value: new Uint8Array([1, 2, 3]) };
      await store.complete({
        id: parent.id,
        owner: 'a',
        leaseToken: p!.leaseToken,
        now,
        attempt: { number: 1, startedAt: now, durationMs: 1, status: OK, outcome: 'suspend', error: null, resume: false },
        delivered: [],
        outcome: {
          kind: 'suspend',
          status: OK,
          state,
          stateIsDelta: false,
          calls: kids,
          minResults: 2,
          maxResults: 1,
          deadline: now + 60_000,
          wakeOnError: false,
          pollError: null,
        },
      });
      expect(await store.getCall(parent.id)).toMatchObject({ state: 'suspended', dueAt: now + 60_000, coroutineState: state });
      const claimed = await claim({ now: now + 1 });
      expect(claimed.calls.map((c) => c.id).sort()).toEqual(kids.map((k) => k.id).sort());
      const byId = new Map(claimed.calls.map((c) => [c.id, c]));
      const finishKid = (i: number, t: number) =>
        store.complete({
          id: kids[i]!.id,
          owner: 'a',
          leaseToken: byId.get(kids[i]!.id)!.leaseToken,
          now: t,
          attempt: null,
          delivered: [],
          outcome: { kind: 'finish', status: OK, output: anyOf(`out ${i}`), error: null },
        });
      await finishKid(0, now + 2);
      expect(await store.getCall(parent.id)).toMatchObject({ state: 'suspended', dueAt: now + 60_000, ready: 1 });
      await finishKid(1, now + 3);
      expect(await store.getCall(parent.id)).toMatchObject({ state: 'suspended', dueAt: now + 3, ready: 2 });

      const [resumed] = (await claim({ now: now + 4 })).calls;
      expect(resumed?.id).toBe(parent.id);
      expect(resumed?.input).toBeNull();
      expect(resumed?.resume?.state).toEqual(state);
      expect(resumed?.resume?.results).toHaveLength(1);
      const r0 = resumed!.resume!.results[0]!;
      expect(r0).toMatchObject({ dispatchId: kids[0]!.id, correlationId: (1n << 63n) + 1n, error: null });
      expect(Buffer.from(r0.output?.value ?? []).toString()).toBe('out 0');

      // Re-poll with no calls; one result is still ready, the third child is running.
      await store.complete({
        id: parent.id,
        owner: 'a',
        leaseToken: resumed!.leaseToken,
        now: now + 5,
        attempt: { number: 2, startedAt: now + 4, durationMs: 1, status: OK, outcome: 'suspend', error: null, resume: true },
        delivered: [kids[0]!.id],
        outcome: {
          kind: 'suspend',
          status: OK,
          state: { kind: 'typed', typeUrl: state.typeUrl, value: new Uint8Array([4]) },
          stateIsDelta: true,
          calls: [],
          minResults: 1,
          maxResults: 10,
          deadline: now + 60_000,
          wakeOnError: false,
          pollError: null,
        },
      });
      const after = await store.getCall(parent.id);
      expect(after).toMatchObject({ state: 'suspended', ready: 1, dueAt: now + 5 });
      const [again] = (await claim({ now: now + 6 })).calls;
      expect(again?.resume?.results.map((r) => r.dispatchId)).toEqual([kids[1]!.id]);
      expect(again?.resume?.state).toEqual({ kind: 'typed', typeUrl: state.typeUrl, value: new Uint8Array([1, 2, 3, 4]) });
      expect(again?.resume?.deltaCapable).toBe(true);
    });

    /** Suspends a claimed call on a timer (due at `t + 1`) with `state`. */
    const suspendWith = (id: string, leaseToken: number, t: number, state: CoroutineState | null, stateIsDelta: boolean) =>
      store.complete({
        id,
        owner: 'a',
        leaseToken,
        now: t,
        attempt: null,
        delivered: [],
        outcome: {
          kind: 'suspend',
          status: OK,
          state,
          stateIsDelta,
          calls: [],
          minResults: 1,
          maxResults: 1,
          deadline: t + 1,
          wakeOnError: false,
          pollError: null,
        },
      });
    const typed = (bytes: number[], typeUrl = 'example.com/Journal'): CoroutineState => ({ kind: 'typed', typeUrl, value: new Uint8Array(bytes) });
    const chunks = async () => (hooks.stateChunks ? await hooks.stateChunks(store) : undefined);

    it('appends state deltas: the state loaded is their concatenation, left out of claims that elide it', async () => {
      const call = newCall();
      await store.insertCalls([call]);
      let [c] = (await claim()).calls;
      expect(await suspendWith(call.id, c!.leaseToken, now, typed([1, 2, 3]), true)).toBe(true);
      [c] = (await claim({ now: now + 1, elideStateAbove: 4 })).calls;
      expect(c?.resume).toMatchObject({ state: typed([1, 2, 3]), stateLength: 3, stateLoaded: true, deltaCapable: true });
      expect(await suspendWith(call.id, c!.leaseToken, now + 1, typed([4, 5]), true)).toBe(true);
      [c] = (await claim({ now: now + 2, elideStateAbove: 4 })).calls;
      // Elided: kind, type and length only; the bytes are read on demand, by the lease holder.
      expect(c?.resume).toMatchObject({ stateLength: 5, stateLoaded: false, state: { kind: 'typed', typeUrl: 'example.com/Journal' } });
      expect(c?.resume?.state?.value).toHaveLength(0);
      expect(await store.loadState(call.id, c!.leaseToken)).toEqual(typed([1, 2, 3, 4, 5]));
      expect(await store.loadState(call.id, c!.leaseToken - 1)).toBeNull();
      expect(await suspendWith(call.id, c!.leaseToken, now + 2, typed([]), true)).toBe(true);
      [c] = (await claim({ now: now + 3, elideStateAbove: 4 })).calls;
      expect(await suspendWith(call.id, c!.leaseToken, now + 3, typed([6]), true)).toBe(true);
      expect((await store.getCall(call.id))?.coroutineState).toEqual(typed([1, 2, 3, 4, 5, 6]));
      const stored = await chunks();
      if (stored !== undefined) expect(stored).toBe(3); // one per non-empty delta, nothing rewritten
      [c] = (await claim({ now: now + 4 })).calls;
      expect(c?.resume).toMatchObject({ state: typed([1, 2, 3, 4, 5, 6]), stateLength: 6, stateLoaded: true });

      // A full state replaces the chunks.
      expect(await suspendWith(call.id, c!.leaseToken, now + 4, typed([9, 9]), false)).toBe(true);
      [c] = (await claim({ now: now + 5 })).calls;
      expect(c?.resume).toMatchObject({ state: typed([9, 9]), stateLength: 2, stateLoaded: true });
      // A delta of another type replaces it too.
      expect(await suspendWith(call.id, c!.leaseToken, now + 5, typed([8], 'example.com/Other'), true)).toBe(true);
      [c] = (await claim({ now: now + 6 })).calls;
      expect(c?.resume?.state).toEqual(typed([8], 'example.com/Other'));
      // Opaque bytes (python SDK) are always loaded.
      expect(await suspendWith(call.id, c!.leaseToken, now + 6, { kind: 'bytes', value: new Uint8Array([7, 7, 7]) }, false)).toBe(true);
      [c] = (await claim({ now: now + 7, elideStateAbove: 0 })).calls;
      expect(c?.resume).toMatchObject({ state: { kind: 'bytes', value: new Uint8Array([7, 7, 7]) }, stateLength: 3, stateLoaded: true });
      if (stored !== undefined) expect(await chunks()).toBe(1);

      await store.complete({ id: call.id, owner: 'a', leaseToken: c!.leaseToken, now: now + 8, attempt: null, delivered: [], outcome: { kind: 'finish', status: OK, output: null, error: null } });
      expect((await store.getCall(call.id))?.coroutineState).toBeNull();
      expect(await store.loadState(call.id, c!.leaseToken)).toBeNull();
      if (stored !== undefined) expect(await chunks()).toBe(0);
    });

    it('drops the stored state on restart, tail call and cancellation', async () => {
      const call = newCall();
      await store.insertCalls([call]);
      let [c] = (await claim()).calls;
      await suspendWith(call.id, c!.leaseToken, now, typed([1, 2]), true);
      expect(await store.restart(call.id, now + 1)).toBe(true);
      expect((await store.getCall(call.id))?.coroutineState).toBeNull();
      if (hooks.stateChunks) expect(await chunks()).toBe(0);
      [c] = (await claim({ now: now + 1 })).calls;
      expect(c?.resume).toBeNull();
      // The new generation starts a new state: the old bytes are gone.
      await suspendWith(call.id, c!.leaseToken, now + 1, typed([7]), true);
      [c] = (await claim({ now: now + 2 })).calls;
      expect(c?.resume?.state).toEqual(typed([7]));
      await store.complete({
        id: call.id,
        owner: 'a',
        leaseToken: c!.leaseToken,
        now: now + 2,
        attempt: null,
        delivered: [],
        outcome: { kind: 'tail_call', status: OK, function: 'next', endpoint: call.endpoint, input: null, expiresAt: now + HOUR, dueAt: now + 2 },
      });
      expect((await store.getCall(call.id))?.coroutineState).toBeNull();
      if (hooks.stateChunks) expect(await chunks()).toBe(0);
      [c] = (await claim({ now: now + 2 })).calls;
      expect(c).toMatchObject({ function: 'next', resume: null });
      await suspendWith(call.id, c!.leaseToken, now + 2, typed([3]), true);
      expect((await store.getCall(call.id))?.coroutineState).toEqual(typed([3]));
      expect(await store.cancel(call.id, now + 3, { type: 'CancelledError', message: 'test' })).toBe(1);
      expect((await store.getCall(call.id))?.coroutineState).toBeNull();
      if (hooks.stateChunks) expect(await chunks()).toBe(0);
    });

    it('drops calls whose correlation ID repeats one of the same execution', async () => {
      const parent = newCall();
      await store.insertCalls([parent]);
      const suspend = async (leaseToken: number, calls: NewCall[]) =>
        store.complete({
          id: parent.id,
          owner: 'a',
          leaseToken,
          now,
          attempt: null,
          delivered: [],
          outcome: {
            kind: 'suspend',
            status: OK,
            state: null,
            stateIsDelta: false,
            calls,
            minResults: 1,
            maxResults: 10,
            deadline: now + 1,
            wakeOnError: false,
            pollError: null,
          },
        });
      const kid = (corr: bigint) => newCall({ parentId: parent.id, rootId: parent.id, correlationId: corr });
      const [p] = (await claim({ capacity: () => 1 })).calls;
      await suspend(p!.leaseToken, [kid(1n), kid(2n), kid(1n)]);
      expect(await store.getChildren(parent.id)).toHaveLength(2);
      const again = (await claim({ now: now + 1, capacity: (_e, fn) => (fn === 'fn' ? 10 : 0) })).calls.find((c) => c.id === parent.id);
      await suspend(again!.leaseToken, [kid(2n), kid(3n)]);
      expect(await store.getChildren(parent.id)).toHaveLength(3);
    });

    it('wakes a parent on an error result when the poll asks for it', async () => {
      const parent = newCall();
      await store.insertCalls([parent]);
      const [p] = (await claim()).calls;
      const kid = newCall({ parentId: parent.id, rootId: parent.id, correlationId: 9n });
      const other = newCall({ parentId: parent.id, rootId: parent.id, correlationId: 10n });
      await store.complete({
        id: parent.id,
        owner: 'a',
        leaseToken: p!.leaseToken,
        now,
        attempt: null,
        delivered: [],
        outcome: {
          kind: 'suspend',
          status: OK,
          state: { kind: 'bytes', value: new Uint8Array([7]) },
          stateIsDelta: false,
          calls: [kid, other],
          minResults: 2,
          maxResults: 2,
          deadline: now + 60_000,
          wakeOnError: true,
          pollError: null,
        },
      });
      const claimed = (await claim()).calls.find((c) => c.id === kid.id)!;
      await store.complete({
        id: kid.id,
        owner: 'a',
        leaseToken: claimed.leaseToken,
        now: now + 1,
        attempt: null,
        delivered: [],
        outcome: { kind: 'finish', status: PERMANENT_ERROR, output: null, error: { type: 'Boom', message: 'no' } },
      });
      expect(await store.getCall(kid.id)).toMatchObject({ state: 'failed', status: PERMANENT_ERROR });
      const [resumed] = (await claim({ now: now + 2 })).calls;
      expect(resumed?.id).toBe(parent.id);
      expect(resumed?.resume?.state).toEqual({ kind: 'bytes', value: new Uint8Array([7]) });
      expect(resumed?.resume?.results[0]?.error).toMatchObject({ type: 'Boom', message: 'no' });
    });

    it('keeps a timer: a poll without calls is due at its deadline', async () => {
      await store.insertCalls([newCall()]);
      const [p] = (await claim()).calls;
      await store.complete({
        id: p!.id,
        owner: 'a',
        leaseToken: p!.leaseToken,
        now,
        attempt: null,
        delivered: [],
        outcome: {
          kind: 'suspend',
          status: OK,
          state: null,
          stateIsDelta: false,
          calls: [],
          minResults: 1,
          maxResults: 1,
          deadline: now + 1000,
          wakeOnError: false,
          pollError: null,
        },
      });
      const { calls, nextDueAt } = await claim({ now: now + 999 });
      expect(calls).toEqual([]);
      expect(nextDueAt).toBe(now + 1000);
      const [woken] = (await claim({ now: now + 1000 })).calls;
      expect(woken?.resume).toMatchObject({ state: null, results: [], error: null });
    });

    it('resumes at once with the poll error when a poll is refused', async () => {
      await store.insertCalls([newCall()]);
      const [p] = (await claim()).calls;
      await store.complete({
        id: p!.id,
        owner: 'a',
        leaseToken: p!.leaseToken,
        now,
        attempt: null,
        delivered: [],
        outcome: {
          kind: 'suspend',
          status: OK,
          state: null,
          stateIsDelta: false,
          calls: [],
          minResults: 1,
          maxResults: 1,
          deadline: now + 60_000,
          wakeOnError: false,
          pollError: { type: 'InvalidArgumentError', message: 'bad function name' },
        },
      });
      const [woken] = (await claim()).calls;
      expect(woken?.resume?.error).toMatchObject({ message: 'bad function name' });
    });

    it('replaces the execution on a tail call and cancels children of the old one', async () => {
      const call = newCall();
      await store.insertCalls([call]);
      const [p] = (await claim()).calls;
      const kid = newCall({ parentId: call.id, rootId: call.id, correlationId: 1n });
      await store.complete({
        id: call.id,
        owner: 'a',
        leaseToken: p!.leaseToken,
        now,
        attempt: null,
        delivered: [],
        outcome: {
          kind: 'suspend',
          status: OK,
          state: null,
          stateIsDelta: false,
          calls: [kid],
          minResults: 1,
          maxResults: 1,
          deadline: now + 1,
          wakeOnError: false,
          pollError: null,
        },
      });
      const [resumed] = (await claim({ now: now + 1, capacity: (_e, fn) => (fn === 'fn' ? 1 : 0) })).calls;
      expect(resumed?.id === call.id || resumed?.id === kid.id).toBe(true);
      const parentClaim = resumed?.id === call.id ? resumed : (await claim({ now: now + 1 })).calls.find((c) => c.id === call.id);
      await store.complete({
        id: call.id,
        owner: 'a',
        leaseToken: parentClaim!.leaseToken,
        now: now + 2,
        attempt: null,
        delivered: [],
        outcome: {
          kind: 'tail_call',
          status: OK,
          function: 'next',
          endpoint: 'http://127.0.0.1:2',
          input: anyOf('tail'),
          expiresAt: now + HOUR,
          dueAt: now + 2,
        },
      });
      const got = await store.getCall(call.id);
      expect(got).toMatchObject({ state: 'pending', function: 'next', endpoint: 'http://127.0.0.1:2', originalFunction: 'fn' });
      expect(await store.getCall(kid.id)).toMatchObject({ state: 'cancelled' });
      const [tail] = (await claim({ now: now + 2 })).calls;
      expect(tail).toMatchObject({ id: call.id, function: 'next', resume: null });
      expect(Buffer.from(tail?.input?.value ?? []).toString()).toBe('tail');
    });

    it('cancels a call and its descendants; the parent of the cancelled call gets an error result', async () => {
      const root = newCall();
      await store.insertCalls([root]);
      const [r] = (await claim()).calls;
      const mid = newCall({ parentId: root.id, rootId: root.id, correlationId: 1n });
      await store.complete({
        id: root.id,
        owner: 'a',
        leaseToken: r!.leaseToken,
        now,
        attempt: null,
        delivered: [],
        outcome: {
          kind: 'suspend',
          status: OK,
          state: null,
          stateIsDelta: false,
          calls: [mid],
          minResults: 1,
          maxResults: 1,
          deadline: now + 60_000,
          wakeOnError: false,
          pollError: null,
        },
      });
      const [m] = (await claim()).calls;
      const leaf = newCall({ parentId: mid.id, rootId: root.id, correlationId: 2n });
      await store.complete({
        id: mid.id,
        owner: 'a',
        leaseToken: m!.leaseToken,
        now,
        attempt: null,
        delivered: [],
        outcome: {
          kind: 'suspend',
          status: OK,
          state: null,
          stateIsDelta: false,
          calls: [leaf],
          minResults: 1,
          maxResults: 1,
          deadline: now + 60_000,
          wakeOnError: false,
          pollError: null,
        },
      });
      expect(await store.cancel(mid.id, now + 5, { type: 'CancelledError', message: 'cancelled through the API' })).toBe(2);
      expect(await store.getCall(mid.id)).toMatchObject({ state: 'cancelled', status: PERMANENT_ERROR });
      expect((await store.getCall(mid.id))?.error?.message).toBe('cancelled through the API');
      expect(await store.getCall(leaf.id)).toMatchObject({ state: 'cancelled' });
      expect((await store.getCall(leaf.id))?.error?.message).toContain(mid.id);
      expect(await store.getCall(root.id)).toMatchObject({ state: 'suspended', ready: 1, dueAt: now + 5 });
      expect(await store.cancel(mid.id, now + 6, { type: 'CancelledError', message: 'again' })).toBe(0);
      const [resumed] = (await claim({ now: now + 6 })).calls;
      expect(resumed?.resume?.results[0]).toMatchObject({ dispatchId: mid.id, correlationId: 1n });

      expect(await store.cancel(root.id, now + 7, { type: 'CancelledError', message: 'x' })).toBe(1);
      // A result from the lease holder of a cancelled call is not recorded.
      expect(
        await store.complete({
          id: root.id,
          owner: 'a',
          leaseToken: resumed!.leaseToken,
          now: now + 8,
          attempt: null,
          delivered: [],
          outcome: { kind: 'finish', status: OK, output: null, error: null },
        }),
      ).toBe(false);
      expect(await store.getCall(root.id)).toMatchObject({ state: 'cancelled' });
    });

    it('cancels unfinished children when their parent finishes', async () => {
      const root = newCall();
      await store.insertCalls([root]);
      const [r] = (await claim()).calls;
      const kids = [newCall({ parentId: root.id, rootId: root.id, correlationId: 1n }), newCall({ parentId: root.id, rootId: root.id, correlationId: 2n })];
      await store.complete({
        id: root.id,
        owner: 'a',
        leaseToken: r!.leaseToken,
        now,
        attempt: null,
        delivered: [],
        outcome: {
          kind: 'suspend',
          status: OK,
          state: null,
          stateIsDelta: false,
          calls: kids,
          minResults: 1,
          maxResults: 1,
          deadline: now + 60_000,
          wakeOnError: false,
          pollError: null,
        },
      });
      const claimed = (await claim({ now: now + 1 })).calls;
      const k0 = claimed.find((c) => c.id === kids[0]!.id)!;
      await store.complete({ id: k0.id, owner: 'a', leaseToken: k0.leaseToken, now: now + 2, attempt: null, delivered: [], outcome: { kind: 'finish', status: OK, output: null, error: null } });
      const [p] = (await claim({ now: now + 3 })).calls;
      await store.complete({ id: root.id, owner: 'a', leaseToken: p!.leaseToken, now: now + 4, attempt: null, delivered: [k0.id], outcome: { kind: 'finish', status: OK, output: anyOf('done'), error: null } });
      expect(await store.getCall(root.id)).toMatchObject({ state: 'succeeded', status: OK });
      expect(await store.getCall(kids[0]!.id)).toMatchObject({ state: 'succeeded' });
      expect(await store.getCall(kids[1]!.id)).toMatchObject({ state: 'cancelled' });
    });

    it('restarts a finished call from its original input', async () => {
      const call = newCall();
      await store.insertCalls([call]);
      const [c] = (await claim()).calls;
      await store.complete({ id: call.id, owner: 'a', leaseToken: c!.leaseToken, now: now + 1, attempt: { number: 1, startedAt: now, durationMs: 1, status: PERMANENT_ERROR, outcome: 'exit', error: { type: 'E', message: 'm' }, resume: false }, delivered: [], outcome: { kind: 'finish', status: PERMANENT_ERROR, output: null, error: { type: 'E', message: 'm' } } });
      expect(await store.restart(call.id, now + 10)).toBe(true);
      expect(await store.restart('unknown', now)).toBe(false);
      const got = await store.getCall(call.id);
      expect(got).toMatchObject({ state: 'pending', status: 0, error: null, finishedAt: null, dueAt: now + 10, expiresAt: now + 10 + HOUR, attempts: 1 });
      const [again] = (await claim({ now: now + 10 })).calls;
      expect(again?.resume).toBeNull();
      expect(Buffer.from(again?.input?.value ?? []).toString()).toBe(`input of ${call.id}`);
    });

    it('lists calls newest first with filters, pages and counts', async () => {
      const calls = Array.from({ length: 7 }, (_, i) => newCall({ function: i % 2 ? 'odd' : 'even', createdAt: now + i }));
      await store.insertCalls(calls);
      const [c] = (await claim({ limit: 1 })).calls;
      await store.complete({ id: c!.id, owner: 'a', leaseToken: c!.leaseToken, now, attempt: null, delivered: [], outcome: { kind: 'finish', status: OK, output: null, error: null } });

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
      const ranged = await store.listCalls({ createdAfter: now + 2, createdBefore: now + 4 });
      expect(ranged.calls.map((x) => x.id)).toEqual([calls[3]!.id, calls[2]!.id]);
    });

    it('keeps settings; initMeta keeps the first value', async () => {
      expect(await store.getMeta('k')).toBeNull();
      const [a, b] = await Promise.all([store.initMeta('k', 'one'), store.initMeta('k', 'two')]);
      expect(a).toBe(b);
      expect(await store.getMeta('k')).toBe(a);
    });
  });
}
