/**
 * Dispatch IDs: 26 characters of Crockford base32 (like a ULID), 48 bits of
 * creation time in milliseconds followed by 80 random bits. They sort by
 * creation time, so stores can page through calls in ID order.
 * @module
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

let lastTime = -1;
let lastRandom = new Uint8Array(10);

function encode(time: number, random: Uint8Array): string {
  let out = '';
  let t = time;
  const timeChars: string[] = [];
  for (let i = 0; i < 10; i++) {
    timeChars.push(ALPHABET[t % 32] ?? '0');
    t = Math.floor(t / 32);
  }
  out += timeChars.reverse().join('');
  // 80 random bits as 16 base32 characters.
  let bits = 0n;
  for (const b of random) bits = (bits << 8n) | BigInt(b);
  const randChars: string[] = [];
  for (let i = 0; i < 16; i++) {
    randChars.push(ALPHABET[Number(bits & 31n)] ?? '0');
    bits >>= 5n;
  }
  return out + randChars.reverse().join('');
}

/**
 * A new dispatch ID. IDs made in the same millisecond by one process are
 * strictly increasing.
 * @example
 * const id = newDispatchId(); // '01JD3Z8Q4X5N7V2K9M1B3C5D7F'
 */
export function newDispatchId(now: number = Date.now()): string {
  if (now <= lastTime) {
    // Same millisecond (or a clock step back): increment the random part.
    const next = new Uint8Array(lastRandom);
    for (let i = next.length - 1; i >= 0; i--) {
      const v = (next[i] ?? 0) + 1;
      next[i] = v & 0xff;
      if (v <= 0xff) break;
    }
    lastRandom = next;
    return encode(lastTime, next);
  }
  lastTime = now;
  lastRandom = new Uint8Array(randomBytes(10));
  return encode(now, lastRandom);
}

/**
 * The smallest dispatch ID that can be created at `time` (for range queries).
 * @example
 * const from = dispatchIdFloor(Date.parse('2026-01-01'));
 */
export function dispatchIdFloor(time: number): string {
  return encode(Math.max(0, Math.floor(time)), new Uint8Array(10));
}
