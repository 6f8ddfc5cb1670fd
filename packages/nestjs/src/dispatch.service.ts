/**
 * `DispatchService`: typed access to decorated methods from anywhere.
 * @module
 */
import { type Batch, Dispatch, type DispatchFunction, type DurableCall } from '@dispatch/core';
import { Injectable } from '@nestjs/common';

/**
 * Starts calls of `@DispatchFunction()` methods without type casts: a
 * decorated method's static type is its own signature, and this service
 * finds the Dispatch function behind it. Inject it anywhere; the module's
 * Dispatch instance itself is injectable as `Dispatch`.
 *
 * @example
 * ```ts
 * @Controller()
 * export class ShopController {
 *   constructor(private readonly billing: Billing, private readonly dispatch: DispatchService) {}
 *
 *   @Post('buy')
 *   async buy(@Body() body: { userId: string }) {
 *     return { id: await this.dispatch.dispatch(this.billing.checkout, body.userId) };
 *   }
 * }
 * ```
 */
@Injectable()
export class DispatchService {
  constructor(
    /** The module's Dispatch instance. */
    readonly instance: Dispatch,
  ) {}

  /**
   * The Dispatch function registered for a decorated method, typed after
   * the method. Throws if the method is not one (not decorated, on a
   * request-scoped provider, or asked before the module initialised).
   * @example const checkout = dispatchService.functionOf(this.billing.checkout); await checkout.dispatch('user_1');
   */
  functionOf<A extends unknown[], R>(method: (...args: A) => R): DispatchFunction<A, Awaited<R>> {
    const fn = method as Partial<DispatchFunction<A, Awaited<R>>>;
    if (typeof method === 'function' && typeof fn.functionName === 'string' && typeof fn.dispatch === 'function') {
      return method as unknown as DispatchFunction<A, Awaited<R>>;
    }
    throw new TypeError(
      `${(typeof method === 'function' && method.name) || String(method)} is not a Dispatch function: decorate the method with ` +
        '@DispatchFunction() on a singleton provider, pass it as `this.provider.method` (the instance property, not the ' +
        'class prototype), and use it after the module has initialised',
    );
  }

  /**
   * Asks the scheduler to run a decorated method; resolves to the dispatch ID.
   * @example const id = await dispatchService.dispatch(this.billing.checkout, 'user_1', 'order_2');
   */
  dispatch<A extends unknown[]>(method: (...args: A) => unknown, ...args: A): Promise<string> {
    return this.functionOf(method).dispatch(...args);
  }

  /**
   * A call of a decorated method, for `batch.add()` or combinators (inside a
   * Dispatch function, awaiting `this.method(...)` directly is the same).
   * @example this.dispatchService.batch().add(this.dispatchService.call(this.mail.send, user)).dispatch();
   */
  call<A extends unknown[], R>(method: (...args: A) => R, ...args: A): DurableCall<Awaited<R>> {
    return this.functionOf(method)(...args);
  }

  /** A batch for fan-out (see `Dispatch.batch`). @example await dispatchService.batch().add(call).dispatch(); */
  batch(): Batch {
    return this.instance.batch();
  }
}
