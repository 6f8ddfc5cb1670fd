import { Status } from '@dispatch/core/protocol';
import { proto } from '@dispatch/core/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { Scheduler } from '../src/scheduler.js';
import { ok, startEndpoint, startTestScheduler, str, type TestEndpoint, text, until } from './support/test-endpoint.js';

let scheduler: Scheduler | undefined;
let endpoint: TestEndpoint | undefined;
afterEach(async () => {
  await scheduler?.close();
  await endpoint?.close();
  scheduler = undefined;
  endpoint = undefined;
});

const DISPATCH = '/dispatch.sdk.v1.DispatchService/Dispatch';
const SVC = '/dispatch.typescript.v1.SchedulerService/';

function post(path: string, body: Uint8Array | string, headers: Record<string, string> = {}) {
  return fetch(`${scheduler!.url}${path}`, {
    method: 'POST',
    body,
    headers: { authorization: `Bearer ${scheduler!.apiKey}`, 'content-type': 'application/proto', ...headers },
  });
}

async function dispatchBinary(calls: proto.ICall[], headers: Record<string, string> = {}) {
  return post(DISPATCH, proto.DispatchRequest.encode({ calls }), headers);
}

describe('API: Dispatch', () => {
  it('accepts binary protobuf and answers dispatch IDs in request order', async () => {
    endpoint = await startEndpoint((req) => ok(`hi ${text(req.input)}`));
    scheduler = await startTestScheduler();
    const res = await dispatchBinary([
      { function: 'greet', endpoint: endpoint.url, input: str('a') },
      { function: 'greet', endpoint: endpoint.url, input: str('b') },
    ]);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/proto');
    const { dispatchIds } = proto.DispatchResponse.decode(new Uint8Array(await res.arrayBuffer()));
    expect(dispatchIds).toHaveLength(2);
    const results = await Promise.all(dispatchIds!.map((id) => scheduler!.wait(id, 10_000)));
    expect(results.map((r) => r.done && text(r.result.output))).toEqual(['hi a', 'hi b']);
  });

  it('refuses a missing or wrong API key with 401 unauthenticated', async () => {
    scheduler = await startTestScheduler({ apiKeys: ['right-key-0123456789', 'other-key-0123456789'] });
    const call = [{ function: 'f', endpoint: 'http://127.0.0.1:1' }];
    const missing = await fetch(`${scheduler.url}${DISPATCH}`, { method: 'POST', body: proto.DispatchRequest.encode({ calls: call }) });
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ code: 'unauthenticated' });
    const wrong = await dispatchBinary(call, { authorization: 'Bearer wrong-key-0123456789' });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({
      code: 'unauthenticated',
      message: expect.stringMatching(/invalid API key/),
    });
    const second = await dispatchBinary(call, { authorization: 'Bearer other-key-0123456789' });
    expect(second.status).toBe(200);
  });

  it('validates calls with invalid_argument and creates nothing from an invalid batch', async () => {
    scheduler = await startTestScheduler();
    const cases: Array<[proto.ICall[], RegExp]> = [
      [[], /no calls/],
      [[{ function: 'bad-name', endpoint: 'http://127.0.0.1:1' }], /calls\[0\]\.function "bad-name" does not match/],
      [[{ function: '', endpoint: 'http://127.0.0.1:1' }], /function is required/],
      [[{ function: 'ok', endpoint: '' }], /endpoint is required/],
      [[{ function: 'ok', endpoint: 'ftp://x' }], /must start with http:\/\/, https:\/\/, bridge:\/\/ or arn:aws:lambda/],
      [[{ function: 'ok', endpoint: 'http://127.0.0.1:1' }, { function: 'ok', endpoint: 'http://127.0.0.1:1', expiration: { seconds: -1 } }], /calls\[1\]\.expiration must be ≥ 0/],
    ];
    for (const [calls, message] of cases) {
      const res = await dispatchBinary(calls);
      expect(res.status).toBe(400);
      const body = (await res.json()) as { code: string; message: string };
      expect(body.code).toBe('invalid_argument');
      expect(body.message).toMatch(message);
    }
    const ok1 = await dispatchBinary([{ function: 'Ok_1<T>.x', endpoint: 'bridge://session' }, { function: 'f', endpoint: 'arn:aws:lambda:us-east-1:1:function:f' }]);
    expect(ok1.status).toBe(200);
    expect((await scheduler.list({})).calls).toHaveLength(2);
  });

  it('answers 413 resource_exhausted over the body limit, 415 to other content types, 400 to garbage', async () => {
    scheduler = await startTestScheduler({ maxBodyBytes: 1000 });
    const big = proto.DispatchRequest.encode({ calls: [{ function: 'f', endpoint: 'http://127.0.0.1:1', input: str('x'.repeat(2000)) }] });
    const res = await dispatchBinary([], {}).then(() => post(DISPATCH, big));
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: 'resource_exhausted' });
    const xml = await post(DISPATCH, '<calls/>', { 'content-type': 'application/xml' });
    expect(xml.status).toBe(415);
    const garbage = await post(DISPATCH, new Uint8Array([0xff, 0xff, 0xff]));
    expect(garbage.status).toBe(400);
    expect(await garbage.json()).toMatchObject({ code: 'invalid_argument' });
    const unknown = await post('/nope.Service/Method', '');
    expect(unknown.status).toBe(404);
  });

  it('speaks Connect JSON and answers in JSON', async () => {
    endpoint = await startEndpoint((req) => ok(`json ${text(req.input)}`));
    scheduler = await startTestScheduler();
    const res = await post(
      DISPATCH,
      JSON.stringify({
        calls: [{ function: 'greet', endpoint: endpoint.url, input: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: 'Ada' } }],
      }),
      { 'content-type': 'application/json' },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const { dispatchIds } = (await res.json()) as { dispatchIds: string[] };
    const id = dispatchIds[0]!;
    const wait = await post(`${SVC}Wait`, JSON.stringify({ dispatchId: id, timeout: '10s' }), { 'content-type': 'application/json' });
    const waited = (await wait.json()) as { done: boolean; status: string; state: string; result: { output: { value: string } } };
    expect(waited).toMatchObject({ done: true, status: 'STATUS_OK', state: 'CALL_STATE_SUCCEEDED' });
    expect(waited.result.output.value).toBe('json Ada');
    const get = await post(`${SVC}Get`, JSON.stringify({ dispatchId: id }), { 'content-type': 'application/json' });
    const info = ((await get.json()) as { call: Record<string, unknown> }).call;
    expect(info).toMatchObject({ dispatchId: id, function: 'greet', state: 'CALL_STATE_SUCCEEDED', attempts: 1 });
    const missing = await post(`${SVC}Get`, JSON.stringify({ dispatchId: 'nope' }), { 'content-type': 'application/json' });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'not_found' });
  });

  it('honours idempotency keys: same key, same dispatch ID, nothing created twice (also concurrently)', async () => {
    endpoint = await startEndpoint(() => ok('once'));
    scheduler = await startTestScheduler();
    const call = (key: string) => ({ function: 'pay', endpoint: endpoint!.url, input: str('x'), idempotencyKey: key });
    const first = await scheduler.dispatch([call('order-1')]);
    const again = await scheduler.dispatch([call('order-1')]);
    expect(again).toEqual(first);
    const racing = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const res = await dispatchBinary([call('order-2')]);
        return proto.DispatchResponse.decode(new Uint8Array(await res.arrayBuffer())).dispatchIds![0];
      }),
    );
    expect(new Set(racing).size).toBe(1);
    const inBatch = await scheduler.dispatch([call('order-3'), call('order-3')]);
    expect(inBatch[0]).toBe(inBatch[1]);
    await Promise.all([first[0]!, racing[0]!, inBatch[0]!].map((id) => scheduler!.wait(id, 10_000)));
    expect(endpoint.runs).toHaveLength(3);
    expect((await scheduler.list({})).calls).toHaveLength(3);
  });
});

