/**
 * The store contract: everything the scheduler keeps durable, behind an async
 * interface that an embedded SQLite store and a PostgreSQL store shared by
 * several scheduler instances both implement (one contract test suite,
 * `test/support/store-contract/`). What a transition does (states, wakes,
 * dedupe, orphans) is decided once, in `policy.ts`; a store writes it
 * in its SQL.
 *
 * The model, in short:
 * - A call is one row. Its `dueAt` says when it may run next; `null` means it
 *   cannot run (finished, or claimed... see below).
 * - `claimDue` picks due calls and leases them to an owner: `state` becomes
 *   `running`, `dueAt` becomes the lease expiry and `leaseToken` grows. An
 *   owner that dies stops renewing, so its calls become due again when the
 *   lease expires and another owner claims them (with PostgreSQL, claims use
 *   `FOR UPDATE SKIP LOCKED`).
 * - `complete` records what one run produced, only if the caller still holds
 *   the lease (same owner and token, state `running`): a result is recorded
 *   exactly once even when two owners race over an expired lease.
 * - A suspended call (a Poll) keeps its state; its children are rows whose
 *   `parentId` points to it. A child that finishes increments its parent's
 *   `ready` counter and makes the parent due when the Poll's condition holds.
 * @module
 */
import type { proto } from '@dispatch/core/protocol';
import type { StoreHealth } from './faults.js';
import type { ScheduleStore } from './schedule-store.js';
import type { DeclaredLimits } from './limits.js';

type IAny = proto.IAny;
type IError = proto.IError;

/**
 * Where a call is in its life.
 * - `pending`: waits for its next run (`dueAt`): first run, retry, or resume.
 * - `running`: leased to a scheduler instance; a RunRequest is in flight.
 * - `suspended`: waits for child results or a timer (`dueAt` is the deadline).
 * - `succeeded`, `failed`, `cancelled`: finished.
 * @example
 * const done: CallState[] = ['succeeded', 'failed', 'cancelled'];
 */
export type CallState = 'pending' | 'running' | 'suspended' | 'succeeded' | 'failed' | 'cancelled';

/**
 * All call states, in life order.
 * @example
 * for (const state of CALL_STATES) console.log(state, page.counts[state]);
 */
export const CALL_STATES: readonly CallState[] = Object.freeze([
  'pending',
  'running',
  'suspended',
  'succeeded',
  'failed',
  'cancelled',
]);

/**
 * `true` for the states a call never leaves (except through an explicit restart).
 * @example
 * if (isFinished(call.state)) console.log(call.status);
 */
export function isFinished(state: CallState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled';
}

/**
 * A call to insert.
 * @example
 * const call: NewCall = { id: newDispatchId(), function: 'greet', endpoint: 'http://127.0.0.1:8000', input: null, createdAt: now, dueAt: now, expiresAt: now + 3_600_000, expirationMs: 3_600_000, rootId: id };
 */
export interface NewCall {
  /** Dispatch ID chosen by the scheduler ({@link newDispatchId}). */
  id: string;
  function: string;
  /** Endpoint base URL (`http://host:port`), never empty. */
  endpoint: string;
  /** Input `Any` (first RunRequest's `input`); `null` when the call carried none. */
  input: IAny | null;
  /** `Call.version`, kept and shown; not used for routing. */
  version?: string;
  /** Dispatch-level idempotency key (PROTOCOL.md 8.19); only for calls made through the API. */
  idempotencyKey?: string;
  createdAt: number;
  /** First run time (normally `createdAt`). */
  dueAt: number;
  /** Absolute expiration, ms since the epoch. */
  expiresAt: number;
  /** The relative expiration it was computed from (used again by a restart). */
  expirationMs: number;
  /** Parent dispatch ID, for calls made by a Poll. */
  parentId?: string;
  /** Root dispatch ID: the call's own ID for a root call. */
  rootId: string;
  /** Correlation ID from the parent's Poll (uint64, exact). */
  correlationId?: bigint;
  /**
   * The limits the function declares and this call's key (`Call.limits`):
   * the store records them for the (endpoint, function) pair, the latest
   * declaration winning, and enforces them at claim time.
   */
  limits?: DeclaredLimits;
  /** The caller's W3C trace context (`Call.traceparent`/`tracestate`), sent with every run of the call. */
  traceContext?: TraceContext;
}

