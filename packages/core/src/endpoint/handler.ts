/**
 * The framework-free endpoint handler (PROTOCOL.md 2 and 8.1–8.7): a plain
 * `{ method, url, headers, body }` in, `{ status, headers, body }` out.
 * Adapters (node:http, Express, Fastify, NestJS) only convert to and from it.
 * @module
 */
import type { KeyObject } from 'node:crypto';
import { encodingOf, RUN_PATH } from '../protocol/constants.js';
import { fromJson, toJson } from '../protocol/connect-json.js';
import * as proto from '../protocol/proto.js';
import type { IRunRequest, IRunResponse } from '../protocol/proto.js';
import { verifyRequest } from '../signature/signature.js';
import { unknownFunctionMessage } from './unknown-function.js';

/** A request as an adapter hands it over. */
export interface EndpointRequest {
  /** HTTP method. */
  method: string;
  /** The path and query as received, mount prefix included (Express: `req.originalUrl`). */
  url: string;
  /** Header names in lowercase, as node:http gives them. */
  headers: Record<string, string | string[] | undefined>;
  /** The exact raw body bytes (signatures cover them). */
  body: Uint8Array;
}

/** The answer for the adapter to send. */
export interface EndpointResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
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
 *   verificationKey: undefined, // accept unsigned requests
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
  /** The public key request signatures are verified with; `undefined` accepts unsigned requests. */
  readonly verificationKey: KeyObject | undefined;
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
}

const encoder = new TextEncoder();

/**
 * A Connect error response: `{"code","message"}` as JSON.
 * @example
 * ```ts
 * return connectError(404, 'not_found', `no route ${JSON.stringify(path)}`);
 * ```
 */
export function connectError(status: number, code: string, message: string, extra: Record<string, string> = {}): EndpointResponse {
  return {
    status,
    headers: { 'content-type': 'application/json', ...extra },
    body: encoder.encode(JSON.stringify({ code, message })),
  };
}

function header(headers: EndpointRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * Handles one request to the endpoint: route, method, body limit, content
 * type, signature, decoding, then `app.runRequest`, and the response encoded
 * like the request. Never throws.
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
  const queryAt = request.url.indexOf('?');
  const path = queryAt < 0 ? request.url : request.url.slice(0, queryAt);
  if (!path.endsWith(RUN_PATH)) {
    return connectError(404, 'not_found', `no route ${JSON.stringify(path)}: the Dispatch endpoint serves POST ${RUN_PATH}`);
  }
  if (request.method.toUpperCase() !== 'POST') {
    return connectError(405, 'unimplemented', `method ${request.method} is not allowed: use POST`, { allow: 'POST' });
  }
  const limit = app.maxBodyBytes;
  if (request.body.length > limit) {
    return connectError(413, 'resource_exhausted', `request body of ${request.body.length} bytes is over the limit of ${limit} bytes`);
  }
  const contentType = header(request.headers, 'content-type');
  const encoding = encodingOf(contentType);
  if (!encoding) {
    return connectError(
      415,
      'invalid_argument',
      `unsupported content type ${JSON.stringify(contentType)}: send application/proto (binary protobuf) or application/json (Connect JSON)`,
    );
  }

  const key = app.verificationKey;
  if (key) {
    const result = verifyRequest({
      method: request.method,
      path,
      authority: header(request.headers, 'host') ?? '',
      headers: request.headers,
      body: request.body,
      publicKey: key,
    });
    if (!result.ok) return connectError(result.code === 'unauthenticated' ? 401 : 403, result.code, result.message);
  }

  let runRequest: IRunRequest;
  try {
    runRequest =
      encoding === 'proto'
        ? proto.RunRequest.decode(request.body)
        : fromJson(proto.RunRequest, JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(request.body)));
  } catch (err) {
    return connectError(400, 'invalid_argument', `cannot decode the RunRequest (${encoding === 'proto' ? 'binary protobuf' : 'JSON'}): ${(err as Error).message}`);
  }
  const name = runRequest.function ?? '';
  if (name === '') return connectError(400, 'invalid_argument', 'function is required');
  if (!app.hasFunction(name)) {
    const message = app.functionNames ? unknownFunctionMessage(name, app.functionNames()) : `function ${JSON.stringify(name)} does not exist on this endpoint`;
    return connectError(404, 'not_found', message);
  }

  const response = await app.runRequest(runRequest);
  if (encoding === 'json') {
    return {
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: encoder.encode(JSON.stringify(toJson(proto.RunResponse, response))),
    };
  }
  return { status: 200, headers: { 'content-type': 'application/proto' }, body: proto.RunResponse.encode(response) };
}
