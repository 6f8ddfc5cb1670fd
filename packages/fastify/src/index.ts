/**
 * `@dispatch/fastify`: mounts the Dispatch endpoint on a Fastify 5 app.
 *
 * @example
 * ```ts
 * import { dispatchPlugin } from '@dispatch/fastify';
 * await app.register(dispatchPlugin, { dispatch });
 * ```
 * @module
 */
export { dispatchPlugin, type DispatchPluginOptions } from './dispatch-plugin.js';
