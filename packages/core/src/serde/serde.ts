/**
 * Values and errors on the wire (PROTOCOL.md 5.8, 5.9, 8.8 and 8.9).
 *
 * ## Arguments
 * A call's arguments travel as one `google.protobuf.Value` holding a list
 * ({@link encodeArgs}). A single {@link OpaqueValue} argument is sent as its
 * exact `Any` instead (the raw call API, for functions written in other
 * languages); {@link decodeArgs} turns any input that is not a `Value` list
 * into a one-element list, so both directions round-trip.
 *
 * ## Return values
 * {@link encodeValue} picks the well-known type other SDKs understand where
 * one fits exactly: `StringValue`, `Int64Value` (safe integers, and bigints
 * beyond the safe range that fit in int64; `UInt64Value` for bigints in
 * (2^63, 2^64)), `DoubleValue` (every other number, including -0, NaN and
 * ±Infinity), `BoolValue`, `Empty` for `undefined` and `null`, `BytesValue` for a
 * `Uint8Array` (a `Buffer` comes back as a plain `Uint8Array`), `Timestamp`
 * for a valid `Date` between years 1 and 9999; objects, arrays and
 * everything else go in a `Value`. {@link decodeValue} is the inverse, and
 * also reads `Int32Value`, `UInt32Value`, `FloatValue`, `Duration` (as
 * milliseconds), `ListValue` and `Struct`. `Empty` decodes as `undefined`, so
 * a top-level `null` return value arrives as `undefined` (as py's `None` and
 * go's `nil` do): compare with `== null`. Inside values and as arguments,
 * `null` and `undefined` are kept apart exactly. A type URL this
 * module does not know (py's `Pickled`, any other message) decodes as an
 * {@link OpaqueValue}, which encodes back to the exact same `Any`.
 *
 * ## Inside a `Value`: the tagged encoding
 * Strings, finite numbers, booleans, `null`, arrays and plain objects map to
 * the JSON-like `Value` directly. Everything JSON cannot carry is a struct
 * with a `"$dispatch"` field naming a tag, and the tag's own fields:
 *
 * | JS value | encoding |
 * | --- | --- |
 * | `undefined` (in arrays and objects) | `{"$dispatch":"undefined"}` |
 * | an array hole | `{"$dispatch":"hole"}` (only inside arrays) |
 * | NaN, Infinity, -Infinity, -0 | `{"$dispatch":"number","v":"NaN"}` (`"Infinity"`, `"-Infinity"`, `"-0"`) |
 * | bigint | `{"$dispatch":"bigint","v":"-12345678901234567890"}` |
 * | Date | `{"$dispatch":"date","v":"2024-05-01T12:00:00.000Z"}` (`"v":null` for an invalid Date) |
 * | Uint8Array, Buffer | `{"$dispatch":"bytes","v":"<base64>"}` (decodes as `Uint8Array`) |
 * | other typed arrays, DataView, ArrayBuffer | `{"$dispatch":"typed","k":"Float64Array","v":"<base64 of the bytes, platform (little-endian) order>"}` |
 * | a string with a lone surrogate | `{"$dispatch":"string","v":"<base64 of its UTF-16LE code units>"}` |
 * | Map | `{"$dispatch":"map","v":[[key, value], ...]}` (insertion order kept) |
 * | Set | `{"$dispatch":"set","v":[value, ...]}` |
 * | RegExp | `{"$dispatch":"regexp","v":"<source>","f":"<flags>"}` (`lastIndex` is not kept) |
 * | Error | `{"$dispatch":"error","name":…,"message":…,"stack":…,"fields":{…},"cause":…,"errors":[…],"status":n}` |
 * | OpaqueValue | `{"$dispatch":"any","t":"<type URL>","v":"<base64>"}` |
 * | an object with a `$dispatch`, `__proto__` or ill-formed key | `{"$dispatch":"object","v":[[key, value], ...]}` (the escape) |
 *
 * The escape makes every user object round-trip unchanged, including one
 * that itself has a `"$dispatch"` key. Values are encoded recursively inside
 * every tag. Decoding an unknown tag fails with a {@link SerializationError}
 * (it was written by a newer SDK).
 *
 * What is not kept: a class instance travels as a plain object of its own
 * enumerable string-keyed fields (the receiver gets a plain object), and so
 * do arrays' extra named properties (dropped) and symbol keys (dropped); a
 * shared (non-cyclic) reference is encoded twice and decodes as two equal
 * copies. Functions, symbols, cyclic values, Promises (a missing `await`),
 * WeakMap/WeakSet/WeakRef and values nested deeper than protobuf allows
 * ({@link MAX_MESSAGE_DEPTH}) are refused with a {@link SerializationError}
 * naming the path of the bad value, e.g.
 * `cannot serialize a function at args[0].user.callback`.
 *
 * Strings: protobuf strings must be UTF-8, so a string with a lone surrogate
 * (ill-formed UTF-16) cannot be a protobuf string without being altered (Node
 * replaces lone surrogates with U+FFFD for long strings, other SDKs reject
 * invalid UTF-8). Such strings use the `string` tag — as top-level return
 * values too — and round-trip exactly; object keys with lone surrogates use
 * the object escape. Only the human-readable `type` and `message` fields of
 * an `Error` message may show U+FFFD; the exact text is in its `value`.
 *
 * ## Errors
 * {@link encodeError} fills `type` (the error's `name`), `message`,
 * `traceback` (the UTF-8 stack) and `value`: the bytes
 * `"\0dispatch-ts:error:1\n"` (the magic, with a format version) followed by
 * a binary `google.protobuf.Value` holding the `error` tag above (without the
 * stack, which is in `traceback`). Own enumerable fields, `cause` and an
 * `AggregateError`'s `errors` are encoded recursively. Errors are encoded
 * leniently: what cannot be serialized in an error's fields (functions,
 * cycles, more than {@link ERROR_NODE_BUDGET} values in all) becomes
 * `undefined` instead of failing, because reporting a failure must not fail.
 * A thrown value that is not an `Error` is sent as an `Error` (name
 * `'Error'`) whose message describes the value and whose `cause` is the value
 * itself. A `value` without the magic (py's pickle, anything foreign) is
 * never interpreted. See {@link decodeError} for the rebuilding.
 * @module
 */
