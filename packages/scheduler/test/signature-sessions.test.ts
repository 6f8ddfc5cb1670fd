/**
 * Signature sessions over HTTP (this project's extension, README "Signature
 * sessions"): an endpoint of this SDK that verifies signatures says it
 * accepts sessions; the scheduler offers one (an X25519 key, covered by the
 * request's Ed25519 signature), the answer opens it, and the following
 * requests are signed with HMAC-SHA256 under the agreed key. An endpoint
 * that forgot the session (a restart) refuses it, and the scheduler sends
 * the request again with Ed25519; the call runs once.
 */
import { Status } from '@dispatch/core';
import { encodeArgs, RUN_PATH, SESSION_ACCEPT_HEADER, SESSION_HEADER, SESSION_OFFER_HEADER } from '@dispatch/core/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { Scheduler } from '../src/scheduler.js';
import { post, type RecordingApp, recordingApp, type Seen } from './support/recording-app.js';
import { ok, startEndpoint, startTestScheduler, type TestEndpoint } from './support/test-endpoint.js';

let scheduler: Scheduler | undefined;
const apps: RecordingApp[] = [];
let foreign: TestEndpoint | undefined;
afterEach(async () => {
  await scheduler?.close();
  for (const a of apps.splice(0)) await a.close();
  await foreign?.close();
  scheduler = undefined;
  foreign = undefined;
});

/** How a recorded request was signed. */
function signing(s: Seen): 'ed25519' | 'ed25519+offer' | 'session' {
  const input = String(s.headers['signature-input'] ?? '');
  if (input.includes('alg="hmac-sha256"')) return 'session';
  expect(input).toContain('alg="ed25519"');
  return input.includes(`"${SESSION_OFFER_HEADER}"`) ? 'ed25519+offer' : 'ed25519';
}

