/**
 * The framework adapters declare an app's schedules when it starts (issue
 * 15): the Express middleware once the app's module has run, the Fastify
 * plugin when the app is ready. A real scheduler runs in this process; each
 * app serves on a free port and its scheduled function must tick.
 */
import type { AddressInfo } from 'node:net';
import { Dispatch, type ScheduleTick } from '@dispatch/core';
import { dispatchMiddleware } from '@dispatch/express';
import { dispatchPlugin } from '@dispatch/fastify';
import { Scheduler } from '@dispatch/scheduler';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './helpers/processes.js';

const silent = { warn() {}, error() {}, info() {} };
const POLL = { timeout: 20_000, interval: 100 };
let scheduler: Scheduler;

beforeAll(async () => {
  scheduler = await Scheduler.start({ db: ':memory:', port: 0, logLevel: 'silent' });
});
afterAll(async () => {
  await scheduler?.close();
});

function appInstance(endpointUrl: string): Dispatch {
  return new Dispatch({ env: {}, apiUrl: scheduler.url, apiKey: scheduler.apiKey, endpointUrl, verificationKey: scheduler.verificationKey, logger: silent });
}

describe('schedules declared by the adapters', () => {
  it('Express: the middleware declares them, and they tick', async () => {
    const app = express();
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const dispatch = appInstance(url);
      const ticks: ScheduleTick[] = [];
      dispatch.function({ name: 'expressTick', schedule: '* * * * * *' }, (tick: ScheduleTick) => {
        ticks.push(tick);
      });
      app.use(dispatchMiddleware(dispatch));
      await expect.poll(async () => (await scheduler.schedules.list()).find((s) => s.name === 'expressTick')?.endpoint, POLL).toBe(url);
      await expect.poll(() => ticks.length, POLL).toBeGreaterThanOrEqual(2);
      expect(ticks[0]!.name).toBe('expressTick');
      expect(ticks[0]!.time).toBeInstanceOf(Date);
      expect(ticks[0]!.time.getUTCMilliseconds()).toBe(0);
    } finally {
      await scheduler.schedules.remove('expressTick');
      await new Promise((resolve) => server.close(resolve));
    }
  }, 60_000);

  it('Fastify: the plugin declares them when the app is ready, and they tick; a failure fails listen()', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const fastify = Fastify();
    const dispatch = appInstance(url);
    const ticks: ScheduleTick[] = [];
    dispatch.function({ name: 'fastifyTick', schedule: { cron: '* * * * * *', timeZone: 'Asia/Tokyo' } }, (tick: ScheduleTick) => {
      ticks.push(tick);
    });
    await fastify.register(dispatchPlugin, { dispatch });
    await fastify.listen({ port, host: '127.0.0.1' });
    try {
      // Declared before listen() resolved.
      expect((await scheduler.schedules.list()).find((s) => s.name === 'fastifyTick')).toMatchObject({ timeZone: 'Asia/Tokyo', endpoint: url });
      await expect.poll(() => ticks.length, POLL).toBeGreaterThanOrEqual(2);
    } finally {
      await scheduler.schedules.remove('fastifyTick');
      await fastify.close();
    }

    // A schedule the scheduler refuses (here, an endpoint URL it cannot call) fails listen() with the reason.
    const broken = Fastify();
    const bad = new Dispatch({ env: {}, apiUrl: scheduler.url, apiKey: scheduler.apiKey, endpointUrl: 'bridge://app', logger: silent });
    bad.function({ name: 'never', schedule: '* * * * *' }, () => 1);
    await broken.register(dispatchPlugin, { dispatch: bad });
    await expect(broken.listen({ port: 0, host: '127.0.0.1' })).rejects.toThrow(/DeclareSchedules needs the endpoint's URL \(http:\/\/ or https:\/\/\), got "bridge:\/\/app"/);
    await broken.close();
  }, 60_000);
});
