import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import {
  DispatchError,
  DnsError,
  InvalidArgumentError,
  NotFoundError,
  PermanentError,
  TemporaryError,
  ThrottledError,
  TimeoutError,
  setCarriedStatus,
} from './errors.js';
import { StatusRegistry, defaultStatusRegistry, statusFromErrorCode } from './registry.js';
import { Status, statusName } from './status.js';

/** Awaits a promise expected to reject and returns the rejection. */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

const name = (s: Status) => statusName(s);

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('errorStatus on real failures', () => {
  const registry = new StatusRegistry();
  let silent: http.Server;
  let silentPort = 0;
  let tlsServer: https.Server;
  let tlsPort = 0;

  beforeAll(async () => {
    // A server that accepts requests and never answers them.
    silent = http.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as AddressInfo).port;
    tlsServer = https.createServer({ key: TEST_KEY, cert: TEST_CERT }, (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    tlsPort = (tlsServer.address() as AddressInfo).port;
  });

  afterAll(async () => {
    silent.closeAllConnections();
    tlsServer.closeAllConnections();
    await Promise.all([
      new Promise((resolve) => silent.close(resolve)),
      new Promise((resolve) => tlsServer.close(resolve)),
    ]);
  });

  it('fetch to a closed port is TCP_ERROR', async () => {
    const err = await failure(fetch(`http://127.0.0.1:${await closedPort()}/`));
    expect(err).toBeInstanceOf(TypeError); // 'fetch failed', not INVALID_ARGUMENT
    expect(name(registry.errorStatus(err))).toBe('TCP_ERROR');
  });

  it('fetch to a name that does not resolve is DNS_ERROR', async () => {
    const err = await failure(fetch('http://nonexistent.invalid/'));
    expect(name(registry.errorStatus(err))).toBe('DNS_ERROR');
  });

  it('net.connect refused is TCP_ERROR', async () => {
    const port = await closedPort();
    const err = await new Promise<Error>((resolve) => {
      net.connect(port, '127.0.0.1').on('error', resolve);
    });
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(name(registry.errorStatus(err))).toBe('TCP_ERROR');
  });

  it('AbortSignal.timeout on a fetch to a server that never answers is TIMEOUT', async () => {
    const err = await failure(fetch(`http://127.0.0.1:${silentPort}/`, { signal: AbortSignal.timeout(10) }));
    expect((err as Error).name).toBe('TimeoutError');
    expect(name(registry.errorStatus(err))).toBe('TIMEOUT');
  });

  it('a plain abort is TEMPORARY_ERROR; an AbortError caused by a timeout is TIMEOUT', async () => {
    const controller = new AbortController();
    const pending = fetch(`http://127.0.0.1:${silentPort}/`, { signal: controller.signal });
    setTimeout(() => controller.abort(), 5);
    const aborted = await failure(pending);
    expect((aborted as Error).name).toBe('AbortError');
    expect(name(registry.errorStatus(aborted))).toBe('TEMPORARY_ERROR');

    const slept = await failure(sleep(10_000, undefined, { signal: AbortSignal.timeout(5) }));
    expect((slept as Error).name).toBe('AbortError');
    expect(name(registry.errorStatus(slept))).toBe('TIMEOUT');
  });

  it('TLS failures are TLS_ERROR (self-signed certificate, TLS to a plain HTTP port)', async () => {
    const selfSigned = await failure(fetch(`https://127.0.0.1:${tlsPort}/`));
    expect(String(((selfSigned as Error).cause as NodeJS.ErrnoException).code)).toMatch(/CERT|SELF_SIGNED/);
    expect(name(registry.errorStatus(selfSigned))).toBe('TLS_ERROR');

    const wrongProtocol = await new Promise<Error>((resolve) => {
      tls.connect({ host: '127.0.0.1', port: silentPort, rejectUnauthorized: false }).on('error', resolve);
    });
    expect(name(registry.errorStatus(wrongProtocol))).toBe('TLS_ERROR');
  });

  it('reading a missing file is NOT_FOUND', async () => {
    const err = await failure(readFile('/definitely/not/here.txt'));
    expect(name(registry.errorStatus(err))).toBe('NOT_FOUND');
  });

  it('an error or object carrying an HTTP status goes through the HTTP table', () => {
    expect(name(registry.errorStatus({ statusCode: 503 }))).toBe('TEMPORARY_ERROR');
    expect(name(registry.errorStatus(Object.assign(new Error('x'), { statusCode: 503 })))).toBe('TEMPORARY_ERROR');
    expect(name(registry.errorStatus(Object.assign(new Error('x'), { status: 404 })))).toBe('NOT_FOUND');
    expect(name(registry.errorStatus(Object.assign(new Error('x'), { status: 429 })))).toBe('THROTTLED');
    expect(name(registry.errorStatus(Object.assign(new Error('x'), { response: { status: 401 } })))).toBe(
      'UNAUTHENTICATED',
    );
    expect(name(registry.errorStatus(Object.assign(new Error('x'), { status: 501 })))).toBe('PERMANENT_ERROR');
    // A 2xx or a number that is no HTTP code says nothing: the other rules decide.
    expect(name(registry.errorStatus(Object.assign(new Error('x'), { status: 200 })))).toBe('TEMPORARY_ERROR');
    expect(name(registry.errorStatus(Object.assign(new TypeError('x'), { status: 7 })))).toBe('INVALID_ARGUMENT');
  });

  it('a zod validation failure is INVALID_ARGUMENT', () => {
    const err = thrown(() => z.object({ email: z.string().email() }).parse({ email: 42 }));
    expect((err as Error).name).toBe('ZodError');
    expect(name(registry.errorStatus(err))).toBe('INVALID_ARGUMENT');
  });

  it('JS error classes: TypeError/RangeError → INVALID_ARGUMENT, ReferenceError/SyntaxError → PERMANENT_ERROR', () => {
    const nothing: { x?: { y: number } } = {};
    expect(name(registry.errorStatus(thrown(() => (nothing.x as { y: number }).y)))).toBe('INVALID_ARGUMENT');
    expect(name(registry.errorStatus(thrown(() => new Array(-1))))).toBe('INVALID_ARGUMENT');
    expect(name(registry.errorStatus(thrown(() => decodeURIComponent('%'))))).toBe('INVALID_ARGUMENT');
    expect(name(registry.errorStatus(thrown(() => new Function('return notDefinedAnywhere')())))).toBe(
      'PERMANENT_ERROR',
    );
    expect(name(registry.errorStatus(thrown(() => JSON.parse('{'))))).toBe('PERMANENT_ERROR');
  });

  it('anything else is TEMPORARY_ERROR, including values that are not errors', () => {
    for (const value of [new Error('boom'), 'boom', 42, null, undefined, { any: 'object' }, Symbol('s')]) {
      expect(name(registry.errorStatus(value))).toBe('TEMPORARY_ERROR');
    }
  });
});

describe('errorStatus: codes, SDK errors, carried statuses', () => {
  const registry = new StatusRegistry();

  it('maps system, undici and TLS codes', () => {
    const table: Record<string, string> = {
      ECONNREFUSED: 'TCP_ERROR',
      ECONNRESET: 'TCP_ERROR',
      ECONNABORTED: 'TCP_ERROR',
      EPIPE: 'TCP_ERROR',
      EHOSTUNREACH: 'TCP_ERROR',
      ENETUNREACH: 'TCP_ERROR',
      ENETDOWN: 'TCP_ERROR',
      EADDRNOTAVAIL: 'TCP_ERROR',
      UND_ERR_SOCKET: 'TCP_ERROR',
      ENOTFOUND: 'DNS_ERROR',
      EAI_AGAIN: 'DNS_ERROR',
      ETIMEDOUT: 'TIMEOUT',
      UND_ERR_CONNECT_TIMEOUT: 'TIMEOUT',
      UND_ERR_HEADERS_TIMEOUT: 'TIMEOUT',
      UND_ERR_BODY_TIMEOUT: 'TIMEOUT',
      ERR_TLS_CERT_ALTNAME_INVALID: 'TLS_ERROR',
      ERR_SSL_WRONG_VERSION_NUMBER: 'TLS_ERROR',
      CERT_HAS_EXPIRED: 'TLS_ERROR',
      UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS_ERROR',
      DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS_ERROR',
      SELF_SIGNED_CERT_IN_CHAIN: 'TLS_ERROR',
      EACCES: 'PERMISSION_DENIED',
      EPERM: 'PERMISSION_DENIED',
      ENOENT: 'NOT_FOUND',
      EAGAIN: 'TEMPORARY_ERROR',
      EINTR: 'TEMPORARY_ERROR',
      EMFILE: 'TEMPORARY_ERROR',
      ENFILE: 'TEMPORARY_ERROR',
      EBUSY: 'TEMPORARY_ERROR',
    };
    for (const [code, expected] of Object.entries(table)) {
      const err = Object.assign(new Error(code), { code });
      expect([code, name(registry.errorStatus(err))]).toEqual([code, expected]);
      expect(name(statusFromErrorCode(code) as Status)).toBe(expected);
    }
    expect(statusFromErrorCode('E_MY_APP')).toBeUndefined();
    // A DNS query failure is a DNS error whatever its code.
    expect(name(registry.errorStatus(Object.assign(new Error('x'), { code: 'ECONNREFUSED', syscall: 'queryA' })))).toBe(
      'DNS_ERROR',
    );
  });

  it('classifies fetch failures by their cause, through AggregateError too', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED ::1'), { code: 'ECONNREFUSED' });
    const refused4 = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1'), { code: 'ECONNREFUSED' });
    const aggregate = new AggregateError([refused, refused4]);
    expect(name(registry.errorStatus(new TypeError('fetch failed', { cause: aggregate })))).toBe('TCP_ERROR');
    const mixed = new AggregateError([refused, Object.assign(new Error('t'), { code: 'ETIMEDOUT' })]);
    expect(name(registry.errorStatus(new TypeError('fetch failed', { cause: mixed })))).toBe('TEMPORARY_ERROR');
    const socket = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
    expect(name(registry.errorStatus(new TypeError('terminated', { cause: socket })))).toBe('TCP_ERROR');
    // A cycle of causes does not loop.
    const loop = new TypeError('fetch failed');
    (loop as { cause?: unknown }).cause = loop;
    expect(name(registry.errorStatus(loop))).toBe('INVALID_ARGUMENT');
  });

  it('maps SDK error classes to their status', () => {
    expect(name(registry.errorStatus(new TemporaryError()))).toBe('TEMPORARY_ERROR');
    expect(name(registry.errorStatus(new PermanentError()))).toBe('PERMANENT_ERROR');
    expect(name(registry.errorStatus(new TimeoutError()))).toBe('TIMEOUT');
    expect(name(registry.errorStatus(new ThrottledError('slow down', { retryAfterMs: 5 })))).toBe('THROTTLED');
    expect(name(registry.errorStatus(new InvalidArgumentError()))).toBe('INVALID_ARGUMENT');
    expect(name(registry.errorStatus(new NotFoundError()))).toBe('NOT_FOUND');
    expect(name(registry.errorStatus(new DnsError()))).toBe('DNS_ERROR');
    expect(name(registry.errorStatus(new DispatchError('x', { status: Status.HTTP_ERROR })))).toBe('HTTP_ERROR');
    class Maintenance extends TemporaryError {}
    expect(name(registry.errorStatus(new Maintenance()))).toBe('TEMPORARY_ERROR');
  });

  it('uses the status a decoded error carried', () => {
    const decoded = setCarriedStatus(Object.assign(new Error('x'), { status: 404 }), Status.THROTTLED);
    expect(Object.keys(decoded)).toEqual(['status']); // the carried status is not an enumerable field
    expect(name(registry.errorStatus(decoded))).toBe('THROTTLED');
  });
});

