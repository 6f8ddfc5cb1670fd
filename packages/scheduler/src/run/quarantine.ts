/**
 * Poison calls: a call whose attempts keep ending with the app's connection
 * dropped (its process died while the request was in flight) is quarantined
 * after a bounded number of such crashes, instead of taking the app, and
 * every call in flight with it, down again and again.
 *
 * Who is to blame for a crash? When the app dies, every request in flight
 * dies with it, and nothing tells the guilty call from the innocent ones.
 * So:
 * - every call in flight at a crash has that crash counted (it is a
 *   *suspect*), and is retried as usual;
 * - suspects of an endpoint are retried one at a time (the suspects' lane,
 *   held for a run or {@link SUSPECT_SOLO_MS} at most): two suspects are
 *   not in flight together, so a suspect that dies again died alone among
 *   suspects, and each further crash counts towards it only once. Calls that never crashed run beside it, unslowed, and if the
 *   app dies under them their own first crash is counted (they were in
 *   flight: the duplicates a crash costs), never more;
 * - an attempt whose connection was not dropped (an answer, an error, a
 *   timeout) clears the suspicion: only consecutive crashes count;
 * - at `limit` crashes the call fails with PERMANENT_ERROR and a
 *   `QuarantinedError` saying so.
 * An innocent call thus crashes at most once per poison call running beside
 * it, while a poison call reaches the limit after `limit` crashes. The
 * counts live in the scheduler's memory (a restart of the scheduler starts
 * them again).
 * @module
 */
import type { proto } from '@dispatch/core/protocol';

/**
 * How long a suspect runs alone among the suspects of its endpoint: the
 * next one goes when it ends, or after this long (a crash that comes later
 * than that may be counted towards two suspects).
 */
export const SUSPECT_SOLO_MS = 2_000;

/** Counts kept at most (the oldest suspicion is forgotten first). */
const MAX_SUSPECTS = 100_000;

/**
 * What a crash means for the call that was in flight.
 * @example
 * const v: CrashVerdict = quarantine.crashed(id, endpoint);
 * if (v.quarantined) console.log(`crashed the app ${v.crashes} times`);
 */
export interface CrashVerdict {
  /** Crashes of the app counted for this call (consecutive attempts). */
  crashes: number;
  /** The call reached the limit: it must fail now. */
  quarantined: boolean;
}

interface Suspect {
  endpoint: string;
  crashes: number;
}

interface Lane {
  busy: boolean;
  waiting: Array<(admitted: boolean) => void>;
}

/**
 * The crash counts of calls and the suspects' lanes.
 * @example
 * const q = new CrashQuarantine(5);
 * const v = q.crashed(call.id, call.endpoint);
 */
export class CrashQuarantine {
  /** Crashes after which a call is quarantined. */
  readonly limit: number;
  readonly #suspects = new Map<string, Suspect>();
  readonly #lanes = new Map<string, Lane>();
  #closed = false;

  constructor(limit: number) {
    if (!(Number.isInteger(limit) && limit >= 1)) throw new RangeError(`quarantineAfter must be an integer ≥ 1, got ${limit}`);
    this.limit = limit;
  }

  /** The call was in flight at an earlier crash (and has not run cleanly since). */
  isSuspect(id: string): boolean {
    return this.#suspects.has(id);
  }

  /** Crashes counted for a call (0 if none). */
  crashesOf(id: string): number {
    return this.#suspects.get(id)?.crashes ?? 0;
  }

  /** Number of suspects, over all endpoints. */
  get suspects(): number {
    return this.#suspects.size;
  }

  /** Suspects of `endpoint` waiting for the lane (the one running excluded). */
  waitingIn(endpoint: string): number {
    return this.#lanes.get(endpoint)?.waiting.length ?? 0;
  }

  /**
   * Waits for the suspects' lane of `endpoint`; resolves true once this
   * suspect may run (call {@link leave} after), false if the quarantine was
   * closed meanwhile (the scheduler stops: do not run).
   */
  enter(endpoint: string): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    let lane = this.#lanes.get(endpoint);
    if (!lane) {
      lane = { busy: false, waiting: [] };
      this.#lanes.set(endpoint, lane);
    }
    if (!lane.busy) {
      lane.busy = true;
      return Promise.resolve(true);
    }
    const l = lane;
    return new Promise<boolean>((resolve) => l.waiting.push(resolve));
  }

  /** The suspect that entered the lane of `endpoint` is done: the next may run. */
  leave(endpoint: string): void {
    const lane = this.#lanes.get(endpoint);
    if (!lane) return;
    const next = lane.waiting.shift();
    if (next) next(true);
    else this.#lanes.delete(endpoint);
  }

  /** Counts a crash for a call that was in flight when the app's connection dropped. */
  crashed(id: string, endpoint: string): CrashVerdict {
    let s = this.#suspects.get(id);
    if (!s) {
      if (this.#suspects.size >= MAX_SUSPECTS) {
        const oldest = this.#suspects.keys().next().value;
        if (oldest !== undefined) this.#suspects.delete(oldest);
      }
      s = { endpoint, crashes: 0 };
      this.#suspects.set(id, s);
    }
    s.crashes++;
    const quarantined = s.crashes >= this.limit;
    if (quarantined) this.#suspects.delete(id);
    return { crashes: s.crashes, quarantined };
  }

  /** The call ran without crashing the app (or finished, or is gone): its count starts again. */
  cleared(id: string): void {
    this.#suspects.delete(id);
  }

  /** Lets every suspect waiting for a lane go, without running (the scheduler stops). */
  close(): void {
    this.#closed = true;
    for (const lane of this.#lanes.values()) for (const w of lane.waiting.splice(0)) w(false);
    this.#lanes.clear();
  }
}

/**
 * The error of a quarantined call: what happened, and what to do.
 * @example
 * const error = quarantineError({ id, function: 'charge', endpoint }, 5, 'request to http://127.0.0.1:8000 failed: ECONNRESET socket hang up');
 */
export function quarantineError(call: { id: string; function: string; endpoint: string }, crashes: number, lastMessage: string): proto.IError {
  return {
    type: 'QuarantinedError',
    message:
      `quarantined: ${call.function} crashed the app at ${call.endpoint} ${crashes} times in a row ` +
      `(each attempt ended with the connection dropped while the request was in flight; last: ${lastMessage}), ` +
      'so it is not retried any more, so that it stops taking the calls running beside it down too. ' +
      `Something in ${call.function} ends the app's process (process.exit, an uncaught exception, running out of memory): ` +
      `look in the app's output for what ended it, fix it, then run the call again with \`dispatch restart ${call.id}\`.`,
  };
}
