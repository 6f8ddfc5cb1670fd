/**
 * The run loop: claims due calls from the store, sends each a signed
 * RunRequest, and records what the endpoint answered (PROTOCOL.md
 * 8.10–8.18).
 * @module
 */
import { Status, type TraceCarrier, type TracedSpan, type Tracing } from '@dispatch/core/protocol';
import { excerpt, JOURNAL_TYPE_URL, proto, isRetryable, statusFromHttpCode, statusName } from '@dispatch/core/protocol';
import { type ResolvedBackoff, backoffDelay } from './backoff.js';
import type { ConcurrencyController } from './concurrency.js';
import { newDispatchId } from '../store/dispatch-id.js';
import type { EndpointReply } from './http-transport.js';
import type { EndpointTransport, RunReply } from './transport.js';
import type { AttemptEvent, FinishedEvent } from '../events.js';
import type { Logger } from '../logger.js';
import type { SchedulerMetrics } from '../observe/metrics.js';
import type { ClaimedCall, CompleteRequest, CoroutineState, FollowOnClaim, FollowOnResult, InsertAndClaimResult, InsertClaim, NewCall, Outcome, Store } from '../store/store.js';
import { elidesState, finishedState, isResumeRun, pollConditions, runCountsText, SIGNAL_RESULT_PREFIX } from '../store/policy.js';
import { validateCall } from './validate.js';
import { recordResult, StoreOutage } from './record.js';
import { limitsOfCall } from '../store/limits.js';
import type { Admission, RunFaults } from './faults.js';

type IError = proto.IError;
type IAny = proto.IAny;

const EMPTY_INPUT: IAny = { typeUrl: 'type.googleapis.com/google.protobuf.Empty', value: new Uint8Array(0) };

/**
 * What the run loop needs.
 * @example
 * const loop = new RunLoop({ store, owner, transport, concurrency, backoff, ... });
 */
export interface RunLoopOptions {
  store: Store;
  owner: string;
  /** How RunRequests reach endpoints: HTTP (signed) or in-process. */
  transport: EndpointTransport;
  concurrency: ConcurrencyController;
  /** Circuits of endpoints and the quarantine of poison calls (`faults.ts`). */
  faults: RunFaults;
  backoff: ResolvedBackoff;
  /**
   * Lease of a claimed call. Leases of runs in flight are renewed every
   * `leaseMs / 3`, with the store's heartbeat (when it has one).
   */
  leaseMs: number;
  defaultExpirationMs: number;
  maxExpirationMs: number;
  maxAttempts: number | undefined;
  claimBatch: number;
  maxInFlight: number;
  orphans: 'cancel' | 'keep';
  /** Elide states of this project's SDK at least this long (bytes); Infinity never elides. */
  elideStateAbove: number;
  /**
   * Offer each call with a parent for a local resume (`RunRequest.local_resume`):
   * an endpoint of this SDK may answer its waiting parent's resume with the
   * call's own answer, used when the resume leased next is exactly that one.
   */
  localResume: boolean;
  log: Logger;
  /** Counts attempts, calls created and finished. */
  metrics?: SchedulerMetrics;
  /**
   * OpenTelemetry (null without `@opentelemetry/api`): a `dispatch.attempt`
   * span per run of a call that carries a trace context, its child; the
   * endpoint's run span is the attempt span's child.
   */
  tracing?: Tracing | null;
  onAttempt: (event: AttemptEvent) => void;
  onFinished: (event: FinishedEvent) => void;
}

/**
 * Expiration of a call, from its `Call.expiration` (0 or absent: the default), capped.
 * @example
 * expirationMsOf({ function: 'f', expiration: { seconds: 60 } }, 3_600_000, 86_400_000); // 60000
 */
export function expirationMsOf(call: proto.ICall, defaultMs: number, maxMs: number): number {
  const ms = proto.durationToMs(call.expiration);
  return Math.min(maxMs, ms && ms > 0 ? ms : defaultMs);
}

/**
 * The delay of a call (Call.delay, issue 15): it runs no earlier than this
 * long after the scheduler accepts it. 0 without one.
 * @example
 * delayMsOf({ function: 'f', delay: { seconds: 10 } }); // 10000
 */
export function delayMsOf(call: proto.ICall): number {
  const ms = proto.durationToMs(call.delay);
  return ms === null || ms <= 0 ? 0 : ms;
}

/**
 * A parent's answer given early by the endpoint of its child (local resume):
 * used for the parent's next run if that run's RunRequest is the resume the
 * endpoint ran ({@link givenMatches}).
 */
interface GivenResume {
  endpoint: string;
  childId: string;
  correlationId: bigint;
  output: IAny | null;
  state: proto.ILocalResumeState;
  /** The parent's answer, as it comes in the rest of the child's streamed answer (null: none came). */
  reply: Promise<RunReply | null>;
}

interface Interpreted {
  status: Status;
  outcome: Outcome;
  error: IError | null;
  children: number;
}

/**
 * The loop. `start()` begins claiming; `wake()` says new work may be due;
 * `stop()` stops claiming and waits for the runs in flight.
 * @example
 * loop.start(); loop.wake(); await loop.stop();
 */
