/**
 * Errors that users throw to tell Dispatch what a failure means
 * (PROTOCOL.md 5.6 and 8.20).
 *
 * One base class, {@link DispatchError}, carries a {@link Status} and a stable
 * snake_case `code`; one subclass per failing status says what the user means
 * (`TemporaryError`: retry; `PermanentError`: never retry; ...).
 *
 * `name`, `status` and `code` live on each class's prototype (non-enumerable),
 * so an error rebuilt by `serde.ts` with `Object.create(cls.prototype)` has
 * them without running a constructor, and the error's own enumerable fields
 * stay exactly the fields the user set. A user subclass gets its own class
 * name as `name` automatically (`class Maintenance extends TemporaryError {}`
 * has `name === 'Maintenance'`), so it can be registered and rebuilt by name.
 *
 * An error decoded from the wire may also carry the status it had on the
 * other side, under the {@link errorStatusSymbol} symbol (see
 * {@link getCarriedStatus}); it is not an enumerable `status` field, so it
 * never collides with a user's own `status` property (an HTTP code, say).
 * @module
 */
import { Status, statusName } from './status.js';

/**
 * The symbol under which a decoded error carries the status it had where it
 * was thrown. Registered with `Symbol.for`, so copies of this package loaded
 * twice (ESM and CommonJS) agree on it.
 *
 * @example
 * ```ts
 * import { errorStatusSymbol, Status } from '@dispatch/core';
 * const err = Object.assign(new Error('remote'), { [errorStatusSymbol]: Status.THROTTLED });
 * ```
 */
export const errorStatusSymbol: unique symbol = Symbol.for('@dispatch/status') as never;

/**
 * Brand set on `DispatchError.prototype`, so that an SDK error created by
 * another copy of this package (ESM and CommonJS side by side) is still
 * recognised where `instanceof` fails.
 *
 * @example
 * ```ts
 * import { dispatchErrorBrand, TemporaryError } from '@dispatch/core';
 * (new TemporaryError() as unknown as Record<symbol, unknown>)[dispatchErrorBrand]; // true
 * ```
 */
export const dispatchErrorBrand: unique symbol = Symbol.for('@dispatch/error') as never;

const STATUS_VALUES: ReadonlySet<number> = new Set(
  Object.values(Status).filter((v): v is number => typeof v === 'number'),
);

/**
 * `true` when `value` is one of the numbers of the {@link Status} enum.
 *
 * @example
 * ```ts
 * isStatus(Status.OK); // true
 * isStatus(42);        // false
 * ```
 */
export function isStatus(value: unknown): value is Status {
  return typeof value === 'number' && STATUS_VALUES.has(value);
}

/**
 * Options of the {@link DispatchError} constructors.
 *
 * @example
 * ```ts
 * new TemporaryError('database unavailable', { cause: err });
 * ```
 */
export interface DispatchErrorOptions {
  /** The error that caused this one (standard `Error.cause`). */
  cause?: unknown;
}

/**
 * Options of the base {@link DispatchError} constructor, which alone lets the
 * status be chosen.
 *
 * @example
 * ```ts
 * new DispatchError('upstream answered 502', { status: Status.HTTP_ERROR });
 * ```
 */
export interface DispatchBaseErrorOptions extends DispatchErrorOptions {
  /** The status this error maps to (default TEMPORARY_ERROR, as for any unknown error). */
  status?: Status;
}

function defineHidden(target: object, key: PropertyKey, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: false, configurable: true });
}

/** Only the `cause` of constructor options (present only when given, even as `undefined`). */
function causeOnly(options: DispatchErrorOptions | undefined): { cause?: unknown } | undefined {
  return options && 'cause' in options ? { cause: options.cause } : undefined;
}

/** The code of a status: its name in snake_case (`'temporary_error'`). */
function codeOf(status: Status): string {
  return statusName(status).toLowerCase();
}

/** SDK classes, by the exact name they should report (set below, minification-proof). */
const SDK_NAMES = new Map<object, string>();

/**
 * The base of every error the SDK defines. It carries the {@link Status} the
 * failure maps to and a stable snake_case `code` derived from it. Throw a
 * subclass (`TemporaryError`, `PermanentError`, ...) to say what you mean, or
 * this class with an explicit `status`.
 *
 * @example
 * ```ts
 * import { DispatchError, Status } from '@dispatch/core';
 * throw new DispatchError('payment provider answered 502', { status: Status.HTTP_ERROR });
 * ```
 */
