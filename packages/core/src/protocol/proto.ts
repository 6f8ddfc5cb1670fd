/**
 * The protobuf codec: the `dispatch.sdk.v1` messages of PROTOCOL.md section 1
 * and this project's own `dispatch.typescript.v1` messages, compiled by
 * protobufjs from `proto/` (see `scripts/gen-proto.mjs`).
 *
 * 64-bit integers decode as `Long` (exact); use {@link toBigInt} and
 * {@link toLong} to convert at API boundaries.
 * @module
 */
import Long from 'long';
import protobuf from 'protobufjs';
import { descriptor } from './gen/descriptor.js';
import type * as pb from './gen/types.js';

export type * from './gen/types.js';
export { CallState as ProtoCallState, MissedTicks, OperationKind, Status as ProtoStatus } from './gen/types.js';

// protobufjs picks up `long` through a dynamic require that bundlers and
// some ESM loaders miss; set it explicitly so 64-bit values stay exact.
protobuf.util.Long = Long;
protobuf.configure();

/** The protobufjs root holding every message of this project. */
export const root: protobuf.Root = protobuf.Root.fromJSON(descriptor);

/** A compiled message type with precise TypeScript types for its objects. */
export interface MessageType<T extends object> {
  /** The underlying protobufjs reflection type. */
  readonly type: protobuf.Type;
  /** Fully qualified name, without a leading dot (`dispatch.sdk.v1.Call`). */
  readonly fullName: string;
  /** `type.googleapis.com/<fullName>`. */
  readonly typeUrl: string;
  /** Encodes a message (fields not set are omitted). */
  encode(message: T): Uint8Array;
  /** Encodes a message preceded by its length as a varint (a streamed answer's frame). */
  encodeDelimited(message: T): Uint8Array;
  /** Decodes binary protobuf; throws a `protobuf.util.ProtocolError`/`Error` on malformed input. */
  decode(bytes: Uint8Array): T;
}

function messageType<T extends object>(fullName: string): MessageType<T> {
  const type = root.lookupType(fullName);
  return {
    type,
    fullName,
    typeUrl: `type.googleapis.com/${fullName}`,
    encode: (message: T) => type.encode(message as protobuf.Message).finish(),
    encodeDelimited: (message: T) => type.encodeDelimited(message as protobuf.Message).finish(),
    decode: (bytes: Uint8Array) => type.decode(bytes) as unknown as T,
  };
}

export const Call = messageType<pb.ICall>('dispatch.sdk.v1.Call');
export const CallResult = messageType<pb.ICallResult>('dispatch.sdk.v1.CallResult');
export const ErrorMessage = messageType<pb.IError>('dispatch.sdk.v1.Error');
export const Exit = messageType<pb.IExit>('dispatch.sdk.v1.Exit');
export const Poll = messageType<pb.IPoll>('dispatch.sdk.v1.Poll');
export const PollResult = messageType<pb.IPollResult>('dispatch.sdk.v1.PollResult');
export const RunRequest = messageType<pb.IRunRequest>('dispatch.sdk.v1.RunRequest');
export const RunResponse = messageType<pb.IRunResponse>('dispatch.sdk.v1.RunResponse');
export const RunBatchRequest = messageType<pb.IRunBatchRequest>('dispatch.typescript.v1.RunBatchRequest');
export const RunBatchResponse = messageType<pb.IRunBatchResponse>('dispatch.typescript.v1.RunBatchResponse');
export const RunBatchAnswer = messageType<pb.IRunBatchAnswer>('dispatch.typescript.v1.RunBatchAnswer');
export const DispatchRequest = messageType<pb.IDispatchRequest>('dispatch.sdk.v1.DispatchRequest');
export const DispatchResponse = messageType<pb.IDispatchResponse>('dispatch.sdk.v1.DispatchResponse');
export const Journal = messageType<pb.IJournal>('dispatch.typescript.v1.Journal');

