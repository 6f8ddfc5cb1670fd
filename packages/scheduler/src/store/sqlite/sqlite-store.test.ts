import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Status } from '@dispatch/core/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { SQLITE_MIGRATIONS } from './schema.js';
import { SqliteStore } from './sqlite-store.js';
import type { AttemptRecord, CallState, ClaimedCall, FollowOnClaim, InsertClaim, NewCall, Outcome, Store } from '../store.js';
import { claimHot, expectJournalServed, hotAndCold, newCall, NOW, storeContract, suspendWithJournal } from '../../../test/support/store-contract/index.js';
import { anyOf, childOf, OK, suspendOutcome, textOf } from '../../../test/support/store-contract/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'dispatch-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmpFile = () => join(dir, `db-${n++}`, 'scheduler.db');

/** A value with its byte arrays as plain arrays (a file read gives Buffers, a completion the arrays it was given). */
const plain = (v: unknown): unknown =>
  v instanceof Uint8Array || Array.isArray(v) ? [...v].map(plain) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) : v;

/** Claims `parent` (just inserted), then suspends it with one child through `completeAndClaim`: the two leases. */
async function parentWaitingForOneChild(store: SqliteStore, parent: NewCall, correlationId: bigint) {
  await store.insertCalls([parent]);
  const [p] = (await store.claimDue({ owner: 'a', now: NOW, leaseMs: 60_000, limit: 10, capacity: () => 10 })).calls;
  const kid = childOf(parent, correlationId);
  const claim: FollowOnClaim = { leaseMs: 60_000, capacity: () => 10, claimed: () => {} };
  const outcome = suspendOutcome(NOW + 60_000, { calls: [kid] });
  const [c] = (await store.completeAndClaim({ id: p!.id, owner: 'a', leaseToken: p!.leaseToken, now: NOW + 1, attempt: null, delivered: [], outcome }, claim)).calls;
  expect(c?.id).toBe(kid.id);
  return { p: p!, c: c! };
}

const hooks = {
  stateChunks: async (store: Store) =>
    ((store as SqliteStore).db.prepare('SELECT count(*) AS n FROM call_state_chunks').get() as { n: number }).n,
  inputCopies: async (store: Store) =>
    ((store as SqliteStore).db.prepare('SELECT count(*) AS n FROM calls WHERE original_input IS NOT NULL').get() as { n: number }).n,
};
storeContract('SqliteStore (memory)', () => SqliteStore.open({ path: ':memory:' }), hooks);
storeContract('SqliteStore (file, synchronous=FULL)', () => SqliteStore.open({ path: tmpFile(), synchronous: 'FULL' }), hooks);


/** SQL that takes a database back to version 5: drops what migrations 6 and later added (signals, schedules, limits, trace context, input stored once). */
const DROP_AFTER_V5 =
  'ALTER TABLE calls DROP COLUMN input_replaced; ALTER TABLE calls DROP COLUMN trace_context; DROP INDEX IF EXISTS calls_limit_running; DROP INDEX calls_limit_due; ' +
  'ALTER TABLE calls DROP COLUMN limit_key; DROP TABLE function_limits; DROP TABLE limit_windows; DROP TABLE schedules; DROP TABLE signals; ' +
  'ALTER TABLE calls DROP COLUMN poll_signals; ';

