/**
 * What the store contract suite's concerns share: a fresh store per test,
 * calls to insert, and the requests the tests make again and again.
 * @module
 */
import { Status } from '@dispatch/core/protocol';
import { afterEach, beforeEach, describe } from 'vitest';
import { newDispatchId } from '../../../src/store/dispatch-id.js';
import type { ClaimedCall, ClaimRequest, ClaimResult, CompleteRequest, CoroutineState, NewCall, Outcome, Store, SuspendOutcome } from '../../../src/store/store.js';

/** The clock of the contract tests (ms). */
export const NOW = 1_000_000;
export const HOUR = 3_600_000;
export const { OK, TEMPORARY_ERROR, PERMANENT_ERROR } = Status;

/**
 * Opens a fresh, empty store (each test gets its own and closes it).
 * @example
 * const makeStore: StoreFactory = () => SqliteStore.open({ path: ':memory:' });
 */
export type StoreFactory = () => Promise<Store>;

/**
 * What a store's own test tells the contract suite about its storage.
 * @example
 * const hooks: StoreContractHooks = { stateChunks: async (s) => (s as SqliteStore).db.prepare('SELECT count(*) AS n FROM call_state_chunks').pluck().get() as number };
 */
export interface StoreContractHooks {
  /** Number of stored state chunks (rows of `call_state_chunks`), to check that they are cleaned up. */
  stateChunks?: (store: Store) => Promise<number>;
  /**
   * The store is shared by several scheduler instances: it implements
   * `heartbeat` and `leave`, and the suite checks them.
   */
  sharedByInstances?: boolean;
  /** Number of calls holding a second copy of an input (`original_input`), to check that an input is stored once. */
  inputCopies?: (store: Store) => Promise<number>;
}

/** A `StringValue` Any holding `text`. */
export function anyOf(text: string) {
  return { typeUrl: 'type.googleapis.com/google.protobuf.StringValue', value: new TextEncoder().encode(text) };
}

/** The text of an `anyOf` value (or of nothing). */
export function textOf(any: { value?: Uint8Array | null } | null | undefined): string {
  return Buffer.from(any?.value ?? []).toString();
}

/** A typed coroutine state of `bytes`. */
export function typed(bytes: number[], typeUrl = 'example.com/Journal'): CoroutineState {
  return { kind: 'typed', typeUrl, value: new Uint8Array(bytes) };
}

/**
 * A root call due at `now`.
 * @example
 * const call = newCall({ function: 'other' });
 */
