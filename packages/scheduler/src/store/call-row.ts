/**
 * What the SQL stores (SQLite and PostgreSQL) share: the encoding of protobuf
 * values in BLOB/BYTEA columns and the mapping of a `calls` row to a
 * {@link CallRecord}. Both schemas name their columns alike.
 * @module
 */
import { proto } from '@dispatch/core/protocol';
import type { CallRecord, ClaimedCall, CoroutineState } from './store.js';

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
}

/** An `Any` as column bytes (null stays null). @example encodeAny(call.input) */
export const encodeAny = (a: IAny | null | undefined): Buffer | null =>
  a ? Buffer.from(proto.Any.encode({ typeUrl: a.typeUrl ?? '', value: a.value ?? new Uint8Array(0) })) : null;

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
  const e = proto.ErrorMessage.decode(b);
  const out: IError = { type: e.type ?? '', message: e.message ?? '' };
  if (e.value && e.value.length > 0) out.value = e.value;
  if (e.traceback && e.traceback.length > 0) out.traceback = e.traceback;
  return out;
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
    failures: row.failures,
    input: full ? decodeAny(row.input) : null,
    originalFunction: row.original_function,
    output: full ? decodeAny(row.output) : null,
    error: decodeErrorBlob(row.error),
    coroutineState: full ? stateOf(row, stateValue) : null,
    ready: row.ready,
    minResults: row.poll_min,
    maxResults: row.poll_max,
  };
}

/**
 * A claimed row as a {@link ClaimedCall}: the input for a first run, or the
 * resume (state and results) the store assembled for a poll.
 * @example
 * return toClaimedCall(row, resume);
 */
export function toClaimedCall(
  row: Pick<CallRecordRow, 'id' | 'function' | 'endpoint' | 'parent_id' | 'root_id' | 'created_at' | 'expires_at' | 'attempts' | 'failures' | 'input'> & {
    lease_token: number;
  },
  resume: ClaimedCall['resume'],
): ClaimedCall {
  return {
    id: row.id,
    function: row.function,
    endpoint: row.endpoint,
    parentId: row.parent_id,
    rootId: row.root_id,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    attempts: row.attempts,
    failures: row.failures,
    leaseToken: row.lease_token,
    input: resume ? null : decodeAny(row.input),
    resume,
  };
}
