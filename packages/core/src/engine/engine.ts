/**
 * The engine: turns a `RunRequest` into a `RunResponse`, resuming functions by
 * journal replay (ARCHITECTURE.md, "The engine"). It does no I/O: the only
 * outside effects — fan-out dispatches — go through the `dispatcher` it is
 * given, and time comes from the `now` it is given.
 *
 * How an execution runs:
 * - The function runs in an async context; every durable operation it starts
 *   (an awaited call, a sleep, a step, a fan-out dispatch) takes the next
 *   position in the journal.
 * - Outcomes are delivered in rounds, only when the function is quiescent
 *   (its microtasks drained), and each round records how many operations had
 *   been started when it was delivered. Replay delivers each recorded round
 *   at that same point, so `race`/`any` pick the same winner every time.
 * - The function is suspended (a `Poll`) when it waits only on durable
 *   operations that have no outcome yet and no inline step is running; every
 *   call started in the same turn goes out in that one Poll.
 * - Suspended executions stay in a bounded LRU cache and are resumed without
 *   replay when the next `PollResult` matches them; otherwise the function is
 *   replayed from its journal. Both paths give the same answer.
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomInt } from 'node:crypto';
import { type CallGroup, type CallStarter, type CallTarget, callContext, type DurableCall } from '../api/call.js';
import { fnv1a, JOURNAL_TYPE_URL, Journal, MAX_JOURNAL_BYTES, type Outcome } from './journal.js';
import * as proto from '../protocol/proto.js';
import type { IAny, ICall, ICallResult, IError, IRunRequest, IRunResponse } from '../protocol/proto.js';
import { OperationKind } from '../protocol/proto.js';
import { decodeError, decodeValue, encodeError, encodeValue } from '../serde/serde.js';
import { Status } from '../status/status.js';
import { DEFAULT_MAX_WAIT_MS, MAX_POLL_RESULTS, MIN_MAX_WAIT_MS } from '../protocol/constants.js';
import type { StatusRegistry } from '../status/registry.js';

/** A function as the engine sees it. @internal */
export interface EngineFunction {
  readonly name: string;
  /** Decodes and validates the input into the argument list; throws for invalid input. */
  decodeInput(input: IAny | null | undefined): unknown[];
  /** Calls the user's function. */
  invoke(args: unknown[]): unknown;
  /** What to do with state this code cannot use: fail with INCOMPATIBLE_STATE (default) or restart from the input. */
  readonly onIncompatibleState: 'fail' | 'restart';
}

/** Options of an {@link Engine}. */
export interface EngineOptions {
  /** Looks up a registered function by name. */
  lookup(name: string): EngineFunction | undefined;
  /** Classifies outputs and errors. */
  registry: StatusRegistry;
  /** Endpoint put in Poll calls; undefined leaves it empty (the scheduler uses the caller's endpoint). */
  endpointUrl(): string | undefined;
  /** Dispatches calls for fan-out inside functions (`fn.dispatch()`, `batch.dispatch()`). */
  dispatcher?: (calls: ICall[]) => Promise<string[]>;
  /** Warm cache bounds; `false` forces replay on every resume. Default 1,000 executions, 256 MiB. */
  cache?: { maxEntries?: number; maxBytes?: number } | false;
  /** Clock in ms since the epoch. Default `Date.now`. */
  now?: () => number;
  /** Largest journal, in bytes. Default 16 MiB. */
  maxJournalBytes?: number;
  /** `max_wait` of polls that wait on calls only. Default 5 minutes. */
  maxWaitMs?: number;
}

/** What a running function can know about its call (`dispatch.context()`). */
export interface RunContext {
  /** The function's name. */
  readonly function: string;
  /** The dispatch ID of this call (kept across retries, polls and tail calls). */
  readonly dispatchId: string;
  /** The caller's dispatch ID; empty for a root call. */
  readonly parentDispatchId: string;
  /** The dispatch ID of the root of the call tree. */
  readonly rootDispatchId: string;
  /** When the call was created, if the scheduler said. */
  readonly creationTime: Date | undefined;
  /** When the call expires, if the scheduler said. */
  readonly expirationTime: Date | undefined;
}

