/**
 * The dashboard's browser side (bundled by the package's build into
 * `/dashboard/assets/app.js`): starts the live updates and renders the app
 * into the page's `#app`. Every text from the API is rendered as text (JSX
 * children and attributes, never HTML), so user data cannot inject markup.
 * @module
 */
import { render } from 'preact';
import { App } from './app.js';
import { showLiveStatus } from './shell.js';
import { startLiveUpdates } from './state/live.js';

const root = document.getElementById('app');
if (!root) throw new Error('the dashboard page has no #app element');
root.replaceChildren(); // the page's "Loading…"
startLiveUpdates(showLiveStatus);
render(<App />, root);
