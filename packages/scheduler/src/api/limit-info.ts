/**
 * Declared limits in `CallInfo` (Get, List): the key of a call's per-key
 * limit, and, for a pending call that is due but waits on a limit of its
 * function, which limit (issue 16).
 * @module
 */
import type { proto } from '@dispatch/core/protocol';
import type { CallRecord, Store } from '../store/store.js';

/**
 * Adds `limitKey` and `limitWait` to the infos of the records (same order).
 * Asks the store once per (endpoint, function, key).
 * @example
 * await addLimitWaits(store, page.calls, infos, Date.now());
 */
export async function addLimitWaits(store: Store, records: readonly CallRecord[], infos: proto.ICallInfo[], now: number): Promise<void> {
  const cache = new Map<string, Promise<proto.ILimitWait | null>>();
  await Promise.all(
    records.map(async (rec, i) => {
      const info = infos[i]!;
      if (rec.limitKey) info.limitKey = rec.limitKey;
      if (!store.limitWait || rec.state !== 'pending' || rec.dueAt === null || rec.dueAt > now) return;
      const k = `${rec.endpoint}\u0000${rec.function}\u0000${rec.limitKey}`;
      let p = cache.get(k);
      if (!p) cache.set(k, (p = store.limitWait({ endpoint: rec.endpoint, function: rec.function, limitKey: rec.limitKey }, now)));
      const wait = await p;
      if (wait) info.limitWait = wait;
    }),
  );
}
