/**
 * What the client answers about calls, decoded: values and errors through
 * the serde (errors rebuilt with their classes), timestamps as Dates,
 * states as names, statuses as {@link Status}. Each keeps the protocol
 * message it came from in `raw`.
 * @module
 */
import * as proto from '../protocol/proto.js';
import { decodeArgs, decodeError, decodeValue, OpaqueValue } from '../serde/serde.js';
import type { StatusRegistry } from '../status/registry.js';
import { Status, statusName } from '../status/status.js';
import { type CallState, callStateOf, isFinishedState } from './call-state.js';

/**
 * One run of a call (a RunRequest and its outcome): an attempt (the first
 * run, or a retry) or a resume (`resume`: the call continued after a
 * suspension).
 * @example
 * const [first] = (await client.get(id)).attemptHistory;
 * if (first?.error) console.log(first.statusName, first.error.message);
 */
export interface CallAttempt {
  /** The run's number, over attempts and resumes (1 for the first run). */
  number: number;
  status: Status;
  /** The status's name: `'OK'`, `'TEMPORARY_ERROR'`… */
  statusName: string;
  /** `exit`, `retry`, `suspend`, `tail_call`, `expired`, `restart`… */
  outcome: string;
  /**
   * A resume: the run continued the function after a suspension (results of
   * its calls, or a timer), counted in `resumes`; otherwise an attempt (the
   * first run, or a retry, even of a resume).
   */
  resume: boolean;
  startedAt: Date;
  durationMs: number;
  /** The error of the attempt, decoded (same class, name, message and fields as thrown). */
  error: Error | undefined;
}

/**
 * Everything the scheduler knows about a call, decoded. `children` and
 * `attemptHistory` are filled by {@link DispatchClient.get} only (empty in
 * a list).
 * @example
 * const call = await client.get(id);
 * console.log(call.function, call.state, call.statusName, call.output);
 */
export interface CallInfo<T = unknown> {
  dispatchId: string;
  function: string;
  /** URL of the endpoint that runs it. */
  endpoint: string;
  state: CallState;
  /** The final status once finished; otherwise the status of the last attempt. */
  status: Status;
  /** The status's name: `'OK'`, `'PERMANENT_ERROR'`… */
  statusName: string;
  /** Attempts: the first run and each retry (a call that never failed has 1). */
  attempts: number;
  /** Resumes: runs that continued the call after a suspension (counted apart from attempts). */
  resumes: number;
  /** The caller's dispatch ID, or null for a root call. */
  parentDispatchId: string | null;
  rootDispatchId: string;
  /** Child dispatch IDs, oldest first (Get only). */
  children: string[];
  /** The decoded argument list. */
  input: unknown[];
  /** The decoded return value, once it has one. */
  output: T | undefined;
  /** The decoded error (same class, name, message, status and fields as thrown), once finished with one. */
  error: Error | undefined;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
  expiresAt: Date | null;
  /** When pending or suspended: when it runs next at the latest. */
  nextRunAt: Date | null;
  /** The function it was dispatched as (differs from `function` after a tail call). */
  originalFunction: string;
  idempotencyKey: string | null;
  /** Every attempt, oldest first (Get only). */
  attemptHistory: CallAttempt[];
  /** The `CallInfo` message as the scheduler sent it. */
  raw: proto.ICallInfo;
}

/**
 * A call {@link DispatchClient.wait} saw finish: its status and its value or
 * error, decoded.
 * @example
 * const r = await client.wait(id);
 * if (r.done && r.status === Status.OK) console.log(r.value);
 */
export interface FinishedCall<T = unknown> {
  done: true;
  dispatchId: string;
  state: CallState;
  status: Status;
  /** The status's name: `'OK'`, `'PERMANENT_ERROR'`… */
  statusName: string;
  /** The decoded return value (also of a call that failed with an output). */
  value: T | undefined;
  /** The decoded error (same class, name, message, status and fields as thrown) when the status is not OK. */
  error: Error | undefined;
  /** The `CallResult` message as the scheduler sent it. */
  raw: proto.ICallResult;
}

/**
 * A call {@link DispatchClient.wait} gave up waiting for: it is still
 * `pending`, `running` or `suspended`.
 * @example
 * const r = await client.wait(id, { timeoutMs: 1_000 });
 * if (!r.done) console.log(`still ${r.state}`);
 */