describe('a scheduler started paused', () => {
  it('stores calls but runs none until startRunning()', async () => {
    let released = false;
    const runsBeforeRelease: string[] = [];
    endpoint = await startEndpoint((req) => {
      if (!released) runsBeforeRelease.push(req.dispatchId ?? '');
      return ok('ran');
    });
    scheduler = await startTestScheduler({ startPaused: true });
    const ids = await scheduler.dispatch(Array.from({ length: 5 }, () => ({ function: 'f', endpoint: endpoint!.url, input: str('x') })));
    const waiting = await scheduler.wait(ids[0]!, 300);
    expect(waiting).toEqual({ done: false, state: 'pending' });
    expect((await scheduler.list({})).counts.pending).toBe(5);
    released = true;
    scheduler.startRunning();
    scheduler.startRunning(); // once is enough; again does nothing
    for (const id of ids) expect(await scheduler.wait(id, 10_000)).toMatchObject({ done: true, state: 'succeeded' });
    expect(runsBeforeRelease).toEqual([]);
    expect(endpoint.runs).toHaveLength(5);
  });
});

describe('API: SchedulerService', () => {
  it('Wait blocks until the result, or times out with done=false', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    endpoint = await startEndpoint(async () => {
      await gate;
      return ok('late');
    });
    scheduler = await startTestScheduler();
    const [id] = await scheduler.dispatch([{ function: 'late', endpoint: endpoint.url }]);
    const early = await post(`${SVC}Wait`, proto.WaitRequest.encode({ dispatchId: id!, timeout: proto.durationFromMs(100) }));
    const earlyBody = proto.WaitResponse.decode(new Uint8Array(await early.arrayBuffer()));
    expect(earlyBody.done).toBe(false);
    const pending = post(`${SVC}Wait`, proto.WaitRequest.encode({ dispatchId: id!, timeout: proto.durationFromMs(10_000) }));
    release();
    const body = proto.WaitResponse.decode(new Uint8Array(await (await pending).arrayBuffer()));
    expect(body.done).toBe(true);
    expect(body.status).toBe(Status.OK);
    expect(text(body.result?.output)).toBe('late');
    expect(body.result?.dispatchId).toBe(id);
  });

  it('Get shows attempts, input and output decoded, parent and children, and the concurrency limit', async () => {
    endpoint = await startEndpoint((req) => {
      if (req.function === 'child') return ok('kid');
      if (!req.pollResult) {
        return { status: 1, poll: { typedCoroutineState: str('s'), calls: [{ correlationId: proto.toLong(5n), endpoint: endpoint!.url, function: 'child', input: str('c') }], minResults: 1, maxResults: 1 } };
      }
      return ok('parent done');
    });
    scheduler = await startTestScheduler({ concurrency: { initial: 7 } });
    const [id] = await scheduler.dispatch([{ function: 'parent', endpoint: endpoint.url, input: str('p') }]);
    await scheduler.wait(id!, 10_000);
    const res = await post(`${SVC}Get`, proto.GetRequest.encode({ dispatchId: id! }));
    const info = proto.GetResponse.decode(new Uint8Array(await res.arrayBuffer())).call!;
    expect(info).toMatchObject({ dispatchId: id, function: 'parent', state: 4, status: Status.OK, attempts: 1, resumes: 1 });
    expect(info.inputJson).toBe('"p"');
    expect(info.outputJson).toBe('"parent done"');
    expect(info.attemptHistory?.map((a) => [a.outcome, a.status, a.resume])).toEqual([
      ['suspend', 1, false],
      ['exit', 1, true],
    ]);
    expect(info.children).toHaveLength(1);
    expect(info.concurrency).toMatchObject({ endpoint: endpoint.url, function: 'parent', min: 1, max: 1000 });
    expect(info.concurrency!.limit).toBeGreaterThanOrEqual(7);
    const child = await scheduler.get(info.children![0]!);
    expect(child).toMatchObject({ parentDispatchId: id, rootDispatchId: id });
    expect(proto.toBigInt(child.correlationId)).toBe(5n);
    // Re-encodes as a CallInfo (the CLI prints it).
    expect(proto.CallInfo.decode(proto.CallInfo.encode(child)).dispatchId).toBe(child.dispatchId);
  });

  it('List filters by state and function, pages with a cursor, and counts per state', async () => {
    endpoint = await startEndpoint((req) => (req.function === 'bad' ? { status: Status.PERMANENT_ERROR as number, exit: { result: { error: { type: 'E', message: 'no' } } } } : ok('y')));
    scheduler = await startTestScheduler();
    const ids = await scheduler.dispatch([
      ...Array.from({ length: 5 }, () => ({ function: 'good', endpoint: endpoint!.url })),
      ...Array.from({ length: 2 }, () => ({ function: 'bad', endpoint: endpoint!.url })),
    ]);
    await Promise.all(ids.map((id) => scheduler!.wait(id, 10_000)));
    const res = await post(`${SVC}List`, JSON.stringify({ limit: 3, function: 'good' }), { 'content-type': 'application/json' });
    const page = (await res.json()) as { calls: Array<{ function: string }>; nextCursor: string; counts: Array<{ state: string; count: string }> };
    expect(page.calls.map((c) => c.function)).toEqual(['good', 'good', 'good']);
    expect(page.nextCursor).toBeTruthy();
    expect(page.counts.find((c) => c.state === 'CALL_STATE_SUCCEEDED')?.count).toBe('5');
    const next = await post(`${SVC}List`, JSON.stringify({ limit: 3, function: 'good', cursor: page.nextCursor }), { 'content-type': 'application/json' });
    const page2 = (await next.json()) as { calls: unknown[]; nextCursor?: string };
    expect(page2.calls).toHaveLength(2);
    expect(page2.nextCursor ?? '').toBe('');
    const failed = await post(`${SVC}List`, JSON.stringify({ states: ['CALL_STATE_FAILED'] }), { 'content-type': 'application/json' });
    const failedBody = (await failed.json()) as { calls: Array<{ function: string; error: { message: string } }> };
    expect(failedBody.calls.map((c) => c.function)).toEqual(['bad', 'bad']);
    expect(failedBody.calls[0]?.error.message).toBe('no');
    const inRange = await scheduler.list({ createdAfter: Date.now() + 60_000 });
    expect(inRange.calls).toEqual([]);
  });

  it('Cancel and Restart over the API', async () => {
    let failNext = true;
    endpoint = await startEndpoint((req) => {
      if (req.function === 'sleepy') return { status: 1, poll: { maxWait: proto.durationFromMs(60_000), minResults: 1, maxResults: 1 } };
      if (failNext) {
        failNext = false;
        return { status: Status.PERMANENT_ERROR as number, exit: { result: { error: { type: 'E', message: 'first time' } } } };
      }
      return ok(`second ${text(req.input)}`);
    });
    scheduler = await startTestScheduler();
    const [sleepy, flaky] = await scheduler.dispatch([
      { function: 'sleepy', endpoint: endpoint.url },
      { function: 'flaky', endpoint: endpoint.url, input: str('input') },
    ]);
    await until(async () => (await scheduler!.get(sleepy!)).state === 3);
    const cancel = await post(`${SVC}Cancel`, JSON.stringify({ dispatchId: sleepy }), { 'content-type': 'application/json' });
    expect(await cancel.json()).toEqual({ cancelled: 1 });
    expect((await scheduler.get(sleepy!)).state).toBe(6);

    const first = await scheduler.wait(flaky!, 10_000);
    expect(first.done && first.status).toBe(Status.PERMANENT_ERROR);
    const restart = await post(`${SVC}Restart`, JSON.stringify({ dispatchId: flaky }), { 'content-type': 'application/json' });
    expect(restart.status).toBe(200);
    const second = await scheduler.wait(flaky!, 10_000);
    expect(second.done && text(second.result.output)).toBe('second input');
    expect((await scheduler.get(flaky!)).attemptHistory).toHaveLength(2);
    const unknown = await post(`${SVC}Restart`, JSON.stringify({ dispatchId: 'nope' }), { 'content-type': 'application/json' });
    expect(unknown.status).toBe(404);
  });

  it('serves GET /healthz without a key', async () => {
    scheduler = await startTestScheduler();
    const res = await fetch(`${scheduler.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok' });
  });
});
