/**
 * Adaptive concurrency (PROTOCOL.md 8.11): one AIMD limit per (endpoint,
 * function), kept in memory by each scheduler instance. With several
 * instances on one store, each adapts its own limit from the statuses it
 * sees, within `max / N` where N is the number of live instances (from the
 * store's heartbeats, {@link ConcurrencyController.setInstances}): together
 * they stay within the configured `max`, and an endpoint that struggles says
 * so to every instance that calls it.
 * @module
 */
import type { Status } from '@dispatch/core/protocol';
import { concurrencyEffect } from '@dispatch/core/protocol';
import { SCHEDULER_DEFAULTS } from '../options.js';

/**
 * Bounds and steps of the adaptive limit; defaults in
 * `SCHEDULER_DEFAULTS.concurrency`.
 * @example
 * const c: ConcurrencyOptions = { initial: 10, min: 1, max: 200 };
 */
export interface ConcurrencyOptions {
  /**
   * Limit of a pair never seen before (by default at most `max`).
   * @example { initial: 4 }
   */
  initial?: number;
  /**
   * Lowest limit.
   * @example { min: 2 }
   */
  min?: number;
  /**
   * Highest limit.
   * @example { max: 50 }
   */
  max?: number;
  /**
   * Additive increase: each run whose status says "increase" adds
   * `increase / limit`, so the limit grows by about `increase` per limit's
   * worth of successful runs.
   * @example { increase: 2 }
   */
  increase?: number;
  /**
   * Multiplicative decrease: a run whose status says "decrease" multiplies the
   * limit by this factor, at most once per round of requests:
   * runs started before the last decrease do not decrease it again.
   * @example { decreaseFactor: 0.7 }
   */
  decreaseFactor?: number;
}

/**
 * The limit of one (endpoint, function) pair.
 * @example
 * const s: ConcurrencySnapshot = scheduler.concurrency('http://127.0.0.1:8000', 'charge');
 */
export interface ConcurrencySnapshot {
  endpoint: string;
  function: string;
  /** Current limit; its integer part is the number of runs allowed in flight. */
  limit: number;
  inFlight: number;
  min: number;
  max: number;
}

interface Entry {
  limit: number;
  inFlight: number;
  lastDecreaseAt: number;
}

/**
 * The AIMD controller.
 * @example
 * const c = new ConcurrencyController({ initial: 4 });
 * if (c.capacity(ep, fn) > 0) { c.acquire(ep, fn); ...; c.release(ep, fn, Status.OK, startedAt, Date.now()); }
 */
export class ConcurrencyController {
  readonly initial: number;
  readonly min: number;
  readonly max: number;
  readonly #increase: number;
  readonly #decreaseFactor: number;
  readonly #entries = new Map<string, Entry>();
  #share = 1;

