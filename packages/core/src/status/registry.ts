/**
 * Which status a thrown error or a returned value gives a call
 * (PROTOCOL.md 8.20, with 5.6 for the HTTP table).
 *
 * `errorStatus(error)`, first match wins:
 * 1. a class registered with `registerErrorType` (the most specific class in
 *    the prototype chain wins; at equal specificity this registry wins over
 *    its parent); a handler function decides per value;
 * 2. the SDK error classes (`TemporaryError`, ...) → their status;
 * 3. a decoded error's carried status ({@link getCarriedStatus}) → that status;
 * 4. Node system error codes, undici codes, DNS lookups, TLS and certificate
 *    codes (see {@link statusFromErrorCode}); an `AggregateError` without a
 *    known code → the status its `errors` all share (else TEMPORARY_ERROR);
 *    `TypeError: fetch failed` (and undici's `TypeError: terminated`) → the
 *    status of its `cause`; an error named `TimeoutError` (what
 *    `AbortSignal.timeout()` aborts with) → TIMEOUT; an `AbortError` → TIMEOUT
 *    if its cause is such a timeout, else TEMPORARY_ERROR;
 * 5. an HTTP status in `status`, `statusCode` or `response.status` (an
 *    integer 100..599) → the HTTP table, unless that gives OK (a 2xx on an
 *    error says nothing about the failure, so the next rules decide);
 * 6. a zod error (name `ZodError` with an `issues` array), `TypeError`,
 *    `RangeError`, `URIError` → INVALID_ARGUMENT; `ReferenceError`,
 *    `SyntaxError`, `EvalError` → PERMANENT_ERROR;
 * 7. anything else, including values that are not errors → TEMPORARY_ERROR.
 *
 * `outputStatus(output)`: a registered output class → its handler; else OK.
 *
 * A handler function that throws or returns something other than a
 * {@link Status} is a bug in user code: the value is classified
 * TEMPORARY_ERROR (so the call is retried, and can succeed once the code is
 * fixed and redeployed), and the problem is reported once per handler
 * through `onHandlerError` (default: a process warning).
 * @module
 */
import { getCarriedStatus, isDispatchError, isStatus } from './errors.js';
import { Status, statusFromHttpCode } from './status.js';

/**
 * How a registered class maps to a status: a fixed {@link Status}, or a
 * function deciding per value.
 *
 * @example
 * ```ts
 * const handler: StatusHandler<DNSVerification> = (v) => (v.verified ? Status.OK : Status.TEMPORARY_ERROR);
 * ```
 */
export type StatusHandler<T> = Status | ((value: T) => Status);

/**
 * Any class (abstract or not) whose instances are `T`.
 *
 * @example
 * ```ts
 * const cls: Class<Error> = TypeError;
 * ```
 */
// biome-ignore lint/suspicious/noExplicitAny: constructors of any signature must be accepted
export type Class<T> = abstract new (...args: any[]) => T;

/**
 * Options of a {@link StatusRegistry}.
 *
 * @example
 * ```ts
 * const registry = new StatusRegistry(undefined, { onHandlerError: (err) => logger.error(err) });
 * ```
 */
export interface StatusRegistryOptions {
  /**
   * Called when a handler function throws or returns a non-Status (the value
   * is then classified TEMPORARY_ERROR). Called once per faulty handler.
   * Default: `process.emitWarning` (or `console.warn` outside Node).
   */
  onHandlerError?: (problem: Error, value: unknown) => void;
}

type AnyHandler = StatusHandler<never>;