/**
 * A W3C trace context (https://www.w3.org/TR/trace-context/), as carried by
 * `Call.traceparent`/`tracestate` and `RunRequest.traceparent`/`tracestate`.
 * @example
 * const t: TraceContext = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
 */
export interface TraceContext {
  traceparent: string;
  tracestate?: string;
}

/**
 * The coroutine state a Poll carried, echoed back in the PollResult.
 * - `bytes`: the deprecated `coroutine_state` (python SDK), opaque.
 * - `typed`: `typed_coroutine_state`, any type URL, value opaque.
 * @example
 * const s: CoroutineState = { kind: 'typed', typeUrl: 'buf.build/stealthrocket/coroutine/coroutine.v1.State', value: bytes };
 */
export type CoroutineState =
  | { kind: 'bytes'; value: Uint8Array }
  | { kind: 'typed'; typeUrl: string; value: Uint8Array };

/**
 * A result of a child call, ready to be delivered to its suspended parent.
 * @example
 * const r: ChildResult = { dispatchId: 'X', correlationId: 7n, output: null, error: null };
 */
export interface ChildResult {
  dispatchId: string;
  correlationId: bigint;
  output: IAny | null;
  error: IError | null;
}

/**
 * A call leased by {@link Store.claimDue}, with what the RunRequest needs.
 * @example
 * for (const call of (await store.claimDue(req)).calls) console.log(call.id, call.resume ? 'resume' : 'run');
 */
export interface ClaimedCall {
  id: string;
  function: string;
  endpoint: string;
  parentId: string | null;
  rootId: string;
  createdAt: number;
  expiresAt: number;
  /** Attempts made before this run: the first run and each retry (see {@link CallRecord.attempts}). */
  attempts: number;
  /** Resumes made before this run (see {@link CallRecord.resumes}). */
  resumes: number;
  /** Consecutive failed attempts since the last progress (drives backoff and the attempt cap). */
  failures: number;
  /** Proof of the lease, passed back to {@link Store.complete}. */
  leaseToken: number;
  /**
   * The call's correlation ID in its parent's Poll (decimal), null for a
   * call without a parent; the run loop offers it for a local resume
   * (`RunRequest.local_resume`). Absent where a store does not say.
   */
  correlationId?: string | null;
  /** Input for a first run (`resume` is null). */
  input: IAny | null;
  /** The call's W3C trace context, if its caller traced it. */
  traceContext?: TraceContext | undefined;
  /** Set when the run resumes a Poll. */
  resume: null | {
    /**
     * The Poll's state, or null when it kept none. Its `value` holds the
     * bytes only when `stateLoaded` (the claim leaves out the bytes of states
     * it was told may be elided, {@link ClaimRequest.elideStateAbove}); else
     * it is empty and {@link Store.loadState} reads them.
     */
    state: CoroutineState | null;
    /** Length of the state's bytes (0 without a state), loaded or not. */
    stateLength: number;
    /** `state.value` holds the bytes (always true without a state). */
    stateLoaded: boolean;
    /** Results to deliver (at most the Poll's `max_results`), oldest first. */
    results: ChildResult[];
    /** Set when the Poll failed (its calls were refused). */
    error: IError | null;
    /** The stored state was built with `state_is_delta` (an SDK of this project), so it may be elided. */
    deltaCapable: boolean;
  };
}

/**
 * What {@link Store.claimDue} is asked for.
 * @example
 * const req: ClaimRequest = { owner: 'sched-1', now: Date.now(), leaseMs: 60_000, limit: 100, capacity: () => 10 };
 */
