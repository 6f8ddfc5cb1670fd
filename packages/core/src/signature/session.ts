/**
 * Signature sessions (a protocol extension of this project): after one
 * request signed with Ed25519, the scheduler signs the next ones to the
 * same endpoint with HMAC-SHA256 under a key the two agreed on, so that an
 * awaited call no longer pays an Ed25519 signature and its verification
 * (~35 µs and ~105 µs of CPU here) per request.
 *
 * 1. An endpoint that verifies signatures answers with
 *    `dispatch-session-accept: x25519` ({@link SESSION_ACCEPT_HEADER}).
 * 2. The scheduler sends, in a request signed with Ed25519 that covers it,
 *    `dispatch-session-offer: <base64 of a fresh X25519 public key>`
 *    ({@link SESSION_OFFER_HEADER}).
 * 3. The endpoint, once that signature verifies, makes its own X25519 key,
 *    derives the session key (HKDF-SHA256 of the shared secret, salted with
 *    both public keys) and answers
 *    `dispatch-session: id="<id>", key=:<base64 of its X25519 public key>:, expires=<Unix seconds>`
 *    ({@link SESSION_HEADER}).
 * 4. The scheduler derives the same key and signs with RFC 9421's
 *    `alg="hmac-sha256"`, `keyid="<id>"` until the session expires (same
 *    components, `created` and `expires`), numbering its requests in the
 *    session with `nonce="1"`, `"2"`, … The endpoint accepts each number
 *    once, within a window of the {@link SESSION_REPLAY_WINDOW} numbers
 *    below the highest it accepted (requests overtake each other on
 *    several connections): a replay is refused like a signature the
 *    replay cache knows, but the session's requests take no place in that
 *    cache, which, holding each signature for its 65 s, would fill at
 *    ~1,500 requests a second.
 *
 * Only the holder of the scheduler's private key can open a session (the
 * offer is covered by its Ed25519 signature; an offer that is not is
 * ignored), and only the two ends know the key (X25519: it never crosses
 * the wire). An endpoint that does not know a session (it restarted, the
 * session expired) answers 401; the scheduler then signs with Ed25519
 * again. Foreign endpoints never send the accept header and never see an
 * offer.
 * @module
 */
import { createHmac, createPublicKey, createSecretKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto';
import { bytesOf, isInnerList, parseSfDictionary } from './structured-fields.js';

/**
 * Response header of an endpoint that opens signature sessions; its value
 * is {@link SESSION_KEY_AGREEMENT}.
 * @example
 * if (response.headers[SESSION_ACCEPT_HEADER] === SESSION_KEY_AGREEMENT) offerNextTime = true;
 */
export const SESSION_ACCEPT_HEADER = 'dispatch-session-accept';

/**
 * The key agreement sessions use (the value of {@link SESSION_ACCEPT_HEADER}).
 * @example
 * headers[SESSION_ACCEPT_HEADER] = SESSION_KEY_AGREEMENT; // 'x25519'
 */
export const SESSION_KEY_AGREEMENT = 'x25519';

/**
 * Request header carrying the scheduler's X25519 public key (standard
 * base64 of the raw 32 bytes); an endpoint uses it only when the request's
 * Ed25519 signature covers it.
 * @example
 * signRequest({ ...options, coveredHeaders: { [SESSION_OFFER_HEADER]: offer.header } });
 */
export const SESSION_OFFER_HEADER = 'dispatch-session-offer';

/**
 * Response header that opens a session: a Structured Field dictionary
 * `id="<id>", key=:<base64>:, expires=<Unix seconds>`.
 * @example
 * const session = offer.accept(response.headers[SESSION_HEADER]);
 */
export const SESSION_HEADER = 'dispatch-session';

/**
 * The RFC 9421 algorithm of a session's signatures.
 * @example
 * `alg="${SESSION_SIGNATURE_ALGORITHM}"`; // alg="hmac-sha256"
 */
export const SESSION_SIGNATURE_ALGORITHM = 'hmac-sha256';

/**
 * How long an endpoint keeps a session by default, in seconds.
 * @example
 * new SessionTable({ ttlSeconds: SESSION_TTL_SECONDS });
 */
export const SESSION_TTL_SECONDS = 900;

/**
 * How far below the highest sequence number an endpoint accepted in a
 * session a request may come and still be accepted (once); older ones are
 * refused as replays (a request overtaken by this many others: the
 * scheduler then signs it again with Ed25519).
 * @example
 * if (sequence <= highest - SESSION_REPLAY_WINDOW) refuse();
 */
export const SESSION_REPLAY_WINDOW = 32_768;

/** DER prefix of an X25519 SubjectPublicKeyInfo (RFC 8410): the raw 32 bytes follow. */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const HKDF_INFO = Buffer.from('dispatch signature session v1', 'utf8');

/**
 * A session as the scheduler holds it: its ID (the signatures' `keyid`),
 * the HMAC key and when the endpoint forgets it.
 * @example
 * const headers = signRequest({ method: 'POST', url, contentType, body, session });
 */
export interface SignatureSession {
  /** The session's ID, sent as `keyid`. */
  readonly id: string;
  /** The HMAC-SHA256 key (a secret KeyObject). */
  readonly key: KeyObject;
  /** When the endpoint forgets the session (ms since the epoch). */
  readonly expiresAtMs: number;
}

function rawX25519(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' }).subarray(X25519_SPKI_PREFIX.length);
}

function x25519PublicKey(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

function sessionKey(privateKey: KeyObject, peer: KeyObject, offerRaw: Uint8Array, answerRaw: Uint8Array): KeyObject {
  const shared = diffieHellman({ privateKey, publicKey: peer });
  return createSecretKey(Buffer.from(hkdfSync('sha256', shared, Buffer.concat([offerRaw, answerRaw]), HKDF_INFO, 32)));
}

/** Standard base64 of exactly 32 bytes, or null. */
function raw32(text: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]{43}=$/.test(text)) return null;
  const raw = Buffer.from(text, 'base64');
  return raw.length === 32 ? raw : null;
}

