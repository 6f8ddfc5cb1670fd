import { readFile } from 'node:fs/promises';
import Long from 'long';
import { describe, expect, it } from 'vitest';
import {
  DispatchError,
  NotFoundError,
  TemporaryError,
  ThrottledError,
  getCarriedStatus,
  setCarriedStatus,
} from '../status/errors.js';
import type { IAny, IError, IValue } from '../protocol/gen/types.js';
import {
  Any,
  BytesValue,
  Duration,
  Empty,
  ErrorMessage,
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
  typeNameOf,
} from '../protocol/proto.js';
import {
  ERROR_NODE_BUDGET,
  MAX_MESSAGE_DEPTH,
  OpaqueValue,
  SerializationError,
  anyTypeUrl,
  decodeArgs,
  decodeError,
  decodeValue,
  encodeArgs,
  encodeError,
  encodeValue,
  newAny,
} from './serde.js';
import { StatusRegistry } from '../status/registry.js';
import { Status } from '../status/status.js';

// ---------------------------------------------------------------------------
// Helpers

/** Through real bytes, as on the wire. */
function wire(any: IAny): IAny {
  return Any.decode(Any.encode(any));
}

function wireError(error: IError): IError {
  return ErrorMessage.decode(ErrorMessage.encode(error));
}

function roundTrip(value: unknown): unknown {
  return decodeValue(wire(encodeValue(value)));
}

/** What a return value comes back as: a top-level null travels as Empty (PROTOCOL.md 8.8) and arrives as undefined. */
function returned(value: unknown): unknown {
  return value === null ? undefined : value;
}

function typeOf(any: IAny): string {
  return typeNameOf(anyTypeUrl(wire(any)));
}

function fmt(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (Object.is(v, -0)) return '-0';
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

/**
 * Exact structural difference, or undefined: Object.is on primitives (so -0,
 * NaN), same prototypes, own enumerable keys in the same order, holes,
 * Map/Set order, bytes, errors' name/message/stack/cause.
 */
function diff(a: unknown, b: unknown, path = '$', seen = new Set<unknown>()): string | undefined {
  if (typeof a !== typeof b) return `${path}: ${typeof a} vs ${typeof b}`;
  if (typeof a !== 'object' || a === null || b === null) {
    return Object.is(a, b) ? undefined : `${path}: ${fmt(a)} vs ${fmt(b)}`;
  }
  const x = a as object;
  const y = b as object;
  if (Object.getPrototypeOf(x) !== Object.getPrototypeOf(y)) return `${path}: different prototypes`;
  if (seen.has(x)) return undefined;
  seen.add(x);
  if (x instanceof Date) {
    return Object.is(x.getTime(), (y as Date).getTime()) ? undefined : `${path}: ${x.getTime()} vs ${(y as Date).getTime()}`;
  }
  if (ArrayBuffer.isView(x) || x instanceof ArrayBuffer) {
    const bx = ArrayBuffer.isView(x) ? new Uint8Array(x.buffer, x.byteOffset, x.byteLength) : new Uint8Array(x);
    const yv = y as ArrayBufferView | ArrayBuffer;
    const by = ArrayBuffer.isView(yv) ? new Uint8Array(yv.buffer, yv.byteOffset, yv.byteLength) : new Uint8Array(yv);
    return Buffer.compare(bx, by) === 0 ? undefined : `${path}: bytes differ`;
  }
  if (x instanceof RegExp) {
    const r = y as RegExp;
    return x.source === r.source && x.flags === r.flags ? undefined : `${path}: ${x} vs ${r}`;
  }
  if (x instanceof OpaqueValue) {
    const o = y as OpaqueValue;
    return x.typeUrl === o.typeUrl && Buffer.compare(x.value, o.value) === 0 ? undefined : `${path}: opaque values differ`;
  }
  if (x instanceof Map) {
    const ex = [...x];
    const ey = [...(y as Map<unknown, unknown>)];
    if (ex.length !== ey.length) return `${path}: map sizes ${ex.length} vs ${ey.length}`;
    for (let i = 0; i < ex.length; i++) {
      const d =
        diff(ex[i]?.[0], ey[i]?.[0], `${path}.keys()[${i}]`, seen) ?? diff(ex[i]?.[1], ey[i]?.[1], `${path}.values()[${i}]`, seen);
      if (d) return d;
    }
    return undefined;
  }
  if (x instanceof Set) {
    const ex = [...x];
    const ey = [...(y as Set<unknown>)];
    if (ex.length !== ey.length) return `${path}: set sizes differ`;
    for (let i = 0; i < ex.length; i++) {
      const d = diff(ex[i], ey[i], `${path}.values()[${i}]`, seen);
      if (d) return d;
    }
    return undefined;
  }
  if (x instanceof Error) {
    const e = y as Error;
    for (const key of ['name', 'message', 'stack'] as const) {
      if (x[key] !== e[key]) return `${path}.${key}: ${fmt(x[key])} vs ${fmt(e[key])}`;
    }
    if ('cause' in x !== 'cause' in e) return `${path}.cause: presence differs`;
    const d = diff(x.cause, e.cause, `${path}.cause`, seen);
    if (d) return d;
  }
  if (Array.isArray(x)) {
    const ya = y as unknown[];
    if (x.length !== ya.length) return `${path}: lengths ${x.length} vs ${ya.length}`;
    for (let i = 0; i < x.length; i++) {
      if (i in x !== i in ya) return `${path}[${i}]: hole vs value`;
      const d = diff(x[i], ya[i], `${path}[${i}]`, seen);
      if (d) return d;
    }
    return undefined;
  }
  const kx = Object.keys(x);
  const ky = Object.keys(y);
  if (kx.join('\u0000') !== ky.join('\u0000')) return `${path}: keys ${JSON.stringify(kx)} vs ${JSON.stringify(ky)}`;
  for (const k of kx) {
    const d = diff((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], `${path}[${JSON.stringify(k)}]`, seen);
    if (d) return d;
  }
  return undefined;
}

function expectExact(actual: unknown, expected: unknown): void {
  expect(diff(actual, expected)).toBeUndefined();
}

function serializationError(fn: () => unknown): SerializationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SerializationError);
    return err as SerializationError;
  }
  throw new Error('expected a SerializationError');
}