export interface ClaimRequest {
  /** The claiming scheduler instance. */
  owner: string;
  now: number;
  /** Lease length: the call is due again at `now + leaseMs` unless completed. */
  leaseMs: number;
  /** Most calls to claim in total. */
  limit: number;
  /** How many more calls of (endpoint, function) this owner may start now (its concurrency limit minus in flight). */
  capacity(endpoint: string, fn: string): number;
  /**
   * The claim may leave out the bytes of a delta-capable typed state at
   * least this long (the run loop elides it: only its length is sent).
   * Default: every state is loaded.
   */
  elideStateAbove?: number;
}

/**
 * What {@link Store.completeAndClaim} may lease (to the completing run's
 * owner, at its `now`).
 * @example
 * const claim: FollowOnClaim = { leaseMs: 30_000, capacity: () => 10, claimed: (call) => pending.add(call.id) };
 */
export interface FollowOnClaim {
  /** Lease length, as in {@link ClaimRequest.leaseMs}. */
  leaseMs: number;
  /**
   * How many more calls of (endpoint, function) may start now: asked before
   * each call is leased, so it must count those already told to `claimed`.
   */
  capacity(endpoint: string, fn: string): number;
  /** Told of each call leased, at once (before the answer, which comes after the commit). */
  claimed(call: ClaimedCall): void;
  /** As in {@link ClaimRequest.elideStateAbove}. */
  elideStateAbove?: number;
}

/**
 * What {@link Store.insertAndClaim} may lease: a {@link FollowOnClaim} with
 * the owner the leases go to and the time they start.
 * @example
 * const claim: InsertClaim = { owner: 'scheduler-1', now: Date.now(), leaseMs: 30_000, capacity: () => 10, claimed: () => {} };
 */
export interface InsertClaim extends FollowOnClaim {
  /** Who holds the leases, as in {@link ClaimRequest.owner}. */
  owner: string;
  /** When the leases start; calls due later than this are not leased. */
  now: number;
}

/**
 * The answer of {@link Store.insertAndClaim}.
 * @example
 * const { ids, calls } = await store.insertAndClaim!(rows, claim);
 */
export interface InsertAndClaimResult {
  /** What {@link Store.insertCalls} answers. */
  ids: string[];
  /** The calls leased as they were inserted (none when rolled back). */
  calls: ClaimedCall[];
}

/**
 * The answer of {@link Store.completeAndClaim}.
 * @example
 * const { recorded, calls } = await store.completeAndClaim(req, claim);
 */
export interface FollowOnResult {
  /** What {@link Store.complete} answers. */
  recorded: boolean;
  /** The calls leased (none when not recorded). */
  calls: ClaimedCall[];
}

/**
 * The answer of {@link Store.claimDue}.
 * @example
 * const { calls, nextDueAt } = await store.claimDue(req);
 */
export interface ClaimResult {
  calls: ClaimedCall[];
  /**
   * Earliest `dueAt` among unclaimed calls of (endpoint, function) pairs that
   * still had capacity, or null if none: the run loop sleeps until then (or a
   * wake-up).
   */
  nextDueAt: number | null;
}

/**
 * One run of a call, as recorded: an attempt (the first run, or a retry) or
 * a resume (the call continued after a suspension).
 * @example
 * const a: AttemptRecord = { number: 1, startedAt, durationMs: 12, status: Status.OK, outcome: 'exit', error: null, resume: false };
 */
export interface AttemptRecord {
  /** The run's number, from 1, over attempts and resumes alike. */
  number: number;
  startedAt: number;
  durationMs: number;
  /** A `Status` number. */
  status: number;
  /** `exit`, `retry`, `suspend`, `tail_call`, `expired`, `failed`. */
  outcome: string;
  error: IError | null;
  /**
   * The run continued the call after a suspension (it carried the Poll's
   * results and follows no failure): counted in `resumes`, not in
   * `attempts`. A retry is an attempt, even one that carries the results.
   */
  resume: boolean;
}

/**
 * Retry later: `dueAt` is the next attempt.
 * @example
 * const o: RetryOutcome = { kind: 'retry', status: Status.TEMPORARY_ERROR, error, dueAt: Date.now() + 200 };
 */
