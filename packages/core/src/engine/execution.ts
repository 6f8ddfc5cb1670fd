/**
 * One execution of a function: the state machine of its durable operations.
 *
 * The function runs in an async context; every durable operation it starts
 * (an awaited call, a sleep, a step, a fan-out dispatch) takes the next
 * position in the journal. A position the journal already recorded must be
 * the same operation (kind, name and input hash), or the execution diverges
 * (INCOMPATIBLE_STATE). Operations wait in {@link Execution.pending} until an
 * outcome is delivered to them (`delivery.ts`); inline work (steps, fan-out
 * dispatches) reports its outcome in {@link Execution.ready}.
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IAny, ICall, ICallResult, IRunRequest } from '../protocol/proto.js';
import * as proto from '../protocol/proto.js';
import { OperationKind } from '../protocol/proto.js';
import { encodeError, encodeValue } from '../serde/serde.js';
import { IncompatibleStateError } from '../status/errors.js';
import type { StatusRegistry } from '../status/registry.js';
import type { CallGroup, CallStarter, CallTarget } from './call-context.js';
import { fnv1a, type Journal, type Outcome } from './journal.js';
import type { EngineTracer, OperationTrace } from './tracing.js';

/** A function as the engine sees it (what `dispatch.function()` registers). */
export interface EngineFunction {
  readonly name: string;
  /** Decodes and validates the input into the argument list; throws for invalid input. */
  decodeInput(input: IAny | null | undefined): unknown[];
  /** Calls the user's function. */
  invoke(args: unknown[]): unknown;
  /** What to do with state this code cannot use: fail with INCOMPATIBLE_STATE (default) or restart from the input. */
  readonly onIncompatibleState: 'fail' | 'restart';
  /**
   * The function declares limits (concurrency, rate): its resumes wait for
   * the scheduler's lease, never run early in the endpoint's process
   * (RunRequest.local_resume).
   */
  readonly limited?: boolean;
}

/**
 * What a running function can know about its call (`dispatch.context()`).
 *
 * @example
 * ```ts
 * const { dispatchId, rootDispatchId }: RunContext = dispatch.context();
 * ```
 */
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

/** The context of a request for a function. @internal */
export function runContextOf(fn: EngineFunction, req: IRunRequest): RunContext {
  return {
    function: fn.name,
    dispatchId: req.dispatchId ?? '',
    parentDispatchId: req.parentDispatchId ?? '',
    rootDispatchId: req.rootDispatchId ?? '',
    creationTime: proto.timestampToDate(req.creationTime) ?? undefined,
    expirationTime: proto.timestampToDate(req.expirationTime) ?? undefined,
  };
}

/** What an execution needs from its engine: a clock, statuses, fan-out, and the protocol form of calls. @internal */
export interface ExecutionHost {
  readonly registry: StatusRegistry;
  readonly dispatcher: ((calls: ICall[]) => Promise<string[]>) | undefined;
  /** Sends a signal (`dispatch.signal` inside a function), with the idempotency key of its position. */
  readonly signaler?: ((dispatchId: string, name: string, payload: IAny, idempotencyKey: string) => Promise<void>) | undefined;
  readonly tracer?: EngineTracer | undefined;
  now(): number;
  toProtoCall(call: CallTarget, correlationId: bigint | undefined): ICall;
}

/** The shared state of the calls of one combinator (`dispatch.all`, `race`...). @internal */
export class GroupState {
  /** Calls of the group still without an outcome. */
  pending = 0;
  constructor(readonly needs: 'all' | 'one') {}
}

