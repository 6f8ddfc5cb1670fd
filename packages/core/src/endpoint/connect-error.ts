/**
 * The answer an endpoint hands to its adapter, and Connect errors
 * (`{"code","message"}` as JSON, PROTOCOL.md 8.2).
 * @module
 */

/** The answer for the adapter to send. */
export interface EndpointResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

const encoder = new TextEncoder();

/**
 * A Connect error response: `{"code","message"}` as JSON.
 * @example
 * ```ts
 * return connectError(404, 'not_found', `no route ${JSON.stringify(path)}`);
 * ```
 */
export function connectError(status: number, code: string, message: string, extra: Record<string, string> = {}): EndpointResponse {
  return {
    status,
    headers: { 'content-type': 'application/json', ...extra },
    body: encoder.encode(JSON.stringify({ code, message })),
  };
}
