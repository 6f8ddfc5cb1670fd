/**
 * The store of schedules (issue 15), beside the calls: each store exposes
 * one as `store.schedules`. What a tick is (which times are due, which are
 * missed) is decided by the ticker (`../schedules/ticker.ts`); the store only
 * records it, atomically: a tick advances `nextTickAt` with a
 * compare-and-set and inserts its call in the same transaction, so that a
 * tick runs once however many instances share the store.
 * @module
 */
import type { NewCall } from './store.js';

/**
 * A schedule as stored.
 * @example
 * const s: ScheduleRecord | null = await store.schedules.get('report');
 */
export interface ScheduleRecord {
  /** The schedule's name: the function it calls. */
  name: string;
  endpoint: string;
  cron: string;
  /** IANA time zone, or `''` for UTC. */
  timeZone: string;
  missed: 'run-once' | 'skip';
  /** Expiration of each tick's call; null for the scheduler's default. */
  expirationMs: number | null;
  paused: boolean;
  /** The next tick to run, ms since the epoch; null when the expression has no later date. */
  nextTickAt: number | null;
  lastTickAt: number | null;
  lastDispatchId: string | null;
  /** Ticks run (calls inserted). */
  ticks: number;
  /** Ticks not run (missed). */
  skippedTicks: number;
  createdAt: number;
  updatedAt: number;
}

/**
 * A schedule an endpoint declares.
 * @example
 * const d: ScheduleDeclaration = { name: 'report', cron: '0 9 * * 1', timeZone: 'Europe/Paris', missed: 'run-once', expirationMs: null, nextTickAt };
 */
export interface ScheduleDeclaration {
  name: string;
  cron: string;
  timeZone: string;
  missed: 'run-once' | 'skip';
  expirationMs: number | null;
  /** The first tick after now: used for a new schedule, or one whose cron or time zone changed. */
  nextTickAt: number | null;
}

/**
 * One tick to record.
 * @example
 * await store.schedules.tick({ name, expectedNextTickAt: s.nextTickAt!, nextTickAt, tickAt, skipped: 0, call, now });
 */
export interface ScheduleTickRequest {
  name: string;
  /** The `nextTickAt` the ticker read: the compare of the compare-and-set. */
  expectedNextTickAt: number;
  /** The new `nextTickAt` (the first tick after now), or null. */
  nextTickAt: number | null;
  /** The tick run (`lastTickAt`). */
  tickAt: number;
  /** Ticks not run by this step (missed). */
  skipped: number;
  /** The tick's call (with its idempotency key), or null when the tick is skipped. */
  call: NewCall | null;
  now: number;
}

/**
 * The schedules of a store.
 * @example
 * const { due, nextAt } = await store.schedules.due(Date.now(), 100);
 */
export interface ScheduleStore {
  /**
   * Upserts the endpoint's declared schedules (a paused one stays paused;
   * `nextTickAt` changes only for a new schedule or a changed cron or time
   * zone) and removes the endpoint's schedules not declared. Answers the
   * endpoint's schedules and the names removed.
   */
  declare(endpoint: string, schedules: ScheduleDeclaration[], now: number): Promise<{ schedules: ScheduleRecord[]; removed: string[] }>;
  /** Every schedule, by name. */
  list(): Promise<ScheduleRecord[]>;
  get(name: string): Promise<ScheduleRecord | null>;
  /** Pauses; null for an unknown name. */
  pause(name: string, now: number): Promise<ScheduleRecord | null>;
  /** Resumes a paused schedule from `nextTickAt` (an unpaused one is left as is); null for an unknown name. */
  resume(name: string, nextTickAt: number | null, now: number): Promise<ScheduleRecord | null>;
  /** Deletes; false for an unknown name. */
  remove(name: string): Promise<boolean>;
  /** Unpaused schedules due at `now` (at most `limit`), and the earliest `nextTickAt` of the others. */
  due(now: number, limit: number): Promise<{ due: ScheduleRecord[]; nextAt: number | null }>;
  /**
   * Records a tick if the schedule is unpaused and its `nextTickAt` is still
   * `expectedNextTickAt`, inserting its call (an idempotency key already
   * known answers the existing call). Answers the call's dispatch ID (or
   * `''` for a skipped tick), or null when the compare-and-set failed.
   */
  tick(req: ScheduleTickRequest): Promise<string | null>;
}

/** A `schedules` row as both stores return it. */
export interface ScheduleRow {
  name: string;
  endpoint: string;
  cron: string;
  time_zone: string;
  missed: string;
  expiration_ms: number | null;
  paused: number | boolean;
  next_tick_at: number | null;
  last_tick_at: number | null;
  last_dispatch_id: string | null;
  ticks: number;
  skipped_ticks: number;
  created_at: number;
  updated_at: number;
}

/** A row as a record. */
export function toScheduleRecord(r: ScheduleRow): ScheduleRecord {
  return {
    name: r.name,
    endpoint: r.endpoint,
    cron: r.cron,
    timeZone: r.time_zone,
    missed: r.missed === 'skip' ? 'skip' : 'run-once',
    expirationMs: r.expiration_ms === null ? null : Number(r.expiration_ms),
    paused: r.paused === true || r.paused === 1,
    nextTickAt: r.next_tick_at === null ? null : Number(r.next_tick_at),
    lastTickAt: r.last_tick_at === null ? null : Number(r.last_tick_at),
    lastDispatchId: r.last_dispatch_id,
    ticks: Number(r.ticks),
    skippedTicks: Number(r.skipped_ticks),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}
