/**
 * `dispatch restart ID`: runs a call again from its original input.
 * @module
 */
import type { Command } from 'commander';
import { api, apiClient, type ApiFlags, type CliContext, type CliIO, print, printJson, withApiFlags } from './common.js';
import { callInfoJson } from './format.js';

/** Flags of `dispatch restart`. */
export interface RestartFlags extends ApiFlags {
  json?: boolean;
}

/**
 * Declares `dispatch restart` on the program.
 * @example
 * addRestartCommand(program, cli);
 */
export function addRestartCommand(program: Command, cli: CliContext): void {
  withApiFlags(
    program
      .command('restart')
      .description('run a call again from its original input (its side effects may repeat)')
      .argument('<id>', 'dispatch ID')
      .option('--json', 'machine-readable JSON'),
  ).action((id: string, flags: RestartFlags) => cli.done(restartCommand(id, flags, cli.io)));
}

/**
 * Runs `dispatch restart`; resolves to the exit code.
 * @example
 * await restartCommand(id, {}, io);
 */
export async function restartCommand(id: string, flags: RestartFlags, io: CliIO): Promise<number> {
  const client = apiClient(flags, io);
  const info = await api(() => client.restart(id));
  if (flags.json) printJson(io, callInfoJson(info.raw));
  else print(io, `restarted ${info.function} ${id} from its original input`);
  return 0;
}
