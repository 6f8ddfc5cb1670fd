/**
 * How the `dispatch` CLI shows calls and values: plain text for people and
 * JSON for scripts (`--json`).
 * @module
 */
import { callStateOf, decodeArgs, decodeValue, OpaqueValue, proto, statusName } from '@dispatch/core/protocol';
import { redactText } from '../redact.js';
import { runLabels } from '../store/policy.js';
import { limitWaitText } from '../store/limits.js';

/**
 * Turns a decoded value into something `JSON.stringify` keeps: bigint as a
 * decimal string, Date as ISO text, Uint8Array as `{ "$bytes": base64 }`, Map
 * as an object (or entries), Set as an array, undefined as null, a value of
 * another SDK as `{ "@type": typeUrl, "$bytes": base64 }`, an Error as its
 * name, message and own fields.
 * @example
 * jsonSafe(new Map([['a', 1n]])); // { a: '1' }
 */
export function jsonSafe(value: unknown, seen = new Set<unknown>()): unknown {
  if (value === undefined || value === null) return null;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value !== 'object') return typeof value === 'function' || typeof value === 'symbol' ? String(value) : value;
  if (seen.has(value)) return '[cycle]';
  seen.add(value);
  try {
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
    if (value instanceof OpaqueValue) return { '@type': value.typeUrl, $bytes: Buffer.from(value.value).toString('base64') };
    if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString('base64') };
    if (value instanceof Map) {
      const entries = [...value.entries()];
      return entries.every(([k]) => typeof k === 'string')
        ? Object.fromEntries(entries.map(([k, v]) => [k, jsonSafe(v, seen)]))
        : entries.map(([k, v]) => [jsonSafe(k, seen), jsonSafe(v, seen)]);
    }
    if (value instanceof Set) return [...value].map((v) => jsonSafe(v, seen));
    if (Array.isArray(value)) return value.map((v) => jsonSafe(v, seen));
    if (value instanceof Error) {
      const out: Record<string, unknown> = { name: value.name, message: value.message };
      for (const [k, v] of Object.entries(value)) if (k !== 'stack') out[k] = jsonSafe(v, seen);
      return out;
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v, seen)]));
  } finally {
    seen.delete(value);
  }
}

/** The decoded JSON-safe value of an `Any` (undefined when absent or empty). */
export function displayValue(any: proto.IAny | null | undefined): unknown {
  if (!any || (!any.typeUrl && !any.value?.length)) return undefined;
  try {
    const value = decodeValue(any);
    return value === undefined ? undefined : jsonSafe(value);
  } catch {
    return jsonSafe(new OpaqueValue(any.typeUrl ?? '', any.value ?? new Uint8Array(0)));
  }
}

/** The decoded argument list of an input `Any`, JSON-safe. */
export function displayArgs(any: proto.IAny | null | undefined): unknown {
  if (!any) return [];
  try {
    return jsonSafe(decodeArgs(any));
  } catch {
    return displayValue(any);
  }
}

/** The name of a call state number (`succeeded`...), or `unknown`. */
export function stateName(n: number | null | undefined): string {
  return callStateOf(n ?? 0) ?? 'unknown';
}

const iso = (t: proto.ITimestamp | null | undefined) => proto.timestampToDate(t)?.toISOString() ?? null;

/** An error as `{ name, message }` (plus its traceback text when asked). */
export function errorJson(error: proto.IError | null | undefined, withTraceback = false): { name: string; message: string; traceback?: string } | null {
  if (!error) return null;
  const out: { name: string; message: string; traceback?: string } = { name: error.type || 'Error', message: redactText(error.message ?? '') };
  if (withTraceback && error.traceback?.length) out.traceback = redactText(new TextDecoder().decode(error.traceback));
  return out;
}

/**
 * A call's state as printed: `pending (concurrency limit 2 of checkout, key u1)`
 * while it is due but waits on a declared limit, else the state's name.
 * @example stateText(info) // 'pending (rate limit 5/s of notify)'
 */
export function stateText(info: proto.ICallInfo): string {
  const name = stateName(info.state);
  return info.limitWait ? `${name} (${limitWaitText(info.limitWait, info.function ?? '')})` : name;
}

/**
 * The machine-readable form of a call (`dispatch get --json`).
 * @example
 * console.log(JSON.stringify(callInfoJson(await client.get(id)), null, 2));
 */
