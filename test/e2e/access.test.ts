/**
 * Who may use a scheduler, with real `dispatch serve` processes: the
 * dashboard's one-time login link survives a link previewer's HEAD, a
 * logout survives a restart, and a request of 600,000 calls is refused
 * with a clear error before it is decoded.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DispatchApiError, DispatchClient } from '@dispatch/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLEAN_ENV, DISPATCH_BIN, type Proc, killAll, requireBuilt, start, tempDir } from './helpers/processes.js';

const cleanEnv = CLEAN_ENV;

interface Served {
  proc: Proc;
  url: string;
  apiKey: string;
  loginUrl: string;
}

/** `dispatch serve` on `db`, read from its banner. */
async function serve(db: string, cwd: string): Promise<Served> {
  const proc = start(process.execPath, [DISPATCH_BIN, 'serve', '--db', db, '--port', '0', '--log-level', 'warn'], { cwd, env: cleanEnv });
  await proc.waitFor(/^Start an app with:/);
  const banner = proc.stdout.join('\n');
  return {
    proc,
    url: /API URL +(\S+)/.exec(banner)![1]!,
    apiKey: /API key +(\S+)/.exec(banner)![1]!,
    loginUrl: /dashboard login +(\S+)/.exec(banner)![1]!,
  };
}

async function stop(s: Served): Promise<void> {
  s.proc.kill('SIGTERM');
  expect(await s.proc.exited).toBe(0);
}

/** The peak RSS of a process, for the test's report (Linux: /proc). */
function peakRssMb(proc: Proc): string {
  try {
    const kb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.child.pid}/status`, 'utf8'))?.[1]);
    return `${(kb / 1024).toFixed(1)} MB`;
  } catch {
    return 'unknown (no /proc)';
  }
}

/** The session cookie (`name=value`) a sign-in answered. */
function sessionOf(res: Response): string {
  const cookie = res.headers.get('set-cookie') ?? '';
  expect(cookie).toMatch(/^dispatch_dashboard=[^;]+; Path=\/dashboard; HttpOnly; SameSite=Lax/);
  return cookie.split(';')[0]!;
}

const runsWith = (s: Served, cookie: string) => fetch(`${s.url}/dashboard/api/runs`, { headers: { cookie } }).then((r) => r.status);

beforeAll(() => requireBuilt());

describe('the dashboard', () => {
  const tmp = tempDir('access');
  const procs: Proc[] = [];
  afterAll(async () => {
    await killAll(procs);
    tmp.remove();
  });

  it('a login link fetched with HEAD (a link previewer) still signs in with GET, once', async () => {
    const s = await serve(join(tmp.dir, 'head.db'), tmp.dir);
    procs.push(s.proc);
    const head = await fetch(s.loginUrl, { method: 'HEAD', redirect: 'manual' });
    expect(head.status).toBe(200);
    expect(head.headers.get('set-cookie')).toBeNull();
    const again = await fetch(s.loginUrl, { method: 'HEAD', redirect: 'manual' });
    expect(again.status).toBe(200);
    const get = await fetch(s.loginUrl, { redirect: 'manual' });
    expect(get.status).toBe(303);
    expect(await runsWith(s, sessionOf(get))).toBe(200);
    // Used up by that GET: neither HEAD nor GET works any more.
    expect((await fetch(s.loginUrl, { method: 'HEAD', redirect: 'manual' })).status).toBe(401);
    expect((await fetch(s.loginUrl, { redirect: 'manual' })).status).toBe(401);
    await stop(s);
  });

  it('a logged-out cookie stays refused after the scheduler restarts; another session still holds', async () => {
    const db = join(tmp.dir, 'logout.db');
    const first = await serve(db, tmp.dir);
    procs.push(first.proc);
    const signIn = () =>
      fetch(`${first.url}/dashboard/login`, {
        method: 'POST',
        body: new URLSearchParams({ key: first.apiKey }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        redirect: 'manual',
      }).then(sessionOf);
    const out = await signIn();
    const kept = await signIn();
    const logout = await fetch(`${first.url}/dashboard/logout`, { method: 'POST', headers: { cookie: out, origin: first.url }, redirect: 'manual' });
    expect(logout.status).toBe(303);
    expect(await runsWith(first, out)).toBe(401);
    expect(await runsWith(first, kept)).toBe(200);
    await stop(first);

    const second = await serve(db, tmp.dir);
    procs.push(second.proc);
    expect(second.apiKey).toBe(first.apiKey); // the same database, the same keys and session secret
    expect(await runsWith(second, out)).toBe(401);
    expect(await runsWith(second, kept)).toBe(200);
    await stop(second);
  });
});

describe('the API', () => {
  const tmp = tempDir('calls');
  const procs: Proc[] = [];
  afterAll(async () => {
    await killAll(procs);
    tmp.remove();
  });

  it('refuses a DispatchRequest of 600,000 calls with invalid_argument naming the limit and the option, and stays healthy', async () => {
    const s = await serve(':memory:', tmp.dir);
    procs.push(s.proc);
    const client = new DispatchClient({ apiUrl: s.url, apiKey: s.apiKey, timeoutMs: 120_000 });
    const calls = Array.from({ length: 600_000 }, () => ({ function: 'f', endpoint: 'http://a' })); // 9 MB: under the body limit
    const error = await client.dispatch(calls).then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(DispatchApiError);
    expect((error as DispatchApiError).code).toBe('invalid_argument');
    expect((error as DispatchApiError).message).toMatch(
      /the DispatchRequest has 600000 calls, more than the limit of 1000 per request: send them in batches of at most 1000 \(the limit is the scheduler's maxCallsPerRequest option, or dispatch serve --max-calls-per-request\)/,
    );
    const health = await client.health();
    expect(health.status).toBe('ok');
    expect((await client.list()).counts.pending).toBe(0);
    console.info(`600,000-call request refused: "${(error as Error).message}"; the scheduler's peak RSS ${peakRssMb(s.proc)}`);
    // A batch at the limit goes through.
    expect(await client.dispatch(calls.slice(0, 1000))).toHaveLength(1000);
    await stop(s);
  });
});
