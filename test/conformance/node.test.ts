import { startServer } from '@dispatch/core/node';
import { conformance } from './conformance-suite.js';

// The bare node:http server has no routes of its own: it serves the Run route
// at any path ending with it, so a prefix needs no configuration.
conformance({
  name: 'node:http (@dispatch/core/node)',
  appRoutes: false,
  start: (dispatch) => startServer(dispatch, { host: '127.0.0.1', port: 0 }),
});
