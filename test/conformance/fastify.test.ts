import type { AddressInfo } from 'node:net';
import { dispatchPlugin } from '@dispatch/fastify';
import Fastify from 'fastify';
import { conformance } from './conformance-suite.js';

conformance({
  name: 'Fastify (@dispatch/fastify)',
  appRoutes: true,
  start: async (dispatch, prefix, host) => {
    const app = Fastify();
    await app.register(dispatchPlugin, { dispatch, prefix });
    app.post('/app/echo', async (req) => ({ echo: req.body }));
    app.get('/app/health', async () => 'ok');
    await app.listen({ host, port: 0 });
    const { port } = app.server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
  },
});
