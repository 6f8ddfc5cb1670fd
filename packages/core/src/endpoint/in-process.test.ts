import { describe, expect, it } from 'vitest';
import { Dispatch } from '../api/dispatch.js';
import { encodeArgs } from '../serde/serde.js';
import { IN_PROCESS_REGISTRY_KEY, inProcessEnabled, inProcessRegistry } from './in-process.js';

const silent = { warn() {}, error() {}, info() {} };

describe('the in-process registry', () => {
  it('is one per process, under a Symbol.for key', () => {
    const registry = inProcessRegistry();
    expect((globalThis as unknown as Record<symbol, unknown>)[Symbol.for('dispatch.in-process.v1')]).toBe(registry);
    expect(inProcessRegistry()).toBe(registry);
    expect(IN_PROCESS_REGISTRY_KEY).toBe(Symbol.for('dispatch.in-process.v1'));
  });

  it('registers a Dispatch instance under DISPATCH_IN_PROCESS=1, found by its endpoint URL, and runs its RunRequests as objects', async () => {
    const url = 'http://127.0.0.1:18123';
    expect(inProcessRegistry().find(url)).toBeUndefined();
    const d = new Dispatch({ env: { DISPATCH_IN_PROCESS: '1', DISPATCH_ENDPOINT_URL: url }, logger: silent });
    d.function(function twice(n: number) {
      return n * 2;
    });
    const app = inProcessRegistry().find(`${url}/`);
    expect(app, 'found with or without a trailing slash').toBeDefined();
    const response = await app!.runRequest({ function: 'twice', dispatchId: 'x', input: encodeArgs([21]) });
    expect(response.exit?.result?.output).toBeDefined();
    // Without the variable, an instance does not register.
    const other = 'http://127.0.0.1:18124';
    new Dispatch({ env: { DISPATCH_ENDPOINT_URL: other }, logger: silent });
    expect(inProcessRegistry().find(other)).toBeUndefined();
  });

  it('refuses to serve under DISPATCH_IN_PROCESS=1 without an in-process scheduler, saying how to start one', async () => {
    const d = new Dispatch({ env: { DISPATCH_IN_PROCESS: 'true', DISPATCH_ENDPOINT_URL: 'http://127.0.0.1:18125' }, logger: silent });
    await expect(d.serve({ port: 0 })).rejects.toThrow(/DISPATCH_IN_PROCESS=1 is set but no in-process scheduler runs in this process: start the app with `dispatch run --in-process -- node app.js`/);
  });

  it('reads 1 and true as on, anything else as off', () => {
    expect(inProcessEnabled({ DISPATCH_IN_PROCESS: '1' })).toBe(true);
    expect(inProcessEnabled({ DISPATCH_IN_PROCESS: ' TRUE ' })).toBe(true);
    expect(inProcessEnabled({ DISPATCH_IN_PROCESS: '0' })).toBe(false);
    expect(inProcessEnabled({})).toBe(false);
  });
});
