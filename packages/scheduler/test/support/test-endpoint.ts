/**
 * Hand-written protocol endpoints for tests: a `node:http` server that
 * decodes RunRequests with the core codec and answers what a test function
 * returns. They stand in for apps written with any Dispatch SDK.
 * @module
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { proto } from '@dispatch/core/protocol';
import { Scheduler } from '../../src/scheduler.js';
import type { SchedulerOptions } from '../../src/options.js';

/** One request the endpoint received. */
export interface ReceivedRun {
  request: proto.IRunRequest;
  headers: http.IncomingHttpHeaders;
  path: string;
  body: Buffer;
  at: number;
}

/** A raw HTTP answer instead of a RunResponse. */
export interface RawAnswer {
  http: number;
  body?: string;
  contentType?: string;
}

/** What a test function answers. */
export type Answer = proto.IRunResponse | RawAnswer;

/** A running test endpoint. */
export interface TestEndpoint {
  url: string;
  runs: ReceivedRun[];
  close(): Promise<void>;
}

/** Starts an endpoint on 127.0.0.1, port 0. */
export async function startEndpoint(handler: (req: proto.IRunRequest, run: ReceivedRun) => Answer | Promise<Answer>): Promise<TestEndpoint> {
  const runs: ReceivedRun[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      let request: proto.IRunRequest;
      try {
        request = proto.RunRequest.decode(body);
      } catch (err) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 'invalid_argument', message: String(err) }));
        return;
      }
      const run: ReceivedRun = { request, headers: req.headers, path: req.url ?? '', body, at: Date.now() };
      runs.push(run);
      let answer: Answer;
      try {
        answer = await handler(request, run);
      } catch (err) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 'internal', message: String(err) }));
        return;
      }
      if (res.destroyed) return;
      if ('http' in answer) {
        res.writeHead(answer.http, { 'content-type': answer.contentType ?? 'application/json' });
        res.end(answer.body ?? '');
        return;
      }
      const out = proto.RunResponse.encode(answer);
      res.writeHead(200, { 'content-type': 'application/proto', 'content-length': out.length });
      res.end(out);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    runs,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A `google.protobuf.StringValue` in an Any. */
export function str(text: string): proto.IAny {
  return { typeUrl: proto.StringValue.typeUrl, value: proto.StringValue.encode({ value: text }) };
}

/** The text of a StringValue Any (or '' when absent). */
export function text(any: proto.IAny | null | undefined): string {
  if (!any?.value) return '';
  return proto.StringValue.decode(any.value).value ?? '';
}

/** An Exit with an output, status OK. */
export function ok(output: string): proto.IRunResponse {
  return { status: proto.ProtoStatus.STATUS_OK, exit: { result: { output: str(output) } } };
}

/** An Exit with an error. */
export function fail(status: number, type: string, message: string): proto.IRunResponse {
  return { status, exit: { result: { error: { type, message } } } };
}

/** Raw bytes as a typed Any. */
export function bytesAny(typeUrl: string, bytes: number[]): proto.IAny {
  return { typeUrl, value: new Uint8Array(bytes) };
}

export { dec as utf8Decoder, enc as utf8Encoder };

/** Starts a scheduler for tests: memory store, free port, silent, fast backoff. */
export function startTestScheduler(options: SchedulerOptions = {}): Promise<Scheduler> {
  return Scheduler.start({
    db: ':memory:',
    port: 0,
    logLevel: 'silent',
    backoff: { initialMs: 20, maxMs: 200 },
    ...options,
  });
}

/** Resolves when `predicate` holds, checking every 10 ms (fails after `ms`). */
export async function until(predicate: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
