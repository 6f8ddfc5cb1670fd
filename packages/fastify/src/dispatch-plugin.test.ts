// What only the Fastify plugin does (the shared behaviour is in
// test/conformance): the decoration, encapsulation of its parser, bodyLimit,
// prefixes, and draining in-flight runs on close.
import { type Dispatch as DispatchType, Dispatch, Status } from '@dispatch/core';
import { decodeValue, encodeArgs, proto, RUN_PATH } from '@dispatch/core/protocol';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { dispatchPlugin } from './dispatch-plugin.js';

const quiet = { warn() {}, error() {}, info() {} };

function newDispatch(): Dispatch {
  const dispatch = new Dispatch({ endpointUrl: 'http://127.0.0.1:1', verificationKey: null, logger: quiet, env: {} });
  dispatch.function(function echo(text: string) {
    return `echo: ${text}`;
  });
  return dispatch;
}

/** Resolves as `promise` does, or fails after `ms` saying what did not happen (a liveness guard, not a timing check). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, stuck]);
  } finally {
    clearTimeout(timer);
  }
}

const protoBody = () => Buffer.from(proto.RunRequest.encode({ function: 'echo', input: encodeArgs(['hi']) }));

describe('dispatchPlugin', () => {
  it('decorates the app with its Dispatch instance, typed', async () => {
    const dispatch = newDispatch();
    const app = Fastify();
    await app.register(dispatchPlugin, { dispatch });
    const decorated: DispatchType = app.dispatch;
    expect(decorated).toBe(dispatch);
    await app.close();
  });

  it('serves the default instance when given the module (import * as dispatch), and refuses anything else at registration', async () => {
    const dispatch = await import('@dispatch/core');
    dispatch.function(function echoDefault(text: string) {
      return `default: ${text}`;
    });
    const app = Fastify();
    await app.register(dispatchPlugin, { dispatch });
    expect(app.dispatch).toBe(dispatch.defaultDispatch());
    const res = await app.inject({
      method: 'POST',
      url: RUN_PATH,
      headers: { 'content-type': 'application/proto' },
      payload: Buffer.from(proto.RunRequest.encode({ function: 'echoDefault', input: encodeArgs(['hi']) })),
    });
    expect(res.statusCode).toBe(200);
    expect(decodeValue(proto.RunResponse.decode(res.rawPayload).exit?.result?.output)).toBe('default: hi');
    await app.close();

    const wrong = Fastify();
    await expect(wrong.register(dispatchPlugin, { dispatch: { default: 1 } } as never)).rejects.toThrow(
      /^app\.register\(dispatchPlugin, \{ dispatch \}\) needs the Dispatch instance whose functions it serves/,
    );
    await wrong.close();
  });

  it("keeps its raw-body parser to itself: the app's routes parse as before", async () => {
    const app = Fastify();
    await app.register(dispatchPlugin, { dispatch: newDispatch() });
    app.post('/app', async (req) => ({ body: req.body }));
    const json = await app.inject({ method: 'POST', url: '/app', headers: { 'content-type': 'application/json' }, payload: '{"a":1}' });
    expect(json.json()).toEqual({ body: { a: 1 } });
    // No parser for application/proto outside the plugin: Fastify's own 415.
    const protoRes = await app.inject({ method: 'POST', url: '/app', headers: { 'content-type': 'application/proto' }, payload: protoBody() });
    expect(protoRes.statusCode).toBe(415);
    const run = await app.inject({ method: 'POST', url: RUN_PATH, headers: { 'content-type': 'application/proto' }, payload: protoBody() });
    expect(run.statusCode).toBe(200);
    expect(proto.RunResponse.decode(run.rawPayload).status).toBe(Status.OK);
    await app.close();
  });

  it('applies bodyLimit to the Run route only, answering Connect JSON', async () => {
    const app = Fastify();
    await app.register(dispatchPlugin, { dispatch: newDispatch(), bodyLimit: 10 });
    app.post('/app', async (req) => ({ length: (req.body as { text: string }).text.length }));
    const run = await app.inject({ method: 'POST', url: RUN_PATH, headers: { 'content-type': 'application/proto' }, payload: protoBody() });
    expect(run.statusCode).toBe(413);
    expect(run.json()).toMatchObject({ code: 'resource_exhausted' });
    const own = await app.inject({ method: 'POST', url: '/app', payload: { text: 'x'.repeat(100) } });
    expect(own.json()).toEqual({ length: 100 });
    await app.close();
  });

  it('mounts under its prefix option, or under the prefix of an enclosing plugin', async () => {
    const app = Fastify();
    await app.register(dispatchPlugin, { dispatch: newDispatch(), prefix: '/dispatch' });
    await app.register(async (child) => child.register(dispatchPlugin, { dispatch: newDispatch() }), { prefix: '/api' });
    for (const url of [`/dispatch${RUN_PATH}`, `/api${RUN_PATH}`]) {
      const res = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/proto' }, payload: protoBody() });
      expect(res.statusCode, url).toBe(200);
    }
    expect((await app.inject({ method: 'POST', url: RUN_PATH, payload: protoBody() })).statusCode).toBe(404);
    await app.close();
  });

  it("waits on close for in-flight runs before the app's onClose hooks run", async () => {
    const dispatch = newDispatch();
    const events: string[] = [];
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    dispatch.function(async function slow() {
      started();
      await gate;
      events.push('run finished');
      return 'done';
    });
    // Observes when close() reaches the plugin's drain (its preClose hook).
    let draining!: () => void;
    const drainCalled = new Promise<void>((resolve) => {
      draining = resolve;
    });
    const drain = dispatch.drain.bind(dispatch);
    dispatch.drain = () => {
      draining();
      return drain();
    };
    const app = Fastify();
    await app.register(dispatchPlugin, { dispatch });
    app.addHook('onClose', async () => {
      events.push('app onClose');
    });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const response = fetch(`${url}${RUN_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/proto' },
      body: proto.RunRequest.encode({ function: 'slow', input: encodeArgs([]) }),
    });
    await running;
    const closed = app.close().then(() => events.push('closed'));
    // close() waits in the drain while the run is held: nothing after it has run.
    const finishedEarly = closed.then(() => Promise.reject(new Error('close() finished without draining the in-flight run')));
    await within(Promise.race([drainCalled, finishedEarly]), 10_000, "close() did not reach the plugin's drain");
    expect(events).toEqual([]);
    release();
    const res = await response;
    expect(res.status).toBe(200);
    expect(proto.RunResponse.decode(new Uint8Array(await res.arrayBuffer())).status).toBe(Status.OK);
    await within(closed, 10_000, `close() did not finish once the run was done (events: ${events.join(', ')})`);
    expect(events).toEqual(['run finished', 'app onClose', 'closed']);
  });
});
