/**
 * An app's endpoint under abuse, with real processes: a signed RunRequest
 * sent twice, an endpoint on every interface without a key, and many large
 * unsigned bodies at once. The app is test/e2e/fixtures/guarded-app.mjs on
 * the built packages, configured by its environment as a deployment is.
 */
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { DispatchClient, Status } from '@dispatch/core';
import { encodeArgs, generateSigningKeyPair, proto, publicKeyToBase64, RUN_PATH } from '@dispatch/core/protocol';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CLEAN_ENV, DISPATCH_BIN, type Proc, killAll, requireBuilt, start, until } from './helpers/processes.js';

// Real processes and 60 bodies of 15 MB at once: seconds on an idle machine, near the 30 s
// default on a loaded one (two cores under the whole suite). A liveness
// guard, not a speed check.
vi.setConfig({ testTimeout: 120_000 });

const APP = fileURLToPath(new URL('./fixtures/guarded-app.mjs', import.meta.url));
const MB = 1024 * 1024;

const cleanEnv = CLEAN_ENV;

/** Starts the app with `env`; resolves once it listens, with its URL through 127.0.0.1. */
async function startApp(env: Record<string, string>): Promise<{ proc: Proc; url: string }> {
  const proc = start(process.execPath, [APP], { env: { ...cleanEnv, DISPATCH_ENDPOINT_URL: 'http://127.0.0.1:1', ...env } });
  const line = await proc.waitFor(/^listening /);
  const port = new URL(line.slice('listening '.length)).port;
  return { proc, url: `http://127.0.0.1:${port}` };
}

/** The app's peak resident set size, in bytes, as the process itself reports it. */
async function peakRss(proc: Proc): Promise<number> {
  const seen = proc.stdout.filter((l) => l.startsWith('maxrss ')).length;
  proc.child.kill('SIGUSR2');
  await until(() => proc.stdout.filter((l) => l.startsWith('maxrss ')).length > seen, 'the app to report its peak RSS');
  const line = proc.stdout.filter((l) => l.startsWith('maxrss ')).at(-1) as string;
  return Number(line.slice('maxrss '.length)) * 1024;
}

