/**
 * What a failed request to an endpoint says: its status (PROTOCOL.md 8.12)
 * and whether it says something about the endpoint's process. Shared by
 * the HTTP clients of http-transport.ts and lean-http.ts.
 * @module
 */
import { Status } from '@dispatch/core/protocol';

/**
 * How a connection failed, when it says something about the endpoint's
 * process: `refused` (nothing listens: the app is down or not yet up) or
 * `dropped` (the connection was closed while the request was in flight,
 * before a whole response: the app's process most likely died).
 * @example
 * if (reply.kind === 'transport' && reply.connection === 'refused') circuits.refused(endpoint, reply.message);
 */
export type ConnectionFailure = 'refused' | 'dropped';

/**
 * What a network error says about the endpoint's process: see
 * {@link ConnectionFailure}; undefined for anything else (DNS, TLS,
 * timeouts, unreachable hosts).
 * @example
 * connectionFailure(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })); // 'dropped'
 */
export function connectionFailure(error: unknown): ConnectionFailure | undefined {
  const code = String((error as { code?: unknown })?.code ?? '');
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE') return 'dropped';
  if (/socket hang up|aborted/i.test(String((error as { message?: unknown })?.message ?? ''))) return 'dropped';
  return undefined;
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_OSSL_)/;

/**
 * Maps a Node.js network error to a status: refused/reset/unreachable →
 * TCP_ERROR, name resolution → DNS_ERROR, TLS and certificates → TLS_ERROR,
 * timeouts → TIMEOUT, anything else → TCP_ERROR.
 * @example
 * transportStatus(Object.assign(new Error('x'), { code: 'ENOTFOUND' })); // Status.DNS_ERROR
 */
export function transportStatus(error: unknown): Status {
  const code = String((error as { code?: unknown })?.code ?? '');
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL' || code === 'EAI_NONAME') return Status.DNS_ERROR;
  if (TLS_CODES.test(code)) return Status.TLS_ERROR;
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return Status.TIMEOUT;
  return Status.TCP_ERROR;
}

