/**
 * The Fastify plugin: turns a Fastify request into the core's
 * `EndpointRequest` and its answer back into a reply. Nothing else.
 * @module
 */
import type { Dispatch, DispatchOrModule } from '@dispatch/core';
import { BodyBudgetTimeoutError, listeningAddress, reserveBody, sendResponse } from '@dispatch/core/node';
import { answerBeforeBody, connectError, dispatchInstance, type EndpointResponse, RUN_PATH } from '@dispatch/core/protocol';
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyInstance {
    /** The Dispatch instance registered with `@dispatch/fastify`. */
    dispatch: Dispatch;
  }
}

/**
 * Options of {@link dispatchPlugin}.
 * @example
 * ```ts
 * const options: DispatchPluginOptions = { dispatch, bodyLimit: 4_000_000, prefix: '/dispatch' };
 * await app.register(dispatchPlugin, options);
 * ```
 */
export interface DispatchPluginOptions {
  /**
   * The Dispatch instance whose functions the endpoint runs — a `new
   * Dispatch()`, or the module after `import * as dispatch from
   * '@dispatch/core'` (its default instance); also decorates the app as
   * `app.dispatch`. Anything else fails the registration with a message
   * saying what to pass.
   * @example app.register(dispatchPlugin, { dispatch: new Dispatch() })
   */
  dispatch: DispatchOrModule;
  /**
   * Largest Run request body, in bytes (Fastify's `bodyLimit` for this
   * route only). Default: the instance's `maxBodyBytes` (16,000,000 unless
   * configured).
   * @example app.register(dispatchPlugin, { dispatch, bodyLimit: 4_000_000 })
   */
  bodyLimit?: number;
  /**
   * Path the Run route is mounted under (the plugin wraps itself with
   * fastify-plugin, so Fastify's own `prefix` option does not apply to it;
   * registering it inside a prefixed plugin works too).
   * @example app.register(dispatchPlugin, { dispatch, prefix: '/dispatch' })
   */
  prefix?: string;
}

const send = (reply: FastifyReply, r: EndpointResponse) => {
  if (r.rest) {
    // A streamed answer (local resume): written on the raw response, its first part before the rest starts.
    reply.hijack();
    sendResponse(reply.raw, r);
    return reply;
  }
  return reply.code(r.status).headers(r.headers).send(Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength));
};

const headOf = (req: FastifyRequest) => ({ method: req.method, url: req.url, headers: req.headers, localAddress: listeningAddress(req.raw) });

/**
 * The encapsulated part: the checks before the body (`dispatch.precheck`,
 * then a place in the process's body budget), a raw-body parser for every
 * content type and the route, so none of them leaks into the app (its JSON
 * parser stays as it was).
 */
const endpoint: FastifyPluginAsync<{ dispatch: Dispatch; bodyLimit: number }> = async (app, { dispatch, bodyLimit }) => {
  app.addHook('onRequest', async (req, reply) => {
    const early = dispatch.precheck(headOf(req)); // a refused request's body is never read
    if (early) return send(reply, answerBeforeBody(req.headers, early));
  });
  app.addHook('preParsing', async (req, _reply, payload) => {
    await reserveBody(req.raw, bodyLimit); // a place in the process's body budget, until the body is read
    return payload;
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err instanceof BodyBudgetTimeoutError) return send(reply.header('retry-after', '1'), connectError(503, 'unavailable', err.message));
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    const code = status === 413 ? 'resource_exhausted' : status < 500 ? 'invalid_argument' : 'internal';
    return send(reply, connectError(status, code, status < 500 ? err.message : 'internal error; see the endpoint logs'));
  });
  app.all(RUN_PATH, { bodyLimit }, async (req, reply) => {
    const body = Buffer.isBuffer(req.body) ? req.body : new Uint8Array(0);
    return send(reply, await dispatch.handler({ ...headOf(req), body, streaming: true }));
  });
};

/**
 * Fastify plugin serving the Dispatch endpoint (`POST
 * /dispatch.sdk.v1.FunctionService/Run`). It decorates the app with
 * `app.dispatch`, reads the Run route's body as raw bytes (signatures cover
 * them) in an encapsulated context, answers errors as Connect JSON, and
 * waits for in-flight runs when the app closes.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { Dispatch } from '@dispatch/core';
 * import { dispatchPlugin } from '@dispatch/fastify';
 *
 * const app = Fastify();
 * await app.register(dispatchPlugin, { dispatch: new Dispatch() });
 * app.post('/notify', async () => ({ id: await notifyAll.dispatch() }));
 * await app.listen({ port: 8000 });
 * ```
 */
export const dispatchPlugin = fp<DispatchPluginOptions>(
  async (app, options) => {
    const dispatch = dispatchInstance(options.dispatch, 'app.register(dispatchPlugin, { dispatch })');
    const { bodyLimit, prefix } = options;
    app.decorate('dispatch', dispatch);
    app.addHook('preClose', () => dispatch.drain());
    // Once the app is ready (app.ready(), app.listen()): the functions with a `schedule` are declared to the scheduler.
    app.addHook('onReady', () => dispatch.startSchedules('dispatchPlugin'));
    await app.register(endpoint, { dispatch, bodyLimit: bodyLimit ?? dispatch.config.maxBodyBytes, prefix: prefix ?? '' });
  },
  { name: '@dispatch/fastify', fastify: '5.x' },
);