export interface RetryOutcome {
  kind: 'retry';
  status: number;
  error: IError | null;
  dueAt: number;
}

/**
 * The call finished: `succeeded` when `status` is OK, else `failed`.
 * @example
 * const o: FinishOutcome = { kind: 'finish', status: Status.OK, output, error: null };
 */
export interface FinishOutcome {
  kind: 'finish';
  status: number;
  output: IAny | null;
  error: IError | null;
}

/**
 * The call suspended on a Poll.
 * @example
 * const o: SuspendOutcome = { kind: 'suspend', status: Status.OK, state, stateIsDelta: false, calls: [], minResults: 1, maxResults: 1, deadline: Date.now() + 1000, wakeOnError: false, pollError: null };
 */
export interface SuspendOutcome {
  kind: 'suspend';
  status: number;
  /** The state to echo; `null` keeps none. */
  state: CoroutineState | null;
  /** `state.value` is a delta to append to the stored value (Poll.state_is_delta). */
  stateIsDelta: boolean;
  /**
   * Calls to start, as children (`parentId` and `rootId` set by the caller).
   * A call whose correlation ID repeats one of the same Poll, or of an
   * earlier child of the same execution, is dropped (PROTOCOL.md 8.17).
   */
  calls: NewCall[];
  minResults: number;
  maxResults: number;
  /** Absolute time at which to resume whatever arrived (max_wait, capped by expiration). */
  deadline: number;
  wakeOnError: boolean;
  /** Set when the Poll was refused: resume at once with PollResult.error, no calls created. */
  pollError: IError | null;
  /** Signals the Poll waits for (Poll.signal_waits): each consumes the oldest kept signal of its name. */
  signalWaits?: SignalWait[];
}

/**
 * A wait of a Poll for a signal (Poll.signal_waits).
 * @example
 * const w: SignalWait = { correlationId: 7n, name: 'decision' };
 */
export interface SignalWait {
  correlationId: bigint;
  name: string;
}

/**
 * A signal to record ({@link Store.signal}).
 * @example
 * const s: NewSignal = { callId: id, name: 'decision', payload, now: Date.now() };
 */
export interface NewSignal {
  callId: string;
  name: string;
  payload: IAny | null;
  /** A signal whose key was seen is not kept again. */
  idempotencyKey?: string;
  now: number;
}

/**
 * What {@link Store.signal} did: kept it, delivered it to a waiting call
 * at once, or refused it (unknown or finished call).
 * @example
 * const a: SignalAnswer = { kind: 'finished', state: 'succeeded' };
 */
export type SignalAnswer = { kind: 'kept' } | { kind: 'delivered' } | { kind: 'not_found' } | { kind: 'finished'; state: CallState };

/**
 * A signal sent to a call, as {@link Store.getSignals} answers it.
 * @example
 * const r: SignalRecord = { name: 'decision', payload: null, sentAt: Date.now(), consumedAt: null };
 */
export interface SignalRecord {
  name: string;
  payload: IAny | null;
  sentAt: number;
  /** When a wait consumed it; null while kept. */
  consumedAt: number | null;
}

/**
 * What {@link Store.resume} did.
 * @example
 * const a: ResumeAnswer = { kind: 'resumed', childrenRestarted: 1 };
 */
export type ResumeAnswer =
  | { kind: 'resumed'; childrenRestarted: number }
  | { kind: 'not_found' }
  | { kind: 'refused'; state: CallState; reason: 'not_failed' };

/**
 * The call continues as another function (PROTOCOL.md 8.14), same dispatch ID.
 * @example
 * const o: TailCallOutcome = { kind: 'tail_call', status: Status.OK, function: 'next', endpoint, input, expiresAt, dueAt: Date.now() };
 */
export interface TailCallOutcome {
  kind: 'tail_call';
  status: number;
  function: string;
  endpoint: string;
  input: IAny | null;
  expiresAt: number;
  dueAt: number;
}

/**
 * What one run produced.
 * @example
 * const o: Outcome = { kind: 'finish', status: Status.OK, output, error: null };
 */
