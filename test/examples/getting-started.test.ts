// examples/getting-started, end to end: `dispatch run -- node app.mjs` with
// the real CLI and scheduler.
import { beforeAll, describe, expect, it } from 'vitest';
import { ensurePackagesBuilt, type ExampleRun, runExample } from './run-example.js';

describe('examples/getting-started', () => {
  let run: ExampleRun;
  beforeAll(async () => {
    await ensurePackagesBuilt();
    run = await runExample('getting-started', 'app.mjs');
  }, 180_000);

  it('finishes by itself, successfully', () => {
    expect(run.code, run.output).toBe(0);
    expect(run.summary, run.output).toBeDefined();
  });

  it('runs a dispatched function once', () => {
    expect(run.summary.greet).toEqual({ status: 'OK', attempts: 1 });
    expect(run.app).toContain('greet: Hello Ada');
  });

  it('fans out with batch: three greetings, each run once', () => {
    expect(run.summary.greetEveryone).toMatchObject({ status: 'OK', attempts: 1 });
    expect(run.summary.greetEveryone.output).toHaveLength(3);
    expect(run.summary.batchGreetings).toEqual([
      { status: 'OK', attempts: 1 },
      { status: 'OK', attempts: 1 },
      { status: 'OK', attempts: 1 },
    ]);
    for (const name of ['Jane', 'Mike', 'Hopper']) expect(run.app).toContain(`greet: Hello ${name}`);
  });

  it('fans in with gather: results in call order', () => {
    expect(run.summary.collectGreetings).toMatchObject({ status: 'OK', output: ['Hello Jane', 'Hello Mike', 'Hello Hopper'] });
  });

  it('does not retry an error registered as PERMANENT_ERROR', () => {
    expect(run.summary.failFast).toEqual({ status: 'PERMANENT_ERROR', attempts: 1, error: 'FatalError: this can never work' });
    expect(run.cli.some((l) => l.startsWith('failed failFast'))).toBe(true);
  });

  it('retries an output registered as not done until it is', () => {
    expect(run.summary.checkUntilReady).toEqual({ status: 'OK', attempts: 3, output: { success: true } });
    expect(run.cli.filter((l) => l.startsWith('retrying checkUntilReady'))).toHaveLength(2);
  });
});
