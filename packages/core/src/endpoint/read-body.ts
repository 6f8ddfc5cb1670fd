/**
 * Reading a request's body on `node:http` (and the frameworks built on it):
 * within the size limit, within the process's budget of bytes being read at
 * once, and what an adapter needs to know about the socket.
 * @module
 */
import type { IncomingMessage } from 'node:http';
import type { Server } from 'node:net';
import { type BodyBudget, bodyReadBudget } from './body-budget.js';

/** Thrown by {@link readBody} when the body is over the limit. */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
  constructor(readonly limit: number) {
    super(`request body is over the limit of ${limit} bytes`);
  }
}

/**
 * Reads a request body, refusing it as soon as it passes `limit` bytes
 * ({@link BodyTooLargeError}). It first reserves the body's size (its
 * `Content-Length`, else `limit`) in the process's {@link bodyReadBudget}
 * (or `options.budget`; `null`: none), waiting for room, so that many large
 * requests arriving together are read a few at a time; a wait past the
 * budget's `maxWaitMs` rejects with `BodyBudgetTimeoutError` (answer 503).
 * @example `const body = await readBody(req, 16_000_000);`
 */
export async function readBody(req: IncomingMessage, limit: number, options: { budget?: BodyBudget | null } = {}): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new BodyTooLargeError(limit);
  }
  const expected = Number.isFinite(declared) ? declared : undefined;
  const budget = options.budget === undefined ? bodyReadBudget : options.budget;
  if (!budget) return readAll(req, limit, expected);
  // Room now (nearly always): reserved without waiting, so without the listeners and the signal of a wait.
  const release = budget.tryAcquire(expected ?? limit) ?? (await reserveBody(req, limit, budget));
  try {
    return await readAll(req, limit, expected);
  } finally {
    release();
  }
}

/**
 * Reserves the size of `req`'s body (its `Content-Length`, else `limit`) in
 * the process's {@link bodyReadBudget} (or `budget`), waiting for room, for
 * an adapter whose framework reads the body itself (Fastify). The
 * reservation ends when the body has been read or the request is gone (or
 * when the returned function is called); it rejects with
 * `BodyBudgetTimeoutError` after the budget's `maxWaitMs`, or if the client
 * leaves while waiting.
 * @example
 * app.addHook('preParsing', async (req, _reply, payload) => { await reserveBody(req.raw, bodyLimit); return payload; });
 */
export async function reserveBody(req: IncomingMessage, limit: number, budget: BodyBudget = bodyReadBudget): Promise<() => void> {
  const declared = Number(req.headers['content-length']);
  const gone = new AbortController();
  const onClose = () => gone.abort(new Error('the client closed the connection before its request body was read'));
  req.once('close', onClose);
  let release: () => void;
  try {
    release = await budget.acquire(Number.isFinite(declared) ? declared : limit, gone.signal);
  } finally {
    req.off('close', onClose);
  }
  if (req.readableEnded || req.destroyed) release();
  else for (const event of ['end', 'close', 'error']) req.once(event, release);
  return release;
}

/** The body; with a declared length, read into one buffer of that size (no chunks held, no copy at the end). */
function readAll(req: IncomingMessage, limit: number, expected: number | undefined): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const whole = expected !== undefined && expected > 0 ? Buffer.allocUnsafe(expected) : undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const done = (err: Error | null, body?: Uint8Array) => {
      if (settled) return;
      settled = true;
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (err) reject(err);
      else resolve(body as Uint8Array);
    };
    const onData = (chunk: Buffer) => {
      if (size + chunk.length > limit || (whole && size + chunk.length > whole.length)) {
        chunks.length = 0;
        req.resume();
        done(new BodyTooLargeError(limit));
        return;
      }
      if (whole) chunk.copy(whole, size);
      else chunks.push(chunk);
      size += chunk.length;
    };
    const onEnd = () => {
      if (whole) done(null, size === whole.length ? whole : whole.subarray(0, size));
      else done(null, chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => done(err);
    const onClose = () => done(new Error('the client closed the connection before its request body was read'));
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
    if (req.readableEnded) onEnd();
  });
}

/**
 * The address the request's server listens on (`0.0.0.0` when it listens on
 * every interface), else the local address the request arrived on: what
 * `dispatch.precheck` needs to tell an endpoint on loopback from one
 * reachable from elsewhere.
 * @example dispatch.precheck({ method, url, headers, localAddress: listeningAddress(req) })
 */
export function listeningAddress(req: Pick<IncomingMessage, 'socket'>): string | undefined {
  const socket = req.socket as (IncomingMessage['socket'] & { server?: Pick<Server, 'address'> }) | undefined;
  if (!socket) return undefined;
  // Asked once per connection (a system call each time), not per request of a keep-alive connection.
  if (addresses.has(socket)) return addresses.get(socket);
  const address = socket.server?.address?.();
  const found = typeof address === 'string' ? address : (address?.address ?? socket.localAddress ?? undefined); // a string: a Unix socket or a pipe
  addresses.set(socket, found);
  return found;
}

/** {@link listeningAddress} per connection: a socket's server and local address do not change while it lives. */
const addresses = new WeakMap<object, string | undefined>();