const PICKLED_URL = 'buf.build/stealthrocket/dispatch-proto/dispatch.sdk.python.v1.Pickled';

// ---------------------------------------------------------------------------

describe('values: exact round trips', () => {
  const kinds: Record<string, unknown> = {
    string: 'héllo 🌍',
    emptyString: '',
    loneHigh: 'a\uD800b',
    loneLowLong: `${'x'.repeat(100)}\uDC00`,
    int: 42,
    negative: -7,
    float: 3.25,
    negZero: -0,
    nan: Number.NaN,
    inf: Number.POSITIVE_INFINITY,
    negInf: Number.NEGATIVE_INFINITY,
    unsafeInt: 2 ** 60,
    tiny: Number.MIN_VALUE,
    true: true,
    false: false,
    null: null,
    undefined: undefined,
    bigSmall: 5n,
    bigNeg: -5n,
    bigInt64: 2n ** 60n,
    bigUint64: 2n ** 64n - 1n,
    bigHuge: -(10n ** 40n),
    date: new Date('2024-05-01T12:34:56.789Z'),
    dateBeforeYear1: new Date(-62135596800001),
    dateAfter9999: new Date(253402300800000),
    invalidDate: new Date(Number.NaN),
    bytes: new Uint8Array([0, 1, 2, 254, 255]),
    emptyBytes: new Uint8Array(0),
    int16: new Int16Array([-1, 2, 30000]),
    float64: new Float64Array([Number.NaN, -0, 1.5]),
    bigint64: new BigInt64Array([-1n, 2n ** 62n]),
    clamped: new Uint8ClampedArray([1, 255]),
    dataView: new DataView(new Uint8Array([9, 8, 7]).buffer),
    arrayBuffer: new Uint8Array([1, 2, 3]).buffer,
    map: new Map<unknown, unknown>([
      ['z', 1],
      [1, 'one'],
      [{ k: 1 }, [2]],
      [undefined, null],
    ]),
    set: new Set<unknown>(['b', 'a', 3, { x: 1 }]),
    regexp: /a+b?\u00e9/giu,
    array: [1, 'two', [3, [4]], { five: 5 }],
    sparse: Object.assign(new Array(3), { 0: 1, 2: 3 }), // [1, <hole>, 3]
    undefinedInArray: [undefined, 1, undefined],
    undefinedInObject: { a: undefined, b: 1 },
    missingVsUndefined: [{ a: undefined }, {}],
    tagKey: { $dispatch: 'date', v: 'not a date' },
    nestedTagKey: { $dispatch: { $dispatch: 'map' } },
    protoKey: JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}'),
    loneSurrogateKey: { 'k\uDBFF': 1 },
    numericKeys: { 2: 'b', 1: 'a', x: 'c' },
    opaque: new OpaqueValue(PICKLED_URL, new Uint8Array([0x80, 0x04, 0x95])),
    error: Object.assign(new TypeError('bad', { cause: new Error('root') }), { field: 1 }),
  };

  for (const [label, value] of Object.entries(kinds)) {
    it(`${label} as a return value`, () => expectExact(roundTrip(value), returned(value)));
  }

  it('every kind nested inside every container kind', () => {
    const values = Object.values(kinds);
    const nested = {
      list: values,
      object: { ...kinds },
      map: new Map(values.map((v, i) => [i % 2 ? v : `k${i}`, v])),
      set: new Set(values),
      deeper: [new Map([['inner', new Set([{ list: [...values] }])]])],
      error: Object.assign(new Error('outer'), { all: values }),
    };
    expectExact(roundTrip(nested), nested);
    expectExact(decodeArgs(wire(encodeArgs([nested, ...values]))), [nested, ...values]);
  });

  it('a Buffer comes back as a plain Uint8Array with the same bytes', () => {
    const decoded = roundTrip(Buffer.from('héllo'));
    expect(Object.getPrototypeOf(decoded)).toBe(Uint8Array.prototype);
    expectExact(decoded, new Uint8Array(Buffer.from('héllo')));
    expectExact(roundTrip({ b: Buffer.from([1, 2]) }), { b: new Uint8Array([1, 2]) });
  });

  it('class instances travel as plain objects of their own enumerable fields', () => {
    class Point {
      #secret = 1;
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
      get norm(): number {
        return Math.hypot(this.x, this.y) + this.#secret;
      }
    }
    expectExact(roundTrip(new Point(3, 4)), { x: 3, y: 4 });
  });

  it('shared (non-cyclic) references are fine and decode as equal copies', () => {
    const shared = { id: 1 };
    const decoded = roundTrip([shared, { again: shared }]) as [object, { again: object }];
    expectExact(decoded, [{ id: 1 }, { again: { id: 1 } }]);
  });

  it('a struct key "__proto__" from the wire never pollutes prototypes', () => {
    const hostile: IValue = {
      structValue: { fields: { __proto__: { structValue: { fields: { polluted: { boolValue: true } } } } } },
    };
    const decoded = decodeValue(wire(newAny(Value.typeUrl, Value.encode(hostile)))) as Record<string, unknown>;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
  });
});

