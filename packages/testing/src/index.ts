/**
 * `@dispatch/testing`: an in-process scheduler for an app's own tests.
 *
 * @example
 * ```ts
 * import { startTestScheduler } from '@dispatch/testing';
 * const t = await startTestScheduler(dispatch);
 * expect(await t.call(checkout, 'user_1', 'order_1')).toBe('completed order_1');
 * await t.close();
 * ```
 * @module
 */
export {
  startTestScheduler,
  type TestAttempt,
  type TestCall,
  type TestRun,
  TestScheduler,
  type TestSchedulerOptions,
} from './in-process-scheduler.js';
