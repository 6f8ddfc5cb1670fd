/**
 * The SDK's endpoint (`nodeListener` of a real `Dispatch`) on a real HTTP
 * server, with every request it handled recorded: its exact bytes and
 * headers, and the status and headers it answered. The app behind the
 * server can be replaced, as a restart of the app's process would.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Dispatch, type DispatchInstanceOptions } from '@dispatch/core';
import { nodeListener } from '@dispatch/core/node';
import type { Scheduler } from '../../src/scheduler.js';

/** One request the app handled (`body` empty for one refused before its body was read). */
export interface Seen {
  contentType: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  status: number;
  responseHeaders: Record<string, string>;
}

/** A recording app; `close()` stops its server. */
export interface RecordingApp {
  /** The app serving now. */
  dispatch: Dispatch;
  url: string;
  seen: Seen[];
  /** Serves the next requests with a new `Dispatch` (same URL, same functions set up again): a restarted app. */
  restart(): Dispatch;
  /** Which app serves each request, by its order (round-robin over several: processes behind one address). */
  serveWith(pick: (index: number) => Dispatch): void;
  close(): Promise<void>;
}

/**
 * Starts a recording app whose functions `setup` declares, verifying the
 * scheduler's signatures.
 * @example
 * const app = await recordingApp(scheduler, (d) => d.function(function noop() {}));
 */
export async function recordingApp(scheduler: Scheduler, setup: (d: Dispatch) => void, options: DispatchInstanceOptions = {}): Promise<RecordingApp> {
  const seen: Seen[] = [];
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const make = () => {
    const d = new Dispatch({
      apiUrl: scheduler.url,
      apiKey: scheduler.apiKey,
      endpointUrl: url,
      verificationKey: scheduler.verificationKey,
      logger: { warn() {}, error() {}, info() {} },
      ...options,
    });
    setup(d);
    return d;
  };
  let pick: (index: number) => Dispatch;
  let handled = 0;
  const app: RecordingApp = {
    dispatch: make(),
    url,
    seen,
    restart() {
      app.dispatch = make();
      pick = () => app.dispatch;
      return app.dispatch;
    },
    serveWith(p) {
      pick = p;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  pick = () => app.dispatch;
  // The real handler of the app picked for each request, recording what it handled and answered.
  server.on('request', (req, res) => {
    const d = pick(handled++);
    const recording = {
      // A request refused before its body is read is recorded too (with no body).
      precheck: (head: Parameters<Dispatch['precheck']>[0]) => {
        const early = d.precheck(head);
        if (early) {
          seen.push({ contentType: String(head.headers['content-type'] ?? ''), headers: head.headers, body: Buffer.alloc(0), status: early.status, responseHeaders: { ...early.headers } });
        }
        return early;
      },
      config: d.config,
      handler: async (request: Parameters<Dispatch['handler']>[0]) => {
        const response = await d.handler(request);
        seen.push({
          contentType: String(request.headers['content-type'] ?? ''),
          headers: request.headers,
          body: Buffer.from(request.body),
          status: response.status,
          responseHeaders: { ...response.headers },
        });
        return response;
      },
    } as unknown as Dispatch;
    nodeListener(recording)(req, res);
  });
  return app;
}

/** POSTs raw bytes with the given headers (a request replayed or forged by hand); answers the status and the body as text. */
export function post(url: string, headers: http.OutgoingHttpHeaders, body: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
