/**
 * PgStore: the store contract suite (the same one SQLite runs), and what
 * only a store shared by several instances must do: claims that never
 * overlap, leases taken over after expiry, idempotency across instances,
 * migrations racing at startup, notifications, heartbeats.
 *
 * Needs DISPATCH_TEST_POSTGRES_URL (`.ci/run` sets it); each test uses its
 * own schema and drops it.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { dropPgSchema, randomPgSchema } from '../../../test/support/pg-cluster.js';
import { PG_MIGRATIONS, quoteIdent } from './schema.js';
import { parsePgUrl, PgStore, type PgVacuumEvent, redactUrl } from './pg-store.js';
import type { Store, StoreChange } from '../store.js';
import { claimHot, expectJournalServed, hotAndCold, newCall, NOW, storeContract, suspendWithJournal } from '../../../test/support/store-contract/index.js';
import { completion, finished } from '../../../test/support/store-contract/fixtures.js';

const url = process.env.DISPATCH_TEST_POSTGRES_URL;
if (!url) {
  console.warn('PostgreSQL store tests SKIPPED: DISPATCH_TEST_POSTGRES_URL is not set (.ci/run sets it to the local server)');
}

const schemas = new Set<string>();
afterAll(async () => {
  if (!url) return;
  for (const s of schemas) await dropPgSchema(url, s);
});

/** Opens a store on a fresh schema (dropped after the file's tests). */
async function freshStore(
  schema = randomPgSchema(),
  options: { listen?: boolean; preparedStatements?: boolean; poolSize?: number; vacuumEvery?: number } = {},
): Promise<PgStore> {
  schemas.add(schema);
  // Test files run in parallel on one server: keep within max_connections.
  return PgStore.open({ url: url!, schema, poolSize: 3, ...options });
}


/** SQL that takes a schema back to version 5: drops what migrations 6 and later added (signals, schedules, limits and their claim's function, trace context, input stored once). */
function dropAfterV5(schema: string): string {
  return `DROP FUNCTION IF EXISTS ${schema}.limit_allowance; ALTER TABLE ${schema}.calls DROP COLUMN IF EXISTS input_replaced, DROP COLUMN IF EXISTS trace_context, DROP COLUMN IF EXISTS limit_key,
    DROP COLUMN IF EXISTS poll_signals; DROP TABLE IF EXISTS ${schema}.function_limits; DROP TABLE IF EXISTS ${schema}.limit_windows;
    DROP TABLE IF EXISTS ${schema}.schedules; DROP TABLE IF EXISTS ${schema}.signals;`;
}

