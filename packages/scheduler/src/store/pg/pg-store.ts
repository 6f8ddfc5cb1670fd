/**
 * The PostgreSQL store: several scheduler instances share one database (one
 * schema) and its work.
 *
 * - Claims lease rows with `FOR UPDATE SKIP LOCKED`, one statement for every
 *   (endpoint, function) pair with capacity: instances never wait for each
 *   other's claims, and a row is leased to one owner at a time. A lease is
 *   `due_at` (its expiry) plus `lease_owner` and a growing `lease_token`;
 *   running instances renew theirs, a dead instance's calls become due when
 *   its leases expire and another instance claims them.
 * - `complete` records a run only if the row is still `running` under the
 *   same owner and token (checked under a row lock), so a result is
 *   recorded exactly once even when two owners race over an expired lease.
 * - Lock order: rows are always locked in `seq` order (a child's `seq` is
 *   larger than its parent's), so completing a child (parent, then child),
 *   completing a parent (parent, then its children), cancelling a tree and
 *   renewing leases cannot deadlock each other. Deadlocks and serialization
 *   failures are retried anyway.
 * - Wake-ups go through LISTEN/NOTIFY ({@link PgNotifier}); the run loop and
 *   Wait also poll, so a lost notification only costs latency.
 * - Memory stays flat: nothing loads a whole table; claims, listings and
 *   result deliveries are bounded by their limits.
 * - It only speaks SQL: what a transition does (states, wakes, dedupe,
 *   orphans) is decided in `../policy.ts`, and this file writes it.
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { proto } from '@dispatch/core/protocol';
import pg from 'pg';
import { type CallRecordRow, decodeAny, encodeAny, encodeTraceContext, encodeErrorBlob, hasStoredState, stateOf, toAttemptRecord, toCallRecord, toChildResult, toClaimedCall, toResume } from '../call-row.js';
import { countsByState, listLimit, parseCursor, toListPage } from '../listing.js';
import type {
  AttemptRecord,
  CallRecord,
  CallState,
  ChildResult,
  ClaimedCall,
  ClaimRequest,
  ClaimResult,
  CompleteRequest,
  CoroutineState,
  InstanceHeartbeat,
  ListFilter,
  ListPage,
  LiveCount,
  NewCall,
  NewSignal,
  ResumeAnswer,
  SignalAnswer,
  SignalRecord,
  Store,
  StoreChange,
} from '../store.js';
import { isFinished } from '../store.js';
import { MAX_POLL_RESULTS } from '@dispatch/core/protocol';
import * as policy from '../policy.js';
import { dueOnResultSql, elidesStateSql, FINISHED_SQL, runCountsSql, WAITING_SQL } from '../policy-sql.js';
import { PgNotifier } from './notifier.js';
import { claimLimited, claimLimitedAtOnce, type LeaseSql, type LimitTables, limitWaitOf, loadLimitSpecs, recordLimitSpecs } from './limits.js';
import { hasLimits, isKeyed, type LimitSpec, sameSpec } from '../limits.js';
import { DEFAULT_PG_SCHEMA, migratePg, PG_SCHEMA_PATTERN, quoteIdent } from './schema.js';
import { redactText } from '../../redact.js';
import { HealthTracker, isPgConnectionError, pgFailure, type StoreHealth } from '../faults.js';
import { PgScheduleStore } from './pg-schedules.js';

type IAny = proto.IAny;
type IError = proto.IError;

/**
 * Options of {@link PgStore.open}.
 * @example
 * const options: PgStoreOptions = { url: 'postgres://dispatch@db.internal:5432/dispatch', schema: 'dispatch', poolSize: 20 };
 */
export interface PgStoreOptions {
  /**
   * Connection URL (`postgres://user:password@host:port/database`). The
   * query parameters of this store are read and removed from it: `schema`,
   * `pool_size`, `listen` (`true`/`false`), `listen_url` (URL-encoded),
   * `prepared_statements` (`true`/`false`) and `vacuum_every`; explicit
   * options win. Anything else goes to `pg` (`sslmode`, `application_name`,
   * ...).
   * @example { url: 'postgres://postgres@127.0.0.1:5432/app?schema=dispatch&pool_size=20' }
   */
  url: string;
  /**
   * Schema holding the scheduler's tables, created if missing. Instances
   * that share work must use the same schema; other schemas are independent
   * schedulers. Default `dispatch`.
   * @example { schema: 'dispatch_staging' }
   */
  schema?: string;
  /**
   * Most connections this instance opens (the pool), plus one for LISTEN.
   * Default 10. Size the database's `max_connections` for
   * `instances × (poolSize + 1)` plus your other clients.
   * @example { poolSize: 20 }
   */
  poolSize?: number;
  /**
   * LISTEN for other instances' notifications (default true). Without it,
   * instances find work by polling (at least once a second).
   * @example { listen: false }
   */
  listen?: boolean;
  /**
   * A separate URL for the LISTEN connection, when the pool goes through a
   * pooler in transaction mode (PgBouncer), which cannot hold a LISTEN:
   * point this one at the database directly. Default: `url`.
   * @example { listenUrl: 'postgres://dispatch@db-primary:5432/app' }
   */
  listenUrl?: string;
  /**
   * Use named prepared statements for the frequent queries (default true):
   * parsed and planned once per connection. Turn off behind a pooler that
   * cannot keep them (PgBouncer in transaction mode before 1.21).
   * @example { preparedStatements: false }
   */
  preparedStatements?: boolean;
  /**
   * Vacuum the `calls` table after the instances have claimed or completed
   * this many calls (each leaves dead row versions behind; an instance
   * counts its share, divided by the live instances its heartbeats see), at
   * most once a second, for at most a tenth of the time, and one instance at
   * a time; 0 leaves it to autovacuum alone.
   * Default {@link DEFAULT_VACUUM_EVERY}. Autovacuum wakes once a minute by
   * default (and some servers run without it): in between, every claim
   * steps over the dead versions of the rows claimed before it, and a
   * backlog of 40,000 calls ran at half the speed with three times the
   * server's CPU. The role needs to own the table (it does when it created
   * the schema); otherwise one warning, and no more tries.
   * @example { vacuumEvery: 50_000 }
   */
  vacuumEvery?: number;
  /**
   * Extra `pg` pool settings (ssl, timeouts...), merged under this store's.
   * @example { pool: { ssl: { rejectUnauthorized: true }, connectionTimeoutMillis: 5_000 } }
   */
  pool?: pg.PoolConfig;
}

/**
 * Splits a `postgres://` URL into the `pg` connection string and this store's own parameters.
 * @example
 * parsePgUrl('postgres://h/db?schema=s&pool_size=4'); // { connectionString: 'postgres://h/db', schema: 's', poolSize: 4 }
 */
export function parsePgUrl(url: string): PgUrlParts {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`not a valid PostgreSQL URL: ${JSON.stringify(redactUrl(url))}; use postgres://user@host:5432/database`);
  }
  if (!isPgUrl(url)) {
    throw new TypeError(`a PostgreSQL URL starts with postgres:// or postgresql://, got ${JSON.stringify(redactUrl(url))}`);
  }
  const out: PgUrlParts = { connectionString: '' };
  const schema = u.searchParams.get('schema');
  if (schema !== null) out.schema = schema;
  const pool = u.searchParams.get('pool_size');
  if (pool !== null) {
    const n = Number(pool);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`pool_size in the PostgreSQL URL must be a positive integer, got ${JSON.stringify(pool)}`);
    out.poolSize = n;
  }
  const bool = (name: string): boolean | undefined => {
    const v = u.searchParams.get(name);
    if (v === null) return undefined;
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new RangeError(`${name} in the PostgreSQL URL must be true or false, got ${JSON.stringify(v)}`);
  };
  const listen = bool('listen');
  if (listen !== undefined) out.listen = listen;
  const prepared = bool('prepared_statements');
  if (prepared !== undefined) out.preparedStatements = prepared;
  const listenUrl = u.searchParams.get('listen_url');
  if (listenUrl !== null) out.listenUrl = listenUrl;
  const vacuum = u.searchParams.get('vacuum_every');
  if (vacuum !== null) {
    const n = Number(vacuum);
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`vacuum_every in the PostgreSQL URL must be a whole number (0: leave it to autovacuum), got ${JSON.stringify(vacuum)}`);
    out.vacuumEvery = n;
  }
  for (const name of ['schema', 'pool_size', 'listen', 'prepared_statements', 'listen_url', 'vacuum_every']) u.searchParams.delete(name);
  out.connectionString = u.toString();
  return out;
}

/** What {@link parsePgUrl} finds in a URL. */
export interface PgUrlParts {
  /** The URL without this store's parameters (for `pg`). */
  connectionString: string;
  schema?: string;
  poolSize?: number;
  listen?: boolean;
  listenUrl?: string;
  preparedStatements?: boolean;
  vacuumEvery?: number;
}

/**
 * True for `postgres://` and `postgresql://` URLs, in any case.
 * @example isPgUrl('POSTGRES://db.internal/app') // true; isPgUrl('.dispatch/dispatch.db') // false
 */
export function isPgUrl(text: string): boolean {
  return /^postgres(ql)?:\/\//i.test(text);
}

/** The URL with its password (`user:***@`, `?password=***`) replaced by `***` (for messages). */
export function redactUrl(url: string): string {
  return redactText(url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*:)[^@]*@/i, '$1***@'));
}

/** A `calls` row as PostgreSQL returns it: the shared columns plus the ones only the store reads. */
interface CallRow extends CallRecordRow {
  seq: number;
  parent_generation: number;
  lease_owner: string | null;
  lease_token: number;
  generation: number;
  mode: number;
  /** Legacy (schema < 3): NULL once migrated; the bytes live in call_state_chunks. */
  state_value: Buffer | null;
  state_length: number;
  state_delta: number;
  poll_error: Buffer | null;
  ready_errors: number;
  deliver: number | null;
  has_error: number;
}

/** What complete/cancel/restart read under the row lock. */
type LockedRow = Pick<
  CallRow,
  | 'seq'
  | 'id'
  | 'state'
  | 'lease_owner'
  | 'lease_token'
  | 'attempts'
  | 'resumes'
  | 'parent_id'
  | 'parent_generation'
  | 'generation'
  | 'mode'
  | 'ready'
  | 'ready_errors'
  | 'deliver'
  | 'has_error'
  | 'state_kind'
  | 'state_type_url'
  | 'state_length'
>;

/** Side effects to announce once a transaction has committed. */
interface Effects {
  due: boolean;
  /** Declared limits changed: every instance reloads them (with the queues). */
  limits?: boolean;
  queues: Array<[string, string]>;
  finished: string[];
}


/** A connection checked out of the pool, with an error listener from the first moment. */
interface CheckedOut {
  client: pg.PoolClient;
  /** The error the connection met while checked out (it is then discarded on release). */
  broken: Error | undefined;
  /** Gives it back (discarded when broken or `discard` is given), removing the listener. */
  release(discard?: Error | boolean): void;
}

/**
 * Checks a connection out of the pool with an `'error'` listener attached in
 * pg-pool's own callback: pg-pool removes its listener while a connection is
 * checked out, and an error message that arrives in the same packet as the
 * connection's ReadyForQuery (a backend terminated as it starts) is emitted
 * before an `await` could attach one (an unhandled 'error' event ends the
 * process).
 */
function checkOut(pool: pg.Pool): Promise<CheckedOut> {
  return new Promise((resolve, reject) => {
    pool.connect((err, client, done) => {
      if (err || !client) {
        reject(err ?? new Error('the pool gave no connection'));
        return;
      }
      const out: CheckedOut = {
        client,
        broken: undefined,
        release(discard) {
          client.off('error', onError);
          done(discard ?? out.broken);
        },
      };
      const onError = (e: Error) => {
        out.broken ??= e;
      };
      client.on('error', onError);
      resolve(out);
    });
  });
}

/** BIGINT columns hold milliseconds and sequence numbers: safe as JS numbers. */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === 20 && format !== 'binary' ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

