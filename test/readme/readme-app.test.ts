/**
 * Issue 2's "Must show": an app written only from the README's API section
 * (fixtures/readme-app.ts: the module-level API on the default instance,
 * configured from the environment, served with `dispatch.run(main)`) serves
 * echo, add, a function that throws TemporaryError twice then succeeds, and
 * one that throws PermanentError; a scheduler that speaks the protocol (ours,
 * over real HTTP with signed requests) drives it.
 *
 * The app runs as a child process (plain node on the built packages, the
 * fixture transpiled as a user's build would), so its default instance and
 * its environment are its own.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Status } from '@dispatch/core';
import { decodeError, decodeValue, encodeArgs, RUN_PATH } from '@dispatch/core/protocol';
import { Scheduler } from '@dispatch/scheduler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type Proc, requireBuilt, start } from '../e2e/helpers/processes.js';
import { cleanEnv, removeRunnable, writeRunnable } from './run-block.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/readme-app.ts', import.meta.url));

let scheduler: Scheduler;
let app: Proc | undefined;
let appFile: string | undefined;
let endpointUrl: string;

beforeAll(async () => {
  requireBuilt();
  scheduler = await Scheduler.start({ db: ':memory:', port: 0, logLevel: 'silent', backoff: { initialMs: 20, maxMs: 100 } });
  const port = await freePort();
  endpointUrl = `http://127.0.0.1:${port}`;
  appFile = writeRunnable(readFileSync(FIXTURE, 'utf8'), 'readme-app');
  app = start(process.execPath, [appFile], {
    env: {
      ...cleanEnv(),
      DISPATCH_API_URL: scheduler.url,
      DISPATCH_API_KEY: scheduler.apiKey,
      DISPATCH_ENDPOINT_URL: endpointUrl,
      DISPATCH_ENDPOINT_ADDR: `127.0.0.1:${port}`,
      DISPATCH_VERIFICATION_KEY: scheduler.verificationKey,
    },
  });
  await app.waitFor(/^ready$/);
}, 60_000);

afterAll(async () => {
  if (app) {
    app.kill('SIGTERM'); // dispatch.run closes the server on SIGTERM
    expect(await app.exited, app.text()).toBe(0);
  }
  if (appFile) removeRunnable(appFile);
  await scheduler?.close();
});

async function call(fn: string, args: unknown[]) {
  const [id] = await scheduler.dispatch([{ endpoint: endpointUrl, function: fn, input: encodeArgs(args) }]);
  const result = await scheduler.wait(id as string, 20_000);
  if (!result.done) throw new Error(`${fn} did not finish; the app printed:\n${app?.text()}`);
  const info = await scheduler.get(id as string);
  return {
    status: result.status,
    value: result.result.output ? decodeValue(result.result.output) : undefined,
    error: result.result.error ? decodeError(result.result.error) : undefined,
    attempts: info.attempts ?? 0,
  };
}

describe('an app written from the README, driven by the scheduler', () => {
  it('echo and add return their results', async () => {
    expect(await call('echo', ['hello'])).toMatchObject({ status: Status.OK, value: 'hello' });
    expect(await call('add', [2, 40])).toMatchObject({ status: Status.OK, value: 42 });
  });

  it('bad input for add ends with INVALID_ARGUMENT and is not retried', async () => {
    const r = await call('add', ['two', 40]);
    expect(r.status).toBe(Status.INVALID_ARGUMENT);
    expect(r.attempts).toBe(1);
  });

  it('a TemporaryError is retried until the function succeeds', async () => {
    const r = await call('flaky', []);
    expect(r).toMatchObject({ status: Status.OK, value: 'succeeded after 3 attempts', attempts: 3 });
  });

  it('a PermanentError is not retried and keeps its name and message', async () => {
    const r = await call('fatal', []);
    expect(r.status).toBe(Status.PERMANENT_ERROR);
    expect(r.attempts).toBe(1);
    expect(r.error?.name).toBe('PermanentError');
    expect(r.error?.message).toBe('user deactivated');
  });

  it('the scheduler signed what the app ran: the app refuses a request that is not', async () => {
    const res = await fetch(`${endpointUrl}${RUN_PATH}`, { method: 'POST', headers: { 'content-type': 'application/proto' }, body: new Uint8Array() });
    expect(res.status).toBe(401);
  });
});
