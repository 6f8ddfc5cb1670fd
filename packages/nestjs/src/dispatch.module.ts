/**
 * `DispatchModule`: the global dynamic module.
 * @module
 */
import { Dispatch } from '@dispatch/core';
import { type DynamicModule, Global, Module, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { DISPATCH_MODULE_OPTIONS } from './dispatch.constants.js';
import { DispatchEndpoint, platformMountProvider } from './dispatch.endpoint.js';
import { DispatchExplorer } from './dispatch.explorer.js';
import type { DispatchModuleAsyncOptions, DispatchModuleOptions } from './dispatch-module-options.interface.js';
import { DispatchService } from './dispatch.service.js';

/**
 * Dispatch for a NestJS app, global: import it once in the root module.
 * It provides the `Dispatch` instance and `DispatchService`, registers the
 * `@DispatchFunction()` methods of every provider at bootstrap, and mounts
 * the endpoint on the Express or Fastify platform.
 *
 * @example
 * ```ts
 * @Module({
 *   imports: [DispatchModule.forRoot({})], // configuration from DISPATCH_* variables
 *   providers: [Billing],
 *   controllers: [ShopController],
 * })
 * export class AppModule {}
 * ```
 */
@Global()
@Module({})
export class DispatchModule {
  /**
   * The module with fixed options.
   * @example DispatchModule.forRoot({ prefix: '/dispatch' })
   */
  static forRoot(options: DispatchModuleOptions = {}): DynamicModule {
    return createModule({ provide: DISPATCH_MODULE_OPTIONS, useValue: options }, []);
  }

  /**
   * The module with options from a factory (configuration services, secrets).
   * @example DispatchModule.forRootAsync({ inject: [ConfigService], useFactory: (c: ConfigService) => ({ apiKey: c.get('KEY') }) })
   */
  static forRootAsync(options: DispatchModuleAsyncOptions): DynamicModule {
    const provider: Provider = { provide: DISPATCH_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] };
    return createModule(provider, options.imports ?? []);
  }
}

/** The dynamic module of forRoot/forRootAsync, with the options provider given. */
function createModule(optionsProvider: Provider, imports: NonNullable<DispatchModuleAsyncOptions['imports']>): DynamicModule {
  return {
    module: DispatchModule,
    global: true,
    imports: [DiscoveryModule, ...imports],
    providers: [
      optionsProvider,
      {
        provide: Dispatch,
        inject: [DISPATCH_MODULE_OPTIONS],
        useFactory: ({ instance, prefix: _p, bodyLimit: _b, mount: _m, ...options }: DispatchModuleOptions) => instance ?? new Dispatch(options),
      },
      DispatchService,
      DispatchExplorer,
      platformMountProvider,
      DispatchEndpoint,
    ],
    exports: [Dispatch, DispatchService, DISPATCH_MODULE_OPTIONS],
  };
}
