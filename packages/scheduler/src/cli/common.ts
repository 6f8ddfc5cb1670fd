/**
 * Shared pieces of the `dispatch` CLI: its error type, how a command reports
 * its exit code, where the API URL and key come from, the file a local
 * scheduler leaves for the other commands, and the parsing of flag values
 * that several commands share.
 * @module
 */
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { DEFAULT_API_URL, DispatchApiError, DispatchClient, parseDuration } from '@dispatch/core/protocol';
import type { Command } from 'commander';
import type { LogLevel } from '../logger.js';
import { PRIVATE_FILE_MODE } from '../private-files.js';

/** Name of the file a running `dispatch run`/`serve` writes beside its database (API URL and key). */
export const CLI_STATE_FILE = 'api.json';

/**
 * An error a person meets: printed as `dispatch: <message>`, without a stack,
 * and the process exits with `exitCode`.
 * @example
 * throw new CliError(`port ${port} is in use: stop what listens there or pass --port 0`);
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** What the CLI prints to: swappable for tests. */
export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/**
 * What each command file gets to declare its command: where to print, and
 * how to report the exit code of its action.
 * @example
 * program.command('ls').action((flags) => cli.done(lsCommand(flags, cli.io)));
 */
export interface CliContext {
  io: CliIO;
  /** Takes the action's exit code. */
  done(code: Promise<number>): Promise<void>;
}

/** Prints a line of text. */
export function print(io: CliIO, text: string): void {
  io.stdout.write(`${text}\n`);
}

/** Prints a value as indented JSON (`--json`). */
export function printJson(io: CliIO, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** The content of the state file. */
export interface CliState {
  apiUrl: string;
  apiKey: string;
  pid: number;
  db: string;
  verificationKey: string;
  /** The app's endpoint URL, under `dispatch run` (`dispatch call` sends calls there by default). */
  endpointUrl?: string;
}

/**
 * Writes the state file beside the database so that `dispatch ls/get/...`
 * run in the same directory find the scheduler without flags. It holds the
 * API key: it is written 0600 (a new file renamed over the old one, so an
 * older, wider file is not reused). Returns a function that removes it (only
 * if it is still ours).
 */
export function writeStateFile(dbPath: string, state: CliState): () => void {
  if (dbPath === ':memory:') return () => {};
  const file = join(dirname(dbPath), CLI_STATE_FILE);
  const fresh = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(fresh, `${JSON.stringify(state, null, 2)}\n`, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
    renameSync(fresh, file);
  } catch {
    rmSync(fresh, { force: true });
    return () => {};
  }
  return () => {
    try {
      const current = JSON.parse(readFileSync(file, 'utf8')) as Partial<CliState>;
      if (current.pid === state.pid) rmSync(file, { force: true });
    } catch {
      // gone already
    }
  };
}

/** Reads `.dispatch/api.json` under `cwd`, or null. */
export function readStateFile(cwd: string): (CliState & { file: string }) | null {
  const file = resolve(cwd, '.dispatch', CLI_STATE_FILE);
  try {
    const state = JSON.parse(readFileSync(file, 'utf8')) as CliState;
    if (typeof state.apiUrl !== 'string' || typeof state.apiKey !== 'string') return null;
    return { ...state, file };
  } catch {
    return null;
  }
}

// Keys. A flag's value shows in `ps` to every user of the machine, so keys
// come from the environment (DISPATCH_API_KEY, DISPATCH_SIGNING_KEY) or a file
// (--api-key-file, --signing-key-file): --api-key still works but warns, and
// --signing-key is refused.

/**
 * The keys in a file, one per line (blank lines and `#` comments ignored).
 * A missing, unreadable or empty file is a CliError naming the flag; a file
 * other users may read gets a warning on stderr.
 * @example
 * const [key] = readKeyFile(flags.apiKeyFile, '--api-key-file', io);
 */
export function readKeyFile(path: string, flag: string, io: CliIO): string[] {
  const file = resolve(io.cwd, path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`cannot read ${flag} ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)}`, 2);
  }
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    io.stderr.write(`dispatch: warning: ${flag} ${file} can be read by other users (mode 0${mode.toString(8)}): chmod 600 ${file}\n`);
  }
  const keys = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (keys.length === 0) throw new CliError(`${flag} ${file} holds no key (one key per line; # starts a comment)`, 2);
  return keys;
}

/**
 * A PEM block or a single-line key from a file, whole (a signing key's PEM
 * spans several lines).
 * @example
 * const pem = readKeyText(flags.signingKeyFile, '--signing-key-file', io);
 */
export function readKeyText(path: string, flag: string, io: CliIO): string {
  const lines = readKeyFile(path, flag, io);
  return lines.some((l) => l.startsWith('-----BEGIN')) ? lines.join('\n') : (lines[0] as string);
}

/**
 * Warns that a key was given on the command line, where `ps` shows it.
 * @example
 * if (flags.apiKey) warnKeyFlag(io, '--api-key', 'DISPATCH_API_KEY or --api-key-file');
 */
export function warnKeyFlag(io: CliIO, flag: string, instead: string): void {
  io.stderr.write(`dispatch: warning: ${flag} shows the key to every user of this machine (ps); use ${instead} instead\n`);
}

/**
 * The refusal of `--signing-key` (the private key must not be on a command line).
 * @example
 * if (flags.signingKey !== undefined) throw signingKeyFlagRefused();
 */