export function callInfoJson(info: proto.ICallInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {
    dispatchId: info.dispatchId ?? '',
    function: info.function ?? '',
    endpoint: info.endpoint ?? '',
    state: stateName(info.state),
    status: statusName(info.status ?? 0),
    attempts: info.attempts ?? 0,
    resumes: info.resumes ?? 0,
    parent: info.parentDispatchId || null,
    root: info.rootDispatchId || null,
    children: info.children ?? [],
    createdAt: iso(info.creationTime),
    updatedAt: iso(info.updateTime),
    finishedAt: iso(info.finishTime),
    expiresAt: iso(info.expirationTime),
    nextRunAt: iso(info.nextRunTime),
    limitKey: info.limitKey || null,
    waitingOn: info.limitWait ? limitWaitText(info.limitWait, info.function ?? '') : null,
    input: displayArgs(info.input),
    output: displayValue(info.output) ?? null,
    error: errorJson(info.error, true),
  };
  if (info.originalFunction && info.originalFunction !== info.function) out.originalFunction = info.originalFunction;
  if (info.idempotencyKey) out.idempotencyKey = info.idempotencyKey;
  if (info.attemptHistory) {
    out.attemptHistory = info.attemptHistory.map((a) => ({
      number: a.number ?? 0,
      startedAt: iso(a.startTime),
      durationMs: proto.durationToMs(a.duration) ?? 0,
      status: statusName(a.status ?? 0),
      outcome: a.outcome ?? '',
      resume: !!a.resume,
      error: errorJson(a.error),
    }));
  }
  if (info.waitingForSignals?.length) out.waitingForSignals = [...info.waitingForSignals];
  if (info.signals?.length) {
    out.signals = info.signals.map((g) => ({
      name: g.name ?? '',
      payload: displayValue(g.payload) ?? null,
      sentAt: iso(g.sentTime),
      consumedAt: iso(g.consumedTime),
    }));
  }
  if (info.concurrency) {
    const c = info.concurrency;
    out.concurrency = { limit: Math.floor(c.limit ?? 0), inFlight: c.inFlight ?? 0, min: c.min ?? 0, max: c.max ?? 0 };
  }
  return out;
}

/** One line of JSON text, cut at `max` characters. */
export function shortJson(value: unknown, max = 120): string {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A duration for people: `850 ms`, `3.2 s`, `4 m 10 s`, `2 h 5 m`. */
export function humanMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} m ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} m`;
}

/**
 * A duration as a flag would take it: the largest unit that writes it
 * exactly (`100ms`, `60s`, `1h`, `30d`).
 * @example
 * durationText(3_600_000); // '1h'
 */
export function durationText(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A left-aligned text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/**
 * The human-readable form of a call (`dispatch get`).
 */
export function formatCallInfo(info: proto.ICallInfo): string {
  const j = callInfoJson(info);
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`  ${label.padEnd(12)}${value}`);
  lines.push(`${j.function} ${j.dispatchId}`);
  const status = info.state === 4 || info.state === 5 || info.state === 6 ? ` (${j.status})` : '';
  row('state', `${stateText(info)}${status}`);
  if (info.limitKey) row('limit key', info.limitKey);
  row('attempts', String(j.attempts));
  row('resumes', String(j.resumes));
  row('endpoint', String(j.endpoint));
  if (j.originalFunction) row('started as', String(j.originalFunction));
  const created = proto.timestampToDate(info.creationTime);
  const finished = proto.timestampToDate(info.finishTime);
  row('created', `${j.createdAt}${created && finished ? ` (ran ${humanMs(finished.getTime() - created.getTime())})` : ''}`);
  if (j.finishedAt) row('finished', String(j.finishedAt));
  else if (j.nextRunAt) row('next run', String(j.nextRunAt));
  row('expires', String(j.expiresAt));
  row('parent', String(j.parent ?? '-'));
  if (j.root && j.root !== j.dispatchId) row('root', String(j.root));
  const children = j.children as string[];
  if (children.length) row('children', `${children.length}: ${children.slice(0, 5).join(', ')}${children.length > 5 ? ', …' : ''}`);
  row('input', shortJson(j.input, 200));
  if (j.output !== null) row('output', shortJson(j.output, 200));
  const error = j.error as { name: string; message: string } | null;
  if (error) row('error', `${error.name}: ${error.message}`);
  const waiting = j.waitingForSignals as string[] | undefined;
  if (waiting) row('waits for', waiting.map((n) => `signal ${n}`).join(', '));
  const signals = (j.signals as Array<{ name: string; payload: unknown; sentAt: string | null; consumedAt: string | null }> | undefined) ?? [];
  for (const g of signals) row('signal', `${g.name} ${shortJson(g.payload, 120)} sent ${g.sentAt}${g.consumedAt ? `, received ${g.consumedAt}` : ', kept until it waits'}`);
  const c = j.concurrency as { limit: number; inFlight: number; min: number; max: number } | undefined;
  if (c) row('concurrency', `${c.limit} (${c.inFlight} in flight, bounds ${c.min}..${c.max})`);
  const history = (j.attemptHistory as Array<Record<string, unknown>> | undefined) ?? [];
  if (history.length) {
    lines.push('  runs:');
    for (const [i, label] of runLabels(history.map((a) => !!a.resume)).entries()) {
      const a = history[i]!;
      const e = a.error as { name: string; message: string } | null;
      lines.push(
        `    ${label.padEnd(11)} ${String(a.startedAt)}  ${humanMs(Number(a.durationMs)).padStart(8)}  ${String(a.status).padEnd(16)} ${String(a.outcome).padEnd(9)}${e ? `  ${e.name}: ${e.message}` : ''}`.trimEnd(),
      );
    }
  }
  return lines.join('\n');
}
