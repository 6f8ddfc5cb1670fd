/**
 * Schedules: what `dispatch.function({ name, schedule }, fn)` accepts, how a
 * cron expression is read (croner: five or six fields, an optional IANA time
 * zone), and the tick a scheduled function receives. The SDK validates with
 * it at registration, and the scheduler computes ticks with the same code
 * (through `@dispatch/core/protocol`), so both read an expression alike.
 * @module
 */
import { Cron } from 'croner';

/**
 * What to do with ticks missed while no scheduler instance ran:
 * - `'run-once'` (default): the ticks found due together run once, as one
 *   call for the latest of them (its `tick.missed` counts the earlier ones);
 * - `'skip'`: a tick found more than 5 seconds after its time is not run.
 * @example const missed: MissedTicksPolicy = 'skip';
 */
export type MissedTicksPolicy = 'run-once' | 'skip';

/**
 * A schedule in its object form (the string form is the cron alone, in UTC).
 * @example
 * const schedule: ScheduleOptions = { cron: '0 9 * * 1', timeZone: 'Europe/Paris', missed: 'skip' };
 */
export interface ScheduleOptions {
  /**
   * Five fields (`minute hour day-of-month month day-of-week`) or six
   * (seconds first); ranges, lists, steps, names (`MON`, `JAN`) and
   * nicknames (`@daily`, `@hourly`) are accepted.
   * @example '30 9 * * MON-FRI'
   */
  cron: string;
  /**
   * The IANA time zone the expression is read in; default UTC.
   * @example 'Europe/Paris'
   */
  timeZone?: string;
  /** Ticks missed while no scheduler ran; default `'run-once'`. @example 'skip' */
  missed?: MissedTicksPolicy;
}

/**
 * The one argument a scheduled function receives at each tick.
 * @example
 * ```ts
 * const report = dispatch.function({ name: 'report', schedule: '0 * * * *' }, async (tick: ScheduleTick) => {
 *   console.log(`tick of ${tick.time.toISOString()}`, tick.missed ? `(and ${tick.missed} missed before)` : '');
 * });
 * ```
 */
export interface ScheduleTick {
  /** The schedule's name (the function's). */
  name: string;
  /** The tick's time, as the cron expression gives it (not when it ran). */
  time: Date;
  /**
   * Ticks missed just before this one and found due with it, while no
   * scheduler ran (0 normally): with `missed: 'run-once'` this call stands
   * for them; with `'skip'` they were not run.
   */
  missed: number;
}

/**
 * A schedule checked and normalised.
 * @example const s: ResolvedSchedule = { cron: '0 9 * * 1', timeZone: '', missed: 'run-once' };
 */
export interface ResolvedSchedule {
  cron: string;
  /** IANA time zone, or `''` for UTC. */
  timeZone: string;
  missed: MissedTicksPolicy;
}

const MISSED: readonly MissedTicksPolicy[] = ['run-once', 'skip'];
const FIELDS_HELP =
  'use five fields (minute hour day-of-month month day-of-week) or six with seconds first, for example "*/10 * * * * *" (every 10 seconds) or "0 9 * * 1" (Mondays at 9:00)';

/**
 * Checks a schedule as given to `dispatch.function` (or declared to the
 * scheduler) and normalises it; throws a `TypeError` naming the function and
 * the bad expression, time zone or option.
 * @example parseSchedule({ cron: '0 9 * * 1', timeZone: 'Europe/Paris' }, 'report')
 */
export function parseSchedule(input: unknown, name: string): ResolvedSchedule {
  const where = `the schedule of ${JSON.stringify(name)}`;
  let options: ScheduleOptions;
  if (typeof input === 'string') options = { cron: input };
  else if (input !== null && typeof input === 'object' && typeof (input as ScheduleOptions).cron === 'string') options = input as ScheduleOptions;
  else {
    throw new TypeError(
      `${where} must be a cron expression or { cron, timeZone?, missed? }, got ${describe(input)}; ${FIELDS_HELP}`,
    );
  }
  const cron = options.cron.trim().replace(/\s+/g, ' ');
  const timeZone = options.timeZone?.trim() ?? '';
  const missed = options.missed ?? 'run-once';
  if (!MISSED.includes(missed)) {
    throw new TypeError(`${where} has missed: ${JSON.stringify(missed)}; use 'run-once' (the default) or 'skip'`);
  }
  if (timeZone) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone });
    } catch {
      throw new TypeError(`${where} has an unknown time zone ${JSON.stringify(timeZone)}: use an IANA name such as "Europe/Paris" or "America/New_York"`);
    }
  }
  const resolved: ResolvedSchedule = { cron, timeZone, missed };
  let first: number | null;
  try {
    first = nextTickAfter(resolved, Date.now());
  } catch (err) {
    const why = (err as Error).message.replace(/^Cron[A-Za-z]*: /, '');
    throw new TypeError(`${where} has an invalid cron expression ${JSON.stringify(options.cron)} (${why}); ${FIELDS_HELP}`);
  }
  if (first === null) {
    throw new TypeError(`${where} has a cron expression that never matches a date: ${JSON.stringify(options.cron)}; ${FIELDS_HELP}`);
  }
  return resolved;
}

const cache = new Map<string, Cron>();

function cronOf(schedule: Pick<ResolvedSchedule, 'cron' | 'timeZone'>): Cron {
  const key = `${schedule.timeZone}\u0000${schedule.cron}`;
  let cron = cache.get(key);
  if (!cron) {
    cron = new Cron(schedule.cron, { paused: true, mode: '5-or-6-parts', ...(schedule.timeZone ? { timezone: schedule.timeZone } : {}) });
    if (cache.size > 1000) cache.clear();
    cache.set(key, cron);
  }
  return cron;
}

/**
 * The first tick strictly after `afterMs` (ms since the epoch), or null when
 * the expression has no later date. Throws on an invalid expression.
 * @example nextTickAfter({ cron: '0 9 * * 1', timeZone: 'Europe/Paris' }, Date.now())
 */
export function nextTickAfter(schedule: Pick<ResolvedSchedule, 'cron' | 'timeZone'>, afterMs: number): number | null {
  return cronOf(schedule).nextRun(new Date(afterMs))?.getTime() ?? null;
}

/**
 * The ticks due at `now` from `firstDue` (a tick at or before `now`): how
 * many there are (counted up to `cap`), the latest, and the first tick after
 * `now` (null when none).
 * @example const { count, latest, next } = dueTicks(schedule, row.nextTickAt, Date.now());
 */
export function dueTicks(
  schedule: Pick<ResolvedSchedule, 'cron' | 'timeZone'>,
  firstDue: number,
  now: number,
  cap = 100_000,
): { count: number; latest: number; next: number | null } {
  let count = 1;
  let latest = firstDue;
  let t = nextTickAfter(schedule, firstDue);
  while (t !== null && t <= now && count < cap) {
    count++;
    latest = t;
    t = nextTickAfter(schedule, t);
  }
  if (t !== null && t <= now) {
    // Past the cap: jump to the latest tick at or before now.
    latest = cronOf(schedule).previousRuns(1, new Date(now + 1))[0]?.getTime() ?? latest;
    t = nextTickAfter(schedule, now);
  }
  return { count, latest, next: t };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object without a string "cron" (${JSON.stringify(value)?.slice(0, 80)})`;
  return `${typeof value} ${String(value)}`;
}
