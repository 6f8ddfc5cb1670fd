/**
 * The `dispatch` commands that talk to a running scheduler (`ls`, `get`,
 * `cancel`, `restart`, `call`) and `verification-key`.
 * @module
 */
import { createPublicKey } from 'node:crypto';
import { relative, resolve } from 'node:path';
import { encodeArgs, generateSigningKeyPair, parseDuration, parseSigningKey, parseVerificationKey, privateKeyToPem, proto, publicKeyToBase64, publicKeyToPem, statusName } from '@dispatch/core/protocol';
import { apiClient, type ApiFlags, CLI_DEFAULT_DB, CliError, type CliIO, fromApiError, readStateFile } from './common.js';
import { callInfoJson, displayValue, errorJson, formatCallInfo, humanMs, stateName, table } from './format.js';
import { SchedulerClient } from '../api/scheduler-client.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { CALL_STATES, type CallState } from '../store/store.js';

const print = (io: CliIO, text: string) => io.stdout.write(`${text}\n`);
const printJson = (io: CliIO, value: unknown) => io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

async function api<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw fromApiError(err);
  }
}

/** Flags of `dispatch ls`. */
export interface LsFlags extends ApiFlags {
  state?: string[];
  function?: string;
  limit?: string;
  cursor?: string;
  roots?: boolean;
  json?: boolean;
}

/** `dispatch ls`: lists calls, newest first. */
export async function lsCommand(flags: LsFlags, io: CliIO): Promise<number> {
  const states = (flags.state ?? []).flatMap((s) => s.split(',')).map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const s of states) {
    if (!CALL_STATES.includes(s as CallState)) throw new CliError(`--state must be one of ${CALL_STATES.join(', ')}, got ${JSON.stringify(s)}`, 2);
  }
  const limit = flags.limit === undefined ? 20 : Number(flags.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new CliError(`--limit must be an integer from 1 to 1000, got ${JSON.stringify(flags.limit)}`, 2);
  const client = apiClient(flags, io);
  const page = await api(() =>
    client.list({
      states: states as CallState[],
      limit,
      ...(flags.function ? { function: flags.function } : {}),
      ...(flags.cursor ? { cursor: flags.cursor } : {}),
      ...(flags.roots ? { rootsOnly: true } : {}),
    }),
  );
  if (flags.json) {
    printJson(io, {
      calls: page.calls.map((c) => {
        const j = callInfoJson(c);
        delete j.input;
        delete j.children;
        return j;
      }),
      nextCursor: page.nextCursor,
      counts: page.counts,
    });
    return 0;
  }
  const now = Date.now();
  const rows = page.calls.map((c) => {
    const created = proto.timestampToDate(c.creationTime)?.getTime() ?? now;
    const finished = c.state === 4 || c.state === 5 || c.state === 6;
    return [
      c.dispatchId ?? '',
      c.function ?? '',
      stateName(c.state),
      finished || (c.attempts ?? 0) > 0 ? statusName(c.status ?? 0) : '',
      String(c.attempts ?? 0),
      `${humanMs(now - created)} ago`,
      c.parentDispatchId ? `child of ${c.parentDispatchId}` : '',
    ];
  });
  if (rows.length === 0) print(io, 'no calls match');
  else print(io, table(['DISPATCH ID', 'FUNCTION', 'STATE', 'STATUS', 'ATTEMPTS', 'CREATED', ''], rows));
  const counts = CALL_STATES.filter((s) => page.counts[s] > 0).map((s) => `${page.counts[s]} ${s}`);
  print(io, `\n${counts.length ? counts.join(' · ') : 'no calls'}${page.nextCursor ? `\nmore: dispatch ls --cursor ${page.nextCursor}` : ''}`);
  return 0;
}

/** `dispatch get ID`: everything about one call. */
export async function getCommand(id: string, flags: ApiFlags & { json?: boolean }, io: CliIO): Promise<number> {
  const client = apiClient(flags, io);
  const info = await api(() => client.get(id));
  if (flags.json) printJson(io, callInfoJson(info));
  else print(io, formatCallInfo(info));
  return 0;
}