export class RunLoop {
  #stopping = false;
  #running: Promise<void> | null = null;
  readonly #inFlight = new Set<Promise<void>>();
  #wakeFlag = false;
  #wakeResolve: (() => void) | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** When the sleeping loop's timer wakes it (Date.now() time). */
  #sleepUntil = 0;
  /** Dispatch IDs of the runs in flight (with a count: a lease lost and claimed again). */
  readonly #leased = new Map<string, number>();
  #keeper: NodeJS.Timeout | null = null;
  #keeping: Promise<void> | null = null;
  /** Results being retried because the store failed: no new claims until they are recorded. */
  #unrecorded = 0;
  /**
   * Calls leased by completions (`store.completeAndClaim`) whose answer has
   * not come yet, per (endpoint, function) and in all: not yet in flight,
   * but counted against the capacity of every claim meanwhile.
   */
  readonly #pending = new Map<string, number>();
  #pendingTotal = 0;
  readonly #outage: StoreOutage;
  /**
   * Parents' answers given early (local resume), by the parent's dispatch ID,
   * kept while the child's result is being recorded: the record leases the
   * parent it wakes and starts its run in the same turn.
   */
  readonly #given = new Map<string, GivenResume>();

  readonly #o: RunLoopOptions;
  constructor(o: RunLoopOptions) {
    this.#o = o;
    this.#outage = new StoreOutage(o.log);
  }

  /** Number of runs in flight. */
  get active(): number {
    return this.#inFlight.size;
  }

  start(): void {
    if (this.#running) return;
    this.#running = this.#loop();
    this.#keep();
    this.#keeper = setInterval(() => this.#keep(), Math.max(50, Math.floor(this.#o.leaseMs / 3)));
    this.#keeper.unref();
  }

  /**
   * Renews the leases of the runs in flight and sends the store's
   * heartbeat, whose live instance count divides the concurrency bounds.
   * A renewal that fails is logged: if it keeps failing for a lease length,
   * another instance may run those calls again (their results are still
   * recorded once).
   */
  #keep(): void {
    if (this.#keeping) return;
    const { store, owner, leaseMs, log, concurrency } = this.#o;
    this.#keeping = (async () => {
      if (store.heartbeat) {
        try {
          const live = await store.heartbeat({ owner, now: Date.now(), ttlMs: leaseMs });
          if (concurrency.setInstances(live)) {
            log.info(`${live} scheduler instance(s) share the store: concurrency limits of ${owner} are capped at ${concurrency.effectiveMax} per (endpoint, function)`);
          }
        } catch (err) {
          log.warn(`heartbeat of ${owner} failed: ${(err as Error).message}`);
        }
      }
      const ids = [...this.#leased.keys()];
      if (ids.length === 0) return;
      try {
        await store.renewLeases(owner, ids, Date.now() + leaseMs);
      } catch (err) {
        log.warn(`renewing the leases of ${ids.length} running call(s) failed: ${(err as Error).message}; if this lasts ${leaseMs} ms, other instances may run them again`);
      }
    })().finally(() => {
      this.#keeping = null;
    });
  }