import protobuf from 'protobufjs';
import {
  getCarriedStatus,
  isDispatchError,
  isStatus,
  sdkErrorClassByName,
  setCarriedStatus,
} from '../status/errors.js';
import type { IAny, IError, IListValue, IValue } from '../protocol/gen/types.js';
import { excerpt, quoteExcerpt } from '../protocol/excerpt.js';
import {
  Any,
  BoolValue,
  BytesValue,
  DoubleValue,
  Duration,
  Empty,
  FloatValue,
  Int32Value,
  Int64Value,
  ListValue,
  StringValue,
  Struct,
  Timestamp,
  UInt32Value,
  UInt64Value,
  Value,
  durationToMs,
  toBigInt,
  toLong,
  typeNameOf,
} from '../protocol/proto.js';
import { type Class, defaultStatusRegistry, type StatusRegistry } from '../status/registry.js';
import { Status } from '../status/status.js';

/** The key naming the tag of a tagged value inside a `Value` struct. */
const TAG = '$dispatch';

/**
 * The deepest nesting of protobuf messages a `Value` may have: the default
 * limit of protoc, upb (py) and protobufjs. Each level of arrays or objects
 * takes two messages (`Value` → `ListValue`/`Struct` → `Value`), a Set four, a
 * Map six, so about 50 levels of plain nesting fit. Deeper values are refused
 * with a {@link SerializationError}.
 *
 * @example
 * ```ts
 * let deep: unknown = 0;
 * for (let i = 0; i < MAX_MESSAGE_DEPTH; i++) deep = [deep];
 * encodeValue(deep); // throws SerializationError: cannot serialize a value nested too deeply at value[0][0]...
 * ```
 */
export const MAX_MESSAGE_DEPTH = 100;

/**
 * How many values (objects, strings, numbers...) an error's fields and
 * causes may hold in all; past it the rest is encoded as `undefined`.
 *
 * @example
 * ```ts
 * const err = Object.assign(new Error('x'), { rows: new Array(ERROR_NODE_BUDGET * 2).fill(1) });
 * encodeError(err); // the rows after the budget decode as undefined
 * ```
 */
export const ERROR_NODE_BUDGET = 10_000;

const MAGIC = new TextEncoder().encode('\u0000dispatch-ts:error:1\n');

// ---------------------------------------------------------------------------
// Public types

/**
 * A value of a type this SDK cannot decode (py's `Pickled`, a protobuf
 * message of another service...): its type URL and exact bytes. Passed to
 * {@link encodeValue} or {@link encodeArgs}, it travels back as the very same
 * `Any`, so a raw call can relay values it does not understand.
 *
 * @example
 * ```ts
 * const pickled = new OpaqueValue(
 *   'buf.build/stealthrocket/dispatch-proto/dispatch.sdk.python.v1.Pickled',
 *   bytes,
 * );
 * encodeValue(pickled); // { typeUrl: 'buf.build/...Pickled', value: bytes }
 * ```
 */
export class OpaqueValue {
  /** The type URL of the `Any`, unchanged. */
  readonly typeUrl: string;
  /** The serialized message, unchanged. */
  readonly value: Uint8Array;

  constructor(typeUrl: string, value: Uint8Array) {
    if (typeof typeUrl !== 'string' || !isWellFormed(typeUrl)) {
      throw new TypeError('OpaqueValue: typeUrl must be a well-formed string');
    }
    if (!(value instanceof Uint8Array)) throw new TypeError('OpaqueValue: value must be a Uint8Array');
    this.typeUrl = typeUrl;
    this.value = value;
  }

  /**
   * The message name: the text after the last `/` of the type URL.
   *
   * @example
   * ```ts
   * new OpaqueValue('type.googleapis.com/acme.v1.Order', bytes).typeName; // 'acme.v1.Order'
   * ```
   */
  get typeName(): string {
    return typeNameOf(this.typeUrl);
  }

  /**
   * The exact `Any` this value stands for.
   *
   * @example
   * ```ts
   * const any = opaque.toAny();
   * ```
   */
  toAny(): IAny {
    return newAny(this.typeUrl, this.value);
  }
}

/**
 * A value that cannot be serialized, or bytes that cannot be deserialized.
 * The message names the path of the bad value (`args[1].items[3].parent`),
 * also available as {@link SerializationError.path}. It is a `TypeError`, so
 * a function whose input cannot be decoded fails with INVALID_ARGUMENT.
 *
 * @example
 * ```ts
 * try {
 *   encodeArgs([{ user: { callback: () => {} } }]);
 * } catch (err) {
 *   err instanceof SerializationError; // true
 *   (err as SerializationError).message; // 'cannot serialize a function at args[0].user.callback'
 * }
 * ```
 */
export class SerializationError extends TypeError {
  /** Where the bad value is, from the root (`args[0].user.callback`); `''` if unknown. */
  readonly path: string;

  constructor(message: string, path = '', options?: { cause?: unknown }) {
    // Capped: the message may quote the bad value, and it is stored as a call's error.
    super(excerpt(message), options);
    this.path = excerpt(path);
  }
}
Object.defineProperty(SerializationError.prototype, 'name', {
  value: 'SerializationError',
  writable: true,
  enumerable: false,
  configurable: true,
});

// ---------------------------------------------------------------------------
// Any helpers. The name of the type URL field comes from the descriptor
// (`typeUrl` today; an earlier generation of the codec said `type_url`), so
// these stay right whichever way the codec is generated.

const TYPE_URL_FIELD: string = Any.type.fieldsById[1]?.name ?? 'type_url';

/**
 * A new `Any` with this type URL and bytes.
 *
 * @example
 * ```ts
 * const any = newAny('type.googleapis.com/google.protobuf.Empty', new Uint8Array());
 * ```
 */
export function newAny(typeUrl: string, value: Uint8Array): IAny {
  return { [TYPE_URL_FIELD]: typeUrl, value } as IAny;
}

/**
 * The type URL of an `Any` (`''` when absent), whichever spelling of the
 * field it was built with (`type_url` or `typeUrl`).
 *
 * @example
 * ```ts
 * anyTypeUrl(encodeValue('hi')); // 'type.googleapis.com/google.protobuf.StringValue'
 * ```
 */
export function anyTypeUrl(any: IAny | null | undefined): string {
  if (!any) return '';
  const record = any as Record<string, unknown>;
  const url = record[TYPE_URL_FIELD] ?? record.type_url ?? record.typeUrl;
  return typeof url === 'string' ? url : '';
}

function packMessage<T extends object>(type: { typeUrl: string; encode(m: T): Uint8Array }, message: T): IAny {
  return newAny(type.typeUrl, type.encode(message));
}

// ---------------------------------------------------------------------------
// Small helpers

const EMPTY_BYTES = new Uint8Array(0);

function hasOwn(object: object, key: string): boolean {
  return Object.hasOwn(object, key);
}

