import { describe, expect, it } from 'vitest';
import { JsonFormatError, fromJson, fromJsonBytes, toJson, toJsonBytes } from './connect-json.js';
import {
  Any,
  BoolValue,
  BytesValue,
  Call,
  DispatchRequest,
  DoubleValue,
  Duration,
  Empty,
  FloatValue,
  Int32Value,
  Int64Value,
  ListValue,
  type MessageType,
  ProtoStatus,
  RunRequest,
  RunResponse,
  StringValue,
  Struct,
  Timestamp,
  UInt32Value,
  UInt64Value,
  Value,
  root,
  toBigInt,
  toLong,
} from './proto.js';
import type { IAny, IValue } from './proto.js';

const PREFIX = 'type.googleapis.com/';
// Any's field names come from the reflection (protobufjs's bundled Any uses `type_url`).
const URL_FIELD = (Any.type.fieldsById[1] as { name: string }).name;

function any<T extends object>(type: MessageType<T>, message: T, url = type.typeUrl): IAny {
  return { [URL_FIELD]: url, value: type.encode(message) } as IAny;
}

function rawAny(url: string, bytes: Uint8Array): IAny {
  return { [URL_FIELD]: url, value: bytes } as IAny;
}

/** binary → decode → JSON text → parse → fromJson → binary must give the same bytes. */
function roundTrip<T extends object>(type: MessageType<T>, message: T): unknown {
  const bytes = type.encode(message);
  const json = toJson(type, type.decode(bytes));
  const text = JSON.stringify(json);
  const back = fromJson(type, JSON.parse(text));
  expect(Buffer.from(type.encode(back)).toString('hex')).toBe(Buffer.from(bytes).toString('hex'));
  // Printing what was read gives the same JSON again.
  expect(toJson(type, back)).toEqual(json);
  return json;
}

function jsonError(fn: () => unknown): JsonFormatError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(JsonFormatError);
    return err as JsonFormatError;
  }
  throw new Error('expected a JsonFormatError');
}

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const bytes = (...b: number[]) => new Uint8Array(b);

const nestedValue: IValue = {
  structValue: {
    fields: {
      s: { stringValue: 'héllo' },
      n: { numberValue: 1.5 },
      z: { numberValue: 0 },
      b: { boolValue: false },
      nil: { nullValue: 0 },
      list: { listValue: { values: [{ numberValue: 1 }, { stringValue: '' }, { listValue: { values: [] } }, { structValue: { fields: {} } }] } },
      ['__proto__']: { stringValue: 'not a prototype' },
    },
  },
};

