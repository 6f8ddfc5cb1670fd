/**
 * Store contract: dashboard sessions revoked by a logout stay revoked until
 * they would have expired, and their records are dropped after that. (That
 * they survive a restart of the scheduler is shown end to end, in
 * test/e2e/exposure.test.ts.)
 * @module
 */
import { expect, it } from 'vitest';
import { describeContract, type StoreContractHooks, type StoreFactory } from './fixtures.js';

/**
 * Registers the tests of session revocations.
 * @example
 * sessionsContract(() => SqliteStore.open({ path: ':memory:' }));
 */
export function sessionsContract(makeStore: StoreFactory, hooks: StoreContractHooks = {}): void {
  describeContract('revoked sessions', makeStore, hooks, (t) => {
    it('keeps a revoked session until its expiry, then forgets it', async () => {
      const store = t.store;
      const now = Date.now();
      expect(await store.isSessionRevoked('s1', now)).toBe(false);
      await store.revokeSession('s1', now + 60_000);
      expect(await store.isSessionRevoked('s1', now)).toBe(true);
      expect(await store.isSessionRevoked('s1', now + 60_000)).toBe(true);
      expect(await store.isSessionRevoked('s1', now + 60_001)).toBe(false); // it would have expired anyway
      expect(await store.isSessionRevoked('s2', now)).toBe(false);
      // Revoked twice: the later expiry holds.
      await store.revokeSession('s1', now + 30_000);
      expect(await store.isSessionRevoked('s1', now + 45_000)).toBe(true);
    });

    it('drops the records of sessions past their expiry when another is revoked', async () => {
      const store = t.store;
      const now = Date.now();
      await store.revokeSession('old', now - 1_000); // already expired
      await store.revokeSession('new', now + 60_000);
      expect(await store.isSessionRevoked('old', now - 2_000)).toBe(false); // its record is gone
      expect(await store.isSessionRevoked('new', now)).toBe(true);
    });
  });
}
