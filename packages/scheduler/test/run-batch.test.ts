/**
 * Batched RunRequests over HTTP (this project's extension, run_batch.proto):
 * an endpoint of this SDK says it takes batches (`dispatch-run-batch`), the
 * scheduler then sends the RunRequests ready together in one signed HTTP
 * request, and the endpoint answers them together; the batch goes through
 * the endpoint's precheck, body limit, signature check and replay cache like
 * a single request. An endpoint that never says so (another SDK) keeps one
 * request per call.
 */
import { Dispatch, Status } from '@dispatch/core';
import { encodeArgs, isRunBatch, MAX_RUN_BATCH, proto, RUN_BATCH_CONTENT_TYPE, RUN_BATCH_HEADER, RUN_PATH } from '@dispatch/core/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { Scheduler } from '../src/scheduler.js';
import { post, type RecordingApp, recordingApp } from './support/recording-app.js';
import { ok, startEndpoint, startTestScheduler, type TestEndpoint } from './support/test-endpoint.js';

let scheduler: Scheduler | undefined;
let recording: RecordingApp | undefined;
let foreign: TestEndpoint | undefined;
afterEach(async () => {
  await scheduler?.close();
  await recording?.close();
  await foreign?.close();
  scheduler = undefined;
  recording = undefined;
  foreign = undefined;
});

async function app(setup: (d: Dispatch) => void): Promise<RecordingApp> {
  recording = await recordingApp(scheduler!, setup);
  return recording;
}

describe('batched RunRequests over HTTP', () => {
  it('sends the RunRequests ready together in signed batches to an endpoint that takes them; every call completes once', async () => {
    scheduler = await startTestScheduler({ concurrency: { initial: 64 } });
    let runs = 0;
    const { url, seen } = await app((d) => {
      d.function(async function noop(i: number) {
        runs++;
        return i;
      });
    });
    const first = await scheduler.dispatch([{ function: 'noop', endpoint: url, input: encodeArgs([-1]) }]);
    expect((await scheduler.wait(first[0]!, 30_000)).done).toBe(true);
    // The endpoint says on its answers that it takes batches, and how many.
    expect(seen[0]!.contentType).toBe('application/proto');
    const ids = await scheduler.dispatch(Array.from({ length: 300 }, (_, i) => ({ function: 'noop', endpoint: url, input: encodeArgs([i]) })));
    for (const id of ids) {
      const r = await scheduler.wait(id, 30_000);
      expect(r.done && r.status === Status.OK, JSON.stringify(r.done ? r.result.error : r.state)).toBe(true);
      expect((await scheduler.get(id)).attempts).toBe(1);
    }
    expect(runs).toBe(301);
    const batches = seen.filter((s) => isRunBatch(s.contentType));
    expect(batches.length, 'HTTP requests that carried a batch').toBeGreaterThan(0);
    expect(seen.length, 'HTTP requests for 301 calls').toBeLessThan(301);
    for (const b of batches) {
      expect(b.status).toBe(200);
      const n = proto.RunBatchRequest.decode(b.body).requests?.length ?? 0;
      expect(n).toBeGreaterThan(1);
      expect(n).toBeLessThanOrEqual(MAX_RUN_BATCH);
      // One signature for the whole batch.
      expect(b.headers.signature).toMatch(/^dispatch=:[^,]+:$/);
    }
    const carried = batches.reduce((n, b) => n + (proto.RunBatchRequest.decode(b.body).requests?.length ?? 0), 0);
    expect(carried + seen.filter((s) => !isRunBatch(s.contentType)).length).toBe(301);
    console.log(`run batch: 301 calls in ${seen.length} HTTP requests (${batches.length} batches carrying ${carried} RunRequests)`);

    // A batch goes through the replay cache like a single request: sent again as is, it is refused.
    const { host: _host, 'content-length': _length, connection: _connection, ...signed } = batches[0]!.headers;
    const replayed = await post(`${url}${RUN_PATH}`, signed, batches[0]!.body);
    expect(replayed.status).toBe(403);
    expect(replayed.body).toMatch(/signature already used/);
    // Unsigned, it is refused before anything runs.
    const unsigned = await post(`${url}${RUN_PATH}`, { 'content-type': RUN_BATCH_CONTENT_TYPE }, batches[0]!.body);
    expect(unsigned.status).toBe(401);
    expect(runs).toBe(301);
  });

  it('answers a batch request by request: an unknown function gets NOT_FOUND, the others run', async () => {
    const body = proto.RunBatchRequest.encode({
      requests: [
        { function: 'twice', dispatchId: 'a', input: encodeArgs([21]) },
        { function: 'nope', dispatchId: 'b', input: encodeArgs([]) },
      ],
    });
    const local = new Dispatch({ env: {}, verificationKey: false, logger: { warn() {}, error() {}, info() {} } });
    local.function(function twice(n: number) {
      return n * 2;
    });
    const response = await local.handler({ method: 'POST', url: RUN_PATH, headers: { 'content-type': RUN_BATCH_CONTENT_TYPE }, body });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe(RUN_BATCH_CONTENT_TYPE);
    expect(response.headers[RUN_BATCH_HEADER]).toBe(String(MAX_RUN_BATCH));
    const [a, b] = proto.RunBatchResponse.decode(response.body).responses ?? [];
    expect(a?.exit?.result?.output).toBeDefined();
    expect(b?.status).toBe(Status.NOT_FOUND);
    expect(b?.exit?.result?.error?.message).toMatch(/nope/);
    // Too many in one batch: refused as a whole, with the limit.
    const tooMany = proto.RunBatchRequest.encode({ requests: Array.from({ length: MAX_RUN_BATCH + 1 }, (_, i) => ({ function: 'twice', dispatchId: `x${i}`, input: encodeArgs([i]) })) });
    const refused = await local.handler({ method: 'POST', url: RUN_PATH, headers: { 'content-type': RUN_BATCH_CONTENT_TYPE }, body: tooMany });
    expect(refused.status).toBe(400);
    expect(new TextDecoder().decode(refused.body)).toMatch(new RegExp(`${MAX_RUN_BATCH + 1} requests, more than ${MAX_RUN_BATCH}`));
    // The body limit applies before the body is read (the precheck).
    const small = new Dispatch({ env: {}, verificationKey: false, maxBodyBytes: 100, logger: { warn() {}, error() {}, info() {} } });
    const early = small.precheck({ method: 'POST', url: RUN_PATH, headers: { 'content-type': RUN_BATCH_CONTENT_TYPE, 'content-length': String(tooMany.length) } });
    expect(early?.status).toBe(413);
  });

  it('keeps one request per call for an endpoint that does not say it takes batches (another SDK)', async () => {
    scheduler = await startTestScheduler({ concurrency: { initial: 64 } });
    foreign = await startEndpoint(() => ok('done'));
    const ids = await scheduler.dispatch(Array.from({ length: 100 }, () => ({ function: 'f', endpoint: foreign!.url, input: encodeArgs([]) })));
    for (const id of ids) expect((await scheduler.wait(id, 30_000)).done).toBe(true);
    expect(foreign.runs).toHaveLength(100);
    expect(foreign.runs.every((r) => r.headers['content-type'] === 'application/proto')).toBe(true);
  });
});
