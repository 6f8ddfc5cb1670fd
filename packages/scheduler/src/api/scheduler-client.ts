/**
 * A client of a running scheduler's API (`DispatchService.Dispatch` and this
 * project's `SchedulerService`: Wait, Get, List, Cancel, Restart), over
 * Connect unary with binary protobuf and a bearer key. Used by the `dispatch`
 * CLI, `@dispatch/testing` and the dashboard.
 * @module
 */
import { DispatchApiError } from '@dispatch/core/protocol';
import { proto, redactKey } from '@dispatch/core/protocol';
import {
  CancelRequest,
  CancelResponse,
  GetRequest,
  GetResponse,
  ListRequest,
  ListResponse,
  RestartRequest,
  RestartResponse,
  WaitRequest,
  WaitResponse,
} from './messages.js';
import { DISPATCH_ROUTE, SCHEDULER_SERVICE } from './server.js';
import { callStateNumber, callStateOf } from './call-info.js';
import { CALL_STATES, type CallState } from '../store/store.js';

/**
 * Options of a {@link SchedulerClient}.
 * @example
 * const options: SchedulerClientOptions = { apiUrl: 'http://127.0.0.1:4450', apiKey: process.env.DISPATCH_API_KEY! };
 */
export interface SchedulerClientOptions {
  /**
   * Base URL of the scheduler's API (`DISPATCH_API_URL`).
   * @example 'http://127.0.0.1:4450'
   */
  apiUrl: string;
  /**
   * Bearer key (`DISPATCH_API_KEY`).
   * @example 'dsk_…'
   */
  apiKey: string;
  /**
   * Timeout of one request other than Wait, in ms. Default 30,000.
   * @example 5_000
   */
  timeoutMs?: number;
}

/**
 * Filter of {@link SchedulerClient.list}.
 * @example
 * const filter: ListCallsOptions = { states: ['failed'], function: 'charge', limit: 50 };
 */
export interface ListCallsOptions {
  /** Any of these states; empty or absent means all. */
  states?: readonly CallState[];
  /** Exact function name. */
  function?: string;
  createdAfter?: Date | number;
  createdBefore?: Date | number;
  /** Page size, 1..1000; default 100. */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
  /** Only calls without a parent. */
  rootsOnly?: boolean;
}

/**
 * A page of {@link SchedulerClient.list}.
 * @example
 * const { calls, nextCursor, counts } = await client.list({ limit: 20 });
 */
export interface ListCallsPage {
  calls: proto.ICallInfo[];
  /** `null` on the last page. */
  nextCursor: string | null;
  /** Calls per state matching the filter (ignoring the state filter and the cursor). */
  counts: Record<CallState, number>;
}

/**
 * The answer of {@link SchedulerClient.wait}.
 * @example
 * const r = await client.wait(id, 10_000);
 * if (r.done) console.log(Status[r.status], r.result.output);
 */
export type CallOutcome =
  | { done: true; state: CallState; status: number; result: proto.ICallResult }
  | { done: false; state: CallState };

/** Longest a single Wait RPC blocks on the server. */
const MAX_SERVER_WAIT_MS = 10 * 60_000;

const toMs = (t: Date | number) => (typeof t === 'number' ? t : t.getTime());

/**
 * Client of a scheduler's API. Errors are {@link DispatchApiError}s with the
 * Connect code (`not_found`, `unauthenticated`, `invalid_argument`, …, or
 * `unavailable` when the scheduler cannot be reached) and a message that says
 * what to do.
 * @example
 * const client = new SchedulerClient({ apiUrl: 'http://127.0.0.1:4450', apiKey });
 * const [id] = await client.dispatch([{ function: 'greet', endpoint: 'http://127.0.0.1:8000', input: encodeArgs(['Ada']) }]);
 * const outcome = await client.wait(id!, 60_000);
 */
export class SchedulerClient {
  /** Base URL, without a trailing slash. */
  readonly apiUrl: string;
  readonly #apiKey: string;
  readonly #timeoutMs: number;