describe('SqliteStore', () => {
  it('creates the file in WAL mode with a versioned schema, and reopens it', async () => {
    const path = tmpFile();
    const store = await SqliteStore.open({ path });
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    // Checkpoints (two fsyncs each) every 10,000 WAL pages, not SQLite's 1,000; a WAL grown past 64 MiB is cut back.
    expect(store.db.pragma('wal_autocheckpoint', { simple: true })).toBe(10_000);
    expect(store.db.pragma('journal_size_limit', { simple: true })).toBe(64 * 1024 * 1024);
    expect(store.db.prepare('SELECT version FROM schema_version').get()).toEqual({ version: SQLITE_MIGRATIONS.length });
    const call = newCall();
    await store.insertCalls([call]);
    await store.close();
    const again = await SqliteStore.open({ path });
    expect((await again.getCall(call.id))?.id).toBe(call.id);
    expect(again.db.prepare('SELECT count(*) AS n FROM schema_version').get()).toEqual({ n: 1 });
    await again.close();
  });

  it('moves the coroutine states of a version-2 database into state chunks (migration 3)', async () => {
    const path = tmpFile();
    const store = await SqliteStore.open({ path });
    const call = newCall();
    await suspendWithJournal(store, call);
    // Back to version 2, the state in the row, as an older scheduler left it.
    store.db.exec(
      DROP_AFTER_V5 + 'DROP TABLE revoked_sessions; DROP TABLE call_state_chunks; ALTER TABLE calls DROP COLUMN state_length; ALTER TABLE calls DROP COLUMN resumes; UPDATE schema_version SET version = 2',
    );
    store.db.prepare('UPDATE calls SET state_value = ? WHERE id = ?').run(Buffer.from([1, 2, 3]), call.id);
    await store.close();

    const again = await SqliteStore.open({ path });
    expect(again.db.prepare('SELECT version FROM schema_version').get()).toEqual({ version: SQLITE_MIGRATIONS.length });
    expect(again.db.prepare('SELECT state_value, state_length FROM calls WHERE id = ?').get(call.id)).toEqual({ state_value: null, state_length: 3 });
    await expectJournalServed(again, call);
    await again.close();
  });

  it('drops the second copy of every input of a version-5 database, keeping the first input of tail-called calls (migration 10)', async () => {
    const path = tmpFile();
    const store = await SqliteStore.open({ path });
    const plain = newCall();
    const tailed = newCall();
    await store.insertCalls([plain, tailed]);
    // As an older scheduler left them: original_input a copy of input, or the first input of a call that tail-called.
    store.db.exec(`${DROP_AFTER_V5}UPDATE calls SET original_input = input; UPDATE schema_version SET version = 5`);
    store.db.prepare(`UPDATE calls SET input = ?, function = 'next', state = 'failed', due_at = NULL WHERE id = ?`).run(Buffer.from(store.db.prepare('SELECT input FROM calls WHERE id = ?').pluck().get(plain.id) as Buffer), tailed.id);
    await store.close();

    const again = await SqliteStore.open({ path });
    const rows = again.db.prepare('SELECT id, original_input IS NOT NULL AS copy, input_replaced FROM calls ORDER BY seq').all();
    expect(rows).toEqual([
      { id: plain.id, copy: 0, input_replaced: 0 },
      { id: tailed.id, copy: 1, input_replaced: 1 },
    ]);
    expect(await again.restart(tailed.id, Date.now())).toBe(true);
    expect(Buffer.from((await again.getCall(tailed.id))?.input?.value ?? []).toString()).toBe(`input of ${tailed.id}`);
    await again.close();
  });

  it('rewrites attempts without a rowid and drops calls_parent, keeping every attempt (migration 11)', async () => {
    const path = tmpFile();
    const store = await SqliteStore.open({ path });
    const call = newCall();
    await store.insertCalls([call]);
    // As a version-10 scheduler left it: attempts with a rowid, and the calls_parent index.
    store.db.exec(`DROP TABLE attempts; CREATE TABLE attempts (call_id TEXT NOT NULL, number INTEGER NOT NULL, started_at INTEGER NOT NULL,
      duration_ms REAL NOT NULL, status INTEGER NOT NULL, outcome TEXT NOT NULL, resume INTEGER NOT NULL, error BLOB, PRIMARY KEY (call_id, number));
      CREATE INDEX calls_parent ON calls (parent_id) WHERE parent_id IS NOT NULL; UPDATE schema_version SET version = 10`);
    const insert = store.db.prepare('INSERT INTO attempts (call_id, number, started_at, duration_ms, status, outcome, resume, error) VALUES (?, ?, ?, 1.5, ?, ?, ?, ?)');
    insert.run(call.id, 1, NOW, 4, 'retry', 0, null);
    insert.run(call.id, 2, NOW + 1, OK, 'suspend', 0, null);
    const before = store.db.prepare('SELECT * FROM attempts ORDER BY number').all();
    await store.close();

    const again = await SqliteStore.open({ path });
    expect(again.db.prepare('SELECT version FROM schema_version').get()).toEqual({ version: SQLITE_MIGRATIONS.length });
    expect(again.db.prepare('SELECT * FROM attempts ORDER BY number').all()).toEqual(before);
    expect(again.db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'attempts'`).pluck().get()).toMatch(/WITHOUT ROWID\s*$/);
    expect(again.db.prepare(`SELECT count(*) FROM sqlite_master WHERE name = 'calls_parent'`).pluck().get()).toBe(0);
    // Recording still works on the rewritten table.
    const { calls } = await again.claimDue({ owner: 'a', now: NOW, leaseMs: 1000, limit: 10, capacity: () => 10 });
    expect(calls.map((c) => c.id)).toEqual([call.id]);
    const attempt = { number: 3, startedAt: NOW, durationMs: 1, status: OK, outcome: 'exit' as const, error: null, resume: false };
    const done = { kind: 'finish' as const, status: OK, output: null, error: null };
    expect(await again.complete({ id: call.id, owner: 'a', leaseToken: calls[0]!.leaseToken, now: NOW, attempt, delivered: [], outcome: done })).toBe(true);
    expect((await again.getAttempts(call.id)).map((a) => a.number)).toEqual([1, 2, 3]);
    await again.close();
  });

  it('indexes unfinished calls and calls finished otherwise than succeeded apart, keeping every count and filter (migration 12)', async () => {
    const path = tmpFile();
    const store = await SqliteStore.open({ path });
    const calls = Array.from({ length: 6 }, () => newCall());
    const [won, lost, cancelled, waiting, retried, running] = calls.map((c) => c.id) as [string, string, string, string, string, string];
    const later = newCall({ dueAt: NOW + 60_000 });
    await store.insertCalls([...calls, later]);
    const { calls: leased } = await store.claimDue({ owner: 'a', now: NOW, leaseMs: 60_000, limit: 10, capacity: () => 10 });
    const token = (id: string) => leased.find((c) => c.id === id)!.leaseToken;
    const attempt = { number: 1, startedAt: NOW, durationMs: 1, status: OK, outcome: 'exit' as const, error: null, resume: false };
    const record = (id: string, outcome: Outcome) => store.complete({ id, owner: 'a', leaseToken: token(id), now: NOW, attempt, delivered: [], outcome });
    expect(await record(won, { kind: 'finish', status: OK, output: null, error: null })).toBe(true);
    expect(await record(lost, { kind: 'finish', status: Status.PERMANENT_ERROR, output: null, error: { type: 'E', message: 'no' } })).toBe(true);
    expect(await store.cancel(cancelled, NOW, { type: 'Cancelled', message: 'by hand' })).toBe(1);
    expect(await record(waiting, suspendOutcome(NOW + 60_000))).toBe(true);
    expect(await record(retried, { kind: 'retry', status: Status.TEMPORARY_ERROR, error: { type: 'E', message: 'again' }, dueAt: NOW + 10 })).toBe(true);
    // As a version-11 scheduler left it: calls_state and calls_limit_running; and one finished row without its finishing time.
    store.db.exec(`DROP INDEX calls_live; DROP INDEX calls_unsucceeded; CREATE INDEX calls_state ON calls (state, seq);
      CREATE INDEX calls_limit_running ON calls (endpoint, function, limit_key) WHERE state = 'running';
      UPDATE calls SET finished_at = NULL WHERE id = '${lost}'; UPDATE schema_version SET version = 11`);
    await store.close();

    const again = await SqliteStore.open({ path, releaseLeases: false });
    const index = (name: string) => again.db.prepare(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?`).pluck().get(name);
    expect([index('calls_state'), index('calls_limit_running'), index('calls_live'), index('calls_unsucceeded')]).toEqual([0, 0, 1, 1]);
    expect(again.db.prepare(`SELECT id FROM calls WHERE finished_at IS NULL ORDER BY seq`).pluck().all()).toEqual([waiting, retried, running, later.id]);
    const page = await again.listCalls({ limit: 50 });
    expect(page.counts).toEqual({ pending: 2, running: 1, suspended: 1, succeeded: 1, failed: 1, cancelled: 1 });
    const ids = async (...states: CallState[]) => (await again.listCalls({ limit: 50, states })).calls.map((c) => c.id).sort();
    expect(await ids('failed')).toEqual([lost]);
    expect(await ids('failed', 'cancelled')).toEqual([lost, cancelled].sort());
    expect(await ids('succeeded')).toEqual([won]);
    expect(await ids('running', 'suspended')).toEqual([running, waiting].sort());
    expect(await ids('pending', 'succeeded')).toHaveLength(3);
    expect((await again.countLive(NOW + 20)).map((l) => [l.state, l.count, l.due]).sort()).toEqual([['pending', 2, 1], ['running', 1, 0], ['suspended', 1, 0]]);
    // The lease taken before the upgrade is still counted and recorded under (releaseLeases: false keeps it).
    expect(await again.complete({ id: running, owner: 'a', leaseToken: token(running), now: NOW, attempt, delivered: [], outcome: { kind: 'finish', status: OK, output: null, error: null } })).toBe(true);
    expect((await again.listCalls({ limit: 50 })).counts).toMatchObject({ running: 0, succeeded: 2 });
    await again.close();
  });

  it('counts calls and lists them by state through indexes, never reading every row', async () => {
    const store = await SqliteStore.open({ path: ':memory:' });
    const texts: string[] = [];
    const prepare = store.db.prepare.bind(store.db);
    store.db.prepare = ((sql: string) => {
      texts.push(sql);
      return prepare(sql);
    }) as typeof store.db.prepare;
    try {
      await store.listCalls({ limit: 10 });
      for (const states of [['failed'], ['failed', 'cancelled'], ['pending'], ['running', 'suspended']] as CallState[][]) await store.listCalls({ limit: 10, states });
      await store.countLive(NOW);
      // The unfiltered page reads the newest rows up to its limit: every other statement counts or filters.
      const filtering = texts.filter((sql) => /WHERE|count\(/.test(sql));
      expect(filtering.length).toBeGreaterThanOrEqual(7);
      for (const sql of filtering) {
        const plan = (prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...(sql.match(/\?/g) ?? []).map(() => null)) as Array<{ detail: string }>).map((r) => r.detail);
        expect(plan.filter((d) => /^SCAN calls$/.test(d)), `${sql}\n${plan.join('\n')}`).toEqual([]);
        // Counts per state read an index alone, not a row per call (a backlog of pending calls is large).
        if (/^SELECT state, count/.test(sql.trim())) expect(plan.filter((d) => /calls/.test(d) && !/COVERING/.test(d)), sql).toEqual([]);
      }
    } finally {
      await store.close();
    }
  });

  it('rebuilds calls with idempotency keys indexed only where there is one, keeping every row (migration 13)', async () => {
    const path = tmpFile();
    const store = await SqliteStore.open({ path });
    const keyed = newCall({ idempotencyKey: 'order-1' });
    const plain = [newCall(), newCall(), newCall()];
    await store.insertCalls([keyed, ...plain]);
    const { calls: leased } = await store.claimDue({ owner: 'a', now: NOW, leaseMs: 60_000, limit: 1, capacity: () => 1 });
    const attempt = { number: 1, startedAt: NOW, durationMs: 1, status: OK, outcome: 'exit' as const, error: null, resume: false };
    expect(await store.complete({ id: leased[0]!.id, owner: 'a', leaseToken: leased[0]!.leaseToken, now: NOW, attempt, delivered: [], outcome: { kind: 'finish', status: OK, output: null, error: null } })).toBe(true);
    // As a version-12 scheduler left it: no columns of schema 14, the key UNIQUE on the column (rebuilt the way migration 13 does,
    // with the constraint back).
    store.db.exec('ALTER TABLE calls DROP COLUMN run_started_at; ALTER TABLE calls DROP COLUMN run_duration_ms');
    const v12 = (store.db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'calls'`).pluck().get() as string)
      .replace(/^CREATE TABLE "?calls"?/, 'CREATE TABLE calls_v12')
      .replace('idempotency_key TEXT,', 'idempotency_key TEXT UNIQUE,');
    const indexes = store.db.prepare(`SELECT sql FROM sqlite_master WHERE tbl_name = 'calls' AND type = 'index' AND sql IS NOT NULL AND name <> 'calls_idempotency_key'`).pluck().all() as string[];
    store.db.exec(`${v12}; INSERT INTO calls_v12 SELECT * FROM calls; DROP TABLE calls; ALTER TABLE calls_v12 RENAME TO calls; ${indexes.join('; ')}; UPDATE schema_version SET version = 12`);
    const before = store.db.prepare('SELECT * FROM calls ORDER BY seq').all();
    expect(store.db.prepare(`SELECT count(*) FROM sqlite_master WHERE tbl_name = 'calls' AND name LIKE 'sqlite_autoindex_calls_%'`).pluck().get()).toBe(2);
    await store.close();

    const again = await SqliteStore.open({ path });
    expect(again.db.prepare('SELECT version FROM schema_version').get()).toEqual({ version: SQLITE_MIGRATIONS.length });
    const withoutSchema14 = (rows: unknown[]) => rows.map((r) => {
      const { run_started_at: _s, run_duration_ms: _d, ...rest } = r as Record<string, unknown>;
      return rest;
    });
    expect(withoutSchema14(again.db.prepare('SELECT * FROM calls ORDER BY seq').all())).toEqual(before);
    // Only the id's unique index is automatic now; the key's is partial, and the dedupe reads it.
    expect(again.db.prepare(`SELECT count(*) FROM sqlite_master WHERE tbl_name = 'calls' AND name LIKE 'sqlite_autoindex_calls_%'`).pluck().get()).toBe(1);
    const plan = again.db.prepare(`EXPLAIN QUERY PLAN SELECT id FROM calls WHERE idempotency_key = 'x'`).all() as Array<{ detail: string }>;
    expect(plan.map((r) => r.detail).join()).toMatch(/calls_idempotency_key/);
    expect(await again.insertCalls([newCall({ idempotencyKey: 'order-1' }), newCall()])).toEqual([keyed.id, expect.any(String)]);
    expect(() => again.db.prepare(`UPDATE calls SET idempotency_key = 'order-1' WHERE id = ?`).run(plain[1]!.id)).toThrow(/UNIQUE constraint failed/);
    expect((await again.listCalls({ limit: 50 })).counts).toMatchObject({ pending: 4, succeeded: 1 });
    await again.close();
  });

  it('keeps a call\'s only clean run in its row, not in attempts, and lists it as before; a restart moves it to the history (schema 14)', async () => {
    const store = await SqliteStore.open({ path: tmpFile() });
    try {
      const attemptRows = (id: string) => store.db.prepare('SELECT count(*) FROM attempts WHERE call_id = ?').pluck().get(id);
      const clean = newCall();
      const failing = newCall();
      const retried = newCall();
      await store.insertCalls([clean, failing, retried]);
      const claimed = async (now: number) => new Map((await store.claimDue({ owner: 'a', now, leaseMs: 60_000, limit: 10, capacity: () => 10 })).calls.map((c) => [c.id, c]));
      const run = (number: number, status: number, outcome: AttemptRecord['outcome'], startedAt: number) => ({ number, startedAt, durationMs: 7, status, outcome, error: null, resume: false });
      const first = await claimed(NOW);
      const done = (id: string, run1: AttemptRecord, outcome: Outcome, now: number, leases = first) =>
        store.complete({ id, owner: 'a', leaseToken: leases.get(id)!.leaseToken, now, attempt: run1, delivered: [], outcome });
      // One run that ends the call without an error: kept in the row.
      expect(await done(clean.id, run(1, OK, 'exit', NOW + 1), { kind: 'finish', status: OK, output: null, error: null }, NOW + 8)).toBe(true);
      expect(attemptRows(clean.id)).toBe(0);
      expect(await store.getAttempts(clean.id)).toEqual([run(1, OK, 'exit', NOW + 1)]);
      // A run that fails the call, and a retried call's runs: rows, as before.
      const boom = { type: 'Boom', message: 'no' };
      expect(await done(failing.id, { ...run(1, Status.PERMANENT_ERROR, 'exit', NOW + 2), error: boom }, { kind: 'finish', status: Status.PERMANENT_ERROR, output: null, error: boom }, NOW + 9)).toBe(true);
      expect(attemptRows(failing.id)).toBe(1);
      expect(await done(retried.id, run(1, Status.TEMPORARY_ERROR, 'retry', NOW + 3), { kind: 'retry', status: Status.TEMPORARY_ERROR, error: null, dueAt: NOW + 20 }, NOW + 10)).toBe(true);
      const second = await claimed(NOW + 20);
      expect(await done(retried.id, run(2, OK, 'exit', NOW + 21), { kind: 'finish', status: OK, output: null, error: null }, NOW + 28, second)).toBe(true);
      expect((await store.getAttempts(retried.id)).map((a) => [a.number, a.outcome])).toEqual([[1, 'retry'], [2, 'exit']]);
      expect(attemptRows(retried.id)).toBe(2);
      // A restart: the kept run joins the history, and the call's new first run is listed after it replaces nothing else.
      expect(await store.restart(clean.id, NOW + 30)).toBe(true);
      expect(attemptRows(clean.id)).toBe(1);
      expect(await store.getAttempts(clean.id)).toEqual([run(1, OK, 'exit', NOW + 1)]);
      const again = await claimed(NOW + 30);
      expect(await done(clean.id, run(1, OK, 'exit', NOW + 31), { kind: 'finish', status: OK, output: null, error: null }, NOW + 38, again)).toBe(true);
      // Run 1 again, as a run numbered the same always was: the latest one.
      expect(await store.getAttempts(clean.id)).toEqual([run(1, OK, 'exit', NOW + 31)]);
    } finally {
      await store.close();
    }
  });

  it('adds the columns of a kept run to a version-13 database, its history unchanged (migration 14)', async () => {
    const path = tmpFile();
    const store = await SqliteStore.open({ path });
    const call = newCall();
    await store.insertCalls([call]);
    const [leased] = (await store.claimDue({ owner: 'a', now: NOW, leaseMs: 60_000, limit: 1, capacity: () => 1 })).calls;
    // As a version-13 scheduler left it: the run in attempts, no columns for it in the row.
    store.db.exec('ALTER TABLE calls DROP COLUMN run_started_at; ALTER TABLE calls DROP COLUMN run_duration_ms; UPDATE schema_version SET version = 13');
    store.db.prepare(`INSERT INTO attempts (call_id, number, started_at, duration_ms, status, outcome, resume, error) VALUES (?, 1, ?, 5, ?, 'exit', 0, NULL)`).run(call.id, NOW, OK);
    store.db.prepare(`UPDATE calls SET state = 'succeeded', status = ?, finished_at = ?, due_at = NULL, lease_owner = NULL WHERE id = ?`).run(OK, NOW + 5, call.id);
    expect(leased).toBeDefined();
    await store.close();
    const again = await SqliteStore.open({ path });
    try {
      expect(again.db.prepare('SELECT version FROM schema_version').get()).toEqual({ version: SQLITE_MIGRATIONS.length });
      expect(again.db.prepare('SELECT run_started_at, run_duration_ms FROM calls WHERE id = ?').get(call.id)).toEqual({ run_started_at: null, run_duration_ms: null });
      expect(await again.getAttempts(call.id)).toEqual([{ number: 1, startedAt: NOW, durationMs: 5, status: OK, outcome: 'exit', error: null, resume: false }]);
    } finally {
      await again.close();
    }
  });

  it('counts the runs of a version-4 database apart, attempts and resumes (migration 5)', async () => {
    const path = tmpFile();
    const store = await SqliteStore.open({ path });
    const call = newCall();
    await store.insertCalls([call]);
    // As an older scheduler left it: every run counted in attempts, and a retry of a resume marked as a resume.
    store.db.exec(`${DROP_AFTER_V5}ALTER TABLE calls DROP COLUMN resumes; UPDATE schema_version SET version = 4`);
    store.db.prepare('UPDATE calls SET attempts = 4 WHERE id = ?').run(call.id);
    const insert = store.db.prepare('INSERT INTO attempts (call_id, number, started_at, duration_ms, status, outcome, resume) VALUES (?, ?, 0, 1, 0, ?, ?)');
    for (const [number, outcome, resume] of [[1, 'suspend', 0], [2, 'retry', 1], [3, 'suspend', 1], [4, 'exit', 1]] as const) {
      insert.run(call.id, number, outcome, resume);
    }
    await store.close();

    const again = await SqliteStore.open({ path });
    expect(again.db.prepare('SELECT version FROM schema_version').get()).toEqual({ version: SQLITE_MIGRATIONS.length });
    expect(await again.getCall(call.id)).toMatchObject({ attempts: 2, resumes: 2 });
    expect((await again.getAttempts(call.id)).map((a) => a.resume)).toEqual([false, true, false, true]);
    await again.close();
  });

  it('forgets a function that a failed write added, so that the next write of it stores it (and it is claimed after a restart)', async () => {
    const path = tmpFile();
    const a = await SqliteStore.open({ path });
    const fn = { function: 'new-fn', endpoint: 'http://127.0.0.1:2' };
    const twice = newCall(fn);
    // The second row of one write fails (the same dispatch ID): the whole write is rolled back, its function's row too.
    await expect(a.insertCalls([twice, { ...twice }])).rejects.toThrow(/UNIQUE/);
    const kept = newCall(fn);
    await a.insertCalls([kept]);
    await a.close();
    const b = await SqliteStore.open({ path });
    const { calls } = await b.claimDue({ owner: 'b', now: NOW + 1, leaseMs: 60_000, limit: 10, capacity: () => 10 });
    expect(calls.map((c) => c.id)).toEqual([kept.id]);
    await b.close();
  });

  it('refuses a second scheduler on the same file with a clear error', async () => {
    const path = tmpFile();
    const store = await SqliteStore.open({ path });
    await expect(SqliteStore.open({ path })).rejects.toThrow(/in use by another scheduler process/);
    await store.close();
  });

  it('releases leases left by a previous process when it opens the file', async () => {
    const path = tmpFile();
    const store = await SqliteStore.open({ path });
    const call = newCall({}, Date.now());
    await store.insertCalls([call]);
    const claimed = await store.claimDue({ owner: 'dead', now: Date.now(), leaseMs: 3_600_000, limit: 10, capacity: () => 10 });
    expect(claimed.calls).toHaveLength(1);
    await store.close();
    const next = await SqliteStore.open({ path });
    expect((await next.getCall(call.id))?.state).toBe('pending');
    const again = await next.claimDue({ owner: 'new', now: Date.now(), leaseMs: 1000, limit: 10, capacity: () => 10 });
    expect(again.calls.map((c) => c.id)).toEqual([call.id]);
    await next.close();
  });

  it('checks the lease in the file when it records: a lease it remembers but lost to another writer records nothing', async () => {
    // The lease kept in memory from the claim is only a copy: here another connection restarts and
    // claims the call behind the store's back, and the store must still find out from the file.
    const path = tmpFile();
    const store = await SqliteStore.open({ path, exclusive: false, releaseLeases: false });
    const other = await SqliteStore.open({ path, exclusive: false, releaseLeases: false });
    try {
      const attempt: AttemptRecord = { number: 1, startedAt: NOW, durationMs: 5, status: 0, outcome: 'exit', error: null, resume: false };
      const claimOf = (s: SqliteStore, now: number) => s.claimDue({ owner: 'a', now, leaseMs: 60_000, limit: 10, capacity: () => 10 });
      const outcomes: Outcome[] = [
        { kind: 'finish', status: 0, output: null, error: null },
        { kind: 'retry', status: 4, error: { type: 'E', message: 'late' }, dueAt: NOW + 10 },
        { kind: 'suspend', status: 0, state: null, stateIsDelta: false, calls: [], minResults: 1, maxResults: 1, deadline: NOW + 1000, wakeOnError: false, pollError: null },
      ];
      for (const outcome of outcomes) {
        const call = newCall();
        await store.insertCalls([call]);
        const [mine] = (await claimOf(store, NOW)).calls;
        await other.restart(call.id, NOW + 1);
        const [theirs] = (await claimOf(other, NOW + 2)).calls;
        expect(theirs?.leaseToken).toBeGreaterThan(mine!.leaseToken);
        const req = { id: call.id, owner: 'a', leaseToken: mine!.leaseToken, now: NOW + 3, attempt, delivered: [], outcome };
        expect(await store.complete(req), outcome.kind).toBe(false);
        expect(await store.getAttempts(call.id)).toEqual([]);
        expect((await store.getCall(call.id))?.state).toBe('running');
        expect(await other.complete({ ...req, leaseToken: theirs!.leaseToken, outcome: outcomes[0]! })).toBe(true);
      }
    } finally {
      await other.close();
      await store.close();
    }
  });

  it('leases what a completion made due in the same transaction: started children, then the parent woken by its result', async () => {
    const store = await SqliteStore.open({ path: ':memory:' });
    try {
      const claimDue = (now: number) => store.claimDue({ owner: 'a', now, leaseMs: 60_000, limit: 10, capacity: () => 10 });
      // The caller's capacity counts what `claimed` was told: here one run of each function at a time.
      const running = new Map<string, number>();
      const followOn = (): FollowOnClaim & { taken: ClaimedCall[] } => {
        const taken: ClaimedCall[] = [];
        return {
          taken,
          leaseMs: 60_000,
          capacity: (_e, fn) => 1 - (running.get(fn) ?? 0),
          claimed: (call) => {
            taken.push(call);
            running.set(call.function, (running.get(call.function) ?? 0) + 1);
          },
        };
      };
      const finish = (call: ClaimedCall, now: number) => ({
        id: call.id, owner: 'a', leaseToken: call.leaseToken, now, attempt: null, delivered: [],
        outcome: { kind: 'finish', status: OK, output: null, error: null } as const,
      });
      const parent = newCall({ function: 'parent' });
      await store.insertCalls([parent]);
      const [p] = (await claimDue(NOW)).calls;
      const kids = [childOf(parent, 1n), childOf(parent, 2n), { ...childOf(parent, 3n), function: 'limited', limits: { spec: { concurrency: 5, concurrencyPerKey: false, rateCount: 0, ratePeriodMs: 0, ratePerKey: false }, key: '' } }];
      const first = followOn();
      const suspended = await store.completeAndClaim({
        id: p!.id, owner: 'a', leaseToken: p!.leaseToken, now: NOW + 1, attempt: null, delivered: [],
        outcome: suspendOutcome(NOW + 60_000, { calls: kids, minResults: 3, maxResults: 3 }),
      }, first);
      // One `fn` child (capacity 1), not the second; not the one with declared limits (claimDue's business).
      expect(suspended.recorded).toBe(true);
      expect(suspended.calls.map((c) => c.id)).toEqual([kids[0]!.id]);
      expect(first.taken).toEqual(suspended.calls);
      expect((await store.getCall(kids[0]!.id))?.state).toBe('running');
      expect((await store.getCall(kids[1]!.id))?.state).toBe('pending');
      const rest = (await claimDue(NOW + 2)).calls;
      expect(rest.map((c) => c.id).sort()).toEqual([kids[1]!.id, kids[2]!.id].sort());

      // The first two results do not wake the parent (three wanted): nothing leased.
      running.clear();
      expect(await store.completeAndClaim(finish(suspended.calls[0]!, NOW + 3), followOn())).toEqual({ recorded: true, calls: [] });
      expect(await store.completeAndClaim(finish(rest[0]!, NOW + 4), followOn())).toEqual({ recorded: true, calls: [] });
      // A stale lease records nothing and leases nothing.
      expect(await store.completeAndClaim(finish(rest[0]!, NOW + 5), followOn())).toEqual({ recorded: false, calls: [] });
      // The last result wakes the parent: leased at once, with the results, and no claim finds it.
      const last = await store.completeAndClaim(finish(rest[1]!, NOW + 6), followOn());
      expect(last.recorded).toBe(true);
      expect(last.calls.map((c) => c.id)).toEqual([parent.id]);
      expect(last.calls[0]!.leaseToken).toBeGreaterThan(p!.leaseToken);
      expect(last.calls[0]!.resume?.results.map((r) => r.correlationId).sort()).toEqual([1n, 2n, 3n]);
      expect((await claimDue(NOW + 7)).calls).toEqual([]);
      expect(await store.complete(finish(last.calls[0]!, NOW + 8))).toBe(true);
      expect((await store.getCall(parent.id))?.state).toBe('succeeded');
    } finally {
      await store.close();
    }
  });

  it('leases new calls as it inserts them when nothing else of their function is due (insertAndClaim)', async () => {
    const store = await SqliteStore.open({ path: ':memory:' });
    try {
      const claimDue = (now: number) => store.claimDue({ owner: 'a', now, leaseMs: 60_000, limit: 10, capacity: () => 10 });
      let taken: ClaimedCall[] = [];
      const claim = (now: number, cap: number): InsertClaim => ({
        owner: 'a', now, leaseMs: 60_000, capacity: () => cap - taken.length, claimed: (c) => taken.push(c),
      });
      const input = anyOf('the same input');
      // The first call of a function: whether others are due is not known yet, so it waits for a claim (which learns it).
      const first = newCall({ function: 'f', input });
      expect(await store.insertAndClaim([first], claim(NOW, 10))).toEqual({ ids: [first.id], calls: [] });
      const [claimed] = (await claimDue(NOW)).calls;
      expect(claimed?.id).toBe(first.id);

      // Nothing of f is due now: new calls are written leased, as the capacity allows; the third waits.
      const [a, b, c] = [newCall({ function: 'f', input }, NOW + 1), newCall({ function: 'f', input }, NOW + 1), newCall({ function: 'f', input }, NOW + 1)];
      const r = await store.insertAndClaim([a!, b!, c!], claim(NOW + 1, 2));
      expect(r.ids).toEqual([a!.id, b!.id, c!.id]);
      expect(r.calls.map((x) => x.id)).toEqual([a!.id, b!.id]);
      expect(taken).toEqual(r.calls);
      // The call a claim would have handed over (the first lease of its row), and the same row.
      expect(r.calls[0]).toEqual({ ...claimed, id: a!.id, rootId: a!.rootId, createdAt: NOW + 1, expiresAt: a!.expiresAt });
      const row = await store.getCall(a!.id);
      expect(row).toEqual({ ...(await store.getCall(first.id)), id: a!.id, rootId: a!.rootId, createdAt: NOW + 1, updatedAt: NOW + 1, expiresAt: a!.expiresAt, dueAt: NOW + 60_001 });
      expect(row?.state).toBe('running');
      // Not claimed again; c is what a claim finds.
      expect((await claimDue(NOW + 2)).calls.map((x) => x.id)).toEqual([c!.id]);

      // c was due behind the others until that claim: a call inserted while another of f is due waits its turn.
      taken = [];
      const d = newCall({ function: 'f', input }, NOW + 3);
      const e = newCall({ function: 'f', input }, NOW + 3);
      await store.insertCalls([d]);
      expect((await store.insertAndClaim([e], claim(NOW + 3, 10))).calls).toEqual([]);
      expect((await claimDue(NOW + 3)).calls.map((x) => x.id)).toEqual([d.id, e.id]);

      // Not leased: a delayed call, a call of a function with declared limits, a repeated idempotency key.
      const later = newCall({ function: 'f', input }, NOW + 4);
      later.dueAt = NOW + 1_000;
      const limited = newCall({ function: 'f', input, limits: { spec: { concurrency: 5, concurrencyPerKey: false, rateCount: 0, ratePeriodMs: 0, ratePerKey: false }, key: '' } }, NOW + 4);
      const keyed = newCall({ function: 'g', input, idempotencyKey: 'k' }, NOW + 4);
      await store.insertCalls([keyed]);
      await claimDue(NOW + 4);
      const again = newCall({ function: 'g', input, idempotencyKey: 'k' }, NOW + 5);
      const r2 = await store.insertAndClaim([later, again], claim(NOW + 5, 10));
      expect(r2).toEqual({ ids: [later.id, keyed.id], calls: [] });
      expect((await store.insertAndClaim([limited], claim(NOW + 5, 10))).calls).toEqual([]);
      // A leased call records its result under its lease.
      const done = { kind: 'finish', status: OK, output: null, error: null } as const;
      expect(await store.complete({ id: a!.id, owner: 'a', leaseToken: r.calls[0]!.leaseToken, now: NOW + 6, attempt: null, delivered: [], outcome: done })).toBe(true);
      expect((await store.getCall(a!.id))?.state).toBe('succeeded');
    } finally {
      await store.close();
    }
  });

  it('answers claim rounds from its due-time floors, and still claims each call as soon as it is due', async () => {
    // All within a second of the first claim: the floors are trusted (no look at every pair), so a claim with every
    // floor in the future runs no statement. Whatever a write makes due must still be claimed at once.
    const store = await SqliteStore.open({ path: ':memory:' });
    try {
      const claimDue = (now: number) => store.claimDue({ owner: 'a', now, leaseMs: 60_000, limit: 10, capacity: () => 10 });
      const follow: FollowOnClaim = { leaseMs: 60_000, capacity: () => 10, claimed: () => {} };
      const parent = newCall({ function: 'parent' });
      await store.insertCalls([parent]);
      const [p] = (await claimDue(NOW)).calls;
      const kid = childOf(parent, 1n);
      const suspended = await store.completeAndClaim(
        { id: p!.id, owner: 'a', leaseToken: p!.leaseToken, now: NOW + 1, attempt: null, delivered: [], outcome: suspendOutcome(NOW + 60_000, { calls: [kid] }) },
        follow,
      );
      expect(suspended.calls.map((c) => c.id)).toEqual([kid.id]);
      // Nothing due: the next due time is the parent's deadline (the kid's lease ends later).
      expect(await claimDue(NOW + 10)).toEqual({ calls: [], nextDueAt: NOW + 60_000 });
      // A new call of a known pair.
      const other = newCall({ function: 'kid' }, NOW + 20);
      await store.insertCalls([other]);
      const [o] = (await claimDue(NOW + 20)).calls;
      expect(o?.id).toBe(other.id);
      // A retry: not before its time, at once at its time.
      const retry = { kind: 'retry', status: Status.TEMPORARY_ERROR, error: null, dueAt: NOW + 300 } as const;
      expect(await store.complete({ id: o!.id, owner: 'a', leaseToken: o!.leaseToken, now: NOW + 30, attempt: null, delivered: [], outcome: retry })).toBe(true);
      expect(await claimDue(NOW + 100)).toEqual({ calls: [], nextDueAt: NOW + 300 });
      expect((await claimDue(NOW + 300)).calls.map((c) => c.id)).toEqual([other.id]);
      // A parent woken by its child's result but not leased with it (no capacity): the next claim takes it.
      const none: FollowOnClaim = { leaseMs: 60_000, capacity: () => 0, claimed: () => expect.fail('nothing may be leased') };
      const k = suspended.calls[0]!;
      const done = { kind: 'finish', status: OK, output: null, error: null } as const;
      expect(await store.completeAndClaim({ id: k.id, owner: 'a', leaseToken: k.leaseToken, now: NOW + 400, attempt: null, delivered: [], outcome: done }, none)).toEqual({ recorded: true, calls: [] });
      expect((await claimDue(NOW + 400)).calls.map((c) => c.id)).toEqual([parent.id]);
    } finally {
      await store.close();
    }
  });

  it('hands a result straight to the parent it wakes: the statement that counts the result leases the parent', async () => {
    const store = await SqliteStore.open({ path: tmpFile() });
    try {
      const claimDue = (now: number) => store.claimDue({ owner: 'a', now, leaseMs: 60_000, limit: 10, capacity: () => 10 });
      const followOn = (taken: ClaimedCall[] = []): FollowOnClaim => ({ leaseMs: 60_000, capacity: () => 10, claimed: (call) => taken.push(call) });
      const changes = () => (store.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
      const parent = newCall({ function: 'parent' });
      const { p, c } = await parentWaitingForOneChild(store, parent, 7n);
      const before = changes();
      const taken: ClaimedCall[] = [];
      const output = anyOf('49');
      const r = await store.completeAndClaim(
        { id: c.id, owner: 'a', leaseToken: c.leaseToken, now: NOW + 2, attempt: null, delivered: [], outcome: { kind: 'finish', status: OK, output, error: null } },
        followOn(taken),
      );
      // Two rows written: the child finished, the parent counted the result and leased (not counted, then leased).
      expect(changes() - before).toBe(2);
      expect(r.calls.map((x) => x.id)).toEqual([parent.id]);
      expect(taken).toEqual(r.calls);
      expect(r.calls[0]!.leaseToken).toBe(p.leaseToken + 1);
      expect(r.calls[0]!.resume?.results.map((x) => [x.dispatchId, x.correlationId, textOf(x.output)])).toEqual([[c.id, 7n, '49']]);
      // The only result ready: handed as the completion gave it (its very bytes), not read back from the file.
      expect(r.calls[0]!.resume?.results[0]?.output?.value).toBe(output.value);
      expect((await store.getCall(parent.id))?.state).toBe('running');
      expect((await claimDue(NOW + 3)).calls).toEqual([]);
      // The lease is the file's: the parent's run records under it.
      const done = await store.complete({
        id: parent.id, owner: 'a', leaseToken: r.calls[0]!.leaseToken, now: NOW + 4, attempt: null, delivered: [c.id],
        outcome: { kind: 'finish', status: OK, output: null, error: null },
      });
      expect(done).toBe(true);
      expect((await store.getCall(parent.id))?.state).toBe('succeeded');
    } finally {
      await store.close();
    }
  });

  it('hands the parent it wakes as a claim of the file would: its row known from its suspension, nothing read back', async () => {
    // The same calls in two stores: in one the waking result leases the parent (known row), in the other a claim reads it.
    const parent = newCall({ function: 'parent', traceContext: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'k=v' } });
    const kids = [childOf(parent, 7n), childOf(parent, 8n)];
    const handed: ClaimedCall[] = [];
    for (const path of [tmpFile(), tmpFile()]) {
      const store = await SqliteStore.open({ path });
      try {
        const viaClaim = handed.length === 1;
        const followOn = (capacity: number): FollowOnClaim => ({ leaseMs: 60_000, capacity: () => capacity, claimed: () => {} });
        await store.insertCalls([parent]);
        const [p] = (await store.claimDue({ owner: 'a', now: NOW, leaseMs: 60_000, limit: 10, capacity: () => 10 })).calls;
        const run = (n: number, resume: boolean) => ({ number: n, startedAt: NOW, durationMs: 1, status: OK, outcome: 'suspend' as const, error: null, resume });
        // Two suspensions (the second's journal a delta, appended), each waiting for one child.
        const first = suspendOutcome(NOW + 60_000, { calls: [kids[0]!], state: { kind: 'typed', typeUrl: 'example.com/J', value: new Uint8Array([1, 2]) } });
        const [c1] = (await store.completeAndClaim({ id: parent.id, owner: 'a', leaseToken: p!.leaseToken, now: NOW + 1, attempt: run(1, false), delivered: [], outcome: first }, followOn(10))).calls;
        const r1 = await store.completeAndClaim(
          { id: c1!.id, owner: 'a', leaseToken: c1!.leaseToken, now: NOW + 2, attempt: null, delivered: [], outcome: { kind: 'finish', status: OK, output: anyOf('1'), error: null } },
          followOn(10),
        );
        const p2 = r1.calls.find((c) => c.id === parent.id)!;
        const second = suspendOutcome(NOW + 60_000, { calls: [kids[1]!], state: { kind: 'typed', typeUrl: 'example.com/J', value: new Uint8Array([3]) }, stateIsDelta: true, maxResults: 3 });
        const [c2] = (await store.completeAndClaim({ id: parent.id, owner: 'a', leaseToken: p2.leaseToken, now: NOW + 3, attempt: run(2, true), delivered: [c1!.id], outcome: second }, followOn(10))).calls;
        const finish = { kind: 'finish', status: OK, output: anyOf('2'), error: null } as const;
        const r2 = await store.completeAndClaim({ id: c2!.id, owner: 'a', leaseToken: c2!.leaseToken, now: NOW + 4, attempt: null, delivered: [], outcome: finish }, followOn(viaClaim ? 0 : 10));
        if (viaClaim) {
          expect(r2.calls).toEqual([]);
          handed.push(...(await store.claimDue({ owner: 'a', now: NOW + 5, leaseMs: 60_000, limit: 10, capacity: () => 10 })).calls);
        } else {
          handed.push(...r2.calls);
        }
      } finally {
        await store.close();
      }
    }
    const [known, read] = handed.map((c) => plain(c));
    expect(read).toMatchObject({ id: parent.id, attempts: 1, resumes: 1, traceContext: { tracestate: 'k=v' }, resume: { stateLength: 3 } });
    expect(known).toEqual(read);
  });

  it('keeps nothing of a run recorded alone in its batch that fails after its first writes (no savepoint), before or after a restart', async () => {
    const path = tmpFile();
    const parent = newCall({ function: 'parent' });
    const other = newCall();
    const state = (b: number) => ({ kind: 'typed' as const, typeUrl: 'example.com/J', value: new Uint8Array([b]) });
    const followOn: FollowOnClaim = { leaseMs: 60_000, capacity: () => 10, claimed: () => {} };
    const rowOf = (store: SqliteStore) =>
      store.db.prepare('SELECT state, lease_token, state_length, (SELECT count(*) FROM call_state_chunks) AS chunks, (SELECT count(*) FROM calls) AS calls FROM calls WHERE id = ?').get(parent.id);
    const store = await SqliteStore.open({ path });
    let leaseToken: number;
    try {
      await store.insertCalls([parent, other]);
      const p = (await store.claimDue({ owner: 'a', now: NOW, leaseMs: 60_000, limit: 10, capacity: () => 10 })).calls.find((c) => c.id === parent.id)!;
      leaseToken = p.leaseToken;
      const before = rowOf(store);
      // Its suspension writes the parent's row, then a child whose ID is taken: SQLite refuses the child, the
      // operation throws, and what it wrote first goes with it.
      const clash = { ...childOf(parent, 1n), id: other.id };
      const failing = { id: parent.id, owner: 'a', leaseToken, now: NOW + 1, attempt: null, delivered: [], outcome: suspendOutcome(NOW + 60_000, { calls: [clash], state: state(1) }) };
      await expect(store.completeAndClaim(failing, followOn)).rejects.toThrow(/UNIQUE/);
      expect(rowOf(store)).toEqual(before);
      expect(before).toMatchObject({ state: 'running', state_length: 0, chunks: 0, calls: 2 });
      // The lease still holds: the same run records its suspension.
      const kid = childOf(parent, 1n);
      const ok = { ...failing, outcome: suspendOutcome(NOW + 60_000, { calls: [kid], state: state(2) }) };
      expect((await store.completeAndClaim(ok, followOn)).recorded).toBe(true);
    } finally {
      await store.close();
    }
    // Opened again, the redo log runs what was acknowledged: the suspension that succeeded, nothing of the other.
    const again = await SqliteStore.open({ path });
    try {
      expect(rowOf(again)).toMatchObject({ state: 'suspended', lease_token: leaseToken, state_length: 1, chunks: 1, calls: 3 });
      expect(again.db.prepare('SELECT bytes FROM call_state_chunks').all()).toEqual([{ bytes: Buffer.from([2]) }]);
    } finally {
      await again.close();
    }
  });

  it('suspends a parent leased by the result that woke it without reading its counts first, and writes what a read would', async () => {
    // The same steps in two stores: in one each waking result leases the parent (the store knows what its row counts),
    // in the other a claim does (it reads them). The suspensions must write the same rows; only the reads differ.
    const parent = newCall({ function: 'parent' });
    const [k1, k2, k3, k4] = [1n, 2n, 3n, 4n].map((n) => ({ ...childOf(parent, n), function: 'kid' }));
    const seen: unknown[][] = [];
    const countReads: number[] = [];
    for (const viaClaim of [false, true]) {
      const store = await SqliteStore.open({ path: ':memory:' });
      // In memory (no redo log), a statement's `get` is better-sqlite3's own: counted here for the suspension's read.
      const statement = Object.getPrototypeOf(store.db.prepare('SELECT 1')) as { get: (...args: unknown[]) => unknown };
      const get = statement.get;
      let reads = 0;
      statement.get = function (this: { source: string }, ...args: unknown[]) {
        if (this.source.startsWith('SELECT ready, ready_errors FROM calls')) reads++;
        return get.apply(this, args);
      };
      try {
        const rows: unknown[] = [];
        const row = () =>
          rows.push(
            store.db
              .prepare('SELECT state, ready, ready_errors, due_at, lease_token, poll_min, (SELECT group_concat(deliver) FROM calls k WHERE k.parent_id = p.id) AS marks FROM calls p WHERE id = ?')
              .get(parent.id),
          );
        const followOn: FollowOnClaim = { leaseMs: 60_000, capacity: (_, fn) => (viaClaim && fn === 'parent' ? 0 : 10), claimed: () => {} };
        const claimParent = async (now: number) => (await store.claimDue({ owner: 'a', now, leaseMs: 60_000, limit: 10, capacity: () => 10 })).calls.find((c) => c.id === parent.id)!;
        const parentAfter = async (r: { calls: ClaimedCall[] }, now: number) => (viaClaim ? claimParent(now) : r.calls.find((c) => c.id === parent.id)!);
        // A suspension leases its children as it starts them, never the parent (a claim does, in both stores).
        const children: FollowOnClaim = { ...followOn, capacity: (_, fn) => (fn === 'parent' ? 0 : 10) };
        const suspend = (p: ClaimedCall, now: number, delivered: string[], calls: NewCall[]) =>
          store.completeAndClaim({ id: parent.id, owner: 'a', leaseToken: p.leaseToken, now, attempt: null, delivered, outcome: suspendOutcome(NOW + 60_000, { calls }) }, children);
        const finish = (k: ClaimedCall, now: number) =>
          store.completeAndClaim({ id: k.id, owner: 'a', leaseToken: k.leaseToken, now, attempt: null, delivered: [], outcome: { kind: 'finish', status: OK, output: anyOf(String(now)), error: null } }, followOn);
        await store.insertCalls([parent]);
        let p = await claimParent(NOW);
        const started = await suspend(p, NOW + 1, [], [k1!, k2!]);
        const [c1, c2] = started.calls;
        row();
        // Woken by k1: the suspension that delivers it (the one result its row counts) is written as known.
        p = await parentAfter(await finish(c1!, NOW + 2), NOW + 2);
        const [c3] = (await suspend(p, NOW + 3, [k1!.id], [k3!])).calls;
        row();
        // Woken by k2, then k3's result comes while it runs: the row counts two, the write as known finds it so
        // (nothing written) and the suspension reads its counts. One result left: due at once.
        p = await parentAfter(await finish(c2!, NOW + 4), NOW + 4);
        await finish(c3!, NOW + 5);
        row();
        const again = await suspend(p, NOW + 6, [k2!.id], [k4!]);
        const c4 = again.calls.find((c) => c.id === k4!.id)!;
        row();
        p = await claimParent(NOW + 7);
        await suspend(p, NOW + 8, [k3!.id], []);
        row();
        // Woken by k4, its run delivers k3's result again (already delivered): the row counts one, as known, but the
        // delivery marks none, so that one stays ready and the parent is due at once.
        p = await parentAfter(await finish(c4, NOW + 9), NOW + 9);
        await suspend(p, NOW + 10, [k3!.id], []);
        row();
        seen.push(rows);
        countReads.push(reads);
      } finally {
        statement.get = get;
        await store.close();
      }
    }
    expect(seen[0]).toEqual(seen[1]);
    expect(seen[1]).toMatchObject([
      { state: 'suspended', ready: 0 },
      { state: 'suspended', ready: 0, due_at: NOW + 60_000 },
      { state: 'running', ready: 2 },
      { state: 'suspended', ready: 1, due_at: NOW + 6 },
      { state: 'suspended', ready: 0, due_at: NOW + 60_000 },
      { state: 'suspended', ready: 1, due_at: NOW + 10, marks: '1' },
    ]);
    // A claim's lease is read at every suspension (5); the known ones skip it twice (after k1, and after k4).
    expect(countReads).toEqual([3, 5]);
  });

  it('claims the rows it inserted as a claim of the file would: remembered when it owns the file, read back when it does not', async () => {
    // The same calls in two stores: one owns its file (it remembers the rows it wrote pending), the other shares it
    // (exclusive: false: every claim reads the file). Children, a correlation ID, a trace context, a retry in between.
    const parent = newCall({ function: 'parent' });
    const calls = [
      newCall({ traceContext: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'k=v' } }),
      newCall({ idempotencyKey: 'key-1' }),
      { ...childOf(parent, 9n), function: 'fn' },
      newCall({ input: { typeUrl: 'example.com/Empty', value: new Uint8Array() } }),
    ];
    const seen: unknown[][] = [];
    for (const exclusive of [true, false]) {
      const store = await SqliteStore.open({ path: tmpFile(), exclusive });
      try {
        const claim = (now: number, limit = 10) => store.claimDue({ owner: 'a', now, leaseMs: 60_000, limit, capacity: () => limit });
        await store.insertCalls(calls);
        const first = (await claim(NOW, 3)).calls;
        // The first call fails and is retried: its next claim reads the row (attempts 1), not what was remembered.
        const retry = { kind: 'retry', status: Status.TEMPORARY_ERROR, dueAt: NOW + 5, error: { type: 'Timeout', message: 'try again' } } as const;
        const attempt = { number: 1, startedAt: NOW, durationMs: 1, status: Status.TEMPORARY_ERROR, outcome: 'exit' as const, error: retry.error, resume: false };
        expect(await store.complete({ id: first[0]!.id, owner: 'a', leaseToken: first[0]!.leaseToken, now: NOW + 1, attempt, delivered: [], outcome: retry })).toBe(true);
        const rest = (await claim(NOW + 2)).calls;
        const again = (await claim(NOW + 6)).calls;
        seen.push([first, rest, again].map((batch) => plain(batch)));
        expect(first.map((c) => c.id)).toEqual(calls.slice(0, 3).map((c) => c.id));
        expect(rest.map((c) => c.id)).toEqual([calls[3]!.id]);
        expect(again).toMatchObject([{ id: calls[0]!.id, attempts: 1, leaseToken: 2 }]);
      } finally {
        await store.close();
      }
    }
    expect(seen[0]).toEqual(seen[1]);
  });

  it('reads a remembered row from the file when the file says it changed since it was written (the hint is checked)', async () => {
    const store = await SqliteStore.open({ path: tmpFile() });
    try {
      const [a, b] = [newCall(), newCall()];
      await store.insertCalls([a, b]);
      // Changed behind the store's back (no path of the store does so without forgetting the row): the claim sees it.
      store.db.prepare('UPDATE calls SET attempts = 2, failures = 1 WHERE id = ?').run(a.id);
      const { calls } = await store.claimDue({ owner: 'a', now: NOW, leaseMs: 60_000, limit: 10, capacity: () => 10 });
      expect(calls.map((c) => [c.id, c.attempts, c.leaseToken])).toEqual([[a.id, 2, 1], [b.id, 0, 1]]);
    } finally {
      await store.close();
    }
  });

  it('never hands a rolled-back insert for the call that was given its seq again', async () => {
    const store = await SqliteStore.open({ path: tmpFile() });
    try {
      const taken = newCall();
      await store.insertCalls([taken]);
      // One write: a call inserted, then one whose ID is taken: both rolled back, and the first one's seq is free again.
      const lost = newCall({ input: anyOf('lost') });
      await expect(store.insertCalls([lost, newCall({ id: taken.id })])).rejects.toThrow();
      const next = newCall({ input: anyOf('next') });
      await store.insertCalls([next]);
      const claimed = (await store.claimDue({ owner: 'a', now: NOW, leaseMs: 60_000, limit: 10, capacity: () => 10 })).calls;
      expect(claimed.map((c) => [c.id, textOf(c.input)])).toEqual([
        [taken.id, `input of ${taken.id}`],
        [next.id, 'next'],
      ]);
    } finally {
      await store.close();
    }
  });

  it('counts every result towards the one that wakes the parent, recorded with a follow-on claim or not', async () => {
    const store = await SqliteStore.open({ path: tmpFile() });
    try {
      const changes = () => (store.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
      const parent = newCall({ function: 'parent' });
      await store.insertCalls([parent]);
      const [p] = (await store.claimDue({ owner: 'a', now: NOW, leaseMs: 60_000, limit: 10, capacity: () => 10 })).calls;
      const kids = [childOf(parent, 1n), childOf(parent, 2n)];
      const claim = (): FollowOnClaim => ({ leaseMs: 60_000, capacity: () => 10, claimed: () => {} });
      const outcome = suspendOutcome(NOW + 60_000, { calls: kids, minResults: 2, maxResults: 2 });
      const [a, b] = (await store.completeAndClaim({ id: p!.id, owner: 'a', leaseToken: p!.leaseToken, now: NOW + 1, attempt: null, delivered: [], outcome }, claim())).calls;
      const finish = { kind: 'finish', status: OK, output: null, error: null } as const;
      // The first result through complete() (no follow-on claim: a run loop with no room does so).
      expect(await store.complete({ id: a!.id, owner: 'a', leaseToken: a!.leaseToken, now: NOW + 2, attempt: null, delivered: [], outcome: finish })).toBe(true);
      const before = changes();
      const r = await store.completeAndClaim({ id: b!.id, owner: 'a', leaseToken: b!.leaseToken, now: NOW + 3, attempt: null, delivered: [], outcome: finish }, claim());
      expect(r.calls.map((x) => x.id)).toEqual([parent.id]);
      expect(r.calls[0]!.resume?.results.map((x) => x.correlationId).sort()).toEqual([1n, 2n]);
      // The second result woke the parent and leased it in one write of its row.
      expect(changes() - before).toBe(2);
    } finally {
      await store.close();
    }
  });

  it('leaves a woken parent whose function declares limits to the claim round', async () => {
    const store = await SqliteStore.open({ path: tmpFile() });
    try {
      const claimDue = (now: number) => store.claimDue({ owner: 'a', now, leaseMs: 60_000, limit: 10, capacity: () => 10 });
      const limits = { spec: { concurrency: 5, concurrencyPerKey: false, rateCount: 0, ratePeriodMs: 0, ratePerKey: false }, key: '' };
      const parent = { ...newCall({ function: 'limitedParent' }), limits };
      const { c } = await parentWaitingForOneChild(store, parent, 1n);
      const claim: FollowOnClaim = { leaseMs: 60_000, capacity: () => 10, claimed: () => expect.fail('nothing may be leased') };
      const r = await store.completeAndClaim(
        { id: c.id, owner: 'a', leaseToken: c.leaseToken, now: NOW + 2, attempt: null, delivered: [], outcome: { kind: 'finish', status: OK, output: null, error: null } },
        claim,
      );
      expect(r).toEqual({ recorded: true, calls: [] });
      expect((await store.getCall(parent.id))?.state).toBe('suspended');
      expect((await claimDue(NOW + 3)).calls.map((x) => x.id)).toEqual([parent.id]);
    } finally {
      await store.close();
    }
  });

  it('leaves a woken parent to the usual claim when the capacity says no', async () => {
    const store = await SqliteStore.open({ path: ':memory:' });
    try {
      const claimDue = (now: number) => store.claimDue({ owner: 'a', now, leaseMs: 60_000, limit: 10, capacity: () => 10 });
      const parent = newCall({ function: 'parent' });
      await store.insertCalls([parent]);
      const [p] = (await claimDue(NOW)).calls;
      const kid = childOf(parent, 1n);
      await store.complete({ id: p!.id, owner: 'a', leaseToken: p!.leaseToken, now: NOW + 1, attempt: null, delivered: [], outcome: suspendOutcome(NOW + 60_000, { calls: [kid] }) });
      const [c] = (await claimDue(NOW + 2)).calls;
      const none: FollowOnClaim = { leaseMs: 60_000, capacity: () => 0, claimed: () => expect.fail('nothing may be leased') };
      const r = await store.completeAndClaim({ id: c!.id, owner: 'a', leaseToken: c!.leaseToken, now: NOW + 3, attempt: null, delivered: [], outcome: { kind: 'finish', status: 0, output: null, error: null } }, none);
      expect(r).toEqual({ recorded: true, calls: [] });
      expect((await claimDue(NOW + 4)).calls.map((x) => x.id)).toEqual([parent.id]);
    } finally {
      await store.close();
    }
  });

  it('lands 500 concurrent writes', async () => {
    const store = await SqliteStore.open({ path: ':memory:' });
    const ids = await Promise.all(Array.from({ length: 500 }, () => store.insertCalls([newCall()])));
    expect(new Set(ids.flat()).size).toBe(500);
    expect((await store.listCalls({ limit: 1 })).counts.pending).toBe(500);
    await store.close();
  });

  it('claims with the (endpoint, function, due_at) index, and stays correct with 100,000 pending calls', async () => {
    const store = await SqliteStore.open({ path: ':memory:' });
    const plan = store.db
      .prepare(
        'EXPLAIN QUERY PLAN SELECT seq FROM calls WHERE endpoint = ? AND function = ? AND due_at <= ? ORDER BY due_at LIMIT CAST(? AS INTEGER)',
      )
      .all('e', 'f', 0, 1) as Array<{ detail: string }>;
    expect(plan.map((p) => p.detail).join(' ')).toMatch(/USING (COVERING )?INDEX calls_due/);
    await store.insertCalls(hotAndCold(100_000));
    const { calls, nextDueAt } = await claimHot(store);
    expect(calls).toHaveLength(50);
    expect(calls.every((c) => c.function === 'hot')).toBe(true);
    expect(nextDueAt).toBe(NOW);
    const counts = (await store.listCalls({ limit: 1 })).counts;
    expect(counts).toMatchObject({ pending: 99_950, running: 50 });
    await store.close();
  });
});
