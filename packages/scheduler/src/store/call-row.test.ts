import { randomBytes } from 'node:crypto';
import { proto } from '@dispatch/core/protocol';
import { describe, expect, it } from 'vitest';
import { decodeAny, encodeAny } from './call-row.js';

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
