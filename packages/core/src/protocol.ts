/**
 * `@dispatch/core/protocol`: the protocol machinery that the scheduler, the
 * framework adapters and tools share — the protobuf codec and messages,
 * Connect JSON, routes and limits, values and errors in `Any`, statuses,
 * request signatures, and the API client. App code needs the root entry
 * only.
 *
 * @example
 * ```ts
 * import { proto, RUN_PATH, signRequest } from '@dispatch/core/protocol';
 * const body = proto.RunRequest.encode({ function: 'greet', dispatchId: 'X' });
 * const headers = signRequest({ method: 'POST', url: `http://127.0.0.1:8000${RUN_PATH}`, contentType: 'application/proto', body, privateKey });
 * ```
 * @module
 */
export * as proto from './protocol/proto.js';
export {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_WAIT_MS,
  DEFAULT_WAIT_TIMEOUT_MS,
  DISPATCH_PATH,
  type Encoding,
  encodingOf,
  FUNCTION_NAME_PATTERN,
  MAX_EXCERPT_CHARS,
  MAX_POLL_RESULTS,
  MAX_WAIT_TIMEOUT_MS,
  MIN_MAX_WAIT_MS,
  RUN_PATH,
  RUN_BATCH_CONTENT_TYPE,
  RUN_BATCH_HEADER,
  RUN_STREAM_CONTENT_TYPE,
  isRunStream,
  MAX_RUN_BATCH,
  isRunBatch,
  SCHEDULE_SERVICE_PATH,
  SCHEDULER_SERVICE_PATH,
  SIGNATURE_VALIDITY_SECONDS,
} from './protocol/constants.js';
export { excerpt, quoteExcerpt } from './protocol/excerpt.js';
export { fromJson, fromJsonBytes, JsonFormatError, toJson, toJsonBytes } from './protocol/connect-json.js';
export { connectError, type EndpointApp, type EndpointRequest, type EndpointResponse, handleEndpointRequest, type LocalResumeRun } from './endpoint/handler.js';
export { type EndpointRequestHead, isLoopbackAddress, precheckEndpointRequest, sessionsOf } from './endpoint/precheck.js';
export {
  IN_PROCESS_ENV,
  IN_PROCESS_REGISTRY_KEY,
  type InProcessApp,
  type InProcessRegistry,
  inProcessEnabled,
  inProcessRegistry,
} from './endpoint/in-process.js';
export { answerBeforeBody, DRAIN_UNREAD_BODY_BYTES } from './endpoint/connect-error.js';
export { DEFAULT_REPLAY_CACHE_ENTRIES, ReplayCache, type ReplayVerdict } from './signature/replay-cache.js';
export { ConfigurationError, DEFAULT_API_URL, DEFAULT_ENDPOINT_ADDR, parseAddress, ResolvedConfig, VERIFICATION_OPT_OUT } from './api/config.js';
export { type DurationInput, parseDuration } from './api/duration.js';
export { dispatchInstance, type DispatchOrModule } from './api/instance.js';
export { DispatchApiError, redactKey } from './client/api-error.js';
export { DispatchClient, type DispatchClientOptions, type ListCallsOptions, type SchedulerHealth, type WaitOptions } from './client/client.js';
export type { CallAttempt, CallInfo, CallOutcome, CallPage, FinishedCall, UnfinishedCall } from './client/call-info.js';
export { dueTicks, type MissedTicksPolicy, nextTickAfter, parseSchedule, type ResolvedSchedule, type ScheduleOptions, type ScheduleTick } from './api/schedule.js';
export { type DeclaredSchedules, decodeScheduleInfo, missedTicksNumber, missedTicksOf, type ScheduleInfo, type ScheduleSpec } from './client/schedule-info.js';
export { CALL_STATES, type CallState, callStateNumber, callStateOf, isFinishedState } from './client/call-state.js';
export {
  ALL_STATUSES,
  concurrencyEffect,
  isRetryable,
  parseStatus,
  Status,
  statusFromHttpCode,
  statusName,
} from './status/status.js';
export { statusFromErrorCode } from './status/registry.js';
export { dispatchErrorFor, getCarriedStatus, isStatus, sdkErrorClassByName } from './status/errors.js';
export {
  anyTypeUrl,
  decodeArgs,
  decodeError,
  decodeValue,
  encodeArgs,
  encodeError,
  encodeValue,
  MAX_MESSAGE_DEPTH,
  newAny,
  OpaqueValue,
  SerializationError,
} from './serde/serde.js';
export {
  CLOCK_SKEW_SECONDS,
  checkSignatureHeaders,
  contentDigest,
  generateSigningKeyPair,
  MAX_SIGNATURE_AGE_SECONDS,
  parseSigningKey,
  parseVerificationKey,
  privateKeyToBase64,
  privateKeyToPem,
  publicKeyToBase64,
  publicKeyToPem,
  REQUIRED_COMPONENTS,
  SIGNATURE_KEY_ID,
  SIGNATURE_LABEL,
  type SignatureErrorCode,
  type SignatureHeaders,
  type SignatureHeadersResult,
  type SignatureMessage,
  type SigningKeyPair,
  type SignRequestOptions,
  signatureBase,
  signRequest,
  signSignatureBase,
  type VerifyRequestInput,
  type VerifyResult,
  verifyRequest,
  verifySignature,
  verifySignatureBase,
} from './signature/signature.js';
export {
  SESSION_ACCEPT_HEADER,
  SESSION_HEADER,
  SESSION_KEY_AGREEMENT,
  SESSION_OFFER_HEADER,
  SESSION_SIGNATURE_ALGORITHM,
  SESSION_TTL_SECONDS,
  SessionOffer,
  SessionTable,
  type SessionTableOptions,
  type SignatureSession,
  signSessionBase,
  unknownSessionMessage,
  verifySessionBase,
} from './signature/session.js';
export { JOURNAL_TYPE_URL, JOURNAL_VERSION, MAX_JOURNAL_BYTES } from './engine/journal.js';
export {
  carrierOf,
  loadTracing,
  parseTraceparent,
  type SpanAttributes,
  type SpanKindName,
  type StartSpanOptions,
  type TraceCarrier,
  type TracedSpan,
  type Tracing,
  tracingNow,
} from './trace/tracing.js';
