import { describe, expect, it } from 'vitest';
import { Dispatch } from './dispatch.js';
import { parseRateLimit, resolveLimits } from './limits.js';
import * as proto from '../protocol/proto.js';

describe('declared limits', () => {
  it('parses rates', () => {
    expect(parseRateLimit('50/s', 'f')).toEqual({ count: 50, periodMs: 1000 });
    expect(parseRateLimit('10/m', 'f')).toEqual({ count: 10, periodMs: 60_000 });
    expect(parseRateLimit('1000/h', 'f')).toEqual({ count: 1000, periodMs: 3_600_000 });
    expect(parseRateLimit('5/2s', 'f')).toEqual({ count: 5, periodMs: 2000 });
    expect(parseRateLimit(' 3 / d ', 'f')).toEqual({ count: 3, periodMs: 86_400_000 });
  });

  it('refuses bad rates with the value and the accepted forms', () => {
    for (const bad of ['50', '50/sec', '0/s', '-1/s', '1.5/s', 's/5', '', '5/0s']) {
      expect(() => parseRateLimit(bad, 'charge')).toThrow(
        `invalid rateLimit of charge: ${JSON.stringify(bad)}; write a count per period such as '50/s', '10/m', '1000/h' or '5/2s'`,
      );
    }
    expect(() => parseRateLimit(50, 'charge')).toThrow('invalid rateLimit of charge: 50;');
  });

  it('refuses bad concurrency and mismatched keys when the function is registered', () => {
    const d = new Dispatch({ env: {} });
    expect(() => d.function({ name: 'a', concurrency: 0 }, async () => 1)).toThrow(/invalid concurrency of a: 0; write a whole number from 1/);
    expect(() => d.function({ name: 'b', concurrency: 2.5 }, async () => 1)).toThrow(/invalid concurrency of b: 2.5/);
    expect(() => d.function({ name: 'c', rateLimit: '10/fortnight' }, async () => 1)).toThrow(/invalid rateLimit of c: "10\/fortnight"/);
    expect(() =>
      d.function({ name: 'e', concurrency: { limit: 2, key: (u: string) => u }, rateLimit: { limit: '5/s', key: (u: string) => `${u}!` } }, async (_u: string) => 1),
    ).toThrow(/different key functions/);
    expect(() => d.function({ name: 'g', concurrency: { limit: 2, key: 'userId' as never } }, async () => 1)).toThrow(/key must be a function/);
    expect(d.functionNames).toEqual([]);
  });

  it('computes the key from the arguments of each call and carries the limits on it', () => {
    const key = (user: string) => user;
    const limitsOf = resolveLimits<[string, number]>('checkout', { concurrency: { limit: 2, key }, rateLimit: { limit: '5/s', key } })!;
    expect(limitsOf(['u1', 3])).toEqual({ concurrency: 2, concurrencyPerKey: true, rateCount: 5, ratePeriodMs: 1000, ratePerKey: true, key: 'u1' });
    expect(resolveLimits('plain', {})).toBeUndefined();
    expect(resolveLimits('plain', { concurrency: 10, rateLimit: '50/s' })!([])).toEqual({ concurrency: 10, rateCount: 50, ratePeriodMs: 1000 });
    const badKey = resolveLimits<[unknown]>('k', { concurrency: { limit: 1, key: (x) => x as string } })!;
    expect(() => badKey([null])).toThrow('the limit key of k must be a string or a finite number, got null');
    expect(() => badKey(['x'.repeat(300)])).toThrow(/300 characters long, over the limit of 256/);
  });

  it('puts the limits on the Call of fn.dispatch() and of a durable call', async () => {
    const d = new Dispatch({ env: {}, endpointUrl: 'http://127.0.0.1:1', apiKey: 'k', apiUrl: 'http://127.0.0.1:1' });
    const checkout = d.function({ name: 'checkout', concurrency: { limit: 2, key: (userId: string) => userId } }, async (userId: string) => userId);
    const call = d.engine.toProtoCall(checkout('u1'), undefined);
    expect(call.limits).toEqual({ concurrency: 2, concurrencyPerKey: true, key: 'u1' });
    // It survives the wire (field 120 of dispatch.sdk.v1.Call).
    const decoded = proto.Call.decode(proto.Call.encode(call));
    expect(decoded.limits?.key).toBe('u1');
    expect(decoded.limits?.concurrency).toBe(2);
    const free = d.function({ name: 'free' }, async () => 1);
    expect(d.engine.toProtoCall(free(), undefined).limits).toBeUndefined();
  });
});
