/**
 * Turns stored calls into the `CallInfo` message of the API (Get, List).
 * @module
 */
import { callStateNumber, decodeValue, proto } from '@dispatch/core/protocol';
import type { ConcurrencySnapshot } from '../run/concurrency.js';
import type { AttemptRecord, CallRecord } from '../store/store.js';

/**
 * JSON text of a decoded value for reading, or '' when it cannot be decoded.
 * @example
 * valueToJson(call.output); // '"Hello Ada"'
 */
export function valueToJson(any: proto.IAny | null): string {
  if (!any) return '';
  try {
    const value = decodeValue(any);
    if (value === undefined) return '';
    return JSON.stringify(value, (_k, v: unknown) => {
      if (typeof v === 'bigint') return v.toString();
      if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('base64') };
      if (v instanceof Map) return Object.fromEntries(v);
      if (v instanceof Set) return [...v];
      return v;
    }) ?? '';
  } catch {
    return '';
  }
}

/**
 * Builds a `CallInfo`. Details (attempts, children, concurrency, decoded
 * values) are for Get; List leaves them out.
 * @example
 * const info = toCallInfo(await store.getCall(id), { attempts: await store.getAttempts(id), children: [] });
 */
export function toCallInfo(
  rec: CallRecord,
  details?: { attempts: AttemptRecord[]; children: string[]; concurrency?: ConcurrencySnapshot },
): proto.ICallInfo {
  const info: proto.ICallInfo = {
    dispatchId: rec.id,
    function: rec.function,
    endpoint: rec.endpoint,
    state: callStateNumber(rec.state),
    status: rec.status,
    parentDispatchId: rec.parentId ?? '',
    rootDispatchId: rec.rootId,
    creationTime: proto.timestampFromDate(rec.createdAt),
    updateTime: proto.timestampFromDate(rec.updatedAt),
    expirationTime: proto.timestampFromDate(rec.expiresAt),
    attempts: rec.attempts,
    resumes: rec.resumes,
    originalFunction: rec.originalFunction,
    idempotencyKey: rec.idempotencyKey ?? '',
    readyResults: rec.ready,
    minResults: rec.minResults,
    maxResults: rec.maxResults,
  };
  if (rec.correlationId !== null) info.correlationId = proto.toLong(rec.correlationId);
  if (rec.finishedAt !== null) info.finishTime = proto.timestampFromDate(rec.finishedAt);
  if (rec.dueAt !== null && (rec.state === 'pending' || rec.state === 'suspended')) {
    info.nextRunTime = proto.timestampFromDate(rec.dueAt);
  }
  if (rec.input) info.input = rec.input;
  if (rec.output) info.output = rec.output;
  if (rec.error) info.error = rec.error;
  if (details) {
    info.attemptHistory = details.attempts.map((a) => {
      const attempt: proto.IAttempt = {
        number: a.number,
        startTime: proto.timestampFromDate(a.startedAt),
        duration: proto.durationFromMs(a.durationMs),
        status: a.status,
        outcome: a.outcome,
        resume: a.resume,
      };
      if (a.error) attempt.error = a.error;
      return attempt;
    });
    info.children = details.children;
    if (details.concurrency) {
      const c = details.concurrency;
      info.concurrency = { endpoint: c.endpoint, function: c.function, limit: c.limit, inFlight: c.inFlight, min: c.min, max: c.max };
    }
    const state = rec.coroutineState;
    if (state?.kind === 'typed') info.typedCoroutineState = { typeUrl: state.typeUrl, value: state.value };
    if (state?.kind === 'bytes') info.coroutineState = state.value;
    info.inputJson = valueToJson(rec.input);
    info.outputJson = valueToJson(rec.output);
  }
  return info;
}