/** An operation waiting for its outcome. @internal */
export interface Pending {
  readonly kind: OperationKind;
  readonly call?: CallTarget;
  readonly group?: GroupState;
  readonly deadlineMs: number;
  /** The name of the signal a wait is for (OPERATION_KIND_SIGNAL_WAIT). */
  readonly signal?: string;
  /** The timeout of a wait for a signal, as the code gave it (for the TimeoutError's message). */
  readonly timeoutMs?: number;
  /** The span of this await, when traced (not for operations replayed from the journal). */
  readonly trace?: OperationTrace | undefined;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** Results of a PollResult, waiting for the function to reach the point of the poll. @internal */
export interface Incoming {
  readonly results: readonly ICallResult[];
  /** Operations started when the poll was made. */
  readonly at: number;
  /** The poll failed (PollResult.error): its calls are sent again. */
  readonly resend: boolean;
}

type InlineOutcome = Omit<Outcome, 'position' | 'endOfRound' | 'opsStarted'>;

const never = new Promise<never>(() => {});

/** The async context of running executions. */
const storage = new AsyncLocalStorage<Execution>();

/** The execution running in the current async context, if any. @internal */
export function currentExecution(): Execution | undefined {
  return storage.getStore();
}

/** One execution of a function: its journal, pending operations and run state. @internal */
export class Execution implements CallStarter {
  readonly journal: Journal;
  readonly fn: EngineFunction;
  context: RunContext;
  /** The tracer's token of the current run (its span), if traced. */
  trace: unknown;
  /** Operations started in this run (recorded ones are checked against the journal). */
  started = 0;
  /** Recorded rounds still to deliver during replay. */
  replayRounds: Outcome[][] = [];
  /** Results of a PollResult waiting for the function to reach the poll point. */
  incoming: Incoming | undefined;
  /** Operations without an outcome, by position. */
  readonly pending = new Map<number, Pending>();
  /** Positions of calls not yet sent in a Poll. */
  unsent: number[] = [];
  /** The `min_results` of the Poll this execution last suspended on (0 before any). */
  pollMinResults = 0;
  /** Steps and fan-out dispatches running now. */
  inlineRunning = 0;
  /** Outcomes of inline work, to deliver in the next round. */
  ready: Outcome[] = [];
  settled: { ok: true; value: unknown } | { ok: false; error: unknown } | undefined;
  /** Why the code no longer matches the journal, once it does not. */
  diverged: IncompatibleStateError | undefined;
  /** The scheduler of the current run implements Poll.signal_waits (RunRequest.supports_signals). */
  supportsSignals = false;
  #wake: (() => void) | undefined;
  #recordedOps = 0;
  readonly #host: ExecutionHost;

  constructor(host: ExecutionHost, fn: EngineFunction, journal: Journal, context: RunContext) {
    this.#host = host;
    this.fn = fn;
    this.journal = journal;
    this.context = context;
  }

  /** Runs the function with `args` in this execution's async context; {@link settled} is set when it ends. */
  start(args: unknown[]): void {
    storage.run(this, () => {
      let result: unknown;
      try {
        result = this.fn.invoke(args);
      } catch (error) {
        this.settled = { ok: false, error };
        return;
      }
      Promise.resolve(result).then(
        (value) => {
          this.settled = { ok: true, value };
          this.signal();
        },
        (error: unknown) => {
          this.settled = { ok: false, error };
          this.signal();
        },
      );
    });
  }

  /** Resolves when something happens: an operation starts, a step ends, the function settles. */
  activity(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  /** Wakes the drive loop waiting in {@link activity}. */
  signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Records that the code no longer matches the journal (the first reason wins). */
  diverge(reason: string): void {
    this.diverged ??= new IncompatibleStateError(`the code no longer matches the journal of ${this.fn.name}: ${reason}`);
    this.signal();
  }

  /** Marks the operations recorded before this run: they are not sent or run again. */
  setRecorded(count: number): void {
    this.#recordedOps = count;
  }

  /** Waiting only on durable operations without outcomes. */
  get blocked(): boolean {
    return this.inlineRunning === 0 && this.ready.length === 0 && this.pending.size > 0;
  }

  startCall<R>(call: CallTarget, group?: CallGroup): Promise<R> {
    let input: IAny;
    try {
      input = call.input;
    } catch (err) {
      return Promise.reject(err);
    }
    const position = this.#position(OperationKind.OPERATION_KIND_CALL, call.function, fnv1a(input.value ?? new Uint8Array(0)), 0);
    if (position === undefined) return never;
    const recorded = this.#isRecorded(position);
    if (!recorded) this.unsent.push(position);
    return this.#pending(position, {
      kind: OperationKind.OPERATION_KIND_CALL,
      call,
      group: group ? groupState(group) : undefined,
      deadlineMs: 0,
      trace: recorded ? undefined : this.#trace('call', call.function, position),
    }) as Promise<R>;
  }

