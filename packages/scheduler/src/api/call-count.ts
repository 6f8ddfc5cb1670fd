/**
 * The number of calls in a binary `DispatchRequest`, read without decoding
 * it: the API refuses a request over the limit before building its calls.
 * @module
 */

/** `DispatchRequest.calls`: field 1. */
const CALLS_FIELD = 1;

/**
 * How many times top-level field `field` occurs in a protobuf message (its
 * repeated entries), by walking the tags and skipping the values; `null`
 * when the bytes are not well-formed protobuf (the decoder then says why).
 * @example
 * countField(proto.DispatchRequest.encode({ calls: [a, b] }), 1); // 2
 */
export function countField(bytes: Uint8Array, field: number): number | null {
  let count = 0;
  let at = 0;
  const varint = (): number | null => {
    let value = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (at >= bytes.length) return null;
      const b = bytes[at++] as number;
      if (shift < 53) value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
    return null;
  };
  while (at < bytes.length) {
    const tag = varint();
    if (tag === null) return null;
    if (Math.floor(tag / 8) === field) count++;
    switch (tag % 8) {
      case 0:
        if (varint() === null) return null;
        break;
      case 1:
        at += 8;
        break;
      case 2: {
        const length = varint();
        if (length === null) return null;
        at += length;
        break;
      }
      case 5:
        at += 4;
        break;
      default:
        return null; // groups (3, 4) are not used by these messages
    }
    if (at > bytes.length) return null;
  }
  return count;
}

/**
 * The calls of a binary DispatchRequest, counted without decoding it
 * (`null` if it is not well-formed).
 * @example
 * if ((countCalls(body) ?? 0) > 1000) refuse();
 */
export function countCalls(body: Uint8Array): number | null {
  return countField(body, CALLS_FIELD);
}

/**
 * The message of a request with more calls than the limit.
 * @example throw new SchedulerError('invalid_argument', tooManyCalls(n, max));
 */
export function tooManyCalls(count: number, max: number): string {
  return (
    `the DispatchRequest has ${count} calls, more than the limit of ${max} per request: send them in batches of at most ${max} ` +
    '(the limit is the scheduler\'s maxCallsPerRequest option, or dispatch serve --max-calls-per-request)'
  );
}
