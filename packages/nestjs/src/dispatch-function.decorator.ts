/**
 * The `@DispatchFunction()` method decorator.
 * @module
 */
import type { FunctionOptions } from '@dispatch/core';
import { SetMetadata } from '@nestjs/common';
import { DISPATCH_FUNCTION_METADATA } from './dispatch.constants.js';

/**
 * Options of `@DispatchFunction()`: those of `dispatch.function()`.
 * @example
 * ```ts
 * @DispatchFunction({ name: 'charge', input: z.tuple([z.string()]), expiration: '10m' })
 * async charge(userId: string) { ... }
 * ```
 */
export type DispatchFunctionOptions = FunctionOptions;

/**
 * Makes a provider method a Dispatch function. At bootstrap the module
 * registers it, bound to the provider's instance, under `name` (default
 * `ClassName.methodName`), and replaces the method on the instance with the
 * Dispatch handle: inside a Dispatch function, `await this.otherMethod(x)`
 * is a durable call. The provider must be a singleton (the default scope).
 *
 * From elsewhere (a controller), start a call with `DispatchService`:
 * `await dispatchService.dispatch(this.billing.checkout, userId)`.
 *
 * @example
 * ```ts
 * @Injectable()
 * export class Billing {
 *   @DispatchFunction()
 *   async charge(userId: string) { return 'receipt_789'; }
 *
 *   @DispatchFunction('checkout')
 *   async checkout(userId: string) {
 *     const receipt = await this.charge(userId); // durable: not charged again on retry
 *     return receipt;
 *   }
 * }
 * ```
 */
export function DispatchFunction(nameOrOptions?: string | DispatchFunctionOptions): MethodDecorator {
  const options: DispatchFunctionOptions = typeof nameOrOptions === 'string' ? { name: nameOrOptions } : (nameOrOptions ?? {});
  return SetMetadata(DISPATCH_FUNCTION_METADATA, options);
}
