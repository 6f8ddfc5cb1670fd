/**
 * Circuits per endpoint: refused connections stop the sending of calls to
 * an endpoint (its calls wait, pending, and no attempt is made), one call
 * probes it now and then with growing delays, and the queue is released as
 * soon as a probe connects. A crash of the app (connections dropped while
 * requests were in flight) first lets one probe through before the queue,
 * so that the calls freed by the crash are not all sent to a process that
 * is still restarting. While an endpoint is unreachable, one line per
 * interval says so (not one per attempt).
 * @module
 */
import { SCHEDULER_DEFAULTS } from '../options.js';

/**
 * Timing of circuits; defaults in `SCHEDULER_DEFAULTS.circuit`.
 * @example
 * const c: CircuitOptions = { initialProbeMs: 250, maxProbeMs: 10_000 };
 */
export interface CircuitOptions {
  /**
   * Delay before the first probe of an endpoint that refused a connection,
   * in ms; each refused probe doubles it.
   * @example { initialProbeMs: 1000 }
   */
  initialProbeMs?: number;
  /**
   * Longest delay between two probes, in ms.
   * @example { maxProbeMs: 30_000 }
   */
  maxProbeMs?: number;
  /**
   * While an endpoint stays unreachable, at most one log line per this
   * many ms (plus one when it opens and one when it closes).
   * @example { logIntervalMs: 60_000 }
   */
  logIntervalMs?: number;
}

/**
 * The state of one endpoint's circuit.
 * - `closed`: calls are sent (within the concurrency limits).
 * - `open`: the endpoint refused connections; nothing is sent until the next probe.
 * - `probing`: one call is being sent (or may be sent now) to learn whether the endpoint answers.
 * @example
 * const s: CircuitState = scheduler.circuits()[0]?.state ?? 'closed';
 */
export type CircuitState = 'closed' | 'open' | 'probing';

/**
 * One endpoint's circuit, as the dashboard shows it.
 * @example
 * for (const c of scheduler.circuits()) console.log(c.endpoint, c.state, c.nextProbeAt);
 */
export interface CircuitSnapshot {
  endpoint: string;
  state: CircuitState;
  /** When the circuit entered its state (ms since the epoch). */
  since: number;
  /** When the next probe may start (`open` only), else null. */
  nextProbeAt: number | null;
  /** Attempts whose connection was refused since the circuit last closed (probes included). */
  refused: number;
  /** Probes made since the circuit last closed. */
  probes: number;
  /** The last refusal's error, or '' when closed. */
  lastError: string;
}

interface Entry {
  state: CircuitState;
  since: number;
  delayMs: number;
  nextProbeAt: number;
  /** The probe: none out, offered to a claim (not started yet), or in flight. */
  probe: 'none' | 'offered' | 'running';
  refused: number;
  probes: number;
  lastError: string;
  lastLogAt: number;
  /** Why the circuit is not closed: the app refused, or it crashed (dropped connections). */
  cause: 'refused' | 'crashed';
}

/**
 * What {@link EndpointCircuits} needs from the scheduler.
 * @example
 * const env: CircuitEnvironment = { log: (line) => logger.warn(line), waiting: (ep) => store.countWaiting!(ep) };
 */
export interface CircuitEnvironment {
  /** Writes a line about an endpoint (warnings when it goes down, info when it answers again). */
  log(level: 'warn' | 'info', line: string): void;
  /** Number of calls waiting for an endpoint, for the log line; null when unknown. */
  waiting?(endpoint: string): Promise<number | null>;
  /** Called when an endpoint's circuit changes state. */
  onChange?(snapshot: CircuitSnapshot): void;
  /** The clock (tests). */
  now?(): number;
}

const numberText = (n: number) => n.toLocaleString('en-US');
const secondsText = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/**
 * The circuits of every endpoint this scheduler calls.
 * @example
 * const circuits = new EndpointCircuits({}, { log: (level, line) => console.log(level, line) });
 * if (circuits.allowance(endpoint) > 0) { const probe = circuits.started(endpoint); ... }
 */
export class EndpointCircuits {
  readonly initialProbeMs: number;
  readonly maxProbeMs: number;
  readonly logIntervalMs: number;
  readonly #entries = new Map<string, Entry>();
  readonly #env: CircuitEnvironment;
  readonly #now: () => number;

