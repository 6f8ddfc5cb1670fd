/**
 * Test helper (not part of the build): an in-memory scheduler that drives a
 * Dispatch instance through its in-process entry, `dispatch.runRequest()`,
 * with protocol messages encoded and decoded like on the wire, and no
 * network. It plays two kinds of
 * scheduler:
 * - `ours`: honours min_results/max_results, wake_on_error, state deltas and
 *   elided states, like @dispatch/scheduler;
 * - `foreign`: written by someone else: none of our extensions, resumes the
 *   parent as soon as any result is in (as if min_results were 1), resends
 *   every result it has each time (duplicates), and retries at once, without
 *   backoff.
 */
import { Dispatch, type DispatchFunction } from '../src/index.js';
import { decodeError, decodeValue, encodeArgs, proto, Status } from '../src/protocol.js';
import type { IAny, ICall, ICallResult, IRunRequest, IRunResponse } from '../src/protocol/proto.js';
import { isRetryable } from '../src/status/status.js';

export interface Outcome {
  status: Status;
  output?: IAny | null;
  error?: { type?: string | null; message?: string | null; value?: Uint8Array | null } | null;
}

interface Child {
  correlationId: ICall['correlationId'];
  id: string;
  done: Promise<void>;
  result?: ICallResult;
  delivered: boolean;
}

/** A Poll a function answered with, as the scheduler received it. */
export interface PollRecord {
  /** The suspended function. */
  function: string;
  dispatchId: string;
  /** The calls of the Poll, in order. */
  calls: ICall[];
  minResults: number;
  maxWaitMs: number | null;
  wakeOnError: boolean;
}

export interface MemorySchedulerOptions {
  kind?: 'ours' | 'foreign';
  /** Attempts per call before giving up (default 50). */
  maxAttempts?: number;
  /** Real milliseconds a `max_wait` lasts (default: as asked). */
  maxWaitScale?: number;
}

export class MemoryScheduler {
  readonly kind: 'ours' | 'foreign';
  /** Run requests sent, per function. */
  readonly runs = new Map<string, number>();
  /** Resumes (RunRequests with a poll_result) per function. */
  readonly resumes = new Map<string, number>();
  /** Attempts that ended with a retryable status, per function. */
  readonly failures = new Map<string, number>();
  /** Every Poll received, in order. */
  readonly polls: PollRecord[] = [];
  /** Largest state sent to a resume, in bytes. */
  maxStateBytes = 0;
  readonly #dispatch: Dispatch;
  readonly #maxAttempts: number;
  readonly #scale: number;
  readonly #byKey = new Map<string, string>();
  readonly #detached: Promise<unknown>[] = [];
  #nextId = 1;

  constructor(dispatch: Dispatch, options: MemorySchedulerOptions = {}) {
    this.#dispatch = dispatch;
    this.kind = options.kind ?? 'ours';
    this.#maxAttempts = options.maxAttempts ?? 50;
    this.#scale = options.maxWaitScale ?? 1;
  }

  /** The client to give `new Dispatch({ client })` for fan-out dispatches. */
  readonly client = {
    dispatch: async (calls: readonly ICall[]): Promise<string[]> => {
      return calls.map((call) => {
        const key = call.idempotencyKey;
        const known = key ? this.#byKey.get(key) : undefined;
        if (known) return known;
        const id = this.#id();
        if (key) this.#byKey.set(key, id);
        this.#detached.push(this.#execute(call, id, '', id));
        return id;
      });
    },
  };

  #id(): string {
    return String(this.#nextId++);
  }

