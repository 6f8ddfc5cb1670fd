/**
 * What the dashboard's JSON API answers (its types are in `api-types.ts`):
 * stored calls, attempts, values, errors and journals turned into plain data
 * for reading. Values are decoded with the SDK's serde; what JSON cannot
 * say exactly is converted and noted, and what cannot be decoded at all
 * (another SDK's values and states) says so.
 * @module
 */
import { limitWaitText } from '../store/limits.js';
import { OpaqueValue } from '@dispatch/core/protocol';
import { anyTypeUrl, decodeArgs, decodeError, decodeValue, proto, statusName } from '@dispatch/core/protocol';
import type { ConcurrencySnapshot } from '../run/concurrency.js';
import { runLabels } from '../store/policy.js';
import type { AttemptRecord, CallRecord, CallState, CoroutineState, Store } from '../store/store.js';
import type { AttemptView, CallView, ErrorView, JournalView, OperationView, RunState, RunSummary, TreeNode, ValueView } from './api-types.js';
import { redactText } from '../redact.js';

/** Longest JSON text shown for one value; longer text is cut and says so. */
export const MAX_VALUE_TEXT = 100_000;
/** Most calls shown in one run's tree. */
export const MAX_TREE_NODES = 500;

// The wire's RunState is the store's CallState: this stops compiling when they part.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Expect<T extends true> = T;
export type RunStateIsCallState = Expect<Same<RunState, CallState>>;

const PICKLED = 'dispatch.sdk.python.v1.Pickled';

function opaqueNote(typeUrl: string, bytes: number): string {
  const name = proto.typeNameOf(typeUrl) || '(no type)';
  if (name === PICKLED) return `a Python pickle (${bytes} bytes, ${typeUrl}): written by the Python SDK, not readable here`;
  return `a value of type ${name} (${bytes} bytes, ${typeUrl || 'no type URL'}) that this scheduler cannot decode (another SDK's type)`;
}

class Jsonifier {
  readonly notes = new Set<string>();
  readonly #seen = new WeakSet<object>();

  convert(v: unknown): unknown {
    switch (typeof v) {
      case 'undefined':
        this.notes.add('undefined shown as null');
        return null;
      case 'bigint':
        this.notes.add('bigint shown as text ending in n');
        return `${v}n`;
      case 'number':
        if (Number.isFinite(v)) return Object.is(v, -0) ? 0 : v;
        this.notes.add('NaN and infinities shown as text');
        return String(v);
      case 'string':
      case 'boolean':
        return v;
      case 'function':
      case 'symbol':
        this.notes.add(`a ${typeof v} shown as text`);
        return String(v);
    }
    if (v === null) return null;
    const o = v as object;
    if (this.#seen.has(o)) {
      this.notes.add('repeated references shown as "[circular]"');
      return '[circular]';
    }
    this.#seen.add(o);
    try {
      return this.#object(o);
    } finally {
      this.#seen.delete(o);
    }
  }

  #object(o: object): unknown {
    if (o instanceof OpaqueValue) {
      this.notes.add('values of other SDKs shown as {"$opaque": type}');
      return { $opaque: o.typeName, bytes: o.value.length };
    }
    if (o instanceof Date) {
      this.notes.add('Date shown as ISO 8601 text');
      return Number.isNaN(o.getTime()) ? 'Invalid Date' : o.toISOString();
    }
    if (o instanceof Uint8Array) {
      this.notes.add('bytes shown as {"$bytes": base64}');
      return { $bytes: Buffer.from(o).toString('base64') };
    }
    if (o instanceof Map) {
      this.notes.add('Map shown as {"$map": [[key, value]...]}');
      return { $map: [...o].map(([k, x]) => [this.convert(k), this.convert(x)]) };
    }
    if (o instanceof Set) {
      this.notes.add('Set shown as {"$set": [...]}');
      return { $set: [...o].map((x) => this.convert(x)) };
    }
    if (o instanceof Error) {
      this.notes.add('errors shown as {"$error": name, "message": ...}');
      const out: Record<string, unknown> = { $error: o.name, message: o.message };
      for (const [k, x] of Object.entries(o)) out[k] = this.convert(x);
      if ('cause' in o && o.cause !== undefined) out.cause = this.convert(o.cause);
      return out;
    }
    if (Array.isArray(o)) return o.map((x) => this.convert(x));
    const proto_ = Object.getPrototypeOf(o);
    if (proto_ !== Object.prototype && proto_ !== null) {
      const name = (proto_?.constructor as { name?: string } | undefined)?.name;
      if (name) this.notes.add(`an instance of ${name} shown by its fields`);
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) {
      if (x === undefined) {
        this.notes.add('fields holding undefined left out');
        continue;
      }
      out[k] = this.convert(x);
    }
    return out;
  }
}

