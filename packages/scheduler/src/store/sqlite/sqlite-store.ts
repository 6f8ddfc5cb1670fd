/**
 * The embedded store: SQLite through better-sqlite3, in WAL mode, with group
 * commit. A database file belongs to one scheduler process at a time (it is
 * opened in exclusive locking mode), so leases left by a crashed process are
 * released when the next one opens it.
 *
 * It only speaks SQL: what a transition does (states, wakes, dedupe,
 * orphans) is decided in `../policy.ts`, and this file writes it.
 * @module
 */
import { dirname, resolve } from 'node:path';
import type { proto } from '@dispatch/core/protocol';
import Database from 'better-sqlite3';
import { type CallRecordRow, encodeAny, encodeErrorBlob, hasStoredState, stateOf, toAttemptRecord, toCallRecord, toChildResult, toClaimedCall, toResume } from '../call-row.js';
import { countsByState, listLimit, parseCursor, toListPage } from '../listing.js';
import type { AttemptRecord, CallRecord, CallState, ClaimedCall, ClaimRequest, ClaimResult, CompleteRequest, CoroutineState, ListFilter, ListPage, NewCall, Store } from '../store.js';
import * as policy from '../policy.js';
import { dueOnResultSql, FINISHED_SQL, WAITING_SQL } from '../policy-sql.js';
import { SCHEDULER_DEFAULTS } from '../../options.js';
import { GroupCommit } from './group-commit.js';
import { migrateSqlite } from './schema.js';
import { preparePrivateDirectory, preparePrivateFile, tightenFile } from '../../private-files.js';

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
   * Where to say that the database's directory can be listed by other users
   * (see `private-files.ts`: the files are 0600 in a 0700 directory; a
   * directory others may write to is refused). Default: nowhere.
   * @example { onWarning: (line) => log.warn(line) }
   */
  onWarning?: (message: string) => void;
}

