/**
 * The Express middleware: turns an Express request into the core's
 * `EndpointRequest` and its answer back into a response. Nothing else.
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatch, DispatchOrModule } from '@dispatch/core';
import { bodyErrorResponse, listeningAddress, readBody, refuseUnread, sendResponse } from '@dispatch/core/node';
import { connectError, dispatchInstance, RUN_PATH } from '@dispatch/core/protocol';

/**
 * Options of {@link dispatchMiddleware}.
 * @example
 * ```ts
 * const options: DispatchMiddlewareOptions = { bodyLimit: 4_000_000 };
 * app.use(dispatchMiddleware(dispatch, options));
 * ```
 */
export interface DispatchMiddlewareOptions {
  /**
   * Largest Run request body read, in bytes; larger ones are answered 413
   * as soon as they pass it. Default: the instance's `maxBodyBytes`
   * (16,000,000 unless configured).
   * @example dispatchMiddleware(dispatch, { bodyLimit: 4_000_000 })
   */
  bodyLimit?: number;
}

/**
 * The parts of an Express request the middleware reads: a plain
 * `IncomingMessage` plus what Express and body parsers add. Typed
 * structurally so that Express 4 and 5 (and their type packages) both fit.
 * @example
 * ```ts
 * // A parser's verify hook that keeps the raw bytes for the middleware:
 * app.use(express.json({ verify: (req: ExpressLikeRequest, _res, buf) => { req.rawBody = buf; } }));
 * ```
 */
export interface ExpressLikeRequest extends IncomingMessage {
  /** Path and query as received, mount prefix included (Express sets it). */
  originalUrl?: string;
  /** Set by body parsers: a `Buffer` (express.raw) is used as is. */
  body?: unknown;
  /** Raw bytes kept by a parser's `verify` hook (NestJS `rawBody: true`). */
  rawBody?: unknown;
  /** body-parser's mark that it consumed the stream. */
  _body?: boolean;
}

/**
 * Express middleware serving the Dispatch endpoint (`POST
 * /dispatch.sdk.v1.FunctionService/Run`, relative to where it is mounted).
 * Other requests go on to the app's own routes untouched.
 *
 * It checks what it can before reading the body (`dispatch.precheck`: the
 * route, size, content type, signature headers; a refused request's body is
 * never read), then reads the raw body of the Run route itself, within the
 * process's body budget, because signatures cover the exact bytes: mount it **before** body parsers such as `express.json()`
 * (or exclude the route from them). A `Buffer` left in `req.body` by
 * `express.raw()` is used as is; a body another parser turned into an
 * object is answered 500 with a message saying how to fix the app. The
 * signed path is `req.originalUrl`, so mount prefixes work.
 *
 * `dispatch` is a `new Dispatch()`, or the module after `import * as
 * dispatch from '@dispatch/core'` (its default instance); anything else
 * throws a `TypeError` here, at mount time.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { Dispatch } from '@dispatch/core';
 * import { dispatchMiddleware } from '@dispatch/express';
 *
 * const dispatch = new Dispatch();
 * const app = express();
 * app.use(dispatchMiddleware(dispatch));            // or app.use('/dispatch', dispatchMiddleware(dispatch))
 * app.use(express.json());                          // the app's own parsers come after
 * app.post('/buy', async (req, res) => res.json({ id: await checkout.dispatch(req.body.user) }));
 * app.listen(8000);
 * ```
 */
export function dispatchMiddleware(
  dispatchOrModule: DispatchOrModule,
  options: DispatchMiddlewareOptions = {},
): (req: ExpressLikeRequest, res: ServerResponse, next: (err?: unknown) => void) => void {
  const dispatch = dispatchInstance(dispatchOrModule, 'dispatchMiddleware()');
  // Express has no start event: once the app's module has run (its functions registered), the ones with a
  // `schedule` are declared to the scheduler; a failure is logged (the app cannot be stopped from here).
  setImmediate(() => {
    dispatch.startSchedules('dispatchMiddleware()').catch((err: unknown) => {
      dispatch.logger.error(`[dispatch] dispatchMiddleware(): cannot declare the schedules: ${(err as Error).message}`);
    });
  });
  return (req, res, next) => {
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    if ((queryAt < 0 ? url : url.slice(0, queryAt)) !== RUN_PATH) return next();
    const head = { method: req.method ?? 'GET', url: req.originalUrl ?? url, headers: req.headers, localAddress: listeningAddress(req) };
    const early = dispatch.precheck(head); // before the body is read
    if (early) return refuseUnread(req, res, early);
    rawBody(req, options.bodyLimit ?? dispatch.config.maxBodyBytes)
      .then(async (body) => {
        if (typeof body === 'string') return sendResponse(res, connectError(500, 'internal', body));
        sendResponse(res, await dispatch.handler({ ...head, body, streaming: true }));
      })
      .catch((err: unknown) => {
        const answer = bodyErrorResponse(err);
        if (answer) sendResponse(res, answer);
        else next(err);
      });
  };
}

/** The exact body bytes, or a message explaining why they are gone. */
async function rawBody(req: ExpressLikeRequest, limit: number): Promise<Uint8Array | string> {
  if (Buffer.isBuffer(req.body)) return req.body;
  if (Buffer.isBuffer(req.rawBody)) return req.rawBody;
  if (req._body || req.readableEnded) {
    return (
      'the Dispatch endpoint needs the raw request body, but another middleware already parsed it ' +
      `(req.body is ${req.body === null ? 'null' : typeof req.body}): mount dispatchMiddleware() before body parsers ` +
      'such as express.json(), or exclude its route from them, or keep the raw bytes in req.rawBody (NestJS: create the app ' +
      'with { rawBody: true }); signatures cover the exact bytes, so a parsed body cannot be used'
    );
  }
  return readBody(req, limit);
}
