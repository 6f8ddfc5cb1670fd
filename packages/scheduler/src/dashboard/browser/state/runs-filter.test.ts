import { describe, expect, it } from 'vitest';
import { parseRoute, runHref } from './route.js';
import { filterFromQuery, filterToApiQuery, filterToHash, type RunsFilter, toggleState } from './runs-filter.js';

const NONE: RunsFilter = { states: [], fn: '', time: '', from: '', to: '', roots: true };

describe('the runs filter', () => {
  it('reads the hash and writes it back unchanged', () => {
    const hash = '#/runs?state=failed%2Crunning&function=checkout&time=custom&from=2024-05-01T10%3A00&to=2024-05-02T10%3A00&roots=0';
    const route = parseRoute(hash);
    if (route.page !== 'runs') throw new Error(`not the runs page: ${route.page}`);
    const f = filterFromQuery(route.query);
    expect(f).toEqual({ states: ['failed', 'running'], fn: 'checkout', time: 'custom', from: '2024-05-01T10:00', to: '2024-05-02T10:00', roots: false });
    expect(filterToHash(f)).toBe(hash);
    expect(filterToHash(NONE)).toBe('#/runs');
    expect(filterFromQuery(new URLSearchParams(''))).toEqual(NONE);
  });

  it('leaves the custom dates out of the hash unless the time is custom', () => {
    expect(filterToHash({ ...NONE, time: '1h', from: '2024-05-01T10:00' })).toBe('#/runs?time=1h');
  });

  it('asks the API for the states, the function, top-level runs and the time span', () => {
    const now = 1_700_000_000_000;
    expect(Object.fromEntries(filterToApiQuery({ ...NONE, states: ['failed'], fn: 'checkout', time: '15m' }, now, null))).toEqual({
      state: 'failed',
      function: 'checkout',
      roots: '1',
      after: String(now - 15 * 60_000),
      limit: '50',
    });
    const custom = filterToApiQuery({ ...NONE, roots: false, time: 'custom', from: '2024-05-01T10:00', to: '2024-05-02T10:00' }, now, 'C2');
    expect(Object.fromEntries(custom)).toEqual({
      after: String(new Date('2024-05-01T10:00').getTime()),
      before: String(new Date('2024-05-02T10:00').getTime()),
      limit: '50',
      cursor: 'C2',
    });
    expect(filterToApiQuery({ ...NONE, time: '7d' }, now, null).get('after')).toBe(String(now - 7 * 86_400_000));
  });

  it('selects one state per click, several with a modifier key', () => {
    expect(toggleState([], 'failed', false)).toEqual(['failed']);
    expect(toggleState(['failed'], 'failed', false)).toEqual([]);
    expect(toggleState(['failed', 'running'], 'failed', false)).toEqual(['failed']);
    expect(toggleState(['failed'], 'running', true)).toEqual(['failed', 'running']);
    expect(toggleState(['failed', 'running'], 'failed', true)).toEqual(['running']);
  });
});

describe('routes', () => {
  it('opens a run, the concurrency page, or the runs', () => {
    expect(parseRoute(runHref('D 1/2'))).toEqual({ page: 'run', id: 'D 1/2' });
    expect(parseRoute('#/concurrency')).toEqual({ page: 'concurrency' });
    for (const hash of ['', '#', '#/', '#/runs', '#/elsewhere', '#/runs/']) expect(parseRoute(hash).page).toBe('runs');
    expect(parseRoute('#/runs/%E0%A4%A')).toEqual({ page: 'run', id: '%E0%A4%A' }); // a malformed escape, as written
  });
});
