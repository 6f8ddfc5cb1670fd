/**
 * The protocol's facts, written once: routes, limits and defaults that the
 * SDK, the adapters and the scheduler all follow (PROTOCOL.md 1, 2 and 8).
 * @module
 */

/**
 * The path of `FunctionService.Run` on an endpoint; adapters may mount it
 * under a prefix.
 * @example new URL(RUN_PATH, 'http://127.0.0.1:8000').href
 */
export const RUN_PATH = '/dispatch.sdk.v1.FunctionService/Run';

/**
 * Content type of a batch of RunRequests on the Run route (this project's
 * extension, `dispatch.typescript.v1.RunBatchRequest`/`RunBatchResponse`).
 * @example
 * fetch(url, { method: 'POST', headers: { 'content-type': RUN_BATCH_CONTENT_TYPE, ...signature }, body });
 */
export const RUN_BATCH_CONTENT_TYPE = 'application/x-dispatch-run-batch+proto';

/**
 * The response header by which an endpoint says it accepts batches of
 * RunRequests, and how many in one: `dispatch-run-batch: 64`.
 * @example
 * const max = Number(response.headers.get(RUN_BATCH_HEADER) ?? 0); // 0: one request per call
 */
export const RUN_BATCH_HEADER = 'dispatch-run-batch';

/**
 * The most RunRequests an endpoint of this SDK takes in one batch (what it
 * says in {@link RUN_BATCH_HEADER}).
 * @example
 * const chunks = Math.ceil(requests.length / MAX_RUN_BATCH);
 */
export const MAX_RUN_BATCH = 128;

/**
 * Whether a content type is that of a batch of RunRequests ({@link RUN_BATCH_CONTENT_TYPE}).
 * @example isRunBatch('application/x-dispatch-run-batch+proto') // true
 */
export function isRunBatch(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() === RUN_BATCH_CONTENT_TYPE;
}

/**
 * Content type of a streamed answer on the Run route (this project's
 * extension): messages, each preceded by its length as a varint. To one
 * RunRequest (local resume, `local_resume.proto`): RunResponses, the first
 * answering the request with `parent_state`, the second, written when the
 * parent's resume the request allowed ends, answering that resume (a stream
 * that ends after the first: the parent was not resumed after all). To a
 * batch whose request accepts it (`accept` header): `RunBatchAnswer`s, in
 * the order the runs end (`run_batch.proto`).
 * @example
 * if (isRunStream(reply.contentType)) onFrame(firstFrame);
 */
export const RUN_STREAM_CONTENT_TYPE = 'application/x-dispatch-run-stream+proto';

/**
 * Whether a content type is that of a streamed answer ({@link RUN_STREAM_CONTENT_TYPE}).
 * @example isRunStream('application/x-dispatch-run-stream+proto') // true
 */
export function isRunStream(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() === RUN_STREAM_CONTENT_TYPE;
}

/**
 * The path of `DispatchService.Dispatch` on the API.
 * @example await fetch(`${apiUrl}${DISPATCH_PATH}`, { method: 'POST', headers, body })
 */
export const DISPATCH_PATH = '/dispatch.sdk.v1.DispatchService/Dispatch';

/**
 * The path prefix of this project's scheduler service (`Wait`, `Get`,
 * `List`, `Cancel`, `Restart`), PROTOCOL.md 8.19.
 * @example `${apiUrl}${SCHEDULER_SERVICE_PATH}Wait`
 */
export const SCHEDULER_SERVICE_PATH = '/dispatch.typescript.v1.SchedulerService/';

/**
 * The path prefix of this project's schedule service (`DeclareSchedules`,
 * `ListSchedules`, `PauseSchedule`, `ResumeSchedule`, `RemoveSchedule`;
 * `schedules.proto`). A scheduler without it answers 404.
 * @example `${apiUrl}${SCHEDULE_SERVICE_PATH}ListSchedules`
 */
