/**
 * Options of {@link Scheduler.start}.
 * @module
 */
import type { KeyObject } from 'node:crypto';
import { DEFAULT_API_URL, DEFAULT_MAX_BODY_BYTES } from '@dispatch/core/protocol';
import type { BackoffOptions } from './run/backoff.js';
import type { CircuitOptions } from './run/circuit.js';
import type { ConcurrencyOptions } from './run/concurrency.js';
import type { LogFormat, LogLevel, LogSink } from './logger.js';
import type { Store } from './store/store.js';

/**
 * Every default of the scheduler, written once: {@link Scheduler.start},
 * the SQLite store and the `dispatch` CLI (its flags and help texts) read
 * them here.
 * @example
 * const url = `http://127.0.0.1:${SCHEDULER_DEFAULTS.port}`;
 */
export const SCHEDULER_DEFAULTS = Object.freeze({
  /** SQLite file under the working directory (`dispatch run`, `dispatch serve`, `Scheduler.start`). */
  db: '.dispatch/dispatch.db',
  /** Port of the API: the one of the SDK's default API URL (`http://127.0.0.1:4450`). */
  port: Number(new URL(DEFAULT_API_URL).port),
  /** Interface the API binds. */
  host: '127.0.0.1',
  /** One line per run attempt. */
  logLevel: 'info',
  /** Log lines as text (a time, the level, the line); `json`: one object per line. */
  logFormat: 'text',
  /** SQLite durability: survives a crash of the process. */
  synchronous: 'NORMAL',
  /** Timeout of one RunRequest: 5 minutes. */
  requestTimeoutMs: 5 * 60_000,
  /** Expiration of a call that sets none: 1 hour. */
  defaultExpirationMs: 60 * 60_000,
  /** Cap of any call's expiration: 30 days. */
  maxExpirationMs: 30 * 24 * 60 * 60_000,
  /** Lease of a claimed call: 30 s. */
  leaseMs: 30_000,
  /** Most calls claimed from the store at once. */
  claimBatch: 256,
  /** Most RunRequests in flight over all endpoints. */
  maxInFlight: 4096,
  /** Largest API request body, in bytes (the protocol's body limit). */
  maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
  /** Most calls in one DispatchRequest: a larger batch is the caller's to split. */
  maxCallsPerRequest: 1000,
  /** Unfinished children of a finished call are cancelled. */
  orphans: 'cancel',
  /** A state of at least this many bytes is not resent to this project's SDK. */
  elideStateAbove: 1024,
  /** A call that crashed the app (its connection dropped mid-request) this many times in a row is quarantined. */
  quarantineAfter: 5,
  /** Circuits per endpoint: probes of an endpoint that refuses connections, from 0.5 s doubling to 5 s; one log line per 10 s while it is down. */
  circuit: Object.freeze({ initialProbeMs: 500, maxProbeMs: 5_000, logIntervalMs: 10_000 }),
  /** Adaptive concurrency per (endpoint, function). */
  concurrency: Object.freeze({ initial: 16, min: 1, max: 1000, increase: 1, decreaseFactor: 0.5 }),
  /** Spacing of retries. */
  backoff: Object.freeze({ initialMs: 100, maxMs: 60_000, multiplier: 2, throttledFactor: 4, jitter: 'equal' }),
} as const);

/**
 * How to start a scheduler. Every option has a default.
 * @example
 * const s = await Scheduler.start({ db: ':memory:', port: 0, logLevel: 'warn' });
 */