describe('round trips binary → JSON → binary', () => {
  it('RunRequest with an input of each well-known type', () => {
    const inputs: IAny[] = [
      any(StringValue, { value: 'Ada' }),
      any(StringValue, { value: '' }),
      any(Int64Value, { value: toLong(I64_MIN, false) }),
      any(Int64Value, { value: toLong(I64_MAX, false) }),
      any(UInt64Value, { value: toLong(U64_MAX) }),
      any(Int32Value, { value: -(2 ** 31) }),
      any(UInt32Value, { value: 2 ** 32 - 1 }),
      any(DoubleValue, { value: 0.1 }),
      any(DoubleValue, { value: Number.NaN }),
      any(DoubleValue, { value: Number.NEGATIVE_INFINITY }),
      any(FloatValue, { value: 0.1 }),
      any(BoolValue, { value: true }),
      any(BytesValue, { value: bytes(0, 0xfb, 0xff, 0x3e) }),
      any(Empty, {}),
      any(Timestamp, { seconds: 1704164645, nanos: 123_000_000 }),
      any(Duration, { seconds: -1, nanos: -500_000_000 }),
      any(Value, nestedValue),
      any(Value, { nullValue: 0 }),
      any(Struct, { fields: { a: { numberValue: 2 } } }),
      any(ListValue, { values: [{ boolValue: true }, { nullValue: 0 }] }),
      any(Call, { correlationId: toLong(U64_MAX), function: 'f', endpoint: 'http://x', expiration: { seconds: 3 } }),
      any(Any, any(StringValue, { value: 'nested' })),
      rawAny('buf.build/stealthrocket/dispatch-proto/dispatch.sdk.python.v1.Pickled', (root.lookupType('dispatch.sdk.python.v1.Pickled').encode({ pickledValue: bytes(0x80, 4, 0x95) }).finish())),
      rawAny('type.googleapis.com/example.Unknown', bytes(8, 1, 0xff)),
      rawAny(`${PREFIX}google.protobuf.Timestamp`, bytes(0xff, 0xff)), // bytes that do not decode
    ];
    for (const input of inputs) {
      roundTrip(RunRequest, {
        function: 'greet',
        input,
        dispatchId: 'd1',
        parentDispatchId: 'p',
        rootDispatchId: 'r',
        creationTime: { seconds: 0, nanos: 1 },
        expirationTime: { seconds: 253402300799, nanos: 999_999_999 },
      });
    }
  });

  it('RunRequest resuming with a PollResult and 64-bit correlation IDs', () => {
    const ids = [0n, 1n, (1n << 53n) + 1n, (1n << 63n) + 12345n, U64_MAX];
    const json = roundTrip(RunRequest, {
      function: 'f',
      pollResult: {
        typedCoroutineState: any(Call, { function: 'state' }),
        results: ids.map((id, i) => ({
          correlationId: toLong(id),
          output: i % 2 === 0 ? any(Int64Value, { value: toLong(-BigInt(i), false) }) : undefined,
          error: i === 1 ? { type: 'TypeError', message: 'bad', value: bytes(1, 2), traceback: new TextEncoder().encode('at x') } : undefined,
          dispatchId: `id${i}`,
        })),
        error: { type: 'E', message: '' },
      },
    }) as { pollResult: { results: Array<{ correlationId?: string }> } };
    expect(json.pollResult.results.map((r) => r.correlationId)).toEqual([undefined, '1', '9007199254740993', '9223372036854788153', '18446744073709551615']);
  });

  it('RunResponse with exit, tail call, and poll', () => {
    roundTrip(RunResponse, {
      status: ProtoStatus.STATUS_OK,
      exit: { result: { output: any(Value, nestedValue), correlationId: 7 }, tailCall: { function: 'next', expiration: { seconds: 315576000000 } } },
    });
    roundTrip(RunResponse, {
      status: ProtoStatus.STATUS_TEMPORARY_ERROR,
      exit: { result: { error: { type: 'Error', message: 'boom' } } },
    });
    roundTrip(RunResponse, {
      status: ProtoStatus.STATUS_OK,
      poll: {
        coroutineState: bytes(1, 2, 3),
        calls: [
          { correlationId: toLong(U64_MAX), endpoint: 'http://localhost:8000', function: 'a', input: any(ListValue, { values: [] }) },
          { correlationId: 0, function: 'b', expiration: { seconds: 0, nanos: 1000 } },
        ],
        maxWait: { seconds: 300 },
        maxResults: 1000,
        minResults: 1,
      },
    });
    roundTrip(RunResponse, { status: ProtoStatus.STATUS_UNSPECIFIED });
    roundTrip(RunResponse, { status: 99 as ProtoStatus }); // an enum number this codec does not know
  });

  it('DispatchRequest', () => {
    const json = roundTrip(DispatchRequest, {
      calls: [
        { endpoint: 'https://example.com', function: 'f', input: any(Value, { listValue: { values: [{ stringValue: 'x' }] } }), idempotencyKey: 'k1' },
        { endpoint: 'bridge://s', function: 'g', version: 'v2', input: rawAny('type.googleapis.com/example.Unknown', bytes(1)) },
      ],
    });
    expect(json).toEqual({
      calls: [
        {
          endpoint: 'https://example.com',
          function: 'f',
          input: { '@type': 'type.googleapis.com/google.protobuf.Value', value: ['x'] },
          idempotencyKey: 'k1',
        },
        { endpoint: 'bridge://s', function: 'g', version: 'v2', input: { '@type': 'type.googleapis.com/example.Unknown', '@value': 'AQ==' } },
      ],
    });
  });
});

