/**
 * `@dispatch/nestjs`: Dispatch functions as NestJS provider methods, on the
 * Express or Fastify platform.
 *
 * @example
 * ```ts
 * import { DispatchFunction, DispatchModule, DispatchService } from '@dispatch/nestjs';
 * @Module({ imports: [DispatchModule.forRoot({})], providers: [Billing] })
 * export class AppModule {}
 * ```
 * @module
 */
export { DISPATCH_FUNCTION_METADATA, DISPATCH_MODULE_OPTIONS } from './dispatch.constants.js';
export { DispatchEndpoint } from './dispatch.endpoint.js';
export { DispatchExplorer } from './dispatch.explorer.js';
export { DispatchFunction, type DispatchFunctionOptions } from './dispatch-function.decorator.js';
export { DispatchModule } from './dispatch.module.js';
export type { DispatchModuleAsyncOptions, DispatchModuleOptions } from './dispatch-module-options.interface.js';
export { DispatchService } from './dispatch.service.js';
