/**
 * The dashboard, served by the scheduler's API server under `/dashboard/`:
 * pages, static assets and a small JSON API (with a stream of server-sent
 * events) over the scheduler and its store. Behind the scheduler's API keys
 * (see `auth.ts`).
 *
 * Routes:
 * - `GET /dashboard/` the app (a login form without a session),
 *   `GET|POST /dashboard/login` (`?token=` a one-time link, used up by a GET
 *   only), `POST /dashboard/logout` (kept in the store)
 * - `GET /dashboard/assets/app.js|app.css`: the browser side (`browser/`),
 *   bundled when the package is built; nothing is built at run time
 * - `GET /dashboard/api/runs?state=&function=&after=&before=&roots=&cursor=&limit=`
 * - `GET /dashboard/api/runs/:id`, `POST /dashboard/api/runs/:id/cancel|restart|resume`
 * - `GET /dashboard/api/concurrency`, `GET /dashboard/api/events` (SSE)
 * - `GET /dashboard/api/schedules`, `POST /dashboard/api/schedules/:name/pause|resume`
 * - `POST /dashboard/api/login-links` (bearer key only): a new one-time link
 * @module
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { ConcurrencySnapshot } from '../run/concurrency.js';
import type { SchedulerEvents } from '../events.js';
import { SchedulerError } from '../errors.js';
import { StoreUnavailableError } from '../store/faults.js';
import { CALL_STATES, type CallState, type ListFilter, type Store } from '../store/store.js';
import type { CircuitView, ConcurrencyResponse, RunResponse, RunsResponse, ScheduleView, SchedulesResponse } from './api-types.js';
import type { ScheduleRecord } from '../store/schedule-store.js';
import { DashboardAuth, readCookie, SESSION_COOKIE, SESSION_TTL_MS } from './auth.js';
import type { FailureThrottle } from '../api/failure-throttle.js';
import { ConcurrencyHistory, HISTORY_WINDOW_MS } from './concurrency-history.js';
import { appPage, loginPage } from './pages.js';
import { callView, runSummary, runTree } from './views.js';

/** The path the dashboard is served under. */
export const DASHBOARD_PATH = '/dashboard';
/** Key of the session secret in the store's meta table. */
export const DASHBOARD_SECRET_META = 'dashboard_session_secret';

/**
 * What the dashboard needs of a scheduler (a {@link Scheduler} is one).
 * @example
 * const dashboard = new Dashboard(scheduler, { secret });
 */
export interface DashboardHost {
  readonly url: string;
  readonly apiKeys: readonly string[];
  readonly store: Store;
  cancel(id: string): Promise<number>;
  restart(id: string): Promise<unknown>;
  resume(id: string): Promise<unknown>;
  concurrency(endpoint: string, fn: string): ConcurrencySnapshot;
  concurrencyAll(): ConcurrencySnapshot[];
  /** The schedules apps declared. */
  readonly schedules: {
    list(): Promise<ScheduleRecord[]>;
    pause(name: string): Promise<unknown>;
    resume(name: string): Promise<unknown>;
  };
  /** Endpoints whose circuit is not closed (absent: none). */
  circuits?(): CircuitView[];
  on<K extends keyof SchedulerEvents>(event: K, listener: (...args: SchedulerEvents[K]) => void): unknown;
  off<K extends keyof SchedulerEvents>(event: K, listener: (...args: SchedulerEvents[K]) => void): unknown;
}

/**
 * Options of a {@link Dashboard}.
 * @example
 * { secret: await store.initMeta(DASHBOARD_SECRET_META, newDashboardSecret()) }
 */
export interface DashboardOptions {
  /** Random secret kept in the store, shared by the instances using it (see {@link newDashboardSecret}). */
  secret: string;
  /** Clock of sessions, login links and the login throttle, in ms since the epoch (default `Date.now`; tests). */
  now?: () => number;
  /** Failed keys per client address, shared with the API server (default: one of its own). */
  throttle?: FailureThrottle;
}

/** A fresh random session secret. */
export function newDashboardSecret(): string {
  return randomBytes(32).toString('base64url');
}

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin', // not no-referrer: with it, Chromium sends `Origin: null` on form posts
  'cache-control': 'no-store',
};

