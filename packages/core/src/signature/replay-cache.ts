/**
 * The signatures an endpoint has accepted, remembered until they expire, so
 * that a signed request captured on the way (or sent twice) is refused the
 * second time. Keyed by the signature's bytes; bounded in entries.
 * @module
 */

/**
 * Most signatures a {@link ReplayCache} holds by default: 100,000 (about 14
 * MB). With this project's scheduler, a signature lives 65 s (60 s of
 * validity and 5 s of clock skew), so that is about 1,500 requests a second
 * sustained; a cache that is full answers 503 until entries expire.
 * @example new ReplayCache({ maxEntries: DEFAULT_REPLAY_CACHE_ENTRIES * 4 })
 */
export const DEFAULT_REPLAY_CACHE_ENTRIES = 100_000;

/**
 * What {@link ReplayCache.remember} answers: `'fresh'` (recorded now),
 * `'replayed'` (seen before, still valid: refuse the request) or `'full'`
 * (the cache holds `maxEntries` signatures that are all still valid: the
 * request cannot be checked, refuse it for now).
 * @example
 * if (cache.remember(bytes, validUntilMs) !== 'fresh') return refuse();
 */
export type ReplayVerdict = 'fresh' | 'replayed' | 'full';

/**
 * A bounded set of signatures with their expiry. Entries are dropped once
 * expired (swept by the second of their expiry, so a sweep costs the number
 * of entries it drops); it never holds more than `maxEntries`.
 *
 * It lives in one process: an app of several processes behind a load
 * balancer has one per process, so a replay sent to another process within
 * the signature's validity is not detected there (keep validity short: this
 * project's scheduler signs for 60 s).
 *
 * @example
 * ```ts
 * const cache = new ReplayCache();
 * cache.remember(signatureBytes, Date.now() + 65_000); // 'fresh'
 * cache.remember(signatureBytes, Date.now() + 65_000); // 'replayed'
 * ```
 */
export class ReplayCache {
  /** Most entries held. */
  readonly maxEntries: number;
  readonly #expiry = new Map<string, number>();
  /** Keys by the second they expire in; a Map keeps the seconds in insertion order, not sorted. */
  readonly #bySecond = new Map<number, string[]>();
  readonly #now: () => number;
  #sweptAt = 0;

  constructor(options: { maxEntries?: number; now?: () => number } = {}) {
    const max = options.maxEntries ?? DEFAULT_REPLAY_CACHE_ENTRIES;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxEntries must be a positive integer, got ${max}`);
    this.maxEntries = max;
    this.#now = options.now ?? Date.now;
  }

  /** Number of signatures held (expired ones may remain until the next sweep). */
  get size(): number {
    return this.#expiry.size;
  }

  /** True if `signature` was remembered and has not expired. */
  has(signature: Uint8Array): boolean {
    const until = this.#expiry.get(keyOf(signature));
    return until !== undefined && until >= this.#now();
  }

  /**
   * Records `signature` as used until `validUntilMs` unless it is already
   * known: see {@link ReplayVerdict}. Call it once the signature has been
   * verified (an unverified one must not take a place).
   */
  remember(signature: Uint8Array, validUntilMs: number): ReplayVerdict {
    const now = this.#now();
    const key = keyOf(signature);
    const until = this.#expiry.get(key);
    if (until !== undefined && until >= now) return 'replayed';
    if (this.#expiry.size >= this.maxEntries || now - this.#sweptAt >= 1000) this.sweep();
    if (this.#expiry.size >= this.maxEntries) return 'full';
    this.#expiry.set(key, validUntilMs);
    const second = Math.floor(validUntilMs / 1000);
    const keys = this.#bySecond.get(second);
    if (keys) keys.push(key);
    else this.#bySecond.set(second, [key]);
    return 'fresh';
  }

  /** Drops every expired entry. */
  sweep(): void {
    const now = this.#now();
    this.#sweptAt = now;
    const current = Math.floor(now / 1000);
    for (const [second, keys] of this.#bySecond) {
      if (second >= current) continue;
      this.#bySecond.delete(second);
      for (const key of keys) {
        const until = this.#expiry.get(key);
        if (until !== undefined && until < now) this.#expiry.delete(key);
      }
    }
  }
}

/** The signature's bytes as a compact string key (one character per byte). */
function keyOf(signature: Uint8Array): string {
  return Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength).toString('latin1');
}