  /**
   * @param onChange called when the integer part of a limit changes.
   */
  readonly #onChange: ((snapshot: ConcurrencySnapshot, previous: number) => void) | undefined;
  constructor(
    options: ConcurrencyOptions = {},
    onChange?: (snapshot: ConcurrencySnapshot, previous: number) => void,
  ) {
    this.#onChange = onChange;
    const d = SCHEDULER_DEFAULTS.concurrency;
    this.min = options.min ?? d.min;
    this.max = options.max ?? d.max;
    this.initial = options.initial ?? Math.min(d.initial, this.max);
    this.#increase = options.increase ?? d.increase;
    this.#decreaseFactor = options.decreaseFactor ?? d.decreaseFactor;
    if (!(Number.isInteger(this.min) && this.min >= 1)) throw new RangeError(`concurrency.min must be an integer ≥ 1, got ${this.min}`);
    if (!(Number.isInteger(this.max) && this.max >= this.min)) {
      throw new RangeError(`concurrency.max must be an integer ≥ concurrency.min (${this.min}), got ${this.max}`);
    }
    if (!(this.initial >= this.min && this.initial <= this.max)) {
      throw new RangeError(`concurrency.initial must be within [${this.min}, ${this.max}], got ${this.initial}`);
    }
    if (!(this.#increase > 0)) throw new RangeError(`concurrency.increase must be positive, got ${this.#increase}`);
    if (!(this.#decreaseFactor > 0 && this.#decreaseFactor < 1)) {
      throw new RangeError(`concurrency.decreaseFactor must be within (0, 1), got ${this.#decreaseFactor}`);
    }
  }

  #entry(endpoint: string, fn: string): Entry {
    const key = `${endpoint}\u0000${fn}`;
    let e = this.#entries.get(key);
    if (!e) {
      e = { limit: Math.min(this.initial, this.effectiveMax), inFlight: 0, lastDecreaseAt: Number.NEGATIVE_INFINITY };
      this.#entries.set(key, e);
    }
    return e;
  }

  /** How many more runs of the pair may start now. */
  capacity(endpoint: string, fn: string): number {
    const e = this.#entry(endpoint, fn);
    return Math.max(0, Math.floor(e.limit) - e.inFlight);
  }

  /** Counts a run as started. */
  acquire(endpoint: string, fn: string): void {
    this.#entry(endpoint, fn).inFlight++;
  }

  /**
   * Counts a run as ended and adapts the limit to its status; `status`
   * undefined only releases (a run that produced no status).
   */
  release(endpoint: string, fn: string, status: Status | undefined, startedAt: number, now: number): void {
    const e = this.#entry(endpoint, fn);
    e.inFlight = Math.max(0, e.inFlight - 1);
    if (status === undefined) return;
    const before = e.limit;
    const effect = concurrencyEffect(status);
    if (effect === 'increase') {
      e.limit = Math.min(this.effectiveMax, e.limit + this.#increase / Math.max(1, e.limit));
    } else if (effect === 'decrease' && startedAt >= e.lastDecreaseAt) {
      e.limit = Math.max(this.min, e.limit * this.#decreaseFactor);
      e.lastDecreaseAt = now;
    }
    if (Math.floor(before) !== Math.floor(e.limit)) this.#onChange?.(this.snapshot(endpoint, fn), before);
  }

  /** The current limit of a pair. */
  snapshot(endpoint: string, fn: string): ConcurrencySnapshot {
    const e = this.#entry(endpoint, fn);
    return { endpoint, function: fn, limit: e.limit, inFlight: e.inFlight, min: this.min, max: this.effectiveMax };
  }

  /** Number of instances the bounds are divided among (1 unless {@link setInstances} said otherwise). */
  get instances(): number {
    return this.#share;
  }

  /** Highest limit of this instance: `max` divided among the live instances, at least `min`. */
  get effectiveMax(): number {
    return Math.max(this.min, Math.floor(this.max / this.#share));
  }

  /**
   * Tells how many scheduler instances share the store (live heartbeats,
   * this one included): each keeps its limits within `max / n`, so that
   * together they stay within `max`. Limits above the new share are lowered
   * at once; a larger share lets them grow again. Returns true if it changed.
   * @example
   * controller.setInstances(3); // max 1000 → 333 per instance
   */
  setInstances(n: number): boolean {
    const share = Math.max(1, Math.floor(n));
    if (share === this.#share) return false;
    this.#share = share;
    const cap = this.effectiveMax;
    for (const [key, e] of this.#entries) {
      if (e.limit <= cap) continue;
      const before = e.limit;
      e.limit = cap;
      const [endpoint = '', fn = ''] = key.split('\u0000');
      if (Math.floor(before) !== Math.floor(cap)) this.#onChange?.(this.snapshot(endpoint, fn), before);
    }
    return true;
  }

  /** Every pair seen so far. */
  all(): ConcurrencySnapshot[] {
    return [...this.#entries.keys()].map((k) => {
      const [endpoint = '', fn = ''] = k.split('\u0000');
      return this.snapshot(endpoint, fn);
    });
  }

  /** Runs in flight over all pairs. */
  get totalInFlight(): number {
    let n = 0;
    for (const e of this.#entries.values()) n += e.inFlight;
    return n;
  }
}