function toBase64(bytes: Uint8Array): string {
  return protobuf.util.base64.encode(bytes, 0, bytes.length);
}

function fromBase64(text: string): Uint8Array {
  const out = new Uint8Array(protobuf.util.base64.length(text));
  const n = protobuf.util.base64.decode(text, out, 0);
  return n === out.length ? out : out.slice(0, n);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function isWellFormed(text: string): boolean {
  const native = (text as { isWellFormed?: () => boolean }).isWellFormed;
  return typeof native === 'function' ? native.call(text) : !LONE_SURROGATE.test(text);
}

/** Replaces lone surrogates with U+FFFD (protobuf strings must be valid UTF-8). */
function toWellFormed(text: string): string {
  if (isWellFormed(text)) return text;
  const native = (text as { toWellFormed?: () => string }).toWellFormed;
  if (typeof native === 'function') return native.call(text);
  return text.replace(new RegExp(LONE_SURROGATE.source, 'g'), '\uFFFD');
}

function utf16ToBase64(text: string): string {
  const bytes = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    bytes[2 * i] = c & 0xff;
    bytes[2 * i + 1] = c >>> 8;
  }
  return toBase64(bytes);
}

function utf16FromBase64(text: string): string | undefined {
  const bytes = fromBase64(text);
  if (bytes.length % 2 !== 0) return undefined;
  const units: number[] = [];
  let out = '';
  for (let i = 0; i < bytes.length; i += 2) {
    units.push((bytes[i] as number) | ((bytes[i + 1] as number) << 8));
    if (units.length === 4096) {
      out += String.fromCharCode(...units);
      units.length = 0;
    }
  }
  return out + String.fromCharCode(...units);
}

function copyBytes(bytes: Uint8Array | null | undefined): Uint8Array {
  return bytes ? new Uint8Array(bytes) : new Uint8Array(0);
}

const TYPED_ARRAYS: Readonly<Record<string, (buffer: ArrayBuffer) => ArrayBufferView | ArrayBuffer>> = {
  Int8Array: (b) => new Int8Array(b),
  Uint8ClampedArray: (b) => new Uint8ClampedArray(b),
  Int16Array: (b) => new Int16Array(b),
  Uint16Array: (b) => new Uint16Array(b),
  Int32Array: (b) => new Int32Array(b),
  Uint32Array: (b) => new Uint32Array(b),
  Float32Array: (b) => new Float32Array(b),
  Float64Array: (b) => new Float64Array(b),
  BigInt64Array: (b) => new BigInt64Array(b),
  BigUint64Array: (b) => new BigUint64Array(b),
  DataView: (b) => new DataView(b),
  ArrayBuffer: (b) => b,
};

function isErrorLike(value: object): value is Error {
  return value instanceof Error || Object.prototype.toString.call(value) === '[object Error]';
}

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);
const UINT64_MAX = (1n << 64n) - 1n;
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);
/** Valid range of a `google.protobuf.Timestamp`: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z. */
const TIMESTAMP_MIN_MS = -62135596800000;
const TIMESTAMP_MAX_MS = 253402300799999;

// ---------------------------------------------------------------------------
// Paths, built lazily: formatted only when an error names one.

interface Path {
  readonly up: Path | undefined;
  readonly seg: string;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function child(up: Path, seg: string): Path {
  return { up, seg };
}

function keySeg(key: string): string {
  return key.length <= 200 && IDENTIFIER.test(key) ? `.${key}` : `[${quoteExcerpt(key, 200)}]`;
}

function formatPath(path: Path | undefined): string {
  const segs: string[] = [];
  for (let p = path; p; p = p.up) segs.push(p.seg);
  return segs.reverse().join('');
}

function mapKeySeg(key: unknown, index: number): string {
  if (typeof key === 'string') return `.get(${quoteExcerpt(key, 200)})`;
  if (typeof key === 'number' || typeof key === 'boolean') return `.get(${String(key)})`;
  if (typeof key === 'bigint') return `.get(${key}n)`;
  return `.get(<key #${index}>)`;
}


// ---------------------------------------------------------------------------
// Encoding

function tagged(tag: string, extra?: Record<string, IValue>): IValue {
  return { structValue: { fields: { [TAG]: { stringValue: tag }, ...extra } } };
}

const UNDEFINED_VALUE: IValue = tagged('undefined');
const HOLE_VALUE: IValue = tagged('hole');

function str(text: string): IValue {
  return { stringValue: text };
}

function list(values: IValue[]): IValue {
  return { listValue: { values } };
}

class Encoder {
  readonly #ancestors = new Map<object, Path>();
  /** > 0 while encoding the contents of an error: failures become undefined. */
  #lenient = 0;
  #budget = ERROR_NODE_BUDGET;

  constructor(lenient = false) {
    if (lenient) this.#lenient = 1;
  }

  #fail(path: Path, what: string, hint = '', cause?: unknown): IValue {
    if (this.#lenient > 0) return UNDEFINED_VALUE;
    throw new SerializationError(
      `cannot serialize ${what} at ${formatPath(path)}${hint}`,
      formatPath(path),
      cause === undefined ? undefined : { cause },
    );
  }

  /**
   * Whether a node whose `Value` is at message depth `q` and whose own
   * structure reaches `q + reach` fits protobuf's nesting limit. In lenient
   * mode two more levels are kept free, so that any child can still be
   * replaced by the `undefined` tag.
   */
  #fits(q: number, reach: number): boolean {
    return q + reach + (this.#lenient > 0 ? 2 : 0) <= MAX_MESSAGE_DEPTH;
  }