describe.skipIf(!url)('PgStore', () => {
  const hooks = {
    stateChunks: async (store: Store) => {
      const s = store as PgStore;
      const { rows } = await s.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${s.schema}.call_state_chunks`);
      return rows[0]!.n;
    },
    inputCopies: async (store: Store) => {
      const s = store as PgStore;
      const { rows } = await s.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${s.schema}.calls WHERE original_input IS NOT NULL`);
      return rows[0]!.n;
    },
    sharedByInstances: true,
  };
  storeContract('PgStore', () => freshStore(), hooks);
  storeContract('PgStore (no prepared statements, no LISTEN)', () => freshStore(undefined, { listen: false, preparedStatements: false }), {
    sharedByInstances: true,
  });

  it('parses its own URL parameters and hides passwords in messages', () => {
    expect(parsePgUrl('postgres://u:pw@h:5432/db?schema=s1&pool_size=4&sslmode=disable')).toEqual({
      connectionString: 'postgres://u:pw@h:5432/db?sslmode=disable',
      schema: 's1',
      poolSize: 4,
    });
    expect(parsePgUrl('postgresql://h/db?listen=false&prepared_statements=0&listen_url=postgres%3A%2F%2Fdirect%2Fdb')).toEqual({
      connectionString: 'postgresql://h/db',
      listen: false,
      preparedStatements: false,
      listenUrl: 'postgres://direct/db',
    });
    expect(() => parsePgUrl('postgres://h/db?listen=maybe')).toThrow(/listen in the PostgreSQL URL must be true or false/);
    expect(() => parsePgUrl('mysql://h/db')).toThrow(/postgres:\/\//);
    expect(() => parsePgUrl('postgres://h/db?pool_size=0')).toThrow(/pool_size/);
    expect(parsePgUrl('postgres://h/db?vacuum_every=0')).toEqual({ connectionString: 'postgres://h/db', vacuumEvery: 0 });
    expect(() => parsePgUrl('postgres://h/db?vacuum_every=-1')).toThrow(/vacuum_every in the PostgreSQL URL must be a whole number/);
    expect(redactUrl('postgres://u:secret@h/db')).toBe('postgres://u:***@h/db');
  });

  it('refuses a bad schema name and says why a connection failed', async () => {
    await expect(PgStore.open({ url: url!, schema: 'Bad-Name' })).rejects.toThrow(/schema name must match/);
    await expect(PgStore.open({ url: 'postgres://postgres@127.0.0.1:1/test' })).rejects.toThrow(/cannot connect to PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:1\/test/);
  });

  it('migrates once when eight instances open a new schema at the same time', async () => {
    const schema = randomPgSchema();
    const stores = await Promise.all(Array.from({ length: 8 }, () => freshStore(schema, { poolSize: 1 })));
    const { rows } = await stores[0]!.pool.query(`SELECT version FROM ${schema}.schema_version`);
    expect(rows).toEqual([{ version: PG_MIGRATIONS.length }]);
    await Promise.all(stores.map((s) => s.close()));
    const again = await freshStore(schema);
    const { rows: after } = await again.pool.query(`SELECT count(*)::int AS n FROM ${schema}.schema_version`);
    expect(after).toEqual([{ n: 1 }]);
    await again.close();
  });

  it('upgrades a schema of an older version in place, keeping its calls and their coroutine states', async () => {
    const schema = randomPgSchema();
    const store = await freshStore(schema);
    const call = newCall();
    await suspendWithJournal(store, call);
    // Back to version 1, the state in the row, as an older scheduler left it.
    await store.pool.query(
      `DROP TABLE ${schema}.revoked_sessions; DROP TABLE ${schema}.call_state_chunks; ALTER TABLE ${schema}.calls DROP COLUMN state_length; ${dropAfterV5(schema)} ALTER TABLE ${schema}.calls DROP COLUMN resumes;
      UPDATE ${schema}.calls SET state_value = '\\x010203'::bytea;
      DROP INDEX ${schema}.calls_parent_corr; CREATE INDEX calls_parent ON ${schema}.calls (parent_id, parent_generation) WHERE parent_id IS NOT NULL; UPDATE ${schema}.schema_version SET version = 1`,
    );
    await store.close();
    const again = await freshStore(schema);
    const { rows } = await again.pool.query(`SELECT version FROM ${schema}.schema_version`);
    expect(rows).toEqual([{ version: PG_MIGRATIONS.length }]);
    const { rows: indexes } = await again.pool.query(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND indexname LIKE 'calls_parent%'`, [schema]);
    expect(indexes.map((r) => r.indexname)).toEqual(['calls_parent_corr']);
    const { rows: moved } = await again.pool.query(`SELECT state_value, state_length FROM ${schema}.calls WHERE id = $1`, [call.id]);
    expect(moved).toEqual([{ state_value: null, state_length: 3 }]);
    await expectJournalServed(again, call);
    await again.close();
  });

  it('indexes idempotency keys only where there is one, keeping each key unique (migration 12)', async () => {
    const schema = randomPgSchema();
    const store = await freshStore(schema);
    const keyed = newCall({ idempotencyKey: 'order-1' });
    const plain = newCall();
    await store.insertCalls([keyed, plain]);
    // As migration 11 left it: the column's UNIQUE constraint, NULLs indexed.
    await store.pool.query(
      `DROP INDEX ${schema}.calls_idempotency_key; ALTER TABLE ${schema}.calls ADD CONSTRAINT calls_idempotency_key_key UNIQUE (idempotency_key);
      UPDATE ${schema}.schema_version SET version = 11`,
    );
    await store.close();
    const again = await freshStore(schema);
    const { rows } = await again.pool.query(`SELECT version FROM ${schema}.schema_version`);
    expect(rows).toEqual([{ version: PG_MIGRATIONS.length }]);
    const { rows: indexes } = await again.pool.query(`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND indexdef LIKE '%(idempotency_key)%' AND tablename = 'calls'`, [schema]);
    expect(indexes).toHaveLength(1);
    expect(indexes[0]!.indexname).toBe('calls_idempotency_key');
    expect(indexes[0]!.indexdef).toMatch(/UNIQUE INDEX .* WHERE \(idempotency_key IS NOT NULL\)/);
    const { rows: constraints } = await again.pool.query(`SELECT conname FROM pg_constraint WHERE conrelid = '${schema}.calls'::regclass AND contype = 'u'`);
    expect(constraints.map((c) => c.conname)).toEqual(['calls_id_key']);
    // The key still answers the first dispatch ID, in a batch too; calls without a key are many.
    const retry = newCall({ idempotencyKey: 'order-1' });
    expect(await again.insertCalls([retry, newCall(), newCall()])).toEqual([keyed.id, expect.any(String), expect.any(String)]);
    expect(await again.getCall(plain.id)).toMatchObject({ id: plain.id });
    const { rows: count } = await again.pool.query(`SELECT count(*)::int AS n FROM ${schema}.calls`);
    expect(count).toEqual([{ n: 4 }]);
    await again.close();
  });

  it('counts the runs of a version-4 schema apart, attempts and resumes (migration 5)', async () => {
    const schema = randomPgSchema();
    const store = await freshStore(schema);
    const call = newCall();
    await store.insertCalls([call]);
    // As an older scheduler left it: every run counted in attempts, and a retry of a resume marked as a resume.
    await store.pool.query(
      `${dropAfterV5(schema)} ALTER TABLE ${schema}.calls DROP COLUMN resumes; UPDATE ${schema}.schema_version SET version = 4;
      UPDATE ${schema}.calls SET attempts = 4;
      INSERT INTO ${schema}.attempts (call_id, number, started_at, duration_ms, status, outcome, resume) VALUES
        ('${call.id}', 1, 0, 1, 0, 'suspend', false), ('${call.id}', 2, 0, 1, 0, 'retry', true),
        ('${call.id}', 3, 0, 1, 0, 'suspend', true), ('${call.id}', 4, 0, 1, 0, 'exit', true)`,
    );
    await store.close();
    const again = await freshStore(schema);
    const { rows } = await again.pool.query(`SELECT version FROM ${schema}.schema_version`);
    expect(rows).toEqual([{ version: PG_MIGRATIONS.length }]);
    expect(await again.getCall(call.id)).toMatchObject({ attempts: 2, resumes: 2 });
    expect((await again.getAttempts(call.id)).map((a) => a.resume)).toEqual([false, true, false, true]);
    await again.close();
  });

  it('refuses a schema written by a newer scheduler', async () => {
    const schema = randomPgSchema();
    const store = await freshStore(schema);
    await store.pool.query(`UPDATE ${schema}.schema_version SET version = 999`);
    await store.close();
    await expect(freshStore(schema)).rejects.toThrow(/version 999, newer than this scheduler knows/);
  });

  it('never leases one call to two instances: 2,000 calls, four instances claiming concurrently', async () => {
    const schema = randomPgSchema();
    const stores = await Promise.all(Array.from({ length: 4 }, () => freshStore(schema)));
    const now = Date.now();
    const calls = Array.from({ length: 2000 }, (_, i) => newCall({ function: `f${i % 3}` }, now));
    await stores[0]!.insertCalls(calls);
    const seen = new Map<string, string>();
    await Promise.all(
      stores.map(async (store, i) => {
        for (;;) {
          const { calls: got } = await store.claimDue({ owner: `o${i}`, now, leaseMs: 60_000, limit: 37, capacity: () => 50 });
          if (got.length === 0) return;
          for (const c of got) {
            expect(seen.get(c.id)).toBeUndefined();
            seen.set(c.id, `o${i}`);
          }
        }
      }),
    );
    expect(seen.size).toBe(2000);
    expect(new Set(seen.values()).size).toBeGreaterThan(1);
    await Promise.all(stores.map((s) => s.close()));
  });

  /** Claims `n` calls as `owner` in batches of 50 and finishes each; answers the store's vacuum events. */
  async function churn(store: PgStore, owner: string, n: number, events: PgVacuumEvent[]): Promise<void> {
    const now = Date.now();
    await store.insertCalls(Array.from({ length: n }, () => newCall({}, now)));
    for (;;) {
      const { calls } = await store.claimDue({ owner, now, leaseMs: 60_000, limit: 50, capacity: () => 50 });
      if (calls.length === 0) break;
      await Promise.all(calls.map((c) => store.complete(completion(c.id, c.leaseToken, now, finished(), { owner }))));
    }
    expect(events.filter((e) => e.outcome === 'failed')).toEqual([]);
  }

  async function vacuumCount(store: PgStore): Promise<number> {
    const { rows } = await store.pool.query<{ n: string }>(
      `SELECT vacuum_count AS n FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'calls'`,
      [store.schema],
    );
    return Number(rows[0]?.n ?? 0);
  }

  it('vacuums its calls table every `vacuumEvery` calls claimed or completed, in the background; never with 0', async () => {
    const store = await freshStore(undefined, { vacuumEvery: 100 });
    const events: PgVacuumEvent[] = [];
    store.onVacuum((e) => events.push(e));
    await churn(store, 'a', 60, events); // 120 claimed or completed: one vacuum
    await store.close(); // waits for the vacuum in flight
    expect(events.map((e) => e.outcome)).toEqual(['done']);
    const reopened = await freshStore(store.schema, { vacuumEvery: 100 });
    expect(await vacuumCount(reopened)).toBe(1);
    await reopened.close();

    const off = await freshStore(undefined, { vacuumEvery: 0 });
    const none: PgVacuumEvent[] = [];
    off.onVacuum((e) => none.push(e));
    await churn(off, 'a', 200, none);
    await off.close();
    expect(none).toEqual([]);
    const check = await freshStore(off.schema);
    expect(await vacuumCount(check)).toBe(0);
    await check.close();
  });

  it('counts its share of `vacuumEvery`: the calls divided among the live instances its heartbeat sees', async () => {
    const schema = randomPgSchema();
    const [a, b] = await Promise.all([freshStore(schema, { vacuumEvery: 100 }), freshStore(schema, { vacuumEvery: 100 })]);
    const now = Date.now();
    await a!.heartbeat({ owner: 'a', now, ttlMs: 60_000 });
    expect(await b!.heartbeat({ owner: 'b', now, ttlMs: 60_000 })).toBe(2);
    const events: PgVacuumEvent[] = [];
    b!.onVacuum((e) => events.push(e));
    await churn(b!, 'b', 30, events); // 60 claimed or completed: past its share of 50, not past 100
    await Promise.all([a!.close(), b!.close()]);
    expect(events.map((e) => e.outcome)).toEqual(['done']);
  });

  it('warns once and vacuums no more when its role does not own the table (and the calls still run)', async () => {
    const owner = await freshStore();
    const role = `dispatch_t_${randomBytes(4).toString('hex')}`;
    const db = new URL(url!).pathname.slice(1);
    const admin = owner.pool;
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    try {
      await admin.query(`GRANT CREATE ON DATABASE ${quoteIdent(db)} TO ${role}`);
      await admin.query(`GRANT USAGE, CREATE ON SCHEMA ${owner.schema} TO ${role}`);
      await admin.query(`GRANT ALL ON ALL TABLES IN SCHEMA ${owner.schema} TO ${role}`);
      await admin.query(`GRANT ALL ON ALL SEQUENCES IN SCHEMA ${owner.schema} TO ${role}`);
      await admin.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${owner.schema} TO ${role}`);
      const asRole = new URL(url!);
      asRole.username = role;
      asRole.password = '';
      const store = await PgStore.open({ url: asRole.toString(), schema: owner.schema, poolSize: 2, vacuumEvery: 20, listen: false });
      const warnings: string[] = [];
      store.onTrouble((m) => warnings.push(m));
      const events: PgVacuumEvent[] = [];
      store.onVacuum((e) => events.push(e));
      const now = Date.now();
      await store.insertCalls(Array.from({ length: 60 }, () => newCall({}, now)));
      for (;;) {
        const { calls } = await store.claimDue({ owner: 'r', now, leaseMs: 60_000, limit: 10, capacity: () => 10 });
        if (calls.length === 0) break;
        for (const c of calls) expect(await store.complete(completion(c.id, c.leaseToken, now, finished(), { owner: 'r' }))).toBe(true);
      }
      await store.close();
      expect(events).toEqual([{ outcome: 'failed', durationMs: expect.any(Number), error: 'the role does not own the table' }]);
      expect(warnings).toEqual([expect.stringMatching(/does not own .*calls, so it cannot vacuum it.*vacuum_every=0/)]);
      expect(await vacuumCount(owner)).toBe(0);
    } finally {
      await admin.query(`DROP SCHEMA ${owner.schema} CASCADE`);
      await admin.query(`REVOKE CREATE ON DATABASE ${quoteIdent(db)} FROM ${role}`);
      await admin.query(`DROP ROLE ${role}`);
      await owner.close();
    }
  });

  it('leaves the vacuum to the instance already vacuuming (an advisory lock per schema), and tries again later', async () => {
    const store = await freshStore(undefined, { vacuumEvery: 50 });
    const events: PgVacuumEvent[] = [];
    store.onVacuum((e) => events.push(e));
    // Another instance holds the schema's vacuum lock.
    const other = await store.pool.connect();
    const key = `dispatch vacuum ${store.schema}`;
    expect((await other.query('SELECT pg_try_advisory_lock(hashtext($1)) AS got', [key])).rows[0].got).toBe(true);
    await churn(store, 'a', 30, events);
    await vi.waitFor(() => expect(events.map((e) => e.outcome)).toEqual(['skipped']));
    expect(await vacuumCount(store)).toBe(0);
    await other.query('SELECT pg_advisory_unlock(hashtext($1))', [key]);
    other.release();
    // At most one vacuum a second: the next comes after it, once 50 more calls churned.
    await new Promise((r) => setTimeout(r, 1100));
    await churn(store, 'a', 30, events);
    await store.close();
    expect(events.map((e) => e.outcome)).toEqual(['skipped', 'done']);
  });

  it('holds a concurrency limit across four instances claiming and completing at once (issue 16)', async () => {
    const schema = randomPgSchema();
    const stores = await Promise.all(Array.from({ length: 4 }, () => freshStore(schema)));
    const limits = { spec: { concurrency: 3, concurrencyPerKey: false, rateCount: 0, ratePeriodMs: 0, ratePerKey: false }, key: '' };
    const calls = Array.from({ length: 60 }, () => newCall({ function: 'capped', limits }, Date.now()));
    await stores[0]!.insertCalls(calls);
    let running = 0;
    let most = 0;
    let done = 0;
    await Promise.all(
      stores.map(async (store, i) => {
        while (done < calls.length) {
          const { calls: got } = await store.claimDue({ owner: `o${i}`, now: Date.now(), leaseMs: 60_000, limit: 10, capacity: () => 10 });
          running += got.length;
          most = Math.max(most, running);
          expect(running).toBeLessThanOrEqual(3);
          await new Promise((r) => setImmediate(r));
          for (const c of got) {
            // Counted out before the completion commits: the count here never runs ahead of the store's.
            running--;
            expect(await store.complete(completion(c.id, c.leaseToken, Date.now(), finished(), { owner: `o${i}` }))).toBe(true);
            done++;
          }
        }
      }),
    );
    expect(done).toBe(60);
    expect(most).toBe(3);
    await Promise.all(stores.map((s) => s.close()));
  });

  it('starts at most `rateCount` calls per window across four instances claiming at once (issue 16)', async () => {
    const schema = randomPgSchema();
    const stores = await Promise.all(Array.from({ length: 4 }, () => freshStore(schema)));
    const limits = { spec: { concurrency: 0, concurrencyPerKey: false, rateCount: 10, ratePeriodMs: 600_000, ratePerKey: false }, key: '' };
    await stores[0]!.insertCalls(Array.from({ length: 40 }, () => newCall({ function: 'paced', limits }, Date.now())));
    let started = 0;
    await Promise.all(
      stores.map(async (store, i) => {
        // One call a claim: many claims race for the window.
        for (let n = 0; n < 15; n++) {
          const { calls } = await store.claimDue({ owner: `o${i}`, now: Date.now(), leaseMs: 60_000, limit: 1, capacity: () => 1 });
          started += calls.length;
          // Completed at once: a start counts against the window however short the run.
          for (const c of calls) expect(await store.complete(completion(c.id, c.leaseToken, Date.now(), finished(), { owner: `o${i}` }))).toBe(true);
        }
      }),
    );
    expect(started).toBe(10);
    await Promise.all(stores.map((s) => s.close()));
  });

  it('claims by the limits as declared now when another instance changed them (issue 16)', async () => {
    const schema = randomPgSchema();
    // Without LISTEN, a does not hear that b declared new limits: its copy of them is stale.
    const [a, b] = await Promise.all([freshStore(schema, { listen: false }), freshStore(schema)]);
    const spec = { concurrency: 1, concurrencyPerKey: false, rateCount: 0, ratePeriodMs: 0, ratePerKey: false };
    const now = Date.now();
    await a!.insertCalls(Array.from({ length: 3 }, () => newCall({ function: 'changing', limits: { spec, key: '' } }, now)));
    expect((await a!.claimDue({ owner: 'a', now, leaseMs: 60_000, limit: 10, capacity: () => 10 })).calls).toHaveLength(1);
    await b!.insertCalls([newCall({ function: 'changing', limits: { spec: { ...spec, concurrency: 3 }, key: '' } }, now)]);
    expect((await a!.claimDue({ owner: 'a', now: now + 1, leaseMs: 60_000, limit: 10, capacity: () => 10 })).calls).toHaveLength(2);
    // a has read the limits again (3 running: nothing to claim); then b makes them per key.
    expect((await a!.claimDue({ owner: 'a', now: now + 2, leaseMs: 60_000, limit: 10, capacity: () => 10 })).calls).toEqual([]);
    const perKey = { ...spec, concurrency: 1, concurrencyPerKey: true };
    await b!.insertCalls([
      newCall({ function: 'changing', limits: { spec: perKey, key: 'k1' } }, now),
      newCall({ function: 'changing', limits: { spec: perKey, key: 'k1' } }, now),
      newCall({ function: 'changing', limits: { spec: perKey, key: 'k2' } }, now),
    ]);
    const got = (await a!.claimDue({ owner: 'a', now: now + 3, leaseMs: 60_000, limit: 10, capacity: () => 10 })).calls;
    expect((await Promise.all(got.map(async (c) => (await a!.getCall(c.id))!.limitKey))).sort()).toEqual(['k1', 'k2']);
    await Promise.all([a!.close(), b!.close()]);
  });

  it('takes over an expired lease from a dead instance; the dead one cannot record its result', async () => {
    const schema = randomPgSchema();
    const [a, b] = await Promise.all([freshStore(schema), freshStore(schema)]);
    const now = Date.now();
    const call = newCall({}, now);
    await a!.insertCalls([call]);
    const [leased] = (await a!.claimDue({ owner: 'a', now, leaseMs: 1000, limit: 10, capacity: () => 10 })).calls;
    await a!.renewLeases('a', [call.id], now + 2000);
    expect((await b!.claimDue({ owner: 'b', now: now + 1500, leaseMs: 1000, limit: 10, capacity: () => 10 })).calls).toEqual([]);
    expect(await b!.stats(now + 1500)).toMatchObject({ running: 1, expiredLeases: 0, due: 0 });
    expect(await b!.stats(now + 2000)).toMatchObject({ running: 1, expiredLeases: 1, due: 0 });
    // a stops renewing (it died); b claims once the lease expires.
    const [taken] = (await b!.claimDue({ owner: 'b', now: now + 2000, leaseMs: 1000, limit: 10, capacity: () => 10 })).calls;
    expect(taken?.id).toBe(call.id);
    await a!.renewLeases('a', [call.id], now + 10_000); // too late: no longer a's
    const finish = (store: PgStore, owner: string, leaseToken: number) =>
      store.complete({
        id: call.id,
        owner,
        leaseToken,
        now: now + 2500,
        attempt: { number: 1, startedAt: now, durationMs: 1, status: 1, outcome: 'exit', error: null, resume: false },
        delivered: [],
        outcome: { kind: 'finish', status: 1, output: null, error: null },
      });
    expect(await Promise.all([finish(a!, 'a', leased!.leaseToken), finish(b!, 'b', taken!.leaseToken)])).toEqual([false, true]);
    expect((await a!.getCall(call.id))?.state).toBe('succeeded');
    expect(await b!.finishedAmong([call.id, 'unknown'])).toEqual([call.id]);
    await Promise.all([a!.close(), b!.close()]);
  });

  it('answers the original dispatch ID for an idempotency key raced by several instances', async () => {
    const schema = randomPgSchema();
    const stores = await Promise.all(Array.from({ length: 4 }, () => freshStore(schema)));
    for (let round = 0; round < 20; round++) {
      const key = `key-${round}`;
      const answers = await Promise.all(
        stores.flatMap((s) => [s.insertCalls([newCall({ idempotencyKey: key })]), s.insertCalls([newCall(), newCall({ idempotencyKey: key })])]),
      );
      const winners = new Set(answers.map((ids) => ids[ids.length - 1]));
      expect(winners.size).toBe(1);
    }
    const { rows } = await stores[0]!.pool.query(`SELECT count(*)::int AS n FROM ${schema}.calls WHERE idempotency_key IS NOT NULL`);
    expect(rows[0].n).toBe(20);
    await Promise.all(stores.map((s) => s.close()));
  });

  it('consumes each signal once when several instances signal one waiting call at once (issue 15)', async () => {
    const schema = randomPgSchema();
    const stores = await Promise.all(Array.from({ length: 3 }, () => freshStore(schema)));
    const call = newCall();
    await stores[0]!.insertCalls([call]);
    const [leased] = (await stores[0]!.claimDue({ owner: 'a', now: NOW, leaseMs: 60_000, limit: 10, capacity: () => 10 })).calls;
    const waits = [
      { correlationId: 1n, name: 'x' },
      { correlationId: 2n, name: 'x' },
    ];
    await stores[0]!.complete({
      id: call.id,
      owner: 'a',
      leaseToken: leased!.leaseToken,
      now: NOW,
      attempt: null,
      delivered: [],
      outcome: { kind: 'suspend', status: 0, state: null, stateIsDelta: false, calls: [], minResults: 1, maxResults: 10, deadline: NOW + 3_600_000, wakeOnError: false, pollError: null, signalWaits: waits },
    });
    // Twelve signals, four from each instance, all at once: two waits, so two are consumed and ten are kept.
    const answers = await Promise.all(
      stores.flatMap((s, i) => Array.from({ length: 4 }, (_, j) => s.signal({ callId: call.id, name: 'x', payload: null, now: NOW + 1 + i * 4 + j }))),
    );
    expect(answers.filter((a) => a.kind === 'delivered')).toHaveLength(2);
    expect(answers.filter((a) => a.kind === 'kept')).toHaveLength(10);
    const { rows } = await stores[0]!.pool.query(`SELECT state, count(*)::int AS n FROM ${schema}.signals GROUP BY state ORDER BY state`);
    expect(rows).toEqual([
      { state: 0, n: 10 },
      { state: 1, n: 2 },
    ]);
    expect(await stores[1]!.getCall(call.id)).toMatchObject({ ready: 2 });
    const [resumed] = (await stores[2]!.claimDue({ owner: 'c', now: NOW + 20, leaseMs: 60_000, limit: 10, capacity: () => 10 })).calls;
    expect(resumed!.resume!.results.map((r) => r.correlationId).sort()).toEqual([1n, 2n]);
    await Promise.all(stores.map((s) => s.close()));
  });

  it('tells other instances that work is due, and that calls finished while one of them waits (LISTEN/NOTIFY)', async () => {
    const schema = randomPgSchema();
    const [a, b] = await Promise.all([freshStore(schema), freshStore(schema)]);
    const heard: StoreChange[] = [];
    const ownHeard: StoreChange[] = [];
    b!.subscribe((c) => heard.push(c));
    a!.subscribe((c) => ownHeard.push(c));
    await until(() => b!.listening && a!.listening);
    const now = Date.now();
    const finish = async (call: ReturnType<typeof newCall>) => {
      await a!.insertCalls([call]);
      const leased = (await a!.claimDue({ owner: 'a', now, leaseMs: 10_000, limit: 10, capacity: () => 10 })).calls.find((c) => c.id === call.id);
      expect(await a!.complete(completion(call.id, leased!.leaseToken, now, finished()))).toBe(true);
    };
    const heardFinished = (id: string) => heard.some((c) => c.kind === 'finished' && c.id === id);
    // Nobody waits: b hears that work is due, not which calls finished (no statement is spent on them).
    const quiet = newCall({}, now);
    await finish(quiet);
    await until(() => heard.some((c) => c.kind === 'due'));
    const marker = newCall({}, now);
    heard.length = 0;
    await a!.insertCalls([marker]);
    await until(() => heard.some((c) => c.kind === 'due'));
    await new Promise((r) => setTimeout(r, 50));
    expect(heard.filter((c) => c.kind === 'finished')).toEqual([]);
    // b waits: a sends what finished lately (the call b may have read before it finished), then each call it finishes.
    b!.waiting();
    await until(() => heardFinished(quiet.id));
    const watched = newCall({}, now);
    await finish(watched);
    await until(() => heardFinished(watched.id));
    expect(ownHeard).toEqual([]); // an instance ignores its own notifications
    await Promise.all([a!.close(), b!.close()]);
  });

  it('sends every finished call when it cannot hear who waits (listen: false)', async () => {
    const schema = randomPgSchema();
    const b = await freshStore(schema);
    const a = await freshStore(schema, { listen: false });
    const heard: StoreChange[] = [];
    b.subscribe((c) => heard.push(c));
    await until(() => b.listening);
    const now = Date.now();
    const call = newCall({}, now);
    await a.insertCalls([call]);
    const [leased] = (await a.claimDue({ owner: 'a', now, leaseMs: 10_000, limit: 1, capacity: () => 1 })).calls;
    expect(await a.complete(completion(call.id, leased!.leaseToken, now, finished()))).toBe(true);
    await until(() => heard.some((c) => c.kind === 'finished' && c.id === call.id));
    await Promise.all([a.close(), b.close()]);
  });

  it('reconnects its LISTEN connection when the server drops it', async () => {
    const schema = randomPgSchema();
    const [a, b] = await Promise.all([freshStore(schema), freshStore(schema)]);
    const warnings: string[] = [];
    b!.onTrouble((m) => warnings.push(m));
    const heard: StoreChange[] = [];
    b!.subscribe((c) => heard.push(c));
    await until(() => b!.listening);
    await a!.pool.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'LISTEN "dispatch_${schema}"' AND pid <> pg_backend_pid()`,
    );
    await until(() => warnings.some((w) => /LISTEN connection to PostgreSQL was lost/.test(w)));
    await until(() => b!.listening && heard.some((c) => c.kind === 'due'));
    heard.length = 0;
    await a!.insertCalls([newCall()]);
    await until(() => heard.some((c) => c.kind === 'due'));
    await Promise.all([a!.close(), b!.close()]);
  });

  it('counts in its stats the instances heard from within the TTL (heartbeats themselves: the store contract)', async () => {
    const store = await freshStore();
    const now = Date.now();
    expect(await store.heartbeat({ owner: 'a', now, ttlMs: 1000 })).toBe(1);
    expect(await store.heartbeat({ owner: 'b', now, ttlMs: 1000 })).toBe(2);
    expect(await store.heartbeat({ owner: 'c', now: now + 500, ttlMs: 1000 })).toBe(3);
    expect((await store.stats(now + 1000, 1000)).instances).toBe(3);
    expect((await store.stats(now + 1300, 1000)).instances).toBe(1); // a and b are silent since `now`
    await store.leave('c');
    expect((await store.stats(now + 1300, 1000)).instances).toBe(0);
    await store.close();
  });

  it('claims with the (endpoint, function, due_at) index and stays flat with 100,000 pending calls', async () => {
    const store = await freshStore();
    for (let chunk = 0; chunk < 10; chunk++) await store.insertCalls(hotAndCold(10_000, NOW, chunk * 10_000));
    await store.pool.query(`ANALYZE ${store.schema}.calls`);
    const { rows } = await store.pool.query(
      `EXPLAIN SELECT seq FROM ${store.schema}.calls WHERE endpoint = 'e' AND function = 'f' AND due_at <= 0 ORDER BY due_at LIMIT 5`,
    );
    expect(rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/calls_due/);
    // The claim as the store sends it, captured to be explained below.
    let claimSql: { text: string; values: unknown[] } | undefined;
    const query = store.pool.query.bind(store.pool);
    Object.assign(store.pool, {
      query: (config: unknown, ...rest: unknown[]) => {
        const c = config as { text?: string; values?: unknown[] };
        if (typeof c === 'object' && c?.text?.includes('FOR UPDATE SKIP LOCKED') && c.text.includes("SET state = 'running'")) claimSql = { text: c.text, values: c.values ?? [] };
        return (query as (...a: unknown[]) => unknown)(config, ...rest);
      },
    });
    const { calls, nextDueAt } = await claimHot(store);
    Object.assign(store.pool, { query });
    expect(calls).toHaveLength(50);
    expect(calls.every((c) => c.function === 'hot')).toBe(true);
    expect(nextDueAt).toBe(NOW);
    const stats = await store.stats(NOW);
    expect(stats).toMatchObject({ due: 9_950, running: 50, expiredLeases: 0 });
    expect((await store.listCalls({ limit: 1 })).counts).toMatchObject({ pending: 99_950, running: 50 });
    // Flat: the same claim, run again under EXPLAIN ANALYZE (and rolled back),
    // reads about the rows it claims, through indexes, not the 100,000 pending
    // calls nor the 9,950 due ones.
    expect(claimSql, 'the claim query was not seen').toBeDefined();
    const client = await store.pool.connect();
    let plan: PlanNode;
    try {
      await client.query('BEGIN');
      const explained = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${claimSql!.text}`, claimSql!.values);
      plan = explained.rows[0]!['QUERY PLAN'][0].Plan;
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    const onCalls = planNodes(plan).filter((n) => n['Relation Name'] === 'calls');
    expect(onCalls.length).toBeGreaterThan(0);
    expect(onCalls.map((n) => n['Node Type'])).not.toContain('Seq Scan');
    const read = (n: PlanNode) => (n['Actual Rows'] + (n['Rows Removed by Filter'] ?? 0)) * n['Actual Loops'];
    const rowsRead = onCalls.reduce((sum, n) => sum + read(n), 0);
    const summary = `the claim of 50 calls read ${rowsRead} rows of calls: ${onCalls.map((n) => `${n['Node Type']}${n['Index Name'] ? ` on ${n['Index Name']}` : ''} ${read(n)}`).join(', ')}`;
    expect(rowsRead, summary).toBeGreaterThanOrEqual(50);
    expect(rowsRead, summary).toBeLessThanOrEqual(10 * 50); // 150 today; 10,050 when the claim sorts the due calls
    await store.close();
  }, 60_000);
});

/** A node of PostgreSQL's `EXPLAIN (ANALYZE, FORMAT JSON)` plan. */
interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

/** The nodes of a plan, depth first. */
function planNodes(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(planNodes)];
}

async function until(predicate: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

