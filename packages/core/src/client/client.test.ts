// The API client against hand-written Connect servers (real HTTP on
// 127.0.0.1) that answer what each test needs. Against the real scheduler:
// packages/scheduler/test/dispatch-client.test.ts.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DispatchApiError } from './api-error.js';
import { DispatchClient } from './client.js';
import { MAX_WAIT_TIMEOUT_MS, SCHEDULER_SERVICE_PATH } from '../protocol/constants.js';
import * as proto from '../protocol/proto.js';
import { encodeArgs, encodeError, encodeValue } from '../serde/serde.js';
import { PermanentError } from '../status/errors.js';
import { StatusRegistry } from '../status/registry.js';
import { Status } from '../status/status.js';

let servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  servers = [];
});

type Handler = (body: Buffer, path: string, auth: string | undefined) => { status: number; body: Uint8Array | string };

async function api(handler: Handler) {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const out = handler(Buffer.concat(chunks), req.url ?? '', req.headers.authorization);
      res.writeHead(out.status, { 'content-type': typeof out.body === 'string' ? 'application/json' : 'application/proto' });
      res.end(out.body);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A port of 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

const rpc = (method: string) => `${SCHEDULER_SERVICE_PATH}${method}`;

class CardDeclined extends PermanentError {
  override name = 'CardDeclined';
  constructor(readonly card: string) {
    super(`card ${card} declined`);
  }
}

describe('API client: dispatch', () => {
  it('dispatches with a bearer key and binary protobuf', async () => {
    let seen: string | undefined;
    const url = await api((body, _path, auth) => {
      seen = auth;
      const req = proto.DispatchRequest.decode(body);
      return { status: 200, body: proto.DispatchResponse.encode({ dispatchIds: (req.calls ?? []).map((c) => `id-${c.function}`) }) };
    });
    const client = new DispatchClient({ apiKey: 'secret', apiUrl: url });
    expect(await client.dispatch([{ function: 'a', endpoint: 'http://x' }, { function: 'b', endpoint: 'http://x' }])).toEqual(['id-a', 'id-b']);
    expect(seen).toBe('Bearer secret');
  });

  it('turns 401 into "refused the API key" naming the API URL, without the key', async () => {
    const url = await api(() => ({ status: 401, body: JSON.stringify({ code: 'unauthenticated', message: 'bad key' }) }));
    const client = new DispatchClient({ apiKey: 'supersecretkey', apiUrl: url });
    const err = (await client.dispatch([{ function: 'a', endpoint: 'http://x' }]).catch((e) => e)) as DispatchApiError;
    expect(err).toBeInstanceOf(DispatchApiError);
    expect(err.code).toBe('unauthenticated');
    expect(err.message).toContain(`the scheduler at ${url} refused the API key sup***`);
    expect(err.message).toContain('DISPATCH_API_KEY');
    expect(err.message).not.toContain('supersecretkey');
  });

  it('turns Connect errors into typed errors', async () => {
    const url = await api(() => ({ status: 400, body: JSON.stringify({ code: 'invalid_argument', message: 'function name "a-b" is invalid' }) }));
    const err = (await new DispatchClient({ apiKey: 'k', apiUrl: url }).dispatch([{ function: 'a-b', endpoint: 'http://x' }]).catch((e) => e)) as DispatchApiError;
    expect([err.code, err.httpStatus]).toEqual(['invalid_argument', 400]);
    expect(err.message).toMatch(/function name "a-b" is invalid/);
  });

  it('retries transient failures (503) when every call has an idempotency key, and gives up with a clear error when the API is unreachable', async () => {
    let calls = 0;
    const url = await api(() => (++calls < 3 ? { status: 503, body: '{"code":"unavailable","message":"busy"}' } : { status: 200, body: proto.DispatchResponse.encode({ dispatchIds: ['x'] }) }));
    expect(await new DispatchClient({ apiKey: 'k', apiUrl: url }).dispatch([{ function: 'a', endpoint: 'http://x', idempotencyKey: 'k1' }])).toEqual(['x']);
    expect(calls).toBe(3);
    const port = await closedPort();
    const closed = new DispatchClient({ apiKey: 'k', apiUrl: `http://127.0.0.1:${port}`, attempts: 2 });
    const err = (await closed.dispatch([{ function: 'a', endpoint: 'http://x' }]).catch((e) => e)) as DispatchApiError;
    expect([err.code, err.httpStatus]).toEqual(['unavailable', 0]);
    expect(err.message).toMatch(new RegExp(`cannot reach the scheduler at http://127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED.*\\): start one with \`dispatch serve\``));
  });

  it('repeats a dispatch after a 503 or a lost connection with idempotency keys of its own, the same on every try', async () => {
    const seen: string[][] = [];
    let calls = 0;
    const url = await api((body) => {
      calls++;
      seen.push((proto.DispatchRequest.decode(body).calls ?? []).map((c) => c.idempotencyKey ?? ''));
      if (calls === 1) return { status: 503, body: JSON.stringify({ code: 'unavailable', message: "the scheduler's database is full" }) };
      return { status: 200, body: proto.DispatchResponse.encode({ dispatchIds: ['x', 'y'] }) };
    });
    const client = new DispatchClient({ apiKey: 'k', apiUrl: url });
    expect(await client.dispatch([{ function: 'a', endpoint: 'http://x' }, { function: 'b', endpoint: 'http://x', idempotencyKey: 'mine' }])).toEqual(['x', 'y']);
    expect(calls).toBe(2);
    // A UUID of version 7: the time in milliseconds first, so keys made later sort after (a scheduler's index takes them in order).
    expect(seen[0]![0]).toMatch(/^auto:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const msOf = (key: string) => parseInt(key.slice(5, 18).replace('-', ''), 16);
    expect(Math.abs(msOf(seen[0]![0]!) - Date.now())).toBeLessThan(60_000);
    expect(seen[0]![1]).toBe('mine');
    expect(seen[1]).toEqual(seen[0]);
    // Another request gets keys of its own, different, and not before the first request's.
    await new Promise((r) => setTimeout(r, 2));
    await client.dispatch([{ function: 'a', endpoint: 'http://x' }, { function: 'b', endpoint: 'http://x' }]);
    expect(seen[2]![0]).not.toBe(seen[0]![0]);
    expect(seen[2]![1]).not.toBe(seen[2]![0]);
    expect(seen[2]![0]! > seen[0]![0]!).toBe(true);

    // A connection the server drops without an answer (socket hang up) is retried the same way.
    let drops = 0;
    const keys: string[] = [];
    const dropping = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        keys.push(proto.DispatchRequest.decode(Buffer.concat(chunks)).calls?.[0]?.idempotencyKey ?? '');
        if (++drops === 1) {
          req.socket.destroy();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/proto' });
        res.end(proto.DispatchResponse.encode({ dispatchIds: ['z'] }));
      });
    });
    servers.push(dropping);
    await new Promise<void>((r) => dropping.listen(0, '127.0.0.1', r));
    const dropUrl = `http://127.0.0.1:${(dropping.address() as AddressInfo).port}`;
    expect(await new DispatchClient({ apiKey: 'k', apiUrl: dropUrl }).dispatch([{ function: 'a', endpoint: 'http://x' }])).toEqual(['z']);
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(keys[0]);
  });

  it('with attempts: 1, sends a dispatch once and reports the 503 it met', async () => {
    let calls = 0;
    const url = await api(() => {
      calls++;
      return { status: 503, body: '{"code":"unavailable","message":"the scheduler is shutting down"}' };
    });
    const err = (await new DispatchClient({ apiKey: 'k', apiUrl: url, attempts: 1 }).dispatch([{ function: 'a', endpoint: 'http://x' }]).catch((e) => e)) as DispatchApiError;
    expect([err.code, err.httpStatus, err.message]).toEqual(['unavailable', 503, 'the scheduler is shutting down']);
    expect(calls).toBe(1);
  });

  it('refuses an API URL that is not an http(s) URL, naming it', () => {
    expect(() => new DispatchClient({ apiKey: 'k', apiUrl: 'localhost:4450' })).toThrow(/must use http or https, got "localhost:4450"/);
    expect(() => new DispatchClient({ apiKey: 'k', apiUrl: '127.0.0.1:4450' })).toThrow(/not a valid URL: "127\.0\.0\.1:4450"; use something like http:\/\/127\.0\.0\.1:4450/);
  });
});

