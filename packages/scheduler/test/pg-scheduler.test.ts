/**
 * Several schedulers on one PostgreSQL schema, in this process, over real
 * HTTP: they share the work, and every API call (Dispatch, Wait, Get, List,
 * Cancel, Restart) works on any instance whichever instance runs the call.
 * Idempotency keys, expirations and concurrency bounds hold across them.
 * (The kill -9 failover test with real processes is test/failover/.)
 *
 * Needs DISPATCH_TEST_POSTGRES_URL (`.ci/run` sets it).
 */
import { callStateOf, proto, Status } from '@dispatch/core/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { AttemptEvent } from '../src/events.js';
import { dropPgSchema, type PgCluster, randomPgSchema, startPgCluster } from './support/pg-cluster.js';
import { PgStore } from '../src/store/pg/pg-store.js';
import { Scheduler } from '../src/scheduler.js';
import { fail, ok, startEndpoint, str, type TestEndpoint, text, until } from './support/test-endpoint.js';

const url = process.env.DISPATCH_TEST_POSTGRES_URL;
if (!url) {
  console.warn('PostgreSQL multi-instance scheduler tests SKIPPED: DISPATCH_TEST_POSTGRES_URL is not set (.ci/run sets it to the local server)');
}

let cluster: PgCluster | undefined;
let endpoint: TestEndpoint | undefined;
afterEach(async () => {
  await cluster?.stop({ dropSchema: true });
  await endpoint?.close();
  cluster = undefined;
  endpoint = undefined;
});

const start = (instances = 3, leaseMs = 3000) =>
  startPgCluster({
    url: url!,
    instances,
    leaseMs,
    poolSize: 4, // test files run in parallel on one server: keep within max_connections
    logLevel: 'silent',
    scheduler: { backoff: { initialMs: 20, maxMs: 100 }, concurrency: { initial: 8, max: 30 } },
  });

