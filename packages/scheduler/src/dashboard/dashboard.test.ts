/**
 * The dashboard over HTTP, without a browser: sign-in, sessions, one-time
 * links, the protection of actions, the JSON API. (The browser test is in
 * test/dashboard.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { encodeArgs } from '@dispatch/core/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scheduler } from '../scheduler.js';
import { MAX_FAILED_LOGINS_PER_MINUTE } from './auth.js';
import { Dashboard, newDashboardSecret } from './dashboard.js';
import { DASHBOARD_CSS, DASHBOARD_SCRIPT } from './gen/browser-assets.js';

/** How long a poll waits for what it expects: long enough for a loaded machine. */
const POLL_TIMEOUT_MS = 15_000;

let scheduler: Scheduler;
let base: string;

beforeAll(async () => {
  scheduler = await Scheduler.start({ db: ':memory:', port: 0, logLevel: 'silent', apiKeys: ['key-one-0123456789', 'key-two-0123456789'] });
  base = `${scheduler.url}/dashboard`;
});
afterAll(() => scheduler?.close());

const json = (res: Response | Promise<Response>): Promise<any> => Promise.resolve(res).then((r) => r.json());
const get = (path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { headers, redirect: 'manual' });
const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, redirect: 'manual' });

async function login(key = 'key-two-0123456789'): Promise<string> {
  const res = await post('/login', new URLSearchParams({ key }).toString());
  expect(res.status).toBe(303);
  const cookie = res.headers.get('set-cookie') ?? '';
  return cookie.split(';')[0]!;
}