/**
 * The scheduler's half of opening a session: a fresh X25519 key pair, the
 * offer header that carries its public half, and the session derived from
 * the endpoint's answer.
 * @example
 * const offer = new SessionOffer();
 * const headers = signRequest({ ...request, privateKey, coveredHeaders: { [SESSION_OFFER_HEADER]: offer.header } });
 * const session = offer.accept(String(response.headers[SESSION_HEADER] ?? '')); // null: none opened
 */
export class SessionOffer {
  /** The value of {@link SESSION_OFFER_HEADER}. */
  readonly header: string;
  readonly #privateKey: KeyObject;
  readonly #raw: Buffer;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('x25519');
    this.#privateKey = privateKey;
    this.#raw = rawX25519(publicKey);
    this.header = this.#raw.toString('base64');
  }

  /**
   * The session the endpoint's {@link SESSION_HEADER} opened, or null when
   * the header is missing or malformed (the request stays signed with
   * Ed25519 then). `nowMs` bounds a session whose `expires` is past.
   */
  accept(answer: string | undefined, nowMs: number = Date.now()): SignatureSession | null {
    if (!answer) return null;
    try {
      const dict = parseSfDictionary(answer);
      const id = dict.get('id')?.value;
      const key = dict.get('key')?.value;
      const expires = dict.get('expires')?.value;
      if (!id || !key || !expires || isInnerList(id) || isInnerList(key) || isInnerList(expires)) return null;
      const idText = id[0];
      const keyBytes = bytesOf(key[0]);
      const expiresAt = expires[0];
      if (typeof idText !== 'string' || !SESSION_ID.test(idText) || !keyBytes || keyBytes.length !== 32 || typeof expiresAt !== 'number') return null;
      if (!Number.isSafeInteger(expiresAt) || expiresAt * 1000 <= nowMs) return null;
      return { id: idText, key: sessionKey(this.#privateKey, x25519PublicKey(keyBytes), this.#raw, keyBytes), expiresAtMs: expiresAt * 1000 };
    } catch {
      return null;
    }
  }
}

/** A session ID: what this project's endpoints make (base64url), within what a keyid may be. */
const SESSION_ID = /^[A-Za-z0-9_-]{16,64}$/;

/**
 * Options of {@link SessionTable}.
 * @example
 * new SessionTable({ ttlSeconds: 300, maxEntries: 64 });
 */
export interface SessionTableOptions {
  /** How long a session lasts, in seconds (default {@link SESSION_TTL_SECONDS}). */
  ttlSeconds?: number;
  /** Most sessions kept; the oldest is forgotten past it (default 1,024). */
  maxEntries?: number;
  /** Clock in ms since the epoch (tests). */
  now?: () => number;
}

/**
 * The endpoint's sessions: opened from verified offers, looked up by the
 * `keyid` of a signature with `alg="hmac-sha256"`. In memory: a restart
 * forgets them, and the scheduler signs with Ed25519 again.
 * @example
 * const sessions = new SessionTable();
 * const answer = sessions.open(offerHeader); // the dispatch-session header, or null
 * const key = sessions.key(keyid);          // undefined: unknown or expired
 */
export class SessionTable {
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #sessions = new Map<string, OpenSession>();

  constructor(options: SessionTableOptions = {}) {
    const ttl = options.ttlSeconds ?? SESSION_TTL_SECONDS;
    if (!Number.isSafeInteger(ttl) || ttl < 1) throw new RangeError(`SessionTable: ttlSeconds must be a positive integer, got ${ttl}`);
    const max = options.maxEntries ?? 1024;
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`SessionTable: maxEntries must be a positive integer, got ${max}`);
    this.#ttlMs = ttl * 1000;
    this.#maxEntries = max;
    this.#now = options.now ?? Date.now;
  }

  /** Sessions held (expired ones included until they are looked up or pushed out). */
  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Opens a session for a verified offer (the {@link SESSION_OFFER_HEADER}
   * of a request whose Ed25519 signature covers it) and answers the
   * {@link SESSION_HEADER} value; null when the offer is not an X25519
   * public key.
   */
  open(offer: string): string | null {
    const offerRaw = raw32(offer.trim());
    if (!offerRaw) return null;
    let peer: KeyObject;
    try {
      peer = x25519PublicKey(offerRaw);
    } catch {
      return null;
    }
    const { privateKey, publicKey } = generateKeyPairSync('x25519');
    const answerRaw = rawX25519(publicKey);
    let key: KeyObject;
    try {
      key = sessionKey(privateKey, peer, offerRaw, answerRaw);
    } catch {
      return null; // a low-order point: no shared secret
    }
    const id = randomBytes(18).toString('base64url');
    const expiresAt = Math.floor((this.#now() + this.#ttlMs) / 1000);
    if (this.#sessions.size >= this.#maxEntries) this.#sessions.delete(this.#sessions.keys().next().value as string);
    this.#sessions.set(id, { key, expiresAtMs: expiresAt * 1000, highest: 0, seen: undefined });
    return `id="${id}", key=:${answerRaw.toString('base64')}:, expires=${expiresAt}`;
  }

  /** The key of a live session, or undefined (unknown or expired: then forgotten). */
  key(id: string): KeyObject | undefined {
    return this.#live(id)?.key;
  }

  /**
   * Whether a signature of the session with this sequence number would be
   * refused as a replay: accepted before, or more than
   * {@link SESSION_REPLAY_WINDOW} below the highest accepted. Changes
   * nothing (the endpoint asks before reading the body). False for a
   * session it does not hold ({@link key} answers that).
   */
  replayed(id: string, sequence: number): boolean {
    const session = this.#live(id);
    return session !== undefined && !fresh(session, sequence);
  }

  /**
   * Records that a verified signature of the session used this sequence
   * number; false when it was a replay ({@link replayed}), or the session
   * is not held. Call it only once the signature verifies: a forged one
   * must not move the window.
   */
  accept(id: string, sequence: number): boolean {
    const session = this.#live(id);
    if (session === undefined || !fresh(session, sequence)) return false;
    const seen = (session.seen ??= new Uint32Array(SESSION_REPLAY_WINDOW / 32));
    if (sequence > session.highest) {
      // The numbers between the old highest and this one enter the window unseen: their slots held numbers now out of it.
      if (sequence - session.highest >= SESSION_REPLAY_WINDOW) seen.fill(0);
      else for (let n = session.highest + 1; n < sequence; n++) seen[(n % SESSION_REPLAY_WINDOW) >>> 5]! &= ~(1 << (n & 31));
      session.highest = sequence;
    }
    seen[(sequence % SESSION_REPLAY_WINDOW) >>> 5]! |= 1 << (sequence & 31);
    return true;
  }

  #live(id: string): OpenSession | undefined {
    const session = this.#sessions.get(id);
    if (!session) return undefined;
    if (session.expiresAtMs <= this.#now()) {
      this.#sessions.delete(id);
      return undefined;
    }
    return session;
  }
}

/** A session an endpoint holds, and the sequence numbers its signatures used (a ring of {@link SESSION_REPLAY_WINDOW} bits). */
interface OpenSession {
  key: KeyObject;
  expiresAtMs: number;
  /** The highest sequence number accepted (0: none yet). */
  highest: number;
  /** Bit `n % SESSION_REPLAY_WINDOW`: number n was accepted, for n within the window below `highest`; made at the first. */
  seen: Uint32Array | undefined;
}

/** Whether a sequence number is new to the session and within its window. */
function fresh(session: OpenSession, sequence: number): boolean {
  if (sequence > session.highest) return true;
  if (sequence <= session.highest - SESSION_REPLAY_WINDOW || session.seen === undefined) return false;
  return (session.seen[(sequence % SESSION_REPLAY_WINDOW) >>> 5]! & (1 << (sequence & 31))) === 0;
}

/**
 * Why a session's signature is refused when the endpoint does not hold the
 * session (`holdsSessions`: it takes sessions, but not this one) or takes
 * none (HTTP 401 either way).
 * @example
 * unknownSessionMessage('abc', true); // 'unknown or expired signature session "abc" …'
 */
export function unknownSessionMessage(id: string, holdsSessions: boolean): string {
  return holdsSessions
    ? `unknown or expired signature session ${JSON.stringify(id.slice(0, 64))} (the endpoint restarted or forgot it): sign with the Ed25519 key and offer a new session`
    : `this endpoint accepts no signature sessions (alg="${SESSION_SIGNATURE_ALGORITHM}"): sign with the Ed25519 key`;
}

/**
 * HMAC-SHA256 of a signature base under a session's key (the 32-byte
 * signature of `alg="hmac-sha256"`).
 * @example
 * const mac = signSessionBase(base, session.key);
 */
export function signSessionBase(base: string, key: KeyObject): Buffer {
  return createHmac('sha256', key).update(base, 'utf8').digest();
}

/**
 * Whether a 32-byte HMAC-SHA256 signature is that of the base under the
 * key (constant-time). Never throws.
 * @example
 * verifySessionBase(base, signatureBytes, key); // true or false
 */
export function verifySessionBase(base: string, signature: Uint8Array, key: KeyObject): boolean {
  if (signature.length !== 32) return false;
  return timingSafeEqual(signSessionBase(base, key), signature);
}
