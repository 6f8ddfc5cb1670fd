/**
 * What the SQL stores (SQLite and PostgreSQL) share: the encoding of protobuf
 * values in BLOB/BYTEA columns and the mapping of a `calls` row to a
 * {@link CallRecord}. Both schemas name their columns alike.
 * @module
 */
import { proto } from '@dispatch/core/protocol';
import type { AttemptRecord, CallRecord, ChildResult, ClaimedCall, CoroutineState, TraceContext } from './store.js';
import { elidesState } from './policy.js';
import { varintSize, writeVarint } from '../proto-wire.js';

type IAny = proto.IAny;
type IError = proto.IError;

/**
 * The columns of a `calls` row that {@link toCallRecord} reads.
 * @example
 * const record = toCallRecord(row as CallRecordRow, true);
 */
export interface CallRecordRow {
  id: string;
  function: string;
  endpoint: string;
  version: string;
  input: Buffer | null;
  original_function: string;
  idempotency_key: string | null;
  parent_id: string | null;
  root_id: string;
  correlation_id: string | null;
  state: CallRecord['state'];
  status: number;
  due_at: number | null;
  attempts: number;
  resumes: number;
  failures: number;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  expires_at: number;
  state_kind: number;
  state_type_url: string | null;
  /** Legacy column (schema version < 3); the state's bytes now live in `call_state_chunks`. */
  state_value?: Buffer | null;
  poll_min: number;
  poll_max: number;
  ready: number;
  output: Buffer | null;
  error: Buffer | null;
  /** The key of the call's per-key limit (schema version 6; '' before). */
  limit_key?: string;
}

/** An `Any` as column bytes (null stays null). @example encodeAny(call.input) */
export const encodeAny = (a: IAny | null | undefined): Buffer | null => (a ? anyBytes(a.typeUrl ?? '', a.value ?? EMPTY) : null);

const EMPTY = new Uint8Array(0);

/**
 * `google.protobuf.Any` { type_url, value } encoded as protobufjs encodes it
 * (fields in order, an empty one left out), into one buffer: encoding with
 * protobufjs, then copying into a Buffer, cost ~2.4% of the in-process
 * throughput profile. `call-row.test.ts` checks the bytes against protobufjs.
 */
function anyBytes(typeUrl: string, value: Uint8Array): Buffer {
  const urlBytes = Buffer.byteLength(typeUrl);
  const urlField = urlBytes > 0 ? 1 + varintSize(urlBytes) + urlBytes : 0;
  const valueField = value.length > 0 ? 1 + varintSize(value.length) + value.length : 0;
  const out = Buffer.allocUnsafe(urlField + valueField);
  let at = 0;
  if (urlField > 0) {
    out[at++] = 0x0a;
    at = writeVarint(out, at, urlBytes);
    at += out.write(typeUrl, at, 'utf8');
  }
  if (valueField > 0) {
    out[at++] = 0x12;
    at = writeVarint(out, at, value.length);
    out.set(value, at);
  }
  return out;
}

/** Column bytes back to an `Any`. @example decodeAny(row.output) */
export const decodeAny = (b: Buffer | null): IAny | null => {
  if (!b) return null;
  const a = proto.Any.decode(b);
  return { typeUrl: a.typeUrl ?? '', value: a.value ?? new Uint8Array(0) };
};

/** An `Error` message as column bytes. @example encodeErrorBlob(result.error) */
export const encodeErrorBlob = (e: IError | null | undefined): Buffer | null => (e ? Buffer.from(proto.ErrorMessage.encode(e)) : null);

/** Column bytes back to an `Error` message, empty fields left out. @example decodeErrorBlob(row.error) */
export const decodeErrorBlob = (b: Buffer | null): IError | null => {
  if (!b) return null;
  return normalError(proto.ErrorMessage.decode(b));
};

/**
 * The coroutine state a row holds (1: opaque bytes, 2: typed), with `value`
 * its bytes (the concatenation of its chunks; a legacy `state_value` when
 * not given).
 * @example stateOf(row, loadedBytes)
 */