describe('API client: wait', () => {
  it('answers the status and the decoded value, with the raw CallResult', async () => {
    const url = await api((body, path) => {
      expect(path).toBe(rpc('Wait'));
      const req = proto.WaitRequest.decode(body);
      const result = { dispatchId: req.dispatchId, output: encodeValue(new Map([['total', 42n]])) };
      return { status: 200, body: proto.WaitResponse.encode({ done: true, state: 4, status: proto.ProtoStatus.STATUS_OK, result }) };
    });
    const r = await new DispatchClient({ apiKey: 'k', apiUrl: url }).wait('A1');
    expect(r).toMatchObject({ done: true, dispatchId: 'A1', state: 'succeeded', status: Status.OK, statusName: 'OK', error: undefined });
    expect(r.done && r.value).toEqual(new Map([['total', 42n]]));
    expect(r.done && r.raw.dispatchId).toBe('A1');
  });

  it('answers the decoded error: same class, name, message, status and fields', async () => {
    const registry = new StatusRegistry();
    registry.registerErrorType(CardDeclined, Status.PERMANENT_ERROR);
    const url = await api(() => {
      const result = { dispatchId: 'A2', error: encodeError(new CardDeclined('4242'), Status.PERMANENT_ERROR) };
      return { status: 200, body: proto.WaitResponse.encode({ done: true, state: 5, status: proto.ProtoStatus.STATUS_PERMANENT_ERROR, result }) };
    });
    const r = await new DispatchClient({ apiKey: 'k', apiUrl: url, registry }).wait('A2');
    if (!r.done) throw new Error('expected a finished call');
    expect(r).toMatchObject({ state: 'failed', status: Status.PERMANENT_ERROR, statusName: 'PERMANENT_ERROR', value: undefined });
    expect(r.error).toBeInstanceOf(CardDeclined);
    expect(r.error).toMatchObject({ name: 'CardDeclined', message: 'card 4242 declined', card: '4242' });
    expect(registry.errorStatus(r.error)).toBe(Status.PERMANENT_ERROR);
  });

  it('answers done: false with the state when the timeout passes first', async () => {
    const timeouts: Array<number | null> = [];
    const url = await api((body) => {
      timeouts.push(proto.durationToMs(proto.WaitRequest.decode(body).timeout));
      return { status: 200, body: proto.WaitResponse.encode({ done: false, state: 3 }) };
    });
    expect(await new DispatchClient({ apiKey: 'k', apiUrl: url }).wait('A3', { timeoutMs: 0 })).toEqual({ done: false, dispatchId: 'A3', state: 'suspended' });
    expect(timeouts).toEqual([1]);
  });

  it('makes a wait longer than the cap of one request out of several requests', async () => {
    const timeouts: number[] = [];
    const url = await api((body) => {
      timeouts.push(proto.durationToMs(proto.WaitRequest.decode(body).timeout) ?? 0);
      // The server gives up at once (as if each request's cap had passed); the third time, the call is done.
      const done = timeouts.length === 3;
      return { status: 200, body: proto.WaitResponse.encode(done ? { done, state: 4, status: proto.ProtoStatus.STATUS_OK, result: {} } : { done, state: 2 }) };
    });
    const r = await new DispatchClient({ apiKey: 'k', apiUrl: url }).wait('A4', { timeoutMs: 25 * 60_000 });
    expect(r).toMatchObject({ done: true, state: 'succeeded', value: undefined });
    expect(timeouts).toHaveLength(3);
    expect(timeouts.slice(0, 2)).toEqual([MAX_WAIT_TIMEOUT_MS, MAX_WAIT_TIMEOUT_MS]);
    expect(timeouts[2]).toBeLessThanOrEqual(MAX_WAIT_TIMEOUT_MS);
  });

  it('stops waiting when its signal aborts, with the signal reason', async () => {
    const url = await api(() => ({ status: 200, body: proto.WaitResponse.encode({ done: false, state: 1 }) }));
    const controller = new AbortController();
    controller.abort(new Error('the user went away'));
    await expect(new DispatchClient({ apiKey: 'k', apiUrl: url }).wait('A5', { signal: controller.signal })).rejects.toThrow('the user went away');
  });
});

