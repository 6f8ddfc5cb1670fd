/**
 * Where a call is in its life, as names (`'succeeded'`) and as the numbers
 * of the scheduler service's `CallState` enum (`scheduler.proto`).
 * @module
 */
import type { CallState as ProtoCallState } from '../protocol/gen/types.js';

/**
 * Every call state, in the order of the protocol's enum (its numbers are
 * the index + 1).
 * @example CALL_STATES.includes('failed'); // true
 */
export const CALL_STATES = ['pending', 'running', 'suspended', 'succeeded', 'failed', 'cancelled'] as const;

/**
 * Where a call is in its life: `pending` (waiting for its next run),
 * `running` (a run is in flight), `suspended` (waiting for its children or a
 * timer), or finished: `succeeded`, `failed`, `cancelled`.
 * @example
 * const state: CallState = 'succeeded';
 */
export type CallState = (typeof CALL_STATES)[number];

/**
 * The call state of a `CallState` number, or `undefined` for UNSPECIFIED or
 * an unknown number.
 * @example callStateOf(4); // 'succeeded'
 */
export function callStateOf(n: number | null | undefined): CallState | undefined {
  return n ? CALL_STATES[n - 1] : undefined;
}

/**
 * The `CallState` number of a call state.
 * @example callStateNumber('failed'); // 5
 */
export function callStateNumber(state: CallState): ProtoCallState {
  const i = CALL_STATES.indexOf(state);
  if (i < 0) throw new RangeError(`unknown call state ${JSON.stringify(state)}: use one of ${CALL_STATES.join(', ')}`);
  return (i + 1) as ProtoCallState;
}

/**
 * `true` for the states a call ends in: `succeeded`, `failed`, `cancelled`.
 * @example isFinishedState('suspended'); // false
 */
export function isFinishedState(state: CallState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled';
}
