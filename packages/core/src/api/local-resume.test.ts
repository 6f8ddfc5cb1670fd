/**
 * Local resume (`RunRequest.local_resume`, a protocol extension): a call's
 * successful answer is streamed, and followed by the answer of its waiting
 * parent's resume, run at once in the same process from the warm execution,
 * when the parent waits for that call alone and declares no limits. Driven
 * through `dispatch.handler` with the requests a scheduler sends.
 */
import Long from 'long';
import { describe, expect, it } from 'vitest';
import { RUN_PATH, RUN_STREAM_CONTENT_TYPE } from '../protocol/constants.js';
import type { IRunRequest, IRunResponse } from '../protocol/proto.js';
import * as proto from '../protocol/proto.js';
import { decodeValue, encodeArgs } from '../serde/serde.js';
import { Status } from '../status/status.js';
import { Dispatch } from './dispatch.js';

const silent = { warn() {}, error() {}, info() {} };

function app() {
  const dispatch = new Dispatch({ env: {}, endpointUrl: 'http://app.test', verificationKey: null, logger: silent });
  const inc = dispatch.function(async function inc(n: number) {
    if (n < 0) throw new TypeError(`negative: ${n}`);
    return n + 1;
  });
  dispatch.function(async function twice(n: number) {
    const a = await inc(n);
    return await inc(a);
  });
  dispatch.function(async function both(n: number) {
    const [a, b] = await dispatch.gather(inc(n), inc(n + 10));
    return a + b;
  });
  dispatch.function({ name: 'limitedTwice', concurrency: 2 }, async (n: number) => {
    const a = await inc(n);
    return await inc(a);
  });
  return dispatch;
}

/** The request a scheduler sends for the `i`-th call of a parent's Poll, offering a local resume. */
function childRequest(parent: string, poll: IRunResponse, i = 0, id = `${parent}-c${i}`): IRunRequest {
  const call = poll.poll?.calls?.[i];
  if (!call) throw new Error('no call in the Poll');
  return {
    function: call.function,
    dispatchId: id,
    parentDispatchId: parent,
    rootDispatchId: parent,
    input: call.input,
    acceptsStateDelta: true,
    localResume: { correlationId: call.correlationId },
  };
}

/** POSTs a RunRequest to the handler (unsigned, on loopback) as an adapter that streams would. */
async function post(dispatch: Dispatch, request: IRunRequest, streaming = true) {
  const r = await dispatch.handler({
    method: 'POST',
    url: RUN_PATH,
    headers: { 'content-type': 'application/proto' },
    localAddress: '127.0.0.1',
    body: proto.RunRequest.encode(request),
    streaming,
  });
  expect(r.status).toBe(200);
  return { contentType: r.headers['content-type'], body: r.body, more: await restOf(r) };
}

/** The parts a streamed answer's rest writes, joined (null for a whole answer). */
async function restOf(r: { rest?: (write: (part: Uint8Array) => void) => Promise<void> }): Promise<Uint8Array | null> {
  if (!r.rest) return null;
  const parts: Uint8Array[] = [];
  await r.rest((part) => parts.push(part));
  return Buffer.concat(parts);
}

/** The RunResponses of a streamed body (each preceded by its length as a varint). */
function frames(...parts: Uint8Array[]): IRunResponse[] {
  const bytes = Buffer.concat(parts);
  const out: IRunResponse[] = [];
  let at = 0;
  while (at < bytes.length) {
    let length = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[at++] as number;
      length |= (b & 0x7f) << shift;
      shift += 7;
      if (b < 0x80) break;
    }
    out.push(proto.RunResponse.decode(bytes.subarray(at, at + length)));
    at += length;
  }
  return out;
}

