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

  it('runs an atomic operation (one write statement) without a savepoint; failing, SQLite undoes its statement alone', async () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (v INTEGER UNIQUE)');
    const inTransaction = db.transaction((fn: () => unknown) => fn());
    let savepoints = 0;
    const tx = new GroupCommit(<T>(fn: () => T) => {
      if (db.inTransaction) savepoints++;
      return inTransaction(fn) as T;
    });
    const insert = (values: string, atomic: boolean) => tx.run(() => db.prepare(`INSERT INTO t (v) VALUES ${values}`).run().changes, atomic);
    // The third is one statement of two rows, the second of which conflicts: neither row stays.
    const results = await Promise.allSettled([insert('(1)', true), insert('(2)', false), insert('(30), (1)', true), insert('(3)', true)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(savepoints).toBe(1);
    expect(db.prepare('SELECT v FROM t ORDER BY v').all()).toEqual([{ v: 1 }, { v: 2 }, { v: 3 }]);
    db.close();
  });

  it('says whether an operation is alone in its batch, so that one of several writes can skip its savepoint then', async () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (v INTEGER UNIQUE)');
    const inTransaction = db.transaction((fn: () => unknown) => fn());
    let savepoints = 0;
    const tx = new GroupCommit(<T>(fn: () => T) => inTransaction(fn) as T);
    // As SqliteStore.complete does: an atomic operation that opens a savepoint only when it shares its batch.
    const writeTwo = (a: number, b: number) =>
      tx.run(() => {
        const both = () => db.prepare('INSERT INTO t (v) VALUES (?)').run(a).changes + db.prepare('INSERT INTO t (v) VALUES (?)').run(b).changes;
        if (tx.alone) return both();
        savepoints++;
        return inTransaction(both) as number;
      }, true);
    expect(tx.alone).toBe(false);
    // Alone, and failing on its second write: the batch's transaction takes the first write back with it.
    await expect(writeTwo(1, 1)).rejects.toThrow(/UNIQUE/);
    expect(savepoints).toBe(0);
    expect(db.prepare('SELECT v FROM t').all()).toEqual([]);
    expect(await writeTwo(1, 2)).toBe(2);
    expect(savepoints).toBe(0);
    // Sharing a batch: each in a savepoint, so the one that fails is rolled back alone.
    const settled = await Promise.allSettled([writeTwo(3, 4), writeTwo(5, 3), writeTwo(6, 7)]);
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(savepoints).toBe(3);
    expect(tx.alone).toBe(false);
    expect(db.prepare('SELECT v FROM t ORDER BY v').all()).toEqual([1, 2, 3, 4, 6, 7].map((v) => ({ v })));
    db.close();
  });

  it('tells its owner once per batch that commits, and answers each failed operation with the error the owner makes of it', async () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (v INTEGER UNIQUE)');
    const inTransaction = db.transaction((fn: () => unknown) => fn());
    let committed = 0;
    const failures: string[] = [];
    const tx = new GroupCommit(<T>(fn: () => T) => inTransaction(fn) as T, undefined, {
      committed: () => committed++,
      failed: (err) => {
        failures.push((err as Error).message);
        return new Error(`wrapped: ${(err as Error).message}`);
      },
    });
    const insert = (v: number) => tx.run(() => db.prepare('INSERT INTO t (v) VALUES (?)').run(v).changes);
    const settled = await Promise.allSettled([insert(1), insert(1), insert(2)]);
    expect(settled.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : r.value))).toEqual([1, 'wrapped: UNIQUE constraint failed: t.v', 1]);
    expect([committed, failures.length]).toEqual([1, 1]);
    await expect(insert(2)).rejects.toThrow('wrapped: UNIQUE constraint failed: t.v');
    expect(committed).toBe(1);
    expect(await insert(3)).toBe(1);
    expect(committed).toBe(2);
    db.close();
  });
});
