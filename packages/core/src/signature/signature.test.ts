import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CLOCK_SKEW_SECONDS,
  checkSignatureHeaders,
  MAX_SIGNATURE_AGE_SECONDS,
  SignatureError,
  contentDigest,
  generateSigningKeyPair,
  parseSigningKey,
  parseVerificationKey,
  privateKeyToBase64,
  privateKeyToPem,
  publicKeyToBase64,
  publicKeyToPem,
  signRequest,
  signSignatureBase,
  signatureBase,
  verifyRequest,
  verifySignature,
  verifySignatureBase,
  type VerifyRequestInput,
  type VerifyResult,
} from './signature.js';
import { parseSfDictionary, parseSfInnerList, StructuredFieldError, Token } from './structured-fields.js';

const enc = new TextEncoder();
const keys = generateSigningKeyPair();
const URL_ = 'http://Localhost:8000/dispatch.sdk.v1.FunctionService/Run?x=1';
const PATH = '/dispatch.sdk.v1.FunctionService/Run';
const BODY = enc.encode('\x0a\x03fun');
const NOW = 1_700_000_000;

/** A signed request as an endpoint receives it. */
function signed(overrides: Partial<Parameters<typeof signRequest>[0]> = {}): VerifyRequestInput {
  const body = overrides.body ?? BODY;
  const h = signRequest({
    method: 'post',
    url: URL_,
    contentType: 'application/proto',
    body,
    privateKey: keys.privateKey,
    created: NOW,
    ...overrides,
  });
  return {
    method: 'POST',
    path: PATH,
    authority: 'localhost:8000',
    headers: { host: 'localhost:8000', 'content-type': 'application/proto', ...h },
    body,
    publicKey: keys.publicKey,
    now: NOW * 1000,
  };
}

/** Signs arbitrary signature parameters (for cases signRequest never produces). */
function signedWith(params: string, opts: { label?: string; key?: KeyObject; digest?: string } = {}): VerifyRequestInput {
  const label = opts.label ?? 'dispatch';
  const headers: Record<string, string> = {
    host: 'localhost:8000',
    'content-type': 'application/proto',
    'content-digest': opts.digest ?? contentDigest(BODY),
  };
  const message = { method: 'POST', path: PATH, authority: 'localhost:8000', headers };
  const base = signatureBase(params, message);
  const sig = Buffer.from(signSignatureBase(base, opts.key ?? keys.privateKey)).toString('base64');
  headers['signature-input'] = `${label}=${params}`;
  headers.signature = `${label}=:${sig}:`;
  return { ...message, body: BODY, publicKey: keys.publicKey, now: NOW * 1000 };
}

const ALL = '("@method" "@path" "@authority" "content-type" "content-digest")';

function expectFail(result: VerifyResult, code: 'unauthenticated' | 'permission_denied', message: RegExp): void {
  expect(result).toMatchObject({ ok: false, code });
  if (!result.ok) expect(result.message).toMatch(message);
}