describe('toJson output', () => {
  it('uses lowerCamelCase names, omits defaults, prints the special forms', () => {
    const req = RunRequest.decode(
      RunRequest.encode({
        function: 'f',
        input: any(Call, { correlationId: 5, function: 'g', expiration: { seconds: 1, nanos: 500_000_000 } }),
        parentDispatchId: '',
        creationTime: { seconds: 1704164645, nanos: 123_000_000 },
      }),
    );
    expect(toJson(RunRequest, req)).toEqual({
      function: 'f',
      input: { '@type': 'type.googleapis.com/dispatch.sdk.v1.Call', correlationId: '5', function: 'g', expiration: '1.500s' },
      creationTime: '2024-01-02T03:04:05.123Z',
    });
  });

  it('prints wrappers as bare values, even at their default', () => {
    expect(toJson(Int32Value, {})).toBe(0);
    expect(toJson(StringValue, { value: '' })).toBe('');
    expect(toJson(BoolValue, {})).toBe(false);
    expect(toJson(UInt64Value, { value: toLong(U64_MAX) })).toBe('18446744073709551615');
    expect(toJson(BytesValue, { value: bytes(0xfb, 0xff) })).toBe('+/8=');
    expect(toJson(FloatValue, FloatValue.decode(FloatValue.encode({ value: 0.1 })))).toBe(0.1);
    expect(toJson(DoubleValue, { value: Number.POSITIVE_INFINITY })).toBe('Infinity');
    expect(toJson(Empty, {})).toEqual({});
    expect(toJson(RunResponse, { exit: { result: { output: any(Int32Value, { value: 0 }) } } })).toEqual({
      exit: { result: { output: { '@type': 'type.googleapis.com/google.protobuf.Int32Value', value: 0 } } },
    });
  });

  it('prints enums by name, unknown numbers as numbers', () => {
    expect(toJson(RunResponse, { status: ProtoStatus.STATUS_PERMISSION_DENIED })).toEqual({ status: 'STATUS_PERMISSION_DENIED' });
    expect(toJson(RunResponse, { status: 42 as ProtoStatus })).toEqual({ status: 42 });
    expect(toJson(RunResponse, { status: 'STATUS_UNSPECIFIED' as unknown as ProtoStatus })).toEqual({});
    expect(toJson(RunResponse, { status: 'STATUS_OK' as unknown as ProtoStatus })).toEqual({ status: 'STATUS_OK' });
  });

  it('prints set oneof members even at their default', () => {
    expect(toJson(Value, Value.decode(Value.encode({ numberValue: 0 })))).toBe(0);
    expect(toJson(Value, Value.decode(Value.encode({ stringValue: '' })))).toBe('');
    expect(toJson(RunRequest, RunRequest.decode(RunRequest.encode({ pollResult: {} })))).toEqual({ pollResult: {} });
  });

  it('prints Durations and Timestamps with 0, 3, 6 or 9 fractional digits', () => {
    expect(toJson(Duration, { seconds: 3 })).toBe('3s');
    expect(toJson(Duration, { seconds: 0, nanos: -1 })).toBe('-0.000000001s');
    expect(toJson(Duration, { seconds: 1, nanos: 10_000 })).toBe('1.000010s');
    expect(toJson(Duration, { seconds: toLong(-315576000000n, false) })).toBe('-315576000000s');
    expect(toJson(Timestamp, { seconds: 0 })).toBe('1970-01-01T00:00:00Z');
    expect(toJson(Timestamp, { seconds: toLong(-62135596800n, false) })).toBe('0001-01-01T00:00:00Z');
    expect(toJson(Timestamp, { seconds: 1, nanos: 120_000 })).toBe('1970-01-01T00:00:01.000120Z');
  });

  it('accepts plain objects with numbers, bigints and decimal strings for 64-bit fields', () => {
    for (const id of [5, 5n, '5', toLong(5n)]) {
      expect(toJson(Call, { correlationId: id as number })).toEqual({ correlationId: '5' });
    }
  });

  it('is JSON.stringify-able', () => {
    const msg = RunResponse.decode(RunResponse.encode({ status: 1, exit: { result: { output: any(Value, nestedValue) } } }));
    const text = new TextDecoder().decode(toJsonBytes(RunResponse, msg));
    expect(JSON.parse(text)).toEqual(toJson(RunResponse, msg));
    expect(text).toContain('"__proto__":"not a prototype"');
  });

  it('refuses what JSON cannot carry, naming the path', () => {
    const nan = { exit: { result: { output: any(Value, { numberValue: Number.NaN }) } } };
    expect(jsonError(() => toJson(RunResponse, nan)).message).toBe('exit.result.output.value: google.protobuf.Value cannot hold NaN in JSON');
    expect(jsonError(() => toJson(Value, {})).message).toMatch(/has no kind set/);
    expect(jsonError(() => toJson(Duration, { seconds: toLong(315576000001n, false) })).message).toMatch(/out of range/);
    expect(jsonError(() => toJson(Duration, { seconds: 1, nanos: -1 })).message).toMatch(/invalid nanos/);
    expect(jsonError(() => toJson(Timestamp, { seconds: toLong(253402300800n, false) })).message).toMatch(/outside/);
    expect(jsonError(() => toJson(Call, { input: rawAny('', bytes(1)) })).message).toBe('input: google.protobuf.Any has a value but no type URL');
    expect(toJson(Call, { input: rawAny('', bytes()) })).toEqual({ input: {} });
    expect(jsonError(() => toJson(Value, { numberValue: 1, stringValue: 'x' } as IValue)).message).toMatch(/oneof/);
  });
});