describe('dashboard sign-in', () => {
  it('sends a visitor without a session to the login form, and refuses the API', async () => {
    const page = await get('/');
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/dashboard/login');
    const form = await get('/login');
    expect(form.status).toBe(200);
    expect(form.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await form.text()).toContain('name="key"');
    const api = await get('/api/runs');
    expect(api.status).toBe(401);
    expect(await api.json()).toMatchObject({ code: 'unauthenticated' });
  });

  it('exchanges an API key for an HttpOnly session cookie', async () => {
    const res = await post('/login', 'key=key-one-0123456789');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/dashboard/');
    const cookie = res.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^dispatch_dashboard=[^;]+; Path=\/dashboard; HttpOnly; SameSite=Lax; Max-Age=43200$/);
    const session = cookie.split(';')[0]!;
    expect((await get('/', { cookie: session })).status).toBe(200);
    const runs = await get('/api/runs', { cookie: session });
    expect(runs.status).toBe(200);
    expect(await runs.json()).toMatchObject({ runs: [], counts: { pending: 0, failed: 0 } });
  });

  it('serves the bundled browser side, under the same policy as the pages', async () => {
    const page = await get('/', { cookie: await login() });
    const html = await page.text();
    expect(html).toContain('<script src="/dashboard/assets/app.js" defer></script>');
    expect(html).toContain('<link rel="stylesheet" href="/dashboard/assets/app.css">');
    expect(html).not.toMatch(/<script>|<style|style=/); // nothing inline
    for (const [path, type, body] of [
      ['/assets/app.js', 'text/javascript', DASHBOARD_SCRIPT],
      ['/assets/app.css', 'text/css', DASHBOARD_CSS],
    ] as const) {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain(type);
      expect(res.headers.get('content-security-policy')).toBe(page.headers.get('content-security-policy'));
      expect(await res.text()).toBe(body);
    }
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'self'; style-src 'self';/);
  });

  it('refuses a wrong key without showing what it was sent', async () => {
    const res = await post('/login', new URLSearchParams({ key: '<script>alert(1)</script>' }).toString());
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toBeNull();
    const html = await res.text();
    expect(html).toContain('That is not an API key of this scheduler.');
    expect(html).not.toContain('<script>alert');
  });

  it('slows down guessing: too many failed logins from one address wait a minute', async () => {
    // A dashboard of its own, on a clock of the test's: the minute passes when the test says so.
    let clock = Date.now();
    const dashboard = new Dashboard(scheduler, { secret: newDashboardSecret(), now: () => clock });
    const server = http.createServer((req, res) => {
      if (!dashboard.handle(req, res, new URL(req.url ?? '/', 'http://127.0.0.1'))) res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const attempt = (key: string) =>
        fetch(`http://127.0.0.1:${port}/dashboard/login`, {
          method: 'POST',
          body: `key=${key}`,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          redirect: 'manual',
        });
      for (let i = 0; i < MAX_FAILED_LOGINS_PER_MINUTE; i++) expect((await attempt('nope')).status).toBe(401);
      expect((await attempt('key-one-0123456789')).status).toBe(429);
      clock += 59_000;
      expect((await attempt('key-one-0123456789')).status).toBe(429); // still within the minute
      clock += 2_000;
      expect((await attempt('key-one-0123456789')).status).toBe(303); // a minute later
    } finally {
      dashboard.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('refuses forged, altered and signed-out sessions; accepts a bearer key', async () => {
    expect((await get('/api/runs', { cookie: 'dispatch_dashboard=zzz.yyy.xxx' })).status).toBe(401);
    scheduler.dashboardLoginUrl(); // unrelated token: no effect
    const url = scheduler.dashboardLoginUrl();
    const res = await fetch(url, { redirect: 'manual' });
    const session = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
    expect((await get('/api/runs', { cookie: session })).status).toBe(200);
    const [expires, nonce, mac] = session.slice('dispatch_dashboard='.length).split('.');
    const later = (Number.parseInt(expires!, 36) + 1000).toString(36);
    expect((await get('/api/runs', { cookie: `dispatch_dashboard=${later}.${nonce}.${mac}` })).status).toBe(401);
    const out = await post('/logout', '', { cookie: session });
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    expect((await get('/api/runs', { cookie: session })).status).toBe(401);
    expect((await get('/api/runs', { authorization: 'Bearer key-one-0123456789' })).status).toBe(200);
    expect((await get('/api/runs', { authorization: 'Bearer key-three-0123456789' })).status).toBe(401);
  });

  it('a one-time link signs in once', async () => {
    const url = scheduler.dashboardLoginUrl();
    expect(url).toMatch(new RegExp(`^${scheduler.url}/dashboard/login\\?token=[\\w-]{32}$`));
    const first = await fetch(url, { redirect: 'manual' });
    expect(first.status).toBe(303);
    expect(first.headers.get('set-cookie')).toContain('HttpOnly');
    const second = await fetch(url, { redirect: 'manual' });
    expect(second.status).toBe(401);
    expect(second.headers.get('set-cookie')).toBeNull();
    expect(await second.text()).toContain('expired or was already used');
  });

  it('a one-time link answers HEAD without being used up (link previewers), and GET signs in', async () => {
    const url = scheduler.dashboardLoginUrl();
    for (let i = 0; i < 2; i++) {
      const head = await fetch(url, { method: 'HEAD', redirect: 'manual' });
      expect(head.status).toBe(200);
      expect(head.headers.get('set-cookie')).toBeNull();
    }
    const get = await fetch(url, { redirect: 'manual' });
    expect(get.status).toBe(303);
    expect(get.headers.get('set-cookie')).toContain('HttpOnly');
    expect((await fetch(url, { method: 'HEAD', redirect: 'manual' })).status).toBe(401);
  });

  it('mints a one-time link for a bearer of an API key only', async () => {
    expect((await post('/api/login-links', '')).status).toBe(401);
    const res = await post('/api/login-links', '', { authorization: 'Bearer key-two-0123456789' });
    const { url } = (await res.json()) as { url: string };
    expect((await fetch(url, { redirect: 'manual' })).status).toBe(303);
  });
});

describe('dashboard API', () => {
  it('lists runs with counts and filters, shows one, and cancels it only from the dashboard itself', async () => {
    const session = await login();
    const [id] = await scheduler.dispatch([{ function: 'greet', endpoint: 'http://127.0.0.1:9', input: encodeArgs(['<b>Ada</b>']) }]);
    const list = await json(get('/api/runs?function=greet&state=pending,running', { cookie: session }));
    expect(list.runs.map((r: { id: string }) => r.id)).toEqual([id]);
    expect(list.counts.pending + list.counts.running).toBe(1);
    expect((await json(get('/api/runs?function=other', { cookie: session }))).runs).toEqual([]);
    expect((await get('/api/runs?state=bogus', { cookie: session })).status).toBe(400);
    expect((await get('/api/runs?after=yesterday', { cookie: session })).status).toBe(400);
    expect((await json(get(`/api/runs?after=${Date.now() + 60_000}`, { cookie: session }))).runs).toEqual([]);

    const one = await json(get(`/api/runs/${id}`, { cookie: session }));
    expect(one.call).toMatchObject({ id, function: 'greet', input: { kind: 'json', text: '[\n  "<b>Ada</b>"\n]' } });
    expect(one.tree).toMatchObject({ id, function: 'greet', children: [] });
    expect((await get('/api/runs/nope', { cookie: session })).status).toBe(404);

    // Actions need the dashboard's header and a same-origin request.
    const cancel = (headers: Record<string, string>) => post(`/api/runs/${id}/cancel`, '', { cookie: session, ...headers });
    expect((await cancel({})).status).toBe(403);
    expect((await cancel({ 'x-dispatch-dashboard': '1', origin: 'https://evil.example' })).status).toBe(403);
    const ok = await cancel({ 'x-dispatch-dashboard': '1', origin: scheduler.url });
    expect(await ok.json()).toEqual({ cancelled: 1 });
    expect((await scheduler.get(id!)).state).toBe(6); // CANCELLED
    const restart = await post(`/api/runs/${id}/restart`, '', { cookie: session, 'x-dispatch-dashboard': '1' });
    expect(await restart.json()).toEqual({ restarted: id });
    await scheduler.cancel(id!);
  });

  it('reports concurrency limits with their samples, and streams changes', async () => {
    const session = await login();
    await scheduler.dispatch([{ function: 'greet', endpoint: 'http://127.0.0.1:9', input: encodeArgs(['y']) }]);
    const read = () => json(get('/api/concurrency', { cookie: session }));
    // Connection refused: the endpoint's circuit opens (its calls wait for a probe); the limit stays.
    await expect
      .poll(async () => (await read()).circuits.find((c: { endpoint: string }) => c.endpoint === 'http://127.0.0.1:9')?.state, { timeout: POLL_TIMEOUT_MS })
      .toMatch(/^(open|probing)$/);
    const data = await read();
    expect(data.circuits.find((c: { endpoint: string }) => c.endpoint === 'http://127.0.0.1:9')).toMatchObject({ refused: expect.any(Number), lastError: expect.stringContaining('ECONNREFUSED') });
    expect(data.series.find((s: { function: string }) => s.function === 'greet')?.limit).toBe(16);
    expect(data.windowMs).toBe(15 * 60_000);
    const greet = data.series.find((s: { function: string }) => s.function === 'greet');
    expect(greet).toMatchObject({ endpoint: 'http://127.0.0.1:9', min: 1, max: 1000 });
    expect(greet.samples.at(-1)).toEqual([expect.any(Number), Math.floor(greet.limit), greet.inFlight]);

    const controller = new AbortController();
    const res = await fetch(`${base}/api/events`, { headers: { cookie: session }, signal: controller.signal });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    await scheduler.dispatch([{ function: 'greet', endpoint: 'http://127.0.0.1:9', input: encodeArgs(['x']) }]);
    let text = '';
    while (!text.includes('event: change')) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).toContain('"runs"');
    controller.abort();
  });

  it('is not served when disabled', async () => {
    const off = await Scheduler.start({ db: ':memory:', port: 0, logLevel: 'silent', dashboard: false });
    try {
      expect((await fetch(`${off.url}/dashboard/`)).status).toBe(404);
      expect(off.dashboardUrl).toBeNull();
      expect(() => off.dashboardLoginUrl()).toThrow(/disabled/);
    } finally {
      await off.close();
    }
  });
});

describe('dashboard sessions across restarts', () => {
  it('a logged-out session stays refused by the next scheduler on the same database; others hold', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dispatch-dashboard-'));
    const db = join(dir, 'dispatch.db');
    try {
      const first = await Scheduler.start({ db, port: 0, logLevel: 'silent' });
      const signIn = async (s: Scheduler) => ((await fetch(s.dashboardLoginUrl(), { redirect: 'manual' })).headers.get('set-cookie') ?? '').split(';')[0]!;
      const out = await signIn(first);
      const kept = await signIn(first);
      const runs = (s: Scheduler, cookie: string) => fetch(`${s.url}/dashboard/api/runs`, { headers: { cookie } }).then((r) => r.status);
      expect((await fetch(`${first.url}/dashboard/logout`, { method: 'POST', headers: { cookie: out }, redirect: 'manual' })).status).toBe(303);
      expect(await runs(first, out)).toBe(401);
      await first.close();
      const second = await Scheduler.start({ db, port: 0, logLevel: 'silent' });
      try {
        expect(await second.store.getMeta('api_key')).toBe(first.apiKey);
        expect(await runs(second, out)).toBe(401);
        expect(await runs(second, kept)).toBe(200);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
