/**
 * `@dispatch/core`: durable, resumable functions for Node.js.
 *
 * @example
 * ```ts
 * import * as dispatch from '@dispatch/core';
 * const greet = dispatch.function(function greet(name: string) { return `Hello ${name}`; });
 * dispatch.run(() => greet.dispatch('Jane'));
 * ```
 * @module
 */
export * from './default-instance.js';
export { Batch, Dispatch, type DispatchFunction, type DispatchInstanceOptions, FUNCTION_NAME_PATTERN, type FunctionOptions } from './dispatch.js';
export { type CallOptions, DurableCall, isDurableCall } from './call.js';
export { ConfigurationError, DEFAULT_API_URL, DEFAULT_ENDPOINT_ADDR, type DispatchOptions, parseAddress, ResolvedConfig } from './config.js';
export { DispatchApiError, DispatchClient, type DispatchClientOptions, redactKey } from './client.js';
export { type DurationInput, parseDuration } from './duration.js';
export { Engine, type EngineOptions, type EngineStats, type RunContext } from './engine.js';
export { JOURNAL_TYPE_URL, JOURNAL_VERSION, MAX_JOURNAL_BYTES } from './journal.js';
export { connectError, encodingOf, type EndpointRequest, type EndpointResponse, handleEndpointRequest, RUN_PATH } from './handler.js';
// The node:http helpers adapters use, also at the root: CommonJS builds resolve
// with moduleResolution node10, which does not see the `./node` subpath.
export { BodyTooLargeError, readBody, sendResponse } from './node.js';
export * from './errors.js';
export * from './status.js';
export * from './status-registry.js';
export * from './serde.js';
export * from './signature.js';
export * from './connect-json.js';
export * as proto from './proto.js';
