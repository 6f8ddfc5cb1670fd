/**
 * The core's API client (`DispatchClient` of @dispatch/core) against a real
 * scheduler over HTTP: dispatch, wait, get, list, cancel, restart and
 * health, with results decoded, and the errors a user meets.
 */
import net from 'node:net';
import { DispatchApiError, DispatchClient, PermanentError, Status } from '@dispatch/core';
import { proto } from '@dispatch/core/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Scheduler } from '../src/scheduler.js';
import { type Answer, fail, ok, startEndpoint, startTestScheduler, str, type TestEndpoint, text } from './support/test-endpoint.js';

let scheduler: Scheduler;
let endpoint: TestEndpoint;
let client: DispatchClient;

beforeAll(async () => {
  endpoint = await startEndpoint(async (req): Promise<Answer> => {
    if (req.function === 'nap') return { status: proto.ProtoStatus.STATUS_OK, poll: { maxWait: { seconds: 3600 }, minResults: 1, maxResults: 1 } };
    if (req.function === 'bad') return fail(Status.PERMANENT_ERROR, 'PermanentError', 'nope');
    return ok(`hi ${text(req.input)}`);
  });
  scheduler = await startTestScheduler();
  client = new DispatchClient({ apiUrl: scheduler.url, apiKey: scheduler.apiKey });
});
afterAll(async () => {
  await scheduler?.close();
  await endpoint?.close();
});

describe('DispatchClient against the scheduler', () => {
  it('dispatches, waits, gets and lists over the API, with results decoded', async () => {
    const [a, b] = await client.dispatch([
      { function: 'greet', endpoint: endpoint.url, input: str('ada') },
      { function: 'bad', endpoint: endpoint.url, input: str('x') },
    ]);
    const ra = await client.wait(a!, { timeoutMs: 10_000 });
    expect(ra).toMatchObject({ done: true, dispatchId: a, state: 'succeeded', status: Status.OK, statusName: 'OK', value: 'hi ada', error: undefined });
    expect(ra.done && text(ra.raw.output)).toBe('hi ada');
    const rb = await client.wait(b!, { timeoutMs: 10_000 });
    expect(rb).toMatchObject({ done: true, state: 'failed', status: Status.PERMANENT_ERROR, statusName: 'PERMANENT_ERROR' });
    expect(rb.done && rb.error).toBeInstanceOf(PermanentError);
    expect(rb.done && rb.error?.message).toBe('nope');
    expect(rb.done && rb.raw.error?.message).toBe('nope');
    const info = await client.get(a!);
    expect(info).toMatchObject({ dispatchId: a, function: 'greet', state: 'succeeded', attempts: 1, input: ['ada'], output: 'hi ada', parentDispatchId: null, rootDispatchId: a });
    expect(info.attemptHistory.map((x) => [x.number, x.statusName, x.outcome])).toEqual([[1, 'OK', 'exit']]);
    expect(info.createdAt.getTime()).toBeLessThanOrEqual(Date.now());
    const page = await client.list({ states: ['failed'] });
    expect(page.calls.map((c) => c.dispatchId)).toEqual([b]);
    expect(page.calls[0]?.error).toBeInstanceOf(PermanentError);
    expect(page.counts).toMatchObject({ succeeded: 1, failed: 1 });
    expect((await client.list({ function: 'greet', limit: 1 })).calls).toHaveLength(1);
  });

  it('waits with a timeout, cancels and restarts', async () => {
    const [id] = await client.dispatch([{ function: 'nap', endpoint: endpoint.url }]);
    const waited = await client.wait(id!, { timeoutMs: 200 });
    expect(waited.done).toBe(false);
    expect(await client.cancel(id!)).toBe(1);
    const cancelled = await client.wait(id!, { timeoutMs: 5_000 });
    expect(cancelled).toMatchObject({ done: true, state: 'cancelled', status: Status.PERMANENT_ERROR });
    expect(cancelled.done && cancelled.error?.name).toBe('CancelledError');
    expect(await client.cancel(id!)).toBe(0);
    const restarted = await client.restart(id!);
    expect(restarted.dispatchId).toBe(id);
    expect(['pending', 'running', 'suspended']).toContain(restarted.state);
  });

  it('reads the health and verification key without a key', async () => {
    const health = await new DispatchClient({ apiUrl: scheduler.url, apiKey: '' }).health();
    expect(health).toMatchObject({ status: 'ok', verificationKey: scheduler.verificationKey });
  });

  it('says what to do on a bad key, an unknown ID, an unreachable scheduler and a bad URL', async () => {
    const bad = new DispatchClient({ apiUrl: scheduler.url, apiKey: 'wrong' });
    const e1 = (await bad.list().catch((e: unknown) => e)) as DispatchApiError;
    expect(e1).toBeInstanceOf(DispatchApiError);
    expect(e1.code).toBe('unauthenticated');
    expect(e1.message).toMatch(/refused the API key wro\*+: use the key it printed at startup/);
    const e2 = (await client.get('nope').catch((e: unknown) => e)) as DispatchApiError;
    expect(e2.code).toBe('not_found');
    expect(e2.message).toBe('no call with dispatch ID "nope"');
    const e2w = (await client.wait('nope').catch((e: unknown) => e)) as DispatchApiError;
    expect([e2w.code, e2w.message]).toEqual(['not_found', 'no call with dispatch ID "nope"']);
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const down = new DispatchClient({ apiUrl: `http://127.0.0.1:${port}`, apiKey: 'k' });
    const e3 = (await down.get('x').catch((e: unknown) => e)) as DispatchApiError;
    expect(e3.code).toBe('unavailable');
    expect(e3.message).toMatch(new RegExp(`cannot reach the scheduler at http://127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED.*\\): start one with \`dispatch serve\``));
    expect(() => new DispatchClient({ apiUrl: 'localhost:4450', apiKey: 'k' })).toThrow(/must use http or https|not a valid URL/);
  });
});