  /** New work may be due: claim again now. */
  wake(): void {
    const r = this.#wakeResolve;
    // The loop sleeps and the store knows that nothing is due before its timer (a run ended, nothing new): it
    // sleeps on, without a claim round and the promises of another sleep (most wake-ups of an awaited step).
    if (r && !this.#stopping) {
      const quiet = this.#o.store.quietUntil?.(Date.now());
      if (quiet === null || (quiet !== undefined && quiet >= this.#sleepUntil)) return;
    }
    this.#wakeFlag = true;
    if (r) {
      this.#wakeResolve = null;
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = null;
      r();
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#o.faults.quarantine.close();
    this.wake();
    await this.#running;
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    if (this.#keeper) clearInterval(this.#keeper);
    this.#keeper = null;
    await this.#keeping;
    try {
      await this.#o.store.leave?.(this.#o.owner);
    } catch (err) {
      this.#o.log.warn(`could not tell the store that ${this.#o.owner} stops: ${(err as Error).message}`);
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#wakeFlag || this.#stopping) return Promise.resolve();
    // Woken (wake clears the timer) or timed out (the timer clears itself): no `finally`, whose promises every
    // wake-up would pay.
    this.#sleepUntil = Date.now() + Math.max(0, ms);
    return new Promise<void>((resolve) => {
      this.#wakeResolve = resolve;
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#wakeResolve = null;
        resolve();
      }, Math.max(0, ms));
      // The API server keeps a scheduler's process alive, not its idle loop (in-process, the app decides).
      this.#timer.unref();
    });
  }

  async #loop(): Promise<void> {
    const { store, concurrency, faults } = this.#o;
    while (!this.#stopping) {
      this.#wakeFlag = false;
      const now = Date.now();
      // While results wait to be recorded (the store fails), nothing new is claimed.
      const room = this.#room();
      let nextDueAt: number | null = null;
      // Known without a statement that nothing can be claimed yet (a woken loop after each run, mostly): no claim.
      const quiet = room > 0 ? store.quietUntil?.(now) : undefined;
      if (quiet !== undefined) {
        nextDueAt = quiet;
      } else if (room > 0) {
        try {
          const claimed = await store.claimDue({
            owner: this.#o.owner,
            now,
            leaseMs: this.#o.leaseMs,
            limit: Math.min(this.#o.claimBatch, room),
            capacity: (endpoint, fn) => faults.capacity(endpoint, concurrency.capacity(endpoint, fn) - this.#pendingOf(endpoint, fn)),
            elideStateAbove: this.#o.elideStateAbove,
          });
          faults.claimed(claimed.calls);
          this.#start(claimed.calls);
          nextDueAt = claimed.nextDueAt;
          this.#outage.ok();
        } catch (err) {
          if (this.#stopping) break;
          // Backs off while the store fails (wake-ups do not shorten it); recovers by itself.
          const until = Date.now() + this.#outage.failed(err);
          while (!this.#stopping && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(100, until - Date.now())));
          continue;
        }
      }
      if (this.#stopping) break;
      // Sleep until the next due call, a wake-up, or 1 s (other processes may add work).
      const probeAt = faults.circuits.nextProbeAt();
      if (probeAt !== null && (nextDueAt === null || probeAt < nextDueAt)) nextDueAt = probeAt;
      const wait = nextDueAt === null ? 1000 : Math.min(1000, nextDueAt - Date.now());
      if (wait > 0) await this.#sleep(wait);
      else await new Promise((r) => setImmediate(r));
    }
  }

  /** How many more runs may start now (none while results wait to be recorded). */
  #room(): number {
    return this.#unrecorded > 0 ? 0 : this.#o.maxInFlight - this.#inFlight.size - this.#pendingTotal;
  }

  #pendingOf(endpoint: string, fn: string): number {
    return this.#pendingTotal === 0 ? 0 : (this.#pending.get(`${endpoint}\u0000${fn}`) ?? 0);
  }

  #addPending(call: ClaimedCall, n: 1 | -1): void {
    const key = `${call.endpoint}\u0000${call.function}`;
    const left = (this.#pending.get(key) ?? 0) + n;
    if (left > 0) this.#pending.set(key, left);
    else this.#pending.delete(key);
    this.#pendingTotal += n;
  }

  /** Starts the runs of leased calls. */
  #start(calls: readonly ClaimedCall[]): void {
    for (const call of calls) {
      this.#leased.set(call.id, (this.#leased.get(call.id) ?? 0) + 1);
      // One `then` per run (not catch and finally: in process, every promise pays the engine's promise hooks).
      const p: Promise<void> = this.#run(call).then(
        () => this.#ended(call, p),
        (err: unknown) => {
          this.#o.log.error(`run of ${call.function} ${call.id} failed in the scheduler: ${(err as Error)?.stack ?? err}`);
          this.#ended(call, p);
        },
      );
      this.#inFlight.add(p);
    }
  }

  /** A run started by {@link #start} ended (its promise `p`). */
  #ended(call: ClaimedCall, p: Promise<void>): void {
    const n = (this.#leased.get(call.id) ?? 1) - 1;
    if (n > 0) this.#leased.set(call.id, n);
    else this.#leased.delete(call.id);
    this.#inFlight.delete(p);
    this.wake();
  }

  /**
   * A claim made without a claim round (by a completion or an insert):
   * within the room and the capacities left (a closed circuit), each call
   * leased counted as pending (against every claim) and added to `taken`
   * until the store answers.
   */
  #claimWithout(taken: ClaimedCall[]): FollowOnClaim {
    const { concurrency, faults } = this.#o;
    return {
      leaseMs: this.#o.leaseMs,
      elideStateAbove: this.#o.elideStateAbove,
      capacity: (endpoint, fn) =>
        this.#stopping ? 0 : Math.min(this.#room(), faults.followOnCapacity(endpoint, concurrency.capacity(endpoint, fn) - this.#pendingOf(endpoint, fn))),
      claimed: (call) => {
        taken.push(call);
        this.#addPending(call, 1);
      },
    };
  }

  /**
   * Records a result and, in the same transaction, leases what it made due
   * now (the parent it woke, the children it started) when the store can
   * (`completeAndClaim`), within the room and capacities left: those runs
   * start at once, without a claim round. Otherwise `complete`.
   */
  #complete(req: CompleteRequest): Promise<boolean> {
    const { store } = this.#o;
    if (!store.completeAndClaim || this.#stopping || this.#room() <= 0) return store.complete(req);
    const taken: ClaimedCall[] = [];
    const claim = this.#claimWithout(taken);
    let completing: Promise<FollowOnResult>;
    try {
      completing = store.completeAndClaim(req, claim);
    } catch (err) {
      completing = Promise.reject(err);
    }
    // A `then`, not an async function's await: one promise per record.
    return completing.then(
      (r) => {
        for (const call of taken) this.#addPending(call, -1);
        this.#start(r.calls);
        return r.recorded;
      },
      (err: unknown) => {
        // Rolled back: nothing was leased.
        for (const call of taken) this.#addPending(call, -1);
        throw err;
      },
    );
  }

  /**
   * Inserts new calls (the API's): where the store can
   * (`insertAndClaim`) and the loop runs, those due now whose function has
   * nothing else due are leased in the same transaction and start at once,
   * within the room and capacities left, without a claim round. Otherwise
   * `insertCalls`, then a claim round. Answers the dispatch IDs.
   * @example
   * const ids = await loop.insert(rows);
   */
  async insert(calls: NewCall[]): Promise<string[]> {
    const { store } = this.#o;
    if (!store.insertAndClaim || !this.#running || this.#stopping || this.#room() <= 0) {
      const ids = await store.insertCalls(calls);
      this.wake();
      return ids;
    }
    const taken: ClaimedCall[] = [];
    const claim: InsertClaim = { ...this.#claimWithout(taken), owner: this.#o.owner, now: Date.now() };
    let r: InsertAndClaimResult;
    try {
      r = await store.insertAndClaim(calls, claim);
    } finally {
      // Answered (then started below) or rolled back (nothing was leased).
      for (const call of taken) this.#addPending(call, -1);
    }
    this.#start(r.calls);
    // Those left pending (behind others, over the capacity, delayed, limited) wait for a claim round.
    if (r.calls.length < calls.length) this.wake();
    return r.ids;
  }

  #run(call: ClaimedCall): Promise<void> {
    const { faults } = this.#o;
    // A suspect of a crash waits for its endpoint's lane (quarantine.ts); others go at once, without a promise more.
    try {
      const now = faults.admitNow(call);
      if (!now) return faults.admit(call, () => this.#stopping).then((admitted) => this.#runWith(call, admitted));
      return this.#runWith(call, now);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #runWith(call: ClaimedCall, admitted: Admission): Promise<void> {
    if (admitted.run) return this.#runAdmitted(call, admitted);
    this.#o.faults.done(call, admitted);
    return Promise.resolve();
  }

  /** Runs an admitted call and records its outcome; tells `faults` when it is done, whatever happens. */
  async #runAdmitted(call: ClaimedCall, admitted: Admission): Promise<void> {
    const { concurrency, log, faults } = this.#o;
    try {
      concurrency.acquire(call.endpoint, call.function);
      const startedAt = Date.now();
      if (startedAt >= call.expiresAt) {
        concurrency.release(call.endpoint, call.function, undefined, startedAt, startedAt);
        faults.notSent(call, admitted);
        faults.forget(call.id);
        await this.#expire(call, startedAt);
        return;
      }
      // Runs are numbered over attempts and resumes; a resume continues the call, it is not an attempt.
      const run = call.attempts + call.resumes + 1;
      const resume = isResumeRun(call);
      const span = this.#attemptSpan(call, run, resume);
      const carrier = span?.carrier ?? call.traceContext;
      let elided = this.#shouldElide(call);
      const ready = elided || this.#loadState(call);
      // A parent whose answer comes with its child's (local resume) waits for it instead of sending a request.
      const early = ready === true && this.#given.size > 0 ? this.#takeGiven(call, elided, carrier) : undefined;
      let reply = early ? await early : null;
      const local = reply !== null;
      if (reply === null) reply = ready === true || (await ready) ? await this.#send(call, elided, carrier) : leaseLost(call);
      if (elided && reply.kind === 'response' && reply.response.stateRequired) {
        // The SDK no longer holds the execution: resend with the full state (not an attempt).
        log.debug(`${call.function} ${call.id}: state required, resending with the full state`);
        elided = false;
        reply = (await this.#loadState(call)) ? await this.#send(call, false, carrier) : leaseLost(call);
      }
      const now = Date.now();
      const durationMs = now - startedAt;
      let r = this.#interpret(call, reply, now);
      const verdict = faults.afterReply(call, reply, admitted);
      if (verdict.quarantine) {
        const error = verdict.quarantine;
        r = { status: Status.PERMANENT_ERROR, error, children: 0, outcome: { kind: 'finish', status: Status.PERMANENT_ERROR, output: null, error } };
      }
      // A refusal or a crash says nothing about the endpoint's load: the limit stays (the circuit and the quarantine act).
      concurrency.release(call.endpoint, call.function, verdict.adapt ? r.status : undefined, startedAt, now);
      const given = this.#giveResume(call, reply, r);
      const recording = this.#record({
        id: call.id,
        owner: this.#o.owner,
        leaseToken: call.leaseToken,
        now,
        attempt: {
          number: run,
          startedAt,
          durationMs,
          status: r.status,
          outcome: r.outcome.kind === 'finish' ? 'exit' : r.outcome.kind,
          error: r.error,
          resume,
        },
        delivered: call.resume ? call.resume.results.map((x) => x.dispatchId) : [],
        outcome: r.outcome,
        orphans: this.#o.orphans,
      });
      let recorded: boolean;
      if (!given) recorded = await recording;
      else {
        try {
          recorded = await recording;
        } finally {
          // The parent this result woke started in the same turn (and took its answer); anything else runs as usual.
          this.#dropGiven(call.parentId!, given);
        }
      }
      if (!recorded || r.outcome.kind === 'finish') faults.forget(call.id);
      const outcome: AttemptEvent['outcome'] = !recorded
        ? 'dropped'
        : r.outcome.kind === 'finish'
          ? 'exit'
          : r.outcome.kind;
      const event: AttemptEvent = {
        dispatchId: call.id,
        function: call.function,
        endpoint: call.endpoint,
        run,
        attempt: call.attempts + (resume ? 0 : 1),
        resumes: call.resumes + (resume ? 1 : 0),
        status: r.status,
        statusName: statusName(r.status),
        startedAt,
        durationMs,
        outcome,
        resume,
      };
      if (local) event.localResume = true;
      if (r.error) event.error = { type: r.error.type ?? '', message: r.error.message ?? '' };
      if (r.outcome.kind === 'retry') event.nextRunAt = r.outcome.dueAt;
      if (r.children > 0) event.children = r.children;
      if (span) {
        span.setAttributes({ 'dispatch.status': event.statusName, 'dispatch.outcome': outcome });
        if (r.error) span.fail(`${r.error.type ?? ''}: ${r.error.message ?? ''}`);
        span.end();
      }
      this.#logAttempt(event, verdict.quiet);
      this.#o.metrics?.attempt(event);
      if (recorded && r.outcome.kind === 'suspend' && r.outcome.calls.length > 0) {
        this.#o.metrics?.created(r.outcome.calls.map((c) => c.function), 'poll');
      }
      this.#o.onAttempt(event);
      if (recorded && r.outcome.kind === 'finish') {
        const state = finishedState(r.outcome.status);
        this.#o.metrics?.finished(call.function, state, call.createdAt, now);
        this.#o.onFinished({ dispatchId: call.id, function: call.function, state, status: r.outcome.status, statusName: statusName(r.outcome.status) });
      }
    } finally {
      faults.done(call, admitted);
    }
  }

  /** Records a result, retrying while the store fails (`record.ts`); never dropped. */
  #record(req: CompleteRequest): Promise<boolean> {
    return recordResult(this.#o.store, req, {
      complete: (r) => this.#complete(r),
      log: this.#o.log,
      leaseMs: this.#o.leaseMs,
      stopping: () => this.#stopping,
      retrying: (on) => {
        this.#unrecorded += on ? 1 : -1;
      },
    });
  }

