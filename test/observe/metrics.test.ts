/**
 * `/metrics` end to end: a real scheduler (its HTTP API), a real app
 * endpoint, 100 calls; the Prometheus text is scraped before and after,
 * parsed strictly (every line), and the counters moved by exactly what the
 * calls did. Scrapes without a key, with a wrong one, and with the metrics
 * token (which opens nothing else) are checked too.
 */
import { readFileSync } from 'node:fs';
import { Dispatch, DispatchClient } from '@dispatch/core';
import { startTestScheduler, type TestScheduler } from '@dispatch/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { Scheduler } from '@dispatch/scheduler';
import type { DispatchServer } from '@dispatch/core';
import { freePort } from '../e2e/helpers/processes.js';
import { dropPgSchema, randomPgSchema } from '../../packages/scheduler/test/support/pg-cluster.js';
import { parsePrometheusText, sampleValue } from './prometheus-text.js';

const pgUrl = process.env.DISPATCH_TEST_POSTGRES_URL;
if (!pgUrl) console.warn('/metrics on PostgreSQL SKIPPED: DISPATCH_TEST_POSTGRES_URL is not set (.ci/run sets it to the local server)');

const silent = { warn() {}, error() {}, info() {} };
const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
let t: TestScheduler | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function scrape(url: string, token: string) {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parsePrometheusText(await res.text());
}

