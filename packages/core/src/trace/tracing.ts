/**
 * OpenTelemetry tracing, when `@opentelemetry/api` is installed (an optional
 * peer dependency): loaded lazily by {@link loadTracing}; without it, every
 * function here does nothing and nothing fails. Spans go to whatever tracer
 * provider the app registered (none registered: no spans, but the W3C trace
 * context still passes through).
 *
 * The trace context travels as W3C `traceparent`/`tracestate` on
 * `Call` and `RunRequest` (extension fields 110 and 111), written and read
 * here, so that no propagator needs to be registered.
 * @module
 */
import type { TraceCarrier } from '../engine/tracing.js';

export type { TraceCarrier } from '../engine/tracing.js';

/** The parts of `@opentelemetry/api` used here (its types stay out of ours: it is optional). */
interface OtelContext {
  readonly __otelContext?: never;
}
interface OtelSpanContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote?: boolean;
  traceState?: { serialize(): string };
}
interface OtelSpan {
  spanContext(): OtelSpanContext;
  setAttributes(attributes: SpanAttributes): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
}
interface OtelApi {
  trace: {
    getTracer(name: string, version?: string): {
      startSpan(name: string, options: { kind: number; attributes?: SpanAttributes }, context: OtelContext): OtelSpan;
    };
    setSpanContext(context: OtelContext, spanContext: OtelSpanContext): OtelContext;
    isSpanContextValid(spanContext: OtelSpanContext): boolean;
    /** @opentelemetry/api 1.0 and later: the registered provider (a proxy whose delegate is the SDK's). */
    getTracerProvider?(): { getDelegateTracer?(name: string): unknown } | undefined;
    getSpanContext?(context: OtelContext): OtelSpanContext | undefined;
  };
  context: { active(): OtelContext };
  ROOT_CONTEXT: OtelContext;
  createTraceState?(raw?: string): { serialize(): string };
}

/**
 * Attributes of a span.
 * @example
 * const a: SpanAttributes = { 'dispatch.function': 'charge', 'dispatch.run': 2 };
 */
export type SpanAttributes = Record<string, string | number | boolean>;

/**
 * A span's kind, as OpenTelemetry names them.
 * @example
 * const kind: SpanKindName = 'client';
 */
export type SpanKindName = 'internal' | 'server' | 'client' | 'producer' | 'consumer';

const KIND: Record<SpanKindName, number> = { internal: 0, server: 1, client: 2, producer: 3, consumer: 4 };
const STATUS_ERROR = 2;

/**
 * What {@link Tracing.start} starts.
 * @example
 * const o: StartSpanOptions = { name: 'dispatch.run charge', kind: 'server', parent: { traceparent } };
 */
export interface StartSpanOptions {
  name: string;
  kind: SpanKindName;
  /** The parent: a carried context, `'active'` (the app's active context), or none (a new trace). */
  parent?: TraceCarrier | 'active' | undefined;
  attributes?: SpanAttributes;
  /** The instrumentation scope. Default `@dispatch/core`. */
  tracer?: string;
}

/**
 * A started span.
 * @example
 * const span = tracing.start({ name: 'work', kind: 'internal' });
 * try { ... } catch (err) { span.fail(String(err)); } finally { span.end(); }
 */
export interface TracedSpan {
  /** Its context as W3C headers, to carry to its children (undefined when no trace is active). */
  readonly carrier: TraceCarrier | undefined;
  setAttributes(attributes: SpanAttributes): void;
  /** Marks the span as failed, with a message. */
  fail(message: string): void;
  end(): void;
}

/**
 * Spans through `@opentelemetry/api` ({@link loadTracing}).
 * @example
 * const tracing = await loadTracing();
 * const span = tracing?.start({ name: 'dispatch.attempt charge', kind: 'client', parent: carrier });
 */
export interface Tracing {
  start(options: StartSpanOptions): TracedSpan;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;

/**
 * Parses a W3C `traceparent` (version 00 and later): the trace ID, parent span
 * ID and flags, or undefined when it is malformed or all zeros.
 * @example
 * parseTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'); // { traceId: '0af7…', spanId: 'b7ad…', traceFlags: 1 }
 */
export function parseTraceparent(value: string): { traceId: string; spanId: string; traceFlags: number } | undefined {
  const m = TRACEPARENT.exec(value.trim());
  if (!m || m[1] === 'ff') return undefined;
  const [, version, traceId, spanId, flags] = m as unknown as [string, string, string, string, string];
  if (version === '00' && value.trim().length !== 55) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, traceFlags: Number.parseInt(flags, 16) };
}

