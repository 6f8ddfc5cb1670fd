// Whether this build has the PostgreSQL store (issue 6), and scratch schemas
// for the benchmarks (created fresh, dropped after).
import pg from 'pg';

export const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The PgStore class of @dispatch/scheduler. */
export async function loadPgStore() {
  const { PgStore } = await import('@dispatch/scheduler');
  return PgStore;
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
export function pgVersion() {
  return pgSetting('server_version');
}

/** A setting of the PostgreSQL server (`SHOW name`), e.g. pgSetting('autovacuum') → 'off'. */
export async function pgSetting(name) {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return Object.values((await c.query(`SHOW ${name}`)).rows[0])[0];
  } finally {
    await c.end();
  }
}
