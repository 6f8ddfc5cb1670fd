/**
 * Serves the endpoint handler with `node:http` (the `@dispatch/core/node`
 * entry), and the body helpers the framework adapters share.
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseAddress } from '../api/config.js';
import type { Dispatch } from '../api/dispatch.js';
import { connectError, type EndpointResponse } from './handler.js';

/** Thrown by {@link readBody} when the body is over the limit. */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
  constructor(readonly limit: number) {
    super(`request body is over the limit of ${limit} bytes`);
  }
}

/**
 * Reads a request body, refusing it as soon as it passes `limit` bytes.
 * @example `const body = await readBody(req, 16_000_000);`
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(new BodyTooLargeError(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

/**
 * Writes an endpoint response to a `ServerResponse`.
 * @example `sendResponse(res, await dispatch.handler(request));`
 */
export function sendResponse(res: ServerResponse, response: EndpointResponse): void {
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
    const limit = dispatch.config.maxBodyBytes;
    readBody(req, limit).then(
      async (body) => {
        const response = await dispatch.handler({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body });
        sendResponse(res, response);
      },
      (err: unknown) => {
        if (err instanceof BodyTooLargeError) {
          sendResponse(res, connectError(413, 'resource_exhausted', err.message, { connection: 'close' }));
        } else {
          res.destroy();
        }
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