describe('API client: get, list, cancel, restart', () => {
  const info = (over: proto.ICallInfo = {}): proto.ICallInfo => ({
    dispatchId: 'C1',
    function: 'checkout',
    endpoint: 'http://127.0.0.1:8000',
    state: 5,
    status: proto.ProtoStatus.STATUS_PERMANENT_ERROR,
    parentDispatchId: 'P1',
    rootDispatchId: 'R1',
    creationTime: proto.timestampFromDate(Date.UTC(2026, 0, 2, 3, 4, 5)),
    updateTime: proto.timestampFromDate(Date.UTC(2026, 0, 2, 3, 4, 6)),
    finishTime: proto.timestampFromDate(Date.UTC(2026, 0, 2, 3, 4, 7)),
    attempts: 2,
    input: encodeArgs(['user_1', 3]),
    error: encodeError(new CardDeclined('1111'), Status.PERMANENT_ERROR),
    children: ['K1'],
    attemptHistory: [
      { number: 1, status: proto.ProtoStatus.STATUS_TEMPORARY_ERROR, outcome: 'retry', error: encodeError(new Error('smtp down')), duration: { seconds: 1, nanos: 500_000_000 } },
      { number: 2, status: proto.ProtoStatus.STATUS_PERMANENT_ERROR, outcome: 'exit', resume: true },
    ],
    ...over,
  });

  it('get answers the call decoded: state and status names, dates, input, error, attempts', async () => {
    const registry = new StatusRegistry();
    registry.registerErrorType(CardDeclined, Status.PERMANENT_ERROR);
    const url = await api((body, path) => {
      expect(path).toBe(rpc('Get'));
      return { status: 200, body: proto.GetResponse.encode({ call: info({ dispatchId: proto.GetRequest.decode(body).dispatchId }) }) };
    });
    const call = await new DispatchClient({ apiKey: 'k', apiUrl: url, registry }).get('C1');
    expect(call).toMatchObject({
      dispatchId: 'C1',
      function: 'checkout',
      state: 'failed',
      status: Status.PERMANENT_ERROR,
      statusName: 'PERMANENT_ERROR',
      attempts: 2,
      parentDispatchId: 'P1',
      rootDispatchId: 'R1',
      children: ['K1'],
      input: ['user_1', 3],
      output: undefined,
      createdAt: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
      finishedAt: new Date(Date.UTC(2026, 0, 2, 3, 4, 7)),
      nextRunAt: null,
      originalFunction: 'checkout',
      idempotencyKey: null,
    });
    expect(call.error).toBeInstanceOf(CardDeclined);
    expect(call.error).toMatchObject({ message: 'card 1111 declined', card: '1111' });
    expect(call.attemptHistory.map((a) => [a.number, a.statusName, a.outcome, a.resume, a.durationMs])).toEqual([
      [1, 'TEMPORARY_ERROR', 'retry', false, 1500],
      [2, 'PERMANENT_ERROR', 'exit', true, 0],
    ]);
    expect(call.attemptHistory[0]?.error).toMatchObject({ name: 'Error', message: 'smtp down' });
    expect(call.raw.dispatchId).toBe('C1');
  });

  it('list sends the filter and answers a decoded page with counts per state', async () => {
    let seen: proto.IListRequest | undefined;
    const url = await api((body) => {
      seen = proto.ListRequest.decode(body);
      return {
        status: 200,
        body: proto.ListResponse.encode({
          calls: [info({ state: 4, status: proto.ProtoStatus.STATUS_OK, error: null, output: encodeValue('done') })],
          nextCursor: 'next-1',
          counts: [
            { state: 4, count: 7 },
            { state: 5, count: 2 },
          ],
        }),
      };
    });
    const page = await new DispatchClient({ apiKey: 'k', apiUrl: url }).list({
      states: ['succeeded', 'cancelled'],
      function: 'checkout',
      createdAfter: new Date(1_000_000),
      createdBefore: 2_000_000,
      limit: 5,
      cursor: 'c0',
      rootsOnly: true,
    });
    expect(seen).toMatchObject({ states: [4, 6], function: 'checkout', limit: 5, cursor: 'c0', rootsOnly: true });
    expect(proto.timestampToDate(seen?.createdAfter)?.getTime()).toBe(1_000_000);
    expect(proto.timestampToDate(seen?.createdBefore)?.getTime()).toBe(2_000_000);
    expect(page.calls.map((c) => [c.state, c.output, c.error])).toEqual([['succeeded', 'done', undefined]]);
    expect(page.nextCursor).toBe('next-1');
    expect(page.counts).toEqual({ pending: 0, running: 0, suspended: 0, succeeded: 7, failed: 2, cancelled: 0 });
  });

  it('cancel answers how many calls were cancelled; restart answers the call', async () => {
    const url = await api((body, path) => {
      if (path === rpc('Cancel')) return { status: 200, body: proto.CancelResponse.encode({ cancelled: proto.CancelRequest.decode(body).dispatchId === 'C1' ? 3 : 0 }) };
      return { status: 200, body: proto.RestartResponse.encode({ call: info({ dispatchId: proto.RestartRequest.decode(body).dispatchId, state: 1, error: null }) }) };
    });
    const client = new DispatchClient({ apiKey: 'k', apiUrl: url });
    expect(await client.cancel('C1')).toBe(3);
    expect(await client.cancel('C2')).toBe(0);
    expect(await client.restart('C1')).toMatchObject({ dispatchId: 'C1', state: 'pending', error: undefined });
  });

  it('says when the URL is not a scheduler (HTTP 404 without a Connect error, or an answer that is not the message)', async () => {
    const notFound = await api(() => ({ status: 404, body: new TextEncoder().encode('Cannot POST') }));
    const e1 = (await new DispatchClient({ apiKey: 'k', apiUrl: notFound }).get('x').catch((e) => e)) as DispatchApiError;
    expect([e1.code, e1.message]).toEqual(['not_found', `${notFound} answered HTTP 404 without a Connect error: is DISPATCH_API_URL the URL of a Dispatch scheduler?`]);
    const garbage = await api(() => ({ status: 200, body: new Uint8Array([0xff, 0xff, 0xff]) }));
    const e2 = (await new DispatchClient({ apiKey: 'k', apiUrl: garbage }).get('x').catch((e) => e)) as DispatchApiError;
    expect(e2.message).toMatch(/is not a dispatch\.typescript\.v1\.GetResponse: is DISPATCH_API_URL the URL of a Dispatch scheduler\?/);
  });
});
