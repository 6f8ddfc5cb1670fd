/**
 * An in-process scheduler for an app's own tests: a real `Scheduler` on
 * in-memory SQLite and the app's endpoint on a free loopback port. By
 * default the scheduler hands its RunRequests to the app's `Dispatch`
 * instance directly (the in-process transport: no HTTP, no signatures);
 * `transport: 'http'` makes them speak signed RunRequests over HTTP, as in
 * production.
 * @module
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CallAttempt, type CallInfo, type CallState, Dispatch, DispatchClient, type DispatchFunction, Status } from '@dispatch/core';
import { inProcessRegistry, ResolvedConfig } from '@dispatch/core/protocol';
import { sendResponse } from '@dispatch/core/node';
import { Scheduler, type SchedulerOptions } from '@dispatch/scheduler';

/**
 * Options of {@link startTestScheduler}: the scheduler's options (except
 * where it stores and listens), plus a few of the harness.
 * @example
 * const t = await startTestScheduler(dispatch, { maxAttempts: 5, timeoutMs: 10_000 });
 */
export interface TestSchedulerOptions extends Omit<SchedulerOptions, 'db' | 'store' | 'port' | 'host' | 'apiKeys' | 'transport'> {
  /**
   * How the scheduler reaches the app: `'in-process'` (default) hands each
   * RunRequest to the `Dispatch` instance as an object — no HTTP, no
   * signatures, faster tests; `'http'` sends signed RunRequests to the
   * app's endpoint over HTTP, as in production (for tests of the wire:
   * signatures, body limits, adapters).
   * @example { transport: 'http' }
   */
  transport?: 'in-process' | 'http';
  /**
   * Over HTTP (`transport: 'http'`), sign requests and have the app verify
   * them with the scheduler's key, as in production. Default `true`.
   * @example { transport: 'http', verify: false }
   */
  verify?: boolean;
  /**
   * How long {@link TestScheduler.call} and {@link TestScheduler.run} wait
   * for a result, in ms. Default 30,000.
   * @example { timeoutMs: 5_000 }
   */
  timeoutMs?: number;
}

/**
 * One run of a call — an attempt, or a resume (`resume: true`) — as the
 * client's `CallAttempt`, with its error as its name and message.
 * @example
 * const [first] = await t.attempts(id);
 * expect(first.status).toBe(Status.TEMPORARY_ERROR);
 */
export interface TestAttempt extends Omit<CallAttempt, 'error'> {
  error?: { name: string; message: string };
}

/**
 * What the scheduler knows about a call, decoded.
 * @example
 * const call = await t.get(id);
 * expect(call.children).toHaveLength(3);
 */
export interface TestCall<R = unknown> {
  id: string;
  function: string;
  state: CallState;
  status: Status;
  statusName: string;
  /** Attempts: the first run and each retry (1 for a call that never failed). */
  attempts: number;
  /** Resumes: runs that continued the call after a suspension. */
  resumes: number;
  parentId: string | null;
  rootId: string;
  /** Child dispatch IDs, oldest first. */
  children: string[];
  /** The decoded return value, once succeeded. */
  output: R | undefined;
  /** The decoded error (same name, message, status and fields), once failed. */
  error: Error | undefined;
  createdAt: Date;
  finishedAt: Date | null;
}

/**
 * The outcome of {@link TestScheduler.run}.
 * @example
 * const r = await t.run(charge, 'card_1');
 * if (r.status !== Status.OK) console.log(r.error?.message, r.attempts);
 */
export interface TestRun<R> {
  id: string;
  state: CallState;
  status: Status;
  statusName: string;
  value: R | undefined;
  error: Error | undefined;
  /** Attempts: the first run and each retry (1 for a call that never failed). */
  attempts: number;
  /** Resumes: runs that continued the call after a suspension. */
  resumes: number;
}

const silent = { warn() {}, error() {}, info() {} };

/** Serves the framework-free endpoint handler (`dispatch.handler`) with node:http. */
function listener(dispatch: Dispatch): http.RequestListener {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      dispatch
        .handler({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks), streaming: true })
        .then(
          (response) => sendResponse(res, response),
          () => res.destroy(),
        );
    });
  };
}

/**
 * A scheduler and an endpoint serving one `Dispatch` instance, in this
 * process. Close it when the test ends.
 */
export class TestScheduler {
  /** The scheduler (its API, events, `concurrency()`, `store`...). */
  readonly scheduler: Scheduler;
  /** The Dispatch instance it drives. */
  readonly dispatch: Dispatch;
  /** A client of the scheduler's API that decodes with the instance's registry (its error and output classes). */
  readonly client: DispatchClient;
  /** URL of the app's endpoint (the `Call.endpoint` of its functions). */
  readonly endpointUrl: string;
  /** How the scheduler reaches the app: `'in-process'` (default) or `'http'`. */
  readonly transport: 'in-process' | 'http';
  readonly #server: http.Server;
  readonly #timeoutMs: number;
  readonly #restore: () => void;
  #closing: Promise<void> | undefined;

