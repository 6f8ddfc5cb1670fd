/**
 * Request signing between the scheduler and an endpoint: RFC 9421 HTTP
 * Message Signatures with Ed25519, over an RFC 9530 `Content-Digest` of the
 * exact body (PROTOCOL.md section 3 and decisions 8.2–8.3).
 *
 * - {@link signRequest} adds `Content-Digest`, `Signature-Input` and
 *   `Signature` headers (what a scheduler sends).
 * - {@link verifyRequest} checks them on the endpoint; it never throws, since
 *   it reads attacker-controlled bytes, and answers which HTTP error applies
 *   (`unauthenticated` = 401, `permission_denied` = 403).
 * - {@link parseVerificationKey} / {@link parseSigningKey} read the key forms
 *   of PROTOCOL.md 3.5.
 *
 * Cryptography is `node:crypto`; Structured Field values are parsed by the
 * `structured-headers` library (structured-fields.ts).
 * @module
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as cryptoSign,
  timingSafeEqual,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import {
  type BareItem,
  bytesOf,
  type InnerList,
  isInnerList,
  parseSfDictionary,
  parseSfInnerList,
  type SfMember,
  StructuredFieldError,
  typeOf,
} from './structured-fields.js';
import { SESSION_SIGNATURE_ALGORITHM, type SignatureSession, signSessionBase, unknownSessionMessage, verifySessionBase } from './session.js';

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

/**
 * The signature label this project sends (`Signature-Input: dispatch=...`).
 * A verifier accepts any label, as long as the request carries exactly one
 * signature.
 * @example
 * headers['signature-input']?.startsWith(`${SIGNATURE_LABEL}=`);
 */
export const SIGNATURE_LABEL = 'dispatch';

/**
 * The only `keyid` accepted and sent (PROTOCOL.md 3.1).
 * @example
 * `keyid="${SIGNATURE_KEY_ID}"`; // keyid="default"
 */
export const SIGNATURE_KEY_ID = 'default';

/**
 * Components every signature must cover, in the order this project signs them.
 * @example
 * REQUIRED_COMPONENTS.includes('content-digest'); // true
 */
export const REQUIRED_COMPONENTS: readonly string[] = Object.freeze([
  '@method',
  '@path',
  '@authority',
  'content-type',
  'content-digest',
]);

/**
 * Oldest accepted signature, in seconds after its `created` parameter.
 * @example
 * const oldest = Math.floor(Date.now() / 1000) - MAX_SIGNATURE_AGE_SECONDS;
 */
export const MAX_SIGNATURE_AGE_SECONDS = 300;

/**
 * Clock skew tolerated between signer and verifier, in seconds: a `created`
 * this far in the future is still accepted, and so is a signature this long
 * past its `expires`.
 * @example
 * const latest = Math.floor(Date.now() / 1000) + CLOCK_SKEW_SECONDS;
 */
export const CLOCK_SKEW_SECONDS = 5;

// DER prefixes of an Ed25519 SubjectPublicKeyInfo and PKCS#8 PrivateKeyInfo
// (RFC 8410): the raw 32-byte key follows each.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

/**
 * An Ed25519 key pair.
 * @example
 * const { privateKey, publicKey }: SigningKeyPair = generateSigningKeyPair();
 */
export interface SigningKeyPair {
  /** Signs requests (the scheduler's side). */
  privateKey: KeyObject;
  /** Verifies requests (the endpoint's `DISPATCH_VERIFICATION_KEY`). */
  publicKey: KeyObject;
}

/**
 * Generates a fresh Ed25519 key pair, e.g. for a local test scheduler.
 * @example
 * const keys = generateSigningKeyPair();
 * process.env.DISPATCH_VERIFICATION_KEY = publicKeyToBase64(keys.publicKey);
 */
export function generateSigningKeyPair(): SigningKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey };
}

/** Decodes standard base64 (padding optional, whitespace ignored); null if it is not base64. */
function decodeBase64Strict(text: string): Buffer | null {
  const s = text.replace(/\s+/g, '');
  if (s.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(s)) return null;
  const unpadded = s.replace(/=+$/, '');
  if (unpadded.length % 4 === 1) return null;
  if (s.length !== unpadded.length && s.length % 4 !== 0) return null;
  return Buffer.from(unpadded, 'base64');
}

const KEY_HELP =
  'Copy the verification key from the Dispatch console or `dispatch verification get`: either the PEM ' +
  '"-----BEGIN PUBLIC KEY-----" block (newlines may be written as \\n) or the base64 of the raw 32-byte Ed25519 public key.';

/**
 * Parses an Ed25519 public key in a form `DISPATCH_VERIFICATION_KEY` may
 * hold: PEM SubjectPublicKeyInfo (literal `\n` sequences are turned into
 * newlines first, as environment files often carry them), or standard base64
 * of the raw 32 bytes. Throws an Error naming the problem and what to do; the
 * message never contains the key.
 * @example
 * const publicKey = parseVerificationKey(process.env.DISPATCH_VERIFICATION_KEY ?? '');
 */
