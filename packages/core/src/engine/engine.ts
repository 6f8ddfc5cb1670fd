/**
 * The engine: turns a `RunRequest` into a `RunResponse`, resuming functions by
 * journal replay (ARCHITECTURE.md, "The engine"). It does no I/O: the only
 * outside effects — fan-out dispatches — go through the `dispatcher` it is
 * given, and time comes from the `now` it is given.
 *
 * This file is the facade; each concern has its own file:
 * - `execution.ts`: one execution, the state machine of its durable operations;
 * - `delivery.ts`: delivery rounds, recorded and replayed;
 * - `drive.ts`: the loop that runs an execution until it settles, diverges or blocks;
 * - `poll-plan.ts`: the calls and wake-up parameters of a Poll;
 * - `warm-cache.ts`: suspended executions resumed without replay;
 * - `journal.ts`: the state, encoded incrementally;
 * - `responses.ts`: the Exit of a run and the errors the engine reports;
 * - `call-context.ts`: the contract with the calls it runs.
 * @module
 */
import { randomInt } from 'node:crypto';
import { DEFAULT_MAX_WAIT_MS, MAX_POLL_RESULTS, MIN_MAX_WAIT_MS } from '../protocol/constants.js';
import * as proto from '../protocol/proto.js';
import { OperationKind } from '../protocol/proto.js';
import type { IAny, ICall, ILocalResumeState, IRunRequest, IRunResponse } from '../protocol/proto.js';
import { encodeError } from '../serde/serde.js';
import { IncompatibleStateError, InvalidArgumentError, NotFoundError } from '../status/errors.js';
import type { StatusRegistry } from '../status/registry.js';
import { Status } from '../status/status.js';
import type { CallTarget } from './call-context.js';
import { recordedRounds } from './delivery.js';
import { drive } from './drive.js';
import { type EngineFunction, Execution, runContextOf } from './execution.js';
import { JOURNAL_TYPE_URL, Journal, JournalTooLargeError, MAX_JOURNAL_BYTES } from './journal.js';
import { planPoll } from './poll-plan.js';
import { exitOf, failure } from './responses.js';
import type { EngineTracer } from './tracing.js';
import { WarmCache, type WarmCacheBounds } from './warm-cache.js';

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
  /** Sends signals for `dispatch.signal()` inside functions. */
  signaler?: (dispatchId: string, name: string, payload: IAny, idempotencyKey: string) => Promise<void>;
  /** Warm cache bounds; `false` forces replay on every resume. Default 1,000 executions, 256 MiB. */
  cache?: WarmCacheBounds | false;
  /** Clock in ms since the epoch. Default `Date.now`. */
  now?: () => number;
  /** Largest journal, in bytes. Default 16 MiB. */
  maxJournalBytes?: number;
  /** `max_wait` of polls that wait on calls only. Default 5 minutes. */
  maxWaitMs?: number;
  /** Told when durable awaits start and end (spans); its trace context is carried on calls. */
  tracer?: EngineTracer;
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
  readonly signaler: ((dispatchId: string, name: string, payload: IAny, idempotencyKey: string) => Promise<void>) | undefined;
  readonly tracer: EngineTracer | undefined;
  readonly now: () => number;
  readonly stats: EngineStats = { starts: 0, warmResumes: 0, replays: 0, stateRequired: 0, incompatible: 0 };
  readonly #options: EngineOptions;
  readonly #cache: WarmCache;
  readonly #maxJournalBytes: number;
  readonly #maxWaitMs: number;

  constructor(options: EngineOptions) {
    this.#options = options;
    this.registry = options.registry;
    this.dispatcher = options.dispatcher;
    this.signaler = options.signaler;
    this.tracer = options.tracer;
    this.now = options.now ?? Date.now;
    this.#cache = new WarmCache(options.cache);
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
  }

  /** Converts a call to its protocol form. @internal */
  toProtoCall(call: CallTarget, correlationId: bigint | undefined): ICall {
    const o = call.options;
    const delayMs = o.startAtMs !== undefined ? Math.max(0, o.startAtMs - this.now()) : o.delayMs;
    return {
      correlationId: correlationId === undefined ? undefined : proto.toLong(correlationId),
      endpoint: call.endpoint ?? this.#options.endpointUrl() ?? '',
      function: call.function,
      input: call.input,
      expiration: o.expirationMs === undefined ? undefined : proto.durationFromMs(o.expirationMs),
      version: o.version,
      delay: delayMs ? proto.durationFromMs(delayMs) : undefined,
      idempotencyKey: o.idempotencyKey,
      ...(o.limits ? { limits: o.limits } : {}),
    };
  }

  /**
   * Runs a request to its next response: a first run (input), a warm resume
   * (the PollResult matches a cached execution), or a replay of the journal
   * in the PollResult's state. `trace` is the tracer's token of this run
   * (its span), handed back to {@link EngineOptions.tracer}.
   */
  run(req: IRunRequest, trace?: unknown): Promise<IRunResponse> {
    // Not an async function: one that returns the run's promise resolves its own with it (two promises and two
    // turns more per run). What the body throws is a rejection all the same.
    try {
      const response = this.#run(req, trace);
      return response instanceof Promise ? response : Promise.resolve(response);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #run(req: IRunRequest, trace: unknown): Promise<IRunResponse> | IRunResponse {
    const fn = this.#options.lookup(req.function ?? '');
    if (!fn) return failure(new NotFoundError(`function ${JSON.stringify(req.function ?? '')} does not exist`));
    const context = runContextOf(fn, req);
    const pollResult = req.pollResult;
    if (!pollResult) {
      if (!req.input) return failure(new InvalidArgumentError('the RunRequest has neither input nor poll_result'));
      this.stats.starts++;
      const x = new Execution(this, fn, new Journal(fn.name, req.input, randomEpoch()), context);
      x.supportsSignals = !!req.supportsSignals;
      x.trace = trace;
      return this.#start(x, req);
    }

    const warm = this.#cache.take(req.dispatchId ?? '', pollResult);
    if (warm) {
      this.stats.warmResumes++;
      warm.context = context;
      warm.supportsSignals = !!req.supportsSignals;
      warm.trace = trace;
      warm.setRecorded(warm.journal.ops.length);
      warm.incoming = { results: pollResult.results ?? [], at: warm.started, resend: !!pollResult.error };
      return this.#continue(warm, req);
    }
    if (pollResult.stateElided) {
      this.stats.stateRequired++;
      return { status: Status.OK as number, stateRequired: true };
    }
    let journal: Journal;
    try {
      journal = Journal.fromState(pollResult.typedCoroutineState, fn.name);
    } catch (err) {
      const error = err instanceof IncompatibleStateError ? err : new IncompatibleStateError(`the state is not a readable journal (${(err as Error).message})`, { cause: err });
      return this.#incompatible(fn, error);
    }
    const rounds = recordedRounds(journal);
    if (!rounds) return this.#incompatible(fn, new IncompatibleStateError('the journal ends in the middle of a delivery round'));
    this.stats.replays++;
    const execution = new Execution(this, fn, journal, context);
    execution.supportsSignals = !!req.supportsSignals;
    execution.trace = trace;
    execution.setRecorded(journal.ops.length);
    execution.replayRounds = rounds;
    execution.incoming = { results: pollResult.results ?? [], at: journal.ops.length, resend: !!pollResult.error };
    return this.#start(execution, req);
  }

  /**
   * The resume of the waiting parent that a call's answer lets this process
   * run at once (`RunRequest.local_resume`, `local_resume.proto`), or null.
   * It needs: the call returned successfully (status OK, a result without an
   * error, no tail call); its parent's execution is held here (warm),
   * suspended on a Poll that one result wakes (`min_results` 1) and waiting
   * for the call's correlation ID; and the parent's function declares no
   * limits. The request is the one a scheduler would send to resume the
   * parent with that result, its state elided (it resumes the held
   * execution through the warm cache, like any resume); `state` is the
   * state it resumes, which the scheduler compares with its own before it
   * takes the parent's answer as given.
   * @example
   * const parent = engine.localResumeOf(request, response);
   * if (parent) next = await engine.run(parent.request); // streamed after the call's own answer
   */
  localResumeOf(req: IRunRequest, res: IRunResponse): { request: IRunRequest; state: ILocalResumeState } | null {
    const local = req.localResume;
    const parentId = req.parentDispatchId;
    if (!local || !parentId || !req.dispatchId || (res.status as number) !== (Status.OK as number) || res.poll || res.stateRequired) return null;
    const result = res.exit?.result;
    if (!result || result.error || res.exit?.tailCall) return null;
    const held = this.#cache.peek(parentId);
    const x = held?.execution;
    if (!held || !x || x.fn.limited || x.pollMinResults !== 1) return null;
    const correlationId = proto.toBigInt(local.correlationId);
    if (Number(correlationId >> 32n) !== x.journal.epoch) return null;
    if (x.pending.get(Number(correlationId & 0xffffffffn))?.kind !== OperationKind.OPERATION_KIND_CALL) return null;
    const context = x.context;
    const length = proto.toLong(BigInt(held.length));
    const request: IRunRequest = {
      function: x.fn.name,
      dispatchId: parentId,
      parentDispatchId: context.parentDispatchId,
      rootDispatchId: context.rootDispatchId,
      acceptsStateDelta: !!req.acceptsStateDelta,
      supportsSignals: !!req.supportsSignals,
      pollResult: {
        results: [{ correlationId: local.correlationId, dispatchId: req.dispatchId, output: result.output ?? null }],
        stateElided: true,
        stateLength: length,
      },
    };
    if (context.creationTime) request.creationTime = proto.timestampFromDate(context.creationTime);
    if (context.expirationTime) request.expirationTime = proto.timestampFromDate(context.expirationTime);
    return { request, state: { length, header: held.header } };
  }

  /** INCOMPATIBLE_STATE, or a restart from the input (a tail call to itself) when the function opts in and the input is known. */
  #incompatible(fn: EngineFunction, error: IncompatibleStateError, input?: IAny): IRunResponse {
    this.stats.incompatible++;
    if (fn.onIncompatibleState === 'restart' && input) {
      return {
        status: Status.OK as number,
        exit: { result: {}, tailCall: { function: fn.name, input, endpoint: this.#options.endpointUrl() ?? '' } },
      };
    }
    return failure(error);
  }

  /** Decodes the input, runs the function from the top, and continues it. */
  #start(x: Execution, req: IRunRequest): Promise<IRunResponse> {
    let args: unknown[];
    try {
      args = x.fn.decodeInput(x.journal.input);
    } catch (err) {
      return Promise.resolve({
        status: Status.INVALID_ARGUMENT as number,
        exit: { result: { error: encodeError(err, Status.INVALID_ARGUMENT) } },
      });
    }
    x.start(args);
    return this.#continue(x, req);
  }

  /** Drives the execution and answers with its Exit, a Poll, or INCOMPATIBLE_STATE. */
  async #continue(x: Execution, req: IRunRequest): Promise<IRunResponse> {
    const stop = await drive(x, this);
    if (stop === 'diverged') {
      x.leave();
      return this.#incompatible(x.fn, x.diverged as IncompatibleStateError, x.journal.input);
    }
    if (stop === 'settled') {
      this.#cache.delete(x.context.dispatchId);
      return exitOf(x.settled as NonNullable<Execution['settled']>, this.registry);
    }
    return this.#poll(x, req);
  }

  /** Suspends a blocked execution: a Poll with its calls and its journal (or the journal's delta). */
  #poll(x: Execution, req: IRunRequest): IRunResponse {
    const plan = planPoll(x, { now: this.now(), maxWaitMs: this.#maxWaitMs, toProtoCall: (call, id) => this.toProtoCall(call, id) });
    x.pollMinResults = plan.minResults;
    const journal = x.journal;
    const first = journal.emittedLength === 0;
    journal.polls.push(journal.ops.length);
    const delta = journal.emit();
    if (journal.emittedLength > this.#maxJournalBytes) {
      this.#cache.delete(x.context.dispatchId);
      x.leave();
      return failure(
        new JournalTooLargeError(
          `the journal of ${x.fn.name} reached ${journal.emittedLength} bytes, over the limit of ${this.#maxJournalBytes} bytes ` +
            `(${journal.ops.length} operations): return smaller values from awaited functions and steps, or split the work into several functions`,
        ),
      );
    }
    const useDelta = !!req.acceptsStateDelta && !first;
    const state: IAny = { typeUrl: JOURNAL_TYPE_URL, value: useDelta ? delta : journal.full() };
    this.#cache.put(x);
    return {
      status: Status.OK as number,
      poll: {
        typedCoroutineState: state,
        calls: plan.calls,
        maxWait: proto.durationFromMs(plan.maxWaitMs),
        minResults: plan.minResults,
        maxResults: MAX_POLL_RESULTS,
        wakeOnError: plan.wakeOnError || undefined,
        stateIsDelta: useDelta || undefined,
        signalWaits: plan.signalWaits.length ? plan.signalWaits.map((w) => ({ correlationId: proto.toLong(w.correlationId), name: w.name })) : undefined,
      },
    };
  }
}

function randomEpoch(): number {
  return randomInt(1, 0xffffffff);
}
