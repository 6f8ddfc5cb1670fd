/**
 * How the scheduler signs a RunRequest: RFC 9421 (the core's
 * `signRequest`), valid for `SIGNATURE_VALIDITY_SECONDS` (its `expires`),
 * with a `nonce` of its own, so that two attempts of a call whose bytes are
 * the same within one second still carry two signatures: an endpoint
 * refuses a signature it has already accepted.
 *
 * With Ed25519, or, with an endpoint that opens signature sessions (a
 * protocol extension: `@dispatch/core`'s `signature/session.ts`), with
 * HMAC-SHA256 under the session's key: the first request after the
 * endpoint says it accepts them carries an offer, covered by its Ed25519
 * signature; the answer opens the session; the following requests use it,
 * numbered in their nonce (1, 2, 3, …: the endpoint's replay window), until
 * 30 s before it expires, then the next one offers again.
 * @module
 */
import { type KeyObject, randomBytes } from 'node:crypto';
import {
  SESSION_KEY_AGREEMENT,
  SESSION_OFFER_HEADER,
  SessionOffer,
  SIGNATURE_VALIDITY_SECONDS,
  type SignatureSession,
  signRequest,
} from '@dispatch/core/protocol';

/**
 * A signed request's headers, and how it was signed (for
 * {@link RequestSigner.answered}).
 * @example
 * const signed = signer.sign(url, 'application/proto', body);
 * await post(url, body, { 'content-type': 'application/proto', ...signed.headers });
 */
export interface SignedRequest {
  /** `content-digest`, `signature-input`, `signature`, and an offer's header when there is one. */
  readonly headers: Record<string, string>;
  /** The session it was signed with (HMAC-SHA256); undefined: Ed25519. */
  readonly session: SignatureSession | undefined;
  /** The session offer it carries, if any. */
  readonly offer: SessionOffer | undefined;
}

/**
 * What {@link RequestSigner.answered} needs of an endpoint's answer.
 * @example
 * signer.answered(url, signed, { statusCode: 200, sessionAccept: 'x25519', session: undefined });
 */
export interface SignedAnswer {
  /** The HTTP status; undefined when no answer came (a transport failure). */
  readonly statusCode: number | undefined;
  /** The endpoint's `dispatch-session-accept` header. */
  readonly sessionAccept: string | undefined;
  /** The endpoint's `dispatch-session` header (a session opened for the offer). */
  readonly session: string | undefined;
}

/**
 * What an answer did to an endpoint's signature session: `opened` (the
 * answer to an offer opened one), `refused` (the endpoint no longer knows
 * the session the request was signed with: the request goes again with
 * Ed25519), `given_up` (refused, and the endpoint forgot its sessions so
 * soon, three times, that it gets Ed25519 only from now on).
 * @example
 * transport = new HttpTransport(client, signer, { onSession: (endpoint, event) => sessions.inc({ endpoint, outcome: event }) });
 */
export type SessionEvent = 'opened' | 'refused' | 'given_up';

/**
 * The verdict of {@link RequestSigner.answered}: `resend` when the request
 * must go again (its session was refused; it is signed with Ed25519 next),
 * and what happened to the session, if anything.
 * @example
 * const { resend, event } = signer.answered(url, signed, answer);
 */
export interface Answered {
  readonly resend: boolean;
  readonly event: SessionEvent | undefined;
}

const DONE: Answered = Object.freeze({ resend: false, event: undefined });
const RESEND: Answered = Object.freeze({ resend: true, event: undefined });

/** Sessions refused after fewer uses than this count as short-lived. */
const SHORT_LIVED_USES = 100;
/** After this many short-lived sessions with an endpoint, it gets Ed25519 only (e.g. several processes behind one URL, each knowing only its own sessions). */
const MAX_SHORT_LIVED = 3;
/** A session is not used in the last 30 s of its life (clock skew, requests in flight). */
const SESSION_MARGIN_MS = 30_000;
/** Most endpoints whose sessions are remembered. */
const MAX_ENDPOINTS = 10_000;

interface EndpointSessions {
  /** The endpoint said it opens sessions (its last 200 answer carried the accept header). */
  accepts: boolean;
  session: SignatureSession | undefined;
  /** Requests signed with the current session: the last one's sequence number in it. */
  uses: number;
  /** The offer in flight (one at a time). */
  offering: SessionOffer | undefined;
  shortLived: number;
  /** Sessions given up for this endpoint (see MAX_SHORT_LIVED). */
  off: boolean;
}

