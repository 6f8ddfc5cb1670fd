/**
 * The Dispatch API client: `DispatchService.Dispatch` and this project's
 * scheduler service (Wait, Get, List, Cancel, Restart), over the Connect
 * unary protocol with binary protobuf and a bearer key (PROTOCOL.md 2 and
 * 8.19), plus the scheduler's `GET /healthz`.
 * @module
 */
import { DEFAULT_WAIT_TIMEOUT_MS, DISPATCH_PATH, MAX_WAIT_TIMEOUT_MS, SCHEDULE_SERVICE_PATH, SCHEDULER_SERVICE_PATH } from '../protocol/constants.js';
import * as proto from '../protocol/proto.js';
import { encodeValue } from '../serde/serde.js';
import { TimeoutError } from '../status/errors.js';
import { defaultStatusRegistry, type StatusRegistry } from '../status/registry.js';
import { Status } from '../status/status.js';
import { DispatchApiError, redactKey } from './api-error.js';
import { type CallInfo, type CallOutcome, type CallPage, decodeCallInfo, decodeWaitResponse } from './call-info.js';
import { CALL_STATES, type CallState, callStateNumber, callStateOf } from './call-state.js';
import { type DeclaredSchedules, decodeScheduleInfo, missedTicksNumber, type ScheduleInfo, type ScheduleSpec } from './schedule-info.js';

/**
 * Options of a {@link DispatchClient}.
 * @example
 * const options: DispatchClientOptions = { apiUrl: 'http://127.0.0.1:4450', apiKey: process.env.DISPATCH_API_KEY! };
 */
export interface DispatchClientOptions {
  /**
   * Base URL of the API (`DISPATCH_API_URL`), http or https.
   * @example 'http://127.0.0.1:4450'
   */
  apiUrl: string;
  /**
   * Bearer key (`DISPATCH_API_KEY`).
   * @example 'dsk_…'
   */
  apiKey: string;
  /**
   * Timeout of one HTTP request other than Wait, in ms. Default 30,000.
   * @example 5_000
   */
  timeoutMs?: number;
  /**
   * Attempts of a request that failed in a way that is safe to retry (see
   * {@link DispatchClient}). Default 4. A request answered `unavailable`
   * (the scheduler's database is down or restarting) is retried for up to
   * 30 s even beyond this count; `1` turns every retry off.
   * @example 1
   */
  attempts?: number;
  /**
   * Where errors and output classes are looked up when results are decoded:
   * pass your instance's `dispatch.registry` to get your registered error
   * classes back. Default: the module-level registry.
   * @example { registry: dispatch.registry }
   */
  registry?: StatusRegistry;
}

/**
 * Options of {@link DispatchClient.wait}.
 * @example
 * await client.wait(id, { timeoutMs: 5 * 60_000, signal: AbortSignal.timeout(60_000) });
 */
export interface WaitOptions {
  /**
   * How long to wait at most, in ms; any length (a wait longer than the
   * scheduler's cap of one request, 10 minutes, is made of several).
   * Default 30,000.
   * @example 60_000
   */
  timeoutMs?: number;
  /**
   * Stops waiting: `wait` rejects with the signal's reason.
   * @example AbortSignal.timeout(10_000)
   */
  signal?: AbortSignal;
}

/**
 * Filter and page of {@link DispatchClient.list}.
 * @example
 * const filter: ListCallsOptions = { states: ['failed'], function: 'charge', limit: 50 };
 */
export interface ListCallsOptions {
  /** Any of these states; empty or absent means all. */
  states?: readonly CallState[];
  /** Exact function name. */
  function?: string;
  /** Only calls created after this time. */
  createdAfter?: Date | number;
  /** Only calls created before this time. */
  createdBefore?: Date | number;
  /** Page size, 1..1000; default 100. */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
  /** Only calls without a parent. */
  rootsOnly?: boolean;
}

/**
 * The scheduler's `GET /healthz`.
 * @example
 * const { verificationKey } = await client.health();
 */
export interface SchedulerHealth {
  /** `ok`. */
  status?: string;
  /** The answering instance's ID. */
  instance?: string;
  /** Its runs in flight. */
  inFlight?: number;
  /** The public key apps verify its requests with (`DISPATCH_VERIFICATION_KEY`). */
  verificationKey?: string;
  /**
   * The health of the scheduler's store: `ok: false` (and `status:
   * 'unavailable'`, HTTP 503) while it fails, with the reason (disk full,
   * database unreachable…) and since when (ms since the epoch).
   */
  store?: { ok: boolean; reason?: string; code?: string; since?: number };
}

