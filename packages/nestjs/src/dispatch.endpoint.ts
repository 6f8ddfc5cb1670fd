/**
 * Mounts the Dispatch endpoint on the platform Nest runs on.
 * @module
 */
import { Dispatch } from '@dispatch/core';
import { dispatchMiddleware } from '@dispatch/express';
import { dispatchPlugin } from '@dispatch/fastify';
import { type BeforeApplicationShutdown, Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { DISPATCH_MODULE_OPTIONS } from './dispatch.constants.js';
import type { DispatchModuleOptions } from './dispatch-module-options.interface.js';

/**
 * Mounts the Run route on the HTTP platform that `HttpAdapterHost` reports:
 * `@dispatch/express`'s middleware on Express, `@dispatch/fastify`'s plugin
 * on Fastify. It mounts as soon as the adapter exists — with
 * `NestFactory.create()` that is before Nest adds its body parsers, so the
 * route reads the raw body — or else when the module initialises (testing
 * modules). On shutdown it waits for in-flight runs.
 *
 * @example
 * ```ts
 * // Provided by DispatchModule; with { prefix: '/dispatch' } the route is
 * // POST /dispatch/dispatch.sdk.v1.FunctionService/Run
 * ```
 */
@Injectable()
export class DispatchEndpoint implements OnModuleInit, BeforeApplicationShutdown {
  #mounted = false;

  readonly #host: HttpAdapterHost;
  readonly #dispatch: Dispatch;
  readonly #options: DispatchModuleOptions;
  constructor(
    host: HttpAdapterHost,
    dispatch: Dispatch,
    @Inject(DISPATCH_MODULE_OPTIONS) options: DispatchModuleOptions,
  ) {
    this.#options = options;
    this.#dispatch = dispatch;
    this.#host = host;
    this.#mount();
  }

  onModuleInit(): void {
    this.#mount();
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.#dispatch.drain();
  }

  #mount(): void {
    const adapter = this.#host?.httpAdapter;
    if (this.#mounted || !adapter || this.#options.mount === false) return;
    this.#mounted = true;
    const { prefix = '', bodyLimit } = this.#options;
    const type = adapter.getType();
    if (type === 'express') {
      adapter.getInstance().use(prefix || '/', dispatchMiddleware(this.#dispatch, bodyLimit === undefined ? {} : { bodyLimit }));
    } else if (type === 'fastify') {
      adapter.getInstance().register(dispatchPlugin, { dispatch: this.#dispatch, prefix, ...(bodyLimit === undefined ? {} : { bodyLimit }) });
    } else {
      throw new Error(`@dispatch/nestjs mounts on the express and fastify platforms, not on "${type}": pass { mount: false } and serve the endpoint yourself`);
    }
  }
}