/** The columns a claim reads (the input only for a first run or a retry: a resume carries the state instead). */
const CLAIM_COLUMNS = `seq, id, function, endpoint, parent_id, root_id, created_at, expires_at, attempts, resumes, failures,
  lease_token, CASE WHEN mode = 1 THEN NULL ELSE input END AS input, mode, generation, poll_max, state_kind, state_type_url,
  state_value, state_length, state_delta, poll_error`;

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
}

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
  readonly #tx: GroupCommit;
  readonly #queues = new Map<string, [string, string]>();
  #rotation = 0;
  #closed = false;
  readonly #stmt: Record<string, Database.Statement>;

  private constructor(db: Database.Database, path: string) {
    this.db = db;
    this.path = path;
    this.#tx = new GroupCommit(<T>(fn: () => T) => db.transaction(fn)() as T);
    const p = (sql: string) => db.prepare(sql);
    this.#stmt = {
      insertQueue: p('INSERT OR IGNORE INTO queues (endpoint, function) VALUES (?, ?)'),
      byKey: p('SELECT id FROM calls WHERE idempotency_key = ?'),
      // The input is stored once: original_input is written only when a tail call replaces the input (input_replaced).
      insertCall: p(`INSERT INTO calls (id, function, endpoint, version, input, original_function, original_endpoint,
        idempotency_key, parent_id, parent_generation, root_id, correlation_id, state, due_at,
        created_at, updated_at, expires_at, expiration_ms)
        VALUES (@id, @function, @endpoint, @version, @input, @function, @endpoint, @idempotency_key, @parent_id,
        @parent_generation, @root_id, @correlation_id, 'pending', @due_at, @created_at, @created_at, @expires_at, @expiration_ms)`),
      selectDue: p(
        'SELECT seq FROM calls WHERE endpoint = ? AND function = ? AND due_at <= ? ORDER BY due_at LIMIT ?',
      ),
      nextDue: p(
        'SELECT due_at FROM calls WHERE endpoint = ? AND function = ? AND due_at IS NOT NULL ORDER BY due_at LIMIT 1',
      ),
      // Only what the RunRequest needs: not the original input, the output or the error (memory follows in-flight work).
      claim: p(`UPDATE calls SET state = 'running', due_at = @until, lease_owner = @owner,
        lease_token = lease_token + 1, updated_at = @now WHERE seq = @seq RETURNING ${CLAIM_COLUMNS}`),
      ready: p(`SELECT id, correlation_id, output, error FROM calls
        WHERE parent_id = ? AND parent_generation = ? AND deliver = 1 ORDER BY finished_at, seq LIMIT ?`),
      byId: p('SELECT * FROM calls WHERE id = ?'),
      insertAttempt: p(`INSERT OR REPLACE INTO attempts (call_id, number, started_at, duration_ms, status, outcome, resume, error)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      markDelivered: p('UPDATE calls SET deliver = NULL WHERE id = ? AND parent_id = ? AND deliver = 1 RETURNING has_error'),
      notifyParent: p(`UPDATE calls SET ready = ready + 1, ready_errors = ready_errors + @e, updated_at = @now,
        due_at = ${dueOnResultSql({ row: '', isError: '@e', now: '@now', least: 'MIN' })}
        WHERE id = @parent AND generation = @gen AND state IN ${WAITING_SQL}`),
      setDeliver: p('UPDATE calls SET deliver = 1 WHERE seq = ?'),
      childByCorrelation: p('SELECT 1 FROM calls WHERE parent_id = ? AND parent_generation = ? AND correlation_id = ?'),
      unfinishedChildren: p(`SELECT id FROM calls WHERE parent_id = ? AND parent_generation = ? AND state NOT IN ${FINISHED_SQL}`),
      tree: p(`WITH RECURSIVE tree(id) AS (SELECT value FROM json_each(?) UNION SELECT c.id FROM calls c JOIN tree t ON c.parent_id = t.id)
        SELECT c.* FROM calls c JOIN tree t ON c.id = t.id WHERE c.state NOT IN ${FINISHED_SQL}`),
      attempts: p('SELECT * FROM attempts WHERE call_id = ? ORDER BY number'),
      children: p('SELECT id FROM calls WHERE parent_id = ? ORDER BY seq'),
      getMeta: p('SELECT value FROM meta WHERE key = ?'),
      initMeta: p('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)'),
      revokeSession: p('INSERT INTO revoked_sessions (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)'),
      dropRevoked: p('DELETE FROM revoked_sessions WHERE expires_at < ?'),
      isRevoked: p('SELECT 1 FROM revoked_sessions WHERE id = ? AND expires_at >= ?'),
      renew: p(`UPDATE calls SET due_at = ? WHERE id = ? AND lease_owner = ? AND state = 'running'`),
      chunks: p('SELECT bytes FROM call_state_chunks WHERE call_id = ? AND generation = ? ORDER BY seq'),
      insertChunk: p('INSERT INTO call_state_chunks (call_id, generation, seq, bytes) VALUES (?, ?, ?, ?)'),
      dropChunks: p('DELETE FROM call_state_chunks WHERE call_id = ?'),
      leasedState: p(`SELECT id, generation, state_kind, state_type_url, state_value, state_length FROM calls
        WHERE id = ? AND lease_token = ? AND state = 'running'`),
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
    try {
      db = new Database(path);
    } catch (err) {
      throw new Error(`cannot open the database ${path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const exclusive = !memory && (options.exclusive ?? true);
      if (exclusive) db.pragma('locking_mode = EXCLUSIVE');
      db.pragma(`busy_timeout = ${exclusive ? 250 : 5000}`);
      if (!memory) db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${options.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
      migrateSqlite(db);
      // Takes the exclusive lock now (a write), so a second process fails here.
      if (exclusive) db.exec('BEGIN IMMEDIATE; COMMIT');
      // SQLite gives a new WAL the database's mode; one left by an older version may be wider.
      if (!memory) for (const suffix of ['-wal', '-shm', '-journal']) tightenFile(`${path}${suffix}`);
      const store = new SqliteStore(db, path);
      for (const q of db.prepare('SELECT endpoint, function FROM queues').all() as Array<{ endpoint: string; function: string }>) {
        store.#queues.set(`${q.endpoint}\u0000${q.function}`, [q.endpoint, q.function]);
      }
      if (options.releaseLeases ?? exclusive) {
        db.prepare(`UPDATE calls SET state = 'pending', due_at = ?, lease_owner = NULL WHERE state = 'running'`).run(Date.now());
      }
      return store;
    } catch (err) {
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
    const key = `${endpoint}\u0000${fn}`;
    if (this.#queues.has(key)) return;
    this.#stmt.insertQueue!.run(endpoint, fn);
    this.#queues.set(key, [endpoint, fn]);
  }

  #insertRow(call: NewCall, parentGeneration: number): void {
    this.#ensureQueue(call.endpoint, call.function);
    this.#stmt.insertCall!.run({
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
    });
  }

  insertCalls(calls: NewCall[]): Promise<string[]> {
    return this.#tx.run(() => {
      const inserted = new Set<string>();
      const known = new Map<string, string>();
      for (const call of policy.firstPerKey(calls)) {
        const key = call.idempotencyKey;
        const existing = key ? (this.#stmt.byKey!.get(key) as { id: string } | undefined) : undefined;
        if (key && existing) {
          known.set(key, existing.id);
        } else {
          this.#insertRow(call, 0);
          inserted.add(call.id);
        }
      }
      return policy.answerIds(calls, inserted, known);
    });
  }

  claimDue(req: ClaimRequest): Promise<ClaimResult> {
    return this.#tx.run(() => {
      const calls: ClaimedCall[] = [];
      let nextDueAt: number | null = null;
      let remaining = req.limit;
      const queues = [...this.#queues.values()];
      const n = queues.length;
      const start = n > 0 ? this.#rotation++ % n : 0;
      for (let i = 0; i < n; i++) {
        const [endpoint, fn] = queues[(start + i) % n]!;
        let cap = Math.min(req.capacity(endpoint, fn), remaining);
        if (cap <= 0) {
          if (remaining <= 0) nextDueAt = req.now; // stopped by the total limit: more may be due
          continue;
        }
        const rows = this.#stmt.selectDue!.all(endpoint, fn, req.now, cap) as Array<{ seq: number }>;
        for (const { seq } of rows) {
          const row = this.#stmt.claim!.get({ seq, until: req.now + req.leaseMs, owner: req.owner, now: req.now }) as CallRow;
          calls.push(this.#toClaimed(row, req.elideStateAbove ?? Number.POSITIVE_INFINITY));
        }
        remaining -= rows.length;
        cap -= rows.length;
        if (cap > 0) {
          const next = this.#stmt.nextDue!.get(endpoint, fn) as { due_at: number } | undefined;
          if (next && (nextDueAt === null || next.due_at < nextDueAt)) nextDueAt = next.due_at;
        } else if (rows.length > 0) {
          nextDueAt = req.now;
        }
      }
      return { calls, nextDueAt };
    });
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

  #toClaimed(row: CallRow, elideStateAbove: number): ClaimedCall {
    if (row.mode !== 1) return toClaimedCall(row, null);
    const ready = this.#stmt.ready!.all(row.id, row.generation, Math.max(1, row.poll_max)) as Array<
      Pick<CallRow, 'id' | 'correlation_id' | 'output' | 'error'>
    >;
    return toClaimedCall(row, toResume(row, elideStateAbove, () => this.#stateBytes(row), ready.map(toChildResult)));
  }

  /** Marks delivered results; returns [count, errors]. */
  #markDelivered(parent: CallRow, ids: string[]): void {
    let count = 0;
    let errors = 0;
    for (const id of ids) {
      const r = this.#stmt.markDelivered!.get(id, parent.id) as { has_error: number } | undefined;
      if (r) {
        count++;
        errors += r.has_error;
      }
    }
    if (count > 0) {
      this.#sql('UPDATE calls SET ready = MAX(0, ready - ?), ready_errors = MAX(0, ready_errors - ?) WHERE seq = ?')
        .run(count, errors, parent.seq);
    }
  }

  /** Hands a finished call's result to its parent (if that parent still waits for this generation). */
  #notifyParent(child: CallRow, hasError: boolean, now: number): void {
    if (!child.parent_id) return;
    const r = this.#stmt.notifyParent!.run({ e: hasError ? 1 : 0, now, parent: child.parent_id, gen: child.parent_generation });
    if (r.changes > 0) this.#stmt.setDeliver!.run(child.seq);
  }

  #finishRow(
    row: CallRow,
    state: CallState,
    status: number,
    output: IAny | null,
    error: IError | null,
    now: number,
    notify: boolean,
  ): void {
    const hasError = policy.isErrorResult(status, error);
    this.#dropState(row);
    this.#sql(`UPDATE calls SET state = @state, status = @status, output = @output, error = @error, has_error = @has_error,
        due_at = NULL, lease_owner = NULL, finished_at = @now, updated_at = @now, mode = 0, state_kind = 0,
        state_type_url = NULL, state_value = NULL, state_length = 0, poll_error = NULL, poll_min = 0, poll_max = 0,
        poll_deadline = NULL WHERE seq = @seq`)
      .run({
        state,
        status,
        output: encodeAny(output),
        error: encodeErrorBlob(error),
        has_error: hasError ? 1 : 0,
        now,
        seq: row.seq,
      });
    if (notify) this.#notifyParent(row, hasError, now);
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
  #cancelOrphans(row: CallRow, now: number, error: IError): void {
    const ids = (this.#stmt.unfinishedChildren!.all(row.id, row.generation) as Array<{ id: string }>).map((r) => r.id);
    this.#cancelTrees(ids, now, error, false);
  }

  complete(req: CompleteRequest): Promise<boolean> {
    return this.#tx.run(() => {
      const row = this.#stmt.byId!.get(req.id) as CallRow | undefined;
      if (!row || !policy.holdsLease(row, req)) return false;
      const now = req.now;
      const a = req.attempt;
      if (a) {
        this.#stmt.insertAttempt!.run(
          row.id,
          a.number,
          a.startedAt,
          a.durationMs,
          a.status,
          a.outcome,
          a.resume ? 1 : 0,
          encodeErrorBlob(a.error),
        );
      }
      const { attempts, resumes } = policy.runCountsAfter(row, a);
      const o = req.outcome;
      const orphans = policy.orphansOnComplete(req);
      switch (o.kind) {
        case 'retry':
          this.#sql(`UPDATE calls SET state = 'pending', due_at = @due, lease_owner = NULL, status = @status,
              error = @error, failures = failures + 1, attempts = @attempts, resumes = @resumes, updated_at = @now WHERE seq = @seq`)
            .run({ due: o.dueAt, status: o.status, error: encodeErrorBlob(o.error), attempts, resumes, now, seq: row.seq });
          break;
        case 'finish': {
          this.#markDelivered(row, req.delivered);
          this.#sql('UPDATE calls SET attempts = ?, resumes = ? WHERE seq = ?').run(attempts, resumes, row.seq);
          this.#finishRow(row, policy.finishedState(o.status), o.status, o.output, o.error, now, true);
          if (orphans) this.#cancelOrphans(row, now, orphans);
          break;
        }
        case 'suspend': {
          this.#markDelivered(row, req.delivered);
          const existing = policy.correlationKeys(o.calls).filter((k) => this.#stmt.childByCorrelation!.get(row.id, row.generation, k));
          for (const call of policy.childrenToStart(o.calls, new Set(existing))) this.#insertRow(call, row.generation);
          // The stored bytes are never read here: a delta is appended as a chunk.
          const write = policy.planStateWrite(row, o);
          let length = write.append ? row.state_length : 0;
          if (!write.append) this.#dropState(row);
          else if (row.state_value) {
            // A legacy state_value (schema < 3) becomes the first chunk.
            this.#stmt.insertChunk!.run(row.id, row.generation, 0, row.state_value);
            length = row.state_value.length;
          }
          if (o.state && o.state.value.length > 0) {
            this.#stmt.insertChunk!.run(row.id, row.generation, length, Buffer.from(o.state.value.buffer, o.state.value.byteOffset, o.state.value.byteLength));
            length += o.state.value.length;
          }
          const fresh = this.#sql('SELECT ready, ready_errors FROM calls WHERE seq = ?').get(row.seq) as {
            ready: number;
            ready_errors: number;
          };
          this.#sql(`UPDATE calls SET state = 'suspended', mode = 1, due_at = @due, lease_owner = NULL, status = @status,
              error = NULL, failures = 0, attempts = @attempts, resumes = @resumes, updated_at = @now, state_kind = @kind,
              state_type_url = @typeUrl, state_value = NULL, state_length = @length, state_delta = @delta, poll_min = @min, poll_max = @max,
              poll_deadline = @deadline, poll_wake_on_error = @wake, poll_error = @pollError WHERE seq = @seq`)
            .run({
              due: policy.dueAtSuspension(o, { ready: fresh.ready, readyErrors: fresh.ready_errors }, now),
              status: o.status,
              attempts,
              resumes,
              now,
              kind: write.kind,
              typeUrl: write.typeUrl,
              length,
              delta: write.markDelta ? 1 : row.state_delta,
              min: o.minResults,
              max: o.maxResults,
              deadline: o.deadline,
              wake: o.wakeOnError ? 1 : 0,
              pollError: encodeErrorBlob(o.pollError),
              seq: row.seq,
            });
          break;
        }
        case 'tail_call': {
          if (orphans) this.#cancelOrphans(row, now, orphans);
          this.#ensureQueue(o.endpoint, o.function);
          this.#dropState(row);
          this.#sql(`UPDATE calls SET function = @fn, endpoint = @endpoint, input = @input, expires_at = @expires,
              original_input = CASE WHEN input_replaced = 1 THEN original_input ELSE input END, input_replaced = 1,
              state = 'pending', mode = 0, due_at = @due, lease_owner = NULL, status = @status, error = NULL,
              failures = 0, attempts = @attempts, resumes = @resumes, generation = generation + 1, ready = 0, ready_errors = 0,
              state_kind = 0, state_type_url = NULL, state_value = NULL, state_length = 0, state_delta = 0, poll_min = 0,
              poll_max = 0, poll_deadline = NULL, poll_error = NULL, updated_at = @now WHERE seq = @seq`)
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
      return true;
    });
  }

  renewLeases(owner: string, ids: string[], until: number): Promise<void> {
    return this.#tx.run(() => {
      for (const id of ids) this.#stmt.renew!.run(until, id, owner);
    });
  }

  cancel(id: string, now: number, error: IError): Promise<number> {
    return this.#tx.run(() => this.#cancelTrees([id], now, error, true));
  }

  restart(id: string, now: number): Promise<boolean> {
    return this.#tx.run(() => {
      const row = this.#stmt.byId!.get(id) as CallRow | undefined;
      if (!row) return false;
      this.#cancelOrphans(row, now, policy.orphanError(row.id, 'restarted'));
      if (policy.resultCountedForParent(row)) {
        // Its old result was counted as ready for the parent: take it back.
        this.#sql(`UPDATE calls SET ready = MAX(0, ready - 1), ready_errors = MAX(0, ready_errors - ?) WHERE id = ?`)
          .run(row.has_error, row.parent_id);
      }
      this.#ensureQueue(row.original_endpoint, row.original_function);
      this.#dropState(row);
      this.#sql(`UPDATE calls SET function = original_function, endpoint = original_endpoint,
          input = CASE WHEN input_replaced = 1 THEN original_input ELSE input END, original_input = NULL, input_replaced = 0,
          state = 'pending', mode = 0, due_at = @now, lease_owner = NULL, lease_token = lease_token + 1, status = 0,
          failures = 0, generation = generation + 1, ready = 0, ready_errors = 0, expires_at = @now + expiration_ms,
          finished_at = NULL, output = NULL, error = NULL, has_error = 0, deliver = NULL, state_kind = 0,
          state_type_url = NULL, state_value = NULL, state_length = 0, state_delta = 0, poll_min = 0, poll_max = 0,
          poll_deadline = NULL, poll_error = NULL, updated_at = @now WHERE seq = @seq`)
        .run({ now, seq: row.seq });
      return true;
    });
  }

  async getCall(id: string): Promise<CallRecord | null> {
    this.#checkOpen();
    const row = this.#stmt.byId!.get(id) as CallRow | undefined;
    return row ? toCallRecord(row, true, this.#stateBytes(row)) : null;
  }

  async loadState(id: string, leaseToken: number): Promise<CoroutineState | null> {
    this.#checkOpen();
    const row = this.#stmt.leasedState!.get(id, leaseToken) as
      | Pick<CallRow, 'id' | 'generation' | 'state_kind' | 'state_type_url' | 'state_value' | 'state_length'>
      | undefined;
    return row ? stateOf(row, this.#stateBytes(row)) : null;
  }

  async getAttempts(id: string): Promise<AttemptRecord[]> {
    this.#checkOpen();
    const rows = this.#stmt.attempts!.all(id) as Array<{
      number: number;
      started_at: number;
      duration_ms: number;
      status: number;
      outcome: string;
      resume: number;
      error: Buffer | null;
    }>;
    return rows.map(toAttemptRecord);
  }

  async countWaiting(endpoint: string): Promise<number> {
    this.#checkOpen();
    const row = this.#sql(`SELECT count(*) AS n FROM calls WHERE endpoint = ? AND due_at IS NOT NULL AND state = 'pending'`).get(endpoint) as { n: number };
    return row.n;
  }

  async getChildren(id: string): Promise<string[]> {
    this.#checkOpen();
    return (this.#stmt.children!.all(id) as Array<{ id: string }>).map((r) => r.id);
  }

  async listCalls(filter: ListFilter): Promise<ListPage> {
    this.#checkOpen();
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
    const countWhere = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const countRows = this.#sql(`SELECT state, count(*) AS n FROM calls ${countWhere} GROUP BY state`)
      .all(...params) as Array<{ state: CallState; n: number }>;

    const pageWhere = [...where];
    const pageParams = [...params];
    if (filter.states && filter.states.length > 0) {
      pageWhere.push(`state IN (${filter.states.map(() => '?').join(',')})`);
      pageParams.push(...filter.states);
    }
    if (filter.cursor) {
      pageWhere.push('seq < ?');
      pageParams.push(parseCursor(filter.cursor));
    }
    const rows = this.#sql(
        `SELECT * FROM calls ${pageWhere.length ? `WHERE ${pageWhere.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`,
      )
      .all(...pageParams, limit + 1) as CallRow[];
    return toListPage(rows, limit, countsByState(countRows));
  }

  async getMeta(key: string): Promise<string | null> {
    this.#checkOpen();
    const row = this.#stmt.getMeta!.get(key) as { value: string } | undefined;
    return row?.value ?? null;
  }

  initMeta(key: string, value: string): Promise<string> {
    return this.#tx.run(() => {
      this.#stmt.initMeta!.run(key, value);
      return (this.#stmt.getMeta!.get(key) as { value: string }).value;
    });
  }

  revokeSession(id: string, expiresAt: number): Promise<void> {
    return this.#tx.run(() => {
      this.#stmt.dropRevoked!.run(Date.now());
      this.#stmt.revokeSession!.run(id, expiresAt);
    });
  }

  async isSessionRevoked(id: string, now: number): Promise<boolean> {
    this.#checkOpen();
    return this.#stmt.isRevoked!.get(id, now) !== undefined;
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error('the store is closed');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#tx.close();
    this.#closed = true;
    this.db.close();
  }
}