export function newCall(overrides: Partial<NewCall> = {}, now = NOW): NewCall {
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

/** A child of `parent` with a correlation ID. */
export function childOf(parent: Pick<NewCall, 'id' | 'rootId'>, correlationId: bigint): NewCall {
  return newCall({ parentId: parent.id, rootId: parent.rootId, correlationId });
}

/**
 * A suspension until `deadline`: no state, no calls, one result wakes and
 * one is delivered, unless `over` says otherwise.
 * @example
 * suspendOutcome(NOW + 60_000, { calls: kids, minResults: 2 })
 */
export function suspendOutcome(deadline: number, over: Partial<SuspendOutcome> = {}): SuspendOutcome {
  return {
    kind: 'suspend',
    status: OK,
    state: null,
    stateIsDelta: false,
    calls: [],
    minResults: 1,
    maxResults: 1,
    deadline,
    wakeOnError: false,
    pollError: null,
    ...over,
  };
}

/**
 * What `complete` records for a call leased with `leaseToken`, by owner `a`,
 * with no attempt and nothing delivered, unless `over` says otherwise.
 * @example
 * await store.complete(completion(call.id, c.leaseToken, NOW, { kind: 'finish', status: OK, output: null, error: null }));
 */
export function completion(id: string, leaseToken: number, now: number, outcome: Outcome, over: Partial<CompleteRequest> = {}): CompleteRequest {
  return { id, owner: 'a', leaseToken, now, attempt: null, delivered: [], outcome, ...over };
}

/** A successful finish with `output`. */
export function finished(output: ReturnType<typeof anyOf> | null = null): Outcome {
  return { kind: 'finish', status: OK, output, error: null };
}

/**
 * The store of the running test, and what the tests ask of it often.
 * @example
 * const t = useStore(makeStore, hooks); it('...', async () => { await t.store.insertCalls([newCall()]); });
 */
export interface ContractContext {
  /** The running test's store (fresh and empty at its start). */
  readonly store: Store;
  readonly hooks: StoreContractHooks;
  /** `claimDue` by owner `a` at {@link NOW}, lease 60 s, limit and capacity 100, unless `over` says otherwise. */
  claim(over?: Partial<ClaimRequest>): Promise<ClaimResult>;
  /** Inserts a new root call due at {@link NOW} and claims it (with {@link claim}): the call and its lease. */
  startOne(): Promise<{ call: NewCall; leased: ClaimedCall }>;
  /** Suspends a claimed call on a timer (due at `t + 1`) with `state`. */
  suspendWith(id: string, leaseToken: number, t: number, state: CoroutineState | null, stateIsDelta: boolean): Promise<boolean>;
  /** Stored state chunks, when the store's test can count them. */
  chunks(): Promise<number | undefined>;
}

/**
 * Opens a fresh store before each test of the calling `describe` and closes
 * it after.
 * @example
 * export function callsContract(makeStore: StoreFactory, hooks: StoreContractHooks = {}): void { const t = useStore(makeStore, hooks); ... }
 */
export function useStore(makeStore: StoreFactory, hooks: StoreContractHooks): ContractContext {
  let current: Store | undefined;
  beforeEach(async () => {
    current = await makeStore();
  });
  afterEach(async () => {
    await current?.close();
    current = undefined;
  });
  const context: ContractContext = {
    get store(): Store {
      if (!current) throw new Error('the contract store exists only while a test runs');
      return current;
    },
    hooks,
    claim: (over = {}) => context.store.claimDue({ owner: 'a', now: NOW, leaseMs: 60_000, limit: 100, capacity: () => 100, ...over }),
    startOne: async () => {
      const call = newCall();
      await context.store.insertCalls([call]);
      const [leased] = (await context.claim()).calls;
      if (!leased) throw new Error(`the new call ${call.id} was not claimed`);
      return { call, leased };
    },
    suspendWith: (id, leaseToken, t, state, stateIsDelta) =>
      context.store.complete(completion(id, leaseToken, t, suspendOutcome(t + 1, { state, stateIsDelta }))),
    chunks: async () => (hooks.stateChunks ? await hooks.stateChunks(context.store) : undefined),
  };
  return context;
}

/**
 * A `describe` of one concern of the contract, its tests registered by
 * `register` with a fresh store each ({@link useStore}).
 * @example
 * describeContract('calls', makeStore, hooks, (t) => { it('...', async () => { await t.store.insertCalls([newCall()]); }); });
 */
export function describeContract(title: string, makeStore: StoreFactory, hooks: StoreContractHooks, register: (t: ContractContext) => void): void {
  describe(title, () => register(useStore(makeStore, hooks)));
}

/**
 * Calls number `first` to `first + count - 1` of a large queue on one
 * endpoint, without input: every tenth of function `hot`, due at `now`; the
 * others `cold`, due later (call `i` at `now + 1000 + i`).
 * @example
 * await store.insertCalls(hotAndCold(100_000));
 */
export function hotAndCold(count: number, now = NOW, first = 0): NewCall[] {
  return Array.from({ length: count }, (_, j) => {
    const i = first + j;
    const id = newDispatchId();
    return {
      id,
      function: i % 10 === 0 ? 'hot' : 'cold',
      endpoint: 'http://127.0.0.1:1',
      input: null,
      createdAt: now,
      dueAt: i % 10 === 0 ? now : now + 1000 + i,
      expiresAt: now + HOUR,
      expirationMs: HOUR,
      rootId: id,
    };
  });
}

/**
 * Claims up to 50 `hot` calls of {@link hotAndCold} (no capacity for `cold`).
 * @example
 * const { calls, nextDueAt } = await claimHot(store);
 */
export function claimHot(store: Store, now = NOW): Promise<ClaimResult> {
  return store.claimDue({ owner: 'a', now, leaseMs: 1000, limit: 50, capacity: (_e, fn) => (fn === 'hot' ? 50 : 0) });
}