  /** @internal Use {@link startTestScheduler}. */
  constructor(init: {
    scheduler: Scheduler;
    dispatch: Dispatch;
    server: http.Server;
    endpointUrl: string;
    transport: 'in-process' | 'http';
    timeoutMs: number;
    restore: () => void;
  }) {
    this.scheduler = init.scheduler;
    this.dispatch = init.dispatch;
    this.client = new DispatchClient({ apiUrl: init.scheduler.url, apiKey: init.scheduler.apiKey, registry: init.dispatch.registry });
    this.#server = init.server;
    this.endpointUrl = init.endpointUrl;
    this.transport = init.transport;
    this.#timeoutMs = init.timeoutMs;
    this.#restore = init.restore;
  }

  /** URL of the scheduler's API (`DISPATCH_API_URL`). */
  get apiUrl(): string {
    return this.scheduler.url;
  }

  /** The scheduler's API key (`DISPATCH_API_KEY`). */
  get apiKey(): string {
    return this.scheduler.apiKey;
  }

  /**
   * Dispatches a call through the scheduler's API (as `fn.dispatch(...)`
   * does) and resolves to its dispatch ID, without waiting.
   * @example
   * const id = await t.start(sendEmail, 'ada@example.com');
   */
  start<A extends unknown[], R>(fn: DispatchFunction<A, R>, ...args: A): Promise<string> {
    return fn.dispatch(...args);
  }

  /**
   * Runs a call to completion and resolves to its result, or rejects with
   * its error (the same name, message, status and fields as thrown).
   * @example
   * expect(await t.call(add, 2, 40)).toBe(42);
   * await expect(t.call(charge, 'stolen')).rejects.toThrow('card declined');
   */
  async call<A extends unknown[], R>(fn: DispatchFunction<A, R>, ...args: A): Promise<R> {
    const r = await this.run(fn, ...args);
    if (r.status !== Status.OK) throw r.error ?? new Error(`${fn.functionName} ended with ${r.statusName}`);
    return r.value as R;
  }

  /**
   * Runs a call to completion and resolves to its outcome, whether it
   * succeeded or not.
   * @example
   * const r = await t.run(flaky);
   * expect(r).toMatchObject({ status: Status.OK, attempts: 3 });
   */
  async run<A extends unknown[], R>(fn: DispatchFunction<A, R>, ...args: A): Promise<TestRun<R>> {
    const id = await this.start(fn, ...args);
    return this.outcome<R>(id);
  }

  /**
   * Waits for a call dispatched earlier (by the test or by the app) and
   * resolves to its outcome. Rejects if it does not finish in time.
   * @example
   * const r = await t.outcome(id, 5_000);
   */
  async outcome<R = unknown>(id: string, timeoutMs = this.#timeoutMs): Promise<TestRun<R>> {
    const waited = await this.client.wait<R>(id, { timeoutMs });
    const info = await this.client.get(id);
    if (!waited.done) {
      const last = info.attemptHistory.at(-1)?.error;
      throw new Error(
        `${info.function} ${id} did not finish within ${timeoutMs} ms: it is ${info.state} after ${info.attempts} attempt(s) and ${info.resumes} resume(s)${last ? `, last error ${last.name}: ${last.message}` : ''}`,
      );
    }
    return {
      id,
      state: waited.state,
      status: waited.status,
      statusName: waited.statusName,
      value: waited.status === Status.OK ? waited.value : undefined,
      error: waited.error,
      attempts: info.attempts,
      resumes: info.resumes,
    };
  }

  /**
   * What the scheduler knows about a call. Rejects for an unknown ID.
   * @example
   * expect((await t.get(id)).state).toBe('succeeded');
   */
  async get<R = unknown>(id: string): Promise<TestCall<R>> {
    return testCall(await this.client.get<R>(id));
  }

  /**
   * The runs of a call, oldest first: attempts, and resumes (`resume: true`).
   * @example
   * expect((await t.attempts(id)).map((a) => a.statusName)).toEqual(['TEMPORARY_ERROR', 'OK']);
   */
  async attempts(id: string): Promise<TestAttempt[]> {
    return (await this.client.get(id)).attemptHistory.map(({ error, ...a }) => (error ? { ...a, error: { name: error.name, message: error.message } } : a));
  }

