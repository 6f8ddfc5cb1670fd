/**
 * Sends RunRequests to endpoints over keep-alive connections, and turns
 * transport failures into statuses (PROTOCOL.md 8.12).
 * @module
 */
import https from 'node:https';
import { urlToHttpOptions } from 'node:url';
import {
  isRunBatch,
  isRunStream,
  MAX_RUN_BATCH,
  proto,
  RUN_BATCH_CONTENT_TYPE,
  RUN_BATCH_HEADER,
  RUN_PATH,
  RUN_STREAM_CONTENT_TYPE,
  SESSION_ACCEPT_HEADER,
  SESSION_HEADER,
  Status,
} from '@dispatch/core/protocol';
import { LeanHttpClient } from './lean-http.js';
import type { RequestSigner, SessionEvent } from './request-signer.js';
import { type ConnectionFailure, connectionFailure, transportStatus } from './transport-errors.js';

export { type ConnectionFailure, connectionFailure, transportStatus };
import type { EndpointTransport, RunReply } from './transport.js';
import { varintSize, writeVarint } from '../proto-wire.js';

/**
 * What came back from an endpoint.
 * @example
 * if (reply.kind === 'transport') console.log(statusName(reply.status), reply.message);
 */
export type EndpointReply =
  | {
      kind: 'http';
      statusCode: number;
      contentType: string;
      body: Buffer;
      /** The endpoint's `dispatch-run-batch` (0 if absent). */
      batch?: number;
      /** The endpoint's `dispatch-session-accept` (it opens signature sessions). */
      sessionAccept?: string | undefined;
      /** The endpoint's `dispatch-session` (the session it opened for this request's offer). */
      session?: string | undefined;
      /**
       * A streamed answer (RUN_STREAM_CONTENT_TYPE, local resume): `body` is
       * its first RunResponse, and this the second (the waiting parent's
       * answer; a failure if the stream broke; null if it ended without one).
       */
      rest?: Promise<EndpointReply | null>;
    }
  | { kind: 'transport'; status: Status; message: string; connection?: ConnectionFailure };

/**
 * Per-request hooks of {@link EndpointClient.post}.
 * @example
 * await client.post(url, body, headers, { onConnected: () => circuits.answered(endpoint) });
 */
export interface PostHooks {
  /** The connection to the endpoint is established (at once for a reused keep-alive connection). */
  onConnected?: () => void;
  /**
   * Each message of a streamed answer (RUN_STREAM_CONTENT_TYPE), as it
   * comes: a batch's `RunBatchAnswer`s. The reply then comes at the stream's
   * end, with an empty body. Only the lean client (`http:`) streams.
   */
  onFrame?: (frame: Buffer) => void;
}

/**
 * Options of {@link EndpointClient}.
 * @example
 * const client = new EndpointClient({ timeoutMs: 30_000 });
 */
export interface EndpointClientOptions {
  /** Whole-request timeout in ms (connect, send, wait, read). */
  timeoutMs: number;
  /** Responses larger than this are refused (INVALID_RESPONSE). Default 64 MiB. */
  maxResponseBytes?: number;
  /** Sockets per endpoint origin (default 1024). */
  maxSockets?: number;
}

/**
 * POSTs bodies to endpoints with pooled keep-alive connections: `http:`
 * endpoints through the lean HTTP/1.1 client of lean-http.ts, `https:`
 * ones through `node:https`.
 * @example
 * const reply = await client.post('http://127.0.0.1:8000/dispatch.sdk.v1.FunctionService/Run', body, headers);
 */
export class EndpointClient {
  readonly #httpsAgent: https.Agent;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;
  readonly #targets = new WeakMap<URL, https.RequestOptions>();
  readonly #lean: LeanHttpClient;

  constructor(options: EndpointClientOptions) {
    const maxSockets = options.maxSockets ?? 1024;
    this.#httpsAgent = new https.Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 10_000 });
    this.#timeoutMs = options.timeoutMs;
    this.#maxResponseBytes = options.maxResponseBytes ?? 64 * 1024 * 1024;
    this.#lean = new LeanHttpClient({ maxSockets, maxResponseBytes: this.#maxResponseBytes });
  }

