/**
 * The store contract suite: every {@link Store} implementation (SQLite,
 * PostgreSQL, and the next driver) runs it, one concern per file. Call it
 * from a `*.test.ts` file:
 *
 * ```ts
 * storeContract('SqliteStore (memory)', () => SqliteStore.open({ path: ':memory:' }));
 * ```
 *
 * `makeStore` must return a fresh, empty store each time.
 * @module
 */
import type { Store } from '../../../src/store/store.js';
import { describe } from 'vitest';
import { callsContract } from './calls.js';
import { claimsAndLeasesContract } from './claims-and-leases.js';
import { completionContract } from './completion.js';
import { coroutineStateContract } from './coroutine-state.js';
import type { StoreContractHooks, StoreFactory } from './fixtures.js';
import { heartbeatsContract } from './heartbeats.js';
import { limitsContract } from './limits.js';
import { listingContract } from './listing.js';
import { observabilityContract } from './observability.js';
import { pollsAndWakesContract } from './polls-and-wakes.js';
import { restartCancelContract } from './restart-cancel.js';
import { schedulesContract } from './schedules.js';
import { sessionsContract } from './sessions.js';
import { signalsContract } from './signals.js';

export { claimHot, hotAndCold, newCall, NOW, type StoreContractHooks, type StoreFactory } from './fixtures.js';
export { expectJournalServed, suspendWithJournal } from './state-upgrade.js';

/**
 * Registers the contract tests for a store: every concern, and the
 * heartbeats when the store is shared by instances.
 * @example
 * storeContract('SqliteStore (file)', () => SqliteStore.open({ path: tmpFile() }));
 */
export function storeContract(name: string, makeStore: () => Promise<Store>, hooks: StoreContractHooks = {}): void {
  const make: StoreFactory = makeStore;
  describe(`store contract: ${name}`, () => {
    callsContract(make, hooks);
    claimsAndLeasesContract(make, hooks);
    completionContract(make, hooks);
    pollsAndWakesContract(make, hooks);
    coroutineStateContract(make, hooks);
    restartCancelContract(make, hooks);
    listingContract(make, hooks);
    sessionsContract(make, hooks);
    signalsContract(make, hooks);
    schedulesContract(make, hooks);
    limitsContract(make, hooks);
    observabilityContract(make, hooks);
    if (hooks.sharedByInstances) heartbeatsContract(make, hooks);
  });
}
