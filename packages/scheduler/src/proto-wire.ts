/**
 * Protobuf wire-format pieces the scheduler writes by hand where
 * protobufjs would cost a second buffer: lengths as varints. Used by the
 * HTTP transport (a RunBatchRequest from encoded RunRequests) and the stores
 * (an `Any` column value).
 * @module
 */

/**
 * Bytes of `n` as a varint (a length: below 2^32).
 * @example
 * varintSize(300); // 2
 */
export function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/**
 * Writes `n` as a varint into `out` at `at`; answers the offset after it.
 * @example
 * const at = writeVarint(buf, 1, value.length);
 */
export function writeVarint(out: Uint8Array, at: number, n: number): number {
  while (n > 0x7f) {
    out[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[at++] = n;
  return at;
}