  /** Sends one request; never throws. */
  post(url: URL, body: Uint8Array, headers: Record<string, string>, hooks: PostHooks = {}): Promise<EndpointReply> {
    if (url.protocol === 'http:') return this.#lean.post(url, body, headers, this.#timeoutMs, hooks);
    return new Promise((resolve) => {
      let settled = false;
      const done = (reply: EndpointReply) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(reply);
      };
      // The URL's request options, made once per URL (Node would convert the URL on every request).
      let target = this.#targets.get(url);
      if (!target) this.#targets.set(url, (target = { ...urlToHttpOptions(url), method: 'POST', agent: this.#httpsAgent }));
      const req = https.request({ ...target, headers: { ...headers, 'content-length': String(body.length) } });
      const timer = setTimeout(() => {
        done({ kind: 'transport', status: Status.TIMEOUT, message: `no answer from ${url.origin} within ${this.#timeoutMs} ms` });
        req.destroy();
      }, this.#timeoutMs);
      if (hooks.onConnected) {
        const connected = hooks.onConnected;
        req.once('socket', (socket) => {
          if ((socket as { connecting?: boolean }).connecting) socket.once('connect', connected);
          else connected();
        });
      }
      req.on('error', (err: Error & { code?: string }) => {
        const reply: EndpointReply = {
          kind: 'transport',
          status: transportStatus(err),
          message: `request to ${url.origin} failed: ${err.code ? `${err.code} ` : ''}${err.message}`,
        };
        const connection = connectionFailure(err);
        if (connection) reply.connection = connection;
        done(reply);
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.#maxResponseBytes) {
            done({
              kind: 'transport',
              status: Status.INVALID_RESPONSE,
              message: `the response from ${url.origin} is larger than ${this.#maxResponseBytes} bytes`,
            });
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () =>
          done({
            kind: 'http',
            statusCode: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks),
            batch: Number(res.headers[RUN_BATCH_HEADER] ?? 0) || 0,
            sessionAccept: res.headers[SESSION_ACCEPT_HEADER] as string | undefined,
            session: res.headers[SESSION_HEADER] as string | undefined,
          }),
        );
        res.on('error', (err: Error & { code?: string }) =>
          done({
            kind: 'transport',
            status: transportStatus(err),
            message: `reading the response from ${url.origin} failed: ${err.code ? `${err.code} ` : ''}${err.message}`,
            connection: 'dropped',
          }),
        );
        res.on('aborted', () =>
          done({
            kind: 'transport',
            status: Status.TCP_ERROR,
            message: `reading the response from ${url.origin} failed: the connection was closed before the whole response`,
            connection: 'dropped',
          }),
        );
      });
      req.end(body);
    });
  }

  /** Closes pooled connections. */
  close(): void {
    this.#lean.close();
    this.#httpsAgent.destroy();
  }
}

/** Most endpoint URLs {@link HttpTransport} keeps parsed. */
const MAX_KNOWN_ENDPOINTS = 10_000;

/** Most bytes of RunRequests put in one batch (a larger request goes alone). */
const MAX_BATCH_BYTES = 1024 * 1024;

interface Queued {
  request: proto.IRunRequest;
  bytes: Uint8Array;
  resolve: (reply: RunReply) => void;
  /** Its answer came in a batch's stream. */
  answered?: boolean;
}

/**
 * The HTTP transport: each RunRequest encoded, signed (RFC 9421, Ed25519,
 * with a nonce; HMAC-SHA256 under a signature session with an endpoint
 * that opens them, see `request-signer.ts`) and POSTed to the endpoint's
 * Run route. An endpoint that
 * answers with `dispatch-run-batch: <max>` (this SDK's) gets the RunRequests
 * that are ready at the same time in batches (`dispatch.typescript.v1.RunBatchRequest`,
 * one signature per batch, answered together); others, one per request.
 * @example
 * const transport = new HttpTransport(new EndpointClient({ timeoutMs: 30_000 }), new RequestSigner(privateKey));
 */
export class HttpTransport implements EndpointTransport {
  readonly name = 'http';
  readonly #client: EndpointClient;
  readonly #signer: RequestSigner;
  readonly #batching: boolean;
  readonly #onConnected: ((endpoint: string) => void) | undefined;
  readonly #onSession: ((endpoint: string, event: SessionEvent) => void) | undefined;
  /** Run URLs (href) of endpoints that accept batches, with their maximum. */
  readonly #batchable = new Map<string, number>();
  readonly #queues = new Map<string, { url: URL; endpoint: string; items: Queued[] }>();
  /** The Run URL of each endpoint seen (null: not one this scheduler can reach), so each is parsed once. */
  readonly #urls = new Map<string, URL | null>();
  #flushScheduled = false;