/** Calls `fn` and returns what it throws; fails the test when it throws nothing. */
function thrown(fn: () => unknown, what = 'the call'): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error(`expected ${what} to throw, but it returned normally`);
}
describe('signRequest / verifyRequest round trip', () => {
  it('produces the documented headers', () => {
    const h = signRequest({ method: 'post', url: URL_, contentType: 'application/proto', body: BODY, privateKey: keys.privateKey, created: NOW });
    expect(h['content-digest']).toBe(contentDigest(BODY, 'sha-512'));
    expect(h['signature-input']).toBe(
      `dispatch=("@method" "@path" "@authority" "content-type" "content-digest");created=${NOW};keyid="default";alg="ed25519"`,
    );
    expect(h.signature).toMatch(/^dispatch=:[A-Za-z0-9+/]{86}==:$/);
  });

  it('verifies what it signs', () => {
    expect(verifyRequest(signed())).toEqual({ ok: true });
    expect(verifyRequest(signed({ body: new Uint8Array(0) }))).toEqual({ ok: true });
    expect(verifyRequest(signed({ digestAlgorithm: 'sha-256' }))).toEqual({ ok: true });
    expect(verifyRequest(signed({ expires: NOW + 60 }))).toEqual({ ok: true });
  });

  it('signs the path without the query and the authority in lowercase', () => {
    const input = signed();
    expect(verifyRequest({ ...input, path: `${PATH}?x=1`, authority: 'LOCALHOST:8000' })).toEqual({ ok: true });
  });

  it('accepts header arrays and mixed-case names', () => {
    const input = signed();
    const headers: Record<string, string | string[] | undefined> = {};
    for (const [k, v] of Object.entries(input.headers)) headers[k.toUpperCase()] = v;
    headers['CONTENT-TYPE'] = ['application/proto'];
    expect(verifyRequest({ ...input, headers })).toEqual({ ok: true });
  });

  it('accepts a Content-Digest with both algorithms and unknown ones', () => {
    const both = `sha-256=:${contentDigest(BODY, 'sha-256').slice(9)}, ${contentDigest(BODY)}, md5=:AAAA:`;
    expect(verifyRequest(signedWith(`${ALL};created=${NOW};keyid="default"`, { digest: both }))).toEqual({ ok: true });
  });

  it('accepts components in any order, any label and no alg', () => {
    const params = `("content-digest" "content-type" "@authority" "@path" "@method");keyid="default";created=${NOW}`;
    expect(verifyRequest(signedWith(params, { label: 'sig1' }))).toEqual({ ok: true });
  });

  it('rejects an unparsable URL when signing', () => {
    expect(() => signRequest({ method: 'POST', url: '/relative', contentType: 'x', body: BODY, privateKey: keys.privateKey })).toThrow(
      /absolute URL/,
    );
  });
});

