/**
 * In-process mode: a scheduler running in the app's own process hands its
 * RunRequests to the app's `Dispatch` instance directly (no socket, no
 * signature, no encoding). The two never import each other: they meet in a
 * process-global registry under a `Symbol.for` key. A `Dispatch` instance
 * registers itself when `DISPATCH_IN_PROCESS=1` is set (what the scheduler's
 * in-process entry sets before the app's code loads); the scheduler's
 * in-process transport looks up the app of a call's endpoint there.
 * @module
 */
import type { IRunRequest, IRunResponse } from '../protocol/proto.js';

/**
 * The `Symbol.for` key of the process-global registry of in-process apps.
 * A symbol from `Symbol.for` is the same in every copy of this module (ESM
 * and CommonJS builds, two versions of the package), so they share one.
 * @example
 * const registry = (globalThis as Record<symbol, unknown>)[IN_PROCESS_REGISTRY_KEY];
 */
export const IN_PROCESS_REGISTRY_KEY: unique symbol = Symbol.for('dispatch.in-process.v1') as never;

/**
 * The environment variable that turns in-process mode on for the `Dispatch`
 * instances of a process (`1` or `true`). `dispatch run --in-process` and
 * `node --import @dispatch/scheduler/in-process` set it.
 * @example
 * if (process.env[IN_PROCESS_ENV] === '1') console.log('calls run in this process');
 */
export const IN_PROCESS_ENV = 'DISPATCH_IN_PROCESS';

/**
 * An app that runs RunRequests in this process: what a `Dispatch` instance
 * registers.
 * @example
 * const app: InProcessApp = { endpointUrl: () => 'http://127.0.0.1:8000', runRequest: (r) => dispatch.runRequest(r) };
 */
export interface InProcessApp {
  /** The endpoint URL its calls are addressed to (`Call.endpoint`), read at each lookup (it may change). */
  endpointUrl(): string | undefined;
  /** Runs one RunRequest; the objects are the app's own from then on (not copied). */
  runRequest(request: IRunRequest): Promise<IRunResponse>;
}

/**
 * The process-global registry of in-process apps.
 * @example
 * const app = inProcessRegistry().find('http://127.0.0.1:8000');
 */
export interface InProcessRegistry {
  /** Registers an app; the returned function removes it. */
  register(app: InProcessApp): () => void;
  /** The app serving `endpoint` in this process (trailing slashes ignored), if any; the last registered wins. */
  find(endpoint: string): InProcessApp | undefined;
  /** Set by an in-process scheduler host (the scheduler's in-process entry) while it runs. */
  host: { name: string } | undefined;
}

function trimSlashes(url: string): string {
  let end = url.length;
  while (end > 0 && url.charCodeAt(end - 1) === 47) end--;
  return end === url.length ? url : url.slice(0, end);
}

class Registry implements InProcessRegistry {
  readonly #apps: InProcessApp[] = [];
  host: { name: string } | undefined = undefined;

  register(app: InProcessApp): () => void {
    this.#apps.push(app);
    return () => {
      const i = this.#apps.lastIndexOf(app);
      if (i >= 0) this.#apps.splice(i, 1);
    };
  }

  find(endpoint: string): InProcessApp | undefined {
    const wanted = trimSlashes(endpoint);
    for (let i = this.#apps.length - 1; i >= 0; i--) {
      const app = this.#apps[i]!;
      const url = app.endpointUrl();
      if (url !== undefined && trimSlashes(url) === wanted) return app;
    }
    return undefined;
  }
}

/**
 * The registry of this process, created on first use.
 * @example
 * const unregister = inProcessRegistry().register({ endpointUrl: () => url, runRequest: (r) => dispatch.runRequest(r) });
 */
export function inProcessRegistry(): InProcessRegistry {
  const g = globalThis as unknown as Record<symbol, InProcessRegistry | undefined>;
  let registry = g[IN_PROCESS_REGISTRY_KEY];
  if (!registry) {
    registry = new Registry();
    Object.defineProperty(globalThis, IN_PROCESS_REGISTRY_KEY, { value: registry, enumerable: false, configurable: false, writable: false });
  }
  return registry;
}

/**
 * Whether an environment turns in-process mode on (`DISPATCH_IN_PROCESS` is
 * `1` or `true`).
 * @example
 * inProcessEnabled({ DISPATCH_IN_PROCESS: '1' }); // true
 */
export function inProcessEnabled(env: Record<string, string | undefined>): boolean {
  const v = env[IN_PROCESS_ENV]?.trim().toLowerCase();
  return v === '1' || v === 'true';
}
