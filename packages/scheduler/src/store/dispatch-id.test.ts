import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { dispatchIdFloor, encodeDispatchId, newDispatchId } from './dispatch-id.js';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** The base32 characters as one integer (a BigInt reference, independent of the encoder's arithmetic). */
function decode(chars: string): bigint {
  let n = 0n;
  for (const c of chars) {
    const v = ALPHABET.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    n = n * 32n + BigInt(v);
  }
  return n;
}

describe('dispatch IDs', () => {
  it('are 26 base32 characters: the time in ms, then 80 bits', () => {
    const now = Date.UTC(2026, 11, 6, 13, 0, 0, 123);
    const id = newDispatchId(now);
    expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(decode(id.slice(0, 10))).toBe(BigInt(now));
    expect(decode(id.slice(10))).toBeLessThan(2n ** 80n);
  });

  it('encode the 80 random bits as their base32 number (a BigInt reference)', () => {
    const vectors = [new Uint8Array(10), new Uint8Array(10).fill(0xff), Uint8Array.from([0x80, 0, 0, 0, 0, 0xff, 0, 0, 0, 1])];
    for (let i = 0; i < 2000; i++) vectors.push(new Uint8Array(randomBytes(10)));
    for (const random of vectors) {
      const expected = [...random].reduce((n, b) => (n << 8n) | BigInt(b), 0n);
      const id = encodeDispatchId(1_700_000_000_000, random);
      expect(id).toHaveLength(26);
      expect(decode(id.slice(10))).toBe(expected);
    }
  });

  it('made in the same millisecond count up by one over the whole 80 bits (carries across bytes and halves)', () => {
    const now = Date.UTC(2030, 0, 1);
    let previous = newDispatchId(now);
    for (let i = 0; i < 5000; i++) {
      const id = newDispatchId(now);
      expect(id > previous).toBe(true);
      expect(decode(id.slice(10)) - decode(previous.slice(10))).toBe(1n);
      previous = id;
    }
  });

  it('draw fresh random bits in each new millisecond (past a refill of the random pool)', () => {
    const t = Date.UTC(2031, 0, 1);
    const parts = Array.from({ length: 500 }, (_, i) => newDispatchId(t + i).slice(10));
    expect(new Set(parts).size).toBe(500);
  });

  it('floors: the smallest ID of a time, the largest time', () => {
    expect(dispatchIdFloor(0)).toBe('0'.repeat(26));
    expect(dispatchIdFloor(2 ** 48 - 1)).toBe(`7${'Z'.repeat(9)}${'0'.repeat(16)}`);
    const t = Date.UTC(2026, 0, 1);
    expect(dispatchIdFloor(t) <= newDispatchId(t)).toBe(true);
  });
});