describe('values: top-level well-known types', () => {
  const table: [string, unknown, string][] = [
    ['string', 'receipt_789', 'google.protobuf.StringValue'],
    ['safe integer', 42, 'google.protobuf.Int64Value'],
    ['negative safe integer', -(2 ** 53 - 1), 'google.protobuf.Int64Value'],
    ['-0', -0, 'google.protobuf.DoubleValue'],
    ['float', 1.5, 'google.protobuf.DoubleValue'],
    ['NaN', Number.NaN, 'google.protobuf.DoubleValue'],
    ['Infinity', Number.POSITIVE_INFINITY, 'google.protobuf.DoubleValue'],
    ['2^53', 2 ** 53, 'google.protobuf.DoubleValue'],
    ['boolean', false, 'google.protobuf.BoolValue'],
    ['undefined', undefined, 'google.protobuf.Empty'],
    ['Uint8Array', new Uint8Array([1]), 'google.protobuf.BytesValue'],
    ['Buffer', Buffer.from([1]), 'google.protobuf.BytesValue'],
    ['Date', new Date(0), 'google.protobuf.Timestamp'],
    ['Date before 1970', new Date(-1), 'google.protobuf.Timestamp'],
    ['null', null, 'google.protobuf.Empty'],
    ['object', { a: 1 }, 'google.protobuf.Value'],
    ['array', [1], 'google.protobuf.Value'],
    ['small bigint', 5n, 'google.protobuf.Value'],
    ['int64 bigint', -(2n ** 63n), 'google.protobuf.Int64Value'],
    ['uint64 bigint', 2n ** 64n - 1n, 'google.protobuf.UInt64Value'],
    ['bigint over 64 bits', 2n ** 64n, 'google.protobuf.Value'],
    ['Map', new Map(), 'google.protobuf.Value'],
    ['invalid Date', new Date(Number.NaN), 'google.protobuf.Value'],
    ['Date after 9999', new Date(253402300800000), 'google.protobuf.Value'],
    ['ill-formed string', '\uD800', 'google.protobuf.Value'],
  ];
  for (const [label, value, type] of table) {
    it(`${label} → ${type}`, () => {
      expect(typeOf(encodeValue(value))).toBe(type);
      const back = roundTrip(value);
      if (value instanceof Buffer) expectExact(back, new Uint8Array(value));
      else expectExact(back, returned(value));
    });
  }

  it('an OpaqueValue is sent back as its exact Any', () => {
    const bytes = new Uint8Array([0x80, 0x04, 0x4b, 0x2a, 0x2e]);
    const any = encodeValue(new OpaqueValue(PICKLED_URL, bytes));
    expect(anyTypeUrl(wire(any))).toBe(PICKLED_URL);
    expect(new Uint8Array(wire(any).value as Uint8Array)).toEqual(bytes);
  });

  it('writes the type URL under the field the codec really encodes', () => {
    const bytes = Any.encode(encodeValue('x'));
    expect(bytes.length).toBeGreaterThan(40); // the URL is on the wire, not dropped
    expect(anyTypeUrl({ typeUrl: StringValue.typeUrl } as unknown as IAny)).toBe(StringValue.typeUrl);
  });
});

