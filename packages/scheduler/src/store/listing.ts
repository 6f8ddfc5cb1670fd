/**
 * What listing calls means for every store: the page size, the cursor (the
 * `seq` of the last call of the previous page), the counts per state, and
 * the page built from the rows a store read (newest first, one row more
 * than the page to know whether another page follows).
 * @module
 */
import { type CallRecordRow, toCallRecord } from './call-row.js';
import { CALL_STATES, type CallState, type ListFilter, type ListPage } from './store.js';

/**
 * The page size of a listing without `limit`.
 * @example
 * const limit = filter.limit ?? DEFAULT_LIST_LIMIT;
 */
export const DEFAULT_LIST_LIMIT = 100;

/**
 * The largest page of a listing.
 * @example
 * if (limit > MAX_LIST_LIMIT) throw new RangeError('limit too large');
 */
export const MAX_LIST_LIMIT = 1000;

/**
 * The page size of `filter`: its `limit` within 1..{@link MAX_LIST_LIMIT},
 * {@link DEFAULT_LIST_LIMIT} without one.
 * @example
 * listLimit({ limit: 5000 }); // 1000
 */
export function listLimit(filter: Pick<ListFilter, 'limit'>): number {
  return Math.min(MAX_LIST_LIMIT, Math.max(1, filter.limit ?? DEFAULT_LIST_LIMIT));
}

/**
 * The `seq` a cursor names; a cursor that is not one a page gave is a
 * `RangeError` naming it.
 * @example
 * parseCursor('1234'); // 1234
 */
export function parseCursor(cursor: string): number {
  const seq = Number.parseInt(cursor, 10);
  if (!Number.isSafeInteger(seq) || String(seq) !== cursor.trim()) {
    throw new RangeError(`invalid cursor ${JSON.stringify(cursor)}: pass the nextCursor of the previous page`);
  }
  return seq;
}

/**
 * Counts per state from `SELECT state, count(*) AS n ... GROUP BY state`
 * (rows of one state add up), with 0 for the states that have none.
 * @example
 * const counts = countsByState(rows); // { pending: 3, running: 0, ... }
 */
export function countsByState(rows: ReadonlyArray<{ state: CallState; n: number }>): Record<CallState, number> {
  const counts = Object.fromEntries(CALL_STATES.map((s) => [s, 0])) as Record<CallState, number>;
  for (const r of rows) counts[r.state] += Number(r.n); // a state may come in more than one row (the SQLite store counts in parts)
  return counts;
}

/**
 * The page of up to `limit` calls from `rows` (read newest first, at most
 * `limit + 1` of them), and the cursor of the next page if there is one.
 * @example
 * return toListPage(rows, limit, countsByState(countRows));
 */
export function toListPage(rows: ReadonlyArray<CallRecordRow & { seq: number }>, limit: number, counts: Record<CallState, number>): ListPage {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    calls: page.map((r) => toCallRecord(r, false)),
    nextCursor: rows.length > limit && last ? String(last.seq) : null,
    counts,
  };
}