export const SCHEDULE_SERVICE_PATH = '/dispatch.typescript.v1.ScheduleService/';

/**
 * How long one `SchedulerService.Wait` request blocks at most when its
 * timeout is absent or 0: 30 s (`scheduler.proto`).
 * @example const timeout = proto.durationFromMs(DEFAULT_WAIT_TIMEOUT_MS);
 */
export const DEFAULT_WAIT_TIMEOUT_MS = 30_000;

/**
 * The cap of one `SchedulerService.Wait` request's timeout: 10 minutes
 * (`scheduler.proto`). A longer wait is made of several requests.
 * @example const slice = Math.min(MAX_WAIT_TIMEOUT_MS, remainingMs);
 */
export const MAX_WAIT_TIMEOUT_MS = 10 * 60_000;

/**
 * `Poll.max_wait` when a poll omits it or sets less than
 * {@link MIN_MAX_WAIT_MS} (PROTOCOL.md 8.4 and 8.16): 5 minutes.
 * @example const wait = maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
 */
export const DEFAULT_MAX_WAIT_MS = 5 * 60_000;

/**
 * The shortest `Poll.max_wait` the protocol allows: 1 s.
 * @example Math.max(MIN_MAX_WAIT_MS, requested)
 */
export const MIN_MAX_WAIT_MS = 1000;

/**
 * The most results one `PollResult` carries, and the bound of
 * `Poll.min_results`/`max_results` (PROTOCOL.md 1).
 * @example Math.min(MAX_POLL_RESULTS, maxResults)
 */
export const MAX_POLL_RESULTS = 1000;

/**
 * The largest request body an endpoint accepts by default (PROTOCOL.md 8.2):
 * 16,000,000 bytes; over it, 413 `resource_exhausted`.
 * @example new Dispatch({ maxBodyBytes: DEFAULT_MAX_BODY_BYTES * 2 })
 */
export const DEFAULT_MAX_BODY_BYTES = 16_000_000;

/**
 * The function name pattern of the protocol (PROTOCOL.md 1 and 8.7).
 * @example FUNCTION_NAME_PATTERN.test('charge_card') // true
 */
export const FUNCTION_NAME_PATTERN = /^[a-zA-Z_][a-zA-Z0-9_<>.]*$/;

/** A body encoding of the Connect protocol: binary protobuf or JSON. */
export type Encoding = 'proto' | 'json';

/**
 * The body encoding of a content type, or `undefined` if unsupported
 * (PROTOCOL.md 8.1): no type, `application/proto`, `application/protobuf`,
 * `application/x-protobuf` and `application/octet-stream` are binary
 * protobuf; `application/json` is Connect JSON.
 * @example encodingOf('application/json; charset=utf-8') // 'json'
 */
export function encodingOf(contentType: string | undefined): Encoding | undefined {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === '' || type === 'application/proto' || type === 'application/octet-stream' || type === 'application/protobuf' || type === 'application/x-protobuf') {
    return 'proto';
  }
  if (type === 'application/json') return 'json';
  return undefined;
}

/**
 * The most characters of a value (a bad date, a function name, a decode
 * error) that a message built by the SDK or the scheduler quotes: 1,024.
 * Longer values are cut, and the message says how long they were, so a bad
 * 1 MB value gives a message of about 1 KB, not one of several MB stored as
 * a call's error or echoed in a response.
 * @example excerpt(text, MAX_EXCERPT_CHARS)
 */
export const MAX_EXCERPT_CHARS = 1024;

/**
 * How long a request signature of this project's scheduler is valid: 60 s
 * after its `created` (its `expires` parameter). An endpoint remembers the
 * signatures it has accepted until they expire, and refuses a second use.
 * @example signRequest({ ...request, created, expires: created + SIGNATURE_VALIDITY_SECONDS })
 */
export const SIGNATURE_VALIDITY_SECONDS = 60;
