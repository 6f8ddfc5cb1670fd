import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { namedStatement } from './named-params.js';

describe('namedStatement', () => {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (seq INTEGER PRIMARY KEY, a TEXT, b INTEGER, c INTEGER)');

  it('binds each @name from the object, a name used twice included, as named binding does', () => {
    const insert = namedStatement<{ seq: number; a: string; b: number }>(db, 'INSERT INTO t (seq, a, b, c) VALUES (@seq, @a, @b, @b + @seq)');
    expect(insert.statement.source).toBe('INSERT INTO t (seq, a, b, c) VALUES (?, ?, ?, ? + ?)');
    insert.run({ seq: 1, a: 'x', b: 10 });
    insert.run({ b: 20, a: 'y', seq: 2 }); // property order does not matter
    const named = db.prepare('SELECT * FROM t WHERE b >= @min ORDER BY seq');
    const mine = namedStatement<{ min: number }>(db, 'SELECT * FROM t WHERE b >= @min ORDER BY seq');
    expect(mine.all({ min: 0 })).toEqual(named.all({ min: 0 }));
    expect(mine.all({ min: 0 })).toEqual([
      { seq: 1, a: 'x', b: 10, c: 11 },
      { seq: 2, a: 'y', b: 20, c: 22 },
    ]);
    expect(mine.get({ min: 15 })).toEqual({ seq: 2, a: 'y', b: 20, c: 22 });
  });

  it('answers arrays in raw mode', () => {
    const raw = namedStatement<{ seq: number }>(db, 'SELECT seq, a FROM t WHERE seq = @seq', { raw: true });
    expect(raw.get({ seq: 1 })).toEqual([1, 'x']);
  });

  it('refuses SQL with positional parameters, and a missing parameter; binds NULL for undefined, as named binding does', () => {
    expect(() => namedStatement(db, 'SELECT * FROM t WHERE seq = ? AND b = @b')).toThrow(/@name parameters only/);
    const byB = namedStatement<{ b?: number }>(db, 'SELECT * FROM t WHERE b = @b');
    expect(() => byB.get({})).toThrow('missing the parameter @b of: SELECT * FROM t WHERE b = @b');
    expect(() => db.prepare('SELECT * FROM t WHERE b = @b').get({})).toThrow(/Missing named parameter "b"/);
    const insert = namedStatement<{ seq: number; a: string | undefined }>(db, 'INSERT INTO t (seq, a) VALUES (@seq, @a)');
    insert.run({ seq: 3, a: undefined });
    db.prepare('INSERT INTO t (seq, a) VALUES (@seq, @a)').run({ seq: 4, a: undefined });
    expect(db.prepare('SELECT seq, a FROM t WHERE seq >= 3 ORDER BY seq').all()).toEqual([
      { seq: 3, a: null },
      { seq: 4, a: null },
    ]);
  });
});
