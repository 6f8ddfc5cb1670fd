/**
 * The embedded store: SQLite through better-sqlite3, in WAL mode, with group
 * commit. A database file belongs to one scheduler process at a time (it is
 * opened in exclusive locking mode), so leases left by a crashed process are
 * released when the next one opens it, and a batch is made durable by the
 * redo log (`redo-log.ts`: its write statements appended to `<file>-redo`)
 * while one SQLite transaction stays open, committed every 200 ms.
 *
 * It only speaks SQL: what a transition does (states, wakes, dedupe,
 * orphans) is decided in `../policy.ts`, and this file writes it.
 * @module
 */
import { dirname, resolve } from 'node:path';
import type { proto } from '@dispatch/core/protocol';
import Database from 'better-sqlite3';
import { type CallRecordRow, decodeAny, type FinishedChild, encodeAny, encodeTraceContext, encodeErrorBlob, finishedChildResult, hasStoredState, stateOf, toAttemptRecord, toCallRecord, toChildResult, toClaimedCall, toResume } from '../call-row.js';
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
  FollowOnClaim,
  FollowOnResult,
  InsertAndClaimResult,
  InsertClaim,
  ListFilter,
  ListPage,
  LiveCount,
  NewCall,
  NewSignal,
  ResumeAnswer,
  SignalAnswer,
  SignalRecord,
  Store,
} from '../store.js';
import { isFinished } from '../store.js';
import { MAX_POLL_RESULTS } from '@dispatch/core/protocol';
import * as policy from '../policy.js';
import { dueOnResultSql, FINISHED_SQL, WAITING_SQL, wakesOnResultSql } from '../policy-sql.js';
import { SCHEDULER_DEFAULTS } from '../../options.js';
import { isKeyed } from '../limits.js';
import { SqliteLimits } from './limits.js';
import { boundLimit } from './bound-limit.js';
import { type NamedStatement, namedStatement } from './named-params.js';
import { GroupCommit } from './group-commit.js';
import { type RecoveryReport, RedoLog } from './redo-log.js';
import { migrateSqlite } from './schema.js';
import { SqliteScheduleStore } from './sqlite-schedules.js';
import { preparePrivateDirectory, preparePrivateFile, tightenFile } from '../../private-files.js';
import { HealthTracker, type StoreHealth, sqliteFailure } from '../faults.js';

type IAny = proto.IAny;
type IError = proto.IError;

/**
 * Default database file, relative to the working directory.
 * @example
 * await SqliteStore.open({ path: DEFAULT_SQLITE_PATH });
 */
export const DEFAULT_SQLITE_PATH = SCHEDULER_DEFAULTS.db;

/**
 * Options of {@link SqliteStore.open}.
 * @example
 * const options: SqliteStoreOptions = { path: '.dispatch/scheduler.db', synchronous: 'FULL' };
 */
export interface SqliteStoreOptions {
  /**
   * Database file, or `':memory:'`. Parent directories are created.
   * Default `.dispatch/scheduler.db` under the working directory.
   * @example { path: '/var/lib/dispatch/scheduler.db' }
   */
  path?: string;
  /**
   * Durability of a commit. `NORMAL` (default) survives a crash of the
   * process (kill -9); `FULL` also survives a power loss, at the cost of an
   * fsync per group commit.
   * @example { synchronous: 'FULL' }
   */
  synchronous?: 'NORMAL' | 'FULL';
  /**
   * Hold the file for this process alone (default true for files): a second
   * scheduler on the same file fails to open it instead of sharing work.
   * @example { exclusive: false }
   */
  exclusive?: boolean;
  /**
   * Release the leases of calls left running by a previous process, so they
   * run again at once (default: same as `exclusive`).
   * @example { releaseLeases: true }
   */
  releaseLeases?: boolean;
  /**
   * Told what opening the file took back from the redo log (the writes
   * acknowledged since the last commit of the database before a crash).
   * @example { onRecovery: (r) => log.info(`redo log: ${r.replayed} batch(es) written again`) }
   */
  onRecovery?: (report: RecoveryReport) => void;
  /**
   * Where to say that the database's directory can be listed by other users
   * (see `private-files.ts`: the files are 0600 in a 0700 directory; a
   * directory others may write to is refused). Default: nowhere.
   * @example { onWarning: (line) => log.warn(line) }
   */
  onWarning?: (message: string) => void;
}

/** WAL pages between automatic checkpoints (SQLite's default: 1,000); see {@link SqliteStore.open}. */
const WAL_AUTOCHECKPOINT_PAGES = 10_000;
/** The size a WAL file is cut back to after a checkpoint (without it, a WAL keeps its largest size). */
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * The columns a claim reads, in order: the input only for a first run or a
 * retry (a resume carries the state instead). Read in better-sqlite3's raw
 * mode (arrays): an object per row with 24 named columns cost ~3–4 µs of the
 * claim's ~13 µs per row (bench/profile-notes.md); {@link claimedRow} makes
 * one object of a fixed shape from the array.
 */
const CLAIM_COLUMN_LIST = [
  'seq', 'id', 'function', 'endpoint', 'parent_id', 'parent_generation', 'correlation_id', 'root_id', 'created_at', 'expires_at', 'attempts',
  'resumes', 'failures', 'lease_token', 'input', 'mode', 'generation', 'poll_max', 'state_kind', 'state_type_url',
  'state_value', 'state_length', 'state_delta', 'poll_error', 'trace_context',
] as const;
const CLAIM_COLUMNS = CLAIM_COLUMN_LIST.map((c) => (c === 'input' ? 'CASE WHEN mode = 1 THEN NULL ELSE input END AS input' : c)).join(', ');
/** Each claim column's index in a raw row. */
const AT = Object.fromEntries(CLAIM_COLUMN_LIST.map((c, i) => [c, i])) as Record<(typeof CLAIM_COLUMN_LIST)[number], number>;

/** What a claim reads of a row ({@link CLAIM_COLUMN_LIST}). */
type ClaimRow = Pick<CallRow, Exclude<(typeof CLAIM_COLUMN_LIST)[number], 'trace_context'>> & { trace_context: string | null };

/** A claimed row from its raw columns. */
function claimedRow(a: unknown[]): ClaimRow {
  return {
    seq: a[AT.seq] as number,
    id: a[AT.id] as string,
    function: a[AT.function] as string,
    endpoint: a[AT.endpoint] as string,
    parent_id: a[AT.parent_id] as string | null,
    parent_generation: a[AT.parent_generation] as number,
    correlation_id: a[AT.correlation_id] as string | null,
    root_id: a[AT.root_id] as string,
    created_at: a[AT.created_at] as number,
    expires_at: a[AT.expires_at] as number,
    attempts: a[AT.attempts] as number,
    resumes: a[AT.resumes] as number,
    failures: a[AT.failures] as number,
    lease_token: a[AT.lease_token] as number,
    input: a[AT.input] as Buffer | null,
    mode: a[AT.mode] as number,
    generation: a[AT.generation] as number,
    poll_max: a[AT.poll_max] as number,
    state_kind: a[AT.state_kind] as number,
    state_type_url: a[AT.state_type_url] as string | null,
    state_value: a[AT.state_value] as Buffer | null,
    state_length: a[AT.state_length] as number,
    state_delta: a[AT.state_delta] as number,
    poll_error: a[AT.poll_error] as Buffer | null,
    trace_context: a[AT.trace_context] as string | null,
  };
}

/** A `calls` row as SQLite returns it: the shared columns plus the ones only the store reads. */
interface CallRow extends CallRecordRow {
  seq: number;
  original_endpoint: string;
  original_input: Buffer | null;
  parent_generation: number;
  lease_owner: string | null;
  lease_token: number;
  generation: number;
  expiration_ms: number;
  mode: number;
  /** Legacy (schema < 3): always NULL once migrated; the bytes live in call_state_chunks. */
  state_value: Buffer | null;
  state_length: number;
  state_delta: number;
  poll_deadline: number | null;
  poll_wake_on_error: number;
  poll_error: Buffer | null;
  ready_errors: number;
  deliver: number | null;
  has_error: number;
  poll_signals: string | null;
  /** The call's only run, kept in the row when it ended the call without an error (schema 14); NULL otherwise. */
  run_started_at: number | null;
  run_duration_ms: number | null;
  trace_context: string | null;
}

/**
 * What `complete` needs of a leased row, kept in memory from the claim
 * (`#leases`), so that recording a result reads nothing back from the file.
 * These columns change only with the lease (a new claim, a restart, a
 * cancellation or the completion itself), and every write of `complete`
 * starts with a statement that checks the lease in the file (state, owner
 * and token), so a stale entry records nothing.
 */
type LeasedRow = Pick<
  CallRow,
  | 'seq'
  | 'id'
  | 'endpoint'
  | 'function'
  | 'parent_id'
  | 'parent_generation'
  | 'correlation_id'
  | 'root_id'
  | 'created_at'
  | 'expires_at'
  | 'trace_context'
  | 'generation'
  | 'lease_token'
  | 'attempts'
  | 'resumes'
  | 'state_kind'
  | 'state_type_url'
  | 'state_value'
  | 'state_length'
  | 'state_delta'
  | 'mode'
>;

/**
 * How a write leases the calls it inserts: the claim, its owner and time,
 * the lease's end, whether a call must have no other call of its function
 * due (`fair`), and the calls leased so far.
 */
interface LeaseAtInsert {
  claim: FollowOnClaim;
  owner: string;
  now: number;
  until: number;
  fair: boolean;
  calls: ClaimedCall[];
}

/**
 * The results a lease's row counted when it was taken, where the write that
 * took it knows them (a child written leased: none; a parent leased by the
 * result that woke it: that one). A guess, never trusted alone:
 * {@link SUSPEND_IF_AS_KNOWN_SQL} writes only if the file agrees.
 */
interface ReadyAtLease {
  token: number;
  ready: number;
  errors: number;
}

/** The results a suspension leaves ready: those its row counted (`ready`, `errors`), less those it delivered. */
function readyLeft(ready: number, errors: number, delivered: { count: number; errors: number }): policy.ReadyResults {
  return { ready: Math.max(0, ready - delivered.count), readyErrors: Math.max(0, errors - delivered.errors) };
}

/** A suspension's counts when it delivered every result its row held. */
const NONE_READY: policy.ReadyResults = Object.freeze({ ready: 0, readyErrors: 0 });

/** What `#suspended` remembers of a suspended call. */
interface SuspendedHint {
  /** Results still wanted before its Poll's `min_results` (as counted here). */
  need: number;
  wakeOnError: boolean;
  /**
   * The row as a claim would read it once the suspension was written (its
   * lease token then): true while the file has that generation and token
   * (every other write of these columns takes a new lease or a new
   * generation), which `wakeAndLeaseKnown` checks.
   */
  row: ClaimRow;
}

/** A call a completion made due (`completeAndClaim` may lease it at once). */
interface Woken {
  seq: number;
  endpoint: string;
  fn: string;
  due: number;
}

/**
 * The redo log of a database file owned by this process; none where it
 * cannot be written (a read-only file system or directory: the database
 * can then only be read, and writes fail as SQLite says).
 */
function attachRedoLog(db: Database.Database, path: string, fsync: boolean): RedoLog | null {
  try {
    return RedoLog.attach(db, `${path}-redo`, { fsync });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return null;
    throw err;
  }
}

/** The key of an (endpoint, function) pair in the store's maps (`#queues`, `#dueFloors`). */
function pairKey(endpoint: string, fn: string): string {
  return `${endpoint}\u0000${fn}`;
}

/** The parameters of a {@link NamedStatement} of the store (each statement reads the names its SQL has). */
type Params = Record<string, unknown>;

/** A waiting parent's `due_at` once one more result is in (`@e`: 1 for an error), at `@now`. */
const DUE_ON_RESULT = dueOnResultSql({ row: '', isError: '@e', now: '@now', least: 'MIN' });

