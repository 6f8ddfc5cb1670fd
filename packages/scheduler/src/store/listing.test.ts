import { describe, expect, it } from 'vitest';
import type { CallRecordRow } from './call-row.js';
import { countsByState, listLimit, MAX_LIST_LIMIT, parseCursor, toListPage } from './listing.js';

function row(seq: number): CallRecordRow & { seq: number } {
  return {
    seq,
    id: `ID${seq}`,
    function: 'f',
    endpoint: 'http://127.0.0.1:1',
    version: '',
    input: null,
    original_function: 'f',
    idempotency_key: null,
    parent_id: null,
    root_id: `ID${seq}`,
    correlation_id: null,
    state: 'pending',
    status: 0,
    due_at: 1,
    attempts: 0,
    resumes: 0,
    failures: 0,
    created_at: 1,
    updated_at: 1,
    finished_at: null,
    expires_at: 2,
    state_kind: 0,
    state_type_url: null,
    poll_min: 0,
    poll_max: 0,
    ready: 0,
    output: null,
    error: null,
  };
}

describe('listing', () => {
  it('pages 100 calls by default, 1 to 1000 when asked', () => {
    expect(listLimit({})).toBe(100);
    expect(listLimit({ limit: 0 })).toBe(1);
    expect(listLimit({ limit: 7 })).toBe(7);
    expect(listLimit({ limit: 5000 })).toBe(MAX_LIST_LIMIT);
  });

  it('reads the cursors it gives and refuses anything else, naming it', () => {
    expect(parseCursor('1234')).toBe(1234);
    expect(() => parseCursor('12abc')).toThrow(/invalid cursor "12abc": pass the nextCursor of the previous page/);
    expect(() => parseCursor('x')).toThrow(RangeError);
    expect(() => parseCursor('99999999999999999999')).toThrow(RangeError);
  });

  it('counts every state, 0 for those without calls', () => {
    expect(countsByState([{ state: 'failed', n: 2 }])).toEqual({ pending: 0, running: 0, suspended: 0, succeeded: 0, failed: 2, cancelled: 0 });
  });

  it('gives a cursor only when a row beyond the page was read', () => {
    const counts = countsByState([]);
    const more = toListPage([row(9), row(8), row(7)], 2, counts);
    expect(more.calls.map((c) => c.id)).toEqual(['ID9', 'ID8']);
    expect(more.nextCursor).toBe('8');
    expect(more.calls[0]?.input).toBeNull();
    expect(toListPage([row(9), row(8)], 2, counts).nextCursor).toBeNull();
    expect(toListPage([], 2, counts)).toEqual({ calls: [], nextCursor: null, counts });
  });
});