describe('fromJson input', () => {
  it('accepts lowerCamelCase and snake_case names', () => {
    const a = fromJson(RunRequest, { function: 'f', dispatchId: 'd', parentDispatchId: 'p', pollResult: { typedCoroutineState: {} } });
    const b = fromJson(RunRequest, { function: 'f', dispatch_id: 'd', parent_dispatch_id: 'p', poll_result: { typed_coroutine_state: {} } });
    expect(RunRequest.encode(a)).toEqual(RunRequest.encode(b));
    expect(a.dispatchId).toBe('d');
    expect(a.rootDispatchId).toBe(''); // the same shape as a binary decode
  });

  it('refuses unknown fields and a field given under both names', () => {
    expect(jsonError(() => fromJson(DispatchRequest, { calls: [{ function: 'f', nope: 1 }] })).message).toBe(
      'calls[0].nope: unknown field (dispatch.sdk.v1.Call has no field "nope")',
    );
    expect(jsonError(() => fromJson(RunRequest, { dispatchId: 'a', dispatch_id: 'b' })).message).toMatch(/^dispatch_id: field given twice/);
    expect(jsonError(() => fromJson(RunRequest, { 'odd key': 1 })).message).toBe('["odd key"]: unknown field (dispatch.sdk.v1.RunRequest has no field "odd key")');
  });

  it('treats null as not set', () => {
    const r = fromJson(RunRequest, { function: null, input: null, creationTime: null, pollResult: null });
    expect(RunRequest.encode(r)).toHaveLength(0);
    expect(fromJson(DispatchRequest, { calls: null }).calls).toEqual([]);
    expect(jsonError(() => fromJson(DispatchRequest, { calls: [null] })).message).toBe('calls[0]: array elements cannot be null');
  });

  it('reads 64-bit integers exactly from strings, and from safe-integer numbers', () => {
    const cases: Array<[unknown, bigint]> = [
      ['18446744073709551615', U64_MAX],
      ['9007199254740993', (1n << 53n) + 1n],
      [9007199254740991, (1n << 53n) - 1n],
      ['0', 0n],
      ['1e3', 1000n],
      [12.0, 12n],
    ];
    for (const [input, want] of cases) {
      const call = fromJson(Call, { correlationId: input });
      expect(toBigInt(call.correlationId)).toBe(want);
    }
    const i64 = fromJson(Int64Value, '-9223372036854775808');
    expect(toBigInt(i64.value)).toBe(I64_MIN);
    expect(jsonError(() => fromJson(Call, JSON.parse('{"correlationId": 9007199254740993}'))).message).toMatch(
      /^correlationId: the number 9007199254740992 is not exact as a JSON number; write 64-bit integers as decimal strings$/,
    );
    expect(jsonError(() => fromJson(Call, { correlationId: '18446744073709551616' })).message).toMatch(/out of range for uint64/);
    expect(jsonError(() => fromJson(Call, { correlationId: '-1' })).message).toMatch(/out of range for uint64/);
    expect(jsonError(() => fromJson(Call, { correlationId: 1.5 })).message).toMatch(/expected an integer/);
    expect(jsonError(() => fromJson(Call, { correlationId: ' 1' })).message).toMatch(/expected an integer/);
    expect(jsonError(() => fromJson(Int64Value, '9223372036854775808')).message).toMatch(/out of range for int64/);
  });

  it('checks 32-bit ranges', () => {
    expect(fromJson(Int32Value, '-2147483648').value).toBe(-2147483648);
    expect(fromJson(UInt32Value, 4294967295).value).toBe(4294967295);
    expect(jsonError(() => fromJson(Int32Value, 2147483648)).message).toMatch(/out of range for int32/);
    expect(jsonError(() => fromJson(RunResponse, { poll: { maxResults: true } })).message).toMatch(/^poll\.maxResults: expected an integer/);
  });

  it('reads bytes in standard or URL-safe base64, padded or not', () => {
    for (const text of ['+/8=', '+/8', '-_8=', '-_8']) {
      expect(new Uint8Array(fromJson(BytesValue, text).value as Uint8Array)).toEqual(bytes(0xfb, 0xff));
    }
    expect(jsonError(() => fromJson(BytesValue, 'a b')).message).toMatch(/invalid base64/);
    expect(jsonError(() => fromJson(BytesValue, 'abcde')).message).toMatch(/wrong length/);
    expect(jsonError(() => fromJson(RunResponse, { poll: { coroutineState: 5 } })).message).toMatch(/^poll\.coroutineState: expected base64/);
  });

  it('reads enums by name or number', () => {
    expect(fromJson(RunResponse, { status: 'STATUS_OK' }).status).toBe(ProtoStatus.STATUS_OK);
    expect(fromJson(RunResponse, { status: 3 }).status).toBe(ProtoStatus.STATUS_THROTTLED);
    expect(fromJson(RunResponse, { status: 77 }).status).toBe(77);
    expect(jsonError(() => fromJson(RunResponse, { status: 'OK' })).message).toMatch(/^status: unknown dispatch\.sdk\.v1\.Status value the string "OK"; expected one of STATUS_UNSPECIFIED/);
  });

  it('reads floats and doubles', () => {
    expect(fromJson(DoubleValue, 'NaN').value).toBeNaN();
    expect(fromJson(DoubleValue, '-Infinity').value).toBe(Number.NEGATIVE_INFINITY);
    expect(fromJson(DoubleValue, '1.25e2').value).toBe(125);
    expect(fromJson(DoubleValue, 1e308).value).toBe(1e308);
    expect(jsonError(() => fromJson(DoubleValue, 'nan')).message).toMatch(/expected a number/);
    expect(jsonError(() => fromJson(DoubleValue, '1e999')).message).toMatch(/out of range for double/);
    expect(jsonError(() => fromJson(FloatValue, 1e39)).message).toMatch(/out of range for float/);
  });

  it('reads durations', () => {
    const cases: Array<[string, bigint, number]> = [
      ['1.5s', 1n, 500_000_000],
      ['-0.5s', 0n, -500_000_000],
      ['3s', 3n, 0],
      ['0.000000001s', 0n, 1],
      ['-315576000000s', -315576000000n, 0],
    ];
    for (const [text, s, n] of cases) {
      const d = fromJson(Duration, text);
      expect([toBigInt(d.seconds), d.nanos]).toEqual([s, n]);
    }
    for (const bad of ['1.5', '1.5ms', '1.0000000001s', '+1s', 's', 1.5]) {
      expect(jsonError(() => fromJson(Duration, bad)).message).toMatch(/expected a duration/);
    }
    expect(jsonError(() => fromJson(Duration, '315576000001s')).message).toMatch(/out of range/);
    expect(jsonError(() => fromJson(RunResponse, { poll: { maxWait: 300 } })).message).toMatch(/^poll\.maxWait: expected a duration such as "1\.5s", got the number 300$/);
  });

  it('reads RFC 3339 timestamps with any offset', () => {
    const cases: Array<[string, bigint, number]> = [
      ['2024-01-02T03:04:05.123Z', 1704164645n, 123_000_000],
      ['2024-01-02T05:04:05.123+02:00', 1704164645n, 123_000_000],
      ['2024-01-01T22:34:05-04:30', 1704164645n, 0],
      ['2024-01-02t03:04:05z', 1704164645n, 0],
      ['1970-01-01T00:00:00.000000001Z', 0n, 1],
      ['1969-12-31T23:59:59.5Z', -1n, 500_000_000],
      ['0001-01-01T00:00:00Z', -62135596800n, 0],
      ['9999-12-31T23:59:59.999999999Z', 253402300799n, 999_999_999],
      ['2024-02-29T00:00:00Z', 1709164800n, 0],
    ];
    for (const [text, s, n] of cases) {
      const t = fromJson(Timestamp, text);
      expect([toBigInt(t.seconds), t.nanos], text).toEqual([s, n]);
    }
    for (const bad of ['2023-02-29T00:00:00Z', '2024-13-01T00:00:00Z', '2024-01-01T24:00:00Z', '2024-01-01 00:00:00Z', '2024-01-01T00:00:00', 1704164645]) {
      expect(jsonError(() => fromJson(Timestamp, bad)).message, String(bad)).toMatch(/expected an RFC 3339 timestamp/);
    }
    expect(jsonError(() => fromJson(Timestamp, '0001-01-01T00:00:00+00:01')).message).toMatch(/outside/);
  });

  it('reads Value, Struct and ListValue from plain JSON', () => {
    const json = { a: [1, 'two', true, null, { b: {} }], c: null };
    const s = fromJson(Struct, json);
    expect(toJson(Struct, s)).toEqual(json);
    expect(toJson(Value, fromJson(Value, null))).toBeNull();
    expect(toJson(ListValue, fromJson(ListValue, []))).toEqual([]);
    // null inside a repeated/map of Value is a NullValue, not "unset"
    expect(toJson(Struct, fromJson(Struct, { x: null }))).toEqual({ x: null });
    expect(jsonError(() => fromJson(ListValue, {})).message).toMatch(/expected an array/);
    expect(jsonError(() => fromJson(Struct, [])).message).toMatch(/expected a JSON object/);
  });

  it('refuses deep nesting instead of overflowing the stack', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 10_000; i++) deep = [deep];
    expect(jsonError(() => fromJson(Value, deep)).message).toMatch(/nested more than 100 levels deep/);
    let ok: unknown = 1;
    for (let i = 0; i < 40; i++) ok = [ok];
    expect(toJson(Value, fromJson(Value, ok))).toEqual(ok);
  });

  it('reads strings and refuses lone surrogates', () => {
    expect(fromJson(StringValue, 'ü😀').value).toBe('ü😀');
    expect(jsonError(() => fromJson(StringValue, '\ud800x')).message).toMatch(/unpaired UTF-16 surrogate/);
    expect(jsonError(() => fromJson(StringValue, 5)).message).toMatch(/expected a string/);
    expect(jsonError(() => fromJson(BoolValue, 'true')).message).toMatch(/expected true or false/);
  });

  it('refuses two members of one oneof', () => {
    expect(jsonError(() => fromJson(RunRequest, { input: {}, pollResult: {} })).message).toBe(
      'pollResult: several members of oneof "directive" are set ("input" and "pollResult")',
    );
    // null members do not count
    expect(fromJson(RunRequest, { input: null, pollResult: {} }).pollResult).not.toBeNull();
  });

  it('refuses a non-object message', () => {
    expect(jsonError(() => fromJson(RunRequest, [])).message).toBe('expected a JSON object for dispatch.sdk.v1.RunRequest, got an array');
    expect(jsonError(() => fromJson(RunRequest, 'x')).path).toBe('');
    expect(jsonError(() => fromJson(RunResponse, { exit: 1 })).message).toBe('exit: expected a JSON object for dispatch.sdk.v1.Exit, got the number 1');
  });

  it('reads Empty', () => {
    expect(fromJson(Empty, {})).toEqual({});
    expect(jsonError(() => fromJson(Empty, { a: 1 })).message).toMatch(/^a: unknown field/);
  });
});