/**
 * A decoded value as pretty JSON, with notes on what JSON could not say.
 * @example
 * jsonView(new Map([['a', 1n]])); // { kind: 'json', text: '{\n  "$map": …', note: 'bigint shown as…' }
 */
export function jsonView(value: unknown): ValueView {
  if (value instanceof OpaqueValue) return { kind: 'opaque', note: opaqueNote(value.typeUrl, value.value.length) };
  const j = new Jsonifier();
  let text = JSON.stringify(j.convert(value), null, 2) ?? 'null';
  if (text.length > MAX_VALUE_TEXT) {
    text = `${text.slice(0, MAX_VALUE_TEXT)}…`;
    j.notes.add(`cut at ${MAX_VALUE_TEXT} characters`);
  }
  const view: ValueView = { kind: 'json', text };
  if (j.notes.size > 0) view.note = [...j.notes].join('; ');
  return view;
}

/**
 * A stored `Any` for reading: a call's input (`args`: its argument list) or
 * an output.
 * @example
 * valueView(call.input, 'args'); // { kind: 'json', text: '[\n  "user_123"\n]' }
 */
export function valueView(any: proto.IAny | null | undefined, as: 'args' | 'value'): ValueView {
  if (!any) return { kind: 'none', note: as === 'args' ? 'no input' : 'no output' };
  const typeUrl = anyTypeUrl(any);
  const bytes = any.value?.length ?? 0;
  try {
    if (as === 'args') {
      const args = decodeArgs(any);
      if (args.length === 1 && args[0] instanceof OpaqueValue) return { kind: 'opaque', note: opaqueNote(typeUrl, bytes) };
      return jsonView(args);
    }
    const value = decodeValue(any);
    if (value === undefined) return { kind: 'none', note: 'returned nothing (undefined)' };
    return jsonView(value);
  } catch (err) {
    return { kind: 'opaque', note: `cannot decode the ${typeUrl || 'value'} (${bytes} bytes): ${(err as Error).message}` };
  }
}

/**
 * An `Error` message for reading: type, message, stack and own fields.
 * @example
 * errorView({ type: 'TemporaryError', message: 'smtp down' }); // { type: 'TemporaryError', message: 'smtp down' }
 */
export function errorView(error: proto.IError): ErrorView {
  const view: ErrorView = { type: error.type || 'Error', message: redactText(error.message ?? '') };
  if (error.traceback && error.traceback.length > 0) view.stack = redactText(Buffer.from(error.traceback).toString('utf8'));
  try {
    const decoded = decodeError(error) as Error & { cause?: unknown };
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(decoded)) if (k !== 'stack' && k !== 'message' && k !== 'name') fields[k] = v;
    if (decoded.cause !== undefined) fields.cause = decoded.cause;
    if (Object.keys(fields).length > 0) view.fields = jsonView(fields);
  } catch {
    // type, message and stack remain
  }
  return view;
}

/**
 * A row of the runs list.
 * @example
 * const rows = (await scheduler.list({})).calls; // or store.listCalls
 */