export class DispatchError extends Error {
  /** The status this error maps to (non-enumerable; defined on the class prototype). */
  declare readonly status: Status;
  /** Stable snake_case code of {@link status}, e.g. `'temporary_error'`. */
  declare readonly code: string;

  constructor(message?: string, options?: DispatchBaseErrorOptions) {
    super(message ?? '', causeOnly(options));
    const status = options?.status;
    if (status !== undefined) {
      if (!isStatus(status)) {
        throw new TypeError(`DispatchError: status ${String(status)} is not a Status; pass one of Status.*`);
      }
      defineHidden(this, 'status', status);
      defineHidden(this, 'code', codeOf(status));
    }
    // User subclasses report their own class name; SDK classes keep the
    // literal name set on their prototype (safe from minifiers).
    if (!SDK_NAMES.has(new.target) && new.target.name) defineHidden(this, 'name', new.target.name);
  }
}

/**
 * Declares an SDK class: literal `name`, `status` and `code` on its prototype.
 * The returned class is the same class (for chaining in declarations).
 */
function sdkClass<C extends abstract new (...args: never[]) => Error>(cls: C, name: string, status: Status): C {
  SDK_NAMES.set(cls, name);
  defineHidden(cls.prototype, 'name', name);
  defineHidden(cls.prototype, 'status', status);
  defineHidden(cls.prototype, 'code', codeOf(status));
  return cls;
}

sdkClass(DispatchError, 'DispatchError', Status.TEMPORARY_ERROR);
defineHidden(DispatchError.prototype, dispatchErrorBrand, true);

/**
 * A temporary failure: the call is retried (TEMPORARY_ERROR).
 *
 * @example
 * ```ts
 * if (await isMaintenanceOn()) throw new TemporaryError('the app is in maintenance mode');
 * ```
 */
export class TemporaryError extends DispatchError {
  constructor(message?: string, options?: DispatchErrorOptions) {
    super(message, causeOnly(options));
  }
}
sdkClass(TemporaryError, 'TemporaryError', Status.TEMPORARY_ERROR);

/**
 * A permanent failure: the call is never retried (PERMANENT_ERROR).
 *
 * @example
 * ```ts
 * if (user.deactivated) throw new PermanentError(`user ${user.id} is deactivated`);
 * ```
 */
export class PermanentError extends DispatchError {
  constructor(message?: string, options?: DispatchErrorOptions) {
    super(message, causeOnly(options));
  }
}
sdkClass(PermanentError, 'PermanentError', Status.PERMANENT_ERROR);

/**
 * An operation took too long (TIMEOUT, retried).
 *
 * @example
 * ```ts
 * throw new TimeoutError('the report was not ready after 30 s');
 * ```
 */
export class TimeoutError extends DispatchError {
  constructor(message?: string, options?: DispatchErrorOptions) {
    super(message, causeOnly(options));
  }
}
sdkClass(TimeoutError, 'TimeoutError', Status.TIMEOUT);

/**
 * Options of {@link ThrottledError}.
 *
 * @example
 * ```ts
 * new ThrottledError('rate limited by the API', { retryAfterMs: 30_000 });
 * ```
 */
export interface ThrottledErrorOptions extends DispatchErrorOptions {
  /** How long the server asked to wait before retrying, in milliseconds (a finite number >= 0). */
  retryAfterMs?: number;
}

/**
 * The function was throttled (THROTTLED, retried with a longer backoff).
 * `retryAfterMs`, when given, is an own enumerable field, so it travels with
 * the error to the caller.
 *
 * @example
 * ```ts
 * if (res.status === 429) {
 *   throw new ThrottledError('rate limited', { retryAfterMs: Number(res.headers.get('retry-after')) * 1000 });
 * }
 * ```
 */
export class ThrottledError extends DispatchError {
  /** How long the server asked to wait, in milliseconds, if it said so. */
  declare readonly retryAfterMs?: number;

  constructor(message?: string, options?: ThrottledErrorOptions) {
    super(message, causeOnly(options));
    const ms = options?.retryAfterMs;
    if (ms !== undefined) {
      if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
        throw new RangeError(`ThrottledError: retryAfterMs must be a finite number >= 0, got ${String(ms)}`);
      }
      this.retryAfterMs = ms;
    }
  }
}
sdkClass(ThrottledError, 'ThrottledError', Status.THROTTLED);

