/**
 * The scheduler's Prometheus metrics (prom-client), served at `/metrics` on
 * the API port. One registry per scheduler (several may share a process).
 *
 * - Counters and histograms are updated as things happen on this instance:
 *   attempts, their durations, calls created and finished, the end-to-end
 *   latency of finished calls, store operations. With several instances on
 *   one PostgreSQL database, sum them across instances.
 * - Gauges are read at scrape time: unfinished calls per function and state
 *   and the queue (pending calls already due), from one query over the
 *   unfinished rows only (`Store.countLive`, index on state: the history of
 *   finished calls is never scanned), and the adaptive concurrency limits of
 *   this instance.
 *
 * To add a metric (the signal and schedule counters, for instance), create
 * it on {@link SchedulerMetrics.registry} with {@link SchedulerMetrics.counter}
 * (or prom-client's own classes with `registers: [metrics.registry]`) where
 * the event happens, and name it `dispatch_…` with lower-case labels.
 * @module
 */
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Registry } from 'prom-client';
import type { ConcurrencySnapshot } from '../run/concurrency.js';
import type { AttemptEvent } from '../events.js';
import type { CallState, LiveCount, Store } from '../store/store.js';
import { type HistogramSeries, SeriesCounter, SeriesHistogram } from './series.js';

/**
 * The content type of the Prometheus text format that `/metrics` answers.
 * @example
 * res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE });
 */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const LIVE_STATES = ['pending', 'running', 'suspended'] as const;
const SECONDS_FAST = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const SECONDS_RUN = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const SECONDS_CALL = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400];

/** What the gauges read at scrape time. */
export interface MetricsSources {
  /** Unfinished calls per function and state (undefined: the store cannot tell, the gauges stay empty). */
  live?: (now: number) => Promise<LiveCount[]>;
  /** The adaptive concurrency limits of this instance. */
  limits: () => ConcurrencySnapshot[];
}

/**
 * The metrics of one scheduler.
 * @example
 * const metrics = new SchedulerMetrics({ live: (now) => store.countLive!(now), limits: () => limits.all() });
 * metrics.attempt(event);
 * res.end(await metrics.text());
 */
export class SchedulerMetrics {
  /** The prom-client registry: add metrics to it (see the module comment). */
  readonly registry = new Registry();
  // Updated on every run: series looked up once, without prom-client's per-call hashing of labels (series.ts).
  readonly #attempts: SeriesCounter;
  readonly #attemptSeconds: SeriesHistogram;
  readonly #created: SeriesCounter;
  readonly #localResumes: SeriesCounter;
  readonly #finished: SeriesCounter;
  readonly #latency: SeriesHistogram;
  readonly #store: SeriesHistogram;
  readonly #calls: Gauge<'function' | 'state'>;
  readonly #queue: Gauge<'function'>;
  readonly #limit: Gauge<'endpoint' | 'function'>;
  readonly #inFlight: Gauge<'endpoint' | 'function'>;
  readonly #functions = new Set<string>();
  readonly #sources: MetricsSources;

