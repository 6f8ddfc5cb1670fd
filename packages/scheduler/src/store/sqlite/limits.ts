/**
 * Declared limits in the SQLite store (issue 16): the declared limits of each
 * (endpoint, function) pair (`function_limits`, cached), and the claim of a
 * limited pair: calls running per key (live leases), starts in the rate
 * window (`limit_windows`), the allowance and the fair order across keys
 * (`../limits.ts`). Limits of a function as a whole only cap the store's
 * usual one-statement claim ({@link SqliteLimits.allow}); limits per key pick
 * the calls ({@link SqliteLimits.pick}). Runs inside the store's transactions
 * (one process owns the file, so nothing else claims meanwhile).
 * @module
 */
import type Database from 'better-sqlite3';
import type { proto } from '@dispatch/core/protocol';
import { boundLimit } from './bound-limit.js';
import { allowance, hasLimits, isKeyed, type LimitSpec, limitWait, rateFreesAt, rateWindow, roundRobin, sameSpec } from '../limits.js';

/** How often a claim looks again at a function held by its concurrency limit (a completion also wakes the loop). */
const CONCURRENCY_RECHECK_MS = 25;
/** Most keys with due calls one claim looks at. */
const MAX_KEYS_PER_CLAIM = 1000;

/**
 * The limits part of the SQLite store.
 * @example
 * const limits = new SqliteLimits((sql) => db.prepare(sql), db);
 */
export class SqliteLimits {
  readonly #sql: (text: string) => Database.Statement;
  readonly #specs = new Map<string, LimitSpec>();
  /** Per pair, the oldest rate bucket still counted when its older buckets were last deleted. */
  readonly #cleaned = new Map<string, number>();

  constructor(sql: (text: string) => Database.Statement, db: Database.Database) {
    this.#sql = sql;
    const rows = db.prepare('SELECT * FROM function_limits').all() as Array<Record<string, number | string>>;
    for (const r of rows) this.#specs.set(`${r.endpoint}\u0000${r.function}`, rowSpec(r));
  }

  /** The limits of a pair, if it declares any. @example limits.spec(endpoint, fn) */
  spec(endpoint: string, fn: string): LimitSpec | undefined {
    const s = this.#specs.get(`${endpoint}\u0000${fn}`);
    return hasLimits(s) ? s : undefined;
  }