const RETRYABLE_CODES = new Set(['40001', '40P01']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * Tries of an operation that met a lost connection, each on a new one
 * (backoff 25 ms doubling, at most 1 s: about 3 s in all); then it fails with
 * a StoreUnavailableError (the API answers `unavailable`, the run loop
 * retries later).
 */
const CONNECTION_TRIES = 8;
/** At most one warning about broken idle connections per this many ms (a restart breaks them all). */
const POOL_WARNING_INTERVAL_MS = 10_000;

const CLAIM_COLUMNS = `c.seq, c.id, c.function, c.endpoint, c.parent_id, c.root_id, c.created_at, c.expires_at, c.attempts,
  c.resumes, c.failures, c.lease_token, CASE WHEN c.mode = 1 THEN NULL ELSE c.input END AS input, c.mode, c.generation, c.poll_max, c.state_kind, c.state_type_url, c.state_length,
  c.state_delta, c.poll_error, c.trace_context`;
const LOCK_COLUMNS = `c.seq, c.id, c.state, c.lease_owner, c.lease_token, c.attempts, c.resumes, c.parent_id, c.parent_generation,
  c.generation, c.mode, c.ready, c.ready_errors, c.deliver, c.has_error, c.state_kind, c.state_type_url, c.state_length`;
/** The bytes of the state of the row `c`: its chunks of the current generation in order (or a legacy state_value). */
const stateBytesSql = (chunks: string) => `COALESCE(c.state_value, (SELECT string_agg(k.bytes, ''::bytea ORDER BY k.seq)
  FROM ${chunks} k WHERE k.call_id = c.id AND k.generation = c.generation))`;
const LIST_COLUMNS = `seq, id, function, endpoint, version, original_function, idempotency_key, parent_id, root_id,
  correlation_id, state, status, due_at, created_at, updated_at, finished_at, expires_at, attempts, resumes, failures,
  ready, poll_min, poll_max, error, limit_key`;

/**
 * The PostgreSQL store.
 * @example
 * const store = await PgStore.open({ url: 'postgres://postgres@127.0.0.1:5432/app', schema: 'dispatch' });
 * const scheduler = await Scheduler.start({ store, port: 4450 });
 */
export class PgStore implements Store {
  /** The schema holding the tables. */
  readonly schema: string;
  /** The connection pool (for tools and tests; do not write through it). */
  readonly pool: pg.Pool;
  /** This store object's ID in notifications (its own are ignored). */
  readonly storeId: string;
  readonly #notifier: PgNotifier | null;
  readonly #listen: boolean;
  readonly #t: {
    calls: string;
    queues: string;
    attempts: string;
    meta: string;
    instances: string;
    chunks: string;
    revoked: string;
    signals: string;
  };
  readonly #knownQueues = new Set<string>();
  #queueList: Array<[string, string]> = [];
  /** Declared limits per pair (`function_limits`), read with the queues. */
  #limitSpecs = new Map<string, LimitSpec>();
  readonly #lt: LimitTables;
  #queuesLoadedAt = Number.NEGATIVE_INFINITY;
  #rotation = 0;
  #closed = false;
  #warningSink: ((message: string) => void) | null = null;
  readonly #prepared: boolean;
  /** The schedules (issue 15): ticks are compare-and-set transactions of this store. */
  readonly schedules: PgScheduleStore;
  /** What claimDue learned about the calls it leased (until they complete): the fast path of `complete`. */
  readonly #leases = new Map<string, { token: number; parentId: string | null; mode: number }>();
  /** A claim met a lost connection: it may have leased rows whose answer never came (released at the next claim). */
  #claimLost = false;
  readonly #health = new HealthTracker();
  /** The database's URL without its password, for messages. */
  readonly #where: string;
  /** Calls claimed or completed between vacuums of `calls` (`vacuumEvery`; 0: never). */
  readonly #vacuumEvery: number;
  #churn = 0;
  #vacuuming: Promise<void> | null = null;
  #vacuumEndedAt = Number.NEGATIVE_INFINITY;
  #vacuumMs = 0;
  /** Live instances on this schema, as the last heartbeat counted them: each counts its share of `vacuumEvery`. */
  #instances = 1;
  /** Whether the role may vacuum `calls` (its owner, or a superuser): null until the first vacuum asks. */
  #mayVacuum: boolean | null = null;
  #vacuumSink: ((event: PgVacuumEvent) => void) | null = null;

  private constructor(init: {
    pool: pg.Pool;
    schema: string;
    storeId: string;
    listen: boolean;
    prepared: boolean;
    notifier: (store: PgStore) => PgNotifier;
    where: string;
    vacuumEvery: number;
  }) {
    this.pool = init.pool;
    this.#vacuumEvery = init.vacuumEvery;
    this.#where = init.where;
    this.#prepared = init.prepared;
    this.schema = init.schema;
    this.storeId = init.storeId;
    this.#listen = init.listen;
    const s = quoteIdent(init.schema);
    this.#t = {
      calls: `${s}.calls`,
      queues: `${s}.queues`,
      attempts: `${s}.attempts`,
      meta: `${s}.meta`,
      instances: `${s}.instances`,
      chunks: `${s}.call_state_chunks`,
      revoked: `${s}.revoked_sessions`,
      signals: `${s}.signals`,
    };
    this.#lt = { calls: `${s}.calls`, limits: `${s}.function_limits`, windows: `${s}.limit_windows`, allowance: `${s}.limit_allowance` };
    this.#notifier = init.notifier(this);
    this.schedules = new PgScheduleStore(this.pool, `${s}.schedules`, (fn) =>
      this.#tx((c, fx) => fn(c, (calls) => this.#insertCallsIn(c, calls, fx))),
    );
  }

  /**
   * Connects, creates or migrates the schema (once, under an advisory lock,
   * when several instances start together) and returns the store.
   * @example
   * const store = await PgStore.open({ url: process.env.DATABASE_URL!, poolSize: 20 });
   */
  static async open(options: PgStoreOptions): Promise<PgStore> {
    const parsed = parsePgUrl(options.url);
    const schema = options.schema ?? parsed.schema ?? DEFAULT_PG_SCHEMA;
    if (!PG_SCHEMA_PATTERN.test(schema)) {
      throw new RangeError(
        `the PostgreSQL schema name must match ${PG_SCHEMA_PATTERN} (lower-case letters, digits, underscores), got ${JSON.stringify(schema)}`,
      );
    }
    const poolSize = options.poolSize ?? parsed.poolSize ?? 10;
    if (!(Number.isInteger(poolSize) && poolSize >= 1)) throw new RangeError(`poolSize must be a positive integer, got ${poolSize}`);
    const vacuumEvery = options.vacuumEvery ?? parsed.vacuumEvery ?? DEFAULT_VACUUM_EVERY;
    if (!(Number.isInteger(vacuumEvery) && vacuumEvery >= 0)) {
      throw new RangeError(`vacuumEvery must be a whole number of calls (0: leave it to autovacuum), got ${vacuumEvery}`);
    }
    const base: pg.ClientConfig = {
      application_name: 'dispatch-scheduler',
      // A server that does not answer must not hang the scheduler: fail, and retry.
      connectionTimeoutMillis: 10_000,
      ...options.pool,
      connectionString: parsed.connectionString,
      keepAlive: true,
      types: TYPES,
    };
    const pool = new pg.Pool({ ...base, max: poolSize });
    // An idle connection that breaks must not crash the process; the next query reconnects.
    // (A restart of the server breaks them all at once: one line per interval, with a count.)
    let warn: (m: string) => void = (m) => process.emitWarning(m);
    let lastWarning = Number.NEGATIVE_INFINITY;
    let unreported = 0;
    pool.on('error', (err) => {
      unreported++;
      const now = Date.now();
      if (now - lastWarning < POOL_WARNING_INTERVAL_MS) return;
      lastWarning = now;
      warn(`${unreported} idle PostgreSQL connection(s) of the pool broke (${redactText(err.message)}); they are replaced on next use`);
      unreported = 0;
    });
    let checkedOut: CheckedOut;
    try {
      checkedOut = await checkOut(pool);
    } catch (err) {
      await pool.end().catch(() => {});
      const e = err as Error & { code?: string };
      throw new Error(
        `cannot connect to PostgreSQL at ${redactUrl(parsed.connectionString)} (${e.code ?? e.message}): check that the server runs and that the URL, user and database are right`,
        { cause: err },
      );
    }
    try {
      await migratePg(checkedOut.client, schema);
    } catch (err) {
      checkedOut.release(true);
      await pool.end().catch(() => {});
      throw err;
    }
    checkedOut.release();
    const storeId = randomBytes(6).toString('hex');
    const listenUrl = options.listenUrl ?? parsed.listenUrl;
    const store: PgStore = new PgStore({
      pool,
      schema,
      storeId,
      listen: options.listen ?? parsed.listen ?? true,
      prepared: options.preparedStatements ?? parsed.preparedStatements ?? true,
      notifier: (self) =>
        new PgNotifier({
          clientConfig: {
            ...base,
            connectionString: listenUrl ? parsePgUrl(listenUrl).connectionString : parsed.connectionString,
          },
          channel: `dispatch_${schema}`,
          source: storeId,
          publish: async (channel, payloads) => {
            await pool.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [channel, payloads]);
          },
          onError: (m) => self.#onWarning(m),
          onQueues: () => self.invalidateQueues(),
          delayMs: 10,
        }),
      where: redactUrl(parsed.connectionString),
      vacuumEvery,
    });
    warn = (m) => store.#onWarning(m);
    return store;
  }

  #onWarning(message: string): void {
    if (this.#warningSink) this.#warningSink(message);
    else process.emitWarning(message);
  }

  /**
   * Where this store reports trouble it recovers from (a lost LISTEN
   * connection, a broken idle connection). Default: `process.emitWarning`.
   * @example store.onTrouble((m) => log.warn(m));
   */
  onTrouble(sink: (message: string) => void): void {
    this.#warningSink = sink;
  }

  /**
   * Where this store reports its vacuums of the `calls` table (see
   * {@link PgStoreOptions.vacuumEvery}): the scheduler counts them in its
   * metrics (`dispatch_store_vacuums_total`) and logs them at debug level.
   * @example store.onVacuum((e) => console.log(`vacuum ${e.outcome} in ${e.durationMs} ms`));
   */
  onVacuum(sink: (event: PgVacuumEvent) => void): void {
    this.#vacuumSink = sink;
  }

  /**
   * `n` calls claimed or completed: each left a dead version of its row.
   * Past this instance's share of `vacuumEvery` (divided among the live
   * instances), a second after the last vacuum ended and ten times its
   * duration, vacuums `calls` in the background (never awaited by the hot
   * path).
   */
  #churned(n: number): void {
    if (this.#vacuumEvery === 0 || n === 0 || this.#mayVacuum === false) return;
    this.#churn += n;
    if (this.#churn < Math.ceil(this.#vacuumEvery / this.#instances) || this.#vacuuming || this.#closed) return;
    // A vacuum takes at most a tenth of the time (its index scans grow with the table, not with the dead rows).
    if (Date.now() - this.#vacuumEndedAt < Math.max(VACUUM_MIN_INTERVAL_MS, 10 * this.#vacuumMs)) return;
    this.#churn = 0;
    this.#vacuuming = this.#vacuum().finally(() => {
      this.#vacuuming = null;
    });
  }

  /**
   * Vacuums `calls` unless another instance of this schema is doing it (a
   * session advisory lock, tried, not waited for). VACUUM takes no lock
   * that claims, completions or listings wait for. A role that may not
   * vacuum the table gets one warning and no more tries. Records when it
   * ended and how long it took (the pace of the next one).
   */
  async #vacuum(): Promise<void> {
    const started = Date.now();
    let checkedOut: CheckedOut | undefined;
    let broken: Error | undefined;
    let locked = false;
    const report = (outcome: PgVacuumEvent['outcome'], error?: string): void => {
      this.#vacuumSink?.({ outcome, durationMs: Date.now() - started, ...(error === undefined ? {} : { error }) });
    };
    try {
      checkedOut = await checkOut(this.pool);
      const c = checkedOut.client;
      if (this.#mayVacuum === null) {
        // A role that does not own the table gets a warning from VACUUM, not an error (PostgreSQL 15): ask first.
        const { rows: may } = await c.query<{ may: boolean }>(
          `SELECT pg_has_role(c.relowner, 'USAGE') OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS may
          FROM pg_class c WHERE c.oid = $1::regclass`,
          [this.#t.calls],
        );
        this.#mayVacuum = may[0]?.may === true;
        if (!this.#mayVacuum) {
          this.#onWarning(
            `the role the scheduler connects as does not own ${this.#t.calls}, so it cannot vacuum it: dead row versions wait for autovacuum ` +
              '(claims slow down while they pile up); let that role own the tables, or set vacuum_every=0 in the URL to say this is intended',
          );
          return report('failed', 'the role does not own the table');
        }
      }
      const key = `dispatch vacuum ${this.schema}`;
      const { rows } = await c.query<{ got: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS got', [key]);
      if (!rows[0]?.got) return report('skipped');
      locked = true;
      // SKIP_LOCKED: not behind an autovacuum worker (or DDL) already at it.
      await c.query(`VACUUM (SKIP_LOCKED) ${this.#t.calls}`);
      await c.query('SELECT pg_advisory_unlock(hashtext($1))', [key]);
      locked = false;
      report('done');
    } catch (err) {
      // Still holding the lock: the connection is closed, not pooled, which releases it.
      broken = checkedOut?.broken ?? (locked || isPgConnectionError(err) ? (err as Error) : undefined);
      const message = redactText((err as Error).message);
      report('failed', message);
      if (!this.#closed) this.#onWarning(`vacuuming ${this.#t.calls} failed (${message}); tried again after ${this.#vacuumEvery} more calls`);
    } finally {
      checkedOut?.release(broken);
      this.#vacuumEndedAt = Date.now();
      this.#vacuumMs = this.#vacuumEndedAt - started;
    }
  }

  /** Forget the cached (endpoint, function) pairs: read them again at the next claim. */
  invalidateQueues(): void {
    this.#queuesLoadedAt = Number.NEGATIVE_INFINITY;
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error('the store is closed');
  }

  /** A frequent query, as a named prepared statement unless turned off. */
  #sql<R extends pg.QueryResultRow>(c: pg.Pool | pg.PoolClient, name: string, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    return c.query<R>(this.#prepared ? { name: `dispatch_${name}`, text, values } : { text, values });
  }

  /**
   * Runs `fn`, again on a new connection when the connection was lost or
   * could not be made (killed, server restarting: {@link CONNECTION_TRIES}).
   * `uncertain` tells `fn` that an earlier try may have committed before its
   * answer was lost (writes check what is there). A storage error that
   * lasts becomes a StoreUnavailableError saying what is wrong, and the
   * store unhealthy until an operation succeeds.
   */
  async #retry<T>(fn: (uncertain: boolean) => Promise<T>): Promise<T> {
    this.#checkOpen();
    let uncertain = false;
    for (let attempt = 1; ; attempt++) {
      try {
        const value = await fn(uncertain);
        if (this.#health.failing) this.#health.ok();
        return value;
      } catch (err) {
        if (this.#closed) throw err;
        if (isPgConnectionError(err) && attempt < CONNECTION_TRIES) {
          uncertain = true;
          await sleep(Math.min(1000, 25 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2));
          continue;
        }
        const failure = pgFailure(err, this.#where);
        if (!failure) throw err;
        this.#health.failed(failure);
        throw failure;
      }
    }
  }

  /**
   * Whether the database answers now (a `SELECT 1`, at most 5 s): `/healthz`
   * reports it under `store`.
   * @example
   * const h = await store.health(); // { ok: false, code: '57P03', reason: "the scheduler's database is shutting down or restarting (…)" }
   */
  async health(): Promise<StoreHealth> {
    if (this.#closed) return { ok: false, reason: 'the store is closed', code: 'closed' };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error('no answer within 5 s'), { code: 'ETIMEDOUT' })), 5000);
    });
    try {
      await Promise.race([this.pool.query('SELECT 1'), timeout]);
      this.#health.ok();
    } catch (err) {
      const failure = pgFailure(err, this.#where);
      if (failure) this.#health.failed(failure);
    } finally {
      clearTimeout(timer);
    }
    return this.#health.report();
  }

  /**
   * Runs `fn` in a transaction, retrying deadlocks and serialization failures
   * and, through {@link #retry}, lost connections; announces its effects
   * after commit. The connection has an error listener while it is checked
   * out (pg-pool removes its own), so a connection killed mid-transaction
   * rejects this transaction instead of crashing the process, and is
   * discarded.
   */
  #tx<T>(fn: (c: pg.PoolClient, fx: Effects, uncertain: boolean) => Promise<T>): Promise<T> {
    return this.#retry((uncertain) => this.#txOnce(fn, uncertain));
  }

  /** One try of {@link #tx} (deadlocks and serialization failures retried; a lost connection thrown). */
  #txOnce<T>(fn: (c: pg.PoolClient, fx: Effects, uncertain: boolean) => Promise<T>, uncertain: boolean): Promise<T> {
    return (async () => {
      for (let attempt = 1; ; attempt++) {
        const fx: Effects = { due: false, queues: [], finished: [] };
        const checkedOut = await checkOut(this.pool);
        const client = checkedOut.client;
        let broken: Error | undefined;
        try {
          await client.query('BEGIN');
          const result = await fn(client, fx, uncertain);
          await client.query('COMMIT');
          this.#announce(fx);
          return result;
        } catch (err) {
          broken ??= checkedOut.broken;
          if (!broken && !isPgConnectionError(err)) {
            try {
              await client.query('ROLLBACK');
            } catch (e) {
              broken = e as Error;
            }
          } else {
            broken ??= err as Error;
          }
          const code = (err as { code?: string }).code;
          if (code && RETRYABLE_CODES.has(code) && attempt < 20 && !broken) {
            await sleep(Math.random() * 5 * attempt);
            continue;
          }
          throw err;
        } finally {
          checkedOut.release(broken);
        }
      }
    })();
  }

  #announce(fx: Effects): void {
    for (const [endpoint, fn] of fx.queues) {
      const key = `${endpoint}\u0000${fn}`;
      if (!this.#knownQueues.has(key)) {
        this.#knownQueues.add(key);
        this.#queueList.push([endpoint, fn]);
      }
    }
    if (fx.limits) this.invalidateQueues();
    if (!this.#notifier) return;
    if (fx.queues.length > 0 || fx.limits) this.#notifier.queues();
    else if (fx.due) this.#notifier.due();
    this.#notifier.finished(fx.finished);
  }

  async #loadQueues(now: number): Promise<void> {
    const { rows } = await this.pool.query<{ endpoint: string; function: string }>(
      `SELECT endpoint, function FROM ${this.#t.queues} ORDER BY endpoint, function`,
    );
    this.#queueList = rows.map((r) => [r.endpoint, r.function]);
    this.#limitSpecs = await loadLimitSpecs(this.pool, this.#lt);
    this.#knownQueues.clear();
    for (const r of rows) this.#knownQueues.add(`${r.endpoint}\u0000${r.function}`);
    this.#queuesLoadedAt = now;
  }

  /** Adds the (endpoint, function) pairs not known yet; sorted, so concurrent inserts cannot deadlock. */
  async #ensureQueues(c: pg.PoolClient, pairs: Array<[string, string]>, fx: Effects): Promise<void> {
    const missing = new Map<string, [string, string]>();
    for (const [e, f] of pairs) {
      const key = `${e}\u0000${f}`;
      if (!this.#knownQueues.has(key)) missing.set(key, [e, f]);
    }
    if (missing.size === 0) return;
    const sorted = [...missing.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((x) => x[1]);
    await c.query(
      `INSERT INTO ${this.#t.queues} (endpoint, function) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING`,
      [sorted.map((p) => p[0]), sorted.map((p) => p[1])],
    );
    fx.queues.push(...sorted);
  }

  /** Inserts rows (no idempotency handling); answers the IDs actually inserted. */
  async #insertRows(c: pg.PoolClient, calls: NewCall[], parentGeneration: number, fx: Effects): Promise<Set<string>> {
    if (calls.length === 0) return new Set();
    await this.#ensureQueues(
      c,
      calls.map((x) => [x.endpoint, x.function]),
      fx,
    );
    const declared = new Map<string, [string, string, LimitSpec]>();
    for (const x of calls) {
      if (!x.limits) continue;
      const k = `${x.endpoint}\u0000${x.function}`;
      const known = this.#limitSpecs.get(k);
      if (!known || !sameSpec(known, x.limits.spec)) declared.set(k, [x.endpoint, x.function, x.limits.spec]);
    }
    if (declared.size > 0 && (await recordLimitSpecs(c, this.#lt, [...declared.values()], calls[0]!.createdAt))) fx.limits = true;
    const { rows } = await this.#sql<{ id: string }>(
      c,
      'insert_calls',
      `INSERT INTO ${this.#t.calls} (id, function, endpoint, version, input, original_function, original_endpoint,
        idempotency_key, parent_id, parent_generation, root_id, correlation_id, state, due_at,
        created_at, updated_at, expires_at, expiration_ms, limit_key, trace_context)
      SELECT id, fn, ep, ver, inp, fn, ep, ik, pid, $13::int, rid, corr, 'pending', due, cat, cat, exp, expms, lk, tc
      FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[], $7::text[], $8::text[],
        $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $14::bigint[], $15::text[], $16::text[])
        AS u(id, fn, ep, ver, inp, ik, pid, rid, corr, due, cat, exp, expms, lk, tc)
      ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING id`,
      [
        calls.map((x) => x.id),
        calls.map((x) => x.function),
        calls.map((x) => x.endpoint),
        calls.map((x) => x.version ?? ''),
        calls.map((x) => encodeAny(x.input)),
        calls.map((x) => x.idempotencyKey || null),
        calls.map((x) => x.parentId ?? null),
        calls.map((x) => x.rootId),
        calls.map((x) => (x.correlationId === undefined ? null : x.correlationId.toString())),
        calls.map((x) => x.dueAt),
        calls.map((x) => x.createdAt),
        calls.map((x) => x.expiresAt),
        parentGeneration,
        calls.map((x) => x.expirationMs),
        calls.map((x) => x.limits?.key ?? ''),
        calls.map((x) => encodeTraceContext(x.traceContext)),
      ],
    );
    fx.due = true;
    return new Set(rows.map((r) => r.id));
  }

  insertCalls(calls: NewCall[]): Promise<string[]> {
    return this.#tx((c, fx, uncertain) => this.#insertCallsIn(c, calls, fx, uncertain));
  }

  /** Inserts root calls within a transaction, honouring idempotency keys. */
  async #insertCallsIn(c: pg.PoolClient, calls: NewCall[], fx: Effects, uncertain = false): Promise<string[]> {
    const rows = policy.firstPerKey(calls);
    let inserted: Set<string> | null = null;
    if (uncertain && rows.length > 0) {
      // An earlier try may have committed before its answer was lost: the rows are there (all or none).
      const { rows: found } = await c.query<{ id: string }>(`SELECT id FROM ${this.#t.calls} WHERE id = ANY($1::text[])`, [rows.map((r) => r.id)]);
      if (found.length > 0) inserted = new Set(found.map((f) => f.id));
    }
    inserted ??= await this.#insertRows(c, rows, 0, fx);
    const known = new Map<string, string>();
    const lost = rows.filter((r) => r.idempotencyKey && !inserted.has(r.id)).map((r) => r.idempotencyKey!);
    if (lost.length > 0) {
      // The key was taken (maybe by another instance, committed meanwhile): answer the original ID.
      const { rows: found } = await c.query<{ id: string; idempotency_key: string }>(
        `SELECT id, idempotency_key FROM ${this.#t.calls} WHERE idempotency_key = ANY($1::text[])`,
        [lost],
      );
      for (const f of found) known.set(f.idempotency_key, f.id);
    }
    return policy.answerIds(calls, inserted, known);
  }

  claimDue(req: ClaimRequest): Promise<ClaimResult> {
    return this.#retry(async () => {
      if (this.#claimLost) await this.#releaseLostClaims(req.owner, req.now);
      try {
        const claimed = await this.#claimOnce(req);
        this.#churned(claimed.calls.length);
        return claimed;
      } catch (err) {
        if (isPgConnectionError(err)) this.#claimLost = true;
        throw err;
      }
    });
  }

  async limitWait(call: { endpoint: string; function: string; limitKey: string }, now: number): Promise<proto.ILimitWait | null> {
    this.#checkOpen();
    if (now - this.#queuesLoadedAt > 1000) await this.#loadQueues(now);
    const spec = this.#limitSpecs.get(`${call.endpoint}\u0000${call.function}`);
    return hasLimits(spec) ? limitWaitOf(this.pool, this.#lt, spec, call, now) : null;
  }

  /**
   * A claim whose answer was lost may have leased rows to this owner that no
   * run will complete: they go back to `pending`, due now (they never ran).
   * Rows of runs in flight (`#leases`, kept until their result is recorded)
   * are left alone.
   */
  async #releaseLostClaims(owner: string, now: number): Promise<void> {
    await this.pool.query(
      `UPDATE ${this.#t.calls} SET state = 'pending', due_at = $1, lease_owner = NULL
      WHERE lease_owner = $2 AND state = 'running' AND NOT (id = ANY($3::text[]))`,
      [now, owner, [...this.#leases.keys()]],
    );
    this.#claimLost = false;
  }

  async #claimOnce(req: ClaimRequest): Promise<ClaimResult> {
    this.#checkOpen();
    if (req.now - this.#queuesLoadedAt > 1000) await this.#loadQueues(req.now);
    const n = this.#queueList.length;
    const start = n > 0 ? this.#rotation++ % n : 0;
    const eps: string[] = [];
    const fns: string[] = [];
    const caps: number[] = [];
    const limited: Array<[string, string, number]> = [];
    for (let i = 0; i < n; i++) {
      const [endpoint, fn] = this.#queueList[(start + i) % n]!;
      const cap = Math.min(req.capacity(endpoint, fn), req.limit);
      if (cap <= 0) continue;
      if (hasLimits(this.#limitSpecs.get(`${endpoint}\u0000${fn}`))) {
        limited.push([endpoint, fn, cap]);
        continue;
      }
      eps.push(endpoint);
      fns.push(fn);
      caps.push(cap);
    }
    if (req.limit <= 0) return { calls: [], nextDueAt: null };
    // Bytes of states the run loop will elide are not read (their length is enough).
    const elideStateAbove = req.elideStateAbove ?? Number.POSITIVE_INFINITY;
    if (limited.length > 0) return this.#claimWithLimits(req, limited, eps.length > 0 ? { eps, fns, caps } : null, elideStateAbove);
    if (eps.length === 0) return { calls: [], nextDueAt: null };
    return this.#claimUnlimited(req, eps, fns, caps, elideStateAbove);
  }

  /**
   * Claims limited pairs (each on its own: one statement for limits that are
   * not per key, a transaction for per-key limits, `limits.ts`), then the
   * others with what the total limit leaves.
   */
  async #claimWithLimits(
    req: ClaimRequest,
    limited: Array<[string, string, number]>,
    rest: { eps: string[]; fns: string[]; caps: number[] } | null,
    elideStateAbove: number,
  ): Promise<ClaimResult> {
    const calls: ClaimedCall[] = [];
    let nextDueAt: number | null = null;
    let remaining = req.limit;
    const specOf = (endpoint: string, fn: string) => this.#limitSpecs.get(`${endpoint}\u0000${fn}`);
    let due = limited;
    // A claim of limits that are not per key looks whether calls are due
    // itself, before it takes a lock: with one or two such pairs, that costs
    // no more round trips than a first look at every pair.
    if (limited.length > 2 || limited.some(([endpoint, fn]) => isKeyed(specOf(endpoint, fn)!))) {
      // One look at every limited pair first (through the due index, no lock):
      // only pairs with due calls are claimed; the others give their next due time.
      const { rows: heads } = await this.#sql<{ ord: number; next: number | null }>(
        this.pool,
        'limited_heads',
        `SELECT q.ord, (SELECT k.due_at FROM ${this.#t.calls} k WHERE k.endpoint = q.endpoint AND k.function = q.function
          AND k.due_at IS NOT NULL ORDER BY k.due_at LIMIT 1) AS next
        FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS q(endpoint, function, ord)`,
        [limited.map((l) => l[0]), limited.map((l) => l[1])],
      );
      due = [];
      for (const h of heads) {
        const next = h.next === null ? null : Number(h.next);
        if (next !== null && next <= req.now) due.push(limited[Number(h.ord) - 1]!);
        else if (next !== null && (nextDueAt === null || next < nextDueAt)) nextDueAt = next;
      }
    }
    const lease: LeaseSql = (i) => ({
      set: `state = 'running', due_at = $${i}, lease_owner = $${i + 1}, lease_token = c.lease_token + 1, updated_at = $${i + 2}`,
      returning: `${CLAIM_COLUMNS}, CASE WHEN c.mode = 1 AND c.state_kind <> 0 AND NOT ${elidesStateSql('c.', `$${i + 3}::float8`)}
        THEN ${stateBytesSql(this.#t.chunks)} END AS state_value`,
      params: [req.now + req.leaseMs, req.owner, req.now, elideStateAbove],
    });
    for (const [endpoint, fn, cap] of due) {
      if (remaining <= 0) {
        nextDueAt = req.now;
        break;
      }
      const q = { endpoint, fn, cap: Math.min(cap, remaining), now: req.now };
      const spec = specOf(endpoint, fn)!;
      let got = isKeyed(spec)
        ? null
        : await claimLimitedAtOnce<CallRow>((name, text, values) => this.#sql(this.pool, name, text, values), this.#lt, { ...q, spec }, lease);
      if (!got) {
        // Per-key limits, or limits declared anew since this instance read them.
        if (!isKeyed(spec)) this.invalidateQueues();
        got = await this.#tx((c) => claimLimited<CallRow>(c, this.#lt, q, lease));
      }
      for (const r of got.rows) this.#leases.set(r.id, { token: r.lease_token, parentId: r.parent_id, mode: r.mode });
      calls.push(...(await this.#toClaimed(got.rows, elideStateAbove)));
      remaining -= got.rows.length;
      if (got.nextDueAt !== null && (nextDueAt === null || got.nextDueAt < nextDueAt)) nextDueAt = got.nextDueAt;
    }
    if (rest && remaining > 0) {
      const more = await this.#claimUnlimited({ ...req, limit: remaining }, rest.eps, rest.fns, rest.caps.map((x) => Math.min(x, remaining)), elideStateAbove);
      calls.push(...more.calls);
      if (more.nextDueAt !== null && (nextDueAt === null || more.nextDueAt < nextDueAt)) nextDueAt = more.nextDueAt;
    } else if (rest) {
      nextDueAt = req.now;
    }
    return { calls, nextDueAt };
  }

  async #claimUnlimited(req: ClaimRequest, eps: string[], fns: string[], caps: number[], elideStateAbove: number): Promise<ClaimResult> {
    const { rows } = await this.#sql<CallRow & { ord: number; old_due: number }>(
      this.pool,
      'claim',
      `WITH q AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::int[]) WITH ORDINALITY AS q(endpoint, function, cap, ord)
      ), picked AS (
        SELECT q.ord, p.seq, p.due_at AS old_due FROM q CROSS JOIN LATERAL (
          SELECT seq, due_at FROM ${this.#t.calls} k
          WHERE k.endpoint = q.endpoint AND k.function = q.function AND k.due_at <= $4
          ORDER BY k.due_at LIMIT q.cap FOR UPDATE SKIP LOCKED
        ) p
        LIMIT $5
      )
      UPDATE ${this.#t.calls} c SET state = 'running', due_at = $6, lease_owner = $7, lease_token = c.lease_token + 1,
        updated_at = $4
      FROM picked WHERE c.seq = picked.seq
      RETURNING picked.ord, picked.old_due, ${CLAIM_COLUMNS},
        CASE WHEN c.mode = 1 AND c.state_kind <> 0 AND NOT ${elidesStateSql('c.', '$8::float8')}
        THEN ${stateBytesSql(this.#t.chunks)} END AS state_value`,
      [eps, fns, caps, req.now, req.limit, req.now + req.leaseMs, req.owner, elideStateAbove],
    );
    rows.sort((a, b) => a.ord - b.ord || a.old_due - b.old_due || a.seq - b.seq);
    for (const r of rows) this.#leases.set(r.id, { token: r.lease_token, parentId: r.parent_id, mode: r.mode });

    // nextDueAt, as the SQLite store: `now` when a limit stopped the claim,
    // else the earliest due_at of the pairs that still had capacity.
    let nextDueAt: number | null = null;
    const claimedPerPair = new Map<number, number>();
    for (const r of rows) claimedPerPair.set(r.ord, (claimedPerPair.get(r.ord) ?? 0) + 1);
    const open: number[] = [];
    let stopped = rows.length >= req.limit;
    for (let i = 0; i < eps.length; i++) {
      const got = claimedPerPair.get(i + 1) ?? 0;
      if (got >= caps[i]!) stopped = true;
      else open.push(i);
    }
    if (stopped) nextDueAt = req.now;
    if (open.length > 0 && !(rows.length >= req.limit)) {
      const { rows: next } = await this.#sql<{ due: number | null }>(
        this.pool,
        'next_due',
        `SELECT min(n.due_at) AS due FROM unnest($1::text[], $2::text[]) AS q(endpoint, function)
        CROSS JOIN LATERAL (SELECT due_at FROM ${this.#t.calls} k WHERE k.endpoint = q.endpoint AND k.function = q.function
          AND k.due_at IS NOT NULL ORDER BY k.due_at LIMIT 1) n`,
        [open.map((i) => eps[i]!), open.map((i) => fns[i]!)],
      );
      let due = next[0]?.due ?? null;
      // Due but not claimed with capacity left: rows locked by another
      // transaction (a claim or a completion). Look again shortly, not at once.
      if (due !== null && due <= req.now) due = req.now + 10;
      if (due !== null && (nextDueAt === null || due < nextDueAt)) nextDueAt = due;
    }
    const calls = await this.#toClaimed(rows, elideStateAbove);
    return { calls, nextDueAt };
  }

  async #toClaimed(rows: CallRow[], elideStateAbove: number): Promise<ClaimedCall[]> {
    const resumes = rows.filter((r) => r.mode === 1);
    const results = new Map<string, ChildResult[]>();
    if (resumes.length > 0) {
      const { rows: ready } = await this.#sql<{
        parent: string;
        id: string;
        correlation_id: string | null;
        output: Buffer | null;
        error: Buffer | null;
      }>(
        this.pool,
        'ready_results',
        `SELECT p.pid AS parent, r.id, r.correlation_id, r.output, r.error
        FROM unnest($1::text[], $2::int[], $3::int[]) WITH ORDINALITY AS p(pid, gen, lim, ord)
        CROSS JOIN LATERAL (SELECT id, correlation_id, output, error, finished_at, seq FROM ${this.#t.calls} k
          WHERE k.parent_id = p.pid AND k.parent_generation = p.gen AND k.deliver = 1
          ORDER BY k.finished_at, k.seq LIMIT p.lim) r
        ORDER BY p.ord, r.finished_at, r.seq`,
        [resumes.map((r) => r.id), resumes.map((r) => r.generation), resumes.map((r) => Math.max(1, r.poll_max))],
      );
      for (const r of ready) {
        let list = results.get(r.parent);
        if (!list) results.set(r.parent, (list = []));
        list.push(toChildResult(r));
      }
      // Signals consumed by the Poll's waits, after the children's results, within max_results.
      const { rows: signals } = await this.#sql<{ call_id: string; seq: string; correlation_id: string; payload: Buffer | null }>(
        this.pool,
        'ready_signals',
        `SELECT s.call_id, s.seq, s.correlation_id, s.payload FROM unnest($1::text[], $2::int[]) AS p(pid, gen)
        JOIN ${this.#t.signals} s ON s.call_id = p.pid AND s.generation = p.gen AND s.state = 1
        ORDER BY s.consumed_at, s.seq`,
        [resumes.map((r) => r.id), resumes.map((r) => r.generation)],
      );
      for (const sig of signals) {
        let list = results.get(sig.call_id);
        if (!list) results.set(sig.call_id, (list = []));
        const row = resumes.find((r) => r.id === sig.call_id);
        if (list.length >= Math.max(1, row?.poll_max ?? 1)) continue;
        list.push({ dispatchId: `${policy.SIGNAL_RESULT_PREFIX}${sig.seq}`, correlationId: BigInt(sig.correlation_id), output: decodeAny(sig.payload), error: null });
      }
    }
    // The claim read the bytes of the states it does not elide (state_value).
    return rows.map((row) =>
      toClaimedCall(row, row.mode === 1 ? toResume(row, elideStateAbove, () => row.state_value, results.get(row.id) ?? []) : null),
    );
  }

  /**
   * Locks a call's parent (if any), then the call: the lock order of every
   * writer (see the module comment). Null for an unknown ID.
   */
  async #lockCall(c: pg.PoolClient, id: string): Promise<LockedRow | null> {
    const { rows } = await this.#sql<LockedRow>(
      c,
      'lock_call',
      `SELECT ${LOCK_COLUMNS} FROM ${this.#t.calls} c
      WHERE c.id = $1 AND (c.parent_id IS NULL OR EXISTS (SELECT 1 FROM ${this.#t.calls} p WHERE p.id = c.parent_id FOR UPDATE))
      FOR UPDATE OF c`,
      [id],
    );
    if (rows[0]) return rows[0];
    // A parent row that does not exist (never expected): lock the call alone.
    const { rows: alone } = await c.query<LockedRow>(`SELECT ${LOCK_COLUMNS} FROM ${this.#t.calls} c WHERE c.id = $1 FOR UPDATE`, [id]);
    return alone[0] ?? null;
  }

  async #insertAttempt(c: pg.PoolClient, id: string, a: AttemptRecord): Promise<void> {
    await this.#sql(
      c,
      'insert_attempt',
      `INSERT INTO ${this.#t.attempts} (call_id, number, started_at, duration_ms, status, outcome, resume, error)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
      ON CONFLICT (call_id, number) DO UPDATE SET started_at = EXCLUDED.started_at, duration_ms = EXCLUDED.duration_ms,
        status = EXCLUDED.status, outcome = EXCLUDED.outcome, resume = EXCLUDED.resume, error = EXCLUDED.error`,
      [id, a.number, a.startedAt, a.durationMs, a.status, a.outcome, a.resume, encodeErrorBlob(a.error)],
    );
  }

  /** Marks results as delivered to `parent`; returns how many and how many were errors. */
  async #markDelivered(c: pg.PoolClient, parent: LockedRow, all: string[]): Promise<{ n: number; e: number }> {
    if (all.length === 0) return { n: 0, e: 0 };
    const signalSeqs = all.filter((id) => id.startsWith(policy.SIGNAL_RESULT_PREFIX)).map((id) => id.slice(policy.SIGNAL_RESULT_PREFIX.length));
    let signalsDelivered = 0;
    if (signalSeqs.length > 0) {
      const r = await c.query(`UPDATE ${this.#t.signals} SET state = 2 WHERE seq = ANY($1::bigint[]) AND call_id = $2 AND state = 1`, [signalSeqs, parent.id]);
      signalsDelivered = r.rowCount ?? 0;
    }
    const ids = signalSeqs.length > 0 ? all.filter((id) => !id.startsWith(policy.SIGNAL_RESULT_PREFIX)) : all;
    if (ids.length === 0) return { n: signalsDelivered, e: 0 };
    const { rows } = await this.#sql<{ n: number; e: number }>(
      c,
      'mark_delivered',
      `WITH d AS (
        UPDATE ${this.#t.calls} SET deliver = NULL WHERE id = ANY($1::text[]) AND parent_id = $2 AND deliver = 1 RETURNING has_error
      ) SELECT count(*)::int AS n, coalesce(sum(has_error), 0)::int AS e FROM d`,
      [ids, parent.id],
    );
    const r = rows[0] ?? { n: 0, e: 0 };
    return { n: r.n + signalsDelivered, e: r.e };
  }

  /**
   * Finishes a row; if `notify`, hands its result to its parent when the
   * parent still waits for this generation (making the parent due when its
   * Poll's condition holds). The parent must be locked already.
   */
  async #finishRow(
    c: pg.PoolClient,
    row: Pick<LockedRow, 'seq' | 'id'>,
    f: {
      state: CallState;
      status: number;
      output: IAny | null;
      error: IError | null;
      counts?: policy.RunCounts;
      delivered?: { n: number; e: number };
    },
    now: number,
    notify: boolean,
    fx: Effects,
  ): Promise<void> {
    const hasError = policy.isErrorResult(f.status, f.error) ? 1 : 0;
    const { rows } = await this.#sql<{ parent_due: number | null }>(
      c,
      'finish_row',
      `WITH f AS (
        UPDATE ${this.#t.calls} c SET state = $2, status = $3, output = $4, error = $5, has_error = $6, due_at = NULL,
          lease_owner = NULL, finished_at = $7, updated_at = $7, mode = 0,
          state_kind = CASE WHEN $2::text = 'failed' THEN c.state_kind ELSE 0 END,
          state_type_url = CASE WHEN $2::text = 'failed' THEN c.state_type_url END,
          state_value = CASE WHEN $2::text = 'failed' THEN c.state_value END,
          state_length = CASE WHEN $2::text = 'failed' THEN c.state_length ELSE 0 END,
          poll_error = NULL, poll_min = 0, poll_max = 0, poll_deadline = NULL, poll_signals = NULL,
          attempts = COALESCE($9::int, c.attempts), resumes = COALESCE($12::int, c.resumes),
          ready = GREATEST(0, c.ready - $10::int), ready_errors = GREATEST(0, c.ready_errors - $11::int),
          deliver = CASE WHEN $8::boolean AND c.parent_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM ${this.#t.calls} p WHERE p.id = c.parent_id AND p.generation = c.parent_generation AND p.state IN ${WAITING_SQL}
          ) THEN 1 ELSE c.deliver END
        WHERE c.seq = $1
        RETURNING c.id, c.deliver, c.parent_id, c.parent_generation
      ), d AS (
        DELETE FROM ${this.#t.chunks} k USING f WHERE k.call_id = f.id AND $2::text <> 'failed'
      ), p AS (
        UPDATE ${this.#t.calls} p SET ready = p.ready + 1, ready_errors = p.ready_errors + $6, updated_at = $7,
          due_at = ${dueOnResultSql({ row: 'p.', isError: '$6', now: '$7', least: 'LEAST' })}
        FROM f WHERE $8::boolean AND f.deliver = 1 AND p.id = f.parent_id AND p.generation = f.parent_generation
          AND p.state IN ${WAITING_SQL}
        RETURNING p.due_at
      ) SELECT (SELECT due_at FROM p) AS parent_due`,
      [
        row.seq,
        f.state,
        f.status,
        encodeAny(f.output),
        encodeErrorBlob(f.error),
        hasError,
        now,
        notify,
        f.counts?.attempts ?? null,
        f.delivered?.n ?? 0,
        f.delivered?.e ?? 0,
        f.counts?.resumes ?? null,
      ],
    );
    fx.finished.push(row.id);
    const due = rows[0]?.parent_due;
    if (due !== null && due !== undefined && due <= now) fx.due = true;
  }

  /** Cancels the unfinished calls among `ids` and their descendants; notifies parents outside the set if asked. */
  async #cancelTrees(c: pg.PoolClient, ids: string[], now: number, error: IError, notifyOutside: boolean, fx: Effects): Promise<number> {
    if (ids.length === 0) return 0;
    const { rows } = await c.query<{ seq: number; id: string; parent_id: string | null }>(
      `WITH RECURSIVE tree(id) AS (
        SELECT x FROM unnest($1::text[]) AS x
        UNION SELECT k.id FROM ${this.#t.calls} k JOIN tree t ON k.parent_id = t.id
      )
      SELECT c.seq, c.id, c.parent_id FROM ${this.#t.calls} c JOIN tree t ON c.id = t.id
      WHERE c.state NOT IN ${FINISHED_SQL} ORDER BY c.seq FOR UPDATE OF c`,
      [ids],
    );
    if (rows.length === 0) return 0;
    const bulkSeqs: number[] = [];
    const bulkErrors: Array<Buffer | null> = [];
    const bulkIds: string[] = [];
    for (const { row, error: err, notifyParent } of policy.planCancellation(rows, ids, error, notifyOutside)) {
      if (notifyParent) {
        await this.#finishRow(c, row, { state: 'cancelled', status: policy.CANCELLED_STATUS, output: null, error: err }, now, true, fx);
      } else {
        // Nobody to tell: cancelled together, in one statement below.
        bulkSeqs.push(row.seq);
        bulkIds.push(row.id);
        bulkErrors.push(encodeErrorBlob(err));
        fx.finished.push(row.id);
      }
    }
    if (bulkSeqs.length > 0) {
      await c.query(
        `UPDATE ${this.#t.calls} c SET state = 'cancelled', status = $4, output = NULL, error = u.err, has_error = 1,
          due_at = NULL, lease_owner = NULL, finished_at = $3, updated_at = $3, mode = 0, state_kind = 0, state_type_url = NULL,
          state_value = NULL, state_length = 0, poll_error = NULL, poll_min = 0, poll_max = 0, poll_deadline = NULL
        FROM unnest($1::bigint[], $2::bytea[]) AS u(seq, err) WHERE c.seq = u.seq`,
        [bulkSeqs, bulkErrors, now, policy.CANCELLED_STATUS],
      );
      await c.query(`DELETE FROM ${this.#t.chunks} WHERE call_id = ANY($1::text[])`, [bulkIds]);
    }
    return rows.length;
  }

  /** Cancels the unfinished children of the current generation of `row`. */
  async #cancelOrphans(c: pg.PoolClient, row: LockedRow, now: number, error: IError, fx: Effects): Promise<void> {
    const { rows } = await c.query<{ id: string }>(
      `SELECT id FROM ${this.#t.calls} WHERE parent_id = $1 AND parent_generation = $2 AND state NOT IN ${FINISHED_SQL}`,
      [row.id, row.generation],
    );
    await this.#cancelTrees(
      c,
      rows.map((r) => r.id),
      now,
      error,
      false,
      fx,
    );
  }

  /**
   * Records a run (see the Store). A try that met a lost connection is made
   * again on a new one; if the lease no longer matches then, the attempt row
   * tells whether the lost try had committed (then it answers true: the
   * result is recorded once). The lease stays known (`#leases`) until the
   * answer, so a lost claim's cleanup never releases a run in flight.
   */
  async complete(req: CompleteRequest): Promise<boolean> {
    const done = await this.#retry(async (uncertain) => {
      const recorded = await this.#completeOnce(req);
      if (recorded || !uncertain || !req.attempt) return recorded;
      const { rows } = await this.pool.query(`SELECT 1 FROM ${this.#t.attempts} WHERE call_id = $1 AND number = $2 AND started_at = $3`, [
        req.id,
        req.attempt.number,
        req.attempt.startedAt,
      ]);
      if (rows.length === 0) return false;
      this.#announce({ due: true, queues: [], finished: req.outcome.kind === 'finish' ? [req.id] : [] });
      return true;
    });
    this.#leases.delete(req.id);
    if (done) this.#churned(1);
    return done;
  }

  #completeOnce(req: CompleteRequest): Promise<boolean> {
    const lease = this.#leases.get(req.id);
    const o = req.outcome;
    if (
      lease?.token === req.leaseToken &&
      (o.kind === 'retry' || (o.kind === 'finish' && lease.mode === 0 && req.delivered.length === 0))
    ) {
      // A root call's finish: grouped with the others of this turn into one statement.
      if (o.kind === 'finish' && lease.parentId === null) return this.#completeRootFinish(req);
      return this.#completeSimple(req, lease.parentId);
    }
    return this.#txOnce(async (c, fx) => {
      const row = await this.#lockCall(c, req.id);
      if (!row || !policy.holdsLease(row, req)) return false;
      const now = req.now;
      const a = req.attempt;
      if (a) await this.#insertAttempt(c, row.id, a);
      const counts = policy.runCountsAfter(row, a);
      const orphans = policy.orphansOnComplete(req);
      // Children exist only after a suspension of the current generation (mode 1).
      const mayHaveChildren = row.mode === 1;
      switch (o.kind) {
        case 'retry':
          await c.query(
            `UPDATE ${this.#t.calls} SET state = 'pending', due_at = $1, lease_owner = NULL, status = $2, error = $3,
              failures = failures + 1, attempts = $4, resumes = $7, updated_at = $5 WHERE seq = $6`,
            [o.dueAt, o.status, encodeErrorBlob(o.error), counts.attempts, now, row.seq, counts.resumes],
          );
          if (o.dueAt <= now) fx.due = true;
          break;
        case 'finish': {
          const delivered = await this.#markDelivered(c, row, req.delivered);
          await this.#finishRow(
            c,
            row,
            { state: policy.finishedState(o.status), status: o.status, output: o.output, error: o.error, counts, delivered },
            now,
            true,
            fx,
          );
          if (orphans && mayHaveChildren) await this.#cancelOrphans(c, row, now, orphans, fx);
          break;
        }
        case 'suspend': {
          const delivered = await this.#markDelivered(c, row, req.delivered);
          const keys = policy.correlationKeys(o.calls);
          let existing: string[] = [];
          if (keys.length > 0 && mayHaveChildren) {
            const { rows: dup } = await c.query<{ correlation_id: string }>(
              `SELECT correlation_id FROM ${this.#t.calls} WHERE parent_id = $1 AND parent_generation = $2 AND correlation_id = ANY($3::text[])`,
              [row.id, row.generation, keys],
            );
            existing = dup.map((d) => d.correlation_id);
          }
          await this.#insertRows(c, policy.childrenToStart(o.calls, new Set(existing)), row.generation, fx);
          // The stored bytes are never read here: a delta is appended as a chunk (at its byte offset).
          const write = policy.planStateWrite(row, o);
          if (!write.append) await this.#dropState(c, row);
          const offset = write.append ? row.state_length : 0;
          const value = o.state && o.state.value.length > 0 ? Buffer.from(o.state.value.buffer, o.state.value.byteOffset, o.state.value.byteLength) : null;
          const ready = Math.max(0, row.ready - delivered.n);
          const readyErrors = Math.max(0, row.ready_errors - delivered.e);
          await this.#sql(
            c,
            'suspend',
            `WITH i AS (
              INSERT INTO ${this.#t.chunks} (call_id, generation, seq, bytes)
              SELECT $18::text, $19::int, $7::bigint, $10::bytea WHERE $10::bytea IS NOT NULL
            )
            UPDATE ${this.#t.calls} SET state = 'suspended', mode = 1, due_at = $1, lease_owner = NULL, status = $2, error = NULL,
              failures = 0, attempts = $3, resumes = $20, updated_at = $4, ready = $5, ready_errors = $6, state_value = NULL,
              state_length = $7::bigint + COALESCE(length($10::bytea), 0),
              state_kind = $8, state_type_url = $9, state_delta = CASE WHEN $11::boolean THEN 1 ELSE state_delta END,
              poll_min = $12, poll_max = $13, poll_deadline = $14, poll_wake_on_error = $15, poll_error = $16, poll_signals = $21
            WHERE seq = $17`,
            [
              policy.dueAtSuspension(o, { ready, readyErrors }, now),
              o.status,
              counts.attempts,
              now,
              ready,
              readyErrors,
              offset,
              write.kind,
              write.typeUrl,
              value,
              write.markDelta,
              o.minResults,
              o.maxResults,
              o.deadline,
              o.wakeOnError ? 1 : 0,
              encodeErrorBlob(o.pollError),
              row.seq,
              row.id,
              row.generation,
              counts.resumes,
              policy.encodeSignalWaits(o.signalWaits),
            ],
          );
          if (o.signalWaits?.length) await this.#matchSignals(c, row.id, now, fx);
          break;
        }
        case 'tail_call': {
          if (orphans && mayHaveChildren) await this.#cancelOrphans(c, row, now, orphans, fx);
          await this.#ensureQueues(c, [[o.endpoint, o.function]], fx);
          await this.#dropState(c, row);
          await c.query(
            `UPDATE ${this.#t.calls} SET function = $1, endpoint = $2, input = $3, expires_at = $4, state = 'pending', mode = 0,
              original_input = CASE WHEN input_replaced = 1 THEN original_input ELSE input END, input_replaced = 1,
              due_at = $5, lease_owner = NULL, status = $6, error = NULL, failures = 0, attempts = $7, resumes = $10,
              generation = generation + 1, ready = 0, ready_errors = 0, state_kind = 0, state_type_url = NULL,
              state_value = NULL, state_length = 0, state_delta = 0, poll_min = 0, poll_max = 0, poll_deadline = NULL, poll_error = NULL,
              poll_signals = NULL, updated_at = $8 WHERE seq = $9`,
            [o.function, o.endpoint, encodeAny(o.input), o.expiresAt, o.dueAt, o.status, counts.attempts, now, row.seq, counts.resumes],
          );
          fx.due = true;
          break;
        }
      }
      return true;
    }, false);
  }

  /**
   * The common outcomes in one statement, without a transaction: a retry, or
   * the end of a call that never suspended in its current generation (no
   * children, nothing delivered). The lease is checked in the UPDATE's
   * WHERE; the parent (if any) is locked first (an InitPlan the WHERE
   * depends on), as everywhere else; the attempt is inserted only if the
   * update happened.
   */
  /** Finishes of root calls waiting for the next grouped statement. */
  readonly #finishQueue: Array<{ req: CompleteRequest; resolve: (done: boolean) => void; reject: (err: unknown) => void }> = [];
  #finishFlush: Promise<void> | null = null;

  #completeRootFinish(req: CompleteRequest): Promise<boolean> {
    this.#checkOpen();
    return new Promise<boolean>((resolve, reject) => {
      this.#finishQueue.push({ req, resolve, reject });
      this.#finishFlush ??= new Promise<void>((r) => setImmediate(r)).then(() => this.#flushFinishes());
    });
  }

  /**
   * Records the queued finishes of root calls (no parent to wake, no
   * children, nothing delivered) in one statement per 1,000: their rows
   * updated under their lease (a lost lease records nothing, as for one
   * call) and their attempts inserted, from arrays (`unnest`).
   */
  async #flushFinishes(): Promise<void> {
    while (this.#finishQueue.length > 0) {
      const batch = this.#finishQueue.splice(0, 1000);
      const cols: unknown[][] = Array.from({ length: 16 }, () => []);
      for (const { req } of batch) {
        const a = req.attempt;
        const o = req.outcome as Extract<CompleteRequest['outcome'], { kind: 'finish' }>;
        const values = [
          req.id,
          req.owner,
          req.leaseToken,
          a?.number ?? null,
          a?.startedAt ?? null,
          a?.durationMs ?? null,
          a?.status ?? null,
          a?.outcome ?? null,
          a?.resume ?? null,
          encodeErrorBlob(a?.error),
          policy.finishedState(o.status),
          o.status,
          encodeAny(o.output),
          encodeErrorBlob(o.error),
          req.now,
          policy.isErrorResult(o.status, o.error) ? 1 : 0,
        ];
        for (const [i, v] of values.entries()) cols[i]!.push(v);
      }
      try {
        const done = new Set<string>();
        for (let attempt = 1; ; attempt++) {
          try {
            const { rows } = await this.#sql<{ id: string }>(
              this.pool,
              'complete_finish_roots',
              `WITH i AS (
                SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::bigint[], $6::float8[], $7::int[], $8::text[],
                  $9::boolean[], $10::bytea[], $11::text[], $12::int[], $13::bytea[], $14::bytea[], $15::bigint[], $16::int[])
                  AS i(id, owner, token, number, started_at, duration_ms, astatus, aoutcome, aresume, aerror, state, status, output, error, now, has_error)
              ), f AS (
                UPDATE ${this.#t.calls} c SET state = i.state, status = i.status, output = i.output, error = i.error,
                  has_error = i.has_error, due_at = NULL,
                  lease_owner = NULL, finished_at = i.now, updated_at = i.now, mode = 0, state_kind = 0, state_type_url = NULL,
                  state_value = NULL, poll_error = NULL, poll_min = 0, poll_max = 0, poll_deadline = NULL,
                  ${runCountsSql({ row: 'c.', number: 'i.number', resume: 'COALESCE(i.aresume, false)' })}
                FROM i WHERE c.id = i.id AND c.state = 'running' AND c.lease_owner = i.owner AND c.lease_token = i.token AND c.parent_id IS NULL
                RETURNING c.id
              ), a AS (
                INSERT INTO ${this.#t.attempts} (call_id, number, started_at, duration_ms, status, outcome, resume, error)
                SELECT i.id, i.number, i.started_at, i.duration_ms, i.astatus, i.aoutcome, i.aresume, i.aerror FROM i JOIN f ON f.id = i.id
                WHERE i.number IS NOT NULL
                ON CONFLICT (call_id, number) DO UPDATE SET started_at = EXCLUDED.started_at, duration_ms = EXCLUDED.duration_ms,
                  status = EXCLUDED.status, outcome = EXCLUDED.outcome, resume = EXCLUDED.resume, error = EXCLUDED.error
              )
              SELECT id FROM f`,
              cols,
            );
            for (const r of rows) done.add(r.id);
            break;
          } catch (err) {
            const code = (err as { code?: string }).code;
            if (code && RETRYABLE_CODES.has(code) && attempt < 20) {
              await sleep(Math.random() * 5 * attempt);
              continue;
            }
            throw err;
          }
        }
        const finished = batch.filter((b) => done.has(b.req.id)).map((b) => b.req.id);
        if (finished.length > 0) this.#announce({ due: false, queues: [], finished });
        for (const b of batch) b.resolve(done.has(b.req.id));
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.#finishFlush = null;
  }

  async #completeSimple(req: CompleteRequest, parentId: string | null): Promise<boolean> {
    const a = req.attempt;
    const o = req.outcome;
    const attemptValues = [
      a?.number ?? null,
      a?.startedAt ?? null,
      a?.durationMs ?? null,
      a?.status ?? null,
      a?.outcome ?? null,
      a?.resume ?? null,
      encodeErrorBlob(a?.error),
    ];
    const attemptCte = (from: string) => `a AS (
        INSERT INTO ${this.#t.attempts} (call_id, number, started_at, duration_ms, status, outcome, resume, error)
        SELECT ${from}.id, $4::int, $5::bigint, $6::float8, $7::int, $8::text, $9::boolean, $10::bytea FROM ${from} WHERE $4::int IS NOT NULL
        ON CONFLICT (call_id, number) DO UPDATE SET started_at = EXCLUDED.started_at, duration_ms = EXCLUDED.duration_ms,
          status = EXCLUDED.status, outcome = EXCLUDED.outcome, resume = EXCLUDED.resume, error = EXCLUDED.error
      )`;
    const lease = `id = $1 AND state = 'running' AND lease_owner = $2 AND lease_token = $3`;
    for (let attempt = 1; ; attempt++) {
      try {
        if (o.kind === 'retry') {
          const { rows } = await this.#sql<{ n: number }>(
            this.pool,
            'complete_retry',
            `WITH u AS (
              UPDATE ${this.#t.calls} SET state = 'pending', due_at = $11, lease_owner = NULL, status = $12, error = $13,
                failures = failures + 1, ${runCountsSql({ row: '', number: '$4::int', resume: 'COALESCE($9::boolean, false)' })}, updated_at = $14
              WHERE ${lease} RETURNING id
            ), ${attemptCte('u')}
            SELECT count(*)::int AS n FROM u`,
            [req.id, req.owner, req.leaseToken, ...attemptValues, o.dueAt, o.status, encodeErrorBlob(o.error), req.now],
          );
          const done = rows[0]?.n === 1;
          if (done && o.dueAt <= req.now) this.#announce({ due: true, queues: [], finished: [] });
          return done;
        }
        if (o.kind !== 'finish') throw new Error(`completeSimple cannot record a ${o.kind}`);
        const hasError = policy.isErrorResult(o.status, o.error) ? 1 : 0;
        const { rows } = await this.#sql<{ n: number; parent_due: number | null }>(
          this.pool,
          'complete_finish',
          `WITH pl AS (
            SELECT seq FROM ${this.#t.calls} WHERE id = $11::text FOR UPDATE
          ), f AS (
            UPDATE ${this.#t.calls} c SET state = $12, status = $13, output = $14, error = $15, has_error = $16, due_at = NULL,
              lease_owner = NULL, finished_at = $17, updated_at = $17, mode = 0, state_kind = 0, state_type_url = NULL,
              state_value = NULL, poll_error = NULL, poll_min = 0, poll_max = 0, poll_deadline = NULL,
              ${runCountsSql({ row: 'c.', number: '$4::int', resume: 'COALESCE($9::boolean, false)' })},
              deliver = CASE WHEN c.parent_id IS NOT NULL AND EXISTS (
                SELECT 1 FROM ${this.#t.calls} p WHERE p.id = c.parent_id AND p.generation = c.parent_generation AND p.state IN ${WAITING_SQL}
              ) THEN 1 ELSE c.deliver END
            WHERE c.${lease.replaceAll(' AND ', ' AND c.')} AND (SELECT count(*) FROM pl) >= 0
            RETURNING c.id, c.deliver, c.parent_id, c.parent_generation
          ), p AS (
            UPDATE ${this.#t.calls} p SET ready = p.ready + 1, ready_errors = p.ready_errors + $16, updated_at = $17,
              due_at = ${dueOnResultSql({ row: 'p.', isError: '$16', now: '$17', least: 'LEAST' })}
            FROM f WHERE f.deliver = 1 AND p.id = f.parent_id AND p.generation = f.parent_generation AND p.state IN ${WAITING_SQL}
            RETURNING p.due_at
          ), ${attemptCte('f')}
          SELECT (SELECT count(*) FROM f)::int AS n, (SELECT due_at FROM p) AS parent_due`,
          [
            req.id,
            req.owner,
            req.leaseToken,
            ...attemptValues,
            parentId,
            policy.finishedState(o.status),
            o.status,
            encodeAny(o.output),
            encodeErrorBlob(o.error),
            hasError,
            req.now,
          ],
        );
        const done = rows[0]?.n === 1;
        if (done) {
          const due = rows[0]?.parent_due;
          this.#announce({ due: due !== null && due !== undefined && due <= req.now, queues: [], finished: [req.id] });
        }
        return done;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code && RETRYABLE_CODES.has(code) && attempt < 20) {
          await sleep(Math.random() * 5 * attempt);
          continue;
        }
        throw err;
      }
    }
  }

  renewLeases(owner: string, ids: string[], until: number): Promise<void> {
    return this.#retry(async () => {
      if (ids.length === 0) return;
      // Locks in seq order (see the module comment), so renewals never deadlock with completions.
      await this.#sql(
        this.pool,
        'renew',
        `UPDATE ${this.#t.calls} SET due_at = $1 WHERE seq IN (
          SELECT seq FROM ${this.#t.calls} WHERE id = ANY($2::text[]) AND lease_owner = $3 AND state = 'running' ORDER BY seq FOR UPDATE
        ) AND lease_owner = $3 AND state = 'running'`,
        [until, ids, owner],
      );
    });
  }

  cancel(id: string, now: number, error: IError): Promise<number> {
    return this.#tx(async (c, fx) => {
      const row = await this.#lockCall(c, id);
      if (!row) return 0;
      return this.#cancelTrees(c, [id], now, error, true, fx);
    });
  }

  restart(id: string, now: number): Promise<boolean> {
    return this.#tx(async (c, fx) => {
      const row = await this.#lockCall(c, id);
      if (!row) return false;
      await this.#restartRow(c, row, now, fx);
      return true;
    });
  }

  /** Runs a locked call again from its original function and input (see {@link Store.restart}). */
  async #restartRow(c: pg.PoolClient, row: LockedRow, now: number, fx: Effects): Promise<void> {
    await this.#cancelOrphans(c, row, now, policy.orphanError(row.id, 'restarted'), fx);
    if (policy.resultCountedForParent(row)) {
      // Its old result was counted as ready for the parent: take it back.
      await c.query(
        `UPDATE ${this.#t.calls} SET ready = GREATEST(0, ready - 1), ready_errors = GREATEST(0, ready_errors - $1) WHERE id = $2`,
        [row.has_error, row.parent_id],
      );
    }
    // Signals consumed and not delivered go back to the kept ones.
    await c.query(
      `UPDATE ${this.#t.signals} SET state = 0, generation = NULL, correlation_id = NULL, consumed_at = NULL WHERE call_id = $1 AND state = 1`,
      [row.id],
    );
    const { rows } = await c.query<{ endpoint: string; function: string }>(
      `SELECT original_endpoint AS endpoint, original_function AS function FROM ${this.#t.calls} WHERE seq = $1`,
      [row.seq],
    );
    await this.#ensureQueues(c, [[rows[0]!.endpoint, rows[0]!.function]], fx);
    await this.#dropState(c, row);
    await c.query(
      `UPDATE ${this.#t.calls} SET function = original_function, endpoint = original_endpoint,
        input = CASE WHEN input_replaced = 1 THEN original_input ELSE input END, original_input = NULL, input_replaced = 0,
        state = 'pending', mode = 0, due_at = $1, lease_owner = NULL, lease_token = lease_token + 1, status = 0,
        failures = 0, generation = generation + 1, ready = 0, ready_errors = 0, expires_at = $1 + expiration_ms,
        finished_at = NULL, output = NULL, error = NULL, has_error = 0, deliver = NULL, state_kind = 0,
        state_type_url = NULL, state_value = NULL, state_length = 0, state_delta = 0, poll_min = 0, poll_max = 0,
        poll_deadline = NULL, poll_error = NULL, poll_signals = NULL, updated_at = $1 WHERE seq = $2`,
      [now, row.seq],
    );
    fx.due = true;
  }

  /**
   * Lets the waits of a suspended call's Poll consume the signals kept for
   * it (policy.matchSignals); the call must be locked. Each consumed signal
   * counts as a result and may make the call due. Answers the seqs consumed.
   */
  async #matchSignals(c: pg.PoolClient, id: string, now: number, fx: Effects): Promise<string[]> {
    const { rows } = await c.query<{ generation: number; state: CallState; poll_signals: string | null }>(
      `SELECT generation, state, poll_signals FROM ${this.#t.calls} WHERE id = $1`,
      [id],
    );
    const row = rows[0];
    if (row?.state !== 'suspended' || !row.poll_signals) return [];
    const waits = policy.parseSignalWaits(row.poll_signals);
    const { rows: answered } = await c.query<{ correlation_id: string }>(
      `SELECT correlation_id FROM ${this.#t.signals} WHERE call_id = $1 AND generation = $2 AND state >= 1`,
      [id, row.generation],
    );
    const { rows: kept } = await c.query<{ seq: string; name: string }>(
      `SELECT seq, name FROM ${this.#t.signals} WHERE call_id = $1 AND state = 0 ORDER BY seq`,
      [id],
    );
    const matches = policy.matchSignals(
      waits,
      new Set(answered.map((a) => a.correlation_id)),
      kept.map((k) => ({ seq: Number(k.seq), name: k.name })),
    );
    const consumed: string[] = [];
    for (const [i, seq] of matches) {
      await c.query(`UPDATE ${this.#t.signals} SET state = 1, generation = $1, correlation_id = $2, consumed_at = $3 WHERE seq = $4`, [
        row.generation,
        waits[i]!.correlationId.toString(),
        now,
        seq,
      ]);
      const { rows: due } = await c.query<{ due_at: number | null }>(
        `UPDATE ${this.#t.calls} p SET ready = p.ready + 1, updated_at = $2,
          due_at = ${dueOnResultSql({ row: 'p.', isError: '0', now: '$2', least: 'LEAST' })}
        WHERE p.id = $1 AND p.state IN ${WAITING_SQL} RETURNING p.due_at`,
        [id, now],
      );
      const d = due[0]?.due_at;
      if (d !== null && d !== undefined && Number(d) <= now) fx.due = true;
      consumed.push(String(seq));
    }
    return consumed;
  }

  signal(sig: NewSignal): Promise<SignalAnswer> {
    return this.#tx(async (c, fx): Promise<SignalAnswer> => {
      const row = await this.#lockCall(c, sig.callId);
      if (!row) return { kind: 'not_found' };
      if (sig.idempotencyKey) {
        const { rows } = await c.query<{ state: number }>(`SELECT state FROM ${this.#t.signals} WHERE idempotency_key = $1`, [sig.idempotencyKey]);
        if (rows[0]) return { kind: rows[0].state >= 1 ? 'delivered' : 'kept' };
      }
      if (isFinished(row.state)) return { kind: 'finished', state: row.state };
      const { rows } = await c.query<{ seq: string }>(
        `INSERT INTO ${this.#t.signals} (call_id, name, payload, idempotency_key, sent_at) VALUES ($1, $2, $3, $4, $5) RETURNING seq`,
        [row.id, sig.name, encodeAny(sig.payload), sig.idempotencyKey || null, sig.now],
      );
      const consumed = await this.#matchSignals(c, row.id, sig.now, fx);
      return { kind: consumed.includes(String(rows[0]!.seq)) ? 'delivered' : 'kept' };
    });
  }

  async getSignals(id: string): Promise<{ signals: SignalRecord[]; waitingFor: string[] }> {
    this.#checkOpen();
    const { rows } = await this.pool.query<{
      name: string;
      payload: Buffer | null;
      sent_at: string;
      consumed_at: string | null;
      state: number;
      correlation_id: string | null;
      generation: number | null;
    }>(`SELECT name, payload, sent_at, consumed_at, state, correlation_id, generation FROM ${this.#t.signals} WHERE call_id = $1 ORDER BY seq`, [id]);
    const { rows: calls } = await this.pool.query<{ generation: number; state: CallState; poll_signals: string | null }>(
      `SELECT generation, state, poll_signals FROM ${this.#t.calls} WHERE id = $1`,
      [id],
    );
    const call = calls[0];
    const answered = new Set(rows.filter((r) => r.state >= 1 && r.generation === call?.generation).map((r) => r.correlation_id));
    const waitingFor =
      call && !isFinished(call.state)
        ? policy.parseSignalWaits(call.poll_signals).filter((w) => !answered.has(w.correlationId.toString())).map((w) => w.name)
        : [];
    return {
      signals: rows.map((r) => ({
        name: r.name,
        payload: decodeAny(r.payload),
        sentAt: Number(r.sent_at),
        consumedAt: r.consumed_at === null ? null : Number(r.consumed_at),
      })),
      waitingFor,
    };
  }

  resume(id: string, now: number): Promise<ResumeAnswer> {
    return this.#tx(async (c, fx): Promise<ResumeAnswer> => {
      const row = await this.#lockCall(c, id);
      if (!row) return { kind: 'not_found' };
      const plan = policy.planResume(row);
      if (plan === 'not_failed') return { kind: 'refused', state: row.state, reason: plan };
      if (plan === 'restart') {
        await this.#restartRow(c, row, now, fx);
        return { kind: 'resumed', childrenRestarted: 0 };
      }
      const { rows: children } = await c.query<{ id: string; state: CallState }>(
        `SELECT id, state FROM ${this.#t.calls} WHERE parent_id = $1 AND parent_generation = $2 AND state <> 'succeeded' ORDER BY seq FOR UPDATE`,
        [row.id, row.generation],
      );
      let restarted = 0;
      for (const child of children) {
        if (!isFinished(child.state)) await this.#cancelTrees(c, [child.id], now, policy.orphanError(row.id, 'restarted'), false, fx);
        const { rows: locked } = await c.query<LockedRow>(`SELECT ${LOCK_COLUMNS} FROM ${this.#t.calls} c WHERE c.id = $1`, [child.id]);
        await this.#restartRow(c, locked[0]!, now, fx);
        restarted++;
      }
      // What succeeded is delivered again: the journal ignores results it already holds.
      const again = await c.query(
        `UPDATE ${this.#t.calls} SET deliver = 1 WHERE parent_id = $1 AND parent_generation = $2 AND state = 'succeeded'`,
        [row.id, row.generation],
      );
      const signals = await c.query(`UPDATE ${this.#t.signals} SET state = 1 WHERE call_id = $1 AND generation = $2 AND state >= 1`, [
        row.id,
        row.generation,
      ]);
      if (policy.resultCountedForParent(row)) {
        await c.query(
          `UPDATE ${this.#t.calls} SET ready = GREATEST(0, ready - 1), ready_errors = GREATEST(0, ready_errors - $1) WHERE id = $2`,
          [row.has_error, row.parent_id],
        );
      }
      await c.query(
        `UPDATE ${this.#t.calls} SET state = 'suspended', mode = 1, due_at = $1, lease_owner = NULL, lease_token = lease_token + 1,
          status = 0, failures = 0, ready = $2, ready_errors = 0, expires_at = $1 + expiration_ms, finished_at = NULL,
          output = NULL, error = NULL, has_error = 0, deliver = NULL, poll_min = 1, poll_max = $3, poll_deadline = $1,
          poll_wake_on_error = 0, poll_error = NULL, poll_signals = NULL, updated_at = $1 WHERE seq = $4`,
        [now, (again.rowCount ?? 0) + (signals.rowCount ?? 0), MAX_POLL_RESULTS, row.seq],
      );
      fx.due = true;
      return { kind: 'resumed', childrenRestarted: restarted };
    });
  }

  getCall(id: string): Promise<CallRecord | null> {
    return this.#retry(async () => {
      const { rows } = await this.#sql<CallRow>(
        this.pool,
        'get_call',
        `SELECT ${LIST_COLUMNS}, input, output, state_kind, state_type_url,
          CASE WHEN state_kind <> 0 THEN ${stateBytesSql(this.#t.chunks)} END AS state_value
        FROM ${this.#t.calls} c WHERE id = $1`,
        [id],
      );
      return rows[0] ? toCallRecord(rows[0], true) : null;
    });
  }

  loadState(id: string, leaseToken: number): Promise<CoroutineState | null> {
    return this.#retry(async () => {
      const { rows } = await this.#sql<Pick<CallRow, 'state_kind' | 'state_type_url' | 'state_value'>>(
        this.pool,
        'load_state',
        `SELECT state_kind, state_type_url, ${stateBytesSql(this.#t.chunks)} AS state_value
        FROM ${this.#t.calls} c WHERE id = $1 AND lease_token = $2 AND state = 'running'`,
        [id, leaseToken],
      );
      return rows[0] ? stateOf(rows[0], rows[0].state_value) : null;
    });
  }

  /** Deletes the chunks of a locked call's state (replaced, restarted or tail-called). */
  async #dropState(c: pg.PoolClient, row: Pick<LockedRow, 'id' | 'state_kind' | 'state_length'>): Promise<void> {
    if (hasStoredState(row)) {
      await this.#sql(c, 'drop_state', `DELETE FROM ${this.#t.chunks} WHERE call_id = $1`, [row.id]);
    }
  }

  getAttempts(id: string): Promise<AttemptRecord[]> {
    return this.#retry(async () => {
      const { rows } = await this.pool.query<{
        number: number;
        started_at: number;
        duration_ms: number;
        status: number;
        outcome: string;
        resume: boolean;
        error: Buffer | null;
      }>(`SELECT * FROM ${this.#t.attempts} WHERE call_id = $1 ORDER BY number`, [id]);
      return rows.map(toAttemptRecord);
    });
  }

  getChildren(id: string): Promise<string[]> {
    return this.#retry(async () => {
      const { rows } = await this.pool.query<{ id: string }>(`SELECT id FROM ${this.#t.calls} WHERE parent_id = $1 ORDER BY seq`, [id]);
      return rows.map((r) => r.id);
    });
  }

  async countWaiting(endpoint: string): Promise<number> {
    this.#checkOpen();
    const { rows } = await this.#sql<{ n: number }>(
      this.pool,
      'count_waiting',
      `SELECT count(*)::int AS n FROM ${this.#t.calls} WHERE endpoint = $1 AND due_at IS NOT NULL AND state = 'pending'`,
      [endpoint],
    );
    return rows[0]?.n ?? 0;
  }

  finishedAmong(ids: string[]): Promise<string[]> {
    return this.#retry(async () => {
      if (ids.length === 0) return [];
      const { rows } = await this.#sql<{ id: string }>(
        this.pool,
        'finished_among',
        `SELECT id FROM ${this.#t.calls} WHERE id = ANY($1::text[]) AND state IN ${FINISHED_SQL}`,
        [ids],
      );
      return rows.map((r) => r.id);
    });
  }

  listCalls(filter: ListFilter): Promise<ListPage> {
    return this.#retry(async () => {
      const limit = listLimit(filter);
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (sql: string, value: unknown) => {
        params.push(value);
        where.push(sql.replace('?', `$${params.length}`));
      };
      if (filter.function) add('function = ?', filter.function);
      if (filter.createdAfter !== undefined) add('created_at >= ?', filter.createdAfter);
      if (filter.createdBefore !== undefined) add('created_at < ?', filter.createdBefore);
      if (filter.rootsOnly) where.push('parent_id IS NULL');
      const countWhere = where.length ? `WHERE ${where.join(' AND ')}` : '';
      const countQuery = this.pool.query<{ state: CallState; n: number }>(
        `SELECT state, count(*) AS n FROM ${this.#t.calls} ${countWhere} GROUP BY state`,
        [...params],
      );
      if (filter.states && filter.states.length > 0) add('state = ANY(?::text[])', filter.states);
      if (filter.cursor) add('seq < ?', parseCursor(filter.cursor));
      params.push(limit + 1);
      const pageQuery = this.pool.query<CallRow>(
        `SELECT ${LIST_COLUMNS} FROM ${this.#t.calls} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT $${params.length}`,
        params,
      );
      const [countRows, pageRows] = await Promise.all([countQuery, pageQuery]);
      return toListPage(pageRows.rows, limit, countsByState(countRows.rows));
    });
  }

  async countLive(now: number): Promise<LiveCount[]> {
    this.#checkOpen();
    const { rows } = await this.pool.query<{ function: string; state: LiveCount['state']; n: number; due: number }>(
      `SELECT function, state, count(*)::int AS n, count(*) FILTER (WHERE state = 'pending' AND due_at <= $1)::int AS due
       FROM ${this.#t.calls} WHERE state IN ('pending', 'running', 'suspended') GROUP BY function, state`,
      [now],
    );
    return rows.map((r) => ({ function: r.function, state: r.state, count: r.n, due: r.due }));
  }

  getMeta(key: string): Promise<string | null> {
    return this.#retry(async () => {
      const { rows } = await this.pool.query<{ value: string }>(`SELECT value FROM ${this.#t.meta} WHERE key = $1`, [key]);
      return rows[0]?.value ?? null;
    });
  }

  initMeta(key: string, value: string): Promise<string> {
    return this.#retry(async () => {
      // ON CONFLICT waits for a concurrent insert of the same key, so the SELECT sees the winner.
      await this.pool.query(`INSERT INTO ${this.#t.meta} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, [key, value]);
      const stored = await this.getMeta(key);
      if (stored === null) throw new Error(`the setting ${key} vanished while it was being stored`);
      return stored;
    });
  }

  revokeSession(id: string, expiresAt: number): Promise<void> {
    return this.#retry(async () => {
      await this.pool.query(`DELETE FROM ${this.#t.revoked} WHERE expires_at < $1`, [Date.now()]);
      await this.pool.query(
        `INSERT INTO ${this.#t.revoked} (id, expires_at) VALUES ($1, $2)
        ON CONFLICT (id) DO UPDATE SET expires_at = GREATEST(${this.#t.revoked}.expires_at, EXCLUDED.expires_at)`,
        [id, expiresAt],
      );
    });
  }

  isSessionRevoked(id: string, now: number): Promise<boolean> {
    return this.#retry(async () => {
      const { rows } = await this.pool.query(`SELECT 1 FROM ${this.#t.revoked} WHERE id = $1 AND expires_at >= $2`, [id, now]);
      return rows.length > 0;
    });
  }

  heartbeat(beat: InstanceHeartbeat): Promise<number> {
    return this.#retry(async () => {
      const { rows } = await this.pool.query<{ live: number }>(
        `WITH up AS (
          INSERT INTO ${this.#t.instances} (owner, started_at, last_seen) VALUES ($1, $2, $2)
          ON CONFLICT (owner) DO UPDATE SET last_seen = EXCLUDED.last_seen RETURNING owner
        ), gone AS (
          DELETE FROM ${this.#t.instances} WHERE last_seen < $2 - 10 * $3::bigint AND owner <> $1
        )
        SELECT (1 + (SELECT count(*) FROM ${this.#t.instances} WHERE owner <> $1 AND last_seen >= $2 - $3::bigint))::int AS live
        FROM up`,
        [beat.owner, beat.now, beat.ttlMs],
      );
      this.#instances = Math.max(1, rows[0]?.live ?? 1);
      return this.#instances;
    });
  }

  leave(owner: string): Promise<void> {
    return this.#retry(async () => {
      await this.pool.query(`DELETE FROM ${this.#t.instances} WHERE owner = $1`, [owner]);
    });
  }

  subscribe(listener: (change: StoreChange) => void): () => void {
    if (!this.#notifier || !this.#listen) return () => {};
    return this.#notifier.subscribe(listener);
  }

  /**
   * Asks the other instances to announce the calls they finish (this one has
   * Wait calls blocked): {@link PgNotifier.waiting}. The scheduler calls it.
   * @example
   * store.waiting(); // then, for 3 s, other instances send the IDs of calls they finish
   */
  waiting(): void {
    if (this.#listen) this.#notifier?.waiting();
  }

  /**
   * Numbers worth watching, cheap enough to scrape every few seconds: calls
   * per state, calls due now and not claimed (queue depth), leases past
   * their expiry (dead instances), and the instances seen within `ttlMs`.
   * @example
   * const s = await store.stats(Date.now()); // { due: 12, expiredLeases: 0, instances: 3, ... }
   */
  stats(now: number, ttlMs = 30_000): Promise<PgStoreStats> {
    return this.#retry(async () => {
      // Index-friendly: due calls per (endpoint, function) through calls_due, running ones through calls_state.
      const { rows } = await this.pool.query<{ due: number; expired: number; live: number; running: number; suspended: number }>(
        `SELECT
          (SELECT coalesce(sum(n.c), 0) FROM ${this.#t.queues} q CROSS JOIN LATERAL (
            SELECT count(*) AS c FROM ${this.#t.calls} k WHERE k.endpoint = q.endpoint AND k.function = q.function AND k.due_at <= $1
          ) n)::int - (SELECT count(*) FROM ${this.#t.calls} WHERE state = 'running' AND due_at <= $1)::int AS due,
          (SELECT count(*) FROM ${this.#t.calls} WHERE state = 'running' AND due_at <= $1)::int AS expired,
          (SELECT count(*) FROM ${this.#t.calls} WHERE state = 'running')::int AS running,
          (SELECT count(*) FROM ${this.#t.calls} WHERE state = 'suspended')::int AS suspended,
          (SELECT count(*) FROM ${this.#t.instances} WHERE last_seen >= $1 - $2::bigint)::int AS live`,
        [now, ttlMs],
      );
      const r = rows[0]!;
      return { due: r.due, expiredLeases: r.expired, running: r.running, suspended: r.suspended, instances: r.live, pool: this.poolStats() };
    });
  }

  /** Connections of this instance's pool: total, idle, and queries waiting for one. */
  poolStats(): { total: number; idle: number; waiting: number } {
    return { total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount };
  }

  /** True while the LISTEN connection is up (false: instances poll). */
  get listening(): boolean {
    return this.#notifier?.listening ?? false;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#finishFlush;
    await this.#vacuuming;
    await this.#notifier?.close();
    this.#closed = true;
    await this.pool.end();
  }
}

