/**
 * The schedules of the PostgreSQL store (`store.schedules`): only SQL. A
 * tick is one transaction: an `UPDATE … WHERE next_tick_at = <expected>`
 * (under READ COMMITTED a concurrent instance's update makes it match no
 * row) and the insertion of the tick's call.
 * @module
 */
import type pg from 'pg';
import { type ScheduleDeclaration, type ScheduleRecord, type ScheduleRow, type ScheduleStore, type ScheduleTickRequest, toScheduleRecord } from '../schedule-store.js';
import type { NewCall } from '../store.js';

/** Runs `fn` in one of the store's transactions, with a way to insert calls in it. */
type Transaction = <T>(fn: (c: pg.PoolClient, insertCalls: (calls: NewCall[]) => Promise<string[]>) => Promise<T>) => Promise<T>;

/**
 * The PostgreSQL schedule store.
 * @example
 * const { due } = await pgStore.schedules.due(Date.now(), 100);
 */
export class PgScheduleStore implements ScheduleStore {
  readonly #pool: pg.Pool;
  readonly #table: string;
  readonly #tx: Transaction;

  /**
   * @param pool the store's pool
   * @param table the quoted, schema-qualified `schedules` table
   * @param tx the store's transaction runner
   */
  constructor(pool: pg.Pool, table: string, tx: Transaction) {
    this.#pool = pool;
    this.#table = table;
    this.#tx = tx;
  }

  declare(endpoint: string, schedules: ScheduleDeclaration[], now: number): Promise<{ schedules: ScheduleRecord[]; removed: string[] }> {
    const t = this.#table;
    return this.#tx(async (c) => {
      // Sorted by name: two endpoints declaring together lock rows in the same order.
      for (const s of [...schedules].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        await c.query(
          `INSERT INTO ${t} AS o (name, endpoint, cron, time_zone, missed, expiration_ms, next_tick_at, created_at, updated_at)
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
          ON CONFLICT (name) DO UPDATE SET
            next_tick_at = CASE WHEN o.cron = excluded.cron AND o.time_zone = excluded.time_zone
              THEN o.next_tick_at ELSE excluded.next_tick_at END,
            updated_at = CASE WHEN o.cron = excluded.cron AND o.time_zone = excluded.time_zone
              AND o.endpoint = excluded.endpoint AND o.missed = excluded.missed
              AND o.expiration_ms IS NOT DISTINCT FROM excluded.expiration_ms THEN o.updated_at ELSE excluded.updated_at END,
            endpoint = excluded.endpoint, cron = excluded.cron, time_zone = excluded.time_zone,
            missed = excluded.missed, expiration_ms = excluded.expiration_ms`,
          [s.name, endpoint, s.cron, s.timeZone, s.missed, s.expirationMs, s.nextTickAt, now],
        );
      }
      const { rows: removed } = await c.query<{ name: string }>(
        `DELETE FROM ${t} WHERE endpoint = $1 AND NOT (name = ANY($2::text[])) RETURNING name`,
        [endpoint, schedules.map((s) => s.name)],
      );
      const { rows } = await c.query<ScheduleRow>(`SELECT * FROM ${t} WHERE endpoint = $1 ORDER BY name`, [endpoint]);
      return { schedules: rows.map(toScheduleRecord), removed: removed.map((r) => r.name).sort() };
    });
  }

  async list(): Promise<ScheduleRecord[]> {
    const { rows } = await this.#pool.query<ScheduleRow>(`SELECT * FROM ${this.#table} ORDER BY name`);
    return rows.map(toScheduleRecord);
  }

  async get(name: string): Promise<ScheduleRecord | null> {
    const { rows } = await this.#pool.query<ScheduleRow>(`SELECT * FROM ${this.#table} WHERE name = $1`, [name]);
    return rows[0] ? toScheduleRecord(rows[0]) : null;
  }

  async pause(name: string, now: number): Promise<ScheduleRecord | null> {
    await this.#pool.query(`UPDATE ${this.#table} SET paused = true, updated_at = $2 WHERE name = $1 AND NOT paused`, [name, now]);
    return this.get(name);
  }

  async resume(name: string, nextTickAt: number | null, now: number): Promise<ScheduleRecord | null> {
    await this.#pool.query(`UPDATE ${this.#table} SET paused = false, next_tick_at = $2, updated_at = $3 WHERE name = $1 AND paused`, [
      name,
      nextTickAt,
      now,
    ]);
    return this.get(name);
  }

  async remove(name: string): Promise<boolean> {
    const { rowCount } = await this.#pool.query(`DELETE FROM ${this.#table} WHERE name = $1`, [name]);
    return (rowCount ?? 0) > 0;
  }

  async due(now: number, limit: number): Promise<{ due: ScheduleRecord[]; nextAt: number | null }> {
    const { rows } = await this.#pool.query<ScheduleRow>(
      `SELECT * FROM ${this.#table} WHERE NOT paused AND next_tick_at <= $1 ORDER BY next_tick_at LIMIT $2`,
      [now, limit],
    );
    if (rows.length >= limit) return { due: rows.map(toScheduleRecord), nextAt: now };
    const { rows: next } = await this.#pool.query<{ at: number | null }>(
      `SELECT min(next_tick_at) AS at FROM ${this.#table} WHERE NOT paused AND next_tick_at > $1`,
      [now],
    );
    return { due: rows.map(toScheduleRecord), nextAt: next[0]?.at === null || next[0]?.at === undefined ? null : Number(next[0].at) };
  }

  tick(req: ScheduleTickRequest): Promise<string | null> {
    const t = this.#table;
    return this.#tx(async (c, insertCalls) => {
      const { rowCount } = await c.query(
        `UPDATE ${t} SET next_tick_at = $1, skipped_ticks = skipped_ticks + $2, updated_at = $3
        WHERE name = $4 AND NOT paused AND next_tick_at = $5`,
        [req.nextTickAt, req.skipped, req.now, req.name, req.expectedNextTickAt],
      );
      if (!rowCount) return null;
      if (!req.call) return '';
      const [id] = await insertCalls([req.call]);
      await c.query(`UPDATE ${t} SET last_tick_at = $1, last_dispatch_id = $2, ticks = ticks + 1 WHERE name = $3`, [req.tickAt, id, req.name]);
      return id ?? null;
    });
  }
}
