/**
 * A LIMIT taken from a parameter, for SQLite statements that run often.
 * @module
 */

/**
 * `LIMIT <param>` written so that SQLite plans the statement once. A LIMIT
 * bound straight to a parameter (`LIMIT ?`) is read by SQLite's planner
 * (3.51 here), so every run that binds it plans the statement again: a
 * one-row lookup of a parent's ready results cost 10–17 µs that way against
 * 2.5–3.8 µs with this form (bench/profile-notes.md, "LIMIT ?"). The planner
 * cannot read the value of an expression, so the plan made at prepare time
 * is kept.
 * @example
 * db.prepare(`SELECT seq FROM calls WHERE parent_id = ? ORDER BY seq ${boundLimit()}`).all(id, 10);
 * db.prepare(`SELECT seq FROM calls ORDER BY seq ${boundLimit('@cap')}`).all({ cap: 10 });
 */
export function boundLimit(param = '?'): string {
  return `LIMIT CAST(${param} AS INTEGER)`;
}