type BrowserAssets = typeof import('./gen/browser-assets.js');
let browserAssets: Promise<BrowserAssets> | null = null;

/**
 * The browser side, bundled by the package's build (scripts/build-dashboard.mjs
 * writes `gen/browser-assets.ts`, compiled with the rest), loaded at its first
 * request: nothing is built or read from disk at run time.
 */
function loadBrowserAssets(): Promise<BrowserAssets> {
  browserAssets ??= import('./gen/browser-assets.js').catch((err: unknown) => {
    browserAssets = null;
    throw new SchedulerError(
      'internal',
      `the dashboard's browser side is not built (${(err as Error).message}): run \`pnpm build\` in packages/scheduler`,
    );
  });
  return browserAssets;
}

function send(res: http.ServerResponse, status: number, type: string, body: string, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
}

function redirect(res: http.ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(303, { ...SECURITY_HEADERS, location, 'content-length': 0, ...headers });
  res.end();
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new SchedulerError('resource_exhausted', `the body is larger than ${limit} bytes`, 413));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Parses a time filter: milliseconds since the epoch or an ISO 8601 date. */
function parseTime(name: string, text: string | null): number | undefined {
  if (text === null || text === '') return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(n)) throw new SchedulerError('invalid_argument', `${name} must be a time (ms since the epoch or ISO 8601), got ${JSON.stringify(text)}`);
  return n;
}

/**
 * The dashboard of one scheduler.
 * @example
 * const dashboard = new Dashboard(scheduler, { secret });
 * server.on('request', (req, res) => dashboard.handle(req, res, new URL(req.url!, 'http://x')) || notFound(res));
 */
export class Dashboard {
  readonly auth: DashboardAuth;
  readonly #history: ConcurrencyHistory;
  readonly #streams = new Set<http.ServerResponse>();
  readonly #listeners: Array<() => void> = [];
  #pending: { kinds: Set<string>; timer: NodeJS.Timeout } | null = null;
  #heartbeat: NodeJS.Timeout | null = null;

