/**
 * How the endpoint mounts on the platform Nest runs on. The adapters
 * (`@dispatch/express`, `@dispatch/fastify`) are optional peers: only the
 * one of the app's platform is loaded, when the platform is known, so a
 * NestJS app on Express installs neither Fastify nor its adapter.
 * @module
 */
import type { Dispatch } from '@dispatch/core';

/** Where and how the Run route is mounted (the module's `prefix` and `bodyLimit`). */
export interface MountOptions {
  prefix: string;
  bodyLimit: number | undefined;
}

/**
 * Mounts the Run route on the platform's instance (the Express app or the
 * Fastify instance that `HttpAdapterHost.httpAdapter.getInstance()` gives).
 */
export type PlatformMount = (instance: unknown, dispatch: Dispatch, options: MountOptions) => void;

interface ExpressApp {
  use(path: string, handler: unknown): unknown;
}
interface FastifyApp {
  register(plugin: unknown, options: unknown): unknown;
}

/**
 * Loads the adapter of a platform (`express` or `fastify`) and answers how
 * to mount the route with it. A platform without an adapter, or an adapter
 * that is not installed, is an error that says what to do.
 * @example
 * const mount = await loadPlatformMount(host.httpAdapter.getType());
 * mount(host.httpAdapter.getInstance(), dispatch, { prefix: '', bodyLimit: undefined });
 */
export async function loadPlatformMount(platform: string): Promise<PlatformMount> {
  if (platform === 'express') {
    const { dispatchMiddleware } = await loadAdapter('@dispatch/express', platform, () => import('@dispatch/express'));
    return (app, dispatch, { prefix, bodyLimit }) =>
      (app as ExpressApp).use(prefix || '/', dispatchMiddleware(dispatch, bodyLimit === undefined ? {} : { bodyLimit }));
  }
  if (platform === 'fastify') {
    const { dispatchPlugin } = await loadAdapter('@dispatch/fastify', platform, () => import('@dispatch/fastify'));
    return (app, dispatch, { prefix, bodyLimit }) =>
      (app as FastifyApp).register(dispatchPlugin, { dispatch, prefix, ...(bodyLimit === undefined ? {} : { bodyLimit }) });
  }
  throw new Error(
    `@dispatch/nestjs mounts on the express and fastify platforms, not on "${platform}": pass { mount: false } to DispatchModule.forRoot() and serve the endpoint yourself`,
  );
}

/**
 * Loads an adapter package; a package that is not installed is an error
 * saying which one to install.
 * @example
 * const { dispatchPlugin } = await loadAdapter('@dispatch/fastify', 'fastify', () => import('@dispatch/fastify'));
 */
export async function loadAdapter<T>(name: string, platform: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((err as Error).message).includes(name)) {
      throw new Error(
        `this Nest app runs on the ${platform} platform, so @dispatch/nestjs mounts the Dispatch endpoint with ${name}, which is not installed: ` +
          `npm install ${name} (or pass { mount: false } to DispatchModule.forRoot() and serve the endpoint yourself)`,
        { cause: err },
      );
    }
    throw err;
  }
}
