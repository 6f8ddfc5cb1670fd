/**
 * The `Dispatch` class: registers functions, dispatches calls, and serves the
 * endpoint that runs them.
 * @module
 */
import { ENGINE_TRACER, tracedDispatch, tracedRun } from '../trace/app.js';
import { type CallOptions, DurableCall, isDurableCall } from './call.js';
import * as combinators from './combinators.js';
import { DispatchClient } from '../client/client.js';
import type { DeclaredSchedules, ScheduleSpec } from '../client/schedule-info.js';
import { parseSchedule, type ScheduleOptions } from './schedule.js';
import { ConfigurationError, type DispatchOptions, ResolvedConfig } from './config.js';
import { parseDuration, type DurationInput } from './duration.js';
import { type ConcurrencyOption, type RateLimitOption, resolveLimits } from './limits.js';
import { Engine } from '../engine/engine.js';
import { currentExecution, type EngineFunction, type RunContext } from '../engine/execution.js';
import { InvalidArgumentError } from '../status/errors.js';
import { DispatchApiError } from '../client/api-error.js';
import { describeIssues } from './issues.js';
import { type EndpointApp, type EndpointRequest, type EndpointResponse, handleEndpointRequest, type LocalResumeRun } from '../endpoint/handler.js';
import { type EndpointRequestHead, precheckEndpointRequest } from '../endpoint/precheck.js';
import { ReplayCache } from '../signature/replay-cache.js';
import { IN_PROCESS_ENV, inProcessEnabled, inProcessRegistry } from '../endpoint/in-process.js';
import { FUNCTION_NAME_PATTERN } from '../protocol/constants.js';
import { excerpt } from '../protocol/excerpt.js';
import type { IAny, ICall, IRunRequest, IRunResponse } from '../protocol/proto.js';
import { decodeArgs, encodeArgs, encodeValue } from '../serde/serde.js';
import type { Status } from '../status/status.js';
import { type Class, defaultStatusRegistry, type StatusHandler, StatusRegistry } from '../status/registry.js';


/**
 * A schema that validates a function's input: a zod schema (3 or 4), or
 * anything with zod's `safeParse`. Written as the shape it needs rather than
 * zod's own type, so that the declarations of `@dispatch/core` load without
 * zod's (whose CommonJS typings need `esModuleInterop`).
 * @example
 * const input: InputSchema<[number, number]> = z.tuple([z.number(), z.number()]);
 */
export interface InputSchema<T> {
  safeParse(data: unknown): { success: true; data: T } | { success: false; error: { message: string } };
}

/** Options of `dispatch.function(options, fn)`. */
export interface FunctionOptions<A extends unknown[] = unknown[]> {
  /**
   * The function's name, unique in the app; default `fn.name`. Must match
   * `^[a-zA-Z_][a-zA-Z0-9_<>.]*$`.
   * @example 'charge'
   */
  name?: string;
  /**
   * A zod schema for the arguments: a tuple or array schema validates the
   * argument list; any other schema validates the single argument. Failure
   * ends the call with INVALID_ARGUMENT and one line per issue
   * (`✖ Invalid input: expected number, received string → at [1]`).
   * @example z.tuple([z.string(), z.number().int()])
   */
  input?: InputSchema<A> | InputSchema<A[0]>;
  /** Default expiration of calls of this function. @example '30m' */
  expiration?: DurationInput;
  /**
   * State this code cannot use (its journal no longer matches the code):
   * `'fail'` (default) answers INCOMPATIBLE_STATE, which the scheduler retries
   * so that an instance still running the old code can take it; `'restart'`
   * starts the function again from its original input (side effects before
   * the change may repeat).
   */
  onIncompatibleState?: 'fail' | 'restart';
  /**
   * Runs the function on a schedule: a cron expression of five fields
   * (`minute hour day-of-month month day-of-week`) or six (seconds first),
   * read in UTC, or `{ cron, timeZone, missed }`. The app declares its
   * schedules to the scheduler when its endpoint starts; at each tick the
   * scheduler calls the function once with a {@link ScheduleTick}. An
   * invalid expression or time zone is a `TypeError` here, at registration.
   * @example '*\/10 * * * * *'
   * @example { cron: '0 9 * * 1', timeZone: 'Europe/Paris', missed: 'skip' }
   */
  schedule?: string | ScheduleOptions;
  /**
   * How to start a call from outside a Dispatch function, for the error
   * of one awaited there (default: `use <name>.dispatch(...), or add it to
   * dispatch.batch()`). Frameworks that start calls their own way set it.
   * @example 'inject DispatchService and call dispatchService.dispatch(this.billing.checkout, ...args)'
   */
  startHint?: string;
  /**
   * At most this many calls of the function running at once, across every
   * scheduler instance sharing a store: a number, or `{ limit, key }` to
   * apply it per key (the key computed from the call's arguments). Calls over
   * the limit wait, pending. Adaptive concurrency never exceeds it.
   * @example { limit: 2, key: (userId) => userId }
   */
  concurrency?: NoInfer<ConcurrencyOption<A>>;
  /**
   * At most N starts in any window of a period: `'50/s'`, `'10/m'`,
   * `'1000/h'`, or `{ limit: '5/s', key }` per key. Calls over the rate wait,
   * pending.
   * @example '50/s'
   */
  rateLimit?: NoInfer<RateLimitOption<A>>;
}