export type Outcome = RetryOutcome | FinishOutcome | SuspendOutcome | TailCallOutcome;

/**
 * What {@link Store.complete} records.
 * @example
 * await store.complete({ id: call.id, owner, leaseToken: call.leaseToken, now: Date.now(), attempt, delivered: [], outcome });
 */
export interface CompleteRequest {
  id: string;
  owner: string;
  leaseToken: number;
  now: number;
  /** The attempt to append to the history; `null` records none (e.g. an expiration found at claim time). */
  attempt: AttemptRecord | null;
  /** Child dispatch IDs whose results this run delivered (marked delivered unless the outcome is a retry). */
  delivered: string[];
  outcome: Outcome;
  /** What to do with unfinished children when the call finishes or tail-calls: cancel them (default) or leave them. */
  orphans?: 'cancel' | 'keep';
}

/**
 * What the scheduler knows about one call.
 * @example
 * const call: CallRecord | null = await store.getCall(id);
 */
export interface CallRecord {
  id: string;
  function: string;
  endpoint: string;
  state: CallState;
  /** Final status when finished, else the last attempt's (0 before any). */
  status: number;
  parentId: string | null;
  rootId: string;
  correlationId: bigint | null;
  idempotencyKey: string | null;
  version: string;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  expiresAt: number;
  /** When pending/suspended: next run at the latest; when running: lease expiry. */
  dueAt: number | null;
  /**
   * Attempts: the first run and each retry (a run after a failure, a
   * restart or a tail call). A call that never failed has 1.
   */
  attempts: number;
  /** Resumes: runs that continued the call after a suspension (counted apart from attempts). */
  resumes: number;
  failures: number;
  /** Current input (after a tail call, the tail call's); null in list results. */
  input: IAny | null;
  originalFunction: string;
  /** Null in list results. */
  output: IAny | null;
  /** The final error, or while retrying the last attempt's. */
  error: IError | null;
  /** The Poll's state while the call has one; null in list results. */
  coroutineState: CoroutineState | null;
  /** Child results ready and not yet delivered. */
  ready: number;
  /** Poll conditions while suspended (0 otherwise). */
  minResults: number;
  maxResults: number;
  /** The key of the call's per-key limit ('' without one). */
  limitKey: string;
}

/**
 * Filter and page of {@link Store.listCalls}.
 * @example
 * const f: ListFilter = { states: ['failed'], function: 'charge', limit: 50 };
 */
export interface ListFilter {
  states?: CallState[];
  function?: string;
  /** Created at or after (ms). */
  createdAfter?: number;
  /** Created before (ms). */
  createdBefore?: number;
  rootsOnly?: boolean;
  /** Page size (default 100, at most 1000). */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

/**
 * A page of calls, newest first.
 * @example
 * const page: ListPage = await store.listCalls({});
 */
export interface ListPage {
  calls: CallRecord[];
  nextCursor: string | null;
  /** Calls per state matching the filter without its `states` and cursor. */
  counts: Record<CallState, number>;
}

/**
 * Unfinished calls of one function in one state ({@link Store.countLive}).
 * @example
 * const c: LiveCount = { function: 'charge', state: 'pending', count: 12, due: 10 };
 */
export interface LiveCount {
  function: string;
  state: 'pending' | 'running' | 'suspended';
  count: number;
  /** Of `count`, those due now (pending and waiting for a run slot); 0 for other states. */
  due: number;
}

/**
 * A change other scheduler instances may want to hear about (PostgreSQL
 * LISTEN/NOTIFY): work became due, or a call finished.
 * @example
 * store.subscribe?.((c) => { if (c.kind === 'finished') console.log(c.id); });
 */
export type StoreChange = { kind: 'due' } | { kind: 'finished'; id: string };

/**
 * A scheduler instance telling the others sharing the store that it is alive.
 * @example
 * const live = await store.heartbeat?.({ owner: 'sched-1', now: Date.now(), ttlMs: 30_000 });
 */
export interface InstanceHeartbeat {
  /** The instance's owner ID (as in leases). */
  owner: string;
  now: number;
  /** An instance not heard from for this long counts as gone. */
  ttlMs: number;
}

/**
 * The durable store of a scheduler. Every method is atomic; a write resolves
 * only once it is durable (at the store's durability level).
 * @example
 * const store: Store = await SqliteStore.open({ path: ':memory:' });
 * const [id] = await store.insertCalls([call]);
 * await store.close();
 */
export interface Store {
  /**
   * Inserts calls atomically (all or none). A call whose idempotency key is
   * already known is not inserted: its answer is the existing dispatch ID
   * (also for a key repeated within `calls`).
   */
  insertCalls(calls: NewCall[]): Promise<string[]>;

