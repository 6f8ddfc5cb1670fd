import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { GroupCommit } from './group-commit.js';

describe('GroupCommit', () => {
  it('runs the operations of one turn in one transaction; a failing one is rolled back alone', async () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (v INTEGER UNIQUE)');
    let outer = 0;
    // One wrapper made once, as SqliteStore does: better-sqlite3 runs it as a savepoint inside the batch's transaction.
    const inTransaction = db.transaction((fn: () => unknown) => fn());
    const tx = new GroupCommit(<T>(fn: () => T) => {
      if (!db.inTransaction) outer++;
      return inTransaction(fn) as T;
    });
    const insert = (v: number) => tx.run(() => db.prepare('INSERT INTO t (v) VALUES (?)').run(v).changes);
    // Writes, then fails: its first write is rolled back with it.
    const insertThenFail = () =>
      tx.run(() => {
        db.prepare('INSERT INTO t (v) VALUES (10)').run();
        return db.prepare('INSERT INTO t (v) VALUES (1)').run().changes;
      });
    const results = await Promise.allSettled([insert(1), insert(2), insertThenFail(), insert(3)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(outer).toBe(1);
    expect(db.prepare('SELECT v FROM t ORDER BY v').all()).toEqual([{ v: 1 }, { v: 2 }, { v: 3 }]);
    await insert(4);
    expect(outer).toBe(2);
    // Alone in its turn: the operation's transaction is the batch's (no savepoint of its own); failing, it leaves nothing.
    let calls = 0;
    const counted = new GroupCommit(<T>(fn: () => T) => {
      calls++;
      return inTransaction(fn) as T;
    });
    await expect(
      counted.run(() => {
        db.prepare('INSERT INTO t (v) VALUES (20)').run();
        return db.prepare('INSERT INTO t (v) VALUES (4)').run().changes;
      }),
    ).rejects.toThrow(/UNIQUE/);
    expect(calls).toBe(1);
    expect(await counted.run(() => db.prepare('INSERT INTO t (v) VALUES (21)').run().changes)).toBe(1);
    expect(calls).toBe(2);
    expect(db.prepare('SELECT v FROM t ORDER BY v').all()).toEqual([{ v: 1 }, { v: 2 }, { v: 3 }, { v: 4 }, { v: 21 }]);
    tx.close();
    await expect(insert(5)).rejects.toThrow(/closed/);
    db.close();
  });
});
