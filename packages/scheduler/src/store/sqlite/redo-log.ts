/**
 * The SQLite store's redo log: what makes a group commit durable without
 * committing SQLite's b-trees at every batch.
 *
 * A commit of SQLite writes every page its transaction touched: ~7.5 pages
 * of 4 KiB for each half of an awaited call (the row, and an entry in each
 * index), which was most of the store's time on that path
 * (bench/profile-notes.md). When one process owns the database file
 * (exclusive locking, the default), the store instead keeps one SQLite
 * transaction open and, at the end of each group-commit batch, appends to
 * this log the write statements the batch ran, with their parameters: one
 * `write(2)` of a few hundred bytes, after which the batch's promises
 * resolve (`fdatasync` too at `synchronous = FULL`). Every
 * {@link COMMIT_INTERVAL_MS} (or {@link COMMIT_BYTES} of log) the open
 * transaction is committed with the number of the last record it holds
 * (`meta.redo_lsn`), and the log starts over.
 *
 * After a crash, SQLite rolls the open transaction back; opening the file
 * runs again, in order, the statements of the records after `redo_lsn`, on
 * the very state they first ran on, so they do the same (the SQL depends
 * on its parameters and the rows only: no clock, no random function). A
 * record is a length, a CRC-32, its number and its entries; a damaged
 * record (a write cut short by a power loss) or a gap in the numbering (a
 * power loss at `synchronous = NORMAL` may lose the database's last commit
 * or a record) ends the log: what is run is always a whole prefix.
 *
 * A batch of many operations or statements ({@link DIRECT_COMMIT_OPS}) is
 * committed to the database instead of logged: its pages are shared by
 * enough writes. If SQLite rolls the open transaction back by itself (it
 * may on a full disk or an I/O error), the state is rebuilt from the log
 * before the next write.
 *
 * The connection reads its own uncommitted writes, so the store reads as
 * before; no other process can open the file meanwhile (exclusive lock).
 *
 * Record format: `u32 length` `u32 crc32(payload)` `payload`, where the
 * payload is `f64 lsn` then entries: `D u32 id, string sql` (a statement's
 * text, once per log), `S u32 id, u16 n, n values` (a statement run with
 * its parameters), `X string sql` (`exec`). A value is a tag byte then:
 * null; f64; i32; a string (u32 byte length, UTF-8); bytes (u32 length);
 * a bigint (as a string); an object (u16 count, then string keys and
 * values, for named parameters).
 * @module
 */