/** Counters for tests and benchmarks. */
export interface EngineStats {
  /** First runs (RunRequest with input). */
  starts: number;
  /** Resumes served from the warm cache. */
  warmResumes: number;
  /** Resumes served by replaying the journal. */
  replays: number;
  /** Requests answered with `state_required`. */
  stateRequired: number;
  /** Responses with INCOMPATIBLE_STATE. */
  incompatible: number;
}

interface Pending {
  readonly kind: OperationKind;
  readonly call?: CallTarget;
  readonly group?: GroupState;
  readonly deadlineMs: number;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

class GroupState {
  pending = 0;
  constructor(readonly needs: 'all' | 'one') {}
}

const TIMER_TOLERANCE_MS = 20;
const immediate = () => new Promise<void>((resolve) => setImmediate(resolve));
const never = new Promise<never>(() => {});

/** The async context of running executions. */
const storage = new AsyncLocalStorage<Execution>();
callContext.current = () => storage.getStore();

/** The execution running in the current async context, if any. @internal */
export function currentExecution(): Execution | undefined {
  return storage.getStore();
}

/** One execution of a function: its journal, pending operations and run state. @internal */
export class Execution implements CallStarter {
  readonly journal: Journal;
  readonly fn: EngineFunction;
  context: RunContext;
  /** Operations started in this run (recorded ones are checked against the journal). */
  started = 0;
  /** Recorded rounds still to deliver during replay. */
  replayRounds: Outcome[][] = [];
  /** Results of a PollResult waiting for the function to reach the poll point. */
  incoming: { results: ICallResult[]; at: number; resend: boolean } | undefined;
  readonly pending = new Map<number, Pending>();
  unsent: number[] = [];
  inlineRunning = 0;
  ready: Outcome[] = [];
  settled: { ok: true; value: unknown } | { ok: false; error: unknown } | undefined;
  diverged: string | undefined;
  #wake: (() => void) | undefined;
  readonly #engine: Engine;

  constructor(engine: Engine, fn: EngineFunction, journal: Journal, context: RunContext) {
    this.#engine = engine;
    this.fn = fn;
    this.journal = journal;
    this.context = context;
  }

  /** Resolves when something happens: an operation starts, a step ends, the function settles. */
  activity(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  diverge(message: string): void {
    this.diverged ??= message;
    this.signal();
  }

  /** Takes the next position, checking it against the journal when it was recorded. */
  #position(kind: OperationKind, name: string, inputHash: number, deadlineMs: number): number | undefined {
    if (this.diverged) return undefined;
    const position = this.started++;
    const recorded = this.journal.ops[position];
    if (recorded) {
      if (recorded.kind !== kind || recorded.name !== name || recorded.inputHash !== inputHash) {
        this.diverge(
          `the code no longer matches the journal of ${this.fn.name}: at position ${position} the journal recorded ` +
            `${describeOp(recorded.kind, recorded.name)} but the code now ${kind === recorded.kind && name === recorded.name ? 'passes other arguments to' : 'starts'} ${describeOp(kind, name)}`,
        );
        return undefined;
      }
    } else {
      this.journal.ops.push({ kind, name, inputHash, deadlineMs });
    }
    return position;
  }

