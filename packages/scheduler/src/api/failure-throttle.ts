/**
 * Failed authentications counted per client address: past a number of
 * failures in a minute, the client is refused (429) until the minute is
 * over, whatever it sends. One throttle serves the API's bearer keys and the
 * dashboard's login and bearer keys of a scheduler.
 * @module
 */

/**
 * Failures allowed per client address per minute: 10.
 * @example new FailureThrottle({ maxFailures: MAX_AUTH_FAILURES_PER_MINUTE * 2 })
 */
export const MAX_AUTH_FAILURES_PER_MINUTE = 10;

/** Most addresses tracked; past it the oldest windows are dropped. */
const MAX_CLIENTS = 10_000;
const WINDOW_MS = 60_000;

/**
 * Counts failed authentications per client in one-minute windows.
 * @example
 * if (!throttle.mayTry(ip)) return reply(429, 'too many failed attempts: wait a minute');
 * if (!keyIsRight) throttle.failed(ip);
 */
export class FailureThrottle {
  /** Failures allowed per client per minute. */
  readonly maxFailures: number;
  readonly #failures = new Map<string, { count: number; since: number }>();
  readonly #now: () => number;

  constructor(options: { maxFailures?: number; now?: () => number } = {}) {
    this.maxFailures = options.maxFailures ?? MAX_AUTH_FAILURES_PER_MINUTE;
    this.#now = options.now ?? Date.now;
  }

  /** False while `client` has used up its failures of the current minute. */
  mayTry(client: string): boolean {
    const f = this.#failures.get(client);
    if (!f || this.#now() - f.since > WINDOW_MS) return true;
    return f.count < this.maxFailures;
  }

  /** Seconds until `client` may try again (0 if it may now). */
  retryAfterSeconds(client: string): number {
    const f = this.#failures.get(client);
    if (!f || this.mayTry(client)) return 0;
    return Math.max(1, Math.ceil((f.since + WINDOW_MS - this.#now()) / 1000));
  }

  /** Counts a failure of `client`. */
  failed(client: string): void {
    const now = this.#now();
    const f = this.#failures.get(client);
    if (!f || now - f.since > WINDOW_MS) {
      this.#failures.delete(client); // re-inserted last: the map stays in window order
      this.#failures.set(client, { count: 1, since: now });
    } else f.count++;
    if (this.#failures.size > MAX_CLIENTS) {
      for (const [key, w] of this.#failures) {
        if (this.#failures.size <= MAX_CLIENTS && now - w.since <= WINDOW_MS) break;
        this.#failures.delete(key);
      }
    }
  }
}
