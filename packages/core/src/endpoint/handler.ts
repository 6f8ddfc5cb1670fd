/**
 * The framework-free endpoint handler (PROTOCOL.md 2 and 8.1–8.7): a plain
 * `{ method, url, headers, body }` in, `{ status, headers, body }` out.
 * Adapters (node:http, Express, Fastify, NestJS) only convert to and from it.
 * @module
 */
import type { KeyObject } from 'node:crypto';
import { encodingOf, isRunBatch, MAX_RUN_BATCH, RUN_BATCH_CONTENT_TYPE, RUN_BATCH_HEADER, RUN_STREAM_CONTENT_TYPE } from '../protocol/constants.js';
import { Status } from '../status/status.js';
import { fromJson, toJson } from '../protocol/connect-json.js';
import { excerpt, quoteExcerpt } from '../protocol/excerpt.js';
import * as proto from '../protocol/proto.js';
import type { ILocalResumeState, IRunRequest, IRunResponse } from '../protocol/proto.js';
import type { ReplayCache, ReplayVerdict } from '../signature/replay-cache.js';
import { SESSION_ACCEPT_HEADER, SESSION_HEADER, SESSION_KEY_AGREEMENT, SESSION_OFFER_HEADER } from '../signature/session.js';
import { verifySignature } from '../signature/signature.js';
import { connectError, type EndpointResponse } from './connect-error.js';
import { type EndpointRequestHead, precheckEndpointRequest, REPLAYED, replayCacheOf, sessionsOf } from './precheck.js';
import { unknownFunctionMessage } from './unknown-function.js';

export { connectError, type EndpointResponse };

/** A request as an adapter hands it over: its head and the body. */
export interface EndpointRequest extends EndpointRequestHead {
  /** The exact raw body bytes (signatures cover them). */
  body: Uint8Array;
  /**
   * The adapter sends a streamed answer ({@link EndpointResponse.rest}):
   * then a run that allows it may answer its waiting parent's resume too, in
   * the same response (local resume). The adapters of this project say so;
   * without it every answer is whole.
   */
  streaming?: boolean;
}

/**
 * What the endpoint handler needs from an app: its limits and key, a
 * logger, which functions exist, and a way to run one request. `Dispatch`
 * provides one; another host (a test, a custom runtime) can too.
 *
 * @example
 * ```ts
 * const app: EndpointApp = {
 *   maxBodyBytes: 16 * 1024 * 1024,
 *   verificationKey: undefined, // unsigned requests: accepted on loopback, refused beyond
 *   logger: console,
 *   hasFunction: (name) => name === 'greet',
 *   runRequest: (request) => engine.run(request),
 * };
 * const response = await handleEndpointRequest(app, { method: 'POST', url: RUN_PATH, headers, body });
 * ```
 */
export interface EndpointApp {
  /** Largest request body accepted, in bytes (413 above). */
  readonly maxBodyBytes: number;
  /**
   * The public key request signatures are verified with. `undefined`:
   * unsigned requests are accepted on loopback and refused (401) when the
   * endpoint listens beyond it, unless {@link acceptUnsigned}.
   */
  readonly verificationKey: KeyObject | undefined;
  /** Without a key, accept unsigned requests from any address (an explicit opt-out: `verificationKey: false`). */
  readonly acceptUnsigned?: boolean;
  /**
   * The signatures already accepted, refused a second time until they
   * expire. Default: one shared by the process.
   */
  readonly replayCache?: ReplayCache;
  /**
   * Open signature sessions (a protocol extension, `signature/session.ts`):
   * after one request signed with Ed25519, this project's scheduler signs
   * with HMAC-SHA256 under a key agreed with X25519. Default `true` (only
   * with a verification key); `false` keeps every request on Ed25519.
   */
  readonly signatureSessions?: boolean;
  /** Where internal errors are logged. */
  readonly logger: Pick<Console, 'error'>;
  /** `true` if a function of this name exists (404 otherwise). */
  hasFunction(name: string): boolean;
  /**
   * The names of the functions, for the 404 of an unknown one (which
   * suggests the closest and lists them). Optional: without it the 404
   * names only the function asked.
   */
  functionNames?(): readonly string[];
  /** Runs one decoded RunRequest to its RunResponse. */
  runRequest(request: IRunRequest): Promise<IRunResponse>;
  /**
   * The waiting parent's resume that a request's answer allows here (the
   * request carries `local_resume`; see `Engine.localResumeOf`), or null:
   * the state it resumes, and how to run it (resolving to its answer, or
   * null when it could not run after all). Optional: without it, no answer
   * is streamed.
   */
  localResume?(request: IRunRequest, response: IRunResponse): LocalResumeRun | null;
}