export function stateOf(
  row: Pick<CallRecordRow, 'state_kind' | 'state_type_url' | 'state_value'>,
  value?: Uint8Array | null,
): CoroutineState | null {
  const bytes = value ?? row.state_value ?? null;
  const v = bytes ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(0);
  if (row.state_kind === 1) return { kind: 'bytes', value: v };
  if (row.state_kind === 2) return { kind: 'typed', typeUrl: row.state_type_url ?? '', value: v };
  return null;
}

/**
 * Whether a row has state bytes stored (chunks to delete when the state is
 * replaced or dropped).
 * @example if (hasStoredState(row)) deleteChunks(row.id);
 */
export function hasStoredState(row: { state_kind: number; state_length: number }): boolean {
  return row.state_kind !== 0 || row.state_length > 0;
}

/**
 * The resume of a claimed call that suspended: its state (the bytes left
 * out when {@link elidesState} says so, else `load()`ed), the results to
 * hand it, and the Poll's error. `state_value`, when the row carries it,
 * is the state's bytes (a legacy column, or the bytes a claim read).
 * @example
 * const resume = toResume(row, req.elideStateAbove ?? Infinity, () => this.stateBytes(row), results);
 */
export function toResume(
  row: Pick<CallRecordRow, 'state_kind' | 'state_type_url' | 'state_value'> & { state_delta: number; state_length: number; poll_error: Buffer | null },
  elideStateAbove: number,
  load: () => Uint8Array | null,
  results: ChildResult[],
): NonNullable<ClaimedCall['resume']> {
  const length = row.state_value ? row.state_value.length : row.state_length;
  const deltaCapable = row.state_delta === 1;
  const kind = row.state_kind === 2 ? 'typed' : row.state_kind === 1 ? 'bytes' : undefined;
  // A state the run loop will elide is not read (its length is enough).
  const elided = elidesState(deltaCapable, kind, length, elideStateAbove);
  const state = stateOf(row, elided ? new Uint8Array(0) : load());
  return {
    state,
    stateLength: state ? length : 0,
    stateLoaded: !elided || !state,
    results,
    error: decodeErrorBlob(row.poll_error),
    deltaCapable,
  };
}

/**
 * A finished call's result, as its finish recorded it, for the parent it may wake.
 * @example
 * const child: FinishedChild = { id: row.id, correlationId: row.correlation_id, output: o.output, error: o.error };
 */
export interface FinishedChild {
  id: string;
  correlationId: string | null;
  output: IAny | null;
  error: IError | null;
}

/**
 * A child's result as its parent is handed it, from the finish being
 * recorded (no read of the row): the same values {@link toChildResult} gives
 * once the output and error went through their columns.
 * @example
 * const result = finishedChildResult({ id: row.id, correlationId: row.correlation_id, output: o.output, error: o.error });
 */
export function finishedChildResult({ id, correlationId, output, error }: FinishedChild): ChildResult {
  return {
    dispatchId: id,
    correlationId: BigInt(correlationId ?? '0'),
    output: output ? { typeUrl: output.typeUrl ?? '', value: output.value ?? EMPTY } : null,
    error: error ? normalError(error) : null,
  };
}

/** An `Error` message with its empty fields left out (as {@link decodeErrorBlob} gives it). */
function normalError(e: IError): IError {
  const out: IError = { type: e.type ?? '', message: e.message ?? '' };
  if (e.value && e.value.length > 0) out.value = e.value;
  if (e.traceback && e.traceback.length > 0) out.traceback = e.traceback;
  return out;
}

/**
 * A finished child's row as the result its parent is handed.
 * @example
 * const results = readyRows.map(toChildResult);
 */
export function toChildResult(row: Pick<CallRecordRow, 'id' | 'correlation_id' | 'output' | 'error'>): ChildResult {
  return {
    dispatchId: row.id,
    correlationId: BigInt(row.correlation_id ?? '0'),
    output: decodeAny(row.output),
    error: decodeErrorBlob(row.error),
  };
}

