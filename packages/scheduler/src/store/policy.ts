/**
 * The life of a call, written once for every store: which state an outcome
 * leads to, when a suspended call wakes (PROTOCOL.md 8.16), which children a
 * Poll starts (8.17), what becomes of the children a call leaves behind, who
 * may record a run, and how idempotency keys answer. Pure functions, no I/O:
 * the SQLite and PostgreSQL stores ask them and write the answers in SQL.
 * The few rules a store must evaluate inside one SQL statement have their
 * SQL form beside them in `policy-sql.ts`, tested against these.
 *
 * In the spirit of river and graphile-worker: policy here, drivers that only
 * speak SQL in `sqlite/` and `pg/`.
 * @module
 */
import { DEFAULT_MAX_WAIT_MS, MAX_POLL_RESULTS, MIN_MAX_WAIT_MS, proto, Status } from '@dispatch/core/protocol';
import { type AttemptRecord, type CallState, type CompleteRequest, type CoroutineState, isFinished, type NewCall, type SuspendOutcome } from './store.js';

type IError = proto.IError;

// ---------------------------------------------------------------- outcomes

/**
 * The state a call ends in when it finishes with `status`: OK succeeds,
 * anything else fails.
 * @example
 * finishedState(Status.OK); // 'succeeded'
 */
export function finishedState(status: number): 'succeeded' | 'failed' {
  return status === Status.OK ? 'succeeded' : 'failed';
}

/**
 * Whether a finished call's result counts as an error for its parent (a
 * Poll with `wake_on_error` wakes on it): it carries an error, or its
 * status is not OK.
 * @example
 * isErrorResult(Status.OK, null); // false
 */
export function isErrorResult(status: number, error: IError | null | undefined): boolean {
  return error != null || status !== Status.OK;
}

/**
 * The status a cancelled call ends with.
 * @example
 * const cancelled = { state: 'cancelled', status: CANCELLED_STATUS };
 */
export const CANCELLED_STATUS: number = Status.PERMANENT_ERROR;

/**
 * Whether `req` still holds the lease of a stored call: the call is running,
 * leased to the same owner with the same token. A run recorded by anyone
 * else is dropped, so a result is recorded exactly once.
 * @example
 * if (!holdsLease(row, req)) return false;
 */
export function holdsLease(
  row: { state: CallState; lease_owner: string | null; lease_token: number },
  req: { owner: string; leaseToken: number },
): boolean {
  return row.state === 'running' && row.lease_owner === req.owner && row.lease_token === req.leaseToken;
}

/**
 * How many runs of a call were attempts and how many were resumes.
 * @example
 * const counts: RunCounts = { attempts: 1, resumes: 3 }; // a call that never failed, resumed three times
 */
export interface RunCounts {
  attempts: number;
  resumes: number;
}

/**
 * Whether a claimed run is a resume: it continues the call after a
 * suspension (it carries the Poll's results) and follows no failure. The
 * first run, a retry (even of a resume) and a run after a restart or a tail
 * call are attempts.
 * @example
 * const resume = isResumeRun(call); // false for a retry
 */
export function isResumeRun(call: { resume: unknown; failures: number }): boolean {
  return call.resume !== null && call.failures === 0;
}

/**
 * The counts once the run `attempt` is recorded: one more resume or one
 * more attempt. Runs are numbered from 1 over both, so a run whose number
 * is already counted (recorded again) changes nothing. SQL form:
 * `runCountsSql`.
 * @example
 * const { attempts, resumes } = runCountsAfter(row, req.attempt);
 */
export function runCountsAfter(counts: RunCounts, attempt: Pick<AttemptRecord, 'number' | 'resume'> | null): RunCounts {
  if (!attempt || attempt.number <= counts.attempts + counts.resumes) return { attempts: counts.attempts, resumes: counts.resumes };
  return attempt.resume ? { attempts: counts.attempts, resumes: counts.resumes + 1 } : { attempts: counts.attempts + 1, resumes: counts.resumes };
}

