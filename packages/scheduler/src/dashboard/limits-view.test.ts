import { describe, expect, it } from 'vitest';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { NewCall } from '../store/store.js';
import { callView } from './views.js';

describe('the run page of a call waiting on a declared limit', () => {
  it('says which limit holds it back, and its key', async () => {
    const store = await SqliteStore.open({ path: ':memory:' });
    try {
      const now = Date.now();
      const limits = { spec: { concurrency: 1, concurrencyPerKey: true, rateCount: 0, ratePeriodMs: 0, ratePerKey: false }, key: 'u1' };
      const call = (id: string): NewCall => ({ id, function: 'checkout', endpoint: 'http://127.0.0.1:1', input: null, createdAt: now, dueAt: now, expiresAt: now + 60_000, expirationMs: 60_000, rootId: id, limits });
      await store.insertCalls([call('a'), call('b')]);
      const claimed = await store.claimDue({ owner: 'x', now, leaseMs: 60_000, limit: 10, capacity: () => 10 });
      expect(claimed.calls).toHaveLength(1);
      const waiting = claimed.calls[0]!.id === 'a' ? 'b' : 'a';
      const view = await callView(store, (await store.getCall(waiting))!, null);
      expect(view.state).toBe('pending');
      expect(view.waitingOn).toBe('concurrency limit 1 of checkout, key u1');
      expect(view.limitKey).toBe('u1');
      const running = await callView(store, (await store.getCall(claimed.calls[0]!.id))!, null);
      expect(running.waitingOn).toBeNull();
    } finally {
      await store.close();
    }
  });
});
