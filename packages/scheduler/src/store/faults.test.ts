import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { HealthTracker, isPgConnectionError, pgFailure, sqliteFailure, StoreUnavailableError } from './faults.js';

const err = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('storage faults', () => {
  it('turns SQLite full, read-only, I/O and busy errors into messages that say what to do; others pass', () => {
    expect(sqliteFailure(err('database or disk is full', 'SQLITE_FULL'), '/data/d.db')?.message).toBe(
      "the scheduler's database is full (SQLITE_FULL at /data/d.db): free disk space; calls already accepted are kept",
    );
    expect(sqliteFailure(err('attempt to write a readonly database', 'SQLITE_READONLY'), '/data/d.db')?.message).toMatch(
      /^the scheduler's database is read-only \(SQLITE_READONLY at \/data\/d\.db: attempt to write a readonly database\): make the file/,
    );
    expect(sqliteFailure(err('disk I/O error', 'SQLITE_IOERR_WRITE'), '/d.db')?.code).toBe('SQLITE_IOERR_WRITE');
    expect(sqliteFailure(err('database is locked', 'SQLITE_BUSY'), '/d.db')?.message).toMatch(/stayed locked beyond the busy timeout/);
    expect(sqliteFailure(err('UNIQUE constraint failed', 'SQLITE_CONSTRAINT_UNIQUE'), '/d.db')).toBeNull();
    expect(sqliteFailure(new TypeError('x'), '/d.db')).toBeNull();
  });

  it('classifies a real read-only SQLite database', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dispatch-faults-'));
    const path = join(dir, 'd.db');
    const writer = new Database(path);
    writer.exec('CREATE TABLE t (x)');
    writer.close();
    const ro = new Database(path, { readonly: true });
    try {
      const thrown = (() => {
        try {
          ro.exec('INSERT INTO t VALUES (1)');
        } catch (e) {
          return e;
        }
      })();
      const failure = sqliteFailure(thrown, path);
      expect(failure).toBeInstanceOf(StoreUnavailableError);
      expect(failure?.message).toMatch(/^the scheduler's database is read-only \(SQLITE_READONLY at /);
    } finally {
      ro.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('turns lost PostgreSQL connections, shutdowns and full disks into unavailable; a syntax error passes', () => {
    expect(isPgConnectionError(err('terminating connection due to administrator command', '57P01'))).toBe(true);
    expect(isPgConnectionError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isPgConnectionError(err('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'))).toBe(true);
    expect(isPgConnectionError(err('could not connect', '08006'))).toBe(true);
    expect(isPgConnectionError(err('syntax error', '42601'))).toBe(false);
    expect(pgFailure(err('terminating connection due to administrator command', '57P01'), 'postgres://u:***@db/app')?.message).toBe(
      "the scheduler's database is shutting down or restarting (57P01 at postgres://u:***@db/app: terminating connection due to administrator command): the scheduler reconnects by itself; calls already accepted are kept",
    );
    expect(pgFailure(err('could not extend file', '53100'), 'postgres://db/app')?.message).toMatch(/^the scheduler's database is full \(53100 at postgres:\/\/db\/app/);
    expect(pgFailure(new Error('Connection terminated unexpectedly'), 'postgres://db/app')?.message).toMatch(
      /^the scheduler's database cannot be reached \(connection lost at postgres:\/\/db\/app: Connection terminated unexpectedly\)/,
    );
    expect(pgFailure(err('syntax error', '42601'), 'postgres://db/app')).toBeNull();
  });

  it('remembers a failure until the next success', () => {
    const t = new HealthTracker();
    expect(t.report()).toEqual({ ok: true });
    const e = new StoreUnavailableError('full', 'SQLITE_FULL');
    t.failed(e);
    const since = t.report().since;
    t.failed(e);
    expect(t.report()).toEqual({ ok: false, reason: 'full', code: 'SQLITE_FULL', since });
    t.ok();
    expect(t.report()).toEqual({ ok: true });
  });
});
