/**
 * A batch of RunRequests answered as each run ends (`RunBatchAnswer`s in a
 * streamed answer, `run_batch.proto`): a slow call in a batch does not hold
 * back the others' results. Through a real Scheduler (SQLite) and a real
 * HTTP endpoint (signed).
 */
import { Dispatch, type DispatchFunction, Status } from '@dispatch/core';
import { encodeArgs, RUN_BATCH_CONTENT_TYPE } from '@dispatch/core/protocol';
import { startTestScheduler, type TestScheduler } from '@dispatch/testing';
import { afterEach, describe, expect, it } from 'vitest';

const silent = { warn() {}, error() {}, info() {} };
let t: TestScheduler | undefined;
let open = () => {};
afterEach(async () => {
  open();
  await t?.close();
  t = undefined;
});

describe('a batch answered as its runs end', () => {
  it('gives a fast call of a batch its result while a slow one of the same batch still runs', async () => {
    const dispatch = new Dispatch({ env: {}, logger: silent });
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    dispatch.function(async function slow(x: string) {
      await gate;
      return `slow ${x}`;
    });
    dispatch.function(async function fast(x: string) {
      return `fast ${x}`;
    });
    const warm = dispatch.function(async function warm() {
      return 'ok';
    }) as DispatchFunction<[], string>;
    // What the endpoint was sent: single requests or batches.
    const kinds: string[] = [];
    const handler = dispatch.handler;
    Object.defineProperty(dispatch, 'handler', {
      value: (request: Parameters<typeof handler>[0]) => {
        kinds.push(String(request.headers['content-type']));
        return handler(request);
      },
    });
    t = await startTestScheduler(dispatch, { transport: 'http' });
    // A first answer tells the scheduler that the endpoint takes batches.
    expect(await t.call(warm)).toBe('ok');

    const [slowId, fastId] = await t.scheduler.dispatch([
      { endpoint: t.endpointUrl, function: 'slow', input: encodeArgs(['a']) },
      { endpoint: t.endpointUrl, function: 'fast', input: encodeArgs(['b']) },
    ]);
    const fastDone = await t.outcome(fastId as string, 10_000);
    expect(fastDone).toMatchObject({ status: Status.OK, value: 'fast b' });
    // Sent together, in one batch; the slow one is still running.
    expect(kinds.filter((k) => k === RUN_BATCH_CONTENT_TYPE)).toHaveLength(1);
    expect((await t.get(slowId as string)).state).toBe('running');
    open();
    expect(await t.outcome(slowId as string, 10_000)).toMatchObject({ status: Status.OK, value: 'slow a' });
  });
});
