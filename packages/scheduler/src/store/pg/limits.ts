/**
 * Declared limits in the PostgreSQL store (issue 16), enforced across every
 * scheduler instance sharing the schema. A claim of a limited (endpoint,
 * function) pair is one transaction that:
 * 1. locks the pair's `function_limits` row (`FOR UPDATE`): instances claim
 *    a limited pair one at a time, so two cannot both see room for the same
 *    slot (and it reads the limits as declared now);
 * 2. counts the calls running (live leases: state `running`, lease not
 *    expired) and the starts in the rate window (`limit_windows`), for the
 *    pair and for each key with due calls;
 * 3. takes the due calls the allowance lets through, round-robin across keys
 *    (`../limits.ts`), leases them and adds their starts to the window.
 * Unlimited pairs never reach this code (their claim is the usual one query).
 *
 * Limits that are not per key take one statement, one round trip
 * ({@link claimLimitedAtOnce}): the lock and the counts are the function
 * `limit_allowance` (migration 11), whose statements each take a fresh
 * snapshot, so they see every claim committed before the lock was granted;
 * the statement that calls it picks at most the allowance (`FOR UPDATE SKIP
 * LOCKED`, which re-reads a row changed since its snapshot), leases, and
 * counts the starts, and the lock is held until it commits. Per-key limits
 * take the transaction ({@link claimLimited}): keys with due calls, counts
 * per key, round-robin.
 * @module
 */
import type pg from 'pg';
import type { proto } from '@dispatch/core/protocol';
import { allowance, isKeyed, type LimitSpec, limitWait, rateFreesAt, rateMarginMs, rateWindow, roundRobin } from '../limits.js';

/** How often a claim looks again at a pair held by its concurrency limit (another instance's completion does not wake this one). */
const CONCURRENCY_RECHECK_MS = 25;
/** Most keys with due calls one claim looks at. */
const MAX_KEYS_PER_CLAIM = 1000;

/**
 * Table (and function) names of the store's schema.
 * @example
 * const t: LimitTables = { calls: '"dispatch".calls', limits: '"dispatch".function_limits', windows: '"dispatch".limit_windows', allowance: '"dispatch".limit_allowance' };
 */
export interface LimitTables {
  calls: string;
  limits: string;
  windows: string;
  /** The function `limit_allowance` (migration 11). */
  allowance: string;
}

/** A `function_limits` row as read from PostgreSQL. */
interface LimitRow {
  endpoint: string;
  function: string;
  concurrency: number;
  concurrency_per_key: boolean;
  rate_count: number;
  rate_period_ms: number;
  rate_per_key: boolean;
}

/** A `function_limits` row as a {@link LimitSpec}. @example const spec = specOfRow(row); */
export function specOfRow(r: LimitRow): LimitSpec {
  return {
    concurrency: Number(r.concurrency),
    concurrencyPerKey: !!r.concurrency_per_key,
    rateCount: Number(r.rate_count),
    ratePeriodMs: Number(r.rate_period_ms),
    ratePerKey: !!r.rate_per_key,
  };
}

/** Every pair's declared limits. @example const specs = await loadLimitSpecs(pool, t); */
export async function loadLimitSpecs(c: pg.Pool | pg.PoolClient, t: LimitTables): Promise<Map<string, LimitSpec>> {
  const { rows } = await c.query<LimitRow>(`SELECT * FROM ${t.limits}`);
  return new Map(rows.map((r) => [`${r.endpoint}\u0000${r.function}`, specOfRow(r)]));
}

/**
 * Records the limits calls carry (the latest declaration wins); true if a
 * row changed (other instances should reload).
 * @example
 * const changed = await recordLimitSpecs(client, t, [[endpoint, fn, spec]], now);
 */