describe.skipIf(!url)('schedulers sharing a PostgreSQL schema', () => {
  it('a dashboard logout on one instance is refused by the others', async () => {
    cluster = await start(2);
    const [a, b] = cluster.schedulers as [Scheduler, Scheduler];
    const cookie = ((await fetch(a.dashboardLoginUrl(), { redirect: 'manual' })).headers.get('set-cookie') ?? '').split(';')[0]!;
    const runs = (s: Scheduler) => fetch(`${s.url}/dashboard/api/runs`, { headers: { cookie } }).then((r) => r.status);
    expect([await runs(a), await runs(b)]).toEqual([200, 200]); // the session secret is shared
    expect((await fetch(`${a.url}/dashboard/logout`, { method: 'POST', headers: { cookie }, redirect: 'manual' })).status).toBe(303);
    expect([await runs(a), await runs(b)]).toEqual([401, 401]);
  });

  it('share the work; Wait, Get and List on any instance see calls run by the others', async () => {
    endpoint = await startEndpoint(async (req) => {
      await new Promise((r) => setTimeout(r, 5));
      return ok(`done ${text(req.input)}`);
    });
    cluster = await start();
    const [a, b, c] = cluster.schedulers as [Scheduler, Scheduler, Scheduler];
    const ranBy = new Map<string, string>();
    for (const s of cluster.schedulers) s.on('attempt', (e: AttemptEvent) => ranBy.set(e.dispatchId, s.instanceId));
    const ids = await a.dispatch(Array.from({ length: 300 }, (_, i) => ({ function: 'work', endpoint: endpoint!.url, input: str(String(i)) })));
    const results = await Promise.all(ids.map((id, i) => [a, b, c][i % 3]!.wait(id, 20_000)));
    results.forEach((r, i) => {
      expect(r.done && text(r.result.output)).toBe(`done ${i}`);
    });
    expect(new Set(ranBy.values()).size).toBeGreaterThan(1);
    const info = await c.get(ids[0]!);
    expect(info.attempts).toBe(1);
    const page = await b.list({ function: 'work', limit: 10 });
    expect(page.counts.succeeded).toBe(300);
    expect(endpoint.runs.length).toBe(300);
  });

  it('Wait returns as soon as another instance records the result (NOTIFY, not the 1 s recheck)', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    endpoint = await startEndpoint(async () => {
      await gate;
      return ok('late');
    });
    cluster = await start(2);
    const [a, b] = cluster.schedulers as [Scheduler, Scheduler];
    // The once-a-second recheck of waited calls finds nothing on either
    // instance: only the NOTIFY of the recorded result can end a Wait. Each
    // recheck also shows that the instance's Wait is registered.
    const rechecked = [new Set<string>(), new Set<string>()];
    [a, b].forEach((s, i) => {
      Object.assign(s.store, {
        finishedAmong: async (ids: string[]) => {
          for (const id of ids) rechecked[i]!.add(id);
          return [];
        },
      });
    });
    const [id] = await a.dispatch([{ function: 'slow', endpoint: endpoint.url }]);
    await until(() => endpoint!.runs.length === 1);
    // Waits far longer than the test runs: only NOTIFY can end them in time.
    const waits = Promise.all([a, b].map((s) => s.wait(id!, 600_000)));
    await until(() => rechecked.every((ids) => ids.has(id!)), 10_000);
    release();
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('a Wait did not end within 20 s of the result being recorded: NOTIFY did not reach it (the recheck is off in this test)')), 20_000);
    });
    try {
      for (const r of await Promise.race([waits, stuck])) expect(r.done && text(r.result.output)).toBe('late');
    } finally {
      clearTimeout(timer);
    }
  });

  it('holds idempotency keys across instances: the same key through every instance gives one call', async () => {
    endpoint = await startEndpoint(() => ok('once'));
    cluster = await start();
    const call = (key: string) => ({ function: 'pay', endpoint: endpoint!.url, input: str(key), idempotencyKey: key });
    for (let round = 0; round < 10; round++) {
      const answers = await Promise.all(cluster.schedulers.map((s) => s.dispatch([call(`order-${round}`)])));
      expect(new Set(answers.map((x) => x[0])).size).toBe(1);
    }
    const all = await cluster.schedulers[1]!.list({ function: 'pay', limit: 100 });
    expect(all.calls.length).toBe(10);
    await until(async () => (await cluster!.schedulers[2]!.list({ function: 'pay' })).counts.succeeded === 10);
    expect(endpoint.runs.length).toBe(10);
  });

  it('Cancel and Restart on one instance act on calls run and waited for on the others', async () => {
    endpoint = await startEndpoint((req) => {
      if (req.function === 'child') return { status: 1, poll: { maxWait: proto.durationFromMs(60_000), minResults: 1, maxResults: 1 } };
      if (!req.pollResult) {
        return {
          status: 1,
          poll: { calls: [{ correlationId: proto.toLong(1n), function: 'child' }], minResults: 1, maxResults: 1, maxWait: proto.durationFromMs(60_000) },
        };
      }
      const err = req.pollResult.results?.[0]?.error;
      return ok(`parent saw ${err ? err.type : 'a result'}`);
    });
    cluster = await start();
    const [a, b, c] = cluster.schedulers as [Scheduler, Scheduler, Scheduler];
    const [parent] = await a.dispatch([{ function: 'parent', endpoint: endpoint.url }]);
    await until(async () => (await b.get(parent!)).children?.length === 1 && (await b.list({ states: ['suspended'] })).calls.length === 2);
    const childId = (await b.get(parent!)).children![0]!;
    const waiting = b.wait(parent!, 10_000);
    expect(await c.cancel(childId)).toBe(1);
    const r = await waiting;
    expect(r.done && text(r.result.output)).toBe('parent saw CancelledError');
    expect(callStateOf((await a.get(childId)).state ?? 0)).toBe('cancelled');

    const info = await c.restart(parent!);
    expect(info.dispatchId).toBe(parent);
    await until(async () => (await a.get(parent!)).children?.length === 2);
    expect(await b.cancel(parent!)).toBeGreaterThanOrEqual(1);
    const again = await a.wait(parent!, 5_000);
    expect(again.done && again.state).toBe('cancelled');
  });

  it('expires a call that keeps failing, whichever instance runs its attempts', async () => {
    endpoint = await startEndpoint(() => fail(Status.TEMPORARY_ERROR, 'Busy', 'try later'));
    cluster = await start();
    const [id] = await cluster.schedulers[0]!.dispatch([
      { function: 'flaky', endpoint: endpoint.url, expiration: proto.durationFromMs(700) },
    ]);
    const r = await cluster.schedulers[2]!.wait(id!, 10_000);
    expect(r.done && r.status).toBe(Status.TIMEOUT);
    expect(r.done && r.result.error?.message).toMatch(/expired/);
    expect(endpoint.runs.length).toBeGreaterThan(1);
  });

  it('divides the concurrency bounds among the live instances, and gives the share back when one leaves', async () => {
    let inFlight = 0;
    let peak = 0;
    endpoint = await startEndpoint(async () => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((r) => setTimeout(r, 20));
      inFlight--;
      return ok('x');
    });
    cluster = await start(3, 600);
    const ss = cluster.schedulers;
    await until(() => ss.every((s) => s.concurrency(endpoint!.url, 'f').max === 10));
    const ids = await ss[0]!.dispatch(Array.from({ length: 400 }, () => ({ function: 'f', endpoint: endpoint!.url })));
    await Promise.all(ids.map((id) => ss[1]!.wait(id, 30_000)));
    expect(peak).toBeLessThanOrEqual(30);
    await ss[2]!.close();
    await until(() => ss[0]!.concurrency(endpoint!.url, 'f').max === 15, 5_000);
  });

  it('Scheduler.start({ db: "postgres://…?schema=…" }) opens the PostgreSQL store and closes it', async () => {
    const schema = randomPgSchema();
    const u = new URL(url!);
    u.searchParams.set('schema', schema);
    u.searchParams.set('pool_size', '3');
    const s = await Scheduler.start({ db: u.toString(), port: 0, logLevel: 'silent' });
    try {
      expect(s.store).toBeInstanceOf(PgStore);
      expect((s.store as PgStore).schema).toBe(schema);
      expect((s.store as PgStore).poolStats().total).toBeLessThanOrEqual(3);
    } finally {
      await s.close();
      await dropPgSchema(url!, schema);
    }
  });
});
