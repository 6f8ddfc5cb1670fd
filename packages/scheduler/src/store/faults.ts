/**
 * Storage faults: which errors of SQLite and PostgreSQL mean "the store
 * cannot work right now" (a full disk, a read-only or failing file, a lost
 * connection, a server shutting down) rather than a bug, the message that
 * says what is wrong, and the store's health that `/healthz` reports.
 *
 * The API answers such an error with the Connect code `unavailable` (clients
 * retry), the run loop backs off and retries until the store recovers, and
 * calls already accepted are kept.
 * @module
 */

/**
 * The store cannot work right now (disk full, read-only, I/O error, database
 * unreachable): not a bug, and what was stored is kept. `code` is the driver's
 * (`SQLITE_FULL`, `57P01`, `ECONNREFUSED`…).
 * @example
 * try { await store.insertCalls(rows); } catch (err) { if (err instanceof StoreUnavailableError) console.log(err.code, err.message); }
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(
    message: string,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The health of a store, as `/healthz` reports it under `store`.
 * @example
 * const h: StoreHealth = { ok: false, code: 'SQLITE_FULL', reason: "the scheduler's database is full (…)", since: Date.now() };
 */
export interface StoreHealth {
  ok: boolean;
  /** What is wrong (when not ok), with what to do. */
  reason?: string;
  /** The driver's code of the failure. */
  code?: string;
  /** Since when it fails (ms since the epoch). */
  since?: number;
}

const KEPT = 'calls already accepted are kept';

/** The error's `code` (better-sqlite3, pg and Node all use one). */
function codeOf(err: unknown): string {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : '';
}

/**
 * The SQLite errors that mean the file cannot be written (or read) now, as a
 * {@link StoreUnavailableError} saying what to do; null for other errors.
 * @example
 * sqliteFailure(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }), '/var/lib/d.db')?.message;
 */
export function sqliteFailure(err: unknown, path: string): StoreUnavailableError | null {
  if (err instanceof StoreUnavailableError) return err;
  const code = codeOf(err);
  const detail = (err as Error)?.message ?? String(err);
  const at = `${code} at ${path}`;
  let message: string | null = null;
  if (code === 'SQLITE_FULL') {
    message = `the scheduler's database is full (${at}): free disk space; ${KEPT}`;
  } else if (code.startsWith('SQLITE_READONLY')) {
    message = `the scheduler's database is read-only (${at}: ${detail}): make the file, its -wal and -shm files and their directory writable by the scheduler's user; ${KEPT}`;
  } else if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CANTOPEN')) {
    message = `the scheduler's database cannot be read or written (${at}: ${detail}): check the disk and the file system (space, mount, permissions); ${KEPT}`;
  } else if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    message = `the scheduler's database stayed locked beyond the busy timeout (${at}): another process holds it; stop that process; ${KEPT}`;
  }
  return message ? new StoreUnavailableError(message, code, { cause: err }) : null;
}

/** Node's network error codes that mean the connection is gone (or never came). */
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
/** pg's messages for a connection that broke or could not be made. */
const LOST_MESSAGE = /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|Connection ended|read ECONNRESET|write EPIPE/i;

/**
 * True when a PostgreSQL error means the connection was lost or could not be
 * made (SQLSTATE class 08, 57P01–57P03, 53300, or a network error): the work
 * can be retried on a new connection.
 * @example
 * if (isPgConnectionError(err)) retry();
 */
export function isPgConnectionError(err: unknown): boolean {
  const code = codeOf(err);
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true;
  if (NET_CODES.has(code)) return true;
  return LOST_MESSAGE.test((err as Error)?.message ?? '');
}

/**
 * The PostgreSQL errors that mean the database cannot work now (connection
 * lost or refused, server shutting down, disk full, out of resources), as a
 * {@link StoreUnavailableError}; null for other errors. `where` is the
 * database's URL, its password already redacted.
 * @example
 * pgFailure(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), 'postgres://db/app');
 */
export function pgFailure(err: unknown, where: string): StoreUnavailableError | null {
  if (err instanceof StoreUnavailableError) return err;
  const code = codeOf(err) || 'connection lost';
  const detail = (err as Error)?.message ?? String(err);
  let message: string | null = null;
  if (code === '53100') {
    message = `the scheduler's database is full (${code} at ${where}: ${detail}): free disk space on the PostgreSQL server; ${KEPT}`;
  } else if (code.startsWith('53')) {
    message = `the scheduler's database is out of resources (${code} at ${where}: ${detail}): check the PostgreSQL server (max_connections, memory); ${KEPT}`;
  } else if (code === '57P01' || code === '57P02' || code === '57P03') {
    message = `the scheduler's database is shutting down or restarting (${code} at ${where}: ${detail}): the scheduler reconnects by itself; ${KEPT}`;
  } else if (isPgConnectionError(err)) {
    message = `the scheduler's database cannot be reached (${code} at ${where}: ${detail}): check that PostgreSQL runs and is reachable; the scheduler reconnects by itself; ${KEPT}`;
  } else if (code === '25006') {
    message = `the scheduler's database is read-only (${code} at ${where}: ${detail}): point the scheduler at the primary; ${KEPT}`;
  }
  return message ? new StoreUnavailableError(message, code, { cause: err }) : null;
}

/**
 * Remembers whether a store fails, since when and why (for `/healthz` and the
 * run loop's log): `failed` on a storage error, `ok` on the next success.
 * @example
 * const t = new HealthTracker(); t.failed(err); t.ok(); t.report(); // { ok: true }
 */
export class HealthTracker {
  #failure: { error: StoreUnavailableError; since: number } | null = null;

  /** A storage error happened (the first one of an episode sets `since`). */
  failed(error: StoreUnavailableError): void {
    this.#failure = { error, since: this.#failure?.since ?? Date.now() };
  }

  /** An operation of the kind that failed succeeded: the store works again. */
  ok(): void {
    this.#failure = null;
  }

  /** True while the last outcome was a storage error. */
  get failing(): boolean {
    return this.#failure !== null;
  }

  report(): StoreHealth {
    const f = this.#failure;
    return f ? { ok: false, reason: f.error.message, code: f.error.code, since: f.since } : { ok: true };
  }
}
