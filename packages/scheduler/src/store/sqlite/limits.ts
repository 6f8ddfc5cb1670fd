/**
 * Declared limits in the SQLite store (issue 16): the declared limits of each
 * (endpoint, function) pair (`function_limits`, cached), and the claim of a
 * limited pair: calls running per key (live leases), starts in the rate
 * window (`limit_windows`), the allowance and the fair order across keys
 * (`../limits.ts`). Runs inside the store's transactions (one process owns
 * the file, so nothing else claims meanwhile).
 * @module
 */
import type Database from 'better-sqlite3';
import type { proto } from '@dispatch/core/protocol';
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
  }

  /**
   * The due calls of a limited pair to claim now (at most `cap`, within the
   * limits, fair across keys), as seqs in claim order, and when to look again.
   * @example
   * const { seqs, nextDueAt } = limits.pick(endpoint, fn, spec, cap, now);
   */
  pick(endpoint: string, fn: string, spec: LimitSpec, cap: number, now: number): { seqs: number[]; nextDueAt: number | null } {
    const keyed = isKeyed(spec);
    const win = spec.rateCount > 0 ? rateWindow(spec.ratePeriodMs, now) : null;
    if (win) this.#sql('DELETE FROM limit_windows WHERE endpoint = ? AND function = ? AND bucket < ?').run(endpoint, fn, win.oldest);
    const total = this.#usage(endpoint, fn, null, now, win?.oldest ?? 0);
    let keys: string[] = [''];
    if (keyed) {
      keys = (
        this.#sql(`SELECT limit_key, MIN(due_at) AS d FROM calls WHERE endpoint = ? AND function = ? AND due_at <= ? AND limit_key <> ''
          GROUP BY limit_key ORDER BY d LIMIT ${MAX_KEYS_PER_CLAIM}`).all(endpoint, fn, now) as Array<{ limit_key: string }>
      ).map((r) => r.limit_key);
      // Calls queued before the function declared a key: one key of their own.
      if (this.#sql(`SELECT 1 FROM calls WHERE endpoint = ? AND function = ? AND due_at <= ? AND limit_key = '' LIMIT 1`).get(endpoint, fn, now)) {
        keys.push('');
      }
    }
    const usage = keys.map((key) => ({ key, ...(keyed ? this.#usage(endpoint, fn, key, now, win?.oldest ?? 0) : total) }));
    const a = allowance(spec, cap, total, usage);
    const perKey = new Map<string, number[]>();
    for (const key of keys) {
      const n = Math.min(a.total, a.perKey.get(key) ?? 0);
      if (n <= 0) continue;
      const rows = keyed
        ? (this.#sql('SELECT seq FROM calls WHERE endpoint = ? AND function = ? AND limit_key = ? AND due_at <= ? ORDER BY due_at LIMIT ?').all(
            endpoint,
            fn,
            key,
            now,
            n,
          ) as Array<{ seq: number }>)
        : (this.#sql('SELECT seq FROM calls WHERE endpoint = ? AND function = ? AND due_at <= ? ORDER BY due_at LIMIT ?').all(endpoint, fn, now, n) as Array<{
            seq: number;
          }>);
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
      const up = this.#sql(`INSERT INTO limit_windows (endpoint, function, limit_key, bucket, starts) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (endpoint, function, limit_key, bucket) DO UPDATE SET starts = starts + excluded.starts`);
      for (const [key, n] of counts) up.run(endpoint, fn, key, win.bucket, n);
    }
    // Held back by a limit while calls are due: look again when it may free.
    let nextDueAt: number | null = null;
    if (seqs.length > 0 && seqs.length >= cap) {
      nextDueAt = now; // stopped by the claim's capacity, not by a limit: more may be due
    } else if (this.#dueCount(endpoint, fn, now, seqs.length + 1) > seqs.length) {
      nextDueAt = now + CONCURRENCY_RECHECK_MS;
      if (a.bound === 'rate' && win) {
        const oldest = this.#sql('SELECT MIN(bucket) AS b FROM limit_windows WHERE endpoint = ? AND function = ?').get(endpoint, fn) as { b: number | null };
        if (oldest.b !== null) nextDueAt = Math.max(now + 1, Math.min(rateFreesAt(spec.ratePeriodMs, oldest.b), now + 1000));
      }
    }
    return { seqs, nextDueAt };
  }

  /** Why a due call of a limited pair waits (null if no limit is reached). @example limits.wait(e, f, 'u1', now) */
  wait(endpoint: string, fn: string, key: string, now: number): proto.ILimitWait | null {
    const spec = this.spec(endpoint, fn);
    if (!spec) return null;
    const oldest = spec.rateCount > 0 ? rateWindow(spec.ratePeriodMs, now).oldest : 0;
    const total = this.#usage(endpoint, fn, null, now, oldest);
    const ofKey = isKeyed(spec) ? this.#usage(endpoint, fn, key, now, oldest) : total;
    return limitWait(spec, key, total, ofKey);
  }

  /** Calls running (live leases) and starts in the rate window, of the pair or of one key. */
  #usage(endpoint: string, fn: string, key: string | null, now: number, oldest: number): { running: number; used: number } {
    const k = key === null ? '' : ' AND limit_key = ?';
    const args = key === null ? [endpoint, fn] : [endpoint, fn, key];
    const running = (
      this.#sql(`SELECT COUNT(*) AS n FROM calls WHERE endpoint = ? AND function = ?${k} AND state = 'running' AND due_at > ?`).get(...args, now) as {
        n: number;
      }
    ).n;
    const used = (
      this.#sql(`SELECT COALESCE(SUM(starts), 0) AS n FROM limit_windows WHERE endpoint = ? AND function = ?${k} AND bucket >= ?`).get(...args, oldest) as {
        n: number;
      }
    ).n;
    return { running, used };
  }

  #dueCount(endpoint: string, fn: string, now: number, atMost: number): number {
    return (
      this.#sql('SELECT COUNT(*) AS n FROM (SELECT 1 FROM calls WHERE endpoint = ? AND function = ? AND due_at <= ? LIMIT ?)').get(endpoint, fn, now, atMost) as {
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
