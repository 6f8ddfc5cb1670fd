/**
 * `@dispatch/scheduler`: the Dispatch scheduler as a library — stores calls,
 * runs them on endpoints with retries, adaptive concurrency, polls and
 * timers; SQLite embedded or PostgreSQL shared. The `dispatch` CLI is its
 * command-line face. To dispatch and wait for calls from an app, use the
 * client of `@dispatch/core` (`DispatchClient`): an app needs no
 * `@dispatch/scheduler` at run time.
 *
 * @example
 * ```ts
 * import { Scheduler } from '@dispatch/scheduler';
 * const scheduler = await Scheduler.start({ db: ':memory:', port: 0 });
 * console.log(scheduler.url, scheduler.apiKey);
 * await scheduler.close();
 * ```
 * @module
 */
export { Scheduler, type ListOptions, type ListResult, type WaitResult } from './scheduler.js';
export { SCHEDULER_DEFAULTS, type SchedulerOptions } from './options.js';
export { type ConnectCode, SchedulerError } from './errors.js';
export type { AttemptEvent, DispatchedEvent, FinishedEvent, SchedulerEvents } from './events.js';
export { jsonLogSink, LOG_FORMATS, type LogFields, type LogFormat, type LogLevel, type LogSink } from './logger.js';
export { METRICS_CONTENT_TYPE, type MetricsSources, SchedulerMetrics } from './observe/metrics.js';
export type { BackoffOptions } from './run/backoff.js';
export type { ConcurrencyOptions, ConcurrencySnapshot } from './run/concurrency.js';
export type { CircuitOptions, CircuitSnapshot, CircuitState } from './run/circuit.js';
export {
  type AttemptRecord,
  CALL_STATES,
  type CallRecord,
  type CallState,
  type ChildResult,
  type ClaimedCall,
  type ClaimRequest,
  type ClaimResult,
  type CompleteRequest,
  type CoroutineState,
  type FinishOutcome,
  type FollowOnClaim,
  type FollowOnResult,
  type InsertAndClaimResult,
  type InsertClaim,
  type InstanceHeartbeat,
  isFinished,
  type ListFilter,
  type ListPage,
  type LiveCount,
  type NewCall,
  type Outcome,
  type RetryOutcome,
  type Store,
  type StoreChange,
  type SuspendOutcome,
  type TailCallOutcome,
  type TraceContext,
} from './store/store.js';
export { type StoreHealth, StoreUnavailableError } from './store/faults.js';
export { SqliteStore, type SqliteStoreOptions } from './store/sqlite/sqlite-store.js';
export type { RecoveryReport } from './store/sqlite/redo-log.js';
export { DEFAULT_VACUUM_EVERY, isPgUrl, PgStore, type PgStoreOptions, type PgStoreStats, type PgVacuumEvent } from './store/pg/pg-store.js';