export async function recordLimitSpecs(c: pg.PoolClient, t: LimitTables, specs: Array<[string, string, LimitSpec]>, now: number): Promise<boolean> {
  if (specs.length === 0) return false;
  const sorted = [...specs].sort((a, b) => (`${a[0]}\u0000${a[1]}` < `${b[0]}\u0000${b[1]}` ? -1 : 1));
  const { rowCount } = await c.query(
    `INSERT INTO ${t.limits} (endpoint, function, concurrency, concurrency_per_key, rate_count, rate_period_ms, rate_per_key, updated_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bool[], $5::int[], $6::bigint[], $7::bool[]), (SELECT $8::bigint) n
    ON CONFLICT (endpoint, function) DO UPDATE SET concurrency = excluded.concurrency, concurrency_per_key = excluded.concurrency_per_key,
      rate_count = excluded.rate_count, rate_period_ms = excluded.rate_period_ms, rate_per_key = excluded.rate_per_key, updated_at = excluded.updated_at
    WHERE (${t.limits}.concurrency, ${t.limits}.concurrency_per_key, ${t.limits}.rate_count, ${t.limits}.rate_period_ms, ${t.limits}.rate_per_key)
      IS DISTINCT FROM (excluded.concurrency, excluded.concurrency_per_key, excluded.rate_count, excluded.rate_period_ms, excluded.rate_per_key)`,
    [
      sorted.map((s) => s[0]),
      sorted.map((s) => s[1]),
      sorted.map((s) => s[2].concurrency),
      sorted.map((s) => s[2].concurrencyPerKey),
      sorted.map((s) => s[2].rateCount),
      sorted.map((s) => s[2].ratePeriodMs),
      sorted.map((s) => s[2].ratePerKey),
      now,
    ],
  );
  return (rowCount ?? 0) > 0;
}

async function usage(
  c: pg.PoolClient | pg.Pool,
  t: LimitTables,
  endpoint: string,
  fn: string,
  keys: string[] | null,
  now: number,
  oldest: number,
): Promise<Map<string, { running: number; used: number }>> {
  const out = new Map<string, { running: number; used: number }>();
  if (keys === null) {
    const { rows } = await c.query<{ running: string; used: string }>(
      `SELECT (SELECT count(*) FROM ${t.calls} WHERE endpoint = $1 AND function = $2 AND state = 'running' AND due_at > $3) AS running,
        (SELECT COALESCE(sum(starts), 0) FROM ${t.windows} WHERE endpoint = $1 AND function = $2 AND bucket >= $4) AS used`,
      [endpoint, fn, now, oldest],
    );
    out.set('', { running: Number(rows[0]?.running ?? 0), used: Number(rows[0]?.used ?? 0) });
    return out;
  }
  for (const k of keys) out.set(k, { running: 0, used: 0 });
  if (keys.length === 0) return out;
  const { rows } = await c.query<{ k: string; running: string; used: string }>(
    `SELECT k.k,
      (SELECT count(*) FROM ${t.calls} WHERE endpoint = $1 AND function = $2 AND limit_key = k.k AND state = 'running' AND due_at > $3) AS running,
      (SELECT COALESCE(sum(starts), 0) FROM ${t.windows} WHERE endpoint = $1 AND function = $2 AND limit_key = k.k AND bucket >= $4) AS used
    FROM unnest($5::text[]) AS k(k)`,
    [endpoint, fn, now, oldest, keys],
  );
  for (const r of rows) out.set(r.k, { running: Number(r.running), used: Number(r.used) });
  return out;
}

/**
 * How the store leases the calls a limited claim picked: the SET and
 * RETURNING of its claim, with their parameters numbered from `first`.
 * @example
 * const lease: LeaseSql = (first) => ({ set: `state = 'running', lease_owner = $${first}`, returning: 'c.id', params: [owner] });
 */
export type LeaseSql = (first: number) => { set: string; returning: string; params: unknown[] };

/**
 * Picks and leases the due calls of a limited pair, in the caller's
 * transaction: the rows leased (in claim order) and when to look again
 * (null: nothing held back by a limit).
 * @example
 * const { rows, nextDueAt } = await claimLimited(client, t, { endpoint, fn, cap, now }, lease);
 */