  #pending(position: number, entry: Omit<Pending, 'resolve' | 'reject'>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.pending.set(position, { ...entry, resolve, reject });
      if (entry.group) entry.group.pending++;
      this.signal();
    });
  }

  startCall<R>(call: DurableCall<R>, group?: CallGroup): Promise<R> {
    let input: IAny;
    try {
      input = call.input;
    } catch (err) {
      return Promise.reject(err);
    }
    const position = this.#position(OperationKind.OPERATION_KIND_CALL, call.function, fnv1a(input.value ?? new Uint8Array(0)), 0);
    if (position === undefined) return never;
    if (!this.#isRecorded(position)) this.unsent.push(position);
    return this.#pending(position, {
      kind: OperationKind.OPERATION_KIND_CALL,
      call,
      group: group ? groupState(group) : undefined,
      deadlineMs: 0,
    }) as Promise<R>;
  }

  #recordedOps = 0;
  /** Marks the operations recorded before this run. */
  setRecorded(count: number): void {
    this.#recordedOps = count;
  }
  #isRecorded(position: number): boolean {
    return position < this.#recordedOps;
  }

  /** A durable timer: resolves once `ms` have passed (at least 1 s of scheduler time when suspended). */
  sleep(ms: number): Promise<void> {
    const now = this.#engine.now();
    const position = this.#position(OperationKind.OPERATION_KIND_SLEEP, 'sleep', ms >>> 0, now + ms);
    if (position === undefined) return never;
    const deadlineMs = (this.journal.ops[position]?.deadlineMs as number) || now + ms;
    return this.#pending(position, { kind: OperationKind.OPERATION_KIND_SLEEP, deadlineMs }) as Promise<void>;
  }

  /** An inline step whose outcome is journaled. */
  step<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    const position = this.#position(OperationKind.OPERATION_KIND_STEP, name, 0, 0);
    if (position === undefined) return never;
    const promise = this.#pending(position, { kind: OperationKind.OPERATION_KIND_STEP, deadlineMs: 0 }) as Promise<T>;
    if (!this.#isRecorded(position)) {
      this.inlineRunning++;
      const done = (outcome: Omit<Outcome, 'position' | 'endOfRound' | 'opsStarted'>) => {
        this.inlineRunning--;
        this.ready.push({ position, endOfRound: false, opsStarted: 0, ...outcome });
        this.signal();
      };
      storage.exit(() => {
        Promise.resolve()
          .then(fn)
          .then(
            (value) => {
              let output: IAny;
              try {
                output = encodeValue(value);
              } catch (err) {
                return done({ error: encodeError(err) });
              }
              done({ output });
            },
            (err: unknown) => done({ error: encodeError(err, this.#engine.registry.errorStatus(err)) }),
          );
      });
    }
    return promise;
  }

  /** A fan-out: dispatches the calls once across replays and returns their dispatch IDs. */
  dispatchCalls(calls: readonly CallTarget[]): Promise<string[]> {
    let inputs: IAny[];
    try {
      inputs = calls.map((c) => c.input);
    } catch (err) {
      return Promise.reject(err);
    }
    let hash = 0x811c9dc5;
    for (const input of inputs) hash = Math.imul(hash ^ fnv1a(input.value ?? new Uint8Array(0)), 0x01000193) >>> 0;
    const name = calls.map((c) => c.function).join(',');
    const position = this.#position(OperationKind.OPERATION_KIND_DISPATCH, name, hash, 0);
    if (position === undefined) return never;
    const promise = this.#pending(position, { kind: OperationKind.OPERATION_KIND_DISPATCH, deadlineMs: 0 }) as Promise<string[]>;
    if (!this.#isRecorded(position)) {
      const dispatcher = this.#engine.dispatcher;
      this.inlineRunning++;
      const done = (outcome: Omit<Outcome, 'position' | 'endOfRound' | 'opsStarted'>) => {
        this.inlineRunning--;
        this.ready.push({ position, endOfRound: false, opsStarted: 0, ...outcome });
        this.signal();
      };
      const base = `${this.context.dispatchId || `epoch-${this.journal.epoch}`}/${position}`;
      const protoCalls: ICall[] = calls.map((c, i) => ({
        ...this.#engine.toProtoCall(c, undefined),
        idempotencyKey: `${base}/${i}`,
      }));
      if (!dispatcher) {
        done({ error: encodeError(new Error('this Dispatch instance has no API client to dispatch calls with')) });
      } else {
        storage.exit(() => {
          dispatcher(protoCalls).then(
            (ids) => done({ dispatchIds: ids }),
            (err: unknown) => done({ error: encodeError(err, this.#engine.registry.errorStatus(err)) }),
          );
        });
      }
    }
    return promise;
  }

  /** Delivers a round of outcomes in order, recording it when it is new. */
  deliver(outcomes: Outcome[], record: boolean): void {
    if (outcomes.length === 0) return;
    if (record) {
      const last = outcomes[outcomes.length - 1] as Outcome;
      last.endOfRound = true;
      last.opsStarted = this.started;
      this.journal.outcomes.push(...outcomes);
    }
    for (const outcome of outcomes) {
      const p = this.pending.get(outcome.position);
      if (!p) continue;
      this.pending.delete(outcome.position);
      if (p.group) p.group.pending--;
      switch (p.kind) {
        case OperationKind.OPERATION_KIND_SLEEP:
          p.resolve(undefined);
          break;
        case OperationKind.OPERATION_KIND_DISPATCH:
          if (outcome.error) p.reject(decodeError(outcome.error, undefined, this.#engine.registry));
          else p.resolve(outcome.dispatchIds ?? []);
          break;
        default:
          if (outcome.error && !(p.call?.raw && outcome.output)) p.reject(decodeError(outcome.error, undefined, this.#engine.registry));
          else if (p.call?.raw) p.resolve(outcome.output ?? null);
          else {
            try {
              p.resolve(decodeValue(outcome.output));
            } catch (err) {
              p.reject(err);
            }
          }
      }
    }
  }

  /** Outcomes for the results of a PollResult: known, pending calls only, first result per call wins. */
  outcomesOf(results: readonly ICallResult[]): Outcome[] {
    const out: Outcome[] = [];
    const seen = new Set<number>();
    for (const r of results) {
      const id = proto.toBigInt(r.correlationId ?? 0);
      if (Number(id >> 32n) !== this.journal.epoch) continue;
      const position = Number(id & 0xffffffffn);
      const p = this.pending.get(position);
      if (!p || p.kind !== OperationKind.OPERATION_KIND_CALL || seen.has(position)) continue;
      seen.add(position);
      out.push({ position, output: r.output ?? undefined, error: r.error ?? undefined, endOfRound: false, opsStarted: 0 });
    }
    return out;
  }

  /** Outcomes for timers that are due. */
  dueTimers(now: number): Outcome[] {
    const out: Outcome[] = [];
    for (const [position, p] of this.pending) {
      if (p.kind === OperationKind.OPERATION_KIND_SLEEP && p.deadlineMs <= now + TIMER_TOLERANCE_MS) {
        out.push({ position, endOfRound: false, opsStarted: 0 });
      }
    }
    return out;
  }

  /** Waiting only on durable operations without outcomes. */
  get blocked(): boolean {
    return this.inlineRunning === 0 && this.ready.length === 0 && this.pending.size > 0;
  }
}

function groupState(group: CallGroup): GroupState {
  const cached = (group as { state?: GroupState }).state;
  if (cached) return cached;
  const state = new GroupState(group.needs);
  (group as { state?: GroupState }).state = state;
  return state;
}

function describeOp(kind: OperationKind, name: string): string {
  switch (kind) {
    case OperationKind.OPERATION_KIND_CALL:
      return `a call of ${name}`;
    case OperationKind.OPERATION_KIND_SLEEP:
      return 'a sleep';
    case OperationKind.OPERATION_KIND_STEP:
      return `the step ${JSON.stringify(name)}`;
    case OperationKind.OPERATION_KIND_DISPATCH:
      return `a dispatch of ${name}`;
    default:
      return `an operation of kind ${kind}`;
  }
}

function incompatible(message: string): IRunResponse {
  return {
    status: Status.INCOMPATIBLE_STATE as number,
    exit: { result: { error: { type: 'IncompatibleStateError', message } } },
  };
}

function randomEpoch(): number {
  return randomInt(1, 0xffffffff);
}

interface WarmEntry {
  execution: Execution;
  length: number;
  header: Uint8Array;
  bytes: number;
}

/**
 * Runs functions: `RunRequest` in, `RunResponse` out.
 *
 * @example
 * ```ts
 * const engine = new Engine({ lookup, registry, endpointUrl: () => 'http://127.0.0.1:8000' });
 * const response = await engine.run(runRequest);
 * ```
 */
export class Engine {
  readonly registry: StatusRegistry;
  readonly dispatcher: ((calls: ICall[]) => Promise<string[]>) | undefined;
  readonly now: () => number;
  readonly stats: EngineStats = { starts: 0, warmResumes: 0, replays: 0, stateRequired: 0, incompatible: 0 };
  readonly #options: EngineOptions;
  readonly #cache = new Map<string, WarmEntry>();
  #cacheBytes = 0;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #maxJournalBytes: number;
  readonly #maxWaitMs: number;

  constructor(options: EngineOptions) {
    this.#options = options;
    this.registry = options.registry;
    this.dispatcher = options.dispatcher;
    this.now = options.now ?? Date.now;
    this.#maxEntries = options.cache === false ? 0 : (options.cache?.maxEntries ?? 1000);
    this.#maxBytes = options.cache === false ? 0 : (options.cache?.maxBytes ?? 256 * 1024 * 1024);
    this.#maxJournalBytes = options.maxJournalBytes ?? MAX_JOURNAL_BYTES;
    this.#maxWaitMs = Math.max(MIN_MAX_WAIT_MS, options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS);
  }

  /** Number of executions held in the warm cache. */
  get cachedExecutions(): number {
    return this.#cache.size;
  }

  /** Drops every warm execution (as after a restart). */
  clearCache(): void {
    this.#cache.clear();
    this.#cacheBytes = 0;
  }

  /** Converts a call to its protocol form. @internal */
  toProtoCall(call: CallTarget, correlationId: bigint | undefined): ICall {
    return {
      correlationId: correlationId === undefined ? undefined : proto.toLong(correlationId),
      endpoint: call.endpoint ?? this.#options.endpointUrl() ?? '',
      function: call.function,
      input: call.input,
      expiration: call.options.expirationMs === undefined ? undefined : proto.durationFromMs(call.options.expirationMs),
      version: call.options.version,
    };
  }

  /**
   * Runs a request to its next response. The function must exist (the
   * endpoint handler answers unknown functions itself).
   */
  async run(req: IRunRequest): Promise<IRunResponse> {
    const fn = this.#options.lookup(req.function ?? '');
    if (!fn) {
      return {
        status: Status.NOT_FOUND as number,
        exit: { result: { error: { type: 'NotFoundError', message: `function ${JSON.stringify(req.function ?? '')} does not exist` } } },
      };
    }
    const context: RunContext = {
      function: fn.name,
      dispatchId: req.dispatchId ?? '',
      parentDispatchId: req.parentDispatchId ?? '',
      rootDispatchId: req.rootDispatchId ?? '',
      creationTime: proto.timestampToDate(req.creationTime) ?? undefined,
      expirationTime: proto.timestampToDate(req.expirationTime) ?? undefined,
    };
    const pollResult = req.pollResult;
    if (!pollResult) {
      if (!req.input) {
        return {
          status: Status.INVALID_ARGUMENT as number,
          exit: { result: { error: { type: 'InvalidArgumentError', message: 'the RunRequest has neither input nor poll_result' } } },
        };
      }
      this.stats.starts++;
      const journal = new Journal(fn.name, req.input, randomEpoch());
      const execution = new Execution(this, fn, journal, context);
      return this.#start(execution, req);
    }

    const key = req.dispatchId ?? '';
    let execution = this.#takeWarm(key, req);
    if (execution) {
      this.stats.warmResumes++;
      execution.context = context;
      execution.setRecorded(execution.journal.ops.length);
    } else {
      if (pollResult.stateElided) {
        this.stats.stateRequired++;
        return { status: Status.OK as number, stateRequired: true };
      }
      const state = pollResult.typedCoroutineState;
      if (!state || (state.typeUrl ?? '') === '') {
        return this.#incompatible(fn, 'the PollResult carries no typed_coroutine_state (this SDK never emits the deprecated coroutine_state)');
      }
      if (proto.typeNameOf(state.typeUrl ?? '') !== proto.Journal.fullName) {
        return this.#incompatible(fn, `the state has type URL ${JSON.stringify(state.typeUrl)}, expected ${JOURNAL_TYPE_URL}`);
      }
      let journal: Journal;
      try {
        journal = Journal.decode(state.value ?? new Uint8Array(0));
      } catch (err) {
        return this.#incompatible(fn, (err as Error).message);
      }
      if (journal.function !== fn.name) {
        return this.#incompatible(fn, `the state belongs to function ${JSON.stringify(journal.function)}, not ${JSON.stringify(fn.name)}`);
      }
      this.stats.replays++;
      execution = new Execution(this, fn, journal, context);
      execution.setRecorded(journal.ops.length);
      let round: Outcome[] = [];
      for (const o of journal.outcomes) {
        round.push(o);
        if (o.endOfRound) {
          execution.replayRounds.push(round);
          round = [];
        }
      }
      if (round.length) return this.#incompatible(fn, 'the journal ends in the middle of a delivery round');
      execution.incoming = { results: pollResult.results ?? [], at: journal.ops.length, resend: !!pollResult.error };
      return this.#start(execution, req);
    }
    execution.incoming = { results: pollResult.results ?? [], at: execution.started, resend: !!pollResult.error };
    return this.#drive(execution, req);
  }

  #incompatible(fn: EngineFunction, message: string, input?: IAny): IRunResponse {
    this.stats.incompatible++;
    if (fn.onIncompatibleState === 'restart' && input) {
      return {
        status: Status.OK as number,
        exit: { result: {}, tailCall: { function: fn.name, input, endpoint: this.#options.endpointUrl() ?? '' } },
      };
    }
    return incompatible(message);
  }

  #start(execution: Execution, req: IRunRequest): Promise<IRunResponse> {
    let args: unknown[];
    try {
      args = execution.fn.decodeInput(execution.journal.input);
    } catch (err) {
      return Promise.resolve({
        status: Status.INVALID_ARGUMENT as number,
        exit: { result: { error: encodeError(err, Status.INVALID_ARGUMENT) } },
      });
    }
    storage.run(execution, () => {
      let result: unknown;
      try {
        result = execution.fn.invoke(args);
      } catch (error) {
        execution.settled = { ok: false, error };
        return;
      }
      Promise.resolve(result).then(
        (value) => {
          execution.settled = { ok: true, value };
          execution.signal();
        },
        (error: unknown) => {
          execution.settled = { ok: false, error };
          execution.signal();
        },
      );
    });
    return this.#drive(execution, req);
  }

  async #drive(x: Execution, req: IRunRequest): Promise<IRunResponse> {
    for (;;) {
      await immediate();
      if (x.diverged) return this.#incompatible(x.fn, x.diverged, x.journal.input);
      if (x.settled) return this.#exit(x);
      const round = x.replayRounds[0];
      const need = round ? (round[round.length - 1] as Outcome).opsStarted : x.incoming?.at;
      if (need !== undefined) {
        if (x.started === need) {
          if (round) {
            x.replayRounds.shift();
            x.deliver(round, false);
          } else {
            const incoming = x.incoming as NonNullable<Execution['incoming']>;
            x.incoming = undefined;
            if (incoming.resend) x.unsent.push(...this.#lastPollCalls(x));
            x.deliver([...x.outcomesOf(incoming.results), ...x.dueTimers(this.now())], true);
          }
          continue;
        }
        if (x.started > need || x.blocked) {
          x.diverge(
            `the code no longer matches the journal of ${x.fn.name}: the journal continues after operation ${need} but the code ` +
              (x.started > need ? `started ${x.started} operations first` : `waits after ${x.started} operations`),
          );
          continue;
        }
        await x.activity();
        continue;
      }
      if (x.ready.length) {
        x.deliver(x.ready.splice(0), true);
        continue;
      }
      if (x.inlineRunning > 0) {
        await x.activity();
        continue;
      }
      if (x.pending.size > 0) {
        const due = x.dueTimers(this.now());
        if (due.length) {
          x.deliver(due, true);
          continue;
        }
        return this.#poll(x, req);
      }
      await x.activity();
    }
  }

  #lastPollCalls(x: Execution): number[] {
    const polls = x.journal.polls;
    const end = polls[polls.length - 1] ?? 0;
    const start = polls[polls.length - 2] ?? 0;
    const out: number[] = [];
    for (let p = start; p < end; p++) {
      const entry = x.pending.get(p);
      if (entry?.kind === OperationKind.OPERATION_KIND_CALL && !x.unsent.includes(p)) out.push(p);
    }
    return out;
  }

  #poll(x: Execution, req: IRunRequest): IRunResponse {
    const epoch = BigInt(x.journal.epoch) << 32n;
    const calls: ICall[] = [];
    for (const position of x.unsent) {
      const p = x.pending.get(position);
      if (p?.call) calls.push(this.toProtoCall(p.call, epoch | BigInt(position)));
    }
    x.unsent = [];
    // Poll parameters: wake for the smallest need among the waiters: a group
    // that needs all of its calls needs its remaining count; anything else 1.
    let minResults = Number.POSITIVE_INFINITY;
    let wakeOnError = false;
    let earliest = Number.POSITIVE_INFINITY;
    for (const p of x.pending.values()) {
      if (p.kind === OperationKind.OPERATION_KIND_SLEEP) earliest = Math.min(earliest, p.deadlineMs);
      else if (p.kind === OperationKind.OPERATION_KIND_CALL) {
        if (p.group?.needs === 'all') {
          minResults = Math.min(minResults, p.group.pending);
          wakeOnError = true;
        } else minResults = 1;
      }
    }
    if (!Number.isFinite(minResults)) minResults = 1;
    minResults = Math.max(1, Math.min(MAX_POLL_RESULTS, minResults));
    const maxWaitMs = Number.isFinite(earliest)
      ? Math.min(this.#maxWaitMs, Math.max(1000, Math.ceil((earliest - this.now()) / 1000) * 1000))
      : this.#maxWaitMs;

    const journal = x.journal;
    const first = journal.emittedLength === 0;
    journal.polls.push(journal.ops.length);
    const delta = journal.emit();
    if (journal.emittedLength > this.#maxJournalBytes) {
      this.#cache.delete(x.context.dispatchId);
      const error = new Error(
        `the journal of ${x.fn.name} reached ${journal.emittedLength} bytes, over the limit of ${this.#maxJournalBytes} bytes ` +
          `(${journal.ops.length} operations): return smaller values from awaited functions and steps, or split the work into several functions`,
      );
      error.name = 'JournalTooLargeError';
      return { status: Status.PERMANENT_ERROR as number, exit: { result: { error: encodeError(error) } } };
    }
    const useDelta = !!req.acceptsStateDelta && !first;
    const state: IAny = { typeUrl: JOURNAL_TYPE_URL, value: useDelta ? delta : journal.full() };
    this.#putWarm(x);
    return {
      status: Status.OK as number,
      poll: {
        typedCoroutineState: state,
        calls,
        maxWait: proto.durationFromMs(maxWaitMs),
        minResults,
        maxResults: MAX_POLL_RESULTS,
        wakeOnError: wakeOnError || undefined,
        stateIsDelta: useDelta || undefined,
      },
    };
  }

  #exit(x: Execution): IRunResponse {
    this.#cache.delete(x.context.dispatchId);
    const settled = x.settled as NonNullable<Execution['settled']>;
    if (settled.ok) {
      let output: IAny;
      try {
        output = encodeValue(settled.value);
      } catch (err) {
        return { status: Status.INVALID_RESPONSE as number, exit: { result: { error: encodeError(err) } } };
      }
      let status: Status;
      try {
        status = this.registry.outputStatus(settled.value);
      } catch (err) {
        return { status: Status.TEMPORARY_ERROR as number, exit: { result: { output, error: encodeError(err) } } };
      }
      return { status: (status === Status.UNSPECIFIED ? Status.OK : status) as number, exit: { result: { output } } };
    }
    const status = this.registry.errorStatus(settled.error);
    const error: IError = encodeError(settled.error, status);
    return { status: (status === Status.UNSPECIFIED ? Status.PERMANENT_ERROR : status) as number, exit: { result: { error } } };
  }

  #takeWarm(key: string, req: IRunRequest): Execution | undefined {
    if (!key) return undefined;
    const entry = this.#cache.get(key);
    if (!entry) return undefined;
    const pr = req.pollResult;
    let match = false;
    if (pr?.stateElided) match = Number(proto.toBigInt(pr.stateLength ?? 0)) === entry.length;
    else {
      const value = pr?.typedCoroutineState?.value;
      if (value && value.length === entry.length && pr?.typedCoroutineState?.typeUrl === JOURNAL_TYPE_URL) {
        match = entry.header.every((b, i) => value[i] === b);
      }
    }
    // Taken out while it runs: a concurrent request for the same call replays instead.
    this.#cache.delete(key);
    this.#cacheBytes -= entry.bytes;
    return match ? entry.execution : undefined;
  }

  #putWarm(x: Execution): void {
    const key = x.context.dispatchId;
    if (this.#maxEntries === 0 || !key) return;
    const old = this.#cache.get(key);
    if (old) {
      this.#cache.delete(key);
      this.#cacheBytes -= old.bytes;
    }
    const bytes = x.journal.emittedLength + 1024;
    this.#cache.set(key, { execution: x, length: x.journal.emittedLength, header: x.journal.header.slice(), bytes });
    this.#cacheBytes += bytes;
    for (const [k, e] of this.#cache) {
      if (this.#cache.size <= this.#maxEntries && this.#cacheBytes <= this.#maxBytes) break;
      this.#cache.delete(k);
      this.#cacheBytes -= e.bytes;
    }
  }
}

