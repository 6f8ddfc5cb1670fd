/**
 * PostgreSQL faults with real processes: the scheduler (`dispatch serve` of
 * the built CLI) on PostgreSQL, the app (fixtures/work-app.mjs) in its own
 * process, 3,000 calls of a 50 ms function dispatched through the SDK's
 * client in batches of 100 while
 * - every connection of the test's database is terminated every 100 ms for
 *   6 s (`pg_terminate_backend`, from a separate connection), or
 * - a private PostgreSQL server (initdb + pg_ctl in a temp dir, as user
 *   postgres, never the shared server) is stopped and started again mid-run.
 * Every dispatch is accepted (the client's own retries, with keys it
 * generates), the scheduler outlives it, every call succeeds with its result
 * recorded once, the function ran exactly 3,000 times (the app's side-effect
 * log), and the LISTEN connection is back.
 *
 * Needs DISPATCH_TEST_POSTGRES_URL (`.ci/run` sets it) and a build.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DispatchClient } from '@dispatch/core';
import { PgStore } from '@dispatch/scheduler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, killAll, type Proc, requireBuilt, tempDir, until } from '../e2e/helpers/processes.js';
import { canRunPrivatePg, countLines, dispatchPaced, type PrivatePg, startApp, startPrivatePg, startScheduler, watchDispatches } from './helpers/faults.js';

const url = process.env.DISPATCH_TEST_POSTGRES_URL;
if (!url) console.warn('PostgreSQL fault tests SKIPPED: DISPATCH_TEST_POSTGRES_URL is not set (.ci/run sets it to the local server)');

const TOTAL = 3000;
const BATCH = 100;

const procs: Array<Proc | undefined> = [];
const stores: PgStore[] = [];
const tmp = tempDir('faults-pg');
let cluster: PrivatePg | undefined;
const schemas: Array<{ url: string; schema: string }> = [];

beforeAll(() => requireBuilt());
afterAll(async () => {
  await killAll(procs);
  for (const { url: u, schema } of schemas) {
    const s = await PgStore.open({ url: u, schema, poolSize: 1, listen: false }).catch(() => null);
    await s?.pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await s?.close();
  }
  for (const s of stores) await s.close().catch(() => {});
  await cluster?.remove();
  tmp.remove();
}, 120_000);

/** Opens a store on the schema, for the test's own queries. */
async function open(u: string, schema: string, poolSize = 2): Promise<PgStore> {
  const s = await PgStore.open({ url: u, schema, poolSize, listen: false });
  s.onTrouble(() => {});
  stores.push(s);
  return s;
}

/** Waits for every call, then checks: all succeeded, none doubled, one finishing attempt each, the function ran once per call. */
async function verify(store: PgStore, schema: string, ids: string[], counter: string) {
  await until(
    async () => (await store.pool.query(`SELECT count(*)::int AS n FROM "${schema}".calls WHERE state = 'succeeded'`)).rows[0].n >= TOTAL,
    `${TOTAL} calls succeeded`,
    90_000,
  );
  expect(new Set(ids).size).toBe(TOTAL);
  const { rows: states } = await store.pool.query<{ state: string; n: number }>(`SELECT state, count(*)::int AS n FROM "${schema}".calls GROUP BY state`);
  expect(states).toEqual([{ state: 'succeeded', n: TOTAL }]);
  const { rows: attempts } = await store.pool.query<{ calls: number; exits: number; total: number; max: number }>(
    `SELECT count(*)::int AS calls, sum(exits)::int AS exits, sum(n)::int AS total, max(exits)::int AS max FROM (
      SELECT call_id, count(*) FILTER (WHERE outcome = 'exit') AS exits, count(*) AS n FROM "${schema}".attempts GROUP BY call_id) a`,
  );
  // Recorded once: one finishing attempt per call.
  expect(attempts[0]).toMatchObject({ calls: TOTAL, exits: TOTAL, max: 1 });
  const counts = countLines(counter);
  const executions = [...counts.values()].reduce((a, b) => a + b, 0);
  const twice = [...counts.entries()].filter(([, n]) => n > 1).map(([k]) => k);
  expect(twice).toEqual([]);
  expect(counts.size).toBe(TOTAL);
  expect(executions).toBe(TOTAL);
  return { executions, attemptsRecorded: attempts[0]!.total };
}

