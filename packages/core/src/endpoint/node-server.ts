/**
 * Serves the endpoint handler with `node:http` (the `@dispatch/core/node`
 * entry), and the body helpers the framework adapters share.
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseAddress } from '../api/config.js';
import type { Dispatch } from '../api/dispatch.js';
import { BodyBudgetTimeoutError } from './body-budget.js';
import { answerBeforeBody, connectError, type EndpointResponse } from './connect-error.js';
import { BodyTooLargeError, listeningAddress, readBody } from './read-body.js';

/**
 * The answer to a failed {@link readBody}: 413 for a body over the limit,
 * 503 for a wait past the body budget; `undefined` when the client went away
 * (nothing to answer).
 * @example
 * readBody(req, limit).catch((err) => { const r = bodyErrorResponse(err); r ? sendResponse(res, r) : res.destroy(); });
 */
export function bodyErrorResponse(err: unknown): EndpointResponse | undefined {
  if (err instanceof BodyTooLargeError) return connectError(413, 'resource_exhausted', err.message, { connection: 'close' });
  if (err instanceof BodyBudgetTimeoutError) return connectError(503, 'unavailable', err.message, { 'retry-after': '1' });
  return undefined;
}

/**
 * Sends an answer decided before the body was read ({@link Dispatch.precheck}),
 * closing the connection when a large body is on its way (see
 * {@link answerBeforeBody}): it is not read.
 * @example
 * const early = dispatch.precheck(head);
 * if (early) return refuseUnread(req, res, early);
 */
export function refuseUnread(req: IncomingMessage, res: ServerResponse, response: EndpointResponse): void {
  sendResponse(res, answerBeforeBody(req.headers, response));
}

/**
 * Writes an endpoint response to a `ServerResponse`.
 * @example `sendResponse(res, await dispatch.handler(request));`
 */
export function sendResponse(res: ServerResponse, response: EndpointResponse): void {
  const rest = response.rest;
  if (rest) {
    // A streamed answer: the first part goes now, chunked, and the rest starts only once it is written (a local
    // resume: whatever the parent's resume does, the run's own answer is out); each part goes as it comes.
    res.writeHead(response.status, response.headers);
    const more = () => void rest((part) => res.write(part)).then(() => res.end());
    if (response.body.length > 0) res.write(response.body, more);
    else {
      res.flushHeaders();
      more();
    }
    return;
  }
  res.writeHead(response.status, { ...response.headers, 'content-length': String(response.body.length) });
  res.end(response.body);
}

/**
 * A `node:http` request listener for the endpoint: `(req, res) => void`.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { nodeListener } from '@dispatch/core/node';
 * createServer(nodeListener(dispatch)).listen(8000);
 * ```
 */
export function nodeListener(dispatch: Dispatch): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const head = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, localAddress: listeningAddress(req) };
    const early = dispatch.precheck(head);
    if (early) return refuseUnread(req, res, early);
    readBody(req, dispatch.config.maxBodyBytes).then(
      async (body) => sendResponse(res, await dispatch.handler({ ...head, body, streaming: true })),
      (err: unknown) => {
        const answer = bodyErrorResponse(err);
        if (answer) sendResponse(res, answer);
        else res.destroy();
      },
    );
  };
}

/** A running endpoint server. */
export interface DispatchServer {
  /** The underlying `node:http` server. */
  readonly server: Server;
  /** `http://host:port` it listens on. */
  readonly url: string;
  /** Stops accepting connections, finishes in-flight runs, then closes. */
  close(): Promise<void>;
  /** Resolves once the server has closed. */
  readonly closed: Promise<void>;
}

/**
 * Starts a `node:http` server for the endpoint on `DISPATCH_ENDPOINT_ADDR`
 * (or the given host/port; port 0 picks a free one).
 * @example `const { url, close } = await startServer(dispatch, { port: 0 });`
 */
export async function startServer(
  dispatch: Dispatch,
  options: { port?: number; host?: string; signals?: boolean } = {},
): Promise<DispatchServer> {
  const addr = parseAddress(dispatch.config.endpointAddr);
  const host = options.host ?? addr.host;
  const port = options.port ?? addr.port;
  // Requests count as in flight until their response is written, so close()
  // never cuts off an answer that the handler has already produced.
  const listener = nodeListener(dispatch);
  let active = 0;
  let idle: (() => void) | undefined;
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    active++;
    res.once('close', () => {
      if (--active === 0) idle?.();
    });
    listener(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(`cannot listen on ${host}:${port}: the address is in use; stop the other process or set DISPATCH_ENDPOINT_ADDR to another host:port`)
          : err,
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  let closing: Promise<void> | undefined;
  const onSignal = () => {
    void close();
  };
  const close = () => {
    closing ??= (async () => {
      if (options.signals) {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await dispatch.drain();
      if (active > 0) await new Promise<void>((resolve) => (idle = resolve));
      server.closeAllConnections();
      await done;
      resolveClosed();
    })();
    return closing;
  };
  if (options.signals) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  return { server, url, close, closed };
}
