/**
 * The Dispatch API client: `DispatchService.Dispatch` over Connect unary with
 * binary protobuf and a bearer key (PROTOCOL.md 2), plus the calls of this
 * project's scheduler service.
 * @module
 */
import { DISPATCH_PATH } from '../protocol/constants.js';
import * as proto from '../protocol/proto.js';
import type { ICall } from '../protocol/proto.js';

/** Options of a {@link DispatchClient}. */
export interface DispatchClientOptions {
  /** Bearer key. @example 'sk_live_…' */
  apiKey: string;
  /** Base URL of the API. @example 'http://127.0.0.1:4450' */
  apiUrl: string;
  /** Timeout of one HTTP request in ms. Default 30,000 (a Dispatch is answered once the calls are stored). */
  timeoutMs?: number;
  /** Attempts for failures that cannot have created anything or are safe to repeat (network errors, 502/503/504). Default 4. */
  attempts?: number;
}

/**
 * An error answered by the Dispatch API (a Connect error) or met while
 * reaching it.
 */
export class DispatchApiError extends Error {
  override name = 'DispatchApiError';
  /** Connect code (`unauthenticated`, `invalid_argument`, …) or `unavailable` for network failures. */
  readonly code: string;
  /** HTTP status, or 0 when the API could not be reached. */
  readonly httpStatus: number;
  constructor(message: string, code: string, httpStatus: number, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.httpStatus = httpStatus;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Redacts an API key for messages: the first 3 characters are kept (like the go SDK). */
export function redactKey(key: string): string {
  return key.length <= 3 ? '***' : `${key.slice(0, 3)}${'*'.repeat(Math.min(8, key.length - 3))}`;
}

/**
 * Client of the Dispatch API.
 *
 * @example
 * ```ts
 * const client = new DispatchClient({ apiKey: 'key', apiUrl: 'http://127.0.0.1:4450' });
 * const [id] = await client.dispatch([{ endpoint: 'http://127.0.0.1:8000', function: 'echo', input }]);
 * ```
 */
export class DispatchClient {
  readonly apiUrl: string;
  readonly #apiKey: string;
  readonly #timeoutMs: number;
  readonly #attempts: number;

  constructor(options: DispatchClientOptions) {
    this.apiUrl = options.apiUrl.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#attempts = Math.max(1, options.attempts ?? 4);
  }

  /**
   * Dispatches calls atomically (all are stored or none) and answers their
   * dispatch IDs in order. Calls with an `idempotencyKey` the scheduler has
   * seen answer the original ID, which makes retrying this safe.
   */
  async dispatch(calls: readonly ICall[]): Promise<string[]> {
    const body = proto.DispatchRequest.encode({ calls: [...calls] });
    const bytes = await this.unary(DISPATCH_PATH, body, calls.every((c) => !!c.idempotencyKey));
    const ids = proto.DispatchResponse.decode(bytes).dispatchIds ?? [];
    if (ids.length !== calls.length) {
      throw new DispatchApiError(`the API at ${this.apiUrl} answered ${ids.length} dispatch IDs for ${calls.length} calls`, 'internal', 200);
    }
    return ids;
  }

  /**
   * Posts a binary Connect unary request and returns the response body.
   * Network failures and 502/503/504 are retried with backoff when the request
   * is safe to repeat (`idempotent`) or could not have reached the server.
   */
  async unary(path: string, body: Uint8Array, idempotent = true): Promise<Uint8Array> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.#attempts; attempt++) {
      if (attempt > 1) await sleep(Math.min(2000, 100 * 2 ** (attempt - 2)) * (0.5 + Math.random() / 2));
      let response: Response;
      try {
        response = await fetch(`${this.apiUrl}${path}`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${this.#apiKey}`,
            'content-type': 'application/proto',
            'connect-protocol-version': '1',
            'connect-timeout-ms': String(this.#timeoutMs),
          },
          body,
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
      } catch (err) {
        lastError = new DispatchApiError(
          `cannot reach the Dispatch API at ${this.apiUrl}: ${describeFetchError(err)}; is the scheduler running (\`dispatch serve\`, or run the app under \`dispatch run\`) and DISPATCH_API_URL right?`,
          'unavailable',
          0,
          { cause: err },
        );
        const refused = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN/.test(describeFetchError(err));
        if (idempotent || refused) continue;
        throw lastError;
      }
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (response.status === 200) return bytes;
      const error = this.#errorOf(response.status, bytes);
      if ([502, 503, 504].includes(response.status) && attempt < this.#attempts) {
        lastError = error;
        continue;
      }
      throw error;
    }
    throw lastError;
  }

  #errorOf(status: number, bytes: Uint8Array): DispatchApiError {
    let code = 'unknown';
    let message = '';
    try {
      const json = JSON.parse(new TextDecoder().decode(bytes)) as { code?: unknown; message?: unknown };
      if (typeof json.code === 'string') code = json.code;
      if (typeof json.message === 'string') message = json.message;
    } catch {
      message = new TextDecoder().decode(bytes.subarray(0, 200));
    }
    if (status === 401) {
      return new DispatchApiError(
        `invalid API key ${redactKey(this.#apiKey)} for the Dispatch API at ${this.apiUrl}: check DISPATCH_API_KEY${message ? ` (${message})` : ''}`,
        'unauthenticated',
        status,
      );
    }
    return new DispatchApiError(
      `the Dispatch API at ${this.apiUrl} answered HTTP ${status} ${code}${message ? `: ${message}` : ''}`,
      code,
      status,
    );
  }
}

function describeFetchError(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; e && i < 4; i++) {
    const x = e as { message?: string; code?: string; cause?: unknown };
    parts.push([x.code, x.message].filter(Boolean).join(' '));
    e = x.cause;
  }
  return parts.filter(Boolean).join(': ') || String(err);
}
