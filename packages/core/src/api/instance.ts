/**
 * What the framework adapters accept as "the Dispatch instance": a
 * `Dispatch`, or the module namespace of `@dispatch/core` (`import * as
 * dispatch`), which stands for its default instance. Anything else is
 * refused when the adapter is mounted, not at the first request.
 * @module
 */
import { Dispatch } from './dispatch.js';

/**
 * A `Dispatch` instance, or the `@dispatch/core` module itself (its default
 * instance: what `dispatch.function(...)` registers on after
 * `import * as dispatch from '@dispatch/core'`).
 * @example
 * const a: DispatchOrModule = new Dispatch();
 * const b: DispatchOrModule = await import('@dispatch/core');
 */
export type DispatchOrModule = Dispatch | { defaultDispatch(): Dispatch };

/**
 * The instance an adapter serves: `value` itself, or the default instance
 * when `value` is the `@dispatch/core` module. Throws a `TypeError` naming
 * `caller` and what to pass otherwise.
 * @example
 * const instance = dispatchInstance(dispatch, 'dispatchMiddleware()');
 */
export function dispatchInstance(value: unknown, caller: string): Dispatch {
  if (value instanceof Dispatch) return value;
  const candidate = value as Partial<Dispatch> & { defaultDispatch?: unknown } | null | undefined;
  if (candidate && typeof candidate === 'object') {
    // Another copy of @dispatch/core (an ESM and a CommonJS one in one app) fails instanceof: accept its shape.
    if (typeof candidate.handler === 'function' && typeof candidate.function === 'function' && candidate.config) return candidate as Dispatch;
    if (typeof candidate.defaultDispatch === 'function') return dispatchInstance(candidate.defaultDispatch(), caller);
  }
  throw new TypeError(
    `${caller} needs the Dispatch instance whose functions it serves: a \`new Dispatch()\`, or the module itself after ` +
      `\`import * as dispatch from '@dispatch/core'\` (its default instance); got ${describeValue(value)}`,
  );
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'function') return `a function (${value.name || 'anonymous'})`;
  if (typeof value === 'object') {
    const keys = Object.keys(value).slice(0, 5);
    return `an object (${value.constructor?.name ?? 'Object'}${keys.length ? ` with ${keys.join(', ')}` : ''})`;
  }
  return `${typeof value} ${JSON.stringify(value)}`;
}
