/**
 * The in-process transport: a RunRequest addressed to an app that runs in
 * this process (registered in `@dispatch/core/protocol`'s in-process
 * registry by its `Dispatch` instance) is handed to it as an object — no
 * encoding, no signature, no socket — and its RunResponse object comes back.
 * Calls to any other endpoint go over HTTP.
 * @module
 */
import { inProcessRegistry, type InProcessRegistry, type proto, Status } from '@dispatch/core/protocol';
import type { EndpointTransport, RunReply } from './transport.js';

/**
 * Hands RunRequests to apps in this process; others to `fallback` (HTTP).
 * A run that takes longer than `timeoutMs` is answered TIMEOUT, as over
 * HTTP (the function may still finish; its answer is then ignored).
 * @example
 * const transport = new InProcessTransport(httpTransport, 30_000);
 */
export class InProcessTransport implements EndpointTransport {
  readonly name = 'in-process';
  readonly #fallback: EndpointTransport;
  readonly #timeoutMs: number;
  readonly #registry: InProcessRegistry;

  constructor(fallback: EndpointTransport, timeoutMs: number, registry: InProcessRegistry = inProcessRegistry()) {
    this.#fallback = fallback;
    this.#timeoutMs = timeoutMs;
    this.#registry = registry;
  }

  /** Whether calls to `endpoint` run in this process now. */
  serves(endpoint: string): boolean {
    return this.#registry.find(endpoint) !== undefined;
  }

  run(endpoint: string, request: proto.IRunRequest): Promise<RunReply> {
    const app = this.#registry.find(endpoint);
    if (!app) return this.#fallback.run(endpoint, request);
    return new Promise<RunReply>((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        resolve({ kind: 'transport', status: Status.TIMEOUT, message: `no answer from ${endpoint} (in process) within ${this.#timeoutMs} ms` });
      }, this.#timeoutMs);
      let running: Promise<proto.IRunResponse>;
      try {
        running = app.runRequest(request);
      } catch (err) {
        running = Promise.reject(err);
      }
      running.then(
        (response) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ kind: 'response', response });
        },
        (err: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          // Over HTTP the endpoint would answer 500: a temporary error, retried.
          resolve({
            kind: 'transport',
            status: Status.TEMPORARY_ERROR,
            message: `the app at ${endpoint} (in process) failed to run ${request.function}: ${(err as Error)?.message ?? String(err)}`,
          });
        },
      );
    });
  }

  close(): void {
    this.#fallback.close();
  }
}
