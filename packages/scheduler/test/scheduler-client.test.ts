import net from 'node:net';
import { DispatchApiError, Status } from '@dispatch/core/protocol';
import { proto } from '@dispatch/core/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Scheduler } from '../src/scheduler.js';
import { SchedulerClient } from '../src/api/scheduler-client.js';
import { type Answer, fail, ok, startEndpoint, startTestScheduler, str, type TestEndpoint, text } from './support/test-endpoint.js';

let scheduler: Scheduler;
let endpoint: TestEndpoint;
let client: SchedulerClient;

beforeAll(async () => {
  endpoint = await startEndpoint(async (req): Promise<Answer> => {
    if (req.function === 'nap') return { status: proto.ProtoStatus.STATUS_OK, poll: { maxWait: { seconds: 3600 }, minResults: 1, maxResults: 1 } };
    if (req.function === 'bad') return fail(Status.PERMANENT_ERROR, 'PermanentError', 'nope');
    return ok(`hi ${text(req.input)}`);
  });
  scheduler = await startTestScheduler();
  client = new SchedulerClient({ apiUrl: scheduler.url, apiKey: scheduler.apiKey });
});
afterAll(async () => {
  await scheduler?.close();
  await endpoint?.close();
});

describe('SchedulerClient', () => {
  it('dispatches, waits, gets and lists over the API', async () => {
    const [a, b] = await client.dispatch([
      { function: 'greet', endpoint: endpoint.url, input: str('ada') },
      { function: 'bad', endpoint: endpoint.url, input: str('x') },
    ]);
    const ra = await client.wait(a!, 10_000);
    expect(ra).toMatchObject({ done: true, state: 'succeeded', status: Status.OK });
    expect(ra.done && text(ra.result.output)).toBe('hi ada');
    const rb = await client.wait(b!, 10_000);
    expect(rb).toMatchObject({ done: true, state: 'failed', status: Status.PERMANENT_ERROR });
    expect(rb.done && rb.result.error?.message).toBe('nope');
    const info = await client.get(a!);
    expect(info).toMatchObject({ dispatchId: a, function: 'greet', attempts: 1 });
    expect(info.attemptHistory).toHaveLength(1);
    const page = await client.list({ states: ['failed'] });
    expect(page.calls.map((c) => c.dispatchId)).toEqual([b]);
    expect(page.counts).toMatchObject({ succeeded: 1, failed: 1 });
    expect((await client.list({ function: 'greet', limit: 1 })).calls).toHaveLength(1);
  });

  it('waits with a timeout, cancels and restarts', async () => {
    const [id] = await client.dispatch([{ function: 'nap', endpoint: endpoint.url }]);
    const waited = await client.wait(id!, 200);
    expect(waited.done).toBe(false);
    expect(await client.cancel(id!)).toBe(1);
    expect(await client.wait(id!, 5_000)).toMatchObject({ done: true, state: 'cancelled' });
    const restarted = await client.restart(id!);
    expect(restarted.dispatchId).toBe(id);
  });

  it('reads the health and verification key without a key', async () => {
    const health = await new SchedulerClient({ apiUrl: scheduler.url, apiKey: '' }).health();
    expect(health).toMatchObject({ status: 'ok', verificationKey: scheduler.verificationKey });
  });

  it('says what to do on a bad key, an unknown ID, an unreachable scheduler and a bad URL', async () => {
    const bad = new SchedulerClient({ apiUrl: scheduler.url, apiKey: 'wrong' });
    const e1 = (await bad.list().catch((e: unknown) => e)) as DispatchApiError;
    expect(e1).toBeInstanceOf(DispatchApiError);
    expect(e1.code).toBe('unauthenticated');
    expect(e1.message).toMatch(/refused the API key wro\*+: use the key it printed at startup/);
    const e2 = (await client.get('nope').catch((e: unknown) => e)) as DispatchApiError;
    expect(e2.code).toBe('not_found');
    expect(e2.message).toBe('no call with dispatch ID "nope"');
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const down = new SchedulerClient({ apiUrl: `http://127.0.0.1:${port}`, apiKey: 'k' });
    const e3 = (await down.get('x').catch((e: unknown) => e)) as DispatchApiError;
    expect(e3.code).toBe('unavailable');
    expect(e3.message).toMatch(new RegExp(`cannot reach the scheduler at http://127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED.*\\): start one with \`dispatch serve\``));
    expect(() => new SchedulerClient({ apiUrl: 'localhost:4450', apiKey: 'k' })).toThrow(/must use http or https|not a valid URL/);
  });
});