describe('values: interop with what py and go send', () => {
  const any = (type: { typeUrl: string; encode(m: never): Uint8Array }, message: object) =>
    wire(newAny(type.typeUrl, type.encode(message as never)));

  it('decodes wrappers, timestamps and durations', () => {
    expect(decodeValue(any(StringValue, { value: 'from python' }))).toBe('from python');
    expect(decodeValue(any(Int64Value, { value: Long.fromString('9007199254740993') }))).toBe(9007199254740993n);
    expect(decodeValue(any(Int64Value, { value: Long.fromNumber(-42) }))).toBe(-42);
    expect(decodeValue(any(UInt64Value, { value: Long.fromString('18446744073709551615', true) }))).toBe(
      18446744073709551615n,
    );
    expect(decodeValue(any(Int32Value, { value: -7 }))).toBe(-7);
    expect(decodeValue(any(UInt32Value, { value: 4294967295 }))).toBe(4294967295);
    expect(decodeValue(any(FloatValue, { value: 0.5 }))).toBe(0.5);
    expect(decodeValue(any(Empty, {}))).toBeUndefined();
    expect(decodeValue(any(BytesValue, { value: new Uint8Array([7]) }))).toEqual(new Uint8Array([7]));
    // py sends microseconds: the Date keeps the milliseconds.
    expect((decodeValue(any(Timestamp, { seconds: 1_700_000_000, nanos: 123_456_000 })) as Date).toISOString()).toBe(
      '2023-11-14T22:13:20.123Z',
    );
    expect(decodeValue(any(Duration, { seconds: 90, nanos: 500_000_000 }))).toBe(90_500);
    expect(decodeValue(null)).toBeUndefined();
    expect(decodeValue(undefined)).toBeUndefined();
  });

  it('decodes a Value struct, a ListValue and a Struct as JSON', () => {
    const struct: IValue = {
      structValue: {
        fields: {
          name: { stringValue: 'Jane' },
          scores: { listValue: { values: [{ numberValue: 1 }, { numberValue: 2.5 }] } },
          nothing: { nullValue: 0 },
          ok: { boolValue: true },
        },
      },
    };
    expectExact(decodeValue(any(Value, struct)), { name: 'Jane', scores: [1, 2.5], nothing: null, ok: true });
    expectExact(decodeValue(any(ListValue, { values: [{ stringValue: 'a' }] })), ['a']);
    expectExact(decodeValue(any(Struct, { fields: { a: { numberValue: 1 } } })), { a: 1 });
  });

  it('keeps what it cannot decode (py Pickled, other messages) as an exact OpaqueValue', () => {
    const pickle = new Uint8Array([0x80, 0x04, 0x95, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0x8c, 0x05, 0x68, 0x65]);
    const input = wire(newAny(PICKLED_URL, pickle));
    const decoded = decodeValue(input);
    expect(decoded).toBeInstanceOf(OpaqueValue);
    expect((decoded as OpaqueValue).typeName).toBe('dispatch.sdk.python.v1.Pickled');
    expectExact(decoded, new OpaqueValue(PICKLED_URL, pickle));
    // The raw call API: passed back, the exact same Any goes out.
    for (const out of [encodeValue(decoded), encodeArgs([decoded])]) {
      const again = wire(out);
      expect(anyTypeUrl(again)).toBe(PICKLED_URL);
      expect(new Uint8Array(again.value as Uint8Array)).toEqual(pickle);
    }
    // Decoded bytes never alias the input buffer.
    (input.value as Uint8Array)[0] = 0;
    expect((decoded as OpaqueValue).value[0]).toBe(0x80);
  });

  it('encodeArgs: arguments that are all JSON scalars encode to the same bytes as through the encoder (its fast path)', () => {
    const lists: unknown[][] = [
      [],
      [0],
      [1, 2.5, -7, Number.MAX_SAFE_INTEGER, 1e300],
      ['Jane', '', 'naïve ☃ 𝄞'],
      [true, false, null],
      [42, 'x', true, null],
    ];
    for (const args of lists) {
      // encodeValue of the same array goes through the encoder, at the same depth.
      expect(encodeArgs(args)).toEqual(encodeValue(args));
      expectExact(decodeArgs(wire(encodeArgs(args))), args);
    }
    // What the fast path leaves to the encoder still travels exactly.
    for (const args of [[-0], [Number.NaN, Infinity], ['\uD800'], [1, undefined], [1n], [[1]], [{ a: 1 }]]) {
      expectExact(decodeArgs(wire(encodeArgs(args))), args);
    }
    // biome-ignore lint/suspicious/noSparseArray: a hole is what is tested.
    expectExact(decodeArgs(wire(encodeArgs([1, , 3]))), [1, , 3]);
  });

  it('decodeArgs: a Value list, a single value, or nothing', () => {
    expectExact(decodeArgs(wire(encodeArgs(['Jane', 2, undefined]))), ['Jane', 2, undefined]);
    expectExact(decodeArgs(wire(encodeArgs([]))), []);
    expectExact(decodeArgs(null), []);
    expectExact(decodeArgs(undefined), []);
    expectExact(decodeArgs(any(StringValue, { value: 'go' })), ['go']);
    expectExact(decodeArgs(any(Value, { structValue: { fields: { a: { numberValue: 1 } } } })), [{ a: 1 }]);
    expectExact(decodeArgs(any(Value, { stringValue: 'single' })), ['single']);
    expectExact(decodeArgs(any(ListValue, { values: [{ boolValue: true }] })), [true]);
    expectExact(decodeArgs(any(Empty, {})), [undefined]);
    const pickled = decodeArgs(wire(newAny(PICKLED_URL, new Uint8Array([1]))));
    expectExact(pickled, [new OpaqueValue(PICKLED_URL, new Uint8Array([1]))]);
    expect(typeOf(encodeArgs(['a']))).toBe('google.protobuf.Value');
  });

  it('an OpaqueValue among several arguments travels tagged and comes back', () => {
    const args = [new OpaqueValue('type.googleapis.com/acme.v1.Order', new Uint8Array([1, 2])), 'x'];
    expectExact(decodeArgs(wire(encodeArgs(args))), args);
  });

  it('refuses malformed bytes and unknown tags with a SerializationError', () => {
    const junk = new Uint8Array([0xff, 0xff, 0xff]);
    expect(serializationError(() => decodeValue(wire(newAny(Int64Value.typeUrl, junk)))).message).toMatch(
      /cannot decode the google.protobuf.Int64Value/,
    );
    expect(() => decodeArgs(wire(newAny(Value.typeUrl, junk)))).toThrow(SerializationError);
    const future: IValue = { structValue: { fields: { $dispatch: { stringValue: 'quaternion' } } } };
    expect(serializationError(() => decodeValue(any(Value, { listValue: { values: [future] } }))).message).toBe(
      'cannot decode the tag "quaternion" (written by a newer version of the SDK?) at value[0]',
    );
  });
});