/**
 * Attempts and resumes in words, for people: `1 attempt`, `2 attempts and
 * 1 resume`.
 * @example
 * runCountsText({ attempts: 1, resumes: 3 }); // '1 attempt and 3 resumes'
 */
export function runCountsText(counts: RunCounts): string {
  const a = `${counts.attempts} attempt${counts.attempts === 1 ? '' : 's'}`;
  return counts.resumes > 0 ? `${a} and ${counts.resumes} resume${counts.resumes === 1 ? '' : 's'}` : a;
}

/**
 * The label of each run of a call, in order: `attempt 1`, `resume 1`,
 * `resume 2`, `attempt 2`… (attempts and resumes are numbered apart).
 * @example
 * runLabels([false, true, true]); // ['attempt 1', 'resume 1', 'resume 2']
 */
export function runLabels(resumes: readonly boolean[]): string[] {
  let attempts = 0;
  let resumed = 0;
  return resumes.map((resume) => (resume ? `resume ${++resumed}` : `attempt ${++attempts}`));
}

// ------------------------------------------------------------ polls, wakes

/**
 * A Poll's conditions as this scheduler keeps them (PROTOCOL.md 8.16).
 * @example
 * const { minResults, maxResults, deadline } = pollConditions(poll, now, call.expiresAt);
 */
export interface PollConditions {
  /** Results that wake the call: 1..{@link maxResults}. */
  minResults: number;
  /** Most results one resume delivers: 1..`MAX_POLL_RESULTS`. */
  maxResults: number;
  /** When the call wakes with whatever arrived: `now + max_wait`, at most the call's expiration. */
  deadline: number;
}

/**
 * Normalises a Poll (PROTOCOL.md 8.16): a `max_wait` missing or under
 * `MIN_MAX_WAIT_MS` is `DEFAULT_MAX_WAIT_MS`; `max_results` is clamped to
 * 1..`MAX_POLL_RESULTS` (0 means the most); `min_results` to 1..`max_results`.
 * @example
 * pollConditions({ minResults: 5, maxResults: 2 }, now, expiresAt); // { minResults: 2, maxResults: 2, deadline: now + 300_000 }
 */
export function pollConditions(
  poll: Pick<proto.IPoll, 'maxWait' | 'minResults' | 'maxResults'>,
  now: number,
  expiresAt: number,
): PollConditions {
  const waitMs = proto.durationToMs(poll.maxWait);
  const maxWaitMs = waitMs === null || waitMs < MIN_MAX_WAIT_MS ? DEFAULT_MAX_WAIT_MS : waitMs;
  const maxResults = clamp(poll.maxResults || MAX_POLL_RESULTS, 1, MAX_POLL_RESULTS);
  const minResults = Math.min(clamp(poll.minResults || 1, 1, MAX_POLL_RESULTS), maxResults);
  return { minResults, maxResults, deadline: Math.min(expiresAt, now + maxWaitMs) };
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.trunc(n)));
}

/**
 * Child results a call holds and has not been handed yet.
 * @example
 * const ready: ReadyResults = { ready: 2, readyErrors: 0 };
 */
export interface ReadyResults {
  ready: number;
  /** How many of them are errors ({@link isErrorResult}). */
  readyErrors: number;
}

/**
 * When a call that suspends with `poll` runs next: at once if it wakes now
 * (the Poll was refused, `min_results` are already in, an error is in and
 * the Poll wakes on errors, or the deadline has passed), else at the
 * deadline.
 * @example
 * const dueAt = dueAtSuspension(outcome, { ready: 0, readyErrors: 0 }, now);
 */
export function dueAtSuspension(
  poll: Pick<SuspendOutcome, 'pollError' | 'minResults' | 'wakeOnError' | 'deadline'>,
  held: ReadyResults,
  now: number,
): number {
  const wakes =
    poll.pollError != null || held.ready >= poll.minResults || (poll.wakeOnError && held.readyErrors > 0) || poll.deadline <= now;
  return wakes ? now : poll.deadline;
}

/**
 * A parent as a child's result finds it.
 * @example
 * const parent: WaitingParent = { state: 'suspended', ready: 0, minResults: 1, wakeOnError: false, dueAt: deadline };
 */
