/**
 * Values quoted in messages are excerpts: a bad value of 1 MB gives a
 * message of about 1 KB, whether it is read by the serde, the Connect JSON
 * reader, or the endpoint (which stores it as the call's error).
 */
import { describe, expect, it } from 'vitest';
import { Dispatch } from '../api/dispatch.js';
import { decodeArgs, encodeArgs } from '../serde/serde.js';
import { MAX_EXCERPT_CHARS } from './constants.js';
import { fromJson } from './connect-json.js';
import { excerpt, quoteExcerpt } from './excerpt.js';
import * as proto from './proto.js';

const MB = 1024 * 1024;

describe('excerpt', () => {
  it('cuts at MAX_EXCERPT_CHARS and says how long the text was', () => {
    expect(excerpt('short')).toBe('short');
    const cut = excerpt('x'.repeat(5000));
    expect(cut).toBe(`${'x'.repeat(MAX_EXCERPT_CHARS)}…[5000 characters in all]`);
    expect(excerpt('😀'.repeat(600), 11)).toBe(`${'😀'.repeat(5)}…[1200 characters in all]`); // never half a pair
    expect(quoteExcerpt('a"b')).toBe('"a\\"b"');
    expect(quoteExcerpt('y'.repeat(300), 200)).toBe(`"${'y'.repeat(200)}"…[300 characters in all]`);
  });

  it('a bad 1 MB date in a call’s input: a message of about 1 KB, and a whole error of a few KB', async () => {
    // The project's encoding of a Date, with 1 MB of garbage for its text.
    const good = encodeArgs([new Date(0)]);
    const bad = proto.Value.encode({ listValue: { values: [{ structValue: { fields: { $dispatch: { stringValue: 'date' }, v: { stringValue: `x${'9'.repeat(MB)}` } } } }] } });
    const input = { typeUrl: good.typeUrl, value: bad };
    const thrown = (() => {
      try {
        decodeArgs(input);
      } catch (err) {
        return err as Error;
      }
    })();
    expect(thrown?.message).toMatch(/^cannot decode the date "x9{199}"…\[1048577 characters in all\] at args\[0\]$/);

    const dispatch = new Dispatch({ env: {}, endpointUrl: 'http://127.0.0.1:1', logger: { warn() {}, error() {}, info() {} } });
    dispatch.function(function when(d: Date) {
      return d.toISOString();
    });
    const response = await dispatch.runRequest({ function: 'when', dispatchId: 'd1', input });
    const error = response.exit?.result?.error;
    expect(error?.type).toBe('InvalidArgumentError');
    expect(error?.message?.length).toBeLessThanOrEqual(MAX_EXCERPT_CHARS + 100);
    const size = (error?.message?.length ?? 0) + (error?.traceback?.length ?? 0) + (error?.value?.length ?? 0);
    expect(size).toBeLessThan(16 * 1024); // it was 5 MB
  });

  it('a 1 MB field name in Connect JSON: a message of about 1 KB', () => {
    const json = { function: 'f', ['k'.repeat(MB)]: 1 };
    expect(() => fromJson(proto.RunRequest, json)).toThrow(/unknown field \(dispatch\.sdk\.v1\.RunRequest has no field "k{200}"…\[1048576 characters in all\]\)/);
    try {
      fromJson(proto.RunRequest, json);
    } catch (err) {
      expect((err as Error).message.length).toBeLessThanOrEqual(MAX_EXCERPT_CHARS + 40);
    }
  });
});
