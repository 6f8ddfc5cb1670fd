/**
 * For a store's own migration test: a coroutine state written before the
 * schema is rewound to an older version (the state in the row, as an older
 * scheduler kept it), and the checks that the upgraded store still serves
 * it — read, elided from claims, loaded on demand, appended to.
 * @module
 */
import { expect } from 'vitest';
import type { NewCall, Store } from '../../../src/store/store.js';
import { completion, NOW, suspendOutcome, typed } from './fixtures.js';

const claimOne = (store: Store, now: number, elideStateAbove?: number) =>
  store.claimDue({ owner: 'a', now, leaseMs: 60_000, limit: 1, capacity: () => 1, ...(elideStateAbove === undefined ? {} : { elideStateAbove }) });

const suspendWith = (store: Store, call: NewCall, leaseToken: number, now: number, bytes: number[]) =>
  store.complete(completion(call.id, leaseToken, now, suspendOutcome(now + 1, { state: typed(bytes), stateIsDelta: true })));

/**
 * Inserts `call` (due at {@link NOW}) and suspends it with the typed state
 * `[1, 2, 3]` (a delta), for the test to rewind the schema under it.
 * @example
 * const call = newCall(); await suspendWithJournal(store, call); // then rewind the schema
 */
export async function suspendWithJournal(store: Store, call: NewCall): Promise<void> {
  await store.insertCalls([call]);
  const [c] = (await claimOne(store, NOW)).calls;
  expect(await suspendWith(store, call, c!.leaseToken, NOW, [1, 2, 3])).toBe(true);
}

/**
 * Checks that the upgraded store serves the state of {@link suspendWithJournal}:
 * read back, elided from a claim and loaded on demand, appended to.
 * @example
 * await expectJournalServed(await SqliteStore.open({ path }), call);
 */
export async function expectJournalServed(store: Store, call: NewCall): Promise<void> {
  expect((await store.getCall(call.id))?.coroutineState).toEqual(typed([1, 2, 3]));
  const [r] = (await claimOne(store, NOW + 1, 2)).calls;
  expect(r?.resume).toMatchObject({ stateLength: 3, stateLoaded: false });
  expect(await store.loadState(call.id, r!.leaseToken)).toEqual(typed([1, 2, 3]));
  expect(await suspendWith(store, call, r!.leaseToken, NOW + 1, [4])).toBe(true);
  expect((await store.getCall(call.id))?.coroutineState).toEqual(typed([1, 2, 3, 4]));
}
