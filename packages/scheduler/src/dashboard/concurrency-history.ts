/**
 * The adaptive limits of the last minutes, per (endpoint, function), kept in
 * memory for the dashboard's charts: a sample every few seconds, and one at
 * each change of a limit's integer part.
 * @module
 */
import type { ConcurrencySnapshot } from '../run/concurrency.js';

/** How far back the charts go. */
export const HISTORY_WINDOW_MS = 15 * 60_000;
/** Spacing of periodic samples. */
export const SAMPLE_EVERY_MS = 2_000;
/** Most (endpoint, function) pairs remembered (the least recently changed are dropped). */
export const MAX_SERIES = 500;

/** `[time in ms, limit, in flight]` */
export type Sample = [number, number, number];

/**
 * One pair's current limit and its samples, oldest first.
 * @example
 * const s: ConcurrencySeries = history.series()[0]!;
 */
export interface ConcurrencySeries extends ConcurrencySnapshot {
  samples: Sample[];
}

/**
 * Samples of the limits.
 * @example
 * const history = new ConcurrencyHistory(() => scheduler.concurrencyAll());
 * scheduler.on('concurrency', (s) => history.record(s));
 * history.start();
 */
export class ConcurrencyHistory {
  readonly #data = new Map<string, { current: ConcurrencySnapshot; samples: Sample[] }>();
  #timer: NodeJS.Timeout | null = null;

  readonly #snapshots: () => ConcurrencySnapshot[];
  readonly #now: () => number;
  constructor(
    snapshots: () => ConcurrencySnapshot[],
    now: () => number = Date.now,
  ) {
    this.#now = now;
    this.#snapshots = snapshots;
  }

  /** Starts periodic sampling (the timer does not keep the process alive). */
  start(): void {
    if (this.#timer) return;
    this.sample();
    this.#timer = setInterval(() => this.sample(), SAMPLE_EVERY_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Samples every pair now. */
  sample(): void {
    for (const s of this.#snapshots()) this.record(s);
  }

  /** Records one pair's snapshot. */
  record(s: ConcurrencySnapshot): void {
    const key = `${s.endpoint}\u0000${s.function}`;
    const t = this.#now();
    let entry = this.#data.get(key);
    if (!entry) {
      if (this.#data.size >= MAX_SERIES) {
        const oldest = this.#data.keys().next().value;
        if (oldest !== undefined) this.#data.delete(oldest);
      }
      entry = { current: s, samples: [] };
    } else {
      this.#data.delete(key); // re-insert: most recent last
    }
    this.#data.set(key, entry);
    entry.current = { ...s };
    const last = entry.samples[entry.samples.length - 1];
    const limit = Math.floor(s.limit);
    // Keep the series short: a repeat of the last value only moves its end forward.
    const prev = entry.samples[entry.samples.length - 2];
    if (last && prev && last[1] === limit && last[2] === s.inFlight && prev[1] === limit && prev[2] === s.inFlight) last[0] = t;
    else entry.samples.push([t, limit, s.inFlight]);
    const from = t - HISTORY_WINDOW_MS;
    while (entry.samples.length > 2 && entry.samples[1]![0] < from) entry.samples.shift();
  }

  /** Every pair, with its samples of the window. */
  series(): ConcurrencySeries[] {
    return [...this.#data.values()]
      .map(({ current, samples }) => ({ ...current, samples: samples.map((x) => [...x] as Sample) }))
      .sort((a, b) => a.endpoint.localeCompare(b.endpoint) || a.function.localeCompare(b.function));
  }
}
