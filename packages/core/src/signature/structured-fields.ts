/**
 * Structured Field values (RFC 8941/9651) as the signature code needs them,
 * parsed by the maintained `structured-headers` library, after a fast path
 * for the one-member dictionaries senders send ({@link parseSfDictionaryFast},
 * tested against the library). Two things the library does not give are
 * added here: each dictionary member's text exactly as sent
 * (RFC 9421's `@signature-params` is the Signature-Input member as sent), and
 * a refusal of keys sent twice (the RFC's "last wins" would let a second
 * signature hide behind the first).
 * @module
 */
import { type BareItem as LibraryBareItem, parseDictionary, parseList, Token } from 'structured-headers';

export { Token };

/**
 * A bare item: `structured-headers`' types, and a byte sequence the fast
 * path decoded as a `Uint8Array` (an `ArrayBuffer` of its own costs ~0.8 µs
 * to allocate); {@link bytesOf} reads either.
 * @example
 * const item: BareItem = 42;
 */
export type BareItem = LibraryBareItem | Uint8Array;
/**
 * An item and its parameters.
 * @example
 * const item: Item = ['@method', new Map()];
 */
export type Item = [BareItem, Map<string, BareItem>];
/**
 * An inner list and its parameters.
 * @example
 * const list: InnerList = [[['@method', new Map()]], new Map([['created', 1]])];
 */
export type InnerList = [Item[], Map<string, BareItem>];

/**
 * Whether a member is an inner list rather than an item.
 * @example
 * isInnerList([[], new Map()]); // true
 */
export function isInnerList(value: Item | InnerList): value is InnerList {
  return Array.isArray(value[0]);
}

/**
 * A dictionary member: the parsed value and its text exactly as sent (from
 * the first character after `=` to the end of its parameters).
 * @example
 * parseSfDictionary('a=(1 2);x=3').get('a')?.raw; // '(1 2);x=3'
 */
export interface SfMember {
  value: Item | InnerList;
  raw: string;
}

/**
 * Thrown on text that is not a valid Structured Field.
 * @example
 * try { parseSfDictionary('a=('); } catch (e) { if (e instanceof StructuredFieldError) console.log(e.message); }
 */
export class StructuredFieldError extends Error {
  override readonly name = 'StructuredFieldError';
}

/** The library's parse error as a StructuredFieldError: "expected ... at offset N". */
function refused(err: unknown): StructuredFieldError {
  const text = (err as Error).message.replace(/^Parse error: /, '');
  return new StructuredFieldError(text.charAt(0).toLowerCase() + text.slice(1));
}

/**
 * Parses a Structured Field dictionary (RFC 8941 section 4.2.2), such as a
 * `Signature-Input`, `Signature` or `Content-Digest` value, keeping each
 * member's text as sent. Stricter than the RFC in one way: a key sent twice
 * is an error rather than "last wins". Throws {@link StructuredFieldError}.
 * @example
 * parseSfDictionary('sha-512=:AAAA:').get('sha-512')?.raw; // ':AAAA:'
 */
export function parseSfDictionary(text: string): Map<string, SfMember> {
  return parseSfDictionaryFast(text) ?? parseSfDictionaryGeneral(text);
}

/**
 * {@link parseSfDictionary} by the general parser (`structured-headers`)
 * alone, without the fast path: what the fast path is tested against.
 * @example
 * parseSfDictionaryGeneral('a=1, b=?0').size; // 2
 */
export function parseSfDictionaryGeneral(text: string): Map<string, SfMember> {
  let parsed: Map<string, Item | InnerList>;
  try {
    parsed = parseDictionary(text);
  } catch (err) {
    throw refused(err);
  }
  const out = new Map<string, SfMember>();
  for (const member of splitMembers(text)) {
    const key = /^[a-z*][a-z0-9_\-.*]*/.exec(member)?.[0] ?? '';
    if (out.has(key)) throw new StructuredFieldError(`duplicate dictionary key ${JSON.stringify(key)}`);
    const value = parsed.get(key);
    if (value === undefined) throw new StructuredFieldError(`cannot find the dictionary member ${JSON.stringify(key)}`);
    const rest = member.slice(key.length);
    // A member without "=" is the boolean true, with the parameters that follow the key.
    out.set(key, { value, raw: rest.startsWith('=') ? rest.slice(1) : `?1${rest}` });
  }
  return out;
}

/**
 * The dictionaries a request's signature headers carry, parsed without the
 * general parser: one member, either a byte sequence (`sig=:…:`,
 * `sha-256=:…:`) or an inner list of plain strings with integer or plain
 * string parameters (`sig=("@method" "@path");created=1;keyid="k"`), with
 * no whitespace but the single spaces between the list's strings. Any other
 * text — escapes, other types, a sign, a boolean, a repeated parameter,
 * padding that is not canonical, more members, more spaces — answers
 * `undefined`, and the general parser decides: the two agree on every text
 * this accepts (the test compares them on generated near-misses). The
 * general parser costs ~8 µs for a request's three headers; this ~1 µs
 * (bench/profile-notes.md, thirteenth pass).
 * @example
 * parseSfDictionaryFast('sig=:AAAA:')?.get('sig')?.raw; // ':AAAA:'
 * parseSfDictionaryFast('a=1, b=2'); // undefined: the general parser's
 */
