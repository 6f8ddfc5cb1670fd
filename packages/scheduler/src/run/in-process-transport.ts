/**
 * The in-process transport: a RunRequest addressed to an app that runs in
 * this process (registered in `@dispatch/core/protocol`'s in-process
 * registry by its `Dispatch` instance) is handed to it as an object — no
 * encoding, no signature, no socket — and its RunResponse object comes back.
 * Calls to any other endpoint go over HTTP.
 * @module
 */
import { inProcessRegistry, type InProcessRegistry, type proto, Status } from '@dispatch/core/protocol';
import type { EndpointTransport, RunReply } from './transport.js';

/**
 * Hands RunRequests to apps in this process; others to `fallback` (HTTP).
 * A run that takes longer than `timeoutMs` is answered TIMEOUT, as over
 * HTTP (the function may still finish; its answer is then ignored).
 * @example
 * const transport = new InProcessTransport(httpTransport, 30_000);
 */
export class InProcessTransport implements EndpointTransport {
  readonly name = 'in-process';
  readonly #fallback: EndpointTransport;
  readonly #timeoutMs: number;
  readonly #registry: InProcessRegistry;
  /**
   * The runs in flight, in the order they started: their deadlines (each
   * `timeoutMs` after its start) are in the same order, so one timer, for
   * the first, serves them all (a timer per run was an object and its
   * async-hook bookkeeping on every run).
   */
  readonly #inFlight = new Set<InFlight>();
  #timer: NodeJS.Timeout | null = null;

  constructor(fallback: EndpointTransport, timeoutMs: number, registry: InProcessRegistry = inProcessRegistry()) {
    this.#fallback = fallback;
    this.#timeoutMs = timeoutMs;
    this.#registry = registry;
  }

  /** Whether calls to `endpoint` run in this process now. */
  serves(endpoint: string): boolean {
    return this.#registry.find(endpoint) !== undefined;
  }

  run(endpoint: string, request: proto.IRunRequest): Promise<RunReply> {
    const app = this.#registry.find(endpoint);
    if (!app) return this.#fallback.run(endpoint, request);
    return new Promise<RunReply>((resolve) => {
      const entry: InFlight = {
        deadline: performance.now() + this.#timeoutMs,
        expire: () => resolve({ kind: 'transport', status: Status.TIMEOUT, message: `no answer from ${endpoint} (in process) within ${this.#timeoutMs} ms` }),
      };
      this.#inFlight.add(entry);
      // The timer keeps the process alive while a run is in flight, as a timer per run did.
      if (!this.#timer) this.#arm();
      else if (this.#inFlight.size === 1) this.#timer.ref();
      let running: Promise<proto.IRunResponse>;
      try {
        running = app.runRequest(request);
      } catch (err) {
        running = Promise.reject(err);
      }
      running.then(
        (response) => {
          // Not in flight any more: it timed out, and was answered then.
          if (!this.#ended(entry)) return;
          resolve({ kind: 'response', response });
        },
        (err: unknown) => {
          if (!this.#ended(entry)) return;
          // Over HTTP the endpoint would answer 500: a temporary error, retried.
          resolve({
            kind: 'transport',
            status: Status.TEMPORARY_ERROR,
            message: `the app at ${endpoint} (in process) failed to run ${request.function}: ${(err as Error)?.message ?? String(err)}`,
          });
        },
      );
    });
  }

  /** A run answered: false if it had timed out. The last one in flight lets the process exit (the timer stays, unref'd). */
  #ended(entry: InFlight): boolean {
    if (!this.#inFlight.delete(entry)) return false;
    if (this.#inFlight.size === 0) this.#timer?.unref();
    return true;
  }

  /** Sets the timer for the first run in flight's deadline (none when nothing is in flight). */
  #arm(): void {
    const first = this.#inFlight.values().next();
    if (first.done) return;
    // setTimeout takes at most 2^31 - 1 ms (a longer delay fires at once).
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, first.value.deadline - performance.now()));
    this.#timer = setTimeout(() => this.#expire(), delay);
  }

  /** Answers TIMEOUT for the runs whose deadline passed, then waits for the next deadline. */
  #expire(): void {
    this.#timer = null;
    const now = performance.now();
    for (const entry of this.#inFlight) {
      if (entry.deadline > now) break;
      this.#inFlight.delete(entry);
      entry.expire();
    }
    this.#arm();
  }

  close(): void {
    this.#fallback.close();
  }
}

/** The longest delay setTimeout takes. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A run in flight: when it times out, and how it is answered then. */
interface InFlight {
  readonly deadline: number;
  expire(): void;
}
