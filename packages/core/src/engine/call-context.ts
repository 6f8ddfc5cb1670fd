/**
 * The call contract between the engine and the calls it runs: what a durable
 * call must tell the engine ({@link CallTarget}), how a combinator groups
 * calls ({@link CallGroup}), and how a call finds the execution that starts
 * it ({@link callContext}). The API's `DurableCall` implements this contract;
 * the engine never imports the API.
 * @module
 */
import type { IAny, ICallLimits } from '../protocol/proto.js';
import { currentExecution } from './execution.js';

/**
 * Options of one call.
 *
 * @example
 * ```ts
 * const options: CallOptions = { expirationMs: 10 * 60_000, version: 'v2' };
 * ```
 */
export interface CallOptions {
  /** Longest time the call may take, retries included (the scheduler may cap it). @example 600_000 */
  expirationMs?: number;
  /** Application version selector (not supported by every scheduler). @example 'v2' */
  version?: string;
  /** Run no earlier than this long after the scheduler receives the call (Call.delay). @example 10_000 */
  delayMs?: number;
  /** Run no earlier than this time, ms since the epoch (sent as a delay from the time of dispatch). @example Date.parse('2030-01-01T09:00:00Z') */
  startAtMs?: number;
  /** A second dispatch with the same key answers the first one's dispatch ID (at least 24 h). @example 'order-42' */
  idempotencyKey?: string;
  /** The declared limits of the called function and this call's key (`Call.limits`); set by `dispatch.function()`. @example { concurrency: 2 } */
  limits?: ICallLimits;
}

/** What the engine needs from a durable call to start it. */
export interface CallTarget {
  /** Function name. */
  readonly function: string;
  /** Endpoint URL; undefined for a function of this app (the app's own endpoint). */
  readonly endpoint: string | undefined;
  /** Encoded input (a google.protobuf.Value list for TypeScript functions); may throw a SerializationError. */
  readonly input: IAny;
  /** `true` for raw calls: the awaited value is the exact output `Any`. */
  readonly raw: boolean;
  readonly options: CallOptions;
}

/** How a combinator consumes a set of calls; used to choose poll parameters. @internal */
export interface CallGroup {
  /** 'all': the caller needs every result (gather/all/allSettled); 'one': the first one (race/any). */
  readonly needs: 'all' | 'one';
}

/**
 * Something that starts durable calls: the engine's execution, found from the
 * async context of a running Dispatch function.
 * @internal
 */
export interface CallStarter {
  /** Starts `call` at the next position of the journal; resolves to its (decoded) result. */
  startCall<R>(call: CallTarget, group?: CallGroup): Promise<R>;
}

/** The starter of the Dispatch function running in the current async context, if any. @internal */
export const callContext: { readonly current: () => CallStarter | undefined } = { current: currentExecution };
