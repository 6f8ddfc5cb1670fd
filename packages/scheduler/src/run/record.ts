/**
 * What the run loop does when the store fails: results are recorded with
 * retries (never dropped), and claims back off while the store fails, with
 * one log line when an outage starts and one when it ends.
 * @module
 */
import type { Logger } from '../logger.js';
import { StoreUnavailableError } from '../store/faults.js';
import type { CompleteRequest, Store } from '../store/store.js';

/** First and longest pause between tries while the store fails, ms. */
const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 5000;
/** Tries of a record that failed with an error that is not a storage error (a bug would otherwise hold the loop forever). */
const OTHER_ERROR_TRIES = 5;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Options of {@link recordResult}.
 * @example
 * const o: RecordOptions = { log, leaseMs: 30_000, stopping: () => false, retrying: (on) => {} };
 */
export interface RecordOptions {
  log: Logger;
  /** The lease length: a scheduler that stops gives up after failing this long (the call runs again when its lease expires). */
  leaseMs: number;
  /** True once the scheduler stops. */
  stopping: () => boolean;
  /** Called with true when the first try failed (the record is being retried), with false when it ends. */
  retrying: (on: boolean) => void;
  /** How to record (default `store.complete`): the run loop's also leases what the result made due. */
  complete?: (req: CompleteRequest) => Promise<boolean>;
}

/**
 * Records the outcome of a run (`store.complete`), retrying with backoff
 * (100 ms doubling, at most 5 s) while the store fails, for as long as it
 * takes: the run loop keeps renewing the call's lease meanwhile, and the
 * lease token makes a late record safe (it is recorded once, or refused if
 * the lease was lost). Gives up only when the scheduler stops and the store
 * has failed for a lease length, or after a few tries of an error that is not
 * a storage error. Answers what `complete` answered (false when it gave up).
 * @example
 * const recorded = await recordResult(store, req, { log, leaseMs, stopping: () => stopping, retrying: () => {} });
 */
export function recordResult(store: Store, req: CompleteRequest, o: RecordOptions): Promise<boolean> {
  // The first try without an async function around it (one promise per record); the retries only when it fails.
  let first: Promise<boolean>;
  try {
    first = o.complete ? o.complete(req) : store.complete(req);
  } catch (err) {
    first = Promise.reject(err);
  }
  return first.then(undefined, (err: unknown) => retryRecord(store, req, o, err));
}

/** {@link recordResult} after its first try failed with `firstError`. */
async function retryRecord(store: Store, req: CompleteRequest, o: RecordOptions, firstError: unknown): Promise<boolean> {
  let delay = FIRST_DELAY_MS;
  let firstFailure = 0;
  let others = 0;
  try {
    for (let tries = 1; ; tries++) {
      try {
        if (tries === 1) throw firstError;
        const recorded = await (o.complete ? o.complete(req) : store.complete(req));
        if (tries > 1) o.log.info(`recorded the result of ${req.id} after ${tries} tries (${Date.now() - firstFailure} ms)`);
        return recorded;
      } catch (err) {
        const storage = err instanceof StoreUnavailableError;
        if (tries === 1) {
          firstFailure = Date.now();
          o.retrying(true);
          o.log.warn(`recording the result of ${req.id} failed: ${(err as Error).message}; retrying until the store takes it (the lease is kept)`);
        }
        if (!storage && ++others >= OTHER_ERROR_TRIES) {
          o.log.error(`recording the result of ${req.id} failed ${others} times: ${(err as Error).stack ?? err}; the call runs again once its lease expires`);
          return false;
        }
        if (o.stopping() && Date.now() - firstFailure >= o.leaseMs) {
          o.log.error(`the scheduler stops and the result of ${req.id} could not be recorded for ${Date.now() - firstFailure} ms: the call runs again once its lease expires`);
          return false;
        }
        await sleep(delay);
        delay = Math.min(MAX_DELAY_MS, delay * 2);
      }
    }
  } finally {
    if (firstFailure) o.retrying(false);
  }
}

/**
 * Claims while the store fails: each failure answers how long to pause
 * (100 ms doubling, at most 5 s); the first failure of an outage is logged
 * as a warning, the end of it once, with its length.
 * @example
 * const outage = new StoreOutage(log);
 * try { await claim(); outage.ok(); } catch (err) { await pause(outage.failed(err)); }
 */
export class StoreOutage {
  #since = 0;
  #failures = 0;
  #delay = FIRST_DELAY_MS;
  readonly #log: Logger;
  constructor(log: Logger) {
    this.#log = log;
  }

  /** A claim failed: logs it (once per outage) and answers the pause before the next try, ms. */
  failed(err: unknown): number {
    this.#failures++;
    if (this.#since === 0) {
      this.#since = Date.now();
      const storage = err instanceof StoreUnavailableError;
      const text = storage ? (err as Error).message : ((err as Error).stack ?? String(err));
      const line = `claiming due calls failed: ${text}; runs are held and claims retried with backoff (at most every ${MAX_DELAY_MS / 1000} s) until the store recovers`;
      if (storage) this.#log.warn(line);
      else this.#log.error(line);
    }
    const delay = this.#delay;
    this.#delay = Math.min(MAX_DELAY_MS, this.#delay * 2);
    return delay;
  }

  /** A claim succeeded: ends the outage (logged once). */
  ok(): void {
    if (this.#since === 0) return;
    this.#log.info(`the store works again: claims resumed after ${Date.now() - this.#since} ms and ${this.#failures} failed tries`);
    this.#since = 0;
    this.#failures = 0;
    this.#delay = FIRST_DELAY_MS;
  }
}
