/**
 * Delivery rounds: how outcomes reach a function, and how replay gives the
 * same answer.
 *
 * Outcomes are delivered in rounds, only when the function is quiescent (its
 * microtasks drained), and each new round records, on its last outcome, how
 * many operations had been started when it was delivered. Replay delivers
 * each recorded round at that same point, so `race`/`any` pick the same
 * winner every time.
 * @module
 */
import * as proto from '../protocol/proto.js';
import type { ICallResult } from '../protocol/proto.js';
import { OperationKind } from '../protocol/proto.js';
import { decodeError, decodeValue, encodeError } from '../serde/serde.js';
import { TimeoutError } from '../status/errors.js';
import type { StatusRegistry } from '../status/registry.js';
import type { Execution } from './execution.js';
import type { Journal, Outcome } from './journal.js';

/** A timer this close to its deadline counts as due (ms). */
const TIMER_TOLERANCE_MS = 20;

/**
 * The recorded rounds of a journal, in delivery order; `undefined` when the
 * journal ends in the middle of a round (it cannot be replayed).
 */
export function recordedRounds(journal: Journal): Outcome[][] | undefined {
  const rounds: Outcome[][] = [];
  let round: Outcome[] = [];
  for (const o of journal.outcomes) {
    round.push(o);
    if (o.endOfRound) {
      rounds.push(round);
      round = [];
    }
  }
  return round.length ? undefined : rounds;
}

/** Operations started when a recorded round was delivered. */
export function roundPoint(round: readonly Outcome[]): number {
  return (round[round.length - 1] as Outcome).opsStarted;
}

/**
 * Delivers a round of outcomes in order to the operations waiting for them,
 * recording it in the journal when it is new (`record`).
 */
export function deliver(x: Execution, outcomes: Outcome[], record: boolean, registry: StatusRegistry): void {
  if (outcomes.length === 0) return;
  if (record) {
    const last = outcomes[outcomes.length - 1] as Outcome;
    last.endOfRound = true;
    last.opsStarted = x.started;
    x.journal.outcomes.push(...outcomes);
  }
  for (const outcome of outcomes) {
    const p = x.pending.get(outcome.position);
    if (!p) continue;
    x.pending.delete(outcome.position);
    if (p.group) p.group.pending--;
    switch (p.kind) {
      case OperationKind.OPERATION_KIND_SLEEP:
        p.resolve(undefined);
        break;
      case OperationKind.OPERATION_KIND_DISPATCH:
        if (outcome.error) p.reject(decodeError(outcome.error, undefined, registry));
        else p.resolve(outcome.dispatchIds ?? []);
        break;
      default:
        if (outcome.error && !(p.call?.raw && outcome.output)) p.reject(decodeError(outcome.error, undefined, registry));
        else if (p.call?.raw) p.resolve(outcome.output ?? null);
        else {
          try {
            p.resolve(decodeValue(outcome.output));
          } catch (err) {
            p.reject(err);
          }
        }
    }
  }
}

/**
 * Outcomes for the results of a PollResult: results for calls of this
 * execution's epoch that are still pending, the first result per call wins
 * (duplicates and unknown correlation IDs are ignored).
 */
export function outcomesOf(x: Execution, results: readonly ICallResult[]): Outcome[] {
  const out: Outcome[] = [];
  const seen = new Set<number>();
  for (const r of results) {
    const id = proto.toBigInt(r.correlationId ?? 0);
    if (Number(id >> 32n) !== x.journal.epoch) continue;
    const position = Number(id & 0xffffffffn);
    const p = x.pending.get(position);
    if (!p || (p.kind !== OperationKind.OPERATION_KIND_CALL && p.kind !== OperationKind.OPERATION_KIND_SIGNAL_WAIT) || seen.has(position)) continue;
    seen.add(position);
    out.push({ position, output: r.output ?? undefined, error: r.error ?? undefined, endOfRound: false, opsStarted: 0 });
  }
  return out;
}

/** Outcomes for the timers that are due at `now`: sleeps that end, waits for signals that time out. */
export function dueTimers(x: Execution, now: number): Outcome[] {
  const out: Outcome[] = [];
  for (const [position, p] of x.pending) {
    if (p.kind === OperationKind.OPERATION_KIND_SLEEP && p.deadlineMs <= now + TIMER_TOLERANCE_MS) {
      out.push({ position, endOfRound: false, opsStarted: 0 });
    } else if (p.kind === OperationKind.OPERATION_KIND_SIGNAL_WAIT && p.deadlineMs > 0 && p.deadlineMs <= now + TIMER_TOLERANCE_MS) {
      const timeout = p.timeoutMs ?? 0;
      const error = new TimeoutError(`no signal ${JSON.stringify(p.signal)} arrived for ${x.context.dispatchId || x.fn.name} within ${formatMs(timeout)}`);
      out.push({ position, error: encodeError(error), endOfRound: false, opsStarted: 0 });
    }
  }
  return out;
}

function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
