/**
 * The conformance suite every way of serving the endpoint runs (PROTOCOL.md
 * 2, 3 and 8.1–8.7): the node:http server, Express 4 and 5, Fastify, and
 * NestJS on both platforms. Each target starts a real server on 127.0.0.1
 * port 0 for a given Dispatch instance and mount prefix; the suite talks to
 * it with fetch.
 */
import { type KeyObject, randomUUID } from 'node:crypto';
import net from 'node:net';
import { Dispatch, Status } from '@dispatch/core';
import {
  decodeValue,
  encodeArgs,
  fromJson,
  generateSigningKeyPair,
  MAX_RUN_BATCH,
  proto,
  RUN_BATCH_CONTENT_TYPE,
  RUN_BATCH_HEADER,
  RUN_PATH,
  RUN_STREAM_CONTENT_TYPE,
  SESSION_ACCEPT_HEADER,
  SESSION_HEADER,
  SESSION_OFFER_HEADER,
  SessionOffer,
  signRequest,
  toJson,
} from '@dispatch/core/protocol';
import { bodyReadBudget } from '@dispatch/core/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** A running server of one target. */
export interface RunningServer {
  /** `http://127.0.0.1:port` (no prefix). */
  url: string;
  close(): Promise<void>;
}

/** A way of serving the endpoint. */
export interface ConformanceTarget {
  name: string;
  /**
   * Starts a server for `dispatch` with the Run route under `prefix` ('' or
   * '/dispatch'), listening on `host` (`127.0.0.1`, or `0.0.0.0` for the
   * tests of an endpoint beyond loopback; `url` is through 127.0.0.1 either
   * way). Targets that are apps (all but the bare node server) also
   * serve `POST /app/echo` (answers `{ echo: <the body parsed by the app's own
   * JSON parser> }`) and `GET /app/health` (answers `ok`).
   */
  start(dispatch: Dispatch, prefix: string, host: string): Promise<RunningServer>;
  /** `false` for the bare node server, which has no routes of its own. */
  appRoutes: boolean;
}

const LIMIT = 64 * 1024;
const quiet = { warn() {}, error() {}, info() {} };

/** Holds `gatedTwice` between its two awaits until the test opens it (local resume). */
const gate = { opened: Promise.resolve(), open: () => {} };

function newDispatch(verificationKey: KeyObject | null | false): Dispatch {
  const dispatch = new Dispatch({ endpointUrl: 'http://127.0.0.1:1', verificationKey, maxBodyBytes: LIMIT, logger: quiet, env: {} });
  dispatch.function(function echo(text: string) {
    return `echo: ${text}`;
  });
  const inc = dispatch.function(function inc(n: number) {
    return n + 1;
  });
  dispatch.function(async function gated(text: string) {
    await gate.opened;
    return `gated: ${text}`;
  });
  dispatch.function(async function gatedTwice(n: number) {
    const a = await inc(n);
    await gate.opened;
    return await inc(a);
  });
  return dispatch;
}

/** Reads RunResponses, each preceded by its varint length, from a streamed body, one at a time. */
function frameReader(body: ReadableStream<Uint8Array>) {
  const next = rawFrameReader(body);
  return async () => {
    const frame = await next();
    return frame && proto.RunResponse.decode(frame);
  };
}

/** Reads messages, each preceded by its varint length, from a streamed body, one at a time. */
function rawFrameReader(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  let buf = new Uint8Array(0);
  return async function next(): Promise<Uint8Array | null> {
    for (;;) {
      let length = 0;
      let at = 0;
      let shift = 0;
      let complete = false;
      while (at < buf.length) {
        const b = buf[at++] as number;
        length |= (b & 0x7f) << shift;
        shift += 7;
        if (b < 0x80) {
          complete = buf.length - at >= length;
          break;
        }
      }
      if (complete) {
        const frame = buf.subarray(at, at + length);
        buf = buf.subarray(at + length);
        return frame;
      }
      const { done, value } = await reader.read();
      if (done) return null;
      const joined = new Uint8Array(buf.length + value.length);
      joined.set(buf);
      joined.set(value, buf.length);
      buf = joined;
    }
  };
}

const runRequest = (fn: string, args: unknown[]): proto.IRunRequest => ({
  function: fn,
  input: encodeArgs(args),
  dispatchId: 'conformance-1',
  rootDispatchId: 'conformance-1',
});