  #tooDeep(path: Path): IValue {
    return this.#fail(
      path,
      'a value nested too deeply',
      ` (protobuf allows ${MAX_MESSAGE_DEPTH} nested messages: about ${MAX_MESSAGE_DEPTH / 2} levels of arrays and objects, fewer through Maps, Sets and errors)`,
    );
  }

  #read(object: object, key: string, path: Path): { ok: true; value: unknown } | { ok: false; error: IValue } {
    try {
      return { ok: true, value: (object as Record<string, unknown>)[key] };
    } catch (err) {
      return { ok: false, error: this.#fail(path, 'a property whose getter threw', `: ${String(err)}`, err) };
    }
  }

  /** Encodes `value` as a `Value` at message depth `q` (the root `Value` is at 0). */
  value(value: unknown, path: Path, q: number): IValue {
    if (this.#lenient > 0 && --this.#budget < 0) return UNDEFINED_VALUE;
    switch (typeof value) {
      case 'string':
        if (isWellFormed(value)) return str(value);
        return this.#fits(q, 2) ? tagged('string', { v: str(utf16ToBase64(value)) }) : this.#tooDeep(path);
      case 'number':
        if (Number.isFinite(value) && !Object.is(value, -0)) return { numberValue: value };
        if (!this.#fits(q, 2)) return this.#tooDeep(path);
        return tagged('number', { v: str(Object.is(value, -0) ? '-0' : String(value)) });
      case 'boolean':
        return { boolValue: value };
      case 'undefined':
        return this.#fits(q, 2) ? UNDEFINED_VALUE : this.#tooDeep(path);
      case 'bigint':
        return this.#fits(q, 2) ? tagged('bigint', { v: str(value.toString()) }) : this.#tooDeep(path);
      case 'function':
        return this.#fail(path, 'a function');
      case 'symbol':
        return this.#fail(path, `a symbol (${value.toString()})`);
      default:
        if (value === null) return { nullValue: 0 };
        return this.#object(value as object, path, q);
    }
  }

  #object(value: object, path: Path, q: number): IValue {
    const earlier = this.#ancestors.get(value);
    if (earlier !== undefined) {
      return this.#fail(path, 'a cyclic reference', ` (it refers back to ${formatPath(earlier)})`);
    }
    this.#ancestors.set(value, path);
    try {
      return this.#objectInner(value, path, q);
    } catch (err) {
      if (err instanceof SerializationError) throw err;
      // An exotic object (a Proxy, an object faking a Map's prototype...).
      return this.#fail(path, 'a value that could not be read', `: ${String(err)}`, err);
    } finally {
      this.#ancestors.delete(value);
    }
  }

  #objectInner(value: object, path: Path, q: number): IValue {
    const deep = (reach: number): IValue | undefined => (this.#fits(q, reach) ? undefined : this.#tooDeep(path));
    if (value instanceof OpaqueValue) {
      return (
        deep(2) ?? tagged('any', { t: this.value(value.typeUrl, child(path, '.typeUrl'), q + 2), v: str(toBase64(value.value)) })
      );
    }
    if (value instanceof Date) {
      const time = value.getTime();
      return deep(2) ?? tagged('date', { v: Number.isNaN(time) ? { nullValue: 0 } : str(value.toISOString()) });
    }
    if (value instanceof Uint8Array) return deep(2) ?? tagged('bytes', { v: str(toBase64(value)) });
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
      const kind = Object.prototype.toString.call(value).slice(8, -1);
      if (TYPED_ARRAYS[kind] === undefined) return this.#fail(path, `a ${kind}`);
      const bytes = ArrayBuffer.isView(value)
        ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
        : new Uint8Array(value);
      return deep(2) ?? tagged('typed', { k: str(kind), v: str(toBase64(bytes)) });
    }
    if (value instanceof Map) {
      const tooDeep = deep(6);
      if (tooDeep) return tooDeep;
      const entries: IValue[] = [];
      let i = 0;
      for (const [k, v] of value) {
        entries.push(
          list([this.value(k, child(path, `.keys()[${i}]`), q + 6), this.value(v, child(path, mapKeySeg(k, i)), q + 6)]),
        );
        i++;
      }
      return tagged('map', { v: list(entries) });
    }
    if (value instanceof Set) {
      const tooDeep = deep(4);
      if (tooDeep) return tooDeep;
      const items: IValue[] = [];
      let i = 0;
      for (const v of value) items.push(this.value(v, child(path, `.values()[${i++}]`), q + 4));
      return tagged('set', { v: list(items) });
    }
    if (value instanceof RegExp) {
      return deep(2) ?? tagged('regexp', { v: this.value(value.source, child(path, '.source'), q + 2), f: str(value.flags) });
    }
    if (isErrorLike(value)) return this.error(value, path, q, false);
    if (value instanceof Promise) return this.#fail(path, 'a Promise', ' (did you forget an await?)');
    if (value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef) {
      return this.#fail(path, `a ${Object.prototype.toString.call(value).slice(8, -1)}`, ' (its contents cannot be enumerated)');
    }
    if (Array.isArray(value)) {
      const tooDeep = deep(2);
      if (tooDeep) return tooDeep;
      const values: IValue[] = new Array(value.length);
      for (let i = 0; i < value.length; i++) {
        values[i] = i in value ? this.value(value[i], child(path, `[${i}]`), q + 2) : HOLE_VALUE;
      }
      return list(values);
    }
    if (typeof (value as { then?: unknown }).then === 'function') {
      return this.#fail(path, 'a Promise-like object', ' (did you forget an await?)');
    }
    return this.fields(value, Object.keys(value), path, q);
  }

  /** A plain object of these keys of `value` (escaped when a key cannot be a Struct key). */
  fields(value: object, keys: readonly string[], path: Path, q: number): IValue {
    const escaped = keys.some((k) => k === TAG || k === '__proto__' || !isWellFormed(k));
    if (!this.#fits(q, escaped ? 6 : 2)) return this.#tooDeep(path);
    if (escaped) {
      const entries: IValue[] = [];
      for (const key of keys) {
        const p = child(path, keySeg(key));
        const read = this.#read(value, key, p);
        entries.push(list([this.value(key, p, q + 6), read.ok ? this.value(read.value, p, q + 6) : read.error]));
      }
      return tagged('object', { v: list(entries) });
    }
    const fields: Record<string, IValue> = {};
    for (const key of keys) {
      const p = child(path, keySeg(key));
      const read = this.#read(value, key, p);
      fields[key] = read.ok ? this.value(read.value, p, q + 2) : read.error;
    }
    return { structValue: { fields } };
  }

  /**
   * An error, always leniently inside. `status` is recorded when given or
   * known (SDK errors, decoded errors).
   */
  error(error: Error, path: Path, q: number, omitStack: boolean, status?: Status): IValue {
    // Its slots are at q + 2 and must have room for the `undefined` tag.
    if (q + 4 > MAX_MESSAGE_DEPTH) return this.#tooDeep(path);
    this.#lenient++;
    try {
      const extra: Record<string, IValue> = {};
      const name = safeString(error, 'name') ?? 'Error';
      extra.name = this.value(name, child(path, '.name'), q + 2);
      extra.message = this.value(safeString(error, 'message') ?? '', child(path, '.message'), q + 2);
      const stack = safeString(error, 'stack');
      if (!omitStack && stack !== undefined) extra.stack = this.value(stack, child(path, '.stack'), q + 2);
      let keys: string[] = [];
      try {
        keys = Object.keys(error);
      } catch {
        // a hostile Proxy: no fields
      }
      if (keys.length > 0) extra.fields = this.fields(error, keys, child(path, '.fields'), q + 2);
      for (const slot of ['cause', 'errors'] as const) {
        const desc = ownDescriptor(error, slot);
        if (desc && !desc.enumerable) {
          const read = this.#read(error, slot, child(path, `.${slot}`));
          extra[slot] = read.ok ? this.value(read.value, child(path, `.${slot}`), q + 2) : read.error;
        }
      }
      const own = status ?? (isDispatchError(error) ? error.status : getCarriedStatus(error));
      if (own !== undefined) extra.status = { numberValue: own };
      return tagged('error', extra);
    } finally {
      this.#lenient--;
    }
  }
}

