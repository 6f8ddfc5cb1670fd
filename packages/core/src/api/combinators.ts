/**
 * The combinators: `gather`, `all`, `allSettled`, `any` and `race`. Each
 * takes several calls as arguments (`race(a(), b())`) or one iterable of them
 * (an array, a Set, a generator...), like `Promise.all` and its kin, and
 * starts every call in the same turn, so they go out in one Poll; the poll
 * wakes the function when every result is in (`gather`, `all`, `allSettled`)
 * or at the first one (`any`, `race`).
 *
 * An item is a call made with `fn(...args)` or a promise (a durable sleep, a
 * step, another combinator). Anything else — a function not called, a plain
 * value, `undefined` — is a `TypeError` that says how to fix it; thrown from
 * a Dispatch function, it ends the call with INVALID_ARGUMENT (not retried).
 * They need no Dispatch instance: `dispatch.race(...)` on an instance and the
 * module-level `race(...)` are the same function.
 * @module
 */
import type { CallGroup } from '../engine/call-context.js';
import { isDurableCall } from './call.js';

/** Results of a list of calls and promises, by position. */
type Results<T extends readonly unknown[]> = { -readonly [K in keyof T]: Awaited<T[K]> };
/** Settled results of a list of calls and promises, by position. */
type SettledResults<T extends readonly unknown[]> = { -readonly [K in keyof T]: PromiseSettledResult<Awaited<T[K]>> };
/**
 * The items a combinator takes, checked one by one: a call made with
 * `fn(...args)` (a `DurableCall`) or a promise; anything else is a type error
 * at its position. (Checked through a mapped type rather than a constraint,
 * so a promise written inline, `sleep('1s').then(() => 'timeout')`, keeps
 * its own result type.)
 */
type Items<T extends readonly unknown[]> = { [K in keyof T]: T[K] extends PromiseLike<unknown> ? T[K] : PromiseLike<unknown> };

/**
 * Waits for every call (run in parallel) and resolves to their results in
 * order; rejects with the first error. Same as {@link all}; kept under the
 * name the seeds use.
 *
 * @example
 * ```ts
 * const paths = await dispatch.gather(...clients.map((c) => generateInvoice(c)));
 * const [user, plan] = await dispatch.gather(fetchUser(id), fetchPlan(id));
 * ```
 */
export function gather<const T extends readonly unknown[]>(items: Items<T>): Promise<Results<T>>;
/** Waits for every call of an iterable (a Set, a generator...); results in iteration order. */
export function gather<T>(items: Iterable<PromiseLike<T>>): Promise<T[]>;
/** Waits for every call given as an argument; results by position. */
export function gather<const T extends readonly unknown[]>(...items: Items<T>): Promise<Results<T>>;
export function gather(...args: unknown[]): Promise<unknown[]> {
  return combine('gather', args, 'all', (items) => Promise.all(items));
}

/**
 * Like `Promise.all` over calls, with one poll for all of them: resolves to
 * every result in order, or rejects with the first error.
 *
 * @example
 * ```ts
 * const [a, b] = await dispatch.all(double(1), double(2));
 * const squares = await dispatch.all(numbers.map((n) => square(n)));
 * ```
 */
export function all<const T extends readonly unknown[]>(items: Items<T>): Promise<Results<T>>;
/** Waits for every call of an iterable (a Set, a generator...); results in iteration order. */
export function all<T>(items: Iterable<PromiseLike<T>>): Promise<T[]>;
/** Waits for every call given as an argument; results by position. */
export function all<const T extends readonly unknown[]>(...items: Items<T>): Promise<Results<T>>;
export function all(...args: unknown[]): Promise<unknown[]> {
  return combine('all', args, 'all', (items) => Promise.all(items));
}

/**
 * Like `Promise.allSettled` over calls: waits for every call and resolves to
 * each one's outcome (`{ status: 'fulfilled', value }` or
 * `{ status: 'rejected', reason }`), in order.
 *
 * @example
 * ```ts
 * const outcomes = await dispatch.allSettled(users.map((u) => sendEmail(u)));
 * const failed = outcomes.filter((o) => o.status === 'rejected').length;
 * ```
 */
export function allSettled<const T extends readonly unknown[]>(items: Items<T>): Promise<SettledResults<T>>;
/** The outcome of every call of an iterable (a Set, a generator...), in iteration order. */
export function allSettled<T>(items: Iterable<PromiseLike<T>>): Promise<PromiseSettledResult<T>[]>;
/** The outcome of every call given as an argument, by position. */
export function allSettled<const T extends readonly unknown[]>(...items: Items<T>): Promise<SettledResults<T>>;
export function allSettled(...args: unknown[]): Promise<PromiseSettledResult<unknown>[]> {
  return combine('allSettled', args, 'all', (items) => Promise.allSettled(items));
}

