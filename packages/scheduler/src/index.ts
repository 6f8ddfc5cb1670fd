/**
 * `@dispatch/scheduler`: the Dispatch scheduler as a library — stores calls,
 * runs them on endpoints with retries, adaptive concurrency, polls and
 * timers; SQLite embedded or PostgreSQL shared. The `dispatch` CLI is its
 * command-line face.
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
export { Scheduler, type ListOptions, type ListResult, MAX_WAIT_MS, type WaitResult } from './scheduler.js';
export { DEFAULT_PORT, type SchedulerOptions } from './options.js';
export { type ConnectCode, SchedulerError } from './errors.js';
export type { AttemptEvent, DispatchedEvent, FinishedEvent, SchedulerEvents } from './events.js';
export type { LogLevel, LogSink } from './logger.js';
export type { BackoffOptions } from './run/backoff.js';
export type { ConcurrencyOptions, ConcurrencySnapshot } from './run/concurrency.js';
export { callStateOf } from './api/call-info.js';
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
  type InstanceHeartbeat,
  isFinished,
  type ListFilter,
  type ListPage,
  type NewCall,
  type Outcome,
  type RetryOutcome,
  type Store,
  type StoreChange,
  type SuspendOutcome,
  type TailCallOutcome,
} from './store/store.js';
export { SqliteStore, type SqliteStoreOptions } from './store/sqlite/sqlite-store.js';
export { isPgUrl, PgStore, type PgStoreOptions, type PgStoreStats } from './store/pg/pg-store.js';
export { SchedulerClient, type SchedulerClientOptions } from './api/scheduler-client.js';
