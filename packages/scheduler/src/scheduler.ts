/**
 * The Dispatch scheduler: API server, run loop and store, in one object.
 * @module
 */
import { type KeyObject, createPublicKey, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  callStateNumber,
  callStateOf,
  DEFAULT_WAIT_TIMEOUT_MS,
  generateSigningKeyPair,
  loadTracing,
  MAX_WAIT_TIMEOUT_MS,
  parseSigningKey,
  privateKeyToBase64,
  privateKeyToPem,
  proto,
  publicKeyToBase64,
  publicKeyToPem,
  Status,
  statusName,
} from '@dispatch/core/protocol';
import { createApiServer } from './api/server.js';
import { resolveBackoff } from './run/backoff.js';
import { toCallInfo } from './api/call-info.js';
import { addLimitWaits } from './api/limit-info.js';
import { ConcurrencyController, type ConcurrencySnapshot } from './run/concurrency.js';
import { DASHBOARD_SECRET_META, Dashboard, newDashboardSecret } from './dashboard/dashboard.js';
import { newDispatchId } from './store/dispatch-id.js';
import { EndpointClient, HttpTransport } from './run/http-transport.js';
import { InProcessTransport } from './run/in-process-transport.js';
import { RequestSigner } from './run/request-signer.js';
import type { EndpointTransport } from './run/transport.js';
import type { FinishedEvent, SchedulerEvents } from './events.js';
import { Logger } from './logger.js';
import { delayMsOf, RunLoop, expirationMsOf } from './run/run-loop.js';
import { type CircuitSnapshot, EndpointCircuits } from './run/circuit.js';
import { CrashQuarantine } from './run/quarantine.js';
import { RunFaults } from './run/faults.js';
import { SchedulerError } from './errors.js';
import { SCHEDULER_DEFAULTS, type SchedulerOptions } from './options.js';
import { isPgUrl, PgStore } from './store/pg/pg-store.js';
import { SqliteStore } from './store/sqlite/sqlite-store.js';
import { limitsOfCall } from './store/limits.js';
import { type CallState, isFinished, type ListFilter, type NewCall, type Store } from './store/store.js';
import { validateCall } from './run/validate.js';
import { checkApiKeys, newApiKey } from './api/api-keys.js';
import { tooManyCalls } from './api/call-count.js';
import { FailureThrottle } from './api/failure-throttle.js';
import { urlPassword } from './redact.js';
import { Schedules, toScheduleInfo } from './schedules/schedules.js';
import { METRICS_CONTENT_TYPE, SchedulerMetrics } from './observe/metrics.js';
import { MIN_API_KEY_LENGTH } from './api/api-keys.js';

/**
 * The answer of {@link Scheduler.wait}.
 * @example
 * const r = await scheduler.wait(id, 10_000);
 * if (r.done && r.status === Status.OK) console.log(r.result.output);
 */
export type WaitResult =
  | { done: true; state: CallState; status: Status; result: proto.ICallResult }
  | { done: false; state: CallState };

/**
 * Filter of {@link Scheduler.list}.
 * @example
 * const f: ListOptions = { states: ['failed'], createdAfter: new Date(Date.now() - 3_600_000) };
 */
export interface ListOptions extends Omit<ListFilter, 'createdAfter' | 'createdBefore'> {
  createdAfter?: Date | number;
  createdBefore?: Date | number;
}

/**
 * A page of {@link Scheduler.list}.
 * @example
 * const { calls, nextCursor, counts } = await scheduler.list({ limit: 20 });
 */
export interface ListResult {
  calls: proto.ICallInfo[];
  nextCursor: string | null;
  counts: Record<CallState, number>;
}

const time = (t: Date | number | undefined) => (t === undefined ? undefined : typeof t === 'number' ? t : t.getTime());

/**
 * A running Dispatch scheduler.
 *
 * Events (see `events.ts`): `attempt` after each run attempt, `finished` when
 * a call finishes, `dispatched` when calls are accepted, `concurrency` when
 * an adaptive limit changes.
 * @example
 * const scheduler = await Scheduler.start({ db: ':memory:', port: 0 });
 * process.env.DISPATCH_API_URL = scheduler.url;
 * process.env.DISPATCH_API_KEY = scheduler.apiKey;
 * process.env.DISPATCH_VERIFICATION_KEY = scheduler.verificationKey;
 * const [id] = await scheduler.dispatch([{ function: 'greet', endpoint: 'http://127.0.0.1:8000', input }]);
 * console.log(await scheduler.wait(id!, 30_000));
 * await scheduler.close();
 */
export class Scheduler extends EventEmitter<SchedulerEvents> {
  /** Base URL of the API (`DISPATCH_API_URL`). */
  readonly url: string;
  /** The first API key (`DISPATCH_API_KEY`). */
  readonly apiKey: string;
  /** Every accepted API key. */
  readonly apiKeys: readonly string[];
  /** Base64 of the raw Ed25519 public key (`DISPATCH_VERIFICATION_KEY`). */
  readonly verificationKey: string;
  /** The same public key as PEM. */
  readonly verificationKeyPem: string;
  /** The store (shared with the run loop). */
  readonly store: Store;
  /** This instance's owner ID in leases. */
  readonly instanceId: string;
  /** The schedules apps declared (list, pause, resume, remove) and the ticker that runs them. */
  readonly schedules: Schedules;
  /**
   * The Prometheus metrics served at `/metrics`; a feature adds its own
   * counters to them (`scheduler.metrics.counter(...)`).
   */
  readonly metrics: SchedulerMetrics;

