/**
 * The proto3 canonical JSON mapping (https://protobuf.dev/programming-guides/json/)
 * over protobufjs reflection, for Connect JSON requests and responses
 * (`Content-Type: application/json`, PROTOCOL.md decision 8.1).
 *
 * Output: lowerCamelCase names, fields at their default value omitted (but
 * set oneof members and set wrapper/message fields always printed), 64-bit
 * integers as decimal strings, bytes as standard base64, enums by name,
 * well-known types in their special forms.
 *
 * Input: lowerCamelCase or the original snake_case names, `null` meaning "not
 * set", 64-bit integers as strings or safe-integer numbers, bytes in standard
 * or URL-safe base64 with or without padding, enums by name or number,
 * timestamps with any UTC offset. Unknown fields are errors. Every error is a
 * {@link JsonFormatError} whose message starts with the JSON path of the bad
 * value (`calls[0].input: unknown type URL "..."`).
 *
 * `google.protobuf.Any` is printed as `{"@type": url, ...fields}` for
 * messages the codec's protobufjs root knows, and as
 * `{"@type": url, "value": <json>}` for well-known types. **This project's
 * fallback:** proto3 JSON cannot print an Any whose type is unknown (or whose
 * bytes do not decode as that type); instead of failing, it is printed as
 * `{"@type": url, "@value": "<standard base64 of the bytes>"}`, and this form
 * is accepted back on input, so such values round-trip exactly.
 * @module
 */
import protobuf from 'protobufjs';
import Long from 'long';
import { toBigInt, toLong, typeNameOf, type MessageType } from './proto.js';
import { excerpt, quoteExcerpt } from './excerpt.js';

/**
 * A value that does not follow the proto3 JSON mapping (on input) or a
 * message that cannot be printed as JSON (on output). `path` is the JSON path
 * of the bad value (`''` for the top level); the message starts with it.
 * @example
 * try {
 *   fromJson(RunRequest, JSON.parse(text));
 * } catch (err) {
 *   if (err instanceof JsonFormatError) return { status: 400, body: { code: 'invalid_argument', message: err.message } };
 *   throw err;
 * }
 */
export class JsonFormatError extends Error {
  override readonly name = 'JsonFormatError';
  /** JSON path of the offending value, e.g. `calls[0].input`; empty at the top level. */
  readonly path: string;

  constructor(path: string, problem: string, options?: ErrorOptions) {
    // Capped: a message may quote a bad value, and it is echoed in responses and stored as a call's error.
    super(excerpt(path === '' ? problem : `${path}: ${problem}`), options);
    this.path = excerpt(path);
  }
}

/** Deepest nesting of messages and JSON values accepted or printed. */
const MAX_DEPTH = 100;

/** proto3 limits for Duration (about 10,000 years) and Timestamp (years 1 to 9999). */
const MAX_DURATION_SECONDS = 315_576_000_000n;
const MIN_TIMESTAMP_SECONDS = -62_135_596_800n;
const MAX_TIMESTAMP_SECONDS = 253_402_300_799n;
const MAX_FLOAT = 3.4028234663852886e38;

const WRAPPERS = new Set([
  'google.protobuf.DoubleValue',
  'google.protobuf.FloatValue',
  'google.protobuf.Int64Value',
  'google.protobuf.UInt64Value',
  'google.protobuf.Int32Value',
  'google.protobuf.UInt32Value',
  'google.protobuf.BoolValue',
  'google.protobuf.StringValue',
  'google.protobuf.BytesValue',
]);

/** Well-known types with a special JSON form (nested in an Any as `"value"`). */
const SPECIAL = new Set([
  ...WRAPPERS,
  'google.protobuf.Any',
  'google.protobuf.Duration',
  'google.protobuf.Timestamp',
  'google.protobuf.Value',
  'google.protobuf.Struct',
  'google.protobuf.ListValue',
  'google.protobuf.Empty',
]);

const INT_RANGES: Record<string, readonly [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};
const LONG_TYPES = new Set(['int64', 'sint64', 'sfixed64', 'uint64', 'fixed64']);
const UNSIGNED_LONG = new Set(['uint64', 'fixed64']);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = Record<string, unknown>;

