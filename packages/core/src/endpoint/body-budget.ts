/**
 * A cap on the request bytes an endpoint process reads at once, over all
 * requests: a body is read only once its size is reserved in the budget, so
 * many large requests arriving together wait their turn instead of being
 * buffered side by side.
 * @module
 */

/**
 * The default budget of one process: 64 MiB of request bodies being read at
 * once (four bodies at the default 16 MB limit).
 * @example bodyReadBudget.limit = DEFAULT_BODY_READ_BUDGET_BYTES * 2;
 */
export const DEFAULT_BODY_READ_BUDGET_BYTES = 64 * 1024 * 1024;

/**
 * How long a request waits for room in the budget before it is answered 503
 * `unavailable` (a scheduler retries it): 30 s.
 * @example new BodyBudget({ maxWaitMs: DEFAULT_BODY_READ_WAIT_MS / 2 })
 */
export const DEFAULT_BODY_READ_WAIT_MS = 30_000;

/**
 * Thrown when a request waited longer than the budget's `maxWaitMs`; an
 * endpoint answers 503 `unavailable`.
 * @example
 * catch (err) { if (err instanceof BodyBudgetTimeoutError) return connectError(503, 'unavailable', err.message); }
 */
export class BodyBudgetTimeoutError extends Error {
  override name = 'BodyBudgetTimeoutError';
}

/** A request waiting for room. */
interface Waiter {
  bytes: number;
  grant: (release: () => void) => void;
  fail: (err: Error) => void;
}

/**
 * Bytes reserved by the bodies being read, bounded by `limit`. Requests
 * are served in arrival order; one larger than the whole budget is read
 * alone. {@link bodyReadBudget} is the one of the process, shared by every
 * adapter and every `Dispatch` instance.
 *
 * @example
 * ```ts
 * const release = await bodyReadBudget.acquire(Number(req.headers['content-length']));
 * try { body = await read(req); } finally { release(); }
 * ```
 */
export class BodyBudget {
  /** Most bytes reserved at once; change it at any time (waiters are reconsidered at the next release). */
  limit: number;
  /** Longest wait for room, in ms; past it, {@link BodyBudgetTimeoutError}. */
  maxWaitMs: number;
  #inUse = 0;
  #peak = 0;
  readonly #queue: Waiter[] = [];

  constructor(options: { limit?: number; maxWaitMs?: number } = {}) {
    this.limit = options.limit ?? DEFAULT_BODY_READ_BUDGET_BYTES;
    this.maxWaitMs = options.maxWaitMs ?? DEFAULT_BODY_READ_WAIT_MS;
  }

  /** Bytes reserved now. */
  get inUse(): number {
    return this.#inUse;
  }

  /** Most bytes ever reserved at once. */
  get peak(): number {
    return this.#peak;
  }

  /** Requests waiting for room. */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Reserves `bytes` at once if nothing waits and they fit, and returns the
   * function that gives them back; null when the request would have to wait
   * (then {@link acquire} waits in line). The path of almost every request:
   * no promise, no signal, no timer.
   * @example
   * const release = budget.tryAcquire(1024) ?? (await budget.acquire(1024, signal));
   */
  tryAcquire(bytes: number): (() => void) | null {
    const size = Math.max(0, Number.isFinite(bytes) ? Math.ceil(bytes) : this.limit);
    return this.#queue.length === 0 && this.#fits(size) ? this.#take(size) : null;
  }

  /**
   * Reserves `bytes` (waiting for room, in arrival order) and resolves to
   * the function that gives them back (call it once the body is read; calling
   * it again does nothing). Rejects with {@link BodyBudgetTimeoutError} after
   * `maxWaitMs`, or with the signal's reason if it aborts first.
   */
  acquire(bytes: number, signal?: AbortSignal): Promise<() => void> {
    const size = Math.max(0, Number.isFinite(bytes) ? Math.ceil(bytes) : this.limit);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#queue.length === 0 && this.#fits(size)) return Promise.resolve(this.#take(size));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        bytes: size,
        grant: (release) => {
          cleanup();
          resolve(release);
        },
        fail: (err) => {
          cleanup();
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.#drop(waiter);
        waiter.fail(
          new BodyBudgetTimeoutError(
            `the endpoint is reading ${this.#inUse} bytes of other requests (its budget is ${this.limit} bytes at once) ` +
              `and this request of ${size} bytes waited ${this.maxWaitMs} ms for room: retry later`,
          ),
        );
      }, this.maxWaitMs);
      timer.unref?.();
      const onAbort = () => {
        this.#drop(waiter);
        waiter.fail(signal?.reason instanceof Error ? signal.reason : new Error('the request was aborted while waiting to be read'));
      };
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(waiter);
    });
  }

  #fits(size: number): boolean {
    return this.#inUse === 0 || this.#inUse + size <= this.limit;
  }

  #take(size: number): () => void {
    this.#inUse += size;
    if (this.#inUse > this.#peak) this.#peak = this.#inUse;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inUse -= size;
      this.#next();
    };
  }

  #drop(waiter: Waiter): void {
    const i = this.#queue.indexOf(waiter);
    if (i >= 0) this.#queue.splice(i, 1);
    this.#next();
  }

  /** Grants waiters in order while the first one fits. */
  #next(): void {
    for (let head = this.#queue[0]; head && this.#fits(head.bytes); head = this.#queue[0]) {
      this.#queue.shift();
      head.grant(this.#take(head.bytes));
    }
  }
}

/**
 * The budget of this process, shared by every adapter and `Dispatch`
 * instance: {@link DEFAULT_BODY_READ_BUDGET_BYTES} read at once, a wait of
 * at most {@link DEFAULT_BODY_READ_WAIT_MS}.
 * @example
 * import { bodyReadBudget } from '@dispatch/core/node';
 * bodyReadBudget.limit = 256 * 1024 * 1024; // a machine with memory to spare
 */
export const bodyReadBudget: BodyBudget = new BodyBudget();