export interface WaitingParent {
  state: CallState;
  /** Results held before this one. */
  ready: number;
  minResults: number;
  wakeOnError: boolean;
  dueAt: number | null;
}

/**
 * Whether a call takes the result of its child: while it is not finished
 * (and only for the generation that made the child, which the store checks).
 * @example
 * if (takesResults(parent.state)) countResult(parent);
 */
export function takesResults(state: CallState): boolean {
  return !isFinished(state);
}

/**
 * The parent's `dueAt` once one more result is in: a suspended parent
 * wakes (due now, or earlier if it already was) when its `min_results` are
 * reached, or on an error result if its Poll wakes on errors; otherwise
 * nothing changes. SQL form: `dueOnResultSql`.
 * @example
 * dueAtOnResult({ state: 'suspended', ready: 0, minResults: 1, wakeOnError: false, dueAt: now + 60_000 }, false, now); // now
 */
export function dueAtOnResult(parent: WaitingParent, resultIsError: boolean, now: number): number | null {
  const wakes = parent.state === 'suspended' && (parent.ready + 1 >= parent.minResults || (resultIsError && parent.wakeOnError));
  return wakes ? Math.min(parent.dueAt ?? now, now) : parent.dueAt;
}

// ------------------------------------------------------------ children

/**
 * The correlation IDs of `calls` (decimal text, as stored), each once: what
 * a store looks up among the children an execution already has.
 * @example
 * const keys = correlationKeys(outcome.calls); // ['1', '2']
 */
export function correlationKeys(calls: readonly NewCall[]): string[] {
  const keys = new Set<string>();
  for (const call of calls) if (call.correlationId !== undefined) keys.add(call.correlationId.toString());
  return [...keys];
}

/**
 * The calls a Poll starts (PROTOCOL.md 8.17: one child per correlation ID in
 * an execution): `calls` without those whose correlation ID repeats an
 * earlier one of the list or one in `existing` (the IDs of the children the
 * execution already has). Calls without a correlation ID all start.
 * @example
 * childrenToStart([kid(1n), kid(2n), kid(1n)], new Set(['2'])); // [kid(1n)]
 */
