/**
 * What the endpoint decides before a body is read (precheck), and what the
 * handler does with a signature once verified (the replay cache).
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RUN_PATH } from '../protocol/constants.js';
import * as proto from '../protocol/proto.js';
import { encodeArgs } from '../serde/serde.js';
import { ReplayCache } from '../signature/replay-cache.js';
import { generateSigningKeyPair, signRequest } from '../signature/signature.js';
import { type EndpointApp, handleEndpointRequest } from './handler.js';
import { isLoopbackAddress, precheckEndpointRequest } from './precheck.js';

const keys = generateSigningKeyPair();
const silent = { error() {} };
const body = proto.RunRequest.encode({ function: 'greet', dispatchId: 'd1', input: encodeArgs(['ada']) });
const url = `http://app.test${RUN_PATH}`;

function app(overrides: Partial<EndpointApp> = {}): EndpointApp & { runs: number } {
  const a = {
    runs: 0,
    maxBodyBytes: 1024,
    verificationKey: keys.publicKey,
    logger: silent,
    hasFunction: (name: string) => name === 'greet',
    runRequest: async () => {
      a.runs++;
      return { status: 1 };
    },
    ...overrides,
  };
  return a;
}

const signedHeaders = (options: { created?: number; nonce?: string } = {}) => ({
  host: 'app.test',
  'content-type': 'application/proto',
  'content-length': String(body.length),
  ...signRequest({ method: 'POST', url, contentType: 'application/proto', body, privateKey: keys.privateKey, nonce: randomUUID(), ...options }),
});
const head = (headers: Record<string, string>, extra: { localAddress?: string; method?: string; url?: string } = {}) => ({
  method: extra.method ?? 'POST',
  url: extra.url ?? RUN_PATH,
  headers,
  ...(extra.localAddress === undefined ? {} : { localAddress: extra.localAddress }),
});
const codeOf = (r: { body: Uint8Array } | null) => (r ? (JSON.parse(new TextDecoder().decode(r.body)) as { code: string; message: string }) : null);

describe('precheckEndpointRequest', () => {
  it('lets a well-signed request through, and answers everything its head condemns', () => {
    const a = app();
    expect(precheckEndpointRequest(a, head(signedHeaders()))).toBeNull();
    expect(precheckEndpointRequest(a, head(signedHeaders(), { url: '/other' }))?.status).toBe(404);
    expect(precheckEndpointRequest(a, head(signedHeaders(), { method: 'GET' }))?.status).toBe(405);
    expect(precheckEndpointRequest(a, head({ ...signedHeaders(), 'content-length': '2048' }))?.status).toBe(413);
    expect(precheckEndpointRequest(a, head({ ...signedHeaders(), 'content-type': 'text/plain' }))?.status).toBe(415);
    const unsigned = precheckEndpointRequest(a, head({ 'content-type': 'application/proto' }));
    expect(unsigned?.status).toBe(401);
    expect(codeOf(unsigned)?.message).toMatch(/request is not signed/);
    const stale = precheckEndpointRequest(a, head(signedHeaders({ created: Math.floor(Date.now() / 1000) - 600 })));
    expect(stale?.status).toBe(403);
    expect(codeOf(stale)?.message).toMatch(/older than 5 minutes/);
    const otherKeyid = signedHeaders();
    otherKeyid['signature-input'] = otherKeyid['signature-input'].replace('keyid="default"', 'keyid="other"');
    expect(precheckEndpointRequest(a, head(otherKeyid))?.status).toBe(401);
  });

  it('without a key: accepts on loopback or an unknown address, refuses beyond loopback (401 naming the fix), unless the app opted out', () => {
    const noKey = app({ verificationKey: undefined });
    const unsigned = { 'content-type': 'application/proto' };
    for (const address of ['127.0.0.1', '::1', '::ffff:127.0.0.1', 'localhost', '/tmp/app.sock']) {
      expect(precheckEndpointRequest(noKey, head(unsigned, { localAddress: address })), address).toBeNull();
    }
    expect(precheckEndpointRequest(noKey, head(unsigned))).toBeNull();
    for (const address of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.20', 'fe80::1']) {
      const refused = precheckEndpointRequest(noKey, head(unsigned, { localAddress: address }));
      expect(refused?.status, address).toBe(401);
      expect(codeOf(refused)?.message).toContain(`listens on ${address}, beyond loopback, and has no verification key`);
    }
    expect(precheckEndpointRequest(app({ verificationKey: undefined, acceptUnsigned: true }), head(unsigned, { localAddress: '0.0.0.0' }))).toBeNull();
  });

  it('isLoopbackAddress', () => {
    expect(isLoopbackAddress('127.8.9.10')).toBe(true);
    expect(isLoopbackAddress('[::1]')).toBe(true);
    expect(isLoopbackAddress('0.0.0.0')).toBe(false);
    expect(isLoopbackAddress('128.0.0.1')).toBe(false);
  });
});

describe('the handler and replays', () => {
  it('runs a signed request once: the same signature again is refused, before and after its body is read', async () => {
    const a = app({ replayCache: new ReplayCache() });
    const headers = signedHeaders();
    const first = await handleEndpointRequest(a, { ...head(headers), body });
    expect(first.status).toBe(200);
    const again = await handleEndpointRequest(a, { ...head(headers), body });
    expect(again.status).toBe(403);
    expect(codeOf(again)).toEqual({ code: 'permission_denied', message: expect.stringMatching(/^signature already used/) });
    expect(precheckEndpointRequest(a, head(headers))?.status).toBe(403); // known from the headers alone
    expect(a.runs).toBe(1);
    // The same request signed anew (another nonce) is a new request.
    expect((await handleEndpointRequest(a, { ...head(signedHeaders()), body })).status).toBe(200);
    expect(a.runs).toBe(2);
  });

  it('does not remember a signature that fails to verify (a forgery takes no place)', async () => {
    const a = app({ replayCache: new ReplayCache() });
    const headers = signedHeaders();
    const tampered = proto.RunRequest.encode({ function: 'greet', dispatchId: 'd1', input: encodeArgs(['eve']) });
    expect((await handleEndpointRequest(a, { ...head(headers), body: tampered })).status).toBe(403);
    expect((await handleEndpointRequest(a, { ...head(headers), body })).status).toBe(200);
  });

  it('answers 503 when its replay cache is full of signatures still valid', async () => {
    const a = app({ replayCache: new ReplayCache({ maxEntries: 1 }) });
    expect((await handleEndpointRequest(a, { ...head(signedHeaders()), body })).status).toBe(200);
    const full = await handleEndpointRequest(a, { ...head(signedHeaders()), body });
    expect(full.status).toBe(503);
    expect(full.headers['retry-after']).toBe('1');
    expect(codeOf(full)?.message).toMatch(/replay cache is full/);
    expect(a.runs).toBe(1);
  });
});
