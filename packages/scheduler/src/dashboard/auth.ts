/**
 * Who may see the dashboard: the holders of an API key of the scheduler.
 *
 * - A login form exchanges an API key for a session cookie (HttpOnly,
 *   SameSite=Lax, Path=/dashboard). The cookie is stateless: an expiry, a
 *   nonce and an HMAC under a secret derived from a random secret kept in the
 *   store and from the scheduler's API keys, so sessions survive a restart,
 *   work on every instance sharing the store, and all end when the keys
 *   change. Logging out revokes the nonce in the store (until the session
 *   would have expired), so it stays refused after a restart and on every
 *   instance.
 * - A one-time login link (`/dashboard/login?token=…`), minted by the CLI
 *   through {@link DashboardAuth.mintLoginToken}, signs in once within its
 *   lifetime, on the instance that minted it; only a GET uses it up (a HEAD,
 *   as link previewers send, leaves it).
 * - API clients may also send `Authorization: Bearer <key>`.
 * - Failed keys (login form or bearer) are counted per client address by the
 *   scheduler's {@link FailureThrottle}, shared with the API.
 * @module
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { FailureThrottle, MAX_AUTH_FAILURES_PER_MINUTE } from '../api/failure-throttle.js';
import type { Store } from '../store/store.js';

/** Name of the session cookie. */
export const SESSION_COOKIE = 'dispatch_dashboard';
/** Lifetime of a session. */
export const SESSION_TTL_MS = 12 * 3_600_000;
/** Lifetime of a one-time login link. */
export const LOGIN_TOKEN_TTL_MS = 3_600_000;
/** Failed logins allowed per client address per minute. */
export const MAX_FAILED_LOGINS_PER_MINUTE = MAX_AUTH_FAILURES_PER_MINUTE;

/**
 * What {@link DashboardAuth} needs besides the keys: where revocations are
 * kept (the store), the throttle of failed keys, a clock.
 * @example
 * new DashboardAuth(keys, secret, { revocations: store, throttle: new FailureThrottle() });
 */
export interface DashboardAuthOptions {
  /** Where logouts are kept (default: this process's memory only). */
  revocations?: Pick<Store, 'revokeSession' | 'isSessionRevoked'>;
  /** Failed keys per client (default: one of its own). */
  throttle?: FailureThrottle;
  /** Clock (tests). */
  now?: () => number;
}

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest();

/**
 * Sessions, one-time tokens and key checks of one dashboard.
 * @example
 * const auth = new DashboardAuth(['dsk_…'], secretFromStore);
 * const cookie = auth.login('dsk_…'); // a Set-Cookie value, or null
 */
export class DashboardAuth {
  readonly #keys: Buffer[];
  readonly #secret: Buffer;
  readonly #tokens = new Map<string, number>();
  /** Revoked here (also written to the store): answered without a query. */
  readonly #revoked = new Map<string, number>();
  readonly #revocations: DashboardAuthOptions['revocations'];
  /** Failed keys per client address. */
  readonly throttle: FailureThrottle;

  /**
   * @param apiKeys the scheduler's API keys
   * @param storedSecret a random secret kept in the store (shared by instances)
   */
  readonly #now: () => number;
  constructor(apiKeys: readonly string[], storedSecret: string, options: DashboardAuthOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#revocations = options.revocations;
    this.throttle = options.throttle ?? new FailureThrottle({ now: this.#now });
    this.#keys = apiKeys.map((k) => sha256(k));
    this.#secret = createHmac('sha256', storedSecret).update([...apiKeys].sort().join('\n')).digest();
  }

  /** True when `key` is one of the API keys (constant time over all keys). */
  checkKey(key: string): boolean {
    const given = sha256(key.trim());
    let ok = false;
    for (const k of this.#keys) ok = timingSafeEqual(given, k) || ok;
    return ok;
  }

  /** True for an `Authorization: Bearer <API key>` header. */
  checkBearer(header: string | undefined): boolean {
    const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
    return m ? this.checkKey(m[1]!) : false;
  }

  /** A new session token (the cookie's value). */
  newSession(): string {
    const expires = (this.#now() + SESSION_TTL_MS).toString(36);
    const nonce = randomBytes(16).toString('base64url');
    return `${expires}.${nonce}.${this.#mac(`${expires}.${nonce}`)}`;
  }

  /** True when `token` is a session of this dashboard that has not expired or been revoked (here or in the store). */
  async checkSession(token: string | undefined): Promise<boolean> {
    const session = this.#validSession(token);
    if (!session) return false;
    if (this.#revoked.has(session.nonce)) return false;
    return !(await this.#revocations?.isSessionRevoked(session.nonce, this.#now()));
  }

  /** The nonce and expiry of a well-formed, authentic, unexpired session token. */
  #validSession(token: string | undefined): { nonce: string; expiresAt: number } | null {
    const parts = (token ?? '').split('.');
    if (parts.length !== 3) return null;
    const [expires, nonce, mac] = parts as [string, string, string];
    const expected = Buffer.from(this.#mac(`${expires}.${nonce}`));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    const at = Number.parseInt(expires, 36);
    if (!(at > this.#now())) return null;
    return { nonce, expiresAt: at };
  }

  /** Ends a session until it would have expired anyway: here at once, and in the store (every instance, after a restart). */
  async revoke(token: string | undefined): Promise<void> {
    const session = this.#validSession(token);
    if (!session) return;
    this.#sweep();
    this.#revoked.set(session.nonce, session.expiresAt);
    await this.#revocations?.revokeSession(session.nonce, session.expiresAt);
  }

  /** A one-time login token, valid for {@link LOGIN_TOKEN_TTL_MS}. */
  mintLoginToken(): string {
    this.#sweep();
    const token = randomBytes(24).toString('base64url');
    this.#tokens.set(sha256(token).toString('hex'), this.#now() + LOGIN_TOKEN_TTL_MS);
    return token;
  }

  /** True while a one-time token is valid, without using it up (a HEAD request). */
  peekLoginToken(token: string): boolean {
    const expires = this.#tokens.get(sha256(token).toString('hex'));
    return expires !== undefined && expires > this.#now();
  }

  /** Uses up a one-time token: true the first time, within its lifetime. */
  redeemLoginToken(token: string): boolean {
    const key = sha256(token).toString('hex');
    const expires = this.#tokens.get(key);
    this.#tokens.delete(key);
    return expires !== undefined && expires > this.#now();
  }

  /** False when `client` failed to give a key too often in the last minute. */
  mayTryLogin(client: string): boolean {
    return this.throttle.mayTry(client);
  }

  /** Counts a failed key of `client`. */
  failedLogin(client: string): void {
    this.throttle.failed(client);
  }

  #mac(data: string): string {
    return createHmac('sha256', this.#secret).update(data).digest('base64url');
  }

  #sweep(): void {
    const now = this.#now();
    for (const [k, t] of this.#tokens) if (t <= now) this.#tokens.delete(k);
    for (const [k, t] of this.#revoked) if (t <= now) this.#revoked.delete(k);
  }
}

/**
 * The value of one cookie in a Cookie header.
 * @example
 * readCookie('a=1; dispatch_dashboard=x', 'dispatch_dashboard'); // 'x'
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
