/**
 * The engine, driven by an in-memory scheduler through protocol messages.
 * Every scenario runs with the warm cache and with replay forced on every
 * resume, and the seed scenarios also under a foreign scheduler.
 */
import { describe, expect, it } from 'vitest';
import { Dispatch, type DispatchFunction } from '../api/dispatch.js';
import { PermanentError, TemporaryError } from '../status/errors.js';
import * as proto from '../protocol/proto.js';
import { decodeArgs, decodeValue, encodeArgs } from '../serde/serde.js';
import { Status } from '../status/status.js';
import { MemoryScheduler, memoryApp } from '../../test/memory-scheduler.js';

const silent = { warn() {}, error() {}, info() {} };

const setup = memoryApp;

const modes = ['cache', 'replay'] as const;

describe.each(modes)('engine (%s)', (mode) => {
  describe.each(['ours', 'foreign'] as const)('seed scenarios, %s scheduler', (kind) => {
    it('checkout: email fails twice, the charge runs once and its receipt reaches the email', async () => {
      const { dispatch, run, scheduler } = setup(mode, { kind });
      const charges: string[] = [];
      const emails: string[][] = [];
      let emailFailures = 0;
      const charge = dispatch.function(async function charge_credit_card(user: string) {
        charges.push(user);
        return `receipt_${charges.length}`;
      });
      const email = dispatch.function(async function send_email_confirmation(user: string, order: string, receipt: string) {
        emails.push([user, order, receipt]);
        if (emailFailures++ < 2) throw new TemporaryError('smtp unavailable');
      });
      const complete = dispatch.function(async function mark_order_as_completed(order: string) {
        return `completed ${order}`;
      });
      const checkout = dispatch.function(async function checkout(user: string, order: string) {
        const receipt = await charge(user);
        await email(user, order, receipt);
        return await complete(order);
      });
      const result = await run(checkout, 'user_123', 'order_456');
      expect(result.status).toBe(Status.OK);
      expect(result.value).toBe('completed order_456');
      expect(charges).toEqual(['user_123']);
      expect(emails).toEqual([
        ['user_123', 'order_456', 'receipt_1'],
        ['user_123', 'order_456', 'receipt_1'],
        ['user_123', 'order_456', 'receipt_1'],
      ]);
      expect(scheduler.failures.get('send_email_confirmation')).toBe(2);
    });

    it('checkout: the parent itself fails after the charge; its retry resumes without charging again', async () => {
      const { dispatch, run, scheduler } = setup(mode, { kind });
      let charges = 0;
      let flaky = 0;
      const charge = dispatch.function(async function charge(user: string) {
        charges++;
        return `receipt_for_${user}`;
      });
      const email = dispatch.function(async function email(receipt: string) {
        return `sent ${receipt}`;
      });
      const checkout = dispatch.function(async function checkout(user: string) {
        const receipt = await charge(user);
        if (flaky++ < 2) throw new TemporaryError('database hiccup after the charge');
        return await email(receipt);
      });
      const result = await run(checkout, 'u1');
      expect(result.value).toBe('sent receipt_for_u1');
      expect(charges).toBe(1);
      expect(scheduler.failures.get('checkout')).toBe(2);
    });

    it('fan-out: one failing send is retried alone, and the batch is dispatched once', async () => {
      const { dispatch, run, scheduler } = setup(mode, { kind });
      const sends = new Map<string, number>();
      const send = dispatch.function(async function send_email_notification(user: string) {
        sends.set(user, (sends.get(user) ?? 0) + 1);
        if (user === 'bob' && (sends.get(user) ?? 0) < 3) throw new TemporaryError(`mailbox of ${user} busy`);
        return `sent to ${user}`;
      });
      const fetchUsers = dispatch.function(async function fetch_users() {
        return ['ann', 'bob', 'cid'];
      });
      const notifyAll = dispatch.function(async function notify_all_users() {
        const users = await fetchUsers();
        const batch = dispatch.batch();
        for (const user of users) batch.add(send(user));
        const ids = await batch.dispatch();
        await dispatch.sleep(10); // suspends again after the batch: a replay must not dispatch twice
        return ids.length;
      });
      const result = await run(notifyAll);
      expect(result.status).toBe(Status.OK);
      expect(result.value).toBe(3);
      await scheduler.settle();
      expect(Object.fromEntries(sends)).toEqual({ ann: 1, bob: 3, cid: 1 });
      expect(scheduler.runs.get('send_email_notification')).toBe(5);
    });

    it('invoices: gather of generate calls, then gather of uploads, results in order', async () => {
      const { dispatch, run, scheduler } = setup(mode, { kind });
      const uploaded: string[] = [];
      const generate = dispatch.function(async function generate_invoice(client: string) {
        await new Promise((r) => setTimeout(r, client.length)); // finish out of order
        return `/tmp/${client}.pdf`;
      });
      const upload = dispatch.function(async function upload_to_s3(path: string) {
        uploaded.push(path);
        return `s3:/${path}`;
      });
      const clients = dispatch.function(async function fetch_clients() {
        return ['acme-corporation', 'b', 'cyberdyne'];
      });
      const invoices = dispatch.function(async function generate_invoices() {
        const list = await clients();
        const paths = await dispatch.gather(...list.map((c) => generate(c)));
        return await dispatch.gather(paths.map((p) => upload(p)));
      });
      const result = await run(invoices);
      expect(result.value).toEqual(['s3://tmp/acme-corporation.pdf', 's3://tmp/b.pdf', 's3://tmp/cyberdyne.pdf']);
      expect([...uploaded].sort()).toEqual(['/tmp/acme-corporation.pdf', '/tmp/b.pdf', '/tmp/cyberdyne.pdf']);
      if (kind === 'ours') expect(scheduler.resumes.get('generate_invoices')).toBe(3);
    });

    it('DNS verification: retried on success through registerOutputType until the record appears', async () => {
      const { dispatch, run, scheduler } = setup(mode, { kind });
      class DNSVerification {
        constructor(readonly verified: boolean) {}
      }
      dispatch.registerOutputType(DNSVerification, (v) => (v.verified ? Status.OK : Status.TEMPORARY_ERROR));
      let lookups = 0;
      const marked: string[] = [];
      const waitForDns = dispatch.function(async function wait_for_dns_records(domain: string) {
        lookups++;
        return new DNSVerification(lookups >= 4 && domain === 'example.com');
      });
      const mark = dispatch.function(async function mark_domain_as_connected(domain: string) {
        marked.push(domain);
      });
      const connect = dispatch.function(async function connect_domain(domain: string) {
        const v = await waitForDns(domain);
        await mark(domain);
        return v;
      });
      const result = await run(connect, 'example.com');
      expect(result.status).toBe(Status.OK);
      expect(result.value).toEqual({ verified: true });
      expect(lookups).toBe(4);
      expect(marked).toEqual(['example.com']);
      expect(scheduler.failures.get('wait_for_dns_records')).toBe(3);
    });
  });

  it('propagates errors with name, message, status and fields, nested to any depth', async () => {
    const { dispatch, run } = setup(mode);
    class UserDeactivated extends PermanentError {
      constructor(readonly userId: string) {
        super(`user ${userId} is deactivated`);
        this.name = 'UserDeactivated';
      }
    }
    const leaf = dispatch.function(async function leaf(id: string) {
      throw new UserDeactivated(id);
    });
    const middle = dispatch.function(async function middle(id: string) {
      return await leaf(id);
    });
    const top = dispatch.function(async function top(id: string) {
      try {
        await middle(id);
        return 'no error?';
      } catch (err) {
        const e = err as UserDeactivated;
        return { name: e.name, message: e.message, userId: e.userId, status: dispatch.registry.errorStatus(e) };
      }
    });
    const result = await run(top, 'u9');
    expect(result.value).toEqual({ name: 'UserDeactivated', message: 'user u9 is deactivated', userId: 'u9', status: Status.PERMANENT_ERROR });
    const failed = await run(middle, 'u8');
    expect(failed.status).toBe(Status.PERMANENT_ERROR);
    expect(failed.error?.name).toBe('UserDeactivated');
  });

  it('runs native Promise.all / allSettled / any / race over durable calls, with one poll per turn', async () => {
    const { dispatch, run, scheduler } = setup(mode);
    const double = dispatch.function(async function double(n: number) {
      if (n < 0) throw new PermanentError(`negative: ${n}`);
      return n * 2;
    });
    const combos = dispatch.function(async function combos() {
      const all = await Promise.all([double(1), double(2), double(3)]);
      const settled = await Promise.allSettled([double(4), double(-1)]);
      const any = await Promise.any([double(-2), double(5)]);
      let anyError = '';
      try {
        await dispatch.any([double(-3), double(-4)]);
      } catch (err) {
        anyError = `${(err as Error).name}:${(err as AggregateError).errors.length}`;
      }
      const raced = await dispatch.race([double(6), double(7)]);
      return { all, settled: settled.map((s) => s.status), any, anyError, raced };
    });
    const result = await run(combos);
    // double(6) is started first and finishes first: its result is delivered first and wins the race.
    expect(result.value).toEqual({ all: [2, 4, 6], settled: ['fulfilled', 'rejected'], any: 10, anyError: 'AggregateError:2', raced: 12 });
    // One poll per turn: the calls started in one turn go out together, in order, in one Poll.
    const sent = scheduler.polls.filter((p) => p.function === 'combos' && p.calls.length > 0).map((p) => p.calls.map((c) => decodeArgs(c.input)[0]));
    expect(sent).toEqual([[1, 2, 3], [4, -1], [-2, 5], [-3, -4], [6, 7]]);
    expect(scheduler.runs.get('double')).toBe(11);
  });

  it('picks the same race winner on every replay', async () => {
    const { dispatch, run } = setup(mode);
    const slow = dispatch.function(async function slow() {
      await new Promise((r) => setTimeout(r, 30));
      return 'slow';
    });
    const fast = dispatch.function(async function fast() {
      return 'fast';
    });
    const next = dispatch.function(async function next(x: string) {
      return x;
    });
    const racer = dispatch.function(async function racer() {
      const winners: string[] = [];
      for (let i = 0; i < 3; i++) winners.push(await next(await dispatch.race([slow(), fast()])));
      return winners;
    });
    const result = await run(racer);
    expect(result.value).toEqual(['fast', 'fast', 'fast']);
  });

  it('runs steps once and journals their results; durable sleep and sleep as a race timeout', async () => {
    const { dispatch, run, scheduler } = setup(mode);
    let stepRuns = 0;
    const echo = dispatch.function(async function echo(x: unknown) {
      return x;
    });
    const never = dispatch.function(async function never() {
      await new Promise((r) => setTimeout(r, 4000));
      return 'late';
    });
    const flow = dispatch.function(async function flow() {
      const rate = await dispatch.step('rate', async () => {
        stepRuns++;
        return { eur: 1.1, at: new Date(0) };
      });
      const echoed = await echo(rate);
      // Timestamps taken in steps are journaled: a replay sees the times of the first run.
      const started = await dispatch.step('before sleep', () => Date.now());
      await dispatch.sleep('1s');
      const woke = await dispatch.step('after sleep', () => Date.now());
      const raced = await dispatch.race([never(), dispatch.sleep(1000).then(() => 'timeout')]);
      return { echoed, slept: woke - started >= 900, raced };
    });
    const result = await run(flow);
    expect(result.status).toBe(Status.OK);
    expect(result.value).toEqual({ echoed: { eur: 1.1, at: new Date(0) }, slept: true, raced: 'timeout' });
    expect(stepRuns).toBe(1);
    // The sleep is a timer poll (no calls, max_wait 1 s), and so is the race's timeout beside its call.
    const polls = scheduler.polls.filter((p) => p.function === 'flow').map((p) => ({ calls: p.calls.map((c) => c.function), maxWaitMs: p.maxWaitMs }));
    expect(polls).toEqual([
      { calls: ['echo'], maxWaitMs: 300_000 },
      { calls: [], maxWaitMs: 1000 },
      { calls: ['never'], maxWaitMs: 1000 },
    ]);
  });

  it('fn.dispatch() inside a function dispatches once across replays', async () => {
    const { dispatch, run, scheduler } = setup(mode);
    let runs = 0;
    const job = dispatch.function(async function job(n: number) {
      runs++;
      return n;
    });
    const ping = dispatch.function(async function ping() {
      return 'pong';
    });
    const parent = dispatch.function(async function parent() {
      const id = await job.dispatch(1);
      await ping();
      await ping();
      return typeof id;
    });
    expect((await run(parent)).value).toBe('string');
    await scheduler.settle();
    expect(runs).toBe(1);
  });

  it('validates inputs with zod: INVALID_ARGUMENT with the schema message', async () => {
    const { z } = await import('zod');
    const { dispatch, run } = setup(mode);
    const add = dispatch.function({ name: 'add', input: z.tuple([z.number(), z.number()]) }, (a: number, b: number) => a + b);
    expect((await run(add, 1, 2)).value).toBe(3);
    const bad = await run(add as unknown as DispatchFunction<unknown[], number>, 'x', 2);
    expect(bad.status).toBe(Status.INVALID_ARGUMENT);
    expect(bad.error?.message).toBe('invalid input for add:\n✖ Invalid input: expected number, received string → at [0]');
    const user = dispatch.function({ name: 'user', input: z.object({ name: z.string(), 'e-mail': z.string() }) }, (u: { name: string }) => u.name);
    const worse = await run(user as unknown as DispatchFunction<unknown[], string>, { name: 1 });
    expect(worse.error?.message).toBe(
      'invalid input for user:\n✖ Invalid input: expected string, received number → at name\n✖ Invalid input: expected string, received undefined → at ["e-mail"]',
    );
  });

  it('completes a fan-in of 2,000 children without resuming the parent per child', async () => {
    const { dispatch, run, scheduler } = setup(mode);
    const square = dispatch.function(async function square(n: number) {
      return n * n;
    });
    const sum = dispatch.function(async function sum(n: number) {
      const squares = await dispatch.gather(Array.from({ length: n }, (_, i) => square(i)));
      return squares.reduce((a, b) => a + b, 0);
    });
    const result = await run(sum, 2000);
    expect(result.value).toBe(Array.from({ length: 2000 }, (_, i) => i * i).reduce((a, b) => a + b, 0));
    expect(scheduler.resumes.get('sum')).toBeLessThanOrEqual(4);
  });

  it('completes sequential durable calls (10,000 warm, 1,000 replayed)', { timeout: 120_000 }, async () => {
    const { dispatch, run } = setup(mode);
    const inc = dispatch.function(async function inc(n: number) {
      return n + 1;
    });
    const loop = dispatch.function(async function loop(steps: number) {
      let n = 0;
      for (let i = 0; i < steps; i++) n = await inc(n);
      return n;
    });
    const steps = mode === 'cache' ? 10_000 : 1_000;
    expect((await run(loop, steps)).value).toBe(steps);
  });
});