export function parseVerificationKey(text: string): KeyObject {
  if (typeof text !== 'string') throw new TypeError(`verification key must be a string, got ${typeof text}. ${KEY_HELP}`);
  const t = text.replace(/\\n/g, '\n').trim();
  if (t === '') throw new Error(`verification key is empty. ${KEY_HELP}`);
  if (t.includes('-----BEGIN')) {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(t)) {
      throw new Error(
        'verification key is a PEM private key; DISPATCH_VERIFICATION_KEY must hold the public key ' +
          '("-----BEGIN PUBLIC KEY-----"). Never give the private key to an endpoint.',
      );
    }
    if (!t.includes('-----BEGIN PUBLIC KEY-----')) {
      throw new Error(`verification key is PEM but not a "-----BEGIN PUBLIC KEY-----" block. ${KEY_HELP}`);
    }
    let key: KeyObject;
    try {
      key = createPublicKey({ key: t, format: 'pem' });
    } catch {
      throw new Error(`verification key is not a valid PEM public key (the base64 between the BEGIN/END lines is damaged). ${KEY_HELP}`);
    }
    if (key.asymmetricKeyType !== 'ed25519') {
      throw new Error(`verification key is a ${key.asymmetricKeyType ?? 'unknown'} key; Dispatch signs with Ed25519. ${KEY_HELP}`);
    }
    return key;
  }
  const raw = decodeBase64Strict(t);
  if (raw === null) throw new Error(`verification key is neither PEM nor standard base64. ${KEY_HELP}`);
  if (raw.length !== 32) {
    throw new Error(`verification key decodes to ${raw.length} bytes, but an Ed25519 public key has 32. ${KEY_HELP}`);
  }
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

const SIGNING_KEY_HELP =
  'Give a PEM "-----BEGIN PRIVATE KEY-----" (PKCS#8) block, the base64 of the 32-byte Ed25519 seed, ' +
  "or the base64 of 64 bytes (seed then public key, dispatch-go's format).";

/**
 * Parses an Ed25519 private key: PEM PKCS#8 (literal `\n` allowed), base64
 * of the 32-byte seed, or base64 of 64 bytes (seed then public key, go's
 * format; the public half must match the seed). The message of a thrown
 * Error never contains the key.
 * @example
 * const privateKey = parseSigningKey(fs.readFileSync('signing.pem', 'utf8'));
 * const headers = signRequest({ method: 'POST', url, contentType: 'application/proto', body, privateKey });
 */
export function parseSigningKey(text: string): KeyObject {
  if (typeof text !== 'string') throw new TypeError(`signing key must be a string, got ${typeof text}. ${SIGNING_KEY_HELP}`);
  const t = text.replace(/\\n/g, '\n').trim();
  if (t === '') throw new Error(`signing key is empty. ${SIGNING_KEY_HELP}`);
  if (t.includes('-----BEGIN')) {
    if (t.includes('-----BEGIN PUBLIC KEY-----')) {
      throw new Error(`signing key is a public key; signing needs the private key. ${SIGNING_KEY_HELP}`);
    }
    if (!t.includes('-----BEGIN PRIVATE KEY-----')) {
      throw new Error(`signing key is PEM but not an unencrypted PKCS#8 "-----BEGIN PRIVATE KEY-----" block. ${SIGNING_KEY_HELP}`);
    }
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: t, format: 'pem' });
    } catch {
      throw new Error(`signing key is not a valid PEM private key. ${SIGNING_KEY_HELP}`);
    }
    if (key.asymmetricKeyType !== 'ed25519') {
      throw new Error(`signing key is a ${key.asymmetricKeyType ?? 'unknown'} key, not Ed25519. ${SIGNING_KEY_HELP}`);
    }
    return key;
  }
  const raw = decodeBase64Strict(t);
  if (raw === null) throw new Error(`signing key is neither PEM nor standard base64. ${SIGNING_KEY_HELP}`);
  if (raw.length !== 32 && raw.length !== 64) {
    throw new Error(`signing key decodes to ${raw.length} bytes; expected 32 (seed) or 64 (seed then public key). ${SIGNING_KEY_HELP}`);
  }
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
  if (raw.length === 64 && !rawPublicKey(createPublicKey(key)).equals(raw.subarray(32))) {
    throw new Error(`signing key has 64 bytes, but its last 32 are not the public key of its first 32 (the seed). ${SIGNING_KEY_HELP}`);
  }
  return key;
}

function rawPublicKey(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType !== 'ed25519') {
    throw new TypeError(`expected an Ed25519 key, got ${pub.asymmetricKeyType ?? 'a symmetric'} key`);
  }
  const der = pub.export({ type: 'spki', format: 'der' });
  if (der.length !== SPKI_PREFIX.length + 32 || !der.subarray(0, SPKI_PREFIX.length).equals(SPKI_PREFIX)) {
    throw new TypeError('unexpected Ed25519 public key encoding');
  }
  return der.subarray(SPKI_PREFIX.length);
}

/**
 * The raw 32-byte public key in standard base64, the short form of
 * `DISPATCH_VERIFICATION_KEY` (a private key is accepted and its public half
 * used).
 * @example
 * console.log(`DISPATCH_VERIFICATION_KEY=${publicKeyToBase64(keys.publicKey)}`);
 */
export function publicKeyToBase64(key: KeyObject): string {
  return rawPublicKey(key).toString('base64');
}

/**
 * The public key as PEM SubjectPublicKeyInfo (a private key is accepted and
 * its public half used).
 * @example
 * fs.writeFileSync('verification.pem', publicKeyToPem(keys.publicKey));
 */
