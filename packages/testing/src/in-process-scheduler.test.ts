import { Dispatch, PermanentError, Status, TemporaryError } from '@dispatch/core';
import { encodeArgs, generateSigningKeyPair, inProcessRegistry, proto, publicKeyToBase64, RUN_PATH, signRequest } from '@dispatch/core/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestScheduler, type TestScheduler } from './index.js';

const silent = { warn() {}, error() {}, info() {} };
let t: TestScheduler | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('startTestScheduler', () => {
  it('runs an app instance configured for production against an in-process scheduler', async () => {
    // The app's own instance, configured for somewhere else entirely.
    const dispatch = new Dispatch({ env: {}, apiKey: 'prod-key', apiUrl: 'https://dispatch.example.com', endpointUrl: 'https://app.example.com', logger: silent });
    const add = dispatch.function(function add(a: number, b: number) {
      return a + b;
    });
    const double = dispatch.function(async function double(n: number) {
      return (await add(n, n)) as number;
    });
    const original = dispatch.config;
    t = await startTestScheduler(dispatch);
    expect(await t.call(add, 2, 40)).toBe(42);
    expect(await t.call(double, 21)).toBe(42);
    expect(dispatch.config.endpointUrl).toBe(t.endpointUrl);
    await t.close();
    expect(dispatch.config).toBe(original);
    expect(dispatch.config.endpointUrl).toBe('https://app.example.com');
  });

  it('rejects with the error as thrown (name, message, status, fields) and counts attempts', async () => {
    t = await startTestScheduler();
    class CardDeclined extends PermanentError {
      override name = 'CardDeclined';
      constructor(readonly card: string) {
        super(`card ${card} declined`);
      }
    }
    let runs = 0;
    const charge = t.dispatch.function(async function charge(card: string) {
      runs++;
      throw new CardDeclined(card);
    });
    const err = (await t.call(charge, 'card_1').catch((e: unknown) => e)) as Error & { card?: string };
    expect(err.name).toBe('CardDeclined');
    expect(err.message).toBe('card card_1 declined');
    expect(err.card).toBe('card_1');
    expect(runs).toBe(1);

    let flakyRuns = 0;
    const flaky = t.dispatch.function(async function flaky() {
      if (++flakyRuns < 3) throw new TemporaryError(`try ${flakyRuns}`);
      return 'ok';
    });
    const r = await t.run(flaky);
    expect(r).toMatchObject({ status: Status.OK, statusName: 'OK', value: 'ok', attempts: 3, state: 'succeeded' });
    const attempts = await t.attempts(r.id);
    expect(attempts.map((a) => [a.statusName, a.outcome])).toEqual([
      ['TEMPORARY_ERROR', 'retry'],
      ['TEMPORARY_ERROR', 'retry'],
      ['OK', 'exit'],
    ]);
    expect(attempts[0]?.error).toEqual({ name: 'TemporaryError', message: 'try 1' });
  });

  it('shows parents and children of a fan-in, and a fan-out dispatched from inside a function', async () => {
    t = await startTestScheduler();
    const d = t.dispatch;
    const sent: string[] = [];
    const square = d.function(async function square(n: number) {
      return n * n;
    });
    const send = d.function(async function send(to: string) {
      sent.push(to);
    });
    const sum = d.function(async function sumOfSquares(ns: number[]) {
      const squares = await d.gather(ns.map((n) => square(n)));
      await d.batch().add(send('ann'), send('bob')).dispatch();
      return squares.reduce((a, b) => a + b, 0);
    });
    const r = await t.run(sum, [1, 2, 3]);
    expect(r.value).toBe(14);
    const call = await t.get(r.id);
    expect(call).toMatchObject({ function: 'sumOfSquares', state: 'succeeded', parentId: null, rootId: r.id, output: 14 });
    expect(call.children).toHaveLength(3);
    const child = await t.get(call.children[0]!);
    expect(child).toMatchObject({ function: 'square', parentId: r.id, output: 1 });
    // The fan-out calls are root calls of their own, dispatched through the API.
    const sends = async () => (await t!.calls({ function: 'send' })).filter((c) => c.state === 'succeeded').length;
    for (let i = 0; i < 500 && (await sends()) < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sent.sort()).toEqual(['ann', 'bob']);
  });

  it('hands RunRequests to the instance in process by default, and over HTTP on request', async () => {
    t = await startTestScheduler();
    expect(t.transport).toBe('in-process');
    const registered = inProcessRegistry().find(t.endpointUrl);
    expect(registered, 'the instance is registered for its endpoint URL while the test scheduler runs').toBeDefined();
    const ping = t.dispatch.function(async function ping(n: number) {
      return { n, pong: true };
    });
    const chain = t.dispatch.function(async function chain(n: number) {
      let total = 0;
      for (let i = 0; i < n; i++) total += (await ping(i)).n;
      return total;
    });
    expect(await t.call(chain, 20)).toBe(190);
    const endpoint = t.endpointUrl;
    await t.close();
    expect(inProcessRegistry().find(endpoint), 'unregistered at close').toBeUndefined();

    t = await startTestScheduler(undefined, { transport: 'http' });
    expect(t.transport).toBe('http');
    expect(inProcessRegistry().find(t.endpointUrl)).toBeUndefined();
    const ping2 = t.dispatch.function(async function ping2(n: number) {
      return n + 1;
    });
    expect(await t.call(ping2, 41)).toBe(42);
  });

  it('in process, resumes without resending the journal, which an instance without a warm cache asks back', async () => {
    // An instance that keeps no execution between runs: each resume needs the journal (a few hundred bytes).
    const dispatch = new Dispatch({ env: {}, apiKey: 'k', apiUrl: 'http://127.0.0.1:1', endpointUrl: 'http://127.0.0.1:2', cache: false, logger: silent });
    const inc = dispatch.function(async function inc(n: number) {
      return n + 1;
    });
    const loop = dispatch.function(async function loop(n: number) {
      let v = 0;
      for (let i = 0; i < n; i++) v = (await inc(v)) as number;
      return v;
    });
    t = await startTestScheduler(dispatch);
    expect(await t.call(loop, 5)).toBe(5);
    // Never resent in process (asking costs no network round trip), whatever its size: every resume asked for it
    // but the first (a journal may be left out once the SDK sends it as deltas: from the second suspension on).
    expect(dispatch.engine.stats.stateRequired).toBe(4);
    expect(dispatch.engine.stats.replays).toBe(5);
  });

  it('over HTTP, signs requests and the app verifies them; an unsigned request is refused', async () => {
    t = await startTestScheduler(undefined, { transport: 'http' });
    const echo = t.dispatch.function(function echo(s: string) {
      return s;
    });
    // The app verifies with the scheduler's public key...
    const key = t.dispatch.config.verificationKey;
    expect(key && publicKeyToBase64(key)).toBe(t.scheduler.verificationKey);
    // ...so a request that is not signed with the matching private key is refused...
    const body = proto.RunRequest.encode({ function: 'echo', dispatchId: 'x', input: encodeArgs(['unsigned']) });
    const url = `${t.endpointUrl}${RUN_PATH}`;
    const unsigned = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/proto' }, body });
    expect(unsigned.status).toBe(401);
    const forged = signRequest({ method: 'POST', url, contentType: 'application/proto', body, privateKey: generateSigningKeyPair().privateKey });
    const otherKey = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/proto', ...forged }, body });
    expect(otherKey.status).toBe(403);
    // ...and the scheduler's requests, which the app runs, are signed with it.
    const r = await t.run(echo, 'signed');
    expect(r, `the app ran the scheduler's request: ${r.statusName} ${r.error?.message ?? ''}`).toMatchObject({ status: Status.OK, value: 'signed', attempts: 1 });
  });

  it('runs awaited steps without a claim round after each run (the store knows nothing else is due)', async () => {
    t = await startTestScheduler();
    const inc = t.dispatch.function(function inc(n: number) {
      return n + 1;
    });
    const loop = t.dispatch.function(async function loop(steps: number) {
      let n = 0;
      for (let i = 0; i < steps; i++) n = (await inc(n)) as number;
      return n;
    });
    const claimRounds = async () => {
      const text = await t!.scheduler.metrics.text();
      const m = /^dispatch_store_operation_duration_seconds_count\{[^}]*operation="claimDue"[^}]*\} (\d+)$/m.exec(text);
      return m ? Number(m[1]) : 0;
    };
    const before = await claimRounds();
    expect(await t.call(loop, 100)).toBe(100);
    // 201 runs (the parent's 101, the children's 100), each handed on by the completion before it: each run's end
    // woke the loop for a claim round that found nothing (one or more per run) before the store told it so.
    expect((await claimRounds()) - before).toBeLessThan(20);
  });

  it('reports a call that does not finish in time with its state and last error', async () => {
    t = await startTestScheduler(undefined, { timeoutMs: 300 });
    const never = t.dispatch.function(async function never() {
      throw new TemporaryError('still down');
    });
    await expect(t.call(never)).rejects.toThrow(/never .* did not finish within 300 ms: it is (pending|running) after \d+ attempt\(s\) and 0 resume\(s\), last error TemporaryError: still down/);
  });
});