export interface SchedulerOptions {
  /**
   * SQLite database file, or `':memory:'`; or a PostgreSQL URL
   * (`postgres://user@host:5432/database`, optionally `?schema=NAME`
   * (default `dispatch`) and `&pool_size=N` (default 10)), which several
   * scheduler instances can share (see the package README). Default
   * {@link SCHEDULER_DEFAULTS}`.db` under the working directory. Ignored
   * when `store` is given.
   * @example { db: '/var/lib/dispatch/scheduler.db' }
   * @example { db: 'postgres://dispatch@db.internal:5432/app?schema=dispatch&pool_size=20' }
   */
  db?: string;
  /**
   * SQLite durability: `NORMAL` survives a crash of the process, `FULL`
   * also a power loss. Default {@link SCHEDULER_DEFAULTS}`.synchronous`.
   * @example { synchronous: 'FULL' }
   */
  synchronous?: 'NORMAL' | 'FULL';
  /**
   * A store to use instead of SQLite (for example a PostgreSQL store). The
   * scheduler does not close a store it was given.
   * @example { store: await SqliteStore.open({ path: ':memory:' }) }
   */
  store?: Store;
  /**
   * Port of the API; 0 picks a free one (see `scheduler.url`). Default
   * {@link SCHEDULER_DEFAULTS}`.port` (the port of the SDK's default API URL).
   * @example { port: 0 }
   */
  port?: number;
  /**
   * Interface to bind. Default {@link SCHEDULER_DEFAULTS}`.host`.
   * @example { host: '0.0.0.0' }
   */
  host?: string;
  /**
   * API keys accepted as `Authorization: Bearer <key>`, each of at least 16
   * characters. Default: one key, generated on first start and kept in the
   * store (`scheduler.apiKey`). Ten failed keys a minute from one address
   * are answered 429 for the rest of that minute.
   * @example { apiKeys: [process.env.DISPATCH_API_KEY!] }
   */
  apiKeys?: string[];
  /**
   * Ed25519 private key that signs requests to endpoints (a KeyObject, PEM,
   * or base64 seed). Default: a key pair generated on first start and kept in
   * the store; its public half is `scheduler.verificationKey`.
   * @example { signingKey: parseSigningKey(process.env.DISPATCH_SIGNING_KEY!) }
   */
  signingKey?: KeyObject | string;
  /**
   * Log verbosity (`info`: one line per run attempt). Default
   * {@link SCHEDULER_DEFAULTS}`.logLevel`.
   * @example { logLevel: 'warn' }
   */
  logLevel?: LogLevel;
  /**
   * Where log lines go. Default: stderr, in {@link SchedulerOptions.logFormat}.
   * A sink given here receives every line (redacted) and its fields, whatever the format.
   * @example { logger: (level, line) => pino[level](line) }
   */
  logger?: LogSink;
  /**
   * Format of the default sink: `text`, or `json` (one JSON object per line
   * through pino: `level`, `time`, `pid`, `name`, `msg` and the line's
   * fields). Default {@link SCHEDULER_DEFAULTS}`.logFormat`.
   * @example { logFormat: 'json' }
   */
  logFormat?: LogFormat;
  /**
   * A read-only token for `GET /metrics` (Prometheus), accepted there beside
   * the API keys and nowhere else; 16 characters or more. Default: none (the
   * API keys only).
   * @example { metricsToken: process.env.DISPATCH_METRICS_TOKEN }
   */
  metricsToken?: string;
  /**
   * Adaptive concurrency per (endpoint, function); what is not given is
   * {@link SCHEDULER_DEFAULTS}`.concurrency`.
   * @example { concurrency: { initial: 4, max: 64 } }
   */
  concurrency?: ConcurrencyOptions;
  /**
   * Timeout of one RunRequest, in ms; past it the attempt fails with
   * TIMEOUT (retried). Default {@link SCHEDULER_DEFAULTS}`.requestTimeoutMs`.
   * @example { requestTimeoutMs: 30_000 }
   */
  requestTimeoutMs?: number;
  /**
   * Expiration of calls that set none, from their creation, in ms; past it a
   * call ends with TIMEOUT. Default
   * {@link SCHEDULER_DEFAULTS}`.defaultExpirationMs`.
   * @example { defaultExpirationMs: 24 * 3_600_000 }
   */
  defaultExpirationMs?: number;
  /**
   * Cap of any call's expiration, in ms. Default
   * {@link SCHEDULER_DEFAULTS}`.maxExpirationMs`.
   * @example { maxExpirationMs: 7 * 24 * 3_600_000 }
   */
  maxExpirationMs?: number;
  /**
   * Most consecutive failed attempts of a call before it fails for good
   * (retryable statuses only). Default: no cap (the expiration bounds retries).
   * @example { maxAttempts: 10 }
   */
  maxAttempts?: number;
  /**
   * Poison calls: a call whose attempts end this many times in a row with
   * the app's connection dropped while its request was in flight (the app's
   * process died: `ECONNRESET`, socket hang up) fails for good with
   * PERMANENT_ERROR and a `QuarantinedError`. Calls in flight at a crash are
   * suspects, retried one at a time per endpoint, so that an innocent call
   * that died beside a poison one is not blamed again (see the README's
   * faults section). Default {@link SCHEDULER_DEFAULTS}`.quarantineAfter`.
   * @example { quarantineAfter: 3 }
   */
  quarantineAfter?: number;
  /**
   * Circuits per endpoint: an endpoint that refuses connections gets no
   * calls (they wait, pending) but one probe now and then, from
   * `initialProbeMs` doubling to `maxProbeMs`; its queue is released when a
   * probe connects. What is not given is {@link SCHEDULER_DEFAULTS}`.circuit`.
   * @example { circuit: { initialProbeMs: 1000, maxProbeMs: 30_000 } }
   */
  circuit?: CircuitOptions;
  /**
   * Spacing of retries; what is not given is {@link SCHEDULER_DEFAULTS}`.backoff`.
   * @example { backoff: { initialMs: 500, maxMs: 30_000 } }
   */
  backoff?: BackoffOptions;
  /**
   * Largest API request body, in bytes; larger ones get HTTP 413
   * `resource_exhausted`. Default {@link SCHEDULER_DEFAULTS}`.maxBodyBytes`.
   * @example { maxBodyBytes: 4_000_000 }
   */
  maxBodyBytes?: number;
  /**
   * Most calls in one `DispatchRequest`; a request with more is refused with
   * `invalid_argument` naming the limit (a binary one before it is decoded).
   * Default {@link SCHEDULER_DEFAULTS}`.maxCallsPerRequest`.
   * @example { maxCallsPerRequest: 5000 }
   */
  maxCallsPerRequest?: number;
  /**
   * What happens to unfinished children of a call that finishes (or
   * tail-calls) before collecting their results: `cancel` (nothing can read
   * their results any more) or `keep` (they run to completion). Default
   * {@link SCHEDULER_DEFAULTS}`.orphans`.
   * @example { orphans: 'keep' }
   */
  orphans?: 'cancel' | 'keep';
  /**
   * Most calls claimed from the store at once. Default
   * {@link SCHEDULER_DEFAULTS}`.claimBatch`.
   * @example { claimBatch: 64 }
   */
  claimBatch?: number;
  /**
   * Most RunRequests in flight over all endpoints. Default
   * {@link SCHEDULER_DEFAULTS}`.maxInFlight`.
   * @example { maxInFlight: 1000 }
   */
  maxInFlight?: number;
  /**
   * Resume this project's SDK without resending a state of at least this
   * many bytes (PollResult.state_elided; the SDK asks for it back when it
   * lost the execution); `Infinity` always sends the state. Default
   * {@link SCHEDULER_DEFAULTS}`.elideStateAbove`, and 0 with the in-process
   * transport (asking for a state back costs no network round trip there).
   * @example { elideStateAbove: Infinity }
   */
  elideStateAbove?: number;
  /**
   * Offer endpoints a local resume (`RunRequest.local_resume`, a protocol
   * extension): an endpoint of this SDK that holds a call's waiting parent
   * in memory resumes it with the call's result at once and answers both
   * in one round trip; the scheduler records the child's result first and
   * takes the parent's answer only for the very resume the endpoint ran.
   * Other SDKs ignore the offer. Default true; `false` resumes every parent
   * through its own request (for comparison, or to debug).
   * @example { localResume: false }
   */
  localResume?: boolean;
  /**
   * Lease of a claimed call, in ms: this scheduler renews the leases of its
   * runs in flight every `leaseMs / 3`; if it dies, another instance (or the
   * next start) runs the call again once the lease expires. Shorter leases
   * fail over faster and cost more renewals. Default
   * {@link SCHEDULER_DEFAULTS}`.leaseMs`.
   * @example { leaseMs: 60_000 }
   */
  leaseMs?: number;
  /**
   * Start with the run loop held: the API accepts calls (they are stored
   * and wait, pending), but none runs until {@link Scheduler.startRunning}.
   * `dispatch run` holds it until the app listens, so that calls left by an
   * earlier run do not fail against an endpoint still starting. Default
   * false.
   * @example { startPaused: true }
   */
  startPaused?: boolean;
  /**
   * Serve the dashboard at `/dashboard/` on the API's port, behind the same
   * API keys (a login form, or a one-time link from
   * `scheduler.dashboardLoginUrl()`). Default true.
   * @example { dashboard: false }
   */
  dashboard?: boolean;
  /**
   * How RunRequests reach endpoints. `'http'` (default): encoded, signed
   * and POSTed. `'in-process'`: a call whose endpoint is served by a
   * `Dispatch` instance in this process (registered in the in-process
   * registry of `@dispatch/core/protocol`: `DISPATCH_IN_PROCESS=1`, or
   * `@dispatch/testing`) is handed to it as an object — no socket, no
   * signature, no encoding; calls to other endpoints still go over HTTP.
   * @example { transport: 'in-process' }
   */
  transport?: 'http' | 'in-process';
  /**
   * Whether the API server keeps the process alive. Default true; the
   * in-process entry sets false, so that the app's process ends when the
   * app is done.
   * @example { keepProcessAlive: false }
   */
  keepProcessAlive?: boolean;
}
