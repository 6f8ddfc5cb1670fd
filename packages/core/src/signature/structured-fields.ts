/**
 * Structured Field values (RFC 8941/9651) as the signature code needs them,
 * parsed by the maintained `structured-headers` library. Two things it does
 * not give are added here: each dictionary member's text exactly as sent
 * (RFC 9421's `@signature-params` is the Signature-Input member as sent), and
 * a refusal of keys sent twice (the RFC's "last wins" would let a second
 * signature hide behind the first).
 * @module
 */
import { type BareItem, type InnerList, type Item, isInnerList, parseDictionary, parseList, Token } from 'structured-headers';

export type { BareItem, InnerList, Item };
export { isInnerList, Token };

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
 * Parses one inner list with its parameters, e.g. the signature parameters
 * `("@method" "@path");created=1;keyid="default"`. Throws
 * {@link StructuredFieldError}.
 * @example
 * parseSfInnerList('("@method");created=1')[0].length; // 1
 */
export function parseSfInnerList(text: string): InnerList {
  let list: ReturnType<typeof parseList>;
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