  constructor(sources: MetricsSources) {
    this.#sources = sources;
    const registers = [this.registry];
    const registry = this.registry;
    this.#attempts = new SeriesCounter(
      registry,
      'dispatch_attempts_total',
      'Runs of calls sent to endpoints, by function, status, outcome (exit, retry, suspend, tail_call, dropped) and kind (attempt: a first run or a retry; resume: a run after a suspension)',
      ['function', 'status', 'outcome', 'kind'],
    );
    this.#attemptSeconds = new SeriesHistogram(
      registry,
      'dispatch_attempt_duration_seconds',
      'Duration of one run, from the request sent to the answer recorded',
      ['function', 'kind'],
      SECONDS_RUN,
    );
    this.#localResumes = new SeriesCounter(
      registry,
      'dispatch_local_resumes_total',
      "Parents' resumes that an endpoint answered early with a child's answer (RunRequest.local_resume), by result (used: the parent's next run took that answer, without a request; dropped: the next resume differed and went to the endpoint)",
      ['result'],
    );
    this.#created = new SeriesCounter(
      registry,
      'dispatch_calls_created_total',
      'Calls created, by function and source (api: dispatched through the API; poll: children started by a suspended call)',
      ['function', 'source'],
    );
    this.#finished = new SeriesCounter(
      registry,
      'dispatch_calls_finished_total',
      'Calls finished on this instance, by function and final state (succeeded, failed, cancelled)',
      ['function', 'state'],
    );
    this.#latency = new SeriesHistogram(
      registry,
      'dispatch_call_latency_seconds',
      'End-to-end latency of finished calls: from creation to the recorded result, retries and suspensions included',
      ['function', 'state'],
      SECONDS_CALL,
    );
    this.#store = new SeriesHistogram(
      registry,
      'dispatch_store_operation_duration_seconds',
      'Duration of store operations (SQLite or PostgreSQL), by operation',
      ['operation'],
      SECONDS_FAST,
    );
    this.#calls = new Gauge({
      name: 'dispatch_calls',
      help: 'Unfinished calls in the store (every instance), by function and state (pending, running, suspended)',
      labelNames: ['function', 'state'],
      registers,
    });
    this.#queue = new Gauge({
      name: 'dispatch_queue_depth',
      help: 'Pending calls already due (waiting for a run slot), by function, in the store (every instance)',
      labelNames: ['function'],
      registers,
    });
    this.#limit = new Gauge({
      name: 'dispatch_concurrency_limit',
      help: 'Current adaptive concurrency limit of this instance, by endpoint and function',
      labelNames: ['endpoint', 'function'],
      registers,
    });
    this.#inFlight = new Gauge({
      name: 'dispatch_in_flight',
      help: 'Runs in flight on this instance, by endpoint and function',
      labelNames: ['endpoint', 'function'],
      registers,
    });
  }

  /**
   * A new counter in this registry, named `dispatch_<name>`: where a feature
   * counts its events (signals received, schedules fired...).
   * @example
   * const fired = metrics.counter('schedules_fired_total', 'Schedules that fired', ['schedule']);
   * fired.inc({ schedule: 'nightly' });
   */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name: `dispatch_${name}`, help, labelNames, registers: [this.registry] });
  }

  /** One run ended (the `attempt` event). */
  attempt(e: AttemptEvent): void {
    const kind = e.resume ? 'resume' : 'attempt';
    this.#functions.add(e.function);
    this.#attempts.series(e.function, e.statusName, e.outcome, kind).value++;
    this.#attemptSeconds.series(e.function, kind).observe(e.durationMs / 1000);
  }

  /** A parent's answer given early by its child's endpoint was used, or dropped (local resume). */
  localResume(result: 'used' | 'dropped'): void {
    this.#localResumes.series(result).value++;
  }

  /** Calls were created (through the API, or as a Poll's children). */
  created(functions: readonly string[], source: 'api' | 'poll'): void {
    // One increment per function (a fan-out of 10,000 calls of one function is one).
    let last = '';
    let run = 0;
    for (const fn of functions) {
      if (fn === last) {
        run++;
        continue;
      }
      if (run > 0) this.#created.series(last, source).value += run;
      this.#functions.add(fn);
      last = fn;
      run = 1;
    }
    if (run > 0) this.#created.series(last, source).value += run;
  }

  /** A call finished: its state and its end-to-end latency. */
  finished(fn: string, state: CallState, createdAt: number, now: number): void {
    this.#functions.add(fn);
    this.#finished.series(fn, state).value++;
    this.#latency.series(fn, state).observe(Math.max(0, now - createdAt) / 1000);
  }

  /**
   * `store` with each method's duration observed (by method name); the
   * object itself is unchanged (same class, same private state).
   */
  timeStore<S extends Store>(store: S): S {
    const histogram = this.#store;
    // One wrapper per method, made on first use (not a closure per call).
    const wrappers = new Map<string, { method: unknown; wrapper: (...args: unknown[]) => unknown }>();
    return new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'constructor') return value;
        const known = wrappers.get(prop);
        if (known?.method === value) return known.wrapper;
        // Made on the first promise: a method that answers at once (quietUntil) has no series.
        let series: HistogramSeries | undefined;
        const method = value as (...a: unknown[]) => unknown;
        const wrapper = (...args: unknown[]): unknown => {
          const start = performance.now();
          const out = method.apply(target, args);
          if (out && typeof (out as Promise<unknown>).then === 'function') {
            const done = () => {
              series ??= histogram.series(prop);
              series.observe((performance.now() - start) / 1000);
            };
            (out as Promise<unknown>).then(done, done);
          }
          return out;
        };
        wrappers.set(prop, { method: value, wrapper });
        return wrapper;
      },
    });
  }

  /** The metrics in the Prometheus text format, gauges read now. */
  async text(): Promise<string> {
    const live = this.#sources.live ? await this.#sources.live(Date.now()) : undefined;
    if (live) {
      for (const c of live) this.#functions.add(c.function);
      this.#calls.reset();
      this.#queue.reset();
      // Every function seen keeps a series per state (0 when it has none): rates and alerts need no gaps.
      for (const fn of this.#functions) {
        for (const state of LIVE_STATES) this.#calls.set({ function: fn, state }, 0);
        this.#queue.set({ function: fn }, 0);
      }
      for (const c of live) {
        this.#calls.set({ function: c.function, state: c.state }, c.count);
        if (c.state === 'pending') this.#queue.set({ function: c.function }, c.due);
      }
    }
    this.#limit.reset();
    this.#inFlight.reset();
    for (const s of this.#sources.limits()) {
      this.#limit.set({ endpoint: s.endpoint, function: s.function }, Math.floor(s.limit));
      this.#inFlight.set({ endpoint: s.endpoint, function: s.function }, s.inFlight);
    }
    return this.registry.metrics();
  }
}