// This project's scheduler service (scheduler.proto, PROTOCOL.md 8.19).
export const WaitRequest = messageType<pb.IWaitRequest>('dispatch.typescript.v1.WaitRequest');
export const WaitResponse = messageType<pb.IWaitResponse>('dispatch.typescript.v1.WaitResponse');
export const GetRequest = messageType<pb.IGetRequest>('dispatch.typescript.v1.GetRequest');
export const GetResponse = messageType<pb.IGetResponse>('dispatch.typescript.v1.GetResponse');
export const ListRequest = messageType<pb.IListRequest>('dispatch.typescript.v1.ListRequest');
export const ListResponse = messageType<pb.IListResponse>('dispatch.typescript.v1.ListResponse');
export const CancelRequest = messageType<pb.ICancelRequest>('dispatch.typescript.v1.CancelRequest');
export const CancelResponse = messageType<pb.ICancelResponse>('dispatch.typescript.v1.CancelResponse');
export const RestartRequest = messageType<pb.IRestartRequest>('dispatch.typescript.v1.RestartRequest');
export const RestartResponse = messageType<pb.IRestartResponse>('dispatch.typescript.v1.RestartResponse');
export const CallInfo = messageType<pb.ICallInfo>('dispatch.typescript.v1.CallInfo');
export const SignalRequest = messageType<pb.ISignalRequest>('dispatch.typescript.v1.SignalRequest');
export const SignalResponse = messageType<pb.ISignalResponse>('dispatch.typescript.v1.SignalResponse');
export const ResumeRequest = messageType<pb.IResumeRequest>('dispatch.typescript.v1.ResumeRequest');
export const ResumeResponse = messageType<pb.IResumeResponse>('dispatch.typescript.v1.ResumeResponse');
export const FeaturesRequest = messageType<pb.IFeaturesRequest>('dispatch.typescript.v1.FeaturesRequest');
export const FeaturesResponse = messageType<pb.IFeaturesResponse>('dispatch.typescript.v1.FeaturesResponse');
// Schedules (schedules.proto): ScheduleService.
export const DeclareSchedulesRequest = messageType<pb.IDeclareSchedulesRequest>('dispatch.typescript.v1.DeclareSchedulesRequest');
export const DeclareSchedulesResponse = messageType<pb.IDeclareSchedulesResponse>('dispatch.typescript.v1.DeclareSchedulesResponse');
export const ListSchedulesRequest = messageType<pb.IListSchedulesRequest>('dispatch.typescript.v1.ListSchedulesRequest');
export const ListSchedulesResponse = messageType<pb.IListSchedulesResponse>('dispatch.typescript.v1.ListSchedulesResponse');
export const PauseScheduleRequest = messageType<pb.IPauseScheduleRequest>('dispatch.typescript.v1.PauseScheduleRequest');
export const PauseScheduleResponse = messageType<pb.IPauseScheduleResponse>('dispatch.typescript.v1.PauseScheduleResponse');
export const ResumeScheduleRequest = messageType<pb.IResumeScheduleRequest>('dispatch.typescript.v1.ResumeScheduleRequest');
export const ResumeScheduleResponse = messageType<pb.IResumeScheduleResponse>('dispatch.typescript.v1.ResumeScheduleResponse');
export const RemoveScheduleRequest = messageType<pb.IRemoveScheduleRequest>('dispatch.typescript.v1.RemoveScheduleRequest');
export const RemoveScheduleResponse = messageType<pb.IRemoveScheduleResponse>('dispatch.typescript.v1.RemoveScheduleResponse');

