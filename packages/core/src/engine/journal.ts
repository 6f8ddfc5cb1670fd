/**
 * The journal: the state of a suspended execution, carried in
 * `Poll.typed_coroutine_state` as a `dispatch.typescript.v1.Journal`.
 *
 * It holds the function's name and input once, then every durable operation
 * in start order and every outcome in delivery order, grouped in rounds.
 * Encoded messages only grow by appending repeated fields, so the bytes of a
 * later state start with the bytes of an earlier one and a delta is the
 * encoding of the new entries alone (PROTOCOL extension `Poll.state_is_delta`).
 *
 * Limits: {@link MAX_JOURNAL_BYTES} by default (configurable per engine).
 * @module
 */
import * as proto from '../protocol/proto.js';
import type { IAny, IError, IJournal, IOperation, IOutcome } from '../protocol/proto.js';
import { OperationKind } from '../protocol/proto.js';
import { IncompatibleStateError, PermanentError } from '../status/errors.js';

/**
 * Format version written into every journal; other versions are refused (INCOMPATIBLE_STATE).
 * @example if (journal.version !== JOURNAL_VERSION) refuse();
 */
export const JOURNAL_VERSION = 1;
/**
 * Type URL of the journal in `typed_coroutine_state`.
 * @example const ours = poll.typedCoroutineState?.typeUrl === JOURNAL_TYPE_URL;
 */
export const JOURNAL_TYPE_URL = proto.Journal.typeUrl;
/**
 * Default limit of an encoded journal: 16 MiB.
 * @example new Dispatch({ maxJournalBytes: MAX_JOURNAL_BYTES * 4 })
 */
export const MAX_JOURNAL_BYTES = 16 * 1024 * 1024;

/** One durable operation. */
export interface Operation {
  kind: OperationKind;
  name: string;
  inputHash: number;
  deadlineMs: number;
}

/** One recorded outcome. */
export interface Outcome {
  position: number;
  output?: IAny | null | undefined;
  error?: IError | null | undefined;
  dispatchIds?: string[] | undefined;
  endOfRound: boolean;
  opsStarted: number;
}

/**
 * A journal past its size limit: the function fails with PERMANENT_ERROR
 * (retrying would only grow it again).
 */
export class JournalTooLargeError extends PermanentError {}

/** 32-bit FNV-1a of bytes (input hashes). */
export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i] as number;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/** The mutable journal of one execution, with incremental encoding. */
export class Journal {
  readonly epoch: number;
  readonly function: string;
  readonly input: IAny;
  readonly ops: Operation[] = [];
  readonly outcomes: Outcome[] = [];
  readonly polls: number[] = [];
  #chunks: Uint8Array[] = [];
  #length = 0;
  #emittedOps = 0;
  #emittedOutcomes = 0;
  #emittedPolls = 0;

  constructor(fn: string, input: IAny, epoch: number) {
    this.function = fn;
    this.input = input;
    this.epoch = epoch >>> 0;
  }

  /**
   * The journal in a PollResult's `typed_coroutine_state`, for function `fn`;
   * throws an IncompatibleStateError saying why the state cannot be used.
   */
  static fromState(state: IAny | null | undefined, fn: string): Journal {
    if (!state || (state.typeUrl ?? '') === '') {
      throw new IncompatibleStateError('the PollResult carries no typed_coroutine_state (this SDK never emits the deprecated coroutine_state)');
    }
    if (proto.typeNameOf(state.typeUrl ?? '') !== proto.Journal.fullName) {
      throw new IncompatibleStateError(`the state has type URL ${JSON.stringify(state.typeUrl)}, expected ${JOURNAL_TYPE_URL}`);
    }
    const journal = Journal.decode(state.value ?? new Uint8Array(0));
    if (journal.function !== fn) {
      throw new IncompatibleStateError(`the state belongs to function ${JSON.stringify(journal.function)}, not ${JSON.stringify(fn)}`);
    }
    return journal;
  }

