/**
 * Signatures on, wired as a real deployment is: the scheduler signs every
 * RunRequest with its Ed25519 key; the app is configured through the
 * DISPATCH_* environment and verifies with the scheduler's public key.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Dispatch, Status } from '@dispatch/core';
import { encodeArgs, generateSigningKeyPair, proto, publicKeyToBase64, signRequest } from '@dispatch/core/protocol';
import { nodeListener } from '@dispatch/core/node';
import { Scheduler } from '@dispatch/scheduler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const silent = { warn() {}, error() {}, info() {} };
const RUN = '/dispatch.sdk.v1.FunctionService/Run';

/** An app whose configuration comes from an environment, served on a free port. */
async function startApp(env: (endpointUrl: string) => Record<string, string>) {
  let listener: http.RequestListener = (_req, res) => res.end();
  const server = http.createServer((req, res) => listener(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dispatch = new Dispatch({ env: env(url), logger: silent });
  let seen = 0;
  dispatch.function(function greet(name: string) {
    seen++;
    return `hello ${name}`;
  });
  listener = nodeListener(dispatch);
  return {
    url,
    dispatch,
    seen: () => seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

let scheduler: Scheduler;
beforeAll(async () => {
  scheduler = await Scheduler.start({ db: ':memory:', port: 0, logLevel: 'silent', backoff: { initialMs: 10, maxMs: 50 } });
});
afterAll(async () => {
  await scheduler?.close();
});

const configured = (key: string) => (endpointUrl: string) => ({
  DISPATCH_API_URL: scheduler.url,
  DISPATCH_API_KEY: scheduler.apiKey,
  DISPATCH_ENDPOINT_URL: endpointUrl,
  DISPATCH_VERIFICATION_KEY: key,
});

describe('request signatures', () => {
  it("the app verifies the scheduler's signed requests with its public key", async () => {
    const app = await startApp(configured(scheduler.verificationKey));
    try {
      const key = app.dispatch.config.verificationKey;
      expect(key && publicKeyToBase64(key)).toBe(scheduler.verificationKey);
      const greet = app.dispatch.function(async function greetTwice(name: string) {
        return `${name}!`;
      });
      const id = await greet.dispatch('ada'); // through the API, as the app would
      const r = await scheduler.wait(id, 20_000);
      expect(r.done && r.status).toBe(Status.OK);
      const [rid] = await scheduler.dispatch([{ function: 'greet', endpoint: app.url, input: encodeArgs(['bob']) }]);
      expect((await scheduler.wait(rid!, 20_000)).done).toBe(true);
      expect(app.seen()).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('the app refuses unsigned requests (401) and requests signed with another key (403)', async () => {
    const app = await startApp(configured(scheduler.verificationKey));
    try {
      const body = proto.RunRequest.encode({ function: 'greet', dispatchId: 'forged', input: encodeArgs(['mallory']) });
      const unsigned = await fetch(`${app.url}${RUN}`, { method: 'POST', headers: { 'content-type': 'application/proto' }, body });
      expect(unsigned.status).toBe(401);
      const other = generateSigningKeyPair();
      const headers = signRequest({ method: 'POST', url: `${app.url}${RUN}`, contentType: 'application/proto', body, privateKey: other.privateKey });
      const forged = await fetch(`${app.url}${RUN}`, { method: 'POST', headers: { 'content-type': 'application/proto', ...headers }, body });
      expect(forged.status).toBe(403);
      expect(app.seen()).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('an app configured with the wrong key refuses the scheduler: PERMISSION_DENIED, not retried', async () => {
    const wrong = publicKeyToBase64(generateSigningKeyPair().publicKey);
    const app = await startApp(configured(wrong));
    try {
      const [id] = await scheduler.dispatch([{ function: 'greet', endpoint: app.url, input: encodeArgs(['eve']) }]);
      const r = await scheduler.wait(id!, 20_000);
      expect(r.done && r.status).toBe(Status.PERMISSION_DENIED);
      expect(r.done && r.result.error?.message).toMatch(/403/);
      const info = await scheduler.get(id!);
      expect(info.attempts).toBe(1);
      expect(app.seen()).toBe(0);
    } finally {
      await app.close();
    }
  });
});
