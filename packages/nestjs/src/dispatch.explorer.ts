/**
 * Finds `@DispatchFunction()` methods at bootstrap and registers them.
 * @module
 */
import { Dispatch } from '@dispatch/core';
import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { DISPATCH_FUNCTION_METADATA } from './dispatch.constants.js';
import type { DispatchFunctionOptions } from './dispatch-function.decorator.js';

/**
 * Walks every provider when the module initialises, registers each method
 * decorated with `@DispatchFunction()` on the module's Dispatch instance
 * (bound to the provider's instance) and puts the Dispatch handle in the
 * method's place on that instance, so that `this.method(args)` inside
 * another Dispatch function is a durable call. Request-scoped providers are
 * skipped with a warning: Dispatch functions run outside any HTTP request.
 *
 * @example
 * ```ts
 * // Registered by DispatchModule; nothing to do. After bootstrap:
 * app.get(Dispatch).functionNames; // ['Billing.charge', 'checkout', ...]
 * ```
 */
@Injectable()
export class DispatchExplorer implements OnModuleInit {
  readonly #logger = new Logger('DispatchModule');

  readonly #discovery: DiscoveryService;
  readonly #scanner: MetadataScanner;
  readonly #reflector: Reflector;
  readonly #dispatch: Dispatch;
  constructor(
    discovery: DiscoveryService,
    scanner: MetadataScanner,
    reflector: Reflector,
    dispatch: Dispatch,
  ) {
    this.#dispatch = dispatch;
    this.#reflector = reflector;
    this.#scanner = scanner;
    this.#discovery = discovery;
  }

  onModuleInit(): void {
    const seen = new WeakSet<object>();
    for (const wrapper of this.#discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object' || wrapper.isAlias || seen.has(instance)) continue;
      seen.add(instance);
      const target = instance as Record<string, unknown>;
      const className = instance.constructor.name;
      for (const method of this.#scanner.getAllMethodNames(Object.getPrototypeOf(instance))) {
        const original = target[method];
        if (typeof original !== 'function') continue;
        const options = this.#reflector.get<DispatchFunctionOptions | undefined>(DISPATCH_FUNCTION_METADATA, original);
        if (!options) continue;
        const name = options.name ?? `${className}.${method}`;
        if (!wrapper.isDependencyTreeStatic()) {
          this.#logger.warn(
            `${className}.${method} is decorated with @DispatchFunction() but ${className} is request-scoped (or depends on a ` +
              `request-scoped provider), so "${name}" was not registered: Dispatch functions run outside any request. ` +
              'Make the provider a singleton (the default scope) or move the method to one.',
          );
          continue;
        }
        const provider = className.charAt(0).toLowerCase() + className.slice(1);
        const startHint =
          options.startHint ??
          `inject DispatchService (from @dispatch/nestjs) and call dispatchService.dispatch(this.${provider}.${method}, ...args), ` +
            `or dispatchService.call(this.${provider}.${method}, ...args) for a batch`;
        const handle = this.#dispatch.function({ ...options, name, startHint }, original.bind(instance));
        Object.defineProperty(instance, method, { value: handle, configurable: true, writable: true });
        this.#logger.log(`registered Dispatch function ${name}`);
      }
    }
  }
}