  /** Rebuilds a journal from state bytes; throws an IncompatibleStateError saying why they cannot be used. */
  static decode(bytes: Uint8Array): Journal {
    let msg: IJournal;
    try {
      msg = proto.Journal.decode(bytes);
    } catch (err) {
      throw new IncompatibleStateError(`the state is not a readable journal (${(err as Error).message})`);
    }
    if (msg.version !== JOURNAL_VERSION) {
      throw new IncompatibleStateError(`the state was written by journal format version ${msg.version}; this SDK reads version ${JOURNAL_VERSION}`);
    }
    const j = new Journal(msg.function ?? '', msg.input ?? { typeUrl: '', value: new Uint8Array(0) }, msg.epoch ?? 0);
    for (const op of msg.operations ?? []) {
      j.ops.push({
        kind: op.kind ?? OperationKind.OPERATION_KIND_UNSPECIFIED,
        name: op.name ?? '',
        inputHash: op.inputHash ?? 0,
        deadlineMs: Number(proto.toBigInt(op.deadlineMs ?? 0)),
      });
    }
    for (const o of msg.outcomes ?? []) {
      const position = o.position ?? 0;
      if (position >= j.ops.length) throw new IncompatibleStateError(`the journal records an outcome for operation ${position} of ${j.ops.length}`);
      j.outcomes.push({
        position,
        output: o.output,
        error: o.error,
        dispatchIds: o.dispatchIds?.length ? [...o.dispatchIds] : undefined,
        endOfRound: o.endOfRound ?? false,
        opsStarted: o.opsStarted ?? 0,
      });
    }
    j.polls.push(...(msg.polls ?? []));
    j.#chunks = [bytes];
    j.#length = bytes.length;
    j.#emittedOps = j.ops.length;
    j.#emittedOutcomes = j.outcomes.length;
    j.#emittedPolls = j.polls.length;
    return j;
  }

  /** Encoded length of everything emitted so far. */
  get emittedLength(): number {
    return this.#length;
  }

  /** The first bytes of the encoding (version, epoch, function), identifying the execution. */
  get header(): Uint8Array {
    const first = this.#chunks[0];
    return first ? first.subarray(0, Math.min(first.length, 16)) : new Uint8Array(0);
  }

  /**
   * Encodes what was added since the last call and appends it to the
   * emitted state; returns the delta.
   */
  emit(): Uint8Array {
    const msg: IJournal = {};
    if (this.#length === 0) {
      msg.version = JOURNAL_VERSION;
      msg.epoch = this.epoch;
      msg.function = this.function;
      msg.input = this.input;
    }
    if (this.ops.length > this.#emittedOps) {
      msg.operations = this.ops.slice(this.#emittedOps).map(
        (op): IOperation => ({ kind: op.kind, name: op.name, inputHash: op.inputHash, deadlineMs: op.deadlineMs || undefined }),
      );
    }
    if (this.outcomes.length > this.#emittedOutcomes) {
      msg.outcomes = this.outcomes.slice(this.#emittedOutcomes).map(
        (o): IOutcome => ({
          position: o.position,
          output: o.output ?? undefined,
          error: o.error ?? undefined,
          dispatchIds: o.dispatchIds,
          endOfRound: o.endOfRound || undefined,
          opsStarted: o.opsStarted || undefined,
        }),
      );
    }
    if (this.polls.length > this.#emittedPolls) msg.polls = this.polls.slice(this.#emittedPolls);
    const delta = proto.Journal.encode(msg);
    this.#emittedOps = this.ops.length;
    this.#emittedOutcomes = this.outcomes.length;
    this.#emittedPolls = this.polls.length;
    if (delta.length > 0) {
      this.#chunks.push(delta);
      this.#length += delta.length;
    }
    return delta;
  }

  /** The full encoded state (everything emitted), concatenated once. */
  full(): Uint8Array {
    const bytes = concat(this.#chunks, this.#length);
    this.#chunks = bytes.length ? [bytes] : [];
    return bytes;
  }
}
