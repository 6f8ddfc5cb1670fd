/**
 * Options of `DispatchModule.forRoot()` and `forRootAsync()`.
 * @module
 */
import type { Dispatch, DispatchInstanceOptions } from '@dispatch/core';
import type { ModuleMetadata } from '@nestjs/common';

/**
 * What `DispatchModule.forRoot()` takes: the options of a `new Dispatch()`
 * (each overrides its `DISPATCH_*` environment variable), plus where and
 * whether to mount the endpoint.
 *
 * @example
 * ```ts
 * DispatchModule.forRoot({ endpointUrl: 'https://app.example.com', prefix: '/dispatch' })
 * ```
 */
export interface DispatchModuleOptions extends DispatchInstanceOptions {
  /**
   * An existing instance to use instead of creating one from the options
   * (the other instance options are then ignored).
   * @example DispatchModule.forRoot({ instance: myDispatch })
   */
  instance?: Dispatch;
  /**
   * Path the Run route is mounted under. Nest's global prefix does not
   * apply to it (it is not a controller route). Default: none, i.e.
   * `POST /dispatch.sdk.v1.FunctionService/Run`.
   * @example DispatchModule.forRoot({ prefix: '/dispatch' })
   */
  prefix?: string;
  /**
   * Largest Run request body, in bytes. Default: the instance's
   * `maxBodyBytes` (16,000,000 unless configured).
   * @example DispatchModule.forRoot({ bodyLimit: 4_000_000 })
   */
  bodyLimit?: number;
  /**
   * `false` to not mount the endpoint on the HTTP platform (serve it
   * yourself, for example with `dispatch.serve()` in an application
   * context). Default `true`.
   * @example DispatchModule.forRoot({ mount: false })
   */
  mount?: boolean;
}

/**
 * What `DispatchModule.forRootAsync()` takes: a factory of
 * {@link DispatchModuleOptions}, its injected dependencies and the modules
 * that provide them.
 *
 * @example
 * ```ts
 * DispatchModule.forRootAsync({
 *   imports: [ConfigModule],
 *   inject: [ConfigService],
 *   useFactory: (config: ConfigService) => ({ apiKey: config.get('DISPATCH_API_KEY') }),
 * })
 * ```
 */
export interface DispatchModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** Builds the options; may be async. @example useFactory: () => ({ prefix: '/dispatch' }) */
  useFactory: (...args: any[]) => DispatchModuleOptions | Promise<DispatchModuleOptions>;
  /** Providers passed to `useFactory`, in order. @example inject: [ConfigService] */
  inject?: any[];
}
