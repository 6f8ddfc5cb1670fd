/**
 * Store contract: schedules (issue 15). Declarations upsert the endpoint's
 * schedules (a paused one stays paused; the next tick changes only with the
 * cron or time zone) and remove the ones it no longer declares; a tick is a
 * compare-and-set that inserts its call with its idempotency key, once.
 * @module
 */
import { expect, it } from 'vitest';
import type { ScheduleDeclaration } from '../../../src/store/schedule-store.js';
import { describeContract, newCall, NOW, type StoreContractHooks, type StoreFactory } from './fixtures.js';

const EP = 'http://127.0.0.1:8000';

function decl(name: string, over: Partial<ScheduleDeclaration> = {}): ScheduleDeclaration {
  return { name, cron: '*/2 * * * * *', timeZone: '', missed: 'run-once', expirationMs: null, nextTickAt: NOW + 2_000, ...over };
}

/**
 * Registers the tests of schedules.
 * @example
 * schedulesContract(() => SqliteStore.open({ path: ':memory:' }));
 */
export function schedulesContract(makeStore: StoreFactory, hooks: StoreContractHooks = {}): void {
  describeContract('schedules', makeStore, hooks, (t) => {
    it('declares, keeps the next tick of an unchanged schedule, and removes what is no longer declared', async () => {
      const s = t.store.schedules;
      const first = await s.declare(EP, [decl('a'), decl('b', { cron: '0 9 * * 1', timeZone: 'Europe/Paris', nextTickAt: NOW + 86_400_000 })], NOW);
      expect(first.schedules.map((x) => [x.name, x.cron, x.timeZone, x.nextTickAt, x.paused])).toEqual([
        ['a', '*/2 * * * * *', '', NOW + 2_000, false],
        ['b', '0 9 * * 1', 'Europe/Paris', NOW + 86_400_000, false],
      ]);
      expect(first.removed).toEqual([]);
      await s.pause('a', NOW + 1);
      // Again, later: a keeps its next tick (unchanged cron) and its pause; b's cron changed; c is new.
      const again = await s.declare(EP, [decl('a', { nextTickAt: NOW + 10_000 }), decl('c', { nextTickAt: NOW + 12_000 })], NOW + 5_000);
      expect(again.schedules.map((x) => [x.name, x.nextTickAt, x.paused])).toEqual([
        ['a', NOW + 2_000, true],
        ['c', NOW + 12_000, false],
      ]);
      expect(again.removed).toEqual(['b']);
      const changed = await s.declare(EP, [decl('a', { cron: '*/5 * * * * *', nextTickAt: NOW + 10_000 }), decl('c', { nextTickAt: NOW + 99 })], NOW + 6_000);
      expect(changed.schedules.map((x) => [x.name, x.cron, x.nextTickAt])).toEqual([
        ['a', '*/5 * * * * *', NOW + 10_000],
        ['c', '*/2 * * * * *', NOW + 12_000],
      ]);
      // Another endpoint's declaration leaves these alone.
      await s.declare('http://127.0.0.1:9000', [decl('z')], NOW);
      expect((await s.list()).map((x) => `${x.name}@${x.endpoint}`)).toEqual([`a@${EP}`, `c@${EP}`, 'z@http://127.0.0.1:9000']);
    });

    it('pauses, resumes from a new next tick, and removes', async () => {
      const s = t.store.schedules;
      await s.declare(EP, [decl('a')], NOW);
      expect((await s.pause('a', NOW + 1))?.paused).toBe(true);
      expect((await s.due(NOW + 60_000, 10)).due).toEqual([]);
      const resumed = await s.resume('a', NOW + 62_000, NOW + 61_000);
      expect([resumed?.paused, resumed?.nextTickAt]).toEqual([false, NOW + 62_000]);
      // Resuming an active schedule changes nothing.
      expect((await s.resume('a', NOW + 99_000, NOW + 61_500))?.nextTickAt).toBe(NOW + 62_000);
      expect(await s.pause('nope', NOW)).toBeNull();
      expect(await s.resume('nope', NOW, NOW)).toBeNull();
      expect(await s.remove('a')).toBe(true);
      expect(await s.remove('a')).toBe(false);
      expect(await s.get('a')).toBeNull();
    });

    it('records a tick once: the compare-and-set fails for a second taker, and the call is inserted with its key', async () => {
      const s = t.store.schedules;
      await s.declare(EP, [decl('a'), decl('b', { nextTickAt: NOW + 50_000 })], NOW);
      const due = await s.due(NOW + 2_500, 10);
      expect(due.due.map((x) => x.name)).toEqual(['a']);
      expect(due.nextAt).toBe(NOW + 50_000);
      const key = `schedule:a:${new Date(NOW + 2_000).toISOString()}`;
      const tick = (id: string) =>
        s.tick({ name: 'a', expectedNextTickAt: NOW + 2_000, nextTickAt: NOW + 4_000, tickAt: NOW + 2_000, skipped: 0, call: newCall({ id, rootId: id, function: 'a', endpoint: EP, idempotencyKey: key }), now: NOW + 2_500 });
      const [one, two] = await Promise.all([tick('T1'), tick('T2')]);
      expect([one, two].filter((x) => x !== null)).toHaveLength(1);
      const id = (one ?? two)!;
      const call = await t.store.getCall(id);
      expect([call?.function, call?.idempotencyKey, call?.state]).toEqual(['a', key, 'pending']);
      const a = (await s.get('a'))!;
      expect([a.nextTickAt, a.lastTickAt, a.lastDispatchId, a.ticks]).toEqual([NOW + 4_000, NOW + 2_000, id, 1]);
      // A tick whose key is already known (a schedule declared again with an old next tick) answers the existing call.
      await s.declare(EP, [decl('a', { cron: '*/3 * * * * *', nextTickAt: NOW + 2_000 })], NOW + 3_000);
      await s.declare(EP, [decl('a', { nextTickAt: NOW + 2_000 })], NOW + 3_000);
      expect(await s.tick({ name: 'a', expectedNextTickAt: NOW + 2_000, nextTickAt: NOW + 4_000, tickAt: NOW + 2_000, skipped: 0, call: newCall({ id: 'T3', rootId: 'T3', function: 'a', endpoint: EP, idempotencyKey: key }), now: NOW + 3_000 })).toBe(id);
      expect(await t.store.getCall('T3')).toBeNull();
      // A skipped tick moves on and counts.
      expect(await s.tick({ name: 'a', expectedNextTickAt: NOW + 4_000, nextTickAt: NOW + 20_000, tickAt: NOW + 18_000, skipped: 8, call: null, now: NOW + 19_000 })).toBe('');
      expect((await s.get('a'))?.skippedTicks).toBe(8);
      // Paused: no tick.
      await s.pause('a', NOW + 19_500);
      expect(await s.tick({ name: 'a', expectedNextTickAt: NOW + 20_000, nextTickAt: NOW + 22_000, tickAt: NOW + 20_000, skipped: 0, call: null, now: NOW + 20_500 })).toBeNull();
    });
  });
}