/**
 * The function was given invalid input (INVALID_ARGUMENT, not retried).
 *
 * @example
 * ```ts
 * if (!email.includes('@')) throw new InvalidArgumentError(`not an email address: ${JSON.stringify(email)}`);
 * ```
 */
export class InvalidArgumentError extends DispatchError {
  constructor(message?: string, options?: DispatchErrorOptions) {
    super(message, causeOnly(options));
  }
}
sdkClass(InvalidArgumentError, 'InvalidArgumentError', Status.INVALID_ARGUMENT);

/**
 * Another part of the system answered something unexpected
 * (INVALID_RESPONSE, not retried).
 *
 * @example
 * ```ts
 * if (!Array.isArray(body.items)) throw new InvalidResponseError('the catalog API returned no items array');
 * ```
 */
export class InvalidResponseError extends DispatchError {
  constructor(message?: string, options?: DispatchErrorOptions) {
    super(message, causeOnly(options));
  }
}
sdkClass(InvalidResponseError, 'InvalidResponseError', Status.INVALID_RESPONSE);

/**
 * The function's saved state cannot be used by this code
 * (INCOMPATIBLE_STATE, retried with backoff).
 *
 * @example
 * ```ts
 * throw new IncompatibleStateError('the journal was written by version 3 of the workflow');
 * ```
 */
export class IncompatibleStateError extends DispatchError {
  constructor(message?: string, options?: DispatchErrorOptions) {
    super(message, causeOnly(options));
  }
}
sdkClass(IncompatibleStateError, 'IncompatibleStateError', Status.INCOMPATIBLE_STATE);

/**
 * A DNS failure (DNS_ERROR, retried).
 *
 * @example
 * ```ts
 * throw new DnsError('api.example.com did not resolve', { cause: err });
 * ```
 */
export class DnsError extends DispatchError {
  constructor(message?: string, options?: DispatchErrorOptions) {
    super(message, causeOnly(options));
  }
}
sdkClass(DnsError, 'DnsError', Status.DNS_ERROR);

/**
 * A TCP failure: connection refused, reset... (TCP_ERROR, retried).
 *
 * @example
 * ```ts
 * throw new TcpError('the SMTP server closed the connection', { cause: err });
 * ```
 */
export class TcpError extends DispatchError {
  constructor(message?: string, options?: DispatchErrorOptions) {
    super(message, causeOnly(options));
  }
}
sdkClass(TcpError, 'TcpError', Status.TCP_ERROR);

/**
 * A TLS failure: handshake, certificate... (TLS_ERROR, retried).
 *
 * @example
 * ```ts
 * throw new TlsError('the certificate of payments.example.com expired', { cause: err });
 * ```
 */
export class TlsError extends DispatchError {
  constructor(message?: string, options?: DispatchErrorOptions) {
    super(message, causeOnly(options));
  }
}
sdkClass(TlsError, 'TlsError', Status.TLS_ERROR);

/**
 * An HTTP-level failure (HTTP_ERROR, retried).
 *
 * @example
 * ```ts
 * throw new HttpError('the upstream answered a malformed chunked body');
 * ```
 */
export class HttpError extends DispatchError {
  constructor(message?: string, options?: DispatchErrorOptions) {
    super(message, causeOnly(options));
  }
}
sdkClass(HttpError, 'HttpError', Status.HTTP_ERROR);

/**
 * An operation was attempted without authentication (UNAUTHENTICATED, not retried).
 *
 * @example
 * ```ts
 * if (!token) throw new UnauthenticatedError('no API token configured for the CRM');
 * ```
 */
export class UnauthenticatedError extends DispatchError {
  constructor(message?: string, options?: DispatchErrorOptions) {
    super(message, causeOnly(options));
  }
}
sdkClass(UnauthenticatedError, 'UnauthenticatedError', Status.UNAUTHENTICATED);

/**
 * An operation was attempted without permission (PERMISSION_DENIED, not retried).
 *
 * @example
 * ```ts
 * throw new PermissionDeniedError(`user ${userId} may not export invoices`);
 * ```
 */
export class PermissionDeniedError extends DispatchError {
  constructor(message?: string, options?: DispatchErrorOptions) {
    super(message, causeOnly(options));
  }
}
sdkClass(PermissionDeniedError, 'PermissionDeniedError', Status.PERMISSION_DENIED);

