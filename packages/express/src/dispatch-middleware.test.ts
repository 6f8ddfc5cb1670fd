// What only the Express middleware does (the shared behaviour is in
// test/conformance): where the raw body comes from, what it refuses, and
// how it sits among the app's own middleware. Run on Express 4 and 5.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Dispatch, Status } from '@dispatch/core';
import { decodeValue, encodeArgs, generateSigningKeyPair, proto, RUN_PATH, signRequest, toJson } from '@dispatch/core/protocol';
import express5 from 'express';
// @ts-expect-error express4 is an alias of express@4 without type declarations.
import express4 from 'express4';
import { afterEach, describe, expect, it } from 'vitest';
import { dispatchMiddleware } from './dispatch-middleware.js';

const keys = generateSigningKeyPair();
const quiet = { warn() {}, error() {}, info() {} };

function newDispatch(): Dispatch {
  const dispatch = new Dispatch({ endpointUrl: 'http://127.0.0.1:1', verificationKey: keys.publicKey, logger: quiet, env: {} });
  dispatch.function(function echo(text: string) {
    return `echo: ${text}`;
  });
  return dispatch;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        }),
    ),
  );
});

async function listen(app: { listen(port: number, host: string, cb: () => void): Server }): Promise<string> {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const protoBody = () => proto.RunRequest.encode({ function: 'echo', input: encodeArgs(['hi']) });
const jsonBody = () => new TextEncoder().encode(JSON.stringify(toJson(proto.RunRequest, { function: 'echo', input: encodeArgs(['hi']) })));

async function post(url: string, body: Uint8Array, contentType = 'application/proto') {
  const headers = { 'content-type': contentType, ...signRequest({ method: 'POST', url, contentType, body, privateKey: keys.privateKey }) };
  const res = await fetch(url, { method: 'POST', headers, body });
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: new Uint8Array(await res.arrayBuffer()) };
}

function expectEchoProto(res: { status: number; body: Uint8Array }) {
  expect(res.status).toBe(200);
  const response = proto.RunResponse.decode(res.body);
  expect(response.status).toBe(Status.OK);
  expect(decodeValue(response.exit?.result?.output)).toBe('echo: hi');
}

// Both Express majors, typed loosely.
describe.each([
  ['Express 4', express4 as any],
  ['Express 5', express5 as any],
])('%s', (_name, express) => {
  it('uses a Buffer left in req.body by express.raw() as is', async () => {
    const app = express();
    app.use(express.raw({ type: () => true }));
    app.use(dispatchMiddleware(newDispatch()));
    const url = await listen(app);
    expectEchoProto(await post(`${url}${RUN_PATH}`, protoBody()));
  });

  it('uses req.rawBody kept by a parser verify hook (NestJS rawBody: true)', async () => {
    const app = express();
    app.use(express.json({ verify: (req: { rawBody?: Buffer }, _res: unknown, buf: Buffer) => void (req.rawBody = buf) }));
    app.use(dispatchMiddleware(newDispatch()));
    const url = await listen(app);
    const res = await post(`${url}${RUN_PATH}`, jsonBody(), 'application/json');
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^application\/json/);
  });

  it('refuses a body already parsed into an object, saying how to fix the app, and never re-serialises it', async () => {
    const app = express();
    app.use(express.json());
    app.use(dispatchMiddleware(newDispatch()));
    const url = await listen(app);
    const res = await post(`${url}${RUN_PATH}`, jsonBody(), 'application/json');
    expect(res.status).toBe(500);
    const error = JSON.parse(new TextDecoder().decode(res.body));
    expect(error.code).toBe('internal');
    expect(error.message).toContain('mount dispatchMiddleware() before body parsers');
  });

  it('still reads binary requests that an earlier express.json() skipped', async () => {
    const app = express();
    app.use(express.json());
    app.use(dispatchMiddleware(newDispatch()));
    const url = await listen(app);
    expectEchoProto(await post(`${url}${RUN_PATH}`, protoBody()));
  });

  it('applies its bodyLimit option while reading', async () => {
    const app = express();
    app.use(dispatchMiddleware(newDispatch(), { bodyLimit: 10 }));
    const url = await listen(app);
    const res = await post(`${url}${RUN_PATH}`, protoBody());
    expect(res.status).toBe(413);
    expect(JSON.parse(new TextDecoder().decode(res.body)).code).toBe('resource_exhausted');
  });

  it('signs over req.originalUrl inside nested routers, and ignores the query', async () => {
    const app = express();
    const router = express.Router();
    router.use('/dispatch', dispatchMiddleware(newDispatch()));
    app.use('/api', router);
    const url = await listen(app);
    expectEchoProto(await post(`${url}/api/dispatch${RUN_PATH}?trace=1`, protoBody()));
  });

  it('passes every other request on to the app', async () => {
    const app = express();
    app.use(dispatchMiddleware(newDispatch()));
    app.post(`/other${RUN_PATH}/x`, (_req: unknown, res: { send(v: string): void }) => res.send('app'));
    app.use((_req: unknown, res: { status(n: number): { send(v: string): void } }) => res.status(404).send('app 404'));
    const url = await listen(app);
    expect(await (await fetch(`${url}/other${RUN_PATH}/x`, { method: 'POST' })).text()).toBe('app');
    const missing = await fetch(`${url}/nothing`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe('app 404');
  });
});

describe('the instance it serves', () => {
  it('serves the default instance when given the module (import * as dispatch)', async () => {
    const dispatch = await import('@dispatch/core');
    dispatch.function(function echoDefault(text: string) {
      return `default: ${text}`;
    });
    const app = express5();
    app.use(dispatchMiddleware(dispatch));
    const url = await listen(app);
    const body = proto.RunRequest.encode({ function: 'echoDefault', input: encodeArgs(['hi']) });
    const res = await fetch(`${url}${RUN_PATH}`, { method: 'POST', headers: { 'content-type': 'application/proto' }, body });
    expect(res.status).toBe(200);
    expect(decodeValue(proto.RunResponse.decode(new Uint8Array(await res.arrayBuffer())).exit?.result?.output)).toBe('default: hi');
  });

  it('refuses anything else when mounted, saying what to pass', () => {
    for (const bad of [undefined, {}, { dispatch: newDispatch() }, newDispatch]) {
      expect(() => dispatchMiddleware(bad as never)).toThrow(
        /^dispatchMiddleware\(\) needs the Dispatch instance whose functions it serves: a `new Dispatch\(\)`, or the module itself after `import \* as dispatch from '@dispatch\/core'`/,
      );
    }
    expect(() => dispatchMiddleware({ dispatch: 1 } as never)).toThrow(/got an object \(Object with dispatch\)$/);
  });
});
