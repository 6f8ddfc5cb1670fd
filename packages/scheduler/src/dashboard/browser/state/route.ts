/**
 * The page shown, read from the URL's hash: `#/runs?filters`, `#/runs/<id>`,
 * `#/concurrency`, `#/schedules`. Any other hash shows the runs.
 * @module
 */
import { useEffect, useState } from 'preact/hooks';

/**
 * A page of the dashboard.
 * @example
 * const route: Route = { page: 'run', id: 'D1' };
 */
export type Route = { page: 'runs'; query: URLSearchParams } | { page: 'run'; id: string } | { page: 'concurrency' } | { page: 'schedules' };

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part; // a malformed escape: taken as written
  }
}

/**
 * The route of a hash.
 * @example
 * parseRoute('#/runs/D%201'); // { page: 'run', id: 'D 1' }
 * parseRoute('#/runs?state=failed').page; // 'runs'
 */
export function parseRoute(hash: string): Route {
  let path = hash.replace(/^#\/?/, '');
  let query = '';
  const i = path.indexOf('?');
  if (i >= 0) {
    query = path.slice(i + 1);
    path = path.slice(0, i);
  }
  const parts = path.split('/').filter(Boolean).map(decode);
  const page = parts[0] ?? 'runs';
  if (page === 'runs' && parts[1]) return { page: 'run', id: parts[1] };
  if (page === 'concurrency') return { page: 'concurrency' };
  if (page === 'schedules') return { page: 'schedules' };
  return { page: 'runs', query: new URLSearchParams(query) };
}

/**
 * The link to a call's page.
 * @example
 * runHref('D 1'); // '#/runs/D%201'
 */
export function runHref(id: string): string {
  return `#/runs/${encodeURIComponent(id)}`;
}

/**
 * The current hash and a count of its changes: the count moves on every
 * `hashchange`, even back to the same hash, so a page can be opened afresh.
 * @example
 * const { hash, visit } = useLocationHash();
 */
export function useLocationHash(): { hash: string; visit: number } {
  const [state, setState] = useState(() => ({ hash: location.hash, visit: 0 }));
  useEffect(() => {
    const onChange = () => setState((s) => ({ hash: location.hash, visit: s.visit + 1 }));
    window.addEventListener('hashchange', onChange);
    // Effects run after the first paint: a change in between fired no event here (a link followed
    // while the page was still starting, e.g. on a loaded machine), so catch up with it now.
    setState((s) => (s.hash === location.hash ? s : { hash: location.hash, visit: s.visit + 1 }));
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return state;
}