export async function claimLimited<R extends pg.QueryResultRow>(
  c: pg.PoolClient,
  t: LimitTables,
  q: { endpoint: string; fn: string; cap: number; now: number },
  lease: LeaseSql,
): Promise<{ rows: Array<R & { ord: number }>; nextDueAt: number | null }> {
  const { endpoint, fn, cap, now } = q;
  const { rows: lr } = await c.query<LimitRow>(`SELECT * FROM ${t.limits} WHERE endpoint = $1 AND function = $2 FOR UPDATE`, [endpoint, fn]);
  if (!lr[0]) return { rows: [], nextDueAt: now };
  const spec = specOfRow(lr[0]);
  const keyed = isKeyed(spec);
  // The rate window is dated once the lock is held (the claim's own now was
  // read before it): a start is never dated before the claims it waited for.
  // Instances' clocks are assumed in sync (NTP); the margin absorbs the rest.
  const win = spec.rateCount > 0 ? rateWindow(spec.ratePeriodMs, Math.max(now, Date.now())) : null;
  const total = (await usage(c, t, endpoint, fn, null, now, win?.oldest ?? 0)).get('')!;
  let keys: string[] = [''];
  let perKeyUsage = new Map([['', total]]);
  if (keyed) {
    // Keys with due calls, oldest first (a call queued before the function declared a key has the key '').
    const { rows } = await c.query<{ limit_key: string }>(
      `SELECT limit_key FROM ${t.calls} WHERE endpoint = $1 AND function = $2 AND due_at <= $3
      GROUP BY limit_key ORDER BY min(due_at) LIMIT ${MAX_KEYS_PER_CLAIM}`,
      [endpoint, fn, now],
    );
    keys = rows.map((r) => r.limit_key);
    perKeyUsage = await usage(c, t, endpoint, fn, keys, now, win?.oldest ?? 0);
  }
  const a = allowance(
    spec,
    cap,
    total,
    keys.map((key) => ({ key, ...perKeyUsage.get(key)! })),
  );
  let picked: { sql: string; params: unknown[] } | null = null;
  let seqKey = new Map<number, string>();
  if (a.total > 0 && keyed) {
    const wanted = keys.map((k) => Math.min(a.total, a.perKey.get(k) ?? 0));
    const { rows } = await c.query<{ k: string; seq: string }>(
      `SELECT q.k, p.seq FROM unnest($1::text[], $2::int[]) WITH ORDINALITY AS q(k, n, ord) CROSS JOIN LATERAL (
        SELECT seq, due_at FROM ${t.calls} WHERE endpoint = $3 AND function = $4 AND limit_key = q.k AND due_at <= $5
        ORDER BY due_at LIMIT q.n FOR UPDATE SKIP LOCKED) p ORDER BY q.ord, p.due_at, p.seq`,
      [keys, wanted, endpoint, fn, now],
    );
    const perKey = new Map<string, number[]>();
    for (const r of rows) {
      let list = perKey.get(r.k);
      if (!list) perKey.set(r.k, (list = []));
      list.push(Number(r.seq));
      seqKey.set(Number(r.seq), r.k);
    }
    const seqs = roundRobin(perKey, a.total);
    if (seqs.length > 0) {
      picked = { sql: 'SELECT seq, ord FROM unnest($1::bigint[]) WITH ORDINALITY AS u(seq, ord)', params: [seqs] };
      seqKey = new Map(seqs.map((s) => [s, seqKey.get(s) ?? '']));
    }
  } else if (a.total > 0) {
    picked = {
      sql: `SELECT seq, row_number() OVER (ORDER BY due_at, seq) AS ord FROM (SELECT seq, due_at FROM ${t.calls}
        WHERE endpoint = $1 AND function = $2 AND due_at <= $3 ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED) d`,
      params: [endpoint, fn, now, a.total],
    };
  }
  let rows: Array<R & { ord: number }> = [];
  if (picked) {
    // One statement: lease the picked calls and count their starts in the rate window.
    const n = picked.params.length;
    const l = lease(n + 1);
    const ln = l.params.length;
    const w = n + ln + 1; // window parameters: endpoint, function, bucket, oldest
    const windowSql = win
      ? `, gone AS (DELETE FROM ${t.windows} WHERE endpoint = $${w} AND function = $${w + 1} AND bucket < $${w + 3}),
        started AS (INSERT INTO ${t.windows} (endpoint, function, limit_key, bucket, starts)
          SELECT $${w}, $${w + 1}, k, $${w + 2}, count(*) FROM (SELECT ${spec.ratePerKey && keyed ? 'k' : "''"} AS k FROM ${
            keyed ? `picked JOIN unnest($${w + 4}::bigint[], $${w + 5}::text[]) AS sk(seq, k) ON sk.seq = picked.seq` : 'picked'
          }) x GROUP BY k
          ON CONFLICT (endpoint, function, limit_key, bucket) DO UPDATE SET starts = ${t.windows}.starts + excluded.starts)`
      : '';
    const windowParams = win ? [endpoint, fn, win.bucket, win.oldest, ...(keyed ? [[...seqKey.keys()], [...seqKey.values()]] : [])] : [];
    const res = await c.query<R & { ord: number }>(
      `WITH picked AS (${picked.sql})${windowSql}
      UPDATE ${t.calls} c SET ${l.set} FROM picked WHERE c.seq = picked.seq
      RETURNING picked.ord, ${l.returning}`,
      [...picked.params, ...l.params, ...windowParams],
    );
    rows = res.rows.sort((x, y) => Number(x.ord) - Number(y.ord));
  }
  let nextDueAt: number | null = null;
  if (rows.length > 0 && rows.length >= cap) {
    nextDueAt = now; // stopped by the claim's capacity, not by a limit: more may be due
  } else {
    const { rows: d } = await c.query<{ due_at: string }>(
      `SELECT due_at FROM ${t.calls} WHERE endpoint = $1 AND function = $2 AND due_at IS NOT NULL ORDER BY due_at LIMIT 1`,
      [endpoint, fn],
    );
    const next = d[0] ? Number(d[0].due_at) : null;
    // The calls leased above are no longer due (their due_at is the lease
    // expiry): a call still due was held back by a limit (or is locked by
    // another transaction); else wake for the next due time.
    if (next !== null && next <= now) {
      nextDueAt = now + CONCURRENCY_RECHECK_MS;
      if (a.bound === 'rate' && win) {
        const { rows: o } = await c.query<{ b: string | null }>(
          `SELECT min(bucket) AS b FROM ${t.windows} WHERE endpoint = $1 AND function = $2 AND bucket >= $3`,
          [endpoint, fn, win.oldest],
        );
        if (o[0]?.b != null) nextDueAt = Math.max(now + 1, Math.min(rateFreesAt(spec.ratePeriodMs, Number(o[0].b)), now + 1000));
      }
    } else {
      nextDueAt = next;
    }
  }
  return { rows, nextDueAt };
}

