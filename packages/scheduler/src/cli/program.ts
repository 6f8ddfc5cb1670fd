/**
 * The `dispatch` command line (bin `dispatch` of @dispatch/scheduler:
 * `bin/dispatch.cjs` runs the compiled `main()`). Always available as
 * `node node_modules/@dispatch/scheduler/bin/dispatch.cjs`.
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { type CallFlags, callCommand, cancelCommand, getCommand, type LsFlags, lsCommand, restartCommand, verificationKeyCommand } from './api-commands.js';
import { CliError, type CliIO } from './common.js';
import { type RunFlags, runCommand } from './run.js';
import { type ServeFlags, serveCommand } from './serve.js';

function version(): string {
  // The bin runs the CommonJS build, where __dirname is dist/cjs; the package root is two levels up.
  if (typeof __dirname !== 'string') return 'unknown';
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

const apiOptions = (cmd: Command) =>
  cmd
    .option('--api-url <url>', 'API URL of the scheduler (default: DISPATCH_API_URL, .dispatch/api.json, http://127.0.0.1:4450)')
    .option('--api-key <key>', 'API key (default: DISPATCH_API_KEY, or .dispatch/api.json of a local dispatch run/serve)');

/**
 * Builds the program. `run` resolves each command's exit code into `exit`.
 * @example
 * const code = await main(['node', 'dispatch', 'ls', '--json']);
 */