  #count(map: Map<string, number>, fn: string): void {
    map.set(fn, (map.get(fn) ?? 0) + 1);
  }

  /** Runs a call to completion and returns its final outcome. */
  call(fn: string, input: IAny): Promise<Outcome> {
    const id = this.#id();
    return this.#execute({ function: fn, input }, id, '', id);
  }

  /** Waits for every call dispatched by fan-out so far (and theirs). */
  async settle(): Promise<void> {
    for (let i = 0; i < this.#detached.length; i++) await this.#detached[i];
  }

  async #run(req: IRunRequest): Promise<IRunResponse> {
    // Through the wire encoding, as a real scheduler would.
    const bytes = proto.RunRequest.encode(req);
    const res = await this.#dispatch.runRequest(proto.RunRequest.decode(bytes));
    return proto.RunResponse.decode(proto.RunResponse.encode(res));
  }

  async #execute(call: ICall, id: string, parent: string, root: string): Promise<Outcome> {
    const fn = call.function ?? '';
    const ours = this.kind === 'ours';
    let req: IRunRequest = {
      function: fn,
      input: call.input,
      dispatchId: id,
      parentDispatchId: parent,
      rootDispatchId: root,
      acceptsStateDelta: ours || undefined,
    };
    let state: Uint8Array | undefined;
    let stateType = '';
    let attempts = 0;
    let children: Child[] = [];
    let notify: (() => void) | undefined;
    let readyCount = 0;
    for (;;) {
      const res = await this.#run(req);
      if (!res.stateRequired) {
        this.#count(this.runs, fn);
        if (req.pollResult) this.#count(this.resumes, fn);
      }
      if (res.stateRequired) {
        req = { ...req, pollResult: { ...req.pollResult, stateElided: false, stateLength: undefined, typedCoroutineState: { typeUrl: stateType, value: state } } };
        continue;
      }
      const status = (res.status ?? 0) as Status;
      if (res.exit) {
        if (res.exit.tailCall) {
          const tail = res.exit.tailCall;
          req = { function: tail.function, input: tail.input, dispatchId: id, parentDispatchId: parent, rootDispatchId: root, acceptsStateDelta: ours || undefined };
          state = undefined;
          children = [];
          continue;
        }
        if (isRetryable(status)) {
          this.#count(this.failures, fn);
          if (++attempts < this.#maxAttempts) continue;
        }
        return { status, output: res.exit.result?.output, error: res.exit.result?.error };
      }
      const poll = res.poll;
      if (!poll) throw new Error(`run of ${fn} answered neither exit nor poll`);
      this.polls.push({
        function: fn,
        dispatchId: id,
        calls: poll.calls ?? [],
        minResults: poll.minResults ?? 0,
        maxWaitMs: proto.durationToMs(poll.maxWait),
        wakeOnError: !!poll.wakeOnError,
      });
      const typed = poll.typedCoroutineState;
      if (typed) {
        stateType = typed.typeUrl ?? '';
        const value = typed.value ?? new Uint8Array(0);
        if (poll.stateIsDelta && ours && state) {
          const joined = new Uint8Array(state.length + value.length);
          joined.set(state);
          joined.set(value, state.length);
          state = joined;
        } else state = value;
      }
      for (const c of poll.calls ?? []) {
        const childId = this.#id();
        const child: Child = { correlationId: c.correlationId, id: childId, delivered: false, done: Promise.resolve() };
        child.done = this.#execute(c, childId, id, root).then((o) => {
          child.result = { correlationId: c.correlationId, output: o.output ?? undefined, error: o.error ?? undefined, dispatchId: childId };
          if (!o.error && o.status !== Status.OK && !o.output) {
            child.result.error = { type: 'status', message: String(o.status) };
          }
          readyCount++;
          notify?.();
        });
        children.push(child);
      }
      children = children.filter((c) => !c.delivered);
      const ready = () => children.filter((c) => c.result);
      const min = ours ? Math.min(poll.minResults || 1, Math.max(1, children.length)) : 1;
      const maxWait = proto.durationToMs(poll.maxWait) ?? 300_000;
      const deadline = Date.now() + maxWait * this.#scale;
      const wait = (ms: number) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          notify = () => {
            clearTimeout(timer);
            notify = undefined;
            resolve();
          };
        });
      readyCount = ready().length;
      while (children.length > 0 && readyCount < min) {
        if (ours && poll.wakeOnError && ready().some((c) => c.result?.error)) break;
        const left = deadline - Date.now();
        if (left <= 0) break;
        await wait(left);
      }
      notify = undefined;
      if (children.length === 0) {
        const left = deadline - Date.now();
        if (left > 0) await wait(left);
        notify = undefined;
      }
      let results: ICallResult[];
      if (ours) {
        const batch = ready().slice(0, Math.min(poll.maxResults || 1000, 1000));
        for (const c of batch) c.delivered = true;
        results = batch.map((c) => c.result as ICallResult);
      } else {
        // Everything finished so far, again and again, newest first.
        const finished = children.filter((c) => c.result);
        for (const c of finished) c.delivered = true;
        results = finished.map((c) => c.result as ICallResult).reverse();
      }
      this.maxStateBytes = Math.max(this.maxStateBytes, state?.length ?? 0);
      const elide = ours && this.#nextId % 2 === 0; // elide the state every other resume
      req = {
        function: fn,
        dispatchId: id,
        parentDispatchId: parent,
        rootDispatchId: root,
        acceptsStateDelta: ours || undefined,
        pollResult: elide
          ? { stateElided: true, stateLength: state?.length ?? 0, results }
          : { typedCoroutineState: { typeUrl: stateType, value: state }, results },
      };
      attempts = 0;
    }
  }
}

/**
 * A Dispatch app driven by a {@link MemoryScheduler}: `mode` 'cache' keeps
 * suspended executions warm, 'replay' replays the journal on every resume.
 * `run(fn, ...args)` runs a call to completion and decodes its outcome.
 */
export function memoryApp(mode: 'cache' | 'replay', options: MemorySchedulerOptions = {}) {
  const holder: { s?: MemoryScheduler } = {};
  const dispatch = new Dispatch({
    env: {},
    endpointUrl: 'http://app.test',
    verificationKey: null,
    logger: { warn() {}, error() {}, info() {} },
    cache: mode === 'cache' ? undefined : false,
    client: { dispatch: (calls) => (holder.s as MemoryScheduler).client.dispatch(calls) },
  });
  const scheduler = new MemoryScheduler(dispatch, options);
  holder.s = scheduler;
  const run = async <A extends unknown[], R>(fn: DispatchFunction<A, R>, ...args: A) => {
    const outcome = await scheduler.call(fn.functionName, encodeArgs(args));
    return {
      status: outcome.status,
      value: outcome.output ? (decodeValue(outcome.output) as R) : undefined,
      error: outcome.error ? decodeError(outcome.error, outcome.status, dispatch.registry) : undefined,
    };
  };
  return { dispatch, scheduler, run };
}
