/**
 * The `Dispatch` class: registers functions, dispatches calls, and serves the
 * endpoint that runs them.
 * @module
 */
import { ENGINE_TRACER, tracedDispatch, tracedRun } from '../trace/app.js';
import { type CallOptions, DurableCall, isDurableCall } from './call.js';
import * as combinators from './combinators.js';
import { DispatchClient } from '../client/client.js';
import { ConfigurationError, type DispatchOptions, ResolvedConfig } from './config.js';
import { parseDuration, type DurationInput } from './duration.js';
import { Engine } from '../engine/engine.js';
import { currentExecution, type EngineFunction, type RunContext } from '../engine/execution.js';
import { InvalidArgumentError } from '../status/errors.js';
import { describeIssues } from './issues.js';
import { type EndpointApp, type EndpointRequest, type EndpointResponse, handleEndpointRequest } from '../endpoint/handler.js';
import { type EndpointRequestHead, precheckEndpointRequest } from '../endpoint/precheck.js';
import { ReplayCache } from '../signature/replay-cache.js';
import { FUNCTION_NAME_PATTERN } from '../protocol/constants.js';
import { excerpt } from '../protocol/excerpt.js';
import type { IAny, ICall, IRunRequest, IRunResponse } from '../protocol/proto.js';
import { decodeArgs, encodeArgs } from '../serde/serde.js';
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
   * How to start a call from outside a Dispatch function, for the error
   * of one awaited there (default: `use <name>.dispatch(...), or add it to
   * dispatch.batch()`). Frameworks that start calls their own way set it.
   * @example 'inject DispatchService and call dispatchService.dispatch(this.billing.checkout, ...args)'
   */
  startHint?: string;
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
  /** A call with per-call options (expiration, version). */
  withOptions(options: { expiration?: DurationInput; version?: string }): (...args: A) => DurableCall<R>;
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
  /** Client used to dispatch calls, instead of one built from apiKey/apiUrl (tests, in-process schedulers). */
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
  readonly #endpoint: EndpointApp;
  #client: Pick<DispatchClient, 'dispatch'> | undefined;
  #inFlight = 0;
  #drained: (() => void)[] = [];
  #warned = false;

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
          (carried) => this.client.dispatch(carried),
        ),
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
      get logger() {
        return dispatch.logger;
      },
      hasFunction: (name) => this.hasFunction(name),
      functionNames: () => this.functionNames,
      runRequest: (request) => tracedRun(request, (trace) => this.engine.run(request, trace)),
    };
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
    const schema = options.input as InputSchema<unknown> | undefined;
    const listSchema = schema && isListSchema(schema);
    const defaultExpirationMs = options.expiration === undefined ? undefined : parseDuration(options.expiration, 'expiration');
    this.#functions.set(name, {
      name,
      onIncompatibleState: options.onIncompatibleState ?? 'fail',
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
    const make = (args: A, callOptions: CallOptions) =>
      new DurableCall<Awaited<R>>({ function: name, args, encode: () => encodeArgs(args), options: callOptions, startHint: options.startHint });
    const baseOptions: CallOptions = defaultExpirationMs === undefined ? {} : { expirationMs: defaultExpirationMs };
    const handle = ((...args: A) => make(args, baseOptions)) as DispatchFunction<A, Awaited<R>>;
    Object.defineProperty(handle, 'name', { value: name });
    Object.defineProperty(handle, 'functionName', { value: name, enumerable: true });
    handle.dispatch = async (...args: A) => {
      const [id] = await this.dispatchCalls([make(args, baseOptions)]);
      return id as string;
    };
    handle.withOptions = (o) => {
      const callOptions: CallOptions = {
        ...baseOptions,
        ...(o.expiration === undefined ? {} : { expirationMs: parseDuration(o.expiration, 'expiration') }),
        ...(o.version === undefined ? {} : { version: o.version }),
      };
      return (...args: A) => make(args, callOptions);
    };
    return handle;
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
    return tracedDispatch(protoCalls, (carried) => this.client.dispatch(carried));
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
    return this.#track(() => handleEndpointRequest(this.#endpoint, request));
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
    return this.#track(() => tracedRun(request, (trace) => this.engine.run(request, trace)));
  }

  /** Counts `work` in {@link inFlight} until it ends, then wakes {@link drain} when nothing is left. */
  async #track<T>(work: () => Promise<T>): Promise<T> {
    this.#inFlight++;
    try {
      return await work();
    } finally {
      if (--this.#inFlight === 0) for (const resolve of this.#drained.splice(0)) resolve();
    }
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
    this.#warnUnverified();
    return startServer(this, options);
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

function isListSchema(schema: InputSchema<unknown>): boolean {
  const def = (schema as unknown as { _zod?: { def?: { type?: string } } })._zod?.def;
  return def?.type === 'tuple' || def?.type === 'array';
}

export { ConfigurationError };
export type { Status };
