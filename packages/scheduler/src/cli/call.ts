/**
 * `dispatch call FUNCTION [ARG...]`: dispatches one call of a function
 * served by an endpoint, and with `--wait` prints its result.
 * @module
 */
import { encodeArgs, parseDuration, proto, Status, statusName } from '@dispatch/core/protocol';
import { type Command, Option } from 'commander';
import { api, apiClient, type ApiFlags, CliError, type CliContext, type CliIO, print, printJson, withApiFlags } from './common.js';
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
      .option('--endpoint <url>', 'URL of the app serving the function (default: DISPATCH_ENDPOINT_URL)')
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

function parseDurationFlag(value: string, flag: string, example: string): number {
  try {
    return parseDuration(value as never, flag);
  } catch (err) {
    throw new CliError(`${(err as Error).message} (for example ${flag} ${example})`, 2);
  }
}

/**
 * Runs `dispatch call`; resolves to the exit code: 0, or with `--wait` 1
 * when the call failed and 3 when it is still running after `--timeout`.
 * @example
 * await callCommand('add', ['2', '40'], { endpoint: 'http://127.0.0.1:8000', wait: true }, io);
 */
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
  if (flags.expiration) call.expiration = proto.durationFromMs(parseDurationFlag(flags.expiration, '--expiration', '10m'));
  if (flags.idempotencyKey) call.idempotencyKey = flags.idempotencyKey;
  const timeoutMs = parseDurationFlag(flags.timeout ?? DEFAULT_TIMEOUT, '--timeout', '30s');
  const client = apiClient(flags, io);
  const [id] = (await api(() => client.dispatch([call]))) as [string];
  if (!flags.wait) {
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