describe('registered types', () => {
  class AppError extends Error {}
  class PaymentError extends AppError {}
  class CardDeclined extends PaymentError {}

  it('walks the prototype chain: the most specific registered class wins', () => {
    const registry = new StatusRegistry();
    registry.registerErrorType(AppError, Status.TEMPORARY_ERROR);
    registry.registerErrorType(PaymentError, Status.PERMANENT_ERROR);
    expect(name(registry.errorStatus(new AppError()))).toBe('TEMPORARY_ERROR');
    expect(name(registry.errorStatus(new PaymentError()))).toBe('PERMANENT_ERROR');
    expect(name(registry.errorStatus(new CardDeclined()))).toBe('PERMANENT_ERROR');
    // A registered class beats every built-in rule.
    registry.registerErrorType(TypeError, Status.TEMPORARY_ERROR);
    expect(name(registry.errorStatus(new TypeError('x')))).toBe('TEMPORARY_ERROR');
    registry.registerErrorType(TimeoutError, Status.PERMANENT_ERROR);
    expect(name(registry.errorStatus(new TimeoutError()))).toBe('PERMANENT_ERROR');
  });

  it('consults the instance registry before its parent at equal specificity, but specificity first', () => {
    const parent = new StatusRegistry();
    const child = new StatusRegistry(parent);
    parent.registerErrorType(PaymentError, Status.NOT_FOUND);
    child.registerErrorType(PaymentError, Status.THROTTLED);
    child.registerErrorType(AppError, Status.UNAUTHENTICATED);
    parent.registerErrorType(CardDeclined, Status.PERMISSION_DENIED);
    expect(name(child.errorStatus(new PaymentError()))).toBe('THROTTLED');
    expect(name(parent.errorStatus(new PaymentError()))).toBe('NOT_FOUND');
    expect(name(child.errorStatus(new CardDeclined()))).toBe('PERMISSION_DENIED'); // parent, more specific
    expect(name(child.errorStatus(new AppError()))).toBe('UNAUTHENTICATED');
    expect(name(parent.errorStatus(new AppError()))).toBe('TEMPORARY_ERROR'); // not registered there
    expect(child.errorClassByName('CardDeclined')).toBe(CardDeclined); // from the parent
    expect(parent.errorClassByName('AppError')).toBeUndefined();
  });

  it('lets a handler decide per value, and tolerates buggy handlers', () => {
    const onHandlerError = vi.fn();
    const registry = new StatusRegistry(undefined, { onHandlerError });
    class Upstream extends Error {
      constructor(readonly code2: number) {
        super('upstream');
      }
    }
    registry.registerErrorType(Upstream, (e) => (e.code2 >= 500 ? Status.TEMPORARY_ERROR : Status.PERMANENT_ERROR));
    expect(name(registry.errorStatus(new Upstream(503)))).toBe('TEMPORARY_ERROR');
    expect(name(registry.errorStatus(new Upstream(400)))).toBe('PERMANENT_ERROR');

    class Throws extends Error {}
    const throwing = () => {
      throw new Error('bug in the handler');
    };
    registry.registerErrorType(Throws, throwing);
    expect(name(registry.errorStatus(new Throws()))).toBe('TEMPORARY_ERROR');
    expect(name(registry.errorStatus(new Throws()))).toBe('TEMPORARY_ERROR');
    expect(onHandlerError).toHaveBeenCalledTimes(1); // once per faulty handler
    expect((onHandlerError.mock.calls[0]?.[0] as Error | undefined)?.cause).toBeInstanceOf(Error);

    class Bad extends Error {}
    registry.registerErrorType(Bad, (() => 'PERMANENT_ERROR') as unknown as () => Status);
    expect(name(registry.errorStatus(new Bad()))).toBe('TEMPORARY_ERROR');
    expect(onHandlerError).toHaveBeenCalledTimes(2);
  });

  it('refuses bad registrations with a clear error', () => {
    const registry = new StatusRegistry();
    expect(() => registry.registerErrorType(AppError, 'TEMPORARY_ERROR' as unknown as Status)).toThrow(
      /registerErrorType\(AppError, handler\): the handler must be a Status/,
    );
    expect(() => registry.registerErrorType(AppError, 99 as Status)).toThrow(TypeError);
    expect(() => registry.registerOutputType({} as never, Status.OK)).toThrow(/expected a class/);
  });

  it('registers error classes by name for decoding', () => {
    const registry = new StatusRegistry();
    class Renamed extends Error {}
    Object.defineProperty(Renamed.prototype, 'name', { value: 'RenamedError' });
    registry.registerErrorType(Renamed, Status.PERMANENT_ERROR);
    expect(registry.errorClassByName('Renamed')).toBe(Renamed);
    expect(registry.errorClassByName('RenamedError')).toBe(Renamed);
    class NotAnError {}
    registry.registerErrorType(NotAnError, Status.PERMANENT_ERROR);
    expect(registry.errorClassByName('NotAnError')).toBeUndefined();
    expect(name(registry.errorStatus(new NotAnError()))).toBe('PERMANENT_ERROR'); // thrown non-errors match too
  });
});

