// The scheduler with this project's SDK (@dispatch/core's Dispatch and
// engine) over real HTTP: journal deltas, elided states, fan-out, durable
// sleep, retries of a step that fails.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Dispatch, Status, TemporaryError } from '@dispatch/core';
import { decodeValue } from '@dispatch/core/protocol';
import { nodeListener } from '@dispatch/core/node';
import { afterEach, describe, expect, it } from 'vitest';
import type { Scheduler } from '../src/scheduler.js';
import { startTestScheduler } from './support/test-endpoint.js';

let scheduler: Scheduler | undefined;
let server: http.Server | undefined;
afterEach(async () => {
  await scheduler?.close();
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  scheduler = undefined;
  server = undefined;
});

async function app(setup: (d: Dispatch) => void, options: { cache?: false } = {}): Promise<Dispatch> {
  server = http.createServer();
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const d = new Dispatch({
    apiUrl: scheduler!.url,
    apiKey: scheduler!.apiKey,
    endpointUrl: `http://127.0.0.1:${port}`,
    verificationKey: scheduler!.verificationKey,
    logger: { warn() {}, error() {}, info() {} },
    ...(options.cache === undefined ? {} : { cache: options.cache }),
  });
  setup(d);
  server.on('request', nodeListener(d));
  return d;
}

describe('with the TypeScript SDK', () => {
  for (const cache of [undefined, false] as const) {
    it(`runs fan-out, sleeps and retries to completion${cache === false ? ' (no warm cache: replay, state required)' : ''}`, async () => {
      scheduler = await startTestScheduler({ elideStateAbove: 0 });
      let flaky = 0;
      let entry: ((n: number) => Promise<string>) | undefined;
      const d = await app((d) => {
        const double = d.function(async function double(n: number) {
          return n * 2;
        });
        const shaky = d.function(async function shaky() {
          flaky++;
          if (flaky < 3) throw new TemporaryError(`not yet (${flaky})`);
          return 'steady';
        });
        const parent = d.function(async function parent(n: number) {
          const doubled = await Promise.all([1, 2, n].map((i) => double(i)));
          await d.sleep('1s');
          const s = await shaky();
          return `${doubled.join('+')}=${doubled.reduce((a, b) => a + b, 0)} ${s}`;
        });
        entry = (n) => parent.dispatch(n);
      }, cache === undefined ? {} : { cache });
      const id = await entry!(5);
      const result = await scheduler.wait(id, 20_000);
      expect(result.done && result.status).toBe(Status.OK);
      expect(result.done && decodeValue(result.result.output)).toBe('2+4+10=16 steady');
      const info = await scheduler.get(id);
      expect(info.children).toHaveLength(4);
      const shakyId = info.children![3]!;
      const shakyInfo = await scheduler.get(shakyId);
      expect(shakyInfo.attemptHistory?.map((a) => a.status)).toEqual([Status.TEMPORARY_ERROR, Status.TEMPORARY_ERROR, Status.OK]);
      expect(shakyInfo.attemptHistory?.[0]?.error?.message).toBe('not yet (1)');
      // Resumes carried journal deltas and elided states; without a warm cache the SDK asked for them back.
      if (cache === false) expect(d.engine.stats.stateRequired).toBeGreaterThan(0);
      else expect(d.engine.stats.warmResumes).toBeGreaterThan(0);
    });
  }
});
