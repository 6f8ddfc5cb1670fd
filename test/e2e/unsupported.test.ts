/**
 * Issue 15 under a scheduler without this project's extensions (another
 * implementation of the protocol: here a real HTTP server that knows only
 * DispatchService.Dispatch and answers every other method as an unknown
 * procedure, as an older or foreign scheduler does): each feature fails with
 * an error that says the scheduler does not support it, before anything is
 * dispatched; and a function waiting for a signal under a scheduler that
 * did not say it supports signals fails with the same kind of error.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Dispatch, DispatchClient } from '@dispatch/core';
import { encodeArgs } from '@dispatch/core/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let server: http.Server;
let url: string;
const dispatched: number[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/dispatch.sdk.v1.DispatchService/Dispatch') {
        dispatched.push(1);
        // DispatchResponse { dispatch_ids: ["foreign-1"] }
        res.writeHead(200, { 'content-type': 'application/proto' });
        res.end(Buffer.from([0x0a, 0x09, ...Buffer.from('foreign-1')]));
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 'not_found', message: `no procedure at ${req.url}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const unsupported = (feature: string) =>
  new RegExp(`the scheduler at http://127\\.0\\.0\\.1:\\d+ does not support ${feature} \\(.*\\): use @dispatch/scheduler ≥ \\d+\\.\\d+\\.\\d+`);

describe('a scheduler without the extensions of issue 15', () => {
  it('says it does not support signals, resume, delays or idempotency keys', async () => {
    const client = new DispatchClient({ apiUrl: url, apiKey: 'k', attempts: 1 });
    await expect(client.signal('foreign-1', 'decision', true)).rejects.toThrow(unsupported('signals'));
    await expect(client.resume('foreign-1')).rejects.toThrow(unsupported('resume'));

    const d = new Dispatch({ env: {}, apiUrl: url, apiKey: 'k', endpointUrl: 'http://127.0.0.1:1', logger: { warn() {}, error() {}, info() {} } });
    const greet = d.function(async function greet(name: string) {
      return `hello ${name}`;
    });
    await expect(d.signal('foreign-1', 'decision', true)).rejects.toThrow(unsupported('signals'));
    await expect(greet.withOptions({ delay: '3s' }).start('Ann')).rejects.toThrow(unsupported('delays'));
    await expect(greet.withOptions({ idempotencyKey: 'k1' }).dispatch('Ann')).rejects.toThrow(unsupported('idempotency keys'));
    expect(dispatched).toHaveLength(0); // refused before anything was dispatched
    // Without the extensions, a plain start works.
    expect((await greet.start('Ann')).dispatchId).toBe('foreign-1');
  });

  it('fails dispatch.waitForSignal under a scheduler that does not say it supports signals', async () => {
    const d = new Dispatch({ env: {}, logger: { warn() {}, error() {}, info() {} } });
    d.function(async function approve() {
      return await d.waitForSignal('decision', { timeout: '1h' });
    });
    // A RunRequest as a scheduler without the extension sends it: no supports_signals.
    const response = await d.runRequest({ function: 'approve', dispatchId: 'foreign-2', input: encodeArgs([]) });
    const error = response.exit?.result?.error;
    expect(error?.message).toMatch(/dispatch\.waitForSignal\("decision"\) needs a scheduler that supports signals, and the scheduler that ran approve does not/);
  });
});