describe('verifyRequest: unauthenticated (401)', () => {
  it('missing headers', () => {
    const input = signed();
    const { signature, 'signature-input': si, ...rest } = input.headers;
    expectFail(verifyRequest({ ...input, headers: rest }), 'unauthenticated', /Signature-Input and Signature headers are missing/);
    expectFail(verifyRequest({ ...input, headers: { ...rest, signature } }), 'unauthenticated', /Signature-Input header is missing/);
    expectFail(verifyRequest({ ...input, headers: { ...rest, 'signature-input': si } }), 'unauthenticated', /Signature header is missing/);
  });

  it('malformed headers', () => {
    const input = signed();
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ 'signature-input': 'dispatch=("@method"' }, /malformed Signature-Input/],
      [{ 'signature-input': '' }, /Signature-Input header: it is empty/],
      [{ 'signature-input': 'Dispatch=("@method")' }, /malformed Signature-Input/],
      [{ signature: 'dispatch=:not base64!:' }, /malformed Signature header/],
      [{ signature: 'dispatch="abc"' }, /must be a byte sequence/],
      [{ signature: 'other=:AAAA:' }, /no signature labelled "dispatch"/],
      [{ 'signature-input': `dispatch=:AAAA:` }, /must be an inner list/],
      [{ 'signature-input': `dispatch=(method);created=${NOW}` }, /quoted strings/],
      [{ 'signature-input': `dispatch=(@method);created=${NOW}` }, /malformed Signature-Input header: expected a digit \(0-9\) at offset 11/],
      [{ 'signature-input': `dispatch=("@method" "@method");created=${NOW}` }, /covered twice/],
      [{ 'signature-input': `dispatch=("@Method");created=${NOW}` }, /lowercase/],
      [{ 'signature-input': `dispatch=("@method";req);created=${NOW}` }, /component parameters are not supported/],
      [{ 'content-digest': 'sha-512=AAAA' }, /malformed Content-Digest/],
      [{ 'content-digest': 'sha-512="abc"' }, /must be a byte sequence/],
    ];
    for (const [patch, message] of cases) {
      expectFail(verifyRequest({ ...input, headers: { ...input.headers, ...patch } }), 'unauthenticated', message);
    }
  });

  it('several signatures', () => {
    const input = signed();
    const si = input.headers['signature-input'] as string;
    const sig = input.headers.signature as string;
    const two = { 'signature-input': `${si}, ${si.replace('dispatch=', 'other=')}`, signature: `${sig}, ${sig.replace('dispatch=', 'other=')}` };
    expectFail(verifyRequest({ ...input, headers: { ...input.headers, ...two } }), 'unauthenticated', /several signatures/);
    const dup = { 'signature-input': [si, si] };
    expectFail(verifyRequest({ ...input, headers: { ...input.headers, ...dup } }), 'unauthenticated', /duplicate dictionary key/);
  });

  it('a required component not covered', () => {
    const params = `("@method" "@path" "@authority" "content-type");created=${NOW};keyid="default";alg="ed25519"`;
    expectFail(verifyRequest(signedWith(params)), 'unauthenticated', /does not cover required component "content-digest"/);
    expectFail(verifyRequest(signedWith(`("content-digest");created=${NOW};keyid="default"`)), 'unauthenticated', /components "@method", "@path"/);
  });

  it('an unsupported derived component', () => {
    const input = signed();
    const si = (input.headers['signature-input'] as string).replace('"@method"', '"@method" "@target-uri"');
    expectFail(verifyRequest({ ...input, headers: { ...input.headers, 'signature-input': si } }), 'unauthenticated', /"@target-uri"/);
  });

  it('keyid other than "default"', () => {
    expectFail(verifyRequest(signedWith(`${ALL};created=${NOW};keyid="other"`)), 'unauthenticated', /unknown keyid "other"/);
    expectFail(verifyRequest(signedWith(`${ALL};created=${NOW};keyid=default`)), 'unauthenticated', /unknown keyid a token/);
    expectFail(verifyRequest(signedWith(`${ALL};created=${NOW}`)), 'unauthenticated', /no keyid parameter/);
  });

  it('alg other than ed25519', () => {
    expectFail(
      verifyRequest(signedWith(`${ALL};created=${NOW};keyid="default";alg="rsa-pss-sha512"`)),
      'unauthenticated',
      /unsupported signature algorithm "rsa-pss-sha512"/,
    );
  });

  it('created missing or not an integer', () => {
    expectFail(verifyRequest(signedWith(`${ALL};keyid="default";alg="ed25519"`)), 'unauthenticated', /no created parameter/);
    expectFail(verifyRequest(signedWith(`${ALL};created="${NOW}";keyid="default"`)), 'unauthenticated', /created must be an integer/);
    expectFail(verifyRequest(signedWith(`${ALL};created=${NOW}.5;keyid="default"`)), 'unauthenticated', /created must be an integer/);
    expectFail(verifyRequest(signedWith(`${ALL};created=${NOW};keyid="default";expires=x`)), 'unauthenticated', /expires must be an integer/);
  });

  it('content-digest missing or without sha-512/sha-256', () => {
    const input = signed();
    const { 'content-digest': _, ...rest } = input.headers;
    expectFail(verifyRequest({ ...input, headers: rest }), 'unauthenticated', /Content-Digest header is missing/);
    const md5 = signedWith(`${ALL};created=${NOW};keyid="default"`, { digest: 'md5=:AAAA:' });
    expectFail(verifyRequest(md5), 'unauthenticated', /no sha-512 or sha-256 digest/);
  });
});

