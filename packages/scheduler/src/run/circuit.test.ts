import { describe, expect, it } from 'vitest';
import { EndpointCircuits } from './circuit.js';

const EP = 'http://127.0.0.1:8000';

function setup(options = {}) {
  let now = 1_000_000;
  const lines: string[] = [];
  const circuits = new EndpointCircuits(
    { initialProbeMs: 500, maxProbeMs: 5_000, logIntervalMs: 10_000, ...options },
    { log: (level, line) => lines.push(`${level} ${line}`), now: () => now },
  );
  return {
    circuits,
    lines,
    advance(ms: number) {
      now += ms;
    },
    get now() {
      return now;
    },
  };
}

describe('EndpointCircuits', () => {
  it('lets everything through while closed', () => {
    const { circuits } = setup();
    expect(circuits.allowance(EP)).toBe(Number.POSITIVE_INFINITY);
    expect(circuits.started(EP)).toBe(false);
    expect(circuits.snapshot(EP).state).toBe('closed');
    expect(circuits.all()).toEqual([]);
  });

  it('opens at a refusal, probes with doubling delays up to the cap, and closes when a probe connects', () => {
    const t = setup();
    const { circuits } = t;
    circuits.refused(EP, 'request to http://127.0.0.1:8000 failed: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:8000', false);
    expect(circuits.snapshot(EP)).toMatchObject({ state: 'open', nextProbeAt: t.now + 500, refused: 1 });
    expect(circuits.allowance(EP)).toBe(0);
    expect(circuits.nextProbeAt()).toBe(t.now + 500);
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const wait = circuits.nextProbeAt()! - t.now;
      delays.push(wait);
      t.advance(wait);
      expect(circuits.allowance(EP)).toBe(1);
      // One probe at a time.
      expect(circuits.allowance(EP)).toBe(0);
      expect(circuits.started(EP)).toBe(true);
      expect(circuits.snapshot(EP).state).toBe('probing');
      expect(circuits.nextProbeAt()).toBeNull();
      circuits.refused(EP, 'ECONNREFUSED', true);
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 5000, 5000]);
    t.advance(5000);
    expect(circuits.allowance(EP)).toBe(1);
    expect(circuits.started(EP)).toBe(true);
    circuits.connected(EP);
    expect(circuits.snapshot(EP).state).toBe('closed');
    expect(circuits.allowance(EP)).toBe(Number.POSITIVE_INFINITY);
    expect(t.lines.at(-1)).toMatch(/^info endpoint http:\/\/127\.0\.0\.1:8000 answers again after [\d.]+ s unreachable \(7 refused attempt\(s\)\): its waiting calls are released$/);
  });

  it('logs one line per interval while the endpoint stays unreachable, not one per refusal', () => {
    const t = setup();
    for (let i = 0; i < 100; i++) {
      t.circuits.refused(EP, 'request failed: ECONNREFUSED', false);
      t.advance(300);
    }
    // 30 s of refusals: the first line, then one per 10 s.
    expect(t.lines).toHaveLength(3);
    expect(t.lines[0]).toBe('warn endpoint http://127.0.0.1:8000 unreachable (ECONNREFUSED): next probe in 0.5 s');
    expect(t.lines[1]).toMatch(/^warn endpoint http:\/\/127\.0\.0\.1:8000 unreachable \(ECONNREFUSED\): next probe in 0 s \(35 refused attempt\(s\) in 10\.2 s\)$/);
  });

  it('says how many calls wait, when it can count them', async () => {
    const lines: string[] = [];
    const circuits = new EndpointCircuits({}, { log: (_level, line) => lines.push(line), waiting: async () => 1859 });
    circuits.refused(EP, 'ECONNREFUSED', false);
    await new Promise((r) => setImmediate(r));
    expect(lines).toEqual(['endpoint http://127.0.0.1:8000 unreachable (ECONNREFUSED): 1,859 call(s) waiting; next probe in 0.5 s']);
  });

  it('after a crash, lets one probe go at once before the queue', () => {
    const t = setup();
    const { circuits } = t;
    circuits.crashed(EP, 'ECONNRESET socket hang up', false);
    // The other runs that died with the app change nothing.
    circuits.crashed(EP, 'ECONNRESET socket hang up', false);
    expect(circuits.snapshot(EP).state).toBe('open');
    expect(circuits.allowance(EP)).toBe(1);
    expect(circuits.started(EP)).toBe(true);
    // The app is still restarting: the probe is refused, the next one waits the initial delay.
    circuits.refused(EP, 'ECONNREFUSED', true);
    expect(circuits.snapshot(EP)).toMatchObject({ state: 'open', nextProbeAt: t.now + 500 });
    t.advance(500);
    expect(circuits.allowance(EP)).toBe(1);
    expect(circuits.started(EP)).toBe(true);
    circuits.connected(EP);
    expect(circuits.snapshot(EP).state).toBe('closed');
    // A crash alone is no outage: nothing was logged.
    expect(t.lines.filter((l) => l.startsWith('info'))).toHaveLength(1);
  });

  it('offers a probe again when the claim that was offered it took no call of the endpoint', () => {
    const t = setup();
    t.circuits.refused(EP, 'ECONNREFUSED', false);
    t.advance(500);
    expect(t.circuits.allowance(EP)).toBe(1);
    expect(t.circuits.allowance(EP)).toBe(0);
    t.circuits.unclaimed(EP);
    expect(t.circuits.allowance(EP)).toBe(1);
    // A held call may take an offered probe.
    expect(t.circuits.mayProbe(EP)).toBe(true);
    expect(t.circuits.started(EP)).toBe(true);
    expect(t.circuits.mayProbe(EP)).toBe(false);
    // A probe that ends without telling (a timeout) lets the next go after the delay.
    t.circuits.probeEnded(EP);
    expect(t.circuits.snapshot(EP).state).toBe('open');
    expect(t.circuits.allowance(EP)).toBe(0);
  });

  it('gives a probe back when its call was not sent (it had expired): the next claim probes at once', () => {
    const t = setup();
    t.circuits.refused(EP, 'ECONNREFUSED', false);
    t.advance(500);
    expect(t.circuits.allowance(EP)).toBe(1);
    expect(t.circuits.started(EP)).toBe(true);
    t.circuits.probeNotSent(EP);
    expect(t.circuits.snapshot(EP)).toMatchObject({ state: 'open', probes: 0 });
    expect(t.circuits.allowance(EP)).toBe(1);
  });

  it('refuses bad options with the value', () => {
    expect(() => new EndpointCircuits({ initialProbeMs: 0 }, { log() {} })).toThrow(/circuit\.initialProbeMs must be a positive number of ms, got 0/);
    expect(() => new EndpointCircuits({ initialProbeMs: 1000, maxProbeMs: 10 }, { log() {} })).toThrow(/maxProbeMs \(10\) must be at least circuit\.initialProbeMs \(1000\)/);
  });
});
