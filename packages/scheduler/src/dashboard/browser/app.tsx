/**
 * The app: the page of the URL's hash, opened afresh on every change of it.
 * @module
 */
import { useLayoutEffect } from 'preact/hooks';
import { ConcurrencyPage } from './pages/concurrency-page.js';
import { RunPage } from './pages/run-page.js';
import { RunsPage } from './pages/runs-page.js';
import { SchedulesPage } from './pages/schedules-page.js';
import { highlightNav, showNotice } from './shell.js';
import { parseRoute, useLocationHash } from './state/route.js';

/**
 * The dashboard app (rendered into `#app`).
 * @example
 * render(<App />, document.getElementById('app')!);
 */
export function App() {
  const { hash, visit } = useLocationHash();
  const route = parseRoute(hash);
  useLayoutEffect(() => {
    showNotice(''); // a new page starts without the last one's error
    highlightNav(route.page === 'concurrency' || route.page === 'schedules' ? route.page : 'runs');
  }, [visit]);
  switch (route.page) {
    case 'run':
      return <RunPage key={visit} id={route.id} />;
    case 'concurrency':
      return <ConcurrencyPage key={visit} />;
    case 'schedules':
      return <SchedulesPage key={visit} />;
    default:
      return <RunsPage key={visit} query={route.query} />;
  }
}