describe('google.protobuf.Any', () => {
  it('reads messages of the root inline, well-known types under "value"', () => {
    const req = fromJson(DispatchRequest, {
      calls: [
        { function: 'f', input: { '@type': 'type.googleapis.com/google.protobuf.Duration', value: '2s' } },
        { function: 'g', input: { '@type': 'type.googleapis.com/dispatch.sdk.v1.Call', function: 'inner', correlation_id: '9' } },
        { function: 'h', input: { '@type': 'type.googleapis.com/google.protobuf.Empty' } },
        { function: 'i', input: { '@type': 'type.googleapis.com/google.protobuf.Empty', value: {} } },
        { function: 'j', input: { '@type': 'type.googleapis.com/google.protobuf.Value', value: null } },
      ],
    });
    const calls = req.calls ?? [];
    const input = (i: number) => calls[i]?.input as IAny;
    expect(Duration.decode(input(0).value as Uint8Array)).toMatchObject({ nanos: 0 });
    expect(toBigInt(Duration.decode(input(0).value as Uint8Array).seconds)).toBe(2n);
    const inner = Call.decode(input(1).value as Uint8Array);
    expect([inner.function, toBigInt(inner.correlationId)]).toEqual(['inner', 9n]);
    expect(input(2).value).toHaveLength(0);
    expect(input(3).value).toHaveLength(0);
    expect(toJson(Value, Value.decode(input(4).value as Uint8Array))).toBeNull();
    expect((input(1) as Record<string, unknown>)[URL_FIELD]).toBe('type.googleapis.com/dispatch.sdk.v1.Call');
  });

  it('prints Empty in an Any as {"@type", "value": {}}', () => {
    expect(toJson(Call, { input: any(Empty, {}) })).toEqual({ input: { '@type': 'type.googleapis.com/google.protobuf.Empty', value: {} } });
  });

  it('resolves the message by the last segment of any type URL', () => {
    const url = 'buf.build/stealthrocket/dispatch-proto/dispatch.sdk.python.v1.Pickled';
    const json = { input: { '@type': url, pickledValue: 'gASV' } };
    const call = fromJson(Call, json);
    expect(toJson(Call, call)).toEqual(json);
  });

  it('prints unknown types with "@value" and reads them back exactly', () => {
    const unknown = rawAny('example.com/acme.Thing', bytes(8, 150, 1));
    const json = toJson(Call, { input: unknown });
    expect(json).toEqual({ input: { '@type': 'example.com/acme.Thing', '@value': 'CJYB' } });
    const back = fromJson(Call, json);
    expect(new Uint8Array(back.input?.value as Uint8Array)).toEqual(bytes(8, 150, 1));
    // "@value" is also accepted for known types
    const known = fromJson(Call, { input: { '@type': StringValue.typeUrl, '@value': 'CgJoaQ==' } });
    expect(StringValue.decode(known.input?.value as Uint8Array).value).toBe('hi');
  });

  it('names the path of a bad Any', () => {
    const bad = { calls: [{ function: 'f' }, { function: 'g', input: { '@type': 'type.googleapis.com/acme.Nope', x: 1 } }] };
    expect(jsonError(() => fromJson(DispatchRequest, bad)).message).toBe('calls[1].input: unknown type URL "type.googleapis.com/acme.Nope"');
    const cases: Array<[unknown, string]> = [
      [{ value: 'x' }, 'input: google.protobuf.Any needs an "@type" member'],
      [{ '@type': 5 }, 'input["@type"]: expected a type URL string, got the number 5'],
      [{ '@type': StringValue.typeUrl }, 'input: an Any holding google.protobuf.StringValue needs a "value" member'],
      [{ '@type': StringValue.typeUrl, value: 'x', extra: 1 }, 'input.extra: unexpected member; an Any holding google.protobuf.StringValue has only "@type" and "value"'],
      [{ '@type': StringValue.typeUrl, value: 5 }, 'input.value: expected a string, got the number 5'],
      [{ '@type': Call.typeUrl, function: 'f', bogus: true }, 'input.bogus: unknown field (dispatch.sdk.v1.Call has no field "bogus")'],
      [{ '@type': 'x/y', '@value': 'AA==', z: 1 }, 'input.z: unexpected member next to "@value"'],
      [{ '@type': 'x/y', '@value': '%%' }, 'input["@value"]: invalid base64 the string "%%": expected standard or URL-safe base64'],
      [[], 'input: expected a JSON object for google.protobuf.Any, got an array'],
    ];
    for (const [input, message] of cases) {
      expect(jsonError(() => fromJson(Call, { input })).message).toBe(message);
    }
  });

  it('nests Any in Any', () => {
    const json = { '@type': Any.typeUrl, value: { '@type': StringValue.typeUrl, value: 'deep' } };
    const a = fromJson(Any, json);
    expect(toJson(Any, a)).toEqual(json);
  });
});

describe('fromJsonBytes', () => {
  it('parses a UTF-8 JSON body', () => {
    const r = fromJsonBytes(RunRequest, new TextEncoder().encode('{"function":"f","input":{"@type":"type.googleapis.com/google.protobuf.StringValue","value":"x"}}'));
    expect(r.function).toBe('f');
  });

  it('reports bad JSON and bad UTF-8 as JsonFormatError', () => {
    expect(jsonError(() => fromJsonBytes(RunRequest, new TextEncoder().encode('{"function":'))).message).toMatch(/^invalid JSON: /);
    expect(jsonError(() => fromJsonBytes(RunRequest, bytes(0x7b, 0xff, 0x7d))).message).toBe('invalid JSON: the body is not valid UTF-8');
  });
});
