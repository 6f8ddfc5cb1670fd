/**
 * The filters of the runs list: read from the hash, written back to it (so a
 * filtered list can be bookmarked), and turned into the API's query.
 * @module
 */

/**
 * What the runs list shows.
 * @example
 * const f: RunsFilter = { states: ['failed'], fn: 'checkout', time: '1h', from: '', to: '', roots: true };
 */
export interface RunsFilter {
  /** States to show (none: all). */
  states: string[];
  /** Function name, exact. */
  fn: string;
  /** A key of {@link TIME_SPANS}, `custom` (between `from` and `to`), or '' for any time. */
  time: string;
  /** `datetime-local` values, for `custom`. */
  from: string;
  to: string;
  /** Top-level runs only (no child calls). */
  roots: boolean;
}

/** The choices of the "Created" filter: value and label. */
export const TIME_CHOICES: ReadonlyArray<readonly [string, string]> = [
  ['', 'any time'],
  ['15m', 'last 15 minutes'],
  ['1h', 'last hour'],
  ['24h', 'last 24 hours'],
  ['7d', 'last 7 days'],
  ['custom', 'between…'],
];

/** How far back each time choice reaches, in ms. */
export const TIME_SPANS: Readonly<Record<string, number>> = { '15m': 900_000, '1h': 3_600_000, '24h': 86_400_000, '7d': 604_800_000 };

/** Runs asked for per page. */
export const PAGE_SIZE = 50;

/**
 * The filter of a `#/runs?…` query.
 * @example
 * filterFromQuery(new URLSearchParams('state=failed,running&roots=0')).states; // ['failed', 'running']
 */
export function filterFromQuery(query: URLSearchParams): RunsFilter {
  return {
    states: (query.get('state') ?? '').split(',').filter(Boolean),
    fn: query.get('function') ?? '',
    time: query.get('time') ?? '',
    from: query.get('from') ?? '',
    to: query.get('to') ?? '',
    roots: query.get('roots') !== '0',
  };
}

/**
 * The hash that shows this filter.
 * @example
 * filterToHash({ states: [], fn: 'checkout', time: '', from: '', to: '', roots: true }); // '#/runs?function=checkout'
 */
export function filterToHash(f: RunsFilter): string {
  const q = new URLSearchParams();
  if (f.states.length) q.set('state', f.states.join(','));
  if (f.fn) q.set('function', f.fn);
  if (f.time) q.set('time', f.time);
  if (f.time === 'custom' && f.from) q.set('from', f.from);
  if (f.time === 'custom' && f.to) q.set('to', f.to);
  if (!f.roots) q.set('roots', '0');
  const text = q.toString();
  return `#/runs${text ? `?${text}` : ''}`;
}

/**
 * The query of `GET /dashboard/api/runs` for a filter at time `now`, from
 * `cursor` (a further page) or from the start.
 * @example
 * filterToApiQuery(filter, Date.now(), null).toString(); // 'state=failed&roots=1&after=…&limit=50'
 */
export function filterToApiQuery(f: RunsFilter, now: number, cursor: string | null): URLSearchParams {
  const q = new URLSearchParams();
  if (f.states.length) q.set('state', f.states.join(','));
  if (f.fn) q.set('function', f.fn);
  if (f.roots) q.set('roots', '1');
  const span = TIME_SPANS[f.time];
  if (span !== undefined) q.set('after', String(now - span));
  if (f.time === 'custom' && f.from) q.set('after', String(new Date(f.from).getTime()));
  if (f.time === 'custom' && f.to) q.set('before', String(new Date(f.to).getTime()));
  q.set('limit', String(PAGE_SIZE));
  if (cursor) q.set('cursor', cursor);
  return q;
}

/**
 * The states selected after a click on a state's chip: that state alone (or
 * all again, when it was the only one), or, with Shift, Ctrl or ⌘, that state
 * added or removed.
 * @example
 * toggleState(['failed'], 'running', true); // ['failed', 'running']
 * toggleState(['failed'], 'failed', false); // []
 */
export function toggleState(states: readonly string[], state: string, add: boolean): string[] {
  const on = states.includes(state);
  if (add) return on ? states.filter((s) => s !== state) : [...states, state];
  return on && states.length === 1 ? [] : [state];
}