/** A span context as the W3C headers that carry it. */
function carrierOfSpanContext(sc: OtelSpanContext): TraceCarrier {
  const traceparent = `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
  const tracestate = sc.traceState?.serialize();
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

/** What a span that records nothing does. */
const NO_SPAN = { setAttributes() {}, fail() {}, end() {} } as const;

class OtelTracing implements Tracing {
  constructor(private readonly api: OtelApi) {}

  #parent(parent: StartSpanOptions['parent']): OtelContext {
    const api = this.api;
    if (parent === 'active') return api.context.active();
    if (!parent) return api.ROOT_CONTEXT;
    const p = parseTraceparent(parent.traceparent);
    if (!p) return api.ROOT_CONTEXT;
    const sc: OtelSpanContext = { ...p, isRemote: true };
    if (parent.tracestate && api.createTraceState) sc.traceState = api.createTraceState(parent.tracestate);
    return api.trace.setSpanContext(api.ROOT_CONTEXT, sc);
  }

  /**
   * Never throws: tracing must not break a run. Should the API fail, the
   * span does nothing and its children keep the parent's context.
   */
  start(options: StartSpanOptions): TracedSpan {
    try {
      return this.#start(options);
    } catch {
      const carrier = options.parent && options.parent !== 'active' ? options.parent : undefined;
      return { carrier, setAttributes() {}, fail() {}, end() {} };
    }
  }

  #start(options: StartSpanOptions): TracedSpan {
    const api = this.api;
    const name = options.tracer ?? '@dispatch/core';
    // No tracer provider registered (the API installed, no SDK): the span would be a non-recording one that
    // carries its parent's context and does nothing else. The same carrier, without the span (two per run).
    const provider = api.trace.getTracerProvider?.();
    const delegate = typeof provider?.getDelegateTracer === 'function' ? provider.getDelegateTracer(name) : null;
    if (delegate === undefined && api.trace.getSpanContext) {
      const sc = api.trace.getSpanContext(this.#parent(options.parent));
      return { carrier: sc && api.trace.isSpanContextValid(sc) ? carrierOfSpanContext(sc) : undefined, ...NO_SPAN };
    }
    const tracer = (delegate as ReturnType<OtelApi['trace']['getTracer']> | null) ?? api.trace.getTracer(name);
    const span = tracer.startSpan(
      options.name,
      options.attributes ? { kind: KIND[options.kind], attributes: options.attributes } : { kind: KIND[options.kind] },
      this.#parent(options.parent),
    );
    const sc = span.spanContext();
    const carrier = api.trace.isSpanContextValid(sc) ? carrierOfSpanContext(sc) : undefined;
    const safely = (f: () => void) => {
      try {
        f();
      } catch {
        // a failing tracer provider must not break the run
      }
    };
    return {
      carrier,
      setAttributes: (attributes) => safely(() => span.setAttributes(attributes)),
      fail: (message) => safely(() => span.setStatus({ code: STATUS_ERROR, message })),
      end: () => safely(() => span.end()),
    };
  }
}

/** The optional peer dependency. */
const OTEL_API: string = '@opentelemetry/api';

let loaded: Tracing | null | undefined;
let loading: Promise<Tracing | null> | undefined;

/**
 * Loads `@opentelemetry/api` once: the {@link Tracing} over it, or null when
 * it is not installed (tracing is then off; nothing fails).
 * @example
 * const tracing = await loadTracing();
 * if (tracing) console.log('spans go to the registered tracer provider');
 */
export function loadTracing(): Promise<Tracing | null> {
  if (loaded !== undefined) return Promise.resolve(loaded);
  // The name in a variable: a bundler must not fail on an optional package the app did not install.
  const optionalPeer = OTEL_API;
  loading ??= import(optionalPeer).then(
    (mod) => {
      // Named exports (CommonJS through Node's ESM loader, or the ESM build), else the CommonJS exports as `default`.
      const ns = mod as unknown as Partial<OtelApi> & { default?: Partial<OtelApi> };
      const pick = <K extends keyof OtelApi>(key: K): OtelApi[K] | undefined => ns[key] ?? ns.default?.[key];
      const api = { trace: pick('trace'), context: pick('context'), ROOT_CONTEXT: pick('ROOT_CONTEXT'), createTraceState: pick('createTraceState') };
      const usable = typeof api.trace?.getTracer === 'function' && typeof api.trace.setSpanContext === 'function' && !!api.context && !!api.ROOT_CONTEXT;
      loaded = usable ? new OtelTracing(api as OtelApi) : null;
      return loaded;
    },
    () => {
      loaded = null;
      return null;
    },
  );
  return loading;
}

/**
 * The tracing once {@link loadTracing} has settled: the {@link Tracing}, null
 * without `@opentelemetry/api`, undefined before it was loaded.
 * @example
 * const tracing = tracingNow() ?? null;
 */
export function tracingNow(): Tracing | null | undefined {
  return loaded;
}

/** The tracing, loading it the first time (resolves at once afterwards). */
export async function currentTracing(): Promise<Tracing | null> {
  return loaded !== undefined ? loaded : loadTracing();
}

/**
 * The trace context carried by a message (`Call`, `RunRequest`), if any.
 * @example
 * carrierOf(runRequest)?.traceparent;
 */
export function carrierOf(m: { traceparent?: string | null; tracestate?: string | null }): TraceCarrier | undefined {
  if (!m.traceparent) return undefined;
  return m.tracestate ? { traceparent: m.traceparent, tracestate: m.tracestate } : { traceparent: m.traceparent };
}