  /**
   * Calls of the scheduler, newest first (all of them by default).
   * @example
   * const failed = await t.calls({ states: ['failed'] });
   */
  async calls(filter: { states?: CallState[]; function?: string } = {}): Promise<TestCall[]> {
    const out: TestCall[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.client.list({ ...filter, limit: 1000, ...(cursor ? { cursor } : {}) });
      for (const c of page.calls) out.push(await this.get(c.dispatchId));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return out;
  }

  /**
   * Stops the endpoint and the scheduler and gives the Dispatch instance its
   * own configuration back.
   * @example
   * afterEach(() => t.close());
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await new Promise<void>((resolve) => {
        this.#server.close(() => resolve());
        this.#server.closeAllConnections();
      });
      await this.scheduler.close();
      this.#restore();
    })();
    return this.#closing;
  }

  /** `await using t = await startTestScheduler(dispatch)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** The test's view of a call the client decoded. */
function testCall<R>(info: CallInfo<R>): TestCall<R> {
  return {
    id: info.dispatchId,
    function: info.function,
    state: info.state,
    status: info.status,
    statusName: info.statusName,
    attempts: info.attempts,
    resumes: info.resumes,
    parentId: info.parentDispatchId,
    rootId: info.rootDispatchId,
    children: info.children,
    output: info.output,
    error: info.error,
    createdAt: info.createdAt,
    finishedAt: info.finishedAt,
  };
}

/**
 * Points a Dispatch instance at a test scheduler: its API URL and key, its
 * endpoint URL and the key it verifies requests with. Answers a function
 * that gives the instance its configuration back.
 */
function reconfigure(dispatch: Dispatch, config: ResolvedConfig, client: DispatchClient): () => void {
  const own = (key: string) => Object.getOwnPropertyDescriptor(dispatch, key);
  const previousConfig = own('config');
  const previousClient = own('client');
  Object.defineProperty(dispatch, 'config', { value: config, configurable: true, enumerable: true, writable: false });
  Object.defineProperty(dispatch, 'client', { value: client, configurable: true, enumerable: false, writable: false });
  if (dispatch.config !== config || dispatch.client !== client) {
    throw new Error('@dispatch/testing cannot configure this Dispatch instance (a different version of @dispatch/core?)');
  }
  return () => {
    if (previousConfig) Object.defineProperty(dispatch, 'config', previousConfig);
    if (previousClient) Object.defineProperty(dispatch, 'client', previousClient);
    else delete (dispatch as unknown as Record<string, unknown>).client;
  };
}

/**
 * Starts a scheduler on in-memory SQLite and serves `dispatch`'s endpoint on
 * a free loopback port; the instance is configured to dispatch to that
 * scheduler and to verify its signatures until {@link TestScheduler.close}.
 * Without an instance, a new one is created (`t.dispatch`). By default the
 * scheduler hands its RunRequests to the instance in process (no HTTP, no
 * signatures); `{ transport: 'http' }` sends them over HTTP, signed.
 *
 * Retries are fast by default (backoff from 10 ms, at most 200 ms), and the
 * scheduler logs nothing unless given a `logLevel`.
 *
 * @example
 * ```ts
 * import { startTestScheduler } from '@dispatch/testing';
 * import { dispatch, checkout } from '../src/app.js';
 *
 * const t = await startTestScheduler(dispatch);
 * expect(await t.call(checkout, 'user_1', 'order_1')).toBe('completed order_1');
 * await t.close();
 * ```
 */
export async function startTestScheduler(dispatch?: Dispatch, options: TestSchedulerOptions = {}): Promise<TestScheduler> {
  const { verify = true, timeoutMs = 30_000, transport = 'in-process', ...schedulerOptions } = options;
  if (transport !== 'in-process' && transport !== 'http') throw new RangeError(`transport must be 'in-process' or 'http', got ${JSON.stringify(transport)}`);
  const app = dispatch ?? new Dispatch({ env: {}, logger: silent });
  const scheduler = await Scheduler.start({
    logLevel: 'silent',
    backoff: { initialMs: 10, maxMs: 200 },
    ...schedulerOptions,
    db: ':memory:',
    port: 0,
    host: '127.0.0.1',
    transport,
  });
  let server: http.Server | undefined;
  try {
    server = http.createServer({ keepAliveTimeout: 65_000 }, listener(app));
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(0, '127.0.0.1', () => {
        server!.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    const endpointUrl = `http://127.0.0.1:${port}`;
    const config = new ResolvedConfig({
      env: {},
      apiUrl: scheduler.url,
      apiKey: scheduler.apiKey,
      endpointUrl,
      endpointAddr: `127.0.0.1:${port}`,
      verificationKey: verify ? scheduler.verificationKey : null,
      maxBodyBytes: app.config.maxBodyBytes,
    });
    const reconfigured = reconfigure(app, config, new DispatchClient({ apiUrl: scheduler.url, apiKey: scheduler.apiKey }));
    // In process: calls to this endpoint are handed to the instance (the endpoint still serves HTTP too).
    const unregister = transport === 'in-process' ? inProcessRegistry().register({ endpointUrl: () => endpointUrl, runRequest: (r) => app.runRequest(r) }) : () => {};
    const restore = () => {
      unregister();
      reconfigured();
    };
    return new TestScheduler({ scheduler, dispatch: app, server, endpointUrl, transport, timeoutMs, restore });
  } catch (err) {
    server?.close();
    await scheduler.close();
    throw err;
  }
}