/**
 * A parent's resume that an endpoint runs itself after its child's answer
 * (local resume): the state it resumes, and the run.
 * @example
 * const parent = app.localResume?.(request, response);
 * if (parent) response.parentState = parent.state;
 */
export interface LocalResumeRun {
  state: ILocalResumeState;
  /** Runs the resume; null when it could not (its execution was gone). Never rejects. */
  run(): Promise<IRunResponse | null>;
}

const encoder = new TextEncoder();

function header(headers: EndpointRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * Handles one request to the endpoint: what {@link precheckEndpointRequest}
 * checks before the body (route, method, declared size, content type,
 * signature headers or loopback), then the body's size, the signature over
 * the exact bytes (once verified, it is remembered and a second use is
 * refused), decoding, `app.runRequest`, and the response encoded like the
 * request. Never throws.
 *
 * @example
 * ```ts
 * const response = await handleEndpointRequest(app, { method: 'POST', url: RUN_PATH, headers, body });
 * ```
 */
export async function handleEndpointRequest(app: EndpointApp, request: EndpointRequest): Promise<EndpointResponse> {
  try {
    return await handle(app, request);
  } catch (err) {
    // A bug of ours or of the function's environment: no stack trace in the body.
    app.logger.error('[dispatch] internal error while handling a run request:', err);
    return connectError(500, 'internal', 'internal error while handling the run request; see the endpoint logs');
  }
}

async function handle(app: EndpointApp, request: EndpointRequest): Promise<EndpointResponse> {
  const early = precheckEndpointRequest(app, request);
  if (early) return early;
  const limit = app.maxBodyBytes;
  if (request.body.length > limit) {
    return connectError(413, 'resource_exhausted', `request body of ${request.body.length} bytes is over the limit of ${limit} bytes`);
  }
  const contentType = header(request.headers, 'content-type');
  const batch = isRunBatch(contentType);
  const encoding = encodingOf(contentType) ?? 'proto';
  const key = app.verificationKey;
  /** Signature-session headers of a 200 answer (none without a key). */
  let sessionHeaders: Record<string, string> | undefined;
  if (key) {
    const queryAt = request.url.indexOf('?');
    const sessions = sessionsOf(app);
    const result = verifySignature({
      method: request.method,
      path: queryAt < 0 ? request.url : request.url.slice(0, queryAt),
      authority: header(request.headers, 'host') ?? '',
      headers: request.headers,
      body: request.body,
      publicKey: key,
      sessions,
    });
    if (!result.ok) return connectError(result.code === 'unauthenticated' ? 401 : 403, result.code, result.message);
    // Recorded only once verified: a forged or damaged signature takes no place. A session's signature (verified
    // under a session this app holds) is numbered: its session's replay window records it, not the replay cache.
    const { session, sequence } = result.signature;
    let verdict: ReplayVerdict;
    if (session === undefined) verdict = replayCacheOf(app).remember(result.signature.bytes, result.signature.validUntilMs);
    else verdict = sessions?.accept(session, sequence as number) ? 'fresh' : 'replayed';
    if (verdict === 'replayed') return connectError(403, 'permission_denied', REPLAYED);
    if (verdict === 'full') {
      return connectError(
        503,
        'unavailable',
        `the endpoint remembers ${replayCacheOf(app).maxEntries} signatures still valid (its replay cache is full) and cannot check this one: retry later, or give the app a larger cache (new Dispatch({ replayCacheEntries }))`,
        { 'retry-after': '1' },
      );
    }
    if (sessions) {
      sessionHeaders = ACCEPT_SESSIONS;
      // An offer counts only when the Ed25519 signature just verified covers it: no one else can open a session.
      if (result.signature.session === undefined && result.signature.components.includes(SESSION_OFFER_HEADER)) {
        const opened = sessions.open(header(request.headers, SESSION_OFFER_HEADER) ?? '');
        if (opened) sessionHeaders = { ...ACCEPT_SESSIONS, [SESSION_HEADER]: opened };
      }
    }
  }

  if (batch) return runBatch(app, request.body, sessionHeaders, !!request.streaming && acceptsStream(header(request.headers, 'accept')));
  let runRequest: IRunRequest;
  try {
    runRequest =
      encoding === 'proto'
        ? proto.RunRequest.decode(request.body)
        : fromJson(proto.RunRequest, JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(request.body)));
  } catch (err) {
    return connectError(400, 'invalid_argument', `cannot decode the RunRequest (${encoding === 'proto' ? 'binary protobuf' : 'JSON'}): ${excerpt((err as Error).message)}`);
  }
  const name = runRequest.function ?? '';
  if (name === '') return connectError(400, 'invalid_argument', 'function is required');
  if (!app.hasFunction(name)) {
    const message = app.functionNames ? unknownFunctionMessage(name, app.functionNames()) : `function ${quoteExcerpt(name, 200)} does not exist on this endpoint`;
    return connectError(404, 'not_found', message);
  }

  const response = await app.runRequest(runRequest);
  if (encoding === 'json') {
    return {
      status: 200,
      headers: { 'content-type': 'application/json', ...sessionHeaders },
      body: encoder.encode(JSON.stringify(toJson(proto.RunResponse, response))),
    };
  }
  const parent = request.streaming && runRequest.localResume ? (app.localResume?.(runRequest, response) ?? null) : null;
  if (parent) return streamed(response, parent, sessionHeaders);
  return { status: 200, headers: { 'content-type': 'application/proto', [RUN_BATCH_HEADER]: BATCH_MAX, ...sessionHeaders }, body: proto.RunResponse.encode(response) };
}

