/**
 * Passwords and keys out of what the scheduler prints or logs: every log
 * line, the CLI's errors and `dispatch run`'s output go through
 * {@link Redactor.redact}; the dashboard and `dispatch get` show call errors
 * through {@link redactText}.
 *
 * Redacted (replaced by `***`): the password of any URL
 * (`postgres://user:***@host`), `password=` parameters (URL queries,
 * libpq strings), `Bearer` tokens, PEM private keys, keys this scheduler
 * generates (`dsk_***`), and the exact secrets a {@link Redactor} was given
 * (API keys, the signing key, a database password).
 * @module
 */

/** What a secret becomes. */
export const REDACTED = '***';

/** Secrets shorter than this are not searched for by value (they would hide ordinary words). */
const MIN_SECRET_LENGTH = 8;

const PATTERNS: ReadonlyArray<readonly [RegExp, string]> = [
  // scheme://user:password@host → scheme://user:***@host
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@'"]*:)[^\s@/'"]+@/gi, `$1${REDACTED}@`],
  // password=... in a query or a key=value connection string
  [/\b((?:ssl)?pass(?:word|wd)?|pwd)=(?!\*\*\*)[^\s&;'"]+/gi, `$1=${REDACTED}`],
  [/\b(Bearer\s+)(?!\*\*\*)[^\s'",]+/g, `$1${REDACTED}`],
  [/-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g, REDACTED],
  // API keys this scheduler generates
  [/\bdsk_[A-Za-z0-9_-]{16,}/g, `dsk_${REDACTED}`],
];

/**
 * `text` with URL passwords, `password=` parameters, bearer tokens, PEM
 * private keys and generated API keys replaced by `***`.
 * @example
 * redactText('cannot connect to postgres://app:s3cret@db/prod'); // 'cannot connect to postgres://app:***@db/prod'
 */
export function redactText(text: string): string {
  let out = text;
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/**
 * Redacts the patterns of {@link redactText} and, by value, the secrets it
 * was given (API keys, the signing key's text, a database password).
 * @example
 * const redactor = new Redactor([apiKey]);
 * log(redactor.redact(`request with ${apiKey}`)); // 'request with ***'
 */
export class Redactor {
  readonly #secrets = new Set<string>();

  constructor(secrets: Iterable<string | undefined> = []) {
    for (const s of secrets) this.add(s);
  }

  /** Also redacts `secret` wherever it appears (ignored when shorter than 8 characters). */
  add(secret: string | undefined): this {
    const s = secret?.trim();
    if (s && s.length >= MIN_SECRET_LENGTH) this.#secrets.add(s);
    return this;
  }

  /** `text` without its secrets. */
  redact(text: string): string {
    let out = text;
    for (const secret of this.#secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return redactText(out);
  }
}

/**
 * The password of a URL (`postgres://user:password@host`), decoded, or
 * undefined; for a {@link Redactor} to hide it wherever it appears alone.
 * @example
 * urlPassword('postgres://app:s%40cret@db/prod'); // 's@cret'
 */
export function urlPassword(url: string): string | undefined {
  try {
    const password = new URL(url).password;
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    return undefined;
  }
}