export interface UnfinishedCall {
  done: false;
  dispatchId: string;
  state: CallState;
}

/**
 * The answer of {@link DispatchClient.wait}.
 * @example
 * const r: CallOutcome<number> = await client.wait(id, { timeoutMs: 60_000 });
 */
export type CallOutcome<T = unknown> = FinishedCall<T> | UnfinishedCall;

/**
 * A page of {@link DispatchClient.list}.
 * @example
 * const { calls, nextCursor, counts } = await client.list({ states: ['failed'] });
 */
export interface CallPage {
  /** Newest first. */
  calls: CallInfo[];
  /** `cursor` of the next page; null on the last page. */
  nextCursor: string | null;
  /** Calls per state matching the filter (ignoring the state filter and the cursor). */
  counts: Record<CallState, number>;
}

/** A value, or the value as it came when it cannot be decoded. */
function decodedValue(any: proto.IAny | null | undefined, registry: StatusRegistry): unknown {
  try {
    return decodeValue(any, registry);
  } catch {
    return new OpaqueValue(any?.typeUrl ?? '', any?.value ?? new Uint8Array(0));
  }
}

function argsOf(any: proto.IAny | null | undefined, registry: StatusRegistry): unknown[] {
  try {
    return decodeArgs(any, registry);
  } catch {
    return [decodedValue(any, registry)];
  }
}

/**
 * Decodes a `CallInfo` message.
 * @example
 * const call = decodeCallInfo(GetResponse.decode(bytes).call ?? {}, registry);
 */
export function decodeCallInfo<T = unknown>(info: proto.ICallInfo, registry: StatusRegistry): CallInfo<T> {
  const status = (info.status ?? Status.UNSPECIFIED) as Status;
  const state = callStateOf(info.state) ?? 'pending';
  const failed = isFinishedState(state) && (!!info.error || status !== Status.OK);
  return {
    dispatchId: info.dispatchId ?? '',
    function: info.function ?? '',
    endpoint: info.endpoint ?? '',
    state,
    status,
    statusName: statusName(status),
    attempts: info.attempts ?? 0,
    resumes: info.resumes ?? 0,
    parentDispatchId: info.parentDispatchId || null,
    rootDispatchId: info.rootDispatchId || info.dispatchId || '',
    children: info.children ?? [],
    input: argsOf(info.input, registry),
    output: info.output ? (decodedValue(info.output, registry) as T) : undefined,
    error: failed ? decodeError(info.error, status, registry) : undefined,
    createdAt: proto.timestampToDate(info.creationTime) ?? new Date(0),
    updatedAt: proto.timestampToDate(info.updateTime) ?? new Date(0),
    finishedAt: proto.timestampToDate(info.finishTime),
    expiresAt: proto.timestampToDate(info.expirationTime),
    nextRunAt: proto.timestampToDate(info.nextRunTime),
    originalFunction: info.originalFunction || info.function || '',
    idempotencyKey: info.idempotencyKey || null,
    attemptHistory: (info.attemptHistory ?? []).map((a) => {
      const attemptStatus = (a.status ?? Status.UNSPECIFIED) as Status;
      return {
        number: a.number ?? 0,
        status: attemptStatus,
        statusName: statusName(attemptStatus),
        outcome: a.outcome ?? '',
        resume: !!a.resume,
        startedAt: proto.timestampToDate(a.startTime) ?? new Date(0),
        durationMs: proto.durationToMs(a.duration) ?? 0,
        error: a.error ? decodeError(a.error, attemptStatus, registry) : undefined,
      };
    }),
    raw: info,
  };
}

/**
 * Decodes a `WaitResponse` message.
 * @example
 * const outcome = decodeWaitResponse(id, WaitResponse.decode(bytes), registry);
 */
export function decodeWaitResponse<T = unknown>(dispatchId: string, response: proto.IWaitResponse, registry: StatusRegistry): CallOutcome<T> {
  const state = callStateOf(response.state) ?? 'pending';
  if (!response.done) return { done: false, dispatchId, state };
  const raw = response.result ?? {};
  const status = (response.status ?? Status.UNSPECIFIED) as Status;
  return {
    done: true,
    dispatchId,
    state,
    status,
    statusName: statusName(status),
    value: raw.output ? (decodedValue(raw.output, registry) as T) : undefined,
    error: raw.error || status !== Status.OK ? decodeError(raw.error, status, registry) : undefined,
    raw,
  };
}
