/**
 * Local resume end to end (`RunRequest.local_resume`, a protocol extension):
 * the app streams a child's successful answer, then runs its waiting
 * parent's resume at once and streams that answer too; the scheduler records
 * the child as soon as its answer comes, leases the parent it woke, and
 * takes the streamed answer as the parent's run, without a request. Through
 * a real Scheduler (SQLite) and a real HTTP endpoint (signed); every result
 * recorded once; what the parent did early is dropped when the parent was
 * cancelled meanwhile. In process nothing is offered (no round trip to save).
 */
import { Dispatch, type DispatchFunction, Status } from '@dispatch/core';
import type { AttemptEvent } from '@dispatch/scheduler';
import { startTestScheduler, type TestScheduler, type TestSchedulerOptions } from '@dispatch/testing';
import { afterEach, describe, expect, it } from 'vitest';

const silent = { warn() {}, error() {}, info() {} };
let t: TestScheduler | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

function app() {
  const dispatch = new Dispatch({ env: {}, logger: silent });
  const inc = dispatch.function(async function inc(n: number) {
    return n + 1;
  });
  const steps = dispatch.function(async function steps(n: number) {
    let x = 0;
    for (let i = 0; i < n; i++) x = await inc(x);
    return x;
  });
  let release = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let entered = () => {};
  const inGate = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const after = { ran: 0 };
  const gated = dispatch.function(async function gated() {
    entered();
    await gate;
    return 'opened';
  });
  const next = dispatch.function(async function next() {
    after.ran++;
    return 'next';
  });
  const waitsAtGate = dispatch.function(async function waitsAtGate() {
    await gated();
    return await next();
  });
  return { dispatch, steps, waitsAtGate, release, inGate, after };
}

/** The runs of `fn` as the scheduler saw them (its attempt events). */
function runsOf(events: AttemptEvent[], fn: string) {
  return events.filter((e) => e.function === fn);
}

async function localResumes(): Promise<Record<string, number>> {
  const text = await (t as TestScheduler).scheduler.metrics.text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^dispatch_local_resumes_total\{result="(\w+)"\} (\d+)$/gm)) out[m[1] as string] = Number(m[2]);
  return out;
}

/** Five awaited steps under a scheduler started with `options`: the same result, and no resume answered early. */
async function expectNoLocalResume(options: TestSchedulerOptions): Promise<void> {
  const { dispatch, steps } = app();
  t = await startTestScheduler(dispatch, options);
  const events: AttemptEvent[] = [];
  t.scheduler.on('attempt', (e) => events.push(e));
  const r = await t.run(steps as DispatchFunction<[number], number>, 5);
  expect(r).toMatchObject({ status: Status.OK, value: 5, resumes: 5 });
  expect(runsOf(events, 'steps').some((e) => e.localResume)).toBe(false);
  expect(await localResumes()).toEqual({});
}

const transport = 'http';

describe('local resume over HTTP', () => {
  it("resumes each waiting parent with its child's answer, in the child's round trip, each result recorded once", async () => {
    const { dispatch, steps } = app();
    t = await startTestScheduler(dispatch, { transport });
    const events: AttemptEvent[] = [];
    t.scheduler.on('attempt', (e) => events.push(e));
    const r = await t.run(steps as DispatchFunction<[number], number>, 20);
    expect(r).toMatchObject({ status: Status.OK, value: 20, attempts: 1, resumes: 20 });
    // Every resume of the parent took the answer its child's endpoint gave early.
    const parent = runsOf(events, 'steps');
    expect(parent.map((e) => [e.resume, !!e.localResume])).toEqual([[false, false], ...Array.from({ length: 20 }, () => [true, true])]);
    expect(await localResumes()).toEqual({ used: 20 });
    // Recorded once each: the parent's history, and every child ran once.
    expect((await t.attempts(r.id)).map((a) => a.outcome)).toEqual([...Array.from({ length: 20 }, () => 'suspend'), 'exit']);
    const children = await Promise.all((await t.get(r.id)).children.map((id) => t!.get(id)));
    expect(children.map((c) => [c.function, c.attempts, c.output])).toEqual(Array.from({ length: 20 }, (_, i) => ['inc', 1, i + 1]));
    expect(dispatch.engine.stats.replays).toBe(0);
  });

  it('with localResume: false, every resume is a request of its own, with the same result', async () => {
    await expectNoLocalResume({ transport, localResume: false });
  });

  it('drops the early answer of a parent cancelled while its child ran: its next call is never created', async () => {
    const { dispatch, waitsAtGate, release, inGate, after } = app();
    t = await startTestScheduler(dispatch, { transport });
    const id = await t.start(waitsAtGate as DispatchFunction<[], string>);
    await inGate;
    expect(await t.client.cancel(id)).toBeGreaterThan(0);
    release();
    const out = await t.outcome(id);
    expect(out.state).toBe('cancelled');
    // The app resumed the parent early (its warm execution was there), but nothing of that run was recorded.
    await expect.poll(localResumes).toEqual({ dropped: 1 });
    const parent = await t.get(id);
    expect(parent.state).toBe('cancelled');
    expect((await Promise.all(parent.children.map((c) => t!.get(c)))).map((c) => c.function)).toEqual(['gated']);
    expect(after.ran).toBe(0);
  });
});

describe('local resume in process', () => {
  it('is not offered: each run is handed over directly, a resume too', async () => {
    await expectNoLocalResume({ transport: 'in-process' });
  });
});
