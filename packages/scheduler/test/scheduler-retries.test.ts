import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Status } from '@dispatch/core/protocol';
import { parseVerificationKey, proto, verifyRequest } from '@dispatch/core/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { Scheduler } from '../src/scheduler.js';
import { fail, ok, startEndpoint, startTestScheduler, str, type TestEndpoint, text } from './support/test-endpoint.js';

let scheduler: Scheduler | undefined;
let endpoint: TestEndpoint | undefined;
afterEach(async () => {
  await scheduler?.close();
  await endpoint?.close();
  scheduler = undefined;
  endpoint = undefined;
});

const startMs = (a: proto.IAttempt) => proto.timestampToDate(a.startTime)!.getTime();
const endMs = (a: proto.IAttempt) => startMs(a) + (proto.durationToMs(a.duration) ?? 0);

/** Dispatches one call of `fn` to the endpoint and waits for its result. */
async function runOne(fn: string, options: { expiration?: proto.IDuration } = {}) {
  const call: proto.ICall = { function: fn, endpoint: endpoint!.url, input: str('in') };
  if (options.expiration) call.expiration = options.expiration;
  const [id] = await scheduler!.dispatch([call]);
  const result = await scheduler!.wait(id!, 20_000);
  const info = await scheduler!.get(id!);
  return { id: id!, result, info };
}

/**
 * The backoff the scheduler plans for each retry, per dispatch ID: the
 * retry's due time minus the end of the failed attempt (its own numbers,
 * not a measured duration).
 */
function plannedDelays(s: Scheduler): Map<string, number[]> {
  const delays = new Map<string, number[]>();
  s.on('attempt', (e) => {
    if (e.outcome !== 'retry') return;
    delays.set(e.dispatchId, [...(delays.get(e.dispatchId) ?? []), e.nextRunAt! - (e.startedAt + e.durationMs)]);
  });
  return delays;
}