/** How a request may be retried. */
interface RequestOptions {
  /** Safe to send again after any transient failure. */
  idempotent: boolean;
  /** A 503 is the answer (health), not a failure to retry. */
  unavailableIsAnswer?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal | undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const toMs = (t: Date | number) => (typeof t === 'number' ? t : t.getTime());
/** Grace of a Wait request's HTTP timeout beyond the wait it asks for. */
const WAIT_GRACE_MS = 15_000;
/** A Wait answered this long before its timeout, without a result, is asked again after as long. */
const EARLY_ANSWER_MS = 250;
/** Network failures that happen before a request is sent: it cannot have had an effect. */
const NOT_SENT = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN/;
/** A request answered `unavailable` (HTTP 503: the scheduler's store fails) is retried for this long, beyond `attempts`. */
const UNAVAILABLE_RETRY_MS = 30_000;
/** Pause before try `n` (from 2): 100 ms doubling, at most 2 s, with jitter. */
const backoffMs = (n: number) => Math.min(2000, 100 * 2 ** (n - 2)) * (0.5 + Math.random() / 2);

/** Hex digits of a byte, by value. */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * An idempotency key of the client's own, for a call that has none: the
 * same across the retries of one request, so a retried request creates
 * nothing twice. `auto:` and a UUID of version 7 (RFC 9562: 48 bits of
 * the time in milliseconds, then 74 random bits): keys made together sort
 * together, so a scheduler's index of keys takes a request's keys in a few
 * of its pages instead of one random page each (a random UUID cost the
 * SQLite store's commits a page per call: bench/profile-notes.md).
 * @example generatedKey() // 'auto:019af3c2-5b1e-7c4d-9a2f-3e8d1b7c6a50'
 */
function generatedKey(): string {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16));
  let ms = Date.now();
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  let hex = '';
  for (let i = 0; i < 16; i++) hex += (i === 4 || i === 6 || i === 8 || i === 10 ? '-' : '') + HEX[b[i]!];
  return `auto:${hex}`;
}
/**
 * Keys are generated for requests of at most this many calls (the
 * scheduler's default `maxCallsPerRequest`): a larger request, refused by a
 * scheduler with the default limit anyway, would grow by some 45 bytes a
 * call; it is sent as given, and retried only when every call has a key.
 */
const GENERATED_KEYS_MAX_CALLS = 1000;

/**
 * Client of the Dispatch API: dispatches calls, waits for their results and
 * looks at them. Results come decoded — values and errors through the serde
 * (an error as the same class, name, message, status and fields as thrown),
 * timestamps as Dates — with the protocol message in `raw`.
 *
 * Errors are {@link DispatchApiError}s with the Connect code (`not_found`,
 * `unauthenticated`, `invalid_argument`…, or `unavailable` when the
 * scheduler cannot be reached) and a message that says what to do.
 *
 * Retries: a request is sent again (up to `attempts` times, with backoff
 * from 100 ms doubling to at most 2 s) when it cannot have had an effect
 * (connection refused, name resolution failed), or when it is safe to repeat
 * — reads, cancels and dispatches — and failed in a way that may pass (a
 * lost connection: ECONNRESET, socket hang up; a timeout; HTTP 502, 503 or
 * 504). An answer `unavailable` (503: the scheduler's database is full,
 * restarting or unreachable) is retried for up to 30 s. A dispatch is safe
 * to repeat because every call carries an idempotency key: yours, or one the
 * client generates for the request (`auto:<uuid v7>`, the same on each retry;
 * for requests of up to 1,000 calls), so a dispatch made during a database
 * blip is neither lost nor doubled.
 *
 * @example
 * ```ts
 * import { DispatchClient, Status } from '@dispatch/core';
 * const client = new DispatchClient({ apiUrl: 'http://127.0.0.1:4450', apiKey: process.env.DISPATCH_API_KEY! });
 * const id = await greet.dispatch('Ada');
 * const r = await client.wait(id, { timeoutMs: 60_000 });
 * if (r.done && r.status === Status.OK) console.log(r.value);
 * ```
 */
export class DispatchClient {
  /** Base URL, without a trailing slash. */
  readonly apiUrl: string;
  readonly #apiKey: string;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #registry: StatusRegistry;
  #features: Promise<readonly string[]> | undefined;

