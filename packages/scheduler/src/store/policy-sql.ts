/**
 * The rules of `policy.ts` that a store must evaluate inside a SQL
 * statement (where reading the row first would cost a round trip or a race),
 * written once in the SQL that SQLite and PostgreSQL both accept. Each is
 * tested against its TypeScript form over every case that matters
 * (`policy-sql.test.ts`: on SQLite, and on PostgreSQL with
 * DISPATCH_TEST_POSTGRES_URL).
 * @module
 */
import { CALL_STATES, type CallState, isFinished } from './store.js';
import { takesResults } from './policy.js';

const sqlList = (states: readonly CallState[]): string => `(${states.map((s) => `'${s}'`).join(',')})`;

/**
 * The finished states as a SQL list: `('succeeded','failed','cancelled')`.
 * @example
 * `SELECT id FROM calls WHERE state NOT IN ${FINISHED_SQL}`
 */
export const FINISHED_SQL = sqlList(CALL_STATES.filter(isFinished));

/**
 * The states in which a call takes its children's results
 * (`takesResults`), as a SQL list.
 * @example
 * `UPDATE calls p SET ready = p.ready + 1 WHERE p.id = $1 AND p.state IN ${WAITING_SQL}`
 */
export const WAITING_SQL = sqlList(CALL_STATES.filter(takesResults));

/**
 * Where the SQL forms find their inputs: `row` prefixes the parent's columns
 * (`''` or an alias with its dot, `'p.'`); the others are SQL expressions
 * (parameters) of the statement.
 * @example
 * dueOnResultSql({ row: 'p.', isError: '$6', now: '$7', least: 'LEAST' })
 */
export interface DueOnResultSql {
  row: string;
  /** 1 when the result is an error (`isErrorResult`), else 0. */
  isError: string;
  now: string;
  /** The dialect's two-argument minimum: `MIN` (SQLite) or `LEAST` (PostgreSQL). */
  least: 'MIN' | 'LEAST';
}

/**
 * `dueAtOnResult` in SQL: the parent's new `due_at` once one more result is
 * in (for `SET due_at = ...` in the statement that counts the result).
 * @example
 * `UPDATE calls SET ready = ready + 1, due_at = ${dueOnResultSql({ row: '', isError: '@e', now: '@now', least: 'MIN' })} WHERE id = @parent`
 */
export function dueOnResultSql(p: DueOnResultSql): string {
  const c = p.row;
  return `CASE WHEN ${wakesOnResultSql(p)}
    THEN ${p.least}(COALESCE(${c}due_at, ${p.now}), ${p.now}) ELSE ${c}due_at END`;
}

/**
 * Whether one more result wakes the parent (`dueAtOnResult` makes it due
 * now): it is suspended and that result is enough for its Poll.
 * @example
 * `UPDATE calls SET state = 'running' WHERE seq = @seq AND ${wakesOnResultSql({ row: '', isError: '@e' })}`
 */
export function wakesOnResultSql(p: Pick<DueOnResultSql, 'row' | 'isError'>): string {
  const c = p.row;
  return `${c}state = 'suspended' AND (${c}ready + 1 >= ${c}poll_min OR (${p.isError} = 1 AND ${c}poll_wake_on_error = 1))`;
}

/**
 * `elidesState` in SQL, over a row's stored state (`state_delta`,
 * `state_kind`, `state_length`): true when a claim may leave the bytes out.
 * @example
 * `CASE WHEN NOT ${elidesStateSql('c.', '$8::float8')} THEN ${bytes} END AS state_value`
 */
export function elidesStateSql(row: string, elideStateAbove: string): string {
  return `(${row}state_delta = 1 AND ${row}state_kind = 2 AND ${row}state_length >= ${elideStateAbove})`;
}

/**
 * `runCountsAfter` in SQL: the `SET` of `attempts` and `resumes` once the
 * run numbered `number` (a parameter, NULL when no run is recorded) is
 * recorded, `resume` being a SQL boolean. `row` prefixes the call's columns.
 * @example
 * `UPDATE calls SET ${runCountsSql({ row: '', number: '$4::int', resume: '$9::boolean' })} WHERE seq = $1`
 */
export function runCountsSql(p: { row: string; number: string; resume: string }): string {
  const counted = `COALESCE(${p.number}, 0) > ${p.row}attempts + ${p.row}resumes`;
  return `attempts = ${p.row}attempts + CASE WHEN ${counted} AND NOT ${p.resume} THEN 1 ELSE 0 END,
    resumes = ${p.row}resumes + CASE WHEN ${counted} AND ${p.resume} THEN 1 ELSE 0 END`;
}
