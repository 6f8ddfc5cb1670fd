import { proto } from '@dispatch/core/protocol';
import { describe, expect, it } from 'vitest';
import { countCalls, countField } from './call-count.js';

describe('countCalls', () => {
  it('counts the calls of a DispatchRequest without decoding it', () => {
    const call = { function: 'f', endpoint: 'http://a', input: { typeUrl: 'x', value: new Uint8Array(300) }, expiration: { seconds: 5 } };
    for (const n of [0, 1, 2, 1000, 1001]) expect(countCalls(proto.DispatchRequest.encode({ calls: Array(n).fill(call) }))).toBe(n);
  });

  it('skips other fields of every wire type, and answers null for bytes that are not protobuf', () => {
    // field 1 (length-delimited) twice, field 2 varint, field 3 fixed64, field 4 fixed32
    const bytes = Uint8Array.from([0x0a, 0x00, 0x10, 0x96, 0x01, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x25, 1, 2, 3, 4, 0x0a, 0x01, 0x00]);
    expect(countField(bytes, 1)).toBe(2);
    expect(countField(Uint8Array.from([0x0a, 0x05, 0x00]), 1)).toBeNull(); // length past the end
    expect(countField(Uint8Array.from([0x0b]), 1)).toBeNull(); // a group
    expect(countField(Uint8Array.from([0x80]), 1)).toBeNull(); // a varint cut short
  });
});
