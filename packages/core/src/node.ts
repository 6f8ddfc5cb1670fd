/**
 * `@dispatch/core/node`: the endpoint on `node:http`, and the body helpers
 * the framework adapters share.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { nodeListener } from '@dispatch/core/node';
 * createServer(nodeListener(dispatch)).listen(8000);
 * ```
 * @module
 */
export { BodyTooLargeError, type DispatchServer, nodeListener, readBody, sendResponse, startServer } from './endpoint/node-server.js';