/** POSTs `body` to the Run route; resolves with the HTTP status, or `reset` if the connection closed first. */
function post(url: string, body: Uint8Array, headers: Record<string, string> = {}): Promise<number | 'reset'> {
  return new Promise((resolve) => {
    const req = http.request(`${url}${RUN_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/proto', 'content-length': String(body.length), ...headers },
      agent: false,
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve('reset'));
    req.end(body);
  });
}

beforeAll(() => requireBuilt());

describe('a signed RunRequest cannot be replayed', () => {
  let scheduler: Proc | undefined;
  let app: { proc: Proc; url: string } | undefined;
  let proxy: http.Server | undefined;
  afterAll(async () => {
    proxy?.close();
    proxy?.closeAllConnections();
    await killAll([scheduler, app?.proc]);
  });

  it('the endpoint runs the scheduler’s request once and refuses the same request sent again (403)', async () => {
    scheduler = start(process.execPath, [DISPATCH_BIN, 'serve', '--db', ':memory:', '--port', '0', '--ready-json', '--log-level', 'warn'], {
      env: cleanEnv,
    });
    const ready = JSON.parse(await scheduler.waitFor(/^\{/)) as { url: string; apiKey: string; verificationKey: string };
    app = await startApp({ DISPATCH_ENDPOINT_ADDR: '127.0.0.1:0', DISPATCH_VERIFICATION_KEY: ready.verificationKey });
    const target = new URL(app.url);

    // Between the scheduler and the app, a man in the middle who sends each request twice.
    const replays: Array<{ status: number; body: string }> = [];
    proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const body = Buffer.concat(chunks);
        const forward = () =>
          new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
            const out = http.request(
              { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers, agent: false },
              (answer) => {
                const parts: Buffer[] = [];
                answer.on('data', (c: Buffer) => parts.push(c));
                answer.on('end', () => resolve({ status: answer.statusCode ?? 0, headers: answer.headers, body: Buffer.concat(parts) }));
              },
            );
            out.on('error', reject);
            out.end(body);
          });
        const first = await forward();
        const second = await forward(); // the same bytes, the same signature
        replays.push({ status: second.status, body: second.body.toString('utf8') });
        res.writeHead(first.status, { 'content-type': first.headers['content-type'] ?? 'application/octet-stream' });
        res.end(first.body);
      });
    });
    await new Promise<void>((resolve) => proxy!.listen(0, '127.0.0.1', resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;

    const client = new DispatchClient({ apiUrl: ready.url, apiKey: ready.apiKey });
    const [id] = await client.dispatch([{ function: 'greet', endpoint: proxyUrl, input: encodeArgs(['ada']) }]);
    const result = await client.wait(id!, { timeoutMs: 30_000 });
    expect(result.done && result.status).toBe(Status.OK);
    expect(replays).toHaveLength(1);
    expect(replays[0]!.status).toBe(403);
    expect(JSON.parse(replays[0]!.body)).toMatchObject({ code: 'permission_denied', message: expect.stringMatching(/signature already used/) });
    expect(app.proc.stdout.filter((l) => l.startsWith('ran greet '))).toEqual([`ran greet ${id}`]); // once
  });
});

describe('an endpoint without a verification key', () => {
  const apps: Proc[] = [];
  afterAll(() => killAll(apps));
  const runRequest = proto.RunRequest.encode({ function: 'greet', dispatchId: 'unsigned-1', input: encodeArgs(['mallory']) });

  it('refuses unsigned requests when it listens on 0.0.0.0 (401 naming the fix), accepts them on loopback with a warning, and on 0.0.0.0 when the app opts out', async () => {
    const wide = await startApp({ DISPATCH_ENDPOINT_ADDR: '0.0.0.0:0' });
    const local = await startApp({ DISPATCH_ENDPOINT_ADDR: '127.0.0.1:0' });
    const optedOut = await startApp({ DISPATCH_ENDPOINT_ADDR: '0.0.0.0:0', DISPATCH_VERIFICATION_KEY: 'none' });
    apps.push(wide.proc, local.proc, optedOut.proc);

    const refused = await fetch(`${wide.url}${RUN_PATH}`, { method: 'POST', headers: { 'content-type': 'application/proto' }, body: runRequest });
    expect(refused.status).toBe(401);
    const error = (await refused.json()) as { code: string; message: string };
    expect(error.code).toBe('unauthenticated');
    expect(error.message).toMatch(/listens on 0\.0\.0\.0, beyond loopback, and has no verification key/);
    expect(error.message).toMatch(/set DISPATCH_VERIFICATION_KEY to the scheduler's public key/);
    expect(error.message).toMatch(/DISPATCH_VERIFICATION_KEY=none/);
    expect(wide.proc.stdout.filter((l) => l.startsWith('ran greet'))).toEqual([]);

    const accepted = await fetch(`${local.url}${RUN_PATH}`, { method: 'POST', headers: { 'content-type': 'application/proto' }, body: runRequest });
    expect(accepted.status).toBe(200);
    expect(local.proc.stderr.join('\n')).toMatch(/DISPATCH_VERIFICATION_KEY is not set: requests to this endpoint are accepted without signature verification on loopback/);

    const optOut = await fetch(`${optedOut.url}${RUN_PATH}`, { method: 'POST', headers: { 'content-type': 'application/proto' }, body: runRequest });
    expect(optOut.status).toBe(200);
    expect(optedOut.proc.stderr.join('\n')).toMatch(/signature verification is turned off/);
  });
});

describe('many large unsigned bodies at once', () => {
  const apps: Proc[] = [];
  afterAll(() => killAll(apps));
  const body = new Uint8Array(15 * MB).fill(7);

  it('60 concurrent unsigned 15 MB bodies to an endpoint with a key: each refused before its body is read, peak RSS under 150 MB', async () => {
    const verificationKey = publicKeyToBase64(generateSigningKeyPair().publicKey);
    const app = await startApp({ DISPATCH_ENDPOINT_ADDR: '127.0.0.1:0', DISPATCH_VERIFICATION_KEY: verificationKey });
    apps.push(app.proc);
    const before = await peakRss(app.proc);
    const results = await Promise.all(Array.from({ length: 60 }, () => post(app.url, body)));
    const peak = await peakRss(app.proc);
    console.info(`60 × 15 MB unsigned to an endpoint with a key: peak RSS ${(before / MB).toFixed(1)} MB before, ${(peak / MB).toFixed(1)} MB after; answers ${summary(results)}`);
    expect(results.filter((r) => r !== 401 && r !== 'reset')).toEqual([]);
    expect(results.filter((r) => r === 401).length).toBeGreaterThan(0);
    expect(peak).toBeLessThan(150 * MB);
    expect(await post(app.url, new Uint8Array(10))).toBe(401); // still serving
  });

  it('60 concurrent 15 MB bodies to an endpoint on loopback without a key: read a few at a time, within the body budget', async () => {
    const app = await startApp({ DISPATCH_ENDPOINT_ADDR: '127.0.0.1:0' });
    apps.push(app.proc);
    const before = await peakRss(app.proc);
    const results = await Promise.all(Array.from({ length: 60 }, () => post(app.url, body)));
    const peak = await peakRss(app.proc);
    const line = app.proc.stdout.filter((l) => l.startsWith('budget ')).at(-1) ?? '';
    const [, reserved, limit] = /^budget peak (\d+) limit (\d+)$/.exec(line) ?? [];
    console.info(
      `60 × 15 MB to an endpoint without a key (bodies read): peak RSS ${(before / MB).toFixed(1)} MB before, ${(peak / MB).toFixed(1)} MB after; ` +
        `most body bytes reserved at once ${(Number(reserved) / MB).toFixed(1)} MB (budget ${(Number(limit) / MB).toFixed(0)} MiB); answers ${summary(results)}`,
    );
    // Every body read (and refused as undecodable), none waiting past the budget's limit...
    expect(results).toEqual(Array(60).fill(400));
    // ...and never more than the budget of bytes being read at once: four bodies of 15 MB in 64 MiB.
    expect(Number(limit)).toBe(64 * MB);
    expect(Number(reserved)).toBeGreaterThanOrEqual(15 * MB);
    expect(Number(reserved)).toBeLessThanOrEqual(Number(limit));
  });
});

function summary(results: Array<number | 'reset'>): string {
  const counts = new Map<string, number>();
  for (const r of results) counts.set(String(r), (counts.get(String(r)) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n}× ${k}`).join(', ');
}
