/**
 * Error handling of the seeds on NestJS (Express or Fastify platform):
 * - `connectDomain` waits for the user's DNS records: `waitForDnsRecords`
 *   returns a DnsVerification, registered with registerOutputType, so it is
 *   retried until the records are there; then the domain is connected;
 * - `notifyUser` during maintenance throws MaintenanceError, registered as a
 *   TEMPORARY_ERROR: retried until the app is back up;
 * - `notifyUser` for a deactivated user throws UserDeactivated, registered as
 *   a PERMANENT_ERROR: not retried.
 *
 *   dispatch run -- node dist/main.js [--platform fastify]           # demo, then exit
 *   dispatch run -- node dist/main.js [--platform fastify] --serve   # keep serving
 */
import 'reflect-metadata';
import { Dispatch, DispatchClient } from '@dispatch/core';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { AppModule } from './app.module';
import { Database, DnsProvider, Mailer } from './world';

const args = process.argv.slice(2);
const platform = args.includes('--platform') ? args[args.indexOf('--platform') + 1] : 'express';

async function bootstrap(): Promise<void> {
  const logger = ['log', 'warn', 'error'] as const;
  const app =
    platform === 'fastify'
      ? await NestFactory.create(AppModule, new FastifyAdapter(), { logger: [...logger] })
      : await NestFactory.create(AppModule, { logger: [...logger] });
  // The endpoint's address (DISPATCH_ENDPOINT_ADDR): 127.0.0.1:8000, the SDK's default, unless
  // `dispatch run --endpoint-addr` chose another (the tests do, to run side by side).
  const { hostname: host, port } = new URL(`http://${app.get(Dispatch).config.endpointAddr}`);
  await app.listen(Number(port), host);
  console.log(`listening on http://${host}:${port} (${platform}): POST /domains/:domain/connect, POST /users/:id/notify`);
  if (!args.includes('--serve')) await demo(app, `http://${host}:${port}`);
}

/** Connects a domain and notifies two users through the app's routes, waits for the outcomes, prints them, and exits. */
async function demo(app: INestApplication, base: string): Promise<void> {
  // The API client waits for the calls and tells how many runs they took.
  const dispatch = app.get(Dispatch);
  const client = new DispatchClient({ apiUrl: dispatch.config.apiUrl, apiKey: dispatch.config.apiKey, registry: dispatch.registry });
  const post = async (path: string) => ((await (await fetch(`${base}${path}`, { method: 'POST' })).json()) as { dispatchId: string }).dispatchId;
  const finish = async (id: string) => {
    const r = await client.wait(id, { timeoutMs: 60_000 });
    if (!r.done) throw new Error(`call ${id} did not finish in 60 s`);
    const { attempts } = await client.get(id);
    return { status: r.statusName, attempts, ...(r.error ? { error: `${r.error.name}: ${r.error.message}` } : {}) };
  };
  const attemptsOf = async (fn: string) => (await client.list({ function: fn })).calls.reduce((n, c) => n + c.attempts, 0);

  const [connect, ada, mallory] = await Promise.all([
    post('/domains/example.com/connect').then(finish),
    post('/users/ada/notify').then(finish),
    post('/users/mallory/notify').then(finish),
  ]);
  const summary = {
    platform,
    connectDomain: connect,
    waitForDnsRecords: { attempts: await attemptsOf('Domains.waitForDnsRecords'), lookups: app.get(DnsProvider).lookups.get('example.com') },
    connectedDomains: app.get(Database).connectedDomains,
    notifyAda: ada,
    notifyMallory: mallory,
    emails: app.get(Mailer).sent,
  };
  console.log(`example.com: ${connect.status} after ${summary.waitForDnsRecords.attempts} DNS checks`);
  console.log(`notify ada: ${ada.status} after ${ada.attempts} attempt(s) (maintenance)`);
  console.log(`notify mallory: ${mallory.status} after ${mallory.attempts} attempt(s) (${mallory.error})`);
  console.log(`summary ${JSON.stringify(summary)}`);
  await app.close();
  const ok = connect.status === 'OK' && ada.status === 'OK' && mallory.status === 'PERMANENT_ERROR';
  process.exit(ok ? 0 : 1);
}

bootstrap().catch((err) => {
  console.error(err);
  process.exit(1);
});
