import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { GroupCommit } from './group-commit.js';
import { asSqliteError, crc32, DIRECT_COMMIT_OPS, RedoLog } from './redo-log.js';
import { SqliteStore } from './sqlite-store.js';
import { newCall, NOW, OK } from '../../../test/support/store-contract/fixtures.js';

/**
 * Set by a test: the log's `write(2)` fails as on a full disk (`failWrites`), or the next one writes half of what
 * it is given and the one after it fails (`shortWrites`: a write cut short when the disk fills).
 */
const fault = vi.hoisted(() => ({ failWrites: false, shortWrites: 0 }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const full = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  return {
    ...fs,
    writeSync: ((fd: number, buffer: Uint8Array, offset: number, length: number) => {
      if (fault.failWrites) throw full();
      if (fault.shortWrites === 2) {
        fault.shortWrites = 1;
        return fs.writeSync(fd, buffer, offset, Math.max(1, length >> 1));
      }
      if (fault.shortWrites === 1) {
        fault.shortWrites = 0;
        throw full();
      }
      return fs.writeSync(fd, buffer, offset, length);
    }) as typeof fs.writeSync,
  };
});

const dir = mkdtempSync(join(tmpdir(), 'dispatch-redo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmpFile = () => join(dir, `db-${n++}.db`);

/** A database with a table, its redo log attached and started, written through a group commit; `trace` gets each statement SQLite runs. */
function open(path: string, trace?: string[]) {
  const db = new Database(path, trace ? { verbose: (sql) => trace.push(String(sql)) } : {});
  const log = RedoLog.attach(db, `${path}-redo`, { fsync: false });
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT, b BLOB, n REAL)');
  const report = log.recover();
  log.start();
  const inTransaction = db.transaction((fn: () => unknown) => fn());
  const group = new GroupCommit(<T>(fn: () => T) => inTransaction(fn) as T);
  group.journal = log;
  const insert = db.prepare('INSERT INTO t (v, b, n) VALUES (?, ?, ?) RETURNING id');
  return { db, log, group, insert, report };
}

/** What a crash leaves: the connection goes without a commit (SQLite rolls the open transaction back). */
function crash(db: Database.Database): void {
  db.close();
}

const rows = (path: string) => {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT id, v, b, n FROM t ORDER BY id').all();
  } finally {
    db.close();
  }
};

/**
 * The values the open database holds, then those the file holds after one
 * more batch ('later'), a crash and a recovery.
 */
async function valuesAfterOneMoreAndACrash(path: string, a: ReturnType<typeof open>): Promise<{ before: unknown[]; after: unknown[] }> {
  const before = a.db.prepare('SELECT v FROM t ORDER BY id').pluck().all();
  await a.group.run(() => a.insert.run('later', null, 99));
  crash(a.db);
  const b = open(path);
  b.log.close();
  b.db.close();
  return { before, after: rows(path).map((r) => (r as { v: string }).v) };
}