  /**
   * {@link Store.insertCalls}, leasing at once (in the same transaction, to
   * `claim.owner`) the new calls due at `claim.now` whose (endpoint,
   * function) has no other call due, within `claim.capacity`: a call is
   * written already running instead of pending and then claimed. Calls
   * that wait behind others of their function, calls of functions with
   * declared limits and delayed calls are left to {@link Store.claimDue}.
   * Optional: only a store that knows, without a statement, whether a
   * function has calls due (SQLite, which one process owns) offers it.
   * @example
   * const { ids, calls } = await store.insertAndClaim!(rows, { owner, now: Date.now(), leaseMs: 30_000, capacity: () => 100, claimed: () => {} });
   */
  insertAndClaim?(calls: NewCall[], claim: InsertClaim): Promise<InsertAndClaimResult>;

  /** Leases due calls to `req.owner` (see the module comment). */
  claimDue(req: ClaimRequest): Promise<ClaimResult>;

  /**
   * Whether a claim at `now` would lease nothing, known without a statement:
   * the time the next call falls due (null: none known), or undefined when
   * only a claim can tell. Optional: a store that one process owns (SQLite)
   * knows its due times; the run loop then skips the claim round that every
   * run's end starts.
   * @example
   * const quiet = store.quietUntil?.(Date.now());
   * if (quiet === undefined) await store.claimDue(req);
   */
  quietUntil?(now: number): number | null | undefined;

  /**
   * Records the outcome of a run if `req.owner` still holds the lease with
   * `req.leaseToken`. Returns false (and records nothing) otherwise.
   */
  complete(req: CompleteRequest): Promise<boolean>;

  /**
   * {@link Store.complete}, and in the same transaction the lease of the
   * calls this completion made due now (a parent woken by this result, the
   * children a suspension starts, a suspension due at once), within
   * `claim.capacity`: a child's result goes straight to its waiting parent's
   * next run without a claim round. Calls of functions with declared limits
   * are left to {@link Store.claimDue}. Optional: the run loop uses
   * `complete` where a store lacks it (PostgreSQL, shared by instances,
   * claims in the database).
   */
  completeAndClaim?(req: CompleteRequest, claim: FollowOnClaim): Promise<FollowOnResult>;

  /**
   * The full coroutine state of a running call leased with `leaseToken`
   * (the concatenation of its stored deltas), for a claim that left the bytes
   * out. Null when the call has no state or the lease is no longer held.
   */
  loadState(id: string, leaseToken: number): Promise<CoroutineState | null>;

  /** Extends the leases of running calls held by `owner` to `until`. */
  renewLeases(owner: string, ids: string[], until: number): Promise<void>;

  /**
   * Cancels a call and its unfinished descendants: they end `cancelled` with
   * `error` (status PERMANENT_ERROR). The parent of `id`, if waiting, receives
   * the error as the child's result. Returns the number of calls cancelled.
   */
  cancel(id: string, now: number, error: IError): Promise<number>;

  /**
   * Runs a call again from its original function and input, under the same
   * dispatch ID: history is kept, its unfinished children are cancelled, the
   * expiration restarts. Returns false for an unknown ID.
   */
  restart(id: string, now: number): Promise<boolean>;

  /**
   * Records a signal for a call: consumed at once by a wait of its Poll if
   * it is suspended waiting for that name (the call becomes due), else kept
   * until it waits. Refused for an unknown or finished call.
   */
  signal(s: NewSignal): Promise<SignalAnswer>;

