/**
 * `@dispatch/core`: durable, resumable functions for Node.js. This entry is
 * the app author's API; protocol machinery (codec, signatures, routes) is in
 * `@dispatch/core/protocol`, the `node:http` server in `@dispatch/core/node`.
 *
 * @example
 * ```ts
 * import * as dispatch from '@dispatch/core';
 * const greet = dispatch.function(function greet(name: string) { return `Hello ${name}`; });
 * dispatch.run(() => greet.dispatch('Jane'));
 * ```
 * @module
 */

// The module-level API of the seeds, on the default instance.
export {
  all,
  allSettled,
  any,
  batch,
  context,
  defaultDispatch,
  function,
  gather,
  race,
  rawCall,
  registerErrorType,
  registerOutputType,
  result,
  run,
  serve,
  signal,
  sleep,
  step,
  waitForSignal,
} from './api/default-instance.js';
export {
  Batch,
  type CallHandle,
  Dispatch,
  type DispatchCallOptions,
  type DispatchFunction,
  type DispatchInstanceOptions,
  type FunctionOptions,
  type InputSchema,
  type ResultOptions,
  type WaitForSignalOptions,
} from './api/dispatch.js';
export { type CallOptions, DurableCall, isDurableCall } from './api/call.js';
export type { DispatchOrModule } from './api/instance.js';
export { ConfigurationError, type DispatchOptions } from './api/config.js';
export type { DurationInput } from './api/duration.js';
export type { ConcurrencyOption, LimitKey, RateLimitOption } from './api/limits.js';
export type { RunContext } from './engine/execution.js';
export { DispatchApiError } from './client/api-error.js';
export { DispatchClient, type DispatchClientOptions, type ListCallsOptions, type SchedulerHealth, type WaitOptions } from './client/client.js';
export type { CallAttempt, CallInfo, CallOutcome, CallPage, FinishedCall, UnfinishedCall } from './client/call-info.js';
export type { CallState } from './client/call-state.js';
export type { MissedTicksPolicy, ScheduleOptions, ScheduleTick } from './api/schedule.js';
export type { DeclaredSchedules, ScheduleInfo, ScheduleSpec } from './client/schedule-info.js';
export type { DispatchServer } from './endpoint/node-server.js';
export { Status } from './status/status.js';
export { type Class, type StatusHandler, StatusRegistry, type StatusRegistryOptions } from './status/registry.js';
export {
  DispatchError,
  type DispatchErrorOptions,
  DnsError,
  HttpError,
  IncompatibleStateError,
  InvalidArgumentError,
  InvalidResponseError,
  isDispatchError,
  NotFoundError,
  PermanentError,
  PermissionDeniedError,
  TcpError,
  TemporaryError,
  ThrottledError,
  type ThrottledErrorOptions,
  TimeoutError,
  TlsError,
  UnauthenticatedError,
} from './status/errors.js';
export { OpaqueValue, SerializationError } from './serde/serde.js';
