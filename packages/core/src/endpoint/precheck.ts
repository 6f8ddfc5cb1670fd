/**
 * What the endpoint decides before reading a request's body: route, method,
 * declared size, content type, and who may call — the signature headers
 * (presence, form, keyid, validity window, replay), or, without a
 * verification key, whether the endpoint listens beyond loopback. Adapters
 * call it first, so a request that will be refused costs no body read; the
 * handler calls it again, so an adapter that does not still gets the same
 * answers.
 * @module
 */
import { encodingOf, isRunBatch, RUN_BATCH_CONTENT_TYPE, RUN_PATH } from '../protocol/constants.js';
import { quoteExcerpt } from '../protocol/excerpt.js';
import type { KeyObject } from 'node:crypto';
import { ReplayCache } from '../signature/replay-cache.js';
import { SessionTable, unknownSessionMessage } from '../signature/session.js';
import { checkSignatureHeaders } from '../signature/signature.js';
import { connectError, type EndpointResponse } from './connect-error.js';
import type { EndpointApp } from './handler.js';

/**
 * A request before its body is read: what {@link precheckEndpointRequest}
 * looks at.
 * @example
 * const head: EndpointRequestHead = { method: req.method, url: req.url, headers: req.headers, localAddress: listeningAddress(req) };
 */
export interface EndpointRequestHead {
  /** HTTP method. */
  method: string;
  /** The path and query as received, mount prefix included (Express: `req.originalUrl`). */
  url: string;
  /** Header names in lowercase, as node:http gives them. */
  headers: Record<string, string | string[] | undefined>;
  /**
   * The address the endpoint listens on (`0.0.0.0` for every interface), or
   * else the local address the request arrived on. Without a verification
   * key, an endpoint beyond loopback refuses unsigned requests; when it is
   * not given, the endpoint is taken to be on loopback.
   */
  localAddress?: string | undefined;
}

/** The process's replay cache, for an {@link EndpointApp} that brings none. */
let sharedReplayCache: ReplayCache | undefined;

/**
 * The replay cache of an app: its own, else one shared by the process.
 * @example const cache = replayCacheOf(app);
 */
export function replayCacheOf(app: EndpointApp): ReplayCache {
  if (app.replayCache) return app.replayCache;
  sharedReplayCache ??= new ReplayCache();
  return sharedReplayCache;
}

/** The signature sessions opened under each verification key (a key replaced later starts with none). */
const sessionTables = new WeakMap<KeyObject, SessionTable>();

/**
 * The signature sessions of an app (`signature/session.ts`): one table per
 * verification key, or undefined when the app verifies no signatures or
 * turned sessions off (`signatureSessions: false`).
 * @example const sessions = sessionsOf(app); // undefined: Ed25519 only
 */
export function sessionsOf(app: EndpointApp): SessionTable | undefined {
  const key = app.verificationKey;
  if (!key || app.signatureSessions === false) return undefined;
  let table = sessionTables.get(key);
  if (!table) sessionTables.set(key, (table = new SessionTable()));
  return table;
}

/**
 * True for an address only this machine can reach: `127.0.0.0/8`, `::1`,
 * their IPv4-mapped forms, `localhost`, and a Unix socket path; false for
 * `0.0.0.0`, `::` and any other address.
 * @example isLoopbackAddress('127.0.0.1') // true
 */
export function isLoopbackAddress(address: string): boolean {
  const a = address.trim().toLowerCase().replace(/^\[|\]$/g, '');
  if (a === 'localhost' || a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  if (/^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a)) return true;
  return a.startsWith('/') || a.startsWith('\\\\'); // a Unix socket or a Windows pipe
}

/**
 * The answer to a request that is refused before its body is read, or
 * `null` to go on (read the body, then call the handler). In order: 404 for
 * another path, 405 for a method other than POST, 413 for a declared
 * `Content-Length` over `app.maxBodyBytes`, 415 for an unsupported content
 * type; then, with a verification key, 401/403 for missing or malformed
 * signature headers, a keyid other than `default`, a signature outside its
 * validity or one already used (403 `permission_denied`: the replay cache,
 * or a signature session's replay window); without a key,
 * 401 when the endpoint listens beyond loopback, unless the app opted out
 * (`verificationKey: false`, `DISPATCH_VERIFICATION_KEY=none`). Never throws.
 *
 * @example
 * ```ts
 * const early = precheckEndpointRequest(app, { method: req.method, url: req.url, headers: req.headers, localAddress: '0.0.0.0' });
 * if (early) return send(early);        // the body is never read
 * const body = await readBody(req, app.maxBodyBytes);
 * return send(await handleEndpointRequest(app, { method: req.method, url: req.url, headers: req.headers, body }));
 * ```
 */
export function precheckEndpointRequest(app: EndpointApp, head: EndpointRequestHead): EndpointResponse | null {
  const queryAt = head.url.indexOf('?');
  const path = queryAt < 0 ? head.url : head.url.slice(0, queryAt);
  if (!path.endsWith(RUN_PATH)) {
    return connectError(404, 'not_found', `no route ${quoteExcerpt(path, 200)}: the Dispatch endpoint serves POST ${RUN_PATH}`);
  }
  if (head.method.toUpperCase() !== 'POST') {
    return connectError(405, 'unimplemented', `method ${head.method} is not allowed: use POST`, { allow: 'POST' });
  }
  const limit = app.maxBodyBytes;
  const declared = Number(header(head.headers, 'content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    return connectError(413, 'resource_exhausted', `request body of ${declared} bytes is over the limit of ${limit} bytes`);
  }
  const contentType = header(head.headers, 'content-type');
  if (!encodingOf(contentType) && !isRunBatch(contentType)) {
    return connectError(
      415,
      'invalid_argument',
      `unsupported content type ${contentType === undefined ? 'undefined' : quoteExcerpt(contentType, 200)}: send application/proto (binary protobuf) or application/json (Connect JSON), or a batch (${RUN_BATCH_CONTENT_TYPE})`,
    );
  }

  if (app.verificationKey) {
    const result = checkSignatureHeaders({ headers: head.headers });
    if (!result.ok) return connectError(result.code === 'unauthenticated' ? 401 : 403, result.code, result.message);
    const { session, sequence } = result.signature;
    if (session !== undefined) {
      const sessions = sessionsOf(app);
      if (sessions?.key(session) === undefined) return connectError(401, 'unauthenticated', unknownSessionMessage(session, sessions !== undefined));
      // A session's requests are numbered: its replay window answers, not the replay cache.
      if (sessions.replayed(session, sequence as number)) return connectError(403, 'permission_denied', REPLAYED);
      return null;
    }
    if (replayCacheOf(app).has(result.signature.bytes)) return connectError(403, 'permission_denied', REPLAYED);
    return null;
  }
  if (app.acceptUnsigned || head.localAddress === undefined || isLoopbackAddress(head.localAddress)) return null;
  return connectError(
    401,
    'unauthenticated',
    `this endpoint listens on ${head.localAddress}, beyond loopback, and has no verification key, so it refuses every request: ` +
      "set DISPATCH_VERIFICATION_KEY to the scheduler's public key (`dispatch verification-key` prints it; `dispatch run` sets it), " +
      'or accept unsigned requests from anywhere on purpose with new Dispatch({ verificationKey: false }) or DISPATCH_VERIFICATION_KEY=none',
  );
}

/** The message of a signature seen before. */
export const REPLAYED =
  'signature already used: this endpoint accepted a request with the same signature before (a replayed request); ' +
  'a scheduler signs every request anew';

function header(headers: EndpointRequestHead['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}