describe('retries', () => {
  it('retries TEMPORARY_ERROR with growing backoff, then succeeds', async () => {
    const seen = new Map<string, number>();
    endpoint = await startEndpoint((req) => {
      const n = (seen.get(req.dispatchId ?? '') ?? 0) + 1;
      seen.set(req.dispatchId ?? '', n);
      return n <= 3 ? fail(Status.TEMPORARY_ERROR, 'TemporaryError', `flaky ${n}`) : ok(`done after ${n}`);
    });
    scheduler = await startTestScheduler({ backoff: { initialMs: 40, maxMs: 10_000, jitter: 'equal' } });
    const planned = plannedDelays(scheduler);
    const { id, result, info } = await runOne('flaky');
    expect(result.done && result.status).toBe(Status.OK);
    expect(result.done && text(result.result.output)).toBe('done after 4');
    const attempts = info.attemptHistory ?? [];
    expect(attempts.map((a) => a.status)).toEqual([Status.TEMPORARY_ERROR, Status.TEMPORARY_ERROR, Status.TEMPORARY_ERROR, Status.OK]);
    expect(attempts.map((a) => a.outcome)).toEqual(['retry', 'retry', 'retry', 'exit']);
    expect(attempts[0]?.error?.message).toBe('flaky 1');
    // Equal jitter: the n-th retry is planned between half and all of
    // 40 ms × 2^(n−1) after the attempt ends (the ranges do not overlap, so the
    // backoff grows), and does not start before it is due.
    const delays = planned.get(id)!;
    expect(delays).toHaveLength(3);
    for (const [i, d] of delays.entries()) {
      expect(d, `retry ${i + 1}`).toBeGreaterThanOrEqual(20 * 2 ** i);
      expect(d, `retry ${i + 1}`).toBeLessThanOrEqual(40 * 2 ** i);
    }
    const gaps = attempts.slice(1).map((a, i) => startMs(a) - endMs(attempts[i]!));
    for (const [i, gap] of gaps.entries()) expect(gap, `retry ${i + 1}`).toBeGreaterThanOrEqual(delays[i]!);
    expect(info.state).toBe(4); // SUCCEEDED
    expect(info.attempts).toBe(4);
  });

  it('counts resumes apart from attempts: a resume that fails is retried as a new attempt', async () => {
    const runs: string[] = [];
    endpoint = await startEndpoint((req) => {
      if (!req.pollResult) {
        runs.push('first');
        return { status: Status.OK as number, poll: { maxWait: proto.durationFromMs(1000), minResults: 1, maxResults: 1 } }; // a 1 s timer
      }
      runs.push(runs.includes('failed resume') ? 'retried resume' : 'failed resume');
      return runs.at(-1) === 'failed resume' ? fail(Status.TEMPORARY_ERROR, 'TemporaryError', 'after the timer') : ok('done');
    });
    scheduler = await startTestScheduler({ backoff: { initialMs: 10, maxMs: 20 } });
    const events: Array<[number, number, number, boolean]> = [];
    scheduler.on('attempt', (e) => events.push([e.run, e.attempt, e.resumes, e.resume]));
    const { result, info } = await runOne('sleeper');
    expect(result.done && text(result.result.output)).toBe('done');
    expect(runs).toEqual(['first', 'failed resume', 'retried resume']);
    expect(info).toMatchObject({ attempts: 2, resumes: 1 });
    expect((info.attemptHistory ?? []).map((a) => [a.number, a.outcome, a.resume])).toEqual([
      [1, 'suspend', false],
      [2, 'retry', true],
      [3, 'exit', false],
    ]);
    expect(events).toEqual([
      [1, 1, 0, false],
      [2, 1, 1, true],
      [3, 2, 1, false],
    ]);
  });

  it('does not retry PERMANENT_ERROR', async () => {
    endpoint = await startEndpoint(() => fail(Status.PERMANENT_ERROR, 'PermanentError', 'card declined'));
    scheduler = await startTestScheduler();
    const { result, info } = await runOne('charge');
    expect(result.done && result.status).toBe(Status.PERMANENT_ERROR);
    expect(result.done && result.result.error).toMatchObject({ type: 'PermanentError', message: 'card declined' });
    expect(info.attemptHistory).toHaveLength(1);
    expect(info.state).toBe(5); // FAILED
    expect(endpoint.runs).toHaveLength(1);
  });

  it('retries THROTTLED (backing off harder) and TIMEOUT', async () => {
    const seen = new Map<string, number>();
    endpoint = await startEndpoint((req) => {
      const n = (seen.get(req.dispatchId ?? '') ?? 0) + 1;
      seen.set(req.dispatchId ?? '', n);
      if (n === 1) return req.function === 'throttled' ? fail(Status.THROTTLED, 'ThrottledError', 'slow down') : fail(Status.TIMEOUT, 'TimeoutError', 'too slow');
      return ok(req.function ?? '');
    });
    scheduler = await startTestScheduler({ backoff: { initialMs: 30, throttledFactor: 4, jitter: 'none' } });
    const planned = plannedDelays(scheduler);
    const throttled = await runOne('throttled');
    const timeout = await runOne('timeout');
    // No jitter: THROTTLED is retried 30 ms × 4 after the attempt, TIMEOUT 30 ms.
    expect(planned.get(throttled.id)).toEqual([120]);
    expect(planned.get(timeout.id)).toEqual([30]);
    expect(throttled.result.done && throttled.result.status).toBe(Status.OK);
    expect(timeout.result.done && timeout.result.status).toBe(Status.OK);
    const [t1, t2] = throttled.info.attemptHistory!;
    const [o1, o2] = timeout.info.attemptHistory!;
    expect(t1?.status).toBe(Status.THROTTLED);
    expect(o1?.status).toBe(Status.TIMEOUT);
    expect(startMs(t2!) - endMs(t1!)).toBeGreaterThanOrEqual(120);
    expect(startMs(o2!) - endMs(o1!)).toBeGreaterThanOrEqual(30);
  });

  it('times out a request that takes too long, and retries it', async () => {
    let n = 0;
    endpoint = await startEndpoint(async () => {
      n++;
      if (n === 1) await new Promise((r) => setTimeout(r, 1000));
      return ok('second time');
    });
    scheduler = await startTestScheduler({ requestTimeoutMs: 200 });
    const { result, info } = await runOne('slow');
    expect(result.done && text(result.result.output)).toBe('second time');
    expect(info.attemptHistory?.[0]).toMatchObject({ status: Status.TIMEOUT, outcome: 'retry' });
    expect(info.attemptHistory?.[0]?.error?.message).toMatch(/within 200 ms/);
  });

  it('ends a call that keeps failing past its expiration with TIMEOUT and a clear error', async () => {
    endpoint = await startEndpoint(() => fail(Status.TEMPORARY_ERROR, 'TemporaryError', 'down'));
    scheduler = await startTestScheduler();
    const { result, info } = await runOne('down', { expiration: proto.durationFromMs(300) });
    expect(result.done && result.status).toBe(Status.TIMEOUT);
    expect(result.done && result.result.error?.message).toMatch(/expired/);
    expect(info.state).toBe(5);
    expect(info.attemptHistory!.length).toBeGreaterThan(1);
  });

  it('applies the default expiration of one hour from creation', async () => {
    endpoint = await startEndpoint(() => ok('x'));
    scheduler = await startTestScheduler();
    const { info } = await runOne('x');
    const created = proto.timestampToDate(info.creationTime)!.getTime();
    expect(proto.timestampToDate(info.expirationTime)!.getTime() - created).toBe(3_600_000);
    const req = endpoint.runs[0]!.request;
    expect(proto.timestampToDate(req.expirationTime)!.getTime() - proto.timestampToDate(req.creationTime)!.getTime()).toBe(3_600_000);
  });

  it('caps attempts when maxAttempts is set', async () => {
    endpoint = await startEndpoint(() => fail(Status.TEMPORARY_ERROR, 'TemporaryError', 'nope'));
    scheduler = await startTestScheduler({ maxAttempts: 3 });
    const { result, info } = await runOne('capped');
    expect(result.done && result.status).toBe(Status.TEMPORARY_ERROR);
    expect(result.done && result.result.error?.message).toMatch(/gave up after 3/);
    expect(info.attemptHistory).toHaveLength(3);
  });

  it('maps UNSPECIFIED: with an error to PERMANENT_ERROR, without to OK', async () => {
    endpoint = await startEndpoint((req) =>
      req.function === 'withError'
        ? { status: 0, exit: { result: { error: { type: 'Oops', message: 'base error' } } } }
        : { status: 0, exit: { result: { output: str('fine') } } },
    );
    scheduler = await startTestScheduler();
    const a = await runOne('withError');
    const b = await runOne('withoutError');
    expect(a.result.done && a.result.status).toBe(Status.PERMANENT_ERROR);
    expect(b.result.done && b.result.status).toBe(Status.OK);
    expect(endpoint.runs).toHaveLength(2);
  });
});

