/**
 * The endpoint handler over a real node:http server: content types, Connect
 * error codes, body limits, signatures, and a fuzz of 10,000 random and
 * mutated bodies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dispatch } from '../api/dispatch.js';
import { PermanentError, TemporaryError } from '../status/errors.js';
import { type EndpointApp, handleEndpointRequest } from './handler.js';
import { type DispatchServer, startServer } from './node-server.js';
import * as proto from '../protocol/proto.js';
import { decodeValue, encodeArgs } from '../serde/serde.js';
import { generateSigningKeyPair, publicKeyToBase64, signRequest } from '../signature/signature.js';
import { Status } from '../status/status.js';

const silent = { warn() {}, error() {}, info() {} };
const keys = generateSigningKeyPair();

function makeApp(verify: boolean) {
  const dispatch = new Dispatch({
    env: {},
    endpointUrl: 'http://127.0.0.1:1',
    verificationKey: verify ? publicKeyToBase64(keys.publicKey) : null,
    maxBodyBytes: 64 * 1024,
    logger: silent,
  });
  let flakyRuns = 0;
  dispatch.function(function echo(x: unknown) {
    return x;
  });
  dispatch.function(async function add(a: number, b: number) {
    return a + b;
  });
  dispatch.function(async function flaky() {
    if (flakyRuns++ < 2) throw new TemporaryError(`try again (${flakyRuns})`);
    return 'finally';
  });
  dispatch.function(async function fatal() {
    throw new PermanentError('this will never work');
  });
  return dispatch;
}

let plain: DispatchServer;
let signed: DispatchServer;
beforeAll(async () => {
  plain = await startServer(makeApp(false), { host: '127.0.0.1', port: 0 });
  signed = await startServer(makeApp(true), { host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await plain.close();
  await signed.close();
});

const RUN = '/dispatch.sdk.v1.FunctionService/Run';
const runRequest = (fn: string, args: unknown[]) => proto.RunRequest.encode({ function: fn, input: encodeArgs(args), dispatchId: 'd1' });

async function post(server: DispatchServer, body: Uint8Array, headers: Record<string, string> = {}, path = RUN) {
  const res = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/proto', ...headers },
    body,
  });
  return { status: res.status, type: res.headers.get('content-type'), body: new Uint8Array(await res.arrayBuffer()) };
}

function runResponse(body: Uint8Array) {
  return proto.RunResponse.decode(body);
}

describe('endpoint handler', () => {
  it('runs functions: output and status in the exit', async () => {
    const res = await post(plain, runRequest('add', [2, 3]));
    expect(res.status).toBe(200);
    expect(res.type).toBe('application/proto');
    const out = runResponse(res.body);
    expect(out.status).toBe(Status.OK);
    expect(decodeValue(out.exit?.result?.output)).toBe(5);
  });

  it('turns thrown errors into their status with name and message', async () => {
    const flaky = [1, 2, 3].map(() => post(plain, runRequest('flaky', [])));
    const statuses = [];
    for (const p of flaky) statuses.push(runResponse((await p).body));
    expect(statuses.map((s) => s.status).sort()).toEqual([Status.OK, Status.TEMPORARY_ERROR, Status.TEMPORARY_ERROR].sort());
    const failed = statuses.find((s) => Number(s.status) === Status.TEMPORARY_ERROR);
    expect(failed?.exit?.result?.error?.type).toBe('TemporaryError');
    const fatal = runResponse((await post(plain, runRequest('fatal', []))).body);
    expect(fatal.status).toBe(Status.PERMANENT_ERROR);
    expect(fatal.exit?.result?.error).toMatchObject({ type: 'PermanentError', message: 'this will never work' });
  });

  it('answers Connect errors with the codes of PROTOCOL.md 8.2', async () => {
    const cases: [Promise<{ status: number; type: string | null; body: Uint8Array }>, number, string][] = [
      [post(plain, new Uint8Array([0xff, 0xff, 0xff])), 400, 'invalid_argument'],
      [post(plain, proto.RunRequest.encode({ input: encodeArgs([]) })), 400, 'invalid_argument'],
      [post(plain, runRequest('nope', [])), 404, 'not_found'],
      [post(plain, new Uint8Array(70 * 1024)), 413, 'resource_exhausted'],
      [post(plain, runRequest('add', [1, 2]), { 'content-type': 'text/plain' }), 415, 'invalid_argument'],
      [post(plain, runRequest('add', [1, 2]), {}, '/elsewhere'), 404, 'not_found'],
    ];
    for (const [promise, status, code] of cases) {
      const res = await promise;
      expect(res.status).toBe(status);
      expect(res.type).toBe('application/json');
      expect(JSON.parse(new TextDecoder().decode(res.body))).toMatchObject({ code });
    }
    const get = await fetch(`${plain.url}${RUN}`);
    expect(get.status).toBe(405);
  });

  it('accepts Connect JSON and answers in JSON', async () => {
    const body = JSON.stringify({ function: 'echo', input: { '@type': proto.Value.typeUrl, value: ['hello'] } });
    const res = await post(plain, new TextEncoder().encode(body), { 'content-type': 'application/json' });
    expect(res.status).toBe(200);
    expect(res.type).toBe('application/json');
    const json = JSON.parse(new TextDecoder().decode(res.body));
    expect(json.status).toBe('STATUS_OK');
    expect(json.exit.result.output).toEqual({ '@type': proto.StringValue.typeUrl, value: 'hello' });
  });

  it('verifies signatures: signed accepted, unsigned 401, forged or tampered 403', async () => {
    const body = runRequest('echo', ['signed']);
    const url = `${signed.url}${RUN}`;
    const headers = signRequest({ method: 'POST', url, contentType: 'application/proto', body, privateKey: keys.privateKey });
    expect((await post(signed, body, headers)).status).toBe(200);
    expect((await post(signed, body)).status).toBe(401);
    const other = generateSigningKeyPair();
    const forged = signRequest({ method: 'POST', url, contentType: 'application/proto', body, privateKey: other.privateKey });
    expect((await post(signed, body, forged)).status).toBe(403);
    const tampered = runRequest('echo', ['tampered']);
    expect((await post(signed, tampered, headers)).status).toBe(403);
    const old = signRequest({ method: 'POST', url, contentType: 'application/proto', body, privateKey: keys.privateKey, created: Math.floor(Date.now() / 1000) - 600 });
    expect((await post(signed, body, old)).status).toBe(403);
  });
});

describe('endpoint fuzz', () => {
  // Deterministic PRNG so a failure can be reproduced.
  let seed = 0x12345678;
  const rand = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  const int = (n: number) => Math.floor(rand() * n);

  const valid = [
    runRequest('add', [1, 2]),
    runRequest('echo', [{ a: [1, 'x', null], b: new Date(0) }]),
    proto.RunRequest.encode({ function: 'echo', pollResult: { typedCoroutineState: { typeUrl: proto.Journal.typeUrl, value: new Uint8Array([8, 1]) } } }),
    proto.RunRequest.encode({ function: 'echo', pollResult: { results: [{ correlationId: proto.toLong((1n << 64n) - 1n) }] } }),
  ];

  function mutate(bytes: Uint8Array): Uint8Array {
    const out = Uint8Array.from(bytes);
    switch (int(7)) {
      case 0:
        return out.subarray(0, int(out.length + 1)); // truncated
      case 1:
        for (let i = 0; i < 1 + int(4); i++) out[int(out.length)] = int(256);
        return out;
      case 2: {
        // a huge length prefix
        const huge = Uint8Array.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, ...out]);
        return huge;
      }
      case 3: {
        // wrong wire types
        const wt = Uint8Array.from(out);
        if (wt.length) wt[0] = ((wt[0] as number) & 0xf8) | int(8);
        return wt;
      }
      case 4:
        return Uint8Array.from({ length: int(200) }, () => int(256)); // random
      case 5: {
        const doubled = new Uint8Array(out.length * 2);
        doubled.set(out);
        doubled.set(out, out.length);
        return doubled;
      }
      default: {
        const spliced = Uint8Array.from(out);
        const at = int(spliced.length + 1);
        return Uint8Array.from([...spliced.subarray(0, at), ...Uint8Array.from({ length: int(16) }, () => int(256)), ...spliced.subarray(at)]);
      }
    }
  }

  it('answers 10,000 random and mutated bodies with 2xx/4xx and a Connect error body, never a crash or a 500', { timeout: 600_000 }, async () => {
    // 10,000 sequential requests, a third of them signed: seconds on an idle machine, minutes on a
    // loaded one (two cores under the whole suite). The timeout is a liveness guard, not a speed check.
    const counts = new Map<number, number>();
    const contentTypes = ['application/proto', 'application/json', 'application/octet-stream', 'text/plain'];
    for (let i = 0; i < 10_000; i++) {
      const useSigned = i % 3 === 0;
      const server = useSigned ? signed : plain;
      let body = mutate(valid[int(valid.length)] as Uint8Array);
      let contentType = i % 10 === 0 ? (contentTypes[int(contentTypes.length)] as string) : 'application/proto';
      if (contentType === 'application/json' && rand() < 0.5) {
        body = new TextEncoder().encode(JSON.stringify({ function: 'echo', input: { '@type': int(2) ? proto.Value.typeUrl : 'x', value: [int(5)] }, junk: rand() < 0.3 ? 1 : undefined }).slice(0, 10 + int(80)));
      }
      let headers: Record<string, string> = { 'content-type': contentType };
      if (useSigned) {
        const url = `${server.url}${RUN}`;
        const sig = signRequest({ method: 'POST', url, contentType, body, privateKey: keys.privateKey });
        if (rand() < 0.5) sig.signature = sig.signature.replace(/.{4}:$/, 'AAA=:'); // corrupt
        if (rand() < 0.2) sig['signature-input'] = sig['signature-input'].replace('created=', 'created=9');
        headers = { ...headers, ...sig };
        if (rand() < 0.3) contentType = 'application/proto';
      }
      const res = await post(server, body, headers);
      counts.set(res.status, (counts.get(res.status) ?? 0) + 1);
      expect(res.status, `request ${i}`).not.toBe(500);
      expect(res.status < 500, `request ${i}: HTTP ${res.status}`).toBe(true);
      if (res.status !== 200) {
        expect(res.type).toBe('application/json');
        const json = JSON.parse(new TextDecoder().decode(res.body));
        expect(typeof json.code).toBe('string');
        expect(typeof json.message).toBe('string');
      }
    }
    // Both the happy path and every refusal were exercised.
    expect(counts.get(200) ?? 0).toBeGreaterThan(0);
    expect(counts.get(400) ?? 0).toBeGreaterThan(0);
    expect((counts.get(401) ?? 0) + (counts.get(403) ?? 0)).toBeGreaterThan(0);
  });
});

describe('endpoint handler contract', () => {
  // The handler needs only an EndpointApp: limits, key, logger, which functions
  // exist, and a way to run one request. Here an app of its own: its own key
  // and body limit, exposing two of a Dispatch instance's functions.
  const dispatch = makeApp(false);
  const runs: string[] = [];
  const app: EndpointApp = {
    maxBodyBytes: 1024,
    verificationKey: keys.publicKey,
    logger: silent,
    hasFunction: (name) => name === 'add' || name === 'echo',
    runRequest: (request) => {
      runs.push(request.function ?? '');
      return dispatch.runRequest(request);
    },
  };
  const url = `http://app.test${RUN}`;
  const signedRequest = (body: Uint8Array) => ({
    method: 'POST',
    url: RUN,
    headers: { host: 'app.test', 'content-type': 'application/proto', ...signRequest({ method: 'POST', url, contentType: 'application/proto', body, privateKey: keys.privateKey }) },
    body,
  });

  it('verifies with the app key, checks the app limit and functions, and runs through app.runRequest', async () => {
    const ok = await handleEndpointRequest(app, signedRequest(runRequest('add', [20, 22])));
    expect(ok.status).toBe(200);
    expect(decodeValue(proto.RunResponse.decode(ok.body).exit?.result?.output)).toBe(42);
    const unsigned = await handleEndpointRequest(app, { ...signedRequest(runRequest('add', [1, 1])), headers: { 'content-type': 'application/proto' } });
    expect(unsigned.status).toBe(401);
    const tooLarge = await handleEndpointRequest(app, signedRequest(runRequest('echo', ['x'.repeat(2000)])));
    expect(tooLarge.status).toBe(413);
    // `flaky` is registered on the instance, but this app does not expose it.
    const hidden = await handleEndpointRequest(app, signedRequest(runRequest('flaky', [])));
    expect(hidden.status).toBe(404);
    expect(runs).toEqual(['add']);
  });
});