  /** The `dispatch.attempt` span of a run, child of the call's trace context (none when the call carries none). */
  #attemptSpan(call: ClaimedCall, run: number, resume: boolean): TracedSpan | undefined {
    const tracing = this.#o.tracing;
    if (!tracing || !call.traceContext) return undefined;
    return tracing.start({
      name: `dispatch.attempt ${call.function}`,
      kind: 'client',
      parent: call.traceContext,
      tracer: '@dispatch/scheduler',
      attributes: {
        'dispatch.id': call.id,
        'dispatch.function': call.function,
        'dispatch.endpoint': call.endpoint,
        'dispatch.root_id': call.rootId,
        'dispatch.run': run,
        'dispatch.resume': resume,
        'dispatch.instance': this.#o.owner,
      },
    });
  }

  /** One line per attempt; `quiet` (a refused connection: the circuit's line tells) only at debug level. */
  #logAttempt(e: AttemptEvent, quiet = false): void {
    const level = quiet ? 'debug' : e.outcome === 'retry' ? 'warn' : e.outcome === 'exit' && e.status !== Status.OK ? 'error' : 'info';
    const log = this.#o.log;
    if (!log.enabled(level)) return;
    let line = `run ${e.function} ${e.dispatchId} ${e.resume ? `resume=${e.resumes}` : `attempt=${e.attempt}`} status=${e.statusName} duration=${e.durationMs}ms outcome=${e.outcome}`;
    if (e.children) line += ` calls=${e.children}`;
    if (e.localResume) line += ' local_resume=true';
    if (e.nextRunAt !== undefined) line += ` retry_in=${Math.max(0, e.nextRunAt - Date.now())}ms`;
    if (e.error) line += ` error=${JSON.stringify(`${e.error.type}: ${e.error.message}`.slice(0, 300))}`;
    log.log(level, line, {
      event: 'attempt',
      dispatch_id: e.dispatchId,
      function: e.function,
      endpoint: e.endpoint,
      kind: e.resume ? 'resume' : 'attempt',
      attempt: e.attempt,
      resumes: e.resumes,
      status: e.statusName,
      duration_ms: e.durationMs,
      outcome: e.outcome,
      calls: e.children,
      local_resume: e.localResume,
      retry_in_ms: e.nextRunAt === undefined ? undefined : Math.max(0, e.nextRunAt - Date.now()),
      error: e.error ? `${e.error.type}: ${e.error.message}`.slice(0, 300) : undefined,
    });
  }

  #shouldElide(call: ClaimedCall): boolean {
    const r = call.resume;
    return !!r && elidesState(r.deltaCapable, r.state?.kind, r.stateLength, this.#o.elideStateAbove);
  }

  /**
   * Makes sure the state's bytes are in `call` (the claim leaves out those of
   * states it expects to be elided): false if the lease was lost meanwhile.
   */
  /** True at once when there is nothing to read (a first run, a journal read already): no promise. */
  #loadState(call: ClaimedCall): true | Promise<boolean> {
    const r = call.resume;
    if (!r || r.stateLoaded || !r.state) return true;
    return this.#o.store.loadState(call.id, call.leaseToken).then((state) => {
      if (!state) return false;
      r.state = state;
      r.stateLoaded = true;
      return true;
    });
  }

  #buildRequest(call: ClaimedCall, elide: boolean, trace: TraceCarrier | undefined): proto.IRunRequest {
    const req: proto.IRunRequest = {
      function: call.function,
      dispatchId: call.id,
      parentDispatchId: call.parentId ?? '',
      rootDispatchId: call.rootId,
      creationTime: proto.timestampFromDate(call.createdAt),
      expirationTime: proto.timestampFromDate(call.expiresAt),
      acceptsStateDelta: true,
      supportsSignals: true,
    };
    if (trace) {
      req.traceparent = trace.traceparent;
      if (trace.tracestate) req.tracestate = trace.tracestate;
    }
    if (call.parentId && call.correlationId != null && this.#offersLocalResume(call.endpoint)) {
      req.localResume = { correlationId: proto.toLong(BigInt(call.correlationId)) };
    }
    if (!call.resume) {
      req.input = call.input ?? EMPTY_INPUT;
      return req;
    }
    const pr: proto.IPollResult = {
      results: call.resume.results.map((r) => {
        // A signal's payload answers a wait (Poll.signal_waits): it has no dispatch ID.
        const dispatchId = r.dispatchId.startsWith(SIGNAL_RESULT_PREFIX) ? '' : r.dispatchId;
        const result: proto.ICallResult = { correlationId: proto.toLong(r.correlationId), dispatchId };
        if (r.output) result.output = r.output;
        if (r.error) result.error = r.error;
        return result;
      }),
    };
    if (call.resume.error) pr.error = call.resume.error;
    const state = call.resume.state;
    if (state && elide) {
      pr.stateElided = true;
      pr.stateLength = proto.toLong(BigInt(call.resume.stateLength));
    } else if (state?.kind === 'bytes') {
      pr.coroutineState = state.value;
    } else if (state?.kind === 'typed') {
      pr.typedCoroutineState = { typeUrl: state.typeUrl, value: state.value };
    }
    req.pollResult = pr;
    return req;
  }

  /**
   * Keeps the parent's answer that follows a child's in its streamed answer
   * (`RunResponse.parent_state` says it comes) for the parent's next run,
   * when the child succeeded: only then may its result wake the parent.
   */
  #giveResume(call: ClaimedCall, reply: RunReply, r: Interpreted): GivenResume | undefined {
    if (reply.kind !== 'response' || !reply.rest || !call.parentId) return undefined;
    const state = reply.response.parentState;
    if (!state || r.outcome.kind !== 'finish' || r.outcome.status !== Status.OK || r.outcome.error || call.correlationId == null) {
      this.#o.metrics?.localResume('dropped');
      return undefined;
    }
    const given: GivenResume = {
      endpoint: call.endpoint,
      childId: call.id,
      correlationId: BigInt(call.correlationId),
      output: r.outcome.output,
      state,
      reply: reply.rest,
    };
    this.#given.set(call.parentId, given);
    return given;
  }

  /** Forgets a parent's answer given early that its run did not take. */
  #dropGiven(parentId: string, given: GivenResume): void {
    if (this.#given.get(parentId) !== given) return;
    this.#given.delete(parentId);
    this.#o.metrics?.localResume('dropped');
  }

  /**
   * Whether RunRequests to this endpoint offer a local resume: the option, a
   * transport that reads streamed answers, and a store that leases the
   * parent a result wakes in the same record (`completeAndClaim`, SQLite):
   * elsewhere the parent is claimed later, its early answer would always be
   * dropped, and the endpoint would have run it for nothing.
   */
  #offersLocalResume(endpoint: string): boolean {
    return this.#o.localResume && !!this.#o.store.completeAndClaim && !!this.#o.transport.streams?.(endpoint);
  }

  /**
   * The answer given early for this run (local resume) when its RunRequest
   * is the resume the endpoint ran; taken either way (a resume that differs
   * goes to the endpoint).
   */
  #takeGiven(call: ClaimedCall, elide: boolean, trace: TraceCarrier | undefined): Promise<RunReply | null> | undefined {
    const given = this.#given.get(call.id);
    if (!given) return undefined;
    this.#given.delete(call.id);
    const request = this.#buildRequest(call, elide, trace);
    if (!givenMatches(given, call, request)) {
      this.#o.metrics?.localResume('dropped');
      return undefined;
    }
    return given.reply.then((reply) => {
      // None came (the endpoint could not run it after all): the run sends its own request.
      this.#o.metrics?.localResume(reply ? 'used' : 'dropped');
      return reply;
    });
  }

  /** Sends the call's RunRequest; an HTTP 200 is decoded into its RunResponse here (once). */
  #send(call: ClaimedCall, elide: boolean, trace: TraceCarrier | undefined): Promise<RunReply> {
    return this.#o.transport.run(call.endpoint, this.#buildRequest(call, elide, trace)).then(decodedReply);
  }


  /** Turns an endpoint's reply into the outcome to record. */
  #interpret(call: ClaimedCall, reply: RunReply, now: number): Interpreted {
    if (reply.kind === 'transport') {
      const error: IError = { type: statusName(reply.status), message: reply.message };
      return this.#failure(call, reply.status, error, null, now);
    }
    if (reply.kind === 'http' && reply.statusCode !== 200) {
      const status = statusFromHttpCode(reply.statusCode);
      const error: IError = { type: statusName(status), message: httpErrorMessage(call, reply) };
      return this.#failure(call, status, error, null, now);
    }
    if (reply.kind === 'http') {
      const error: IError = {
        type: 'INVALID_RESPONSE',
        message: `the endpoint ${call.endpoint} answered HTTP 200 with a body that is not a RunResponse (content-type ${JSON.stringify(reply.contentType)}, ${reply.body.length} bytes)`,
      };
      return this.#failure(call, Status.INVALID_RESPONSE, error, null, now);
    }
    const res = reply.response;
    if (res.stateRequired) {
      // Only an answer to an elided state may ask for it (run() resends those).
      const error: IError = {
        type: 'INVALID_RESPONSE',
        message: `the endpoint ${call.endpoint} asked for the full state (state_required) although the request carried it`,
      };
      return this.#failure(call, Status.INVALID_RESPONSE, error, null, now);
    }
    let status = (res.status ?? Status.UNSPECIFIED) as Status;
    const exit = res.exit ?? null;
    const poll = res.poll ?? null;
    if (exit?.tailCall) return this.#tailCall(call, status, exit.tailCall, now);
    if (poll && (status === Status.OK || status === Status.UNSPECIFIED)) return this.#suspend(call, poll, now);
    const result = exit?.result ?? null;
    const error = result?.error ?? null;
    const output = result?.output ?? null;
    if (status === Status.UNSPECIFIED) status = error ? Status.PERMANENT_ERROR : Status.OK; // 8.13
    if (status === Status.OK) {
      return { status, error, children: 0, outcome: { kind: 'finish', status, output, error } };
    }
    return this.#failure(
      call,
      status,
      error ?? { type: statusName(status), message: `${call.function} ended with status ${statusName(status)} and no error` },
      output,
      now,
    );
  }

  /** A failed attempt: retried with backoff if its status allows, else final. */
  #failure(call: ClaimedCall, status: Status, error: IError, output: IAny | null, now: number): Interpreted {
    const failures = call.failures + 1;
    if (isRetryable(status)) {
      if (this.#o.maxAttempts !== undefined && failures >= this.#o.maxAttempts) {
        const capped: IError = {
          ...error,
          message: `${error.message ?? ''} (gave up after ${failures} consecutive failed attempts, the limit)`,
        };
        return { status, error: capped, children: 0, outcome: { kind: 'finish', status, output, error: capped } };
      }
      const delay = backoffDelay(this.#o.backoff, failures, status === Status.THROTTLED);
      const dueAt = Math.min(call.expiresAt, Math.ceil(now + delay));
      return { status, error, children: 0, outcome: { kind: 'retry', status, error, dueAt } };
    }
    return { status, error, children: 0, outcome: { kind: 'finish', status, output, error } };
  }

  #tailCall(call: ClaimedCall, status: Status, tail: proto.ICall, now: number): Interpreted {
    const problem = validateCall({ ...tail, endpoint: '' }, 0, { endpointRequired: false });
    if (problem) {
      const error: IError = { type: 'INVALID_RESPONSE', message: `invalid tail call from ${call.function}: ${problem.replace('calls[0].', '')}` };
      return { status: Status.INVALID_RESPONSE, error, children: 0, outcome: { kind: 'finish', status: Status.INVALID_RESPONSE, output: null, error } };
    }
    // 8.14: the tail call wins over the status; same dispatch ID, creation
    // time, endpoint and expiration (one deadline for the whole chain).
    const effective = status === Status.UNSPECIFIED ? Status.OK : status;
    return {
      status: effective,
      error: null,
      children: 0,
      outcome: {
        kind: 'tail_call',
        status: effective,
        function: tail.function ?? '',
        endpoint: call.endpoint,
        input: tail.input ?? null,
        expiresAt: call.expiresAt,
        dueAt: now,
      },
    };
  }

  #suspend(call: ClaimedCall, poll: proto.IPoll, now: number): Interpreted {
    const calls = poll.calls ?? [];
    let pollError: IError | null = null;
    for (let i = 0; i < calls.length && !pollError; i++) {
      const problem = validateCall(calls[i]!, i, { endpointRequired: false });
      if (problem) pollError = { type: 'InvalidArgumentError', message: `the Poll was refused, none of its calls were dispatched: ${problem}` };
    }
    const children: NewCall[] = pollError
      ? []
      : calls.map((c) => {
          const id = newDispatchId(now);
          const expirationMs = expirationMsOf(c, this.#o.defaultExpirationMs, this.#o.maxExpirationMs);
          const delay = delayMsOf(c);
          const child: NewCall = {
            id,
            function: c.function ?? '',
            endpoint: c.endpoint || call.endpoint,
            input: c.input ?? null,
            createdAt: now,
            dueAt: now + delay,
            expiresAt: now + delay + expirationMs,
            expirationMs,
            parentId: call.id,
            rootId: call.rootId,
            correlationId: proto.toBigInt(c.correlationId ?? 0),
          };
          if (c.version) child.version = c.version;
          const limits = limitsOfCall(c.limits);
          if (limits) child.limits = limits;
          if (c.traceparent) child.traceContext = c.tracestate ? { traceparent: c.traceparent, tracestate: c.tracestate } : { traceparent: c.traceparent };
          return child;
        });
    const { minResults, maxResults, deadline } = pollConditions(poll, now, call.expiresAt);
    let state: CoroutineState | null = null;
    const which = (poll as { state?: string }).state;
    if (poll.typedCoroutineState && which !== 'coroutineState') {
      state = { kind: 'typed', typeUrl: poll.typedCoroutineState.typeUrl ?? '', value: poll.typedCoroutineState.value ?? new Uint8Array(0) };
    } else if (poll.coroutineState && (which === 'coroutineState' || poll.coroutineState.length > 0)) {
      state = { kind: 'bytes', value: poll.coroutineState };
    }
    return {
      status: Status.OK,
      error: null,
      children: children.length,
      outcome: {
        kind: 'suspend',
        status: Status.OK,
        state,
        stateIsDelta: !!poll.stateIsDelta && state?.kind === 'typed',
        calls: children,
        minResults,
        maxResults,
        deadline,
        wakeOnError: !!poll.wakeOnError,
        pollError,
        signalWaits: (poll.signalWaits ?? []).map((w) => ({ correlationId: proto.toBigInt(w.correlationId ?? 0), name: w.name ?? '' })),
      },
    };
  }

  async #expire(call: ClaimedCall, now: number): Promise<void> {
    const error: IError = {
      type: 'TimeoutError',
      message: `the call expired: it did not finish by its expiration time ${new Date(call.expiresAt).toISOString()} (${runCountsText(call)} made)`,
    };
    const recorded = await this.#record({
      id: call.id,
      owner: this.#o.owner,
      leaseToken: call.leaseToken,
      now,
      attempt: null,
      delivered: [],
      outcome: { kind: 'finish', status: Status.TIMEOUT, output: null, error },
      orphans: this.#o.orphans,
    });
    if (recorded) {
      this.#o.metrics?.finished(call.function, 'failed', call.createdAt, now);
      this.#o.log.warn(`expired ${call.function} ${call.id} after ${runCountsText(call)}`, {
        event: 'expired',
        dispatch_id: call.id,
        function: call.function,
      });
      this.#o.onFinished({ dispatchId: call.id, function: call.function, state: 'failed', status: Status.TIMEOUT, statusName: 'TIMEOUT' });
    }
  }
}


