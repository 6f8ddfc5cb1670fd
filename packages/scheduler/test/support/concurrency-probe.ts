/**
 * Checks "the app never sees more runs at once than the limit" at every run
 * the app starts, not only against the final or the highest limit.
 *
 * The adaptive limit moves while runs are in flight: after a decrease, runs
 * claimed under the old limit may still be running (or still on their way to
 * the app), so the right bound for the runs the app has at once is the limit
 * under which the newest of them was claimed. The probe wraps the scheduler's
 * `store.claimDue` and `store.insertAndClaim` (an observer: the claim itself is unchanged) to record, for
 * each call it hands out, the integer limit of its (endpoint, function) at the
 * moment the run loop asked for capacity; the app reports when a run starts
 * and ends. With everything in one process, the order of these events is
 * exact, so the check has no timing in it.
 * @module
 */
import type { ClaimRequest, ClaimResult, InsertAndClaimResult, InsertClaim, NewCall } from '../../src/store/store.js';

/** What the probe needs of a scheduler: its store and its adaptive limits. */
export interface ProbedScheduler {
  readonly store: {
    claimDue(req: ClaimRequest): Promise<ClaimResult>;
    insertAndClaim?(calls: NewCall[], claim: InsertClaim): Promise<InsertAndClaimResult>;
  };
  concurrency(endpoint: string, fn: string): { limit: number };
}

interface Claim {
  /** Order of the claim among the probe's claims. */
  seq: number;
  /** Integer part of the limit when the run loop asked for capacity. */
  limit: number;
}

/**
 * Watches the runs of one (endpoint, function).
 * @example
 * const probe = new ConcurrencyProbe(scheduler, endpoint.url, 'load');
 * // in the app: probe.started(dispatchId) ... probe.ended(dispatchId)
 * expect(probe.violations).toEqual([]);
 */
export class ConcurrencyProbe {
  readonly #claims = new Map<string, Claim>();
  readonly #running = new Map<string, Claim>();
  #seq = 0;
  /** Most runs the app had at once. */
  peak = 0;
  /** Runs started and checked. */
  checked = 0;
  /** Each time the app had more runs at once than allowed, what happened. */
  readonly violations: string[] = [];

  constructor(
    scheduler: ProbedScheduler,
    readonly endpoint: string,
    readonly fn: string,
  ) {
    const store = scheduler.store;
    /** The capacity callback of a claim, recording the limit when it asks about this function. */
    const observed = (capacity: (e: string, f: string) => number, seen: { limit?: number }) => (e: string, f: string) => {
      if (e === endpoint && f === fn) seen.limit = Math.floor(scheduler.concurrency(e, f).limit);
      return capacity(e, f);
    };
    const record = (calls: readonly { id: string; endpoint: string; function: string }[], seen: { limit?: number }) => {
      const seq = ++this.#seq;
      for (const call of calls) {
        if (call.endpoint !== endpoint || call.function !== fn) continue;
        if (seen.limit === undefined) this.violations.push(`${call.id} was claimed without the run loop asking for the capacity of ${fn}`);
        this.#claims.set(call.id, { seq, limit: seen.limit ?? 0 });
      }
    };
    const claimDue = store.claimDue.bind(store);
    store.claimDue = async (req) => {
      const seen: { limit?: number } = {};
      const result = await claimDue({ ...req, capacity: observed(req.capacity, seen) });
      record(result.calls, seen);
      return result;
    };
    // Calls dispatched through the API may be leased as they are inserted (SQLite), without a claim round.
    const insertAndClaim = store.insertAndClaim?.bind(store);
    if (insertAndClaim) {
      store.insertAndClaim = async (calls, claim) => {
        const seen: { limit?: number } = {};
        const result = await insertAndClaim(calls, { ...claim, capacity: observed(claim.capacity, seen) });
        record(result.calls, seen);
        return result;
      };
    }
  }

  /** The app started a run of `dispatchId`. */
  started(dispatchId: string): void {
    const claim = this.#claims.get(dispatchId);
    if (!claim) {
      this.violations.push(`a run of ${dispatchId} started, but no claim of it was seen`);
      return;
    }
    this.#running.set(dispatchId, claim);
    this.checked++;
    this.peak = Math.max(this.peak, this.#running.size);
    let newest = claim;
    for (const c of this.#running.values()) if (c.seq > newest.seq) newest = c;
    if (this.#running.size > newest.limit) {
      this.violations.push(`${this.#running.size} runs of ${this.fn} at once, but the newest of them was claimed under a limit of ${newest.limit}`);
    }
  }

  /** The app finished a run of `dispatchId` (before answering it). */
  ended(dispatchId: string): void {
    this.#running.delete(dispatchId);
  }
}
