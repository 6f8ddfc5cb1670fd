/**
 * The schedules of the SQLite store (`store.schedules`): only SQL; every
 * write goes through the store's group commit.
 * @module
 */
import type Database from 'better-sqlite3';
import { boundLimit } from './bound-limit.js';
import { type ScheduleDeclaration, type ScheduleRecord, type ScheduleRow, type ScheduleStore, type ScheduleTickRequest, toScheduleRecord } from '../schedule-store.js';
import type { NewCall } from '../store.js';

/**
 * The SQLite schedule store.
 * @example
 * const { due } = await sqliteStore.schedules.due(Date.now(), 100);
 */
export class SqliteScheduleStore implements ScheduleStore {
  readonly #db: Database.Database;
  readonly #run: <T>(fn: () => T) => Promise<T>;
  readonly #insertCall: (call: NewCall) => string;

  /**
   * @param db the store's connection
   * @param run runs `fn` in a write transaction (the store's group commit)
   * @param insertCall inserts a call inside that transaction (an idempotency key already known answers the existing ID)
   */
  constructor(db: Database.Database, run: <T>(fn: () => T) => Promise<T>, insertCall: (call: NewCall) => string) {
    this.#db = db;
    this.#run = run;
    this.#insertCall = insertCall;
  }

  #rows(sql: string, ...params: unknown[]): ScheduleRecord[] {
    return (this.#db.prepare(sql).all(...params) as ScheduleRow[]).map(toScheduleRecord);
  }

  #one(name: string): ScheduleRecord | null {
    const row = this.#db.prepare('SELECT * FROM schedules WHERE name = ?').get(name) as ScheduleRow | undefined;
    return row ? toScheduleRecord(row) : null;
  }

  declare(endpoint: string, schedules: ScheduleDeclaration[], now: number): Promise<{ schedules: ScheduleRecord[]; removed: string[] }> {
    return this.#run(() => {
      const upsert = this.#db.prepare(`INSERT INTO schedules (name, endpoint, cron, time_zone, missed, expiration_ms, next_tick_at, created_at, updated_at)
        VALUES (@name, @endpoint, @cron, @time_zone, @missed, @expiration_ms, @next_tick_at, @now, @now)
        ON CONFLICT (name) DO UPDATE SET
          next_tick_at = CASE WHEN schedules.cron = excluded.cron AND schedules.time_zone = excluded.time_zone
            THEN schedules.next_tick_at ELSE excluded.next_tick_at END,
          updated_at = CASE WHEN schedules.cron = excluded.cron AND schedules.time_zone = excluded.time_zone
            AND schedules.endpoint = excluded.endpoint AND schedules.missed = excluded.missed
            AND schedules.expiration_ms IS excluded.expiration_ms THEN schedules.updated_at ELSE excluded.updated_at END,
          endpoint = excluded.endpoint, cron = excluded.cron, time_zone = excluded.time_zone,
          missed = excluded.missed, expiration_ms = excluded.expiration_ms`);
      for (const s of schedules) {
        upsert.run({
          name: s.name,
          endpoint,
          cron: s.cron,
          time_zone: s.timeZone,
          missed: s.missed,
          expiration_ms: s.expirationMs,
          next_tick_at: s.nextTickAt,
          now,
        });
      }
      const removed = (
        this.#db
          .prepare('DELETE FROM schedules WHERE endpoint = ? AND name NOT IN (SELECT value FROM json_each(?)) RETURNING name')
          .all(endpoint, JSON.stringify(schedules.map((s) => s.name))) as Array<{ name: string }>
      ).map((r) => r.name);
      return { schedules: this.#rows('SELECT * FROM schedules WHERE endpoint = ? ORDER BY name', endpoint), removed: removed.sort() };
    });
  }

  async list(): Promise<ScheduleRecord[]> {
    return this.#rows('SELECT * FROM schedules ORDER BY name');
  }

  async get(name: string): Promise<ScheduleRecord | null> {
    return this.#one(name);
  }

  pause(name: string, now: number): Promise<ScheduleRecord | null> {
    return this.#run(() => {
      this.#db.prepare('UPDATE schedules SET paused = 1, updated_at = ? WHERE name = ? AND paused = 0').run(now, name);
      return this.#one(name);
    });
  }

  resume(name: string, nextTickAt: number | null, now: number): Promise<ScheduleRecord | null> {
    return this.#run(() => {
      this.#db.prepare('UPDATE schedules SET paused = 0, next_tick_at = ?, updated_at = ? WHERE name = ? AND paused = 1').run(nextTickAt, now, name);
      return this.#one(name);
    });
  }

  remove(name: string): Promise<boolean> {
    return this.#run(() => this.#db.prepare('DELETE FROM schedules WHERE name = ?').run(name).changes > 0);
  }

  async due(now: number, limit: number): Promise<{ due: ScheduleRecord[]; nextAt: number | null }> {
    const due = this.#rows(`SELECT * FROM schedules WHERE paused = 0 AND next_tick_at <= ? ORDER BY next_tick_at ${boundLimit()}`, now, limit);
    const next = this.#db.prepare('SELECT min(next_tick_at) AS at FROM schedules WHERE paused = 0 AND next_tick_at > ?').get(now) as { at: number | null };
    return { due, nextAt: due.length >= limit ? now : next.at };
  }

  tick(req: ScheduleTickRequest): Promise<string | null> {
    return this.#run(() => {
      const moved = this.#db
        .prepare(`UPDATE schedules SET next_tick_at = @next, skipped_ticks = skipped_ticks + @skipped, updated_at = @now
          WHERE name = @name AND paused = 0 AND next_tick_at = @expected`)
        .run({ next: req.nextTickAt, skipped: req.skipped, now: req.now, name: req.name, expected: req.expectedNextTickAt });
      if (moved.changes === 0) return null;
      if (!req.call) return '';
      const id = this.#insertCall(req.call);
      this.#db
        .prepare('UPDATE schedules SET last_tick_at = ?, last_dispatch_id = ?, ticks = ticks + 1 WHERE name = ?')
        .run(req.tickAt, id, req.name);
      return id;
    });
  }
}