describe('/metrics', () => {
  it('counts 100 calls exactly, in text that parses line by line', async () => {
    const d = new Dispatch({ env: {}, logger: silent });
    const double = d.function(async function double(n: number) {
      return n * 2;
    });
    const sumAll = d.function(async function sumAll(count: number) {
      const values = await d.all(...Array.from({ length: count }, (_, i) => double(i)));
      return values.reduce((a, b) => a + b, 0);
    });
    t = await startTestScheduler(d, { metricsToken: METRICS_TOKEN, logLevel: 'silent' });
    const url = t.scheduler.url;

    const before = await scrape(url, t.scheduler.apiKey);
    for (const name of [
      'dispatch_attempts_total',
      'dispatch_attempt_duration_seconds',
      'dispatch_calls_created_total',
      'dispatch_calls_finished_total',
      'dispatch_call_latency_seconds',
      'dispatch_calls',
      'dispatch_queue_depth',
      'dispatch_concurrency_limit',
      'dispatch_in_flight',
      'dispatch_store_operation_duration_seconds',
    ]) {
      expect(before.has(name), name).toBe(true);
    }
    const ok = { function: 'double', status: 'OK', outcome: 'exit', kind: 'attempt' };
    const attemptsBefore = sampleValue(before, 'dispatch_attempts_total', ok);
    // A dispatch request goes to the store's insertCalls, or to insertAndClaim where the store leases new calls at once (SQLite).
    const inserts = (families: typeof before) =>
      sampleValue(families, 'dispatch_store_operation_duration_seconds_count', { operation: 'insertCalls' }) +
      sampleValue(families, 'dispatch_store_operation_duration_seconds_count', { operation: 'insertAndClaim' });
    const insertsBefore = inserts(before);

    // 90 calls dispatched through the API, and one call that starts 10 children: 100 calls of double in all.
    const batch = d.batch();
    for (let i = 0; i < 90; i++) batch.add(double(i));
    const ids = await batch.dispatch();
    const parent = await sumAll.dispatch(10);
    for (const [i, id] of ids.entries()) expect((await t.outcome(id)).value).toBe(i * 2);
    expect((await t.outcome(parent)).value).toBe(90);

    const after = await scrape(url, t.scheduler.apiKey);
    expect(sampleValue(after, 'dispatch_attempts_total', ok) - attemptsBefore).toBe(100);
    expect(sampleValue(after, 'dispatch_attempts_total', { function: 'double' })).toBe(100);
    expect(sampleValue(after, 'dispatch_attempts_total', { function: 'sumAll', kind: 'attempt', outcome: 'suspend' })).toBe(1);
    expect(sampleValue(after, 'dispatch_attempts_total', { function: 'sumAll', kind: 'resume', status: 'OK' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(after, 'dispatch_attempt_duration_seconds_count', { function: 'double', kind: 'attempt' })).toBe(100);
    expect(sampleValue(after, 'dispatch_calls_created_total', { function: 'double', source: 'api' })).toBe(90);
    expect(sampleValue(after, 'dispatch_calls_created_total', { function: 'double', source: 'poll' })).toBe(10);
    expect(sampleValue(after, 'dispatch_calls_created_total', { function: 'sumAll', source: 'api' })).toBe(1);
    expect(sampleValue(after, 'dispatch_calls_finished_total', { function: 'double', state: 'succeeded' })).toBe(100);
    expect(sampleValue(after, 'dispatch_calls_finished_total', { function: 'sumAll', state: 'succeeded' })).toBe(1);
    expect(sampleValue(after, 'dispatch_call_latency_seconds_count', { function: 'double', state: 'succeeded' })).toBe(100);
    expect(sampleValue(after, 'dispatch_call_latency_seconds_bucket', { function: 'double', state: 'succeeded', le: '+Inf' })).toBe(100);
    // Nothing left: every state of each function is 0, and so is the queue.
    for (const state of ['pending', 'running', 'suspended']) {
      const sample = after.get('dispatch_calls')?.samples.find((s) => s.labels.function === 'double' && s.labels.state === state);
      expect(sample?.value, state).toBe(0);
    }
    expect(after.get('dispatch_queue_depth')?.samples.find((s) => s.labels.function === 'double')?.value).toBe(0);
    // The adaptive limit of (endpoint, double), as the scheduler reports it.
    expect(sampleValue(after, 'dispatch_concurrency_limit', { endpoint: t.endpointUrl, function: 'double' })).toBe(
      Math.floor(t.scheduler.concurrency(t.endpointUrl, 'double').limit),
    );
    // Two dispatch requests: the batch and sumAll (the Poll's children are written by the completion that starts them).
    expect(inserts(after) - insertsBefore).toBe(2);
    expect(sampleValue(after, 'dispatch_store_operation_duration_seconds_count', { operation: 'insertAndClaim' })).toBeGreaterThan(0);
    // Every run's result is recorded: by `complete`, or by `completeAndClaim` where the store leases what it woke at once (SQLite).
    const records = (operation: string) => sampleValue(after, 'dispatch_store_operation_duration_seconds_count', { operation });
    expect(records('complete') + records('completeAndClaim')).toBeGreaterThanOrEqual(102);
    expect(records('completeAndClaim')).toBeGreaterThan(0);
  });

  it('shows calls waiting in the queue and suspended while they wait', async () => {
    const d = new Dispatch({ env: {}, logger: silent });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = d.function(async function slow(n: number) {
      await gate;
      return n;
    });
    const parent = d.function(async function waitsForSlow() {
      return slow(0);
    });
    t = await startTestScheduler(d, { logLevel: 'silent', concurrency: { initial: 2, min: 1, max: 2 } });
    const ids = await d.batch().add(slow(1)).add(slow(2)).add(slow(3)).add(slow(4)).add(slow(5)).dispatch();
    const p = await parent.dispatch();
    await expect
      .poll(
        async () => {
          const m = await scrape(t!.scheduler.url, t!.scheduler.apiKey);
          return {
            running: sampleValue(m, 'dispatch_calls', { function: 'slow', state: 'running' }),
            pending: sampleValue(m, 'dispatch_calls', { function: 'slow', state: 'pending' }),
            queue: sampleValue(m, 'dispatch_queue_depth', { function: 'slow' }),
            suspended: sampleValue(m, 'dispatch_calls', { function: 'waitsForSlow', state: 'suspended' }),
            inFlight: sampleValue(m, 'dispatch_in_flight', { function: 'slow' }),
          };
        },
        { timeout: 20_000, interval: 100 },
      )
      .toEqual({ running: 2, pending: 4, queue: 4, suspended: 1, inFlight: 2 });
    release();
    for (const id of [...ids, p]) await t.outcome(id);
  });

  it('counts the signals received (delivered or kept) and the ticks of schedules', async () => {
    const d = new Dispatch({ env: {}, logger: silent });
    const approve = d.function(async function approve() {
      return d.waitForSignal<string>('decision', { timeout: '1m' });
    });
    d.function({ name: 'everySecond', schedule: '* * * * * *' }, async () => 'tick');
    t = await startTestScheduler(d, { logLevel: 'silent' });
    await d.startSchedules('the metrics test');
    const before = await scrape(t.scheduler.url, t.scheduler.apiKey);
    expect(sampleValue(before, 'dispatch_signals_total', { outcome: 'kept' }) ?? 0).toBe(0);
    const id = await approve.dispatch();
    // Sent before the call waits (kept), then another one after its wait consumed the first: the call finishes.
    await t.scheduler.signal({ dispatchId: id, name: 'early' });
    await t.scheduler.signal({ dispatchId: id, name: 'decision' });
    await t.outcome(id);
    await expect
      .poll(
        async () => {
          const m = await scrape(t!.scheduler.url, t!.scheduler.apiKey);
          const delivered = sampleValue(m, 'dispatch_signals_total', { outcome: 'delivered' }) ?? 0;
          const kept = sampleValue(m, 'dispatch_signals_total', { outcome: 'kept' }) ?? 0;
          return { signals: delivered + kept, ticks: (sampleValue(m, 'dispatch_schedule_ticks_total', { schedule: 'everySecond', outcome: 'dispatched' }) ?? 0) >= 2 };
        },
        { timeout: 20_000, interval: 200 },
      )
      .toEqual({ signals: 2, ticks: true });
  });

  it('refuses a scrape without a valid token; the metrics token opens /metrics and nothing else', async () => {
    const d = new Dispatch({ env: {}, logger: silent });
    t = await startTestScheduler(d, { metricsToken: METRICS_TOKEN, logLevel: 'silent' });
    const url = `${t.scheduler.url}/metrics`;
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect((await none.json()) as unknown).toMatchObject({ code: 'unauthenticated', message: expect.stringContaining('missing token for /metrics') });
    const wrong = await fetch(url, { headers: { authorization: 'Bearer not-the-key-0123456789' } });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).not.toContain('dispatch_attempts_total');
    const post = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${t.scheduler.apiKey}` } });
    expect(post.status).toBe(405);
    // The metrics token scrapes...
    const byToken = await fetch(url, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(byToken.status).toBe(200);
    parsePrometheusText(await byToken.text());
    // ...but it is not an API key.
    const list = (key: string) =>
      fetch(`${t!.scheduler.url}/dispatch.typescript.v1.SchedulerService/List`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: '{}',
      });
    expect((await list(METRICS_TOKEN)).status).toBe(401);
    expect((await list(t.scheduler.apiKey)).status).toBe(200);
  });

  it('has an example Grafana dashboard whose every query names metrics the scheduler serves', async () => {
    const dashboard = JSON.parse(readFileSync(new URL('../../docs/grafana/dispatch.json', import.meta.url), 'utf8')) as {
      title: string;
      panels: Array<{ title: string; type: string; targets: Array<{ expr: string }> }>;
    };
    expect(dashboard.title).toBe('Dispatch scheduler');
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(8);
    const d = new Dispatch({ env: {}, logger: silent });
    t = await startTestScheduler(d, { logLevel: 'silent' });
    const families = await scrape(t.scheduler.url, t.scheduler.apiKey);
    const served = new Set<string>();
    for (const f of families.values()) {
      served.add(f.name);
      if (f.type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) served.add(f.name + suffix);
    }
    const used = new Set<string>();
    for (const panel of dashboard.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets) {
        const names = target.expr.match(/\bdispatch_[a-z_]+\b/g) ?? [];
        expect(names.length, `${panel.title}: ${target.expr}`).toBeGreaterThan(0);
        for (const name of names) {
          expect(served.has(name), `${panel.title} uses ${name}, which /metrics does not serve`).toBe(true);
          used.add(name.replace(/_(bucket|sum|count)$/, ''));
        }
      }
    }
    // The dashboard shows every metric of the issue: calls, attempts, both histograms, queue, limits, store latency.
    for (const name of ['dispatch_calls', 'dispatch_attempts_total', 'dispatch_attempt_duration_seconds', 'dispatch_call_latency_seconds', 'dispatch_queue_depth', 'dispatch_concurrency_limit', 'dispatch_store_operation_duration_seconds']) {
      expect(used.has(name), name).toBe(true);
    }
  });

  it.skipIf(!pgUrl)('counts the vacuums of the calls table on PostgreSQL (dispatch_store_vacuums_total)', async () => {
    const schema = randomPgSchema();
    const db = new URL(pgUrl!);
    db.searchParams.set('schema', schema);
    db.searchParams.set('vacuum_every', '100');
    const scheduler = await Scheduler.start({ db: db.toString(), port: 0, host: '127.0.0.1', logLevel: 'silent' });
    let server: DispatchServer | undefined;
    try {
      const port = await freePort();
      const d = new Dispatch({
        env: {
          DISPATCH_API_URL: scheduler.url,
          DISPATCH_API_KEY: scheduler.apiKey,
          DISPATCH_ENDPOINT_URL: `http://127.0.0.1:${port}`,
          DISPATCH_ENDPOINT_ADDR: `127.0.0.1:${port}`,
          DISPATCH_VERIFICATION_KEY: scheduler.verificationKey,
        },
        logger: silent,
      });
      const double = d.function(async function double(n: number) {
        return n * 2;
      });
      const sumAll = d.function(async function sumAll(count: number) {
        const values = await d.all(...Array.from({ length: count }, (_, i) => double(i)));
        return values.reduce((a, b) => a + b, 0);
      });
      server = await d.serve({ signals: false });
      // 200 children and their parent, each claimed and completed: past 100 at least once.
      const id = await sumAll.dispatch(200);
      const result = await new DispatchClient({ apiUrl: scheduler.url, apiKey: scheduler.apiKey }).wait(id, { timeoutMs: 30_000 });
      expect(result.done && result.value).toBe(199 * 200);
      await expect
        .poll(async () => sampleValue(await scrape(scheduler.url, scheduler.apiKey), 'dispatch_store_vacuums_total', { outcome: 'done' }) ?? 0, {
          timeout: 10_000,
          interval: 100,
        })
        .toBeGreaterThanOrEqual(1);
      expect(sampleValue(await scrape(scheduler.url, scheduler.apiKey), 'dispatch_store_vacuums_total', { outcome: 'failed' }) ?? 0).toBe(0);
    } finally {
      await server?.close();
      await scheduler.close();
      await dropPgSchema(pgUrl!, schema);
    }
  });

  it('refuses a metrics token too short to resist guessing', async () => {
    const d = new Dispatch({ env: {}, logger: silent });
    await expect(startTestScheduler(d, { metricsToken: 'short', logLevel: 'silent' })).rejects.toThrow(/metrics token has 5 characters; it needs at least 16/);
  });
});
