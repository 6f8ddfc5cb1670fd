/**
 * `dispatch call FUNCTION [ARG...]`: dispatches one call of a function
 * served by an endpoint, and with `--wait` prints its result.
 * @module
 */
import { encodeArgs, proto, Status, statusName } from '@dispatch/core/protocol';
import { type Command, Option } from 'commander';
import { api, apiClient, type ApiFlags, CliError, type CliContext, type CliIO, parseDurationFlag, print, printJson, readStateFile, withApiFlags } from './common.js';
import { errorJson, humanMs, jsonSafe } from './format.js';

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

const DEFAULT_TIMEOUT = '10m';
/**
 * Without --wait, `dispatch call` waits for the endpoint's verdict on the
 * first run, so that a call it refuses at once (an unknown function, a bad
 * argument) is reported instead of an ID: until the call finishes, has run
 * (it suspended, or is retrying), or has been running for
 * {@link RUNNING_AFTER_MS} (a refusal is answered at once), at most
 * {@link FIRST_RUN_MAX_MS}.
 */
const FIRST_RUN_MAX_MS = 10_000;
const RUNNING_AFTER_MS = 1000;

/**
 * Declares `dispatch call` on the program.
 * @example
 * addCallCommand(program, cli);
 */
export function addCallCommand(program: Command, cli: CliContext): void {
  withApiFlags(
    program
      .command('call')
      .description('dispatch one call of a function served by an endpoint')
      .argument('<function>', 'function name')
      .argument('[args...]', 'arguments, each one JSON value (quote strings: \'"Ada"\')')
      .option('--endpoint <url>', 'URL of the app serving the function (default: DISPATCH_ENDPOINT_URL, or the app of a dispatch run in this directory)')
      .addOption(new Option('--input <json>', 'send this JSON as one raw google.protobuf.Value instead of an argument list (functions of other SDKs)'))
      .option('--wait', 'wait for the result, print it, exit 1 if the call failed')
      .option('--timeout <duration>', 'with --wait: how long to wait (exit 3 if still running)', DEFAULT_TIMEOUT)
      .option('--expiration <duration>', 'expiration of the call (default 1h)')
      .option('--idempotency-key <key>', 'dispatch at most once per key')
      .option('--json', 'machine-readable JSON'),
  ).action((fn: string, args: string[], flags: CallFlags) => cli.done(callCommand(fn, args, flags, cli.io)));
}

/**
 * JSON text to a `google.protobuf.Value`.
 * @example
 * jsonToProtoValue({ a: [1, 'x'] }); // { structValue: { fields: { a: { listValue: … } } } }
 */
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

/**
 * Parses one JSON value given on the command line. A bare word (`Ada`)
 * gets the advice that fits it (JSON strings need quotes, inside the
 * shell's); broken JSON gets the parser's message and a caret under the
 * position it points at.
 */
function parseJsonArg(text: string, what: string, advice: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const trimmed = text.trim();
    if (trimmed !== '' && !/^[[{"]/.test(trimmed) && !/^-?\d/.test(trimmed)) {
      throw new CliError(`${what} is not JSON: ${text}; ${advice}: '"${text.replace(/'/g, "'\\''")}"'`, 2);
    }
    const message = (err as Error).message;
    const at = /position (\d+)/.exec(message);
    const caret = at ? `\n  ${text}\n  ${' '.repeat(Math.min(Number(at[1]), text.length))}^` : '';
    throw new CliError(
      `${what} is not valid JSON: ${message}${caret}\n` +
        'Object keys and strings need double quotes (\'{"name":"Ada"}\'), and the shell needs single quotes around the whole value.',
      2,
    );
  }
}

/**
 * Runs `dispatch call`; resolves to the exit code: 0, or with `--wait` 1
 * when the call failed and 3 when it is still running after `--timeout`.
 * @example
 * await callCommand('add', ['2', '40'], { endpoint: 'http://127.0.0.1:8000', wait: true }, io);
 */
export async function callCommand(fn: string, args: string[], flags: CallFlags, io: CliIO): Promise<number> {
  const endpoint = flags.endpoint ?? (io.env.DISPATCH_ENDPOINT_URL?.trim() || readStateFile(io.cwd)?.endpointUrl);
  if (!endpoint) {
    throw new CliError(
      `--endpoint is required: the URL of the app that serves ${fn}, for example --endpoint http://127.0.0.1:8000 (or set DISPATCH_ENDPOINT_URL; under a dispatch run in this directory it is found by itself)`,
      2,
    );
  }
  let input: proto.IAny;
  if (flags.input !== undefined) {
    if (args.length) throw new CliError('pass either arguments or --input, not both (--input is one raw google.protobuf.Value for functions of other SDKs)', 2);
    input = proto.pack(proto.Value, jsonToProtoValue(parseJsonArg(flags.input, '--input', 'it is one JSON value, so quote a string for the shell')));
  } else {
    input = encodeArgs(args.map((a, i) => parseJsonArg(a, `argument ${i + 1}`, 'each argument is one JSON value, so quote strings for the shell')));
  }
  const call: proto.ICall = { function: fn, endpoint, input };
  if (flags.expiration) call.expiration = proto.durationFromMs(parseDurationFlag(flags.expiration, '--expiration'));
  if (flags.idempotencyKey) call.idempotencyKey = flags.idempotencyKey;
  const timeoutMs = parseDurationFlag(flags.timeout ?? DEFAULT_TIMEOUT, '--timeout');
  const client = apiClient(flags, io);
  const [id] = (await api(() => client.dispatch([call]))) as [string];
  if (!flags.wait && !(await refusedAtOnce(client, id))) {
    if (flags.json) printJson(io, { dispatchId: id });
    else print(io, id);
    return 0;
  }
  const outcome = await api(() => client.wait(id, { timeoutMs }));
  if (!outcome.done) {
    if (flags.json) printJson(io, { dispatchId: id, done: false, state: outcome.state });
    else io.stderr.write(`${fn} ${id} is still ${outcome.state} after ${humanMs(timeoutMs)}; follow it with: dispatch get ${id}\n`);
    return 3;
  }
  const ok = outcome.status === Status.OK;
  const output = outcome.value === undefined ? undefined : jsonSafe(outcome.value);
  const error = errorJson(outcome.raw.error);
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

/** Whether a call fails on its first run, as an endpoint refusing it does (see {@link FIRST_RUN_MAX_MS}). */
async function refusedAtOnce(client: ReturnType<typeof apiClient>, id: string): Promise<boolean> {
  const deadline = Date.now() + FIRST_RUN_MAX_MS;
  let runningSince: number | null = null;
  while (Date.now() < deadline) {
    const outcome = await api(() => client.wait(id, { timeoutMs: 250 }));
    if (outcome.done) return outcome.status !== Status.OK;
    if (outcome.state === 'suspended') return false; // it ran, and awaits other calls
    if (outcome.state === 'running') {
      runningSince ??= Date.now();
      if (Date.now() - runningSince >= RUNNING_AFTER_MS) return false; // working, not refused
    } else {
      runningSince = null;
      const info = await api(() => client.get(id));
      if (info.attempts + info.resumes > 0) return false; // it ran and is retrying: not a refusal
    }
  }
  return false;
}
