import { describe, expect, it } from 'vitest';
import { ReplayCache } from './replay-cache.js';

const sig = (n: number) => Uint8Array.from({ length: 64 }, (_, i) => (i === 0 ? n & 0xff : i === 1 ? n >> 8 : 7));

describe('ReplayCache', () => {
  it('remembers a signature until it expires: fresh, then replayed, then fresh again once expired', () => {
    let now = 1_000_000;
    const cache = new ReplayCache({ now: () => now });
    expect(cache.has(sig(1))).toBe(false);
    expect(cache.remember(sig(1), now + 65_000)).toBe('fresh');
    expect(cache.has(sig(1))).toBe(true);
    expect(cache.remember(sig(1), now + 65_000)).toBe('replayed');
    expect(cache.remember(sig(2), now + 65_000)).toBe('fresh'); // another signature
    now += 65_000;
    expect(cache.remember(sig(1), now + 65_000)).toBe('replayed'); // its last valid moment
    now += 1;
    expect(cache.has(sig(1))).toBe(false);
  });

  it('keys by the bytes, wherever they sit in a buffer', () => {
    const cache = new ReplayCache();
    const a = new Uint8Array(100);
    a.set(sig(9), 10);
    expect(cache.remember(a.subarray(10, 74), Date.now() + 60_000)).toBe('fresh');
    expect(cache.remember(Uint8Array.from(sig(9)), Date.now() + 60_000)).toBe('replayed');
  });

  it('holds at most maxEntries: full while all are valid, room again once some expire (and their entries are dropped)', () => {
    let now = 5_000_000;
    const cache = new ReplayCache({ maxEntries: 3, now: () => now });
    expect(cache.remember(sig(1), now + 10_000)).toBe('fresh');
    expect(cache.remember(sig(2), now + 20_000)).toBe('fresh');
    expect(cache.remember(sig(3), now + 300_000)).toBe('fresh');
    expect(cache.remember(sig(4), now + 10_000)).toBe('full');
    expect(cache.size).toBe(3);
    now += 15_000; // sig(1) expired
    expect(cache.remember(sig(4), now + 10_000)).toBe('fresh');
    expect(cache.size).toBe(3);
    expect(cache.has(sig(1))).toBe(false);
    expect(cache.has(sig(3))).toBe(true);
  });

  it('drops expired entries as time passes, so memory follows the signatures still valid', () => {
    let now = 9_000_000;
    const cache = new ReplayCache({ now: () => now });
    for (let i = 0; i < 5000; i++) cache.remember(sig(i), now + 65_000);
    expect(cache.size).toBe(5000);
    now += 66_000;
    cache.remember(sig(60_000), now + 65_000); // a sweep at most once a second
    expect(cache.size).toBe(1);
  });

  it('refuses a bad bound', () => {
    expect(() => new ReplayCache({ maxEntries: 0 })).toThrow(/maxEntries must be a positive integer/);
  });
});
