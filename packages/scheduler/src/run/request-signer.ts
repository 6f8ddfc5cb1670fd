/**
 * How the scheduler signs a RunRequest: RFC 9421 with Ed25519 (the core's
 * `signRequest`), valid for `SIGNATURE_VALIDITY_SECONDS` (its `expires`),
 * with a `nonce` of its own, so that two attempts of a call whose bytes are
 * the same within one second still carry two signatures: an endpoint
 * refuses a signature it has already accepted.
 * @module
 */
import { type KeyObject, randomBytes } from 'node:crypto';
import { SIGNATURE_VALIDITY_SECONDS, signRequest } from '@dispatch/core/protocol';

/**
 * Signs the scheduler's requests to endpoints.
 * @example
 * const signer = new RequestSigner(privateKey);
 * const headers = signer.sign(url, 'application/proto', body);
 */
export class RequestSigner {
  readonly #privateKey: KeyObject;
  /** Random per process, then a counter: nonces never repeat, and cost no entropy per request. */
  readonly #prefix = randomBytes(9).toString('base64url');
  #count = 0;
  readonly #now: () => number;

  constructor(privateKey: KeyObject, now: () => number = Date.now) {
    this.#privateKey = privateKey;
    this.#now = now;
  }

  /** The `content-digest`, `signature-input` and `signature` headers of one request. */
  sign(url: URL, contentType: string, body: Uint8Array): Record<'content-digest' | 'signature-input' | 'signature', string> {
    const created = Math.floor(this.#now() / 1000);
    return signRequest({
      method: 'POST',
      url,
      contentType,
      body,
      privateKey: this.#privateKey,
      created,
      expires: created + SIGNATURE_VALIDITY_SECONDS,
      nonce: `${this.#prefix}.${(this.#count++).toString(36)}`,
    });
  }
}
