/**
 * Schedules on the scheduler side (issue 15): the ScheduleService methods
 * (declare, list, pause, resume, remove) and the ticker that runs due ticks.
 *
 * Every instance ticks: it reads the due schedules, and for each one
 * records the tick with a compare-and-set on `next_tick_at` that inserts
 * the tick's call in the same transaction (idempotency key
 * `schedule:<name>:<tick time>`); an instance that loses the race records
 * nothing. So a tick runs once however many instances share the store.
 *
 * Missed ticks: all the ticks of a schedule found due at once (the
 * scheduler was not running at their time) run once, as one call for the
 * latest of them (`missed: 'run-once'`, its `tick.missed` counts the others),
 * or, with `missed: 'skip'`, a tick found more than
 * {@link SKIP_MISSED_AFTER_MS} after its time is not run.
 * @module
 */
import { dueTicks, encodeArgs, FUNCTION_NAME_PATTERN, nextTickAfter, parseSchedule, proto, type ScheduleTick } from '@dispatch/core/protocol';
import { SchedulerError } from '../errors.js';
import type { Logger } from '../logger.js';
import { newDispatchId } from '../store/dispatch-id.js';
import type { ScheduleDeclaration, ScheduleRecord } from '../store/schedule-store.js';
import type { NewCall, Store } from '../store/store.js';

/** With `missed: 'skip'`, a tick found this long after its time is missed: not run. */
export const SKIP_MISSED_AFTER_MS = 5_000;
/** The ticker looks at the schedules at least this often (declarations on other instances, resumes). */
const MAX_SLEEP_MS = 1_000;
/** Most schedules an endpoint declares in one request. */
const MAX_SCHEDULES = 1_000;

/**
 * The schedules of one scheduler instance: API methods and the ticker.
 * @example
 * const schedules = new Schedules({ store, log, defaultExpirationMs: 3_600_000, maxExpirationMs: 86_400_000, onDispatched: () => loop.wake() });
 * schedules.start();
 */
export class Schedules {
  readonly #store: Store;
  readonly #log: Logger;
  readonly #defaultExpirationMs: number;
  readonly #maxExpirationMs: number;
  readonly #onDispatched: (ids: string[], functions: string[]) => void;
  readonly #onTick: ((schedule: string, outcome: 'dispatched' | 'skipped', ticks: number) => void) | undefined;
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  #stopped = true;
  #pass: Promise<void> | null = null;
  #again = false;
  readonly #broken = new Set<string>();

  constructor(init: {
    store: Store;
    log: Logger;
    defaultExpirationMs: number;
    maxExpirationMs: number;
    /** Calls were inserted (wake the run loop). */
    onDispatched: (ids: string[], functions: string[]) => void;
    /** This instance ran (`dispatched`: one call for `ticks` ticks) or skipped ticks of a schedule (metrics). */
    onTick?: (schedule: string, outcome: 'dispatched' | 'skipped', ticks: number) => void;
  }) {
    this.#store = init.store;
    this.#log = init.log;
    this.#defaultExpirationMs = init.defaultExpirationMs;
    this.#maxExpirationMs = init.maxExpirationMs;
    this.#onDispatched = init.onDispatched;
    this.#onTick = init.onTick;
  }

  /** Starts ticking. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.wake();
  }

  /** Stops ticking; resolves once a pass in progress has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#pass;
  }

  /** Looks at the schedules now. */
  wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#running = true;
    this.#pass = this.#tickAll()
      .catch((err: unknown) => {
        this.#log.warn(`schedules: cannot read the due schedules (${(err as Error).message}); trying again in 1 s`);
        return Date.now() + MAX_SLEEP_MS;
      })
      .then((nextAt) => {
        this.#running = false;
        if (this.#stopped) return;
        const delay = this.#again ? 0 : Math.max(0, Math.min(MAX_SLEEP_MS, (nextAt ?? Number.POSITIVE_INFINITY) - Date.now()));
        this.#again = false;
        this.#timer = setTimeout(() => this.wake(), delay);
        this.#timer.unref();
      });
  }

