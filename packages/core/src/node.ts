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
export { bodyErrorResponse, type DispatchServer, nodeListener, refuseUnread, sendResponse, startServer } from './endpoint/node-server.js';
export { BodyTooLargeError, listeningAddress, readBody, reserveBody } from './endpoint/read-body.js';
export {
  BodyBudget,
  BodyBudgetTimeoutError,
  bodyReadBudget,
  DEFAULT_BODY_READ_BUDGET_BYTES,
  DEFAULT_BODY_READ_WAIT_MS,
} from './endpoint/body-budget.js';