  readonly #host: DashboardHost;
  constructor(
    host: DashboardHost,
    options: DashboardOptions,
  ) {
    this.#host = host;
    this.auth = new DashboardAuth(host.apiKeys, options.secret, {
      revocations: host.store,
      ...(options.now ? { now: options.now } : {}),
      ...(options.throttle ? { throttle: options.throttle } : {}),
    });
    this.#history = new ConcurrencyHistory(() => host.concurrencyAll());
    this.#history.start();
    const listen = <K extends keyof SchedulerEvents>(event: K, fn: (...args: SchedulerEvents[K]) => void) => {
      host.on(event, fn);
      this.#listeners.push(() => host.off(event, fn));
    };
    listen('concurrency', (s) => {
      this.#history.record(s);
      this.#notify('concurrency');
    });
    listen('circuit', () => this.#notify('concurrency'));
    listen('attempt', () => this.#notify('runs'));
    listen('finished', () => this.#notify('runs'));
    listen('dispatched', () => {
      this.#notify('runs');
      this.#notify('schedules');
    });
  }

  /** The dashboard's URL. */
  get url(): string {
    return `${this.#host.url}${DASHBOARD_PATH}/`;
  }

  /** A new one-time login link, valid for an hour. */
  loginUrl(): string {
    return `${this.#host.url}${DASHBOARD_PATH}/login?token=${this.auth.mintLoginToken()}`;
  }

  /** Ends the event streams and stops sampling. */
  close(): void {
    this.#history.stop();
    for (const off of this.#listeners.splice(0)) off();
    if (this.#pending) clearTimeout(this.#pending.timer);
    this.#pending = null;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    for (const res of this.#streams) res.end();
    this.#streams.clear();
  }

  /**
   * Serves a request under `/dashboard`; returns false for other paths.
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): boolean {
    const path = url.pathname;
    if (path !== DASHBOARD_PATH && !path.startsWith(`${DASHBOARD_PATH}/`)) return false;
    this.#route(req, res, url, path.slice(DASHBOARD_PATH.length) || '').catch((err: unknown) => {
      // A failing store is shown as what it is (disk full, database unreachable), not as an internal error.
      const e =
        err instanceof SchedulerError
          ? err
          : err instanceof StoreUnavailableError
            ? new SchedulerError('unavailable', err.message)
            : new SchedulerError('internal', `internal error in the dashboard: ${(err as Error).message}`);
      if (res.headersSent) res.destroy();
      else sendJson(res, e.httpStatus, { code: e.code, message: e.message });
    });
    return true;
  }

  /** A session cookie that holds, or a bearer API key (counted by the throttle when wrong). */
  async #session(req: http.IncomingMessage): Promise<boolean> {
    if (await this.auth.checkSession(readCookie(req.headers.cookie, SESSION_COOKIE))) return true;
    return req.headers.authorization !== undefined && this.#bearer(req);
  }

  /** True for a right bearer key; a wrong one counts against the client, and past the limit the answer is 429. */
  #bearer(req: http.IncomingMessage): boolean {
    const client = req.socket.remoteAddress ?? '';
    if (!this.auth.mayTryLogin(client)) {
      req.resume();
      throw new SchedulerError(
        'resource_exhausted',
        `too many requests with a wrong API key from ${client}: wait ${this.auth.throttle.retryAfterSeconds(client)} s`,
      );
    }
    if (this.auth.checkBearer(req.headers.authorization)) return true;
    this.auth.failedLogin(client);
    return false;
  }

  #cookie(req: http.IncomingMessage, value: string, maxAgeS: number): string {
    const secure = req.headers['x-forwarded-proto'] === 'https' || (req.socket as { encrypted?: boolean }).encrypted === true;
    return `${SESSION_COOKIE}=${value}; Path=${DASHBOARD_PATH}; HttpOnly; SameSite=Lax; Max-Age=${maxAgeS}${secure ? '; Secure' : ''}`;
  }

  /** Refuses a state-changing request that another site could have sent. */
  #checkSameOrigin(req: http.IncomingMessage): void {
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null') {
      let host = '';
      try {
        host = new URL(origin).host;
      } catch {
        // fall through: refused
      }
      if (host !== req.headers.host) throw new SchedulerError('permission_denied', `requests from ${origin} are not accepted`, 403);
    } else if (origin === 'null') {
      throw new SchedulerError('permission_denied', 'requests from an opaque origin are not accepted', 403);
    }
  }