  constructor(options: DispatchClientOptions) {
    let url: URL;
    try {
      url = new URL(options.apiUrl);
    } catch {
      throw new TypeError(`the Dispatch API URL is not a valid URL: ${JSON.stringify(options.apiUrl)}; use something like http://127.0.0.1:4450`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`the Dispatch API URL must use http or https, got ${JSON.stringify(options.apiUrl)}`);
    }
    this.apiUrl = options.apiUrl.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#attempts = Math.max(1, options.attempts ?? 4);
    this.#registry = options.registry ?? defaultStatusRegistry;
  }

  /**
   * Dispatches calls atomically (all are stored or none) and answers their
   * dispatch IDs in order. Calls with an `idempotencyKey` the scheduler has
   * seen answer the original ID, which makes retrying this safe; a call
   * without a key gets one generated for this request (`auto:<uuid v7>`, kept
   * across its retries), so the client's own retries create nothing twice
   * (requests of up to 1,000 calls, the scheduler's default limit per
   * request; a larger one is retried only when every call has a key).
   * @example
   * const [id] = await client.dispatch([{ function: 'greet', endpoint: 'http://127.0.0.1:8000', input: encodeArgs(['Ada']) }]);
   */
  async dispatch(calls: readonly proto.ICall[]): Promise<string[]> {
    const generate = calls.length <= GENERATED_KEYS_MAX_CALLS;
    const keyed = generate ? calls.map((c) => (c.idempotencyKey ? c : { ...c, idempotencyKey: generatedKey() })) : [...calls];
    const idempotent = keyed.every((c) => !!c.idempotencyKey);
    const out = await this.#unary(DISPATCH_PATH, proto.DispatchRequest, proto.DispatchResponse, { calls: keyed }, { idempotent });
    const ids = out.dispatchIds ?? [];
    if (ids.length !== calls.length) {
      throw new DispatchApiError(`the scheduler at ${this.apiUrl} answered ${ids.length} dispatch IDs for ${calls.length} calls`, 'internal', 200);
    }
    return ids;
  }

  /**
   * Waits until the call has a result, at most `timeoutMs` (default 30 s):
   * `{ done: true, status, value, error }` with the value or the error
   * decoded, or `{ done: false, state }` when the time ran out first.
   * Throws `not_found` for an unknown ID.
   * @example
   * const r = await client.wait<string>(id, { timeoutMs: 60_000 });
   * if (!r.done) throw new Error(`still ${r.state}`);
   * if (r.error) throw r.error;
   * console.log(r.value);
   */
  async wait<T = unknown>(dispatchId: string, options: WaitOptions = {}): Promise<CallOutcome<T>> {
    const { signal } = options;
    const deadline = Date.now() + Math.max(0, options.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS);
    for (;;) {
      const sentAt = Date.now();
      const slice = Math.max(1, Math.min(MAX_WAIT_TIMEOUT_MS, deadline - sentAt));
      const out = await this.#unary(
        `${SCHEDULER_SERVICE_PATH}Wait`,
        proto.WaitRequest,
        proto.WaitResponse,
        { dispatchId, timeout: proto.durationFromMs(slice) },
        { idempotent: true, timeoutMs: slice + WAIT_GRACE_MS, signal },
      );
      const outcome = decodeWaitResponse<T>(dispatchId, out, this.#registry);
      if (outcome.done || Date.now() >= deadline) return outcome;
      // Answered long before its timeout without a result (a scheduler shutting down): pause before asking again.
      if (Date.now() - sentAt < slice - EARLY_ANSWER_MS) await sleep(Math.min(EARLY_ANSWER_MS, deadline - Date.now()));
    }
  }