/** A result counted for the parent at `@seq` and the parent leased, only if it wakes it (`#handOff`). */
const WAKE_AND_LEASE_SQL = `UPDATE calls SET ready = ready + 1, ready_errors = ready_errors + @e, updated_at = @now, state = 'running',
  lease_owner = @owner, lease_token = lease_token + 1, due_at = @until
  WHERE seq = @seq AND id = @parent AND generation = @gen AND endpoint = @endpoint AND function = @fn
  AND ${wakesOnResultSql({ row: '', isError: '@e' })}`;

/** A claim: the rows its WHERE picks leased to `@owner` until `@until` (a new lease token each), at `@now`. */
const LEASE_SQL = `UPDATE calls SET state = 'running', due_at = @until, lease_owner = @owner, lease_token = lease_token + 1, updated_at = @now`;

/**
 * A run kept in its call's row instead of `attempts` (schema 14): the
 * call's first run, from its input, that ended it without an error — so the
 * row's status is the run's, and nothing else of the run needs keeping.
 */
function isOnlyCleanRun(a: AttemptRecord, o: { status: number; error: IError | null }): boolean {
  return a.number === 1 && !a.resume && a.outcome === 'exit' && a.error === null && o.error === null && a.status === o.status;
}

/**
 * At most this many rows, and this many bytes of their inputs, are kept in
 * `#fresh`; past either, it starts over empty (what it held is read from
 * the file when claimed, as before).
 */
const MAX_FRESH_ROWS = 32_768;
/** See {@link MAX_FRESH_ROWS}. */
const MAX_FRESH_INPUT_BYTES = 16 * 1024 * 1024;

/** At most this many suspended calls are remembered for `#handOff` (a hint: those beyond are woken as before). */
const MAX_SUSPENDED_HINTS = 100_000;

/** Up to this many delivered results are marked one statement each; more in one statement (a fan-in). */
const DELIVERED_ONE_BY_ONE = 8;

/** A new call, pending. Its input is stored once: original_input is written only when a tail call replaces the input (input_replaced). */
const INSERT_CALL_SQL = `INSERT INTO calls (id, function, endpoint, version, input, original_function, original_endpoint,
        idempotency_key, parent_id, parent_generation, root_id, correlation_id, state, due_at,
        created_at, updated_at, expires_at, expiration_ms, limit_key, trace_context)
        VALUES (@id, @function, @endpoint, @version, @input, @function, @endpoint, @idempotency_key, @parent_id,
        @parent_generation, @root_id, @correlation_id, 'pending', @due_at, @created_at, @created_at, @expires_at, @expiration_ms, @limit_key,
        @trace_context)`;
/** A new call written already leased (LEASE_SQL's columns: running, due at the lease's end, the first lease token). */
const INSERT_LEASED_SQL = `INSERT INTO calls (id, function, endpoint, version, input, original_function, original_endpoint,
        idempotency_key, parent_id, parent_generation, root_id, correlation_id, state, due_at, lease_owner, lease_token,
        created_at, updated_at, expires_at, expiration_ms, limit_key, trace_context)
        VALUES (@id, @function, @endpoint, @version, @input, @function, @endpoint, @idempotency_key, @parent_id,
        @parent_generation, @root_id, @correlation_id, 'running', @until, @owner, 1, @created_at, @now, @expires_at, @expiration_ms,
        @limit_key, @trace_context)`;
/**
 * Added to an insert of the API's: when a call with the same idempotency
 * key is stored, the insert writes nothing (`changes` is 0) and the key is
 * looked up then, so a new call probes the keys' index once, not twice.
 */
const IF_NEW_SQL = ' ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING';

/** The lease condition of a row, in SQL (`@owner`, `@token`): `policy.holdsLease` in the file. */
const HOLDS_LEASE_SQL = `state = 'running' AND lease_owner = @owner AND lease_token = @token`;

/**
 * A call finishing: index `keep ? 1 : 0` (a failed call keeps its state, its journal) + `lease ? 2 : 0` (only
 * under the lease). The texts are made once: built per call, they cost a string and its hash on the hot path.
 */
const FINISH_SQL = [0, 1, 2, 3].map(
  (i) => `UPDATE calls SET state = @state, status = @status, output = @output, error = @error, has_error = @has_error,
        due_at = NULL, lease_owner = NULL, finished_at = @now, updated_at = @now, mode = 0, deliver = @deliver,
        run_started_at = @run_started, run_duration_ms = @run_duration,
        ${i & 1 ? '' : 'state_kind = 0, state_type_url = NULL, state_value = NULL, state_length = 0,'} poll_error = NULL, poll_min = 0, poll_max = 0,
        poll_deadline = NULL, poll_signals = NULL, attempts = @attempts, resumes = @resumes WHERE seq = @seq${i & 2 ? ` AND ${HOLDS_LEASE_SQL}` : ''}`,
);
/** A run to retry, under its lease. */
const RETRY_SQL = `UPDATE calls SET state = 'pending', due_at = @due, lease_owner = NULL, status = @status,
            error = @error, failures = failures + 1, attempts = @attempts, resumes = @resumes, updated_at = @now
            WHERE seq = @seq AND ${HOLDS_LEASE_SQL}`;
/** A suspending run's lease, and the results counted for it so far. */
const HELD_SQL = `SELECT ready, ready_errors FROM calls WHERE seq = @seq AND ${HOLDS_LEASE_SQL}`;
/** A run suspending on a Poll (its lease checked by {@link HELD_SQL} first), with its results counted afresh. */
const SUSPEND_SQL = `UPDATE calls SET state = 'suspended', mode = 1, due_at = @due, lease_owner = NULL, status = @status,
            error = NULL, failures = 0, attempts = @attempts, resumes = @resumes, updated_at = @now, ready = @ready, ready_errors = @readyErrors, state_kind = @kind,
            state_type_url = @typeUrl, state_value = NULL, state_length = @length, state_delta = @delta, poll_min = @min, poll_max = @max,
            poll_deadline = @deadline, poll_wake_on_error = @wake, poll_error = @pollError, poll_signals = @signals WHERE seq = @seq`;
/**
 * {@link SUSPEND_SQL} without {@link HELD_SQL} first: written only if the
 * lease is held and the row counts the results this process expects
 * (`@expectReady`, `@expectErrors`: {@link ReadyAtLease}); `changes` 0 says
 * to read them (HELD_SQL) and suspend as usual.
 */
const SUSPEND_IF_AS_KNOWN_SQL = `${SUSPEND_SQL} AND ${HOLDS_LEASE_SQL} AND ready = @expectReady AND ready_errors = @expectErrors`;

/**
 * The SQLite store.
 * @example
 * const store = await SqliteStore.open({ path: ':memory:' });
 * try { console.log(await store.getCall('x')); } finally { await store.close(); }
 */