export function parseSfDictionaryFast(text: string): Map<string, SfMember> | undefined {
  const n = text.length;
  let i = keyEnd(text, 0);
  if (i === 0 || text.charCodeAt(i) !== 0x3d /* = */) return undefined;
  const key = text.slice(0, i);
  const raw = text.slice(++i);
  let value: Item | InnerList;
  if (text.charCodeAt(i) === 0x3a /* : */) {
    const end = text.indexOf(':', i + 1);
    if (end !== n - 1) return undefined;
    const b64 = text.slice(i + 1, end);
    if (!CANONICAL_BASE64.test(b64)) return undefined;
    value = [Buffer.from(b64, 'base64'), new Map()];
  } else if (text.charCodeAt(i) === 0x28 /* ( */) {
    i++;
    const items: Item[] = [];
    if (text.charCodeAt(i) !== 0x29 /* ) */) {
      for (;;) {
        const end = plainStringEnd(text, i);
        if (end < 0) return undefined;
        items.push([text.slice(i + 1, end - 1), new Map()]);
        i = end;
        const c = text.charCodeAt(i);
        if (c === 0x29) break;
        if (c !== 0x20 || text.charCodeAt(i + 1) === 0x20 || text.charCodeAt(i + 1) === 0x29) return undefined;
        i++;
      }
    }
    i++; // past ")"
    const params = new Map<string, BareItem>();
    while (i < n) {
      if (text.charCodeAt(i) !== 0x3b /* ; */) return undefined;
      const start = ++i;
      i = keyEnd(text, start);
      if (i === start || text.charCodeAt(i) !== 0x3d) return undefined;
      const name = text.slice(start, i);
      if (params.has(name)) return undefined;
      i++;
      const c = text.charCodeAt(i);
      if (c === 0x22 /* " */) {
        const end = plainStringEnd(text, i);
        if (end < 0) return undefined;
        params.set(name, text.slice(i + 1, end - 1));
        i = end;
      } else {
        let end = i;
        while (end < n && text.charCodeAt(end) >= 0x30 && text.charCodeAt(end) <= 0x39) end++;
        if (end === i || end - i > 15 || text.charCodeAt(end) === 0x2e /* . */) return undefined;
        params.set(name, Number.parseInt(text.slice(i, end), 10));
        i = end;
      }
    }
    value = [items, params];
  } else {
    return undefined;
  }
  return new Map([[key, { value, raw }]]);
}

/** Base64 with its padding, as the general parser decodes it to the same bytes. */
const CANONICAL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The end of the key (RFC 8941 `key`) that starts at `at`: `at` itself when there is none. */
function keyEnd(text: string, at: number): number {
  const first = text.charCodeAt(at);
  if (!((first >= 0x61 && first <= 0x7a) || first === 0x2a)) return at;
  let i = at + 1;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2d || c === 0x2e || c === 0x2a)) break;
  }
  return i;
}

/** The end (past the closing quote) of a string at `at` with no escape and only printable ASCII; -1 otherwise. */
function plainStringEnd(text: string, at: number): number {
  if (text.charCodeAt(at) !== 0x22) return -1;
  for (let i = at + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c === 0x5c /* \\ */ || c < 0x20 || c > 0x7e) return -1;
  }
  return -1;
}

/**
 * Parses one inner list with its parameters, e.g. the signature parameters
 * `("@method" "@path");created=1;keyid="default"`. Throws
 * {@link StructuredFieldError}.
 * @example
 * parseSfInnerList('("@method");created=1')[0].length; // 1
 */
export function parseSfInnerList(text: string): InnerList {
  let list: Array<Item | InnerList>;
  try {
    list = parseList(text);
  } catch (err) {
    throw refused(err);
  }
  const [only] = list;
  if (list.length !== 1 || only === undefined || !isInnerList(only)) {
    throw new StructuredFieldError('expected one inner list, such as ("@method" "@path");created=1');
  }
  return only;
}

/**
 * The members of a dictionary that `structured-headers` accepted, split at
 * the commas outside strings and inner lists. Only strings hold quotes and
 * escapes, and only inner lists parentheses, so this scan suffices for valid
 * text.
 */
function splitMembers(text: string): string[] {
  const members: string[] = [];
  let start = 0;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      members.push(text.slice(start, i));
      start = i + 1;
    }
  }
  const last = text.slice(start);
  if (last.trim() !== '') members.push(last);
  return members.map((m) => m.trim());
}

/** The bytes of a byte-sequence bare item, or `undefined` for another type. */
export function bytesOf(item: BareItem): Uint8Array | undefined {
  if (item instanceof ArrayBuffer) return new Uint8Array(item);
  if (ArrayBuffer.isView(item)) return new Uint8Array(item.buffer, item.byteOffset, item.byteLength);
  return undefined;
}

/** A bare item's type as RFC 8941 names it, for messages. */
export function typeOf(item: BareItem): string {
  if (typeof item === 'number') return Number.isInteger(item) ? 'integer' : 'decimal';
  if (typeof item === 'boolean') return 'boolean';
  if (typeof item === 'string') return 'string';
  if (item instanceof Token) return 'token';
  if (item instanceof Date) return 'date';
  if (bytesOf(item)) return 'byte sequence';
  return 'display string';
}
