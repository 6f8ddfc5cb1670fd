/**
 * The `dispatch` command line (bin `dispatch` of @dispatch/scheduler:
 * `bin/dispatch.cjs` runs the compiled `main()`). Always available as
 * `node node_modules/@dispatch/scheduler/bin/dispatch.cjs`.
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { addCallCommand } from './call.js';
import { addCancelCommand } from './cancel.js';
import { CliError, type CliContext, type CliIO } from './common.js';
import { addGetCommand } from './get.js';
import { addLsCommand } from './ls.js';
import { addRestartCommand } from './restart.js';
import { addResumeCommand } from './resume.js';
import { addSignalCommand } from './signal.js';
import { addRunCommand } from './run.js';
import { addSchedulesCommand } from './schedules.js';
import { addServeCommand } from './serve.js';
import { addVerificationKeyCommand } from './verification-key.js';
import { Redactor } from '../redact.js';

function version(): string {
  // The bin runs the CommonJS build, where __dirname is dist/cjs; the package root is two levels up.
  if (typeof __dirname !== 'string') return 'unknown';
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

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
In a project that depends on @dispatch/scheduler: npx dispatch <command>
(pnpm exec dispatch <command>). From a checkout of the repository (after
pnpm build), this always works:
  node packages/scheduler/bin/dispatch.cjs <command>
Every command has --help; the package README documents them and every default.
`,
    );
  const cli: CliContext = { io, done: (code) => code.then(exit) };
  // One file per command, each with its flags.
  addRunCommand(program, cli);
  addServeCommand(program, cli);
  addLsCommand(program, cli);
  addGetCommand(program, cli);
  addCancelCommand(program, cli);
  addRestartCommand(program, cli);
  addResumeCommand(program, cli);
  addSignalCommand(program, cli);
  addCallCommand(program, cli);
  addSchedulesCommand(program, cli);
  addVerificationKeyCommand(program, cli);

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
  // Errors may quote a database URL or a key: printed without them.
  const redactor = new Redactor([fullIo.env.DISPATCH_API_KEY, fullIo.env.DISPATCH_SIGNING_KEY]);
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors were printed by commander.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof CliError) {
      fullIo.stderr.write(`dispatch: ${redactor.redact(err.message)}\n`);
      return err.exitCode;
    }
    fullIo.stderr.write(`dispatch: unexpected error: ${redactor.redact((err as Error).stack ?? String(err))}\n`);
    return 1;
  }
}