describe('local resume (RunRequest.local_resume)', () => {
  it("streams a child's success, then its waiting parent's resume, run from the warm execution", async () => {
    const dispatch = app();
    const first = await dispatch.runRequest({ function: 'twice', dispatchId: 'P1', rootDispatchId: 'P1', input: encodeArgs([1]), acceptsStateDelta: true });
    expect(first.poll?.calls?.map((c) => c.function)).toEqual(['inc']);
    const state = first.poll?.typedCoroutineState?.value ?? new Uint8Array(0);

    const r = await post(dispatch, childRequest('P1', first));
    expect(r.contentType).toBe(RUN_STREAM_CONTENT_TYPE);
    const [child, parent, ...none] = frames(r.body, r.more ?? new Uint8Array(0));
    expect(none).toEqual([]);
    expect(child?.status).toBe(Status.OK);
    expect(decodeValue(child?.exit?.result?.output)).toBe(2);
    // The state the parent resumes: the journal its Poll carried (its length and first bytes).
    expect(Number(proto.toBigInt(child?.parentState?.length))).toBe(state.length);
    const header = child?.parentState?.header ?? new Uint8Array(0);
    expect(header.length).toBeGreaterThan(0);
    expect([...header]).toEqual([...state.subarray(0, header.length)]);
    // The parent's answer: its next Poll (the second inc, of the first result).
    expect(parent?.poll?.calls?.map((c) => [c.function, decodeValue(c.input)])).toEqual([['inc', [2]]]);

    // And once more, to the parent's end.
    const second = await post(dispatch, childRequest('P1', parent as IRunResponse, 0, 'P1-c1'));
    const [child2, parent2] = frames(second.body, second.more ?? new Uint8Array(0));
    expect(decodeValue(child2?.exit?.result?.output)).toBe(3);
    expect(parent2?.status).toBe(Status.OK);
    expect(decodeValue(parent2?.exit?.result?.output)).toBe(3);
    expect(dispatch.engine.stats.replays).toBe(0);
  });

  it('answers whole, as before, without the offer, to an adapter that does not stream, for a failed child, a wrong correlation ID, or a parent not held here', async () => {
    const dispatch = app();
    const whole = async (request: IRunRequest, streaming = true) => {
      const r = await post(dispatch, request, streaming);
      expect(r.contentType).toBe('application/proto');
      expect(r.more).toBeNull();
      const response = proto.RunResponse.decode(r.body);
      expect(response.parentState ?? null).toBeNull();
      return response;
    };
    const first = await dispatch.runRequest({ function: 'twice', dispatchId: 'P2', input: encodeArgs([-5]) });
    const offered = childRequest('P2', first);
    const { localResume: _none, ...plain } = offered;
    await whole(plain);
    expect((await whole(offered)).status).not.toBe(Status.OK);

    const ok = await dispatch.runRequest({ function: 'twice', dispatchId: 'P3', input: encodeArgs([1]) });
    expect((await whole(childRequest('P3', ok), false)).status).toBe(Status.OK);
    const wrong = childRequest('P3', ok);
    wrong.localResume = { correlationId: Long.fromValue(wrong.localResume?.correlationId ?? 0).add(1) };
    await whole(wrong);
    const elsewhere = childRequest('P3', ok);
    elsewhere.parentDispatchId = 'not-held-here';
    await whole(elsewhere);

    // The parent was left as it was: the offer still resumes it.
    const r = await post(dispatch, childRequest('P3', ok));
    expect(frames(r.body, r.more ?? new Uint8Array(0))[1]?.poll?.calls?.length).toBe(1);
  });

  it('does not resume a parent that waits for more than this one result, or whose function declares limits', async () => {
    const dispatch = app();
    const gathered = await dispatch.runRequest({ function: 'both', dispatchId: 'G1', input: encodeArgs([1]) });
    expect(gathered.poll?.minResults).toBe(2);
    const one = await post(dispatch, childRequest('G1', gathered, 0));
    expect(one.contentType).toBe('application/proto');
    expect(one.more).toBeNull();

    const limited = await dispatch.runRequest({ function: 'limitedTwice', dispatchId: 'L1', input: encodeArgs([1]) });
    expect(limited.poll?.calls?.length).toBe(1);
    const child = await post(dispatch, childRequest('L1', limited));
    expect(child.contentType).toBe('application/proto');
    expect(proto.RunResponse.decode(child.body).status).toBe(Status.OK);
  });

  it('ends the stream after the first answer when the parent could not be resumed after all, and counts the resume in flight', async () => {
    const dispatch = app();
    const first = await dispatch.runRequest({ function: 'twice', dispatchId: 'P4', input: encodeArgs([1]) });
    const r = await dispatch.handler({
      method: 'POST',
      url: RUN_PATH,
      headers: { 'content-type': 'application/proto' },
      localAddress: '127.0.0.1',
      body: proto.RunRequest.encode(childRequest('P4', first)),
      streaming: true,
    });
    expect(r.headers['content-type']).toBe(RUN_STREAM_CONTENT_TYPE);
    // Counted in flight until the answer is whole.
    expect(dispatch.inFlight).toBe(1);
    // The execution is gone before the adapter asks for the rest (a restart, an eviction): nothing follows.
    dispatch.engine.clearCache();
    expect(await restOf(r)).toEqual(Buffer.alloc(0));
    expect(dispatch.inFlight).toBe(0);
  });
});