  /** The signals sent to a call (oldest first) and the names its Poll waits for and has not received. */
  getSignals(id: string): Promise<{ signals: SignalRecord[]; waitingFor: string[] }>;

  /**
   * Runs a failed call again from its last recorded state (its journal):
   * the results of its children that succeeded (and the signals it
   * consumed) are delivered again; its children that did not succeed run
   * again from their input. Refused when the call did not fail or has no
   * state.
   */
  resume(id: string, now: number): Promise<ResumeAnswer>;

  getCall(id: string): Promise<CallRecord | null>;
  getAttempts(id: string): Promise<AttemptRecord[]>;
  /** Child dispatch IDs of every generation, oldest first. */
  getChildren(id: string): Promise<string[]>;
  /**
   * Optional: which of `ids` are finished, in one query (Wait rechecks all
   * its waiters with it once a second; without it, each waiter re-reads its
   * call).
   */
  finishedAmong?(ids: string[]): Promise<string[]>;
  listCalls(filter: ListFilter): Promise<ListPage>;
  /**
   * Optional, for `/metrics`: unfinished calls (pending, running, suspended)
   * per function and state, and how many of the pending ones are due at
   * `now` (the queue). Reads the unfinished rows only (index on state), not
   * the history.
   */
  countLive?(now: number): Promise<LiveCount[]>;
  /**
   * Number of pending calls of an endpoint (waiting for a first run, a
   * retry or a resume), for the line that says it is unreachable.
   */
  countWaiting?(endpoint: string): Promise<number>;

  /** A stored setting (signing key, API key), or null. */
  getMeta(key: string): Promise<string | null>;
  /** Stores `value` under `key` unless one exists; returns the stored value (race-safe across instances). */
  initMeta(key: string, value: string): Promise<string>;

  /**
   * Records that the dashboard session `id` ended (a logout) and must be
   * refused until `expiresAt` (ms since the epoch), when it would have
   * expired anyway; drops the records that are past that.
   */
  revokeSession(id: string, expiresAt: number): Promise<void>;
  /** True when session `id` was revoked and its record is not past its `expiresAt` (`now`). */
  isSessionRevoked(id: string, now: number): Promise<boolean>;

  /**
   * Optional, for stores shared by several instances: records that `owner`
   * is alive and answers how many instances are (itself included), so that
   * each divides the concurrency bounds by that number.
   */
  heartbeat?(beat: InstanceHeartbeat): Promise<number>;

  /** Optional: `owner` stops (graceful close); the others stop counting it at once. */
  leave?(owner: string): Promise<void>;

  /**
   * Optional: hear about changes made by other processes sharing the store.
   * Returns an unsubscribe function. Stores used by one process omit it.
   */
  subscribe?(listener: (change: StoreChange) => void): () => void;

  /**
   * Optional: this process has Wait calls blocked on calls that may finish
   * in another process sharing the store. Called when a waiter starts and
   * every second while any remain; a store shared by instances (PostgreSQL)
   * then tells the others to announce the calls they finish, which they
   * skip while nobody waits. Stores used by one process omit it.
   * @example
   * store.waiting?.(); // a Wait RPC just blocked on a call another instance may run
   */
  waiting?(): void;

  /**
   * Optional: whether the store can work now (`/healthz` reports it). A
   * store that saw a storage error (disk full, connection lost; see
   * `faults.ts`) tries again with a small write or query before answering, so
   * the answer turns `ok` by itself once the store recovers.
   */
  health?(): Promise<StoreHealth>;
  /** The schedules (issue 15): declared by apps, ticked by the scheduler. */
  readonly schedules: ScheduleStore;

  /** Flushes pending writes and closes. */
  close(): Promise<void>;
  /**
   * Why a call that is due still waits: the declared limit of its function
   * that is reached (concurrency or rate, of its key), or null.
   */
  limitWait?(call: { endpoint: string; function: string; limitKey: string }, now: number): Promise<proto.ILimitWait | null>;
}