  constructor(options: SchedulerClientOptions) {
    let url: URL;
    try {
      url = new URL(options.apiUrl);
    } catch {
      throw new TypeError(`the scheduler API URL is not a valid URL: ${JSON.stringify(options.apiUrl)}; use something like http://127.0.0.1:4450`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`the scheduler API URL must use http or https, got ${JSON.stringify(options.apiUrl)}`);
    }
    this.apiUrl = options.apiUrl.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /**
   * Dispatches calls (all or none) and answers their dispatch IDs in order.
   * @example
   * const [id] = await client.dispatch([{ function: 'greet', endpoint: 'http://127.0.0.1:8000', input }]);
   */
  async dispatch(calls: readonly proto.ICall[]): Promise<string[]> {
    const out = await this.#unary(DISPATCH_ROUTE, proto.DispatchRequest, proto.DispatchResponse, { calls: [...calls] });
    const ids = out.dispatchIds ?? [];
    if (ids.length !== calls.length) {
      throw new DispatchApiError(`the scheduler at ${this.apiUrl} answered ${ids.length} dispatch IDs for ${calls.length} calls`, 'internal', 200);
    }
    return ids;
  }

  /**
   * Waits until the call has a result, at most `timeoutMs` (default 30 s; any
   * length: longer waits are made of several Wait RPCs). Throws `not_found`
   * for an unknown ID.
   * @example
   * const r = await client.wait(id, 5 * 60_000);
   */
  async wait(id: string, timeoutMs = 30_000, signal?: AbortSignal): Promise<CallOutcome> {
    const deadline = Date.now() + Math.max(0, timeoutMs);
    for (;;) {
      const slice = Math.max(0, Math.min(MAX_SERVER_WAIT_MS, deadline - Date.now()));
      const out = await this.#unary(
        `${SCHEDULER_SERVICE}Wait`,
        WaitRequest,
        WaitResponse,
        { dispatchId: id, timeout: proto.durationFromMs(Math.max(1, slice)) },
        slice + 15_000,
        signal,
      );
      const state = callStateOf(out.state ?? 0) ?? 'pending';
      if (out.done) return { done: true, state, status: out.status ?? 0, result: out.result ?? {} };
      if (Date.now() >= deadline || signal?.aborted) return { done: false, state };
    }
  }

  /**
   * Everything the scheduler knows about a call (attempt history, children,
   * decoded input and output, concurrency). Throws `not_found`.
   * @example
   * const info = await client.get(id);
   */
  async get(id: string): Promise<proto.ICallInfo> {
    const out = await this.#unary(`${SCHEDULER_SERVICE}Get`, GetRequest, GetResponse, { dispatchId: id });
    if (!out.call) throw new DispatchApiError(`the scheduler at ${this.apiUrl} answered Get without a call`, 'internal', 200);
    return out.call;
  }

  /**
   * Calls, newest first, filtered and paginated, with counts per state.
   * @example
   * const page = await client.list({ states: ['failed'], limit: 20 });
   */
  async list(options: ListCallsOptions = {}): Promise<ListCallsPage> {
    const req: proto.IListRequest = {};
    if (options.states?.length) req.states = options.states.map((s) => callStateNumber(s));
    if (options.function) req.function = options.function;
    if (options.createdAfter !== undefined) req.createdAfter = proto.timestampFromDate(toMs(options.createdAfter));
    if (options.createdBefore !== undefined) req.createdBefore = proto.timestampFromDate(toMs(options.createdBefore));
    if (options.limit) req.limit = options.limit;
    if (options.cursor) req.cursor = options.cursor;
    if (options.rootsOnly) req.rootsOnly = true;
    const out = await this.#unary(`${SCHEDULER_SERVICE}List`, ListRequest, ListResponse, req);
    const counts = Object.fromEntries(CALL_STATES.map((s) => [s, 0])) as Record<CallState, number>;
    for (const c of out.counts ?? []) {
      const s = callStateOf(c.state ?? 0);
      if (s) counts[s] = Number(proto.toBigInt(c.count ?? 0));
    }
    return { calls: out.calls ?? [], nextCursor: out.nextCursor || null, counts };
  }

  /**
   * Cancels a call and its unfinished descendants; answers how many were
   * cancelled (0 if it had finished). Throws `not_found`.
   * @example
   * await client.cancel(id);
   */
  async cancel(id: string): Promise<number> {
    const out = await this.#unary(`${SCHEDULER_SERVICE}Cancel`, CancelRequest, CancelResponse, { dispatchId: id });
    return out.cancelled ?? 0;
  }