export const Any = messageType<pb.IAny>('google.protobuf.Any');
export const Empty = messageType<pb.IEmpty>('google.protobuf.Empty');
export const BoolValue = messageType<pb.IBoolValue>('google.protobuf.BoolValue');
export const Int32Value = messageType<pb.IInt32Value>('google.protobuf.Int32Value');
export const UInt32Value = messageType<pb.IUInt32Value>('google.protobuf.UInt32Value');
export const Int64Value = messageType<pb.IInt64Value>('google.protobuf.Int64Value');
export const UInt64Value = messageType<pb.IUInt64Value>('google.protobuf.UInt64Value');
export const FloatValue = messageType<pb.IFloatValue>('google.protobuf.FloatValue');
export const DoubleValue = messageType<pb.IDoubleValue>('google.protobuf.DoubleValue');
export const StringValue = messageType<pb.IStringValue>('google.protobuf.StringValue');
export const BytesValue = messageType<pb.IBytesValue>('google.protobuf.BytesValue');
export const Timestamp = messageType<pb.ITimestamp>('google.protobuf.Timestamp');
export const Duration = messageType<pb.IDuration>('google.protobuf.Duration');
export const Value = messageType<pb.IValue>('google.protobuf.Value');
export const ListValue = messageType<pb.IListValue>('google.protobuf.ListValue');
export const Struct = messageType<pb.IStruct>('google.protobuf.Struct');

/** Type URL prefix used for every message this project packs into an `Any`. */
export const TYPE_URL_PREFIX = 'type.googleapis.com/';

/** The message name of a type URL: the text after its last `/` (PROTOCOL.md 5.9). */
export function typeNameOf(typeUrl: string): string {
  const i = typeUrl.lastIndexOf('/');
  return i < 0 ? typeUrl : typeUrl.slice(i + 1);
}

/** Packs a message into an `Any`. */
export function pack<T extends object>(type: MessageType<T>, message: T): pb.IAny {
  return { typeUrl: type.typeUrl, value: type.encode(message) };
}

/** Unpacks an `Any` known to hold `type` (checked by name); throws otherwise. */
export function unpack<T extends object>(type: MessageType<T>, any: pb.IAny): T {
  const name = typeNameOf(any.typeUrl ?? '');
  if (name !== type.fullName) {
    throw new TypeError(`expected an Any holding ${type.fullName}, got type URL ${JSON.stringify(any.typeUrl ?? '')}`);
  }
  return type.decode(any.value ?? new Uint8Array(0));
}

/** Converts a decoded 64-bit value (Long, number or decimal string) to an exact bigint. */
export function toBigInt(value: Long | number | bigint | string | null | undefined): bigint {
  if (value == null) return 0n;
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' || typeof value === 'string') return BigInt(value);
  const big = (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
  return value.unsigned ? big : BigInt.asIntN(64, big);
}

/** Converts a bigint to a Long for encoding (`unsigned` for uint64 fields). */
export function toLong(value: bigint, unsigned = true): Long {
  const v = unsigned ? BigInt.asUintN(64, value) : BigInt.asIntN(64, value);
  const u = BigInt.asUintN(64, v);
  return new Long(Number(u & 0xffffffffn) | 0, Number(u >> 32n) | 0, unsigned);
}

/** Converts milliseconds to a `Duration`. */
export function durationFromMs(ms: number): pb.IDuration {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** Converts a `Duration` to milliseconds (null when absent). */
export function durationToMs(d: pb.IDuration | null | undefined): number | null {
  if (!d) return null;
  return Number(toBigInt(d.seconds ?? 0)) * 1000 + (d.nanos ?? 0) / 1e6;
}

/** Converts a Date (or epoch milliseconds) to a `Timestamp`. */
export function timestampFromDate(date: Date | number): pb.ITimestamp {
  const ms = typeof date === 'number' ? date : date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** Converts a `Timestamp` to a Date (null when absent). */
export function timestampToDate(t: pb.ITimestamp | null | undefined): Date | null {
  if (!t) return null;
  return new Date(Number(toBigInt(t.seconds ?? 0)) * 1000 + Math.floor((t.nanos ?? 0) / 1e6));
}
