/**
 * Durable calls: the object `fn(...args)` returns. Awaiting it inside a
 * Dispatch function is a checkpoint; passing it to `batch.add()` or a
 * combinator hands it over without awaiting.
 * @module
 */
import { type CallGroup, type CallOptions, type CallStarter, type CallTarget, callContext } from '../engine/call-context.js';
import type { IAny } from '../protocol/proto.js';

export type { CallOptions };

/**
 * A call of a Dispatch function, created by `fn(...args)`. It is lazy: it
 * starts when awaited (or given to a combinator) inside a running Dispatch
 * function, where it is a durable checkpoint: after a crash or retry, the
 * function resumes with the recorded result instead of calling again.
 *
 * @example
 * ```ts
 * const checkout = dispatch.function(async function checkout(order: string) {
 *   const receipt = await charge(order); // a DurableCall<string>, awaited
 *   await email(order, receipt);
 * });
 * ```
 */
export class DurableCall<R> implements PromiseLike<R>, CallTarget {
  readonly function: string;
  readonly endpoint: string | undefined;
  readonly args: readonly unknown[];
  readonly raw: boolean;
  readonly options: CallOptions;
  readonly #encode: () => IAny;
  #input: IAny | undefined;
  #starter: CallStarter | undefined;
  #promise: Promise<R> | undefined;
  readonly #startHint: string | undefined;

  /** @internal Use `fn(...args)` or `dispatch.call(...)`. */
  constructor(init: {
    function: string;
    endpoint?: string | undefined;
    args: readonly unknown[];
    encode: () => IAny;
    raw?: boolean;
    options?: CallOptions;
    /** How to start the call from elsewhere, for the error of an await outside a Dispatch function. */
    startHint?: string | undefined;
  }) {
    this.function = init.function;
    this.endpoint = init.endpoint;
    this.args = init.args;
    this.raw = init.raw ?? false;
    this.options = init.options ?? {};
    this.#encode = init.encode;
    this.#startHint = init.startHint;
    this.#starter = callContext.current();
  }

  /** The encoded input, computed once. Throws a SerializationError for arguments that cannot travel. */
  get input(): IAny {
    this.#input ??= this.#encode();
    return this.#input;
  }

  /** Starts the call (once) as part of a combinator group. @internal */
  start(group?: CallGroup): Promise<R> {
    if (!this.#promise) {
      const starter = this.#starter ?? callContext.current();
      if (!starter) {
        this.#promise = Promise.reject(
          new Error(
            `the call ${this.function}(...) was awaited outside a Dispatch function; only a running Dispatch function can await another one. ` +
              `To start it from elsewhere ${this.#startHint ?? `use ${this.function}.dispatch(...), or add it to dispatch.batch()`}`,
          ),
        );
      } else this.#promise = starter.startCall(this, group);
    }
    return this.#promise;
  }

  // biome-ignore lint/suspicious/noThenProperty: a durable call is awaitable by design.
  then<T1 = R, T2 = never>(
    onfulfilled?: ((value: R) => T1 | PromiseLike<T1>) | null,
    onrejected?: ((reason: unknown) => T2 | PromiseLike<T2>) | null,
  ): Promise<T1 | T2> {
    return this.start().then(onfulfilled, onrejected);
  }

  /** Like `Promise.prototype.catch`; starts the call. */
  catch<T = never>(onrejected?: ((reason: unknown) => T | PromiseLike<T>) | null): Promise<R | T> {
    return this.start().catch(onrejected);
  }

  /** Like `Promise.prototype.finally`; starts the call. */
  finally(onfinally?: (() => void) | null): Promise<R> {
    return this.start().finally(onfinally);
  }

  get [Symbol.toStringTag](): string {
    return 'DurableCall';
  }
}

/**
 * `true` for the objects `fn(...args)` returns.
 * @example
 * ```ts
 * isDurableCall(charge('card_1')); // true
 * isDurableCall(charge);           // false: a function, not a call
 * ```
 */
export function isDurableCall(value: unknown): value is DurableCall<unknown> {
  return value instanceof DurableCall;
}
