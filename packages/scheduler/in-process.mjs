// In-process mode: `node --import @dispatch/scheduler/in-process app.js`
// (what `dispatch run --in-process -- node app.js` runs) starts the
// scheduler inside the app's process before the app's code loads; the app's
// Dispatch instance then gets its RunRequests as objects (no HTTP, no
// signatures). See the README's "In-process mode".
import { startInProcessScheduler } from './dist/esm/in-process-host.js';

await startInProcessScheduler();