export function publicKeyToPem(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  rawPublicKey(pub); // checks the key type
  return pub.export({ type: 'spki', format: 'pem' }).toString();
}

/**
 * The private key as PEM PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
 * @example
 * fs.writeFileSync('signing.pem', privateKeyToPem(keys.privateKey), { mode: 0o600 });
 */
export function privateKeyToPem(key: KeyObject): string {
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') {
    throw new TypeError('privateKeyToPem needs an Ed25519 private key');
  }
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * The private key as standard base64: of the 32-byte seed (`'seed'`, the
 * default), or of 64 bytes, seed then public key (`'seed+public'`, go's form).
 * Both are accepted by {@link parseSigningKey}.
 * @example
 * const text = privateKeyToBase64(keys.privateKey, 'seed+public');
 */
export function privateKeyToBase64(key: KeyObject, form: 'seed' | 'seed+public' = 'seed'): string {
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') {
    throw new TypeError('privateKeyToBase64 needs an Ed25519 private key');
  }
  const der = key.export({ type: 'pkcs8', format: 'der' });
  if (der.length !== PKCS8_PREFIX.length + 32 || !der.subarray(0, PKCS8_PREFIX.length).equals(PKCS8_PREFIX)) {
    throw new TypeError('unexpected Ed25519 private key encoding');
  }
  const seed = der.subarray(PKCS8_PREFIX.length);
  return (form === 'seed' ? seed : Buffer.concat([seed, rawPublicKey(key)])).toString('base64');
}

// ---------------------------------------------------------------------------
// Content-Digest (RFC 9530)
// ---------------------------------------------------------------------------

/** Digest algorithms accepted in `Content-Digest`. */
const DIGESTS = { 'sha-512': 'sha512', 'sha-256': 'sha256' } as const;

/**
 * The `Content-Digest` header value of the exact body bytes:
 * `sha-512=:<base64>:` (or `sha-256=:...:`).
 * @example
 * contentDigest(new TextEncoder().encode('{"hello": "world"}'), 'sha-256');
 * // 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:'
 */
export function contentDigest(body: Uint8Array, algorithm: 'sha-512' | 'sha-256' = 'sha-512'): string {
  const hash = DIGESTS[algorithm];
  if (hash === undefined) throw new TypeError(`unsupported digest algorithm ${JSON.stringify(algorithm)}; use "sha-512" or "sha-256"`);
  return `${algorithm}=:${createHash(hash).update(body).digest('base64')}:`;
}

// ---------------------------------------------------------------------------
// Signature base (RFC 9421 section 2.5)
// ---------------------------------------------------------------------------

/**
 * Why a signature was refused: `unauthenticated` (HTTP 401: missing or
 * malformed, unusable) or `permission_denied` (HTTP 403: does not verify,
 * stale, or the body does not match).
 * @example
 * if (!result.ok && result.code === 'unauthenticated') res.statusCode = 401;
 */
export type SignatureErrorCode = 'unauthenticated' | 'permission_denied';

/**
 * Thrown by the lower-level helpers ({@link signatureBase}) with the code a
 * verifier should answer.
 * @example
 * try { signatureBase('("@query-param";name="a")', msg); } catch (e) { if (e instanceof SignatureError) e.code; }
 */