/** Waits until the scheduler's LISTEN connection is there (it reconnects by itself). */
async function listening(store: PgStore, schema: string): Promise<void> {
  await until(
    async () =>
      (
        await store.pool.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'dispatch-scheduler' AND query ILIKE $1`,
          [`LISTEN "dispatch_${schema}"%`],
        )
      ).rows[0].n >= 1,
    'the scheduler LISTENing again',
    30_000,
  );
}

/** Lines of the scheduler's log about the store failing, for the report. */
function storeLog(proc: Proc) {
  return {
    recordRetries: proc.all.filter((l) => /recording the result of .* failed/.test(l)).length,
    recordedAfterRetry: proc.all.filter((l) => /recorded the result of .* after \d+ tries/.test(l)).length,
    claimOutages: proc.all.filter((l) => /claiming due calls failed/.test(l)).length,
    unhandled: proc.all.filter((l) => /Unhandled|uncaught/i.test(l)).length,
  };
}

describe.skipIf(!url)('PostgreSQL faults', () => {
  it('3,000 calls while every connection is terminated every 100 ms for 6 s: all accepted, the scheduler alive, each call run and recorded once', { timeout: 150_000 }, async () => {
    const schema = `faults_${randomBytes(5).toString('hex')}`;
    schemas.push({ url: url!, schema });
    const counter = join(tmp.dir, 'kill-side-effects.log');
    const { proc: scheduler, ready } = await startScheduler(`${url}?schema=${schema}`, await freePort(), tmp.dir);
    procs.push(scheduler);
    const { proc: app, endpoint } = await startApp(ready, counter, tmp.dir);
    procs.push(app);
    const client = new DispatchClient({ apiUrl: ready.url, apiKey: ready.apiKey });

    // The killer: a connection of its own, terminating every other connection of the database.
    const killer = await open(url!, schema, 1);
    let rounds = 0;
    let terminated = 0;
    const storm = (async () => {
      const end = Date.now() + 6000;
      while (Date.now() < end) {
        const { rows } = await killer.pool.query<{ n: number }>(
          'SELECT count(*) FILTER (WHERE t)::int AS n FROM (SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()) k',
        );
        rounds++;
        terminated += rows[0]!.n;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const started = Date.now();
    const watch = watchDispatches();
    const ids = await dispatchPaced(client, endpoint, { total: TOTAL, batch: BATCH, everyMs: 180, prefix: 'k' })
      .catch((err) => {
        throw new Error(`${(err as Error).message}\nscheduler output:\n${scheduler.text().slice(-4000)}`);
      })
      .finally(watch.stop);
    const acceptedMs = Date.now() - started;
    await storm;
    expect(ids).toHaveLength(TOTAL);
    expect(terminated).toBeGreaterThan(rounds); // the storm did kill the scheduler's connections

    const store = await open(url!, schema);
    const figures = await verify(store, schema, ids, counter);
    expect(scheduler.child.exitCode, scheduler.text().slice(-3000)).toBeNull();
    const health = (await (await fetch(`${ready.url}/healthz`)).json()) as { status: string; store: { ok: boolean } };
    expect(health).toMatchObject({ status: 'ok', store: { ok: true } });
    await listening(store, schema);
    const log = storeLog(scheduler);
    expect(log.unhandled).toBe(0);
    console.log(
      `[faults] pg kill storm: ${JSON.stringify({ calls: TOTAL, killRounds: rounds, connectionsTerminated: terminated, dispatchedInMs: acceptedMs, dispatch: watch.traffic, ...figures, ...log })}`,
    );

    scheduler.kill('SIGTERM');
    expect(await scheduler.exited).toBe(0);
  });

  it.skipIf(!canRunPrivatePg())(
    '3,000 calls while a private PostgreSQL server is stopped and started again: all accepted, each call run and recorded once, LISTEN back',
    { timeout: 150_000 },
    async () => {
      cluster = await startPrivatePg();
      const schema = 'dispatch';
      const counter = join(tmp.dir, 'restart-side-effects.log');
      const { proc: scheduler, ready } = await startScheduler(`${cluster.url}?schema=${schema}`, await freePort(), tmp.dir);
      procs.push(scheduler);
      const { proc: app, endpoint } = await startApp(ready, counter, tmp.dir);
      procs.push(app);
      const client = new DispatchClient({ apiUrl: ready.url, apiKey: ready.apiKey });

      const started = Date.now();
      const watch = watchDispatches();
      const dispatching = dispatchPaced(client, endpoint, { total: TOTAL, batch: BATCH, everyMs: 200, prefix: 'r' }).finally(watch.stop);
      // Mid-run: the server goes down for a while (connections refused), then comes back.
      await new Promise((r) => setTimeout(r, 1500));
      const down = Date.now();
      await cluster.stop();
      // Longer than the store's own retries (about 3 s): dispatches meet `unavailable`, results wait to be recorded.
      const downUntil = Date.now() + 5000;
      // /healthz says so meanwhile: 503, with the reason.
      const res = await fetch(`${ready.url}/healthz`);
      const health = (await res.json()) as { status: string; store: { ok: boolean; reason: string; code: string } };
      expect(res.status).toBe(503);
      expect(health.status).toBe('unavailable');
      expect(health.store.ok).toBe(false);
      expect(health.store.reason).toMatch(/^the scheduler's database (cannot be reached|is shutting down or restarting) \(.* at postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres.*\): .*calls already accepted are kept$/);
      await new Promise((r) => setTimeout(r, downUntil - Date.now()));
      await cluster.start();
      const downMs = Date.now() - down;
      const ids = await dispatching;
      const acceptedMs = Date.now() - started;
      expect(ids).toHaveLength(TOTAL);
      // The outage outlasted the scheduler's own tries: some dispatches met `unavailable`, and the client sent them again.
      expect(watch.traffic.unavailable).toBeGreaterThan(0);
      expect(watch.traffic.requests).toBe(TOTAL / BATCH + watch.traffic.unavailable + watch.traffic.noAnswer);

      const store = await open(cluster.url, schema);
      const figures = await verify(store, schema, ids, counter);
      expect(scheduler.child.exitCode, scheduler.text().slice(-3000)).toBeNull();
      await listening(store, schema);
      expect(((await (await fetch(`${ready.url}/healthz`)).json()) as { status: string }).status).toBe('ok');
      const log = storeLog(scheduler);
      expect(log.unhandled).toBe(0);
      console.log(`[faults] pg restart: ${JSON.stringify({ calls: TOTAL, serverDownMs: downMs, dispatchedInMs: acceptedMs, dispatch: watch.traffic, healthzWhileDown: health.store.reason, ...figures, ...log })}`);

      scheduler.kill('SIGTERM');
      expect(await scheduler.exited).toBe(0);
    },
  );
});
