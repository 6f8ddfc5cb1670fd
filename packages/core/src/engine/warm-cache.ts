/**
 * The warm cache: suspended executions kept in memory (bounded, evicted LRU)
 * so that the next `PollResult` resumes them directly instead of replaying
 * the journal. An entry is used only when the PollResult's state is the
 * exact state the execution emitted (same length and header), or an elided
 * state of that length; replay is the fallback and gives the same answer.
 * @module
 */
import * as proto from '../protocol/proto.js';
import type { IPollResult } from '../protocol/proto.js';
import type { Execution } from './execution.js';
import { JOURNAL_TYPE_URL } from './journal.js';

interface WarmEntry {
  execution: Execution;
  length: number;
  header: Uint8Array;
  bytes: number;
}

/** Bounds of the warm cache. */
export interface WarmCacheBounds {
  /** Most executions held. Default 1,000. */
  maxEntries?: number;
  /** Most bytes held, counted as each journal's length plus 1 KiB. Default 256 MiB. */
  maxBytes?: number;
}

/** Suspended executions by dispatch ID, least recently suspended first. @internal */
export class WarmCache {
  readonly #entries = new Map<string, WarmEntry>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  #bytes = 0;

  /** `false` keeps nothing (every resume replays). */
  constructor(bounds: WarmCacheBounds | false | undefined) {
    this.#maxEntries = bounds === false ? 0 : (bounds?.maxEntries ?? 1000);
    this.#maxBytes = bounds === false ? 0 : (bounds?.maxBytes ?? 256 * 1024 * 1024);
  }

  /** Number of executions held. */
  get size(): number {
    return this.#entries.size;
  }

  /** Drops every execution (as after a restart). */
  clear(): void {
    for (const e of this.#entries.values()) e.execution.leave();
    this.#entries.clear();
    this.#bytes = 0;
  }

  /** Drops the execution of `key`, if held. */
  delete(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
  }

  /**
   * Takes out the execution of `key` if the PollResult resumes exactly the
   * state it emitted. Taken out while it runs: a concurrent request for the
   * same call replays instead.
   */
  take(key: string, pollResult: IPollResult | null | undefined): Execution | undefined {
    if (!key) return undefined;
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    let match = false;
    if (pollResult?.stateElided) match = Number(proto.toBigInt(pollResult.stateLength ?? 0)) === entry.length;
    else {
      const state = pollResult?.typedCoroutineState;
      const value = state?.value;
      if (value && value.length === entry.length && state?.typeUrl === JOURNAL_TYPE_URL) {
        match = entry.header.every((b, i) => value[i] === b);
      }
    }
    this.delete(key);
    if (!match) entry.execution.leave();
    return match ? entry.execution : undefined;
  }

  /**
   * The execution held for `key` and the length and first bytes of the
   * state it emitted, without taking it out (a local resume checks it
   * before running, through {@link take} like any resume).
   */
  peek(key: string): { execution: Execution; length: number; header: Uint8Array } | undefined {
    return key ? this.#entries.get(key) : undefined;
  }

  /** Holds a suspended execution under its dispatch ID, evicting the oldest past the bounds. */
  put(x: Execution): void {
    const key = x.context.dispatchId;
    if (this.#maxEntries === 0 || !key) {
      x.leave();
      return;
    }
    this.delete(key);
    const bytes = x.journal.emittedLength + 1024;
    this.#entries.set(key, { execution: x, length: x.journal.emittedLength, header: x.journal.header.slice(), bytes });
    this.#bytes += bytes;
    for (const [k, e] of this.#entries) {
      if (this.#entries.size <= this.#maxEntries && this.#bytes <= this.#maxBytes) break;
      this.#entries.delete(k);
      this.#bytes -= e.bytes;
      e.execution.leave();
    }
  }
}
