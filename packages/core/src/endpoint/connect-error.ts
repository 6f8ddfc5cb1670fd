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
  /**
   * The rest of a streamed answer (only when the request said
   * `EndpointRequest.streaming`): the adapter sends the headers without a
   * content length and `body` (when not empty) at once; once that is
   * written it calls `rest(write)`, sends each part `write` is given as it
   * comes, and ends the answer when the promise settles (it never rejects).
   * `sendResponse` of `@dispatch/core/node` does all of it.
   * @example
   * res.write(response.body, () => response.rest?.((part) => res.write(part)).then(() => res.end()));
   */
  rest?: (write: (part: Uint8Array) => void) => Promise<void>;
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

/**
 * Bodies up to this size that follow a refused request are read and thrown
 * away, so the connection stays usable (and the client surely gets the
 * answer); a larger or unsized one makes the server close the connection
 * instead of reading it: 64 KiB.
 * @example if (declared > DRAIN_UNREAD_BODY_BYTES) close();
 */
export const DRAIN_UNREAD_BODY_BYTES = 64 * 1024;

/**
 * An answer sent before the request's body was read, with `connection:
 * close` when a body of more than {@link DRAIN_UNREAD_BODY_BYTES} (or of
 * unknown size) is on its way: the server then stops reading instead of
 * taking it in.
 * @example
 * sendResponse(res, answerBeforeBody(req.headers, early));
 */
export function answerBeforeBody(headers: Record<string, string | string[] | undefined>, response: EndpointResponse): EndpointResponse {
  const declared = Number(headers['content-length'] ?? 0);
  const large = headers['transfer-encoding'] !== undefined || !Number.isFinite(declared) || declared > DRAIN_UNREAD_BODY_BYTES;
  return large ? { ...response, headers: { ...response.headers, connection: 'close' } } : response;
}
