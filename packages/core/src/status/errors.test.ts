import { describe, expect, it } from 'vitest';
import {
  DispatchError,
  DnsError,
  HttpError,
  IncompatibleStateError,
  InvalidArgumentError,
  InvalidResponseError,
  NotFoundError,
  PermanentError,
  PermissionDeniedError,
  TcpError,
  TemporaryError,
  ThrottledError,
  TimeoutError,
  TlsError,
  UnauthenticatedError,
  dispatchErrorBrand,
  dispatchErrorFor,
  errorStatusSymbol,
  getCarriedStatus,
  isDispatchError,
  isStatus,
  sdkErrorClassByName,
  setCarriedStatus,
} from './errors.js';
import { Status } from './status.js';

const CLASSES: [typeof DispatchError, string, Status, string][] = [
  [TemporaryError, 'TemporaryError', Status.TEMPORARY_ERROR, 'temporary_error'],
  [PermanentError, 'PermanentError', Status.PERMANENT_ERROR, 'permanent_error'],
  [TimeoutError, 'TimeoutError', Status.TIMEOUT, 'timeout'],
  [ThrottledError, 'ThrottledError', Status.THROTTLED, 'throttled'],
  [InvalidArgumentError, 'InvalidArgumentError', Status.INVALID_ARGUMENT, 'invalid_argument'],
  [InvalidResponseError, 'InvalidResponseError', Status.INVALID_RESPONSE, 'invalid_response'],
  [IncompatibleStateError, 'IncompatibleStateError', Status.INCOMPATIBLE_STATE, 'incompatible_state'],
  [DnsError, 'DnsError', Status.DNS_ERROR, 'dns_error'],
  [TcpError, 'TcpError', Status.TCP_ERROR, 'tcp_error'],
  [TlsError, 'TlsError', Status.TLS_ERROR, 'tls_error'],
  [HttpError, 'HttpError', Status.HTTP_ERROR, 'http_error'],
  [UnauthenticatedError, 'UnauthenticatedError', Status.UNAUTHENTICATED, 'unauthenticated'],
  [PermissionDeniedError, 'PermissionDeniedError', Status.PERMISSION_DENIED, 'permission_denied'],
  [NotFoundError, 'NotFoundError', Status.NOT_FOUND, 'not_found'],
];

describe('SDK error classes', () => {
  it('have their name, status and code, and no enumerable fields of their own', () => {
    for (const [cls, name, status, code] of CLASSES) {
      const cause = new Error('root cause');
      const err = new cls('went wrong', { cause });
      expect(err).toBeInstanceOf(DispatchError);
      expect(err).toBeInstanceOf(Error);
      expect([err.name, err.status, err.code]).toEqual([name, status, code]);
      expect(err.message).toBe('went wrong');
      expect(err.cause).toBe(cause);
      expect(Object.keys(err)).toEqual([]);
      expect(err.stack).toContain(`${name}: went wrong`);
      expect(sdkErrorClassByName(name)).toBe(cls);
      expect(dispatchErrorFor(status, 'm')).toBeInstanceOf(cls);
      expect(isDispatchError(err)).toBe(true);
    }
  });

  it('keep an explicit undefined cause and omit an absent one', () => {
    expect('cause' in new TemporaryError('x', { cause: undefined })).toBe(true);
    expect('cause' in new TemporaryError('x')).toBe(false);
    expect(new TemporaryError().message).toBe('');
  });

  it('let the base class carry any status', () => {
    const err = new DispatchError('upstream 502', { status: Status.HTTP_ERROR });
    expect([err.name, err.status, err.code]).toEqual(['DispatchError', Status.HTTP_ERROR, 'http_error']);
    expect(new DispatchError().status).toBe(Status.TEMPORARY_ERROR);
    expect(() => new DispatchError('x', { status: 99 as Status })).toThrow(TypeError);
    expect(dispatchErrorFor(Status.UNSPECIFIED).status).toBe(Status.UNSPECIFIED);
  });

  it('give user subclasses their own class name', () => {
    class MaintenanceError extends TemporaryError {}
    const err = new MaintenanceError('maintenance');
    expect(err.name).toBe('MaintenanceError');
    expect(err.status).toBe(Status.TEMPORARY_ERROR);
    expect(err.stack).toContain('MaintenanceError: maintenance');
    expect(Object.keys(err)).toEqual([]);
  });

  it('ThrottledError carries retryAfterMs as an own field', () => {
    const err = new ThrottledError('slow down', { retryAfterMs: 1500 });
    expect(err.retryAfterMs).toBe(1500);
    expect(Object.keys(err)).toEqual(['retryAfterMs']);
    expect(new ThrottledError().retryAfterMs).toBeUndefined();
    expect(() => new ThrottledError('x', { retryAfterMs: -1 })).toThrow(RangeError);
  });

  it('are recognised through the brand when instanceof fails (two copies of the package)', () => {
    const foreign = Object.assign(new Error('x'), { status: Status.NOT_FOUND, [dispatchErrorBrand]: true });
    expect(isDispatchError(foreign)).toBe(true);
    expect(isDispatchError(new Error('x'))).toBe(false);
    expect(isDispatchError('TemporaryError')).toBe(false);
  });
});

describe('carried statuses', () => {
  it('are attached under a global symbol, non-enumerable', () => {
    const err = setCarriedStatus(new Error('remote'), Status.TCP_ERROR);
    expect(getCarriedStatus(err)).toBe(Status.TCP_ERROR);
    expect(errorStatusSymbol).toBe(Symbol.for('@dispatch/status'));
    expect(Object.keys(err)).toEqual([]);
    expect(Object.getOwnPropertyDescriptor(err, errorStatusSymbol)?.enumerable).toBe(false);
    setCarriedStatus(err, undefined);
    expect(getCarriedStatus(err)).toBeUndefined();
    expect(getCarriedStatus('x')).toBeUndefined();
    expect(getCarriedStatus({ [errorStatusSymbol]: 'nope' })).toBeUndefined();
    expect(() => setCarriedStatus(err, 42 as Status)).toThrow(TypeError);
  });

  it('isStatus accepts only Status numbers', () => {
    expect(isStatus(Status.OK)).toBe(true);
    expect(isStatus(0)).toBe(true);
    expect(isStatus(16)).toBe(false);
    expect(isStatus('OK')).toBe(false);
  });
});
