import { dispatchPlugin } from '@dispatch/fastify';
import Fastify from 'fastify';
import { conformance } from './conformance-suite.js';

conformance({
  name: 'Fastify (@dispatch/fastify)',
  appRoutes: true,
  start: async (dispatch, prefix) => {
    const app = Fastify();
    await app.register(dispatchPlugin, { dispatch, prefix });
    app.post('/app/echo', async (req) => ({ echo: req.body }));
    app.get('/app/health', async () => 'ok');
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    return { url, close: () => app.close() };
  },
});