describe('output types', () => {
  // The seed's example: keep retrying until the DNS records are verified.
  class DNSVerification {
    readonly verified: boolean;
    constructor(records: { value: string }[]) {
      this.verified = records.length > 0 && records.every((r) => r.value !== '');
    }
  }

  it('retries (TEMPORARY_ERROR) until verified, then OK', () => {
    const registry = new StatusRegistry(defaultStatusRegistry);
    registry.registerOutputType(DNSVerification, (v) => (v.verified ? Status.OK : Status.TEMPORARY_ERROR));
    expect(name(registry.outputStatus(new DNSVerification([{ value: '' }])))).toBe('TEMPORARY_ERROR');
    expect(name(registry.outputStatus(new DNSVerification([{ value: '1.2.3.4' }])))).toBe('OK');
    expect(name(defaultStatusRegistry.outputStatus(new DNSVerification([])))).toBe('OK'); // not registered there
  });

  it('is OK for anything not registered, and specificity applies', () => {
    const registry = new StatusRegistry();
    class Base {}
    class Derived extends Base {}
    registry.registerOutputType(Base, Status.TEMPORARY_ERROR);
    for (const value of [undefined, null, 1, 'x', {}, [], new Date()]) expect(registry.outputStatus(value)).toBe(Status.OK);
    expect(name(registry.outputStatus(new Derived()))).toBe('TEMPORARY_ERROR');
    registry.registerOutputType(Derived, Status.OK);
    expect(name(registry.outputStatus(new Derived()))).toBe('OK');
    // Output registrations do not affect errors, and the reverse.
    expect(name(registry.errorStatus(new Derived()))).toBe('TEMPORARY_ERROR');
  });
});