/**
 * Signs the scheduler's requests to endpoints.
 * @example
 * const signer = new RequestSigner(privateKey);
 * const signed = signer.sign(url, 'application/proto', body);
 * const reply = await post(url, body, signed.headers);
 * if (signer.answered(url, signed, reply).resend) { ... } // the session was refused: sign again (Ed25519)
 */
export class RequestSigner {
  readonly #privateKey: KeyObject;
  /** Random per process, then a counter: nonces never repeat, and cost no entropy per request. */
  readonly #prefix = randomBytes(9).toString('base64url');
  #count = 0;
  readonly #now: () => number;
  readonly #sessions: boolean;
  readonly #endpoints = new Map<string, EndpointSessions>();

  /** `options.sessions`: use signature sessions with endpoints that accept them (default true). */
  constructor(privateKey: KeyObject, now: () => number = Date.now, options: { sessions?: boolean } = {}) {
    this.#privateKey = privateKey;
    this.#now = now;
    this.#sessions = options.sessions ?? true;
  }

  /** Signs one request: with the endpoint's session if one is live, else with Ed25519 (and an offer when the endpoint accepts sessions). */
  sign(url: URL, contentType: string, body: Uint8Array): SignedRequest {
    const nowMs = this.#now();
    const created = Math.floor(nowMs / 1000);
    const common = {
      method: 'POST',
      url,
      contentType,
      body,
      created,
      expires: created + SIGNATURE_VALIDITY_SECONDS,
    };
    const state = this.#sessions ? this.#endpoints.get(url.href) : undefined;
    if (state) {
      const session = state.session;
      if (session && nowMs < session.expiresAtMs - SESSION_MARGIN_MS) {
        // The session's requests are numbered 1, 2, 3, …: the endpoint accepts each number once.
        return { headers: signRequest({ ...common, nonce: String(++state.uses), session }), session, offer: undefined };
      }
      state.session = undefined;
      if (state.accepts && !state.offering && !state.off) {
        const offer = (state.offering = new SessionOffer());
        const headers = signRequest({ ...common, nonce: this.#nonce(), privateKey: this.#privateKey, coveredHeaders: { [SESSION_OFFER_HEADER]: offer.header } });
        return { headers, session: undefined, offer };
      }
    }
    return { headers: signRequest({ ...common, nonce: this.#nonce(), privateKey: this.#privateKey }), session: undefined, offer: undefined };
  }

  /** An Ed25519 signature's nonce: this process's random prefix and a counter. */
  #nonce(): string {
    return `${this.#prefix}.${(this.#count++).toString(36)}`;
  }

  /**
   * Learns from an endpoint's answer to a signed request: whether it
   * accepts sessions, the session its answer opened. `resend` when the
   * request was signed with a session the endpoint refused (401 or 403:
   * it restarted or forgot it): the session is dropped, and the same body
   * signed again goes with Ed25519.
   */
  answered(url: URL, signed: SignedRequest, answer: SignedAnswer): Answered {
    if (!this.#sessions) return DONE;
    let state = this.#endpoints.get(url.href);
    if (!state) {
      if (answer.statusCode !== 200 || answer.sessionAccept !== SESSION_KEY_AGREEMENT) return DONE;
      if (this.#endpoints.size >= MAX_ENDPOINTS) this.#endpoints.clear();
      this.#endpoints.set(url.href, (state = { accepts: true, session: undefined, uses: 0, offering: undefined, shortLived: 0, off: false }));
    }
    if (signed.offer && state.offering === signed.offer) state.offering = undefined;
    if (signed.session && (answer.statusCode === 401 || answer.statusCode === 403)) {
      if (state.session !== signed.session) return RESEND; // already dropped by another request's answer
      state.session = undefined;
      if (state.uses < SHORT_LIVED_USES && ++state.shortLived >= MAX_SHORT_LIVED) {
        state.off = true;
        return { resend: true, event: 'given_up' };
      }
      return { resend: true, event: 'refused' };
    }
    if (answer.statusCode !== 200) return DONE;
    state.accepts = answer.sessionAccept === SESSION_KEY_AGREEMENT;
    if (!state.accepts) state.session = undefined;
    else if (signed.offer) {
      const session = signed.offer.accept(answer.session, this.#now());
      if (session) {
        state.session = session;
        state.uses = 0;
        return { resend: false, event: 'opened' };
      }
    }
    return DONE;
  }
}
