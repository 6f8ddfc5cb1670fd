/**
 * `dispatch run [options] -- <command...>`: the embedded scheduler on SQLite,
 * and the command started with the configuration it needs.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { constants } from 'node:os';
import { basename, relative, resolve } from 'node:path';
import { DEFAULT_ENDPOINT_ADDR } from '@dispatch/core/protocol';
import type { Command } from 'commander';
import {
  CliError,
  type CliContext,
  type CliIO,
  formatHostPort,
  LOG_LEVELS,
  parseHostPort,
  parseLogLevel,
  parsePort,
  probePort,
  writeStateFile,
} from './common.js';
import { RunOutput, splitLines } from './progress.js';
import { runInProcessCommand } from './run-in-process.js';
import { observeFlagOptions, type SchedulerFlags, schedulerFlagOptions, withSchedulerFlags } from './scheduler-flags.js';
import { SCHEDULER_DEFAULTS } from '../options.js';
import { Redactor } from '../redact.js';
import { Scheduler } from '../scheduler.js';

/** Flags of `dispatch run`. */
export interface RunFlags extends SchedulerFlags {
  db?: string;
  port?: string;
  endpointAddr?: string;
  logLevel?: string;
  quiet?: boolean;
  /** Force plain lines even on a terminal. */
  plain?: boolean;
  /** Run the scheduler inside the app's process (`--in-process`). */
  inProcess?: boolean;
}

/** Meta key under which a database remembers the endpoint address of its first `dispatch run`. */
export const ENDPOINT_ADDR_META = 'cli.endpoint_addr';

/** How long `dispatch run` lets the app start before saying that calls wait for it to listen. */
const LISTEN_NOTE_AFTER_MS = 10_000;

/** `dispatch run` shows calls itself: its scheduler logs warnings and errors only, unless asked. */
const RUN_LOG_LEVEL = 'warn';
/** Attempt and expiration lines of the run loop: `dispatch run` shows calls itself. */
const ATTEMPT_LINE = /^(run \S+ \S+ attempt=|expired \S+ \S+ after )/;

function displayPath(path: string, cwd: string): string {
  if (path === ':memory:') return path;
  const rel = relative(cwd, path);
  return rel && !rel.startsWith('..') ? rel : path;
}

/**
 * The environment without its `DISPATCH_*` variables: `dispatch run` sets
 * the ones the app needs itself, and the others may be secrets of the shell
 * (a signing key, another scheduler's API key).
 * @example
 * spawn(cmd, args, { env: { ...withoutDispatchVariables(process.env), DISPATCH_API_URL: url } });
 */
export function withoutDispatchVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.toUpperCase().startsWith('DISPATCH_')));
}

/**
 * Declares `dispatch run` on the program.
 * @example
 * addRunCommand(program, cli);
 */
export function addRunCommand(program: Command, cli: CliContext): void {
  const run = program
    .command('run')
    .description('start the embedded scheduler (SQLite) and run a command with its configuration set')
    .usage('[options] -- <command...>')
    .argument('<command...>', 'the command that serves your app, e.g. node app.js')
    .option('--db <path>', 'SQLite file; unfinished calls in it resume', SCHEDULER_DEFAULTS.db)
    .option('--port <n>', `API port (default ${SCHEDULER_DEFAULTS.port} if free, else any free port)`)
    .option(
      '--endpoint-addr <host:port>',
      `address the app's endpoint listens on (default ${DEFAULT_ENDPOINT_ADDR}, the SDK's default: app.listen(8000); a database keeps the one of its first run)`,
    )
    .option('--log-level <level>', `scheduler log level: ${LOG_LEVELS.join(', ')} (info: one line per attempt)`, RUN_LOG_LEVEL)
    .option('-q, --quiet', 'no line per call (the live status line stays on a terminal)')
    .option('--plain', 'plain lines even on a terminal, no live status line')
    .option('--in-process', "run the scheduler inside the app's process (the command must be node): calls are handed to the app directly, no HTTP, no signatures");
  withSchedulerFlags(run)
    .passThroughOptions()
    .addHelpText(
      'after',
      `
The command gets DISPATCH_API_URL, DISPATCH_API_KEY, DISPATCH_ENDPOINT_URL,
DISPATCH_ENDPOINT_ADDR and DISPATCH_VERIFICATION_KEY, and the rest of the
environment except its other DISPATCH_* variables (DISPATCH_SIGNING_KEY and
the like stay with dispatch). The app serves its endpoint on
${DEFAULT_ENDPOINT_ADDR} (app.listen(8000), or the address in
DISPATCH_ENDPOINT_ADDR); calls run once it listens there. Its output lines
are prefixed, with keys and passwords shown as ***; SIGINT/SIGTERM are passed
to it (a second one kills it); dispatch exits with its exit code. The
database (.dispatch/ by default) is a file of mode 0600 in a 0700 directory:
it holds the keys.

Example:
  dispatch run -- node app.js
  dispatch run --db /tmp/demo.db -- npx tsx src/app.ts
  dispatch run --endpoint-addr 127.0.0.1:3000 --max-attempts 5 -- node app.js
  dispatch run --in-process -- node app.js
`,
    )
    .action((command: string[], flags: RunFlags) => cli.done(runCommand(command, flags, cli.io)));
}

