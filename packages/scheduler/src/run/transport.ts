/**
 * How the run loop reaches an endpoint: the transport interface, with two
 * implementations — HTTP (`http-transport.ts`: a signed POST per
 * RunRequest) and in-process (`in-process-transport.ts`: the RunRequest
 * object handed to the app's `Dispatch` instance in this process).
 * @module
 */
import type { proto } from '@dispatch/core/protocol';
import type { EndpointReply } from './http-transport.js';

/**
 * What a transport answers: an HTTP reply or a transport failure (HTTP), or
 * the RunResponse itself (in-process).
 * @example
 * if (reply.kind === 'response') console.log(reply.response.status);
 */
export type RunReply =
  | EndpointReply
  | {
      kind: 'response';
      response: proto.IRunResponse;
      /**
       * The answer of the waiting parent's resume that follows this one
       * (local resume, a streamed HTTP answer); null if none came.
       */
      rest?: Promise<RunReply | null>;
    };

/**
 * Sends RunRequests to endpoints. `run` never throws: failures are replies
 * of kind `transport` with a status (PROTOCOL.md 8.12).
 * @example
 * const reply = await transport.run('http://127.0.0.1:8000', { function: 'greet', dispatchId: 'X', input });
 */
export interface EndpointTransport {
  /** `http` or `in-process`, for logs. */
  readonly name: string;
  /** Runs one RunRequest at `endpoint` (a `Call.endpoint`). The request object is the transport's from then on. */
  run(endpoint: string, request: proto.IRunRequest): Promise<RunReply>;
  /**
   * Whether a RunRequest to `endpoint` may offer a local resume
   * (`RunRequest.local_resume`): the transport reads a streamed answer from
   * it. Absent: never.
   */
  streams?(endpoint: string): boolean;
  /** Releases connections. */
  close(): void;
}