export function runSummary(rec: CallRecord): RunSummary {
  return {
    id: rec.id,
    function: rec.function,
    endpoint: rec.endpoint,
    state: rec.state,
    status: rec.status,
    statusName: statusName(rec.status),
    attempts: rec.attempts,
    resumes: rec.resumes,
    parentId: rec.parentId,
    rootId: rec.rootId,
    createdAt: rec.createdAt,
    updatedAt: rec.updatedAt,
    finishedAt: rec.finishedAt,
    error: rec.error ? redactText(`${rec.error.type || 'Error'}: ${rec.error.message ?? ''}`) : null,
  };
}

/** A run for reading, with its label (`attempt 2`, `resume 1`: see `runLabels`). */
export function attemptView(a: AttemptRecord, label: string): AttemptView {
  return {
    number: a.number,
    label,
    startedAt: a.startedAt,
    durationMs: a.durationMs,
    status: a.status,
    statusName: statusName(a.status),
    outcome: a.outcome,
    resume: a.resume,
    error: a.error ? errorView(a.error) : null,
  };
}

const KINDS: Record<number, OperationView['kind']> = {
  [proto.OperationKind.OPERATION_KIND_CALL]: 'call',
  [proto.OperationKind.OPERATION_KIND_SLEEP]: 'sleep',
  [proto.OperationKind.OPERATION_KIND_STEP]: 'step',
  [proto.OperationKind.OPERATION_KIND_DISPATCH]: 'dispatch',
  [proto.OperationKind.OPERATION_KIND_SIGNAL_WAIT]: 'signal-wait',
  [proto.OperationKind.OPERATION_KIND_SIGNAL_SEND]: 'signal-send',
};

/**
 * The journal of a suspended call of this SDK (`dispatch.typescript.v1.Journal`
 * in `typed_coroutine_state`): every durable operation, done or waited on,
 * with the child call running it. Other states are described, not decoded.
 * @example
 * const view = journalView(rec.coroutineState!, children);
 */
export function journalView(state: CoroutineState, children: CallRecord[]): JournalView {
  if (state.kind === 'bytes') {
    return {
      typeUrl: '',
      bytes: state.value.length,
      note: `an untyped coroutine_state of ${state.value.length} bytes (another SDK, such as Python's): not readable here`,
    };
  }
  const view: JournalView = { typeUrl: state.typeUrl, bytes: state.value.length };
  if (proto.typeNameOf(state.typeUrl) !== 'dispatch.typescript.v1.Journal') {
    view.note = `a state of type ${proto.typeNameOf(state.typeUrl) || state.typeUrl} (${state.value.length} bytes) written by another SDK: not readable here`;
    return view;
  }
  let journal: proto.IJournal;
  try {
    journal = proto.Journal.decode(state.value);
  } catch (err) {
    view.note = `the journal cannot be read: ${(err as Error).message}`;
    return view;
  }
  const epoch = BigInt(journal.epoch ?? 0);
  const byPosition = new Map<number, CallRecord>();
  for (const c of children) {
    if (c.correlationId !== null && c.correlationId >> 32n === epoch) byPosition.set(Number(c.correlationId & 0xffffffffn), c);
  }
  const outcomes = new Map<number, proto.IOutcome>();
  for (const o of journal.outcomes ?? []) outcomes.set(o.position ?? 0, o);
  view.function = journal.function ?? '';
  view.outcomes = journal.outcomes?.length ?? 0;
  view.operations = (journal.operations ?? []).map((op, position) => {
    const kind = KINDS[op.kind ?? 0] ?? 'unknown';
    const o = outcomes.get(position);
    const v: OperationView = { position, kind, name: op.name ?? '', state: o ? (o.error ? 'failed' : 'done') : 'waiting' };
    if (kind === 'sleep') v.deadline = Number(proto.toBigInt(op.deadlineMs ?? 0));
    if (o?.error) v.error = errorView(o.error);
    else if (o && kind !== 'dispatch' && kind !== 'sleep') v.result = valueView(o.output, 'value');
    if (o?.dispatchIds?.length) v.dispatchIds = [...o.dispatchIds];
    const child = byPosition.get(position);
    if (child) v.child = { id: child.id, state: child.state, statusName: statusName(child.status) };
    return v;
  });
  return view;
}

