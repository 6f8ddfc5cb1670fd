/**
 * `dispatch serve --ready-json` as a process (the built bin: `pnpm build`
 * first), as tests and benchmarks start the scheduler: the ready line, the
 * flags and the environment it takes, and a clean stop on SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DispatchApiError, DispatchClient } from '@dispatch/core';
import { afterAll, describe, expect, it } from 'vitest';
import type { ServeReady } from '../src/cli/serve.js';
import { dispatchBinPath } from './support/pg-cluster.js';

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'dispatch-serve-'));
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Starts `dispatch serve --ready-json ...args`; resolves with its ready line and its exit. */
function serve(args: string[], env: NodeJS.ProcessEnv): Promise<{ ready: ServeReady; child: ChildProcess; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [dispatchBinPath(), 'serve', '--ready-json', '--port', '0', ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ ready: JSON.parse(out.slice(0, nl)) as ServeReady, child, exited });
    });
    void exited.then((code) => reject(new Error(`dispatch serve exited (${code}) before it was ready: ${stderr}`)));
  });
}

const refused = (client: DispatchClient) => client.list().then(() => null, (err: DispatchApiError) => err.code);

describe('dispatch serve --ready-json', () => {
  it('prints one JSON line when ready, takes its flags over the environment, and stops cleanly on SIGTERM', async () => {
    const db = join(dir, 'serve.db');
    const { ready, child, exited } = await serve(
      ['--db', db, '--api-key', 'key-a-0123456789', '--api-key', 'key-b-0123456789', '--log-level', 'debug', '--synchronous', 'full', '--concurrency-max', '5', '--lease-ms', '2000', '--claim-batch', '64', '--request-timeout-ms', '1000'],
      { DISPATCH_API_KEY: 'ignored-0123456789' },
    );
    expect(Object.keys(ready).sort()).toEqual(['apiKey', 'pid', 'url', 'verificationKey']);
    expect(ready).toMatchObject({ apiKey: 'key-a-0123456789', pid: child.pid });
    expect(ready.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(ready.verificationKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const client = new DispatchClient({ apiUrl: ready.url, apiKey: 'key-b-0123456789' });
    expect(await refused(client)).toBeNull();
    expect(await refused(new DispatchClient({ apiUrl: ready.url, apiKey: 'ignored-0123456789' }))).toBe('unauthenticated');
    const [id] = await client.dispatch([{ function: 'f', endpoint: 'http://127.0.0.1:1' }]);
    const call = await client.get(id!);
    expect(call.raw.concurrency).toMatchObject({ max: 5 });
    expect(existsSync(join(dir, 'api.json'))).toBe(true);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(join(dir, 'api.json'))).toBe(false);
  });

  it('accepts DISPATCH_API_KEY when no --api-key is given', async () => {
    const { ready, child, exited } = await serve(['--db', ':memory:', '--log-level', 'silent'], { DISPATCH_API_KEY: 'from-env-0123456789' });
    expect(ready.apiKey).toBe('from-env-0123456789');
    expect(await refused(new DispatchClient({ apiUrl: ready.url, apiKey: 'from-env-0123456789' }))).toBeNull();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
