import { randomBytes } from 'node:crypto';
import { Status } from '@dispatch/core/protocol';
import { proto } from '@dispatch/core/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { Scheduler } from '../src/scheduler.js';
import { fail, ok, startEndpoint, startTestScheduler, str, type TestEndpoint, text, until } from './support/test-endpoint.js';

let scheduler: Scheduler | undefined;
let endpoint: TestEndpoint | undefined;
afterEach(async () => {
  await scheduler?.close();
  await endpoint?.close();
  scheduler = undefined;
  endpoint = undefined;
});

const OK = Status.OK as number;
const startMs = (a: proto.IAttempt) => proto.timestampToDate(a.startTime)!.getTime();
const endMs = (a: proto.IAttempt) => startMs(a) + (proto.durationToMs(a.duration) ?? 0);
const runsOf = (fn: string) => endpoint!.runs.filter((r) => r.request.function === fn);

async function dispatchOne(fn: string, input = 'in'): Promise<string> {
  const [id] = await scheduler!.dispatch([{ function: fn, endpoint: endpoint!.url, input: str(input) }]);
  return id!;
}

describe('polls', () => {
  it('keeps a durable timer: a poll without calls resumes after max_wait', async () => {
    endpoint = await startEndpoint((req) =>
      req.pollResult
        ? ok(`woke with ${req.pollResult.results?.length ?? 0} results`)
        : { status: OK, poll: { typedCoroutineState: str('sleeping'), maxWait: proto.durationFromMs(1000), minResults: 1, maxResults: 1 } },
    );
    scheduler = await startTestScheduler();
    const id = await dispatchOne('sleep');
    await until(async () => (await scheduler!.get(id)).state === 3); // SUSPENDED
    expect(text((await scheduler.get(id)).typedCoroutineState)).toBe('sleeping');
    const result = await scheduler.wait(id, 10_000);
    expect(result.done && text(result.result.output)).toBe('woke with 0 results');
    const [suspend, resume] = (await scheduler.get(id)).attemptHistory!;
    expect(suspend?.outcome).toBe('suspend');
    expect(resume?.resume).toBe(true);
    expect(startMs(resume!) - endMs(suspend!)).toBeGreaterThanOrEqual(1000);
    expect(text(runsOf('sleep')[1]!.request.pollResult?.typedCoroutineState)).toBe('sleeping');
  });

  it('treats max_wait under 1 s (or missing) as 5 minutes', async () => {
    endpoint = await startEndpoint((req) => ({
      status: OK,
      poll: { ...(req.function === 'short' ? { maxWait: proto.durationFromMs(200) } : {}), minResults: 1, maxResults: 1 },
    }));
    scheduler = await startTestScheduler();
    for (const fn of ['short', 'missing']) {
      const id = await dispatchOne(fn);
      await until(async () => (await scheduler!.get(id)).state === 3); // SUSPENDED
      const info = await scheduler.get(id);
      const wait = proto.timestampToDate(info.nextRunTime)!.getTime() - endMs(info.attemptHistory![0]!);
      expect(wait, `${fn}: the resume is due 5 minutes after the poll`).toBe(5 * 60_000);
    }
  });

  it('runs a Python-style parent: opaque coroutine_state, min_results=1, no max_wait, re-polls with no calls', async () => {
    const state = new Uint8Array([0x80, 0x04, 0x95, 0xde, 0xad, 0xbe, 0xef]); // pickle-ish bytes
    const collected = new Map<string, string>();
    const resumes: number[] = [];
    endpoint = await startEndpoint((req) => {
      if (req.function === 'child') return ok(`child(${text(req.input)})`);
      if (!req.pollResult) {
        const calls: proto.ICall[] = [1, 2, 3].map((i) => ({
          correlationId: proto.toLong(BigInt(i)), // (coroutine 0 << 32) | call i
          endpoint: i === 3 ? '' : endpoint!.url, // empty endpoint: the caller's
          function: 'child',
          input: str(String(i)),
        }));
        return { status: OK, poll: { coroutineState: state, calls, minResults: 1, maxResults: 10 } };
      }
      expect(Buffer.from(req.pollResult.coroutineState ?? []).equals(Buffer.from(state))).toBe(true);
      resumes.push(req.pollResult.results?.length ?? 0);
      for (const r of req.pollResult.results ?? []) collected.set(proto.toBigInt(r.correlationId).toString(), text(r.output));
      if (collected.size === 3) return ok([...collected.entries()].sort().map(([k, v]) => `${k}=${v}`).join(','));
      return { status: OK, poll: { coroutineState: state, minResults: 1, maxResults: 10 } };
    });
    scheduler = await startTestScheduler();
    const id = await dispatchOne('pyParent');
    const result = await scheduler.wait(id, 10_000);
    expect(result.done && text(result.result.output)).toBe('1=child(1),2=child(2),3=child(3)');
    const children = runsOf('child');
    expect(children).toHaveLength(3);
    for (const c of children) expect(c.request).toMatchObject({ parentDispatchId: id, rootDispatchId: id });
    expect(resumes.reduce((a, b) => a + b, 0)).toBe(3);
    const info = await scheduler.get(id);
    expect(info.children).toHaveLength(3);
    const child = await scheduler.get(info.children![0]!);
    expect(child).toMatchObject({ parentDispatchId: id, rootDispatchId: id });
  });

  it('runs a go-style parent: 64-bit correlation IDs above 2^63, foreign typed state, min=max=N', async () => {
    const base = (1n << 63n) + BigInt(`0x${randomBytes(7).toString('hex')}`);
    const stateUrl = 'buf.build/stealthrocket/coroutine/coroutine.v1.State';
    const stateBytes = new Uint8Array(randomBytes(64));
    let resumed: proto.IPollResult | undefined;
    endpoint = await startEndpoint((req) => {
      if (req.function === 'square') return ok(String(Number(text(req.input)) ** 2));
      if (!req.pollResult) {
        const calls = [0, 1, 2, 3].map((i) => ({
          correlationId: proto.toLong(base + BigInt(i)),
          endpoint: endpoint!.url,
          function: 'square',
          input: str(String(i + 1)),
        }));
        return {
          status: OK,
          poll: { typedCoroutineState: { typeUrl: stateUrl, value: stateBytes }, calls, minResults: 4, maxResults: 4, maxWait: proto.durationFromMs(300_000) },
        };
      }
      resumed = req.pollResult;
      return ok('sum');
    });
    scheduler = await startTestScheduler();
    const id = await dispatchOne('goParent');
    const result = await scheduler.wait(id, 10_000);
    expect(result.done && result.status).toBe(Status.OK);
    expect(runsOf('goParent')).toHaveLength(2); // one run, one resume with all four results
    expect(resumed?.typedCoroutineState?.typeUrl).toBe(stateUrl);
    expect(Buffer.from(resumed?.typedCoroutineState?.value ?? []).equals(Buffer.from(stateBytes))).toBe(true);
    const byCorrelation = new Map((resumed?.results ?? []).map((r) => [proto.toBigInt(r.correlationId), text(r.output)]));
    expect(byCorrelation).toEqual(
      new Map([
        [base, '1'],
        [base + 1n, '4'],
        [base + 2n, '9'],
        [base + 3n, '16'],
      ]),
    );
  });

  it('delivers at most max_results per resume, and outstanding results on later resumes', async () => {
    const perResume: number[] = [];
    let got = 0;
    endpoint = await startEndpoint((req) => {
      if (req.function === 'leaf') return ok('leaf');
      const poll = (calls: proto.ICall[]) => ({ status: OK, poll: { typedCoroutineState: str('s'), calls, minResults: 1, maxResults: 2 } });
      if (!req.pollResult) {
        return poll(
          [1, 2, 3, 4, 5].map((i) => ({ correlationId: proto.toLong(BigInt(i)), endpoint: endpoint!.url, function: 'leaf', input: str('') })),
        );
      }
      perResume.push(req.pollResult.results?.length ?? 0);
      got += req.pollResult.results?.length ?? 0;
      return got === 5 ? ok(`got ${got}`) : poll([]);
    });
    scheduler = await startTestScheduler();
    const id = await dispatchOne('fanIn');
    const result = await scheduler.wait(id, 10_000);
    expect(result.done && text(result.result.output)).toBe('got 5');
    expect(Math.max(...perResume)).toBeLessThanOrEqual(2);
    expect(perResume.reduce((a, b) => a + b, 0)).toBe(5);
  });

  it('drops a call whose correlation ID repeats one of the same execution (8.17)', async () => {
    endpoint = await startEndpoint((req) => {
      if (req.function === 'leaf') return ok(text(req.input));
      if (!req.pollResult) {
        const call = (input: string) => ({ correlationId: proto.toLong(7n), endpoint: endpoint!.url, function: 'leaf', input: str(input) });
        return { status: OK, poll: { typedCoroutineState: str('s'), calls: [call('a'), call('b')], minResults: 1, maxResults: 10, maxWait: proto.durationFromMs(1000) } };
      }
      return ok((req.pollResult.results ?? []).map((r) => text(r.output)).join(','));
    });
    scheduler = await startTestScheduler();
    const id = await dispatchOne('dup');
    const result = await scheduler.wait(id, 10_000);
    expect(result.done && text(result.result.output)).toBe('a');
    expect(runsOf('leaf')).toHaveLength(1);
  });

  it('resumes at once on an error result when the poll sets wake_on_error, and cancels the orphans when the parent exits', async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((r) => {
      release = r;
    });
    endpoint = await startEndpoint(async (req) => {
      if (req.function === 'boom') return fail(Status.PERMANENT_ERROR, 'Boom', 'exploded');
      if (req.function === 'slow') {
        await released;
        return ok('slow');
      }
      if (!req.pollResult) {
        const calls = ['boom', 'slow', 'slow'].map((fn, i) => ({ correlationId: proto.toLong(BigInt(i + 1)), endpoint: endpoint!.url, function: fn, input: str('') }));
        return { status: OK, poll: { typedCoroutineState: str('s'), calls, minResults: 3, maxResults: 3, maxWait: proto.durationFromMs(300_000), wakeOnError: true } };
      }
      const err = req.pollResult.results?.find((r) => r.error)?.error;
      return fail(Status.PERMANENT_ERROR, err?.type ?? '?', `child failed: ${err?.message}`);
    });
    scheduler = await startTestScheduler();
    const id = await dispatchOne('failFast');
    const result = await scheduler.wait(id, 10_000);
    expect(result.done && result.result.error?.message).toBe('child failed: exploded');
    const info = await scheduler.get(id);
    const states = await Promise.all(info.children!.map(async (c) => (await scheduler!.get(c)).state));
    expect(states.sort()).toEqual([5, 6, 6]); // failed, cancelled, cancelled
    const slow = await scheduler.get(info.children![1]!);
    expect(slow.error?.message).toMatch(/parent .* finished before collecting/);
    release();
  });

  it('resumes with PollResult.error when a poll is refused', async () => {
    endpoint = await startEndpoint((req) => {
      if (!req.pollResult) {
        return { status: OK, poll: { typedCoroutineState: str('s'), calls: [{ function: 'bad-name', endpoint: endpoint!.url }], minResults: 1, maxResults: 1 } };
      }
      return fail(Status.INVALID_ARGUMENT, 'PollError', req.pollResult.error?.message ?? 'no error');
    });
    scheduler = await startTestScheduler();
    const id = await dispatchOne('refused');
    const result = await scheduler.wait(id, 10_000);
    expect(result.done && result.result.error?.message).toMatch(/none of its calls were dispatched.*bad-name/);
    expect((await scheduler.get(id)).children).toEqual([]);
  });

  it('follows tail calls under the same dispatch ID; the tail call wins over the status', async () => {
    endpoint = await startEndpoint((req) => {
      if (req.function === 'first') return { status: OK, exit: { result: {}, tailCall: { function: 'second', input: str('from first') } } };
      if (req.function === 'second') {
        // python's Reset: TEMPORARY_ERROR and no result
        return { status: Status.TEMPORARY_ERROR as number, exit: { tailCall: { function: 'third', input: str(`${text(req.input)}, second`) } } };
      }
      return ok(`third got ${text(req.input)}`);
    });
    scheduler = await startTestScheduler();
    const id = await dispatchOne('first');
    const result = await scheduler.wait(id, 10_000);
    expect(result.done && text(result.result.output)).toBe('third got from first, second');
    const info = await scheduler.get(id);
    expect(info).toMatchObject({ function: 'third', originalFunction: 'first', attempts: 3 });
    expect(info.attemptHistory?.map((a) => a.outcome)).toEqual(['tail_call', 'tail_call', 'exit']);
    const created = endpoint.runs.map((r) => proto.timestampToDate(r.request.creationTime)!.getTime());
    expect(new Set(created).size).toBe(1);
    expect(new Set(endpoint.runs.map((r) => r.request.dispatchId))).toEqual(new Set([id]));
  });

  it('cancels a call with its descendants; cancelled calls end with a clear error', async () => {
    endpoint = await startEndpoint((req) => {
      if (req.pollResult) return ok('should not resume');
      const leafPoll = { status: OK, poll: { typedCoroutineState: str('t'), maxWait: proto.durationFromMs(60_000), minResults: 1, maxResults: 1 } };
      if (req.function === 'leaf') return leafPoll;
      const fn = req.function === 'root' ? 'middle' : 'leaf';
      const n = req.function === 'root' ? 2 : 1;
      const calls = Array.from({ length: n }, (_, i) => ({ correlationId: proto.toLong(BigInt(i + 1)), endpoint: endpoint!.url, function: fn, input: str('') }));
      return { status: OK, poll: { typedCoroutineState: str('s'), calls, minResults: n, maxResults: n, maxWait: proto.durationFromMs(60_000) } };
    });
    scheduler = await startTestScheduler();
    const id = await dispatchOne('root');
    await until(() => runsOf('leaf').length === 2);
    await until(async () => (await scheduler!.list({ states: ['suspended'] })).calls.length === 5);
    expect(await scheduler.cancel(id)).toBe(5);
    const result = await scheduler.wait(id, 1000);
    expect(result).toMatchObject({ done: true, state: 'cancelled', status: Status.PERMANENT_ERROR });
    expect(result.done && result.result.error).toMatchObject({ type: 'CancelledError' });
    expect(result.done && result.result.error?.message).toMatch(/cancelled through the scheduler API/);
    const page = await scheduler.list({});
    expect(page.counts).toMatchObject({ cancelled: 5, suspended: 0 });
    const leaf = page.calls.find((c) => c.function === 'leaf')!;
    expect(leaf.error?.message).toMatch(/parent .* was cancelled/);
    expect(await scheduler.cancel(id)).toBe(0);
  });

  it('delivers a cancelled child to its waiting parent as an error result', async () => {
    endpoint = await startEndpoint((req) => {
      if (req.function === 'forever') return { status: OK, poll: { maxWait: proto.durationFromMs(60_000), minResults: 1, maxResults: 1 } };
      if (!req.pollResult) {
        return {
          status: OK,
          poll: { typedCoroutineState: str('s'), calls: [{ correlationId: proto.toLong(1n), endpoint: endpoint!.url, function: 'forever' }], minResults: 1, maxResults: 1, maxWait: proto.durationFromMs(60_000) },
        };
      }
      return ok(`child said: ${req.pollResult.results?.[0]?.error?.message}`);
    });
    scheduler = await startTestScheduler();
    const id = await dispatchOne('waiter');
    await until(() => runsOf('forever').length === 1);
    await until(async () => (await scheduler!.list({ states: ['suspended'] })).calls.length === 2);
    const [child] = (await scheduler.get(id)).children!;
    expect(await scheduler.cancel(child!)).toBe(1);
    const result = await scheduler.wait(id, 10_000);
    expect(result.done && text(result.result.output)).toMatch(/child said: the call .* was cancelled/);
  });

  it('elides a large state of this project\'s SDK, and resends it in full when the SDK asks (not an attempt)', async () => {
    const url = 'type.googleapis.com/dispatch.typescript.v1.Journal';
    const seen: Array<{ elided: boolean; length: number; value: number[] }> = [];
    let n = 0;
    endpoint = await startEndpoint((req) => {
      if (req.function === 'leaf') return ok('x');
      const pr = req.pollResult;
      const call = (i: number) => [{ correlationId: proto.toLong(BigInt(i)), endpoint: endpoint!.url, function: 'leaf', input: str('') }];
      if (!pr) return { status: OK, poll: { typedCoroutineState: { typeUrl: url, value: new Uint8Array([1, 2, 3]) }, calls: call(1), minResults: 1, maxResults: 1 } };
      seen.push({ elided: !!pr.stateElided, length: Number(proto.toBigInt(pr.stateLength)), value: [...(pr.typedCoroutineState?.value ?? [])] });
      if (pr.stateElided) return { status: OK, stateRequired: true };
      n++;
      if (n === 1) {
        expect(req.acceptsStateDelta).toBe(true);
        return { status: OK, poll: { typedCoroutineState: { typeUrl: url, value: new Uint8Array([4, 5]) }, stateIsDelta: true, calls: call(2), minResults: 1, maxResults: 1 } };
      }
      return ok('done');
    });
    scheduler = await startTestScheduler({ elideStateAbove: 0 });
    const id = await dispatchOne('journaled');
    const result = await scheduler.wait(id, 10_000);
    expect(result.done && text(result.result.output)).toBe('done');
    expect(seen).toEqual([
      { elided: false, length: 0, value: [1, 2, 3] },
      { elided: true, length: 5, value: [] },
      { elided: false, length: 0, value: [1, 2, 3, 4, 5] },
    ]);
    const info = await scheduler.get(id);
    expect(info.attemptHistory).toHaveLength(3);
  });

  it('keeps orphans running when asked to', async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((r) => {
      release = r;
    });
    endpoint = await startEndpoint(async (req) => {
      if (req.function === 'slowLeaf') {
        await released;
        return ok('leaf done');
      }
      if (!req.pollResult) {
        const calls = [{ correlationId: proto.toLong(1n), endpoint: endpoint!.url, function: 'slowLeaf', input: str('') }];
        return { status: OK, poll: { typedCoroutineState: str('s'), calls, minResults: 1, maxResults: 1, maxWait: proto.durationFromMs(1000) } };
      }
      return ok(req.pollResult.results?.length ? 'parent saw the leaf' : 'parent done');
    });
    scheduler = await startTestScheduler({ orphans: 'keep' });
    const id = await dispatchOne('impatient');
    let child: string | undefined;
    try {
      // The parent stops waiting after max_wait and finishes while its child still runs.
      const result = await scheduler.wait(id, 10_000);
      expect(result.done && text(result.result.output)).toBe('parent done');
      [child] = (await scheduler.get(id)).children!;
      expect((await scheduler.get(child!)).state).toBe(2); // RUNNING
    } finally {
      release(); // the held run ends whatever happened
    }
    // The orphan is kept: its run finishes and its result is recorded.
    const orphan = await scheduler.wait(child!, 10_000);
    expect(orphan.done && orphan.state).toBe('succeeded');
    expect(orphan.done && text(orphan.result.output)).toBe('leaf done');
    expect(runsOf('slowLeaf')).toHaveLength(1);
  });
});