function ownDescriptor(object: object, key: string): PropertyDescriptor | undefined {
  try {
    return Object.getOwnPropertyDescriptor(object, key);
  } catch {
    return undefined;
  }
}

function safeString(object: object, key: string): string | undefined {
  try {
    const value = (object as Record<string, unknown>)[key];
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

function root(name: string): Path {
  return { up: undefined, seg: name };
}

function valueAny(value: IValue): IAny {
  return packMessage(Value, value);
}

/**
 * Encodes a call's arguments: one `google.protobuf.Value` holding a list, with
 * the tagged encoding of the module documentation for what JSON cannot carry.
 * A single {@link OpaqueValue} argument is sent as its exact `Any`. Throws a
 * {@link SerializationError} naming the path (`args[1].items[3].parent`) of a
 * function, symbol, cycle... it cannot send.
 *
 * @example
 * ```ts
 * const input = encodeArgs(['user_123', { retries: 3, at: new Date() }]);
 * decodeArgs(input); // ['user_123', { retries: 3, at: Date }]
 * ```
 */
export function encodeArgs(args: readonly unknown[]): IAny {
  if (args.length === 1 && args[0] instanceof OpaqueValue) return args[0].toAny();
  const flat = primitiveValues(args);
  if (flat) return valueAny(list(flat));
  return valueAny(new Encoder().value(args, root('args'), 0));
}

/**
 * The `Value`s of arguments that are all plain JSON scalars (finite numbers
 * but -0, booleans, null, well-formed strings), as the encoder makes them,
 * without its paths and cycle checks: the arguments of most calls (a fan-out
 * of `square(i)`). Null for anything else (the encoder's business).
 */
function primitiveValues(args: readonly unknown[]): IValue[] | null {
  const out: IValue[] = new Array(args.length);
  for (let i = 0; i < args.length; i++) {
    if (!(i in args)) return null;
    const v = args[i];
    switch (typeof v) {
      case 'number':
        if (!Number.isFinite(v) || Object.is(v, -0)) return null;
        out[i] = { numberValue: v };
        break;
      case 'boolean':
        out[i] = { boolValue: v };
        break;
      case 'string':
        if (!isWellFormed(v)) return null;
        out[i] = str(v);
        break;
      default:
        if (v !== null) return null;
        out[i] = { nullValue: 0 };
    }
  }
  return out;
}

/**
 * Encodes a return value, with the well-known type that fits it (module
 * documentation) or a `Value`. An {@link OpaqueValue} is returned as its
 * exact `Any`. Throws a {@link SerializationError} naming the path of a value
 * it cannot send; `rootName` (default `'value'`) starts that path.
 *
 * @example
 * ```ts
 * encodeValue('receipt_789'); // a google.protobuf.StringValue
 * encodeValue(42);            // a google.protobuf.Int64Value
 * encodeValue({ ok: true });  // a google.protobuf.Value
 * ```
 */
export function encodeValue(value: unknown, rootName = 'value'): IAny {
  // PROTOCOL.md 8.8: Empty for undefined and null (py's None and go's nil).
  if (value === null) return packMessage(Empty, {});
  switch (typeof value) {
    case 'undefined':
      return packMessage(Empty, {});
    case 'string':
      if (isWellFormed(value)) return packMessage(StringValue, { value });
      break;
    case 'boolean':
      return packMessage(BoolValue, { value });
    case 'number':
      if (Number.isSafeInteger(value) && !Object.is(value, -0)) return packMessage(Int64Value, { value });
      return packMessage(DoubleValue, { value });
    case 'bigint':
      if (value > SAFE_MAX || value < -SAFE_MAX) {
        if (value >= INT64_MIN && value <= INT64_MAX) return packMessage(Int64Value, { value: toLong(value, false) });
        if (value > INT64_MAX && value <= UINT64_MAX) return packMessage(UInt64Value, { value: toLong(value, true) });
      }
      break;
    case 'object':
      if (value instanceof OpaqueValue) return value.toAny();
      if (value instanceof Uint8Array) return packMessage(BytesValue, { value });
      if (value instanceof Date) {
        let ms = Number.NaN;
        try {
          ms = value.getTime();
        } catch {
          // not a real Date: the encoder below reports it
        }
        if (ms >= TIMESTAMP_MIN_MS && ms <= TIMESTAMP_MAX_MS) {
          const seconds = Math.floor(ms / 1000);
          return packMessage(Timestamp, { seconds, nanos: (ms - seconds * 1000) * 1_000_000 });
        }
      }
      break;
  }
  return valueAny(new Encoder().value(value, root(rootName), 0));
}

// ---------------------------------------------------------------------------
// Decoding

const BUILTIN_ERRORS: Readonly<Record<string, Class<Error>>> = {
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
  AggregateError,
};

function malformed(path: Path, what: string): SerializationError {
  const where = formatPath(path);
  return new SerializationError(`cannot decode ${what} at ${where}`, where);
}

function field(fields: Record<string, IValue>, key: string): IValue | undefined {
  return hasOwn(fields, key) ? fields[key] : undefined;
}

function has(value: IValue, key: keyof IValue): boolean {
  return hasOwn(value, key) && value[key] != null;
}

/** Sets a field of a fresh plain object (`__proto__` as an own field, never as the prototype). */
function setField(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') defineField(target, key, value, true);
  else target[key] = value;
}

function defineField(target: object, key: string, value: unknown, enumerable: boolean): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable, configurable: true });
}

class Decoder {
  constructor(readonly registry: StatusRegistry) {}

  value(value: IValue, path: Path): unknown {
    if (has(value, 'nullValue')) return null;
    if (has(value, 'numberValue')) return value.numberValue;
    if (has(value, 'stringValue')) return value.stringValue;
    if (has(value, 'boolValue')) return value.boolValue;
    if (has(value, 'structValue')) return this.struct(value.structValue?.fields ?? {}, path);
    if (has(value, 'listValue')) return this.list(value.listValue ?? {}, path);
    return null; // a Value with no kind set: JSON null
  }

