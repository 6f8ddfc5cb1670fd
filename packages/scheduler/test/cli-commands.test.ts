/**
 * The `dispatch` CLI in this process (`main(argv, io)`), against a real
 * scheduler where a command talks to one: flags and help texts from the
 * defaults written once, and PostgreSQL URLs recognised whatever the case
 * of their scheme. (The compiled bin as a process: test/e2e/cli.test.ts.)
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/program.js';
import { SCHEDULER_DEFAULTS } from '../src/options.js';
import type { Scheduler } from '../src/scheduler.js';
import { startTestScheduler } from './support/test-endpoint.js';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: string, done: () => void) {
    this.text += chunk.toString();
    done();
  }
}

let scheduler: Scheduler;
let cwd: string;
beforeAll(async () => {
  scheduler = await startTestScheduler();
  cwd = mkdtempSync(join(tmpdir(), 'dispatch-cli-'));
});
afterAll(async () => {
  await scheduler?.close();
  rmSync(cwd, { recursive: true, force: true });
});

async function dispatch(args: string[], env: NodeJS.ProcessEnv = {}) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(['node', 'dispatch', ...args], { stdout, stderr, env, cwd });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe('dispatch CLI', () => {
  it('verification-key --db with a POSTGRES:// URL asks the scheduler instead of opening a file of that name', async () => {
    for (const url of ['POSTGRES://dispatch@127.0.0.1:1/app', 'PostgreSQL://dispatch@127.0.0.1:1/app']) {
      const r = await dispatch(['verification-key', '--db', url], { DISPATCH_API_URL: scheduler.url });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(scheduler.verificationKey);
    }
    expect(readdirSync(cwd)).toEqual([]); // no SQLite file named after the URL
  });

  it('verification-key reads (and creates) the key pair of the default database file', async () => {
    const first = await dispatch(['verification-key']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/created a signing key pair in \.dispatch\/dispatch\.db/);
    expect(existsSync(join(cwd, SCHEDULER_DEFAULTS.db))).toBe(true);
    const again = await dispatch(['verification-key']);
    expect(again.stdout).toBe(first.stdout);
  });

  it('shows the defaults in the help of serve and run', async () => {
    // Help is wrapped to the terminal's width: compare it on one line.
    const flat = (text: string) => text.replace(/\s+/g, ' ');
    const serve = await dispatch(['serve', '--help']);
    expect(serve.code).toBe(0);
    serve.stdout = flat(serve.stdout);
    expect(serve.stdout).toContain(`(default: "${SCHEDULER_DEFAULTS.db}")`);
    expect(serve.stdout).toContain(`(default: "${SCHEDULER_DEFAULTS.port}")`);
    expect(serve.stdout).toContain(`(default: "${SCHEDULER_DEFAULTS.host}")`);
    expect(serve.stdout).toContain(`(default ${SCHEDULER_DEFAULTS.leaseMs})`);
    expect(serve.stdout).toContain(`(default ${SCHEDULER_DEFAULTS.concurrency.max})`);
    expect(serve.stdout).toMatch(new RegExp(`--quarantine-after <n> a call whose attempts crash the app .* \\(default ${SCHEDULER_DEFAULTS.quarantineAfter}\\)`));
    expect(serve.stdout).toMatch(/--probe-max <duration> longest delay between two probes of an endpoint that refuses connections \(default 5s\)/);
    expect(serve.stdout).toMatch(/--ready-json once listening, print one line of JSON/);
    const run = await dispatch(['run', '--help']);
    run.stdout = flat(run.stdout);
    expect(run.stdout).toContain('--quarantine-after <n>');
    expect(run.stdout).toContain(`(default ${SCHEDULER_DEFAULTS.port} if free, else any free port)`);
    expect(run.stdout).toContain(`(default: "${SCHEDULER_DEFAULTS.db}")`);
  });

  it('refuses bad flag values of serve, naming the flag and the value', async () => {
    const cases: Array<[string[], RegExp, number]> = [
      [['--port', 'x'], /--port must be a port number from 0 to 65535, got "x"/, 1],
      [['--log-level', 'loud'], /--log-level must be one of error, warn, info, debug, silent, got "loud"/, 2],
      [['--lease-ms', '0'], /--lease-ms must be an integer ≥ 1, got "0"/, 2],
      [['--concurrency-max', 'many'], /--concurrency-max must be an integer ≥ 1, got "many"/, 2],
      [['--request-timeout-ms', '1.5'], /--request-timeout-ms must be an integer ≥ 1, got "1\.5"/, 2],
      [['--quarantine-after', '0'], /--quarantine-after must be an integer ≥ 1, got "0"/, 2],
      [['--synchronous', 'sometimes'], /--synchronous must be NORMAL or FULL, got "sometimes"/, 2],
    ];
    for (const [flags, message, code] of cases) {
      const r = await dispatch(['serve', '--db', ':memory:', ...flags]);
      expect(r.code, flags.join(' ')).toBe(code);
      expect(r.stderr).toMatch(message);
    }
  });

  it('ls and get talk to the scheduler through the core client, and say what to do about an unknown ID', async () => {
    const env = { DISPATCH_API_URL: scheduler.url, DISPATCH_API_KEY: scheduler.apiKey };
    const ls = await dispatch(['ls', '--json'], env);
    expect(ls.code, ls.stderr).toBe(0);
    expect(JSON.parse(ls.stdout)).toMatchObject({ calls: [], nextCursor: null, counts: { pending: 0, succeeded: 0 } });
    const get = await dispatch(['get', 'nope'], env);
    expect(get.code).toBe(1);
    expect(get.stderr).toBe('dispatch: no call with dispatch ID "nope"\n');
  });
});