  /** A durable timer: resolves once `ms` have passed (at least 1 s of scheduler time when suspended). */
  sleep(ms: number): Promise<void> {
    const now = this.#host.now();
    const position = this.#position(OperationKind.OPERATION_KIND_SLEEP, 'sleep', ms >>> 0, now + ms);
    if (position === undefined) return never;
    const deadlineMs = (this.journal.ops[position]?.deadlineMs as number) || now + ms;
    const trace = this.#isRecorded(position) ? undefined : this.#trace('sleep', 'sleep', position);
    return this.#pending(position, { kind: OperationKind.OPERATION_KIND_SLEEP, deadlineMs, trace }) as Promise<void>;
  }

  /**
   * Waits for a signal named `name` sent to this call; rejects with a
   * TimeoutError after `timeoutMs` (0: no timeout). The deadline is journaled.
   */
  waitForSignal(name: string, timeoutMs: number): Promise<unknown> {
    if (!this.supportsSignals) {
      return Promise.reject(
        new Error(
          `dispatch.waitForSignal(${JSON.stringify(name)}) needs a scheduler that supports signals, and the scheduler that ran ${this.fn.name} ` +
            'does not (its RunRequest lacks supports_signals): run it under @dispatch/scheduler 0.2 or later',
        ),
      );
    }
    const now = this.#host.now();
    // The timeout is not part of the operation's identity: a deploy that changes it keeps the recorded deadline.
    const position = this.#position(OperationKind.OPERATION_KIND_SIGNAL_WAIT, name, 0, timeoutMs > 0 ? now + timeoutMs : 0);
    if (position === undefined) return never;
    const recorded = this.journal.ops[position]?.deadlineMs as number;
    const deadlineMs = recorded || (timeoutMs > 0 ? now + timeoutMs : 0);
    return this.#pending(position, { kind: OperationKind.OPERATION_KIND_SIGNAL_WAIT, signal: name, timeoutMs, deadlineMs });
  }