export class SqliteStore implements Store {
  /** The better-sqlite3 connection (for tests and tools; do not write through it). */
  readonly db: Database.Database;
  /** The resolved file path, or `:memory:`. */
  readonly path: string;
  readonly #group: GroupCommit;
  /** Runs `fn` in a transaction, or in a savepoint inside one (better-sqlite3's nesting). */
  readonly #inTransaction: <T>(fn: () => T) => T;
  readonly #queues = new Map<string, [string, string]>();
  /**
   * Per (endpoint, function) pair: no call of it is due before this time (a
   * lower bound; no entry: unknown, look in the file). Every write that may
   * bring a call's `due_at` earlier lowers it; a claim that looked sets it to
   * the pair's next `due_at`; a failed write forgets them all. So a claim
   * skips, without a statement, the pairs with nothing due. Only kept when
   * this process alone writes the file (`#floorsKept`).
   */
  readonly #dueFloors = new Map<string, number>();
  #floorsKept = false;
  /** When a claim last looked at every pair whatever the floors said (at most a second apart, a safety net). */
  #lookedAtAll = Number.NEGATIVE_INFINITY;
  /** While `completeAndClaim` writes: the calls its completion made due (parent woken, children started, itself). */
  #woken: Woken[] | null = null;
  /** While a write may lease the calls it inserts (`insertAndClaim`, or the children of a suspension under `completeAndClaim`). */
  #leaseAtInsert: LeaseAtInsert | null = null;
  /** The rows leased by claims of this process, by call ID (see {@link LeasedRow}). */
  readonly #leases = new Map<string, LeasedRow>();
  /**
   * The calls this process suspended, by ID: their row as the suspension
   * left it and how many more results they wait for, so that the completion
   * that wakes one can lease it in the statement that counts the result
   * (`wakeAndLease`), and the others count it as usual (`countResult`). A
   * hint, never trusted: the statement checks the row (seq, generation,
   * pair) and the wake condition; forgotten when the call is claimed or finished.
   */
  readonly #suspended = new Map<string, SuspendedHint>();
  /** By call ID, for leases taken by a write that knew the row's result counts (see {@link ReadyAtLease}). */
  readonly #readyAtLease = new Map<string, ReadyAtLease>();
  /**
   * The rows this process wrote pending that no claim has taken yet, by
   * seq, as a claim would read them (`#claimPair`): a claim of such a row
   * reads a few integers and the row's leasing instead of its 25 columns
   * (their values cost more than the update: bench/profile-notes.md). A
   * hint, checked: an entry is taken only while the row's lease token,
   * attempts, failures, resumes, generation, mode and state are still
   * those of a row never claimed (the other columns a claim reads do not
   * change before its first run), and every insert replaces the entry of
   * its seq (SQLite may give a rolled-back seq again). Only kept when this
   * process alone writes the file; bounded by {@link MAX_FRESH_ROWS}.
   */
  readonly #fresh = new Map<number, ClaimRow>();
  #freshBytes = 0;
  /** A failed write left `#queues` unchecked against the file (it could not be read then): read at the next commit. */
  #queuesStale = false;
  readonly #health = new HealthTracker();
  /** The redo log, when this process alone writes the file (`redo-log.ts`). */
  #redo: RedoLog | null = null;
  readonly #limits: SqliteLimits;
  #rotation = 0;
  #closed = false;
  readonly #stmt: Record<string, Database.Statement>;
  /** The statements of the hot path, bound by position from objects (`named-params.ts`). */
  readonly #named: {
    /** `[0]` plain; `[1]` does nothing when the idempotency key is stored ({@link IF_NEW_SQL}). */
    insertCall: [NamedStatement<Params>, NamedStatement<Params>];
    /** As `insertCall`. */
    insertLeased: [NamedStatement<Params>, NamedStatement<Params>];
    claim: NamedStatement<Params>;
    claimSeq: NamedStatement<Params>;
    leaseSeqs: NamedStatement<Params>;
    claimIfDue: NamedStatement<Params>;
    notifyParent: NamedStatement<Params>;
    countResult: NamedStatement<Params>;
    wakeAndLease: NamedStatement<Params>;
    wakeAndLeaseKnown: NamedStatement<Params>;
    /** By {@link FINISH_SQL}'s index. */
    finish: NamedStatement<Params>[];
    retry: NamedStatement<Params>;
    held: NamedStatement<Params>;
    suspendIfAsKnown: NamedStatement<Params>;
    suspend: NamedStatement<Params>;
  };
  /** The schedules (issue 15), written through the same group commit. */
  readonly schedules: SqliteScheduleStore;

  private constructor(db: Database.Database, path: string) {
    this.db = db;
    this.path = path;
    // One wrapper for every transaction and savepoint (better-sqlite3 nests it as a savepoint inside a transaction):
    // making it per operation cost ~5% of the store's CPU.
    const inTransaction = db.transaction((fn: () => unknown) => fn());
    this.#inTransaction = <T>(fn: () => T) => inTransaction(fn) as T;
    // Every write runs in the group commit. A storage error (disk full, read-only, I/O error, locked: `faults.ts`)
    // rejects with a StoreUnavailableError that says what is wrong, and marks the store unhealthy until a write succeeds.
    this.#group = new GroupCommit(<T>(fn: () => T) => inTransaction(fn) as T, undefined, {
      // A write succeeded: the store is healthy again.
      committed: () => {
        if (this.#health.failing) this.#health.ok();
        if (this.#queuesStale) this.#reloadQueues();
      },
      // Rolled back: the floors it moved may not hold (a claim's rows are due again), and the pairs it added to the
      // cache may not be in the file (read again: a later write stores them); the error says what is wrong.
      failed: (err) => {
        this.#dueFloors.clear();
        this.#forgetFresh();
        this.#reloadQueues();
        return this.#fault(err);
      },
    });
    this.schedules = new SqliteScheduleStore(db, (fn) => this.#group.run(fn), (call) => {
      const existing = call.idempotencyKey ? (this.#stmt.byKey!.get(call.idempotencyKey) as { id: string } | undefined) : undefined;
      if (existing) return existing.id;
      this.#insertRow(call, 0);
      return call.id;
    });
    const p = (sql: string) => db.prepare(sql);
    const n = (sql: string, raw = false) => namedStatement<Params>(db, sql, { raw });
    this.#limits = new SqliteLimits((sql) => this.#sql(sql), db);
    this.#stmt = {
      insertQueue: p('INSERT OR IGNORE INTO queues (endpoint, function) VALUES (?, ?)'),
      byKey: p('SELECT id FROM calls WHERE idempotency_key = ?'),
      nextDue: p(
        'SELECT due_at FROM calls WHERE endpoint = ? AND function = ? AND due_at IS NOT NULL ORDER BY due_at LIMIT 1',
      ),
      // Whether anything is due: a write statement that writes nothing still costs a write transaction (~0.1 ms).
      anyDue: p('SELECT 1 FROM calls WHERE endpoint = ? AND function = ? AND due_at <= ? LIMIT 1'),
      ready: p(`SELECT id, correlation_id, output, error FROM calls
        WHERE parent_id = ? AND parent_generation = ? AND deliver = 1 ORDER BY finished_at, seq ${boundLimit()}`),
      byId: p('SELECT * FROM calls WHERE id = ?'),
      insertAttempt: p(`INSERT OR REPLACE INTO attempts (call_id, number, started_at, duration_ms, status, outcome, resume, error)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      // By whether the result is an error (the last parameter): no RETURNING, whose ephemeral table doubles the cost.
      markDelivered: p('UPDATE calls SET deliver = NULL WHERE id = ? AND parent_id = ? AND deliver = 1 AND has_error = ?'),
      clearDeliver: p('UPDATE calls SET deliver = NULL WHERE seq = ?'),
      // Many results delivered at once (a fan-in's resume): one statement instead of one per child. CROSS JOIN keeps
      // the order: each id looked up by the id index (never a scan of the parent's children).
      markDeliveredMany: p(`UPDATE calls SET deliver = NULL WHERE seq IN (SELECT c.seq FROM json_each(?) j
        CROSS JOIN calls c ON c.id = j.value WHERE c.parent_id = ? AND c.deliver = 1) RETURNING has_error`),
      childByCorrelation: p('SELECT 1 FROM calls WHERE parent_id = ? AND parent_generation = ? AND correlation_id = ?'),
      unfinishedChildren: p(`SELECT id FROM calls WHERE parent_id = ? AND parent_generation = ? AND state NOT IN ${FINISHED_SQL}`),
      tree: p(`WITH RECURSIVE tree(id) AS (SELECT value FROM json_each(?) UNION SELECT c.id FROM calls c JOIN tree t ON c.parent_id = t.id)
        SELECT c.* FROM calls c JOIN tree t ON c.id = t.id WHERE c.state NOT IN ${FINISHED_SQL}`),
      attempts: p('SELECT * FROM attempts WHERE call_id = ? ORDER BY number'),
      keptRun: p('SELECT run_started_at, run_duration_ms, status FROM calls WHERE id = ?'),
      children: p('SELECT id FROM calls WHERE parent_id = ? ORDER BY seq'),
      getMeta: p('SELECT value FROM meta WHERE key = ?'),
      initMeta: p('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)'),
      revokeSession: p('INSERT INTO revoked_sessions (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)'),
      dropRevoked: p('DELETE FROM revoked_sessions WHERE expires_at < ?'),
      isRevoked: p('SELECT 1 FROM revoked_sessions WHERE id = ? AND expires_at >= ?'),
      renew: p(`UPDATE calls SET due_at = ? WHERE id = ? AND lease_owner = ? AND state = 'running' RETURNING endpoint, function`),
      chunks: p('SELECT bytes FROM call_state_chunks WHERE call_id = ? AND generation = ? ORDER BY seq'),
      readySignals: p(`SELECT seq, correlation_id, payload FROM signals WHERE call_id = ? AND generation = ? AND state = 1
        ORDER BY consumed_at, seq ${boundLimit()}`),
      answeredSignals: p('SELECT correlation_id FROM signals WHERE call_id = ? AND generation = ? AND state >= 1'),
      keptSignals: p('SELECT seq, name FROM signals WHERE call_id = ? AND state = 0 ORDER BY seq'),
      consumeSignal: p('UPDATE signals SET state = 1, generation = ?, correlation_id = ?, consumed_at = ? WHERE seq = ?'),
      deliverSignal: p('UPDATE signals SET state = 2 WHERE seq = ? AND call_id = ? AND state = 1'),
      signalByKey: p('SELECT state FROM signals WHERE idempotency_key = ?'),
      insertSignal: p('INSERT INTO signals (call_id, name, payload, idempotency_key, sent_at) VALUES (?, ?, ?, ?, ?) RETURNING seq'),
      signalState: p('SELECT state FROM signals WHERE seq = ?'),
      signalsOf: p('SELECT name, payload, sent_at, consumed_at, state, correlation_id, generation FROM signals WHERE call_id = ? ORDER BY seq'),
      insertChunk: p('INSERT INTO call_state_chunks (call_id, generation, seq, bytes) VALUES (?, ?, ?, ?)'),
      // A suspension written as known (SUSPEND_IF_AS_KNOWN_SQL) that delivered fewer results than its row counted.
      recountReady: p('UPDATE calls SET ready = ?, ready_errors = ?, due_at = ? WHERE seq = ?'),
      dropChunks: p('DELETE FROM call_state_chunks WHERE call_id = ?'),
      // A row `wakeAndLease` leased, as a claim reads it, and its results ready.
      leasedBySeq: p(`SELECT ${CLAIM_COLUMNS}, ready FROM calls WHERE seq = ?`).raw(true),
      // A claim's rows when `#fresh` may know them: what tells whether an entry still holds (see #claimPair).
      pickDue: p(`SELECT seq, lease_token, attempts, failures, resumes, generation, mode, state_kind FROM calls
        WHERE endpoint = ? AND function = ? AND due_at <= ? ORDER BY due_at ${boundLimit()}`).raw(true),
      leasedState: p(`SELECT id, generation, state_kind, state_type_url, state_value, state_length FROM calls
        WHERE id = ? AND lease_token = ? AND state = 'running'`),
    };
    this.#named = {
      insertCall: [INSERT_CALL_SQL, INSERT_CALL_SQL + IF_NEW_SQL].map((sql) => n(sql)) as [NamedStatement<Params>, NamedStatement<Params>],
      insertLeased: [INSERT_LEASED_SQL, INSERT_LEASED_SQL + IF_NEW_SQL].map((sql) => n(sql)) as [NamedStatement<Params>, NamedStatement<Params>],
      // One statement per (endpoint, function): the due calls picked and leased together (no statement per row).
      // Only what the RunRequest needs: not the original input, the output or the error (memory follows in-flight work).
      claim: n(
        `${LEASE_SQL} WHERE seq IN (SELECT seq FROM calls WHERE endpoint = @endpoint AND function = @fn AND due_at <= @now ORDER BY due_at ${boundLimit('@cap')})
        RETURNING ${CLAIM_COLUMNS}`,
        true,
      ),
      claimSeq: n(`${LEASE_SQL} WHERE seq = @seq RETURNING ${CLAIM_COLUMNS}`, true),
      // The rows `pickDue` picked, leased (a JSON array of seqs; no RETURNING: #claimPair knows them).
      leaseSeqs: n(`${LEASE_SQL} WHERE seq IN (SELECT value FROM json_each(@seqs))`),
      claimIfDue: n(`${LEASE_SQL} WHERE seq = @seq AND due_at <= @now RETURNING ${CLAIM_COLUMNS}`, true),
      notifyParent: n(`UPDATE calls SET ready = ready + 1, ready_errors = ready_errors + @e, updated_at = @now,
        due_at = ${DUE_ON_RESULT}
        WHERE id = @parent AND generation = @gen AND state IN ${WAITING_SQL} RETURNING seq, endpoint, function, due_at`),
      // notifyParent for a result that does not wake its parent (its due time stays): no RETURNING, whose ephemeral
      // table doubled the cost of a fan-in child's count. Writes nothing when the result wakes it (notifyParent then).
      countResult: n(`UPDATE calls SET ready = ready + 1, ready_errors = ready_errors + @e, updated_at = @now
        WHERE id = @parent AND generation = @gen AND state IN ${WAITING_SQL} AND NOT (${wakesOnResultSql({ row: '', isError: '@e' })})`),
      // The result that wakes a suspended parent counted and the parent leased (LEASE_SQL's columns) in one write
      // (`#handOff`): its row found by rowid, and written only if it wakes. No RETURNING (an ephemeral table per
      // statement: 11 us against 3.6 us, then 3.4 us to read the claim's columns by rowid, measured alone).
      wakeAndLease: n(WAKE_AND_LEASE_SQL),
      // The same, for a parent whose row this process knows (the hint's snapshot: same generation and lease token)
      // and that has no other result ready: nothing read back.
      wakeAndLeaseKnown: n(`${WAKE_AND_LEASE_SQL} AND lease_token = @token AND ready = 0`),
      finish: FINISH_SQL.map((sql) => n(sql)),
      retry: n(RETRY_SQL),
      held: n(HELD_SQL),
      suspend: n(SUSPEND_SQL),
      suspendIfAsKnown: n(SUSPEND_IF_AS_KNOWN_SQL),
    };
  }

  /**
   * Opens (and creates or migrates) a database.
   * @example
   * const store = await SqliteStore.open({ path: '.dispatch/scheduler.db' });
   */
  static async open(options: SqliteStoreOptions = {}): Promise<SqliteStore> {
    const raw = options.path ?? DEFAULT_SQLITE_PATH;
    const memory = raw === ':memory:';
    const path = memory ? raw : resolve(raw);
    if (!memory) {
      // The database holds the signing key and the API keys: 0600 in a 0700 directory, before a byte is written.
      const warning = preparePrivateDirectory(dirname(path));
      if (warning) options.onWarning?.(warning);
      preparePrivateFile(path);
    }
    let db: Database.Database;
    let redo: RedoLog | null = null;
    try {
      db = new Database(path);
    } catch (err) {
      throw new Error(`cannot open the database ${path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const exclusive = !memory && (options.exclusive ?? true);
      // This process alone writes the file: a group commit is made durable by the redo log, not by a commit of SQLite.
      redo = exclusive ? attachRedoLog(db, path, options.synchronous === 'FULL') : null;
      if (exclusive) db.pragma('locking_mode = EXCLUSIVE');
      db.pragma(`busy_timeout = ${exclusive ? 250 : 5000}`);
      if (!memory) {
        db.pragma('journal_mode = WAL');
        // A checkpoint (WAL pages copied into the file) costs two fsyncs, ~1.75 ms each here, even at synchronous=NORMAL:
        // at SQLite's default of every 1,000 WAL pages that was ~115 µs of every awaited call (~22 pages each). The WAL
        // may now grow to ~40 MB between checkpoints; past a checkpoint it is cut back to 64 MiB if a large
        // transaction grew it further.
        db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
        db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
      }
      db.pragma(`synchronous = ${options.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
      // Each operation of a group commit runs in a savepoint, whose undo journal (the statement journal) would
      // otherwise spill to a temporary file: ~30 page writes per step's commit, seen with strace.
      db.pragma('temp_store = MEMORY');
      migrateSqlite(db);
      // Takes the exclusive lock now (a write), so a second process fails here.
      if (exclusive) db.exec('BEGIN IMMEDIATE; COMMIT');
      // What a crash left in the redo log since the last commit is written first.
      const recovered = redo?.recover();
      if (recovered && (recovered.replayed > 0 || recovered.tornBytes > 0)) {
        options.onRecovery?.(recovered);
      }
      // SQLite gives a new WAL the database's mode; one left by an older version may be wider.
      if (!memory) for (const suffix of ['-wal', '-shm', '-journal', '-redo']) tightenFile(`${path}${suffix}`);
      const store = new SqliteStore(db, path);
      // One process writes the file (or the memory): what it knows of due times in memory stays true.
      store.#floorsKept = memory || exclusive;
      for (const q of db.prepare('SELECT endpoint, function FROM queues').all() as Array<{ endpoint: string; function: string }>) {
        store.#queues.set(pairKey(q.endpoint, q.function), [q.endpoint, q.function]);
      }
      if (options.releaseLeases ?? exclusive) {
        db.prepare(`UPDATE calls SET state = 'pending', due_at = ?, lease_owner = NULL WHERE finished_at IS NULL AND state = 'running'`).run(Date.now());
      }
      if (redo) {
        store.#redo = redo;
        redo.onCommitError = (err) => store.#fault(err);
        store.#group.journal = redo;
        redo.start();
      }
      return store;
    } catch (err) {
      try {
        redo?.close();
      } catch {
        // The error that stopped the opening says more.
      }
      db.close();
      const e = err as Error & { code?: string };
      if (e.code === 'SQLITE_BUSY' || e.code === 'SQLITE_LOCKED') {
        throw new Error(
          `the database ${path} is in use by another scheduler process (${e.code}); stop that process or choose another database file`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  readonly #statements = new Map<string, Database.Statement>();

  /** The (endpoint, function) pairs as the file has them (after a write that failed). */
  #reloadQueues(): void {
    try {
      const rows = this.#sql('SELECT endpoint, function FROM queues').all() as Array<{ endpoint: string; function: string }>;
      this.#queues.clear();
      for (const q of rows) this.#queues.set(pairKey(q.endpoint, q.function), [q.endpoint, q.function]);
      this.#queuesStale = false;
    } catch {
      // Unreadable now (the storage fails): kept as it is, and read at the next commit.
      this.#queuesStale = true;
    }
  }

  /** A storage error becomes a StoreUnavailableError (and the store unhealthy); others pass. */
  #fault(err: unknown): unknown {
    const failure = sqliteFailure(err, this.path);
    if (!failure) return err;
    this.#health.failed(failure);
    return failure;
  }

  /** A read: a storage error becomes a StoreUnavailableError. */
  #read<T>(fn: () => T): Promise<T> {
    try {
      this.#checkOpen();
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(this.#fault(err));
    }
  }

  /**
   * Whether the database can be written now. While a write has failed, a
   * small write (a row of `meta`) tries again, so this turns `ok` by itself
   * once there is space again (or the file is writable again).
   * @example
   * const h = await store.health(); // { ok: false, code: 'SQLITE_FULL', reason: "the scheduler's database is full (…)" }
   */
  async health(): Promise<StoreHealth> {
    if (this.#health.failing && !this.#closed) {
      try {
        await this.#group.run(() => this.#sql(`INSERT OR REPLACE INTO meta (key, value) VALUES ('health_probe', ?)`).run(String(Date.now())));
      } catch {
        // still failing: reported below
      }
    }
    return this.#health.report();
  }

  /** A prepared statement, compiled once per SQL text. */
  #sql(text: string): Database.Statement {
    let statement = this.#statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.#statements.set(text, statement);
    }
    return statement;
  }

  #ensureQueue(endpoint: string, fn: string): void {
    const key = pairKey(endpoint, fn);
    if (this.#queues.has(key)) return;
    this.#stmt.insertQueue!.run(endpoint, fn);
    this.#queues.set(key, [endpoint, fn]);
  }

  /** A call of (endpoint, fn) is due at `due` (or later): lowers the pair's floor. */
  #dueAt(endpoint: string, fn: string, due: number | null): void {
    if (due === null) return;
    const key = pairKey(endpoint, fn);
    const floor = this.#dueFloors.get(key);
    if (floor !== undefined && due < floor) this.#dueFloors.set(key, due);
  }

  /**
   * Writes a new call (pending, or leased: {@link #insertLeased}). `ifNew`:
   * nothing is written when its idempotency key is stored ({@link IF_NEW_SQL});
   * answers whether it was written.
   */
  #insertRow(call: NewCall, parentGeneration: number, ifNew = false): boolean {
    this.#ensureQueue(call.endpoint, call.function);
    if (call.limits) this.#limits.record(call.endpoint, call.function, call.limits.spec, call.createdAt);
    const which = ifNew ? 1 : 0;
    if (this.#leaseAtInsert) {
      const leased = this.#insertLeased(call, parentGeneration, this.#leaseAtInsert, which);
      if (leased !== null) return leased;
    }
    const params = this.#insertParams(call, parentGeneration);
    const r = this.#named.insertCall[which].run(params);
    if (r.changes === 0) return false;
    const seq = Number(r.lastInsertRowid);
    this.#dueAt(call.endpoint, call.function, call.dueAt);
    this.#woken?.push({ seq, endpoint: call.endpoint, fn: call.function, due: call.dueAt });
    if (this.#floorsKept) this.#rememberFresh(this.#newRow(seq, call, parentGeneration, params, 0));
    return true;
  }

  /** A row just inserted, as a claim reads it, with `leaseToken` (0 pending; 1 written leased). */
  #newRow(seq: number, call: NewCall, parentGeneration: number, params: Params, leaseToken: number): ClaimRow {
    return {
      seq,
      id: call.id,
      function: call.function,
      endpoint: call.endpoint,
      parent_id: call.parentId ?? null,
      parent_generation: parentGeneration,
      correlation_id: params.correlation_id as string | null,
      root_id: call.rootId,
      created_at: call.createdAt,
      expires_at: call.expiresAt,
      attempts: 0,
      resumes: 0,
      failures: 0,
      lease_token: leaseToken,
      input: params.input as Buffer | null,
      mode: 0,
      generation: 0,
      poll_max: 0,
      state_kind: 0,
      state_type_url: null,
      state_value: null,
      state_length: 0,
      state_delta: 0,
      poll_error: null,
      trace_context: params.trace_context as string | null,
    };
  }

  /** Keeps a pending row in `#fresh` (replacing whatever its seq held); starts over past the bounds. */
  #rememberFresh(row: ClaimRow): void {
    this.#dropFresh(row.seq);
    const bytes = row.input?.length ?? 0;
    if (this.#fresh.size >= MAX_FRESH_ROWS || this.#freshBytes + bytes > MAX_FRESH_INPUT_BYTES) this.#forgetFresh();
    this.#fresh.set(row.seq, row);
    this.#freshBytes += bytes;
  }

  #forgetFresh(): void {
    this.#fresh.clear();
    this.#freshBytes = 0;
  }

  /** The parameters of `insertCall` (and, with the lease's, of `insertLeased`). */
  #insertParams(call: NewCall, parentGeneration: number): Params {
    return {
      id: call.id,
      function: call.function,
      endpoint: call.endpoint,
      version: call.version ?? '',
      input: encodeAny(call.input),
      idempotency_key: call.idempotencyKey || null,
      parent_id: call.parentId ?? null,
      parent_generation: parentGeneration,
      root_id: call.rootId,
      correlation_id: call.correlationId === undefined ? null : call.correlationId.toString(),
      due_at: call.dueAt,
      created_at: call.createdAt,
      expires_at: call.expiresAt,
      expiration_ms: call.expirationMs,
      limit_key: call.limits?.key ?? '',
      trace_context: encodeTraceContext(call.traceContext),
    };
  }

  /**
   * Writes a new call already leased (`#leaseAtInsert`), as a claim would
   * right after: when it is due, its function declares no limits, the
   * capacity allows and, for a fair lease, no other call of its function is
   * due (known from the pair's floor). Null: not tried (insert it pending);
   * false: not written, its idempotency key is stored (`which` 1: {@link IF_NEW_SQL}).
   */
  #insertLeased(call: NewCall, parentGeneration: number, lease: LeaseAtInsert, which: 0 | 1): boolean | null {
    if (call.dueAt === null || call.dueAt > lease.now || this.#limits.spec(call.endpoint, call.function)) return null;
    if (lease.fair) {
      const floor = this.#floorsKept ? this.#dueFloors.get(pairKey(call.endpoint, call.function)) : undefined;
      if (floor === undefined || floor <= lease.now) return null;
    }
    if (lease.claim.capacity(call.endpoint, call.function) <= 0) return null;
    const params = this.#insertParams(call, parentGeneration);
    params.until = lease.until;
    params.owner = lease.owner;
    params.now = lease.now;
    const r = this.#named.insertLeased[which].run(params);
    if (r.changes === 0) return false;
    const seq = Number(r.lastInsertRowid);
    // A rolled-back seq given again: what `#fresh` held of it is another row's.
    this.#dropFresh(seq);
    this.#tookLease(this.#newRow(seq, call, parentGeneration, params, 1), lease);
    this.#knowReady(call.id, 1, 0, 0);
    return true;
  }

  /** Remembers the result counts of a lease just taken (see {@link ReadyAtLease}); forgets them all past a bound. */
  #knowReady(id: string, token: number, ready: number, errors: number): void {
    if (this.#readyAtLease.size >= MAX_SUSPENDED_HINTS) this.#readyAtLease.clear();
    this.#readyAtLease.set(id, { token, ready, errors });
  }

  /** A row a write just leased under `lease` (written leased, or woken and leased): handed to the caller's claim. */
  #tookLease(row: ClaimRow, lease: LeaseAtInsert, results?: ChildResult[]): void {
    // Due again when the lease ends (as a claimed call is).
    this.#dueAt(row.endpoint, row.function, lease.until);
    const call = this.#toClaimed(row, lease.claim.elideStateAbove ?? Number.POSITIVE_INFINITY, results);
    lease.claim.claimed(call);
    lease.calls.push(call);
  }

  insertCalls(calls: NewCall[]): Promise<string[]> {
    return this.#group.run(() => this.#insertCallsNow(calls));
  }

  #insertCallsNow(calls: NewCall[]): string[] {
    const inserted = new Set<string>();
    const known = new Map<string, string>();
    for (const call of policy.firstPerKey(calls)) {
      const key = call.idempotencyKey;
      // Only a new call records its function's declared limits: a call that declares them looks its key up first.
      const existing = key && call.limits ? (this.#stmt.byKey!.get(key) as { id: string } | undefined) : undefined;
      if (key && existing) {
        known.set(key, existing.id);
      } else if (this.#insertRow(call, 0, true)) {
        inserted.add(call.id);
      } else {
        // Not written: its key is stored (IF_NEW_SQL). Looked up only now: a new call probes the keys' index once.
        const stored = key ? (this.#stmt.byKey!.get(key) as { id: string } | undefined) : undefined;
        if (!key || !stored) throw new Error(`the call ${call.id} was not written and its idempotency key ${JSON.stringify(key)} is not stored`);
        known.set(key, stored.id);
      }
    }
    return policy.answerIds(calls, inserted, known);
  }

  insertAndClaim(calls: NewCall[], claim: InsertClaim): Promise<InsertAndClaimResult> {
    return this.#group.run((): InsertAndClaimResult => {
      const leased: ClaimedCall[] = [];
      this.#leaseAtInsert = { claim, owner: claim.owner, now: claim.now, until: claim.now + claim.leaseMs, fair: true, calls: leased };
      try {
        return { ids: this.#insertCallsNow(calls), calls: leased };
      } finally {
        this.#leaseAtInsert = null;
      }
    });
  }

  /**
   * When nothing can be claimed yet, known from the due times this process
   * keeps (see {@link Store.quietUntil}); undefined when a claim must look.
   * @example
   * if (store.quietUntil(Date.now()) === undefined) await store.claimDue(req);
   */
  quietUntil(now: number): number | null | undefined {
    return this.#quietUntil(now);
  }

  claimDue(req: ClaimRequest): Promise<ClaimResult> {
    const quiet = this.#quietUntil(req.now);
    // Nothing can be due (known without a statement): no transaction. The run loop asks after every run.
    if (quiet !== undefined) return Promise.resolve({ calls: [], nextDueAt: quiet });
    return this.#group.run(() => {
      const calls: ClaimedCall[] = [];
      let nextDueAt: number | null = null;
      let remaining = req.limit;
      const queues = [...this.#queues.entries()];
      const n = queues.length;
      const start = n > 0 ? this.#rotation++ % n : 0;
      // The floors are trusted for a second at most: then every pair is looked at once (a safety net, not the rule).
      const lookAtAll = !this.#floorsKept || req.now - this.#lookedAtAll >= 1000 || req.now < this.#lookedAtAll;
      if (lookAtAll) this.#lookedAtAll = req.now;
      for (let i = 0; i < n; i++) {
        const [key, [endpoint, fn]] = queues[(start + i) % n]!;
        let cap = Math.min(req.capacity(endpoint, fn), remaining);
        if (cap <= 0) {
          if (remaining <= 0) nextDueAt = req.now; // stopped by the total limit: more may be due
          continue;
        }
        const spec = this.#limits.spec(endpoint, fn);
        // Nothing of this pair is due yet (known without a statement): only its next due time counts.
        const floor = spec || lookAtAll ? undefined : this.#dueFloors.get(key);
        if (floor !== undefined && floor > req.now) {
          if (floor !== Number.POSITIVE_INFINITY && (nextDueAt === null || floor < nextDueAt)) nextDueAt = floor;
          continue;
        }
        this.#dueFloors.delete(key);
        let limited: number | null = null;
        let claimed = 0;
        if (spec && isKeyed(spec)) {
          // Limits per key: the store picks which keys' calls may start (round-robin), one row at a time.
          const picked = this.#limits.pick(endpoint, fn, spec, cap, req.now);
          limited = picked.nextDueAt;
          for (const seq of picked.seqs) {
            this.#dropFresh(seq);
            const row = claimedRow(this.#named.claimSeq.get({ seq, until: req.now + req.leaseMs, owner: req.owner, now: req.now }) as unknown[]);
            calls.push(this.#toClaimed(row, req.elideStateAbove ?? Number.POSITIVE_INFINITY));
          }
          claimed = picked.seqs.length;
        } else {
          // Limits of the function as a whole cap the usual claim (one statement); a limit that does not bind costs its counts.
          const due = this.#stmt.anyDue!.get(endpoint, fn, req.now) !== undefined;
          const gate = spec && due ? this.#limits.allow(endpoint, fn, spec, cap, req.now) : null;
          const take = gate ? gate.allowed : cap;
          const rows = due && take > 0 ? this.#claimPair(endpoint, fn, take, req) : [];
          for (const row of rows) calls.push(this.#toClaimed(row, req.elideStateAbove ?? Number.POSITIVE_INFINITY));
          claimed = rows.length;
          if (spec && gate) {
            this.#limits.started(endpoint, fn, spec, claimed, req.now);
            // Cut short by a limit, not by the claim's capacity: look again when it may free (if calls are still due).
            if (gate.bound !== null && claimed === take && take < cap && this.#stmt.anyDue!.get(endpoint, fn, req.now) !== undefined) {
              limited = this.#limits.recheckAt(endpoint, fn, spec, gate.bound, req.now);
            }
          }
        }
        remaining -= claimed;
        cap -= claimed;
        if (limited !== null) {
          if (nextDueAt === null || limited < nextDueAt) nextDueAt = limited;
        } else if (cap > 0) {
          // Everything due was claimed: the next due time (a lease's expiry included) is the pair's floor.
          const next = this.#nextDue(endpoint, fn, !spec);
          if (next !== null && (nextDueAt === null || next < nextDueAt)) nextDueAt = next;
        } else if (claimed > 0) {
          nextDueAt = req.now;
        }
      }
      return { calls, nextDueAt };
    });
  }

  /**
   * Leases up to `cap` due calls of (endpoint, fn), oldest due first, and
   * answers their rows. With `#fresh` empty, one statement that returns
   * the rows; else the due rows' seqs and the integers that tell whether
   * `#fresh` still holds them, one statement that leases them by seq, and
   * the file read only for the rows `#fresh` does not hold.
   */
  #claimPair(endpoint: string, fn: string, cap: number, req: ClaimRequest): ClaimRow[] {
    const until = req.now + req.leaseMs;
    if (this.#fresh.size === 0) {
      const raw = this.#named.claim.all({ endpoint, fn, cap, until, owner: req.owner, now: req.now }) as unknown[][];
      return raw.map(claimedRow);
    }
    const picked = this.#stmt.pickDue!.all(endpoint, fn, req.now, cap) as number[][];
    if (picked.length === 0) return [];
    let seqs = '[';
    for (let i = 0; i < picked.length; i++) seqs += (i === 0 ? '' : ',') + picked[i]![0]!;
    const leased = this.#named.leaseSeqs.run({ seqs: `${seqs}]`, until, owner: req.owner, now: req.now }).changes;
    if (leased !== picked.length) throw new Error(`a claim leased ${leased} of the ${picked.length} due calls it picked (a bug)`);
    const rows: ClaimRow[] = [];
    let remembered = 0;
    for (const [seq, token, attempts, failures, resumes, generation, mode, stateKind] of picked as Array<[number, number, number, number, number, number, number, number]>) {
      const row = this.#dropFresh(seq);
      if (row && token === 0 && attempts === 0 && failures === 0 && resumes === 0 && generation === 0 && mode === 0 && stateKind === 0) {
        row.lease_token = 1;
        rows.push(row);
        remembered++;
      } else {
        rows.push(claimedRow(this.#stmt.leasedBySeq!.get(seq) as unknown[]));
      }
    }
    // None of them remembered: what is left may be rows no claim will take here (cancelled, expired, claimed another
    // way), which would keep every claim on this path; forgotten, the next claims take the single statement again.
    if (remembered === 0) this.#forgetFresh();
    return rows;
  }

  /** Takes the entry of `seq` out of `#fresh`; answers it (undefined if there was none). */
  #dropFresh(seq: number): ClaimRow | undefined {
    const row = this.#fresh.get(seq);
    if (!row) return undefined;
    this.#fresh.delete(seq);
    this.#freshBytes -= row.input?.length ?? 0;
    return row;
  }

  /**
   * When a claim needs no statement (this process alone writes the file, the
   * floors were checked against the file less than a second ago, no pair has
   * declared limits and every pair's floor is later than `now`): the earliest
   * floor (null: none is known to come). Otherwise undefined.
   */
  #quietUntil(now: number): number | null | undefined {
    if (!this.#floorsKept || this.#closed || now - this.#lookedAtAll >= 1000 || now < this.#lookedAtAll) return undefined;
    let next: number | null = null;
    for (const key of this.#queues.keys()) {
      const floor = this.#dueFloors.get(key);
      if (floor === undefined || floor <= now) return undefined;
      const [endpoint, fn] = this.#queues.get(key)!;
      if (this.#limits.spec(endpoint, fn)) return undefined;
      if (floor !== Number.POSITIVE_INFINITY && (next === null || floor < next)) next = floor;
    }
    return next;
  }

  /**
   * The pair's next due time (a lease's expiry included; null: nothing
   * unfinished), kept as its floor when `floor` says so and this process
   * alone writes the file.
   */
  #nextDue(endpoint: string, fn: string, floor: boolean): number | null {
    const next = (this.#stmt.nextDue!.get(endpoint, fn) as { due_at: number } | undefined)?.due_at ?? null;
    if (floor && this.#floorsKept) this.#dueFloors.set(pairKey(endpoint, fn), next ?? Number.POSITIVE_INFINITY);
    return next;
  }

  /** The bytes of a call's state: its chunks of the current generation in order (or a legacy `state_value`). */
  #stateBytes(row: Pick<CallRow, 'id' | 'generation' | 'state_kind' | 'state_value' | 'state_length'>): Buffer | null {
    if (row.state_kind === 0) return null;
    if (row.state_value) return row.state_value;
    if (row.state_length === 0) return Buffer.alloc(0);
    const chunks = this.#stmt.chunks!.all(row.id, row.generation) as Array<{ bytes: Buffer }>;
    return chunks.length === 1 ? chunks[0]!.bytes : Buffer.concat(chunks.map((c) => c.bytes));
  }

  /** Deletes the chunks of a call's state (finished, replaced, restarted or tail-called). */
  #dropState(row: Pick<CallRow, 'id' | 'state_kind' | 'state_length'>): void {
    if (hasStoredState(row)) this.#stmt.dropChunks!.run(row.id);
  }

  /**
   * A leased row as the call its claim answers, remembered as leased. A
   * resume gets the results ready for it: `results` when the caller knows
   * them all (nothing is read), else read from the file.
   */
  #toClaimed(row: ClaimRow, elideStateAbove: number, results?: ChildResult[]): ClaimedCall {
    this.#suspended.delete(row.id);
    // The claim's row itself (never changed once made): what `complete` needs of it, nothing copied.
    this.#leases.set(row.id, row);
    if (row.mode !== 1) return toClaimedCall(row, null);
    results ??= this.#readyResults(row);
    return toClaimedCall(row, toResume(row, elideStateAbove, () => this.#stateBytes(row), results));
  }

  /** The results ready for a resume of `row` (up to its `poll_max`): its children's, then its signals'. */
  #readyResults(row: Pick<ClaimRow, 'id' | 'generation' | 'poll_max'>): ChildResult[] {
    const max = Math.max(1, row.poll_max);
    const ready = this.#stmt.ready!.all(row.id, row.generation, max) as Array<
      Pick<CallRow, 'id' | 'correlation_id' | 'output' | 'error'>
    >;
    const results = ready.map(toChildResult);
    if (results.length < max) {
      const signals = this.#stmt.readySignals!.all(row.id, row.generation, max - results.length) as Array<{
        seq: number;
        correlation_id: string;
        payload: Buffer | null;
      }>;
      for (const sig of signals) {
        results.push({ dispatchId: `${policy.SIGNAL_RESULT_PREFIX}${sig.seq}`, correlationId: BigInt(sig.correlation_id), output: decodeAny(sig.payload), error: null });
      }
    }
    return results;
  }

  /**
   * Marks delivered results and answers how many and how many were errors;
   * takes them off the parent's ready counts unless `counted` (the caller
   * writes the counts itself: a suspension).
   */
  #markDelivered(parent: Pick<CallRow, 'id' | 'seq'>, ids: string[], counted = false): { count: number; errors: number } {
    let count = 0;
    let errors = 0;
    const many: string[] | null = ids.length > DELIVERED_ONE_BY_ONE ? [] : null;
    for (const id of ids) {
      if (id.startsWith(policy.SIGNAL_RESULT_PREFIX)) {
        if (this.#stmt.deliverSignal!.run(Number(id.slice(policy.SIGNAL_RESULT_PREFIX.length)), parent.id).changes > 0) count++;
        continue;
      }
      if (many) {
        many.push(id);
        continue;
      }
      // A result without an error first (the usual one), then one with: a write without RETURNING each.
      if (this.#stmt.markDelivered!.run(id, parent.id, 0).changes > 0) {
        count++;
      } else if (this.#stmt.markDelivered!.run(id, parent.id, 1).changes > 0) {
        count++;
        errors++;
      }
    }
    if (many && many.length > 0) {
      for (const r of this.#stmt.markDeliveredMany!.all(JSON.stringify(many), parent.id) as Array<{ has_error: number }>) {
        count++;
        errors += r.has_error;
      }
    }
    if (count > 0 && !counted) {
      this.#sql('UPDATE calls SET ready = MAX(0, ready - ?), ready_errors = MAX(0, ready_errors - ?) WHERE seq = ?')
        .run(count, errors, parent.seq);
    }
    return { count, errors };
  }

  /**
   * Hands a finished call's result to its parent. The finish wrote the
   * child's `deliver` mark (one statement fewer per child of a fan-in); it
   * is taken back when the parent no longer waits for this generation.
   */
  #notifyParent(
    child: Pick<CallRow, 'seq' | 'id' | 'parent_id' | 'parent_generation' | 'correlation_id'>,
    hasError: boolean,
    now: number,
    output: IAny | null,
    error: IError | null,
  ): void {
    if (!child.parent_id) return;
    const finished: FinishedChild = { id: child.id, correlationId: child.correlation_id, output, error };
    if (!this.#wakeParent(child.parent_id, child.parent_generation, hasError ? 1 : 0, now, finished)) this.#stmt.clearDeliver!.run(child.seq);
  }

  /**
   * Counts a result for a waiting parent (its due time may come earlier); false if it no longer waits for this
   * generation. `child`: the finished child whose result it is (none for a signal's).
   */
  #wakeParent(parent: string, generation: number, isError: 0 | 1, now: number, child?: FinishedChild): boolean {
    const handed = this.#handOff(parent, generation, isError, now, child);
    if (handed !== null) return handed;
    // Most results do not wake their parent (a fan-in's children but the last): counted, nothing else changes.
    if (this.#named.countResult.run({ e: isError, now, parent, gen: generation }).changes > 0) return true;
    const r = this.#named.notifyParent.get({ e: isError, now, parent, gen: generation }) as
      | { seq: number; endpoint: string; function: string; due_at: number | null }
      | undefined;
    if (!r) return false;
    this.#dueAt(r.endpoint, r.function, r.due_at);
    if (this.#woken && r.due_at !== null) this.#woken.push({ seq: r.seq, endpoint: r.endpoint, fn: r.function, due: r.due_at });
    return true;
  }

  /**
   * Under `completeAndClaim`: the result that wakes a parent this process
   * suspended (every result counted for it counts down its hint), counted
   * and the parent leased in one write, when its function declares no limits
   * and has capacity (its run starts with the completion's answer). When that
   * result is the only one ready, the resume is handed `child`'s result as it
   * was recorded, without reading it back. Null: not tried (not the waking
   * result as far as `#suspended` counted, or no room), or the row did not
   * wake (the hint was wrong); nothing written, the caller counts the result
   * as usual.
   */
  #handOff(parent: string, generation: number, isError: 0 | 1, now: number, child: FinishedChild | undefined): boolean | null {
    const pair = this.#suspended.get(parent);
    if (!pair) return null;
    // Not the result that wakes it (as far as this process counted; every result counted here counts): as usual.
    if (--pair.need > 0 && !(isError && pair.wakeOnError)) return null;
    const lease = this.#leaseAtInsert;
    if (!lease || !this.#woken) return null;
    const known = pair.row;
    if (this.#limits.spec(known.endpoint, known.function) || lease.claim.capacity(known.endpoint, known.function) <= 0) return null;
    const params = {
      e: isError,
      now,
      seq: known.seq,
      parent,
      gen: generation,
      endpoint: known.endpoint,
      fn: known.function,
      owner: lease.owner,
      until: lease.until,
    };
    // Its row as the suspension left it, and this result the only one ready: leased, nothing read back.
    if (known.generation === generation && this.#named.wakeAndLeaseKnown.run({ ...params, token: known.lease_token }).changes === 1) {
      this.#tookLease({ ...known, lease_token: known.lease_token + 1 }, lease, child && [finishedChildResult(child)]);
      // It counted none (`ready = 0`), errors included: this one now.
      this.#knowReady(parent, known.lease_token + 1, 1, isError);
      return true;
    }
    if (this.#named.wakeAndLease.run(params).changes === 0) return null;
    const raw = this.#stmt.leasedBySeq!.get(known.seq) as unknown[];
    // `ready` counts the parent's results not yet delivered, its signals' included: 1 is this one alone.
    const only = child && raw[CLAIM_COLUMN_LIST.length] === 1;
    this.#tookLease(claimedRow(raw), lease, only ? [finishedChildResult(child)] : undefined);
    return true;
  }

  /**
   * Finishes a call. With `lease`, only if the file says the lease is still
   * held (answers false and writes nothing otherwise).
   */
  #finishRow(
    row: Pick<
      CallRow,
      'seq' | 'id' | 'parent_id' | 'parent_generation' | 'correlation_id' | 'attempts' | 'resumes' | 'state_kind' | 'state_value' | 'state_length'
    >,
    state: CallState,
    status: number,
    output: IAny | null,
    error: IError | null,
    now: number,
    notify: boolean,
    counts?: { attempts: number; resumes: number },
    lease?: { owner: string; token: number },
    run?: { startedAt: number; durationMs: number },
  ): boolean {
    this.#leases.delete(row.id);
    this.#readyAtLease.delete(row.id);
    this.#suspended.delete(row.id);
    const hasError = policy.isErrorResult(status, error);
    // A failed call keeps its state (its journal): `resume` runs it again from there.
    const keep = state === 'failed' && !row.state_value;
    // The run counts of a completing run are written by the same statement (one UPDATE per finished call).
    const r = this.#named.finish[(keep ? 1 : 0) + (lease ? 2 : 0)]!
      .run({
        state,
        status,
        output: encodeAny(output),
        error: encodeErrorBlob(error),
        has_error: hasError ? 1 : 0,
        now,
        attempts: counts ? counts.attempts : row.attempts,
        resumes: counts ? counts.resumes : row.resumes,
        deliver: notify && row.parent_id ? 1 : null,
        run_started: run ? run.startedAt : null,
        run_duration: run ? run.durationMs : null,
        seq: row.seq,
        ...(lease ? { owner: lease.owner, token: lease.token } : {}),
      });
    if (r.changes === 0) return false;
    if (!keep) this.#dropState(row);
    if (notify) this.#notifyParent(row, hasError, now, output, error);
    return true;
  }

  /** Cancels the unfinished calls among `ids` and their descendants, as {@link policy.planCancellation} says. */
  #cancelTrees(ids: string[], now: number, error: IError, notifyOutside: boolean): number {
    if (ids.length === 0) return 0;
    const rows = this.#stmt.tree!.all(JSON.stringify(ids)) as CallRow[];
    for (const c of policy.planCancellation(rows, ids, error, notifyOutside)) {
      this.#finishRow(c.row, 'cancelled', policy.CANCELLED_STATUS, null, c.error, now, c.notifyParent);
    }
    return rows.length;
  }

  /** Cancels the unfinished children of the current generation of `row`. */
  #cancelOrphans(row: Pick<CallRow, 'id' | 'generation'>, now: number, error: IError): void {
    const ids = (this.#stmt.unfinishedChildren!.all(row.id, row.generation) as Array<{ id: string }>).map((r) => r.id);
    this.#cancelTrees(ids, now, error, false);
  }

  /**
   * Records a run's outcome under its lease. The row comes from the lease
   * kept in memory at the claim (nothing is read back from the file); the
   * first write of each outcome checks the lease in the file, so a lease
   * lost meanwhile (cancelled, restarted, expired and claimed again) records
   * nothing. Without a lease in memory (claimed before a failed commit, or a
   * tail call), the row is read as before.
   */
  complete(req: CompleteRequest): Promise<boolean> {
    return this.#recordRun(req, () => this.#complete(req));
  }

  /**
   * Runs `body`, which records `req`, as one group-commit operation: in its
   * own savepoint only when it shares its batch with other operations and
   * may write more than once ({@link #finishesInOneWrite}). Alone in its
   * batch (an awaited call's steps: the suspension, then the child's
   * finish), a failure undoes the whole batch anyway — the redo log runs
   * its records again, or the batch's transaction rolls back — so the
   * savepoint's two statements are saved.
   */
  #recordRun<T>(req: CompleteRequest, body: () => T): Promise<T> {
    return this.#group.run(() => (this.#group.alone || this.#finishesInOneWrite(req) ? body() : this.#inTransaction(body)), true);
  }

  /**
   * Whether recording `req` writes one statement only — the finish's
   * `UPDATE` of a call that ends without a parent to tell, results to mark,
   * state to drop, a run to keep in `attempts` or children to cancel (every
   * no-op call) — so that its operation needs no savepoint: if the statement
   * fails, SQLite undoes it alone. Read from the lease kept in memory, when
   * the operation runs; otherwise the operation runs in a savepoint as
   * before.
   */
  #finishesInOneWrite(req: CompleteRequest): boolean {
    const o = req.outcome;
    if (o.kind !== 'finish' || req.delivered.length > 0) return false;
    const row = this.#leases.get(req.id);
    if (!row || row.lease_token !== req.leaseToken || row.parent_id !== null || hasStoredState(row) || row.state_value) return false;
    if (req.attempt && !isOnlyCleanRun(req.attempt, o)) return false;
    return row.mode === 0 || !policy.orphansOnComplete(req);
  }

  /**
   * Records a run's outcome, then leases (in the same transaction) what it
   * made due now, as `claim.capacity` allows: the parent its result woke,
   * the children its suspension started, or itself when its poll is
   * already answered. Functions with declared limits wait for `claimDue`.
   */
  completeAndClaim(req: CompleteRequest, claim: FollowOnClaim): Promise<FollowOnResult> {
    // One write (a no-op call's finish: it wakes nothing, so nothing is leased after it) needs no savepoint.
    const body = (): FollowOnResult => {
      const woken: Woken[] = [];
      this.#woken = woken;
      // The children a suspension starts are written leased, as the loop below would lease them (no fairness: as before).
      const calls: ClaimedCall[] = [];
      this.#leaseAtInsert = { claim, owner: req.owner, now: req.now, until: req.now + claim.leaseMs, fair: false, calls };
      let recorded: boolean;
      try {
        recorded = this.#complete(req);
      } finally {
        this.#woken = null;
        this.#leaseAtInsert = null;
      }
      if (!recorded) return { recorded, calls: [] };
      for (const w of woken) {
        if (w.due > req.now || this.#limits.spec(w.endpoint, w.fn) || claim.capacity(w.endpoint, w.fn) <= 0) continue;
        this.#dropFresh(w.seq);
        const raw = this.#named.claimIfDue.get({ seq: w.seq, until: req.now + claim.leaseMs, owner: req.owner, now: req.now }) as unknown[] | undefined;
        if (!raw) continue;
        const call = this.#toClaimed(claimedRow(raw), claim.elideStateAbove ?? Number.POSITIVE_INFINITY);
        claim.claimed(call);
        calls.push(call);
      }
      // The woken calls lowered their pairs' floors, and those leased here are no longer due (their due time is the
      // lease's expiry): each pair's floor is its next due time again, so that the claim round the run loop starts
      // after this run needs no statement (#quietUntil).
      // Once per pair: a fan-out wakes thousands of children of one function, and those beyond the capacity stay due.
      if (this.#floorsKept) {
        const seen = woken.length > 1 ? new Set<string>() : null;
        for (const w of woken) {
          const key = pairKey(w.endpoint, w.fn);
          if (seen) {
            if (seen.has(key)) continue;
            seen.add(key);
          }
          if (this.#limits.spec(w.endpoint, w.fn) || (this.#dueFloors.get(key) ?? Number.NEGATIVE_INFINITY) > req.now) continue;
          this.#nextDue(w.endpoint, w.fn, true);
        }
      }
      return { recorded, calls };
    };
    return this.#recordRun(req, body);
  }

  #complete(req: CompleteRequest): boolean {
    const cached = this.#leases.get(req.id);
    this.#leases.delete(req.id);
    const counted = this.#readyAtLease.get(req.id);
    if (counted) this.#readyAtLease.delete(req.id);
    let row: LeasedRow;
    if (cached && cached.lease_token === req.leaseToken && req.outcome.kind !== 'tail_call') {
      row = cached;
    } else {
      const full = this.#stmt.byId!.get(req.id) as CallRow | undefined;
      if (!full || !policy.holdsLease(full, req)) return false;
      row = full;
    }
    const lease = { owner: req.owner, token: req.leaseToken };
    const now = req.now;
    const a = req.attempt;
    let held: AttemptRecord | null = null;
    const { attempts, resumes } = policy.runCountsAfter(row, a);
    const o = req.outcome;
    const orphans = policy.orphansOnComplete(req);
    switch (o.kind) {
      case 'retry': {
        const r = this.#named.retry
          .run({ due: o.dueAt, status: o.status, error: encodeErrorBlob(o.error), attempts, resumes, now, seq: row.seq, ...lease });
        if (r.changes === 0) return false;
        this.#dueAt(row.endpoint, row.function, o.dueAt);
        break;
      }
      case 'finish': {
        // What this case writes besides the finish's UPDATE (a parent told, results marked, state dropped, an attempt,
        // orphans cancelled) is what #finishesInOneWrite rules out: a write added here is added to its conditions.
        // The call's only run, ending it without an error, stays in the row (schema 14): no row of `attempts`.
        if (a && isOnlyCleanRun(a, o)) held = a;
        if (!this.#finishRow(row, policy.finishedState(o.status), o.status, o.output, o.error, now, true, { attempts, resumes }, lease, held ?? undefined)) return false;
        this.#markDelivered(row, req.delivered);
        // A run from the input (mode 0: a first run, or a retry of one) has no children of its generation: only a
        // suspension starts children, and it leaves the call in mode 1 until it finishes or a new generation begins.
        if (orphans && row.mode !== 0) this.#cancelOrphans(row, now, orphans);
        break;
      }
      case 'suspend': {
        // The stored bytes are never read here: a delta is appended as a chunk (written below).
        const write = policy.planStateWrite(row, o);
        const legacy = write.append ? row.state_value : null;
        const base = write.append ? (legacy ? legacy.length : row.state_length) : 0;
        const length = base + (o.state ? o.state.value.length : 0);
        const params: Params = {
          signals: policy.encodeSignalWaits(o.signalWaits),
          due: null,
          status: o.status,
          attempts,
          resumes,
          now,
          kind: write.kind,
          typeUrl: write.typeUrl,
          length,
          delta: write.markDelta ? 1 : row.state_delta,
          ready: 0,
          readyErrors: 0,
          min: o.minResults,
          max: o.maxResults,
          deadline: o.deadline,
          wake: o.wakeOnError ? 1 : 0,
          pollError: encodeErrorBlob(o.pollError),
          seq: row.seq,
        };
        // Children inserted below are pending: only the delivery changes the counts (SUSPEND_SQL writes them).
        let fresh: policy.ReadyResults | null = null;
        const expected = counted && row === cached && counted.token === req.leaseToken ? counted : undefined;
        if (expected && expected.ready === req.delivered.length) {
          // Its lease taken by a write that knew its counts, and this run delivers as many results as it had: none
          // left, if the file agrees — the suspension's write checks the lease and the counts, instead of a read first.
          params.due = policy.dueAtSuspension(o, NONE_READY, now);
          params.owner = lease.owner;
          params.token = lease.token;
          params.expectReady = expected.ready;
          params.expectErrors = expected.errors;
          if (this.#named.suspendIfAsKnown.run(params).changes === 1) {
            fresh = NONE_READY;
            const delivered = this.#markDelivered(row, req.delivered, true);
            if (delivered.count !== expected.ready || delivered.errors !== expected.errors) {
              // Some of the results delivered were not marked as ready (a Poll answered twice): the ones left stay ready.
              fresh = readyLeft(expected.ready, expected.errors, delivered);
              params.due = policy.dueAtSuspension(o, fresh, now);
              this.#stmt.recountReady!.run(fresh.ready, fresh.readyErrors, params.due, row.seq);
            }
          }
        }
        if (!fresh) {
          // The one read of a suspension: the lease, and the results counted for it so far (its wake condition).
          const held = this.#named.held.get({ seq: row.seq, ...lease }) as
            | { ready: number; ready_errors: number }
            | undefined;
          if (!held) return false;
          const delivered = this.#markDelivered(row, req.delivered, true);
          fresh = readyLeft(held.ready, held.ready_errors, delivered);
          params.due = policy.dueAtSuspension(o, fresh, now);
          params.ready = fresh.ready;
          params.readyErrors = fresh.readyErrors;
          this.#named.suspend.run(params);
        }
        const due = params.due as number;
        // One child per correlation ID in a generation (a Poll sent again must not start its calls twice). A run from
        // the input (mode 0) has started none in this generation (only a suspension starts children, and it leaves
        // mode 1 until the generation ends): nothing to look up for a fan-out's first Poll.
        const existing = row.mode === 0 ? [] : policy.correlationKeys(o.calls).filter((k) => this.#stmt.childByCorrelation!.get(row.id, row.generation, k));
        for (const call of policy.childrenToStart(o.calls, new Set(existing))) this.#insertRow(call, row.generation);
        if (!write.append) this.#dropState(row);
        // A legacy state_value (schema < 3) becomes the first chunk.
        else if (legacy) this.#stmt.insertChunk!.run(row.id, row.generation, 0, legacy);
        if (o.state && o.state.value.length > 0) {
          this.#stmt.insertChunk!.run(row.id, row.generation, base, Buffer.from(o.state.value.buffer, o.state.value.byteOffset, o.state.value.byteLength));
        }
        this.#dueAt(row.endpoint, row.function, due);
        this.#woken?.push({ seq: row.seq, endpoint: row.endpoint, fn: row.function, due });
        const delta = params.delta as number;
        const pollError = params.pollError as Buffer | null;
        if (this.#suspended.size < MAX_SUSPENDED_HINTS) {
          // The row as SUSPEND_SQL left it, read as a claim reads it (CLAIM_COLUMNS: no input once it resumes).
          const known: ClaimRow = {
            seq: row.seq,
            id: row.id,
            function: row.function,
            endpoint: row.endpoint,
            parent_id: row.parent_id,
            parent_generation: row.parent_generation,
            correlation_id: row.correlation_id,
            root_id: row.root_id,
            created_at: row.created_at,
            expires_at: row.expires_at,
            attempts,
            resumes,
            failures: 0,
            lease_token: row.lease_token,
            input: null,
            mode: 1,
            generation: row.generation,
            poll_max: o.maxResults,
            state_kind: write.kind,
            state_type_url: write.typeUrl,
            state_value: null,
            state_length: length,
            state_delta: delta,
            poll_error: pollError,
            trace_context: row.trace_context,
          };
          this.#suspended.set(row.id, { need: o.minResults - fresh.ready, wakeOnError: o.wakeOnError, row: known });
        }
        // Kept signals can only answer the waits of this Poll: none, nothing to read.
        if (o.signalWaits?.length) this.#matchSignals(row.id, now);
        break;
      }
      case 'tail_call': {
        // Read above (never from memory), under the lease.
        if (orphans) this.#cancelOrphans(row, now, orphans);
        this.#ensureQueue(o.endpoint, o.function);
        this.#dueAt(o.endpoint, o.function, o.dueAt);
        this.#dropState(row);
        this.#sql(`UPDATE calls SET function = @fn, endpoint = @endpoint, input = @input, expires_at = @expires,
            original_input = CASE WHEN input_replaced = 1 THEN original_input ELSE input END, input_replaced = 1,
            state = 'pending', mode = 0, due_at = @due, lease_owner = NULL, status = @status, error = NULL,
            failures = 0, attempts = @attempts, resumes = @resumes, generation = generation + 1, ready = 0, ready_errors = 0,
            state_kind = 0, state_type_url = NULL, state_value = NULL, state_length = 0, state_delta = 0, poll_min = 0,
            poll_max = 0, poll_deadline = NULL, poll_error = NULL, poll_signals = NULL, updated_at = @now WHERE seq = @seq`)
          .run({
            fn: o.function,
            endpoint: o.endpoint,
            input: encodeAny(o.input),
            expires: o.expiresAt,
            due: o.dueAt,
            status: o.status,
            attempts,
            resumes,
            now,
            seq: row.seq,
          });
        break;
      }
    }
    if (a && a !== held) {
      this.#stmt.insertAttempt!.run(row.id, a.number, a.startedAt, a.durationMs, a.status, a.outcome, a.resume ? 1 : 0, encodeErrorBlob(a.error));
    }
    return true;
  }

  renewLeases(owner: string, ids: string[], until: number): Promise<void> {
    return this.#group.run(() => {
      for (const id of ids) {
        const r = this.#stmt.renew!.get(until, id, owner) as { endpoint: string; function: string } | undefined;
        if (r) this.#dueAt(r.endpoint, r.function, until);
      }
    });
  }

  cancel(id: string, now: number, error: IError): Promise<number> {
    return this.#group.run(() => this.#cancelTrees([id], now, error, true));
  }

  restart(id: string, now: number): Promise<boolean> {
    return this.#group.run(() => {
      const row = this.#stmt.byId!.get(id) as CallRow | undefined;
      if (!row) return false;
      this.#restartRow(row, now);
      return true;
    });
  }

  /** Runs a call again from its original function and input (see {@link Store.restart}). */
  #restartRow(row: CallRow, now: number): void {
    this.#leases.delete(row.id);
    this.#readyAtLease.delete(row.id);
    this.#cancelOrphans(row, now, policy.orphanError(row.id, 'restarted'));
    if (policy.resultCountedForParent(row)) {
      // Its old result was counted as ready for the parent: take it back.
      this.#sql(`UPDATE calls SET ready = MAX(0, ready - 1), ready_errors = MAX(0, ready_errors - ?) WHERE id = ?`)
        .run(row.has_error, row.parent_id);
    }
    // Signals consumed and not delivered go back to the kept ones.
    this.#sql('UPDATE signals SET state = 0, generation = NULL, correlation_id = NULL, consumed_at = NULL WHERE call_id = ? AND state = 1').run(row.id);
    this.#ensureQueue(row.original_endpoint, row.original_function);
    this.#dueAt(row.original_endpoint, row.original_function, now);
    this.#dropState(row);
    // A run kept in the row (schema 14) joins the history before the call runs again (its runs count from 1 again).
    if (row.run_started_at !== null) {
      this.#stmt.insertAttempt!.run(row.id, 1, row.run_started_at, row.run_duration_ms ?? 0, row.status, 'exit', 0, null);
    }
    this.#sql(`UPDATE calls SET function = original_function, endpoint = original_endpoint,
        input = CASE WHEN input_replaced = 1 THEN original_input ELSE input END, original_input = NULL, input_replaced = 0,
        state = 'pending', mode = 0, due_at = @now, lease_owner = NULL, lease_token = lease_token + 1, status = 0,
        failures = 0, generation = generation + 1, ready = 0, ready_errors = 0, expires_at = @now + expiration_ms,
        finished_at = NULL, output = NULL, error = NULL, has_error = 0, deliver = NULL, state_kind = 0,
        state_type_url = NULL, state_value = NULL, state_length = 0, state_delta = 0, poll_min = 0, poll_max = 0,
        poll_deadline = NULL, poll_error = NULL, poll_signals = NULL, run_started_at = NULL, run_duration_ms = NULL,
        updated_at = @now WHERE seq = @seq`)
      .run({ now, seq: row.seq });
  }

  async limitWait(call: { endpoint: string; function: string; limitKey: string }, now: number): Promise<proto.ILimitWait | null> {
    this.#checkOpen();
    return this.#limits.wait(call.endpoint, call.function, call.limitKey, now);
  }

  /**
   * Lets the waits of a suspended call's Poll consume the signals kept for
   * it (policy.matchSignals); each consumed signal counts as a result and
   * may make the call due. Answers the seqs consumed.
   */
  #matchSignals(id: string, now: number): number[] {
    const row = this.#sql('SELECT id, generation, state, poll_signals FROM calls WHERE id = ?').get(id) as
      | Pick<CallRow, 'id' | 'generation' | 'state' | 'poll_signals'>
      | undefined;
    if (row?.state !== 'suspended' || !row.poll_signals) return [];
    const waits = policy.parseSignalWaits(row.poll_signals);
    const answered = new Set((this.#stmt.answeredSignals!.all(row.id, row.generation) as Array<{ correlation_id: string }>).map((r) => r.correlation_id));
    const kept = this.#stmt.keptSignals!.all(row.id) as Array<{ seq: number; name: string }>;
    const consumed: number[] = [];
    for (const [i, seq] of policy.matchSignals(waits, answered, kept)) {
      this.#stmt.consumeSignal!.run(row.generation, waits[i]!.correlationId.toString(), now, seq);
      this.#wakeParent(row.id, row.generation, 0, now);
      consumed.push(seq);
    }
    return consumed;
  }

  signal(sig: NewSignal): Promise<SignalAnswer> {
    return this.#group.run((): SignalAnswer => {
      const row = this.#stmt.byId!.get(sig.callId) as CallRow | undefined;
      if (!row) return { kind: 'not_found' };
      if (sig.idempotencyKey) {
        const seen = this.#stmt.signalByKey!.get(sig.idempotencyKey) as { state: number } | undefined;
        if (seen) return { kind: seen.state >= 1 ? 'delivered' : 'kept' };
      }
      if (isFinished(row.state)) return { kind: 'finished', state: row.state };
      const { seq } = this.#stmt.insertSignal!.get(row.id, sig.name, encodeAny(sig.payload), sig.idempotencyKey || null, sig.now) as { seq: number };
      return { kind: this.#matchSignals(row.id, sig.now).includes(seq) ? 'delivered' : 'kept' };
    });
  }

  async getSignals(id: string): Promise<{ signals: SignalRecord[]; waitingFor: string[] }> {
    this.#checkOpen();
    const rows = this.#stmt.signalsOf!.all(id) as Array<{
      name: string;
      payload: Buffer | null;
      sent_at: number;
      consumed_at: number | null;
      state: number;
      correlation_id: string | null;
      generation: number | null;
    }>;
    const call = this.#sql('SELECT generation, state, poll_signals FROM calls WHERE id = ?').get(id) as
      | Pick<CallRow, 'generation' | 'state' | 'poll_signals'>
      | undefined;
    const answered = new Set(rows.filter((r) => r.state >= 1 && r.generation === call?.generation).map((r) => r.correlation_id));
    const waitingFor =
      call && !isFinished(call.state)
        ? policy.parseSignalWaits(call.poll_signals).filter((w) => !answered.has(w.correlationId.toString())).map((w) => w.name)
        : [];
    return {
      signals: rows.map((r) => ({ name: r.name, payload: decodeAny(r.payload), sentAt: r.sent_at, consumedAt: r.consumed_at })),
      waitingFor,
    };
  }

  async countWaiting(endpoint: string): Promise<number> {
    this.#checkOpen();
    const row = this.#sql(`SELECT count(*) AS n FROM calls WHERE endpoint = ? AND due_at IS NOT NULL AND state = 'pending'`).get(endpoint) as { n: number };
    return row.n;
  }

  resume(id: string, now: number): Promise<ResumeAnswer> {
    return this.#group.run((): ResumeAnswer => {
      const row = this.#stmt.byId!.get(id) as CallRow | undefined;
      if (!row) return { kind: 'not_found' };
      const plan = policy.planResume(row);
      if (plan !== 'resume') {
        if (plan === 'restart') {
          this.#restartRow(row, now);
          return { kind: 'resumed', childrenRestarted: 0 };
        }
        return { kind: 'refused', state: row.state, reason: plan };
      }
      const children = this.#sql('SELECT * FROM calls WHERE parent_id = ? AND parent_generation = ?').all(row.id, row.generation) as CallRow[];
      let restarted = 0;
      for (const child of children) {
        if (child.state === 'succeeded') continue;
        if (!isFinished(child.state)) this.#cancelTrees([child.id], now, policy.orphanError(row.id, 'restarted'), false);
        this.#restartRow(this.#stmt.byId!.get(child.id) as CallRow, now);
        restarted++;
      }
      // What succeeded is delivered again: the journal ignores results it already holds.
      const children1 = this.#sql(`UPDATE calls SET deliver = 1 WHERE parent_id = ? AND parent_generation = ? AND state = 'succeeded'`)
        .run(row.id, row.generation).changes;
      this.#sql('UPDATE signals SET state = 1 WHERE call_id = ? AND generation = ? AND state = 2').run(row.id, row.generation);
      const signals = (this.#sql('SELECT count(*) AS n FROM signals WHERE call_id = ? AND generation = ? AND state = 1').get(row.id, row.generation) as { n: number }).n;
      if (policy.resultCountedForParent(row)) {
        this.#sql(`UPDATE calls SET ready = MAX(0, ready - 1), ready_errors = MAX(0, ready_errors - ?) WHERE id = ?`)
          .run(row.has_error, row.parent_id);
      }
      this.#dueAt(row.endpoint, row.function, now);
      this.#sql(`UPDATE calls SET state = 'suspended', mode = 1, due_at = @now, lease_owner = NULL, lease_token = lease_token + 1,
          status = 0, failures = 0, ready = @ready, ready_errors = 0, expires_at = @now + expiration_ms, finished_at = NULL,
          output = NULL, error = NULL, has_error = 0, deliver = NULL, poll_min = 1, poll_max = @max, poll_deadline = @now,
          poll_wake_on_error = 0, poll_error = NULL, poll_signals = NULL, updated_at = @now WHERE seq = @seq`)
        .run({ now, ready: children1 + signals, max: MAX_POLL_RESULTS, seq: row.seq });
      return { kind: 'resumed', childrenRestarted: restarted };
    });
  }

  getCall(id: string): Promise<CallRecord | null> {
    return this.#read(() => {
      const row = this.#stmt.byId!.get(id) as CallRow | undefined;
      return row ? toCallRecord(row, true, this.#stateBytes(row)) : null;
    });
  }

  loadState(id: string, leaseToken: number): Promise<CoroutineState | null> {
    return this.#read(() => {
      const row = this.#stmt.leasedState!.get(id, leaseToken) as
        | Pick<CallRow, 'id' | 'generation' | 'state_kind' | 'state_type_url' | 'state_value' | 'state_length'>
        | undefined;
      return row ? stateOf(row, this.#stateBytes(row)) : null;
    });
  }

  getAttempts(id: string): Promise<AttemptRecord[]> {
    return this.#read(() => {
      const rows = this.#stmt.attempts!.all(id) as Array<{
        number: number;
        started_at: number;
        duration_ms: number;
        status: number;
        outcome: string;
        resume: number;
        error: Buffer | null;
      }>;
      const out = rows.map(toAttemptRecord);
      // A run kept in the row (schema 14) is the call's run 1, the latest of that number (as INSERT OR REPLACE would be).
      const kept = this.#stmt.keptRun!.get(id) as { run_started_at: number | null; run_duration_ms: number | null; status: number } | undefined;
      if (kept && kept.run_started_at !== null) {
        const run: AttemptRecord = { number: 1, startedAt: kept.run_started_at, durationMs: kept.run_duration_ms ?? 0, status: kept.status, outcome: 'exit', error: null, resume: false };
        const i = out.findIndex((r) => r.number === 1);
        if (i >= 0) out[i] = run;
        else out.unshift(run);
      }
      return out;
    });
  }

  getChildren(id: string): Promise<string[]> {
    return this.#read(() => {
      return (this.#stmt.children!.all(id) as Array<{ id: string }>).map((r) => r.id);
    });
  }

  listCalls(filter: ListFilter): Promise<ListPage> {
    return this.#read(() => {
      const limit = listLimit(filter);
      const where: string[] = [];
      const params: unknown[] = [];
      if (filter.function) {
        where.push('function = ?');
        params.push(filter.function);
      }
      if (filter.createdAfter !== undefined) {
        where.push('created_at >= ?');
        params.push(filter.createdAfter);
      }
      if (filter.createdBefore !== undefined) {
        where.push('created_at < ?');
        params.push(filter.createdBefore);
      }
      if (filter.rootsOnly) where.push('parent_id IS NULL');
      const countRows = where.length
        ? (this.#sql(`SELECT state, count(*) AS n FROM calls WHERE ${where.join(' AND ')} GROUP BY state`).all(...params) as Array<{ state: CallState; n: number }>)
        : this.#countAll();

      const pageWhere = [...where];
      const pageParams = [...params];
      if (filter.states && filter.states.length > 0) {
        // States all failed or cancelled, or all unfinished: the condition that selects the partial index of those calls.
        if (filter.states.every((st) => isFinished(st) && st !== 'succeeded')) pageWhere.push(`finished_at IS NOT NULL AND state <> 'succeeded'`);
        else if (!filter.states.some(isFinished)) pageWhere.push('finished_at IS NULL');
        pageWhere.push(`state IN (${filter.states.map(() => '?').join(',')})`);
        pageParams.push(...filter.states);
      }
      if (filter.cursor) {
        pageWhere.push('seq < ?');
        pageParams.push(parseCursor(filter.cursor));
      }
      const rows = this.#sql(
          `SELECT * FROM calls ${pageWhere.length ? `WHERE ${pageWhere.join(' AND ')}` : ''} ORDER BY seq DESC ${boundLimit()}`,
        )
        .all(...pageParams, limit + 1) as CallRow[];
      return toListPage(rows, limit, countsByState(countRows));
    });
  }

  /**
   * Calls per state, each part from its index (schema 12): the unfinished
   * ones (calls_live), those finished otherwise than succeeded
   * (calls_unsucceeded), and all calls (SQLite counts a b-tree's entries
   * without reading rows); the rest succeeded.
   */
  #countAll(): Array<{ state: CallState; n: number }> {
    const rows = this.#sql(
      `SELECT state, count(*) AS n FROM calls WHERE finished_at IS NULL GROUP BY state
       UNION ALL SELECT state, count(*) AS n FROM calls WHERE finished_at IS NOT NULL AND state <> 'succeeded' GROUP BY state`,
    ).all() as Array<{ state: CallState; n: number }>;
    const all = this.#sql('SELECT count(*) AS n FROM calls').get() as { n: number };
    const others = rows.reduce((sum, r) => sum + r.n, 0);
    rows.push({ state: 'succeeded', n: all.n - others });
    return rows;
  }

  async countLive(now: number): Promise<LiveCount[]> {
    this.#checkOpen();
    const rows = this.#sql(
      `SELECT function, state, count(*) AS n, sum(CASE WHEN state = 'pending' AND due_at <= ? THEN 1 ELSE 0 END) AS due
       FROM calls WHERE finished_at IS NULL AND state IN ('pending', 'running', 'suspended') GROUP BY function, state`,
    ).all(now) as Array<{ function: string; state: LiveCount['state']; n: number; due: number | null }>;
    return rows.map((r) => ({ function: r.function, state: r.state, count: r.n, due: r.due ?? 0 }));
  }

  getMeta(key: string): Promise<string | null> {
    return this.#read(() => {
      const row = this.#stmt.getMeta!.get(key) as { value: string } | undefined;
      return row?.value ?? null;
    });
  }

  initMeta(key: string, value: string): Promise<string> {
    return this.#group.run(() => {
      this.#stmt.initMeta!.run(key, value);
      return (this.#stmt.getMeta!.get(key) as { value: string }).value;
    });
  }

  revokeSession(id: string, expiresAt: number): Promise<void> {
    return this.#group.run(() => {
      this.#stmt.dropRevoked!.run(Date.now());
      this.#stmt.revokeSession!.run(id, expiresAt);
    });
  }

  isSessionRevoked(id: string, now: number): Promise<boolean> {
    return this.#read(() => {
      return this.#stmt.isRevoked!.get(id, now) !== undefined;
    });
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error('the store is closed');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#group.close();
    this.#closed = true;
    try {
      this.#redo?.close();
    } finally {
      this.db.close();
    }
  }
}
