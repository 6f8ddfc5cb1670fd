/**
 * Declared limits (issue 16), the part both stores share: what a call
 * carries (`Call.limits`), how the allowance of a claim is computed from the
 * calls running and the starts of the rate window, the fair (round-robin)
 * order across keys, and the rate window's buckets. The stores only count
 * and write, in the claim's transaction (PostgreSQL: under a row lock of the
 * function's `function_limits` row, so that instances sharing the database
 * claim a limited function one at a time).
 *
 * Scope: a limit applies to an (endpoint, function) pair, as the scheduler
 * knows functions (the same as adaptive concurrency).
 *
 * The rate window: starts are counted in buckets of a twentieth of the
 * period; a start counts against the limit until the end of its bucket plus
 * the period plus a margin ({@link rateMarginMs}: a fifth of a second for a
 * per-second rate, at most a quarter of the period). The scheduler dates a
 * start when it claims the call; the app starts the body later (signing,
 * the network, the app's event loop: milliseconds, up to hundreds on a
 * loaded machine). The margin keeps that delay from letting the app see more
 * than N starts in a window of the period; a saturated rate runs at about
 * 80-95% of the declared one.
 * @module
 */
import type { proto } from '@dispatch/core/protocol';

/**
 * The limits declared for an (endpoint, function) pair; 0 means none.
 * @example
 * const spec: LimitSpec = { concurrency: 2, concurrencyPerKey: true, rateCount: 0, ratePeriodMs: 0, ratePerKey: false };
 */
export interface LimitSpec {
  concurrency: number;
  concurrencyPerKey: boolean;
  rateCount: number;
  ratePeriodMs: number;
  ratePerKey: boolean;
}

/**
 * The limits a call carries, and its key.
 * @example
 * const declared: DeclaredLimits = { spec, key: 'u1' };
 */
export interface DeclaredLimits {
  spec: LimitSpec;
  /** The call's key; '' without a per-key limit. */
  key: string;
}

/** The longest key a call may carry (the SDK's limit). */
export const MAX_LIMIT_KEY_LENGTH = 256;

/**
 * Reads `Call.limits` (null when the call carries none); throws a message
 * naming the bad field.
 * @example
 * const declared = limitsOfCall(call.limits);
 */
export function limitsOfCall(l: proto.ICallLimits | null | undefined): DeclaredLimits | null {
  if (!l) return null;
  const concurrency = l.concurrency ?? 0;
  const rateCount = l.rateCount ?? 0;
  // A Long's own toNumber: Number(long) goes through its decimal text (a microsecond a call).
  const period = l.ratePeriodMs ?? 0;
  const ratePeriodMs = typeof period === 'object' ? period.toNumber() : Number(period);
  if (rateCount > 0 && !(ratePeriodMs >= 1 && ratePeriodMs <= 366 * 86_400_000)) {
    throw new RangeError(`limits.rate_period_ms must be from 1 ms to 366 days when rate_count is set, got ${ratePeriodMs}`);
  }
  const key = l.key ?? '';
  if (key.length > MAX_LIMIT_KEY_LENGTH) throw new RangeError(`limits.key is ${key.length} characters long, over ${MAX_LIMIT_KEY_LENGTH}`);
  const spec: LimitSpec = {
    concurrency,
    concurrencyPerKey: concurrency > 0 && !!l.concurrencyPerKey,
    rateCount,
    ratePeriodMs: rateCount > 0 ? ratePeriodMs : 0,
    ratePerKey: rateCount > 0 && !!l.ratePerKey,
  };
  return { spec, key: isKeyed(spec) ? key : '' };
}

/** `true` when the spec limits anything. @example hasLimits(spec) */
export function hasLimits(s: LimitSpec | null | undefined): s is LimitSpec {
  return !!s && (s.concurrency > 0 || s.rateCount > 0);
}

/** `true` when a limit applies per key. @example isKeyed(spec) */
export function isKeyed(s: LimitSpec): boolean {
  return s.concurrencyPerKey || s.ratePerKey;
}

/** `true` when two specs limit the same way (checked for every call a store inserts). @example sameSpec(known, declared.spec) */
export function sameSpec(a: LimitSpec, b: LimitSpec): boolean {
  return (
    a.concurrency === b.concurrency &&
    a.concurrencyPerKey === b.concurrencyPerKey &&
    a.rateCount === b.rateCount &&
    a.ratePeriodMs === b.ratePeriodMs &&
    a.ratePerKey === b.ratePerKey
  );
}

/**
 * A rate as users write it: `'5/s'`, `'10/m'`, `'1000/h'`, `'5/2s'`.
 * @example formatRate(5, 1000) // '5/s'
 */
export function formatRate(count: number, periodMs: number): string {
  const units: Array<[string, number]> = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  for (const [u, ms] of units) {
    if (periodMs % ms === 0) return periodMs === ms ? `${count}/${u}` : `${count}/${periodMs / ms}${u}`;
  }
  return `${count}/${periodMs}ms`;
}

/**
 * The rate window's geometry at `now`: the bucket width, the bucket a start
 * at `now` goes in, and the oldest bucket that still counts.
 * @example
 * const w = rateWindow(1000, Date.now()); // { bucketMs: 50, bucket, oldest }
 */
