// Where DispatchEndpoint mounts the Run route. With NestFactory.create the
// HTTP adapter exists when providers are built, so the route is mounted
// before Nest's body parsers (covered by test/conformance). With a testing
// module the adapter comes later: the route is mounted when the module
// initialises, after Nest's parsers, on both platforms.
import 'reflect-metadata';
import { Dispatch, Status } from '@dispatch/core';
import { encodeArgs, proto, RUN_PATH, toJson } from '@dispatch/core/protocol';
import { Module } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { describe, expect, it } from 'vitest';
import { DispatchModule } from './dispatch.module.js';

const quiet = { warn() {}, error() {}, info() {} };

function newDispatch(): Dispatch {
  const dispatch = new Dispatch({ endpointUrl: 'http://127.0.0.1:1', verificationKey: null, logger: quiet, env: {} });
  dispatch.function(function echo(text: string) {
    return `echo: ${text}`;
  });
  return dispatch;
}

const protoBody = () => proto.RunRequest.encode({ function: 'echo', input: encodeArgs(['hi']) });
const jsonBody = () => JSON.stringify(toJson(proto.RunRequest, { function: 'echo', input: encodeArgs(['hi']) }));

describe('DispatchEndpoint in a testing module (adapter created after the providers)', () => {
  it('mounts on Express at module init; JSON needs rawBody: true, as Nest parsed it first', async () => {
    for (const rawBody of [false, true]) {
      @Module({ imports: [DispatchModule.forRoot({ instance: newDispatch(), prefix: '/dispatch' })] })
      class AppModule {}
      const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
      const app = moduleRef.createNestApplication({ logger: false, rawBody });
      await app.listen(0, '127.0.0.1');
      const url = `${await app.getUrl()}/dispatch${RUN_PATH}`.replace('[::1]', '127.0.0.1');
      const binary = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/proto' }, body: protoBody() });
      expect(binary.status).toBe(200);
      expect(proto.RunResponse.decode(new Uint8Array(await binary.arrayBuffer())).status).toBe(Status.OK);
      const json = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonBody() });
      if (rawBody) {
        expect(json.status).toBe(200);
      } else {
        expect(json.status).toBe(500);
        expect(((await json.json()) as { message: string }).message).toContain('mount dispatchMiddleware() before body parsers');
      }
      await app.close();
    }
  });

  it('mounts on Fastify at module init, parser and all', async () => {
    @Module({ imports: [DispatchModule.forRoot({ instance: newDispatch() })] })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    for (const [type, payload] of [
      ['application/proto', Buffer.from(protoBody())],
      ['application/json', jsonBody()],
    ] as const) {
      const res = await app.inject({ method: 'POST', url: RUN_PATH, headers: { 'content-type': type }, payload });
      expect(res.statusCode, type).toBe(200);
    }
    await app.close();
  });

  it('does not mount with { mount: false }', async () => {
    @Module({ imports: [DispatchModule.forRoot({ instance: newDispatch(), mount: false })] })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    await app.init();
    const res = await app.inject({ method: 'POST', url: RUN_PATH, headers: { 'content-type': 'application/proto' }, payload: Buffer.from(protoBody()) });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).not.toBe('application/proto');
    await app.close();
  });
});
