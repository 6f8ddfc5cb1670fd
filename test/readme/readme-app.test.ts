/**
 * Issue 2's "Must show": an app written only from the README's API section
 * (the module-level seed API, run with `dispatch.run(main)`-style serving)
 * serves echo, add, a function that throws TemporaryError twice then
 * succeeds, and one that throws PermanentError; a scheduler that speaks the
 * protocol (ours, over real HTTP with signed requests) drives it.
 */
import { Dispatch, PermanentError, Status, TemporaryError } from '@dispatch/core';
import { decodeError, decodeValue } from '@dispatch/core/protocol';
import { Scheduler } from '@dispatch/scheduler';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let scheduler: Scheduler;
let server: { url: string; close(): Promise<void> };
let app: Dispatch;
let flakyRuns = 0;

beforeAll(async () => {
  scheduler = await Scheduler.start({ db: ':memory:', port: 0, logLevel: 'silent', backoff: { initialMs: 20, maxMs: 100 } });
  // Written from the README: "Your own instance" + "Validated input" + "Errors and statuses".
  app = new Dispatch({
    apiKey: scheduler.apiKey,
    apiUrl: scheduler.url,
    endpointUrl: 'http://127.0.0.1:0', // replaced below once the port is known
    verificationKey: scheduler.verificationKey,
    logger: { warn() {}, error() {}, info() {} },
  });
  app.function(function echo(text: string) {
    return text;
  });
  app.function({ name: 'add', input: z.tuple([z.number(), z.number()]) }, (a: number, b: number) => a + b);
  app.function(async function flaky() {
    flakyRuns++;
    if (flakyRuns <= 2) throw new TemporaryError(`attempt ${flakyRuns} failed`);
    return `succeeded after ${flakyRuns} attempts`;
  });
  app.function(async function fatal() {
    throw new PermanentError('user deactivated');
  });
  server = await app.serve({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await server?.close();
  await scheduler?.close();
});

async function call(fn: string, args: unknown[]) {
  const { encodeArgs } = await import('@dispatch/core/protocol');
  const [id] = await scheduler.dispatch([{ endpoint: server.url, function: fn, input: encodeArgs(args) }]);
  const result = await scheduler.wait(id as string, 20_000);
  if (!result.done) throw new Error(`${fn} did not finish`);
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
});
