import { describe, expect, it } from 'vitest';
import { Call, RunRequest, durationFromMs, durationToMs, toBigInt, toLong } from './proto.js';

describe('protobuf codec', () => {
  it('keeps uint64 correlation IDs exact above 2^53', () => {
    for (const id of [0n, 1n, (1n << 53n) + 1n, (1n << 63n) + 12345n, (1n << 64n) - 1n]) {
      const back = Call.decode(Call.encode({ correlationId: toLong(id), function: 'f' }));
      expect(toBigInt(back.correlationId)).toBe(id);
    }
  });

  it('decodes absent fields to proto3 defaults', () => {
    const req = RunRequest.decode(RunRequest.encode({ function: 'f' }));
    expect(req.function).toBe('f');
    expect(req.dispatchId).toBe('');
    expect(req.input ?? null).toBeNull();
  });

  it('converts durations', () => {
    expect(durationToMs(durationFromMs(1500))).toBe(1500);
    expect(durationToMs(null)).toBeNull();
  });
});
