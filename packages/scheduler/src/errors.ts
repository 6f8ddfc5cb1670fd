/**
 * Errors of the scheduler API, with their Connect code.
 * @module
 */

/**
 * Connect error codes used by the API.
 * @example
 * const code: ConnectCode = 'not_found';
 */
export type ConnectCode =
  | 'invalid_argument'
  | 'unauthenticated'
  | 'permission_denied'
  | 'not_found'
  | 'resource_exhausted'
  | 'failed_precondition'
  | 'unimplemented'
  | 'unavailable'
  | 'internal';

const HTTP_STATUS: Record<ConnectCode, number> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  resource_exhausted: 429,
  failed_precondition: 400,
  unimplemented: 501,
  unavailable: 503,
  internal: 500,
};

/**
 * An API error: answered as Connect JSON `{"code","message"}` with the
 * code's HTTP status (or `httpStatus` when given).
 * @example
 * throw new SchedulerError('not_found', `no call with dispatch ID ${JSON.stringify(id)}`);
 */
export class SchedulerError extends Error {
  override readonly name = 'SchedulerError';
  readonly httpStatus: number;

  constructor(
    readonly code: ConnectCode,
    message: string,
    httpStatus?: number,
  ) {
    super(message);
    this.httpStatus = httpStatus ?? HTTP_STATUS[code];
  }
}
