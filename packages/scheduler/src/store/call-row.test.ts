import { randomBytes } from 'node:crypto';
import { proto } from '@dispatch/core/protocol';
import { describe, expect, it } from 'vitest';
import { decodeAny, encodeAny, encodeErrorBlob, finishedChildResult, toChildResult } from './call-row.js';

describe('Any in a column', () => {
  it('is encoded byte for byte as protobufjs encodes it, and decodes back', () => {
    const cases: proto.IAny[] = [
      { typeUrl: '', value: new Uint8Array(0) },
      { typeUrl: 'type.googleapis.com/google.protobuf.BytesValue', value: Uint8Array.from([10, 0]) },
      { typeUrl: 'type.googleapis.com/dispatch.π', value: new Uint8Array(randomBytes(300)) }, // a non-ASCII URL, two-byte lengths
      { typeUrl: 'x'.repeat(200), value: new Uint8Array(randomBytes(70_000)) }, // three-byte length
      { typeUrl: 'type.googleapis.com/google.protobuf.Empty' }, // no value
    ];
    for (let i = 0; i < 200; i++) cases.push({ typeUrl: `t/${randomBytes(i % 40).toString('hex')}`, value: new Uint8Array(randomBytes(i * 7)) });
    for (const a of cases) {
      const reference = Buffer.from(proto.Any.encode({ typeUrl: a.typeUrl ?? '', value: a.value ?? new Uint8Array(0) }));
      const bytes = encodeAny(a)!;
      expect(bytes.equals(reference), `${a.typeUrl} (${a.value?.length ?? 0} bytes)`).toBe(true);
      const back = decodeAny(bytes)!;
      expect(back.typeUrl).toBe(a.typeUrl);
      expect(Buffer.from(back.value!).equals(Buffer.from(a.value ?? new Uint8Array(0)))).toBe(true);
    }
    expect(encodeAny(null)).toBeNull();
    expect(decodeAny(null)).toBeNull();
  });
});

/** A value with its byte arrays as plain arrays (a read gives Buffers, or protobufjs's [] for an empty field; a finish the arrays it was given). */
const plain = (v: unknown): unknown =>
  v instanceof Uint8Array || Array.isArray(v) ? [...v] : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) : v;

describe('a finished child\'s result', () => {
  it('is handed from the finish as it reads back from the columns', () => {
    const outputs: Array<proto.IAny | null> = [
      null,
      { typeUrl: 'type.googleapis.com/google.protobuf.BytesValue', value: Uint8Array.from([10, 2, 4, 9]) },
      { typeUrl: 'type.googleapis.com/google.protobuf.Empty' },
      { value: Uint8Array.from([1]) },
    ];
    const errors: Array<proto.IError | null> = [
      null,
      { type: 'ValueError', message: 'bad' },
      { type: 'TimeoutError', message: '', value: new Uint8Array(0), traceback: new Uint8Array(0) },
      { type: 'KeyError', message: 'k', value: Uint8Array.from([7, 7]), traceback: Uint8Array.from([1, 2, 3]) },
      { message: 'no type' },
    ];
    for (const [correlation, correlationId] of [[null, 0n], ['42', 42n]] as const) {
      for (const output of outputs) {
        for (const error of errors) {
          const read = toChildResult({ id: 'C1', correlation_id: correlation, output: encodeAny(output), error: encodeErrorBlob(error) });
          const handed = finishedChildResult({ id: 'C1', correlationId: correlation, output, error });
          expect(handed.correlationId).toBe(correlationId);
          expect(plain(handed), JSON.stringify(plain({ output, error }))).toEqual(plain(read));
        }
      }
    }
  });
});