  /**
   * Runs a call again from its original function and input (side effects
   * may repeat). Throws `not_found`.
   * @example
   * await client.restart(id);
   */
  async restart(id: string): Promise<proto.ICallInfo> {
    const out = await this.#unary(`${SCHEDULER_SERVICE}Restart`, RestartRequest, RestartResponse, { dispatchId: id });
    return out.call ?? {};
  }

  /**
   * The scheduler's `GET /healthz` (no key needed): `status`, `instance`,
   * `inFlight`, and the `verificationKey` apps should verify with.
   * @example
   * const { verificationKey } = await client.health();
   */
  async health(): Promise<{ status?: string; instance?: string; inFlight?: number; verificationKey?: string }> {
    const response = await this.#fetch('/healthz', { method: 'GET' }, this.#timeoutMs);
    const text = await response.text();
    if (response.status !== 200) throw this.#errorOf(response.status, text);
    try {
      return JSON.parse(text) as Record<string, never>;
    } catch {
      throw new DispatchApiError(`${this.apiUrl}/healthz did not answer JSON: is this a Dispatch scheduler?`, 'internal', response.status);
    }
  }

  async #unary<Req extends object, Res extends object>(
    path: string,
    reqType: proto.MessageType<Req>,
    resType: proto.MessageType<Res>,
    message: Req,
    timeoutMs = this.#timeoutMs,
    signal?: AbortSignal,
  ): Promise<Res> {
    const response = await this.#fetch(
      path,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.#apiKey}`,
          'content-type': 'application/proto',
          'connect-protocol-version': '1',
          'connect-timeout-ms': String(Math.ceil(timeoutMs)),
        },
        body: reqType.encode(message),
      },
      timeoutMs,
      signal,
    );
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (response.status !== 200) throw this.#errorOf(response.status, new TextDecoder().decode(bytes));
    try {
      return resType.decode(bytes);
    } catch (err) {
      throw new DispatchApiError(
        `the answer of ${this.apiUrl}${path} is not a ${resType.fullName}: is DISPATCH_API_URL the URL of a Dispatch scheduler? (${(err as Error).message})`,
        'internal',
        200,
      );
    }
  }

  async #fetch(path: string, init: RequestInit, timeoutMs: number, signal?: AbortSignal): Promise<Response> {
    const timeout = AbortSignal.timeout(Math.max(1, timeoutMs));
    try {
      return await fetch(`${this.apiUrl}${path}`, { ...init, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
    } catch (err) {
      const why = describeFetchError(err);
      const timedOut = (err as Error).name === 'TimeoutError';
      throw new DispatchApiError(
        timedOut
          ? `the scheduler at ${this.apiUrl} did not answer within ${Math.ceil(timeoutMs)} ms`
          : `cannot reach the scheduler at ${this.apiUrl} (${why}): start one with \`dispatch serve\` (or run your app under \`dispatch run\`), or point DISPATCH_API_URL / --api-url at it`,
        timedOut ? 'deadline_exceeded' : 'unavailable',
        0,
        { cause: err },
      );
    }
  }

  #errorOf(status: number, text: string): DispatchApiError {
    let code = 'unknown';
    let message = '';
    try {
      const json = JSON.parse(text) as { code?: unknown; message?: unknown };
      if (typeof json.code === 'string') code = json.code;
      if (typeof json.message === 'string') message = json.message;
    } catch {
      message = text.slice(0, 200).trim();
    }
    if (status === 401) {
      return new DispatchApiError(
        `the scheduler at ${this.apiUrl} refused the API key ${redactKey(this.#apiKey)}: use the key it printed at startup, through DISPATCH_API_KEY or --api-key${message ? ` (${message})` : ''}`,
        'unauthenticated',
        status,
      );
    }
    if (code === 'unknown' && status === 404) {
      return new DispatchApiError(
        `${this.apiUrl} answered HTTP 404 without a Connect error: is DISPATCH_API_URL the URL of a Dispatch scheduler?`,
        'not_found',
        status,
      );
    }
    return new DispatchApiError(message || `the scheduler at ${this.apiUrl} answered HTTP ${status}`, code, status);
  }
}

function describeFetchError(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; e && i < 4; i++) {
    const x = e as { message?: string; code?: string; cause?: unknown };
    const part = [x.code, x.message].filter(Boolean).join(' ');
    if (part && !parts.includes(part)) parts.push(part);
    e = x.cause;
  }
  return parts.join(': ') || String(err);
}