/**
 * The answer of a run whose waiting parent this endpoint resumes (local
 * resume, RUN_STREAM_CONTENT_TYPE): the run's RunResponse, with the
 * parent's state, goes at once, so the scheduler records it whatever the
 * parent's resume does; the resume starts once the adapter sent it, and its
 * RunResponse follows in the same answer (nothing when it could not run).
 */
function streamed(response: IRunResponse, parent: LocalResumeRun, sessionHeaders: Record<string, string> | undefined): EndpointResponse {
  response.parentState = parent.state;
  return {
    status: 200,
    headers: { 'content-type': RUN_STREAM_CONTENT_TYPE, [RUN_BATCH_HEADER]: BATCH_MAX, ...sessionHeaders },
    body: proto.RunResponse.encodeDelimited(response),
    rest: (write) =>
      parent.run().then((r) => {
        if (r) write(proto.RunResponse.encodeDelimited(r));
      }),
  };
}

const BATCH_MAX = String(MAX_RUN_BATCH);
const ACCEPT_SESSIONS: Readonly<Record<string, string>> = Object.freeze({ [SESSION_ACCEPT_HEADER]: SESSION_KEY_AGREEMENT });

/**
 * A batch of RunRequests (`dispatch.typescript.v1.RunBatchRequest`), already
 * through the precheck, the body limit, the signature and the replay cache
 * like a single request: each is run (concurrently), and the answers come
 * back together in order. A request for an unknown function is answered
 * with NOT_FOUND in its own RunResponse, the others run.
 */
