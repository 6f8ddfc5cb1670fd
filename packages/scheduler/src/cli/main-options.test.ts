import { describe, expect, it } from 'vitest';
import { parseMainArgs } from './main-options.js';

describe('parseMainArgs', () => {
  it('reads flags, then the environment', () => {
    const { options } = parseMainArgs(
      ['--port', '0', '--api-key', 'a', '--api-key', 'b', '--log-level', 'debug', '--concurrency-max', '5', '--synchronous', 'full'],
      { DISPATCH_SCHEDULER_DB: '/tmp/x.db', DISPATCH_API_KEY: 'ignored' },
    );
    expect(options).toEqual({
      db: '/tmp/x.db',
      port: 0,
      apiKeys: ['a', 'b'],
      logLevel: 'debug',
      synchronous: 'FULL',
      concurrency: { max: 5 },
    });
    expect(parseMainArgs([], { DISPATCH_API_KEY: 'k', DISPATCH_SCHEDULER_PORT: '4451' }).options).toEqual({ apiKeys: ['k'], port: 4451 });
    expect(
      parseMainArgs(['--db', 'postgres://u@h/db?schema=s', '--lease-ms', '2000', '--claim-batch', '64'], {}).options,
    ).toEqual({ db: 'postgres://u@h/db?schema=s', leaseMs: 2000, claimBatch: 64 });
  });

  it('refuses bad values with a clear message', () => {
    expect(() => parseMainArgs(['--port', 'x'], {})).toThrow(/--port must be a non-negative integer/);
    expect(() => parseMainArgs(['--log-level', 'loud'], {})).toThrow(/--log-level/);
    expect(() => parseMainArgs(['--nope'], {})).toThrow();
  });
});