describe('HTTP and transport failures', () => {
  it('ends on 404 (NOT_FOUND), 413, 401 and 403 without retrying', async () => {
    const codes: Record<string, number> = { missing: 404, big: 413, unauth: 401, denied: 403 };
    endpoint = await startEndpoint((req) => ({
      http: codes[req.function ?? ''] ?? 500,
      body: JSON.stringify({ code: 'not_found', message: `function '${req.function}' does not exist` }),
    }));
    scheduler = await startTestScheduler();
    const expected: Record<string, Status> = {
      missing: Status.NOT_FOUND,
      big: Status.PERMANENT_ERROR,
      unauth: Status.UNAUTHENTICATED,
      denied: Status.PERMISSION_DENIED,
    };
    for (const fn of Object.keys(codes)) {
      const { result, info } = await runOne(fn);
      expect(result.done && result.status).toBe(expected[fn]);
      expect(info.attemptHistory).toHaveLength(1);
    }
    const missing = await runOne('missing');
    expect(missing.result.done && missing.result.result.error?.message).toMatch(/HTTP 404.*does not exist/);
  });

  it('retries 500 and 503 until the endpoint recovers, but not 501', async () => {
    let n = 0;
    endpoint = await startEndpoint((req) => {
      if (req.function === 'unimplemented') return { http: 501 };
      n++;
      return n === 1 ? { http: 500, body: 'boom', contentType: 'text/plain' } : n === 2 ? { http: 503 } : ok('up');
    });
    scheduler = await startTestScheduler();
    const { result, info } = await runOne('recovering');
    expect(result.done && result.status).toBe(Status.OK);
    expect(info.attemptHistory?.map((a) => a.status)).toEqual([Status.TEMPORARY_ERROR, Status.TEMPORARY_ERROR, Status.OK]);
    expect(info.attemptHistory?.[0]?.error?.message).toMatch(/HTTP 500.*boom/);
    const five01 = await runOne('unimplemented');
    expect(five01.result.done && five01.result.status).toBe(Status.PERMANENT_ERROR);
  });

  it('turns a closed port into TCP_ERROR and retries it', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((r) => probe.close(() => r()));
    scheduler = await startTestScheduler({ maxAttempts: 2 });
    const [id] = await scheduler.dispatch([{ function: 'nobody', endpoint: `http://127.0.0.1:${port}`, input: str('x') }]);
    const result = await scheduler.wait(id!, 10_000);
    expect(result.done && result.status).toBe(Status.TCP_ERROR);
    expect(result.done && result.result.error?.message).toMatch(/ECONNREFUSED/);
    const info = await scheduler.get(id!);
    expect(info.attemptHistory?.map((a) => a.outcome)).toEqual(['retry', 'exit']);
  });

  it('refuses an undecodable 200 answer as INVALID_RESPONSE', async () => {
    endpoint = await startEndpoint(() => ({ http: 200, body: '<html>hello</html>', contentType: 'text/html' }));
    scheduler = await startTestScheduler();
    const { result } = await runOne('html');
    expect(result.done && result.status).toBe(Status.INVALID_RESPONSE);
  });
});

describe('requests to endpoints', () => {
  it('are signed RunRequests that verify with the scheduler verification key', async () => {
    endpoint = await startEndpoint(() => ok('signed'));
    scheduler = await startTestScheduler();
    const { id } = await runOne('greet');
    const run = endpoint.runs[0]!;
    expect(run.path).toBe('/dispatch.sdk.v1.FunctionService/Run');
    expect(run.headers['content-type']).toBe('application/proto');
    const publicKey = parseVerificationKey(scheduler.verificationKey);
    const verdict = verifyRequest({
      method: 'POST',
      path: run.path,
      authority: run.headers.host ?? '',
      headers: run.headers,
      body: run.body,
      publicKey,
    });
    expect(verdict).toEqual({ ok: true });
    const tampered = verifyRequest({
      method: 'POST',
      path: run.path,
      authority: run.headers.host ?? '',
      headers: run.headers,
      body: Buffer.concat([run.body, Buffer.from([0])]),
      publicKey,
    });
    expect(tampered.ok).toBe(false);
    expect(run.request).toMatchObject({ function: 'greet', dispatchId: id, rootDispatchId: id, parentDispatchId: '', acceptsStateDelta: true });
    expect(text(run.request.input)).toBe('in');
    expect(parseVerificationKey(scheduler.verificationKeyPem)).toBeTruthy();
  });
});
