import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SeriesCounter, SeriesHistogram } from './series.js';

/** The samples of a Prometheus text, as `name{label="v",...} value` lines with their labels sorted. */
function samples(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const m = /^([^{ ]+)(?:\{(.*)\})? (.+)$/.exec(line)!;
      const labels = (m[2] ?? '').split(/,(?=[a-z_]+=)/).filter(Boolean).sort().join(',');
      return `${m[1]}{${labels}} ${m[3]}`;
    })
    .sort();
}

/** The comment lines (HELP, TYPE) of a Prometheus text. */
const comments = (text: string) => text.split('\n').filter((line) => line.startsWith('#'));

describe('series metrics', () => {
  it('serve what prom-client serves for the same counts and observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const bounds = [0.005, 0.01, 0.1, 1];
    const h = new SeriesHistogram(ours, 'x_seconds', 'How long', ['function', 'kind'], bounds);
    const ph = new Histogram({ name: 'x_seconds', help: 'How long', labelNames: ['function', 'kind'], buckets: bounds, registers: [theirs] });
    const c = new SeriesCounter(ours, 'x_total', 'How many', ['function', 'state']);
    const pc = new Counter({ name: 'x_total', help: 'How many', labelNames: ['function', 'state'], registers: [theirs] });
    // On a bound, between bounds, above the last one, zero.
    const values = [0, 0.005, 0.0051, 0.01, 0.05, 0.1, 1, 1.5, 30];
    for (const [i, v] of values.entries()) {
      const fn = i % 2 ? 'checkout' : 'charge';
      h.series(fn, 'attempt').observe(v);
      ph.observe({ function: fn, kind: 'attempt' }, v);
      c.series(fn, 'succeeded').value++;
      pc.inc({ function: fn, state: 'succeeded' });
    }
    c.series('refund', 'failed').value += 3;
    pc.inc({ function: 'refund', state: 'failed' }, 3);
    const a = await ours.metrics();
    const b = await theirs.metrics();
    expect(samples(a)).toEqual(samples(b));
    expect(comments(a)).toEqual(comments(b));
    expect(samples(a)).toContain('x_seconds_bucket{function="checkout",kind="attempt",le="0.01"} 2');

    // A reset zeroes the series callers keep: they count on from 0.
    const kept = h.series('charge', 'attempt');
    ours.resetMetrics();
    theirs.resetMetrics();
    kept.observe(0.2);
    ph.observe({ function: 'charge', kind: 'attempt' }, 0.2);
    const after = samples(await ours.metrics()).filter((line) => line.includes('"charge"'));
    expect(after).toContain('x_seconds_count{function="charge",kind="attempt"} 1');
    expect(after).toContain('x_seconds_bucket{function="charge",kind="attempt",le="1"} 1');
    expect(after).toContain('x_seconds_bucket{function="charge",kind="attempt",le="0.1"} 0');
  });

  it('says which labels a series needs when given the wrong number of values', () => {
    const c = new SeriesCounter(new Registry(), 'y_total', 'How many', ['function', 'state']);
    expect(() => c.series('checkout')).toThrow('y_total has labels function, state: got 1 values (checkout)');
  });
});