/**
 * The tree of calls of a run, from its root, breadth first, at most
 * {@link MAX_TREE_NODES} calls (`truncated` says when there were more).
 * @example
 * const { tree, truncated } = await runTree(store, rec.rootId);
 */
export async function runTree(store: Store, rootId: string): Promise<{ tree: TreeNode | null; truncated: boolean }> {
  const root = await store.getCall(rootId);
  if (!root) return { tree: null, truncated: false };
  const node = (r: CallRecord): TreeNode => ({
    id: r.id,
    function: r.function,
    state: r.state,
    statusName: statusName(r.status),
    attempts: r.attempts,
    resumes: r.resumes,
    createdAt: r.createdAt,
    finishedAt: r.finishedAt,
    children: [],
  });
  const tree = node(root);
  let count = 1;
  let truncated = false;
  const queue: TreeNode[] = [tree];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    const ids = await store.getChildren(parent.id);
    for (const id of ids) {
      if (count >= MAX_TREE_NODES) {
        truncated = true;
        break;
      }
      const rec = await store.getCall(id);
      if (!rec) continue;
      const child = node(rec);
      parent.children.push(child);
      queue.push(child);
      count++;
    }
    if (truncated) break;
  }
  return { tree, truncated };
}

/**
 * Everything about one call for the run page.
 * @example
 * const view = await callView(store, rec, scheduler.concurrency(rec.endpoint, rec.function));
 */
export async function callView(store: Store, rec: CallRecord, concurrency: ConcurrencySnapshot | null): Promise<CallView> {
  const [attempts, childIds, signals] = await Promise.all([store.getAttempts(rec.id), store.getChildren(rec.id), store.getSignals(rec.id)]);
  let journal: JournalView | null = null;
  if (rec.coroutineState) {
    const children = (await Promise.all(childIds.map((id) => store.getCall(id)))).filter((c): c is CallRecord => c !== null);
    journal = journalView(rec.coroutineState, children);
  }
  const labels = runLabels(attempts.map((a) => a.resume));
  const now = Date.now();
  const wait =
    store.limitWait && rec.state === 'pending' && rec.dueAt !== null && rec.dueAt <= now
      ? await store.limitWait({ endpoint: rec.endpoint, function: rec.function, limitKey: rec.limitKey }, now)
      : null;
  return {
    ...runSummary(rec),
    originalFunction: rec.originalFunction,
    version: rec.version,
    idempotencyKey: rec.idempotencyKey,
    correlationId: rec.correlationId === null ? null : rec.correlationId.toString(),
    expiresAt: rec.expiresAt,
    nextRunAt: rec.state === 'pending' || rec.state === 'suspended' ? rec.dueAt : null,
    readyResults: rec.ready,
    minResults: rec.minResults,
    maxResults: rec.maxResults,
    input: valueView(rec.input, 'args'),
    output: rec.state === 'succeeded' ? valueView(rec.output, 'value') : null,
    failure: rec.error ? errorView(rec.error) : null,
    attemptHistory: attempts.map((a, i) => attemptView(a, labels[i] ?? '')),
    journal,
    concurrency,
    waitingForSignals: signals.waitingFor,
    signals: signals.signals.map((g) => ({ name: g.name, payload: valueView(g.payload, 'value'), sentAt: g.sentAt, consumedAt: g.consumedAt })),
    limitKey: rec.limitKey || null,
    waitingOn: wait ? limitWaitText(wait, rec.function) : null,
  };
}
