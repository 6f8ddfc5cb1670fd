/**
 * Statuses: what a function's outcome means for retries and concurrency
 * (PROTOCOL.md 1, 5.6, 5.7 and 8.10–8.13).
 * @module
 */

/**
 * The status of a function call. It tells the scheduler whether to retry the
 * call and whether to raise or lower the concurrency it runs the function at.
 *
 * @example
 * ```ts
 * import * as dispatch from '@dispatch/core';
 * class Maintenance extends Error {}
 * dispatch.registerErrorType(Maintenance, dispatch.Status.TEMPORARY_ERROR);
 * ```
 */
export enum Status {
  /** A generic default status; treated as OK without an error, PERMANENT_ERROR with one. */
  UNSPECIFIED = 0,
  /** The function completed successfully. Not retried; concurrency increases. */
  OK = 1,
  /** The operation took too long. Retried; concurrency decreases. */
  TIMEOUT = 2,
  /** The function was throttled. Retried with a longer backoff; concurrency decreases. */
  THROTTLED = 3,
  /** The function was given invalid input. Not retried. */
  INVALID_ARGUMENT = 4,
  /** Another part of the system answered something unexpected. Not retried. */
  INVALID_RESPONSE = 5,
  /** A temporary error that may resolve soon. Retried; concurrency decreases. */
  TEMPORARY_ERROR = 6,
  /** A permanent error. Never retried. */
  PERMANENT_ERROR = 7,
  /** The function's state cannot be used by this code. Retried with backoff. */
  INCOMPATIBLE_STATE = 8,
  /** A DNS error. Retried; concurrency decreases. */
  DNS_ERROR = 9,
  /** A TCP error (refused, reset...). Retried; concurrency decreases. */
  TCP_ERROR = 10,
  /** A TLS error. Retried; concurrency decreases. */
  TLS_ERROR = 11,
  /** An HTTP error. Retried; concurrency decreases. */
  HTTP_ERROR = 12,
  /** An operation was attempted without authentication. Not retried. */
  UNAUTHENTICATED = 13,
  /** An operation was attempted without permission. Not retried. */
  PERMISSION_DENIED = 14,
  /** A resource does not exist. Not retried. */
  NOT_FOUND = 15,
}

const RETRYABLE: ReadonlySet<Status> = new Set([
  Status.TIMEOUT,
  Status.THROTTLED,
  Status.TEMPORARY_ERROR,
  Status.INCOMPATIBLE_STATE,
  Status.DNS_ERROR,
  Status.TCP_ERROR,
  Status.TLS_ERROR,
  Status.HTTP_ERROR,
]);

const DECREASE: ReadonlySet<Status> = new Set([
  Status.TIMEOUT,
  Status.THROTTLED,
  Status.TEMPORARY_ERROR,
  Status.DNS_ERROR,
  Status.TCP_ERROR,
  Status.TLS_ERROR,
  Status.HTTP_ERROR,
]);

/**
 * All statuses, in protocol order.
 * @example ALL_STATUSES.filter(isRetryable).map(statusName) // ['TIMEOUT', 'THROTTLED', ...]
 */
export const ALL_STATUSES: readonly Status[] = Object.freeze(
  Object.values(Status).filter((v): v is Status => typeof v === 'number'),
);

/**
 * `true` when the scheduler retries a call that ended with this status (PROTOCOL.md 8.10).
 * @example isRetryable(Status.TEMPORARY_ERROR) // true; isRetryable(Status.PERMANENT_ERROR) // false
 */
export function isRetryable(status: Status): boolean {
  return RETRYABLE.has(status);
}

/**
 * How a status moves the adaptive concurrency limit (PROTOCOL.md 8.11):
 * `'decrease'` for failures that suggest overload, `'increase'` otherwise.
 * INCOMPATIBLE_STATE says nothing about load: `'none'`.
 * @example concurrencyEffect(Status.THROTTLED) // 'decrease'
 */
export function concurrencyEffect(status: Status): 'increase' | 'decrease' | 'none' {
  if (DECREASE.has(status)) return 'decrease';
  if (status === Status.INCOMPATIBLE_STATE) return 'none';
  return 'increase';
}

/**
 * The name of a status (`'TEMPORARY_ERROR'`), or `'STATUS_<n>'` for an unknown number.
 * @example statusName(6) // 'TEMPORARY_ERROR'
 */
export function statusName(status: number): string {
  return Status[status] ?? `STATUS_${status}`;
}

/**
 * Parses a status name with or without the `STATUS_` prefix; `undefined` if unknown.
 * @example parseStatus('status_ok') // Status.OK
 */
export function parseStatus(name: string): Status | undefined {
  const key = name.toUpperCase().replace(/^STATUS_/, '');
  const value = (Status as unknown as Record<string, unknown>)[key];
  return typeof value === 'number' ? (value as Status) : undefined;
}

/**
 * The status of an HTTP response code (PROTOCOL.md 5.6, identical in py and go).
 * @example statusFromHttpCode(503) // Status.TEMPORARY_ERROR
 */
export function statusFromHttpCode(code: number): Status {
  switch (code) {
    case 400:
      return Status.INVALID_ARGUMENT;
    case 401:
      return Status.UNAUTHENTICATED;
    case 403:
      return Status.PERMISSION_DENIED;
    case 404:
      return Status.NOT_FOUND;
    case 408:
      return Status.TIMEOUT;
    case 429:
      return Status.THROTTLED;
    case 501:
      return Status.PERMANENT_ERROR;
  }
  if (code >= 200 && code < 300) return Status.OK;
  if (code >= 500 && code < 600) return Status.TEMPORARY_ERROR;
  if (code >= 100 && code < 500) return Status.PERMANENT_ERROR;
  return Status.UNSPECIFIED;
}
