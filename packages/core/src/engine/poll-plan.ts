/**
 * Poll planning: what a suspended function asks the scheduler for. Every
 * call started since the last Poll goes out in this one (so
 * `Promise.all([a(), b(), c()])` is one Poll of three calls); `min_results`
 * wakes the function for the smallest need among its waiters, and `max_wait`
 * for its earliest timer.
 * @module
 */
import { MAX_POLL_RESULTS } from '../protocol/constants.js';
import type { ICall } from '../protocol/proto.js';
import { OperationKind } from '../protocol/proto.js';
import type { CallTarget } from './call-context.js';
import type { Execution } from './execution.js';

/** The parameters of a Poll, before its state is attached. */
export interface PollPlan {
  /** Calls to make, with correlation IDs `epoch << 32 | position`. */
  readonly calls: ICall[];
  /** Wake after this many results (1..{@link MAX_POLL_RESULTS}). */
  readonly minResults: number;
  /** Wake on the first failed result (a group needs every result). */
  readonly wakeOnError: boolean;
  /** Wake after this long at the latest (ms, whole seconds for timers). */
  readonly maxWaitMs: number;
  /** Signals waited for (Poll.signal_waits), with correlation IDs like calls'. */
  readonly signalWaits: { correlationId: bigint; name: string }[];
}

/**
 * Plans the Poll of a blocked execution and marks its unsent calls as sent.
 * `maxWaitMs` is the wait of a poll for calls only; a pending timer shortens
 * it to the timer's deadline, rounded up to whole seconds (at least 1 s).
 */
export function planPoll(
  x: Execution,
  options: { now: number; maxWaitMs: number; toProtoCall: (call: CallTarget, correlationId: bigint) => ICall },
): PollPlan {
  const epoch = BigInt(x.journal.epoch) << 32n;
  const calls: ICall[] = [];
  for (const position of x.unsent) {
    const p = x.pending.get(position);
    if (!p?.call) continue;
    const call = options.toProtoCall(p.call, epoch | BigInt(position));
    const carrier = p.trace?.carrier;
    if (carrier) {
      call.traceparent = carrier.traceparent;
      if (carrier.tracestate) call.tracestate = carrier.tracestate;
    }
    calls.push(call);
  }
  x.unsent = [];
  // Wake for the smallest need among the waiters: a group that needs all of
  // its calls needs its remaining count; anything else needs 1.
  let minResults = Number.POSITIVE_INFINITY;
  let wakeOnError = false;
  let earliest = Number.POSITIVE_INFINITY;
  const signalWaits: { correlationId: bigint; name: string }[] = [];
  for (const [position, p] of x.pending) {
    if (p.kind === OperationKind.OPERATION_KIND_SLEEP) earliest = Math.min(earliest, p.deadlineMs);
    else if (p.kind === OperationKind.OPERATION_KIND_SIGNAL_WAIT) {
      signalWaits.push({ correlationId: epoch | BigInt(position), name: p.signal ?? '' });
      if (p.deadlineMs > 0) earliest = Math.min(earliest, p.deadlineMs);
      minResults = Math.min(minResults, 1);
    }
    else if (p.kind === OperationKind.OPERATION_KIND_CALL) {
      if (p.group?.needs === 'all') {
        minResults = Math.min(minResults, p.group.pending);
        wakeOnError = true;
      } else minResults = 1;
    }
  }
  if (!Number.isFinite(minResults)) minResults = 1;
  minResults = Math.max(1, Math.min(MAX_POLL_RESULTS, minResults));
  const maxWaitMs = Number.isFinite(earliest)
    ? Math.min(options.maxWaitMs, Math.max(1000, Math.ceil((earliest - options.now) / 1000) * 1000))
    : options.maxWaitMs;
  return { calls, minResults, wakeOnError, maxWaitMs, signalWaits };
}

/**
 * Positions of the calls the last Poll sent that still wait for a result:
 * the calls to send again when that Poll failed (PollResult.error).
 */
export function callsOfLastPoll(x: Execution): number[] {
  const polls = x.journal.polls;
  const end = polls[polls.length - 1] ?? 0;
  const start = polls[polls.length - 2] ?? 0;
  const out: number[] = [];
  for (let p = start; p < end; p++) {
    const entry = x.pending.get(p);
    if (entry?.kind === OperationKind.OPERATION_KIND_CALL && !x.unsent.includes(p)) out.push(p);
  }
  return out;
}