  /**
   * Everything the scheduler knows about a call: state, status, attempts
   * with their errors, input and output decoded, parent and children.
   * Throws `not_found` for an unknown ID.
   * @example
   * const call = await client.get(id);
   * console.log(call.state, call.attempts, call.children);
   */
  async get<T = unknown>(dispatchId: string): Promise<CallInfo<T>> {
    const out = await this.#unary(`${SCHEDULER_SERVICE_PATH}Get`, proto.GetRequest, proto.GetResponse, { dispatchId }, { idempotent: true });
    if (!out.call) throw new DispatchApiError(`the scheduler at ${this.apiUrl} answered Get without a call`, 'internal', 200);
    return decodeCallInfo<T>(out.call, this.#registry);
  }

  /**
   * Calls, newest first, filtered and paginated, with counts per state.
   * @example
   * let page = await client.list({ states: ['failed'], limit: 50 });
   * while (page.nextCursor) page = await client.list({ states: ['failed'], limit: 50, cursor: page.nextCursor });
   */
  async list(options: ListCallsOptions = {}): Promise<CallPage> {
    const req: proto.IListRequest = {};
    if (options.states?.length) req.states = options.states.map(callStateNumber);
    if (options.function) req.function = options.function;
    if (options.createdAfter !== undefined) req.createdAfter = proto.timestampFromDate(toMs(options.createdAfter));
    if (options.createdBefore !== undefined) req.createdBefore = proto.timestampFromDate(toMs(options.createdBefore));
    if (options.limit) req.limit = options.limit;
    if (options.cursor) req.cursor = options.cursor;
    if (options.rootsOnly) req.rootsOnly = true;
    const out = await this.#unary(`${SCHEDULER_SERVICE_PATH}List`, proto.ListRequest, proto.ListResponse, req, { idempotent: true });
    const counts = Object.fromEntries(CALL_STATES.map((s) => [s, 0])) as Record<CallState, number>;
    for (const c of out.counts ?? []) {
      const s = callStateOf(c.state);
      if (s) counts[s] = Number(proto.toBigInt(c.count ?? 0));
    }
    return { calls: (out.calls ?? []).map((c) => decodeCallInfo(c, this.#registry)), nextCursor: out.nextCursor || null, counts };
  }

  /**
   * Cancels a call and its unfinished descendants; answers how many were
   * cancelled (0 if it had finished). Throws `not_found`.
   * @example
   * if ((await client.cancel(id)) === 0) console.log('it had already finished');
   */
  async cancel(dispatchId: string): Promise<number> {
    const out = await this.#unary(`${SCHEDULER_SERVICE_PATH}Cancel`, proto.CancelRequest, proto.CancelResponse, { dispatchId }, { idempotent: true });
    return out.cancelled ?? 0;
  }

  /**
   * Runs a call again from its original function and input, under the same
   * dispatch ID (its side effects may repeat); answers the call as it is
   * now. Throws `not_found`.
   * @example
   * await client.restart(id);
   */
  async restart<T = unknown>(dispatchId: string): Promise<CallInfo<T>> {
    const out = await this.#unary(`${SCHEDULER_SERVICE_PATH}Restart`, proto.RestartRequest, proto.RestartResponse, { dispatchId }, { idempotent: false });
    return decodeCallInfo<T>(out.call ?? { dispatchId }, this.#registry);
  }

  /**
   * Delivers a signal to a call (`dispatch.waitForSignal(name)` there
   * returns `payload`). A signal sent before the call waits is kept until it
   * does; each is consumed once, in the order sent. Answers whether it was
   * delivered to a waiting call at once. Throws `not_found` for an unknown
   * call, `failed_precondition` for a finished one, and says so when the
   * scheduler does not support signals.
   * @example
   * await client.signal(id, 'approval', { approved: true });
   */
  async signal(dispatchId: string, name: string, payload?: unknown, options: { idempotencyKey?: string; encodedPayload?: proto.IAny } = {}): Promise<boolean> {
    const req: proto.ISignalRequest = { dispatchId, name, payload: options.encodedPayload ?? encodeValue(payload ?? null) };
    if (options.idempotencyKey) req.idempotencyKey = options.idempotencyKey;
    const out = await this.#extension('signals', () =>
      this.#unary(`${SCHEDULER_SERVICE_PATH}Signal`, proto.SignalRequest, proto.SignalResponse, req, { idempotent: !!options.idempotencyKey }),
    );
    return out.delivered ?? false;
  }

  /**
   * Runs a failed or expired call again from its journal (its last recorded
   * state): the awaits that succeeded return their recorded results and are
   * not run again; calls that failed run again. Answers the call as it is
   * now. Throws `not_found`, `failed_precondition` (not failed, or no journal).
   * @example
   * await client.resume(id);
   */
  async resume<T = unknown>(dispatchId: string): Promise<CallInfo<T>> {
    await this.#extension('resume', () =>
      this.#unary(`${SCHEDULER_SERVICE_PATH}Resume`, proto.ResumeRequest, proto.ResumeResponse, { dispatchId }, { idempotent: false }),
    );
    return this.get<T>(dispatchId);
  }

  /**
   * The value of a call once it finishes, at most `timeoutMs` (default 30 s):
   * resolves to its output, or throws its error (same class, name, message
   * and status as thrown), or a {@link TimeoutError} when the time runs out.
   * @example
   * const text = await client.result<string>(id, { timeoutMs: 60_000 });
   */
  async result<T = unknown>(dispatchId: string, options: WaitOptions = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
    const r = await this.wait<T>(dispatchId, { ...options, timeoutMs });
    if (!r.done) {
      throw new TimeoutError(
        `the call ${dispatchId} did not finish within ${timeoutMs} ms (it is ${r.state}): wait longer with result(id, { timeout }), or look at it with \`dispatch get ${dispatchId}\``,
      );
    }
    if (r.error) throw r.error;
    if (r.status !== Status.OK) throw new Error(`the call ${dispatchId} finished with ${r.statusName} and no error`);
    return r.value as T;
  }

  /**
   * The extensions of this project the scheduler supports (`signals`,
   * `delays`, `idempotency_keys`, `resume`); asked once per client.
   * @example
   * if (!(await client.features()).includes('delays')) console.log('no delayed calls here');
   */
  features(): Promise<readonly string[]> {
    this.#features ??= this.#unary(`${SCHEDULER_SERVICE_PATH}Features`, proto.FeaturesRequest, proto.FeaturesResponse, {}, { idempotent: true }).then(
      (out) => out.features ?? [],
      (err: unknown) => {
        this.#features = undefined;
        if (isUnimplemented(err)) return [];
        throw err;
      },
    );
    return this.#features;
  }

  /** Throws, before dispatching, if the scheduler lacks one of `features` (delays, idempotency keys). @internal */
  async requireFeatures(features: readonly string[], uses: string): Promise<void> {
    if (features.length === 0) return;
    const have = await this.features();
    const missing = features.filter((f) => !have.includes(f));
    if (missing.length > 0) throw this.#unsupported(missing[0] as string, `${uses}`);
  }

  /** Runs a request of an extension; an unimplemented method becomes an error saying the scheduler does not support it. */
  async #extension<T>(feature: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      if (isUnimplemented(err)) throw this.#unsupported(feature, (err as Error).message);
      throw err;
    }
  }