interface Ctx {
  root: protobuf.Root;
  depth: number;
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

function nameOf(type: protobuf.ReflectionObject): string {
  return type.fullName.startsWith('.') ? type.fullName.slice(1) : type.fullName;
}

function join(path: string, key: string): string {
  if (key.length <= 200 && /^[A-Za-z_$][\w$]*$/.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${quoteExcerpt(key, 200)}]`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'string':
      return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
    case 'number':
      return `the number ${v}`;
    case 'boolean':
      return `${v}`;
    case 'object':
      return 'an object';
    default:
      return `a ${typeof v}`;
  }
}

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sets a property even when the key is `__proto__`. */
function setOwn(obj: Obj, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function resolved(field: protobuf.Field): protobuf.Field {
  return field.resolve() as protobuf.Field;
}

/** The names a message object may use for a field: protobufjs's, JSON's, the .proto one. */
function objectNames(field: protobuf.Field): string[] {
  const f = resolved(field);
  return [...new Set([f.name, f.jsonName, f.protoName])];
}

function readField(msg: Obj, field: protobuf.Field, ownOnly: boolean): unknown {
  for (const name of objectNames(field)) {
    if (ownOnly && !Object.hasOwn(msg, name)) continue;
    const v = msg[name];
    if (v !== undefined) return v;
  }
  return undefined;
}

function enterDepth(ctx: Ctx, path: string): Ctx {
  if (ctx.depth >= MAX_DEPTH) throw new JsonFormatError(path, `nested more than ${MAX_DEPTH} levels deep`);
  return { root: ctx.root, depth: ctx.depth + 1 };
}

function lookupMessage(root: protobuf.Root, typeUrl: string): protobuf.Type | null {
  const name = typeNameOf(typeUrl);
  if (!/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/.test(name)) return null;
  try {
    const found = root.lookup(`.${name}`);
    return found instanceof protobuf.Type ? found : null;
  } catch {
    return null;
  }
}

function fieldById(type: protobuf.Type, id: number): protobuf.Field {
  const f = type.fieldsById[id];
  if (f === undefined) throw new Error(`${nameOf(type)} has no field ${id}`);
  return resolved(f);
}

function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Standard or URL-safe base64, padded or not. */
function decodeBase64(text: string, path: string): Uint8Array {
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text)) {
    throw new JsonFormatError(path, `invalid base64 ${describe(text)}: expected standard or URL-safe base64`);
  }
  const s = text.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
  if (s.length % 4 === 1) throw new JsonFormatError(path, `invalid base64 ${describe(text)}: wrong length`);
  return new Uint8Array(Buffer.from(s, 'base64'));
}

function toBytes(v: unknown, path: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return decodeBase64(v, path);
  if (Array.isArray(v)) return Uint8Array.from(v as number[]);
  throw new JsonFormatError(path, `expected bytes, got ${describe(v)}`);
}

// ---------------------------------------------------------------------------
// Message → JSON
// ---------------------------------------------------------------------------

/**
 * Prints a message (a decoded message or a plain object accepted by
 * `type.encode()`) as its proto3 JSON value, ready for `JSON.stringify`.
 * Throws {@link JsonFormatError} for what JSON cannot carry (a
 * `google.protobuf.Value` with no kind or a non-finite number, a Duration or
 * Timestamp out of range, an Any with bytes but no type URL).
 * @example
 * const json = toJson(RunResponse, { status: ProtoStatus.STATUS_OK, exit: { result: { output: pack(StringValue, { value: 'hi' }) } } });
 * // { status: 'STATUS_OK', exit: { result: { output: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: 'hi' } } } }
 */
export function toJson<T extends object>(type: MessageType<T>, message: T): unknown {
  return messageToJson(type.type, message as Obj, '', { root: type.type.root, depth: 0 });
}

/**
 * {@link toJson} serialised to UTF-8 bytes, for an HTTP response body.
 * @example
 * res.setHeader('content-type', 'application/json');
 * res.end(toJsonBytes(RunResponse, response));
 */
export function toJsonBytes<T extends object>(type: MessageType<T>, message: T): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(toJson(type, message)));
}

function messageToJson(type: protobuf.Type, msg: Obj, path: string, ctx: Ctx): Json {
  if (!isObject(msg)) throw new JsonFormatError(path, `expected a ${nameOf(type)} message, got ${describe(msg)}`);
  const inner = enterDepth(ctx, path);
  const name = nameOf(type);
  if (SPECIAL.has(name)) return specialToJson(type, name, msg, path, inner);
  const out: { [key: string]: Json } = {};
  const oneofs = new Map<string, string>();
  for (const f of type.fieldsArray) {
    const field = resolved(f);
    const p = join(path, field.jsonName);
    if (field.map) {
      const v = readField(msg, field, false);
      if (v == null) continue;
      if (!isObject(v)) throw new JsonFormatError(p, `expected a map object, got ${describe(v)}`);
      const keys = Object.keys(v);
      if (keys.length === 0) continue;
      const m: { [key: string]: Json } = {};
      const keyType = (field as unknown as protobuf.MapField).keyType;
      for (const k of keys) setOwn(m, mapKeyToJson(keyType, k), singleToJson(field, v[k], join(p, k), inner));
      out[field.jsonName] = m;
    } else if (field.repeated) {
      const v = readField(msg, field, false);
      if (v == null) continue;
      if (!Array.isArray(v)) throw new JsonFormatError(p, `expected an array, got ${describe(v)}`);
      if (v.length === 0) continue;
      out[field.jsonName] = v.map((x, i) => singleToJson(field, x, `${p}[${i}]`, inner));
    } else if (field.partOf) {
      const v = readField(msg, field, true);
      if (v == null) continue;
      const other = oneofs.get(field.partOf.name);
      if (other !== undefined) {
        throw new JsonFormatError(path, `several members of oneof "${field.partOf.name}" are set ("${other}" and "${field.jsonName}")`);
      }
      oneofs.set(field.partOf.name, field.jsonName);
      out[field.jsonName] = singleToJson(field, v, p, inner);
    } else {
      const v = readField(msg, field, false);
      if (v == null) continue;
      if (field.resolvedType instanceof protobuf.Enum && typeof v === 'string' && field.resolvedType.values[v] === 0) continue;
      if (!(field.resolvedType instanceof protobuf.Type) && isDefaultScalar(field, v)) continue;
      out[field.jsonName] = singleToJson(field, v, p, inner);
    }
  }
  return out;
}

function isDefaultScalar(field: protobuf.Field, v: unknown): boolean {
  switch (typeof v) {
    case 'number':
      return v === 0;
    case 'string':
      return v === '' || (LONG_TYPES.has(field.type) && /^[-+]?0+$/.test(v)) || (field.type === 'bytes' && v === '');
    case 'boolean':
      return v === false;
    case 'bigint':
      return v === 0n;
    default:
      break;
  }
  if (v instanceof Uint8Array || Array.isArray(v)) return v.length === 0;
  if (Long.isLong(v)) return (v as Long).isZero();
  return false;
}

function mapKeyToJson(keyType: string, key: string): string {
  if (LONG_TYPES.has(keyType) && !/^-?\d+$/.test(key) && key.length === 8) {
    // protobufjs decodes 64-bit map keys into 8-character "long hashes".
    const bits = protobuf.util.LongBits.fromHash(key);
    return toBigInt(bits.toLong(UNSIGNED_LONG.has(keyType)) as Long).toString();
  }
  return key;
}

function singleToJson(field: protobuf.Field, v: unknown, path: string, ctx: Ctx): Json {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return messageToJson(rt, v as Obj, path, ctx);
  if (rt instanceof protobuf.Enum) return enumToJson(rt, v, path);
  return scalarToJson(field.type, v, path);
}

function enumToJson(e: protobuf.Enum, v: unknown, path: string): Json {
  if (nameOf(e) === 'google.protobuf.NullValue') return null;
  if (typeof v === 'string') {
    if (Object.hasOwn(e.values, v)) return v;
    throw new JsonFormatError(path, `unknown ${nameOf(e)} value ${describe(v)}`);
  }
  if (typeof v === 'number' && Number.isInteger(v)) return e.valuesById[v] ?? v;
  throw new JsonFormatError(path, `expected a ${nameOf(e)} value, got ${describe(v)}`);
}

function scalarToJson(type: string, v: unknown, path: string): Json {
  switch (type) {
    case 'double':
    case 'float': {
      const n = typeof v === 'number' ? v : Number(v);
      if (Number.isNaN(n)) return 'NaN';
      if (n === Number.POSITIVE_INFINITY) return 'Infinity';
      if (n === Number.NEGATIVE_INFINITY) return '-Infinity';
      return type === 'float' ? shortestFloat(n) : n;
    }
    case 'int32':
    case 'sint32':
    case 'sfixed32':
    case 'uint32':
    case 'fixed32': {
      const n = typeof v === 'number' ? v : Number(v);
      if (!Number.isInteger(n)) throw new JsonFormatError(path, `expected a ${type}, got ${describe(v)}`);
      return n;
    }
    case 'int64':
    case 'sint64':
    case 'sfixed64':
    case 'uint64':
    case 'fixed64': {
      let big: bigint;
      try {
        big = toBigInt(v as Long | number | bigint | string);
      } catch {
        throw new JsonFormatError(path, `expected a ${type}, got ${describe(v)}`);
      }
      return (UNSIGNED_LONG.has(type) ? BigInt.asUintN(64, big) : BigInt.asIntN(64, big)).toString();
    }
    case 'bool':
      return Boolean(v);
    case 'string':
      if (typeof v !== 'string') throw new JsonFormatError(path, `expected a string, got ${describe(v)}`);
      return v;
    case 'bytes':
      return encodeBase64(toBytes(v, path));
    default:
      throw new JsonFormatError(path, `unsupported field type "${type}"`);
  }
}

/** The shortest decimal that reads back as the same float32. */
function shortestFloat(n: number): number {
  if (n === 0) return 0;
  for (let p = 1; p <= 17; p++) {
    const candidate = Number(n.toPrecision(p));
    if (Math.fround(candidate) === n) return candidate;
  }
  return n;
}

function specialToJson(type: protobuf.Type, name: string, msg: Obj, path: string, ctx: Ctx): Json {
  if (WRAPPERS.has(name)) {
    const field = fieldById(type, 1);
    const v = readField(msg, field, false);
    return scalarToJson(field.type, v ?? field.typeDefault, path);
  }
  switch (name) {
    case 'google.protobuf.Any':
      return anyToJson(type, msg, path, ctx);
    case 'google.protobuf.Duration':
      return durationToJson(type, msg, path);
    case 'google.protobuf.Timestamp':
      return timestampToJson(type, msg, path);
    case 'google.protobuf.Empty':
      return {};
    case 'google.protobuf.Struct': {
      const fields = readField(msg, fieldById(type, 1), false);
      const out: { [key: string]: Json } = {};
      if (fields == null) return out;
      if (!isObject(fields)) throw new JsonFormatError(path, `expected Struct fields as an object, got ${describe(fields)}`);
      const valueType = fieldById(type, 1).resolvedType as protobuf.Type;
      for (const k of Object.keys(fields)) setOwn(out, k, messageToJson(valueType, fields[k] as Obj, join(path, k), ctx));
      return out;
    }
    case 'google.protobuf.ListValue': {
      const field = fieldById(type, 1);
      const values = readField(msg, field, false);
      if (values == null) return [];
      if (!Array.isArray(values)) throw new JsonFormatError(path, `expected ListValue values as an array, got ${describe(values)}`);
      return values.map((x, i) => messageToJson(field.resolvedType as protobuf.Type, x as Obj, `${path}[${i}]`, ctx));
    }
    case 'google.protobuf.Value':
      return valueToJson(type, msg, path, ctx);
    default:
      throw new JsonFormatError(path, `unsupported well-known type ${name}`);
  }
}

function valueToJson(type: protobuf.Type, msg: Obj, path: string, ctx: Ctx): Json {
  const set = type.fieldsArray.map(resolved).filter((field) => readField(msg, field, true) != null);
  if (set.length > 1) {
    throw new JsonFormatError(path, `several members of oneof "kind" are set (${set.map((f) => `"${f.jsonName}"`).join(' and ')})`);
  }
  for (const field of set) {
    const v = readField(msg, field, true);
    switch (field.id) {
      case 1:
        return null;
      case 2: {
        const n = Number(v);
        if (!Number.isFinite(n)) throw new JsonFormatError(path, `google.protobuf.Value cannot hold ${n} in JSON`);
        return n;
      }
      case 3:
        return scalarToJson('string', v, path);
      case 4:
        return Boolean(v);
      default:
        return messageToJson(field.resolvedType as protobuf.Type, v as Obj, path, ctx);
    }
  }
  throw new JsonFormatError(path, 'google.protobuf.Value has no kind set (null, number, string, bool, struct or list)');
}

function anyToJson(type: protobuf.Type, msg: Obj, path: string, ctx: Ctx): Json {
  const urlField = fieldById(type, 1);
  const valueField = fieldById(type, 2);
  const typeUrl = readField(msg, urlField, false) ?? '';
  const rawValue = readField(msg, valueField, false);
  const bytes = rawValue == null ? new Uint8Array(0) : toBytes(rawValue, join(path, 'value'));
  if (typeof typeUrl !== 'string') throw new JsonFormatError(join(path, '@type'), `expected a type URL string, got ${describe(typeUrl)}`);
  if (typeUrl === '') {
    if (bytes.length === 0) return {};
    throw new JsonFormatError(path, 'google.protobuf.Any has a value but no type URL');
  }
  const fallback = { '@type': typeUrl, '@value': encodeBase64(bytes) };
  const inner = lookupMessage(ctx.root, typeUrl);
  if (inner === null) return fallback;
  let decoded: Obj;
  try {
    decoded = inner.decode(bytes) as unknown as Obj;
  } catch {
    return fallback;
  }
  if (SPECIAL.has(nameOf(inner))) {
    return { '@type': typeUrl, value: messageToJson(inner, decoded, join(path, 'value'), ctx) };
  }
  const fields = messageToJson(inner, decoded, path, ctx) as { [key: string]: Json };
  return { '@type': typeUrl, ...fields };
}

function secondsAndNanos(type: protobuf.Type, msg: Obj, path: string): [bigint, number] {
  const s = readField(msg, fieldById(type, 1), false);
  const n = readField(msg, fieldById(type, 2), false);
  let seconds: bigint;
  try {
    seconds = toBigInt((s ?? 0) as Long | number | string);
  } catch {
    throw new JsonFormatError(path, `${nameOf(type)} seconds must be an integer, got ${describe(s)}`);
  }
  const nanos = n == null ? 0 : Number(n);
  if (!Number.isInteger(nanos)) throw new JsonFormatError(path, `${nameOf(type)} nanos must be an integer, got ${describe(n)}`);
  return [seconds, nanos];
}

function fraction(nanos: number): string {
  if (nanos === 0) return '';
  const digits = String(nanos).padStart(9, '0');
  if (nanos % 1_000_000 === 0) return `.${digits.slice(0, 3)}`;
  if (nanos % 1000 === 0) return `.${digits.slice(0, 6)}`;
  return `.${digits}`;
}

function durationToJson(type: protobuf.Type, msg: Obj, path: string): Json {
  const [seconds, nanos] = secondsAndNanos(type, msg, path);
  if (seconds > MAX_DURATION_SECONDS || seconds < -MAX_DURATION_SECONDS) {
    throw new JsonFormatError(path, `Duration of ${seconds} s is out of range (±${MAX_DURATION_SECONDS} s)`);
  }
  if (nanos <= -1e9 || nanos >= 1e9 || (seconds > 0n && nanos < 0) || (seconds < 0n && nanos > 0)) {
    throw new JsonFormatError(path, `Duration has invalid nanos ${nanos} for ${seconds} seconds`);
  }
  const negative = seconds < 0n || nanos < 0;
  const abs = seconds < 0n ? -seconds : seconds;
  return `${negative ? '-' : ''}${abs}${fraction(Math.abs(nanos))}s`;
}

function timestampToJson(type: protobuf.Type, msg: Obj, path: string): Json {
  const [seconds, nanos] = secondsAndNanos(type, msg, path);
  if (seconds < MIN_TIMESTAMP_SECONDS || seconds > MAX_TIMESTAMP_SECONDS) {
    throw new JsonFormatError(path, `Timestamp ${seconds} is outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z`);
  }
  if (nanos < 0 || nanos >= 1e9) throw new JsonFormatError(path, `Timestamp has invalid nanos ${nanos}`);
  const iso = new Date(Number(seconds) * 1000).toISOString(); // years 1..9999 print as YYYY
  return `${iso.slice(0, 19)}${fraction(nanos)}Z`;
}

// ---------------------------------------------------------------------------
// JSON → message
// ---------------------------------------------------------------------------

/**
 * Reads a message from its proto3 JSON value (what `JSON.parse` returns).
 * The result has the same shape as `type.decode()` gives (it is normalised
 * through the binary codec), so it can be handled and re-encoded like a
 * binary request. Throws {@link JsonFormatError} naming the JSON path.
 * @example
 * const req = fromJson(RunRequest, { function: 'greet', input: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: 'Ada' } });
 * RunRequest.encode(req); // the same bytes as the binary request
 */
export function fromJson<T extends object>(type: MessageType<T>, json: unknown): T {
  const plain = messageFromJson(type.type, json, '', { root: type.type.root, depth: 0 });
  return type.decode(type.type.encode(plain).finish());
}

/**
 * Reads a message from a UTF-8 JSON body (an HTTP request body). Invalid
 * UTF-8 or JSON syntax is a {@link JsonFormatError} too.
 * @example
 * const req = fromJsonBytes(RunRequest, rawBody);
 */
export function fromJsonBytes<T extends object>(type: MessageType<T>, body: Uint8Array): T {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (err) {
    const why = err instanceof SyntaxError ? err.message : 'the body is not valid UTF-8';
    throw new JsonFormatError('', `invalid JSON: ${why}`, { cause: err });
  }
  return fromJson(type, json);
}

const jsonIndex = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();

function fieldsByJsonKey(type: protobuf.Type): Map<string, protobuf.Field> {
  let index = jsonIndex.get(type);
  if (index === undefined) {
    index = new Map();
    for (const f of type.fieldsArray) {
      const field = resolved(f);
      for (const key of [field.jsonName, field.protoName, field.name]) index.set(key, field);
    }
    jsonIndex.set(type, index);
  }
  return index;
}

function isNullable(field: protobuf.Field): boolean {
  const rt = field.resolvedType;
  return rt !== null && (nameOf(rt) === 'google.protobuf.Value' || nameOf(rt) === 'google.protobuf.NullValue');
}

function messageFromJson(type: protobuf.Type, json: unknown, path: string, ctx: Ctx): Obj {
  const inner = enterDepth(ctx, path);
  const name = nameOf(type);
  if (SPECIAL.has(name)) return specialFromJson(type, name, json, path, inner);
  if (!isObject(json)) throw new JsonFormatError(path, `expected a JSON object for ${name}, got ${describe(json)}`);
  const index = fieldsByJsonKey(type);
  const out: Obj = {};
  const seen = new Map<protobuf.Field, string>();
  const oneofs = new Map<string, string>();
  for (const key of Object.keys(json)) {
    const p = join(path, key);
    const field = index.get(key);
    if (field === undefined) throw new JsonFormatError(p, `unknown field (${name} has no field ${quoteExcerpt(key, 200)})`);
    const before = seen.get(field);
    if (before !== undefined) throw new JsonFormatError(p, `field given twice ("${before}" and ${quoteExcerpt(key, 200)})`);
    seen.set(field, key);
    const v = json[key];
    if (v === null && (field.repeated || field.map || !isNullable(field))) continue; // null = not set
    if (field.partOf) {
      const other = oneofs.get(field.partOf.name);
      if (other !== undefined) {
        throw new JsonFormatError(p, `several members of oneof "${field.partOf.name}" are set ("${other}" and ${quoteExcerpt(key, 200)})`);
      }
      oneofs.set(field.partOf.name, key);
    }
    out[field.name] = fieldFromJson(field, v, p, inner);
  }
  return out;
}

function fieldFromJson(field: protobuf.Field, v: unknown, path: string, ctx: Ctx): unknown {
  if (field.map) {
    if (!isObject(v)) throw new JsonFormatError(path, `expected an object (map), got ${describe(v)}`);
    const keyType = (field as unknown as protobuf.MapField).keyType;
    const m: Obj = {};
    for (const k of Object.keys(v)) {
      const p = join(path, k);
      const x = v[k];
      if (x === null && !isNullable(field)) throw new JsonFormatError(p, 'map values cannot be null');
      setOwn(m, mapKeyFromJson(keyType, k, p), singleFromJson(field, x, p, ctx));
    }
    return m;
  }
  if (field.repeated) {
    if (!Array.isArray(v)) throw new JsonFormatError(path, `expected an array, got ${describe(v)}`);
    return v.map((x, i) => {
      const p = `${path}[${i}]`;
      if (x === null && !isNullable(field)) throw new JsonFormatError(p, 'array elements cannot be null');
      return singleFromJson(field, x, p, ctx);
    });
  }
  return singleFromJson(field, v, path, ctx);
}

function mapKeyFromJson(keyType: string, key: string, path: string): string {
  switch (keyType) {
    case 'string':
      return key;
    case 'bool':
      if (key !== 'true' && key !== 'false') throw new JsonFormatError(path, `map key must be "true" or "false", got ${describe(key)}`);
      return key;
    default:
      if (!/^-?\d+$/.test(key)) throw new JsonFormatError(path, `map key must be a decimal ${keyType}, got ${describe(key)}`);
      return String(integerFromJson(keyType, key, path));
  }
}

function singleFromJson(field: protobuf.Field, v: unknown, path: string, ctx: Ctx): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return messageFromJson(rt, v, path, ctx);
  if (rt instanceof protobuf.Enum) return enumFromJson(rt, v, path);
  return scalarFromJson(field.type, v, path);
}

function enumFromJson(e: protobuf.Enum, v: unknown, path: string): number {
  if (nameOf(e) === 'google.protobuf.NullValue') {
    if (v === null || v === 'NULL_VALUE' || v === 0) return 0;
    throw new JsonFormatError(path, `expected null, got ${describe(v)}`);
  }
  if (typeof v === 'string') {
    const n = Object.hasOwn(e.values, v) ? e.values[v] : undefined;
    if (n === undefined) {
      throw new JsonFormatError(path, `unknown ${nameOf(e)} value ${describe(v)}; expected one of ${Object.keys(e.values).join(', ')}`);
    }
    return n;
  }
  if (typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) return v;
  throw new JsonFormatError(path, `expected a ${nameOf(e)} name or number, got ${describe(v)}`);
}

const NUMBER_RE = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

function integerFromJson(type: string, v: unknown, path: string): bigint {
  let big: bigint;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new JsonFormatError(path, `expected an integer (${type}), got ${describe(v)}`);
    if (LONG_TYPES.has(type) && !Number.isSafeInteger(v)) {
      throw new JsonFormatError(path, `${describe(v)} is not exact as a JSON number; write 64-bit integers as decimal strings`);
    }
    big = BigInt(v);
  } else if (typeof v === 'string') {
    if (/^-?\d+$/.test(v)) {
      big = BigInt(v);
    } else if (NUMBER_RE.test(v) && Number.isSafeInteger(Number(v))) {
      big = BigInt(Number(v));
    } else {
      throw new JsonFormatError(path, `expected an integer (${type}), got ${describe(v)}`);
    }
  } else {
    throw new JsonFormatError(path, `expected an integer (${type}) as a number or string, got ${describe(v)}`);
  }
  const range = INT_RANGES[type];
  if (range !== undefined && (big < range[0] || big > range[1])) {
    throw new JsonFormatError(path, `${big} is out of range for ${type} (${range[0]}..${range[1]})`);
  }
  return big;
}

function hasLoneSurrogate(s: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

function scalarFromJson(type: string, v: unknown, path: string): unknown {
  switch (type) {
    case 'double':
    case 'float': {
      let n: number;
      if (typeof v === 'number') n = v;
      else if (v === 'NaN') n = Number.NaN;
      else if (v === 'Infinity') n = Number.POSITIVE_INFINITY;
      else if (v === '-Infinity') n = Number.NEGATIVE_INFINITY;
      else if (typeof v === 'string' && NUMBER_RE.test(v)) n = Number(v);
      else throw new JsonFormatError(path, `expected a number (${type}), got ${describe(v)}`);
      if (type === 'float' && Number.isFinite(n) && Math.abs(n) > MAX_FLOAT) {
        throw new JsonFormatError(path, `${n} is out of range for float`);
      }
      if (type === 'double' && typeof v === 'string' && NUMBER_RE.test(v) && !Number.isFinite(n)) {
        throw new JsonFormatError(path, `${v} is out of range for double`);
      }
      return n;
    }
    case 'int32':
    case 'sint32':
    case 'sfixed32':
    case 'uint32':
    case 'fixed32':
      return Number(integerFromJson(type, v, path));
    case 'int64':
    case 'sint64':
    case 'sfixed64':
    case 'uint64':
    case 'fixed64':
      return toLong(integerFromJson(type, v, path), UNSIGNED_LONG.has(type));
    case 'bool':
      if (typeof v !== 'boolean') throw new JsonFormatError(path, `expected true or false, got ${describe(v)}`);
      return v;
    case 'string':
      if (typeof v !== 'string') throw new JsonFormatError(path, `expected a string, got ${describe(v)}`);
      if (hasLoneSurrogate(v)) throw new JsonFormatError(path, 'string contains an unpaired UTF-16 surrogate');
      return v;
    case 'bytes':
      if (typeof v !== 'string') throw new JsonFormatError(path, `expected base64 bytes as a string, got ${describe(v)}`);
      return decodeBase64(v, path);
    default:
      throw new JsonFormatError(path, `unsupported field type "${type}"`);
  }
}

function specialFromJson(type: protobuf.Type, name: string, json: unknown, path: string, ctx: Ctx): Obj {
  if (WRAPPERS.has(name)) {
    const field = fieldById(type, 1);
    if (json === null) throw new JsonFormatError(path, `expected a value for ${name}, got null`);
    return { [field.name]: scalarFromJson(field.type, json, path) };
  }
  switch (name) {
    case 'google.protobuf.Any':
      return anyFromJson(type, json, path, ctx);
    case 'google.protobuf.Duration':
      return durationFromJson(type, json, path);
    case 'google.protobuf.Timestamp':
      return timestampFromJson(type, json, path);
    case 'google.protobuf.Empty':
      if (!isObject(json)) throw new JsonFormatError(path, `expected {} for google.protobuf.Empty, got ${describe(json)}`);
      for (const key of Object.keys(json)) throw new JsonFormatError(join(path, key), 'unknown field (google.protobuf.Empty has no fields)');
      return {};
    case 'google.protobuf.Struct': {
      if (!isObject(json)) throw new JsonFormatError(path, `expected a JSON object for google.protobuf.Struct, got ${describe(json)}`);
      const field = fieldById(type, 1);
      const fields: Obj = {};
      for (const k of Object.keys(json)) {
        setOwn(fields, k, messageFromJson(field.resolvedType as protobuf.Type, json[k], join(path, k), ctx));
      }
      return { [field.name]: fields };
    }
    case 'google.protobuf.ListValue': {
      if (!Array.isArray(json)) throw new JsonFormatError(path, `expected an array for google.protobuf.ListValue, got ${describe(json)}`);
      const field = fieldById(type, 1);
      return { [field.name]: json.map((x, i) => messageFromJson(field.resolvedType as protobuf.Type, x, `${path}[${i}]`, ctx)) };
    }
    case 'google.protobuf.Value':
      return valueFromJson(type, json, path, ctx);
    default:
      throw new JsonFormatError(path, `unsupported well-known type ${name}`);
  }
}

function valueFromJson(type: protobuf.Type, json: unknown, path: string, ctx: Ctx): Obj {
  const field = (id: number) => fieldById(type, id);
  if (json === null) return { [field(1).name]: 0 };
  switch (typeof json) {
    case 'number':
      if (!Number.isFinite(json)) throw new JsonFormatError(path, `google.protobuf.Value cannot hold ${json}`);
      return { [field(2).name]: json };
    case 'string':
      return { [field(3).name]: scalarFromJson('string', json, path) };
    case 'boolean':
      return { [field(4).name]: json };
    case 'object': {
      if (Array.isArray(json)) return { [field(6).name]: messageFromJson(field(6).resolvedType as protobuf.Type, json, path, ctx) };
      return { [field(5).name]: messageFromJson(field(5).resolvedType as protobuf.Type, json, path, ctx) };
    }
    default:
      throw new JsonFormatError(path, `expected a JSON value, got ${describe(json)}`);
  }
}

function anyFromJson(type: protobuf.Type, json: unknown, path: string, ctx: Ctx): Obj {
  if (!isObject(json)) throw new JsonFormatError(path, `expected a JSON object for google.protobuf.Any, got ${describe(json)}`);
  const urlField = fieldById(type, 1);
  const valueField = fieldById(type, 2);
  const keys = Object.keys(json);
  if (keys.length === 0) return {};
  const typeUrl = json['@type'];
  if (typeUrl === undefined) throw new JsonFormatError(path, 'google.protobuf.Any needs an "@type" member');
  if (typeof typeUrl !== 'string' || typeUrl === '') {
    throw new JsonFormatError(join(path, '@type'), `expected a type URL string, got ${describe(typeUrl)}`);
  }
  if (Object.hasOwn(json, '@value')) {
    for (const k of keys) {
      if (k !== '@type' && k !== '@value') throw new JsonFormatError(join(path, k), 'unexpected member next to "@value"');
    }
    const raw = json['@value'];
    if (typeof raw !== 'string') throw new JsonFormatError(join(path, '@value'), `expected base64 bytes, got ${describe(raw)}`);
    return { [urlField.name]: typeUrl, [valueField.name]: decodeBase64(raw, join(path, '@value')) };
  }
  const inner = lookupMessage(ctx.root, typeUrl);
  if (inner === null) throw new JsonFormatError(path, `unknown type URL ${quoteExcerpt(typeUrl, 200)}`);
  const innerName = nameOf(inner);
  let message: Obj;
  if (SPECIAL.has(innerName)) {
    for (const k of keys) {
      if (k !== '@type' && k !== 'value') throw new JsonFormatError(join(path, k), `unexpected member; an Any holding ${innerName} has only "@type" and "value"`);
    }
    if (!Object.hasOwn(json, 'value')) {
      if (innerName !== 'google.protobuf.Empty') throw new JsonFormatError(path, `an Any holding ${innerName} needs a "value" member`);
      message = {};
    } else {
      message = messageFromJson(inner, json.value, join(path, 'value'), ctx);
    }
  } else {
    const rest: Obj = {};
    for (const k of keys) if (k !== '@type') setOwn(rest, k, json[k]);
    message = messageFromJson(inner, rest, path, ctx);
  }
  return { [urlField.name]: typeUrl, [valueField.name]: inner.encode(message).finish() };
}

const DURATION_RE = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;

function durationFromJson(type: protobuf.Type, json: unknown, path: string): Obj {
  const m = typeof json === 'string' ? DURATION_RE.exec(json) : null;
  if (m === null) throw new JsonFormatError(path, `expected a duration such as "1.5s", got ${describe(json)}`);
  const [, sign, secs = '0', frac = ''] = m;
  const abs = BigInt(secs);
  if (abs > MAX_DURATION_SECONDS) throw new JsonFormatError(path, `duration ${json} is out of range (±${MAX_DURATION_SECONDS}s)`);
  const nanos = Number(frac.padEnd(9, '0'));
  const neg = sign === '-';
  return {
    [fieldById(type, 1).name]: toLong(neg ? -abs : abs, false),
    [fieldById(type, 2).name]: neg ? -nanos : nanos,
  };
}

const TIMESTAMP_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function timestampFromJson(type: protobuf.Type, json: unknown, path: string): Obj {
  const m = typeof json === 'string' ? TIMESTAMP_RE.exec(json) : null;
  const bad = () => new JsonFormatError(path, `expected an RFC 3339 timestamp such as "2024-01-02T03:04:05.123Z", got ${describe(json)}`);
  if (m === null) throw bad();
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const frac = m[7] ?? '';
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  if (monthDays === undefined || d < 1 || d > monthDays || h > 23 || mi > 59 || s > 59) throw bad();
  let offset = 0;
  if (m[9] !== undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) throw bad();
    offset = (m[9] === '-' ? -1 : 1) * (oh * 3600 + om * 60);
  }
  const seconds = BigInt(daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset);
  if (seconds < MIN_TIMESTAMP_SECONDS || seconds > MAX_TIMESTAMP_SECONDS) {
    throw new JsonFormatError(path, `timestamp ${json} is outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z`);
  }
  return {
    [fieldById(type, 1).name]: toLong(seconds, false),
    [fieldById(type, 2).name]: Number(frac.padEnd(9, '0')),
  };
}