/**
 * Whether a run's RunRequest resumes exactly what the endpoint resumed
 * early: one result, the child's (dispatch ID, correlation ID, output, no
 * error), no Poll error, at the same endpoint, and the same state (its
 * length when elided; its length and first bytes otherwise, as the
 * endpoint's warm cache checks).
 */
function givenMatches(given: GivenResume, call: ClaimedCall, req: proto.IRunRequest): boolean {
  const pr = req.pollResult;
  if (!pr || pr.error || call.endpoint !== given.endpoint || pr.results?.length !== 1) return false;
  const result = pr.results[0]!;
  if (result.error || result.dispatchId !== given.childId || proto.toBigInt(result.correlationId) !== given.correlationId) return false;
  if (!sameAny(result.output ?? null, given.output)) return false;
  const state = given.state;
  if (!state) return false;
  const length = proto.toBigInt(state.length);
  if (pr.stateElided) return proto.toBigInt(pr.stateLength) === length;
  const typed = pr.typedCoroutineState;
  const value = typed?.value;
  const header = state.header ?? new Uint8Array(0);
  if (!value || typed.typeUrl !== JOURNAL_TYPE_URL || BigInt(value.length) !== length || header.length > value.length) return false;
  for (let i = 0; i < header.length; i++) if (value[i] !== header[i]) return false;
  return true;
}

