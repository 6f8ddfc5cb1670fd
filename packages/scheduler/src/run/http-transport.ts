/**
 * Sends RunRequests to endpoints over keep-alive connections, and turns
 * transport failures into statuses (PROTOCOL.md 8.12).
 * @module
 */
import http from 'node:http';
import https from 'node:https';
import { Status } from '@dispatch/core/protocol';

/**
 * What came back from an endpoint.
 * @example
 * if (reply.kind === 'transport') console.log(statusName(reply.status), reply.message);
 */
export type EndpointReply =
  | { kind: 'http'; statusCode: number; contentType: string; body: Buffer }
  | { kind: 'transport'; status: Status; message: string; connection?: ConnectionFailure };

/**
 * How a connection failed, when it says something about the endpoint's
 * process: `refused` (nothing listens: the app is down or not yet up) or
 * `dropped` (the connection was closed while the request was in flight,
 * before a whole response: the app's process most likely died).
 * @example
 * if (reply.kind === 'transport' && reply.connection === 'refused') circuits.refused(endpoint, reply.message);
 */
export type ConnectionFailure = 'refused' | 'dropped';

/**
 * What a network error says about the endpoint's process: see
 * {@link ConnectionFailure}; undefined for anything else (DNS, TLS,
 * timeouts, unreachable hosts).
 * @example
 * connectionFailure(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })); // 'dropped'
 */
export function connectionFailure(error: unknown): ConnectionFailure | undefined {
  const code = String((error as { code?: unknown })?.code ?? '');
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE') return 'dropped';
  if (/socket hang up|aborted/i.test(String((error as { message?: unknown })?.message ?? ''))) return 'dropped';
  return undefined;
}

/**
 * Per-request hooks of {@link EndpointClient.post}.
 * @example
 * await client.post(url, body, headers, { onConnected: () => circuits.answered(endpoint) });
 */
export interface PostHooks {
  /** The connection to the endpoint is established (at once for a reused keep-alive connection). */
  onConnected?: () => void;
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

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_OSSL_)/;

/**
 * Maps a Node.js network error to a status: refused/reset/unreachable →
 * TCP_ERROR, name resolution → DNS_ERROR, TLS and certificates → TLS_ERROR,
 * timeouts → TIMEOUT, anything else → TCP_ERROR.
 * @example
 * transportStatus(Object.assign(new Error('x'), { code: 'ENOTFOUND' })); // Status.DNS_ERROR
 */
export function transportStatus(error: unknown): Status {
  const code = String((error as { code?: unknown })?.code ?? '');
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL' || code === 'EAI_NONAME') return Status.DNS_ERROR;
  if (TLS_CODES.test(code)) return Status.TLS_ERROR;
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return Status.TIMEOUT;
  return Status.TCP_ERROR;
}

/**
 * POSTs bodies to endpoints with pooled keep-alive connections.
 * @example
 * const reply = await client.post('http://127.0.0.1:8000/dispatch.sdk.v1.FunctionService/Run', body, headers);
 */
export class EndpointClient {
  readonly #httpAgent: http.Agent;
  readonly #httpsAgent: https.Agent;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;

  constructor(options: EndpointClientOptions) {
    const maxSockets = options.maxSockets ?? 1024;
    this.#httpAgent = new http.Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 10_000 });
    this.#httpsAgent = new https.Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 10_000 });
    this.#timeoutMs = options.timeoutMs;
    this.#maxResponseBytes = options.maxResponseBytes ?? 64 * 1024 * 1024;
  }

  /** Sends one request; never throws. */
  post(url: URL, body: Uint8Array, headers: Record<string, string>, hooks: PostHooks = {}): Promise<EndpointReply> {
    return new Promise((resolve) => {
      let settled = false;
      const done = (reply: EndpointReply) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(reply);
      };
      const secure = url.protocol === 'https:';
      const mod = secure ? https : http;
      const req = mod.request(url, {
        method: 'POST',
        agent: secure ? this.#httpsAgent : this.#httpAgent,
        headers: { ...headers, 'content-length': String(body.length) },
      });
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
            body: Buffer.concat(chunks),
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
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }
}