/** Runs a statement (named, so that the store may prepare it). */
export type RunSql = <R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]) => Promise<pg.QueryResult<R>>;

/** The first columns of {@link claimLimitedAtOnce}'s rows: the allowance's, then the claim's (null when nothing was leased). */
interface AtOnceHead {
  allowed: number;
  bound: 'concurrency' | 'rate' | null;
  first_bucket: string | null;
  win_bucket: string | null;
  stale: boolean;
  next_due: string | null;
  ord: number | null;
}

/**
 * Picks and leases the due calls of a pair whose limits are not per key, in
 * one statement (its own transaction, one round trip); the same answer as
 * {@link claimLimited}. `spec` is the limits the caller expects (its cache):
 * when the `function_limits` row says otherwise (or the limits are per
 * key), nothing is claimed and the answer is null: reload, then claim with
 * {@link claimLimited}.
 * @example
 * const got = await claimLimitedAtOnce(run, t, { endpoint, fn, cap, now, spec }, lease); // null: the spec changed
 */
export async function claimLimitedAtOnce<R extends pg.QueryResultRow>(
  run: RunSql,
  t: LimitTables,
  q: { endpoint: string; fn: string; cap: number; now: number; spec: LimitSpec },
  lease: LeaseSql,
): Promise<{ rows: Array<R & { ord: number }>; nextDueAt: number | null } | null> {
  const { endpoint, fn, cap, now, spec } = q;
  if (isKeyed(spec)) return null;
  const rated = spec.rateCount > 0;
  const l = lease(11);
  const { rows: all } = await run<AtOnceHead & R>(
    'claim_limited',
    `WITH lim AS MATERIALIZED (
      SELECT * FROM ${t.allowance}($1, $2, $3::int, $4::bigint, $5::bigint, $6::int, $7::int, $8::bigint, $9::bigint, $10::float8)
    ), picked AS MATERIALIZED (
      SELECT seq, row_number() OVER (ORDER BY due_at, seq) AS ord FROM (SELECT seq, due_at FROM ${t.calls}
        WHERE endpoint = $1 AND function = $2 AND due_at <= $4 ORDER BY due_at LIMIT (SELECT allowed FROM lim) FOR UPDATE SKIP LOCKED) d
    ), gone AS (
      DELETE FROM ${t.windows} w USING lim WHERE lim.win_bucket IS NOT NULL AND EXISTS (SELECT 1 FROM picked)
        AND w.endpoint = $1 AND w.function = $2 AND w.bucket < lim.win_oldest
    ), started AS (
      INSERT INTO ${t.windows} (endpoint, function, limit_key, bucket, starts)
      SELECT $1, $2, '', lim.win_bucket, p.n FROM lim, (SELECT count(*)::int AS n FROM picked) p WHERE lim.win_bucket IS NOT NULL AND p.n > 0
      ON CONFLICT (endpoint, function, limit_key, bucket) DO UPDATE SET starts = ${t.windows}.starts + excluded.starts
    ), leased AS (
      UPDATE ${t.calls} c SET ${l.set} FROM picked WHERE c.seq = picked.seq
      RETURNING picked.ord, ${l.returning}
    )
    SELECT lim.allowed, lim.bound, lim.first_bucket, lim.win_bucket, lim.stale,
      CASE WHEN (SELECT count(*) FROM picked) < $3 THEN (SELECT k.due_at FROM ${t.calls} k WHERE k.endpoint = $1 AND k.function = $2
        AND k.due_at IS NOT NULL AND k.seq NOT IN (SELECT seq FROM picked) ORDER BY k.due_at LIMIT 1) END AS next_due,
      leased.*
    FROM lim LEFT JOIN leased ON true`,
    [
      endpoint,
      fn,
      cap,
      now,
      // The rate window is dated when the lock is granted: this, plus the time the statement waited for it.
      Date.now(),
      spec.concurrency,
      spec.rateCount,
      spec.ratePeriodMs,
      rated ? rateWindow(spec.ratePeriodMs, 0).bucketMs : 0,
      rated ? rateMarginMs(spec.ratePeriodMs) : 0,
      ...l.params,
    ],
  );
  const head = all[0];
  if (!head || head.stale) return null;
  const rows = all.filter((r) => r.ord !== null).sort((x, y) => Number(x.ord) - Number(y.ord)) as Array<R & { ord: number }>;
  let nextDueAt: number | null;
  if (rows.length > 0 && rows.length >= cap) {
    nextDueAt = now; // stopped by the claim's capacity, not by a limit: more may be due
  } else {
    // The first due time among the calls not leased (by the statement's snapshot; only looked up below the capacity).
    const next = head.next_due === null ? null : Number(head.next_due);
    nextDueAt = next;
    if (next !== null && next <= now) {
      // Held back by a limit (or locked by another transaction).
      nextDueAt = now + CONCURRENCY_RECHECK_MS;
      const oldest = head.first_bucket ?? (rows.length > 0 ? head.win_bucket : null);
      if (head.bound === 'rate' && oldest !== null) {
        nextDueAt = Math.max(now + 1, Math.min(rateFreesAt(spec.ratePeriodMs, Number(oldest)), now + 1000));
      }
    }
  }
  return { rows, nextDueAt };
}