describe('verifyRequest: permission_denied (403)', () => {
  it('a tampered body', () => {
    const input = signed();
    expectFail(verifyRequest({ ...input, body: enc.encode('\x0a\x03fuN') }), 'permission_denied', /body does not match its Content-Digest \(sha-512\)/);
    const s256 = signed({ digestAlgorithm: 'sha-256' });
    expectFail(verifyRequest({ ...s256, body: new Uint8Array(0) }), 'permission_denied', /\(sha-256\)/);
  });

  it('a digest of the wrong length, or one wrong entry among two', () => {
    const short = signedWith(`${ALL};created=${NOW};keyid="default"`, { digest: 'sha-512=:AAAA:' });
    expectFail(verifyRequest(short), 'permission_denied', /Content-Digest/);
    const mixed = signedWith(`${ALL};created=${NOW};keyid="default"`, { digest: `${contentDigest(BODY)}, sha-256=:${'A'.repeat(43)}=:` });
    expectFail(verifyRequest(mixed), 'permission_denied', /\(sha-256\)/);
  });

  it('a tampered path, method, host or content-type', () => {
    const input = signed();
    const cases: Array<Partial<VerifyRequestInput>> = [
      { path: '/dispatch.sdk.v1.FunctionService/Runx' },
      { method: 'PUT' },
      { authority: 'localhost:8001' },
      { headers: { ...input.headers, 'content-type': 'application/json' } },
      { headers: { ...input.headers, 'content-digest': contentDigest(enc.encode('other')) } },
    ];
    for (const patch of cases) {
      expectFail(verifyRequest({ ...input, ...patch }), 'permission_denied', /signature does not verify/);
    }
  });

  it('a covered header the request lacks', () => {
    const input = signed();
    const { 'content-type': _, ...rest } = input.headers;
    expectFail(verifyRequest({ ...input, headers: rest }), 'permission_denied', /covers the "content-type" header, which the request does not have/);
  });

  it('another key, or a damaged signature', () => {
    const other = generateSigningKeyPair();
    expectFail(verifyRequest({ ...signed(), publicKey: other.publicKey }), 'permission_denied', /signature does not verify/);
    const input = signed();
    const sig = input.headers.signature as string;
    const b = Buffer.from(sig.slice('dispatch=:'.length, -1), 'base64');
    b[10] = (b[10] ?? 0) ^ 1;
    const damaged = `dispatch=:${b.toString('base64')}:`;
    expectFail(verifyRequest({ ...input, headers: { ...input.headers, signature: damaged } }), 'permission_denied', /does not verify/);
    const short = `dispatch=:${b.subarray(0, 63).toString('base64')}:`;
    expectFail(verifyRequest({ ...input, headers: { ...input.headers, signature: short } }), 'permission_denied', /has 63/);
  });

  it('a signature older than 5 minutes (edge included)', () => {
    const input = signed();
    expect(verifyRequest({ ...input, now: (NOW + MAX_SIGNATURE_AGE_SECONDS) * 1000 })).toEqual({ ok: true });
    expectFail(
      verifyRequest({ ...input, now: (NOW + MAX_SIGNATURE_AGE_SECONDS) * 1000 + 1 }),
      'permission_denied',
      /^signature is older than 5 minutes \(created 1700000000, now 1700000300\)$/,
    );
    expectFail(verifyRequest({ ...input, now: (NOW + 400) * 1000 }), 'permission_denied', /\(created 1700000000, now 1700000400\)/);
  });

  it('a signature from more than 5 s in the future (edge included)', () => {
    const input = signed();
    expect(verifyRequest({ ...input, now: (NOW - CLOCK_SKEW_SECONDS) * 1000 })).toEqual({ ok: true });
    expectFail(verifyRequest({ ...input, now: (NOW - CLOCK_SKEW_SECONDS) * 1000 - 1 }), 'permission_denied', /from the future/);
  });

  it('a signature past its expires', () => {
    const input = signed({ expires: NOW + 10 });
    expect(verifyRequest({ ...input, now: (NOW + 10 + CLOCK_SKEW_SECONDS) * 1000 })).toEqual({ ok: true });
    expectFail(
      verifyRequest({ ...input, now: (NOW + 10 + CLOCK_SKEW_SECONDS) * 1000 + 1 }),
      'permission_denied',
      /expired \(expires 1700000010, now 1700000015\)/,
    );
  });

  it('uses Date.now() by default', () => {
    const now = Math.floor(Date.now() / 1000);
    const input = signed({ created: now });
    const { now: _, ...rest } = input;
    expect(verifyRequest(rest)).toEqual({ ok: true });
    const stale = signed({ created: now - 3600 });
    const { now: __, ...staleRest } = stale;
    expectFail(verifyRequest(staleRest), 'permission_denied', /older than 5 minutes/);
  });
});

