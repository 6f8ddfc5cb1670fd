import { describe, expect, it } from 'vitest';
import { proto } from '@dispatch/core/protocol';
import { allowance, formatRate, limitsOfCall, limitWaitText, rateFreesAt, rateMarginMs, rateWindow, roundRobin, sameSpec } from './limits.js';

describe('declared limits, the shared part', () => {
  it('serves keys round-robin, oldest key first, up to the total', () => {
    expect(roundRobin(new Map([['a', [1, 2, 3]], ['b', [4]], ['c', [5, 6]]]), 10)).toEqual([1, 4, 5, 2, 6, 3]);
    expect(roundRobin(new Map([['a', [1, 2, 3]], ['b', [4]]]), 2)).toEqual([1, 4]);
    expect(roundRobin(new Map(), 5)).toEqual([]);
  });

  it('takes the smallest of the capacity, the concurrency left and the rate left', () => {
    const spec = { concurrency: 5, concurrencyPerKey: false, rateCount: 10, ratePeriodMs: 1000, ratePerKey: true };
    const a = allowance(spec, 100, { running: 3, used: 0 }, [
      { key: 'x', running: 0, used: 10 },
      { key: 'y', running: 0, used: 9 },
    ]);
    expect(a.total).toBe(2);
    expect(a.perKey.get('x')).toBe(0);
    expect(a.perKey.get('y')).toBe(1);
    expect(allowance(spec, 1, { running: 0, used: 0 }, []).total).toBe(1);
  });

  it('reads Call.limits and refuses what cannot be enforced', () => {
    expect(limitsOfCall(null)).toBeNull();
    expect(limitsOfCall({ concurrency: 2, key: 'ignored without a per-key limit' })).toEqual({
      spec: { concurrency: 2, concurrencyPerKey: false, rateCount: 0, ratePeriodMs: 0, ratePerKey: false },
      key: '',
    });
    expect(() => limitsOfCall({ rateCount: 5, ratePeriodMs: 0 })).toThrow('limits.rate_period_ms must be from 1 ms to 366 days when rate_count is set, got 0');
    expect(() => limitsOfCall({ concurrency: 1, concurrencyPerKey: true, key: 'k'.repeat(300) })).toThrow('limits.key is 300 characters long, over 256');
    // As the API decodes it: the period (int64) is a Long.
    const decoded = proto.Call.decode(proto.Call.encode({ function: 'f', limits: { rateCount: 5, ratePeriodMs: 60_000, ratePerKey: true, key: 'u1' } }));
    expect(limitsOfCall(decoded.limits)).toEqual({
      spec: { concurrency: 0, concurrencyPerKey: false, rateCount: 5, ratePeriodMs: 60_000, ratePerKey: true },
      key: 'u1',
    });
    expect(() => limitsOfCall(proto.Call.decode(proto.Call.encode({ function: 'f', limits: { rateCount: 5, ratePeriodMs: 400 * 86_400_000 } })).limits)).toThrow(
      'limits.rate_period_ms must be from 1 ms to 366 days when rate_count is set, got 34560000000',
    );
  });

  it('compares specs field by field', () => {
    const spec = { concurrency: 2, concurrencyPerKey: true, rateCount: 5, ratePeriodMs: 1000, ratePerKey: false };
    expect(sameSpec(spec, { ...spec })).toBe(true);
    expect(sameSpec(spec, { ...spec, concurrencyPerKey: false })).toBe(false);
    expect(sameSpec(spec, { ...spec, ratePeriodMs: 2000 })).toBe(false);
  });

  it('counts a start for the period plus a margin, then frees it', () => {
    expect(rateMarginMs(1000)).toBe(200);
    expect(rateMarginMs(60_000)).toBe(3000);
    expect(rateMarginMs(100)).toBe(25);
    const start = 1_000_000_030;
    const { bucket } = rateWindow(1000, start);
    expect(rateWindow(1000, start + 1000).oldest).toBeLessThanOrEqual(bucket); // still counted a period later
    const frees = rateFreesAt(1000, bucket);
    expect(frees).toBeGreaterThanOrEqual(start + 1200);
    expect(rateWindow(1000, frees).oldest).toBeGreaterThan(bucket);
  });

  it('words rates and waits as the CLI prints them', () => {
    expect(formatRate(5, 1000)).toBe('5/s');
    expect(formatRate(10, 60_000)).toBe('10/m');
    expect(formatRate(5, 2000)).toBe('5/2s');
    expect(formatRate(3, 1500)).toBe('3/1500ms');
    expect(limitWaitText({ kind: 'rate', limit: 5, periodMs: 1000, key: '' }, 'notify')).toBe('rate limit 5/s of notify');
    expect(limitWaitText({ kind: 'concurrency', limit: 2, key: 'u1' }, 'checkout')).toBe('concurrency limit 2 of checkout, key u1');
  });
});