/** The scheduler's `dispatch_signature_sessions_total` for an endpoint and outcome (0 when absent). */
async function sessionsCounted(endpoint: string, outcome: string): Promise<number> {
  const line = (await scheduler!.metrics.text()).split('\n').find((l) => l.startsWith(`dispatch_signature_sessions_total{endpoint="${endpoint}",outcome="${outcome}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

/** Dispatches `count` calls of `noop` one after another (no batches), each waited for and checked. */
async function callsInTurn(url: string, count: number, from = 0): Promise<void> {
  for (let i = from; i < from + count; i++) {
    const [id] = await scheduler!.dispatch([{ function: 'noop', endpoint: url, input: encodeArgs([i]) }]);
    const r = await scheduler!.wait(id!, 30_000);
    expect(r.done && r.status === Status.OK, JSON.stringify(r.done ? r.result.error : r.state)).toBe(true);
    expect((await scheduler!.get(id!)).attempts).toBe(1);
  }
}

async function noopApp(runs: number[], options = {}): Promise<RecordingApp> {
  const app = await recordingApp(
    scheduler!,
    (d) => {
      d.function(async function noop(i: number) {
        runs.push(i);
        return i;
      });
    },
    options,
  );
  apps.push(app);
  return app;
}

describe('signature sessions', () => {
  it('signs with Ed25519, offers a session once the endpoint accepts them, then signs with HMAC-SHA256', async () => {
    scheduler = await startTestScheduler();
    const runs: number[] = [];
    const app = await noopApp(runs);
    await callsInTurn(app.url, 6);
    expect(runs).toEqual([0, 1, 2, 3, 4, 5]);
    const how = app.seen.map(signing);
    // The first request learns that the endpoint accepts sessions; the second offers one; the rest use it.
    expect(how).toEqual(['ed25519', 'ed25519+offer', 'session', 'session', 'session', 'session']);
    expect(app.seen.every((s) => s.status === 200)).toBe(true);
    expect(app.seen[0]!.responseHeaders[SESSION_ACCEPT_HEADER]).toBe('x25519');
    const opened = app.seen[1]!.responseHeaders[SESSION_HEADER];
    expect(opened).toMatch(/^id="[A-Za-z0-9_-]+", key=:[A-Za-z0-9+/]{43}=:, expires=\d+$/);
    const id = /id="([^"]+)"/.exec(opened!)![1]!;
    expect(app.seen[2]!.headers['signature-input']).toContain(`keyid="${id}"`);
    // The answer's key is the endpoint's public half: the key itself never crosses the wire.
    expect(app.seen[2]!.headers.signature).not.toContain(/key=:([^:]+):/.exec(opened!)![1]!);

    // A session's signature is refused a second time like any other, and covers the body.
    const { host: _host, 'content-length': _length, connection: _connection, ...signed } = app.seen[3]!.headers;
    const replayed = await post(`${app.url}${RUN_PATH}`, signed, app.seen[3]!.body);
    expect(replayed.status).toBe(403);
    expect(replayed.body).toMatch(/signature already used/);
    const tampered = Buffer.from(app.seen[4]!.body);
    tampered[tampered.length - 1]! ^= 1;
    const { host: _h, 'content-length': _l, connection: _c, ...signed4 } = app.seen[4]!.headers;
    const forged = await post(`${app.url}${RUN_PATH}`, signed4, tampered);
    expect(forged.status).toBe(403);
    expect(runs).toHaveLength(6);
    expect(await sessionsCounted(app.url, 'opened')).toBe(1);
  });

  it('sends a request again with Ed25519 when the endpoint forgot its session (a restart); the call runs once', async () => {
    scheduler = await startTestScheduler();
    const runs: number[] = [];
    const app = await noopApp(runs);
    await callsInTurn(app.url, 3);
    expect(app.seen.map(signing).at(-1)).toBe('session');
    app.restart();
    const before = app.seen.length;
    await callsInTurn(app.url, 3, 3);
    const after = app.seen.slice(before);
    // The session is refused before the body is read (401); the same call goes again, offering a new session, and runs.
    expect(after.map((s) => [signing(s), s.status])).toEqual([
      ['session', 401],
      ['ed25519+offer', 200],
      ['session', 200],
      ['session', 200],
    ]);
    expect(after[0]!.body).toHaveLength(0);
    expect(runs).toEqual([0, 1, 2, 3, 4, 5]);
    expect([await sessionsCounted(app.url, 'opened'), await sessionsCounted(app.url, 'refused')]).toEqual([2, 1]);
  });

  it("keeps a session's signatures out of the endpoint's replay cache: a small cache never fills under sustained session traffic", async () => {
    scheduler = await startTestScheduler();
    const runs: number[] = [];
    // Remembering every signature for its 65 s of validity, a cache of 8 would be full after 8 requests (then 503s).
    const app = await noopApp(runs, { replayCacheEntries: 8 });
    await callsInTurn(app.url, 40);
    expect(runs).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(app.seen.every((s) => s.status === 200)).toBe(true);
    expect(app.seen.map(signing).slice(2)).toEqual(Array(38).fill('session'));
    // The session signatures carry their sequence numbers: 1, 2, 3, …
    expect(app.seen.slice(2).map((s) => /;nonce="(\d+)"/.exec(String(s.headers['signature-input']))?.[1])).toEqual(
      Array.from({ length: 38 }, (_, i) => String(i + 1)),
    );
  });

  it('gives up sessions with an endpoint that forgets them at once (several processes behind one URL): Ed25519 only', async () => {
    scheduler = await startTestScheduler();
    const runs: number[] = [];
    const app = await noopApp(runs);
    const other = app.dispatch;
    const one = app.restart();
    // Two processes behind one address, taking turns: each knows only the sessions it opened.
    app.serveWith((i) => (i % 2 === 0 ? one : other));
    await callsInTurn(app.url, 20);
    expect(runs).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const how = app.seen.map(signing);
    // Three sessions refused after a use or two, then Ed25519 without offers, answered 200.
    expect(app.seen.filter((s) => s.status === 401)).toHaveLength(3);
    expect(how.slice(-10)).toEqual(Array(10).fill('ed25519'));
    expect(app.seen.slice(-10).every((s) => s.status === 200)).toBe(true);
    expect([await sessionsCounted(app.url, 'refused'), await sessionsCounted(app.url, 'given_up')]).toEqual([2, 1]);
  });

  it('never offers a session to an endpoint that does not accept them (another SDK, or signatureSessions: false)', async () => {
    scheduler = await startTestScheduler();
    foreign = await startEndpoint(() => ok('done'));
    const ids = await scheduler.dispatch(Array.from({ length: 3 }, () => ({ function: 'f', endpoint: foreign!.url, input: encodeArgs([]) })));
    for (const id of ids) expect((await scheduler.wait(id, 30_000)).done).toBe(true);
    const [id] = await scheduler.dispatch([{ function: 'f', endpoint: foreign.url, input: encodeArgs([]) }]);
    expect((await scheduler.wait(id!, 30_000)).done).toBe(true);
    for (const run of foreign.runs) {
      expect(run.headers['signature-input']).toContain('alg="ed25519"');
      expect(run.headers['signature-input']).not.toContain(SESSION_OFFER_HEADER);
    }

    const runs: number[] = [];
    const app = await noopApp(runs, { signatureSessions: false });
    await callsInTurn(app.url, 4);
    expect(app.seen.map(signing)).toEqual(['ed25519', 'ed25519', 'ed25519', 'ed25519']);
    expect(app.seen[0]!.responseHeaders[SESSION_ACCEPT_HEADER]).toBeUndefined();
  });
});