/**
 * Why a due call of a limited pair waits (null if no limit is reached): one
 * statement, counting only what the limits need.
 * @example
 * const wait = await limitWaitOf(pool, t, spec, call, Date.now());
 */
export async function limitWaitOf(
  c: pg.Pool,
  t: LimitTables,
  spec: LimitSpec,
  call: { endpoint: string; function: string; limitKey: string },
  now: number,
): Promise<proto.ILimitWait | null> {
  const params: unknown[] = [call.endpoint, call.function];
  const param = (v: unknown) => `$${params.push(v)}`;
  const ofKey = (perKey: boolean) => (perKey ? `AND limit_key = ${param(call.limitKey)} ` : '');
  const running =
    spec.concurrency > 0
      ? `(SELECT count(*) FROM ${t.calls} WHERE endpoint = $1 AND function = $2 ${ofKey(spec.concurrencyPerKey)}AND state = 'running'
        AND due_at > ${param(now)})`
      : '0';
  const used =
    spec.rateCount > 0
      ? `(SELECT COALESCE(sum(starts), 0) FROM ${t.windows} WHERE endpoint = $1 AND function = $2 ${ofKey(spec.ratePerKey)}
        AND bucket >= ${param(rateWindow(spec.ratePeriodMs, now).oldest)})`
      : '0';
  const { rows } = await c.query<{ running: string; used: string }>(`SELECT ${running} AS running, ${used} AS used`, params);
  // limitWait reads the pair's counts for a limit of the pair, the key's for a per-key limit: each is the one counted here.
  const counted = { running: Number(rows[0]?.running ?? 0), used: Number(rows[0]?.used ?? 0) };
  return limitWait(spec, call.limitKey, counted, counted);
}
