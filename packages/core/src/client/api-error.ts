/**
 * The error of the Dispatch API client: a Connect error the scheduler
 * answered, or a failure to reach it.
 * @module
 */

/**
 * An error answered by the Dispatch API (a Connect error) or met while
 * reaching it. Its message says what happened and what to do.
 *
 * @example
 * ```ts
 * try {
 *   await client.get(id);
 * } catch (err) {
 *   if (err instanceof DispatchApiError && err.code === 'not_found') console.log(`no call ${id}`);
 *   else throw err;
 * }
 * ```
 */
export class DispatchApiError extends Error {
  override name = 'DispatchApiError';
  /**
   * The Connect code: `unauthenticated`, `invalid_argument`, `not_found`…,
   * `unavailable` when the API could not be reached, `deadline_exceeded`
   * when it did not answer in time.
   */
  readonly code: string;
  /** HTTP status, or 0 when no answer came. */
  readonly httpStatus: number;
  constructor(message: string, code: string, httpStatus: number, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.httpStatus = httpStatus;
  }
}

/**
 * Redacts an API key for messages: the first 3 characters are kept (like the
 * go SDK).
 * @example redactKey('dsk_secret'); // 'dsk*******'
 */
export function redactKey(key: string): string {
  return key.length <= 3 ? '***' : `${key.slice(0, 3)}${'*'.repeat(Math.min(8, key.length - 3))}`;
}
