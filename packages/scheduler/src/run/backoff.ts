/**
 * Retry delays: exponential backoff with jitter (PROTOCOL.md 8.10).
 * @module
 */
import { SCHEDULER_DEFAULTS } from '../options.js';

/**
 * How retries are spaced; defaults in `SCHEDULER_DEFAULTS.backoff`.
 * @example
 * const backoff: BackoffOptions = { initialMs: 200, maxMs: 30_000, multiplier: 2, throttledFactor: 4, jitter: 'equal' };
 */
export interface BackoffOptions {
  /**
   * Delay scale of the first retry, in ms.
   * @example { initialMs: 250 }
   */
  initialMs?: number;
  /**
   * Cap of any delay, in ms.
   * @example { maxMs: 10_000 }
   */
  maxMs?: number;
  /**
   * Growth per consecutive failure.
   * @example { multiplier: 3 }
   */
  multiplier?: number;
  /**
   * THROTTLED backs off harder: its delays are this many times longer, still
   * within `maxMs`.
   * @example { throttledFactor: 8 }
   */
  throttledFactor?: number;
  /**
   * - `equal`: half the exponential delay plus a random part of up
   *   to the other half, so delays never collapse to zero and never shrink
   *   from one failure to the next.
   * - `full`: a random delay between 0 and the exponential delay (AWS "full
   *   jitter": spreads herds best, but a retry may come almost at once).
   * - `none`: exactly the exponential delay (deterministic, for tests).
   * @example { jitter: 'full' }
   */
  jitter?: 'equal' | 'full' | 'none';
}

/**
 * Backoff options with every default filled in.
 * @example
 * const b: ResolvedBackoff = resolveBackoff({ initialMs: 50 });
 */
export type ResolvedBackoff = Required<BackoffOptions>;

/**
 * Fills in the defaults and checks the values.
 * @example
 * const b = resolveBackoff({ initialMs: 10 });
 */
export function resolveBackoff(options: BackoffOptions = {}): ResolvedBackoff {
  const d = SCHEDULER_DEFAULTS.backoff;
  const b: ResolvedBackoff = {
    initialMs: options.initialMs ?? d.initialMs,
    maxMs: options.maxMs ?? d.maxMs,
    multiplier: options.multiplier ?? d.multiplier,
    throttledFactor: options.throttledFactor ?? d.throttledFactor,
    jitter: options.jitter ?? d.jitter,
  };
  for (const key of ['initialMs', 'maxMs', 'multiplier', 'throttledFactor'] as const) {
    if (!(Number.isFinite(b[key]) && b[key] > 0)) {
      throw new RangeError(`backoff.${key} must be a positive number, got ${String(options[key])}`);
    }
  }
  if (b.multiplier < 1) throw new RangeError(`backoff.multiplier must be at least 1, got ${b.multiplier}`);
  if (!['equal', 'full', 'none'].includes(b.jitter)) {
    throw new RangeError(`backoff.jitter must be 'equal', 'full' or 'none', got ${JSON.stringify(b.jitter)}`);
  }
  return b;
}

/**
 * The delay before the next attempt after `failures` consecutive failures
 * (1 for the first retry): `base = min(maxMs, initialMs × multiplier^(failures−1) × (throttled ? throttledFactor : 1))`,
 * then jitter.
 * @example
 * backoffDelay(resolveBackoff({ jitter: 'none' }), 3, false); // 400
 */
export function backoffDelay(b: ResolvedBackoff, failures: number, throttled: boolean, random: () => number = Math.random): number {
  const n = Math.max(1, failures);
  const exp = b.initialMs * b.multiplier ** Math.min(n - 1, 64) * (throttled ? b.throttledFactor : 1);
  const base = Math.min(b.maxMs, exp);
  switch (b.jitter) {
    case 'none':
      return base;
    case 'full':
      return random() * base;
    default:
      return base / 2 + (random() * base) / 2;
  }
}