export function signingKeyFlagRefused(): CliError {
  return new CliError(
    '--signing-key is refused: a private key on the command line can be read by every user of this machine (ps); ' +
      'put it in DISPATCH_SIGNING_KEY, or in a file (chmod 600) given with --signing-key-file',
    2,
  );
}

/** Flags of the commands that talk to a running scheduler. */
export interface ApiFlags {
  apiUrl?: string;
  apiKey?: string;
  apiKeyFile?: string;
}

/**
 * Declares `--api-url` and `--api-key` on a command that talks to a running
 * scheduler.
 * @example
 * withApiFlags(program.command('ls'));
 */
export function withApiFlags(cmd: Command): Command {
  return cmd
    .option('--api-url <url>', `API URL of the scheduler (default: DISPATCH_API_URL, .dispatch/${CLI_STATE_FILE}, ${DEFAULT_API_URL})`)
    .option('--api-key-file <path>', 'file holding the API key (its first line)')
    .option('--api-key <key>', `API key; shows in ps, prefer DISPATCH_API_KEY or --api-key-file (default: DISPATCH_API_KEY, or .dispatch/${CLI_STATE_FILE} of a local dispatch run/serve)`);
}

/**
 * Resolves the API URL and key: flags, then `DISPATCH_API_URL` /
 * `DISPATCH_API_KEY`, then the state file a `dispatch run`/`serve` in this
 * directory wrote, then the default URL. A missing key is a CliError saying
 * where to get one.
 */
export function apiClient(flags: ApiFlags, io: CliIO): DispatchClient {
  const state = readStateFile(io.cwd);
  const env = io.env;
  const apiUrl = flags.apiUrl ?? (nonEmpty(env.DISPATCH_API_URL) || state?.apiUrl || DEFAULT_API_URL);
  if (flags.apiKey !== undefined) warnKeyFlag(io, '--api-key', 'DISPATCH_API_KEY or --api-key-file');
  const fromFile = flags.apiKeyFile === undefined ? undefined : readKeyFile(flags.apiKeyFile, '--api-key-file', io)[0];
  const apiKey =
    fromFile ?? flags.apiKey ?? (nonEmpty(env.DISPATCH_API_KEY) || (state && state.apiUrl === apiUrl ? state.apiKey : undefined));
  if (!apiKey) {
    throw new CliError(
      `no API key for the scheduler at ${apiUrl}: set DISPATCH_API_KEY or pass --api-key-file (or --api-key) (\`dispatch serve\` and \`dispatch run\` print the key when they start)`,
    );
  }
  try {
    return new DispatchClient({ apiUrl, apiKey });
  } catch (err) {
    throw new CliError(`${(err as Error).message} (from ${flags.apiUrl ? '--api-url' : env.DISPATCH_API_URL ? 'DISPATCH_API_URL' : 'the state file'})`);
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value && value.trim() !== '' ? value.trim() : undefined;
}

/**
 * Runs a request to the scheduler; its errors become CliErrors (their
 * messages already say what to do).
 * @example
 * const info = await api(() => client.get(id));
 */
export async function api<T>(request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (err) {
    if (err instanceof DispatchApiError) throw new CliError(err.message);
    throw err;
  }
}

/** The log levels of `--log-level`. */
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'silent'];

/**
 * Parses `--log-level` (exit 2 on a bad value).
 * @example
 * parseLogLevel('warn'); // 'warn'
 */
export function parseLogLevel(value: string): LogLevel {
  if (!LOG_LEVELS.includes(value as LogLevel)) throw new CliError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(value)}`, 2);
  return value as LogLevel;
}

/**
 * Parses an integer flag that must be at least `min` (exit 2 otherwise).
 * @example
 * parseInteger('64', '--claim-batch'); // 64
 */
export function parseInteger(value: string, flag: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new CliError(`${flag} must be an integer ≥ ${min}, got ${JSON.stringify(value)}`, 2);
  return n;
}

/**
 * Parses `host:port` (IPv6 in brackets) for a flag; a CliError names the flag and value.
 * @example
 * parseHostPort('127.0.0.1:8000', '--endpoint-addr'); // { host: '127.0.0.1', port: 8000 }
 */
export function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new CliError(`${flag} must be host:port (for example 127.0.0.1:8000), got ${JSON.stringify(value)}`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** Formats host and port as `host:port` (IPv6 in brackets). */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Parses a port flag (0..65535).
 * @example
 * parsePort('4450', '--port'); // 4450
 */
export function parsePort(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new CliError(`${flag} must be a port number from 0 to 65535, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * Checks that `host:port` can be listened on (port 0 picks a free port) and
 * answers the port. Rejects with the listen error (`EADDRINUSE`...).
 */
export function probePort(host: string, port: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      const address = server.address() as net.AddressInfo;
      server.close(() => resolvePort(address.port));
    });
  });
}

/**
 * A duration flag: milliseconds, or text such as `30s`, `10m`, `1h30m`, `2d`
 * (exit 2 otherwise).
 * @example
 * parseDurationFlag('10m', '--default-expiration'); // 600000
 */
export function parseDurationFlag(value: string, flag: string): number {
  const text = value.trim();
  let ms: number;
  try {
    ms = /^\d+$/.test(text) ? Number(text) : parseDuration(text, flag);
  } catch {
    throw new CliError(`${flag} must be a duration such as 500ms, 30s, 10m, 1h30m or 2d (a bare number is milliseconds), got ${JSON.stringify(value)}`, 2);
  }
  if (ms <= 0) throw new CliError(`${flag} must be longer than 0, got ${JSON.stringify(value)}`, 2);
  return ms;
}