/**
 * A registered Dispatch function. Calling it returns a {@link DurableCall}:
 * awaited inside another Dispatch function, it is a durable checkpoint.
 *
 * @example
 * ```ts
 * const greet = dispatch.function(async function greet(name: string) {
 *   return `Hello ${name}`;
 * });
 * const id = await greet.dispatch('Jane');      // from anywhere: returns the dispatch ID
 * const text = await greet('Mike');             // inside a Dispatch function: durable call
 * ```
 */
export interface DispatchFunction<A extends unknown[], R> {
  (...args: A): DurableCall<R>;
  /** The registered name. */
  readonly functionName: string;
  /**
   * Asks the scheduler to run the function and resolves to its dispatch ID.
   * Inside a Dispatch function this happens exactly once across replays.
   */
  dispatch(...args: A): Promise<string>;
  /**
   * Dispatches like {@link dispatch} and resolves to a {@link CallHandle}:
   * its dispatch ID, and `result()` to await its value from anywhere.
   */
  start(...args: A): Promise<CallHandle<R>>;
  /**
   * The same function with per-call options (expiration, version, delay,
   * startAt, idempotencyKey): callable inside a function, with `.dispatch()`
   * and `.start()`. Options given again replace the earlier ones.
   */
  withOptions(options: DispatchCallOptions): DispatchFunction<A, R>;
}

/**
 * Options of one call, for `fn.withOptions(options)`.
 * @example
 * ```ts
 * const options: DispatchCallOptions = { delay: '10s', idempotencyKey: `welcome-${user.id}` };
 * await sendWelcome.withOptions(options).dispatch(user);
 * ```
 */
export interface DispatchCallOptions {
  /** Longest time the call may take, retries included. @example '30m' */
  expiration?: DurationInput;
  /** Application version selector (not supported by every scheduler). @example 'v2' */
  version?: string;
  /** Run no earlier than this long after dispatch. @example '10s' */
  delay?: DurationInput;
  /** Run no earlier than this time. @example new Date('2030-01-01T09:00:00Z') */
  startAt?: Date | number;
  /**
   * A second dispatch with the same key answers the first one's dispatch ID
   * instead of creating a call; the scheduler keeps keys at least 24 h.
   * @example `charge-${orderId}`
   */
  idempotencyKey?: string;
}

/**
 * A started call: its dispatch ID, and its result when it finishes.
 * @example
 * ```ts
 * const handle = await greet.start('Ann');
 * console.log(handle.dispatchId, await handle.result({ timeout: '1m' }));
 * ```
 */
export interface CallHandle<R> {
  /** The call's dispatch ID. */
  readonly dispatchId: string;
  /**
   * Resolves to the call's value once it finishes, or throws its error (same
   * class, name, message and status as thrown), or a `TimeoutError` after
   * `timeout` (default 30 s).
   */
  result(options?: ResultOptions): Promise<R>;
}

/**
 * Options of `handle.result()` and `dispatch.result()`.
 * @example
 * const options: ResultOptions = { timeout: '5m' };
 */
export interface ResultOptions {
  /** How long to wait at most (default 30 s); then a `TimeoutError`. @example '5m' */
  timeout?: DurationInput;
  /** Stops waiting (rejects with its reason). @example AbortSignal.timeout(10_000) */
  signal?: AbortSignal;
}

/**
 * Options of `dispatch.waitForSignal()`.
 * @example
 * const options: WaitForSignalOptions = { timeout: '24h' };
 */
export interface WaitForSignalOptions {
  /** Throw a `TimeoutError` if no signal arrives within this long; default: wait forever. @example '24h' */
  timeout?: DurationInput;
}

/**
 * A batch of calls dispatched together in one `DispatchRequest`, without
 * waiting for them to finish (fan-out).
 *
 * @example
 * ```ts
 * const batch = dispatch.batch();
 * for (const user of users) batch.add(sendEmail(user));
 * const ids = await batch.dispatch();
 * ```
 */
