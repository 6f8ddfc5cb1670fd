/**
 * The combinators end to end, written in plain JavaScript (an .mjs fixture):
 * `race(a(), b())` and `any(a(), b())` with the calls as arguments, through a
 * real Scheduler (in-memory SQLite) sending signed RunRequests over HTTP; and
 * a function given where a call belongs, which ends with INVALID_ARGUMENT
 * after one attempt.
 */
import { Dispatch, type DispatchFunction, Status } from '@dispatch/core';
import { startTestScheduler, type TestScheduler } from '@dispatch/testing';
import { afterEach, describe, expect, it } from 'vitest';

type Fn = DispatchFunction<[string], string>;
type Fixture = { registerCombinators(dispatch: Dispatch, closed: Promise<void>): { raceBoth: Fn; anyBoth: Fn; forgot: Fn } };

const silent = { warn() {}, error() {}, info() {} };
let t: TestScheduler | undefined;
let open = () => {};
afterEach(async () => {
  open();
  await t?.close();
  t = undefined;
});

async function app() {
  // A computed specifier keeps the fixture untyped: it is plain JavaScript.
  const fixture = './fixtures/combinators-app.mjs';
  const { registerCombinators } = (await import(fixture)) as Fixture;
  const dispatch = new Dispatch({ env: {}, logger: silent });
  const closed = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { dispatch, ...registerCombinators(dispatch, closed) };
}

describe('combinators in plain JavaScript over real HTTP', () => {
  it('race(slow(x), fast(x)) resolves to the first call to finish', async () => {
    const { dispatch, raceBoth } = await app();
    t = await startTestScheduler(dispatch);
    const r = await t.run(raceBoth, 'order_1');
    expect(r).toMatchObject({ status: Status.OK, value: 'fast order_1', attempts: 1, resumes: 1 });
    // One suspension with both calls, one resume with the winner.
    const runs = await t.attempts(r.id);
    expect(runs.map((a) => [a.outcome, a.resume])).toEqual([
      ['suspend', false],
      ['exit', true],
    ]);
    const children = await Promise.all((await t.get(r.id)).children.map((id) => t!.get(id)));
    expect(children.map((c) => c.function)).toEqual(['slow', 'fast']);
  });

  it('any(refuse(x), fast(x)) resolves to the first success', async () => {
    const { dispatch, anyBoth } = await app();
    t = await startTestScheduler(dispatch);
    const r = await t.run(anyBoth, 'order_2');
    expect(r).toMatchObject({ status: Status.OK, value: 'fast order_2' });
    const children = await Promise.all((await t.get(r.id)).children.map((id) => t!.get(id)));
    expect(children.map((c) => [c.function, c.statusName])).toEqual([
      ['refuse', 'PERMANENT_ERROR'],
      ['fast', 'OK'],
    ]);
  });

  it('a function not called is a TypeError naming the fix: INVALID_ARGUMENT after one attempt', async () => {
    const { dispatch, forgot } = await app();
    t = await startTestScheduler(dispatch);
    const r = await t.run(forgot, 'order_3');
    expect(r.status).toBe(Status.INVALID_ARGUMENT);
    expect(r.attempts).toBe(1);
    expect(r.error?.name).toBe('TypeError');
    expect(r.error?.message).toBe(
      'dispatch.race() takes calls made with fn(...args) or promises, as arguments or in one iterable; argument 1 is a function (fast): call it first: fast(...args)',
    );
    expect((await t.attempts(r.id)).map((a) => [a.statusName, a.outcome])).toEqual([['INVALID_ARGUMENT', 'exit']]);
    expect((await t.get(r.id)).children).toEqual([]);
  });
});