/**
 * Default of {@link PgStoreOptions.vacuumEvery}: calls claimed or completed between vacuums of `calls`.
 * @example
 * await PgStore.open({ url, vacuumEvery: 2 * DEFAULT_VACUUM_EVERY }); // half as often
 */
export const DEFAULT_VACUUM_EVERY = 20_000;

/** At least this long between the end of a vacuum of `calls` and the start of the next (ms). */
const VACUUM_MIN_INTERVAL_MS = 1000;

/**
 * A vacuum of the `calls` table by one instance ({@link PgStore.onVacuum}).
 * @example
 * const e: PgVacuumEvent = { outcome: 'done', durationMs: 41 };
 */
export interface PgVacuumEvent {
  /** `done`; `skipped` (another instance was vacuuming it); `failed` (see `error`). */
  outcome: 'done' | 'skipped' | 'failed';
  /** How long the try took (ms). */
  durationMs: number;
  /** Why it failed. */
  error?: string;
}

/**
 * What {@link PgStore.stats} answers.
 * @example
 * const { due, expiredLeases } = await store.stats(Date.now());
 */
export interface PgStoreStats {
  /** Calls due now and not running: the queue depth. Growing means instances (or endpoints) cannot keep up. */
  due: number;
  /** Running calls whose lease has expired: an instance died or cannot reach the database. */
  expiredLeases: number;
  running: number;
  suspended: number;
  /** Instances that sent a heartbeat within the TTL. */
  instances: number;
  pool: { total: number; idle: number; waiting: number };
}
