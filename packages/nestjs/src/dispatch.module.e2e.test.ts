// DispatchModule end to end on both platforms: a controller dispatches a
// decorated method through DispatchService; the real scheduler runs it over
// signed HTTP; `await this.other(...)` inside it is a durable call (the
// step that failed is retried alone), and a batch fans out.
import 'reflect-metadata';
import { createServer } from 'node:net';
import { type ScheduleTick, Status, TemporaryError } from '@dispatch/core';
import { decodeValue } from '@dispatch/core/protocol';
import { Scheduler } from '@dispatch/scheduler';
import { Body, Controller, HttpCode, Injectable, type INestApplication, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DispatchFunction } from './dispatch-function.decorator.js';
import { DispatchModule } from './dispatch.module.js';
import { DispatchService } from './dispatch.service.js';

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });

describe.each(['express', 'fastify'] as const)('DispatchModule on %s, driven by the scheduler', (platform) => {
  const counts = { charge: 0, email: 0, notify: [] as string[], ticks: [] as ScheduleTick[] };

  @Injectable()
  class Shop {
    constructor(private readonly dispatch: DispatchService) {}

    @DispatchFunction()
    async charge(userId: string): Promise<string> {
      counts.charge++;
      return `receipt_${userId}`;
    }

    @DispatchFunction()
    async sendEmail(userId: string, receipt: string): Promise<void> {
      if (++counts.email === 1) throw new TemporaryError(`mail server busy (email to ${userId}, ${receipt})`);
    }

    @DispatchFunction()
    async checkout(userId: string, orderId: string): Promise<string> {
      const receipt = await this.charge(userId);
      await this.sendEmail(userId, receipt);
      return `${orderId} paid with ${receipt}`;
    }

    @DispatchFunction()
    async double(n: number): Promise<number> {
      return n * 2;
    }

    @DispatchFunction()
    async doubleAll(ns: number[]): Promise<number[]> {
      return Promise.all(ns.map((n) => this.double(n)));
    }

    @DispatchFunction({ name: 'Shop.everySecond', schedule: '* * * * * *' })
    async everySecond(tick: ScheduleTick): Promise<void> {
      counts.ticks.push(tick);
    }

    @DispatchFunction()
    async notify(userId: string): Promise<void> {
      counts.notify.push(userId);
    }

    @DispatchFunction()
    async notifyAll(userIds: string[]): Promise<number> {
      const batch = this.dispatch.batch();
      for (const id of userIds) batch.add(this.dispatch.call(this.notify, id));
      return (await batch.dispatch()).length;
    }
  }

  @Controller()
  class ShopController {
    constructor(
      private readonly shop: Shop,
      private readonly dispatch: DispatchService,
    ) {}

    @Post('buy')
    @HttpCode(200)
    async buy(@Body() body: { userId: string; orderId: string }) {
      return { id: await this.dispatch.dispatch(this.shop.checkout, body.userId, body.orderId) };
    }

    @Post('double')
    @HttpCode(200)
    async double(@Body() body: { ns: number[] }) {
      return { id: await this.dispatch.dispatch(this.shop.doubleAll, body.ns) };
    }

    @Post('notify')
    @HttpCode(200)
    async notify(@Body() body: { userIds: string[] }) {
      return { id: await this.dispatch.dispatch(this.shop.notifyAll, body.userIds) };
    }
  }

  let scheduler: Scheduler;
  let app: INestApplication;
  let url: string;
  beforeAll(async () => {
    scheduler = await Scheduler.start({ db: ':memory:', port: 0, logLevel: 'silent', backoff: { initialMs: 10, maxMs: 50 } });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    @Module({
      imports: [
        DispatchModule.forRoot({
          apiKey: scheduler.apiKey,
          apiUrl: scheduler.url,
          endpointUrl: `${url}/dispatch`,
          verificationKey: scheduler.verificationKey,
          prefix: '/dispatch',
          env: {},
        }),
      ],
      providers: [Shop],
      controllers: [ShopController],
    })
    class AppModule {}
    app =
      platform === 'express'
        ? await NestFactory.create(AppModule, { logger: false })
        : await NestFactory.create(AppModule, new FastifyAdapter(), { logger: false });
    await app.listen(port, '127.0.0.1');
  });
  afterAll(async () => {
    await app?.close();
    await scheduler?.close();
  });

  async function post(path: string, body: unknown): Promise<string> {
    const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    return ((await res.json()) as { id: string }).id;
  }

  it('declares a scheduled method at bootstrap, and it ticks', async () => {
    const [schedule] = await scheduler.schedules.list();
    expect(schedule).toMatchObject({ name: 'Shop.everySecond', cron: '* * * * * *', endpoint: `${url}/dispatch` });
    await expect.poll(() => counts.ticks.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
    expect(counts.ticks[0]).toMatchObject({ name: 'Shop.everySecond', missed: 0 });
  });

  it('runs a checkout dispatched from a controller; only the failed email is retried', async () => {
    const id = await post('/buy', { userId: 'u1', orderId: 'o1' });
    const result = await scheduler.wait(id, 20_000);
    expect(result.done && result.status).toBe(Status.OK);
    expect(result.done && decodeValue(result.result.output)).toBe('o1 paid with receipt_u1');
    expect(counts).toMatchObject({ charge: 1, email: 2 });
    const { calls } = await scheduler.list({ function: 'Shop.sendEmail' });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.attempts).toBe(2);
  });

  it('fans in with Promise.all over decorated-method calls, results in order', async () => {
    const id = await post('/double', { ns: [1, 2, 3] });
    const result = await scheduler.wait(id, 20_000);
    expect(result.done && decodeValue(result.result.output)).toEqual([2, 4, 6]);
    expect((await scheduler.list({ function: 'Shop.double' })).calls).toHaveLength(3);
  });

  it('fans out with a batch of decorated-method calls', async () => {
    const id = await post('/notify', { userIds: ['a', 'b', 'c'] });
    const result = await scheduler.wait(id, 20_000);
    expect(result.done && decodeValue(result.result.output)).toBe(3);
    await expect.poll(() => [...counts.notify].sort(), { timeout: 20_000 }).toEqual(['a', 'b', 'c']);
  });
});
