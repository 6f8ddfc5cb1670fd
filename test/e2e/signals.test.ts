/**
 * Signals end to end (issue 15), through real processes: `dispatch run` (a
 * scheduler on SQLite, and on PostgreSQL when DISPATCH_TEST_POSTGRES_URL is
 * set) running fixtures/world-app.mjs, and the `dispatch` CLI sending
 * signals: a signal sent before and after the wait, two consumed in order,
 * a timeout, a signal to a finished or unknown call, a signal sent by a
 * function (once across replays), and what `dispatch get` shows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuilt, until } from './helpers/processes.js';
import { STORES, startWorld, type World } from './helpers/world.js';

beforeAll(() => requireBuilt());

describe.each(STORES)('signals on %s', (store) => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld(store);
  }, 90_000);
  afterAll(async () => {
    await w?.stop();
  });

  it('delivers a signal sent after the function waits (dispatch signal), and dispatch get shows the wait, then what it received', async () => {
    const { dispatchId } = await w.start('waitOne', ['decision', '60s']);
    await until(async () => ((await w.get(dispatchId)).waitingForSignals ?? []).includes('decision'), 'the call to wait for "decision"');
    const before = await w.get(dispatchId);
    expect(before.state).toBe('suspended');
    const sent = await w.cli('signal', dispatchId, 'decision', '{"approved":true,"by":"maria"}');
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout).toMatch(new RegExp(`signal decision delivered to ${dispatchId} \\(it was waiting\\)`));
    expect(await w.result(dispatchId)).toEqual({ value: { approved: true, by: 'maria' }, via: 'handle' });
    const after = await w.get(dispatchId);
    expect(after.state).toBe('succeeded');
    expect(after.waitingForSignals).toBeUndefined();
    expect(after.signals).toHaveLength(1);
    expect(after.signals[0]).toMatchObject({ name: 'decision', payload: { approved: true, by: 'maria' } });
    expect(after.signals[0].consumedAt).toEqual(expect.any(String));
    const text = await w.cli('get', dispatchId);
    expect(text.stdout).toMatch(/signal +decision \{"approved":true,"by":"maria"\} sent \S+, received \S+/);
  }, 90_000);

  it('keeps a signal sent before the function waits until it does', async () => {
    // The function waits for "go" first, so "early" is sent before its wait whatever the timing.
    const { dispatchId } = await w.start('waitGoThenWait', ['early']);
    const sent = await w.cli('signal', dispatchId, 'early', '"came first"');
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout).toMatch(/signal early kept for \S+ until it waits for it/);
    const kept = await w.get(dispatchId);
    expect(kept.signals).toEqual([expect.objectContaining({ name: 'early', payload: 'came first', consumedAt: null })]);
    expect((await w.cli('signal', dispatchId, 'go')).code).toBe(0);
    expect(await w.result(dispatchId)).toMatchObject({ value: 'came first' });
    const after = await w.get(dispatchId);
    expect(after.signals.map((s: { name: string; consumedAt: string | null }) => [s.name, s.consumedAt !== null])).toEqual([
      ['early', true],
      ['go', true],
    ]);
  }, 90_000);

  it('consumes two signals of one name once each, in the order sent', async () => {
    const { dispatchId } = await w.start('collectTwo');
    // Both sent at once, before or while it waits: each is consumed by one wait, in order.
    expect((await w.cli('signal', dispatchId, 'item', '"first"')).code).toBe(0);
    expect((await w.cli('signal', dispatchId, 'item', '"second"')).code).toBe(0);
    expect(await w.result(dispatchId)).toMatchObject({ value: ['first', 'second'] });
    const info = await w.get(dispatchId);
    expect(info.signals.map((s: { payload: unknown }) => s.payload)).toEqual(['first', 'second']);
    expect(info.signals.every((s: { consumedAt: string | null }) => s.consumedAt !== null)).toBe(true);
  }, 90_000);

  it('throws a TimeoutError in the function when no signal arrives in time', async () => {
    const { dispatchId } = await w.start('timesOut');
    const r = await w.result(dispatchId);
    expect(r.value).toEqual({
      isTimeoutError: true,
      name: 'TimeoutError',
      message: `no signal "never" arrived for ${dispatchId} within 2s`,
    });
  }, 90_000);

  it('refuses a signal to a finished call or an unknown one, saying which and why', async () => {
    const { dispatchId } = await w.start('quick', ['Ann']);
    expect(await w.result(dispatchId)).toMatchObject({ value: 'hello Ann' });
    const finished = await w.cli('signal', dispatchId, 'decision', 'true');
    expect(finished.code).not.toBe(0);
    expect(finished.stderr).toContain(`the call ${dispatchId} has finished (succeeded): it cannot receive the signal "decision"`);
    const unknown = await w.cli('signal', 'NOSUCHCALL', 'decision');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('no call with dispatch ID "NOSUCHCALL"');
    // From the app: the same errors, with their Connect codes.
    const fromApp = await w.control<{ error: { message: string; name: string } }>(`/signal/${dispatchId}/decision`);
    expect(fromApp.error.message).toContain('has finished (succeeded)');
    const badJson = await w.cli('signal', dispatchId, 'decision', '{oops');
    expect(badJson.code).not.toBe(0);
    expect(badJson.stderr).toMatch(/the payload of the signal is not valid JSON/);
  }, 90_000);

  it('a function sends a signal exactly once across its replays', async () => {
    const target = await w.start('waitOne', ['fromfn', '60s']);
    const sender = await w.start('sender', [target.dispatchId]);
    expect(await w.result(sender.dispatchId)).toMatchObject({ value: 'sent' });
    expect(await w.result(target.dispatchId)).toMatchObject({ value: 'sent once' });
    expect((await w.get(target.dispatchId)).signals).toHaveLength(1);
  }, 90_000);
});
