/**
 * The app's spans (OpenTelemetry, when installed): one per dispatch made by
 * the app, one per run of a function on this endpoint (an attempt or a
 * resume), one per durable await. `Dispatch` wires them (api/), the engine
 * reports awaits through {@link ENGINE_TRACER} (it does no I/O itself).
 * @module
 */
import type { ICall, IRunRequest, IRunResponse } from '../protocol/proto.js';
import { Status, statusName } from '../status/status.js';
import type { EngineTracer, OperationTrace } from '../engine/tracing.js';
import { carrierOf, currentTracing, type TracedSpan, type Tracing, tracingNow } from './tracing.js';

const isSpan = (run: unknown): run is TracedSpan => typeof run === 'object' && run !== null && 'carrier' in run && 'end' in run;

/** Await spans, children of the run's span; their context is carried by the calls they wait for. @internal */
export const ENGINE_TRACER: EngineTracer = {
  operation(run, info): OperationTrace | undefined {
    const tracing = tracingNow();
    if (!tracing || !isSpan(run)) return undefined;
    const span = tracing.start({
      name: `dispatch.await ${info.name}`,
      kind: 'internal',
      parent: run.carrier,
      attributes: { 'dispatch.operation': info.kind, 'dispatch.id': info.dispatchId, 'dispatch.position': info.position, ...(info.kind === 'call' ? { 'dispatch.function': info.name } : {}) },
    });
    let ended = false;
    return {
      carrier: span.carrier ?? run.carrier,
      end(error?: unknown) {
        if (ended) return;
        ended = true;
        if (error !== undefined) span.fail(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
        span.end();
      },
      detach() {
        if (ended) return;
        ended = true;
        span.setAttributes({ 'dispatch.await.left_memory': true });
        span.end();
      },
    };
  },
  carrier: (run) => (isSpan(run) ? run.carrier : undefined),
};

/**
 * Dispatches `calls` inside a `dispatch <function>` span (a child of the
 * context the first call carries, else of the app's active context); each
 * call carries the span's context, so that its runs join the trace.
 * @internal
 */
export async function tracedDispatch(calls: ICall[], send: (calls: ICall[]) => Promise<string[]>): Promise<string[]> {
  const tracing = await currentTracing();
  if (!tracing || calls.length === 0) return send(calls);
  const names = [...new Set(calls.map((c) => c.function ?? ''))].join(',');
  const span = tracing.start({
    name: calls.length === 1 ? `dispatch ${names}` : `dispatch ${calls.length} calls`,
    kind: 'producer',
    parent: carrierOf(calls[0] as ICall) ?? 'active',
    attributes: { 'dispatch.function': names, 'dispatch.calls': calls.length },
  });
  const carrier = span.carrier;
  const carried = carrier ? calls.map((c) => ({ ...c, traceparent: carrier.traceparent, tracestate: carrier.tracestate ?? '' })) : calls;
  try {
    const ids = await send(carried);
    if (ids.length === 1) span.setAttributes({ 'dispatch.id': ids[0] as string });
    return ids;
  } catch (err) {
    span.fail(err instanceof Error ? err.message : String(err));
    throw err;
  } finally {
    span.end();
  }
}

/**
 * Runs a RunRequest inside a `dispatch.run <function>` span, a child of the
 * context the request carries (else of the app's active context); the calls
 * of its Poll and its tail call carry the run's context when no await span
 * gave them one.
 * @internal
 */
export function tracedRun(request: IRunRequest, run: (trace: TracedSpan | undefined) => Promise<IRunResponse>): Promise<IRunResponse> {
  // Once the tracing is known (loaded or absent), nothing is awaited before the run: no promise more per run.
  const known = tracingNow();
  if (known === null) return run(undefined);
  if (known === undefined) return currentTracing().then((tracing) => (tracing ? spannedRun(tracing, request, run) : run(undefined)));
  return spannedRun(known, request, run);
}

async function spannedRun(tracing: Tracing, request: IRunRequest, run: (trace: TracedSpan | undefined) => Promise<IRunResponse>): Promise<IRunResponse> {
  const span = tracing.start({
    name: `dispatch.run ${request.function ?? ''}`,
    kind: 'server',
    parent: carrierOf(request) ?? 'active',
    attributes: {
      'dispatch.function': request.function ?? '',
      'dispatch.id': request.dispatchId ?? '',
      'dispatch.root_id': request.rootDispatchId ?? '',
      'dispatch.parent_id': request.parentDispatchId ?? '',
      'dispatch.resume': !!request.pollResult,
    },
  });
  try {
    const response = await run(span);
    const status = (response.status ?? Status.UNSPECIFIED) as Status;
    const outcome = response.stateRequired ? 'state_required' : response.poll ? 'poll' : response.exit?.tailCall ? 'tail_call' : 'exit';
    span.setAttributes({ 'dispatch.status': statusName(status), 'dispatch.outcome': outcome });
    if (response.poll) span.setAttributes({ 'dispatch.poll.calls': response.poll.calls?.length ?? 0 });
    const error = response.exit?.result?.error;
    if (error || (status !== Status.OK && status !== Status.UNSPECIFIED)) span.fail(error ? `${error.type ?? ''}: ${error.message ?? ''}` : statusName(status));
    const carrier = span.carrier;
    if (carrier) {
      for (const call of response.poll?.calls ?? []) {
        if (!call.traceparent) Object.assign(call, { traceparent: carrier.traceparent, tracestate: carrier.tracestate ?? '' });
      }
      const tail = response.exit?.tailCall;
      if (tail && !tail.traceparent) Object.assign(tail, { traceparent: carrier.traceparent, tracestate: carrier.tracestate ?? '' });
    }
    return response;
  } catch (err) {
    span.fail(err instanceof Error ? err.message : String(err));
    throw err;
  } finally {
    span.end();
  }
}
