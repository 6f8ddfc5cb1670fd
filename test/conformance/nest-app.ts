/** A NestJS app with DispatchModule and a controller of its own, on either platform. */
import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import type { Dispatch } from '@dispatch/core';
import { DispatchModule } from '@dispatch/nestjs';
import { Body, Controller, Get, HttpCode, type INestApplication, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { RunningServer } from './conformance-suite.js';

@Controller('app')
class AppController {
  @Post('echo')
  @HttpCode(200)
  echo(@Body() body: unknown) {
    return { echo: body };
  }

  @Get('health')
  health() {
    return 'ok';
  }
}

export async function startNest(platform: 'express' | 'fastify', dispatch: Dispatch, prefix: string, host = '127.0.0.1'): Promise<RunningServer> {
  @Module({ imports: [DispatchModule.forRoot({ instance: dispatch, prefix })], controllers: [AppController] })
  class AppModule {}
  const app: INestApplication =
    platform === 'express'
      ? await NestFactory.create(AppModule, { logger: false })
      : await NestFactory.create(AppModule, new FastifyAdapter(), { logger: false });
  await app.listen(0, host);
  const address = app.getHttpServer().address() as AddressInfo;
  return { url: `http://127.0.0.1:${address.port}`, close: () => app.close() };
}