// A self-signed certificate for 'localhost' (test only; valid for 100 years).
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiC6AO/HD+eI3dZEU
TNVEmDui6LaL3Fwr564rS1YPInKhRANCAATAA8vhqJmxJ37ik3x0Sef0VL7glsDm
Px34z5/UVEWODqKY6lt8ydtJg90z1BqOtmtSM7XjLhYRjlLqQWIRekWd
-----END PRIVATE KEY-----
`;
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBfzCCASWgAwIBAgIUQOYh94TM29ii2QZfwimJopFJIA4wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNDA2MTEwN1oYDzIxMjYxMDMx
MDYxMTA3WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATAA8vhqJmxJ37ik3x0Sef0VL7glsDmPx34z5/UVEWODqKY6lt8ydtJ
g90z1BqOtmtSM7XjLhYRjlLqQWIRekWdo1MwUTAdBgNVHQ4EFgQUfgFYS32P/J0k
Uu02YZKspM7zq3cwHwYDVR0jBBgwFoAUfgFYS32P/J0kUu02YZKspM7zq3cwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA/xNsswHGTC56uBlToW5X
f+FfDt3KplyDXeEgJ8PSPBICIA2RXlI5CLHJw5HZ+RuT9wDKKaauu/nPkhky+KL8
4O3z
-----END CERTIFICATE-----
`;
