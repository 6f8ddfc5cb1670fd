import { DEFAULT_MAX_WAIT_MS, MAX_POLL_RESULTS, Status } from '@dispatch/core/protocol';
import { describe, expect, it } from 'vitest';
import type { NewCall, SuspendOutcome } from './store.js';
import {
  answerIds,
  CANCELLED_STATUS,
  childrenToStart,
  correlationKeys,
  dueAtOnResult,
  dueAtSuspension,
  elidesState,
  finishedState,
  firstPerKey,
  holdsLease,
  isErrorResult,
  isResumeRun,
  orphanError,
  orphansOnComplete,
  planCancellation,
  planStateWrite,
  pollConditions,
  runCountsAfter,
  resultCountedForParent,
  takesResults,
  type WaitingParent,
} from './policy.js';

const now = 1_000_000;

function call(id: string, over: Partial<NewCall> = {}): NewCall {
  return { id, function: 'f', endpoint: 'http://127.0.0.1:1', input: null, createdAt: now, dueAt: now, expiresAt: now + 1, expirationMs: 1, rootId: id, ...over };
}

describe('outcomes', () => {
  it('maps a final status to its state: OK succeeds, anything else fails', () => {
    expect(finishedState(Status.OK)).toBe('succeeded');
    for (const status of [Status.PERMANENT_ERROR, Status.TIMEOUT, Status.INVALID_ARGUMENT, Status.UNSPECIFIED]) {
      expect(finishedState(status)).toBe('failed');
    }
  });

  it('counts a result as an error when it carries one or its status is not OK', () => {
    expect(isErrorResult(Status.OK, null)).toBe(false);
    expect(isErrorResult(Status.OK, undefined)).toBe(false);
    expect(isErrorResult(Status.OK, { type: 'E', message: 'm' })).toBe(true);
    expect(isErrorResult(Status.PERMANENT_ERROR, null)).toBe(true);
  });

  it('cancels with PERMANENT_ERROR', () => {
    expect(CANCELLED_STATUS).toBe(Status.PERMANENT_ERROR);
  });

  it('lets only the lease holder record a run', () => {
    const row = { state: 'running' as const, lease_owner: 'a', lease_token: 3 };
    expect(holdsLease(row, { owner: 'a', leaseToken: 3 })).toBe(true);
    expect(holdsLease(row, { owner: 'b', leaseToken: 3 })).toBe(false);
    expect(holdsLease(row, { owner: 'a', leaseToken: 2 })).toBe(false);
    expect(holdsLease({ ...row, state: 'pending' }, { owner: 'a', leaseToken: 3 })).toBe(false);
    expect(holdsLease({ ...row, state: 'cancelled' }, { owner: 'a', leaseToken: 3 })).toBe(false);
  });

  it('counts attempts and resumes apart, each run once by its number', () => {
    expect(runCountsAfter({ attempts: 2, resumes: 1 }, null)).toEqual({ attempts: 2, resumes: 1 });
    expect(runCountsAfter({ attempts: 0, resumes: 0 }, { number: 1, resume: false })).toEqual({ attempts: 1, resumes: 0 });
    expect(runCountsAfter({ attempts: 1, resumes: 2 }, { number: 4, resume: true })).toEqual({ attempts: 1, resumes: 3 });
    expect(runCountsAfter({ attempts: 1, resumes: 2 }, { number: 4, resume: false })).toEqual({ attempts: 2, resumes: 2 });
    expect(runCountsAfter({ attempts: 1, resumes: 2 }, { number: 3, resume: true })).toEqual({ attempts: 1, resumes: 2 }); // recorded again
  });

  it('tells a resume (continues after a suspension) from an attempt (first run, retry, restart)', () => {
    const results = { state: null, results: [] };
    expect(isResumeRun({ resume: null, failures: 0 })).toBe(false); // first run, or after a restart or a tail call
    expect(isResumeRun({ resume: results, failures: 0 })).toBe(true);
    expect(isResumeRun({ resume: results, failures: 1 })).toBe(false); // a retry of a failed resume
    expect(isResumeRun({ resume: null, failures: 2 })).toBe(false);
  });
});

describe('poll conditions (PROTOCOL.md 8.16)', () => {
  const expiresAt = now + 3_600_000;

  it('treats a max_wait missing or under 1 s as 5 minutes', () => {
    expect(pollConditions({}, now, expiresAt).deadline).toBe(now + DEFAULT_MAX_WAIT_MS);
    expect(pollConditions({ maxWait: { seconds: 0, nanos: 999_000_000 } }, now, expiresAt).deadline).toBe(now + DEFAULT_MAX_WAIT_MS);
    expect(pollConditions({ maxWait: { seconds: 1 } }, now, expiresAt).deadline).toBe(now + 1000);
    expect(pollConditions({ maxWait: { seconds: 90 } }, now, expiresAt).deadline).toBe(now + 90_000);
  });

  it('never waits past the call expiration', () => {
    expect(pollConditions({ maxWait: { seconds: 600 } }, now, now + 2000).deadline).toBe(now + 2000);
  });

  it('clamps max_results to 1..1000 (0 is the most) and lowers min_results to it', () => {
    expect(pollConditions({}, now, expiresAt)).toMatchObject({ minResults: 1, maxResults: MAX_POLL_RESULTS });
    expect(pollConditions({ maxResults: 5000, minResults: 5000 }, now, expiresAt)).toMatchObject({ minResults: 1000, maxResults: 1000 });
    expect(pollConditions({ maxResults: 2, minResults: 5 }, now, expiresAt)).toMatchObject({ minResults: 2, maxResults: 2 });
    expect(pollConditions({ maxResults: -3, minResults: -1 }, now, expiresAt)).toMatchObject({ minResults: 1, maxResults: 1 });
    expect(pollConditions({ maxResults: 10, minResults: 3 }, now, expiresAt)).toMatchObject({ minResults: 3, maxResults: 10 });
  });
});

