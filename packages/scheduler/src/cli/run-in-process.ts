/**
 * `dispatch run --in-process -- node app.js`: the app runs with the
 * scheduler inside its own process (`node --import` of the package's
 * `in-process.mjs`), on the same store, API port and dashboard as
 * `dispatch run`; its RunRequests are handed to the app's `Dispatch`
 * instance as objects (no HTTP, no signatures).
 * @module
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CliError, type CliIO, parseHostPort, parseLogLevel, parsePort, probePort } from './common.js';
import { RunOutput, splitLines } from './progress.js';
import { schedulerFlagOptions } from './scheduler-flags.js';
import { IN_PROCESS_SCHEDULER_ENV, type InProcessHostOptions } from '../in-process-host.js';
import { SCHEDULER_DEFAULTS } from '../options.js';
import { Redactor } from '../redact.js';
import type { RunFlags } from './run.js';

/** The package's `in-process.mjs` (the bin runs the CommonJS build: __dirname is dist/cjs/cli). */
function preloadUrl(): string {
  if (typeof __dirname !== 'string') throw new CliError('dispatch run --in-process runs from the CLI (bin/dispatch.cjs)', 2);
  return pathToFileURL(join(__dirname, '..', '..', '..', 'in-process.mjs')).href;
}

/** Node's own executable names: `--in-process` adds its `--import` to their arguments. */
const NODE = /^node(?:\.exe)?$|^nodejs$/;

/**
 * Runs `dispatch run --in-process`; resolves to the exit code (the app's).
 * @example
 * process.exitCode = await runInProcessCommand(['node', 'app.js'], { db: 'demo.db' }, io);
 */
export async function runInProcessCommand(command: string[], flags: RunFlags, io: CliIO): Promise<number> {
  const [program, ...args] = command;
  if (!program) throw new CliError('dispatch run --in-process needs a command to start, for example: dispatch run --in-process -- node app.js', 2);
  if (!NODE.test(basename(program)) && resolve(io.cwd, program) !== process.execPath) {
    throw new CliError(
      `--in-process starts the scheduler inside a Node.js process, so the command must be node, got ${JSON.stringify(program)}: ` +
        'dispatch run --in-process -- node app.js (for TypeScript: -- node --import tsx src/app.ts)',
      2,
    );
  }
  const logLevel = parseLogLevel(flags.logLevel ?? 'warn');
  const db = flags.db === ':memory:' ? ':memory:' : resolve(io.cwd, flags.db ?? SCHEDULER_DEFAULTS.db);
  let port: number;
  if (flags.port !== undefined) port = parsePort(flags.port, '--port');
  else port = await probePort('127.0.0.1', SCHEDULER_DEFAULTS.port).then(() => SCHEDULER_DEFAULTS.port, () => 0);
  if (flags.endpointAddr !== undefined) parseHostPort(flags.endpointAddr, '--endpoint-addr');
  const options: InProcessHostOptions = { ...schedulerFlagOptions(flags), db, port, host: '127.0.0.1', logLevel: logLevel === 'info' || logLevel === 'debug' ? logLevel : 'warn' };
  if (flags.endpointAddr !== undefined) options.endpointAddr = flags.endpointAddr;

  const live = false;
  const out = new RunOutput({ stdout: io.stdout, stderr: io.stderr, live, color: io.stderr.isTTY === true && !io.env.NO_COLOR, quiet: !!flags.quiet, appName: basename(program) });
  // No DISPATCH_* variable of the shell reaches the app (a signing key, another scheduler's key...):
  // the scheduler in the app's process sets the ones the app reads; nothing is signed in process.
  const env: NodeJS.ProcessEnv = {
    ...Object.fromEntries(Object.entries(io.env).filter(([name]) => !name.toUpperCase().startsWith('DISPATCH_'))),
    [IN_PROCESS_SCHEDULER_ENV]: JSON.stringify(options),
  };
  const detached = process.platform !== 'win32';
  const stdinIsTty = (process.stdin as { isTTY?: boolean }).isTTY === true;
  const started = spawn(program, ['--import', preloadUrl(), ...args], {
    cwd: io.cwd,
    env,
    detached,
    stdio: [detached && stdinIsTty ? 'ignore' : 'inherit', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolveSpawn, reject) => {
    started.once('spawn', resolveSpawn);
    started.once('error', (err: NodeJS.ErrnoException) =>
      reject(new CliError(err.code === 'ENOENT' ? `command not found: ${program}: check your PATH` : `cannot start ${program}: ${err.message}`, err.code === 'ENOENT' ? 127 : 126)),
    );
  });
  const redactor = new Redactor([io.env.DISPATCH_SIGNING_KEY]);
  const lines = Promise.all([
    splitLines(started.stdout!, (line) => out.appLine('stdout', redactor.redact(line))),
    splitLines(started.stderr!, (line) => out.appLine('stderr', redactor.redact(line))),
  ]);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => started.once('exit', (code, signal) => done({ code, signal })));
  const send = (signal: NodeJS.Signals) => {
    try {
      if (detached && started.pid) process.kill(-started.pid, signal);
      else started.kill(signal);
    } catch {
      // already gone
    }
  };
  const handlers = new Map<NodeJS.Signals, () => void>();
  let received = 0;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]) {
    const handler = () => {
      received++;
      out.note(received === 1 ? `${signal}: passing it to ${basename(program)} (send it again to kill it)` : `${signal} again: killing ${basename(program)}`);
      send(received === 1 ? signal : 'SIGKILL');
    };
    handlers.set(signal, handler);
    process.on(signal, handler);
  }
  try {
    const { code, signal } = await exited;
    await Promise.race([lines, new Promise((r) => setTimeout(r, 1000).unref())]);
    out.note(`${basename(program)} exited with ${signal ? `signal ${signal}` : `code ${code}`}`);
    return code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 1);
  } finally {
    out.stop();
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}
