import { startServer } from '@dispatch/core/node';
import { conformance } from './conformance-suite.js';

// The bare node:http server has no routes of its own: it serves the Run route
// at any path ending with it, so a prefix needs no configuration.
conformance({
  name: 'node:http (@dispatch/core/node)',
  appRoutes: false,
  start: async (dispatch, _prefix, host) => {
    const server = await startServer(dispatch, { host, port: 0 });
    // Reached through loopback, whatever interface it listens on.
    return { url: server.url.replace(/\/\/[^:/]+:/, '//127.0.0.1:'), close: server.close };
  },
});
