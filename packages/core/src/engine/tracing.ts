/**
 * The engine's tracing contract: the engine does no I/O, so it only tells a
 * tracer it is given (`EngineOptions.tracer`, implemented in `trace/` with
 * OpenTelemetry when it is installed) when a durable await starts and ends,
 * and carries the trace context the tracer answers on the calls it makes.
 * @module
 */

/**
 * A W3C trace context (https://www.w3.org/TR/trace-context/), as carried on
 * `Call.traceparent`/`tracestate` and `RunRequest.traceparent`/`tracestate`.
 *
 * @example
 * ```ts
 * const carrier: TraceCarrier = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
 * ```
 */
export interface TraceCarrier {
  readonly traceparent: string;
  readonly tracestate?: string;
}

/** A traced durable operation: the context its call carries, and its end. */
export interface OperationTrace {
  /** The operation's context: a call made for it carries this one. */
  readonly carrier: TraceCarrier | undefined;
  /** The operation's outcome reached the function (`error` when it failed). */
  end(error?: unknown): void;
  /**
   * The execution left memory while waiting (evicted from the warm cache, or
   * not kept): the outcome will reach a replay of it, so the span ends now.
   */
  detach(): void;
}

/** What the engine reports to a tracer (`EngineOptions.tracer`). */
export interface EngineTracer {
  /**
   * A durable await starts (a call or a sleep, not one replayed from the
   * journal) during the run `run` (the token given to `Engine.run`).
   */
  operation(run: unknown, info: { kind: 'call' | 'sleep'; name: string; dispatchId: string; position: number }): OperationTrace | undefined;
  /** The context of the run `run`, carried by calls the function dispatches (fan-out). */
  carrier(run: unknown): TraceCarrier | undefined;
}