/**
 * Like `Promise.any` over calls: the first success; an `AggregateError` of
 * every failure if all fail. The function resumes at the first result.
 *
 * @example
 * ```ts
 * const quote = await dispatch.any(quoteFromA(order), quoteFromB(order));
 * ```
 */
export function any<const T extends readonly unknown[]>(items: Items<T>): Promise<Awaited<T[number]>>;
/** The first success among the calls of an iterable (a Set, a generator...). */
export function any<T>(items: Iterable<PromiseLike<T>>): Promise<T>;
/** The first success among the calls given as arguments. */
export function any<const T extends readonly unknown[]>(...items: Items<T>): Promise<Awaited<T[number]>>;
export function any(...args: unknown[]): Promise<unknown> {
  return combine('any', args, 'one', (items) => Promise.any(items));
}

/**
 * Like `Promise.race` over calls: the first to settle, success or failure.
 * A durable sleep makes a timeout. It needs at least one item (a race of
 * nothing would never settle).
 *
 * @example
 * ```ts
 * const winner = await dispatch.race(slowCall(), dispatch.sleep('10s').then(() => 'timed out'));
 * ```
 */
export function race<const T extends readonly unknown[]>(items: Items<T>): Promise<Awaited<T[number]>>;
/** The first to settle among the calls of an iterable (a Set, a generator...). */
export function race<T>(items: Iterable<PromiseLike<T>>): Promise<T>;
/** The first to settle among the calls given as arguments. */
export function race<const T extends readonly unknown[]>(...items: Items<T>): Promise<Awaited<T[number]>>;
export function race(...args: unknown[]): Promise<unknown> {
  return combine('race', args, 'one', (items) => Promise.race(items));
}

/**
 * Checks every item, then starts the calls as one group and combines them.
 * A bad item rejects before anything starts.
 */
function combine<R>(name: string, args: readonly unknown[], needs: CallGroup['needs'], combinator: (items: PromiseLike<unknown>[]) => Promise<R>): Promise<R> {
  let items: unknown[];
  try {
    items = itemsOf(name, args);
  } catch (err) {
    return Promise.reject(err);
  }
  const group: CallGroup = { needs };
  return combinator(items.map((item) => (isDurableCall(item) ? item.start(group) : (item as PromiseLike<unknown>))));
}

/** The items of a combinator's arguments: one iterable, or the arguments themselves; throws a TypeError for anything not awaitable. */
function itemsOf(name: string, args: readonly unknown[]): unknown[] {
  const only = args[0];
  const fromIterable = args.length === 1 && !isThenable(only) && isIterableObject(only);
  const items = fromIterable ? Array.from(only as Iterable<unknown>) : [...args];
  const takes = `dispatch.${name}() takes calls made with fn(...args) or promises, as arguments or in one iterable`;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (isDurableCall(item) || isThenable(item)) continue;
    const where = fromIterable ? `item ${i + 1} of the ${iterableName(only)}` : `argument ${i + 1}`;
    throw new TypeError(`${takes}; ${where} is ${fixFor(item, name)}`);
  }
  if (name === 'race' && items.length === 0) {
    throw new TypeError(`${takes}; it got none, and a race of nothing never settles: pass at least one call`);
  }
  return items;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function isIterableObject(value: unknown): value is Iterable<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function';
}

function iterableName(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' && name !== 'Object' ? `iterable (${name})` : 'iterable';
}

/** What the item is, and what to do about it. */
function fixFor(item: unknown, name: string): string {
  if (typeof item === 'function') {
    const fn = item.name || 'fn';
    return `${item.name ? `a function (${item.name})` : 'an anonymous function'}: call it first: ${fn}(...args)`;
  }
  if (item === undefined || item === null) {
    return `${String(item)}: pass the call itself, fn(...args) (did a map callback forget to return it?)`;
  }
  if (isIterableObject(item)) {
    const what = Array.isArray(item) ? 'an array' : `an ${iterableName(item)}`;
    return `${what}: pass the calls themselves, as arguments, dispatch.${name}(a(), b()), or as one iterable, dispatch.${name}([a(), b()])`;
  }
  if (typeof item === 'object') return `${objectName(item)}, which has nothing to wait for: pass calls made with fn(...args) or promises`;
  const shown = typeof item === 'string' ? JSON.stringify(item) : String(item);
  return `a ${typeof item} (${shown}), which has nothing to wait for: pass calls made with fn(...args) or promises`;
}

function objectName(value: object): string {
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' && name !== 'Object' ? `an object (${name})` : 'an object';
}