/**
 * An `attempts` row as an {@link AttemptRecord} (`resume` is 0/1 in SQLite,
 * a boolean in PostgreSQL).
 * @example
 * return rows.map(toAttemptRecord);
 */
export function toAttemptRecord(row: {
  number: number;
  started_at: number;
  duration_ms: number;
  status: number;
  outcome: string;
  resume: number | boolean;
  error: Buffer | null;
}): AttemptRecord {
  return {
    number: row.number,
    startedAt: row.started_at,
    durationMs: row.duration_ms,
    status: row.status,
    outcome: row.outcome,
    resume: row.resume === true || row.resume === 1,
    error: decodeErrorBlob(row.error),
  };
}

/**
 * A row as a {@link CallRecord}; `full` also decodes the input, output and
 * coroutine state (Get, its bytes given as `stateValue`), which List leaves out.
 * @example
 * const record = toCallRecord(row, false);
 */
export function toCallRecord(row: CallRecordRow, full: boolean, stateValue?: Uint8Array | null): CallRecord {
  return {
    id: row.id,
    function: row.function,
    endpoint: row.endpoint,
    state: row.state,
    status: row.status,
    parentId: row.parent_id,
    rootId: row.root_id,
    correlationId: row.correlation_id === null ? null : BigInt(row.correlation_id),
    idempotencyKey: row.idempotency_key,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at,
    expiresAt: row.expires_at,
    dueAt: row.due_at,
    attempts: row.attempts,
    resumes: row.resumes,
    failures: row.failures,
    input: full ? decodeAny(row.input) : null,
    originalFunction: row.original_function,
    output: full ? decodeAny(row.output) : null,
    error: decodeErrorBlob(row.error),
    coroutineState: full ? stateOf(row, stateValue) : null,
    ready: row.ready,
    minResults: row.poll_min,
    maxResults: row.poll_max,
    limitKey: row.limit_key ?? '',
  };
}

/**
 * A claimed row as a {@link ClaimedCall}: the input for a first run, or the
 * resume (state and results) the store assembled for a poll.
 * @example
 * return toClaimedCall(row, resume);
 */
export function toClaimedCall(
  row: Pick<CallRecordRow, 'id' | 'function' | 'endpoint' | 'parent_id' | 'correlation_id' | 'root_id' | 'created_at' | 'expires_at' | 'attempts' | 'resumes' | 'failures' | 'input'> & {
    lease_token: number;
    trace_context?: string | null;
  },
  resume: ClaimedCall['resume'],
): ClaimedCall {
  return {
    id: row.id,
    function: row.function,
    endpoint: row.endpoint,
    parentId: row.parent_id,
    correlationId: row.correlation_id,
    rootId: row.root_id,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    attempts: row.attempts,
    resumes: row.resumes,
    failures: row.failures,
    leaseToken: row.lease_token,
    input: resume ? null : decodeAny(row.input),
    resume,
    traceContext: decodeTraceContext(row.trace_context),
  };
}

/**
 * A call's W3C trace context as its `trace_context` column: the
 * traceparent, then a newline and the tracestate when there is one; null
 * without a traceparent.
 * @example
 * encodeTraceContext({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
 */
export function encodeTraceContext(t: TraceContext | undefined): string | null {
  if (!t?.traceparent) return null;
  return t.tracestate ? `${t.traceparent}\n${t.tracestate}` : t.traceparent;
}

/**
 * The `trace_context` column back to a trace context (undefined for null).
 * @example
 * decodeTraceContext(row.trace_context)?.traceparent;
 */
export function decodeTraceContext(column: string | null | undefined): TraceContext | undefined {
  if (!column) return undefined;
  const i = column.indexOf('\n');
  return i < 0 ? { traceparent: column } : { traceparent: column.slice(0, i), tracestate: column.slice(i + 1) };
}