  list(listValue: IListValue, path: Path): unknown[] {
    const values = listValue.values ?? [];
    const out: unknown[] = new Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const item = values[i] as IValue;
      if (this.#tagOf(item) === 'hole') continue;
      out[i] = this.value(item, child(path, `[${i}]`));
    }
    return out;
  }

  #tagOf(value: IValue): string | undefined {
    if (!has(value, 'structValue')) return undefined;
    const fields = value.structValue?.fields ?? {};
    const tag = field(fields, TAG);
    return tag && has(tag, 'stringValue') ? (tag.stringValue as string) : undefined;
  }

  struct(fields: Record<string, IValue>, path: Path): unknown {
    if (hasOwn(fields, TAG)) return this.#tagged(fields, path);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(fields)) setField(out, key, this.value(fields[key] as IValue, child(path, keySeg(key))));
    return out;
  }

  #string(fields: Record<string, IValue>, key: string, path: Path, tag: string): string {
    const v = field(fields, key);
    if (v === undefined) throw malformed(path, `a "${tag}" value without "${key}"`);
    const decoded = this.value(v, child(path, `.${key}`));
    if (typeof decoded !== 'string') throw malformed(path, `a "${tag}" value whose "${key}" is not a string`);
    return decoded;
  }

  #pairs(fields: Record<string, IValue>, path: Path, tag: string): [IValue, IValue, number][] {
    const v = field(fields, 'v');
    if (!v || !has(v, 'listValue')) throw malformed(path, `a "${tag}" value without a "v" list`);
    return (v.listValue?.values ?? []).map((entry, i) => {
      const pair = entry.listValue?.values;
      if (!has(entry, 'listValue') || !pair || pair.length !== 2) throw malformed(path, `entry ${i} of a "${tag}" value`);
      return [pair[0] as IValue, pair[1] as IValue, i];
    });
  }

  #tagged(fields: Record<string, IValue>, path: Path): unknown {
    const tagValue = field(fields, TAG);
    const tag = tagValue && has(tagValue, 'stringValue') ? tagValue.stringValue : undefined;
    switch (tag) {
      case 'undefined':
        return undefined;
      case 'number': {
        const v = this.#string(fields, 'v', path, tag);
        const n = v === '-0' ? -0 : v === 'NaN' ? Number.NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : undefined;
        if (n === undefined) throw malformed(path, `the number ${quoteExcerpt(String(v), 200)}`);
        return n;
      }
      case 'bigint': {
        const v = this.#string(fields, 'v', path, tag);
        if (!/^-?\d+$/.test(v)) throw malformed(path, `the bigint ${quoteExcerpt(v, 200)}`);
        return BigInt(v);
      }
      case 'date': {
        const v = field(fields, 'v');
        if (!v || has(v, 'nullValue')) return new Date(Number.NaN);
        const text = this.#string(fields, 'v', path, tag);
        const time = Date.parse(text);
        if (Number.isNaN(time)) throw malformed(path, `the date ${quoteExcerpt(text, 200)}`);
        return new Date(time);
      }
      case 'bytes':
        return this.#base64(this.#string(fields, 'v', path, tag), path);
      case 'typed': {
        const kind = this.#string(fields, 'k', path, tag);
        const make = hasOwn(TYPED_ARRAYS, kind) ? TYPED_ARRAYS[kind] : undefined;
        if (!make) throw malformed(path, `a typed array of kind ${quoteExcerpt(String(kind), 200)}`);
        const bytes = this.#base64(this.#string(fields, 'v', path, tag), path);
        try {
          return make(bytes.buffer as ArrayBuffer);
        } catch (err) {
          throw malformed(path, `a ${kind} of ${bytes.length} bytes (${String(err)})`);
        }
      }
      case 'string': {
        const text = utf16FromBase64(this.#string(fields, 'v', path, tag));
        if (text === undefined) throw malformed(path, 'a UTF-16 string of an odd number of bytes');
        return text;
      }
      case 'map': {
        const map = new Map<unknown, unknown>();
        for (const [k, v, i] of this.#pairs(fields, path, tag)) {
          const key = this.value(k, child(path, `.keys()[${i}]`));
          map.set(key, this.value(v, child(path, mapKeySeg(key, i))));
        }
        return map;
      }
      case 'set': {
        const v = field(fields, 'v');
        if (!v || !has(v, 'listValue')) throw malformed(path, 'a "set" value without a "v" list');
        const items = (v.listValue?.values ?? []).map((item, i) => this.value(item, child(path, `.values()[${i}]`)));
        return new Set(items);
      }
      case 'object': {
        const out: Record<string, unknown> = {};
        for (const [k, v, i] of this.#pairs(fields, path, tag)) {
          const key = this.value(k, child(path, `.keys()[${i}]`));
          if (typeof key !== 'string') throw malformed(path, `key ${i} of an escaped object (not a string)`);
          setField(out, key, this.value(v, child(path, keySeg(key))));
        }
        return out;
      }
      case 'regexp': {
        const source = this.#string(fields, 'v', path, tag);
        const flags = this.#string(fields, 'f', path, tag);
        try {
          return new RegExp(source, flags);
        } catch (err) {
          throw malformed(path, `the RegExp /${source}/${flags} (${String(err)})`);
        }
      }
      case 'any':
        return new OpaqueValue(this.#string(fields, 't', path, tag), this.#base64(this.#string(fields, 'v', path, tag), path));
      case 'error':
        return this.error(fields, path, undefined);
      case 'hole':
        throw malformed(path, 'an array hole outside an array');
      default:
        throw malformed(
          path,
          tag === undefined
            ? `an object whose "${TAG}" tag is not a string`
            : `the tag ${JSON.stringify(tag)} (written by a newer version of the SDK?)`,
        );
    }
  }

  #base64(text: string, path: Path): Uint8Array {
    try {
      return fromBase64(text);
    } catch {
      throw malformed(path, 'base64 bytes');
    }
  }

  /** Rebuilds an `error` tag; `traceback` replaces a missing stack (top level). */
  error(fields: Record<string, IValue>, path: Path, traceback: string | undefined): Error {
    const name = field(fields, 'name') ? this.#string(fields, 'name', path, 'error') : 'Error';
    const message = field(fields, 'message') ? this.#string(fields, 'message', path, 'error') : '';
    const stack = field(fields, 'stack') ? this.#string(fields, 'stack', path, 'error') : traceback;
    const error = instantiate(name, this.registry);
    const target = error as unknown as Record<string, unknown>;
    // Own enumerable fields first (in their order); a field named like a slot
    // (an own enumerable `name`, say) wins over the slot.
    let own: Record<string, unknown> = {};
    const encodedFields = field(fields, 'fields');
    if (encodedFields) {
      const decoded = this.value(encodedFields, child(path, '.fields'));
      // `undefined`: the fields did not fit (errors are encoded leniently).
      if (decoded !== undefined && (typeof decoded !== 'object' || decoded === null)) {
        throw malformed(path, 'the fields of an error');
      }
      if (decoded !== undefined) own = decoded as Record<string, unknown>;
    }
    for (const key of Object.keys(own)) defineField(target, key, own[key], true);
    if (!hasOwn(own, 'message')) defineField(target, 'message', message, false);
    if (!hasOwn(own, 'name') && error.name !== name) defineField(target, 'name', name, false);
    if (!hasOwn(own, 'stack')) defineField(target, 'stack', stack ?? `${name}: ${message}`, false);
    for (const slot of ['cause', 'errors'] as const) {
      const v = field(fields, slot);
      if (v && !hasOwn(own, slot)) defineField(target, slot, this.value(v, child(path, `.${slot}`)), false);
    }
    const status = field(fields, 'status');
    const n = status && has(status, 'numberValue') ? status.numberValue : undefined;
    if (isStatus(n)) {
      if (isDispatchError(error)) {
        if (error.status !== n) {
          defineField(target, 'status', n, false);
          defineField(target, 'code', (Status[n] ?? '').toLowerCase(), false);
        }
      } else {
        setCarriedStatus(error, n);
      }
    }
    return error;
  }
}

