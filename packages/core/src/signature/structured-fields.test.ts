import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseSfDictionary, parseSfDictionaryFast, parseSfDictionaryGeneral, type SfMember } from './structured-fields.js';

/** A parse as plain data: byte sequences as hex, Maps as entry lists, so that `toEqual` compares everything. */
function plain(parsed: Map<string, SfMember>): unknown {
  const bare = (v: unknown): unknown =>
    v instanceof ArrayBuffer || v instanceof Uint8Array ? { bytes: Buffer.from(v as Uint8Array).toString('hex') } : Object.is(v, -0) ? '-0' : v;
  const params = (m: Map<string, unknown>) => [...m].map(([k, v]) => [k, bare(v)]);
  const item = (x: [unknown, Map<string, unknown>]) => [bare(x[0]), params(x[1])];
  return [...parsed].map(([key, { value, raw }]) => [
    key,
    raw,
    Array.isArray(value[0]) ? { list: (value[0] as Array<[unknown, Map<string, unknown>]>).map(item), params: params(value[1]) } : item(value as [unknown, Map<string, unknown>]),
  ]);
}

/** The general parser's answer, or the error it throws. */
function general(text: string): unknown {
  try {
    return plain(parseSfDictionaryGeneral(text));
  } catch (err) {
    return { error: (err as Error).message };
  }
}

const b64 = (n: number) => randomBytes(n).toString('base64');

/** Headers as this project's scheduler and the Python SDK send them. */
const SENT = [
  `dispatch=("@method" "@path" "@authority" "content-type" "content-digest");created=1733500000;expires=1733500060;nonce="${randomBytes(16).toString('base64url')}";keyid="default";alg="ed25519"`,
  `dispatch=("@method" "@path" "@authority" "content-type" "content-digest" "dispatch-session-offer");created=1733500000;keyid="default"`,
  `dispatch=("@method" "@path" "@authority" "content-type" "content-digest");created=1733500000;expires=1733500060;nonce="n";keyid="s_${randomBytes(12).toString('base64url')}";alg="hmac-sha256"`,
  `sig1=("@method" "@path" "@authority");created=1733500000;keyid="default"`,
  `dispatch=:${b64(64)}:`,
  `dispatch=:${b64(32)}:`,
  `sha-512=:${b64(64)}:`,
  `sha-256=:${b64(32)}:`,
  'a=()',
  'a=:AA==:',
  'a=:AAA=:',
  'a=::',
  '*x.y_z-1=("a");p=007',
];

describe('parseSfDictionaryFast', () => {
  it('parses the signature headers senders send, exactly as the general parser does', () => {
    for (const text of SENT) {
      const fast = parseSfDictionaryFast(text);
      expect(fast, text).toBeDefined();
      expect(plain(fast as Map<string, SfMember>), text).toEqual(general(text));
      expect(plain(parseSfDictionary(text)), text).toEqual(general(text));
    }
  });

  it('leaves every other form to the general parser', () => {
    for (const text of [
      'a=1', // an integer member
      'a=?1',
      'a', // a boolean member
      'a=:AA==:, b=:AA==:', // two members
      'a=:AA==:;p=1', // a byte sequence with parameters
      'a=:AA:', // unpadded
      'a=:A===:',
      'a=:AA-_:', // base64url
      'a=("x" "y" )',
      'a=( "x")',
      'a=("x"  "y")',

      'a=(x)', // a token
      'a=("x");p', // a boolean parameter
      'a=("x"); p=1', // a space after ";"
      'a=("x");p=-1', // a sign
      'a=("x");p=1.5', // a decimal
      'a=("x");p=1234567890123456', // 16 digits
      'a=("x");p=tok',
      'a=("x");p=1;p=2', // a repeated parameter
      'a=("x") ', // trailing space
      ' a=("x")',
      'A=("x")',
      'a=("é")',
    ]) {
      expect(parseSfDictionaryFast(text), text).toBeUndefined();
    }
  });

  it('agrees with the general parser on every generated near-miss it accepts', () => {
    // Pieces of valid headers, then mutations: the fast path must answer undefined or exactly the general parse.
    const pieces = ['a', 'sig', '*k', 'x-1', '=', '(', ')', '"@method"', '"x y"', ' ', '  ', ';', 'created=', '1733500000', '007', '-1', '1.5', '"k"', ':', 'AAAA', 'AA==', 'AAA=', 'A', '=', '==', ',', '\\', '"', '?1', 'tok', '\t', 'é', 'B/+9'];
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let accepted = 0;
    let refused = 0;
    for (let round = 0; round < 30_000; round++) {
      let text: string;
      if (rand(2) === 0) {
        // A valid header with one mutation: a piece inserted, a character removed or replaced.
        const base = SENT[rand(SENT.length)] as string;
        const at = rand(base.length + 1);
        const piece = pieces[rand(pieces.length)] as string;
        const how = rand(3);
        text = how === 0 ? base.slice(0, at) + piece + base.slice(at) : how === 1 ? base.slice(0, at) + base.slice(at + 1) : base.slice(0, at) + piece + base.slice(at + 1);
      } else {
        text = Array.from({ length: 1 + rand(12) }, () => pieces[rand(pieces.length)]).join('');
      }
      const fast = parseSfDictionaryFast(text);
      if (fast === undefined) {
        refused++;
        continue;
      }
      accepted++;
      expect(plain(fast), JSON.stringify(text)).toEqual(general(text));
    }
    // Both branches were exercised, many times.
    expect(accepted).toBeGreaterThan(3000);
    expect(refused).toBeGreaterThan(3000);
  });

  it('decodes a byte sequence to its bytes', () => {
    const parsed = parseSfDictionaryFast('a=:AAECAw==:')?.get('a')?.value[0];
    expect(parsed).toBeInstanceOf(Uint8Array);
    expect([...(parsed as Uint8Array)]).toEqual([0, 1, 2, 3]);
  });
});
