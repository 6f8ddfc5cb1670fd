/**
 * The default instance and the module-level API of the seeds:
 * `import * as dispatch from '@dispatch/core'`, then `dispatch.function(...)`,
 * `dispatch.batch()`, `dispatch.gather(...)`, `dispatch.run(main)`.
 * The default instance is configured from the environment when first used.
 * @module
 */
import type { DurableCall } from './call.js';
import type { DurationInput } from './duration.js';
import { type Batch, Dispatch, type DispatchFunction, type FunctionOptions, type ResultOptions, type WaitForSignalOptions } from './dispatch.js';
import type { RunContext } from '../engine/execution.js';
import type { IAny } from '../protocol/proto.js';
import { type Class, defaultStatusRegistry, type StatusHandler } from '../status/registry.js';

let instance: Dispatch | undefined;

/**
 * The default Dispatch instance, created from the environment
 * (`DISPATCH_API_KEY`, `DISPATCH_API_URL`, `DISPATCH_ENDPOINT_URL`,
 * `DISPATCH_ENDPOINT_ADDR`, `DISPATCH_VERIFICATION_KEY`) on first use.
 * @example `const server = await defaultDispatch().serve();`
 */
export function defaultDispatch(): Dispatch {
  instance ??= new Dispatch();
  return instance;
}

/** Registers a function on the default instance. @example `const greet = dispatch.function(function greet(name: string) { return 'Hello ' + name; });` */
function registerFunction<A extends unknown[], R>(fn: (...args: A) => R): DispatchFunction<A, Awaited<R>>;
function registerFunction<A extends unknown[], R>(options: FunctionOptions<A>, fn: (...args: A) => R): DispatchFunction<A, Awaited<R>>;
function registerFunction<A extends unknown[], R>(a: FunctionOptions<A> | ((...args: A) => R), b?: (...args: A) => R) {
  return typeof a === 'function' ? defaultDispatch().function(a) : defaultDispatch().function(a, b as (...args: A) => R);
}
export { registerFunction as function };

/** A batch on the default instance. @example `dispatch.batch().add(greet('Jane')).dispatch()` */
export function batch(): Batch {
  return defaultDispatch().batch();
}

// The combinators need no instance: `dispatch.race` on an instance is the same function.
export { all, allSettled, any, gather, race } from './combinators.js';

/** See {@link Dispatch.sleep}. @example `await dispatch.sleep('5m')` */
export function sleep(duration: DurationInput): Promise<void> {
  return defaultDispatch().sleep(duration);
}

/** See {@link Dispatch.step}. @example `const rate = await dispatch.step('rate', fetchRate)` */
export function step<T>(name: string, fn: () => T | Promise<T>): Promise<Awaited<T>> {
  return defaultDispatch().step(name, fn);
}

/** See {@link Dispatch.waitForSignal}. @example `const decision = await dispatch.waitForSignal('decision', { timeout: '24h' })` */
export function waitForSignal<T = unknown>(name: string, options?: WaitForSignalOptions): Promise<T> {
  return defaultDispatch().waitForSignal<T>(name, options);
}

/** See {@link Dispatch.signal}. @example `await dispatch.signal(expenseId, 'decision', { approved: true })` */
export function signal(dispatchId: string, name: string, payload?: unknown): Promise<void> {
  return defaultDispatch().signal(dispatchId, name, payload);
}

/** See {@link Dispatch.result}. @example `const value = await dispatch.result(dispatchId, { timeout: '1m' })` */
export function result<R = unknown>(dispatchId: string, options?: ResultOptions): Promise<R> {
  return defaultDispatch().result<R>(dispatchId, options);
}

/** See {@link Dispatch.context}. @example `const { dispatchId } = dispatch.context()` */
export function context(): RunContext {
  return defaultDispatch().context();
}

/** See {@link Dispatch.rawCall}. @example `await dispatch.rawCall('double', input, { endpoint })` */
export function rawCall(fn: string, input: IAny, options?: { endpoint?: string; expiration?: DurationInput; version?: string }): DurableCall<IAny | null> {
  return defaultDispatch().rawCall(fn, input, options);
}

/** See {@link Dispatch.run}. @example `dispatch.run(() => greet.dispatch('Jane'))` */
export function run(main?: (server: import('../endpoint/node-server.js').DispatchServer) => unknown, options?: { port?: number; host?: string }): Promise<void> {
  return defaultDispatch().run(main, options);
}

/** See {@link Dispatch.serve}. @example `const server = await dispatch.serve()` */
export function serve(options?: { port?: number; host?: string; signals?: boolean }) {
  return defaultDispatch().serve(options);
}

/**
 * Registers, for every instance, the status of errors of a class (seed
 * style; an instance's own registrations are consulted first).
 * @example `dispatch.registerErrorType(MaintenanceError, dispatch.Status.TEMPORARY_ERROR)`
 */
export function registerErrorType<E>(cls: Class<E>, handler: StatusHandler<E>): void {
  defaultStatusRegistry.registerErrorType(cls, handler);
}

/**
 * Registers, for every instance, the status of outputs of a class.
 * @example `dispatch.registerOutputType(DnsCheck, (c) => (c.verified ? dispatch.Status.OK : dispatch.Status.TEMPORARY_ERROR))`
 */
export function registerOutputType<T>(cls: Class<T>, handler: StatusHandler<T>): void {
  defaultStatusRegistry.registerOutputType(cls, handler);
}
