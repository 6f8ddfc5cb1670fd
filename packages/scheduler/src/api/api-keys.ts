/**
 * The API keys a scheduler accepts: long enough to resist guessing, and
 * generated long when none is given.
 * @module
 */
import { randomBytes } from 'node:crypto';

/**
 * The shortest API key accepted: 16 characters. Generated keys have 36
 * (`dsk_` and 24 random bytes in base64url).
 * @example if (key.length < MIN_API_KEY_LENGTH) throw new Error('too short');
 */
export const MIN_API_KEY_LENGTH = 16;

/**
 * A new random API key: `dsk_` and 24 random bytes in base64url.
 * @example const key = newApiKey(); // 'dsk_Xy3…' (36 characters)
 */
export function newApiKey(): string {
  return `dsk_${randomBytes(24).toString('base64url')}`;
}

/**
 * Refuses keys that are empty, shorter than {@link MIN_API_KEY_LENGTH}, or
 * surrounded by whitespace, with a message that names the key by position
 * and length only (never its text) and says how to make a good one.
 * @example checkApiKeys(['dsk_…']); // throws a RangeError for ['K1']
 */
export function checkApiKeys(keys: readonly string[]): void {
  keys.forEach((key, i) => {
    const which = keys.length > 1 ? `API key #${i + 1}` : 'the API key';
    if (key.trim() === '') throw new RangeError(`${which} is empty: give a key of at least ${MIN_API_KEY_LENGTH} characters`);
    if (key !== key.trim()) throw new RangeError(`${which} starts or ends with whitespace: remove it (keys are compared exactly)`);
    if (key.length < MIN_API_KEY_LENGTH) {
      throw new RangeError(
        `${which} has ${key.length} characters; API keys need at least ${MIN_API_KEY_LENGTH}, so that they cannot be guessed: ` +
          "use a random one, e.g. node -e \"console.log('dsk_' + require('crypto').randomBytes(24).toString('base64url'))\", " +
          'or give none and the scheduler generates one',
      );
    }
  });
}