  /** Sends a signal once across replays (its idempotency key is this call's ID and the position). */
  sendSignal(dispatchId: string, name: string, payload: IAny): Promise<void> {
    const position = this.#position(OperationKind.OPERATION_KIND_SIGNAL_SEND, name, fnv1a(new TextEncoder().encode(dispatchId)) ^ fnv1a(payload.value ?? new Uint8Array(0)), 0);
    if (position === undefined) return never;
    const promise = this.#pending(position, { kind: OperationKind.OPERATION_KIND_SIGNAL_SEND, deadlineMs: 0 }) as Promise<void>;
    if (!this.#isRecorded(position)) {
      const signaler = this.#host.signaler;
      const done = this.#inline(position);
      const key = `${this.context.dispatchId || `epoch-${this.journal.epoch}`}/${position}/signal`;
      if (!signaler) done({ error: encodeError(new Error('this Dispatch instance has no API client to send signals with')) });
      else {
        storage.exit(() => {
          signaler(dispatchId, name, payload, key).then(
            () => done({}),
            (err: unknown) => done({ error: encodeError(err, this.#host.registry.errorStatus(err)) }),
          );
        });
      }
    }
    return promise;
  }

  /** An inline step whose outcome is journaled. */
  step<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    const position = this.#position(OperationKind.OPERATION_KIND_STEP, name, 0, 0);
    if (position === undefined) return never;
    const promise = this.#pending(position, { kind: OperationKind.OPERATION_KIND_STEP, deadlineMs: 0 }) as Promise<T>;
    if (!this.#isRecorded(position)) {
      const done = this.#inline(position);
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
            (err: unknown) => done({ error: encodeError(err, this.#host.registry.errorStatus(err)) }),
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
      const dispatcher = this.#host.dispatcher;
      const done = this.#inline(position);
      const base = `${this.context.dispatchId || `epoch-${this.journal.epoch}`}/${position}`;
      const carrier = this.#host.tracer?.carrier(this.trace);
      const protoCalls: ICall[] = calls.map((c, i) => ({
        ...this.#host.toProtoCall(c, undefined),
        idempotencyKey: c.options.idempotencyKey ?? `${base}/${i}`,
        ...(carrier ? { traceparent: carrier.traceparent, tracestate: carrier.tracestate ?? '' } : {}),
      }));
      if (!dispatcher) {
        done({ error: encodeError(new Error('this Dispatch instance has no API client to dispatch calls with')) });
      } else {
        storage.exit(() => {
          dispatcher(protoCalls).then(
            (ids) => done({ dispatchIds: ids }),
            (err: unknown) => done({ error: encodeError(err, this.#host.registry.errorStatus(err)) }),
          );
        });
      }
    }
    return promise;
  }

  /** Takes the next position, checking it against the journal when it was recorded. */
  #position(kind: OperationKind, name: string, inputHash: number, deadlineMs: number): number | undefined {
    if (this.diverged) return undefined;
    const position = this.started++;
    const recorded = this.journal.ops[position];
    if (recorded) {
      if (recorded.kind !== kind || recorded.name !== name || recorded.inputHash !== inputHash) {
        const verb = kind === recorded.kind && name === recorded.name ? 'passes other arguments to' : 'starts';
        this.diverge(`at position ${position} the journal recorded ${describeOp(recorded.kind, recorded.name)} but the code now ${verb} ${describeOp(kind, name)}`);
        return undefined;
      }
    } else {
      this.journal.ops.push({ kind, name, inputHash, deadlineMs });
    }
    return position;
  }

  /**
   * The execution leaves memory (not kept warm, evicted, or replaced by a
   * replay): the spans of its awaits end now.
   */
  leave(): void {
    for (const p of this.pending.values()) p.trace?.detach();
  }

  /** Tells the tracer a durable await starts (a span), if there is a tracer. */
  #trace(kind: 'call' | 'sleep', name: string, position: number): OperationTrace | undefined {
    return this.#host.tracer?.operation(this.trace, { kind, name, dispatchId: this.context.dispatchId, position });
  }

  #isRecorded(position: number): boolean {
    return position < this.#recordedOps;
  }

  #pending(position: number, entry: Omit<Pending, 'resolve' | 'reject'>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const trace = entry.trace;
      if (trace) {
        const settle = resolve;
        const fail = reject;
        resolve = (value) => {
          trace.end();
          settle(value);
        };
        reject = (error) => {
          trace.end(error);
          fail(error);
        };
      }
      this.pending.set(position, { ...entry, resolve, reject });
      if (entry.group) entry.group.pending++;
      this.signal();
    });
  }

  /** Counts inline work at `position` as running; the returned function reports its outcome. */
  #inline(position: number): (outcome: InlineOutcome) => void {
    this.inlineRunning++;
    return (outcome) => {
      this.inlineRunning--;
      this.ready.push({ position, endOfRound: false, opsStarted: 0, ...outcome });
      this.signal();
    };
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
    case OperationKind.OPERATION_KIND_SIGNAL_WAIT:
      return `a wait for the signal ${JSON.stringify(name)}`;
    case OperationKind.OPERATION_KIND_SIGNAL_SEND:
      return `a signal ${JSON.stringify(name)} sent`;
    default:
      return `an operation of kind ${kind}`;
  }
}
