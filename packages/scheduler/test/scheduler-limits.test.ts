/**
 * The API's limits against abuse: short keys refused, wrong bearer keys
 * throttled per client address, requests of too many calls refused before
 * they are decoded; and the requests the scheduler sends to endpoints are
 * signed for a minute, with a nonce of their own.
 */
import { proto } from '@dispatch/core/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_AUTH_FAILURES_PER_MINUTE } from '../src/api/failure-throttle.js';
import type { Scheduler } from '../src/scheduler.js';
import { ok, startEndpoint, startTestScheduler, type TestEndpoint, until } from './support/test-endpoint.js';

let scheduler: Scheduler | undefined;
let endpoint: TestEndpoint | undefined;
afterEach(async () => {
  await scheduler?.close();
  await endpoint?.close();
  scheduler = undefined;
  endpoint = undefined;
});

const DISPATCH = '/dispatch.sdk.v1.DispatchService/Dispatch';
const dispatch = (calls: proto.ICall[], key: string) =>
  fetch(`${scheduler!.url}${DISPATCH}`, {
    method: 'POST',
    body: proto.DispatchRequest.encode({ calls }),
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/proto' },
  });

describe('API keys', () => {
  it('refuses keys shorter than 16 characters, naming the rule but not the key; generated keys are long', async () => {
    await expect(startTestScheduler({ apiKeys: ['K1'] })).rejects.toThrow(/the API key has 2 characters; API keys need at least 16/);
    await expect(startTestScheduler({ apiKeys: ['long-enough-key-0001', 'short'] })).rejects.toThrow(/API key #2 has 5 characters/);
    await expect(startTestScheduler({ apiKeys: [' padded-key-0123456789'] })).rejects.toThrow(/whitespace/);
    scheduler = await startTestScheduler();
    expect(scheduler.apiKey).toMatch(/^dsk_[\w-]{32}$/);
  });

  it(`answers 429 to a client after ${MAX_AUTH_FAILURES_PER_MINUTE} wrong keys in a minute, even with the right key then`, async () => {
    scheduler = await startTestScheduler({ apiKeys: ['the-right-key-0123456789'] });
    const call = [{ function: 'f', endpoint: 'http://127.0.0.1:1' }];
    for (let i = 0; i < MAX_AUTH_FAILURES_PER_MINUTE; i++) expect((await dispatch(call, `wrong-key-${i}-0123456789`)).status).toBe(401);
    const throttled = await dispatch(call, 'the-right-key-0123456789');
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await throttled.json()).toEqual({
      code: 'resource_exhausted',
      message: expect.stringMatching(/too many requests with a wrong API key from \S+ \(10 a minute\): wait \d+ s/),
    });
    // The dashboard shares the count: its bearer keys are refused too.
    expect((await fetch(`${scheduler.url}/dashboard/api/runs`, { headers: { authorization: 'Bearer the-right-key-0123456789' } })).status).toBe(429);
  });
});

describe('calls per request', () => {
  it('refuses more than maxCallsPerRequest calls with invalid_argument naming the limit and the option', async () => {
    scheduler = await startTestScheduler({ maxCallsPerRequest: 5 });
    const calls = Array.from({ length: 6 }, () => ({ function: 'f', endpoint: 'http://127.0.0.1:1' }));
    const res = await dispatch(calls, scheduler.apiKey);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      code: 'invalid_argument',
      message:
        "the DispatchRequest has 6 calls, more than the limit of 5 per request: send them in batches of at most 5 (the limit is the scheduler's maxCallsPerRequest option, or dispatch serve --max-calls-per-request)",
    });
    // JSON and the programmatic API are held to it too.
    const json = await fetch(`${scheduler.url}${DISPATCH}`, {
      method: 'POST',
      body: JSON.stringify({ calls }),
      headers: { authorization: `Bearer ${scheduler.apiKey}`, 'content-type': 'application/json' },
    });
    expect(json.status).toBe(400);
    await expect(scheduler.dispatch(calls)).rejects.toThrow(/more than the limit of 5 per request/);
    expect((await dispatch(calls.slice(0, 5), scheduler.apiKey)).status).toBe(200);
    expect((await scheduler.list()).counts.pending + (await scheduler.list()).counts.running).toBe(5);
  });
});

describe('signed requests to endpoints', () => {
  it('carry expires 60 s after created and a nonce of their own, so two attempts never share a signature', async () => {
    let attempts = 0;
    endpoint = await startEndpoint(() => (++attempts < 3 ? { http: 503, body: 'busy' } : ok('done')));
    scheduler = await startTestScheduler();
    const [id] = await scheduler.dispatch([{ function: 'f', endpoint: endpoint.url }]);
    await until(async () => (await scheduler!.wait(id!, 1000)).done);
    expect(endpoint.runs).toHaveLength(3);
    const params = endpoint.runs.map((r) => String(r.headers['signature-input']));
    for (const p of params) {
      const created = Number(/;created=(\d+)/.exec(p)?.[1]);
      expect(Number(/;expires=(\d+)/.exec(p)?.[1])).toBe(created + 60);
      expect(p).toMatch(/;nonce="[\w-]+\.[0-9a-z]+"$/);
    }
    expect(new Set(endpoint.runs.map((r) => r.headers.signature)).size).toBe(3);
    expect(new Set(endpoint.runs.map((r) => r.body.toString('hex'))).size).toBe(1); // the same bytes each time
  });
});