/** Same type URL and bytes (protobufjs may decode empty bytes as a plain array). */
function sameAny(a: IAny | null, b: IAny | null): boolean {
  if (!a || !b) return !a && !b;
  if ((a.typeUrl ?? '') !== (b.typeUrl ?? '')) return false;
  return sameBytes(a.value, b.value);
}

function sameBytes(x: ArrayLike<number> | null | undefined, y: ArrayLike<number> | null | undefined): boolean {
  const n = x?.length ?? 0;
  if (n !== (y?.length ?? 0)) return false;
  for (let i = 0; i < n; i++) if (x![i] !== y![i]) return false;
  return true;
}

/** An HTTP answer of 200 with a RunResponse is that response; any other reply as it is. */
function decodedReply(reply: RunReply): RunReply {
  if (reply.kind === 'http' && reply.statusCode === 200) {
    const response = tryDecode(reply.body);
    if (response) {
      const rest = reply.rest;
      return rest ? { kind: 'response', response, rest: rest.then((r) => (r ? decodedReply(r) : null)) } : { kind: 'response', response };
    }
  }
  return reply;
}
/** The reply of a run whose lease was lost before its state could be read: recorded as nothing (complete refuses it). */
function leaseLost(call: ClaimedCall): EndpointReply {
  return {
    kind: 'transport',
    status: Status.TEMPORARY_ERROR,
    message: `the lease of ${call.function} ${call.id} was lost before its state could be read`,
  };
}

function tryDecode(body: Buffer): proto.IRunResponse | null {
  try {
    return proto.RunResponse.decode(body);
  } catch {
    return null;
  }
}

function httpErrorMessage(call: ClaimedCall, reply: Extract<EndpointReply, { kind: 'http' }>): string {
  let detail = '';
  if (reply.contentType.startsWith('application/json')) {
    try {
      const j = JSON.parse(reply.body.toString('utf8')) as { code?: unknown; message?: unknown };
      detail = excerpt([j.code, j.message].filter((x) => typeof x === 'string' && x).join(': '));
    } catch {
      // not JSON after all
    }
  } else if (reply.contentType.startsWith('text/')) {
    detail = reply.body.toString('utf8').slice(0, 200).trim();
  }
  return `the endpoint ${call.endpoint} answered HTTP ${reply.statusCode} to ${call.function}${detail ? `: ${detail}` : ''}`;
}