describe('engine: state it cannot use', () => {
  function fixture(onIncompatibleState?: 'restart') {
    const dispatch = new Dispatch({ env: {}, endpointUrl: 'http://app.test', verificationKey: null, logger: silent, cache: false });
    let variant = 'a';
    const a = dispatch.function(async function a() {
      return 'a';
    });
    const b = dispatch.function(async function b() {
      return 'b';
    });
    const flow = dispatch.function({ name: 'flow', onIncompatibleState }, async () => {
      await a();
      return variant === 'a' ? await a() : await b();
    });
    void flow;
    return {
      dispatch,
      setVariant: (v: string) => {
        variant = v;
      },
    };
  }

  async function suspendTwice(dispatch: Dispatch) {
    const first = await dispatch.engine.run({ function: 'flow', input: encodeArgs([]), dispatchId: 'd1' });
    const call1 = first.poll?.calls?.[0];
    const second = await dispatch.engine.run({
      function: 'flow',
      dispatchId: 'd1',
      pollResult: { typedCoroutineState: first.poll?.typedCoroutineState, results: [{ correlationId: call1?.correlationId, output: proto.pack(proto.StringValue, { value: 'a' }) }] },
    });
    return second;
  }

  it('answers INCOMPATIBLE_STATE naming the position and both calls when the code changed', async () => {
    const { dispatch, setVariant } = fixture();
    const second = await suspendTwice(dispatch);
    expect(second.poll?.calls?.[0]?.function).toBe('a');
    setVariant('b');
    const third = await dispatch.engine.run({
      function: 'flow',
      dispatchId: 'd1',
      pollResult: { typedCoroutineState: second.poll?.typedCoroutineState, results: [] },
    });
    expect(third.status).toBe(Status.INCOMPATIBLE_STATE);
    expect(third.exit?.result?.error?.message).toMatch(/at position 1 the journal recorded a call of a but the code now starts a call of b/);
  });

  it('restarts from the original input as a tail call when the function opts in', async () => {
    const { dispatch, setVariant } = fixture('restart');
    const second = await suspendTwice(dispatch);
    setVariant('b');
    const third = await dispatch.engine.run({
      function: 'flow',
      dispatchId: 'd1',
      pollResult: { typedCoroutineState: second.poll?.typedCoroutineState, results: [] },
    });
    expect(third.exit?.tailCall?.function).toBe('flow');
  });

  it('refuses unknown state types, unreadable bytes and other journal versions', async () => {
    const { dispatch } = fixture();
    const cases = [
      { typeUrl: 'buf.build/stealthrocket/coroutine/coroutine.v1.State', value: new Uint8Array([1, 2, 3]) },
      { typeUrl: proto.Journal.typeUrl, value: new Uint8Array([0xff, 0xff, 0xff]) },
      { typeUrl: proto.Journal.typeUrl, value: proto.Journal.encode({ version: 99, function: 'flow' }) },
    ];
    for (const state of cases) {
      const res = await dispatch.engine.run({ function: 'flow', dispatchId: 'x', pollResult: { typedCoroutineState: state } });
      expect(res.status).toBe(Status.INCOMPATIBLE_STATE);
      expect(res.exit?.result?.error?.type).toBe('IncompatibleStateError');
    }
  });

  it('enforces the journal size limit with a clear error', async () => {
    const dispatch = new Dispatch({ env: {}, endpointUrl: 'http://app.test', verificationKey: null, logger: silent, maxJournalBytes: 2000 });
    const scheduler = new MemoryScheduler(dispatch);
    const big = dispatch.function(async function big() {
      return 'x'.repeat(500);
    });
    const hog = dispatch.function(async function hog() {
      for (let i = 0; i < 10; i++) await big();
    });
    void big;
    const outcome = await scheduler.call(hog.functionName, encodeArgs([]));
    expect(outcome.status).toBe(Status.PERMANENT_ERROR);
    expect(outcome.error?.message).toMatch(/over the limit of 2000 bytes/);
  });
});