export class Batch {
  readonly #calls: DurableCall<unknown>[] = [];
  readonly #owner: Dispatch;
  /** @internal Use `dispatch.batch()`. */
  constructor(owner: Dispatch) {
    this.#owner = owner;
  }
  /** Adds calls made with `fn(...args)`; returns the batch. */
  add(...calls: DurableCall<unknown>[]): this {
    for (const call of calls) {
      if (!isDurableCall(call)) {
        throw new TypeError(`batch.add() takes calls made with fn(...args), got ${describe(call)}`);
      }
      this.#calls.push(call);
    }
    return this;
  }
  /** Number of calls added. */
  get size(): number {
    return this.#calls.length;
  }
  /**
   * Dispatches every call in one request (all or none) and resolves to their
   * dispatch IDs, in order. Inside a Dispatch function it happens exactly once
   * across replays.
   */
  dispatch(): Promise<string[]> {
    return this.#owner.dispatchCalls(this.#calls);
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'function') return `a function (${value.name || 'anonymous'}); call it first: fn(...args)`;
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'Object'})`;
  return `${typeof value} ${String(value)}`;
}

/** Options of `new Dispatch()`: configuration plus engine settings. */
export interface DispatchInstanceOptions extends DispatchOptions {
  /**
   * Warm cache of suspended executions: bounds, or `false` to replay the
   * journal on every resume. Default 1,000 executions, 256 MiB.
   * @example { maxEntries: 10_000, maxBytes: 512 * 1024 * 1024 }
   */
  cache?: { maxEntries?: number; maxBytes?: number } | false;
  /**
   * Client used to dispatch calls, instead of one built from apiKey/apiUrl
   * (tests, in-process schedulers); signals and results need a full
   * DispatchClient.
   */
  client?: Pick<DispatchClient, 'dispatch'>;
  /** Clock for durable timers, in ms since the epoch (tests). Default `Date.now`. */
  now?: () => number;
  /** Largest journal (suspended state) in bytes; a function past it fails with PERMANENT_ERROR. Default 16 MiB. @example 64 * 1024 * 1024 */
  maxJournalBytes?: number;
  /**
   * Most request signatures remembered to refuse replays (each until it
   * expires: 65 s with this project's scheduler); when all are still valid,
   * new requests are answered 503 until some expire. Default 100,000.
   * @example { replayCacheEntries: 500_000 }
   */
  replayCacheEntries?: number;
  /**
   * Let this project's scheduler sign requests with HMAC-SHA256 under a
   * session key agreed (X25519) in a request signed with Ed25519, instead
   * of Ed25519 every time: ~0.14 ms of CPU less per request (README,
   * "Signature sessions"). Only with a verification key. Default `true`;
   * `false` keeps every request on Ed25519.
   * @example { signatureSessions: false }
   */
  signatureSessions?: boolean;
}

/**
 * A Dispatch instance. Most apps use the default instance through the
 * module functions (`dispatch.function(...)`), configured from the
 * environment; create your own for several configurations or for tests.
 *
 * @example
 * ```ts
 * import { Dispatch } from '@dispatch/core';
 * const dispatch = new Dispatch({ endpointUrl: 'http://127.0.0.1:8000' });
 * const echo = dispatch.function(function echo(text: string) { return text; });
 * await dispatch.run(async () => { await echo.dispatch('hi'); });
 * ```
 */
export class Dispatch {
  /** Resolved configuration. */
  readonly config: ResolvedConfig;
  /** Status registry of this instance (consulted before the module-level one). */
  readonly registry: StatusRegistry;
  /** The engine that runs this instance's functions. */
  readonly engine: Engine;
  /** Where this instance logs warnings and errors. */
  readonly logger: Pick<Console, 'warn' | 'error' | 'info'>;
  readonly #functions = new Map<string, EngineFunction>();
  readonly #schedules = new Map<string, ScheduleSpec>();
  #declaring: Promise<unknown> = Promise.resolve();
  readonly #endpoint: EndpointApp;
  #client: Pick<DispatchClient, 'dispatch'> | undefined;
  #inFlight = 0;
  #drained: (() => void)[] = [];
  #warned = false;
  readonly #inProcess: boolean;

  constructor(options: DispatchInstanceOptions = {}) {
    this.#client = options.client;
    this.logger = options.logger ?? console;
    this.config = new ResolvedConfig(options);
    this.registry = new StatusRegistry(defaultStatusRegistry);
    this.engine = new Engine({
      lookup: (name) => this.#functions.get(name),
      registry: this.registry,
      endpointUrl: () => this.config.endpointUrlOrUndefined,
      dispatcher: (calls) =>
        tracedDispatch(
          calls.map((c) => ({ ...c, endpoint: c.endpoint || this.config.endpointUrl })),
          (carried) => this.#dispatchProto(carried),
        ),
      signaler: async (dispatchId, name, payload, idempotencyKey) => {
        await this.#apiClient('dispatch.signal()').signal(dispatchId, name, undefined, { idempotencyKey, encodedPayload: payload });
      },
      tracer: ENGINE_TRACER,
      cache: options.cache,
      now: options.now,
      maxJournalBytes: options.maxJournalBytes,
    });
    // Read at each request: the configuration may be replaced after construction (@dispatch/testing does).
    const dispatch = this;
    const replayCache = new ReplayCache(options.replayCacheEntries === undefined ? {} : { maxEntries: options.replayCacheEntries });
    this.#endpoint = {
      get maxBodyBytes() {
        return dispatch.config.maxBodyBytes;
      },
      get verificationKey() {
        return dispatch.config.verificationKey;
      },
      get acceptUnsigned() {
        return dispatch.config.acceptUnsigned;
      },
      replayCache,
      signatureSessions: options.signatureSessions ?? true,
      get logger() {
        return dispatch.logger;
      },
      hasFunction: (name) => this.hasFunction(name),
      functionNames: () => this.functionNames,
      runRequest: (request) => this.#run(request),
      localResume: (request, response) => this.#localResume(request, response),
    };
    // In-process mode: a scheduler in this process hands RunRequests to this instance directly.
    this.#inProcess = inProcessEnabled(options.env ?? process.env);
    if (this.#inProcess) {
      inProcessRegistry().register({ endpointUrl: () => this.config.endpointUrlOrUndefined, runRequest: (request) => this.runRequest(request) });
    }
  }

  /** The API client (created on first use; needs an API key). */
  get client(): Pick<DispatchClient, 'dispatch'> {
    this.#client ??= new DispatchClient({ apiKey: this.config.apiKey, apiUrl: this.config.apiUrl });
    return this.#client;
  }

  /** Names of the registered functions. */
  get functionNames(): string[] {
    return [...this.#functions.keys()];
  }

  /** `true` if a function of this name is registered. */
  hasFunction(name: string): boolean {
    return this.#functions.has(name);
  }

  /**
   * Registers a function and returns its callable handle. The name comes
   * from `fn.name` or `options.name`; it is checked against the protocol's
   * pattern, and registering a name twice is an error.
   */
  function<A extends unknown[], R>(fn: (...args: A) => R): DispatchFunction<A, Awaited<R>>;
  function<A extends unknown[], R>(options: FunctionOptions<A>, fn: (...args: A) => R): DispatchFunction<A, Awaited<R>>;
  function<A extends unknown[], R>(
    a: FunctionOptions<A> | ((...args: A) => R),
    b?: (...args: A) => R,
  ): DispatchFunction<A, Awaited<R>> {
    const options: FunctionOptions<A> = typeof a === 'function' ? {} : (a ?? {});
    const impl = typeof a === 'function' ? a : b;
    if (typeof impl !== 'function') {
      throw new TypeError(`dispatch.function() needs a function, got ${describe(impl)}`);
    }
    const name = options.name ?? impl.name;
    if (!name) {
      throw new TypeError('dispatch.function() needs a name: pass a named function (function charge() {...}) or { name: "charge" }');
    }
    if (!FUNCTION_NAME_PATTERN.test(name)) {
      throw new TypeError(
        `invalid function name ${JSON.stringify(name)}: names must match ^[a-zA-Z_][a-zA-Z0-9_<>.]*$ (letters, digits, _ < > .; no dashes or spaces)`,
      );
    }
    if (this.#functions.has(name)) {
      throw new TypeError(`a function named ${JSON.stringify(name)} is already registered; give one of them another name`);
    }
    const schedule = options.schedule === undefined ? undefined : parseSchedule(options.schedule, name);
    const schema = options.input as InputSchema<unknown> | undefined;
    const listSchema = schema && isListSchema(schema);
    const defaultExpirationMs = options.expiration === undefined ? undefined : parseDuration(options.expiration, 'expiration');
    const limitsOf = resolveLimits(name, options);
    this.#functions.set(name, {
      name,
      onIncompatibleState: options.onIncompatibleState ?? 'fail',
      limited: limitsOf !== undefined,
      decodeInput: (input: IAny | null | undefined) => {
        let args: unknown[];
        try {
          args = decodeArgs(input);
        } catch (err) {
          throw new InvalidArgumentError(`cannot decode the input of ${name}: ${excerpt((err as Error).message)}`, { cause: err });
        }
        if (!schema) return args;
        const result = listSchema ? schema.safeParse(args) : schema.safeParse(args[0]);
        if (!result.success) {
          throw new InvalidArgumentError(`invalid input for ${name}:\n${excerpt(describeIssues(result.error))}`, { cause: result.error });
        }
        if (listSchema) return result.data as unknown[];
        if (args.length > 1) throw new InvalidArgumentError(`${name} takes one argument, got ${args.length}`);
        return args.length === 0 && result.data === undefined ? [] : [result.data];
      },
      invoke: (args: unknown[]) => impl(...(args as A)),
    });
    if (schedule) {
      this.#schedules.set(name, {
        function: name,
        cron: schedule.cron,
        timeZone: schedule.timeZone,
        missed: schedule.missed,
        ...(defaultExpirationMs === undefined ? {} : { expirationMs: defaultExpirationMs }),
      });
    }
    const make = (args: A, callOptions: CallOptions) =>
      new DurableCall<Awaited<R>>({
        function: name,
        args,
        encode: () => encodeArgs(args),
        options: limitsOf ? { ...callOptions, limits: limitsOf(args) } : callOptions,
        startHint: options.startHint,
      });
    const baseOptions: CallOptions = defaultExpirationMs === undefined ? {} : { expirationMs: defaultExpirationMs };
    return this.#handle<A, Awaited<R>>(name, make, baseOptions);
  }

  /** The callable handle of a function with `callOptions`: `fn(...)`, `.dispatch`, `.start`, `.withOptions`. */
  #handle<A extends unknown[], R>(name: string, make: (args: A, o: CallOptions) => DurableCall<R>, callOptions: CallOptions): DispatchFunction<A, R> {
    const handle = ((...args: A) => make(args, callOptions)) as DispatchFunction<A, R>;
    Object.defineProperty(handle, 'name', { value: name });
    Object.defineProperty(handle, 'functionName', { value: name, enumerable: true });
    handle.dispatch = async (...args: A) => {
      const [id] = await this.dispatchCalls([make(args, callOptions)]);
      return id as string;
    };
    handle.start = async (...args: A) => {
      const [id] = await this.dispatchCalls([make(args, callOptions)]);
      return this.#callHandle<R>(id as string);
    };
    handle.withOptions = (o: DispatchCallOptions) => this.#handle(name, make, { ...callOptions, ...callOptionsOf(o) });
    return handle;
  }

  #callHandle<R>(dispatchId: string): CallHandle<R> {
    return { dispatchId, result: (options?: ResultOptions) => this.result<R>(dispatchId, options) };
  }

  /**
   * The value of any call once it finishes (by dispatch ID): resolves to its
   * output, or throws its error (same class, name, message and status as
   * thrown), or a `TimeoutError` after `timeout` (default 30 s). Uses the
   * API client (DISPATCH_API_URL, DISPATCH_API_KEY).
   * @example
   * ```ts
   * const receipt = await dispatch.result<string>(dispatchId, { timeout: '2m' });
   * ```
   */
  result<R = unknown>(dispatchId: string, options: ResultOptions = {}): Promise<R> {
    const timeoutMs = options.timeout === undefined ? undefined : parseDuration(options.timeout, 'result timeout');
    return this.#apiClient('dispatch.result()').result<R>(dispatchId, { timeoutMs, signal: options.signal });
  }

  /**
   * Inside a Dispatch function: suspends durably until a signal named
   * `name` arrives for this call, and resolves to its payload. Signals sent
   * before the wait are kept until it; each is consumed once, in the order
   * sent. With `timeout`, throws a `TimeoutError` when none arrives in time.
   * @example
   * ```ts
   * const decision = await dispatch.waitForSignal<{ approved: boolean }>('decision', { timeout: '24h' });
   * ```
   */
  waitForSignal<T = unknown>(name: string, options: WaitForSignalOptions = {}): Promise<T> {
    if (typeof name !== 'string' || name === '') return Promise.reject(new TypeError('dispatch.waitForSignal() needs a non-empty signal name'));
    const execution = currentExecution();
    if (!execution) {
      return Promise.reject(
        new Error(`dispatch.waitForSignal(${JSON.stringify(name)}) was called outside a Dispatch function: only a running Dispatch function can wait for a signal`),
      );
    }
    const timeoutMs = options.timeout === undefined ? 0 : parseDuration(options.timeout, 'waitForSignal timeout');
    return execution.waitForSignal(name, timeoutMs) as Promise<T>;
  }

  /**
   * Sends a signal named `name` with `payload` to the call `dispatchId`
   * (its `dispatch.waitForSignal(name)` returns the payload). From
   * anywhere; inside a Dispatch function it is sent exactly once across
   * replays. Throws for an unknown or finished call.
   * @example
   * ```ts
   * await dispatch.signal(expenseId, 'decision', { approved: true, by: 'maria' });
   * ```
   */
  async signal(dispatchId: string, name: string, payload?: unknown): Promise<void> {
    if (typeof dispatchId !== 'string' || dispatchId === '') throw new TypeError('dispatch.signal() needs the dispatch ID of the call to signal');
    if (typeof name !== 'string' || name === '') throw new TypeError('dispatch.signal() needs a non-empty signal name');
    const encoded = encodeValue(payload ?? null);
    const execution = currentExecution();
    if (execution) return execution.sendSignal(dispatchId, name, encoded);
    await this.#apiClient('dispatch.signal()').signal(dispatchId, name, payload);
  }

  /** The full API client (signals, results, features); a dispatch-only client given in the options cannot. */
  #apiClient(uses: string): DispatchClient {
    const client = this.client as Partial<DispatchClient>;
    if (typeof client.signal !== 'function' || typeof client.result !== 'function') {
      throw new Error(`${uses} needs a DispatchClient: the client given to new Dispatch({ client }) can only dispatch`);
    }
    return client as DispatchClient;
  }

  /** Dispatches protocol calls, first checking the scheduler supports the extensions they use. */
  async #dispatchProto(calls: ICall[]): Promise<string[]> {
    const features: string[] = [];
    if (calls.some((c) => c.delay)) features.push('delays');
    if (calls.some((c) => c.idempotencyKey && !/^[^/]*\/\d+\/\d+$/.test(c.idempotencyKey))) features.push('idempotency_keys');
    const client = this.client as Partial<DispatchClient>;
    if (features.length > 0 && typeof client.requireFeatures === 'function') await client.requireFeatures(features, 'delays and idempotency keys');
    return this.client.dispatch(calls);
  }

  /** The schedules of this instance's functions, as they are declared to the scheduler. */
  get schedules(): ScheduleSpec[] {
    return [...this.#schedules.values()].map((s) => ({ ...s }));
  }

  /**
   * Declares this app's schedules (the functions registered with a
   * `schedule`) to the scheduler, for the endpoint at `endpointUrl`
   * (`DISPATCH_ENDPOINT_URL`): the scheduler adds or updates them and removes
   * the endpoint's schedules no longer declared. `dispatch.serve()`,
   * `dispatch.run()` and the Express, Fastify and NestJS adapters call it when
   * the endpoint starts; call it yourself when you serve the endpoint another
   * way. Rejects with a {@link DispatchApiError} — code `unimplemented` when
   * the scheduler does not support schedules — or a `ConfigurationError`
   * when the API key or endpoint URL is missing.
   * @example
   * ```ts
   * createServer(nodeListener(dispatch)).listen(8000, () => dispatch.declareSchedules());
   * ```
   */
  async declareSchedules(): Promise<DeclaredSchedules> {
    const client = this.client as Partial<DispatchClient>;
    if (typeof client.declareSchedules !== 'function') {
      throw new ConfigurationError(
        'the client given to new Dispatch({ client }) cannot declare schedules (it has no declareSchedules method): pass a DispatchClient, or none',
      );
    }
    // One declaration at a time, each with the schedules registered when it is sent: the last one sent wins.
    const endpointUrl = this.config.endpointUrl;
    const next = this.#declaring.catch(() => {}).then(() => client.declareSchedules!.call(this.client, endpointUrl, this.schedules));
    this.#declaring = next;
    return next;
  }

  /**
   * What an endpoint does when it starts (`dispatch.serve()` and the
   * adapters call it; so may a server of your own): declares the schedules
   * and resolves once they are declared, or rejects when they cannot be
   * (the scheduler does not support schedules, an API key or the endpoint
   * URL is missing); a scheduler that cannot be reached is tried again in
   * the background, with a warning. Without schedules, a configured
   * scheduler (API key and endpoint URL) is told so without waiting (the
   * endpoint's old schedules are removed) and failures are ignored. `where`
   * names the caller in log lines.
   * @example
   * ```ts
   * createServer(nodeListener(dispatch)).listen(8000, () => dispatch.startSchedules('my server').catch(console.error));
   * ```
   */
  async startSchedules(where = 'the endpoint'): Promise<void> {
    const some = this.#schedules.size > 0;
    if (!some) {
      // Nothing to declare: only tell a configured scheduler, without waiting, so that schedules removed from the code stop.
      if (this.config.hasApiKey && this.config.endpointUrlOrUndefined) {
        this.declareSchedules().then(
          ({ removed }) => {
            if (removed.length > 0) this.logger.info(`[dispatch] ${where}: schedules no longer in the code removed from the scheduler: ${removed.join(', ')}`);
          },
          () => {}, // an older scheduler, or none yet: there was nothing to declare
        );
      }
      return;
    }
    try {
      const { schedules, removed } = await this.declareSchedules();
      {
        const list = schedules.map((s) => `${s.name} ${JSON.stringify(s.cron)}`).join(', ');
        this.logger.info(
          `[dispatch] ${where}: ${schedules.length} schedule(s) declared to the scheduler${list ? ` (${list})` : ''}${removed.length ? `; removed: ${removed.join(', ')}` : ''}`,
        );
      }
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      this.logger.warn(`[dispatch] ${where}: cannot declare the schedules yet, trying again in the background: ${(err as Error).message}`);
      void this.#retrySchedules(where, 2);
    }
  }

  async #retrySchedules(where: string, first: number): Promise<void> {
    for (let attempt = first; ; attempt++) {
      await new Promise<void>((resolve) => setTimeout(resolve, Math.min(30_000, 1000 * 2 ** Math.min(attempt - 1, 5))).unref());
      try {
        await this.declareSchedules();
        this.logger.info(`[dispatch] ${where}: schedules declared to the scheduler after ${attempt} attempts`);
        return;
      } catch (err) {
        if (!isUnavailable(err)) {
          this.logger.error(`[dispatch] ${where}: cannot declare the schedules: ${(err as Error).message}`);
          return;
        }
      }
    }
  }

  /**
   * A call of a function by name with an exact `Any` input, for functions
   * written in other languages or served by other endpoints. Awaited inside a
   * Dispatch function, it resolves to the exact output `Any`.
   *
   * @example
   * ```ts
   * const out = await dispatch.rawCall('double', pack(Int64Value, { value: 21 }), { endpoint: 'http://go-app:8000' });
   * ```
   */
  rawCall(fn: string, input: IAny, options: { endpoint?: string; expiration?: DurationInput; version?: string } = {}): DurableCall<IAny | null> {
    if (!FUNCTION_NAME_PATTERN.test(fn)) throw new TypeError(`invalid function name ${JSON.stringify(fn)}`);
    return new DurableCall<IAny | null>({
      function: fn,
      endpoint: options.endpoint,
      args: [],
      encode: () => input,
      raw: true,
      options: {
        ...(options.expiration === undefined ? {} : { expirationMs: parseDuration(options.expiration, 'expiration') }),
        ...(options.version === undefined ? {} : { version: options.version }),
      },
    });
  }

  /** Starts a batch for fan-out. */
  batch(): Batch {
    return new Batch(this);
  }

  /** Dispatches calls (one request); journaled inside a Dispatch function. @internal */
  async dispatchCalls(calls: readonly DurableCall<unknown>[]): Promise<string[]> {
    if (calls.length === 0) return [];
    const execution = currentExecution();
    if (execution) return execution.dispatchCalls(calls);
    const endpoint = this.config.endpointUrl;
    const protoCalls: ICall[] = calls.map((c) => ({
      ...this.engine.toProtoCall(c, undefined),
      endpoint: c.endpoint ?? endpoint,
    }));
    return tracedDispatch(protoCalls, (carried) => this.#dispatchProto(carried));
  }

  /**
   * Waits for every call and resolves to their results in order; fails on the
   * first error. Takes calls as arguments or one iterable. See {@link combinators.gather}.
   * @example `const paths = await dispatch.gather(...clients.map((c) => generateInvoice(c)));`
   */
  readonly gather: typeof combinators.gather = combinators.gather;

  /**
   * Like `Promise.all` over calls, with one poll for all of them. Takes calls
   * as arguments or one iterable. See {@link combinators.all}.
   * @example `const [a, b] = await dispatch.all(double(1), double(2));`
   */
  readonly all: typeof combinators.all = combinators.all;

  /**
   * Like `Promise.allSettled` over calls. Takes calls as arguments or one
   * iterable. See {@link combinators.allSettled}.
   * @example `const outcomes = await dispatch.allSettled(users.map((u) => sendEmail(u)));`
   */
  readonly allSettled: typeof combinators.allSettled = combinators.allSettled;

  /**
   * The first success; an `AggregateError` of every failure if all fail.
   * Takes calls as arguments or one iterable. See {@link combinators.any}.
   * @example `const quote = await dispatch.any(quoteFromA(order), quoteFromB(order));`
   */
  readonly any: typeof combinators.any = combinators.any;

  /**
   * The first to settle, success or failure. Takes calls as arguments or one
   * iterable. See {@link combinators.race}.
   * @example `const winner = await dispatch.race(call(), dispatch.sleep('10s').then(() => 'timeout'));`
   */
  readonly race: typeof combinators.race = combinators.race;

  /**
   * A durable timer. Inside a Dispatch function the function is suspended
   * and resumed by the scheduler (at least 1 s: the protocol's shortest
   * wait); elsewhere it is a plain timer.
   *
   * @example
   * ```ts
   * await dispatch.sleep('5m');
   * ```
   */
  sleep(duration: DurationInput): Promise<void> {
    const ms = parseDuration(duration, 'sleep duration');
    const execution = currentExecution();
    if (execution) return execution.sleep(ms);
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  /**
   * An inline step: runs `fn` once and journals its result (or error), so a
   * replay returns the recorded outcome without running it again.
   *
   * Guarantee: the outcome is durable once the journal holding it has
   * reached the scheduler, which happens at the function's next suspension
   * (its next awaited call, sleep or fan-in). If the process dies before
   * that, the step runs again. Steps are for side effects that tolerate being
   * repeated in that window; for exactly-once effects, use a Dispatch
   * function call. Outside a Dispatch function, `fn` simply runs.
   *
   * @example
   * ```ts
   * const rate = await dispatch.step('fetch-rate', () => fetchExchangeRate('EUR'));
   * ```
   */
  step<T>(name: string, fn: () => T | Promise<T>): Promise<Awaited<T>> {
    if (typeof name !== 'string' || name === '') throw new TypeError('dispatch.step() needs a non-empty name');
    const execution = currentExecution();
    if (execution) return execution.step(name, fn) as Promise<Awaited<T>>;
    return Promise.resolve().then(fn) as Promise<Awaited<T>>;
  }

  /**
   * The call being run: dispatch IDs, function name and timestamps.
   * Throws outside a Dispatch function.
   * @example `const { dispatchId } = dispatch.context();`
   */
  context(): RunContext {
    const execution = currentExecution();
    if (!execution) throw new Error('dispatch.context() is only available inside a running Dispatch function');
    return execution.context;
  }

  /**
   * Decides the status of errors of a class (and its subclasses) thrown by
   * this instance's functions, before the module-level registrations.
   * @example `dispatch.registerErrorType(MaintenanceError, Status.TEMPORARY_ERROR)`
   */
  registerErrorType<E>(cls: Class<E>, handler: StatusHandler<E>): void {
    this.registry.registerErrorType(cls, handler);
  }

  /**
   * Decides the status of outputs of a class returned by this instance's
   * functions (for example, to retry a function that succeeded too early).
   * @example `dispatch.registerOutputType(DnsCheck, (c) => (c.verified ? Status.OK : Status.TEMPORARY_ERROR))`
   */
  registerOutputType<T>(cls: Class<T>, handler: StatusHandler<T>): void {
    this.registry.registerOutputType(cls, handler);
  }

  /**
   * The framework-free endpoint handler: `{ method, url, headers, body }` in,
   * `{ status, headers, body }` out. Adapters only convert to and from it.
   * @example `sendResponse(res, await dispatch.handler({ method: 'POST', url: req.url, headers: req.headers, body }));`
   */
  readonly handler = (request: EndpointRequest): Promise<EndpointResponse> => {
    this.#warnUnverified();
    // Counted in flight until the answer is whole: a streamed one (local resume, a batch's answers as they come)
    // until its rest is written.
    this.#inFlight++;
    let handled: Promise<EndpointResponse>;
    try {
      handled = handleEndpointRequest(this.#endpoint, request);
    } catch (err) {
      handled = Promise.reject(err);
    }
    return handled.then(
      (response) => {
        const rest = response.rest;
        if (!rest) {
          this.#untrack();
          return response;
        }
        return { ...response, rest: (write) => rest(write).finally(() => this.#untrack()) };
      },
      (err: unknown) => {
        this.#untrack();
        throw err;
      },
    );
  };

  /**
   * What the endpoint decides before reading a request's body (route,
   * method, declared size, content type, signature headers, replay, and
   * without a key whether `localAddress` is beyond loopback): the answer to
   * send at once, or `null` to read the body and call {@link handler}.
   * Adapters call it first so that a refused request costs no body read.
   * @example
   * ```ts
   * const early = dispatch.precheck({ method: req.method, url: req.url, headers: req.headers, localAddress: listeningAddress(req) });
   * if (early) return sendResponse(res, early);
   * ```
   */
  readonly precheck = (head: EndpointRequestHead): EndpointResponse | null => {
    this.#warnUnverified();
    return precheckEndpointRequest(this.#endpoint, head);
  };

  /**
   * Runs one decoded `RunRequest` and resolves to its `RunResponse`: the
   * protocol objects themselves, with no bytes, no HTTP and no signature.
   * This is the entry of an in-process transport (a scheduler running in the
   * app's process hands its requests to the app directly); over HTTP,
   * {@link handler} decodes, verifies and calls it. Counted in
   * {@link inFlight} and awaited by {@link drain} like a request to the
   * handler. An unknown function is answered with NOT_FOUND in the response;
   * it rejects only on a bug of the SDK.
   *
   * @example
   * ```ts
   * const response = await dispatch.runRequest({ function: 'greet', dispatchId: 'A1', input: encodeArgs(['Jane']) });
   * if (response.exit) console.log(response.status, response.exit.result);
   * else console.log('suspended on', response.poll?.calls?.length, 'calls');
   * ```
   */
  runRequest(request: IRunRequest): Promise<IRunResponse> {
    return this.#track(() => this.#run(request));
  }

  /** Runs a request, traced: what the handler and the in-process transport hand over. */
  #run(request: IRunRequest): Promise<IRunResponse> {
    return tracedRun(request, (trace) => this.engine.run(request, trace));
  }

  /**
   * The waiting parent's resume that a request's answer lets this process
   * run at once (local resume, `Engine.localResumeOf`): run by the HTTP
   * handler after the answer was sent (counted in {@link inFlight} with its
   * request until the answer is whole). A resume
   * that fails in the SDK or finds its execution gone answers null: the
   * scheduler then resumes the parent with a request of its own.
   */
  #localResume(request: IRunRequest, response: IRunResponse): LocalResumeRun | null {
    const parent = this.engine.localResumeOf(request, response);
    if (!parent) return null;
    const resume = parent.request;
    return {
      state: parent.state,
      run: () =>
        this.#run(resume).then(
          (answer) => (answer.stateRequired ? null : answer),
          (err: unknown) => {
            this.logger.warn(`[dispatch] the local resume of ${resume.function} ${resume.dispatchId} failed in the SDK (the scheduler resumes it as usual): ${(err as Error)?.stack ?? err}`);
            return null;
          },
        ),
    };
  }

  /**
   * Counts `work` in {@link inFlight} until it ends, then wakes {@link drain}
   * when nothing is left. One `then` (not an async function's await and
   * finally): each promise of a run costs its share of the promise hooks
   * that the engine's AsyncLocalStorage turns on.
   */
  #track<T>(work: () => Promise<T>): Promise<T> {
    this.#inFlight++;
    let running: Promise<T>;
    try {
      running = work();
    } catch (err) {
      running = Promise.reject(err);
    }
    return running.then(
      (value) => {
        this.#untrack();
        return value;
      },
      (err: unknown) => {
        this.#untrack();
        throw err;
      },
    );
  }

  #untrack(): void {
    if (--this.#inFlight === 0) for (const resolve of this.#drained.splice(0)) resolve();
  }

  /** Number of requests being handled. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Resolves once no request is being handled (graceful shutdown). */
  drain(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  #warnUnverified(): void {
    if (this.#warned) return;
    this.#warned = true;
    if (this.config.verificationKey || this.config.endpointUrlOrUndefined?.startsWith('bridge://')) return;
    this.logger.warn(
      this.config.acceptUnsigned
        ? '[dispatch] signature verification is turned off (verificationKey: false or DISPATCH_VERIFICATION_KEY=none): requests to this endpoint are accepted unsigned, from any address'
        : '[dispatch] DISPATCH_VERIFICATION_KEY is not set: requests to this endpoint are accepted without signature verification on loopback, ' +
            "and refused (401) if it listens beyond loopback; set it to the scheduler's public key (`dispatch run` does)",
    );
  }

  /**
   * Serves the endpoint on `DISPATCH_ENDPOINT_ADDR` (default
   * `127.0.0.1:8000`) with `node:http`, until SIGINT/SIGTERM, which finish
   * in-flight runs before closing.
   * @example `const server = await dispatch.serve();`
   */
  async serve(options: { port?: number; host?: string; signals?: boolean } = {}): Promise<import('../endpoint/node-server.js').DispatchServer> {
    const { startServer } = await import('../endpoint/node-server.js');
    if (this.#inProcess && !inProcessRegistry().host) {
      throw new ConfigurationError(
        `${IN_PROCESS_ENV}=1 is set but no in-process scheduler runs in this process: start the app with \`dispatch run --in-process -- node app.js\` ` +
          `or \`node --import @dispatch/scheduler/in-process app.js\`, or unset ${IN_PROCESS_ENV} to use a scheduler over HTTP`,
      );
    }
    this.#warnUnverified();
    const server = await startServer(this, options);
    try {
      await this.startSchedules('dispatch.serve()');
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  /**
   * Serves the endpoint, then calls `main` once it listens; resolves when the
   * server has stopped (SIGINT/SIGTERM, or `server.close()` from `main`,
   * which receives the running server). The seed style:
   *
   * @example
   * ```ts
   * dispatch.run(async () => { await greet.dispatch('Jane'); });
   * // a script that stops by itself:
   * dispatch.run(async (server) => { await work(); await server.close(); });
   * ```
   */
  async run(main?: (server: import('../endpoint/node-server.js').DispatchServer) => unknown, options: { port?: number; host?: string } = {}): Promise<void> {
    const server = await this.serve({ ...options, signals: true });
    try {
      await main?.(server);
    } catch (err) {
      await server.close();
      throw err;
    }
    await server.closed;
  }
}