async function runBatch(app: EndpointApp, body: Uint8Array, sessionHeaders: Record<string, string> | undefined, stream: boolean): Promise<EndpointResponse> {
  let requests: IRunRequest[];
  try {
    requests = proto.RunBatchRequest.decode(body).requests ?? [];
  } catch (err) {
    return connectError(400, 'invalid_argument', `cannot decode the RunBatchRequest (binary protobuf): ${excerpt((err as Error).message)}`);
  }
  if (requests.length === 0) return connectError(400, 'invalid_argument', 'the RunBatchRequest has no requests');
  if (requests.length > MAX_RUN_BATCH) {
    return connectError(400, 'invalid_argument', `the RunBatchRequest has ${requests.length} requests, more than ${MAX_RUN_BATCH} (the ${RUN_BATCH_HEADER} this endpoint sends): split it`);
  }
  const running = requests.map((r): IRunResponse | Promise<IRunResponse> => {
    const name = r.function ?? '';
    if (name === '' || !app.hasFunction(name)) {
      const message = name === '' ? 'function is required' : app.functionNames ? unknownFunctionMessage(name, app.functionNames()) : `function ${quoteExcerpt(name, 200)} does not exist on this endpoint`;
      const status = name === '' ? Status.INVALID_ARGUMENT : Status.NOT_FOUND;
      return { status: status as number as NonNullable<IRunResponse['status']>, exit: { result: { error: { type: name === '' ? 'INVALID_ARGUMENT' : 'NOT_FOUND', message } } } };
    }
    return app.runRequest(r);
  });
  if (stream) return streamedBatch(app, running, sessionHeaders);
  const responses = await Promise.all(running);
  return {
    status: 200,
    headers: { 'content-type': RUN_BATCH_CONTENT_TYPE, [RUN_BATCH_HEADER]: BATCH_MAX, ...sessionHeaders },
    body: proto.RunBatchResponse.encode({ responses }),
  };
}

/** `accept` names RUN_STREAM_CONTENT_TYPE (the scheduler reads a batch's answers as they come). */
function acceptsStream(accept: string | undefined): boolean {
  return !!accept && accept.split(',').some((t) => t.split(';')[0]?.trim().toLowerCase() === RUN_STREAM_CONTENT_TYPE);
}

/**
 * A batch's answers when the scheduler reads streams: after one turn of the
 * event loop, a batch whose runs all ended is answered whole, like any
 * batch (one write: most batches); otherwise the answers so far go at once
 * and the others as their runs end (`RunBatchAnswer`s, RUN_STREAM_CONTENT_TYPE;
 * those that end in the same turn in one write), so that a slow run does
 * not hold back the others. A run that fails in the SDK (a bug) is answered
 * with TEMPORARY_ERROR.
 */
async function streamedBatch(app: EndpointApp, running: Array<IRunResponse | Promise<IRunResponse>>, sessionHeaders: Record<string, string> | undefined): Promise<EndpointResponse> {
  const responses: IRunResponse[] = new Array(running.length);
  let left = running.length;
  /** Indexes of the answers not written yet. */
  let ready: number[] = [];
  let write: ((part: Uint8Array) => void) | undefined;
  let done: (() => void) | undefined;
  let flushing = false;
  const frames = () => {
    const out = Buffer.concat(ready.map((index) => proto.RunBatchAnswer.encodeDelimited({ index, response: responses[index] })));
    ready = [];
    return out;
  };
  const flush = () => {
    flushing = false;
    if (ready.length > 0) write?.(frames());
    if (left === 0) done?.();
  };
  running.forEach((r, index) => {
    Promise.resolve(r)
      .catch((err: unknown): IRunResponse => {
        app.logger.error('[dispatch] internal error while running a request of a batch:', err);
        return { status: Status.TEMPORARY_ERROR as number, exit: { result: { error: { type: 'InternalError', message: 'internal error while running the request; see the endpoint logs' } } } };
      })
      .then((response) => {
        responses[index] = response;
        ready.push(index);
        left--;
        if (write && !flushing) {
          flushing = true;
          setImmediate(flush);
        }
      });
  });
  await new Promise<void>((resolve) => setImmediate(resolve));
  if (left === 0) {
    return {
      status: 200,
      headers: { 'content-type': RUN_BATCH_CONTENT_TYPE, [RUN_BATCH_HEADER]: BATCH_MAX, ...sessionHeaders },
      body: proto.RunBatchResponse.encode({ responses }),
    };
  }
  return {
    status: 200,
    headers: { 'content-type': RUN_STREAM_CONTENT_TYPE, [RUN_BATCH_HEADER]: BATCH_MAX, ...sessionHeaders },
    body: frames(),
    rest: (w) =>
      new Promise<void>((resolve) => {
        write = w;
        done = resolve;
        flush();
      }),
  };
}
