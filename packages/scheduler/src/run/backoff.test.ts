import { describe, expect, it } from 'vitest';
import { backoffDelay, resolveBackoff } from './backoff.js';

describe('backoff', () => {
  it('grows exponentially up to the cap; THROTTLED backs off harder', () => {
    const b = resolveBackoff({ initialMs: 100, maxMs: 5000, jitter: 'none' });
    expect([1, 2, 3, 4].map((n) => backoffDelay(b, n, false))).toEqual([100, 200, 400, 800]);
    expect(backoffDelay(b, 20, false)).toBe(5000);
    expect(backoffDelay(b, 1, true)).toBe(400);
    expect(backoffDelay(b, 10, true)).toBe(5000);
  });

  it('jitters within bounds', () => {
    const equal = resolveBackoff({ initialMs: 100 });
    expect(backoffDelay(equal, 3, false, () => 0)).toBe(200);
    expect(backoffDelay(equal, 3, false, () => 0.999999)).toBeCloseTo(400, 2);
    const full = resolveBackoff({ initialMs: 100, jitter: 'full' });
    expect(backoffDelay(full, 3, false, () => 0)).toBe(0);
    expect(backoffDelay(full, 3, false, () => 0.5)).toBe(200);
  });

  it('refuses nonsense', () => {
    expect(() => resolveBackoff({ initialMs: -1 })).toThrow(/initialMs/);
    expect(() => resolveBackoff({ multiplier: 0.5 })).toThrow(/multiplier/);
    expect(() => resolveBackoff({ jitter: 'x' as 'full' })).toThrow(/jitter/);
  });
});