  async #route(req: http.IncomingMessage, res: http.ServerResponse, url: URL, path: string): Promise<void> {
    const method = req.method ?? 'GET';
    if (path === '' && (method === 'GET' || method === 'HEAD')) return redirect(res, `${DASHBOARD_PATH}/`);
    if (path === '/assets/app.js') {
      return send(res, 200, 'text/javascript; charset=utf-8', (await loadBrowserAssets()).DASHBOARD_SCRIPT, { 'cache-control': 'no-cache' });
    }
    if (path === '/assets/app.css') {
      return send(res, 200, 'text/css; charset=utf-8', (await loadBrowserAssets()).DASHBOARD_CSS, { 'cache-control': 'no-cache' });
    }
    if (path === '/login') return this.#login(req, res, url);
    if (path === '/logout' && method === 'POST') {
      this.#checkSameOrigin(req);
      await this.auth.revoke(readCookie(req.headers.cookie, SESSION_COOKIE));
      return redirect(res, `${DASHBOARD_PATH}/login`, { 'set-cookie': this.#cookie(req, '', 0) });
    }
    if (path === '/api/login-links' && method === 'POST') {
      if (!this.#bearer(req)) throw new SchedulerError('unauthenticated', 'send Authorization: Bearer <API key>');
      return sendJson(res, 200, { url: this.loginUrl() });
    }
    if (path.startsWith('/api/')) {
      if (!(await this.#session(req))) {
        req.resume();
        throw new SchedulerError('unauthenticated', 'sign in to the dashboard first');
      }
      return this.#api(req, res, url, path.slice('/api'.length), method);
    }
    if (path === '/' && (method === 'GET' || method === 'HEAD')) {
      if (!(await this.#session(req))) return redirect(res, `${DASHBOARD_PATH}/login`);
      return send(res, 200, 'text/html; charset=utf-8', appPage());
    }
    req.resume();
    throw new SchedulerError('not_found', `no dashboard page at ${url.pathname}`);
  }

  async #login(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const client = req.socket.remoteAddress ?? '';
    const page = (status: number, error: string) => send(res, status, 'text/html; charset=utf-8', loginPage(error));
    if (req.method === 'GET' || req.method === 'HEAD') {
      const token = url.searchParams.get('token');
      if (token === null) return (await this.#session(req)) ? redirect(res, `${DASHBOARD_PATH}/`) : page(200, '');
      if (req.method === 'HEAD') {
        // A link previewer's look: the link stays usable for the GET of the person it was sent to.
        return this.auth.peekLoginToken(token) ? page(200, '') : page(401, 'This login link has expired or was already used.');
      }
      if (!this.auth.redeemLoginToken(token)) {
        return page(401, 'This login link has expired or was already used. Sign in with the API key (DISPATCH_API_KEY).');
      }
      return redirect(res, `${DASHBOARD_PATH}/`, { 'set-cookie': this.#cookie(req, this.auth.newSession(), SESSION_TTL_MS / 1000) });
    }
    if (req.method !== 'POST') throw new SchedulerError('unimplemented', `${url.pathname} takes GET or POST`, 405);
    this.#checkSameOrigin(req);
    const body = new URLSearchParams(await readBody(req, 16_384));
    if (!this.auth.mayTryLogin(client)) return page(429, 'Too many failed attempts: wait a minute and try again.');
    if (!this.auth.checkKey(body.get('key') ?? '')) {
      this.auth.failedLogin(client);
      return page(401, 'That is not an API key of this scheduler.');
    }
    return redirect(res, `${DASHBOARD_PATH}/`, { 'set-cookie': this.#cookie(req, this.auth.newSession(), SESSION_TTL_MS / 1000) });
  }

  async #api(req: http.IncomingMessage, res: http.ServerResponse, url: URL, path: string, method: string): Promise<void> {
    if (method === 'GET' && path === '/runs') return sendJson(res, 200, await this.#runs(url.searchParams));
    if (method === 'GET' && path === '/concurrency') {
      this.#history.sample();
      const body: ConcurrencyResponse = {
        now: Date.now(),
        windowMs: HISTORY_WINDOW_MS,
        series: this.#history.series(),
        circuits: this.#host.circuits?.() ?? [],
      };
      return sendJson(res, 200, body);
    }
    if (method === 'GET' && path === '/events') return this.#events(req, res);
    if (method === 'GET' && path === '/schedules') {
      const body: SchedulesResponse = { now: Date.now(), schedules: (await this.#host.schedules.list()).map(scheduleView) };
      return sendJson(res, 200, body);
    }
    const action = /^\/schedules\/([^/]+)\/(pause|resume)$/.exec(path);
    if (action && method === 'POST') {
      this.#checkSameOrigin(req);
      if (req.headers['x-dispatch-dashboard'] !== '1') {
        throw new SchedulerError('permission_denied', 'actions need the header x-dispatch-dashboard: 1', 403);
      }
      req.resume();
      const name = decodeURIComponent(action[1]!);
      await (action[2] === 'pause' ? this.#host.schedules.pause(name) : this.#host.schedules.resume(name));
      this.#notify('schedules');
      return sendJson(res, 200, { [action[2] === 'pause' ? 'paused' : 'resumed']: name });
    }
        const m = /^\/runs\/([^/]+)(?:\/(cancel|restart|resume))?$/.exec(path);
    if (m) {
      const id = decodeURIComponent(m[1]!);
      if (!m[2] && method === 'GET') return sendJson(res, 200, await this.#run(id));
      if (m[2] && method === 'POST') {
        this.#checkSameOrigin(req);
        if (req.headers['x-dispatch-dashboard'] !== '1') {
          throw new SchedulerError('permission_denied', 'actions need the header x-dispatch-dashboard: 1', 403);
        }
        req.resume();
        if (m[2] === 'cancel') return sendJson(res, 200, { cancelled: await this.#host.cancel(id) });
        if (m[2] === 'resume') {
          await this.#host.resume(id);
          return sendJson(res, 200, { resumed: id });
        }
        await this.#host.restart(id);
        return sendJson(res, 200, { restarted: id });
      }
    }
    req.resume();
    throw new SchedulerError('not_found', `no dashboard API at ${method} ${url.pathname}`);
  }

  async #runs(q: URLSearchParams): Promise<RunsResponse> {
    const filter: ListFilter = {};
    const states = (q.get('state') ?? '').split(',').filter(Boolean);
    for (const s of states) {
      if (!CALL_STATES.includes(s as CallState)) throw new SchedulerError('invalid_argument', `unknown state ${JSON.stringify(s)}`);
    }
    if (states.length) filter.states = states as CallState[];
    const fn = q.get('function')?.trim();
    if (fn) filter.function = fn;
    const after = parseTime('after', q.get('after'));
    const before = parseTime('before', q.get('before'));
    if (after !== undefined) filter.createdAfter = after;
    if (before !== undefined) filter.createdBefore = before;
    if (q.get('roots') === '1') filter.rootsOnly = true;
    const limit = Number(q.get('limit') ?? '50');
    filter.limit = Number.isInteger(limit) && limit >= 1 && limit <= 500 ? limit : 50;
    const cursor = q.get('cursor');
    if (cursor) filter.cursor = cursor;
    let page: Awaited<ReturnType<Store['listCalls']>>;
    try {
      page = await this.#host.store.listCalls(filter);
    } catch (err) {
      if (err instanceof RangeError) throw new SchedulerError('invalid_argument', err.message);
      throw err;
    }
    const functions = [...new Set(this.#host.concurrencyAll().map((c) => c.function))].sort();
    return { now: Date.now(), runs: page.calls.map(runSummary), counts: page.counts, nextCursor: page.nextCursor, functions };
  }

  async #run(id: string): Promise<RunResponse> {
    const rec = await this.#host.store.getCall(id);
    if (!rec) throw new SchedulerError('not_found', `no call with dispatch ID ${JSON.stringify(id)}`);
    const [call, tree] = await Promise.all([
      callView(this.#host.store, rec, this.#host.concurrency(rec.endpoint, rec.function)),
      runTree(this.#host.store, rec.rootId),
    ]);
    return { now: Date.now(), call, tree: tree.tree, truncated: tree.truncated };
  }

  #events(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
    res.write('retry: 3000\n\n');
    this.#streams.add(res);
    req.on('close', () => this.#streams.delete(res));
    if (!this.#heartbeat) {
      this.#heartbeat = setInterval(() => {
        for (const s of this.#streams) s.write(': keep-alive\n\n');
      }, 15_000);
      this.#heartbeat.unref();
    }
  }

  /** Tells the open pages that something changed (at most every 250 ms). */
  #notify(kind: string): void {
    if (this.#streams.size === 0) return;
    if (this.#pending) {
      this.#pending.kinds.add(kind);
      return;
    }
    const timer = setTimeout(() => {
      const kinds = this.#pending?.kinds ?? new Set<string>();
      this.#pending = null;
      const line = `event: change\ndata: ${JSON.stringify({ kinds: [...kinds] })}\n\n`;
      for (const s of this.#streams) s.write(line);
    }, 250);
    timer.unref();
    this.#pending = { kinds: new Set([kind]), timer };
  }
}

/** A stored schedule as the schedules page shows it. */
function scheduleView(s: ScheduleRecord): ScheduleView {
  return {
    name: s.name,
    endpoint: s.endpoint,
    cron: s.cron,
    timeZone: s.timeZone,
    missed: s.missed,
    paused: s.paused,
    nextTickAt: s.paused ? null : s.nextTickAt,
    lastTickAt: s.lastTickAt,
    lastDispatchId: s.lastDispatchId,
    ticks: s.ticks,
    skippedTicks: s.skippedTicks,
  };
}