/**
 * A resource does not exist (NOT_FOUND, not retried).
 *
 * @example
 * ```ts
 * if (!order) throw new NotFoundError(`order ${orderId} does not exist`);
 * ```
 */
export class NotFoundError extends DispatchError {
  constructor(message?: string, options?: DispatchErrorOptions) {
    super(message, causeOnly(options));
  }
}
sdkClass(NotFoundError, 'NotFoundError', Status.NOT_FOUND);

/** The SDK error classes, keyed by the name they report. */
const SDK_CLASSES: ReadonlyMap<string, typeof DispatchError> = new Map(
  [...SDK_NAMES].map(([cls, name]) => [name, cls as typeof DispatchError]),
);

const CLASS_BY_STATUS: ReadonlyMap<Status, new (message?: string, options?: DispatchErrorOptions) => DispatchError> =
  new Map([
    [Status.TIMEOUT, TimeoutError],
    [Status.THROTTLED, ThrottledError],
    [Status.INVALID_ARGUMENT, InvalidArgumentError],
    [Status.INVALID_RESPONSE, InvalidResponseError],
    [Status.TEMPORARY_ERROR, TemporaryError],
    [Status.PERMANENT_ERROR, PermanentError],
    [Status.INCOMPATIBLE_STATE, IncompatibleStateError],
    [Status.DNS_ERROR, DnsError],
    [Status.TCP_ERROR, TcpError],
    [Status.TLS_ERROR, TlsError],
    [Status.HTTP_ERROR, HttpError],
    [Status.UNAUTHENTICATED, UnauthenticatedError],
    [Status.PERMISSION_DENIED, PermissionDeniedError],
    [Status.NOT_FOUND, NotFoundError],
  ]);

/**
 * The SDK error class reporting `name` (`'TemporaryError'` → `TemporaryError`),
 * or `undefined`. Used to rebuild decoded errors.
 *
 * @example
 * ```ts
 * sdkErrorClassByName('NotFoundError') === NotFoundError; // true
 * ```
 */
export function sdkErrorClassByName(name: string): typeof DispatchError | undefined {
  return SDK_CLASSES.get(name);
}

/**
 * A new SDK error for a status: the subclass of that status, or a
 * `DispatchError` with that status for OK and UNSPECIFIED.
 *
 * @example
 * ```ts
 * const err = dispatchErrorFor(Status.NOT_FOUND, 'no such order');
 * err instanceof NotFoundError; // true
 * ```
 */
export function dispatchErrorFor(status: Status, message?: string, options?: DispatchErrorOptions): DispatchError {
  const cls = CLASS_BY_STATUS.get(status);
  if (cls) return new cls(message, options);
  return new DispatchError(message, { ...options, status });
}

/**
 * `true` for an SDK error, including one created by another copy of this
 * package (checked through {@link dispatchErrorBrand}).
 *
 * @example
 * ```ts
 * isDispatchError(new TimeoutError()); // true
 * isDispatchError(new Error());        // false
 * ```
 */
export function isDispatchError(value: unknown): value is DispatchError {
  if (value instanceof DispatchError) return true;
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<PropertyKey, unknown>;
  return v[dispatchErrorBrand] === true && isStatus(v.status);
}

/**
 * The status a decoded error carried from the other side, if any (see
 * {@link errorStatusSymbol}).
 *
 * @example
 * ```ts
 * const err = decodeError(result.error, Status.THROTTLED);
 * getCarriedStatus(err); // Status.THROTTLED
 * ```
 */
export function getCarriedStatus(error: unknown): Status | undefined {
  if ((typeof error !== 'object' && typeof error !== 'function') || error === null) return undefined;
  const status = (error as Record<PropertyKey, unknown>)[errorStatusSymbol];
  return isStatus(status) ? status : undefined;
}

/**
 * Attaches the status an error had on the other side (non-enumerable, under
 * {@link errorStatusSymbol}); `undefined` removes it. Returns the error.
 *
 * @example
 * ```ts
 * const err = setCarriedStatus(new Error('remote failure'), Status.TCP_ERROR);
 * ```
 */
export function setCarriedStatus<E extends object>(error: E, status: Status | undefined): E {
  if (status === undefined) {
    delete (error as Record<PropertyKey, unknown>)[errorStatusSymbol];
  } else {
    if (!isStatus(status)) throw new TypeError(`setCarriedStatus: ${String(status)} is not a Status`);
    defineHidden(error, errorStatusSymbol, status);
  }
  return error;
}