export class SignatureError extends Error {
  override readonly name = 'SignatureError';
  constructor(
    readonly code: SignatureErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The parts of a request a signature base is built from, as received.
 * @example
 * const message: SignatureMessage = { method: 'POST', path: '/foo', authority: 'example.com', headers: { 'content-type': 'application/json' } };
 */
export interface SignatureMessage {
  /** The HTTP method (`@method`, uppercased). */
  method: string;
  /** The path without the query (`@path`); a query, if present, is cut off. Empty means `/`. */
  path: string;
  /** The Host header value or URL host[:port] (`@authority`, lowercased). */
  authority: string;
  /** The query without `?` (for `@query` and `@request-target`); absent means no query. */
  query?: string | undefined;
  /** Header fields, lowercase names as `node:http` gives them. */
  headers: Record<string, string | string[] | undefined>;
}

/** Reads a header case-insensitively; undefined when absent. */
function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  if (headers === null || typeof headers !== 'object') return undefined;
  let v = Object.hasOwn(headers, name) ? headers[name] : undefined;
  if (v === undefined) {
    for (const k of Object.keys(headers)) {
      if (k.toLowerCase() === name) {
        v = headers[k];
        break;
      }
    }
  }
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return v.length === 0 ? undefined : v.map((x) => String(x).trim()).join(', ');
  return String(v).trim();
}

function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

/** Checks the covered components of a parsed signature-params inner list. */
function componentNames([items]: InnerList): string[] {
  const names: string[] = [];
  for (const [name, params] of items) {
    if (typeof name !== 'string') {
      throw new SignatureError('unauthenticated', 'malformed Signature-Input: covered components must be quoted strings');
    }
    if (params.size > 0) {
      const p = [...params.keys()].map((k) => `;${k}`).join('');
      throw new SignatureError('unauthenticated', `signature covers component "${name}"${p}; component parameters are not supported`);
    }
    if (name !== name.toLowerCase() || name === '') {
      throw new SignatureError('unauthenticated', `malformed Signature-Input: component name ${quote(name)} must be lowercase and non-empty`);
    }
    if (name === '@signature-params') {
      throw new SignatureError('unauthenticated', 'malformed Signature-Input: "@signature-params" cannot be a covered component');
    }
    if (names.includes(name)) {
      throw new SignatureError('unauthenticated', `malformed Signature-Input: component "${name}" is covered twice`);
    }
    names.push(name);
  }
  return names;
}

function componentValue(name: string, message: SignatureMessage): string {
  switch (name) {
    case '@method':
      return String(message.method).toUpperCase();
    case '@path': {
      const path = String(message.path);
      const q = path.indexOf('?');
      const p = q < 0 ? path : path.slice(0, q);
      return p === '' ? '/' : p;
    }
    case '@authority':
      return String(message.authority).trim().toLowerCase();
    case '@query':
      return `?${message.query ?? ''}`;
    case '@request-target': {
      const path = componentValue('@path', message);
      return message.query === undefined ? path : `${path}?${message.query}`;
    }
    default:
      break;
  }
  if (name.startsWith('@')) {
    throw new SignatureError('unauthenticated', `signature covers derived component "${name}", which this verifier does not support`);
  }
  const value = headerValue(message.headers, name);
  if (value === undefined) {
    throw new SignatureError('permission_denied', `signature covers the "${name}" header, which the request does not have`);
  }
  return value;
}

/**
 * Builds the RFC 9421 signature base: one `"<component>": <value>` line per
 * covered component in the order of `signatureParams`, then
 * `"@signature-params": <signatureParams>`, joined with LF (no trailing
 * newline). `signatureParams` is the inner list with its parameters exactly as
 * sent in `Signature-Input` (the text after `<label>=`). Supported components:
 * header fields and `@method`, `@path`, `@authority`, `@query`,
 * `@request-target`. Throws {@link SignatureError} (for a covered header the
 * message lacks: `permission_denied`; anything malformed or unsupported:
 * `unauthenticated`).
 * @example
 * const base = signatureBase('("@method" "@path");created=1618884473', { method: 'post', path: '/foo', authority: 'example.com', headers: {} });
 * // '"@method": POST\n"@path": /foo\n"@signature-params": ("@method" "@path");created=1618884473'
 */
export function signatureBase(signatureParams: string, message: SignatureMessage): string {
  let list: InnerList;
  try {
    list = parseSfInnerList(signatureParams);
  } catch (err) {
    throw new SignatureError('unauthenticated', `malformed Signature-Input: ${(err as Error).message}`);
  }
  return buildBase(componentNames(list), signatureParams, message);
}

function buildBase(names: readonly string[], signatureParams: string, message: SignatureMessage): string {
  const lines = names.map((name) => {
    const value = componentValue(name, message);
    if (/[\r\n]/.test(value)) {
      throw new SignatureError('unauthenticated', `the "${name}" component contains a line break`);
    }
    return `"${name}": ${value}`;
  });
  lines.push(`"@signature-params": ${signatureParams}`);
  return lines.join('\n');
}

/**
 * Signs a signature base with Ed25519 (the 64-byte signature).
 * @example
 * const sig = signSignatureBase(base, keys.privateKey);
 * headers.signature = `dispatch=:${Buffer.from(sig).toString('base64')}:`;
 */
export function signSignatureBase(base: string, privateKey: KeyObject): Uint8Array {
  return new Uint8Array(cryptoSign(null, Buffer.from(base, 'utf8'), privateKey));
}

/**
 * Verifies an Ed25519 signature over a signature base. Returns false (never
 * throws) for a wrong signature, a signature of the wrong length, or a key
 * that is not Ed25519.
 * @example
 * verifySignatureBase(base, signatureBytes, publicKey); // true or false
 */
export function verifySignatureBase(base: string, signature: Uint8Array, publicKey: KeyObject): boolean {
  try {
    if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
    if (publicKey.asymmetricKeyType !== 'ed25519') return false;
    return cryptoVerify(null, Buffer.from(base, 'utf8'), publicKey, signature);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// Signing (scheduler side)
// ---------------------------------------------------------------------------

/**
 * What {@link signRequest} signs.
 * @example
 * const options: SignRequestOptions = { method: 'POST', url: 'http://localhost:8000/dispatch.sdk.v1.FunctionService/Run', contentType: 'application/proto', body, privateKey };
 */
export interface SignRequestOptions {
  /** The HTTP method (signed uppercase). */
  method: string;
  /** The absolute URL: `@path` is its pathname (no query), `@authority` its host[:port] in lowercase. */
  url: string | URL;
  /** The Content-Type header that will be sent. */
  contentType: string;
  /** The exact body bytes that will be sent. */
  body: Uint8Array;
  /** The Ed25519 private key (or a {@link session} instead). */
  privateKey?: KeyObject;
  /**
   * Sign with a signature session's HMAC key instead of `privateKey`
   * (`alg="hmac-sha256"`, `keyid` the session's ID): see `session.ts`.
   */
  session?: SignatureSession;
  /**
   * More header fields to send and cover, after the five required
   * components (e.g. a `dispatch-session-offer`); they are returned with
   * the signature headers.
   */
  coveredHeaders?: Readonly<Record<string, string>>;
  /** Unix seconds; defaults to now. */
  created?: number;
  /** Optional `expires` parameter (Unix seconds), appended after `alg`. */
  expires?: number;
  /**
   * Optional `nonce` parameter, appended last: a random string that makes
   * two signatures of the same request different (an endpoint refuses a
   * signature it has already seen, so a scheduler that sends the same
   * bytes again within a second, a retry, needs one). Required with a
   * `session`: the request's sequence number in it, in decimal (1, 2,
   * 3, …, each once; the endpoint accepts each number once).
   */
  nonce?: string;
  /** Digest algorithm for Content-Digest; `sha-512` by default. */
  digestAlgorithm?: 'sha-512' | 'sha-256';
}

/**
 * Signs a request as Dispatch does and returns the headers to add:
 * `content-digest`, `signature-input` (label `dispatch`, components
 * `"@method" "@path" "@authority" "content-type" "content-digest"`, then
 * any `coveredHeaders`; parameters `created`, `keyid="default"`,
 * `alg="ed25519"` in that order, then `expires` and `nonce` when given)
 * and `signature`, plus the `coveredHeaders`. With `session`, the
 * signature is the session's HMAC-SHA256 (`keyid` its ID,
 * `alg="hmac-sha256"`).
 * @example
 * const headers = signRequest({ method: 'POST', url, contentType: 'application/proto', body, privateKey });
 * await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/proto', ...headers } });
 */
export function signRequest(options: SignRequestOptions): Record<'content-digest' | 'signature-input' | 'signature', string> & Record<string, string> {
  let url: URL;
  try {
    url = typeof options.url === 'string' ? new URL(options.url) : options.url;
  } catch {
    throw new TypeError(`signRequest: url must be an absolute URL, got ${quote(String(options.url))}`);
  }
  const created = options.created ?? Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(created)) throw new TypeError(`signRequest: created must be an integer (Unix seconds), got ${created}`);
  if (options.expires !== undefined && !Number.isSafeInteger(options.expires)) {
    throw new TypeError(`signRequest: expires must be an integer (Unix seconds), got ${options.expires}`);
  }
  if (options.nonce !== undefined && !/^[\x20-\x21\x23-\x5b\x5d-\x7e]+$/.test(options.nonce)) {
    throw new TypeError('signRequest: nonce must be a non-empty string of printable ASCII without " or \\');
  }
  const { session, privateKey } = options;
  if (!session && !privateKey) throw new TypeError('signRequest: give a privateKey (Ed25519) or a session');
  if (session && !/^[\x20-\x21\x23-\x5b\x5d-\x7e]+$/.test(session.id)) {
    throw new TypeError('signRequest: a session id must be a non-empty string of printable ASCII without " or \\');
  }
  if (session && (options.nonce === undefined || !SESSION_SEQUENCE.test(options.nonce))) {
    throw new TypeError(`signRequest: a session signature carries its sequence number in the session as nonce (1, 2, 3, …), got ${options.nonce === undefined ? 'none' : quote(options.nonce)}`);
  }
  const digest = contentDigest(options.body, options.digestAlgorithm);
  const covered = options.coveredHeaders;
  let names: readonly string[] = REQUIRED_COMPONENTS;
  const headers: Record<string, string> = { 'content-type': options.contentType, 'content-digest': digest };
  if (covered) {
    const more = [...REQUIRED_COMPONENTS];
    names = more;
    for (const [name, value] of Object.entries(covered)) {
      const lower = name.toLowerCase();
      if (more.includes(lower) || !/^[a-z0-9][a-z0-9_.*-]*$/.test(lower)) throw new TypeError(`signRequest: cannot cover header ${quote(name)}`);
      more.push(lower);
      headers[lower] = value;
    }
  }
  const keying = session ? `keyid="${session.id}";alg="${SESSION_SIGNATURE_ALGORITHM}"` : `keyid="${SIGNATURE_KEY_ID}";alg="ed25519"`;
  const params =
    `(${names.map((c) => `"${c}"`).join(' ')});created=${created};${keying}` +
    (options.expires === undefined ? '' : `;expires=${options.expires}`) +
    (options.nonce === undefined ? '' : `;nonce="${options.nonce}"`);
  const base = buildBase(names, params, { method: options.method, path: url.pathname, authority: url.host, headers });
  const signature = (session ? signSessionBase(base, session.key) : Buffer.from(signSignatureBase(base, privateKey!))).toString('base64');
  const out: Record<string, string> = {
    'content-digest': digest,
    'signature-input': `${SIGNATURE_LABEL}=${params}`,
    signature: `${SIGNATURE_LABEL}=:${signature}:`,
  };
  if (covered) for (const name of names.slice(REQUIRED_COMPONENTS.length)) out[name] = headers[name]!;
  return out as Record<'content-digest' | 'signature-input' | 'signature', string> & Record<string, string>;
}

// ---------------------------------------------------------------------------
// Verification (endpoint side)
// ---------------------------------------------------------------------------

/**
 * A received request to verify.
 * @example
 * const input: VerifyRequestInput = { method: req.method!, path: url.pathname, authority: req.headers.host ?? '', headers: req.headers, body, publicKey };
 */
export interface VerifyRequestInput {
  /** The HTTP method as received. */
  method: string;
  /** The path as received, without the query (a query is cut off if present). */
  path: string;
  /** The Host header value as received. */
  authority: string;
  /** The query without `?`, only needed if a signer covers `@query`/`@request-target`. */
  query?: string;
  /** Header fields, lowercase names, as `node:http` gives them. */
  headers: Record<string, string | string[] | undefined>;
  /** The exact raw body bytes. */
  body: Uint8Array;
  /** The verification key (see {@link parseVerificationKey}). */
  publicKey: KeyObject;
  /**
   * The endpoint's signature sessions (`session.ts`): a signature with
   * `alg="hmac-sha256"` is verified with the key of its `keyid` there.
   * Without it, such signatures are refused (401).
   */
  sessions?: { key(id: string): KeyObject | undefined };
  /** Current time in milliseconds since the epoch; defaults to `Date.now()`. */
  now?: number;
}

/**
 * The verdict of {@link verifyRequest}: `unauthenticated` is answered with
 * HTTP 401, `permission_denied` with 403. The message says what was wrong and
 * never contains key material.
 * @example
 * const r: VerifyResult = verifyRequest(input);
 * if (!r.ok) return { status: r.code === 'unauthenticated' ? 401 : 403, body: { code: r.code, message: r.message } };
 */
export type VerifyResult = { ok: true } | { ok: false; code: SignatureErrorCode; message: string };

function deny(code: SignatureErrorCode, message: string): never {
  throw new SignatureError(code, message);
}

/**
 * Verifies the signature of a request to the endpoint (PROTOCOL.md 3.3 and
 * 8.3). Never throws.
 *
 * `unauthenticated` (401): no or malformed `Signature-Input`/`Signature`,
 * several signatures, a required component not covered, an unsupported
 * component, `keyid` other than `"default"`, `alg` present and not
 * `"ed25519"`, `created` missing, `Content-Digest` missing or without a
 * sha-512/sha-256 entry. A signature with `alg="hmac-sha256"` is a
 * signature session's (`session.ts`): its `keyid` must be a live session
 * of `input.sessions` (401 otherwise), and its 32 bytes the HMAC of the
 * base under that session's key (403 otherwise).
 *
 * `permission_denied` (403): the signature does not verify (including a
 * covered header the request lacks), is older than 5 minutes, more than 5 s
 * in the future or past its `expires` (with 5 s of tolerance), or the digest
 * does not match the body (constant-time comparison; every sha-512/sha-256
 * entry present must match).
 * @example
 * const result = verifyRequest({ method: 'POST', path: '/dispatch.sdk.v1.FunctionService/Run', authority: 'localhost:8000', headers: req.headers, body, publicKey });
 * if (!result.ok) console.warn(`refused: ${result.message}`);
 */
export function verifyRequest(input: VerifyRequestInput): VerifyResult {
  const result = verifySignature(input);
  return result.ok ? { ok: true } : result;
}

/**
 * The signature headers of a request, checked for everything that does not
 * need the body: see {@link checkSignatureHeaders}.
 * @example
 * const r = checkSignatureHeaders({ headers: req.headers });
 * if (r.ok) replayCache.has(r.signature.bytes);
 */
export interface SignatureHeaders {
  /** The signature's label (`dispatch` for this project's scheduler). */
  readonly label: string;
  /** The raw signature bytes: 64 for Ed25519, 32 for a session's HMAC (their length is checked with the signature). */
  readonly bytes: Uint8Array;
  /** The session ID (`keyid`) of a signature with `alg="hmac-sha256"`; undefined for Ed25519. */
  readonly session: string | undefined;
  /**
   * A session signature's sequence number (its `nonce`, a positive decimal
   * integer, increasing per session): what the endpoint's replay window
   * remembers instead of the signature; undefined for Ed25519.
   */
  readonly sequence: number | undefined;
  /** `created`, Unix seconds. */
  readonly created: number;
  /** `expires`, Unix seconds, if sent. */
  readonly expires: number | undefined;
  /**
   * The last moment (ms since the epoch) this signature can be accepted:
   * `created` + 5 minutes, or `expires` + the clock skew if sooner. A replay
   * cache keeps the signature until then.
   */
  readonly validUntilMs: number;
  /** The covered components, in order. */
  readonly components: readonly string[];
  /** The signature parameters exactly as sent (the signature base's last line). */
  readonly params: string;
  /** The sha-512/sha-256 entries of `Content-Digest`. */
  readonly digests: ReadonlyArray<readonly [keyof typeof DIGESTS, Uint8Array]>;
}

/**
 * The verdict of {@link checkSignatureHeaders}.
 * @example
 * const r: SignatureHeadersResult = checkSignatureHeaders({ headers });
 */
export type SignatureHeadersResult = { ok: true; signature: SignatureHeaders } | { ok: false; code: SignatureErrorCode; message: string };

/**
 * Checks a request's signature headers before its body is read (PROTOCOL.md
 * 3.3): presence and form of `Signature-Input`, `Signature` and
 * `Content-Digest`, exactly one signature, the required components,
 * `keyid`, `alg`, and that `now` is within the signature's validity
 * (`created` at most 5 minutes old and at most 5 s in the future, `expires`
 * not past, 5 s of skew). What it cannot check — that the signature
 * verifies and the digest matches the body — is {@link verifyRequest}'s.
 * Never throws; same codes and messages as {@link verifyRequest}.
 * @example
 * const r = checkSignatureHeaders({ headers: req.headers });
 * if (!r.ok) return reply(r.code === 'unauthenticated' ? 401 : 403, r.message); // before reading the body
 */
export function checkSignatureHeaders(input: { headers: Record<string, string | string[] | undefined>; now?: number }): SignatureHeadersResult {
  try {
    const signature = parseSignatureHeaders(input.headers);
    checkValidity(signature, input.now ?? Date.now());
    return { ok: true, signature };
  } catch (err) {
    if (err instanceof SignatureError) return { ok: false, code: err.code, message: err.message };
    return { ok: false, code: 'unauthenticated', message: 'could not read the request signature: its headers are malformed' };
  }
}

/**
 * {@link verifyRequest}, answering the verified signature's headers (its
 * bytes and validity, for a replay cache). Never throws.
 * @example
 * const r = verifySignature(input);
 * if (r.ok && cache.remember(r.signature.bytes, r.signature.validUntilMs) !== 'fresh') refuse();
 */
export function verifySignature(input: VerifyRequestInput): SignatureHeadersResult {
  try {
    return { ok: true, signature: verifyOrThrow(input) };
  } catch (err) {
    if (err instanceof SignatureError) return { ok: false, code: err.code, message: err.message };
    return { ok: false, code: 'unauthenticated', message: 'could not verify the request signature: the request or its signature is malformed' };
  }
}

function verifyOrThrow(input: VerifyRequestInput): SignatureHeaders {
  const parsed = parseSignatureHeaders(input.headers);
  const base = buildBase(parsed.components, parsed.params, {
    method: input.method,
    path: input.path,
    authority: input.authority,
    query: input.query,
    headers: input.headers,
  });
  const signature = parsed.bytes;
  if (parsed.session !== undefined) {
    const key = input.sessions?.key(parsed.session);
    if (key === undefined) deny('unauthenticated', unknownSessionMessage(parsed.session, input.sessions !== undefined));
    if (!verifySessionBase(base, signature, key)) {
      deny('permission_denied', `signature does not verify under session ${quote(parsed.session)}: the request changed after signing, or it was signed with another key`);
    }
  } else if (signature.length !== 64) {
    deny('permission_denied', `signature does not verify: an Ed25519 signature has 64 bytes, this one has ${signature.length}`);
  } else if (!verifySignatureBase(base, signature, input.publicKey)) {
    deny(
      'permission_denied',
      'signature does not verify: the request was not signed with the configured verification key, ' +
        'or its method, path, host or covered headers changed after signing',
    );
  }
  checkValidity(parsed, input.now ?? Date.now());
  for (const [alg, want] of parsed.digests) {
    const got = createHash(DIGESTS[alg]).update(input.body).digest();
    if (want.length !== got.length || !timingSafeEqual(got, want)) {
      deny('permission_denied', `the body does not match its Content-Digest (${alg})`);
    }
  }
  return parsed;
}

/** Everything about the signature headers that needs neither the body nor the key. */
/**
 * The last headers parsed and what they gave: an endpoint checks a
 * request's signature headers before reading its body (precheck.ts), then
 * verifies them with the body; the second parse of the same three header
 * values is this one (the structured-field parsing was ~10 % of an endpoint's
 * CPU per request). A pure function of the three strings, so the same
 * answer.
 */
let lastParsed: { input: string; signature: string; digest: string | undefined; parsed: SignatureHeaders } | undefined;

function parseSignatureHeaders(headers: Record<string, string | string[] | undefined>): SignatureHeaders {
  const inputText = headerValue(headers, 'signature-input');
  const signatureText = headerValue(headers, 'signature');
  const last = lastParsed;
  if (last && last.input === inputText && last.signature === signatureText && last.digest === headerValue(headers, 'content-digest')) return last.parsed;
  const parsed = parseSignatureHeadersOnce(headers, inputText, signatureText);
  lastParsed = { input: inputText as string, signature: signatureText as string, digest: headerValue(headers, 'content-digest'), parsed };
  return parsed;
}

function parseSignatureHeadersOnce(
  headers: Record<string, string | string[] | undefined>,
  inputText: string | undefined,
  signatureText: string | undefined,
): SignatureHeaders {
  if (inputText === undefined && signatureText === undefined) {
    deny('unauthenticated', 'request is not signed: the Signature-Input and Signature headers are missing');
  }
  if (inputText === undefined) deny('unauthenticated', 'request is not signed: the Signature-Input header is missing');
  if (signatureText === undefined) deny('unauthenticated', 'request is not signed: the Signature header is missing');

  const inputs = parseHeader('Signature-Input', inputText);
  const signatures = parseHeader('Signature', signatureText);
  if (inputs.size === 0) deny('unauthenticated', 'malformed Signature-Input header: it is empty');
  if (signatures.size === 0) deny('unauthenticated', 'malformed Signature header: it is empty');
  if (inputs.size > 1 || signatures.size > 1) {
    const labels = [...new Set([...inputs.keys(), ...signatures.keys()])].map(quote).join(', ');
    deny('unauthenticated', `request carries several signatures (labels ${labels}); exactly one is accepted`);
  }
  const [label, member] = [...inputs][0] as [string, SfMember];
  const sigMember = signatures.get(label);
  if (sigMember === undefined) {
    deny('unauthenticated', `malformed Signature header: no signature labelled ${quote(label)} as in Signature-Input`);
  }
  const list = member.value;
  if (!isInnerList(list)) {
    deny('unauthenticated', `malformed Signature-Input header: ${quote(label)} must be an inner list of components`);
  }
  const signature = isInnerList(sigMember.value) ? undefined : bytesOf(sigMember.value[0]);
  if (signature === undefined) {
    deny('unauthenticated', `malformed Signature header: ${quote(label)} must be a byte sequence (:base64:)`);
  }

  const names = componentNames(list);
  const missing = REQUIRED_COMPONENTS.filter((c) => !names.includes(c));
  if (missing.length > 0) {
    deny('unauthenticated', `signature does not cover required component${missing.length > 1 ? 's' : ''} ${missing.map((c) => `"${c}"`).join(', ')}`);
  }

  const params = list[1];
  const keyid = params.get('keyid');
  if (keyid === undefined) deny('unauthenticated', `signature has no keyid parameter; expected keyid="${SIGNATURE_KEY_ID}"`);
  const alg = params.get('alg');
  let session: string | undefined;
  let sequence: number | undefined;
  if (alg === SESSION_SIGNATURE_ALGORITHM) {
    // A signature session's HMAC (session.ts): the keyid names the session, the nonce numbers the request in it.
    if (typeof keyid !== 'string' || keyid === '' || keyid === SIGNATURE_KEY_ID) {
      deny('unauthenticated', `a signature with alg="${SESSION_SIGNATURE_ALGORITHM}" names its session in keyid, got ${shown(keyid)}`);
    }
    session = keyid;
    const nonce = params.get('nonce');
    if (typeof nonce !== 'string' || !SESSION_SEQUENCE.test(nonce)) {
      deny('unauthenticated', `a signature with alg="${SESSION_SIGNATURE_ALGORITHM}" carries its sequence number in the session as nonce="<1, 2, 3, …>", got ${nonce === undefined ? 'no nonce' : shown(nonce)}`);
    }
    sequence = Number(nonce);
  } else {
    if (keyid !== SIGNATURE_KEY_ID) deny('unauthenticated', `unknown keyid ${shown(keyid)}; expected "${SIGNATURE_KEY_ID}"`);
    if (alg !== undefined && alg !== 'ed25519') deny('unauthenticated', `unsupported signature algorithm ${shown(alg)}; expected "ed25519"`);
  }
  const created = integerParam(params.get('created'), 'created');
  if (created === undefined) deny('unauthenticated', 'signature has no created parameter');
  const expires = integerParam(params.get('expires'), 'expires');

  const digestText = headerValue(headers, 'content-digest');
  if (digestText === undefined) deny('unauthenticated', 'the Content-Digest header is missing');
  const digests = parseHeader('Content-Digest', digestText);
  const expected: Array<[keyof typeof DIGESTS, Uint8Array]> = [];
  for (const alg of Object.keys(DIGESTS) as Array<keyof typeof DIGESTS>) {
    const entry = digests.get(alg);
    if (entry === undefined) continue;
    const digest = isInnerList(entry.value) ? undefined : bytesOf(entry.value[0]);
    if (digest === undefined) deny('unauthenticated', `malformed Content-Digest header: ${alg} must be a byte sequence (:base64:)`);
    expected.push([alg, digest]);
  }
  if (expected.length === 0) deny('unauthenticated', 'the Content-Digest header has no sha-512 or sha-256 digest');

  const validUntil = Math.min(created + MAX_SIGNATURE_AGE_SECONDS, expires === undefined ? Infinity : expires + CLOCK_SKEW_SECONDS);
  // Frozen: the same object answers the next parse of the same headers.
  return Object.freeze({
    label,
    bytes: signature,
    session,
    sequence,
    created,
    expires,
    validUntilMs: validUntil * 1000,
    components: Object.freeze(names),
    params: member.raw,
    digests: Object.freeze(expected.map((d) => Object.freeze(d))),
  });
}

/** A session signature's `nonce`: its sequence number, 1 to 10^15 - 1 in decimal (a safe integer). */
const SESSION_SEQUENCE = /^[1-9][0-9]{0,14}$/;

/** Refuses a signature `nowMs` is not within the validity of (403). */
function checkValidity({ created, expires }: SignatureHeaders, nowMs: number): void {
  const now = Math.floor(nowMs / 1000);
  const createdMs = created * 1000;
  if (createdMs > nowMs + CLOCK_SKEW_SECONDS * 1000) {
    deny('permission_denied', `signature is from the future (created ${created}, now ${now}); check the clocks`);
  }
  if (nowMs - createdMs > MAX_SIGNATURE_AGE_SECONDS * 1000) {
    deny('permission_denied', `signature is older than 5 minutes (created ${created}, now ${now})`);
  }
  if (expires !== undefined && nowMs > (expires + CLOCK_SKEW_SECONDS) * 1000) {
    deny('permission_denied', `signature has expired (expires ${expires}, now ${now})`);
  }
}

/** A string parameter quoted for a message, or the type of another bare item. */
function shown(item: BareItem): string {
  return typeof item === 'string' ? quote(item) : `a ${typeOf(item)}`;
}

/** An integer signature parameter, or `undefined` when absent. */
function integerParam(item: BareItem | undefined, name: string): number | undefined {
  if (item === undefined) return undefined;
  if (typeof item !== 'number' || !Number.isSafeInteger(item)) deny('unauthenticated', `malformed Signature-Input: ${name} must be an integer`);
  return item;
}

function parseHeader(name: string, text: string): Map<string, SfMember> {
  try {
    return parseSfDictionary(text);
  } catch (err) {
    const why = err instanceof StructuredFieldError ? err.message : 'unparsable';
    return deny('unauthenticated', `malformed ${name} header: ${why}`);
  }
}