  /**
   * `options.onConnected` is told each time a request to an endpoint (a
   * `Call.endpoint`) connected: the circuits of `circuit.ts` close on it.
   * `options.onSession` is told what happened to an endpoint's signature
   * session (opened, refused, given up: metrics and logs).
   */
  constructor(
    client: EndpointClient,
    signer: RequestSigner,
    options: { batching?: boolean; onConnected?: (endpoint: string) => void; onSession?: (endpoint: string, event: SessionEvent) => void } = {},
  ) {
    this.#client = client;
    this.#signer = signer;
    this.#batching = options.batching ?? true;
    this.#onConnected = options.onConnected;
    this.#onSession = options.onSession;
  }

  #hooks(endpoint: string): PostHooks {
    const onConnected = this.#onConnected;
    return onConnected ? { onConnected: () => onConnected(endpoint) } : {};
  }

  #urlOf(endpoint: string): URL | null {
    let url = this.#urls.get(endpoint);
    if (url !== undefined) return url;
    try {
      url = endpoint.startsWith('http') ? runUrl(endpoint) : null;
    } catch {
      url = null;
    }
    // Endpoints are few; a flood of distinct ones (a misbehaving client) only costs a parse each again.
    if (this.#urls.size >= MAX_KNOWN_ENDPOINTS) this.#urls.clear();
    this.#urls.set(endpoint, url);
    return url;
  }

  /** `http:` endpoints: the lean client reads streamed answers (local resume); `https:` ones get whole answers only. */
  streams(endpoint: string): boolean {
    return this.#urlOf(endpoint)?.protocol === 'http:';
  }

  run(endpoint: string, request: proto.IRunRequest): Promise<RunReply> {
    const url = this.#urlOf(endpoint);
    if (!url) {
      return Promise.resolve({
        kind: 'transport',
        status: Status.PERMANENT_ERROR,
        message: `this scheduler cannot reach endpoint ${JSON.stringify(endpoint)}: only http:// and https:// endpoints are supported`,
      });
    }
    const bytes = proto.RunRequest.encode(request);
    if (this.#batching && this.#batchable.has(url.href) && bytes.length < MAX_BATCH_BYTES) {
      return new Promise<RunReply>((resolve) => {
        let queue = this.#queues.get(url.href);
        if (!queue) this.#queues.set(url.href, (queue = { url, endpoint, items: [] }));
        queue.items.push({ request, bytes, resolve });
        if (!this.#flushScheduled) {
          this.#flushScheduled = true;
          setImmediate(() => this.#flush());
        }
      });
    }
    return this.#single(url, bytes, endpoint);
  }

  /**
   * Signs and POSTs one body; the signer learns from the answer (signature
   * sessions). A request whose session the endpoint refused (it restarted)
   * goes once more, signed with Ed25519: the endpoint ran nothing.
   */
  async #post(url: URL, contentType: string, body: Uint8Array, endpoint: string, onFrame?: (frame: Buffer) => void): Promise<EndpointReply> {
    for (let attempt = 0; ; attempt++) {
      const signed = this.#signer.sign(url, contentType, body);
      const headers: Record<string, string> = { 'content-type': contentType, 'connect-protocol-version': '1', ...signed.headers };
      const hooks = this.#hooks(endpoint);
      if (onFrame) {
        // Not signed: it changes how the answer is framed, not what runs.
        headers.accept = RUN_STREAM_CONTENT_TYPE;
        hooks.onFrame = onFrame;
      }
      const reply = await this.#client.post(url, body, headers, hooks);
      const answer =
        reply.kind === 'http'
          ? { statusCode: reply.statusCode, sessionAccept: reply.sessionAccept, session: reply.session }
          : { statusCode: undefined, sessionAccept: undefined, session: undefined };
      const { resend, event } = this.#signer.answered(url, signed, answer);
      if (event) this.#onSession?.(endpoint, event);
      if (!resend || attempt > 0) return reply;
    }
  }

  /** One RunRequest in one HTTP request; learns from the answer whether the endpoint takes batches. */
  async #single(url: URL, body: Uint8Array, endpoint: string): Promise<RunReply> {
    const reply = await this.#post(url, 'application/proto', body, endpoint);
    if (this.#batching && reply.kind === 'http' && reply.statusCode === 200) {
      if (reply.batch && reply.batch > 1) this.#batchable.set(url.href, Math.min(reply.batch, MAX_RUN_BATCH));
      else this.#batchable.delete(url.href);
    }
    return reply;
  }

  /** Sends what was queued since the last flush: batches per endpoint, within its maximum and MAX_BATCH_BYTES. */
  #flush(): void {
    this.#flushScheduled = false;
    const queues = [...this.#queues.values()];
    this.#queues.clear();
    for (const { url, endpoint, items } of queues) {
      const max = this.#batchable.get(url.href) ?? 1;
      let chunk: Queued[] = [];
      let size = 0;
      const send = () => {
        if (chunk.length === 1) {
          const [only] = chunk;
          void this.#single(url, only!.bytes, endpoint).then(only!.resolve);
        } else if (chunk.length > 1) void this.#batch(url, endpoint, chunk);
        chunk = [];
        size = 0;
      };
      for (const item of items) {
        if (chunk.length >= max || size + item.bytes.length > MAX_BATCH_BYTES) send();
        chunk.push(item);
        size += item.bytes.length + 6;
      }
      send();
    }
  }

  /**
   * Several RunRequests in one signed HTTP request; each gets its own
   * answer. From an `http:` endpoint, as each run ends (a streamed answer
   * of `RunBatchAnswer`s): a slow run does not hold back the others.
   */
  async #batch(url: URL, endpoint: string, items: Queued[]): Promise<void> {
    const body = encodeBatch(items.map((i) => i.bytes));
    let answered = 0;
    const onFrame = (frame: Buffer) => {
      let answer: proto.IRunBatchAnswer;
      try {
        answer = proto.RunBatchAnswer.decode(frame);
      } catch {
        return; // counted as missing at the end
      }
      const item = items[answer.index ?? 0];
      if (!item || item.answered) return;
      item.answered = true;
      answered++;
      item.resolve({ kind: 'response', response: answer.response ?? {} });
    };
    const reply = await this.#post(url, RUN_BATCH_CONTENT_TYPE, body, endpoint, url.protocol === 'http:' ? onFrame : undefined);
    if (answered > 0 || (reply.kind === 'http' && reply.statusCode === 200 && isRunStream(reply.contentType))) {
      // Streamed: what did not come fails with how the stream ended.
      const missing: RunReply =
        reply.kind === 'transport'
          ? reply
          : { kind: 'transport', status: Status.INVALID_RESPONSE, message: `the endpoint ${url.origin} answered ${answered} of a batch of ${items.length} RunRequests` };
      for (const item of items) if (!item.answered) item.resolve(missing);
      return;
    }
    if (reply.kind === 'http' && reply.statusCode === 200 && isRunBatch(reply.contentType)) {
      let responses: proto.IRunResponse[] | null = null;
      try {
        responses = proto.RunBatchResponse.decode(reply.body).responses ?? [];
      } catch {
        responses = null;
      }
      if (responses && responses.length === items.length) {
        for (const [i, item] of items.entries()) item.resolve({ kind: 'response', response: responses[i]! });
        return;
      }
      const message = `the endpoint ${url.origin} answered a batch of ${items.length} RunRequests with ${responses ? `${responses.length} responses` : 'a body that is not a RunBatchResponse'}`;
      for (const item of items) item.resolve({ kind: 'transport', status: Status.INVALID_RESPONSE, message });
      return;
    }
    if (reply.kind === 'http' && (reply.statusCode === 200 || reply.statusCode === 400 || reply.statusCode === 404 || reply.statusCode === 415)) {
      // The endpoint no longer takes batches (another version now serves it): one request each, as before.
      this.#batchable.delete(url.href);
      await Promise.all(items.map(async (item) => item.resolve(await this.#single(url, item.bytes, endpoint))));
      return;
    }
    for (const item of items) item.resolve(reply);
  }

  close(): void {
    this.#client.close();
  }
}

/** A RunBatchRequest from encoded RunRequests: field 1 (length-delimited) repeated, no copy of a request re-encoded. */
function encodeBatch(requests: Uint8Array[]): Buffer {
  let total = 0;
  for (const r of requests) total += 1 + varintSize(r.length) + r.length;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const r of requests) {
    out[at++] = 0x0a;
    at = writeVarint(out, at, r.length);
    out.set(r, at);
    at += r.length;
  }
  return out;
}

/**
 * Joins an endpoint base URL and the Run route.
 * @example
 * runUrl('http://127.0.0.1:8000/api/'); // http://127.0.0.1:8000/api/dispatch.sdk.v1.FunctionService/Run
 */
export function runUrl(endpoint: string): URL {
  return new URL(endpoint.replace(/\/+$/, '') + RUN_PATH);
}
