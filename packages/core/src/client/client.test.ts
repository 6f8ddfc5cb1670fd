import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DispatchApiError, DispatchClient } from './client.js';
import * as proto from '../protocol/proto.js';

let servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  servers = [];
});

async function api(handler: (body: Buffer, auth: string | undefined) => { status: number; body: Uint8Array | string }) {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const out = handler(Buffer.concat(chunks), req.headers.authorization);
      res.writeHead(out.status, { 'content-type': typeof out.body === 'string' ? 'application/json' : 'application/proto' });
      res.end(out.body);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('API client', () => {
  it('dispatches with a bearer key and binary protobuf', async () => {
    let seen: string | undefined;
    const url = await api((body, auth) => {
      seen = auth;
      const req = proto.DispatchRequest.decode(body);
      return { status: 200, body: proto.DispatchResponse.encode({ dispatchIds: (req.calls ?? []).map((c) => `id-${c.function}`) }) };
    });
    const client = new DispatchClient({ apiKey: 'secret', apiUrl: url });
    expect(await client.dispatch([{ function: 'a', endpoint: 'http://x' }, { function: 'b', endpoint: 'http://x' }])).toEqual(['id-a', 'id-b']);
    expect(seen).toBe('Bearer secret');
  });

  it('turns 401 into "invalid API key" naming the API URL, without the key', async () => {
    const url = await api(() => ({ status: 401, body: JSON.stringify({ code: 'unauthenticated', message: 'bad key' }) }));
    const client = new DispatchClient({ apiKey: 'supersecretkey', apiUrl: url });
    const err = (await client.dispatch([{ function: 'a', endpoint: 'http://x' }]).catch((e) => e)) as DispatchApiError;
    expect(err).toBeInstanceOf(DispatchApiError);
    expect(err.code).toBe('unauthenticated');
    expect(err.message).toContain(`invalid API key sup`);
    expect(err.message).toContain(url);
    expect(err.message).not.toContain('supersecretkey');
  });

  it('turns Connect errors into typed errors', async () => {
    const url = await api(() => ({ status: 400, body: JSON.stringify({ code: 'invalid_argument', message: 'function name "a-b" is invalid' }) }));
    const err = (await new DispatchClient({ apiKey: 'k', apiUrl: url }).dispatch([{ function: 'a-b', endpoint: 'http://x' }]).catch((e) => e)) as DispatchApiError;
    expect([err.code, err.httpStatus]).toEqual(['invalid_argument', 400]);
    expect(err.message).toMatch(/function name "a-b" is invalid/);
  });

  it('retries transient failures (503) and gives up with a clear error when the API is unreachable', async () => {
    let calls = 0;
    const url = await api(() => (++calls < 3 ? { status: 503, body: '{"code":"unavailable","message":"busy"}' } : { status: 200, body: proto.DispatchResponse.encode({ dispatchIds: ['x'] }) }));
    expect(await new DispatchClient({ apiKey: 'k', apiUrl: url }).dispatch([{ function: 'a', endpoint: 'http://x', idempotencyKey: 'k1' }])).toEqual(['x']);
    expect(calls).toBe(3);
    const closed = new DispatchClient({ apiKey: 'k', apiUrl: 'http://127.0.0.1:9', attempts: 2 });
    const err = (await closed.dispatch([{ function: 'a', endpoint: 'http://x' }]).catch((e) => e)) as DispatchApiError;
    expect(err.code).toBe('unavailable');
    expect(err.message).toMatch(/cannot reach the Dispatch API at http:\/\/127.0.0.1:9/);
  });
});
