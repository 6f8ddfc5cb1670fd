/**
 * Signature sessions (session.ts): the key agreement, HMAC signatures and
 * their verification, and the endpoint handler opening sessions only for
 * offers its Ed25519 signature covers.
 */
import { createSecretKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { EndpointApp } from '../endpoint/handler.js';
import { handleEndpointRequest } from '../endpoint/handler.js';
import { precheckEndpointRequest } from '../endpoint/precheck.js';
import { RUN_PATH } from '../protocol/constants.js';
import * as proto from '../protocol/proto.js';
import { encodeArgs } from '../serde/serde.js';
import { ReplayCache } from './replay-cache.js';
import { SESSION_ACCEPT_HEADER, SESSION_HEADER, SESSION_OFFER_HEADER, SESSION_REPLAY_WINDOW, SessionOffer, SessionTable, type SignatureSession } from './session.js';
import { generateSigningKeyPair, signRequest, verifySignature, type VerifyRequestInput } from './signature.js';

const keys = generateSigningKeyPair();
const URL_ = 'http://127.0.0.1:8000/dispatch.sdk.v1.FunctionService/Run';
const NOW = 1_700_000_000;
const BODY = new TextEncoder().encode('\x0a\x03fun');

/** A session opened between a fresh offer and `table`. */
function open(table: SessionTable, nowMs = NOW * 1000): SignatureSession {
  const offer = new SessionOffer();
  const answer = table.open(offer.header);
  expect(answer).not.toBeNull();
  const session = offer.accept(answer!, nowMs);
  expect(session).not.toBeNull();
  return session!;
}

function received(headers: Record<string, string>, table: SessionTable | undefined, body = BODY, nowSeconds = NOW): VerifyRequestInput {
  return {
    method: 'POST',
    path: RUN_PATH,
    authority: '127.0.0.1:8000',
    headers: { host: '127.0.0.1:8000', 'content-type': 'application/proto', ...headers },
    body,
    publicKey: keys.publicKey,
    ...(table ? { sessions: table } : {}),
    now: nowSeconds * 1000,
  };
}

function sessionSigned(session: SignatureSession, body = BODY, nonce = '1'): Record<string, string> {
  return signRequest({ method: 'POST', url: URL_, contentType: 'application/proto', body, session, created: NOW, expires: NOW + 60, nonce });
}

describe('the key agreement', () => {
  it('gives both ends the same key: a request signed with the session verifies with the table', () => {
    const table = new SessionTable({ now: () => NOW * 1000 });
    const session = open(table);
    const headers = sessionSigned(session);
    expect(headers['signature-input']).toBe(
      `dispatch=("@method" "@path" "@authority" "content-type" "content-digest");created=${NOW};keyid="${session.id}";alg="hmac-sha256";expires=${NOW + 60};nonce="1"`,
    );
    expect(Buffer.from(/:(.*):/.exec(headers.signature ?? '')![1]!, 'base64')).toHaveLength(32);
    const result = verifySignature(received(headers, table));
    expect(result.ok).toBe(true);
    if (result.ok) expect([result.signature.session, result.signature.sequence]).toEqual([session.id, 1]);
    expect(session.expiresAtMs).toBe((NOW + 900) * 1000);
  });

  it('refuses a session signature that is unknown, expired, of another session, over another body, or sent to an endpoint without sessions', () => {
    let clock = NOW * 1000;
    const table = new SessionTable({ now: () => clock, ttlSeconds: 60 });
    const session = open(table, clock);
    const other = open(new SessionTable({ now: () => clock }), clock);

    const tampered = verifySignature(received(sessionSigned(session), table, new TextEncoder().encode('\x0a\x03fuN')));
    expect(tampered).toMatchObject({ ok: false, code: 'permission_denied' });
    // Another session's key under this session's ID: does not verify.
    const forged = sessionSigned({ ...other, id: session.id });
    expect(verifySignature(received(forged, table))).toMatchObject({ ok: false, code: 'permission_denied', message: expect.stringMatching(/does not verify under session/) });
    // A session the table never opened.
    expect(verifySignature(received(sessionSigned(other), table))).toMatchObject({ ok: false, code: 'unauthenticated', message: expect.stringMatching(/unknown or expired signature session/) });
    // An endpoint that takes no sessions.
    expect(verifySignature(received(sessionSigned(session), undefined))).toMatchObject({ ok: false, code: 'unauthenticated', message: expect.stringMatching(/accepts no signature sessions/) });
    // HMAC with the keyid of the Ed25519 key.
    expect(() => sessionSigned({ ...session, id: 'a"b' })).toThrow(/session id must be/);
    // A session signature numbers its request in the nonce: signRequest refuses another nonce, the verifier too.
    for (const nonce of ['n1', '0', '01', '1.5', '1234567890123456']) expect(() => sessionSigned(session, BODY, nonce), nonce).toThrow(/sequence number/);
    const numbered = sessionSigned(session);
    for (const nonce of ['n1', '0', '007']) {
      const input = String(numbered['signature-input']).replace('nonce="1"', `nonce="${nonce}"`);
      expect(verifySignature(received({ ...numbered, 'signature-input': input }, table))).toMatchObject({
        ok: false,
        code: 'unauthenticated',
        message: expect.stringMatching(/sequence number in the session as nonce/),
      });
    }
    const unnumbered = String(numbered['signature-input']).replace(';nonce="1"', '');
    expect(verifySignature(received({ ...numbered, 'signature-input': unnumbered }, table))).toMatchObject({ ok: false, message: expect.stringMatching(/got no nonce/) });
    const defaultKeyid = sessionSigned({ ...session, id: 'default' });
    expect(verifySignature(received(defaultKeyid, table))).toMatchObject({ ok: false, code: 'unauthenticated', message: expect.stringMatching(/names its session in keyid/) });
    // Still verifies, then the session expires.
    expect(verifySignature(received(sessionSigned(session), table)).ok).toBe(true);
    clock += 61_000;
    expect(verifySignature(received(sessionSigned(session), table))).toMatchObject({ ok: false, code: 'unauthenticated' });
  });

  it('opens nothing for an offer that is not an X25519 public key, and accepts no malformed or expired answer', () => {
    const table = new SessionTable();
    for (const bad of ['', 'abc', Buffer.alloc(31).toString('base64'), `${Buffer.alloc(32, 1).toString('base64')}x`]) expect(table.open(bad)).toBeNull();
    // A low-order point (all zeros) gives no shared secret.
    expect(table.open(Buffer.alloc(32).toString('base64'))).toBeNull();
    expect(table.size).toBe(0);

    const offer = new SessionOffer();
    const answer = new SessionTable({ now: () => NOW * 1000 }).open(offer.header)!;
    expect(offer.accept(undefined)).toBeNull();
    expect(offer.accept('id="x"')).toBeNull();
    expect(offer.accept(answer.replace(/key=:[^:]+:/, 'key=:AAAA:'), NOW * 1000)).toBeNull();
    expect(offer.accept(answer.replace(/id="[^"]+"/, 'id="a b"'), NOW * 1000)).toBeNull();
    expect(offer.accept(answer, (NOW + 900) * 1000)).toBeNull(); // already expired
    expect(offer.accept(answer, NOW * 1000)).not.toBeNull();
  });

  it('keeps at most maxEntries sessions, forgetting the oldest', () => {
    const table = new SessionTable({ maxEntries: 2 });
    const [a, b, c] = [open(table, Date.now()), open(table, Date.now()), open(table, Date.now())];
    expect(table.size).toBe(2);
    expect(table.key(a.id)).toBeUndefined();
    expect(table.key(b.id)).toBeDefined();
    expect(table.key(c.id)).toBeDefined();
    expect(() => new SessionTable({ ttlSeconds: 0 })).toThrow(/ttlSeconds must be a positive integer, got 0/);
  });
});

describe('the endpoint handler', () => {
  function app(overrides: Partial<EndpointApp> = {}): EndpointApp & { runs: string[] } {
    const runs: string[] = [];
    return {
      runs,
      maxBodyBytes: 1 << 20,
      verificationKey: keys.publicKey,
      replayCache: new ReplayCache(),
      logger: { error() {} },
      hasFunction: () => true,
      runRequest: async (request) => {
        runs.push(request.dispatchId ?? '');
        return { status: 1, exit: { result: {} } };
      },
      ...overrides,
    };
  }

  const body = (id: string) => proto.RunRequest.encode({ function: 'f', dispatchId: id, input: encodeArgs([]) });
  function request(headers: Record<string, string>, bytes: Uint8Array) {
    return { method: 'POST', url: RUN_PATH, headers: { host: '127.0.0.1:8000', 'content-type': 'application/proto', ...headers }, body: bytes };
  }
  function ed25519(bytes: Uint8Array, nonce: string, coveredHeaders?: Record<string, string>): Record<string, string> {
    return signRequest({ method: 'POST', url: URL_, contentType: 'application/proto', body: bytes, privateKey: keys.privateKey, nonce, ...(coveredHeaders ? { coveredHeaders } : {}) });
  }

  it('opens a session for an offer its Ed25519 signature covers, and then runs requests signed with it', async () => {
    const a = app();
    const offer = new SessionOffer();
    const plain = await handleEndpointRequest(a, request(ed25519(body('1'), 'a'), body('1')));
    expect(plain.status).toBe(200);
    expect(plain.headers[SESSION_ACCEPT_HEADER]).toBe('x25519');
    expect(plain.headers[SESSION_HEADER]).toBeUndefined();

    const offered = await handleEndpointRequest(a, request(ed25519(body('2'), 'b', { [SESSION_OFFER_HEADER]: offer.header }), body('2')));
    expect(offered.status).toBe(200);
    const session = offer.accept(offered.headers[SESSION_HEADER])!;
    expect(session).not.toBeNull();

    const headers = signRequest({ method: 'POST', url: URL_, contentType: 'application/proto', body: body('3'), session, nonce: '1' });
    const viaSession = await handleEndpointRequest(a, request(headers, body('3')));
    expect(viaSession.status).toBe(200);
    expect(a.runs).toEqual(['1', '2', '3']);
    // The same signature again: refused by the session's replay window, before the body is read and after.
    const again = precheckEndpointRequest(a, { method: 'POST', url: RUN_PATH, headers: request(headers, body('3')).headers });
    expect([again?.status, new TextDecoder().decode(again!.body)]).toEqual([403, expect.stringMatching(/signature already used/)]);
    expect((await handleEndpointRequest(a, request(headers, body('3')))).status).toBe(403);
    expect(a.runs).toHaveLength(3);
    // The two Ed25519 signatures are in the replay cache; the session's is not.
    expect(a.replayCache?.size).toBe(2);
  });

  it("accepts a session's sequence numbers once each, out of order within the window, and refuses older ones", async () => {
    const a = app();
    const offer = new SessionOffer();
    const offered = await handleEndpointRequest(a, request(ed25519(body('0'), 'a', { [SESSION_OFFER_HEADER]: offer.header }), body('0')));
    const session = offer.accept(offered.headers[SESSION_HEADER])!;
    const numbered = (n: number) => signRequest({ method: 'POST', url: URL_, contentType: 'application/proto', body: body(String(n)), session, nonce: String(n) });
    const send = async (n: number, headers = numbered(n)) => (await handleEndpointRequest(a, request(headers, body(String(n))))).status;
    // Overtaken requests (several connections) arrive late and are accepted, each once.
    expect(await Promise.all([3, 1, 2, 5, 4].map((n) => send(n)))).toEqual([200, 200, 200, 200, 200]);
    expect(await send(4)).toBe(403);
    // Ahead by less than the window: numbers that enter it unseen are accepted (their slots held 1 and 2), those seen stay refused.
    const ahead = 3 + SESSION_REPLAY_WINDOW;
    expect(await send(ahead)).toBe(200);
    expect([await send(ahead - 2), await send(ahead - 1), await send(4), await send(5), await send(3)]).toEqual([200, 200, 403, 403, 403]);
    // Far ahead: the window moves; what is now more than SESSION_REPLAY_WINDOW below the highest is refused, even unseen.
    const far = 10 + 2 * SESSION_REPLAY_WINDOW;
    expect(await send(far)).toBe(200);
    expect(await send(10 + SESSION_REPLAY_WINDOW)).toBe(403);
    expect(await send(11 + SESSION_REPLAY_WINDOW)).toBe(200);
    expect(await send(11 + SESSION_REPLAY_WINDOW)).toBe(403);
    expect(await send(far - 1)).toBe(200);
    expect(a.runs.filter((r) => r !== '0')).toEqual(
      ['3', '1', '2', '5', '4', ahead, ahead - 2, ahead - 1, far, 11 + SESSION_REPLAY_WINDOW, far - 1].map(String),
    );
  });

  it('moves no window for a signature that does not verify', async () => {
    const a = app();
    const offer = new SessionOffer();
    const offered = await handleEndpointRequest(a, request(ed25519(body('0'), 'a', { [SESSION_OFFER_HEADER]: offer.header }), body('0')));
    const session = offer.accept(offered.headers[SESSION_HEADER])!;
    // Another key under this session's ID, far ahead: refused, and the legitimate request 1 still runs.
    const forged = signRequest({ method: 'POST', url: URL_, contentType: 'application/proto', body: body('x'), session: { ...session, key: createSecretKey(Buffer.alloc(32, 7)) }, nonce: String(1 + 2 * SESSION_REPLAY_WINDOW) });
    expect((await handleEndpointRequest(a, request(forged, body('x')))).status).toBe(403);
    const one = signRequest({ method: 'POST', url: URL_, contentType: 'application/proto', body: body('1'), session, nonce: '1' });
    expect((await handleEndpointRequest(a, request(one, body('1')))).status).toBe(200);
    expect(a.runs).toEqual(['0', '1']);
  });

  it('opens no session for an offer the signature does not cover (added on the way)', async () => {
    const a = app();
    const offer = new SessionOffer();
    const headers = { ...ed25519(body('1'), 'a'), [SESSION_OFFER_HEADER]: offer.header };
    const answer = await handleEndpointRequest(a, request(headers, body('1')));
    expect(answer.status).toBe(200);
    expect(answer.headers[SESSION_HEADER]).toBeUndefined();
  });

  it('refuses a session it does not hold before reading the body, and one opened under another verification key', async () => {
    const a = app();
    const offer = new SessionOffer();
    const offered = await handleEndpointRequest(a, request(ed25519(body('1'), 'a', { [SESSION_OFFER_HEADER]: offer.header }), body('1')));
    const session = offer.accept(offered.headers[SESSION_HEADER])!;
    const headers = signRequest({ method: 'POST', url: URL_, contentType: 'application/proto', body: body('2'), session, nonce: '1' });

    // The same app with another key (replaced, or a restart): the session is unknown, refused at the precheck.
    const rekeyed = app({ verificationKey: generateSigningKeyPair().publicKey });
    const early = precheckEndpointRequest(rekeyed, { method: 'POST', url: RUN_PATH, headers: request(headers, body('2')).headers });
    expect(early?.status).toBe(401);
    expect(new TextDecoder().decode(early!.body)).toMatch(/unknown or expired signature session/);
    expect((await handleEndpointRequest(rekeyed, request(headers, body('2')))).status).toBe(401);
    // Sessions turned off: no accept header, a session signature refused.
    const off = app({ signatureSessions: false });
    const plain = await handleEndpointRequest(off, request(ed25519(body('3'), 'c', { [SESSION_OFFER_HEADER]: new SessionOffer().header }), body('3')));
    expect(plain.status).toBe(200);
    expect(plain.headers[SESSION_ACCEPT_HEADER]).toBeUndefined();
    expect(plain.headers[SESSION_HEADER]).toBeUndefined();
    expect((await handleEndpointRequest(off, request(headers, body('2')))).status).toBe(401);
    expect([...rekeyed.runs, ...off.runs]).toEqual(['3']);
  });
});
