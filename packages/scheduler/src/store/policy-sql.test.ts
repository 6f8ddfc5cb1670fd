/**
 * The SQL forms of the policy agree with its TypeScript forms, case
 * by case, on SQLite and (with DISPATCH_TEST_POSTGRES_URL) on PostgreSQL.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { CallState } from './store.js';
import { dueAtOnResult, elidesState, runCountsAfter } from './policy.js';
import { dueOnResultSql, elidesStateSql, FINISHED_SQL, runCountsSql, WAITING_SQL } from './policy-sql.js';

const url = process.env.DISPATCH_TEST_POSTGRES_URL;
const now = 1_000_000;

interface WakeCase {
  state: CallState;
  ready: number;
  poll_min: number;
  poll_wake_on_error: number;
  due_at: number | null;
  e: number;
}

/** Every combination that matters to the wake predicate. */
function wakeCases(): WakeCase[] {
  const cases: WakeCase[] = [];
  for (const state of ['pending', 'running', 'suspended'] as const)
    for (const ready of [0, 1, 2])
      for (const poll_min of [0, 1, 2, 3])
        for (const poll_wake_on_error of [0, 1])
          for (const due_at of [null, now - 5, now, now + 5])
            for (const e of [0, 1]) cases.push({ state, ready, poll_min, poll_wake_on_error, due_at, e });
  return cases;
}

const expectedDue = (c: WakeCase) =>
  dueAtOnResult({ state: c.state, ready: c.ready, minResults: c.poll_min, wakeOnError: c.poll_wake_on_error === 1, dueAt: c.due_at }, c.e === 1, now);

interface ElideCase {
  state_delta: number;
  state_kind: number;
  state_length: number;
  above: number;
}

function elideCases(): ElideCase[] {
  const cases: ElideCase[] = [];
  for (const state_delta of [0, 1])
    for (const state_kind of [0, 1, 2])
      for (const state_length of [0, 9, 10, 11])
        for (const above of [0, 10, Number.MAX_SAFE_INTEGER]) cases.push({ state_delta, state_kind, state_length, above });
  return cases;
}

interface CountCase {
  attempts: number;
  resumes: number;
  number: number | null;
  resume: number;
}

function countCases(): CountCase[] {
  const cases: CountCase[] = [];
  for (const attempts of [0, 1, 2])
    for (const resumes of [0, 1, 3])
      for (const number of [null, 1, 2, 3, 4, 5, 6])
        for (const resume of [0, 1]) cases.push({ attempts, resumes, number, resume });
  return cases;
}

const expectedCounts = (c: CountCase) => runCountsAfter(c, c.number === null ? null : { number: c.number, resume: c.resume === 1 });

const expectedElide = (c: ElideCase) =>
  elidesState(c.state_delta === 1, c.state_kind === 2 ? 'typed' : c.state_kind === 1 ? 'bytes' : undefined, c.state_length, c.above);

describe('the policy in SQL (SQLite)', () => {
  it('lists the finished states and those that take results', () => {
    expect(FINISHED_SQL).toBe(`('succeeded','failed','cancelled')`);
    expect(WAITING_SQL).toBe(`('pending','running','suspended')`);
  });

  /** Evaluates `select` over `cases`, one row each (columns: `i`, then the case's fields), in a memory database. */
  function evaluate<C extends object>(cases: C[], select: string, params: Record<string, number> = {}): unknown[] {
    const db = new Database(':memory:');
    try {
      const columns = Object.keys(cases[0] ?? {});
      db.exec(`CREATE TABLE t (i INTEGER, ${columns.join(', ')})`);
      const insert = db.prepare(`INSERT INTO t VALUES (?${', ?'.repeat(columns.length)})`);
      cases.forEach((c, i) => {
        insert.run(i, ...columns.map((k) => (c as Record<string, unknown>)[k]));
      });
      return db.prepare(`SELECT ${select} AS v FROM t ORDER BY i`).all(params).map((r) => (r as { v: unknown }).v);
    } finally {
      db.close();
    }
  }

  it('wakes a parent on a result exactly as dueAtOnResult says', () => {
    const cases = wakeCases();
    const due = evaluate(cases, dueOnResultSql({ row: 't.', isError: 't.e', now: '@now', least: 'MIN' }), { now });
    expect(due).toEqual(cases.map(expectedDue));
  });

  it('elides a state exactly as elidesState says', () => {
    const cases = elideCases();
    expect(evaluate(cases, elidesStateSql('t.', 't.above')).map((v) => v === 1)).toEqual(cases.map(expectedElide));
  });

  it('counts a run as an attempt or a resume exactly as runCountsAfter says', () => {
    const cases = countCases();
    const db = new Database(':memory:');
    try {
      db.exec('CREATE TABLE t (i INTEGER, attempts INTEGER, resumes INTEGER, number INTEGER, resume INTEGER)');
      const insert = db.prepare('INSERT INTO t VALUES (?, ?, ?, ?, ?)');
      for (const [i, c] of cases.entries()) insert.run(i, c.attempts, c.resumes, c.number, c.resume);
      db.exec(`UPDATE t SET ${runCountsSql({ row: '', number: 'number', resume: 'resume' })}`);
      expect(db.prepare('SELECT attempts, resumes FROM t ORDER BY i').all()).toEqual(cases.map(expectedCounts));
    } finally {
      db.close();
    }
  });
});