describe('wakes', () => {
  const poll: Pick<SuspendOutcome, 'pollError' | 'minResults' | 'wakeOnError' | 'deadline'> = {
    pollError: null,
    minResults: 2,
    wakeOnError: false,
    deadline: now + 60_000,
  };

  it('suspends until the deadline unless the poll is already satisfied', () => {
    expect(dueAtSuspension(poll, { ready: 1, readyErrors: 0 }, now)).toBe(now + 60_000);
    expect(dueAtSuspension(poll, { ready: 2, readyErrors: 0 }, now)).toBe(now);
    expect(dueAtSuspension({ ...poll, pollError: { type: 'E', message: 'refused' } }, { ready: 0, readyErrors: 0 }, now)).toBe(now);
    expect(dueAtSuspension(poll, { ready: 1, readyErrors: 1 }, now)).toBe(now + 60_000);
    expect(dueAtSuspension({ ...poll, wakeOnError: true }, { ready: 1, readyErrors: 1 }, now)).toBe(now);
    expect(dueAtSuspension({ ...poll, deadline: now }, { ready: 0, readyErrors: 0 }, now)).toBe(now);
  });

  it('wakes a suspended parent when min_results are in, or on an error when its poll asks', () => {
    const parent: WaitingParent = { state: 'suspended', ready: 0, minResults: 2, wakeOnError: false, dueAt: now + 60_000 };
    expect(dueAtOnResult(parent, false, now)).toBe(now + 60_000);
    expect(dueAtOnResult({ ...parent, ready: 1 }, false, now)).toBe(now);
    expect(dueAtOnResult(parent, true, now)).toBe(now + 60_000);
    expect(dueAtOnResult({ ...parent, wakeOnError: true }, true, now)).toBe(now);
    expect(dueAtOnResult({ ...parent, ready: 1, dueAt: now - 5 }, false, now)).toBe(now - 5); // already due: stays
    expect(dueAtOnResult({ ...parent, ready: 1, dueAt: null }, false, now)).toBe(now);
  });

  it('only counts results for a parent that is still running or waiting', () => {
    const parent: WaitingParent = { state: 'running', ready: 5, minResults: 1, wakeOnError: true, dueAt: now + 9 };
    expect(dueAtOnResult(parent, true, now)).toBe(now + 9); // a running parent is not woken: its lease runs
    expect(dueAtOnResult({ ...parent, state: 'pending' }, true, now)).toBe(now + 9);
    expect(['pending', 'running', 'suspended'].every((s) => takesResults(s as WaitingParent['state']))).toBe(true);
    expect(['succeeded', 'failed', 'cancelled'].some((s) => takesResults(s as WaitingParent['state']))).toBe(false);
  });
});

describe('children (PROTOCOL.md 8.17)', () => {
  it('starts one child per correlation ID in an execution', () => {
    const calls = [call('a', { correlationId: 1n }), call('b', { correlationId: 2n }), call('c', { correlationId: 1n }), call('d'), call('e')];
    expect(correlationKeys(calls)).toEqual(['1', '2']);
    expect(childrenToStart(calls, new Set()).map((c) => c.id)).toEqual(['a', 'b', 'd', 'e']);
    expect(childrenToStart(calls, new Set(['2'])).map((c) => c.id)).toEqual(['a', 'd', 'e']);
    const big = (1n << 63n) + 7n;
    expect(childrenToStart([call('x', { correlationId: big })], new Set([big.toString()]))).toEqual([]);
  });

  it('takes back a result counted for the parent only while it waits for delivery', () => {
    expect(resultCountedForParent({ deliver: 1, parent_id: 'P' })).toBe(true);
    expect(resultCountedForParent({ deliver: null, parent_id: 'P' })).toBe(false);
    expect(resultCountedForParent({ deliver: 1, parent_id: null })).toBe(false);
  });
});

