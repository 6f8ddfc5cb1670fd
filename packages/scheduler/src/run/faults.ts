/**
 * What the run loop does about an app that is down or crashes: the
 * circuits of endpoints (`circuit.ts`) and the quarantine of poison calls
 * (`quarantine.ts`), behind the few hooks the run loop calls.
 * @module
 */
import type { proto } from '@dispatch/core/protocol';
import type { EndpointCircuits } from './circuit.js';
import type { RunReply as EndpointReply } from './transport.js';
import { type CrashQuarantine, quarantineError, SUSPECT_SOLO_MS } from './quarantine.js';

/** The part of a claimed call these hooks read. */
interface CallRef {
  id: string;
  function: string;
  endpoint: string;
}

/**
 * A run admitted by {@link RunFaults.admit}.
 * @example
 * const admitted = await faults.admit(call, () => stopping);
 * if (!admitted.run) return;
 */
export interface Admission {
  /** False: do not send (the scheduler stops); the call stays leased until its lease expires. */
  run: boolean;
  /** This run is its endpoint's probe. */
  probe: boolean;
  /** The run holds its endpoint's suspects' lane (call {@link RunFaults.done}). */
  lane: boolean;
  /** Gives the lane back (once; also after `soloMs` of running). */
  release?: () => void;
}

/**
 * What a reply means for faults.
 * @example
 * const v = faults.afterReply(call, reply, admitted);
 * if (v.quarantine) outcome = { kind: 'finish', status: Status.PERMANENT_ERROR, output: null, error: v.quarantine };
 */
export interface ReplyVerdict {
  /** Set when the call is quarantined now: it must fail with this error. */
  quarantine: proto.IError | null;
  /** The reply says something about the endpoint's load (adapt the concurrency limit); false for refusals and crashes. */
  adapt: boolean;
  /** A refusal: counted in the circuit's line, not logged on its own line. */
  quiet: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The run loop's hooks into circuits and quarantine.
 * @example
 * const faults = new RunFaults(circuits, quarantine);
 */
export class RunFaults {
  readonly circuits: EndpointCircuits;
  readonly quarantine: CrashQuarantine;
  /** Endpoints offered a probe during the current claim. */
  readonly #offered = new Set<string>();
  readonly #soloMs: number;

  /**
   * @param soloMs how long a suspect runs alone among suspects before the
   * next one may go (a run that lasts longer does not hold the others back).
   */
  constructor(circuits: EndpointCircuits, quarantine: CrashQuarantine, soloMs = SUSPECT_SOLO_MS) {
    this.circuits = circuits;
    this.quarantine = quarantine;
    this.#soloMs = soloMs;
  }

  /** The claim's capacity of (endpoint, function): the concurrency's, within the circuit's allowance. */
  capacity(endpoint: string, concurrency: number): number {
    if (concurrency <= 0) return 0;
    const allowance = this.circuits.allowance(endpoint);
    if (allowance === 1) this.#offered.add(endpoint);
    return Math.min(concurrency, allowance);
  }

  /**
   * The capacity of a claim made by a completion (`Store.completeAndClaim`):
   * the concurrency's while the endpoint's circuit is closed, else none (a
   * probe and a suspect's lane are the usual claim's business).
   */
  followOnCapacity(endpoint: string, concurrency: number): number {
    return concurrency > 0 && this.circuits.isClosed(endpoint) ? concurrency : 0;
  }

  /** After a claim: probes offered to endpoints of which no call was claimed are offered again next time. */
  claimed(calls: readonly CallRef[]): void {
    if (this.#offered.size === 0) return;
    for (const c of calls) this.#offered.delete(c.endpoint);
    for (const endpoint of this.#offered) this.circuits.unclaimed(endpoint);
    this.#offered.clear();
  }

  /**
   * Waits until a claimed call may be sent: a suspect waits for its
   * endpoint's lane, and then for the circuit to close or to let it probe.
   */
  async admit(call: CallRef, stopping: () => boolean): Promise<Admission> {
    return this.admitNow(call) ?? (await this.#admitSuspect(call, stopping));
  }

  /** Admits a call that is no suspect at once (synchronously); null for a suspect (use {@link admit}). */
  admitNow(call: CallRef): Admission | null {
    if (this.quarantine.isSuspect(call.id)) return null;
    return { run: true, probe: this.circuits.started(call.endpoint), lane: false };
  }

  async #admitSuspect(call: CallRef, stopping: () => boolean): Promise<Admission> {
    if (!(await this.quarantine.enter(call.endpoint))) return { run: false, probe: false, lane: false };
    for (;;) {
      if (stopping()) return { run: false, probe: false, lane: true };
      if (this.circuits.snapshot(call.endpoint).state === 'closed') return this.#solo(call, false);
      if (this.circuits.mayProbe(call.endpoint) && this.circuits.started(call.endpoint)) return this.#solo(call, true);
      await sleep(50);
    }
  }

  /** A suspect runs holding the lane, until it ends or for `soloMs` at most. */
  #solo(call: CallRef, probe: boolean): Admission {
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      clearTimeout(timer);
      this.quarantine.leave(call.endpoint);
    };
    const timer = setTimeout(release, this.#soloMs);
    timer.unref();
    return { run: true, probe, lane: true, release };
  }

  /** The request to the call's endpoint connected. */
  connected(endpoint: string): void {
    this.circuits.connected(endpoint);
  }

  /** What the reply means: opens circuits, counts crashes, quarantines. */
  afterReply(call: CallRef, reply: EndpointReply, admitted: Admission): ReplyVerdict {
    const connection = reply.kind === 'transport' ? reply.connection : undefined;
    if (connection === 'refused') {
      this.circuits.refused(call.endpoint, reply.kind === 'transport' ? reply.message : '', admitted.probe);
      return { quarantine: null, adapt: false, quiet: true };
    }
    if (connection === 'dropped') {
      const message = reply.kind === 'transport' ? reply.message : '';
      this.circuits.crashed(call.endpoint, message, admitted.probe);
      const v = this.quarantine.crashed(call.id, call.endpoint);
      return { quarantine: v.quarantined ? quarantineError(call, v.crashes, message) : null, adapt: false, quiet: false };
    }
    if (admitted.probe) this.circuits.probeEnded(call.endpoint);
    this.quarantine.cleared(call.id);
    return { quarantine: null, adapt: true, quiet: false };
  }

  /** The admitted call is not sent after all (it expired): a probe it was is given back. */
  notSent(call: CallRef, admitted: Admission): void {
    if (admitted.probe) this.circuits.probeNotSent(call.endpoint);
  }

  /** The run is over (recorded or not): the next suspect may go. */
  done(call: CallRef, admitted: Admission): void {
    if (admitted.release) admitted.release();
    else if (admitted.lane) this.quarantine.leave(call.endpoint);
  }

  /** The call finished (or its lease was lost): forget its crashes. */
  forget(id: string): void {
    this.quarantine.cleared(id);
  }
}