  readonly #server: http.Server;
  readonly #loop: RunLoop;
  readonly #transport: EndpointTransport;
  readonly #limits: ConcurrencyController;
  readonly #faults: RunFaults;
  readonly #log: Logger;
  readonly #ownsStore: boolean;
  readonly #defaultExpirationMs: number;
  readonly #maxExpirationMs: number;
  readonly #maxCallsPerRequest: number;
  readonly #waiters = new Map<string, Set<() => void>>();
  #recheckTimer: NodeJS.Timeout | null = null;
  readonly #unsubscribe: (() => void) | undefined;
  #closing: Promise<void> | null = null;
  #dashboard: Dashboard | null = null;

  /** `dispatch_signals_total` of `/metrics`. */
  readonly #signals: { inc(labels: { outcome: 'delivered' | 'kept' }): void };

  private constructor(init: {
    url: string;
    apiKeys: string[];
    publicKey: KeyObject;
    store: Store;
    ownsStore: boolean;
    server: http.Server;
    loop: RunLoop;
    transport: EndpointTransport;
    limits: ConcurrencyController;
    faults: RunFaults;
    log: Logger;
    instanceId: string;
    metrics: SchedulerMetrics;
    defaultExpirationMs: number;
    maxExpirationMs: number;
    maxCallsPerRequest: number;
    schedules: Schedules;
  }) {
    super();
    this.schedules = init.schedules;
    this.url = init.url;
    this.apiKeys = Object.freeze([...init.apiKeys]);
    this.apiKey = init.apiKeys[0] ?? '';
    this.verificationKey = publicKeyToBase64(init.publicKey);
    this.verificationKeyPem = publicKeyToPem(init.publicKey);
    this.store = init.store;
    this.#ownsStore = init.ownsStore;
    this.#server = init.server;
    this.#loop = init.loop;
    this.#transport = init.transport;
    this.#limits = init.limits;
    this.#faults = init.faults;
    this.#log = init.log;
    this.instanceId = init.instanceId;
    this.metrics = init.metrics;
    this.#signals = init.metrics.counter('signals_total', 'Signals received through the API: delivered to a waiting call, or kept until it waits', ['outcome']);
    this.#defaultExpirationMs = init.defaultExpirationMs;
    this.#maxExpirationMs = init.maxExpirationMs;
    this.#maxCallsPerRequest = init.maxCallsPerRequest;
    this.#unsubscribe = this.store.subscribe?.((change) => {
      if (change.kind === 'due') this.#loop.wake();
      else this.#notifyWaiters(change.id);
    });
  }

  /**
   * Opens the store, loads or creates the keys, starts the API server and the
   * run loop. Calls left running by a previous process run again.
   * @example
   * const scheduler = await Scheduler.start({ db: '/var/lib/dispatch/dispatch.db', port: 4450 });
   */
  static async start(options: SchedulerOptions = {}): Promise<Scheduler> {
    const d = SCHEDULER_DEFAULTS;
    const log = new Logger(options.logLevel ?? d.logLevel, options.logger, undefined, options.logFormat ?? d.logFormat);
    for (const key of options.apiKeys ?? []) log.redactor.add(key);
    const metricsToken = options.metricsToken;
    if (metricsToken !== undefined) {
      if (metricsToken.trim() !== metricsToken || metricsToken.length < MIN_API_KEY_LENGTH) {
        throw new RangeError(
          `the metrics token has ${metricsToken.length} characters${metricsToken.trim() !== metricsToken ? ' and whitespace around it' : ''}; it needs at least ${MIN_API_KEY_LENGTH}, without surrounding whitespace: use a random one, e.g. node -e "console.log(require('crypto').randomBytes(24).toString('base64url'))"`,
        );
      }
      log.redactor.add(metricsToken);
    }
    if (typeof options.signingKey === 'string') log.redactor.add(options.signingKey);
    if (options.db) log.redactor.add(urlPassword(options.db));
    const requestTimeoutMs = positive('requestTimeoutMs', options.requestTimeoutMs ?? d.requestTimeoutMs);
    const defaultExpirationMs = positive('defaultExpirationMs', options.defaultExpirationMs ?? d.defaultExpirationMs);
    const maxExpirationMs = positive('maxExpirationMs', options.maxExpirationMs ?? d.maxExpirationMs);
    const leaseMs = positive('leaseMs', options.leaseMs ?? d.leaseMs);
    const maxCallsPerRequest = options.maxCallsPerRequest ?? d.maxCallsPerRequest;
    if (!(Number.isInteger(maxCallsPerRequest) && maxCallsPerRequest >= 1)) {
      throw new RangeError(`maxCallsPerRequest must be an integer ≥ 1, got ${maxCallsPerRequest}`);
    }
    if (options.maxAttempts !== undefined && !(Number.isInteger(options.maxAttempts) && options.maxAttempts >= 1)) {
      throw new RangeError(`maxAttempts must be an integer ≥ 1, got ${options.maxAttempts}`);
    }
    const backoff = resolveBackoff(options.backoff);
    const instanceId = `sched-${randomBytes(6).toString('hex')}`;
    let emit: Scheduler | null = null;
    const limits = new ConcurrencyController(options.concurrency, (snapshot, previous) => {
      // Decreases at info (the endpoint is struggling), increases at debug.
      log.log(
        snapshot.limit < previous ? 'info' : 'debug',
        `concurrency ${snapshot.function} at ${snapshot.endpoint}: limit ${Math.floor(previous)} → ${Math.floor(snapshot.limit)} (${snapshot.inFlight} in flight)`,
      );
      emit?.emit('concurrency', snapshot);
    });

    const ownsStore = !options.store;
    const rawStore = options.store ?? (await openStore(options, log));
    const metrics: SchedulerMetrics = new SchedulerMetrics({
      live: rawStore.countLive ? (now: number) => store.countLive!(now) : undefined,
      limits: () => limits.all(),
    });
    const store: Store = metrics.timeStore(rawStore);
    const tracing = await loadTracing();
    try {
      let privateKey: KeyObject;
      if (options.signingKey === undefined) {
        const fresh = generateSigningKeyPair();
        privateKey = parseSigningKey(await store.initMeta('signing_key', privateKeyToPem(fresh.privateKey)));
      } else {
        privateKey = typeof options.signingKey === 'string' ? parseSigningKey(options.signingKey) : options.signingKey;
      }
      const publicKey = createPublicKey(privateKey);
      const apiKeys = options.apiKeys && options.apiKeys.length > 0 ? options.apiKeys : [await store.initMeta('api_key', newApiKey())];
      checkApiKeys(apiKeys);
      for (const key of apiKeys) log.redactor.add(key);
      log.redactor.add(privateKeyToBase64(privateKey)).add(privateKeyToBase64(privateKey, 'seed+public'));

      const circuits = new EndpointCircuits(options.circuit, {
        log: (level, line) => log.log(level, line),
        waiting: store.countWaiting ? (endpoint) => store.countWaiting!(endpoint) : undefined,
        onChange: (snapshot) => emit?.emit('circuit', snapshot),
      });
      const faults = new RunFaults(circuits, new CrashQuarantine(options.quarantineAfter ?? d.quarantineAfter));
      const transportKind = options.transport ?? 'http';
      if (transportKind !== 'http' && transportKind !== 'in-process') {
        throw new RangeError(`transport must be 'http' or 'in-process', got ${JSON.stringify(transportKind)}`);
      }
      const signatureSessions = metrics.counter(
        'signature_sessions_total',
        'Signature sessions with endpoints (HMAC-SHA256 instead of Ed25519): opened, refused (the endpoint forgot one: the request went again with Ed25519) or given_up (it forgets them at once)',
        ['endpoint', 'outcome'],
      );
      const httpTransport = new HttpTransport(new EndpointClient({ timeoutMs: requestTimeoutMs }), new RequestSigner(privateKey), {
        onConnected: (endpoint) => faults.connected(endpoint),
        onSession: (endpoint, outcome) => {
          signatureSessions.inc({ endpoint, outcome });
          if (outcome === 'given_up') {
            log.warn(
              `endpoint ${endpoint} forgot three signature sessions soon after opening them (several processes behind one URL?): ` +
                'requests to it are signed with Ed25519 from now on, ~0.14 ms of CPU more each; give each process its own URL to keep sessions',
              { event: 'signature_session', endpoint, outcome },
            );
          } else log.debug(`signature session with ${endpoint}: ${outcome}`, { event: 'signature_session', endpoint, outcome });
        },
      });
      const transport: EndpointTransport = transportKind === 'in-process' ? new InProcessTransport(httpTransport, requestTimeoutMs) : httpTransport;
      const loop = new RunLoop({
        store,
        owner: instanceId,
        transport,
        concurrency: limits,
        faults,
        backoff,
        leaseMs,
        defaultExpirationMs,
        maxExpirationMs,
        maxAttempts: options.maxAttempts,
        claimBatch: options.claimBatch ?? d.claimBatch,
        maxInFlight: options.maxInFlight ?? d.maxInFlight,
        orphans: options.orphans ?? d.orphans,
        // In process, asking for a state back (RunResponse.state_required) costs no network round trip: never resent.
        elideStateAbove: options.elideStateAbove ?? (transportKind === 'in-process' ? 0 : d.elideStateAbove),
        localResume: options.localResume ?? true,
        log,
        metrics,
        tracing,
        onAttempt: (e) => emit?.emit('attempt', e),
        onFinished: (e) => {
          if (emit) emit.#finished(e);
        },
      });
      let scheduler: Scheduler | null = null;
      // Counters of issue 15's features (the registry's own extension point).
      const scheduleTicks = metrics.counter('schedule_ticks_total', 'Ticks of cron schedules this instance ran (dispatched) or skipped', ['schedule', 'outcome']);
      if (rawStore instanceof PgStore) {
        const vacuums = metrics.counter(
          'store_vacuums_total',
          'Vacuums of the calls table (PostgreSQL) by this instance: done, skipped (another instance was at it) or failed',
          ['outcome'],
        );
        rawStore.onVacuum((e) => {
          vacuums.inc({ outcome: e.outcome });
          log.debug(`vacuum of the calls table: ${e.outcome} in ${e.durationMs} ms${e.error ? ` (${e.error})` : ''}`, { event: 'store_vacuum', ...e });
        });
      }
      const schedules = new Schedules({
        store,
        log,
        defaultExpirationMs,
        maxExpirationMs,
        onDispatched: (dispatchIds, functions) => {
          loop.wake();
          emit?.emit('dispatched', { dispatchIds, functions });
        },
        onTick: (schedule, outcome, ticks) => scheduleTicks.inc({ schedule, outcome }, ticks),
      });
      const dashboardSecret = options.dashboard === false ? null : await store.initMeta(DASHBOARD_SECRET_META, newDashboardSecret());
      const throttle = new FailureThrottle();
      const server = createApiServer({
        apiKeys,
        maxBodyBytes: options.maxBodyBytes ?? d.maxBodyBytes,
        maxCallsPerRequest,
        throttle,
        log,
        metrics: { text: () => metrics.text(), contentType: METRICS_CONTENT_TYPE, token: metricsToken },
        handlers: {
          dispatch: async (req) => ({ dispatchIds: await scheduler!.dispatch(req.calls ?? []) }),
          wait: (req, signal) => scheduler!.#waitRequest(req, signal),
          get: async (req) => ({ call: await scheduler!.get(req.dispatchId ?? '') }),
          list: (req) => scheduler!.#listRequest(req),
          cancel: async (req) => ({ cancelled: await scheduler!.cancel(req.dispatchId ?? '') }),
          restart: async (req) => ({ call: await scheduler!.restart(req.dispatchId ?? '') }),
          declareSchedules: (req) => schedules.declare(req),
          listSchedules: async () => ({ schedules: (await schedules.list()).map(toScheduleInfo) }),
          pauseSchedule: async (req) => ({ schedule: toScheduleInfo(await schedules.pause(req.name ?? '')) }),
          resumeSchedule: async (req) => ({ schedule: toScheduleInfo(await schedules.resume(req.name ?? '')) }),
          removeSchedule: async (req) => {
            await schedules.remove(req.name ?? '');
            return {};
          },
          signal: async (req) => ({ delivered: await scheduler!.signal(req) }),
          resume: async (req) => {
            await scheduler!.resume(req.dispatchId ?? '');
            return {};
          },
          features: async () => ({ features: scheduler!.features() }),
          health: async () => {
            // The store's health (a probe while it fails): not ok while it fails, with the reason.
            const storeHealth = (await store.health?.()) ?? { ok: true };
            return {
              status: storeHealth.ok ? 'ok' : 'unavailable',
              instance: instanceId,
              inFlight: loop.active,
              verificationKey: publicKeyToBase64(publicKey),
              store: storeHealth,
            };
          },
        },
        fallback: (req, res, url) => (scheduler ? (scheduler.#dashboard?.handle(req, res, url) ?? false) : false),
      });
      const host = options.host ?? d.host;
      const port = options.port ?? d.port;
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error & { code?: string }) => {
          reject(
            err.code === 'EADDRINUSE'
              ? new Error(`port ${port} on ${host} is already in use: stop what listens there or choose another port (0 picks a free one)`, { cause: err })
              : err,
          );
        };
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          resolve();
        });
      });
      if (options.keepProcessAlive === false) server.unref();
      const address = server.address() as AddressInfo;
      const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      scheduler = new Scheduler({
        url: `http://${urlHost === '0.0.0.0' ? '127.0.0.1' : urlHost}:${address.port}`,
        apiKeys,
        publicKey,
        store,
        ownsStore,
        server,
        loop,
        transport,
        limits,
        faults,
        log,
        instanceId,
        metrics,
        defaultExpirationMs,
        maxExpirationMs,
        maxCallsPerRequest,
        schedules,
      });
      emit = scheduler;
      if (dashboardSecret !== null) scheduler.#dashboard = new Dashboard(scheduler, { secret: dashboardSecret, throttle });
      if (!options.startPaused) {
        loop.start();
        schedules.start();
      }
      const database = options.store ? 'a store given by the caller' : (options.db ?? d.db);
      log.info(`scheduler ${instanceId} listening on ${scheduler.url}${options.startPaused ? ' (runs held until startRunning())' : ''} · database ${database}`, {
        event: 'listening',
        instance: instanceId,
        url: scheduler.url,
        database,
        tracing: tracing !== null,
      });
      return scheduler;
    } catch (err) {
      if (ownsStore) await store.close();
      throw err;
    }
  }

  /**
   * Starts running calls, for a scheduler started with `startPaused`
   * (otherwise, or when called again, it does nothing).
   * @example
   * const s = await Scheduler.start({ startPaused: true, port: 0 });
   * await appListening;
   * s.startRunning();
   */
  startRunning(): void {
    if (this.#closing) return;
    this.#loop.start();
    this.schedules.start();
  }

  #finished(e: FinishedEvent): void {
    this.emit('finished', e);
    this.#notifyWaiters(e.dispatchId);
  }

  #notifyWaiters(id: string): void {
    const set = this.#waiters.get(id);
    if (!set) return;
    this.#waiters.delete(id);
    for (const w of set) w();
  }

  /**
   * While calls are waited for, looks every second which of them finished
   * (on another instance, or cancelled with an ancestor): one query for all
   * waiters when the store has `finishedAmong`, else each waiter re-reads its
   * call.
   */
  #scheduleRecheck(): void {
    if (this.#recheckTimer || this.#closing) return;
    this.#recheckTimer = setTimeout(async () => {
      const ids = [...this.#waiters.keys()];
      try {
        const finished = ids.length > 0 && this.store.finishedAmong ? await this.store.finishedAmong(ids) : ids;
        for (const id of finished) this.#notifyWaiters(id);
      } catch (err) {
        this.#log.debug(`rechecking ${ids.length} waited call(s) failed: ${(err as Error).message}`);
        for (const id of ids) this.#notifyWaiters(id);
      }
      this.#recheckTimer = null;
      if (this.#waiters.size > 0) {
        this.store.waiting?.();
        this.#scheduleRecheck();
      }
    }, 1000);
    this.#recheckTimer.unref();
  }

  #checkOpen(): void {
    if (this.#closing) throw new SchedulerError('unavailable', 'the scheduler is shutting down');
  }

  /**
   * Accepts calls (all or none) once durably stored; answers their dispatch
   * IDs in order. A call whose `idempotencyKey` was seen before answers the
   * original ID and creates nothing. Throws a {@link SchedulerError}
   * (`invalid_argument`) naming the first invalid call, or the limit when
   * there are more than `maxCallsPerRequest` calls.
   * @example
   * const [id] = await scheduler.dispatch([{ function: 'greet', endpoint: 'http://127.0.0.1:8000', input: encodeArgs(['Ada']) }]);
   */
  async dispatch(calls: proto.ICall[]): Promise<string[]> {
    this.#checkOpen();
    if (calls.length === 0) throw new SchedulerError('invalid_argument', 'the request has no calls: send at least one call');
    if (calls.length > this.#maxCallsPerRequest) throw new SchedulerError('invalid_argument', tooManyCalls(calls.length, this.#maxCallsPerRequest));
    calls.forEach((c, i) => {
      const problem = validateCall(c, i, { endpointRequired: true });
      if (problem) throw new SchedulerError('invalid_argument', problem);
    });
    const now = Date.now();
    const rows = calls.map((c): NewCall => {
      const id = newDispatchId(now);
      const expirationMs = expirationMsOf(c, this.#defaultExpirationMs, this.#maxExpirationMs);
      // A delayed call (Call.delay) is not claimed before its time; its expiration counts from then.
      const delay = delayMsOf(c);
      const row: NewCall = {
        id,
        function: c.function ?? '',
        endpoint: c.endpoint ?? '',
        input: c.input ?? null,
        createdAt: now,
        dueAt: now + delay,
        expiresAt: now + delay + expirationMs,
        expirationMs,
        rootId: id,
      };
      if (c.version) row.version = c.version;
      if (c.idempotencyKey) row.idempotencyKey = c.idempotencyKey;
      const limits = limitsOfCall(c.limits);
      if (limits) row.limits = limits;
      if (c.traceparent) row.traceContext = c.tracestate ? { traceparent: c.traceparent, tracestate: c.tracestate } : { traceparent: c.traceparent };
      return row;
    });
    // Leased as inserted where they can start at once (the store and the loop allow it), else claimed after.
    const ids = await this.#loop.insert(rows);
    this.metrics.created(
      rows.filter((r, i) => ids[i] === r.id).map((r) => r.function),
      'api',
    );
    this.emit('dispatched', { dispatchIds: ids, functions: rows.map((r) => r.function) });
    // Built only when written: a batch of 1,000 calls makes a line of ~40 KB.
    if (this.#log.enabled('debug')) this.#log.debug(`dispatched ${ids.length} call(s): ${rows.map((r, i) => `${r.function} ${ids[i]}`).join(', ')}`);
    return ids;
  }

  /**
   * Waits until a call has a result, at most `timeoutMs` (default 30 s,
   * capped at 10 minutes: `MAX_WAIT_TIMEOUT_MS` of `@dispatch/core/protocol`;
   * longer waits answer `done: false`, ask again). Throws `not_found` for an
   * unknown ID.
   * @example
   * const r = await scheduler.wait(id, 5_000);
   */
  async wait(id: string, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS, signal?: AbortSignal): Promise<WaitResult> {
    const deadline = Date.now() + Math.min(MAX_WAIT_TIMEOUT_MS, Math.max(0, timeoutMs));
    for (;;) {
      const rec = await this.store.getCall(id);
      if (!rec) throw new SchedulerError('not_found', `no call with dispatch ID ${JSON.stringify(id)}`);
      if (isFinished(rec.state)) {
        const result: proto.ICallResult = { dispatchId: rec.id };
        if (rec.correlationId !== null) result.correlationId = proto.toLong(rec.correlationId);
        if (rec.output) result.output = rec.output;
        if (rec.error) result.error = rec.error;
        return { done: true, state: rec.state, status: rec.status as Status, result };
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0 || signal?.aborted || this.#closing) return { done: false, state: rec.state };
      await new Promise<void>((resolve) => {
        let set = this.#waiters.get(id);
        if (!set) {
          set = new Set();
          this.#waiters.set(id, set);
        }
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          set.delete(done);
          if (set.size === 0 && this.#waiters.get(id) === set) this.#waiters.delete(id);
          resolve();
        };
        // Woken when the call finishes here or (notified) elsewhere, by the
        // shared recheck every second, or at the deadline.
        const timer = setTimeout(done, remaining);
        signal?.addEventListener('abort', done);
        set.add(done);
        this.#scheduleRecheck();
        // Other instances announce the calls they finish only while one says it waits.
        this.store.waiting?.();
      });
    }
  }

  /** The Wait RPC. */
  async #waitRequest(req: proto.IWaitRequest, signal: AbortSignal): Promise<proto.IWaitResponse> {
    const ms = proto.durationToMs(req.timeout);
    const r = await this.wait(req.dispatchId ?? '', ms && ms > 0 ? ms : DEFAULT_WAIT_TIMEOUT_MS, signal);
    if (!r.done) return { done: false, state: callStateNumber(r.state) };
    return { done: true, state: callStateNumber(r.state), status: r.status as number, result: r.result };
  }

  /**
   * Everything known about a call: state, status, attempts with their
   * status, duration and error, timestamps, input and output (also decoded
   * to JSON text), parent, root, children, and the adaptive concurrency of
   * its (endpoint, function) on this instance. Throws `not_found`.
   * @example
   * const info = await scheduler.get(id);
   * console.log(info.state, info.attemptHistory?.length, info.concurrency?.limit);
   */
  async get(id: string): Promise<proto.ICallInfo> {
    const rec = await this.store.getCall(id);
    if (!rec) throw new SchedulerError('not_found', `no call with dispatch ID ${JSON.stringify(id)}`);
    const [attempts, children] = await Promise.all([this.store.getAttempts(id), this.store.getChildren(id)]);
    const info = toCallInfo(rec, { attempts, children, concurrency: this.#limits.snapshot(rec.endpoint, rec.function) });
    const { signals, waitingFor } = await this.store.getSignals(id);
    if (signals.length > 0) {
      info.signals = signals.map((s) => {
        const out: proto.ISignalInfo = { name: s.name, sentTime: proto.timestampFromDate(s.sentAt) };
        if (s.payload) out.payload = s.payload;
        if (s.consumedAt !== null) out.consumedTime = proto.timestampFromDate(s.consumedAt);
        return out;
      });
    }
    if (waitingFor.length > 0) info.waitingForSignals = waitingFor;
    await addLimitWaits(this.store, [rec], [info], Date.now());
    return info;
  }

  /**
   * Calls, newest first, filtered and paginated, with counts per state.
   * @example
   * let page = await scheduler.list({ states: ['failed'], limit: 50 });
   * while (page.nextCursor) page = await scheduler.list({ states: ['failed'], limit: 50, cursor: page.nextCursor });
   */
  async list(options: ListOptions = {}): Promise<ListResult> {
    const { createdAfter, createdBefore, ...rest } = options;
    const filter: ListFilter = { ...rest };
    const after = time(createdAfter);
    const before = time(createdBefore);
    if (after !== undefined) filter.createdAfter = after;
    if (before !== undefined) filter.createdBefore = before;
    let page: Awaited<ReturnType<Store['listCalls']>>;
    try {
      page = await this.store.listCalls(filter);
    } catch (err) {
      if (err instanceof RangeError) throw new SchedulerError('invalid_argument', err.message);
      throw err;
    }
    const calls = page.calls.map((c) => toCallInfo(c));
    await addLimitWaits(this.store, page.calls, calls, Date.now());
    return { calls, nextCursor: page.nextCursor, counts: page.counts };
  }

  /** The List RPC. */
  async #listRequest(req: proto.IListRequest): Promise<proto.IListResponse> {
    const states = (req.states ?? []).map((n) => {
      const s = callStateOf(n);
      if (!s) throw new SchedulerError('invalid_argument', `unknown call state ${n}`);
      return s;
    });
    if ((req.limit ?? 0) > 1000) throw new SchedulerError('invalid_argument', `limit must be at most 1000, got ${req.limit}`);
    const options: ListOptions = {};
    if (states.length) options.states = states;
    if (req.function) options.function = req.function;
    if (req.createdAfter) options.createdAfter = proto.timestampToDate(req.createdAfter) ?? undefined;
    if (req.createdBefore) options.createdBefore = proto.timestampToDate(req.createdBefore) ?? undefined;
    if (req.limit) options.limit = req.limit;
    if (req.cursor) options.cursor = req.cursor;
    if (req.rootsOnly) options.rootsOnly = true;
    const page = await this.list(options);
    return {
      calls: page.calls,
      nextCursor: page.nextCursor ?? '',
      counts: (Object.keys(page.counts) as CallState[]).map((s) => ({ state: callStateNumber(s), count: page.counts[s] })),
    };
  }

  /**
   * Cancels a call and its unfinished descendants. They end `cancelled`,
   * with status PERMANENT_ERROR and an error saying they were cancelled; a
   * parent waiting on the call receives that error. A run in flight is not
   * interrupted, but its result is discarded. Returns how many calls were
   * cancelled (0 if it had already finished). Throws `not_found`.
   * @example
   * await scheduler.cancel(id);
   */
  async cancel(id: string): Promise<number> {
    this.#checkOpen();
    const rec = await this.store.getCall(id);
    if (!rec) throw new SchedulerError('not_found', `no call with dispatch ID ${JSON.stringify(id)}`);
    const n = await this.store.cancel(id, Date.now(), {
      type: 'CancelledError',
      message: `the call ${id} (${rec.function}) was cancelled through the scheduler API`,
    });
    if (n > 0) {
      this.metrics.finished(rec.function, 'cancelled', rec.createdAt, Date.now());
      this.#log.info(`cancelled ${rec.function} ${id}${n > 1 ? ` and ${n - 1} descendant(s)` : ''}`);
      this.emit('finished', {
        dispatchId: id,
        function: rec.function,
        state: 'cancelled',
        status: Status.PERMANENT_ERROR,
        statusName: statusName(Status.PERMANENT_ERROR),
      });
      // Descendants may have waiters too.
      for (const key of [...this.#waiters.keys()]) this.#notifyWaiters(key);
      this.#loop.wake();
    }
    return n;
  }

  /**
   * Runs a call again from its original function and input, under the same
   * dispatch ID (PROTOCOL.md 8.15: an explicit act, since side effects may
   * repeat). Its unfinished children are cancelled; the attempt history is
   * kept; its expiration starts again. Throws `not_found`.
   * @example
   * await scheduler.restart(id);
   */
  async restart(id: string): Promise<proto.ICallInfo> {
    this.#checkOpen();
    if (!(await this.store.restart(id, Date.now()))) {
      throw new SchedulerError('not_found', `no call with dispatch ID ${JSON.stringify(id)}`);
    }
    this.#log.info(`restarted ${id} from its original input`);
    this.#loop.wake();
    return this.get(id);
  }

  /**
   * Delivers a signal to a call: its `dispatch.waitForSignal(name)` returns
   * `payload`. Kept until the call waits for it when it does not yet; each
   * signal is consumed once, in the order sent. Answers whether it was
   * delivered at once. Throws `not_found` for an unknown call and
   * `failed_precondition` for a finished one.
   * @example
   * await scheduler.signal({ dispatchId: id, name: 'decision', payload: encodeValue({ approved: true }) });
   */
  async signal(req: proto.ISignalRequest): Promise<boolean> {
    this.#checkOpen();
    const id = req.dispatchId ?? '';
    const name = req.name ?? '';
    if (id === '') throw new SchedulerError('invalid_argument', 'the signal has no dispatch_id: say which call to signal');
    if (name === '') throw new SchedulerError('invalid_argument', `the signal to ${id} has no name: give the name the function waits for`);
    if (name.length > 256) throw new SchedulerError('invalid_argument', `the signal name is ${name.length} characters long, over the limit of 256`);
    const answer = await this.store.signal({
      callId: id,
      name,
      payload: req.payload ?? null,
      ...(req.idempotencyKey ? { idempotencyKey: req.idempotencyKey } : {}),
      now: Date.now(),
    });
    switch (answer.kind) {
      case 'not_found':
        throw new SchedulerError('not_found', `no call with dispatch ID ${JSON.stringify(id)}: the signal ${JSON.stringify(name)} was not kept`);
      case 'finished':
        throw new SchedulerError(
          'failed_precondition',
          `the call ${id} has finished (${answer.state}): it cannot receive the signal ${JSON.stringify(name)}; signal a call that is still running, pending or suspended`,
        );
      default:
        this.#log.info(`signal ${JSON.stringify(name)} for ${id}: ${answer.kind === 'delivered' ? 'delivered to its wait' : 'kept until it waits'}`);
        this.#signals.inc({ outcome: answer.kind === 'delivered' ? 'delivered' : 'kept' });
        if (answer.kind === 'delivered') this.#loop.wake();
        return answer.kind === 'delivered';
    }
  }

  /**
   * Runs a failed or expired call again from its journal (its last
   * recorded state): the awaits that succeeded get their recorded results
   * and are not run again; its children that failed run again. A call that
   * failed before its first suspension runs again from its input. Throws
   * `not_found`, or `failed_precondition` when the call did not fail.
   * @example
   * await scheduler.resume(id);
   */
  async resume(id: string): Promise<proto.ICallInfo> {
    this.#checkOpen();
    const answer = await this.store.resume(id, Date.now());
    if (answer.kind === 'not_found') throw new SchedulerError('not_found', `no call with dispatch ID ${JSON.stringify(id)}`);
    if (answer.kind === 'refused') {
      throw new SchedulerError(
        'failed_precondition',
        `the call ${id} is ${answer.state}: only a failed or expired call can be resumed${answer.state === 'succeeded' || answer.state === 'cancelled' ? ' (use restart to run it again from its input)' : ''}`,
      );
    }
    this.#log.info(`resumed ${id} from its journal${answer.childrenRestarted ? ` (${answer.childrenRestarted} failed call(s) run again)` : ''}`);
    for (const key of [...this.#waiters.keys()]) this.#notifyWaiters(key);
    this.#loop.wake();
    return this.get(id);
  }

  /**
   * The extensions of this project this scheduler supports (the API's
   * `Features`): signals, delays, idempotency keys, resume.
   * @example
   * scheduler.features(); // ['signals', 'delays', 'idempotency_keys', 'resume']
   */
  features(): string[] {
    return ['signals', 'delays', 'idempotency_keys', 'resume'];
  }

  /**
   * The adaptive concurrency limit of (endpoint, function) on this instance.
   * @example
   * scheduler.concurrency('http://127.0.0.1:8000', 'charge').limit;
   */
  concurrency(endpoint: string, fn: string): ConcurrencySnapshot {
    return this.#limits.snapshot(endpoint, fn);
  }

  /** Every (endpoint, function) limit seen by this instance. */
  concurrencyAll(): ConcurrencySnapshot[] {
    return this.#limits.all();
  }

  /**
   * The circuit of an endpoint on this instance: `closed` (calls are sent),
   * `open` (it refused connections: its calls wait for the next probe) or
   * `probing`.
   * @example
   * scheduler.circuit('http://127.0.0.1:8000').state; // 'closed'
   */
  circuit(endpoint: string): CircuitSnapshot {
    return this.#faults.circuits.snapshot(endpoint);
  }

  /**
   * Every endpoint whose circuit is not closed on this instance.
   * @example
   * for (const c of scheduler.circuits()) console.log(c.endpoint, c.state);
   */
  circuits(): CircuitSnapshot[] {
    return this.#faults.circuits.all();
  }

  /** The dashboard's URL (`<url>/dashboard/`), or null when it is disabled. */
  get dashboardUrl(): string | null {
    return this.#dashboard?.url ?? null;
  }

  /**
   * A one-time link that signs a browser in to the dashboard (valid for an
   * hour, on this instance), for the CLI to print. Throws when the
   * dashboard is disabled.
   * @example
   * console.log(`dashboard: ${scheduler.dashboardLoginUrl()}`);
   */
  dashboardLoginUrl(): string {
    if (!this.#dashboard) throw new Error('the dashboard is disabled (dashboard: false)');
    return this.#dashboard.loginUrl();
  }

  /**
   * Stops accepting requests and claiming calls, waits for the runs in
   * flight to be recorded, and closes the store (unless it was given).
   * @example
   * process.on('SIGTERM', () => scheduler.close().then(() => process.exit(0)));
   */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = (async () => {
        if (this.#recheckTimer) clearTimeout(this.#recheckTimer);
        for (const key of [...this.#waiters.keys()]) this.#notifyWaiters(key);
        this.#dashboard?.close();
        const serverClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
        this.#server.closeIdleConnections();
        await Promise.all([this.#loop.stop(), this.schedules.stop()]);
        this.#server.closeAllConnections();
        await serverClosed;
        this.#transport.close();
        this.#unsubscribe?.();
        if (this.#ownsStore) await this.store.close();
        this.#log.info(`scheduler ${this.instanceId} stopped`);
      })();
    }
    return this.#closing;
  }
}

/** The store `options.db` names: PostgreSQL for a `postgres://` URL, else a SQLite file (or memory). */
async function openStore(options: SchedulerOptions, log: Logger): Promise<Store> {
  if (options.db && isPgUrl(options.db)) {
    const store = await PgStore.open({ url: options.db });
    store.onTrouble((message) => log.warn(message));
    return store;
  }
  return SqliteStore.open({
    path: options.db ?? SCHEDULER_DEFAULTS.db,
    synchronous: options.synchronous ?? SCHEDULER_DEFAULTS.synchronous,
    onWarning: (message) => log.warn(message),
    onRecovery: (r) =>
      log.info(
        `wrote ${r.replayed} batch(es) of the redo log (${r.statements} statement(s)) acknowledged before the last stop and not yet in the database${r.tornBytes > 0 ? `; ignored ${r.tornBytes} byte(s) at its end (a record cut short or damaged, as a power loss leaves it)` : ''}`,
        { event: 'redo_recovered', replayed: r.replayed, statements: r.statements, tornBytes: r.tornBytes },
      ),
  });
}

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`${name} must be a positive number of milliseconds, got ${value}`);
  return value;
}

