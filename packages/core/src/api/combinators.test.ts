/**
 * The combinators in a running function, through the in-memory scheduler:
 * each of gather/all/allSettled/any/race with calls as arguments and as one
 * iterable (array, Set, generator), the poll each turn makes, and items that
 * are not calls. Every scenario runs warm and replayed, under our scheduler
 * and a foreign one.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { memoryApp } from '../../test/memory-scheduler.js';
import * as dispatchModule from '../index.js';
import { decodeArgs } from '../serde/serde.js';
import { PermanentError } from '../status/errors.js';
import { Status } from '../status/status.js';
import type { DurableCall } from './call.js';
import type { Dispatch, DispatchFunction } from './dispatch.js';

/** A gate opened when the test ends: a call waiting on it loses every race. */
function gate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

function functions(dispatch: Dispatch, closed: Promise<void>) {
  const double = dispatch.function(async function double(n: number) {
    if (n < 0) throw new PermanentError(`negative: ${n}`);
    return n * 2;
  });
  const late = dispatch.function(async function late(n: number) {
    await closed;
    return -n;
  });
  return { double, late };
}

describe.each(['cache', 'replay'] as const)('combinators (%s)', (mode) => {
  describe.each(['ours', 'foreign'] as const)('%s scheduler', (kind) => {
    it('each takes calls as arguments or one array, in one poll per turn; the instance and the module share them', async () => {
      const { dispatch, run, scheduler } = memoryApp(mode, { kind });
      const { opened, open } = gate();
      const { double, late } = functions(dispatch, opened);
      const { gather, all, allSettled, any, race } = dispatchModule;
      const flow = dispatch.function(async function flow() {
        const status = (s: PromiseSettledResult<number>) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message);
        return {
          gatherArgs: await dispatch.gather(double(1), double(2)),
          gatherArray: await gather([double(3), double(4)]),
          allArgs: await all(double(5), double(6)),
          allArray: await dispatch.all([double(7), double(8)]),
          settledArgs: (await dispatch.allSettled(double(9), double(-1))).map(status),
          settledArray: (await allSettled([double(10), double(-2)])).map(status),
          anyArgs: await dispatch.any(double(-3), double(11)),
          anyArray: await any([double(-4), double(12)]),
          raceArgs: await race(double(13), late(1)),
          raceArray: await dispatch.race([late(2), double(14)]),
        };
      });
      try {
        const result = await run(flow);
        expect(result.status).toBe(Status.OK);
        expect(result.value).toEqual({
          gatherArgs: [2, 4],
          gatherArray: [6, 8],
          allArgs: [10, 12],
          allArray: [14, 16],
          settledArgs: [18, 'negative: -1'],
          settledArray: [20, 'negative: -2'],
          anyArgs: 22,
          anyArray: 24,
          raceArgs: 26,
          raceArray: 28,
        });
      } finally {
        open();
      }
      // Each combinator's calls go out in one Poll: min_results is the group's size
      // and it wakes on an error for gather/all/allSettled, 1 for any/race.
      const polls = scheduler.polls
        .filter((p) => p.function === 'flow' && p.calls.length > 0)
        .map((p) => ({ args: p.calls.map((c) => decodeArgs(c.input)[0]), minResults: p.minResults, wakeOnError: p.wakeOnError }));
      const needsAll = (args: number[]) => ({ args, minResults: 2, wakeOnError: true });
      const needsOne = (args: number[]) => ({ args, minResults: 1, wakeOnError: false });
      expect(polls).toEqual([
        needsAll([1, 2]),
        needsAll([3, 4]),
        needsAll([5, 6]),
        needsAll([7, 8]),
        needsAll([9, -1]),
        needsAll([10, -2]),
        needsOne([-3, 11]),
        needsOne([-4, 12]),
        needsOne([13, 1]),
        needsOne([2, 14]),
      ]);
      expect(dispatch.gather).toBe(gather);
      expect(dispatch.race).toBe(race);
    });

    it('takes a Set and a generator as the one iterable', async () => {
      const { dispatch, run, scheduler } = memoryApp(mode, { kind });
      const { opened, open } = gate();
      const { double, late } = functions(dispatch, opened);
      function* doubles(from: number, count: number) {
        for (let n = from; n < from + count; n++) yield double(n);
      }
      const flow = dispatch.function(async function flow() {
        return {
          allSet: await dispatch.all(new Set([double(1), double(2), double(3)])),
          gatherGenerator: await dispatch.gather(doubles(4, 3)),
          settledGenerator: (await dispatch.allSettled(doubles(7, 2))).map((s) => s.status),
          anySet: await dispatch.any(new Set([double(-1), double(9)])),
          raceGenerator: await dispatch.race((function* () {
            yield double(10);
            yield late(3);
          })()),
        };
      });
      try {
        const result = await run(flow);
        expect(result.status).toBe(Status.OK);
        expect(result.value).toEqual({ allSet: [2, 4, 6], gatherGenerator: [8, 10, 12], settledGenerator: ['fulfilled', 'fulfilled'], anySet: 18, raceGenerator: 20 });
      } finally {
        open();
      }
      const sent = scheduler.polls.filter((p) => p.function === 'flow' && p.calls.length > 0).map((p) => p.calls.map((c) => decodeArgs(c.input)[0]));
      expect(sent).toEqual([[1, 2, 3], [4, 5, 6], [7, 8], [-1, 9], [10, 3]]);
    });

    it('race(a(), b()) and any(a(), b()) written as in plain JavaScript, without types', async () => {
      const { dispatch, run } = memoryApp(mode, { kind });
      const { opened, open } = gate();
      const { double, late } = functions(dispatch, opened);
      const js = dispatch as unknown as Record<'race' | 'any', (...items: unknown[]) => Promise<unknown>>;
      const flow = dispatch.function(async function flow(x: number) {
        const raced = await js.race(late(x), double(x));
        const anyOf = await js.any(double(-x), double(x + 1));
        return [raced, anyOf];
      });
      try {
        const result = await run(flow, 5);
        expect(result).toMatchObject({ status: Status.OK, value: [10, 12] });
      } finally {
        open();
      }
    });

    it('refuses what is not a call or a promise with a TypeError that names the fix: INVALID_ARGUMENT, never retried, nothing started', async () => {
      const { dispatch, run, scheduler } = memoryApp(mode, { kind });
      const { double } = functions(dispatch, Promise.resolve());
      const charge = dispatch.function(async function charge(card: string) {
        return `charged ${card}`;
      });
      const js = dispatch as unknown as Record<'gather' | 'all' | 'allSettled' | 'any' | 'race', (...items: unknown[]) => Promise<unknown>>;
      const takes = (name: string) => `dispatch.${name}() takes calls made with fn(...args) or promises, as arguments or in one iterable`;
      const cases: Record<string, { make: () => Promise<unknown>; message: string }> = {
        forgotToCall: {
          make: () => js.race(charge, double(1)),
          message: `${takes('race')}; argument 1 is a function (charge): call it first: charge(...args)`,
        },
        secondArgument: {
          make: () => js.race(double(1), charge),
          message: `${takes('race')}; argument 2 is a function (charge): call it first: charge(...args)`,
        },
        undefinedInArray: {
          make: () => js.any([double(1), undefined]),
          message: `${takes('any')}; item 2 of the array is undefined: pass the call itself, fn(...args) (did a map callback forget to return it?)`,
        },
        plainValue: {
          make: () => js.all(double(1), 42),
          message: `${takes('all')}; argument 2 is a number (42), which has nothing to wait for: pass calls made with fn(...args) or promises`,
        },
        stringInSet: {
          make: () => js.allSettled(new Set([double(1), 'card_1'])),
          message: `${takes('allSettled')}; item 2 of the iterable (Set) is a string ("card_1"), which has nothing to wait for: pass calls made with fn(...args) or promises`,
        },
        arrayAmongArguments: {
          make: () => js.gather([double(1)], double(2)),
          message: `${takes('gather')}; argument 1 is an array: pass the calls themselves, as arguments, dispatch.gather(a(), b()), or as one iterable, dispatch.gather([a(), b()])`,
        },
        emptyRace: {
          make: () => js.race(),
          message: `${takes('race')}; it got none, and a race of nothing never settles: pass at least one call`,
        },
      };
      const mistaken = dispatch.function(async function mistaken(which: string) {
        return await (cases[which] as (typeof cases)[string]).make();
      });
      for (const [which, { message }] of Object.entries(cases)) {
        const result = await run(mistaken, which);
        expect(result.status, which).toBe(Status.INVALID_ARGUMENT);
        expect(result.error?.name, which).toBe('TypeError');
        expect(result.error?.message, which).toBe(message);
      }
      expect(scheduler.runs.get('mistaken')).toBe(Object.keys(cases).length); // one run each: not retried
      expect(scheduler.failures.get('mistaken')).toBeUndefined();
      expect(scheduler.polls).toEqual([]); // no call was started
      expect(scheduler.runs.get('double')).toBeUndefined();
    });
  });
});

