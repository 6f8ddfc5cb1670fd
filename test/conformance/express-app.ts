/** An Express app (4 or 5) with the Dispatch middleware and routes of its own. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Dispatch } from '@dispatch/core';
import { dispatchMiddleware } from '@dispatch/express';
import type { RunningServer } from './conformance-suite.js';

/** The parts of `express` used here, common to Express 4 and 5. */
export interface ExpressLike {
  (): {
    use(...handlers: unknown[]): void;
    post(path: string, handler: (req: { body: unknown }, res: { json(v: unknown): void }) => void): void;
    get(path: string, handler: (req: unknown, res: { send(v: string): void }) => void): void;
    listen(port: number, host: string, cb: () => void): Server;
  };
  json(): unknown;
}

export async function startExpress(express: ExpressLike, dispatch: Dispatch, prefix: string, host = '127.0.0.1'): Promise<RunningServer> {
  const app = express();
  if (prefix) app.use(prefix, dispatchMiddleware(dispatch));
  else app.use(dispatchMiddleware(dispatch));
  app.use(express.json());
  app.post('/app/echo', (req, res) => res.json({ echo: req.body }));
  app.get('/app/health', (_req, res) => res.send('ok'));
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, host, () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
