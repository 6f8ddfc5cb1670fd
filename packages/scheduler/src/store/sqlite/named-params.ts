/**
 * Statements with named parameters, bound by position.
 * @module
 */
import type Database from 'better-sqlite3';

/**
 * A statement written with `@name` parameters and run with an object, as
 * better-sqlite3's named binding is, but bound by position: better-sqlite3
 * looks each name up in the object from C++ (~0.08 µs per parameter here:
 * an UPDATE of nine parameters 1.9–2.1 µs named, 1.2 µs this way), which
 * added up to several µs per call on the store's hot path
 * (bench/profile-notes.md, "named parameters").
 */
export interface NamedStatement<P> {
  /** The prepared statement (its SQL has `?` where the names were). */
  readonly statement: Database.Statement;
  run(params: P): Database.RunResult;
  get(params: P): unknown;
  all(params: P): unknown[];
}

const NAME = /@([A-Za-z_][A-Za-z0-9_]*)/g;

/**
 * Prepares `sql`, whose parameters are all `@name`s (a name may come more
 * than once), for binding from objects of type `P`. With `raw`, rows come
 * as arrays (better-sqlite3's raw mode). The accessor that reads the
 * object is compiled once per statement from the names in the SQL (only
 * identifiers: the pattern above), so a run reads each property directly.
 * As with better-sqlite3's named binding, a property set to `undefined`
 * binds NULL and a missing property throws (a RangeError naming it).
 * @example
 * const finish = namedStatement<{ seq: number; now: number }>(db, 'UPDATE calls SET finished_at = @now, updated_at = @now WHERE seq = @seq');
 * finish.run({ seq: 1, now: Date.now() });
 */
export function namedStatement<P extends object>(db: Database.Database, sql: string, options: { raw?: boolean } = {}): NamedStatement<P> {
  if (sql.includes('?')) throw new Error(`namedStatement takes @name parameters only, not '?': ${sql}`);
  const names: string[] = [];
  const text = sql.replace(NAME, (_, name: string) => {
    names.push(name);
    return '?';
  });
  const statement = db.prepare(text);
  if (options.raw) statement.raw(true);
  // Compiled from the identifiers of our own SQL (NAME), once per statement: a run then reads each property directly.
  // As with named binding: a property set to undefined binds NULL, a missing one is an error.
  const unique = [...new Set(names)];
  const read = unique
    .map((n, i) => `let v${i} = p.${n}; if (v${i} === undefined) { if (!(${JSON.stringify(n)} in p)) missing(${JSON.stringify(n)}); v${i} = null; }`)
    .join(' ');
  const args = names.map((n) => `v${unique.indexOf(n)}`).join(', ');
  const method = (m: string) => `${m}: (p) => { ${read} return s.${m}(${args}); }`;
  const make = new Function('s', 'missing', `return { ${method('run')}, ${method('get')}, ${method('all')} };`) as (
    s: Database.Statement,
    missing: (name: string) => never,
  ) => Omit<NamedStatement<P>, 'statement'>;
  const missing = (name: string): never => {
    throw new RangeError(`missing the parameter @${name} of: ${sql}`);
  };
  return { statement, ...make(statement, missing) };
}