export function rateWindow(periodMs: number, now: number): { bucketMs: number; bucket: number; oldest: number } {
  const bucketMs = Math.max(1, Math.ceil(periodMs / 20));
  const bucket = Math.floor(now / bucketMs);
  // A start in bucket b counts while now < (b + 1) * w + period + margin.
  const oldest = Math.floor((now - periodMs - rateMarginMs(periodMs) - bucketMs) / bucketMs) + 1;
  return { bucketMs, bucket, oldest };
}

/**
 * How long after its period a start still counts against a rate limit: a
 * twentieth of the period, at least 200 ms, at most a quarter of the period.
 * @example rateMarginMs(1000) // 200
 */
export function rateMarginMs(periodMs: number): number {
  return Math.min(periodMs / 4, Math.max(periodMs / 20, 200));
}

/**
 * When the oldest counted bucket stops counting (the earliest time the rate
 * may let another call start).
 * @example rateFreesAt(1000, oldestBucketWithStarts)
 */
export function rateFreesAt(periodMs: number, oldestCounted: number): number {
  const { bucketMs } = rateWindow(periodMs, 0);
  return Math.ceil((oldestCounted + 1) * bucketMs + periodMs + rateMarginMs(periodMs));
}

/**
 * What a claim of a limited function may take. `running` and `used` count
 * the function as a whole; `keys` give them per key (only the keys with due
 * calls).
 * @example
 * const a = allowance(spec, 10, { running: 1, used: 0 }, [{ key: 'u1', running: 1, used: 0 }]);
 */
export function allowance(
  s: LimitSpec,
  cap: number,
  total: { running: number; used: number },
  keys: ReadonlyArray<{ key: string; running: number; used: number }>,
): { total: number; perKey: Map<string, number>; bound: 'concurrency' | 'rate' | null } {
  let t = Math.max(0, cap);
  let bound: 'concurrency' | 'rate' | null = null;
  if (s.concurrency > 0 && !s.concurrencyPerKey) {
    const left = Math.max(0, s.concurrency - total.running);
    if (left < t) bound = 'concurrency';
    t = Math.min(t, left);
  }
  if (s.rateCount > 0 && !s.ratePerKey) {
    const left = Math.max(0, s.rateCount - total.used);
    if (left < t) bound = 'rate';
    t = Math.min(t, left);
  }
  const perKey = new Map<string, number>();
  for (const k of keys) {
    let a = t;
    if (s.concurrencyPerKey) {
      const left = Math.max(0, s.concurrency - k.running);
      if (left < a && left === 0) bound ??= 'concurrency';
      a = Math.min(a, left);
    }
    if (s.ratePerKey) {
      const left = Math.max(0, s.rateCount - k.used);
      if (left < a && left === 0) bound ??= 'rate';
      a = Math.min(a, left);
    }
    perKey.set(k.key, a);
  }
  return { total: t, perKey, bound };
}

/**
 * Fair order across keys: the first due call of every key, then the second
 * of every key, and so on (keys in the order given: oldest first), at most
 * `total` calls. One key's backlog never delays another key's first call.
 * @example
 * const picked = roundRobin(new Map([['a', [1, 2, 3]], ['b', [4]]]), 3); // [1, 4, 2]
 */
export function roundRobin<T>(perKey: ReadonlyMap<string, readonly T[]>, total: number): T[] {
  const lists = [...perKey.values()];
  const out: T[] = [];
  for (let round = 0; out.length < total; round++) {
    let any = false;
    for (const list of lists) {
      if (round < list.length) {
        any = true;
        out.push(list[round]!);
        if (out.length >= total) break;
      }
    }
    if (!any) break;
  }
  return out;
}

/**
 * Why a due call waits, for `dispatch get`/`ls` and the dashboard: the limit
 * reached, or null when none is.
 * @example
 * const wait = limitWait(spec, 'u1', { running: 2, used: 0 }, { running: 2, used: 0 });
 */
export function limitWait(
  s: LimitSpec,
  key: string,
  total: { running: number; used: number },
  ofKey: { running: number; used: number },
): proto.ILimitWait | null {
  if (s.concurrency > 0) {
    const used = s.concurrencyPerKey ? ofKey.running : total.running;
    if (used >= s.concurrency) return { kind: 'concurrency', limit: s.concurrency, key: s.concurrencyPerKey ? key : '', used };
  }
  if (s.rateCount > 0) {
    const used = s.ratePerKey ? ofKey.used : total.used;
    if (used >= s.rateCount) return { kind: 'rate', limit: s.rateCount, periodMs: s.ratePeriodMs, key: s.ratePerKey ? key : '', used };
  }
  return null;
}

/**
 * A limit wait as the CLI and the dashboard print it.
 * @example
 * limitWaitText({ kind: 'concurrency', limit: 2, key: 'u1' }, 'checkout'); // 'concurrency limit 2 of checkout, key u1'
 */
export function limitWaitText(w: proto.ILimitWait, fn: string): string {
  const what = w.kind === 'rate' ? `rate limit ${formatRate(w.limit ?? 0, Number(w.periodMs ?? 0))}` : `concurrency limit ${w.limit ?? 0}`;
  return `${what} of ${fn}${w.key ? `, key ${w.key}` : ''}`;
}