function checkRegistration(kind: string, cls: unknown, handler: unknown): void {
  if (typeof cls !== 'function' || typeof (cls as { prototype?: unknown }).prototype !== 'object') {
    throw new TypeError(`${kind}: expected a class, got ${describe(cls)}`);
  }
  if (typeof handler !== 'function' && !isStatus(handler)) {
    throw new TypeError(
      `${kind}(${(cls as { name?: string }).name || 'anonymous class'}, handler): the handler must be a Status ` +
        `(e.g. Status.TEMPORARY_ERROR) or a function returning one, got ${describe(handler)}`,
    );
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function defaultOnHandlerError(problem: Error): void {
  const proc = (globalThis as { process?: { emitWarning?: (w: Error) => void } }).process;
  if (typeof proc?.emitWarning === 'function') proc.emitWarning(problem);
  else console.warn(problem);
}

/**
 * Maps error classes and output classes to statuses. An instance registry
 * consults its own entries first, then its parent's; the module-level
 * {@link defaultStatusRegistry} is what `dispatch.registerErrorType` writes
 * to.
 *
 * @example
 * ```ts
 * import { StatusRegistry, Status } from '@dispatch/core';
 * class MaintenanceError extends Error {}
 * const registry = new StatusRegistry();
 * registry.registerErrorType(MaintenanceError, Status.TEMPORARY_ERROR);
 * registry.errorStatus(new MaintenanceError()); // Status.TEMPORARY_ERROR
 * ```
 */
export class StatusRegistry {
  readonly #parent: StatusRegistry | undefined;
  /** Handlers keyed by the registered class's prototype, for a direct prototype-chain walk. */
  readonly #errors = new Map<object, AnyHandler>();
  readonly #outputs = new Map<object, AnyHandler>();
  readonly #errorClasses = new Map<string, Class<Error>>();
  readonly #onHandlerError: (problem: Error, value: unknown) => void;
  readonly #reported = new WeakSet<object>();

  /**
   * @param parent consulted after this registry's own entries (at each level
   *   of the prototype chain).
   */
  constructor(parent?: StatusRegistry, options?: StatusRegistryOptions) {
    this.#parent = parent;
    this.#onHandlerError = options?.onHandlerError ?? defaultOnHandlerError;
  }

  /**
   * Maps thrown instances of `cls` (and of its subclasses) to a status.
   * Registering a class again replaces its handler. Throws a `TypeError`
   * when `cls` is not a class or `handler` is neither a Status nor a function.
   *
   * @example
   * ```ts
   * class UserDeactivated extends Error {}
   * registry.registerErrorType(UserDeactivated, Status.PERMANENT_ERROR);
   * ```
   */
  registerErrorType<E>(cls: Class<E>, handler: StatusHandler<E>): void {
    checkRegistration('registerErrorType', cls, handler);
    this.#errors.set(cls.prototype as object, handler as AnyHandler);
    if (cls.prototype instanceof Error) {
      const errorClass = cls as unknown as Class<Error>;
      if (cls.name) this.#errorClasses.set(cls.name, errorClass);
      const protoName = Object.getOwnPropertyDescriptor(cls.prototype, 'name')?.value;
      if (typeof protoName === 'string' && protoName && protoName !== cls.name) {
        this.#errorClasses.set(protoName, errorClass);
      }
    }
  }

  /**
   * Maps returned instances of `cls` (and of its subclasses) to a status,
   * e.g. to retry a call that completed but is not done yet. Throws a
   * `TypeError` on a bad class or handler.
   *
   * @example
   * ```ts
   * class DNSVerification { constructor(readonly verified: boolean) {} }
   * registry.registerOutputType(DNSVerification, (v) => (v.verified ? Status.OK : Status.TEMPORARY_ERROR));
   * ```
   */
  registerOutputType<T>(cls: Class<T>, handler: StatusHandler<T>): void {
    checkRegistration('registerOutputType', cls, handler);
    this.#outputs.set(cls.prototype as object, handler as AnyHandler);
  }

  /**
   * The status of a thrown value (see the module documentation for the
   * rules, PROTOCOL.md 8.20). Never throws; a throwing handler gives
   * TEMPORARY_ERROR.
   *
   * @example
   * ```ts
   * registry.errorStatus(new TypeError('bad input'));   // Status.INVALID_ARGUMENT
   * registry.errorStatus(Object.assign(new Error('unavailable'), { statusCode: 503 })); // Status.TEMPORARY_ERROR
   * ```
   */
  errorStatus(error: unknown): Status {
    return this.#classify(error, 0, new Set());
  }

  /**
   * The status of a returned value: the handler of its most specific
   * registered class, else OK.
   *
   * @example
   * ```ts
   * registry.outputStatus(new DNSVerification(false)); // Status.TEMPORARY_ERROR
   * registry.outputStatus('done');                     // Status.OK
   * ```
   */
  outputStatus(output: unknown): Status {
    const handler = this.#lookup(output, 'outputs');
    return handler === undefined ? Status.OK : this.#apply(handler, output);
  }

  /**
   * The registered error class named `name` (its class name, or a `name`
   * defined on its prototype), in this registry then its parent; used to
   * rebuild decoded errors. Only classes extending `Error` are listed.
   *
   * @example
   * ```ts
   * registry.registerErrorType(UserDeactivated, Status.PERMANENT_ERROR);
   * registry.errorClassByName('UserDeactivated') === UserDeactivated; // true
   * ```
   */
  errorClassByName(name: string): Class<Error> | undefined {
    return this.#errorClasses.get(name) ?? this.#parent?.errorClassByName(name);
  }

  /** The handler registered here for exactly this prototype, else the parent's. */
  #at(proto: object, kind: 'errors' | 'outputs'): AnyHandler | undefined {
    const own = kind === 'errors' ? this.#errors.get(proto) : this.#outputs.get(proto);
    if (own !== undefined) return own;
    return this.#parent === undefined ? undefined : this.#parent.#at(proto, kind);
  }

  #lookup(value: unknown, kind: 'errors' | 'outputs'): AnyHandler | undefined {
    if (value === null || value === undefined) return undefined;
    let proto: object | null = Object.getPrototypeOf(Object(value));
    for (let guard = 0; proto !== null && guard < 1000; guard++) {
      const handler = this.#at(proto, kind);
      if (handler !== undefined) return handler;
      proto = Object.getPrototypeOf(proto);
    }
    return undefined;
  }

  #apply(handler: AnyHandler, value: unknown): Status {
    if (typeof handler !== 'function') return handler;
    let result: unknown;
    try {
      result = (handler as (value: unknown) => unknown)(value);
    } catch (err) {
      this.#report(handler, new Error(`status handler ${handler.name || '(anonymous)'} threw; using TEMPORARY_ERROR`, { cause: err }), value);
      return Status.TEMPORARY_ERROR;
    }
    if (isStatus(result)) return result;
    this.#report(
      handler,
      new TypeError(
        `status handler ${handler.name || '(anonymous)'} returned ${describe(result)}, not a Status; using TEMPORARY_ERROR`,
      ),
      value,
    );
    return Status.TEMPORARY_ERROR;
  }

  #report(handler: object, problem: Error, value: unknown): void {
    if (this.#reported.has(handler)) return;
    this.#reported.add(handler);
    try {
      this.#onHandlerError(problem, value);
    } catch {
      // reporting must never change the classification
    }
  }

  #classify(error: unknown, depth: number, seen: Set<unknown>): Status {
    const registered = this.#lookup(error, 'errors');
    if (registered !== undefined) return this.#apply(registered, error);
    if (isDispatchError(error)) return error.status;
    const carried = getCarriedStatus(error);
    if (carried !== undefined && carried !== Status.OK && carried !== Status.UNSPECIFIED) return carried;
    if (typeof error !== 'object' || error === null) return Status.TEMPORARY_ERROR;

    const e = error as Record<string, unknown>;
    const name = typeof e.name === 'string' ? e.name : '';

    // 4. Node, undici, DNS and TLS codes.
    const byCode = statusFromSystemError(e);
    if (byCode !== undefined) return byCode;

    const nested = depth < 16 && !seen.has(error);
    if (nested) seen.add(error);
    if (nested && Array.isArray(e.errors) && (error instanceof AggregateError || name === 'AggregateError')) {
      const statuses = e.errors.map((inner) => this.#classify(inner, depth + 1, seen));
      if (statuses.length > 0) {
        const first = statuses[0] as Status;
        return statuses.every((s) => s === first) ? first : Status.TEMPORARY_ERROR;
      }
    }
    if (
      nested &&
      (name === 'TypeError' || error instanceof TypeError) &&
      (e.message === 'fetch failed' || e.message === 'terminated') &&
      'cause' in e
    ) {
      return this.#classify(e.cause, depth + 1, seen);
    }
    if (name === 'TimeoutError') return Status.TIMEOUT;
    if (name === 'AbortError') {
      const cause = e.cause as { name?: unknown } | null | undefined;
      return cause && typeof cause === 'object' && cause.name === 'TimeoutError' ? Status.TIMEOUT : Status.TEMPORARY_ERROR;
    }

    // 5. An HTTP status.
    const http = httpCodeOf(e);
    if (http !== undefined) {
      const status = statusFromHttpCode(http);
      if (status !== Status.OK && status !== Status.UNSPECIFIED) return status;
    }

    // 6. Validation and programming errors.
    if (name === 'ZodError' && Array.isArray(e.issues)) return Status.INVALID_ARGUMENT;
    if (error instanceof TypeError || error instanceof RangeError || error instanceof URIError) {
      return Status.INVALID_ARGUMENT;
    }
    if (name === 'TypeError' || name === 'RangeError' || name === 'URIError') return Status.INVALID_ARGUMENT;
    if (error instanceof ReferenceError || error instanceof SyntaxError || error instanceof EvalError) {
      return Status.PERMANENT_ERROR;
    }
    if (name === 'ReferenceError' || name === 'SyntaxError' || name === 'EvalError') return Status.PERMANENT_ERROR;

    // 7. Anything else is retried.
    return Status.TEMPORARY_ERROR;
  }
}

