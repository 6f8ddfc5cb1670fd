// examples/notifications-fastify, end to end: batch fan-out where one send
// fails twice (only it is retried), and gather fan-in then uploads.
import { beforeAll, describe, expect, it } from 'vitest';
import { ensurePackagesBuilt, type ExampleRun, runExample } from './run-example.js';

describe('examples/notifications-fastify', () => {
  let run: ExampleRun;
  beforeAll(async () => {
    await ensurePackagesBuilt();
    run = await runExample('notifications-fastify', 'app.mjs');
  }, 180_000);

  it('finishes by itself, successfully', () => {
    expect(run.code, run.output).toBe(0);
    expect(run.summary, run.output).toBeDefined();
  });

  it('fans out one send per user; only the failing send is retried', () => {
    expect(run.summary.notify).toEqual({ status: 'OK', attempts: 1 });
    expect(run.summary.sends).toEqual({
      ada: { status: 'OK', attempts: 1 },
      grace: { status: 'OK', attempts: 1 },
      linus: { status: 'OK', attempts: 3 },
      margaret: { status: 'OK', attempts: 1 },
    });
    for (const user of ['ada', 'grace', 'margaret']) {
      expect(run.app.filter((l) => l.startsWith(`notify: ${user}:`))).toEqual([`notify: ${user}: email sent (attempt 1)`]);
    }
  });

  it('gathers the invoices in client order although they finish in reverse, then uploads them', () => {
    expect(run.summary.invoices).toEqual({
      status: 'OK',
      urls: ['s3://invoices/acme.pdf', 's3://invoices/globex.pdf', 's3://invoices/initech.pdf'],
    });
    const log: string[] = run.summary.log;
    expect(log.slice(0, 3)).toEqual(['generated /tmp/invoices/initech.pdf', 'generated /tmp/invoices/globex.pdf', 'generated /tmp/invoices/acme.pdf']);
    expect([...log.slice(3)].sort()).toEqual(['uploaded s3://invoices/acme.pdf', 'uploaded s3://invoices/globex.pdf', 'uploaded s3://invoices/initech.pdf']);
  });
});