/**
 * A new error of the class named `name`, without running that class's
 * constructor: an SDK class, else a class registered in `registry`, else a
 * built-in error class, else `Error`. `Reflect.construct(Error, [], cls)`
 * gives a genuine error object (with the engine's error internals) whose
 * prototype is `cls.prototype`, like `Object.create(cls.prototype)` would.
 */
function instantiate(name: string, registry: StatusRegistry): Error {
  const cls: Class<Error> =
    sdkErrorClassByName(name) ??
    registry.errorClassByName(name) ??
    (hasOwn(BUILTIN_ERRORS, name) ? BUILTIN_ERRORS[name] : undefined) ??
    Error;
  try {
    return Reflect.construct(Error, [], cls) as Error;
  } catch {
    return Object.create(cls.prototype) as Error;
  }
}

function decodeKnown(any: IAny, path: Path, registry: StatusRegistry): { known: true; value: unknown } | { known: false } {
  const typeUrl = anyTypeUrl(any);
  const bytes = any.value ?? EMPTY_BYTES;
  const name = typeNameOf(typeUrl);
  const decoder = new Decoder(registry);
  try {
    switch (name) {
      case 'google.protobuf.Empty':
        return { known: true, value: undefined };
      case 'google.protobuf.BoolValue':
        return { known: true, value: Boolean(BoolValue.decode(bytes).value) };
      case 'google.protobuf.Int32Value':
        return { known: true, value: Int32Value.decode(bytes).value ?? 0 };
      case 'google.protobuf.UInt32Value':
        return { known: true, value: UInt32Value.decode(bytes).value ?? 0 };
      case 'google.protobuf.Int64Value':
      case 'google.protobuf.UInt64Value': {
        const type = name === 'google.protobuf.Int64Value' ? Int64Value : UInt64Value;
        const big = toBigInt(type.decode(bytes).value);
        return { known: true, value: big <= SAFE_MAX && big >= -SAFE_MAX ? Number(big) : big };
      }
      case 'google.protobuf.FloatValue':
        return { known: true, value: FloatValue.decode(bytes).value ?? 0 };
      case 'google.protobuf.DoubleValue':
        return { known: true, value: DoubleValue.decode(bytes).value ?? 0 };
      case 'google.protobuf.StringValue':
        return { known: true, value: StringValue.decode(bytes).value ?? '' };
      case 'google.protobuf.BytesValue':
        return { known: true, value: copyBytes(BytesValue.decode(bytes).value) };
      case 'google.protobuf.Timestamp': {
        const t = Timestamp.decode(bytes);
        const ms = Number(toBigInt(t.seconds)) * 1000 + Math.floor((t.nanos ?? 0) / 1_000_000);
        return { known: true, value: new Date(ms) };
      }
      case 'google.protobuf.Duration':
        return { known: true, value: durationToMs(Duration.decode(bytes)) ?? 0 };
      case 'google.protobuf.Value':
        return { known: true, value: decoder.value(Value.decode(bytes), path) };
      case 'google.protobuf.ListValue':
        return { known: true, value: decoder.list(ListValue.decode(bytes), path) };
      case 'google.protobuf.Struct':
        return { known: true, value: decoder.struct(Struct.decode(bytes).fields ?? {}, path) };
      default:
        return { known: false };
    }
  } catch (err) {
    if (err instanceof SerializationError) throw err;
    throw new SerializationError(`cannot decode the ${name} at ${formatPath(path)}: ${String(err)}`, formatPath(path), {
      cause: err,
    });
  }
}

/**
 * Decodes a value encoded by {@link encodeValue} or by another SDK (module
 * documentation). `Empty` or an absent `Any` give `undefined`; a type it does
 * not know gives an {@link OpaqueValue}. Errors inside the value are rebuilt
 * with the classes of `registry`. Throws a {@link SerializationError} on
 * malformed bytes.
 *
 * @example
 * ```ts
 * decodeValue(encodeValue(new Map([['a', 1n]]))); // Map { 'a' => 1n }
 * decodeValue(undefined);                         // undefined
 * ```
 */
export function decodeValue(any: IAny | null | undefined, registry: StatusRegistry = defaultStatusRegistry): unknown {
  if (!any) return undefined;
  const typeUrl = anyTypeUrl(any);
  const bytes = any.value ?? EMPTY_BYTES;
  if (typeUrl === '' && bytes.length === 0) return undefined;
  const known = decodeKnown(any, root('value'), registry);
  return known.known ? known.value : new OpaqueValue(typeUrl, copyBytes(bytes));
}

/**
 * Decodes a call's input into its argument list: a `Value` list (what
 * {@link encodeArgs} writes) gives its elements; an absent input gives `[]`;
 * any other single value (a `Value` that is not a list, a `StringValue` from
 * another SDK, an unknown message) gives a one-element list. Throws a
 * {@link SerializationError} (a `TypeError`: INVALID_ARGUMENT) on malformed
 * bytes.
 *
 * @example
 * ```ts
 * decodeArgs(encodeArgs(['Jane', 2])); // ['Jane', 2]
 * decodeArgs(null);                    // []
 * ```
 */