describe.skipIf(!url)('the policy in SQL (PostgreSQL)', () => {
  it('wakes a parent on a result, elides a state and counts runs exactly as the TypeScript forms say', async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(
        'CREATE TEMP TABLE t (i INTEGER, state TEXT, ready INTEGER, poll_min INTEGER, poll_wake_on_error SMALLINT, due_at BIGINT, e SMALLINT)',
      );
      const cases = wakeCases();
      await client.query(
        `INSERT INTO t SELECT * FROM unnest($1::int[], $2::text[], $3::int[], $4::int[], $5::smallint[], $6::bigint[], $7::smallint[])`,
        [
          cases.map((_, i) => i),
          cases.map((c) => c.state),
          cases.map((c) => c.ready),
          cases.map((c) => c.poll_min),
          cases.map((c) => c.poll_wake_on_error),
          cases.map((c) => c.due_at),
          cases.map((c) => c.e),
        ],
      );
      const { rows } = await client.query<{ due: string | null }>(
        `SELECT ${dueOnResultSql({ row: 't.', isError: 't.e', now: '$1::bigint', least: 'LEAST' })} AS due FROM t ORDER BY i`,
        [now],
      );
      expect(rows.map((r) => (r.due === null ? null : Number(r.due)))).toEqual(cases.map(expectedDue));

      await client.query('CREATE TEMP TABLE s (i INTEGER, state_delta SMALLINT, state_kind SMALLINT, state_length BIGINT, above FLOAT8)');
      const elide = elideCases();
      await client.query(`INSERT INTO s SELECT * FROM unnest($1::int[], $2::smallint[], $3::smallint[], $4::bigint[], $5::float8[])`, [
        elide.map((_, i) => i),
        elide.map((c) => c.state_delta),
        elide.map((c) => c.state_kind),
        elide.map((c) => c.state_length),
        elide.map((c) => c.above),
      ]);
      const { rows: elided } = await client.query<{ elided: boolean }>(`SELECT ${elidesStateSql('s.', 's.above')} AS elided FROM s ORDER BY i`);
      expect(elided.map((r) => r.elided)).toEqual(elide.map(expectedElide));

      await client.query('CREATE TEMP TABLE r (i INTEGER, attempts INTEGER, resumes INTEGER, number INTEGER, resume BOOLEAN)');
      const counts = countCases();
      await client.query(`INSERT INTO r SELECT * FROM unnest($1::int[], $2::int[], $3::int[], $4::int[], $5::boolean[])`, [
        counts.map((_, i) => i),
        counts.map((c) => c.attempts),
        counts.map((c) => c.resumes),
        counts.map((c) => c.number),
        counts.map((c) => c.resume === 1),
      ]);
      await client.query(`UPDATE r SET ${runCountsSql({ row: 'r.', number: 'r.number', resume: 'r.resume' })}`);
      const { rows: counted } = await client.query<{ attempts: number; resumes: number }>('SELECT attempts, resumes FROM r ORDER BY i');
      expect(counted).toEqual(counts.map(expectedCounts));
    } finally {
      await client.end();
    }
  });
});