  /** Records the limits a call carries for its pair (the latest declaration wins). @example limits.record(e, f, spec, now) */
  record(endpoint: string, fn: string, spec: LimitSpec, now: number): void {
    const k = `${endpoint}\u0000${fn}`;
    const known = this.#specs.get(k);
    if (known && sameSpec(known, spec)) return;
    this.#sql(`INSERT INTO function_limits (endpoint, function, concurrency, concurrency_per_key, rate_count, rate_period_ms, rate_per_key, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint, function) DO UPDATE SET concurrency = excluded.concurrency,
      concurrency_per_key = excluded.concurrency_per_key, rate_count = excluded.rate_count, rate_period_ms = excluded.rate_period_ms,
      rate_per_key = excluded.rate_per_key, updated_at = excluded.updated_at`).run(
      endpoint,
      fn,
      spec.concurrency,
      spec.concurrencyPerKey ? 1 : 0,
      spec.rateCount,
      spec.ratePeriodMs,
      spec.ratePerKey ? 1 : 0,
      now,
    );
    this.#specs.set(k, { ...spec });
    this.#cleaned.delete(k);
  }

  /**
   * How many due calls of a limited pair without keys may start now (at
   * most `cap`), and whether a limit (not `cap`) set that number. The caller
   * leases them with the store's usual one-statement claim, then reports
   * them with {@link started}: a limit that does not bind costs two indexed
   * reads and one write per claim (issue 16: under 5% of throughput).
   * @example
   * const { allowed, bound } = limits.allow(endpoint, fn, spec, cap, now);
   */
  allow(endpoint: string, fn: string, spec: LimitSpec, cap: number, now: number): { allowed: number; bound: 'concurrency' | 'rate' | null } {
    const oldest = spec.rateCount > 0 ? this.#dropOldBuckets(endpoint, fn, spec, now) : 0;
    const a = allowance(spec, cap, this.#usage(endpoint, fn, null, now, oldest, spec), []);
    return { allowed: a.total, bound: a.bound };
  }

  /**
   * Counts `count` starts of a pair without keys in its rate window (claimed
   * after {@link allow}).
   * @example limits.started(endpoint, fn, spec, rows.length, now);
   */
  started(endpoint: string, fn: string, spec: LimitSpec, count: number, now: number): void {
    if (spec.rateCount <= 0 || count <= 0) return;
    this.#addStarts(endpoint, fn, '', rateWindow(spec.ratePeriodMs, now).bucket, count);
  }

  /**
   * When to look again at a pair whose claim a limit cut short while calls
   * are still due (the caller knows whether any are): when the rate's oldest
   * counted bucket stops counting, if the rate binds; else soon (a
   * completion also wakes the loop).
   * @example const at = limits.recheckAt(endpoint, fn, spec, allowed.bound, now);
   */
  recheckAt(endpoint: string, fn: string, spec: LimitSpec, bound: 'concurrency' | 'rate' | null, now: number): number {
    if (bound === 'rate' && spec.rateCount > 0) {
      const { oldest } = rateWindow(spec.ratePeriodMs, now);
      const first = this.#sql('SELECT MIN(bucket) AS b FROM limit_windows WHERE endpoint = ? AND function = ? AND bucket >= ?').get(endpoint, fn, oldest) as {
        b: number | null;
      };
      if (first.b !== null) return Math.max(now + 1, Math.min(rateFreesAt(spec.ratePeriodMs, first.b), now + 1000));
    }
    return now + CONCURRENCY_RECHECK_MS;
  }

  /**
   * The due calls of a pair limited per key to claim now (at most `cap`,
   * within the limits, fair across keys), as seqs in claim order, and when
   * to look again.
   * @example
   * const { seqs, nextDueAt } = limits.pick(endpoint, fn, spec, cap, now);
   */
  pick(endpoint: string, fn: string, spec: LimitSpec, cap: number, now: number): { seqs: number[]; nextDueAt: number | null } {
    const win = spec.rateCount > 0 ? rateWindow(spec.ratePeriodMs, now) : null;
    if (win) this.#dropOldBuckets(endpoint, fn, spec, now);
    const total = this.#usage(endpoint, fn, null, now, win?.oldest ?? 0, spec);
    const keys = (
      this.#sql(`SELECT limit_key, MIN(due_at) AS d FROM calls WHERE endpoint = ? AND function = ? AND due_at <= ? AND limit_key <> ''
        GROUP BY limit_key ORDER BY d LIMIT ${MAX_KEYS_PER_CLAIM}`).all(endpoint, fn, now) as Array<{ limit_key: string }>
    ).map((r) => r.limit_key);
    // Calls queued before the function declared a key: one key of their own.
    if (this.#sql(`SELECT 1 FROM calls WHERE endpoint = ? AND function = ? AND due_at <= ? AND limit_key = '' LIMIT 1`).get(endpoint, fn, now)) {
      keys.push('');
    }
    const usage = keys.map((key) => ({ key, ...this.#usage(endpoint, fn, key, now, win?.oldest ?? 0, spec) }));
    const a = allowance(spec, cap, total, usage);
    const perKey = new Map<string, number[]>();
    for (const key of keys) {
      const n = Math.min(a.total, a.perKey.get(key) ?? 0);
      if (n <= 0) continue;
      const rows = this.#sql(`SELECT seq FROM calls WHERE endpoint = ? AND function = ? AND limit_key = ? AND due_at <= ? ORDER BY due_at ${boundLimit()}`).all(
        endpoint,
        fn,
        key,
        now,
        n,
      ) as Array<{ seq: number }>;
      perKey.set(key, rows.map((r) => r.seq));
    }
    const seqs = roundRobin(perKey, a.total);
    if (win && seqs.length > 0) {
      // Starts counted per key for a per-key rate, else for the function ('').
      const seqKey = new Map<number, string>();
      for (const [key, list] of perKey) for (const s of list) seqKey.set(s, key);
      const counts = new Map<string, number>();
      for (const s of seqs) {
        const key = spec.ratePerKey ? (seqKey.get(s) ?? '') : '';
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      for (const [key, n] of counts) this.#addStarts(endpoint, fn, key, win.bucket, n);
    }
    // Held back by a limit while calls are due: look again when it may free.
    let nextDueAt: number | null = null;
    if (seqs.length > 0 && seqs.length >= cap) {
      nextDueAt = now; // stopped by the claim's capacity, not by a limit: more may be due
    } else if (this.#dueCount(endpoint, fn, now, seqs.length + 1) > seqs.length) {
      nextDueAt = this.recheckAt(endpoint, fn, spec, a.bound, now);
    }
    return { seqs, nextDueAt };
  }

  /** Deletes the buckets of a pair's rate window that no longer count (once per new oldest bucket); the oldest that counts. */
  #dropOldBuckets(endpoint: string, fn: string, spec: LimitSpec, now: number): number {
    const { oldest } = rateWindow(spec.ratePeriodMs, now);
    const k = `${endpoint}\u0000${fn}`;
    if (this.#cleaned.get(k) !== oldest) {
      this.#sql('DELETE FROM limit_windows WHERE endpoint = ? AND function = ? AND bucket < ?').run(endpoint, fn, oldest);
      this.#cleaned.set(k, oldest);
    }
    return oldest;
  }

  #addStarts(endpoint: string, fn: string, key: string, bucket: number, n: number): void {
    this.#sql(`INSERT INTO limit_windows (endpoint, function, limit_key, bucket, starts) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (endpoint, function, limit_key, bucket) DO UPDATE SET starts = starts + excluded.starts`).run(endpoint, fn, key, bucket, n);
  }

  /** Why a due call of a limited pair waits (null if no limit is reached). @example limits.wait(e, f, 'u1', now) */
  wait(endpoint: string, fn: string, key: string, now: number): proto.ILimitWait | null {
    const spec = this.spec(endpoint, fn);
    if (!spec) return null;
    const oldest = spec.rateCount > 0 ? rateWindow(spec.ratePeriodMs, now).oldest : 0;
    const total = this.#usage(endpoint, fn, null, now, oldest, spec);
    const ofKey = isKeyed(spec) ? this.#usage(endpoint, fn, key, now, oldest, spec) : total;
    return limitWait(spec, key, total, ofKey);
  }

  /** Calls running (live leases) and starts in the rate window, of the pair or of one key; only what `spec` limits is counted. */
  #usage(endpoint: string, fn: string, key: string | null, now: number, oldest: number, spec: LimitSpec): { running: number; used: number } {
    const k = key === null ? '' : ' AND limit_key = ?';
    const args = key === null ? [endpoint, fn] : [endpoint, fn, key];
    const running =
      spec.concurrency > 0
        ? (
            this.#sql(`SELECT COUNT(*) AS n FROM calls WHERE endpoint = ? AND function = ?${k} AND state = 'running' AND due_at > ?`).get(...args, now) as {
              n: number;
            }
          ).n
        : 0;
    const used =
      spec.rateCount > 0
        ? (
            this.#sql(`SELECT COALESCE(SUM(starts), 0) AS n FROM limit_windows WHERE endpoint = ? AND function = ?${k} AND bucket >= ?`).get(
              ...args,
              oldest,
            ) as { n: number }
          ).n
        : 0;
    return { running, used };
  }

  #dueCount(endpoint: string, fn: string, now: number, atMost: number): number {
    return (
      this.#sql(`SELECT COUNT(*) AS n FROM (SELECT 1 FROM calls WHERE endpoint = ? AND function = ? AND due_at <= ? ${boundLimit()})`).get(endpoint, fn, now, atMost) as {
        n: number;
      }
    ).n;
  }
}

function rowSpec(r: Record<string, number | string>): LimitSpec {
  return {
    concurrency: Number(r.concurrency),
    concurrencyPerKey: Number(r.concurrency_per_key) === 1,
    rateCount: Number(r.rate_count),
    ratePeriodMs: Number(r.rate_period_ms),
    ratePerKey: Number(r.rate_per_key) === 1,
  };
}