/** `dispatch cancel ID`: cancels a call and its unfinished descendants. */
export async function cancelCommand(id: string, flags: ApiFlags & { json?: boolean }, io: CliIO): Promise<number> {
  const client = apiClient(flags, io);
  const n = await api(() => client.cancel(id));
  if (flags.json) printJson(io, { dispatchId: id, cancelled: n });
  else if (n === 0) print(io, `${id} had already finished: nothing to cancel`);
  else print(io, `cancelled ${id}${n > 1 ? ` and ${n - 1} descendant call(s)` : ''}`);
  return 0;
}

/** `dispatch restart ID`: runs a call again from its original input. */
export async function restartCommand(id: string, flags: ApiFlags & { json?: boolean }, io: CliIO): Promise<number> {
  const client = apiClient(flags, io);
  const info = await api(() => client.restart(id));
  if (flags.json) printJson(io, callInfoJson(info));
  else print(io, `restarted ${info.function ?? ''} ${id} from its original input`);
  return 0;
}

/** Flags of `dispatch call`. */
export interface CallFlags extends ApiFlags {
  endpoint?: string;
  input?: string;
  wait?: boolean;
  timeout?: string;
  expiration?: string;
  idempotencyKey?: string;
  json?: boolean;
}

/** JSON text to a `google.protobuf.Value`. */
export function jsonToProtoValue(value: unknown): proto.IValue {
  if (value === null) return { nullValue: 0 };
  switch (typeof value) {
    case 'number':
      return { numberValue: value };
    case 'string':
      return { stringValue: value };
    case 'boolean':
      return { boolValue: value };
    case 'object':
      if (Array.isArray(value)) return { listValue: { values: value.map(jsonToProtoValue) } };
      return { structValue: { fields: Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, jsonToProtoValue(v)])) } };
    default:
      throw new TypeError(`not a JSON value: ${String(value)}`);
  }
}

function parseJsonArg(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(
      `${what} is not JSON: ${text}; each argument is one JSON value, so quote strings for the shell: '"${text.replace(/'/g, "'\\''")}"'`,
      2,
    );
  }
}

/** `dispatch call FUNCTION [ARG...]`: dispatches one call, optionally waits for its result. */
export async function callCommand(fn: string, args: string[], flags: CallFlags, io: CliIO): Promise<number> {
  const endpoint = flags.endpoint ?? io.env.DISPATCH_ENDPOINT_URL?.trim();
  if (!endpoint) {
    throw new CliError(`--endpoint is required: the URL of the app that serves ${fn}, for example --endpoint http://127.0.0.1:8000 (or set DISPATCH_ENDPOINT_URL)`, 2);
  }
  let input: proto.IAny;
  if (flags.input !== undefined) {
    if (args.length) throw new CliError('pass either arguments or --input, not both (--input is one raw google.protobuf.Value for functions of other SDKs)', 2);
    input = proto.pack(proto.Value, jsonToProtoValue(parseJsonArg(flags.input, '--input')));
  } else {
    input = encodeArgs(args.map((a, i) => parseJsonArg(a, `argument ${i + 1}`)));
  }
  const call: proto.ICall = { function: fn, endpoint, input };
  if (flags.expiration) {
    try {
      call.expiration = proto.durationFromMs(parseDuration(flags.expiration as never, '--expiration'));
    } catch (err) {
      throw new CliError(`${(err as Error).message} (for example --expiration 10m)`, 2);
    }
  }
  if (flags.idempotencyKey) call.idempotencyKey = flags.idempotencyKey;
  let timeoutMs = 10 * 60_000;
  if (flags.timeout) {
    try {
      timeoutMs = parseDuration(flags.timeout as never, '--timeout');
    } catch (err) {
      throw new CliError(`${(err as Error).message} (for example --timeout 30s)`, 2);
    }
  }
  const client = apiClient(flags, io);
  const [id] = await api(() => client.dispatch([call]));
  if (!flags.wait) {
    if (flags.json) printJson(io, { dispatchId: id });
    else print(io, id as string);
    return 0;
  }
  const outcome = await api(() => client.wait(id as string, timeoutMs));
  if (!outcome.done) {
    if (flags.json) printJson(io, { dispatchId: id, done: false, state: outcome.state });
    else io.stderr.write(`${fn} ${id} is still ${outcome.state} after ${humanMs(timeoutMs)}; follow it with: dispatch get ${id}\n`);
    return 3;
  }
  const ok = outcome.status === 1;
  const output = displayValue(outcome.result.output);
  const error = errorJson(outcome.result.error);
  if (flags.json) {
    printJson(io, { dispatchId: id, done: true, state: outcome.state, status: statusName(outcome.status), output: output ?? null, error });
  } else if (ok) {
    print(io, output === undefined ? 'null' : JSON.stringify(output, null, 2));
  } else {
    io.stderr.write(
      `${fn} ${id} ${outcome.state === 'cancelled' ? 'was cancelled' : 'failed'} with ${statusName(outcome.status)}${error ? `: ${error.name}: ${error.message}` : ''}\n`,
    );
    if (output !== undefined) print(io, JSON.stringify(output, null, 2));
  }
  return ok ? 0 : 1;
}