  /**
   * Declares the schedules of the endpoint at `endpoint` (idempotent): new
   * ones are added, changed ones updated, and the endpoint's schedules not in
   * `schedules` are removed. Throws `invalid_argument` for a bad cron
   * expression or time zone, and `unimplemented` when the scheduler does not
   * support schedules. The SDK calls it when the endpoint starts
   * (`dispatch.declareSchedules()`).
   * @example
   * await client.declareSchedules('http://127.0.0.1:8000', [{ function: 'report', cron: '0 9 * * 1', timeZone: 'Europe/Paris' }]);
   */
  async declareSchedules(endpoint: string, schedules: readonly ScheduleSpec[]): Promise<DeclaredSchedules> {
    const req: proto.IDeclareSchedulesRequest = {
      endpoint,
      schedules: schedules.map((s) => ({
        function: s.function,
        cron: s.cron,
        timeZone: s.timeZone ?? '',
        missed: missedTicksNumber(s.missed),
        ...(s.expirationMs === undefined ? {} : { expiration: proto.durationFromMs(s.expirationMs) }),
      })),
    };
    const out = await this.#scheduleCall('DeclareSchedules', proto.DeclareSchedulesRequest, proto.DeclareSchedulesResponse, req);
    return { schedules: (out.schedules ?? []).map(decodeScheduleInfo), removed: out.removed ?? [] };
  }

  /**
   * Every schedule the scheduler keeps, by name, with its next tick.
   * Throws `unimplemented` when the scheduler does not support schedules.
   * @example
   * for (const s of await client.listSchedules()) console.log(s.name, s.nextTickTime);
   */
  async listSchedules(): Promise<ScheduleInfo[]> {
    const out = await this.#scheduleCall('ListSchedules', proto.ListSchedulesRequest, proto.ListSchedulesResponse, {});
    return (out.schedules ?? []).map(decodeScheduleInfo);
  }

