/**
 * Durations written as milliseconds or as text (`'500ms'`, `'5s'`, `'5m'`,
 * `'1h'`, `'2d'`, and sums such as `'1h30m'`).
 * @module
 */

/** A duration: milliseconds, or text such as `'5m'` or `'1h30m'`. */
export type DurationInput = number | string;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration into milliseconds.
 *
 * @example
 * ```ts
 * parseDuration('1h30m'); // 5_400_000
 * parseDuration(250);     // 250
 * ```
 */
export function parseDuration(input: DurationInput, what = 'duration'): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new RangeError(`${what} must be a finite number of milliseconds >= 0, got ${input}`);
    return input;
  }
  const text = String(input).trim();
  const re = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * (UNITS[m[2] as string] as number);
    matched = re.lastIndex;
  }
  if (text === '' || matched !== text.length) {
    throw new RangeError(`${what} must be milliseconds or text like '500ms', '5s', '5m', '1h', '2d' or '1h30m', got ${JSON.stringify(input)}`);
  }
  return total;
}