describe('values: refused with the path of the bad value', () => {
  it('functions', () => {
    const err = serializationError(() => encodeArgs([{ user: { callback: () => {} } }]));
    expect(err.message).toBe('cannot serialize a function at args[0].user.callback');
    expect(err.path).toBe('args[0].user.callback');
    expect(err).toBeInstanceOf(TypeError);
    expect(err.name).toBe('SerializationError');
  });

  it('cycles, naming where they point back to', () => {
    const parent: { items: unknown[] } = { items: [1, 2, 3] };
    parent.items.push({ parent });
    const err = serializationError(() => encodeArgs(['x', parent]));
    expect(err.message).toBe('cannot serialize a cyclic reference at args[1].items[3].parent (it refers back to args[1])');
  });

  it('symbols, Promises, weak collections, values in maps and sets, odd keys', () => {
    expect(serializationError(() => encodeValue({ s: Symbol('x') })).path).toBe('value.s');
    expect(serializationError(() => encodeValue([Promise.resolve(1)])).message).toBe(
      'cannot serialize a Promise at value[0] (did you forget an await?)',
    );
    expect(serializationError(() => encodeValue({ w: new WeakMap() })).path).toBe('value.w');
    expect(serializationError(() => encodeValue(new Map([['k', () => 1]]))).path).toBe('value.get("k")');
    expect(serializationError(() => encodeValue(new Set([1, Symbol.iterator]))).path).toBe('value.values()[1]');
    expect(serializationError(() => encodeValue({ 'first name': () => 1 })).path).toBe('value["first name"]');
    expect(serializationError(() => encodeValue(() => 1)).path).toBe('value');
  });

  it('values nested deeper than protobuf allows (100 messages)', () => {
    const nest = (levels: number, wrap: (inner: unknown) => unknown): unknown => {
      let value: unknown = 'leaf';
      for (let i = 0; i < levels; i++) value = wrap(value);
      return value;
    };
    // Each array level takes two messages: 50 fit, 51 do not.
    const fits = nest(MAX_MESSAGE_DEPTH / 2, (v) => [v]);
    expectExact(roundTrip(fits), fits);
    const err = serializationError(() => encodeValue(nest(MAX_MESSAGE_DEPTH / 2 + 1, (v) => [v])));
    expect(err.message).toMatch(/^cannot serialize a value nested too deeply at value(\[0\]){50} \(protobuf allows 100/);
    expect(serializationError(() => encodeValue(nest(40, (v) => new Map([['k', v]])))).path).toMatch(/^value(\.get\("k"\))+$/);
  });

  it('never lets the protobuf encoder hit its depth limit, whatever the mix of containers', () => {
    const rand = prng(7);
    const wraps: ((v: unknown) => unknown)[] = [
      (v) => [v],
      (v) => ({ a: v }),
      (v) => ({ $dispatch: v }),
      (v) => new Map([[v, 1]]),
      (v) => new Set([v]),
      (v) => Object.assign(new Error('e'), { f: v }),
      (v) => new Error('c', { cause: v }),
    ];
    const leaves = [undefined, -0, 1n, '\uD800', new Date(0), new Uint8Array(1), /x/, 'plain', null];
    let encoded = 0;
    for (let i = 0; i < 400; i++) {
      let value: unknown = leaves[Math.floor(rand() * leaves.length)];
      const levels = 10 + Math.floor(rand() * 50);
      let withErrors = false;
      for (let l = 0; l < levels; l++) {
        const w = Math.floor(rand() * wraps.length);
        withErrors ||= w >= 5;
        value = (wraps[w] as (v: unknown) => unknown)(value);
      }
      let any: IAny | undefined;
      try {
        any = encodeValue(value);
      } catch (err) {
        expect(err).toBeInstanceOf(SerializationError);
        expect((err as Error).message).toMatch(/nested too deeply/);
      }
      if (any) {
        encoded++;
        const back = decodeValue(wire(any));
        // Inside errors, what does not fit is dropped (lenient); elsewhere it is exact.
        if (!withErrors) expectExact(back, value);
      }
      // Errors are encoded leniently: never a failure.
      const error = encodeError(new Error('deep', { cause: value }));
      expect(decodeError(wireError(error)).message).toBe('deep');
    }
    expect(encoded).toBeGreaterThan(50);
  });
});

describe('errors', () => {
  function roundTripError(err: unknown, status?: Status, registry?: StatusRegistry, sentStatus?: Status): Error {
    return decodeError(wireError(encodeError(err, sentStatus)), status, registry);
  }

  it('fills type, message and traceback for everyone to read', () => {
    const err = new NotFoundError('no such order');
    const encoded = wireError(encodeError(err));
    expect(encoded.type).toBe('NotFoundError');
    expect(encoded.message).toBe('no such order');
    expect(new TextDecoder().decode(encoded.traceback ?? new Uint8Array())).toBe(err.stack);
    expect(encoded.value?.[0]).toBe(0); // the magic prefix starts with a NUL byte
  });

  it('rebuild SDK errors with name, message, stack, status, fields and cause', () => {
    const cause = Object.assign(new TypeError('card number is not a string'), { field: 'card', attempts: [1, 2n] });
    const err = new NotFoundError('no such order', { cause });
    const registry = new StatusRegistry();
    const decoded = roundTripError(err, Status.NOT_FOUND, registry);
    expect(decoded).toBeInstanceOf(NotFoundError);
    expectExact(decoded, err);
    expect(decoded.stack).toBe(err.stack);
    expect(registry.errorStatus(decoded)).toBe(Status.NOT_FOUND);
    expect(decoded.cause).toBeInstanceOf(TypeError);
    expect(Object.keys(decoded.cause as object)).toEqual(['field', 'attempts']);
    expect((decoded.cause as { attempts: unknown }).attempts).toEqual([1, 2n]);
    expect(Object.getOwnPropertyDescriptor(decoded, 'cause')?.enumerable).toBe(false);
  });

  it('rebuild registered classes without running their constructor', () => {
    let constructed = 0;
    class UserDeactivated extends Error {
      readonly userId: string;
      constructor(userId: string) {
        super(`user ${userId} is deactivated`);
        constructed++;
        this.name = 'UserDeactivated'; // an own enumerable name, as many apps write it
        this.userId = userId;
      }
    }
    const registry = new StatusRegistry();
    registry.registerErrorType(UserDeactivated, Status.PERMANENT_ERROR);
    const err = new UserDeactivated('u1');
    const decoded = roundTripError(err, Status.PERMANENT_ERROR, registry);
    expect(constructed).toBe(1);
    expect(decoded).toBeInstanceOf(UserDeactivated);
    expectExact(decoded, err);
    expect(Object.keys(decoded)).toEqual(['userId', 'name']); // the class field comes first, as in the original
    expect(registry.errorStatus(decoded)).toBe(Status.PERMANENT_ERROR);
  });

  it('an unknown class becomes an Error with its name, and keeps the remote status', () => {
    class Maintenance extends TemporaryError {}
    const registry = new StatusRegistry();
    registry.registerErrorType(Maintenance, Status.THROTTLED);
    const status = registry.errorStatus(new Maintenance('later'));
    const decoded = roundTripError(new Maintenance('later'), status, new StatusRegistry());
    expect(Object.getPrototypeOf(decoded)).toBe(Error.prototype);
    expect([decoded.name, decoded.message]).toEqual(['Maintenance', 'later']);
    expect(getCarriedStatus(decoded)).toBe(Status.THROTTLED);
    expect(new StatusRegistry().errorStatus(decoded)).toBe(Status.THROTTLED);
    // ...unless a handler registered on this side says otherwise.
    const local = new StatusRegistry();
    local.registerErrorType(Error, Status.PERMANENT_ERROR);
    expect(local.errorStatus(decoded)).toBe(Status.PERMANENT_ERROR);
  });

  it('carry the status given to encodeError when the receiver has none (a CallResult)', () => {
    const decoded = roundTripError(new Error('upstream'), undefined, undefined, Status.HTTP_ERROR);
    expect(getCarriedStatus(decoded)).toBe(Status.HTTP_ERROR);
    const nested = roundTripError(new Error('outer', { cause: setCarriedStatus(new Error('inner'), Status.DNS_ERROR) }));
    expect(getCarriedStatus(nested)).toBeUndefined();
    expect(getCarriedStatus(nested.cause)).toBe(Status.DNS_ERROR);
    expect(getCarriedStatus(roundTripError(new Error('x'), Status.UNSPECIFIED))).toBe(Status.PERMANENT_ERROR);
    expect(getCarriedStatus(roundTripError(new Error('x'), Status.OK))).toBeUndefined();
  });

  it('keep a DispatchError status and ThrottledError.retryAfterMs', () => {
    const base = roundTripError(new DispatchError('bad gateway', { status: Status.HTTP_ERROR }));
    expect(base).toBeInstanceOf(DispatchError);
    expect([(base as DispatchError).status, (base as DispatchError).code]).toEqual([Status.HTTP_ERROR, 'http_error']);
    const throttled = roundTripError(new ThrottledError('slow down', { retryAfterMs: 250 }));
    expect(throttled).toBeInstanceOf(ThrottledError);
    expect((throttled as ThrottledError).retryAfterMs).toBe(250);
  });

  it('a real Node system error keeps its code, so it classifies without a carried status', async () => {
    const err = await readFile('/no/such/file').catch((e: unknown) => e);
    const decoded = roundTripError(err);
    expect((decoded as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(new StatusRegistry().errorStatus(decoded)).toBe(Status.NOT_FOUND);
    expectExact(decoded, err);
  });

  it('AggregateError errors, causes of causes, and lone surrogates in messages', () => {
    const agg = new AggregateError([new RangeError('a'), 'plain', new Error('b', { cause: new Error('c') })], 'all \uD800 failed');
    const decoded = roundTripError(agg);
    expect(decoded).toBeInstanceOf(AggregateError);
    expect(decoded.message).toBe('all \uD800 failed');
    expectExact((decoded as AggregateError).errors, agg.errors);
    expect(((decoded as AggregateError).errors[0] as Error).stack).toBe((agg.errors[0] as Error).stack);
    expect(Object.getOwnPropertyDescriptor(decoded, 'errors')?.enumerable).toBe(false);
  });

  it('are encoded leniently: functions, cycles and huge fields never make encoding fail', () => {
    const err = Object.assign(new Error('with baggage'), {
      callback: () => 1,
      list: new Array(ERROR_NODE_BUDGET * 2).fill(7),
    }) as Error & { self?: unknown; callback: unknown; list: unknown[] };
    err.self = err;
    err.cause = err;
    const decoded = roundTripError(err) as typeof err;
    expect(decoded.message).toBe('with baggage');
    expect(Object.keys(decoded)).toEqual(['callback', 'list', 'self', 'cause']); // assigned, so enumerable
    expect(decoded.callback).toBeUndefined();
    expect(decoded.self).toBeUndefined();
    expect(decoded.cause).toBeUndefined();
    expect(decoded.list.length).toBe(ERROR_NODE_BUDGET * 2);
    expect(decoded.list[0]).toBe(7);
    expect(decoded.list.at(-1)).toBeUndefined();
  });

  it('non-Error throws become an Error whose cause is the exact value', () => {
    const fromString = roundTripError('boom');
    expect([fromString.name, fromString.message, fromString.cause]).toEqual(['Error', 'boom', 'boom']);
    expect(fromString.stack).toBe('Error: boom');
    const thrown = { code: 'E_APP', when: new Date(5), n: -0 };
    const fromObject = roundTripError(thrown);
    expect(fromObject.message).toBe('{"code":"E_APP","when":"1970-01-01T00:00:00.005Z","n":0}');
    expectExact(fromObject.cause, thrown);
    expect(roundTripError(undefined).message).toBe('undefined');
    expect(roundTripError({ message: 'error-like' }).message).toBe('error-like');
  });

  it('a foreign value (a Python pickle) is never interpreted', () => {
    const fromPython: IError = {
      type: 'ValueError',
      message: 'invalid literal for int()',
      value: new Uint8Array([0x80, 0x04, 0x95, 0x20, 0, 0, 0, 0, 0, 0, 0, 0x8c, 0x08, 0x62, 0x75, 0x69]),
      traceback: new TextEncoder().encode('Traceback (most recent call last):\n  File "app.py", line 3\nValueError: invalid literal'),
    };
    const decoded = decodeError(wireError(fromPython), Status.INVALID_ARGUMENT);
    expect(Object.getPrototypeOf(decoded)).toBe(Error.prototype);
    expect([decoded.name, decoded.message]).toEqual(['ValueError', 'invalid literal for int()']);
    expect(decoded.stack).toContain('File "app.py", line 3');
    expect(Object.keys(decoded)).toEqual([]);
    expect(getCarriedStatus(decoded)).toBe(Status.INVALID_ARGUMENT);

    const fromGo = decodeError(wireError({ type: 'errorString', message: 'boom' }));
    expect([fromGo.name, fromGo.message, fromGo.stack]).toEqual(['errorString', 'boom', 'errorString: boom']);
    expect(getCarriedStatus(fromGo)).toBeUndefined();

    const builtin = decodeError(wireError({ type: 'TypeError', message: 'x' }));
    expect(builtin).toBeInstanceOf(TypeError);

    // A value with the magic but garbage after it falls back to type and message.
    const good = encodeError(new Error('real'));
    const corrupt = new Uint8Array(good.value as Uint8Array);
    corrupt.fill(0xff, corrupt.length - 4);
    const fallback = decodeError(wireError({ ...good, type: 'Oops', value: corrupt }));
    expect([fallback.name, fallback.message]).toEqual(['Oops', 'real']);
  });

  it('an absent error still gives an Error with the status', () => {
    const decoded = decodeError(null, Status.TIMEOUT);
    expect(decoded).toBeInstanceOf(Error);
    expect(decoded.message).toMatch(/TIMEOUT/);
    expect(getCarriedStatus(decoded)).toBe(Status.TIMEOUT);
  });

  it('errors inside return values round-trip with their stack', () => {
    const value = { failures: [new RangeError('too big'), new TemporaryError('later')] };
    const decoded = roundTrip(value) as typeof value;
    expectExact(decoded, value);
    expect(decoded.failures[1]).toBeInstanceOf(TemporaryError);
  });
});

// ---------------------------------------------------------------------------
// Fuzz: random nested values round-trip exactly.

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generator(seed: number): (depth?: number) => unknown {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  const chars = ['a', 'z', ' ', 'é', '漢', '🌍', '\u0000', '"', '\\', '$', '\uD800', '\uDFFF', '\n'];
  const str = (): string => Array.from({ length: int(8) }, () => pick(chars)).join('');
  const key = (): string => pick(['$dispatch', '__proto__', 'a', 'b', '1', '0', '', 'constructor', 'toString', str()]);
  const numbers = [0, -0, 1, -1, 0.1, Number.NaN, Infinity, -Infinity, 2 ** 53, 2 ** 53 + 2, -(2 ** 60), 5e-324, 1.7976931348623157e308];
  const scalar = (): unknown => {
    switch (int(12)) {
      case 0:
        return str();
      case 1:
        return rand() < 0.5 ? pick(numbers) : (rand() - 0.5) * 10 ** int(20);
      case 2:
        return int(1e9) - 5e8;
      case 3:
        return rand() < 0.5;
      case 4:
        return null;
      case 5:
        return undefined;
      case 6:
        return BigInt(int(1e9)) ** BigInt(1 + int(4)) * (rand() < 0.5 ? -1n : 1n);
      case 7:
        return new Date(rand() < 0.1 ? Number.NaN : Math.floor((rand() - 0.5) * 8.64e15));
      case 8:
        return new Uint8Array(Array.from({ length: int(6) }, () => int(256)));
      case 9:
        return new Float64Array([pick(numbers), rand()]);
      case 10:
        return new OpaqueValue(`type.googleapis.com/x.v1.${str().replace(/[\uD800-\uDFFF]/g, '_')}`, new Uint8Array([int(256)]));
      default:
        return new RegExp(pick(['a+', '^x$', '[\\u{1F30D}]', '']), pick(['', 'g', 'iu']));
    }
  };
  const gen = (depth = 0): unknown => {
    if (depth > 4 || rand() < 0.4) return scalar();
    const n = int(5);
    switch (int(5)) {
      case 0: {
        const arr: unknown[] = [];
        for (let i = 0; i < n; i++) if (rand() > 0.1) arr[i] = gen(depth + 1);
        arr.length = n; // trailing holes too
        return arr;
      }
      case 1: {
        const obj: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const k = key();
          Object.defineProperty(obj, k, { value: gen(depth + 1), enumerable: true, writable: true, configurable: true });
        }
        return obj;
      }
      case 2:
        return new Map(Array.from({ length: n }, () => [gen(depth + 1), gen(depth + 1)] as const));
      case 3:
        return new Set(Array.from({ length: n }, () => gen(depth + 1)));
      default: {
        const err = new (pick([Error, TypeError, RangeError]))(str());
        Object.defineProperty(err, key(), { value: gen(depth + 1), enumerable: true, writable: true, configurable: true });
        if (rand() < 0.5) Object.defineProperty(err, 'cause', { value: gen(depth + 1), enumerable: false, writable: true, configurable: true });
        return err;
      }
    }
  };
  return gen;
}

describe('fuzz', () => {
  it('2,000 random nested values round-trip exactly, as return values and as arguments', () => {
    const gen = generator(20240501);
    for (let i = 0; i < 2000; i++) {
      const value = gen();
      const back = roundTrip(value);
      const d = diff(back, returned(value));
      if (d) throw new Error(`case ${i}: ${d}`);
      const args = [value, gen()];
      const d2 = diff(decodeArgs(wire(encodeArgs(args))), args);
      if (d2) throw new Error(`case ${i} (args): ${d2}`);
    }
  });
});