  /**
   * Pauses a schedule: no tick runs until it is resumed. Throws `not_found`.
   * @example await client.pauseSchedule('report');
   */
  async pauseSchedule(name: string): Promise<ScheduleInfo> {
    const out = await this.#scheduleCall('PauseSchedule', proto.PauseScheduleRequest, proto.PauseScheduleResponse, { name });
    return decodeScheduleInfo(out.schedule ?? { name });
  }

  /**
   * Resumes a paused schedule from its next tick after now (the ticks of the
   * pause are not run). Throws `not_found`.
   * @example await client.resumeSchedule('report');
   */
  async resumeSchedule(name: string): Promise<ScheduleInfo> {
    const out = await this.#scheduleCall('ResumeSchedule', proto.ResumeScheduleRequest, proto.ResumeScheduleResponse, { name });
    return decodeScheduleInfo(out.schedule ?? { name });
  }

  /**
   * Removes a schedule (its app declares it again when it next starts, if
   * its code still has it). Throws `not_found`.
   * @example await client.removeSchedule('report');
   */
  async removeSchedule(name: string): Promise<void> {
    await this.#scheduleCall('RemoveSchedule', proto.RemoveScheduleRequest, proto.RemoveScheduleResponse, { name });
  }

  /** A ScheduleService RPC; a scheduler without the service is told apart from a missing schedule. */
  async #scheduleCall<Req extends object, Res extends object>(
    method: string,
    reqType: proto.MessageType<Req>,
    resType: proto.MessageType<Res>,
    message: Req,
  ): Promise<Res> {
    try {
      return await this.#unary(`${SCHEDULE_SERVICE_PATH}${method}`, reqType, resType, message, { idempotent: true });
    } catch (err) {
      if (err instanceof DispatchApiError && err.httpStatus === 404 && (err.code !== 'not_found' || /^no procedure at /.test(err.message))) {
        throw new DispatchApiError(
          `the scheduler at ${this.apiUrl} does not support schedules (it has no ${SCHEDULE_SERVICE_PATH.slice(1)}${method}): run a @dispatch/scheduler with schedules (\`dispatch run\`, \`dispatch serve\`), or remove the \`schedule\` option from your functions`,
          'unimplemented',
          err.httpStatus,
          { cause: err },
        );
      }
      throw err;
    }
  }

  #unsupported(feature: string, detail: string): DispatchApiError {
    return new DispatchApiError(
      `the scheduler at ${this.apiUrl} does not support ${feature.replace('_', ' ')} (${detail}): use @dispatch/scheduler ≥ ${EXTENSIONS_VERSION} (\`dispatch serve\` or \`dispatch run\`)`,
      'unimplemented',
      404,
    );
  }

  /**
   * The scheduler's `GET /healthz` (no key needed): its status, instance,
   * runs in flight, and the verification key apps should verify with.
   * @example
   * const { verificationKey } = await client.health();
   */
  async health(): Promise<SchedulerHealth> {
    // Not retried on 503: a scheduler whose store fails answers its health (status `unavailable`, the reason under `store`).
    const response = await this.#send('/healthz', { method: 'GET' }, { idempotent: true, unavailableIsAnswer: true });
    const text = new TextDecoder().decode(response.bytes);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      if (response.status !== 200) throw this.#errorOf(response.status, response.bytes);
      throw new DispatchApiError(`${this.apiUrl}/healthz did not answer JSON: is this the URL of a Dispatch scheduler?`, 'internal', response.status);
    }
    const health = body as SchedulerHealth;
    if (response.status === 200 || (response.status === 503 && typeof health?.status === 'string')) return health;
    throw this.#errorOf(response.status, response.bytes);
  }

  /** Posts a binary Connect unary request and decodes the answer. */
  async #unary<Req extends object, Res extends object>(
    path: string,
    reqType: proto.MessageType<Req>,
    resType: proto.MessageType<Res>,
    message: Req,
    options: RequestOptions,
  ): Promise<Res> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const init: RequestInit = {
      method: 'POST',
      headers: {
        authorization: `Bearer ${this.#apiKey}`,
        'content-type': 'application/proto',
        'connect-protocol-version': '1',
        'connect-timeout-ms': String(Math.ceil(timeoutMs)),
      },
      body: reqType.encode(message),
    };
    const response = await this.#send(path, init, { ...options, timeoutMs });
    if (response.status !== 200) throw this.#errorOf(response.status, response.bytes);
    try {
      return resType.decode(response.bytes);
    } catch (err) {
      throw new DispatchApiError(
        `the answer of ${this.apiUrl}${path} is not a ${resType.fullName}: is DISPATCH_API_URL the URL of a Dispatch scheduler? (${(err as Error).message})`,
        'internal',
        200,
      );
    }
  }

  /**
   * Sends a request, retrying what is safe to retry (see the class), and
   * answers the final HTTP status and body.
   */
  async #send(path: string, init: RequestInit, options: RequestOptions): Promise<{ status: number; bytes: Uint8Array }> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const { signal } = options;
    let lastError: DispatchApiError | undefined;
    const started = Date.now();
    for (let attempt = 1; attempt <= this.#attempts || lastError?.httpStatus === 503; attempt++) {
      if (attempt > 1) await sleep(backoffMs(attempt));
      signal?.throwIfAborted();
      const timeout = AbortSignal.timeout(Math.max(1, timeoutMs));
      let response: Response;
      try {
        response = await fetch(`${this.apiUrl}${path}`, { ...init, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      } catch (err) {
        signal?.throwIfAborted();
        lastError = this.#unreachable(err, timeoutMs);
        if ((options.idempotent || NOT_SENT.test(describeFetchError(err))) && attempt < this.#attempts) continue;
        throw lastError;
      }
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await response.arrayBuffer());
      } catch (err) {
        // The connection broke while the answer was read.
        signal?.throwIfAborted();
        lastError = this.#unreachable(err, timeoutMs);
        if (options.idempotent && attempt < this.#attempts) continue;
        throw lastError;
      }
      const transient = response.status === 502 || response.status === 503 || response.status === 504;
      if (transient && options.idempotent && !(response.status === 503 && options.unavailableIsAnswer)) {
        const more =
          attempt < this.#attempts || (response.status === 503 && this.#attempts > 1 && Date.now() - started + backoffMs(attempt + 1) < UNAVAILABLE_RETRY_MS);
        if (more) {
          lastError = this.#errorOf(response.status, bytes);
          continue;
        }
      }
      return { status: response.status, bytes };
    }
    throw lastError ?? new DispatchApiError(`no request was sent to ${this.apiUrl}${path}`, 'internal', 0);
  }

  #unreachable(err: unknown, timeoutMs: number): DispatchApiError {
    if ((err as Error).name === 'TimeoutError') {
      return new DispatchApiError(`the scheduler at ${this.apiUrl} did not answer within ${Math.ceil(timeoutMs)} ms`, 'deadline_exceeded', 0, { cause: err });
    }
    return new DispatchApiError(
      `cannot reach the scheduler at ${this.apiUrl} (${describeFetchError(err)}): start one with \`dispatch serve\` (or run your app under \`dispatch run\`), or point DISPATCH_API_URL / --api-url at it`,
      'unavailable',
      0,
      { cause: err },
    );
  }

  #errorOf(status: number, bytes: Uint8Array): DispatchApiError {
    const text = new TextDecoder().decode(bytes);
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
        this.#apiKey
          ? `the scheduler at ${this.apiUrl} refused the API key ${redactKey(this.#apiKey)}: use the key it printed at startup, through DISPATCH_API_KEY or --api-key${message ? ` (${message})` : ''}`
          : `the scheduler at ${this.apiUrl} needs an API key: set DISPATCH_API_KEY or pass --api-key (\`dispatch serve\` and \`dispatch run\` print it when they start)`,
        'unauthenticated',
        status,
      );
    }
    if (code === 'unknown' && status === 404) {
      return new DispatchApiError(`${this.apiUrl} answered HTTP 404 without a Connect error: is DISPATCH_API_URL the URL of a Dispatch scheduler?`, 'not_found', status);
    }
    return new DispatchApiError(message || `the scheduler at ${this.apiUrl} answered HTTP ${status}${code === 'unknown' ? '' : ` ${code}`}`, code, status);
  }
}

/** The first version of @dispatch/scheduler with signals, delays, idempotency keys and resume (this repository's first release has them). */
const EXTENSIONS_VERSION = '0.1.0';

/** An answer that means the scheduler has no such method (an older or foreign scheduler). */
function isUnimplemented(err: unknown): boolean {
  if (!(err instanceof DispatchApiError)) return false;
  if (err.code === 'unimplemented') return true;
  return err.httpStatus === 404 && (err.code === 'unknown' || /no procedure|HTTP 404/.test(err.message));
}

/** The codes and messages of an error and its causes, for a message. */
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