export function childrenToStart(calls: readonly NewCall[], existing: ReadonlySet<string>): NewCall[] {
  const seen = new Set(existing);
  return calls.filter((call) => {
    if (call.correlationId === undefined) return true;
    const key = call.correlationId.toString();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Whether a finished child's result was counted in its parent's `ready` and
 * not handed over yet: restarting the child takes it back.
 * @example
 * if (resultCountedForParent(row)) uncountResult(row.parent_id);
 */
export function resultCountedForParent(row: { deliver: number | null; parent_id: string | null }): row is {
  deliver: 1;
  parent_id: string;
} {
  return row.deliver === 1 && row.parent_id !== null;
}

// ------------------------------------------------------------ orphans, cancellation

/**
 * Why the unfinished children of a call are cancelled: their parent
 * finished, was replaced by a tail call, was restarted or was cancelled.
 * @example
 * const cause: OrphanCause = 'restarted';
 */
export type OrphanCause = 'finished' | 'tail_call' | 'restarted' | 'cancelled';

const ORPHAN_REASONS: Record<OrphanCause, string> = {
  finished: 'finished before collecting this result',
  tail_call: 'was replaced by a tail call',
  restarted: 'was restarted',
  cancelled: 'was cancelled',
};

/**
 * The error an orphan is cancelled with (it names its parent and why).
 * @example
 * orphanError('01J...', 'tail_call'); // { type: 'CancelledError', message: 'cancelled because its parent 01J... was replaced by a tail call' }
 */
export function orphanError(parentId: string | null, cause: OrphanCause): IError {
  return { type: 'CancelledError', message: `cancelled because its parent ${parentId} ${ORPHAN_REASONS[cause]}` };
}

/**
 * What becomes of the unfinished children of a call whose run completes
 * with `req`: the error to cancel them with when it finishes or tail-calls
 * (unless `orphans` is `keep`), or null when they go on (a retry or a
 * suspension keeps its children).
 * @example
 * const error = orphansOnComplete(req); if (error) cancelChildren(req.id, error);
 */
export function orphansOnComplete(req: Pick<CompleteRequest, 'id' | 'outcome' | 'orphans'>): IError | null {
  if ((req.orphans ?? 'cancel') === 'keep') return null;
  if (req.outcome.kind === 'finish') return orphanError(req.id, 'finished');
  if (req.outcome.kind === 'tail_call') return orphanError(req.id, 'tail_call');
  return null;
}

/**
 * One call to cancel: its error, and whether its parent is handed the
 * error as the call's result.
 * @example
 * for (const { row, error, notifyParent } of planCancellation(rows, [id], error, true)) cancelRow(row, error, notifyParent);
 */
export interface Cancellation<R> {
  row: R;
  error: IError;
  notifyParent: boolean;
}

/**
 * How to cancel `rows`, the unfinished calls of the trees rooted at `ids`:
 * the roots end with `error`, their descendants with an error naming their
 * cancelled parent. With `notifyOutside`, a call whose parent is outside the
 * cancelled set (a parent still waiting) hands it the error as its result;
 * within the set nobody is told.
 * @example
 * planCancellation([{ id: 'A', parent_id: 'P' }], ['A'], apiError, true); // [{ row, error: apiError, notifyParent: true }]
 */
export function planCancellation<R extends { id: string; parent_id: string | null }>(
  rows: readonly R[],
  ids: readonly string[],
  error: IError,
  notifyOutside: boolean,
): Cancellation<R>[] {
  const cancelled = new Set(rows.map((r) => r.id));
  const roots = new Set(ids);
  return rows.map((row) => ({
    row,
    error: roots.has(row.id) ? error : orphanError(row.parent_id, 'cancelled'),
    notifyParent: notifyOutside && row.parent_id !== null && !cancelled.has(row.parent_id),
  }));
}

// ------------------------------------------------------------ coroutine state

/**
 * How a suspension stores its state. `kind` is the column code (0 none,
 * 1 opaque bytes, 2 typed); a delta of the same typed state is appended
 * (`append`) to the stored chunks, any other state replaces them; a typed
 * delta marks the call delta-capable (`markDelta`: its state may be elided).
 * @example
 * const write = planStateWrite(row, outcome); if (!write.append) dropChunks(row.id);
 */
export interface StateWrite {
  kind: 0 | 1 | 2;
  typeUrl: string | null;
  markDelta: boolean;
  append: boolean;
}

/**
 * {@link StateWrite} of a suspension, given the state the row holds.
 * @example
 * planStateWrite({ state_kind: 2, state_type_url: 'T' }, { state: { kind: 'typed', typeUrl: 'T', value }, stateIsDelta: true }); // append
 */
export function planStateWrite(
  stored: { state_kind: number; state_type_url: string | null },
  poll: Pick<SuspendOutcome, 'state' | 'stateIsDelta'>,
): StateWrite {
  const state = poll.state;
  if (state?.kind === 'bytes') return { kind: 1, typeUrl: null, markDelta: false, append: false };
  if (state?.kind !== 'typed') return { kind: 0, typeUrl: null, markDelta: false, append: false };
  const delta = poll.stateIsDelta;
  return { kind: 2, typeUrl: state.typeUrl, markDelta: delta, append: delta && stored.state_kind === 2 && stored.state_type_url === state.typeUrl };
}

/**
 * Whether a resume leaves a state's bytes out (only its length travels):
 * a typed state of a delta-capable call at least `elideStateAbove` long.
 * The store then skips reading the bytes; the run loop elides them.
 * @example
 * elidesState(true, 'typed', 70_000, 65_536); // true
 */
export function elidesState(deltaCapable: boolean, kind: CoroutineState['kind'] | undefined, length: number, elideStateAbove: number): boolean {
  return deltaCapable && kind === 'typed' && length >= elideStateAbove;
}

// ------------------------------------------------------------ idempotency keys

/**
 * The calls to insert from a batch: all, but only the first of each
 * idempotency key (a key repeated within the batch answers the first
 * call's ID, PROTOCOL.md 8.19).
 * @example
 * const rows = firstPerKey(calls);
 */
export function firstPerKey(calls: readonly NewCall[]): NewCall[] {
  const keys = new Set<string>();
  return calls.filter((call) => {
    const key = call.idempotencyKey;
    if (!key) return true;
    if (keys.has(key)) return false;
    keys.add(key);
    return true;
  });
}

/**
 * The dispatch ID each call of a batch answers: its own when it was
 * inserted (or carries no key), else the ID of the first call of the batch
 * with its key if that one was inserted, else the ID stored under the key
 * (`known`: key → dispatch ID).
 * @example
 * return answerIds(calls, inserted, known);
 */
export function answerIds(calls: readonly NewCall[], inserted: ReadonlySet<string>, known: ReadonlyMap<string, string>): string[] {
  const firstByKey = new Map<string, string>();
  for (const call of firstPerKey(calls)) if (call.idempotencyKey) firstByKey.set(call.idempotencyKey, call.id);
  return calls.map((call) => {
    const key = call.idempotencyKey;
    if (!key) return call.id;
    const first = firstByKey.get(key)!;
    if (inserted.has(first)) return first;
    const original = known.get(key);
    if (!original) throw new Error(`idempotency key ${JSON.stringify(key)} conflicted but its call was not found; retry the request`);
    return original;
  });
}

// ------------------------------------------------------------------ signals

/**
 * Which kept signals the waits of a Poll consume: each wait without a
 * signal yet takes the oldest kept signal of its name (waits in Poll order,
 * signals in the order sent). Answers `[wait index, signal seq]` pairs.
 * @example
 * matchSignals([{ correlationId: 1n, name: 'a' }], new Set(), [{ seq: 4, name: 'a' }]); // [[0, 4]]
 */
export function matchSignals(
  waits: readonly { correlationId: bigint; name: string }[],
  answered: ReadonlySet<string>,
  kept: readonly { seq: number; name: string }[],
): Array<[number, number]> {
  const taken = new Set<number>();
  const out: Array<[number, number]> = [];
  waits.forEach((w, i) => {
    if (answered.has(w.correlationId.toString())) return;
    const s = kept.find((k) => k.name === w.name && !taken.has(k.seq));
    if (!s) return;
    taken.add(s.seq);
    out.push([i, s.seq]);
  });
  return out;
}

/** Prefix of the IDs of delivered signals in `ChildResult.dispatchId` and `CompleteRequest.delivered`. */
export const SIGNAL_RESULT_PREFIX = 'signal:';

/**
 * The waits of a Poll as stored in `calls.poll_signals` (JSON), and back.
 * @example
 * parseSignalWaits(encodeSignalWaits([{ correlationId: 1n, name: 'a' }]));
 */
export function encodeSignalWaits(waits: readonly { correlationId: bigint; name: string }[] | undefined): string | null {
  if (!waits || waits.length === 0) return null;
  return JSON.stringify(waits.map((w) => ({ c: w.correlationId.toString(), n: w.name })));
}

/** See {@link encodeSignalWaits}. @example parseSignalWaits(row.poll_signals) */
export function parseSignalWaits(text: string | null | undefined): { correlationId: bigint; name: string }[] {
  if (!text) return [];
  return (JSON.parse(text) as { c: string; n: string }[]).map((w) => ({ correlationId: BigInt(w.c), name: w.n }));
}

/**
 * What `resume` does with a call: resume it from its journal (failed, with
 * a state), restart it from its input (failed before its first suspension:
 * there is nothing to skip), or refuse (it did not fail).
 * @example
 * if (planResume(row) === 'not_failed') throw new Error('only failed calls resume');
 */
export function planResume(row: { state: CallState; state_kind: number }): 'resume' | 'restart' | 'not_failed' {
  if (row.state !== 'failed') return 'not_failed';
  return row.state_kind === 0 ? 'restart' : 'resume';
}
