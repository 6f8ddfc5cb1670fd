// examples/domains-nestjs, end to end on both platforms: DNS verification
// retried through registerOutputType until connected; maintenance retried as
// a registered TEMPORARY_ERROR; a deactivated user, a registered
// PERMANENT_ERROR, not retried.
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureExampleBuilt, ensurePackagesBuilt, type ExampleRun, runExample } from './run-example.js';

describe.each(['express', 'fastify'])('examples/domains-nestjs on %s', (platform) => {
  let run: ExampleRun;
  beforeAll(async () => {
    await ensurePackagesBuilt();
    await ensureExampleBuilt('domains-nestjs', 'dist/main.js');
    run = await runExample('domains-nestjs', 'dist/main.js', ['--platform', platform]);
  }, 180_000);

  it('finishes by itself, successfully, on the platform asked for', () => {
    expect(run.code, run.output).toBe(0);
    expect(run.summary?.platform, run.output).toBe(platform);
    expect(run.app.some((l) => l.includes('registered Dispatch function Domains.connectDomain'))).toBe(true);
  });

  it('retries the DNS check until the records are there, then connects the domain once', () => {
    expect(run.summary.waitForDnsRecords).toEqual({ attempts: 3, lookups: 3 });
    expect(run.summary.connectDomain).toMatchObject({ status: 'OK' });
    expect(run.summary.connectedDomains).toEqual(['example.com']);
    expect(run.cli.filter((l) => l.startsWith('retrying Domains.waitForDnsRecords'))).toHaveLength(2);
  });

  it('retries a notification through maintenance mode (TEMPORARY_ERROR)', () => {
    expect(run.summary.notifyAda).toEqual({ status: 'OK', attempts: 3 });
    expect(run.cli.filter((l) => /^retrying Notifications\.notifyUser .*MaintenanceError/.test(l))).toHaveLength(2);
    expect(run.summary.emails).toEqual(['ada@example.com: Your domain is ready']);
  });

  it('does not retry a deactivated user (PERMANENT_ERROR)', () => {
    expect(run.summary.notifyMallory).toEqual({ status: 'PERMANENT_ERROR', attempts: 1, error: 'UserDeactivated: user mallory is deactivated' });
  });
});