export function buildProgram(io: CliIO, exit: (code: number) => void): Command {
  const program = new Command('dispatch')
    .description('Dispatch: durable functions for Node.js — the scheduler and its tools')
    .version(version(), '-v, --version')
    .enablePositionalOptions()
    .showHelpAfterError('(run dispatch --help for usage)')
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .exitOverride()
    .addHelpText(
      'after',
      `
In a package that depends on @dispatch/scheduler: pnpm exec dispatch <command>.
From a checkout of the repository (after pnpm build), this always works:
  node packages/scheduler/bin/dispatch.cjs <command>
`,
    );
  const done = (p: Promise<number>) => p.then(exit);

  program
    .command('run')
    .description('start the embedded scheduler (SQLite) and run a command with its configuration set')
    .usage('[options] -- <command...>')
    .argument('<command...>', 'the command that serves your app, e.g. node app.js')
    .option('--db <path>', 'SQLite file; unfinished calls in it resume', '.dispatch/dispatch.db')
    .option('--port <n>', 'API port (default 4450 if free, else any free port)')
    .option('--endpoint-addr <host:port>', "address the app's endpoint binds (default: the database's first one, else a free port)")
    .option('--log-level <level>', 'scheduler log level: error, warn, info (one line per attempt), debug, silent', 'warn')
    .option('-q, --quiet', 'no line per call (the live status line stays on a terminal)')
    .option('--plain', 'plain lines even on a terminal, no live status line')
    .passThroughOptions()
    .addHelpText(
      'after',
      `
The command gets DISPATCH_API_URL, DISPATCH_API_KEY, DISPATCH_ENDPOINT_URL,
DISPATCH_ENDPOINT_ADDR and DISPATCH_VERIFICATION_KEY. Its output lines are
prefixed; SIGINT/SIGTERM are passed to it (a second one kills it); dispatch
exits with its exit code.

Example:
  dispatch run -- node app.js
  dispatch run --db /tmp/demo.db -- npx tsx src/app.ts
`,
    )
    .action((command: string[], flags: RunFlags) => done(runCommand(command, flags, io)));

  program
    .command('serve')
    .description('run the scheduler alone until SIGINT/SIGTERM')
    .option('--db <path|url>', 'SQLite file, :memory:, or postgres://… ', '.dispatch/dispatch.db')
    .option('--port <n>', 'API port', '4450')
    .option('--host <host>', 'interface to bind', '127.0.0.1')
    .option('--api-key <key>', 'accepted API key, repeatable (default: DISPATCH_API_KEY, else one generated and kept in the database)', collect)
    .option('--log-level <level>', 'error, warn, info (one line per attempt), debug, silent', 'info')
    .option('--synchronous <mode>', 'SQLite durability: NORMAL (survives a process crash) or FULL (also a power loss)')
    .option('--max-attempts <n>', 'most attempts per call (default: bounded by the expiration only)')
    .option('--lease-ms <n>', 'lease of a claimed call, renewed while it runs; another instance takes it over once it expires (default 30000)')
    .option('--claim-batch <n>', 'most calls claimed from the database at once (default 256)')
    .addHelpText(
      'after',
      `
The signing key pair and the API key are created on first start and kept in the
database; DISPATCH_SIGNING_KEY (PEM or base64 Ed25519 private key) and
DISPATCH_API_KEY override them.
`,
    )
    .action((flags: ServeFlags) => done(serveCommand(flags, io)));

  apiOptions(
    program
      .command('ls')
      .description('list calls, newest first')
      .option('--state <state>', 'only these states (pending, running, suspended, succeeded, failed, cancelled); repeatable or comma-separated', collect)
      .option('--function <name>', 'only calls of this function')
      .option('--limit <n>', 'page size, 1..1000', '20')
      .option('--cursor <cursor>', 'next page (printed at the end of the previous one)')
      .option('--roots', 'only calls without a parent')
      .option('--json', 'machine-readable JSON'),
  ).action((flags: LsFlags) => done(lsCommand(flags, io)));

  apiOptions(
    program
      .command('get')
      .description('show a call: state, status, attempts, output or error, parent and children')
      .argument('<id>', 'dispatch ID')
      .option('--json', 'machine-readable JSON'),
  ).action((id: string, flags) => done(getCommand(id, flags, io)));

  apiOptions(
    program
      .command('cancel')
      .description('cancel a call and its unfinished descendants')
      .argument('<id>', 'dispatch ID')
      .option('--json', 'machine-readable JSON'),
  ).action((id: string, flags) => done(cancelCommand(id, flags, io)));

  apiOptions(
    program
      .command('restart')
      .description('run a call again from its original input (its side effects may repeat)')
      .argument('<id>', 'dispatch ID')
      .option('--json', 'machine-readable JSON'),
  ).action((id: string, flags) => done(restartCommand(id, flags, io)));

  apiOptions(
    program
      .command('call')
      .description('dispatch one call of a function served by an endpoint')
      .argument('<function>', 'function name')
      .argument('[args...]', 'arguments, each one JSON value (quote strings: \'"Ada"\')')
      .option('--endpoint <url>', 'URL of the app serving the function (default: DISPATCH_ENDPOINT_URL)')
      .addOption(new Option('--input <json>', 'send this JSON as one raw google.protobuf.Value instead of an argument list (functions of other SDKs)'))
      .option('--wait', 'wait for the result, print it, exit 1 if the call failed')
      .option('--timeout <duration>', 'with --wait: how long to wait (exit 3 if still running)', '10m')
      .option('--expiration <duration>', 'expiration of the call (default 1h)')
      .option('--idempotency-key <key>', 'dispatch at most once per key')
      .option('--json', 'machine-readable JSON'),
  ).action((fn: string, args: string[], flags: CallFlags) => done(callCommand(fn, args, flags, io)));

  program
    .command('verification-key')
    .description('print the public key apps verify requests with (DISPATCH_VERIFICATION_KEY)')
    .option('--db <path>', "the scheduler's database (its key pair is created on first use)", '.dispatch/dispatch.db')
    .option('--api-url <url>', 'ask a running scheduler instead of reading the database')
    .option('--pem', 'print PEM instead of base64')
    .action((flags) => done(verificationKeyCommand(flags, io)));

  return program;
}

/**
 * Runs the CLI and resolves to its exit code (it does not exit the process).
 * @example
 * main(process.argv).then((code) => process.exit(code));
 */
export async function main(argv: string[] = process.argv, io?: Partial<CliIO>): Promise<number> {
  const fullIo: CliIO = {
    stdout: io?.stdout ?? process.stdout,
    stderr: io?.stderr ?? process.stderr,
    env: io?.env ?? process.env,
    cwd: io?.cwd ?? process.cwd(),
  };
  let code = 0;
  const program = buildProgram(fullIo, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors were printed by commander.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof CliError) {
      fullIo.stderr.write(`dispatch: ${err.message}\n`);
      return err.exitCode;
    }
    fullIo.stderr.write(`dispatch: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
