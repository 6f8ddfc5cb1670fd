import { describe, expect, it } from 'vitest';
import { CrashQuarantine, quarantineError } from './quarantine.js';
import { EndpointCircuits } from './circuit.js';
import { RunFaults } from './faults.js';
import { Status } from '@dispatch/core/protocol';
import type { EndpointReply } from './http-transport.js';

const EP = 'http://127.0.0.1:8000';
const dropped: EndpointReply = { kind: 'transport', status: Status.TCP_ERROR, message: 'request to http://127.0.0.1:8000 failed: ECONNRESET socket hang up', connection: 'dropped' };
const refused: EndpointReply = { kind: 'transport', status: Status.TCP_ERROR, message: 'request failed: ECONNREFUSED', connection: 'refused' };
const ok: EndpointReply = { kind: 'http', statusCode: 200, contentType: 'application/proto', body: Buffer.alloc(0) };
const call = (id: string) => ({ id, function: id.startsWith('p') ? 'poison' : 'work', endpoint: EP });

describe('CrashQuarantine', () => {
  it('quarantines a call at the limit of consecutive crashes', () => {
    const q = new CrashQuarantine(5);
    for (let i = 1; i < 5; i++) expect(q.crashed('p', EP)).toEqual({ crashes: i, quarantined: false });
    expect(q.isSuspect('p')).toBe(true);
    expect(q.crashed('p', EP)).toEqual({ crashes: 5, quarantined: true });
    expect(q.isSuspect('p')).toBe(false);
  });

  it('counts only consecutive crashes: a clean run clears the suspicion', () => {
    const q = new CrashQuarantine(2);
    q.crashed('a', EP);
    q.cleared('a');
    expect(q.crashed('a', EP)).toEqual({ crashes: 1, quarantined: false });
  });

  it('runs suspects of an endpoint one at a time, others at once', async () => {
    const q = new CrashQuarantine(5);
    expect(await q.enter(EP)).toBe(true);
    const order: string[] = [];
    const second = q.enter(EP).then((ok) => order.push(`second ${ok}`));
    const third = q.enter(EP).then((ok) => order.push(`third ${ok}`));
    expect(await q.enter('http://other:1')).toBe(true);
    expect(q.waitingIn(EP)).toBe(2);
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([]);
    q.leave(EP);
    await second;
    expect(order).toEqual(['second true']);
    q.close();
    await third;
    expect(order).toEqual(['second true', 'third false']);
  });

  it('says what happened and what to do', () => {
    const e = quarantineError({ id: 'D1', function: 'charge', endpoint: EP }, 5, 'ECONNRESET socket hang up');
    expect(e.type).toBe('QuarantinedError');
    expect(e.message).toMatch(/^quarantined: charge crashed the app at http:\/\/127\.0\.0\.1:8000 5 times in a row/);
    expect(e.message).toContain('ECONNRESET socket hang up');
    expect(e.message).toContain('dispatch restart D1');
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() => new CrashQuarantine(0)).toThrow(/quarantineAfter must be an integer ≥ 1, got 0/);
  });
});

describe('RunFaults', () => {
  const setup = (limit = 3) => new RunFaults(new EndpointCircuits({}, { log() {} }), new CrashQuarantine(limit));

  it('blames a crash once on every call in flight; innocents then clear, the poison call is quarantined', async () => {
    const f = setup(3);
    const admit = async (id: string) => f.admitNow(call(id)) ?? (await f.admit(call(id), () => false));
    // Crash 1: the poison call and two innocent ones were in flight.
    for (const id of ['p', 'a', 'b']) {
      const adm = await admit(id);
      expect(f.afterReply(call(id), dropped, adm)).toMatchObject({ quarantine: null, adapt: false });
      f.done(call(id), adm);
    }
    expect(f.circuits.snapshot(EP).state).toBe('open');
    // The app is back: the innocent suspect goes first (as the probe), connects, and succeeds.
    const a = await admit('a');
    expect(a).toMatchObject({ run: true, probe: true, lane: true });
    f.connected(EP);
    expect(f.afterReply(call('a'), ok, a)).toMatchObject({ quarantine: null, adapt: true });
    f.done(call('a'), a);
    expect(f.quarantine.isSuspect('a')).toBe(false);
    // Suspects go one at a time: b holds the lane, p waits.
    const b = await admit('b');
    let pAdmitted = false;
    const p = f.admit(call('p'), () => false).then((x) => {
      pAdmitted = true;
      return x;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(pAdmitted).toBe(false);
    // A call that never crashed is not held.
    expect(f.admitNow(call('c'))).toEqual({ run: true, probe: false, lane: false });
    f.afterReply(call('b'), ok, b);
    f.done(call('b'), b);
    const p2 = await p;
    expect(p2.lane).toBe(true);
    // The poison call crashes the app again (2), and again (3): quarantined.
    expect(f.afterReply(call('p'), dropped, p2).quarantine).toBeNull();
    f.done(call('p'), p2);
    const p3 = await admit('p');
    f.connected(EP);
    const verdict = f.afterReply(call('p'), dropped, p3);
    f.done(call('p'), p3);
    expect(verdict.quarantine?.type).toBe('QuarantinedError');
    expect(verdict.quarantine?.message).toContain('3 times in a row');
  });

  it('a suspect holds the lane for its run, or soloMs at most', async () => {
    const f = new RunFaults(new EndpointCircuits({}, { log() {} }), new CrashQuarantine(5), 30);
    f.quarantine.crashed('a', EP);
    f.quarantine.crashed('b', EP);
    const a = await f.admit(call('a'), () => false);
    expect(a).toMatchObject({ run: true, lane: true });
    // a runs on (a long function); b goes once a has run alone for 30 ms.
    const b = await f.admit(call('b'), () => false);
    expect(b).toMatchObject({ run: true, lane: true });
    // a ending late does not free the lane twice.
    f.done(call('a'), a);
    let cAdmitted = false;
    f.quarantine.crashed('c', EP);
    const c = f.admit(call('c'), () => false).then((x) => {
      cAdmitted = true;
      return x;
    });
    await new Promise((r) => setTimeout(r, 5));
    expect(cAdmitted).toBe(false);
    f.done(call('b'), b);
    expect((await c).run).toBe(true);
  });

  it('a refusal opens the circuit and is quiet; it does not count as a crash', () => {
    const f = setup();
    const adm = f.admitNow(call('a'))!;
    expect(f.afterReply(call('a'), refused, adm)).toEqual({ quarantine: null, adapt: false, quiet: true });
    expect(f.quarantine.isSuspect('a')).toBe(false);
    expect(f.circuits.snapshot(EP).state).toBe('open');
    expect(f.capacity(EP, 10)).toBe(0);
  });

  it('the claim gets a probe of capacity 1 when one is due, and offers it again if unclaimed', () => {
    let now = 0;
    const f = new RunFaults(new EndpointCircuits({ initialProbeMs: 100 }, { log() {}, now: () => now }), new CrashQuarantine(5));
    f.afterReply(call('a'), refused, { run: true, probe: false, lane: false });
    now = 100;
    expect(f.capacity(EP, 0)).toBe(0);
    expect(f.capacity(EP, 10)).toBe(1);
    expect(f.capacity(EP, 10)).toBe(0);
    f.claimed([]);
    expect(f.capacity(EP, 10)).toBe(1);
    f.claimed([call('a')]);
    expect(f.admitNow(call('a'))).toEqual({ run: true, probe: true, lane: false });
  });
});