describe('combinator types', () => {
  // Checked by the typecheck (tsc); never called.
  async function typed(dispatch: Dispatch, num: DispatchFunction<[number], number>, str: DispatchFunction<[string], string>) {
    const calls: DurableCall<number>[] = [num(1), num(2)];
    function* strings() {
      yield str('a');
    }
    expectTypeOf(await dispatch.gather(num(1), str('a'))).toEqualTypeOf<[number, string]>();
    expectTypeOf(await dispatch.gather([num(1), str('a')])).toEqualTypeOf<[number, string]>();
    expectTypeOf(await dispatch.all(calls)).toEqualTypeOf<number[]>();
    expectTypeOf(await dispatch.all(...calls)).toEqualTypeOf<number[]>();
    expectTypeOf(await dispatch.all(new Set(calls))).toEqualTypeOf<number[]>();
    expectTypeOf(await dispatch.allSettled(num(1), str('a'))).toEqualTypeOf<[PromiseSettledResult<number>, PromiseSettledResult<string>]>();
    expectTypeOf(await dispatch.allSettled(strings())).toEqualTypeOf<PromiseSettledResult<string>[]>();
    expectTypeOf(await dispatch.any(num(1), str('a'))).toEqualTypeOf<number | string>();
    expectTypeOf(await dispatch.race([num(1), dispatch.sleep('1s').then(() => 'timeout' as const)])).toEqualTypeOf<number | 'timeout'>();
    expectTypeOf(await dispatch.race(new Set(calls))).toEqualTypeOf<number>();
    // @ts-expect-error a function that was not called is refused
    await dispatch.race(num, str('a'));
    // @ts-expect-error a plain value is refused
    await dispatch.all([num(1), 42]);
  }

  it('types results per position for tuples, per element for iterables', () => {
    expectTypeOf(typed).returns.resolves.toBeVoid();
  });
});