import { closeSync, fdatasyncSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';

/** The open transaction is committed at least this often while it holds records. */
export const COMMIT_INTERVAL_MS = 200;
/** … and as soon as the log holds this many bytes. */
export const COMMIT_BYTES = 8 * 1024 * 1024;
/**
 * A group-commit batch of this many operations, or whose operations run more
 * than {@link DIRECT_COMMIT_STATEMENTS} write statements, is committed to the
 * database at its end instead of logged: a commit's pages are then shared by
 * enough writes to cost less than logging each statement
 * (bench/profile-notes.md).
 */
export const DIRECT_COMMIT_OPS = 32;
/** See {@link DIRECT_COMMIT_OPS}. */
export const DIRECT_COMMIT_STATEMENTS = 64;

const T_NULL = 0;
const T_F64 = 1;
const T_I32 = 2;
const T_STR = 3;
const T_BYTES = 4;
const T_BIGINT = 5;
const T_OBJECT = 6;
const E_DEF = 0x44; // D
const E_STMT = 0x53; // S
const E_EXEC = 0x58; // X

/** CRC-32 tables for four bytes at a time (slice-by-4): table k advances a byte through k more zero bytes. */
const CRC_TABLE = (() => {
  const t = new Int32Array(256 * 4);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 4; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** CRC-32 (IEEE) of `b[start, end)`. @example crc32(Buffer.from('123456789'), 0, 9) === 0xcbf43926 */
export function crc32(b: Uint8Array, start: number, end: number): number {
  const t = CRC_TABLE;
  let c = -1;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    c ^= b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
    c = t[768 + (c & 0xff)]! ^ t[512 + ((c >>> 8) & 0xff)]! ^ t[256 + ((c >>> 16) & 0xff)]! ^ t[(c >>> 24) & 0xff]!;
  }
  for (; i < end; i++) c = t[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** A growable byte buffer the log encodes into. */
class Writer {
  buf = Buffer.allocUnsafe(64 * 1024);
  len = 0;

  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  u8(v: number): void {
    this.reserve(1);
    this.buf[this.len++] = v;
  }

  u16(v: number): void {
    this.reserve(2);
    this.buf.writeUInt16LE(v, this.len);
    this.len += 2;
  }

  u32(v: number): void {
    this.reserve(4);
    this.buf.writeUInt32LE(v, this.len);
    this.len += 4;
  }

  f64(v: number): void {
    this.reserve(8);
    this.buf.writeDoubleLE(v, this.len);
    this.len += 8;
  }

  str(s: string): void {
    // At most 3 bytes per UTF-16 unit.
    this.reserve(4 + s.length * 3);
    const n = this.buf.write(s, this.len + 4, 'utf8');
    this.buf.writeUInt32LE(n, this.len);
    this.len += 4 + n;
  }

  bytes(b: Uint8Array): void {
    this.reserve(4 + b.length);
    this.buf.writeUInt32LE(b.length, this.len);
    this.buf.set(b, this.len + 4);
    this.len += 4 + b.length;
  }

  value(v: unknown): void {
    if (v === null || v === undefined) this.u8(T_NULL);
    else if (typeof v === 'number') {
      if ((v | 0) === v && !Object.is(v, -0)) {
        this.u8(T_I32);
        this.reserve(4);
        this.buf.writeInt32LE(v, this.len);
        this.len += 4;
      } else {
        this.u8(T_F64);
        this.f64(v);
      }
    } else if (typeof v === 'string') {
      this.u8(T_STR);
      this.str(v);
    } else if (v instanceof Uint8Array) {
      this.u8(T_BYTES);
      this.bytes(v);
    } else if (typeof v === 'bigint') {
      this.u8(T_BIGINT);
      this.str(v.toString());
    } else if (typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>);
      this.u8(T_OBJECT);
      this.u16(entries.length);
      for (const [k, x] of entries) {
        this.str(k);
        this.value(x);
      }
    } else {
      // better-sqlite3 binds none of these either: the statement already failed before it was logged.
      throw new TypeError(`the redo log cannot encode a parameter of type ${typeof v}`);
    }
  }
}

/** Reads what {@link Writer} wrote. */
class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
  ) {
    this.pos = start;
  }

  u8(): number {
    return this.buf[this.pos++]!;
  }

  u16(): number {
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  f64(): number {
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  str(): string {
    const n = this.u32();
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  value(): unknown {
    const tag = this.u8();
    switch (tag) {
      case T_NULL:
        return null;
      case T_F64:
        return this.f64();
      case T_I32: {
        const v = this.buf.readInt32LE(this.pos);
        this.pos += 4;
        return v;
      }
      case T_STR:
        return this.str();
      case T_BYTES: {
        const n = this.u32();
        const b = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
        this.pos += n;
        return b;
      }
      case T_BIGINT:
        return BigInt(this.str());
      case T_OBJECT: {
        const n = this.u16();
        const o: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const k = this.str();
          o[k] = this.value();
        }
        return o;
      }
      default:
        throw new Error(`unknown value tag ${tag} at byte ${this.pos - 1}`);
    }
  }
}

/** The SQLite result code a file system error of the log's write means (the store's faults speak SQLite's codes). */
const SQLITE_CODE_OF: Record<string, string> = {
  ENOSPC: 'SQLITE_FULL',
  EDQUOT: 'SQLITE_FULL',
  EFBIG: 'SQLITE_FULL',
  EROFS: 'SQLITE_READONLY',
  EACCES: 'SQLITE_READONLY',
  EPERM: 'SQLITE_READONLY',
  EIO: 'SQLITE_IOERR_WRITE',
};

/**
 * A failed write of the log as the SQLite error it amounts to (a full disk
 * is `SQLITE_FULL` whichever file met it), naming the log; other errors
 * unchanged.
 * @example
 * asSqliteError(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }), '/d/scheduler.db-redo').code; // 'SQLITE_FULL'
 */
export function asSqliteError(err: unknown, path: string): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  const sqlite = typeof code === 'string' ? SQLITE_CODE_OF[code] : undefined;
  if (!sqlite) return err;
  return Object.assign(new Error(`${(err as Error).message} (the redo log ${path})`, { cause: err }), { code: sqlite });
}

/** What {@link RedoLog.recover} did. */
export interface RecoveryReport {
  /** Records run again (those after the committed LSN). */
  replayed: number;
  /** Statements they held. */
  statements: number;
  /**
   * Bytes at the end of the log that were not run: a record cut short or
   * damaged (a write a power loss interrupted), and whatever follows it or
   * does not follow the database's last commit (records are numbered one
   * after the other: after a gap, they would run on a state they did not
   * first run on).
   */
  tornBytes: number;
}

const META_KEY = 'redo_lsn';

/** SQL that begins, ends or rolls back a transaction or a savepoint: never logged (the log is what is inside them). */
const TRANSACTION_CONTROL = /^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b/i;

/** Where a record stands ({@link RedoLog.mark}), to go back to when an operation is rolled back. */
export interface RedoMark {
  readonly len: number;
  readonly entries: number;
  readonly defs: number;
}

/**
 * The redo log of one database file (`<file>-redo`). {@link RedoLog.attach}
 * makes the database's write statements record themselves while the log is
 * active; {@link RedoLog.start} opens the long transaction.
 * @example
 * const log = RedoLog.attach(db, `${path}-redo`, { fsync: false });
 * log.recover();
 * log.start();
 * // each group-commit batch: log.begin(); …statements…; log.seal();
 * log.close();
 */
export class RedoLog {
  readonly #db: Database.Database;
  readonly #path: string;
  readonly #fsync: boolean;
  readonly #fd: number;
  #active = false;
  /** The statement texts defined in the current log file, by text (ids are 0, 1, 2… in order of definition). */
  readonly #defs = new Map<string, number>();
  /** How many of them are in the file (the others are in the record being built). */
  #writtenDefs = 0;
  /** The record being built (a batch, or one statement outside any): room for its header, then its entries. */
  readonly #w = new Writer();
  #entries = 0;
  #inBatch = false;
  /** A write ran (or was tried) in the batch being run: undoing it means rebuilding the transaction ({@link undo}). */
  #batchWrote = false;
  /** The batch being run is committed to the database at its end instead of logged ({@link begin}). */
  #direct = false;
  /** The last record's number (persisted as `meta.redo_lsn` at each commit of the database). */
  #lsn = 0;
  #committedLsn = 0;
  #bytesSinceCommit = 0;
  #lastCommitAt = Date.now();
  #timer: NodeJS.Timeout | null = null;
  #commitSoon = false;
  /** Set when the database could not be brought back after a failed commit: every write fails with it. */
  #broken: Error | null = null;
  /** Told when a commit in the background fails (it is tried again later). */
  onCommitError: ((err: unknown) => void) | null = null;

  private constructor(db: Database.Database, path: string, fsync: boolean) {
    this.#db = db;
    this.#path = path;
    this.#fsync = fsync;
    this.#fd = openSync(path, 'a+', 0o600);
    if (fsync) {
      // The new file's directory entry, as SQLite does for its WAL.
      const dir = openSync(dirname(path), 'r');
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    }
  }

  /**
   * Opens (creating) the log at `path` and makes `db`'s write statements
   * (and `exec`) record themselves while the log is active. Call before any
   * statement is prepared.
   */
  static attach(db: Database.Database, path: string, options: { fsync: boolean }): RedoLog {
    const log = new RedoLog(db, path, options.fsync);
    const prepare = db.prepare.bind(db);
    (db as { prepare: typeof db.prepare }).prepare = ((sql: string) => {
      const statement = prepare(sql);
      if (!statement.readonly && !TRANSACTION_CONTROL.test(sql)) log.#instrument(statement, sql);
      return statement;
    }) as typeof db.prepare;
    const exec = db.exec.bind(db);
    (db as { exec: typeof db.exec }).exec = (sql: string) => {
      if (TRANSACTION_CONTROL.test(sql)) return exec(sql);
      return log.#write(() => exec(sql), sql, null);
    };
    return log;
  }

  /**
   * Whether batches go through the log: while it holds the database in its
   * open transaction, and once it is broken (then each batch fails, saying
   * why, instead of being committed on a state that misses acknowledged
   * writes).
   */
  get journaling(): boolean {
    return this.#active || this.#broken !== null;
  }

  #instrument(statement: Database.Statement, sql: string): void {
    const { run, get, all } = statement;
    const wrap =
      (method: (...args: never[]) => unknown) =>
      (...args: unknown[]) =>
        this.#write(() => method.apply(statement, args as never[]), sql, args);
    Object.defineProperties(statement, { run: { value: wrap(run) }, get: { value: wrap(get) }, all: { value: wrap(all) } });
  }

  /**
   * Runs a write (a statement with `args`, or `exec` of `sql` with null)
   * and logs it: in the batch's record, alone outside a batch, not at all
   * while the log is inactive or the batch commits directly.
   */
  #write<T>(run: () => T, sql: string, args: unknown[] | null): T {
    if (!this.#active) return run();
    if (!this.#inBatch) return this.#alone(run, sql, args);
    // Before it runs: a script run by `exec` may fail after its first statements changed the database.
    this.#batchWrote = true;
    const r = run();
    if (!this.#direct) this.#append(sql, args);
    return r;
  }

  /**
   * A write outside any batch (not the store's way; a test's, say): a
   * record of its own, in a savepoint, so that it is undone if the record
   * cannot be written.
   */
  #alone<T>(run: () => T, sql: string, args: unknown[] | null): T {
    this.begin();
    const db = this.#db;
    db.exec('SAVEPOINT redo_alone');
    try {
      const r = run();
      this.#append(sql, args);
      this.seal();
      db.exec('RELEASE redo_alone');
      return r;
    } catch (err) {
      try {
        if (db.inTransaction) db.exec('ROLLBACK TO redo_alone; RELEASE redo_alone');
        this.end();
      } catch {
        // The write's own error says more; a lost transaction is rebuilt (or reported) at the next write.
      }
      throw err;
    }
  }

  /** A statement run with `args` (null: `exec` of the SQL), added to the record being built. */
  #append(sql: string, args: unknown[] | null): void {
    if (this.#entries >= DIRECT_COMMIT_STATEMENTS && this.#inBatch) {
      // A large batch: committed to the database at its end (settle) instead; the record is dropped.
      this.#direct = true;
      this.#forgetDefsFrom(this.#writtenDefs);
      return;
    }
    const w = this.#w;
    if (args === null) {
      w.u8(E_EXEC);
      w.str(sql);
    } else {
      let id = this.#defs.get(sql);
      if (id === undefined) {
        id = this.#defs.size;
        this.#defs.set(sql, id);
        w.u8(E_DEF);
        w.u32(id);
        w.str(sql);
      }
      w.u8(E_STMT);
      w.u32(id);
      w.u16(args.length);
      for (const a of args) w.value(a);
    }
    this.#entries++;
  }

  /**
   * A group-commit batch of `ops` operations starts: its statements make
   * one record ({@link seal}); from {@link DIRECT_COMMIT_OPS} operations
   * on, the batch is committed to the database instead ({@link settle}).
   */
  begin(ops = 0): void {
    this.#ensureOpen();
    this.#inBatch = true;
    this.#batchWrote = false;
    this.#direct = ops >= DIRECT_COMMIT_OPS;
    this.#w.len = 0;
    this.#w.reserve(16);
    this.#w.len = 16; // the length, the CRC and the LSN
    this.#entries = 0;
  }

  /**
   * After a batch's savepoint is released: a batch of many operations
   * ({@link begin}) is committed to the database now, durable when this
   * returns; if the commit fails, the database is brought back to the log's
   * last record and this throws (the batch is rolled back).
   */
  settle(): void {
    if (!this.#direct) return;
    this.#direct = false;
    this.#commitDatabase(true);
  }

  /**
   * A batch ended (sealed, or failed and rolled back): if SQLite rolled the
   * whole open transaction back meanwhile (it may on a full disk or an I/O
   * error), the state is rebuilt from the log at once.
   */
  end(): void {
    this.#inBatch = false;
    this.#direct = false;
    this.#w.len = 0;
    this.#entries = 0;
    this.#ensureOpen();
  }

  /**
   * The batch being run failed: one of its operations threw outside a
   * savepoint (group-commit.ts runs a journaled batch in none), or its
   * record could not be written. The record is dropped; if the batch wrote
   * anything, the open transaction is rolled back and run again from the
   * log, which holds every batch acknowledged since the last commit: the
   * database is as the batch found it. A savepoint per batch would do the
   * same for two statements on every batch; this costs a replay of the log
   * (at most {@link COMMIT_INTERVAL_MS} of records) on a path taken only on
   * a storage error or a bug. When the replay fails, every write fails from
   * then on, saying to restart (which recovers).
   * @example
   * log.begin(1);
   * try { op(); log.seal(); } catch (err) { log.undo(); throw err; }
   */
  undo(): void {
    const wrote = this.#batchWrote || this.#direct;
    this.#forgetDefsFrom(this.#writtenDefs);
    this.#w.len = 0;
    this.#entries = 0;
    this.#inBatch = false;
    this.#direct = false;
    this.#batchWrote = false;
    if (this.#broken || (!wrote && this.#db.inTransaction)) return;
    this.#rebuild(
      (err) =>
        `the scheduler's database could not be brought back to its redo log ${this.#path} after a failed write (${err.message}): restart the scheduler, which runs the log again`,
    );
  }

  /**
   * Rolls the open transaction back (if SQLite has not) and runs the log
   * again in a new one: the database as the log acknowledged it. When that
   * fails, the log is broken (`why` says so): every write fails from then
   * on, saying to restart, and the half-rebuilt transaction is rolled back.
   */
  #rebuild(why: (err: Error) => string): void {
    const db = this.#db;
    this.#active = false;
    try {
      if (db.inTransaction) db.exec('ROLLBACK');
      db.exec('BEGIN IMMEDIATE');
      this.#replay();
    } catch (err) {
      this.#broken = new Error(why(err as Error), { cause: err });
      this.#abandon();
    } finally {
      this.#active = !this.#broken;
    }
  }

  /** Whether the database is in the transaction the log keeps open (SQLite may roll it back by itself). */
  get intact(): boolean {
    return this.#db.inTransaction;
  }

  /**
   * While active, the database must be in the open transaction. SQLite may
   * roll a whole transaction back after a full disk, an I/O error or a lack
   * of memory: everything since the last commit is then run again from the
   * log (which holds all of it), in a new transaction. When that fails too,
   * every write fails from then on, saying to restart (which recovers).
   */
  #ensureOpen(): void {
    if (this.#broken) throw this.#broken;
    if (!this.#active || this.#db.inTransaction) return;
    this.#rebuild(
      (err) =>
        `the scheduler's database lost its open transaction and could not rebuild it from the redo log ${this.#path} (${err.message}): restart the scheduler, which writes the log into the database`,
    );
    if (this.#broken) throw this.#broken;
  }

  /** Broken: a half-rebuilt transaction is rolled back (the log keeps everything for the next start). */
  #abandon(): void {
    try {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
    } catch {
      // Closing the connection rolls it back as well.
    }
  }

  /** Where the record stands now. @example const m = log.mark(); try { op() } catch { log.rewind(m) } */
  mark(): RedoMark {
    return { len: this.#w.len, entries: this.#entries, defs: this.#defs.size };
  }

  /** An operation was rolled back (its savepoint): what it added to the record goes. */
  rewind(m: RedoMark): void {
    this.#w.len = m.len;
    this.#entries = m.entries;
    this.#forgetDefsFrom(m.defs);
  }

  /** Forgets the statement definitions numbered `from` and up (not in the file). */
  #forgetDefsFrom(from: number): void {
    if (this.#defs.size <= from) return;
    for (const [sql, id] of this.#defs) if (id >= from) this.#defs.delete(sql);
  }

  /**
   * Ends the record: writes it to the log, durable against a crash of the
   * process when this returns (and against a power loss with `fsync`). No
   * statement: nothing is written. Throws when the write fails; the record
   * is dropped (the caller rolls its statements back).
   */
  seal(): void {
    const w = this.#w;
    this.#inBatch = false;
    if (this.#direct) return;
    if (this.#entries === 0) {
      w.len = 0;
      return;
    }
    const lsn = this.#lsn + 1;
    const len = w.len;
    w.len = 0;
    this.#entries = 0;
    w.buf.writeUInt32LE(len - 8, 0);
    w.buf.writeDoubleLE(lsn, 8);
    w.buf.writeUInt32LE(crc32(w.buf, 8, len), 4);
    try {
      let off = 0;
      while (off < len) off += writeSync(this.#fd, w.buf, off, len - off);
      if (this.#fsync) fdatasyncSync(this.#fd);
    } catch (err) {
      this.#forgetDefsFrom(this.#writtenDefs);
      // What was written of the record goes (a write cut short on a full disk, or a whole record whose sync
      // failed): a torn record would end the log at recovery, and the records written after it with it; a whole
      // one would bring back the batch that is now undone. The log holds only sealed records (#bytesSinceCommit).
      try {
        ftruncateSync(this.#fd, this.#bytesSinceCommit);
      } catch (again) {
        this.#broken = new Error(
          `the redo log ${this.#path} could not be cut back after a failed write (${(again as Error).message}): restart the scheduler, which runs the log again`,
          { cause: again },
        );
      }
      throw asSqliteError(err, this.#path);
    }
    this.#lsn = lsn;
    this.#writtenDefs = this.#defs.size;
    this.#bytesSinceCommit += len;
    if (this.#bytesSinceCommit >= COMMIT_BYTES && !this.#commitSoon) {
      this.#commitSoon = true;
      setImmediate(() => {
        this.#commitSoon = false;
        this.#commitInBackground();
      });
    }
  }

  /**
   * Runs again the records after the committed LSN (`meta.redo_lsn`), in
   * one transaction committed with the last one's number, then empties the
   * log. Call after the schema is migrated, before {@link start}.
   */
  recover(): RecoveryReport {
    const row = this.#db.prepare('SELECT value FROM meta WHERE key = ?').get(META_KEY) as { value: string } | undefined;
    this.#committedLsn = row ? Number(row.value) : 0;
    this.#lsn = this.#committedLsn;
    const report = this.#db.transaction(() => this.#replay())();
    this.#truncate(true);
    return report;
  }

  /** Runs the records after the committed LSN (in the caller's transaction); the LSN follows the last one. */
  #replay(): RecoveryReport {
    const db = this.#db;
    const buf = readFileSync(this.#path);
    const defs = new Map<number, string>();
    const statements = new Map<number, Database.Statement>();
    let pos = 0;
    let replayed = 0;
    let count = 0;
    let last = this.#committedLsn;
    const wasActive = this.#active;
    this.#active = false;
    try {
      while (pos + 8 <= buf.length) {
        const len = buf.readUInt32LE(pos);
        const end = pos + 8 + len;
        if (len < 8 || end > buf.length || crc32(buf, pos + 8, end) !== buf.readUInt32LE(pos + 4)) break;
        const r = new Reader(buf, pos + 8);
        const lsn = r.f64();
        // Only the record right after the last one applied (or committed) may run: not after a gap.
        if (lsn > last + 1) break;
        const apply = lsn > last;
        while (r.pos < end) {
          const kind = r.u8();
          if (kind === E_DEF) {
            const id = r.u32();
            defs.set(id, r.str());
            statements.delete(id);
          } else if (kind === E_STMT) {
            const id = r.u32();
            const n = r.u16();
            const args: unknown[] = [];
            for (let i = 0; i < n; i++) args.push(r.value());
            if (!apply) continue;
            let s = statements.get(id);
            if (!s) {
              const sql = defs.get(id);
              if (sql === undefined) throw new Error(`the redo log ${this.#path} runs statement ${id} before defining it (record ${lsn})`);
              s = db.prepare(sql);
              statements.set(id, s);
            }
            s.run(...(args as never[]));
            count++;
          } else if (kind === E_EXEC) {
            const sql = r.str();
            if (apply) {
              db.exec(sql);
              count++;
            }
          } else {
            throw new Error(`the redo log ${this.#path} has an entry of unknown kind ${kind} in record ${lsn}`);
          }
        }
        if (apply) {
          last = lsn;
          replayed++;
        }
        pos = end;
      }
      if (replayed > 0) db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(META_KEY, String(last));
    } finally {
      this.#active = wasActive;
    }
    this.#lsn = Math.max(this.#lsn, last);
    return { replayed, statements: count, tornBytes: buf.length - pos };
  }

  /** Empties the log (`force`: whatever it holds; otherwise only if this process wrote to it since it was emptied). */
  #truncate(force = false): void {
    // Nothing written since the last commit (batches committed directly): the file is empty already.
    if (force || this.#bytesSinceCommit > 0) ftruncateSync(this.#fd, 0);
    this.#defs.clear();
    this.#writtenDefs = 0;
    this.#bytesSinceCommit = 0;
  }

  /** Opens the long transaction: from now on writes are logged, and committed in the background. */
  start(): void {
    if (this.#active) return;
    this.#db.exec('BEGIN IMMEDIATE');
    this.#active = true;
    this.#lastCommitAt = Date.now();
    this.#timer = setInterval(() => {
      if (this.#lsn > this.#committedLsn && Date.now() - this.#lastCommitAt >= COMMIT_INTERVAL_MS) this.#commitInBackground();
    }, COMMIT_INTERVAL_MS);
    this.#timer.unref();
  }

  #commitInBackground(): void {
    try {
      this.commit();
    } catch (err) {
      this.onCommitError?.(err);
    }
  }

  /**
   * Commits the open transaction (with the last record's number) and opens
   * another; the log starts over. Throws what SQLite throws; if SQLite
   * rolled the transaction back, the log's records are run again at once,
   * so nothing acknowledged is lost (the commit is tried again later).
   */
  commit(): void {
    if (!this.#active || this.#inBatch || this.#lsn === this.#committedLsn) return;
    this.#commitDatabase(false);
  }

  /**
   * Commits the open transaction with the last record's number and opens
   * another; the log starts over. On failure, with `discard` (the
   * transaction holds writes that are not in the log: a batch committed
   * directly) or when SQLite rolled it back, the database is brought back
   * to the log's last record (rolled back, then the log run again).
   */
  #commitDatabase(discard: boolean): void {
    const db = this.#db;
    this.#active = false;
    try {
      db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(META_KEY, String(this.#lsn));
      db.exec('COMMIT');
      this.#committedLsn = this.#lsn;
      this.#lastCommitAt = Date.now();
      this.#truncate();
    } catch (err) {
      if (discard || !db.inTransaction) {
        this.#rebuild(
          (again) =>
            `the scheduler's database could not be brought back after a failed commit (${(err as Error).message}; then ${again.message}): restart the scheduler, which runs the redo log ${this.#path} again`,
        );
      }
      throw err;
    } finally {
      if (!db.inTransaction && !this.#broken) db.exec('BEGIN IMMEDIATE');
      this.#active = !this.#broken;
    }
  }


  /** Commits what is open and stops logging (the store closes). */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    try {
      if (this.#active) {
        this.commit();
        this.#active = false;
        if (this.#db.inTransaction) this.#db.exec('COMMIT');
      }
    } finally {
      this.#active = false;
      closeSync(this.#fd);
    }
  }
}
