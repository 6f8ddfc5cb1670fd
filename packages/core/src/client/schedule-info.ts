/**
 * Schedules as the client answers them, decoded (times as Dates, the
 * missed-ticks policy by name).
 * @module
 */
import type { MissedTicksPolicy } from '../api/schedule.js';
import * as proto from '../protocol/proto.js';

/**
 * A schedule as the scheduler keeps it.
 * @example
 * for (const s of await client.listSchedules()) console.log(s.name, s.cron, s.paused ? 'paused' : s.nextTickTime?.toISOString());
 */
export interface ScheduleInfo {
  /** The schedule's name: the function it calls. */
  name: string;
  /** URL of the endpoint that serves the function. */
  endpoint: string;
  cron: string;
  /** IANA time zone, or `''` for UTC. */
  timeZone: string;
  missed: MissedTicksPolicy;
  paused: boolean;
  /** The next tick; null while paused. */
  nextTickTime: Date | null;
  /** The last tick run; null before the first. */
  lastTickTime: Date | null;
  /** The dispatch ID of the last tick's call. */
  lastDispatchId: string | null;
  /** Ticks run (calls dispatched). */
  ticks: number;
  /** Ticks not run (missed, with `missed: 'skip'`). */
  skippedTicks: number;
  createdAt: Date | null;
  updatedAt: Date | null;
  /** The protocol message. */
  raw: proto.IScheduleInfo;
}

/**
 * What {@link DispatchClient.declareSchedules} answers.
 * @example
 * const { schedules, removed } = await client.declareSchedules('http://127.0.0.1:8000', specs);
 */
export interface DeclaredSchedules {
  /** The endpoint's schedules after the declaration. */
  schedules: ScheduleInfo[];
  /** Names of the endpoint's schedules removed because they were no longer declared. */
  removed: string[];
}

/**
 * A schedule to declare: a function of the endpoint and when it runs.
 * @example
 * const spec: ScheduleSpec = { function: 'report', cron: '0 9 * * 1', timeZone: 'Europe/Paris', missed: 'run-once' };
 */
export interface ScheduleSpec {
  function: string;
  cron: string;
  /** IANA time zone; empty or absent for UTC. */
  timeZone?: string;
  missed?: MissedTicksPolicy;
  /** Expiration of each tick's call, in ms; default the scheduler's. */
  expirationMs?: number;
}

/**
 * The policy's protocol number.
 * @example missedTicksNumber('skip') // MissedTicks.MISSED_TICKS_SKIP
 */
export function missedTicksNumber(missed: MissedTicksPolicy | undefined): proto.MissedTicks {
  return missed === 'skip' ? proto.MissedTicks.MISSED_TICKS_SKIP : proto.MissedTicks.MISSED_TICKS_RUN_ONCE;
}

/**
 * The policy of a protocol number (unspecified is run-once).
 * @example missedTicksOf(info.missed) // 'run-once'
 */
export function missedTicksOf(n: proto.MissedTicks | null | undefined): MissedTicksPolicy {
  return n === proto.MissedTicks.MISSED_TICKS_SKIP ? 'skip' : 'run-once';
}

/**
 * Decodes a `ScheduleInfo` message.
 * @example const schedule = decodeScheduleInfo(response.schedule!);
 */
export function decodeScheduleInfo(m: proto.IScheduleInfo): ScheduleInfo {
  return {
    name: m.name ?? '',
    endpoint: m.endpoint ?? '',
    cron: m.cron ?? '',
    timeZone: m.timeZone ?? '',
    missed: missedTicksOf(m.missed),
    paused: !!m.paused,
    nextTickTime: proto.timestampToDate(m.nextTickTime),
    lastTickTime: proto.timestampToDate(m.lastTickTime),
    lastDispatchId: m.lastDispatchId || null,
    ticks: Number(proto.toBigInt(m.ticks ?? 0)),
    skippedTicks: Number(proto.toBigInt(m.skippedTicks ?? 0)),
    createdAt: proto.timestampToDate(m.createTime),
    updatedAt: proto.timestampToDate(m.updateTime),
    raw: m,
  };
}
