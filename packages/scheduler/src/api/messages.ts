/**
 * Codec objects for this project's scheduler API messages
 * (`dispatch.typescript.v1`, `proto/dispatch/typescript/v1/scheduler.proto`
 * in @dispatch/core), shaped like the core's own codec objects so that
 * `toJson`/`fromJson` work on them.
 * @module
 */
import { proto } from '@dispatch/core/protocol';

function messageType<T extends object>(fullName: string): proto.MessageType<T> {
  const type = proto.root.lookupType(fullName);
  return {
    type,
    fullName,
    typeUrl: `type.googleapis.com/${fullName}`,
    encode: (message: T) => type.encode(message as Parameters<typeof type.encode>[0]).finish(),
    decode: (bytes: Uint8Array) => type.decode(bytes) as unknown as T,
  };
}

/**
 * `dispatch.typescript.v1.WaitRequest`
 * @example
 * const body = WaitRequest.encode({ dispatchId: id, timeout: proto.durationFromMs(10_000) });
 */
export const WaitRequest = messageType<proto.IWaitRequest>('dispatch.typescript.v1.WaitRequest');
/**
 * `dispatch.typescript.v1.WaitResponse`
 * @example
 * const { done, status, result } = WaitResponse.decode(bytes);
 */
export const WaitResponse = messageType<proto.IWaitResponse>('dispatch.typescript.v1.WaitResponse');
/**
 * `dispatch.typescript.v1.GetRequest`
 * @example
 * const body = GetRequest.encode({ dispatchId: id });
 */
export const GetRequest = messageType<proto.IGetRequest>('dispatch.typescript.v1.GetRequest');
/**
 * `dispatch.typescript.v1.GetResponse`
 * @example
 * const info = GetResponse.decode(bytes).call;
 */
export const GetResponse = messageType<proto.IGetResponse>('dispatch.typescript.v1.GetResponse');
/**
 * `dispatch.typescript.v1.ListRequest`
 * @example
 * const body = ListRequest.encode({ states: [CallStateNumber.FAILED], limit: 50 });
 */
export const ListRequest = messageType<proto.IListRequest>('dispatch.typescript.v1.ListRequest');
/**
 * `dispatch.typescript.v1.ListResponse`
 * @example
 * const { calls, nextCursor, counts } = ListResponse.decode(bytes);
 */
export const ListResponse = messageType<proto.IListResponse>('dispatch.typescript.v1.ListResponse');
/**
 * `dispatch.typescript.v1.CancelRequest`
 * @example
 * const body = CancelRequest.encode({ dispatchId: id });
 */
export const CancelRequest = messageType<proto.ICancelRequest>('dispatch.typescript.v1.CancelRequest');
/**
 * `dispatch.typescript.v1.CancelResponse`
 * @example
 * const { cancelled } = CancelResponse.decode(bytes);
 */
export const CancelResponse = messageType<proto.ICancelResponse>('dispatch.typescript.v1.CancelResponse');
/**
 * `dispatch.typescript.v1.RestartRequest`
 * @example
 * const body = RestartRequest.encode({ dispatchId: id });
 */
export const RestartRequest = messageType<proto.IRestartRequest>('dispatch.typescript.v1.RestartRequest');
/**
 * `dispatch.typescript.v1.RestartResponse`
 * @example
 * const info = RestartResponse.decode(bytes).call;
 */
export const RestartResponse = messageType<proto.IRestartResponse>('dispatch.typescript.v1.RestartResponse');
/**
 * `dispatch.typescript.v1.CallInfo`
 * @example
 * console.log(JSON.stringify(toJson(CallInfo, info)));
 */
export const CallInfo = messageType<proto.ICallInfo>('dispatch.typescript.v1.CallInfo');

/**
 * `dispatch.typescript.v1.CallState` numbers.
 * @example
 * if (info.state === CallStateNumber.FAILED) console.log(info.error?.message);
 */
export enum CallStateNumber {
  UNSPECIFIED = 0,
  PENDING = 1,
  RUNNING = 2,
  SUSPENDED = 3,
  SUCCEEDED = 4,
  FAILED = 5,
  CANCELLED = 6,
}
