/**
 * The static page around the app (`pages.ts`'s `appPage`): the navigation,
 * the live indicator, the notice line and the confirmation dialog. The app
 * renders into `#app`; these few elements it only updates.
 * @module
 */
import type { LiveStatus } from './state/live.js';

function element<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`the dashboard page has no ${type.name} #${id}`);
  return el;
}

/**
 * Shows a message (an error) above the page, or hides it with ''.
 * @example
 * showNotice('HTTP 500');
 */
export function showNotice(text: string): void {
  const notice = element('notice', HTMLElement);
  notice.textContent = text;
  notice.hidden = text === '';
}

const LIVE_TEXT: Record<LiveStatus, string> = { live: 'live', reconnecting: 'reconnecting…', polling: 'polling' };

/**
 * Shows how the connection to the scheduler stands.
 * @example
 * showLiveStatus('live');
 */
export function showLiveStatus(status: LiveStatus): void {
  const live = element('live', HTMLElement);
  live.textContent = LIVE_TEXT[status];
  live.classList.toggle('on', status === 'live');
}

/**
 * Marks the navigation link of a page as the active one.
 * @example
 * highlightNav('concurrency');
 */
export function highlightNav(page: 'runs' | 'concurrency' | 'schedules'): void {
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.getAttribute('data-nav') === page);
}

/**
 * Asks for a confirmation in the page's dialog; true when the user chose
 * `action`.
 * @example
 * if (await confirmAction('Cancel this run?', 'Cancel checkout (D1)…', 'Cancel run')) await runAction(id, 'cancel');
 */
export function confirmAction(title: string, text: string, action: string): Promise<boolean> {
  const dialog = element('confirm', HTMLDialogElement);
  element('confirm-title', HTMLElement).textContent = title;
  element('confirm-text', HTMLElement).textContent = text;
  element('confirm-yes', HTMLButtonElement).textContent = action;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
    dialog.returnValue = '';
    dialog.showModal();
  });
}
