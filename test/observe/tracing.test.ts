/**
 * OpenTelemetry end to end: a run of checkout that awaits three children,
 * each its own durable call, with the OpenTelemetry SDK's in-memory exporter
 * registered. The scheduler runs in the test process but its spans join only
 * through what crosses the wire and the database: the Call's traceparent
 * stored with the call, the RunRequest's traceparent sent to the endpoint.
 * The trace must be one: every child's spans have checkout's run span as
 * ancestor, through the scheduler's attempt spans.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Dispatch } from '@dispatch/core';
import { startTestScheduler, type TestScheduler } from '@dispatch/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const silent = { warn() {}, error() {}, info() {} };
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let t: TestScheduler | undefined;

beforeAll(() => {
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
});
afterEach(async () => {
  await t?.close();
  t = undefined;
  exporter.reset();
});

const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const scope = (s: ReadableSpan) => s.instrumentationScope.name;

/** The chain of spans from `span` up to the root (by parent span ID among the exported spans). */
function ancestry(span: ReadableSpan, byId: Map<string, ReadableSpan>): ReadableSpan[] {
  const chain: ReadableSpan[] = [];
  for (let s: ReadableSpan | undefined = span; s; s = byId.get(parentOf(s) ?? '')) chain.push(s);
  return chain;
}

describe.each([
  { mode: 'warm executions', cache: undefined },
  { mode: 'journal replay on every resume', cache: false as const },
])('tracing ($mode)', ({ cache }) => {
  it('makes checkout → three children one trace, across the app and the scheduler', async () => {
    const d = new Dispatch({ env: {}, logger: silent, ...(cache === false ? { cache } : {}) });
    const reserve = d.function(async function reserve(order: string) {
      return `reserved ${order}`;
    });
    const charge = d.function(async function charge(order: string) {
      return `charged ${order}`;
    });
    const ship = d.function(async function ship(order: string) {
      return `shipped ${order}`;
    });
    const checkout = d.function(async function checkout(order: string) {
      const a = await reserve(order);
      const b = await charge(order);
      const c = await ship(order);
      return [a, b, c].join(', ');
    });
    t = await startTestScheduler(d, { logLevel: process.env.DEBUG_OBSERVE ? 'debug' : 'silent' });
    const id = await checkout.dispatch('o-1');
    expect((await t.outcome(id)).value).toBe('reserved o-1, charged o-1, shipped o-1');

    // Spans end as runs end; the last attempt span ends after the answer is recorded.
    await expect.poll(() => exporter.getFinishedSpans().filter((s) => s.name === 'dispatch.attempt checkout').length, { timeout: 20_000 }).toBe(4);
    const spans = exporter.getFinishedSpans();
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    const traceIds = new Set(spans.map((s) => s.spanContext().traceId));
    expect(traceIds.size).toBe(1);

    const dispatchSpan = spans.find((s) => s.name === 'dispatch checkout');
    expect(dispatchSpan, 'the client span of the dispatch').toBeDefined();
    expect(parentOf(dispatchSpan!)).toBeUndefined(); // the root
    expect(scope(dispatchSpan!)).toBe('@dispatch/core');

    // checkout ran 4 times (first run, three resumes): each a scheduler attempt span, child of the dispatch, parent of the app's run span.
    const checkoutRuns = spans.filter((s) => s.name === 'dispatch.run checkout' && s.attributes['dispatch.outcome'] !== 'state_required');
    expect(checkoutRuns).toHaveLength(4);
    // Without a warm cache, a resume whose journal was left out first asks for it (a run that answers state_required):
    // in process the journal is never resent once the SDK sends deltas, from the second resume on.
    const asked = spans.filter((s) => s.name === 'dispatch.run checkout' && s.attributes['dispatch.outcome'] === 'state_required');
    expect(asked).toHaveLength(cache === false ? 2 : 0);
    for (const run of checkoutRuns) {
      const attempt = byId.get(parentOf(run)!);
      expect(attempt?.name).toBe('dispatch.attempt checkout');
      expect(scope(attempt!)).toBe('@dispatch/scheduler');
      expect(parentOf(attempt!)).toBe(dispatchSpan!.spanContext().spanId);
      expect(run.attributes['dispatch.id']).toBe(id);
    }
    const firstRun = checkoutRuns.find((s) => s.attributes['dispatch.resume'] === false)!;
    expect(firstRun).toBeDefined();

    for (const fn of ['reserve', 'charge', 'ship']) {
      const runs = spans.filter((s) => s.name === `dispatch.run ${fn}`);
      expect(runs, fn).toHaveLength(1);
      const chain = ancestry(runs[0]!, byId);
      const names = chain.map((s) => s.name);
      // child run ← scheduler attempt ← checkout's await of it ← one of checkout's runs ← attempt ← dispatch
      expect(names).toEqual([`dispatch.run ${fn}`, `dispatch.attempt ${fn}`, `dispatch.await ${fn}`, 'dispatch.run checkout', 'dispatch.attempt checkout', 'dispatch checkout']);
      expect(chain.map(scope)).toEqual(['@dispatch/core', '@dispatch/scheduler', '@dispatch/core', '@dispatch/core', '@dispatch/scheduler', '@dispatch/core']);
      expect(runs[0]!.attributes['dispatch.parent_id']).toBe(id);
      expect(runs[0]!.attributes['dispatch.status']).toBe('OK');
    }
    // The first child is awaited from the first run.
    const reserveAwait = spans.find((s) => s.name === 'dispatch.await reserve')!;
    expect(parentOf(reserveAwait)).toBe(firstRun.spanContext().spanId);
  });
});

/** Runs a fixture app in its own process (from test/, without the environment's Dispatch keys): its last line of JSON. */
async function lastLineOf(args: string[]): Promise<unknown> {
  const testDir = fileURLToPath(new URL('..', import.meta.url));
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      args,
      { cwd: testDir, timeout: 60_000, env: { ...process.env, DISPATCH_API_KEY: '', DISPATCH_API_URL: '' } },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe('with @opentelemetry/api and no tracer provider (no SDK registered)', () => {
  it('records nothing and passes each call\'s trace context on to its children unchanged', async () => {
    const result = (await lastLineOf(['./observe/fixtures/otel-no-provider-app.mjs'])) as { value: unknown; contexts: Array<[string, string | null]> };
    expect(result.value).toBe('reserved o-3, charged o-3');
    // What a non-recording span hands on: its parent's context, the root's here, at every level.
    // (The column holds the traceparent, a newline, the tracestate.)
    const root = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\nvendor=abc';
    expect(result.contexts).toEqual([
      ['checkout', root],
      ['reserve', root],
      ['charge', root],
    ]);
  });
});

describe('without @opentelemetry/api', () => {
  it('runs calls and children, and traces nothing (a process where the package cannot be found)', async () => {
    const result = (await lastLineOf(['--import', './observe/fixtures/hide-otel.mjs', './observe/fixtures/no-otel-app.mjs'])) as {
      tracing: unknown;
      hidden: boolean;
      value: unknown;
      traceparents: string[];
    };
    expect(result.hidden).toBe(true); // the hook did hide the package
    expect(result.tracing).toBeNull();
    expect(result.value).toBe('reserved o-2, charged o-2');
    expect(result.traceparents).toEqual([]); // no run carried a trace context
  });
});