  /** One pass: runs every due tick; answers when the next one is due. */
  async #tickAll(): Promise<number | null> {
    const now = Date.now();
    const { due, nextAt } = await this.#store.schedules.due(now, 100);
    const ids: string[] = [];
    const functions: string[] = [];
    for (const schedule of due) {
      if (this.#stopped) break;
      try {
        const id = await this.#tickOne(schedule, now);
        if (id) {
          ids.push(id);
          functions.push(schedule.name);
        }
      } catch (err) {
        if (!this.#broken.has(schedule.name)) {
          this.#broken.add(schedule.name);
          this.#log.error(`schedule ${schedule.name}: cannot run its tick: ${(err as Error).message}`);
        }
      }
    }
    if (ids.length > 0) this.#onDispatched(ids, functions);
    return due.length > 0 ? Math.min(nextAt ?? now + MAX_SLEEP_MS, now + MAX_SLEEP_MS) : nextAt;
  }

  /** Runs (or skips) the due ticks of one schedule; answers the call's ID when this instance dispatched one. */
  async #tickOne(s: ScheduleRecord, now: number): Promise<string | null> {
    const expected = s.nextTickAt;
    if (expected === null) return null;
    const { count, latest, next } = dueTicks(s, expected, now);
    const skip = s.missed === 'skip' && now - latest > SKIP_MISSED_AFTER_MS;
    const call = skip ? null : this.#tickCall(s, latest, count - 1, now);
    const id = await this.#store.schedules.tick({
      name: s.name,
      expectedNextTickAt: expected,
      nextTickAt: next,
      tickAt: latest,
      skipped: skip ? count : count - 1,
      call,
      now,
    });
    if (id === null) {
      this.#log.debug(`schedule ${s.name}: the tick of ${iso(latest)} was taken by another instance`);
      return null;
    }
    this.#broken.delete(s.name);
    this.#onTick?.(s.name, skip ? 'skipped' : 'dispatched', count);
    if (skip) {
      this.#log.info(`schedule ${s.name}: ${count} tick(s) missed up to ${iso(latest)} skipped (missed: 'skip'); next ${next === null ? 'never' : iso(next)}`);
      return null;
    }
    this.#log.info(
      `schedule ${s.name}: tick ${iso(latest)}${count > 1 ? ` (run once for ${count} missed ticks)` : ''} → ${s.name} ${id}; next ${next === null ? 'never' : iso(next)}`,
    );
    return id;
  }

  #tickCall(s: ScheduleRecord, tickAt: number, missed: number, now: number): NewCall {
    const id = newDispatchId(now);
    const expirationMs = Math.min(this.#maxExpirationMs, s.expirationMs ?? this.#defaultExpirationMs);
    const tick: ScheduleTick = { name: s.name, time: new Date(tickAt), missed };
    return {
      id,
      function: s.name,
      endpoint: s.endpoint,
      input: encodeArgs([tick]),
      idempotencyKey: `schedule:${s.name}:${iso(tickAt)}`,
      createdAt: now,
      dueAt: now,
      expiresAt: now + expirationMs,
      expirationMs,
      rootId: id,
    };
  }

  /** The DeclareSchedules RPC. */
  async declare(req: proto.IDeclareSchedulesRequest): Promise<proto.IDeclareSchedulesResponse> {
    const endpoint = req.endpoint ?? '';
    if (!/^https?:\/\/[^/]/.test(endpoint)) {
      throw new SchedulerError(
        'invalid_argument',
        `DeclareSchedules needs the endpoint's URL (http:// or https://), got ${JSON.stringify(endpoint)}: set DISPATCH_ENDPOINT_URL in the app`,
      );
    }
    const specs = req.schedules ?? [];
    if (specs.length > MAX_SCHEDULES) throw new SchedulerError('invalid_argument', `at most ${MAX_SCHEDULES} schedules per endpoint, got ${specs.length}`);
    const now = Date.now();
    const seen = new Set<string>();
    const declarations = specs.map((spec): ScheduleDeclaration => {
      const name = spec.function ?? '';
      if (!FUNCTION_NAME_PATTERN.test(name)) {
        throw new SchedulerError('invalid_argument', `invalid function name ${JSON.stringify(name)} in a schedule: names must match ${FUNCTION_NAME_PATTERN}`);
      }
      if (seen.has(name)) throw new SchedulerError('invalid_argument', `the function ${JSON.stringify(name)} has two schedules: declare one per function`);
      seen.add(name);
      let parsed: ReturnType<typeof parseSchedule>;
      try {
        parsed = parseSchedule(
          { cron: spec.cron ?? '', timeZone: spec.timeZone ?? '', missed: spec.missed === proto.MissedTicks.MISSED_TICKS_SKIP ? 'skip' : 'run-once' },
          name,
        );
      } catch (err) {
        throw new SchedulerError('invalid_argument', (err as Error).message);
      }
      const ms = proto.durationToMs(spec.expiration);
      return { name, ...parsed, expirationMs: ms && ms > 0 ? ms : null, nextTickAt: nextTickAfter(parsed, now) };
    });
    const { schedules, removed } = await this.#store.schedules.declare(endpoint, declarations, now);
    this.#log.log(
      schedules.length + removed.length > 0 ? 'info' : 'debug',
      `schedules declared by ${endpoint}: ${schedules.map((s) => `${s.name} ${JSON.stringify(s.cron)}${s.timeZone ? ` ${s.timeZone}` : ''}${s.paused ? ' (paused)' : ''}`).join(', ') || 'none'}${removed.length ? `; removed: ${removed.join(', ')}` : ''}`,
    );
    this.wake();
    return { schedules: schedules.map(toScheduleInfo), removed };
  }

  /** Every schedule, by name. */
  async list(): Promise<ScheduleRecord[]> {
    return this.#store.schedules.list();
  }

  /** Pauses a schedule; throws `not_found`. */
  async pause(name: string): Promise<ScheduleRecord> {
    const s = await this.#store.schedules.pause(name, Date.now());
    if (!s) throw notFound(name);
    this.#log.info(`schedule ${name} paused`);
    return s;
  }

  /** Resumes a schedule from its next tick after now; throws `not_found`. */
  async resume(name: string): Promise<ScheduleRecord> {
    const current = await this.#store.schedules.get(name);
    if (!current) throw notFound(name);
    if (!current.paused) return current;
    const now = Date.now();
    const s = await this.#store.schedules.resume(name, nextTickAfter(current, now), now);
    if (!s) throw notFound(name);
    this.#log.info(`schedule ${name} resumed; next tick ${s.nextTickAt === null ? 'never' : iso(s.nextTickAt)}`);
    this.wake();
    return s;
  }

  /** Removes a schedule; throws `not_found`. */
  async remove(name: string): Promise<void> {
    if (!(await this.#store.schedules.remove(name))) throw notFound(name);
    this.#log.info(`schedule ${name} removed`);
  }
}

function notFound(name: string): SchedulerError {
  return new SchedulerError('not_found', `no schedule named ${JSON.stringify(name)}: \`dispatch schedules\` lists them`);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * A stored schedule as the protocol's `ScheduleInfo`.
 * @example const info = toScheduleInfo(await store.schedules.get('report'));
 */
export function toScheduleInfo(s: ScheduleRecord): proto.IScheduleInfo {
  const info: proto.IScheduleInfo = {
    name: s.name,
    endpoint: s.endpoint,
    cron: s.cron,
    timeZone: s.timeZone,
    missed: s.missed === 'skip' ? proto.MissedTicks.MISSED_TICKS_SKIP : proto.MissedTicks.MISSED_TICKS_RUN_ONCE,
    paused: s.paused,
    lastDispatchId: s.lastDispatchId ?? '',
    ticks: s.ticks,
    skippedTicks: s.skippedTicks,
    createTime: proto.timestampFromDate(s.createdAt),
    updateTime: proto.timestampFromDate(s.updatedAt),
  };
  if (!s.paused && s.nextTickAt !== null) info.nextTickTime = proto.timestampFromDate(s.nextTickAt);
  if (s.lastTickAt !== null) info.lastTickTime = proto.timestampFromDate(s.lastTickAt);
  if (s.expirationMs !== null) info.expiration = proto.durationFromMs(s.expirationMs);
  return info;
}