export function decodeArgs(input: IAny | null | undefined, registry: StatusRegistry = defaultStatusRegistry): unknown[] {
  if (!input) return [];
  const typeUrl = anyTypeUrl(input);
  const bytes = input.value ?? EMPTY_BYTES;
  if (typeUrl === '' && bytes.length === 0) return [];
  const path = root('args');
  const name = typeNameOf(typeUrl);
  if (name === 'google.protobuf.Value' || name === 'google.protobuf.ListValue') {
    let message: IValue;
    try {
      message = name === 'google.protobuf.Value' ? Value.decode(bytes) : { listValue: ListValue.decode(bytes) };
    } catch (err) {
      throw new SerializationError(`cannot decode the ${name} of the arguments: ${String(err)}`, 'args', { cause: err });
    }
    const decoder = new Decoder(registry);
    if (has(message, 'listValue')) return decoder.list(message.listValue ?? {}, path);
    return [decoder.value(message, path)];
  }
  return [decodeValue(input, registry)];
}

// ---------------------------------------------------------------------------
// Errors

function describeThrown(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || typeof value !== 'object') {
    return typeof value === 'symbol' ? value.toString() : typeof value === 'function' ? `a function${value.name ? ` (${value.name})` : ''}` : String(value);
  }
  const message = safeString(value, 'message');
  if (message !== undefined) return message;
  try {
    const json = JSON.stringify(value);
    if (typeof json === 'string') return json.length > 200 ? `${json.slice(0, 200)}…` : json;
  } catch {
    // cyclic or has bigints
  }
  return Object.prototype.toString.call(value);
}

/**
 * Encodes a thrown value as an `Error` message (module documentation):
 * `type` = its name, `message`, `traceback` = its stack in UTF-8, and a
 * `value` only this SDK reads, holding its own enumerable fields, `cause`
 * (recursively) and, when given, the `status` it produced, so the caller can
 * rebuild it with {@link decodeError}. A value that is not an `Error` is
 * wrapped in one (name `'Error'`, the value as `cause`). Never throws.
 *
 * @example
 * ```ts
 * const error = encodeError(new NotFoundError('no such order'), Status.NOT_FOUND);
 * error.type; // 'NotFoundError'
 * ```
 */
export function encodeError(error: unknown, status?: Status): IError {
  const isError = typeof error === 'object' && error !== null && isErrorLike(error);
  const type = isError ? (safeString(error, 'name') ?? 'Error') : 'Error';
  const message = isError ? (safeString(error, 'message') ?? '') : describeThrown(error);
  const stack = isError ? safeString(error, 'stack') : undefined;
  const out: IError = { type: toWellFormed(type), message: toWellFormed(message) };
  if (stack !== undefined) out.traceback = new TextEncoder().encode(stack);
  try {
    const encoder = new Encoder(true);
    const path = root('error');
    const known = isStatus(status) ? status : undefined;
    let payload: IValue;
    if (isError) {
      payload = encoder.error(error, path, 0, true, known);
    } else {
      const extra: Record<string, IValue> = { name: str('Error'), message: encoder.value(message, path, 2) };
      extra.cause = encoder.value(error, child(path, '.cause'), 2);
      if (known !== undefined) extra.status = { numberValue: known };
      payload = tagged('error', extra);
    }
    const body = Value.encode(payload);
    const value = new Uint8Array(MAGIC.length + body.length);
    value.set(MAGIC, 0);
    value.set(body, MAGIC.length);
    out.value = value;
  } catch {
    // Never fail to report a failure: type, message and traceback remain.
  }
  return out;
}

function startsWithMagic(bytes: Uint8Array): boolean {
  if (bytes.length < MAGIC.length) return false;
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) return false;
  return true;
}

/**
 * Rebuilds an error received in an `Error` message. With this SDK's `value`:
 * an SDK error class by name (`TemporaryError`...), else a class registered
 * in `registry` (created without running its constructor), else a built-in
 * error class (`TypeError`...), else a plain `Error` with that `name`; then
 * its message, stack (the remote traceback, so a developer sees where it was
 * thrown), own fields, `cause` and `errors` are restored. A foreign error
 * (py, go: no magic prefix in `value`, which is never interpreted) gets the
 * same class lookup by `type`, its `message`, and the traceback as stack.
 *
 * The status the error had remotely — `status` if given, else the one
 * recorded by {@link encodeError} — is attached with {@link setCarriedStatus},
 * so `registry.errorStatus(decoded)` gives it back unless a registered
 * handler says otherwise. UNSPECIFIED means PERMANENT_ERROR for a failed call
 * (PROTOCOL.md 8.13); OK attaches nothing.
 *
 * @example
 * ```ts
 * const err = decodeError(result.error, Status.THROTTLED);
 * err.name;                          // 'RateLimited'
 * registry.errorStatus(err);         // Status.THROTTLED
 * ```
 */
export function decodeError(
  error: IError | null | undefined,
  status?: Status,
  registry: StatusRegistry = defaultStatusRegistry,
): Error {
  const carried = status === Status.UNSPECIFIED ? Status.PERMANENT_ERROR : status;
  const traceback = error?.traceback && error.traceback.length > 0 ? new TextDecoder().decode(error.traceback) : undefined;
  let decoded: Error | undefined;
  const value = error?.value;
  if (value && startsWithMagic(value)) {
    try {
      const payload = Value.decode(value.subarray(MAGIC.length));
      const fields = has(payload, 'structValue') ? (payload.structValue?.fields ?? {}) : undefined;
      const tag = fields && field(fields, TAG);
      if (fields && tag?.stringValue === 'error') decoded = new Decoder(registry).error(fields, root('error'), traceback);
    } catch {
      decoded = undefined; // unreadable: fall back to type and message
    }
  }
  if (!decoded) {
    const name = error?.type || 'Error';
    const message = error ? (error.message ?? '') : `the call failed without an error message${status === undefined ? '' : ` (status ${Status[status] ?? status})`}`;
    decoded = instantiate(name, registry);
    defineField(decoded, 'message', message, false);
    if (decoded.name !== name) defineField(decoded, 'name', name, false);
    defineField(decoded, 'stack', traceback ?? `${name}: ${message}`, false);
  }
  if (carried !== undefined && carried !== Status.OK && isStatus(carried)) setCarriedStatus(decoded, carried);
  return decoded;
}