/**
 * Runs `dispatch run`; resolves to the exit code (the command's).
 * @example
 * process.exitCode = await runCommand(['node', 'app.js'], {}, io);
 */
export async function runCommand(command: string[], flags: RunFlags, io: CliIO): Promise<number> {
  if (flags.inProcess) return runInProcessCommand(command, flags, io);
  const [program, ...args] = command;
  if (!program) throw new CliError('dispatch run needs a command to start, for example: dispatch run -- node app.js', 2);
  const logLevel = parseLogLevel(flags.logLevel ?? RUN_LOG_LEVEL);
  const flagOptions = schedulerFlagOptions(flags);
  const observe = observeFlagOptions(flags, io);
  const db = flags.db === ':memory:' ? ':memory:' : resolve(io.cwd, flags.db ?? SCHEDULER_DEFAULTS.db);
  const dbShown = displayPath(db, io.cwd);
  const live = !flags.plain && io.stderr.isTTY === true && io.env.TERM !== 'dumb';
  const color = io.stderr.isTTY === true && !io.env.NO_COLOR;
  const out = new RunOutput({ stdout: io.stdout, stderr: io.stderr, live, color, quiet: !!flags.quiet, appName: basename(program) });

  // The API: --port, else 4450 (the SDK's default API URL) when free, else any free port.
  let port: number;
  if (flags.port !== undefined) port = parsePort(flags.port, '--port');
  else port = await probePort('127.0.0.1', SCHEDULER_DEFAULTS.port).then(() => SCHEDULER_DEFAULTS.port, () => 0);

  let scheduler: Scheduler;
  try {
    scheduler = await Scheduler.start({
      ...flagOptions,
      db,
      port,
      host: '127.0.0.1',
      // Calls run once the app listens (see below): none fails against an endpoint still starting.
      startPaused: true,
      logLevel,
      ...observe,
      // JSON: the scheduler's lines go to stderr as JSON objects (pino); text: beside the app's output.
      ...(observe.logFormat === 'json'
        ? {}
        : {
            logger: (level: string, line: string) => {
              if (logLevel !== 'info' && logLevel !== 'debug' && ATTEMPT_LINE.test(line)) return;
              out.note(level === 'error' || level === 'warn' ? `${level}: ${line}` : line);
            },
          }),
    });
  } catch (err) {
    const message = (err as Error).message;
    if (/already in use/.test(message)) throw new CliError(`${message}; with dispatch run: --port N, or --port 0`);
    if (/in use by another scheduler/.test(message)) {
      throw new CliError(`${message} (pass --db another.db to run a second app beside it)`);
    }
    throw new CliError(`cannot start the scheduler on ${dbShown}: ${message}`);
  }

  let child: ChildProcess | null = null;
  let removeStateFile = () => {};
  const signalHandlers = new Map<NodeJS.Signals, () => void>();
  try {
    // The app's endpoint: --endpoint-addr, else the address this database used first
    // (unfinished calls are addressed to it), else the SDK's default (app.listen(8000) serves it).
    const recorded = await scheduler.store.getMeta(ENDPOINT_ADDR_META);
    let addr = flags.endpointAddr ?? recorded ?? DEFAULT_ENDPOINT_ADDR;
    const origin = flags.endpointAddr
      ? '--endpoint-addr'
      : recorded
        ? `the address ${dbShown} recorded on its first run`
        : "the SDK's default endpoint address, which app.listen(8000) serves";
    {
      const { host, port: p } = parseHostPort(addr, '--endpoint-addr');
      try {
        addr = formatHostPort(host, await probePort(host, p));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE') {
          throw new CliError(
            flags.endpointAddr
              ? `the endpoint address ${addr} (--endpoint-addr) is in use: stop what listens there (another dispatch run, or the app started on its own?), or pass another --endpoint-addr`
              : recorded
                ? `the endpoint address ${addr} is in use; it is ${origin}, where its unfinished calls are sent: stop what listens there, or pass --endpoint-addr host:port (calls addressed to ${addr} will then not reach the app)`
                : `the endpoint address ${addr} is in use (${origin}): stop what listens there (another dispatch run, or the app started on its own?), or pass --endpoint-addr 127.0.0.1:PORT with a free port and have the app listen on DISPATCH_ENDPOINT_ADDR`,
          );
        }
        throw new CliError(`cannot listen on ${addr} (${origin}): ${(err as Error).message}`);
      }
    }
    await scheduler.store.initMeta(ENDPOINT_ADDR_META, addr);
    const { host: endpointHost, port: endpointPort } = parseHostPort(addr, '--endpoint-addr');
    const urlHost = endpointHost === '0.0.0.0' ? '127.0.0.1' : endpointHost === '::' ? '::1' : endpointHost;
    const endpointUrl = `http://${formatHostPort(urlHost, endpointPort)}`;

    const before = await scheduler.list({ limit: 1 });
    const unfinished = before.counts.pending + before.counts.running + before.counts.suspended;
    out.note(`scheduler ${scheduler.url} · database ${dbShown} · app endpoint ${endpointUrl}`);
    out.note(`dashboard ${scheduler.dashboardLoginUrl()} (a one-time login link; then ${scheduler.dashboardUrl} with the API key)`);
    if (flags.endpointAddr && recorded && recorded !== addr && unfinished > 0) {
      out.note(`warning: ${unfinished} unfinished call(s) of ${dbShown} may be addressed to ${recorded}, not ${addr}; they cannot reach the app there`);
    }
    if (unfinished > 0) out.note(`resuming ${unfinished} unfinished call(s) of an earlier run once the app listens on ${addr}`);
    removeStateFile = writeStateFile(db, {
      apiUrl: scheduler.url,
      apiKey: scheduler.apiKey,
      pid: process.pid,
      db,
      verificationKey: scheduler.verificationKey,
      endpointUrl,
    });
    await out.attach(scheduler);

    // The app gets what it needs and nothing more: no DISPATCH_* variable of
    // the shell (DISPATCH_SIGNING_KEY, another scheduler's key...) reaches it.
    const env: NodeJS.ProcessEnv = {
      ...withoutDispatchVariables(io.env),
      DISPATCH_API_URL: scheduler.url,
      DISPATCH_API_KEY: scheduler.apiKey,
      DISPATCH_ENDPOINT_URL: endpointUrl,
      DISPATCH_ENDPOINT_ADDR: addr,
      DISPATCH_VERIFICATION_KEY: scheduler.verificationKey,
    };
    // Own process group: a Ctrl-C reaches the command once, through us.
    const detached = process.platform !== 'win32';
    const stdinIsTty = (process.stdin as { isTTY?: boolean }).isTTY === true;
    const started = spawn(program, args, {
      cwd: io.cwd,
      env,
      detached,
      stdio: [detached && stdinIsTty ? 'ignore' : 'inherit', 'pipe', 'pipe'],
    });
    child = started;
    await new Promise<void>((resolveSpawn, reject) => {
      started.once('spawn', resolveSpawn);
      started.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') {
          reject(new CliError(`command not found: ${program}: check its spelling and your PATH (dispatch run -- <command> [arguments...])`, 127));
        } else if (err.code === 'EACCES') {
          reject(new CliError(`cannot execute ${program}: permission denied (is it executable?)`, 126));
        } else {
          reject(new CliError(`cannot start ${program}: ${err.message}`, 126));
        }
      });
    });
    // The app's lines too are shown without keys and passwords (its own API key, a database URL...).
    const redactor = new Redactor([scheduler.apiKey, io.env.DISPATCH_SIGNING_KEY]);
    const lines = Promise.all([
      splitLines(started.stdout!, (line) => out.appLine('stdout', redactor.redact(line))),
      splitLines(started.stderr!, (line) => out.appLine('stderr', redactor.redact(line))),
    ]);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) =>
      started.once('exit', (code, signal) => resolveExit({ code, signal })),
    );
    // Calls run once the app listens on its endpoint address.
    const running = scheduler;
    void waitForListener(urlHost, endpointPort, exited, async () => {
      const { counts } = await running.list({ limit: 1 });
      if (counts.pending === 0) return false;
      out.note(
        `${counts.pending} call(s) wait for the app to listen on ${addr} (DISPATCH_ENDPOINT_ADDR): make it listen there ` +
          `(Express: app.listen(${endpointPort}); Fastify: app.listen({ port: ${endpointPort} }); or read DISPATCH_ENDPOINT_ADDR), ` +
          'or pass --endpoint-addr with the address it listens on',
      );
      return true;
    }).then((listening) => {
      if (listening) running.startRunning();
    });

    const send = (signal: NodeJS.Signals) => {
      try {
        if (detached && started.pid) process.kill(-started.pid, signal);
        else started.kill(signal);
      } catch {
        // already gone
      }
    };
    let received = 0;
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]) {
      const handler = () => {
        received++;
        if (received === 1) {
          out.note(`${signal}: passing it to ${basename(program)} (send it again to kill it)`);
          send(signal);
        } else {
          out.note(`${signal} again: killing ${basename(program)}`);
          send('SIGKILL');
        }
      };
      signalHandlers.set(signal, handler);
      process.on(signal, handler);
    }

    const { code, signal } = await exited;
    // Leftovers of the command's process group (a server started by a script) go too.
    if (detached && started.pid) {
      try {
        process.kill(-started.pid, 'SIGTERM');
      } catch {
        // the group is empty
      }
    }
    await Promise.race([lines, new Promise((r) => setTimeout(r, 1000).unref())]);
    const exitCode = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 1);
    await out.flush();
    out.stop();
    out.note(`${basename(program)} exited with ${signal ? `signal ${signal}` : `code ${code}`}`);
    const after = await scheduler.list({ limit: 1 });
    const left = after.counts.pending + after.counts.running + after.counts.suspended;
    if (left > 0) {
      out.note(`${left} call(s) unfinished: they are kept in ${dbShown} and resume on the next \`dispatch run\` on this database`);
    }
    return exitCode;
  } catch (err) {
    if (child && child.exitCode === null && child.pid) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }
    throw err;
  } finally {
    out.stop();
    for (const [signal, handler] of signalHandlers) process.off(signal, handler);
    removeStateFile();
    await scheduler.close();
  }
}

/**
 * Resolves true once something accepts TCP connections on `host:port`, or
 * false when `gone` settles first (the app exited). Past
 * {@link LISTEN_NOTE_AFTER_MS}, and then as often, asks `slow` whether to
 * say so, until it answers true once.
 */
async function waitForListener(host: string, port: number, gone: Promise<unknown>, slow: () => Promise<boolean>): Promise<boolean> {
  let done = false;
  void gone.then(() => {
    done = true;
  });
  const started = Date.now();
  let nextNote = started + LISTEN_NOTE_AFTER_MS;
  let noted = false;
  while (!done) {
    if (await accepts(host, port)) return !done;
    if (!noted && Date.now() >= nextNote) {
      nextNote += LISTEN_NOTE_AFTER_MS;
      noted = await slow().catch(() => false);
    }
    await Promise.race([gone, new Promise((r) => setTimeout(r, 50))]);
  }
  return false;
}

/** Whether a TCP connection to `host:port` is accepted now (it is closed at once). */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolveConnect) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolveConnect(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolveConnect(false);
    });
  });
}
