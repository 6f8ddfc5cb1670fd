/**
 * Declared limits of a function (`dispatch.function({ concurrency,
 * rateLimit })`): validated when the function is registered, then carried on
 * every call of it (`Call.limits`, with the call's key computed from its
 * arguments) for the scheduler to enforce.
 * @module
 */
import type { ICallLimits } from '../protocol/proto.js';

/**
 * A limit's key: computed from the call's arguments; calls with the same key
 * share the limit, calls with different keys do not (one customer's burst
 * does not hold back the others).
 * @example
 * const key: LimitKey<[userId: string, cart: Cart]> = (userId) => userId;
 */
export type LimitKey<A extends unknown[]> = (...args: A) => string | number;

/**
 * At most this many calls of the function running at once: a number for the
 * whole function, or `{ limit, key }` per key.
 * @example
 * const c: ConcurrencyOption<[string]> = { limit: 2, key: (userId) => userId };
 */
export type ConcurrencyOption<A extends unknown[] = unknown[]> = number | { limit: number; key: LimitKey<A> };

/**
 * At most N starts in any window of a period: `'50/s'`, `'10/m'`, `'1000/h'`
 * (also `'5/2s'`, `'100/1d'`), for the whole function, or `{ limit, key }`
 * per key.
 * @example
 * const r: RateLimitOption<[string]> = { limit: '5/s', key: (userId) => userId };
 */
export type RateLimitOption<A extends unknown[] = unknown[]> = string | { limit: string; key: LimitKey<A> };

/** Longest key carried on a call, in UTF-16 code units. */
export const MAX_LIMIT_KEY_LENGTH = 256;

const PERIODS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const RATE = /^\s*(\d+)\s*\/\s*(\d*)\s*(ms|s|m|h|d)\s*$/;

/**
 * Parses a rate such as `'50/s'` into a count and a period in milliseconds.
 * @example
 * parseRateLimit('10/m', 'charge'); // { count: 10, periodMs: 60_000 }
 */
export function parseRateLimit(text: unknown, fn: string): { count: number; periodMs: number } {
  const m = typeof text === 'string' ? RATE.exec(text) : null;
  const count = m ? Number(m[1]) : 0;
  const periodMs = m ? (m[2] ? Number(m[2]) : 1) * (PERIODS[m[3] as string] as number) : 0;
  if (!m || !Number.isSafeInteger(count) || count < 1 || count > 4_294_967_295 || periodMs < 1 || periodMs > 366 * 86_400_000) {
    throw new TypeError(
      `invalid rateLimit of ${fn}: ${JSON.stringify(text)}; write a count per period such as '50/s', '10/m', '1000/h' or '5/2s' (count ≥ 1; period units ms, s, m, h, d)`,
    );
  }
  return { count, periodMs };
}

function checkConcurrency(limit: unknown, fn: string): number {
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1_000_000) {
    throw new TypeError(`invalid concurrency of ${fn}: ${String(limit)}; write a whole number from 1 to 1000000, or { limit: 2, key: (arg) => arg.userId }`);
  }
  return limit;
}

/**
 * Validates the declared limits of a function and returns what computes the
 * `Call.limits` of each call from its arguments; `undefined` when the
 * function declares none. Throws a `TypeError` naming the bad option.
 * @example
 * const limitsOf = resolveLimits('checkout', { concurrency: { limit: 2, key: (u: string) => u } });
 * limitsOf?.(['u1']); // { concurrency: 2, concurrencyPerKey: true, key: 'u1' }
 */
export function resolveLimits<A extends unknown[]>(
  fn: string,
  options: { concurrency?: ConcurrencyOption<A> | undefined; rateLimit?: RateLimitOption<A> | undefined },
): ((args: A) => ICallLimits) | undefined {
  const { concurrency, rateLimit } = options;
  if (concurrency === undefined && rateLimit === undefined) return undefined;
  const base: ICallLimits = {};
  let key: LimitKey<A> | undefined;
  const keyOf = (k: unknown, which: string): LimitKey<A> => {
    if (typeof k !== 'function') throw new TypeError(`invalid ${which} of ${fn}: key must be a function of the call's arguments, got ${typeof k}`);
    if (key && key !== k) {
      throw new TypeError(`invalid limits of ${fn}: concurrency and rateLimit have different key functions; pass the same function to both (a call has one key)`);
    }
    return k as LimitKey<A>;
  };
  if (concurrency !== undefined) {
    if (typeof concurrency === 'object' && concurrency !== null) {
      base.concurrency = checkConcurrency(concurrency.limit, fn);
      base.concurrencyPerKey = true;
      key = keyOf(concurrency.key, 'concurrency');
    } else {
      base.concurrency = checkConcurrency(concurrency, fn);
    }
  }
  if (rateLimit !== undefined) {
    const perKey = typeof rateLimit === 'object' && rateLimit !== null;
    const { count, periodMs } = parseRateLimit(perKey ? rateLimit.limit : rateLimit, fn);
    base.rateCount = count;
    base.ratePeriodMs = periodMs;
    if (perKey) {
      base.ratePerKey = true;
      key = keyOf(rateLimit.key, 'rateLimit');
    }
  }
  if (!key) return () => base;
  const keyFn = key;
  return (args: A) => {
    const k = keyFn(...args);
    if ((typeof k !== 'string' && typeof k !== 'number') || (typeof k === 'number' && !Number.isFinite(k))) {
      throw new TypeError(`the limit key of ${fn} must be a string or a finite number, got ${k === null ? 'null' : typeof k}; check its key function`);
    }
    const text = String(k);
    if (text.length > MAX_LIMIT_KEY_LENGTH) {
      throw new TypeError(`the limit key of ${fn} is ${text.length} characters long, over the limit of ${MAX_LIMIT_KEY_LENGTH}; key on an ID rather than on a whole value`);
    }
    return { ...base, key: text };
  };
}
