import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import vm from 'node:vm';
import { TemporaryError } from '@dispatch/core';
import { encodeArgs, encodeError, encodeValue, newAny, proto } from '@dispatch/core/protocol';
import { describe, expect, it } from 'vitest';
import type { CallRecord } from '../store/store.js';
import { DASHBOARD_SCRIPT } from './gen/browser-assets.js';
import { escapeHtml, loginPage } from './pages.js';
import { errorView, journalView, jsonView, valueView } from './views.js';

const PICKLED = 'buf.build/stealthrocket/dispatch-proto/dispatch.sdk.python.v1.Pickled';

describe('values for reading', () => {
  it('shows arguments as JSON', () => {
    expect(valueView(encodeArgs(['user_123', 2, { a: [true, null] }]), 'args')).toEqual({
      kind: 'json',
      text: JSON.stringify(['user_123', 2, { a: [true, null] }], null, 2),
    });
  });

  it('converts what JSON cannot say and notes it', () => {
    const v = valueView(encodeValue(new Map<string, unknown>([['n', 12n], ['at', new Date(0)], ['tags', new Set(['x'])], ['raw', new Uint8Array([1, 2])]])), 'value');
    expect(v.kind).toBe('json');
    if (v.kind !== 'json') return;
    expect(JSON.parse(v.text)).toEqual({
      $map: [
        ['n', '12n'],
        ['at', '1970-01-01T00:00:00.000Z'],
        ['tags', { $set: ['x'] }],
        ['raw', { $bytes: 'AQI=' }],
      ],
    });
    expect(v.note).toContain('Map shown as');
    expect(v.note).toContain('bigint shown as text');
    expect(v.note).toContain('Date shown as ISO 8601');
  });

  it('says when a value belongs to another SDK or cannot be decoded', () => {
    const pickled = newAny(PICKLED, new Uint8Array([0x80, 4, 0x95]));
    expect(valueView(pickled, 'args')).toEqual({ kind: 'opaque', note: expect.stringContaining('a Python pickle (3 bytes') });
    expect(valueView(newAny('type.googleapis.com/acme.v1.Order', new Uint8Array(5)), 'value')).toEqual({
      kind: 'opaque',
      note: expect.stringContaining('acme.v1.Order (5 bytes'),
    });
    const broken = valueView(newAny('type.googleapis.com/google.protobuf.Value', new Uint8Array([0xff, 0xff])), 'value');
    expect(broken.kind).toBe('opaque');
    expect(valueView(null, 'value')).toEqual({ kind: 'none', note: 'no output' });
  });

  it('cuts very long values', () => {
    const v = jsonView('x'.repeat(200_000));
    expect(v.kind === 'json' && v.text.length).toBeLessThan(100_010);
    expect(v.kind === 'json' && v.note).toContain('cut at');
  });

  it('shows an error with its stack and fields', () => {
    const err = Object.assign(new TemporaryError('smtp down'), { host: 'smtp.example.com' });
    const v = errorView(encodeError(err));
    expect(v.type).toBe('TemporaryError');
    expect(v.message).toBe('smtp down');
    expect(v.stack).toContain('TemporaryError: smtp down');
    expect(v.fields?.kind === 'json' && JSON.parse(v.fields.text)).toMatchObject({ host: 'smtp.example.com' });
    expect(errorView({ type: 'ValueError', message: 'bad', value: new Uint8Array([1, 2, 3]) })).toEqual({ type: 'ValueError', message: 'bad' });
  });
});

function child(id: string, correlationId: bigint, state: CallRecord['state']): CallRecord {
  return { id, correlationId, state, status: state === 'succeeded' ? 1 : 0 } as unknown as CallRecord;
}

