/**
 * Validation of calls (PROTOCOL.md 1): the rules protovalidate enforces on
 * `DispatchRequest`, also applied to the calls of a Poll.
 * @module
 */
import { proto, quoteExcerpt } from '@dispatch/core/protocol';
import { limitsOfCall } from '../store/limits.js';

/**
 * The protocol's function name pattern.
 * @example
 * FUNCTION_NAME_PATTERN.test('send_email'); // true
 */
export const FUNCTION_NAME_PATTERN = /^[a-zA-Z_][a-zA-Z0-9_<>.]*$/;

const SCHEMES = ['http://', 'https://', 'bridge://', 'arn:aws:lambda'];

/** Where a call is, in messages. */
function at(index: number): string {
  return `calls[${index}]`;
}

/** Endpoints known to parse (a Poll of 10,000 calls names one endpoint 10,000 times); bounded. */
const parsed = new Set<string>();

function validUrl(endpoint: string): boolean {
  if (parsed.has(endpoint)) return true;
  if (!URL.canParse(endpoint)) return false;
  if (parsed.size >= 256) parsed.clear();
  parsed.add(endpoint);
  return true;
}

/**
 * Why a call is invalid, or null when it is valid. `index` names the call in
 * the message.
 * @example
 * const problem = validateCall({ function: 'bad-name', endpoint: 'http://x' }, 0);
 * // 'calls[0].function "bad-name" does not match ^[a-zA-Z_][a-zA-Z0-9_<>.]*$ ...'
 */
export function validateCall(call: proto.ICall, index: number, options: { endpointRequired: boolean }): string | null {
  const fn = call.function ?? '';
  if (fn === '') return `${at(index)}.function is required`;
  if (!FUNCTION_NAME_PATTERN.test(fn)) {
    return `${at(index)}.function ${quoteExcerpt(fn, 200)} does not match ${FUNCTION_NAME_PATTERN.source} (letters, digits, _, <, > and . only, not starting with a digit)`;
  }
  const endpoint = call.endpoint ?? '';
  if (endpoint === '') {
    if (options.endpointRequired) return `${at(index)}.endpoint is required (the URL of the app serving ${fn})`;
  } else {
    if (!SCHEMES.some((s) => endpoint.startsWith(s))) {
      return `${at(index)}.endpoint ${quoteExcerpt(endpoint, 200)} must start with http://, https://, bridge:// or arn:aws:lambda`;
    }
    if (endpoint.startsWith('http') && !validUrl(endpoint)) {
      return `${at(index)}.endpoint ${quoteExcerpt(endpoint, 200)} is not a valid URL`;
    }
  }
  if (call.expiration) {
    const seconds = Number(proto.toBigInt(call.expiration.seconds ?? 0));
    const nanos = call.expiration.nanos ?? 0;
    if (seconds < 0 || nanos < 0) return `${at(index)}.expiration must be ≥ 0, got ${seconds}s ${nanos}ns`;
  }
  if (call.delay) {
    const seconds = Number(proto.toBigInt(call.delay.seconds ?? 0));
    const nanos = call.delay.nanos ?? 0;
    if (seconds < 0 || nanos < 0) return `${at(index)}.delay must be ≥ 0, got ${seconds}s ${nanos}ns`;
    if (seconds > 366 * 86_400) return `${at(index)}.delay is ${seconds}s, over the limit of one year (366 days): schedule the call closer to its time`;
  }
  try {
    limitsOfCall(call.limits);
  } catch (err) {
    return `${at(index)}.${(err as Error).message}`;
  }
  return null;
}