function httpCodeOf(e: Record<string, unknown>): number | undefined {
  const response = e.response as { status?: unknown } | null | undefined;
  for (const candidate of [e.status, e.statusCode, typeof response === 'object' && response ? response.status : undefined]) {
    if (typeof candidate === 'number' && Number.isInteger(candidate) && candidate >= 100 && candidate <= 599) {
      return candidate;
    }
  }
  return undefined;
}

const TCP_CODES = [
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENETRESET',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'ERR_SOCKET_CLOSED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_HTTP2_STREAM_ERROR',
  'ERR_HTTP2_SESSION_ERROR',
  'ERR_HTTP2_GOAWAY_SESSION',
];
const DNS_CODES = ['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA', 'ESERVFAIL', 'EREFUSED', 'ENODATA'];
const TIMEOUT_CODES = [
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_HTTP2_SETTINGS_TIMEOUT',
  'ERR_HTTP2_PING_TIMEOUT',
];
/** Certificate verification codes of OpenSSL, as Node reports them. */
const TLS_CODES = [
  'EPROTO',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'HOSTNAME_MISMATCH',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
];
const TLS_PREFIXES = ['ERR_TLS_', 'ERR_SSL_', 'ERR_OSSL_', 'CERT_', 'CRL_', 'SSL_'];
const PERMISSION_CODES = ['EACCES', 'EPERM'];
const NOT_FOUND_CODES = ['ENOENT'];
const TEMPORARY_CODES = ['EAGAIN', 'EWOULDBLOCK', 'EINTR', 'EMFILE', 'ENFILE', 'EBUSY', 'ENOBUFS', 'ENOMEM'];
const INVALID_RESPONSE_CODES = [
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_EXCEEDED_MAX_SIZE',
  'ERR_INVALID_HTTP_RESPONSE',
  'HPE_INVALID_CONSTANT',
  'HPE_INVALID_VERSION',
  'HPE_INVALID_STATUS',
  'HPE_INVALID_HEADER_TOKEN',
  'HPE_INVALID_CONTENT_LENGTH',
  'HPE_INVALID_CHUNK_SIZE',
  'HPE_UNEXPECTED_CONTENT_LENGTH',
  'HPE_INVALID_TRANSFER_ENCODING',
  'HPE_HEADER_OVERFLOW',
  'HPE_CLOSED_CONNECTION',
];
const INVALID_ARGUMENT_CODES = ['UND_ERR_INVALID_ARG', 'ERR_INVALID_URL', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE'];

const CODE_TABLE: ReadonlyMap<string, Status> = new Map<string, Status>([
  ...TCP_CODES.map((c) => [c, Status.TCP_ERROR] as const),
  ...DNS_CODES.map((c) => [c, Status.DNS_ERROR] as const),
  ...TIMEOUT_CODES.map((c) => [c, Status.TIMEOUT] as const),
  ...TLS_CODES.map((c) => [c, Status.TLS_ERROR] as const),
  ...PERMISSION_CODES.map((c) => [c, Status.PERMISSION_DENIED] as const),
  ...NOT_FOUND_CODES.map((c) => [c, Status.NOT_FOUND] as const),
  ...TEMPORARY_CODES.map((c) => [c, Status.TEMPORARY_ERROR] as const),
  ...INVALID_RESPONSE_CODES.map((c) => [c, Status.INVALID_RESPONSE] as const),
  ...INVALID_ARGUMENT_CODES.map((c) => [c, Status.INVALID_ARGUMENT] as const),
]);

/**
 * The status of a Node system error code, an undici code or a TLS or
 * certificate code (`'ECONNREFUSED'` → TCP_ERROR, `'ENOTFOUND'` →
 * DNS_ERROR, `'UND_ERR_HEADERS_TIMEOUT'` → TIMEOUT, `'CERT_HAS_EXPIRED'` →
 * TLS_ERROR, `'ENOENT'` → NOT_FOUND, `'EMFILE'` → TEMPORARY_ERROR...), or
 * `undefined` for a code it does not know.
 *
 * @example
 * ```ts
 * statusFromErrorCode('ECONNRESET'); // Status.TCP_ERROR
 * statusFromErrorCode('E_MY_APP');   // undefined
 * ```
 */
export function statusFromErrorCode(code: string): Status | undefined {
  const known = CODE_TABLE.get(code);
  if (known !== undefined) return known;
  if (TLS_PREFIXES.some((p) => code.startsWith(p))) return Status.TLS_ERROR;
  if (code.startsWith('UND_ERR_') && code.endsWith('_TIMEOUT')) return Status.TIMEOUT;
  return undefined;
}

/** Status from `code` (a string), or from a DNS `syscall` (getaddrinfo, queryA...). */
function statusFromSystemError(e: Record<string, unknown>): Status | undefined {
  const code = e.code;
  if (typeof code === 'string') {
    const syscall = e.syscall;
    if (typeof syscall === 'string' && (syscall === 'getaddrinfo' || syscall === 'getnameinfo' || syscall.startsWith('query'))) {
      return Status.DNS_ERROR;
    }
    return statusFromErrorCode(code);
  }
  return undefined;
}

/**
 * The registry `dispatch.registerErrorType` and `dispatch.registerOutputType`
 * write to, and the parent of every per-endpoint registry.
 *
 * @example
 * ```ts
 * import { defaultStatusRegistry, Status } from '@dispatch/core';
 * class MaintenanceError extends Error {}
 * defaultStatusRegistry.registerErrorType(MaintenanceError, Status.TEMPORARY_ERROR);
 * ```
 */
export const defaultStatusRegistry: StatusRegistry = new StatusRegistry();
