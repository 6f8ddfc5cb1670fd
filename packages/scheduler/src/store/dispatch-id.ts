/**
 * Dispatch IDs: 26 characters of Crockford base32 (like a ULID), 48 bits of
 * creation time in milliseconds followed by 80 random bits. They sort by
 * creation time, so stores can page through calls in ID order.
 * @module
 */
import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

let lastTime = -1;
let lastRandom: Uint8Array = new Uint8Array(10);

/** Random bytes drawn 1 KiB at a time (a call to the generator per ID cost ~1.5% of an awaited call in process). */
const pool = new Uint8Array(1024);
let poolAt = pool.length;

/** 10 fresh random bytes. */
function random10(): Uint8Array {
  if (poolAt + 10 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  poolAt += 10;
  return pool.slice(poolAt - 10, poolAt);
}

/** The alphabet's character codes. */
const CODES = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0));
/** The ID being encoded, one byte a character (read as one Latin-1 string: no string per character). */
const out = Buffer.alloc(26);

/** `n` (an integer below 2^(5·count)) as `count` base32 characters at `at` of {@link out}, most significant first. */
function base32(n: number, count: number, at: number): void {
  for (let i = at + count - 1; i >= at; i--) {
    out[i] = CODES[n % 32]!;
    n = Math.floor(n / 32);
  }
}

/** 40 bits of `bytes` from `at` (5 bytes, big-endian) as a number (exact: below 2^53). */
function bits40(bytes: Uint8Array, at: number): number {
  const low = ((bytes[at + 1]! << 24) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 8) | bytes[at + 4]!) >>> 0;
  return bytes[at]! * 2 ** 32 + low;
}

/**
 * 48 bits of time then the 80 random bits, in base32: 10 + 16 characters.
 * The random part is two 40-bit halves of 8 characters each (40 is a
 * multiple of 5, so this is the base32 of the whole 80-bit number), in plain
 * number arithmetic: BigInt cost ~2% of the scheduler's CPU per call.
 * Exported for tests only (not re-exported by the package).
 * @example
 * encodeDispatchId(0, new Uint8Array(10)); // '00000000000000000000000000'
 */
export function encodeDispatchId(time: number, random: Uint8Array): string {
  base32(time, 10, 0);
  base32(bits40(random, 0), 8, 10);
  base32(bits40(random, 5), 8, 18);
  return out.toString('latin1', 0, 26);
}

/**
 * A new dispatch ID. IDs made in the same millisecond by one process are
 * strictly increasing.
 * @example
 * const id = newDispatchId(); // '01JD3Z8Q4X5N7V2K9M1B3C5D7F'
 */
export function newDispatchId(now: number = Date.now()): string {
  if (now <= lastTime) {
    // Same millisecond (or a clock step back): increment the random part (in place: this module's own copy).
    const next = lastRandom;
    for (let i = next.length - 1; i >= 0; i--) {
      const v = (next[i] ?? 0) + 1;
      next[i] = v & 0xff;
      if (v <= 0xff) break;
    }
    return encodeDispatchId(lastTime, next);
  }
  lastTime = now;
  lastRandom = random10();
  return encodeDispatchId(now, lastRandom);
}

/**
 * The smallest dispatch ID that can be created at `time` (for range queries).
 * @example
 * const from = dispatchIdFloor(Date.parse('2026-01-01'));
 */
export function dispatchIdFloor(time: number): string {
  return encodeDispatchId(Math.max(0, Math.floor(time)), new Uint8Array(10));
}