describe('orphans and cancellation', () => {
  const finish = { kind: 'finish', status: Status.OK, output: null, error: null } as const;
  const tail = { kind: 'tail_call', status: Status.OK, function: 'g', endpoint: 'e', input: null, expiresAt: now, dueAt: now } as const;
  const retry = { kind: 'retry', status: Status.TEMPORARY_ERROR, error: null, dueAt: now } as const;

  it('names the parent and why in the error of an orphan', () => {
    expect(orphanError('P', 'finished')).toEqual({ type: 'CancelledError', message: 'cancelled because its parent P finished before collecting this result' });
    expect(orphanError('P', 'tail_call').message).toBe('cancelled because its parent P was replaced by a tail call');
    expect(orphanError('P', 'restarted').message).toBe('cancelled because its parent P was restarted');
    expect(orphanError('P', 'cancelled').message).toBe('cancelled because its parent P was cancelled');
  });

  it('cancels the children a finished or tail-called call leaves, unless told to keep them', () => {
    expect(orphansOnComplete({ id: 'P', outcome: finish })?.message).toContain('finished before collecting');
    expect(orphansOnComplete({ id: 'P', outcome: tail, orphans: 'cancel' })?.message).toContain('tail call');
    expect(orphansOnComplete({ id: 'P', outcome: finish, orphans: 'keep' })).toBeNull();
    expect(orphansOnComplete({ id: 'P', outcome: retry })).toBeNull();
    const suspend: SuspendOutcome = { kind: 'suspend', status: Status.OK, state: null, stateIsDelta: false, calls: [], minResults: 1, maxResults: 1, deadline: now, wakeOnError: false, pollError: null };
    expect(orphansOnComplete({ id: 'P', outcome: suspend })).toBeNull();
  });

  it('cancels the roots with the given error, their descendants with their parent named; tells only parents outside', () => {
    const error = { type: 'CancelledError', message: 'through the API' };
    const rows = [
      { id: 'M', parent_id: 'R' },
      { id: 'L', parent_id: 'M' },
      { id: 'X', parent_id: null },
    ];
    expect(planCancellation(rows, ['M', 'X'], error, true)).toEqual([
      { row: rows[0], error, notifyParent: true },
      { row: rows[1], error: orphanError('M', 'cancelled'), notifyParent: false },
      { row: rows[2], error, notifyParent: false },
    ]);
    expect(planCancellation(rows, ['M', 'X'], error, false).map((c) => c.notifyParent)).toEqual([false, false, false]);
  });
});

describe('coroutine state', () => {
  const typed = (typeUrl: string) => ({ kind: 'typed' as const, typeUrl, value: new Uint8Array([1]) });

  it('appends a delta of the same typed state; any other state replaces it', () => {
    const stored = { state_kind: 2, state_type_url: 'T' };
    expect(planStateWrite(stored, { state: typed('T'), stateIsDelta: true })).toEqual({ kind: 2, typeUrl: 'T', markDelta: true, append: true });
    expect(planStateWrite(stored, { state: typed('T'), stateIsDelta: false })).toEqual({ kind: 2, typeUrl: 'T', markDelta: false, append: false });
    expect(planStateWrite(stored, { state: typed('U'), stateIsDelta: true })).toEqual({ kind: 2, typeUrl: 'U', markDelta: true, append: false });
    expect(planStateWrite({ state_kind: 1, state_type_url: null }, { state: typed('T'), stateIsDelta: true }).append).toBe(false);
    expect(planStateWrite(stored, { state: { kind: 'bytes', value: new Uint8Array([1]) }, stateIsDelta: true })).toEqual({ kind: 1, typeUrl: null, markDelta: false, append: false });
    expect(planStateWrite(stored, { state: null, stateIsDelta: false })).toEqual({ kind: 0, typeUrl: null, markDelta: false, append: false });
  });

  it('elides only typed states of delta-capable calls at least the threshold long', () => {
    expect(elidesState(true, 'typed', 10, 10)).toBe(true);
    expect(elidesState(true, 'typed', 9, 10)).toBe(false);
    expect(elidesState(false, 'typed', 10, 10)).toBe(false);
    expect(elidesState(true, 'bytes', 10, 0)).toBe(false);
    expect(elidesState(true, undefined, 10, 0)).toBe(false);
    expect(elidesState(true, 'typed', 1e9, Number.POSITIVE_INFINITY)).toBe(false);
  });
});

describe('idempotency keys', () => {
  it('inserts the first call of each key and answers its ID for the repeats', () => {
    const calls = [call('a', { idempotencyKey: 'k' }), call('b'), call('c', { idempotencyKey: 'k' }), call('d', { idempotencyKey: '' })];
    expect(firstPerKey(calls).map((c) => c.id)).toEqual(['a', 'b', 'd']);
    expect(answerIds(calls, new Set(['a', 'b', 'd']), new Map())).toEqual(['a', 'b', 'a', 'd']);
  });

  it('answers the stored ID of a key already known', () => {
    const calls = [call('a', { idempotencyKey: 'k' }), call('c', { idempotencyKey: 'k' })];
    expect(answerIds(calls, new Set(), new Map([['k', 'ORIGINAL']]))).toEqual(['ORIGINAL', 'ORIGINAL']);
    expect(() => answerIds(calls, new Set(), new Map())).toThrow(/idempotency key "k" conflicted but its call was not found/);
  });
});