/** The engine's options of a call from the user's. */
function callOptionsOf(o: DispatchCallOptions): CallOptions {
  const out: CallOptions = {};
  if (o.expiration !== undefined) out.expirationMs = parseDuration(o.expiration, 'expiration');
  if (o.version !== undefined) out.version = o.version;
  if (o.delay !== undefined) out.delayMs = parseDuration(o.delay, 'delay');
  if (o.startAt !== undefined) {
    const at = o.startAt instanceof Date ? o.startAt.getTime() : o.startAt;
    if (!Number.isFinite(at)) throw new TypeError(`startAt must be a valid Date or a time in ms since the epoch, got ${String(o.startAt)}`);
    out.startAtMs = at;
  }
  if (o.idempotencyKey !== undefined) {
    if (typeof o.idempotencyKey !== 'string' || o.idempotencyKey === '') throw new TypeError('idempotencyKey must be a non-empty string');
    out.idempotencyKey = o.idempotencyKey;
  }
  return out;
}

function isUnavailable(err: unknown): boolean {
  return err instanceof DispatchApiError && (err.code === 'unavailable' || err.code === 'deadline_exceeded');
}

function isListSchema(schema: InputSchema<unknown>): boolean {
  const def = (schema as unknown as { _zod?: { def?: { type?: string } } })._zod?.def;
  return def?.type === 'tuple' || def?.type === 'array';
}

export { ConfigurationError };
export type { Status };