describe('RedoLog', () => {
  it('rebuilds the open transaction from the log when SQLite rolled it back (a full disk may)', async () => {
    const path = tmpFile();
    const a = open(path);
    await a.group.run(() => a.insert.run('before', null, 1));
    // What SQLite may do by itself after a full disk or an I/O error: everything since the last commit leaves the database.
    a.db.exec('ROLLBACK');
    expect(a.db.inTransaction).toBe(false);
    await a.group.run(() => a.insert.run('after', null, 2));
    expect(a.db.inTransaction).toBe(true);
    expect(a.db.prepare('SELECT v FROM t ORDER BY id').pluck().all()).toEqual(['before', 'after']);
    a.log.close();
    a.db.close();
    expect(rows(path).map((r) => (r as { v: string }).v)).toEqual(['before', 'after']);
  });

  it('fails every batch, saying to restart, when the transaction SQLite rolled back cannot be rebuilt from the log', async () => {
    const path = tmpFile();
    const a = open(path);
    await a.group.run(() => a.insert.run('before', null, 1));
    a.db.exec('ROLLBACK');
    // After the first record, one the log cannot run (a statement it never defined): the rebuild fails.
    const payload = Buffer.alloc(15);
    payload.writeDoubleLE(2, 0);
    payload[8] = 0x53;
    payload.writeUInt32LE(99, 9);
    payload.writeUInt16LE(0, 13);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(payload.length, 0);
    head.writeUInt32LE(crc32(payload, 0, payload.length), 4);
    appendFileSync(`${path}-redo`, Buffer.concat([head, payload]));
    await expect(a.group.run(() => a.insert.run('after', null, 2))).rejects.toThrow(/could not rebuild it from the redo log .*: restart the scheduler/);
    // Every later batch too: nothing is committed on a state that misses acknowledged writes.
    await expect(a.group.run(() => a.insert.run('again', null, 3))).rejects.toThrow(/restart the scheduler/);
    expect(a.db.inTransaction).toBe(false);
    expect(a.db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(0);
    a.log.close();
    a.db.close();
  });

  it('says a failed write of the log as the SQLite error it amounts to', () => {
    const full = asSqliteError(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }), '/d/x.db-redo') as Error & { code: string };
    expect([full.code, full.message]).toEqual(['SQLITE_FULL', 'ENOSPC: no space left on device, write (the redo log /d/x.db-redo)']);
    expect((asSqliteError(Object.assign(new Error('EROFS'), { code: 'EROFS' }), '/r') as { code: string }).code).toBe('SQLITE_READONLY');
    expect((asSqliteError(Object.assign(new Error('EIO'), { code: 'EIO' }), '/r') as { code: string }).code).toBe('SQLITE_IOERR_WRITE');
    const other = new TypeError('x');
    expect(asSqliteError(other, '/r')).toBe(other);
  });

  it('computes the CRC-32 of IEEE 802.3', () => {
    expect(crc32(Buffer.from('123456789'), 0, 9)).toBe(0xcbf43926);
    expect(crc32(Buffer.alloc(0), 0, 0)).toBe(0);
    // Four bytes at a time, then the rest: the same as byte by byte.
    const bytes = Buffer.from(Array.from({ length: 1001 }, (_, i) => (i * 31) & 0xff));
    let c = -1;
    for (const x of bytes.subarray(3, 1000)) {
      c ^= x;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    expect(crc32(bytes, 3, 1000)).toBe((c ^ -1) >>> 0);
  });

  it('writes again after a crash what batches acknowledged, without the operations rolled back', async () => {
    const path = tmpFile();
    const a = open(path);
    const results = await Promise.allSettled([
      a.group.run(() => a.insert.get('one', Buffer.from([1, 2]), 1.5)),
      a.group.run(() => {
        a.insert.run('rolled back', null, 0);
        throw new Error('no');
      }),
      a.group.run(() => a.db.prepare('UPDATE t SET v = ? WHERE v = ?').run('ONE', 'one')),
      a.group.run(() => a.insert.get('three', null, 2 ** 40 + 0.25)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    // Named parameters, outside a batch: a record of its own.
    a.db.prepare('INSERT INTO t (v, b, n) VALUES (@v, @b, @n)').run({ v: 'named', b: Buffer.from('é'), n: -0.5 });
    crash(a.db);
    expect(statSync(`${path}-redo`).size).toBeGreaterThan(0);

    const b = open(path);
    expect(b.report).toEqual({ replayed: 2, statements: 4, tornBytes: 0 });
    b.log.close();
    b.db.close();
    expect(rows(path)).toEqual([
      { id: 1, v: 'ONE', b: Buffer.from([1, 2]), n: 1.5 },
      { id: 2, v: 'three', b: null, n: 2 ** 40 + 0.25 },
      { id: 3, v: 'named', b: Buffer.from('é'), n: -0.5 },
    ]);
    expect(statSync(`${path}-redo`).size).toBe(0);
  });

  it('keeps nothing of a batch of one operation that fails, in the database or the log (a statement it was first to use included)', async () => {
    const path = tmpFile();
    const a = open(path);
    const sql = 'INSERT INTO t (v, n) VALUES (?, ?)';
    await expect(
      a.group.run(() => {
        a.db.prepare(sql).run('rolled back', 0);
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(a.db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(0);
    // The same statement again, alone: its record must define it (the failed one's definition went with it).
    await a.group.run(() => a.db.prepare(sql).run('kept', 1));
    crash(a.db);

    const b = open(path);
    expect(b.report).toEqual({ replayed: 1, statements: 1, tornBytes: 0 });
    b.log.close();
    b.db.close();
    expect(rows(path)).toEqual([{ id: 1, v: 'kept', b: null, n: 1 }]);
  });

  it('runs a batch in no savepoint of its own (an operation of several in one each), and undoes one that fails after writing from the log', async () => {
    const path = tmpFile();
    const trace: string[] = [];
    const a = open(path, trace);
    await a.group.run(() => a.insert.run('before', null, 1));
    const savepoints = () => trace.filter((sql) => /^SAVEPOINT/i.test(sql)).length;
    trace.length = 0;
    await a.group.run(() => a.insert.run('alone', null, 2));
    expect(savepoints()).toBe(0);
    await Promise.all([a.group.run(() => a.insert.run('one of two', null, 3)), a.group.run(() => a.insert.run('two of two', null, 4))]);
    expect(savepoints()).toBe(2);
    // Alone, writes twice, then fails: both writes leave (the transaction run again from the log), nothing else does.
    await expect(
      a.group.run(() => {
        a.insert.run('undone', null, 5);
        a.db.prepare('UPDATE t SET v = ? WHERE v = ?').run('BEFORE', 'before');
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    const values = () => a.db.prepare('SELECT v FROM t ORDER BY id').pluck().all();
    expect(values()).toEqual(['before', 'alone', 'one of two', 'two of two']);
    expect(a.db.inTransaction).toBe(true);
    // A failure before any write costs no rebuild: nothing is run again.
    trace.length = 0;
    await expect(a.group.run(() => { throw new Error('before writing'); })).rejects.toThrow('before writing');
    expect(trace).toEqual([]);
    await a.group.run(() => a.insert.run('after', null, 6));
    crash(a.db);
    const b = open(path);
    expect(b.report).toEqual({ replayed: 4, statements: 5, tornBytes: 0 });
    b.log.close();
    b.db.close();
    expect(rows(path).map((r) => (r as { v: string }).v)).toEqual(['before', 'alone', 'one of two', 'two of two', 'after']);
  });

  it('undoes a batch whose record cannot be written (a full disk): the database keeps only what the log acknowledged', async () => {
    const path = tmpFile();
    const a = open(path);
    await a.group.run(() => a.insert.run('kept', null, 1));
    fault.failWrites = true;
    try {
      await expect(a.group.run(() => a.insert.run('alone', null, 2))).rejects.toMatchObject({ code: 'SQLITE_FULL' });
      const both = [a.group.run(() => a.insert.run('one', null, 3)), a.group.run(() => a.insert.run('two', null, 4))];
      for (const r of await Promise.allSettled(both)) expect(r).toMatchObject({ status: 'rejected', reason: { code: 'SQLITE_FULL' } });
    } finally {
      fault.failWrites = false;
    }
    expect(await valuesAfterOneMoreAndACrash(path, a)).toEqual({ before: ['kept'], after: ['kept', 'later'] });
  });

  it('keeps nothing of a record whose write was cut short, so that the records after it are run again after a crash', async () => {
    const path = tmpFile();
    const a = open(path);
    await a.group.run(() => a.insert.run('kept', null, 1));
    const size = statSync(`${path}-redo`).size;
    fault.shortWrites = 2;
    await expect(a.group.run(() => a.insert.run('cut short', null, 2))).rejects.toMatchObject({ code: 'SQLITE_FULL' });
    expect(fault.shortWrites).toBe(0);
    expect(statSync(`${path}-redo`).size).toBe(size);
    expect(await valuesAfterOneMoreAndACrash(path, a)).toEqual({ before: ['kept'], after: ['kept', 'later'] });
  });

  it('fails the whole batch when SQLite rolled the transaction back during one of its operations, and rebuilds it from the log', async () => {
    const path = tmpFile();
    const a = open(path);
    await a.group.run(() => a.insert.run('acknowledged', null, 1));
    const batch = [
      a.group.run(() => a.insert.run('first', null, 2)),
      a.group.run(() => {
        a.insert.run('second', null, 3);
        // What SQLite does by itself on a full disk or an I/O error: the whole transaction goes.
        a.db.exec('ROLLBACK');
        throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      }),
      a.group.run(() => a.insert.run('third', null, 4)),
    ];
    const settled = await Promise.allSettled(batch);
    // None of the batch is acknowledged (the first's write went with the transaction), and none was committed alone.
    expect(settled.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(a.db.inTransaction).toBe(true);
    expect(await valuesAfterOneMoreAndACrash(path, a)).toEqual({ before: ['acknowledged'], after: ['acknowledged', 'later'] });
  });

  it('commits a batch of many operations to the database instead of logging it', async () => {
    const path = tmpFile();
    const a = open(path);
    await a.group.run(() => a.insert.run('logged', null, 0));
    expect(statSync(`${path}-redo`).size).toBeGreaterThan(0);
    const many = Array.from({ length: DIRECT_COMMIT_OPS }, (_, i) => a.group.run(() => a.insert.run(`direct ${i}`, null, i)));
    // One of them rolled back: the others commit.
    many.push(a.group.run(() => {
      a.insert.run('rolled back', null, -1);
      throw new Error('no');
    }));
    const settled = await Promise.allSettled(many);
    expect(settled.filter((r) => r.status === 'rejected')).toHaveLength(1);
    // Committed with what the log held: the log starts over.
    expect(statSync(`${path}-redo`).size).toBe(0);
    crash(a.db);
    const b = open(path);
    expect(b.report).toEqual({ replayed: 0, statements: 0, tornBytes: 0 });
    b.log.close();
    b.db.close();
    expect(rows(path).map((r) => (r as { v: string }).v)).toEqual(['logged', ...Array.from({ length: DIRECT_COMMIT_OPS }, (_, i) => `direct ${i}`)]);
  });

  it('ignores a record cut short at the end of the log, and reports its bytes', async () => {
    const path = tmpFile();
    const a = open(path);
    await a.group.run(() => a.insert.run('kept', null, 1));
    crash(a.db);
    const whole = readFileSync(`${path}-redo`);
    // A second record whose write was cut short (a power loss), then the first one's bytes changed: it stops there.
    appendFileSync(`${path}-redo`, whole.subarray(0, whole.length - 3));
    const b = open(path);
    expect(b.report).toEqual({ replayed: 1, statements: 1, tornBytes: whole.length - 3 });
    b.log.close();
    b.db.close();
    expect(rows(path)).toEqual([{ id: 1, v: 'kept', b: null, n: 1 }]);

    const c = open(path);
    await c.group.run(() => c.insert.run('second', null, 2));
    crash(c.db);
    const bytes = readFileSync(`${path}-redo`);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    writeFileSync(`${path}-redo`, bytes);
    const d = open(path);
    expect(d.report).toEqual({ replayed: 0, statements: 0, tornBytes: bytes.length });
    d.log.close();
    d.db.close();
    expect(rows(path)).toEqual([{ id: 1, v: 'kept', b: null, n: 1 }]);
  });

  it('runs no record after a gap in the numbering (what a power loss may leave), nor any after it', async () => {
    const path = tmpFile();
    const a = open(path);
    const sizes: number[] = [];
    for (const v of ['one', 'two', 'three']) {
      await a.group.run(() => a.insert.run(v, null, 0));
      sizes.push(statSync(`${path}-redo`).size);
    }
    crash(a.db);
    // The second record lost, the third kept.
    const bytes = readFileSync(`${path}-redo`);
    writeFileSync(`${path}-redo`, Buffer.concat([bytes.subarray(0, sizes[0]), bytes.subarray(sizes[1])]));
    const b = open(path);
    expect(b.report).toEqual({ replayed: 1, statements: 1, tornBytes: sizes[2]! - sizes[1]! });
    b.log.close();
    b.db.close();
    expect(rows(path).map((r) => (r as { v: string }).v)).toEqual(['one']);
  });

  it('commits in the background and never runs a record twice (a crash between the commit and the log starting over)', async () => {
    const path = tmpFile();
    const a = open(path);
    await a.group.run(() => a.insert.run('x', null, 1));
    await a.group.run(() => a.insert.run('y', null, 2));
    copyFileSync(`${path}-redo`, `${path}-old`);
    a.log.commit();
    expect(statSync(`${path}-redo`).size).toBe(0);
    await a.group.run(() => a.insert.run('z', null, 3));
    crash(a.db);
    // As if the log had not been emptied after the commit: its records are older than the committed one.
    writeFileSync(`${path}-redo`, Buffer.concat([readFileSync(`${path}-old`), readFileSync(`${path}-redo`)]));
    const b = open(path);
    expect(b.report).toEqual({ replayed: 1, statements: 1, tornBytes: 0 });
    b.log.close();
    b.db.close();
    expect(rows(path).map((r) => (r as { v: string }).v)).toEqual(['x', 'y', 'z']);
  });

  it('keeps every acknowledged write of a store killed with SIGKILL (kill -9), and its state', async () => {
    const path = tmpFile();
    // The child runs the built package (as the CLI's tests do).
    const built = new URL('../../../dist/esm/index.js', import.meta.url).href;
    if (!existsSync(fileURLToPath(built))) throw new Error(`the scheduler is not built (${built} is missing): run \`pnpm build\` first`);
    const script = `
      import { SqliteStore } from ${JSON.stringify(built)};
      const calls = JSON.parse(process.argv[1]);
      const store = await SqliteStore.open({ path: ${JSON.stringify(path)} });
      await store.insertCalls(calls);
      const claimed = await store.claimDue({ owner: 'a', now: ${NOW}, leaseMs: 60_000, limit: 2, capacity: () => 2 });
      for (const c of claimed.calls) {
        const ok = await store.complete({ id: c.id, owner: 'a', leaseToken: c.leaseToken, now: ${NOW + 1}, attempt: null, delivered: [], outcome: { kind: 'finish', status: ${OK}, output: null, error: null } });
        if (!ok) throw new Error('not recorded');
      }
      process.stdout.write(JSON.stringify(claimed.calls.map((c) => c.id)));
      process.kill(process.pid, 'SIGKILL');
    `;
    const calls = [newCall(), newCall(), newCall()].map((c) => ({ ...c, input: null }));
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(calls)], { encoding: 'utf8' });
    expect(child.signal, child.stderr).toBe('SIGKILL');
    const finished = JSON.parse(child.stdout) as string[];
    expect(finished).toHaveLength(2);
    expect(statSync(`${path}-redo`).size).toBeGreaterThan(0);
    const reports: unknown[] = [];
    const store = await SqliteStore.open({ path, onRecovery: (r) => reports.push(r) });
    try {
      // The insert, the claim, the two completions: one batch each.
      expect(reports).toEqual([{ replayed: 4, statements: expect.any(Number), tornBytes: 0 }]);
      for (const c of calls) {
        expect((await store.getCall(c.id))?.state).toBe(finished.includes(c.id) ? 'succeeded' : 'pending');
      }
    } finally {
      await store.close();
    }
    // Written to the database: the next opening has nothing to run again.
    const again: unknown[] = [];
    await (await SqliteStore.open({ path, onRecovery: (r) => again.push(r) })).close();
    expect(again).toEqual([]);
  });
});
