/**
 * `dispatch.runRequest()`: the protocol-object entry point of an in-process
 * transport. RunRequest objects in, RunResponse objects out — no bytes, no
 * HTTP, no signature — counted in flight like the HTTP handler's requests.
 */
import { describe, expect, it } from 'vitest';
import { decodeValue, encodeArgs } from '../serde/serde.js';
import { Status } from '../status/status.js';
import { Dispatch } from './dispatch.js';

const silent = { warn() {}, error() {}, info() {} };

function app() {
  const dispatch = new Dispatch({ env: {}, endpointUrl: 'http://app.test', verificationKey: null, logger: silent });
  const double = dispatch.function(async function double(n: number) {
    return n * 2;
  });
  dispatch.function(async function sum(a: number, b: number) {
    const [x, y] = await dispatch.gather(double(a), double(b));
    return x + y;
  });
  return dispatch;
}

describe('dispatch.runRequest', () => {
  it('runs a RunRequest object to its RunResponse: a first run that suspends, then a resume that exits', async () => {
    const dispatch = app();
    const first = await dispatch.runRequest({ function: 'sum', dispatchId: 'S1', input: encodeArgs([2, 3]) });
    expect(first.status).toBe(Status.OK);
    const calls = first.poll?.calls ?? [];
    expect(calls.map((c) => [c.function, decodeValue(c.input)])).toEqual([
      ['double', [2]],
      ['double', [3]],
    ]);
    // The children, run through the same entry point.
    const results = [];
    for (const call of calls) {
      const child = await dispatch.runRequest({ function: call.function, dispatchId: `C${results.length}`, input: call.input });
      expect(child.status).toBe(Status.OK);
      results.push({ correlationId: call.correlationId, output: child.exit?.result?.output });
    }
    const last = await dispatch.runRequest({
      function: 'sum',
      dispatchId: 'S1',
      pollResult: { typedCoroutineState: first.poll?.typedCoroutineState, results },
    });
    expect(last.status).toBe(Status.OK);
    expect(decodeValue(last.exit?.result?.output)).toBe(10);
  });

  it('answers an unknown function with NOT_FOUND in the response', async () => {
    const response = await app().runRequest({ function: 'nope', dispatchId: 'N1', input: encodeArgs([]) });
    expect(response.status).toBe(Status.NOT_FOUND);
    expect(response.exit?.result?.error).toMatchObject({ type: 'NotFoundError', message: 'function "nope" does not exist' });
  });

  it('counts runs in flight, and drain() waits for them', async () => {
    const dispatch = app();
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered = () => {};
    const running = new Promise<void>((resolve) => {
      entered = resolve;
    });
    dispatch.function(async function held() {
      entered();
      await released;
      return 'done';
    });
    const pending = dispatch.runRequest({ function: 'held', dispatchId: 'H1', input: encodeArgs([]) });
    await running;
    expect(dispatch.inFlight).toBe(1);
    let drained = false;
    const draining = dispatch.drain().then(() => {
      drained = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(drained).toBe(false);
    release();
    const response = await pending;
    await draining;
    expect(drained).toBe(true);
    expect(dispatch.inFlight).toBe(0);
    expect(decodeValue(response.exit?.result?.output)).toBe('done');
  });
});