describe.each(modes)('engine (%s): protocol edge cases', (mode) => {
  function app() {
    const dispatch = new Dispatch({ env: {}, endpointUrl: 'http://app.test', verificationKey: null, logger: silent, cache: mode === 'cache' ? undefined : false });
    const child = dispatch.function(async function child(n: number) {
      return n;
    });
    dispatch.function(async function parent() {
      return (await dispatch.gather([child(1), child(2)])).join('+');
    });
    return dispatch;
  }
  const out = (v: number) => proto.pack(proto.Int64Value, { value: v });

  it('resubmits the calls of a poll that failed (PollResult.error)', async () => {
    const dispatch = app();
    const first = await dispatch.engine.run({ function: 'parent', input: encodeArgs([]), dispatchId: 'p' });
    const calls = first.poll?.calls ?? [];
    expect(calls.map((c) => c.function)).toEqual(['child', 'child']);
    const again = await dispatch.engine.run({
      function: 'parent',
      dispatchId: 'p',
      pollResult: { typedCoroutineState: first.poll?.typedCoroutineState, error: { type: 'Unavailable', message: 'calls not dispatched' } },
    });
    const resent = again.poll?.calls ?? [];
    expect(resent.map((c) => proto.toBigInt(c.correlationId))).toEqual(calls.map((c) => proto.toBigInt(c.correlationId)));
  });

  it('ignores duplicate and unknown correlation IDs', async () => {
    const dispatch = app();
    const first = await dispatch.engine.run({ function: 'parent', input: encodeArgs([]), dispatchId: 'p' });
    const [a, b] = first.poll?.calls ?? [];
    const second = await dispatch.engine.run({
      function: 'parent',
      dispatchId: 'p',
      pollResult: {
        typedCoroutineState: first.poll?.typedCoroutineState,
        results: [
          { correlationId: a?.correlationId, output: out(1) },
          { correlationId: a?.correlationId, output: out(100) }, // duplicate: the first wins
          { correlationId: proto.toLong(12345n), output: out(7) }, // unknown
        ],
      },
    });
    expect(second.poll?.calls ?? []).toEqual([]);
    const third = await dispatch.engine.run({
      function: 'parent',
      dispatchId: 'p',
      pollResult: {
        typedCoroutineState: second.poll?.typedCoroutineState,
        results: [
          { correlationId: a?.correlationId, output: out(50) }, // redelivered after being recorded
          { correlationId: b?.correlationId, output: out(2) },
        ],
      },
    });
    expect(third.status).toBe(Status.OK);
    expect(decodeValue(third.exit?.result?.output)).toBe('1+2');
  });
});