/** Flags of `dispatch verification-key`. */
export interface VerificationKeyFlags {
  db?: string;
  pem?: boolean;
  apiUrl?: string;
}

/**
 * `dispatch verification-key`: prints the public key apps verify requests
 * with. Reads the database (creating the key pair on first use, as the
 * scheduler would); a database held by a running scheduler is asked through
 * its API instead.
 */
export async function verificationKeyCommand(flags: VerificationKeyFlags, io: CliIO): Promise<number> {
  const dbFlag = flags.db ?? CLI_DEFAULT_DB;
  if (/^postgres(ql)?:\/\//.test(dbFlag) || flags.apiUrl) {
    return verificationKeyFromApi(flags.apiUrl ?? io.env.DISPATCH_API_URL ?? 'http://127.0.0.1:4450', flags, io, null);
  }
  const db = resolve(io.cwd, dbFlag);
  let store: SqliteStore;
  try {
    store = await SqliteStore.open({ path: db });
  } catch (err) {
    const message = (err as Error).message;
    if (!/in use by another scheduler/.test(message)) throw new CliError(message);
    // A running scheduler holds the file: ask it.
    const state = readStateFile(io.cwd);
    const url = state && resolve(state.db) === db ? state.apiUrl : (io.env.DISPATCH_API_URL ?? 'http://127.0.0.1:4450');
    return verificationKeyFromApi(url, flags, io, db);
  }
  try {
    const existing = await store.getMeta('signing_key');
    const pem = existing ?? (await store.initMeta('signing_key', privateKeyToPem(generateSigningKeyPair().privateKey)));
    const publicKey = createPublicKey(parseSigningKey(pem));
    print(io, flags.pem ? publicKeyToPem(publicKey).trimEnd() : publicKeyToBase64(publicKey));
    if (!existing) {
      const rel = relative(io.cwd, db);
      io.stderr.write(`created a signing key pair in ${rel && !rel.startsWith('..') ? rel : db}; the scheduler started on it signs with it\n`);
    }
    return 0;
  } finally {
    await store.close();
  }
}

async function verificationKeyFromApi(url: string, flags: VerificationKeyFlags, io: CliIO, db: string | null): Promise<number> {
  const health = await api(() => new SchedulerClient({ apiUrl: url, apiKey: '' }).health()).catch((err: Error) => {
    throw new CliError(db ? `${db} is in use by a running scheduler, and asking it failed: ${err.message}` : err.message);
  });
  if (!health.verificationKey) throw new CliError(`the scheduler at ${url} does not tell its verification key (an older version?)`);
  if (flags.pem) {
    print(io, publicKeyToPem(parseVerificationKey(health.verificationKey)).trimEnd());
  } else {
    print(io, health.verificationKey);
  }
  return 0;
}