describe('verifyRequest never throws', () => {
  it('on garbage of every shape', () => {
    const input = signed();
    const garbage: unknown[] = [undefined, null, 42, '', '\u0000', '(((', 'a=(', 'a=:', 'a="\\x"', 'a=?2', 'a=1.2345', 'a=1234567890123456', '=', ',', 'a,', 'a=("x";', ['a=1', 'b=2']];
    for (const g of garbage) {
      for (const name of ['signature-input', 'signature', 'content-digest']) {
        const r = verifyRequest({ ...input, headers: { ...input.headers, [name]: g as string } });
        expect(r.ok).toBe(false);
      }
    }
    const weird = [
      { ...input, headers: null },
      { ...input, body: undefined },
      { ...input, method: undefined },
      { ...input, publicKey: generateKeyPairSync('x25519').publicKey },
      null,
      undefined,
      {},
    ];
    for (const w of weird) {
      expect(() => verifyRequest(w as unknown as VerifyRequestInput)).not.toThrow();
      expect(verifyRequest(w as unknown as VerifyRequestInput).ok).toBe(false);
    }
  });

  it('never echoes key material', () => {
    const other = generateSigningKeyPair();
    const r = verifyRequest({ ...signed(), publicKey: other.publicKey });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.message).not.toContain(publicKeyToBase64(other.publicKey));
      expect(r.message).not.toContain(publicKeyToBase64(keys.publicKey));
    }
  });
});

