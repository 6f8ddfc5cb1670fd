// Whether this build has the PostgreSQL store (issue 6), and scratch schemas
// for the benchmarks (created fresh, dropped after).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';

export const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * The PgStore class: from the package's public exports when it is exported
 * there, else from pg-store.js next to the package's built entry. Throws
 * with the reason when this build has no PostgreSQL store.
 */
export async function loadPgStore() {
  const pkg = await import('@dispatch/scheduler');
  const exported = pkg.PgStore ?? pkg.PostgresStore;
  if (exported) return exported;
  const file = join(dirname(fileURLToPath(import.meta.resolve('@dispatch/scheduler'))), 'pg-store.js');
  if (!existsSync(file)) throw new Error('this build of @dispatch/scheduler has no PostgreSQL store (no PgStore export, no dist/esm/pg-store.js)');
  const mod = await import(pathToFileURL(file).href);
  if (!mod.PgStore) throw new Error(`${file} does not export PgStore`);
  return mod.PgStore;
}

/** A fresh schema on the machine's PostgreSQL; `url` carries ?schema=; `drop()` removes it. */
export async function scratchSchema(prefix = 'dispatch_bench') {
  const schema = `${prefix}_${process.pid}_${Date.now().toString(36)}`;
  const u = new URL(PG_URL);
  u.searchParams.set('schema', schema);
  return {
    schema,
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

/** PostgreSQL server version, e.g. "15.20". */
export async function pgVersion() {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return (await c.query('SHOW server_version')).rows[0].server_version;
  } finally {
    await c.end();
  }
}