  constructor(options: CircuitOptions = {}, env: CircuitEnvironment) {
    const d = SCHEDULER_DEFAULTS.circuit;
    this.initialProbeMs = options.initialProbeMs ?? d.initialProbeMs;
    this.maxProbeMs = options.maxProbeMs ?? d.maxProbeMs;
    this.logIntervalMs = options.logIntervalMs ?? d.logIntervalMs;
    for (const key of ['initialProbeMs', 'maxProbeMs', 'logIntervalMs'] as const) {
      if (!(Number.isFinite(this[key]) && this[key] > 0)) throw new RangeError(`circuit.${key} must be a positive number of ms, got ${String(options[key])}`);
    }
    if (this.maxProbeMs < this.initialProbeMs) {
      throw new RangeError(`circuit.maxProbeMs (${this.maxProbeMs}) must be at least circuit.initialProbeMs (${this.initialProbeMs})`);
    }
    this.#env = env;
    this.#now = env.now ?? Date.now;
  }

  /**
   * Whether calls of `endpoint` go without restriction (its circuit is
   * closed). Changes nothing, unlike {@link allowance}.
   */
  isClosed(endpoint: string): boolean {
    const e = this.#entries.get(endpoint);
    return !e || e.state === 'closed';
  }

  /**
   * How many calls of `endpoint` may start now: unlimited when closed, 1
   * when a probe is due and none is out, else 0. A probe offered to a claim
   * that found no call of this endpoint is offered again by the next claim
   * ({@link unclaimed}).
   */
  allowance(endpoint: string): number {
    const e = this.#entries.get(endpoint);
    if (!e || e.state === 'closed') return Number.POSITIVE_INFINITY;
    if (e.probe !== 'none' || this.#now() < e.nextProbeAt) return 0;
    e.probe = 'offered';
    return 1;
  }

  /**
   * A call of `endpoint` held back (a suspect of a crash) may go now as the
   * probe: the probe was offered and not taken, or is due. Then call
   * {@link started}.
   */
  mayProbe(endpoint: string): boolean {
    const e = this.#entries.get(endpoint);
    if (!e || e.state === 'closed') return false;
    return e.probe === 'offered' || this.allowance(endpoint) > 0;
  }

  /** A claim made after {@link allowance} offered a probe took no call of `endpoint`: offer it again. */
  unclaimed(endpoint: string): void {
    const e = this.#entries.get(endpoint);
    if (e && e.state !== 'closed' && e.probe === 'offered') e.probe = 'none';
  }

  /**
   * A call of `endpoint` starts; true if it is the endpoint's probe (the
   * circuit is not closed), whose outcome decides the circuit.
   */
  started(endpoint: string): boolean {
    const e = this.#entries.get(endpoint);
    if (!e || e.state === 'closed' || e.probe === 'running') return false;
    e.probe = 'running';
    e.probes++;
    this.#set(endpoint, e, 'probing');
    return true;
  }

  /** A request to `endpoint` connected: the endpoint answers, its queue is released. */
  connected(endpoint: string): void {
    const e = this.#entries.get(endpoint);
    if (!e || e.state === 'closed') return;
    const down = this.#now() - e.since;
    const cause = e.cause;
    const refused = e.refused;
    this.#entries.delete(endpoint);
    if (cause === 'refused' || refused > 0) {
      this.#env.log('info', `endpoint ${endpoint} answers again after ${secondsText(down)} unreachable (${numberText(refused)} refused attempt(s)): its waiting calls are released`);
    }
    this.#env.onChange?.(this.snapshot(endpoint));
  }

  /**
   * An attempt to `endpoint` was refused. Opens the circuit (or keeps it
   * open); a refused probe doubles the delay before the next one.
   */
  refused(endpoint: string, message: string, probe: boolean): void {
    const now = this.#now();
    let e = this.#entries.get(endpoint);
    if (!e || e.state === 'closed') {
      e = this.#open(endpoint, 'refused', now);
    } else if (probe) {
      e.delayMs = e.cause === 'crashed' && e.refused === 0 ? this.initialProbeMs : Math.min(this.maxProbeMs, e.delayMs * 2);
      e.cause = 'refused';
      e.probe = 'none';
      e.nextProbeAt = now + e.delayMs;
      this.#set(endpoint, e, 'open');
    }
    e.refused++;
    e.lastError = message;
    if (now - e.lastLogAt >= this.logIntervalMs || e.refused === 1) this.#report(endpoint, e, now);
  }

  /**
   * The app behind `endpoint` crashed (a connection dropped while a request
   * was in flight): one probe goes first before the queue is released again.
   * `probe`: the crashed request was this endpoint's probe.
   */
  crashed(endpoint: string, message: string, probe: boolean): void {
    const now = this.#now();
    const e = this.#entries.get(endpoint);
    if (e && e.state !== 'closed') {
      // A probe that crashed the app: the next probe waits.
      if (probe && e.state === 'probing') {
        e.probe = 'none';
        e.nextProbeAt = now + e.delayMs;
        this.#set(endpoint, e, 'open');
      }
      e.lastError = message;
      return;
    }
    const opened = this.#open(endpoint, 'crashed', now);
    opened.nextProbeAt = now;
    opened.lastError = message;
  }

  /** A probe ended without telling whether the endpoint answers (say a timeout): let another go. */
  probeEnded(endpoint: string): void {
    const e = this.#entries.get(endpoint);
    if (e?.state !== 'probing') return;
    e.probe = 'none';
    e.nextProbeAt = this.#now() + e.delayMs;
    this.#set(endpoint, e, 'open');
  }

  /** The probe of `endpoint` was not sent after all (its call had expired): the next claim may probe at once. */
  probeNotSent(endpoint: string): void {
    const e = this.#entries.get(endpoint);
    if (e?.state !== 'probing' || e.probe !== 'running') return;
    e.probe = 'none';
    e.probes = Math.max(0, e.probes - 1);
    this.#set(endpoint, e, 'open');
  }

  /** Earliest time a probe may start, over all endpoints (null: none is waiting): the run loop wakes then. */
  nextProbeAt(): number | null {
    let next: number | null = null;
    for (const e of this.#entries.values()) {
      if (e.state === 'open' && e.probe === 'none' && (next === null || e.nextProbeAt < next)) next = e.nextProbeAt;
    }
    return next;
  }

  /** The state of one endpoint's circuit. */
  snapshot(endpoint: string): CircuitSnapshot {
    const e = this.#entries.get(endpoint);
    if (!e) return { endpoint, state: 'closed', since: 0, nextProbeAt: null, refused: 0, probes: 0, lastError: '' };
    return {
      endpoint,
      state: e.state,
      since: e.since,
      nextProbeAt: e.state === 'open' ? e.nextProbeAt : null,
      refused: e.refused,
      probes: e.probes,
      lastError: e.lastError,
    };
  }

  /** Every endpoint whose circuit is not closed. */
  all(): CircuitSnapshot[] {
    return [...this.#entries.keys()].map((endpoint) => this.snapshot(endpoint));
  }

  #open(endpoint: string, cause: Entry['cause'], now: number): Entry {
    const e: Entry = {
      state: 'open',
      since: now,
      delayMs: this.initialProbeMs,
      nextProbeAt: now + this.initialProbeMs,
      probe: 'none',
      refused: 0,
      probes: 0,
      lastError: '',
      lastLogAt: Number.NEGATIVE_INFINITY,
      cause,
    };
    this.#entries.set(endpoint, e);
    this.#env.onChange?.(this.snapshot(endpoint));
    return e;
  }

  #set(endpoint: string, e: Entry, state: CircuitState): void {
    if (e.state === state) return;
    e.state = state;
    this.#env.onChange?.(this.snapshot(endpoint));
  }

  #report(endpoint: string, e: Entry, now: number): void {
    e.lastLogAt = now;
    const code = /\bE[A-Z]+\b/.exec(e.lastError)?.[0] ?? 'connection refused';
    const probe = e.state === 'open' ? `next probe in ${secondsText(Math.max(0, e.nextProbeAt - now))}` : 'probing';
    const line = (waiting: number | null) =>
      `endpoint ${endpoint} unreachable (${code}): ${waiting === null ? '' : `${numberText(waiting)} call(s) waiting; `}${probe}` +
      (e.refused > 1 ? ` (${numberText(e.refused)} refused attempt(s) in ${secondsText(now - e.since)})` : '');
    const waiting = this.#env.waiting;
    if (!waiting) {
      this.#env.log('warn', line(null));
      return;
    }
    waiting(endpoint).then(
      (n) => this.#env.log('warn', line(n)),
      () => this.#env.log('warn', line(null)),
    );
  }
}