describe('RFC 9421 Appendix B.2.6 (Ed25519)', () => {
  const publicPem = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n-----END PUBLIC KEY-----\n';
  const privateDer = 'MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF';
  const signatureB64 = 'wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==';
  const signatureInput =
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"';
  const message = {
    method: 'POST',
    path: '/foo?param=Value&Pet=dog',
    authority: 'example.com',
    query: 'param=Value&Pet=dog',
    headers: {
      host: 'example.com',
      date: 'Tue, 20 Apr 2021 02:07:55 GMT',
      'content-type': 'application/json',
      'content-digest':
        'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:',
      'content-length': '18',
    },
  };
  const expectedBase = [
    '"date": Tue, 20 Apr 2021 02:07:55 GMT',
    '"@method": POST',
    '"@path": /foo',
    '"@authority": example.com',
    '"content-type": application/json',
    '"content-length": 18',
    '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
  ].join('\n');

  function baseFromHeader(): string {
    const member = parseSfDictionary(signatureInput).get('sig-b26');
    if (member === undefined) throw new Error('no member');
    return signatureBase(member.raw, message);
  }

  it('builds the published signature base from the Signature-Input as sent', () => {
    expect(baseFromHeader()).toBe(expectedBase);
  });

  it('verifies the published signature, and fails when one byte changes', () => {
    const publicKey = parseVerificationKey(publicPem);
    const sig = Buffer.from(signatureB64, 'base64');
    const base = baseFromHeader();
    expect(verifySignatureBase(base, sig, publicKey)).toBe(true);
    expect(verifySignatureBase(base.replace('/foo', '/fop'), sig, publicKey)).toBe(false);
    expect(verifySignatureBase(`${base} `, sig, publicKey)).toBe(false);
    const bad = Buffer.from(sig);
    bad[0] = (bad[0] ?? 0) ^ 0x80;
    expect(verifySignatureBase(base, bad, publicKey)).toBe(false);
    // The raw 32-byte form of the same key verifies too.
    const raw = parseVerificationKey(publicKeyToBase64(publicKey));
    expect(verifySignatureBase(base, sig, raw)).toBe(true);
  });

  it('reproduces the published signature with the published private key', () => {
    const der = createPrivateKey({ key: Buffer.from(privateDer, 'base64'), format: 'der', type: 'pkcs8' });
    const pem = parseSigningKey(`-----BEGIN PRIVATE KEY-----\\n${privateDer}\\n-----END PRIVATE KEY-----`);
    for (const key of [der, pem, parseSigningKey(privateKeyToBase64(der)), parseSigningKey(privateKeyToBase64(der, 'seed+public'))]) {
      expect(Buffer.from(signSignatureBase(expectedBase, key)).toString('base64')).toBe(signatureB64);
    }
    expect(publicKeyToBase64(der)).toBe(publicKeyToBase64(parseVerificationKey(publicPem)));
  });

  it('matches the RFC 9530 digests of the test body', () => {
    const body = enc.encode('{"hello": "world"}');
    expect(contentDigest(body)).toBe(message.headers['content-digest']);
    expect(contentDigest(body, 'sha-256')).toBe('sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
  });
});

describe('signatureBase', () => {
  const msg = { method: 'get', path: '', authority: 'Example.COM:8080', query: 'a=1', headers: { 'x-a': ['  one ', 'two  '], 'x-b': '' } };

  it('normalises method, path, authority and header values', () => {
    expect(signatureBase('("@method" "@path" "@authority" "@query" "@request-target" "x-a" "x-b")', msg)).toBe(
      [
        '"@method": GET',
        '"@path": /',
        '"@authority": example.com:8080',
        '"@query": ?a=1',
        '"@request-target": /?a=1',
        '"x-a": one, two',
        '"x-b": ',
        '"@signature-params": ("@method" "@path" "@authority" "@query" "@request-target" "x-a" "x-b")',
      ].join('\n'),
    );
  });

  it('keeps the signature parameters exactly as sent', () => {
    const params = '( "@method"  "@path" );created=1; keyid="k"';
    expect(signatureBase(params, msg).split('\n').at(-1)).toBe(`"@signature-params": ${params}`);
  });

  it('throws SignatureError with a code', () => {
    expect(() => signatureBase('("x-missing")', msg)).toThrow(SignatureError);
    const error = thrown(() => signatureBase('("@signature-params")', msg));
    expect(error).toBeInstanceOf(SignatureError);
    expect((error as SignatureError).code).toBe('unauthenticated');
    expect(() => signatureBase('("@method"', msg)).toThrow(/malformed Signature-Input/);
  });
});

describe('structured fields', () => {
  it('parses dictionaries with items, inner lists and parameters, keeping each member as sent', () => {
    const d = parseSfDictionary('a=1, b="x\\"y";p=?0, c=(tok "s" :AQID:);q=-1.5, d;r=2, e=?1');
    expect(d.get('a')?.value).toEqual([1, new Map()]);
    expect(d.get('b')?.value).toEqual(['x"y', new Map([['p', false]])]);
    expect(d.get('b')?.raw).toBe('"x\\"y";p=?0');
    const c = d.get('c');
    if (c === undefined) throw new Error('member c is missing');
    expect(c.raw).toBe('(tok "s" :AQID:);q=-1.5');
    const [items, params] = c.value as [Array<[unknown, Map<string, unknown>]>, Map<string, unknown>];
    expect(items[0]?.[0]).toEqual(new Token('tok'));
    expect(items[1]?.[0]).toBe('s');
    expect(new Uint8Array(items[2]?.[0] as ArrayBuffer)).toEqual(new Uint8Array([1, 2, 3]));
    expect(params.get('q')).toBe(-1.5);
    expect(d.get('d')).toEqual({ value: [true, new Map([['r', 2]])], raw: '?1;r=2' });
    expect(d.get('e')?.value).toEqual([true, new Map()]);
  });

  it('keeps strings holding commas and parentheses inside their member', () => {
    const d = parseSfDictionary('a=("x, (y" "z");k="1,2", b=2');
    expect(d.get('a')?.raw).toBe('("x, (y" "z");k="1,2"');
    expect(d.get('b')?.raw).toBe('2');
  });

  it('rejects malformed text and keys sent twice', () => {
    for (const bad of ['a=', 'a=(1', 'A=1', 'a=1,', 'a=1 b=2', 'a="\u00e9"', 'a=1;', 'a=:YQ=a:', 'a=1, a=2']) {
      expect(() => parseSfDictionary(bad), bad).toThrow(StructuredFieldError);
    }
    expect(() => parseSfDictionary('a=1, a=2')).toThrow(/duplicate dictionary key "a"/);
  });

  it('parses one inner list with its parameters, and nothing else', () => {
    const [items, params] = parseSfInnerList('("@method" "@path");created=1;keyid="default"');
    expect(items.map(([v]) => v)).toEqual(['@method', '@path']);
    expect(params).toEqual(new Map<string, unknown>([['created', 1], ['keyid', 'default']]));
    for (const bad of ['"@method"', '("@method"), ("@path")', '("@method"']) {
      expect(() => parseSfInnerList(bad), bad).toThrow(StructuredFieldError);
    }
  });
});

describe('keys', () => {
  const pub = keys.publicKey;

  it('parses the verification key forms', () => {
    const pem = publicKeyToPem(pub);
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const escaped = pem.trim().replace(/\n/g, '\\n');
    const b64 = publicKeyToBase64(pub);
    expect(Buffer.from(b64, 'base64')).toHaveLength(32);
    for (const text of [pem, escaped, `  ${escaped}  `, b64, b64.replace(/=+$/, '')]) {
      expect(publicKeyToBase64(parseVerificationKey(text))).toBe(b64);
    }
  });

  it('explains bad verification keys without echoing them', () => {
    const priv = privateKeyToPem(keys.privateKey);
    const cases: Array<[string, RegExp]> = [
      ['', /empty/],
      ['not a key!', /neither PEM nor standard base64/],
      [Buffer.alloc(31).toString('base64'), /31 bytes, but an Ed25519 public key has 32/],
      [priv, /private key; DISPATCH_VERIFICATION_KEY must hold the public key/],
      ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', /not a "-----BEGIN PUBLIC KEY-----" block/],
      ['-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----', /not a valid PEM public key/],
      [generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString(), /is a ec key/],
    ];
    for (const [text, message] of cases) {
      const error = thrown(() => parseVerificationKey(text), text);
      expect(error, text).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toMatch(/dispatch verification get|public key/);
      if (text.trim().length > 60) expect((error as Error).message).not.toContain(text.trim().slice(30, 60));
    }
  });

  it('parses the signing key forms, including go\'s 64-byte form', () => {
    const seed = privateKeyToBase64(keys.privateKey);
    const full = privateKeyToBase64(keys.privateKey, 'seed+public');
    expect(Buffer.from(seed, 'base64')).toHaveLength(32);
    expect(Buffer.from(full, 'base64')).toHaveLength(64);
    expect(Buffer.from(full, 'base64').subarray(32).toString('base64')).toBe(publicKeyToBase64(pub));
    const pem = privateKeyToPem(keys.privateKey);
    for (const text of [seed, full, pem, pem.trim().replace(/\n/g, '\\n')]) {
      const key = parseSigningKey(text);
      expect(publicKeyToBase64(key)).toBe(publicKeyToBase64(pub));
      const input = signed({ privateKey: key });
      expect(verifyRequest(input)).toEqual({ ok: true });
    }
  });

  it('explains bad signing keys', () => {
    const full = Buffer.from(privateKeyToBase64(keys.privateKey, 'seed+public'), 'base64');
    full[40] = (full[40] ?? 0) ^ 1;
    expect(() => parseSigningKey(full.toString('base64'))).toThrow(/last 32 are not the public key/);
    expect(() => parseSigningKey(Buffer.alloc(48).toString('base64'))).toThrow(/48 bytes; expected 32 \(seed\) or 64/);
    expect(() => parseSigningKey(publicKeyToPem(pub))).toThrow(/is a public key/);
    expect(() => parseSigningKey('')).toThrow(/empty/);
    expect(() => parseSigningKey('%%%')).toThrow(/neither PEM nor standard base64/);
  });

  it('refuses non-Ed25519 keys in the converters', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => publicKeyToBase64(ec.publicKey)).toThrow(/Ed25519/);
    expect(() => privateKeyToPem(ec.privateKey)).toThrow(/Ed25519/);
    expect(() => privateKeyToPem(pub)).toThrow(/Ed25519 private key/);
  });
});