describe('journal of a suspended call', () => {
  const epoch = 0x1234abcd;
  const journal = proto.Journal.encode({
    version: 1,
    epoch,
    function: 'checkout',
    input: encodeArgs(['user_123', 'order_456']),
    operations: [
      { kind: proto.OperationKind.OPERATION_KIND_CALL, name: 'chargeCreditCard' },
      { kind: proto.OperationKind.OPERATION_KIND_STEP, name: 'rate' },
      { kind: proto.OperationKind.OPERATION_KIND_CALL, name: 'sendEmailConfirmation' },
      { kind: proto.OperationKind.OPERATION_KIND_SLEEP, name: '', deadlineMs: proto.toLong(1_700_000_000_000n, false) },
      { kind: proto.OperationKind.OPERATION_KIND_DISPATCH, name: 'notify' },
    ],
    outcomes: [
      { position: 0, output: encodeValue('receipt_789'), endOfRound: true },
      { position: 1, error: encodeError(new Error('rate service down')) },
      { position: 4, dispatchIds: ['D1', 'D2'] },
    ],
    polls: [1, 3],
  });

  it('says which awaits are done and which it waits on, with the child running each', () => {
    const corr = (pos: number) => (BigInt(epoch) << 32n) | BigInt(pos);
    const view = journalView({ kind: 'typed', typeUrl: proto.Journal.typeUrl, value: journal }, [
      child('C0', corr(0), 'succeeded'),
      child('C2', corr(2), 'running'),
      child('OTHER', (1n << 32n) | 2n, 'failed'),
    ]);
    expect(view.note).toBeUndefined();
    expect(view.function).toBe('checkout');
    expect(view.operations).toMatchObject([
      { position: 0, kind: 'call', name: 'chargeCreditCard', state: 'done', result: { kind: 'json', text: '"receipt_789"' }, child: { id: 'C0', state: 'succeeded' } },
      { position: 1, kind: 'step', name: 'rate', state: 'failed', error: { type: 'Error', message: 'rate service down' } },
      { position: 2, kind: 'call', name: 'sendEmailConfirmation', state: 'waiting', child: { id: 'C2', state: 'running' } },
      { position: 3, kind: 'sleep', state: 'waiting', deadline: 1_700_000_000_000 },
      { position: 4, kind: 'dispatch', name: 'notify', state: 'done', dispatchIds: ['D1', 'D2'] },
    ]);
    expect(view.operations?.[4]?.result).toBeUndefined();
  });

  it('describes foreign states instead of decoding them', () => {
    const typed = journalView({ kind: 'typed', typeUrl: 'buf.build/stealthrocket/coroutine/coroutine.v1.State', value: new Uint8Array(40) }, []);
    expect(typed.note).toContain('coroutine.v1.State (40 bytes) written by another SDK');
    expect(typed.operations).toBeUndefined();
    expect(journalView({ kind: 'bytes', value: new Uint8Array(9) }, []).note).toContain('untyped coroutine_state of 9 bytes');
    const bad = journalView({ kind: 'typed', typeUrl: proto.Journal.typeUrl, value: new Uint8Array([0xff, 0xff, 0xff]) }, []);
    expect(bad.note).toContain('cannot be read');
  });
});

describe('pages and script', () => {
  it('escapes the login error', () => {
    expect(escapeHtml(`<script>alert("x")</script>&'`)).toBe('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;');
    expect(loginPage('<img src=x onerror=alert(1)>')).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(loginPage('<img src=x onerror=alert(1)>')).not.toContain('<img');
  });

  it('the browser script parses and never writes HTML', () => {
    expect(() => new vm.Script(DASHBOARD_SCRIPT)).not.toThrow();
    expect(DASHBOARD_SCRIPT).not.toMatch(/outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    // The bundle's only HTML writes are Preact's for the `dangerouslySetInnerHTML` prop…
    const writes = [...DASHBOARD_SCRIPT.matchAll(/innerHTML\s*=(?!=)([^,;)]*)/g)].map((m) => m[1]);
    expect(writes.length).toBeGreaterThan(0);
    for (const value of writes) expect(value).toMatch(/^\w+\.__html$/);
    // …which the dashboard's own modules never pass (nor write HTML any other way).
    const dir = join(import.meta.dirname, 'browser');
    const sources = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.tsx?$/.test(f));
    expect(sources).toEqual(expect.arrayContaining(['main.tsx', join('pages', 'run-page.tsx')]));
    for (const file of sources) {
      expect(readFileSync(join(dir, file), 'utf8'), file).not.toMatch(/dangerouslySetInnerHTML|innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    }
  });
});
