/**
 * Mounts the Dispatch endpoint on the platform Nest runs on.
 * @module
 */
import { Dispatch } from '@dispatch/core';
import { type BeforeApplicationShutdown, Inject, Injectable, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { DISPATCH_MODULE_OPTIONS, DISPATCH_PLATFORM_MOUNT } from './dispatch.constants.js';
import type { DispatchModuleOptions } from './dispatch-module-options.interface.js';
import { loadPlatformMount, type PlatformMount } from './platform-mount.js';

/**
 * Mounts the Run route on the HTTP platform that `HttpAdapterHost` reports:
 * `@dispatch/express`'s middleware on Express, `@dispatch/fastify`'s plugin
 * on Fastify (optional peers: only the platform's adapter is loaded). It
 * mounts as soon as the adapter exists — with `NestFactory.create()` that is
 * before Nest adds its body parsers, so the route reads the raw body — or
 * else when the module initialises (testing modules). On shutdown it waits
 * for in-flight runs.
 *
 * @example
 * ```ts
 * // Provided by DispatchModule; with { prefix: '/dispatch' } the route is
 * // POST /dispatch/dispatch.sdk.v1.FunctionService/Run
 * ```
 */
@Injectable()
export class DispatchEndpoint implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  #mounted = false;

  readonly #host: HttpAdapterHost;
  readonly #dispatch: Dispatch;
  readonly #options: DispatchModuleOptions;
  constructor(
    host: HttpAdapterHost,
    dispatch: Dispatch,
    @Inject(DISPATCH_MODULE_OPTIONS) options: DispatchModuleOptions,
    @Inject(DISPATCH_PLATFORM_MOUNT) mount: PlatformMount | null,
  ) {
    this.#options = options;
    this.#dispatch = dispatch;
    this.#host = host;
    if (mount) this.#mount(mount);
  }

  async onModuleInit(): Promise<void> {
    const adapter = this.#host?.httpAdapter;
    if (this.#mounted || !adapter || this.#options.mount === false) return;
    this.#mount(await loadPlatformMount(adapter.getType()));
  }

  /** Once every module is initialised (the functions registered): the ones with a `schedule` are declared to the scheduler. */
  async onApplicationBootstrap(): Promise<void> {
    if (this.#mounted) await this.#dispatch.startSchedules('DispatchModule');
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.#dispatch.drain();
  }

  #mount(mount: PlatformMount): void {
    const adapter = this.#host?.httpAdapter;
    if (this.#mounted || !adapter || this.#options.mount === false) return;
    this.#mounted = true;
    mount(adapter.getInstance(), this.#dispatch, { prefix: this.#options.prefix ?? '', bodyLimit: this.#options.bodyLimit });
  }
}

/**
 * The provider of {@link DISPATCH_PLATFORM_MOUNT}: when the HTTP adapter
 * already exists as providers are built (`NestFactory.create()`), the
 * adapter package of its platform, loaded before the endpoint is built, so
 * that it mounts before Nest's body parsers; else null (the endpoint loads
 * it at module init).
 */
export const platformMountProvider = {
  provide: DISPATCH_PLATFORM_MOUNT,
  inject: [HttpAdapterHost, DISPATCH_MODULE_OPTIONS],
  useFactory: (host: HttpAdapterHost, options: DispatchModuleOptions): Promise<PlatformMount | null> | null => {
    const adapter = host?.httpAdapter;
    return adapter && options.mount !== false ? loadPlatformMount(adapter.getType()) : null;
  },
};