describe('nonce, and the checks that need no body', () => {
  it('signs a nonce after expires; two signatures of the same bytes in the same second then differ', () => {
    const a = signRequest({ method: 'POST', url: URL_, contentType: 'application/proto', body: BODY, privateKey: keys.privateKey, created: NOW, expires: NOW + 60, nonce: 'n1' });
    expect(a['signature-input']).toBe(
      `dispatch=("@method" "@path" "@authority" "content-type" "content-digest");created=${NOW};keyid="default";alg="ed25519";expires=${NOW + 60};nonce="n1"`,
    );
    const b = signRequest({ method: 'POST', url: URL_, contentType: 'application/proto', body: BODY, privateKey: keys.privateKey, created: NOW, expires: NOW + 60, nonce: 'n2' });
    expect(b.signature).not.toBe(a.signature);
    const same = signRequest({ method: 'POST', url: URL_, contentType: 'application/proto', body: BODY, privateKey: keys.privateKey, created: NOW });
    expect(signRequest({ method: 'POST', url: URL_, contentType: 'application/proto', body: BODY, privateKey: keys.privateKey, created: NOW }).signature).toBe(same.signature); // Ed25519 is deterministic
    expect(verifyRequest(signed({ nonce: 'abc-123', expires: NOW + 60 }))).toEqual({ ok: true });
    expect(() => signRequest({ method: 'POST', url: URL_, contentType: 'x', body: BODY, privateKey: keys.privateKey, nonce: 'a"b' })).toThrow(/nonce must be/);
  });

  it('checkSignatureHeaders: form, keyid and validity from the headers alone, with the bytes and the last valid moment', () => {
    const input = signed({ expires: NOW + 60 });
    const r = checkSignatureHeaders({ headers: input.headers, now: NOW * 1000 });
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.signature.bytes).toHaveLength(64);
      expect(r.signature.created).toBe(NOW);
      expect(r.signature.validUntilMs).toBe((NOW + 60 + CLOCK_SKEW_SECONDS) * 1000); // sooner than created + 5 minutes
    }
    const noExpires = checkSignatureHeaders({ headers: signed().headers, now: NOW * 1000 });
    expect(noExpires.ok && noExpires.signature.validUntilMs).toBe((NOW + MAX_SIGNATURE_AGE_SECONDS) * 1000);
    expectFail(checkSignatureHeaders({ headers: {}, now: NOW * 1000 }) as VerifyResult, 'unauthenticated', /not signed/);
    expectFail(checkSignatureHeaders({ headers: input.headers, now: (NOW + 66) * 1000 }) as VerifyResult, 'permission_denied', /expired/);
    expectFail(checkSignatureHeaders({ headers: input.headers, now: (NOW - 60) * 1000 }) as VerifyResult, 'permission_denied', /from the future/);
    // A forged signature passes this check: only verifyRequest, with the body and the key, can tell.
    const other = signed({ privateKey: generateSigningKeyPair().privateKey });
    expect(checkSignatureHeaders({ headers: other.headers, now: NOW * 1000 }).ok).toBe(true);
    expect(verifySignature(other).ok).toBe(false);
    const verified = verifySignature(input);
    expect(verified.ok && verified.signature.bytes).toEqual(r.ok && r.signature.bytes);
  });

  it('parses the headers the precheck read once for the verification, and never answers other headers with that parse', () => {
    const input = signed();
    const checked = checkSignatureHeaders({ headers: input.headers, now: NOW * 1000 });
    const verified = verifySignature(input);
    // The same (frozen) parse: nothing of it can be changed between the two.
    expect(checked.ok && verified.ok && verified.signature).toBe(checked.ok && checked.signature);
    expect(Object.isFrozen(verified.ok && verified.signature)).toBe(true);
    // The same signature headers with another Content-Digest (the body changed on the way): parsed again, refused.
    const tampered = { ...input, headers: { ...input.headers, 'content-digest': contentDigest(enc.encode('something else')) } };
    expect(checkSignatureHeaders({ headers: tampered.headers, now: NOW * 1000 }).ok).toBe(true);
    expectFail(verifySignature(tampered), 'permission_denied', /does not verify|Content-Digest/);
    // Another signature for the same headers otherwise: its own bytes.
    const other = signed({ nonce: 'n-2' });
    const again = verifySignature(other);
    expect(again.ok && again.signature.bytes).not.toEqual(verified.ok && verified.signature.bytes);
  });
});