interface SendOptions {
  method?: string;
  contentType?: string | null;
  /** Sign with this key; `null` sends no signature. */
  key?: KeyObject | null;
  /** Sign these bytes instead of the body sent. */
  signedBody?: Uint8Array;
  created?: number;
  /** Send the body as a stream of chunks (no Content-Length). */
  stream?: boolean;
}

/**
 * Sends only the head of a POST (request line and headers, declaring a body
 * that is never sent) and resolves with the status line of the answer: an
 * answer comes only if the server decides without reading the body.
 */
function headOnly(server: RunningServer, path: string, headers: Record<string, string>): Promise<string> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let received = '';
    socket.setEncoding('latin1');
    socket.on('connect', () => {
      const lines = [`POST ${path} HTTP/1.1`, `host: ${hostname}:${port}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    socket.on('data', (chunk: string) => {
      received += chunk;
      const end = received.indexOf('\r\n');
      if (end >= 0) {
        socket.destroy();
        resolve(received.slice(0, end));
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`the connection closed without an answer (received ${JSON.stringify(received)})`)));
  });
}

/** Runs the suite against a target: once at the root, once under a mount prefix. */
export function conformance(target: ConformanceTarget): void {
  describe.each(['', '/dispatch'])(`${target.name} (prefix "%s")`, (prefix) => {
    const keys = generateSigningKeyPair();
    const other = generateSigningKeyPair();
    let signed: RunningServer;
    let open: RunningServer;

    beforeAll(async () => {
      signed = await target.start(newDispatch(keys.publicKey), prefix, '127.0.0.1');
      open = await target.start(newDispatch(null), prefix, '127.0.0.1');
    });
    afterAll(async () => {
      await signed?.close();
      await open?.close();
    });

    async function send(server: RunningServer, body: Uint8Array, options: SendOptions = {}, path = `${prefix}${RUN_PATH}`) {
      const url = `${server.url}${path}`;
      const method = options.method ?? 'POST';
      const contentType = options.contentType === undefined ? 'application/proto' : options.contentType;
      const headers: Record<string, string> = {};
      if (contentType !== null) headers['content-type'] = contentType;
      const key = options.key === undefined ? keys.privateKey : options.key;
      if (key) {
        Object.assign(
          headers,
          signRequest({
            method,
            url,
            contentType: contentType ?? '',
            body: options.signedBody ?? body,
            privateKey: key,
            // Signed anew each time, as a scheduler does: an endpoint refuses a signature it has seen.
            nonce: randomUUID(),
            ...(options.created === undefined ? {} : { created: options.created }),
          }),
        );
      }
      const init: RequestInit & { duplex?: 'half' } = { method, headers };
      if (method !== 'GET' && method !== 'HEAD') {
        if (options.stream) {
          const chunks = Math.ceil(body.length / 8192);
          let i = 0;
          init.body = new ReadableStream<Uint8Array>({
            pull(controller) {
              if (i < chunks) controller.enqueue(body.subarray(i++ * 8192, i * 8192));
              else controller.close();
            },
          });
          init.duplex = 'half';
        } else init.body = body;
      }
      const res = await fetch(url, init);
      return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: new Uint8Array(await res.arrayBuffer()) };
    }

    const protoBody = (fn = 'echo', args: unknown[] = ['hi']) => proto.RunRequest.encode(runRequest(fn, args));

    function expectConnectError(res: { status: number; contentType: string; body: Uint8Array }, status: number, code: string) {
      expect(res.status).toBe(status);
      expect(res.contentType).toMatch(/^application\/json/);
      const json = JSON.parse(new TextDecoder().decode(res.body)) as { code: unknown; message: unknown };
      expect(json.code).toBe(code);
      expect(typeof json.message).toBe('string');
      expect(json.message).not.toBe('');
      return json as { code: string; message: string };
    }

    function expectEcho(res: { status: number; contentType: string; body: Uint8Array }, text = 'hi') {
      expect(res.status).toBe(200);
      expect(res.contentType).toBe('application/proto');
      const response = proto.RunResponse.decode(res.body);
      expect(response.status).toBe(Status.OK);
      expect(decodeValue(response.exit?.result?.output)).toBe(`echo: ${text}`);
    }

    it('runs a signed binary request and answers binary protobuf', async () => {
      expectEcho(await send(signed, protoBody()));
    });

    it('says it takes batches of RunRequests, and runs a signed batch (one signature) answering each in order', async () => {
      const single = await fetchRaw(signed, protoBody());
      expect(single.headers.get(RUN_BATCH_HEADER)).toBe(String(MAX_RUN_BATCH));
      const body = proto.RunBatchRequest.encode({ requests: [runRequest('echo', ['a']), runRequest('echo', ['b']), runRequest('echo', ['c'])] });
      const res = await send(signed, body, { contentType: RUN_BATCH_CONTENT_TYPE });
      expect(res.status).toBe(200);
      expect(res.contentType).toBe(RUN_BATCH_CONTENT_TYPE);
      const responses = proto.RunBatchResponse.decode(res.body).responses ?? [];
      expect(responses.map((r) => decodeValue(r.exit?.result?.output))).toEqual(['echo: a', 'echo: b', 'echo: c']);
      // Unsigned, a batch is refused like a single request.
      expectConnectError(await send(signed, body, { contentType: RUN_BATCH_CONTENT_TYPE, key: null }), 401, 'unauthenticated');
    });

    it('opens a signature session for an offer its signature covers, runs a request signed with it (HMAC-SHA256), and refuses its sequence number twice', async () => {
      const url = `${signed.url}${prefix}${RUN_PATH}`;
      const offer = new SessionOffer();
      const body = protoBody();
      const offering = signRequest({ method: 'POST', url, contentType: 'application/proto', body, privateKey: keys.privateKey, nonce: randomUUID(), coveredHeaders: { [SESSION_OFFER_HEADER]: offer.header } });
      const opened = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/proto', ...offering }, body });
      await opened.arrayBuffer();
      expect(opened.status).toBe(200);
      expect(opened.headers.get(SESSION_ACCEPT_HEADER)).toBe('x25519');
      const session = offer.accept(opened.headers.get(SESSION_HEADER) ?? undefined);
      expect(session).not.toBeNull();
      // The session's requests are numbered in their nonce: 1, 2, 3, …
      const viaSession = signRequest({ method: 'POST', url, contentType: 'application/proto', body, session: session!, nonce: '1' });
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/proto', ...viaSession }, body });
      expectEcho({ status: res.status, contentType: res.headers.get('content-type') ?? '', body: new Uint8Array(await res.arrayBuffer()) });
      // The same number again (a replay): 403, decided before the body is read.
      const again = signRequest({ method: 'POST', url, contentType: 'application/proto', body, session: session!, nonce: '1' });
      expect(await headOnly(signed, `${prefix}${RUN_PATH}`, { 'content-type': 'application/proto', 'content-length': String(body.length), ...again })).toMatch(/^HTTP\/1\.1 403/);
      // A session this endpoint never opened: 401, decided before the body is read.
      const unknown = signRequest({ method: 'POST', url, contentType: 'application/proto', body, session: { ...session!, id: 'x'.repeat(24) }, nonce: '2' });
      const head = { 'content-type': 'application/proto', 'content-length': String(body.length), ...unknown };
      expect(await headOnly(signed, `${prefix}${RUN_PATH}`, head)).toMatch(/^HTTP\/1\.1 401/);
    });

    async function fetchRaw(server: RunningServer, body: Uint8Array) {
      const url = `${server.url}${prefix}${RUN_PATH}`;
      const headers = { 'content-type': 'application/proto', ...signRequest({ method: 'POST', url, contentType: 'application/proto', body, privateKey: keys.privateKey, nonce: randomUUID() }) };
      const res = await fetch(url, { method: 'POST', headers, body });
      await res.arrayBuffer();
      return res;
    }

    it("streams a child's answer before it resumes the waiting parent, then the parent's answer (local resume)", async () => {
      const post = (request: proto.IRunRequest) => {
        const body = proto.RunRequest.encode(request);
        const url = `${signed.url}${prefix}${RUN_PATH}`;
        const headers = { 'content-type': 'application/proto', ...signRequest({ method: 'POST', url, contentType: 'application/proto', body, privateKey: keys.privateKey, nonce: randomUUID() }) };
        return fetch(url, { method: 'POST', headers, body });
      };
      const id = `lr-${randomUUID()}`;
      const parentRes = await post({ function: 'gatedTwice', dispatchId: id, rootDispatchId: id, input: encodeArgs([1]), acceptsStateDelta: true });
      const poll = proto.RunResponse.decode(new Uint8Array(await parentRes.arrayBuffer()));
      const call = poll.poll?.calls?.[0];
      expect(call?.function).toBe('inc');
      let open = () => {};
      gate.opened = new Promise<void>((resolve) => {
        open = resolve;
      });
      const res = await post({
        function: 'inc',
        dispatchId: `${id}-c`,
        parentDispatchId: id,
        rootDispatchId: id,
        input: call?.input,
        acceptsStateDelta: true,
        localResume: { correlationId: call?.correlationId },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(RUN_STREAM_CONTENT_TYPE);
      const next = frameReader(res.body as ReadableStream<Uint8Array>);
      // The child's answer arrives while the parent's resume is held at the gate.
      const child = await next();
      expect(decodeValue(child?.exit?.result?.output)).toBe(2);
      expect(Number(child?.parentState?.length ?? 0)).toBe(poll.poll?.typedCoroutineState?.value?.length);
      open();
      const parent = await next();
      expect(parent?.poll?.calls?.map((c) => [c.function, decodeValue(c.input)])).toEqual([['inc', [2]]]);
      expect(await next()).toBeNull();
    });

    it('answers a batch as its runs end when the request accepts a stream (RunBatchAnswer)', async () => {
      let opened = () => {};
      gate.opened = new Promise<void>((resolve) => {
        opened = resolve;
      });
      const body = proto.RunBatchRequest.encode({ requests: [runRequest('gated', ['slow']), runRequest('echo', ['fast'])] });
      const url = `${signed.url}${prefix}${RUN_PATH}`;
      const headers = {
        'content-type': RUN_BATCH_CONTENT_TYPE,
        accept: RUN_STREAM_CONTENT_TYPE,
        ...signRequest({ method: 'POST', url, contentType: RUN_BATCH_CONTENT_TYPE, body, privateKey: keys.privateKey, nonce: randomUUID() }),
      };
      const res = await fetch(url, { method: 'POST', headers, body });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(RUN_STREAM_CONTENT_TYPE);
      const next = rawFrameReader(res.body as ReadableStream<Uint8Array>);
      const answer = async () => {
        const frame = await next();
        if (!frame) return null;
        const a = proto.RunBatchAnswer.decode(frame);
        return [a.index ?? 0, decodeValue(a.response?.exit?.result?.output)];
      };
      // The fast one first, while the slow one is held.
      expect(await answer()).toEqual([1, 'echo: fast']);
      opened();
      expect(await answer()).toEqual([0, 'gated: slow']);
      expect(await answer()).toBeNull();
    });

    it('accepts the other binary content types (application/octet-stream, none)', async () => {
      expectEcho(await send(signed, protoBody(), { contentType: 'application/octet-stream' }));
      // Signatures cover Content-Type, so a request without one can only be unsigned.
      expectEcho(await send(open, protoBody(), { contentType: null, key: null }));
    });

    it('answers a Connect JSON request in JSON', async () => {
      const body = new TextEncoder().encode(JSON.stringify(toJson(proto.RunRequest, runRequest('echo', ['json']))));
      const res = await send(signed, body, { contentType: 'application/json' });
      expect(res.status).toBe(200);
      expect(res.contentType).toMatch(/^application\/json/);
      const response = fromJson(proto.RunResponse, JSON.parse(new TextDecoder().decode(res.body)));
      expect(response.status).toBe(Status.OK);
      expect(decodeValue(response.exit?.result?.output)).toBe('echo: json');
    });

    it('refuses an unsigned request with 401 unauthenticated', async () => {
      expectConnectError(await send(signed, protoBody(), { key: null }), 401, 'unauthenticated');
    });

    it('refuses a request signed with another key with 403 permission_denied', async () => {
      expectConnectError(await send(signed, protoBody(), { key: other.privateKey }), 403, 'permission_denied');
    });

    it('refuses a body that is not the one signed (digest mismatch) with 403', async () => {
      expectConnectError(await send(signed, protoBody('echo', ['evil']), { signedBody: protoBody() }), 403, 'permission_denied');
    });

    it('refuses an expired signature with 403', async () => {
      const created = Math.floor(Date.now() / 1000) - 600;
      expectConnectError(await send(signed, protoBody(), { created }), 403, 'permission_denied');
    });

    it('refuses a signature made for another path with 403', async () => {
      const body = protoBody();
      // Signed for /other/...Run, sent to the real path.
      const url = `${signed.url}${prefix}${RUN_PATH}`;
      const headers = {
        'content-type': 'application/proto',
        ...signRequest({ method: 'POST', url: `${signed.url}/other${RUN_PATH}`, contentType: 'application/proto', body, privateKey: keys.privateKey }),
      };
      const res = await fetch(url, { method: 'POST', headers, body });
      expectConnectError(
        { status: res.status, contentType: res.headers.get('content-type') ?? '', body: new Uint8Array(await res.arrayBuffer()) },
        403,
        'permission_denied',
      );
    });

    it('accepts unsigned requests when no verification key is set, on loopback', async () => {
      expectEcho(await send(open, protoBody(), { key: null }));
    });

    it('refuses a signature it has already accepted (a replay) with 403 permission_denied', async () => {
      const body = protoBody('echo', ['once']);
      const url = `${signed.url}${prefix}${RUN_PATH}`;
      const signature = signRequest({ method: 'POST', url, contentType: 'application/proto', body, privateKey: keys.privateKey, nonce: randomUUID() });
      const headers = { 'content-type': 'application/proto', ...signature };
      const post = async () => {
        const res = await fetch(url, { method: 'POST', headers, body });
        return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: new Uint8Array(await res.arrayBuffer()) };
      };
      expectEcho(await post(), 'once');
      const again = expectConnectError(await post(), 403, 'permission_denied');
      expect(again.message).toMatch(/signature already used/);
      // Refused from its headers alone: the body need not even be sent.
      const head = { 'content-type': 'application/proto', 'content-length': String(body.length), ...signature };
      expect(await headOnly(signed, `${prefix}${RUN_PATH}`, head)).toMatch(/^HTTP\/1\.1 403 /);
    });

    it('answers a request its headers condemn without reading its body', async () => {
      const path = `${prefix}${RUN_PATH}`;
      const declared = { 'content-type': 'application/proto', 'content-length': String(LIMIT - 1) };
      // Unsigned: 401, though the body never comes.
      expect(await headOnly(signed, path, declared)).toMatch(/^HTTP\/1\.1 401 /);
      // Signed long ago: 403.
      const stale = signRequest({
        method: 'POST',
        url: `${signed.url}${path}`,
        contentType: 'application/proto',
        body: new Uint8Array(LIMIT - 1),
        privateKey: keys.privateKey,
        created: Math.floor(Date.now() / 1000) - 600,
      });
      expect(await headOnly(signed, path, { ...declared, ...stale })).toMatch(/^HTTP\/1\.1 403 /);
      // Over the limit: 413.
      expect(await headOnly(signed, path, { ...declared, 'content-length': String(LIMIT + 1) })).toMatch(/^HTTP\/1\.1 413 /);
      // The server is still fine afterwards.
      expectEcho(await send(signed, protoBody()));
    });

    it("reads a body within the process's body budget, reserving its declared size, and gives the room back", async () => {
      // A reservation takes either way: at once when there is room (tryAcquire), else waiting in line (acquire).
      const sizes: number[] = [];
      const acquire = bodyReadBudget.acquire;
      const tryAcquire = bodyReadBudget.tryAcquire;
      bodyReadBudget.acquire = (bytes, signal) => {
        sizes.push(bytes);
        return acquire.call(bodyReadBudget, bytes, signal);
      };
      bodyReadBudget.tryAcquire = (bytes) => {
        const release = tryAcquire.call(bodyReadBudget, bytes);
        if (release) sizes.push(bytes);
        return release;
      };
      try {
        const body = protoBody('echo', ['x'.repeat(20_000)]);
        expectEcho(await send(signed, body), 'x'.repeat(20_000));
        expect(sizes).toEqual([body.length]);
        await expect.poll(() => bodyReadBudget.inUse, { timeout: 10_000 }).toBe(0);
        // A request refused from its head takes no place.
        expectConnectError(await send(signed, body, { key: null }), 401, 'unauthenticated');
        expect(sizes).toEqual([body.length]);
      } finally {
        bodyReadBudget.acquire = acquire;
        bodyReadBudget.tryAcquire = tryAcquire;
      }
    });

    it('without a key, refuses every request when it listens beyond loopback (401 naming the fix), unless the app opts out', async () => {
      const wide = await target.start(newDispatch(null), prefix, '0.0.0.0');
      const optedOut = await target.start(newDispatch(false), prefix, '0.0.0.0');
      try {
        const refused = expectConnectError(await send(wide, protoBody(), { key: null }), 401, 'unauthenticated');
        expect(refused.message).toMatch(/listens on 0\.0\.0\.0, beyond loopback, and has no verification key/);
        expect(refused.message).toMatch(/DISPATCH_VERIFICATION_KEY/);
        expect(refused.message).toMatch(/verificationKey: false/);
        // A signature is no help: there is no key to check it with.
        expectConnectError(await send(wide, protoBody()), 401, 'unauthenticated');
        expect(await headOnly(wide, `${prefix}${RUN_PATH}`, { 'content-type': 'application/proto', 'content-length': '100' })).toMatch(/^HTTP\/1\.1 401 /);
        expectEcho(await send(optedOut, protoBody(), { key: null }));
      } finally {
        await wide.close();
        await optedOut.close();
      }
    });

    it('answers 400 invalid_argument to a body that is not a RunRequest', async () => {
      expectConnectError(await send(signed, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])), 400, 'invalid_argument');
      expectConnectError(await send(signed, new TextEncoder().encode('{not json'), { contentType: 'application/json' }), 400, 'invalid_argument');
    });

    it('answers 400 invalid_argument to a request without a function name', async () => {
      expectConnectError(await send(signed, proto.RunRequest.encode({ input: encodeArgs([]) })), 400, 'invalid_argument');
    });

    it('answers 413 resource_exhausted to a body over the limit (declared or streamed)', async () => {
      const big = new Uint8Array(LIMIT + 1024).fill(7);
      expectConnectError(await send(signed, big), 413, 'resource_exhausted');
      expectConnectError(await send(signed, big, { stream: true }), 413, 'resource_exhausted');
      // The server is still fine afterwards.
      expectEcho(await send(signed, protoBody()));
    });

    it('answers 404 not_found to an unknown function, naming it, the closest one and the functions it has', async () => {
      const error = expectConnectError(await send(signed, protoBody('nope', [])), 404, 'not_found');
      expect(error.message).toBe('function "nope" does not exist on this endpoint (its functions: echo, gated, gatedTwice, inc)');
      const typo = expectConnectError(await send(signed, protoBody('ecoh', [])), 404, 'not_found');
      expect(typo.message).toBe('function "ecoh" does not exist on this endpoint: did you mean echo? (its functions: echo, gated, gatedTwice, inc)');
    });

    it('answers 415 to an unsupported content type', async () => {
      expectConnectError(await send(signed, protoBody(), { contentType: 'text/plain' }), 415, 'invalid_argument');
      expectConnectError(await send(signed, protoBody(), { contentType: 'application/x-www-form-urlencoded' }), 415, 'invalid_argument');
    });

    it('answers 405 to GET on the Run route', async () => {
      expectConnectError(await send(signed, new Uint8Array(0), { method: 'GET', key: null }), 405, 'unimplemented');
    });

    // The bare node server has no routes of its own; every other target is an app.
    const appIt = target.appRoutes ? it : () => undefined;
    appIt("leaves the app's own routes and JSON parser untouched", async () => {
      const res = await fetch(`${signed.url}/app/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ hello: 'world', n: 1 }),
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ echo: { hello: 'world', n: 1 } });
      const health = await fetch(`${signed.url}/app/health`);
      expect(health.status).toBe(200);
      expect(await health.text()).toBe('ok');
    });

    // Only under a mount prefix is there a path outside it to try.
    const prefixedAppIt = target.appRoutes && prefix !== '' ? it : () => undefined;
    prefixedAppIt('serves the Run route only under its mount prefix', async () => {
      const res = await send(signed, protoBody(), {}, RUN_PATH);
      // The app's own 404, not a Run response.
      expect(res.status).toBe(404);
      expect(res.contentType).not.toBe('application/proto');
    });
  });
}
