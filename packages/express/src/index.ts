/**
 * `@dispatch/express`: mounts the Dispatch endpoint on an Express 4 or 5 app.
 *
 * @example
 * ```ts
 * import { dispatchMiddleware } from '@dispatch/express';
 * app.use(dispatchMiddleware(dispatch));
 * ```
 * @module
 */
export { type DispatchMiddlewareOptions, dispatchMiddleware, type ExpressLikeRequest } from './dispatch-middleware.js';
