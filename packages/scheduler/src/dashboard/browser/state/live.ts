/**
 * Live updates: the scheduler's stream of `change` events (and, for what it
 * does not see — other instances, runs that started — a look every few
 * seconds) asks the page shown to fetch its data again. Refreshes never
 * overlap: one asked for during another runs once, after it.
 * @module
 */
import { useEffect, useRef } from 'preact/hooks';
import { EVENTS_URL } from '../api/dashboard-api.js';

/** Where the connection to the scheduler stands. */
export type LiveStatus = 'live' | 'reconnecting' | 'polling';

/** How often the page is refreshed without an event. */
export const POLL_EVERY_MS = 5_000;

const listeners = new Set<() => void>();

function changed(): void {
  for (const listener of listeners) listener();
}

/**
 * Connects to the event stream and starts the periodic refresh; `onStatus`
 * hears how the connection stands.
 * @example
 * startLiveUpdates((status) => console.log(status));
 */
export function startLiveUpdates(onStatus: (status: LiveStatus) => void): void {
  setInterval(changed, POLL_EVERY_MS);
  if (typeof EventSource === 'undefined') {
    onStatus('polling');
    return;
  }
  const events = new EventSource(EVENTS_URL);
  events.addEventListener('open', () => onStatus('live'));
  events.addEventListener('error', () => onStatus('reconnecting'));
  events.addEventListener('change', changed);
}

/**
 * `refresh` wrapped so that calls never overlap: a call during a refresh
 * runs one more refresh after it. Failures are the refresh's own business.
 * @example
 * const soon = coalesce(() => load());
 * soon(); soon(); soon(); // two loads, one after the other
 */
export function coalesce(refresh: () => Promise<unknown>): () => void {
  let running = false;
  let again = false;
  const run = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    refresh()
      .catch(() => {})
      .then(() => {
        running = false;
        if (again) {
          again = false;
          run();
        }
      });
  };
  return run;
}

/**
 * Runs the page's `refresh` on every live change while the page is shown.
 * @example
 * useLiveRefresh(refresh);
 */
export function useLiveRefresh(refresh: () => Promise<void>): void {
  const latest = useRef(refresh);
  latest.current = refresh;
  useEffect(() => {
    const soon = coalesce(() => latest.current());
    listeners.add(soon);
    return () => {
      listeners.delete(soon);
    };
  }, []);
}
